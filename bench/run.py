"""hhjax benchmark: speed and accuracy of one 100 ms Hodgkin–Huxley trace.

Protocol: classic HH (`hhjax.HHParams()`), step current 10 µA/cm² for
10 <= t < 90 ms, 100 ms, from `hhjax.resting_state(p)`.

Reference: an independent NumPy implementation of the classic HH equations,
integrated with SciPy's Radau (rtol=1e-10, atol=1e-12, max_step=0.1 ms) in three
pieces [0,10], [10,90], [90,100] so the stimulus edges are handled exactly; spike
times are upward 0-mV crossings of the dense output, refined with brentq. The
reference is cross-checked against DOP853 at rtol=1e-12, atol=1e-14.

Rows: hhjax with several solvers, and the peer `scipy.integrate.odeint` (seed 001's
approach: odeint over np.linspace(0, 100, 10001), which cannot see the stimulus
discontinuities). Plus batched throughput (vmap of a fixed-step exponential-Euler
simulation over N g_na values, against a vectorised NumPy Rush–Larsen loop) and the
cost of a gradient (value_and_grad of a trace-MSE loss w.r.t. HHParams).

Usage:
    python bench/run.py            # full run (< 3 min on a 2-core CPU)
    python bench/run.py --quick    # fewer repeats, smaller N (< 1 min)
    python bench/run.py --out PATH # JSON rows to PATH (metadata beside it)

Prints markdown tables; writes a JSON list of rows (each with `benchmark`, `impl`,
`n`, `metric`, `value`, `unit`, `peer`, `ratio`, `meta`) to
bench/results/latest.json and the machine metadata also to
bench/results/latest_meta.json. For every hhjax row with a peer,
`ratio = peer_value / hhjax_value` for lower-is-better metrics (time, error,
steps): > 1 means hhjax is faster / more accurate.
"""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)  # script only; never inside the package

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import diffrax  # noqa: E402
import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import scipy  # noqa: E402
from scipy.integrate import odeint, solve_ivp  # noqa: E402
from scipy.optimize import brentq  # noqa: E402

import hhjax  # noqa: E402

T_END = 100.0
T_ON, T_OFF, AMP = 10.0, 90.0, 10.0
SAMPLE_DT = 0.01  # ms: hhjax's default save_every and the odeint grid spacing
N_SAMPLES = 10001
PEER = "scipy.odeint"
HERE = pathlib.Path(__file__).resolve().parent

# ======================================================================================
# Independent NumPy model (modern convention, classic squid axon)

C_M, G_NA, G_K, G_L = 1.0, 120.0, 36.0, 0.3
E_NA, E_K, E_L = 50.0, -77.0, -54.387


# The independent NumPy model shared with the test references (one copy of the rates).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))
from make_reference import classic_rates as np_rates  # noqa: E402


def np_stim(t):
    return np.where((t >= T_ON) & (t < T_OFF), AMP, 0.0)


def np_rhs(y, i_stim):
    v, m, h, n = y
    am, bm, ah, bh, an, bn = np_rates(v)
    i_ion = G_NA * m**3 * h * (v - E_NA) + G_K * n**4 * (v - E_K) + G_L * (v - E_L)
    return np.array(
        [
            (i_stim - i_ion) / C_M,
            am * (1.0 - m) - bm * m,
            ah * (1.0 - h) - bh * h,
            an * (1.0 - n) - bn * n,
        ]
    )


def np_rhs_scalar(y, t):
    """odeint signature f(y, t); the stimulus is evaluated pointwise (odeint steps
    straight over its edges)."""
    v, m, h, n = y
    x1 = v + 40.0
    am = 0.1 * x1 / (1.0 - math.exp(-x1 / 10.0)) if x1 != 0.0 else 1.0
    bm = 4.0 * math.exp(-(v + 65.0) / 18.0)
    ah = 0.07 * math.exp(-(v + 65.0) / 20.0)
    bh = 1.0 / (1.0 + math.exp(-(v + 35.0) / 10.0))
    x2 = v + 55.0
    an = 0.01 * x2 / (1.0 - math.exp(-x2 / 10.0)) if x2 != 0.0 else 0.1
    bn = 0.125 * math.exp(-(v + 65.0) / 80.0)
    i = AMP if T_ON <= t < T_OFF else 0.0
    i_ion = G_NA * m**3 * h * (v - E_NA) + G_K * n**4 * (v - E_K) + G_L * (v - E_L)
    return [
        (i - i_ion) / C_M,
        am * (1.0 - m) - bm * m,
        ah * (1.0 - h) - bh * h,
        an * (1.0 - n) - bn * n,
    ]


def np_rest():
    """Resting state by brentq on the steady-state I–V curve (independent of hhjax)."""

    def i_ss(v):
        am, bm, ah, bh, an, bn = np_rates(v)
        m, h, n = am / (am + bm), ah / (ah + bh), an / (an + bn)
        return G_NA * m**3 * h * (v - E_NA) + G_K * n**4 * (v - E_K) + G_L * (v - E_L)

    v = brentq(i_ss, -80.0, -50.0, xtol=1e-14, rtol=1e-15)
    am, bm, ah, bh, an, bn = np_rates(v)
    return np.array([v, am / (am + bm), ah / (ah + bh), an / (an + bn)])


def reference(y0, method="Radau", rtol=1e-10, atol=1e-12):
    """Piecewise solve_ivp; returns (dense callable over [0, 100], spike times)."""
    pieces = [(0.0, T_ON, 0.0), (T_ON, T_OFF, AMP), (T_OFF, T_END, 0.0)]
    sols, spikes, y = [], [], np.asarray(y0, float)
    for ta, tb, i_stim in pieces:
        sol = solve_ivp(
            lambda t, yy, i=i_stim: np_rhs(yy, i),
            (ta, tb),
            y,
            method=method,
            rtol=rtol,
            atol=atol,
            max_step=0.1,
            dense_output=True,
        )
        if not sol.success:
            raise RuntimeError(f"reference {method} failed: {sol.message}")
        grid = np.linspace(ta, tb, int(round((tb - ta) / 0.002)) + 1)
        vg = sol.sol(grid)[0]
        for j in np.nonzero((vg[:-1] < 0.0) & (vg[1:] >= 0.0))[0]:
            spikes.append(
                brentq(lambda s: sol.sol(s)[0], grid[j], grid[j + 1], xtol=1e-14, rtol=1e-15)
            )
        sols.append((ta, tb, sol.sol, sol.t.size - 1))
        y = sol.y[:, -1]

    def dense(t):
        t = np.asarray(t, float)
        out = np.empty((4, t.size))
        for k, (ta, tb, s, _) in enumerate(sols):
            last = k == len(sols) - 1
            sel = (t >= ta) & ((t <= tb) if last else (t < tb))
            if np.any(sel):
                out[:, sel] = s(t[sel])
        return out

    steps = sum(s[3] for s in sols)
    return dense, np.array(spikes), steps


# ======================================================================================
# helpers


_T0 = time.perf_counter()


def progress(msg):
    print(f"[{time.perf_counter() - _T0:6.1f} s] {msg}", file=sys.stderr, flush=True)


def median_time(fn, repeats):
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def spike_error(times, ref):
    times = np.asarray(times, float)
    times = times[np.isfinite(times)]
    n = times.size
    if n != ref.size:
        k = min(n, ref.size)
        err = float(np.max(np.abs(times[:k] - ref[:k]))) if k else float("nan")
        return n, err, False
    return n, float(np.max(np.abs(times - ref))) if n else 0.0, True


def rmse(v, v_ref):
    return float(np.sqrt(np.mean((np.asarray(v) - v_ref) ** 2)))


class Rows:
    def __init__(self, meta):
        self.rows = []
        self.meta = meta

    def add(self, benchmark, impl, n, metric, value, unit, peer=None, ratio=None, **extra):
        row = dict(
            benchmark=benchmark,
            impl=impl,
            n=n,
            metric=metric,
            value=None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value,
            unit=unit,
            peer=peer,
            ratio=None if ratio is None or not math.isfinite(ratio) else float(ratio),
        )
        row.update(extra)
        row["meta"] = self.meta
        self.rows.append(row)


def safe_ratio(peer_value, value):
    if peer_value is None or value is None:
        return None
    if value == 0:
        return float("inf") if peer_value > 0 else None
    return peer_value / value


def fmt(x, spec):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return format(x, spec)


def machine_meta(args):
    dev = jax.devices()[0]
    return dict(
        platform=platform.platform(),
        processor=platform.processor() or platform.machine(),
        cpu_count=os.cpu_count(),
        python=sys.version.split()[0],
        jax=jax.__version__,
        jaxlib=getattr(jax.lib, "__version__", None) or jax.__version__,
        diffrax=diffrax.__version__,
        equinox=eqx.__version__,
        numpy=np.__version__,
        scipy=scipy.__version__,
        hhjax=hhjax.__version__,
        device=f"{dev.platform}:{dev.device_kind}",
        x64=bool(jax.config.jax_enable_x64),
        quick=bool(args.quick),
        repeats=args.repeats,
        time=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )


# ======================================================================================
# benchmarks


_FRESH_COMPILE = """
import time, jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp, hhjax
jnp.zeros(1).block_until_ready()  # the backend is up
p = hhjax.HHParams()
stim = hhjax.StepCurrent(amplitude=%r, t_on=%r, t_off=%r)
t = time.perf_counter(); hhjax.simulate(p, stim, t_end=%r).v.block_until_ready()
first = time.perf_counter() - t
t = time.perf_counter(); hhjax.simulate(p, stim, t_end=%r).v.block_until_ready()
print(first - (time.perf_counter() - t))
"""


def fresh_process_compile(runs):
    """`{"median", "runs"}`: compile time of the default `hhjax.simulate` in fresh
    interpreters, or None if the subprocess fails."""
    import subprocess

    code = _FRESH_COMPILE % (AMP, T_ON, T_OFF, T_END, T_END)
    out = []
    for _ in range(runs):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"!! fresh-process compile timing failed: {r.stderr[-400:]}", file=sys.stderr)
            return None
        out.append(float(r.stdout.strip().splitlines()[-1]))
    return {"median": float(np.median(out)), "runs": out}


def hhjax_methods(quick):
    pid = lambda: diffrax.PIDController(rtol=1e-6, atol=1e-6)  # noqa: E731
    slow = ("Kvaerno5", "dt=0.001")  # left out of --quick (slowest to compile / run)
    rows = [
        ("hhjax default (Tsit5, PID 1e-6)", {}),
        ("hhjax Tsit5 + PIDController(1e-6)", dict(solver=diffrax.Tsit5(), stepsize_controller=pid())),
        ("hhjax Kvaerno5 + PIDController(1e-6)", dict(solver=diffrax.Kvaerno5(), stepsize_controller=pid())),
        ("hhjax ExponentialEuler dt=0.01", dict(solver=hhjax.ExponentialEuler(), dt0=0.01)),
        ("hhjax ExponentialEuler dt=0.001", dict(solver=hhjax.ExponentialEuler(), dt0=0.001)),
        ("hhjax RK4 dt=0.01", dict(solver=hhjax.RK4(), dt0=0.01)),
        ("hhjax Midpoint dt=0.01", dict(solver=diffrax.Midpoint(), dt0=0.01)),
    ]
    if quick:
        rows = [r for r in rows if not any(x in r[0] for x in slow)]
    return rows


def bench_single(rows, args, p, stim, y0, ref_dense, ref_spikes, t_grid, v_ref):
    B = "single_trace_100ms"
    results = []  # (impl, dict) for the table

    # ---- peer: scipy.odeint (seed 001 approach) --------------------------------------
    peer_vals = None
    for label, kw in [
        ("scipy.odeint (default tol)", {}),
        ("scipy.odeint rtol=atol=1e-10", dict(rtol=1e-10, atol=1e-10)),
    ]:
        y0n = np.array([float(y0.v), float(y0.m), float(y0.h), float(y0.n)])

        def run(kw=kw):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return odeint(np_rhs_scalar, y0n, t_grid, full_output=True, **kw)

        ys, info = run()
        reps = max(2, args.repeats // 2)
        wall = median_time(run, reps)
        steps = int(info["nst"][-1])
        v = ys[:, 0]
        dvdt = np_rhs(ys.T, np_stim(t_grid))[0]
        t_herm = np.asarray(hhjax.crossing_times(jnp.asarray(t_grid), jnp.asarray(v), 0.0, dvdt=jnp.asarray(dvdt)))
        t_lin = np.asarray(hhjax.crossing_times(jnp.asarray(t_grid), jnp.asarray(v), 0.0))
        nsp, err, match = spike_error(t_herm, ref_spikes)
        _, err_lin, _ = spike_error(t_lin, ref_spikes)
        r = rmse(v, v_ref)
        d = dict(compile=None, wall=wall, wall_jit=None, steps=steps, nsp=nsp, match=match,
                 err=err, err_lin=err_lin, rmse=r, ok=info["message"])
        if peer_vals is None:
            peer_vals = d
        progress(f"{label}: {wall * 1e3:.1f} ms, {steps} steps")
        results.append((label, d))
        impl = label
        rows.add(B, impl, 1, "wall_s", wall, "s", note=f"median of {reps} odeint calls")
        rows.add(B, impl, 1, "steps", steps, "steps", note="LSODA nst")
        rows.add(B, impl, 1, "n_spikes", nsp, "spikes", ref_n_spikes=int(ref_spikes.size), match=match)
        rows.add(B, impl, 1, "max_spike_time_error", err, "ms",
                 note="crossings on the Hermite cubic with the NumPy model's dv/dt (hhjax.crossing_times)")
        rows.add(B, impl, 1, "max_spike_time_error_linear", err_lin, "ms",
                 note="crossings by linear interpolation of the saved trace")
        rows.add(B, impl, 1, "trace_rmse", r, "mV", note="vs Radau reference at the 10001 samples")

    # ---- hhjax rows -------------------------------------------------------------------
    for label, kw in hhjax_methods(args.quick):
        jax.clear_caches()  # so the first call really traces + compiles

        def call(kw=kw):
            res = hhjax.simulate(p, stim, t_end=T_END, **kw)
            res.v.block_until_ready()
            return res

        t = time.perf_counter()
        try:
            res = call()
        except Exception as e:  # report, never hide
            print(f"!! {label} failed: {type(e).__name__}: {e}", file=sys.stderr)
            rows.add(B, label, 1, "error", None, None, error=f"{type(e).__name__}: {e}")
            results.append((label, dict(failed=f"{type(e).__name__}: {str(e)[:80]}")))
            continue
        first = time.perf_counter() - t
        wall = median_time(call, args.repeats)
        compile_s = first - wall

        if args.quick:
            wall_jit = None  # saves a second compilation per row
        else:
            jitted = jax.jit(lambda q, kw=kw: hhjax.simulate(q, stim, t_end=T_END, **kw).v)
            jitted(p).block_until_ready()
            wall_jit = median_time(lambda: jitted(p).block_until_ready(), args.repeats)

        progress(f"{label}: compile {compile_s:.2f} s, {wall * 1e3:.1f} ms")
        results.append((label, dict(_res=res, compile=compile_s, first=first, wall=wall,
                                    wall_jit=wall_jit)))

    # compile time as a user meets it: a fresh interpreter with only hhjax imported
    # (this process holds the peers and many compiled programs, which slows tracing)
    fresh = fresh_process_compile(1 if args.smoke else (3 if args.quick else 5))
    if fresh is not None:
        progress(f"hhjax default (Tsit5, PID 1e-6): compile in a fresh process {fresh['median']:.2f} s "
                 f"(runs {', '.join(f'{x:.2f}' for x in fresh['runs'])})")
        rows.add(B, "hhjax default (Tsit5, PID 1e-6)", 1, "compile_s_fresh_process", fresh["median"], "s",
                 note="median over fresh interpreters (import jax, hhjax; x64; JAX backend started) of "
                      "the first hhjax.simulate call minus the second (= tracing + XLA compilation)",
                 runs=fresh["runs"])

    # accuracy metrics after all timings (no jax.clear_caches() in between, so the
    # spike-detection helpers compile once)
    for i, (label, d0) in enumerate(results):
        if "_res" not in d0:
            continue
        res, compile_s, first = d0["_res"], d0["compile"], d0["first"]
        wall, wall_jit = d0["wall"], d0["wall_jit"]
        stats = {k: int(v) for k, v in res.stats.items()}
        v = np.asarray(res.v)
        nsp, err, match = spike_error(np.asarray(hhjax.spike_times(res)), ref_spikes)
        r = rmse(v, v_ref)
        ok = bool(res.successful)
        d = dict(compile=compile_s, wall=wall, wall_jit=wall_jit, steps=stats["num_steps"],
                 acc=stats.get("num_accepted_steps"), rej=stats.get("num_rejected_steps"),
                 nsp=nsp, match=match, err=err, rmse=r, ok=ok)
        results[i] = (label, d)
        pv = peer_vals
        rows.add(B, label, 1, "compile_s", compile_s, "s",
                 note="first hhjax.simulate call after jax.clear_caches() minus the steady median "
                      "(= tracing + XLA compilation)", first_call_s=first)
        rows.add(B, label, 1, "wall_s", wall, "s", peer=PEER, ratio=safe_ratio(pv["wall"], wall),
                 note=f"median of {args.repeats} hhjax.simulate calls incl. Python-side checks, "
                      "block_until_ready")
        if wall_jit is not None:
            rows.add(B, label, 1, "wall_jit_s", wall_jit, "s", peer=PEER,
                     ratio=safe_ratio(pv["wall"], wall_jit),
                     note="median of calls to jax.jit(lambda p: hhjax.simulate(p, stim, ...).v)")
        rows.add(B, label, 1, "steps", stats["num_steps"], "steps", peer=PEER,
                 ratio=safe_ratio(pv["steps"], stats["num_steps"]),
                 accepted=stats.get("num_accepted_steps"), rejected=stats.get("num_rejected_steps"))
        rows.add(B, label, 1, "n_spikes", nsp, "spikes", ref_n_spikes=int(ref_spikes.size), match=match)
        rows.add(B, label, 1, "max_spike_time_error", err, "ms", peer=PEER, ratio=safe_ratio(pv["err"], err),
                 note="hhjax.spike_times (Hermite cubic with the model's dv/dt)")
        rows.add(B, label, 1, "trace_rmse", r, "mV", peer=PEER, ratio=safe_ratio(pv["rmse"], r),
                 note="vs Radau reference at the 10001 samples")
    return results, peer_vals


def np_expeuler(g_na, y0, dt, n_steps, save_stride):
    """Vectorised NumPy Rush–Larsen / exponential Euler: the same scheme as
    hhjax.ExponentialEuler (each variable advanced exactly with the others frozen)."""
    N = g_na.size
    v, m, h, n = (np.broadcast_to(np.asarray(x, float), (N,)).copy() for x in y0)
    out = [v.copy()]
    for k in range(n_steps):
        t = k * dt
        i = AMP if T_ON <= t < T_OFF else 0.0
        am, bm, ah, bh, an, bn = np_rates(v)
        gna = g_na * m**3 * h
        gk = G_K * n**4
        gtot = gna + gk + G_L
        vinf = (i + gna * E_NA + gk * E_K + G_L * E_L) / gtot
        v_new = vinf + (v - vinf) * np.exp(-gtot * dt / C_M)
        sm, sh, sn = am + bm, ah + bh, an + bn
        m = am / sm + (m - am / sm) * np.exp(-sm * dt)
        h = ah / sh + (h - ah / sh) * np.exp(-sh * dt)
        n = an / sn + (n - an / sn) * np.exp(-sn * dt)
        v = v_new
        if (k + 1) % save_stride == 0:
            out.append(v.copy())
    return np.stack(out, axis=-1)


def build_c_kernel():
    """Compile bench/hh_kernel.c (float64 and float32) with gcc -O3 -fopenmp; returns
    {dtype name: ctypes function} or {} with a note when no compiler is available."""
    import ctypes
    import shutil
    import subprocess
    import tempfile

    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        return {}, "no C compiler found: C-kernel rows skipped"
    out = {}
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="hhjax-bench-"))
    for name, real, flag in (("float64", "double", "0"), ("float32", "float", "1")):
        so = tmp / f"hh_kernel_{name}.so"
        cmd = [cc, "-O3", "-march=native", "-ffast-math", "-fopenmp", "-shared", "-fPIC", f"-DREAL={real}",
               f"-DREAL_IS_FLOAT={flag}", "-o", str(so), str(HERE / "hh_kernel.c"), "-lm"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            return {}, f"C kernel build failed: {proc.stderr[:300]}"
        lib = ctypes.CDLL(str(so))
        c_real = ctypes.c_double if real == "double" else ctypes.c_float
        ptr = np.ctypeslib.ndpointer(dtype=np.float64 if real == "double" else np.float32, flags="C")
        lib.hh_run.argtypes = [ctypes.c_long, ptr, ptr, c_real, ctypes.c_long, ctypes.c_long,
                               c_real, c_real, c_real, ptr]
        lib.hh_run.restype = None
        out[name] = lib.hh_run
    return out, f"gcc -O3 -march=native -ffast-math -fopenmp (SIMD over neurons), OMP threads = {os.environ.get('OMP_NUM_THREADS', os.cpu_count())}"


def run_c_kernel(fn, dtype, g, y0n, dt, n_steps, stride):
    g = np.ascontiguousarray(g, dtype)
    y0 = np.ascontiguousarray(np.stack([np.broadcast_to(x, g.shape) for x in y0n]), dtype)
    out = np.empty((g.size, n_steps // stride + 1), dtype)
    fn(g.size, g, y0, dt, n_steps, stride, AMP, T_ON, T_OFF, out)
    return out


def bench_batched(rows, args, p, stim, y0):
    B = "batched_throughput"
    dt, save_every = 0.01, 1.0
    n_steps = int(round(T_END / dt))
    stride = int(round(save_every / dt))
    out = []
    kernels, c_note = build_c_kernel()
    progress(c_note)
    f = jax.jit(
        jax.vmap(
            lambda g: hhjax.simulate(
                eqx.tree_at(lambda q: q.g_na, p, g),
                stim,
                t_end=T_END,
                solver=hhjax.ExponentialEuler(),
                dt0=dt,
                save_every=save_every,
            ).v
        )
    )
    for N in args.batch_sizes:
        gs = jnp.linspace(100.0, 140.0, N)
        gn = np.asarray(gs)
        rest = jax.vmap(lambda g: hhjax.resting_state(eqx.tree_at(lambda q: q.g_na, p, g)))(gs)
        y0n = [np.asarray(rest.v), np.asarray(rest.m), np.asarray(rest.h), np.asarray(rest.n)]
        reps = max(2, args.repeats // (1 if N <= 100 else 2)) if N < 10**5 else 1
        res = {}
        # ---- NumPy (the C kernel is timed with hhjax below, interleaved) ----------------
        if N <= args.numpy_max:
            t = time.perf_counter()
            vn = np_expeuler(gn, y0n, dt, n_steps, stride)
            res["numpy"] = (time.perf_counter() - t, vn)
            rows.add(B, "numpy.expeuler dt=0.01", N, "neuron_steps_per_s", N * n_steps / res["numpy"][0], "1/s",
                     note="hand-vectorised NumPy Rush–Larsen loop over the same N neurons", wall_s=res["numpy"][0])
        # ---- the C kernel (hardware reference) and hhjax's fused loop, float64 and float32:
        # timed in alternating rounds, the ratio the median of the rounds' ratios (this
        # machine's speed drifts by tens of percent within minutes; back-to-back pairs
        # see the same machine)
        rounds = max(3, reps)
        for name, dtype in (("float64", jnp.float64), ("float32", jnp.float32)):
            pb = hhjax.HHParams(g_na=gs, dtype=dtype)
            st = hhjax.StepCurrent(AMP, T_ON, T_OFF, dtype=dtype)
            yb = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), rest)

            def run(pb=pb, st=st, yb=yb):
                return hhjax.simulate_population(pb, st, T_END, dt=dt, save_every=save_every, y0=yb,
                                                 save="v").v.block_until_ready()

            t = time.perf_counter()
            vj = run()
            first = time.perf_counter() - t
            fn = kernels.get(name)
            dtn = np.float64 if name == "float64" else np.float32
            walls, c_walls = [], []
            if fn is not None:
                vc = run_c_kernel(fn, dtn, gn, y0n, dt, n_steps, stride)
            for k in range(rounds):
                order = (("c", "hh") if k % 2 == 0 else ("hh", "c")) if fn is not None else ("hh",)
                for who in order:
                    t = time.perf_counter()
                    run() if who == "hh" else run_c_kernel(fn, dtn, gn, y0n, dt, n_steps, stride)
                    (walls if who == "hh" else c_walls).append(time.perf_counter() - t)
            wall = float(np.median(walls))
            peer = f"c {name}"
            if fn is not None:
                c_wall = float(np.median(c_walls))
                res[peer] = (c_wall, vc)
                rows.add(B, f"c_kernel {name}", N, "neuron_steps_per_s", N * n_steps / c_wall, "1/s",
                         note=c_note, wall_s=c_wall, walls_s=c_walls)
            round_ratios = [c / h for c, h in zip(c_walls, walls)]
            ratio = float(np.median(round_ratios)) if peer in res else None
            diff = float(np.max(np.abs(np.asarray(vj, float) - res[peer][1]))) if peer in res else None
            rows.add(B, f"hhjax simulate_population {name}", N, "neuron_steps_per_s", N * n_steps / wall, "1/s",
                     peer=f"c_kernel {name}" if peer in res else None, ratio=ratio,
                     note="fused fixed-step exponential Euler, dt=0.01, save_every=1.0, save='v' (v only, as the C kernel), default threads "
                          f"({hhjax._fast._default_threads()}: the population split over the cores, as the C kernel's "
                          "OpenMP); ratio = hhjax throughput / C-kernel throughput, the median over "
                          f"{rounds} alternating rounds of the two",
                     wall_s=wall, first_call_s=first, max_abs_diff_vs_c_mV=diff,
                     round_ratios=round_ratios or None)
            res[f"hhjax {name}"] = (wall, vj, first, ratio, diff)
        # ---- peers: NEURON, Brian2, Jaxley (optional) -----------------------------------
        if N <= args.peers_max_n:
            bench_batched_peers(rows, args, N, gn, y0n, dt, n_steps, stride, res)
        # ---- hhjax general path: jit(vmap(simulate)) ---------------------------------------
        if N <= args.vmap_max:
            t = time.perf_counter()
            vv = f(gs).block_until_ready()
            first = time.perf_counter() - t
            wall = median_time(lambda: f(gs).block_until_ready(), reps)
            peer_wall = res["hhjax float64"][0]
            rows.add(B, "hhjax vmap(simulate) ExponentialEuler dt=0.01", N, "neuron_steps_per_s", N * n_steps / wall, "1/s",
                     peer="hhjax simulate_population float64", ratio=peer_wall / wall,
                     note="jit(vmap(simulate)): the general path (any diffrax solver)", wall_s=wall, first_call_s=first)
            res["vmap"] = (wall, vv, first)
        out.append((N, res))
        progress(f"batched N={N}: " + ", ".join(f"{k} {v[0]:.3f} s" for k, v in res.items()))
    return out


def bench_batched_peers(rows, args, N, gn, y0n, dt, n_steps, stride, res):
    """Throughput of the peers on the same N neurons (g_na in [100, 140], each from its
    resting state, v kept every 1 ms), and hhjax's ratio against each."""
    import peers

    B = "batched_throughput"
    reps = 1 if N >= 10_000 else 2
    hh_wall = res["hhjax float64"][0]
    hh32_wall = res["hhjax float32"][0]
    out = {}
    if args.peers_ok.get("neuron") and N <= args.neuron_max_n:
        try:
            nrn = peers.Neuron(nthread=args.peer_threads)
            t = time.perf_counter()
            nrn.build(gn, y0n)
            build_s = time.perf_counter() - t
            nrn.configure(dt=dt, secondorder=0, usetable=1)
            nrn.record("all_v", stride * dt)
            walls = [nrn.run() for _ in range(reps)]
            wall = float(np.median(walls))
            vn = nrn.all_v()
            nrn.clear()
            out["neuron"] = (wall, vn)
            note = (f"NEURON {args.peer_versions.get('neuron')}: N sections (nseg=1, area 100 µm²) with hh, "
                    f"IClamp 0.01 nA, fixed dt=0.01, backward Euler + rate tables (defaults), "
                    f"pc.nthread({args.peer_threads}), cache_efficient; v of the first and last neuron recorded every 1 ms "
                    "(recording all N with threads makes NEURON's initialisation O(N^2)); "
                    f"time of continuerun(100) (building {build_s:.1f} s and the per-cell state setting excluded)")
            rows.add(B, "neuron hh (fixed dt, default scheme)", N, "neuron_steps_per_s", N * n_steps / wall, "1/s",
                     note=note, wall_s=wall, build_s=build_s)
        except Exception as e:  # report, never hide
            print(f"!! NEURON batched N={N} failed: {type(e).__name__}: {e}", file=sys.stderr)
    if args.peers_ok.get("brian2"):
        try:
            info, arr = peers.brian2_run(gn, y0n, target="cpp_standalone", dt=dt, record="all_v",
                                         save_every=stride * dt, repeats=max(2, reps), threads=args.peer_threads)
            # min, not median: Brian2's OpenMP code meets at a barrier every time step, so one
            # busy core (other jobs on this 2-core machine) can stretch a run several-fold
            wall = float(np.min(info["walls"]))
            vb = arr["v"]
            ref = res["hhjax float64"][1]
            k = min(vb.shape[1], np.shape(ref)[1])
            diff = float(np.max(np.abs(vb[:, :k] - np.asarray(ref)[:, :k])))
            out["brian2"] = (wall, vb)
            rows.add(B, "brian2 cpp_standalone exponential_euler", N, "neuron_steps_per_s", N * n_steps / wall, "1/s",
                     note=f"Brian2 {info['version']} cpp_standalone (g++ -O3 -ffast-math -march=native), "
                          f"{args.peer_threads} OpenMP threads, NeuronGroup with the HH equations per unit area, "
                          "method='exponential_euler' (= hhjax's scheme), StateMonitor every 1 ms; time = "
                          "device._last_run_time (the binary's simulation loop; build and process start excluded), "
                          "min over the repeats (per-step OpenMP barriers: very sensitive to a busy core)",
                     wall_s=wall, build_s=info.get("build_s"), binary_s=info.get("binary_s"),
                     max_abs_diff_vs_hhjax_f64_mV=diff)
        except Exception as e:  # report, never hide
            print(f"!! Brian2 batched N={N} failed: {type(e).__name__}: {str(e)[:400]}", file=sys.stderr)
    if args.peers_ok.get("jaxley"):
        try:
            if getattr(args, "_jaxley_fn", None) is None:
                jxp = peers.Jaxley(dt=dt, solver="bwd_euler")
                args._jaxley_fn = jax.jit(jax.vmap(jxp.sim_fn(save_every=stride * dt)))
            f = args._jaxley_fn
            xs = [jnp.asarray(gn)] + [jnp.asarray(x) for x in y0n]
            t = time.perf_counter()
            vj = f(*xs).block_until_ready()
            first = time.perf_counter() - t
            wall = median_time(lambda: f(*xs).block_until_ready(), reps)
            out["jaxley"] = (wall, np.asarray(vj))
            rows.add(B, "jaxley vmap bwd_euler", N, "neuron_steps_per_s", N * n_steps / wall, "1/s",
                     note=f"Jaxley {args.peer_versions.get('jaxley')}: one 1-compartment cell with jaxley.channels.HH, "
                          "jit(vmap) over (HH_gNa, initial state) of Jaxley's step function "
                          "(build_init_and_step_fn, solver='bwd_euler', voltage_solver='jaxley.dhs.cpu') "
                          "in a lax.scan keeping v every 1 ms",
                     wall_s=wall, first_call_s=first)
        except Exception as e:  # report, never hide
            print(f"!! Jaxley batched N={N} failed: {type(e).__name__}: {str(e)[:400]}", file=sys.stderr)
    for name, (wall, _) in out.items():
        impl = {"neuron": "neuron hh (fixed dt, default scheme)", "brian2": "brian2 cpp_standalone exponential_euler",
                "jaxley": "jaxley vmap bwd_euler"}[name]
        for dn, w in (("float64", hh_wall), ("float32", hh32_wall)):
            rows.add("batched_throughput_vs_peers", f"hhjax simulate_population {dn}", N, "neuron_steps_per_s",
                     N * n_steps / w, "1/s", peer=impl, ratio=wall / w,
                     note="ratio = hhjax throughput / peer throughput, same N, same run")
        res[f"peer {name}"] = (wall, None)
    progress(f"batched peers N={N}: " + ", ".join(f"{k} {v[0]:.3f} s" for k, v in out.items()))


def bench_peer_traces(rows, args, p, stim, y0n, det):
    """One neuron, dt = 0.01 ms: each peer's trace against hhjax (spike times with the
    common Hermite detector; |Δv| where the scheme is the same) and its latency."""
    import peers

    B = "single_trace_peers"
    out = []

    def state(r):
        return np.asarray(r.t), np.stack([np.asarray(r.v), np.asarray(r.m), np.asarray(r.h), np.asarray(r.n)])

    hh_acc = det.spikes(*state(hhjax.simulate(p, stim, t_end=T_END)))
    ee = hhjax.simulate_population(p, stim, T_END, dt=0.01)
    t_ee = np.asarray(ee.t)
    y_ee = np.stack([np.asarray(getattr(ee.state, k)) for k in "vmhn"])
    hh_ee = det.spikes(t_ee, y_ee)

    def add(label, t, y, wall, note, same_scheme=None, **extra):
        sp = det.spikes(t, y)
        err = float(np.max(np.abs(sp - det.ref))) if sp.size == det.ref.size else float("inf")
        d_acc = float(np.max(np.abs(sp - hh_acc))) if sp.size == hh_acc.size else float("inf")
        d_ee = float(np.max(np.abs(sp - hh_ee))) if sp.size == hh_ee.size else float("inf")
        dv = None
        if same_scheme is not None:
            k = min(len(t), t_ee.size)
            dv = float(np.max(np.abs(np.asarray(y[0][:k]) - y_ee[0][:k])))
        rows.add(B, label, 1, "wall_s", wall, "s", note=note, n_spikes=int(sp.size),
                 max_spike_time_error=err, max_spike_time_diff_vs_hhjax_accurate=d_acc,
                 max_spike_time_diff_vs_hhjax_expeuler=d_ee, max_abs_dv_vs_hhjax_same_scheme_mV=dv, **extra)
        out.append(dict(label=label, wall=wall, nsp=int(sp.size), err=err, d_acc=d_acc, d_ee=d_ee, dv=dv))
        progress(f"peer trace {label}: {wall * 1e3:.2f} ms, spike err {err:.2e} ms, vs hhjax {d_acc:.2e} ms"
                 + ("" if dv is None else f", |dv| vs hhjax same scheme {dv:.1e} mV"))

    # hhjax itself (jitted latency at dt = 0.01)
    for scheme in ("exponential_euler", "staggered"):
        f = jax.jit(lambda q, s=scheme: hhjax.simulate_population(q, stim, T_END, dt=0.01, scheme=s, throw=False).state)
        jax.block_until_ready(f(p))
        wall = median_time(lambda: jax.block_until_ready(f(p)), max(5, args.repeats))
        st = f(p)
        add(f"hhjax simulate_population {scheme} dt=0.01", np.asarray(ee.t),
            np.stack([np.asarray(getattr(st, k)) for k in "vmhn"]), wall,
            "jax.jit(simulate_population(...)), one neuron")
    if args.peers_ok.get("neuron"):
        try:
            nrn = peers.Neuron(nthread=1)
            nrn.build([G_NA], [[x] for x in y0n])
            nrn.record("trace")
            for label, cfg, note in [
                ("NEURON default (backward Euler, rate tables) dt=0.01", dict(dt=0.01, secondorder=0, usetable=1),
                 "secondorder=0, usetable_hh=1"),
                ("NEURON Crank–Nicolson (secondorder=2, no tables) dt=0.01", dict(dt=0.01, secondorder=2, usetable=0),
                 "secondorder=2, usetable_hh=0"),
            ]:
                nrn.configure(**cfg)
                walls = [nrn.run() for _ in range(max(3, args.repeats))]
                t, v, m, hh_, n = nrn.trace()
                add(label, t, np.stack([v, m, hh_, n]), float(np.median(walls)),
                    f"NEURON {args.peer_versions.get('neuron')}: one section, area {nrn.area_um2():.6g} µm², "
                    f"IClamp {peers.AMP_NA:g} nA, {note}; time of continuerun(100) incl. recording every step",
                    area_um2=nrn.area_um2())
            nrn.clear()
        except Exception as e:  # report, never hide
            print(f"!! NEURON trace failed: {type(e).__name__}: {e}", file=sys.stderr)
    if args.peers_ok.get("brian2"):
        try:
            info, arr = peers.brian2_run([G_NA], [[x] for x in y0n], target="cython", dt=0.01, record="trace",
                                         repeats=max(3, args.repeats))
            t = arr["t"]
            y = np.stack([arr["v"], arr["m"], arr["h"], arr["n"]])
            add("Brian2 runtime (cython) exponential_euler dt=0.01", t, y, float(np.median(info["walls"])),
                f"Brian2 {info['version']}, runtime mode, codegen target cython; time of Network.run(100 ms) "
                "after a first (code-generating) run, StateMonitor of v, m, h, n every step",
                same_scheme="hhjax exponential Euler", first_run_s=info.get("first_s"))
        except Exception as e:  # report, never hide
            print(f"!! Brian2 trace failed: {type(e).__name__}: {str(e)[:400]}", file=sys.stderr)
    if args.peers_ok.get("jaxley"):
        try:
            import jaxley as jx

            for solver in ("bwd_euler", "crank_nicolson"):
                jxp = peers.Jaxley(dt=0.01, solver=solver)
                cell = jxp.cell
                cell.set("v", float(y0n[0]))
                cell.init_states()
                f = jax.jit(lambda c=cell, s=solver: jx.integrate(c, delta_t=0.01, t_max=T_END, solver=s,
                                                                    return_states=False))
                g = jax.jit(jax.vmap(jxp.sim_fn(save_every=0.01, all_states=True)))
                jax.block_until_ready(f())
                wall = median_time(lambda: jax.block_until_ready(f()), max(5, args.repeats))
                ys = np.asarray(g(jnp.array([G_NA]), *[jnp.array([x]) for x in y0n]))[0]
                v_int = np.asarray(f())[0]
                add(f"Jaxley jx.integrate {solver} dt=0.01", np.arange(ys.shape[0]) * 0.01, ys.T, wall,
                    f"Jaxley {args.peer_versions.get('jaxley')}: jit(jx.integrate(cell, delta_t=0.01, solver="
                    f"'{solver}')), one compartment, area {jxp.area:g} µm², stimulus {peers.AMP_NA:g} nA",
                    area_um2=jxp.area,
                    max_abs_dv_integrate_vs_stepfn_mV=float(np.max(np.abs(v_int[: ys.shape[0]] - ys[:, 0]))))
        except Exception as e:  # report, never hide
            print(f"!! Jaxley trace failed: {type(e).__name__}: {str(e)[:400]}", file=sys.stderr)
    return out, hh_acc


def bench_grad_jaxley(rows, args, v_ref):
    """Jaxley's value_and_grad / forward for the 6-parameter trace loss of grad6."""
    import peers

    B = "gradient_cost_6"
    out = []
    target = jnp.asarray(v_ref)[::10]
    x0 = [0.115, 0.036, 0.0003, 50.0, -77.0, -54.387]  # Jaxley units: S/cm², mV
    for label, ckpt in (("jaxley jx.integrate bwd_euler dt=0.01, reverse-mode", None),
                        ("jaxley jx.integrate bwd_euler dt=0.01, reverse-mode, checkpoint_lengths=[100, 101]", [100, 101])):
        try:
            jxp = peers.Jaxley(dt=0.01, solver="bwd_euler")
            jxp.cell.set("v", -64.99637933119206)
            jxp.cell.init_states()
            loss, params = jxp.loss_and_params(target, x0=x0, checkpoint_lengths=ckpt)
            f = jax.jit(loss)
            vg = jax.jit(jax.value_and_grad(loss))
            jax.block_until_ready(f(params))
            t_f = median_time(lambda: jax.block_until_ready(f(params)), args.repeats)
            jax.block_until_ready(vg(params))
            t_g = median_time(lambda: jax.block_until_ready(vg(params)), args.repeats)
            g = np.concatenate([np.ravel(np.asarray(v)) for d in vg(params)[1] for v in d.values()])
            fin = bool(np.all(np.isfinite(g)))
            rows.add(B, label, 1, "grad_over_forward", t_g / t_f, "x", forward_s=t_f, value_and_grad_s=t_g,
                     grads_finite=fin,
                     note="Jaxley: make_trainable on HH_gNa, HH_gK, HH_gLeak, HH_eNa, HH_eK, HH_eLeak; "
                          "jit(value_and_grad(loss)) / jit(loss), loss = trace MSE on the 0.1 ms grid")
            out.append((label, t_f, t_g, fin))
            progress(f"grad6 {label}: fwd {t_f * 1e3:.1f} ms, value+grad {t_g * 1e3:.1f} ms")
        except Exception as e:  # report, never hide
            print(f"!! Jaxley gradient failed: {type(e).__name__}: {str(e)[:400]}", file=sys.stderr)
    return out


def bench_memory(rows, args):
    """bench/memory.py, one configuration per subprocess."""
    import subprocess

    import memory

    B = "memory_grad_5_sweeps"
    out = []
    configs = list(memory.CONFIGS)
    if args.quick:
        configs = [c for c in configs if "staggered" not in c]
    for label in configs:
        cmd = [sys.executable, str(HERE / "memory.py"), label, str(args.repeats)]
        if args.pin_cpu is not None:
            cmd = ["taskset", "-c", str(args.pin_cpu)] + cmd
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("MEMORY_RESULT ")]
            if proc.returncode != 0 or not line:
                raise RuntimeError(proc.stderr[-400:])
            r = json.loads(line[-1].split(" ", 1)[1])
        except Exception as e:  # report, never hide
            print(f"!! memory {label} failed: {type(e).__name__}: {str(e)[:400]}", file=sys.stderr)
            continue
        note = ("5 sweeps x 100 ms, dt=0.01 (Tsit5: PID 1e-6), loss = trace MSE on the 0.1 ms grid, "
                "6 parameters; measured in a subprocess (bench/memory.py)")
        extra = {k: v for k, v in r.items() if k != "config"}
        rows.add(B, label, 1, "peak_rss_mb", r["peak_rss_mb"], "MB", note=note + "; VmHWM while calling the "
                 "compiled value_and_grad (reset after compiling)", **extra)
        rows.add(B, label, 1, "peak_rss_incl_compile_mb", r.get("peak_rss_incl_compile_mb"), "MB",
                 note="VmHWM of the whole subprocess incl. imports and XLA compilation")
        rows.add(B, label, 1, "xla_temp_mb", r.get("xla_vg_temp_mb"), "MB",
                 note="compiled value_and_grad memory_analysis().temp_size_in_bytes (incl. saved residuals)")
        rows.add(B, label, 1, "grad_over_forward", r["grad_over_forward"], "x", note=note,
                 forward_s=r["forward_s"], value_and_grad_s=r["value_and_grad_s"])
        out.append((label, r))
        progress(f"memory {label}: peak RSS {r['peak_rss_mb']:.0f} MB (+{r['peak_rss_delta_mb']:.1f}), "
                 f"XLA temp {r.get('xla_vg_temp_mb', float('nan')):.2f} MB, grad/fwd {r['grad_over_forward']:.2f}")
    return out


def grad_configs(quick):
    cfgs = [
        ("hhjax default (Tsit5, PID 1e-6)", {}),
        ("hhjax Tsit5 + PIDController(1e-6, dtmax=0.5)",
         dict(solver=diffrax.Tsit5(),
              stepsize_controller=diffrax.PIDController(rtol=1e-6, atol=1e-6, dtmax=0.5))),
        ("hhjax ExponentialEuler dt=0.01", dict(solver=hhjax.ExponentialEuler(), dt0=0.01)),
    ]
    return cfgs


def bench_grad(rows, args, p, stim, v_ref, odeint_wall):
    B = "gradient_cost"
    target = jnp.asarray(v_ref)
    p0 = eqx.tree_at(lambda q: q.g_na, p, jnp.asarray(115.0))  # a fitting-like start
    out = []
    default_failed = False
    for label, kw in grad_configs(args.quick):
        if args.quick and "ExponentialEuler" in label:
            continue
        if args.quick and "dtmax" in label and not default_failed:
            continue

        def loss(q, kw=kw):
            return jnp.mean((hhjax.simulate(q, stim, t_end=T_END, **kw).v - target) ** 2)

        fwd = eqx.filter_jit(loss)
        vg = eqx.filter_jit(eqx.filter_value_and_grad(loss))
        jax.clear_caches()
        t = time.perf_counter()
        fwd(p0).block_until_ready()
        first_f = time.perf_counter() - t
        t_f = median_time(lambda: fwd(p0).block_until_ready(), args.repeats)
        t = time.perf_counter()
        try:
            val, g = vg(p0)
            jax.block_until_ready(g)
        except Exception as e:  # report, never hide
            lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
            key = [ln for ln in lines if "linear solver" in ln or "non-finite" in ln]
            first_line = (key[0] if key else lines[0] if lines else "").split("Error: ", 1)[-1]
            msg = f"{type(e).__name__}: " + first_line[:200]
            print(f"!! value_and_grad for {label} failed: {msg}", file=sys.stderr)
            rows.add(B, label, 1, "value_and_grad_s", None, "s", error=msg, forward_s=t_f)
            out.append((label, dict(failed=msg, t_f=t_f)))
            default_failed = default_failed or not kw
            continue
        first_g = time.perf_counter() - t
        t_g = median_time(lambda: jax.block_until_ready(vg(p0)), args.repeats)
        leaves = jax.tree_util.tree_leaves(g)
        finite = all(bool(jnp.all(jnp.isfinite(x))) for x in leaves)
        grads = {k: float(getattr(g, k)) for k in
                 ("c_m", "g_na", "g_k", "g_leak", "e_na", "e_k", "e_leak", "temperature", "q10", "v_shift")}
        # peer: forward-difference gradient of the same loss with scipy.odeint (10
        # array fields of HHParams -> 11 odeint solves); estimated from the measured
        # odeint wall time of one trace.
        n_fd = 11
        fd_est = n_fd * odeint_wall
        rows.add(B, label, 1, "grad_over_forward", t_g / t_f, "x",
                 note="median value_and_grad time / median forward time of the same jitted "
                      "trace-MSE loss w.r.t. HHParams (RecursiveCheckpointAdjoint)",
                 forward_s=t_f, value_and_grad_s=t_g, loss=float(val), grads_finite=finite,
                 grads=grads)
        rows.add(B, label, 1, "value_and_grad_s", t_g, "s",
                 peer="scipy.odeint forward differences (est.)", ratio=fd_est / t_g,
                 note=f"peer estimated as {n_fd} x the measured odeint wall time (10 parameters)")
        rows.add(B, label, 1, "compile_s", first_g - t_g, "s",
                 note="first value_and_grad call after jax.clear_caches() (forward already "
                      "compiled) minus steady median")
        rows.add(B, label, 1, "forward_s", t_f, "s", note="jitted loss, forward only",
                 compile_s=first_f - t_f)
        progress(f"grad {label}: fwd {t_f * 1e3:.1f} ms, grad {t_g * 1e3:.1f} ms")
        out.append((label, dict(t_f=t_f, t_g=t_g, ratio=t_g / t_f, first_g=first_g,
                                first_f=first_f, finite=finite, fd_est=fd_est,
                                loss=float(val), grads=grads)))
    return out


def bench_grad6(rows, args, p, stim, v_ref):
    """Value and gradient of a trace-MSE loss w.r.t. the six fitted parameters
    (g_na, g_k, g_leak, e_na, e_k, e_leak): forward-mode (jax.jacfwd with diffrax
    ForwardMode, as fitting's Levenberg–Marquardt uses) and the fused fixed-step
    loop with checkpointed reverse mode, each against its own forward solve."""
    B = "gradient_cost_6"
    names = ("g_na", "g_k", "g_leak", "e_na", "e_k", "e_leak")
    target = jnp.asarray(v_ref)[::10]  # the 0.1 ms grid
    x0 = jnp.array([115.0, 36.0, 0.3, 50.0, -77.0, -54.387])

    def params(x):
        return eqx.tree_at(lambda q: [getattr(q, n) for n in names], p, list(x))

    def loss_tsit(x, adjoint=None):
        kw = {} if adjoint is None else dict(adjoint=adjoint)
        return jnp.mean((hhjax.simulate(params(x), stim, t_end=T_END, save_every=0.1, **kw).v - target) ** 2)

    def loss_pop(x):
        return jnp.mean((hhjax.simulate_population(params(x), stim, T_END, save_every=0.1, save="v").v - target) ** 2)

    def pop_fwd_vg(x):
        # value and gradient in one forward-mode pass: 6 tangents carried with the state
        vals, tangents = jax.vmap(lambda t: jax.jvp(loss_pop, (x,), (t,)))(
            jnp.eye(x.shape[0], dtype=x.dtype)
        )
        return vals[0], tangents

    def fwd_mode_vg(x):
        def f(x):
            return loss_tsit(x, diffrax.ForwardMode())
        val = f(x)
        return val, jax.jacfwd(f)(x)

    cases = [
        ("hhjax Tsit5 PID 1e-6, forward-mode (jacfwd, ForwardMode)", jax.jit(loss_tsit), jax.jit(fwd_mode_vg)),
        ("hhjax Tsit5 PID 1e-6, reverse-mode (RecursiveCheckpointAdjoint)", jax.jit(loss_tsit), jax.jit(jax.value_and_grad(loss_tsit))),
        ("hhjax simulate_population dt=0.01, reverse-mode (checkpointed)", jax.jit(loss_pop), jax.jit(jax.value_and_grad(loss_pop))),
        ("hhjax simulate_population dt=0.01, forward-mode (vmap of jvp)", jax.jit(loss_pop), jax.jit(pop_fwd_vg)),
    ]
    out = []
    for label, f, vg in cases:
        f(x0).block_until_ready()
        t_f = median_time(lambda: f(x0).block_until_ready(), args.repeats)
        jax.block_until_ready(vg(x0))
        t_g = median_time(lambda: jax.block_until_ready(vg(x0)), args.repeats)
        g = np.asarray(vg(x0)[1])
        rows.add(B, label, 1, "grad_over_forward", t_g / t_f, "x", forward_s=t_f, value_and_grad_s=t_g,
                 grads_finite=bool(np.all(np.isfinite(g))),
                 note="6 parameters; ratio = value_and_grad time / forward time of the same loss")
        out.append((label, t_f, t_g, bool(np.all(np.isfinite(g)))))
        progress(f"grad6 {label}: fwd {t_f * 1e3:.1f} ms, value+grad {t_g * 1e3:.1f} ms")
    return out


# ======================================================================================


def targets_table(rows):
    """Markdown summary of the issue's targets from this run's rows."""

    def find(bench, impl_pred, metric, n=None):
        out = [r for r in rows if r["benchmark"] == bench and impl_pred(r) and r["metric"] == metric
               and (n is None or r["n"] == n) and r.get("value") is not None]
        return out

    lines = ["## Targets (this run)\n", "| target | measured | status |", "|---|---|---|"]

    def add(target, measured, ok):
        lines.append(f"| {target} | {measured} | {'—' if ok is None else ('met' if ok else 'NOT met')} |")

    thr = find("batched_throughput", lambda r: r["impl"].startswith("hhjax simulate_population"), "neuron_steps_per_s")
    if thr:
        nmax = max(r["n"] for r in thr)
        for dn in ("float64", "float32"):
            r = [x for x in thr if x["n"] == nmax and x["impl"].endswith(dn) and x.get("ratio") is not None]
            if r:
                add(f"fixed-step batched {dn} >= 0.8x C kernel (N = 1e5)",
                    f"{r[0]['ratio']:.2f}x at N = {nmax}", r[0]["ratio"] >= 0.8 if nmax >= 100_000 else None)
            j = [x for x in find("batched_throughput_vs_peers", lambda q: q["impl"].endswith(dn), "neuron_steps_per_s", nmax)
                 if "jaxley" in (x.get("peer") or "")]
            if j:
                add(f"fixed-step batched {dn} >= 4x Jaxley (N = 1e5)", f"{j[0]['ratio']:.2f}x at N = {nmax}",
                    j[0]["ratio"] >= 4 if nmax >= 100_000 else None)
    m = find("matched_accuracy_single_trace", lambda r: r["impl"].startswith("hhjax"), "wall_s_at_err_le_0.01ms")
    m = [r for r in m if r.get("ratio") is not None]
    if m:
        best = max(m, key=lambda r: r["ratio"])
        add("single trace at <= 0.01 ms spike error >= 2x faster than diffrax Tsit5 + PID",
            f"{best['ratio']:.2f}x ({best['impl']}, {best['setting_unit']} = {best['setting']:g}, "
            f"{best['value'] * 1e3:.3f} ms)", best["ratio"] >= 2)
    mem = [r for r in rows if r["benchmark"] == "memory_grad_5_sweeps" and r["metric"] == "grad_over_forward"
           and r["impl"].startswith("simulate_population")]
    if mem:
        best = min(mem, key=lambda r: r["value"])
        add("value-and-grad of a 6-parameter trace loss (5 sweeps x 100 ms, dt 0.01) <= 4x forward",
            f"{best['value']:.2f}x ({best['impl']})", best["value"] <= 4)
    rss = [r for r in rows if r["benchmark"] == "memory_grad_5_sweeps" and r["metric"] == "peak_rss_mb"]
    if rss:
        worst = max(rss, key=lambda r: r["value"])
        add("memory of that value-and-grad <= 2 GB", f"peak RSS <= {worst['value']:.0f} MB over all rows "
            f"({worst['impl']}; process incl. JAX runtime)", worst["value"] <= 2048)
    c = find("single_trace_100ms", lambda r: r["impl"].startswith("hhjax default"), "compile_s")
    cf = find("single_trace_100ms", lambda r: r["impl"].startswith("hhjax default"), "compile_s_fresh_process")
    if cf:
        extra = f" (in this process after jax.clear_caches(): {c[0]['value']:.2f} s)" if c else ""
        add("compile time of hhjax.simulate (default solver) <= 2 s",
            f"{cf[0]['value']:.2f} s in a fresh process{extra}", cf[0]["value"] <= 2)
    elif c:
        add("compile time of hhjax.simulate (default solver) <= 2 s", f"{c[0]['value']:.2f} s", c[0]["value"] <= 2)
    return "\n".join(lines) + "\n"


SECTIONS = ("single", "peers", "matched", "batched", "grad", "grad6", "memory")


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Benchmark hhjax against a Radau reference and scipy.odeint on a "
        "100 ms Hodgkin–Huxley step-current trace.",
    )
    ap.add_argument("--quick", action="store_true",
                    help="fewer repeats and smaller batches (< 1 min on 2 cores)")
    ap.add_argument("--out", type=pathlib.Path, default=HERE / "results" / "latest.json",
                    help="path of the JSON rows (default: bench/results/latest.json); "
                         "metadata goes to <stem>_meta.json beside it")
    ap.add_argument("--repeats", type=int, default=None,
                    help="timing repeats per measurement (default 7, quick 3)")
    ap.add_argument("--sections", default=",".join(SECTIONS),
                    help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)")
    ap.add_argument("--peers", default="neuron,brian2,jaxley",
                    help="comma-separated peers to run when importable (default neuron,brian2,jaxley; "
                         "'' for none); an absent peer is skipped with a printed note")
    ap.add_argument("--peer-threads", type=int, default=None,
                    help="threads for NEURON (pc.nthread) and Brian2 (OpenMP) in the throughput rows "
                         "(default: os.cpu_count(), as the C kernel's OpenMP)")
    ap.add_argument("--pin-cpu", type=int, default=0,
                    help="CPU to pin the accuracy-matched single-trace timings and the memory "
                         "subprocesses to (-1: no pinning; default 0)")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny configuration for the test suite (seconds; numbers meaningless)")
    args = ap.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 7
    if args.pin_cpu is not None and args.pin_cpu < 0:
        args.pin_cpu = None
    args.batch_sizes = [100, 10_000] if args.quick else [1, 100, 1000, 10_000, 100_000]
    args.numpy_max = 10_000
    args.vmap_max = 1000 if args.quick else 10_000
    args.peers_max_n = 10_000 if args.quick else 100_000
    # NEURON slows to ~4e6 neuron-steps/s at N = 1e5 (~4 min for the 100 ms run, and
    # more on a busy machine): its throughput rows stop at 1e4
    args.neuron_max_n = 10_000
    args.peer_threads = args.peer_threads or os.cpu_count() or 1
    sections = [x.strip() for x in args.sections.split(",") if x.strip()]
    bad = [x for x in sections if x not in SECTIONS]
    if bad:
        ap.error(f"unknown sections {bad}; choose from {SECTIONS}")
    if args.smoke:
        args.quick = True
        args.repeats = 1
        args.batch_sizes = [8]
        args.numpy_max = 0
        args.vmap_max = 0
        args.peers = ""
    t_start = time.perf_counter()

    meta = machine_meta(args)
    rows = Rows(meta)
    # ---- optional peers -------------------------------------------------------------
    import peers as peers_mod

    args.peers_ok, args.peer_versions, peer_notes = {}, {}, []
    for name in [x.strip() for x in args.peers.split(",") if x.strip()]:
        ok, note = peers_mod.available(name)
        args.peers_ok[name] = ok
        if ok:
            args.peer_versions[name] = note.split()[1]
        else:
            peer_notes.append(note)
            print(f"NOTE: {note}", file=sys.stderr)
    meta["peers"] = {k: (args.peer_versions.get(k) if v else None) for k, v in args.peers_ok.items()}
    meta["peer_notes"] = peer_notes
    p = hhjax.HHParams()
    stim = hhjax.StepCurrent(amplitude=AMP, t_on=T_ON, t_off=T_OFF)
    y0 = hhjax.resting_state(p)
    y0n = np.array([float(y0.v), float(y0.m), float(y0.h), float(y0.n)])
    rest_diff = float(np.max(np.abs(y0n - np_rest())))

    # ---- reference ----------------------------------------------------------------
    t = time.perf_counter()
    ref_dense, ref_spikes, ref_steps = reference(y0n, **(dict(rtol=1e-7, atol=1e-9) if args.smoke else {}))
    ref_time = time.perf_counter() - t
    t_grid = np.linspace(0.0, T_END, N_SAMPLES)
    v_ref = ref_dense(t_grid)[0]
    if args.smoke:
        chk_dense, chk_spikes = ref_dense, ref_spikes
    else:
        chk_dense, chk_spikes, _ = reference(y0n, method="DOP853", rtol=1e-12, atol=1e-14)
    ref_spike_floor = (
        float(np.max(np.abs(chk_spikes - ref_spikes))) if chk_spikes.size == ref_spikes.size else float("nan")
    )
    ref_rmse_floor = rmse(chk_dense(t_grid)[0], v_ref)
    progress(f"reference done (Radau {ref_time:.1f} s)")
    meta.update(
        reference=dict(
            method="scipy solve_ivp Radau rtol=1e-10 atol=1e-12 max_step=0.1, pieces [0,10],[10,90],[90,100]",
            wall_s=ref_time,
            steps=int(ref_steps),
            spike_times_ms=[float(x) for x in ref_spikes],
            crosscheck="DOP853 rtol=1e-12 atol=1e-14",
            crosscheck_max_spike_diff_ms=ref_spike_floor,
            crosscheck_trace_rmse_mV=ref_rmse_floor,
            rest_state_hhjax_vs_numpy_max_abs_diff=rest_diff,
        )
    )

    import matched

    det = matched.Detector(np_rhs, np_stim, ref_spikes)
    single, peer, peer_traces, matched_tab, batched, grad, grad6, mem = [], None, [], [], [], [], [], []
    if "single" in sections:
        single, peer = bench_single(rows, args, p, stim, y0, ref_dense, ref_spikes, t_grid, v_ref)
    if "peers" in sections:
        peer_traces, _ = bench_peer_traces(rows, args, p, stim, y0n, det)
    if "matched" in sections:
        ctx = dict(p=p, stim=stim, y0n=y0n, detector=det, np_rhs_scalar=np_rhs_scalar, progress=progress,
                   peers_ok=args.peers_ok)
        matched_tab = matched.run_section(rows, args, ctx)
    if "batched" in sections:
        batched = bench_batched(rows, args, p, stim, y0)
    if "grad" in sections:
        odeint_wall = peer["wall"] if peer else median_time(
            lambda: odeint(np_rhs_scalar, y0n, t_grid), 2)
        grad = bench_grad(rows, args, p, stim, v_ref, odeint_wall)
    if "grad6" in sections:
        grad6 = bench_grad6(rows, args, p, stim, v_ref)
        if args.peers_ok.get("jaxley"):
            grad6 += bench_grad_jaxley(rows, args, v_ref)
    if "memory" in sections:
        mem = bench_memory(rows, args)
    total = time.perf_counter() - t_start
    meta["total_runtime_s"] = total

    # ---- output -------------------------------------------------------------------
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows.rows, indent=1, default=str))
    meta_path = out.with_name(out.stem + "_meta.json")
    meta_path.write_text(json.dumps(meta, indent=1, default=str))

    P = print
    P(f"# hhjax benchmark ({'quick' if args.quick else 'full'})\n")
    P(f"Machine: {meta['platform']}, {meta['cpu_count']} CPUs, device {meta['device']}, "
      f"jax {meta['jax']}, diffrax {meta['diffrax']}, scipy {meta['scipy']}, x64={meta['x64']}. "
      f"Repeats: {args.repeats}.\n")
    P(f"Protocol: classic HH, {AMP} µA/cm² step {T_ON}–{T_OFF} ms, {T_END} ms, from rest. "
      f"Reference: Radau rtol=1e-10/atol=1e-12 in 3 pieces ({ref_time:.1f} s, {ref_steps} steps), "
      f"{ref_spikes.size} spikes at {np.array2string(ref_spikes, precision=4, separator=', ')} ms. "
      f"Reference floor (vs DOP853 1e-12/1e-14): spike times {ref_spike_floor:.1e} ms, "
      f"trace RMSE {ref_rmse_floor:.1e} mV. hhjax vs NumPy rest state: {rest_diff:.1e}.\n")
    if single:
        P("## Single 100 ms trace\n")
        if args.quick:
            P("ratio = scipy.odeint (default tol) wall time / this row's hhjax.simulate wall time "
              "(> 1: faster than odeint). --quick skips the jitted-wrapper timing and the Kvaerno5 "
              "and ExponentialEuler dt=0.001 rows.\n")
        else:
            P("ratio = scipy.odeint (default tol) wall time / this row's jitted wall time "
              "(> 1: faster than odeint).\n")
        P("| impl | compile s | wall ms (simulate) | wall ms (jit) | ratio vs odeint | steps (acc/rej) | spikes (ref) | max spike err ms | trace RMSE mV |")
        P("|---|---|---|---|---|---|---|---|---|")
        for label, d in single:
            if "failed" in d:
                P(f"| {label} | FAILED: {d['failed']} | | | | | | | |")
                continue
            steps = str(d["steps"])
            if d.get("acc") is not None:
                steps += f" ({d['acc']}/{d['rej']})"
            ratio_t = d["wall_jit"] if d["wall_jit"] is not None else d["wall"]
            ratio = peer["wall"] / ratio_t
            P(f"| {label} | {fmt(d['compile'], '.2f')} | {fmt(d['wall'] * 1e3, '.2f')} | "
              f"{fmt(None if d['wall_jit'] is None else d['wall_jit'] * 1e3, '.2f')} | {ratio:.2f} | {steps} | "
              f"{d['nsp']} ({ref_spikes.size}){'' if d['match'] else ' MISMATCH'} | {fmt(d['err'], '.2e')} | "
              f"{fmt(d['rmse'], '.3g')} |")
        P("")
        P("odeint spike errors use hhjax.crossing_times with the NumPy model's dv/dt (Hermite); with linear "
          "interpolation of the saved trace: "
          + ", ".join(f"{lab}: {d['err_lin']:.2e} ms" for lab, d in single if "err_lin" in d) + ".\n")
    if peer_notes:
        P("Peers skipped: " + "; ".join(peer_notes) + "\n")
    if peer_traces:
        P("## Peers: one neuron, dt = 0.01 ms (spike times with the common Hermite detector)\n")
        P("Δ hhjax accurate = max |spike time − hhjax.simulate default (Tsit5 1e-6)|; Δ hhjax ExpEuler = the "
          "same against hhjax simulate_population exponential Euler dt=0.01 (Brian2's scheme); |Δv| only "
          "where the scheme is the same. Latency: jitted hhjax, NEURON continuerun, Brian2 Network.run, "
          "jitted jx.integrate.\n")
        P("| impl | wall ms | spikes | max spike err vs ref ms | Δ hhjax accurate ms | Δ hhjax ExpEuler ms | max abs Δv same scheme mV |")
        P("|---|---|---|---|---|---|---|")
        for d in peer_traces:
            P(f"| {d['label']} | {d['wall'] * 1e3:.2f} | {d['nsp']} | {fmt(d['err'], '.2e')} | {fmt(d['d_acc'], '.2e')} | "
              f"{fmt(d['d_ee'], '.2e')} | {fmt(d['dv'], '.1e')} |")
        P("")
    if matched_tab:
        P("## Accuracy-matched single trace (fastest setting reaching the spike-time target)\n")
        P(f"ratio = {matched.PEER} time / this row's time at the same target (> 1: faster than the peer). "
          f"JAX rows are jitted calls; timings pinned to CPU {args.pin_cpu}. Ladders of every setting are "
          "in the JSON (benchmark matched_accuracy_single_trace_ladder).\n")
        P("| impl | target ms | setting | wall ms | max spike err ms | steps | ratio vs Tsit5+PID |")
        P("|---|---|---|---|---|---|---|")
        for label, tgt, unit, best, ratio in sorted(matched_tab, key=lambda r: (r[1], r[0] != matched.PEER)):
            if best is None:
                P(f"| {label} | ≤ {tgt:g} | not reached | — | — | — | — |")
                continue
            P(f"| {label} | ≤ {tgt:g} | {unit} = {best['setting']:g} | {best['wall'] * 1e3:.3f} | {best['err']:.2e} | "
              f"{best['steps']} | {fmt(ratio, '.2f')} |")
        P("")
    if batched:
        P("## Batched throughput (classic HH, exponential Euler dt=0.01, 100 ms, save_every=1.0)\n")
        P("neuron-steps/s; ratio = hhjax simulate_population / C kernel of the same precision (same run). "
          "vmap = jit(vmap(simulate)), the general path.\n")
        P("| N | C f64 | hhjax f64 | ratio f64 | C f32 | hhjax f32 | ratio f32 | vmap(simulate) f64 | numpy f64 | max |Δv| f64/f32 vs C mV | first call f64 s |")
        P("|---|---|---|---|---|---|---|---|---|---|---|")
        for N, r in batched:
            sps = lambda k: fmt(N * (T_END / 0.01) / r[k][0], ".3g") if k in r else "—"  # noqa: E731
            P(f"| {N} | {sps('c float64')} | {sps('hhjax float64')} | {fmt(r['hhjax float64'][3], '.2f')} | "
              f"{sps('c float32')} | {sps('hhjax float32')} | {fmt(r['hhjax float32'][3], '.2f')} | "
              f"{sps('vmap')} | {sps('numpy')} | {fmt(r['hhjax float64'][4], '.1e')}/{fmt(r['hhjax float32'][4], '.1e')} | "
              f"{r['hhjax float64'][2]:.2f} |")
        P("")
    if batched and any(any(k.startswith("peer ") for k in r) for _, r in batched):
        P("## Batched throughput: peers (same N neurons, same protocol, same run)\n")
        P("neuron-steps/s. NEURON: fixed dt 0.01, backward Euler + rate tables (its defaults), "
          f"pc.nthread({args.peer_threads}); Brian2: cpp_standalone, exponential_euler, {args.peer_threads} OpenMP "
          "threads, time of the binary's run loop; Jaxley: jit(vmap) of its step function, bwd_euler. "
          "ratio = hhjax simulate_population throughput / peer throughput.\n")
        P("| N | NEURON | Brian2 | Jaxley | hhjax f64 | hhjax f32 | f64/NEURON | f64/Brian2 | f64/Jaxley | f32/Jaxley |")
        P("|---|---|---|---|---|---|---|---|---|---|")
        for N, r in batched:
            sps = lambda k: fmt(N * (T_END / 0.01) / r[k][0], ".3g") if k in r else "—"  # noqa: E731
            rat = lambda a, b: fmt(r[b][0] / r[a][0], ".2f") if (a in r and b in r) else "—"  # noqa: E731
            P(f"| {N} | {sps('peer neuron')} | {sps('peer brian2')} | {sps('peer jaxley')} | {sps('hhjax float64')} | "
              f"{sps('hhjax float32')} | {rat('hhjax float64', 'peer neuron')} | {rat('hhjax float64', 'peer brian2')} | "
              f"{rat('hhjax float64', 'peer jaxley')} | {rat('hhjax float32', 'peer jaxley')} |")
        P("")
    if grad:
        P("## Gradient cost (trace-MSE loss vs the reference w.r.t. HHParams, g_na=115 start)\n")
        P("| impl | forward ms | value_and_grad ms | grad/forward | grads finite | compile (grad) s | odeint forward-diff est. ms | ratio vs FD |")
        P("|---|---|---|---|---|---|---|---|")
        for label, g in grad:
            if "failed" in g:
                P(f"| {label} | {g['t_f'] * 1e3:.2f} | FAILED: {g['failed'][:160]} | | | | | |")
                continue
            P(f"| {label} | {g['t_f'] * 1e3:.2f} | {g['t_g'] * 1e3:.2f} | {g['ratio']:.2f} | {g['finite']} | "
              f"{g['first_g'] - g['t_g']:.2f} | {g['fd_est'] * 1e3:.1f} | {g['fd_est'] / g['t_g']:.2f} |")
        P("")
    if grad6:
        P("## Gradient w.r.t. the six fitted parameters (trace MSE on the 0.1 ms grid)\n")
        P("| impl | forward ms | value+grad ms | ratio | finite |")
        P("|---|---|---|---|---|")
        for label, t_f, t_g, fin in grad6:
            P(f"| {label} | {t_f * 1e3:.2f} | {t_g * 1e3:.2f} | {t_g / t_f:.2f} | {fin} |")
        P("")
    if mem:
        P("## Value-and-grad of a 6-parameter trace loss, 5 sweeps x 100 ms, dt = 0.01 ms: memory and cost\n")
        P("Peak RSS = VmHWM of the subprocess while calling the compiled value_and_grad (after compiling; "
          "incl. the JAX runtime); Δ = that peak minus the RSS just before; XLA temp = compiled "
          "memory_analysis() scratch incl. saved residuals. grad/fwd = value_and_grad time / forward time.\n")
        P("| impl | peak RSS MB | Δ MB | peak incl. compile MB | XLA temp MB (vg / fwd) | forward ms | value+grad ms | grad/fwd | finite |")
        P("|---|---|---|---|---|---|---|---|---|")
        for label, r in mem:
            P(f"| {label} | {r['peak_rss_mb']:.0f} | {r['peak_rss_delta_mb']:.1f} | {fmt(r.get('peak_rss_incl_compile_mb'), '.0f')} | "
              f"{fmt(r.get('xla_vg_temp_mb'), '.2f')} / {fmt(r.get('xla_forward_temp_mb'), '.2f')} | "
              f"{r['forward_s'] * 1e3:.2f} | {r['value_and_grad_s'] * 1e3:.2f} | {r['grad_over_forward']:.2f} | {r['grads_finite']} |")
        P("")
    if args.smoke:
        P("(--smoke: a format check with a coarse reference and tiny sizes; the numbers mean nothing)\n")
    else:
        P(targets_table(rows.rows))
    P(f"Total runtime {total:.1f} s. Rows: {out}; metadata: {meta_path}.")


if __name__ == "__main__":
    main()
