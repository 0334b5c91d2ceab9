"""The Hodgkin–Huxley vector field, its state, currents, steady and resting states."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike

from ._channels import Membrane, MembraneState
from ._compile import eager_lean_jit
from ._params import HHParams


class HHState(eqx.Module):
    """State of one HH neuron (or, with a leading axis, its trajectory).

    **Fields:**

    - `v`: membrane potential [mV].
    - `m`, `h`, `n`: gate open fractions [dimensionless, in [0, 1]].

    Scalar fields for one neuron; batch with `jax.vmap`. The fields are stored as
    given (no dtype conversion): [`hhjax.simulate`][] converts an initial state to
    the dtype of the parameters. In a [`hhjax.SimulationResult`][] each field has
    shape `(T,)`.

    **Example:**

    ```pycon
    >>> import hhjax
    >>> y0 = hhjax.HHState(v=-65.0, m=0.05, h=0.6, n=0.32)   # e.g. simulate(..., y0=y0)
    >>> s = hhjax.steady_state(hhjax.HHParams(), -65.0)     # an HHState too
    >>> print(f"v = {float(s.v):.2f} mV, n = {float(s.n):.4f}")
    v = -65.00 mV, n = 0.3177

    ```
    """

    v: Array
    m: Array
    h: Array
    n: Array


class IonicCurrents(eqx.Module):
    """Ionic current densities [µA/cm²], positive outward.

    **Fields:** `i_na`, `i_k`, `i_leak`, of the broadcast shape of the state and
    parameters; property `total`. Returned by [`hhjax.ionic_currents`][].

    ```pycon
    >>> import hhjax
    >>> float(hhjax.IonicCurrents(i_na=-1.5, i_k=4.5, i_leak=-3.0).total)
    0.0

    ```
    """

    i_na: Array
    i_k: Array
    i_leak: Array

    @property
    def total(self) -> Array:
        """Sum of the ionic currents [µA/cm²], positive outward."""
        return self.i_na + self.i_k + self.i_leak


def ionic_currents(params: HHParams, state: HHState) -> IonicCurrents:
    """Ionic current densities [µA/cm²] (positive outward) of `state` under `params`.

    Works elementwise on any broadcastable shapes, e.g. on a whole trajectory
    `result.state` (`(T,)` fields); the dtype follows `params` and `state`.

    **Returns:** an [`hhjax.IonicCurrents`][] (`i_na`, `i_k`, `i_leak`, `total`).

    **Example:** near rest (−65 mV, gates at steady state) the currents almost
    cancel; sodium and leak flow in (negative), potassium out (positive).

    ```pycon
    >>> import hhjax
    >>> p = hhjax.HHParams()
    >>> c = hhjax.ionic_currents(p, hhjax.steady_state(p, -65.0))
    >>> [round(float(x), 2) for x in (c.i_na, c.i_k, c.i_leak)]
    [-1.22, 4.4, -3.18]
    >>> abs(float(c.total)) < 0.01           # µA/cm²: the resting state is -64.996 mV
    True

    ```
    """
    v = state.v
    return IonicCurrents(
        i_na=params.g_na * state.m**3 * state.h * (v - params.e_na),
        i_k=params.g_k * state.n**4 * (v - params.e_k),
        i_leak=params.g_leak * (v - params.e_leak),
    )


def gate_derivatives(params: HHParams, state: HHState) -> tuple[Array, Array, Array]:
    """`(dm/dt, dh/dt, dn/dt)` [1/ms] at `state` (`dx/dt = α(1−x) − βx`).

    Temperature-scaled rates of `params` at `state.v` [mV]; each derivative has
    the broadcast shape of the state and parameters.

    ```pycon
    >>> import hhjax
    >>> p = hhjax.HHParams()
    >>> dm, dh, dn = hhjax.gate_derivatives(p, hhjax.steady_state(p, -50.0))
    >>> max(abs(float(dm)), abs(float(dh)), abs(float(dn))) < 1e-12   # x = x∞
    True

    ```
    """
    r = params.rates(state.v)
    dm = r["alpha_m"] * (1 - state.m) - r["beta_m"] * state.m
    dh = r["alpha_h"] * (1 - state.h) - r["beta_h"] * state.h
    dn = r["alpha_n"] * (1 - state.n) - r["beta_n"] * state.n
    return dm, dh, dn


#: Guards of the vector field (see `hh_derivatives`): the driving force uses v clamped
#: to v_shift ± V_GUARD mV, and the conductances use gates clamped to GATE_GUARD.
V_GUARD = 1000.0
GATE_GUARD = (-1.0, 2.0)


def hh_derivatives(params: HHParams, state: HHState, i_stim: ArrayLike) -> HHState:
    """Time derivative of `state` for a given stimulus current `i_stim` [µA/cm²].

    Returns an `HHState` holding `dv/dt` [mV/ms] and the gate derivatives [1/ms].

    The membrane current is computed with `v` clamped to `v_shift ± 1000` mV and the
    gates clamped to [−1, 2] (far outside anything a valid trajectory visits), so the
    vector field stays finite at the wild trial states an adaptive solver may probe
    before rejecting a step; otherwise those rejected steps overflow and their NaNs
    leak into reverse-mode gradients.

    Elementwise: any broadcastable shapes of `state`, `params` and `i_stim`.

    ```pycon
    >>> import hhjax
    >>> p = hhjax.HHParams()
    >>> d = hhjax.hh_derivatives(p, hhjax.steady_state(p, -65.0), 10.0)
    >>> round(float(d.v), 3)      # ≈ 10 µA/cm² / 1 µF/cm²: the cell depolarises
    10.004

    ```
    """
    lo, hi = GATE_GUARD
    guarded = HHState(
        v=jnp.clip(state.v, params.v_shift - V_GUARD, params.v_shift + V_GUARD),
        m=jnp.clip(state.m, lo, hi),
        h=jnp.clip(state.h, lo, hi),
        n=jnp.clip(state.n, lo, hi),
    )
    i_ion = ionic_currents(params, guarded).total
    dv = (i_stim - i_ion) / params.c_m
    dm, dh, dn = gate_derivatives(params, state)
    return HHState(v=dv, m=dm, h=dh, n=dn)


def hh_vector_field(t: ArrayLike, y: HHState, args) -> HHState:
    """The HH vector field in diffrax's signature: `f(t, y, args)`.

    **Arguments:**

    - `t`: time [ms].
    - `y`: an [`hhjax.HHState`][].
    - `args`: `(params, stimulus)`: an [`hhjax.HHParams`][] (or an
      [`hhjax.Membrane`][], with a `MembraneState` as `y`) and a stimulus (any
      callable `t -> µA/cm²`, e.g. an [`hhjax.StepCurrent`][]), or `None` for no
      stimulus.

    **Returns:** `HHState` of derivatives (mV/ms and 1/ms).

    **Example:**

    ```pycon
    >>> import hhjax
    >>> p, stim = hhjax.HHParams(), hhjax.StepCurrent(10.0, 1.0, 5.0)
    >>> y = hhjax.steady_state(p, -65.0)
    >>> d = hhjax.hh_vector_field(2.0, y, (p, stim))    # t = 2 ms: the step is on
    >>> round(float(d.v), 3)                            # mV/ms
    10.004

    ```

    Use it directly as a diffrax term (what [`hhjax.simulate`][] does, plus the
    stimulus edges as jump times):

    ```python
    import diffrax
    term = diffrax.ODETerm(hhjax.hh_vector_field)
    sol = diffrax.diffeqsolve(term, diffrax.Tsit5(), 0.0, 20.0, 0.01, y,
                              args=(p, stim),
                              stepsize_controller=diffrax.PIDController(1e-6, 1e-6))
    ```
    """
    params, stimulus = args
    if stimulus is None:
        i_stim = jnp.zeros((), dtype=params.dtype)
    else:
        i_stim = stimulus(t)
    return model_derivatives(params, y, i_stim)


def steady_state(params: HHParams | Membrane, v: ArrayLike) -> HHState | MembraneState:
    """The state with `v` [mV] clamped and every gate at its steady state
    `x∞(v) = α/(α+β)`. `v` may have any shape. `params` is an [`hhjax.HHParams`][]
    (→ `HHState`) or an [`hhjax.Membrane`][] (→ `MembraneState`); the fields have
    the broadcast shape of `v` and the parameters, and the parameters' dtype.

    ```pycon
    >>> import jax.numpy as jnp, hhjax
    >>> s = hhjax.steady_state(hhjax.HHParams(), jnp.array([-80.0, -65.0, -50.0]))
    >>> s.v.shape, [round(float(m), 4) for m in s.m]
    ((3,), [0.008, 0.0529, 0.2508])

    ```
    """
    if isinstance(params, Membrane):
        return params.steady_state(v)
    inf = params.gate_inf(v)
    v = jnp.broadcast_to(jnp.asarray(v, dtype=params.dtype), jnp.shape(inf["m"]))
    return HHState(v=v, m=inf["m"], h=inf["h"], n=inf["n"])


def steady_state_current(params: HHParams | Membrane, v: ArrayLike) -> Array:
    """Total ionic current [µA/cm²] with the gates at steady state at `v` [mV]
    (the I–V curve whose zeros are the resting states), of the shape of `v`.

    ```pycon
    >>> import hhjax
    >>> round(float(hhjax.steady_state_current(hhjax.HHParams(), -60.0)), 3)
    8.874

    ```
    """
    if isinstance(params, Membrane):
        return params.steady_state_current(v)
    return ionic_currents(params, steady_state(params, v)).total


def resting_state(
    params: HHParams | Membrane,
    i_hold: ArrayLike = 0.0,
    *,
    v_guess: ArrayLike | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int = 256,
    throw: bool = True,
) -> HHState:
    """The resting state (equilibrium) of `params` under a constant current.

    Solves `Σ i_ion(v, m∞(v), h∞(v), n∞(v)) = i_hold` for `v` by Newton's method,
    so it runs inside `jit`/`vmap` and is differentiable with respect to the
    parameters and `i_hold` (implicit function theorem, forward and reverse mode).

    **Arguments:**

    - `params`: an [`hhjax.HHParams`][] or [`hhjax.Membrane`][] (one neuron; `vmap`
      for batches).
    - `i_hold`: constant holding current [µA/cm²] (default 0).
    - `v_guess`: starting point [mV] (default `e_leak`; for a membrane, the mean
      reversal of its leak channels); with several equilibria the one found is the
      one Newton reaches from here. A solve not converged after 32 Newton steps
      continues safeguarded by bisection on the bracket −200…100 mV (when the
      steady-state current changes sign there): a step that would leave the
      bracket or does not converge fast enough is replaced by a bisection, so a
      local maximum of the I–V curve cannot make Newton cycle.
    - `rtol`, `atol`: tolerances on `v` (defaults: 1e-10 mV scale in float64, 1e-5
      in float32).
    - `max_steps`: Newton iterations at most (the bisection safeguard engages
      after 32).
    - `throw`: raise when Newton has not converged (see below).

    **Returns:** an [`hhjax.HHState`][] (a `MembraneState` for a membrane) with
    scalar fields in the dtype of `params`.

    **Raises:** with `throw=True`, an `equinox.EquinoxRuntimeError` when Newton
    does not converge to a finite potential within `max_steps`; with
    `throw=False` the last iterate is returned unchecked.

    **Example:**

    ```pycon
    >>> import hhjax
    >>> p = hhjax.HHParams()
    >>> round(float(hhjax.resting_state(p).v), 3)
    -64.996
    >>> round(float(hhjax.resting_state(p, i_hold=2.0).v), 3)  # depolarised by 2 µA/cm²
    -63.482

    ```
    """
    args = _rest_arguments(params, i_hold, v_guess, rtol, atol)
    state, _ = _resting_state(params, *args, int(max_steps), bool(throw))
    return state


def _rest_arguments(params, i_hold, v_guess=None, rtol=None, atol=None):
    """`(i_hold, v0, rtol, atol)` of the Newton solve, with the defaults of
    `resting_state` (start at `e_leak` / the membrane's leak reversal; tolerance
    1e-10 in float64, 1e-5 in float32)."""
    dtype = params.dtype
    if v_guess is None:
        v_guess = params.default_v_guess() if isinstance(params, Membrane) else params.e_leak
    tol = 1e-10 if dtype == jnp.float64 else 1e-5
    return (
        jnp.asarray(i_hold, dtype=dtype),
        jnp.asarray(v_guess, dtype=dtype),
        tol if rtol is None else float(rtol),
        tol if atol is None else float(atol),
    )


def resting_state_checked(params: HHParams | Membrane, i_hold: ArrayLike = 0.0):
    """`(state, converged)`: [`hhjax.resting_state`][] with the default start and
    tolerances that never raises; `converged` is a boolean array (False when Newton
    failed or the state is non-finite, e.g. for NaN parameters)."""
    return _resting_state(params, *_rest_arguments(params, i_hold), 256, False)


#: [mV] the bracket of the safeguarded Newton solve of the resting potential
_BRACKET_MV = (-200.0, 100.0)
#: Newton steps before the bisection safeguard may take over
_PLAIN_NEWTON_STEPS = 32


def _rest_residual(v, args):
    p, i = args
    return steady_state_current(p, v) - i


def _resting_state_impl(params, i_hold, v0, rtol, atol, max_steps, throw):
    """Newton solve of the resting state, compiled once per model structure (a
    module-level residual, so repeated calls outside `jit` hit the cache). Returns
    `(state, converged)`: with `throw=False` the caller decides what a failure means
    (`simulate` turns it into a failed result).

    A scalar Newton iteration in a `while_loop` on parameters held constant, then one
    more Newton step on the live parameters: at the root that step's derivative is
    the implicit-function-theorem one, `dv/dθ = -(∂f/∂θ)/(∂f/∂v)`, for forward and
    reverse mode. (Written out rather than `optimistix.root_find`: it traces in
    0.05–0.1 s instead of 0.3 s, for about the same XLA compile time.)"""
    dynamic, static = eqx.partition(params, eqx.is_array)
    fixed = eqx.combine(jax.lax.stop_gradient(dynamic), static)
    i_fixed = jax.lax.stop_gradient(i_hold)

    def residual_and_slope(v):
        return jax.jvp(lambda u: _rest_residual(u, (fixed, i_fixed)), (v,), (jnp.ones_like(v),))

    def converged(v, dv):
        return jnp.abs(dv) <= atol + rtol * jnp.abs(v)

    # safeguarded Newton (as Numerical Recipes' `rtsafe`): `xl`/`xh` bracket a root
    # (residual < 0 / > 0); after `_PLAIN_NEWTON_STEPS` plain steps, a Newton step
    # that would leave the bracket, or that does not shrink fast enough, is replaced
    # by bisection. Plain Newton cycles where the steady-state I–V curve has a local
    # maximum near the start (a K current with a window of activation).
    v0 = jax.lax.stop_gradient(v0)
    xl0 = jnp.full_like(v0, _BRACKET_MV[0])
    xh0 = jnp.full_like(v0, _BRACKET_MV[1])
    # elementwise, as the whole solve
    bracketed = (_rest_residual(xl0, (fixed, i_fixed)) < 0) & (
        _rest_residual(xh0, (fixed, i_fixed)) > 0)

    def cond(carry):
        k, v, dv, _, _, _ = carry
        return (k < max_steps) & jnp.invert(converged(v, dv)) & jnp.isfinite(v)

    def body(carry):
        k, v, dv, dv_old, xl, xh = carry
        r, slope = residual_and_slope(v)
        xl = jnp.where(bracketed & (r < 0), v, xl)
        xh = jnp.where(bracketed & (r > 0), v, xh)
        newton = v - r / slope
        inside = (newton - xl) * (newton - xh) < 0
        fast = jnp.abs(2.0 * r) <= jnp.abs(dv_old * slope)  # shrinking by half per two steps
        # plain Newton first (it converges in < 10 steps on every model we know);
        # the safeguard only takes over from a solve that has not converged by then
        bisect = (bracketed & (k >= _PLAIN_NEWTON_STEPS)
                  & jnp.invert(jnp.isfinite(newton) & inside & fast))
        v_new = jnp.where(bisect, 0.5 * (xl + xh), newton)
        return k + 1, v_new, v_new - v, dv, xl, xh

    width = xh0 - xl0
    _, v, dv, _, _, _ = jax.lax.while_loop(
        cond, body, (jnp.asarray(0), v0, width, width, xl0, xh0)
    )
    done = converged(v, dv)
    _, slope = residual_and_slope(v)
    v = v - _rest_residual(v, (params, i_hold)) / slope
    ok = done & jnp.isfinite(v)
    if throw:
        v = eqx.error_if(
            v,
            jnp.invert(ok),
            "hhjax.resting_state: Newton's method did not converge to a finite resting "
            "potential within `max_steps` (try another `v_guess` [mV] or a larger "
            "`max_steps`; check the parameters are finite).",
        )
    return steady_state(params, v), ok


# eager calls on one neuron are compile-bound: compiled with the lean options
_resting_state = eager_lean_jit(_resting_state_impl)


def model_derivatives(params, state, i_stim):
    """Time derivative of `state` under `params` ([`hhjax.HHParams`][] or
    [`hhjax.Membrane`][]) for the stimulus current `i_stim` [µA/cm²].

    Dispatches to [`hhjax.hh_derivatives`][] (→ `HHState`: mV/ms, 1/ms) or
    `Membrane.derivatives` (→ `MembraneState`).

    ```pycon
    >>> import hhjax
    >>> m = hhjax.Membrane.hodgkin_huxley()
    >>> d = hhjax.model_derivatives(m, m.steady_state(-65.0), 10.0)
    >>> round(float(d.v), 3), sorted(d.gates)
    (10.004, ['h', 'm', 'n'])

    ```
    """
    if isinstance(params, Membrane):
        return params.derivatives(state, i_stim)
    return hh_derivatives(params, state, i_stim)


def jacobian_at(params: HHParams | Membrane, state, i_stim: ArrayLike = 0.0) -> Array:
    """The Jacobian [1/ms] of the vector field at `state` (by forward-mode autodiff).

    For an [`hhjax.HHParams`][] it is 4×4 in the order `(v, m, h, n)`; for an
    [`hhjax.Membrane`][] the order is `v` then its kinetic gates in
    `membrane.kinetic_gates` order. `state` has scalar fields; `i_stim` [µA/cm²]
    is the constant stimulus current. The dtype is that of the parameters.

    ```pycon
    >>> import jax, hhjax
    >>> p = hhjax.HHParams()
    >>> J = jax.jit(hhjax.jacobian_at)(p, hhjax.steady_state(p, -65.0))  # one compile
    >>> J.shape, round(float(J[0, 0]), 3)       # ∂(dv/dt)/∂v [1/ms]
    ((4, 4), -0.677)

    ```
    """
    if isinstance(params, Membrane):
        names = params.kinetic_gates

        def g(y):
            s = MembraneState(v=y[0], gates={k: y[i + 1] for i, k in enumerate(names)})
            d = params.derivatives(s, i_stim)
            return jnp.stack([d.v, *(d.gates[k] for k in names)])

        y = jnp.stack([state.v, *(state.gates[k] for k in names)])
        return jax.jacfwd(g)(y)

    def f(y):
        s = HHState(*y)
        d = hh_derivatives(params, s, i_stim)
        return jnp.stack([d.v, d.m, d.h, d.n])

    y = jnp.stack([state.v, state.m, state.h, state.n])
    return jax.jacfwd(f)(y)
