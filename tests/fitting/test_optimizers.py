"""Levenberg–Marquardt and Optax on tiny analytic objectives."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fitting


class LeastSquares(fitting.AbstractObjective):
    """`r(u)`, with `r` given by a `kind`; optionally non-finite in a region."""

    kind: str = eqx.field(static=True)
    bad: str = eqx.field(static=True, default="none")  # "none" | "nan" | "inf"
    bad_region: tuple[float, float] = eqx.field(static=True, default=(0.0, 0.0))

    def residuals(self, u):
        if self.kind == "rosenbrock":
            r = jnp.stack([10.0 * (u[1] - u[0] ** 2), 1.0 - u[0]])
        elif self.kind == "offset":  # minimum at exactly (1, 2), loss 9 there
            r = jnp.stack([u[0] - 1.0, u[1] - 2.0, 3.0 + 0.0 * u[0]])
        else:  # linear, A u - b, with a non-zero residual at the optimum
            r = jnp.asarray(A) @ u - jnp.asarray(B)
        if self.bad != "none":
            lo, hi = self.bad_region
            fill = jnp.nan if self.bad == "nan" else jnp.inf
            r = jnp.where((u[0] > lo) & (u[0] < hi), fill, r)
        return r

    def residuals_and_jacobian(self, u):
        return self.residuals(u), jax.jacfwd(self.residuals)(u)

    def value_and_grad(self, u):
        return jax.value_and_grad(lambda x: jnp.sum(self.residuals(x) ** 2))(u)


A = np.array([[2.0, 1.0], [1.0, 3.0], [0.5, -1.0], [1.0, 1.0]])
B = np.array([1.0, 2.0, -1.0, 0.5])
U_LINEAR = np.linalg.lstsq(A, B, rcond=None)[0]
X_OPT = float(U_LINEAR[0])
LOSS_LINEAR = float(np.sum((A @ U_LINEAR - B) ** 2))


@eqx.filter_jit
def _step(opt, state, obj):
    return opt.step(state, obj)


def run(opt, obj, u0, n, check=True):
    """`n` steps from `u0`; checks after every step that the state stays finite."""
    state = opt.init(jnp.asarray(u0, float), obj)
    for _ in range(n):
        state = _step(opt, state, obj)
        if check:
            assert np.all(np.isfinite(np.asarray(state.u))), state
            assert np.all(np.isfinite(np.asarray(state.best_u))), state
            assert not np.isnan(float(state.loss))
            assert not np.isnan(float(state.best_loss))
    return state


def test_lm_rosenbrock():
    obj = LeastSquares("rosenbrock")
    state = run(fitting.LevenbergMarquardt(steps=100), obj, [-1.2, 1.0], 100)
    np.testing.assert_allclose(np.asarray(state.best_u), [1.0, 1.0], atol=1e-6)
    assert float(state.best_loss) < 1e-12
    assert bool(state.done)  # stopped by itself
    assert int(state.step) < 100  # the frozen state stops counting


def test_lm_linear_least_squares():
    obj = LeastSquares("linear")
    state = run(fitting.LevenbergMarquardt(), obj, [5.0, -4.0], 40)
    np.testing.assert_allclose(np.asarray(state.best_u), U_LINEAR, rtol=1e-6)
    assert float(state.best_loss) == pytest.approx(LOSS_LINEAR, rel=1e-10)
    assert bool(state.done)
    # the Gauss-Newton matrix kept in the state is J^T J of the accepted point
    np.testing.assert_allclose(np.asarray(state.extra[1]), A.T @ A, rtol=1e-10)


def test_adam_linear_least_squares():
    obj = LeastSquares("linear")
    opt = fitting.adam(0.05, steps=1500, patience=1500)
    state = run(opt, obj, [2.0, -2.0], 1500, check=False)
    np.testing.assert_allclose(np.asarray(state.best_u), U_LINEAR, atol=1e-2)
    assert float(state.best_loss) == pytest.approx(LOSS_LINEAR, rel=1e-3)


def test_optax_wraps_any_transformation():
    import optax

    obj = LeastSquares("linear")
    opt = fitting.Optax(optax.sgd(0.05), steps=500)
    state = run(opt, obj, [2.0, -2.0], 500, check=False)
    np.testing.assert_allclose(np.asarray(state.best_u), U_LINEAR, atol=1e-4)


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_lm_rejects_non_finite_steps(bad):
    # the optimum itself lies in the bad band: LM must stop at its edge
    obj = LeastSquares("linear", bad, (X_OPT - 0.5, X_OPT + 0.5))
    state = run(fitting.LevenbergMarquardt(), obj, [-3.0, 3.0], 60)
    assert int(state.rejected) >= 1
    assert np.isfinite(float(state.best_loss))
    # it still gets as close as the bad band allows
    u0 = float(state.best_u[0])
    assert not (X_OPT - 0.5 < u0 < X_OPT + 0.5)
    assert float(state.best_loss) < float(
        jnp.sum((jnp.asarray(A) @ jnp.asarray([-3.0, 3.0]) - jnp.asarray(B)) ** 2)
    )


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_lm_reaches_the_optimum_past_a_narrow_bad_band(bad):
    # a narrow band between start and optimum: first trial step lands in it
    obj0 = LeastSquares("linear")
    state0 = run(fitting.LevenbergMarquardt(), obj0, [-3.0, 3.0], 1)
    state1 = _step(fitting.LevenbergMarquardt(), state0, obj0)
    x = float(state1.u[0])  # where the first real step lands
    obj = LeastSquares("linear", bad, (x - 0.02, x + 0.02))
    state = run(fitting.LevenbergMarquardt(), obj, [-3.0, 3.0], 60)
    assert int(state.rejected) >= 1
    np.testing.assert_allclose(np.asarray(state.best_u), U_LINEAR, rtol=1e-5)


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_optax_rejects_non_finite_steps(bad):
    obj = LeastSquares("linear", bad, (0.0, 1e9))  # everything right of u0 = 0 is bad
    opt = fitting.adam(0.05, steps=200, schedule="constant")
    state = run(opt, obj, [-1.0, 0.0], 200)
    assert int(state.rejected) >= 1
    assert float(state.best_u[0]) <= 0.0
    assert np.isfinite(float(state.best_loss))
    # the best loss is the true loss at best_u
    val, _ = LeastSquares("linear").value_and_grad(state.best_u)
    assert float(state.best_loss) == pytest.approx(float(val), rel=1e-12)


@pytest.mark.parametrize(
    "opt", [fitting.LevenbergMarquardt(), fitting.adam(0.05)], ids=["lm", "adam"]
)
def test_non_finite_start_gives_up(opt):
    obj = LeastSquares("linear", "nan", (-10.0, 10.0))
    state = run(opt, obj, [0.0, 0.0], 3)
    assert bool(state.done)
    assert not np.isfinite(float(state.best_loss))
    np.testing.assert_array_equal(np.asarray(state.best_u), [0.0, 0.0])


@pytest.mark.parametrize(
    "opt, n",
    [(fitting.LevenbergMarquardt(), 60), (fitting.adam(0.05, steps=1500), 1500)],
    ids=["lm", "adam"],
)
def test_vmap_over_three_starts(opt, n):
    obj = LeastSquares("linear")
    U = jnp.asarray([[5.0, -4.0], [-2.0, 2.0], [0.3, 0.3]])
    init = eqx.filter_jit(jax.vmap(lambda u, o: opt.init(u, o), in_axes=(0, None)))
    step = eqx.filter_jit(jax.vmap(lambda s, o: opt.step(s, o), in_axes=(0, None)))
    state = init(U, obj)
    assert state.u.shape == (3, 2) and state.best_loss.shape == (3,)
    for _ in range(n):
        state = step(state, obj)
    tol = 1e-6 if isinstance(opt, fitting.LevenbergMarquardt) else 1e-2
    np.testing.assert_allclose(
        np.asarray(state.best_u), np.tile(U_LINEAR, (3, 1)), atol=tol
    )
    # each start is its own optimisation: their step counts are independent
    assert state.step.shape == (3,)


def test_vmap_runs_starts_independently():
    # one start in the non-finite region gives up; the others are unaffected
    obj = LeastSquares("linear", "nan", (9.0, 11.0))
    opt = fitting.LevenbergMarquardt()
    U = jnp.asarray([[10.0, 0.0], [5.0, -4.0], [-2.0, 2.0]])
    state = jax.vmap(lambda u, o: opt.init(u, o), in_axes=(0, None))(U, obj)
    step = eqx.filter_jit(jax.vmap(lambda s, o: opt.step(s, o), in_axes=(0, None)))
    for _ in range(60):
        state = step(state, obj)
    assert not np.isfinite(float(state.best_loss[0])) and bool(state.done[0])
    np.testing.assert_allclose(
        np.asarray(state.best_u[1:]), np.tile(U_LINEAR, (2, 1)), rtol=1e-6
    )


@pytest.mark.parametrize(
    "opt", [fitting.LevenbergMarquardt(), fitting.adam(0.05)], ids=["lm", "adam"]
)
def test_done_freezes_the_state(opt):
    obj = LeastSquares("rosenbrock")
    state = run(opt, obj, [-1.2, 1.0], 3)
    assert not bool(state.done)
    frozen = eqx.tree_at(lambda s: s.done, state, jnp.asarray(True))
    after = _step(opt, frozen, obj)
    for a, b in zip(
        jax.tree_util.tree_leaves(frozen), jax.tree_util.tree_leaves(after)
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # ... while an unfrozen step does change it
    moved = _step(opt, state, obj)
    assert int(moved.step) == int(state.step) + 1


def test_lm_stops_when_it_stalls():
    obj = LeastSquares("linear")
    opt = fitting.LevenbergMarquardt(rtol=1e-3, patience=1)
    state = run(opt, obj, [5.0, -4.0], 50)
    assert bool(state.done)
    assert int(state.step) < 20


@pytest.mark.parametrize(
    "kwargs", [dict(steps=-1), dict(steps=2.5), dict(lambda0=0.0), dict(lambda_up=1.0)]
)
def test_lm_argument_errors(kwargs):
    with pytest.raises(ValueError):
        fitting.LevenbergMarquardt(**kwargs)


def test_optax_argument_errors():
    with pytest.raises(TypeError, match="GradientTransformation"):
        fitting.Optax("adam")
    with pytest.raises(ValueError, match="learning_rate"):
        fitting.adam(0.0)
    with pytest.raises(ValueError, match="schedule"):
        fitting.adam(0.01, schedule="linear")


def test_levenberg_marquardt_stops_at_a_minimum_without_running_up_the_damping():
    """At an exact minimum the gradient is zero, the step is zero and the loss does
    not decrease: every step is rejected. A rejected step whose Gauss–Newton model
    promised less than `rtol` counts as no progress, so the stage ends after
    `patience` of them instead of raising λ past `lambda_max` (26 more
    evaluations with the defaults)."""
    obj = LeastSquares(kind="offset")
    opt = fitting.LevenbergMarquardt(steps=60)
    state = opt.init(jnp.asarray([1.0, 2.0]), obj)
    n = 0
    while not bool(state.done) and n < 60:
        state = _step(opt, state, obj)
        n += 1
    # step 1 evaluates the start; then `patience` rejected, hopeless steps
    assert (n, int(state.rejected)) == (1 + opt.patience, opt.patience)
    assert float(state.best_loss) == 9.0
    np.testing.assert_array_equal(np.asarray(state.best_u), [1.0, 2.0])
    # away from the minimum the rule does not stop it early: it converges
    state = run(opt, LeastSquares(kind="linear"), [3.0, -2.0], 60, check=False)
    np.testing.assert_allclose(np.asarray(state.best_u), U_LINEAR, rtol=1e-8)
