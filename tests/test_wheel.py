"""The newcomer's path from a built wheel: build hhjax's wheel, install it into a
fresh virtual environment, and run `hhjax demo` and the README's "Ten lines" code
block verbatim there.

The venv sees the system site-packages (`--system-site-packages`), so JAX and the
other dependencies are not downloaded, and `pip install --no-index` proves they are
satisfied without an index. hhjax itself must come from the wheel, not from an
editable install of this checkout: the programs run from a temporary folder outside
the repository, and the test checks that `hhjax.__file__` and `fitting.__file__` lie
in the venv's site-packages.

Building the wheel needs hatchling: installed (then the build runs without
isolation) or from the package index (pip's isolated build). `python -m pytest -m slow
tests/test_wheel.py` runs the wheel test (~70 s on a 2-core CPU, most of it the quick
demo's fit); the check that the README block is found runs by default.
"""

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent


def readme_ten_lines() -> str:
    """The first ```python block under the README's "## Ten lines" heading, verbatim."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Ten lines\n", 1)
    assert len(section) == 2, 'README.md has no "## Ten lines" section'
    section = section[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)\n```", section, re.S)
    assert match, 'no ```python block under "## Ten lines"'
    return match.group(1) + "\n"


def _run(cmd, cwd, env, timeout=600):
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, (
        f"{' '.join(map(str, cmd))} exited with {proc.returncode}\n"
        f"--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-6000:]}"
    )
    return proc


def test_readme_block_is_found():
    code = readme_ten_lines()
    assert code.startswith("import jax\n") and "hhjax.simulate(" in code
    assert "savefig(" in code


@pytest.mark.slow
def test_wheel_in_fresh_venv_runs_demo_and_readme(tmp_path):
    if not all(importlib.util.find_spec(m) for m in ("venv", "pip")):
        pytest.skip("needs the venv module and pip")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["MPLBACKEND"] = "Agg"

    # 1. the wheel
    wheels = tmp_path / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", wheels, REPO]
    if importlib.util.find_spec("hatchling") is not None:
        build.insert(4, "--no-build-isolation")  # offline: the installed backend
    _run(build, tmp_path, env)
    (wheel,) = wheels.glob("hhjax-*.whl")

    # 2. a fresh venv (sharing the system site-packages for the dependencies); pip
    #    is the system's, running inside the venv, so it installs there
    venv = tmp_path / "venv"
    _run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv],
        tmp_path, env,
    )
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / ("python.exe" if os.name == "nt" else "python")
    _run([python, "-m", "pip", "install", "--no-index", "--no-cache-dir", wheel],
         tmp_path, env)

    # 3. run outside the repository: hhjax and fitting come from the venv
    work = tmp_path / "work"
    work.mkdir()
    purelib = _run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        work, env,
    ).stdout.strip()
    where = _run(
        [python, "-c",
         "import hhjax, fitting; print(hhjax.__file__, fitting.__file__)"],
        work, env,
    ).stdout.split()
    site = pathlib.Path(purelib).resolve()
    assert site.is_relative_to(venv.resolve())
    for path in where:
        assert pathlib.Path(path).resolve().is_relative_to(site), (path, site)

    # `hhjax demo` (quick) through the venv's console script
    hhjax_cmd = bindir / ("hhjax.exe" if os.name == "nt" else "hhjax")
    _run([hhjax_cmd, "--help"], work, env)
    demo = _run(
        [hhjax_cmd, "demo", "--quick", "--no-progress", "--out", "demo"], work, env
    )
    assert "worst relative error" in demo.stdout
    for name in ("fit.json", "fit.png", "demo_recording.npz"):
        assert (work / "demo" / name).stat().st_size > 1_000, name

    # the README's quick start, verbatim, then a few lines that print its results
    code = readme_ten_lines()
    script = work / "readme_ten_lines.py"
    script.write_text(
        code
        + "\n# appended by tests/test_wheel.py: report the block's results\n"
        "import numpy as _np\n"
        "_s = _np.asarray(hhjax.spike_times(res, threshold=0.0))\n"
        "print('SPIKES', ' '.join(f'{x:.3f}' for x in _s[_np.isfinite(_s)]))\n"
        "print('HHJAX', hhjax.__file__)\n",
        encoding="utf-8",
    )
    proc = _run([python, script], work, env)
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    assert pathlib.Path(lines["HHJAX"].strip()).resolve().is_relative_to(site)
    spikes = [float(x) for x in lines["SPIKES"].split()]
    assert len(spikes) >= 2 and all(10.0 < s < 100.0 for s in spikes)
    # the spike times the README's comment shows: spike_times(...)  # [11.901, …
    shown = re.search(r"spike_times\(.*#\s*\[([-\d.]+), ([-\d.]+)", code)
    assert shown, "the README's spike_times line lost its comment"
    assert [f"{s:.3f}" for s in spikes[:2]] == [shown.group(1), shown.group(2)]
    assert (work / "trace.png").stat().st_size > 10_000
