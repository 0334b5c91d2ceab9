"""Quick start: simulate the classic HH neuron under a step current.

    python examples/quickstart.py --out figures/
"""

import argparse
import pathlib

import jax

jax.config.update("jax_enable_x64", True)  # a program's choice, made at its start

import numpy as np  # noqa: E402

import hhjax  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=".", help="folder for quickstart.png")
    ap.add_argument("--t-end", type=float, default=100.0, help="simulated time [ms]")
    args = ap.parse_args(argv)

    p = hhjax.HHParams()  # classic squid axon, modern convention
    stim = hhjax.StepCurrent(amplitude=10.0, t_on=10.0, t_off=90.0)  # µA/cm²
    res = hhjax.simulate(p, stim, t_end=args.t_end)  # Tsit5, lands on the edges
    spikes = np.asarray(hhjax.spike_times(res, threshold=0.0))
    print("spike times [ms]:", spikes[np.isfinite(spikes)])

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    hhjax.plot_trace(res).savefig(out / "quickstart.png", dpi=100)
    print("wrote", out / "quickstart.png")


if __name__ == "__main__":
    main()
