"""Seed 003: the reduced two-variable Hodgkin–Huxley model and its slider explorer.

`hhjax.Membrane.reduced_hh()` is that document's model: m instantaneous
(m∞(v) = 1/(1 + exp((−40 − v)/7))), h = 0.89 − 1.1 n, dn/dt = (n∞(v) − n)/10 ms,
gNa 2, gK 1.44, gLeak 0.2 mS/cm², ENa 50, EK −80, ELeak −65 mV, C 1 µF/cm². It is
integrated as the document does: forward Euler at dt = 0.5 ms for 1000 ms from
v = −65 mV, n = 0, under a constant input current.

In Jupyter, `explorer()` shows the document's five sliders (C, gNa, gK, gLeak, input
current; ipywidgets, `pip install "hhjax[notebook]"`) above a plot of V(t) that each
slider move redraws (`explorer_widget()`); anywhere else it draws a static grid of
the same slider settings:

    python examples/seed003_reduced.py --out figures/

writes seed003_reduced.png (traces for a few input currents, and the v–n phase plane
with both nullclines) and seed003_explorer.png (the static slider sweep). The
notebook notebooks/seed003_reduced.ipynb runs the same and then shows the explorer.
"""

import argparse
import io
import pathlib

import jax

jax.config.update("jax_enable_x64", True)  # a program's choice, made at its start

import diffrax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import hhjax  # noqa: E402

DT, T_END = 0.5, 1000.0  # ms, the document's step and duration
# the document's sliders: name -> (default, min, max, step); units in UNITS
SLIDERS = {
    "C": (1.0, 0.1, 2.0, 0.1),
    "Gna": (2.0, 0.0, 5.0, 0.1),
    "Gk": (1.44, 0.0, 5.0, 0.1),
    "Gleak": (0.2, 0.0, 1.0, 0.1),
    "Iin": (2.0, 0.0, 10.0, 0.1),
}
UNITS = {
    "C": "µF/cm²", "Gna": "mS/cm²", "Gk": "mS/cm²", "Gleak": "mS/cm²", "Iin": "µA/cm²"
}


def simulate(C=1.0, Gna=2.0, Gk=1.44, Gleak=0.2, Iin=2.0):
    """One run with the document's protocol (jit-compiled once, reused for every
    slider setting since the parameters are arrays)."""
    return _simulate(*(jnp.asarray(x, float) for x in (C, Gna, Gk, Gleak, Iin)))


@jax.jit
def _simulate(C, Gna, Gk, Gleak, Iin):
    model = hhjax.Membrane.reduced_hh(c_m=C, g_na=Gna, g_k=Gk, g_leak=Gleak)
    y0 = hhjax.MembraneState(v=jnp.asarray(-65.0), gates={"n": jnp.asarray(0.0)})
    t = jnp.arange(0.0, T_END, DT)
    return hhjax.simulate(
        model, hhjax.ConstantCurrent(Iin), t_end=T_END - DT, solver=diffrax.Euler(),
        dt0=DT, ts=t, y0=y0,
    )


def nullclines(model, i_in, v, n):
    """dv/dt and dn/dt of the two-variable model on a (v, n) grid (the nullclines are
    their zero contours)."""
    V, N = jnp.meshgrid(jnp.asarray(v), jnp.asarray(n))
    d = model.derivatives(hhjax.MembraneState(v=V, gates={"n": N}), i_in)
    return np.asarray(d.v), np.asarray(d.gates["n"])


def figure_traces(currents=(2.0, 4.0, 6.0, 10.0)):
    fig = Figure(figsize=(12, 6), layout="constrained")
    ax_v, ax_p = fig.subplots(1, 2, width_ratios=[1.6, 1])
    for i_in in currents:
        res = simulate(Iin=i_in)
        ax_v.plot(np.asarray(res.t), np.asarray(res.v), lw=0.8, label=f"Iin = {i_in:g} µA/cm²")
    ax_v.set(xlabel="time [ms]", ylabel="V [mV]", xlim=(0, 300), title="Reduced HH (Euler, dt 0.5 ms)")
    ax_v.legend(fontsize=8)
    i_in = 6.0
    res = simulate(Iin=i_in)
    model = hhjax.Membrane.reduced_hh()
    v, n = np.linspace(-80, 40, 241), np.linspace(0.0, 0.8, 161)
    dv, dn = nullclines(model, i_in, v, n)
    ax_p.contour(v, n, dv, levels=[0.0], colors="C0")
    ax_p.contour(v, n, dn, levels=[0.0], colors="C1")
    ax_p.plot(np.asarray(res.v), np.asarray(res.n), "k", lw=0.6)
    ax_p.plot([], [], "C0", label="v-nullcline")
    ax_p.plot([], [], "C1", label="n-nullcline")
    ax_p.plot([], [], "k", label=f"trajectory, Iin = {i_in:g}")
    ax_p.set(xlabel="V [mV]", ylabel="n", title="Phase plane")
    ax_p.legend(fontsize=8)
    return fig


def figure_static_explorer():
    """The slider explorer's static fallback: each slider swept around the defaults."""
    fig = Figure(figsize=(13, 9), layout="constrained")
    axs = fig.subplots(len(SLIDERS), 1, sharex=True)
    defaults = {k: v[0] for k, v in SLIDERS.items()}
    for ax, (name, (_, lo, hi, _step)) in zip(axs, SLIDERS.items()):
        for value in np.linspace(lo if lo > 0 else hi / 4, hi, 3):
            res = simulate(**{**defaults, name: float(value)})
            ax.plot(np.asarray(res.t), np.asarray(res.v), lw=0.7, label=f"{name} = {value:.2f}")
        ax.set(ylabel="V [mV]")
        ax.legend(fontsize=7, loc="upper right")
    axs[-1].set(xlabel="time [ms]", xlim=(0, 400))
    fig.suptitle("Reduced HH: each slider swept with the others at their defaults")
    return fig


def _png(fig, dpi):
    """`fig` drawn as PNG bytes (for Jupyter without an interactive backend)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def explorer_widget():
    """The slider explorer as an ipywidgets box: the document's five sliders
    (`ipywidgets.interactive`) above a plot of V(t).

    Moving a slider re-runs `simulate` (compiled once, so each setting takes
    milliseconds) and replaces the trace's data; the figure is redrawn into an
    `ipywidgets.Image` as a PNG, so it needs no interactive matplotlib backend.
    Returns `(box, fig)`: display `box`; `fig.axes[0].lines[0]` holds the trace.
    The document uses `interact_manual` (a "Run" button); with the compiled model
    the plot simply follows the sliders (`continuous_update=False`: on release).
    """
    import ipywidgets as widgets

    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.subplots()
    res = simulate()
    (line,) = ax.plot(np.asarray(res.t), np.asarray(res.v), lw=0.8)
    ax.set(xlabel="time [ms]", ylabel="V [mV]", xlim=(0.0, T_END))
    image = widgets.Image(format="png")

    def update(**kw):
        res = simulate(**kw)
        line.set_ydata(np.asarray(res.v))
        ax.relim()
        ax.autoscale_view(scalex=False)
        title = ", ".join(f"{k} {v:g} {UNITS[k]}" for k, v in kw.items())
        ax.set_title(title, fontsize=9)
        image.value = _png(fig, dpi=80)

    sliders = {
        k: widgets.FloatSlider(
            value=v, min=lo, max=hi, step=st, continuous_update=False,
            description=f"{k} [{UNITS[k]}]", style={"description_width": "8em"},
        )
        for k, (v, lo, hi, st) in SLIDERS.items()
    }
    controls = widgets.interactive(update, **sliders)  # runs update once: the defaults
    return widgets.VBox([controls, image]), fig


def explorer():
    """The document's explorer with its five sliders: in Jupyter with ipywidgets the
    widget box of `explorer_widget()` (without ipywidgets: the static sweep as an
    image); elsewhere the static figure of `figure_static_explorer()`."""
    if _in_notebook():
        try:
            import ipywidgets  # noqa: F401
        except ImportError:
            from IPython.display import Image

            print('no ipywidgets (pip install "hhjax[notebook]"): the static sweep')
            return Image(data=_png(figure_static_explorer(), dpi=80))
        return explorer_widget()[0]
    return figure_static_explorer()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=".", help="folder for the PNGs")
    args = ap.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rates = {}
    for i_in in (2.0, 4.0, 6.0, 10.0):
        res = simulate(Iin=i_in)
        n_sp = int(np.sum(np.isfinite(np.asarray(hhjax.spike_times(res, threshold=0.0, max_spikes=200)))))
        rates[i_in] = n_sp
        print(f"Iin = {i_in:4.1f} µA/cm²: {n_sp} spikes in {T_END:g} ms")
    figure_traces().savefig(out / "seed003_reduced.png", dpi=90)
    figure_static_explorer().savefig(out / "seed003_explorer.png", dpi=80)
    return rates


if __name__ == "__main__":
    main()
