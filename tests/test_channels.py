"""Generic conductance-based models (`hhjax.Membrane`): the classic HH as an instance,
the seed-004 gate families against that tutorial's own forward-Euler loop, the
reduced two-variable model of seed 003 against scipy, gradients, batching, errors."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import hhjax

TIGHT = diffrax.PIDController(rtol=1e-10, atol=1e-10)


def classic_from_library(**kw):
    """The classic HH written with the generic rate families (not ClassicKinetics)."""
    gates = {
        "m": hhjax.RateGate(hhjax.Linoid(0.1, -40.0, 10.0), hhjax.Exponential(4.0, -65.0, -18.0)),
        "h": hhjax.RateGate(hhjax.Exponential(0.07, -65.0, -20.0), hhjax.Sigmoid(-35.0, 10.0)),
        "n": hhjax.RateGate(hhjax.Linoid(0.01, -55.0, 10.0), hhjax.Exponential(0.125, -65.0, -80.0)),
    }
    channels = {
        "na": hhjax.Channel(120.0, 50.0, {"m": 3, "h": 1}),
        "k": hhjax.Channel(36.0, -77.0, {"n": 4}),
        "leak": hhjax.Channel(0.3, -54.387),
    }
    return hhjax.Membrane(channels, gates, **kw)


@pytest.mark.parametrize(
    "preset", ["squid_axon", "hh1952", pytest.param("annarchy", marks=pytest.mark.slow)]
)
def test_hodgkin_huxley_membrane_matches_hhparams(preset):
    p = getattr(hhjax.HHParams, preset)()
    m = hhjax.Membrane.hodgkin_huxley(p)
    stim = hhjax.StepCurrent(20.0, 10.0, 40.0)
    r1 = hhjax.simulate(p, stim, t_end=50.0, stepsize_controller=TIGHT)
    r2 = hhjax.simulate(m, stim, t_end=50.0, stepsize_controller=TIGHT)
    assert m.kinetic_gates == ("h", "m", "n")
    np.testing.assert_allclose(r2.v, r1.v, atol=1e-8)
    for g in "mhn":
        np.testing.assert_allclose(getattr(r2, g), getattr(r1, g), atol=1e-10)
    for c in ("i_na", "i_k", "i_leak", "i_ion", "dvdt"):
        np.testing.assert_allclose(getattr(r2, c), getattr(r1, c), atol=1e-6)
    assert r1.currents().keys() == r2.currents().keys()
    assert float(jnp.max(r1.v)) > 20  # it spiked: the comparison covers action potentials
    # fixed-step exponential Euler: same scheme, same numbers
    e1 = hhjax.simulate(p, stim, t_end=50.0, solver=hhjax.ExponentialEuler())
    e2 = hhjax.simulate(m, stim, t_end=50.0, solver=hhjax.ExponentialEuler())
    np.testing.assert_allclose(e2.v, e1.v, atol=1e-9)


def test_rest_and_jacobian_match_hhparams():
    p = hhjax.HHParams()
    m = hhjax.Membrane.hodgkin_huxley(p)
    for i_hold in (0.0, 5.0):
        r1, r2 = hhjax.resting_state(p, i_hold), hhjax.resting_state(m, i_hold)
        assert abs(float(r1.v - r2.v)) < 1e-9
        assert abs(float(r1.n - r2["n"])) < 1e-12
        j1 = hhjax.jacobian_at(p, r1, i_hold)
        j2 = hhjax.jacobian_at(m, r2, i_hold)
        # membrane order: v, h, m, n; HH order: v, m, h, n
        perm = [0, 2, 1, 3]
        np.testing.assert_allclose(j2, j1[np.ix_(perm, perm)], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(
            np.sort_complex(np.linalg.eigvals(j2)), np.sort_complex(np.linalg.eigvals(j1)), rtol=1e-8
        )


def test_rate_families_reproduce_classic_kinetics_incl_singularities():
    m = classic_from_library()
    k = hhjax.ClassicKinetics()
    v = jnp.concatenate([jnp.linspace(-120.0, 60.0, 721), jnp.array([-40.0, -55.0, -40.0 + 1e-7])])
    for x in "mhn":
        a, b = m.gates[x].rates(v)
        np.testing.assert_allclose(a, getattr(k, f"alpha_{x}")(v), rtol=1e-12)
        np.testing.assert_allclose(b, getattr(k, f"beta_{x}")(v), rtol=1e-12)
    # finite values and gradients at the removable singularities (αm at −40, αn at −55)
    for x, v0 in (("m", -40.0), ("n", -55.0)):
        gate = m.gates[x]
        val, grad_v = jax.value_and_grad(lambda u: gate.rates(u)[0])(v0)
        grad_p = jax.grad(lambda g: g.rates(v0)[0])(gate)
        assert np.isfinite(val) and np.isfinite(grad_v)
        assert all(np.isfinite(leaf) for leaf in jax.tree_util.tree_leaves(grad_p))
        # d/dv of the linoid at its centre is rate/2
        assert abs(float(grad_v) - float(gate.alpha.rate) / 2) < 1e-9
    r1 = hhjax.simulate(hhjax.HHParams(), hhjax.StepCurrent(10.0, 5.0, 25.0), t_end=30.0, stepsize_controller=TIGHT)
    r2 = hhjax.simulate(m, hhjax.StepCurrent(10.0, 5.0, 25.0), t_end=30.0, stepsize_controller=TIGHT)
    np.testing.assert_allclose(r2.v, r1.v, atol=1e-6)


# --- seed 004: the tutorial's neuron_func_6, its own explicit Euler loop in numpy ------


def seed004_inf_a_act(v):
    return 1 / (1 + 0.1 * np.exp(-0.5 * (v + 50.0)))


def seed004_inf_a_inact(v):
    return -1 / (1.1 + 0.1 * np.exp(-0.1 * v)) + 1


def seed004_inf_b(v):
    return 1 / (1.1 + 0.1 * np.exp(-0.09 * v))


def seed004_bell(mu, sig):
    return lambda v: (300 / sig) * np.exp(-(((v - mu) / sig) ** 2))


def seed004_func6_numpy():
    tau, T = 0.01, 200
    t = np.arange(0, T, tau)
    n = t.shape[0]
    I = np.zeros(n)
    I[n // 5 : 2 * n // 5] = 30.0
    I[3 * n // 5 : 4 * n // 5] = -30.0
    v, a, ai, b = (np.zeros(n) for _ in range(4))
    E_a, E_b, g_a_max, g_b_max, C = 120.0, -70.0, 2.0, 5.0, 1.0
    ta, ti, tb = seed004_bell(-10.0, 60.0), seed004_bell(-10.0, 50.0), seed004_bell(5.0, 50.0)
    v[0] = -65.0
    a[0], ai[0], b[0] = seed004_inf_a_act(-65.0), seed004_inf_a_inact(-65.0), seed004_inf_b(-65.0)
    for i in range(1, n):
        dt = t[i] - t[i - 1]
        dv = (I[i - 1] - g_a_max * a[i - 1] ** 3 * ai[i - 1] * (v[i - 1] - E_a)
              - g_b_max * b[i - 1] ** 4 * (v[i - 1] - E_b)) / C
        da = (seed004_inf_a_act(v[i - 1]) - a[i - 1]) / ta(v[i - 1])
        di = (seed004_inf_a_inact(v[i - 1]) - ai[i - 1]) / ti(v[i - 1])
        db = (seed004_inf_b(v[i - 1]) - b[i - 1]) / tb(v[i - 1])
        v[i] = v[i - 1] + dv * dt
        a[i] = a[i - 1] + da * dt
        ai[i] = ai[i - 1] + di * dt
        b[i] = b[i - 1] + db * dt
    return t, v, a, ai, b


def seed004_func6_membrane():
    gates = {
        # the document's forms verbatim as plain JAX functions ...
        "a": hhjax.InfTauGate(lambda v: 1 / (1 + 0.1 * jnp.exp(-0.5 * (v + 50.0))), hhjax.Bell(300 / 60.0, -10.0, 60.0)),
        # ... or the equivalent parametrised families
        "ai": hhjax.InfTauGate(hhjax.Sigmoid(10 * np.log(0.1 / 1.1), 10.0, amplitude=-1 / 1.1, offset=1.0), hhjax.Bell(300 / 50.0, -10.0, 50.0)),
        "b": hhjax.InfTauGate(hhjax.Sigmoid(np.log(0.1 / 1.1) / 0.09, 1 / 0.09, amplitude=1 / 1.1), hhjax.Bell(300 / 50.0, 5.0, 50.0)),
    }
    channels = {"a": hhjax.Channel(2.0, 120.0, {"a": 3, "ai": 1}), "b": hhjax.Channel(5.0, -70.0, {"b": 4})}
    return hhjax.Membrane(channels, gates, c_m=1.0)


def test_seed004_gate_families_match_the_tutorials_euler_loop():
    t, v, a, ai, b = seed004_func6_numpy()
    mem = seed004_func6_membrane()
    # the parametrised sigmoids equal the document's expressions
    vv = np.linspace(-90, 90, 181)
    np.testing.assert_allclose(mem.gates["ai"].inf(vv), seed004_inf_a_inact(vv), rtol=1e-12)
    np.testing.assert_allclose(mem.gates["b"].inf(vv), seed004_inf_b(vv), rtol=1e-12)
    stim = hhjax.StepCurrent(30.0, 40.0, 80.0) + hhjax.StepCurrent(-30.0, 120.0, 160.0)
    y0 = mem.steady_state(-65.0)
    res = hhjax.simulate(mem, stim, t_end=199.99, solver=diffrax.Euler(), dt0=0.01, ts=t, y0=y0)
    # same scheme, same step, same stimulus sampling: equal up to rounding
    # rounding differences, amplified through the fast upstroke over 20000 steps,
    # stay below 1e-5 mV (a one-step offset of the stimulus would give ~1 mV)
    np.testing.assert_allclose(res.v, v, atol=1e-5)
    np.testing.assert_allclose(res.gate("a"), a, atol=1e-7)
    np.testing.assert_allclose(res.gate("b"), b, atol=1e-7)
    assert float(np.max(v)) > 0  # the document's spike-like excursion is part of the check


# --- seed 003: the reduced two-variable HH against scipy Radau -----------------------


def reduced_rhs_numpy(i_amp, t_on, t_off):
    def f(t, y):
        v, n = y
        am = 0.1 * (v + 40.0) / (1.0 - np.exp(-(v + 40.0) / 10.0))
        bm = 4.0 * np.exp(-(v + 65.0) / 18.0)
        an = 0.01 * (v + 55.0) / (1.0 - np.exp(-(v + 55.0) / 10.0))
        bn = 0.125 * np.exp(-(v + 65.0) / 80.0)
        m = am / (am + bm)
        h = 0.89 - 1.1 * n
        i = i_amp if t_on <= t < t_off else 0.0
        dv = i - 120.0 * m**3 * h * (v - 50.0) - 36.0 * n**4 * (v + 77.0) - 0.3 * (v + 54.387)
        return [dv, an * (1 - n) - bn * n]

    return f


def test_reduced_model_matches_scipy_and_has_state_v_n():
    red = hhjax.Membrane.hodgkin_huxley(reduced=True)
    assert red.kinetic_gates == ("n",)
    rest = hhjax.resting_state(red)
    stim = hhjax.StepCurrent(10.0, 5.0, 25.0)
    res = hhjax.simulate(red, stim, t_end=30.0, stepsize_controller=TIGHT, save_every=0.5)
    np.testing.assert_allclose(res.gate("h"), 0.89 - 1.1 * res.n, rtol=1e-12)
    m_inf = red.gates["m"].inf(res.v)
    np.testing.assert_allclose(res.m, m_inf, rtol=1e-12)
    y0 = [float(rest.v), float(rest["n"])]
    f = reduced_rhs_numpy(10.0, 5.0, 25.0)
    ys, t_prev = [], 0.0
    for (a, b) in ((0.0, 5.0), (5.0, 25.0), (25.0, 30.0)):
        ts = np.asarray(res.t)[(np.asarray(res.t) >= a) & (np.asarray(res.t) <= b)]
        sol = solve_ivp(lambda t, y: f(min(max(t, a + 1e-12), b - 1e-12), y), (a, b), y0,
                        method="Radau", rtol=1e-11, atol=1e-12, t_eval=ts)
        keep = sol.t > t_prev if ys else np.ones_like(sol.t, bool)
        ys.append(sol.y[:, keep])
        y0, t_prev = sol.y[:, -1], b
    ref = np.concatenate(ys, axis=1)
    assert float(np.max(ref[0])) > 20  # the reduced model fires
    np.testing.assert_allclose(res.v, ref[0], atol=1e-5)
    np.testing.assert_allclose(res.n, ref[1], atol=1e-7)


# --- differentiability, batching, dtype -----------------------------------------------


@pytest.mark.slow  # default-suite time (CI budget ~10 min)
def test_gradient_through_simulate_matches_finite_differences():
    mem = seed004_func6_membrane()
    stim = hhjax.StepCurrent(30.0, 2.0, 12.0)

    def loss(width):
        m = eqx.tree_at(lambda q: q.gates["b"].tau_fn.width, mem, width)
        r = hhjax.simulate(m, stim, t_end=15.0, save_every=0.5, stepsize_controller=TIGHT)
        return jnp.mean(r.v)

    w = 50.0
    g = jax.grad(loss)(w)
    h = 1e-4
    fd = (loss(w + h) - loss(w - h)) / (2 * h)
    assert np.isfinite(g)
    np.testing.assert_allclose(g, fd, rtol=1e-5)


def test_vmap_over_membranes_and_lambda_gates():
    mem = seed004_func6_membrane()
    gs = jnp.array([1.0, 2.0, 3.0])
    batch = jax.vmap(lambda g: eqx.tree_at(lambda q: q.channels["a"].g, mem, g))(gs)
    out = jax.vmap(lambda m: hhjax.simulate(m, hhjax.StepCurrent(30.0, 2.0, 12.0), t_end=15.0).v[-1])(batch)
    one = [float(hhjax.simulate(eqx.tree_at(lambda q: q.channels["a"].g, mem, g), hhjax.StepCurrent(30.0, 2.0, 12.0), t_end=15.0).v[-1]) for g in gs]
    np.testing.assert_allclose(out, one, rtol=1e-10)
    with pytest.raises(ValueError, match="jax.vmap"):
        hhjax.simulate(batch, None, t_end=1.0)


def test_dtype_follows_inputs():
    m32 = hhjax.Membrane.hodgkin_huxley(hhjax.HHParams(dtype=jnp.float32))
    assert m32.dtype == jnp.float32
    r = hhjax.simulate(m32, hhjax.StepCurrent(10.0, 1.0, 5.0, dtype=jnp.float32), t_end=5.0)
    assert r.v.dtype == jnp.float32
    m = hhjax.Membrane({"leak": hhjax.Channel(np.float32(0.1), np.float32(-65.0))}, c_m=np.float32(1.0))
    assert m.dtype == jnp.float32
    m64 = hhjax.Membrane({"leak": hhjax.Channel(0.1, -65.0)}, dtype=jnp.float64)
    assert m64.channels["leak"].g.dtype == jnp.float64


def test_passive_membrane_is_exact():
    """A passive RC membrane: v(t) = E + (I/g)(1 − exp(−g t / C)) during a step."""
    m = hhjax.Membrane({"leak": hhjax.Channel(0.5, -65.0)}, c_m=2.0)
    assert m.kinetic_gates == ()
    assert abs(float(hhjax.resting_state(m).v) + 65.0) < 1e-10
    r = hhjax.simulate(m, hhjax.StepCurrent(3.0, 0.0, 50.0), t_end=20.0, stepsize_controller=TIGHT)
    exact = -65.0 + 3.0 / 0.5 * (1 - np.exp(-0.5 * np.asarray(r.t) / 2.0))
    np.testing.assert_allclose(r.v, exact, atol=1e-8)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: hhjax.Membrane({"na": hhjax.Channel(1.0, 50.0, {"q": 1})}, {}), "gate 'q'"),
        (lambda: hhjax.Channel(1.0, 50.0, {"m": 0}), "integer >= 1"),
        (lambda: hhjax.Channel(1.0, 50.0, {"m": 1.5}), "integer >= 1"),
        (lambda: hhjax.Channel(-1.0, 50.0), "mS/cm²"),
        (lambda: hhjax.Channel(1.0, float("nan")), "mV"),
        (lambda: hhjax.Membrane({"l": hhjax.Channel(1.0, 0.0)}, c_m=0.0), "c_m"),
        (lambda: hhjax.Sigmoid(-40.0, 0.0), "slope"),
        (lambda: hhjax.Bell(1.0, 0.0, 0.0), "width"),
        (lambda: hhjax.RateGate(lambda v: v, lambda v: v, scale=-1.0), "scale"),
    ],
)
def test_bad_components_raise_value_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_types_raise_type_errors():
    with pytest.raises(TypeError, match="callable"):
        hhjax.RateGate(1.0, lambda v: v)
    with pytest.raises(TypeError, match="hhjax.Channel"):
        hhjax.Membrane({"na": (1.0, 50.0)})
    with pytest.raises(TypeError, match="gate"):
        hhjax.Membrane({"l": hhjax.Channel(1.0, 0.0)}, {"x": lambda v: v})
    mem = hhjax.Membrane.hodgkin_huxley()
    with pytest.raises(TypeError, match="MembraneState"):
        hhjax.simulate(mem, None, t_end=1.0, y0=hhjax.resting_state(hhjax.HHParams()))
    with pytest.raises(ValueError, match="kinetic gates"):
        hhjax.simulate(mem, None, t_end=1.0, y0=hhjax.MembraneState(v=-65.0, gates={"n": 0.3}))
