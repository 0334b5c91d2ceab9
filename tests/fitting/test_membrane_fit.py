"""Fitting a composed `hhjax.Membrane` (here the Pospischil regular-spiking cell) by
dotted parameter names: conductances and a reversal recovered from a noisy trace."""

import numpy as np
import pytest

import fitting
import hhjax
from fitting._transforms import get_parameter, set_parameters


@pytest.mark.slow  # default-suite time (CI budget ~10 min)
def test_fit_pospischil_membrane_by_dotted_names():
    m0 = hhjax.pospischil("RS")
    names = ("channels.kd.g", "channels.leak.g", "channels.leak.e")
    factors = (0.95, 1.1, 1.03)
    truth = set_parameters(m0, {n: get_parameter(m0, n) * f for n, f in zip(names, factors)})
    t = np.arange(0.0, 80.0 + 1e-9, 0.025)
    stim = hhjax.StepCurrent(3.0, 10.0, 70.0)
    v = np.asarray(hhjax.simulate(truth, stim, t_end=80.0, ts=t).v)
    v = v + np.random.default_rng(1).normal(0.0, 0.5, t.size)
    i = np.where((t >= 10.0) & (t < 70.0), 3.0, 0.0)
    rec = hhjax.Recording(t_ms=t, v_mV=v[None], i_uA_per_cm2=i[None])
    res = fitting.fit(m0, rec, names, optimizer=fitting.LevenbergMarquardt(steps=25),
                      loss=fitting.TraceLoss(sigma=0.5), progress=False)
    assert np.asarray(hhjax.spike_times(hhjax.simulate(truth, stim, t_end=80.0), max_spikes=20)).size
    for n in names:
        err = abs(res.values[n] / float(get_parameter(truth, n)) - 1)
        assert err < 0.02, (n, res.values[n], float(get_parameter(truth, n)))
        assert np.isfinite(res.stderr[n]) and res.stderr[n] > 0
    assert 0.4 < res.noise_sigma < 0.6  # residuals at the noise floor
