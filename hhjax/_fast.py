r"""A fused fixed-step loop for large populations: `simulate_population`.

[`hhjax.simulate`][] is general (any diffrax solver, adaptive steps, noise, events);
for N identical-structure neurons on a fixed step it pays for that generality with
per-step bookkeeping. `simulate_population` integrates the whole population in one
`lax.scan` of the closed-form exponential-Euler (Rush–Larsen) update:

$$x_{k+1} = x_\infty + (x_k - x_\infty)\,e^{-\Delta t/\tau_x}, \qquad
  v_{k+1} = v_\infty + (v_k - v_\infty)\,e^{-\Delta t\,g_\mathrm{tot}/c_m},$$

with every rate, $x_\infty$, $\tau_x$, $g_\mathrm{tot} = \sum_c g_c\prod x^p$ and
$v_\infty = (i_\mathrm{stim} + \sum_c g_c \prod x^p E_c)/g_\mathrm{tot}$ taken at the
start of the step — the scheme of `simulate(..., solver=hhjax.ExponentialEuler())`
on the same grid, computed without autodiff of the vector field (for the classic
kinetics with the rate exponentials shared, `_classic_rates_shared`: the same
numbers to ~1e-13 relative). The stimulus is evaluated inside the loop, only every
`save_every` is stored, and (for gradients) each saved block is rematerialised
(`jax.checkpoint`), so reverse-mode memory grows with the number of *saved* samples,
not of steps. On a CPU, outside JAX transformations, large populations are split
over the available cores (`threads`).

`scheme="staggered"` swaps the update for a second-order staggered one (gates at
half steps, trapezoidal updates) at the same cost per step — the fast path to an
accurate single trace.

Performance notes (2-core x86 CPU, classic HH, dt = 0.01, f64): XLA:CPU splits a
step into ~15 kernels (fusion stops at exponentials and divisions with several
users), and per neuron-step it costs ~2x the cycles of gcc -O3 -ffast-math with
libmvec (bench/hh_kernel.c) — mostly the transcendentals and divisions; sharing
the rate exponentials and single-use divisions gained ~1.3x, threads ~1.8x.
"""

from __future__ import annotations

import math
import os
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

from ._channels import AbstractRateGate, Membrane, MembraneState, check_model
from ._compile import eager_wide_jit, wide_compiler_options
from ._model import HHState, resting_state
from ._params import RATE_V_LIMIT, HHParams, is_concrete
from ._rates import ClassicKinetics
from ._stimulus import (
    AbstractNoiseCurrent,
    AbstractStimulus,
    SampledCurrent,
    noise_sources,
)


class PopulationResult(eqx.Module):
    """What [`hhjax.simulate_population`][] returns.

    **Fields:**

    - `t`: sample times [ms], shape `(T,)`.
    - `state`: the saved states ([`hhjax.HHState`][] or [`hhjax.MembraneState`][])
      with fields of shape `batch + (T,)` (`batch` = the parameters' batch shape);
      with `save="v"` only `v` (gate fields `None`, or no gates).
    - `final`: the state at `t_end` (fields of shape `batch`), e.g. to continue.
    - `ok`: boolean array of shape `batch`: every saved value and the final state
      finite.

    **Properties:** `v` [mV], shape `batch + (T,)`.

    Every array has the dtype of the parameters (`ok`: bool). A neuron whose saved
    values became non-finite gets `ok` False (no exception is raised for it).

    **Example** (three neurons, 20 ms):

    ```pycon
    >>> import jax, jax.numpy as jnp, hhjax
    >>> p = hhjax.HHParams(g_na=jnp.array([60.0, 120.0, 180.0]))     # mS/cm²
    >>> res = hhjax.simulate_population(p, hhjax.StepCurrent(10.0, 2.0, 20.0), 20.0,
    ...                                 save_every=0.1)
    >>> res.t.shape, res.v.shape, res.final.v.shape, bool(res.ok.all())
    ((201,), (3, 201), (3,), True)
    >>> [int(n) for n in jax.vmap(hhjax.spike_count)(res.v)]
    [1, 2, 2]

    ```
    """

    t: Array
    state: Any
    final: Any
    ok: Array

    @property
    def v(self) -> Array:
        """Membrane potential [mV], shape `batch + (T,)`."""
        return self.state.v


def _batch_shape(model) -> tuple[int, ...]:
    shapes = [jnp.shape(x) for x in jax.tree_util.tree_leaves(model) if eqx.is_array(x)]
    try:
        return tuple(jnp.broadcast_shapes(*shapes)) if shapes else ()
    except ValueError:
        raise ValueError(
            "the model's arrays must broadcast to one batch shape, got shapes "
            f"{sorted(set(shapes))}."
        ) from None


def _exprel_inv_from_exp(x, e, eps):
    """x / (1 − e) with e = exp(−x) given; the series 1 + x/2 + x²/12 − x⁴/720 +
    x⁶/30240 for |x| < eps (double where: finite value and gradient at x = 0)."""
    small = jnp.abs(x) < eps
    safe_x = jnp.where(small, jnp.ones_like(x), x)
    safe_e = jnp.where(small, jnp.zeros_like(e), e)
    x2 = x * x
    series = 1 + x / 2 + x2 * (1.0 / 12 + x2 * (-1.0 / 720 + x2 * (1.0 / 30240)))
    return jnp.where(small, series, safe_x / (1 - safe_e))


def _classic_rates_shared(p: HHParams, v) -> dict:
    """`p.rates(v)` for `ClassicKinetics` (φ-scaled, v − v_shift clamped to
    ±RATE_V_LIMIT) with the exponentials shared. Every classic rate is built from
    exp(−(u + c)/k), k ∈ {10, 18, 20, 80}: in float64 all six come from
    q = exp(−(u + 65)/720) by products (q⁹, q³⁶, q⁴⁰, q⁷² = e^{−(u+65)/10}), one
    transcendental instead of six, within 5e-14 relative of the exact rates (the
    α's within 1e-13 next to their removable points, series below |x| < 0.1);
    float32 shares q = exp(−(u + 65)/80) for β_n, α_h (q⁴), β_h (q⁸) and keeps its
    own exponentials for α_m, α_n, β_m (float32 rounding, as `p.rates`). About 1.3x
    fewer cycles per neuron-step on CPU than `p.rates`."""
    u = jnp.clip(jnp.asarray(v) - p.v_shift, -RATE_V_LIMIT, RATE_V_LIMIT)
    w = u + 65.0
    xm = (u + 40.0) * 0.1
    xn = (u + 55.0) * 0.1
    if jnp.result_type(u) == jnp.float64:
        q = jnp.exp(w * (-1.0 / 720.0))
        q2 = q * q
        q4 = q2 * q2
        q9 = q4 * q4 * q
        q18 = q9 * q9
        q36 = q18 * q18
        q72 = q36 * q36
        bm = 4.0 * (q36 * q4)
        ah = 0.07 * q36
        bn = 0.125 * q9
        bh = 1.0 / (1.0 + math.exp(3.0) * q72)
        em = math.exp(2.5) * q72  # exp(−xm)
        en = math.exp(1.0) * q72  # exp(−xn)
    else:
        q = jnp.exp(w * (-1.0 / 80.0))
        q4 = (q * q) * (q * q)
        bm = 4.0 * jnp.exp(w * (-1.0 / 18.0))
        ah = 0.07 * q4
        bn = 0.125 * q
        bh = 1.0 / (1.0 + math.exp(3.0) * (q4 * q4))
        em = jnp.exp(-xm)
        en = jnp.exp(-xn)
    phi = p.phi
    return dict(
        alpha_m=phi * _exprel_inv_from_exp(xm, em, 0.1),
        beta_m=phi * bm,
        alpha_h=phi * ah,
        beta_h=phi * bh,
        alpha_n=phi * (0.1 * _exprel_inv_from_exp(xn, en, 0.1)),
        beta_n=phi * bn,
    )


def _hh_rates(p: HHParams, v) -> dict:
    if type(p.kinetics) is ClassicKinetics:
        return _classic_rates_shared(p, v)
    return p.rates(v)


def _hh_step(p: HHParams, y: HHState, i_stim, dt) -> HHState:
    # x_{k+1} = x_inf + (x_k − x_inf)·E written as x_k·E + α(1 − E)/(α + β): every
    # division has a single use, which lets XLA:CPU fuse more of the step
    r = _hh_rates(p, y.v)
    out = {}
    for x in "mhn":
        a, b = r[f"alpha_{x}"], r[f"beta_{x}"]
        s = a + b
        e = jnp.exp(-dt * s)
        out[x] = getattr(y, x) * e + a * (1 - e) / s
    g_na = p.g_na * y.m**3 * y.h
    g_k = p.g_k * y.n**4
    g_tot = g_na + g_k + p.g_leak
    e = jnp.exp(-dt * g_tot / p.c_m)
    v = y.v * e + (i_stim + g_na * p.e_na + g_k * p.e_k + p.g_leak * p.e_leak) * (1 - e) / g_tot
    return HHState(v=v, m=out["m"], h=out["h"], n=out["n"])


def _membrane_step(m: Membrane, y: MembraneState, i_stim, dt) -> MembraneState:
    values = m.gate_values(y.v, y.gates)
    gates = {}
    for k, x in y.gates.items():
        gate = m.gates[k]
        if isinstance(gate, AbstractRateGate):
            a, b = gate.rates(y.v)
            s = a + b
            x_inf, decay = a / s, jnp.exp(-dt * s)
        else:
            x_inf, decay = gate.inf(y.v), jnp.exp(-dt / gate.tau(y.v))
        gates[k] = x_inf + (x - x_inf) * decay
    g_tot = 0.0
    g_e = 0.0
    for ch in m.channels.values():
        g = ch.conductance(values)
        g_tot = g_tot + g
        g_e = g_e + g * ch.e
    v_inf = (i_stim + g_e) / g_tot
    v = v_inf + (y.v - v_inf) * jnp.exp(-dt * g_tot / m.c_m)
    return MembraneState(v=v, gates=gates)


# ---- staggered second-order scheme ------------------------------------------------
# State carried through the loop: v at t_k, kinetic gates at t_k + dt/2. Each gate is
# advanced over [t_k - dt/2, t_k + dt/2] with v frozen at its midpoint value v_k, and v
# over [t_k, t_{k+1}] with the gates frozen at their midpoint values; both linear
# updates use the trapezoidal (Crank–Nicolson) rule, so the step is symmetric and
# second order (NEURON's `secondorder=2` staggering, with trapezoidal gates). The
# saved state at t_{k+1} takes the gates half a step from t_k + dt/2 with the rates
# already evaluated at v_{k+1} (no extra rate evaluations).


def _cn(x, a, s, h):
    """Trapezoidal step of dx/dt = a − s·x over `h` with a, s frozen."""
    return x + h * (a - s * x) / (1 + 0.5 * h * s)


def _hh_gate_rates(p: HHParams, v) -> dict:
    r = _hh_rates(p, v)
    return {x: (r[f"alpha_{x}"], r[f"alpha_{x}"] + r[f"beta_{x}"]) for x in "mhn"}


def _hh_step_staggered(p: HHParams, y: HHState, i_stim, dt):
    """(state at t_{k+1} with gates at t_{k+1} + dt/2, synchronised state at t_{k+1})."""
    g_na = p.g_na * y.m**3 * y.h
    g_k = p.g_k * y.n**4
    g_tot = g_na + g_k + p.g_leak
    i_ion = g_na * (y.v - p.e_na) + g_k * (y.v - p.e_k) + p.g_leak * (y.v - p.e_leak)
    v = y.v + dt * (i_stim - i_ion) / (p.c_m + 0.5 * dt * g_tot)
    r = _hh_gate_rates(p, v)
    new = HHState(v=v, **{x: _cn(getattr(y, x), *r[x], dt) for x in "mhn"})
    sync = HHState(v=v, **{x: _cn(getattr(y, x), *r[x], 0.5 * dt) for x in "mhn"})
    return new, sync


def _membrane_gate_rates(m: Membrane, v, names) -> dict:
    out = {}
    for k in names:
        gate = m.gates[k]
        if isinstance(gate, AbstractRateGate):
            a, b = gate.rates(v)
            out[k] = (a, a + b)
        else:
            s = 1.0 / gate.tau(v)
            out[k] = (gate.inf(v) * s, s)
    return out


def _membrane_step_staggered(m: Membrane, y: MembraneState, i_stim, dt):
    # instantaneous / dependent gates are evaluated at v_k (first order in them)
    values = m.gate_values(y.v, y.gates)
    g_tot = 0.0
    i_ion = 0.0
    for ch in m.channels.values():
        g = ch.conductance(values)
        g_tot = g_tot + g
        i_ion = i_ion + g * (y.v - ch.e)
    v = y.v + dt * (i_stim - i_ion) / (m.c_m + 0.5 * dt * g_tot)
    r = _membrane_gate_rates(m, v, y.gates)
    new = MembraneState(v=v, gates={k: _cn(x, *r[k], dt) for k, x in y.gates.items()})
    sync = MembraneState(v=v, gates={k: _cn(x, *r[k], 0.5 * dt) for k, x in y.gates.items()})
    return new, sync


def _half_step_gates(model, y, dt):
    """Gates from t0 to t0 + dt/2 with v frozen at v(t0): the staggered start."""
    if isinstance(model, HHParams):
        r = _hh_gate_rates(model, y.v)
        return HHState(v=y.v, **{x: _cn(getattr(y, x), *r[x], 0.5 * dt) for x in "mhn"})
    r = _membrane_gate_rates(model, y.v, y.gates)
    return MembraneState(v=y.v, gates={k: _cn(x, *r[k], 0.5 * dt) for k, x in y.gates.items()})


SCHEMES = ("exponential_euler", "staggered")
SAVE_CHOICES = ("state", "v")


def _finite(tree, over_time: bool = True) -> Array:
    """Per neuron: every value of `tree` finite — its fields of shape `batch + (T,)`
    (saved samples; `over_time`) or of shape `batch` (a state)."""
    ok = None
    for leaf in jax.tree_util.tree_leaves(tree):
        f = jnp.isfinite(leaf)
        if over_time:
            f = jnp.all(f, axis=-1)
        ok = f if ok is None else ok & f
    return ok


@eqx.filter_jit
def _stimulus_batch(stimulus, batch):
    """The population's batch shape with a batched stimulus: the model's `batch`, or
    (for a model of scalars) the stimulus arrays' leading axis."""
    shapes = [jnp.shape(x) for x in jax.tree_util.tree_leaves(stimulus) if eqx.is_array(x)]
    if not shapes:
        raise ValueError("`stimulus_batched=True` but the stimulus holds no arrays to batch.")
    if not batch:
        lead = {sh[:1] for sh in shapes}
        if len(lead) != 1 or lead == {()}:
            raise ValueError(
                "`stimulus_batched=True` needs every array of the stimulus to have the "
                "same leading (neuron) axis, as built by jax.vmap; got shapes "
                f"{sorted(set(shapes))}."
            )
        return lead.pop()
    bad = [sh for sh in shapes if sh[: len(batch)] != batch]
    if bad:
        raise ValueError(
            f"`stimulus_batched=True`: the stimulus arrays must start with the model's "
            f"batch shape {batch}, got shapes {sorted(set(bad))}."
        )
    return batch


def _resting_states(model, batch):
    n = math.prod(batch)
    dyn, static = eqx.partition(model, eqx.is_array)
    dyn = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, batch).reshape(n), dyn)
    rest = jax.vmap(lambda d: resting_state(eqx.combine(d, static)))(dyn)
    return jax.tree_util.tree_map(lambda a: a.reshape(batch), rest)


def _kept(y, save):
    """What is saved of a state: all of it, or (`save="v"`) only `v` (gate fields
    `None` / no gates)."""
    if save == "state":
        return y
    if isinstance(y, HHState):
        return HHState(v=y.v, m=None, h=None, n=None)
    return MembraneState(v=y.v, gates={})


#: `stimulus_batched` value (static) for a batched `SampledCurrent` whose neurons share
#: their sample times: one knot search per step for the whole batch
SHARED_KNOTS = "shared_knots"


def _shares_knots(stimulus, batch: tuple[int, ...]) -> bool:
    """A [`hhjax.SampledCurrent`][] batched over the population `batch` (concrete
    times of shape `batch + (K,)`, K ≥ 2) whose neurons all have the same sample
    times (e.g. one recording's sweeps, or candidates on them)."""
    if type(stimulus) is not SampledCurrent or not is_concrete(stimulus.times):
        return False
    times = np.asarray(stimulus.times)
    if not batch or times.shape[:-1] != tuple(batch) or times.shape[-1] < 2:
        return False
    rows = times.reshape(-1, times.shape[-1])
    return bool(np.all(rows == rows[0]))


def _shared_knots_current(stimulus):
    """`t ↦` the current of every neuron of a batched `SampledCurrent` (leaves
    `(n, K)`) with shared sample times: `SampledCurrent.__call__` vmapped over the
    neurons' values only, so the knot is searched once for all of them and their
    values read as one row of the transposed `(K, n)` table, instead of a search
    per neuron through its own copy (a recorded current, every sample a knot, made
    each step a scattered read per neuron: 3.3x slower steps)."""
    one = jax.tree_util.tree_map(lambda a: a[0], stimulus)  # the shared times
    table = stimulus.values.T

    def current(t):
        return jax.vmap(lambda f: eqx.tree_at(lambda s: s.values, one, f)(t),
                        in_axes=1)(table)

    return current


def _loop(model, stimulus, y0, t0, dt, n_saves, stride, unroll, stimulus_batched,
          scheme="exponential_euler", save="state"):
    """The time loop for one chunk of neurons (fields of shape `(chunk,)` or `()`)."""
    staggered = scheme == "staggered"
    if isinstance(model, HHParams):
        step = _hh_step_staggered if staggered else _hh_step
    else:
        step = _membrane_step_staggered if staggered else _membrane_step
    dtype = model.dtype
    # the staggered scheme takes the current at the middle of each step
    t_off = 0.5 * dt if staggered else 0.0

    shared = _shared_knots_current(stimulus) if stimulus_batched == SHARED_KNOTS else None

    def current(t):
        if stimulus is None:
            return jnp.zeros((), dtype)
        if shared is not None:
            return shared(t)
        if stimulus_batched:
            return jax.vmap(lambda s: s(t))(stimulus)
        return stimulus(t)

    def advance(y, k):
        t = t0 + k.astype(dtype) * dt + t_off
        return step(model, y, current(t), dt)

    def inner(y, k):
        y = advance(y, k)
        return (y[0] if staggered else y), None

    def steps(y, ks):  # (only for samples of two or more steps: ks is never empty)
        y, _ = jax.lax.scan(inner, y, ks, unroll=min(unroll, ks.shape[0]))
        return y

    # the staggered scheme carries (state with half-step gates, last synchronised
    # state), so the final state is at hand whatever is saved
    if staggered:

        def sample(carry, j):
            y, _ = carry
            if stride == 1:
                new, sync = advance(y, j)
            else:
                ks = j * stride + jnp.arange(stride)
                new, sync = advance(steps(y, ks[:-1]), ks[-1])
            return (new, sync), _kept(sync, save)

        init = (_half_step_gates(model, y0, dt), y0)
    else:

        def sample(y, j):
            y = advance(y, j) if stride == 1 else steps(y, j * stride + jnp.arange(stride))
            return y, _kept(y, save)

        init = y0
    # One loop iteration per sample (with a sample after every step, no nested loop:
    # entering and leaving one costs more than the step itself). The per-sample
    # bodies are rematerialised under reverse mode, so a gradient stores the
    # samples' carries, not every step's intermediates.
    carry, saved = jax.lax.scan(jax.checkpoint(sample), init, jnp.arange(n_saves - 1),
                                unroll=unroll if stride == 1 else 1)
    final = carry[1] if staggered else carry
    states = jax.tree_util.tree_map(
        lambda a, s: jnp.moveaxis(jnp.concatenate([a[None], s], axis=0), 0, -1),
        _kept(y0, save),
        saved,
    )
    return states, final


def _run_impl(model, stimulus, y0, t0, dt, n_saves, stride, unroll, stimulus_batched, scheme,
              save, batch, chunk):
    dtype = model.dtype
    n = math.prod(batch)
    # a batched stimulus is evaluated with one vmap over a flat neuron axis
    flat_needed = stimulus_batched and stimulus is not None and len(batch) != 1
    if n <= chunk and not flat_needed:
        states, final = _loop(model, stimulus, y0, t0, dt, n_saves, stride, unroll, stimulus_batched,
                              scheme, save)
    else:
        # Chunks of neurons, one after another, each through the whole time loop: a
        # chunk's state stays in cache across the ~15 kernels XLA:CPU splits a step
        # into (measured ~1.6x faster than one loop over the whole population).
        chunk = min(chunk, n)
        n_chunks = -(-n // chunk)
        dyn_m, static_m, y0c, dyn_s, static_s = _flatten_padded(
            model, stimulus, y0, batch, n_chunks * chunk, stimulus_batched
        )
        dyn_m, y0c, dyn_s = jax.tree_util.tree_map(
            lambda a: a.reshape((n_chunks, chunk) + a.shape[1:]), (dyn_m, y0c, dyn_s)
        )

        def one(args):
            dm, ds, yc = args
            m = eqx.combine(dm, static_m)
            st = eqx.combine(ds, static_s) if ds is not None else static_s
            return _loop(m, st, yc, t0, dt, n_saves, stride, unroll, stimulus_batched, scheme, save)

        states, final = jax.lax.map(one, (dyn_m, dyn_s, y0c))

        def merge(a):
            a = a.reshape((n_chunks * chunk,) + a.shape[2:])[:n]
            return a.reshape(batch + a.shape[1:])

        states = jax.tree_util.tree_map(merge, states)
        final = jax.tree_util.tree_map(merge, final)
    t = t0 + dt * stride * jnp.arange(n_saves, dtype=dtype)
    return PopulationResult(t=t, state=states, final=final, ok=_finite(states) & _finite(final, over_time=False))


_run = eager_wide_jit(_run_impl)


def _flatten_padded(model, stimulus, y0, batch, n_pad, stimulus_batched):
    """The population's arrays flattened to one axis of `n_pad` neurons (the last
    neuron repeated as padding): `(model arrays, model static, y0, stimulus arrays or
    None, stimulus static)`; static parts are not arrays, so tree maps skip them."""
    n = math.prod(batch) if batch else 1

    def flat(a, trailing=()):
        a = jnp.broadcast_to(a, batch + trailing).reshape((n,) + trailing)
        if n_pad > n:
            a = jnp.concatenate([a, jnp.broadcast_to(a[-1:], (n_pad - n,) + trailing)])
        return a

    dyn_m, static_m = eqx.partition(model, eqx.is_array)
    dyn_m = jax.tree_util.tree_map(flat, dyn_m)
    y0f = jax.tree_util.tree_map(flat, y0)
    if stimulus is not None and stimulus_batched:
        dyn_s, static_s = eqx.partition(stimulus, eqx.is_array)
        dyn_s = jax.tree_util.tree_map(lambda a: flat(a, a.shape[len(batch):]), dyn_s)
    else:
        dyn_s, static_s = None, stimulus
    return dyn_m, static_m, y0f, dyn_s, static_s


def _run_sharded(model, stimulus, y0, args, batch, chunk, devices):
    """`_run` under `jax.shard_map`: the flattened population split over `devices`."""
    from jax.sharding import Mesh, PartitionSpec as P

    t0, dt, n_saves, stride, unroll, stimulus_batched, scheme, save = args
    n = math.prod(batch) if batch else 1
    d = len(devices)
    n_pad = -(-n // d) * d

    dyn_m, static_m, y0f, dyn_s, static_s = _flatten_padded(
        model, stimulus, y0, batch, n_pad, stimulus_batched
    )
    s_spec = P("neurons") if dyn_s is not None else P()
    mesh = Mesh(np.asarray(devices), ("neurons",))
    local_n = n_pad // d
    chunk = _chunk_for(local_n, chunk, split=False)

    def local(dm, ys, ds):
        m = eqx.combine(dm, static_m)
        st = eqx.combine(ds, static_s) if ds is not None else static_s
        r = _run(m, st, ys, t0, dt, n_saves, stride, unroll, stimulus_batched, scheme, save,
                 (local_n,), chunk)
        return r.state, r.final, r.ok

    run = jax.jit(
        jax.shard_map(
            local, mesh=mesh, in_specs=(P("neurons"), P("neurons"), s_spec),
            out_specs=(P("neurons"), P("neurons"), P("neurons")),
        ),
        compiler_options=wide_compiler_options(),
    )
    states, final, ok = run(dyn_m, y0f, dyn_s)

    def unflat(a):
        return a[:n].reshape(batch + a.shape[1:])

    t = t0 + dt * stride * jnp.arange(n_saves, dtype=t0.dtype)
    return PopulationResult(
        t=t,
        state=jax.tree_util.tree_map(unflat, states),
        final=jax.tree_util.tree_map(unflat, final),
        ok=unflat(ok),
    )


def _default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


#: the default `chunk_size` on a CPU (a chunk's state stays in cache)
CPU_CHUNK_SIZE = 1024
#: populations of at least twice this many neurons run as two chunks or more (so
#: two threads can share them)
_MIN_PART = 256
#: chunks of at least this many neurons are balanced (and rounded to `_LANES`)
_MIN_BALANCED = 32
#: neurons per 512-bit vector in float32 (a multiple of the float64 count)
_LANES = 16


def _chunk_for(n: int, chunk: int, split: bool = True) -> int:
    """The chunk size `n` neurons actually run in: as many chunks as `chunk` (the
    most) requires — with `split` (a CPU, where two threads can share them), at
    least two once each holds `_MIN_PART` neurons — all of one size, rounded up to
    whole 512-bit vectors. E.g. 1025 neurons run as 2 × 528 rather than 2 × 1024
    (half of it padding), 1000 as 2 × 512. It does not depend on `threads`, so
    threads never change the numbers. Chunks below `_MIN_BALANCED` are kept as
    given."""
    if chunk < _MIN_BALANCED:
        return chunk
    k = max(-(-n // chunk), min(2, n // _MIN_PART) if split else 1, 1)
    c = -(-n // k)
    return min(chunk, -(-c // _LANES) * _LANES)


def _use_threads(params, stimulus, y0, n, chunk, threads, on_cpu) -> int:
    """How many concurrent parts to split a population into (1 = no splitting): only
    outside any JAX transformation (every array concrete), on the CPU default device
    (`on_cpu` without `devices`), when there are at least two chunks."""
    if threads <= 1 or n <= chunk or not on_cpu:
        return 1
    leaves = jax.tree_util.tree_leaves((params, stimulus, y0))
    if not all(is_concrete(x) for x in leaves if eqx.is_array(x)):
        return 1
    return min(threads, -(-n // chunk))


def _run_threaded(model, stimulus, y0, args, batch, chunk, parts):
    """`_run` on `parts` slices of the flattened population, each from its own Python
    thread (JAX releases the GIL while XLA runs; XLA:CPU runs one call on one core,
    so the parts use one core each). Chunk for chunk the same program as the
    sequential path, hence the same numbers."""
    from concurrent.futures import ThreadPoolExecutor

    t0, dt, n_saves, stride, unroll, stimulus_batched, scheme, save = args
    n = math.prod(batch) if batch else 1
    n_chunks = -(-n // chunk)
    part = -(-n_chunks // parts) * chunk
    dyn_m, static_m, y0f, dyn_s, static_s = _flatten_padded(
        model, stimulus, y0, batch, parts * part, stimulus_batched
    )

    def one(i):
        sl = lambda a: a[i * part : (i + 1) * part]  # noqa: E731
        m = eqx.combine(jax.tree_util.tree_map(sl, dyn_m), static_m)
        st = eqx.combine(jax.tree_util.tree_map(sl, dyn_s), static_s) if dyn_s is not None else static_s
        r = _run(m, st, jax.tree_util.tree_map(sl, y0f), t0, dt, n_saves, stride, unroll,
                 stimulus_batched, scheme, save, (part,), chunk)
        return jax.block_until_ready(r)

    with ThreadPoolExecutor(max_workers=parts) as ex:
        res = list(ex.map(one, range(parts)))

    def cat(*xs):
        a = jnp.concatenate(xs, axis=0)[:n]
        return a.reshape(batch + a.shape[1:])

    return PopulationResult(
        t=res[0].t,
        state=jax.tree_util.tree_map(cat, *[r.state for r in res]),
        final=jax.tree_util.tree_map(cat, *[r.final for r in res]),
        ok=cat(*[r.ok for r in res]),
    )


def simulate_population(
    params: HHParams | Membrane,
    stimulus: AbstractStimulus | None = None,
    t_end: ArrayLike | None = None,
    *,
    dt: float = 0.01,
    save_every: float | None = None,
    t0: float = 0.0,
    y0: HHState | MembraneState | None = None,
    stimulus_batched: bool = False,
    unroll: int = 1,
    chunk_size: int | None = None,
    devices=None,
    throw: bool = True,
    scheme: str = "exponential_euler",
    threads: int | None = None,
    save: str = "state",
) -> PopulationResult:
    """Simulate a population with the fused fixed-step exponential-Euler loop.

    **Arguments:**

    - `params`: an [`hhjax.HHParams`][] or [`hhjax.Membrane`][] whose arrays carry
      the population's batch shape (e.g. `HHParams(g_na=jnp.linspace(100, 140, N))`,
      or a `jax.vmap`-built stack); scalars are shared.
    - `stimulus`: an hhjax stimulus shared by every neuron, or (with
      `stimulus_batched=True`) a stimulus whose arrays have a leading axis of the
      batch size (one per neuron, as built by `jax.vmap`). Noise currents are not
      supported here (use [`hhjax.simulate`][]).
    - `t_end`: end time [ms]; `t_end − t0` must be a whole number of `dt`.
    - `dt`: step [ms] (default 0.01), > 0.
    - `save_every`: output interval [ms], a whole number of steps that divides the
      duration (default: every step).
    - `t0`: start time [ms].
    - `y0`: initial state with fields of the batch shape (default: each neuron's
      resting state, [`hhjax.resting_state`][]).
    - `unroll`: steps unrolled per loop iteration (1 was fastest on CPU).
    - `chunk_size`: the most neurons integrated together (default: 1024 on a CPU,
      the whole population on a GPU); larger populations run chunk after chunk
      (keeps each chunk's state in cache on a CPU). The chunks are of one size, rounded
      up to whole 512-bit vectors (1025 neurons run as 2 × 528), and on a CPU a
      population of 512 neurons or more runs as at least two (so two threads can
      share it).
    - `devices`: a list of JAX devices (e.g. `jax.devices()`) to shard the
      population over (`jax.shard_map` over a 1-D mesh: each device integrates its
      slice; nothing is exchanged during the run). Default: the default device.
      Works unchanged from one CPU to many GPUs; multi-host with
      `jax.distributed.initialize()` and `jax.devices()` (the global list).
    - `throw`: raise [`hhjax.SimulationError`][] if any neuron's state became
      non-finite (outside `jit`); otherwise check `result.ok`.
    - `threads`: on a CPU, called outside `jit`/`grad`/`vmap` (concrete arrays), a
      population of two or more chunks is split into up to `threads` equal parts
      integrated concurrently, one Python thread each (XLA:CPU runs one call on one
      core; the chunks are independent, so the numbers do not change). Default: the
      number of cores this process may use; `1` turns it off. Ignored under JAX
      transformations and with `devices`.
    - `scheme`: `"exponential_euler"` (default; first order, the numbers of
      `simulate(..., solver=hhjax.ExponentialEuler())`) or `"staggered"`: second
      order at the same cost per step — the gates live at half steps, each gate
      and `v` is advanced by the trapezoidal rule with the other frozen at its
      midpoint value (NEURON's `secondorder=2` staggering), the current is taken
      at mid-step. On the classic HH step-current trace it reaches ~0.006 ms
      spike-time error at `dt=0.025` (exponential Euler: ~1 ms), which makes it
      the fastest way to an accurate single trace. Saved gate values are taken
      half a step back from the carried half-step values with the rates already
      evaluated at the saved `v` (second order, no extra cost); instantaneous and
      dependent gates of a `Membrane` are evaluated at the step's start (first
      order in them).

    - `save`: what is stored at each sample: `"state"` (default; `v` and every
      gate) or `"v"` (only the membrane potential: the result's `state` then has
      `v` and no gates — `None` gate fields for `HHParams`, an empty `gates` dict
      for a `Membrane`; `final` is always the full state). With four state
      variables, `"v"` needs a quarter of the output memory (for 1e5 neurons,
      100 ms sampled every 0.1 ms in float64: 0.8 GB instead of 3.2 GB) and less
      time per sample.

    **Returns:** a [`hhjax.PopulationResult`][] (`v` of shape `batch + (T,)`).

    **Raises:** `ValueError` for a duration or `save_every` that is not a whole
    number of steps, `dt <= 0`, noise stimuli; `TypeError` for other models.

    **Example:**

    ```python
    import jax.numpy as jnp, hhjax
    p = hhjax.HHParams(g_na=jnp.linspace(100.0, 140.0, 10_000))
    res = hhjax.simulate_population(p, hhjax.StepCurrent(10.0, 10.0, 90.0), 100.0,
                                    save_every=0.1)
    res.v.shape  # (10000, 1001)
    ```
    """
    from ._simulate import SimulationError

    check_model(params, scalar=False)
    if stimulus is not None and not isinstance(stimulus, AbstractStimulus):
        raise TypeError(f"`stimulus` must be an hhjax stimulus or None, got {type(stimulus).__name__}.")
    if stimulus is not None and (
        isinstance(stimulus, AbstractNoiseCurrent) or noise_sources(stimulus)
    ):
        raise ValueError(
            "`simulate_population` takes deterministic stimuli; for noise currents use "
            "hhjax.simulate (vmapped)."
        )
    if t_end is None:
        raise TypeError("`t_end` (end time in ms) is required.")
    for name, x in (("dt", dt), ("t0", t0), ("t_end", t_end)):
        if not is_concrete(x):
            raise ValueError(f"`{name}` must be a concrete number [ms] (it fixes the step count).")
    dt, t0, t_end = float(dt), float(t0), float(t_end)
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"`dt` must be > 0 ms, got {dt}.")
    steps_f = (t_end - t0) / dt
    n_steps = int(round(steps_f))
    if n_steps < 1 or abs(steps_f - n_steps) > 1e-6 * max(1.0, steps_f):
        raise ValueError(
            f"`t_end - t0` ({t_end - t0} ms) must be a positive whole number of `dt` "
            f"({dt} ms)."
        )
    if save_every is None:
        stride = 1
    else:
        stride_f = float(save_every) / dt
        stride = int(round(stride_f))
        if stride < 1 or abs(stride_f - stride) > 1e-6 * stride_f or n_steps % stride:
            raise ValueError(
                f"`save_every` ({save_every} ms) must be a whole number of steps of "
                f"`dt` ({dt} ms) that divides the duration ({t_end - t0} ms)."
            )
    n_saves = n_steps // stride + 1
    if scheme not in SCHEMES:
        raise ValueError(f"`scheme` must be one of {SCHEMES}, got {scheme!r}.")
    if chunk_size is not None and (int(chunk_size) != chunk_size or chunk_size < 1):
        raise ValueError(f"`chunk_size` must be a positive integer or None, got {chunk_size!r}.")
    batch = _batch_shape(params)
    if stimulus is not None and stimulus_batched:
        batch = _stimulus_batch(stimulus, batch)
    dtype = params.dtype
    if y0 is None:
        y0 = _resting_states(params, batch)
    else:
        y0 = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(jnp.asarray(a, dtype), batch), y0)
    if save not in SAVE_CHOICES:
        raise ValueError(f"`save` must be one of {SAVE_CHOICES}, got {save!r}.")
    batched = bool(stimulus_batched)
    if batched and _shares_knots(stimulus, batch):
        batched = SHARED_KNOTS  # (a truthy static flag)
    args = (jnp.asarray(t0, dtype), jnp.asarray(dt, dtype), n_saves, stride, int(unroll),
            batched, scheme, save)
    if threads is None:
        threads = _default_threads()
    if int(threads) != threads or threads < 1:
        raise ValueError(f"`threads` must be a positive integer or None, got {threads!r}.")
    n_total = math.prod(batch) if batch else 1
    if devices is not None and len(devices) == 0:
        raise ValueError("`devices` must be a non-empty list of JAX devices or None.")
    on_cpu = (jax.default_backend() == "cpu" if devices is None
              else all(d.platform == "cpu" for d in devices))
    if chunk_size is None:  # a CPU keeps a chunk in cache; a GPU wants all at once
        chunk_size = CPU_CHUNK_SIZE if on_cpu else max(n_total, 1)
    chunk = _chunk_for(n_total, int(chunk_size), split=on_cpu)
    # (with `devices` the population is placed or sharded, never threaded)
    parts = _use_threads(params, stimulus, y0, n_total, chunk, int(threads),
                         on_cpu and devices is None)
    if devices is not None and len(devices) > 1:
        res = _run_sharded(params, stimulus, y0, args, batch, int(chunk_size), tuple(devices))
    elif devices is not None:
        # one device: run there (the inputs' arrays moved onto it)
        (dev,) = devices
        put = lambda tree: eqx.combine(  # noqa: E731
            jax.device_put(eqx.filter(tree, eqx.is_array), dev), eqx.filter(tree, eqx.is_array, inverse=True)
        )
        with jax.default_device(dev):
            res = _run(put(params), put(stimulus), put(y0), *args, batch, chunk)
    elif parts > 1:
        res = _run_threaded(params, stimulus, y0, args, batch, chunk, parts)
    else:
        res = _run(params, stimulus, y0, *args, batch, chunk)
    if throw and is_concrete(res.ok) and not bool(jnp.all(res.ok)):
        bad = int(jnp.sum(~res.ok))
        raise SimulationError(
            f"hhjax.simulate_population: the state of {bad} neuron(s) became non-finite; "
            "try a smaller `dt` or check the parameters (throw=False returns `ok`)."
        )
    return res
