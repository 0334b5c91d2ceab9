"""Regenerate tests/data/reference_traces.npz: independent high-precision references.

The HH equations are written here again in plain NumPy (not imported from hhjax) and
integrated with SciPy's Radau (implicit, 5th order) at rtol=1e-10, atol=1e-12, piece by
piece between stimulus edges so no discontinuity is stepped over. Spike times are
upward crossings of 0 mV located with `brentq` on the dense output.

Run:  python tests/make_reference.py        (takes ~1 minute)
"""

from __future__ import annotations

import pathlib

import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import brentq

OUT = pathlib.Path(__file__).resolve().parent / "data" / "reference_traces.npz"

RTOL, ATOL = 1e-10, 1e-12
SAMPLE_DT = 0.05  # ms; output sampling stored in the file


def _vtrap(x, k):
    """x / (1 - exp(-x/k)), with the removable singularity at x = 0 handled."""
    x = np.asarray(x, dtype=float)
    u = x / k
    small = np.abs(u) < 1e-6
    safe = np.where(small, 1.0, u)
    return np.where(small, k * (1.0 + u / 2.0), x / (-np.expm1(-safe)))


def classic_rates(v):
    """Modern-convention HH rates [1/ms] at v [mV]."""
    am = 0.1 * _vtrap(v + 40.0, 10.0)
    bm = 4.0 * np.exp(-(v + 65.0) / 18.0)
    ah = 0.07 * np.exp(-(v + 65.0) / 20.0)
    bh = 1.0 / (1.0 + np.exp(-(v + 35.0) / 10.0))
    an = 0.01 * _vtrap(v + 55.0, 10.0)
    bn = 0.125 * np.exp(-(v + 65.0) / 80.0)
    return am, bm, ah, bh, an, bn


def rhs(t, y, i_stim, p, shift=0.0):
    v, m, h, n = y
    am, bm, ah, bh, an, bn = classic_rates(v - shift)
    i_ion = (
        p["g_na"] * m**3 * h * (v - p["e_na"])
        + p["g_k"] * n**4 * (v - p["e_k"])
        + p["g_leak"] * (v - p["e_leak"])
    )
    return [
        (i_stim - i_ion) / p["c_m"],
        am * (1 - m) - bm * m,
        ah * (1 - h) - bh * h,
        an * (1 - n) - bn * n,
    ]


def rest(p, shift=0.0):
    """Resting state by bisection on the steady-state current (independent of hhjax)."""

    def i_ss(v):
        am, bm, ah, bh, an, bn = classic_rates(v - shift)
        m, h, n = am / (am + bm), ah / (ah + bh), an / (an + bn)
        return (
            p["g_na"] * m**3 * h * (v - p["e_na"])
            + p["g_k"] * n**4 * (v - p["e_k"])
            + p["g_leak"] * (v - p["e_leak"])
        )

    v = brentq(i_ss, -80.0 + shift, -50.0 + shift, xtol=1e-14, rtol=1e-15)
    am, bm, ah, bh, an, bn = classic_rates(v - shift)
    return np.array([v, am / (am + bm), ah / (ah + bh), an / (an + bn)])


def solve_piecewise(p, pieces, y0, t_samples, shift=0.0):
    """pieces: list of (t_start, t_stop, current). Returns samples and spike times."""
    ys = np.empty((4, t_samples.size))
    spikes = []
    y = y0
    for k, (ta, tb, i_stim) in enumerate(pieces):
        sol = solve_ivp(
            rhs,
            (ta, tb),
            y,
            method="Radau",
            rtol=RTOL,
            atol=ATOL,
            dense_output=True,
            args=(i_stim, p, shift),
        )
        assert sol.success, sol.message
        last = k == len(pieces) - 1
        sel = (t_samples >= ta) & ((t_samples <= tb) if last else (t_samples < tb))
        ys[:, sel] = sol.sol(t_samples[sel])
        # spike times: upward 0-mV (+shift) crossings of the dense solution
        grid = np.linspace(ta, tb, int((tb - ta) / 0.001) + 1)
        vg = sol.sol(grid)[0] - shift
        for j in np.nonzero((vg[:-1] < 0) & (vg[1:] >= 0))[0]:
            spikes.append(
                brentq(lambda s: sol.sol(s)[0] - shift, grid[j], grid[j + 1], xtol=1e-13)
            )
        y = sol.y[:, -1]
    return ys, np.array(spikes)


CLASSIC = dict(
    c_m=1.0, g_na=120.0, g_k=36.0, g_leak=0.3, e_na=50.0, e_k=-77.0, e_leak=-54.387
)


def main():
    out = {}
    # 1. The step protocol of the core issue: 10 µA/cm² from 10 to 90 ms, 100 ms.
    t = np.round(np.arange(0.0, 100.0 + 1e-9, SAMPLE_DT), 10)
    y0 = rest(CLASSIC)
    ys, spikes = solve_piecewise(
        CLASSIC, [(0.0, 10.0, 0.0), (10.0, 90.0, 10.0), (90.0, 100.0, 0.0)], y0, t
    )
    out.update(step_t=t, step_y=ys, step_spikes=spikes, step_y0=y0)

    # 2. Seed 001: the 1952 shifted convention (rest at 0 mV), pulses of 150 µA/cm²
    #    for 0-1 ms and 50 µA/cm² for 10-11 ms, 50 ms.
    p52 = dict(CLASSIC, e_na=115.0, e_k=-12.0, e_leak=10.613)
    t52 = np.round(np.arange(0.0, 50.0 + 1e-9, SAMPLE_DT), 10)
    y052 = rest(p52, shift=65.0)
    ys52, spikes52 = solve_piecewise(
        p52,
        [(0.0, 1.0, 150.0), (1.0, 10.0, 0.0), (10.0, 11.0, 50.0), (11.0, 50.0, 0.0)],
        y052,
        t52,
        shift=65.0,
    )
    out.update(hh1952_t=t52, hh1952_y=ys52, hh1952_spikes=spikes52, hh1952_y0=y052)

    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT}")
    print("step protocol spikes [ms]:", np.array2string(spikes, precision=6))
    print("hh1952 spikes [ms]:", np.array2string(spikes52, precision=6))
    print("rest v [mV]:", y0[0], "hh1952 rest v [mV]:", y052[0])


if __name__ == "__main__":
    main()
