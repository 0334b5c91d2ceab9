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

Batched fixed-step loops (an eager `hhjax.simulate_population`) are the opposite
case: long elementwise loops over a neuron axis. XLA:CPU vectorises them with
256-bit registers by default; asking for 512 bits where the CPU has them (AVX-512)
made the loop 1.4–1.6x faster on the 2-core AVX-512 benchmark machine, with bitwise
the same numbers (the same operations, more lanes per instruction).
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

#: XLA options for batched fixed-step loops: let LLVM vectorise with 512-bit
#: registers where the CPU has them (AVX-512; XLA:CPU prefers 256 bits by default;
#: a CPU without them keeps its widest). Elementwise arithmetic over a batch axis
#: is the whole loop, so wider vectors are fewer instructions per neuron-step.
WIDE_OPTIONS = {"xla_cpu_prefer_vector_width": 512}


@functools.cache
def _accepted(items: tuple) -> dict[str, Any] | None:
    """The options `dict(items)` if this jaxlib accepts them (an XLA that has dropped
    an option rejects it at compile time), else `None`. Checked once per process and
    option set with a trivial compile."""
    options = dict(items)
    try:
        jax.jit(lambda x: x, compiler_options=options).lower(
            jnp.zeros((), jnp.float32)
        ).compile()
    except Exception:  # noqa: BLE001 - any rejection means: use the defaults
        return None
    return options


def lean_compiler_options() -> dict[str, Any] | None:
    """`LEAN_OPTIONS` if this jaxlib accepts them, else `None`."""
    return _accepted(tuple(sorted(LEAN_OPTIONS.items())))


def wide_compiler_options() -> dict[str, Any] | None:
    """`WIDE_OPTIONS` if this jaxlib accepts them, else `None`."""
    return _accepted(tuple(sorted(WIDE_OPTIONS.items())))


def all_concrete(*trees: Any) -> bool:
    """True when no leaf of `trees` is a JAX tracer: the call is eager (not inside
    `jit`, `vmap` or `grad`), so nothing can differentiate or batch it."""
    return not any(
        isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(trees)
    )


def eager_jit(fun: Callable, options: Callable[[], dict[str, Any] | None]) -> Callable:
    """`equinox.filter_jit(fun)`, compiled with `options()` when the call is eager
    ([`all_concrete`][] arguments) and with the defaults when it is traced (inside a
    user's `jit` the outer compile decides anyway). The options fall back to the
    defaults where XLA rejects them."""
    traced = eqx.filter_jit(fun)

    @functools.cache
    def program():  # (`options()` is fixed for the process)
        opts = options()
        return traced if opts is None else eqx.filter_jit(fun, compiler_options=opts)

    @functools.wraps(fun)
    def call(*args, **kwargs):
        return (program() if all_concrete(args, kwargs) else traced)(*args, **kwargs)

    return call


def eager_lean_jit(fun: Callable) -> Callable:
    """[`eager_jit`][] with [`lean_compiler_options`][]: for eager single-neuron
    programs (batched programs run slower with the lean options)."""
    return eager_jit(fun, lean_compiler_options)


def eager_wide_jit(fun: Callable) -> Callable:
    """[`eager_jit`][] with [`wide_compiler_options`][]: for eager batched programs."""
    return eager_jit(fun, wide_compiler_options)
