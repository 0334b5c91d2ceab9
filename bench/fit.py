"""Fitting benchmark: the acceptance task of the fitting issue over many seeds.

Five 100 ms sweeps of step currents (2, 5, 8, 11, 15 µA/cm², 10–90 ms), sampled every
0.025 ms, Gaussian noise σ = 1 mV, true parameters 10–30 % away from the defaults
(`fitting.perturbed_params(seed)`); fit g_na, g_k, g_leak, e_na, e_k, e_leak from
`hhjax.HHParams()`:

- `hhjax-default`: `fitting.fit` with its default strategy (reweighted
  teacher-forced init, spike times, growing-horizon Levenberg–Marquardt with the
  whole-sweep spike-time loss, full traces, tight-solver refinement; a retry from
  other starts when the residual σ ends above the recording's noise estimate);
- `adam-trace-mse` (the peer, same run): plain optax Adam on the trace MSE with the
  same bounded (sigmoid) parameterisation, from the defaults.

Success: every parameter within 2 % of the truth. Also reported: success within
max(2 %, 3 standard errors), the median worst-parameter error, the fraction of
|error| / stderr below 2 (≈ 0.95 when the standard errors are right), median wall
time per fit (the first fit, which compiles, is reported separately) and loss
evaluations.

    python bench/fit.py --quick        # 5 seeds, 1 Adam seed × 300 steps
    python bench/fit.py                # 20 seeds, 3 Adam seeds × 2000 steps

Writes bench/results/fit.json (rows: benchmark, impl, n, metric, value, ratio).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import statistics
import time

import jax

jax.config.update("jax_enable_x64", True)  # benchmark program start

import numpy as np  # noqa: E402

import fitting  # noqa: E402
import hhjax  # noqa: E402

NAMES = fitting.DEFAULT_FIT
HERE = pathlib.Path(__file__).resolve().parent


def run_one(seed: int, method: str, adam_steps: int):
    truth_p = fitting.perturbed_params(seed)
    rec = fitting.synthetic_recording(truth_p, seed=seed)
    truth = {n: float(np.asarray(getattr(truth_p, n))) for n in NAMES}
    t0 = time.perf_counter()
    if method == "hhjax-default":
        res = fitting.fit(hhjax.HHParams(), rec, NAMES, progress=False)
    else:
        res = fitting.fit(
            hhjax.HHParams(), rec, NAMES, loss=fitting.TraceLoss(),
            optimizer=fitting.adam(0.05, adam_steps, patience=adam_steps),
            init="initial", progress=False, uncertainty=False,
        )
    wall = time.perf_counter() - t0
    rel = {n: res.values[n] / truth[n] - 1 for n in NAMES}
    z = {
        n: abs(res.values[n] - truth[n]) / res.stderr[n]
        if np.isfinite(res.stderr[n]) and res.stderr[n] > 0
        else float("nan")
        for n in NAMES
    }
    return {
        "seed": seed,
        "method": method,
        "wall_s": wall,
        "evaluations": res.evaluations,
        "rel_err": rel,
        "z": z,
        "stderr": res.stderr,
        "worst": max(abs(v) for v in rel.values()),
        "success": all(abs(v) <= 0.02 for v in rel.values()),
        "success_stat": all(
            abs(rel[n]) <= 0.02 or (np.isfinite(z[n]) and z[n] <= 3) for n in NAMES
        ),
        "status": res.status,
    }


def summarise(runs):
    walls = [r["wall_s"] for r in runs]
    zs = [v for r in runs for v in r["z"].values() if np.isfinite(v)]
    return {
        "seeds": len(runs),
        "success_rate": float(np.mean([r["success"] for r in runs])),
        "success_rate_stat": float(np.mean([r["success_stat"] for r in runs])),
        "median_worst_rel_err": float(np.median([r["worst"] for r in runs])),
        "max_worst_rel_err": float(np.max([r["worst"] for r in runs])),
        "first_wall_s": walls[0],
        "median_wall_s": float(statistics.median(walls[1:] if len(walls) > 1 else walls)),
        "median_evaluations": float(np.median([r["evaluations"] for r in runs])),
        "frac_z_below_2": float(np.mean(np.array(zs) < 2)) if zs else float("nan"),
        "rms_z": float(np.sqrt(np.mean(np.square(zs)))) if zs else float("nan"),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--adam-seeds", type=int, default=None)
    ap.add_argument("--adam-steps", type=int, default=None)
    ap.add_argument("--out", default=str(HERE / "results" / "fit.json"))
    args = ap.parse_args()
    n_seeds = args.seeds or (5 if args.quick else 20)
    n_adam = args.adam_seeds if args.adam_seeds is not None else (1 if args.quick else 3)
    adam_steps = args.adam_steps or (300 if args.quick else 2000)

    runs = {"hhjax-default": [], "adam-trace-mse": []}
    plan = [("hhjax-default", n_seeds, "hhjax-default"),
            ("adam-trace-mse", n_adam, f"adam ({adam_steps} steps)")]
    for method, count, label in plan:
        for seed in range(count):
            r = run_one(seed, method, adam_steps)
            runs[method].append(r)
            errs = " ".join(f"{100 * r['rel_err'][n]:+6.2f}" for n in NAMES)
            print(f"{label} seed {seed:2d}: {r['wall_s']:6.1f} s, worst "
                  f"{100 * r['worst']:5.2f} %  [{errs}] %  ok={r['success']}", flush=True)

    summ = {k: summarise(v) for k, v in runs.items() if v}
    ours = summ["hhjax-default"]
    peer = summ.get("adam-trace-mse")
    print()
    print(f"{'metric':<24} {'hhjax-default':>14} {'adam-trace-mse':>15}")
    for m in ours:
        pv = peer[m] if peer else float("nan")
        print(f"{m:<24} {ours[m]:>14.4g} {pv:>15.4g}")
    rows = []
    for impl, s in summ.items():
        for m, v in s.items():
            row = {"benchmark": "fit_acceptance", "impl": impl, "n": s["seeds"],
                   "metric": m, "value": v}
            if impl == "hhjax-default" and peer and m in ("median_wall_s",):
                row["ratio"] = peer[m] / v if v else None
                row["peer"] = "adam-trace-mse"
            rows.append(row)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "rows": rows,
        "runs": [
            {k: v for k, v in r.items()} for rs in runs.values() for r in rs
        ],
        "settings": {"seeds": n_seeds, "adam_seeds": n_adam, "adam_steps": adam_steps,
                     "machine": platform.platform(), "versions": fitting.versions()},
    }, indent=1, default=float))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
