"""Test configuration: float64 and strict promotion, as in diffrax's own suite.

`jax.config` is set here (test configuration), never inside the packages.
"""

import pathlib

import jax
import pytest

jax.config.update("jax_enable_x64", True)

REPO = pathlib.Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
DATA = pathlib.Path(__file__).resolve().parent / "data"


@pytest.fixture
def getkey():
    """A fresh PRNG key per call, deterministic per test."""
    state = {"i": 0}

    def _getkey():
        state["i"] += 1
        return jax.random.key(state["i"])

    return _getkey


@pytest.fixture(scope="session")
def shared_dir():
    if not SHARED.is_dir():
        pytest.skip(f"../shared (recordings) not found at {SHARED}; clone next to it")
    return SHARED


@pytest.fixture
def ctrl_c_on_call(monkeypatch):
    """`ctrl_c_on_call(module, name, n)`: the `n`-th call of `module.name` raises
    `KeyboardInterrupt` (a Ctrl-C there), the others run it; returns the original
    (to put back with `monkeypatch.setattr`)."""

    def patch(module, name, n):
        original, calls = getattr(module, name), []

        def interrupting(*a, **k):
            calls.append(1)
            if len(calls) == n:
                raise KeyboardInterrupt
            return original(*a, **k)

        monkeypatch.setattr(module, name, interrupting)
        return original

    return patch
