"""Held-out validation metrics: coincidence factor Γ (Jolivet et al. 2008), spike
count / latency errors, sub-threshold RMSE."""

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import hhjax


def test_gamma_identical_shifted_and_empty():
    s = np.array([10.0, 30.0, 55.0, 80.0])
    assert hhjax.coincidence_factor(s, s, 100.0) == pytest.approx(1.0)
    assert hhjax.coincidence_factor(s, s + 3.9, 100.0) == pytest.approx(1.0)  # within ±4 ms
    # all shifted out of the window: no coincidences, Γ = −expected/(norm) < 0
    nu, delta = 4 / 100.0, 4.0
    expect = (0 - 2 * nu * delta * 4) / 4 / (1 - 2 * nu * delta)
    assert hhjax.coincidence_factor(s, s + 6.0, 100.0) == pytest.approx(expect)
    # half the spikes coincide
    m = np.array([10.5, 45.0, 55.0, 95.0])
    g = hhjax.coincidence_factor(s, m, 100.0)
    assert g == pytest.approx((2 - 2 * nu * delta * 4) / 4 / (1 - 2 * nu * delta))
    assert math.isnan(hhjax.coincidence_factor([], [np.nan], 100.0))
    assert hhjax.coincidence_factor(s, [], 100.0) == 0.0
    # NaN padding is ignored; one model spike matches at most one data spike
    assert hhjax.coincidence_factor([10.0, 11.0, np.nan], [10.5, np.nan], 100.0) < 1.0
    with pytest.raises(ValueError, match="duration"):
        hhjax.coincidence_factor(s, s, 0.0)
    with pytest.raises(ValueError, match="increasing"):
        hhjax.coincidence_factor(s[::-1], s, 100.0)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10_000))
def test_gamma_of_independent_poisson_trains_is_near_zero(seed):
    rng = np.random.default_rng(seed)
    T, rate = 20_000.0, 0.01  # ms, 1/ms (10 Hz)
    gs = []
    for _ in range(20):
        a = np.sort(rng.uniform(0, T, rng.poisson(rate * T)))
        b = np.sort(rng.uniform(0, T, rng.poisson(rate * T)))
        gs.append(hhjax.coincidence_factor(a, b, T))
    assert abs(np.mean(gs)) < 0.05


def _gamma_by_definition(d, m, duration, delta):
    """Γ with the greedy matching written out: each data spike, in time order, takes
    the nearest unused model spike within ±delta (the first such one on a tie)."""
    d, m = np.asarray(d, float), np.asarray(m, float)
    if d.size == 0 and m.size == 0:
        return math.nan
    if d.size == 0 or m.size == 0:
        return 0.0
    used, n_coinc = np.zeros(m.size, bool), 0
    for t in d:
        idx = np.nonzero(~used & (np.abs(m - t) <= delta))[0]
        if idx.size:
            used[idx[np.argmin(np.abs(m[idx] - t))]] = True
            n_coinc += 1
    nu = m.size / duration
    norm = 1 - 2 * nu * delta
    if norm <= 0:
        return math.nan
    return (n_coinc - 2 * nu * delta * d.size) / (0.5 * (d.size + m.size)) / norm


_times = st.lists(st.integers(0, 400), max_size=30).map(lambda x: sorted(v * 0.25 for v in x))


@settings(max_examples=300, deadline=None)
@given(_times, _times, st.sampled_from([0.25, 1.0, 4.0]))
@example([10.0, 11.5], [9.0, 11.0], 1.0)  # a tie: taking 11 would leave 11.5 unmatched
@example([10.0, 13.0], [7.0, 10.5], 4.0)  # the nearest (10.5), not the first in reach
def test_gamma_matches_its_definition(d, m, delta):
    """hhjax's one-pass matching gives the definition's Γ exactly, with ties, spikes
    exactly ±delta apart and repeated times (a 0.25 ms grid makes them common)."""
    got = hhjax.coincidence_factor(d, m, 100.0, delta=delta)
    want = _gamma_by_definition(d, m, 100.0, delta)
    assert (math.isnan(got) and math.isnan(want)) or got == want


def test_count_latency_and_subthreshold_rmse():
    assert hhjax.spike_count_error([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0]) == pytest.approx(0.25)
    assert hhjax.spike_count_error([], []) == 0.0
    assert math.isnan(hhjax.spike_count_error([], [5.0]))
    assert hhjax.first_spike_latency_error([12.0, 20.0], [13.5], t_onset=10.0) == pytest.approx(1.5)
    t = np.arange(0.0, 100.0, 0.1)
    vd = -65.0 + np.zeros_like(t)
    vm = vd + 2.0
    vd[(t > 50) & (t < 51)] = 30.0  # a "spike" in the data only, excluded ±(2, 10) ms
    vm[(t > 50) & (t < 60)] = 100.0  # a big model deviation inside the excluded zone
    assert hhjax.subthreshold_rmse(t, vd, vm) == pytest.approx(2.0)
    assert hhjax.subthreshold_rmse(t, vd, vm, window=(0.0, 40.0)) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="1-D"):
        hhjax.subthreshold_rmse(t, vd, vm[:-1])


def test_validation_metrics_on_simulated_traces():
    p = hhjax.HHParams()
    stim = hhjax.StepCurrent(10.0, 10.0, 90.0)
    a = hhjax.simulate(p, stim, t_end=100.0, save_every=0.05)
    b = hhjax.simulate(hhjax.HHParams(g_k=28.0), stim, t_end=100.0, save_every=0.05)
    same = hhjax.validation_metrics(a.t, a.v, a.v, t_onset=10.0)
    assert same["gamma"] == pytest.approx(1.0) and same["spike_count_error"] == 0.0
    assert same["subthreshold_rmse_mV"] == 0.0 and same["n_spikes_data"] == 6
    m = hhjax.validation_metrics(a.t, a.v, b.v, t_onset=10.0)
    assert set(m) >= {"spike_count_error", "subthreshold_rmse_mV", "gamma", "first_spike_latency_error_ms"}
    assert m["n_spikes_model"] == 7 and m["spike_count_error"] == pytest.approx(1 / 6)
    assert m["gamma"] < 0.5 and m["subthreshold_rmse_mV"] > 0
    assert np.isfinite(m["first_spike_latency_error_ms"])


def test_validation_metrics_rejects_mismatched_traces():
    t = np.arange(0.0, 10.0, 0.1)
    v = np.full(t.shape, -65.0)
    for vd, vm in ((v[:-1], v), (v, v[:50]), (np.stack([v, v]), np.stack([v, v]))):
        with pytest.raises(ValueError, match="1-D arrays of one length"):
            hhjax.validation_metrics(t, vd, vm)


def _noisy_spikes(t, onsets, rng, noise_mV=1.5):
    """Spikes (1 ms at +20 mV) with a slow repolarisation that lingers at the −20 mV
    threshold for 3 ms; noise makes it cross upwards again several times."""
    v = np.full(t.shape, -65.0)
    for s in onsets:
        v[(t >= s) & (t < s + 1.0)] = 20.0
        tail = (t >= s + 1.0) & (t < s + 4.0)
        v[tail] = -20.0 + rng.normal(0.0, noise_mV, int(tail.sum()))
    return v


def test_recorded_spike_times_counts_noisy_repolarisations_once():
    rng = np.random.default_rng(0)
    t = np.arange(0.0, 100.0, 0.05)
    v = _noisy_spikes(t, [20.0, 50.0, 80.0], rng)
    raw = int(np.sum((v[1:] >= -20.0) & (v[:-1] < -20.0)))
    assert raw > 10  # the noise does re-cross
    s = hhjax.recorded_spike_times(t, v, -20.0)
    np.testing.assert_allclose(s, [20.0, 50.0, 80.0], atol=0.05)
    assert hhjax.recorded_spike_times(t, v, -20.0, hysteresis=0.0).size == raw
    # the held-out metrics count the same spikes: identical trains, Γ = 1
    m = hhjax.validation_metrics(t, v, _noisy_spikes(t, [20.5, 50.5, 80.5], rng), threshold=-20.0)
    assert (m["n_spikes_data"], m["n_spikes_model"], m["spike_count_error"]) == (3, 3, 0.0)
    assert m["gamma"] == pytest.approx(1.0)
    assert hhjax.validation_metrics(t, v, v, threshold=-20.0, hysteresis=0.0)["n_spikes_data"] == raw
    # a NaN gap (a dropped sample) neither makes nor hides a spike
    gap = v.copy()
    gap[(t > 30.0) & (t < 31.0)] = np.nan
    np.testing.assert_allclose(hhjax.recorded_spike_times(t, gap, -20.0), s)
    with pytest.raises(ValueError, match="hysteresis"):
        hhjax.recorded_spike_times(t, v, hysteresis=-1.0)
    with pytest.raises(ValueError, match="1-D"):
        hhjax.recorded_spike_times(t, v[:-1])
    with pytest.raises(ValueError, match="max_spikes"):
        hhjax.validation_metrics(t, v, v, max_spikes=0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-80.0, 40.0), min_size=2, max_size=60),
       st.floats(0.0, 30.0), st.floats(-40.0, 0.0))
def test_recorded_spike_times_properties(samples, hysteresis, threshold):
    v = np.asarray(samples)
    t = np.arange(v.size) * 0.1
    s = hhjax.recorded_spike_times(t, v, threshold, hysteresis=hysteresis)
    up = np.nonzero((v[1:] >= threshold) & (v[:-1] < threshold))[0]
    all_ = hhjax.recorded_spike_times(t, v, threshold, hysteresis=0.0)
    # hysteresis 0: every crossing, each inside its sample interval [t[k], t[k+1]]
    assert all_.size == up.size
    assert np.all(all_ >= t[up]) and np.all(all_ <= t[up + 1])
    # with hysteresis: a subset of those, in order, the first always kept, and
    # between two kept spikes the voltage fell below threshold − hysteresis
    assert set(s.tolist()) <= set(all_.tolist()) and np.all(np.diff(s) > 0)
    if up.size:
        assert s[0] == all_[0]
    idx = up[np.isin(all_, s)]  # the kept crossings' sample indices
    for a, b in zip(idx[:-1], idx[1:]):
        assert v[a + 1: b + 1].min() < threshold - hysteresis
    # and a dropped crossing had no such fall since the last kept spike
    for k, j in zip(up, all_):
        if j not in set(s.tolist()):
            last = idx[idx < k].max()
            assert v[last + 1: k + 1].min() >= threshold - hysteresis
