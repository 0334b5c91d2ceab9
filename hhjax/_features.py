"""Electrophysiological features of one voltage trace (spike count, latency, ISI
statistics, AP peak/width, AHP trough, resting and steady-state potentials).

Everything is computed with fixed-size arrays, so [`hhjax.trace_features`][] works
under `jit`, batches with `jax.vmap`, and is differentiable with respect to the
samples wherever the feature is a continuous function of them. Each sample is given
the index of the spike it follows (a cumulative sum of the upward-crossing mask);
per-spike quantities are then segment reductions (`jax.ops.segment_max`/`_min`).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ._spikes import _crossing_mask, _locate_rising

#: Default length of `TraceFeatures.spike_times` (and number of spikes that enter
#: the per-spike averages).
DEFAULT_FEATURE_MAX_SPIKES = 50

_FEATURE_NAMES = (
    "resting_potential",
    "spike_count",
    "first_spike_latency",
    "mean_isi",
    "cv_isi",
    "ap_peak",
    "ap_width",
    "ahp_depth",
    "steady_state_potential",
    "mean_firing_rate",
)


def feature_names() -> tuple[str, ...]:
    """Names of the scalar fields of [`hhjax.TraceFeatures`][] (all but
    `spike_times`), in the default order of `TraceFeatures.as_array`.

    **Returns:** a tuple of 10 strings.

    ```pycon
    >>> import hhjax
    >>> hhjax.feature_names()[:3], len(hhjax.feature_names())
    (('resting_potential', 'spike_count', 'first_spike_latency'), 10)

    ```
    """
    return _FEATURE_NAMES


class TraceFeatures(eqx.Module):
    """Features of one voltage trace, as returned by [`hhjax.trace_features`][].

    Every field is a scalar array (with a leading batch axis under `jax.vmap`),
    except `spike_times`. A feature that is undefined for the trace (for example an
    inter-spike interval with fewer than two spikes) is NaN.

    **Fields:**

    - `resting_potential`: mean of `v` over the rest window [mV].
    - `spike_count`: number of upward threshold crossings in the stimulus window
      (float; not capped at `max_spikes`).
    - `spike_times`: `(max_spikes,)` crossing times [ms], in order, NaN-padded.
    - `first_spike_latency`: first spike time minus the start of the stimulus
      window (or of the trace) [ms].
    - `mean_isi`: mean inter-spike interval [ms] (needs ≥ 2 spikes).
    - `cv_isi`: coefficient of variation of the intervals, population standard
      deviation / mean (dimensionless; needs ≥ 2 spikes).
    - `ap_peak`: mean over spikes of the maximum of `v` between a spike's crossing
      and the next one (or the end of the trace) [mV].
    - `ap_width`: mean over spikes of the time from the upward to the following
      downward crossing of `threshold` [ms].
    - `ahp_depth`: mean over spikes of the minimum of `v` after the spike (below
      `threshold`, before the next spike and the end of the stimulus window): the
      after-hyperpolarisation trough voltage [mV], not a difference.
    - `steady_state_potential`: mean of `v` over the last 10 % of the stimulus
      window (or of the trace) [mV].
    - `mean_firing_rate`: `spike_count` / window duration [Hz].

    The dtype is that of the trace. `features.as_array()` stacks the scalar
    features (a `(10,)` array, or `(batch, 10)` under `jax.vmap`).

    ```pycon
    >>> import jax, hhjax
    >>> res = hhjax.simulate(hhjax.HHParams(), hhjax.StepCurrent(10.0, 2.0, 20.0),
    ...                      t_end=20.0)
    >>> f = jax.jit(hhjax.trace_features)(res.t, res.v, dvdt=res.dvdt,
    ...                                   stim_window=(2.0, 20.0))
    >>> isinstance(f, hhjax.TraceFeatures), f.spike_times.shape    # max_spikes = 50
    (True, (50,))
    >>> [round(float(t), 2) for t in f.spike_times[:3]]              # ms, NaN-padded
    [3.9, 18.82, nan]

    ```
    """

    resting_potential: Float[Array, ""]
    spike_count: Float[Array, ""]
    spike_times: Float[Array, " max_spikes"]
    first_spike_latency: Float[Array, ""]
    mean_isi: Float[Array, ""]
    cv_isi: Float[Array, ""]
    ap_peak: Float[Array, ""]
    ap_width: Float[Array, ""]
    ahp_depth: Float[Array, ""]
    steady_state_potential: Float[Array, ""]
    mean_firing_rate: Float[Array, ""]

    def as_array(self, names: tuple[str, ...] | list[str] | None = None) -> Array:
        """The features `names` (default: [`hhjax.feature_names`][]) stacked along
        a new last axis: shape `(len(names),)`, or `(batch, len(names))` for
        features computed under `jax.vmap`.

        **Raises:** `ValueError` for an unknown name (or `spike_times`, which is
        not a scalar).

        ```pycon
        >>> import jax, hhjax
        >>> res = hhjax.simulate(hhjax.HHParams(), hhjax.StepCurrent(10.0, 2.0, 20.0),
        ...                      t_end=20.0)
        >>> f = jax.jit(hhjax.trace_features)(res.t, res.v, dvdt=res.dvdt,
        ...                                   stim_window=(2.0, 20.0))
        >>> f.as_array().shape
        (10,)
        >>> [round(x, 2) for x in f.as_array(["spike_count", "mean_isi"]).tolist()]
        [2.0, 14.92]

        ```
        """
        if names is None:
            names = _FEATURE_NAMES
        if isinstance(names, str):
            names = (names,)
        unknown = [n for n in names if n not in _FEATURE_NAMES]
        if unknown:
            raise ValueError(
                f"Unknown feature name(s) {unknown}; choose from {_FEATURE_NAMES} "
                "(spike_times is not a scalar feature: use the field directly)."
            )
        if len(names) == 0:
            raise ValueError("`names` must name at least one feature.")
        arrays = [jnp.asarray(getattr(self, n)) for n in names]
        dtype = jnp.result_type(*arrays)
        return jnp.stack([a.astype(dtype) for a in arrays], axis=-1)


def _masked_mean(x: Array, mask: Array) -> tuple[Array, Array]:
    """(mean of `x` where `mask`, or 0 when empty; whether non-empty). The zero
    stand-in keeps the gradients of downstream arithmetic finite."""
    n = jnp.sum(mask)
    total = jnp.sum(jnp.where(mask, x, jnp.zeros_like(x)))
    mean = total / jnp.maximum(n, 1).astype(total.dtype)
    return mean, n > 0


def _nan_unless(x: Array, defined: Array) -> Array:
    return jnp.where(defined, x, jnp.full_like(x, jnp.nan))


def _window(w, dtype, name: str) -> Array:
    w = jnp.asarray(w, dtype=dtype)
    if w.shape != (2,):
        raise ValueError(
            f"`{name}` must be a pair (t_start, t_end) in ms, got shape {w.shape}."
        )
    return w


def trace_features(
    t: ArrayLike,
    v: ArrayLike,
    *,
    threshold: ArrayLike = 0.0,
    dvdt: ArrayLike | None = None,
    stim_window: tuple[ArrayLike, ArrayLike] | ArrayLike | None = None,
    rest_window: tuple[ArrayLike, ArrayLike] | ArrayLike | None = None,
    max_spikes: int = DEFAULT_FEATURE_MAX_SPIKES,
    newton_steps: int = 4,
) -> TraceFeatures:
    """Electrophysiological features of one voltage trace.

    **Arguments:**

    - `t`: sample times [ms], shape `(T,)`, increasing (`T ≥ 2`).
    - `v`: membrane potential [mV], shape `(T,)`. Batch with `jax.vmap`.
    - `threshold`: spike detection level [mV]. A spike is an upward crossing,
      `v[k] < threshold <= v[k+1]`, as in [`hhjax.crossing_times`][].
    - `dvdt`: optional `dv/dt` [mV/ms] at the samples (e.g. `result.dvdt`); crossing
      times (up and down) are then located on the cubic Hermite interpolant,
      otherwise by linear interpolation.
    - `stim_window`: `(t_on, t_off)` [ms] of the stimulus, or `None` for the whole
      trace. Spikes are the crossings whose interval starts in `[t_on, t_off)`
      (the convention of [`hhjax.spike_count`][]). May be traced.
    - `rest_window`: `(t_start, t_end)` [ms] over which the resting potential is
      averaged (samples with `t_start <= t <= t_end`). Default: the samples before
      `t_on` if `stim_window` is given, else the first 10 % of the trace.
    - `max_spikes`: length of `spike_times` (static int). Only the first
      `max_spikes` spikes in the window enter the per-spike averages (latency,
      ISI, peak, width, AHP); `spike_count` and `mean_firing_rate` count them all.
    - `newton_steps`: Newton iterations on the Hermite cubic (with `dvdt`).

    **Returns:** a [`hhjax.TraceFeatures`][]. Definitions, per spike `i` of the
    window (its *segment* runs from its crossing to the next upward crossing, in or
    out of the window, or to the end of the trace):

    - `ap_peak`: mean of the segment maxima of `v` (the whole excursion is used
      even if it outlasts the window).
    - `ap_width`: mean of `t_down,i − t_up,i`, the interpolated upward and next
      downward crossings of `threshold`; a spike with no downward crossing (trace
      ends above threshold) is left out.
    - `ahp_depth`: mean of the minima of `v` over the segment's samples below
      `threshold` and not after `t_off` (spikes without such samples are left out).
    - `steady_state_potential`: mean of `v` for `t_off − 0.1 (t_off − t_on) <= t <=
      t_off` (or the last 10 % of the trace).
    - `cv_isi` uses the population standard deviation (`ddof=0`); its gradient is
      taken as zero where all intervals are equal.

    Undefined features are NaN (no spikes: latency, ISI, peak, width, AHP; one
    spike: ISI statistics; an empty window: the corresponding mean). Gradients
    with respect to `v` are finite everywhere: those of `spike_count` and
    `mean_firing_rate` are zero; the peak and trough features pass the gradient
    to the arg-max/arg-min samples (weights summing to 1).

    **Raises:** `ValueError` for arrays of the wrong shape, a bad `max_spikes`, or
    windows that are not `(start, end)` pairs.

    **Example** (jit-compiled: one compilation instead of many small operations):

    ```pycon
    >>> import jax, hhjax
    >>> res = hhjax.simulate(hhjax.HHParams(), hhjax.StepCurrent(10.0, 2.0, 20.0),
    ...                      t_end=20.0)
    >>> f = jax.jit(hhjax.trace_features)(res.t, res.v, dvdt=res.dvdt,
    ...                                   stim_window=(2.0, 20.0))
    >>> int(f.spike_count), round(float(f.first_spike_latency), 2)   # ms after t_on
    (2, 1.9)
    >>> round(float(f.resting_potential), 1), round(float(f.mean_isi), 2)   # mV, ms
    (-65.0, 14.92)

    ```
    """
    t = jnp.asarray(t)
    v = jnp.asarray(v)
    if t.ndim != 1 or v.shape != t.shape:
        raise ValueError(
            f"`t` and `v` must be 1-D arrays of the same shape, got {t.shape} and "
            f"{v.shape} (use jax.vmap for batches)."
        )
    if t.shape[0] < 2:
        raise ValueError(f"The trace needs at least 2 samples, got {t.shape[0]}.")
    if not jnp.issubdtype(v.dtype, jnp.floating):
        v = v.astype(jnp.result_type(float))
    if not jnp.issubdtype(t.dtype, jnp.floating):
        t = t.astype(jnp.result_type(float))
    if isinstance(max_spikes, bool) or int(max_spikes) != max_spikes or max_spikes < 1:
        raise ValueError(
            f"`max_spikes` must be a positive integer, got {max_spikes!r}."
        )
    max_spikes = int(max_spikes)
    if dvdt is not None:
        dvdt = jnp.asarray(dvdt)
        if dvdt.shape != t.shape:
            raise ValueError(
                f"`dvdt` must have the shape of `t` {t.shape}, got {dvdt.shape}."
            )
        dvdt = dvdt.astype(v.dtype)
    threshold = jnp.asarray(threshold, dtype=v.dtype)
    if threshold.shape != ():
        raise ValueError(
            f"`threshold` must be a scalar [mV], got shape {threshold.shape}."
        )

    n_samples = t.shape[0]
    t_first, t_last = t[0], t[-1]
    tk = t[:-1]  # start of each sampling interval

    # --- windows -------------------------------------------------------------
    if stim_window is not None:
        w = _window(stim_window, t.dtype, "stim_window")
        t_on, t_off = w[0], w[1]
        in_win_interval = (tk >= t_on) & (tk < t_off)
        before_win_interval = tk < t_on
        upto_win_end = t <= t_off
    else:
        t_on, t_off = t_first, t_last
        in_win_interval = jnp.ones_like(tk, dtype=bool)
        before_win_interval = jnp.zeros_like(tk, dtype=bool)
        upto_win_end = jnp.ones_like(t, dtype=bool)
    duration = t_off - t_on

    if rest_window is not None:
        rw = _window(rest_window, t.dtype, "rest_window")
        rest_mask = (t >= rw[0]) & (t <= rw[1])
    elif stim_window is not None:
        rest_mask = t < t_on
    else:
        rest_mask = t <= t_first + 0.1 * (t_last - t_first)
    resting, has_rest = _masked_mean(v, rest_mask)
    resting = _nan_unless(resting, has_rest)

    steady_mask = (t >= t_off - 0.1 * duration) & (t <= t_off)
    steady, has_steady = _masked_mean(v, steady_mask)
    steady = _nan_unless(steady, has_steady)

    # --- spikes --------------------------------------------------------------
    up = _crossing_mask(v, threshold)  # (T-1,)
    spike_mask = up & in_win_interval
    n_spikes = jnp.sum(spike_mask)
    spike_count = n_spikes.astype(v.dtype)
    mean_rate = spike_count / duration * 1000.0

    (up_idx,) = jnp.nonzero(spike_mask, size=max_spikes, fill_value=0)
    valid = jnp.arange(max_spikes) < n_spikes
    t_up = _locate_rising(t, v, dvdt, up_idx, threshold, newton_steps)
    t_up_safe = jnp.where(valid, t_up, jnp.zeros_like(t_up))
    spike_times = _nan_unless(t_up, valid)

    latency = _nan_unless(t_up_safe[0] - t_on, n_spikes >= 1)

    isi = t_up_safe[1:] - t_up_safe[:-1]
    isi_valid = valid[1:]
    mean_isi, has_isi = _masked_mean(isi, isi_valid)
    var_isi, _ = _masked_mean((isi - mean_isi) ** 2, isi_valid)
    positive = var_isi > 0
    std_isi = jnp.where(
        positive, jnp.sqrt(jnp.where(positive, var_isi, jnp.ones_like(var_isi))), 0.0
    )
    safe_mean_isi = jnp.where(has_isi, mean_isi, jnp.ones_like(mean_isi))
    cv_isi = _nan_unless(std_isi / safe_mean_isi, has_isi)
    mean_isi = _nan_unless(mean_isi, has_isi)

    # --- segments: sample j belongs to spike seg[j] (1-based) of the window -------
    # global index: number of upward crossings (anywhere) in intervals k < j.
    n_before = jnp.sum(up & before_win_interval)
    global_seg = jnp.concatenate(
        [jnp.zeros((1,), dtype=jnp.int32), jnp.cumsum(up, dtype=jnp.int32)]
    )
    seg = jnp.clip(global_seg - n_before.astype(jnp.int32), 0, max_spikes + 1)
    num_segments = max_spikes + 2
    spike_ids = slice(1, max_spikes + 1)

    peaks = jax.ops.segment_max(v, seg, num_segments=num_segments)[spike_ids]
    ap_peak, has_peak = _masked_mean(peaks, valid)
    ap_peak = _nan_unless(ap_peak, has_peak)

    # first downward crossing in each segment: the end of the AP.
    down = (v[:-1] >= threshold) & (v[1:] < threshold)
    sentinel = n_samples - 1  # not an interval index
    interval_ids = jnp.arange(n_samples - 1, dtype=jnp.int32)
    first_down = jax.ops.segment_min(
        jnp.where(down, interval_ids, sentinel), seg[:-1], num_segments=num_segments
    )[spike_ids]
    has_down = valid & (first_down < sentinel)
    down_idx = jnp.clip(first_down, 0, n_samples - 2)
    neg_dvdt = None if dvdt is None else -dvdt
    t_down = _locate_rising(t, -v, neg_dvdt, down_idx, -threshold, newton_steps)
    widths = jnp.where(has_down, t_down - t_up_safe, jnp.zeros_like(t_down))
    ap_width, has_width = _masked_mean(widths, has_down)
    ap_width = _nan_unless(ap_width, has_width)

    ahp_samples = (v < threshold) & upto_win_end
    troughs = jax.ops.segment_min(
        jnp.where(ahp_samples, v, jnp.full_like(v, jnp.inf)),
        seg,
        num_segments=num_segments,
    )[spike_ids]
    has_trough = valid & jnp.isfinite(troughs)
    ahp, has_ahp = _masked_mean(troughs, has_trough)
    ahp = _nan_unless(ahp, has_ahp)

    return TraceFeatures(
        resting_potential=resting,
        spike_count=spike_count,
        spike_times=spike_times,
        first_spike_latency=latency,
        mean_isi=mean_isi,
        cv_isi=cv_isi,
        ap_peak=ap_peak,
        ap_width=ap_width,
        ahp_depth=ahp,
        steady_state_potential=steady,
        mean_firing_rate=mean_rate,
    )
