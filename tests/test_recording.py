"""`hhjax.Recording` and `hhjax.load_recording`: construction checks, the stimulus a
recording hands to the simulator (exact at the sample times), pA -> µA/cm²
conversion, subsets, `.npz`/`.csv` round trips, load errors, and the real recordings
in ../shared/data."""

import json
import os
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hhjax

T_STEP = np.arange(2001) / 100.0  # 0 .. 20 ms, 0.01 ms, exact multiples


def _sample(stim, ts):
    """A batched stimulus evaluated sweep-wise at `ts`: float64 numpy (S, T)."""
    ts = jnp.asarray(ts)
    out = jax.vmap(lambda s: jax.vmap(s)(ts))(stim)
    return np.asarray(out, dtype=np.float64)


def _step_rec(**kw):
    """Two sweeps of step currents in pA (5..15 ms at 50 pA; 2..18 ms at 20 pA on a
    5 pA holding current), with a sine-ish voltage."""
    t = T_STEP
    i = np.stack(
        [
            np.where((t >= 5) & (t < 15), 50.0, 0.0),
            np.where((t >= 2) & (t < 18), 20.0, 5.0),
        ]
    )
    v = -65.0 + np.stack([np.sin(t), np.cos(t)])
    return hhjax.Recording(t, v, i_pA=i, **kw)


# --------------------------------------------------------------------------------------
# construction


def test_basic_properties_and_copies():
    t = np.linspace(0.0, 10.0, 101)
    v = np.full(101, -65.0, dtype=np.float32)
    i = np.zeros(101)
    rec = hhjax.Recording(t, v, i_uA_per_cm2=i, meta={"cell": "a"}, name="r")
    assert rec.n_sweeps == 1 and rec.n_samples == 101
    assert rec.v_mV.shape == (1, 101) and rec.v_mV.dtype == np.float64
    assert rec.i_samples.shape == (1, 101) and rec.current_unit == "uA_per_cm2"
    assert rec.t0 == 0.0 and rec.t_end == 10.0 and rec.duration == 10.0
    assert rec.dt == pytest.approx(0.1) and rec.uniform
    assert rec.meta == {"cell": "a"} and rec.name == "r"
    # never aliases the user's arrays, and is read-only
    t[3] = 99.0
    v[0] = 0.0
    assert rec.t_ms[3] == pytest.approx(0.3) and rec.v_mV[0, 0] == -65.0
    with pytest.raises(ValueError):
        rec.v_mV[0, 0] = 1.0
    s = rec.summary()
    assert "1 sweep" in s and "101 samples" in s and "µA/cm²" in s and "0.1 ms" in s


def test_non_uniform_sampling():
    t = np.array([0.0, 0.1, 0.2, 0.5, 0.6])
    rec = hhjax.Recording(t, np.zeros(5), i_pA=np.zeros(5))
    assert not rec.uniform and rec.dt == pytest.approx(0.1)
    assert "non-uniform" in rec.summary()


def test_one_dimensional_current_is_used_for_every_sweep():
    t = np.arange(5.0)
    rec = hhjax.Recording(t, np.zeros((3, 5)), i_pA=np.arange(5.0))
    assert rec.i_samples.shape == (3, 5)
    np.testing.assert_array_equal(rec.i_samples[2], np.arange(5.0))


def test_nan_in_v_names_sweep_time_and_index():
    t = np.arange(1001) / 40.0  # t[500] = 12.5 ms
    v = np.zeros((3, 1001))
    v[2, 500] = np.nan
    with pytest.raises(
        ValueError,
        match=r"v_mV has a non-finite sample in sweep 2 at t = 12\.5 ms \(index 500\)",
    ):
        hhjax.Recording(t, v, i_pA=np.zeros((3, 1001)))


def test_inf_in_current_names_sweep():
    t = np.arange(10.0)
    i = np.zeros((2, 10))
    i[1, 3] = np.inf
    with pytest.raises(ValueError, match=r"i_pA has a non-finite sample in sweep 1 "):
        hhjax.Recording(t, np.zeros((2, 10)), i_pA=i)
    with pytest.raises(ValueError, match=r"i_uA_per_cm2 .*sweep 1 at t = 3 ms"):
        hhjax.Recording(t, np.zeros((2, 10)), i_uA_per_cm2=i)


def test_shape_mismatches_give_both_shapes():
    t = np.arange(101.0)
    with pytest.raises(ValueError, match=r"\(3, 100\).*\(101,\)"):
        hhjax.Recording(t, np.zeros((3, 100)), i_pA=np.zeros((3, 100)))
    with pytest.raises(ValueError, match=r"i_pA.*\(2, 101\).*\(3, 101\)"):
        hhjax.Recording(t, np.zeros((3, 101)), i_pA=np.zeros((2, 101)))
    with pytest.raises(ValueError, match=r"v_mV"):
        hhjax.Recording(t, np.zeros((2, 3, 101)), i_pA=np.zeros(101))


@pytest.mark.parametrize(
    "t, match",
    [
        (np.array([0.0]), "at least 2"),
        (np.zeros((2, 2)), "1-D"),
        (np.array([0.0, 1.0, 1.0]), "strictly increasing"),
        (np.array([0.0, 2.0, 1.0]), "strictly increasing"),
        (np.array([0.0, np.nan, 2.0]), "finite"),
    ],
)
def test_bad_time_axis(t, match):
    with pytest.raises(ValueError, match=match):
        hhjax.Recording(t, np.zeros(t.shape[-1]), i_pA=np.zeros(t.shape[-1]))


def test_non_numeric_data_is_a_type_error():
    with pytest.raises(TypeError, match="t_ms"):
        hhjax.Recording("0, 1", np.zeros(2), i_pA=np.zeros(2))
    with pytest.raises(TypeError, match="v_mV"):
        hhjax.Recording(np.arange(2.0), np.array(["a", "b"]), i_pA=np.zeros(2))


def test_exactly_one_current_source():
    t, v = np.arange(4.0), np.zeros(4)
    with pytest.raises(TypeError, match=r"i_uA_per_cm2=.*i_pA=.*stimulus="):
        hhjax.Recording(t, v)
    with pytest.raises(ValueError, match=r"exactly one.*`i_uA_per_cm2` and `i_pA`"):
        hhjax.Recording(t, v, i_pA=np.zeros(4), i_uA_per_cm2=np.zeros(4))
    with pytest.raises(ValueError, match=r"`i_pA` and `stimulus`"):
        hhjax.Recording(t, v, i_pA=np.zeros(4), stimulus=[hhjax.StepCurrent(1.0)])


@pytest.mark.parametrize(
    "kw, exc, match",
    [
        (dict(area_cm2=-1e-5), ValueError, "area_cm2.*> 0 cm²"),
        (dict(area_cm2=0.0), ValueError, "area_cm2"),
        (dict(area_cm2=np.inf), ValueError, "area_cm2"),
        (dict(capacitance_pF=0.0), ValueError, "capacitance_pF.*pF"),
        (dict(capacitance_pF=np.nan), ValueError, "capacitance_pF"),
        (dict(capacitance_pF="10"), TypeError, "capacitance_pF"),
        (dict(capacitance_pF=[1.0, 2.0]), TypeError, "capacitance_pF"),
        (dict(capacitance_pF=10.0, c_m=0.0), ValueError, "c_m.*µF/cm²"),
        (dict(area_cm2=2e-5, capacitance_pF=10.0), ValueError, "disagrees"),
        (dict(meta=[1, 2]), TypeError, "meta"),
        (dict(meta={"x": object()}), TypeError, "meta"),
        (dict(name=3), TypeError, "name"),
    ],
)
def test_bad_area_capacitance_meta(kw, exc, match):
    with pytest.raises(exc, match=match):
        hhjax.Recording(np.arange(4.0), np.zeros(4), i_pA=np.zeros(4), **kw)


def test_area_from_capacitance_and_consistency():
    rec = _step_rec(capacitance_pF=20.0, c_m=2.0)
    assert rec.area_cm2 == pytest.approx(1e-5, rel=1e-15)
    rec2 = _step_rec(area_cm2=1e-5 * (1 + 1e-12), capacitance_pF=20.0, c_m=2.0)
    assert rec2.area_cm2 == 1e-5 * (1 + 1e-12)  # the given area, consistent


def test_meta_is_a_deep_copy():
    meta = {"a": {"b": [1, 2]}, "x": np.float32(1.5), "arr": np.arange(3)}
    rec = hhjax.Recording(np.arange(2.0), np.zeros(2), i_pA=np.zeros(2), meta=meta)
    meta["a"]["b"].append(3)
    assert rec.meta == {"a": {"b": [1, 2]}, "x": 1.5, "arr": [0, 1, 2]}
    m = rec.meta
    m["a"]["b"].clear()
    assert rec.meta["a"]["b"] == [1, 2]


# --------------------------------------------------------------------------------------
# stimulus and current density


def test_step_currents_become_compressed_previous_sampled_current():
    rec = _step_rec(capacitance_pF=10.0)
    stim = rec.stimulus()
    assert isinstance(stim, hhjax.SampledCurrent)
    assert stim.interpolation == "previous"
    # t0 and the two edges: 3 change points per sweep instead of 2001 samples
    assert stim.times.shape == (2, 3) and stim.values.shape == (2, 3)
    np.testing.assert_array_equal(np.asarray(stim.times[0]), [0.0, 5.0, 15.0])
    np.testing.assert_array_equal(np.asarray(stim.times[1]), [0.0, 2.0, 18.0])
    density = rec.current_density()
    np.testing.assert_array_equal(density, rec.i_samples * 1e-6 / rec.area_cm2)
    np.testing.assert_array_equal(_sample(stim, rec.t_ms), density)
    np.testing.assert_allclose(density.max(axis=1), [5.0, 2.0], rtol=1e-12)


def test_compressed_sweeps_are_padded_after_t_end():
    t = np.arange(100.0) / 10
    i = np.zeros((3, 100))
    i[1, 30:] = 4.0
    i[2, 10:20] = 1.0
    i[2, 50:] = -2.0
    rec = hhjax.Recording(t, np.zeros((3, 100)), i_uA_per_cm2=i)
    stim = rec.stimulus()
    assert stim.interpolation == "previous" and stim.times.shape == (3, 4)
    times = np.asarray(stim.times)
    np.testing.assert_array_equal(
        times[0], [0.0, rec.t_end + 1, rec.t_end + 2, 9.9 + 3]
    )
    np.testing.assert_array_equal(times[2], [0.0, 1.0, 2.0, 5.0])
    np.testing.assert_array_equal(_sample(stim, t), i)
    # the padding holds the last value after the recording too
    np.testing.assert_array_equal(_sample(stim, [100.0])[:, 0], [0.0, 4.0, -2.0])


def test_noisy_current_becomes_linear_and_exact_at_samples():
    rng = np.random.default_rng(0)
    t = np.cumsum(rng.uniform(0.05, 0.15, 400))
    i = rng.normal(size=(2, 400)) * 30.0
    rec = hhjax.Recording(t, np.zeros((2, 400)), i_pA=i, area_cm2=3e-6)
    stim = rec.stimulus()
    assert stim.interpolation == "linear"
    np.testing.assert_array_equal(_sample(stim, t), rec.current_density())
    # linear between samples
    mid = 0.5 * (t[10] + t[11])
    expected = 0.5 * (rec.current_density()[:, 10] + rec.current_density()[:, 11])
    np.testing.assert_allclose(_sample(stim, [mid])[:, 0], expected, rtol=1e-12)


@settings(max_examples=15, deadline=None)
@given(
    levels=st.lists(
        st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=4,
    ),
    data=st.data(),
)
def test_piecewise_constant_reproduced_exactly(levels, data):
    n = 200
    edges = sorted(
        data.draw(
            st.lists(
                st.integers(1, n - 1),
                min_size=len(levels) - 1,
                max_size=len(levels) - 1,
                unique=True,
            )
        )
    )
    i = np.empty(n)
    for lvl, a, b in zip(levels, [0, *edges], [*edges, n]):
        i[a:b] = lvl
    t = np.arange(n) * 0.025
    rec = hhjax.Recording(t, np.zeros(n), i_pA=i, area_cm2=7e-6)
    stim = rec.stimulus()
    assert stim.interpolation == "previous"
    assert stim.times.shape[1] <= len(levels)
    np.testing.assert_array_equal(_sample(stim, t), rec.current_density())


def test_pa_conversion_with_area_and_with_capacitance():
    t = np.arange(10.0)
    i = np.full((1, 10), 100.0)  # pA
    by_area = hhjax.Recording(t, np.zeros(10), i_pA=i, area_cm2=2e-5)
    np.testing.assert_allclose(by_area.current_density(), 5.0, rtol=1e-14)
    # 40 pF at 2 µF/cm² -> 2e-5 cm²
    by_cap = hhjax.Recording(t, np.zeros(10), i_pA=i, capacitance_pF=40.0, c_m=2.0)
    np.testing.assert_allclose(by_cap.current_density(), 5.0, rtol=1e-14)
    np.testing.assert_allclose(_sample(by_cap.stimulus(), t), 5.0, rtol=1e-14)
    # an explicit area overrides the recording's
    np.testing.assert_allclose(by_cap.current_density(area_cm2=1e-5), 10.0, rtol=1e-14)


def test_pa_without_area_needs_area_argument():
    rec = _step_rec()
    assert rec.area_cm2 is None and "area unknown" in rec.summary()
    with pytest.raises(ValueError, match=r"area_cm2=.*capacitance_pF="):
        rec.stimulus()
    with pytest.raises(ValueError, match=r"area_cm2"):
        rec.current_density()
    with pytest.raises(ValueError, match=r"area_cm2"):
        rec.stimulus(area_cm2=-1.0)
    stim = rec.stimulus(area_cm2=1e-5)
    np.testing.assert_array_equal(_sample(stim, rec.t_ms), rec.current_density(1e-5))


def test_stimulus_area_can_be_traced():
    rec = _step_rec()

    @jax.jit
    def at_10ms(area):
        return jax.vmap(lambda s: s(10.0))(rec.stimulus(area_cm2=area))

    np.testing.assert_allclose(np.asarray(at_10ms(1e-5)), [5.0, 2.0], rtol=1e-12)
    g = jax.grad(lambda a: at_10ms(a)[0])(1e-5)
    np.testing.assert_allclose(float(g), -50e-6 / 1e-10, rtol=1e-10)


def test_density_recording_rejects_area():
    rec = hhjax.Recording(np.arange(3.0), np.zeros(3), i_uA_per_cm2=np.ones(3))
    with pytest.raises(ValueError, match="area"):
        rec.stimulus(area_cm2=1e-5)
    with pytest.raises(ValueError, match="area"):
        rec.current_density(area_cm2=1e-5)


def test_stimulus_list_is_stacked():
    steps = [hhjax.StepCurrent(5.0, 5.0, 15.0), hhjax.StepCurrent(2.0, 2.0, 18.0)]
    rec = hhjax.Recording(T_STEP, np.zeros((2, T_STEP.size)), stimulus=steps)
    assert rec.current_unit is None and rec.i_samples is None
    stim = rec.stimulus()
    assert isinstance(stim, hhjax.StepCurrent) and stim.amplitude.shape == (2,)
    expected = np.stack([np.asarray(jax.vmap(s)(jnp.asarray(T_STEP))) for s in steps])
    np.testing.assert_array_equal(rec.current_density(), expected)
    with pytest.raises(ValueError, match="area_cm2"):
        rec.stimulus(area_cm2=1e-5)
    assert "StepCurrent" in rec.summary()


def test_batched_stimulus_is_kept():
    stim = hhjax.StepCurrent(
        jnp.array([1.0, 2.0]), jnp.array([1.0, 2.0]), jnp.array([4.0, 4.0])
    )
    rec = hhjax.Recording(np.arange(6.0), np.zeros((2, 6)), stimulus=stim)
    assert rec.stimulus() is stim
    np.testing.assert_array_equal(
        rec.current_density(), [[0, 1, 1, 1, 0, 0], [0, 0, 2, 2, 0, 0]]
    )


def test_bad_stimulus_arguments():
    t, v = np.arange(6.0), np.zeros((2, 6))
    with pytest.raises(ValueError, match=r"batched over the 2 sweep"):
        hhjax.Recording(t, v, stimulus=hhjax.StepCurrent(1.0))
    with pytest.raises(ValueError, match=r"2 sweep"):
        hhjax.Recording(t, v, stimulus=[hhjax.StepCurrent(1.0)])
    with pytest.raises(ValueError, match=r"stimulus\[1\].*structure"):
        hhjax.Recording(
            t, v, stimulus=[hhjax.StepCurrent(1.0), hhjax.PulseTrain([1.0], 1.0, 1.0)]
        )
    with pytest.raises(ValueError, match=r"stimulus\[1\]\.onsets.*shape \(3,\)"):
        hhjax.Recording(
            t,
            v,
            stimulus=[
                hhjax.PulseTrain([1.0, 2.0], 0.5, 1.0),
                hhjax.PulseTrain([1.0, 2.0, 3.0], 0.5, 1.0),
            ],
        )
    with pytest.raises(TypeError, match=r"stimulus\[0\]"):
        hhjax.Recording(t, v, stimulus=[1.0, 2.0])


def test_simulating_a_recordings_stimulus_matches_the_step_currents():
    steps = [hhjax.StepCurrent(5.0, 5.0, 15.0), hhjax.StepCurrent(10.0, 2.0, 18.0)]
    i = np.stack([np.asarray(jax.vmap(s)(jnp.asarray(T_STEP))) for s in steps])
    rec = hhjax.Recording(T_STEP, np.zeros_like(i), i_uA_per_cm2=i)
    stim = rec.stimulus()
    assert stim.interpolation == "previous" and stim.times.shape == (2, 3)
    ts = jnp.linspace(0.0, 20.0, 201)
    params = hhjax.HHParams()
    batched = jax.vmap(lambda s: hhjax.simulate(params, s, 20.0, ts=ts).v)(stim)
    for k, step in enumerate(steps):
        direct = hhjax.simulate(params, step, 20.0, ts=ts).v
        np.testing.assert_allclose(
            np.asarray(batched[k]), np.asarray(direct), atol=1e-6
        )
    assert float(jnp.max(batched[1])) > 0.0  # it spikes: a meaningful comparison


# --------------------------------------------------------------------------------------
# subsets


def test_select():
    rec = _step_rec(area_cm2=1e-5, meta={"k": 1}, name="n")
    sub = rec.select([1, 0, 1])
    assert sub.n_sweeps == 3 and sub.meta == {"k": 1} and sub.name == "n"
    np.testing.assert_array_equal(sub.v_mV, rec.v_mV[[1, 0, 1]])
    np.testing.assert_array_equal(sub.i_samples, rec.i_samples[[1, 0, 1]])
    assert sub.area_cm2 == rec.area_cm2
    np.testing.assert_array_equal(rec.select(-1).v_mV, rec.v_mV[1:])
    np.testing.assert_array_equal(
        rec.select(np.array([False, True])).v_mV, rec.v_mV[1:]
    )
    with pytest.raises(IndexError, match=r"0\.\.1"):
        rec.select([2])
    with pytest.raises(ValueError, match="no sweep"):
        rec.select([])


def test_window():
    rec = _step_rec(capacitance_pF=10.0)
    w = rec.window(5.0, 10.0)
    assert w.t0 == 5.0 and w.t_end == 10.0 and w.n_samples == 501
    np.testing.assert_array_equal(w.v_mV, rec.v_mV[:, 500:1001])
    np.testing.assert_array_equal(
        w.current_density(), rec.current_density()[:, 500:1001]
    )
    assert w.capacitance_pF == 10.0
    assert rec.window(t_end=1.0).n_samples == 101
    with pytest.raises(ValueError, match="at least 2"):
        rec.window(30.0, 40.0)
    with pytest.raises(ValueError, match="t_start <= t_end"):
        rec.window(10.0, 5.0)


def test_select_and_window_keep_stimulus():
    steps = [hhjax.StepCurrent(5.0, 5.0, 15.0), hhjax.StepCurrent(2.0, 2.0, 18.0)]
    rec = hhjax.Recording(T_STEP, np.zeros((2, T_STEP.size)), stimulus=steps)
    one = rec.select([1])
    np.testing.assert_array_equal(np.asarray(one.stimulus().amplitude), [2.0])
    w = rec.window(4.0, 6.0)
    np.testing.assert_array_equal(
        w.current_density(), rec.current_density()[:, 400:601]
    )


# --------------------------------------------------------------------------------------
# saving and loading


def _assert_same(a, b):
    np.testing.assert_array_equal(a.t_ms, b.t_ms)
    np.testing.assert_array_equal(a.v_mV, b.v_mV)
    np.testing.assert_array_equal(a.i_samples, b.i_samples)
    assert a.current_unit == b.current_unit
    assert a.area_cm2 == b.area_cm2 and a.capacitance_pF == b.capacitance_pF
    assert a.c_m == b.c_m and a.meta == b.meta


@pytest.mark.parametrize("suffix", [".npz", ".csv"])
def test_round_trip_pa(tmp_path, suffix):
    rng = np.random.default_rng(1)
    meta = {"cell": "L5", "nested": {"x": [1.5, None, "s"]}, "µ": "unicode"}
    t = np.cumsum(rng.uniform(0.01, 0.1, 300))
    rec = hhjax.Recording(
        t,
        rng.normal(-60, 10, (3, 300)),
        i_pA=rng.normal(0, 100, (3, 300)),
        capacitance_pF=33.3,
        c_m=0.9,
        meta=meta,
        name="cell 1",
    )
    path = tmp_path / f"rec{suffix}"
    getattr(rec, f"save_{suffix[1:]}")(path)
    back = hhjax.load_recording(path)
    _assert_same(rec, back)
    assert back.name == "cell 1"
    assert sorted(os.listdir(tmp_path)) == [path.name]  # no temporary file left


@pytest.mark.parametrize("suffix", [".npz", ".csv"])
def test_round_trip_density_without_meta(tmp_path, suffix):
    rec = hhjax.Recording(np.arange(5.0) * 0.1, np.zeros(5), i_uA_per_cm2=np.ones(5))
    path = tmp_path / f"plain{suffix}"
    getattr(rec, f"save_{suffix[1:]}")(path)
    back = hhjax.load_recording(path)
    _assert_same(rec, back)
    assert back.name == "plain"  # the file stem


def test_npz_layout_loads_without_pickle(tmp_path):
    rec = _step_rec(area_cm2=1e-5, meta={"a": 1})
    path = tmp_path / "r.npz"
    rec.save_npz(path)
    with np.load(path, allow_pickle=False) as f:
        assert set(f.files) == {"t_ms", "v_mV", "i_pA", "area_cm2", "meta"}
        assert f["meta"].shape == () and f["meta"].dtype.kind == "U"
        assert json.loads(str(f["meta"])) == {"a": 1}
        assert float(f["area_cm2"]) == 1e-5


def test_csv_layout(tmp_path):
    rec = _step_rec(area_cm2=1e-5, meta={"a": [1, 2]})
    path = tmp_path / "r.csv"
    rec.save_csv(path)
    lines = path.read_text().splitlines()
    assert lines[0] == "# area_cm2: 1e-05"
    assert lines[1] == '# meta: {"a": [1, 2]}'
    assert lines[2] == "t_ms,v_mV_0,v_mV_1,i_pA_0,i_pA_1"
    assert len(lines) == 3 + rec.n_samples
    assert lines[3].split(",")[0] == "0.0"


def test_stimulus_recording_saves_density(tmp_path):
    steps = [hhjax.StepCurrent(5.0, 5.0, 15.0), hhjax.StepCurrent(2.0, 2.0, 18.0)]
    rec = hhjax.Recording(T_STEP, np.zeros((2, T_STEP.size)), stimulus=steps)
    for suffix in (".npz", ".csv"):
        path = tmp_path / f"s{suffix}"
        getattr(rec, f"save_{suffix[1:]}")(path)
        back = hhjax.load_recording(path)
        assert back.current_unit == "uA_per_cm2"
        np.testing.assert_array_equal(back.i_samples, rec.current_density())


def test_save_needs_matching_suffix(tmp_path):
    rec = _step_rec()
    with pytest.raises(ValueError, match=r"\.npz"):
        rec.save_npz(tmp_path / "r.csv")
    with pytest.raises(ValueError, match=r"\.csv"):
        rec.save_csv(tmp_path / "r.txt")


def test_load_arguments_override_and_select(tmp_path):
    rec = _step_rec(area_cm2=1e-5)
    path = tmp_path / "r.npz"
    rec.save_npz(path)
    back = hhjax.load_recording(path, sweeps=[1], capacitance_pF=20.0)
    assert back.n_sweeps == 1 and back.area_cm2 == pytest.approx(2e-5)
    np.testing.assert_array_equal(back.v_mV, rec.v_mV[1:])
    assert hhjax.load_recording(path, area_cm2=3e-5).area_cm2 == 3e-5


def _npz(tmp_path, name="x.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_load_missing_keys_lists_found_and_expected(tmp_path):
    path = _npz(tmp_path, t_ms=np.arange(3.0), v_mV=np.zeros(3))
    with pytest.raises(ValueError, match=r"no current key.*\['t_ms', 'v_mV'\].*i_pA"):
        hhjax.load_recording(path)
    path = _npz(tmp_path, foo=np.arange(3.0))
    with pytest.raises(ValueError, match=r"no time key.*\['foo'\].*t_ms"):
        hhjax.load_recording(path)


@pytest.mark.parametrize(
    "keys, match",
    [
        (("t", "v_mV", "i_pA"), r"\['t'\].*time.*`t_ms` \(ms\)"),
        (("t_ms", "v", "i_pA"), r"\['v'\].*voltage.*`v_mV` \(mV\)"),
        (("t_ms", "v_mV", "i"), r"\['i'\].*current.*`i_pA` \(pA\)"),
        (("t_ms", "v_uV", "i_pA"), r"v_uV.*`v_mV`"),
        (("t_ms", "v_mV", "i_mA"), r"i_mA.*`i_pA`"),
        (("t_ms", "t_s", "v_mV", "i_pA"), r"t_ms and t_s"),
        (("t_ms", "v_mV", "i_pA", "i_uA_per_cm2"), r"i_pA and i_uA_per_cm2"),
    ],
)
def test_load_wrong_unit_keys(tmp_path, keys, match):
    path = _npz(tmp_path, **{k: np.arange(3.0) for k in keys})
    with pytest.raises(ValueError, match=match):
        hhjax.load_recording(path)


def test_load_converts_seconds_volts_nanoamps(tmp_path):
    t = np.arange(4) * 1e-4  # s
    path = _npz(
        tmp_path,
        t_s=t,
        v_V=np.full((2, 4), -0.065),
        i_nA=np.full((2, 4), 0.05),
        meta=np.array('{"k": 1}'),
    )
    rec = hhjax.load_recording(path, area_cm2=1e-5)
    np.testing.assert_allclose(rec.t_ms, t * 1e3, rtol=1e-15)
    np.testing.assert_allclose(rec.v_mV, -65.0, rtol=1e-15)
    np.testing.assert_allclose(rec.i_samples, 50.0, rtol=1e-15)
    assert rec.current_unit == "pA"
    assert rec.meta["k"] == 1
    assert set(rec.meta["converted"]) == {"t_s", "v_V", "i_nA"}
    # the same in a .csv
    csv = tmp_path / "c.csv"
    csv.write_text("t_s,v_V,i_nA\n0,-0.065,0.05\n0.0001,-0.064,0.05\n")
    rec = hhjax.load_recording(csv)
    np.testing.assert_allclose(rec.v_mV, [[-65.0, -64.0]], rtol=1e-15)
    assert set(rec.meta["converted"]) == {"t_s", "v_V", "i_nA"}


def test_load_non_json_meta_and_extra_keys(tmp_path):
    path = _npz(
        tmp_path,
        t_ms=np.arange(3.0),
        v_mV=np.zeros(3),
        i_pA=np.zeros(3),
        meta=np.array("not json"),
        extra=np.ones(2),
    )
    rec = hhjax.load_recording(path)
    assert rec.meta == {"meta": "not json", "ignored_keys": ["extra"]}


def test_load_unknown_suffix_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match=r"'\.h5'.*'\.abf', '\.nwb', '\.npz' and '\.csv'.*hhjax\[io\]"):
        hhjax.load_recording(tmp_path / "cell.h5")
    missing = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        hhjax.load_recording(missing)


def test_load_corrupt_npz(tmp_path):
    good = tmp_path / "good.npz"
    _step_rec(area_cm2=1e-5).save_npz(good)
    data = good.read_bytes()
    for n in (10, len(data) // 2, len(data) - 30):
        bad = tmp_path / f"bad{n}.npz"
        bad.write_bytes(data[:n])
        with pytest.raises(
            ValueError, match=r"could not read .* as an \.npz recording"
        ):
            hhjax.load_recording(bad)
    # a zip whose member is not a .npy array, and a plain .npy renamed .npz
    odd = tmp_path / "odd.npz"
    with zipfile.ZipFile(odd, "w") as z:
        z.writestr("t_ms.npy", b"garbage")
    with pytest.raises(ValueError, match="could not read"):
        hhjax.load_recording(odd)
    npy = tmp_path / "single.npz"
    with open(npy, "wb") as f:
        np.save(f, np.arange(3.0))
    with pytest.raises(ValueError, match="could not read .*single"):
        hhjax.load_recording(npy)


@pytest.mark.parametrize(
    "text, match",
    [
        (
            "t_ms,v_mV,i_pA,temperature\n0,1,2,3\n1,1,2,3\n",
            r"unknown column 'temperature'",
        ),
        ("t_ms,v_mV\n0,1\n1,1\n", r"no current column.*i_pA"),
        ("t_ms,v_mV_0,v_mV_2,i_pA\n0,1,1,2\n1,1,1,2\n", r"numbered 0\.\.1"),
        ("t_ms,v_mV,i_pA\n0,1\n", r"could not read"),
        ("# only: comments\n", r"could not read"),
    ],
)
def test_load_bad_csv(tmp_path, text, match):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        hhjax.load_recording(path)


def test_load_csv_single_columns_and_comments(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text(
        '# capacitance_pF: 10.0\n# a free comment\n# note: "hi"\n'
        "t_ms,v_mV,i_pA\n0,-65,0\n0.5,-64,10\n1.0,-63,10\n"
    )
    rec = hhjax.load_recording(path)
    assert rec.n_sweeps == 1 and rec.capacitance_pF == 10.0
    assert rec.meta == {"note": "hi"}
    np.testing.assert_allclose(rec.current_density(), [[0.0, 1.0, 1.0]], rtol=1e-14)


# --------------------------------------------------------------------------------------
# the real recordings


def test_load_shared_recordings(shared_dir):
    paths = sorted((shared_dir / "data").glob("**/*.npz"))
    assert paths, "no recordings found under ../shared/data"
    for path in paths:
        rec = hhjax.load_recording(path)
        with np.load(path, allow_pickle=False) as f:
            v = f["v_mV"]
            n_rows = v.shape[0] if v.ndim == 2 else 1
        assert rec.n_sweeps == n_rows, path
        assert np.all(np.diff(rec.t_ms) > 0), path
        assert np.all(np.isfinite(rec.v_mV)) and np.all(np.isfinite(rec.i_samples))
        assert rec.current_unit == "pA" and rec.area_cm2 is None
        assert isinstance(rec.meta, dict) and rec.meta, path
        with pytest.raises(ValueError, match="area_cm2"):
            rec.stimulus()
        stim = rec.stimulus(area_cm2=1e-5)
        assert all(x.shape[0] == rec.n_sweeps for x in jax.tree_util.tree_leaves(stim))
    first = hhjax.load_recording(paths[0], sweeps=[0])
    assert first.n_sweeps == 1
