"""Rate functions of Hodgkin–Huxley gates.

All voltages are in mV, all rates in 1/ms, at the kinetics' reference temperature
(6.3 °C). Temperature scaling (Q10) is applied by the model, not here.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike

# Below this |u| the series of u / (1 - exp(-u)) is used instead of the closed form.
_SERIES_EPS = 1e-3


def exprel_inv(u: ArrayLike) -> Array:
    r"""$u / (1 - e^{-u})$, finite with finite derivatives at the removable $u = 0$.

    This is the shape of the classic HH activation rates, e.g.
    $\alpha_m(v) = 0.1 (v + 40) / (1 - e^{-(v + 40)/10}) = $ `exprel_inv((v + 40) / 10)`.

    Uses the "double where" trick: the closed form is only ever evaluated at a safe
    input, so neither the value nor the gradient is NaN at $u = 0$ (a single
    `jnp.where` gives a finite value but a NaN gradient).

    **Arguments:**

    - `u`: dimensionless input (array of any shape; dtype is preserved).

    **Returns:** an array of the same shape and dtype as `u`, equal to 1 at `u = 0`.

    **Raises:** nothing for numeric input (NaN in, NaN out).

    **Example:**

    ```pycon
    >>> import jax, hhjax
    >>> float(hhjax.exprel_inv(0.0)), float(jax.grad(hhjax.exprel_inv)(0.0))
    (1.0, 0.5)
    >>> round(float(hhjax.exprel_inv(1.0)), 6)      # 1 / (1 - e^-1)
    1.581977

    ```
    """
    u = jnp.asarray(u)
    small = jnp.abs(u) < _SERIES_EPS
    safe_u = jnp.where(small, jnp.ones_like(u), u)
    closed = safe_u / -jnp.expm1(-safe_u)
    # u/(1-e^{-u}) = 1 + u/2 + u^2/12 - u^4/720 + ...
    series = 1 + u / 2 + u * u / 12
    return jnp.where(small, series, closed)


def phi1(z: ArrayLike) -> Array:
    r"""$\varphi_1(z) = (e^z - 1)/z$, with $\varphi_1(0) = 1$; finite value and gradient.

    Used by the exponential-Euler solver. Dimensionless in, dimensionless out: an
    array of the shape and dtype of `z`. Raises nothing for numeric input.

    ```pycon
    >>> import hhjax
    >>> float(hhjax.phi1(0.0)), round(float(hhjax.phi1(1.0)), 6)   # 1, e - 1
    (1.0, 1.718282)

    ```
    """
    z = jnp.asarray(z)
    small = jnp.abs(z) < _SERIES_EPS
    safe_z = jnp.where(small, jnp.ones_like(z), z)
    closed = jnp.expm1(safe_z) / safe_z
    series = 1 + z / 2 + z * z / 6 + z * z * z / 24
    return jnp.where(small, series, closed)


class AbstractHHKinetics(eqx.Module):
    """The six opening/closing rates of the m, h and n gates of an HH-type model.

    Each method takes the membrane potential `v` [mV] (any shape) and returns a rate
    [1/ms] at the kinetics' reference temperature (6.3 °C), of the shape of `v` and
    (for array input) its dtype. Subclasses hold no arrays, so they do not add leaves
    to a parameter pytree. [`hhjax.HHParams`][] applies the temperature factor and
    `v_shift`; pass a kinetics object as its `kinetics` argument.

    ```pycon
    >>> import hhjax
    >>> p = hhjax.HHParams(kinetics=hhjax.ANNarchyKinetics())
    >>> isinstance(p.kinetics, hhjax.AbstractHHKinetics)
    True

    ```
    """

    @abc.abstractmethod
    def alpha_m(self, v: ArrayLike) -> Array:
        """Opening rate of m [1/ms] at `v` [mV]."""

    @abc.abstractmethod
    def beta_m(self, v: ArrayLike) -> Array:
        """Closing rate of m [1/ms] at `v` [mV]."""

    @abc.abstractmethod
    def alpha_h(self, v: ArrayLike) -> Array:
        """Opening (de-inactivation) rate of h [1/ms] at `v` [mV]."""

    @abc.abstractmethod
    def beta_h(self, v: ArrayLike) -> Array:
        """Closing (inactivation) rate of h [1/ms] at `v` [mV]."""

    @abc.abstractmethod
    def alpha_n(self, v: ArrayLike) -> Array:
        """Opening rate of n [1/ms] at `v` [mV]."""

    @abc.abstractmethod
    def beta_n(self, v: ArrayLike) -> Array:
        """Closing rate of n [1/ms] at `v` [mV]."""


class ClassicKinetics(AbstractHHKinetics):
    r"""The Hodgkin & Huxley (1952) squid-axon rates in the modern convention
    (rest near −65 mV, depolarisation positive):

    - $\alpha_m = 0.1 (v+40) / (1 - e^{-(v+40)/10})$, $\beta_m = 4 e^{-(v+65)/18}$
    - $\alpha_h = 0.07 e^{-(v+65)/20}$, $\beta_h = 1 / (1 + e^{-(v+35)/10})$
    - $\alpha_n = 0.01 (v+55) / (1 - e^{-(v+55)/10})$, $\beta_n = 0.125 e^{-(v+65)/80}$

    with $v$ in mV and rates in 1/ms at 6.3 °C. The removable singularities at
    −40 mV ($\alpha_m$) and −55 mV ($\alpha_n$) are handled by [`hhjax.exprel_inv`][].

    ```pycon
    >>> import hhjax
    >>> k = hhjax.ClassicKinetics()
    >>> float(k.alpha_m(-40.0)), float(k.alpha_n(-55.0))     # the 0/0 points
    (1.0, 0.1)
    >>> round(float(k.beta_m(-65.0)), 6)
    4.0

    ```
    """

    def alpha_m(self, v):
        return exprel_inv((jnp.asarray(v) + 40.0) / 10.0)

    def beta_m(self, v):
        return 4.0 * jnp.exp(-(jnp.asarray(v) + 65.0) / 18.0)

    def alpha_h(self, v):
        return 0.07 * jnp.exp(-(jnp.asarray(v) + 65.0) / 20.0)

    def beta_h(self, v):
        return 1.0 / (1.0 + jnp.exp(-(jnp.asarray(v) + 35.0) / 10.0))

    def alpha_n(self, v):
        return 0.1 * exprel_inv((jnp.asarray(v) + 55.0) / 10.0)

    def beta_n(self, v):
        return 0.125 * jnp.exp(-(jnp.asarray(v) + 65.0) / 80.0)


class ANNarchyKinetics(AbstractHHKinetics):
    r"""The rate forms of ANNarchy's "Hodgkin–Huxley neuron" notebook (seed 000).

    The classic rates shifted by −5 mV (rest near −70 mV), except that $\beta_m$ decays
    with a slope of 80 mV instead of 18 mV, exactly as written in that notebook:

    - $\alpha_m = 0.1 (v+45) / (1 - e^{-0.1(v+45)})$, $\beta_m = 4 e^{-(v+70)/80}$
    - $\alpha_h = 0.07 e^{-0.05(v+70)}$, $\beta_h = 1 / (1 + e^{-0.1(v+40)})$
    - $\alpha_n = 0.01 (v+60) / (1 - e^{-0.1(v+60)})$, $\beta_n = 0.125 e^{-0.0125(v+70)}$

    Removable singularities at −45 mV ($\alpha_m$) and −60 mV ($\alpha_n$).

    ```pycon
    >>> import hhjax
    >>> k = hhjax.ANNarchyKinetics()
    >>> float(k.alpha_m(-45.0)), round(float(k.beta_m(-70.0)), 6)
    (1.0, 4.0)

    ```
    """

    def alpha_m(self, v):
        return exprel_inv((jnp.asarray(v) + 45.0) / 10.0)

    def beta_m(self, v):
        return 4.0 * jnp.exp(-(jnp.asarray(v) + 70.0) / 80.0)

    def alpha_h(self, v):
        return 0.07 * jnp.exp(-0.05 * (jnp.asarray(v) + 70.0))

    def beta_h(self, v):
        return 1.0 / (1.0 + jnp.exp(-0.1 * (jnp.asarray(v) + 40.0)))

    def alpha_n(self, v):
        return 0.1 * exprel_inv((jnp.asarray(v) + 60.0) / 10.0)

    def beta_n(self, v):
        return 0.125 * jnp.exp(-0.0125 * (jnp.asarray(v) + 70.0))
