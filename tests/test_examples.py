"""Every script in examples/ runs headless at a small size and writes its figure;
the CLI demo runs and writes its PNG."""

import pathlib
import subprocess
import sys

import pytest

from hhjax._cli import main as cli_main

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
SMALL_ARGS = {
    "quickstart.py": ["--t-end", "30"],
    "batch_sweep.py": ["--n", "4", "--t-end", "40"],
}


def test_every_example_has_small_args():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(SMALL_ARGS)


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


def test_cli_demo(tmp_path, capsys):
    assert cli_main(["demo", "--out", str(tmp_path), "--t-end", "40"]) == 0
    out = capsys.readouterr().out
    assert "spikes                 2" in out  # onset at 10 ms, 40 ms simulated
    assert (tmp_path / "demo.png").stat().st_size > 10_000


def test_cli_errors(capsys):
    with pytest.raises(SystemExit):
        cli_main(["demo", "--t-end", "-1"])
    assert "--t-end must be > 0" in capsys.readouterr().err
    assert cli_main([]) == 2
