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
    chunked = hhjax.simulate_population(p, STIM, 30.0, save_every=0.5, chunk_size=3, threads=1)
    assert whole.v.shape == (7, 61)
    # chunks are independent, but XLA:CPU's vectorised loop and its scalar remainder
    # may round differently (a chunk of 3 is all remainder): equal to rounding only
    np.testing.assert_allclose(chunked.v, whole.v, rtol=0, atol=1e-9)
    np.testing.assert_allclose(chunked.final.v, whole.final.v, rtol=0, atol=1e-9)
    # the same chunks split over threads: bit for bit the sequential result
    threaded = hhjax.simulate_population(p, STIM, 30.0, save_every=0.5, chunk_size=3, threads=2)
    np.testing.assert_array_equal(threaded.v, chunked.v)
    np.testing.assert_array_equal(threaded.final.m, chunked.final.m)
    assert threaded.ok.shape == (7,) and bool(jnp.all(threaded.ok))
    one = [hhjax.simulate_population(hhjax.HHParams(g_na=x), STIM, 30.0, save_every=0.5).v for x in g]
    np.testing.assert_allclose(whole.v, np.stack(one), atol=1e-12)
    mem = jax.vmap(lambda x: hhjax.Membrane.hodgkin_huxley(hhjax.HHParams(g_na=x)))(g)
    rm = hhjax.simulate_population(mem, STIM, 30.0, save_every=0.5)
    np.testing.assert_allclose(rm.v, whole.v, atol=1e-9)
    # per-neuron stimuli
    stims = jax.vmap(lambda a: hhjax.StepCurrent(a, 10.0, 40.0))(jnp.full((7,), 10.0))
    rs = hhjax.simulate_population(p, stims, 30.0, save_every=0.5, stimulus_batched=True, chunk_size=4)
    np.testing.assert_allclose(rs.v, whole.v, atol=1e-12)


@pytest.mark.parametrize("scheme", ["exponential_euler", "staggered"])
@pytest.mark.parametrize("save_every", [None, 0.05, 0.5])
def test_saving_only_v_gives_the_same_voltage_and_final_state(scheme, save_every):
    g = jnp.linspace(100.0, 140.0, 5)
    kw = dict(save_every=save_every, scheme=scheme, chunk_size=2, threads=1)
    for model in (hhjax.HHParams(g_na=g),
                  jax.vmap(lambda x: hhjax.Membrane.hodgkin_huxley(hhjax.HHParams(g_na=x)))(g)):
        full = hhjax.simulate_population(model, STIM, 20.0, **kw)
        only = hhjax.simulate_population(model, STIM, 20.0, save="v", **kw)
        n_t = 2001 if save_every is None else int(round(20.0 / save_every)) + 1
        assert only.v.shape == full.v.shape == (5, n_t)
        np.testing.assert_array_equal(only.v, full.v)
        np.testing.assert_array_equal(only.t, full.t)
        for a, b in zip(jax.tree_util.tree_leaves(only.final), jax.tree_util.tree_leaves(full.final)):
            np.testing.assert_array_equal(a, b)
        # the final state is the last saved one
        np.testing.assert_array_equal(full.final.v, full.v[:, -1])
        np.testing.assert_array_equal(only.ok, full.ok)
        if isinstance(model, hhjax.HHParams):
            assert only.state.m is None and only.state.h is None and only.state.n is None
            np.testing.assert_array_equal(full.final.n, full.state.n[:, -1])
        else:
            assert only.state.gates == {}
    # a NaN neuron is flagged without its gates being saved
    y0 = hhjax.steady_state(hhjax.HHParams(), -65.0)
    y0 = eqx.tree_at(lambda y: y.n, y0, jnp.array([float(y0.n), jnp.nan]))
    bad = hhjax.simulate_population(hhjax.HHParams(g_na=jnp.array([120.0, 120.0])), STIM, 5.0,
                                    save="v", throw=False, y0=y0)
    assert bad.ok.tolist() == [True, False]


def test_gradient_with_only_v_saved_matches_the_full_save():
    def loss(g_k, save):
        r = hhjax.simulate_population(hhjax.HHParams(g_k=g_k), STIM, 20.0, save_every=0.5, save=save)
        return jnp.mean(r.v**2)

    np.testing.assert_allclose(jax.grad(loss)(36.0, "v"), jax.grad(loss)(36.0, "state"), rtol=1e-12)


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


def test_shared_rate_exponentials_match_the_rates():
    """The population loop's classic rates (exponentials shared) are the model's rates
    to ~1e-13 relative in float64 (incl. the removable points), f32 rounding in
    float32, with finite gradients at -40 and -55 mV."""
    from hhjax._fast import _classic_rates_shared

    v = np.concatenate([np.linspace(-150.0, 100.0, 2001), -40 + np.logspace(-9, 0, 50),
                        -55 - np.logspace(-9, 0, 50), [-40.0, -55.0]])
    for dtype, rtol in ((jnp.float64, 1e-12), (jnp.float32, 3e-6)):
        p = hhjax.HHParams(temperature=16.3, dtype=dtype)
        vv = jnp.asarray(v, dtype)
        fast, ref = _classic_rates_shared(p, vv), p.rates(vv)
        for k in ref:
            assert fast[k].dtype == dtype
            np.testing.assert_allclose(fast[k], ref[k], rtol=rtol, err_msg=k)
        g = jax.grad(lambda x: sum(jnp.sum(r) for r in _classic_rates_shared(p, x).values()))
        assert bool(jnp.all(jnp.isfinite(g(jnp.asarray([-40.0, -55.0], dtype)))))


def test_staggered_scheme_is_second_order_and_consistent():
    p = hhjax.HHParams()
    stim = hhjax.StepCurrent(10.0, 10.0, 30.0)
    ref = hhjax.simulate(p, stim, t_end=30.0, save_every=0.05,
                         stepsize_controller=__import__("diffrax").PIDController(rtol=1e-10, atol=1e-10))
    errs = []
    for dt in (0.05, 0.025, 0.0125):
        r = hhjax.simulate_population(p, stim, 30.0, dt=dt, save_every=0.05, scheme="staggered")
        assert r.v.shape == ref.v.shape and bool(r.ok)
        errs.append(float(jnp.max(jnp.abs(r.v - ref.v))))
        # the saved gates are synchronised with v (not half a step off)
        np.testing.assert_allclose(r.state.m, ref.m, atol=30 * dt**2)
    ratios = [errs[0] / errs[1], errs[1] / errs[2]]
    assert all(3.0 < x < 5.0 for x in ratios), (errs, ratios)  # error ∝ dt²
    ee = hhjax.simulate_population(p, stim, 30.0, dt=0.0125, save_every=0.05)
    assert errs[2] < 0.1 * float(jnp.max(jnp.abs(ee.v - ref.v)))
    # Membrane path = HHParams path; chunks and threads change nothing; gradients
    mem = hhjax.Membrane.hodgkin_huxley(p)
    a = hhjax.simulate_population(p, stim, 30.0, dt=0.025, save_every=0.5, scheme="staggered")
    b = hhjax.simulate_population(mem, stim, 30.0, dt=0.025, save_every=0.5, scheme="staggered")
    np.testing.assert_allclose(b.v, a.v, atol=1e-9)
    g = jnp.linspace(100.0, 140.0, 5)
    w = hhjax.simulate_population(hhjax.HHParams(g_na=g), stim, 30.0, dt=0.025, save_every=0.5, scheme="staggered")
    c = hhjax.simulate_population(hhjax.HHParams(g_na=g), stim, 30.0, dt=0.025, save_every=0.5,
                                  scheme="staggered", chunk_size=2, threads=2)
    np.testing.assert_allclose(c.v, w.v, atol=1e-9)
    np.testing.assert_array_equal(w.final.v, w.v[:, -1])

    def loss(g_k):
        r = hhjax.simulate_population(hhjax.HHParams(g_k=g_k), stim, 20.0, dt=0.025, save_every=0.5,
                                      scheme="staggered")
        return jnp.mean(r.v**2)

    gr = jax.grad(loss)(36.0)
    h = 1e-4
    np.testing.assert_allclose(gr, (loss(36.0 + h) - loss(36.0 - h)) / (2 * h), rtol=1e-5)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(t_end=50.005), "whole number of `dt`"),
        (dict(t_end=50.0, save_every=0.015), "save_every"),
        (dict(t_end=50.0, save_every=0.3), "divides"),
        (dict(t_end=50.0, dt=0.0), "`dt` must be > 0"),
        (dict(t_end=50.0, chunk_size=0), "chunk_size"),
        (dict(t_end=50.0, scheme="rk4"), "scheme"),
        (dict(t_end=50.0, threads=0), "threads"),
        (dict(t_end=50.0, save="gates"), "`save` must be one of"),
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


@pytest.mark.parametrize("interpolation", ["linear", "previous"])
@pytest.mark.parametrize("shape, chunk, scheme", [
    ((7,), None, "staggered"),                        # current between the knots
    ((7,), 3, "exponential_euler"),                   # ... and on them
    ((2, 3), None, "exponential_euler"),
])
def test_sampled_currents_on_shared_times_take_one_knot_search(monkeypatch, interpolation,
                                                               shape, chunk, scheme):
    """Batched SampledCurrents on one time grid (a recording's sweeps; candidates on
    them) are evaluated with one knot search per step for the whole batch: the
    same traces as each neuron searching its own knots (to rounding), in a 1-D or
    2-D batch, chunked or not; on different grids each neuron searches its own."""
    import hhjax._fast as F

    rng = np.random.default_rng(0)
    n = int(np.prod(shape))
    times = np.round(np.arange(0.0, 20.0, 0.1), 10)
    values = rng.normal(4.0, 6.0, (n, times.size)).cumsum(axis=1) * 0.05
    def batched(ts, vs):  # one SampledCurrent per neuron, stacked (as Recording.stimulus)
        one = [hhjax.SampledCurrent(a, b, interpolation) for a, b in zip(ts, vs)]
        return jax.tree_util.tree_map(lambda *x: jnp.stack(x), *one)

    flat = batched(np.broadcast_to(times, (n, times.size)), values)
    stim = jax.tree_util.tree_map(lambda a: a.reshape(shape + a.shape[1:]), flat)
    assert F._shares_knots(stim, shape)
    params = hhjax.HHParams(g_na=jnp.full(shape, 120.0))
    calls = []
    real = F._shared_knots_current
    monkeypatch.setattr(F, "_shared_knots_current", lambda s: calls.append(1) or real(s))
    kw = dict(save_every=0.1, stimulus_batched=True, chunk_size=chunk, scheme=scheme,
              dt=0.025)
    fast = hhjax.simulate_population(params, stim, 25.0, **kw)
    assert calls  # the shared path ran
    monkeypatch.setattr(F, "_shares_knots", lambda s, b: False)
    calls.clear()
    each = hhjax.simulate_population(params, stim, 25.0, **kw)
    assert not calls
    # (the same formula; the compiler may fuse a multiply-add differently: ulps)
    np.testing.assert_allclose(np.asarray(fast.v), np.asarray(each.v), rtol=1e-10, atol=1e-10)
    assert fast.v.shape == shape + (251,) and float(jnp.max(fast.v)) > 0  # it fires
    # grids that differ between neurons (or a single knot) are not shared
    other = np.broadcast_to(times, (n, times.size)).copy()
    other[-1] *= 1.01
    assert not F._shares_knots(batched(other, values), (n,))
    assert not F._shares_knots(batched(np.zeros((n, 1)), np.ones((n, 1))), (n,))
    assert not F._shares_knots(flat, (n + 1,))  # not batched over this population
    assert not F._shares_knots(hhjax.SampledCurrent(times, values[0]), ())


def test_batched_stimulus_with_shared_params():
    """Scalar parameters with `stimulus_batched=True`: the population is the
    stimulus batch, each neuron as if simulated alone."""
    amps = jnp.array([0.0, 5.0, 12.0])
    stims = jax.vmap(lambda a: hhjax.StepCurrent(a, 5.0, 25.0))(amps)
    res = hhjax.simulate_population(hhjax.HHParams(), stims, 30.0, save_every=0.5, stimulus_batched=True)
    assert res.v.shape == (3, 61)
    for k in range(3):
        one = hhjax.simulate_population(hhjax.HHParams(), hhjax.StepCurrent(float(amps[k]), 5.0, 25.0), 30.0,
                                        save_every=0.5)
        np.testing.assert_allclose(res.v[k], one.v, atol=1e-9)
    assert float(res.v[0].max()) < -60 and float(res.v[2].max()) > 0
    # a 2-D population (parameter × stimulus) with the stimulus batched along both axes
    g = jnp.array([[120.0], [100.0]]) * jnp.ones((2, 3))
    stims2 = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (2,) + a.shape), stims)
    res2 = hhjax.simulate_population(hhjax.HHParams(g_na=g), stims2, 30.0, save_every=0.5,
                                     stimulus_batched=True)
    assert res2.v.shape == (2, 3, 61)
    one = hhjax.simulate_population(hhjax.HHParams(g_na=100.0), hhjax.StepCurrent(12.0, 5.0, 25.0), 30.0,
                                    save_every=0.5)
    np.testing.assert_allclose(res2.v[1, 2], one.v, atol=1e-9)
    with pytest.raises(ValueError, match="must start with the model's batch shape"):
        hhjax.simulate_population(hhjax.HHParams(g_na=jnp.full(2, 120.0)), stims, 30.0, stimulus_batched=True)
    with pytest.raises(ValueError, match="non-empty list"):
        hhjax.simulate_population(hhjax.HHParams(), hhjax.StepCurrent(1.0, 1.0, 2.0),
                                  5.0, devices=[])


SHARD_SCRIPT = r"""
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp, hhjax
assert len(jax.devices()) == 2, jax.devices()
p = hhjax.HHParams(g_na=jnp.linspace(100.0, 140.0, 7))
st = hhjax.StepCurrent(10.0, 10.0, 40.0)
a = hhjax.simulate_population(p, st, 30.0, save_every=0.5)
b = hhjax.simulate_population(p, st, 30.0, save_every=0.5, devices=jax.devices(), chunk_size=2)
assert b.v.shape == (7, 61) and float(jnp.max(jnp.abs(a.v - b.v))) < 1e-9  # rounding only
d1 = jax.devices()[1]
c = hhjax.simulate_population(p, st, 30.0, save_every=0.5, devices=[d1])
assert c.v.devices() == {d1}, c.v.devices()  # one named device: runs there
assert float(jnp.max(jnp.abs(a.v - c.v))) < 1e-9
# a recorded-style current on one time grid (the shared-knot path) split over
# the devices: the single-device numbers
import numpy as np
t = np.round(np.arange(0.0, 30.0, 0.1), 10)
vals = np.random.default_rng(0).normal(0.5, 3.0, (7, t.size)).cumsum(1) * 0.05
rec = jax.tree_util.tree_map(lambda *x: jnp.stack(x),
                             *[hhjax.SampledCurrent(t, v) for v in vals])
a = hhjax.simulate_population(p, rec, 30.0, save_every=0.5, stimulus_batched=True)
b = hhjax.simulate_population(p, rec, 30.0, save_every=0.5, stimulus_batched=True,
                              devices=jax.devices(), chunk_size=2)
assert float(jnp.max(a.v)) > 0 and float(jnp.max(jnp.abs(a.v - b.v))) < 1e-9
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


def test_chunks_are_balanced_and_threads_do_not_change_the_numbers():
    from hhjax._fast import _chunk_for

    # one size for all chunks, whole 16-lane vectors, no chunk above the limit
    assert _chunk_for(1025, 1024) == 528  # not 2 x 1024, half of it padding
    assert _chunk_for(1000, 1024) == 512  # two chunks, so two threads can share them
    assert _chunk_for(100, 1024) == 112 and _chunk_for(10**5, 1024) == 1024
    assert _chunk_for(7, 3) == 3  # small chunks as given
    # a GPU (no threads to share chunks): one chunk of the whole population
    assert _chunk_for(10**6, 10**6, split=False) == 10**6 and _chunk_for(1000, 1024, split=False) == 1008
    for n in (300, 600, 1500, 5000):
        c = _chunk_for(n, 1024)
        k = -(-n // c)
        assert c <= 1024 and c % 16 == 0 and k * c - n < 16 * k
    # a population of two balanced chunks: threads split it, bit for bit the same
    p = hhjax.HHParams(g_na=jnp.linspace(100.0, 140.0, 600))
    one = hhjax.simulate_population(p, STIM, 30.0, save_every=0.5, threads=1)
    two = hhjax.simulate_population(p, STIM, 30.0, save_every=0.5, threads=2)
    np.testing.assert_array_equal(one.v, two.v)
    np.testing.assert_array_equal(one.final.n, two.final.n)


def test_default_chunk_is_the_whole_population_off_a_cpu(monkeypatch):
    """On a GPU (here: the backend reported as one) the default chunk holds the
    whole population, run at once; on a CPU it is 1024 (two threads, two chunks)."""
    from hhjax import _fast

    seen = []
    run = _fast._run
    monkeypatch.setattr(_fast, "_run", lambda *a: seen.append(a[-1]) or run(*a))
    p = hhjax.HHParams(g_na=jnp.linspace(100.0, 140.0, 2000))
    cpu = hhjax.simulate_population(p, STIM, 5.0, save_every=0.5, threads=1)
    monkeypatch.setattr(_fast.jax, "default_backend", lambda: "gpu")
    gpu = hhjax.simulate_population(p, STIM, 5.0, save_every=0.5)
    assert seen == [1008, 2000]
    np.testing.assert_allclose(gpu.v, cpu.v, rtol=0, atol=1e-9)
