"""Teacher-forced initialisation: a linear regression for conductances and reversals.

Given the *recorded* voltage, the gating variables obey linear ODEs (their rates
depend only on V), so they can be integrated from the data alone. The membrane
equation, integrated over short windows `[t_a, t_b]`,

    c_m (V(t_b) − V(t_a)) = ∫ I dt − Σ_x g_x ∫ G_x (V − E_x) dt,   G_na = m³h, G_k = n⁴, G_leak = 1,

is then linear in `g_x` and `g_x·E_x`. Integrating (rather than differentiating the
noisy trace) keeps the noise from being amplified. Solved by (iteratively
reweighted) least squares in well under a second, it lands within a few per cent of
the conductances and reversal potentials — close enough for the trace fit that
follows, which is what it is for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

import hhjax

_CHANNELS = (("na", "g_na", "e_na"), ("k", "g_k", "e_k"), ("leak", "g_leak", "e_leak"))
#: Parameters the regression can estimate.
LINEAR_PARAMETERS = ("g_na", "g_k", "g_leak", "e_na", "e_k", "e_leak")


def _gates_from_voltage(params: hhjax.HHParams, t: np.ndarray, v: np.ndarray):
    """m, h, n driven by the recorded voltage: exact exponential update per sample
    interval with the rates at the interval's mean voltage, starting at steady
    state."""
    vm = 0.5 * (v[:-1] + v[1:])
    dt = np.diff(t)
    inf = {k: np.asarray(x) for k, x in params.gate_inf(vm).items()}
    tau = {k: np.asarray(x) for k, x in params.gate_tau(vm).items()}
    inf0 = {k: float(x) for k, x in params.gate_inf(float(v[0])).items()}
    out = {}
    for name in ("m", "h", "n"):
        a = np.exp(-dt / tau[name])
        b = inf[name] * (1 - a)
        x = np.empty_like(v)
        x[0] = inf0[name]
        # x[i+1] = a[i] x[i] + b[i]: a first-order linear recurrence
        xi = x[0]
        for i in range(v.size - 1):
            xi = a[i] * xi + b[i]
            x[i + 1] = xi
        out[name] = x
    return out


def estimate_noise_sigma(v) -> float:
    """The recording noise σ [mV] estimated from the sample-to-sample scatter.

    `1.4826 · MAD(Δ²v) / √6`: for white noise of standard deviation σ the second
    differences `v[k+1] − 2 v[k] + v[k−1]` have standard deviation `√6 σ`, while a
    smooth signal sampled finely contributes little to them; the median absolute
    deviation ignores the few samples on fast spike upstrokes. Low-pass filtered
    (coloured) noise is underestimated.

    **Arguments:** `v`: voltage samples [mV], `(T,)` or `(S, T)` (second differences
    are taken along the last axis, within each sweep).

    **Returns:** σ̂ [mV], a Python float (NaN with fewer than 3 samples per sweep).

    **Example** (σ = 0.5 mV of white noise on a slow 5-mV sine):

    ```pycon
    >>> import numpy as np, fitting
    >>> t = np.arange(0.0, 100.0, 0.025)                                 # ms
    >>> noise = 0.5 * np.random.default_rng(0).standard_normal(t.size)  # mV
    >>> v = -65.0 + 5.0 * np.sin(2 * np.pi * t / 50.0) + noise
    >>> round(fitting.estimate_noise_sigma(v), 2)
    0.49

    ```
    """
    v = np.atleast_2d(np.asarray(v, float))
    if v.shape[-1] < 3:
        return math.nan
    d2 = np.diff(v, 2, axis=-1).ravel()
    d2 = d2[np.isfinite(d2)]
    if d2.size == 0:
        return math.nan
    mad = float(np.median(np.abs(d2 - np.median(d2))))
    return 1.4826 * mad / math.sqrt(6.0)


def teacher_forced_estimate(
    params: hhjax.HHParams,
    t: np.ndarray,
    v: np.ndarray,
    i: np.ndarray,
    names: Sequence[str] = LINEAR_PARAMETERS,
    *,
    window_ms: float = 1.0,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    reweight: int = 3,
) -> dict[str, float]:
    """Estimate conductances and reversal potentials by teacher-forced regression.

    **Arguments:**

    - `params`: an [`hhjax.HHParams`][]; its kinetics, `c_m` and every parameter not
      in `names` are held fixed.
    - `t`: sample times [ms], `(T,)`; `v`: recorded voltage [mV], `(S, T)`;
      `i`: injected current density [µA/cm²], `(S, T)`.
    - `names`: which of `g_na, g_k, g_leak, e_na, e_k, e_leak` to estimate.
    - `window_ms`: integration window of each regression row [ms] (default 1 ms:
      long enough to average the noise, short enough to resolve spikes).
    - `bounds`: name → (lower, upper); estimates are clipped into them. A
      conductance that comes out non-positive is held at its value in `params` and
      the regression is solved again without it.
    - `reweight`: passes of iteratively reweighted least squares (default 3; 0:
      ordinary least squares). Each pass weights every window by the inverse of
      its modelled noise variance `a + b ∫(Σ_x g_x G_x)² dt` (`a`, `b` fitted to
      the previous pass's squared residuals): the noise of the recorded voltage
      enters a window in proportion to its total conductance, so spike windows
      are much noisier than sub-threshold ones, and without the weights they bias
      the leak conductance and reversal by tens of per cent at 1 mV noise.

    **Returns:** name → estimate (Python floats, units of the parameter: mS/cm²,
    mV), for the names it could estimate (parameters the data does not determine
    keep no entry).

    **Raises:** `ValueError` when the recording is too short for three windows of
    `window_ms`.

    **Example** (noise-free data of the default model, 20 ms: the regression recovers
    `g_na`, `g_k` from a start 17 % off):

    ```pycon
    >>> import hhjax, fitting
    >>> res = hhjax.simulate(hhjax.HHParams(), hhjax.StepCurrent(10.0, 2.0, 20.0),
    ...                      t_end=20.0)
    >>> start = hhjax.HHParams(g_na=100.0, g_k=30.0)
    >>> est = fitting.teacher_forced_estimate(start, res.t, res.v[None],
    ...                                       res.i_stim[None], ("g_na", "g_k"))
    >>> {k: round(v, 1) for k, v in est.items()}                       # mS/cm²
    {'g_na': 120.0, 'g_k': 36.0}

    ```
    """
    t = np.asarray(t, float)
    v = np.atleast_2d(np.asarray(v, float))
    i = np.atleast_2d(np.asarray(i, float))
    names = [n for n in names if n in LINEAR_PARAMETERS]
    if not names:
        return {}
    dt = np.diff(t)
    step = max(1, int(round(window_ms / float(np.median(dt)))))
    idx = np.arange(0, t.size, step)
    if idx.size < 3:
        raise ValueError(
            f"The recording is too short for teacher-forced regression with windows of "
            f"{window_ms} ms ({t.size} samples)."
        )
    c_m = float(params.c_m)
    fixed = {n: float(np.asarray(getattr(params, n))) for n in LINEAR_PARAMETERS}

    def integ(f):
        c = np.concatenate([[0.0], np.cumsum(0.5 * (f[:-1] + f[1:]) * dt)])
        return np.diff(c[idx])

    rows = []  # per sweep: dict of integrals
    for s in range(v.shape[0]):
        g = _gates_from_voltage(params, t, v[s])
        G = {"na": g["m"] ** 3 * g["h"], "k": g["n"] ** 4, "leak": np.ones_like(v[s])}
        rows.append(
            {
                "dv": np.diff(v[s][idx]),
                "iint": integ(i[s]),
                **{f"GV_{c}": integ(G[c] * v[s]) for c, _, _ in _CHANNELS},
                **{f"G_{c}": integ(G[c]) for c, _, _ in _CHANNELS},
                # ∫ G_a G_b dt: the row's noise variance model (see below)
                **{
                    f"GG_{a}_{b}": integ(G[a] * G[b])
                    for ia, (a, _, _) in enumerate(_CHANNELS)
                    for b, _, _ in _CHANNELS[ia:]
                },
            }
        )
    R = {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}

    free = set(names)
    held: set[str] = set()

    def solve(weights):
        """Weighted least squares; a conductance that comes out non-positive is
        held at its value in `params` and the regression solved again."""
        for _ in range(4):
            cols, col_names = [], []
            y = c_m * R["dv"] - R["iint"]
            for c, gname, ename in _CHANNELS:
                g_free = gname in free and gname not in held
                e_free = ename in free
                gv, g1 = R[f"GV_{c}"], R[f"G_{c}"]
                if g_free and e_free:
                    cols += [-gv, g1]
                    col_names += [gname, f"gE_{c}"]
                elif g_free:
                    cols.append(-(gv - fixed[ename] * g1))
                    col_names.append(gname)
                elif e_free:
                    # −g(GV − E·G): unknown g·E with column G; the known −g·GV to the data
                    y = y + fixed[gname] * gv
                    cols.append(g1)
                    col_names.append(f"gE_{c}")
                else:
                    y = y + fixed[gname] * (gv - fixed[ename] * g1)
            if not cols:
                return None, None
            X = np.stack(cols, axis=1)
            sw = np.sqrt(weights)
            Xw = X * sw[:, None]
            scale = np.maximum(np.linalg.norm(Xw, axis=0), 1e-300)
            coef, *_ = np.linalg.lstsq(Xw / scale, y * sw, rcond=None)
            coef = coef / scale
            sol = dict(zip(col_names, coef))
            bad = [gname for _, gname, _ in _CHANNELS if gname in sol and not sol[gname] > 0]
            if not bad:
                break
            held.update(bad)
        return sol, y - X @ coef

    sol, resid = solve(np.ones_like(R["dv"]))
    if sol is None:
        return {}
    # Iteratively reweighted least squares. The rows are far from equally noisy: the
    # recording noise enters each row through c_m·ΔV (a constant variance) and
    # through the regressors, in proportion to the total conductance Σ g_x G_x in
    # the window (large during spikes, where the gates driven by a noisy voltage
    # are also least accurate). Ordinary least squares lets the few spike windows
    # dominate and biases the small leak terms by tens of per cent; weighting each
    # row by 1 / (a + b ∫(Σ g_x G_x)² dt), with a, b fitted to the squared
    # residuals, removes most of that bias.
    for _ in range(reweight):
        g_now = {
            c: (sol[gname] if gname in sol else fixed[gname])
            for c, gname, _ in _CHANNELS
        }
        q = np.zeros_like(R["dv"])
        for ia, (a, _, _) in enumerate(_CHANNELS):
            for b, _, _ in _CHANNELS[ia:]:
                mult = 1.0 if a == b else 2.0
                q = q + mult * max(g_now[a], 0.0) * max(g_now[b], 0.0) * R[f"GG_{a}_{b}"]
        A = np.stack([np.ones_like(q), q], axis=1)
        r2 = resid**2
        ab, *_ = np.linalg.lstsq(A, r2, rcond=None)
        floor = 1e-3 * max(float(np.mean(r2)), 1e-300)
        a_, b_ = max(float(ab[0]), floor), max(float(ab[1]), 0.0)
        var = a_ + b_ * q
        if not np.all(np.isfinite(var)) or not np.all(var > 0):
            break
        new_sol, new_resid = solve(1.0 / var)
        if new_sol is None:
            break
        sol, resid = new_sol, new_resid
    out: dict[str, float] = {}
    for c, gname, ename in _CHANNELS:
        g_val = sol.get(gname, fixed[gname])
        if gname in sol and gname not in held:
            out[gname] = float(g_val)
        if ename in free and f"gE_{c}" in sol and g_val > 0:
            out[ename] = float(sol[f"gE_{c}"] / g_val)
    bounds = dict(bounds or {})
    for n, val in list(out.items()):
        if not math.isfinite(val):
            del out[n]
            continue
        if n in bounds:
            lo, hi = bounds[n]
            margin = 1e-3 * (hi - lo)
            out[n] = float(np.clip(val, lo + margin, hi - margin))
    return out
