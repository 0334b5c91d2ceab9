"""Held-out validation metrics: coincidence factor Γ (Jolivet et al. 2008), spike
count / latency errors, sub-threshold RMSE."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
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
