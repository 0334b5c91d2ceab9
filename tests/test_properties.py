"""Property-based tests (hypothesis) of the rate functions, the steady states, the
removable singularities and of simple invariants of simulations."""

import decimal
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hhjax

# On a failing example hypothesis' pytest plugin imports libcst (to write a patch),
# which emits a DeprecationWarning (mypy_extensions.TypedDict); with
# `filterwarnings = error` that becomes an INTERNALERROR hiding the real failure.
# Import it now with the warning silenced so failures are reported normally.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import libcst.metadata  # noqa: F401
    except ImportError:
        pass

RATE_NAMES = ("alpha_m", "beta_m", "alpha_h", "beta_h", "alpha_n", "beta_n")

# preset name -> (params, voltage offset of its convention)
PRESETS = {
    "classic": (hhjax.HHParams(), 0.0),
    "hh1952": (hhjax.HHParams.hh1952(), 65.0),
    "annarchy": (hhjax.HHParams.annarchy(), 0.0),
}

# the removable singularities of alpha_m and alpha_n, per preset
SINGULAR = {
    "classic": {"alpha_m": -40.0, "alpha_n": -55.0},
    "annarchy": {"alpha_m": -45.0, "alpha_n": -60.0},
    "hh1952": {"alpha_m": 25.0, "alpha_n": 10.0},
}
# limits there: alpha_m -> 0.1 * 10 = 1 /ms with slope 0.1 * 0.5 = 0.05 /ms/mV;
# alpha_n -> 0.01 * 10 = 0.1 /ms with slope 0.005 /ms/mV (phi = 1 at 6.3 °C)
LIMITS = {"alpha_m": (1.0, 0.05), "alpha_n": (0.1, 0.005)}

FAST = settings(deadline=None, max_examples=40)
SIM = settings(deadline=None, max_examples=8)


@jax.jit
def _rates_and_slopes(params, v):
    rates = params.rates(v)
    slopes = jax.jacfwd(params.rates)(v)
    return rates, slopes


@jax.jit
def _steady(params, v):
    ss = hhjax.steady_state(params, v)
    return ss, hhjax.gate_derivatives(params, ss)


voltages = st.floats(-100.0, 60.0, allow_nan=False, allow_infinity=False)


# --------------------------------------------------------------------------------------
# rates and steady states


@pytest.mark.parametrize("preset", list(PRESETS))
@FAST
@given(v=voltages)
def test_rates_positive_finite_with_finite_slope(preset, v):
    params, offset = PRESETS[preset]
    rates, slopes = _rates_and_slopes(params, v + offset)
    for name in RATE_NAMES:
        r, s = float(rates[name]), float(slopes[name])
        assert np.isfinite(r) and r > 0, (name, v, r)
        assert np.isfinite(s), (name, v, s)


@pytest.mark.parametrize("preset", list(PRESETS))
@FAST
@given(v=voltages)
def test_steady_state_gates_in_unit_interval_and_stationary(preset, v):
    params, offset = PRESETS[preset]
    ss, (dm, dh, dn) = _steady(params, v + offset)
    for x in (ss.m, ss.h, ss.n):
        assert 0.0 <= float(x) <= 1.0
    assert float(ss.v) == v + offset
    for d in (dm, dh, dn):
        assert abs(float(d)) < 1e-12


@FAST
@given(v=voltages)
def test_hh1952_is_the_classic_model_shifted_by_65_mV(v):
    classic, _ = _rates_and_slopes(PRESETS["classic"][0], v)
    shifted, _ = _rates_and_slopes(PRESETS["hh1952"][0], v + 65.0)
    for name in RATE_NAMES:
        np.testing.assert_allclose(
            float(shifted[name]), float(classic[name]), rtol=1e-12
        )


# --------------------------------------------------------------------------------------
# exprel_inv and phi1

# references in 60-digit decimal arithmetic (stdlib), exact for float64 purposes
_CTX = decimal.Context(prec=60)


def _exprel_inv_ref(u):
    """u / (1 - e^-u) and its derivative."""
    with decimal.localcontext(_CTX):
        u = decimal.Decimal(float(u))
        if abs(u) < decimal.Decimal("1e-20"):  # series; the rest is below 1e-80
            return float(1 + u / 2 + u * u / 12), float(decimal.Decimal("0.5") + u / 6)
        e = (-u).exp()
        value = u / (1 - e)
        slope = (1 - e - u * e) / (1 - e) ** 2
        return float(value), float(slope)


def _phi1_ref(z):
    """(e^z - 1) / z and its derivative."""
    with decimal.localcontext(_CTX):
        z = decimal.Decimal(float(z))
        if abs(z) < decimal.Decimal("1e-20"):  # series; the rest is below 1e-60
            return float(1 + z / 2 + z * z / 6), float(decimal.Decimal("0.5") + z / 3)
        e = z.exp()
        return float((e - 1) / z), float((z * e - (e - 1)) / z**2)


_exprel = jax.jit(jax.vmap(jax.value_and_grad(hhjax.exprel_inv)))
_phi1 = jax.jit(jax.vmap(jax.value_and_grad(hhjax.phi1)))

SPECIAL = [
    0.0,
    -0.0,
    1e-300,
    -1e-300,
    1e-12,
    -1e-12,
    1e-4,
    -1e-4,
    1e-3,
    -1e-3,
    np.nextafter(1e-3, 0.0),
    np.nextafter(-1e-3, 0.0),
    np.nextafter(1e-3, 1.0),
    2e-3,
]


@pytest.mark.parametrize("fn", [_exprel, _phi1], ids=["exprel_inv", "phi1"])
def test_exprel_inv_and_phi1_finite_near_zero(fn):
    values, slopes = fn(jnp.array(SPECIAL))
    assert np.all(np.isfinite(np.asarray(values)))
    assert np.all(np.isfinite(np.asarray(slopes)))
    # exact limits at 0
    assert float(values[0]) == 1.0 and float(slopes[0]) == 0.5
    # no jump across the series switch at |u| = 1e-3
    for i, j in ((8, 10), (9, 11), (8, 12)):
        assert abs(float(values[i] - values[j])) < 1e-9
        assert abs(float(slopes[i] - slopes[j])) < 1e-6


@pytest.mark.parametrize(
    "fn", [hhjax.exprel_inv, hhjax.phi1], ids=["exprel_inv", "phi1"]
)
def test_second_derivative_at_zero(fn):
    d2 = jax.grad(jax.grad(fn))(0.0)
    expected = 1.0 / 6.0 if fn is hhjax.exprel_inv else 1.0 / 3.0
    np.testing.assert_allclose(float(d2), expected, rtol=1e-12)


@FAST
@given(u=st.floats(-60.0, 60.0, allow_nan=False))
def test_exprel_inv_matches_closed_form(u):
    value, slope = _exprel(jnp.array([u]))
    ref_value, ref_slope = _exprel_inv_ref(u)
    np.testing.assert_allclose(float(value[0]), ref_value, rtol=1e-12)
    np.testing.assert_allclose(float(slope[0]), ref_slope, rtol=1e-9, atol=1e-300)


@FAST
@given(u=st.floats(-2e-3, 2e-3, allow_nan=False))
def test_exprel_inv_matches_closed_form_around_the_series_switch(u):
    value, slope = _exprel(jnp.array([u]))
    ref_value, ref_slope = _exprel_inv_ref(u)
    np.testing.assert_allclose(float(value[0]), ref_value, rtol=1e-12)
    np.testing.assert_allclose(float(slope[0]), ref_slope, rtol=1e-9)


@FAST
@given(
    z=st.one_of(
        st.floats(1e-3, 60.0),
        st.floats(-60.0, -1e-3),
        st.floats(-1e-4, 1e-4, allow_nan=False),
    )
)
def test_phi1_matches_closed_form(z):
    value, slope = _phi1(jnp.array([z]))
    ref_value, ref_slope = _phi1_ref(z)
    np.testing.assert_allclose(float(value[0]), ref_value, rtol=1e-12)
    np.testing.assert_allclose(float(slope[0]), ref_slope, rtol=1e-8)


def test_phi1_accurate_just_below_the_series_switch():
    zs = [np.nextafter(1e-3, 0.0), -np.nextafter(1e-3, 0.0), 5e-4, -5e-4]
    values, slopes = _phi1(jnp.array(zs))
    for z, value, slope in zip(zs, np.asarray(values), np.asarray(slopes)):
        ref_value, ref_slope = _phi1_ref(z)
        np.testing.assert_allclose(value, ref_value, rtol=1e-12)
        np.testing.assert_allclose(slope, ref_slope, rtol=1e-9)


# --------------------------------------------------------------------------------------
# removable singularities of the rates


@pytest.mark.parametrize(
    "preset, rate",
    [(p, r) for p in SINGULAR for r in ("alpha_m", "alpha_n")],
)
def test_rates_at_removable_singularities(preset, rate):
    params, _ = PRESETS[preset]
    v = SINGULAR[preset][rate]
    rates, slopes = _rates_and_slopes(params, v)
    value, slope = float(rates[rate]), float(slopes[rate])
    ref_value, ref_slope = LIMITS[rate]
    np.testing.assert_allclose(value, ref_value, rtol=1e-14)
    np.testing.assert_allclose(slope, ref_slope, rtol=1e-12)
    # continuous there: the neighbours (closed form) agree
    for dv in (-1e-6, 1e-6, -0.02, 0.02):
        near, near_slope = _rates_and_slopes(params, v + dv)
        np.testing.assert_allclose(float(near[rate]), value + slope * dv, rtol=1e-6)
        np.testing.assert_allclose(float(near_slope[rate]), slope, rtol=1e-2)
    # and everything built on the rates is finite there, gradients included
    jac = hhjax.jacobian_at(params, hhjax.steady_state(params, v))
    assert np.all(np.isfinite(np.asarray(jac)))
    g = jax.grad(lambda x: hhjax.steady_state_current(params, x))(v)
    assert np.isfinite(float(g))


@pytest.fixture(scope="module")
def sim_from_singularity():
    """d/d(g_na, v0) of a summary of a simulation started exactly at v = -40 mV."""
    ts = jnp.linspace(0.0, 5.0, 11)

    @jax.jit
    def loss(g_na, v0):
        params = hhjax.HHParams(g_na=g_na)
        ss = hhjax.steady_state(params, -40.0)
        y0 = hhjax.HHState(v=v0, m=ss.m, h=ss.h, n=ss.n)
        res = hhjax.simulate(params, None, t_end=5.0, ts=ts, y0=y0)
        return jnp.mean(res.v)

    return loss, jax.jit(jax.grad(loss, argnums=(0, 1)))


def test_gradient_of_simulation_started_at_singularity(sim_from_singularity):
    loss, grad = sim_from_singularity
    g_na, v0 = 120.0, -40.0
    d_gna, d_v0 = grad(g_na, v0)
    assert np.isfinite(float(loss(g_na, v0)))
    assert np.isfinite(float(d_gna)) and np.isfinite(float(d_v0))
    assert float(d_gna) != 0.0
    # central differences (the simulation fires from -40 mV: use a modest step)
    h = 1e-4
    fd_gna = (loss(g_na + h, v0) - loss(g_na - h, v0)) / (2 * h)
    fd_v0 = (loss(g_na, v0 + h) - loss(g_na, v0 - h)) / (2 * h)
    np.testing.assert_allclose(float(d_gna), float(fd_gna), rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(float(d_v0), float(fd_v0), rtol=1e-3, atol=1e-6)


# --------------------------------------------------------------------------------------
# simulations

GATE_T_END = 30.0


@jax.jit
def _gates_exp_euler(amplitude):
    stim = hhjax.StepCurrent(amplitude, 5.0, 25.0)
    res = hhjax.simulate(
        hhjax.HHParams(),
        stim,
        t_end=GATE_T_END,
        solver=hhjax.ExponentialEuler(),
        dt0=0.01,
        save_every=0.05,
    )
    return res.state


@jax.jit
def _gates_default(amplitude):
    stim = hhjax.StepCurrent(amplitude, 5.0, 25.0)
    return hhjax.simulate(
        hhjax.HHParams(), stim, t_end=GATE_T_END, save_every=0.05
    ).state


def _check_gates(state):
    for x in (state.m, state.h, state.n):
        x = np.asarray(x)
        assert np.all(np.isfinite(x))
        assert np.all((x >= 0.0) & (x <= 1.0)), (x.min(), x.max())
    assert np.all(np.isfinite(np.asarray(state.v)))


amplitudes = st.floats(-10.0, 50.0, allow_nan=False)


@SIM
@given(amplitude=amplitudes)
def test_gates_stay_in_unit_interval_exponential_euler(amplitude):
    _check_gates(_gates_exp_euler(amplitude))


@settings(deadline=None, max_examples=3)
@given(amplitude=amplitudes)
def test_gates_stay_in_unit_interval_default_solver(amplitude):
    _check_gates(_gates_default(amplitude))


def test_gates_probe_both_ends():
    # the extremes of the range really do drive the gates far (not a trivial check)
    hyper = _gates_exp_euler(-10.0)
    strong = _gates_exp_euler(50.0)
    assert float(jnp.min(hyper.v)) < -70.0
    assert float(jnp.max(strong.v)) > 20.0
    assert float(jnp.max(strong.m)) > 0.9 and float(jnp.min(strong.h)) < 0.2


REST_T_END = 50.0
DEFAULTS = np.array([120.0, 36.0, 0.3, -54.387])


def _make_params(x):
    return hhjax.HHParams(g_na=x[0], g_k=x[1], g_leak=x[2], e_leak=x[3])


@jax.jit
def _rest_exp_euler(x):
    params = _make_params(x)
    rest = hhjax.resting_state(params)
    res = hhjax.simulate(
        params, None, t_end=REST_T_END, solver=hhjax.ExponentialEuler(), save_every=0.5
    )
    return res.v, rest, hhjax.hh_derivatives(params, rest, 0.0)


@jax.jit
def _rest_default(x):
    params = _make_params(x)
    rest = hhjax.resting_state(params)
    res = hhjax.simulate(params, None, t_end=REST_T_END, save_every=0.5)
    return res.v, rest


scales = st.lists(st.floats(0.8, 1.2), min_size=4, max_size=4)


@SIM
@given(scale=scales)
def test_zero_input_from_rest_stays_at_rest(scale):
    x = DEFAULTS * np.asarray(scale)
    v, rest, deriv = _rest_exp_euler(jnp.asarray(x))
    assert abs(float(deriv.v)) < 1e-9  # the resting state is an equilibrium
    for d in (deriv.m, deriv.h, deriv.n):
        assert abs(float(d)) < 1e-12
    assert float(v[0]) == float(rest.v)
    assert float(jnp.max(jnp.abs(v - rest.v))) < 1e-8


@settings(deadline=None, max_examples=3)
@given(scale=scales)
def test_zero_input_from_rest_stays_near_rest_default_solver(scale):
    # Tsit5 at rtol = atol = 1e-6 (explicit, stiff gates): the equilibrium is kept to
    # within the tolerance, about rtol * |v| ~ 1e-4 mV.
    x = DEFAULTS * np.asarray(scale)
    v, rest = _rest_default(jnp.asarray(x))
    assert float(jnp.max(jnp.abs(v - rest.v))) < 1e-3
