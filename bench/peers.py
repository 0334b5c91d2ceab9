"""Peer simulators for bench/run.py: NEURON, Brian2 and Jaxley on the classic HH.

Every peer is optional: `available(name)` imports it and returns `(ok, note)`;
bench/run.py skips the peer's rows with the printed note when it is absent.

Protocol (all peers): classic HH — C = 1 µF/cm², gNa 120, gK 36, gL 0.3 mS/cm²,
ENa 50, EK −77, EL −54.387 mV, 6.3 °C — step current 10 µA/cm² for 10 <= t < 90 ms,
100 ms, from each neuron's resting state (computed by hhjax and handed to the peer).

Units, peer by peer (checked in the bench by comparing spike times with hhjax):

- NEURON works in absolute currents and S/cm². A single-segment section with
  L = diam = sqrt(100/π) µm has an area of exactly 100 µm² = 1e-6 cm² (no end caps
  in NEURON's area), so 10 µA/cm² is an IClamp of 10 µA/cm² × 1e-6 cm² = 1e-5 µA =
  0.01 nA; gnabar = 0.12 S/cm² (= 120 mS/cm²), gkbar 0.036, gl 0.0003,
  el_hh = −54.387 (NEURON's default is −54.3), ena 50, ek −77, celsius 6.3 (the hh
  mechanism's q10 = 3 at 6.3 °C gives φ = 1). `usetable_hh = 1` (NEURON's default)
  tabulates the rates on 1-mV steps with linear interpolation; the accuracy rows
  turn it off.
- Brian2 carries units; the equations are written per unit area (µA/cm², mS/cm²,
  µF/cm²), so no area is involved. Its `exponential_euler` state updater is the
  same scheme as hhjax's ExponentialEuler / simulate_population (each linear
  variable advanced exactly with the others frozen, all from the step's start), and
  its traces agree with hhjax's to rounding.
- Jaxley: HH conductances in S/cm² (`HH_gNa` 0.12 ...), capacitance µF/cm², the
  stimulus in nA: one compartment with length 10 µm and radius 100/(2π·10) µm has
  Jaxley's lateral area 2πrL = 100 µm², so 10 µA/cm² = 0.01 nA; HH_eLeak set to
  −54.387 (Jaxley's default is −54.3). Jaxley's default solver is backward Euler
  for v with exponential gate updates (identical spike times to NEURON's
  secondorder=0 without tables), `crank_nicolson` matches NEURON's secondorder=2.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent

C_M, G_NA, G_K, G_L = 1.0, 120.0, 36.0, 0.3
E_NA, E_K, E_L = 50.0, -77.0, -54.387
T_ON, T_OFF, AMP, T_END = 10.0, 90.0, 10.0, 100.0
AREA_UM2 = 100.0  # µm²: NEURON section / Jaxley compartment area
AMP_NA = AMP * AREA_UM2 * 1e-8 * 1e3  # µA/cm² × cm² = µA → nA (= 0.01 nA)


def available(name: str) -> tuple[bool, str]:
    """(ok, note) for peer `name` in {"neuron", "brian2", "jaxley"}."""
    mod = {"neuron": "neuron", "brian2": "brian2", "jaxley": "jaxley"}[name]
    if name == "brian2":
        # not imported here: Brian2 installs an excepthook that reports every later
        # exception of the process; it runs in subprocesses (brian2_run)
        from importlib import metadata, util

        if util.find_spec("brian2") is None:
            return False, "brian2 not installed: its rows are skipped (pip install -e .[bench])"
        return True, f"brian2 {metadata.version('brian2')} (run in a subprocess)"
    try:
        m = importlib.import_module(mod)
    except Exception as e:  # noqa: BLE001 - any import failure skips the peer
        return False, f"{name} not importable ({type(e).__name__}: {str(e)[:120]}): its rows are skipped (pip install -e .[bench])"
    return True, f"{name} {getattr(m, '__version__', '?')}"


# ======================================================================================
# NEURON


class Neuron:
    """N single-compartment sections with NEURON's `hh` mechanism."""

    def __init__(self, nthread: int = 1):
        from neuron import h

        h.load_file("stdrun.hoc")
        self.h = h
        h.celsius = 6.3
        self.pc = h.ParallelContext()
        self.nthread = nthread
        self.secs = []
        self.ic = []

    def build(self, g_na, y0):
        """Sections for g_na [mS/cm²] (N,), states y0 = (v, m, h, n) each (N,)."""
        h = self.h
        self.secs, self.ic = [], []
        d = math.sqrt(AREA_UM2 / math.pi)
        for g in np.asarray(g_na, float):
            s = h.Section()
            s.L = s.diam = d
            s.nseg = 1
            s.cm = C_M
            s.insert("hh")
            seg = s(0.5)
            seg.hh.gnabar = g * 1e-3
            seg.hh.gkbar = G_K * 1e-3
            seg.hh.gl = G_L * 1e-3
            seg.hh.el = E_L
            s.ena = E_NA
            s.ek = E_K
            ic = h.IClamp(seg)
            ic.delay, ic.dur, ic.amp = T_ON, T_OFF - T_ON, AMP_NA
            self.secs.append(s)
            self.ic.append(ic)
        self.y0 = [np.asarray(x, float) for x in y0]
        self.pc.nthread(self.nthread)
        self.h.cvode.cache_efficient(1)

    def area_um2(self):
        return self.secs[0](0.5).area()

    def _init(self):
        h = self.h
        v, m, hh, n = self.y0
        h.finitialize(float(v[0]))
        for i, s in enumerate(self.secs):
            seg = s(0.5)
            seg.v = v[i]
            seg.hh.m, seg.hh.h, seg.hh.n = m[i], hh[i], n[i]
        if h.cvode.active():
            h.cvode.re_init()
        else:
            h.fcurrent()
        h.frecord_init()

    def configure(self, dt=0.01, secondorder=0, usetable=1, cvode_atol=None):
        h = self.h
        h.usetable_hh = usetable
        if cvode_atol is None:
            h.cvode.active(0)
            h.secondorder = secondorder
            h.dt = dt
            h.steps_per_ms = 1.0 / dt
        else:
            h.cvode.active(1)
            h.cvode.atol(cvode_atol)
            h.cvode.rtol(0.0)
            h.secondorder = 0

    def record(self, which="all_v", every=None):
        """Recording vectors: 'trace' = t, v, m, h, n of neuron 0 at every step;
        'all_v' = v of every neuron every `every` ms."""
        h = self.h
        if which == "trace":
            seg = self.secs[0](0.5)
            self.rec = [h.Vector().record(h._ref_t)] + [
                h.Vector().record(r) for r in (seg._ref_v, seg.hh._ref_m, seg.hh._ref_h, seg.hh._ref_n)
            ]
        else:
            # only the first and the last neuron: with pc.nthread(2), recording every
            # section makes NEURON's finitialize O(N²) (14 s at N = 4000, measured)
            self.tvec = h.Vector(np.arange(0.0, T_END + 0.5 * every, every))
            self.rec_secs = [self.secs[0], self.secs[-1]] if len(self.secs) > 1 else [self.secs[0]]
            self.rec = [h.Vector().record(s(0.5)._ref_v, self.tvec) for s in self.rec_secs]

    def run(self, t_end=T_END):
        """Initialise (finitialize, then each cell's own state), integrate; returns the
        wall time of `h.continuerun(t_end)` (the per-cell Python state setting of the
        initialisation excluded: it is O(N) interpreter work, not simulation)."""
        self._init()
        t = time.perf_counter()
        self.h.continuerun(t_end)
        return time.perf_counter() - t

    def trace(self):
        return [np.array(x) for x in self.rec]

    def all_v(self):
        """(k, 101) v samples of the recorded neurons (first, last); NEURON's t ends at
        100 − 2e-11 ms after 10000 steps of 0.01, so the sample at 100 ms is the final
        state (read after the run)."""
        out = np.stack([np.array(x) for x in self.rec])
        if out.shape[1] == len(self.tvec) - 1:
            out = np.concatenate([out, np.array([[s(0.5).v] for s in self.rec_secs])], axis=1)
        return out

    def clear(self):
        self.rec = []
        self.ic = []
        self.secs = []
        self.pc.nthread(1)


# ======================================================================================
# Brian2 (in a subprocess: its cpp_standalone device is one build per process)


def _brian2_numpy_shim():
    """Brian2 <= 2.9.0 reads `np.ndarray.ptp`, which NumPy 2.4 removed (fixed upstream
    in brian-team/brian2#1705, not yet released): rewrite that one attribute to
    `np.ptp` in the source of brian2.units.fundamentalunits as it is imported."""
    import importlib.abc
    import importlib.machinery

    if hasattr(np.ndarray, "ptp") or any(getattr(f, "_hhjax_ptp", False) for f in sys.meta_path):
        return

    class _Loader(importlib.machinery.SourceFileLoader):
        def get_code(self, fullname):
            src = self.get_data(self.path).replace(b"np.ndarray.ptp", b"np.ptp")
            return self.source_to_code(src, self.path)

    class _Finder(importlib.abc.MetaPathFinder):
        _hhjax_ptp = True

        def find_spec(self, name, path, target=None):
            if name != "brian2.units.fundamentalunits":
                return None
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            if spec is not None and isinstance(spec.loader, importlib.machinery.SourceFileLoader):
                spec.loader = _Loader(spec.loader.name, spec.loader.path)
            return spec

    sys.meta_path.insert(0, _Finder())


BRIAN2_EQS = """
dv/dt = (I - gna*m**3*h*(v-ENa) - gk*n**4*(v-EK) - gl*(v-EL))/Cm : volt
dm/dt = alpham*(1-m) - betam*m : 1
dh/dt = alphah*(1-h) - betah*h : 1
dn/dt = alphan*(1-n) - betan*n : 1
alpham = (1/exprel(-(v+40*mV)/(10*mV)))/ms : Hz
betam = 4*exp(-(v+65*mV)/(18*mV))/ms : Hz
alphah = 0.07*exp(-(v+65*mV)/(20*mV))/ms : Hz
betah = 1/(1+exp(-(v+35*mV)/(10*mV)))/ms : Hz
alphan = 0.1*(1/exprel(-(v+55*mV)/(10*mV)))/ms : Hz
betan = 0.125*exp(-(v+65*mV)/(80*mV))/ms : Hz
I = Iamp*int(t >= t_on - 0.5*dt)*int(t < t_off - 0.5*dt) : amp/meter**2
gna : siemens/meter**2
"""


def _brian2_child(cfg):
    """Runs inside the subprocess (python bench/peers.py brian2 CFG.json)."""
    _brian2_numpy_shim()
    import brian2 as b2
    from brian2 import cm, mS, ms, mV, uA, uF

    data = np.load(cfg["inputs"])
    target = cfg["target"]
    dt = cfg["dt"]
    if target == "cpp_standalone":
        b2.set_device("cpp_standalone", directory=cfg["workdir"], build_on_run=False)
        b2.prefs.devices.cpp_standalone.openmp_threads = int(cfg.get("threads", 1))
    else:
        b2.prefs.codegen.target = target
    b2.defaultclock.dt = dt * ms
    ns = dict(gk=G_K * mS / cm**2, gl=G_L * mS / cm**2, ENa=E_NA * mV, EK=E_K * mV, EL=E_L * mV,
              Cm=C_M * uF / cm**2, Iamp=AMP * uA / cm**2, t_on=T_ON * ms, t_off=T_OFF * ms)
    N = int(data["g_na"].size)
    G = b2.NeuronGroup(N, BRIAN2_EQS, method=cfg.get("method", "exponential_euler"), namespace=ns)
    G.gna = data["g_na"] * mS / cm**2
    G.v = data["v"] * mV
    G.m, G.h, G.n = data["m"], data["h"], data["n"]
    if cfg["record"] == "trace":
        mon = b2.StateMonitor(G, ["v", "m", "h", "n"], record=[0])
    else:
        mon = b2.StateMonitor(G, "v", record=True, dt=cfg["save_every"] * ms)
    net = b2.Network(G, mon)
    walls = []
    out = {}
    if target == "cpp_standalone":
        net.run(T_END * ms)
        t = time.perf_counter()
        b2.device.build(run=True, compile=True)
        out["build_s"] = time.perf_counter() - t
        walls.append(b2.device._last_run_time)
        binary = [b2.device.timers.get("run_binary")]
        for _ in range(int(cfg["repeats"]) - 1):
            b2.device.run()
            walls.append(b2.device._last_run_time)
            binary.append(b2.device.timers.get("run_binary"))
        out["binary_s"] = binary
    else:
        net.store()
        t = time.perf_counter()
        net.run(T_END * ms)
        out["first_s"] = time.perf_counter() - t
        for _ in range(int(cfg["repeats"])):
            net.restore()
            t = time.perf_counter()
            net.run(T_END * ms)
            walls.append(time.perf_counter() - t)
    out["walls"] = walls
    res = {"t": np.asarray(mon.t / ms)}
    if cfg["record"] == "trace":
        for k in ("v", "m", "h", "n"):
            x = getattr(mon, k)[0]
            res[k] = np.asarray(x / mV) if k == "v" else np.asarray(x)
    else:
        res["v"] = np.asarray(mon.v / mV)
    np.savez(cfg["outputs"], **res)
    out["version"] = b2.__version__
    print("BRIAN2_RESULT " + json.dumps(out))


def brian2_run(g_na, y0, *, target="cython", dt=0.01, record="all_v", save_every=1.0, repeats=3,
               threads=1, timeout=900):
    """Run the Brian2 peer in a subprocess. Returns (info dict, arrays dict).

    `info["walls"]`: wall times of `Network.run(100 ms)` (runtime targets; the first,
    code-generating run excluded and reported as `first_s`) or of the standalone
    binary's simulation loop (`device._last_run_time`; the build is `build_s`)."""
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="hhjax-brian2-"))
    np.savez(tmp / "in.npz", g_na=np.asarray(g_na, float), v=np.asarray(y0[0], float),
             m=np.asarray(y0[1], float), h=np.asarray(y0[2], float), n=np.asarray(y0[3], float))
    cfg = dict(inputs=str(tmp / "in.npz"), outputs=str(tmp / "out.npz"), workdir=str(tmp / "standalone"),
               target=target, dt=dt, record=record, save_every=save_every, repeats=repeats, threads=threads)
    (tmp / "cfg.json").write_text(json.dumps(cfg))
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(threads))
    proc = subprocess.run([sys.executable, str(pathlib.Path(__file__).resolve()), "brian2", str(tmp / "cfg.json")],
                          capture_output=True, text=True, timeout=timeout, env=env)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("BRIAN2_RESULT ")]
    if proc.returncode != 0 or not line:
        raise RuntimeError(f"Brian2 subprocess failed (rc {proc.returncode}): {proc.stderr[-800:]}")
    info = json.loads(line[-1].split(" ", 1)[1])
    with np.load(tmp / "out.npz") as z:
        arrays = {k: z[k] for k in z.files}
    return info, arrays


# ======================================================================================
# Jaxley


class Jaxley:
    """One single-compartment Jaxley cell with the HH channel; populations are
    `jax.vmap`s over its parameters/states through Jaxley's own step function
    (`jaxley.integrate.build_init_and_step_fn`), in a `lax.scan` that keeps v every
    `save_every` ms (like the other throughput rows)."""

    def __init__(self, dt=0.01, solver="bwd_euler"):
        import jax
        import jax.numpy as jnp
        import jaxley as jx
        from jaxley.channels import HH
        from jaxley.integrate import build_init_and_step_fn

        self.jax, self.jnp, self.jx = jax, jnp, jx
        self.dt, self.solver = dt, solver
        cell = jx.Cell(jx.Branch(jx.Compartment(), ncomp=1), parents=[-1])
        cell.insert(HH())
        length = 10.0
        cell.set("length", length)
        cell.set("radius", AREA_UM2 / (2 * math.pi * length))
        cell.set("capacitance", C_M)
        for k, v in (("HH_gNa", G_NA * 1e-3), ("HH_gK", G_K * 1e-3), ("HH_gLeak", G_L * 1e-3),
                     ("HH_eNa", E_NA), ("HH_eK", E_K), ("HH_eLeak", E_L)):
            cell.set(k, v)
        self.area = float(cell.nodes["area"].values[0])
        with _quiet():
            cell.stimulate(jx.step_current(i_delay=T_ON, i_dur=T_OFF - T_ON, i_amp=AMP_NA, delta_t=dt,
                                           t_max=T_END))
            cell.record("v")
        cell.to_jax()
        self.cell = cell
        self.I = jnp.asarray(cell.externals["i"])  # (1, T)
        self.ext_inds = cell.external_inds.copy()
        solver_kw = dict(solver=solver)
        if solver in ("bwd_euler", "crank_nicolson"):
            solver_kw["voltage_solver"] = "jaxley.dhs.cpu"
        self.init_fn, self.step_fn = build_init_and_step_fn(cell, **solver_kw)
        self.S0, self.P0 = self.init_fn([], delta_t=dt)

    def sim_fn(self, save_every=1.0, all_states=False):
        """`f(g_na [mS/cm²], v0, m0, h0, n0) -> v every save_every` (or the states)."""
        jax, jnp = self.jax, self.jnp
        dt = self.dt
        stride = int(round(save_every / dt))
        n_blocks = int(round(T_END / dt)) // stride
        I, ext, step_fn = self.I, self.ext_inds, self.step_fn

        def f(g, v0, m0, h0, n0):
            states, params = dict(self.S0), dict(self.P0)
            params["HH_gNa"] = jnp.reshape(g * 1e-3, (1,))
            for k, x in (("v", v0), ("HH_m", m0), ("HH_h", h0), ("HH_n", n0)):
                states[k] = jnp.reshape(x, (1,)).astype(states[k].dtype)

            def step(s, k):
                return step_fn(s, params, {"i": I[:, k]}, ext, delta_t=dt), None

            def pick(s):
                if all_states:
                    return jnp.stack([s["v"][0], s["HH_m"][0], s["HH_h"][0], s["HH_n"][0]])
                return s["v"][0]

            def block(s, j):
                s, _ = jax.lax.scan(step, s, j * stride + jnp.arange(stride))
                return s, pick(s)

            _, ys = jax.lax.scan(block, states, jnp.arange(n_blocks))
            return jnp.concatenate([pick(states)[None], ys])

        return f

    def loss_and_params(self, target, names=("HH_gNa", "HH_gK", "HH_gLeak", "HH_eNa", "HH_eK", "HH_eLeak"),
                        x0=None, checkpoint_lengths=None, stride=10):
        """Trace-MSE loss (v every `stride` steps vs `target`) of `jx.integrate` as a
        function of the 6 HH parameters (Jaxley's documented fitting route:
        make_trainable + get_parameters + integrate)."""
        jx, jnp = self.jx, self.jnp
        cell = self.cell
        with _quiet():
            for n in names:
                cell.make_trainable(n)
        params = cell.get_parameters()
        if x0 is not None:
            params = [{k: jnp.asarray([float(x)]) for k in d} for d, x in zip(params, x0)]
        target = jnp.asarray(target)

        def loss(ps):
            v = jx.integrate(cell, params=ps, delta_t=self.dt, solver=self.solver,
                             checkpoint_lengths=checkpoint_lengths)[0]
            return jnp.mean((v[::stride][: target.shape[0]] - target) ** 2)

        return loss, params


class _quiet:
    """Silence the 'Added 1 external_states' prints of Jaxley's setters."""

    def __enter__(self):
        self._stdout = sys.stdout
        sys.stdout = open(os.devnull, "w")

    def __exit__(self, *a):
        sys.stdout.close()
        sys.stdout = self._stdout


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "brian2":
        _brian2_child(json.loads(pathlib.Path(sys.argv[2]).read_text()))
    else:
        print("usage: python bench/peers.py brian2 CFG.json (called by bench/run.py)")
