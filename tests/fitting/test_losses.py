"""Losses bound to simulated HH sweeps: values, gradients through the solver against
central finite differences, the spike-time surrogate, and argument errors."""

import warnings

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fitting
import hhjax

DT = 0.05
T_END = 40.0
T = np.arange(int(round(T_END / DT)) + 1) * DT
T_ON, T_OFF = 10.0, 30.0
AMPS = (3.0, 10.0)
G_DATA = 120.0
G_MODEL = 118.0
TIGHT = diffrax.PIDController(rtol=1e-10, atol=1e-10)


def _simulate(g_na, amps, adjoint):
    def one(a):
        return hhjax.simulate(
            hhjax.HHParams(g_na=g_na),
            hhjax.StepCurrent(a, T_ON, T_OFF),
            T_END,
            ts=jnp.asarray(T),
            stepsize_controller=TIGHT,
            adjoint=adjoint,
        ).v

    return jax.vmap(one)(amps)


@pytest.fixture(scope="module")
def sim():
    """(g_na, amps) -> v (S, T), tight tolerance, compiled once."""
    f = jax.jit(lambda g, a: _simulate(g, a, diffrax.RecursiveCheckpointAdjoint()))
    return lambda g, amps=AMPS: f(jnp.asarray(g, float), jnp.asarray(amps, float))


@pytest.fixture(scope="module")
def dsim():
    """(g_na, amps) -> (dv/dg_na (S, T), dv/damps (S, T, S)) by forward mode."""
    f = jax.jit(
        jax.jacfwd(lambda g, a: _simulate(g, a, diffrax.ForwardMode()), argnums=(0, 1))
    )
    return lambda g, amps=AMPS: f(jnp.asarray(g, float), jnp.asarray(amps, float))


@pytest.fixture(scope="module")
def data(sim):
    v = np.asarray(sim(G_DATA))
    i = np.stack([np.where((T >= T_ON) & (T < T_OFF), a, 0.0) for a in AMPS])
    return fitting.SweepData(t=T, v=v, i=i)


@pytest.fixture(scope="module")
def v_model(sim):
    return sim(G_MODEL)


@eqx.filter_jit
def _value(bound, v):
    return bound.value(jnp.asarray(v))


@eqx.filter_jit
def _residuals(bound, v):
    return bound.residuals(jnp.asarray(v))


def _spike_counts(v):
    return [int(hhjax.spike_count(x)) for x in np.asarray(v)]


W_SAMPLES = np.linspace(0.5, 1.5, T.size)

LOSSES = {
    "trace": fitting.TraceLoss(
        window=(5.0, 35.0), sigma=2.0, sweep_weights=(1.0, 2.0), weights=W_SAMPLES
    ),
    "spike_time": fitting.SpikeTimeLoss(),
    "feature": fitting.FeatureLoss(),
    "weighted_sum": fitting.TraceLoss()
    + 0.5 * fitting.SpikeTimeLoss()
    + 0.1 * fitting.FeatureLoss(),
}


def _grad_v(bound, v):
    g = eqx.filter_jit(lambda b, x: jax.grad(b.value)(x))(bound, jnp.asarray(v))
    assert np.all(np.isfinite(np.asarray(g)))
    return g


def test_data_is_sane(data, v_model):
    # the point where gradients are checked: same spike counts as the data
    assert _spike_counts(data.v) == [1, 2]
    assert _spike_counts(v_model) == _spike_counts(data.v)


@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_is_zero_at_the_data_and_positive_elsewhere(name, data, v_model):
    bound = LOSSES[name].bind(data)
    assert float(_value(bound, jnp.asarray(data.v))) == 0.0
    r = _residuals(bound, data.v)
    assert r.ndim == 1 and np.all(np.asarray(r) == 0.0)
    val = float(_value(bound, v_model))
    assert np.isfinite(val) and val > 0.0
    np.testing.assert_allclose(
        val, float(jnp.sum(_residuals(bound, v_model) ** 2)), rtol=1e-12
    )


@pytest.mark.parametrize("name", list(LOSSES))
def test_gradient_matches_finite_differences(name, data, sim, dsim):
    bound = LOSSES[name].bind(data)
    dv_dg, _ = dsim(G_MODEL)
    # reverse mode through the loss, forward mode through the solver (chain rule)
    ad = float(jnp.sum(_grad_v(bound, sim(G_MODEL)) * dv_dg))
    h = 1e-5 * G_MODEL
    fd = (
        float(_value(bound, sim(G_MODEL + h))) - float(_value(bound, sim(G_MODEL - h)))
    ) / (2 * h)
    assert abs(fd) > 1e-6  # the check is not trivially satisfied
    assert abs(ad - fd) <= 1e-3 * abs(fd), (ad, fd)


def test_trace_loss_matches_numpy(data, v_model):
    loss = LOSSES["trace"]
    vm = np.asarray(v_model)
    w = ((T >= 5.0) & (T <= 35.0))[None, :] * np.array([1.0, 2.0])[:, None] * W_SAMPLES
    expected = np.sum(w * (vm - data.v) ** 2) / np.sum(w) / 2.0**2
    got = float(_value(loss.bind(data), v_model))
    assert got == pytest.approx(expected, rel=1e-12)
    # default: the plain mean squared error
    plain = float(_value(fitting.TraceLoss().bind(data), v_model))
    assert plain == pytest.approx(np.mean((vm - data.v) ** 2), rel=1e-12)


def test_trace_loss_ignores_samples_without_weight(data, v_model):
    vm = np.asarray(v_model)
    bump = np.zeros_like(vm)
    bump[1, :] = 5.0  # sweep 1 everywhere
    bump[0, T < 5.0] = 7.0  # sweep 0 before the window
    bound = fitting.TraceLoss(window=(5.0, 35.0), sweep_weights=(1.0, 0.0)).bind(data)
    assert float(_value(bound, jnp.asarray(vm + bump))) == pytest.approx(
        float(_value(bound, jnp.asarray(vm))), rel=1e-12
    )
    # ... while a change inside the window of a weighted sweep does count
    bump[0, (T > 20.0) & (T < 21.0)] = 1.0
    assert float(_value(bound, jnp.asarray(vm + bump))) != pytest.approx(
        float(_value(bound, jnp.asarray(vm))), rel=1e-6
    )


def _np_crossings(t, v, thr=0.0):
    k = np.flatnonzero((v[:-1] < thr) & (v[1:] >= thr))
    return t[k] + (thr - v[k]) / (v[k + 1] - v[k]) * (t[k + 1] - t[k])


def test_spike_time_loss_matches_numpy(data, v_model):
    vm = np.asarray(v_model)
    total, sq = 0, 0.0
    for s in range(vm.shape[0]):
        td, tm = _np_crossings(T, data.v[s]), _np_crossings(T, vm[s])
        assert td.size == tm.size
        total += td.size
        sq += np.sum(((tm - td) / 0.5) ** 2)
    got = float(_value(fitting.SpikeTimeLoss(time_scale=0.5).bind(data), v_model))
    assert got == pytest.approx(sq / total, rel=1e-9)


def test_weighted_sum_composes(data, v_model):
    a, b = fitting.TraceLoss(), fitting.SpikeTimeLoss()
    c = fitting.FeatureLoss(("resting_potential", "ap_peak"))
    combo = 2.0 * (a + b) + 0.5 * c
    assert isinstance(combo, fitting.WeightedSum)
    assert combo.weights == pytest.approx((2.0, 2.0, 0.5))
    va, vb, vc = (float(_value(x.bind(data), v_model)) for x in (a, b, c))
    got = float(_value(combo.bind(data), v_model))
    assert got == pytest.approx(2.0 * va + 2.0 * vb + 0.5 * vc, rel=1e-12)


def test_feature_loss_value(data, v_model):
    loss = fitting.FeatureLoss(("resting_potential", "steady_state_potential"))
    # +1 mV everywhere: each of the 2 x 2 residuals is 1 / sqrt(4)
    shifted = jnp.asarray(data.v) + 1.0
    assert float(_value(loss.bind(data), shifted)) == pytest.approx(1.0, rel=1e-9)
    scaled = fitting.FeatureLoss(
        ("resting_potential", "steady_state_potential"),
        scales={"resting_potential": 0.5},
    )
    # resting residuals are 2 / 2, steady-state ones 1 / 2: (4 + 4 + 1 + 1) / 4
    assert float(_value(scaled.bind(data), shifted)) == pytest.approx(2.5, rel=1e-9)


def test_feature_loss_uses_the_stimulus_window(data):
    bound = fitting.FeatureLoss(("first_spike_latency",)).bind(data)
    np.testing.assert_allclose(np.asarray(bound.windows), [[T_ON, T_OFF]] * 2)
    latency = np.asarray(bound.data_features)[:, 0]
    first = [_np_crossings(T, data.v[s])[0] for s in range(2)]
    np.testing.assert_allclose(latency, np.array(first) - T_ON, rtol=1e-9)


def test_feature_loss_penalises_undefined_features(data):
    # a model that never spikes: latency undefined where the data spikes
    flat = jnp.full(data.v.shape, -65.0)
    loss = fitting.FeatureLoss(("first_spike_latency",), undefined_penalty=3.0)
    assert float(_value(loss.bind(data), flat)) == pytest.approx(9.0, rel=1e-12)
    _grad_v(loss.bind(data), flat)  # finite (NaN-safe where the model is undefined)


# ---- the spike-time surrogate for missed spikes ------------------------------------


def test_missed_spike_gives_a_gradient_towards_spiking(data, sim, dsim):
    bound = fitting.SpikeTimeLoss().bind(data)
    amps = (1.5, AMPS[1])  # sweep 0 is now subthreshold: its data spike is missed
    v = sim(G_DATA, amps)
    assert _spike_counts(v) == [0, 2]
    val = float(_value(bound, v))
    assert val >= 1.0 / 3.0  # at least the unit penalty of one of 3 data spikes
    dv_dg, dv_da = dsim(G_DATA, amps)
    gv = _grad_v(bound, v)
    d_amp0 = float(jnp.sum(gv * dv_da[..., 0]))
    d_gna = float(jnp.sum(gv * dv_dg))
    # more current / more sodium -> more excitable -> lower loss
    assert d_amp0 < 0.0
    assert d_gna < 0.0
    # and they are the derivatives of the loss (finite differences)
    h = 1e-4
    fd_amp = (
        float(_value(bound, sim(G_DATA, (amps[0] + h, amps[1]))))
        - float(_value(bound, sim(G_DATA, (amps[0] - h, amps[1]))))
    ) / (2 * h)
    assert d_amp0 == pytest.approx(fd_amp, rel=1e-3)
    # a plain spike-count-like loss would have no gradient at all here
    assert abs(d_amp0) > 1e-3


def _bumps(centres, t=np.linspace(0.0, 40.0, 801)):
    v = np.full_like(t, -65.0)
    for c in centres:
        v = v + 95.0 * np.exp(-(((t - c) / 0.4) ** 2))
    return t, v


def test_extra_model_spike_is_pushed_towards_the_window_end():
    t, vd = _bumps([10.0])
    sd = fitting.SweepData(t=t, v=vd[None], i=np.zeros((1, t.size)))
    bound = fitting.SpikeTimeLoss().bind(sd)
    _, v20 = _bumps([10.0, 20.0])
    _, v30 = _bumps([10.0, 30.0])
    l20, l30 = (
        float(_value(bound, jnp.asarray(v20[None]))),
        float(_value(bound, jnp.asarray(v30[None]))),
    )
    # penalty 1 + (t_end - t_extra) / (t_end - t_start), one data spike
    tx20 = _np_crossings(t, v20)[1]
    assert l20 == pytest.approx((1 + (40.0 - tx20) / 40.0) ** 2, rel=1e-9)
    assert l30 < l20


# ---- errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "window", [(30.0, 10.0), (5.0, 5.0), (1.0,), "early", (0.0, float("nan"))]
)
def test_bad_windows(window):
    with pytest.raises(ValueError, match="window"):
        fitting.TraceLoss(window=window)
    with pytest.raises(ValueError, match="window"):
        fitting.SpikeTimeLoss(window=window)
    with pytest.raises(ValueError, match="stim_window"):
        fitting.FeatureLoss(stim_window=window)


@pytest.mark.parametrize(
    "make",
    [
        lambda: fitting.TraceLoss(window=(T[100], T[700])),
        lambda: fitting.TraceLoss(sweep_weights=np.array([1.0, 2.0])),
        lambda: fitting.SpikeTimeLoss(window=(T[100], T[700])),
    ],
    ids=["trace-window", "trace-sweep-weights", "spike-window"],
)
def test_numpy_windows_and_weights(make, data, v_model):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = make()
    hash(loss)
    assert np.isfinite(float(_value(loss.bind(data), v_model)))


def test_trace_loss_errors(data):
    with pytest.raises(ValueError, match="sigma"):
        fitting.TraceLoss(sigma=0.0)
    with pytest.raises(ValueError, match="sweep_weights"):
        fitting.TraceLoss(sweep_weights=(1.0, 1.0, 1.0)).bind(data)
    with pytest.raises(ValueError, match="sweep_weights"):
        fitting.TraceLoss(sweep_weights=(1.0, -1.0)).bind(data)
    with pytest.raises(ValueError, match="weights"):
        fitting.TraceLoss(weights=np.ones(7)).bind(data)
    with pytest.raises(ValueError, match="positive weight"):
        fitting.TraceLoss(window=(100.0, 200.0)).bind(data)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(time_scale=0.0),
        dict(voltage_scale=-1.0),
        dict(max_spikes=0),
        dict(max_spikes=2.5),
    ],
)
def test_spike_time_loss_errors(kwargs):
    with pytest.raises(ValueError):
        fitting.SpikeTimeLoss(**kwargs)


def test_feature_loss_errors():
    with pytest.raises(ValueError, match="spike_rate") as e:
        fitting.FeatureLoss(("spike_count", "spike_rate"))
    assert "mean_firing_rate" in str(e.value)  # lists the known names
    with pytest.raises(ValueError):
        fitting.FeatureLoss(())
    with pytest.raises(ValueError, match="ap_peak"):
        fitting.FeatureLoss(("ap_peak",), scales={"ap_peak": 0.0})
    with pytest.raises(ValueError, match="not in `features`"):
        fitting.FeatureLoss(("ap_peak",), scales={"ap_width": 0.1})


def test_weighted_sum_errors():
    with pytest.raises(ValueError, match="weights"):
        fitting.WeightedSum((fitting.TraceLoss(),), (-1.0,))
    with pytest.raises(TypeError):
        fitting.WeightedSum(("trace",), (1.0,))
    with pytest.raises(TypeError):
        fitting.TraceLoss() * fitting.TraceLoss()
    with pytest.raises(ValueError):
        float("nan") * fitting.TraceLoss()


def test_data_spikes_use_hysteresis():
    # a spike, then noise on the slow repolarisation re-crossing the threshold 1 ms
    # later (not a spike), then a second spike after a full repolarisation
    t = np.arange(0.0, 40.0, 0.025)
    v = np.full_like(t, -65.0)
    for t0 in (10.0, 25.0):
        up = (t >= t0) & (t < t0 + 0.5)
        v[up] = -65.0 + 100.0 * (t[up] - t0) / 0.5
        down = (t >= t0 + 0.5) & (t < t0 + 5.0)
        v[down] = 35.0 - 100.0 * (t[down] - t0 - 0.5) / 4.5
    # a wiggle around 0 mV on the first repolarisation
    k = np.nonzero((t > 11.0) & (v < 0.0))[0][0]
    v[k + 1] = 1.0  # below 0 at k, above at k + 1: an upward crossing
    data = fitting.SweepData(t=t, v=v[None, :], i=np.zeros((1, t.size)))
    times = np.asarray(fitting.SpikeTimeLoss().bind(data).data_times)[0]
    np.testing.assert_allclose(times[np.isfinite(times)], [10.325, 25.325], atol=1e-9)
    raw = np.asarray(fitting.SpikeTimeLoss(hysteresis=0.0).bind(data).data_times)[0]
    assert np.sum(np.isfinite(raw)) == 3
    with pytest.raises(ValueError, match="hysteresis"):
        fitting.SpikeTimeLoss(hysteresis=-1.0)


def test_subthreshold_loss_can_leave_out_the_models_spikes():
    """With `model_spikes=True` the loss judges the samples `hhjax.subthreshold_rmse`
    judges (spikes of either trace left out, normalised by the recorded-spike mask);
    a model spike 15 ms off its recorded time costs nothing here (the spike-time
    loss's business) instead of ~100 mV residuals. The mask carries no gradient."""
    t = np.arange(0.0, 100.0, 0.1)
    spike = lambda t0: np.where((t >= t0) & (t < t0 + 1.0), 110.0, 0.0)  # noqa: E731
    v_data = (-65.0 + spike(20.0))[None]
    v_model = (-64.0 + spike(35.0))[None]  # 1 mV off, its spike 15 ms late
    data = fitting.SweepData(t, v_data, np.zeros_like(v_data))
    plain = fitting.SubthresholdLoss().bind(data)
    both = fitting.SubthresholdLoss(model_spikes=True).bind(data)
    keep_data = fitting.SubthresholdLoss().mask(data)[0]
    # plain: the model's spike samples count (110 mV residuals)
    assert float(plain.value(jnp.asarray(v_model))) > 100.0
    # model_spikes: 1 mV² on the samples both masks keep, over the data mask's count
    near_model = (t >= 33.0) & (t <= 45.0)
    expected = np.sum(keep_data & ~near_model) / np.sum(keep_data)
    assert float(both.value(jnp.asarray(v_model))) == pytest.approx(expected, rel=1e-9)
    rmse = hhjax.subthreshold_rmse(t, v_data[0], v_model[0])
    assert rmse == pytest.approx(1.0)
    # no gradient through the mask: d/dc of the value at v_model + c is 2·(kept share)
    g = jax.grad(lambda c: both.value(jnp.asarray(v_model) + c))(0.0)
    assert float(g) == pytest.approx(2.0 * expected, rel=1e-9)
    with pytest.raises(TypeError, match="model_spikes"):
        fitting.SubthresholdLoss(model_spikes="no")
    # with no model spike the two agree
    flat = jnp.asarray(v_data - spike(20.0)[None] + 1.0)
    assert float(both.value(flat)) == pytest.approx(float(plain.value(flat)))
    # an extra model spike (one recorded spike, two model spikes): only the first is
    # left out, the second still costs (firing more cannot hide samples)
    extra = jnp.asarray(v_model + spike(70.0)[None])
    spiky = (t >= 70.0) & (t < 71.0)
    expected_extra = (np.sum(keep_data & ~near_model)
                      + np.sum(spiky) * (111.0**2 - 1.0)) / np.sum(keep_data)
    assert float(both.value(extra)) == pytest.approx(expected_extra, rel=1e-9)
