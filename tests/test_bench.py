"""Smoke test of bench/run.py: its JSON rows have the documented format (seconds;
`--smoke` uses a coarse reference and tiny sizes, so the numbers mean nothing)."""

import json
import math
import pathlib
import subprocess
import sys

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
