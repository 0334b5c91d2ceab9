"""The `hhjax` program: `hhjax demo`, `hhjax fit`, `hhjax simulate`, `hhjax sweeps`.

It lives in the fitting package because `demo` and `fit` need it; the simulation-only
subcommand comes from `hhjax._cli`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import pathlib
import sys
import time

EXIT_INTERRUPTED = 130


def _setup_jax(x64: bool):
    import jax

    if x64:
        jax.config.update("jax_enable_x64", True)  # program start, not the library


def _parse_assignments(items, what, parser, example="c_m=1.2"):
    out = {}
    for item in items or []:
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            if "=" not in part:
                form = "NAME=LOW:HIGH" if what == "--bounds" else "NAME=VALUE"
                parser.error(f"{what} expects {form} (e.g. {what} {example}), got {part!r}")
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


def _sweep_list(text, flag, parser):
    if not text:
        return []
    try:
        out = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        parser.error(f"{flag} expects comma-separated sweep indices, e.g. 0,2,4; got {text!r}")
    if any(k < 0 for k in out):
        parser.error(f"{flag}: sweep indices count from 0 (the file's first sweep); got {text!r}")
    return out


def _validation_rows(rec, v_model, sweeps, threshold):
    import hhjax

    rows = []
    for k, s in enumerate(sweeps):
        m = hhjax.validation_metrics(rec.t_ms, rec.v_mV[k], v_model[k], threshold=threshold)
        rows.append({"sweep": int(s), **m})
    return rows


def _print_validation(rows, stream=sys.stdout):
    print(f"  {'sweep':>5} {'spikes data/model':>18} {'count err':>10} {'latency err':>12} "
          f"{'sub-thr RMSE':>13} {'Γ':>6}", file=stream)

    def f(x, spec):
        return "n/a" if x is None or x != x else format(x, spec)

    for r in rows:
        print(f"  {r['sweep']:>5} {r['n_spikes_data']:>9}/{r['n_spikes_model']:<8} "
              f"{f(r['spike_count_error'], '.1%'):>10} "
              f"{f(r['first_spike_latency_error_ms'], '+.1f'):>9} ms "
              f"{f(r['subthreshold_rmse_mV'], '.2f'):>10} mV {f(r['gamma'], '.2f'):>6}",
              file=stream)


def _fit_cmd(args, parser) -> int:
    _setup_jax(args.x64)
    import jax

    import fitting
    import hhjax
    from hhjax._cli import channel_arg

    path = pathlib.Path(args.data)
    if not path.exists():
        parser.error(f"recording {path} does not exist (give an .abf, .nwb, .npz or .csv file)")
    fit_sweeps = _sweep_list(args.sweeps, "--sweeps", parser)
    val_sweeps = _sweep_list(args.validate, "--validate", parser)
    if set(fit_sweeps) & set(val_sweeps):
        parser.error(f"sweeps {sorted(set(fit_sweeps) & set(val_sweeps))} are in both "
                     "--sweeps and --validate; a held-out sweep must not be fitted: "
                     "remove them from one of the two")
    # with --sweeps, only the fitted and held-out sweeps are read: a file may hold
    # other protocols (other lengths or sampling) that could not share one time axis
    loaded = sorted(set(fit_sweeps) | set(val_sweeps)) if fit_sweeps else None
    try:
        rec = hhjax.load_recording(
            path, sweeps=loaded, channel=channel_arg(args.channel),
            area_cm2=args.area_cm2, capacitance_pF=args.capacitance_pF,
            ljp_mV=args.ljp_mV,
            # at load: an NWB file's sweeps of other lengths stack on a window they
            # all cover
            window_ms=(None if args.t_start is None and args.t_end is None
                       else (args.t_start, args.t_end)),
        )
    except IndexError as e:
        parser.error(f"--sweeps/--validate: {e}")
    except (ValueError, OSError, ImportError) as e:
        # ImportError: the ABF/NWB readers are an optional extra; its message names
        # `pip install "hhjax[io]"`
        hint = "" if loaded else (
            " (with --sweeps, only the fitted and --validate sweeps are read)")
        parser.error(f"could not load {path}: {e}{hint}")
    if loaded is None:
        for flag, idx in (("--sweeps", fit_sweeps), ("--validate", val_sweeps)):
            bad = [k for k in idx if not 0 <= k < rec.n_sweeps]
            if bad:
                parser.error(f"{flag}: sweep(s) {bad} do not exist; {path.name} has "
                             f"{rec.n_sweeps} sweeps (0..{rec.n_sweeps - 1})")
        if len(set(val_sweeps)) >= rec.n_sweeps:
            parser.error(f"--validate holds out every sweep of {path.name} "
                         f"({rec.n_sweeps}); leave at least one sweep to fit")
        file_index = list(range(rec.n_sweeps))
    else:
        file_index = loaded
    model = args.model
    if model == "auto" and rec.current_unit != "pA":
        model = "hh"  # a membrane patch in µA/cm² (e.g. `hhjax demo`'s recording)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / "checkpoint.npz"
    if model != "hh":
        return _fit_cell_cmd(args, parser, rec, path, model, fit_sweeps, val_sweeps,
                             out, checkpoint, file_index)
    if not fit_sweeps:
        fit_sweeps = [k for k in range(rec.n_sweeps) if k not in val_sweeps]
    # the recording's sweeps are `file_index` (the file's indices, in this order)
    pos = {s: k for k, s in enumerate(file_index)}
    rec_all = rec
    rec = rec_all.select([pos[k] for k in fit_sweeps])
    if args.t_start is not None or args.t_end is not None:
        try:
            rec = rec.window(args.t_start, args.t_end)
            rec_all = rec_all.window(args.t_start, args.t_end)
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
    fields = [f.name for f in dataclasses.fields(hhjax.HHParams)]
    fields.remove("kinetics")  # not a number
    for k, v in sets.items():
        if k not in fields:
            parser.error(f"--set {k}={v}: unknown parameter {k!r}; use one of "
                         f"{', '.join(fields)}")
        try:
            float(v)
        except ValueError:
            parser.error(f"--set {k}={v}: VALUE must be a number, e.g. --set {k}=1.5")
    try:
        params = presets[args.params](**{k: float(v) for k, v in sets.items()})
    except (TypeError, ValueError) as e:
        parser.error(f"--set: {e}")
    names = tuple(n.strip() for n in args.fit.split(",") if n.strip())
    bounds = {}
    pairs = _parse_assignments(args.bounds, "--bounds", parser, "g_na=60:240")
    for k, v in pairs.items():
        try:
            lo, hi = (float(x) for x in v.split(":"))
        except ValueError:
            parser.error(f"--bounds expects NAME=LOW:HIGH (e.g. --bounds g_na=60:240), "
                         f"got {k}={v}")
        bounds[k] = (lo, hi)
    print(f"hhjax fit: {rec.summary()}")
    print(f"  model hh: fitting {', '.join(names)} from the {args.params} parameters; "
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
    shaky = [n for n in names if not res.identifiable.get(n, True)]
    if shaky:
        print(f"  not identified (their ± does not hold; see the warnings): {', '.join(shaky)}")
    print(f"  status {res.status}; rmse {res.rmse:.3f} mV; {res.wall_time:.1f} s")
    for w in res.warnings:
        print(f"  warning: {w}")
    extra = {"data": str(path.resolve()), **_sweep_names(rec_all, file_index),
             "ljp_corrected_mV": float(rec_all.meta.get("ljp_corrected_mV", 0.0)),
             "model": "hh", "fit_sweeps": fit_sweeps,
             "validate_sweeps": val_sweeps, "validation": []}
    if val_sweeps:
        rec_val = rec_all.select([pos[k] for k in val_sweeps])
        v_val = fitting.predict(res, rec_val)
        extra["validation"] = _json_rows(
            _validation_rows(rec_val, v_val, val_sweeps,
                             0.0 if args.threshold is None else args.threshold)
        )
        print("  held-out sweeps:")
        _print_validation(extra["validation"])
    paths = fitting.write_report(res, rec, out, extra=extra)
    print(f"  wrote {paths['json']} and {paths['png']}")
    return 0


def _json_rows(rows):
    return [
        {k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
        for r in rows
    ]


def _sweep_names(rec, file_index) -> dict:
    """`{"sweep_names": {file index: series name}}` for a recording whose file names
    its sweeps (NWB), else `{}`."""
    names = rec.meta.get("series")
    if not isinstance(names, list) or len(names) != len(file_index):
        return {}
    return {"sweep_names": {str(k): str(n) for k, n in zip(file_index, names)}}


def _renumbered(cf, file_index):
    """`cf` with its sweeps named by the file's indices (`file_index[k]` for the
    loaded recording's sweep k)."""
    import dataclasses

    def rows(rs):
        return [{**r, "sweep": int(file_index[r["sweep"]])} for r in rs]

    settings = cf.settings
    if isinstance(settings.get("search"), dict) and "sweeps" in settings["search"]:
        settings = {**settings, "search": {
            **settings["search"],
            "sweeps": [int(file_index[k]) for k in settings["search"]["sweeps"]]}}
    return dataclasses.replace(
        cf,
        settings=settings,
        fit_sweeps=tuple(int(file_index[k]) for k in cf.fit_sweeps),
        validate_sweeps=tuple(int(file_index[k]) for k in cf.validate_sweeps),
        training=rows(cf.training),
        validation=rows(cf.validation),
    )


def _write_json(path: pathlib.Path, obj) -> None:
    """`obj` as JSON at `path`, atomically (a Ctrl-C never leaves half a file)."""
    # (imported here: fitting is loaded by then, and the CLI starts without it)
    from ._fit import write_text_atomic

    write_text_atomic(path, json.dumps(obj, indent=1, allow_nan=False))


def _budget_flag(flag: str, budget_s: float, parser) -> float | None:
    """A time budget [s] from the command line: 0 is no limit (None)."""
    if not (math.isfinite(budget_s) and budget_s >= 0):
        parser.error(f"{flag} must be >= 0 s (0: no limit), got {budget_s}")
    return budget_s or None


def _stage_budget(budget_s: float, parser) -> float | None:
    """`fit_cell`'s `stage_budget_s` from `--stage-budget` [s] (0: no time limit)."""
    return _budget_flag("--stage-budget", budget_s, parser)


def _search_option(generations: int, budget_s: float, parser, seed: int = 0,
                   max_sweeps: int | None = None, dtype: str | None = None):
    """`fit_cell`'s `search=` from `--search-generations` (0: no search),
    `--search-budget` [s] (0: no time limit — the generation count alone decides, so
    the fit is reproducible on any machine), `--seed` (the search's draws),
    `--search-sweeps` (None: fit_cell's default; 0: every fitted sweep) and
    `--search-dtype` (None: fit_cell's default)."""
    if generations < 0:
        parser.error(f"--search-generations must be >= 0, got {generations}")
    budget_s = _budget_flag("--search-budget", budget_s, parser)
    if max_sweeps is not None and max_sweeps < 0:
        parser.error(
            f"--search-sweeps must be >= 0 (0: every fitted sweep), got {max_sweeps}")
    if generations == 0:
        return False
    opts = {"generations": generations, "time_budget_s": budget_s, "seed": seed}
    if max_sweeps is not None:
        opts["max_sweeps"] = max_sweeps or None
    if dtype is not None:
        opts["dtype"] = dtype
    return opts


def _fit_cell_cmd(args, parser, rec, path, model, fit_sweeps, val_sweeps, out,
                  checkpoint, file_index) -> int:
    """`fit_cell` on `rec`, whose sweeps are the file's `file_index` (in that order);
    `fit_sweeps`/`val_sweeps` and everything written name the file's indices."""
    import fitting

    if rec.current_unit != "pA":
        parser.error(f"--model {model} fits real cells (current in pA); {path.name} has "
                     "its current in µA/cm²: use --model hh")
    if args.passive_steps is not None and args.passive_steps < 0:
        parser.error(f"--passive-steps must be >= 0 (0: no passive stage), got "
                     f"{args.passive_steps}")
    stage_budget_s = _stage_budget(args.stage_budget, parser)
    window = "auto"
    if args.t_start is not None or args.t_end is not None:
        window = (args.t_start if args.t_start is not None else rec.t0,
                  args.t_end if args.t_end is not None else rec.t_end)
    # the Recording's own summary advises `stimulus(area_cm2=)`, which means nothing
    # here: say which of the file's sweeps were read and where the area comes from
    n_file = rec.meta.get("n_sweeps_in_file")
    if args.area_cm2:
        size = f"area fitted, starting at {args.area_cm2:g} cm²"
    elif args.capacitance_pF:
        size = f"area fitted, starting at {args.capacitance_pF:g} pF"
    else:
        size = "area fitted, starting from the passive responses"
    print(f"hhjax fit: {path.name}: sweeps {list(file_index)} read"
          + (f" (of {n_file})" if n_file else "")
          + f", {rec.n_samples} samples each, dt = {rec.dt:.6g} ms, t = {rec.t0:.6g} .. "
          f"{rec.t_end:.6g} ms, current in pA; {size}.")
    print(f"  model {model}; fit sweeps "
          f"{fit_sweeps or 'all but the held-out ones'}; held out {val_sweeps or 'none'}; "
          f"output in {out}")
    try:
        pos = {s: k for k, s in enumerate(file_index)}
        cf = fitting.fit_cell(
            rec, model, sweeps=[pos[k] for k in fit_sweeps] or None,
            validate=[pos[k] for k in val_sweeps],
            window_ms=window,
            threshold_mV=-20.0 if args.threshold is None else args.threshold,
            capacitance_pF=args.capacitance_pF, area_cm2=args.area_cm2,
            steps=args.steps if args.steps is not None else 12,
            **({} if args.passive_steps is None else {"passive_steps": args.passive_steps}),
            stage_budget_s=stage_budget_s,
            search=_search_option(args.search_generations, args.search_budget, parser,
                                  args.seed, args.search_sweeps, args.search_dtype),
            checkpoint=checkpoint, resume=args.resume, progress=args.progress,
        )
    except fitting.FitInterrupted as e:
        _write_json(out / "fit.json", {
            "data": str(path.resolve()), "model": model, "status": "interrupted",
            "final_stage": e.result.to_json(), "validation": []})
        print(f"\ninterrupted: best-so-far result written to {out / 'fit.json'}; "
              f"continue with the same command plus --resume")
        return EXIT_INTERRUPTED
    except fitting.SearchInterrupted as e:
        r = e.result
        _write_json(out / "fit.json", {
            "data": str(path.resolve()), "model": model, "status": "interrupted",
            "interrupted_in": "search",
            "search": {"values": r.values,
                       "score": r.score if math.isfinite(r.score) else None,
                       "generations_run": len(r.history), "history": r.history,
                       "spread": r.spread, "n_evaluated": r.n_evaluated,
                       "wall_time_s": r.wall_time},
            "validation": [],
        })
        print(f"\ninterrupted during the global search after {len(r.history)} "
              f"generation(s): its best candidate so far written to {out / 'fit.json'} "
              "(\"search\": values in the parameters' units); continue with the same "
              "command plus --resume")
        return EXIT_INTERRUPTED
    except (ValueError, TypeError) as e:
        parser.error(str(e))
    if file_index != list(range(rec.n_sweeps)):
        cf = _renumbered(cf, file_index)
    print(cf.summary())
    stages = ", ".join(f"{k.replace('_', ' ')} {v:.0f}"
                       for k, v in cf.settings.get("timing_s", {}).items())
    print(f"  status {cf.status}; {cf.wall_time:.1f} s" + (f" ({stages} s)" if stages else ""))
    for w in cf.warnings:
        print(f"  warning: {w}")
    paths = cf.write(out, extra={"data": str(path.resolve()),
                                 **_sweep_names(rec, file_index)})
    print(f"  wrote {paths['json']} and {paths['png']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from hhjax._cli import add_simulate_command, add_sweeps_command

    parser = argparse.ArgumentParser(
        prog="hhjax",
        description=(
            "hhjax: differentiable Hodgkin–Huxley simulation and fitting in JAX. "
            "Units: mV, ms, µF/cm², mS/cm², µA/cm² (recorded currents in pA)."
        ),
        epilog=(
            "Run 'hhjax COMMAND --help' for a command's options. Start with "
            "'hhjax demo'. Documentation: the docs/ folder of the repository "
            "(pip install -e \".[docs]\" && mkdocs serve); tutorials as notebooks "
            "in notebooks/."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="fit a synthetic multi-sweep recording with known parameters (no files needed)",
        description=(
            "Make a synthetic 5-sweep step-current recording from known HH parameters "
            "(10–30 % from the defaults, σ = 1 mV noise), fit g_na, g_k, g_leak, e_na, "
            "e_k, e_leak from the defaults, print true vs fitted ± standard error and "
            "write DIR/fit.png, DIR/fit.json and DIR/demo_recording.npz. Takes about a "
            "minute on a 2-core CPU, much of it compiling (--quick too)."
        ),
    )
    demo.add_argument("--out", default="hhjax-demo", metavar="DIR",
                      help="output folder (default: hhjax-demo)")
    demo.add_argument("--seed", type=int, default=0, metavar="N",
                      help="seed of the true parameters and the noise (default 0)")
    demo.add_argument("--starts", type=int, default=1, metavar="N",
                      help="number of starts, vmapped (default 1)")
    demo.add_argument("--quick", action="store_true",
                      help="2 sweeps of 40 ms instead of 5 of 100 ms (a smoke test)")
    demo.add_argument("--no-progress", dest="progress", action="store_false",
                      help="no progress bar")
    demo.add_argument("--no-x64", dest="x64", action="store_false",
                      help="run in float32 (default: float64)")
    demo.set_defaults(func=_demo)

    fit = sub.add_parser(
        "fit",
        help="fit a model to a recording (.abf, .nwb, .npz, .csv); validate on held-out sweeps",
        description=(
            "Fit a conductance-based model to a current-clamp recording and predict "
            "held-out sweeps. RECORDING is an .abf or .nwb file (pip install "
            "\"hhjax[io]\"), an .npz with t_ms (T), v_mV (sweeps × T) and i_pA or "
            "i_uA_per_cm2, or a CSV with columns t_ms, v_mV_k, i_…_k. Real cells "
            "(current in pA) get a cortical model (--model auto: Pospischil et al. "
            "2008, fast-spiking or regular-spiking by spike width) fitted on spike "
            "times and sub-threshold samples, with the membrane area fitted from the "
            "passive step responses; a recording in µA/cm² gets the classic HH model "
            "(--model hh). Writes DIR/fit.json (parameters, standard errors, settings, "
            "versions and a 'validation' list: per held-out sweep the spike-count "
            "error, first-spike latency error, sub-threshold RMSE and coincidence "
            "factor Γ), DIR/fit.png (data and model overlaid) and a checkpoint "
            "(DIR/checkpoint.npz) that --resume continues. Ctrl-C writes the "
            "best-so-far result."
        ),
    )
    fit.add_argument("data", metavar="RECORDING",
                     help="recording file (.abf, .nwb, .npz or .csv)")
    fit.add_argument("--model", default="auto",
                     choices=["auto", "hh", "pospischil-rs", "pospischil-fs"],
                     help="model family (default auto: pospischil-fs/-rs for a cell in "
                          "pA by spike width, hh for a recording in µA/cm²)")
    fit.add_argument("--validate", default=None, metavar="SWEEPS",
                     help="comma-separated held-out sweep indices, predicted and scored "
                          "after the fit (e.g. 1,3)")
    fit.add_argument("--threshold", type=float, default=None, metavar="MV",
                     help="spike threshold [mV] for losses and metrics (default −20 for "
                          "cells, 0 for hh)")
    fit.add_argument("--fit", default="g_na,g_k,g_leak,e_na,e_k,e_leak",
                     metavar="NAMES",
                     help="--model hh: comma-separated parameters to fit (default: "
                          "g_na,g_k,g_leak,e_na,e_k,e_leak; add area_cm2 or "
                          "capacitance_pF for pA recordings); cell models fit their "
                          "own set (see fitting.cell_model)")
    fit.add_argument("--out", required=True, metavar="DIR",
                     help="output folder (required)")
    fit.add_argument("--seed", type=int, default=0, metavar="N",
                     help="PRNG seed (default 0): --model hh, of the random starts; cell "
                          "models, of the global search's draws (its result varies with "
                          "the seed: compare a few and keep the best fitted-sweep score)")
    fit.add_argument("--starts", type=int, default=1, metavar="N",
                     help="--model hh: number of starts, vmapped (default 1)")
    fit.add_argument("--params", default="default",
                     choices=["default", "squid_axon", "hh1952", "annarchy", "brainpy"],
                     help="--model hh: starting parameter preset (default: "
                          "hhjax.HHParams())")
    fit.add_argument("--set", action="append", metavar="NAME=VALUE",
                     help="--model hh: override a starting/fixed parameter of the "
                          "preset, in its units, e.g. --set c_m=1.2 (repeatable)")
    fit.add_argument("--bounds", action="append", metavar="NAME=LOW:HIGH",
                     help="--model hh: bounds of a fitted parameter, in its units, "
                          "e.g. --bounds g_na=60:240 (repeatable; default unbounded)")
    fit.add_argument("--area-cm2", type=float, default=None, metavar="CM2",
                     help="membrane area [cm²] for recordings in pA (cell models: the "
                          "starting value; default from the passive step responses)")
    fit.add_argument("--capacitance-pF", dest="capacitance_pF", type=float, default=None,
                     metavar="PF",
                     help="total membrane capacitance [pF] for recordings in pA "
                          "(alternative to --area-cm2, at c_m = 1 µF/cm²)")
    fit.add_argument("--ljp-mV", dest="ljp_mV", type=float, default=None, metavar="MV",
                     help="liquid-junction potential [mV] to remove from the recorded "
                          "voltage: V = V_recorded − MV (e.g. 14 for a K-gluconate "
                          "internal; default: none — files are never corrected "
                          "implicitly)")
    fit.add_argument("--channel", default=None, metavar="CH",
                     help=".abf: the ADC channel holding the voltage (index or name; "
                          "default 0); .nwb: the electrode (index or name; needed only "
                          "when the file has several). `hhjax sweeps FILE` lists them")
    fit.add_argument("--sweeps", default=None, metavar="SWEEPS",
                     help="comma-separated sweep indices to fit, counted from 0 in the "
                          "file's order (NWB: by sweep_number); with --sweeps only these "
                          "and the --validate sweeps are read, so a file that mixes "
                          "protocols of other lengths works (default: all but the "
                          "--validate ones)")
    fit.add_argument("--t-start", type=float, default=None, metavar="MS",
                     help="first time to use [ms] (default: the recording's start for "
                          "hh, a window around the current steps for cell models)")
    fit.add_argument("--t-end", type=float, default=None, metavar="MS",
                     help="last time to use [ms] (default: the recording's end for hh, "
                          "a window around the current steps for cell models)")
    fit.add_argument("--steps", type=int, default=None, metavar="N",
                     help="Levenberg–Marquardt steps per stage (default 30 for hh, 12 "
                          "for the active stage of a cell model)")
    fit.add_argument("--passive-steps", type=int, default=None, metavar="N",
                     help="cell models: Levenberg–Marquardt steps of the passive stage "
                          "(area, leak) before the search; 0 skips it (default: "
                          "fitting.fit_cell's)")
    fit.add_argument("--search-generations", type=int, default=60, metavar="N",
                     help="cell models: generations of the global search (256 candidate "
                          "models each, scored on spike counts, coincidence factor and "
                          "sub-threshold RMSE) before the local fit; 0 skips it (default 60)")
    fit.add_argument("--search-budget", type=float, default=120.0, metavar="S",
                     help="cell models: time budget of the global search [s] (default "
                          "120; how many generations fit in it depends on the machine, "
                          "so 0 — no limit, --search-generations alone — makes the fit "
                          "reproducible)")
    fit.add_argument("--stage-budget", type=float, default=60.0, metavar="S",
                     help="cell models: time budget [s] of each Levenberg–Marquardt "
                          "stage (the passive one and the local fit after the search; "
                          "default 60; 0: no limit, their step counts alone)")
    fit.add_argument("--search-sweeps", type=int, default=None, metavar="N",
                     help="cell models: the global search scores candidates on at most "
                          "N of the fitted sweeps (default 4: the nearest below "
                          "rheobase and spiking ones from the fewest spikes to the "
                          "most, see fitting.search_sweeps; 0: all of them, slower); "
                          "the local fit uses them all")
    fit.add_argument("--search-dtype", choices=("float32", "float64"), default=None,
                     help="cell models: the float type the global search simulates its "
                          "candidates in (default: the fit's own, float64 unless "
                          "--no-x64; float32 searches about 1.5x faster on a CPU, "
                          "more on most GPUs)")
    fit.add_argument("--checkpoint-every", type=int, default=10, metavar="N",
                     help="write the checkpoint every N steps (default 10)")
    fit.add_argument("--resume", action="store_true",
                     help="continue from DIR/checkpoint.npz of the same fit")
    fit.add_argument("--no-progress", dest="progress", action="store_false",
                     help="no progress bar")
    fit.add_argument("--no-x64", dest="x64", action="store_false",
                     help="run in float32 (default: float64)")
    fit.set_defaults(func=_fit_cmd)

    add_simulate_command(sub)
    add_sweeps_command(sub)
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
    if args.command == "sweeps":
        from hhjax._cli import run_sweeps

        return run_sweeps(args, parser)
    if getattr(args, "starts", 1) < 1:
        parser.error(f"--starts must be >= 1, got {args.starts}")
    try:
        return args.func(args, parser)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
