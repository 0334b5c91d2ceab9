"""Optimisers of a fit: Levenberg–Marquardt on residuals and optax on a scalar loss.

Both are written as pure `init`/`step` functions on an explicit state (an
`equinox.Module`), so a fit can `vmap` them over many starts, run one compiled step
at a time from Python (progress bar, checkpoints, Ctrl-C), and resume from a saved
state bit-for-bit.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array


class AbstractObjective(eqx.Module):
    """What an optimiser sees: functions of the optimiser vector `u`, shape `(p,)`
    (dimensionless, of order one: the transformed parameters).

    [`fitting.fit`][] builds one per stage (simulating every sweep); write your own
    to run [`fitting.LevenbergMarquardt`][] or [`fitting.Optax`][] on any
    least-squares problem. Both methods must be pure JAX functions of `u`.

    **Example** (a straight line through three points):

    ```pycon
    >>> import jax, jax.numpy as jnp, fitting
    >>> x, y = jnp.array([0.0, 1.0, 2.0]), jnp.array([1.0, 3.0, 5.0])
    >>> def r(u):                                       # y ≈ a·x + b, u = (a, b)
    ...     return u[0] * x + u[1] - y
    >>> class Line(fitting.AbstractObjective):
    ...     def residuals_and_jacobian(self, u):
    ...         return r(u), jax.jacfwd(r)(u)
    ...     def value_and_grad(self, u):
    ...         return jax.value_and_grad(lambda u: jnp.sum(r(u) ** 2))(u)
    >>> res, J = Line().residuals_and_jacobian(jnp.zeros(2))
    >>> res.tolist(), J.shape                           # (N,), (N, p)
    ([-1.0, -3.0, -5.0], (3, 2))

    ```
    """

    def residuals_and_jacobian(self, u: Array) -> tuple[Array, Array]:
        """Residual vector `r(u)`, shape `(N,)`, and its Jacobian `∂r/∂u`, shape
        `(N, p)` (forward mode)."""
        raise NotImplementedError

    def value_and_grad(self, u: Array) -> tuple[Array, Array]:
        """Loss `Σ r²` (a scalar) and its gradient, shape `(p,)` (reverse mode)."""
        raise NotImplementedError


class OptimizerState(eqx.Module):
    """State shared by the optimisers (one start; `vmap` adds a leading axis).

    - `u`: current optimiser vector; `loss`: its loss (`inf` if not finite).
    - `best_u`, `best_loss`: best point seen so far (what a fit returns).
    - `step`: steps taken; `evaluations`: loss/Jacobian evaluations;
      `rejected`: steps rejected (no decrease, or non-finite);
      `stall`: consecutive steps without relative progress; `done`: converged or
      given up (the state no longer changes).
    - `extra`: optimiser-specific state.

    `u`, `best_u` have shape `(p,)` and `loss`, `best_loss` are scalars, in the
    dtype of `u`; the counters are int32 scalars and `done` a bool scalar. Made by
    an optimiser's `init`, which evaluates nothing (the first `step` evaluates the
    start).

    **Example:**

    ```pycon
    >>> import jax.numpy as jnp, fitting
    >>> state = fitting.LevenbergMarquardt().init(jnp.zeros(3), None)
    >>> state.best_u.shape, float(state.loss), int(state.step), bool(state.done)
    ((3,), inf, 0, False)

    ```
    """

    u: Array
    loss: Array
    best_u: Array
    best_loss: Array
    step: Array
    evaluations: Array
    rejected: Array
    stall: Array
    done: Array
    extra: object


def _finite(x):
    return jnp.all(jnp.isfinite(x))


def _unless_done(state: OptimizerState, new: OptimizerState) -> OptimizerState:
    """`new`, except that a finished start keeps its state unchanged."""
    return jax.tree_util.tree_map(lambda old, nw: jnp.where(state.done, old, nw), state, new)


class AbstractOptimizer(eqx.Module):
    """An optimiser a fit stage can run: `init(u, objective)`, `step(state,
    objective)`; subclasses have an int field `steps` (the stage's step budget).

    `u` is the optimiser vector `(p,)`, `objective` an
    [`fitting.AbstractObjective`][], `state` an [`fitting.OptimizerState`][]; both
    methods are pure (jit/vmap over starts), and `step` leaves a state with `done`
    unchanged. The built-in ones are [`fitting.LevenbergMarquardt`][] and
    [`fitting.Optax`][] ([`fitting.adam`][]).

    **Example:**

    ```pycon
    >>> import fitting
    >>> opts = (fitting.LevenbergMarquardt(steps=30), fitting.adam(steps=500))
    >>> [(isinstance(o, fitting.AbstractOptimizer), o.steps) for o in opts]
    [(True, 30), (True, 500)]

    ```
    """

    def init(self, u: Array, objective: AbstractObjective) -> OptimizerState:
        raise NotImplementedError

    def step(self, state: OptimizerState, objective: AbstractObjective) -> OptimizerState:
        raise NotImplementedError


class LevenbergMarquardt(AbstractOptimizer):
    """Levenberg–Marquardt on the residuals, with Jacobians by forward mode.

    Each step solves `(JᵀJ + λ·diag(JᵀJ)) δ = −Jᵀr` (Marquardt's scaling, so the
    result does not depend on the units of the variables), evaluates the residuals
    and Jacobian at `u + δ` in one forward-mode pass, and accepts the step only if
    the loss decreases and is finite; `λ` shrinks after an accepted step and grows
    after a rejected one. Only `JᵀJ` and `Jᵀr` (`p × p`) are kept between steps.

    **Arguments:**

    - `steps`: maximum number of steps (each costs one residual+Jacobian
      evaluation, ≈ `p + 1` simulations for `p` parameters).
    - `lambda0`: initial damping; `lambda_up`, `lambda_down`: its factors;
      `lambda_max`: give up (converged to the precision available) beyond it.
    - `rtol`: an accepted step that lowers the loss by less than this fraction
      counts as no progress, and so does a rejected step whose Gauss–Newton model
      promised less; `patience` such steps in a row stop the stage.

    **Raises:** `ValueError` for `steps` that is not a non-negative integer, or
    `lambda0 <= 0`, `lambda_up <= 1`, `lambda_down <= 1`.

    **Example** (the line of [`fitting.AbstractObjective`][]; one compiled step at a
    time, as `fit` runs it):

    ```pycon
    >>> import jax, jax.numpy as jnp, fitting
    >>> x, y = jnp.array([0.0, 1.0, 2.0]), jnp.array([1.0, 3.0, 5.0])
    >>> def r(u):                                       # y ≈ a·x + b, u = (a, b)
    ...     return u[0] * x + u[1] - y
    >>> class Line(fitting.AbstractObjective):
    ...     def residuals_and_jacobian(self, u):
    ...         return r(u), jax.jacfwd(r)(u)
    ...     def value_and_grad(self, u):
    ...         return jax.value_and_grad(lambda u: jnp.sum(r(u) ** 2))(u)
    >>> opt = fitting.LevenbergMarquardt(steps=20)
    >>> state, step = opt.init(jnp.zeros(2), Line()), jax.jit(opt.step)
    >>> for _ in range(5):
    ...     state = step(state, Line())
    >>> [round(float(v), 6) for v in state.best_u], int(state.evaluations)
    ([2.0, 1.0], 5)

    ```
    """

    steps: int = 50
    lambda0: float = 1e-2
    lambda_up: float = 4.0
    lambda_down: float = 3.0
    lambda_max: float = 1e10
    rtol: float = 1e-6
    patience: int = 2

    def __check_init__(self):
        if int(self.steps) != self.steps or self.steps < 0:
            raise ValueError(f"`steps` must be a non-negative integer, got {self.steps}.")
        if not (self.lambda0 > 0 and self.lambda_up > 1 and self.lambda_down > 1):
            raise ValueError("Need lambda0 > 0, lambda_up > 1 and lambda_down > 1.")

    def init(self, u, objective):
        del objective
        # A blank state (loss = inf, zero gradient): the first `step` moves by zero,
        # evaluates residuals and Jacobian at `u` and accepts. So `init` costs no
        # evaluation and shares the compiled step.
        p = u.shape[0]
        lam = jnp.asarray(self.lambda0 * self.lambda_down, u.dtype)
        zero = jnp.zeros((), jnp.int32)
        inf = jnp.asarray(jnp.inf, u.dtype)
        return OptimizerState(
            u=u, loss=inf, best_u=u, best_loss=inf, step=zero, evaluations=zero,
            rejected=zero, stall=zero, done=jnp.zeros((), bool),
            extra=(jnp.zeros_like(u), jnp.eye(p, dtype=u.dtype), lam),
        )

    def step(self, state, objective):
        g, A, lam = state.extra
        u = state.u
        d = jnp.diagonal(A)
        d = jnp.maximum(d, 1e-12 * jnp.maximum(jnp.max(d), 1e-30))
        delta = jnp.linalg.solve(A + lam * jnp.diag(d), -g)
        delta = jnp.where(_finite(delta), delta, 0.0)
        u_new = u + delta
        r, J = objective.residuals_and_jacobian(u_new)
        loss_new = jnp.sum(r * r)
        accept = jnp.isfinite(loss_new) & _finite(J) & (loss_new < state.loss)
        rel = (state.loss - loss_new) / jnp.maximum(state.loss, 1e-300)
        new_u = jnp.where(accept, u_new, u)
        new_loss = jnp.where(accept, loss_new, state.loss)
        new_g = jnp.where(accept, J.T @ r, g)
        new_A = jnp.where(accept, J.T @ J, A)
        new_lam = jnp.where(
            accept, jnp.maximum(lam / self.lambda_down, 1e-12), lam * self.lambda_up
        )
        # a rejected step whose Gauss–Newton model promised less than `rtol` is no
        # progress either: at a minimum every step is rejected, and waiting for the
        # damping to pass `lambda_max` costs about 25 more evaluations
        pred = -(2.0 * jnp.dot(g, delta) + delta @ (A @ delta))
        hopeless = ~accept & jnp.isfinite(state.loss) & (
            pred < self.rtol * jnp.maximum(state.loss, 1e-300))
        small = (accept & (rel < self.rtol)) | hopeless
        stall = jnp.where(small, state.stall + 1, jnp.where(accept, 0, state.stall))
        failed = ~accept & ~jnp.isfinite(state.loss)  # the start itself is not finite
        done = (stall >= self.patience) | (new_lam > self.lambda_max) | failed
        new = OptimizerState(
            u=new_u,
            loss=new_loss,
            best_u=new_u,
            best_loss=new_loss,
            step=state.step + 1,
            evaluations=state.evaluations + 1,
            rejected=state.rejected + jnp.where(accept, 0, 1),
            stall=stall,
            done=done,
            extra=(new_g, new_A, new_lam),
        )
        return _unless_done(state, new)


class Optax(AbstractOptimizer):
    """Gradient descent with any optax transformation on the scalar loss.

    Gradients are taken by reverse mode through the solver (diffrax's checkpointed
    adjoint, memory bounded). A step whose loss or gradient is not finite is
    rejected: the parameters go back to the best point so far and the optimiser's
    moments are reset. The stage stops after `patience` steps without a relative
    improvement of the best loss by `rtol`, or after `steps` steps.

    **Arguments:** `transformation` (an `optax.GradientTransformation`; see
    [`fitting.adam`][] for a ready one), `steps`, `patience` (default 100), `rtol`
    (default 1e-4).

    **Raises:** `TypeError` when `transformation` is not an optax transformation;
    `ValueError` for `steps` that is not a non-negative integer.

    **Example** (plain gradient descent on the line of
    [`fitting.AbstractObjective`][]):

    ```pycon
    >>> import jax, jax.numpy as jnp, optax, fitting
    >>> x, y = jnp.array([0.0, 1.0, 2.0]), jnp.array([1.0, 3.0, 5.0])
    >>> def r(u):                                       # y ≈ a·x + b, u = (a, b)
    ...     return u[0] * x + u[1] - y
    >>> class Line(fitting.AbstractObjective):
    ...     def residuals_and_jacobian(self, u):
    ...         return r(u), jax.jacfwd(r)(u)
    ...     def value_and_grad(self, u):
    ...         return jax.value_and_grad(lambda u: jnp.sum(r(u) ** 2))(u)
    >>> opt = fitting.Optax(optax.sgd(0.1), steps=100)
    >>> state, step = opt.init(jnp.zeros(2), Line()), jax.jit(opt.step)
    >>> for _ in range(100):
    ...     state = step(state, Line())
    >>> [round(float(v), 4) for v in state.best_u]
    [2.0, 1.0]

    ```
    """

    transformation: optax.GradientTransformation = eqx.field(static=True)
    steps: int = 1000
    patience: int = 100
    rtol: float = 1e-4

    def __check_init__(self):
        if not isinstance(self.transformation, optax.GradientTransformation):
            raise TypeError(
                "`transformation` must be an optax.GradientTransformation (e.g. "
                f"optax.adam(1e-2)), got {type(self.transformation).__name__}."
            )
        if int(self.steps) != self.steps or self.steps < 0:
            raise ValueError(f"`steps` must be a non-negative integer, got {self.steps}.")

    def init(self, u, objective):
        del objective
        # blank state: the first `step` applies a zero update and evaluates at `u`
        zero = jnp.zeros((), jnp.int32)
        inf = jnp.asarray(jnp.inf, u.dtype)
        return OptimizerState(
            u=u, loss=inf, best_u=u, best_loss=inf, step=zero, evaluations=zero,
            rejected=zero, stall=zero, done=jnp.zeros((), bool),
            extra=(self.transformation.init(u), jnp.zeros_like(u)),
        )

    def step(self, state, objective):
        opt_state, grad = state.extra
        updates, opt_state_new = self.transformation.update(grad, opt_state, state.u)
        u_new = optax.apply_updates(state.u, updates)
        loss, grad_new = objective.value_and_grad(u_new)
        ok = jnp.isfinite(loss) & _finite(grad_new) & _finite(u_new)
        improved = ok & (loss < state.best_loss)
        significant = ok & (loss < state.best_loss * (1 - self.rtol))
        best_u = jnp.where(improved, u_new, state.best_u)
        best_loss = jnp.where(improved, loss, state.best_loss)
        # rejected: restart from the best point with fresh moments
        reset_state = self.transformation.init(state.best_u)
        new_opt_state = jax.tree_util.tree_map(
            lambda a, b: jnp.where(ok, a, b), opt_state_new, reset_state
        )
        u_out = jnp.where(ok, u_new, state.best_u)
        # after a rejection the next update starts from zero gradient (a no-op
        # move); the one after re-evaluates at the best point
        grad_out = jnp.where(ok, grad_new, jnp.zeros_like(grad_new))
        stall = jnp.where(significant, 0, state.stall + 1)
        new = OptimizerState(
            u=u_out,
            loss=jnp.where(ok, loss, state.best_loss),
            best_u=best_u,
            best_loss=best_loss,
            step=state.step + 1,
            evaluations=state.evaluations + 1,
            rejected=state.rejected + jnp.where(ok, 0, 1),
            stall=stall,
            done=(stall >= self.patience) | (~ok & ~jnp.isfinite(state.best_loss)),
            extra=(new_opt_state, grad_out),
        )
        return _unless_done(state, new)


def adam(
    learning_rate: float = 0.02,
    steps: int = 1000,
    *,
    clip: float | None = 1.0,
    schedule: str = "cosine",
    patience: int = 200,
) -> Optax:
    """Adam with gradient clipping and a learning-rate schedule, as an [`fitting.Optax`][].

    **Arguments:**

    - `learning_rate`: peak learning rate (in units of the scaled optimiser
      variables, which are of order one).
    - `steps`: number of steps.
    - `clip`: global-norm gradient clipping (`None`: off).
    - `schedule`: `"cosine"` (warm-up over 5 % then cosine decay to 1 %),
      `"exponential"` (decay to 1 % over `steps`) or `"constant"`.
    - `patience`: steps without improvement before stopping early.

    **Returns:** an [`fitting.Optax`][] (for a [`fitting.Stage`][] or
    `fit(optimizer=...)`).

    **Raises:** `ValueError` for `learning_rate <= 0` or an unknown `schedule`.

    **Example:**

    ```pycon
    >>> import fitting
    >>> opt = fitting.adam(0.05, steps=500)
    >>> type(opt).__name__, opt.steps, opt.patience
    ('Optax', 500, 200)

    ```
    """
    if not (learning_rate > 0 and math.isfinite(learning_rate)):
        raise ValueError(f"`learning_rate` must be > 0, got {learning_rate}.")
    n = max(int(steps), 1)
    if schedule == "cosine":
        lr = optax.warmup_cosine_decay_schedule(
            0.0, learning_rate, max(1, n // 20), n, learning_rate * 0.01
        )
    elif schedule == "exponential":
        lr = optax.exponential_decay(learning_rate, n, 0.01)
    elif schedule == "constant":
        lr = learning_rate
    else:
        raise ValueError(
            f"`schedule` must be 'cosine', 'exponential' or 'constant', got {schedule!r}."
        )
    parts = []
    if clip is not None:
        parts.append(optax.clip_by_global_norm(float(clip)))
    parts.append(optax.adam(lr))
    return Optax(optax.chain(*parts), steps=int(steps), patience=int(patience))
