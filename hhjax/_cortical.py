r"""Minimal Hodgkin–Huxley-type models of cortical neurons (Pospischil et al. 2008).

Single-compartment models built from [`hhjax.Membrane`][] channels:

$$c_m \frac{dv}{dt} = i_\mathrm{stim} - g_\mathrm{Na} m^3 h (v - E_\mathrm{Na})
  - g_\mathrm{Kd} n^4 (v - E_\mathrm{K}) - g_\mathrm{M} p (v - E_\mathrm{K})
  - g_\mathrm{leak} (v - E_\mathrm{leak})$$

with the Traub–Miles Na and delayed-rectifier K kinetics shifted by the threshold
parameter $V_T$ (with $u = v - V_T$, all rates in 1/ms, voltages in mV):

| gate | α | β |
|---|---|---|
| m | $-0.32 (u-13) / (e^{-(u-13)/4} - 1)$ | $0.28 (u-40) / (e^{(u-40)/5} - 1)$ |
| h | $0.128\, e^{-(u-17)/18}$ | $4 / (1 + e^{-(u-40)/5})$ |
| n | $-0.032 (u-15) / (e^{-(u-15)/5} - 1)$ | $0.5\, e^{-(u-10)/40}$ |

and the slow non-inactivating M-type K current (Yamada, Koch & Adams 1989):
$p_\infty = 1 / (1 + e^{-(v+35)/10})$,
$\tau_p = \tau_\mathrm{max} / (3.3\, e^{(v+35)/20} + e^{-(v+35)/20})$ [ms].

Optional: the high-threshold L-type Ca current of the paper's bursting cells
(Reuveni et al. 1993), $g_\mathrm{L} q^2 r (v - E_\mathrm{Ca})$ with
$\alpha_q = 0.055 (-27 - v) / (e^{(-27-v)/3.8} - 1)$, $\beta_q = 0.94\, e^{(-75-v)/17}$,
$\alpha_r = 0.000457\, e^{(-13-v)/50}$, $\beta_r = 0.0065 / (e^{(-15-v)/28} + 1)$.

Sources for the equations: the paper (Pospischil, Toledo-Rodriguez, Monier,
Piwkowska, Bal, Frégnac, Markram & Destexhe, *Minimal Hodgkin–Huxley type models for
different classes of cortical and thalamic neurons*, Biol Cybern 99:427–441, 2008,
doi:10.1007/s00422-008-0263-8) as implemented in its ModelDB entry 123623
(`HH_traub.mod`, `IM_cortex.mod`; mirrored in OpenSourceBrain/PospischilEtAl2008),
the Brain Dynamics Toolbox's `Pospischil2008.m` (S. Heitmann, 2020) and PySONIC's
`neurons/cortical.py` (T. Lemaire); all four agree on the rate functions above.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Mapping

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike

from ._channels import (
    RATE_V_LIMIT,
    AbstractGate,
    AbstractRateGate,
    Channel,
    Exponential,
    InfTauGate,
    Linoid,
    Membrane,
    RateGate,
    Sigmoid,
    _callable,
    _check_slope,
)
from ._params import check_value

# --------------------------------------------------------------------------------------
# published parameter sets


def _cell(**kw) -> types.MappingProxyType:
    diameter_um = kw.pop("diameter_um")
    # a cylinder with L = d (the paper's geometry), ends excluded: area = π d L
    kw["diameter_um"] = diameter_um
    kw["area_cm2"] = math.pi * (diameter_um * 1e-4) ** 2
    return types.MappingProxyType(kw)


#: The published parameter sets of Pospischil et al. (2008), name → read-only
#: mapping of the parameters in hhjax units (see the docstring below).
POSPISCHIL_CELLS: Mapping[str, Mapping[str, float]] = types.MappingProxyType(
    {
        "RS": _cell(
            c_m=1.0,
            g_na=56.0,
            g_kd=6.0,
            g_m=0.075,
            g_leak=0.0205,
            e_na=50.0,
            e_k=-90.0,
            e_leak=-70.3,
            v_t=-56.2,
            tau_max=608.0,
            diameter_um=61.4,
        ),
        "FS": _cell(
            c_m=1.0,
            g_na=58.0,
            g_kd=3.9,
            g_m=0.0787,
            g_leak=0.038,
            e_na=50.0,
            e_k=-90.0,
            e_leak=-70.4,
            v_t=-57.9,
            tau_max=502.0,
            diameter_um=56.9,
        ),
        "RS-ModelDB": _cell(
            c_m=1.0,
            g_na=50.0,
            g_kd=5.0,
            g_m=0.07,
            g_leak=0.1,
            e_na=50.0,
            e_k=-100.0,
            e_leak=-70.0,
            v_t=-55.0,
            tau_max=1000.0,
            diameter_um=96.0,
        ),
        "FS-ModelDB": _cell(
            c_m=1.0,
            g_na=50.0,
            g_kd=10.0,
            g_m=0.0,
            g_leak=0.15,
            e_na=50.0,
            e_k=-100.0,
            e_leak=-70.0,
            v_t=-55.0,
            tau_max=1000.0,
            diameter_um=67.0,
        ),
    }
)
"""The published parameter sets, in hhjax units: `c_m` [µF/cm²], conductances `g_*`
[mS/cm²] (the sources' S/cm² × 1e3), potentials `e_*` and `v_t` [mV], `tau_max`
[ms], and the geometry (`diameter_um` = length [µm], `area_cm2` = π·d·L [cm²], for
converting currents in pA).

- `"RS"`, `"FS"`: the regular-spiking and fast-spiking cells fitted in the paper,
  as transcribed by PySONIC (`PySONIC/neurons/cortical.py`, T. Lemaire); the RS
  set also in the Brain Dynamics Toolbox's `Pospischil2008.m` (S. Heitmann) and
  the FS set (but g_M = 7.5e-5 S/cm²) in N. A. Koch's sensitivity-analysis code.
- `"RS-ModelDB"`, `"FS-ModelDB"`: the authors' NEURON demo cells of ModelDB entry
  123623 (`sPY_template`, `sIN_template`; the FS demo has no M current, "no
  spike-frequency adaptation in this model").

| | RS | FS | RS-ModelDB | FS-ModelDB |
|---|---|---|---|---|
| g_leak [S/cm²] | 2.05e-5 | 3.8e-5 | 1e-4 | 1.5e-4 |
| e_leak [mV] | −70.3 | −70.4 | −70 | −70 |
| g_na [S/cm²] | 0.056 | 0.058 | 0.05 | 0.05 |
| g_kd [S/cm²] | 6e-3 | 3.9e-3 | 5e-3 | 0.01 |
| g_m [S/cm²] | 7.5e-5 | 7.87e-5 | 7e-5 | 0 |
| tau_max [ms] | 608 | 502 | 1000 | (1000) |
| v_t [mV] | −56.2 | −57.9 | −55 | −55 |
| e_k [mV] | −90 | −90 | −100 | −100 |
| L = d [µm] | 61.4 | 56.9 | 96 | 67 |

and for all `e_na` = 50 mV, `c_m` = 1 µF/cm². Every preset has the same channels
(`na`, `kd`, `m`, `leak`; `g_m = 0` where there is no M current), so presets can
be stacked and `vmap`ped.

A read-only mapping (`types.MappingProxyType`) of name → read-only mapping of
Python floats; [`hhjax.pospischil`][] builds the membrane of a preset by name.

**Example:**

```pycon
>>> import hhjax
>>> sorted(hhjax.POSPISCHIL_CELLS)
['FS', 'FS-ModelDB', 'RS', 'RS-ModelDB']
>>> rs = hhjax.POSPISCHIL_CELLS["RS"]
>>> rs["g_na"], rs["v_t"], rs["tau_max"]        # mS/cm², mV, ms
(56.0, -56.2, 608.0)
>>> round(rs["c_m"] * rs["area_cm2"] * 1e6, 1)  # total capacitance [pF]
118.4

```
"""
_BY_UPPER = {k.upper(): k for k in POSPISCHIL_CELLS}


# --------------------------------------------------------------------------------------
# building blocks


class ShiftedRateGate(AbstractRateGate):
    r"""A kinetic gate whose rates depend on `u = v − v_t`:
    `dx/dt = s·[α(v − v_t)(1 − x) − β(v − v_t) x]`.

    The Traub–Miles form used by Pospischil et al. (2008): the threshold parameter
    `v_t` shifts both rates at once and is a single array field (fittable,
    differentiable), while `alpha` and `beta` are the rate functions of the shifted
    voltage (e.g. `Linoid(0.32, 13.0, 4.0)` for the Na activation's α).

    **Arguments:**

    - `alpha`, `beta`: callables `u [mV] -> rate [1/ms]` of the shifted voltage
      (hhjax's [`hhjax.Linoid`][], [`hhjax.Exponential`][], [`hhjax.Sigmoid`][] or
      any pure JAX function).
    - `v_t`: the threshold shift [mV].
    - `scale`: dimensionless factor on both rates (a temperature factor), > 0.

    `inf = α/(α+β)`, `tau = 1/(s(α+β))` [ms], both at `u = v − v_t`; for `v` of any
    shape they have the broadcast shape of `v` and the fields.

    **Raises:** `TypeError` for a non-numeric `v_t` or non-callable rates;
    `ValueError` for a non-finite `v_t` or `scale <= 0`.

    **Example** (the delayed-rectifier `n` gate of the RS cell; at `u = 15 mV` its
    α is `0.032 · 5` by continuity):

    ```pycon
    >>> import hhjax
    >>> n = hhjax.ShiftedRateGate(hhjax.Linoid(0.032, 15.0, 5.0),
    ...                           hhjax.Exponential(0.5, 10.0, -40.0), v_t=-56.2)
    >>> alpha, beta = n.rates(-56.2 + 15.0)            # 1/ms
    >>> round(float(alpha), 4), round(float(beta), 4)
    (0.16, 0.4412)
    >>> round(float(n.inf(-41.2)), 4), round(float(n.tau(-41.2)), 3)   # –, ms
    (0.2661, 1.663)

    ```
    """

    alpha: Callable
    beta: Callable
    v_t: Array
    scale: Array

    def __init__(
        self, alpha: Callable, beta: Callable, v_t: ArrayLike, scale: ArrayLike = 1.0
    ):
        if isinstance(v_t, (str, bytes)) or v_t is None:
            raise TypeError(f"`v_t` must be a number or array (in mV), got {v_t!r}.")
        check_value("v_t", v_t, "mV", "finite", lambda x: x == x)
        check_value("scale", scale, "(dimensionless)", "> 0", lambda x: x > 0)
        self.alpha = _callable("alpha", alpha)
        self.beta = _callable("beta", beta)
        self.v_t = jnp.asarray(v_t)
        self.scale = jnp.asarray(scale)

    def rates(self, v: ArrayLike) -> tuple[Array, Array]:
        """`(α, β)` [1/ms] at `v` [mV] (temperature factor included)."""
        u = jnp.clip(jnp.asarray(v), -RATE_V_LIMIT, RATE_V_LIMIT) - self.v_t
        return self.scale * self.alpha(u), self.scale * self.beta(u)


class YamadaTau(eqx.Module):
    r"""The M-current time constant
    `tau_max / (ratio · exp((v − v_half)/slope) + exp(−(v − v_half)/slope))` [ms].

    Yamada, Koch & Adams (1989), as used by Pospischil et al. (2008) with
    `v_half` = −35 mV, `slope` = 20 mV, `ratio` = 3.3; its peak is
    `tau_max / (2·sqrt(ratio))` (≈ 0.275 `tau_max`).

    **Fields:** `tau_max` [ms] (> 0), `v_half` [mV], `slope` [mV] (≠ 0), `ratio`
    (dimensionless, > 0). Calling it on `v` [mV] of any shape gives `tau` [ms] of
    the broadcast shape.

    **Raises:** `ValueError` for `tau_max <= 0`, `ratio <= 0`, or a zero or
    non-finite `slope`.

    **Example:**

    ```pycon
    >>> import hhjax
    >>> tau_p = hhjax.YamadaTau(608.0)                 # the RS cell's tau_max [ms]
    >>> round(float(tau_p(-35.0)), 1)                  # 608 / (3.3 + 1) at v_half
    141.4
    >>> round(608.0 / (2 * 3.3 ** 0.5), 1)             # its peak [ms]
    167.3

    ```
    """

    tau_max: Array
    v_half: Array
    slope: Array
    ratio: Array

    def __init__(
        self,
        tau_max: ArrayLike,
        v_half: ArrayLike = -35.0,
        slope: ArrayLike = 20.0,
        ratio: ArrayLike = 3.3,
    ):
        check_value("tau_max", tau_max, "ms", "> 0", lambda x: x > 0)
        check_value("ratio", ratio, "(dimensionless)", "> 0", lambda x: x > 0)
        _check_slope("YamadaTau", slope)
        self.tau_max, self.v_half = jnp.asarray(tau_max), jnp.asarray(v_half)
        self.slope, self.ratio = jnp.asarray(slope), jnp.asarray(ratio)

    def __call__(self, v: ArrayLike) -> Array:
        x = (v - self.v_half) / self.slope
        return self.tau_max / (self.ratio * jnp.exp(x) + jnp.exp(-x))


def pospischil_na(
    g: ArrayLike = 56.0, e: ArrayLike = 50.0, v_t: ArrayLike = -56.2
) -> tuple[Channel, dict[str, AbstractGate]]:
    """The Traub–Miles Na channel of Pospischil et al. (2008): `g m³ h (v − e)`.

    **Arguments:** `g` [mS/cm²] (the paper's S/cm² × 1e3), `e` [mV], `v_t` [mV]
    (threshold shift). Defaults: the RS cell.

    **Returns:** `(channel, gates)`: an [`hhjax.Channel`][] using gates `"m"`, `"h"`,
    and those two [`hhjax.ShiftedRateGate`][]s (each carries its own `v_t` field),
    ready for [`hhjax.Membrane`][] or `pospischil(..., extra=...)`.

    **Raises:** `TypeError`/`ValueError` for invalid values (as [`hhjax.Channel`][]
    and [`hhjax.ShiftedRateGate`][]: `g < 0`, non-finite `e` or `v_t`).

    **Example:**

    ```pycon
    >>> import hhjax
    >>> na, gates = hhjax.pospischil_na()
    >>> float(na.g), float(na.e), na.gates, sorted(gates)   # mS/cm², mV
    (56.0, 50.0, {'m': 3, 'h': 1}, ['h', 'm'])
    >>> float(gates["m"].v_t), round(float(gates["m"].inf(-40.0)), 4)
    (-56.2, 0.2167)

    ```
    """
    gates = {
        "m": ShiftedRateGate(Linoid(0.32, 13.0, 4.0), Linoid(-0.28, 40.0, -5.0), v_t),
        "h": ShiftedRateGate(
            Exponential(0.128, 17.0, -18.0), Sigmoid(40.0, 5.0, amplitude=4.0), v_t
        ),
    }
    return Channel(g, e, {"m": 3, "h": 1}), gates


def pospischil_kd(
    g: ArrayLike = 6.0, e: ArrayLike = -90.0, v_t: ArrayLike = -56.2
) -> tuple[Channel, dict[str, AbstractGate]]:
    """The delayed-rectifier K channel of Pospischil et al. (2008): `g n⁴ (v − e)`.

    **Arguments:** `g` [mS/cm²], `e` [mV], `v_t` [mV]. Defaults: the RS cell.

    **Returns:** `(channel, {"n": gate})` (a [`hhjax.ShiftedRateGate`][]).

    **Raises:** `TypeError`/`ValueError` for invalid values (as
    [`hhjax.pospischil_na`][]).

    **Example** (the FS cell's values):

    ```pycon
    >>> import hhjax
    >>> kd, gates = hhjax.pospischil_kd(g=3.9, v_t=-57.9)
    >>> float(kd.g), float(kd.e), kd.gates, sorted(gates)
    (3.9, -90.0, {'n': 4}, ['n'])

    ```
    """
    gate = ShiftedRateGate(Linoid(0.032, 15.0, 5.0), Exponential(0.5, 10.0, -40.0), v_t)
    return Channel(g, e, {"n": 4}), {"n": gate}


def pospischil_m(
    g: ArrayLike = 0.075, e: ArrayLike = -90.0, tau_max: ArrayLike = 608.0
) -> tuple[Channel, dict[str, AbstractGate]]:
    """The slow M-type K channel (spike-frequency adaptation): `g p (v − e)`.

    `p∞ = 1/(1 + exp(−(v + 35)/10))`, `τ_p` = [`hhjax.YamadaTau`][]`(tau_max)`.

    **Arguments:** `g` [mS/cm²], `e` [mV], `tau_max` [ms]. Defaults: the RS cell.

    **Returns:** `(channel, {"p": gate})` (an [`hhjax.InfTauGate`][]).

    **Raises:** `TypeError`/`ValueError` for invalid values (`g < 0`, non-finite
    `e`, `tau_max <= 0`).

    **Example:**

    ```pycon
    >>> import hhjax
    >>> m, gates = hhjax.pospischil_m()
    >>> float(m.g), m.gates, float(gates["p"].inf(-35.0))
    (0.075, {'p': 1}, 0.5)
    >>> round(float(gates["p"].tau(-35.0)), 1)            # ms
    141.4

    ```
    """
    gate = InfTauGate(Sigmoid(-35.0, 10.0), YamadaTau(tau_max))
    return Channel(g, e, {"p": 1}), {"p": gate}


def pospischil_leak(
    g: ArrayLike = 0.0205, e: ArrayLike = -70.3
) -> tuple[Channel, dict[str, AbstractGate]]:
    """The leak `g (v − e)`: `g` [mS/cm²], `e` [mV] (defaults: the RS cell).

    **Returns:** `(channel, {})`.

    **Raises:** `TypeError`/`ValueError` for invalid values (as [`hhjax.Channel`][]).

    **Example:**

    ```pycon
    >>> import hhjax
    >>> leak, gates = hhjax.pospischil_leak()
    >>> float(leak.g), float(leak.e), gates
    (0.0205, -70.3, {})
    >>> round(float(leak.current(-60.0, {})), 4)          # µA/cm², outward
    0.2111

    ```
    """
    return Channel(g, e), {}


def pospischil_cal(
    g: ArrayLike = 0.1, e: ArrayLike = 120.0
) -> tuple[Channel, dict[str, AbstractGate]]:
    """The high-threshold L-type Ca channel of the paper's bursting cells (Reuveni et
    al. 1993): `g q² r (v − e)`, with a fixed reversal `e` [mV] (default 120).

    **Arguments:** `g` [mS/cm²] (default 0.1, i.e. 1e-4 S/cm²), `e` [mV].

    **Returns:** `(channel, {"q": gate, "r": gate})` ([`hhjax.RateGate`][]s).

    **Raises:** `TypeError`/`ValueError` for invalid values (as [`hhjax.Channel`][]).

    **Example** (a bursting cell: the RS cell plus the Ca current, via `extra`):

    ```pycon
    >>> import hhjax
    >>> cal, gates = hhjax.pospischil_cal()
    >>> float(cal.g), float(cal.e), cal.gates
    (0.1, 120.0, {'q': 2, 'r': 1})
    >>> mb = hhjax.pospischil("RS", extra={"cal": hhjax.pospischil_cal(0.1)})
    >>> sorted(mb.channels), sorted(mb.gates)
    (['cal', 'kd', 'leak', 'm', 'na'], ['h', 'm', 'n', 'p', 'q', 'r'])

    ```
    """
    gates = {
        "q": RateGate(Linoid(0.055, -27.0, 3.8), Exponential(0.94, -75.0, -17.0)),
        "r": RateGate(
            Exponential(0.000457, -13.0, -50.0), Sigmoid(-15.0, 28.0, amplitude=0.0065)
        ),
    }
    return Channel(g, e, {"q": 2, "r": 1}), gates


def pospischil(
    cell: str = "RS",
    *,
    c_m: ArrayLike | None = None,
    g_na: ArrayLike | None = None,
    g_kd: ArrayLike | None = None,
    g_m: ArrayLike | None = None,
    g_leak: ArrayLike | None = None,
    e_na: ArrayLike | None = None,
    e_k: ArrayLike | None = None,
    e_leak: ArrayLike | None = None,
    v_t: ArrayLike | None = None,
    tau_max: ArrayLike | None = None,
    extra: Mapping[str, tuple[Channel, Mapping[str, AbstractGate]]] | None = None,
    dtype=None,
) -> Membrane:
    r"""A regular-spiking (RS) or fast-spiking (FS) cortical neuron of Pospischil et al.
    (2008), as an [`hhjax.Membrane`][].

    Channels `na` (m³h), `kd` (n⁴), `m` (p, the slow M-type K current) and `leak`;
    state `v, m, h, n, p`. See the module docstring for the equations and sources.

    **Units:** hhjax's own. The paper gives conductances in S/cm²; here they are in
    **mS/cm²** (× 1e3), e.g. RS `g_na` = 0.056 S/cm² = 56 mS/cm². Potentials and
    `v_t` in mV, `tau_max` in ms, `c_m` in µF/cm².

    **Arguments:**

    - `cell`: which published parameter set ([`hhjax.POSPISCHIL_CELLS`][] has them
      all, with sources):
        - `"RS"`: the paper's regular-spiking pyramidal cell: `g_na, g_kd, g_m,
          g_leak` = 56, 6, 0.075, 0.0205 mS/cm², `e_leak` = −70.3 mV, `v_t` =
          −56.2 mV, `tau_max` = 608 ms;
        - `"FS"`: the paper's fast-spiking interneuron: 58, 3.9, 0.0787, 0.038
          mS/cm², −70.4 mV, −57.9 mV, 502 ms (it keeps a weak M current, so it
          adapts too; at equal current about as much as `"RS"`);
        - both with `e_na` = 50, `e_k` = −90 mV, `c_m` = 1 µF/cm²;
        - `"RS-ModelDB"`, `"FS-ModelDB"`: the authors' ModelDB (123623) demo cells:
          RS 50, 5, 0.07, 0.1 mS/cm², `tau_max` = 1000 ms; FS 50, 10, 0, 0.15
          mS/cm² (no M current: no adaptation); both `e_leak` = −70, `v_t` = −55,
          `e_k` = −100, `e_na` = 50 mV.
    - `c_m`, `g_na`, `g_kd`, `g_m`, `g_leak`, `e_na`, `e_k`, `e_leak`, `v_t`,
      `tau_max`: override the preset (units as above). `e_k` is used by `kd` and `m`;
      `v_t` by the gates `m`, `h`, `n`.
    - `extra`: more channels, name → `(channel, gates)` as returned by the builders
      ([`hhjax.pospischil_cal`][], or your own), e.g.
      `extra={"cal": hhjax.pospischil_cal(0.1)}`.
    - `dtype`: float dtype of every array (default: follow the inputs).

    **Fitting V_T.** Each of the gates `m`, `h`, `n` holds `v_t` as one array field
    (shared by its α and β): `membrane.gates["n"].v_t`. To move the threshold of the
    whole model, set all three, e.g.
    `eqx.tree_at(lambda mb: [mb.gates[k].v_t for k in "mhn"], mb, [vt] * 3)`; they
    can also be fitted separately.

    **Raises:** `ValueError` for an unknown `cell` or invalid values (as
    [`hhjax.Channel`][]), a name in `extra` that clashes with an existing channel or
    gate.

    **Example:**

    ```python
    rs = hhjax.pospischil("RS")
    res = hhjax.simulate(rs, hhjax.StepCurrent(2.0, 20.0, 220.0), t_end=250.0)
    hhjax.spike_times(res)   # 8 spikes, intervals 16.7 -> 29.0 ms (adapting)
    ```
    """
    if not isinstance(cell, str) or cell.upper() not in _BY_UPPER:
        raise ValueError(
            f"`cell` must be one of {list(POSPISCHIL_CELLS)} (case-insensitive), got "
            f"{cell!r}."
        )
    p = dict(POSPISCHIL_CELLS[_BY_UPPER[cell.upper()]])
    given = dict(
        c_m=c_m,
        g_na=g_na,
        g_kd=g_kd,
        g_m=g_m,
        g_leak=g_leak,
        e_na=e_na,
        e_k=e_k,
        e_leak=e_leak,
        v_t=v_t,
        tau_max=tau_max,
    )
    p.update({k: v for k, v in given.items() if v is not None})
    parts = {
        "na": pospischil_na(p["g_na"], p["e_na"], p["v_t"]),
        "kd": pospischil_kd(p["g_kd"], p["e_k"], p["v_t"]),
        "m": pospischil_m(p["g_m"], p["e_k"], p["tau_max"]),
        "leak": pospischil_leak(p["g_leak"], p["e_leak"]),
    }
    channels: dict[str, Channel] = {}
    gates: dict[str, AbstractGate] = {}
    for k, (ch, gs) in parts.items():
        channels[k] = ch
        gates.update(gs)
    for k, part in dict(extra or {}).items():
        if not (isinstance(part, tuple) and len(part) == 2):
            raise TypeError(
                f"`extra[{k!r}]` must be a (channel, gates) pair as returned by the "
                f"channel builders (e.g. hhjax.pospischil_cal(...)), got {part!r}."
            )
        ch, gs = part
        if k in channels:
            raise ValueError(f"`extra` channel {k!r} clashes with the model's {k!r}.")
        clash = sorted(set(gs) & set(gates))
        if clash:
            raise ValueError(
                f"`extra[{k!r}]` brings gate(s) {clash} the model already has "
                f"({sorted(gates)}); rename them."
            )
        channels[k] = ch
        gates.update(gs)
    return Membrane(channels, gates, p["c_m"], dtype=dtype)
