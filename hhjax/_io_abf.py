"""Axon Binary Format (ABF 1 and 2) current-clamp files, read with pyabf.

The voltage comes from an ADC channel (converted to mV); the injected current is the
command waveform that pyabf rebuilds from the file's own protocol (the epoch table,
`ABF.sweepC`, converted to pA), or an ADC channel that recorded it.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import numpy as np

from ._recording import Recording, _select_index

#: Voltage units pyabf may report, with the factor to mV.
VOLTAGE_UNITS = {"mV": 1.0, "V": 1e3, "uV": 1e-3, "µV": 1e-3, "μV": 1e-3}
#: Current units pyabf may report, with the factor to pA.
CURRENT_UNITS = {
    "pA": 1.0,
    "nA": 1e3,
    "uA": 1e6,
    "µA": 1e6,
    "μA": 1e6,
    "mA": 1e9,
    "A": 1e12,
    "fA": 1e-3,
}
INSTALL_HINT = 'pip install "hhjax[io]" (or: pip install pyabf)'


def import_pyabf():
    """pyabf, or an ImportError that says how to install it."""
    try:
        import pyabf
    except ImportError as e:
        raise ImportError(
            f"reading .abf files needs the optional package pyabf: {INSTALL_HINT}."
        ) from e
    return pyabf


def _open(pyabf, path: pathlib.Path):
    try:
        abf = pyabf.ABF(str(path))
    except Exception as e:  # pyabf raises struct.error, ValueError, ... on bad files
        raise ValueError(
            f"could not read {str(path)!r} as an ABF file (truncated or corrupt?): "
            f"{type(e).__name__}: {e}"
        ) from e
    # pyabf reads what is there: check the data block the header announces exists
    try:
        size = path.stat().st_size
        need = int(abf.dataByteStart) + int(abf.dataPointCount) * int(
            abf.dataPointByteSize
        )
    except (AttributeError, TypeError, ValueError):
        need = size = 0
    if need > size:
        raise ValueError(
            f"could not read {str(path)!r} as an ABF file: it is truncated (the "
            f"header announces {need} bytes of header and data, the file has {size})."
        )
    if getattr(abf, "data", None) is None or np.shape(abf.data)[0] < 1:
        raise ValueError(f"could not read {str(path)!r} as an ABF file: no data.")
    return abf


def _channel_index(
    spec: int | str, names: list[str], units: list[str], what: str, path
) -> int:
    listing = ", ".join(
        f"{k}: {n!r} ({u})" for k, (n, u) in enumerate(zip(names, units))
    )
    if isinstance(spec, str):
        if spec not in names:
            raise ValueError(
                f"{str(path)!r} has no {what} named {spec!r}; its ADC channels are "
                f"{listing}."
            )
        return names.index(spec)
    if isinstance(spec, bool) or not isinstance(spec, (int, np.integer)):
        raise TypeError(
            f"the {what} must be an ADC channel index or name, got {spec!r}."
        )
    k = int(spec)
    if not 0 <= k < len(names):
        raise ValueError(
            f"{str(path)!r} has no {what} {k}: it has {len(names)} ADC channel(s): "
            f"{listing}."
        )
    return k


def _voltage_factor(unit: str, name: str, k: int, path) -> float:
    unit = (unit or "").strip()
    if unit in VOLTAGE_UNITS:
        return VOLTAGE_UNITS[unit]
    if unit in CURRENT_UNITS:
        raise ValueError(
            f"ADC channel {k} ({name!r}) of {str(path)!r} is in {unit}: it holds a "
            "current (a voltage-clamp recording, or the current monitor). hhjax loads "
            "current-clamp voltage: pick the voltage channel with `channel=`."
        )
    raise ValueError(
        f"ADC channel {k} ({name!r}) of {str(path)!r} has the unit {unit!r}, which "
        f"hhjax does not convert; expected a voltage in {sorted(VOLTAGE_UNITS)}."
    )


def _current_factor(unit: str, what: str, path) -> float:
    unit = (unit or "").strip()
    if unit in CURRENT_UNITS:
        return CURRENT_UNITS[unit]
    if unit in VOLTAGE_UNITS:
        raise ValueError(
            f"the {what} of {str(path)!r} is in {unit}: a voltage command "
            "(voltage clamp), not an injected current."
        )
    raise ValueError(
        f"the {what} of {str(path)!r} has the unit {unit!r}, which hhjax does not "
        f"convert; expected a current in {sorted(CURRENT_UNITS)}."
    )


def _source_text(abf, channel: int) -> str:
    try:
        text = str(abf.stimulusByChannel[channel].text)
    except (AttributeError, IndexError, KeyError, TypeError):
        text = ""
    if text.startswith("DAC waveform is not enabled"):
        return "holding command (the DAC waveform is not enabled in the protocol)"
    if "custom file" in text:
        return "command waveform from the protocol's stimulus file (pyabf sweepC)"
    if text.startswith("variable-length"):
        return "holding command (pyabf: variable-length sweeps have no DAC waveform)"
    return (
        "command waveform rebuilt by pyabf from the ABF epoch table (sweepC); "
        "not a measured current"
    )


def _epochs(abf, factor: float) -> list[dict[str, Any]] | None:
    ep = getattr(abf, "sweepEpochs", None)
    if ep is None:
        return None
    rate = float(abf.dataRate)
    try:
        return [
            {
                "start_ms": float(p1) * 1e3 / rate,
                "end_ms": float(p2) * 1e3 / rate,
                "type": str(kind),
                "level_pA": float(level) * factor,
            }
            for p1, p2, kind, level in zip(ep.p1s, ep.p2s, ep.types, ep.levels)
        ]
    except (AttributeError, TypeError, ValueError):
        return None


def load_abf(
    path: str | os.PathLike,
    *,
    sweeps: Any = None,
    channel: int | str = 0,
    current_channel: int | str | None = None,
    area_cm2: float | None = None,
    capacitance_pF: float | None = None,
    c_m: float = 1.0,
) -> Recording:
    """Load current-clamp sweeps from an Axon `.abf` file (ABF 1 or 2, via pyabf).

    - **Voltage**: ADC channel `channel`, converted to mV from the unit pyabf reports
      (`V`, `mV`, `µV`).
    - **Current** [pA]: by default the command waveform of the DAC with the same
      index as `channel` (pyabf's pairing), which pyabf rebuilds from the file's own
      protocol (the epoch table; `ABF.sweepC`), converted from the DAC unit (`pA`,
      `nA`, ...). This is the *commanded* current, not a measurement. With
      `current_channel=` an ADC channel that recorded the current is used instead.
    - **Time** [ms]: `t = k / sampling rate` from the start of each sweep (every
      sweep on the same axis, starting at 0).
    - **meta**: `format`, `source_file`, `abf_id`, `abf_version`, `protocol`,
      `sampling_rate_hz`, `recording_datetime`, `file_comment`, `n_sweeps_in_file`,
      `sweeps` (the file's sweep indices kept), `channel`, `adc_name`, `adc_unit`,
      `dac_name`, `dac_unit` (or `current_channel`, `current_adc_name`,
      `current_adc_unit`), `holding_command_pA`, `i_source` (how the current was
      obtained) and `epochs` (per kept sweep: `start_ms`, `end_ms`, `type`,
      `level_pA` of every epoch, when the protocol has an epoch table).

    **Arguments:**

    - `path`: the `.abf` file.
    - `sweeps`: sweep indices to load (int, list, negative from the end, or a
      boolean mask; default all).
    - `channel`: the voltage ADC channel (index or name, e.g. `"IN 0"`).
    - `current_channel`: an ADC channel (index or name) holding the recorded current,
      instead of the command waveform.
    - `area_cm2`, `capacitance_pF`, `c_m`: as for [`hhjax.Recording`][].

    **Raises:** `ImportError` (naming `pip install "hhjax[io]"`) without pyabf;
    `FileNotFoundError`; `ValueError` for a truncated or corrupt file, a missing
    channel (listing the file's channels), a voltage channel that is not in a
    voltage unit (e.g. pA: voltage clamp), a command or current channel not in a
    current unit, a command waveform pyabf cannot rebuild (e.g. a missing stimulus
    file), or sweeps of different lengths; `IndexError` for a sweep index out of
    range.

    **Returns:** a [`hhjax.Recording`][]: `t_ms` `(T,)` [ms], `v_mV`
    `(sweeps, T)` [mV] and the current in pA `(sweeps, T)` (float64 NumPy arrays),
    `meta` as above. [`hhjax.load_recording`][] calls this for `.abf` paths and adds
    windowing, resampling and the liquid-junction correction.

    **Example** (needs pyabf and an `.abf` file; here one of the development
    recordings in `../shared/data/pyabf/`):

    ```python
    rec = hhjax.load_abf("171116sh_0018.abf", sweeps=[0, 8, 16])
    rec.meta["protocol"]        # '0113 steps dual -100 to 300 step 25'
    rec.i_samples[:, 6000]      # at t = 300 ms: [-100., 100., 300.] pA
    ```
    """
    pyabf = import_pyabf()
    p = pathlib.Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no recording file at {str(p)!r}.")
    abf = _open(pyabf, p)
    adc_names = [str(x) for x in abf.adcNames]
    adc_units = [str(x) for x in abf.adcUnits]
    dac_names = [str(x) for x in abf.dacNames]
    dac_units = [str(x) for x in abf.dacUnits]
    ch = _channel_index(channel, adc_names, adc_units, "voltage channel", p)
    fv = _voltage_factor(adc_units[ch], adc_names[ch], ch, p)
    meta: dict[str, Any] = {
        "format": "ABF",
        "source_file": str(p),
        "abf_id": str(abf.abfID),
        "abf_version": str(abf.abfVersionString),
        "protocol": str(abf.protocol),
        "sampling_rate_hz": float(abf.dataRate),
        "file_comment": str(getattr(abf, "abfFileComment", "")),
        "n_sweeps_in_file": int(abf.sweepCount),
        "channel": ch,
        "adc_name": adc_names[ch],
        "adc_unit": adc_units[ch],
    }
    try:
        meta["recording_datetime"] = abf.abfDateTime.isoformat()
    except (AttributeError, TypeError, ValueError):
        pass
    if current_channel is None:
        if ch >= len(dac_names):
            raise ValueError(
                f"{str(p)!r} has no command (DAC) channel {ch} to pair with ADC "
                f"channel {ch} ({adc_names[ch]!r}); its DACs are {dac_names}. Pass "
                "`current_channel=` (an ADC channel that recorded the current)."
            )
        fi = _current_factor(
            dac_units[ch], f"command channel {ch} ({dac_names[ch]!r})", p
        )
        meta.update(dac_name=dac_names[ch], dac_unit=dac_units[ch])
        try:
            meta["holding_command_pA"] = float(abf.holdingCommand[ch]) * fi
        except (AttributeError, IndexError, TypeError):
            pass
        ich = None
    else:
        ich = _channel_index(
            current_channel, adc_names, adc_units, "current channel", p
        )
        fi = _current_factor(
            adc_units[ich], f"ADC channel {ich} ({adc_names[ich]!r})", p
        )
        meta.update(
            current_channel=ich,
            current_adc_name=adc_names[ich],
            current_adc_unit=adc_units[ich],
            i_source=f"recorded current, ADC channel {ich} ({adc_names[ich]!r})",
        )

    n_file = int(abf.sweepCount)
    idx = np.arange(n_file) if sweeps is None else _select_index(sweeps, n_file)
    vs, cs, epochs = [], [], []
    for s in idx.tolist():
        try:
            abf.setSweep(s, channel=ch)
            v = np.array(abf.sweepY, dtype=np.float64) * fv
            if ich is None:
                c = np.array(abf.sweepC, dtype=np.float64) * fi
            else:
                abf.setSweep(s, channel=ich)
                c = np.array(abf.sweepY, dtype=np.float64) * fi
                abf.setSweep(s, channel=ch)
        except Exception as e:
            raise ValueError(
                f"could not read sweep {s} of {str(p)!r} (truncated or corrupt?): "
                f"{type(e).__name__}: {e}"
            ) from e
        if ich is None:
            if c.shape != v.shape or not np.all(np.isfinite(c)):
                raise ValueError(
                    f"pyabf could not rebuild the command waveform of sweep {s} of "
                    f"{str(p)!r} ({_source_text(abf, ch)}; e.g. the protocol's "
                    "stimulus file is missing). Pass `current_channel=` to use a "
                    "recorded current."
                )
            epochs.append(_epochs(abf, fi))
        if vs and v.shape != vs[0].shape:
            raise ValueError(
                f"the sweeps of {str(p)!r} differ in length (sweep {s}: {v.size} "
                f"samples, sweep {int(idx[0])}: {vs[0].size}); load sweeps of equal "
                "length with `sweeps=`."
            )
        vs.append(v)
        cs.append(c)
    if ich is None:
        meta["i_source"] = _source_text(abf, ch)
        if all(e is not None for e in epochs):
            meta["epochs"] = epochs
    meta["sweeps"] = idx.tolist()
    n = vs[0].size
    t_ms = np.arange(n, dtype=np.float64) * (1e3 / float(abf.dataRate))
    return Recording(
        t_ms,
        np.stack(vs),
        i_pA=np.stack(cs),
        area_cm2=area_cm2,
        capacitance_pF=capacitance_pF,
        c_m=c_m,
        meta=meta,
        name=str(abf.abfID) or p.stem,
    )
