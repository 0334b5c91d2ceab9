"""`hhjax.simulate_population`: the fused fixed-step exponential-Euler loop gives the
numbers of `simulate(..., solver=ExponentialEuler())`, chunking changes nothing,
gradients match finite differences, errors are named."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hhjax

STIM = hhjax.StepCurrent(10.0, 10.0, 40.0)


def test_matches_simulate_exponential_euler():
    p = hhjax.HHParams()
    ref = hhjax.simulate(p, STIM, t_end=50.0, solver=hhjax.ExponentialEuler(), dt0=0.01, save_every=0.1)
    res = hhjax.simulate_population(p, STIM, 50.0, save_every=0.1)
    assert res.v.shape == (501,)
    np.testing.assert_allclose(res.t, ref.t, atol=1e-12)
    # same scheme; simulate's grid also steps onto the stimulus edges (two extra
    # 1e-8 ms steps), which is all that differs
    np.testing.assert_allclose(res.v, ref.v, atol=1e-4)
    np.testing.assert_allclose(res.state.n, ref.n, atol=1e-6)
    assert float(jnp.max(res.v)) > 20 and bool(res.ok)
    # with edges on the grid and no stimulus at all, identical up to rounding
    free = hhjax.simulate(p, None, t_end=20.0, solver=hhjax.ExponentialEuler(), dt0=0.01,
                          save_every=0.1, y0=hhjax.steady_state(p, -50.0))
    res0 = hhjax.simulate_population(p, None, 20.0, save_every=0.1, y0=hhjax.steady_state(p, -50.0))
    np.testing.assert_allclose(res0.v, free.v, atol=1e-10)


def test_batched_chunked_and_membrane_paths_agree():
    g = jnp.linspace(100.0, 140.0, 7)
    p = hhjax.HHParams(g_na=g)
    whole = hhjax.simulate_population(p, STIM, 30.0, save_every=0.5)
    chunked = hhjax.simulate_population(p, STIM, 30.0, save_every=0.5, chunk_size=3)
    assert whole.v.shape == (7, 61)
    np.testing.assert_array_equal(chunked.v, whole.v)
    np.testing.assert_array_equal(chunked.final.v, whole.final.v)
    one = [hhjax.simulate_population(hhjax.HHParams(g_na=x), STIM, 30.0, save_every=0.5).v for x in g]
    np.testing.assert_allclose(whole.v, np.stack(one), atol=1e-12)
    mem = jax.vmap(lambda x: hhjax.Membrane.hodgkin_huxley(hhjax.HHParams(g_na=x)))(g)
    rm = hhjax.simulate_population(mem, STIM, 30.0, save_every=0.5)
    np.testing.assert_allclose(rm.v, whole.v, atol=1e-9)
    # per-neuron stimuli
    stims = jax.vmap(lambda a: hhjax.StepCurrent(a, 10.0, 40.0))(jnp.full((7,), 10.0))
    rs = hhjax.simulate_population(p, stims, 30.0, save_every=0.5, stimulus_batched=True, chunk_size=4)
    np.testing.assert_allclose(rs.v, whole.v, atol=1e-12)


def test_gradient_matches_finite_differences():
    def loss(g_k):
        r = hhjax.simulate_population(hhjax.HHParams(g_k=g_k), STIM, 20.0, save_every=0.5)
        return jnp.mean(r.v**2)

    g = jax.grad(loss)(36.0)
    h = 1e-4
    fd = (loss(36.0 + h) - loss(36.0 - h)) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-5)


def test_float32_follows_inputs_and_stays_close():
    p32 = hhjax.HHParams(dtype=jnp.float32)
    r32 = hhjax.simulate_population(p32, hhjax.StepCurrent(10.0, 10.0, 40.0, dtype=jnp.float32), 50.0, save_every=0.1)
    r64 = hhjax.simulate_population(hhjax.HHParams(), STIM, 50.0, save_every=0.1)
    assert r32.v.dtype == jnp.float32
    # same spikes (to a few µs) in single precision
    s32 = np.asarray(hhjax.crossing_times(r32.t, r32.v, 0.0))
    s64 = np.asarray(hhjax.crossing_times(r64.t, r64.v, 0.0))
    np.testing.assert_allclose(s32[np.isfinite(s64)], s64[np.isfinite(s64)], atol=0.02)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(t_end=50.005), "whole number of `dt`"),
        (dict(t_end=50.0, save_every=0.015), "save_every"),
        (dict(t_end=50.0, save_every=0.3), "divides"),
        (dict(t_end=50.0, dt=0.0), "`dt` must be > 0"),
        (dict(t_end=50.0, chunk_size=0), "chunk_size"),
    ],
)
def test_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        hhjax.simulate_population(hhjax.HHParams(), STIM, **kw)


def test_noise_and_nonfinite_are_reported(getkey):
    with pytest.raises(ValueError, match="noise"):
        hhjax.simulate_population(hhjax.HHParams(), hhjax.WhiteNoiseCurrent(1.0, getkey()), 10.0)
    with pytest.raises(TypeError, match="HHParams"):
        hhjax.simulate_population("hh", STIM, 10.0)
    bad = hhjax.HHParams(c_m=jnp.array([1.0, 1.0]))
    bad = eqx.tree_at(lambda q: q.c_m, bad, jnp.array([1.0, jnp.nan]))
    with pytest.raises(hhjax.SimulationError, match="1 neuron"):
        hhjax.simulate_population(bad, STIM, 5.0, y0=hhjax.steady_state(hhjax.HHParams(), -65.0))
    res = hhjax.simulate_population(bad, STIM, 5.0, y0=hhjax.steady_state(hhjax.HHParams(), -65.0), throw=False)
    assert res.ok.tolist() == [True, False]


SHARD_SCRIPT = r"""
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp, hhjax
assert len(jax.devices()) == 2, jax.devices()
p = hhjax.HHParams(g_na=jnp.linspace(100.0, 140.0, 7))
st = hhjax.StepCurrent(10.0, 10.0, 40.0)
a = hhjax.simulate_population(p, st, 30.0, save_every=0.5)
b = hhjax.simulate_population(p, st, 30.0, save_every=0.5, devices=jax.devices(), chunk_size=2)
assert b.v.shape == (7, 61) and float(jnp.max(jnp.abs(a.v - b.v))) == 0.0
print("sharded ok")
"""


def test_sharded_over_two_cpu_devices_matches_one_device():
    """The population split over 2 (forced host) devices with shard_map gives the
    single-device numbers; run in a subprocess since the device count is fixed at
    JAX start-up."""
    import os
    import pathlib
    import subprocess
    import sys

    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    root = pathlib.Path(__file__).resolve().parent.parent
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", SHARD_SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "sharded ok" in proc.stdout
