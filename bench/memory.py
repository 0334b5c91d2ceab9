"""Peak memory and cost of value-and-grad of a 6-parameter trace loss over 5 sweeps.

Run by bench/run.py, one configuration per subprocess (so peaks do not mix):

    python bench/memory.py CONFIG        # prints one line "MEMORY_RESULT {json}"

Problem: classic HH, 5 sweeps × 100 ms of step currents (0, 2.5, 5, 10, 15 µA/cm²
for 10 <= t < 90 ms), fixed step dt = 0.01 ms (Tsit5 rows: adaptive, PID 1e-6),
loss = mean squared difference of v on the 0.1-ms grid against traces of the true
parameters, w.r.t. (g_na, g_k, g_leak, e_na, e_k, e_leak) from a start 10 % away.

Measured per configuration:
- `xla_*_mb`: `jit(...).lower(x).compile().memory_analysis()` of the value-and-grad
  program (temp = XLA's scratch buffers incl. everything saved for the backward
  pass; args/outputs) and of the forward program;
- `peak_rss_mb`: the process's resident-set high-water mark (VmHWM) while calling
  the compiled value-and-grad (reset with /proc/self/clear_refs after compiling),
  and `peak_rss_delta_mb`, that peak minus the resident set just before the calls
  (what the computation itself added);
- `forward_s`, `value_and_grad_s`: medians of jitted calls, and their ratio.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import diffrax  # noqa: E402
import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import hhjax  # noqa: E402

AMPS = (0.0, 2.5, 5.0, 10.0, 15.0)
NAMES = ("g_na", "g_k", "g_leak", "e_na", "e_k", "e_leak")
X_TRUE = np.array([120.0, 36.0, 0.3, 50.0, -77.0, -54.387])
X0 = X_TRUE * np.array([0.9, 1.1, 1.1, 0.95, 1.05, 1.05])
SAVE = 0.1
DT = 0.01
T_END = 100.0

CONFIGS = {
    "simulate_population reverse (checkpointed)": ("pop", "reverse", "exponential_euler"),
    "simulate_population forward (vmap of jvp)": ("pop", "forward", "exponential_euler"),
    "simulate_population staggered reverse (checkpointed)": ("pop", "reverse", "staggered"),
    "simulate_population staggered forward (vmap of jvp)": ("pop", "forward", "staggered"),
    "simulate Tsit5 reverse (RecursiveCheckpointAdjoint)": ("tsit5", "reverse", None),
    "simulate Tsit5 forward (jacfwd, ForwardMode)": ("tsit5", "forward", None),
}


def _status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0  # kB -> MB
    return float("nan")


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _median(fn, n):
    fn()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def build(kind, mode, scheme):
    stims = jax.vmap(lambda a: hhjax.StepCurrent(a, 10.0, 90.0))(jnp.asarray(AMPS))
    nb = len(AMPS)

    def params(x):
        return hhjax.HHParams(**{n: jnp.broadcast_to(x[i], (nb,)) for i, n in enumerate(NAMES)})

    if kind == "pop":
        def traces(x):
            return hhjax.simulate_population(params(x), stims, T_END, dt=DT, save_every=SAVE,
                                             stimulus_batched=True, scheme=scheme, throw=False, save="v").v
    else:
        def traces(x, adjoint=None):
            kw = {} if adjoint is None else dict(adjoint=adjoint)

            def one(stim):
                q = hhjax.HHParams(**{n: x[i] for i, n in enumerate(NAMES)})
                return hhjax.simulate(q, stim, t_end=T_END, save_every=SAVE, **kw).v

            return jax.vmap(one)(stims)

    target = jax.jit(traces)(jnp.asarray(X_TRUE))

    def loss(x):
        return jnp.mean((traces(x) - target) ** 2)

    if mode == "reverse":
        vg = jax.value_and_grad(loss)
    elif kind == "pop":
        def vg(x):
            vals, tangents = jax.vmap(lambda t: jax.jvp(loss, (x,), (t,)))(jnp.eye(x.shape[0], dtype=x.dtype))
            return vals[0], tangents
    else:
        def floss(x):
            return jnp.mean((traces(x, diffrax.ForwardMode()) - target) ** 2)

        def vg(x):
            return floss(x), jax.jacfwd(floss)(x)
    return loss, vg


def measure(label, repeats=3):
    kind, mode, scheme = CONFIGS[label]
    loss, vg = build(kind, mode, scheme)
    x0 = jnp.asarray(X0)
    out = dict(config=label)
    fwd_c = jax.jit(loss).lower(x0).compile()
    vg_c = jax.jit(vg).lower(x0).compile()
    for name, c in (("forward", fwd_c), ("vg", vg_c)):
        try:
            ma = c.memory_analysis()
            out[f"xla_{name}_temp_mb"] = ma.temp_size_in_bytes / 2**20
            out[f"xla_{name}_args_mb"] = ma.argument_size_in_bytes / 2**20
            out[f"xla_{name}_out_mb"] = ma.output_size_in_bytes / 2**20
        except Exception as e:  # noqa: BLE001 - not every backend reports it
            out[f"xla_{name}_error"] = f"{type(e).__name__}: {e}"
    val, g = vg_c(x0)
    jax.block_until_ready(g)
    out["grads_finite"] = bool(np.all(np.isfinite(np.asarray(g))))
    out["loss"] = float(val)
    out["peak_rss_incl_compile_mb"] = _status("VmHWM")
    out["peak_reset"] = _reset_peak()
    base = _status("VmRSS")
    for _ in range(2):
        jax.block_until_ready(vg_c(x0))
    out["rss_before_mb"] = base
    out["peak_rss_mb"] = _status("VmHWM")
    out["peak_rss_delta_mb"] = out["peak_rss_mb"] - base
    out["forward_s"] = _median(lambda: fwd_c(x0).block_until_ready(), repeats)
    out["value_and_grad_s"] = _median(lambda: jax.block_until_ready(vg_c(x0)), repeats)
    out["grad_over_forward"] = out["value_and_grad_s"] / out["forward_s"]
    return out


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in CONFIGS:
        print("usage: python bench/memory.py CONFIG [REPEATS]; configs:\n  " + "\n  ".join(CONFIGS))
        sys.exit(2)
    res = measure(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3)
    print("MEMORY_RESULT " + json.dumps(res))
