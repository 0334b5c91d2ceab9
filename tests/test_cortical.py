"""The Pospischil et al. (2008) cortical models against an independent NumPy/SciPy
implementation of the same equations (written out here from the paper's formulas,
not from hhjax's building blocks)."""

import math

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hhjax

scipy_integrate = pytest.importorskip("scipy.integrate")
scipy_optimize = pytest.importorskip("scipy.optimize")

# a standard step [µA/cm², ms]; 200 ms, several spikes in every preset used
T_ON, T_OFF, T_END = 20.0, 170.0, 180.0
STEP = {"RS": 2.0, "FS": 2.5, "FS-ModelDB": 3.6}


# --------------------------------------------------------------------------------------
# the reference (NumPy), straight from the equations


def _vtrap(x, y):
    """x / (exp(x/y) − 1), with its limit y at x = 0."""
    x = np.asarray(x, dtype=float)
    small = np.abs(x / y) < 1e-7
    safe = np.where(small, 1.0, x)
    return np.where(small, y * (1 - x / y / 2), safe / np.expm1(safe / y))


def ref_rates(v, p):
    vt = p["v_t"]
    u = v - vt
    return {
        "m": (0.32 * _vtrap(13 - u, 4), 0.28 * _vtrap(u - 40, 5)),
        "h": (0.128 * np.exp((17 - u) / 18), 4 / (1 + np.exp((40 - u) / 5))),
        "n": (0.032 * _vtrap(15 - u, 5), 0.5 * np.exp((10 - u) / 40)),
    }


def ref_p(v, p):
    p_inf = 1 / (1 + np.exp(-(v + 35) / 10))
    tau_p = p["tau_max"] / (3.3 * np.exp((v + 35) / 20) + np.exp(-(v + 35) / 20))
    return p_inf, tau_p


def ref_inf(v, p):
    r = ref_rates(v, p)
    out = {k: a / (a + b) for k, (a, b) in r.items()}
    out["p"] = ref_p(v, p)[0]
    return out


def ref_current(v, x, p):
    m, h, n, q = x
    return (
        p["g_na"] * m**3 * h * (v - p["e_na"])
        + p["g_kd"] * n**4 * (v - p["e_k"])
        + p["g_m"] * q * (v - p["e_k"])
        + p["g_leak"] * (v - p["e_leak"])
    )


def _vtrap1(x, y):
    """Scalar `_vtrap` (plain floats: the ODE right-hand side is called ~10⁵ times)."""
    if abs(x / y) < 1e-7:
        return y * (1 - x / y / 2)
    return x / math.expm1(x / y)


def ref_rhs(t, y, p, i_stim):
    v, m, h, n, q = y
    u = v - p["v_t"]
    am, bm = 0.32 * _vtrap1(13 - u, 4), 0.28 * _vtrap1(u - 40, 5)
    ah, bh = 0.128 * math.exp((17 - u) / 18), 4 / (1 + math.exp((40 - u) / 5))
    an, bn = 0.032 * _vtrap1(15 - u, 5), 0.5 * math.exp((10 - u) / 40)
    p_inf = 1 / (1 + math.exp(-(v + 35) / 10))
    tau_p = p["tau_max"] / (3.3 * math.exp((v + 35) / 20) + math.exp(-(v + 35) / 20))
    i_ion = (
        p["g_na"] * m**3 * h * (v - p["e_na"])
        + p["g_kd"] * n**4 * (v - p["e_k"])
        + p["g_m"] * q * (v - p["e_k"])
        + p["g_leak"] * (v - p["e_leak"])
    )
    return [
        (i_stim - i_ion) / p["c_m"],
        am * (1 - m) - bm * m,
        ah * (1 - h) - bh * h,
        an * (1 - n) - bn * n,
        (p_inf - q) / tau_p,
    ]


def ref_rest(p):
    def f(v):
        s = ref_inf(v, p)
        return ref_current(v, (s["m"], s["h"], s["n"], s["p"]), p)

    return scipy_optimize.brentq(f, -90.0, -60.0, xtol=1e-13, rtol=1e-15)


def ref_trace(p, amplitude, ts, v0):
    """solve_ivp Radau (rtol 1e-9, atol 1e-11), piecewise between the step's edges,
    from rest at v0."""
    s = ref_inf(v0, p)
    y = np.array([v0, s["m"], s["h"], s["n"], s["p"]])
    out = []
    for lo, hi, i in ((0.0, T_ON, 0.0), (T_ON, T_OFF, amplitude), (T_OFF, T_END, 0.0)):
        sel = ts[(ts >= lo) & (ts < hi)]
        sol = scipy_integrate.solve_ivp(
            ref_rhs,
            (lo, hi),
            y,
            method="Radau",
            t_eval=np.append(sel, hi),
            args=(p, i),
            rtol=1e-9,
            atol=1e-11,
        )
        assert sol.success, sol.message
        out.append(sol.y[0, :-1])
        y = sol.y[:, -1]
    out.append(y[:1])  # t = T_END
    return np.concatenate(out)


# --------------------------------------------------------------------------------------
# hhjax side: one compiled simulation reused by every preset (same pytree structure)

TS = np.linspace(0.0, T_END, 3601)


@eqx.filter_jit
def _simulate(membrane, amplitude):
    stim = hhjax.StepCurrent(amplitude, T_ON, T_OFF)
    return hhjax.simulate(
        membrane,
        stim,
        t_end=T_END,
        ts=jnp.asarray(TS),
        stepsize_controller=diffrax.PIDController(rtol=1e-10, atol=1e-10),
        max_steps=200_000,
    )


_CACHE = {}


def _run(cell):
    if cell not in _CACHE:
        mem = hhjax.pospischil(cell)
        _CACHE[cell] = _simulate(mem, jnp.asarray(STEP[cell]))
    return _CACHE[cell]


def _isis(res):
    st = np.asarray(hhjax.spike_times(res))
    return np.diff(st[np.isfinite(st)])


# --------------------------------------------------------------------------------------
# tests


@pytest.mark.parametrize("cell", ["RS", "FS"])
def test_rates_match_reference(cell):
    p = hhjax.POSPISCHIL_CELLS[cell]
    mem = hhjax.pospischil(cell)
    vt = p["v_t"]
    # a grid plus the removable singularities: α_m (v_t+13), β_m (v_t+40), α_n (v_t+15)
    v = np.concatenate([np.linspace(-120, 60, 181), vt + np.array([13.0, 40.0, 15.0])])
    ref = ref_rates(v, p)
    for k in "mhn":
        a, b = mem.gates[k].rates(jnp.asarray(v))
        np.testing.assert_allclose(a, ref[k][0], rtol=1e-9, atol=1e-14, err_msg=k)
        np.testing.assert_allclose(b, ref[k][1], rtol=1e-9, atol=1e-14, err_msg=k)
    p_inf, tau_p = ref_p(v, p)
    np.testing.assert_allclose(mem.gates["p"].inf(v), p_inf, rtol=1e-12)
    np.testing.assert_allclose(mem.gates["p"].tau(v), tau_p, rtol=1e-12)
    np.testing.assert_allclose(
        mem.steady_state_current(jnp.asarray(v)),
        ref_current(v, [ref_inf(v, p)[k] for k in "mhnp"], p),
        rtol=1e-9,
        atol=1e-12,
    )


def test_presets_values_and_units():
    rs = hhjax.pospischil("RS")
    assert set(rs.channels) == {"na", "kd", "m", "leak"}
    assert rs.kinetic_gates == ("h", "m", "n", "p")
    # S/cm² -> mS/cm²: the paper's 0.056 S/cm² is 56 mS/cm²
    assert float(rs.channels["na"].g) == 56.0
    assert float(rs.channels["kd"].g) == 6.0
    assert float(rs.channels["m"].g) == pytest.approx(0.075)
    assert float(rs.channels["leak"].g) == pytest.approx(0.0205)
    assert float(rs.gates["p"].tau_fn.tau_max) == 608.0
    for k in "mhn":
        assert float(rs.gates[k].v_t) == -56.2
    fs = hhjax.pospischil("fs", g_kd=4.5, v_t=-60.0)  # case-insensitive, overrides
    assert float(fs.channels["kd"].g) == 4.5 and float(fs.gates["h"].v_t) == -60.0
    assert float(fs.channels["na"].g) == 58.0
    assert hhjax.POSPISCHIL_CELLS["RS"]["area_cm2"] == pytest.approx(
        np.pi * 61.4e-4**2, rel=1e-12
    )
    with pytest.raises(ValueError, match="`cell` must be one of"):
        hhjax.pospischil("LTS")
    with pytest.raises(ValueError, match="clashes"):
        hhjax.pospischil(extra={"na": hhjax.pospischil_cal()})
    with pytest.raises(ValueError, match=r"gate\(s\) \['h', 'm'\]"):
        hhjax.pospischil(extra={"na2": hhjax.pospischil_na()})
    with pytest.raises(TypeError, match="pair"):
        hhjax.pospischil(extra={"x": hhjax.Channel(1.0, 0.0)})
    with pytest.raises(ValueError, match="g"):
        hhjax.pospischil(g_na=-1.0)
    # float32 follows dtype=
    assert hhjax.pospischil("RS", dtype=jnp.float32).dtype == jnp.float32


@pytest.mark.parametrize("cell", ["RS", "FS"])
def test_trace_matches_radau(cell):
    p = hhjax.POSPISCHIL_CELLS[cell]
    res = _run(cell)
    v_ref = ref_trace(p, STEP[cell], TS, float(res.v[0]))
    v = np.asarray(res.v)
    assert len(_isis(res)) >= 3
    assert np.max(np.abs(v - v_ref)) < 0.01


def test_adaptation_rs_not_fs_modeldb():
    isi_rs = _isis(_run("RS"))
    assert len(isi_rs) >= 4
    assert np.all(np.diff(isi_rs) > 0)  # every interval longer than the last
    assert isi_rs[-1] / isi_rs[0] > 1.3
    isi_fs = _isis(_run("FS-ModelDB"))  # no M current: no adaptation
    assert len(isi_fs) >= 4
    assert np.ptp(isi_fs) / np.mean(isi_fs) < 1e-3


def test_gradients_finite_at_removable_singularities():
    mem = hhjax.pospischil("RS")
    vt = -56.2
    cases = [("m", 0, vt + 13.0), ("m", 1, vt + 40.0), ("n", 0, vt + 15.0)]
    for gate, which, v in cases:

        def rate(v, v_t, gate=gate, which=which):
            g = eqx.tree_at(lambda gt: gt.v_t, mem.gates[gate], v_t)
            return g.rates(v)[which]

        dv, dvt = jax.grad(rate, argnums=(0, 1))(jnp.asarray(v), jnp.asarray(vt))
        h = 1e-4
        fd = (rate(v + h, vt) - rate(v - h, vt)) / (2 * h)
        assert np.isfinite(dv) and np.isfinite(dvt)
        assert float(dv) == pytest.approx(float(fd), rel=1e-6)
        assert float(dvt) == pytest.approx(-float(fd), rel=1e-6)

    # the membrane's steady-state current and its parameter gradient at those voltages
    def i_ss(m, v):
        return m.steady_state_current(v)

    for v in (vt + 13.0, vt + 40.0, vt + 15.0):
        g = jax.grad(i_ss)(mem, jnp.asarray(v))
        assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(g))
    # L-type Ca: α_q's singularity at −27 mV
    cal, gates = hhjax.pospischil_cal()
    d = jax.grad(lambda v: gates["q"].rates(v)[0])(jnp.asarray(-27.0))
    assert np.isfinite(d)


def test_cal_rates_match_reference():
    _, gates = hhjax.pospischil_cal()
    v = np.concatenate([np.linspace(-100, 50, 151), [-27.0]])
    a, b = gates["q"].rates(jnp.asarray(v))
    np.testing.assert_allclose(a, 0.055 * _vtrap(-27 - v, 3.8), rtol=1e-9)
    np.testing.assert_allclose(b, 0.94 * np.exp((-75 - v) / 17), rtol=1e-12)
    a, b = gates["r"].rates(jnp.asarray(v))
    np.testing.assert_allclose(a, 0.000457 * np.exp((-13 - v) / 50), rtol=1e-12)
    np.testing.assert_allclose(b, 0.0065 / (np.exp((-15 - v) / 28) + 1), rtol=1e-12)
    ib = hhjax.pospischil("RS", extra={"cal": hhjax.pospischil_cal(0.1)})
    assert set(ib.channels) == {"na", "kd", "m", "leak", "cal"}
    assert set(ib.kinetic_gates) == {"m", "h", "n", "p", "q", "r"}


def test_resting_potential_matches_root():
    """Every preset has the same pytree structure: stack them, vmap the resting
    state (Newton) and compare with a bracketing root of the NumPy steady-state
    current."""
    cells = list(hhjax.POSPISCHIL_CELLS)
    mems = [hhjax.pospischil(c) for c in cells]
    stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *mems)
    v = jax.vmap(lambda m: hhjax.resting_state(m).v)(stacked)
    for k, c in enumerate(cells):
        assert float(v[k]) == pytest.approx(
            ref_rest(hhjax.POSPISCHIL_CELLS[c]), abs=1e-8
        )
    # the paper's RS/FS cells rest at -71.9 / -71.4 mV
    assert float(v[0]) == pytest.approx(-71.9, abs=0.05)
    assert float(v[1]) == pytest.approx(-71.4, abs=0.05)
