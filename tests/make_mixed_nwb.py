"""Write an NWB file laid out like an Allen Cell Types recording, for trying the
real-cell workflow on a file that mixes protocols (not used by the test suite).

Eight current-clamp sweeps, sweep numbers 3, 7, 10, 12, …, 20: a 3 ms 800 pA pulse
(400 ms sweep), a 0–300 pA/s ramp (1400 ms), and six 1 s long squares of −70, 30,
70, 110, 150 and 200 pA (1300 ms); every sweep starts with a 10 ms −50 pA test pulse.
Voltage in volts, stimulus in amperes, 50 kHz, as NWB stores them. The voltage is
`fitting.cell_model("pospischil-rs")` at 150 pF (1.5e-4 cm² at 1 µF/cm²), simulated
with exponential Euler at the sampling step from rest, plus 0.2 mV Gaussian noise.

Run:  python tests/make_mixed_nwb.py OUT.nwb      (needs pynwb; ~20 s)
then  hhjax sweeps OUT.nwb
      hhjax fit OUT.nwb --model pospischil-rs --sweeps 3,5,7 --validate 4,6 --out DIR
"""

from __future__ import annotations

import datetime
import sys

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)  # a script, not the library

import fitting  # noqa: E402
import hhjax  # noqa: E402

RATE_HZ = 50_000.0
AREA_CM2 = 1.5e-4  # 150 pF at 1 µF/cm²
#: (protocol, amplitude [pA], sweep length [ms], sweep number)
SWEEPS = [("short", 800.0, 400.0, 3), ("ramp", 300.0, 1400.0, 7)] + [
    ("long", a, 1300.0, 10 + 2 * k) for k, a in enumerate([-70, 30, 70, 110, 150, 200])
]


def current_pA(kind: str, amp: float, dur_ms: float) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(int(dur_ms * RATE_HZ / 1e3)) * (1e3 / RATE_HZ)  # ms
    i = np.where((t >= 20) & (t < 30), -50.0, 0.0)  # test pulse
    if kind == "long":
        i += np.where((t >= 100) & (t < 1100), amp, 0.0)
    elif kind == "short":
        i += np.where((t >= 100) & (t < 103), amp, 0.0)
    else:  # ramp from 100 ms, amp pA per second
        i += np.where(t >= 100, amp * (t - 100) / 1000.0, 0.0)
    return t, i


def main(out: str) -> None:
    import pynwb
    from pynwb.icephys import CurrentClampSeries, CurrentClampStimulusSeries

    membrane = fitting.cell_model("pospischil-rs").membrane
    y0 = hhjax.resting_state(membrane)
    rng = np.random.default_rng(0)
    nwb = pynwb.NWBFile(
        session_description="Allen-style mixed protocols (synthetic, pospischil-rs)",
        identifier="hhjax-mixed-nwb",
        session_start_time=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    )
    dev = nwb.create_device(name="amplifier")
    el = nwb.create_icephys_electrode(name="elec0", description="synthetic", device=dev)
    for kind, amp, dur, number in SWEEPS:
        t, i = current_pA(kind, amp, dur)
        rec = hhjax.Recording(t, np.zeros((1, t.size)), i_pA=i[None], area_cm2=AREA_CM2)
        stim = jax.tree_util.tree_map(  # the one sweep of the batched stimulus
            lambda a: a[0] if getattr(a, "ndim", 0) > 1 else a, rec.stimulus()
        )
        sol = hhjax.simulate(membrane, stim, t_end=float(t[-1]), y0=y0,
                             solver=hhjax.ExponentialEuler(), dt0=t[1], save_every=t[1])
        v = np.asarray(sol.v)[: t.size] + rng.normal(0.0, 0.2, t.size)  # mV
        s = CurrentClampStimulusSeries(
            name=f"stim_{number}", data=i * 1e-12, rate=RATE_HZ, electrode=el, gain=1.0,
            sweep_number=np.uint32(number), unit="amperes",
        )
        r = CurrentClampSeries(
            name=f"sweep_{number}", data=v * 1e-3, rate=RATE_HZ, electrode=el, gain=1.0,
            sweep_number=np.uint32(number), unit="volts", bias_current=0.0,
            bridge_balance=0.0, capacitance_compensation=0.0, stimulus_description=kind,
        )
        nwb.add_stimulus(s)
        nwb.add_acquisition(r)
        nwb.add_intracellular_recording(electrode=el, stimulus=s, response=r)
    with pynwb.NWBHDF5IO(out, "w") as io:
        io.write(nwb)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "mixed.nwb")
