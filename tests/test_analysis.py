"""The analysis toolkit (issue 4): rheobase, repetitive-firing threshold, Hopf
current, stability, f–I curve, limit cycles, gating curves, nullclines and their
plots, against independent NumPy/SciPy references computed here.

The reference model is written out again in NumPy (not imported from hhjax).
Trajectories are integrated piecewise between the stimulus edges with
`scipy.integrate.solve_ivp` at rtol 1e-10, atol 1e-12; spikes are its events (upward
zero crossings of v, located on the dense output). The fast tests use the explicit
8th-order DOP853 (about 10x faster than Radau here); the slow tests use Radau, and
`test_dop853_reference_agrees_with_radau` checks that the two agree. Thresholds are
found by plain bisection to 1e-3 µA/cm² on the scipy spike/no-spike indicator
(brentq needs a continuous function), equilibria and the Hopf point with brentq.
"""

import functools

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure
from scipy.integrate import solve_ivp
from scipy.optimize import brentq

import hhjax

matplotlib.use("Agg")

# ---------------------------------------------------------------------------------
# the independent reference

P = dict(
    c_m=1.0, g_na=120.0, g_k=36.0, g_leak=0.3, e_na=50.0, e_k=-77.0, e_leak=-54.387
)
RTOL, ATOL = 1e-10, 1e-12
FAST_METHOD = "DOP853"
CURRENTS = (0.0, 5.0, 7.0, 10.0, 20.0, 50.0)


def _vtrap(x, k):
    """x / (1 - exp(-x/k)) with the removable singularity at x = 0."""
    x = np.asarray(x, dtype=float)
    u = x / k
    small = np.abs(u) < 1e-6
    return np.where(small, k * (1 + u / 2), x / -np.expm1(-np.where(small, 1.0, u)))


def np_rates(v):
    return dict(
        alpha_m=0.1 * _vtrap(v + 40.0, 10.0),
        beta_m=4.0 * np.exp(-(v + 65.0) / 18.0),
        alpha_h=0.07 * np.exp(-(v + 65.0) / 20.0),
        beta_h=1.0 / (1.0 + np.exp(-(v + 35.0) / 10.0)),
        alpha_n=0.01 * _vtrap(v + 55.0, 10.0),
        beta_n=0.125 * np.exp(-(v + 65.0) / 80.0),
    )


def np_i_ion(v, m, h, n):
    return (
        P["g_na"] * m**3 * h * (v - P["e_na"])
        + P["g_k"] * n**4 * (v - P["e_k"])
        + P["g_leak"] * (v - P["e_leak"])
    )


def np_rhs(t, y, i_stim):
    v, m, h, n = y
    r = np_rates(v)
    return np.array(
        [
            (i_stim - np_i_ion(v, m, h, n)) / P["c_m"],
            r["alpha_m"] * (1 - m) - r["beta_m"] * m,
            r["alpha_h"] * (1 - h) - r["beta_h"] * h,
            r["alpha_n"] * (1 - n) - r["beta_n"] * n,
        ]
    )


def np_steady(v):
    r = np_rates(v)
    return np.array(
        [v] + [r[f"alpha_{x}"] / (r[f"alpha_{x}"] + r[f"beta_{x}"]) for x in "mhn"]
    )


def np_rest(i_hold=0.0):
    """Equilibrium under `i_hold` by brentq on the steady-state I–V curve."""
    v = brentq(lambda v: np_i_ion(*np_steady(v)) - i_hold, -90.0, 0.0, xtol=1e-13)
    return np_steady(v)


def np_jacobian(y, i_hold, eps=1e-6):
    """Central finite differences (error ~1e-10 relative)."""
    jac = np.empty((4, 4))
    for k in range(4):
        d = np.zeros(4)
        d[k] = eps * max(1.0, abs(y[k]))
        jac[:, k] = (np_rhs(0, y + d, i_hold) - np_rhs(0, y - d, i_hold)) / (2 * d[k])
    return jac


def np_max_real(i_hold):
    return np.max(np.linalg.eigvals(np_jacobian(np_rest(i_hold), i_hold)).real)


def _spike_event(t, y, i_stim):
    return y[0]


_spike_event.direction = 1.0


def np_spikes(pieces, method):
    """Spike times (upward 0 mV crossings) for `pieces` = [(t0, t1, current), ...],
    from the resting state at zero current, integrating piece by piece."""
    y = np_rest(0.0)
    spikes = []
    for t0, t1, i_stim in pieces:
        sol = solve_ivp(
            np_rhs,
            (t0, t1),
            y,
            method=method,
            args=(i_stim,),
            rtol=RTOL,
            atol=ATOL,
            events=_spike_event,
        )
        assert sol.success, sol.message
        spikes.extend(sol.t_events[0])
        y = sol.y[:, -1]
    return np.array(spikes)


def bisect(indicator, lo, hi, tol=1e-3):
    """Smallest x with indicator(x) True (False at lo, True at hi), to `tol`."""
    assert not indicator(lo) and indicator(hi), "reference bracket is wrong"
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if indicator(mid):
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


@functools.cache
def ref_rheobase(duration, method=FAST_METHOD):
    def spikes(i):
        return (
            np_spikes(
                [(0.0, duration, i), (duration, duration + 50.0, 0.0)], method
            ).size
            > 0
        )

    return bisect(spikes, 2.0, 2.5)


@functools.cache
def ref_sustained(duration, window, lo, hi, method=FAST_METHOD):
    def persists(i):
        s = np_spikes([(0.0, duration, i)], method)
        return np.sum((s >= duration - window) & (s <= duration)) >= 2

    return bisect(persists, lo, hi)


@functools.cache
def ref_spike_train(current, duration, method=FAST_METHOD):
    return np_spikes([(0.0, duration, current)], method)


def ref_rate(current, duration=500.0, window=400.0, method=FAST_METHOD):
    s = ref_spike_train(current, duration, method)
    return np.sum((s >= duration - window) & (s <= duration)) / window * 1000.0


@pytest.fixture(scope="module")
def classic():
    return hhjax.HHParams()


# ---------------------------------------------------------------------------------
# equilibria, stability, Hopf


def test_resting_potential_matches_brentq(classic):
    v = float(hhjax.resting_state(classic).v)
    ref = np_rest()[0]
    print(f"rest: hhjax {v:.8f} mV, reference {ref:.8f} mV")
    assert abs(v - ref) < 0.01
    assert abs(v - ref) < 1e-8


@pytest.mark.parametrize("i_hold, stable", [(0.0, True), (9.7, True), (12.0, False)])
def test_stability_matches_numpy_eigenvalues(classic, i_hold, stable):
    s = hhjax.stability(classic, i_hold)
    assert isinstance(s, hhjax.StabilityResult)
    ref = np.linalg.eigvals(np_jacobian(np_rest(i_hold), i_hold))
    ref = ref[np.argsort(-ref.real, kind="stable")]
    got = np.asarray(s.eigenvalues)
    assert got.shape == (4,) and got.dtype == np.complex128
    np.testing.assert_allclose(np.sort_complex(got), np.sort_complex(ref), atol=1e-6)
    np.testing.assert_allclose(float(s.max_real), ref.real.max(), atol=1e-7)
    assert bool(s.stable) is stable
    np.testing.assert_allclose(float(s.state.v), np_rest(i_hold)[0], atol=1e-8)


def test_hopf_current_matches_brentq(classic):
    got = float(hhjax.hopf_current(classic))
    ref = brentq(np_max_real, 5.0, 15.0, xtol=1e-10)
    print(f"Hopf: hhjax {got:.8f}, reference {ref:.8f} µA/cm²")
    assert abs(got - ref) < 0.01
    assert abs(got - ref) < 1e-5
    assert 9.7 < got < 9.85


def test_hopf_current_vmaps_over_params():
    g_na = jnp.array([100.0, 120.0, 140.0])
    ps = jax.vmap(lambda g: hhjax.HHParams(g_na=g))(g_na)
    got = np.asarray(jax.vmap(hhjax.hopf_current)(ps))
    assert got.shape == (3,)
    assert abs(got[1] - float(hhjax.hopf_current(hhjax.HHParams()))) < 1e-9
    assert np.all(np.diff(got) < 0)  # more Na⁺ conductance: unstable earlier


def test_hopf_current_nan_outside_range(classic):
    assert np.isnan(float(hhjax.hopf_current(classic, i_min=0.0, i_max=5.0)))
    assert np.isnan(float(hhjax.hopf_current(classic, i_min=20.0, i_max=40.0)))


# ---------------------------------------------------------------------------------
# rheobase and repetitive firing


def test_rheobase_matches_scipy(classic):
    got = float(hhjax.rheobase(classic))  # 100 ms step
    ref = ref_rheobase(100.0)
    print(f"rheobase (100 ms): hhjax {got:.5f}, reference {ref:.5f} µA/cm²")
    assert abs(got - ref) < 0.01


def test_rheobase_new_duration_does_not_retrace(classic, monkeypatch):
    """`duration` is traced: a second value reuses the compiled search."""
    import hhjax._analysis as analysis

    calls = []
    original = analysis._window_counts

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(analysis, "_window_counts", counting)
    a = float(hhjax.rheobase(classic, 50.0))
    b = float(hhjax.rheobase(classic, 60.0))
    assert len(calls) <= 1
    assert a >= b - 1e-4


def test_repetitive_firing_threshold_matches_scipy(classic):
    """Shorter protocol than the default (300 ms step, last 100 ms), to keep the
    reference cheap; the default protocol is in the slow test below."""
    got = float(
        hhjax.repetitive_firing_threshold(classic, duration=300.0, window=100.0)
    )
    ref = ref_sustained(300.0, 100.0, 6.25, 6.26)
    print(f"sustained firing (300/100 ms): hhjax {got:.5f}, reference {ref:.5f}")
    assert abs(got - ref) < 0.01
    # bistable range: above the rheobase, below the Hopf current
    assert float(hhjax.rheobase(classic)) < got < float(hhjax.hopf_current(classic))


@pytest.mark.slow
def test_rheobase_vmaps_over_params():
    g_na = jnp.array([100.0, 140.0])
    ps = jax.vmap(lambda g: hhjax.HHParams(g_na=g))(g_na)
    got = np.asarray(jax.vmap(hhjax.rheobase)(ps))
    assert got.shape == (2,)
    single = [float(hhjax.rheobase(hhjax.HHParams(g_na=g))) for g in g_na]
    np.testing.assert_allclose(got, single, atol=1e-9)
    assert got[0] > got[1]


@settings(deadline=None, max_examples=3)
@given(d1=st.floats(0.5, 100.0), d2=st.floats(0.5, 100.0))
def test_rheobase_decreases_with_duration(d1, d2):
    short, long = sorted((d1, d2))
    p = hhjax.HHParams()
    r_short, r_long = (float(hhjax.rheobase(p, d)) for d in (short, long))
    assert np.isfinite(r_short) and np.isfinite(r_long)
    assert r_short >= r_long - 1e-4


# ---------------------------------------------------------------------------------
# f–I curve and limit cycles


def test_fi_curve_matches_scipy(classic):
    """A 200 ms step counted over its last 100 ms (the reference of the default
    500/400 ms protocol is in the slow test below; same compiled function)."""
    got = np.asarray(
        hhjax.fi_curve(classic, jnp.asarray(CURRENTS), 200.0, window=100.0)
    )
    ref = np.array([ref_rate(i, 200.0, 100.0) for i in CURRENTS])
    print("f–I [Hz] (200/100 ms): hhjax", got, "reference", ref)
    assert got.shape == (len(CURRENTS),)
    np.testing.assert_allclose(got, ref, atol=1.0)
    assert got[0] == 0 and got[1] == 0 and np.all(got[2:] > 40)


@settings(deadline=None, max_examples=4)
@given(st.lists(st.floats(0.0, 40.0), min_size=6, max_size=6))
def test_fi_curve_is_monotone(currents):
    """Non-decreasing up to one spike in the window (2.5 Hz): the count of a
    periodic train in a fixed window depends on its phase."""
    cur = np.sort(np.asarray(currents))
    rates = np.asarray(hhjax.fi_curve(hhjax.HHParams(), jnp.asarray(cur)))
    assert np.all(np.diff(rates) >= -2.5 - 1e-9), (cur, rates)


def test_limit_cycle_period_and_closure(classic):
    lc = hhjax.limit_cycle(classic, 10.0)
    s = ref_spike_train(10.0, 200.0)  # the orbit is reached within a few spikes
    ref_period = s[-1] - s[-2]
    print(f"period at 10 µA/cm²: hhjax {float(lc.period):.6f}, ref {ref_period:.6f} ms")
    assert abs(float(lc.period) - ref_period) < 1e-4
    assert lc.t.shape == (1001,) and lc.v.shape == (1001,)
    assert float(lc.t[0]) == 0.0
    np.testing.assert_allclose(float(lc.t[-1]), float(lc.period), rtol=1e-12)
    assert abs(float(lc.v[0])) < 1e-3  # starts at the 0 mV crossing
    first = np.array([lc.v[0], lc.m[0], lc.h[0], lc.n[0]])
    last = np.array([lc.v[-1], lc.m[-1], lc.h[-1], lc.n[-1]])
    np.testing.assert_allclose(last, first, atol=1e-3)  # a closed orbit
    np.testing.assert_allclose(float(lc.frequency_hz), 1000.0 / ref_period, rtol=1e-5)
    assert float(lc.v_max) > 25 and float(lc.v_min) < -70
    # below the sustained-firing threshold there is no orbit
    assert np.isnan(float(hhjax.limit_cycle(classic, 5.0).period))


# ---------------------------------------------------------------------------------
# gating curves and nullclines


def test_gating_curves_match_formulas(classic):
    v = np.linspace(-100.0, 50.0, 31)
    g = hhjax.gating_curves(classic, v)
    assert isinstance(g, hhjax.GatingCurves)
    r = np_rates(v)
    for x in "mhn":
        a, b = r[f"alpha_{x}"], r[f"beta_{x}"]
        np.testing.assert_allclose(g.inf[x], a / (a + b), rtol=1e-12)
        np.testing.assert_allclose(g.tau[x], 1.0 / (a + b), rtol=1e-12)
    np.testing.assert_allclose(g.v, v)


def np_reduced_dvdt(v, n, i_stim):
    """Seed 003's reduced model with the classic m∞: m = m∞(v), h = 0.89 − 1.1 n."""
    m_inf = np_steady(v)[1]
    return i_stim - np_i_ion(v, m_inf, 0.89 - 1.1 * n, n)


@pytest.mark.parametrize("i_stim", [0.0, 10.0])
def test_nullclines_vn(classic, i_stim):
    v = np.linspace(-76.0, 40.0, 59)
    nc = hhjax.nullclines_vn(classic, v, i_stim)
    assert isinstance(nc, hhjax.Nullclines)
    n_v = np.asarray(nc.v_nullcline)
    ok = np.isfinite(n_v)
    assert ok.mean() > 0.9
    assert np.all((n_v[ok] >= 0) & (n_v[ok] <= 1))
    # dV/dt vanishes on the V-nullcline (slope |d(dV/dt)/dn| is O(100) here)
    resid = np_reduced_dvdt(v[ok], n_v[ok], i_stim)
    np.testing.assert_allclose(resid, 0.0, atol=1e-9)
    np.testing.assert_allclose(nc.n_nullcline, np_steady(v)[3], rtol=1e-12)
    # NaN where dV/dt has one sign on all of [0, 1]: far below e_k with i_stim = 0
    assert np.isnan(float(hhjax.nullclines_vn(classic, -120.0, 0.0).v_nullcline))


# ---------------------------------------------------------------------------------
# dtypes


def test_float32_params_give_float32_results():
    p = hhjax.HHParams(dtype=jnp.float32)
    assert hhjax.gating_curves(p, np.linspace(-80, 40, 5)).inf["m"].dtype == jnp.float32
    nc = hhjax.nullclines_vn(p, np.linspace(-70, 30, 5))
    assert nc.v_nullcline.dtype == jnp.float32
    s = hhjax.stability(p)
    assert s.eigenvalues.dtype == jnp.complex64 and s.max_real.dtype == jnp.float32
    assert s.state.v.dtype == jnp.float32 and bool(s.stable)


@pytest.mark.slow
def test_float32_simulation_analyses():
    p = hhjax.HHParams(dtype=jnp.float32)
    hopf = hhjax.hopf_current(p)
    assert hopf.dtype == jnp.float32 and abs(float(hopf) - 9.7754) < 0.01
    rb = hhjax.rheobase(p)
    assert rb.dtype == jnp.float32 and abs(float(rb) - ref_rheobase(100.0)) < 0.01
    rates = hhjax.fi_curve(p, jnp.asarray(CURRENTS))
    assert rates.dtype == jnp.float32
    np.testing.assert_allclose(rates, [ref_rate(i) for i in CURRENTS], atol=1.0)
    lc = hhjax.limit_cycle(p, 10.0)
    assert lc.period.dtype == jnp.float32 and lc.v.dtype == jnp.float32


# ---------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize("duration", [0.0, -5.0, float("nan"), float("inf")])
def test_bad_duration_raises(classic, duration):
    for fn in (
        lambda: hhjax.rheobase(classic, duration),
        lambda: hhjax.fi_curve(classic, [1.0], duration),
        lambda: hhjax.repetitive_firing_threshold(classic, duration=duration),
    ):
        with pytest.raises(ValueError, match=r"`duration`.*ms"):
            fn()


def test_bad_arguments_raise(classic):
    with pytest.raises(TypeError, match="`params`"):
        hhjax.rheobase("classic")
    with pytest.raises(TypeError, match="`duration`.*ms"):
        hhjax.rheobase(classic, "100")
    with pytest.raises(ValueError, match=r"`window`.*`duration`"):
        hhjax.fi_curve(classic, [1.0], 100.0, window=200.0)
    with pytest.raises(ValueError, match=r"`window`.*ms"):
        hhjax.fi_curve(classic, [1.0], window=0.0)
    with pytest.raises(ValueError, match=r"`currents`.*µA/cm²"):
        hhjax.fi_curve(classic, [1.0, float("nan")])
    with pytest.raises(TypeError, match="`currents`"):
        hhjax.fi_curve(classic, "10")
    with pytest.raises(ValueError, match=r"`i_max`.*`i_min`"):
        hhjax.rheobase(classic, i_min=5.0, i_max=1.0)
    with pytest.raises(ValueError, match=r"`tol`.*µA/cm²"):
        hhjax.rheobase(classic, tol=0.0)
    with pytest.raises(ValueError, match="`n_points`"):
        hhjax.rheobase(classic, n_points=1)
    with pytest.raises(ValueError, match=r"`t_after`.*ms"):
        hhjax.rheobase(classic, t_after=-1.0)
    with pytest.raises(ValueError, match="`min_spikes`"):
        hhjax.repetitive_firing_threshold(classic, min_spikes=0)
    with pytest.raises(ValueError, match=r"`i_hold`.*µA/cm²"):
        hhjax.stability(classic, jnp.ones(3))
    with pytest.raises(ValueError, match=r"`max_period`.*ms"):
        hhjax.limit_cycle(classic, 10.0, max_period=-1.0)
    with pytest.raises(ValueError, match=r"`v`.*mV"):
        hhjax.gating_curves(classic, [0.0, float("inf")])
    batched = hhjax.HHParams(g_na=jnp.array([100.0, 120.0]))
    with pytest.raises(ValueError, match="vmap"):
        hhjax.rheobase(batched)


# ---------------------------------------------------------------------------------
# plots


def test_plots_return_figures(classic):
    fig = hhjax.plot_gating_curves(classic)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    lc = hhjax.limit_cycle(classic, 10.0)
    nc = hhjax.nullclines_vn(classic, np.linspace(-80.0, 40.0, 121), 10.0)
    assert isinstance(hhjax.plot_phase_plane(lc, nullclines=nc), Figure)
    assert isinstance(hhjax.plot_phase_plane(lc, x="v", y="h"), Figure)
    assert isinstance(hhjax.plot_phase_plane((lc.v, lc.m)), Figure)
    assert isinstance(hhjax.plot_phase_plane({"v": lc.v, "n": lc.n}), Figure)
    fi = hhjax.plot_fi_curve(CURRENTS, np.arange(6.0), labels=["classic"])
    assert isinstance(fi, Figure)
    # same number of currents as test_fi_curve_matches_scipy: one compilation
    bif = hhjax.plot_bifurcation(classic, np.linspace(0.0, 25.0, 6))
    assert isinstance(bif, Figure)
    fig.savefig(__import__("io").BytesIO(), format="png")


def test_plot_errors(classic):
    lc = hhjax.HHState(v=jnp.zeros(3), m=jnp.zeros(3), h=jnp.zeros(3), n=jnp.zeros(3))
    nc = hhjax.nullclines_vn(classic, np.linspace(-70.0, 30.0, 5))
    with pytest.raises(ValueError, match="v–n plane"):
        hhjax.plot_phase_plane(lc, x="v", y="m", nullclines=nc)
    with pytest.raises(ValueError, match="`x`/`y`"):
        hhjax.plot_phase_plane(lc, x="w")
    with pytest.raises(TypeError, match="`data`"):
        hhjax.plot_phase_plane(42)
    with pytest.raises(ValueError, match="`rates`"):
        hhjax.plot_fi_curve([0.0, 1.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="`currents`"):
        hhjax.plot_bifurcation(classic, [1.0])


# ---------------------------------------------------------------------------------
# slow: the default protocols against Radau


@pytest.mark.slow
def test_dop853_reference_agrees_with_radau():
    fast = ref_spike_train(10.0, 500.0, FAST_METHOD)
    radau = ref_spike_train(10.0, 500.0, "Radau")
    assert fast.size == radau.size
    np.testing.assert_allclose(fast, radau, atol=1e-6)


@pytest.mark.slow
def test_sustained_threshold_default_protocol(classic):
    got = float(hhjax.repetitive_firing_threshold(classic))
    ref = ref_sustained(1000.0, 200.0, 6.24, 6.28)
    print(f"sustained firing (1000/200 ms): hhjax {got:.5f}, reference {ref:.5f}")
    assert abs(got - ref) < 0.01
    assert 6.2 < got < 6.3


@pytest.mark.slow
def test_rheobase_matches_radau(classic):
    got = float(hhjax.rheobase(classic))
    ref = ref_rheobase(100.0, "Radau")
    assert abs(got - ref) < 0.01


@pytest.mark.slow
def test_fi_curve_default_protocol_matches_radau(classic):
    got = np.asarray(hhjax.fi_curve(classic, jnp.asarray(CURRENTS)))  # 500/400 ms
    ref = np.array([ref_rate(i, method="Radau") for i in CURRENTS])
    print("f–I [Hz] (500/400 ms): hhjax", got, "Radau", ref)
    np.testing.assert_allclose(got, ref, atol=1.0)


@pytest.mark.slow  # default-suite time (CI budget ~10 min)
def test_analysis_accepts_a_composed_membrane():
    """The classic HH built from channels gives the same Hopf point and stability as
    HHParams (the analysis is model-generic; the rheobase check is a slow test)."""
    p = hhjax.HHParams()
    m = hhjax.Membrane.hodgkin_huxley(p)
    assert abs(float(hhjax.hopf_current(m)) - float(hhjax.hopf_current(p))) < 1e-6
    assert bool(hhjax.stability(m).stable)


@pytest.mark.slow
def test_rheobase_of_a_composed_membrane():
    p = hhjax.HHParams()
    m = hhjax.Membrane.hodgkin_huxley(p)
    assert abs(float(hhjax.rheobase(m)) - float(hhjax.rheobase(p))) < 1e-3
