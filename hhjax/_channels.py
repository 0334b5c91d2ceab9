r"""Generic conductance-based models: gates, channels and a membrane built from them.

A [`hhjax.Membrane`][] is a single compartment

$$c_m \frac{dv}{dt} = i_\mathrm{stim} - \sum_c \bar g_c \prod_x x^{p_{c,x}} (v - E_c)$$

whose gating variables are either

- **kinetic**: `dx/dt = α(v)(1 − x) − β(v) x` ([`hhjax.RateGate`][]) or
  `dx/dt = (x∞(v) − x)/τ(v)` ([`hhjax.InfTauGate`][]), part of the state;
- **instantaneous**: `x = x∞(v)` ([`hhjax.InstantaneousGate`][]), not in the state;
- **algebraic**: a function of `v` and the other gates, e.g. seed 003's
  `h = 0.89 − 1.1 n` ([`hhjax.DependentGate`][]), not in the state.

Voltage functions (α, β, x∞, τ) are any pure JAX callables `v [mV] -> array` (a
plain function is part of the compiled program: define it once, e.g. at module
level, since a new function object means a new compilation); the
parametrised families below ([`hhjax.Linoid`][], [`hhjax.Exponential`][],
[`hhjax.Sigmoid`][], [`hhjax.Bell`][]) are equinox Modules whose parameters are
arrays, so they can be fitted and differentiated like the conductances.

Everything is a pytree of arrays: `jax.vmap`, `jax.grad` and `jax.jit` work on a
`Membrane` as they do on an [`hhjax.HHParams`][], and [`hhjax.simulate`][],
[`hhjax.resting_state`][] and [`hhjax.jacobian_at`][] accept either.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

from ._params import HHParams, check_params_scalar, check_value, float_dtype, is_concrete
from ._rates import exprel_inv

# Guards of the membrane current (as in `hh_derivatives`): the driving force uses v
# clamped to ±V_GUARD mV and conductances use gates clamped to GATE_GUARD, so the
# vector field stays finite at the wild trial states of rejected adaptive steps.
V_GUARD = 1000.0
GATE_GUARD = (-1.0, 2.0)
#: Voltage functions are evaluated with v clamped to ±RATE_V_LIMIT mV (finite rates at
#: absurd trial voltages; physiological voltages are untouched).
RATE_V_LIMIT = 300.0


# --------------------------------------------------------------------------------------
# parametrised voltage functions


def _arr(x):
    return x if isinstance(x, jax.Array) else jnp.asarray(x)


class Linoid(eqx.Module):
    r"""Rate `rate · (v − v_half) / (1 − exp(−(v − v_half)/slope))` [1/ms].

    The shape of the classic HH activation rates, e.g. $\alpha_m$ is
    `Linoid(rate=0.1, v_half=-40.0, slope=10.0)`. Finite value and gradient at the
    removable singularity `v = v_half` (where it equals `rate · slope`).

    **Fields:** `rate` [1/(ms·mV)], `v_half` [mV], `slope` [mV] (≠ 0; negative for a
    rate that grows with hyperpolarisation). Arrays (fittable); calling it on `v`
    [mV] of any shape gives a rate of the broadcast shape.

    **Raises:** `ValueError` for a zero or non-finite `slope`.

    ```pycon
    >>> import hhjax
    >>> alpha_m = hhjax.Linoid(rate=0.1, v_half=-40.0, slope=10.0)
    >>> float(alpha_m(-40.0)), round(float(alpha_m(-65.0)), 4)
    (1.0, 0.2236)

    ```
    """

    rate: Array
    v_half: Array
    slope: Array

    def __init__(self, rate: ArrayLike, v_half: ArrayLike, slope: ArrayLike):
        _check_slope("Linoid", slope)
        self.rate, self.v_half, self.slope = _arr(rate), _arr(v_half), _arr(slope)

    def __call__(self, v: ArrayLike) -> Array:
        return self.rate * self.slope * exprel_inv((v - self.v_half) / self.slope)


class Exponential(eqx.Module):
    r"""Rate `rate · exp((v − v_half)/slope)` [1/ms].

    E.g. the classic $\beta_m$ is `Exponential(rate=4.0, v_half=-65.0, slope=-18.0)`.

    **Fields:** `rate` [1/ms], `v_half` [mV], `slope` [mV] (≠ 0).

    **Raises:** `ValueError` for a zero or non-finite `slope`.

    ```pycon
    >>> import hhjax
    >>> beta_m = hhjax.Exponential(rate=4.0, v_half=-65.0, slope=-18.0)
    >>> float(beta_m(-65.0))
    4.0

    ```
    """

    rate: Array
    v_half: Array
    slope: Array

    def __init__(self, rate: ArrayLike, v_half: ArrayLike, slope: ArrayLike):
        _check_slope("Exponential", slope)
        self.rate, self.v_half, self.slope = _arr(rate), _arr(v_half), _arr(slope)

    def __call__(self, v: ArrayLike) -> Array:
        return self.rate * jnp.exp((v - self.v_half) / self.slope)


class Sigmoid(eqx.Module):
    r"""`offset + amplitude / (1 + exp(−(v − v_half)/slope))`.

    A Boltzmann steady state `x∞(v)` with the defaults (`amplitude=1`, `offset=0`;
    `slope > 0` activates with depolarisation, `slope < 0` inactivates), or a
    sigmoidal rate [1/ms] with `amplitude` the maximal rate (the classic $\beta_h$ is
    `Sigmoid(-35.0, 10.0, amplitude=1.0)`).

    **Fields:** `v_half` [mV], `slope` [mV] (≠ 0), `amplitude`, `offset` (the unit of
    the output: dimensionless for a steady state, 1/ms for a rate).

    **Raises:** `ValueError` for a zero or non-finite `slope`.

    ```pycon
    >>> import hhjax
    >>> n_inf = hhjax.Sigmoid(v_half=-45.0, slope=15.0)
    >>> float(n_inf(-45.0)), round(float(n_inf(0.0)), 4)
    (0.5, 0.9526)

    ```
    """

    v_half: Array
    slope: Array
    amplitude: Array
    offset: Array

    def __init__(
        self,
        v_half: ArrayLike,
        slope: ArrayLike,
        amplitude: ArrayLike = 1.0,
        offset: ArrayLike = 0.0,
    ):
        _check_slope("Sigmoid", slope)
        self.v_half, self.slope = _arr(v_half), _arr(slope)
        self.amplitude, self.offset = _arr(amplitude), _arr(offset)

    def __call__(self, v: ArrayLike) -> Array:
        return self.offset + self.amplitude * jax.nn.sigmoid((v - self.v_half) / self.slope)


class Bell(eqx.Module):
    r"""Bell-shaped time constant `base + amplitude · exp(−((v − v_peak)/width)²)` [ms].

    As in seed 004's tutorial (`(300/σ) · exp(−((v − μ)/σ)²)` is
    `Bell(amplitude=300/σ, v_peak=μ, width=σ)`).

    **Fields:** `amplitude` [ms], `v_peak` [mV], `width` [mV] (≠ 0), `base` [ms].
    A time constant must stay > 0: keep `base > 0` or the voltage range bounded.

    **Raises:** `ValueError` for a zero or non-finite `width`.

    ```pycon
    >>> import hhjax
    >>> tau = hhjax.Bell(amplitude=5.0, v_peak=-60.0, width=20.0, base=0.5)
    >>> float(tau(-60.0)), round(float(tau(-40.0)), 4)
    (5.5, 2.3394)

    ```
    """

    amplitude: Array
    v_peak: Array
    width: Array
    base: Array

    def __init__(
        self,
        amplitude: ArrayLike,
        v_peak: ArrayLike,
        width: ArrayLike,
        base: ArrayLike = 0.0,
    ):
        _check_slope("Bell", width, name="width")
        self.amplitude, self.v_peak = _arr(amplitude), _arr(v_peak)
        self.width, self.base = _arr(width), _arr(base)

    def __call__(self, v: ArrayLike) -> Array:
        return self.base + self.amplitude * jnp.exp(-(((v - self.v_peak) / self.width) ** 2))


class Constant(eqx.Module):
    """A voltage-independent value (e.g. a fixed time constant [ms]).

    **Fields:** `value` (the unit of what it stands for). Calling it broadcasts
    `value` to the shape of `v`.

    ```pycon
    >>> import jax.numpy as jnp, hhjax
    >>> hhjax.Constant(10.0)(jnp.zeros(3)).tolist()
    [10.0, 10.0, 10.0]

    ```
    """

    value: Array

    def __init__(self, value: ArrayLike):
        self.value = _arr(value)

    def __call__(self, v: ArrayLike) -> Array:
        return jnp.broadcast_to(self.value, jnp.shape(v)).astype(jnp.result_type(self.value, v))


def _check_slope(cls: str, slope, name: str = "slope"):
    if is_concrete(slope) and not isinstance(slope, (str, bytes)):
        s = np.asarray(slope, dtype=float)
        if not np.all(np.isfinite(s)) or np.any(s == 0):
            raise ValueError(f"{cls} `{name}` must be a finite non-zero voltage [mV], got {slope!r}.")


class _Function(eqx.Module):
    """A plain Python callable, held as a static field so the model's leaves are all
    arrays (plain `jax.vmap` over a model works)."""

    fn: Callable = eqx.field(static=True)

    def __call__(self, *args):
        return self.fn(*args)


def _callable(name: str, fn) -> Callable:
    if isinstance(fn, eqx.Module):
        if not callable(fn):
            raise TypeError(f"`{name}` must be callable (v [mV] -> array), got {fn!r}.")
        return fn
    if not callable(fn):
        raise TypeError(f"`{name}` must be a callable v [mV] -> array, got {fn!r}.")
    return _Function(fn)


def _clamp_v(v):
    return jnp.clip(v, -RATE_V_LIMIT, RATE_V_LIMIT)


# --------------------------------------------------------------------------------------
# gates


class AbstractGate(eqx.Module):
    """A gating variable (dimensionless, normally in [0, 1]).

    Kinetic gates (part of the state) implement `inf(v)`, `tau(v)` and
    `derivative(x, v)`; [`hhjax.InstantaneousGate`][] and [`hhjax.DependentGate`][]
    are computed from `v` (and the other gates) instead. Values have the broadcast
    shape of `v` (and `x`).

    ```pycon
    >>> import hhjax
    >>> gate = hhjax.InfTauGate(hhjax.Sigmoid(-45.0, 15.0), hhjax.Constant(10.0))
    >>> isinstance(gate, hhjax.AbstractGate), gate.kinetic
    (True, True)
    >>> float(gate.derivative(0.0, -45.0))     # (x∞ − x)/τ = 0.5/10 [1/ms]
    0.05

    ```
    """

    @property
    def kinetic(self) -> bool:
        """True when the gate is a state variable with its own ODE."""
        return True

    def inf(self, v: ArrayLike) -> Array:
        """Steady-state value at `v` [mV]."""
        raise NotImplementedError

    def tau(self, v: ArrayLike) -> Array:
        """Time constant [ms] at `v` [mV]."""
        raise NotImplementedError

    def derivative(self, x: ArrayLike, v: ArrayLike) -> Array:
        """`dx/dt` [1/ms] at gate value `x` and voltage `v` [mV]."""
        return (self.inf(v) - x) / self.tau(v)


class AbstractRateGate(AbstractGate):
    """A kinetic gate given by opening/closing rates `rates(v) -> (α, β)` [1/ms]:
    `dx/dt = α(1 − x) − βx`, `inf = α/(α+β)`, `tau = 1/(α+β)`. Subclasses implement
    `rates` only.

    ```pycon
    >>> import jax.numpy as jnp, hhjax
    >>> class Symmetric(hhjax.AbstractRateGate):
    ...     def rates(self, v):
    ...         r = 0.1 * jnp.ones_like(jnp.asarray(v, float))
    ...         return r, r
    >>> g = Symmetric()
    >>> float(g.inf(-20.0)), float(g.tau(-20.0))
    (0.5, 5.0)

    ```
    """

    def rates(self, v: ArrayLike) -> tuple[Array, Array]:
        """`(α, β)` [1/ms] at `v` [mV]."""
        raise NotImplementedError

    def inf(self, v):
        a, b = self.rates(v)
        return a / (a + b)

    def tau(self, v):
        a, b = self.rates(v)
        return 1.0 / (a + b)

    def derivative(self, x, v):
        a, b = self.rates(v)
        return a * (1 - x) - b * x


class RateGate(AbstractRateGate):
    r"""A kinetic gate with opening and closing rates: `dx/dt = s·[α(v)(1 − x) − β(v) x]`.

    **Arguments:**

    - `alpha`, `beta`: callables `v [mV] -> rate [1/ms]` (e.g. [`hhjax.Linoid`][],
      [`hhjax.Exponential`][], [`hhjax.Sigmoid`][] or any pure JAX function).
    - `scale`: dimensionless factor on both rates (e.g. a temperature factor
      `q10 ** ((T − T_ref)/10)`), > 0. Default 1.

    `inf = α/(α+β)`, `tau = 1/(s(α+β))`.

    **Raises:** `TypeError` for a non-callable `alpha`/`beta`; `ValueError` for
    `scale <= 0`.

    ```pycon
    >>> import hhjax
    >>> m = hhjax.RateGate(hhjax.Linoid(0.1, -40.0, 10.0),
    ...                    hhjax.Exponential(4.0, -65.0, -18.0))
    >>> round(float(m.inf(-65.0)), 4), round(float(m.tau(-65.0)), 3)   # –, ms
    (0.0529, 0.237)

    ```
    """

    alpha: Callable
    beta: Callable
    scale: Array

    def __init__(self, alpha: Callable, beta: Callable, scale: ArrayLike = 1.0):
        self.alpha = _callable("alpha", alpha)
        self.beta = _callable("beta", beta)
        check_value("scale", scale, "(dimensionless)", "> 0", lambda x: x > 0)
        self.scale = _arr(scale)

    def rates(self, v):
        u = _clamp_v(jnp.asarray(v))
        return self.scale * self.alpha(u), self.scale * self.beta(u)


class InfTauGate(AbstractGate):
    r"""A kinetic gate relaxing to a steady state: `dx/dt = (x∞(v) − x)/τ(v)`.

    **Arguments:**

    - `inf`: callable `v [mV] -> x∞` (dimensionless), e.g. [`hhjax.Sigmoid`][].
    - `tau`: callable `v [mV] -> τ [ms]` (> 0), e.g. [`hhjax.Bell`][].
    - `scale`: dimensionless factor dividing τ (a temperature factor), > 0.

    **Raises:** `TypeError` for a non-callable `inf`/`tau`; `ValueError` for
    `scale <= 0`.

    ```pycon
    >>> import hhjax
    >>> n = hhjax.InfTauGate(hhjax.Sigmoid(-45.0, 15.0), hhjax.Constant(10.0),
    ...                      scale=2.0)
    >>> float(n.inf(-45.0)), float(n.tau(-45.0))      # τ = 10 ms / 2
    (0.5, 5.0)

    ```
    """

    inf_fn: Callable
    tau_fn: Callable
    scale: Array

    def __init__(self, inf: Callable, tau: Callable, scale: ArrayLike = 1.0):
        self.inf_fn = _callable("inf", inf)
        self.tau_fn = _callable("tau", tau)
        check_value("scale", scale, "(dimensionless)", "> 0", lambda x: x > 0)
        self.scale = _arr(scale)

    def inf(self, v):
        return self.inf_fn(_clamp_v(jnp.asarray(v)))

    def tau(self, v):
        return self.tau_fn(_clamp_v(jnp.asarray(v))) / self.scale


class InstantaneousGate(AbstractGate):
    """A gate that is always at its steady state, `x = x∞(v)` (not a state variable).

    **Arguments:** `gate`: a kinetic gate ([`hhjax.RateGate`][] or
    [`hhjax.InfTauGate`][]) whose `inf` is used, or a callable `v [mV] -> x∞`.

    **Raises:** `TypeError` when `gate` is itself a non-kinetic gate.

    ```pycon
    >>> import hhjax
    >>> m = hhjax.InstantaneousGate(hhjax.Sigmoid(-40.0, 7.0))
    >>> m.kinetic, float(m.inf(-40.0))
    (False, 0.5)

    ```
    """

    gate: Callable

    def __init__(self, gate):
        if isinstance(gate, AbstractGate):
            if not gate.kinetic:
                raise TypeError("InstantaneousGate wraps a kinetic gate or a callable v -> x∞.")
            self.gate = gate
        else:
            self.gate = InfTauGate(gate, Constant(1.0))

    @property
    def kinetic(self) -> bool:
        return False

    def inf(self, v):
        return self.gate.inf(v)

    def tau(self, v):
        return jnp.zeros_like(jnp.asarray(self.gate.inf(v)))


class DependentGate(AbstractGate):
    """A gate given algebraically by `v` and the other gates (not a state variable).

    **Arguments:** `fn`: callable `(v, gates) -> x`, where `gates` maps the names of
    the membrane's kinetic and instantaneous gates to their current values; e.g. the
    reduced HH of seed 003: `DependentGate(lambda v, g: 0.89 - 1.1 * g["n"])`.
    (A dependent gate cannot read another dependent gate.) Define the function once
    (e.g. at module level): a new function object means a new compilation.

    **Raises:** `TypeError` for a non-callable `fn`.

    ```pycon
    >>> import hhjax
    >>> h = hhjax.DependentGate(lambda v, g: 0.89 - 1.1 * g["n"])
    >>> h.kinetic, round(float(h.fn(-65.0, {"n": 0.3})), 2)
    (False, 0.56)

    ```
    """

    fn: Callable

    def __init__(self, fn: Callable):
        self.fn = _callable("fn", fn)

    @property
    def kinetic(self) -> bool:
        return False


# --------------------------------------------------------------------------------------
# channels and membrane


class Channel(eqx.Module):
    r"""An ionic current `g · Π_x x^p · (v − e)` [µA/cm²], positive outward.

    **Arguments:**

    - `g`: maximal conductance [mS/cm²], ≥ 0.
    - `e`: reversal potential [mV].
    - `gates`: mapping gate name → integer exponent ≥ 1 (names refer to the
      membrane's `gates`); empty for a leak.

    **Raises:** `TypeError` for non-numeric `g`/`e` or non-string gate names;
    `ValueError` for `g < 0`, non-finite values or exponents that are not integers
    ≥ 1.

    ```pycon
    >>> import hhjax
    >>> na = hhjax.Channel(g=120.0, e=50.0, gates={"m": 3, "h": 1})
    >>> float(na.conductance({"m": 0.5, "h": 0.5}))       # 120 · 0.5³ · 0.5 [mS/cm²]
    7.5
    >>> float(hhjax.Channel(0.5, -54.0).current(-64.0, {}))  # a leak [µA/cm²], inward
    -5.0

    ```
    """

    g: Array
    e: Array
    gates: dict = eqx.field(static=True)

    def __init__(self, g: ArrayLike, e: ArrayLike, gates: Mapping[str, int] | None = None):
        for name, value, unit in (("g", g, "mS/cm²"), ("e", e, "mV")):
            if isinstance(value, (str, bytes)) or value is None:
                raise TypeError(f"Channel `{name}` must be a number or array (in {unit}), got {value!r}.")
        check_value("g", g, "mS/cm²", ">= 0", lambda x: x >= 0)
        check_value("e", e, "mV", "finite", lambda x: np.ones_like(x, dtype=bool))
        gates = dict(gates or {})
        for k, p in gates.items():
            if not isinstance(k, str):
                raise TypeError(f"Channel gate names must be strings, got {k!r}.")
            if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 1:
                raise ValueError(
                    f"Channel gate exponent for {k!r} must be an integer >= 1, got {p!r}."
                )
        self.g, self.e = _arr(g), _arr(e)
        self.gates = {k: int(p) for k, p in gates.items()}

    def conductance(self, values: Mapping[str, Array]) -> Array:
        """Conductance [mS/cm²] for gate values `values` (name → open fraction)."""
        g = self.g
        for k, p in self.gates.items():
            g = g * values[k] ** p
        return g

    def current(self, v: ArrayLike, values: Mapping[str, Array]) -> Array:
        """Current density [µA/cm²] at `v` [mV] for the given gate values."""
        return self.conductance(values) * (v - self.e)


class MembraneState(eqx.Module):
    """State of a [`hhjax.Membrane`][]: `v` [mV] and the kinetic gates (name → value).

    `state["n"]` reads a gate, `state["v"]` the voltage. Scalar fields for one
    neuron; a trajectory has a leading time axis. Fields are stored as given;
    [`hhjax.simulate`][] converts an initial state to the model's dtype.

    ```pycon
    >>> import hhjax
    >>> y0 = hhjax.MembraneState(v=-65.0, gates={"n": 0.0})  # Membrane.reduced_hh()
    >>> y0["v"], y0["n"]
    (-65.0, 0.0)

    ```
    """

    v: Array
    gates: dict

    def __getitem__(self, name: str) -> Array:
        if name == "v":
            return self.v
        return self.gates[name]


class Membrane(eqx.Module):
    r"""A single-compartment conductance-based model composed of channels.

    $$c_m \frac{dv}{dt} = i_\mathrm{stim} - \sum_c \bar g_c \prod_x x^{p_{c,x}}(v - E_c)$$

    **Arguments:**

    - `channels`: mapping name → [`hhjax.Channel`][].
    - `gates`: mapping name → gate ([`hhjax.RateGate`][], [`hhjax.InfTauGate`][],
      [`hhjax.InstantaneousGate`][], [`hhjax.DependentGate`][]). Kinetic gates are the
      state variables besides `v`.
    - `c_m`: membrane capacitance [µF/cm²], > 0.
    - `dtype`: float dtype of every array (default: follow the inputs).

    **Raises:** `ValueError` for a channel naming an unknown gate, a gate no channel
    uses (unless a dependent gate reads it), a gate named `"v"`, `c_m <= 0`;
    `TypeError` for wrong component types.

    **Shapes:** scalar arrays for one neuron (what [`hhjax.simulate`][] takes);
    arrays with a batch shape for [`hhjax.simulate_population`][] or `jax.vmap`.

    **Example** (a passive membrane, then the classic HH):

    ```pycon
    >>> import hhjax
    >>> passive = hhjax.Membrane({"leak": hhjax.Channel(0.1, -70.0)}, {})
    >>> passive.kinetic_gates, float(passive.steady_state_current(-60.0))  # µA/cm²
    ((), 1.0)
    >>> hh = hhjax.Membrane.hodgkin_huxley()          # same dynamics as HHParams()
    >>> hh.kinetic_gates, sorted(hh.channels)
    (('h', 'm', 'n'), ['k', 'leak', 'na'])
    >>> hhjax.Membrane({"na": hhjax.Channel(120.0, 50.0, {"m": 3})}, {})
    Traceback (most recent call last):
    ValueError: channel 'na' uses gate 'm', which is not among the membrane's gates [].

    ```

    Simulate it like an `HHParams`: `hhjax.simulate(hh, hhjax.StepCurrent(10.0,
    10.0, 90.0), t_end=100.0)`.
    """

    channels: dict
    gates: dict
    c_m: Array

    def __init__(
        self,
        channels: Mapping[str, Channel],
        gates: Mapping[str, AbstractGate] | None = None,
        c_m: ArrayLike = 1.0,
        *,
        dtype=None,
    ):
        if not isinstance(channels, Mapping) or not channels:
            raise TypeError("`channels` must be a non-empty mapping name -> hhjax.Channel.")
        gates = dict(gates or {})
        for k, ch in channels.items():
            if not isinstance(ch, Channel):
                raise TypeError(f"channel {k!r} must be an hhjax.Channel, got {type(ch).__name__}.")
        for k, gt in gates.items():
            if not isinstance(gt, AbstractGate):
                raise TypeError(
                    f"gate {k!r} must be an hhjax gate (RateGate, InfTauGate, "
                    f"InstantaneousGate, DependentGate), got {type(gt).__name__}."
                )
            if k == "v" or not isinstance(k, str):
                raise ValueError(f"gate name {k!r} is reserved or not a string.")
        for k, ch in channels.items():
            for gname in ch.gates:
                if gname not in gates:
                    raise ValueError(
                        f"channel {k!r} uses gate {gname!r}, which is not among the "
                        f"membrane's gates {sorted(gates)}."
                    )
        if isinstance(c_m, (str, bytes)) or c_m is None:
            raise TypeError(f"`c_m` must be a number (in µF/cm²), got {c_m!r}.")
        check_value("c_m", c_m, "µF/cm²", "> 0", lambda x: x > 0)
        leaves = [
            x
            for x in jax.tree_util.tree_leaves((dict(channels), gates, c_m))
            if eqx.is_array_like(x) and not isinstance(x, bool)
        ]
        dt = float_dtype(*leaves, dtype=dtype)

        def cast(x):
            if eqx.is_array(x) and jnp.issubdtype(x.dtype, jnp.inexact):
                return x.astype(dt)
            return x

        self.channels = jax.tree_util.tree_map(cast, dict(channels))
        self.gates = jax.tree_util.tree_map(cast, gates)
        self.c_m = jnp.asarray(c_m, dtype=dt)

    # ---- structure ---------------------------------------------------------------

    @property
    def dtype(self):
        """The float dtype of the model's arrays."""
        return self.c_m.dtype

    @property
    def kinetic_gates(self) -> tuple[str, ...]:
        """Names of the gates that are state variables (sorted)."""
        return tuple(sorted(k for k, g in self.gates.items() if g.kinetic))

    def gate_values(self, v: ArrayLike, kinetic: Mapping[str, Array]) -> dict[str, Array]:
        """All gate values: the kinetic ones as given, instantaneous ones at `x∞(v)`,
        dependent ones from their function."""
        values = dict(kinetic)
        for k, g in self.gates.items():
            if isinstance(g, InstantaneousGate):
                values[k] = g.inf(v)
        base = dict(values)
        for k, g in self.gates.items():
            if isinstance(g, DependentGate):
                values[k] = g.fn(v, base)
        return values

    def gate_inf(self, v: ArrayLike) -> dict[str, Array]:
        """Steady-state values `x∞(v)` of the kinetic and instantaneous gates at `v`
        [mV] (dependent gates: from the steady-state values)."""
        v = jnp.asarray(v, self.dtype)
        inf = {k: g.inf(v) for k, g in self.gates.items() if not isinstance(g, DependentGate)}
        return self.gate_values(v, inf)

    def gate_tau(self, v: ArrayLike) -> dict[str, Array]:
        """Time constants [ms] of the kinetic gates at `v` [mV]."""
        v = jnp.asarray(v, self.dtype)
        return {k: self.gates[k].tau(v) for k in self.kinetic_gates}

    def steady_state(self, v: ArrayLike) -> MembraneState:
        """The state with `v` [mV] and every kinetic gate at its steady state."""
        v = jnp.asarray(v, self.dtype)
        gates = {k: self.gates[k].inf(v) for k in self.kinetic_gates}
        shape = jnp.broadcast_shapes(jnp.shape(v), *(jnp.shape(x) for x in gates.values()))
        return MembraneState(v=jnp.broadcast_to(v, shape), gates=gates)

    # ---- currents and vector field -------------------------------------------------

    def currents(self, state: MembraneState) -> dict[str, Array]:
        """Current density [µA/cm²] of every channel (positive outward) at `state`.

        ```pycon
        >>> import hhjax
        >>> hh = hhjax.Membrane.hodgkin_huxley()
        >>> i = hh.currents(hh.steady_state(-65.0))
        >>> {k: round(float(i[k]), 2) for k in sorted(i)}
        {'k': 4.4, 'leak': -3.18, 'na': -1.22}

        ```
        """
        values = self.gate_values(state.v, state.gates)
        return {k: ch.current(state.v, values) for k, ch in self.channels.items()}

    def steady_state_current(self, v: ArrayLike) -> Array:
        """Total ionic current [µA/cm²] with every gate at steady state at `v` [mV]."""
        return _total(self.currents(self.steady_state(v)))

    def derivatives(self, state: MembraneState, i_stim: ArrayLike) -> MembraneState:
        """`dv/dt` [mV/ms] and the kinetic gates' derivatives [1/ms] at `state` under
        the stimulus current `i_stim` [µA/cm²]."""
        lo, hi = GATE_GUARD
        v = state.v
        vg = jnp.clip(v, -V_GUARD, V_GUARD)
        kin = {k: jnp.clip(x, lo, hi) for k, x in state.gates.items()}
        values = self.gate_values(vg, kin)
        i_ion = _total({k: ch.current(vg, values) for k, ch in self.channels.items()})
        dv = (i_stim - i_ion) / self.c_m
        dg = {k: self.gates[k].derivative(x, v) for k, x in state.gates.items()}
        return MembraneState(v=dv, gates=dg)

    def default_v_guess(self) -> Array:
        """A starting voltage for the resting-state search [mV]: the conductance-
        weighted mean reversal of the gate-less (leak) channels, else −65 mV."""
        leaks = [ch for ch in self.channels.values() if not ch.gates]
        if not leaks:
            return jnp.asarray(-65.0, self.dtype)
        g = sum(ch.g for ch in leaks)
        ge = sum(ch.g * ch.e for ch in leaks)
        return jnp.where(g > 0, ge / jnp.where(g > 0, g, 1.0), leaks[0].e)

    # ---- presets -------------------------------------------------------------------

    @classmethod
    def hodgkin_huxley(cls, params: HHParams | None = None, *, reduced: bool = False) -> Membrane:
        """The HH model of `params` (default `HHParams()`) as a composed membrane:
        channels `na` (m³h), `k` (n⁴), `leak`; gates `m`, `h`, `n` with `params`'
        rate functions (kinetics, temperature factor and voltage shift included), so
        it gives the same results as simulating `params` directly.

        `reduced=True` gives the two-variable reduction of seed 003: `m`
        instantaneous (`m = m∞(v)`) and `h = 0.89 − 1.1 n`; state `(v, n)`.

        **Raises:** `TypeError` when `params` is not an [`hhjax.HHParams`][].

        ```pycon
        >>> import hhjax
        >>> hhjax.Membrane.hodgkin_huxley(reduced=True).kinetic_gates
        ('n',)

        ```
        """
        if params is None:
            params = HHParams()
        if not isinstance(params, HHParams):
            raise TypeError(f"`params` must be an hhjax.HHParams, got {type(params).__name__}.")
        gates = {x: RateGate(_HHRate(params, f"alpha_{x}"), _HHRate(params, f"beta_{x}")) for x in "mhn"}
        if reduced:
            gates["m"] = InstantaneousGate(gates["m"])
            gates["h"] = DependentGate(_reduced_h)
        channels = {
            "na": Channel(params.g_na, params.e_na, {"m": 3, "h": 1}),
            "k": Channel(params.g_k, params.e_k, {"n": 4}),
            "leak": Channel(params.g_leak, params.e_leak),
        }
        return cls(channels, gates, params.c_m)

    @classmethod
    def reduced_hh(
        cls,
        c_m: ArrayLike = 1.0,
        g_na: ArrayLike = 2.0,
        g_k: ArrayLike = 1.44,
        g_leak: ArrayLike = 0.2,
        e_na: ArrayLike = 50.0,
        e_k: ArrayLike = -80.0,
        e_leak: ArrayLike = -65.0,
        *,
        v_half_m: ArrayLike = -40.0,
        k_m: ArrayLike = 7.0,
        v_half_n: ArrayLike = -45.0,
        k_n: ArrayLike = 15.0,
        tau_n: ArrayLike = 10.0,
        dtype=None,
    ) -> Membrane:
        """The two-variable reduced HH model of seed 003 (state `v`, `n`).

        `m = m∞(v) = 1/(1 + exp((v_half_m − v)/k_m))` (instantaneous),
        `h = 0.89 − 1.1 n`, `dn/dt = (n∞(v) − n)/tau_n` with
        `n∞(v) = 1/(1 + exp((v_half_n − v)/k_n))`; channels `na` (m³h), `k` (n⁴),
        `leak`. Defaults are that document's values: `c_m` [µF/cm²] 1,
        `g_na`, `g_k`, `g_leak` [mS/cm²] 2, 1.44, 0.2, `e_na`, `e_k`, `e_leak` [mV]
        50, −80, −65, half-activations and slopes [mV] −40/7 (m), −45/15 (n),
        `tau_n` [ms] 10.

        ```pycon
        >>> import hhjax
        >>> m = hhjax.Membrane.reduced_hh(g_leak=0.3)
        >>> m.kinetic_gates, float(m.channels["leak"].g)
        (('n',), 0.3)

        ```
        """
        gates = {
            "m": InstantaneousGate(Sigmoid(v_half_m, k_m)),
            "n": InfTauGate(Sigmoid(v_half_n, k_n), Constant(tau_n)),
            "h": DependentGate(_reduced_h),
        }
        channels = {
            "na": Channel(g_na, e_na, {"m": 3, "h": 1}),
            "k": Channel(g_k, e_k, {"n": 4}),
            "leak": Channel(g_leak, e_leak),
        }
        return cls(channels, gates, c_m, dtype=dtype)


def _reduced_h(v, g):
    return 0.89 - 1.1 * g["n"]


class _HHRate(eqx.Module):
    """One of `HHParams`' six rates as a voltage function (temperature factor and
    voltage shift included; the HHParams arrays stay differentiable)."""

    params: HHParams
    name: str = eqx.field(static=True)

    def __call__(self, v):
        return self.params.rates(v)[self.name]


def _total(currents: Mapping[str, Array]) -> Array:
    out = None
    for x in currents.values():
        out = x if out is None else out + x
    return out


def check_model(params, *, scalar: bool = True) -> None:
    """Raise `TypeError` unless `params` is an `HHParams` or `Membrane`; with
    `scalar`, `ValueError` if it is batched (one neuron: batch with `jax.vmap`)."""
    if not isinstance(params, (HHParams, Membrane)):
        raise TypeError(
            "`params` must be an hhjax.HHParams or hhjax.Membrane, got "
            f"{type(params).__name__}."
        )
    if scalar:
        if isinstance(params, HHParams):
            check_params_scalar(params)
        else:
            check_membrane_scalar(params)


def check_membrane_scalar(model: Membrane) -> None:
    """Raise if a membrane is batched: simulate takes one neuron; use `jax.vmap`."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(model):
        if eqx.is_array(leaf) and leaf.shape != ():
            name = jax.tree_util.keystr(path)
            raise ValueError(
                f"`params{name}` has shape {leaf.shape}, but `simulate` takes one neuron's "
                "model (scalar arrays). Batch with `jax.vmap`, e.g. "
                "`jax.vmap(lambda m: hhjax.simulate(m, stim, t_end=...))(membranes)`."
            )

