"""`hhjax.trace_features`: against an independent NumPy computation, on a synthetic
trace with exact answers, under jit/vmap, and gradients vs finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hhjax

WINDOW = (10.0, 90.0)

# One compilation per call structure; much faster than op-by-op dispatch. The
# threshold and the windows are traced arguments here.
features = jax.jit(hhjax.trace_features, static_argnames=("max_spikes", "newton_steps"))


@pytest.fixture(scope="module")
def spiking():
    return hhjax.simulate(hhjax.HHParams(), hhjax.StepCurrent(10.0, 10.0, 90.0), 100.0)


@pytest.fixture(scope="module")
def subthreshold():
    return hhjax.simulate(hhjax.HHParams(), hhjax.StepCurrent(2.0, 10.0, 90.0), 100.0)


@pytest.fixture(scope="module")
def strong():
    return hhjax.simulate(hhjax.HHParams(), hhjax.StepCurrent(20.0, 10.0, 90.0), 100.0)


# --------------------------------------------------------------------------------------
# Independent reference: loops over NumPy arrays, linear interpolation.
# --------------------------------------------------------------------------------------


def _interp_cross(t, v, k, level):
    return t[k] + (level - v[k]) / (v[k + 1] - v[k]) * (t[k + 1] - t[k])


def numpy_features(t, v, threshold=0.0, window=None, max_spikes=50):
    t = np.asarray(t, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    if window is None:
        on, off = t[0], t[-1]
        rest = v[t <= t[0] + 0.1 * (t[-1] - t[0])].mean()
    else:
        on, off = window
        rest = v[t < on].mean()
    dur = off - on
    steady = v[(t >= off - 0.1 * dur) & (t <= off)].mean()
    ups_all = [k for k in range(len(v) - 1) if v[k] < threshold <= v[k + 1]]
    ups = [k for k in ups_all if on <= t[k] < off]
    count = len(ups)
    ups = ups[:max_spikes]
    times = np.array([_interp_cross(t, v, k, threshold) for k in ups])
    peaks, widths, troughs = [], [], []
    for k in ups:
        later = [kk for kk in ups_all if kk > k]
        end = later[0] if later else len(v) - 1  # last sample of the segment
        seg = np.arange(k + 1, end + 1)
        peaks.append(v[seg].max())
        downs = [d for d in range(k + 1, end) if v[d] >= threshold > v[d + 1]]
        if downs:
            d = downs[0]
            t_down = t[d] + (v[d] - threshold) / (v[d] - v[d + 1]) * (t[d + 1] - t[d])
            widths.append(t_down - _interp_cross(t, v, k, threshold))
        in_win = seg[t[seg] <= off]
        if in_win.size:
            troughs.append(v[in_win].min())
    nan = float("nan")
    isi = np.diff(times)
    return dict(
        resting_potential=rest,
        spike_count=float(count),
        first_spike_latency=times[0] - on if count else nan,
        mean_isi=isi.mean() if isi.size else nan,
        cv_isi=isi.std() / isi.mean() if isi.size else nan,
        ap_peak=np.mean(peaks) if peaks else nan,
        ap_width=np.mean(widths) if widths else nan,
        ahp_depth=np.mean(troughs) if troughs else nan,
        steady_state_potential=steady,
        mean_firing_rate=count / dur * 1000.0,
        spike_times=times,
    )


def assert_matches(feats, ref, rtol=1e-9, atol=1e-9):
    for name in hhjax.feature_names():
        np.testing.assert_allclose(
            float(getattr(feats, name)), ref[name], rtol=rtol, atol=atol, err_msg=name
        )
    st = np.asarray(feats.spike_times)
    n = len(ref["spike_times"])
    np.testing.assert_allclose(st[:n], ref["spike_times"], rtol=rtol, atol=atol)
    assert np.all(np.isnan(st[n:]))


# --------------------------------------------------------------------------------------


def test_feature_names():
    names = hhjax.feature_names()
    assert "spike_times" not in names
    assert len(names) == len(set(names)) == 10
    fields = set(hhjax.TraceFeatures.__dataclass_fields__)
    assert fields == set(names) | {"spike_times"}


@pytest.mark.parametrize("window", [WINDOW, None, (30.0, 60.0), (12.0, 88.0)])
def test_spiking_trace_matches_numpy(spiking, window):
    feats = features(spiking.t, spiking.v, stim_window=window)
    ref = numpy_features(spiking.t, spiking.v, window=window)
    assert_matches(feats, ref)


def test_spiking_trace_sanity(spiking):
    f = features(spiking.t, spiking.v, stim_window=WINDOW)
    assert float(f.spike_count) == 6
    assert float(f.mean_firing_rate) == pytest.approx(6 / 80 * 1000)
    assert 25.0 < float(f.ap_peak) < 45.0
    assert 0.5 < float(f.ap_width) < 2.0
    assert -80.0 < float(f.ahp_depth) < -70.0
    assert float(f.resting_potential) == pytest.approx(-65.0, abs=0.1)
    assert 0.0 <= float(f.cv_isi) < 0.05


def test_other_threshold_matches_numpy(spiking):
    feats = features(spiking.t, spiking.v, threshold=-20.0, stim_window=WINDOW)
    ref = numpy_features(spiking.t, spiking.v, threshold=-20.0, window=WINDOW)
    assert_matches(feats, ref)


def test_spike_times_equal_crossing_times(spiking):
    """Hermite-located crossings (with dvdt) are those of hhjax.crossing_times, and
    stay close to the linear ones at this sampling."""
    f_her = features(spiking.t, spiking.v, dvdt=spiking.dvdt, stim_window=WINDOW)
    ref = jax.jit(hhjax.crossing_times)(spiking.t, spiking.v, dvdt=spiking.dvdt)[:50]
    np.testing.assert_allclose(
        np.asarray(f_her.spike_times), np.asarray(ref), rtol=1e-12
    )
    f_lin = features(spiking.t, spiking.v, stim_window=WINDOW)
    for name in ("first_spike_latency", "mean_isi", "ap_width"):
        assert abs(float(getattr(f_lin, name)) - float(getattr(f_her, name))) < 1e-3


def test_max_spikes_truncation(spiking):
    f = features(spiking.t, spiking.v, stim_window=WINDOW, max_spikes=3)
    ref = numpy_features(spiking.t, spiking.v, window=WINDOW, max_spikes=3)
    assert f.spike_times.shape == (3,)
    assert float(f.spike_count) == 6  # the count is not capped
    assert_matches(f, ref)


def test_subthreshold_trace(subthreshold):
    t, v = np.asarray(subthreshold.t), np.asarray(subthreshold.v)
    f = features(subthreshold.t, subthreshold.v, stim_window=WINDOW)
    assert float(f.spike_count) == 0
    assert float(f.mean_firing_rate) == 0
    for name in (
        "first_spike_latency",
        "mean_isi",
        "cv_isi",
        "ap_peak",
        "ap_width",
        "ahp_depth",
    ):
        assert np.isnan(float(getattr(f, name))), name
    assert np.all(np.isnan(np.asarray(f.spike_times)))
    np.testing.assert_allclose(
        float(f.resting_potential), v[t < 10.0].mean(), rtol=1e-12
    )
    steady = v[(t >= 82.0) & (t <= 90.0)].mean()
    np.testing.assert_allclose(float(f.steady_state_potential), steady, rtol=1e-12)
    # depolarised by the step, below threshold
    assert float(f.resting_potential) + 1.0 < float(f.steady_state_potential) < -50.0
    assert_matches(f, numpy_features(t, v, window=WINDOW))


def test_explicit_rest_window(spiking):
    t, v = np.asarray(spiking.t), np.asarray(spiking.v)
    f = features(spiking.t, spiking.v, stim_window=WINDOW, rest_window=(2.0, 8.0))
    np.testing.assert_allclose(
        float(f.resting_potential), v[(t >= 2.0) & (t <= 8.0)].mean(), rtol=1e-12
    )
    # an empty rest window gives NaN, not an error
    f = features(spiking.t, spiking.v, stim_window=WINDOW, rest_window=(200.0, 300.0))
    assert np.isnan(float(f.resting_potential))


# --------------------------------------------------------------------------------------
# Synthetic trace with exact answers
# --------------------------------------------------------------------------------------

REST, BASE, PEAK, TROUGH = -65.0, -60.0, 35.0, -75.0
SPIKE_STARTS = (20.0, 30.0, 45.0, 65.0)  # in the window
LATE_SPIKE = 95.0  # after the window


def synthetic_trace():
    """Piecewise-linear trace: rest −65 mV, −60 mV during the window (10, 90) ms,
    triangle spikes (1 ms rise to +35, 2 ms fall to −75, 5 ms recovery), breakpoints
    on the 0.05 ms sample grid."""
    knots_t, knots_v = [0.0, 10.0, 10.0 + 1e-9], [REST, REST, BASE]
    for s in SPIKE_STARTS:
        knots_t += [s, s + 1.0, s + 3.0, s + 8.0]
        knots_v += [BASE, PEAK, TROUGH, BASE]
    knots_t += [90.0, 90.0 + 1e-9]
    knots_v += [BASE, REST]
    s = LATE_SPIKE
    knots_t += [s, s + 1.0, s + 3.0, s + 8.0, 110.0]
    knots_v += [REST, PEAK, TROUGH, REST, REST]
    t = np.arange(2201) * 0.05
    return t, np.interp(t, knots_t, knots_v)


def test_synthetic_exact_values():
    t, v = synthetic_trace()
    f = features(jnp.asarray(t), jnp.asarray(v), stim_window=WINDOW)
    up = np.array(SPIKE_STARTS) + (0.0 - BASE) / (PEAK - BASE)  # 1 ms rise
    down = np.array(SPIKE_STARTS) + 1.0 + PEAK / (PEAK - TROUGH) * 2.0  # 2 ms fall
    isi = np.diff(up)
    np.testing.assert_allclose(isi, [10.0, 15.0, 20.0], atol=1e-12)
    tol = dict(rtol=0, atol=1e-9)
    assert float(f.spike_count) == 4
    np.testing.assert_allclose(np.asarray(f.spike_times)[:4], up, **tol)
    assert np.all(np.isnan(np.asarray(f.spike_times)[4:]))
    np.testing.assert_allclose(float(f.first_spike_latency), up[0] - 10.0, **tol)
    np.testing.assert_allclose(float(f.mean_isi), 15.0, **tol)
    np.testing.assert_allclose(float(f.cv_isi), np.sqrt(50.0 / 3.0) / 15.0, **tol)
    np.testing.assert_allclose(float(f.ap_peak), PEAK, **tol)
    np.testing.assert_allclose(float(f.ap_width), np.mean(down - up), **tol)
    np.testing.assert_allclose(float(f.ahp_depth), TROUGH, **tol)
    np.testing.assert_allclose(float(f.resting_potential), REST, **tol)
    np.testing.assert_allclose(float(f.steady_state_potential), BASE, **tol)
    np.testing.assert_allclose(float(f.mean_firing_rate), 4 / 80 * 1000, **tol)

    # Whole trace: the late spike counts too; rest = first 10 %, steady = last 10 %.
    f = features(jnp.asarray(t), jnp.asarray(v))
    assert float(f.spike_count) == 5
    first_tenth = t <= t[0] + 0.1 * (t[-1] - t[0])  # up to 11 ms: overlaps the step
    np.testing.assert_allclose(float(f.resting_potential), v[first_tenth].mean(), **tol)
    last_tenth = t >= t[-1] - 0.1 * (t[-1] - t[0])  # from 99 ms: the late spike's AHP
    np.testing.assert_allclose(
        float(f.steady_state_potential), v[last_tenth].mean(), **tol
    )
    np.testing.assert_allclose(float(f.first_spike_latency), up[0], **tol)
    np.testing.assert_allclose(float(f.mean_firing_rate), 5 / 110 * 1000, **tol)


def test_trace_ending_above_threshold():
    """A spike cut by the end of the trace has a peak but no width; no errors."""
    t = np.arange(2201) * 0.05
    v = np.interp(t, [0.0, 105.0, 109.0, 110.0], [-65.0, -65.0, 20.0, 30.0])
    f = features(jnp.asarray(t), jnp.asarray(v))
    assert float(f.spike_count) == 1
    np.testing.assert_allclose(float(f.ap_peak), 30.0)
    assert np.isnan(float(f.ap_width))
    assert np.isnan(float(f.ahp_depth))
    assert np.isnan(float(f.mean_isi))


# --------------------------------------------------------------------------------------
# Transforms
# --------------------------------------------------------------------------------------


def _same(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12)


def test_jit_vmap_batch(spiking, subthreshold, strong):
    t = spiking.t
    vs = jnp.stack([spiking.v, subthreshold.v, strong.v])
    batched = jax.jit(
        jax.vmap(lambda v: hhjax.trace_features(t, v, stim_window=WINDOW))
    )(vs)
    assert batched.spike_times.shape == (3, 50)
    assert batched.as_array().shape == (3, 10)
    for i in range(3):
        single = features(t, vs[i], stim_window=WINDOW)
        jax.tree.map(lambda a, b, i=i: _same(a[i], b), batched, single)
    n_strong = numpy_features(strong.t, strong.v, window=WINDOW)["spike_count"]
    assert n_strong > 6
    np.testing.assert_array_equal(np.asarray(batched.spike_count), [6.0, 0.0, n_strong])


def test_as_array(spiking):
    f = features(spiking.t, spiking.v, stim_window=WINDOW)
    arr = f.as_array(("ap_peak", "spike_count"))
    _same(arr, jnp.stack([f.ap_peak, f.spike_count]))
    _same(f.as_array(), jnp.stack([getattr(f, n) for n in hhjax.feature_names()]))
    with pytest.raises(ValueError, match="spike_times"):
        f.as_array(("spike_times",))
    with pytest.raises(ValueError, match="Unknown"):
        f.as_array(("peak",))


def test_errors(spiking):
    with pytest.raises(ValueError, match="same shape"):
        hhjax.trace_features(spiking.t, spiking.v[:-1])
    with pytest.raises(ValueError, match="vmap"):
        hhjax.trace_features(spiking.t[None], spiking.v[None])
    with pytest.raises(ValueError, match="max_spikes"):
        hhjax.trace_features(spiking.t, spiking.v, max_spikes=0)
    with pytest.raises(ValueError, match="stim_window"):
        hhjax.trace_features(spiking.t, spiking.v, stim_window=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="dvdt"):
        hhjax.trace_features(spiking.t, spiking.v, dvdt=spiking.v[:-1])


# --------------------------------------------------------------------------------------
# Gradients with respect to v
# --------------------------------------------------------------------------------------


def _feature_vector(t, v, dvdt):
    return hhjax.trace_features(t, v, dvdt=dvdt, stim_window=WINDOW).as_array()


#: d(features)/dv, shape (10, T); one compilation per (shape, dvdt given or not).
feature_jacobian = jax.jit(jax.jacrev(_feature_vector, argnums=1))

CONTINUOUS = (
    "resting_potential",
    "first_spike_latency",
    "mean_isi",
    "cv_isi",
    "ap_peak",
    "ap_width",
    "ahp_depth",
    "steady_state_potential",
)


@pytest.mark.parametrize("use_dvdt", [False, True])
def test_gradients_vs_finite_differences(spiking, use_dvdt):
    t = spiking.t
    dvdt = spiking.dvdt if use_dvdt else None
    names = hhjax.feature_names()

    def feats(v):
        return features(t, v, dvdt=dvdt, stim_window=WINDOW).as_array()

    v0 = spiking.v
    jac = np.asarray(feature_jacobian(t, v0, dvdt))  # (10, T)
    assert np.all(np.isfinite(jac))
    for name in ("spike_count", "mean_firing_rate"):
        assert np.all(jac[names.index(name)] == 0.0)
    # peaks/troughs: indicator (1/n) at each spike's arg-max/arg-min
    for name in ("ap_peak", "ahp_depth"):
        g = jac[names.index(name)]
        assert g.sum() == pytest.approx(1.0)
        np.testing.assert_allclose(g[g != 0], 1 / 6)
        assert np.count_nonzero(g) == 6
    for name in ("resting_potential", "steady_state_potential"):
        assert jac[names.index(name)].sum() == pytest.approx(1.0)

    # central differences on the samples that matter most, plus a few others
    rng = np.random.default_rng(0)
    idx = set(rng.integers(0, v0.shape[0], size=3).tolist())
    for name in CONTINUOUS:
        row = np.abs(jac[names.index(name)])
        idx |= set(np.argsort(row)[-2:].tolist())
    eps = 1e-6
    for j in sorted(idx):
        fd = (
            np.asarray(feats(v0.at[j].add(eps))) - np.asarray(feats(v0.at[j].add(-eps)))
        ) / (2 * eps)
        for name in CONTINUOUS:
            i = names.index(name)
            err = abs(jac[i, j] - fd[i])
            assert err <= 1e-6 + 1e-4 * abs(fd[i]), (name, j, jac[i, j], fd[i])


def test_gradients_finite_without_spikes(subthreshold):
    jac = feature_jacobian(subthreshold.t, subthreshold.v, None)
    assert np.all(np.isfinite(np.asarray(jac)))


def test_cv_isi_gradient_finite_at_equal_intervals(spiking):
    """cv_isi = 0 (std at its non-differentiable point): value 0, gradient finite."""
    t = np.asarray(spiking.t)  # same grid as the HH trace: no new compilation
    knots_t, knots_v = [0.0], [REST]
    for s in (20.0, 35.0, 50.0):
        knots_t += [s, s + 1.0, s + 3.0, s + 8.0]
        knots_v += [REST, PEAK, TROUGH, REST]
    v = jnp.asarray(np.interp(t, knots_t + [100.0], knots_v + [REST]))
    t = jnp.asarray(t)
    assert float(features(t, v, stim_window=WINDOW).cv_isi) == pytest.approx(
        0.0, abs=1e-9
    )
    jac = feature_jacobian(t, v, None)
    assert np.all(np.isfinite(np.asarray(jac)))
