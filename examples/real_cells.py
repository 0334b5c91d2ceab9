"""Fit the real cells of the dev set and score the fits on held-out sweeps.

One worked example per spiking cell of `../shared/data` (see its PROVENANCE.md):

| cell | file | kind | fitted sweeps | held-out sweeps |
|---|---|---|---|---|
| `rs-171116` | pyabf/171116sh_0018.abf | regular spiking, 20 kHz | 2, 8, 12, 16 | 5, 10, 14 |
| `fs-2019` | pyabf/2019_07_24_0055_fsi.abf | fast-spiking interneuron, 20 kHz | 6, 10, 14 | 8, 12, 16 |
| `axon-5` | pyabf/File_axon_5.abf | onset spiking, 20 kHz | 0, 4, 6, 8 | 1, 5, 7 |
| `b6` | bluepyefe/B6_IDRest.npz | regular spiking, 4 kHz, recorded current | 0, 2, 4 | 1, 3 |

Each fit runs `fitting.fit_cell` with its defaults (model chosen by spike width,
area from the passive step responses, spike-time + sub-threshold losses) and writes
`OUT/<cell>/fit.json` (with the per-sweep `validation` list) and `OUT/<cell>/fit.png`
(data and model overlaid); `OUT/heldout.md` is the table of held-out metrics over all
cells. The same as `hhjax fit FILE --sweeps ... --validate ... --out OUT/<cell>`.

    python examples/real_cells.py --out real-cells             # all cells
    python examples/real_cells.py --cell axon-5 --out real-cells
    python examples/real_cells.py --quick --out /tmp/rc         # short windows, few steps
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys
import time

import jax

HERE = pathlib.Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data"

#: name → (file under the data folder, fitted sweeps, held-out sweeps, load options)
CELLS = {
    "rs-171116": ("pyabf/171116sh_0018.abf", [2, 8, 12, 16], [5, 10, 14], {}),
    "fs-2019": ("pyabf/2019_07_24_0055_fsi.abf", [6, 10, 14], [8, 12, 16], {}),
    "axon-5": ("pyabf/File_axon_5.abf", [0, 4, 6, 8], [1, 5, 7], {}),
    # BluePyEfe's own examples correct this cell for a 14 mV liquid-junction potential
    "b6": ("bluepyefe/B6_IDRest.npz", [0, 2, 4], [1, 3], {"ljp_mV": 14.0}),
}

#: `--quick`: the first part of each step only (ms, relative to the file), 8 steps
QUICK_WINDOWS = {
    "rs-171116": (96.85, 696.85),
    "fs-2019": (96.85, 446.85),
    "axon-5": (165.0, 515.0),
    "b6": (650.0, 1150.0),
}


def _fmt(x, spec):
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def run_cell(name: str, data_dir: pathlib.Path, out: pathlib.Path, quick: bool) -> dict:
    import fitting
    import hhjax

    rel, fit_sweeps, val_sweeps, opts = CELLS[name]
    rec = hhjax.load_recording(data_dir / rel, **opts)
    window = QUICK_WINDOWS[name] if quick else "auto"
    t = time.perf_counter()
    cf = fitting.fit_cell(
        rec, "auto", sweeps=fit_sweeps, validate=val_sweeps, window_ms=window,
        steps=8 if quick else 12, progress=False,
        search={"generations": 3} if quick else True,
    )
    wall = time.perf_counter() - t
    print(f"== {name} ({rel}) — {wall:.0f} s")
    print(cf.summary())
    paths = cf.write(out / name, extra={"data": str((data_dir / rel).resolve()), "cell": name})
    print(f"  wrote {paths['json']} and {paths['png']}")
    return {"cell": name, "file": rel, "model": cf.model_name, "wall_s": wall,
            "validation": cf.to_json()["validation"]}


def table(rows: list[dict]) -> str:
    lines = [
        "| cell | model | held-out sweep | spikes data/model | spike-count error | "
        "first-spike latency error | sub-threshold RMSE | Γ (±4 ms) | fit time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        for v in r["validation"]:
            lines.append(
                f"| {r['cell']} | {r['model']} | {v['sweep']} | "
                f"{v['n_spikes_data']}/{v['n_spikes_model']} | "
                f"{_fmt(v['spike_count_error'], '.0%')} | "
                f"{_fmt(v['first_spike_latency_error_ms'], '+.1f')} ms | "
                f"{_fmt(v['subthreshold_rmse_mV'], '.2f')} mV | {_fmt(v['gamma'], '.2f')} | "
                f"{r['wall_s']:.0f} s |"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cell", choices=sorted(CELLS), action="append",
                    help="fit only this cell (repeatable; default all)")
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="the dev-set data folder")
    ap.add_argument("--out", default="real-cells", help="output folder")
    ap.add_argument("--quick", action="store_true", help="short windows, 8 steps")
    args = ap.parse_args(argv)
    jax.config.update("jax_enable_x64", True)  # program start, not the library
    data_dir = pathlib.Path(args.data)
    if not data_dir.is_dir():
        print(f"data folder {data_dir} not found (clone next to ../shared or pass --data)",
              file=sys.stderr)
        return 2
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [run_cell(c, data_dir, out, args.quick) for c in (args.cell or list(CELLS))]
    md = table(rows)
    (out / "heldout.md").write_text(md + "\n")
    (out / "heldout.json").write_text(json.dumps(rows, indent=1))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
