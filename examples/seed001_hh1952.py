"""Seed 001: the classic "Hodgkin-Huxley with scipy odeint" script, in hhjax.

The original 1952 convention (voltage = depolarisation from rest, so rest is 0 mV:
`hhjax.HHParams.hh1952()`), started with V = 0 and every gate at its steady state
there; two pulses, 150 µA/cm² for 0-1 ms and 50 µA/cm² for 10-11 ms; 50 ms, sampled
on the script's grid `np.linspace(0, 50, 10000)`. Plots the stimulus, the potential
and the V-n, V-m "limit cycles".

    python examples/seed001_hh1952.py --out figures/

The script hands the pulses to `odeint` as a Python `if`, so the solver cannot see
their edges; hhjax's default solver (Tsit5, adaptive) gets the edges as jump times
and steps exactly onto them.
"""

import argparse
import pathlib

import jax

jax.config.update("jax_enable_x64", True)  # a program's choice, made at its start

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import hhjax  # noqa: E402

THRESHOLD = 50.0  # mV above rest; the script names no threshold (peaks reach ~110 mV)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=".", help="folder for seed001_hh1952.png")
    args = ap.parse_args(argv)

    p = hhjax.HHParams.hh1952()  # E_Na 115, E_K -12, E_L 10.613 mV; rest at 0 mV
    stim = hhjax.PulseTrain(onsets=[0.0, 10.0], width=1.0, amplitude=[150.0, 50.0])
    t = np.linspace(0.0, 50.0, 10000)  # the script's output grid [ms]
    y0 = hhjax.steady_state(p, 0.0)  # V = 0, n, m, h = n_inf(0), m_inf(0), h_inf(0)
    res = hhjax.simulate(p, stim, t_end=50.0, ts=t, y0=y0)  # Tsit5, rtol = atol = 1e-6

    spikes = np.asarray(hhjax.spike_times(res, threshold=THRESHOLD))
    spikes = spikes[np.isfinite(spikes)]
    print(f"spikes (V rises through {THRESHOLD:g} mV): {spikes.size}")
    print("spike times [ms]:", " ".join(f"{s:.4f}" for s in spikes))
    print(
        f"peak V [mV]: {float(np.max(res.v)):.3f}; solver steps: "
        f"{int(res.stats['num_accepted_steps'])} accepted, "
        f"{int(res.stats['num_rejected_steps'])} rejected"
    )

    v = np.asarray(res.v)
    fig = Figure(figsize=(13, 6), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[1.4, 1])
    ax_i, ax_v = left.subplots(2, 1, sharex=True, height_ratios=[1, 2])
    ax_i.plot(t, np.asarray(res.i_stim))
    ax_i.set(ylabel="I [µA/cm²]", title="Stimulus (current density)")
    ax_v.plot(t, v)
    ax_v.set(
        xlabel="time [ms]", ylabel="Vm [mV]", title="Neuron potential with two spikes"
    )
    ax = right.subplots()
    ax.plot(v, np.asarray(res.n), label="Vm - n")
    ax.plot(v, np.asarray(res.m), label="Vm - m")
    ax.set(xlabel="Vm [mV]", ylabel="gate", title="Limit cycles")
    ax.legend()
    for a in (ax_i, ax_v, ax):
        a.grid(True)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "seed001_hh1952.png", dpi=100)
    print("wrote", out / "seed001_hh1952.png")
    return dict(result=res, spike_times=spikes)


if __name__ == "__main__":
    main()
