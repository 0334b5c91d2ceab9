"""The real-cell workflow: `fitting.estimate_passive`, `fitting.SubthresholdLoss`, tied
parameters, `fitting.fit_cell` (synthetic recovery with held-out sweeps; a short real
fit of ../shared/data through the CLI) and its argument errors."""

import dataclasses
import json
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fitting
import hhjax
from fitting._cli import main as cli_main
from fitting._transforms import get_parameter

AREA = 2e-4  # cm² (200 pF at 1 µF/cm²)


def _cell_recording(membrane, amps_pA, *, area=AREA, t_end=300.0, dt=0.1, on=50.0,
                    off=250.0, hold_pA=0.0, noise=0.0, key=0):
    """Sweeps of a simulated cell: steps of `amps_pA` from `on` to `off` ms, the
    current in pA through `area` cm², sampled every `dt` ms (+ Gaussian noise [mV])."""
    t = np.round(np.arange(0.0, t_end + dt / 2, dt), 10)
    i = np.stack([np.where((t >= on) & (t < off), a, 0.0) + hold_pA for a in amps_pA])
    rec0 = hhjax.Recording(t, np.zeros_like(i), i_pA=i, area_cm2=area)
    stim = rec0.stimulus()
    sim = fitting.HHSimulator(rtol=1e-9, atol=1e-9)
    ts = jnp.asarray(t)
    v, ok = jax.jit(jax.vmap(lambda s: sim(membrane, s, ts, (0.0, float(t[-1])), None)))(stim)
    assert bool(jnp.all(ok))
    v = np.asarray(v)
    if noise:
        v = v + noise * np.random.default_rng(key).standard_normal(v.shape)
    return hhjax.Recording(t, v, i_pA=i, name="synthetic cell")


# --------------------------------------------------------------------------------------
# passive estimate


def test_estimate_passive_recovers_a_passive_cell():
    g_leak, e_leak = 0.05, -68.0  # mS/cm²: R = 1/(g·A) = 100 MΩ, τ = c_m/g = 20 ms
    mb = hhjax.pospischil("RS", g_na=0.0, g_kd=0.0, g_m=0.0, g_leak=g_leak, e_leak=e_leak)
    rec = _cell_recording(mb, [-100.0, -50.0, 50.0], t_end=400.0, off=300.0, noise=0.05)
    est = fitting.estimate_passive(rec)
    assert est.r_in_MOhm == pytest.approx(100.0, rel=0.02)
    assert est.tau_ms == pytest.approx(20.0, rel=0.03)
    assert est.capacitance_pF == pytest.approx(200.0, rel=0.04)
    assert est.area_cm2() == pytest.approx(AREA, rel=0.04)
    assert est.g_leak() == pytest.approx(g_leak, rel=0.04)
    assert est.e_rest_mV == pytest.approx(e_leak, abs=0.1)
    # onsets and offsets of the three steps
    assert est.n_epochs == 6
    # the cruder fallback from the initial charging slope (biased up by the leak
    # current during its 2 ms span: ≈ 1 + 2 ms / (2 τ) = 5 %)
    assert fitting.onset_capacitance(rec) == pytest.approx(200.0, rel=0.1)
    # a recorded (noisy) current: the edges are still found, once each
    noisy = np.asarray(rec.i_samples[0]) + np.random.default_rng(1).normal(0, 3.0, rec.n_samples)
    assert rec.t_ms[fitting.current_edges(noisy)] == pytest.approx([50.0, 300.0])


def _rc_trace(t, i_pA, r_MOhm, tau_ms, e_rest=-70.0):
    """The exact response of an RC cell (R, τ) to a piecewise-constant current."""
    v = np.empty_like(t)
    v[0] = e_rest + r_MOhm * 1e-3 * i_pA[0]
    for k in range(1, t.size):
        v_inf = e_rest + r_MOhm * 1e-3 * i_pA[k - 1]  # mV/pA · pA
        v[k] = v_inf + (v[k - 1] - v_inf) * np.exp(-(t[k] - t[k - 1]) / tau_ms)
    return v


def test_estimate_passive_needs_a_settled_membrane_before_an_edge():
    """An edge counts only from a steady state: not the end of a short test pulse
    (Allen-style protocols put one before every step; counted, it made a synthetic
    cell's capacitance 4x too large), and not an edge after spikes when quiet edges
    exist; a cell that fires at rest keeps its edges."""
    t = np.arange(0.0, 700.0, 0.05)
    R, tau = 200.0, 30.0  # MΩ, ms → C = 150 pF
    # a 10 ms test pulse, then one step to the end of the sweep (no offset edge)
    sweeps = []
    for amp in (30.0, -30.0, 20.0):
        i = np.where((t >= 20.0) & (t < 30.0), -50.0, 0.0) + np.where(t >= 100.0, amp, 0.0)
        sweeps.append((i, _rc_trace(t, i, R, tau)))
    rec = hhjax.Recording(t, np.stack([v for _, v in sweeps]), i_pA=np.stack([i for i, _ in sweeps]))
    est = fitting.estimate_passive(rec)
    assert [(e[0], e[1]) for e in est.epochs] == [(0, 100.0), (1, 100.0), (2, 100.0)]
    assert est.r_in_MOhm == pytest.approx(R, rel=0.05)  # (the test pulse's tail: −0.3 mV)
    assert est.tau_ms == pytest.approx(tau, rel=0.03)
    assert est.capacitance_pF == pytest.approx(150.0, rel=0.06)
    # a spiking step: its offset edge follows firing and an AHP 80 ms old (> 2 τ)
    i = np.where((t >= 100.0) & (t < 600.0), 100.0, 0.0)
    v = _rc_trace(t, i, R, tau)
    for ts in (150.0, 300.0, 520.0):
        v = v + np.where((t >= ts) & (t < ts + 0.5), 90.0, 0.0)
        v = v - 8.0 * np.exp(-np.clip(t - ts - 0.5, 0, None) / 60.0) * (t >= ts + 0.5)
    i_q = np.where((t >= 100.0) & (t < 600.0), -40.0, 0.0)
    v_q = _rc_trace(t, i_q, R, tau)
    both = hhjax.Recording(t, np.stack([v, v_q]), i_pA=np.stack([i, i_q]))
    est = fitting.estimate_passive(both)
    assert {(e[0], e[1]) for e in est.epochs} == {(1, 100.0), (1, 600.0)}
    assert est.r_in_MOhm == pytest.approx(R, rel=0.01)
    # firing at rest: only edges after spikes, kept (none within 2 τ of a spike)
    v_rest = _rc_trace(t, i_q, R, tau)
    for ts in (20.0, 350.0):
        v_rest = v_rest + np.where((t >= ts) & (t < ts + 0.5), 90.0, 0.0)
    est = fitting.estimate_passive(hhjax.Recording(t, v_rest[None], i_pA=i_q[None]))
    assert [(e[0], e[1]) for e in est.epochs] == [(0, 100.0), (0, 600.0)]
    assert est.r_in_MOhm == pytest.approx(R, rel=0.01)


def _chirp_pA(t, hold=-20.0, amp=60.0, on=100.0, off=None, f0=0.5, f1=20.0):
    """A linear chirp f0 → f1 Hz [pA] around a holding current, from `on` to `off` ms."""
    off = t[-1] - 100.0 if off is None else off
    tt = np.clip(t - on, 0.0, off - on) * 1e-3  # s
    phase = 2 * np.pi * (f0 * tt + 0.5 * (f1 - f0) / ((off - on) * 1e-3) * tt**2)
    return hold + amp * np.sin(phase) * ((t >= on) & (t < off))


def test_estimate_passive_from_a_chirp_without_steps():
    """A chirp has no step edges: the RC membrane is fitted to the whole spike-free
    sweeps (output error, so the voltage noise does not bias it; the recorded
    current's own noise is not seen by the cell); a spiking sweep is left out (with
    `method="trace"` it enters up to 3 ms before its first spike)."""
    t = np.arange(0.0, 3000.0, 0.1)
    R, tau = 150.0, 15.0  # MΩ, ms → C = 100 pF
    i_true = _chirp_pA(t)
    rng = np.random.default_rng(3)
    v = _rc_trace(t, i_true, R, tau, e_rest=-65.0) + rng.normal(0.0, 0.3, t.size)
    i_rec = i_true + rng.normal(0.0, 2.0, t.size)
    v_spiking = v.copy()
    for ts in (800.0, 1500.0):
        v_spiking += np.where((t >= ts) & (t < ts + 0.5), 90.0, 0.0)
    rec = hhjax.Recording(t, np.stack([v, v_spiking]), i_pA=np.stack([i_rec, i_rec]))
    est = fitting.estimate_passive(rec)
    assert est.method == "trace" and est.n_epochs == 1 and est.epochs == ()
    # explicitly, the spiking sweep enters up to 3 ms before its first spike
    assert fitting.estimate_passive(rec, method="trace").n_epochs == 2
    assert est.r_in_MOhm == pytest.approx(R, rel=0.02)
    assert est.tau_ms == pytest.approx(tau, rel=0.03)
    assert est.capacitance_pF == pytest.approx(100.0, rel=0.04)
    # the potential under the starting (holding) current, as for steps
    assert est.e_rest_mV == pytest.approx(-65.0 + R * 1e-3 * -20.0, abs=0.3)
    with pytest.raises(ValueError, match="no usable sub-threshold step response"):
        fitting.estimate_passive(rec, method="steps")
    # the whole-sweep fit also reads a step protocol (both edges of each step)
    i_step = np.where((t >= 500.0) & (t < 2000.0), -40.0, 0.0)
    step = hhjax.Recording(t, _rc_trace(t, i_step, R, tau)[None], i_pA=i_step[None])
    est = fitting.estimate_passive(step, method="trace")
    assert est.method == "trace"
    assert (est.r_in_MOhm, est.tau_ms) == (pytest.approx(R, rel=0.01), pytest.approx(tau, rel=0.02))
    assert fitting.estimate_passive(step).method == "steps"
    # the chirp's span: from where the current leaves the holding level by 10× its
    # noise (20 pA: 72 ms into the 0.5 Hz start, sin = 1/3) to its end
    first, end = fitting.stimulus_span(i_rec)
    assert 165.0 <= t[first] < 180.0 and t[end] == pytest.approx(2900.0, abs=0.2)
    assert fitting.stimulus_span(np.full(100, -20.0)) is None
    with pytest.raises(ValueError, match="i_pA"):
        fitting.stimulus_span(np.stack([i_rec, i_rec]))
    with pytest.raises(ValueError, match="non-finite"):
        fitting.stimulus_span(np.where(t < 50.0, np.nan, i_rec))
    first, end = fitting.stimulus_span(i_step)
    assert (t[first], t[end]) == (500.0, 2000.0)
    assert fitting.current_edges(i_step).tolist() == [first, end]


def test_estimate_passive_errors():
    t = np.arange(0.0, 100.0, 0.1)
    flat = hhjax.Recording(t, np.full((1, t.size), -70.0), i_pA=np.zeros((1, t.size)))
    with pytest.raises(ValueError, match="no step of at least 5 pA"):
        fitting.estimate_passive(flat)
    # steps that all spike at once: the other reason
    i = np.where((t >= 20.0) & (t < 80.0), 200.0, 0.0)[None]
    v = np.where((t >= 20.5) & (t < 21.5), 30.0, -70.0)[None]
    with pytest.raises(ValueError, match="every step spikes"):
        fitting.estimate_passive(hhjax.Recording(t, v, i_pA=i))
    dens = hhjax.Recording(t, np.full((1, t.size), -70.0), i_uA_per_cm2=np.zeros((1, t.size)))
    with pytest.raises(ValueError, match="in pA"):
        fitting.estimate_passive(dens)
    with pytest.raises(TypeError, match="hhjax.Recording"):
        fitting.estimate_passive(np.zeros(3))
    with pytest.raises(ValueError, match="`method`"):
        fitting.estimate_passive(flat, method="chirp")
    # the step's only response is a spike: no estimate of either kind
    with pytest.raises(ValueError, match="no whole-sweep estimate either: every sweep crosses"):
        fitting.estimate_passive(hhjax.Recording(t, v, i_pA=i))
    # (and up to the spike the current does not change)
    with pytest.raises(ValueError, match="the current before the first spike"):
        fitting.estimate_passive(hhjax.Recording(t, v, i_pA=i), method="trace")
    v_at_once = np.where((t >= 0.5) & (t < 1.5), 30.0, -70.0)[None]
    with pytest.raises(ValueError, match="every sweep crosses .* at its start"):
        fitting.estimate_passive(hhjax.Recording(t, v_at_once, i_pA=i), method="trace")
    i = _chirp_pA(t, on=10.0, off=90.0, f1=50.0)[None]
    # a sweep an RC membrane cannot describe (its voltage does not follow the current)
    noise = -70.0 + np.random.default_rng(0).normal(0.0, 1.0, (1, t.size))
    with pytest.raises(ValueError, match="RC membrane"):
        fitting.estimate_passive(hhjax.Recording(t, noise, i_pA=i), method="trace")


def test_estimate_passive_on_the_dev_set_matches_a_direct_measurement(shared_dir):
    """On a real cell: R_in from the −100 pA step of sweep 4 of 171116sh_0018 read off
    the trace by hand (peak deflection of the 5 ms running mean − baseline) agrees
    with the estimate. (This cell sags: the fit window, 200 ms, sees the peak; the
    late steady level is about 25 % less deflected.)"""
    rec = hhjax.load_recording(shared_dir / "data/pyabf/171116sh_0018.abf", sweeps=[0, 1, 2, 3, 4])
    est = fitting.estimate_passive(rec)
    t, v = rec.t_ms, rec.v_mV[4]
    base = np.median(v[(t > 1000) & (t < 1140)])
    smooth = np.convolve(v, np.ones(100) / 100, mode="same")  # 5 ms at 20 kHz
    peak = np.min(smooth[(t > 1150) & (t < 1340)])
    r_direct = (peak - base) / -100.0 * 1e3  # mV/pA → MΩ
    assert est.r_in_MOhm == pytest.approx(r_direct, rel=0.1)
    assert 5.0 < est.tau_ms < 100.0 and est.n_epochs >= 10


def test_estimate_passive_when_every_step_fires_before_it_relaxes():
    """Like BluePyEfe's B6 cell: each step fires 16-30 ms after its onset, long before
    the membrane relaxes (τ = 25 ms), and fires on until its end: no step response
    is usable. The whole-sweep RC fit on each sweep up to its first spike (baseline
    plus the charging onset, `method="trace"`) recovers R and τ."""
    t = np.arange(0.0, 600.0, 0.1)
    R, tau = 200.0, 25.0  # MΩ, ms → C = 125 pF
    rng = np.random.default_rng(7)
    sweeps = []
    for amp, first in ((100.0, 30.0), (150.0, 22.0), (200.0, 16.0)):
        i = np.where((t >= 100.0) & (t < 500.0), amp, 0.0)
        v = _rc_trace(t, i, R, tau, e_rest=-75.0) + rng.normal(0.0, 0.1, t.size)
        for ts in np.arange(100.0 + first, 500.0, 25.0):
            v = v + np.where((t >= ts) & (t < ts + 0.5), 90.0, 0.0)
        sweeps.append((i, v))
    rec = hhjax.Recording(t, np.stack([v for _, v in sweeps]), i_pA=np.stack([i for i, _ in sweeps]))
    with pytest.raises(ValueError, match="no usable sub-threshold step response"):
        fitting.estimate_passive(rec, method="steps")
    # "auto" uses only spike-free sweeps (on B6 the pre-spike start made the fit worse)
    with pytest.raises(ValueError, match="method='trace' uses each sweep up to its first"):
        fitting.estimate_passive(rec)
    est = fitting.estimate_passive(rec, method="trace")
    assert est.method == "trace" and est.n_epochs == 3
    assert est.r_in_MOhm == pytest.approx(R, rel=0.1)
    assert est.tau_ms == pytest.approx(tau, rel=0.1)
    assert est.capacitance_pF == pytest.approx(125.0, rel=0.1)
    assert est.e_rest_mV == pytest.approx(-75.0, abs=0.1)


def test_estimate_passive_on_the_real_chirp(shared_dir):
    """eFEL's sub-threshold chirp (recorded current around -140 pA, no steps): the
    whole-sweep RC fit's resistance agrees with the low-frequency impedance read off
    the trace directly (slope of V against I after 100 ms running means, over its
    first, slow 1.3 s), and `fit_cell`'s window covers the chirp, not only its end."""
    rec = hhjax.load_recording(shared_dir / "data/efel/impedance.npz")
    est = fitting.estimate_passive(rec)
    assert est.method == "trace" and est.n_epochs == 1
    t, v, i = rec.t_ms, np.asarray(rec.v_mV[0]), np.asarray(rec.i_samples[0])
    box = np.ones(1000) / 1000.0  # 100 ms at 10 kHz
    vs, is_ = np.convolve(v, box, "same"), np.convolve(i, box, "same")
    slow = (t > 200.0) & (t < 1500.0)
    r_direct = np.polyfit(is_[slow], vs[slow], 1)[0] * 1e3  # mV/pA → MΩ
    assert est.r_in_MOhm == pytest.approx(r_direct, rel=0.1)
    assert 3.0 < est.tau_ms < 30.0 and 50.0 < est.capacitance_pF < 500.0
    from fitting._cell import _auto_window
    lo, hi = _auto_window(rec)
    assert lo < 150.0 and hi >= 5100.0


# --------------------------------------------------------------------------------------
# sub-threshold loss and tied parameters


def test_subthreshold_loss_masks_spikes():
    t = np.arange(0.0, 100.0, 0.1)
    v = np.full(t.size, -65.0)
    for tc in (20.0, 60.0):  # 1 ms spikes to +30 mV
        v[(t >= tc) & (t < tc + 1.0)] = 30.0
    data = fitting.SweepData(t=t, v=v[None], i=np.zeros((1, t.size)))
    loss = fitting.SubthresholdLoss(threshold=-20.0, exclude_ms=(2.0, 10.0))
    keep = loss.mask(data)[0]
    for tc in (20.0, 60.0):
        assert not keep[(t >= tc - 2.0 + 1e-9) & (t <= tc + 10.0 - 1e-9)].any()
    assert keep[(t > 32.0) & (t < 57.0)].all() and keep[t < 17.0].all()
    model = v + np.where(keep, 1.5, 40.0)  # errors off the mask must not count
    bound = loss.bind(data)
    assert float(bound.value(jnp.asarray(model[None]))) == pytest.approx(1.5**2)
    with pytest.raises(ValueError, match="no samples left"):
        fitting.SubthresholdLoss(window=(20.5, 25.0)).bind(data)
    with pytest.raises(ValueError, match="exclude_ms"):
        fitting.SubthresholdLoss(exclude_ms=(-1.0, 2.0))


def test_tied_parameters_set_every_field():
    mb = hhjax.pospischil("RS")
    name = "gates.m.v_t|gates.h.v_t|gates.n.v_t"
    space = fitting.ParameterSpace(mb, (name, "channels.na.g"), bounds={name: (-70.0, -40.0)})
    u = space.to_vector({name: -50.0, "channels.na.g": 70.0})
    p = space.to_params(u)
    assert [float(p.gates[k].v_t) for k in "mhn"] == pytest.approx([-50.0] * 3)
    assert float(p.channels["na"].g) == pytest.approx(70.0)
    moved = eqx.tree_at(lambda m: m.gates["h"].v_t, mb, jnp.asarray(-60.0))
    with pytest.raises(ValueError, match="equal starting values"):
        fitting.ParameterSpace(moved, (name,))


def test_spike_widths_of_a_known_shape():
    t = np.arange(0.0, 50.0, 0.05)
    v = np.full(t.size, -70.0)
    # a triangle: −70 → +30 mV over 0.5 ms, back over 1.0 ms, at 10 and 30 ms
    for t0 in (10.0, 30.0):
        up = (t >= t0) & (t < t0 + 0.5)
        dn = (t >= t0 + 0.5) & (t < t0 + 1.5)
        v[up] = -70.0 + 200.0 * (t[up] - t0)
        v[dn] = 30.0 - 100.0 * (t[dn] - t0 - 0.5)
    rec = hhjax.Recording(t, v[None], i_pA=np.zeros((1, t.size)))
    # above −20 mV: from 0.25 ms to 0.5 + 0.5 = 1.0 ms → 0.75 ms
    assert fitting.spike_widths(rec, -20.0) == pytest.approx([0.75, 0.75], abs=1e-9)


# --------------------------------------------------------------------------------------
# fit_cell


def _spiking_recording(counts, currents=None):
    """Sweeps with `counts[s]` square 1 ms spikes to +20 mV (else −70 mV) and step
    currents `currents` [pA] (default: rising with the sweep)."""
    t = np.arange(0.0, 200.0, 0.1)
    currents = np.arange(len(counts)) * 25.0 - 50.0 if currents is None else currents
    v = np.full((len(counts), t.size), -70.0)
    for s, n in enumerate(counts):
        for k in range(n):
            v[s, (t >= 20 + 15 * k) & (t < 21 + 15 * k)] = 20.0
    i = np.stack([np.where((t >= 10) & (t < 190), a, 0.0) for a in currents])
    return hhjax.Recording(t, v, i_pA=i)


def test_search_sweeps_spans_the_responses():
    """The search's sweeps: the silent one nearest rheobase, the spiking ones from
    the fewest spikes to the most, then the passive ones from the least current."""
    rec = _spiking_recording([0, 0, 0, 0, 0, 1, 3, 5, 8])
    assert fitting.search_sweeps(rec, 4) == [4, 5, 7, 8]
    assert fitting.search_sweeps(rec, 2) == [4, 7]  # one spiking place: the median
    assert fitting.search_sweeps(rec, 1) == [7]  # a spiking one
    assert fitting.search_sweeps(rec, 6) == [0, 4, 5, 6, 7, 8]  # then the most negative
    assert fitting.search_sweeps(rec, 9) == list(range(9))
    assert fitting.search_sweeps(rec, 20) == list(range(9))
    # every sweep fires (a spontaneously active cell): both ends and between
    assert fitting.search_sweeps(_spiking_recording([2, 1, 4, 6, 9, 12]), 3) == [1, 2, 5]
    # none fires (a passive recording): spread over the currents
    assert fitting.search_sweeps(_spiking_recording([0] * 6), 3) == [0, 2, 5]
    # the order of the sweeps does not matter, the spikes and currents do
    rec2 = _spiking_recording([5, 0, 8, 1, 0], currents=[60.0, -20.0, 90.0, 40.0, 20.0])
    assert fitting.search_sweeps(rec2, 3) == [2, 3, 4]
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="positive number of sweeps"):
            fitting.search_sweeps(rec, bad)
    with pytest.raises(TypeError, match="must be an hhjax.Recording"):
        fitting.search_sweeps(rec.v_mV, 2)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=12), st.integers(1, 6))
def test_search_sweeps_properties(counts, k):
    """min(k, n) distinct sorted sweeps; with a spiking sweep and k ≥ 2 the one with
    the most spikes is among them; with silent and spiking sweeps and k ≥ 2, the
    silent one with the most current."""
    rec = _spiking_recording(counts)
    got = fitting.search_sweeps(rec, k)
    assert got == sorted(set(got)) and len(got) == min(k, len(counts))
    assert all(0 <= s < len(counts) for s in got)
    spiking = [s for s, n in enumerate(counts) if n]
    silent = [s for s, n in enumerate(counts) if not n]
    if spiking and len(counts) > k >= (3 if silent else 2):
        most = max(spiking, key=lambda s: (counts[s], s))
        assert most in got
    if spiking and silent and k >= 2:
        assert max(silent) in got  # currents rise with the sweep index


def test_fit_cell_argument_errors():
    t = np.arange(0.0, 100.0, 0.1)
    rec = hhjax.Recording(t, np.full((3, t.size), -70.0), i_pA=np.zeros((3, t.size)))
    with pytest.raises(TypeError, match="model_spikes"):
        fitting.fit_cell(rec, sweeps=[0], model_spikes="no")
    with pytest.raises(ValueError, match="both fitted and held out"):
        fitting.fit_cell(rec, sweeps=[0, 1], validate=[1])
    with pytest.raises(ValueError, match="sweep 5 does not exist"):
        fitting.fit_cell(rec, validate=[5])
    with pytest.raises(ValueError, match="Unknown cell model"):
        fitting.fit_cell(rec, "pospischil-xx")
    with pytest.raises(ValueError, match="capacitance_pF"):
        fitting.fit_cell(rec, capacitance_pF=-3.0)
    for bad in (-1, 2.5):
        with pytest.raises(ValueError, match="`passive_steps` must be an integer ≥ 0"):
            fitting.fit_cell(rec, sweeps=[0], passive_steps=bad)
    for bad in (0, -2, 1.5, True, "4"):
        with pytest.raises(ValueError, match=r"`search\['max_sweeps'\]` must be None"):
            fitting.fit_cell(rec, sweeps=[0], search={"max_sweeps": bad})
    for bad in (0.0, -5.0, math.nan, True):
        with pytest.raises(ValueError, match="`stage_budget_s` must be None or a wall time"):
            fitting.fit_cell(rec, sweeps=[0], stage_budget_s=bad)
    dens = hhjax.Recording(t, np.full((1, t.size), -70.0), i_uA_per_cm2=np.zeros((1, t.size)))
    with pytest.raises(ValueError, match="must be in pA"):
        fitting.fit_cell(dens)
    with pytest.raises(ValueError, match="not a field"):
        fitting.CellModel("x", hhjax.pospischil("RS"),
                          {"g_leak": "channels.leak.g", "e_leak": "channels.leak.e"},
                          {"g_x": "channels.xx.g"}, {})


def _passive_cell():
    """A passive membrane as the model family (it compiles in half the time of a
    spiking one) and two noisy sweeps of it."""
    mb = hhjax.Membrane({"leak": hhjax.Channel(0.05, -65.0, {})}, {}, 1.0)
    model = fitting.CellModel(
        "passive", mb, {"g_leak": "channels.leak.g", "e_leak": "channels.leak.e"}, {},
        {"g_leak": (1e-3, 1.0), "e_leak": (-90.0, -40.0)})
    rec = _cell_recording(mb, [-60.0, -30.0], t_end=100.0, dt=0.2, on=20.0, off=80.0,
                          noise=0.2)
    return model, rec


def test_fit_cell_stage_budget_cuts_its_stages_short():
    """`stage_budget_s`: each Levenberg–Marquardt stage takes no step past its
    budget (its first evaluation always runs), and a warning says so; the search's
    own budget likewise (the first generation always runs)."""
    model, rec = _passive_cell()
    cf = fitting.fit_cell(rec, model, steps=5, passive_steps=5, stage_budget_s=1e-3,
                          search={"generations": 3, "population": 8, "time_budget_s": 0.0},
                          progress=False)
    assert cf.settings["stage_budget_s"] == 1e-3 and cf.status == "time_budget"
    assert len(cf.settings["search"]["history"]) == 1
    assert cf.settings["search"]["stopped"] == "time_budget"
    assert len(cf.settings["search"]["spread"]) == 1
    assert any(w.startswith("the global search ran 1 of its 3 generations within its 0 s")
               and "--search-budget 0" in w for w in cf.warnings), cf.warnings
    assert any(w.startswith("the passive stage took 0 of its 5 steps within its 0.001 s "
                            "budget") for w in cf.warnings), cf.warnings
    assert any(w.startswith("the local fit took 0 of its 5 steps") for w in cf.warnings)
    assert all(math.isfinite(v) for v in cf.values.values())
    # the local fit (no step: the search's best, scored the same) is kept, but cut
    # short by its budget it gets no standard errors, which would not hold there
    assert cf.settings["search"]["kept"] == "local"
    assert any(w.startswith("no standard errors: the local fit was kept but stopped by "
                            "its time budget") for w in cf.warnings), cf.warnings
    assert all(math.isnan(cf.stderr[k]) for k in cf.values)
    # where the time went, stage by stage
    timing = cf.settings["timing_s"]
    assert list(timing) == ["preprocessing", "passive", "search", "local",
                            "choice_and_validation", "standard_errors"]
    assert timing["standard_errors"] == 0.0
    assert all(v >= 0 for v in timing.values())
    assert sum(timing.values()) <= cf.wall_time
    assert cf.to_json()["settings"]["timing_s"] == timing
    # a kept search result has no standard errors: the summary says why (it printed
    # "± nan" for each parameter before)
    bare = dataclasses.replace(
        cf, settings={**cf.settings, "search": {**cf.settings["search"], "kept": "search"}})
    text = bare.summary()
    assert "nan" not in text.split(" fit sweeps")[0]
    assert "no standard errors: the global search's best was kept" in text
    # the summary marks the fitted sweeps a global search scored on, when not all
    assert "(* scored by the global search)" not in cf.summary()
    part = dataclasses.replace(cf, settings={**cf.settings, "search": {"sweeps": [1]}})
    rows = [ln for ln in part.summary().splitlines() if ln.strip()[:1].isdigit()
            or ln.strip().startswith("*")]
    assert " fit sweeps (* scored by the global search):" in part.summary()
    assert [ln.split()[0] for ln in rows] == ["0", "*"]
    full = dataclasses.replace(cf, settings={**cf.settings, "search": {"sweeps": [0, 1]}})
    assert "*" not in full.summary()


@pytest.fixture(scope="module", params=[0, 1])
def synthetic_fit(request):
    """`fit_cell` on five sweeps of a Pospischil RS cell with known parameters (0.3 mV
    noise, two noise draws), fitted on three; the search's size is fixed (30
    generations, no time budget) so the result does not depend on the machine's
    speed. (With noise draw 1 the fit used to fail: the passive stage shrinks the
    196 pF step estimate to 145 pF, and the search, starting there with a 5 %
    spread on the area, ended at 165 pF with held-out Γ ≈ 0; the area's spread is
    now 15 %.)"""
    truth = hhjax.pospischil("RS", g_na=70.0, g_kd=5.0, g_leak=0.04, e_leak=-68.0,
                             v_t=-58.0)
    rec = _cell_recording(truth, [-60.0, 120.0, 180.0, 150.0, 210.0], t_end=400.0,
                          off=350.0, noise=0.3, key=request.param)
    return fitting.fit_cell(rec, "pospischil-rs", sweeps=[0, 1, 2], validate=[3, 4],
                            steps=30, progress=False, model_spikes=True,
                            search={"generations": 30, "time_budget_s": None})


@pytest.mark.slow
def test_fit_cell_recovers_a_synthetic_cell_and_predicts_held_out_sweeps(synthetic_fit):
    """On a cell of the fitted family the local fit (with `model_spikes=True`)
    refines the search's best to the noise floor: fitted sweeps at the noise's RMSE (0.3 mV) with spike times within
    0.2 ms, exact counts, held-out sweeps meeting the issue's targets (count ≤ 15 %,
    RMSE ≤ 3 mV, Γ ≥ 0.6 on average), the capacitance within 8 % (200 and 212 pF on
    the two noise draws: the area is one of the sloppy directions). (Before the
    sub-threshold loss left out the model's own spikes, the local fit traded a spike
    for sub-threshold error, the search's best was kept: 177 pF, spikes 1-5 ms off,
    held-out Γ -0.04/0.18.) The parameters themselves are not all identifiable from
    three sweeps (g_kd and v_t_k trade off)."""
    cf = synthetic_fit
    assert cf.settings["model_spikes"] is True
    assert cf.settings["search"]["kept"] == "local"
    assert cf.values["capacitance_pF"] == pytest.approx(200.0, rel=0.08)
    # the standard errors: a parameter reported as identified has the truth within
    # 3 standard errors; one further off is not reported as identified (on this
    # cell the local fit stops short of the trace-residual minimum, with the truth
    # 5-25 standard errors away, before `remaining_step` caught it)
    truth = hhjax.pospischil("RS", g_na=70.0, g_kd=5.0, g_leak=0.04, e_leak=-68.0, v_t=-58.0)
    for label, path in cf.settings["parameter_paths"].items():
        true = float(np.asarray(get_parameter(truth, path.split("|")[0])))
        off = abs(cf.values[label] - true) / cf.stderr[label]
        assert off <= 3.0 or not cf.identifiable[label], (label, cf.values[label], true)
    assert cf.identifiable["capacitance_pF"] == cf.identifiable["area_cm2"]
    if not all(cf.identifiable.values()):
        assert "not identified" in cf.summary()
    for row in cf.training:
        assert row["spike_count_error"] == 0.0
        assert row["subthreshold_rmse_mV"] <= 0.4
        lat = row["first_spike_latency_error_ms"]
        assert lat is None or not np.isfinite(lat) or abs(lat) <= 0.2
    for row in cf.validation:
        assert row["spike_count_error"] <= 0.15
        assert row["subthreshold_rmse_mV"] <= 3.0
    assert np.mean([row["gamma"] for row in cf.validation]) >= 0.6


@pytest.mark.slow  # default-suite time; the budget, timing and summary checks it
# had are in test_fit_cell_stage_budget_cuts_its_stages_short, its passive
# estimate in test_estimate_passive_from_a_chirp_without_steps
def test_fit_cell_on_a_chirp_without_steps():
    """A sub-threshold chirp around a holding current (no step to read the passive
    properties from): the passive start comes from the whole sweep, the window
    covers the chirp, and the fit reproduces the trace. (Before: the window was the
    chirp's last 160 ms and the passive stage failed at every start.)"""
    truth = hhjax.pospischil("RS", g_na=0.0, g_leak=0.05, e_leak=-62.0)
    t = np.round(np.arange(0.0, 1200.0, 0.1), 10)
    i = _chirp_pA(t, hold=-30.0, amp=40.0, on=100.0, off=1100.0, f0=1.0, f1=30.0)
    rec0 = hhjax.Recording(t, np.zeros((1, t.size)), i_pA=i[None], area_cm2=AREA)
    sim = fitting.HHSimulator(rtol=1e-9, atol=1e-9)
    v, ok = sim(truth, jax.tree_util.tree_map(lambda a: a[0], rec0.stimulus()),
                jnp.asarray(t), (0.0, float(t[-1])), None)
    assert bool(ok)
    noisy = np.asarray(v) + np.random.default_rng(5).normal(0.0, 0.2, t.size)
    rec = hhjax.Recording(t, noisy[None], i_pA=i[None])
    # a budget the first generation already uses up: the report says the search
    # was cut short and what to do
    # (and no passive stage: the search starts from the passive estimate)
    cf = fitting.fit_cell(rec, "pospischil-rs", steps=3, progress=False, passive_steps=0,
                          search={"generations": 3, "population": 16, "time_budget_s": 0.0})
    assert cf.passive_result is None and cf.settings["passive_steps"] == 0
    assert len(cf.settings["search"]["history"]) == 1
    assert cf.settings["search"]["stopped"] == "time_budget"
    assert len(cf.settings["search"]["spread"]) == 1
    assert any(w.startswith("the global search ran 1 of its 3 generations within its 0 s")
               and "--search-budget 0" in w for w in cf.warnings), cf.warnings
    assert cf.passive.method == "trace"
    assert cf.settings["window_ms"][0] < 150.0 and cf.settings["window_ms"][1] >= 1100.0
    assert cf.passive.capacitance_pF == pytest.approx(200.0, rel=0.15)
    assert cf.values["capacitance_pF"] == pytest.approx(200.0, rel=0.1)
    assert cf.training[0]["subthreshold_rmse_mV"] < 1.0
    # where the time went, stage by stage
    timing = cf.settings["timing_s"]
    assert list(timing) == ["preprocessing", "passive", "search", "local",
                            "choice_and_validation", "standard_errors"]
    assert all(v >= 0 for v in timing.values())
    assert sum(timing.values()) <= cf.wall_time
    assert cf.to_json()["settings"]["timing_s"] == timing
    # a kept search result has no standard errors: the summary says why (it printed
    # "± nan" for each parameter before)
    bare = dataclasses.replace(
        cf, stderr={k: math.nan for k in cf.values},
        settings={**cf.settings, "search": {**cf.settings["search"], "kept": "search"}})
    text = bare.summary()
    assert "nan" not in text.split(" fit sweeps")[0]
    assert "no standard errors: the global search's best was kept" in text
    assert text.startswith("model pospischil-rs: fitted on")  # given, not chosen


def test_cli_fits_a_real_cell_and_scores_held_out_sweeps(shared_dir, tmp_path, capsys):
    """The issue's command on a real ABF file, short: fit sweeps 0, 4, 6, 8 of
    File_axon_5 on 165–765 ms (the 500 ms step and its offset), the default
    30-generation search without a time budget (a generation costs ~0.3 s here; 10
    generations of CMA-ES left the search at scores 0.53–0.69 over seeds 0–2 and the
    held-out sub-threshold RMSE at 1.2–4.1 mV, 30 at 0.26–0.28 and 2.2–2.8 mV) and 3
    local steps; hold out 1 (sub-threshold) and 7 (spiking). (Sweep 5 lies just
    below the cell's rheobase: whether a model fires there is a coin flip of the
    fit, so it is not asserted on. Sweep 7's Γ is 0.8, 1.0 and −0.03 over seeds
    0–2: a third spike placed early or late; the test fixes seed 0.)"""
    out = tmp_path / "cell"
    rc = cli_main([
        "fit", str(shared_dir / "data/pyabf/File_axon_5.abf"), "--model", "auto",
        "--sweeps", "0,4,6,8", "--validate", "1,7", "--t-start", "165",
        "--t-end", "765", "--steps", "3", "--search-generations", "30", "--search-budget", "0",
        "--out", str(out),
        "--no-progress",
    ])
    assert rc == 0
    summary = json.loads((out / "fit.json").read_text())
    assert (out / "fit.png").stat().st_size > 10_000
    assert summary["model"] == "pospischil-rs"  # 1.4 ms wide spikes at −20 mV
    # the report says why `auto` chose it, so a user can overrule the choice
    w = summary["settings"]["spike_width_ms_median"]
    assert 1.2 <= w < 1.7 and summary["settings"]["model_auto"] is True
    printed = capsys.readouterr().out
    assert (f"model pospischil-rs (auto: median spike width {w:.2f} ms at -20 mV, not "
            "below 1.2 ms): fitted on sweeps [0, 4, 6, 8]") in printed
    # which of the file's sweeps were read, and that the area is fitted (not the
    # Recording summary's `stimulus(area_cm2=)` advice, meaningless to a CLI user)
    assert printed.startswith("hhjax fit: File_axon_5.abf: sweeps [0, 1, 4, 6, 7, 8] read "
                              "(of 9), 12001 samples each, dt = 0.05 ms, t = 165 .. 765 ms, "
                              "current in pA; area fitted, starting from the passive "
                              "responses."), printed[:300]
    val = {r["sweep"]: r for r in summary["validation"]}
    assert sorted(val) == [1, 7]
    for r in val.values():
        assert {"sweep", "spike_count_error", "subthreshold_rmse_mV", "gamma",
                "first_spike_latency_error_ms"} <= set(r)
    # the held-out sub-threshold sweep: the target, ≤ 3 mV, and no spikes
    assert val[1]["n_spikes_data"] == 0 and val[1]["n_spikes_model"] == 0
    assert val[1]["subthreshold_rmse_mV"] <= 3.0
    # the held-out spiking sweep: the model fires, its first spike within 15 ms, and
    # its spikes coincide with the cell's better than chance (Γ ≥ 0.5)
    assert val[7]["n_spikes_data"] == 2 and val[7]["n_spikes_model"] >= 1
    assert abs(val[7]["first_spike_latency_error_ms"]) <= 15.0
    assert val[7]["gamma"] >= 0.5
    # the written model reloads by its name, and predicts the reported spikes
    mb, area = fitting.load_cell_fit(out)
    assert area == summary["params"]["area_cm2"]
    for label, path in summary["settings"]["parameter_paths"].items():
        assert float(get_parameter(mb, path.split("|")[-1])) == summary["params"][label]
    rec7 = hhjax.load_recording(shared_dir / "data/pyabf/File_axon_5.abf", sweeps=[7])
    rec7 = rec7.window(*summary["settings"]["window_ms"])
    v7, ok = fitting.HHSimulator()(
        mb, jax.tree_util.tree_map(lambda a: a[0], rec7.stimulus(area_cm2=area)),
        jnp.asarray(rec7.t_ms), (float(rec7.t0), float(rec7.t_end)), None)
    assert bool(ok)
    assert hhjax.recorded_spike_times(rec7.t_ms, np.asarray(v7), -20.0).size == (
        val[7]["n_spikes_model"])
    # the search ran and its result is reported
    assert len(summary["settings"]["search"]["history"]) == 30
    assert summary["settings"]["search"]["seed"] == 0
    assert summary["settings"]["search"]["method"] == "cma"
    assert summary["settings"]["search"]["generations"] == 30
    assert summary["settings"]["search"]["time_budget_s"] is None
    # it scored on every fitted sweep (no more than 4), named by the file's indices
    assert summary["settings"]["search"]["sweeps"] == [0, 4, 6, 8]
    assert not any("global search ran" in w for w in summary["warnings"])
    # standard errors belong to the local fit: present when it is kept, else none
    errs = [summary["stderr"][k] for k in summary["params"]]
    if summary["settings"]["search"]["kept"] == "local":
        assert all(e is not None and 0 < e < math.inf for e in errs), errs
    else:
        assert all(e is None for e in errs), errs
    # whether each ± can be trusted; one that cannot is named in a warning (on a
    # real spiking cell: not at a minimum of the trace residuals)
    ident = summary["identifiable"]
    assert set(ident) == set(summary["params"])
    for k, ok in ident.items():
        if not ok and summary["stderr"][k] is not None and k not in (
                "area_cm2", "capacitance_pF"):
            assert any(k in w.split(":")[0] or w.startswith(k) for w in summary["warnings"]), (
                k, summary["warnings"])
    # the capacitance is that of a neuron (tens to hundreds of pF)
    assert 50.0 < summary["params"]["capacitance_pF"] < 600.0


def test_cli_rejects_overlapping_and_unknown_sweeps(shared_dir, tmp_path, capsys):
    f = str(shared_dir / "data/pyabf/File_axon_5.abf")
    for args, message in (
        (["--sweeps", "0,4", "--validate", "4"], "held-out sweep must not be fitted"),
        (["--validate", "12"], "has 9 sweeps"),
        (["--validate", "a,b"], "comma-separated sweep indices"),
        (["--search-budget", "-1"], "--search-budget must be >= 0 s"),
        (["--passive-steps", "-1"], "--passive-steps must be >= 0"),
        (["--stage-budget", "-1"], "--stage-budget must be >= 0 s"),
    ):
        with pytest.raises(SystemExit):
            cli_main(["fit", f, *args, "--out", str(tmp_path)])
        assert message in capsys.readouterr().err, args


def test_fit_cell_resumes_each_stage_from_its_checkpoint(tmp_path, monkeypatch,
                                                         ctrl_c_on_call):
    """With `checkpoint=`, a fit interrupted in its global search and resumed ends
    where the uninterrupted fit does, bit for bit: the finished passive stage is
    not run again, the search continues from its last generation, the local fit
    starts from the same point. A finished fit resumed simulates no search again;
    a checkpoint of other settings is refused."""
    import fitting._cell as C
    import fitting._search as S

    model, rec = _passive_cell()
    kw = dict(search={"generations": 3, "population": 8, "time_budget_s": None},
              steps=3, passive_steps=3, stage_budget_s=None, progress=False)
    full = fitting.fit_cell(rec, model, checkpoint=tmp_path / "full.npz", **kw)

    score = ctrl_c_on_call(S, "cell_score", 2)
    ck = tmp_path / "ck.npz"
    with pytest.raises(fitting.SearchInterrupted):
        fitting.fit_cell(rec, model, checkpoint=ck, **kw)
    assert {p.name for p in tmp_path.glob("ck*")} >= {
        "ck.passive.npz", "ck.passive.json", "ck.search.json"}
    assert not ck.exists()  # the local fit had not started
    monkeypatch.setattr(S, "cell_score", score)
    fits, fit = [], C.fit

    def recording_fit(*a, **k):
        fits.append(k["stages"][0].name)
        return fit(*a, **k)

    monkeypatch.setattr(C, "fit", recording_fit)
    cf = fitting.fit_cell(rec, model, checkpoint=ck, resume=True, **kw)
    assert "passive" not in fits  # restored, not run again
    assert cf.values == full.values
    assert cf.passive_result.values.keys() == full.passive_result.values.keys()
    for k, v in full.passive_result.values.items():
        assert float(cf.passive_result.values[k]) == float(v)
    assert cf.passive_result.history == full.passive_result.history
    # restored from its JSON record with its types: the same fit.json summary
    def summary(r):
        return {k: v for k, v in r.to_json().items() if k != "wall_time_s"}

    assert summary(cf.passive_result) == summary(full.passive_result)
    assert cf.settings["search"]["history"] == full.settings["search"]["history"]
    assert cf.settings["search"]["n_evaluated"] == 24
    assert [r["subthreshold_rmse_mV"] for r in cf.training] == [
        r["subthreshold_rmse_mV"] for r in full.training]

    # finished: resumed again, the search does not simulate; the local fit resumes
    # from its checkpoint (written after its last step: same fingerprint, same start)
    def fails(*a, **k):
        raise AssertionError("a finished search simulated again")

    monkeypatch.setattr(S, "cell_score", fails)
    again = fitting.fit_cell(rec, model, checkpoint=ck, resume=True, **kw)
    assert again.values == full.values

    # the written fit reloads as the fitted membrane and area (a custom model is given)
    full.write(tmp_path / "out")
    mb, area = fitting.load_cell_fit(tmp_path / "out", model)
    assert area == full.area_cm2
    for a, b in zip(jax.tree_util.tree_leaves(mb), jax.tree_util.tree_leaves(full.model)):
        assert np.asarray(a).dtype == np.asarray(b).dtype and np.array_equal(a, b)
    with pytest.raises(ValueError, match="custom model 'passive': pass it as `model=`"):
        fitting.load_cell_fit(tmp_path / "out" / "fit.json")
    with pytest.raises(ValueError, match="does not match"):
        fitting.load_cell_fit(tmp_path / "out", fitting.cell_model("pospischil-rs"))
    with pytest.raises(TypeError, match="`model` must be a fitting.CellModel"):
        fitting.load_cell_fit(tmp_path / "out", "passive")
    with pytest.raises(FileNotFoundError, match="No fit result"):
        fitting.load_cell_fit(tmp_path / "nowhere")
    (tmp_path / "bad.json").write_text("{truncated")
    with pytest.raises(ValueError, match="Could not read"):
        fitting.load_cell_fit(tmp_path / "bad.json")
    (tmp_path / "hh.json").write_text(json.dumps({"model": "hh", "params": {}}))
    with pytest.raises(ValueError, match="is not a cell fit"):
        fitting.load_cell_fit(tmp_path / "hh.json")
    # resumed with more generations, the search goes on from its checkpoint and the
    # local fit starts again from the new best (its old checkpoint started elsewhere:
    # resumed, it was refused as another fit's). Started from a capacitance 50 % off
    # without the passive stage, the search improves on its start generation after
    # generation.
    monkeypatch.setattr(S, "cell_score", score)
    # (a 1 ms stage budget: the local fit's first evaluation, no step, and no
    # standard errors — this is about whose start its checkpoint holds)
    kw0 = {**kw, "passive_steps": 0, "capacitance_pF": 300.0, "stage_budget_s": 1e-3,
           "search": {"generations": 2, "population": 8, "time_budget_s": None}}
    ck2 = tmp_path / "ck2.npz"
    first = fitting.fit_cell(rec, model, checkpoint=ck2, **kw0)
    more = fitting.fit_cell(rec, model, checkpoint=ck2, resume=True,
                            **{**kw0, "search": {**kw0["search"], "generations": 8}})
    h0, h1 = first.settings["search"]["history"], more.settings["search"]["history"]
    assert h1[:2] == h0 and len(h1) == 8 and h1[-1] < h0[-1]  # a new best
    assert more.settings["search"]["n_evaluated"] == 64
    assert any("the global search went on from its checkpoint (2 → 8 generations)" in w
               for w in more.warnings), more.warnings
    with pytest.raises(ValueError, match="belongs to a different fit"):
        fitting.fit_cell(rec, model, checkpoint=ck, resume=True, **{**kw, "passive_steps": 4})
    with pytest.raises(ValueError, match="`checkpoint`: the folder .* does not exist"):
        fitting.fit_cell(rec, model, checkpoint=tmp_path / "no" / "ck.npz", **kw)


def test_ctrl_c_in_the_search_keeps_its_best_so_far(ctrl_c_on_call):
    """Ctrl-C during `search_cell` raises `SearchInterrupted` (a KeyboardInterrupt)
    holding the best candidate of the generations finished before it."""
    import fitting._search as S

    truth = hhjax.pospischil("RS", g_leak=0.04, e_leak=-68.0)
    rec = _cell_recording(truth, [150.0], t_end=60.0, dt=0.2, on=10.0, off=50.0)
    model = fitting.cell_model("pospischil-rs")
    ctrl_c_on_call(S, "cell_score", 3)
    labels = {k: model.labels[k] for k in ("g_na", "g_kd")}
    with pytest.raises(fitting.SearchInterrupted) as e:
        fitting.search_cell(truth, rec, labels, {k: model.bounds[k] for k in labels},
                            area_cm2=AREA, population=8, generations=5,
                            time_budget_s=None)
    assert isinstance(e.value, KeyboardInterrupt)
    res = e.value.result
    assert res.stopped == "interrupted" and len(res.history) == 2
    assert res.n_evaluated == 16 and res.score == res.history[-1] < math.inf
    for k, path in labels.items():
        lo, hi = model.bounds[k]
        assert lo < res.values[k] < hi
        assert float(get_parameter(e.value.membrane, path)) == pytest.approx(res.values[k])


def test_cli_writes_the_searchs_best_on_ctrl_c(tmp_path, monkeypatch, capsys):
    """`hhjax fit` interrupted in the global search writes its best candidate so
    far to fit.json (status "interrupted") and exits with 130."""
    import fitting._cell as C

    truth = hhjax.pospischil("RS", g_leak=0.04, e_leak=-68.0)
    rec = _cell_recording(truth, [-60.0, 150.0], t_end=120.0, dt=0.2, on=20.0, off=100.0)
    rec.save_npz(tmp_path / "cell.npz")
    found = fitting.SearchResult(values={"g_na": 60.0}, score=0.8, terms={},
                                 history=[1.2, 0.8], n_evaluated=512, wall_time=3.0,
                                 spread=[0.15, 0.12], stopped="interrupted")

    def interrupted(mb, *a, **kw):
        raise fitting.SearchInterrupted(found, mb)

    monkeypatch.setattr(C, "search_cell", interrupted)
    rc = cli_main(["fit", str(tmp_path / "cell.npz"), "--model", "pospischil-rs",
                   "--passive-steps", "0", "--out", str(tmp_path / "out"), "--no-progress"])
    assert rc == 130
    summary = json.loads((tmp_path / "out" / "fit.json").read_text())
    assert summary["status"] == "interrupted" and summary["interrupted_in"] == "search"
    assert summary["search"]["values"] == {"g_na": 60.0}
    assert summary["search"]["generations_run"] == 2 and summary["search"]["score"] == 0.8
    out = capsys.readouterr().out
    assert "interrupted during the global search after 2 generation(s)" in out
    assert "continue with the same command plus --resume" in out
    with pytest.raises(ValueError, match="interrupted fit"):
        fitting.load_cell_fit(tmp_path / "out")


def test_cli_search_options():
    """`--search-budget 0` is no time limit (the generation count alone: the same
    fit on any machine); `--search-generations 0` skips the search."""
    from fitting._cli import _search_option, build_parser

    parser = build_parser()
    assert _search_option(10, 0.0, parser) == {"generations": 10, "time_budget_s": None,
                                               "seed": 0}
    assert _search_option(10, 60.0, parser, 3) == {"generations": 10, "time_budget_s": 60.0,
                                                   "seed": 3}
    assert _search_option(0, 60.0, parser) is False
    # --search-sweeps: 0 is every fitted sweep, absent is fit_cell's default
    assert _search_option(10, 0.0, parser, 0, 0)["max_sweeps"] is None
    assert _search_option(10, 0.0, parser, 0, 2)["max_sweeps"] == 2
    assert "max_sweeps" not in _search_option(10, 0.0, parser, 0, None)
    with pytest.raises(SystemExit):
        _search_option(10, 0.0, parser, 0, -1)
    assert parser.parse_args(["fit", "c.npz", "--out", "o"]).search_sweeps is None
    # --search-dtype: absent is fit_cell's default (the fit's own dtype)
    args = parser.parse_args(["fit", "c.npz", "--out", "o"])
    assert args.search_dtype is None and "dtype" not in _search_option(10, 0.0, parser)
    args = parser.parse_args(["fit", "c.npz", "--out", "o", "--search-dtype", "float64"])
    assert _search_option(10, 0.0, parser, 0, None, args.search_dtype)["dtype"] == "float64"
    with pytest.raises(SystemExit):
        parser.parse_args(["fit", "c.npz", "--out", "o", "--search-dtype", "float16"])
    assert parser.parse_args(["fit", "c.npz", "--out", "o", "--search-sweeps", "3"]
                             ).search_sweeps == 3
    # --seed reaches the cell search (it seeded only --model hh's starts before)
    args = parser.parse_args(["fit", "cell.npz", "--out", "o", "--seed", "7"])
    assert _search_option(args.search_generations, args.search_budget, parser,
                          args.seed)["seed"] == 7
    assert args.passive_steps is None  # fit_cell's default
    from fitting._cli import _stage_budget

    assert args.stage_budget == 60.0 and _stage_budget(args.stage_budget, parser) == 60.0
    assert _stage_budget(0.0, parser) is None  # no limit
    assert parser.parse_args(["fit", "c.npz", "--out", "o", "--passive-steps", "0"]
                             ).passive_steps == 0


def test_a_local_fit_ending_on_a_bound_still_gets_its_standard_errors():
    """On sub-threshold sweeps alone (File_axon_5 sweeps 0, 2, 4) the local fit drove
    g_na onto its lower bound, 5 mS/cm²: the transform maps the bounds open, so the
    value came back exactly on it, and the standard-error evaluation, which starts
    a fit there, refused the start ("lies outside its bounds"; hhjax fit exited with
    an error). fit_cell moves such values just inside; the parameter is reported as
    ended at its bound, not identified."""
    from fitting._cell import _inside_bounds

    mb = hhjax.pospischil("RS", g_leak=0.05, e_leak=-65.0, g_na=5.0)
    bounds = {"channels.na.g": (5.0, 500.0), "channels.leak.g": (1e-3, 2.0),
              "area_cm2": (AREA / 5, AREA * 5)}
    start, area = _inside_bounds(mb, bounds, AREA * 5)
    assert 5.0 < float(start.channels["na"].g) < 5.0 + 1e-3
    assert float(start.channels["leak"].g) == 0.05 and AREA * 4.999 < area < AREA * 5
    rec = _cell_recording(mb, [-50.0, 50.0], t_end=120.0, on=20.0, off=100.0, noise=0.2)
    with pytest.raises(ValueError, match="outside its bounds"):
        fitting.fit(mb, rec, list(bounds), bounds=bounds, area_cm2=AREA,
                    stages=[fitting.Stage(fitting.LevenbergMarquardt(steps=0),
                                          fitting.TraceLoss())], progress=False)
    res = fitting.fit(start, rec, list(bounds), bounds=bounds, area_cm2=area,
                      stages=[fitting.Stage(fitting.LevenbergMarquardt(steps=0),
                                            fitting.TraceLoss())],
                      retry=False, progress=False)
    assert not res.identifiable["channels.na.g"] and not res.identifiable["area_cm2"]
    assert any("channels.na.g" in w and "lower bound 5" in w for w in res.warnings)
    assert any("area_cm2" in w and "upper bound" in w for w in res.warnings)


@pytest.mark.parametrize("dt, used", [(0.04, 0.08), (0.05, 0.1), (1 / 30, 0.1),
                                      (0.0625, 0.0625), (0.25, 0.25), (0.02, 0.1)])
def test_fit_cell_coarsens_by_whole_samples(dt, used):
    """The fit's sample spacing is the largest whole multiple of the recording's not
    above `dt_ms` (block means, no interpolation). A 25 kHz recording stopped
    `fit_cell` before: `resample(method='mean')` refused 0.1 ms = 2.5 samples."""
    from fitting._cell import _coarsen

    t = np.arange(0.0, 60.0, dt)
    v = -70.0 + np.sin(t)
    rec = hhjax.Recording(t, np.stack([v, v + 1.0]), i_pA=np.zeros((2, t.size)))
    out = _coarsen(rec, 0.1)
    assert out.dt == pytest.approx(used, rel=1e-9)
    k = round(used / dt)
    n = t.size // k
    np.testing.assert_allclose(np.asarray(out.v_mV)[:, :n],
                               np.asarray(rec.v_mV)[:, : n * k].reshape(2, n, k).mean(-1))


@pytest.mark.slow
def test_cli_fits_a_25_khz_recording_with_a_junction_potential(tmp_path):
    """End to end through `hhjax fit`, as a user with an unseen cell would: a 25 kHz
    recording (0.04 ms; the fit runs at 0.08 ms) whose voltage carries a +14 mV
    liquid-junction potential, removed with `--ljp-mV 14`: the resting potential
    and capacitance of the passive truth come back, and fit.json records the
    correction. (Slow: 55 s in the parallel suite. The default suite keeps its
    parts: the whole-sample coarsening above, the loaders' junction-potential
    correction in tests/test_io.py, the CLI real-cell fit.)"""
    truth = hhjax.pospischil("RS", g_na=0.0, g_leak=0.05, e_leak=-65.0)
    rec = _cell_recording(truth, [-60.0, -30.0, 30.0], dt=0.04)
    shifted = hhjax.Recording(rec.t_ms, np.asarray(rec.v_mV) + 14.0,
                              i_pA=rec.i_samples, name="shifted")
    shifted.save_npz(tmp_path / "cell.npz")
    out = tmp_path / "fit"
    rc = cli_main(["fit", str(tmp_path / "cell.npz"), "--model", "pospischil-rs",
                   "--sweeps", "0,2", "--validate", "1", "--ljp-mV", "14",
                   "--search-generations", "0", "--steps", "2", "--out", str(out),
                   "--no-progress"])
    assert rc == 0
    summary = json.loads((out / "fit.json").read_text())
    assert summary["settings"]["dt_ms"] == pytest.approx(0.08)
    assert summary["settings"]["ljp_corrected_mV"] == 14.0
    rest = float(np.asarray(rec.v_mV)[0, 0])  # the truth's resting potential (not +14)
    assert summary["passive_estimate"]["e_rest_mV"] == pytest.approx(rest, abs=0.5)
    assert summary["params"]["e_leak"] == pytest.approx(-65.0, abs=1.0)
    assert summary["params"]["capacitance_pF"] == pytest.approx(200.0, rel=0.1)
    assert summary["validation"][0]["subthreshold_rmse_mV"] < 1.0


def _ramp_rc_cell(amps_pA, r_MOhm=150.0, tau_ms=22.5, v_spike=-50.0):
    """RC cells (150 MΩ, 22.5 ms: 150 pF) on ramps from 100 ms, 500 ms long, with a
    1 ms spike pasted wherever the RC potential first passes `v_spike` (every sweep
    fires, none has a step)."""
    t = np.round(np.arange(0.0, 700.0, 0.1), 10)
    i = np.stack([np.where(t >= 100.0, a * (t - 100.0) / 500.0, 0.0) for a in amps_pA])
    v = np.stack([_rc_trace(t, ik, r_MOhm, tau_ms) for ik in i])
    for vk in v:
        k = int(np.argmax(vk >= v_spike))
        assert k > 0
        vk[k: k + 10] = 30.0
    return hhjax.Recording(t, v, i_pA=i, name="ramps")


def test_passive_start_on_ramps_that_all_fire():
    """Ramps only, every sweep firing: no step to read the passive properties from,
    no step edge for the onset slope, no spike-free sweep. `fit_cell` starts from the
    RC fit of each sweep up to its first spike and says that this start is weak (it
    stopped with "Give the area/capacitance explicitly" before). A current that
    never varies before the spikes gives no start at all: the error names both
    attempts and how to give the size."""
    from fitting._cell import _passive_start

    rec = _ramp_rc_cell([300.0, 500.0])
    passive, c_pF, warned = _passive_start(rec, -20.0, None, None)
    assert passive.method == "trace"
    assert c_pF is None  # the fit takes the size from `passive`
    assert passive.capacitance_pF == pytest.approx(150.0, rel=0.05)
    assert passive.r_in_MOhm == pytest.approx(150.0, rel=0.05)
    assert passive.e_rest_mV == pytest.approx(-70.0, abs=0.1)
    assert len(warned) == 1
    assert "started from the sweeps up to their first spikes" in warned[0]
    assert "--capacitance-pF" in warned[0]
    # a given size is kept and no estimate is forced on it
    _, c_given, warned = _passive_start(rec, -20.0, 120.0, None)
    assert c_given == 120.0 and "the given size" in warned[0]
    # spikes at a constant current: nothing to start from
    flat = hhjax.Recording(rec.t_ms, np.asarray(rec.v_mV)[:1],
                           i_pA=np.full((1, rec.t_ms.size), 100.0))
    with pytest.raises(ValueError, match="capacitance_pF=.*up to their first spikes gave none"):
        _passive_start(flat, -20.0, None, None)
    with pytest.raises(ValueError, match="capacitance_pF=.*up to their first spikes gave none"):
        fitting.fit_cell(flat, "pospischil-rs", steps=1, progress=False, search=False)


@pytest.mark.slow
def test_fit_cell_on_ramps_that_all_fire():
    """The same end to end, on a simulated pospischil-rs cell: the fit runs from the
    start of the sweeps before their first spikes and says so."""
    truth = hhjax.pospischil("RS")
    t = np.round(np.arange(0.0, 700.0, 0.1), 10)
    ramps = np.stack([np.where(t >= 100.0, a * (t - 100.0) / 500.0, 0.0) for a in (300.0, 500.0)])
    rec0 = hhjax.Recording(t, np.zeros_like(ramps), i_pA=ramps, area_cm2=AREA)
    sim = fitting.HHSimulator(rtol=1e-8, atol=1e-8)
    v, ok = jax.jit(jax.vmap(lambda s: sim(truth, s, jnp.asarray(t), (0.0, float(t[-1])), None)))(
        rec0.stimulus())
    assert bool(jnp.all(ok))
    ramp = hhjax.Recording(t, np.asarray(v), i_pA=ramps)
    assert all(hhjax.recorded_spike_times(t, np.asarray(v)[k]).size > 0 for k in range(2))
    cf = fitting.fit_cell(ramp, "pospischil-rs", sweeps=[0], validate=[1], steps=1,
                          progress=False, search=False)
    assert cf.passive.method == "trace"
    assert any("started from the sweeps up to their first spikes" in w and
               "--capacitance-pF" in w for w in cf.warnings), cf.warnings
    assert 20.0 < cf.values["capacitance_pF"] < 1000.0
