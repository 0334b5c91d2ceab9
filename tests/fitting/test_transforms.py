"""Parameter transforms (Bounded/Positive/Affine) and fitting.ParameterSpace."""

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fitting
import hhjax

# See tests/test_properties.py: import libcst with its DeprecationWarning silenced,
# so that a failing hypothesis example is reported instead of an INTERNALERROR.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import libcst.metadata  # noqa: F401
    except ImportError:
        pass

FAST = settings(deadline=None, max_examples=60)

# (no subnormal bounds: XLA on CPU flushes subnormals to zero, so a bound of 1e-313
# is 0 inside the computation — not a parameter bound anyone uses)
lowers = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, allow_subnormal=False)
spans = st.floats(1e-3, 1e3, allow_nan=False, allow_infinity=False)
fractions = st.floats(1e-6, 1 - 1e-6)
moderate_u = st.floats(-10.0, 10.0, allow_nan=False)
any_u = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    st.sampled_from([-1e300, -1e6, -745.0, -40.0, 40.0, 745.0, 1e6, 1e300]),
)


def f(x):
    return float(np.asarray(x))


# ---- Bounded ------------------------------------------------------------------------


@FAST
@given(lo=lowers, span=spans, frac=fractions)
def test_bounded_forward_inverse_round_trip(lo, span, frac):
    hi = lo + span
    tr = fitting.Bounded(lo, hi)
    value = lo + frac * (hi - lo)
    assert lo < value < hi
    back = f(tr.forward(tr.inverse(value)))
    assert back == pytest.approx(value, rel=1e-9, abs=1e-9 * (span + abs(value)))


@FAST
@given(lo=lowers, span=spans, u=moderate_u)
def test_bounded_inverse_forward_round_trip(lo, span, u):
    tr = fitting.Bounded(lo, lo + span)
    assert f(tr.inverse(tr.forward(u))) == pytest.approx(u, abs=1e-5)


@FAST
@given(lo=lowers, span=spans, u=any_u)
def test_bounded_values_stay_inside_bounds(lo, span, u):
    hi = lo + span
    tr = fitting.Bounded(lo, hi)
    x = f(tr.forward(u))
    assert math.isfinite(x)
    assert lo <= x <= hi
    if abs(u) <= 20.0:
        # strictly inside while sigmoid(u) is resolvable
        assert lo < x < hi
        assert tr.contains(x)


def test_bounded_gradient_is_finite_and_positive():
    tr = fitting.Bounded(2.0, 7.0)
    g = jax.vmap(jax.grad(lambda u: tr.forward(u)))(jnp.linspace(-30.0, 30.0, 61))
    assert np.all(np.isfinite(g)) and np.all(np.asarray(g) >= 0)
    # the slope at u = 0 is span / 4
    assert f(jax.grad(tr.forward)(0.0)) == pytest.approx(5.0 / 4)


@pytest.mark.parametrize(
    "lo, hi",
    [(1.0, 1.0), (2.0, 1.0), (-math.inf, 1.0), (0.0, math.inf), (math.nan, 1.0)],
)
def test_bounded_rejects_bad_bounds(lo, hi):
    with pytest.raises(ValueError, match="lower < upper"):
        fitting.Bounded(lo, hi)


# ---- Positive -----------------------------------------------------------------------


@FAST
@given(
    scale=st.floats(1e-3, 1e3),
    rel=st.floats(1e-5, 1e5),
)
def test_positive_forward_inverse_round_trip(scale, rel):
    tr = fitting.Positive(scale)
    value = rel * scale
    back = f(tr.forward(tr.inverse(value)))
    assert back == pytest.approx(value, rel=1e-9)


@FAST
@given(scale=st.floats(1e-3, 1e3), u=any_u)
def test_positive_values_stay_positive(scale, u):
    tr = fitting.Positive(scale)
    x = f(tr.forward(u))
    assert math.isfinite(x) or u > 1e300 / scale
    assert x >= 0.0
    if -700.0 <= u <= 1e6:
        assert x > 0.0


@FAST
@given(scale=st.floats(1e-3, 1e3), u=moderate_u)
def test_positive_inverse_forward_round_trip(scale, u):
    tr = fitting.Positive(scale)
    assert f(tr.inverse(tr.forward(u))) == pytest.approx(u, abs=1e-6)


@pytest.mark.parametrize("scale", [0.0, -1.0, math.inf, math.nan])
def test_positive_rejects_bad_scale(scale):
    with pytest.raises(ValueError, match="scale > 0"):
        fitting.Positive(scale)


# ---- Affine -------------------------------------------------------------------------


@FAST
@given(
    loc=st.floats(-1e3, 1e3),
    scale=st.floats(1e-3, 1e3),
    value=st.floats(-1e4, 1e4),
)
def test_affine_round_trip(loc, scale, value):
    tr = fitting.Affine(loc, scale)
    assert f(tr.forward(tr.inverse(value))) == pytest.approx(
        value, rel=1e-12, abs=1e-12 * (abs(loc) + scale)
    )
    # and it is the documented affine map
    assert f(tr.forward(2.0)) == pytest.approx(loc + 2.0 * scale)


def test_affine_rejects_bad_scale():
    with pytest.raises(ValueError):
        fitting.Affine(0.0, 0.0)
    with pytest.raises(ValueError):
        fitting.Affine(math.nan, 1.0)


# ---- ParameterSpace -----------------------------------------------------------------

NAMES = ("g_na", "g_k", "g_leak", "e_na", "e_leak")


def test_parameter_space_round_trip_several_names():
    space = fitting.ParameterSpace(
        hhjax.HHParams(),
        NAMES,
        bounds={"g_na": (50.0, 300.0), "e_leak": fitting.Affine(-54.4, 10.0)},
    )
    assert space.size == len(NAMES)
    values = {"g_na": 140.0, "g_k": 30.0, "g_leak": 0.25, "e_na": 48.0, "e_leak": -60.0}
    u = space.to_vector(values)
    assert u.shape == (len(NAMES),)
    back = space.to_values(u)
    assert set(back) == set(NAMES)
    for n in NAMES:
        assert f(back[n]) == pytest.approx(values[n], rel=1e-10)
    p = space.to_params(u)
    assert isinstance(p, hhjax.HHParams)
    for n in NAMES:
        assert f(getattr(p, n)) == pytest.approx(values[n], rel=1e-10)
    # the fixed parameters are the template's
    ref = hhjax.HHParams()
    for n in ("c_m", "e_k", "temperature", "q10", "v_shift"):
        assert f(getattr(p, n)) == f(getattr(ref, n))
    # the start maps to the template's values
    u0 = space.to_vector(space.initial_values())
    for n, v in space.to_values(u0).items():
        assert f(v) == pytest.approx(f(getattr(ref, n)), rel=1e-10)


@FAST
@given(u=st.lists(st.floats(-8.0, 8.0), min_size=len(NAMES), max_size=len(NAMES)))
def test_parameter_space_vector_round_trip(u):
    space = fitting.ParameterSpace(hhjax.HHParams(), NAMES)
    u = jnp.asarray(u)
    back = space.to_vector(space.to_values(u))
    np.testing.assert_allclose(np.asarray(back), np.asarray(u), atol=1e-6)


def test_parameter_space_names_from_string():
    space = fitting.ParameterSpace(hhjax.HHParams(), "g_na, g_k")
    assert space.names == ("g_na", "g_k")


def test_parameter_space_default_bounds():
    space = fitting.ParameterSpace(hhjax.HHParams(), ("g_na", "e_na"))
    tg, te = space.transforms
    # conductances: a factor 5 either way; potentials: +-60 mV
    assert (tg.lower, tg.upper) == pytest.approx((24.0, 600.0))
    assert (te.lower, te.upper) == pytest.approx((-10.0, 110.0))


def test_parameter_space_wrong_vector_shape():
    space = fitting.ParameterSpace(hhjax.HHParams(), ("g_na", "g_k"))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        space.to_values(jnp.zeros(3))


def test_per_sweep_expansion():
    S = 3
    space = fitting.ParameterSpace(
        hhjax.HHParams(), ("g_na", "e_leak", "g_k"), per_sweep=("e_leak",), n_sweeps=S
    )
    assert space.size == 1 + S + 1
    e_leak = jnp.asarray([-60.0, -55.0, -50.0])
    u = space.to_vector({"g_na": 110.0, "e_leak": e_leak, "g_k": 40.0})
    assert u.shape == (space.size,)
    vals = space.to_values(u)
    assert jnp.shape(vals["g_na"]) == ()
    assert vals["e_leak"].shape == (S,)
    np.testing.assert_allclose(
        np.asarray(vals["e_leak"]), np.asarray(e_leak), rtol=1e-10
    )

    batched = space.sweep_params(u)
    for leaf in jax.tree_util.tree_leaves(batched):
        assert leaf.shape[0] == S
    np.testing.assert_allclose(
        np.asarray(batched.e_leak), np.asarray(e_leak), rtol=1e-10
    )
    np.testing.assert_allclose(np.asarray(batched.g_na), 110.0, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(batched.g_k), 40.0, rtol=1e-10)
    np.testing.assert_array_equal(np.asarray(batched.c_m), 1.0)
    for k in range(S):
        assert f(space.to_params(u, sweep=k).e_leak) == pytest.approx(f(e_leak[k]))
    # a scalar start is broadcast to every sweep
    u_scalar = space.to_vector({"g_na": 110.0, "e_leak": -58.0, "g_k": 40.0})
    np.testing.assert_allclose(np.asarray(space.to_values(u_scalar)["e_leak"]), -58.0)
    # the batched params simulate sweep-wise
    v = jax.vmap(lambda p: hhjax.resting_state(p, 0.0).v)(batched)
    assert v.shape == (S,) and np.all(np.diff(np.asarray(v)) > 0)  # e_leak increases


@pytest.mark.parametrize("spread", [0.05, 0.3, 0.9])
def test_sample_stays_inside_bounds(spread):
    space = fitting.ParameterSpace(
        hhjax.HHParams(),
        ("g_na", "g_k", "e_leak", "g_leak"),
        bounds={
            "g_na": (100.0, 125.0),  # the start sits near the upper bound
            "g_k": fitting.Positive(36.0),
            "e_leak": fitting.Affine(-54.4, 5.0),
        },
        per_sweep=("g_leak",),
        n_sweeps=2,
    )
    n = 200
    center = {"g_na": 120.0, "g_k": 36.0, "e_leak": -54.4, "g_leak": 0.3}
    U = space.sample(jax.random.key(3), n, center, spread)
    assert U.shape == (n, space.size)
    assert np.all(np.isfinite(np.asarray(U)))
    vals = {k: np.asarray(v) for k, v in jax.vmap(space.to_values)(U).items()}
    assert np.all((vals["g_na"] > 100.0) & (vals["g_na"] < 125.0))
    assert np.all(vals["g_na"] >= 120.0 * (1 - spread) - 1e-9)
    assert np.all(
        (vals["g_k"] > 0) & (np.abs(vals["g_k"] - 36.0) <= 36.0 * spread + 1e-9)
    )
    assert np.all(np.abs(vals["e_leak"] + 54.4) <= 54.4 * spread + 1e-9)
    assert vals["g_leak"].shape == (n, 2)
    assert np.all(np.abs(vals["g_leak"] - 0.3) <= 0.3 * spread + 1e-12)
    assert np.all((vals["g_leak"] > 0.06) & (vals["g_leak"] < 1.5))
    # genuinely random: the draws differ
    assert np.std(vals["g_k"]) > 0


def test_sample_with_zero_spread_returns_the_centre():
    space = fitting.ParameterSpace(hhjax.HHParams(), ("g_na", "g_k"))
    U = space.sample(jax.random.key(0), 4, {"g_na": 120.0, "g_k": 36.0}, 0.0)
    vals = jax.vmap(space.to_values)(U)
    np.testing.assert_allclose(np.asarray(vals["g_na"]), 120.0, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(vals["g_k"]), 36.0, rtol=1e-6)


# ---- errors -------------------------------------------------------------------------


def test_unknown_name_lists_fields():
    with pytest.raises(ValueError, match="g_nat") as e:
        fitting.ParameterSpace(hhjax.HHParams(), ("g_na", "g_nat"))
    msg = str(e.value)
    for field in ("c_m", "g_na", "g_k", "g_leak", "e_na", "e_k", "e_leak"):
        assert field in msg
    assert "area_cm2" in msg


def test_start_outside_bounds():
    with pytest.raises(ValueError, match="outside its bounds"):
        fitting.ParameterSpace(
            hhjax.HHParams(), ("g_na",), bounds={"g_na": (10.0, 50.0)}
        )
    with pytest.raises(ValueError, match="outside its bounds"):
        fitting.ParameterSpace(
            hhjax.HHParams(), ("e_leak",), bounds={"e_leak": fitting.Positive(1.0)}
        )


@pytest.mark.parametrize("bad", [(50.0, 50.0), (200.0, 50.0)])
def test_bad_bounds(bad):
    with pytest.raises(ValueError, match="lower < upper"):
        fitting.ParameterSpace(hhjax.HHParams(), ("g_na",), bounds={"g_na": bad})


def test_bounds_not_a_pair():
    with pytest.raises(ValueError, match="must be \\(lower, upper\\)"):
        fitting.ParameterSpace(hhjax.HHParams(), ("g_na",), bounds={"g_na": "wide"})


def test_bounds_for_a_parameter_not_fitted():
    with pytest.raises(ValueError, match="not fitted"):
        fitting.ParameterSpace(hhjax.HHParams(), ("g_na",), bounds={"g_k": (1.0, 90.0)})


def test_duplicate_names():
    with pytest.raises(ValueError, match="unique"):
        fitting.ParameterSpace(hhjax.HHParams(), ("g_na", "g_k", "g_na"))


def test_no_names():
    with pytest.raises(ValueError, match="at least one"):
        fitting.ParameterSpace(hhjax.HHParams(), ())


def test_per_sweep_name_not_fitted():
    with pytest.raises(ValueError, match="per_sweep"):
        fitting.ParameterSpace(
            hhjax.HHParams(), ("g_na",), per_sweep=("e_leak",), n_sweeps=2
        )


def test_recording_parameter_needs_a_start():
    with pytest.raises(ValueError, match="area_cm2"):
        fitting.ParameterSpace(hhjax.HHParams(), ("g_na", "area_cm2"))
    space = fitting.ParameterSpace(
        hhjax.HHParams(), ("g_na", "area_cm2"), recording_values={"area_cm2": 1e-5}
    )
    vals = space.to_values(space.to_vector(space.initial_values()))
    assert f(vals["area_cm2"]) == pytest.approx(1e-5, rel=1e-9)
    # recording parameters are not model parameters
    assert "area_cm2" not in space.model_values(vals)
