"""Parameter transforms and the parameter space of a fit.

The optimiser works on an unconstrained, well-scaled vector `u` (entries of order
one); each free parameter maps to and from it through a transform:

- [`fitting.Bounded`][]: `lower + (upper − lower)·sigmoid(u)` — box constraints.
- [`fitting.Positive`][]: `scale·softplus(u)` — positivity without an upper bound.
- [`fitting.Affine`][]: `loc + scale·u` — unbounded, only rescaled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

#: Pseudo-parameters that belong to the recording, not the membrane model: the
#: membrane area [cm²] or total capacitance [pF] that turns a current in pA into a
#: density in µA/cm².
RECORDING_PARAMETERS = ("area_cm2", "capacitance_pF")


class AbstractTransform(eqx.Module):
    """Maps an unconstrained optimiser variable `u` to a parameter value and back.

    Subclasses implement `forward(u) -> value` (in the parameter's unit),
    `inverse(value) -> u`, `contains(value) -> bool` and `sample(key, center,
    spread, shape)`; `forward`/`inverse` are elementwise JAX functions (any shape,
    differentiable). Pass one as a value of `bounds=` to [`fitting.fit`][].

    **Example** (a log transform: positive values, `u` is the log-ratio to `scale`):

    ```pycon
    >>> import jax, jax.numpy as jnp, fitting
    >>> class Log(fitting.AbstractTransform):
    ...     scale: float = 1.0
    ...     def forward(self, u):
    ...         return self.scale * jnp.exp(u)
    ...     def inverse(self, value):
    ...         return jnp.log(jnp.asarray(value) / self.scale)
    ...     def contains(self, value):
    ...         return float(value) > 0
    ...     def sample(self, key, center, spread, shape=()):
    ...         return center * jnp.exp(spread * jax.random.normal(key, shape))
    >>> tr = Log(scale=0.3)
    >>> round(float(tr.forward(tr.inverse(0.05))), 6), tr.contains(-1.0)
    (0.05, False)

    ```
    """

    def forward(self, u: ArrayLike) -> Array:
        """Parameter value (in the parameter's unit) of the optimiser variable `u`."""
        raise NotImplementedError

    def inverse(self, value: ArrayLike) -> Array:
        """Optimiser variable `u` of a parameter value."""
        raise NotImplementedError

    def contains(self, value: float) -> bool:
        """Whether `value` is inside the transform's range."""
        raise NotImplementedError

    def sample(self, key, center: float, spread: float, shape=()) -> Array:
        """Random values around `center` (relative `spread`), inside the range."""
        raise NotImplementedError


class Bounded(AbstractTransform):
    """`value = lower + (upper − lower)·sigmoid(u)`: a box `lower < value < upper`.

    **Arguments:** `lower`, `upper` (same unit as the parameter), `lower < upper`.
    `forward`/`inverse` work elementwise on arrays of any shape (values outside the
    box are clipped just inside it by `inverse`).

    **Raises:** `ValueError` unless `lower < upper`, both finite.

    **Example** (a conductance between 10 and 100 mS/cm²):

    ```pycon
    >>> import fitting
    >>> tr = fitting.Bounded(10.0, 100.0)
    >>> float(tr.forward(0.0)), round(float(tr.inverse(55.0)), 6)   # the midpoint
    (55.0, 0.0)
    >>> round(float(tr.forward(tr.inverse(80.0))), 6), tr.contains(100.0)
    (80.0, False)

    ```
    """

    lower: float
    upper: float

    def __init__(self, lower: float, upper: float):
        lower, upper = float(lower), float(upper)
        if not (math.isfinite(lower) and math.isfinite(upper) and lower < upper):
            raise ValueError(
                f"Bounded needs finite lower < upper, got ({lower}, {upper})."
            )
        self.lower = lower
        self.upper = upper

    def forward(self, u):
        return self.lower + (self.upper - self.lower) * jax.nn.sigmoid(u)

    def inverse(self, value):
        value = jnp.asarray(value)
        span = self.upper - self.lower
        # keep strictly inside so the logit is finite
        s = jnp.clip((value - self.lower) / span, 1e-9, 1 - 1e-9)
        return jnp.log(s) - jnp.log1p(-s)

    def contains(self, value):
        return self.lower < float(value) < self.upper

    def sample(self, key, center, spread, shape=()):
        width = spread * max(abs(center), 1e-12)
        lo = max(self.lower, center - width)
        hi = min(self.upper, center + width)
        if spread == 0 or not lo < hi:
            c = min(max(center, self.lower), self.upper)
            return jnp.full(shape, c)
        margin = 1e-3 * (hi - lo)
        return jax.random.uniform(key, shape, minval=lo + margin, maxval=hi - margin)


class Positive(AbstractTransform):
    """`value = scale·softplus(u)`: any positive value; `scale` sets the unit of `u`
    (use a typical magnitude of the parameter, in its unit). Elementwise on arrays
    of any shape.

    **Raises:** `ValueError` unless `scale > 0` (finite).

    **Example:**

    ```pycon
    >>> import fitting
    >>> tr = fitting.Positive(scale=0.3)                 # e.g. g_leak [mS/cm²]
    >>> round(float(tr.forward(0.0)), 4)                 # 0.3 · log 2
    0.2079
    >>> round(float(tr.forward(tr.inverse(0.05))), 6), tr.contains(-1.0)
    (0.05, False)

    ```
    """

    scale: float

    def __init__(self, scale: float = 1.0):
        scale = float(scale)
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"Positive needs scale > 0, got {scale}.")
        self.scale = scale

    def forward(self, u):
        return self.scale * jax.nn.softplus(u)

    def inverse(self, value):
        x = jnp.maximum(jnp.asarray(value) / self.scale, 1e-12)
        # softplus⁻¹(x) = x + log(−expm1(−x)), stable for large and small x
        return x + jnp.log(-jnp.expm1(-x))

    def contains(self, value):
        return float(value) > 0

    def sample(self, key, center, spread, shape=()):
        lo, hi = center * (1 - spread), center * (1 + spread)
        lo = max(lo, 1e-6 * center)
        return jax.random.uniform(key, shape, minval=lo, maxval=hi)


class Affine(AbstractTransform):
    """`value = loc + scale·u`: unbounded, rescaled so that `u` is of order one.

    **Arguments:** `loc`, `scale` in the parameter's unit (`scale > 0`). Elementwise
    on arrays of any shape.

    **Raises:** `ValueError` for a non-finite `loc` or `scale <= 0`.

    **Example** (a potential around −65 mV, `u` in units of 10 mV):

    ```pycon
    >>> import fitting
    >>> tr = fitting.Affine(loc=-65.0, scale=10.0)
    >>> float(tr.forward(1.5)), float(tr.inverse(-50.0))
    (-50.0, 1.5)

    ```
    """

    loc: float
    scale: float

    def __init__(self, loc: float = 0.0, scale: float = 1.0):
        loc, scale = float(loc), float(scale)
        if not (math.isfinite(loc) and math.isfinite(scale) and scale > 0):
            raise ValueError(f"Affine needs finite loc and scale > 0, got ({loc}, {scale}).")
        self.loc = loc
        self.scale = scale

    def forward(self, u):
        return self.loc + self.scale * u

    def inverse(self, value):
        return (jnp.asarray(value) - self.loc) / self.scale

    def contains(self, value):
        return math.isfinite(float(value))

    def sample(self, key, center, spread, shape=()):
        width = spread * max(abs(center), self.scale)
        return jax.random.uniform(key, shape, minval=center - width, maxval=center + width)


#: Joins the paths of a *tied* parameter: `"gates.m.v_t|gates.h.v_t"` is one fitted
#: value written to both fields.
TIE = "|"


def _get_path(params: Any, path: str) -> Any:
    obj = params
    for part in path.split("."):
        if isinstance(obj, Mapping):
            obj = obj[part]
        else:
            obj = getattr(obj, part)
    return obj


def get_parameter(params: Any, name: str) -> Any:
    """The value of the (possibly dotted, e.g. `"kinetics.x"`) attribute `name`.

    A tied name `"a.x|b.y"` (one value for several fields) reads the first field;
    `ValueError` if the tied fields differ in `params`.
    """
    paths = name.split(TIE)
    first = _get_path(params, paths[0])
    for other in paths[1:]:
        if not np.array_equal(np.asarray(_get_path(params, other)), np.asarray(first)):
            raise ValueError(
                f"The tied parameter {name!r} needs equal starting values in all its "
                f"fields; {paths[0]} = {np.asarray(first)} but {other} = "
                f"{np.asarray(_get_path(params, other))}."
            )
    return first


def set_parameters(params: Any, values: Mapping[str, Any]) -> Any:
    """A copy of `params` with the named (dotted) attributes replaced (`eqx.tree_at`);
    a tied name `"a.x|b.y"` sets every one of its fields."""
    if not values:
        return params
    paths, leaves = [], []
    for n, v in values.items():
        for path in n.split(TIE):
            paths.append(path)
            leaves.append(v)
    return eqx.tree_at(lambda p: [_get_path(p, q) for q in paths], params, leaves)


def _default_transform(name: str, value: float, bound: tuple[float, float] | None):
    if bound is not None:
        lo, hi = bound
        return Bounded(lo, hi)
    if name.startswith("e_") or name in ("v_shift",):
        # potentials [mV]: a ±60 mV box around the start
        return Bounded(value - 60.0, value + 60.0)
    if value > 0:
        # conductances, capacitances, areas: a factor of 5 either way
        return Bounded(value / 5.0, value * 5.0)
    return Affine(value, max(abs(value), 1.0))


class ParameterSpace(eqx.Module):
    """The free parameters of a fit and how the optimiser sees them.

    Built by [`fitting.fit`][] from the parameter names, the initial model and the
    bounds; usable on its own:

    ```python
    space = fitting.ParameterSpace(hhjax.HHParams(), ("g_na", "g_k"),
                                   bounds={"g_na": (50.0, 200.0)})
    u = space.to_vector(space.initial_values())
    params = space.to_params(u)            # an HHParams with g_na, g_k from u
    ```

    **Arguments:**

    - `template`: the model pytree (an `hhjax.HHParams`); fixed parameters are taken
      from it.
    - `names`: names of the free parameters (attributes of `template`, dotted for
      nested ones, or `"area_cm2"` / `"capacitance_pF"` for recordings in pA).
    - `bounds`: name → `(lower, upper)` in the parameter's unit, or a
      [`fitting.AbstractTransform`][]. Default: potentials (`e_*`) ±60 mV around the
      start, positive parameters a factor 5 either way.
    - `per_sweep`: names whose value may differ between sweeps (one copy per
      sweep, e.g. a drifting `e_leak`); all others are shared across sweeps.
    - `n_sweeps`: number of sweeps (needed with `per_sweep`).
    - `recording_values`: starting values of recording pseudo-parameters.
    """

    template: Any
    names: tuple[str, ...] = eqx.field(static=True)
    transforms: tuple[AbstractTransform, ...]
    per_sweep: tuple[str, ...] = eqx.field(static=True)
    n_sweeps: int = eqx.field(static=True)
    initial: tuple[float, ...] = eqx.field(static=True)

    def __init__(
        self,
        template: Any,
        names: Sequence[str],
        bounds: Mapping[str, Any] | None = None,
        *,
        per_sweep: Sequence[str] = (),
        n_sweeps: int = 1,
        recording_values: Mapping[str, float] | None = None,
    ):
        if isinstance(names, str):
            names = tuple(n.strip() for n in names.split(",") if n.strip())
        names = tuple(names)
        if not names:
            raise ValueError("Give at least one parameter name to fit (`fit=`).")
        if len(set(names)) != len(names):
            raise ValueError(f"Parameter names must be unique, got {names}.")
        bounds = dict(bounds or {})
        recording_values = dict(recording_values or {})
        unknown = set(bounds) - set(names)
        if unknown:
            raise ValueError(
                f"`bounds` names parameters that are not fitted: {sorted(unknown)} "
                f"(fitted: {list(names)})."
            )
        per_sweep = tuple(per_sweep)
        bad = set(per_sweep) - set(names)
        if bad:
            raise ValueError(
                f"`per_sweep` names parameters that are not fitted: {sorted(bad)}."
            )
        if int(n_sweeps) < 1:
            raise ValueError(f"`n_sweeps` must be >= 1, got {n_sweeps}.")
        transforms, initial = [], []
        for name in names:
            if name in RECORDING_PARAMETERS:
                if name not in recording_values:
                    raise ValueError(
                        f"`{name}` is fitted but has no starting value: give the "
                        f"recording's {name} or an explicit `{name}=` start."
                    )
                value = float(recording_values[name])
            else:
                try:
                    value = get_parameter(template, name)
                except (AttributeError, KeyError, TypeError):
                    raise ValueError(
                        f"Unknown parameter {name!r}: not a field of "
                        f"{type(template).__name__}"
                        + (
                            f" (fields: {', '.join(f for f in _field_names(template))})"
                            if _field_names(template)
                            else ""
                        )
                        + f", nor one of {RECORDING_PARAMETERS}."
                    ) from None
                if jnp.shape(value) != ():
                    raise ValueError(
                        f"Parameter {name!r} must be a scalar in the initial model, got "
                        f"shape {jnp.shape(value)}."
                    )
                value = float(np.asarray(value))
            if not math.isfinite(value):
                raise ValueError(f"The starting value of {name!r} is not finite: {value}.")
            b = bounds.get(name)
            if isinstance(b, AbstractTransform):
                tr = b
            else:
                if b is not None:
                    try:
                        lo, hi = (float(x) for x in b)
                    except (TypeError, ValueError):
                        raise ValueError(
                            f"`bounds[{name!r}]` must be (lower, upper) or a "
                            f"fitting transform, got {b!r}."
                        ) from None
                    if not lo < hi:
                        raise ValueError(
                            f"`bounds[{name!r}]` must have lower < upper, got {b!r}."
                        )
                    b = (lo, hi)
                tr = _default_transform(name, value, b)
            if not tr.contains(value):
                raise ValueError(
                    f"The starting value {name} = {value:g} lies outside its bounds "
                    f"{_describe(tr)}; widen `bounds` or change the start."
                )
            transforms.append(tr)
            initial.append(value)
        self.template = template
        self.names = names
        self.transforms = tuple(transforms)
        self.per_sweep = per_sweep
        self.n_sweeps = int(n_sweeps)
        self.initial = tuple(initial)

    # layout of the vector: each name once, or n_sweeps times when per-sweep
    def _sizes(self) -> list[int]:
        return [self.n_sweeps if n in self.per_sweep else 1 for n in self.names]

    @property
    def size(self) -> int:
        """Length of the optimiser vector `u`."""
        return sum(self._sizes())

    def initial_values(self) -> dict[str, Array]:
        """The starting values (name → scalar, or `(n_sweeps,)` when per-sweep)."""
        out = {}
        for n, v, k in zip(self.names, self.initial, self._sizes()):
            out[n] = jnp.full((k,), v) if n in self.per_sweep else jnp.asarray(v)
        return out

    def to_vector(self, values: Mapping[str, ArrayLike]) -> Array:
        """Optimiser vector `u` from name → value."""
        parts = []
        for n, tr, k in zip(self.names, self.transforms, self._sizes()):
            v = jnp.broadcast_to(jnp.asarray(values[n]), (k,) if n in self.per_sweep else ())
            parts.append(jnp.reshape(tr.inverse(v), (k,)))
        return jnp.concatenate(parts)

    def to_values(self, u: ArrayLike) -> dict[str, Array]:
        """name → value (in the parameter's unit) of the optimiser vector `u`."""
        u = jnp.asarray(u)
        if u.shape != (self.size,):
            raise ValueError(f"`u` must have shape ({self.size},), got {u.shape}.")
        out, i = {}, 0
        for n, tr, k in zip(self.names, self.transforms, self._sizes()):
            x = tr.forward(u[i : i + k])
            out[n] = x if n in self.per_sweep else x[0]
            i += k
        return out

    def model_values(self, values: Mapping[str, Array]) -> dict[str, Array]:
        """Only the values that are model (not recording) parameters."""
        return {n: v for n, v in values.items() if n not in RECORDING_PARAMETERS}

    def to_params(self, u: ArrayLike, sweep: int | None = None) -> Any:
        """The model pytree with the free parameters of `u` (for per-sweep
        parameters, those of sweep `sweep`, default 0)."""
        values = self.model_values(self.to_values(u))
        s = 0 if sweep is None else sweep
        values = {n: (v[s] if n in self.per_sweep else v) for n, v in values.items()}
        dtype = _template_dtype(self.template)
        values = {n: jnp.asarray(v, dtype) for n, v in values.items()}
        return set_parameters(self.template, values)

    def sweep_params(self, u: ArrayLike) -> Any:
        """The model pytree batched over sweeps (every array leaf gets a leading
        `n_sweeps` axis), for `jax.vmap` over sweeps."""
        values = self.model_values(self.to_values(u))
        dtype = _template_dtype(self.template)
        batched = jax.tree_util.tree_map(
            lambda x: jnp.broadcast_to(jnp.asarray(x), (self.n_sweeps,) + jnp.shape(x))
            if eqx.is_array_like(x)
            else x,
            self.template,
        )
        full = {}
        for n, v in values.items():
            v = jnp.asarray(v, dtype)
            full[n] = v if n in self.per_sweep else jnp.broadcast_to(v, (self.n_sweeps,))
        return set_parameters(batched, full)

    def sample(self, key, n: int, center: Mapping[str, float], spread: float) -> Array:
        """`n` random optimiser vectors around `center` (relative `spread`), each
        parameter inside its bounds; shape `(n, size)`."""
        keys = jax.random.split(key, len(self.names))
        cols = []
        for k, name, tr, size in zip(keys, self.names, self.transforms, self._sizes()):
            c = np.asarray(center[name], dtype=float)
            c = float(np.mean(c))
            vals = tr.sample(k, c, spread, (n, size))
            cols.append(jax.vmap(jax.vmap(tr.inverse))(vals))
        return jnp.concatenate(cols, axis=1)


def _template_dtype(template):
    leaves = [x for x in jax.tree_util.tree_leaves(template) if eqx.is_inexact_array(x)]
    if leaves:
        return leaves[0].dtype
    return jnp.asarray(1.0).dtype


def _field_names(obj) -> list[str]:
    import dataclasses

    if dataclasses.is_dataclass(obj):
        return [f.name for f in dataclasses.fields(obj)]
    if isinstance(obj, Mapping):
        return [str(k) for k in obj]
    return []


def _describe(tr: AbstractTransform) -> str:
    if isinstance(tr, Bounded):
        return f"({tr.lower:g}, {tr.upper:g})"
    if isinstance(tr, Positive):
        return "(0, inf)"
    return "(-inf, inf)"


