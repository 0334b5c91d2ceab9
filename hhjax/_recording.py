"""Recorded current-clamp sweeps: voltage traces [mV] with the injected current, on a
common time axis [ms], loaded from `.abf`/`.nwb` (optional readers, `_io_abf.py`,
`_io_nwb.py`) and `.npz`/`.csv` files, saved to `.npz`/`.csv`.

A [`hhjax.Recording`][] is host data (NumPy float64 arrays); it hands the current to
the simulator as an hhjax stimulus batched over sweeps (leading axis = sweep), in
µA/cm², converting from pA through the membrane area at that boundary.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pathlib
import re
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike

from ._params import float_dtype, is_concrete
from ._spikes import _crossing_mask
from ._stimulus import AbstractStimulus, SampledCurrent

#: A sampled current is stored as change points (zero-order hold) when every sweep
#: changes value at fewer than this fraction of its samples.
PIECEWISE_CONSTANT_FRACTION = 0.05
#: Relative tolerance on the sample spacing for `Recording.uniform`.
UNIFORM_RTOL = 1e-6
#: Relative tolerance between `area_cm2` and the area implied by `capacitance_pF`.
AREA_RTOL = 1e-9

_CURRENT_UNITS = {"uA_per_cm2": "µA/cm²", "pA": "pA"}
_EXPECTED_KEYS = (
    "`t_ms` (ms, 1-D), `v_mV` (mV, sweeps × samples or 1-D) and one of `i_pA` "
    "(pA, total current) or `i_uA_per_cm2` (µA/cm², current density); optional "
    "`area_cm2`, `capacitance_pF`, `c_m`, `name`, `meta` (JSON string)"
)
_EXPECTED_COLUMNS = (
    "`t_ms`, `v_mV` or `v_mV_0..v_mV_{S-1}`, and `i_pA`/`i_pA_0..` or "
    "`i_uA_per_cm2`/`i_uA_per_cm2_0..`"
)
# Accepted alternative units: key -> (canonical key, factor, description).
_CONVERSIONS = {
    "t_s": ("t_ms", 1e3, "s -> ms (x 1e3)"),
    "v_V": ("v_mV", 1e3, "V -> mV (x 1e3)"),
    "i_nA": ("i_pA", 1e3, "nA -> pA (x 1e3)"),
}
_ARRAY_KEYS = ("t_ms", "v_mV", "i_pA", "i_uA_per_cm2", *_CONVERSIONS)
_SCALAR_KEYS = ("area_cm2", "capacitance_pF", "c_m", "name", "meta")
# Names that look like time / voltage / current in a unit we do not accept.
_LOOKS_LIKE = {
    "time": re.compile(r"^(t|ts|time|times|sweep_?times?)(_.*)?$", re.IGNORECASE),
    "voltage": re.compile(
        r"^(v|vm|v_m|volt|voltage|voltages|membrane_potential)(_.*)?$", re.IGNORECASE
    ),
    "current": re.compile(
        r"^(i|im|i_m|i_inj|i_stim|istim|current|currents|command)(_.*)?$", re.IGNORECASE
    ),
}
_WANTED = {
    "time": "`t_ms` (ms) or `t_s` (s, converted to ms)",
    "voltage": "`v_mV` (mV) or `v_V` (V, converted to mV)",
    "current": ("`i_pA` (pA), `i_nA` (nA, converted to pA) or `i_uA_per_cm2` (µA/cm²)"),
}


# ---- validation helpers ---------------------------------------------------------


def _as_float_array(name: str, value: Any, unit: str) -> np.ndarray:
    """A float64 NumPy copy of `value`, or a TypeError naming `name`."""
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"`{name}` must be a numeric array in {unit}, got {value!r}.")
    if not is_concrete(value):
        raise TypeError(
            f"`{name}` is a JAX tracer: a Recording holds concrete data; build it "
            "outside jit/vmap/grad."
        )
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"`{name}` must be a real numeric array in {unit}, got dtype {arr.dtype}."
        )
    return np.array(arr, dtype=np.float64, copy=True)


def _readonly(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr


def _check_finite_samples(name: str, arr: np.ndarray, t_ms: np.ndarray, unit: str):
    """ValueError naming the first non-finite sample of a (S, T) array."""
    bad = ~np.isfinite(arr)
    if bad.any():
        s, k = (int(x) for x in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} has a non-finite sample in sweep {s} at t = {t_ms[k]:g} ms "
            f"(index {k}): got {arr[s, k]!r}; expected finite values in {unit}."
        )


def _sweeps_by_samples(
    name: str, value: Any, t_ms: np.ndarray, unit: str, n_sweeps: int | None
) -> np.ndarray:
    """Validate a (S, T) or (T,) sample array against the time axis; returns (S, T)."""
    arr = _as_float_array(name, value, unit)
    n = t_ms.shape[0]
    if arr.ndim == 1:
        arr = arr[None, :]
        if n_sweeps is not None:
            arr = np.repeat(arr, n_sweeps, axis=0)
    if arr.ndim != 2 or arr.shape[1] != n:
        raise ValueError(
            f"`{name}` has shape {np.shape(value)} but `t_ms` has shape {t_ms.shape}; "
            f"expected (sweeps, {n}) or ({n},) samples in {unit}."
        )
    if n_sweeps is not None and arr.shape[0] != n_sweeps:
        raise ValueError(
            f"`{name}` has shape {np.shape(value)} but `v_mV` has shape "
            f"({n_sweeps}, {n}); expected ({n_sweeps}, {n}) or ({n},) (the same "
            f"current for every sweep) in {unit}."
        )
    _check_finite_samples(name, arr, t_ms, unit)
    return arr


def _positive_scalar(name: str, value: Any, unit: str) -> float:
    if value is None or isinstance(value, (str, bytes, bool)):
        raise TypeError(f"`{name}` must be a number in {unit}, got {value!r}.")
    if not is_concrete(value):
        raise TypeError(
            f"`{name}` is a JAX tracer; a Recording stores concrete values (pass a "
            "traced area to `Recording.stimulus(area_cm2=...)` instead)."
        )
    arr = np.asarray(value)
    if arr.size != 1 or arr.dtype.kind not in "iuf":
        raise TypeError(f"`{name}` must be a scalar number in {unit}, got {value!r}.")
    x = float(arr.reshape(()))
    if not (math.isfinite(x) and x > 0):
        raise ValueError(f"`{name}` must be a finite value > 0 {unit}, got {value!r}.")
    return x


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def _meta_to_json(meta: Any) -> str:
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise TypeError(f"`meta` must be a dict (JSON-serialisable), got {type(meta)}.")
    try:
        return json.dumps(meta, default=_json_default)
    except (TypeError, ValueError) as e:
        raise TypeError(f"`meta` must be JSON-serialisable: {e}.") from None


def _leaf_shapes(tree) -> list[tuple[str, tuple[int, ...], Any]]:
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return [
        (jax.tree_util.keystr(p), np.shape(x), jnp.asarray(x).dtype) for p, x in flat
    ]


def _batched_stimulus(stimulus: Any, n_sweeps: int) -> AbstractStimulus:
    """Check (or build by stacking) a stimulus whose leaves lead with the sweep axis."""
    if isinstance(stimulus, (list, tuple)):
        if len(stimulus) != n_sweeps:
            raise ValueError(
                f"`stimulus` is a sequence of {len(stimulus)} stimuli but `v_mV` has "
                f"{n_sweeps} sweep(s); give one stimulus per sweep."
            )
        for k, s in enumerate(stimulus):
            if not isinstance(s, AbstractStimulus):
                raise TypeError(
                    f"`stimulus[{k}]` must be an hhjax stimulus (AbstractStimulus), "
                    f"got {type(s).__name__}."
                )
        ref_def = jax.tree_util.tree_structure(stimulus[0])
        ref_leaves = _leaf_shapes(stimulus[0])
        for k, s in enumerate(stimulus[1:], start=1):
            if jax.tree_util.tree_structure(s) != ref_def:
                raise ValueError(
                    f"`stimulus[{k}]` ({type(s).__name__}) does not have the pytree "
                    f"structure of `stimulus[0]` ({type(stimulus[0]).__name__}); "
                    "the per-sweep stimuli are stacked, so they must be the same kind "
                    "with the same static settings."
                )
            for (path, shape, dtype), (_, shape0, dtype0) in zip(
                _leaf_shapes(s), ref_leaves
            ):
                if shape != shape0 or dtype != dtype0:
                    raise ValueError(
                        f"`stimulus[{k}]{path}` has shape {shape} ({dtype}) but "
                        f"`stimulus[0]{path}` has shape {shape0} ({dtype0}); the "
                        "per-sweep stimuli are stacked, so their fields must match."
                    )
        return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *stimulus)
    if not isinstance(stimulus, AbstractStimulus):
        raise TypeError(
            "`stimulus` must be an hhjax stimulus batched over sweeps, or a list of "
            f"one stimulus per sweep, got {type(stimulus).__name__}."
        )
    leaves = _leaf_shapes(stimulus)
    if not leaves:
        raise ValueError("`stimulus` has no array fields to batch over sweeps.")
    for path, shape, _ in leaves:
        if len(shape) == 0 or shape[0] != n_sweeps:
            raise ValueError(
                f"`stimulus{path}` has shape {shape}; a single `stimulus` must be "
                f"batched over the {n_sweeps} sweep(s) (every field with leading axis "
                f"{n_sweeps}); pass a list of per-sweep stimuli to have them stacked."
            )
    return stimulus


def _select_index(sweeps: Any, n_sweeps: int) -> np.ndarray:
    if isinstance(sweeps, (int, np.integer)) and not isinstance(sweeps, bool):
        sweeps = [sweeps]
    idx = np.asarray(sweeps)
    if idx.ndim != 1:
        raise ValueError(
            f"`sweeps` must be a 1-D list of sweep indices, got {sweeps!r}."
        )
    if idx.dtype == bool:
        if idx.shape[0] != n_sweeps:
            raise ValueError(
                f"a boolean `sweeps` mask must have length {n_sweeps}, got "
                f"{idx.shape[0]}."
            )
        idx = np.flatnonzero(idx)
    elif idx.size == 0:
        idx = idx.astype(np.int64)
    elif idx.dtype.kind not in "iu":
        raise TypeError(f"`sweeps` must be integer sweep indices, got {sweeps!r}.")
    if idx.size == 0:
        raise ValueError("`sweeps` selects no sweep; give at least one index.")
    bad = (idx < -n_sweeps) | (idx >= n_sweeps)
    if bad.any():
        raise IndexError(
            f"sweep index {int(idx[bad][0])} is out of range: the recording has "
            f"{n_sweeps} sweep(s), valid indices are 0..{n_sweeps - 1} "
            f"(or -{n_sweeps}..-1)."
        )
    return np.where(idx < 0, idx + n_sweeps, idx).astype(np.int64)


def _density(i_pA, area_cm2):
    """pA -> µA/cm² (NumPy when everything is concrete, else JAX)."""
    if is_concrete(area_cm2):
        return np.asarray(i_pA) * 1e-6 / float(area_cm2)
    return jnp.asarray(i_pA) * 1e-6 / area_cm2


def _atomic_write(path: pathlib.Path, write, *, text: bool):
    """Write through a temporary file in the same folder, then `os.replace`."""
    folder = path.parent if str(path.parent) else pathlib.Path(".")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        mode = "w" if text else "wb"
        kw = dict(encoding="utf-8", newline="\n") if text else {}
        with os.fdopen(fd, mode, **kw) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _check_suffix(path, suffix: str, method: str) -> pathlib.Path:
    path = pathlib.Path(path)
    if path.suffix.lower() != suffix:
        raise ValueError(
            f"`{method}` writes {suffix} files; got the path {str(path)!r} "
            f"(give a name ending in {suffix!r})."
        )
    return path


# ---- the container --------------------------------------------------------------


class Recording(eqx.Module):
    """Current-clamp sweeps on one time axis: voltage [mV] and injected current.

    Host data: every array is a read-only NumPy float64 copy (user arrays are never
    aliased). Use [`hhjax.Recording.stimulus`][] to get the current as an hhjax
    stimulus batched over sweeps, in µA/cm².

    **Arguments:**

    - `t_ms`: sample times [ms], 1-D, finite, strictly increasing, at least 2.
    - `v_mV`: membrane potential [mV], shape `(S, T)` or `(T,)` (one sweep).
    - exactly one current source:
        - `i_uA_per_cm2`: current density [µA/cm²], `(S, T)` or `(T,)` (a 1-D current
          is used for every sweep);
        - `i_pA`: total injected current [pA], `(S, T)` or `(T,)`; converting it to a
          density needs the membrane area (below);
        - `stimulus`: an hhjax stimulus whose every field has leading axis `S`
          (already batched), or a list/tuple of `S` stimuli of one kind (stacked).
    - `area_cm2`: membrane area [cm²], > 0, for `i_pA`.
    - `capacitance_pF`: whole-cell capacitance [pF], > 0; gives
      `area_cm2 = capacitance_pF * 1e-6 / c_m`. With both, they must agree to 1e-9
      (relative). With neither, the recording is still valid (the area may be
      fitted) and `stimulus(area_cm2=...)` takes it.
    - `c_m`: specific membrane capacitance [µF/cm²] used with `capacitance_pF`
      (default 1).
    - `meta`: a JSON-serialisable dict of free-form metadata (stored as JSON, so a
      deep copy; NumPy scalars/arrays become numbers/lists).
    - `name`: an optional label.

    **Fields:** `t_ms` `(T,)`, `v_mV` `(S, T)`, `i_samples` `(S, T)` (the current in
    `current_unit`, `None` for a stimulus), `current_unit` (`"uA_per_cm2"`, `"pA"`
    or `None`), `batched_stimulus`, `area_cm2`, `capacitance_pF`, `c_m`, `meta_json`,
    `name`. Property `meta` gives a fresh dict.

    **Raises:** `TypeError` for a missing current source or non-numeric data;
    `ValueError` naming the argument and unit for non-finite samples (with the sweep,
    time and index), shape mismatches (with both shapes), a non-increasing time axis,
    two current sources, an area or capacitance that is not > 0, or an area and a
    capacitance that disagree.

    **Example:**

    ```python
    import numpy as np, hhjax
    t = np.arange(2001) * 0.01                                  # ms
    i = np.where((t >= 5) & (t < 15), 50.0, 0.0)                 # pA
    rec = hhjax.Recording(t, np.full_like(t, -65.0), i_pA=i, capacitance_pF=10.0)
    stim = rec.stimulus()       # SampledCurrent, leading sweep axis, µA/cm²
    ```
    """

    t_ms: np.ndarray
    v_mV: np.ndarray
    i_samples: np.ndarray | None
    batched_stimulus: AbstractStimulus | None
    current_unit: Literal["uA_per_cm2", "pA"] | None = eqx.field(static=True)
    area_cm2: float | None = eqx.field(static=True)
    capacitance_pF: float | None = eqx.field(static=True)
    c_m: float = eqx.field(static=True)
    meta_json: str = eqx.field(static=True)
    name: str | None = eqx.field(static=True)

    def __init__(
        self,
        t_ms: ArrayLike,
        v_mV: ArrayLike,
        *,
        i_uA_per_cm2: ArrayLike | None = None,
        i_pA: ArrayLike | None = None,
        stimulus: AbstractStimulus | Sequence[AbstractStimulus] | None = None,
        area_cm2: float | None = None,
        capacitance_pF: float | None = None,
        c_m: float = 1.0,
        meta: dict | None = None,
        name: str | None = None,
    ):
        t = _as_float_array("t_ms", t_ms, "ms")
        if t.ndim != 1 or t.shape[0] < 2:
            raise ValueError(
                f"`t_ms` must be a 1-D array of at least 2 sample times in ms, got "
                f"shape {t.shape}."
            )
        if not np.all(np.isfinite(t)):
            k = int(np.flatnonzero(~np.isfinite(t))[0])
            raise ValueError(f"`t_ms` must be finite (ms); got {t[k]!r} at index {k}.")
        steps = np.diff(t)
        if np.any(steps <= 0):
            k = int(np.flatnonzero(steps <= 0)[0])
            raise ValueError(
                "`t_ms` must be strictly increasing (ms); got "
                f"t[{k}] = {t[k]:g} ms followed by t[{k + 1}] = {t[k + 1]:g} ms."
            )
        v = _sweeps_by_samples("v_mV", v_mV, t, "mV", None)
        n_sweeps = v.shape[0]
        if n_sweeps < 1:
            raise ValueError(f"`v_mV` holds no sweep (shape {np.shape(v_mV)}).")

        given = [
            k
            for k, x in (
                ("i_uA_per_cm2", i_uA_per_cm2),
                ("i_pA", i_pA),
                ("stimulus", stimulus),
            )
            if x is not None
        ]
        options = (
            "`i_uA_per_cm2=` (µA/cm², current density), `i_pA=` (pA, total current) "
            "or `stimulus=` (an hhjax stimulus batched over sweeps, or a list of them)"
        )
        if not given:
            raise TypeError(f"Recording needs exactly one current source: {options}.")
        if len(given) > 1:
            raise ValueError(
                f"Recording takes exactly one current source ({options}), got "
                f"{' and '.join('`' + g + '`' for g in given)}."
            )
        if i_uA_per_cm2 is not None:
            samples = _sweeps_by_samples(
                "i_uA_per_cm2", i_uA_per_cm2, t, "µA/cm²", n_sweeps
            )
            unit, stim = "uA_per_cm2", None
        elif i_pA is not None:
            samples = _sweeps_by_samples("i_pA", i_pA, t, "pA", n_sweeps)
            unit, stim = "pA", None
        else:
            samples, unit = None, None
            stim = _batched_stimulus(stimulus, n_sweeps)

        c_m_f = _positive_scalar("c_m", c_m, "µF/cm²")
        area = (
            None if area_cm2 is None else _positive_scalar("area_cm2", area_cm2, "cm²")
        )
        cap = (
            None
            if capacitance_pF is None
            else _positive_scalar("capacitance_pF", capacitance_pF, "pF")
        )
        if cap is not None:
            implied = cap / (c_m_f * 1e6)  # = capacitance_pF * 1e-6 / c_m
            if area is None:
                area = implied
            elif abs(area - implied) > AREA_RTOL * area:
                raise ValueError(
                    f"`area_cm2` = {area!r} cm² disagrees with `capacitance_pF` = "
                    f"{cap!r} pF at `c_m` = {c_m_f!r} µF/cm², which gives "
                    f"{implied!r} cm²; give one of them, or consistent values."
                )
        if name is not None and not isinstance(name, str):
            raise TypeError(f"`name` must be a str or None, got {type(name).__name__}.")

        self.t_ms = _readonly(t)
        self.v_mV = _readonly(v)
        self.i_samples = None if samples is None else _readonly(samples)
        self.batched_stimulus = stim
        self.current_unit = unit
        self.area_cm2 = area
        self.capacitance_pF = cap
        self.c_m = c_m_f
        self.meta_json = _meta_to_json(meta)
        self.name = name

    # ---- shape and sampling -------------------------------------------------------

    @property
    def meta(self) -> dict:
        """The metadata, a fresh dict on every access."""
        return json.loads(self.meta_json)

    @property
    def n_sweeps(self) -> int:
        """Number of sweeps `S`."""
        return int(self.v_mV.shape[0])

    @property
    def n_samples(self) -> int:
        """Number of samples per sweep `T`."""
        return int(self.t_ms.shape[0])

    @property
    def t0(self) -> float:
        """First sample time [ms]."""
        return float(self.t_ms[0])

    @property
    def t_end(self) -> float:
        """Last sample time [ms]."""
        return float(self.t_ms[-1])

    @property
    def duration(self) -> float:
        """`t_end - t0` [ms]."""
        return self.t_end - self.t0

    @property
    def dt(self) -> float:
        """Median sample spacing [ms]."""
        return float(np.median(np.diff(self.t_ms)))

    @property
    def uniform(self) -> bool:
        """Whether every sample spacing equals `dt` to within 1e-6 (relative)."""
        return bool(
            np.all(np.abs(np.diff(self.t_ms) - self.dt) <= UNIFORM_RTOL * self.dt)
        )

    # ---- current ------------------------------------------------------------------

    def _resolve_area(self, area_cm2, method: str):
        if self.current_unit != "pA":
            if area_cm2 is not None:
                what = (
                    "a stimulus (already in µA/cm²)"
                    if self.current_unit is None
                    else "a current density (µA/cm²)"
                )
                raise ValueError(
                    f"`{method}(area_cm2=...)`: this recording's current is {what}; "
                    "an area only converts recordings given in pA."
                )
            return None
        if area_cm2 is None:
            if self.area_cm2 is None:
                raise ValueError(
                    f"`{method}` needs the membrane area to convert the recorded "
                    "current from pA to µA/cm²: pass `area_cm2=` (cm²) here, or build "
                    "the Recording with `area_cm2=` or `capacitance_pF=`."
                )
            return self.area_cm2
        if is_concrete(area_cm2):
            return _positive_scalar("area_cm2", area_cm2, "cm²")
        return area_cm2

    def current_density(self, area_cm2: float | None = None) -> np.ndarray:
        """The injected current density [µA/cm²] at the sample times, `(S, T)` NumPy.

        `area_cm2` [cm²] overrides the recording's area (only for currents in pA).
        A stimulus recording is evaluated at `t_ms` (for noise currents: their mean).

        **Raises:** `ValueError` if the current is in pA and no area is known, or an
        area is given for a recording that is not in pA.
        """
        area = self._resolve_area(area_cm2, "current_density")
        if self.current_unit is None:
            t = jnp.asarray(self.t_ms, dtype=float_dtype(self.t_ms))
            out = jax.vmap(lambda s: jax.vmap(s)(t))(self.batched_stimulus)
            return np.array(out, dtype=np.float64)
        if self.current_unit == "uA_per_cm2":
            return np.array(self.i_samples)
        return np.asarray(_density(self.i_samples, area), dtype=np.float64)

    def stimulus(
        self, area_cm2: ArrayLike | None = None, *, dtype=None
    ) -> AbstractStimulus:
        """The injected current as an hhjax stimulus [µA/cm²] batched over sweeps.

        Every field has leading axis `S`: simulate sweep-wise with `jax.vmap`. Evaluated
        at the sample times it reproduces `current_density()` exactly.

        - Piecewise-constant currents (in every sweep fewer than 5 % of the
          sample-to-sample steps change value: step protocols) become a
          [`hhjax.SampledCurrent`][] with `interpolation="previous"` holding only the
          change points: `t0`, then each sample time where a new value first appears.
          Sweeps are padded to a common length with times `t_end + 1, t_end + 2, ...`
          [ms] repeating the last value (after the recording, so no effect on it).
        - Other currents become a linear `SampledCurrent` through every sample (plus
          one knot at `t_end + 1` ms repeating the last value, so that the last
          sample is reproduced exactly; values are held after `t_end` anyway).
        - A recording built from `stimulus=` returns that stimulus.

        **Arguments:**

        - `area_cm2`: membrane area [cm²] overriding the recording's (only for
          currents in pA); may be a traced JAX scalar, e.g. a fitted area.
        - `dtype`: float dtype of the stimulus (default: JAX's default float).

        **Raises:** `ValueError` if the current is in pA and no area is known (naming
        `area_cm2`/`capacitance_pF`), or an area is given for a recording not in pA.

        **Example:**

        ```python
        stim = rec.stimulus(area_cm2=1e-5)
        v = jax.vmap(lambda s: hhjax.simulate(hhjax.HHParams(), s, rec.t_end,
                                              ts=rec.t_ms).v)(stim)
        ```
        """
        area = self._resolve_area(area_cm2, "stimulus")
        if self.current_unit is None:
            return self.batched_stimulus
        raw = self.i_samples
        values = raw if area is None else _density(raw, area)
        dt = float_dtype(self.t_ms, dtype=dtype)
        n = self.n_samples
        changes = np.diff(raw, axis=1) != 0
        if np.all(changes.sum(axis=1) < PIECEWISE_CONSTANT_FRACTION * n):
            idx = [np.concatenate([[0], np.flatnonzero(c) + 1]) for c in changes]
            length = max(len(k) for k in idx)
            sweeps = []
            for s, k in enumerate(idx):
                pad = self.t_end + np.arange(1, length - len(k) + 1, dtype=np.float64)
                times = np.concatenate([self.t_ms[k], pad])
                vals = _concat_hold(values[s, k], length - len(k))
                sweeps.append(SampledCurrent(times, vals, "previous", dtype=dt))
        else:
            times = np.append(self.t_ms, self.t_end + 1.0)
            sweeps = [
                SampledCurrent(times, _concat_hold(values[s], 1), dtype=dt)
                for s in range(self.n_sweeps)
            ]
        return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *sweeps)

    # ---- subsets ------------------------------------------------------------------

    def _replace(
        self, sweeps: np.ndarray | None, samples: np.ndarray | None
    ) -> Recording:
        s = slice(None) if sweeps is None else sweeps
        k = slice(None) if samples is None else samples
        kw: dict[str, Any] = {}
        if self.current_unit is None:
            stim = self.batched_stimulus
            if sweeps is not None:
                stim = jax.tree_util.tree_map(lambda x: x[sweeps], stim)
            kw["stimulus"] = stim
        else:
            kw["i_" + self.current_unit] = self.i_samples[s][:, k]
        return Recording(
            self.t_ms[k],
            self.v_mV[s][:, k],
            area_cm2=self.area_cm2,
            capacitance_pF=self.capacitance_pF,
            c_m=self.c_m,
            meta=self.meta,
            name=self.name,
            **kw,
        )

    def select(self, sweeps: int | Sequence[int] | ArrayLike) -> Recording:
        """A new Recording with the given sweeps, in that order.

        `sweeps`: sweep indices (list/tuple/array of ints, negative counting from the
        end; a single int; or a boolean mask of length `S`).

        **Raises:** `IndexError` naming the valid range for an index out of range;
        `ValueError` for an empty selection.
        """
        return self._replace(_select_index(sweeps, self.n_sweeps), None)

    def window(
        self, t_start: float | None = None, t_end: float | None = None
    ) -> Recording:
        """A new Recording with the samples at `t_start <= t <= t_end` [ms] (`None`:
        open end). Stimulus recordings keep their stimulus (its times are absolute).

        **Raises:** `ValueError` if the window holds fewer than 2 samples.
        """
        lo = -np.inf if t_start is None else float(t_start)
        hi = np.inf if t_end is None else float(t_end)
        if math.isnan(lo) or math.isnan(hi) or lo > hi:
            raise ValueError(
                f"`window` needs t_start <= t_end (ms), got {t_start!r}, {t_end!r}."
            )
        keep = np.flatnonzero((self.t_ms >= lo) & (self.t_ms <= hi))
        if keep.size < 2:
            raise ValueError(
                f"the window [{t_start}, {t_end}] ms holds {keep.size} sample(s) of "
                f"the recording (t = {self.t0:g} .. {self.t_end:g} ms); a Recording "
                "needs at least 2."
            )
        return self._replace(None, keep)

    # ---- resampling and corrections -----------------------------------------------

    def _rebuilt(
        self,
        t_ms: np.ndarray,
        v_mV: np.ndarray,
        i_samples: np.ndarray | None,
        meta: dict,
    ) -> Recording:
        kw: dict[str, Any]
        if self.current_unit is None:
            kw = {"stimulus": self.batched_stimulus}
        else:
            kw = {"i_" + self.current_unit: i_samples}
        return Recording(
            t_ms,
            v_mV,
            area_cm2=self.area_cm2,
            capacitance_pF=self.capacitance_pF,
            c_m=self.c_m,
            meta=meta,
            name=self.name,
            **kw,
        )

    def resample(
        self, dt_ms: float, method: Literal["mean", "linear"] = "mean"
    ) -> Recording:
        """A new Recording sampled every `dt_ms` [ms].

        - `method="mean"` (default; decimation with anti-alias averaging): needs a
          uniform recording and `dt_ms` an integer multiple `k` of its sampling
          interval. Every output sample is the mean of `k` consecutive input samples
          (non-overlapping blocks from the first sample; an incomplete last block is
          dropped), stamped at the mean of their times, i.e. the block centre
          `t0 + (j·k + (k − 1)/2)·dt`: a boxcar low-pass with no time shift. The
          current is averaged the same way, so the injected charge is kept: a
          step edge inside a block gives that one sample an intermediate value.
          Spike peaks are flattened by the averaging (a 1 ms AP sampled every 0.5 ms
          loses much of its height), as any anti-alias filter would.
        - `method="linear"`: linear interpolation of voltage and current onto the
          grid `t0, t0 + dt_ms, ...` (up to `t_end`); any `dt_ms` > 0 (up- or
          down-sampling), uniform or not; no anti-alias filtering, so downsampling
          can miss AP peaks and aliases noise.

        A recording built from `stimulus=` keeps its stimulus (defined in continuous
        time). The step is recorded in `meta["resampled"]` (a list, one entry per
        call).

        **Raises:** `ValueError` for `dt_ms` not finite and > 0, an unknown
        `method`, `"mean"` on a non-uniform recording or with `dt_ms` not an integer
        multiple of `dt`, or a result with fewer than 2 samples.
        """
        if isinstance(dt_ms, (bool, str, bytes)) or dt_ms is None:
            raise TypeError(f"`dt_ms` must be a number in ms, got {dt_ms!r}.")
        dt_new = float(dt_ms)
        if not (math.isfinite(dt_new) and dt_new > 0):
            raise ValueError(f"`dt_ms` must be a finite step > 0 ms, got {dt_ms!r}.")
        if method not in ("mean", "linear"):
            raise ValueError(
                f"`method` must be 'mean' (block averaging) or 'linear' "
                f"(interpolation), got {method!r}."
            )
        t, v, i = self.t_ms, self.v_mV, self.i_samples
        if method == "mean":
            if not self.uniform:
                raise ValueError(
                    "`resample(method='mean')` needs uniformly sampled data; this "
                    "recording's sample spacing varies (use method='linear')."
                )
            ratio = dt_new / self.dt
            k = int(round(ratio))
            if k < 1 or abs(ratio - k) > 1e-6 * max(ratio, 1.0):
                raise ValueError(
                    f"`resample(method='mean')` needs `dt_ms` to be an integer "
                    f"multiple of the sampling interval {self.dt:g} ms; got "
                    f"{dt_new:g} ms ({ratio:g} samples). Use method='linear' for "
                    "other steps."
                )
            n_out = self.n_samples // k
            if n_out < 2:
                raise ValueError(
                    f"resampling {self.n_samples} samples to blocks of {k} leaves "
                    f"{n_out} sample(s); a Recording needs at least 2."
                )
            m = n_out * k

            def blocks(x):
                return x[..., :m].reshape(*x.shape[:-1], n_out, k).mean(axis=-1)

            t_new, v_new = blocks(t), blocks(v)
            i_new = None if i is None else blocks(i)
        else:
            n_out = int(math.floor((self.t_end - self.t0) / dt_new * (1 + 1e-12))) + 1
            if n_out < 2:
                raise ValueError(
                    f"a step of {dt_new:g} ms leaves {n_out} sample(s) in the "
                    f"recording's {self.duration:g} ms; a Recording needs at least 2."
                )
            t_new = self.t0 + dt_new * np.arange(n_out)
            t_new[-1] = min(t_new[-1], self.t_end)

            def interp(x):
                return np.stack([np.interp(t_new, t, row) for row in x])

            v_new = interp(v)
            i_new = None if i is None else interp(i)
        meta = self.meta
        meta.setdefault("resampled", []).append(
            {"dt_ms": dt_new, "method": method, "from_dt_ms": self.dt}
        )
        return self._rebuilt(t_new, v_new, i_new, meta)

    def correct_ljp(self, ljp_mV: float) -> Recording:
        """A new Recording with the liquid-junction potential removed:
        `v_corrected = v_recorded − ljp_mV` [mV].

        Sign convention (Neher 1992; the one of BluePyEfe's `ljp`): `ljp_mV` is the
        junction potential of the pipette solution relative to the bath, positive
        for the usual K-gluconate internals (about +10 to +16 mV), so the true
        membrane potential is *more negative* than the recorded one. E.g. the
        BluePyEfe B6 recordings use `ljp_mV=14`: a recorded −60 mV becomes −74 mV.
        The running total is kept in `meta["ljp_corrected_mV"]` (two corrections of
        7 mV add up to 14).

        **Raises:** `TypeError`/`ValueError` for a value that is not a finite number.
        """
        if isinstance(ljp_mV, (bool, str, bytes)) or ljp_mV is None:
            raise TypeError(f"`ljp_mV` must be a number in mV, got {ljp_mV!r}.")
        ljp = float(np.asarray(ljp_mV).reshape(()))
        if not math.isfinite(ljp):
            raise ValueError(f"`ljp_mV` must be finite (mV), got {ljp_mV!r}.")
        meta = self.meta
        meta["ljp_corrected_mV"] = float(meta.get("ljp_corrected_mV", 0.0)) + ljp
        return self._rebuilt(self.t_ms, self.v_mV - ljp, self.i_samples, meta)

    # ---- saving -------------------------------------------------------------------

    def _current_for_saving(self) -> tuple[str, np.ndarray]:
        if self.current_unit is None:
            return "i_uA_per_cm2", self.current_density()
        return "i_" + self.current_unit, np.asarray(self.i_samples)

    def _scalars(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.area_cm2 is not None:
            out["area_cm2"] = self.area_cm2
        if self.capacitance_pF is not None:
            out["capacitance_pF"] = self.capacitance_pF
            out["c_m"] = self.c_m
        if self.name is not None:
            out["name"] = self.name
        return out

    def save_npz(self, path: str | os.PathLike) -> None:
        """Write the recording to an `.npz` file (atomically: temporary file, then
        rename), readable by [`hhjax.load_recording`][] and by
        `np.load(path, allow_pickle=False)`.

        Keys: `t_ms` `(T,)`, `v_mV` `(S, T)`, `i_pA` or `i_uA_per_cm2` `(S, T)` (a
        stimulus recording is saved as its density sampled at `t_ms`), the scalars
        `area_cm2`, `capacitance_pF`, `c_m`, `name` when known, and `meta` (a JSON
        string, 0-d unicode array).

        **Raises:** `ValueError` if `path` does not end in `.npz`.
        """
        path = _check_suffix(path, ".npz", "save_npz")
        key, current = self._current_for_saving()
        arrays = {"t_ms": self.t_ms, "v_mV": self.v_mV, key: current}
        for k, x in self._scalars().items():
            arrays[k] = np.array(x)
        arrays["meta"] = np.array(self.meta_json)
        _atomic_write(path, lambda f: np.savez(f, **arrays), text=False)

    def save_csv(self, path: str | os.PathLike) -> None:
        """Write the recording to a `.csv` file (atomically), one row per sample.

        Leading comment lines `# key: json-value` give `area_cm2`, `capacitance_pF`,
        `c_m`, `name` (when known) and `meta`; then the header
        `t_ms,v_mV_0,...,v_mV_{S-1},i_pA_0,...` (or `i_uA_per_cm2_k`). Numbers are
        written with Python's shortest exact repr, so a round trip is exact.

        **Raises:** `ValueError` if `path` does not end in `.csv`.
        """
        path = _check_suffix(path, ".csv", "save_csv")
        key, current = self._current_for_saving()
        s = self.n_sweeps
        header = [
            "t_ms",
            *(f"v_mV_{k}" for k in range(s)),
            *(f"{key}_{k}" for k in range(s)),
        ]
        data = np.concatenate([self.t_ms[:, None], self.v_mV.T, current.T], axis=1)

        def write(f):
            for k, x in self._scalars().items():
                f.write(f"# {k}: {json.dumps(x)}\n")
            f.write(f"# meta: {self.meta_json}\n")
            f.write(",".join(header) + "\n")
            rep = float.__repr__
            for row in data.tolist():
                f.write(",".join(map(rep, row)) + "\n")

        _atomic_write(path, write, text=True)

    # ---- display ------------------------------------------------------------------

    def summary(self) -> str:
        """A one-paragraph description: sweeps, samples, sampling, duration, current
        unit and area."""
        label = f"Recording {self.name!r}" if self.name else "Recording"
        spacing = "uniform" if self.uniform else "non-uniform, median"
        if self.current_unit is None:
            current = (
                f"current: {type(self.batched_stimulus).__name__} stimulus (µA/cm²)"
            )
        else:
            current = f"current in {_CURRENT_UNITS[self.current_unit]}"
        if self.area_cm2 is None:
            area = (
                "area unknown (pass area_cm2= to stimulus())"
                if self.current_unit == "pA"
                else "area unknown"
            )
        else:
            area = f"area {self.area_cm2:.6g} cm²"
            if self.capacitance_pF is not None:
                area += (
                    f" (C = {self.capacitance_pF:.6g} pF at c_m = {self.c_m:g} µF/cm²)"
                )
        return (
            f"{label}: {self.n_sweeps} sweep(s) × {self.n_samples} samples, "
            f"dt = {self.dt:.6g} ms ({spacing}), t = {self.t0:.6g} .. "
            f"{self.t_end:.6g} ms (duration {self.duration:.6g} ms), {current}, {area}."
        )


def _concat_hold(values, n_extra: int):
    """`values` followed by `n_extra` copies of its last element (NumPy or JAX)."""
    if n_extra == 0:
        return values
    if isinstance(values, np.ndarray):
        return np.concatenate([values, np.repeat(values[-1:], n_extra)])
    return jnp.concatenate([values, jnp.repeat(values[-1:], n_extra)])


# ---- loading --------------------------------------------------------------------


def _looks_like(key: str) -> str | None:
    for quantity, pattern in _LOOKS_LIKE.items():
        if pattern.match(key):
            return quantity
    return None


def _resolve_arrays(
    found: dict[str, np.ndarray], source: str, what: str, expected: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """Map file keys/columns onto Recording arguments, converting accepted units."""
    converted: dict[str, str] = {}
    out: dict[str, Any] = {}
    for quantity, names in (
        ("time", ("t_ms", "t_s")),
        ("voltage", ("v_mV", "v_V")),
        ("current", ("i_pA", "i_nA", "i_uA_per_cm2")),
    ):
        present = [k for k in names if k in found]
        if len(present) > 1:
            raise ValueError(
                f"{source} has {' and '.join(present)}: give the {quantity} once, as "
                f"{_WANTED[quantity]}."
            )
        if not present:
            odd = [
                k for k in found if k not in _ARRAY_KEYS and _looks_like(k) == quantity
            ]
            if odd:
                raise ValueError(
                    f"{source} has {what} {odd} that look like the {quantity} in a "
                    f"unit hhjax does not guess; expected {_WANTED[quantity]}. Rename "
                    "(and convert) them."
                )
            raise ValueError(
                f"{source} has no {quantity} {what}: found {sorted(found)}; expected "
                f"{expected}."
            )
        key = present[0]
        arr = found[key]
        if key in _CONVERSIONS:
            target, factor, desc = _CONVERSIONS[key]
            arr = np.asarray(arr, dtype=np.float64) * factor
            converted[key] = f"{target}: {desc}"
            key = target
        out[key] = arr
    return out, converted


def _scalar_from(value: Any, key: str, source: str) -> Any:
    arr = np.asarray(value)
    if arr.size != 1:
        raise ValueError(f"{source}: `{key}` must be a scalar, got shape {arr.shape}.")
    x = arr.reshape(()).item()
    if isinstance(x, bytes):
        x = x.decode("utf-8")
    return x


def _parse_meta(value: Any, source: str) -> dict:
    if isinstance(value, dict):
        return value
    if isinstance(value, np.ndarray):
        value = _scalar_from(value, "meta", source)
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if not isinstance(value, str):
        return {"meta": value}
    try:
        parsed = json.loads(value)
    except ValueError:
        return {"meta": value}
    return parsed if isinstance(parsed, dict) else {"meta": parsed}


def _read_npz(path: pathlib.Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays, scalars) of an .npz file; ValueError if it cannot be read."""
    found: dict[str, np.ndarray] = {}
    try:
        # open the file here: np.load leaks its own handle when the archive is corrupt
        with open(path, "rb") as fh:
            obj = np.load(fh, allow_pickle=False)
            if not isinstance(obj, np.lib.npyio.NpzFile):
                raise ValueError(
                    "the file holds a single .npy array, not an .npz archive"
                )
            with obj as f:
                for k in f.files:
                    value = f[k]
                    if not isinstance(value, np.ndarray):  # a member that is not .npy
                        raise ValueError(f"the member {k!r} is not a .npy array")
                    found[k] = np.array(value)
    except (
        zipfile.BadZipFile,
        EOFError,
        ValueError,
        OSError,
        zlib.error,
        KeyError,
    ) as e:
        raise ValueError(
            f"could not read {str(path)!r} as an .npz recording: "
            f"{type(e).__name__}: {e}"
        ) from e
    arrays = {k: v for k, v in found.items() if k not in _SCALAR_KEYS}
    scalars = {k: v for k, v in found.items() if k in _SCALAR_KEYS}
    return arrays, scalars


_COMMENT = re.compile(r"^#\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.*?)\s*$")
_INDEXED = re.compile(r"^(.*?)_(\d+)$")


def _read_csv(path: pathlib.Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays, scalars) of a .csv file; ValueError if it cannot be read."""
    source = f"{str(path)!r}"
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError) as e:
        raise ValueError(f"could not read {source} as a .csv recording: {e}") from e
    scalars: dict[str, Any] = {}
    header: list[str] | None = None
    rows: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            if header is None:
                m = _COMMENT.match(stripped)
                if m:
                    try:
                        scalars[m.group(1)] = json.loads(m.group(2))
                    except ValueError:
                        scalars[m.group(1)] = m.group(2)
            continue
        if header is None:
            header = [c.strip() for c in stripped.split(",")]
        else:
            rows.append(stripped)
    if header is None or not rows:
        raise ValueError(
            f"could not read {source} as a .csv recording: no header and data rows "
            f"found; expected the columns {_EXPECTED_COLUMNS}."
        )
    try:
        data = np.loadtxt(rows, delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as e:
        raise ValueError(f"could not read {source} as a .csv recording: {e}") from e
    if data.shape[1] != len(header):
        raise ValueError(
            f"could not read {source} as a .csv recording: {data.shape[1]} values per "
            f"row but {len(header)} header columns."
        )
    # group `base_k` columns into (S, T) arrays
    groups: dict[str, dict[int | None, np.ndarray]] = {}
    for j, col in enumerate(header):
        m = _INDEXED.match(col)
        base, k = (m.group(1), int(m.group(2))) if m else (col, None)
        if base not in _ARRAY_KEYS and _looks_like(base) is None:
            raise ValueError(
                f"{source} has an unknown column {col!r} (columns: {header}); "
                f"expected {_EXPECTED_COLUMNS}."
            )
        if k in groups.setdefault(base, {}):
            raise ValueError(f"{source} has the column {col!r} twice.")
        groups[base][k] = data[:, j]
    found: dict[str, Any] = {}
    for base, cols in groups.items():
        if None in cols:
            if len(cols) > 1:
                raise ValueError(
                    f"{source} mixes a single {base!r} column with indexed "
                    f"`{base}_k` columns."
                )
            found[base] = cols[None]
        else:
            ks = sorted(cols)
            if ks != list(range(len(ks))):
                raise ValueError(
                    f"{source}: the `{base}_k` columns must be numbered "
                    f"0..{len(ks) - 1}, got {ks}."
                )
            found[base] = np.stack([cols[k] for k in ks])
    return found, scalars


def _load_table(
    path: str | os.PathLike,
    *,
    sweeps: Sequence[int] | None = None,
    area_cm2: float | None = None,
    capacitance_pF: float | None = None,
    c_m: float | None = None,
) -> Recording:
    """Load an `.npz` or `.csv` recording (see `load_recording`)."""
    p = pathlib.Path(path)
    suffix = p.suffix.lower()
    source = f"{str(p)!r}"
    if suffix == ".npz":
        found, file_scalars = _read_npz(p)
        what, expected = "key", "keys " + _EXPECTED_KEYS
    else:
        found, file_scalars = _read_csv(p)
        what, expected = "column", "columns " + _EXPECTED_COLUMNS
    arrays, converted = _resolve_arrays(found, source, what, expected)
    scalars = {
        k: _scalar_from(v, k, source)
        for k, v in file_scalars.items()
        if k in _SCALAR_KEYS and k != "meta"
    }
    meta = _parse_meta(file_scalars["meta"], source) if "meta" in file_scalars else {}
    ignored = sorted(k for k in found if k not in _ARRAY_KEYS)
    if ignored:  # (.npz only: unknown .csv columns are errors)
        meta["ignored_keys"] = ignored
    for k, v in file_scalars.items():  # unknown `# key: value` lines of a .csv
        if k not in _SCALAR_KEYS:
            meta.setdefault(k, v)
    if converted:
        meta["converted"] = converted
    if area_cm2 is not None or capacitance_pF is not None:
        scalars["area_cm2"], scalars["capacitance_pF"] = area_cm2, capacitance_pF
    if c_m is not None:
        scalars["c_m"] = c_m
    name = scalars.get("name")
    rec = Recording(
        arrays["t_ms"],
        arrays["v_mV"],
        **{k: v for k, v in arrays.items() if k.startswith("i_")},
        area_cm2=scalars.get("area_cm2"),
        capacitance_pF=scalars.get("capacitance_pF"),
        c_m=scalars.get("c_m", 1.0),
        meta=meta,
        name=str(name) if name is not None else p.stem,
    )
    if sweeps is not None:
        rec = rec.select(sweeps)
    return rec


#: Loaders by file suffix (lower case).
SUPPORTED_SUFFIXES = (".abf", ".nwb", ".npz", ".csv")


def load_recording(
    path: str | os.PathLike,
    *,
    sweeps: Any = None,
    window_ms: tuple[float | None, float | None] | None = None,
    resample_dt_ms: float | None = None,
    resample_method: Literal["mean", "linear"] = "mean",
    ljp_mV: float | None = None,
    channel: int | str | None = None,
    current_channel: int | str | None = None,
    area_cm2: float | None = None,
    capacitance_pF: float | None = None,
    c_m: float | None = None,
) -> Recording:
    """Load a [`hhjax.Recording`][] from an `.abf`, `.nwb`, `.npz` or `.csv` file.

    The format follows the suffix (case-insensitive):

    - `.abf` (Axon Binary Format, via pyabf): see [`hhjax.load_abf`][]. Voltage
      sweeps in mV, the injected current rebuilt from the file's own command
      waveform (epoch table) in pA.
    - `.nwb` (Neurodata Without Borders, via pynwb): see [`hhjax.load_nwb`][].
      `CurrentClampSeries` and their `CurrentClampStimulusSeries`, converted from
      SI (V, A, s) to mV, pA, ms.
    - `.npz` (read with `allow_pickle=False`): keys `t_ms` `(T,)`, `v_mV` `(S, T)`
      or `(T,)`, and one of `i_pA` / `i_uA_per_cm2`; optional scalars `area_cm2`,
      `capacitance_pF`, `c_m`, `name`, and `meta` (a JSON string; text that is not
      JSON is kept as `{"meta": text}`). Other keys are ignored (listed in
      `meta["ignored_keys"]`). Keys `t_s` [s], `v_V` [V] and `i_nA` [nA] are
      accepted and converted to ms, mV and pA (×1e3 each; noted in
      `meta["converted"]`).
    - `.csv`: the [`hhjax.Recording.save_csv`][] layout: optional `# key: json`
      comment lines, a header naming the columns `t_ms`, `v_mV_k` (or one `v_mV`),
      `i_pA_k`/`i_uA_per_cm2_k` (or one `i_pA`/`i_uA_per_cm2`); `t_s`, `v_V`,
      `i_nA` columns are converted as for `.npz`.

    The options are applied in this order: sweep selection, window, resampling,
    liquid-junction correction.

    **Arguments:**

    - `path`: the file.
    - `sweeps`: which sweeps to keep, in that order: indices (an int, a list/array
      of ints, negative counting from the end, or a boolean mask); for `.nwb` also
      series names (see [`hhjax.load_nwb`][]). Default: all.
    - `window_ms`: `(t_start, t_end)` [ms] keeps the samples with
      `t_start <= t <= t_end` (`None` for an open end), as
      [`hhjax.Recording.window`][]; sweep times start at 0 for ABF and NWB files.
      An NWB file's sweeps are windowed one by one before they are stacked, so
      sweeps recorded for different lengths load together on a window they all
      cover.
    - `resample_dt_ms`: resample to this step [ms] with `resample_method`:
      `"mean"` (default; block averaging, an anti-alias boxcar, needs an integer
      multiple of the sampling interval) or `"linear"` (interpolation, any step);
      see [`hhjax.Recording.resample`][].
    - `ljp_mV`: liquid-junction potential [mV] to remove:
      `v_corrected = v_recorded − ljp_mV` (positive for the usual K-gluconate
      internals: the membrane is more negative than recorded); see
      [`hhjax.Recording.correct_ljp`][]. Default: no correction (files are never
      corrected implicitly, even when their metadata names a junction potential).
    - `channel`: `.abf`: the ADC channel holding the voltage (index or name; default
      0); `.nwb`: the electrode (index or name; needed only when the file has
      several). Not used by `.npz`/`.csv`.
    - `current_channel`: `.abf` only: an ADC channel that *recorded* the injected
      current (index or name), used instead of the command waveform.
    - `area_cm2` [cm²], `capacitance_pF` [pF], `c_m` [µF/cm²]: the membrane area
      for converting pA to µA/cm² (override the file's values; given either of the
      first two, the file's area and capacitance are both ignored).

    The recording's `name` is the file's `name` (`.npz`/`.csv`), the ABF id, or the
    file's stem.

    **Raises:** `FileNotFoundError` naming the path; `ImportError` naming
    `pip install "hhjax[io]"` when pyabf/pynwb are missing; `ValueError` for an
    unsupported suffix (naming the supported formats), a corrupt or truncated file,
    missing keys/columns/channels/series (listing those found and those expected),
    quantities in units hhjax does not convert (naming the unit), options that do
    not apply to the format, or invalid data (as [`hhjax.Recording`][]);
    `IndexError` for a sweep index out of range.

    **Example:**

    ```python
    rec = hhjax.load_recording("cell.abf", sweeps=range(6, 17), window_ms=(100, 700),
                               resample_dt_ms=0.1, ljp_mV=14.0, capacitance_pF=90)
    ```
    """
    p = pathlib.Path(path)
    suffix = p.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ValueError(
            f"unsupported recording format {p.suffix or '(no suffix)'!r} for "
            f"{str(p)!r}: supported formats are '.abf', '.nwb', '.npz' and '.csv' "
            "(ABF and NWB need the optional readers: pip install \"hhjax[io]\")."
        )
    if not p.is_file():
        raise FileNotFoundError(f"no recording file at {str(p)!r}.")
    if isinstance(sweeps, range):
        sweeps = list(sweeps)
    if suffix == ".abf":
        from ._io_abf import load_abf

        rec = load_abf(
            p,
            sweeps=sweeps,
            channel=0 if channel is None else channel,
            current_channel=current_channel,
            area_cm2=area_cm2,
            capacitance_pF=capacitance_pF,
            c_m=1.0 if c_m is None else c_m,
        )
    elif suffix == ".nwb":
        _no_nwb_current_channel(current_channel)
        from ._io_nwb import load_nwb

        rec = load_nwb(
            p,
            sweeps=sweeps,
            electrode=channel,
            window_ms=window_ms,  # per sweep, so sweeps of other lengths can stack
            area_cm2=area_cm2,
            capacitance_pF=capacitance_pF,
            c_m=1.0 if c_m is None else c_m,
        )
    else:
        if channel is not None or current_channel is not None:
            raise ValueError(
                f"`channel`/`current_channel` apply to .abf and .nwb files; a "
                f"{suffix} recording has one voltage and one current per sweep."
            )
        rec = _load_table(
            p, sweeps=sweeps, area_cm2=area_cm2, capacitance_pF=capacitance_pF, c_m=c_m
        )
    return _postprocess(
        rec,
        window_ms=None if suffix == ".nwb" else window_ms,  # .nwb: windowed per sweep
        resample_dt_ms=resample_dt_ms,
        resample_method=resample_method,
        ljp_mV=ljp_mV,
    )


def _no_nwb_current_channel(current_channel) -> None:
    if current_channel is not None:
        raise ValueError(
            "`current_channel` applies to .abf files only; an .nwb file pairs "
            "each response with its stimulus series."
        )


def window_pair(window_ms) -> tuple[float, float]:
    """`(t_start, t_end)` [ms] of a `window_ms` pair, an open end (`None`) as ∓inf;
    `ValueError` for anything but a pair with `t_start <= t_end`."""
    try:
        t_start, t_end = window_ms
        lo = -math.inf if t_start is None else float(t_start)
        hi = math.inf if t_end is None else float(t_end)
    except (TypeError, ValueError):
        raise ValueError(
            f"`window_ms` must be a pair (t_start, t_end) of numbers in ms (None: open "
            f"end), got {window_ms!r}."
        ) from None
    if math.isnan(lo) or math.isnan(hi) or lo > hi:
        raise ValueError(f"`window_ms` needs t_start <= t_end (ms), got {window_ms!r}.")
    return lo, hi


def _postprocess(
    rec: Recording,
    *,
    window_ms: tuple[float | None, float | None] | None = None,
    resample_dt_ms: float | None = None,
    resample_method: Literal["mean", "linear"] = "mean",
    ljp_mV: float | None = None,
) -> Recording:
    """Window, resample and LJP-correct a recording (in that order; `None` skips)."""
    if window_ms is not None:
        rec = rec.window(*window_pair(window_ms))
    if resample_dt_ms is not None:
        rec = rec.resample(resample_dt_ms, resample_method)
    if ljp_mV is not None:
        rec = rec.correct_ljp(ljp_mV)
    return rec


def _sweep_summary(rec: Recording, k: int, index: int, threshold_mV: float) -> dict[str, Any]:
    """The `list_sweeps` row of sweep `k` of `rec`, listed as the file's `index`."""
    meta = rec.meta
    t = np.asarray(rec.t_ms, float)
    v = np.asarray(rec.v_mV[k], float)
    row: dict[str, Any] = {"index": int(index)}

    def per_sweep(key):
        vals = meta.get(key)
        return vals[k] if isinstance(vals, list) and len(vals) > k else None

    row["name"] = per_sweep("series") or f"sweep {index}"
    row["sweep_number"] = per_sweep("sweep_numbers")
    row["n_samples"] = int(t.size)
    row["dt_ms"] = float(np.median(np.diff(t))) if t.size > 1 else math.nan
    row["duration_ms"] = float(t[-1] - t[0])
    head = v[: max(1, t.size // 20)]
    row["v_start_mV"] = float(np.median(head))
    row["n_spikes"] = int(np.sum(_crossing_mask(v, threshold_mV)))
    row["current_unit"] = rec.current_unit
    if rec.i_samples is not None:
        i = np.asarray(rec.i_samples[k], float)
        row["i_start"] = float(i[0])
        row["i_min"], row["i_max"] = float(i.min()), float(i.max())
    else:
        row["i_start"] = row["i_min"] = row["i_max"] = None
    row["description"] = per_sweep("stimulus_description")
    row["error"] = None
    return row


def list_sweeps(
    path: str | os.PathLike,
    *,
    channel: int | str | None = None,
    current_channel: int | str | None = None,
    threshold_mV: float = -20.0,
) -> list[dict[str, Any]]:
    """One summary per sweep of a recording file, to choose the sweeps to fit and to
    hold out (`hhjax sweeps FILE` prints it).

    Works on files whose sweeps cannot be loaded together: an NWB file that mixes
    protocols (a short pulse, a ramp, long steps: sweeps of other lengths or
    sampling) is read sweep by sweep, and a sweep that cannot be read gets its
    error message instead of failing the listing.

    **Arguments:** `path` (`.abf`, `.nwb`, `.npz`, `.csv`); `channel`,
    `current_channel` as [`hhjax.load_recording`][]; `threshold_mV`: the level an
    upward crossing of which counts as a spike [mV] (default −20).

    **Returns:** a list of dicts, in the file's sweep order, with `index` (what
    `load_recording(path, sweeps=[index])` and `hhjax fit --sweeps` take), `name`
    (NWB: the series name), `sweep_number` (NWB, else `None`), `n_samples`, `dt_ms`
    (median sample spacing), `duration_ms`, `v_start_mV` (median of the first 5 %
    of the sweep), `n_spikes`, `current_unit` (`"pA"` or `"uA_per_cm2"`), `i_start`,
    `i_min`, `i_max` (in `current_unit`; `None` without sampled current),
    `description` (NWB: the stimulus description) and `error` (`None`, or why the
    sweep could not be read; the fields after `sweep_number` are then `None`).

    **Raises:** `ValueError` for a threshold that is not a finite number [mV]; as
    [`hhjax.load_recording`][] for a file that cannot be read at all.

    **Example:**

    ```python
    for row in hhjax.list_sweeps("cell.nwb"):
        print(row["index"], row["name"], row["duration_ms"], row["i_max"], row["n_spikes"])
    ```
    """
    try:
        threshold_mV = float(threshold_mV)
    except (TypeError, ValueError):
        threshold_mV = math.nan
    if not math.isfinite(threshold_mV):
        raise ValueError("`threshold_mV` must be a finite spike threshold in mV (e.g. -20.0).")
    p = pathlib.Path(path)
    if p.suffix.lower() == ".nwb":
        _no_nwb_current_channel(current_channel)
        from ._io_nwb import load_nwb_each

        rows = []
        for k, (name, number, rec) in enumerate(load_nwb_each(p, electrode=channel)):
            if isinstance(rec, Exception):
                keys = ("n_samples", "dt_ms", "duration_ms", "v_start_mV", "n_spikes",
                        "current_unit", "i_start", "i_min", "i_max", "description")
                rows.append({"index": k, "name": name, "sweep_number": number,
                             **dict.fromkeys(keys), "error": str(rec)})
            else:
                rows.append(_sweep_summary(rec, 0, k, threshold_mV))
        return rows
    rec = load_recording(p, channel=channel, current_channel=current_channel)
    return [_sweep_summary(rec, k, k, threshold_mV) for k in range(rec.n_sweeps)]
