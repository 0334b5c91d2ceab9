"""The lean compile path of eager single-neuron calls (`hhjax._compile`): the same
values as the traced path and a fallback when XLA rejects the options. (Gradients
through the traced path with the default adjoint: tests/test_gradients.py.)"""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hhjax
from hhjax import _compile


def test_all_concrete_tells_eager_from_traced_calls():
    assert _compile.all_concrete(hhjax.HHParams(), None, 1.0, jnp.ones(3))
    seen = []

    def f(x):
        seen.append(_compile.all_concrete(hhjax.HHParams(), x))
        return x

    jax.jit(f)(1.0)
    jax.vmap(f)(jnp.ones(2))
    jax.grad(f)(1.0)
    assert seen == [False, False, False]


@pytest.mark.parametrize("kind", ["LEAN", "WIDE"])
def test_options_are_accepted_or_dropped(monkeypatch, kind):
    getter = getattr(_compile, f"{kind.lower()}_compiler_options")
    wrap = getattr(_compile, f"eager_{kind.lower()}_jit")
    # this jaxlib accepts them (a later XLA may not: then None and the defaults)
    assert getter() == getattr(_compile, f"{kind}_OPTIONS")
    f = wrap(lambda x, n: jnp.sin(x) * n)
    assert float(f(jnp.asarray(0.5), 3)) == pytest.approx(3 * np.sin(0.5), rel=1e-12)
    # an option this XLA does not know: no error, the defaults are used
    monkeypatch.setattr(_compile, f"{kind}_OPTIONS", {"xla_cpu_no_such_option_hhjax": True})
    assert getter() is None
    g = wrap(lambda x: 2 * x)
    assert float(g(jnp.asarray(1.5))) == 3.0


def test_eager_population_takes_the_wide_program_with_the_same_numbers(monkeypatch):
    """`simulate_population` called eagerly compiles its loop with the wide-vector
    options; inside `jit` the caller's compile decides. Same numbers either way."""
    from hhjax import _fast

    p = hhjax.HHParams(g_na=jnp.linspace(100.0, 140.0, 40))
    stim = hhjax.StepCurrent(amplitude=10.0, t_on=2.0, t_off=18.0)
    seen = []
    run = _fast._run
    monkeypatch.setattr(
        _fast, "_run",
        lambda *a: seen.append("eager" if _compile.all_concrete(a) else "traced") or run(*a),
    )
    eager = hhjax.simulate_population(p, stim, 20.0, save_every=0.5)
    traced = jax.jit(lambda q: hhjax.simulate_population(q, stim, 20.0, save_every=0.5))(p)
    assert seen == ["eager", "traced"]
    np.testing.assert_array_equal(np.asarray(eager.v), np.asarray(traced.v))


def test_eager_simulate_equals_the_traced_program():
    """An eager call (lean options, plain step loop) and the same call inside `jit`
    (default options, checkpointed loop) give the same trace and the same steps.
    (Eager membrane simulations against eager HHParams ones: tests/test_channels.py.)"""
    p = hhjax.HHParams()
    stim = hhjax.StepCurrent(amplitude=10.0, t_on=2.0, t_off=18.0)
    eager = hhjax.simulate(p, stim, t_end=20.0)
    traced = jax.jit(lambda q: hhjax.simulate(q, stim, t_end=20.0))(p)
    np.testing.assert_allclose(np.asarray(eager.v), np.asarray(traced.v), rtol=0, atol=1e-10)
    assert int(eager.stats["num_steps"]) == int(traced.stats["num_steps"])
    rest = hhjax.resting_state(p)
    rest_jit = jax.jit(hhjax.resting_state)(p)
    assert float(rest.v) == pytest.approx(float(rest_jit.v), abs=1e-12)


def test_eager_calls_take_the_lean_program_and_keep_a_given_adjoint(monkeypatch):
    import hhjax._simulate as sim

    seen = []
    solve = sim._solve
    monkeypatch.setattr(
        sim, "_solve",
        lambda *a: seen.append(
            ("eager" if _compile.all_concrete(a) else "traced", type(a[10]).__name__)
        ) or solve(*a),
    )
    p = hhjax.HHParams()
    stim = hhjax.StepCurrent(amplitude=10.0, t_on=1.0, t_off=4.0)
    a = hhjax.simulate(p, stim, t_end=5.0, adjoint=diffrax.DirectAdjoint())
    b = hhjax.simulate(p, stim, t_end=5.0)
    jax.jit(lambda q: hhjax.simulate(q, stim, t_end=5.0).v)(p)
    assert seen == [
        ("eager", "DirectAdjoint"),
        ("eager", "ForwardMode"),
        ("traced", "RecursiveCheckpointAdjoint"),
    ]
    np.testing.assert_allclose(np.asarray(a.v), np.asarray(b.v), rtol=0, atol=1e-10)
