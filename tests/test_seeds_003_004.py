"""Seeds 003 (reduced two-variable HH, slider explorer) and 004 (the tutorial's
neuron_func_1 ... 7), each checked against the document's own loop re-implemented in
numpy here: same forward-Euler scheme, same step, same stimulus sampling."""

import importlib.util
import pathlib

import numpy as np
import pytest
from matplotlib.figure import Figure

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# --- seed 003 ---------------------------------------------------------------------


def seed003_numpy(C, Gna, Gk, Gleak, Iin):
    """The document's HH_model loop, verbatim up to array shapes."""
    dt, t_end = 0.5, 1000
    time = int(t_end / dt)
    Ena, Ek, Eleak = 50.0, -80.0, -65.0
    kn, km, tau, Vn = 15.0, 7.0, 10.0, -45.0
    n = np.zeros(time)
    V = Eleak * np.ones(time)
    for t in range(1, time):
        minf = 1 / (1 + np.exp((-40.0 - V[t - 1]) / km))
        ninf = 1 / (1 + np.exp((Vn - V[t - 1]) / kn))
        h = 0.89 - 1.1 * n[t - 1]
        dvdt = (1 / C) * (-Gna * minf**3 * h * (V[t - 1] - Ena) - Gk * n[t - 1] ** 4 * (V[t - 1] - Ek)
                          - Gleak * (V[t - 1] - Eleak) + Iin)
        dndt = (1 / tau) * (ninf - n[t - 1])
        V[t] = V[t - 1] + dvdt * dt
        n[t] = n[t - 1] + dndt * dt
    return V, n


@pytest.fixture(scope="module")
def seed003():
    return load("seed003_reduced")


@pytest.mark.parametrize(
    "kw",
    [
        dict(C=1.0, Gna=2.0, Gk=1.44, Gleak=0.2, Iin=2.0),  # the defaults: sub-threshold
        dict(C=1.0, Gna=2.0, Gk=1.44, Gleak=0.2, Iin=6.0),  # repetitive firing
        dict(C=0.5, Gna=3.1, Gk=0.9, Gleak=0.6, Iin=9.3),
    ],
)
def test_seed003_matches_the_documents_loop(seed003, kw):
    V, n = seed003_numpy(**kw)
    res = seed003.simulate(**kw)
    assert res.v.shape == V.shape
    # same scheme and step; rounding differences amplified through spikes stay tiny
    np.testing.assert_allclose(res.v, V, atol=1e-7)
    np.testing.assert_allclose(res.n, n, atol=1e-9)
    np.testing.assert_allclose(res.gate("h"), 0.89 - 1.1 * n, atol=1e-9)


def test_seed003_example_and_static_explorer(seed003, tmp_path):
    counts = seed003.main(["--out", str(tmp_path)])
    # the document's loop: 0, 24, 40, 55 upward 0-mV crossings at Iin = 2, 4, 6, 10
    ref = {}
    for i_in in counts:
        V, _ = seed003_numpy(1.0, 2.0, 1.44, 0.2, i_in)
        ref[i_in] = int(np.sum((V[1:] > 0) & (V[:-1] <= 0)))
    assert counts == ref
    assert ref[2.0] == 0 and ref[10.0] > ref[4.0] > 0
    assert isinstance(seed003.explorer(), Figure)  # no Jupyter kernel here: static
    for name in ("seed003_reduced.png", "seed003_explorer.png"):
        assert (tmp_path / name).stat().st_size > 10_000


# --- seed 004 ---------------------------------------------------------------------


def seed004_numpy(k):
    """neuron_func_k of the tutorial: its forward-Euler loop, with its gate functions."""

    def bell(mu, sig, scale):
        return lambda v: scale * np.exp(-(((v - mu) / sig) ** 2))

    inf_a = lambda v: 1 / (1 + 0.1 * np.exp(-0.1 * v))  # noqa: E731
    inf_a_act = lambda v: 1 / (1 + 0.1 * np.exp(-0.5 * (v + 50.0)))  # noqa: E731
    inf_inact = lambda v: -1 / (1.1 + 0.1 * np.exp(-0.1 * v)) + 1  # noqa: E731
    inf_b = lambda v: 1 / (1.1 + 0.1 * np.exp(-0.09 * v))  # noqa: E731
    # channels: (g, E, {gate: exponent}); gates: name -> (inf, tau)
    if k == 1:
        T, amp, ch, gates = 100, 30.0, [(1.0, -65.0, {})], {}
    elif k == 2:
        T, amp, ch, gates = 100, 30.0, [(1.0, -65.0, {}), (1.0, 65.0, {})], {}
    elif k == 3:
        T, amp = 100, 30.0
        ch = [(20.0, -65.0, {"a": 1}), (1.0, -65.0, {})]
        gates = {"a": (inf_a, bell(-10.0, 50.0, 1.0))}
    elif k == 4:
        T, amp = 200, 30.0
        ch = [(1.0, 120.0, {"a": 1}), (2.0, -70.0, {"b": 1})]
        gates = {"a": (inf_a, bell(-10.0, 60.0, 300 / 60)), "b": (inf_inact, bell(-10.0, 50.0, 300 / 50))}
    elif k == 5:
        T, amp = 200, 30.0
        ch = [(2.0, 120.0, {"x": 3, "y": 1}), (1.0, -70.0, {})]
        gates = {"x": (inf_a_act, bell(-10.0, 60.0, 300 / 60)), "y": (inf_inact, bell(-10.0, 50.0, 300 / 50))}
    elif k == 6:
        T, amp = 200, 30.0
        ch = [(2.0, 120.0, {"x": 3, "y": 1}), (5.0, -70.0, {"b": 4})]
        gates = {
            "x": (inf_a_act, bell(-10.0, 60.0, 300 / 60)),
            "y": (inf_inact, bell(-10.0, 50.0, 300 / 50)),
            "b": (inf_b, bell(5.0, 50.0, 300 / 50)),
        }
    else:  # full HH in the tutorial's shifted rate functions, v - vr
        vr = -65.0
        an = lambda u: 0.01 * (10.0 - u) / (np.exp((10.0 - u) / 10.0) - 1.0)  # noqa: E731
        bn = lambda u: 0.125 * np.exp(-u / 80.0)  # noqa: E731
        am = lambda u: 0.1 * (25.0 - u) / (np.exp((25.0 - u) / 10.0) - 1.0)  # noqa: E731
        bm = lambda u: 4.0 * np.exp(-u / 18.0)  # noqa: E731
        ah = lambda u: 0.07 * np.exp(-u / 20.0)  # noqa: E731
        bh = lambda u: 1.0 / (np.exp((30.0 - u) / 10.0) + 1.0)  # noqa: E731

        def gate(a, b):
            return (lambda v: a(v - vr) / (a(v - vr) + b(v - vr)), lambda v: 1.0 / (a(v - vr) + b(v - vr)))

        T, amp = 200, 5.0
        ch = [(36.0, -12 + vr, {"n": 4}), (120.0, 120 + vr, {"m": 3, "h": 1}), (0.3, 10.6 + vr, {})]
        gates = {"n": gate(an, bn), "m": gate(am, bm), "h": gate(ah, bh)}
    tau = 0.01
    t = np.arange(0, T, tau)
    nn = t.shape[0]
    I = np.zeros(nn)
    I[nn // 5 : 2 * nn // 5] = amp
    I[3 * nn // 5 : 4 * nn // 5] = -amp
    v = np.zeros(nn)
    x = {g: np.zeros(nn) for g in gates}
    v[0] = -65.0
    for g, (inf, _) in gates.items():
        x[g][0] = inf(-65.0)
    for i in range(1, nn):
        dt = t[i] - t[i - 1]
        i_ion = 0.0
        for g_max, e, ex in ch:
            cond = g_max
            for g, p in ex.items():
                cond = cond * x[g][i - 1] ** p
            i_ion += cond * (v[i - 1] - e)
        dv = (I[i - 1] - i_ion) / 1.0
        for g, (inf, tau_fn) in gates.items():
            x[g][i] = x[g][i - 1] + (inf(v[i - 1]) - x[g][i - 1]) / tau_fn(v[i - 1]) * dt
        v[i] = v[i - 1] + dv * dt
    return t, v


@pytest.fixture(scope="module")
def seed004_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("seed004")
    return load("seed004_tutorial").main(["--out", str(out)]), out


@pytest.mark.parametrize("k", range(1, 8))
def test_seed004_matches_the_tutorials_loop(seed004_run, k):
    results, out = seed004_run
    t, v = seed004_numpy(k)
    res = results[k]
    np.testing.assert_allclose(res.t, t, atol=1e-9)
    # rounding differences, amplified through the fast upstrokes over 20000 steps,
    # stay below 1e-5 mV; a one-step shift of the stimulus would give ~0.3–30 mV
    np.testing.assert_allclose(res.v, v, atol=1e-5)
    assert (out / f"seed004_neuron_func_{k}.png").stat().st_size > 10_000
    if k in (6, 7):
        assert float(np.max(v)) > 40  # the action-potential models do fire


def test_seed003_nullclines_of_the_membrane():
    """`nullclines_vn` on seed 003's membrane: dV/dt = 0 on the V-nullcline, n = n∞
    on the other, and they cross at the resting state."""
    import jax.numpy as jnp

    import hhjax

    m = hhjax.Membrane.reduced_hh()
    v = jnp.linspace(-80.0, 30.0, 111)
    nc = hhjax.nullclines_vn(m, v, 0.0)
    ok = np.isfinite(np.asarray(nc.v_nullcline))
    assert ok.sum() > 50
    dv = m.derivatives(hhjax.MembraneState(v=v, gates={"n": jnp.nan_to_num(nc.v_nullcline)}), 0.0).v
    np.testing.assert_allclose(np.asarray(dv)[ok], 0.0, atol=1e-8)
    np.testing.assert_allclose(nc.n_nullcline, 1 / (1 + np.exp((-45.0 - np.asarray(v)) / 15.0)), rtol=1e-12)
    rest = hhjax.resting_state(m)
    at_rest = hhjax.nullclines_vn(m, jnp.array([rest.v]), 0.0)
    np.testing.assert_allclose(at_rest.v_nullcline, rest["n"], atol=1e-9)
    np.testing.assert_allclose(at_rest.n_nullcline, rest["n"], atol=1e-12)
    with pytest.raises(ValueError, match="two-variable"):
        hhjax.nullclines_vn(hhjax.Membrane.hodgkin_huxley(), v)
