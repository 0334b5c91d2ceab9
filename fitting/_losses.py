"""Losses comparing simulated sweeps with recorded ones.

A loss is a small immutable description (window, weights, scales). `fit` *binds* it
to the data once ([`fitting.AbstractLoss.bind`][]): everything that depends only on
the recording (data spike times, features, masks) is computed there, and the bound
loss is a pure function of the simulated voltages `(S, T)` returning a residual
vector. The loss value is the sum of squared residuals, so the same object serves
gradient descent (its value) and Gauss–Newton / Levenberg–Marquardt (its
residuals). Losses add and scale: `TraceLoss() + 0.5 * SpikeTimeLoss()`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

import hhjax


class SweepData(eqx.Module):
    """The recorded sweeps a loss is bound to.

    - `t`: sample times [ms], `(T,)`.
    - `v`: recorded membrane potential [mV], `(S, T)`.
    - `i`: injected current samples, `(S, T)` (any unit: used to find when each
      sweep's stimulus is on).

    NumPy float arrays (not checked: [`fitting.fit`][] builds it from an
    [`hhjax.Recording`][]).

    **Example** (one sweep, a step from 10 to 40 ms):

    ```pycon
    >>> import numpy as np, fitting
    >>> t = np.arange(0.0, 50.0, 0.1)                                   # ms
    >>> on = (t >= 10.0) & (t < 40.0)
    >>> data = fitting.SweepData(t, np.where(on, -60.0, -65.0)[None],   # mV
    ...                          np.where(on, 5.0, 0.0)[None])          # µA/cm²
    >>> data.stim_windows()                                             # ms
    array([[10., 40.]])

    ```
    """

    t: np.ndarray
    v: np.ndarray
    i: np.ndarray

    def stim_windows(self) -> np.ndarray:
        """Per sweep `(t_on, t_off)` [ms]: first and last sample where the current
        differs from its holding value; the whole sweep when it never does."""
        out = np.empty((self.v.shape[0], 2))
        for s in range(self.v.shape[0]):
            i = np.asarray(self.i[s], float)
            tol = 1e-6 * max(float(np.max(np.abs(i))), 1e-12)
            on = np.nonzero(np.abs(i - i[0]) > tol)[0]
            if on.size == 0:
                out[s] = (self.t[0], self.t[-1])
            else:
                last = min(on[-1] + 1, self.t.size - 1)
                out[s] = (self.t[on[0]], self.t[last])
        return out


class AbstractBoundLoss(eqx.Module):
    """A loss bound to data: `residuals(v_model)` with `v_model` of shape `(S, T)`
    [mV] returns a 1-D residual vector (dimensionless: in units of each loss's
    scale). The loss value is `sum(residuals**2)`, a scalar. Both are pure JAX
    (`jit`, `vmap`, forward and reverse mode). Made by
    [`fitting.AbstractLoss.bind`][]; subclasses implement `residuals`.

    **Example** (a trace loss with `sigma = 0.5` mV: a 1 mV offset costs 4):

    ```pycon
    >>> import numpy as np, jax.numpy as jnp, fitting
    >>> t = np.arange(0.0, 50.0, 0.1)
    >>> v = np.full((1, t.size), -65.0)                  # (S, T) = (1, 500) [mV]
    >>> bound = fitting.TraceLoss(sigma=0.5).bind(fitting.SweepData(t, v, 0 * v))
    >>> isinstance(bound, fitting.AbstractBoundLoss), bound.residuals(v).shape
    (True, (500,))
    >>> float(bound.value(jnp.asarray(v))), round(float(bound.value(v + 1.0)), 6)
    (0.0, 4.0)

    ```
    """

    def residuals(self, v_model: Array) -> Array:
        raise NotImplementedError

    def value(self, v_model: Array) -> Array:
        r = self.residuals(v_model)
        return jnp.sum(r * r)


class AbstractLoss(eqx.Module):
    """Base of all losses: bind to data with `bind`, combine with `+` and `*`.

    A subclass implements `bind(data: SweepData) -> AbstractBoundLoss`, doing the
    NumPy work on the recording once (and raising `ValueError` there for data it
    cannot use). `loss + loss` and `weight * loss` (weights finite and ≥ 0) give a
    [`fitting.WeightedSum`][]; `+` with anything else raises `TypeError`.

    **Example:**

    ```pycon
    >>> import fitting
    >>> loss = fitting.TraceLoss() + 0.5 * fitting.SpikeTimeLoss()
    >>> isinstance(loss, fitting.AbstractLoss), type(loss).__name__, loss.weights
    (True, 'WeightedSum', (1.0, 0.5))

    ```
    """

    def bind(self, data: SweepData) -> AbstractBoundLoss:
        """Precompute what depends only on `data` ([`fitting.SweepData`][]); returns
        the [`fitting.AbstractBoundLoss`][] of `v_model` `(S, T)` [mV]."""
        raise NotImplementedError

    def __add__(self, other):
        if not isinstance(other, AbstractLoss):
            return NotImplemented
        return WeightedSum((self, other), (1.0, 1.0))

    def __mul__(self, weight):
        if isinstance(weight, AbstractLoss):
            return NotImplemented
        return WeightedSum((self,), (float(weight),))

    __rmul__ = __mul__


def _window_mask(t: np.ndarray, window) -> np.ndarray:
    if window is None:
        return np.ones_like(t, dtype=bool)
    lo, hi = window
    return (t >= lo) & (t <= hi)


def _to_window(window, name="window"):
    """`None` or a `(t_start, t_end)` pair of floats [ms] with t_start < t_end."""
    if window is None:
        return None
    try:
        lo, hi = (float(x) for x in window)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be (t_start, t_end) in ms or None, got {window!r}.") from None
    if not lo < hi:
        raise ValueError(f"`{name}` must have t_start < t_end (ms), got {window!r}.")
    return (lo, hi)


def _to_weights(w):
    if w is None:
        return None
    return tuple(float(x) for x in np.ravel(np.asarray(w, float)))


class _BoundTrace(AbstractBoundLoss):
    v: Array
    w: Array  # sqrt of the per-sample weight, normalised

    def residuals(self, v_model):
        return ((v_model - self.v) * self.w).ravel()


class _BoundSubthreshold(AbstractBoundLoss):
    """A bound trace loss whose residuals are also zero within `(before, after)`
    samples of the model's first `n_data[s]` upward threshold crossings in each
    sweep — the model spikes the spike-time loss matches with recorded ones (the
    mask is data-like: no gradient flows through it). Extra model spikes stay
    penalised here, so firing more cannot hide samples."""

    trace: _BoundTrace
    n_data: Array  # (S,) recorded spikes per sweep
    threshold: float = eqx.field(static=True)
    before: int = eqx.field(static=True)
    after: int = eqx.field(static=True)

    def residuals(self, v_model):
        v = jnp.asarray(v_model)
        vs = jax.lax.stop_gradient(v)
        up = (vs[..., 1:] >= self.threshold) & (vs[..., :-1] < self.threshold)
        up = jnp.concatenate([jnp.zeros_like(up[..., :1]), up], axis=-1)
        rank = jnp.cumsum(up.astype(jnp.int32), axis=-1)
        up = up & (rank <= self.n_data[..., None])
        # samples with a matched crossing in [k - after, k + before]
        cs = jnp.cumsum(up.astype(jnp.int32), axis=-1)
        T = vs.shape[-1]
        k = jnp.arange(T)
        hi = jnp.take(cs, jnp.minimum(k + self.before, T - 1), axis=-1)
        lo_idx = k - self.after - 1
        lo = jnp.where(lo_idx >= 0, jnp.take(cs, jnp.maximum(lo_idx, 0), axis=-1), 0)
        keep = (hi - lo) == 0
        r = self.trace.residuals(v)
        return r * keep.astype(r.dtype).ravel()


class TraceLoss(AbstractLoss):
    """Mean squared difference of the voltage traces, `mean(((v − v_data)/σ)²)`.

    **Arguments:**

    - `window`: `(t_start, t_end)` [ms]; only samples inside count (default all).
    - `sigma`: voltage scale [mV] (the noise level, if known; default 1 mV).
    - `sweep_weights`: relative weight of each sweep, `(S,)` (default equal).
    - `weights`: per-sample weights broadcastable to `(S, T)` (default 1).

    The value is normalised by the summed weights, so it reads as a mean squared
    error in units of `sigma²` (≈ 1 at the noise floor when `sigma` is the noise).

    **Raises:** `ValueError` for `sigma <= 0` or a bad `window` (at construction);
    at bind time for `sweep_weights` that are not `S` non-negative numbers,
    `weights` that do not broadcast to `(S, T)`, or no sample with positive weight.

    **Example** (a 1 mV offset everywhere, then only inside the first 10 ms):

    ```pycon
    >>> import numpy as np, fitting
    >>> t = np.arange(0.0, 50.0, 0.1)                                   # ms
    >>> v = np.full((1, t.size), -65.0)                                 # (S, T) [mV]
    >>> data = fitting.SweepData(t, v, np.zeros_like(v))
    >>> round(float(fitting.TraceLoss().bind(data).value(v + 1.0)), 6)
    1.0
    >>> off = v + np.where(t < 10.0, 1.0, 0.0)
    >>> round(float(fitting.TraceLoss(window=(0.0, 9.95)).bind(data).value(off)), 6)
    1.0
    >>> round(float(fitting.TraceLoss().bind(data).value(off)), 6)      # 100 of 500
    0.2

    ```
    """

    window: tuple[float, float] | None = eqx.field(
        static=True, default=None, converter=_to_window
    )
    sigma: float = eqx.field(static=True, default=1.0, converter=float)
    sweep_weights: tuple[float, ...] | None = eqx.field(
        static=True, default=None, converter=_to_weights
    )
    weights: np.ndarray | None = None

    def __check_init__(self):
        if not (self.sigma > 0 and math.isfinite(self.sigma)):
            raise ValueError(f"`sigma` must be > 0 (mV), got {self.sigma}.")

    def bind(self, data):
        S, T = data.v.shape
        w = np.broadcast_to(_window_mask(data.t, self.window)[None, :], (S, T)).astype(float)
        if self.sweep_weights is not None:
            sw = np.asarray(self.sweep_weights, float)
            if sw.shape != (S,) or np.any(sw < 0) or not np.all(np.isfinite(sw)):
                raise ValueError(
                    f"`sweep_weights` must be {S} non-negative numbers (one per sweep), "
                    f"got {self.sweep_weights!r}."
                )
            w = w * sw[:, None]
        if self.weights is not None:
            extra = np.asarray(self.weights, float)
            try:
                w = w * np.broadcast_to(extra, (S, T))
            except ValueError:
                raise ValueError(
                    f"`weights` must broadcast to (sweeps, samples) = {(S, T)}, got "
                    f"shape {extra.shape}."
                ) from None
        total = float(np.sum(w))
        if total <= 0:
            raise ValueError(
                f"TraceLoss has no samples with positive weight (window={self.window})."
            )
        return _BoundTrace(
            v=jnp.asarray(data.v), w=jnp.asarray(np.sqrt(w / total) / self.sigma)
        )


def _safe(x, fill=0.0):
    return jnp.where(jnp.isfinite(x), x, fill)


class _BoundSpikes(AbstractBoundLoss):
    t: Array
    data_times: Array  # (S, K) NaN padded
    t_end: Array  # (S,) end of the window
    t_start: Array
    threshold: float = eqx.field(static=True)
    time_scale: float = eqx.field(static=True)
    voltage_scale: float = eqx.field(static=True)
    max_spikes: int = eqx.field(static=True)
    norm: float = eqx.field(static=True)

    def residuals(self, v_model):
        def one(v, td, t_start, t_end):
            inside = (self.t >= t_start) & (self.t <= t_end)
            # samples outside the window are held below threshold: no crossings there
            v_w = jnp.where(inside, v, jnp.minimum(v, self.threshold - 1.0))
            tm = hhjax.crossing_times(self.t, v_w, self.threshold, max_spikes=self.max_spikes)
            has_m = jnp.isfinite(tm)
            has_d = jnp.isfinite(td)
            both = has_m & has_d
            tm0, td0 = _safe(tm), _safe(td)
            matched = jnp.where(both, (tm0 - td0) / self.time_scale, 0.0)
            # a data spike the model misses: push the model's voltage up where the
            # data spiked (differentiable), plus a unit penalty for the miss
            near = jnp.abs(self.t[None, :] - td0[:, None]) <= 2.0
            vmax = jnp.max(jnp.where(near, v[None, :], -jnp.inf), axis=1)
            vmax = jnp.where(jnp.any(near, axis=1), vmax, self.threshold)
            missing = jnp.where(
                has_d & ~has_m,
                1.0 + jax.nn.relu(self.threshold - vmax) / self.voltage_scale,
                0.0,
            )
            # an extra model spike: unit penalty plus a pull towards the window's end
            extra = jnp.where(
                has_m & ~has_d,
                1.0 + (t_end - tm0) / jnp.maximum(t_end - t_start, 1e-9),
                0.0,
            )
            return matched + missing + extra

        r = jax.vmap(one)(v_model, self.data_times, self.t_start, self.t_end)
        return r.ravel() / self.norm


class SpikeTimeLoss(AbstractLoss):
    """Spike-time loss: differences of interpolated spike times, matched in order.

    Spike times are the upward crossings of `threshold` (linearly interpolated, so
    they move smoothly with the parameters). The k-th model spike is compared with
    the k-th recorded spike, in units of `time_scale`. A recorded spike the model
    misses costs 1 plus how far the model's voltage stays below threshold near it
    (in units of `voltage_scale`) — which gives a gradient towards spiking — and an
    extra model spike costs 1 plus its distance to the window's end (a gradient that
    pushes it out). The value is normalised by the number of recorded spikes.

    A recorded crossing counts as a new spike only once the recorded voltage has
    fallen `hysteresis` mV below the threshold since the previous spike (noise on a
    slow repolarisation otherwise adds crossings that are not spikes, and every
    later spike is then matched with the wrong one): [`hhjax.recorded_spike_times`][].

    **Arguments:** `threshold` [mV] (default 0), `time_scale` [ms] (default 1),
    `voltage_scale` [mV] (default 10), `max_spikes` per sweep (default 30),
    `window` `(t_start, t_end)` [ms] (default the whole sweep), `hysteresis` [mV]
    (default 10; 0 counts every crossing).

    **Raises:** `ValueError` for `time_scale`/`voltage_scale` ≤ 0, `hysteresis` < 0,
    a `max_spikes` that is not a positive integer, or a bad `window`.

    **Example** (construction; binding finds the recorded spikes, `(S, max_spikes)`
    NaN-padded, with [`hhjax.recorded_spike_times`][]):

    ```pycon
    >>> import fitting
    >>> loss = fitting.SpikeTimeLoss(threshold=-20.0, time_scale=2.0, window=(10, 90))
    >>> loss.threshold, loss.time_scale, loss.window, loss.max_spikes
    (-20.0, 2.0, (10.0, 90.0), 30)

    ```

    ```python
    bound = loss.bind(fitting.SweepData(t, v_data, i_data))   # (S, T) arrays
    bound.value(v_model)        # 0 when every spike is matched at its recorded time
    ```
    """

    threshold: float = eqx.field(static=True, default=0.0)
    time_scale: float = eqx.field(static=True, default=1.0)
    voltage_scale: float = eqx.field(static=True, default=10.0)
    max_spikes: int = eqx.field(static=True, default=30)
    window: tuple[float, float] | None = eqx.field(
        static=True, default=None, converter=_to_window
    )
    hysteresis: float = eqx.field(static=True, default=10.0, converter=float)

    def __check_init__(self):
        if not (self.hysteresis >= 0 and math.isfinite(self.hysteresis)):
            raise ValueError(f"`hysteresis` must be >= 0 (mV), got {self.hysteresis}.")
        if not self.time_scale > 0 or not self.voltage_scale > 0:
            raise ValueError("`time_scale` (ms) and `voltage_scale` (mV) must be > 0.")
        if int(self.max_spikes) != self.max_spikes or self.max_spikes < 1:
            raise ValueError(f"`max_spikes` must be a positive integer, got {self.max_spikes}.")

    def bind(self, data):
        S = data.v.shape[0]
        lo, hi = self.window if self.window is not None else (data.t[0], data.t[-1])
        inside = _window_mask(data.t, (lo, hi))
        times = []
        total = 0
        for s in range(S):
            v = np.where(inside, data.v[s], np.minimum(data.v[s], self.threshold - 1.0))
            found = hhjax.recorded_spike_times(
                data.t, v, self.threshold, hysteresis=self.hysteresis
            )[: self.max_spikes]
            tm = np.full(self.max_spikes, np.nan)
            tm[: found.size] = found
            times.append(tm)
            total += int(np.sum(np.isfinite(tm)))
        return _BoundSpikes(
            t=jnp.asarray(data.t),
            data_times=jnp.asarray(np.stack(times).astype(np.asarray(data.t).dtype)),
            t_end=jnp.full((S,), float(hi)),
            t_start=jnp.full((S,), float(lo)),
            threshold=float(self.threshold),
            time_scale=float(self.time_scale),
            voltage_scale=float(self.voltage_scale),
            max_spikes=int(self.max_spikes),
            norm=math.sqrt(max(total, 1)),
        )


class SubthresholdLoss(AbstractLoss):
    """Trace loss on the sub-threshold samples only: the mean squared difference
    `mean(((v − v_data)/σ)²)` over the samples that are not within
    `exclude_ms = (before, after)` [ms] of a recorded spike (an upward crossing of
    `threshold` [mV], with the `hysteresis` of [`fitting.SpikeTimeLoss`][]).

    The passive stage of a real-cell fit (leak, resting potential, membrane area)
    and the companion of a spike-time loss on recordings whose action potentials
    are too fast or too under-sampled (e.g. 4 kHz) for a trace loss — the same
    samples [`hhjax.subthreshold_rmse`][] judges.

    **Arguments:** `threshold` [mV] (default −20), `exclude_ms` (default
    `(2, 10)`), `window` `(t_start, t_end)` [ms] (default the whole sweep),
    `sigma` [mV] (default 1), `hysteresis` [mV] (default 10), `sweep_weights`,
    `model_spikes`: also leave out the samples within `exclude_ms` of the *model's*
    first `n` spikes of each sweep, `n` the sweep's recorded spike count (default
    False). Those are the spikes a spike-time loss matches with recorded ones: a
    model spike a few ms off its recorded time is then that loss's business, not a
    100 mV residual here — without it a fit combining both losses could lower the
    sum by dropping a spike. Extra model spikes still count here (so firing more
    cannot hide samples). The value keeps the normalisation of the recorded-spike
    mask.

    **Raises:** `ValueError` for a bad `exclude_ms`, `window` or `sigma <= 0`, and
    `TypeError` for a `model_spikes` that is not a bool (at construction); at bind
    time if no sample is left.

    **Example** (a 1-ms spike whose upstroke crosses −20 mV at 19.953 ms, linearly
    interpolated: the samples from 2 ms before to 5 ms after it are left out):

    ```pycon
    >>> import numpy as np, fitting
    >>> t = np.arange(0.0, 50.0, 0.1)                                   # ms
    >>> v = np.where((t >= 20.0) & (t < 21.0), 20.0, -65.0)[None]       # (1, 500)
    >>> keep = fitting.SubthresholdLoss(exclude_ms=(2.0, 5.0)).mask(
    ...     fitting.SweepData(t, v, np.zeros_like(v)))
    >>> keep.shape, int(keep.sum())
    ((1, 500), 430)
    >>> round(float(t[~keep[0]].min()), 3), round(float(t[~keep[0]].max()), 3)  # ms
    (18.0, 24.9)

    ```
    """

    threshold: float = eqx.field(static=True, default=-20.0, converter=float)
    exclude_ms: tuple[float, float] = eqx.field(static=True, default=(2.0, 10.0))
    window: tuple[float, float] | None = eqx.field(
        static=True, default=None, converter=_to_window
    )
    sigma: float = eqx.field(static=True, default=1.0, converter=float)
    hysteresis: float = eqx.field(static=True, default=10.0, converter=float)
    sweep_weights: tuple[float, ...] | None = eqx.field(
        static=True, default=None, converter=_to_weights
    )
    model_spikes: bool = eqx.field(static=True, default=False)

    def __check_init__(self):
        if not isinstance(self.model_spikes, (bool, np.bool_)):
            raise TypeError(f"`model_spikes` must be True or False, got {self.model_spikes!r}.")
        try:
            before, after = (float(x) for x in self.exclude_ms)
        except (TypeError, ValueError):
            raise ValueError(
                f"`exclude_ms` must be (before, after) in ms, got {self.exclude_ms!r}."
            ) from None
        if not (before >= 0 and after >= 0):
            raise ValueError(f"`exclude_ms` must be >= 0 (ms), got {self.exclude_ms!r}.")
        if not (self.sigma > 0 and math.isfinite(self.sigma)):
            raise ValueError(f"`sigma` must be > 0 (mV), got {self.sigma}.")

    def _spike_times(self, data: SweepData) -> list[np.ndarray]:
        """Per sweep, the recorded spike times [ms] (distinct upward crossings)."""
        t = np.asarray(data.t, float)
        out = []
        for v in np.asarray(data.v, float):
            out.append(
                hhjax.recorded_spike_times(t, v, self.threshold, hysteresis=self.hysteresis)
            )
        return out

    def mask(self, data: SweepData) -> np.ndarray:
        """`(S, T)` bool: the samples this loss uses."""
        return self._mask(data, self._spike_times(data))

    def _mask(self, data: SweepData, spike_times: list[np.ndarray]) -> np.ndarray:
        t = np.asarray(data.t, float)
        before, after = (float(x) for x in self.exclude_ms)
        keep = np.broadcast_to(_window_mask(t, self.window), data.v.shape).copy()
        for s, times in enumerate(spike_times):
            for tc in times:
                keep[s] &= ~((t >= tc - before) & (t <= tc + after))
            keep[s] &= np.asarray(data.v[s], float) < self.threshold
        return keep

    def bind(self, data):
        spike_times = self._spike_times(data)
        keep = self._mask(data, spike_times)
        if not keep.any():
            raise ValueError(
                "SubthresholdLoss has no samples left (every sample is within "
                f"{self.exclude_ms} ms of a spike or outside the window {self.window})."
            )
        bound = TraceLoss(
            sigma=self.sigma, sweep_weights=self.sweep_weights, weights=keep.astype(float)
        ).bind(data)
        if not self.model_spikes:
            return bound
        t = np.asarray(data.t, float)
        dt = float(np.median(np.diff(t))) if t.size > 1 else 1.0
        before, after = (float(x) for x in self.exclude_ms)
        n_data = [times.size for times in spike_times]
        return _BoundSubthreshold(
            trace=bound, n_data=jnp.asarray(n_data, jnp.int32), threshold=self.threshold,
            before=int(math.ceil(before / dt)), after=int(math.ceil(after / dt)),
        )


class _BoundSum(AbstractBoundLoss):
    terms: tuple[AbstractBoundLoss, ...]
    scales: tuple[float, ...] = eqx.field(static=True)

    def residuals(self, v_model):
        return jnp.concatenate(
            [s * t.residuals(v_model) for t, s in zip(self.terms, self.scales)]
        )


class WeightedSum(AbstractLoss):
    """`Σ weight_k · loss_k` (also made by `a + b` and `w * loss`).

    **Arguments:** `losses` (fitting losses; nested sums are flattened) and
    `weights` (one each, finite, ≥ 0; the bound residuals are scaled by
    `sqrt(weight)`).

    **Raises:** `ValueError` for a negative or non-finite weight or
    `losses`/`weights` of different lengths; `TypeError` for a non-loss.

    **Example:**

    ```pycon
    >>> import fitting
    >>> loss = fitting.TraceLoss() + 0.5 * fitting.SpikeTimeLoss()
    >>> [type(x).__name__ for x in loss.losses], loss.weights
    (['TraceLoss', 'SpikeTimeLoss'], (1.0, 0.5))
    >>> (2 * loss).weights                                   # flattened
    (2.0, 1.0)

    ```
    """

    losses: tuple[AbstractLoss, ...]
    weights: tuple[float, ...] = eqx.field(static=True)

    def __init__(self, losses: Sequence[AbstractLoss], weights: Sequence[float]):
        flat_l, flat_w = [], []
        for loss, w in zip(losses, weights, strict=True):
            w = float(w)
            if not (w >= 0 and math.isfinite(w)):
                raise ValueError(f"Loss weights must be finite and >= 0, got {w}.")
            if isinstance(loss, WeightedSum):
                flat_l.extend(loss.losses)
                flat_w.extend(w * x for x in loss.weights)
            elif isinstance(loss, AbstractLoss):
                flat_l.append(loss)
                flat_w.append(w)
            else:
                raise TypeError(f"Expected a fitting loss, got {type(loss).__name__}.")
        self.losses = tuple(flat_l)
        self.weights = tuple(flat_w)

    def bind(self, data):
        return _BoundSum(
            tuple(loss.bind(data) for loss in self.losses),
            tuple(math.sqrt(w) for w in self.weights),
        )


#: Default scale of each feature (its unit): residual = (model − data) / scale.
FEATURE_SCALES = {
    "resting_potential": 1.0,  # mV
    "spike_count": 1.0,  # spikes
    "first_spike_latency": 1.0,  # ms
    "mean_isi": 1.0,  # ms
    "cv_isi": 0.1,
    "ap_peak": 2.0,  # mV
    "ap_width": 0.1,  # ms
    "ahp_depth": 2.0,  # mV
    "steady_state_potential": 1.0,  # mV
    "mean_firing_rate": 2.0,  # Hz
}

DEFAULT_FEATURES = (
    "resting_potential",
    "steady_state_potential",
    "spike_count",
    "first_spike_latency",
    "mean_isi",
    "ap_peak",
    "ap_width",
    "ahp_depth",
)


class _BoundFeatures(AbstractBoundLoss):
    t: Array
    data_features: Array  # (S, k), NaN where undefined in the data
    windows: Array  # (S, 2)
    scales: Array  # (k,)
    names: tuple[str, ...] = eqx.field(static=True)
    threshold: float = eqx.field(static=True)
    undefined_penalty: float = eqx.field(static=True)
    norm: float = eqx.field(static=True)

    def residuals(self, v_model):
        def one(v, w):
            f = hhjax.trace_features(
                self.t, v, threshold=self.threshold, stim_window=(w[0], w[1])
            )
            return f.as_array(self.names)

        fm = jax.vmap(one)(v_model, self.windows)
        defined_d = jnp.isfinite(self.data_features)
        defined_m = jnp.isfinite(fm)
        diff = (_safe(fm) - _safe(self.data_features)) / self.scales
        r = jnp.where(
            defined_d & defined_m,
            diff,
            jnp.where(defined_d != defined_m, self.undefined_penalty, 0.0),
        )
        return r.ravel() / self.norm


class FeatureLoss(AbstractLoss):
    """Summary-feature loss: differences of electrophysiological features per sweep.

    Features come from [`hhjax.trace_features`][] on the model and the data (the
    data's once, at bind time): resting potential, steady-state potential, spike
    count, first-spike latency, mean ISI, AP peak, AP width, AHP trough (default), or
    any of `hhjax.feature_names()`. Each residual is `(model − data) / scale`; a
    feature defined in only one of the two (e.g. the model does not spike) costs
    `undefined_penalty`. Spike count has no gradient (it is an integer); combine it
    with [`fitting.SpikeTimeLoss`][] or a trace loss to move parameters across a
    spike-count change.

    **Arguments:**

    - `features`: feature names (default `DEFAULT_FEATURES`).
    - `scales`: name → scale in the feature's unit (default `FEATURE_SCALES`:
      1 mV for potentials, 2 mV for peak/AHP, 1 ms for times, 0.1 ms for width,
      1 spike).
    - `threshold`: spike threshold [mV] (default 0).
    - `stim_window`: `(t_on, t_off)` [ms] for all sweeps; default: per sweep, from
      where the recorded current differs from its holding value.
    - `undefined_penalty`: default 3.

    **Raises:** `ValueError` for an unknown feature name, a `scales` entry that is
    not in `features` or not > 0, or a bad `stim_window`.

    **Example** (construction; binding computes the recorded sweeps' features once):

    ```pycon
    >>> import fitting
    >>> loss = fitting.FeatureLoss(("spike_count", "mean_isi"),
    ...                            scales={"mean_isi": 2.0})             # ms
    >>> loss.features, dict(loss.scales), loss.undefined_penalty
    (('spike_count', 'mean_isi'), {'mean_isi': 2.0}, 3.0)

    ```
    """

    features: tuple[str, ...] = eqx.field(static=True, default=DEFAULT_FEATURES)
    scales: tuple[tuple[str, float], ...] = eqx.field(static=True, default=())
    threshold: float = eqx.field(static=True, default=0.0)
    stim_window: tuple[float, float] | None = eqx.field(static=True, default=None)
    undefined_penalty: float = eqx.field(static=True, default=3.0)

    def __init__(
        self,
        features: Sequence[str] = DEFAULT_FEATURES,
        scales: dict[str, float] | None = None,
        threshold: float = 0.0,
        stim_window: tuple[float, float] | None = None,
        undefined_penalty: float = 3.0,
    ):
        features = tuple(features)
        known = hhjax.feature_names()
        bad = [f for f in features if f not in known]
        if bad or not features:
            raise ValueError(
                f"Unknown feature(s) {bad} for FeatureLoss; choose from {known}."
            )
        scales = dict(scales or {})
        for k, v in scales.items():
            if k not in features:
                raise ValueError(f"`scales` names {k!r}, which is not in `features`.")
            if not (float(v) > 0 and math.isfinite(float(v))):
                raise ValueError(f"`scales[{k!r}]` must be > 0, got {v}.")
        self.features = features
        self.scales = tuple((k, float(v)) for k, v in scales.items())
        self.threshold = float(threshold)
        self.stim_window = _to_window(stim_window, "stim_window")
        self.undefined_penalty = float(undefined_penalty)

    def bind(self, data):
        S = data.v.shape[0]
        if self.stim_window is not None:
            windows = np.tile(np.asarray(self.stim_window, float), (S, 1))
        else:
            windows = data.stim_windows()
        t = jnp.asarray(data.t)
        scale_map = {**FEATURE_SCALES, **dict(self.scales)}
        feats = []
        for s in range(S):
            f = hhjax.trace_features(
                t, jnp.asarray(data.v[s]), threshold=self.threshold,
                stim_window=(float(windows[s, 0]), float(windows[s, 1])),
            )
            feats.append(np.asarray(f.as_array(self.features)))
        return _BoundFeatures(
            t=t,
            data_features=jnp.asarray(np.stack(feats)),
            windows=jnp.asarray(windows),
            scales=jnp.asarray([scale_map[f] for f in self.features]),
            names=self.features,
            threshold=self.threshold,
            undefined_penalty=self.undefined_penalty,
            norm=math.sqrt(S * len(self.features)),
        )
