"""Parameters of the single-compartment Hodgkin–Huxley model."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

from ._rates import AbstractHHKinetics, ANNarchyKinetics, ClassicKinetics

#: Temperature [°C] at which the classic rate functions were measured.
REFERENCE_TEMPERATURE = 6.3
"""Temperature [°C] at which the classic rate functions were measured (6.3 °C).

At `HHParams(temperature=REFERENCE_TEMPERATURE)` (the default) the temperature
factor `phi = q10 ** ((temperature - 6.3) / 10)` is 1. A Python float.

**Example:**

```pycon
>>> import hhjax
>>> hhjax.REFERENCE_TEMPERATURE
6.3
>>> float(hhjax.HHParams(temperature=hhjax.REFERENCE_TEMPERATURE).phi)
1.0
>>> round(float(hhjax.HHParams(temperature=hhjax.REFERENCE_TEMPERATURE + 10).phi), 6)
3.0

```
"""

#: Rates are evaluated at voltages clamped to ±RATE_V_LIMIT mV (relative to v_shift).
RATE_V_LIMIT = 200.0

# name -> (unit, predicate description, predicate)
_FIELD_RULES: dict[str, tuple[str, str, Any]] = {
    "c_m": ("µF/cm²", "> 0", lambda x: x > 0),
    "g_na": ("mS/cm²", ">= 0", lambda x: x >= 0),
    "g_k": ("mS/cm²", ">= 0", lambda x: x >= 0),
    "g_leak": ("mS/cm²", ">= 0", lambda x: x >= 0),
    "e_na": ("mV", "finite", lambda x: np.ones_like(x, dtype=bool)),
    "e_k": ("mV", "finite", lambda x: np.ones_like(x, dtype=bool)),
    "e_leak": ("mV", "finite", lambda x: np.ones_like(x, dtype=bool)),
    "temperature": ("°C", "> -273.15", lambda x: x > -273.15),
    "q10": ("dimensionless", "> 0", lambda x: x > 0),
    "v_shift": ("mV", "finite", lambda x: np.ones_like(x, dtype=bool)),
}
_ARRAY_FIELDS = tuple(_FIELD_RULES)


def is_concrete(x: Any) -> bool:
    """True when `x` holds a value now (not a JAX tracer inside jit/vmap/grad)."""
    return not isinstance(x, jax.core.Tracer)


def float_dtype(*values: ArrayLike, dtype=None):
    """The floating dtype that `values` promote to (weakly typed Python floats follow
    JAX's default float, i.e. float64 only when x64 is enabled)."""
    if dtype is not None:
        return jnp.dtype(dtype)
    # non-numeric values are left to the caller's named checks
    values = [v for v in values if not isinstance(v, (str, bytes)) and v is not None]
    values = [jnp.asarray(v) if isinstance(v, (list, tuple)) else v for v in values]
    if not values:
        return jnp.result_type(float)
    dt = jnp.result_type(*values)
    if not jnp.issubdtype(dt, jnp.floating):
        dt = jnp.result_type(float)
    return dt


def check_value(name: str, value: Any, unit: str, rule: str, ok) -> None:
    """Raise a `ValueError` naming `name` if a concrete `value` is not finite or fails
    `ok`. Traced values are not checked (they have no value yet)."""
    if not is_concrete(value):
        return
    arr = np.asarray(value)
    if not np.all(np.isfinite(arr)):
        raise ValueError(
            f"`{name}` must be finite (in {unit}), got {value!r}; "
            f"expected a finite value {rule}."
        )
    if not np.all(ok(arr)):
        raise ValueError(f"`{name}` must be {rule} {unit}, got {value!r}.")


class HHParams(eqx.Module):
    r"""Parameters of the single-compartment Hodgkin–Huxley model.

    $$c_m \frac{dv}{dt} = i_\mathrm{stim} - \bar g_\mathrm{Na} m^3 h (v - E_\mathrm{Na})
      - \bar g_\mathrm{K} n^4 (v - E_\mathrm{K}) - g_\mathrm{leak} (v - E_\mathrm{leak})$$

    $$\frac{dx}{dt} = \phi\,[\alpha_x(v - v_\mathrm{shift})(1 - x)
      - \beta_x(v - v_\mathrm{shift})\,x], \quad
      \phi = q_{10}^{(T - 6.3)/10}$$

    The defaults are the classic squid axon in the modern convention (rest ≈ −65 mV).
    Every numeric field is stored as a JAX array (so new values never trigger
    recompilation and every field can be differentiated); all share one float dtype,
    which follows the inputs (`dtype=None`) or is given explicitly.

    **Arguments / fields:**

    - `c_m`: membrane capacitance [µF/cm²], > 0.
    - `g_na`: maximal Na⁺ conductance [mS/cm²], ≥ 0.
    - `g_k`: maximal delayed-rectifier K⁺ conductance [mS/cm²], ≥ 0.
    - `g_leak`: leak conductance [mS/cm²], ≥ 0.
    - `e_na`, `e_k`, `e_leak`: reversal potentials [mV].
    - `temperature`: temperature [°C]; rates scale by `q10 ** ((temperature - 6.3)/10)`.
    - `q10`: temperature coefficient of the rates [dimensionless], > 0.
    - `v_shift`: offset of the voltage convention [mV]; the rate functions are
      evaluated at `v - v_shift` (0 for the modern convention, +65 for the original
      1952 convention with rest at 0 mV).
    - `kinetics`: the rate functions, an [`hhjax.AbstractHHKinetics`][]
      (default [`hhjax.ClassicKinetics`][]).
    - `dtype`: optional float dtype for every field (default: follow the inputs:
      float64 when x64 is enabled, else float32).

    **Shapes:** scalars for one neuron. Fields may also be arrays of one broadcast
    shape: such a batched `HHParams` is what [`hhjax.simulate_population`][] takes,
    or what `jax.vmap` maps over ([`hhjax.simulate`][] itself needs scalars).

    **Raises:** `ValueError` naming the field, its value and the expected unit/range for
    non-finite values, `c_m <= 0`, negative conductances, `q10 <= 0`, or shapes that
    do not broadcast; `TypeError` for a `kinetics` that is not an
    `AbstractHHKinetics`. (Values are checked when concrete; traced values inside
    `jit`/`vmap` are checked by [`hhjax.simulate`][] through its result status.)

    **Example:**

    ```pycon
    >>> import equinox as eqx, jax.numpy as jnp, hhjax
    >>> p = hhjax.HHParams(g_na=100.0, e_leak=-60.0)
    >>> float(p.g_na), float(p.g_k), p.g_na.shape
    (100.0, 36.0, ())
    >>> q = eqx.tree_at(lambda p: p.g_k, p, jnp.asarray(30.0))  # a changed copy
    >>> float(q.g_k)
    30.0
    >>> float(hhjax.HHParams.hh1952().e_na)     # original convention, rest at 0 mV
    115.0
    >>> hhjax.HHParams(dtype=jnp.float32).dtype
    dtype('float32')
    >>> hhjax.HHParams(g_na=jnp.linspace(100.0, 140.0, 5)).g_na.shape   # a batch
    (5,)
    >>> hhjax.HHParams(c_m=-1.0)
    Traceback (most recent call last):
    ValueError: `c_m` must be > 0 µF/cm², got -1.0.

    ```
    """

    c_m: Array
    g_na: Array
    g_k: Array
    g_leak: Array
    e_na: Array
    e_k: Array
    e_leak: Array
    temperature: Array
    q10: Array
    v_shift: Array
    kinetics: AbstractHHKinetics

    def __init__(
        self,
        c_m: ArrayLike = 1.0,
        g_na: ArrayLike = 120.0,
        g_k: ArrayLike = 36.0,
        g_leak: ArrayLike = 0.3,
        e_na: ArrayLike = 50.0,
        e_k: ArrayLike = -77.0,
        e_leak: ArrayLike = -54.387,
        temperature: ArrayLike = REFERENCE_TEMPERATURE,
        q10: ArrayLike = 3.0,
        v_shift: ArrayLike = 0.0,
        kinetics: AbstractHHKinetics | None = None,
        *,
        dtype=None,
    ):
        values = dict(
            c_m=c_m,
            g_na=g_na,
            g_k=g_k,
            g_leak=g_leak,
            e_na=e_na,
            e_k=e_k,
            e_leak=e_leak,
            temperature=temperature,
            q10=q10,
            v_shift=v_shift,
        )
        for name, value in values.items():
            if isinstance(value, (str, bytes)) or value is None:
                raise TypeError(
                    f"`{name}` must be a number or array "
                    f"(in {_FIELD_RULES[name][0]}), got {value!r}."
                )
            unit, rule, ok = _FIELD_RULES[name]
            check_value(name, value, unit, rule, ok)
        dt = float_dtype(*values.values(), dtype=dtype)
        try:
            np.broadcast_shapes(*(jnp.shape(v) for v in values.values()))
        except ValueError:
            shapes = {k: jnp.shape(v) for k, v in values.items()}
            raise ValueError(
                f"HHParams fields must have broadcastable shapes, got {shapes}."
            ) from None
        for name, value in values.items():
            setattr(self, name, jnp.asarray(value, dtype=dt))
        if kinetics is None:
            kinetics = ClassicKinetics()
        if not isinstance(kinetics, AbstractHHKinetics):
            raise TypeError(
                "`kinetics` must be an hhjax.AbstractHHKinetics, "
                f"got {type(kinetics).__name__}."
            )
        self.kinetics = kinetics

    # ---- presets -----------------------------------------------------------------

    @classmethod
    def squid_axon(cls, *, dtype=None, **overrides) -> HHParams:
        """The classic squid-axon parameters, modern convention (the defaults).

        `overrides` are any [`hhjax.HHParams`][] arguments (same units and checks).

        ```pycon
        >>> import hhjax
        >>> float(hhjax.HHParams.squid_axon(g_leak=0.2).g_leak)
        0.2

        ```
        """
        return cls(dtype=dtype, **overrides)

    @classmethod
    def hh1952(cls, *, dtype=None, **overrides) -> HHParams:
        """The original 1952 shifted convention: voltage is the depolarisation from
        rest, so rest is at 0 mV (`e_na=115`, `e_k=-12`, `e_leak=10.613`,
        `v_shift=65`). Same dynamics as the default, every voltage +65 mV; as used
        with `scipy.integrate.odeint` in seed 001.

        ```pycon
        >>> import hhjax
        >>> p = hhjax.HHParams.hh1952()
        >>> float(p.v_shift), float(p.e_k)
        (65.0, -12.0)

        ```
        """
        kw = dict(e_na=115.0, e_k=-12.0, e_leak=10.613, v_shift=65.0)
        kw.update(overrides)
        return cls(dtype=dtype, **kw)

    @classmethod
    def annarchy(cls, *, dtype=None, **overrides) -> HHParams:
        """The variant of ANNarchy's Hodgkin–Huxley notebook (seed 000): reversal
        potentials `e_na=45`, `e_k=-82`, `e_leak=-59.387` mV and that notebook's own
        rate forms ([`hhjax.ANNarchyKinetics`][]).

        ```pycon
        >>> import hhjax
        >>> type(hhjax.HHParams.annarchy().kinetics).__name__
        'ANNarchyKinetics'

        ```
        """
        kw = dict(e_na=45.0, e_k=-82.0, e_leak=-59.387, kinetics=ANNarchyKinetics())
        kw.update(overrides)
        return cls(dtype=dtype, **kw)

    @classmethod
    def brainpy(cls, *, dtype=None, **overrides) -> HHParams:
        """BrainPy's `brainpy.dyn.HH` defaults (seed 002): the classic model but with
        `g_leak=0.03` mS/cm² (ten times smaller than the squid axon's).

        ```pycon
        >>> import hhjax
        >>> float(hhjax.HHParams.brainpy().g_leak)
        0.03

        ```
        """
        kw = dict(g_leak=0.03)
        kw.update(overrides)
        return cls(dtype=dtype, **kw)

    # ---- rates -------------------------------------------------------------------

    @property
    def dtype(self):
        """The float dtype shared by every field."""
        return self.c_m.dtype

    @property
    def phi(self) -> Array:
        """Temperature factor of the rates, `q10 ** ((temperature - 6.3) / 10)`
        [dimensionless], of the fields' broadcast shape.

        ```pycon
        >>> import hhjax
        >>> float(hhjax.HHParams(temperature=16.3).phi)    # one Q10 step up
        3.0

        ```
        """
        return self.q10 ** ((self.temperature - REFERENCE_TEMPERATURE) / 10.0)

    def rates(self, v: ArrayLike) -> dict[str, Array]:
        """All six rates [1/ms] at membrane potential `v` [mV], temperature-scaled.

        `v − v_shift` is clamped to ±200 mV (`RATE_V_LIMIT`) before the rates are
        evaluated: physiological voltages are untouched, and trial steps of adaptive
        solvers that visit absurd voltages get finite rates (so they are rejected
        cleanly instead of poisoning gradients with NaN).

        Returns a dict with keys `alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n`,
        each of the broadcast shape of `v` and the parameters, in the parameters'
        dtype.

        ```pycon
        >>> import hhjax
        >>> r = hhjax.HHParams().rates(-40.0)     # the removable 0/0 of alpha_m
        >>> round(float(r["alpha_m"]), 6)
        1.0

        ```
        """
        # Clamp to a generous physiological window: trial steps of adaptive solvers
        # may visit absurd voltages; clamping keeps the rates finite there (so those
        # steps are rejected cleanly and back-propagate zeros, not NaNs) and changes
        # nothing inside ±RATE_V_LIMIT mV.
        u = jnp.clip(jnp.asarray(v) - self.v_shift, -RATE_V_LIMIT, RATE_V_LIMIT)
        k = self.kinetics
        phi = self.phi
        return dict(
            alpha_m=phi * k.alpha_m(u),
            beta_m=phi * k.beta_m(u),
            alpha_h=phi * k.alpha_h(u),
            beta_h=phi * k.beta_h(u),
            alpha_n=phi * k.alpha_n(u),
            beta_n=phi * k.beta_n(u),
        )

    def gate_inf(self, v: ArrayLike) -> dict[str, Array]:
        """Steady-state open fractions `{"m", "h", "n"}` [dimensionless] at `v` [mV],
        `x∞ = α/(α+β)`, each of the broadcast shape of `v` and the parameters.

        ```pycon
        >>> import hhjax
        >>> inf = hhjax.HHParams().gate_inf(-65.0)
        >>> {k: round(float(x), 4) for k, x in inf.items()}
        {'m': 0.0529, 'h': 0.5961, 'n': 0.3177}

        ```
        """
        r = self.rates(v)
        return {
            x: r[f"alpha_{x}"] / (r[f"alpha_{x}"] + r[f"beta_{x}"]) for x in "mhn"
        }

    def gate_tau(self, v: ArrayLike) -> dict[str, Array]:
        """Time constants `{"m", "h", "n"}` [ms] of the gates at `v` [mV],
        `τx = 1/(α+β)`, each of the broadcast shape of `v` and the parameters.

        ```pycon
        >>> import hhjax
        >>> tau = hhjax.HHParams().gate_tau(-65.0)
        >>> {k: round(float(x), 3) for k, x in tau.items()}
        {'m': 0.237, 'h': 8.516, 'n': 5.459}

        ```
        """
        r = self.rates(v)
        return {x: 1.0 / (r[f"alpha_{x}"] + r[f"beta_{x}"]) for x in "mhn"}


def check_params_scalar(params: HHParams) -> None:
    """Raise if `params` is batched: `simulate` works on one neuron; use `jax.vmap`."""
    for name in _ARRAY_FIELDS:
        shape = jnp.shape(getattr(params, name))
        if shape != ():
            raise ValueError(
                f"`params.{name}` has shape {shape}, but `simulate` takes one neuron's "
                "parameters (scalar fields). Batch with `jax.vmap`, e.g. "
                "`jax.vmap(lambda p: hhjax.simulate(p, stim, t_end=...))(params)`."
            )
