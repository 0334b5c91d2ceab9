"""Draw the documentation's figures into docs/figures/ (not committed; see hooks.py).

    python docs/gen_figures.py              # all (a few minutes on a laptop CPU)
    python docs/gen_figures.py --missing    # only those not there yet
    python docs/gen_figures.py --only seed001 trace
    python docs/gen_figures.py --real-cells ../shared/data   # + the real-cell fits (~15 min)

The seed tutorials' figures come from the examples themselves
(`python examples/seedNNN_*.py --out docs/figures`, each in its own process); the
user guide's figures are drawn here with the public hhjax API.
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import time

DOCS = pathlib.Path(__file__).resolve().parent
REPO = DOCS.parent
EXAMPLES = REPO / "examples"

# example script -> the PNGs it writes
SEEDS = {
    "seed000_annarchy.py": ["seed000_annarchy.png"],
    "seed001_hh1952.py": ["seed001_hh1952.png"],
    "seed002_population.py": ["seed002_population.png"],
    "seed003_reduced.py": ["seed003_reduced.png", "seed003_explorer.png"],
    "seed004_tutorial.py": [f"seed004_neuron_func_{k}.png" for k in range(1, 8)],
}


def _guide_figures():
    """name -> function drawing a matplotlib Figure (hhjax imported lazily, with
    float64 enabled as a program's first step)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    import hhjax

    p = hhjax.HHParams()

    def trace():
        res = hhjax.simulate(p, hhjax.StepCurrent(10.0, 10.0, 90.0), t_end=100.0)
        return hhjax.plot_trace(res, title="HHParams(), 10 µA/cm² from 10 to 90 ms")

    def gating_curves():
        return hhjax.plot_gating_curves(p, title="Classic HH gates at 6.3 °C")

    def fi_curve():
        currents = jnp.linspace(0.0, 40.0, 41)
        rates = jnp.stack(
            [
                hhjax.fi_curve(p, currents),
                hhjax.fi_curve(hhjax.HHParams(temperature=10.0), currents),
            ]
        )
        return hhjax.plot_fi_curve(
            currents, rates, labels=["6.3 °C", "10 °C"], title="f–I curves"
        )

    def bifurcation():
        return hhjax.plot_bifurcation(
            p, jnp.linspace(0.0, 20.0, 41), title="Rest, Hopf point and firing"
        )

    def phase_plane():
        lc = hhjax.limit_cycle(p, 10.0)
        nc = hhjax.nullclines_vn(p, jnp.linspace(-80.0, 40.0, 241), 10.0)
        return hhjax.plot_phase_plane(
            lc, nullclines=nc, title="Limit cycle at 10 µA/cm², reduced nullclines"
        )

    def fit():
        import fitting

        truth = fitting.perturbed_params(seed=0)
        rec = fitting.synthetic_recording(
            truth, (5.0, 15.0), t_on=10.0, t_off=35.0, t_end=40.0, seed=0
        )
        res = fitting.fit(hhjax.HHParams(), rec, progress=False)
        return fitting.plot_fit(res, rec, title="Fit to a synthetic recording")

    return {
        "trace.png": trace,
        "gating_curves.png": gating_curves,
        "fi_curve.png": fi_curve,
        "bifurcation.png": bifurcation,
        "phase_plane.png": phase_plane,
        "fit.png": fit,
    }


GUIDE = [
    "trace.png",
    "gating_curves.png",
    "fi_curve.png",
    "bifurcation.png",
    "phase_plane.png",
    "fit.png",
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(DOCS / "figures"), help="output folder")
    ap.add_argument("--missing", action="store_true", help="skip existing figures")
    ap.add_argument(
        "--only",
        nargs="+",
        default=None,
        help="names (prefixes) of scripts or figures to draw, e.g. seed001 trace",
    )
    ap.add_argument(
        "--real-cells",
        metavar="DATA",
        default=None,
        help="also fit the dev-set cells of DATA (../shared/data) with "
        "examples/real_cells.py and copy their overlays to real_<cell>.png (~15 min)",
    )
    args = ap.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def wanted(name: str) -> bool:
        return args.only is None or any(name.startswith(o) for o in args.only)

    failures = []
    for script, pngs in SEEDS.items():
        if not wanted(script):
            continue
        if args.missing and all((out / png).is_file() for png in pngs):
            continue
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(EXAMPLES / script), "--out", str(out)],
            capture_output=True,
            text=True,
        )
        took = time.perf_counter() - start
        if proc.returncode != 0:
            failures.append(script)
            print(f"FAILED {script} ({took:.0f} s):\n{proc.stderr}", file=sys.stderr)
        else:
            print(f"{script}: {', '.join(pngs)} ({took:.0f} s)")

    if args.real_cells:
        import shutil
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.run(
                [sys.executable, str(EXAMPLES / "real_cells.py"), "--data", args.real_cells,
                 "--out", tmp],
                capture_output=True, text=True,
            )
            if proc.returncode != 0:
                failures.append("real_cells.py")
                print(f"FAILED real_cells.py:\n{proc.stderr}", file=sys.stderr)
            for png in sorted(pathlib.Path(tmp).glob("*/fit.png")):
                shutil.copy(png, out / f"real_{png.parent.name}.png")
                print(f"real_{png.parent.name}.png")

    todo = [
        n for n in GUIDE if wanted(n) and not (args.missing and (out / n).is_file())
    ]
    if todo:
        draw = _guide_figures()
        for name in todo:
            start = time.perf_counter()
            fig = draw[name]()
            fig.savefig(out / name, dpi=90)
            print(f"{name} ({time.perf_counter() - start:.0f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
