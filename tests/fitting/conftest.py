"""Fixtures shared by the fitting tests."""

import pytest


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
