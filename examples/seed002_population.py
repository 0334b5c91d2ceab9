"""Seed 002: the two examples of BrainPy's `brainpy.dyn.HH` docs, in hhjax.

BrainPy's defaults (`hhjax.HHParams.brainpy()`: g_L 0.03 mS/cm², E_Na 50, E_K -77,
E_L -54.387 mV, C 1 µF/cm²), its initial values (V uniform in [-70, -60] mV, m 0.5,
h 0.6, n 0.32) and its spike rule (V rises through V_th = 20 mV). Neurons of a group
are batched with `jax.vmap`.

1. A group (`--n`, default 10) with a constant input of 10 µA/cm² for 200 ms,
   integrated as BrainPy does by default: exponential Euler (`method='exp_auto'`,
   here `hhjax.ExponentialEuler`) at brainpy.math's default step dt = 0.1 ms.
2. Two neurons, each with its own train of 5 ms pulses of 5 µA/cm², plus Gaussian
   noise, for 2000 ms. BrainPy adds an N(0, 3²) draw per 0.1 ms step, i.e. white
   noise of intensity 3·√0.1 µA/cm²·ms^½: `hhjax.WhiteNoiseCurrent`, which means the
   same at any step. simulate's default noise solver (ShARK, fixed steps) is
   explicit, so it runs at dt = 0.05 ms (at 0.1 ms it blows up during spikes).

    python examples/seed002_population.py --out figures/ [--n 10]
"""

import argparse
import pathlib

import jax

jax.config.update("jax_enable_x64", True)  # a program's choice, made at its start

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import hhjax  # noqa: E402

DT = 0.1  # ms, brainpy.math's default step
V_TH = 20.0  # mV, BrainPy's V_th
PULSES = (  # onsets [ms] of the 5 ms, 5 µA/cm² pulses of neuron 0 and neuron 1
    (500.0, 550.0, 1000.0, 1030.0, 1060.0, 1100.0, 1200.0),
    (600.0, 900.0, 950.0, 1500.0),
)

p = hhjax.HHParams.brainpy()


def brainpy_init(v0):
    """BrainPy's initial state: the given V [mV], m 0.5, h 0.6, n 0.32."""
    return hhjax.HHState(v=v0, m=0.5, h=0.6, n=0.32)


def constant_input(v0, t_end=200.0):
    """Run 1, one neuron: 10 µA/cm², exponential Euler at 0.1 ms."""
    return hhjax.simulate(
        p,
        hhjax.ConstantCurrent(10.0),
        t_end=t_end,
        y0=brainpy_init(v0),
        solver=hhjax.ExponentialEuler(),
        dt0=DT,
        save_every=DT,
    )


def pulses_and_noise(amplitudes, key, v0, t_end=2000.0):
    """Run 2, one neuron: pulses at the union of both trains' onsets (amplitude 5
    where this neuron gets one, else 0) plus white noise; ShARK at 0.05 ms."""
    onsets = sorted(set(PULSES[0] + PULSES[1]))
    stim = hhjax.PulseTrain(onsets, width=5.0, amplitude=amplitudes)
    stim = stim + hhjax.WhiteNoiseCurrent(sigma=3.0 * np.sqrt(DT), key=key)
    return hhjax.simulate(
        p, stim, t_end=t_end, y0=brainpy_init(v0), dt0=0.05, save_every=DT
    )


# spike times [ms] of every neuron of a batched result (NaN padded); jit compiles the
# vmapped detection once (op-by-op under vmap it would take seconds)
spikes_of = jax.jit(jax.vmap(lambda res: hhjax.spike_times(res, V_TH, max_spikes=50)))


def fmt(times):
    """Finite entries of `times`, as text with 2 decimals."""
    return " ".join(f"{x:.2f}" for x in np.asarray(times) if np.isfinite(x))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=".", help="folder for seed002_population.png")
    ap.add_argument("--n", type=int, default=10, help="group size of run 1")
    ap.add_argument(
        "--t-noise", type=float, default=2000.0, help="length of run 2 [ms]"
    )
    ap.add_argument("--seed", type=int, default=0, help="seed of V init and noise")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)

    # 1. the group, constant input
    v0 = rng.uniform(-70.0, -60.0, args.n)
    group = jax.vmap(constant_input)(jnp.asarray(v0))
    spk = np.asarray(spikes_of(group))
    counts = np.sum(np.isfinite(spk), axis=1)
    print(f"run 1: {args.n} neurons, 10 µA/cm², 200 ms, exp. Euler dt {DT} ms")
    print("  spikes per neuron:", counts)
    print("  neuron 0 spike times [ms]:", fmt(spk[0]))
    isi = np.diff(spk[0][np.isfinite(spk[0])])[-1]
    ref = hhjax.simulate(
        p, hhjax.ConstantCurrent(10.0), t_end=200.0, y0=brainpy_init(v0[0])
    )
    ref_spk = np.asarray(hhjax.spike_times(ref, V_TH))
    print(
        f"  last ISI {isi:.3f} ms (converged, Tsit5 rtol 1e-6: "
        f"{np.diff(ref_spk[np.isfinite(ref_spk)])[-1]:.3f} ms)"
    )

    # 2. two neurons, pulse trains + noise
    onsets = sorted(set(PULSES[0] + PULSES[1]))
    amplitudes = np.array(
        [[5.0 if t in train else 0.0 for t in onsets] for train in PULSES]
    )
    keys = jax.random.split(jax.random.key(args.seed), 2)
    v0_pair = rng.uniform(-70.0, -60.0, 2)
    pair = jax.vmap(lambda a, k, v: pulses_and_noise(a, k, v, args.t_noise))(
        jnp.asarray(amplitudes), keys, jnp.asarray(v0_pair)
    )
    spk2 = np.asarray(spikes_of(pair))
    print(
        f"run 2: 2 neurons, pulses + white noise (sigma {3 * np.sqrt(DT):.4f} "
        f"µA/cm²·ms^½), {args.t_noise:g} ms, ShARK dt 0.05 ms"
    )
    for i, train in enumerate(PULSES):
        print(
            f"  neuron {i}: pulses at {' '.join(f'{t:g}' for t in train)} ms -> "
            f"spikes at {fmt(spk2[i])} ms"
        )

    fig = Figure(figsize=(10, 7), layout="constrained")
    ax1, ax2 = fig.subplots(2, 1, height_ratios=[1, 1.3])
    ax1.plot(np.asarray(group.t[0]), np.asarray(group.v).T, lw=0.8)
    ax1.set(
        xlabel="t [ms]",
        ylabel="V [mV]",
        title=f"{args.n} neurons, constant input 10 µA/cm² (exp. Euler, dt 0.1 ms)",
    )
    t2 = np.asarray(pair.t[0])
    ax2.plot(t2, np.asarray(pair.v[0]), lw=0.8)
    ax2.plot(t2, np.asarray(pair.v[1]) + 130.0, lw=0.8)
    for offset, train in zip((0.0, 130.0), PULSES):
        ax2.plot(train, np.full(len(train), offset - 85.0), "^", color="0.4", ms=4)
    ax2.set(
        xlim=(10.0, args.t_noise),
        xlabel="t [ms]",
        ylabel="V [mV] (neuron 1 + 130)",
        title="pulse trains (▲) + Gaussian noise",
    )
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "seed002_population.png", dpi=100)
    print("wrote", out / "seed002_population.png")
    return dict(
        group=group,
        v0=v0,
        pair=pair,
        v0_pair=v0_pair,
        amplitudes=amplitudes,
        onsets=np.array(onsets),
        spike_times=spk,
        spike_times_pair=spk2,
    )


if __name__ == "__main__":
    main()
