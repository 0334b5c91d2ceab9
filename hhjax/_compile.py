"""How hhjax compiles the programs it runs on its own (eager calls on one neuron).

An eager `hhjax.simulate(...)` compiles a program over a handful of scalars: its
cost is the compile, not the run (about 2–3 s of compiling for under 10 ms of
simulation). XLA's CPU backend compiles such scalar programs about a quarter faster
with its classic elementwise emitters than with its newer fusion emitters, which
pay off only on wide (batched) arrays. (The traces and resting states of the HH and
Pospischil models were bitwise the same either way; other programs, e.g. a fit's
Levenberg–Marquardt step, may differ in the last bits, and batched ones run slower,
so only these single-neuron programs use the option.) So the
programs hhjax compiles for an eager single-neuron call ask for the classic
emitters through `jax.jit(..., compiler_options=...)` — per program, never through
JAX's global configuration or `XLA_FLAGS` — and everything traced (inside a user's `jit`, `vmap`
or `grad`) is compiled with the defaults, by whoever compiles the outer program.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

#: XLA options for compile-bound scalar programs (CPU only; other backends ignore
#: `xla_cpu_*` options)
LEAN_OPTIONS = {"xla_cpu_use_fusion_emitters": False}


@functools.cache
def lean_compiler_options() -> dict[str, Any] | None:
    """`LEAN_OPTIONS` if this jaxlib accepts them (an XLA that has dropped an option
    rejects it at compile time), else `None`. Checked once per process with a
    trivial compile."""
    try:
        jax.jit(lambda x: x, compiler_options=dict(LEAN_OPTIONS)).lower(
            jnp.zeros((), jnp.float32)
        ).compile()
    except Exception:  # noqa: BLE001 - any rejection means: use the defaults
        return None
    return dict(LEAN_OPTIONS)


def all_concrete(*trees: Any) -> bool:
    """True when no leaf of `trees` is a JAX tracer: the call is eager (not inside
    `jit`, `vmap` or `grad`), so nothing can differentiate or batch it."""
    return not any(
        isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(trees)
    )


def eager_lean_jit(fun: Callable) -> Callable:
    """`equinox.filter_jit(fun)`, compiled with [`lean_compiler_options`][] when the
    call is eager ([`all_concrete`][] arguments: one neuron, nothing to batch or
    differentiate) and with the defaults when it is traced (batched programs run
    slower with the lean options; inside a user's `jit` the outer compile decides
    anyway). The lean options fall back to the defaults where XLA rejects them."""
    traced = eqx.filter_jit(fun)

    @functools.cache
    def lean():
        opts = lean_compiler_options()
        return traced if opts is None else eqx.filter_jit(fun, compiler_options=opts)

    @functools.wraps(fun)
    def call(*args, **kwargs):
        return (lean() if all_concrete(args, kwargs) else traced)(*args, **kwargs)

    return call
