"""Matplotlib figures of simulation results. Functions return the figure; nothing here
calls `plt.show()` or touches global pyplot state (figures are built with
`matplotlib.figure.Figure`, so they work headless)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

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
