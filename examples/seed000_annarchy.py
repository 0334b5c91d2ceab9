"""Seed 000: ANNarchy's "Hodgkin-Huxley neuron" notebook, in hhjax.

The notebook's neuron (E_Na 45, E_K -82, E_L -59.387 mV and its own rate forms:
`hhjax.HHParams.annarchy()`), started from its initial values (V -50 mV, n 0.3, m 0,
h 0.6); 100 ms of rest, a 1 ms pulse of 200 µA/cm², 100 ms of rest; the midpoint
method at dt = 0.01 ms; a spike whenever V rises through 30 mV ("V > 30 and
previous V <= 30"). Plots V, n, m, h from 90 to 120 ms, as the notebook does.

    python examples/seed000_annarchy.py --out figures/

Note: ANNarchy's generated midpoint code evaluates the rate variables (an, am, ...)
once per step, at the step's start; `diffrax.Midpoint` evaluates them again at the
half step (the textbook explicit midpoint rule). Same step, same pulse: the spike
lands in the same or the neighbouring 0.01 ms step (tests/test_seeds.py measures it).
"""

import argparse
import pathlib

import jax

jax.config.update("jax_enable_x64", True)  # a program's choice, made at its start

import diffrax  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import hhjax  # noqa: E402

DT = 0.01  # ms, the notebook's ann.setup(dt=0.01)
THRESHOLD = 30.0  # mV, the notebook's vt


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=".", help="folder for seed000_annarchy.png")
    args = ap.parse_args(argv)

    p = hhjax.HHParams.annarchy()
    y0 = hhjax.HHState(v=-50.0, m=0.0, h=0.6, n=0.3)  # pop.V = -50 and the inits
    pulse = hhjax.StepCurrent(amplitude=200.0, t_on=100.0, t_off=101.0)  # µA/cm²
    res = hhjax.simulate(
        p,
        pulse,
        t_end=201.0,
        y0=y0,
        solver=diffrax.Midpoint(),
        dt0=DT,  # fixed steps of 0.01 ms (+ the pulse edges)
        save_every=DT,
    )

    spikes = np.asarray(hhjax.spike_times(res, threshold=THRESHOLD))
    spikes = spikes[np.isfinite(spikes)]
    t = np.asarray(res.t)
    steps = t[np.searchsorted(t, spikes) - 1]  # the 0.01 ms step the rule flags
    count = int(hhjax.spike_count(res, THRESHOLD))
    print(f"spikes (V rises through {THRESHOLD:g} mV): {count}")
    print("spike times [ms]:", " ".join(f"{s:.4f}" for s in spikes))
    print("flagged steps start at [ms]:", " ".join(f"{s:.2f}" for s in steps))

    fig = Figure(figsize=(12, 7), layout="constrained")
    window = (t >= 90.0) & (t <= 120.0)
    for ax, name in zip(fig.subplots(2, 2).ravel(), "vnmh"):
        ax.plot(t[window], np.asarray(getattr(res, name))[window], lw=1)
        ax.set_title(name if name != "v" else "V [mV]")
        if name != "v":
            ax.set_ylim(0.0, 1.0)
        ax.set_xlabel("t [ms]")
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "seed000_annarchy.png", dpi=100)
    print("wrote", out / "seed000_annarchy.png")
    return dict(result=res, spike_times=spikes)


if __name__ == "__main__":
    main()
