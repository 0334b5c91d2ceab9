"""Smoke test of bench/run.py: its JSON rows have the documented format (seconds;
`--smoke` uses a coarse reference and tiny sizes, so the numbers mean nothing)."""

import json
import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
REQUIRED = ("benchmark", "impl", "n", "metric", "value", "unit", "peer", "ratio", "meta")


def test_bench_smoke_rows(tmp_path):
    out = tmp_path / "rows.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--sections", "batched,matched",
         "--pin-cpu", "-1", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert rows and all(set(REQUIRED) <= set(r) for r in rows)
    assert (tmp_path / "rows_meta.json").exists()
    benches = {r["benchmark"] for r in rows}
    assert {"batched_throughput", "matched_accuracy_single_trace"} <= benches
    for r in rows:
        assert isinstance(r["n"], int) and r["n"] >= 1
        assert r["value"] is None or (isinstance(r["value"], (int, float)) and math.isfinite(r["value"]))
        if r["ratio"] is not None:
            assert r["peer"] and r["ratio"] > 0
    # hhjax rows name their peer and carry its ratio, measured in the same run
    thr = [r for r in rows if r["benchmark"] == "batched_throughput" and r["impl"].startswith("hhjax")]
    if any(r["impl"].startswith("c_kernel") for r in rows):
        assert thr and all(r["peer"].startswith("c_kernel") and r["ratio"] for r in thr)
    m = [r for r in rows if r["benchmark"] == "matched_accuracy_single_trace" and r["impl"].startswith("hhjax")]
    assert m and all(r["peer"] == "diffrax Tsit5 + PIDController (plain)" for r in m)
    assert all(r["target_error_ms"] in (0.01, 0.3) for r in m)
    assert "| impl |" in proc.stdout  # markdown tables printed


@pytest.mark.parametrize("name", ["neuron", "brian2", "jaxley"])
def test_missing_peer_is_a_note_not_an_error(name, monkeypatch):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import peers
    finally:
        sys.path.pop(0)
    import importlib
    import importlib.util

    real_import, real_find = importlib.import_module, importlib.util.find_spec

    def fake_import(mod, *a, **k):
        if mod == name:
            raise ImportError(f"No module named {name!r}")
        return real_import(mod, *a, **k)

    monkeypatch.setattr(importlib, "import_module", fake_import)
    monkeypatch.setattr(importlib.util, "find_spec", lambda mod, *a: None if mod == name else real_find(mod, *a))
    ok, note = peers.available(name)
    assert not ok and "skipped" in note


def test_cell_probes_builds_its_recordings_and_rejects_unknown_probes():
    """bench/cell_probes.py: a probe's recording is the truth plus what the probe
    adds (here the bridge error R_s·I, 20 MΩ · pA = 0.02 mV/pA, and the hum); the
    held-out summary takes medians and maxima; an unknown probe name is a usage
    error naming the known ones."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import cell_probes
    finally:
        sys.path.pop(0)
    rec, v_true = cell_probes.make_cell(dur=60.0, on=10.0, off=50.0, noise=0.0,
                                        rs_MOhm=20.0, hum_mV=1.0)
    t, i = np.asarray(rec.t_ms), np.asarray(rec.i_samples)
    assert rec.n_sweeps == 10 and v_true.shape == (10, t.size)
    np.testing.assert_allclose(np.asarray(rec.v_mV) - v_true,
                               0.02 * i + np.sin(2 * np.pi * 0.06 * t), atol=1e-9)
    assert i[-1].max() == 350.0 and i[0].min() == -100.0
    m = [{"spike_count_error": e, "subthreshold_rmse_mV": r, "gamma": g}
         for e, r, g in ((0.0, 1.0, float("nan")), (0.2, 3.0, 0.5), (0.1, 2.0, 0.7))]
    assert cell_probes.held_out(m) == {"count_error_median": 0.1, "count_error_max": 0.2,
                                       "subthreshold_rmse_max_mV": 3.0,
                                       "gamma_median": pytest.approx(0.6)}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "cell_probes.py"),
                           "--probes", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown probe(s) ['nope']" in proc.stderr
    assert "bridge-20MOhm" in proc.stderr
