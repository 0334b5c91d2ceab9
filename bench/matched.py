"""Accuracy-matched single-trace latency (bench/run.py, section "matched").

For one 100 ms classic-HH step-current trace, every method runs over a ladder of
settings (tolerances or step sizes). Each setting is timed (median of repeats) and
its spike times are measured against the Radau reference with one detector for all:
upward 0-mV crossings located on the cubic Hermite interpolant of the method's saved
samples, with dv/dt from the independent NumPy model at the saved (v, m, h, n)
(`hhjax.crossing_times(..., dvdt=...)`). For each target (max spike-time error
<= 0.01 ms and <= 0.3 ms) the fastest passing setting is reported, with
`ratio = peer time / this time` against the peer, plain diffrax Tsit5 + PID.

Timings of the JAX methods are of jitted calls (tracing/compilation excluded, no
Python-side argument checks): the plain-diffrax peer is `jax.jit` of `diffeqsolve`,
hhjax's rows `jax.jit` of `simulate_population(..., throw=False)` / `simulate`.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

import hhjax

T_END, T_ON, T_OFF, AMP = 100.0, 10.0, 90.0, 10.0
TARGETS = (0.01, 0.3)
PEER = "diffrax Tsit5 + PIDController (plain)"


# ---- an independent jnp HH for the plain-diffrax peer ----------------------------------


def _vtrap(x, y):
    """x / (1 - exp(-x/y)), finite at x = 0 (double where)."""
    small = jnp.abs(x / y) < 1e-6
    safe = jnp.where(small, 1.0, x)
    return jnp.where(small, y * (1 + x / (2 * y)), safe / (-jnp.expm1(-safe / y)))


def jnp_rhs(t, y, args):
    v, m, h, n = y[0], y[1], y[2], y[3]
    am = 0.1 * _vtrap(v + 40.0, 10.0)
    bm = 4.0 * jnp.exp(-(v + 65.0) / 18.0)
    ah = 0.07 * jnp.exp(-(v + 65.0) / 20.0)
    bh = 1.0 / (1.0 + jnp.exp(-(v + 35.0) / 10.0))
    an = 0.01 * _vtrap(v + 55.0, 10.0)
    bn = 0.125 * jnp.exp(-(v + 65.0) / 80.0)
    i = jnp.where((t >= T_ON) & (t < T_OFF), AMP, 0.0)
    i_ion = 120.0 * m**3 * h * (v - 50.0) + 36.0 * n**4 * (v + 77.0) + 0.3 * (v + 54.387)
    return jnp.stack([i - i_ion, am * (1 - m) - bm * m, ah * (1 - h) - bh * h, an * (1 - n) - bn * n])


def _finite_rms(x):
    n = optx.rms_norm(x)
    return jnp.where(jnp.isfinite(n), n, jnp.inf)


# ---- helpers ------------------------------------------------------------------------


@contextlib.contextmanager
def pinned(cpu: int | None):
    """Pin every thread of this process to one CPU (as `taskset -c cpu` would) for the
    duration; the 2-core machine's other core is shared with other jobs."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    tids = [int(t) for t in os.listdir("/proc/self/task")]
    old = {}
    for t in tids:
        try:
            old[t] = os.sched_getaffinity(t)
            os.sched_setaffinity(t, {cpu})
        except OSError:
            pass
    try:
        yield
    finally:
        for t, mask in old.items():
            try:
                os.sched_setaffinity(t, mask)
            except OSError:
                pass


def median_time(fn, repeats, min_total=0.05):
    """Median of `repeats` calls (more, up to 50, if they are very short)."""
    fn()
    ts = []
    total = 0.0
    while len(ts) < repeats or (total < min_total and len(ts) < 50):
        t = time.perf_counter()
        fn()
        dt = time.perf_counter() - t
        ts.append(dt)
        total += dt
    return float(np.median(ts))


class Detector:
    """Spike times from samples (t, v, m, h, n) via hhjax.crossing_times with the
    NumPy model's dv/dt (cubic Hermite)."""

    def __init__(self, np_rhs, np_stim, ref_spikes):
        self.np_rhs, self.np_stim, self.ref = np_rhs, np_stim, np.asarray(ref_spikes)

    def spikes(self, t, y):
        t = np.asarray(t, float)
        y = np.asarray(y, float)
        dv = self.np_rhs(y, self.np_stim(t))[0]
        s = np.asarray(hhjax.crossing_times(jnp.asarray(t), jnp.asarray(y[0]), 0.0, dvdt=jnp.asarray(dv),
                                            max_spikes=32))
        return s[np.isfinite(s)]

    def error(self, t, y):
        s = self.spikes(t, y)
        if s.size != self.ref.size:
            return float("inf"), s
        return float(np.max(np.abs(s - self.ref))), s


# ---- methods --------------------------------------------------------------------------
# each: (label, unit of the setting, settings, make(setting) -> (run, trace))
#   run(): one timed solve (blocks until ready); trace() -> (t, y[4, T])


def tsit5_peer(y0n, quick):
    grid = jnp.linspace(0.0, T_END, 10001)
    y0 = jnp.asarray(y0n)

    @jax.jit
    def solve(tol):
        ctrl = diffrax.ClipStepSizeController(
            diffrax.PIDController(rtol=tol, atol=tol, norm=_finite_rms), jump_ts=jnp.array([T_ON, T_OFF]))
        sol = diffrax.diffeqsolve(diffrax.ODETerm(jnp_rhs), diffrax.Tsit5(), 0.0, T_END, 0.01, y0,
                                  saveat=diffrax.SaveAt(ts=grid), stepsize_controller=ctrl,
                                  max_steps=50_000, throw=False)
        return sol.ys, sol.stats["num_steps"]

    def make(tol):
        tol = jnp.asarray(tol)

        def run():
            jax.block_until_ready(solve(tol))

        def trace():
            ys, ns = solve(tol)
            return np.asarray(grid), np.asarray(ys).T, int(ns)

        return run, trace

    tols = [1e-3, 5e-4, 3e-4, 2e-4, 1.5e-4, 1e-4, 5e-5, 1e-5, 1e-6]
    return (PEER, "rtol=atol", tols, make,
            "jax.jit(diffeqsolve): Tsit5, ClipStepSizeController(PIDController(rtol=atol=tol), "
            "jump_ts=[10, 90]), SaveAt(ts every 0.01 ms), independent jnp vector field")


def hhjax_simulate_tsit5(p, stim, quick):
    @jax.jit
    def solve(tol):
        ctrl = diffrax.PIDController(rtol=tol, atol=tol)
        r = hhjax.simulate(p, stim, t_end=T_END, solver=diffrax.Tsit5(), stepsize_controller=ctrl)
        return r.t, jnp.stack([r.v, r.m, r.h, r.n]), r.stats["num_steps"]

    def make(tol):
        tol = jnp.asarray(tol)

        def run():
            jax.block_until_ready(solve(tol))

        def trace():
            t, ys, ns = solve(tol)
            return np.asarray(t), np.asarray(ys), int(ns)

        return run, trace

    tols = [1e-3, 3e-4, 2e-4, 1e-4, 5e-5, 1e-5]
    return ("hhjax.simulate Tsit5 + PID", "rtol=atol", tols, make,
            "jax.jit(hhjax.simulate(..., Tsit5, PIDController(tol))): hhjax's own jump "
            "handling and finite norm; save_every 0.01")


def hhjax_population(p, stim, scheme, quick):
    def make(dt):
        save = dt  # save every step: a nested short inner scan (stride 2..10) is slow on XLA:CPU
        f = jax.jit(lambda q: hhjax.simulate_population(q, stim, T_END, dt=dt, save_every=save,
                                                        scheme=scheme, throw=False).state)

        def run():
            jax.block_until_ready(f(p))

        def trace():
            s = f(p)
            t = np.arange(np.asarray(s.v).size) * save
            return t, np.stack([np.asarray(s.v), np.asarray(s.m), np.asarray(s.h), np.asarray(s.n)]), int(round(T_END / dt))

        return run, trace

    if scheme == "staggered":
        dts = [0.2, 0.1, 0.05, 0.04, 0.03125, 0.025, 0.02, 0.0125, 0.01]
        note = ("jax.jit(simulate_population(scheme='staggered')): gates at half steps, "
                "trapezoidal updates, second order; saved every step")
        label = "hhjax simulate_population staggered (2nd order)"
    else:
        dts = [0.01, 0.005, 0.0025, 0.001, 0.0005, 0.00025, 0.0002]
        if quick:
            dts = [0.01, 0.005, 0.0025, 0.0002]
        note = ("jax.jit(simulate_population()): exponential Euler / Rush–Larsen, first order; "
                "saved every step")
        label = "hhjax simulate_population exponential Euler"
    return (label, "dt [ms]", dts, make, note)


def scipy_odeint(y0n, np_rhs_scalar):
    from scipy.integrate import odeint

    t_grid = np.linspace(0.0, T_END, 10001)

    def make(tol):
        out = {}

        def run():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out["ys"], out["info"] = odeint(np_rhs_scalar, y0n, t_grid, rtol=tol, atol=tol, full_output=True)

        def trace():
            run()
            return t_grid, out["ys"].T, int(out["info"]["nst"][-1])

        return run, trace

    return ("scipy.odeint (LSODA)", "rtol=atol", [1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9], make,
            "odeint over the 10001-point grid, pure-Python vector field (steps over the stimulus edges)")


def neuron_methods(y0n, quick):
    import peers

    nrn = peers.Neuron(nthread=1)
    nrn.build([120.0], [[y0n[0]], [y0n[1]], [y0n[2]], [y0n[3]]])
    nrn.record("trace")
    out = []

    def maker(**cfg_fn):
        def make(s):
            def run():
                nrn.configure(**cfg_fn["cfg"](s))
                nrn.run()

            def trace():
                run()
                t, v, m, h, n = nrn.trace()
                return t, np.stack([v, m, h, n]), int(len(t) - 1)

            return run, trace
        return make

    out.append(("NEURON fixed step, Crank–Nicolson (secondorder=2), no rate tables", "dt [ms]",
                [0.1, 0.05, 0.025, 0.02, 0.0125, 0.01, 0.005],
                maker(cfg=lambda dt: dict(dt=dt, secondorder=2, usetable=0)),
                "h.finitialize + h.continuerun(100), one section (area 100 µm²), IClamp 0.01 nA; "
                "records t, v, m, h, n every step"))
    out.append(("NEURON default (backward Euler, rate tables)", "dt [ms]",
                [0.025, 0.01, 0.005, 0.0025, 0.001] if not quick else [0.025, 0.01, 0.0025],
                maker(cfg=lambda dt: dict(dt=dt, secondorder=0, usetable=1)),
                "secondorder=0, usetable_hh=1 (NEURON's defaults)"))
    out.append(("NEURON CVODE (variable step)", "atol",
                [1e-2, 1e-3, 1e-4, 1e-5, 1e-6],
                maker(cfg=lambda a: dict(cvode_atol=a, usetable=0)),
                "h.cvode.active(1), atol as given, rtol 0, usetable_hh=0; records at every CVODE step"))
    return out


def jaxley_method(y0n, quick):
    import peers

    def make(dt):
        jxp = peers.Jaxley(dt=dt, solver="crank_nicolson")
        f = jax.jit(jxp.sim_fn(save_every=dt, all_states=True))
        args = [jnp.asarray(120.0)] + [jnp.asarray(x) for x in y0n]

        def run():
            jax.block_until_ready(f(*args))

        def trace():
            ys = np.asarray(f(*args))
            return np.arange(ys.shape[0]) * dt, ys.T, int(round(T_END / dt))

        return run, trace

    return ("Jaxley Crank–Nicolson", "dt [ms]", [0.05, 0.025, 0.02, 0.0125, 0.01], make,
            "jax.jit of Jaxley's step function (build_init_and_step_fn) in a lax.scan, one compartment")


# ---- the section ---------------------------------------------------------------------


def run_section(rows, args, ctx):
    """ctx: p, stim, y0n, detector, np_rhs_scalar, progress, peers_ok (dict)."""
    B = "matched_accuracy_single_trace"
    progress = ctx["progress"]
    det = ctx["detector"]
    quick = args.quick
    reps = max(5, args.repeats)
    methods = [tsit5_peer(ctx["y0n"], quick),
               hhjax_population(ctx["p"], ctx["stim"], "staggered", quick),
               hhjax_population(ctx["p"], ctx["stim"], "exponential_euler", quick),
               hhjax_simulate_tsit5(ctx["p"], ctx["stim"], quick),
               scipy_odeint(ctx["y0n"], ctx["np_rhs_scalar"])]
    if getattr(args, "smoke", False):  # the test suite's format check: two cheap ladders
        methods = [(lab, unit, sett[-2:] if "staggered" in lab else [1e-4], make, note)
                   for lab, unit, sett, make, note in methods[:2]]
    if ctx["peers_ok"].get("neuron"):
        methods += neuron_methods(ctx["y0n"], quick)
    if ctx["peers_ok"].get("jaxley") and not quick:
        methods.append(jaxley_method(ctx["y0n"], quick))
    results = []
    with pinned(args.pin_cpu):
        for label, unit, settings, make, note in methods:
            ladder = []
            for s in settings:
                try:
                    run, trace = make(s)
                    t, y, steps = trace()  # compiles / warms up
                    err, _ = det.error(t, y)
                    slow = "scipy" in label or ("NEURON" in label and "CVODE" not in label)
                    wall = median_time(run, max(3, reps // 2) if slow else reps)
                except Exception as e:  # report, never hide
                    print(f"!! matched {label} {unit}={s}: {type(e).__name__}: {str(e)[:200]}")
                    continue
                ladder.append(dict(setting=s, wall=wall, err=err, steps=steps))
                # a ladder goes from cheap to expensive: stop once both targets are met
                # and the setting is already 4x more expensive than the best passing one
                passing = [d for d in ladder if d["err"] <= min(TARGETS)]
                if passing and wall > 4 * min(d["wall"] for d in passing):
                    break
            progress(f"matched {label}: " + ", ".join(f"{d['setting']:g}: {d['err']:.1e} ms/{d['wall'] * 1e3:.2f} ms"
                                                     for d in ladder))
            results.append((label, unit, ladder, note))
    peer_best = {}
    for label, unit, ladder, note in results:
        if label == PEER:
            for tgt in TARGETS:
                ok = [d for d in ladder if d["err"] <= tgt]
                peer_best[tgt] = min(ok, key=lambda d: d["wall"]) if ok else None
    table = []
    for label, unit, ladder, note in results:
        for d in ladder:
            rows.add(B + "_ladder", label, 1, "wall_s", d["wall"], "s", setting=d["setting"], setting_unit=unit,
                     max_spike_time_error=d["err"], steps=d["steps"], note=note)
        for tgt in TARGETS:
            ok = [d for d in ladder if d["err"] <= tgt]
            best = min(ok, key=lambda d: d["wall"]) if ok else None
            pb = peer_best.get(tgt)
            ratio = (pb["wall"] / best["wall"]) if (best and pb and label != PEER) else None
            rows.add(B, label, 1, f"wall_s_at_err_le_{tgt:g}ms", None if best is None else best["wall"], "s",
                     peer=None if label == PEER else PEER, ratio=ratio,
                     setting=None if best is None else best["setting"], setting_unit=unit,
                     max_spike_time_error=None if best is None else best["err"],
                     steps=None if best is None else best["steps"], target_error_ms=tgt,
                     note=note + ("" if best else f"; no setting in {settings_str(ladder)} reached {tgt} ms"))
            table.append((label, tgt, unit, best, ratio))
    return table


def settings_str(ladder):
    return "[" + ", ".join(f"{d['setting']:g}" for d in ladder) + "]"
