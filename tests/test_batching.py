"""Batching with jax.vmap (equal to a Python loop), dtypes (float32 in -> float32 out),
and the package leaving `jax.config` alone."""

import ast
import os
import pathlib
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hhjax

REPO = pathlib.Path(__file__).resolve().parent.parent
PKG = REPO / "hhjax"

T_END = 20.0
SAVE = 0.05
STIM = hhjax.StepCurrent(10.0, 2.0, 15.0)
P = hhjax.HHParams()
TOL = 1e-10


def _run(params, stim=STIM, y0=None):
    return hhjax.simulate(params, stim, t_end=T_END, save_every=SAVE, y0=y0)


def _assert_loop_equal(batched_v, loop_vs):
    batched_v = np.asarray(batched_v)
    assert batched_v.shape == (len(loop_vs), int(round(T_END / SAVE)) + 1)
    for i, v in enumerate(loop_vs):
        np.testing.assert_allclose(batched_v[i], np.asarray(v), rtol=0, atol=TOL)


def _assert_distinct(batched_v):
    """The batch members really differ (so the comparison is not vacuous)."""
    v = np.asarray(batched_v)
    for i in range(1, v.shape[0]):
        assert np.max(np.abs(v[i] - v[0])) > 1.0


# --------------------------------------------------------------------------------------
# vmap == loop


def test_vmap_over_params_constructed_inside():
    g_na = jnp.array([60.0, 120.0, 160.0])

    def one(g):
        return _run(hhjax.HHParams(g_na=g)).v

    batched = jax.jit(jax.vmap(one))(g_na)
    _assert_loop_equal(batched, [_run(hhjax.HHParams(g_na=float(g))).v for g in g_na])
    _assert_distinct(batched)


def test_vmap_over_batched_params_with_in_axes():
    g_k = np.array([30.0, 36.0, 45.0])
    e_leak = np.array([-54.387, -50.0, -60.0])
    params = hhjax.HHParams(g_k=g_k, e_leak=e_leak)
    assert params.g_k.shape == (3,) and params.c_m.shape == ()
    # map over the batched fields only
    in_axes = jax.tree_util.tree_map(lambda x: 0 if jnp.ndim(x) else None, params)
    batched = jax.jit(jax.vmap(lambda p: _run(p).v, in_axes=(in_axes,)))(params)
    loop = [_run(hhjax.HHParams(g_k=g, e_leak=e)).v for g, e in zip(g_k, e_leak)]
    _assert_loop_equal(batched, loop)
    _assert_distinct(batched)


def test_vmap_over_stimulus_amplitudes():
    amplitudes = jnp.array([0.0, 5.0, 20.0])

    def one(a):
        return _run(P, hhjax.StepCurrent(a, 2.0, 15.0)).v

    batched = jax.jit(jax.vmap(one))(amplitudes)
    loop = [_run(P, hhjax.StepCurrent(float(a), 2.0, 15.0)).v for a in amplitudes]
    _assert_loop_equal(batched, loop)
    _assert_distinct(batched)
    # amplitude 0 stays at rest; 20 uA/cm^2 fires
    assert np.ptp(np.asarray(batched[0])) < 1e-3
    assert float(jnp.max(batched[2])) > 20.0


def test_vmap_over_a_batched_stimulus():
    stims = hhjax.StepCurrent(
        jnp.array([3.0, 8.0, 12.0]),
        jnp.array([1.0, 2.0, 5.0]),
        jnp.array([10.0, 15.0, 18.0]),
    )
    batched = jax.jit(jax.vmap(lambda s: _run(P, s).v))(stims)
    loop = [
        _run(P, hhjax.StepCurrent(a, on, off)).v
        for a, on, off in [(3.0, 1.0, 10.0), (8.0, 2.0, 15.0), (12.0, 5.0, 18.0)]
    ]
    _assert_loop_equal(batched, loop)


def test_vmap_over_initial_states():
    rest = hhjax.resting_state(P)
    v0 = jnp.array([-75.0, -65.0, -55.0, -40.0])
    y0 = hhjax.HHState(
        v=v0,
        m=jnp.full(4, rest.m),
        h=jnp.full(4, rest.h),
        n=jnp.full(4, rest.n),
    )
    batched = jax.jit(jax.vmap(lambda y: _run(P, y0=y).v))(y0)
    loop = [
        _run(P, y0=hhjax.HHState(v=float(v), m=rest.m, h=rest.h, n=rest.n)).v
        for v in v0
    ]
    _assert_loop_equal(batched, loop)
    np.testing.assert_array_equal(np.asarray(batched[:, 0]), np.asarray(v0))


def test_vmap_of_spike_times():
    amplitudes = jnp.array([0.0, 10.0, 30.0])

    def one(a):
        return hhjax.spike_times(_run(P, hhjax.StepCurrent(a, 2.0, 15.0)), max_spikes=5)

    batched = jax.jit(jax.vmap(one))(amplitudes)
    assert batched.shape == (3, 5)
    for i, a in enumerate(np.asarray(amplitudes)):
        loop = hhjax.spike_times(
            _run(P, hhjax.StepCurrent(float(a), 2.0, 15.0)), max_spikes=5
        )
        np.testing.assert_allclose(np.asarray(batched[i]), np.asarray(loop), atol=TOL)
    counts = np.sum(np.isfinite(np.asarray(batched)), axis=1)
    assert counts[0] == 0 and counts[2] > counts[1] >= 1


# --------------------------------------------------------------------------------------
# dtypes

F32 = jnp.float32


@pytest.fixture(scope="module")
def float32_result():
    params = hhjax.HHParams(dtype=F32)
    stim = hhjax.StepCurrent(np.float32(10.0), np.float32(2.0), np.float32(15.0))
    return hhjax.simulate(params, stim, t_end=T_END, save_every=SAVE)


def test_float32_params_and_stimulus_give_float32(float32_result):
    res = float32_result
    params = hhjax.HHParams(dtype=F32)
    assert all(
        getattr(params, f).dtype == F32 for f in ("c_m", "g_na", "e_leak", "q10")
    )
    for x in (res.t, res.v, res.m, res.h, res.n, res.i_ion, res.i_stim):
        assert x.dtype == F32, x.dtype
    assert hhjax.spike_times(res).dtype == F32
    assert bool(res.successful)


def test_float32_agrees_with_float64(float32_result):
    res32 = float32_result
    res64 = _run(P)
    st32 = np.asarray(hhjax.spike_times(res32), np.float64)
    st64 = np.asarray(hhjax.spike_times(res64))
    np.testing.assert_array_equal(np.isfinite(st32), np.isfinite(st64))
    assert np.sum(np.isfinite(st64)) >= 1
    fin = np.isfinite(st64)
    np.testing.assert_allclose(st32[fin], st64[fin], atol=0.02)


def test_float32_exponential_euler_and_vmap():
    params = hhjax.HHParams(dtype=F32)

    def one(a):
        stim = hhjax.StepCurrent(a, np.float32(2.0), np.float32(15.0))
        res = hhjax.simulate(
            params, stim, t_end=T_END, solver=hhjax.ExponentialEuler(), save_every=SAVE
        )
        return res.v, hhjax.spike_times(res, max_spikes=4)

    v, spikes = jax.jit(jax.vmap(one))(jnp.array([0.0, 10.0], F32))
    assert v.dtype == F32 and spikes.dtype == F32
    assert v.shape == (2, int(round(T_END / SAVE)) + 1)
    assert np.all(np.isfinite(np.asarray(v)))


def test_float64_default_under_x64():
    assert P.dtype == jnp.float64
    assert _run(P).v.dtype == jnp.float64


# --------------------------------------------------------------------------------------
# jax.config is left alone


def _importable_packages():
    """hhjax, its submodules, and any other top-level package of the repository."""
    names = ["hhjax"] + sorted(
        f"hhjax.{p.stem}" for p in PKG.glob("*.py") if p.stem != "__init__"
    )
    for d in sorted(REPO.iterdir()):
        if (
            d.is_dir()
            and (d / "__init__.py").exists()
            and d.name not in ("hhjax", "tests")
        ):
            names.append(d.name)
    return names


def test_import_does_not_enable_x64():
    code = textwrap.dedent(
        f"""
        import importlib
        import jax
        import jax.numpy as jnp
        assert not jax.config.jax_enable_x64, "x64 on before import"
        for name in {_importable_packages()!r}:
            importlib.import_module(name)
            assert not jax.config.jax_enable_x64, f"import {{name}} enabled x64"
        import hhjax
        res = hhjax.simulate(
            hhjax.HHParams(), hhjax.StepCurrent(10.0, 1.0, 4.0), t_end=5.0,
            solver=hhjax.ExponentialEuler(), save_every=0.5,
        )
        assert not jax.config.jax_enable_x64, "simulate enabled x64"
        assert res.v.dtype == jnp.float32, res.v.dtype
        assert bool(res.successful)
        print("OK", res.v.dtype)
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("JAX_")}
    env["JAX_PLATFORMS"] = "cpu"
    env["MPLBACKEND"] = "Agg"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "OK float32" in proc.stdout


def _config_uses(path):
    """Line numbers of `jax.config` / `config.update` / `jax_enable_x64` in code."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in (
            "config",
            "jax_enable_x64",
        ):
            hits.append(node.lineno)
        if isinstance(node, ast.ImportFrom) and node.module and "config" in node.module:
            hits.append(node.lineno)
        if isinstance(node, ast.Constant) and node.value == "jax_enable_x64":
            hits.append(node.lineno)
    return hits


def test_library_source_never_touches_jax_config():
    sources = sorted(PKG.rglob("*.py"))
    assert sources
    for path in sources:
        text = path.read_text(encoding="utf-8")
        if path.name == "_cli.py":
            # the command-line program may switch on x64 at its own start, but only
            # inside a function run by `main`, never at import
            tree = ast.parse(text)
            for stmt in tree.body:
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                assert not _config_uses_in(stmt), (path, stmt.lineno)
            continue
        assert "jax.config" not in text, path
        assert "jax_enable_x64" not in text, path
        assert not _config_uses(path), path


def _config_uses_in(node):
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and sub.attr in ("config", "jax_enable_x64"):
            return True
        if isinstance(sub, ast.Constant) and sub.value == "jax_enable_x64":
            return True
    return False
