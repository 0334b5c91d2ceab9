"""The `hhjax simulate` and `hhjax sweeps` subcommands (no fitting).

The `hhjax` program itself lives in `fitting._cli` (it adds `demo` and `fit`, which
need the fitting package); this module registers its subcommand there, so `hhjax`
never imports `fitting`."""

from __future__ import annotations

import argparse
import pathlib
import sys
import time


def _simulate_cmd(args: argparse.Namespace) -> int:
    import jax
    import numpy as np

    if args.x64:
        jax.config.update("jax_enable_x64", True)  # CLI program start, not the library

    import hhjax

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    params = hhjax.HHParams()
    stim = hhjax.StepCurrent(
        amplitude=args.amplitude, t_on=args.t_on, t_off=args.t_off
    )
    t0 = time.perf_counter()
    res = hhjax.simulate(params, stim, t_end=args.t_end)
    res.v.block_until_ready()
    elapsed = time.perf_counter() - t0
    spikes = np.asarray(hhjax.spike_times(res))
    spikes = spikes[np.isfinite(spikes)]
    rest = hhjax.resting_state(params)
    print("hhjax simulate: classic Hodgkin–Huxley neuron (modern convention)")
    print(f"  resting potential      {float(rest.v):.3f} mV")
    print(
        f"  stimulus               {args.amplitude} µA/cm² from {args.t_on} to "
        f"{args.t_off} ms, {args.t_end} ms simulated"
    )
    print("  solver                 Tsit5, PID rtol=atol=1e-6, steps land on edges")
    print(f"  solver steps           {int(res.stats['num_steps'])}")
    print(f"  spikes                 {spikes.size}")
    print(f"  spike times [ms]       {np.array2string(spikes, precision=3)}")
    if spikes.size > 1:
        print(f"  mean ISI               {np.mean(np.diff(spikes)):.3f} ms")
    print(f"  wall time (incl. compile) {elapsed:.2f} s, dtype {res.v.dtype}")
    fig = hhjax.plot_trace(res, title="hhjax simulate: classic HH, step current")
    png = out / "simulate.png"
    fig.savefig(png, dpi=110)
    print(f"  figure                 {png}")
    return 0


def add_simulate_command(sub) -> argparse.ArgumentParser:
    """Register `simulate` on an argparse subparsers object."""
    demo = sub.add_parser(
        "simulate",
        help="simulate the classic HH neuron under a step current and write a figure",
        description=(
            "Simulate the classic Hodgkin–Huxley neuron (modern convention) under a "
            "step current, print its spike times and write DIR/simulate.png. "
            "Units: µA/cm², ms, mV."
        ),
    )
    demo.add_argument("--out", default=".", metavar="DIR", help="output folder (default: .)")
    demo.add_argument("--amplitude", type=float, default=10.0, metavar="UA_CM2",
                      help="step amplitude [µA/cm²] (default 10)")
    demo.add_argument("--t-on", type=float, default=10.0, metavar="MS",
                      help="step onset [ms] (default 10)")
    demo.add_argument("--t-off", type=float, default=90.0, metavar="MS",
                      help="step offset [ms] (default 90)")
    demo.add_argument("--t-end", type=float, default=100.0, metavar="MS",
                      help="simulated time [ms] (default 100)")
    demo.add_argument(
        "--no-x64",
        dest="x64",
        action="store_false",
        help="run in float32 (default: float64)",
    )
    demo.set_defaults(func=run_simulate)
    return demo


def run_simulate(args: argparse.Namespace, parser=None) -> int:
    """Validate and run `hhjax simulate`."""
    def fail(msg):
        if parser is not None:
            parser.error(msg)
        raise SystemExit(f"hhjax simulate: error: {msg}")

    if not args.t_end > 0:
        fail(f"--t-end must be > 0 ms, got {args.t_end}; e.g. --t-end 100")
    if not args.t_off > args.t_on:
        fail(f"--t-off must be > --t-on, got --t-on {args.t_on} and --t-off "
             f"{args.t_off}; e.g. --t-on 10 --t-off 90")
    return _simulate_cmd(args)


def channel_arg(text: str | None) -> int | str | None:
    """A `--channel` value: an index (digits) or a name."""
    return int(text) if text is not None and text.isdigit() else text


def _fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def run_sweeps(args: argparse.Namespace, parser=None) -> int:
    """Run `hhjax sweeps FILE`: one line per sweep (or JSON with `--json`)."""
    import json

    import hhjax

    path = pathlib.Path(args.recording)
    try:
        rows = hhjax.list_sweeps(path, channel=channel_arg(args.channel),
                                 threshold_mV=args.threshold)
    except (ValueError, OSError, ImportError) as e:
        msg = f"could not read {path}: {e}"
        if parser is not None:
            parser.error(msg)
        raise SystemExit(f"hhjax sweeps: error: {msg}") from None
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    unit = next((r["current_unit"] for r in rows if r["current_unit"]), None)
    unit = {"pA": "pA", "uA_per_cm2": "µA/cm²"}.get(unit, "-")
    print(f"{path.name}: {len(rows)} sweep(s); spikes = upward crossings of "
          f"{args.threshold:g} mV; current in {unit}")
    print(f"{'index':>5}  {'name':<14} {'sweep#':>6} {'samples':>8} {'dt ms':>7} "
          f"{'dur ms':>8} {'V start':>8} {'I start':>8} {'I min':>8} {'I max':>8} "
          f"{'spikes':>6}  description")
    for r in rows:
        if r["error"]:
            print(f"{r['index']:>5}  {str(r['name'])[:14]:<14} "
                  f"{_fmt(r['sweep_number'], 'd'):>6} cannot be read: {r['error']}")
            continue
        print(f"{r['index']:>5}  {str(r['name'])[:14]:<14} {_fmt(r['sweep_number'], 'd'):>6} "
              f"{r['n_samples']:>8} {r['dt_ms']:>7.4g} {r['duration_ms']:>8.6g} "
              f"{r['v_start_mV']:>8.2f} {_fmt(r['i_start'], '.4g'):>8} "
              f"{_fmt(r['i_min'], '.4g'):>8} {_fmt(r['i_max'], '.4g'):>8} "
              f"{r['n_spikes']:>6}  {r['description'] or ''}")
    return 0


def add_sweeps_command(sub) -> argparse.ArgumentParser:
    """Register `sweeps` on an argparse subparsers object."""
    cmd = sub.add_parser(
        "sweeps",
        help="list the sweeps of a recording (.abf, .nwb, .npz, .csv) to choose "
             "--sweeps and --validate",
        description=(
            "Print one line per sweep of a recording: its index (what `hhjax fit "
            "--sweeps/--validate` and hhjax.load_recording(sweeps=) take), name and "
            "sweep number (NWB), samples, spacing, duration, the potential at its "
            "start [mV], the current at its start, minimum and maximum (pA, or µA/cm² "
            "for a membrane patch), and its spike count. Reads files whose sweeps "
            "differ in length sweep by sweep."
        ),
    )
    cmd.add_argument("recording", metavar="RECORDING", help="the recording file")
    cmd.add_argument("--channel", default=None, metavar="CH",
                     help=".abf: the voltage ADC channel (index or name); .nwb: the "
                          "electrode (needed only when the file has several)")
    cmd.add_argument("--threshold", type=float, default=-20.0, metavar="MV",
                     help="spike threshold [mV] (default −20)")
    cmd.add_argument("--json", action="store_true", help="print the rows as JSON")
    cmd.set_defaults(func=run_sweeps)
    return cmd


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hhjax-simulate",
        description="hhjax: differentiable Hodgkin–Huxley simulation in JAX.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_simulate_command(sub)
    add_sweeps_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "sweeps":
        return run_sweeps(args, parser)
    return run_simulate(args, parser)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
