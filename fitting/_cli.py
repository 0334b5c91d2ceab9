"""The `hhjax` program: `hhjax demo`, `hhjax fit`, `hhjax simulate`.

It lives in the fitting package because `demo` and `fit` need it; the simulation-only
subcommand comes from `hhjax._cli`.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

EXIT_INTERRUPTED = 130


def _setup_jax(x64: bool):
    import jax

    if x64:
        jax.config.update("jax_enable_x64", True)  # program start, not the library


def _parse_assignments(items, what, parser):
    out = {}
    for item in items or []:
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            if "=" not in part:
                parser.error(f"{what} expects NAME=VALUE, got {part!r}")
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def _print_table(names, values, stderr, truth=None, start=None, stream=sys.stdout):
    head = f"  {'parameter':<10}"
    if truth is not None:
        head += f" {'true':>10}"
    if start is not None:
        head += f" {'start':>10}"
    head += f" {'fitted':>11} {'± stderr':>10}"
    if truth is not None:
        head += f" {'error':>8} {'|err|/se':>8}"
    print(head, file=stream)
    for n in names:
        v = values[n]
        se = stderr.get(n, float("nan"))
        row = f"  {n:<10}"
        if truth is not None:
            row += f" {truth[n]:>10.4f}"
        if start is not None:
            row += f" {start[n]:>10.4f}"
        row += f" {v:>11.4f} {se:>10.4f}"
        if truth is not None:
            err = v - truth[n]
            rel = 100 * err / abs(truth[n])
            row += f" {rel:>7.2f}% {abs(err) / se if se > 0 else float('nan'):>8.2f}"
        print(row, file=stream)


def _demo(args, parser) -> int:
    _setup_jax(args.x64)
    import jax
    import numpy as np

    import fitting
    import hhjax

    from ._synthetic import (
        DEMO_AMPLITUDES,
        DEMO_NAMES,
        perturbed_params,
        synthetic_recording,
    )

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    truth_params = perturbed_params(args.seed)
    amps = DEMO_AMPLITUDES if not args.quick else (5.0, 15.0)
    t_end = 100.0 if not args.quick else 40.0
    t_off = 90.0 if not args.quick else 35.0
    print("hhjax demo: fit a Hodgkin–Huxley model to a synthetic recording")
    print(
        f"  data: {len(amps)} sweeps, steps of {', '.join(f'{a:g}' for a in amps)} µA/cm² "
        f"from 10 to {t_off:g} ms, {t_end:g} ms sampled every 0.025 ms, Gaussian noise "
        f"σ = 1 mV (true parameters 10–30 % away from the defaults, seed {args.seed})"
    )
    t0 = time.perf_counter()
    rec = synthetic_recording(
        truth_params, amps, t_off=t_off, t_end=t_end, noise_sigma=1.0, seed=args.seed
    )
    rec.save_npz(out / "demo_recording.npz")
    print(f"  recording written to {out / 'demo_recording.npz'}")
    print("  fitting g_na, g_k, g_leak, e_na, e_k, e_leak from hhjax.HHParams() ...")
    start = hhjax.HHParams()
    try:
        res = fitting.fit(
            start, rec, DEMO_NAMES, progress=args.progress, starts=args.starts,
            key=jax.random.key(args.seed),
        )
    except fitting.FitInterrupted as e:
        fitting.write_report(e.result, rec, out)
        print(f"\ninterrupted: best-so-far result written to {out / 'fit.json'}")
        return EXIT_INTERRUPTED
    truth = {n: float(np.asarray(getattr(truth_params, n))) for n in DEMO_NAMES}
    start_v = {n: float(np.asarray(getattr(start, n))) for n in DEMO_NAMES}
    print(f"  status {res.status}; {res.evaluations} residual+Jacobian evaluations; "
          f"fit took {res.wall_time:.1f} s (incl. compilation)")
    _print_table(DEMO_NAMES, res.values, res.stderr, truth=truth, start=start_v)
    worst = max(abs(res.values[n] / truth[n] - 1) for n in DEMO_NAMES)
    print(f"  worst relative error {100 * worst:.2f} %; residual σ {res.noise_sigma:.3f} mV "
          f"(noise 1 mV)")
    for w in res.warnings:
        print(f"  warning: {w}")
    paths = fitting.write_report(
        res, rec, out, extra={"true_params": truth, "data": str(out / "demo_recording.npz")}
    )
    print(f"  wrote {paths['json']} and {paths['png']} ({time.perf_counter() - t0:.1f} s total)")
    return 0


def _fit_cmd(args, parser) -> int:
    _setup_jax(args.x64)
    import jax

    import fitting
    import hhjax

    path = pathlib.Path(args.data)
    if not path.exists():
        parser.error(f"recording {path} does not exist (give an .abf, .nwb, .npz or .csv file)")
    try:
        rec = hhjax.load_recording(
            path, area_cm2=args.area_cm2, capacitance_pF=args.capacitance_pF
        )
    except (ValueError, OSError, ImportError) as e:
        # ImportError: the ABF/NWB readers are an optional extra; its message names
        # `pip install "hhjax[io]"`
        parser.error(f"could not load {path}: {e}")
    if args.sweeps:
        try:
            idx = [int(s) for s in args.sweeps.split(",") if s.strip()]
            rec = rec.select(idx)
        except (ValueError, IndexError) as e:
            parser.error(f"--sweeps: {e}")
    if args.t_start is not None or args.t_end is not None:
        try:
            rec = rec.window(args.t_start, args.t_end)
        except ValueError as e:
            parser.error(f"--t-start/--t-end: {e}")
    presets = {
        "default": hhjax.HHParams,
        "squid_axon": hhjax.HHParams.squid_axon,
        "hh1952": hhjax.HHParams.hh1952,
        "annarchy": hhjax.HHParams.annarchy,
        "brainpy": hhjax.HHParams.brainpy,
    }
    sets = _parse_assignments(args.set, "--set", parser)
    try:
        params = presets[args.params](**{k: float(v) for k, v in sets.items()})
    except (TypeError, ValueError) as e:
        parser.error(f"--set: {e}")
    names = tuple(n.strip() for n in args.fit.split(",") if n.strip())
    bounds = {}
    for k, v in _parse_assignments(args.bounds, "--bounds", parser).items():
        try:
            lo, hi = (float(x) for x in v.split(":"))
        except ValueError:
            parser.error(f"--bounds expects NAME=LOW:HIGH, got {k}={v}")
        bounds[k] = (lo, hi)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / "checkpoint.npz"
    print(f"hhjax fit: {rec.summary()}")
    print(f"  fitting {', '.join(names)} from the {args.params} parameters; "
          f"{args.starts} start(s); output in {out}")
    kwargs = dict(
        bounds=bounds or None,
        starts=args.starts,
        key=jax.random.key(args.seed),
        progress=args.progress,
        checkpoint=checkpoint,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
    )
    if args.steps is not None:
        kwargs["stages"] = fitting.default_stages(rec.t0, rec.t_end, steps=args.steps)
    try:
        res = fitting.fit(params, rec, names, **kwargs)
    except fitting.FitInterrupted as e:
        fitting.write_report(e.result, rec, out, extra={"data": str(path)})
        print(f"\ninterrupted: best-so-far result written to {out / 'fit.json'}; "
              f"continue with the same command plus --resume")
        return EXIT_INTERRUPTED
    except (ValueError, TypeError) as e:
        parser.error(str(e))
    _print_table(names, res.values, res.stderr)
    print(f"  status {res.status}; rmse {res.rmse:.3f} mV; {res.wall_time:.1f} s")
    for w in res.warnings:
        print(f"  warning: {w}")
    extra = {"data": str(path.resolve()), "sweeps": args.sweeps}
    paths = fitting.write_report(res, rec, out, extra=extra)
    print(f"  wrote {paths['json']} and {paths['png']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from hhjax._cli import add_simulate_command

    parser = argparse.ArgumentParser(
        prog="hhjax",
        description=(
            "hhjax: differentiable Hodgkin–Huxley simulation and fitting in JAX. "
            "Units: mV, ms, µF/cm², mS/cm², µA/cm² (recorded currents in pA)."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="fit a synthetic multi-sweep recording with known parameters (no files needed)",
        description=(
            "Make a synthetic 5-sweep step-current recording from known HH parameters "
            "(10–30 %% from the defaults, σ = 1 mV noise), fit g_na, g_k, g_leak, e_na, "
            "e_k, e_leak from the defaults, print true vs fitted ± standard error and "
            "write DIR/fit.png, DIR/fit.json and DIR/demo_recording.npz."
        ),
    )
    demo.add_argument("--out", default="hhjax-demo", metavar="DIR",
                      help="output folder (default: hhjax-demo)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the true parameters and noise")
    demo.add_argument("--starts", type=int, default=1, help="number of starts (default 1)")
    demo.add_argument("--quick", action="store_true",
                      help="2 short sweeps instead of 5 × 100 ms (for smoke tests)")
    demo.add_argument("--no-progress", dest="progress", action="store_false",
                      help="no progress bar")
    demo.add_argument("--no-x64", dest="x64", action="store_false",
                      help="run in float32 (default: float64)")
    demo.set_defaults(func=_demo)

    fit = sub.add_parser(
        "fit",
        help="fit HH parameters to a recording (.npz or .csv)",
        description=(
            "Fit parameters of an HH model to a current-clamp recording. DATA is an "
            ".npz with t_ms (T), v_mV (sweeps × T) and i_uA_per_cm2 or i_pA, or a CSV "
            "with columns t_ms, v_mV_k, i_…_k. Writes DIR/fit.json (params, stderr, "
            "loss, settings, versions), DIR/fit.png and a checkpoint (DIR/checkpoint.npz) "
            "that --resume continues. Ctrl-C writes the best-so-far result."
        ),
    )
    fit.add_argument("data", metavar="DATA", help="recording file (.npz or .csv)")
    fit.add_argument("--fit", default="g_na,g_k,g_leak,e_na,e_k,e_leak",
                     help="comma-separated parameters to fit (default: the six "
                          "conductances and reversal potentials; area_cm2 or "
                          "capacitance_pF for pA recordings)")
    fit.add_argument("--out", required=True, metavar="DIR", help="output folder")
    fit.add_argument("--seed", type=int, default=0, help="PRNG seed for the random starts")
    fit.add_argument("--starts", type=int, default=1, help="number of starts (default 1)")
    fit.add_argument("--params", default="default",
                     choices=["default", "squid_axon", "hh1952", "annarchy", "brainpy"],
                     help="starting parameter preset (default: hhjax.HHParams())")
    fit.add_argument("--set", action="append", metavar="NAME=VALUE",
                     help="override a starting/fixed parameter, e.g. --set c_m=1.2")
    fit.add_argument("--bounds", action="append", metavar="NAME=LOW:HIGH",
                     help="bounds of a fitted parameter, e.g. --bounds g_na=60:240")
    fit.add_argument("--area-cm2", type=float, default=None,
                     help="membrane area [cm²] for recordings in pA")
    fit.add_argument("--capacitance-pF", dest="capacitance_pF", type=float, default=None,
                     help="total membrane capacitance [pF] for recordings in pA")
    fit.add_argument("--sweeps", default=None, help="comma-separated sweep indices to fit")
    fit.add_argument("--t-start", type=float, default=None, help="first time to use [ms]")
    fit.add_argument("--t-end", type=float, default=None, help="last time to use [ms]")
    fit.add_argument("--steps", type=int, default=None,
                     help="Levenberg–Marquardt steps per stage (default 30)")
    fit.add_argument("--checkpoint-every", type=int, default=10,
                     help="write the checkpoint every N steps (default 10)")
    fit.add_argument("--resume", action="store_true",
                     help="continue from DIR/checkpoint.npz of the same fit")
    fit.add_argument("--no-progress", dest="progress", action="store_false",
                     help="no progress bar")
    fit.add_argument("--no-x64", dest="x64", action="store_false",
                     help="run in float32 (default: float64)")
    fit.set_defaults(func=_fit_cmd)

    add_simulate_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "simulate":
        from hhjax._cli import run_simulate

        return run_simulate(args, parser)
    if getattr(args, "starts", 1) < 1:
        parser.error(f"--starts must be >= 1, got {args.starts}")
    try:
        return args.func(args, parser)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
