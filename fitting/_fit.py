"""`fitting.fit`: fit model parameters to recorded voltage traces."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
import pathlib
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array

import hhjax

from ._init import LINEAR_PARAMETERS, estimate_noise_sigma, teacher_forced_estimate
from ._losses import (
    AbstractBoundLoss,
    AbstractLoss,
    SpikeTimeLoss,
    SweepData,
    TraceLoss,
)
from ._optimizers import (
    AbstractObjective,
    AbstractOptimizer,
    LevenbergMarquardt,
    Optax,
    OptimizerState,
)
from ._simulator import AbstractSimulator, HHSimulator
from ._transforms import (
    RECORDING_PARAMETERS,
    Bounded,
    ParameterSpace,
    _describe,
    _template_dtype,
)

#: The parameters `fit` fits when none are named.
DEFAULT_FIT = ("g_na", "g_k", "g_leak", "e_na", "e_k", "e_leak")
"""The parameters [`fitting.fit`][] fits when none are named (`fit=None`): the
three maximal conductances [mS/cm²] and reversal potentials [mV] of an
[`hhjax.HHParams`][]. A tuple of field names.

**Example:**

```pycon
>>> import fitting, hhjax
>>> fitting.DEFAULT_FIT
('g_na', 'g_k', 'g_leak', 'e_na', 'e_k', 'e_leak')
>>> [float(getattr(hhjax.HHParams(), n)) for n in fitting.DEFAULT_FIT]
[120.0, 36.0, 0.3, 50.0, -77.0, -54.387]

```
"""

CHECKPOINT_VERSION = 1

#: A fit whose residual σ exceeds `NOISE_RATIO · σ̂ + NOISE_MARGIN_MV` (σ̂: the
#: recording's noise, `estimate_noise_sigma`) gets a warning.
NOISE_RATIO = 1.3
NOISE_MARGIN_MV = 0.1
#: `fit(retry=...)` runs again from other starts when the residual σ exceeds
#: `RETRY_RATIO · σ̂ + RETRY_MARGIN_MV` (σ̂ is accurate to about 1 % on a few
#: thousand samples; a fit at the noise floor has σ ≈ σ̂).
RETRY_RATIO = 1.03
RETRY_MARGIN_MV = 0.02
#: When any parameter's remaining Gauss–Newton step (`FitResult.remaining_step`) is
#: longer than `MAX_STEP_SE` of its standard errors, the fit stopped before the
#: minimum, and no parameter is reported as identified: the standard errors
#: describe the scatter about the minimum. (Judged per parameter, as first built, a
#: synthetic cell's g_m was reported identified 3.6 standard errors from the truth
#: with a step of 1.5, while g_kd's step was 39. On 10 synthetic HH fits by the
#: default strategy 9 ended with steps below 0.02 SE and one, `hhjax demo`'s, at
#: 0.6–1.25 SE: its last stage stalls where the adaptive solver's step choices make
#: the loss jitter.)
MAX_STEP_SE = 2.0
#: A bounded parameter within `AT_BOUND` × (upper − lower) of a bound ended on it.
#: The bounded transform is flat there (∂θ/∂u → 0), so a standard error computed
#: through it means nothing; such a parameter, or one whose value lies within two
#: standard errors of a bound (its ± reaches the bound, so it does not hold as a
#: symmetric interval), is reported as not identified.
AT_BOUND = 1e-6


def _at_bound(tr, value: float, se: float) -> str | None:
    """Why `value` ± `se` is limited by a bound of the transform `tr`, if it is (a
    standard error wider than the whole box is no bound's doing: not reported here)."""
    if isinstance(tr, Bounded):
        span = tr.upper - tr.lower
        dist, which, b = min((value - tr.lower, "lower", tr.lower),
                             (tr.upper - value, "upper", tr.upper))
        if dist <= AT_BOUND * span:
            return (f"it ended at its {which} bound {b:g}; widen the bounds if values "
                    "beyond it are plausible")
        if dist < 2.0 * se < 2.0 * span:
            return (f"its value lies within two standard errors of its {which} bound "
                    f"{b:g}; widen the bounds if values beyond it are plausible")
        return None
    try:
        return None if tr.contains(value) else "it ended outside its transform's range"
    except Exception:  # a user transform that cannot tell
        return None


# --------------------------------------------------------------------------------------
# the forward model and the objective of one stage


class _Problem(eqx.Module):
    space: ParameterSpace
    stimulus: Any  # batched over sweeps, µA/cm² (or per cm² when the area is fitted)
    ts: Array
    t_span: tuple[float, float] = eqx.field(static=True)
    simulator: AbstractSimulator
    scale_mode: str = eqx.field(static=True)  # "none" | "area_cm2" | "capacitance_pF"

    def stimulus_for(self, values):
        if self.scale_mode == "none":
            return self.stimulus
        if self.scale_mode == "area_cm2":
            area = values["area_cm2"]
        else:
            c_m = values.get("c_m", self.space.template.c_m)
            area = values["capacitance_pF"] * 1e-6 / c_m
        return eqx.tree_at(lambda s: s.values, self.stimulus, self.stimulus.values / area)

    def simulate(self, u, adjoint):
        values = self.space.to_values(u)
        params = self.space.sweep_params(u)
        stim = self.stimulus_for(values)

        def one(p, s):
            return self.simulator(p, s, self.ts, self.t_span, adjoint)

        return jax.vmap(one)(params, stim)


class _Objective(AbstractObjective):
    problem: _Problem
    loss: AbstractBoundLoss

    def residuals(self, u, adjoint):
        v, ok = self.problem.simulate(u, adjoint)
        r = self.loss.residuals(v)
        return jnp.where(jnp.all(ok), r, jnp.inf)

    def residuals_and_jacobian(self, u):
        def f(x):
            r = self.residuals(x, diffrax.ForwardMode())
            return r, r

        J, r = jax.jacfwd(f, has_aux=True)(u)
        return r, J

    def value_and_grad(self, u):
        def f(x):
            r = self.residuals(x, diffrax.RecursiveCheckpointAdjoint())
            return jnp.sum(r * r)

        return jax.value_and_grad(f)(u)


# --------------------------------------------------------------------------------------
# stages and the default strategy


class Stage(eqx.Module):
    """One stage of a fit: an optimiser on a loss, with a simulator.

    **Arguments:**

    - `optimizer`: a [`fitting.LevenbergMarquardt`][] or [`fitting.Optax`][] (e.g.
      [`fitting.adam`][]).
    - `loss`: a fitting loss (default: the `loss` given to `fit`, else
      [`fitting.TraceLoss`][]).
    - `simulator`: how sweeps are simulated in this stage (default: the
      `simulator` given to `fit`).
    - `name`: shown in the progress bar and the history.
    - `branch`: if True, the following stages continue from both this stage's
      starting points and its results (the number of starts doubles), and the best
      is chosen at the end — for a stage that usually helps but can mislead.

    Stages run in order, each starting where the previous one ended.

    **Raises:** `TypeError` when `optimizer` is not a fitting optimiser or `loss`
    not a fitting loss.

    **Example** (a two-stage strategy: the first half of each sweep, then all):

    ```pycon
    >>> import fitting
    >>> stages = [
    ...     fitting.Stage(fitting.LevenbergMarquardt(steps=20),
    ...                   fitting.TraceLoss(window=(0.0, 50.0)), name="first half"),
    ...     fitting.Stage(fitting.LevenbergMarquardt(steps=20), name="full"),
    ... ]
    >>> [(s.name, s.optimizer.steps, s.loss) for s in stages]
    [('first half', 20, TraceLoss(window=(0.0, 50.0))), ('full', 20, None)]

    ```

    ```python
    res = fitting.fit(hhjax.HHParams(), rec, ("g_na", "g_k"), stages=stages)
    ```
    """

    optimizer: AbstractOptimizer
    loss: AbstractLoss | None = None
    simulator: AbstractSimulator | None = None
    name: str = eqx.field(static=True, default="")
    branch: bool = eqx.field(static=True, default=False)

    def __check_init__(self):
        if not isinstance(self.optimizer, AbstractOptimizer):
            raise TypeError(
                "Stage `optimizer` must be fitting.LevenbergMarquardt(...) or "
                "fitting.Optax(...)/fitting.adam(...), got "
                f"{type(self.optimizer).__name__}."
            )
        if self.loss is not None and not isinstance(self.loss, AbstractLoss):
            raise TypeError(f"Stage `loss` must be a fitting loss, got {self.loss!r}.")


def default_stages(
    t_start: float,
    t_end: float,
    *,
    horizons: Sequence[float] = (0.2, 0.3, 0.45, 0.65),
    steps: int = 30,
    refine_rtol: float = 1e-9,
    spike_trace_weight: float = 0.01,
    horizon_spike_weight: float = 1.0,
) -> tuple[Stage, ...]:
    """The documented default strategy (used by `fit` when no `stages`, `loss` or
    `optimizer` is given).

    0. **Spike times**: Levenberg–Marquardt on [`fitting.SpikeTimeLoss`][] plus
       `spike_trace_weight` × the trace loss. Spike times are smooth in the
       parameters even when spikes are far out of alignment (a trace loss is not),
       so this stage brings the spikes into register from a start that is tens of
       per cent off. It *branches*: the later stages run on both its start and its
       result (two starts, vmapped) and the better end point wins — on some data
       the spike loss alone leads to a worse basin than the start it was given.
    1. **Growing horizons**: Levenberg–Marquardt on the trace error of the first
       20 %, 30 %, 45 % and 65 % of each sweep (`horizons`, fractions of the sweep).
       Spikes far from the start drift out of alignment when a parameter is a few
       per cent off, and a trace loss over misaligned spikes is rugged; fitting the
       early part first aligns the first spikes, and each longer horizon starts
       where the previous one ended. Each horizon stage also carries
       `horizon_spike_weight` × [`fitting.SpikeTimeLoss`][] over the *whole*
       sweeps: a trace loss on the early part alone is blind to the later spikes
       and can trade them away (e.g. stop repetitive firing, or keep a spike the
       data does not have in a near-threshold sweep) for a slightly better fit of
       the first milliseconds — a basin the longer horizons cannot leave, because a
       trace loss has no gradient towards creating or removing a spike.
    2. **Full traces**: Levenberg–Marquardt on the whole sweeps.
    3. **Refinement** with a tight solver (`rtol = atol = refine_rtol`): the
       solver's own error would otherwise bias the least-determined parameters
       (the leak) by more than their statistical error.

    **Arguments:** `t_start`, `t_end`: the recording's time span [ms]; `horizons`;
    `steps`: Levenberg–Marquardt step budget per stage (the refinement gets a
    third); `spike_trace_weight`: weight of the trace loss in the spike-time stage;
    `horizon_spike_weight`: weight of the whole-sweep spike-time loss in the horizon
    stages (0: trace loss only; 1 ms of spike-time error then counts as much as
    1 mV² of mean squared trace error). Stages stop early once the loss stops
    improving (typically 3–8 steps).

    **Returns:** a tuple of [`fitting.Stage`][]s (for `fit(stages=...)`).

    **Raises:** `ValueError` for a horizon outside (0, 1) or a negative or
    non-finite `horizon_spike_weight`.

    **Example** (construction only; the stages of a 100-ms recording):

    ```pycon
    >>> import fitting
    >>> stages = fitting.default_stages(0.0, 100.0)
    >>> [s.name for s in stages]
    ['spike times', 'horizon 20%', 'horizon 30%', 'horizon 45%', 'horizon 65%',
     'full', 'refine']
    >>> stages[1].loss.losses[0].window, stages[-1].simulator.rtol   # ms, refine rtol
    ((0.0, 20.0), 1e-09)

    ```
    """
    horizon_spike_weight = float(horizon_spike_weight)
    if not (horizon_spike_weight >= 0 and math.isfinite(horizon_spike_weight)):
        raise ValueError(
            f"`horizon_spike_weight` must be finite and >= 0, got {horizon_spike_weight}."
        )
    stages = [
        Stage(
            LevenbergMarquardt(steps=steps, rtol=1e-4),
            SpikeTimeLoss() + spike_trace_weight * TraceLoss(),
            name="spike times",
            branch=True,
        )
    ]
    for h in horizons:
        if not 0 < h < 1:
            raise ValueError(f"`horizons` must be fractions in (0, 1), got {h}.")
        end = t_start + h * (t_end - t_start)
        horizon_loss = TraceLoss(window=(t_start, end))
        if horizon_spike_weight > 0:
            horizon_loss = horizon_loss + horizon_spike_weight * SpikeTimeLoss()
        stages.append(
            Stage(
                LevenbergMarquardt(steps=steps, rtol=1e-4),
                horizon_loss,
                name=f"horizon {int(round(100 * h))}%",
            )
        )
    stages.append(Stage(LevenbergMarquardt(steps=steps), TraceLoss(), name="full"))
    stages.append(
        Stage(
            LevenbergMarquardt(steps=max(1, steps // 3), rtol=1e-6),
            TraceLoss(),
            HHSimulator(rtol=refine_rtol, atol=refine_rtol),
            name="refine",
        )
    )
    return tuple(stages)


# --------------------------------------------------------------------------------------
# the result


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What [`fitting.fit`][] returns.

    - `params`: the fitted model (an `hhjax.HHParams` for HH fits); for per-sweep
      parameters, the values of sweep 0 (see `values`).
    - `values`: name → fitted value (float, or array over sweeps when per-sweep).
    - `stderr`: name → standard error (same unit), from the Gauss–Newton Hessian
      `JᵀJ/σ²` of the trace residuals at the optimum, `σ²` estimated from the
      residuals (NaN when not computed).
    - `correlation`: `(p, p)` parameter correlation matrix, rows in `names` order.
    - `identifiable`: name → bool: `False` when the relative standard error exceeds
      50 %, the parameter is almost fully correlated (|ρ| > 0.995) with another,
      the fit had not converged (the `remaining_step` of any parameter exceeds two
      of its standard errors: then none is identified), or it ended at one of its
      bounds or within two standard errors of one.
    - `remaining_step`: name → the Gauss–Newton step `−(JᵀJ)⁻¹Jᵀr` from the result
      (same unit): ~0 at a minimum of the trace residuals. The standard errors
      describe the noise's scatter about a minimum; a remaining step of several
      standard errors means the fit stopped short of it, and the value is further
      from the minimum than its standard error says.
    - `noise_sigma`: residual standard deviation at the optimum [mV].
    - `data_noise_sigma`: the recording's noise level estimated from its
      sample-to-sample scatter ([`fitting.estimate_noise_sigma`][]) [mV]. A
      residual σ well above it (more than `1.3 σ̂ + 0.1 mV`) adds a warning: the fit
      probably ended in a local minimum (or the model cannot follow the data).
    - `loss`: the final loss of the last stage (its own normalisation).
    - `rmse`: root-mean-square trace error of the best start [mV].
    - `history`: list of `(stage name, step, best loss over starts)`.
    - `starts`: per-start outcomes: list of dicts with `values`, `loss`,
      `evaluations`, `converged` (the start's final loss within 1 % of the best).
    - `best_start`: index of the best start; `spread`: name → (min, max) over the
      converged starts.
    - `status`: `"converged"`, `"max_steps"`, `"time_budget"` (stopped by
      `fit(time_budget_s=)`) or `"interrupted"`.
    - `evaluations`: total loss/Jacobian evaluations of the best start (after a
      retry, see `fit(retry=...)`, those of both passes' best starts);
      `wall_time`: seconds; `settings`: what was run (JSON-serialisable);
      `names`: the fitted names (per-sweep ones expanded as `name[k]` in
      `correlation`); `warnings`: human-readable notes.

    **Methods:** `to_json()`: a JSON-serialisable dict (what `fit.json` holds).

    **Example** (needs a fit, seconds to minutes; see
    [`fitting.synthetic_recording`][] for data with a known truth):

    ```python
    rec = fitting.synthetic_recording(fitting.perturbed_params(0))  # truth in meta
    res = fitting.fit(hhjax.HHParams(), rec, ("g_na", "g_k", "g_leak"))
    res.status                                # "converged", "max_steps", ...
    res.values["g_na"], res.stderr["g_na"]    # fitted value and its stderr [mS/cm²]
    res.identifiable["g_leak"]                # bool
    res.noise_sigma, res.data_noise_sigma     # residual σ vs the data's σ̂ [mV]
    json.dumps(res.to_json())                 # the summary `hhjax fit` writes
    ```
    """

    params: Any
    values: dict[str, Any]
    stderr: dict[str, Any]
    correlation: np.ndarray
    correlation_names: tuple[str, ...]
    identifiable: dict[str, bool]
    noise_sigma: float
    loss: float
    rmse: float
    history: list[tuple[str, int, float]]
    starts: list[dict[str, Any]]
    best_start: int
    spread: dict[str, tuple[float, float]]
    status: str
    evaluations: int
    wall_time: float
    settings: dict[str, Any]
    names: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    data_noise_sigma: float = math.nan
    remaining_step: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable summary (what `hhjax fit` writes to `fit.json`)."""

        def num(x):
            x = np.asarray(x, float)
            if x.ndim == 0:
                return float(x) if math.isfinite(float(x)) else None
            return [float(v) if math.isfinite(float(v)) else None for v in x.ravel()]

        all_params = {}
        if isinstance(self.params, hhjax.HHParams):
            for f in dataclasses.fields(self.params):
                val = getattr(self.params, f.name)
                if eqx.is_array_like(val):
                    all_params[f.name] = num(val)
        return {
            "params": {k: num(v) for k, v in self.values.items()},
            "stderr": {k: num(v) for k, v in self.stderr.items()},
            "remaining_step": {k: num(v) for k, v in self.remaining_step.items()},
            "correlation": {
                "names": list(self.correlation_names),
                "matrix": [num(row) for row in np.asarray(self.correlation)],
            },
            "identifiable": dict(self.identifiable),
            "noise_sigma_mV": num(self.noise_sigma),
            "data_noise_sigma_mV": num(self.data_noise_sigma),
            "loss": num(self.loss),
            "rmse_mV": num(self.rmse),
            "status": self.status,
            "evaluations": int(self.evaluations),
            "wall_time_s": float(self.wall_time),
            "best_start": int(self.best_start),
            "starts": [
                {
                    "values": {k: num(v) for k, v in s["values"].items()},
                    "loss": num(s["loss"]),
                    "evaluations": int(s["evaluations"]),
                    "converged": bool(s["converged"]),
                }
                for s in self.starts
            ],
            "spread": {k: [num(a), num(b)] for k, (a, b) in self.spread.items()},
            "history": [[s, int(k), num(v)] for s, k, v in self.history],
            "all_params": all_params,
            "settings": self.settings,
            "warnings": list(self.warnings),
            "versions": versions(),
        }


def versions() -> dict[str, str]:
    """Versions of hhjax and the libraries a fit depends on: name → version string
    (`hhjax`, `python`, and `jax`, `jaxlib`, `diffrax`, `equinox`, `optax`,
    `optimistix`, `numpy` where importable); recorded in every `fit.json`.

    **Example:**

    ```pycon
    >>> import fitting, hhjax
    >>> v = fitting.versions()
    >>> {"hhjax", "python", "jax", "diffrax", "numpy"} <= set(v)
    True
    >>> v["hhjax"] == hhjax.__version__
    True

    ```
    """
    import platform

    out = {"hhjax": hhjax.__version__, "python": platform.python_version()}
    for mod in ("jax", "jaxlib", "diffrax", "equinox", "optax", "optimistix", "numpy"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # pragma: no cover - a missing optional library
            pass
    return out


class FitInterrupted(KeyboardInterrupt):
    """Raised by [`fitting.fit`][] on Ctrl-C, after the checkpoint (if any) was
    written. `.result` holds the best-so-far [`fitting.FitResult`][]
    (`status="interrupted"`, standard errors not computed).

    A subclass of `KeyboardInterrupt` (so an uncaught one still stops a script).

    **Example:**

    ```pycon
    >>> import fitting
    >>> issubclass(fitting.FitInterrupted, KeyboardInterrupt)
    True

    ```

    ```python
    try:
        res = fitting.fit(params, rec, checkpoint="fit.ckpt")
    except fitting.FitInterrupted as stop:
        res = stop.result            # best so far; fit(..., resume=True) continues
    ```
    """

    def __init__(self, result: FitResult):
        super().__init__("fit interrupted; best-so-far result in .result")
        self.result = result


# --------------------------------------------------------------------------------------
# progress and checkpoints


class _Progress:
    def __init__(self, enabled: bool, stream=None):
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()

    def update(self, stage: str, k: int, n: int, loss: float, done: int, total: int):
        if not self.enabled:
            return
        width = 24
        filled = int(width * k / max(n, 1))
        bar = "#" * filled + "-" * (width - filled)
        msg = (
            f"\r{stage:>12} [{bar}] {k:>4}/{n:<4} loss {loss:11.5g}  "
            f"starts done {done}/{total}  {time.perf_counter() - self.t0:6.1f} s"
        )
        self.stream.write(msg)
        self.stream.flush()

    def end_stage(self):
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def check_checkpoint(checkpoint, resume: bool) -> None:
    """A checkpoint file must be writable where it is named, checked before any
    work (a fit that fails to write its first checkpoint would lose its steps)."""
    if resume and checkpoint is None:
        raise ValueError("`resume=True` needs `checkpoint=` (the file to resume from).")
    if checkpoint is None:
        return
    if not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(f"`checkpoint` must be a file path, got {type(checkpoint).__name__}.")
    folder = pathlib.Path(checkpoint).resolve().parent
    if not folder.is_dir():
        raise ValueError(
            f"`checkpoint`: the folder {folder} does not exist (create it first)."
        )


def digest(*settings, arrays=(), trees=()) -> str:
    """A short hash identifying a fit or a stage (its checkpoints' fingerprint): the
    reprs of `settings`, the bytes of `arrays`, and the array leaves of `trees`
    (whose reprs show only shapes: the fixed model parameters, loss weights)."""
    h = hashlib.sha256()
    for s in settings:
        h.update(repr(s).encode())
    for arr in arrays:
        h.update(np.ascontiguousarray(arr).tobytes())
    for tree in trees:
        for leaf in jax.tree_util.tree_leaves(tree):
            if eqx.is_array_like(leaf):
                h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
    return h.hexdigest()[:16]


def write_text_atomic(path, text: str) -> None:
    """Write `text` to `path` through a temporary file beside it, so a Ctrl-C or a
    crash mid-write leaves the previous file."""
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _fingerprint(space: ParameterSpace, data: SweepData, n_starts: int, stages,
                 extra=()) -> str:
    return digest((space.names, space.per_sweep, space.initial, n_starts),
                  space.transforms, stages, extra, arrays=(data.t, data.v, data.i),
                  trees=(space.template, stages))


def _save_checkpoint(path, header: dict, state: OptimizerState):
    path = pathlib.Path(path)
    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, state)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(
            f,
            header=np.asarray(json.dumps(header)),
            state=np.frombuffer(buf.getvalue(), dtype=np.uint8),
        )
    os.replace(tmp, path)


def _load_checkpoint(path) -> tuple[dict, bytes]:
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(str(z["header"]))
            blob = z["state"].tobytes()
    except Exception as e:
        raise ValueError(f"Could not read checkpoint {path}: {e}") from e
    if header.get("version") != CHECKPOINT_VERSION:
        raise ValueError(
            f"Checkpoint {path} has version {header.get('version')}, expected "
            f"{CHECKPOINT_VERSION}."
        )
    return header, blob


# --------------------------------------------------------------------------------------
# uncertainty


def _uncertainty(problem: _Problem, sdata: SweepData, U: Array, b: int):
    """Standard errors and correlations from the Gauss–Newton Hessian of the raw
    trace residuals at the best start `U[b]`, mapped to the physical parameters.

    One Levenberg–Marquardt evaluation (the compiled step the fit already used)
    gives `JᵀJ` and the loss in optimiser coordinates `u` for every start; with
    `θ = T(u)`, `Cov(θ) = D Cov(u) Dᵀ`, `D = ∂θ/∂u`, `Cov(u) = σ² (JᵀJ)⁻¹` and
    `σ² = RSS / (N − p)`.
    """
    space = problem.space
    objective = _Objective(problem, TraceLoss().bind(sdata))
    opt, objective = _prepare(LevenbergMarquardt(), objective)
    st = _vstep(opt, _vinit(opt, U, objective), objective)
    g_all, A_all, _ = st.extra
    A = np.asarray(A_all[b], float)
    g = np.asarray(g_all[b], float)
    loss = float(st.loss[b])
    N = int(sdata.v.size)
    p = A.shape[0]
    ub = U[b]

    def flat_theta(u):
        vals = space.to_values(u)
        return jnp.concatenate([jnp.ravel(vals[n]) for n in space.names])

    D = np.asarray(jax.jacfwd(flat_theta)(ub), float)
    theta = np.asarray(flat_theta(ub), float)
    sigma2_over = loss / max(N - p, 1)  # = σ²/N in the loss normalisation
    with np.errstate(all="ignore"):  # a failed start gives inf/NaN: reported as such
        return _covariance(space, A, D, theta, sigma2_over, loss, N, p, g)


def _covariance(space, A, D, theta, sigma2_over, loss, N, p, g):
    flat_names, flat_tr = [], []
    for n, tr in zip(space.names, space.transforms):
        if n in space.per_sweep:
            flat_names += [f"{n}[{k}]" for k in range(space.n_sweeps)]
            flat_tr += [tr] * space.n_sweeps
        else:
            flat_names.append(n)
            flat_tr.append(tr)
    A = np.where(np.isfinite(A), A, 0.0)
    scale = np.sqrt(np.maximum(np.diag(A), 1e-300))
    As = A / np.outer(scale, scale)
    w, V = np.linalg.eigh(As)
    wmax = max(float(w.max()), 1e-300)
    singular = bool(np.any(w <= 1e-12 * wmax)) or not np.isfinite(loss)
    inv_w = 1.0 / np.maximum(w, 1e-12 * wmax)
    cov_u = sigma2_over * ((V * inv_w) @ V.T) / np.outer(scale, scale)
    cov = D @ cov_u @ D.T
    se = np.sqrt(np.maximum(np.diag(cov), 0.0))
    # the Gauss–Newton step from the result, δ = −(JᵀJ)⁻¹ Jᵀr (g = Jᵀr): at a
    # minimum it is ~0; a step of several standard errors means the fit stopped
    # before the minimum, and the standard errors (the noise's scatter about the
    # minimum) say nothing about how far from it the result is
    g = np.where(np.isfinite(g), g, 0.0)
    step = D @ (-((V * inv_w) @ (V.T @ (g / scale))) / scale)
    with np.errstate(divide="ignore", invalid="ignore"):
        step_se = np.abs(step) / se
    d = np.maximum(se, 1e-300)
    corr = np.clip(cov / np.outer(d, d), -1.0, 1.0)
    # away from the minimum no standard error holds, not even along parameters whose
    # own step is short: the step is a linearisation, and the others' moving shifts
    # them too (a synthetic cell: g_m 3.6 standard errors off with a step of 1.5,
    # while g_kd's was 39)
    z = np.where(np.isfinite(step_se), step_se, -np.inf)
    worst = int(np.argmax(z)) if z.size else 0
    unconverged = bool(z.size and z[worst] > MAX_STEP_SE)
    ident, warnings = {}, []
    for k, name in enumerate(flat_names):
        rel = se[k] / max(abs(theta[k]), 1e-12)
        others = np.delete(np.abs(corr[k]), k)
        strong = bool(others.size and others.max() > 0.995)
        moving = bool(step_se[k] > MAX_STEP_SE)
        bound = _at_bound(flat_tr[k], float(theta[k]), float(se[k]))
        ok = bool(np.isfinite(rel) and rel < 0.5 and not strong and not singular
                  and not unconverged and bound is None)
        ident[name] = ok
        if not ok:
            if bound is not None:
                why = bound
            elif singular:
                why = "the Gauss–Newton Hessian is singular"
            elif strong:
                why = f"|correlation| {others.max():.3f} with another parameter"
            elif unconverged:
                why = (f"the fit had not converged: one more Gauss–Newton step would move "
                       f"it by {step[k]:+.3g}, {step_se[k]:.3g} standard errors")
                if not moving:
                    why += (f", and {flat_names[worst]} by {step_se[worst]:.3g}; away "
                            "from the minimum no standard error holds")
            else:
                why = f"relative standard error {rel:.0%}"
            warnings.append(f"{name} is poorly identified by this data ({why}).")
    stderr, remaining, i = {}, {}, 0
    for n in space.names:
        if n in space.per_sweep:
            stderr[n] = se[i : i + space.n_sweeps].copy()
            remaining[n] = step[i : i + space.n_sweeps].copy()
            i += space.n_sweeps
        else:
            stderr[n] = float(se[i])
            remaining[n] = float(step[i])
            i += 1
    return dict(
        stderr=stderr,
        remaining_step=remaining,
        correlation=corr,
        correlation_names=tuple(flat_names),
        identifiable=ident,
        noise_sigma=math.sqrt(loss * N / max(N - p, 1)),
        rmse=math.sqrt(loss),
        warnings=warnings,
    )


# --------------------------------------------------------------------------------------
# fit


def _sweep_data(recording: hhjax.Recording) -> SweepData:
    i = recording.i_samples
    if i is None:
        i = recording.current_density()
    return SweepData(
        t=np.asarray(recording.t_ms, float),
        v=np.asarray(recording.v_mV, float),
        i=np.asarray(i, float),
    )


def _dynamic(module):
    """The module with its top-level float/int fields as JAX arrays, so modules
    that differ only in such numbers (tolerances, step budgets) share one
    compilation."""
    if not dataclasses.is_dataclass(module):
        return module
    changes = {}
    for f in dataclasses.fields(module):
        if f.metadata.get("static", False):
            continue
        val = getattr(module, f.name)
        if isinstance(val, (float, int)) and not isinstance(val, bool):
            changes[f.name] = jnp.asarray(val, float if isinstance(val, float) else int)
    if not changes:
        return module
    names = list(changes)
    return eqx.tree_at(
        lambda m: [getattr(m, n) for n in names], module, [changes[n] for n in names]
    )


def _prepare(optimizer, objective):
    sim = _dynamic(objective.problem.simulator)
    objective = eqx.tree_at(lambda o: o.problem.simulator, objective, sim)
    return _dynamic(optimizer), objective


@eqx.filter_jit
def _vinit(optimizer, u, objective):
    return jax.vmap(optimizer.init, in_axes=(0, None))(u, objective)


@eqx.filter_jit
def _vstep(optimizer, state, objective):
    return jax.vmap(optimizer.step, in_axes=(0, None))(state, objective)


def fit(
    params: Any,
    data: hhjax.Recording,
    fit: Sequence[str] | str = DEFAULT_FIT,
    *,
    bounds: Mapping[str, Any] | None = None,
    loss: AbstractLoss | None = None,
    optimizer: AbstractOptimizer | optax.GradientTransformation | None = None,
    stages: Sequence[Stage] | None = None,
    starts: int = 1,
    key: Array | None = None,
    spread: float = 0.3,
    init: str = "auto",
    simulator: AbstractSimulator | None = None,
    per_sweep: Sequence[str] = (),
    area_cm2: float | None = None,
    capacitance_pF: float | None = None,
    uncertainty: bool = True,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 10,
    resume: bool = False,
    progress: bool | None = None,
    callback: Callable[[str, int, OptimizerState], None] | None = None,
    retry: bool | None = None,
    time_budget_s: float | None = None,
    devices: Sequence[Any] | None = None,
    _start_values: Sequence[Mapping[str, float]] | None = None,
) -> FitResult:
    """Fit model parameters to recorded voltage traces.

    **Arguments:**

    - `params`: the initial model, an [`hhjax.HHParams`][] (or another model pytree
      with your own `simulator`); parameters not fitted keep these values.
    - `data`: an [`hhjax.Recording`][] (sweeps × samples, with the injected current).
    - `fit`: names of the parameters to fit (fields of `params`; `"area_cm2"` or
      `"capacitance_pF"` for recordings in pA), a sequence or a comma-separated
      string. Default: `g_na, g_k, g_leak, e_na, e_k, e_leak`.
    - `bounds`: name → `(lower, upper)` (the parameter's unit) or a fitting
      transform. Defaults: potentials ±60 mV around the start, positive parameters
      a factor 5 either way (see [`fitting.ParameterSpace`][]).
    - `loss`, `optimizer`: a single-stage fit with this loss (default
      [`fitting.TraceLoss`][]) and optimiser (default
      [`fitting.LevenbergMarquardt`][]; an optax transformation is wrapped in
      [`fitting.Optax`][] with 1000 steps). Give neither for the default strategy.
    - `stages`: explicit [`fitting.Stage`][]s (overrides `loss`/`optimizer`). Default
      strategy: [`fitting.default_stages`][].
    - `starts`: number of starting points optimised in parallel (`vmap`). Start 0 is
      the initial guess; the others are drawn uniformly within ±`spread` (relative)
      around it, inside the bounds, from `key`.
    - `key`: a JAX PRNG key (required when `starts > 1`).
    - `devices`: JAX devices (e.g. `jax.devices()`) to shard the starts over: the
      starts' parameter vectors and optimiser states are laid out along a 1-D mesh
      (`jax.sharding.NamedSharding`), so each device optimises its share of the
      starts (the recording is replicated). `starts` must be a multiple of the
      number of devices. Works unchanged from one CPU to many GPUs, and across hosts
      after `jax.distributed.initialize()` with the global `jax.devices()`.
    - `init`: `"auto"` (teacher-forced regression for the conductances and reversal
      potentials of an `HHParams` fit, see [`fitting.teacher_forced_estimate`][]),
      `"teacher_forced"` or `"initial"` (start from `params` as given).
    - `simulator`: how sweeps are simulated (default [`fitting.HHSimulator`][]).
    - `per_sweep`: fitted names that get one value per sweep.
    - `area_cm2` / `capacitance_pF`: the membrane area [cm²] or total capacitance
      [pF] for a recording in pA (overrides the recording's; also the start when
      fitted).
    - `uncertainty`: compute standard errors and correlations (default True).
    - `checkpoint`: a file written every `checkpoint_every` steps, at the end of each
      stage and on Ctrl-C; with `resume=True` an existing checkpoint of the same
      problem is continued (the result is the same as an uninterrupted run).
    - `progress`: show a progress bar on stderr (default: when stderr is a terminal).
    - `callback`: called as `callback(stage_name, step, state)` after every step.
    - `retry`: if the fit ends with a residual σ above `1.03 σ̂ + 0.02 mV` (σ̂: the
      recording's noise, [`fitting.estimate_noise_sigma`][]) — the sign of a local
      minimum —, run the stages again from the other starting points (the
      unweighted teacher-forced estimate and `params` as given, vmapped) and keep
      the better result. Default: on for the default strategy without checkpoints
      and with one start (it then costs time only on fits that end above the noise;
      on data the model cannot reproduce to the noise level that is every fit).
      With your own stages it needs `uncertainty=True` (the residual σ).
    - `time_budget_s`: wall-time budget of the stages [s], compilation included
      (default `None`: the step counts alone). A step is not started when, at the
      last step's pace, it would end after the budget (the first step always runs);
      the fit then ends with `status == "time_budget"` from its best point so far,
      skipping later stages and the retry. The standard errors are computed after
      it, outside the budget.

    **Returns:** a [`fitting.FitResult`][].

    **Raises:** `TypeError`/`ValueError` for invalid arguments (before any
    computation); [`fitting.FitInterrupted`][] on Ctrl-C (holding the best-so-far
    result). A start whose simulation fails is reported with an infinite loss; if
    every start fails, `ValueError` says so.

    **Example:**

    ```python
    import hhjax, fitting
    rec = hhjax.load_recording("cell.npz")
    res = fitting.fit(hhjax.HHParams(), rec, ("g_na", "g_k", "g_leak"))
    print(res.values, res.stderr)
    ```
    """
    t_wall = time.perf_counter()
    if not isinstance(data, hhjax.Recording):
        raise TypeError(
            "`data` must be an hhjax.Recording (see hhjax.load_recording or "
            f"hhjax.Recording(t_ms, v_mV, i_uA_per_cm2=...)), got {type(data).__name__}."
        )
    if isinstance(fit, str):
        fit = tuple(n.strip() for n in fit.split(",") if n.strip())
    fit = tuple(fit)
    if int(starts) != starts or starts < 1:
        raise ValueError(f"`starts` must be a positive integer, got {starts!r}.")
    starts = int(starts)
    default_strategy = stages is None and loss is None and optimizer is None
    if _start_values is not None:
        starts = len(_start_values)
    if devices is not None:
        devices = list(devices)
        n_dev = len(devices)
        n_starts = len(_start_values) if _start_values is not None else starts
        if n_dev == 0:
            raise ValueError("`devices` must be a non-empty list of JAX devices or None.")
        if n_starts % n_dev:
            raise ValueError(
                f"`starts` ({n_starts}) must be a multiple of the number of `devices` "
                f"({n_dev}) to shard the starts over them."
            )
    if starts > 1 and key is None and _start_values is None:
        raise ValueError("`key` (a jax.random.key) is required when `starts` > 1.")
    if not (0 <= spread < 1):
        raise ValueError(f"`spread` must be in [0, 1) (relative), got {spread}.")
    if init not in ("auto", "teacher_forced", "initial"):
        raise ValueError(
            f"`init` must be 'auto', 'teacher_forced' or 'initial', got {init!r}."
        )
    if int(checkpoint_every) != checkpoint_every or checkpoint_every < 1:
        raise ValueError(f"`checkpoint_every` must be a positive integer, got {checkpoint_every}.")
    check_budget("time_budget_s", time_budget_s)
    check_checkpoint(checkpoint, resume)
    if simulator is None:
        simulator = HHSimulator()
    if not isinstance(simulator, AbstractSimulator):
        raise TypeError(f"`simulator` must be a fitting simulator, got {simulator!r}.")
    if isinstance(optimizer, optax.GradientTransformation):
        optimizer = Optax(optimizer)
    if optimizer is not None and not isinstance(optimizer, AbstractOptimizer):
        raise TypeError(
            "`optimizer` must be fitting.LevenbergMarquardt(...), fitting.adam(...), "
            f"fitting.Optax(...) or an optax transformation, got {optimizer!r}."
        )
    if loss is not None and not isinstance(loss, AbstractLoss):
        raise TypeError(f"`loss` must be a fitting loss (e.g. fitting.TraceLoss()), got {loss!r}.")

    # ---- the data and the current scaling
    recording = data
    area = area_cm2 if area_cm2 is not None else getattr(recording, "area_cm2", None)
    if capacitance_pF is not None:
        c_m = float(np.asarray(getattr(params, "c_m", 1.0)))
        area = float(capacitance_pF) * 1e-6 / c_m
    scale_mode = "none"
    rec_values: dict[str, float] = {}
    if "area_cm2" in fit and "capacitance_pF" in fit:
        raise ValueError("Fit at most one of `area_cm2` and `capacitance_pF`.")
    for name in RECORDING_PARAMETERS:
        if name in fit:
            if recording.current_unit != "pA":
                raise ValueError(
                    f"`{name}` can only be fitted for recordings whose current is in pA "
                    f"(this one has {recording.current_unit or 'a stimulus object'})."
                )
            if area is None:
                raise ValueError(
                    f"Fitting `{name}` needs a starting value: pass area_cm2= or "
                    "capacitance_pF=."
                )
            scale_mode = name
            c_m = float(np.asarray(getattr(params, "c_m", 1.0)))
            rec_values = {"area_cm2": float(area), "capacitance_pF": float(area) * c_m * 1e6}
    if recording.current_unit == "pA":
        if scale_mode == "none":
            if area is None:
                raise ValueError(
                    "This recording's current is in pA: give the membrane area "
                    "(`area_cm2=`) or total capacitance (`capacitance_pF=`), or fit one "
                    "of them (`fit=(..., 'area_cm2')`)."
                )
            stimulus = recording.stimulus(area_cm2=float(area))
        else:
            stimulus = recording.stimulus(area_cm2=1.0)
            if not isinstance(stimulus, hhjax.SampledCurrent):
                raise TypeError("Fitting the area needs a sampled current in pA.")
    else:
        stimulus = recording.stimulus()
    sdata = _sweep_data(recording)
    S = sdata.v.shape[0]

    space = ParameterSpace(
        params, fit, bounds, per_sweep=per_sweep, n_sweeps=S, recording_values=rec_values
    )
    dtype = _template_dtype(params)
    ts = jnp.asarray(sdata.t, dtype)
    problem = _Problem(
        space=space,
        stimulus=stimulus,
        ts=ts,
        t_span=(float(sdata.t[0]), float(sdata.t[-1])),
        simulator=simulator,
        scale_mode=scale_mode,
    )

    # ---- stages
    stages_arg = stages
    if stages is not None:
        stages = tuple(stages)
        if not stages or not all(isinstance(s, Stage) for s in stages):
            raise TypeError("`stages` must be a non-empty sequence of fitting.Stage.")
    elif loss is not None or optimizer is not None:
        stages = (
            Stage(optimizer if optimizer is not None else LevenbergMarquardt(), loss, name="fit"),
        )
    else:
        stages = default_stages(float(sdata.t[0]), float(sdata.t[-1]))
    bound_losses = []
    for st in stages:
        lo = st.loss if st.loss is not None else (loss if loss is not None else TraceLoss())
        bound_losses.append(lo.bind(sdata))
    objectives = []
    for st, bl in zip(stages, bound_losses):
        sim = st.simulator if st.simulator is not None else simulator
        objectives.append(_Objective(eqx.tree_at(lambda p: p.simulator, problem, sim), bl))

    # ---- starting points
    start_values = {n: float(v) for n, v in zip(space.names, space.initial)}
    init_used = "initial"
    want_tf = init == "teacher_forced" or (
        init == "auto"
        and isinstance(params, hhjax.HHParams)
        and any(n in LINEAR_PARAMETERS for n in fit)
        and not per_sweep
    )
    if init == "teacher_forced" and not isinstance(params, hhjax.HHParams):
        raise ValueError("`init='teacher_forced'` needs an hhjax.HHParams model.")
    header_settings = {
        "fit": list(fit),
        "starts": starts,
        "spread": spread,
        "stages": [
            {
                "name": s.name,
                "optimizer": type(s.optimizer).__name__,
                "steps": int(s.optimizer.steps),
                "loss": type(s.loss).__name__ if s.loss is not None else None,
            }
            for s in stages
        ],
        "per_sweep": list(per_sweep),
        "bounds": {
            n: _describe(tr) for n, tr in zip(space.names, space.transforms)
        },
        "n_sweeps": S,
        "n_samples": int(sdata.t.size),
        "area_cm2": None if area is None else float(area),
    }
    fingerprint = _fingerprint(
        space, sdata, starts, stages, extra=(area, scale_mode, repr(simulator), repr(loss))
    )
    resume_header = resume_blob = None
    if resume and checkpoint is not None and pathlib.Path(checkpoint).exists():
        resume_header, resume_blob = _load_checkpoint(checkpoint)
        if resume_header.get("fingerprint") != fingerprint:
            raise ValueError(
                f"Checkpoint {checkpoint} belongs to a different fit (other data, "
                "parameters, starts or stages); remove it or drop `resume`."
            )

    def tf_estimate(reweight):
        density = (
            recording.current_density(area_cm2=float(area) if area is not None else None)
            if recording.current_unit == "pA"
            else recording.current_density()
        )
        return teacher_forced_estimate(
            params,
            sdata.t,
            sdata.v,
            density,
            [n for n in fit if n in LINEAR_PARAMETERS],
            bounds={
                n: (tr.lower, tr.upper)
                for n, tr in zip(space.names, space.transforms)
                if isinstance(tr, Bounded)
            },
            reweight=reweight,
        )

    initial_values = dict(start_values)
    if _start_values is not None:
        want_tf = False
        init_used = "explicit starts"
    if resume_header is None and want_tf:
        try:
            start_values.update(tf_estimate(3))
            init_used = "teacher_forced"
        except (ValueError, np.linalg.LinAlgError) as e:
            if init == "teacher_forced":
                raise
            init_used = f"initial (teacher-forced regression failed: {e})"
    if resume_header is not None:
        init_used = resume_header["settings"].get("init", init_used)
    header_settings["init"] = init_used
    u0 = space.to_vector(
        {
            n: (jnp.full((S,), v) if n in space.per_sweep else v)
            for n, v in start_values.items()
        }
    )
    u0 = jnp.asarray(u0, dtype)

    def vector(values):
        return jnp.asarray(
            space.to_vector(
                {
                    n: (jnp.full((S,), v) if n in space.per_sweep else v)
                    for n, v in {**initial_values, **values}.items()
                }
            ),
            dtype,
        )

    if _start_values is not None:
        U = jnp.stack([vector(sv) for sv in _start_values])
    elif starts > 1:
        others = space.sample(key, starts - 1, start_values, spread).astype(dtype)
        U = jnp.concatenate([u0[None], others], axis=0)
    else:
        U = u0[None]

    def place(u):
        """The starts laid out over `devices` (one shard of starts per device)."""
        if devices is None or len(devices) < 2:
            return u
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        mesh = Mesh(np.asarray(devices), ("starts",))
        return jax.device_put(u, NamedSharding(mesh, PartitionSpec("starts")))

    U = place(U)
    u_first = U
    # ---- the stage loop
    if progress is None:
        progress = sys.stderr.isatty()
    bar = _Progress(bool(progress))
    history: list[tuple[str, int, float]] = []
    state = None
    first_stage, first_step = 0, 0
    if resume_header is not None:
        first_stage = int(resume_header["stage"])
        first_step = int(resume_header["step"])
        history = [tuple(h) for h in resume_header["history"]]
        U = place(jnp.asarray(np.asarray(resume_header["u_start"]), dtype))
    status = "converged"
    stage_i = first_stage
    k = first_step

    def header(stage_idx, step_idx, u_start, evals, has_state=True):
        return {
            "version": CHECKPOINT_VERSION,
            "fingerprint": fingerprint,
            "stage": stage_idx,
            "step": step_idx,
            "has_state": has_state,
            "evaluations": np.asarray(evals).tolist(),
            "history": history,
            "u_start": np.asarray(u_start).tolist(),
            "settings": header_settings,
        }

    u_stage_start = U
    evals_done = np.asarray(resume_header["evaluations"]) if resume_header else np.zeros(starts, int)
    def past_budget(pace_s: float = 0.0) -> bool:
        # would work taking `pace_s` from now end after the budget?
        return (time_budget_s is not None
                and time.perf_counter() - t_wall + pace_s > time_budget_s)

    try:
        for stage_i in range(first_stage, len(stages)):
            if (stage_i > first_stage and not stages[stage_i - 1].branch
                    and past_budget()):
                status = "time_budget"  # spent before this stage: keep the last one's
                break
            st = stages[stage_i]
            opt, obj = _prepare(st.optimizer, objectives[stage_i])
            name = st.name or f"stage {stage_i}"
            state = _vinit(opt, U, obj)
            u_stage_start = U
            k = 0
            if resume_header is not None and stage_i == first_stage:
                if resume_header["has_state"]:
                    state = eqx.tree_deserialise_leaves(io.BytesIO(resume_blob), state)
                    k = first_step
            # step 1 evaluates the start (the optimisers' init states are blank)
            n_steps = int(st.optimizer.steps) + 1
            while k < n_steps:
                if bool(jnp.all(state.done)):
                    break
                t_step = time.perf_counter()
                state = _vstep(opt, state, obj)
                k += 1
                best = float(jnp.min(state.best_loss))
                history.append((name, k, best))
                bar.update(name, k, n_steps, best, int(jnp.sum(state.done)), int(state.done.shape[0]))
                if callback is not None:
                    callback(name, k, state)
                if checkpoint is not None and k % checkpoint_every == 0:
                    _save_checkpoint(
                        checkpoint, header(stage_i, k, u_stage_start, evals_done), state
                    )
                if (k < n_steps and not bool(jnp.all(state.done))
                        and past_budget(time.perf_counter() - t_step)):
                    status = "time_budget"  # the next step would end past the budget
                    break
            bar.end_stage()
            if status == "time_budget":
                if checkpoint is not None:  # a resume continues this stage at step k
                    _save_checkpoint(
                        checkpoint, header(stage_i, k, u_stage_start, evals_done), state
                    )
                U = state.best_u
                evals_done = evals_done + np.asarray(state.evaluations)
                break
            if stage_i == len(stages) - 1 and not bool(jnp.all(state.done)):
                status = "max_steps"
            if st.branch:
                # later stages continue from both this stage's input and its result
                evals_done = np.concatenate(
                    [evals_done, evals_done + np.asarray(state.evaluations)]
                )
                U = jnp.concatenate([U, state.best_u], axis=0)
            else:
                evals_done = evals_done + np.asarray(state.evaluations)
                U = state.best_u
            resume_header = None
            if checkpoint is not None:
                # the next stage starts from U (no optimiser state yet)
                _save_checkpoint(
                    checkpoint,
                    header(stage_i + 1, 0, U, evals_done, has_state=False),
                    state,
                )
        if state is None:
            # resumed from a checkpoint written after the last stage: evaluate there
            opt, obj = _prepare(stages[-1].optimizer, objectives[-1])
            state = _vstep(opt, _vinit(opt, U, obj), obj)
    except KeyboardInterrupt:
        bar.end_stage()
        if state is not None and checkpoint is not None:
            _save_checkpoint(
                checkpoint, header(stage_i, k, u_stage_start, evals_done), state
            )
        best_u = state.best_u if state is not None else U
        best_loss = state.best_loss if state is not None else jnp.full((starts,), jnp.nan)
        evals = evals_done + (np.asarray(state.evaluations) if state is not None else 0)
        result = _make_result(
            problem, sdata, space, best_u, best_loss, evals, history, "interrupted",
            header_settings, t_wall, uncertainty=False,
        )
        raise FitInterrupted(result) from None

    # uncertainty with the last stage's simulator (the tight one by default)
    result = _make_result(
        objectives[-1].problem,
        sdata, space, state.best_u, state.best_loss, evals_done, history, status,
        header_settings, t_wall, uncertainty=uncertainty,
    )
    if retry is None:
        retry = default_strategy and checkpoint is None and starts == 1 and _start_values is None
    if not retry or _start_values is not None or status == "time_budget":
        return result
    # ---- retry from the other starting points when the fit ended above the noise
    sigma_fit = math.sqrt(max(result.loss, 0.0)) if default_strategy else result.noise_sigma
    if not math.isfinite(sigma_fit):
        sigma_fit = result.noise_sigma
    sigma_data = result.data_noise_sigma
    if not (
        math.isfinite(sigma_fit)
        and math.isfinite(sigma_data)
        and sigma_fit > RETRY_RATIO * sigma_data + RETRY_MARGIN_MV
    ):
        return result
    candidates = []
    if init_used == "teacher_forced":
        try:
            candidates.append(tf_estimate(0))
        except (ValueError, np.linalg.LinAlgError):
            pass
    candidates.append({})  # `params` as given
    used = [np.asarray(U_i) for U_i in np.asarray(u_first)]
    alts = []
    for c in candidates:
        u_c = np.asarray(vector(c))
        if all(np.max(np.abs(u_c - u)) > 1e-6 for u in used):
            used.append(u_c)
            alts.append(c)
    if not alts:
        return result
    left_s = (None if time_budget_s is None
              else time_budget_s - (time.perf_counter() - t_wall))
    if left_s is not None and left_s <= 0:
        return result
    second = _call_fit(
        params, data, fit, bounds=bounds, loss=loss, optimizer=optimizer,
        stages=stages_arg, init="initial", simulator=simulator, per_sweep=per_sweep,
        area_cm2=area_cm2, capacitance_pF=capacitance_pF, uncertainty=uncertainty,
        progress=progress, callback=callback, retry=False, _start_values=alts,
        time_budget_s=left_s,
    )
    note = (
        f"The first pass ended with a residual σ of {sigma_fit:.3g} mV, above the "
        f"recording's noise ({sigma_data:.3g} mV): the stages were run again from "
        f"{len(alts)} other start(s); "
    )
    best, other = (second, result) if second.loss < result.loss else (result, second)
    note += "the retry found the better fit." if best is second else "the first pass was better."
    settings = dict(best.settings)
    settings["init"] = result.settings.get("init")
    settings["retry"] = {
        "first_pass_loss": float(result.loss),
        "retry_loss": float(second.loss),
        "retry_starts": len(alts),
        "kept": "retry" if best is second else "first",
    }
    return dataclasses.replace(
        best,
        history=list(result.history) + [(f"retry {n}", k, v) for n, k, v in second.history],
        evaluations=int(best.evaluations + other.evaluations),
        wall_time=time.perf_counter() - t_wall,
        settings=settings,
        warnings=tuple(best.warnings) + (note,),
    )


def check_budget(name: str, value) -> None:
    """`ValueError` unless `value` is None or a finite wall time > 0 [s]."""
    if value is not None and not (
        isinstance(value, (int, float, np.floating, np.integer))
        and not isinstance(value, bool) and math.isfinite(value) and value > 0
    ):
        raise ValueError(
            f"`{name}` must be None or a wall time > 0 [s], got {value!r}.")


def _call_fit(*args, **kwargs):
    # `fit` is shadowed inside `fit` by its argument of the same name
    return fit(*args, **kwargs)


def _make_result(problem, sdata, space, best_u, best_loss, evals, history, status,
                 settings, t_wall, *, uncertainty):
    best_u = jnp.asarray(best_u)
    losses = np.asarray(best_loss, float)
    finite = np.isfinite(losses)
    if not finite.any():
        if status == "interrupted":
            b = 0
        else:
            raise ValueError(
                "Every start failed (non-finite loss: the simulation failed or "
                "diverged at every starting point). Check the units of the data "
                "(mV, ms, µA/cm² or pA with an area), the bounds and the initial "
                "parameters."
            )
    else:
        b = int(np.nanargmin(np.where(finite, losses, np.nan)))
    ub = best_u[b]
    values = {k: np.asarray(v) for k, v in space.to_values(ub).items()}
    values = {k: (float(v) if v.ndim == 0 else v) for k, v in values.items()}
    params = space.to_params(ub)
    starts = []
    best = losses[b]
    for s in range(len(losses)):
        vs = {k: np.asarray(v) for k, v in space.to_values(best_u[s]).items()}
        starts.append(
            {
                "values": {k: (float(v) if v.ndim == 0 else v) for k, v in vs.items()},
                "loss": float(losses[s]),
                "evaluations": int(evals[s]),
                "converged": bool(
                    np.isfinite(losses[s]) and losses[s] <= best * 1.01 + 1e-12
                ),
            }
        )
    spread = {}
    conv = [s for s in starts if s["converged"]]
    for n in space.names:
        arr = np.array([np.mean(s["values"][n]) for s in conv])
        spread[n] = (float(arr.min()), float(arr.max()))
    nan_names = {n: (np.full(space.n_sweeps, np.nan) if n in space.per_sweep else math.nan) for n in space.names}
    unc = dict(
        stderr=nan_names,
        remaining_step=nan_names,
        correlation=np.full((1, 1), np.nan),
        correlation_names=(),
        identifiable={},
        noise_sigma=math.nan,
        rmse=math.nan,
        warnings=[],
    )
    if uncertainty:
        unc = _uncertainty(problem, sdata, best_u, b)
    data_sigma = estimate_noise_sigma(sdata.v)
    fit_sigma = unc["noise_sigma"]
    if (
        math.isfinite(fit_sigma)
        and math.isfinite(data_sigma)
        and fit_sigma > NOISE_RATIO * data_sigma + NOISE_MARGIN_MV
    ):
        unc["warnings"] = list(unc["warnings"]) + [
            f"The residual σ {fit_sigma:.3g} mV is {fit_sigma / max(data_sigma, 1e-12):.2g}× "
            f"the recording's noise ({data_sigma:.3g} mV, estimated from its "
            "sample-to-sample scatter): the fit has probably ended in a local minimum "
            "(try more starts: `starts=`, `key=`), or the model cannot reproduce the "
            "data. (For low-pass filtered recordings the noise estimate is too low.)"
        ]
    return FitResult(
        params=params,
        values=values,
        stderr=unc["stderr"],
        remaining_step=unc["remaining_step"],
        correlation=unc["correlation"],
        correlation_names=unc["correlation_names"],
        identifiable=unc["identifiable"],
        noise_sigma=unc["noise_sigma"],
        loss=float(best),
        rmse=unc["rmse"],
        history=list(history),
        starts=starts,
        best_start=b,
        spread=spread,
        status=status,
        evaluations=int(evals[b]),
        wall_time=time.perf_counter() - t_wall,
        settings=settings,
        names=space.names,
        warnings=tuple(unc["warnings"]),
        data_noise_sigma=data_sigma,
    )



