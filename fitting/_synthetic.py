"""Synthetic recordings with known parameters: the demo, the tests and the benchmark."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

import hhjax

from ._transforms import set_parameters

#: The acceptance task's step amplitudes [µA/cm²]: sub-threshold to repetitive firing.
DEMO_AMPLITUDES = (2.0, 5.0, 8.0, 11.0, 15.0)
#: The parameters the demo perturbs and fits.
DEMO_NAMES = ("g_na", "g_k", "g_leak", "e_na", "e_k", "e_leak")


def perturbed_params(
    seed: int,
    names: Sequence[str] = DEMO_NAMES,
    *,
    low: float = 0.1,
    high: float = 0.3,
    base: hhjax.HHParams | None = None,
) -> hhjax.HHParams:
    """`base` (default `HHParams()`) with each named parameter changed by a random
    factor `1 ± U(low, high)` (random sign), reproducibly from `seed`.

    **Arguments:** `seed` (int, NumPy's `default_rng`); `names`: scalar fields of
    `HHParams` (default the demo's six conductances and reversals); `low`, `high`:
    relative changes, `0 <= low <= high < 1`; `base`.

    **Returns:** an [`hhjax.HHParams`][] (units as `base`: mS/cm², mV, ...).

    **Raises:** `ValueError` for a name that is not an `HHParams` field or bad
    `low`/`high`.

    **Example** (the demo's truth for seed 0):

    ```pycon
    >>> import fitting
    >>> p = fitting.perturbed_params(0)
    >>> round(float(p.g_na), 3), round(float(p.e_k), 3)        # mS/cm², mV
    (147.287, -97.224)
    >>> float(fitting.perturbed_params(0, ("g_leak",), low=0.0, high=0.0).g_leak)
    0.3

    ```
    """
    base = base if base is not None else hhjax.HHParams()
    fields = {f.name for f in dataclasses.fields(base)} - {"kinetics"}
    unknown = [n for n in names if n not in fields]
    if unknown:
        raise ValueError(f"Unknown HHParams field(s) {unknown} in `names`.")
    if not 0 <= low <= high < 1:
        raise ValueError(f"Need 0 <= low <= high < 1 (relative changes), got {low}, {high}.")
    rng = np.random.default_rng(seed)
    f = rng.uniform(low, high, len(names)) * rng.choice([-1.0, 1.0], len(names))
    return set_parameters(
        base,
        {n: jnp.asarray(getattr(base, n) * (1 + fk)) for n, fk in zip(names, f)},
    )


def synthetic_recording(
    params: hhjax.HHParams,
    amplitudes: Sequence[float] = DEMO_AMPLITUDES,
    *,
    t_on: float = 10.0,
    t_off: float = 90.0,
    t_end: float = 100.0,
    dt: float = 0.025,
    noise_sigma: float = 1.0,
    seed: int = 0,
    rtol: float = 1e-10,
) -> hhjax.Recording:
    """Step-current sweeps simulated from `params` with Gaussian recording noise.

    **Arguments:** `params` (the truth); `amplitudes` of the steps [µA/cm²], one
    sweep each; `t_on`, `t_off` [ms] of the steps; `t_end` [ms]; `dt` sampling
    interval [ms]; `noise_sigma` [mV] (white, Gaussian); `seed` of the noise;
    `rtol` of the (adaptive, Tsit5) reference integration.

    **Returns:** an [`hhjax.Recording`][] with `stimulus=` the step currents (current
    in µA/cm²), `t_ms` of shape `(T,)` with `T = t_end/dt + 1`, `v_mV` of shape
    `(len(amplitudes), T)` (float64 NumPy), and `meta` holding the true parameters.

    **Raises:** what [`hhjax.simulate`][] and [`hhjax.resting_state`][] raise (e.g.
    no equilibrium, or the solver's step budget exhausted).

    **Example** (simulates five 100-ms sweeps at rtol 1e-10: a few seconds):

    ```python
    truth = fitting.perturbed_params(0)
    rec = fitting.synthetic_recording(truth, noise_sigma=1.0, seed=0)
    rec.v_mV.shape                  # (5, 4001): 5 sweeps, 0..100 ms every 0.025 ms
    rec.meta["true_params"]["g_na"] # 147.287...
    ```
    """
    t = np.arange(0.0, t_end + dt / 2, dt)
    stims = [hhjax.StepCurrent(float(a), t_on, t_off) for a in amplitudes]
    ctrl = diffrax.PIDController(rtol=rtol, atol=rtol, norm=hhjax.finite_rms_norm)

    @jax.jit
    def run(amps):
        def one(a):
            stim = hhjax.StepCurrent(a, t_on, t_off)
            y0 = hhjax.resting_state(params, stim(t[0]))
            return hhjax.simulate(
                params, stim, float(t[-1]), ts=jnp.asarray(t), y0=y0,
                stepsize_controller=ctrl, max_steps=200_000,
            ).v

        return jax.vmap(one)(amps)

    v = np.asarray(run(jnp.asarray(np.asarray(amplitudes, float))))
    rng = np.random.default_rng(10_000 + int(seed))
    v = v + noise_sigma * rng.standard_normal(v.shape)
    truth = {n: float(np.asarray(getattr(params, n))) for n in DEMO_NAMES}
    return hhjax.Recording(
        t,
        v,
        stimulus=stims,
        meta={
            "synthetic": True,
            "true_params": truth,
            "noise_sigma_mV": noise_sigma,
            "amplitudes_uA_per_cm2": [float(a) for a in amplitudes],
            "t_on_ms": t_on,
            "t_off_ms": t_off,
            "seed": int(seed),
        },
        name="synthetic",
    )
