"""How a fit simulates one sweep: the forward model."""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array

import hhjax


class AbstractSimulator(eqx.Module):
    """Simulates one sweep: `(params, stimulus, ts, t_span, adjoint) -> (v, ok)`.

    `v` is the membrane potential [mV] at the times `ts` [ms] (shape `(T,)`), which
    lie within `t_span = (t0, t_end)` (Python floats, ms); `ok`
    a boolean scalar (did the solve succeed). Implementations must be pure JAX
    (jit/vmap/jacfwd through them); `adjoint` is the diffrax adjoint to use
    (forward mode for Jacobians, checkpointed reverse mode for gradients).
    `stimulus` is one sweep's hhjax stimulus in µA/cm² (`None` for none); `v`
    should have the dtype of `ts`. Report a failed solve through `ok` (and any
    values in `v`) rather than raising: the optimiser rejects the trial point.

    **Example** (a simulator with a fixed-step solver, passed as
    `fitting.fit(..., simulator=...)` or per [`fitting.Stage`][]; the built-in one
    is [`fitting.HHSimulator`][]):

    ```python
    import diffrax, jax.numpy as jnp, fitting, hhjax

    class EulerSimulator(fitting.AbstractSimulator):
        dt: float = 0.01

        def __call__(self, params, stimulus, ts, t_span, adjoint):
            y0 = hhjax.resting_state(params, stimulus(ts[0]), throw=False)
            res = hhjax.simulate(params, stimulus, t_span[1], t0=t_span[0], ts=ts,
                                 y0=y0, solver=hhjax.ExponentialEuler(),
                                 dt0=self.dt, adjoint=adjoint, throw=False)
            return res.v, res.successful & jnp.all(jnp.isfinite(res.v))
    ```
    """

    def __call__(
        self, params, stimulus, ts: Array, t_span: tuple[float, float], adjoint
    ) -> tuple[Array, Array]:
        raise NotImplementedError


class HHSimulator(AbstractSimulator):
    """Simulates an [`hhjax.HHParams`][] or [`hhjax.Membrane`][] neuron with
    [`hhjax.simulate`][].

    Each sweep starts at the resting state under the holding current (the stimulus
    at the first sample time), found by root finding; if that fails (no equilibrium
    found), the sweep is reported as failed.

    **Arguments:**

    - `solver`: a diffrax solver (default `diffrax.Tsit5()`).
    - `rtol`, `atol`: tolerances of the default PID controller for adaptive solvers.
      The default 1e-6 is the working precision; the final refinement stage of the
      default strategy uses 1e-9 so that the solver's error stays well below the
      recording noise (it would otherwise bias the fitted leak).
    - `stepsize_controller`: overrides the PID controller (e.g.
      `diffrax.ConstantStepSize()` with `dt0` for fixed-step solvers).
    - `dt0`: (initial) step [ms]; `max_steps`: the solver's step budget.

    **Raises:** `ValueError` for `rtol` or `atol` ≤ 0; `TypeError` for a `solver`
    that is not a diffrax solver, and (when called) for a model that is neither
    `HHParams` nor `Membrane`. A failed simulation is not raised: `ok` is False.

    **Example** (construct and inspect; calling it simulates one sweep: `v, ok =
    sim(params, stimulus, ts, (t0, t_end), adjoint)`, `v` of the shape of `ts`):

    ```pycon
    >>> import fitting, hhjax
    >>> sim = fitting.HHSimulator(rtol=1e-9, atol=1e-9)      # the refinement stage's
    >>> type(sim.controller()).__name__
    'PIDController'
    >>> fitting.HHSimulator(solver=hhjax.RK4(), dt0=0.01).controller() is None  # fixed
    True

    ```
    """

    solver: diffrax.AbstractSolver | None = None
    rtol: float = 1e-6
    atol: float = 1e-6
    stepsize_controller: diffrax.AbstractStepSizeController | None = None
    # static: a fixed-step solve needs it concrete (it fixes the number of steps);
    # `fit` turns the other number fields into arrays to share compilations
    dt0: float | None = eqx.field(static=True, default=None)
    max_steps: int | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        if not (self.rtol > 0 and self.atol > 0):
            raise ValueError(
                f"HHSimulator needs rtol > 0 and atol > 0, got {self.rtol}, {self.atol}."
            )
        if self.solver is not None and not isinstance(self.solver, diffrax.AbstractSolver):
            raise TypeError(f"`solver` must be a diffrax solver, got {self.solver!r}.")

    def controller(self):
        if self.stepsize_controller is not None:
            return self.stepsize_controller
        solver = self.solver if self.solver is not None else diffrax.Tsit5()
        if isinstance(solver, diffrax.AbstractAdaptiveSolver) and not isinstance(
            solver, hhjax.RK4
        ):
            return diffrax.PIDController(
                rtol=self.rtol, atol=self.atol, norm=hhjax.finite_rms_norm
            )
        return None

    def __call__(self, params, stimulus, ts, t_span, adjoint):
        if not isinstance(params, (hhjax.HHParams, hhjax.Membrane)):
            raise TypeError(
                "HHSimulator simulates hhjax.HHParams and hhjax.Membrane models; pass "
                f"your own `simulator=` for {type(params).__name__}."
            )
        t0, t_end = t_span
        i_hold = stimulus(ts[0]) if stimulus is not None else jnp.zeros_like(ts[0])
        # no exception inside the fit: a trial point whose rest is not found is
        # reported as a failed simulation (and the optimiser rejects it)
        y0 = hhjax.resting_state(params, i_hold, throw=False)
        mismatch = hhjax.steady_state_current(params, y0.v) - i_hold
        tol = 1e-6 if mismatch.dtype == jnp.float64 else 1e-2  # µA/cm²
        rest_ok = jnp.abs(mismatch) <= tol * (1.0 + jnp.abs(i_hold))
        res = hhjax.simulate(
            params,
            stimulus,
            t_end,
            t0=t0,
            ts=ts,
            y0=y0,
            solver=self.solver,
            stepsize_controller=self.controller(),
            dt0=self.dt0,
            max_steps=self.max_steps,
            adjoint=adjoint,
            throw=False,
        )
        ok = res.successful & jnp.all(jnp.isfinite(res.v)) & rest_ok
        return res.v, ok
