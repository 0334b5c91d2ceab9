"""Derivative-free global search for cell fits: an evolution strategy (CMA-ES) over
many candidate models at once, scored on the held-out metrics' own terms (spike counts,
coincidence factor Γ, sub-threshold RMSE) of the fitted sweeps.

Gradient-based fits of spiking models end in local minima: a model that fires one
spike too many per sweep, or keeps firing where the cell adapts, sits in a basin
that spike-time losses cannot leave. Forward simulations are cheap
([`hhjax.simulate_population`][] integrates thousands of candidates per second), so
the start of the local fit is chosen by a global search on what the user finally
judges — the training sweeps' spike counts, Γ and sub-threshold RMSE.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import time
from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import hhjax

from ._fit import check_checkpoint, digest, write_text_atomic
from ._transforms import get_parameter, set_parameters

SEARCH_CHECKPOINT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class SearchResult:
    """What [`fitting.search_cell`][] found.

    - `values`: label → best value (the labels' units).
    - `score`: its score (lower is better; see [`fitting.cell_score`][]).
    - `terms`: the best candidate's score terms (`spikes`, `rmse_mV`, per sweep).
    - `history`: best score after each generation.
    - `n_evaluated`: candidates simulated; `wall_time`: seconds (both counting
      the runs before a resume, see `search_cell(checkpoint=)`).
    - `spread`: per generation, the candidates' largest standard deviation over
      the parameters, in the `[0, 1]`-scaled units of their bounds (the
      search's own measure of convergence: it shrinks as the search settles,
      while the best score can stay flat for generations before a drop).
    - `stopped`: why the search ended: `"generations"` (it ran all of them),
      `"time_budget"`, `"converged"` (the spread fell below `xtol`) or
      `"interrupted"` (Ctrl-C; see [`fitting.SearchInterrupted`][]).

    **Example** (needs a search: tens of seconds; see [`fitting.search_cell`][]):

    ```python
    membrane, found = fitting.search_cell(model.membrane, rec, model.labels,
                                          model.bounds, area_cm2=area)
    found.values            # label → value, in the labels' units
    found.score             # lower is better; found.history: per generation
    ```
    """

    values: dict[str, float]
    score: float
    terms: dict[str, list[float]]
    history: list[float]
    n_evaluated: int
    wall_time: float
    spread: list[float] = dataclasses.field(default_factory=list)
    stopped: str = "generations"


class SearchInterrupted(KeyboardInterrupt):
    """Raised by [`fitting.search_cell`][] (and so by [`fitting.fit_cell`][] and
    `hhjax fit` during their global search) on Ctrl-C: `.result` is the
    best-so-far [`fitting.SearchResult`][] (`stopped="interrupted"`, the
    generations finished before the interrupt) and `.membrane` the membrane with its
    values. A subclass of `KeyboardInterrupt`, so an uncaught one still stops a
    script.

    **Example:**

    ```python
    try:
        membrane, found = fitting.search_cell(mb, rec, labels, bounds, area_cm2=area)
    except fitting.SearchInterrupted as stop:
        membrane, found = stop.membrane, stop.result    # best so far
    ```
    """

    def __init__(self, result: SearchResult, membrane: hhjax.Membrane):
        super().__init__(
            f"global search interrupted after {len(result.history)} generation(s); "
            f"best score so far {result.score:.4g}"
        )
        self.result = result
        self.membrane = membrane


def _crossings(v: np.ndarray, threshold: float) -> np.ndarray:
    return (v[..., 1:] >= threshold) & (v[..., :-1] < threshold)


#: samples (candidates × sweeps × time) `cell_score` scores per pass
_SCORE_CHUNK_SAMPLES = 1 << 21


def _near_spikes(cross: np.ndarray, before: int, after: int) -> np.ndarray:
    """Samples within `before` samples before / `after` samples after a crossing
    (`cross[..., j]` is a crossing between samples j and j + 1: it lands on sample
    j + 1, and sample k is near it when k − after ≤ j + 1 ≤ k + before)."""
    T = cross.shape[-1] + 1
    c = np.zeros(cross.shape[:-1] + (T + 1,), np.int32)
    np.cumsum(cross, axis=-1, out=c[..., 2:])  # c[k + 1] = crossings landing at or before k
    # near[k] = c[min(k + before, T − 1) + 1] − c[max(k − after, 0)] > 0, by slices
    near = np.empty(cross.shape[:-1] + (T,), bool)
    hi = np.empty(cross.shape[:-1] + (T,), np.int32)
    m = max(T - before, 0)
    hi[..., :m] = c[..., before + 1: before + 1 + m]
    hi[..., m:] = c[..., T: T + 1]
    k = min(after, T)
    np.greater(hi[..., :k], c[..., :1], out=near[..., :k])
    np.greater(hi[..., k:], c[..., : T - k], out=near[..., k:])
    return near


def cell_score(
    t: np.ndarray,
    v_data: np.ndarray,
    v_model: np.ndarray,
    *,
    threshold: float = -20.0,
    delta: float = 4.0,
    exclude_ms: tuple[float, float] = (2.0, 10.0),
    rmse_scale_mV: float = 3.0,
    rmse_weight: float = 0.5,
    hysteresis: float = 10.0,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Scores of candidate models on recorded sweeps (lower is better), the terms of
    the held-out metrics of [`hhjax.validation_metrics`][].

    Per sweep with recorded spikes: `(1 − max(Γ, 0)) + min(|n_model − n_data| /
    n_data, 2)` (Γ with ±`delta` ms); per silent sweep: `min(n_model, 3)`; plus
    `rmse_weight ×` the sub-threshold RMSE / `rmse_scale_mV` (samples within
    `exclude_ms` of a spike of either trace left out). Averaged over sweeps. Spikes
    are counted as [`hhjax.recorded_spike_times`][] counts them (a crossing is a new
    spike once the voltage fell `hysteresis` mV below the threshold).

    **Arguments:** `t` [ms] `(T,)`; `v_data` [mV] `(S, T)`; `v_model` [mV]
    `(N, S, T)` for N candidates; `threshold` [mV]; `delta`, `exclude_ms` [ms];
    `hysteresis` [mV] (default 10).

    **Returns:** `(score (N,), terms)` with `terms["spikes"]` and
    `terms["rmse_mV"]` of shape `(N, S)` (float NumPy arrays). A candidate whose
    trace is not finite on a sweep gets the worst terms there (3 and 1000 mV).

    **Raises:** `ValueError` unless `v_model` is `(N, S, T)` with `v_data` `(S, T)`
    and `t` `(T,)`.

    **Example** (one sweep with three spikes; candidates: the same spikes 0.3 mV
    off, and a silent trace):

    ```pycon
    >>> import numpy as np, fitting
    >>> t = np.arange(0.0, 100.0, 0.1)                                    # ms
    >>> spiking = np.any([(t >= s) & (t < s + 1.0) for s in (20, 50, 80)], axis=0)
    >>> v_data = np.where(spiking, 20.0, -65.0)                           # mV, (T,)
    >>> v_model = np.stack([v_data + 0.3, np.full_like(t, -64.0)])        # (N, T)
    >>> score, terms = fitting.cell_score(t, v_data[None], v_model[:, None])
    >>> np.round(score, 3).tolist(), np.round(terms["rmse_mV"], 2).tolist()
    ([0.05, 2.167], [[0.3], [1.0]])

    ```
    """
    t = np.asarray(t, float)
    vd = np.asarray(v_data, float)
    vm = np.asarray(v_model, float)
    if vm.ndim != 3 or vm.shape[1:] != vd.shape or vd.shape[-1] != t.shape[0]:
        raise ValueError(
            f"`v_model` must be (N, S, T) with v_data (S, T) and t (T,), got {vm.shape}, "
            f"{vd.shape}, {t.shape}."
        )
    N, S, T = vm.shape
    dt = float(np.median(np.diff(t)))
    before, after = (int(math.ceil(x / dt)) for x in exclude_ms)
    duration = float(t[-1] - t[0])
    keep_d = ~_near_spikes(_crossings(vd, threshold), before, after) & (vd < threshold)
    bad = np.zeros((N, S), bool)
    rmse = np.zeros((N, S))
    nm = np.zeros((N, S), int)
    tm: list[list[np.ndarray]] = [[] for _ in range(N)]
    # a few candidates at a time, so the temporaries stay small (a generation's
    # traces are ~100 MB; scored whole, the passes over them took 4–8× longer)
    chunk = max(1, _SCORE_CHUNK_SAMPLES // max(S * T, 1))
    for n0 in range(0, N, chunk):
        v = vm[n0: n0 + chunk]
        finite = np.isfinite(v)
        bad[n0: n0 + chunk] = ~np.all(finite, axis=-1)
        if not finite.all():
            v = np.where(finite, v, -1e3)
        keep = ~_near_spikes(_crossings(v, threshold), before, after)
        keep &= keep_d[None]
        e2 = v - vd[None]
        np.square(e2, out=e2)
        n_keep = np.maximum(keep.sum(-1), 1)
        rmse[n0: n0 + chunk] = np.sqrt(np.sum(e2, axis=-1, where=keep) / n_keep)
        for i in range(v.shape[0]):
            row = [hhjax.recorded_spike_times(t, v[i, s], threshold, hysteresis=hysteresis)
                   for s in range(S)]
            tm[n0 + i] = row
            nm[n0 + i] = [x.size for x in row]
    rmse = np.where(bad, 1e3, np.minimum(rmse, 1e3))

    spikes = np.zeros((N, S))
    for s in range(S):
        td = hhjax.recorded_spike_times(t, vd[s], threshold, hysteresis=hysteresis)
        nd = td.size
        if nd == 0:
            spikes[:, s] = np.minimum(nm[:, s], 3)
            continue
        count = np.minimum(np.abs(nm[:, s] - nd) / nd, 2.0)
        gam = np.zeros(N)
        for n in range(N):
            if nm[n, s] == 0 or bad[n, s]:
                continue
            g = hhjax.coincidence_factor(td, tm[n][s], duration, delta=delta)
            gam[n] = 0.0 if not math.isfinite(g) else max(g, 0.0)
        spikes[:, s] = (1.0 - gam) + count
    spikes = np.where(bad, 3.0, spikes)
    score = spikes.mean(-1) + rmse_weight * (rmse / rmse_scale_mV).mean(-1)
    return score, {"spikes": spikes, "rmse_mV": rmse}


#: candidates stay this far (in the unit cube) inside the bounds: a candidate on a
#: bound would be rejected as the start of a local fit, whose transforms map the
#: bounds open (and exp(log(lo)) can round below lo)
_EDGE = 1e-3


def _float_dtype(dtype, default):
    """`dtype` as a NumPy float dtype (`None`: `default`)."""
    if dtype is None:
        return np.dtype(default)
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or not np.issubdtype(dt, np.floating):
        raise TypeError(
            f"`dtype` must be a float dtype (e.g. 'float32' or 'float64') or None, got "
            f"{dtype!r}.")
    return dt


def _unit_maps(bounds: Mapping[str, tuple[float, float]], labels):
    """Per label: (to_unit, from_unit) maps onto [0, 1]; logarithmic for positive
    bounds spanning a factor ≥ 10."""
    maps = []
    for k in labels:
        lo, hi = (float(x) for x in bounds[k])
        if lo > 0 and hi / lo >= 10:
            a, b = math.log(lo), math.log(hi)
            maps.append((lambda x, a=a, b=b: (np.log(x) - a) / (b - a),
                         lambda u, a=a, b=b: np.exp(a + u * (b - a))))
        else:
            maps.append((lambda x, lo=lo, hi=hi: (x - lo) / (hi - lo),
                         lambda u, lo=lo, hi=hi: lo + u * (hi - lo)))
    return maps


def _inside(u: np.ndarray) -> np.ndarray:
    return np.clip(u, _EDGE, 1.0 - _EDGE)


class _CEM:
    """The cross-entropy method, ask/tell: `ask()` gives candidates `(N, d)` in the
    unit cube, `tell(u, score)` their scores. A diagonal Gaussian refitted to the
    best `elite_fraction` (the elites carry over as the first candidates of the next
    generation, re-simulated), re-inflated to its starting width around the best
    after four generations without improvement. `state()`/`restore()`: everything
    that decides the next candidates, JSON-serialisable (a resumed search draws
    the candidates the uninterrupted one would have)."""

    def __init__(self, u0, sigma, N, rng, elite_fraction):
        self.u0, self.sigma, self.N, self.rng = u0, np.asarray(sigma, float), N, rng
        self.n_elite = max(2, int(round(elite_fraction * N)))
        self.mean, self.std = u0.copy(), self.sigma.copy()
        self.prev_best, self.stall, self.elite = math.inf, 0, None

    def ask(self):
        u = _inside(self.mean + self.std * self.rng.standard_normal((self.N, self.u0.size)))
        if self.elite is None:
            u[0] = self.u0
        else:
            u[: self.n_elite] = self.elite
        return u

    def tell(self, u, score):
        elite = u[np.argsort(score, kind="stable")[: self.n_elite]]
        best = float(np.min(score))
        self.stall = self.stall + 1 if best > self.prev_best - 1e-3 else 0
        self.prev_best = best
        if self.stall >= 4:
            # stagnated: re-inflate the search around the best so far (a restart
            # that keeps the elites), instead of polishing one basin
            self.mean, self.std, self.stall = elite[0].copy(), np.maximum(self.std, self.sigma), 0
        else:
            self.mean = 0.3 * self.mean + 0.7 * elite.mean(0)
            self.std = np.maximum(0.3 * self.std + 0.7 * elite.std(0), 0.01)
        self.elite = elite

    def state(self):
        return {"mean": self.mean.tolist(), "std": self.std.tolist(),
                "prev_best": self.prev_best, "stall": self.stall,
                "elite": None if self.elite is None else self.elite.tolist(),
                "rng": self.rng.bit_generator.state}

    def restore(self, st):
        self.mean, self.std = np.asarray(st["mean"], float), np.asarray(st["std"], float)
        self.prev_best, self.stall = float(st["prev_best"]), int(st["stall"])
        self.elite = None if st["elite"] is None else np.asarray(st["elite"], float)
        self.rng.bit_generator.state = st["rng"]


class _CMA:
    """CMA-ES (Hansen, "The CMA Evolution Strategy: A Tutorial", 2016; default
    constants, weighted recombination of the best half), ask/tell as `_CEM`. The
    covariance starts as `diag(sigma²)` with step size 1; candidates are clipped
    inside the cube and the clipped points enter the update (the repair keeps the
    mean's step consistent with what was scored). The sampled spread is capped at
    half the cube."""

    def __init__(self, u0, sigma, N, rng):
        n = u0.size
        self.u0, self.N, self.rng = u0, N, rng
        self.mu = mu = N // 2
        w = math.log((N + 1) / 2) - np.log(np.arange(1, mu + 1))
        self.w = w = w / w.sum()
        self.mueff = mueff = 1.0 / float(np.sum(w**2))
        self.cs = cs = (mueff + 2) / (n + mueff + 5)
        self.ds = 1 + 2 * max(0.0, math.sqrt((mueff - 1) / (n + 1)) - 1) + cs
        self.cc = (4 + mueff / n) / (n + 4 + 2 * mueff / n)
        self.c1 = c1 = 2 / ((n + 1.3) ** 2 + mueff)
        self.cmu = min(1 - c1, 2 * (mueff - 2 + 1 / mueff) / ((n + 2) ** 2 + mueff))
        self.chi = math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n))
        self.m, self.step = u0.copy(), 1.0
        self.C = np.diag(np.asarray(sigma, float) ** 2)
        self.ps, self.pc, self.g = np.zeros(n), np.zeros(n), 0

    def ask(self):
        d2, B = np.linalg.eigh(self.C)
        D = np.sqrt(np.maximum(d2, 1e-20))
        self.step = min(self.step, 0.5 / float(D.max()))
        self._BD = B, D
        x = _inside(self.m + self.step * (self.rng.standard_normal((self.N, self.u0.size))
                                          * D) @ B.T)
        if self.g == 0:
            x[0] = self.u0
        return x

    def tell(self, x, score):
        B, D = self._BD
        cs, cc, c1, cmu, w, mueff = self.cs, self.cc, self.c1, self.cmu, self.w, self.mueff
        self.g += 1
        y = (x - self.m) / self.step
        parents = y[np.argsort(score, kind="stable")[: self.mu]]
        yw = w @ parents
        self.m = _inside(self.m + self.step * yw)
        self.ps = (1 - cs) * self.ps + math.sqrt(cs * (2 - cs) * mueff) * ((B / D) @ (B.T @ yw))
        hs = float(np.linalg.norm(self.ps) / math.sqrt(1 - (1 - cs) ** (2 * self.g))
                   < (1.4 + 2 / (self.u0.size + 1)) * self.chi)
        self.pc = (1 - cc) * self.pc + hs * math.sqrt(cc * (2 - cc) * mueff) * yw
        C = ((1 - c1 - cmu) * self.C
             + c1 * (np.outer(self.pc, self.pc) + (1 - hs) * cc * (2 - cc) * self.C)
             + cmu * (parents.T * w) @ parents)
        self.C = 0.5 * (C + C.T)
        self.step *= math.exp(min(1.0, (cs / self.ds) * (np.linalg.norm(self.ps) / self.chi - 1)))

    def state(self):
        return {"m": self.m.tolist(), "step": self.step, "C": self.C.tolist(),
                "ps": self.ps.tolist(), "pc": self.pc.tolist(), "g": self.g,
                "rng": self.rng.bit_generator.state}

    def restore(self, st):
        self.m, self.C = np.asarray(st["m"], float), np.asarray(st["C"], float)
        self.ps, self.pc = np.asarray(st["ps"], float), np.asarray(st["pc"], float)
        self.step, self.g = float(st["step"]), int(st["g"])
        self.rng.bit_generator.state = st["rng"]


def search_cell(
    membrane: hhjax.Membrane,
    recording: hhjax.Recording,
    labels: Mapping[str, str],
    bounds: Mapping[str, tuple[float, float]],
    *,
    area_cm2: float,
    area_bounds: tuple[float, float] | None = None,
    spread: Mapping[str, float] | None = None,
    population: int = 256,
    generations: int = 12,
    elite_fraction: float = 0.125,
    time_budget_s: float | None = 120.0,
    threshold: float = -20.0,
    dt_ms: float = 0.025,
    seed: int = 0,
    method: str = "cma",
    xtol: float | None = None,
    dtype=None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = False,
) -> tuple[hhjax.Membrane, SearchResult]:
    """Global search for a cell model's parameters on recorded sweeps (CMA-ES).

    Each generation simulates `population` candidates on every sweep of
    `recording` at once ([`hhjax.simulate_population`][], second-order staggered
    scheme at `dt_ms`, each sweep from its resting state under the holding current)
    and scores them with [`fitting.cell_score`][]. The parameters live on
    `[0, 1]`-scaled bounds (logarithmic for positive bounds spanning a factor
    ≥ 10). `method="cma"` (default) is CMA-ES (Hansen's tutorial constants; the
    best half recombined with log weights; a full covariance matrix, so it follows
    the correlated valleys of a cell fit — a conductance trading against the area
    or a threshold); `method="cem"` the cross-entropy method hhjax used before: a
    per-parameter Gaussian refitted to the best `elite_fraction`, the elites
    carried over and the Gaussian re-inflated around the best after four
    generations without improvement. Both start from a Gaussian centred on the
    membrane's own values with standard deviation `spread[label]` (in scaled
    units; default 0.15, i.e. about a factor 2 for a conductance bounded over two
    decades) and return the best candidate scored. Candidates are drawn strictly
    inside the bounds (0.1 % of the scaled range from each), so the best one can
    start a local fit on the same bounds.

    Measured with `fit_cell`'s settings (30 generations of 256, seed 0; fitted
    sweeps' score, lower is better): a synthetic Pospischil RS cell (bench
    `cell_probes` base, started from its passive stage) 0.054 with CMA-ES against
    0.651 with the cross-entropy method (the truth scores 0.048); the dev-set
    cells rs-171116 1.109 / 1.249, fs-2019 1.021 / 1.113, axon-5 0.256 / 0.304,
    b6 1.240 / 1.401 (without a time budget; same simulations, same wall time).

    **Arguments:**

    - `membrane`: the starting [`hhjax.Membrane`][] (one neuron).
    - `recording`: an [`hhjax.Recording`][] in pA (the sweeps to score on).
    - `labels`: label → parameter path (`"a.x|b.y"` ties fields) of the searched
      parameters; `bounds`: label → `(lower, upper)` in the parameter's unit.
    - `area_cm2`: membrane area [cm²] converting the current to density.
    - `area_bounds`: `(lower, upper)` [cm²] to search the area too (label
      `"area_cm2"` in `spread` and in the result's `values`); default: fixed.
    - `population`, `generations`: the search's size; `elite_fraction`: the
      share of candidates the cross-entropy method refits to (`method="cem"` only).
    - `time_budget_s` [s]: wall-time budget, start-up included (None: no limit).
      A generation is not started when, at the last generation's pace, it would end
      after the budget; the first generation always runs.
    - `threshold` [mV], `dt_ms` [ms] (the sample spacing must be a whole number of
      it; it is reduced to the nearest divisor otherwise), `seed`. The default
      0.025 ms keeps the score near the converged model's: on the B6 cell's
      fitted sweeps a candidate scored 1.47 at 0.05 ms, 1.67 at 0.025 ms, 1.69 at
      0.0125 ms and 1.67 with Tsit5 — at 0.05 ms the search optimised the
      discretisation of the fast 36 °C Na kinetics, not the model.
    - `method`: `"cma"` (default) or `"cem"` (above).
    - `xtol`: stop early once the candidates' spread (the result's `spread`,
      scaled units) falls below it (default `None`: run every generation).
    - `dtype`: the float dtype the candidates are simulated in (default `None`:
      the membrane's). The returned membrane keeps its own dtype. `"float32"`
      simulates a generation about twice as fast on a CPU (256 fs-2019 candidates
      on 3 sweeps of 3 s: 0.65 s against 1.2 s; the whole search 1.5× faster) and
      scores nearly as float64 does (those candidates: 3e-5 apart at the median,
      8e-5 at the 90th percentile, 0.16 at most; rank correlation 0.99996) — but
      the search keeps the best of thousands of candidates, and the chaotic spike
      times' rounding is selected for: with `fit_cell`'s defaults the fitted-sweep
      score after 30 float32 generations (re-simulated in float64) was worse on
      all four dev-set cells (rs-171116 1.142 against 1.122, fs-2019 1.244/1.031,
      axon-5 0.259/0.256, b6 1.444/1.389; one draw each) and so were most held-out
      metrics. For GPUs with little float64 throughput.
    - `checkpoint`: a file [JSON] written after every generation (atomically: a
      Ctrl-C keeps the last one) with the search's state: its covariance, step
      size, random generator, best candidate and history. `resume=True` continues
      from it when it exists — the generations a resumed search runs draw and score
      the candidates the uninterrupted search would have, so with `time_budget_s=None`
      the result is the same bit for bit. The stop rules count what was done
      before: `generations` is the total, the time budget counts the wall time
      already spent (so a finished search resumed with the same settings returns
      its result without simulating; with more `generations` or a larger budget it
      goes on). A checkpoint of another search (other data, start, bounds, spread,
      population, method or seed) is refused with a `ValueError`.

    **Returns:** `(membrane with the best values, SearchResult)`.

    **Raises:** `ValueError` for a label without bounds, nothing to search (no
    labels, no `area_bounds`), a bad size argument, an unknown `method`, a
    `spread` value that is not a finite number > 0, `resume` without `checkpoint`
    or a checkpoint that is unreadable or of another search;
    [`fitting.SearchInterrupted`][] on Ctrl-C (the best candidate so far).

    **Example** (a real-cell recording in pA; tens of seconds):

    ```python
    rec = hhjax.load_recording("cell.abf")
    model = fitting.cell_model("pospischil-rs")
    area = fitting.estimate_passive(rec).area_cm2()            # cm²
    membrane, found = fitting.search_cell(model.membrane, rec, model.labels,
                                          model.bounds, area_cm2=area,
                                          time_budget_s=60.0)
    found.values, found.score        # then a local fit starting from `membrane`
    ```
    """
    t_wall = time.perf_counter()
    labels = dict(labels)
    missing = [k for k in labels if k not in bounds]
    if missing:
        raise ValueError(f"search_cell needs bounds for {missing}.")
    if int(population) != population or population < 8:
        raise ValueError(f"`population` must be an integer ≥ 8, got {population!r}.")
    if int(generations) != generations or generations < 1:
        raise ValueError(f"`generations` must be a positive integer, got {generations!r}.")
    if not (math.isfinite(dt_ms) and dt_ms > 0):
        raise ValueError(f"`dt_ms` must be > 0 (ms), got {dt_ms!r}.")
    if method not in ("cma", "cem"):
        raise ValueError(f"`method` must be 'cma' or 'cem', got {method!r}.")
    if xtol is not None and not (isinstance(xtol, (int, float)) and 0 < xtol < 1):
        raise ValueError(
            f"`xtol` must be None or a spread in (0, 1) (scaled units of the bounds), "
            f"got {xtol!r}."
        )
    if not 0 < elite_fraction < 1:
        raise ValueError(f"`elite_fraction` must be in (0, 1), got {elite_fraction!r}.")
    out_dtype = membrane.dtype
    dtype = _float_dtype(dtype, out_dtype)
    check_checkpoint(checkpoint, resume)
    names = list(labels)
    bounds = dict(bounds)
    if area_bounds is not None:
        lo, hi = (float(x) for x in area_bounds)
        if not (0 < lo < area_cm2 < hi):
            raise ValueError(
                f"`area_bounds` must satisfy 0 < lower < area_cm2 < upper [cm²], got "
                f"{area_bounds} with area_cm2={area_cm2}."
            )
        names.append("area_cm2")
        bounds["area_cm2"] = (lo, hi)
    if not names:
        raise ValueError("search_cell has nothing to search: give `labels` or `area_bounds`.")
    maps = _unit_maps(bounds, names)
    x0 = np.array([float(area_cm2) if k == "area_cm2" else
                   float(np.asarray(get_parameter(membrane, labels[k]))) for k in names])
    u0 = _inside(np.array([m[0](x) for m, x in zip(maps, x0)]))
    spread = dict(spread or {})
    for k, v in spread.items():
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ValueError(
                f"`spread[{k!r}]` must be a finite number > 0 (a standard deviation in "
                f"the parameter's [0, 1]-scaled units, e.g. 0.15), got {v!r}."
            )
    sigma = np.array([float(spread.get(k, 0.15)) for k in names])

    t = np.asarray(recording.t_ms, float)
    rec_dt = float(recording.dt)
    n_sub = max(1, int(math.ceil(rec_dt / dt_ms - 1e-9)))
    dt_sim = rec_dt / n_sub
    vd = np.asarray(recording.v_mV, float)
    S = vd.shape[0]
    sim_membrane = jax.tree_util.tree_map(
        lambda x: x.astype(dtype) if eqx.is_inexact_array(x) else x, membrane)
    i0_ref = jnp.asarray(recording.current_density(area_cm2)[:, 0], dtype)  # (S,)
    N = int(population)
    # the stimulus of every candidate (its own area when the area is searched)
    stim_of_areas = jax.jit(jax.vmap(lambda a: recording.stimulus(a, dtype=dtype)))

    @eqx.filter_jit
    def rest(mb, i):
        one = lambda m, ii: hhjax.resting_state(m, ii, throw=False)  # noqa: E731
        return eqx.filter_vmap(eqx.filter_vmap(one, in_axes=(None, 0)))(mb, i)

    fixed_stim = (None if "area_cm2" in names
                  else stim_of_areas(jnp.full((N,), area_cm2, dtype)))

    def areas(u):
        if "area_cm2" not in names:
            return np.full(N, float(area_cm2))
        j = names.index("area_cm2")
        return np.asarray(maps[j][1](u[:, j]), float)

    def build(u):
        vals = {labels[k]: jnp.asarray(maps[j][1](u[:, j]), dtype)
                for j, k in enumerate(names) if k != "area_cm2"}
        mb = set_parameters(sim_membrane, vals)
        # every array field of shape (N,)
        return jax.tree_util.tree_map(
            lambda a: jnp.broadcast_to(a, (N,)) if eqx.is_array(a) else a, mb
        )

    def evaluate(u):
        mb = build(u)
        a = jnp.asarray(areas(u), dtype)
        # leaves (N, S, ...); built once when the area is not searched
        stim_b = stim_of_areas(a) if fixed_stim is None else fixed_stim
        i0 = i0_ref[None, :] * (area_cm2 / a)[:, None]  # (N, S) µA/cm²
        y0 = rest(mb, i0)  # (N, S) fields
        mb2 = jax.tree_util.tree_map(
            lambda a: jnp.broadcast_to(a[:, None], (N, S)) if eqx.is_array(a) else a, mb
        )
        res = hhjax.simulate_population(
            mb2, stim_b, float(t[-1]), t0=float(t[0]), dt=dt_sim, save_every=rec_dt,
            y0=y0, stimulus_batched=True, scheme="staggered", throw=False, save="v",
        )
        v = np.asarray(res.v)
        return cell_score(t, vd, v[..., : t.size], threshold=threshold)

    rng = np.random.default_rng(seed)
    opt = _CMA(u0, sigma, N, rng) if method == "cma" else _CEM(u0, sigma, N, rng, elite_fraction)
    history: list[float] = []
    best_u, best_s, best_terms = u0.copy(), math.inf, None
    n_eval, prior_s, last_gen_s = 0, 0.0, 0.0
    spreads: list[float] = []
    if checkpoint is not None:
        fingerprint = digest(
            (names, [labels.get(k) for k in names], [bounds[k] for k in names],
             u0.tolist(), sigma.tolist(), N, method, float(elite_fraction), int(seed),
             float(dt_sim), float(threshold), float(area_cm2), str(dtype)),
            arrays=(t, vd, np.asarray(recording.current_density(area_cm2), float)),
            trees=(membrane,))
        if resume and pathlib.Path(checkpoint).exists():
            ck = _load_search_checkpoint(checkpoint)
            if ck.get("fingerprint") != fingerprint:
                raise ValueError(
                    f"Search checkpoint {checkpoint} belongs to a different search (other "
                    "data, parameters, bounds, start, spread, population, method or seed); "
                    "remove it or drop `resume`."
                )
            opt.restore(ck["optimizer"])
            history, spreads = list(ck["history"]), list(ck["spread"])
            best_u, best_s = np.asarray(ck["best_u"], float), float(ck["best_score"])
            best_terms, n_eval = ck["best_terms"], int(ck["n_evaluated"])
            prior_s, last_gen_s = float(ck["elapsed_s"]), float(ck["last_generation_s"])

    def save(stopped=None):
        if checkpoint is None:
            return
        write_text_atomic(checkpoint, json.dumps({
            "version": SEARCH_CHECKPOINT_VERSION, "fingerprint": fingerprint,
            "method": method, "generations_done": len(history), "optimizer": opt.state(),
            "best_u": best_u.tolist(), "best_score": best_s, "best_terms": best_terms,
            "history": history, "spread": spreads, "n_evaluated": n_eval,
            "elapsed_s": elapsed(), "last_generation_s": last_gen_s, "stopped": stopped,
        }))

    def elapsed():
        return prior_s + time.perf_counter() - t_wall

    def result(stopped):
        values = {k: float(maps[j][1](best_u[j])) for j, k in enumerate(names)}
        mb = set_parameters(membrane, {labels[k]: jnp.asarray(v, out_dtype)
                                       for k, v in values.items() if k != "area_cm2"})
        return mb, SearchResult(
            values=values,
            score=float(history[-1]) if history else math.inf,
            terms=best_terms or {},
            history=history,
            n_evaluated=n_eval,
            wall_time=elapsed(),
            spread=spreads,
            stopped=stopped,
        )

    try:
        while True:
            # the stop rules, checked before each generation (after a resume too: a
            # finished search resumed with the same settings stops where it did)
            g = len(history)
            if g >= int(generations):
                stopped = "generations"
                break
            if g and xtol is not None and spreads[-1] < xtol:
                stopped = "converged"
                break
            if g and time_budget_s is not None and elapsed() + last_gen_s > time_budget_s:
                stopped = "time_budget"  # the next generation would end past the budget
                break
            t_gen = time.perf_counter()
            u = opt.ask()
            score, terms = evaluate(u)
            score = np.where(np.isfinite(score), score, np.inf)
            n_eval += N
            j = int(np.argmin(score))
            if score[j] < best_s:
                best_u, best_s = u[j].copy(), float(score[j])
                best_terms = {k: v[j].tolist() for k, v in terms.items()}
            history.append(best_s)
            spreads.append(float(np.max(np.std(u, axis=0))))
            opt.tell(u, score)
            last_gen_s = time.perf_counter() - t_gen
            save()
            if progress:
                print(f"  search generation {g + 1}: best score {best_s:.3f}, "
                      f"spread {spreads[-1]:.3f}", flush=True)
    except KeyboardInterrupt:
        # the generations finished so far are kept (one being scored is not; the
        # checkpoint, written after each generation, holds them)
        mb, res = result("interrupted")
        raise SearchInterrupted(res, mb) from None
    save(stopped)
    return result(stopped)


def _load_search_checkpoint(path) -> dict:
    try:
        ck = json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"Could not read search checkpoint {path}: {e}") from e
    if not isinstance(ck, dict) or ck.get("version") != SEARCH_CHECKPOINT_VERSION:
        raise ValueError(
            f"{path} is not a search checkpoint of this version (expected version "
            f"{SEARCH_CHECKPOINT_VERSION}, got "
            f"{ck.get('version') if isinstance(ck, dict) else type(ck).__name__})."
        )
    return ck
