"""Spike detection: upward threshold crossings, interpolated between samples.

Everything here is jit/vmap friendly: spike times come back in a fixed-size array
padded with NaN, and are differentiable with respect to the trace (the crossing time
moves smoothly with the samples around it).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike

from ._simulate import SimulationResult

#: Default length of the spike-time array returned by `spike_times`.
DEFAULT_MAX_SPIKES = 100


def _crossing_mask(v: Array, threshold) -> Array:
    """mask[k] is True when v crosses `threshold` upward within [t_k, t_{k+1}]:
    `v[k] < threshold <= v[k+1]` (the rule "V > θ and previous V <= θ" of the seeds,
    up to the side the sample exactly at θ falls on)."""
    return (v[:-1] < threshold) & (v[1:] >= threshold)


def _locate_rising(
    t: Array, v: Array, dvdt: Array | None, idx: Array, level: Array, newton_steps: int
) -> Array:
    """Time at which `v` rises through `level` inside the intervals `[t_idx,
    t_idx+1]`: linear interpolation, or Newton on the cubic Hermite interpolant
    when `dvdt` is given (the same arithmetic as [`hhjax.crossing_times`][])."""
    t0, t1 = t[idx], t[idx + 1]
    v0, v1 = v[idx], v[idx + 1]
    dt = t1 - t0
    dv = v1 - v0
    safe_dv = jnp.where(dv == 0, jnp.ones_like(dv), dv)
    s = jnp.clip((level - v0) / safe_dv, 0.0, 1.0)
    if dvdt is not None:
        d0, d1 = dvdt[idx] * dt, dvdt[idx + 1] * dt

        def newton(_, s):
            s2, s3 = s * s, s * s * s
            p = (
                (2 * s3 - 3 * s2 + 1) * v0
                + (s3 - 2 * s2 + s) * d0
                + (-2 * s3 + 3 * s2) * v1
                + (s3 - s2) * d1
                - level
            )
            dp = (
                (6 * s2 - 6 * s) * v0
                + (3 * s2 - 4 * s + 1) * d0
                + (-6 * s2 + 6 * s) * v1
                + (3 * s2 - 2 * s) * d1
            )
            ok = dp > 0
            safe_dp = jnp.where(ok, dp, jnp.ones_like(dp))
            return jnp.where(ok, jnp.clip(s - p / safe_dp, 0.0, 1.0), s)

        # a (static-length) loop rather than unrolled steps: smaller programs to
        # compile, notably for jacobians.
        s = jax.lax.fori_loop(0, newton_steps, newton, s)
    return t0 + s * dt


def crossing_times(
    t: ArrayLike,
    v: ArrayLike,
    threshold: ArrayLike = 0.0,
    *,
    dvdt: ArrayLike | None = None,
    max_spikes: int = DEFAULT_MAX_SPIKES,
    newton_steps: int = 4,
) -> Array:
    """Times [ms] at which the trace `v` [mV] crosses `threshold` [mV] from below.

    **Arguments:**

    - `t`: sample times [ms], shape `(T,)`, increasing.
    - `v`: samples [mV], shape `(T,)`.
    - `threshold`: crossing level [mV].
    - `dvdt`: optional derivative [mV/ms] at the samples. When given, the crossing
      is located on the cubic Hermite interpolant (4th-order accurate in the sample
      spacing); otherwise by linear interpolation (2nd order).
    - `max_spikes`: length of the output (static int).
    - `newton_steps`: Newton iterations on the Hermite cubic.

    **Returns:** array `(max_spikes,)` of crossing times [ms] in the dtype of `t`
    and `v`, in order, padded with NaN. Crossings beyond `max_spikes` are dropped
    (see [`hhjax.spike_count`][] for the full count). A crossing is
    `v[k] < threshold <= v[k+1]`.

    **Raises:** `ValueError` for `t`, `v` (or `dvdt`) that are not 1-D arrays of
    one shape (batch with `jax.vmap`), or a `max_spikes` that is not a positive
    integer.

    **Example** (linear interpolation between samples):

    ```pycon
    >>> import jax.numpy as jnp, hhjax
    >>> t = jnp.arange(6.0)                                  # ms
    >>> v = jnp.array([-65.0, 10.0, -70.0, -65.0, 35.0, -70.0])   # mV
    >>> [round(float(x), 4) for x in hhjax.crossing_times(t, v, 0.0, max_spikes=3)]
    [0.8667, 3.65, nan]

    ```
    """
    t = jnp.asarray(t)
    v = jnp.asarray(v)
    if t.ndim != 1 or v.shape != t.shape:
        raise ValueError(
            f"`t` and `v` must be 1-D arrays of the same shape, got {t.shape} and "
            f"{v.shape} (use jax.vmap for batches)."
        )
    if int(max_spikes) != max_spikes or max_spikes < 1:
        raise ValueError(f"`max_spikes` must be a positive integer, got {max_spikes!r}.")
    mask = _crossing_mask(v, threshold)
    count = jnp.sum(mask)
    (idx,) = jnp.nonzero(mask, size=max_spikes, fill_value=0)
    if dvdt is not None:
        dvdt = jnp.asarray(dvdt)
        if dvdt.shape != t.shape:
            raise ValueError(f"`dvdt` must have the shape of `t` {t.shape}, got {dvdt.shape}.")
    times = _locate_rising(t, v, dvdt, idx, threshold, newton_steps)
    valid = jnp.arange(max_spikes) < count
    return jnp.where(valid, times, jnp.full_like(times, jnp.nan))


def spike_times(
    result: SimulationResult,
    threshold: ArrayLike = 0.0,
    *,
    max_spikes: int = DEFAULT_MAX_SPIKES,
) -> Array:
    """Spike times [ms] of a simulation: upward crossings of `threshold` [mV].

    Crossings are located on the cubic Hermite interpolant built from the samples
    and the model's own `dv/dt` at them, so they are accurate to well below the
    sampling interval. Differentiable with respect to parameters.

    **Arguments:** `result` (one neuron; `jax.vmap` for batches), `threshold` [mV],
    `max_spikes` (static int, default 100).

    **Returns:** `(max_spikes,)` array of times [ms] (dtype of the result), in
    order, padded with NaN.

    **Raises:** `TypeError` when `result` is not an [`hhjax.SimulationResult`][]
    (use [`hhjax.crossing_times`][] for raw arrays).

    **Example:**

    ```pycon
    >>> import jax.numpy as jnp, hhjax
    >>> res = hhjax.simulate(hhjax.HHParams(), hhjax.StepCurrent(10.0, 2.0, 20.0),
    ...                      t_end=20.0)
    >>> spikes = hhjax.spike_times(res, threshold=0.0, max_spikes=4)
    >>> [round(float(t), 2) for t in spikes], int(jnp.sum(jnp.isfinite(spikes)))
    ([3.9, 18.82, nan, nan], 2)

    ```
    """
    if not isinstance(result, SimulationResult):
        raise TypeError(
            "`result` must be an hhjax.SimulationResult; for raw arrays use "
            "hhjax.crossing_times(t, v, threshold)."
        )
    return crossing_times(
        result.t, result.v, threshold, dvdt=result.dvdt, max_spikes=max_spikes
    )


def spike_count(
    v_or_result: SimulationResult | ArrayLike,
    threshold: ArrayLike = 0.0,
    *,
    t: ArrayLike | None = None,
    t_start: ArrayLike | None = None,
    t_stop: ArrayLike | None = None,
) -> Array:
    """Number of upward crossings of `threshold` [mV] (an integer array; not capped).

    Pass a [`hhjax.SimulationResult`][], or a voltage trace [mV] together with its
    sample times `t` [ms] when a window is used. `t_start`/`t_stop` [ms] restrict the
    count to crossings whose interval starts in `[t_start, t_stop)`.

    **Returns:** an integer scalar array (a 1-D `v` of shape `(T,)`; `jax.vmap` for
    batches).

    **Raises:** `ValueError` when `t_start`/`t_stop` are given for a raw trace
    without `t`.

    ```pycon
    >>> import hhjax
    >>> res = hhjax.simulate(hhjax.HHParams(), hhjax.StepCurrent(10.0, 2.0, 20.0),
    ...                      t_end=20.0)
    >>> int(hhjax.spike_count(res)), int(hhjax.spike_count(res, t_start=10.0))
    (2, 1)
    >>> int(hhjax.spike_count(res.v, -20.0))       # a raw trace [mV], threshold -20 mV
    2

    ```
    """
    if isinstance(v_or_result, SimulationResult):
        v, t = v_or_result.v, v_or_result.t
    else:
        v = jnp.asarray(v_or_result)
    mask = _crossing_mask(v, threshold)
    if t_start is not None or t_stop is not None:
        if t is None:
            raise ValueError("`t` (sample times, ms) is needed with `t_start`/`t_stop`.")
        tk = jnp.asarray(t)[:-1]
        if t_start is not None:
            mask = mask & (tk >= t_start)
        if t_stop is not None:
            mask = mask & (tk < t_stop)
    return jnp.sum(mask)


def firing_rate(
    result: SimulationResult,
    threshold: ArrayLike = 0.0,
    *,
    t_start: ArrayLike | None = None,
    t_stop: ArrayLike | None = None,
) -> Array:
    """Mean firing rate [Hz] of a simulation in `[t_start, t_stop)` [ms] (default:
    the whole simulated span): spike count / duration.

    **Returns:** a float scalar array [Hz] (the dtype of the result).

    ```pycon
    >>> import hhjax
    >>> res = hhjax.simulate(hhjax.HHParams(), hhjax.StepCurrent(10.0, 2.0, 20.0),
    ...                      t_end=20.0)
    >>> float(hhjax.firing_rate(res))       # 2 spikes in 20 ms
    100.0

    ```
    """
    if t_start is None:
        t_start = result.t[0]
    if t_stop is None:
        t_stop = result.t[-1]
    n = spike_count(result, threshold, t=result.t, t_start=t_start, t_stop=t_stop)
    return n / (t_stop - t_start) * 1000.0
