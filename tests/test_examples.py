"""Every script in examples/ runs headless at a small size and writes its figure;
the CLI demo runs and writes its PNG."""

import json
import pathlib
import subprocess
import sys

import pytest

from fitting._cli import main as cli_main

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
SMALL_ARGS = {
    "quickstart.py": ["--t-end", "30"],
    "batch_sweep.py": ["--n", "4", "--t-end", "40"],
}


def test_every_example_has_small_args():
    # the seed scenarios (seedNNN_*.py) run in-process in tests/test_seeds*.py, where
    # the same run is also checked against each seed's own method
    # real_cells.py fits the dev-set cells (minutes): its workflow runs in the default
    # suite through `hhjax fit` (tests/fitting/test_cell.py), the script itself in
    # the slow test below
    names = [
        p.name for p in EXAMPLES.glob("*.py")
        if not p.name.startswith("seed") and p.name != "real_cells.py"
    ]
    assert sorted(names) == sorted(SMALL_ARGS)
    seeds = sorted(p.name[:7] for p in EXAMPLES.glob("seed*.py"))
    assert seeds == ["seed000", "seed001", "seed002", "seed003", "seed004"]


@pytest.mark.parametrize("name", sorted(SMALL_ARGS))
def test_example_runs(name, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--out", str(tmp_path), *SMALL_ARGS[name]],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    pngs = list(tmp_path.glob("*.png"))
    assert pngs and all(p.stat().st_size > 10_000 for p in pngs)


@pytest.mark.slow
def test_real_cells_example_quick(shared_dir, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "real_cells.py"), "--quick", "--cell", "axon-5",
         "--data", str(shared_dir / "data"), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "axon-5" / "fit.png").stat().st_size > 10_000
    rows = json.loads((tmp_path / "heldout.json").read_text())
    assert [v["sweep"] for v in rows[0]["validation"]] == [1, 5, 7]
    assert "| axon-5 |" in (tmp_path / "heldout.md").read_text()


def test_cli_simulate(tmp_path, capsys):
    assert cli_main(["simulate", "--out", str(tmp_path), "--t-end", "40"]) == 0
    out = capsys.readouterr().out
    assert "spikes                 2" in out  # onset at 10 ms, 40 ms simulated
    assert (tmp_path / "simulate.png").stat().st_size > 10_000


def test_cli_errors(capsys):
    with pytest.raises(SystemExit):
        cli_main(["simulate", "--t-end", "-1"])
    assert "--t-end must be > 0" in capsys.readouterr().err
    assert cli_main([]) == 2


def test_cli_demo_quick(tmp_path, capsys):
    """`hhjax demo` end to end (short version): fits, prints the table, writes files."""
    assert cli_main(["demo", "--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "worst relative error" in out
    summary = json.loads((tmp_path / "fit.json").read_text())
    truth = summary["true_params"]
    for name, value in summary["params"].items():
        # two short sweeps: every parameter within 3 % of the truth
        assert abs(value / truth[name] - 1) < 0.03, (name, value, truth[name])
        assert summary["stderr"][name] > 0
    assert {"loss", "settings", "versions"} <= set(summary)
    assert (tmp_path / "fit.png").stat().st_size > 20_000


@pytest.mark.slow  # default-suite time (CI budget ~10 min)
def test_cli_fit_roundtrip(tmp_path, capsys):
    """`hhjax fit DATA.npz` on a saved synthetic recording writes fit.json/fit.png."""
    import fitting

    rec = fitting.synthetic_recording(
        fitting.perturbed_params(3, ("g_na", "g_k")), (6.0, 12.0),
        t_off=30.0, t_end=40.0, dt=0.05, seed=3,
    )
    data = tmp_path / "rec.npz"
    rec.save_npz(data)
    out = tmp_path / "out"
    code = cli_main(
        ["fit", str(data), "--fit", "g_na,g_k", "--out", str(out), "--no-progress",
         "--steps", "12"]
    )
    assert code == 0
    summary = json.loads((out / "fit.json").read_text())
    truth = rec.meta["true_params"]
    for name in ("g_na", "g_k"):
        assert abs(summary["params"][name] / truth[name] - 1) < 0.02
    assert (out / "fit.png").exists() and (out / "checkpoint.npz").exists()
    # errors name the fix
    with pytest.raises(SystemExit):
        cli_main(["fit", str(tmp_path / "missing.npz"), "--out", str(out)])
    assert "does not exist" in capsys.readouterr().err


def test_cli_fit_names_the_missing_io_extra(tmp_path, capsys, monkeypatch):
    """A reader that needs the optional `io` extra fails with a one-line usage error
    naming the fix, not a traceback."""
    import hhjax

    def missing(*args, **kwargs):
        raise ImportError('reading .abf files needs pyabf: pip install "hhjax[io]"')

    monkeypatch.setattr(hhjax, "load_recording", missing)
    data = tmp_path / "cell.abf"
    data.write_bytes(b"ABF2")
    with pytest.raises(SystemExit) as exc:
        cli_main(["fit", str(data), "--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    assert 'pip install "hhjax[io]"' in capsys.readouterr().err


def test_cli_help_is_complete(capsys):
    """`hhjax --help` and each subcommand's help: every option documented, with its
    default (unless a flag or required), quantities with their unit in brackets, no
    unrendered '%%'; the top-level help points to the subcommands' help and docs."""
    import argparse

    from fitting._cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert sorted(sub.choices) == ["demo", "fit", "simulate", "sweeps"]
    for name, p in sub.choices.items():
        assert p.description, name
        for action in p._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            what = (name, action.dest)
            assert action.help, what
            if action.option_strings and action.default not in (None, True, False):
                assert "default" in action.help, what
            if action.type is float:
                assert "[" in action.help and "]" in action.help, what  # its unit
    for argv in ([], ["demo"], ["fit"], ["simulate"]):
        with pytest.raises(SystemExit) as exc:
            cli_main([*argv, "--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: hhjax {' '.join(argv)}".rstrip())
        assert "%%" not in out
    cli_main([])
    out = capsys.readouterr().out
    assert "hhjax COMMAND --help" in out and "mkdocs serve" in out


@pytest.mark.parametrize(
    "argv, fix",
    [
        (["--set", "foo=1"], "use one of c_m, g_na"),
        (["--set", "c_m=abc"], "VALUE must be a number, e.g. --set c_m=1.5"),
        (["--bounds", "g_na=1"], "e.g. --bounds g_na=60:240"),
        (["--validate", "0,1"], "leave at least one sweep to fit"),
        (["--sweeps", "0", "--validate", "0"], "remove them from one of the two"),
    ],
)
def test_cli_fit_errors_name_the_fix(tmp_path, capsys, argv, fix):
    import numpy as np

    import hhjax

    t = np.arange(0.0, 20.0, 0.1)
    v, i = np.full((2, t.size), -65.0), np.zeros((2, t.size))
    rec = hhjax.Recording(t, v, i_uA_per_cm2=i)
    rec.save_npz(tmp_path / "rec.npz")
    with pytest.raises(SystemExit) as exc:
        cli_main(["fit", str(tmp_path / "rec.npz"), "--out", str(tmp_path), *argv])
    assert exc.value.code == 2
    assert fix in capsys.readouterr().err


def test_cli_fit_names_the_parameters_whose_stderr_does_not_hold(tmp_path, capsys,
                                                                  monkeypatch):
    """`hhjax fit` (the HH model) lists the parameters `fit` did not report as
    identified under its table, so a ± that does not hold is not read as one."""
    import types

    import numpy as np

    import fitting
    import hhjax

    t = np.arange(0.0, 20.0, 0.1)
    rec = hhjax.Recording(t, np.full((1, t.size), -65.0), i_uA_per_cm2=np.zeros((1, t.size)))
    rec.save_npz(tmp_path / "rec.npz")
    fake = types.SimpleNamespace(
        values={"g_na": 131.3, "g_k": 29.7}, stderr={"g_na": 1.8, "g_k": 0.25},
        identifiable={"g_na": False, "g_k": True}, status="max_steps", rmse=5.3,
        wall_time=1.0, warnings=("g_na is poorly identified by this data (the fit had "
                                 "not converged: ...)",))
    monkeypatch.setattr(fitting, "fit", lambda *a, **k: fake)
    monkeypatch.setattr(fitting, "write_report", lambda res, rec, out, extra=None: {
        "json": out / "fit.json", "png": out / "fit.png"})
    assert cli_main(["fit", str(tmp_path / "rec.npz"), "--fit", "g_na,g_k",
                     "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if "not identified" in ln)
    assert "g_na" in line and "g_k" not in line
