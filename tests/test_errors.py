"""Invalid arguments and failed solves: the right exception, with a message naming the
argument (and its value and unit), and result codes when `throw=False`."""

import re

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hhjax

UNITS = {
    "c_m": "µF/cm²",
    "g_na": "mS/cm²",
    "g_k": "mS/cm²",
    "g_leak": "mS/cm²",
    "e_na": "mV",
    "e_k": "mV",
    "e_leak": "mV",
    "temperature": "°C",
    "q10": "dimensionless",
    "v_shift": "mV",
}
FIELDS = tuple(UNITS)


def _assert_message(excinfo, *parts):
    msg = str(excinfo.value)
    for part in parts:
        assert part in msg, f"{part!r} not in {msg!r}"


# --------------------------------------------------------------------------------------
# HHParams


@pytest.mark.parametrize(
    "field, value",
    [
        ("c_m", 0.0),
        ("c_m", -1.0),
        ("g_na", -1.0),
        ("g_k", -0.5),
        ("g_leak", -0.01),
        ("q10", 0.0),
        ("q10", -3.0),
        ("temperature", -300.0),
    ],
)
def test_params_out_of_range(field, value):
    with pytest.raises(ValueError, match=re.escape(f"`{field}`")) as excinfo:
        hhjax.HHParams(**{field: value})
    _assert_message(excinfo, UNITS[field], repr(value))


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_params_non_finite(field, value):
    with pytest.raises(ValueError, match=re.escape(f"`{field}`")) as excinfo:
        hhjax.HHParams(**{field: value})
    _assert_message(excinfo, UNITS[field], repr(value), "finite")


@pytest.mark.parametrize("field", ["g_na", "e_leak"])
def test_params_non_finite_inside_an_array(field):
    with pytest.raises(ValueError, match=re.escape(f"`{field}`")) as excinfo:
        hhjax.HHParams(**{field: jnp.array([1.0, 2.0, jnp.nan])})
    _assert_message(excinfo, UNITS[field], "nan")


def test_params_negative_entry_inside_an_array():
    with pytest.raises(ValueError, match="`g_k`"):
        hhjax.HHParams(g_k=np.array([36.0, -1.0]))


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("value", ["1.0", None])
def test_params_non_numeric(field, value):
    with pytest.raises(TypeError, match=re.escape(f"`{field}`")) as excinfo:
        hhjax.HHParams(**{field: value})
    _assert_message(excinfo, UNITS[field], repr(value))


def test_params_shapes_must_broadcast():
    with pytest.raises(ValueError, match="broadcast") as excinfo:
        hhjax.HHParams(g_na=jnp.ones(3), g_k=jnp.ones(4))
    _assert_message(excinfo, "g_na", "g_k", "(3,)", "(4,)")
    # broadcastable shapes are fine
    p = hhjax.HHParams(g_na=jnp.ones(3), g_k=jnp.ones((2, 1)))
    assert p.g_na.shape == (3,) and p.g_k.shape == (2, 1)


@pytest.mark.parametrize("kinetics", ["classic", hhjax.ClassicKinetics, 1.0])
def test_params_kinetics_type(kinetics):
    with pytest.raises(TypeError, match="kinetics"):
        hhjax.HHParams(kinetics=kinetics)


@pytest.mark.parametrize("preset", ["squid_axon", "hh1952", "annarchy", "brainpy"])
def test_presets_validate_overrides(preset):
    make = getattr(hhjax.HHParams, preset)
    with pytest.raises(ValueError, match="`c_m`"):
        make(c_m=-1.0)
    with pytest.raises(ValueError, match="`g_leak`"):
        make(g_leak=np.nan)


def test_valid_params_do_not_raise():
    # the boundaries that are allowed: zero conductances, negative potentials
    p = hhjax.HHParams(g_na=0.0, g_k=0.0, g_leak=0.0, e_k=-100.0, temperature=-5.0)
    assert float(p.g_na) == 0.0


# --------------------------------------------------------------------------------------
# simulate: argument validation (raised before anything is compiled)

P = hhjax.HHParams()
STIM = hhjax.StepCurrent(10.0, 1.0, 15.0)


@pytest.mark.parametrize(
    "kwargs, exc, parts",
    [
        (dict(t_end=0.0), ValueError, ["`t_end`", "t0"]),
        (dict(t_end=-5.0), ValueError, ["`t_end`"]),
        (dict(t_end=5.0, t0=5.0), ValueError, ["`t_end`", "5.0"]),
        (dict(t_end=5.0, t0=7.0), ValueError, ["`t_end`"]),
        (dict(), TypeError, ["`t_end`", "required"]),
        (dict(t_end=np.inf), ValueError, ["`t_end`", "finite"]),
        (dict(t_end=np.nan), ValueError, ["`t_end`", "finite"]),
        (dict(t_end=5.0, t0=-np.inf), ValueError, ["`t0`", "finite"]),
        (dict(t_end="10"), TypeError, ["`t_end`"]),
        (dict(t_end=jnp.array([5.0, 6.0])), ValueError, ["`t_end`", "scalar"]),
        (dict(t_end=5.0, ts=[0.0, 2.0, 1.0]), ValueError, ["`ts`", "increasing"]),
        (dict(t_end=5.0, ts=[0.0, 2.0, 2.0]), ValueError, ["`ts`", "increasing"]),
        (dict(t_end=5.0, ts=[0.0, 6.0]), ValueError, ["`ts`", "t_end"]),
        (dict(t_end=5.0, ts=[-1.0, 2.0]), ValueError, ["`ts`", "t0"]),
        (dict(t_end=5.0, t0=1.0, ts=[0.5, 2.0]), ValueError, ["`ts`"]),
        (dict(t_end=5.0, ts=[0.0, np.nan]), ValueError, ["`ts`", "finite"]),
        (dict(t_end=5.0, ts=[[0.0, 1.0]]), ValueError, ["`ts`"]),
        (
            dict(t_end=5.0, ts=[0.0, 2.0], save_every=0.1),
            ValueError,
            ["`ts`", "`save_every`"],
        ),
        (dict(t_end=5.0, save_every=0.0), ValueError, ["`save_every`"]),
        (dict(t_end=5.0, save_every=-0.1), ValueError, ["`save_every`"]),
        (dict(t_end=5.0, save_every=np.nan), ValueError, ["`save_every`"]),
        (dict(t_end=5.0, solver="tsit5"), TypeError, ["`solver`", "tsit5"]),
        (dict(t_end=5.0, solver=diffrax.Tsit5), TypeError, ["`solver`"]),
        (
            dict(t_end=5.0, stepsize_controller="pid"),
            TypeError,
            ["`stepsize_controller`"],
        ),
        (dict(t_end=5.0, y0=(-65.0, 0.05, 0.6, 0.3)), TypeError, ["`y0`", "HHState"]),
        (dict(t_end=5.0, y0=jnp.zeros(4)), TypeError, ["`y0`"]),
        (
            dict(t_end=5.0, y0=hhjax.HHState(jnp.zeros(2), 0.1, 0.1, 0.1)),
            ValueError,
            ["`y0.v`", "jax.vmap"],
        ),
        (dict(t_end=5.0, max_steps=0), ValueError, ["`max_steps`"]),
        (dict(t_end=5.0, max_steps=-3), ValueError, ["`max_steps`"]),
        (dict(t_end=5.0, max_steps=2.5), ValueError, ["`max_steps`", "2.5"]),
        (dict(t_end=5.0, dt0=0.0), ValueError, ["`dt0`"]),
        (dict(t_end=5.0, dt0=-0.01), ValueError, ["`dt0`"]),
    ],
)
def test_simulate_invalid_arguments(kwargs, exc, parts):
    with pytest.raises(exc) as excinfo:
        hhjax.simulate(P, STIM, **kwargs)
    _assert_message(excinfo, *parts)


def test_simulate_batched_params_need_vmap():
    batched = hhjax.HHParams(g_na=jnp.array([100.0, 120.0]))
    with pytest.raises(ValueError, match="jax.vmap") as excinfo:
        hhjax.simulate(batched, STIM, t_end=5.0)
    _assert_message(excinfo, "g_na", "(2,)")


def test_simulate_params_and_stimulus_types():
    with pytest.raises(TypeError, match="`params`"):
        hhjax.simulate({"g_na": 120.0}, STIM, t_end=5.0)
    with pytest.raises(TypeError, match="`stimulus`"):
        hhjax.simulate(P, lambda t: 10.0, t_end=5.0)
    with pytest.raises(TypeError, match="`stimulus`"):
        hhjax.simulate(P, 10.0, t_end=5.0)


# --------------------------------------------------------------------------------------
# failed solves

SHORT_T_END = 20.0


def test_max_steps_exhausted_raises():
    with pytest.raises(hhjax.SimulationError, match="max_steps") as excinfo:
        hhjax.simulate(P, STIM, t_end=SHORT_T_END, max_steps=10)
    assert isinstance(excinfo.value, RuntimeError)
    _assert_message(excinfo, "max_steps=10")


def test_max_steps_exhausted_without_throw():
    res = hhjax.simulate(P, STIM, t_end=SHORT_T_END, max_steps=10, throw=False)
    assert not bool(res.successful)
    assert res.result == hhjax.RESULTS.max_steps_reached
    assert res.result != hhjax.RESULTS.successful
    assert int(res.stats["num_steps"]) == 10
    # enough steps: the same solve succeeds
    ok = hhjax.simulate(P, STIM, t_end=SHORT_T_END, throw=False)
    assert bool(ok.successful) and ok.result == hhjax.RESULTS.successful


# explicit Euler at dt = 0.5 ms is far outside its stability region for the HH fast
# gates and the membrane during a spike: the state overflows to inf/NaN.
BLOWUP = dict(t_end=50.0, solver=diffrax.Euler(), dt0=0.5)


def _strong_step(amplitude=50.0):
    return hhjax.StepCurrent(amplitude, 1.0, 50.0)


def test_euler_blowup_gives_nonfinite_state_without_throw():
    res = hhjax.simulate(P, _strong_step(), throw=False, **BLOWUP)
    assert res.result == hhjax.RESULTS.nonfinite_state
    assert not bool(res.successful)
    assert not np.all(np.isfinite(np.asarray(res.v)))


def test_euler_blowup_raises_with_throw():
    with pytest.raises(hhjax.SimulationError, match="non-finite"):
        hhjax.simulate(P, _strong_step(), **BLOWUP)


def test_exponential_euler_survives_the_same_step():
    res = hhjax.simulate(
        P, _strong_step(), t_end=50.0, solver=hhjax.ExponentialEuler(), dt0=0.5
    )
    assert bool(res.successful)
    assert np.all(np.isfinite(np.asarray(res.v)))
    assert np.all((np.asarray(res.m) >= 0) & (np.asarray(res.m) <= 1))


def test_result_codes_are_per_element_under_vmap():
    run = jax.jit(
        jax.vmap(lambda a: hhjax.simulate(P, _strong_step(a), throw=False, **BLOWUP))
    )
    res = run(jnp.array([0.0, 50.0]))
    np.testing.assert_array_equal(np.asarray(res.successful), [True, False])
    nonfinite = hhjax.RESULTS.nonfinite_state
    assert int(res.result._value[1]) == int(nonfinite._value)
    assert np.all(np.isfinite(np.asarray(res.v[0])))


def test_failure_inside_jit_raises_max_steps():
    @jax.jit
    def run(g_na):
        return hhjax.simulate(
            hhjax.HHParams(g_na=g_na), STIM, t_end=SHORT_T_END, max_steps=10
        ).v

    with pytest.raises(Exception, match="max_steps"):
        jax.block_until_ready(run(120.0))


def test_failure_inside_jit_raises_nonfinite():
    @jax.jit
    def run(amplitude):
        return hhjax.simulate(P, _strong_step(amplitude), **BLOWUP).v

    with pytest.raises(Exception, match="non-finite"):
        jax.block_until_ready(run(50.0))


def test_failure_inside_jit_without_throw_returns_code():
    @jax.jit
    def run(g_na):
        res = hhjax.simulate(
            hhjax.HHParams(g_na=g_na),
            STIM,
            t_end=SHORT_T_END,
            max_steps=10,
            throw=False,
        )
        return res.successful, res.result == hhjax.RESULTS.max_steps_reached

    ok, is_max_steps = run(120.0)
    assert not bool(ok) and bool(is_max_steps)


def test_nan_parameter_without_throw_reports_no_resting_state():
    # a NaN that bypasses construction (e.g. an optimiser step) must not raise from
    # the resting-state Newton solve when the caller asked for throw=False
    p = eqx.tree_at(lambda p: p.g_leak, hhjax.HHParams(), jnp.asarray(jnp.nan))
    stim = hhjax.StepCurrent(10.0, 2.0, 20.0)
    res = hhjax.simulate(p, stim, t_end=20.0, throw=False)
    assert not bool(res.successful)
    assert int(res.result._value) == int(hhjax.RESULTS.no_resting_state._value)
    with pytest.raises(hhjax.SimulationError, match="No resting state"):
        hhjax.simulate(p, stim, t_end=20.0)


def test_resting_state_compiles_once_outside_jit(monkeypatch):
    import hhjax._model as model

    calls = []
    orig = model.steady_state_current

    def counting(*a, **k):
        calls.append(1)
        return orig(*a, **k)

    monkeypatch.setattr(model, "steady_state_current", counting)
    p = hhjax.HHParams(g_leak=0.31)  # a fresh value, same structure
    v = [float(hhjax.resting_state(p, i_hold=i).v) for i in (0.0, 1.0, 2.0)]
    n_after_first = len(calls)  # 0 when an earlier test compiled this structure
    v += [float(hhjax.resting_state(p, i_hold=3.0).v)]
    assert len(calls) == n_after_first  # traced at most once, cached afterwards
    model._rest_residual(jnp.asarray(-65.0), (p, 0.0))
    assert len(calls) == n_after_first + 1  # (the counter does see the residual)
    assert np.all(np.diff(v) > 0)  # depolarised by the holding current
