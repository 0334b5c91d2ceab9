"""Injected current protocols: pytrees callable at time t [ms] -> current density
[µA/cm²], exposing the times at which they jump (for the step-size controller).

Timing parameters are arrays (traceable, differentiable, vmappable): a stimulus is
selected by comparing `t` with them, never by integer indexing.
"""

from __future__ import annotations

import abc
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, PRNGKeyArray

from ._params import check_value, float_dtype, is_concrete


def _positive(x):
    return x > 0


def _nonneg(x):
    return x >= 0


def _any(x):
    return np.ones_like(x, dtype=bool)


def _arr(name: str, value, dtype, unit: str, rule: str = "finite", ok=_any) -> Array:
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"`{name}` must be a number or array in {unit}, got {value!r}.")
    check_value(name, value, unit, rule, ok)
    return jnp.asarray(value, dtype=dtype)


def _empty(dtype) -> Array:
    return jnp.zeros((0,), dtype=dtype)


class AbstractStimulus(eqx.Module):
    """Base class of injected currents.

    Concrete stimuli are callables `stim(t)`: time `t` [ms] (scalar) -> injected
    current density [µA/cm²], positive = depolarising (into the cell). The property
    `jump_times` [ms] lists every time at which the current is discontinuous; it is
    handed to diffrax's `ClipStepSizeController` so adaptive solvers step exactly to
    the edges. Stimuli add with `+` (giving a [`hhjax.SumCurrent`][]).

    **Shapes and dtypes:** every field is an array in one float dtype (following
    the inputs, or `dtype=`); scalars for one stimulus. A stimulus with a leading
    batch axis on its fields (built with `jax.vmap`) drives a population in
    [`hhjax.simulate_population`][] (`stimulus_batched=True`), or is mapped over
    with `jax.vmap(lambda s: hhjax.simulate(p, s, t_end=...))`. Calling a stimulus
    at a scalar time gives a scalar.

    **Raises:** constructors raise `TypeError` for non-numeric values and
    `ValueError` (naming the argument and its unit) for non-finite values or
    inconsistent timing; values traced inside `jit`/`vmap` are not checked.

    **Example:**

    ```pycon
    >>> import hhjax
    >>> stim = hhjax.StepCurrent(10.0, 2.0, 5.0) + hhjax.ConstantCurrent(1.0)
    >>> type(stim).__name__, float(stim(3.0)), float(stim(6.0))
    ('SumCurrent', 11.0, 1.0)
    >>> [float(t) for t in stim.jump_times]
    [2.0, 5.0]

    ```
    """

    @abc.abstractmethod
    def __call__(self, t: ArrayLike) -> Array:
        """Current density [µA/cm²] at time `t` [ms]."""

    @property
    @abc.abstractmethod
    def jump_times(self) -> Array:
        """1-D array of the times [ms] at which the current jumps."""

    def __add__(self, other: AbstractStimulus) -> SumCurrent:
        if not isinstance(other, AbstractStimulus):
            return NotImplemented
        return SumCurrent((self, other))


class ConstantCurrent(AbstractStimulus):
    """A constant current `amplitude` [µA/cm²] at all times (no jumps).

    **Raises:** `TypeError`/`ValueError` for a non-numeric or non-finite amplitude.

    ```pycon
    >>> import hhjax
    >>> stim = hhjax.ConstantCurrent(6.5)
    >>> float(stim(0.0)), float(stim(1e6)), stim.jump_times.shape
    (6.5, 6.5, (0,))

    ```
    """

    amplitude: Array

    def __init__(self, amplitude: ArrayLike, *, dtype=None):
        dt = float_dtype(amplitude, dtype=dtype)
        self.amplitude = _arr("amplitude", amplitude, dt, "µA/cm²")

    def __call__(self, t):
        return self.amplitude * jnp.ones_like(jnp.asarray(t, self.amplitude.dtype))

    @property
    def jump_times(self):
        return _empty(self.amplitude.dtype)


class StepCurrent(AbstractStimulus):
    """A rectangular step: `amplitude` [µA/cm²] for `t_on <= t < t_off` [ms], else 0.

    **Arguments:** `amplitude` [µA/cm²], `t_on` [ms] (default 0), `t_off` [ms]
    (default `inf`: never off), `dtype`.

    **Raises:** `ValueError` if a value is not finite (`t_off` may be `inf`) or
    `t_off <= t_on`; `TypeError` for non-numeric values.

    **Example:**

    ```pycon
    >>> import hhjax
    >>> stim = hhjax.StepCurrent(amplitude=10.0, t_on=2.0, t_off=20.0)
    >>> float(stim(1.9)), float(stim(2.0)), float(stim(20.0))
    (0.0, 10.0, 0.0)
    >>> [float(t) for t in stim.jump_times]
    [2.0, 20.0]
    >>> hhjax.StepCurrent(10.0, t_on=5.0, t_off=5.0)
    Traceback (most recent call last):
    ValueError: `t_off` must be > `t_on` (in ms), got t_on=5.0, t_off=5.0.

    ```
    """

    amplitude: Array
    t_on: Array
    t_off: Array

    def __init__(
        self,
        amplitude: ArrayLike,
        t_on: ArrayLike = 0.0,
        t_off: ArrayLike = float("inf"),
        *,
        dtype=None,
    ):
        dt = float_dtype(amplitude, t_on, t_off, dtype=dtype)
        self.amplitude = _arr("amplitude", amplitude, dt, "µA/cm²")
        self.t_on = _arr("t_on", t_on, dt, "ms")
        if isinstance(t_off, (str, bytes)) or t_off is None:
            raise TypeError(f"`t_off` must be a number in ms, got {t_off!r}.")
        if is_concrete(t_off) and np.any(np.isnan(np.asarray(t_off))):
            raise ValueError(f"`t_off` must not be NaN (in ms), got {t_off!r}.")
        self.t_off = jnp.asarray(t_off, dtype=dt)
        if is_concrete(t_on) and is_concrete(t_off):
            if np.any(np.asarray(t_off) <= np.asarray(t_on)):
                raise ValueError(
                    f"`t_off` must be > `t_on` (in ms), got t_on={t_on!r}, "
                    f"t_off={t_off!r}."
                )

    def __call__(self, t):
        on = (t >= self.t_on) & (t < self.t_off)
        return jnp.where(on, self.amplitude, jnp.zeros_like(self.amplitude))

    @property
    def jump_times(self):
        return jnp.stack([self.t_on, self.t_off]).reshape(-1)


class PulseTrain(AbstractStimulus):
    """Rectangular pulses: pulse `k` injects `amplitude[k]` [µA/cm²] for
    `onsets[k] <= t < onsets[k] + width[k]` [ms]. `width` and `amplitude` are scalars
    or arrays of the same length as `onsets`; overlapping pulses add.

    Covers seed 001's two pulses (`onsets=[0, 10], width=1, amplitude=[150, 50]`) and
    BrainPy's `spike_input(sp_times, sp_lens, sp_sizes)`.

    Use [`hhjax.PulseTrain.regular`][] for evenly spaced pulses.

    **Shapes:** `onsets` 1-D `(k,)`; `width` and `amplitude` are stored broadcast to
    `(k,)`.

    **Raises:** `ValueError` for `onsets` that are not 1-D, `width <= 0`,
    mismatched shapes or non-finite values; `TypeError` for non-numeric values.

    **Example:**

    ```pycon
    >>> import hhjax
    >>> stim = hhjax.PulseTrain(onsets=[0.0, 10.0], width=1.0, amplitude=[150.0, 50.0])
    >>> float(stim(0.5)), float(stim(5.0)), float(stim(10.5))
    (150.0, 0.0, 50.0)
    >>> [float(t) for t in stim.jump_times]
    [0.0, 10.0, 1.0, 11.0]

    ```
    """

    onsets: Array
    width: Array
    amplitude: Array

    def __init__(
        self,
        onsets: ArrayLike,
        width: ArrayLike,
        amplitude: ArrayLike,
        *,
        dtype=None,
    ):
        dt = float_dtype(onsets, width, amplitude, dtype=dtype)
        onsets = _arr("onsets", onsets, dt, "ms")
        if onsets.ndim != 1:
            raise ValueError(
                f"`onsets` must be a 1-D array of times in ms, got shape "
                f"{onsets.shape}."
            )
        n = onsets.shape[0]
        width = _arr("width", width, dt, "ms", "> 0", _positive)
        amplitude = _arr("amplitude", amplitude, dt, "µA/cm²")
        for name, x in (("width", width), ("amplitude", amplitude)):
            if x.shape not in ((), (n,)):
                raise ValueError(
                    f"`{name}` must be a scalar or have the shape of `onsets` ({n},), "
                    f"got shape {x.shape}."
                )
        self.onsets = onsets
        self.width = jnp.broadcast_to(width, (n,))
        self.amplitude = jnp.broadcast_to(amplitude, (n,))

    @classmethod
    def regular(
        cls,
        start: float,
        period: float,
        count: int,
        width: ArrayLike,
        amplitude: ArrayLike,
        *,
        dtype=None,
    ) -> PulseTrain:
        """`count` pulses every `period` ms from `start` ms (each `width` ms of
        `amplitude` µA/cm²).

        **Raises:** `ValueError` for a `count` that is not a positive integer or
        `period <= 0`.

        ```pycon
        >>> import hhjax
        >>> stim = hhjax.PulseTrain.regular(start=5.0, period=10.0, count=3,
        ...                                 width=2.0, amplitude=20.0)
        >>> [float(t) for t in stim.onsets]
        [5.0, 15.0, 25.0]

        ```
        """
        if int(count) != count or count < 1:
            raise ValueError(f"`count` must be a positive integer, got {count!r}.")
        check_value("period", period, "ms", "> 0", _positive)
        check_value("start", start, "ms", "finite", _any)
        dt = float_dtype(start, period, width, amplitude, dtype=dtype)
        onsets = jnp.asarray(start, dt) + jnp.asarray(period, dt) * jnp.arange(
            int(count), dtype=dt
        )
        return cls(onsets, width, amplitude, dtype=dt)

    def __call__(self, t):
        on = (t >= self.onsets) & (t < self.onsets + self.width)
        return jnp.sum(jnp.where(on, self.amplitude, jnp.zeros_like(self.amplitude)))

    @property
    def jump_times(self):
        return jnp.concatenate([self.onsets, self.onsets + self.width])


class RampCurrent(AbstractStimulus):
    """A linear ramp from `amplitude_start` at `t_on` to `amplitude_end` at `t_off`
    [µA/cm², ms]; zero outside `[t_on, t_off)`.

    **Raises:** `ValueError` for non-finite values or `t_off <= t_on`.

    ```pycon
    >>> import hhjax
    >>> ramp = hhjax.RampCurrent(t_on=0.0, t_off=100.0, amplitude_start=0.0,
    ...                          amplitude_end=20.0)
    >>> float(ramp(50.0)), float(ramp(100.0))
    (10.0, 0.0)

    ```
    """

    t_on: Array
    t_off: Array
    amplitude_start: Array
    amplitude_end: Array

    def __init__(
        self,
        t_on: ArrayLike,
        t_off: ArrayLike,
        amplitude_start: ArrayLike,
        amplitude_end: ArrayLike,
        *,
        dtype=None,
    ):
        dt = float_dtype(t_on, t_off, amplitude_start, amplitude_end, dtype=dtype)
        self.t_on = _arr("t_on", t_on, dt, "ms")
        self.t_off = _arr("t_off", t_off, dt, "ms")
        if is_concrete(t_on) and is_concrete(t_off):
            if np.any(np.asarray(t_off) <= np.asarray(t_on)):
                raise ValueError(
                    f"`t_off` must be > `t_on` (in ms), got t_on={t_on!r}, "
                    f"t_off={t_off!r}."
                )
        self.amplitude_start = _arr("amplitude_start", amplitude_start, dt, "µA/cm²")
        self.amplitude_end = _arr("amplitude_end", amplitude_end, dt, "µA/cm²")

    def __call__(self, t):
        frac = (t - self.t_on) / (self.t_off - self.t_on)
        value = self.amplitude_start + frac * (self.amplitude_end - self.amplitude_start)
        on = (t >= self.t_on) & (t < self.t_off)
        return jnp.where(on, value, jnp.zeros_like(value))

    @property
    def jump_times(self):
        return jnp.stack([self.t_on, self.t_off]).reshape(-1)


class SineCurrent(AbstractStimulus):
    """`offset + amplitude * sin(2π f (t − t_on)/1000 + phase)` [µA/cm²] for
    `t_on <= t < t_off`, zero outside.

    **Arguments:** `amplitude` [µA/cm²], `frequency_hz` [Hz] (time is in ms, hence the
    explicit unit), `phase` [rad], `offset` [µA/cm²], `t_on`/`t_off` [ms].

    **Raises:** `ValueError` for non-finite values, `frequency_hz < 0` or
    `t_off <= t_on`.

    ```pycon
    >>> import hhjax
    >>> sine = hhjax.SineCurrent(amplitude=2.0, frequency_hz=100.0, offset=1.0)
    >>> round(float(sine(2.5)), 6)     # a quarter period of 10 ms: offset + amplitude
    3.0

    ```
    """

    amplitude: Array
    frequency_hz: Array
    phase: Array
    offset: Array
    t_on: Array
    t_off: Array

    def __init__(
        self,
        amplitude: ArrayLike,
        frequency_hz: ArrayLike,
        phase: ArrayLike = 0.0,
        offset: ArrayLike = 0.0,
        t_on: ArrayLike = 0.0,
        t_off: ArrayLike = float("inf"),
        *,
        dtype=None,
    ):
        dt = float_dtype(amplitude, frequency_hz, phase, offset, t_on, t_off, dtype=dtype)
        self.amplitude = _arr("amplitude", amplitude, dt, "µA/cm²")
        self.frequency_hz = _arr("frequency_hz", frequency_hz, dt, "Hz", ">= 0", _nonneg)
        self.phase = _arr("phase", phase, dt, "rad")
        self.offset = _arr("offset", offset, dt, "µA/cm²")
        self.t_on = _arr("t_on", t_on, dt, "ms")
        if is_concrete(t_off) and np.any(np.isnan(np.asarray(t_off))):
            raise ValueError(f"`t_off` must not be NaN (in ms), got {t_off!r}.")
        self.t_off = jnp.asarray(t_off, dtype=dt)
        if is_concrete(t_on) and is_concrete(t_off):
            if np.any(np.asarray(t_off) <= np.asarray(t_on)):
                raise ValueError(
                    f"`t_off` must be > `t_on` (in ms), got t_on={t_on!r}, "
                    f"t_off={t_off!r}."
                )

    def __call__(self, t):
        arg = 2 * jnp.pi * self.frequency_hz * 1e-3 * (t - self.t_on) + self.phase
        value = self.offset + self.amplitude * jnp.sin(arg)
        on = (t >= self.t_on) & (t < self.t_off)
        return jnp.where(on, value, jnp.zeros_like(value))

    @property
    def jump_times(self):
        return jnp.stack([self.t_on, self.t_off]).reshape(-1)


class SampledCurrent(AbstractStimulus):
    """A current given by samples, e.g. a recorded command waveform.

    **Arguments:**

    - `times`: strictly increasing sample times [ms], shape `(k,)`, `k >= 1`.
    - `values`: current density at those times [µA/cm²], shape `(k,)`.
    - `interpolation`: `"linear"` (default; continuous, no jumps) or `"previous"`
      (zero-order hold: `values[i]` on `[times[i], times[i+1])`, jumping at every
      sample time).

    Before `times[0]` and after `times[-1]` the end values are held.

    **Raises:** `ValueError` for an unknown `interpolation`, empty or non-1-D
    `times`, `values` of another shape, non-finite or non-increasing `times`.

    ```pycon
    >>> import hhjax
    >>> lin = hhjax.SampledCurrent([0.0, 10.0, 20.0], [0.0, 5.0, 5.0])
    >>> float(lin(5.0)), float(lin(50.0))
    (2.5, 5.0)
    >>> zoh = hhjax.SampledCurrent([0.0, 10.0, 20.0], [0.0, 5.0, 5.0], "previous")
    >>> float(zoh(5.0)), [float(t) for t in zoh.jump_times]
    (0.0, [10.0, 20.0])

    ```
    """

    times: Array
    values: Array
    interpolation: Literal["linear", "previous"] = eqx.field(static=True)

    def __init__(
        self,
        times: ArrayLike,
        values: ArrayLike,
        interpolation: Literal["linear", "previous"] = "linear",
        *,
        dtype=None,
    ):
        if interpolation not in ("linear", "previous"):
            raise ValueError(
                "`interpolation` must be 'linear' or 'previous' (zero-order hold), "
                f"got {interpolation!r}."
            )
        dt = float_dtype(times, values, dtype=dtype)
        times = _arr("times", times, dt, "ms")
        values = _arr("values", values, dt, "µA/cm²")
        if times.ndim != 1 or times.shape[0] < 1:
            raise ValueError(
                f"`times` must be a non-empty 1-D array in ms, got shape {times.shape}."
            )
        if values.shape != times.shape:
            raise ValueError(
                f"`values` must have the shape of `times` {times.shape}, "
                f"got {values.shape}."
            )
        if is_concrete(times) and np.any(np.diff(np.asarray(times)) <= 0):
            raise ValueError("`times` must be strictly increasing (ms).")
        self.times = times
        self.values = values
        self.interpolation = interpolation

    def __call__(self, t):
        t = jnp.asarray(t, self.times.dtype)
        if self.interpolation == "linear":
            return jnp.interp(t, self.times, self.values)
        idx = jnp.searchsorted(self.times, t, side="right") - 1
        idx = jnp.clip(idx, 0, self.times.shape[0] - 1)
        return self.values[idx]

    @property
    def jump_times(self):
        if self.interpolation == "linear":
            return _empty(self.times.dtype)
        return self.times[1:]


class SumCurrent(AbstractStimulus):
    """The sum of several stimuli (also made by `stim_a + stim_b`); nested sums are
    flattened, and `jump_times` is the concatenation of the terms' jump times.

    **Raises:** `TypeError` for a term that is not an hhjax stimulus; `ValueError`
    for an empty sequence.

    ```pycon
    >>> import hhjax
    >>> both = hhjax.SumCurrent([hhjax.ConstantCurrent(1.0),
    ...                          hhjax.StepCurrent(5.0, 1.0, 2.0)])
    >>> len(both.stimuli), float(both(1.5))
    (2, 6.0)

    ```
    """

    stimuli: tuple[AbstractStimulus, ...]

    def __init__(self, stimuli):
        stimuli = tuple(stimuli)
        flat = []
        for s in stimuli:
            if not isinstance(s, AbstractStimulus):
                raise TypeError(
                    "`stimuli` must all be hhjax stimuli (AbstractStimulus), got "
                    f"{type(s).__name__}."
                )
            flat.extend(s.stimuli if isinstance(s, SumCurrent) else (s,))
        if not flat:
            raise ValueError("`stimuli` must contain at least one stimulus.")
        self.stimuli = tuple(flat)

    def __call__(self, t):
        out = self.stimuli[0](t)
        for s in self.stimuli[1:]:
            out = out + s(t)
        return out

    @property
    def jump_times(self):
        return jnp.concatenate([jnp.reshape(s.jump_times, (-1,)) for s in self.stimuli])


class AbstractNoiseCurrent(AbstractStimulus):
    """Base of stochastic currents. Calling one gives its mean [µA/cm²]; the random
    part enters the solve as a diffrax `ControlTerm` driven by a
    `VirtualBrownianTree` seeded by the stimulus' `key` (so the same key gives the
    same realisation, whatever the solver's steps) — or, with fixed steps (the
    default for noise), by per-step increments drawn from the `key`.

    Noise currents work with [`hhjax.simulate`][] (default solver `diffrax.ShARK()`
    at fixed steps of `dt0`), not with [`hhjax.simulate_population`][].

    ```pycon
    >>> import jax, hhjax
    >>> noise = hhjax.WhiteNoiseCurrent(sigma=1.0, key=jax.random.key(0), mean=2.0)
    >>> isinstance(noise, hhjax.AbstractNoiseCurrent), float(noise(3.0))   # the mean
    (True, 2.0)

    ```
    """

    key: PRNGKeyArray

    @property
    @abc.abstractmethod
    def mean(self) -> Array:
        """Mean current [µA/cm²]."""

    def __call__(self, t):
        return self.mean * jnp.ones_like(jnp.asarray(t, self.mean.dtype))

    @property
    def jump_times(self):
        return _empty(self.mean.dtype)


def _check_key(key):
    if not isinstance(key, jax.Array) or not (
        jnp.issubdtype(key.dtype, jax.dtypes.prng_key) or key.dtype == jnp.uint32
    ):
        raise TypeError(
            "`key` must be a JAX PRNG key, e.g. jax.random.key(0), "
            f"got {type(key).__name__}."
        )
    return key


class WhiteNoiseCurrent(AbstractNoiseCurrent):
    r"""Gaussian white-noise current $i(t) = \mu + \sigma\,\xi(t)$.

    **Arguments:**

    - `sigma`: noise intensity [µA/cm²·ms^½]; over a time bin of width `Δt` [ms] the
      mean current has standard deviation `sigma / sqrt(Δt)`. (A per-step Gaussian of
      standard deviation `s` at step `dt`, as in seed 002, corresponds to
      `sigma = s * sqrt(dt)`.)
    - `key`: a JAX PRNG key (`jax.random.key(seed)`).
    - `mean`: mean current [µA/cm²] (default 0).

    **Raises:** `ValueError` for `sigma < 0` or non-finite values; `TypeError` for a
    `key` that is not a JAX PRNG key.

    **Example** (seed 002's per-step N(0, 3²) draws at dt = 0.1 ms):

    ```pycon
    >>> import jax, hhjax
    >>> noise = hhjax.WhiteNoiseCurrent(sigma=3.0 * 0.1**0.5, key=jax.random.key(0))
    >>> round(float(noise.sigma), 4)
    0.9487

    ```

    Then e.g. `hhjax.simulate(p, hhjax.StepCurrent(5.0, 10.0, 90.0) + noise,
    t_end=100.0, dt0=0.05)`.
    """

    sigma: Array
    mean_current: Array

    def __init__(self, sigma: ArrayLike, key: PRNGKeyArray, mean: ArrayLike = 0.0, *, dtype=None):
        dt = float_dtype(sigma, mean, dtype=dtype)
        self.sigma = _arr("sigma", sigma, dt, "µA/cm²·ms^½", ">= 0", _nonneg)
        self.mean_current = _arr("mean", mean, dt, "µA/cm²")
        self.key = _check_key(key)

    @property
    def mean(self):
        return self.mean_current


class OUNoiseCurrent(AbstractNoiseCurrent):
    r"""Ornstein–Uhlenbeck current: $i = \mu + x$ with
    $dx = -x/\tau\,dt + \sigma\sqrt{2/\tau}\,dW$ (stationary standard deviation
    $\sigma$), started from a draw of the stationary distribution.

    **Arguments:**

    - `mean`: mean current µ [µA/cm²].
    - `sigma`: stationary standard deviation [µA/cm²], ≥ 0.
    - `tau`: correlation time [ms], > 0.
    - `key`: a JAX PRNG key.

    **Raises:** `ValueError` for `sigma < 0`, `tau <= 0` or non-finite values;
    `TypeError` for a `key` that is not a JAX PRNG key.

    The deviation `x` is part of the solved state; a simulation returns it in
    `result.noise` and includes it in `result.i_stim`.

    ```pycon
    >>> import jax, hhjax
    >>> ou = hhjax.OUNoiseCurrent(mean=5.0, sigma=1.0, tau=3.0, key=jax.random.key(1))
    >>> float(ou(0.0)), ou.initial_deviation().shape
    (5.0, ())

    ```
    """

    mean_current: Array
    sigma: Array
    tau: Array

    def __init__(
        self,
        mean: ArrayLike,
        sigma: ArrayLike,
        tau: ArrayLike,
        key: PRNGKeyArray,
        *,
        dtype=None,
    ):
        dt = float_dtype(mean, sigma, tau, dtype=dtype)
        self.mean_current = _arr("mean", mean, dt, "µA/cm²")
        self.sigma = _arr("sigma", sigma, dt, "µA/cm²", ">= 0", _nonneg)
        self.tau = _arr("tau", tau, dt, "ms", "> 0", _positive)
        self.key = _check_key(key)

    @property
    def mean(self):
        return self.mean_current

    def initial_deviation(self) -> Array:
        """A draw of `x(0)` from the stationary distribution N(0, sigma²) [µA/cm²]."""
        k = jax.random.fold_in(self.key, 1)
        return self.sigma * jax.random.normal(k, (), dtype=self.sigma.dtype)


def noise_sources(stimulus: AbstractStimulus | None) -> tuple[AbstractNoiseCurrent, ...]:
    """The noise currents inside `stimulus` (itself, or the terms of a sum)."""
    if stimulus is None:
        return ()
    if isinstance(stimulus, SumCurrent):
        return tuple(s for s in stimulus.stimuli if isinstance(s, AbstractNoiseCurrent))
    if isinstance(stimulus, AbstractNoiseCurrent):
        return (stimulus,)
    return ()
