"""Reports of a fit: predicted traces, the figure and the JSON summary."""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

import hhjax

from ._fit import FitResult, write_text_atomic
from ._simulator import AbstractSimulator, HHSimulator
from ._transforms import set_parameters


@eqx.filter_jit
def _predict_sweeps(simulator, params, stimulus, ts, span):
    """`simulator` on every sweep (leading axis of `params` and `stimulus`); one
    compilation per model structure, sweep count and sample count — `ts` is an
    argument, not a constant folded into the program."""
    import diffrax

    return jax.vmap(
        lambda pp, ss: simulator(pp, ss, ts, span, diffrax.RecursiveCheckpointAdjoint())
    )(params, stimulus)


def predict(
    result: FitResult,
    recording: hhjax.Recording,
    *,
    simulator: AbstractSimulator | None = None,
    area_cm2: float | None = None,
) -> np.ndarray:
    """Simulate the fitted model on every sweep of `recording`.

    **Arguments:** `result` from [`fitting.fit`][]; `recording` (the fitted one or
    held-out sweeps with the same stimulus kind); `simulator` (default a tight
    [`fitting.HHSimulator`][], rtol 1e-9); `area_cm2` for recordings in pA (default:
    the fitted or the recording's area).

    **Returns:** `(S, T)` membrane potential [mV] at the recording's sample times
    (float64 NumPy); NaN for a sweep whose simulation failed.

    **Raises:** `ValueError` when the fit has per-sweep parameters for a different
    number of sweeps than `recording`; for a recording in pA without any area (none
    given, fitted or stored), the error of [`hhjax.Recording.stimulus`][].

    **Example** (after a fit; one simulation per sweep):

    ```python
    res = fitting.fit(hhjax.HHParams(), rec)
    v = fitting.predict(res, held_out)          # (S, T) [mV]
    hhjax.validation_metrics(held_out.t_ms, held_out.v_mV[0], v[0])
    ```
    """
    simulator = simulator if simulator is not None else HHSimulator(rtol=1e-9, atol=1e-9)
    values = result.values
    if recording.current_unit == "pA":
        area = area_cm2
        if area is None and "area_cm2" in values:
            area = float(values["area_cm2"])
        if area is None and "capacitance_pF" in values:
            c_m = float(np.asarray(getattr(result.params, "c_m", 1.0)))
            area = float(values["capacitance_pF"]) * 1e-6 / c_m
        if area is None:
            area = recording.area_cm2 or result.settings.get("area_cm2")
        stim = recording.stimulus(area_cm2=area)
    else:
        stim = recording.stimulus()
    S = recording.n_sweeps
    params = result.params
    leaves_b = jax.tree_util.tree_map(
        lambda x: jnp.broadcast_to(jnp.asarray(x), (S,) + jnp.shape(x))
        if eqx.is_array_like(x)
        else x,
        params,
    )
    per_sweep = {
        n: jnp.asarray(v)
        for n, v in values.items()
        if np.ndim(v) == 1 and n not in ("area_cm2", "capacitance_pF")
    }
    if per_sweep:
        if any(v.shape[0] != S for v in per_sweep.values()):
            raise ValueError(
                "This fit has per-sweep parameters for a different number of sweeps; "
                "predict on the fitted recording."
            )
        leaves_b = set_parameters(leaves_b, per_sweep)
    t = np.asarray(recording.t_ms, float)
    dtype = jnp.asarray(params.c_m).dtype if hasattr(params, "c_m") else float
    ts = jnp.asarray(t, dtype)
    span = (float(t[0]), float(t[-1]))

    v, ok = _predict_sweeps(simulator, leaves_b, stim, ts, span)
    v = np.array(v, dtype=float)
    v[~np.asarray(ok)] = np.nan
    return v


def plot_fit(
    result: FitResult,
    recording: hhjax.Recording,
    predicted: np.ndarray | None = None,
    *,
    title: str | None = None,
    max_sweeps: int = 8,
) -> Figure:
    """Data vs fitted model per sweep, and the loss history.

    **Arguments:** `result`, `recording`; `predicted` `(S, T)` [mV] (default
    [`fitting.predict`][]); `title`; `max_sweeps` panels at most (evenly chosen).

    **Returns:** a matplotlib `Figure` (nothing is shown).

    **Raises:** what [`fitting.predict`][] raises when `predicted` is not given.

    **Example:**

    ```python
    fig = fitting.plot_fit(res, rec, title="demo fit")
    fig.savefig("fit.png", dpi=100)
    ```
    """
    if predicted is None:
        predicted = predict(result, recording)
    S = recording.n_sweeps
    idx = np.unique(np.linspace(0, S - 1, min(S, max_sweeps)).round().astype(int))
    n = idx.size
    fig = Figure(figsize=(9, 1.9 * n + 2.4), layout="constrained")
    gs = fig.add_gridspec(n + 1, 1, height_ratios=[1] * n + [1.2])
    t = np.asarray(recording.t_ms)
    for row, s in enumerate(idx):
        ax = fig.add_subplot(gs[row])
        ax.plot(t, recording.v_mV[s], color="0.6", lw=0.8, label="data")
        ax.plot(t, predicted[s], color="C3", lw=1.0, label="fit")
        ax.set_ylabel(f"sweep {s}\nV [mV]")
        if row == 0:
            ax.legend(loc="upper right", fontsize=8, ncol=2)
        if row < n - 1:
            ax.tick_params(labelbottom=False)
    ax.set_xlabel("t [ms]")
    ax = fig.add_subplot(gs[n])
    losses = np.array([h[2] for h in result.history], float)
    if losses.size:
        ax.semilogy(np.arange(1, losses.size + 1), losses, color="C0")
        names = [h[0] for h in result.history]
        for k in range(1, len(names)):
            if names[k] != names[k - 1]:
                ax.axvline(k + 0.5, color="0.8", lw=0.8)
                ax.text(k + 1, losses[~np.isnan(losses)].max(), names[k], fontsize=7,
                        rotation=90, va="top", color="0.4")
    ax.set_xlabel("optimiser step (all stages)")
    ax.set_ylabel("loss (best start)")
    fig.suptitle(title or f"fit: {', '.join(result.names)} — status {result.status}")
    return fig


def write_report(
    result: FitResult,
    recording: hhjax.Recording,
    out: str | os.PathLike,
    *,
    extra: dict[str, Any] | None = None,
    figure: bool = True,
) -> dict[str, pathlib.Path]:
    """Write `out/fit.json` (the [`fitting.FitResult.to_json`][] summary plus `extra`)
    and `out/fit.png` (see [`fitting.plot_fit`][]). Files are written atomically.

    **Returns:** name → path of what was written (`"json"`, and `"png"` with
    `figure=True`).

    **Raises:** `OSError` when `out` cannot be written; `ValueError` (from
    `json.dumps`) when `extra` holds NaN or infinity.

    **Example:**

    ```python
    paths = fitting.write_report(res, rec, "out", extra={"cell": "demo"})
    paths["json"], paths["png"]      # out/fit.json, out/fit.png
    ```
    """
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = result.to_json()
    if extra:
        summary.update(extra)
    paths = {"json": out / "fit.json"}
    write_text_atomic(paths["json"], json.dumps(summary, indent=1, allow_nan=False))
    if figure:
        fig = plot_fit(result, recording)
        paths["png"] = out / "fit.png"
        tmpf = out / "fit.tmp.png"
        fig.savefig(tmpf, dpi=100)
        os.replace(tmpf, paths["png"])
    return paths
