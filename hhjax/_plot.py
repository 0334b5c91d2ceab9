"""Matplotlib figures of simulation results. Functions return the figure; nothing here
calls `plt.show()` or touches global pyplot state (figures are built with
`matplotlib.figure.Figure`, so they work headless)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike
from matplotlib.figure import Figure

from ._analysis import (
    LimitCycle,
    Nullclines,
    firing_envelope,
    gating_curves,
    hopf_current,
    stability,
)
from ._model import HHState
from ._params import HHParams
from ._simulate import SimulationResult
from ._spikes import spike_times


def plot_trace(
    result: SimulationResult,
    *,
    gates: bool = True,
    currents: bool = True,
    threshold: float = 0.0,
    title: str | None = None,
) -> Figure:
    """Membrane potential (with detected spikes), stimulus, gates and ionic currents.

    **Arguments:**

    - `result`: an [`hhjax.SimulationResult`][] of one neuron.
    - `gates`, `currents`: add panels for m, h, n and for i_Na, i_K, i_leak.
    - `threshold`: spike threshold [mV] for the spike markers.
    - `title`: figure title.

    **Returns:** a `matplotlib.figure.Figure` (save it with `fig.savefig(path)`).

    **Raises:** `TypeError` when `result` is not an [`hhjax.SimulationResult`][];
    `ValueError` for a batched result (index one neuron first).

    ```pycon
    >>> import hhjax
    >>> res = hhjax.simulate(hhjax.HHParams(), hhjax.StepCurrent(10.0, 2.0, 20.0),
    ...                      t_end=20.0)
    >>> fig = hhjax.plot_trace(res, title="10 µA/cm² step")
    >>> len(fig.axes)           # v, stimulus, gates, currents
    4
    >>> fig.savefig("trace.png")  # doctest: +SKIP

    ```
    """
    if not isinstance(result, SimulationResult):
        raise TypeError(
            f"`result` must be an hhjax.SimulationResult, got {type(result).__name__}."
        )
    if np.ndim(result.v) != 1:
        raise ValueError(
            "`plot_trace` draws one neuron; index a batched result first "
            f"(v has shape {np.shape(result.v)})."
        )
    rows = 2 + int(gates) + int(currents)
    ratios = [3, 1] + [1.5] * int(gates) + [1.5] * int(currents)
    fig = Figure(figsize=(9, 2.0 * rows + 1), layout="constrained")
    axes = fig.subplots(rows, 1, sharex=True, gridspec_kw=dict(height_ratios=ratios))
    t = np.asarray(result.t)
    ax = axes[0]
    ax.plot(t, np.asarray(result.v), color="k", lw=1)
    spk = np.asarray(spike_times(result, threshold))
    spk = spk[np.isfinite(spk)]
    ax.plot(spk, np.full_like(spk, threshold), "v", color="tab:red", ms=5, label="spikes")
    ax.set_ylabel("v [mV]")
    if spk.size:
        ax.legend(loc="upper right", frameon=False)
    axes[1].plot(t, np.asarray(result.i_stim), color="tab:purple", lw=1)
    axes[1].set_ylabel("i_stim\n[µA/cm²]")
    k = 2
    if gates:
        for name, c in zip("mhn", ("tab:blue", "tab:orange", "tab:green")):
            axes[k].plot(t, np.asarray(getattr(result, name)), color=c, lw=1, label=name)
        axes[k].set_ylim(-0.05, 1.05)
        axes[k].set_ylabel("gates")
        axes[k].legend(loc="upper right", ncol=3, frameon=False)
        k += 1
    if currents:
        for name, c in (("i_na", "tab:red"), ("i_k", "tab:blue"), ("i_leak", "0.5")):
            axes[k].plot(t, np.asarray(getattr(result, name)), color=c, lw=1, label=name)
        axes[k].set_ylabel("current\n[µA/cm²]")
        axes[k].legend(loc="upper right", ncol=3, frameon=False)
    axes[-1].set_xlabel("t [ms]")
    if title:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------------------
# analysis plots

_GATE_COLOURS = {"m": "tab:blue", "h": "tab:orange", "n": "tab:green"}
_STATE_LABELS = {"v": "v [mV]", "m": "m", "h": "h", "n": "n"}


def plot_gating_curves(
    params: HHParams, v: ArrayLike | None = None, *, title: str | None = None
) -> Figure:
    """Steady states x∞(v) and time constants τx(v) [ms] of the gates, side by side.

    **Arguments:**

    - `params`: an [`hhjax.HHParams`][] (one neuron).
    - `v`: membrane potentials [mV], 1-D (default: −100 to 50 mV relative to
      `v_shift`, 301 points).
    - `title`: figure title.

    **Returns:** a `matplotlib.figure.Figure`.

    **Raises:** as [`hhjax.gating_curves`][]; `ValueError` for a `v` that is not
    1-D.

    ```pycon
    >>> import hhjax
    >>> fig = hhjax.plot_gating_curves(hhjax.HHParams())
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['steady state x∞', 'time constant τ [ms]']

    ```
    """
    if not isinstance(params, HHParams):
        raise TypeError(
            f"`params` must be an hhjax.HHParams, got {type(params).__name__}."
        )
    if v is None:
        v = np.linspace(-100.0, 50.0, 301) + float(np.asarray(params.v_shift))
    if np.ndim(v) != 1:
        raise ValueError(f"`v` must be a 1-D array in mV, got shape {np.shape(v)}.")
    curves = gating_curves(params, v)
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_inf, ax_tau = fig.subplots(1, 2, sharex=True)
    vv = np.asarray(curves.v)
    for name in curves.inf:
        c = _GATE_COLOURS.get(name)
        inf, tau = np.asarray(curves.inf[name]), np.asarray(curves.tau[name])
        ax_inf.plot(vv, inf, color=c, lw=1.5, label=f"{name}∞")
        ax_tau.plot(vv, tau, color=c, lw=1.5, label=f"τ_{name}")
    ax_inf.set_ylim(-0.05, 1.05)
    ax_inf.set_ylabel("steady state x∞")
    ax_tau.set_ylabel("time constant τ [ms]")
    for ax in (ax_inf, ax_tau):
        ax.set_xlabel("v [mV]")
        ax.legend(frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def _phase_arrays(data: Any, x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(data, (tuple, list)):
        if len(data) != 2:
            raise ValueError(
                "`data` given as a sequence must be `(x_values, y_values)`, got "
                f"{len(data)} items."
            )
        xs, ys = data
    elif isinstance(data, Mapping):
        missing = [k for k in (x, y) if k not in data]
        if missing:
            raise ValueError(f"`data` has no entries {missing}; keys: {list(data)}.")
        xs, ys = data[x], data[y]
    elif isinstance(data, (SimulationResult, LimitCycle, HHState)):
        for k in (x, y):
            if k not in _STATE_LABELS:
                raise ValueError(
                    f"`x`/`y` must be one of {tuple(_STATE_LABELS)}, got {k!r}."
                )
        xs, ys = getattr(data, x), getattr(data, y)
    else:
        raise TypeError(
            "`data` must be an hhjax.SimulationResult, hhjax.LimitCycle, "
            "hhjax.HHState, a dict of arrays or an `(x_values, y_values)` pair, got "
            f"{type(data).__name__}."
        )
    xs, ys = np.asarray(xs), np.asarray(ys)
    if xs.shape != ys.shape or xs.ndim not in (1, 2):
        raise ValueError(
            "the x and y values must be 1-D (or 2-D: one trajectory per row) arrays "
            f"of the same shape, got {xs.shape} and {ys.shape}."
        )
    return np.atleast_2d(xs), np.atleast_2d(ys)


def plot_phase_plane(
    data: Any,
    x: str = "v",
    y: str = "n",
    *,
    nullclines: Nullclines | None = None,
    title: str | None = None,
) -> Figure:
    """A trajectory in the plane of two state variables (default v–n), optionally
    with the nullclines of the reduced (V, n) model.

    **Arguments:**

    - `data`: an [`hhjax.SimulationResult`][], [`hhjax.LimitCycle`][] or
      [`hhjax.HHState`][] (batched: one trajectory per row), a dict of arrays, or
      an `(x_values, y_values)` pair.
    - `x`, `y`: the variables to plot (`"v"` [mV], `"m"`, `"h"`, `"n"`; any key of
      a dict).
    - `nullclines`: a [`hhjax.Nullclines`][] from [`hhjax.nullclines_vn`][]
      (only with `x="v"`, `y="n"`).
    - `title`: figure title.

    **Returns:** a `matplotlib.figure.Figure`.

    **Raises:** `TypeError` for unsupported `data`; `ValueError` for unknown
    variables, mismatched shapes, or nullclines outside the v–n plane.

    ```pycon
    >>> import hhjax
    >>> res = hhjax.simulate(hhjax.HHParams(), hhjax.StepCurrent(10.0, 2.0, 20.0),
    ...                      t_end=20.0)
    >>> fig = hhjax.plot_phase_plane(res, x="v", y="n", title="v–n plane")
    >>> fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()
    ('v [mV]', 'n')

    ```
    """
    if nullclines is not None:
        if not isinstance(nullclines, Nullclines):
            raise TypeError(
                "`nullclines` must be an hhjax.Nullclines (from hhjax.nullclines_vn), "
                f"got {type(nullclines).__name__}."
            )
        if (x, y) != ("v", "n"):
            raise ValueError(
                f"nullclines are drawn in the v–n plane (x='v', y='n'), got x={x!r}, "
                f"y={y!r}."
            )
    xs, ys = _phase_arrays(data, x, y)
    fig = Figure(figsize=(6, 5), layout="constrained")
    ax = fig.subplots()
    for k, (xr, yr) in enumerate(zip(xs, ys)):
        ax.plot(xr, yr, color="k" if len(xs) == 1 else None, lw=1.2,
                label="trajectory" if k == 0 else None)
        ax.plot(xr[:1], yr[:1], "o", color="tab:red", ms=4)
    if nullclines is not None:
        vv = np.asarray(nullclines.v)
        ax.plot(vv, np.asarray(nullclines.v_nullcline), color="tab:blue", lw=1.5,
                label="V-nullcline (reduced)")
        ax.plot(vv, np.asarray(nullclines.n_nullcline), color="tab:green", lw=1.5,
                label="n-nullcline n∞(v)")
        ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(_STATE_LABELS.get(x, x))
    ax.set_ylabel(_STATE_LABELS.get(y, y))
    ax.legend(frameon=False, loc="best")
    if title:
        fig.suptitle(title)
    return fig


def plot_fi_curve(
    currents: ArrayLike,
    rates: ArrayLike,
    *,
    labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Firing rate [Hz] against current [µA/cm²] (e.g. from [`hhjax.fi_curve`][]).

    **Arguments:**

    - `currents`: currents [µA/cm²], shape `(N,)`.
    - `rates`: rates [Hz], shape `(N,)`, or `(K, N)` for K curves (e.g. a vmapped
      `fi_curve` over parameters).
    - `labels`: one legend label per curve.
    - `title`: figure title.

    **Returns:** a `matplotlib.figure.Figure`.

    **Raises:** `ValueError` for mismatched shapes or a wrong number of labels.

    ```pycon
    >>> import hhjax
    >>> currents = [0.0, 5.0, 10.0, 20.0]                   # µA/cm²
    >>> rates = [[0.0, 0.0, 70.0, 87.5], [0.0, 0.0, 65.0, 85.0]]   # Hz, two curves
    >>> fig = hhjax.plot_fi_curve(currents, rates, labels=["model A", "model B"])
    >>> len(fig.axes[0].lines)
    2

    ```
    """
    currents, rates = np.asarray(currents), np.asarray(rates)
    n = currents.size
    if currents.ndim != 1 or rates.ndim not in (1, 2) or rates.shape[-1] != n:
        raise ValueError(
            "`currents` must be 1-D (µA/cm²) and `rates` (Hz) of shape (N,) or (K, N) "
            f"with N = len(currents); got {currents.shape} and {rates.shape}."
        )
    rates = np.atleast_2d(rates)
    if labels is not None and len(labels) != len(rates):
        raise ValueError(f"`labels` needs {len(rates)} entries, got {len(labels)}.")
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    for k, r in enumerate(rates):
        ax.plot(currents, r, "o-", ms=3, lw=1.2,
                label=None if labels is None else labels[k])
    ax.set_xlabel("current [µA/cm²]")
    ax.set_ylabel("firing rate [Hz]")
    if labels is not None:
        ax.legend(frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def plot_bifurcation(
    params: HHParams,
    currents: ArrayLike,
    *,
    duration: float = 500.0,
    window: float = 400.0,
    title: str | None = None,
) -> Figure:
    """Sketch of the bifurcation diagram against a constant current [µA/cm²].

    Draws the resting potential (solid where stable, dashed where unstable, from
    [`hhjax.stability`][]), the Hopf current ([`hhjax.hopf_current`][], dotted) and,
    where a step from rest fires persistently, the minimum and maximum voltage of
    the oscillation over the last `window` ms of a `duration` ms step
    ([`hhjax.firing_envelope`][]). The oscillation branch follows the step
    protocol, so in a bistable range it shows the attractor reached from rest.

    **Arguments:**

    - `params`: an [`hhjax.HHParams`][] of one neuron.
    - `currents`: 1-D array of holding currents [µA/cm²] (≥ 2 values).
    - `duration`, `window`: the simulation protocol [ms].
    - `title`: figure title.

    **Returns:** a `matplotlib.figure.Figure`.

    **Raises:** `ValueError` for `currents` that are not 1-D with ≥ 2 finite values;
    as [`hhjax.fi_curve`][] for the protocol.

    ```pycon
    >>> import jax.numpy as jnp, hhjax
    >>> fig = hhjax.plot_bifurcation(hhjax.HHParams(), jnp.linspace(0.0, 20.0, 5),
    ...                              duration=100.0, window=80.0)
    >>> fig.axes[0].get_xlabel()
    'holding current [µA/cm²]'

    ```
    """
    if not isinstance(params, HHParams):
        raise TypeError(
            f"`params` must be an hhjax.HHParams, got {type(params).__name__}."
        )
    cur = np.asarray(currents, dtype=float)
    if cur.ndim != 1 or cur.size < 2 or not np.all(np.isfinite(cur)):
        raise ValueError(
            "`currents` must be a 1-D array of at least 2 finite values (µA/cm²), "
            f"got shape {cur.shape}."
        )
    i_arr = jnp.asarray(cur, params.dtype)
    stab = eqx.filter_jit(jax.vmap(lambda i: stability(params, i)))(i_arr)
    v_rest = np.asarray(stab.state.v)
    stable = np.asarray(stab.stable)
    v_min, v_max = firing_envelope(params, i_arr, duration, window=window)
    lo, hi = float(cur.min()), float(cur.max())
    hopf = float(hopf_current(params, i_min=lo, i_max=hi)) if hi > lo else np.nan
    fig = Figure(figsize=(7, 5), layout="constrained")
    ax = fig.subplots()
    on, off = np.where(stable, v_rest, np.nan), np.where(stable, np.nan, v_rest)
    ax.plot(cur, on, "k-", lw=2, label="rest (stable)")
    ax.plot(cur, off, "k--", lw=1.5, label="rest (unstable)")
    ax.plot(cur, np.asarray(v_max), "o", color="tab:red", ms=4, label="firing max")
    ax.plot(cur, np.asarray(v_min), "o", color="tab:blue", ms=4, label="firing min")
    if np.isfinite(hopf):
        ax.axvline(hopf, color="0.5", ls=":", lw=1, label=f"Hopf {hopf:.3f} µA/cm²")
    ax.set_xlabel("holding current [µA/cm²]")
    ax.set_ylabel("v [mV]")
    ax.legend(frameon=False, loc="best")
    if title:
        fig.suptitle(title)
    return fig
