"""Gradients through the solver: against central finite differences and across
diffrax adjoints."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hhjax

FIELDS = ("c_m", "g_na", "g_k", "g_leak", "e_na", "e_k", "e_leak")
STIM = hhjax.StepCurrent(amplitude=10.0, t_on=2.0, t_off=18.0)
T_END = 20.0
TRUE = hhjax.HHParams()
GUESS = hhjax.HHParams(
    c_m=1.05, g_na=110.0, g_k=38.0, g_leak=0.33, e_na=52.0, e_k=-75.0, e_leak=-55.0
)


def _target():
    return hhjax.simulate(TRUE, STIM, t_end=T_END, save_every=0.05).v


def make_loss(target, **kw):
    def loss(params):
        res = hhjax.simulate(params, STIM, t_end=T_END, save_every=0.05, **kw)
        return jnp.mean((res.v - target) ** 2)

    return loss


def central_differences(loss, params, rel_step=1e-6):
    out = {}
    for name in FIELDS:
        x = getattr(params, name)
        h = rel_step * max(abs(float(x)), 1.0)
        up = eqx.tree_at(lambda p: getattr(p, name), params, x + h)
        dn = eqx.tree_at(lambda p: getattr(p, name), params, x - h)
        out[name] = (float(loss(up)) - float(loss(dn))) / (2 * h)
    return out


def rel_err(ad, fd, atol):
    return abs(ad - fd) / max(abs(fd), atol)


@pytest.fixture(scope="module")
def target():
    return _target()


def test_grad_fixed_step_matches_finite_differences(target):
    """RK4 at dt = 0.01: the discrete solution is a smooth function of the parameters,
    so reverse-mode AD must match central differences to < 1e-4 relative."""
    kw = dict(solver=hhjax.RK4(), dt0=0.01)
    loss = jax.jit(make_loss(target, **kw))
    grad = jax.jit(jax.grad(make_loss(target, **kw)))(GUESS)
    fd = central_differences(loss, GUESS)
    scale = max(abs(v) for v in fd.values())
    for name in FIELDS:
        ad = float(getattr(grad, name))
        err = rel_err(ad, fd[name], 1e-6 * scale)
        assert err < 1e-4, (name, ad, fd[name], err)


def test_grad_default_solver_matches_finite_differences(target):
    """Default adaptive solver at tight tolerance: step-size decisions are not
    differentiated (diffrax stops their gradient), so agreement is limited by the
    tolerance; at rtol = atol = 1e-11 it is < 1e-4 relative."""
    ctrl = diffrax.PIDController(rtol=1e-11, atol=1e-11)
    loss = jax.jit(make_loss(target, stepsize_controller=ctrl))
    grad = jax.jit(jax.grad(make_loss(target, stepsize_controller=ctrl)))(GUESS)
    fd = central_differences(loss, GUESS, rel_step=1e-5)
    scale = max(abs(v) for v in fd.values())
    for name in FIELDS:
        ad = float(getattr(grad, name))
        err = rel_err(ad, fd[name], 1e-6 * scale)
        assert err < 1e-4, (name, ad, fd[name], err)


@pytest.mark.slow  # default-suite time (CI budget ~10 min)
def test_adjoints_agree(target):
    """RecursiveCheckpointAdjoint (reverse), DirectAdjoint (reverse) and ForwardMode
    (jacfwd) give the same gradient."""
    kw = dict(solver=hhjax.RK4(), dt0=0.02)
    g_rc = jax.jit(
        jax.grad(make_loss(target, adjoint=diffrax.RecursiveCheckpointAdjoint(), **kw))
    )(GUESS)
    g_fwd = jax.jit(jax.jacfwd(make_loss(target, adjoint=diffrax.ForwardMode(), **kw)))(
        GUESS
    )
    g_direct = jax.jit(
        jax.grad(make_loss(target, adjoint=diffrax.DirectAdjoint(), **kw))
    )(GUESS)
    for name in FIELDS:
        a = float(getattr(g_rc, name))
        np.testing.assert_allclose(float(getattr(g_fwd, name)), a, rtol=1e-8)
        np.testing.assert_allclose(float(getattr(g_direct, name)), a, rtol=1e-8)


def test_grad_of_spike_time():
    """Spike times are differentiable: d(first spike)/d(g_na) matches differences."""
    stim = hhjax.StepCurrent(10.0, 2.0, 30.0)

    def first_spike(g_na):
        p = hhjax.HHParams(g_na=g_na)
        res = hhjax.simulate(p, stim, t_end=10.0, save_every=0.05, solver=hhjax.RK4())
        return hhjax.spike_times(res, max_spikes=2)[0]

    f = jax.jit(first_spike)
    g = float(jax.jit(jax.grad(first_spike))(120.0))
    h = 1e-4
    fd = (float(f(120.0 + h)) - float(f(120.0 - h))) / (2 * h)
    assert np.isfinite(g) and g < 0  # more sodium, earlier spike
    np.testing.assert_allclose(g, fd, rtol=1e-4)


def test_grad_finite_at_singular_voltages():
    """Value and gradient are finite when the membrane sits exactly on the removable
    singularities of alpha_m (-40 mV) and alpha_n (-55 mV)."""
    for v0 in (-40.0, -55.0):
        p = hhjax.HHParams()

        def loss(params, v0=v0):
            y0 = hhjax.steady_state(params, v0)
            res = hhjax.simulate(
                params, None, t_end=1.0, y0=y0, solver=hhjax.RK4(), save_every=0.1
            )
            return jnp.sum(res.v)

        val, grad = jax.value_and_grad(loss)(p)
        assert np.isfinite(float(val))
        for leaf in jax.tree_util.tree_leaves(grad):
            assert np.all(np.isfinite(np.asarray(leaf)))


def test_grad_default_settings_full_step_protocol():
    """The default solver over the 100 ms step protocol: adaptive trial steps that
    overshoot (and are rejected) must not turn the gradient into NaN."""
    stim = hhjax.StepCurrent(10.0, 10.0, 90.0)

    def loss(g_na):
        return jnp.mean(hhjax.simulate(hhjax.HHParams(g_na=g_na), stim, t_end=100.0).v)

    g = float(jax.jit(jax.grad(loss))(120.0))
    f = jax.jit(loss)
    h = 1e-3
    fd = (float(f(120.0 + h)) - float(f(120.0 - h))) / (2 * h)
    assert np.isfinite(g)
    np.testing.assert_allclose(g, fd, rtol=1e-2)


@pytest.mark.parametrize(
    "model, t_end",
    [(hhjax.pospischil("RS"), 500.0),
     # the same limit on the classic model's own path (default-suite time: slow)
     pytest.param(hhjax.HHParams(), 2000.0, marks=pytest.mark.slow)],
    ids=["pospischil-RS-500ms", "HH-2000ms"],
)
def test_grad_through_a_long_quiescent_solve_matches_finite_differences(model, t_end):
    """In a sub-threshold stretch the error controller grows Tsit5's steps to the
    stability edge of the fastest gate; the trace stays accurate but the derivative
    is not error-controlled. Before the stability limit (hhjax.StabilityLimit) the
    gradient of the RS cell's potential after 500 ms was -1.3e9 (FD: 0.767) and the
    classic HH's after 2 s -178 (FD: 0.659)."""
    stim = hhjax.SineCurrent(amplitude=0.5, frequency_hz=5.0)

    def with_e_leak(e):
        if isinstance(model, hhjax.HHParams):
            return eqx.tree_at(lambda m: m.e_leak, model, e)
        return eqx.tree_at(lambda m: m.channels["leak"].e, model, e)

    def v_end(e, adjoint=None):
        kw = {} if adjoint is None else {"adjoint": adjoint}
        return hhjax.simulate(with_e_leak(e), stim, t_end, ts=jnp.array([t_end]), **kw).v[-1]

    e0 = jnp.asarray(-70.0)
    tight = diffrax.PIDController(rtol=1e-10, atol=1e-10)
    h = 1e-2  # mV; a tight solve so the differences are not solver noise

    def v_tight(e):
        return hhjax.simulate(with_e_leak(e), stim, t_end, ts=jnp.array([t_end]),
                              stepsize_controller=tight).v[-1]

    fd = float((v_tight(e0 + h) - v_tight(e0 - h)) / (2 * h))
    assert 0.05 < abs(fd) < 2.0
    rev = float(jax.grad(v_end)(e0))
    fwd = float(jax.jacfwd(lambda e: v_end(e, diffrax.ForwardMode()))(e0))
    assert rev == pytest.approx(fd, rel=2e-3)
    assert fwd == pytest.approx(fd, rel=2e-3)


def test_stability_limit_wraps_explicit_adaptive_solvers_only():
    """The limit bounds h·rate for the explicit Runge–Kutta solvers hhjax knows;
    a user's controller gets it too (the gradient with Dopri5 + PID is right); an
    implicit solver does not need it."""
    from hhjax._simulate import _stability_boundary

    assert _stability_boundary(diffrax.Tsit5()) == 3.5
    assert _stability_boundary(diffrax.Dopri5()) == 3.3
    assert _stability_boundary(diffrax.Kvaerno5()) is None
    pid = diffrax.PIDController(rtol=1e-6, atol=1e-6)
    for bad in (0.0, -1.0, float("nan"), "2"):
        with pytest.raises(ValueError, match="max_h_rate"):
            hhjax.StabilityLimit(pid, hhjax.HHParams(), bad)
    with pytest.raises(TypeError, match="adaptive"):
        hhjax.StabilityLimit(diffrax.ConstantStepSize(), hhjax.HHParams(), 2.0)
    with pytest.raises(TypeError, match="HHParams or hhjax.Membrane"):
        hhjax.StabilityLimit(pid, {"g_na": 120.0}, 2.0)
    with pytest.raises(TypeError, match="HHParams or hhjax.Membrane"):
        hhjax.fastest_rate({"g_na": 120.0}, hhjax.steady_state(hhjax.HHParams(), -65.0))
    # the fastest rate at rest is the m gate's 1/τ (Pospischil RS: τ_m ≈ 0.07 ms)
    rs = hhjax.pospischil("RS")
    state = hhjax.steady_state(rs, -70.0)
    tau = rs.gate_tau(-70.0)
    assert float(hhjax.fastest_rate(rs, state)) == pytest.approx(1.0 / float(tau["m"]))
    stim = hhjax.SineCurrent(amplitude=0.5, frequency_hz=5.0)
    ctrl = diffrax.PIDController(rtol=1e-6, atol=1e-6)

    def v_end(e):
        m = eqx.tree_at(lambda m: m.channels["leak"].e, rs, e)
        return hhjax.simulate(m, stim, 300.0, ts=jnp.array([300.0]), solver=diffrax.Dopri5(),
                              stepsize_controller=ctrl).v[-1]

    e0 = jnp.asarray(-62.0)
    fd = float((v_end(e0 + 1e-2) - v_end(e0 - 1e-2)) / 2e-2)
    assert float(jax.grad(v_end)(e0)) == pytest.approx(fd, rel=1e-2)
