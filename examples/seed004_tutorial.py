"""Seed 004: the tutorial's progression neuron_func_1 ... neuron_func_7, as hhjax
membranes composed of channels and gates.

From a passive membrane (1), through two leaks (2), one gated conductance with a
sigmoid steady state and a bell-shaped time constant (3), two gated conductances
(4), a transient conductance with activation and inactivation gates (5), to a
Na-like plus K-like pair (6) and the full Hodgkin–Huxley model (7). Each is
integrated the way the tutorial does: forward Euler at dt = 0.01 ms, +30 µA/cm² from
20 % to 40 % of the run and −30 from 60 % to 80 % (±5 for the HH model), starting
from v = −65 mV with every gate at its steady state there (for the HH model, at the
steady state of the shifted rates at 0, i.e. at rest).

    python examples/seed004_tutorial.py --out figures/

Writes seed004_neuron_func_N.png (N = 1..7): x∞ and τ of each gate (where there are
gates), the current, the channel currents and v, as the tutorial plots them.
"""

import argparse
import pathlib

import jax

jax.config.update("jax_enable_x64", True)  # a program's choice, made at its start

import diffrax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import hhjax  # noqa: E402

DT = 0.01  # ms, the tutorial's step
V_REST = -65.0  # mV


# The tutorial's gate functions, in its own words (pure JAX functions of v [mV]).
def inf_a(v):  # sigmoid shape
    return 1 / (1 + 0.1 * jnp.exp(-0.1 * v))


def inf_a_act(v):
    return 1 / (1 + 0.1 * jnp.exp(-0.5 * (v + 50.0)))


def inf_inact(v):
    return -1 / (1.1 + 0.1 * jnp.exp(-0.1 * v)) + 1


def inf_b(v):
    return 1 / (1.1 + 0.1 * jnp.exp(-0.09 * v))


def bell(mu, sig, scale):  # (scale) * exp(-((v - mu)/sig)^2), as a parametrised family
    return hhjax.Bell(amplitude=scale, v_peak=mu, width=sig)


def models():
    """The seven membranes, with each run's duration [ms] and step amplitude."""
    C = hhjax.Channel
    tau_a6, tau_i5 = bell(-10.0, 60.0, 300 / 60), bell(-10.0, 50.0, 300 / 50)
    return {
        1: (hhjax.Membrane({"leak": C(1.0, -65.0)}), 100.0, 30.0),
        2: (hhjax.Membrane({"a": C(1.0, -65.0), "b": C(1.0, 65.0)}), 100.0, 30.0),
        3: (
            hhjax.Membrane(
                {"a": C(20.0, -65.0, {"a": 1}), "b": C(1.0, -65.0)},
                {"a": hhjax.InfTauGate(inf_a, bell(-10.0, 50.0, 1.0))},
            ),
            100.0,
            30.0,
        ),
        4: (
            hhjax.Membrane(
                {"a": C(1.0, 120.0, {"a": 1}), "b": C(2.0, -70.0, {"b": 1})},
                {"a": hhjax.InfTauGate(inf_a, tau_a6), "b": hhjax.InfTauGate(inf_inact, tau_i5)},
            ),
            200.0,
            30.0,
        ),
        5: (
            hhjax.Membrane(
                {"a": C(2.0, 120.0, {"a_act": 3, "a_inact": 1}), "b": C(1.0, -70.0)},
                {
                    "a_act": hhjax.InfTauGate(inf_a_act, tau_a6),
                    "a_inact": hhjax.InfTauGate(inf_inact, tau_i5),
                },
            ),
            200.0,
            30.0,
        ),
        6: (
            hhjax.Membrane(
                {"a": C(2.0, 120.0, {"a_act": 3, "a_inact": 1}), "b": C(5.0, -70.0, {"b": 4})},
                {
                    "a_act": hhjax.InfTauGate(inf_a_act, tau_a6),
                    "a_inact": hhjax.InfTauGate(inf_inact, tau_i5),
                    "b": hhjax.InfTauGate(inf_b, bell(5.0, 50.0, 300 / 50)),
                },
            ),
            200.0,
            30.0,
        ),
        # full HH: E_K = -12 + vr, E_Na = 120 + vr, E_leak = 10.6 + vr
        7: (
            hhjax.Membrane.hodgkin_huxley(
                hhjax.HHParams(e_na=120 + V_REST, e_k=-12 + V_REST, e_leak=10.6 + V_REST)
            ),
            200.0,
            5.0,
        ),
    }


def run(model, t_end, amp):
    """The tutorial's protocol, with its forward Euler at dt = 0.01 ms."""
    t = np.arange(0, t_end, DT)  # the tutorial's sample grid
    stim = hhjax.StepCurrent(amp, 0.2 * t_end, 0.4 * t_end) + hhjax.StepCurrent(
        -amp, 0.6 * t_end, 0.8 * t_end
    )
    y0 = model.steady_state(V_REST)
    return hhjax.simulate(
        model, stim, t_end=float(t[-1]), solver=diffrax.Euler(), dt0=DT, ts=t, y0=y0
    )


def figure(k, model, res):
    gates = sorted(model.gates)
    rows = (2 if gates else 0) + 3
    fig = Figure(figsize=(8, 1.7 * rows), layout="constrained")
    axs = fig.subplots(rows, 1, squeeze=False)[:, 0]
    i = 0
    if gates:
        vr = np.arange(-90, 90, 0.01)
        inf, tau = model.gate_inf(vr), model.gate_tau(vr)
        for g in gates:
            axs[0].plot(vr, np.asarray(inf[g]), label=f"{g}∞")
            axs[1].plot(vr, np.asarray(tau[g]), label=f"τ {g} [ms]")
        axs[0].set(xlabel="v [mV]")
        axs[1].set(xlabel="v [mV]")
        i = 2
    t = np.asarray(res.t)
    axs[i].plot(t, np.asarray(res.i_stim), label="I [µA/cm²]")
    for name, cur in res.currents().items():
        axs[i + 1].plot(t, np.asarray(cur), label=f"i_{name} [µA/cm²]")
    axs[i + 2].plot(t, np.asarray(res.v), label="v [mV]")
    axs[i + 2].set(xlabel="time [ms]")
    for ax in axs:
        ax.legend(loc="upper right", fontsize=8)
    fig.suptitle(f"neuron_func_{k}")
    return fig


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=".", help="folder for the PNGs")
    args = ap.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for k, (model, t_end, amp) in models().items():
        res = run(model, t_end, amp)
        v = np.asarray(res.v)
        spikes = np.asarray(hhjax.spike_times(res, threshold=0.0))
        n_sp = int(np.sum(np.isfinite(spikes)))
        print(
            f"neuron_func_{k}: {len(model.kinetic_gates)} gate(s), v in "
            f"[{v.min():7.2f}, {v.max():7.2f}] mV, {n_sp} upward 0-mV crossing(s)"
        )
        figure(k, model, res).savefig(out / f"seed004_neuron_func_{k}.png", dpi=90)
        results[k] = res
    return results


if __name__ == "__main__":
    main()
