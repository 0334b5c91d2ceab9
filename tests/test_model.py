"""The model: rate tables, presets, temperature scaling, resting state, currents."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hhjax


def np_classic(v):
    """The classic rates written out in NumPy (independent of hhjax)."""
    return dict(
        alpha_m=0.1 * (v + 40) / (1 - np.exp(-(v + 40) / 10)),
        beta_m=4 * np.exp(-(v + 65) / 18),
        alpha_h=0.07 * np.exp(-(v + 65) / 20),
        beta_h=1 / (1 + np.exp(-(v + 35) / 10)),
        alpha_n=0.01 * (v + 55) / (1 - np.exp(-(v + 55) / 10)),
        beta_n=0.125 * np.exp(-(v + 65) / 80),
    )


def np_annarchy(v):
    """Seed 000's rate expressions, transcribed."""
    return dict(
        alpha_n=0.01 * (v + 60.0) / (1.0 - np.exp(-0.1 * (v + 60.0))),
        alpha_m=0.1 * (v + 45.0) / (1.0 - np.exp(-0.1 * (v + 45.0))),
        alpha_h=0.07 * np.exp(-0.05 * (v + 70.0)),
        beta_n=0.125 * np.exp(-0.0125 * (v + 70.0)),
        beta_m=4.0 * np.exp(-(v + 70.0) / 80.0),
        beta_h=1.0 / (1.0 + np.exp(-0.1 * (v + 40.0))),
    )


def np_gist(vm):
    """Seed 001's rates (1952 convention, vm = depolarisation from rest)."""
    return dict(
        alpha_n=(0.01 * (10.0 - vm)) / (np.exp(1.0 - (0.1 * vm)) - 1.0),
        beta_n=0.125 * np.exp(-vm / 80.0),
        alpha_m=(0.1 * (25.0 - vm)) / (np.exp(2.5 - (0.1 * vm)) - 1.0),
        beta_m=4.0 * np.exp(-vm / 18.0),
        alpha_h=0.07 * np.exp(-vm / 20.0),
        beta_h=1.0 / (np.exp(3.0 - (0.1 * vm)) + 1.0),
    )


V = np.array([-90.0, -70.3, -41.0, -30.0, 0.0, 12.5, 40.0])


@pytest.mark.parametrize(
    "params, reference, v",
    [
        (hhjax.HHParams(), np_classic, V),
        (hhjax.HHParams.annarchy(), np_annarchy, V),
        (hhjax.HHParams.hh1952(), np_gist, V + 65.0),
    ],
    ids=["classic", "annarchy", "hh1952"],
)
def test_rates_match_written_out_formulas(params, reference, v):
    got = params.rates(jnp.asarray(v))
    want = reference(v)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12, err_msg=k)


def test_presets_fields():
    b = hhjax.HHParams.brainpy()
    assert float(b.g_leak) == 0.03 and float(b.e_leak) == -54.387
    a = hhjax.HHParams.annarchy()
    assert (float(a.e_na), float(a.e_k), float(a.e_leak)) == (45.0, -82.0, -59.387)
    assert isinstance(a.kinetics, hhjax.ANNarchyKinetics)
    o = hhjax.HHParams.hh1952(g_na=100.0)
    assert float(o.g_na) == 100.0 and float(o.v_shift) == 65.0


def test_hh1952_is_classic_shifted_by_65_mV():
    stim = hhjax.StepCurrent(10.0, 5.0, 25.0)
    tight = diffrax.PIDController(rtol=1e-10, atol=1e-10)
    kw = dict(t_end=30.0, save_every=0.1, stepsize_controller=tight)
    a = hhjax.simulate(hhjax.HHParams(), stim, **kw)
    b = hhjax.simulate(hhjax.HHParams.hh1952(), stim, **kw)
    np.testing.assert_allclose(b.v - 65.0, a.v, atol=1e-6)
    np.testing.assert_allclose(b.n, a.n, atol=1e-8)


def test_temperature_scaling():
    v = jnp.array(-50.0)
    p = hhjax.HHParams()
    hot = hhjax.HHParams(temperature=16.3, q10=3.0)
    for k, r in p.rates(v).items():
        np.testing.assert_allclose(hot.rates(v)[k], 3.0 * r, rtol=1e-13, err_msg=k)
    # faster kinetics at higher temperature: narrower spikes
    stim = hhjax.StepCurrent(20.0, 1.0, 3.0)
    cold = hhjax.simulate(p, stim, t_end=20.0, save_every=0.01)
    warm = hhjax.simulate(hhjax.HHParams(temperature=15.0), stim, t_end=20.0, save_every=0.01)

    def width(res):
        return float(jnp.sum(res.v > 0.0)) * 0.01

    assert width(warm) < width(cold)


def test_resting_state_properties():
    p = hhjax.HHParams()
    y = hhjax.resting_state(p)
    assert abs(float(y.v) + 65.0) < 0.01
    cur = hhjax.ionic_currents(p, y)
    assert abs(float(cur.total)) < 1e-9
    d = hhjax.hh_derivatives(p, y, 0.0)
    for leaf in (d.v, d.m, d.h, d.n):
        assert abs(float(leaf)) < 1e-9
    # holding current moves rest up; eigenvalues at rest all have negative real parts
    y2 = hhjax.resting_state(p, i_hold=2.0)
    assert float(y2.v) > float(y.v)
    ev = np.linalg.eigvals(np.asarray(hhjax.jacobian_at(p, y)))
    assert np.all(ev.real < 0)


def test_resting_state_jit_vmap_grad():
    def v_rest(e_leak):
        return hhjax.resting_state(hhjax.HHParams(e_leak=e_leak)).v

    vs = jax.jit(jax.vmap(v_rest))(jnp.array([-60.0, -54.387, -50.0]))
    assert np.all(np.diff(np.asarray(vs)) > 0)
    g = jax.grad(v_rest)(-54.387)
    h = 1e-5
    fd = (v_rest(-54.387 + h) - v_rest(-54.387 - h)) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-6)


def test_resting_state_derivatives_forward_and_reverse_match_finite_differences():
    # the implicit-function last Newton step: d v_rest / dθ for every parameter kind,
    # reverse and forward mode, and for a Membrane
    def v_rest(x):
        p = hhjax.HHParams(g_na=x[0], g_k=x[1], e_k=x[2])
        return hhjax.resting_state(p, i_hold=x[3]).v

    x = jnp.array([120.0, 36.0, -77.0, 1.5])
    g_rev = jax.grad(v_rest)(x)
    g_fwd = jax.jacfwd(v_rest)(x)
    fd = np.array([(v_rest(x.at[i].add(1e-5)) - v_rest(x.at[i].add(-1e-5))) / 2e-5 for i in range(4)])
    np.testing.assert_allclose(g_rev, fd, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(g_fwd, g_rev, rtol=1e-12)
    assert float(g_rev[3]) > 0  # a depolarising holding current raises the rest

    def v_mem(g):
        m = hhjax.pospischil("RS")
        m = eqx.tree_at(lambda q: q.channels["m"].g, m, g)
        return hhjax.resting_state(m).v

    g = float(hhjax.pospischil("RS").channels["m"].g)
    np.testing.assert_allclose(
        jax.grad(v_mem)(g), (v_mem(g + 1e-6) - v_mem(g - 1e-6)) / 2e-6, rtol=1e-5
    )


def test_resting_state_reports_non_convergence():
    with pytest.raises(Exception, match="did not converge"):
        hhjax.resting_state(hhjax.HHParams(), max_steps=1)
    y = hhjax.resting_state(hhjax.HHParams(), max_steps=1, throw=False)
    assert np.isfinite(float(y.v))  # the last iterate, unchecked


def _window_k_membrane():
    """The FS cell plus a D-type K current (Golomb et al. 2007 kinetics, a³b): its
    steady-state I–V curve rises to a local maximum near −55 mV, just above the
    leak reversal the solve starts from, and has three zeros (stable rest near
    −74 mV). Plain Newton from −58.6 mV cycles between about −59 and −141 mV."""
    mb = hhjax.pospischil("FS", g_leak=0.06, e_leak=-58.58, g_na=79.3, g_kd=13.2,
                          v_t=-57.1)
    ch, gates = dict(mb.channels), dict(mb.gates)
    ch["kdt"] = hhjax.Channel(5.0, -96.9, {"a": 3, "b": 1})
    gates["a"] = hhjax.InfTauGate(hhjax.Sigmoid(-50.0, 20.0), hhjax.Constant(2.0))
    gates["b"] = hhjax.InfTauGate(hhjax.Sigmoid(-70.0, -6.0), hhjax.Constant(150.0))
    return hhjax.Membrane(ch, gates, mb.c_m)


def test_resting_state_is_found_where_plain_newton_cycles():
    mb = _window_k_membrane()
    f = jax.vmap(lambda v: hhjax.steady_state_current(mb, v))
    grid = np.linspace(-120.0, 40.0, 3201)
    fg = np.asarray(f(jnp.asarray(grid)))
    roots = grid[:-1][np.sign(fg[:-1]) != np.sign(fg[1:])]
    assert roots.size == 3 and abs(float(mb.default_v_guess()) + 58.58) < 1e-9
    assert float(f(jnp.asarray([-58.58]))[0]) > 0  # started above the stable root
    y = hhjax.resting_state(mb)  # raises if not converged
    v = float(y.v)
    assert abs(float(hhjax.steady_state_current(mb, y.v))) < 1e-9  # µA/cm²
    assert abs(v - roots[0]) < 0.06  # the stable rest on the grid (0.05 mV spacing)
    # the resting state is an equilibrium of the full model
    d = hhjax.model_derivatives(mb, y, 0.0)
    assert abs(float(d.v)) < 1e-9 and all(abs(float(x)) < 1e-9 for x in d.gates.values())
    # its derivative is still the implicit-function one
    def v_of(g):
        return hhjax.resting_state(eqx.tree_at(lambda m: m.channels["kdt"].g, mb, g)).v
    g = jnp.asarray(5.0)
    np.testing.assert_allclose(jax.grad(v_of)(g), (v_of(g + 1e-6) - v_of(g - 1e-6)) / 2e-6,
                               rtol=1e-5)


def test_vector_field_is_a_diffrax_term():
    p = hhjax.HHParams()
    stim = hhjax.StepCurrent(10.0, 10.0, 90.0)
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(hhjax.hh_vector_field),
        diffrax.Tsit5(),
        0.0,
        30.0,
        0.01,
        hhjax.resting_state(p),
        args=(p, stim),
        stepsize_controller=diffrax.ClipStepSizeController(
            diffrax.PIDController(rtol=1e-8, atol=1e-8, norm=hhjax.finite_rms_norm),
            jump_ts=stim.jump_times,
        ),
        saveat=diffrax.SaveAt(ts=jnp.array([30.0])),
    )
    res = hhjax.simulate(p, stim, t_end=30.0, ts=jnp.array([30.0]))
    np.testing.assert_allclose(sol.ys.v, res.v, atol=1e-3)


def test_currents_from_result():
    p = hhjax.HHParams()
    res = hhjax.simulate(p, hhjax.StepCurrent(10.0, 5.0, 25.0), t_end=30.0)
    manual_na = 120.0 * res.m**3 * res.h * (res.v - 50.0)
    np.testing.assert_allclose(res.i_na, manual_na, rtol=1e-12)
    np.testing.assert_allclose(res.i_ion, res.i_na + res.i_k + res.i_leak, rtol=1e-12)
    # dv/dt = (i_stim - i_ion)/c_m matches the finite difference of the trace
    dv_fd = np.gradient(np.asarray(res.v), np.asarray(res.t))
    mid = slice(600, 2400)
    np.testing.assert_allclose(res.dvdt[mid], dv_fd[mid], rtol=1e-2, atol=0.5)


def test_params_are_a_pytree_of_arrays():
    p = hhjax.HHParams()
    leaves = jax.tree_util.tree_leaves(p)
    assert len(leaves) == 10
    p2 = eqx.tree_at(lambda q: q.g_na, p, jnp.array(100.0))
    assert float(p2.g_na) == 100.0 and float(p.g_na) == 120.0


def test_no_retrace_for_new_parameter_values():
    @eqx.filter_jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def last_v(q):
        return hhjax.simulate(q, hhjax.StepCurrent(5.0, 1.0, 4.0), t_end=5.0).v[-1]

    last_v(hhjax.HHParams())
    last_v(hhjax.HHParams(g_na=100.0, e_leak=-60.0))
