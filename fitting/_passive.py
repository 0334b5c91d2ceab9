"""Passive membrane properties of a recorded cell from its step responses.

The starting point of a real-cell fit: the membrane area (through the total
capacitance), the leak and the resting potential, estimated in NumPy from the
sub-threshold responses to current steps before any simulation.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

import hhjax

#: Relaxation times tried by the exponential fit [ms] (log grid).
_TAU_GRID = np.geomspace(0.5, 300.0, 160)

#: An edge counts only if the membrane had this many of its time constants since
#: the previous current change to settle (within e^-2 = 14 % of its steady state;
#: a short test pulse just before it, or a step it was still relaxing from, would
#: bias the deflection).
_SETTLED_TAUS = 2.0


@dataclasses.dataclass(frozen=True)
class PassiveEstimate:
    """What [`fitting.estimate_passive`][] found.

    - `e_rest_mV`: median membrane potential before the first current change [mV].
    - `r_in_MOhm`: input resistance [MΩ] (steady-state ΔV / ΔI).
    - `tau_ms`: membrane time constant [ms].
    - `capacitance_pF`: total capacitance `tau / r_in` [pF].
    - `n_epochs`: how many current steps (method `"steps"`) or sweeps (method
      `"trace"`, each up to its first spike) entered the estimate.
    - `epochs`: per step used, `(sweep, t_edge_ms, delta_i_pA, delta_v_mV, tau_ms)`
      (empty for method `"trace"`).
    - `method`: `"steps"` (exponential fits to step responses) or `"trace"` (an RC
      membrane fitted to the sweeps before their first spikes, for stimuli without
      usable steps: a chirp, noise, a ramp, steps that fire at once).

    Python floats (and ints). **Methods:** `area_cm2(c_m=1.0)` [cm²] and
    `g_leak(c_m=1.0)` [mS/cm²] for a specific capacitance `c_m` [µF/cm²].

    **Example** (the ideal RC cell of [`fitting.estimate_passive`][]):

    ```pycon
    >>> import numpy as np, hhjax, fitting
    >>> t = np.arange(0.0, 300.0, 0.05)                              # ms
    >>> i = np.where((t >= 50.0) & (t < 200.0), -50.0, 0.0)          # pA
    >>> on, off = np.clip(t - 50.0, 0, None), np.clip(t - 200.0, 0, None)
    >>> # an RC cell, R = 100 MΩ, C = 100 pF (τ = 10 ms): −5 mV during the step
    >>> v = -70.0 - 5.0 * (1 - np.exp(-on / 10.0)) + 5.0 * (1 - np.exp(-off / 10.0))
    >>> rec = hhjax.Recording(t, v, i_pA=i)
    >>> est = fitting.estimate_passive(rec)
    >>> round(est.capacitance_pF), round(est.area_cm2() * 1e4, 2)      # pF, 1e-4 cm²
    (100, 1.0)
    >>> round(est.g_leak(), 3)                                          # mS/cm²
    0.1

    ```
    """

    e_rest_mV: float
    r_in_MOhm: float
    tau_ms: float
    capacitance_pF: float
    n_epochs: int
    epochs: tuple[tuple[int, float, float, float, float], ...] = ()
    method: str = "steps"

    def area_cm2(self, c_m: float = 1.0) -> float:
        """The membrane area [cm²] for a specific capacitance `c_m` [µF/cm²]."""
        return self.capacitance_pF * 1e-6 / c_m

    def g_leak(self, c_m: float = 1.0) -> float:
        """The resting conductance density [mS/cm²] (1 / (r_in · area))."""
        return 1e3 / (self.r_in_MOhm * 1e6 * self.area_cm2(c_m))


def _exp_fit(t: np.ndarray, v: np.ndarray):
    """Least-squares `v ≈ a + b exp(−t/τ)`: τ on the log grid, then on a 40× finer
    grid around the best; returns `(a, b, τ, rss)`."""

    def scan(taus):
        best = None
        for tau in taus:
            e = np.exp(-t / tau)
            A = np.stack([np.ones_like(t), e], axis=1)
            coef, *_ = np.linalg.lstsq(A, v, rcond=None)
            rss = float(np.sum((A @ coef - v) ** 2))
            if best is None or rss < best[3]:
                best = (float(coef[0]), float(coef[1]), float(tau), rss)
        return best

    a, b, tau, rss = scan(_TAU_GRID)
    step = _TAU_GRID[1] / _TAU_GRID[0]
    return scan(tau * step ** np.linspace(-1.0, 1.0, 81))


def _filtered_current(i: np.ndarray) -> tuple[np.ndarray, float]:
    """The current median-filtered over 9 samples, and the smallest change that is
    not noise: ten times the sample-to-sample noise (robust), at least 0.5 pA."""
    pad = np.pad(i, 4, mode="edge")
    med = np.median(np.lib.stride_tricks.sliding_window_view(pad, 9), axis=1)
    d = np.abs(np.diff(i))
    noise = 1.4826 * float(np.median(d)) / math.sqrt(2.0)
    return med, max(10.0 * noise, 0.5)


def stimulus_span(i_pA: np.ndarray) -> tuple[int, int] | None:
    """Sample indices `(first, end)` of the stimulus in one sweep's current: the
    first sample that differs from the starting level and one past the last that
    differs from the final level (median-filtered, by more than the noise tolerance
    of [`fitting.current_edges`][]). For a step protocol these are its first and last
    edges; unlike edges it also bounds a smooth stimulus (a chirp, a ramp, noise).

    **Arguments:** `i_pA`: one sweep's current [pA], `(T,)`.

    **Returns:** `(first, end)` (ints, `first < end`), or `None` for a constant
    current or fewer than 12 samples.

    **Raises:** `ValueError` when `i_pA` is not 1-D or not finite.

    **Example** (a 2 pA/ms ramp from 5 to 15 ms, sampled every 0.1 ms):

    ```pycon
    >>> import numpy as np, fitting
    >>> t = np.arange(0.0, 30.0, 0.1)
    >>> i = np.clip(2.0 * (t - 5.0), 0.0, 20.0) * (t < 15.0)
    >>> fitting.current_edges(i).tolist()                 # only the ramp's drop
    [150]
    >>> first, end = fitting.stimulus_span(i)
    >>> round(float(t[first]), 2), round(float(t[end]), 2)   # ms
    (5.3, 15.0)

    ```

    (The ramp's first 0.2 pA steps look like noise to the robust noise estimate:
    the span starts where the ramp has risen beyond the tolerance, 0.3 ms in.)
    """
    i = np.asarray(i_pA, float)
    if i.ndim != 1 or not np.all(np.isfinite(i)):
        raise ValueError(
            f"`i_pA` must be one sweep's finite current [pA], 1-D; got shape {i.shape}"
            + ("" if i.ndim != 1 else " with non-finite values") + "."
        )
    if i.size < 12:
        return None
    return _span(*_filtered_current(i))


def _span(med: np.ndarray, tol: float) -> tuple[int, int] | None:
    start = np.nonzero(np.abs(med - np.median(med[:20])) > tol)[0]
    stop = np.nonzero(np.abs(med - np.median(med[-20:])) > tol)[0]
    if not start.size or not stop.size:
        return None
    return int(start[0]), int(stop[-1]) + 1


def _edges(med: np.ndarray, tol: float) -> np.ndarray:
    change = np.nonzero(np.abs(np.diff(med)) > tol)[0] + 1
    return np.asarray(
        [int(k) for j, k in enumerate(change) if j == 0 or k - change[j - 1] > 2], int
    )


def _stimulus_bounds(i_pA: np.ndarray) -> tuple[int, int] | None:
    """`(first, last)` sample indices of the stimulus: the union of the first/last
    [`fitting.current_edges`][] and the [`fitting.stimulus_span`][] (one filtering
    of the current for both); `None` for a constant current."""
    i = np.asarray(i_pA, float)
    if i.size < 12:
        return None
    med, tol = _filtered_current(i)
    ch, span = _edges(med, tol), _span(med, tol)
    firsts = ([int(ch[0])] if ch.size else []) + ([span[0]] if span else [])
    lasts = ([int(ch[-1])] if ch.size else []) + ([min(span[1], i.size - 1)] if span else [])
    if not firsts:
        return None
    return min(firsts), max(lasts)


def current_edges(i_pA: np.ndarray) -> np.ndarray:
    """Sample indices where a step current changes level (the first sample of each
    new level), for a command waveform or a *recorded* (noisy) current.

    The current is median-filtered over 9 samples and a change must exceed ten
    times the recording's sample-to-sample noise (robust, from the median absolute
    difference), at least 0.5 pA; consecutive changes (a ramp over a few samples)
    count once.

    **Arguments:** `i_pA`: one sweep's current [pA], `(T,)`.

    **Returns:** an int array `(K,)` of sample indices, increasing (empty for a
    constant current or fewer than 12 samples).

    **Example:**

    ```pycon
    >>> import numpy as np, fitting
    >>> i = np.zeros(200)
    >>> i[50:150] = 50.0                                   # pA, a step
    >>> fitting.current_edges(i).tolist()
    [50, 150]
    >>> noisy = i + np.random.default_rng(0).normal(0.0, 1.0, i.size)
    >>> fitting.current_edges(noisy).tolist()
    [50, 150]

    ```
    """
    i = np.asarray(i_pA, float)
    if i.size < 12:
        return np.zeros(0, int)
    return _edges(*_filtered_current(i))


def estimate_passive(
    recording: hhjax.Recording,
    *,
    threshold: float = -20.0,
    max_deflection_mV: float = 20.0,
    settle_ms: float = 0.3,
    min_epoch_ms: float = 10.0,
    max_fit_ms: float = 200.0,
    method: str = "auto",
) -> PassiveEstimate:
    """Estimate the passive properties of a cell from its current-step responses.

    Every change of the injected current (a step edge) starts an epoch that lasts
    until the next change. The response is fitted by `a + b·exp(−t/τ)` (τ on a log
    grid, `a`, `b` by least squares) from `settle_ms` after the edge up to the first
    spike (upward crossing of `threshold` [mV]) minus 2 ms, at most `max_fit_ms`.
    Epochs shorter than `min_epoch_ms`, with a spike before `min_epoch_ms`, or whose
    fitted steady deflection exceeds `max_deflection_mV` (the membrane is no longer
    near-linear) are skipped, and so are epochs whose edge comes before the membrane
    settled from the previous change (less than 2 τ after it, e.g. the end of a
    short test pulse) or less than 2 τ after a spike; and when some epochs follow
    a quiet stretch since the previous change, those after firing are left out too
    (the deflection is measured from the potential just before the edge, which must
    be a steady state; a cell that fires at rest keeps its epochs). The input
    resistance is the median of `ΔV∞ / ΔI`, the time constant the median τ, and the
    capacitance `τ / R`.

    Works for any step protocol with a known current in pA (ABF/NWB/NPZ files of
    current-clamp step series). A recording without a usable step (a chirp, noise,
    a ramp) is estimated from its whole spike-free sweeps instead; with
    `method="trace"` every sweep enters up to 3 ms before its first spike (for
    steps that all fire before the membrane relaxes): the response of an RC
    membrane,
    `V_s(t) = V0_s + R · x_s(t)` with `x_s` the current's change since the sweep's
    start low-pass filtered with time constant τ (`τ dx/dt = ΔI − x`), is fitted by
    least squares (τ on a log grid, then a finer one; `R` shared by the sweeps, one
    baseline `V0_s` per sweep), and `e_rest_mV` is the median baseline (the
    potential under the starting current, as for steps). This is an output-error
    fit, so the recording's noise does not bias it, unlike a regression on `dV/dt`.
    It needs a current that varies by at least 5 pA before the spikes, a best τ
    inside the grid (0.5–300 ms) and an RC response that explains at least half
    of the voltage's variance. (On BluePyEfe's B6 cell, whose every step fires
    within 7–41 ms, `method="trace"` gives 86 pF, 226 MΩ, τ 19.5 ms from the five
    step onsets; `"auto"` does not use spiking sweeps: started from that estimate
    instead of the onset slope (71 pF) and the model's own leak, B6's fit scored
    worse on its fitted sweeps, 1.450 against 1.423, with held-out RMSE 5.1/2.9 mV
    against 3.4/2.8 mV — 20 search generations each.)

    **Arguments:** `recording`: an [`hhjax.Recording`][] with the current in pA;
    `threshold` [mV]; `max_deflection_mV`, `settle_ms`, `min_epoch_ms`,
    `max_fit_ms` [ms] as above; `method`: `"auto"` (steps, else whole spike-free
    sweeps), `"steps"` or `"trace"` (every sweep up to its first spike).

    **Returns:** a [`fitting.PassiveEstimate`][] (its `method` says which was used).

    **Raises:** `TypeError` for a non-`Recording`; `ValueError` if the current is not
    in pA, `method` is unknown, or no estimate is possible (no usable step, and no
    sweep whose current varies before its first spike).

    **Example** (an ideal RC cell: both edges of the step are used):

    ```pycon
    >>> import numpy as np, hhjax, fitting
    >>> t = np.arange(0.0, 300.0, 0.05)                              # ms
    >>> i = np.where((t >= 50.0) & (t < 200.0), -50.0, 0.0)          # pA
    >>> on, off = np.clip(t - 50.0, 0, None), np.clip(t - 200.0, 0, None)
    >>> # an RC cell, R = 100 MΩ, C = 100 pF (τ = 10 ms): −5 mV during the step
    >>> v = -70.0 - 5.0 * (1 - np.exp(-on / 10.0)) + 5.0 * (1 - np.exp(-off / 10.0))
    >>> rec = hhjax.Recording(t, v, i_pA=i)
    >>> est = fitting.estimate_passive(rec)
    >>> round(est.e_rest_mV, 2), round(est.r_in_MOhm), round(est.tau_ms, 1)  # mV MΩ ms
    (-70.0, 100, 10.0)
    >>> round(est.capacitance_pF), est.n_epochs                          # pF
    (100, 2)

    ```
    """
    if not isinstance(recording, hhjax.Recording):
        raise TypeError(f"`recording` must be an hhjax.Recording, got {type(recording).__name__}.")
    if recording.current_unit != "pA":
        raise ValueError(
            "estimate_passive needs a recording whose current is in pA (a real cell); "
            f"this one has {recording.current_unit or 'a stimulus object'}."
        )
    if method not in ("auto", "steps", "trace"):
        raise ValueError(f"`method` must be 'auto', 'steps' or 'trace', got {method!r}.")
    if method == "trace":
        return _from_trace(recording, threshold, spiking=True)
    try:
        return _from_steps(
            recording, threshold, max_deflection_mV, settle_ms, min_epoch_ms, max_fit_ms
        )
    except ValueError as e_steps:
        reason = e_steps.args[0]
        if method == "steps":
            raise ValueError(f"{reason}; give the area/capacitance explicitly.") from None
        try:
            return _from_trace(recording, threshold, spiking=False)
        except ValueError as e_trace:
            raise ValueError(
                f"{reason}; and no whole-sweep estimate either: {e_trace.args[0]} Give "
                "the area/capacitance explicitly."
            ) from None


def _from_steps(recording, threshold, max_deflection_mV, settle_ms, min_epoch_ms,
                max_fit_ms) -> PassiveEstimate:
    t = np.asarray(recording.t_ms, float)
    V = np.asarray(recording.v_mV, float)
    I = np.asarray(recording.i_samples, float)
    rests, quiet, after_firing, n_steps = [], [], [], 0
    for s in range(V.shape[0]):
        v, i = V[s], I[s]
        edges = [int(k) for k in current_edges(i)]
        first = edges[0] if edges else t.size
        if first > 10:
            rests.append(float(np.median(v[:first])))
        up = np.nonzero((v[1:] >= threshold) & (v[:-1] < threshold))[0] + 1
        for j, k in enumerate(edges):
            end = edges[j + 1] - 1 if j + 1 < len(edges) else t.size - 1
            # levels: the median before the edge and after the ramp
            i_before = float(np.median(i[max(0, k - 20): k]))
            i_after = float(np.median(i[k + 2: min(end, k + 40)])) if end > k + 4 else math.nan
            di = i_after - i_before
            if not math.isfinite(di) or abs(di) < 5.0:
                continue
            n_steps += 1
            t_edge = t[k]
            spikes = t[up[(up >= k) & (up <= end)]]
            t_stop = min(t[end], t_edge + max_fit_ms)
            if spikes.size:
                t_stop = min(t_stop, spikes[0] - 2.0)
            if t_stop - t_edge < min_epoch_ms:
                continue
            # the voltage just before the edge is the baseline of the deflection
            pre = (t >= t_edge - 5.0) & (t < t_edge)
            if np.sum(pre) < 3:
                continue
            v_pre = float(np.mean(v[pre]))
            sel = (t >= t_edge + settle_ms) & (t <= t_stop)
            if np.sum(sel) < 10:
                continue
            a, b, tau, _ = _exp_fit(t[sel] - t_edge, v[sel])
            if j > 0 and t_edge - t[edges[j - 1]] < _SETTLED_TAUS * tau:
                continue  # still relaxing from the previous change
            # firing before the edge: no steady state to deflect from (kept aside
            # for cells that fire at rest, if no quiet edge is left; never with a
            # spike within the settling time before the edge)
            before = up[(up >= (edges[j - 1] if j > 0 else 0)) & (up < k)]
            if before.size and t_edge - t[before[-1]] < _SETTLED_TAUS * tau:
                continue
            dv = a - v_pre
            if abs(dv) > max_deflection_mV or dv * di <= 0:
                continue
            if tau >= _TAU_GRID[-2] or tau <= _TAU_GRID[1]:
                continue  # the grid's edge: no reliable relaxation in this window
            if tau > 0.5 * (t_stop - t_edge) and spikes.size:
                continue  # cut short by a spike long before it relaxes
            (after_firing if before.size else quiet).append((s, float(t_edge), di, dv, tau))
    if not n_steps:
        raise ValueError(
            "estimate_passive found no usable sub-threshold step response: the current "
            "has no step of at least 5 pA (not a step protocol, e.g. a chirp or noise)"
        )
    epochs = quiet or after_firing
    if not epochs:
        raise ValueError(
            "estimate_passive found no usable sub-threshold step response (every step "
            f"spikes within {min_epoch_ms} ms, deflects more than {max_deflection_mV} mV, "
            "comes too soon after another change or a spike, or does not relax "
            "exponentially)"
        )
    r = np.array([dv / di for _, _, di, dv, _ in epochs]) * 1e3  # mV/pA = GΩ → MΩ
    taus = np.array([e[4] for e in epochs])
    r_in = float(np.median(r))
    tau = float(np.median(taus))
    e_rest = float(np.median(rests)) if rests else float(np.median(V[:, :10]))
    return PassiveEstimate(
        e_rest_mV=e_rest,
        r_in_MOhm=r_in,
        tau_ms=tau,
        capacitance_pF=tau / r_in * 1e3,  # ms / MΩ = nF → pF
        n_epochs=len(epochs),
        epochs=tuple(epochs),
    )


def _rc_sums(t: np.ndarray, V: np.ndarray, dI: np.ndarray, mask: np.ndarray,
             taus: np.ndarray):
    """Per sweep and τ: the sums `Σx, Σx², Σx·v` over the masked samples of the
    low-passed current change `x` (`x_k = a x_{k-1} + (1 − a) ΔI_k`,
    `a = exp(−Δt/τ)`: exact for a current held over each sample interval),
    accumulated sample by sample (nothing of size samples × τ is stored)."""
    S = V.shape[0]
    x = np.zeros((S, taus.size))
    sx, sxx, sxv = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x)
    dts = np.diff(t, prepend=t[0] - (t[1] - t[0]))
    uniform = bool(np.allclose(dts, dts[0]))
    a_u = np.exp(-dts[0] / taus)
    last = int(np.max(np.nonzero(mask.any(axis=0))[0])) + 1
    for k in range(last):
        a = a_u if uniform else np.exp(-dts[k] / taus)
        x = a * x + (1.0 - a) * dI[:, k : k + 1]
        m = mask[:, k : k + 1]
        mx = m * x
        sx += mx
        sxx += mx * x
        sxv += mx * V[:, k : k + 1]
    return sx, sxx, sxv


def _rc_fit(t, V, dI, mask, taus):
    """Best τ of `taus` for `V_s ≈ V0_s + R x_s` on the masked samples:
    `(r, tau, v0 (S,), rss, css, j)` with `r` in mV/pA and `css` the voltage's
    summed squared deviation from each sweep's mean."""
    n = mask.sum(axis=1, keepdims=True)
    sx, sxx, sxv = _rc_sums(t, V, dI, mask, taus)
    sv = (mask * V).sum(axis=1, keepdims=True)
    cxx = (sxx - sx * sx / n).sum(axis=0)
    cxv = (sxv - sx * sv / n).sum(axis=0)
    css = float(np.sum(mask * (V - sv / n) ** 2))
    with np.errstate(all="ignore"):
        r = cxv / cxx
    rss = np.where(cxx > 0, css - r * cxv, np.inf)
    j = int(np.argmin(rss))
    v0 = (sv[:, 0] - r[j] * sx[:, j]) / n[:, 0]
    return float(r[j]), float(taus[j]), v0, float(rss[j]), css, j


#: A spiking sweep enters the whole-sweep fit up to this long before its first
#: spike [ms] (the spike's own upstroke starts before the threshold crossing).
_PRE_SPIKE_MS = 3.0


def _from_trace(recording: hhjax.Recording, threshold: float, *, spiking: bool
                ) -> PassiveEstimate:
    t = np.asarray(recording.t_ms, float)
    V = np.asarray(recording.v_mV, float)
    cur = np.asarray(recording.i_samples, float)
    if t.size < 20:
        raise ValueError("the sweeps are too short for a whole-sweep RC fit.")
    # each sweep up to its first spike (all of a spike-free sweep)
    used, masks = [], []
    for s in range(V.shape[0]):
        if not (np.all(np.isfinite(V[s])) and np.all(np.isfinite(cur[s]))):
            continue
        up = np.nonzero((V[s, 1:] >= threshold) & (V[s, :-1] < threshold))[0]
        if up.size and not spiking:
            continue
        m = np.ones(t.size) if not up.size else (t < t[up[0]] - _PRE_SPIKE_MS).astype(float)
        if m.sum() >= 20:
            used.append(s)
            masks.append(m)
    if not used:
        raise ValueError(
            f"every sweep crosses {threshold} mV (spikes)"
            + (" at its start." if spiking else
               "; method='trace' uses each sweep up to its first spike.")
        )
    mask = np.stack(masks)
    Vq = V[used]
    dI = cur[used] - np.median(cur[used][:, :20], axis=1, keepdims=True)
    seen = dI[mask > 0]
    span = float(np.percentile(seen, 99.5) - np.percentile(seen, 0.5))
    if span < 5.0:
        raise ValueError(
            f"the current before the first spike of each sweep varies by {span:.2g} pA "
            "(< 5 pA)."
        )
    r, tau, v0, rss, css, j = _rc_fit(t, Vq, dI, mask, _TAU_GRID)
    if j in (0, _TAU_GRID.size - 1) or not r > 0:
        raise ValueError(
            "an RC membrane does not describe the sweeps before their spikes (best time "
            f"constant {tau:.3g} ms at the edge of 0.5–300 ms, or R = {r * 1e3:.3g} MΩ)."
        )
    step = _TAU_GRID[1] / _TAU_GRID[0]
    r, tau, v0, rss, css, _ = _rc_fit(
        t, Vq, dI, mask, tau * step ** np.linspace(-1.0, 1.0, 21)
    )
    explained = 1.0 - rss / css if css > 0 else 0.0
    if not explained >= 0.5:
        raise ValueError(
            "an RC membrane explains only "
            f"{max(explained, 0.0):.0%} of the voltage variance before the spikes (< 50 %)."
        )
    r_in = r * 1e3  # mV/pA = GΩ → MΩ
    return PassiveEstimate(
        e_rest_mV=float(np.median(v0)),
        r_in_MOhm=r_in,
        tau_ms=tau,
        capacitance_pF=tau / r_in * 1e3,
        n_epochs=len(used),
        epochs=(),
        method="trace",
    )


def onset_capacitance(
    recording: hhjax.Recording, *, settle_ms: float = 0.3, span_ms: float = 2.0
) -> float:
    """Total capacitance [pF] from the initial slope of the step responses:
    right after a current step ΔI the membrane charges at `dV/dt = ΔI / C` before
    any conductance has responded. The slope is fitted on `[settle_ms,
    settle_ms + span_ms]` after each edge of at least 5 pA (median over edges).
    A cruder fallback of [`fitting.estimate_passive`][] for cells that spike before
    any step relaxes (it slightly overestimates C, by the leak current that flows
    during `span_ms`).

    **Arguments:** `recording`: an [`hhjax.Recording`][] with the current in pA;
    `settle_ms`, `span_ms` [ms].

    **Returns:** C [pF] (a Python float).

    **Raises:** `ValueError` when the current is not in pA or no edge is usable.

    **Example** (the RC cell of [`fitting.estimate_passive`][], C = 100 pF: the
    slope over 0.3–2.3 ms is already 10 % below the initial one):

    ```pycon
    >>> import numpy as np, hhjax, fitting
    >>> t = np.arange(0.0, 300.0, 0.05)                              # ms
    >>> i = np.where((t >= 50.0) & (t < 200.0), -50.0, 0.0)          # pA
    >>> on, off = np.clip(t - 50.0, 0, None), np.clip(t - 200.0, 0, None)
    >>> # an RC cell, R = 100 MΩ, C = 100 pF (τ = 10 ms): −5 mV during the step
    >>> v = -70.0 - 5.0 * (1 - np.exp(-on / 10.0)) + 5.0 * (1 - np.exp(-off / 10.0))
    >>> rec = hhjax.Recording(t, v, i_pA=i)
    >>> round(fitting.onset_capacitance(rec), 1)                         # pF
    113.6

    ```
    """
    if recording.current_unit != "pA":
        raise ValueError("onset_capacitance needs a recording whose current is in pA.")
    t = np.asarray(recording.t_ms, float)
    out = []
    for v, i in zip(np.asarray(recording.v_mV, float), np.asarray(recording.i_samples, float)):
        for k in current_edges(i):
            i_before = float(np.median(i[max(0, k - 20): k]))
            i_after = float(np.median(i[k + 1: k + 12]))
            di = i_after - i_before
            sel = (t >= t[k] + settle_ms) & (t <= t[k] + settle_ms + span_ms)
            if abs(di) < 5.0 or np.sum(sel) < 4:
                continue
            slope = np.polyfit(t[sel], v[sel], 1)[0]  # mV/ms
            if slope * di > 0:
                out.append(di / slope)  # pA / (mV/ms) = pF
    if not out:
        raise ValueError("onset_capacitance found no current step of at least 5 pA.")
    return float(np.median(out))
