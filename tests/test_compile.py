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


def test_lean_options_are_accepted_or_dropped(monkeypatch):
    opts = _compile.lean_compiler_options()
    # this jaxlib accepts them (a later XLA may not: then None and the defaults)
    assert opts == _compile.LEAN_OPTIONS
    f = _compile.eager_lean_jit(lambda x, n: jnp.sin(x) * n)
    assert float(f(jnp.asarray(0.5), 3)) == pytest.approx(3 * np.sin(0.5), rel=1e-12)
    # an option this XLA does not know: no error, the defaults are used
    _compile.lean_compiler_options.cache_clear()
    monkeypatch.setattr(_compile, "LEAN_OPTIONS", {"xla_cpu_no_such_option_hhjax": True})
    try:
        assert _compile.lean_compiler_options() is None
        g = _compile.eager_lean_jit(lambda x: 2 * x)
        assert float(g(jnp.asarray(1.5))) == 3.0
    finally:
        _compile.lean_compiler_options.cache_clear()


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
