"""Neurodata Without Borders (NWB 2) current-clamp files, read with pynwb.

NWB stores SI units: the value of a series is `data · conversion + offset` in its
`unit` (volts for `CurrentClampSeries`, amperes for `CurrentClampStimulusSeries`),
times in seconds. hhjax converts at this boundary: mV, pA, ms.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
from typing import Any

import numpy as np

from ._recording import Recording, _select_index, window_pair

#: Voltage units, with the factor from the series' value to mV.
VOLTAGE_UNITS = {
    "volts": 1e3,
    "volt": 1e3,
    "V": 1e3,
    "millivolts": 1.0,
    "millivolt": 1.0,
    "mV": 1.0,
}
#: Current units, with the factor from the series' value to pA.
CURRENT_UNITS = {
    "amperes": 1e12,
    "ampere": 1e12,
    "amps": 1e12,
    "A": 1e12,
    "nanoamperes": 1e3,
    "nA": 1e3,
    "picoamperes": 1.0,
    "pA": 1.0,
}
INSTALL_HINT = 'pip install "hhjax[io]" (or: pip install pynwb)'
#: Relative tolerance for "the same time axis" between sweeps, stimulus and response.
TIME_RTOL = 1e-9


def import_pynwb():
    """pynwb, or an ImportError that says how to install it."""
    try:
        import pynwb
        import pynwb.icephys  # noqa: F401
    except ImportError as e:
        raise ImportError(
            f"reading .nwb files needs the optional package pynwb: {INSTALL_HINT}."
        ) from e
    return pynwb


def _natural_key(name: str):
    return [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", name)]


def _values(series, table: dict[str, float], quantity: str, source: str) -> np.ndarray:
    """The series' values in hhjax units (`data · conversion + offset`, then the unit
    factor)."""
    unit = str(getattr(series, "unit", "") or "").strip()
    if unit not in table:
        raise ValueError(
            f"{source}: series {series.name!r} is in {unit!r}, a unit hhjax does not "
            f"convert for a {quantity}; expected one of {sorted(table)}."
        )
    data = np.asarray(series.data[()], dtype=np.float64)
    if data.ndim != 1:
        raise ValueError(
            f"{source}: series {series.name!r} has data of shape {data.shape}; "
            "expected one sweep (1-D)."
        )
    conversion = float(getattr(series, "conversion", 1.0) or 1.0)
    offset = float(getattr(series, "offset", 0.0) or 0.0)
    return (data * conversion + offset) * table[unit]


def _times_s(series, n: int, source: str) -> np.ndarray:
    """Absolute sample times [s] of a series with `n` samples."""
    ts = getattr(series, "timestamps", None)
    if ts is not None:
        t = np.asarray(ts[()] if hasattr(ts, "shape") else ts, dtype=np.float64)
        if t.shape != (n,):
            raise ValueError(
                f"{source}: series {series.name!r} has {t.size} timestamps for {n} "
                "samples."
            )
        return t
    rate = getattr(series, "rate", None)
    if rate is None or not float(rate) > 0:
        raise ValueError(
            f"{source}: series {series.name!r} has neither timestamps nor a sampling "
            f"rate > 0 (rate = {rate!r})."
        )
    start = float(getattr(series, "starting_time", 0.0) or 0.0)
    return start + np.arange(n, dtype=np.float64) / float(rate)


def _table_pairs(nwb) -> dict[str, tuple[Any, int, int]]:
    """response name -> (stimulus series, idx_start, count) from the icephys table."""
    pairs: dict[str, tuple[Any, int, int]] = {}
    irt = getattr(nwb, "intracellular_recordings", None)
    if irt is None:
        return pairs
    try:
        n = len(irt)
        if n == 0:
            return pairs
        responses = irt.category_tables["responses"]["response"]
        stimuli = irt.category_tables["stimuli"]["stimulus"]
        for k in range(n):
            r, s = responses[k], stimuli[k]
            if r is None or s is None or r.timeseries is None or s.timeseries is None:
                continue
            if int(s.idx_start) < 0 or int(s.count) < 0:
                continue
            pairs[r.timeseries.name] = (s.timeseries, int(s.idx_start), int(s.count))
    except (AttributeError, KeyError, IndexError, TypeError, ValueError):
        return {}
    return pairs


def _electrode_name(series) -> str | None:
    el = getattr(series, "electrode", None)
    return None if el is None else str(el.name)


def load_nwb(
    path: str | os.PathLike,
    *,
    sweeps: Any = None,
    electrode: int | str | None = None,
    add_bias_current: bool = False,
    window_ms: tuple[float | None, float | None] | None = None,
    area_cm2: float | None = None,
    capacitance_pF: float | None = None,
    c_m: float = 1.0,
) -> Recording:
    """Load current-clamp sweeps from an NWB 2 file (via pynwb).

    - **Sweeps**: the `CurrentClampSeries` (including `IZeroClampSeries`) in the
      file's `acquisition`, ordered by `sweep_number` when every series has one,
      else by name (natural order: `sweep_2` before `sweep_10`).
    - **Voltage** [mV]: `data · conversion + offset` in the series' unit (NWB's
      `volts`; `mV` is also accepted), × 1e3. `gain` (the amplifier's) is
      informational and not applied, as in NWB.
    - **Current** [pA]: the paired `CurrentClampStimulusSeries` (amperes × 1e12).
      Pairs come from the file's `intracellular_recordings` table when it has one
      (honouring its `idx_start`/`count`), else from equal `sweep_number` and
      electrode among the `stimulus` series. An `IZeroClampSeries` has zero
      current. A stimulus on a different time base is linearly interpolated onto
      the response's samples (it must cover them).
    - **Time** [ms]: from `timestamps` or `starting_time + k/rate` [s], relative to
      each sweep's first sample (every selected sweep must have the same relative
      time axis — within `window_ms` when it is given, so sweeps recorded for
      different lengths load together on a window they all cover); the absolute
      starts are in `meta["starting_time_s"]`.
    - **meta**: `format`, `source_file`, `identifier`, `session_description`,
      `session_start_time`, `series` (names), `sweep_numbers`, `electrode`,
      `stimulus_series`, `stimulus_description`, `pairing` (`"table"`,
      `"sweep_number"`, `"izero"`), `starting_time_s`, `bias_current_pA` (the
      amplifier's bias per sweep, `None` if not stored), `bias_current_added`.

    **Arguments:**

    - `path`: the `.nwb` file.
    - `sweeps`: which series to load, in that order: indices into the ordered list
      (int, list, negative from the end, boolean mask) or series names (a str or a
      list of str). Default: all (of the electrode).
    - `electrode`: the intracellular electrode (name, or index into the sorted
      names); needed when the file's current-clamp series use several.
    - `add_bias_current`: add each series' `bias_current` (the amplifier's DC
      injection, when stored) to the stimulus; by default it is only reported in
      `meta["bias_current_pA"]`.
    - `window_ms`: `(t_start, t_end)` [ms, relative to each sweep's first sample;
      `None` for an open end]: keep the samples with `t_start <= t <= t_end` of
      each sweep before they are stacked.
    - `area_cm2`, `capacitance_pF`, `c_m`: as for [`hhjax.Recording`][].

    **Raises:** `ImportError` (naming `pip install "hhjax[io]"`) without pynwb;
    `FileNotFoundError`; `ValueError` for a file pynwb cannot read (truncated,
    corrupt, not NWB), no current-clamp series, an unknown series name or
    electrode (listing those present), several electrodes without `electrode=`,
    units that are not a voltage/current hhjax converts (naming the unit), a
    response without a stimulus, a stimulus that does not cover its response, or
    sweeps whose time axes differ; `IndexError` for a sweep index out of range.

    **Returns:** a [`hhjax.Recording`][]: `t_ms` `(T,)` [ms], `v_mV`
    `(sweeps, T)` [mV] and the current in pA `(sweeps, T)` (float64 NumPy arrays),
    `meta` as above. [`hhjax.load_recording`][] calls this for `.nwb` paths and adds
    windowing, resampling and the liquid-junction correction.

    **Example** (needs pynwb and an NWB file with current-clamp series):

    ```python
    rec = hhjax.load_nwb("cell.nwb", sweeps=["sweep_003", "sweep_004"])
    rec.v_mV.shape              # (2, samples per sweep)
    rec.meta["pairing"]         # how stimulus and response were paired
    ```
    """
    pynwb = import_pynwb()
    from pynwb.icephys import (
        CurrentClampSeries,
        CurrentClampStimulusSeries,
        IZeroClampSeries,
    )

    p = pathlib.Path(path)
    with _opened(pynwb, p) as (nwb, source):
        return _load(
            nwb,
            p,
            source,
            sweeps,
            electrode,
            add_bias_current,
            (CurrentClampSeries, CurrentClampStimulusSeries, IZeroClampSeries),
            dict(area_cm2=area_cm2, capacitance_pF=capacitance_pF, c_m=c_m),
            window=None if window_ms is None else window_pair(window_ms),
        )


@contextlib.contextmanager
def _opened(pynwb, p: pathlib.Path):
    """`(nwb, source)` of the file at `p`, read with pynwb and closed afterwards;
    `FileNotFoundError`, or a `ValueError` for a file pynwb cannot read."""
    if not p.is_file():
        raise FileNotFoundError(f"no recording file at {str(p)!r}.")
    source = repr(str(p))
    try:
        io = pynwb.NWBHDF5IO(str(p), mode="r")
    except Exception as e:  # h5py's OSError, hdmf's errors, ...
        raise ValueError(
            f"could not read {source} as an NWB file (truncated, corrupt or not "
            f"NWB?): {type(e).__name__}: {e}"
        ) from e
    try:
        try:
            nwb = io.read()
        except Exception as e:
            raise ValueError(
                f"could not read {source} as an NWB file (truncated, corrupt or not "
                f"NWB?): {type(e).__name__}: {e}"
            ) from e
        yield nwb, source
    finally:
        io.close()


def load_nwb_each(path: str | os.PathLike, *, electrode: int | str | None = None) -> list:
    """Every current-clamp sweep of an NWB file as `(series name, sweep_number or
    None, one-sweep Recording or the ValueError that reading it raised)`, in the
    file's sweep order, from one read of the file: for listing files whose sweeps
    differ in length or sampling (which [`hhjax.load_nwb`][] cannot stack)."""
    pynwb = import_pynwb()
    from pynwb.icephys import (
        CurrentClampSeries,
        CurrentClampStimulusSeries,
        IZeroClampSeries,
    )

    p = pathlib.Path(path)
    classes = (CurrentClampSeries, CurrentClampStimulusSeries, IZeroClampSeries)
    with _opened(pynwb, p) as (nwb, source):
        series = _ordered_series(nwb, source, electrode, CurrentClampSeries)
        out = []
        for k, s in enumerate(series):
            number = getattr(s, "sweep_number", None)
            try:
                rec = _load(nwb, p, source, [k], electrode, False, classes, {})
            except ValueError as e:
                rec = e
            out.append((s.name, None if number is None else int(number), rec))
        return out


def _ordered_series(nwb, source, electrode, CurrentClampSeries) -> list:
    """The current-clamp series of `electrode` in the file's sweep order."""
    acquisition = dict(nwb.acquisition)
    series = [s for s in acquisition.values() if isinstance(s, CurrentClampSeries)]
    if not series:
        found = {k: type(v).__name__ for k, v in acquisition.items()}
        raise ValueError(
            f"{source} has no CurrentClampSeries in its acquisition (found: "
            f"{found or 'nothing'}); hhjax loads current-clamp recordings."
        )
    electrodes = sorted({e for e in map(_electrode_name, series) if e is not None})
    if electrode is not None:
        if isinstance(electrode, str):
            if electrode not in electrodes:
                raise ValueError(
                    f"{source} has no current-clamp electrode {electrode!r}; its "
                    f"electrodes are {electrodes}."
                )
            chosen = electrode
        elif isinstance(electrode, (int, np.integer)) and not isinstance(
            electrode, bool
        ):
            if not 0 <= int(electrode) < len(electrodes):
                raise ValueError(
                    f"{source} has no electrode {int(electrode)}: its current-clamp "
                    f"electrodes are {electrodes} (indices 0..{len(electrodes) - 1})."
                )
            chosen = electrodes[int(electrode)]
        else:
            raise TypeError(
                f"`electrode` must be an electrode name or index, got {electrode!r}."
            )
        series = [s for s in series if _electrode_name(s) == chosen]
    elif len(electrodes) > 1:
        raise ValueError(
            f"{source} has current-clamp series from {len(electrodes)} electrodes "
            f"{electrodes}; choose one with `channel=` / `electrode=`."
        )
    numbers = [getattr(s, "sweep_number", None) for s in series]
    if all(n is not None for n in numbers):
        series.sort(key=lambda s: (int(s.sweep_number), _natural_key(s.name)))
    else:
        series.sort(key=lambda s: _natural_key(s.name))
    return series


def _load(nwb, p, source, sweeps, electrode, add_bias, classes, recording_kw, window=None):
    CurrentClampSeries, CurrentClampStimulusSeries, IZeroClampSeries = classes
    series = _ordered_series(nwb, source, electrode, CurrentClampSeries)
    names = [s.name for s in series]

    # selection: names or indices
    if sweeps is None:
        chosen_series = series
    else:
        if isinstance(sweeps, (str, int, np.integer)):
            sweeps = [sweeps]
        sel = list(sweeps) if not isinstance(sweeps, np.ndarray) else list(sweeps.flat)
        sel = [x.item() if isinstance(x, np.generic) else x for x in sel]
        if len(sel) > 0 and all(isinstance(x, str) for x in sel):
            missing = [x for x in sel if x not in names]
            if missing:
                raise ValueError(
                    f"{source} has no current-clamp series {missing}; its series are "
                    f"{names}."
                )
            chosen_series = [series[names.index(x)] for x in sel]
        elif any(isinstance(x, str) for x in sel):
            raise TypeError(
                "`sweeps` must be all series names or all indices, got a mixture."
            )
        else:
            chosen_series = [series[k] for k in _select_index(sel, len(series))]

    pairs = _table_pairs(nwb)
    stimuli = [
        s
        for s in dict(nwb.stimulus).values()
        if isinstance(s, CurrentClampStimulusSeries)
    ]
    vs, cs, t_rel, starts, pairing, stim_names, bias, stim_desc = ([] for _ in range(8))
    for s in chosen_series:
        v = _values(s, VOLTAGE_UNITS, "voltage", source)
        t_abs = _times_s(s, v.size, source)
        if isinstance(s, IZeroClampSeries):
            c = np.zeros_like(v)
            pairing.append("izero")
            stim_names.append(None)
        else:
            if s.name in pairs:
                stim, i0, count = pairs[s.name]
                how = "table"
            else:
                cands = [
                    x
                    for x in stimuli
                    if getattr(s, "sweep_number", None) is not None
                    and getattr(x, "sweep_number", None) is not None
                    and int(x.sweep_number) == int(s.sweep_number)
                    and _electrode_name(x) == _electrode_name(s)
                ]
                if len(cands) != 1:
                    raise ValueError(
                        f"{source}: no unique stimulus for the response {s.name!r} "
                        f"(sweep_number {getattr(s, 'sweep_number', None)}): "
                        f"{len(cands)} CurrentClampStimulusSeries match among "
                        f"{[x.name for x in stimuli]}, and the file's "
                        "intracellular_recordings table does not pair it."
                    )
                stim, i0, count = cands[0], 0, -1
                how = "sweep_number"
            if not isinstance(stim, CurrentClampStimulusSeries):
                raise ValueError(
                    f"{source}: the stimulus of {s.name!r} is a "
                    f"{type(stim).__name__}, not a CurrentClampStimulusSeries."
                )
            c_all = _values(stim, CURRENT_UNITS, "current", source)
            t_stim = _times_s(stim, c_all.size, source)
            if count >= 0:
                c_all, t_stim = c_all[i0 : i0 + count], t_stim[i0 : i0 + count]
            c = _align(c_all, t_stim, t_abs, s.name, stim.name, source)
            pairing.append(how)
            stim_names.append(stim.name)
        b = getattr(s, "bias_current", None)
        b_pA = None if b is None else float(b) * 1e12
        bias.append(b_pA)
        if add_bias and b_pA is not None:
            c = c + b_pA
        desc = getattr(s, "stimulus_description", None)
        stim_desc.append(None if desc is None else str(desc))
        rel = (t_abs - t_abs[0]) * 1e3
        if window is not None:
            # a sample on an edge stays in however its start time rounded (the
            # times are differences of absolute seconds: 2.0019 s − 2 s < 1.9 ms)
            tol = 1e-6 * float(np.median(np.diff(rel))) if rel.size > 1 else 0.0
            keep = (rel >= window[0] - tol) & (rel <= window[1] + tol)
            if np.count_nonzero(keep) < 2:
                raise ValueError(
                    f"{source}: the window [{window[0]:g}, {window[1]:g}] ms holds "
                    f"{np.count_nonzero(keep)} sample(s) of the series {s.name!r} "
                    f"(0 .. {rel[-1]:g} ms); a sweep needs at least 2."
                )
            v, c, rel = v[keep], c[keep], rel[keep]
        if t_rel and (
            rel.shape != t_rel[0].shape
            or not np.allclose(rel, t_rel[0], rtol=TIME_RTOL, atol=1e-9)
        ):
            raise ValueError(
                f"{source}: the series {s.name!r} ({rel.size} samples over "
                f"{rel[-1]:g} ms) is not on the time axis of {chosen_series[0].name!r} "
                f"({t_rel[0].size} samples over {t_rel[0][-1]:g} ms); select sweeps "
                "recorded alike with `sweeps=`, or give a `window_ms` that every "
                "selected sweep covers (`hhjax fit`: --t-start/--t-end)."
            )
        vs.append(v)
        cs.append(c)
        t_rel.append(rel)
        starts.append(float(t_abs[0]))
    meta: dict[str, Any] = {
        "format": "NWB",
        "source_file": str(p),
        "identifier": str(getattr(nwb, "identifier", "")),
        "session_description": str(getattr(nwb, "session_description", "")),
        "series": [s.name for s in chosen_series],
        "sweep_numbers": [
            None if getattr(s, "sweep_number", None) is None else int(s.sweep_number)
            for s in chosen_series
        ],
        "electrode": _electrode_name(chosen_series[0]),
        "stimulus_series": stim_names,
        "stimulus_description": stim_desc,
        "pairing": pairing,
        "starting_time_s": starts,
        "bias_current_pA": bias,
        "bias_current_added": bool(add_bias),
        "i_source": "CurrentClampStimulusSeries (the commanded stimulus), in pA",
    }
    try:
        meta["session_start_time"] = nwb.session_start_time.isoformat()
    except AttributeError:
        pass
    return Recording(
        t_rel[0],
        np.stack(vs),
        i_pA=np.stack(cs),
        meta=meta,
        name=p.stem,
        **recording_kw,
    )


def _align(c, t_stim, t_resp, resp_name, stim_name, source) -> np.ndarray:
    """The stimulus on the response's samples (the same samples, or interpolated)."""
    if c.size == t_resp.size and np.allclose(
        t_stim, t_resp, rtol=TIME_RTOL, atol=1e-12
    ):
        return c
    span = float(t_resp[-1] - t_resp[0]) or 1.0
    tol = 1e-9 * span + 1e-12
    if t_stim[0] > t_resp[0] + tol or t_stim[-1] < t_resp[-1] - tol:
        raise ValueError(
            f"{source}: the stimulus {stim_name!r} ({t_stim[0]:g}..{t_stim[-1]:g} s) "
            f"does not cover its response {resp_name!r} "
            f"({t_resp[0]:g}..{t_resp[-1]:g} s)."
        )
    return np.interp(t_resp, t_stim, c)
