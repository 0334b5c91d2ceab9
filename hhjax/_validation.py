"""Comparing a predicted trace with a recorded one: spike-train coincidence (Γ),
spike-count and latency errors, sub-threshold RMSE.

These are the held-out validation metrics of model fitting (Jolivet et al. 2008,
"A benchmark test for a quantitative assessment of simple neuron models",
J Neurosci Methods 169:417). They work on spike times [ms] (NaN-padded arrays, as
[`hhjax.spike_times`][] / [`hhjax.crossing_times`][] return) and on traces [mV];
NumPy in, Python floats out (they are reporting tools, not losses).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from jaxtyping import ArrayLike


def _spikes(x: ArrayLike, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=float).ravel()
    a = a[np.isfinite(a)]
    if a.size > 1 and np.any(np.diff(a) < 0):
        raise ValueError(f"`{name}` must be spike times [ms] in increasing order.")
    return a


def coincidence_factor(
    spikes_data: ArrayLike,
    spikes_model: ArrayLike,
    duration: float,
    *,
    delta: float = 4.0,
) -> float:
    r"""Coincidence factor Γ of two spike trains (Kistler et al. 1997; Jolivet et al.
    2008), with precision `delta` [ms] (default ±4 ms).

    $$\Gamma = \frac{N_\mathrm{coinc} - \langle N_\mathrm{coinc}\rangle}
      {\tfrac12 (N_\mathrm{data} + N_\mathrm{model})}\,
      \frac{1}{1 - 2\nu\Delta},\qquad \langle N_\mathrm{coinc}\rangle = 2\nu\Delta N_\mathrm{data},$$

    where ν = N_model / `duration` is the model's rate and N_coinc counts data spikes
    with a model spike within ±`delta` (each model spike matched at most once). Γ = 1
    for identical trains, ≈ 0 for a Poisson train of the same rate, and can be
    negative.

    **Arguments:** `spikes_data`, `spikes_model`: spike times [ms] (NaN padding
    ignored); `duration`: length of the compared window [ms] (> 0); `delta` [ms] > 0.

    **Returns:** Γ (float). With no spikes in either train Γ is undefined (NaN);
    with exactly one empty train Γ = 0; NaN also when `2 ν delta >= 1` (the model
    fires so fast that chance coincidences saturate).

    **Raises:** `ValueError` for `duration`/`delta` ≤ 0 or unsorted spike times.

    **Example** (two of three data spikes matched within ±4 ms; 95 is 5 ms off):

    ```pycon
    >>> import hhjax
    >>> data = [10.0, 50.0, 90.0]                                   # ms
    >>> round(hhjax.coincidence_factor(data, [11.0, 52.0, 95.0], 100.0), 4)
    0.5614
    >>> round(hhjax.coincidence_factor(data, data, 100.0), 6)
    1.0
    >>> hhjax.coincidence_factor(data, [], 100.0)            # the model is silent
    0.0

    ```
    """
    if not (duration > 0 and math.isfinite(duration)):
        raise ValueError(f"`duration` must be > 0 ms, got {duration!r}.")
    if not (delta > 0 and math.isfinite(delta)):
        raise ValueError(f"`delta` must be > 0 ms, got {delta!r}.")
    d = _spikes(spikes_data, "spikes_data")
    m = _spikes(spikes_model, "spikes_model")
    if d.size == 0 and m.size == 0:
        return math.nan
    if d.size == 0 or m.size == 0:
        return 0.0
    # greedy matching in time order: each data spike takes the nearest unused model
    # spike within ±delta (the earlier one on a tie); each model spike used once.
    # One pass over both sorted trains: model spikes more than delta before a data
    # spike are out of reach of every later one.
    ml = m.tolist()
    used = [False] * len(ml)
    n_coinc, p = 0, 0
    for t in d.tolist():
        while p < len(ml) and ml[p] < t and abs(ml[p] - t) > delta:
            p += 1
        best, best_dist, q = -1, math.inf, p
        while q < len(ml) and (ml[q] <= t or abs(ml[q] - t) <= delta):
            dist = abs(ml[q] - t)
            if not used[q] and dist <= delta and dist < best_dist:
                best, best_dist = q, dist
            q += 1
        if best >= 0:
            used[best] = True
            n_coinc += 1
    nu = m.size / duration
    expected = 2 * nu * delta * d.size
    norm = 1 - 2 * nu * delta
    if norm <= 0:
        return math.nan  # the model fires so fast that chance coincidence saturates
    return float((n_coinc - expected) / (0.5 * (d.size + m.size)) / norm)


def spike_count_error(spikes_data: ArrayLike, spikes_model: ArrayLike) -> float:
    """Relative spike-count error `|N_model − N_data| / N_data` (NaN if the data have
    no spikes and the model has some; 0 if neither has any).

    **Arguments:** spike times [ms] of each train (1-D, NaN padding ignored).

    **Returns:** a Python float (dimensionless).

    **Raises:** `ValueError` for unsorted spike times.

    **Example:**

    ```pycon
    >>> import hhjax, math
    >>> round(hhjax.spike_count_error([10.0, 50.0, 90.0, math.nan], [12.0, 49.0]), 4)
    0.3333
    >>> hhjax.spike_count_error([], [])
    0.0

    ```
    """
    nd = _spikes(spikes_data, "spikes_data").size
    nm = _spikes(spikes_model, "spikes_model").size
    if nd == 0:
        return 0.0 if nm == 0 else math.nan
    return abs(nm - nd) / nd


def first_spike_latency_error(
    spikes_data: ArrayLike, spikes_model: ArrayLike, t_onset: float = 0.0
) -> float:
    """`(first model spike − first data spike)` [ms] (signed; latencies measured from
    `t_onset` [ms], which cancels); NaN when either train is empty.

    **Arguments:** spike times [ms] of each train (1-D, NaN padding ignored);
    `t_onset` [ms].

    **Returns:** a Python float [ms]; positive when the model fires late.

    **Raises:** `ValueError` for unsorted spike times.

    **Example:**

    ```pycon
    >>> import hhjax
    >>> hhjax.first_spike_latency_error([10.0, 50.0], [12.5, 49.0])   # ms, late
    2.5
    >>> hhjax.first_spike_latency_error([10.0], [])
    nan

    ```
    """
    d = _spikes(spikes_data, "spikes_data")
    m = _spikes(spikes_model, "spikes_model")
    if d.size == 0 or m.size == 0:
        return math.nan
    return float((m[0] - t_onset) - (d[0] - t_onset))


def recorded_spike_times(
    t: ArrayLike,
    v: ArrayLike,
    threshold: float = -20.0,
    *,
    hysteresis: float = 10.0,
) -> np.ndarray:
    """Spike times [ms] of a recorded (noisy) trace: its distinct upward crossings of
    `threshold` [mV], linearly interpolated between samples.

    A crossing counts as a new spike only once the voltage has fallen `hysteresis`
    [mV] below the threshold since the previous spike: noise on a slow
    repolarisation can cross the threshold upwards again a millisecond after a
    spike, which is not a spike. The held-out metrics
    ([`hhjax.validation_metrics`][]) and the fitting losses count spikes this way.
    (For simulated traces, which need no hysteresis and can be differentiated,
    see [`hhjax.crossing_times`][].)

    **Arguments:** `t` [ms] and `v` [mV]: 1-D NumPy-like arrays of one length, `t`
    increasing; `threshold` [mV]; `hysteresis` [mV] (≥ 0; 0 counts every crossing).

    **Returns:** a float NumPy array `(n,)` of spike times [ms], increasing. A
    crossing is `v[k] < threshold <= v[k+1]`; its time lies in `[t[k], t[k+1]]`.

    **Raises:** `ValueError` when `t` and `v` are not 1-D of one length, or for a
    negative or non-finite `hysteresis`.

    **Example** (noise on the repolarisation re-crosses −20 mV at 3.5 ms, only 2 mV
    below it in between: one spike, two with `hysteresis=0`):

    ```pycon
    >>> import numpy as np, hhjax
    >>> t = np.arange(8.0)                                              # ms
    >>> v = np.array([-60.0, 20.0, -22.0, -22.0, -18.0, -60.0, 20.0, -65.0])  # mV
    >>> hhjax.recorded_spike_times(t, v).tolist()
    [0.5, 5.5]
    >>> hhjax.recorded_spike_times(t, v, hysteresis=0.0).tolist()
    [0.5, 3.5, 5.5]

    ```
    """
    t = np.asarray(t, float)
    v = np.asarray(v, float)
    if t.ndim != 1 or v.shape != t.shape:
        raise ValueError(
            f"`t` and `v` must be 1-D arrays of one length (one sweep), got shapes "
            f"{t.shape} and {v.shape}."
        )
    hysteresis = float(hysteresis)
    if not (hysteresis >= 0 and math.isfinite(hysteresis)):
        raise ValueError(f"`hysteresis` must be a finite number >= 0 (mV), got {hysteresis}.")
    up = np.nonzero((v[1:] >= threshold) & (v[:-1] < threshold))[0]
    if hysteresis > 0 and up.size > 1:
        # seg[j]: the lowest voltage between crossings j and j + 1
        seg = np.fmin.reduceat(v, up + 1)[:-1]  # NaN samples ignored
        keep, low = [0], np.inf
        for j in range(1, up.size):
            low = min(low, seg[j - 1])  # lowest since the last kept crossing
            if low < threshold - hysteresis:
                keep.append(j)
                low = np.inf
        up = up[keep]
    v0, v1 = v[up], v[up + 1]
    return t[up] + (threshold - v0) / (v1 - v0) * (t[up + 1] - t[up])


def subthreshold_rmse(
    t: ArrayLike,
    v_data: ArrayLike,
    v_model: ArrayLike,
    *,
    threshold: float = -20.0,
    exclude_ms: tuple[float, float] = (2.0, 10.0),
    window: tuple[float, float] | None = None,
) -> float:
    """RMSE [mV] between two traces on the samples away from any spike of either.

    Samples within `exclude_ms = (before, after)` [ms] of an upward crossing of
    `threshold` [mV] in the data *or* the model are left out (the action potential
    and its after-hyperpolarisation), as are samples outside `window` [ms].
    NaN when nothing is left (non-finite samples are left out too).

    **Arguments:** `t` [ms], `v_data`, `v_model` [mV]: 1-D, one length `T`.

    **Returns:** a Python float [mV].

    **Raises:** `ValueError` when the three arrays are not 1-D of one length.

    **Example** (a 1 mV offset; the data's 1-ms "spike" at 50 ms is left out):

    ```pycon
    >>> import numpy as np, hhjax
    >>> t = np.arange(0.0, 100.0, 0.1)                        # ms
    >>> v_data = np.where((t >= 50.0) & (t < 51.0), 20.0, -65.0)
    >>> v_model = np.full_like(t, -64.0)                      # mV
    >>> hhjax.subthreshold_rmse(t, v_data, v_model)
    1.0

    ```
    """
    t = np.asarray(t, float)
    vd = np.asarray(v_data, float)
    vm = np.asarray(v_model, float)
    if not (t.ndim == 1 and vd.shape == t.shape and vm.shape == t.shape):
        raise ValueError(
            f"`t`, `v_data`, `v_model` must be 1-D of one length, got {t.shape}, "
            f"{vd.shape}, {vm.shape}."
        )
    keep = np.isfinite(vd) & np.isfinite(vm)
    if window is not None:
        keep &= (t >= window[0]) & (t <= window[1])
    before, after = exclude_ms
    for v in (vd, vm):
        up = np.nonzero((v[1:] >= threshold) & (v[:-1] < threshold))[0]
        for i in up:
            tc = t[i + 1]
            keep &= ~((t >= tc - before) & (t <= tc + after))
    if not keep.any():
        return math.nan
    return float(np.sqrt(np.mean((vd[keep] - vm[keep]) ** 2)))


def validation_metrics(
    t: ArrayLike,
    v_data: ArrayLike,
    v_model: ArrayLike,
    *,
    threshold: float = 0.0,
    delta: float = 4.0,
    window: tuple[float, float] | None = None,
    t_onset: float | None = None,
    max_spikes: int = 1000,
    hysteresis: float = 10.0,
) -> dict[str, Any]:
    """Held-out metrics of one sweep: predicted vs recorded trace.

    **Arguments:** `t` [ms], `v_data`, `v_model` [mV] (1-D, same length);
    `threshold` [mV] for spikes (upward crossings); `delta` [ms] for Γ; `window`
    [ms] (default the whole sweep); `t_onset` [ms] (stimulus onset, for latencies;
    default the window start); `max_spikes` per trace; `hysteresis` [mV]: a
    crossing is a new spike only after the voltage fell this far below the
    threshold (as [`hhjax.recorded_spike_times`][] counts; 0 counts every crossing).

    **Returns:** dict with `n_spikes_data`, `n_spikes_model` (ints),
    `spike_count_error` (relative), `first_spike_latency_error_ms` (signed),
    `subthreshold_rmse_mV`, `gamma` (Γ with ±`delta` ms) (Python floats, NaN where
    undefined), `window_ms` (`[start, end]`).

    **Raises:** `ValueError` when `t`, `v_data`, `v_model` are not 1-D arrays of one
    length, for `delta <= 0` (from [`hhjax.coincidence_factor`][]), a negative
    `hysteresis` or a `max_spikes` that is not a positive integer.

    **Example** (hand-made traces: three data spikes, two model spikes):

    ```pycon
    >>> import numpy as np, hhjax
    >>> t = np.arange(0.0, 100.0, 0.1)                                   # ms
    >>> def trace(onsets, rest):
    ...     on = np.any([(t >= s) & (t < s + 1.0) for s in onsets], axis=0)
    ...     return np.where(on, 20.0, rest)                               # mV
    >>> m = hhjax.validation_metrics(t, trace([20, 50, 80], -65.0),
    ...                              trace([21, 53], -64.5))
    >>> m["n_spikes_data"], m["n_spikes_model"], round(m["spike_count_error"], 3)
    (3, 2, 0.333)
    >>> round(m["first_spike_latency_error_ms"], 2), m["subthreshold_rmse_mV"]
    (1.0, 0.5)
    >>> round(m["gamma"], 3)
    0.724

    ```
    """
    t = np.asarray(t, float)
    shapes = (t.shape, np.shape(v_data), np.shape(v_model))
    if t.ndim != 1 or t.size == 0 or shapes[1] != t.shape or shapes[2] != t.shape:
        raise ValueError(
            f"`t`, `v_data`, `v_model` must be 1-D arrays of one length (one sweep; "
            f"loop or vectorise over sweeps), got shapes {shapes[0]}, {shapes[1]}, "
            f"{shapes[2]}."
        )
    if int(max_spikes) != max_spikes or max_spikes < 1:
        raise ValueError(f"`max_spikes` must be a positive integer, got {max_spikes!r}.")
    lo, hi = (float(t[0]), float(t[-1])) if window is None else map(float, window)
    sel = (t >= lo) & (t <= hi)
    ts, vd, vm = t[sel], np.asarray(v_data, float)[sel], np.asarray(v_model, float)[sel]

    def spikes(v):
        return recorded_spike_times(ts, v, threshold, hysteresis=hysteresis)[:max_spikes]

    sd, sm = spikes(vd), spikes(vm)
    onset = lo if t_onset is None else float(t_onset)
    return {
        "n_spikes_data": int(sd.size),
        "n_spikes_model": int(sm.size),
        "spike_count_error": spike_count_error(sd, sm),
        "first_spike_latency_error_ms": first_spike_latency_error(sd, sm, onset),
        "subthreshold_rmse_mV": subthreshold_rmse(ts, vd, vm),
        "gamma": coincidence_factor(sd, sm, hi - lo, delta=delta),
        "window_ms": [lo, hi],
    }
