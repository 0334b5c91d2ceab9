"""Batched simulation with jax.vmap: an f–I sweep and a g_Na sweep in one call each.

    python examples/batch_sweep.py --out figures/ [--n 64]
"""

import argparse
import pathlib

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import hhjax  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=".", help="folder for batch_sweep.png")
    ap.add_argument("--n", type=int, default=64, help="batch size of each sweep")
    ap.add_argument("--t-end", type=float, default=200.0, help="simulated time [ms]")
    args = ap.parse_args(argv)

    p = hhjax.HHParams()

    @jax.jit
    def rate(amplitude, g_na):
        params = hhjax.HHParams(g_na=g_na)
        stim = hhjax.StepCurrent(amplitude, t_on=0.0)
        # fixed-step exponential Euler: the same step count for every batch member
        res = hhjax.simulate(
            params, stim, t_end=args.t_end, solver=hhjax.ExponentialEuler(),
            dt0=0.01, save_every=0.05,
        )
        # rate over the second half (skip the onset transient)
        return hhjax.firing_rate(res, t_start=args.t_end / 2, t_stop=args.t_end)

    currents = jnp.linspace(0.0, 40.0, args.n)
    f_i = jax.vmap(rate, in_axes=(0, None))(currents, p.g_na)
    g_nas = jnp.linspace(60.0, 180.0, args.n)
    f_g = jax.vmap(rate, in_axes=(None, 0))(10.0, g_nas)
    print("f-I [Hz]:", np.round(np.asarray(f_i), 1))

    fig = Figure(figsize=(9, 3.5), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(currents, f_i, ".-")
    ax1.set(xlabel="step amplitude [µA/cm²]", ylabel="rate [Hz]", title="f–I curve")
    ax2.plot(g_nas, f_g, ".-")
    ax2.set(xlabel="g_Na [mS/cm²]", ylabel="rate [Hz]", title="rate vs g_Na at 10 µA/cm²")
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "batch_sweep.png", dpi=100)
    print("wrote", out / "batch_sweep.png")


if __name__ == "__main__":
    main()
