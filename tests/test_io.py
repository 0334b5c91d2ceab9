"""Loading recordings: ABF (pyabf), NWB (pynwb), NPZ/CSV round trips, resampling,
liquid-junction correction and the errors for bad files.

ABF and NWB tests skip (with the reason) when pyabf / pynwb are not installed
(`pip install "hhjax[io]"`); tests on ../shared/data skip when it is absent.
"""

import datetime
import json
import math
import sys
import types
import warnings

import numpy as np
import pytest

import hhjax

# protocol facts from ../shared/data/PROVENANCE.md: file -> (sweeps, samples,
# first step amplitude, step increment [pA], step on/off [ms])
ABF_FILES = {
    "171116sh_0018.abf": (17, 60000, -100.0, 25.0, 146.85, 646.85),
    "2019_07_24_0055_fsi.abf": (17, 60000, -100.0, 25.0, 146.85, 646.85),
    "File_axon_5.abf": (9, 20000, -100.0, 50.0, 215.6, 715.6),
}


@pytest.fixture
def pyabf():
    return pytest.importorskip(
        "pyabf", reason='pyabf not installed (pip install "hhjax[io]")'
    )


@pytest.fixture
def pynwb():
    return pytest.importorskip(
        "pynwb", reason='pynwb not installed (pip install "hhjax[io]")'
    )


def _abf(shared_dir, name):
    return shared_dir / "data" / "pyabf" / name


# --------------------------------------------------------------------------------------
# ABF: the real files


@pytest.mark.parametrize("name", sorted(ABF_FILES))
def test_abf_matches_provenance_and_npz(shared_dir, pyabf, name):
    n_sweeps, n_samples, first, step, t_on, t_off = ABF_FILES[name]
    path = _abf(shared_dir, name)
    rec = hhjax.load_recording(path)
    assert rec.n_sweeps == n_sweeps and rec.n_samples == n_samples
    assert rec.current_unit == "pA" and rec.area_cm2 is None
    assert rec.dt == pytest.approx(0.05, rel=1e-12)  # 20 kHz
    assert rec.t0 == 0.0 and rec.uniform
    meta = rec.meta
    assert meta["format"] == "ABF" and meta["sampling_rate_hz"] == 20000.0
    assert meta["adc_unit"] == "mV" and meta["dac_unit"] == "pA"
    assert meta["source_file"] == str(path)
    assert meta["sweeps"] == list(range(n_sweeps))
    assert "epoch table" in meta["i_source"]
    # the step amplitudes and timing of the protocol
    amplitudes = first + step * np.arange(n_sweeps)
    on = (rec.t_ms >= t_on + 0.01) & (rec.t_ms < t_off - 0.01)
    assert np.all(rec.i_samples[:, on] == amplitudes[:, None])
    edges = rec.t_ms[np.flatnonzero(np.diff(rec.i_samples[-1]) != 0) + 1]
    assert edges[0] == pytest.approx(t_on, abs=1e-9)
    assert edges[1] == pytest.approx(t_off, abs=1e-9)
    for s in (0, n_sweeps - 1):
        levels = [e["level_pA"] for e in meta["epochs"][s]]
        assert amplitudes[s] in levels
    # the .npz next to it (made with pyabf) holds the same numbers
    with np.load(path.with_suffix(".npz")) as f:
        np.testing.assert_array_equal(rec.i_samples, f["i_pA"])
        np.testing.assert_array_equal(rec.v_mV, f["v_mV"])
        np.testing.assert_allclose(rec.t_ms, f["t_ms"], rtol=1e-14, atol=1e-12)
        npz_meta = json.loads(str(f["meta"]))
    assert meta["protocol"] == npz_meta["protocol"]
    assert meta["abf_version"] == npz_meta["abf_version"]


def test_abf_sweeps_window_resample_ljp(shared_dir, pyabf):
    path = _abf(shared_dir, "171116sh_0018.abf")
    full = hhjax.load_recording(path)
    rec = hhjax.load_recording(
        path,
        sweeps=[-1, 0],
        window_ms=(100.0, 700.0),
        resample_dt_ms=0.1,
        ljp_mV=10.0,
        capacitance_pF=100.0,
    )
    assert rec.meta["sweeps"] == [16, 0]
    assert rec.area_cm2 == pytest.approx(1e-4)
    # block means of 2 samples of the window, stamped at the block centres
    keep = (full.t_ms >= 100.0) & (full.t_ms <= 700.0)
    t, v, i = (
        full.t_ms[keep],
        full.v_mV[[16, 0]][:, keep],
        full.i_samples[[16, 0]][:, keep],
    )
    m = (t.size // 2) * 2
    np.testing.assert_allclose(rec.t_ms, t[:m].reshape(-1, 2).mean(1), rtol=1e-15)
    np.testing.assert_allclose(
        rec.v_mV, v[:, :m].reshape(2, -1, 2).mean(-1) - 10.0, rtol=1e-14
    )
    np.testing.assert_allclose(rec.i_samples, i[:, :m].reshape(2, -1, 2).mean(-1))
    # the charge of the step is kept (the edge block holds the mean)
    assert rec.i_samples.sum() * 0.1 == pytest.approx(i[:, :m].sum() * 0.05)
    assert rec.meta["ljp_corrected_mV"] == 10.0
    (entry,) = rec.meta["resampled"]
    assert entry["dt_ms"] == 0.1 and entry["method"] == "mean"
    assert entry["from_dt_ms"] == pytest.approx(0.05, rel=1e-9)
    # the same through the explicit loader and methods
    same = (
        hhjax.load_abf(path, sweeps=[16, 0], capacitance_pF=100.0)
        .window(100.0, 700.0)
        .resample(0.1)
        .correct_ljp(10.0)
    )
    np.testing.assert_array_equal(same.v_mV, rec.v_mV)
    np.testing.assert_array_equal(same.i_samples, rec.i_samples)
    # the stimulus hhjax builds from it is piecewise constant
    stim = rec.stimulus()
    assert stim.values.shape[0] == 2


def test_abf_channels_and_units(shared_dir, pyabf, monkeypatch):
    path = _abf(shared_dir, "File_axon_5.abf")
    with pytest.raises(
        ValueError, match=r"no voltage channel 1.*1 ADC channel.*_Ipatch"
    ):
        hhjax.load_recording(path, channel=1)
    with pytest.raises(ValueError, match=r"no voltage channel named 'IN 7'"):
        hhjax.load_abf(path, channel="IN 7")
    assert hhjax.load_abf(path, channel="_Ipatch", sweeps=0).n_sweeps == 1
    with pytest.raises(ValueError, match=r"in mV: a voltage command"):
        hhjax.load_abf(path, current_channel=0)  # the voltage channel is no current
    ref = hhjax.load_abf(path, sweeps=[8])

    def patched(adc_units=None, dac_units=None):
        class ABF(pyabf.ABF):
            def __init__(self, *a, **k):
                super().__init__(*a, **k)
                if adc_units is not None:
                    self.adcUnits = list(adc_units)
                if dac_units is not None:
                    self.dacUnits = list(dac_units)

        monkeypatch.setattr(pyabf, "ABF", ABF)

    # V -> mV and nA -> pA at the boundary
    patched(adc_units=["V"], dac_units=["nA"])
    rec = hhjax.load_abf(path, sweeps=[8])
    np.testing.assert_allclose(rec.v_mV, ref.v_mV * 1e3, rtol=1e-15)
    np.testing.assert_allclose(rec.i_samples, ref.i_samples * 1e3, rtol=1e-15)
    assert rec.meta["adc_unit"] == "V" and rec.meta["dac_unit"] == "nA"
    patched(adc_units=["pA"], dac_units=["pA"])
    with pytest.raises(ValueError, match=r"in pA: it holds a current.*voltage-clamp"):
        hhjax.load_abf(path)
    patched(adc_units=["degC"], dac_units=["pA"])
    with pytest.raises(ValueError, match=r"unit 'degC'.*does not convert"):
        hhjax.load_abf(path)
    patched(adc_units=["mV"], dac_units=["mV"])
    with pytest.raises(ValueError, match=r"command channel 0.*in mV"):
        hhjax.load_abf(path)
    patched(adc_units=["mV"], dac_units=["furlong"])
    with pytest.raises(ValueError, match=r"unit 'furlong'.*expected a current"):
        hhjax.load_abf(path)


def test_abf_truncated_and_corrupt(shared_dir, pyabf, tmp_path):
    data = _abf(shared_dir, "File_axon_5.abf").read_bytes()
    for n in (0, 10, 600, 5000, 6000, 100_000, 365_000):
        bad = tmp_path / f"cut{n}.abf"
        bad.write_bytes(data[:n])
        with pytest.raises(
            ValueError, match=r"could not read .*cut\d+\.abf.* ABF file"
        ):
            hhjax.load_recording(bad)
    text = tmp_path / "notes.abf"
    text.write_text("not an ABF file at all\n" * 50)
    with pytest.raises(ValueError, match="could not read .*notes.abf"):
        hhjax.load_recording(text)
    garbage = tmp_path / "garbage.abf"
    garbage.write_bytes(b"ABF2" + bytes(range(256)) * 20)
    with pytest.raises(ValueError, match="could not read"):
        hhjax.load_recording(garbage)
    with pytest.raises(FileNotFoundError, match="missing.abf"):
        hhjax.load_recording(tmp_path / "missing.abf")
    with pytest.raises(IndexError, match="out of range"):
        hhjax.load_abf(_abf(shared_dir, "File_axon_5.abf"), sweeps=[9])


@pytest.mark.parametrize("module, suffix", [("pyabf", ".abf"), ("pynwb", ".nwb")])
def test_missing_optional_reader(tmp_path, monkeypatch, module, suffix):
    path = tmp_path / f"cell{suffix}"
    path.write_bytes(b"\0" * 64)
    monkeypatch.setitem(sys.modules, module, None)  # `import module` fails
    with pytest.raises(ImportError, match=r'pip install "hhjax\[io\]"'):
        hhjax.load_recording(path)


# --------------------------------------------------------------------------------------
# every file of ../shared/data


def test_every_shared_file(shared_dir):
    paths = sorted(p for p in (shared_dir / "data").rglob("*") if p.is_file())
    seen = set()
    for path in paths:
        suffix = path.suffix.lower()
        if suffix in (".md", ".txt"):
            continue
        seen.add(suffix)
        if suffix == ".abf":
            pytest.importorskip("pyabf", reason="pyabf not installed (hhjax[io])")
        if suffix in (".abf", ".npz"):
            rec = hhjax.load_recording(path)
            assert rec.n_sweeps >= 1 and rec.current_unit == "pA", path
            assert np.all(np.isfinite(rec.v_mV)) and np.all(np.isfinite(rec.i_samples))
            assert -120 < np.median(rec.v_mV) < -30, path  # resting-ish, in mV
        else:  # Igor waves (.ibw): their .npz is loaded instead
            with pytest.raises(
                ValueError, match=r"unsupported recording format '\.ibw'"
            ):
                hhjax.load_recording(path)
    assert {".abf", ".npz", ".ibw"} <= seen


def test_shared_npz_ljp_and_resample(shared_dir):
    b6 = shared_dir / "data" / "bluepyefe" / "B6_IDRest.npz"
    raw = hhjax.load_recording(b6)
    ljp = raw.meta["liquid_junction_potential_mV"]  # 14 mV, not applied by the file
    rec = hhjax.load_recording(b6, ljp_mV=ljp)
    np.testing.assert_allclose(rec.v_mV, raw.v_mV - 14.0, rtol=1e-15)
    assert rec.meta["ljp_corrected_mV"] == 14.0
    # 10 kHz chirp -> 1 kHz by block means; linear interpolation onto the same grid
    imp = hhjax.load_recording(shared_dir / "data" / "efel" / "impedance.npz")
    mean = imp.resample(1.0)
    assert mean.n_samples == imp.n_samples // 10
    np.testing.assert_allclose(
        mean.v_mV[0, :3], imp.v_mV[0, :30].reshape(3, 10).mean(1)
    )
    lin = imp.resample(1.0, "linear")
    assert lin.dt == pytest.approx(1.0) and lin.t0 == imp.t0
    # the grid falls on every 10th sample: interpolation returns the samples
    np.testing.assert_allclose(
        lin.v_mV, imp.v_mV[:, ::10][:, : lin.n_samples], atol=1e-6
    )


# --------------------------------------------------------------------------------------
# NPZ / CSV round trips of an ABF recording


def test_abf_npz_csv_round_trip(shared_dir, pyabf, tmp_path):
    rec = hhjax.load_recording(
        _abf(shared_dir, "File_axon_5.abf"), sweeps=[0, 8], window_ms=(200.0, 260.0)
    )
    for suffix, save in ((".npz", rec.save_npz), (".csv", rec.save_csv)):
        path = tmp_path / f"r{suffix}"
        save(path)
        back = hhjax.load_recording(path)
        np.testing.assert_array_equal(back.t_ms, rec.t_ms)
        np.testing.assert_array_equal(back.v_mV, rec.v_mV)
        np.testing.assert_array_equal(back.i_samples, rec.i_samples)
        assert back.meta == rec.meta and back.name == rec.name
    with pytest.raises(ValueError, match=r"`channel`/`current_channel` apply to"):
        hhjax.load_recording(tmp_path / "r.npz", channel=0)


# --------------------------------------------------------------------------------------
# NWB: synthetic files written with pynwb


def _nwb_file(pynwb, path, sweeps, *, table=True, electrodes=("elec0",), extra=None):
    """Write `sweeps` = [(name, t0_s, rate_hz, v_mV, i_pA, electrode, sweep_no)] with
    the voltage stored in mV (conversion 1e-3 V) and the current in pA (1e-12 A),
    and an offset on the voltage."""
    from pynwb.icephys import CurrentClampSeries, CurrentClampStimulusSeries

    nwb = pynwb.NWBFile(
        session_description="hhjax synthetic test",
        identifier="hhjax-test",
        session_start_time=datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone.utc),
    )
    dev = nwb.create_device(name="amplifier")
    els = {
        e: nwb.create_icephys_electrode(name=e, description="test", device=dev)
        for e in electrodes
    }
    for name, t0, rate, v, i, el, k in sweeps:
        stim = CurrentClampStimulusSeries(
            name=f"stim_{name}",
            data=np.asarray(i, dtype=np.float64),
            rate=rate,
            starting_time=t0,
            electrode=els[el],
            gain=1.0,
            conversion=1e-12,
            sweep_number=np.uint32(k),
        )
        resp = CurrentClampSeries(
            name=name,
            data=np.asarray(v, dtype=np.float64) + 5.0,  # mV, offset -5 mV = -5e-3 V
            rate=rate,
            starting_time=t0,
            electrode=els[el],
            gain=1.0,
            conversion=1e-3,
            offset=-5e-3,
            bias_current=2e-12,
            sweep_number=np.uint32(k),
        )
        nwb.add_stimulus(stim)
        nwb.add_acquisition(resp)
        if table:
            nwb.add_intracellular_recording(
                electrode=els[el], stimulus=stim, response=resp
            )
    if extra is not None:
        extra(nwb, els)
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def _sweep(k, n=400, rate=20000.0):
    t = np.arange(n) / rate * 1e3
    v = -70.0 + 5.0 * np.sin(t * (k + 1))
    i = np.where((t >= 5.0) & (t < 15.0), 50.0 * (k + 1), 0.0)
    return v, i


def test_nwb_round_trip(pynwb, tmp_path):
    sweeps = []
    for k in range(3):
        v, i = _sweep(k)
        sweeps.append((f"sweep_{k:03d}", 10.0 * k, 20000.0, v, i, "elec0", k))
    path = _nwb_file(pynwb, tmp_path / "cell.nwb", sweeps)
    rec = hhjax.load_recording(path)
    assert rec.n_sweeps == 3 and rec.n_samples == 400
    np.testing.assert_allclose(rec.t_ms, np.arange(400) * 0.05, rtol=1e-12, atol=1e-12)
    for k in range(3):
        v, i = _sweep(k)
        np.testing.assert_allclose(rec.v_mV[k], v, rtol=1e-12, atol=1e-10)
        np.testing.assert_allclose(rec.i_samples[k], i, rtol=1e-12, atol=1e-10)
    meta = rec.meta
    assert meta["format"] == "NWB" and meta["pairing"] == ["table"] * 3
    assert meta["series"] == ["sweep_000", "sweep_001", "sweep_002"]
    assert meta["starting_time_s"] == [0.0, 10.0, 20.0]
    assert meta["bias_current_pA"] == pytest.approx([2.0] * 3)
    # selection by name and by index; the bias current on request
    sel = hhjax.load_recording(path, sweeps=["sweep_002", "sweep_000"])
    np.testing.assert_array_equal(sel.v_mV, rec.v_mV[[2, 0]])
    np.testing.assert_array_equal(hhjax.load_nwb(path, sweeps=[-1]).v_mV, rec.v_mV[2:])
    biased = hhjax.load_nwb(path, sweeps=1, add_bias_current=True)
    np.testing.assert_allclose(biased.i_samples, rec.i_samples[1:2] + 2.0, rtol=1e-12)
    with pytest.raises(ValueError, match=r"no current-clamp series \['sweep_9'\]"):
        hhjax.load_nwb(path, sweeps=["sweep_9"])
    with pytest.raises(IndexError, match="out of range"):
        hhjax.load_nwb(path, sweeps=[3])
    # options after loading, as for every format
    w = hhjax.load_recording(path, window_ms=(5.0, 15.0), resample_dt_ms=0.1)
    assert w.t0 == pytest.approx(5.025) and np.all(w.i_samples[:, :-1] > 0)


def test_nwb_pairing_without_table_and_time_bases(pynwb, tmp_path):
    v, i = _sweep(0)
    v1, _ = _sweep(1)

    def extra(nwb, els):
        from pynwb.icephys import CurrentClampSeries, CurrentClampStimulusSeries

        # sweep 1: the stimulus at half the rate -> interpolated onto the response
        t_half = np.arange(200) / 10000.0 * 1e3
        nwb.add_stimulus(
            CurrentClampStimulusSeries(
                name="stim_slow",
                data=t_half * 2.0,  # a ramp in pA (conversion 1e-12)
                rate=10000.0,
                starting_time=1.0,
                electrode=els["elec0"],
                gain=1.0,
                conversion=1e-12,
                sweep_number=np.uint32(1),
            )
        )
        nwb.add_acquisition(
            CurrentClampSeries(
                name="sweep_001",
                data=v1,
                rate=20000.0,
                starting_time=1.0,
                electrode=els["elec0"],
                gain=1.0,
                conversion=1e-3,
                sweep_number=np.uint32(1),
            )
        )

    path = _nwb_file(
        pynwb,
        tmp_path / "pairs.nwb",
        [("sweep_000", 0.0, 20000.0, v, i, "elec0", 0)],
        table=False,
        extra=extra,
    )
    with pytest.raises(ValueError, match=r"stimulus 'stim_slow' .* does not cover"):
        hhjax.load_nwb(path)  # the slow stimulus ends 0.05 ms before its response
    rec = hhjax.load_nwb(path, sweeps=[0])
    assert rec.meta["pairing"] == ["sweep_number"]
    np.testing.assert_allclose(rec.i_samples[0], i, atol=1e-10)


def test_nwb_interpolated_stimulus_and_izero(pynwb, tmp_path):
    v, _ = _sweep(0, n=401)

    def extra(nwb, els):
        from pynwb.icephys import (
            CurrentClampSeries,
            CurrentClampStimulusSeries,
            IZeroClampSeries,
        )

        nwb.add_stimulus(
            CurrentClampStimulusSeries(
                name="stim_slow",
                data=np.arange(201) * 1.0,  # 1 pA per 0.1 ms
                rate=10000.0,
                starting_time=0.0,
                electrode=els["elec0"],
                gain=1.0,
                conversion=1e-12,
                sweep_number=np.uint32(0),
            )
        )
        nwb.add_acquisition(
            CurrentClampSeries(
                name="sweep_000",
                data=v * 1e-3,  # volts
                rate=20000.0,
                starting_time=0.0,
                electrode=els["elec0"],
                gain=1.0,
                sweep_number=np.uint32(0),
            )
        )
        nwb.add_acquisition(
            IZeroClampSeries(
                name="sweep_001",
                data=v * 1e-3,
                rate=20000.0,
                starting_time=1.0,
                electrode=els["elec0"],
                gain=1.0,
                sweep_number=np.uint32(1),
            )
        )

    path = _nwb_file(pynwb, tmp_path / "izero.nwb", [], table=False, extra=extra)
    rec = hhjax.load_nwb(path)
    assert rec.meta["pairing"] == ["sweep_number", "izero"]
    np.testing.assert_allclose(rec.v_mV, [v, v], rtol=1e-12)
    np.testing.assert_allclose(rec.i_samples[0], np.arange(401) * 0.5, atol=1e-9)
    np.testing.assert_array_equal(rec.i_samples[1], 0.0)


def test_nwb_electrodes_and_errors(pynwb, tmp_path):
    v, i = _sweep(0)
    path = _nwb_file(
        pynwb,
        tmp_path / "two.nwb",
        [
            ("a_000", 0.0, 20000.0, v, i, "elec0", 0),
            ("b_000", 0.0, 20000.0, v - 1.0, i, "elec1", 0),
        ],
        electrodes=("elec0", "elec1"),
    )
    with pytest.raises(ValueError, match=r"2 electrodes \['elec0', 'elec1'\]"):
        hhjax.load_recording(path)
    rec = hhjax.load_recording(path, channel="elec1")
    np.testing.assert_allclose(rec.v_mV[0], v - 1.0, rtol=1e-12)
    assert hhjax.load_recording(path, channel=0).meta["series"] == ["a_000"]
    with pytest.raises(ValueError, match=r"no current-clamp electrode 'elec9'"):
        hhjax.load_nwb(path, electrode="elec9")
    with pytest.raises(ValueError, match=r"no electrode 2"):
        hhjax.load_nwb(path, electrode=2)
    with pytest.raises(ValueError, match="`current_channel` applies to .abf"):
        hhjax.load_recording(path, current_channel=1)
    # truncated copies
    data = path.read_bytes()
    for n in (0, 100, len(data) // 2):
        bad = tmp_path / f"cut{n}.nwb"
        bad.write_bytes(data[:n])
        with pytest.raises(
            ValueError, match=r"could not read .*cut\d+\.nwb.* NWB file"
        ):
            hhjax.load_recording(bad)
    # a file without current-clamp series
    empty = _nwb_file(
        pynwb,
        tmp_path / "empty.nwb",
        [],
        extra=lambda nwb, els: nwb.add_acquisition(
            pynwb.TimeSeries(name="temperature", data=np.ones(5), unit="degC", rate=1.0)
        ),
    )
    with pytest.raises(ValueError, match=r"no CurrentClampSeries.*'temperature'"):
        hhjax.load_recording(empty)


def test_nwb_units_honoured(pynwb):
    """The unit tables of the NWB reader (pynwb fixes CurrentClampSeries to volts and
    CurrentClampStimulusSeries to amperes, so other units only come from other
    writers)."""
    from hhjax._io_nwb import CURRENT_UNITS, VOLTAGE_UNITS, _values

    def series(unit, data, conversion=1.0, offset=0.0):
        return types.SimpleNamespace(
            name="s",
            unit=unit,
            data=np.asarray(data),
            conversion=conversion,
            offset=offset,
        )

    v = _values(series("volts", [-0.07], 1.0, 0.0), VOLTAGE_UNITS, "voltage", "f")
    assert v[0] == pytest.approx(-70.0)
    v = _values(series("volts", [-7000.0], 1e-5, 0.0), VOLTAGE_UNITS, "voltage", "f")
    assert v[0] == pytest.approx(-70.0)
    i = _values(series("amperes", [50.0], 1e-12, 1e-12), CURRENT_UNITS, "current", "f")
    assert i[0] == pytest.approx(51.0)
    with pytest.raises(ValueError, match=r"'furlongs', a unit hhjax does not convert"):
        _values(series("furlongs", [1.0]), VOLTAGE_UNITS, "voltage", "f")


def test_nwb_from_abf_recording(shared_dir, pyabf, pynwb, tmp_path):
    """An ABF recording written to NWB (SI units) and read back is the same."""
    rec = hhjax.load_abf(_abf(shared_dir, "File_axon_5.abf"), sweeps=[2, 7])
    sweeps = [
        (f"sweep_{s}", 5.0 * s, 20000.0, rec.v_mV[k], rec.i_samples[k], "elec0", s)
        for k, s in enumerate(rec.meta["sweeps"])
    ]
    path = _nwb_file(pynwb, tmp_path / "axon.nwb", sweeps)
    back = hhjax.load_recording(path)
    np.testing.assert_allclose(back.t_ms, rec.t_ms, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(back.v_mV, rec.v_mV, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(back.i_samples, rec.i_samples, rtol=1e-12, atol=1e-9)


# --------------------------------------------------------------------------------------
# Recording.resample / correct_ljp on synthetic data


def _rec(n=101, dt=0.1, sweeps=2):
    t = np.arange(n) * dt
    v = np.stack([-65.0 + t * (k + 1) for k in range(sweeps)])
    i = np.stack([np.where(t >= 2.0, 10.0 * (k + 1), 0.0) for k in range(sweeps)])
    return hhjax.Recording(t, v, i_pA=i, meta={"k": 1})


def test_cli_fit_reads_only_the_named_sweeps_of_a_mixed_file(pynwb, tmp_path, monkeypatch, capsys):
    """A real NWB file mixes protocols (a short pulse, a ramp, long steps) whose
    sweeps differ in length and cannot share one time axis. `hhjax fit FILE --sweeps
    2 --validate 3` reads only those two sweeps (no error from the others), hands
    `fit_cell` their positions in the loaded recording, and reports the file's
    indices; without `--sweeps` the load fails and the message says how to fix it."""
    import dataclasses

    import fitting
    from fitting._cli import main as cli_main

    v0, i0 = _sweep(0, n=400)
    v1, i1 = _sweep(1, n=900)  # another protocol: longer
    v2, i2 = _sweep(2, n=600)
    v3, i3 = _sweep(3, n=600)
    path = _nwb_file(pynwb, tmp_path / "mixed.nwb", [
        ("sweep_0", 0.0, 20000.0, v0, i0, "elec0", 0),
        ("sweep_1", 1.0, 20000.0, v1, i1, "elec0", 1),
        ("sweep_2", 2.0, 20000.0, v2, i2, "elec0", 2),
        ("sweep_3", 3.0, 20000.0, v3, i3, "elec0", 3),
    ])
    seen = {}

    @dataclasses.dataclass(frozen=True)
    class FakeFit:  # the fields the CLI renumbers, and what it prints and writes
        fit_sweeps: tuple
        validate_sweeps: tuple
        training: list
        validation: list
        status: str = "ok"
        wall_time: float = 0.0
        warnings: tuple = ()
        settings: dict = dataclasses.field(default_factory=lambda: {"timing_s": {"search": 1.0}})

        def summary(self):
            return "fake fit"

        def write(self, out, extra=None):
            seen["written"], seen["extra"] = self, extra
            return {"json": out / "fit.json", "png": out / "fit.png"}

    def fake_fit_cell(rec, model, *, sweeps, validate, **kw):
        seen["v"], seen["sweeps"], seen["validate"] = np.asarray(rec.v_mV), sweeps, validate
        rows = [{"sweep": k, "n_spikes_data": 0} for k in sweeps]
        return FakeFit(tuple(sweeps), tuple(validate), rows,
                       [{"sweep": k, "n_spikes_data": 0} for k in validate])

    monkeypatch.setattr(fitting, "fit_cell", fake_fit_cell)
    rc = cli_main(["fit", str(path), "--sweeps", "3", "--validate", "2", "--out",
                   str(tmp_path / "out"), "--no-progress"])
    assert rc == 0
    # loaded: the file's sweeps 2 and 3, in file order; fitted 3 (position 1)
    np.testing.assert_allclose(seen["v"], np.stack([v2, v3]), atol=1e-9)
    assert seen["sweeps"] == [1] and seen["validate"] == [0]
    out = seen["written"]
    assert out.fit_sweeps == (3,) and out.validate_sweeps == (2,)
    assert [r["sweep"] for r in out.training] == [3]
    assert [r["sweep"] for r in out.validation] == [2]
    assert seen["extra"]["sweep_names"] == {"2": "sweep_2", "3": "sweep_3"}
    # without --sweeps every sweep is read, and the mixed lengths cannot be
    with pytest.raises(SystemExit):
        cli_main(["fit", str(path), "--validate", "2", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert "not on the time axis" in err and "with --sweeps, only" in err
    # an index past the file's sweeps and a negative one name the flag
    with pytest.raises(SystemExit):
        cli_main(["fit", str(path), "--sweeps", "2", "--validate", "7", "--out", str(tmp_path)])
    assert "--sweeps/--validate" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["fit", str(path), "--sweeps", "-1", "--out", str(tmp_path)])
    assert "count from 0" in capsys.readouterr().err


def test_nwb_sweeps_of_other_lengths_stack_on_a_window_they_cover(pynwb, tmp_path,
                                                                  monkeypatch, capsys):
    """Sweeps of one protocol recorded for different lengths (an Allen-style file
    where some sweeps stop early): without a window they cannot share a time axis
    and the error says to give one; `window_ms=` (CLI: --t-start/--t-end) cuts each
    sweep before stacking, so they load together, sample for sample."""
    import fitting
    from fitting._cli import main as cli_main

    v0, i0 = _sweep(0, n=600)
    v1, i1 = _sweep(1, n=900)
    v2, i2 = _sweep(2, n=400)
    path = _nwb_file(pynwb, tmp_path / "ragged.nwb", [
        ("sweep_0", 0.0, 20000.0, v0, i0, "elec0", 0),
        ("sweep_1", 1.0, 20000.0, v1, i1, "elec0", 1),
        ("sweep_2", 2.0, 20000.0, v2, i2, "elec0", 2),
    ])
    with pytest.raises(ValueError, match="not on the time axis.*window_ms"):
        hhjax.load_recording(path)
    rec = hhjax.load_recording(path, window_ms=(2.0, 19.0))
    t = np.arange(400) / 20.0  # ms
    keep = (t >= 2.0) & (t <= 19.0)
    np.testing.assert_allclose(rec.t_ms, t[keep], atol=1e-9)
    np.testing.assert_allclose(rec.v_mV, np.stack([v0[:400], v1[:400], v2])[:, keep],
                               atol=1e-9)
    np.testing.assert_allclose(rec.i_samples, np.stack([i0[:400], i1[:400], i2])[:, keep],
                               atol=1e-9)
    # an open end keeps what every sweep has from t_start on; too long a window names
    # the sweep that does not cover it
    assert hhjax.load_recording(path, sweeps=[0, 1], window_ms=(None, 29.0)).n_samples == 581
    with pytest.raises(ValueError, match="not on the time axis"):
        hhjax.load_recording(path, window_ms=(0.0, 25.0))
    with pytest.raises(ValueError, match="holds 0 sample"):
        hhjax.load_recording(path, window_ms=(40.0, 50.0))
    with pytest.raises(ValueError, match="t_start <= t_end"):
        hhjax.load_recording(path, window_ms=(10.0, 5.0))
    # the CLI loads on --t-start/--t-end
    seen = {}

    def fake_fit_cell(rec, model, **kw):
        seen["v"] = np.asarray(rec.v_mV)
        raise ValueError("recorded")

    monkeypatch.setattr(fitting, "fit_cell", fake_fit_cell)
    with pytest.raises(SystemExit):
        cli_main(["fit", str(path), "--validate", "1", "--t-start", "2", "--t-end", "19",
                  "--out", str(tmp_path / "o")])
    assert "recorded" in capsys.readouterr().err
    np.testing.assert_allclose(seen["v"], rec.v_mV, atol=1e-9)


def test_cli_channel_chooses_the_electrode(pynwb, tmp_path, monkeypatch, capsys):
    """A file with two electrodes: `hhjax fit` and `hhjax sweeps` ask for one and take
    `--channel` (a name, or an index as digits)."""
    import fitting
    from fitting._cli import main as cli_main

    v0, i0 = _sweep(0)
    v1, i1 = _sweep(1)
    path = _nwb_file(pynwb, tmp_path / "two.nwb", [
        ("a0", 0.0, 20000.0, v0, i0, "elec0", 0), ("a1", 1.0, 20000.0, v0, i0, "elec0", 1),
        ("b0", 0.0, 20000.0, v1, i1, "elec1", 0), ("b1", 1.0, 20000.0, v1, i1, "elec1", 1),
    ], electrodes=("elec0", "elec1"))
    seen = {}

    def fake_fit_cell(rec, model, **kw):
        seen["v"] = np.asarray(rec.v_mV)
        raise ValueError("recorded")

    monkeypatch.setattr(fitting, "fit_cell", fake_fit_cell)
    argv = ["fit", str(path), "--sweeps", "0", "--validate", "1", "--out", str(tmp_path / "o")]
    with pytest.raises(SystemExit):
        cli_main(argv)
    assert "choose one with `channel=`" in capsys.readouterr().err
    for ch in ("elec1", "1"):
        with pytest.raises(SystemExit):
            cli_main(argv + ["--channel", ch])
        assert "recorded" in capsys.readouterr().err
        np.testing.assert_allclose(seen.pop("v"), np.stack([v1, v1]), atol=1e-9)
    assert cli_main(["sweeps", str(path), "--channel", "0"]) == 0
    out = capsys.readouterr().out
    assert "a1" in out and "b1" not in out


def test_list_sweeps_reads_a_mixed_nwb_sweep_by_sweep(pynwb, tmp_path, capsys):
    """`hhjax.list_sweeps` / `hhjax sweeps FILE`: one row per sweep of a file whose
    sweeps differ in length, in the file's sweep order, with the values of the
    sweep itself; a sweep that cannot be read (a response without a stimulus) gets
    its error instead of failing the listing."""
    import json

    from pynwb.icephys import CurrentClampSeries

    from fitting._cli import main as cli_main

    v0, i0 = _sweep(0, n=400)
    v1, i1 = _sweep(1, n=900)
    v1[500:502] = 30.0  # one spike (upward crossing of −20 mV)

    def orphan(nwb, els):  # sweep_number 7 has no stimulus anywhere
        nwb.add_acquisition(CurrentClampSeries(
            name="orphan", data=np.full(300, -70.0), rate=20000.0, starting_time=5.0,
            electrode=els["elec0"], gain=1.0, conversion=1e-3, sweep_number=np.uint32(7)))

    path = _nwb_file(pynwb, tmp_path / "mixed.nwb", [
        ("sweep_b", 1.0, 10000.0, v1, i1, "elec0", 4),
        ("sweep_a", 0.0, 20000.0, v0, i0, "elec0", 2),
    ], extra=orphan)
    rows = hhjax.list_sweeps(path)
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert [r["name"] for r in rows] == ["sweep_a", "sweep_b", "orphan"]  # by sweep_number
    assert [r["sweep_number"] for r in rows] == [2, 4, 7]
    a, b, bad = rows
    assert (a["n_samples"], b["n_samples"]) == (400, 900)
    assert a["dt_ms"] == pytest.approx(0.05) and b["dt_ms"] == pytest.approx(0.1)
    assert b["duration_ms"] == pytest.approx(89.9)
    assert (a["i_min"], a["i_max"], b["i_max"]) == (0.0, 50.0, 100.0)
    assert a["current_unit"] == "pA" and (a["n_spikes"], b["n_spikes"]) == (0, 1)
    assert a["v_start_mV"] == pytest.approx(np.median(v0[:20]), abs=1e-9)
    assert a["error"] is None and "no unique stimulus" in bad["error"] and bad["n_samples"] is None
    # each readable row agrees with loading that sweep alone
    one = hhjax.load_recording(path, sweeps=[1])
    assert one.n_samples == b["n_samples"] and float(one.i_samples.max()) == b["i_max"]
    # the command
    assert cli_main(["sweeps", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "3 sweep(s)" in out[0] and len(out) == 5
    assert "sweep_b" in out[3] and "cannot be read" in out[4]
    assert cli_main(["sweeps", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[1]["n_samples"] == 900
    with pytest.raises(SystemExit):
        cli_main(["sweeps", str(tmp_path / "missing.nwb")])
    assert "no recording file" in capsys.readouterr().err


def test_list_sweeps_on_the_dev_set_abf(shared_dir, pyabf):
    """On a real ABF file: one row per sweep, the same values as the loaded sweeps."""
    f = shared_dir / "data/pyabf/File_axon_5.abf"
    rec = hhjax.load_recording(f)
    rows = hhjax.list_sweeps(f)
    assert len(rows) == rec.n_sweeps == 9
    for k, r in enumerate(rows):
        assert r["index"] == k and r["error"] is None and r["sweep_number"] is None
        assert r["n_samples"] == rec.n_samples
        assert r["i_min"] == float(rec.i_samples[k].min())
        assert r["i_max"] == float(rec.i_samples[k].max())
    assert rows[0]["n_spikes"] == 0 and rows[-1]["n_spikes"] >= 1
    for bad in (math.nan, "high"):
        with pytest.raises(ValueError, match="threshold_mV"):
            hhjax.list_sweeps(f, threshold_mV=bad)
    with pytest.raises(ValueError, match="unsupported recording format"):
        hhjax.list_sweeps(f.with_suffix(".txt"))


def test_resample_mean_and_linear():
    rec = _rec()
    m = rec.resample(0.3)
    assert m.n_samples == 33
    np.testing.assert_allclose(m.t_ms[:2], [0.1, 0.4], rtol=1e-12)
    np.testing.assert_allclose(m.v_mV, -65.0 + m.t_ms * np.array([[1.0], [2.0]]))
    lin = rec.resample(0.25, "linear")
    np.testing.assert_allclose(lin.t_ms, np.arange(41) * 0.25, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lin.v_mV, -65.0 + lin.t_ms * np.array([[1.0], [2.0]]))
    up = rec.resample(0.05, "linear")
    assert up.n_samples == 201 and up.t_end == pytest.approx(rec.t_end)
    assert rec.resample(0.1).n_samples == rec.n_samples  # k = 1: unchanged
    assert m.meta["k"] == 1 and len(m.resample(0.6).meta["resampled"]) == 2
    with pytest.raises(ValueError, match=r"integer multiple of the sampling interval"):
        rec.resample(0.25)
    with pytest.raises(ValueError, match="'mean' .* or 'linear'"):
        rec.resample(0.2, "cubic")
    with pytest.raises(ValueError, match="finite step > 0"):
        rec.resample(0.0)
    with pytest.raises(ValueError, match="at least 2"):
        rec.resample(10.0)
    uneven = hhjax.Recording([0.0, 0.1, 0.3, 0.4], np.zeros(4), i_pA=np.zeros(4))
    with pytest.raises(ValueError, match="uniformly sampled"):
        uneven.resample(0.2)
    assert uneven.resample(0.2, "linear").n_samples == 3
    # a stimulus recording keeps its stimulus
    t = np.arange(11) * 0.1
    stim = hhjax.Recording(t, np.zeros(11), stimulus=[hhjax.StepCurrent(1.0, 0.2, 0.6)])
    assert stim.resample(0.2).batched_stimulus is stim.batched_stimulus


def test_correct_ljp_sign_and_total():
    rec = _rec()
    c = rec.correct_ljp(14.0)
    np.testing.assert_allclose(c.v_mV, rec.v_mV - 14.0)  # V_m = V_recorded − LJP
    assert c.correct_ljp(-4.0).meta["ljp_corrected_mV"] == 10.0
    np.testing.assert_array_equal(c.i_samples, rec.i_samples)
    with pytest.raises(ValueError, match="finite"):
        rec.correct_ljp(float("nan"))
    with pytest.raises(TypeError, match="number in mV"):
        rec.correct_ljp("14")


def test_load_recording_options_errors(tmp_path):
    path = tmp_path / "r.npz"
    _rec().save_npz(path)
    with pytest.raises(ValueError, match="`window_ms` must be a pair"):
        hhjax.load_recording(path, window_ms=5.0)
    with pytest.raises(ValueError, match="`window_ms` must be a pair .* numbers in ms"):
        hhjax.load_recording(path, window_ms=("a", 5.0))
    rec = hhjax.load_recording(path, window_ms=(None, 5.0), resample_dt_ms=0.2)
    assert rec.t_end <= 5.0 and rec.dt == pytest.approx(0.2)
    with pytest.raises(ValueError, match=r"'\.abf', '\.nwb', '\.npz' and '\.csv'"):
        hhjax.load_recording(tmp_path / "x.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hhjax.load_recording(path, sweeps=range(2), ljp_mV=3)
