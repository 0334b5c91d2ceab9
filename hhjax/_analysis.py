"""Analysis of a Hodgkin–Huxley model: excitability thresholds, stability of the
resting state, f–I curves, limit cycles, gating curves and nullclines.

Every function takes an [`hhjax.HHParams`][] (or, except the reduced-model
nullclines, an [`hhjax.Membrane`][]) of one neuron and is written with
fixed-size arrays and `jax.lax` loops, so it runs under `jit` and batches with
`jax.vmap` (e.g. over a batch of parameters). Thresholds that need simulations are
found by *batched bisection*: each round simulates a grid of candidate amplitudes in
one vmapped call and keeps the bracket between the largest "no" and the smallest
"yes", shrinking it by a factor `n_points + 1` per round; the number of rounds is
fixed in advance from the tolerance, so everything compiles once.

Units: mV, ms, µA/cm², 1/ms; firing rates in Hz.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

from ._channels import Membrane, MembraneState, check_membrane_scalar, check_model
from ._model import HHState, jacobian_at, model_derivatives, resting_state
from ._params import HHParams, check_params_scalar, is_concrete
from ._simulate import SimulationError, simulate
from ._spikes import spike_count, spike_times
from ._stimulus import ConstantCurrent, StepCurrent

#: Default tolerances (rtol = atol) of the adaptive solves used for threshold
#: decisions in float64; float32 parameters get `_RTOL32` (tighter ones stall there).
_RTOL64 = 1e-8
_RTOL32 = 1e-5
#: Default step budget of the solves inside the analysis functions (an upper bound
#: only: it costs nothing unless reached).
DEFAULT_ANALYSIS_MAX_STEPS = 200_000
#: Newton tolerance of the resting state in float32 (see `_max_real_eig`).
_REST_TOL32 = 1e-4
#: Sample spacing [ms] of the probe window of `limit_cycle`.
_PROBE_DT = 0.025


# --------------------------------------------------------------------------------------
# validation helpers


def _check_params(params: Any) -> None:
    check_model(params)


def _check_scalar(name: str, value: Any, unit: str, *, positive: bool = False) -> None:
    """`value` must be a real scalar (finite, and > 0 with `positive`) when concrete."""
    if isinstance(value, (str, bytes, bool)) or value is None:
        raise TypeError(f"`{name}` must be a number in {unit}, got {value!r}.")
    if jnp.shape(value) != ():
        raise ValueError(
            f"`{name}` must be a scalar in {unit}, got shape {jnp.shape(value)} "
            "(batch with jax.vmap)."
        )
    if is_concrete(value):
        x = float(np.asarray(value))
        if not math.isfinite(x):
            raise ValueError(f"`{name}` must be finite (in {unit}), got {value!r}.")
        if positive and not x > 0:
            raise ValueError(f"`{name}` must be > 0 {unit}, got {value!r}.")


def _static_float(name: str, value: Any, unit: str) -> float:
    """A concrete Python float (it fixes a number of rounds or samples)."""
    if isinstance(value, (str, bytes, bool)) or value is None:
        raise TypeError(f"`{name}` must be a number in {unit}, got {value!r}.")
    if not is_concrete(value) or jnp.shape(value) != ():
        raise ValueError(
            f"`{name}` must be a concrete scalar in {unit} (it fixes the number of "
            f"bisection rounds or samples), got {value!r}."
        )
    x = float(np.asarray(value))
    if not math.isfinite(x):
        raise ValueError(f"`{name}` must be finite (in {unit}), got {value!r}.")
    return x


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an int, got {value!r}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value!r}.")
    return int(value)


def _check_window(duration: Any, window: Any) -> None:
    _check_scalar("window", window, "ms", positive=True)
    if is_concrete(duration) and is_concrete(window):
        if float(np.asarray(window)) > float(np.asarray(duration)):
            raise ValueError(
                f"`window` ({float(np.asarray(window))} ms) must not exceed "
                f"`duration` ({float(np.asarray(duration))} ms)."
            )


def _controller(dtype, rtol: float | None, atol: float | None):
    tight = _RTOL64 if jnp.dtype(dtype) == jnp.float64 else _RTOL32
    rtol = tight if rtol is None else rtol
    atol = tight if atol is None else atol
    for name, x in (("rtol", rtol), ("atol", atol)):
        if not (isinstance(x, (int, float)) and math.isfinite(x) and x > 0):
            raise ValueError(f"`{name}` must be a float > 0, got {x!r}.")
    return diffrax.PIDController(rtol=float(rtol), atol=float(atol))


def _bisection_rounds(i_min: float, i_max: float, tol: float, n_points: int) -> int:
    """Rounds after the first grid (which includes both ends) until the bracket is
    at most `tol` wide."""
    width = (i_max - i_min) / (n_points - 1)
    if width <= tol:
        return 0
    return int(math.ceil(math.log(width / tol) / math.log(n_points + 1)))


def _check_bracket(i_min, i_max, tol, n_points):
    lo = _static_float("i_min", i_min, "µA/cm²")
    hi = _static_float("i_max", i_max, "µA/cm²")
    if not hi > lo:
        raise ValueError(
            f"`i_max` must be > `i_min` (µA/cm²), got i_min={lo}, i_max={hi}."
        )
    tol = _static_float("tol", tol, "µA/cm²")
    if not tol > 0:
        raise ValueError(f"`tol` must be > 0 µA/cm², got {tol!r}.")
    n_points = _check_int("n_points", n_points, 2)
    return lo, hi, tol, n_points, _bisection_rounds(lo, hi, tol, n_points)


def _raise_if_failed(value: Array, ok: Array, what: str, max_steps: int) -> Array:
    if is_concrete(ok) and not bool(np.all(np.asarray(ok))):
        raise SimulationError(
            f"{what}: a simulation failed (step budget max_steps={max_steps} "
            "exhausted or a non-finite state); increase `max_steps`, loosen "
            "`rtol`/`atol`, or pass `throw=False` to get NaN instead."
        )
    return value


# --------------------------------------------------------------------------------------
# batched bisection


def _batched_bisection(
    indicator: Callable[[Array], tuple[Array, Array]],
    lo: Array,
    hi: Array,
    n_points: int,
    rounds: int,
) -> tuple[Array, Array]:
    """Smallest `x` in `[lo, hi]` with `indicator(x)` True, for an indicator that is
    False below and True above a threshold.

    `indicator` maps a `(n_points,)` grid to `(flags, ok)` (booleans, the latter
    False where the evaluation failed). Round 0 evaluates `n_points` values from
    `lo` to `hi` inclusive; each of the `rounds` later rounds `n_points` values
    strictly inside the current bracket, keeping the last False below the first
    True. (One loop body serves every round, so the indicator is traced, and
    compiled, once.) Returns the midpoint of the final bracket (NaN when
    `indicator(lo)` is True or no value of the first grid is True) and whether
    every evaluation succeeded.
    """
    dtype = lo.dtype
    inclusive = jnp.linspace(0.0, 1.0, n_points, dtype=dtype)
    interior = jnp.arange(1, n_points + 1, dtype=dtype) / (n_points + 1)

    def one_round(r, carry):
        a, b, valid, all_ok = carry
        first = r == 0
        x = a + (b - a) * jnp.where(first, inclusive, interior)
        flags, ok = indicator(x)
        any_true = jnp.any(flags)
        k = jnp.argmax(flags)  # first True (0 when none)
        below = jnp.where(k > 0, x[jnp.maximum(k - 1, 0)], a)
        new_a = jnp.where(any_true, below, x[-1])
        new_b = jnp.where(any_true, x[k], b)
        valid = jnp.where(first, jnp.invert(flags[0]) & any_true, valid)
        return new_a, new_b, valid, all_ok & jnp.all(ok)

    init = (lo, hi, jnp.array(True), jnp.array(True))
    a, b, valid, all_ok = jax.lax.fori_loop(0, rounds + 1, one_round, init)
    mid = 0.5 * (a + b)
    return jnp.where(valid, mid, jnp.full_like(mid, jnp.nan)), all_ok


# --------------------------------------------------------------------------------------
# simulations of step protocols (vmapped over amplitudes)


def _window_counts(
    params: HHParams,
    amplitudes: Array,
    t_off: Array,
    t_end: Array,
    t_start: Array,
    threshold: Array,
    n_samples: int,
    controller,
    max_steps: int,
) -> tuple[Array, Array, Array]:
    """Spike counts in `[t_start, t_end]` for steps of `amplitudes` applied from rest
    at t = 0 until `t_off` (inf: never off); the voltage samples in the window and
    the success flags. Vmapped over `amplitudes`."""
    y0 = resting_state(params)
    ts = jnp.linspace(t_start, t_end, n_samples, dtype=params.dtype)

    def one(amplitude):
        stim = StepCurrent(amplitude, 0.0, t_off, dtype=params.dtype)
        res = simulate(
            params,
            stim,
            t_end,
            ts=ts,
            y0=y0,
            stepsize_controller=controller,
            max_steps=max_steps,
            throw=False,
        )
        return spike_count(res.v, threshold), res.v, res.successful

    return jax.vmap(one)(amplitudes)


@eqx.filter_jit
def _step_threshold_core(
    params, duration, t_end, t_start, threshold, min_spikes, i_min, i_max, static
):
    n_points, rounds, n_samples, controller, max_steps = static
    t_off = duration

    def indicator(amps):
        counts, _, ok = _window_counts(
            params,
            amps,
            t_off,
            t_end,
            t_start,
            threshold,
            n_samples,
            controller,
            max_steps,
        )
        return counts >= min_spikes, ok

    return _batched_bisection(indicator, i_min, i_max, n_points, rounds)


# --------------------------------------------------------------------------------------
# rheobase and the threshold of repetitive firing


def rheobase(
    params: HHParams,
    duration: ArrayLike = 100.0,
    *,
    threshold: ArrayLike = 0.0,
    t_after: ArrayLike = 50.0,
    i_min: float = 0.0,
    i_max: float = 100.0,
    tol: float = 1e-4,
    n_points: int = 16,
    n_samples: int = 4096,
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int = DEFAULT_ANALYSIS_MAX_STEPS,
    throw: bool = True,
) -> Array:
    """Rheobase [µA/cm²]: the smallest amplitude of a current step of `duration` [ms]
    that elicits at least one spike.

    **Protocol.** The neuron starts at its resting state ([`hhjax.resting_state`][]
    at zero current); the step is on for `0 <= t < duration` and the response is
    followed until `duration + t_after` (so spikes that fire just after a short
    pulse count). A spike is an upward crossing of `threshold` [mV] by the voltage,
    sampled at `n_samples` equally spaced times over `[0, duration + t_after]`.
    The solves use Tsit5 with a tight adaptive controller (rtol = atol = 1e-8 in
    float64, 1e-5 in float32), since near threshold the response is sensitive.

    **Search.** Batched bisection on `[i_min, i_max]`: the first round simulates
    `n_points` amplitudes from `i_min` to `i_max`, every further round `n_points`
    amplitudes inside the bracket (one vmapped solve per round). The number of
    rounds is fixed from `tol`, so the result is the midpoint of a final bracket at
    most `tol` wide. Jit-compiled once per configuration; `duration`, `threshold`
    and `t_after` are traced (new values, and `jax.vmap` over them, do not
    recompile) and the whole function runs under `jax.vmap` over parameters.

    **Arguments:**

    - `params`: an [`hhjax.HHParams`][] of one neuron.
    - `duration`: step duration [ms], > 0.
    - `threshold`: spike detection level [mV].
    - `t_after`: how long the response is followed after the step [ms], ≥ 0.
    - `i_min`, `i_max`: search interval [µA/cm²] (concrete floats).
    - `tol`: width of the final bracket [µA/cm²] (concrete, > 0).
    - `n_points`: amplitudes per round (static int ≥ 2).
    - `n_samples`: voltage samples over the observed span (static int); spikes are
      at least ~1 ms wide, so keep the spacing well below that for long steps.
    - `rtol`, `atol`: tolerances of the adaptive solver.
    - `max_steps`: step budget of each solve.
    - `throw`: raise [`hhjax.SimulationError`][] if a solve failed (outside `jit`);
      with `False` (and always under `jit`/`vmap`) a failure gives NaN.

    **Returns:** a scalar array [µA/cm²] with the dtype of `params`; NaN when the
    neuron already spikes at `i_min` (e.g. it fires spontaneously) or at none of the
    first round's amplitudes (`n_points` values from `i_min` to `i_max`).

    **Raises:** `TypeError` for a non-`HHParams` `params`; `ValueError` (naming the
    argument and its unit) for a non-positive or non-finite `duration` [ms],
    negative `t_after`, `i_max <= i_min`, `tol <= 0`, ...;
    [`hhjax.SimulationError`][] (see `throw`).

    **Example:**

    `hhjax.rheobase(hhjax.HHParams())` ≈ 2.2404 µA/cm² (100 ms step, the
    defaults). A 1 ms pulse, with a coarse tolerance and sampling (faster):

    ```pycon
    >>> import hhjax
    >>> i_rh = hhjax.rheobase(hhjax.HHParams(), 1.0, t_after=10.0, tol=0.01,
    ...                       n_samples=512)
    >>> print(f"{float(i_rh):.1f} µA/cm²")
    6.9 µA/cm²

    ```
    """
    _check_params(params)
    _check_scalar("duration", duration, "ms", positive=True)
    _check_scalar("threshold", threshold, "mV")
    _check_scalar("t_after", t_after, "ms")
    if is_concrete(t_after) and float(np.asarray(t_after)) < 0:
        raise ValueError(f"`t_after` must be >= 0 ms, got {t_after!r}.")
    lo, hi, tol, n_points, rounds = _check_bracket(i_min, i_max, tol, n_points)
    n_samples = _check_int("n_samples", n_samples, 2)
    max_steps = _check_int("max_steps", max_steps, 1)
    dtype = params.dtype
    controller = _controller(dtype, rtol, atol)
    duration = jnp.asarray(duration, dtype)
    t_end = duration + jnp.asarray(t_after, dtype)
    value, ok = _step_threshold_core(
        params,
        duration,
        t_end,
        jnp.zeros((), dtype),
        jnp.asarray(threshold, dtype),
        jnp.asarray(1),
        jnp.asarray(lo, dtype),
        jnp.asarray(hi, dtype),
        (n_points, rounds, n_samples, controller, max_steps),
    )
    if throw:
        _raise_if_failed(value, ok, "hhjax.rheobase", max_steps)
    return jnp.where(ok, value, jnp.full_like(value, jnp.nan))


def repetitive_firing_threshold(
    params: HHParams,
    *,
    duration: ArrayLike = 1000.0,
    window: ArrayLike = 200.0,
    min_spikes: int = 2,
    threshold: ArrayLike = 0.0,
    i_min: float = 0.0,
    i_max: float = 100.0,
    tol: float = 1e-4,
    n_points: int = 16,
    n_samples: int = 4096,
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int = DEFAULT_ANALYSIS_MAX_STEPS,
    throw: bool = True,
) -> Array:
    """The threshold [µA/cm²] of sustained repetitive firing: the smallest constant
    current for which firing persists.

    **Definition.** From the resting state at zero current, a current of amplitude
    `I` is switched on at t = 0 and held for `duration` [ms]; firing *persists* when
    at least `min_spikes` spikes (upward crossings of `threshold` [mV]) fall in the
    last `window` ms, `[duration − window, duration]`. The threshold is the smallest
    `I` with persistent firing, found by batched bisection as in
    [`hhjax.rheobase`][] (same `i_min`, `i_max`, `tol`, `n_points`, solver
    tolerances).

    For the classic model this is the fold of limit cycles (≈ 6.26 µA/cm²) at the
    lower end of the bistable range below the Hopf bifurcation
    ([`hhjax.hopf_current`][], ≈ 9.78 µA/cm²): a step from rest lands on the stable
    periodic orbit as soon as it exists. Just below the fold the trajectory lingers
    near the vanished orbit and fires for a while before it settles (longer the
    closer the current), so the value is slightly below the fold, by less than
    1e-3 µA/cm² for the defaults; longer `duration`s converge to the fold.

    **Arguments:** `params`; `duration`, `window` [ms] (`0 < window <= duration`,
    traced); `min_spikes` (int ≥ 1); `threshold` [mV]; the search and solver
    options as in [`hhjax.rheobase`][]; `n_samples`: voltage samples over the
    window (static).

    **Returns:** a scalar array [µA/cm²] (dtype of `params`); NaN when firing
    already persists at `i_min` or at none of the first round's currents
    (`n_points` values from `i_min` to `i_max`). Firing need not persist up to
    `i_max`: at large currents the classic model's oscillation shrinks until its
    peaks stay below 0 mV (and it stops near 154 µA/cm²); the smallest firing
    current of the first grid is bisected.

    **Raises:** `TypeError`/`ValueError` naming the argument and its unit for bad
    input (e.g. `duration <= 0` ms, `window > duration`);
    [`hhjax.SimulationError`][] (see `throw`).

    **Example:**

    `hhjax.repetitive_firing_threshold(hhjax.HHParams())` ≈ 6.260 µA/cm² (the
    defaults). Shorter and coarser:

    ```pycon
    >>> import hhjax
    >>> i_rep = hhjax.repetitive_firing_threshold(hhjax.HHParams(), duration=300.0,
    ...                                           window=100.0, tol=0.01, n_samples=512)
    >>> print(f"{float(i_rep):.1f} µA/cm²")
    6.3 µA/cm²

    ```
    """
    _check_params(params)
    _check_scalar("duration", duration, "ms", positive=True)
    _check_window(duration, window)
    _check_scalar("threshold", threshold, "mV")
    min_spikes = _check_int("min_spikes", min_spikes, 1)
    lo, hi, tol, n_points, rounds = _check_bracket(i_min, i_max, tol, n_points)
    n_samples = _check_int("n_samples", n_samples, 2)
    max_steps = _check_int("max_steps", max_steps, 1)
    dtype = params.dtype
    controller = _controller(dtype, rtol, atol)
    duration = jnp.asarray(duration, dtype)
    value, ok = _step_threshold_core(
        params,
        jnp.asarray(jnp.inf, dtype),
        duration,
        duration - jnp.asarray(window, dtype),
        jnp.asarray(threshold, dtype),
        jnp.asarray(min_spikes),
        jnp.asarray(lo, dtype),
        jnp.asarray(hi, dtype),
        (n_points, rounds, n_samples, controller, max_steps),
    )
    if throw:
        _raise_if_failed(value, ok, "hhjax.repetitive_firing_threshold", max_steps)
    return jnp.where(ok, value, jnp.full_like(value, jnp.nan))


# --------------------------------------------------------------------------------------
# f–I curve


@eqx.filter_jit
def _window_stats_core(params, currents, duration, window, threshold, static):
    """Spike counts, voltage minimum and maximum [mV] in the last `window` ms of a
    step of each of `currents` held from rest for `duration` ms; success flags.
    Shared by `fi_curve` and `firing_envelope` (one compilation)."""
    n_samples, controller, max_steps = static
    inf = jnp.asarray(jnp.inf, params.dtype)
    counts, v, ok = _window_counts(
        params,
        currents,
        inf,
        duration,
        duration - window,
        threshold,
        n_samples,
        controller,
        max_steps,
    )
    return counts, jnp.min(v, axis=-1), jnp.max(v, axis=-1), ok


def fi_curve(
    params: HHParams,
    currents: ArrayLike,
    duration: ArrayLike = 500.0,
    *,
    window: ArrayLike = 400.0,
    threshold: ArrayLike = 0.0,
    n_samples: int = 8001,
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int = DEFAULT_ANALYSIS_MAX_STEPS,
    throw: bool = True,
) -> Array:
    """Firing rate [Hz] against step current [µA/cm²] (the f–I curve).

    **Protocol.** For each current `I`: from the resting state at zero current, `I`
    is switched on at t = 0 and held for `duration` [ms]; the rate is the number of
    spikes (upward crossings of `threshold` [mV]) in the last `window` ms,
    `[duration − window, duration]`, divided by `window` (in seconds). With the
    defaults: spikes in [100, 500] ms / 0.4 s, so rates come in steps of 2.5 Hz and
    the onset transient is excluded. All currents are simulated in one vmapped
    solve (Tsit5, rtol = atol = 1e-8 in float64).

    **Arguments:**

    - `params`: an [`hhjax.HHParams`][] of one neuron.
    - `currents`: step amplitudes [µA/cm²], any shape.
    - `duration`: step duration [ms], > 0 (traced).
    - `window`: counting window at the end of the step [ms], `0 < window <=
      duration` (traced).
    - `threshold`: spike detection level [mV].
    - `n_samples`: voltage samples over the window (static; default 8001, i.e.
      0.05 ms for 400 ms).
    - `rtol`, `atol`, `max_steps`, `throw`: as in [`hhjax.rheobase`][].

    **Returns:** rates [Hz], the shape of `currents`, dtype of `params`.

    **Raises:** `TypeError`/`ValueError` naming the argument and unit (e.g.
    `duration` ≤ 0 ms, `window > duration`, non-finite `currents`);
    [`hhjax.SimulationError`][] (see `throw`).

    **Example:**

    With the defaults (500 ms steps, spikes counted over the last 400 ms),
    `hhjax.fi_curve(hhjax.HHParams(), jnp.array([0.0, 5.0, 10.0, 20.0]))` gives
    `[0, 0, 70, 87.5]` Hz. Shorter steps (100 ms, counting over the last 80 ms,
    so rates come in steps of 12.5 Hz):

    ```pycon
    >>> import jax.numpy as jnp, hhjax
    >>> rates = hhjax.fi_curve(hhjax.HHParams(), jnp.array([0.0, 5.0, 10.0, 20.0]),
    ...                        100.0, window=80.0, n_samples=1601)
    >>> [round(float(r), 1) for r in rates]          # Hz
    [0.0, 0.0, 62.5, 87.5]

    ```
    """
    _check_params(params)
    _check_scalar("duration", duration, "ms", positive=True)
    _check_window(duration, window)
    _check_scalar("threshold", threshold, "mV")
    dtype = params.dtype
    if isinstance(currents, (str, bytes)) or currents is None:
        raise TypeError(f"`currents` must be an array in µA/cm², got {currents!r}.")
    currents = jnp.asarray(currents, dtype)
    if is_concrete(currents) and not np.all(np.isfinite(np.asarray(currents))):
        raise ValueError("`currents` must be finite (µA/cm²).")
    n_samples = _check_int("n_samples", n_samples, 2)
    max_steps = _check_int("max_steps", max_steps, 1)
    controller = _controller(dtype, rtol, atol)
    shape = currents.shape
    window = jnp.asarray(window, dtype)
    counts, _, _, ok = _window_stats_core(
        params,
        currents.reshape(-1),
        jnp.asarray(duration, dtype),
        window,
        jnp.asarray(threshold, dtype),
        (n_samples, controller, max_steps),
    )
    rates = counts.astype(dtype) / window * 1000.0
    if throw:
        _raise_if_failed(rates, ok, "hhjax.fi_curve", max_steps)
    rates = jnp.where(ok, rates, jnp.full_like(rates, jnp.nan))
    return rates.reshape(shape)


def firing_envelope(
    params: HHParams,
    currents: ArrayLike,
    duration: ArrayLike = 500.0,
    *,
    window: ArrayLike = 400.0,
    threshold: ArrayLike = 0.0,
    min_spikes: int = 2,
    n_samples: int = 8001,
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int = DEFAULT_ANALYSIS_MAX_STEPS,
) -> tuple[Array, Array]:
    """Minimum and maximum voltage [mV] of sustained firing against current.

    The protocol of [`hhjax.fi_curve`][] (step from rest held for `duration` ms);
    where at least `min_spikes` spikes fall in the last `window` ms, returns the
    minimum and maximum of the sampled voltage over that window, else NaN. Used by
    [`hhjax.plot_bifurcation`][] for the oscillation branch.

    **Returns:** `(v_min, v_max)` [mV], each of the shape of `currents` (dtype of
    `params`).

    **Raises:** as [`hhjax.fi_curve`][].

    ```pycon
    >>> import jax.numpy as jnp, hhjax
    >>> v_min, v_max = hhjax.firing_envelope(hhjax.HHParams(),
    ...                                      jnp.array([0.0, 5.0, 10.0, 20.0]),
    ...                                      100.0, window=80.0, n_samples=1601)
    >>> [round(float(x), 1) for x in v_max]      # mV; NaN: no sustained firing
    [nan, nan, 30.4, 25.1]

    ```
    """
    _check_params(params)
    _check_scalar("duration", duration, "ms", positive=True)
    _check_window(duration, window)
    _check_scalar("threshold", threshold, "mV")
    min_spikes = _check_int("min_spikes", min_spikes, 1)
    dtype = params.dtype
    if isinstance(currents, (str, bytes)) or currents is None:
        raise TypeError(f"`currents` must be an array in µA/cm², got {currents!r}.")
    currents = jnp.asarray(currents, dtype)
    n_samples = _check_int("n_samples", n_samples, 2)
    max_steps = _check_int("max_steps", max_steps, 1)
    controller = _controller(dtype, rtol, atol)
    counts, v_min, v_max, ok = _window_stats_core(
        params,
        currents.reshape(-1),
        jnp.asarray(duration, dtype),
        jnp.asarray(window, dtype),
        jnp.asarray(threshold, dtype),
        (n_samples, controller, max_steps),
    )
    firing = (counts >= min_spikes) & ok
    nan = jnp.full_like(v_min, jnp.nan)
    v_min, v_max = jnp.where(firing, v_min, nan), jnp.where(firing, v_max, nan)
    return v_min.reshape(currents.shape), v_max.reshape(currents.shape)


# --------------------------------------------------------------------------------------
# stability of the resting state, Hopf bifurcation


class StabilityResult(eqx.Module):
    """Linear stability of an equilibrium, as returned by [`hhjax.stability`][].

    **Fields:**

    - `i_hold`: the holding current [µA/cm²].
    - `state`: the equilibrium, an [`hhjax.HHState`][].
    - `eigenvalues`: the 4 eigenvalues [1/ms] of the Jacobian at `state` (complex;
      sorted by decreasing real part).
    - `max_real`: their largest real part [1/ms].
    - `stable`: `max_real < 0` (boolean array).

    Scalar fields (`eigenvalues`: `(4,)`), with leading batch axes under `jax.vmap`.

    ```pycon
    >>> import hhjax
    >>> s = hhjax.stability(hhjax.HHParams(), 0.0)
    >>> bool(s.stable), s.eigenvalues.shape, round(float(s.state.v), 2)
    (True, (4,), -65.0)

    ```
    """

    i_hold: Array
    state: HHState
    eigenvalues: Array
    max_real: Array
    stable: Array


def _max_real_eig(params: HHParams, i_hold: Array, v_guess) -> tuple[HHState, Array]:
    # resting_state's float32 default (1e-5) is below float32's resolution of the
    # ionic current at larger holding currents; 1e-4 converges there
    tol = None if params.dtype == jnp.float64 else _REST_TOL32
    state = resting_state(params, i_hold, v_guess=v_guess, rtol=tol, atol=tol)
    jac = jacobian_at(params, state, i_hold)
    return state, jnp.linalg.eigvals(jac)


@eqx.filter_jit
def _stability_core(params, i_hold, v_guess):
    state, eig = _max_real_eig(params, i_hold, v_guess)
    eig = eig[jnp.argsort(-eig.real)]
    max_real = eig.real[0]
    return StabilityResult(
        i_hold=i_hold,
        state=state,
        eigenvalues=eig,
        max_real=max_real,
        stable=max_real < 0,
    )


def stability(
    params: HHParams, i_hold: ArrayLike = 0.0, *, v_guess: ArrayLike | None = None
) -> StabilityResult:
    """Eigenvalues of the Jacobian at the resting state under a holding current.

    Finds the equilibrium with [`hhjax.resting_state`][] (Newton from `v_guess`,
    default `e_leak`), its 4×4 Jacobian with [`hhjax.jacobian_at`][] (forward-mode
    autodiff) and the eigenvalues with `jnp.linalg.eigvals`. The equilibrium is
    stable when every eigenvalue has a negative real part.

    !!! note
        `jnp.linalg.eigvals` of a non-symmetric matrix is LAPACK's `geev` on the
        CPU. On GPU, JAX calls the same LAPACK routine on the host (a transfer per
        call; fine for a 4×4 matrix); TPUs have no non-symmetric eigensolver, so
        run [`hhjax.stability`][] and [`hhjax.hopf_current`][] on the CPU there
        (`with jax.default_device(jax.devices("cpu")[0]): ...`). The eigenvalues
        are not meant to be differentiated.

    **Arguments:**

    - `params`: an [`hhjax.HHParams`][] of one neuron (`vmap` for batches).
    - `i_hold`: holding current [µA/cm²] (scalar; `vmap` over several).
    - `v_guess`: Newton's starting voltage [mV].

    **Returns:** a [`hhjax.StabilityResult`][]; complex eigenvalues of the precision
    of `params` (complex128 for float64).

    **Raises:** `TypeError`/`ValueError` for a bad `params` or non-scalar `i_hold`.

    **Example:**

    ```pycon
    >>> import hhjax
    >>> s = hhjax.stability(hhjax.HHParams(), 12.0)   # above the Hopf current (≈ 9.78)
    >>> bool(s.stable), round(float(s.max_real), 3)   # 1/ms
    (False, 0.04)
    >>> round(abs(float(s.eigenvalues[0].imag)), 3)   # rad/ms: ≈ 96 Hz
    0.605

    ```
    """
    _check_params(params)
    _check_scalar("i_hold", i_hold, "µA/cm²")
    if v_guess is not None:
        _check_scalar("v_guess", v_guess, "mV")
        v_guess = jnp.asarray(v_guess, params.dtype)
    return _stability_core(params, jnp.asarray(i_hold, params.dtype), v_guess)


@eqx.filter_jit
def _hopf_core(params, i_min, i_max, n_grid, iterations):
    dtype = params.dtype

    def growth(i):
        return _max_real_eig(params, i, None)[1].real.max()

    grid = jnp.linspace(i_min, i_max, n_grid, dtype=dtype)
    g = jax.vmap(growth)(grid)
    unstable = g >= 0
    valid = jnp.invert(unstable[0]) & jnp.any(unstable)
    k = jnp.clip(jnp.argmax(unstable), 1, n_grid - 1)

    def body(_, ab):
        a, b = ab
        mid = 0.5 * (a + b)
        up = growth(mid) >= 0
        return jnp.where(up, a, mid), jnp.where(up, mid, b)

    a, b = jax.lax.fori_loop(0, iterations, body, (grid[k - 1], grid[k]))
    mid = 0.5 * (a + b)
    return jnp.where(valid, mid, jnp.full_like(mid, jnp.nan))


def hopf_current(
    params: HHParams,
    *,
    i_min: float = 0.0,
    i_max: float = 200.0,
    n_grid: int = 65,
    iterations: int = 60,
) -> Array:
    """The holding current [µA/cm²] at which the resting state loses stability
    (Hopf bifurcation: the leading complex pair of eigenvalues crosses the imaginary
    axis).

    The growth rate `g(I)` — the largest real part of the eigenvalues of the
    Jacobian at `resting_state(params, I)`, see [`hhjax.stability`][] — is evaluated
    on `n_grid` currents from `i_min` to `i_max` (one vmapped call); the first
    interval where `g` changes from negative to non-negative is then bisected
    `iterations` times (down to the floating-point resolution with the defaults).
    Jit-compiled, vmappable over parameters; the eigenvalue note of
    [`hhjax.stability`][] applies.

    For the classic model: ≈ 9.7754 µA/cm² (subcritical; the resting state is stable
    again above ≈ 154 µA/cm², which is beyond the first crossing).

    **Arguments:**

    - `params`: an [`hhjax.HHParams`][] of one neuron.
    - `i_min`, `i_max`: scanned range [µA/cm²] (concrete).
    - `n_grid`: grid size of the scan (static int ≥ 2).
    - `iterations`: bisection steps (static int ≥ 0).

    **Returns:** a scalar array [µA/cm²] (dtype of `params`); NaN when the resting
    state is already unstable at `i_min` or stays stable up to `i_max`. The
    resting state is the one Newton reaches from `e_leak` (unique for the classic
    model).

    **Raises:** `TypeError`/`ValueError` naming the argument for bad input.

    **Example:**

    ```pycon
    >>> import hhjax
    >>> print(f"{float(hhjax.hopf_current(hhjax.HHParams())):.4f} µA/cm²")
    9.7754 µA/cm²

    ```
    """
    _check_params(params)
    lo = _static_float("i_min", i_min, "µA/cm²")
    hi = _static_float("i_max", i_max, "µA/cm²")
    if not hi > lo:
        raise ValueError(
            f"`i_max` must be > `i_min` (µA/cm²), got i_min={lo}, i_max={hi}."
        )
    n_grid = _check_int("n_grid", n_grid, 2)
    iterations = _check_int("iterations", iterations, 0)
    dtype = params.dtype
    return _hopf_core(
        params, jnp.asarray(lo, dtype), jnp.asarray(hi, dtype), n_grid, iterations
    )


# --------------------------------------------------------------------------------------
# limit cycles


class LimitCycle(eqx.Module):
    """One period of a periodic orbit, as returned by [`hhjax.limit_cycle`][].

    **Fields:**

    - `t`: times [ms] from 0 to `period`, shape `(n_samples,)`; t = 0 is an upward
      threshold crossing of `v`.
    - `state`: an [`hhjax.HHState`][] with fields of shape `(n_samples,)` (the
      first and last samples coincide up to the solver's accuracy).
    - `period`: the period [ms] (NaN when no sustained oscillation was found).
    - `i_hold`: the holding current [µA/cm²].

    **Properties:** `v` [mV], `m`, `h`, `n`, `frequency_hz` [Hz], `v_min`, `v_max`
    [mV]. Under `jax.vmap` every field gets the batch axes in front.

    ```pycon
    >>> import hhjax
    >>> lc = hhjax.limit_cycle(hhjax.HHParams(), 10.0, t_settle=100.0, max_period=20.0)
    >>> isinstance(lc, hhjax.LimitCycle), lc.t.shape, round(float(lc.v_min), 1)
    (True, (1001,), -74.9)

    ```
    """

    t: Array
    state: HHState
    period: Array
    i_hold: Array

    @property
    def v(self) -> Array:
        """Membrane potential [mV] over one period."""
        return self.state.v

    @property
    def m(self) -> Array:
        """Na⁺ activation over one period."""
        return self.state.m

    @property
    def h(self) -> Array:
        """Na⁺ inactivation over one period."""
        return self.state.h

    @property
    def n(self) -> Array:
        """K⁺ activation over one period."""
        return self.state.n

    @property
    def frequency_hz(self) -> Array:
        """Oscillation frequency [Hz] (`1000 / period`)."""
        return 1000.0 / self.period

    @property
    def v_min(self) -> Array:
        """Minimum membrane potential on the orbit [mV]."""
        return jnp.min(self.state.v, axis=-1)

    @property
    def v_max(self) -> Array:
        """Maximum membrane potential on the orbit [mV]."""
        return jnp.max(self.state.v, axis=-1)


def _hermite_resample(t: Array, y: Array, dydt: Array, t_new: Array) -> Array:
    """Cubic Hermite interpolation of samples `y` (with derivatives `dydt`) at times
    `t` (increasing), evaluated at `t_new` (within `[t[0], t[-1]]`)."""
    k = jnp.clip(jnp.searchsorted(t, t_new, side="right") - 1, 0, t.shape[0] - 2)
    h = t[k + 1] - t[k]
    s = (t_new - t[k]) / h
    s2, s3 = s * s, s * s * s
    return (
        (2 * s3 - 3 * s2 + 1) * y[k]
        + (s3 - 2 * s2 + s) * h * dydt[k]
        + (-2 * s3 + 3 * s2) * y[k + 1]
        + (s3 - s2) * h * dydt[k + 1]
    )


@eqx.filter_jit
def _limit_cycle_core(params, i_hold, y0, t_settle, threshold, max_period, static):
    n_probe, n_samples, controller, max_steps = static
    dtype = params.dtype
    stim = ConstantCurrent(i_hold, dtype=dtype)
    if y0 is None:
        y0 = resting_state(params)
    probe_ts = t_settle + 2 * max_period * jnp.linspace(0.0, 1.0, n_probe, dtype=dtype)
    probe = simulate(
        params,
        stim,
        probe_ts[-1],
        ts=probe_ts,
        y0=y0,
        stepsize_controller=controller,
        max_steps=max_steps,
        throw=False,
    )
    spk = spike_times(probe, threshold, max_spikes=2)
    found = jnp.all(jnp.isfinite(spk)) & probe.successful
    t_a = jnp.where(found, spk[0], t_settle)
    period = jnp.where(found, spk[1] - spk[0], max_period)
    ts = t_a + period * jnp.linspace(0.0, 1.0, n_samples, dtype=dtype)
    # one period resampled from the probe on its cubic Hermite interpolant (the
    # derivatives are the vector field's), 4th order in the 0.025 ms probe spacing
    deriv = model_derivatives(params, probe.state, jnp.broadcast_to(i_hold, probe.t.shape))
    state = jax.tree_util.tree_map(
        lambda y, dy: _hermite_resample(probe.t, y, dy, ts), probe.state, deriv
    )
    nan = jnp.asarray(jnp.nan, dtype)
    state = jax.tree_util.tree_map(lambda x: jnp.where(found, x, nan), state)
    return LimitCycle(
        t=jnp.where(found, ts - ts[0], nan),
        state=state,
        period=jnp.where(found, period, nan),
        i_hold=i_hold,
    )


def limit_cycle(
    params: HHParams,
    i_hold: ArrayLike,
    *,
    y0: HHState | None = None,
    t_settle: ArrayLike = 500.0,
    max_period: float = 100.0,
    threshold: ArrayLike = 0.0,
    n_samples: int = 1001,
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int = DEFAULT_ANALYSIS_MAX_STEPS,
) -> LimitCycle:
    """One period of the periodic orbit (repetitive firing) under a constant current.

    The neuron starts from `y0` (default: the resting state at zero current, i.e.
    the step protocol of [`hhjax.fi_curve`][]) with `i_hold` switched on at t = 0;
    after `t_settle` ms the voltage is sampled every 0.025 ms for `2 * max_period`
    ms; the first two upward crossings of `threshold` [mV] give the period, and the
    orbit over exactly one period, starting at the first crossing, is resampled at
    `n_samples` points from the cubic Hermite interpolant of the samples (with the
    vector field as derivative; 4th order: errors below 1e-3 mV and 1e-6 ms
    in float64). Tsit5 with rtol = atol = 1e-8 (float64). Jit-compiled; vmappable
    over `i_hold` and parameters.

    **Arguments:**

    - `params`: an [`hhjax.HHParams`][] of one neuron.
    - `i_hold`: constant current [µA/cm²] (scalar).
    - `y0`: initial [`hhjax.HHState`][] (in the bistable range the orbit is only
      reached from its basin of attraction).
    - `t_settle`: transient discarded [ms], > 0.
    - `max_period`: the longest period that can be detected [ms] (concrete).
    - `threshold`: crossing level [mV] that defines the phase origin.
    - `n_samples`: samples over the period (static int ≥ 2).
    - `rtol`, `atol`, `max_steps`: solver options.

    **Returns:** a [`hhjax.LimitCycle`][]; its `period` (and samples) are NaN when
    fewer than two crossings were found (no sustained firing) or a solve failed.
    The period is the interval between consecutive crossings, so orbits with one
    spike per period are assumed (for bursts it is the interval within a burst).

    **Raises:** `TypeError`/`ValueError` naming the argument and unit for bad
    input.

    **Example:**

    ```pycon
    >>> import hhjax
    >>> lc = hhjax.limit_cycle(hhjax.HHParams(), 10.0, t_settle=100.0, max_period=20.0)
    >>> round(float(lc.period), 2), round(float(lc.frequency_hz), 1)     # ms, Hz
    (14.64, 68.3)
    >>> lc.v.shape, round(float(lc.v_max), 1)                            # mV
    ((1001,), 30.4)
    >>> fig = hhjax.plot_phase_plane(lc, x="v", y="n")

    ```
    """
    _check_params(params)
    _check_scalar("i_hold", i_hold, "µA/cm²")
    _check_scalar("t_settle", t_settle, "ms", positive=True)
    _check_scalar("threshold", threshold, "mV")
    max_period = _static_float("max_period", max_period, "ms")
    if not max_period > 0:
        raise ValueError(f"`max_period` must be > 0 ms, got {max_period!r}.")
    n_samples = _check_int("n_samples", n_samples, 2)
    max_steps = _check_int("max_steps", max_steps, 1)
    if y0 is not None and not isinstance(y0, (HHState, MembraneState)):
        raise TypeError(f"`y0` must be an hhjax.HHState, got {type(y0).__name__}.")
    dtype = params.dtype
    if y0 is not None:
        y0 = jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype), y0)
    controller = _controller(dtype, rtol, atol)
    n_probe = int(math.ceil(2 * max_period / _PROBE_DT)) + 1
    return _limit_cycle_core(
        params,
        jnp.asarray(i_hold, dtype),
        y0,
        jnp.asarray(t_settle, dtype),
        jnp.asarray(threshold, dtype),
        jnp.asarray(max_period, dtype),
        (n_probe, n_samples, controller, max_steps),
    )


# --------------------------------------------------------------------------------------
# gating curves and nullclines


class GatingCurves(eqx.Module):
    """Steady states and time constants of the gates, from
    [`hhjax.gating_curves`][].

    **Fields:**

    - `v`: membrane potentials [mV].
    - `inf`: dict gate name (`"m"`, `"h"`, `"n"`) → steady-state open fraction
      x∞(v) [dimensionless], each of the shape of `v`.
    - `tau`: dict gate name → time constant τx(v) [ms].

    ```pycon
    >>> import jax, jax.numpy as jnp, hhjax
    >>> g = jax.jit(hhjax.gating_curves)(hhjax.HHParams(),
    ...                                  jnp.linspace(-100.0, 50.0, 151))
    >>> isinstance(g, hhjax.GatingCurves), g.v.shape, sorted(g.tau)
    (True, (151,), ['h', 'm', 'n'])

    ```
    """

    v: Array
    inf: dict[str, Array]
    tau: dict[str, Array]


def gating_curves(params: HHParams | Membrane, v: ArrayLike) -> GatingCurves:
    """Steady-state activation/inactivation x∞(v) and time constants τx(v) [ms] of
    every gate at the membrane potentials `v` [mV] (any shape).

    `x∞ = α/(α+β)` and `τx = 1/(α+β)` with the temperature-scaled rates of
    [`hhjax.HHParams`][] (`gate_inf`, `gate_tau`).

    **Returns:** a [`hhjax.GatingCurves`][] with the dtype of `params`.

    **Raises:** `TypeError` for a non-`HHParams` `params` or non-numeric `v`;
    `ValueError` for non-finite `v`.

    **Example:**

    ```pycon
    >>> import jax, jax.numpy as jnp, hhjax
    >>> g = jax.jit(hhjax.gating_curves)(hhjax.HHParams(),
    ...                                  jnp.linspace(-100.0, 50.0, 151))
    >>> sorted(g.inf), g.inf["m"].shape
    (['h', 'm', 'n'], (151,))
    >>> round(float(g.tau["h"].max()), 2)         # ms, the slowest gate
    8.58

    ```
    """
    if not isinstance(params, (HHParams, Membrane)):
        raise TypeError(
            "`params` must be an hhjax.HHParams or hhjax.Membrane, got "
            f"{type(params).__name__}."
        )
    if isinstance(v, (str, bytes)) or v is None:
        raise TypeError(
            f"`v` must be an array of membrane potentials in mV, got {v!r}."
        )
    v = jnp.asarray(v, params.dtype)
    if is_concrete(v) and not np.all(np.isfinite(np.asarray(v))):
        raise ValueError("`v` must be finite (mV).")
    inf = params.gate_inf(v)
    tau = params.gate_tau(v)
    shape = jnp.broadcast_shapes(jnp.shape(v), *(jnp.shape(x) for x in inf.values()))
    return GatingCurves(v=jnp.broadcast_to(v, shape), inf=inf, tau=tau)


class Nullclines(eqx.Module):
    """Nullclines of the reduced (V, n) model, from [`hhjax.nullclines_vn`][].

    **Fields:**

    - `v`: membrane potentials [mV].
    - `v_nullcline`: n on the V-nullcline (dV/dt = 0) at each `v` [dimensionless];
      NaN where there is no solution in [0, 1].
    - `n_nullcline`: n on the n-nullcline, n∞(v) [dimensionless].
    - `i_stim`: the injected current [µA/cm²].

    ```pycon
    >>> import jax, jax.numpy as jnp, hhjax
    >>> nc = jax.jit(hhjax.nullclines_vn)(hhjax.HHParams(), jnp.linspace(-80.0, 40.0, 7))
    >>> isinstance(nc, hhjax.Nullclines), nc.v_nullcline.shape, float(nc.i_stim)
    (True, (7,), 0.0)

    ```
    """

    v: Array
    v_nullcline: Array
    n_nullcline: Array
    i_stim: Array


def reduced_vn_dvdt(
    params: HHParams, v: ArrayLike, n: ArrayLike, i_stim: ArrayLike = 0.0
) -> Array:
    """dV/dt [mV/ms] of the reduced two-variable HH model at `(v, n)`.

    Reduction (Rinzel's; seed 003's notebook): sodium activation is instantaneous,
    `m = m∞(v)`, and inactivation follows the potassium gate, `h = 0.89 − 1.1 n`
    (not clipped), so

    `c_m dV/dt = i_stim − g_na m∞(v)³ (0.89 − 1.1 n)(v − e_na)
    − g_k n⁴ (v − e_k) − g_leak (v − e_leak)`

    with m∞ from the rates of `params`. The second equation, `dn/dt`, is the full
    model's. Arrays broadcast; the result has the dtype of `params`.

    ```pycon
    >>> import hhjax
    >>> round(float(hhjax.reduced_vn_dvdt(hhjax.HHParams(), -65.0, 0.3177)), 3)  # mV/ms
    -0.111

    ```
    """
    v = jnp.asarray(v, params.dtype)
    n = jnp.asarray(n, params.dtype)
    m = params.gate_inf(v)["m"]
    h = 0.89 - 1.1 * n
    i_ion = (
        params.g_na * m**3 * h * (v - params.e_na)
        + params.g_k * n**4 * (v - params.e_k)
        + params.g_leak * (v - params.e_leak)
    )
    return (jnp.asarray(i_stim, params.dtype) - i_ion) / params.c_m


def nullclines_vn(
    params: HHParams | Membrane,
    v: ArrayLike,
    i_stim: ArrayLike = 0.0,
    *,
    iterations: int = 60,
) -> Nullclines:
    """Nullclines of the reduced two-variable (V, n) Hodgkin–Huxley model.

    The model is the one of [`hhjax.reduced_vn_dvdt`][] (`m = m∞(V)`,
    `h = 0.89 − 1.1 n`). The V-nullcline at each `v` is the `n ∈ [0, 1]` solving
    dV/dt = 0, a quartic in n, found by vectorised bisection on [0, 1]
    (`iterations` halvings; for e_k < v < e_na dV/dt decreases strictly with n, so
    the root is unique). Where dV/dt does not change sign on [0, 1] the result is
    NaN. The n-nullcline is n∞(v).

    **Arguments:**

    - `params`: an [`hhjax.HHParams`][] (rates, conductances, reversals), or any
      two-variable [`hhjax.Membrane`][] (exactly one kinetic gate, e.g.
      `Membrane.reduced_hh()` of seed 003): then its own dV/dt and gate x∞ are used
      (the "n" fields hold that gate).
    - `v`: membrane potentials [mV], any shape.
    - `i_stim`: injected current [µA/cm²].
    - `iterations`: bisection steps (static int).

    **Returns:** a [`hhjax.Nullclines`][] with arrays of the shape of `v`.

    **Raises:** `TypeError`/`ValueError` for a bad `params`, non-finite `v` or a
    non-scalar `i_stim`.

    **Example:**

    ```pycon
    >>> import jax, jax.numpy as jnp, hhjax
    >>> v = jnp.linspace(-80.0, 40.0, 7)
    >>> nc = jax.jit(hhjax.nullclines_vn)(hhjax.HHParams(), v)
    >>> [round(float(n), 3) for n in nc.v_nullcline]     # NaN: no root in [0, 1]
    [nan, 0.331, 0.648, 0.719, 0.698, 0.647, 0.532]

    ```

    Draw them with a trajectory: `hhjax.plot_phase_plane(hhjax.limit_cycle(p, 10.0),
    nullclines=nc)`.
    """
    if isinstance(params, Membrane):
        check_membrane_scalar(params)
        if len(params.kinetic_gates) != 1:
            raise ValueError(
                "`nullclines_vn` needs a two-variable membrane (v and one kinetic gate); "
                f"this one has kinetic gates {params.kinetic_gates}."
            )
    elif not isinstance(params, HHParams):
        raise TypeError(
            "`params` must be an hhjax.HHParams or a two-variable hhjax.Membrane, got "
            f"{type(params).__name__}."
        )
    else:
        check_params_scalar(params)
    _check_scalar("i_stim", i_stim, "µA/cm²")
    iterations = _check_int("iterations", iterations, 1)
    if isinstance(v, (str, bytes)) or v is None:
        raise TypeError(
            f"`v` must be an array of membrane potentials in mV, got {v!r}."
        )
    dtype = params.dtype
    v = jnp.asarray(v, dtype)
    if is_concrete(v) and not np.all(np.isfinite(np.asarray(v))):
        raise ValueError("`v` must be finite (mV).")
    i_stim = jnp.asarray(i_stim, dtype)

    if isinstance(params, Membrane):
        gate = params.kinetic_gates[0]

        def f(n):
            state = MembraneState(v=v, gates={gate: n})
            return params.derivatives(state, i_stim).v

        x_inf = params.gate_inf(v)[gate]
    else:

        def f(n):
            return reduced_vn_dvdt(params, v, n, i_stim)

        x_inf = params.gate_inf(v)["n"]

    zero, one = jnp.zeros_like(v), jnp.ones_like(v)
    f0, f1 = f(zero), f(one)
    bracketed = (f0 >= 0) != (f1 >= 0)
    # keep `lo` on the side with the sign of f(0)
    sign0 = f0 >= 0

    def body(_, ab):
        a, b = ab
        mid = 0.5 * (a + b)
        same = (f(mid) >= 0) == sign0
        return jnp.where(same, mid, a), jnp.where(same, b, mid)

    a, b = jax.lax.fori_loop(0, iterations, body, (zero, one))
    n_v = jnp.where(bracketed, 0.5 * (a + b), jnp.full_like(v, jnp.nan))
    return Nullclines(
        v=v, v_nullcline=n_v, n_nullcline=jnp.broadcast_to(x_inf, v.shape), i_stim=i_stim
    )
