"""`simulate`: integrate one HH neuron under a stimulus with a diffrax solver."""

from __future__ import annotations

import math
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jaxtyping import Array, ArrayLike

from ._channels import Membrane, MembraneState, check_model
from ._compile import all_concrete, eager_lean_jit
from ._model import (
    HHState,
    hh_vector_field,
    ionic_currents,
    model_derivatives,
    resting_state_checked,
)
from ._params import HHParams, is_concrete
from ._stimulus import (
    AbstractStimulus,
    OUNoiseCurrent,
    WhiteNoiseCurrent,
    noise_sources,
)

#: Default output sampling interval [ms].
DEFAULT_SAVE_EVERY = 0.01
#: Default step [ms] of fixed-step solvers (and first trial step of adaptive ones).
DEFAULT_DT0 = 0.01
#: Default tolerances of the default adaptive controller.
DEFAULT_RTOL = 1e-6
DEFAULT_ATOL = 1e-6


class RESULTS(diffrax.RESULTS):  # pyright: ignore
    """Outcome of a simulation: diffrax's codes plus `nonfinite_state`.

    `result.result` of a [`hhjax.SimulationResult`][] is one of these (an array
    under `jax.vmap`); `RESULTS[code]` is its message (empty for success).

    ```pycon
    >>> import hhjax
    >>> res = hhjax.simulate(hhjax.HHParams(), hhjax.StepCurrent(10.0, 2.0, 20.0),
    ...                      t_end=20.0)
    >>> bool(res.result == hhjax.RESULTS.successful)
    True
    >>> "non-finite" in hhjax.RESULTS[hhjax.RESULTS.nonfinite_state]
    True

    ```
    """

    nonfinite_state = (
        "The state became non-finite (NaN or inf). The step size may be too large "
        "for this solver (try a smaller `dt0`, an adaptive solver, or "
        "hhjax.ExponentialEuler), or a parameter is NaN/inf."
    )
    no_resting_state = (
        "No resting state was found for the initial condition (Newton did not "
        "converge, or a parameter is NaN/inf); pass `y0=` explicitly."
    )


class SimulationError(RuntimeError):
    """Raised by [`hhjax.simulate`][] (with `throw=True`) when a solve fails: the
    step budget `max_steps` was exhausted or the state became non-finite. The
    message names the failure, the steps taken and `max_steps`. Also raised by the
    analysis functions ([`hhjax.rheobase`][], ...) and by
    [`hhjax.simulate_population`][]. Inside `jit`/`vmap` the same failure surfaces
    as an `equinox.EquinoxRuntimeError`.

    ```pycon
    >>> import hhjax
    >>> issubclass(hhjax.SimulationError, RuntimeError)
    True

    ```
    """


class SimulationResult(eqx.Module):
    """The output of [`hhjax.simulate`][].

    **Fields:**

    - `t`: sample times [ms], shape `(T,)`.
    - `state`: an [`hhjax.HHState`][] (a [`hhjax.MembraneState`][] for a
      [`hhjax.Membrane`][]) whose fields have shape `(T,)`.
    - `params`, `stimulus`: what was simulated (so currents can be derived).
    - `noise`: tuple of Ornstein–Uhlenbeck deviations [µA/cm²], each `(T,)`, one per
      [`hhjax.OUNoiseCurrent`][] in the stimulus (empty otherwise).
    - `result`: a [`hhjax.RESULTS`][] code; check `successful` when `throw=False`.
    - `stats`: diffrax's statistics (`num_steps`, `num_accepted_steps`, ...).

    **Properties:** `v` [mV], `m`, `h`, `n`; ionic currents `i_na`, `i_k`,
    `i_leak`, `i_ion` [µA/cm², positive outward]; `i_stim` [µA/cm², positive
    inward: the deterministic part plus any OU noise]; `dvdt` [mV/ms].
    **Methods:** `gate(name)` (any gate of a membrane, including instantaneous and
    dependent ones), `currents()` (channel name → current density [µA/cm²]).
    For a membrane, `m`/`h`/`n` and `i_na`/`i_k`/`i_leak` exist when it has gates /
    channels of those names (`na`, `k`, `leak`); otherwise they raise `KeyError`.

    Every array has the dtype of `params`. Under `jax.vmap` every field gets the
    batch axes in front: `(batch, T)`.

    **Example:**

    ```pycon
    >>> import hhjax
    >>> res = hhjax.simulate(hhjax.HHParams(), hhjax.StepCurrent(10.0, 2.0, 20.0),
    ...                      t_end=20.0)
    >>> res.t.shape, res.v.shape, res.i_ion.shape, bool(res.successful)
    ((2001,), (2001,), (2001,), True)
    >>> float(res.t[1] - res.t[0])        # default save_every [ms]
    0.01
    >>> float(res.i_stim[0]), float(res.i_stim[500])     # µA/cm² at 0 and 5 ms
    (0.0, 10.0)
    >>> sorted(res.currents())
    ['k', 'leak', 'na']

    ```
    """

    t: Array
    state: HHState | MembraneState
    params: HHParams | Membrane
    stimulus: AbstractStimulus | None
    noise: tuple[Array, ...]
    result: RESULTS
    stats: dict[str, Any]

    @property
    def v(self) -> Array:
        """Membrane potential [mV], shape `(T,)`."""
        return self.state.v

    @property
    def m(self) -> Array:
        """Na⁺ activation gate [dimensionless], shape `(T,)`."""
        return self.gate("m")

    @property
    def h(self) -> Array:
        """Na⁺ inactivation gate [dimensionless], shape `(T,)`."""
        return self.gate("h")

    @property
    def n(self) -> Array:
        """K⁺ activation gate [dimensionless], shape `(T,)`."""
        return self.gate("n")

    def gate(self, name: str) -> Array:
        """The gate `name` [dimensionless] over time, shape `(T,)`."""
        if isinstance(self.state, HHState):
            if name not in ("m", "h", "n"):
                raise KeyError(f"an HH simulation has gates m, h, n; got {name!r}.")
            return getattr(self.state, name)
        values = self.params.gate_values(self.state.v, self.state.gates)
        if name not in values:
            raise KeyError(f"this membrane has gates {sorted(values)}; got {name!r}.")
        return jnp.broadcast_to(values[name], jnp.shape(self.state.v))

    def currents(self) -> dict[str, Array]:
        """Channel name → current density [µA/cm²] (positive outward), each `(T,)`."""
        if isinstance(self.state, HHState):
            c = ionic_currents(self.params, self.state)
            return {"na": c.i_na, "k": c.i_k, "leak": c.i_leak}
        return self.params.currents(self.state)

    def _channel(self, name: str) -> Array:
        c = self.currents()
        if name not in c:
            raise KeyError(f"this model has channels {sorted(c)}; no {name!r}.")
        return c[name]

    @property
    def successful(self) -> Array:
        """Boolean array: did the solve succeed?"""
        return self.result == RESULTS.successful

    @property
    def i_na(self) -> Array:
        """Na⁺ current density [µA/cm²], positive outward."""
        return self._channel("na")

    @property
    def i_k(self) -> Array:
        """K⁺ current density [µA/cm²], positive outward."""
        return self._channel("k")

    @property
    def i_leak(self) -> Array:
        """Leak current density [µA/cm²], positive outward."""
        return self._channel("leak")

    @property
    def i_ion(self) -> Array:
        """Total ionic current density [µA/cm²], positive outward."""
        if isinstance(self.state, HHState):
            return ionic_currents(self.params, self.state).total
        return sum(self.currents().values())

    @property
    def i_stim(self) -> Array:
        """Injected current density [µA/cm²] at the sample times (deterministic part
        plus Ornstein–Uhlenbeck noise; white noise has no pointwise value)."""
        if self.stimulus is None:
            out = jnp.zeros_like(self.t)
        else:
            out = jax.vmap(self.stimulus)(self.t)
        for x in self.noise:
            out = out + x
        return out

    @property
    def dvdt(self) -> Array:
        """Time derivative of `v` [mV/ms] at the samples (drift part)."""
        return model_derivatives(self.params, self.state, self.i_stim).v


# --------------------------------------------------------------------------------------
# validation helpers


def _check_time(name: str, value: Any) -> None:
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"`{name}` must be a number in ms, got {value!r}.")
    if jnp.shape(value) != ():
        raise ValueError(f"`{name}` must be a scalar time in ms, got shape {jnp.shape(value)}.")
    if is_concrete(value) and not np.isfinite(np.asarray(value)):
        raise ValueError(f"`{name}` must be finite (in ms), got {value!r}.")


def _concrete_float(name: str, value: Any) -> float:
    if not is_concrete(value):
        raise ValueError(
            f"`{name}` must be a concrete number (it fixes the number of output samples "
            "or steps); pass explicit `ts=` to use a traced end time."
        )
    return float(np.asarray(value))


def _scalar(x, dtype) -> Array:
    """`x` as a `dtype` array; Python/NumPy numbers are converted by NumPy (an eager
    `jnp` conversion would cost a small XLA compile on the first call)."""
    if isinstance(x, (int, float, np.number, np.ndarray)):
        return jax.device_put(np.asarray(x, dtype=np.dtype(dtype)))
    return jnp.asarray(x, dtype)


def _make_ts(t0, t_end, save_every, ts, dtype):
    if ts is not None and save_every is not None:
        raise ValueError("Pass at most one of `ts` and `save_every`.")
    if ts is not None:
        ts = jnp.asarray(ts, dtype=dtype)
        if ts.ndim != 1 or ts.shape[0] < 1:
            raise ValueError(f"`ts` must be a non-empty 1-D array of times in ms, got shape {ts.shape}.")
        if is_concrete(ts):
            tsn = np.asarray(ts)
            if not np.all(np.isfinite(tsn)):
                raise ValueError("`ts` must be finite (ms).")
            if np.any(np.diff(tsn) <= 0):
                raise ValueError(
                    "`ts` (sample times, ms) must be strictly increasing; got "
                    f"a non-increasing pair at index {int(np.argmax(np.diff(tsn) <= 0))}."
                )
            if is_concrete(t0) and is_concrete(t_end):
                if tsn[0] < float(t0) or tsn[-1] > float(t_end):
                    raise ValueError(
                        f"`ts` must lie within [t0, t_end] = [{float(t0)}, "
                        f"{float(t_end)}] ms, got [{tsn[0]}, {tsn[-1]}]."
                    )
        return ts
    if save_every is None:
        save_every = DEFAULT_SAVE_EVERY
    se = _concrete_float("save_every", save_every)
    if not (math.isfinite(se) and se > 0):
        raise ValueError(f"`save_every` must be > 0 ms, got {save_every!r}.")
    t0f = _concrete_float("t0", t0)
    t1f = _concrete_float("t_end", t_end)
    n = int(math.floor((t1f - t0f) / se * (1 + 1e-12) + 1e-9)) + 1
    # built in NumPy: an eager jnp expression costs a small XLA compile per op on the
    # first call (part of `simulate`'s compile time)
    return jax.device_put((t0f + se * np.arange(n, dtype=np.float64)).astype(np.dtype(dtype)))


def finite_rms_norm(x) -> Array:
    """Root-mean-square norm of a pytree that returns `inf` instead of NaN.

    diffrax's adaptive controllers compute the next step from the error norm; a trial
    step that overshoots into absurd voltages (e.g. a 2 ms step across a stimulus
    onset from rest) can give a NaN error estimate, which would make every later
    step size NaN and stall the solve. With this norm such a step is simply rejected
    and shrunk. [`hhjax.simulate`][] installs it in any `diffrax.PIDController` that
    uses diffrax's default norm.

    **Returns:** a scalar array (the dtype of the leaves).

    ```pycon
    >>> import jax.numpy as jnp, hhjax
    >>> round(float(hhjax.finite_rms_norm(jnp.array([3.0, 4.0]))), 4)   # √12.5
    3.5355
    >>> float(hhjax.finite_rms_norm(jnp.array([jnp.nan, 1.0])))
    inf

    ```
    """
    n = optx.rms_norm(x)
    return jnp.where(jnp.isfinite(n), n, jnp.inf)


def _with_finite_norm(controller):
    if isinstance(controller, diffrax.ClipStepSizeController):
        inner = _with_finite_norm(controller.controller)
        return eqx.tree_at(lambda c: c.controller, controller, inner)
    if isinstance(controller, diffrax.PIDController) and controller.norm is optx.rms_norm:
        return eqx.tree_at(lambda c: c.norm, controller, finite_rms_norm)
    return controller


#: Largest stable `|h·λ|` on the negative real axis of explicit Runge–Kutta solvers
#: (where `|R(h·λ)| = 1` for `y' = λy`), measured with one diffrax step each:
#: Tsit5 3.5, Dopri5 3.3, Dopri8 6.0, Bosh3 2.5, Heun/Midpoint/Ralston 2, Euler 2.
_STABILITY_BOUNDARY = (
    (diffrax.Tsit5, 3.5),
    (diffrax.Dopri5, 3.3),
    (diffrax.Dopri8, 6.0),
    (diffrax.Bosh3, 2.5),
    (diffrax.Heun, 2.0),
    (diffrax.Midpoint, 2.0),
    (diffrax.Ralston, 2.0),
    (diffrax.Euler, 2.0),
)

#: Adaptive steps are kept below this fraction of the solver's stability boundary
#: divided by the fastest rate of the state (|R(h·λ)| ≤ 0.4 for Tsit5).
STABILITY_MARGIN = 0.85


def _stability_boundary(solver) -> float | None:
    if isinstance(solver, diffrax.AbstractImplicitSolver):
        return None
    for cls, z in _STABILITY_BOUNDARY:
        if isinstance(solver, cls):
            return z
    return None


def fastest_rate(params: HHParams | Membrane, state) -> Array:
    """An upper estimate of the fastest decay rate [1/ms] of the linearised dynamics
    at `state`: the largest of the kinetic gates' `1/τ(v)` and the membrane's
    `g_total/c_m` (the diagonal of the Jacobian, which dominates its stiff
    eigenvalue in conductance-based models).

    An explicit Runge–Kutta step of size `h` is stable for this mode only when
    `h · rate` is inside the solver's stability region; [`hhjax.simulate`][] keeps
    its adaptive steps below that (see [`hhjax.StabilityLimit`][]).

    **Arguments:** `params`: an [`hhjax.HHParams`][] or [`hhjax.Membrane`][];
    `state`: its state ([`hhjax.HHState`][] / [`hhjax.MembraneState`][]; `v` [mV]).

    **Returns:** an array of the shape of `state.v` [1/ms].

    **Raises:** `TypeError` for another kind of model.

    ```pycon
    >>> import hhjax
    >>> p = hhjax.HHParams()
    >>> round(float(hhjax.fastest_rate(p, hhjax.steady_state(p, -65.0))), 2)  # 1/τ_m
    4.22

    ```
    """
    if not isinstance(params, (HHParams, Membrane)):
        raise TypeError(
            "fastest_rate needs an hhjax.HHParams or hhjax.Membrane, got "
            f"{type(params).__name__}."
        )
    v = state.v
    if isinstance(params, HHParams):
        r = params.rates(v)
        rates = [r["alpha_m"] + r["beta_m"], r["alpha_h"] + r["beta_h"],
                 r["alpha_n"] + r["beta_n"]]
        g = (params.g_na * state.m**3 * state.h + params.g_k * state.n**4
             + params.g_leak)
    else:
        rates = [1.0 / t for t in params.gate_tau(v).values()]
        values = params.gate_values(v, state.gates)
        g = sum(ch.conductance(values) for ch in params.channels.values())
    out = jnp.abs(g) / params.c_m
    for r in rates:
        out = jnp.maximum(out, jnp.abs(r))
    return out


class StabilityLimit(diffrax.AbstractAdaptiveStepSizeController):
    """Wraps an adaptive step-size controller so that no step exceeds
    `boundary · margin / fastest_rate(state)` [ms].

    Why: in a quiescent stretch (sub-threshold, between spikes) an error-controlled
    explicit solver grows its steps until the fastest gate (e.g. `m`, τ ≈ 0.07 ms)
    sits at the edge of its stability region; the solution stays accurate (the
    controller rejects the steps that would let that mode grow), but derivatives
    through the solve are not error-controlled, and their fast component grows
    without bound: a gradient after 200 ms of sub-threshold input to the Pospischil
    RS cell was −2·10¹² instead of 0.81. Keeping `h · rate` inside the stability
    region makes forward- and reverse-mode derivatives match finite differences.
    The limit is computed from the accepted state (no gradient flows through it).

    [`hhjax.simulate`][] installs it around any adaptive controller when the solver
    is an explicit Runge–Kutta method it knows (Tsit5, Dopri5/8, Bosh3, Heun,
    Midpoint, Ralston, Euler).

    **Arguments:** `controller` (an adaptive diffrax controller), `params` (the
    model: [`hhjax.HHParams`][] or [`hhjax.Membrane`][]), `max_h_rate` (largest
    `h · rate`, dimensionless, > 0; steps are in ms, rates in 1/ms).

    **Raises:** `TypeError` for a controller that is not adaptive or another kind
    of model; `ValueError` for `max_h_rate` ≤ 0 or not finite.
    """

    controller: diffrax.AbstractAdaptiveStepSizeController
    params: Any
    max_h_rate: float = eqx.field(static=True)

    def __check_init__(self):
        if not isinstance(self.controller, diffrax.AbstractAdaptiveStepSizeController):
            raise TypeError(
                "StabilityLimit wraps an adaptive diffrax step-size controller (e.g. "
                f"diffrax.PIDController), got {type(self.controller).__name__}."
            )
        if not isinstance(self.params, (HHParams, Membrane)):
            raise TypeError(
                "StabilityLimit `params` must be an hhjax.HHParams or hhjax.Membrane, "
                f"got {type(self.params).__name__}."
            )
        if not (isinstance(self.max_h_rate, (int, float)) and math.isfinite(self.max_h_rate)
                and self.max_h_rate > 0):
            raise ValueError(
                f"`max_h_rate` must be a finite number > 0 (dimensionless h·rate), got "
                f"{self.max_h_rate!r}."
            )

    @property
    def rtol(self):
        return self.controller.rtol

    @property
    def atol(self):
        return self.controller.atol

    @property
    def norm(self):  # type: ignore[override]
        return self.controller.norm

    def wrap(self, direction):
        return eqx.tree_at(lambda c: c.controller, self, self.controller.wrap(direction))

    def _limit(self, y, like):
        state = y[0] if isinstance(y, tuple) else y
        rate = jax.lax.stop_gradient(fastest_rate(self.params, state))
        h = self.max_h_rate / jnp.maximum(rate, 1e-12)
        h = jnp.where(jnp.isfinite(h) & (h > 0), h, jnp.inf)
        return h.astype(jnp.result_type(like))

    def init(self, terms, t0, t1, y0, dt0, args, func, error_order):
        t1, state = self.controller.init(terms, t0, t1, y0, dt0, args, func, error_order)
        return jnp.minimum(t1, t0 + self._limit(y0, t1)), state

    def adapt_step_size(self, t0, t1, y0, y1_candidate, args, y_error, error_order,
                        controller_state):
        keep, next_t0, next_t1, made_jump, state, result = self.controller.adapt_step_size(
            t0, t1, y0, y1_candidate, args, y_error, error_order, controller_state
        )
        y = jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), y1_candidate, y0)
        next_t1 = jnp.minimum(next_t1, next_t0 + self._limit(y, next_t1))
        return keep, next_t0, next_t1, made_jump, state, result


def _adaptive_by_default(solver, noisy: bool) -> bool:
    """Default controller choice: adaptive (PID) for higher-order solvers with an error
    estimate; fixed steps for the low-order classics (Euler, Midpoint, Heun,
    Ralston), RK4, exponential Euler and for any solver on a noisy stimulus."""
    from ._solvers import RK4, ExponentialEuler

    fixed = (
        diffrax.Euler,
        diffrax.Midpoint,
        diffrax.Heun,
        diffrax.Ralston,
        RK4,
        ExponentialEuler,
    )
    if noisy or isinstance(solver, fixed):
        return False
    return isinstance(solver, diffrax.AbstractAdaptiveSolver)


def _default_max_steps(adaptive: bool, duration: float, dt0: float) -> int:
    if adaptive:
        return max(4096, int(math.ceil(200 * duration)))
    return int(math.ceil(duration / dt0 * (1 + 1e-9))) + 16


# --------------------------------------------------------------------------------------
# the jitted core


class _NoisyDrift(eqx.Module):
    """Drift of the state augmented with OU deviations."""

    def __call__(self, t, y, args):
        params, stimulus, ou = args
        hh, xs = y if ou else (y, ())
        i_stim = stimulus(t)
        for x in xs:
            i_stim = i_stim + x
        d = model_derivatives(params, hh, i_stim)
        dxs = tuple(-x / s.tau for x, s in zip(xs, ou))
        return (d, dxs) if ou else d


class _NoisyDiffusion(eqx.Module):
    """Diffusion coefficients (additive) of the augmented state, leafwise."""

    def __call__(self, t, y, args):
        params, stimulus, ou = args
        hh = y[0] if ou else y
        white = [s for s in noise_sources(stimulus) if isinstance(s, WhiteNoiseCurrent)]
        var = sum((s.sigma**2 for s in white), jnp.zeros((), params.dtype))
        zero = jnp.zeros((), params.dtype)
        dv = jnp.sqrt(var) / params.c_m if white else zero
        d_hh = jax.tree_util.tree_map(lambda x: jnp.zeros_like(x, params.dtype), hh)
        d_hh = eqx.tree_at(lambda s: s.v, d_hh, dv * jnp.ones_like(hh.v))
        dxs = tuple(s.sigma * jnp.sqrt(2.0 / s.tau) for s in ou)
        return (d_hh, dxs) if ou else d_hh


class _StepwiseBrownianPath(diffrax.AbstractBrownianPath):
    """Brownian increments (with space-time Lévy area) drawn per step from
    `fold_in(key, t0, t1)`, as `diffrax.UnsafeBrownianPath` does: O(1) per step.

    Valid for fixed step grids (each interval is queried with the same `(t0, t1)`,
    also when the reverse pass recomputes a step), which is the only way hhjax uses
    it; unlike `UnsafeBrownianPath` it is therefore accepted by
    `RecursiveCheckpointAdjoint`, so noisy simulations stay differentiable with
    respect to the parameters. Adaptive solves use a `VirtualBrownianTree` instead.
    """

    shape: Any = eqx.field(static=True)
    key: Any
    levy_area: type = eqx.field(static=True, default=diffrax.SpaceTimeLevyArea)

    @property
    def t0(self):
        return -jnp.inf

    @property
    def t1(self):
        return jnp.inf

    def evaluate(self, t0, t1=None, left=True, use_levy=False):
        path = diffrax.UnsafeBrownianPath(self.shape, self.key, self.levy_area)
        return path.evaluate(t0, t1, left, use_levy)


def _brownian_key(sources):
    key = sources[0].key
    for s in sources[1:]:
        key = jax.random.fold_in(key, jax.random.bits(s.key, (), jnp.uint32))
    return key


def _nonfinite(tree) -> Array:
    leaves = jax.tree_util.tree_leaves(tree)
    ok = jnp.array(True)
    for leaf in leaves:
        ok = ok & jnp.all(jnp.isfinite(leaf))
    return jnp.invert(ok)


def _fixed_grid_with_jumps(t0, t1, dt, n_regular, jumps):
    """Step times for a fixed-step solve that also land on the stimulus' jumps.

    The regular grid `t0 + dt * k` (k < n_regular) plus `t1`, plus, for every jump
    `j` inside `(t0, t1)`, the pair `prevfloat(j), nextfloat(j)`: the step that ends
    at `prevfloat(j)` sees only the current before the jump and the next one only the
    current after it (as diffrax's `ClipStepSizeController(jump_ts=...)` does for
    adaptive solvers). Without this, a stage evaluated on the wrong side of a jump
    costs O(dt) and caps every solver at first order. Jumps outside the interval
    become tiny steps (1e-6 dt) at `t0`. Strictly increasing by construction.
    """
    regular = t0 + dt * jnp.arange(n_regular, dtype=t0.dtype)
    inside = (jumps > t0) & (jumps < t1)
    below = jnp.nextafter(jumps, jnp.full_like(jumps, -jnp.inf))
    above = jnp.nextafter(jumps, jnp.full_like(jumps, jnp.inf))
    extra = jnp.where(inside, jnp.concatenate([below, above]).reshape(2, -1), t0)
    grid = jnp.sort(jnp.concatenate([regular, extra.reshape(-1)]))
    grid = jnp.where(grid >= t1, t0, grid)  # regular points at/after t1 (rounding)
    grid = jnp.sort(grid)

    # at least one ulp (and not a denormal: XLA flushes those to zero on CPU)
    min_gap = dt * 1e-6

    def make_increasing(prev, x):
        x = jnp.maximum(x, jnp.maximum(jnp.nextafter(prev, jnp.inf), prev + min_gap))
        return x, x

    _, rest = jax.lax.scan(make_increasing, grid[0], grid[1:])
    return jnp.concatenate([grid[:1], rest, t1[None]])


def _solve_impl(
    params,
    stimulus,
    y0,
    t0,
    t1,
    ts,
    solver,
    controller,
    dt0,
    max_steps,
    adjoint,
    fixed_grid_n,
    rest_ok=None,
):
    dtype = params.dtype
    if y0 is None:
        y0, rest_ok = resting_state_checked(params)
    sources = noise_sources(stimulus)
    ou = tuple(s for s in sources if isinstance(s, OUNoiseCurrent))
    saveat = diffrax.SaveAt(ts=ts)

    if fixed_grid_n is not None:
        jt = stimulus.jump_times.astype(dtype)
        grid = _fixed_grid_with_jumps(t0, t1, dt0, fixed_grid_n, jt)
        controller = diffrax.StepTo(ts=grid)
        dt0 = None

    if isinstance(controller, diffrax.AbstractAdaptiveStepSizeController) and not isinstance(
        controller, diffrax.ClipStepSizeController
    ):
        jt = None if stimulus is None else stimulus.jump_times
        if jt is not None and jt.shape[0] > 0:
            far = t1 + jnp.abs(t1 - t0) + 1.0
            jt = jnp.where(jnp.isfinite(jt), jt, far).astype(dtype)
            controller = diffrax.ClipStepSizeController(controller, jump_ts=jt)
    boundary = _stability_boundary(solver)
    if (
        isinstance(controller, diffrax.AbstractAdaptiveStepSizeController)
        and not isinstance(controller, StabilityLimit)
        and boundary is not None
    ):
        controller = StabilityLimit(controller, params, boundary * STABILITY_MARGIN)

    if sources:
        x0 = tuple(s.initial_deviation() for s in ou)
        y_init = (y0, x0) if ou else y0
        shape = jax.tree_util.tree_map(
            lambda leaf: jax.ShapeDtypeStruct(jnp.shape(leaf), dtype), y_init
        )
        key = _brownian_key(sources)
        if isinstance(controller, diffrax.AbstractAdaptiveStepSizeController):
            # adaptive steps may be rejected and retried: the path must be
            # consistent across queries, so use a Brownian tree
            bm = diffrax.VirtualBrownianTree(
                t0,
                t1,
                tol=1e-4 * (t1 - t0) / 1024,
                shape=shape,
                key=key,
                levy_area=diffrax.SpaceTimeLevyArea,
            )
        else:
            # fixed steps: independent increments per step, O(1) per step
            bm = _StepwiseBrownianPath(shape=shape, key=key)
        terms = diffrax.MultiTerm(
            diffrax.ODETerm(_NoisyDrift()), diffrax.ControlTerm(_NoisyDiffusion(), bm)
        )
        args = (params, stimulus, ou)
    else:
        y_init = y0
        terms = diffrax.ODETerm(hh_vector_field)
        args = (params, stimulus)

    sol = diffrax.diffeqsolve(
        terms,
        solver,
        t0,
        t1,
        dt0,
        y_init,
        args=args,
        saveat=saveat,
        stepsize_controller=controller,
        max_steps=max_steps,
        adjoint=adjoint,
        throw=False,
    )
    ys = sol.ys
    if ou:
        states, noise = ys
    else:
        states, noise = ys, ()
    result = RESULTS.promote(sol.result)
    bad = _nonfinite(ys)
    result = RESULTS.where(
        (result == RESULTS.successful) & bad, RESULTS.nonfinite_state, result
    )
    if rest_ok is not None:
        result = RESULTS.where(
            jnp.invert(rest_ok), RESULTS.no_resting_state, result
        )
    return SimulationResult(
        t=sol.ts,
        state=states,
        params=params,
        stimulus=stimulus,
        noise=tuple(noise),
        result=result,
        stats=sol.stats,
    )


# eager calls on one neuron are compile-bound: compiled with the lean options
_solve = eager_lean_jit(_solve_impl)


# --------------------------------------------------------------------------------------
# public entry point


def simulate(
    params: HHParams | Membrane,
    stimulus: AbstractStimulus | None = None,
    t_end: ArrayLike | None = None,
    *,
    t0: ArrayLike = 0.0,
    solver: diffrax.AbstractSolver | None = None,
    stepsize_controller: diffrax.AbstractStepSizeController | None = None,
    dt0: ArrayLike | None = None,
    max_steps: int | None = None,
    adjoint: diffrax.AbstractAdjoint | None = None,
    save_every: ArrayLike | None = None,
    ts: ArrayLike | None = None,
    y0: HHState | MembraneState | None = None,
    throw: bool = True,
) -> SimulationResult:
    """Simulate one Hodgkin–Huxley neuron from `t0` to `t_end` [ms].

    **Arguments:**

    - `params`: an [`hhjax.HHParams`][] with scalar fields, or any
      conductance-based [`hhjax.Membrane`][] (batch either with `jax.vmap`).
    - `stimulus`: the injected current, an hhjax stimulus ([`hhjax.StepCurrent`][],
      [`hhjax.PulseTrain`][], ..., sums of them, noise currents), or `None`.
    - `t_end`: end time [ms], > `t0`.
    - `t0`: start time [ms] (default 0).
    - `solver`: a diffrax solver. Default: `diffrax.Tsit5()` (adaptive, 5th order)
      for deterministic stimuli; `diffrax.ShARK()` when the stimulus contains noise.
      Fixed-step choices: `diffrax.Euler()`, `diffrax.Midpoint()`, [`hhjax.RK4`][],
      [`hhjax.ExponentialEuler`][].
    - `stepsize_controller`: a diffrax controller. Default: for adaptive solvers
      `PIDController(rtol=1e-6, atol=1e-6)`, for the others `ConstantStepSize()`.
      An adaptive controller is wrapped in `ClipStepSizeController` with the
      stimulus' `jump_times`, so steps land exactly on stimulus edges, and, for the
      explicit Runge–Kutta solvers, in [`hhjax.StabilityLimit`][], so no step leaves
      the fastest gate's stability region (derivatives through long quiescent
      stretches would otherwise blow up). With noise currents the default is fixed
      steps of `dt0` (Brownian increments drawn per
      step, O(1) each); an adaptive controller, if given, gets a
      `diffrax.VirtualBrownianTree` (consistent under rejected steps, slower).
    - `dt0`: (initial) step [ms]; default 0.01. With `ConstantStepSize` the steps are
      `dt0` apart *and* land on each stimulus edge (the step grid gets the two
      floating-point neighbours of every jump time), so fixed-step solvers keep their
      order across pulses.
    - `max_steps`: step budget; default enough for the fixed step, or
      `max(4096, 200 per ms)` for adaptive solvers.
    - `adjoint`: a diffrax adjoint for gradients (default
      `diffrax.RecursiveCheckpointAdjoint()`); `diffrax.ForwardMode()` suits few
      parameters with `jax.jacfwd`.
    - `save_every`: output sampling interval [ms] (default 0.01), from `t0` to
      `t_end` inclusive; or
    - `ts`: explicit strictly increasing sample times [ms] within `[t0, t_end]`.
    - `y0`: initial [`hhjax.HHState`][] (a [`hhjax.MembraneState`][] for a
      membrane; default: the resting state of `params`, [`hhjax.resting_state`][]).
    - `throw`: if `True` (default), a failed solve (step budget exhausted, non-finite
      state) raises [`hhjax.SimulationError`][] (or, inside `jit`/`vmap`, an
      `EquinoxRuntimeError` with the same message). If `False`, check
      `result.successful` / `result.result`.

    **Returns:** a [`hhjax.SimulationResult`][]; `res.t, res.v, res.m, res.h, res.n`
    are arrays over time with the dtype of `params`.

    **Raises:** `TypeError`/`ValueError` for invalid arguments (naming the argument
    and the expected unit/range), [`hhjax.SimulationError`][] for failed solves.

    **Example:**

    ```pycon
    >>> import hhjax
    >>> p = hhjax.HHParams()
    >>> stim = hhjax.StepCurrent(amplitude=10.0, t_on=2.0, t_off=20.0)    # µA/cm², ms
    >>> res = hhjax.simulate(p, stim, t_end=20.0)
    >>> res.v.shape, res.v.dtype == p.dtype        # 0.01 ms samples from 0 to 20 ms
    ((2001,), True)
    >>> [round(float(t), 2) for t in hhjax.spike_times(res, max_spikes=2)]   # ms
    [3.9, 18.82]
    >>> hhjax.simulate(p, stim, t_end=-1.0)
    Traceback (most recent call last):
    ValueError: `t_end` must be > t0 = 0.0 ms, got t_end=-1.0 ms.

    ```

    Other solvers are diffrax objects, e.g. `solver=hhjax.ExponentialEuler(),
    dt0=0.01` or `solver=diffrax.Tsit5(),
    stepsize_controller=diffrax.PIDController(rtol=1e-8, atol=1e-8)`; batches go
    through `jax.vmap` (see the guide on simulation and batching).
    """
    check_model(params, scalar=False)
    if stimulus is not None and not isinstance(stimulus, AbstractStimulus):
        raise TypeError(
            "`stimulus` must be an hhjax stimulus (e.g. hhjax.StepCurrent, "
            "hhjax.SampledCurrent for arbitrary waveforms) or None, got "
            f"{type(stimulus).__name__}."
        )
    check_model(params)
    if t_end is None:
        raise TypeError("`t_end` (end time in ms) is required.")
    _check_time("t0", t0)
    _check_time("t_end", t_end)
    if is_concrete(t0) and is_concrete(t_end) and not float(t_end) > float(t0):
        raise ValueError(
            f"`t_end` must be > t0 = {float(t0)} ms, got t_end={float(t_end)} ms."
        )
    dtype = params.dtype
    ts_arr = _make_ts(t0, t_end, save_every, ts, dtype)

    sources = noise_sources(stimulus)
    if solver is None:
        solver = diffrax.ShARK() if sources else diffrax.Tsit5()
    if not isinstance(solver, diffrax.AbstractSolver):
        raise TypeError(
            "`solver` must be a diffrax solver object (e.g. diffrax.Tsit5(), "
            f"hhjax.ExponentialEuler()), got {solver!r}."
        )
    if stepsize_controller is None:
        if _adaptive_by_default(solver, noisy=bool(sources)):
            stepsize_controller = diffrax.PIDController(
                rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL, norm=finite_rms_norm
            )
        else:
            stepsize_controller = diffrax.ConstantStepSize()
    if not isinstance(stepsize_controller, diffrax.AbstractStepSizeController):
        raise TypeError(
            "`stepsize_controller` must be a diffrax step-size controller, got "
            f"{stepsize_controller!r}."
        )
    stepsize_controller = _with_finite_norm(stepsize_controller)
    is_adaptive_ctrl = isinstance(
        stepsize_controller, diffrax.AbstractAdaptiveStepSizeController
    )
    if dt0 is None:
        dt0 = DEFAULT_DT0
    dt0f = _concrete_float("dt0", dt0) if is_concrete(dt0) else None
    if dt0f is not None and not (math.isfinite(dt0f) and dt0f > 0):
        raise ValueError(f"`dt0` must be > 0 ms, got {dt0!r}.")
    fixed_grid_n = None
    n_jumps = (
        0
        if stimulus is None
        else int(jax.eval_shape(lambda s: s.jump_times, stimulus).shape[0])
    )
    if isinstance(stepsize_controller, diffrax.ConstantStepSize) and n_jumps > 0:
        if dt0f is None:
            raise ValueError(
                "`dt0` must be a concrete number for fixed-step solves (it fixes the "
                "number of steps)."
            )
        duration = _concrete_float("t_end", t_end) - _concrete_float("t0", t0)
        fixed_grid_n = max(1, int(math.ceil(duration / dt0f - 1e-9)))
        if max_steps is None:
            max_steps = fixed_grid_n + 2 * n_jumps + 16
    if max_steps is None:
        duration = _concrete_float("t_end", t_end) - _concrete_float("t0", t0)
        max_steps = _default_max_steps(is_adaptive_ctrl, duration, dt0f or DEFAULT_DT0)
    if int(max_steps) != max_steps or max_steps < 1:
        raise ValueError(f"`max_steps` must be a positive integer, got {max_steps!r}.")
    eager = all_concrete(params, stimulus, y0, t0, t_end, ts_arr, dt0, stepsize_controller)
    if adjoint is None:
        # an eager call cannot be differentiated: ForwardMode's plain loops (over the
        # steps and a Runge–Kutta step's stages) trace faster, with the same values
        adjoint = diffrax.ForwardMode() if eager else diffrax.RecursiveCheckpointAdjoint()
    if y0 is None:
        pass  # the resting state: below (eager calls) or inside the compiled solve
    elif isinstance(params, HHParams) and not isinstance(y0, HHState):
        raise TypeError(f"`y0` must be an hhjax.HHState, got {type(y0).__name__}.")
    elif isinstance(params, Membrane) and not isinstance(y0, MembraneState):
        raise TypeError(
            f"`y0` must be an hhjax.MembraneState for a Membrane, got {type(y0).__name__}."
        )
    else:
        if isinstance(y0, MembraneState):
            want = set(params.kinetic_gates)
            if set(y0.gates) != want:
                raise ValueError(
                    f"`y0.gates` must hold the membrane's kinetic gates {sorted(want)}, "
                    f"got {sorted(y0.gates)}."
                )
        for path, leaf in jax.tree_util.tree_leaves_with_path(y0):
            if jnp.shape(leaf) != ():
                raise ValueError(
                    f"`y0{jax.tree_util.keystr(path)}` must be a scalar, got shape "
                    f"{jnp.shape(leaf)}; batch with jax.vmap."
                )
        y0 = jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype), y0)
    rest_ok = None
    if y0 is None and eager:
        # a separate (cached) program: it compiles faster than inside the solve and
        # is reused by every eager simulation of the same model structure
        y0, rest_ok = resting_state_checked(params)

    res = _solve(
        params,
        stimulus,
        y0,
        _scalar(t0, dtype),
        _scalar(t_end, dtype),
        ts_arr,
        solver,
        stepsize_controller,
        _scalar(dt0, dtype),
        int(max_steps),
        adjoint,
        fixed_grid_n,
        rest_ok,
    )
    if throw:
        if is_concrete(res.result._value):
            # NumPy comparison: no eager XLA compile on the first call
            if int(np.asarray(res.result._value)) != int(
                np.asarray(RESULTS.successful._value)
            ):
                msg = RESULTS[res.result]
                raise SimulationError(
                    f"hhjax.simulate failed: {msg} (steps taken: "
                    f"{int(res.stats['num_steps'])}, max_steps={max_steps})."
                )
        else:
            # only array leaves go through the check (the stimulus may hold PRNG keys)
            state = res.result.error_if(res.state, jnp.invert(res.successful))
            res = eqx.tree_at(lambda r: r.state, res, state)
    return res

