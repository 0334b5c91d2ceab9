"""Fixed-step solvers that diffrax does not ship: exponential Euler and classical RK4.

Both are ordinary diffrax solvers: pass them as `solver=` to [`hhjax.simulate`][] or
to `diffrax.diffeqsolve` with a `diffrax.ConstantStepSize()` controller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ._rates import phi1


class ExponentialEuler(diffrax.AbstractSolver):
    r"""Exponential Euler (Rush–Larsen) method, as a diffrax solver.

    Each component $y_i$ is advanced with its own linearisation
    $\dot y_i \approx a_i + b_i y_i$, where $b_i = \partial f_i/\partial y_i$ is the
    diagonal of the Jacobian (found by forward-mode autodiff) at the start of the step:

    $$y_i(t + h) = y_i + h\,\varphi_1(b_i h)\,f_i(y), \qquad
      \varphi_1(z) = (e^z - 1)/z .$$

    For HH-type models every gate obeys $\dot x = \alpha(1-x) - \beta x$, which is
    linear in $x$ with $b = -(\alpha+\beta)$, and the membrane equation is linear in
    $v$ with $b = -g_\mathrm{total}/c_m$; so within a step each variable is integrated
    exactly with the others frozen (the Rush–Larsen scheme used by NEURON's `cnexp`
    and BrainPy's `exp_auto`). It is first order, unconditionally stable for the
    gates, and keeps gates inside [0, 1] for any step size.

    Fixed step only (no error estimate): use `diffrax.ConstantStepSize()` (what
    [`hhjax.simulate`][] picks for it by default, steps of `dt0` [ms]). ODEs only (a
    single `diffrax.ODETerm`); the state may be any pytree of float arrays, stepped
    in its own dtype. No arguments. **Raises** (from diffrax): `RuntimeError` with an
    adaptive step-size controller; an error for terms other than one `ODETerm`.

    **Example** (`dy/dt = −2y` is linear, so one step of any size is exact; with
    hhjax, `hhjax.simulate(params, stim, t_end, solver=hhjax.ExponentialEuler(),
    dt0=0.025)`):

    ```pycon
    >>> import diffrax, jax.numpy as jnp, hhjax
    >>> term = diffrax.ODETerm(lambda t, y, args: -2.0 * y)
    >>> sol = diffrax.diffeqsolve(term, hhjax.ExponentialEuler(), t0=0.0, t1=1.0,
    ...                           dt0=0.5, y0=jnp.asarray(1.0))
    >>> round(float(sol.ys[-1]), 10), round(float(jnp.exp(-2.0)), 10)
    (0.1353352832, 0.1353352832)
    >>> hhjax.ExponentialEuler().order(term)
    1

    ```
    """

    term_structure: ClassVar = diffrax.ODETerm
    interpolation_cls: ClassVar[Callable[..., diffrax.LocalLinearInterpolation]] = (
        diffrax.LocalLinearInterpolation
    )

    def order(self, terms):
        del terms
        return 1

    def init(self, terms, t0, t1, y0, args):
        del terms, t0, t1, y0, args
        return None

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del solver_state, made_jump
        h = t1 - t0
        flat, unravel = ravel_pytree(y0)

        def f(z):
            return ravel_pytree(terms.vf(t0, unravel(z), args))[0]

        fy, lin = jax.linearize(f, flat)
        basis = jnp.eye(flat.shape[0], dtype=flat.dtype)
        diag = jnp.diagonal(jax.vmap(lin)(basis))
        h = jnp.asarray(h, flat.dtype)
        y1_flat = flat + h * phi1(diag * h) * fy
        y1 = unravel(y1_flat)
        dense_info = dict(y0=y0, y1=y1)
        return y1, None, dense_info, None, diffrax.RESULTS.successful

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)


_rk4_tableau = diffrax.ButcherTableau(
    a_lower=(np.array([0.5]), np.array([0.0, 0.5]), np.array([0.0, 0.0, 1.0])),
    b_sol=np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]),
    # Embedded estimate vs. the midpoint rule (2nd order); only used if someone
    # pairs RK4 with an adaptive controller.
    b_error=np.array([1 / 6, 1 / 3 - 1.0, 1 / 3, 1 / 6]),
    c=np.array([0.5, 0.5, 1.0]),
)


class RK4(diffrax.AbstractERK):
    """The classical 4th-order Runge–Kutta method ("RK4"), 4 stages, with cubic
    Hermite interpolation for output between steps. Meant for fixed steps
    (`diffrax.ConstantStepSize()`, what [`hhjax.simulate`][] picks for it by default,
    steps of `dt0` [ms]); its embedded error estimate is only 2nd order. No
    arguments; any pytree state, stepped in its own dtype.

    **Example** (global error `O(dt⁴)`; with hhjax, `hhjax.simulate(params, stim,
    t_end, solver=hhjax.RK4(), dt0=0.01)`):

    ```pycon
    >>> import diffrax, jax.numpy as jnp, hhjax
    >>> term = diffrax.ODETerm(lambda t, y, args: -2.0 * y)
    >>> sol = diffrax.diffeqsolve(term, hhjax.RK4(), t0=0.0, t1=1.0, dt0=0.1,
    ...                           y0=jnp.asarray(1.0))
    >>> err = float(sol.ys[-1] - jnp.exp(-2.0))
    >>> 0 < err < 1e-5, hhjax.RK4().order(term)
    (True, 4)

    ```
    """

    tableau: ClassVar[diffrax.ButcherTableau] = _rk4_tableau
    interpolation_cls: ClassVar[
        Callable[..., diffrax.ThirdOrderHermitePolynomialInterpolation]
    ] = diffrax.ThirdOrderHermitePolynomialInterpolation.from_k

    def order(self, terms):
        del terms
        return 4
