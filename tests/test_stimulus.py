"""Stimulus protocols: values against hand-computed numpy references, jump times,
traceability (grad / jit / vmap), dtypes, construction errors, and how `simulate`
uses them (steps landing on edges, noise currents)."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hhjax

F32 = np.float32


def _eval(stim, ts):
    """The stimulus at each time of `ts`, as a float64 numpy array."""
    return np.asarray(jax.vmap(stim)(jnp.asarray(ts)), dtype=np.float64)


# --------------------------------------------------------------------------------------
# values


def test_constant_current_values():
    s = hhjax.ConstantCurrent(2.5)
    ts = [-10.0, 0.0, 3.7, 1e4]
    np.testing.assert_array_equal(_eval(s, ts), np.full(4, 2.5))
    assert jnp.shape(s(1.0)) == ()
    assert s.jump_times.shape == (0,)


def test_step_current_values_and_edges():
    s = hhjax.StepCurrent(4.0, t_on=2.0, t_off=5.0)
    ts = np.array([0.0, 1.999, 2.0, 3.0, 4.999, 5.0, 6.0])
    expected = np.where((ts >= 2.0) & (ts < 5.0), 4.0, 0.0)
    np.testing.assert_array_equal(_eval(s, ts), expected)
    # the edges: on exactly at t_on, off exactly at t_off
    assert float(s(2.0)) == 4.0
    assert float(s(5.0)) == 0.0
    assert float(s(np.nextafter(5.0, 0.0))) == 4.0
    assert float(s(np.nextafter(2.0, 0.0))) == 0.0
    np.testing.assert_array_equal(np.asarray(s.jump_times), [2.0, 5.0])


def test_step_current_default_window_is_open_ended():
    s = hhjax.StepCurrent(-3.0, t_on=1.0)
    np.testing.assert_array_equal(_eval(s, [0.0, 1.0, 1e6]), [0.0, -3.0, -3.0])
    jt = np.asarray(s.jump_times)
    assert jt.shape == (2,)
    assert jt[0] == 1.0 and np.isposinf(jt[1])
    s0 = hhjax.StepCurrent(7.0)  # t_on defaults to 0
    assert float(s0(0.0)) == 7.0
    assert float(s0(-1e-9)) == 0.0


def _pulse_ref(t, onsets, width, amplitude):
    onsets = np.asarray(onsets, float)
    width = np.broadcast_to(np.asarray(width, float), onsets.shape)
    amplitude = np.broadcast_to(np.asarray(amplitude, float), onsets.shape)
    on = (t >= onsets) & (t < onsets + width)
    return float(np.sum(np.where(on, amplitude, 0.0)))


def test_pulse_train_values_and_edges():
    onsets, width, amp = [0.0, 10.0], 1.0, [150.0, 50.0]
    s = hhjax.PulseTrain(onsets, width, amp)
    ts = np.array([-0.5, 0.0, 0.5, 0.999, 1.0, 5.0, 10.0, 10.5, 11.0, 20.0])
    expected = [_pulse_ref(t, onsets, width, amp) for t in ts]
    np.testing.assert_array_equal(_eval(s, ts), expected)
    assert expected[1] == 150.0 and expected[4] == 0.0  # edges: on at onset, off at end
    np.testing.assert_array_equal(
        np.sort(np.asarray(s.jump_times)), [0.0, 1.0, 10.0, 11.0]
    )


def test_pulse_train_per_pulse_widths_and_overlap_add():
    onsets, width, amp = [0.0, 0.5, 3.0], [1.0, 1.0, 0.25], [1.0, 2.0, -4.0]
    s = hhjax.PulseTrain(onsets, width, amp)
    ts = np.array([0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 3.0, 3.2, 3.25])
    expected = [_pulse_ref(t, onsets, width, amp) for t in ts]
    np.testing.assert_array_equal(_eval(s, ts), expected)
    assert expected[2] == 3.0  # overlapping pulses add
    np.testing.assert_array_equal(
        np.sort(np.asarray(s.jump_times)), [0.0, 0.5, 1.0, 1.5, 3.0, 3.25]
    )


def test_pulse_train_regular():
    s = hhjax.PulseTrain.regular(5.0, 10.0, 3, 2.0, 7.0)
    np.testing.assert_array_equal(np.asarray(s.onsets), [5.0, 15.0, 25.0])
    ts = np.array([4.9, 5.0, 6.9, 7.0, 15.0, 16.0, 17.0, 25.0, 26.99, 27.0, 35.0])
    expected = [_pulse_ref(t, [5.0, 15.0, 25.0], 2.0, 7.0) for t in ts]
    np.testing.assert_array_equal(_eval(s, ts), expected)
    np.testing.assert_array_equal(
        np.sort(np.asarray(s.jump_times)), [5.0, 7.0, 15.0, 17.0, 25.0, 27.0]
    )


def test_ramp_current_values_and_edges():
    s = hhjax.RampCurrent(t_on=1.0, t_off=3.0, amplitude_start=2.0, amplitude_end=6.0)
    ts = np.array([0.5, 1.0, 1.5, 2.0, 2.999, 3.0, 4.0])
    expected = np.where((ts >= 1.0) & (ts < 3.0), 2.0 + (ts - 1.0) / 2.0 * 4.0, 0.0)
    np.testing.assert_allclose(_eval(s, ts), expected, rtol=1e-14, atol=0)
    assert float(s(1.0)) == 2.0  # on at t_on, with the start amplitude
    assert float(s(3.0)) == 0.0  # off at t_off
    np.testing.assert_array_equal(np.asarray(s.jump_times), [1.0, 3.0])


def test_sine_current_values():
    amp, f_hz, phase, offset, t_on, t_off = 2.0, 250.0, 0.5, 1.0, 1.0, 5.0
    s = hhjax.SineCurrent(amp, f_hz, phase=phase, offset=offset, t_on=t_on, t_off=t_off)
    ts = np.array([0.5, 1.0, 1.3, 2.0, 3.7, 4.999, 5.0, 6.0])
    arg = 2 * np.pi * f_hz * 1e-3 * (ts - t_on) + phase  # frequency in Hz, t in ms
    expected = np.where((ts >= t_on) & (ts < t_off), offset + amp * np.sin(arg), 0.0)
    np.testing.assert_allclose(_eval(s, ts), expected, rtol=1e-13, atol=1e-13)
    # a 250 Hz sine has a 4 ms period
    s_full = hhjax.SineCurrent(1.0, 250.0)
    np.testing.assert_allclose(float(s_full(1.0)), 1.0, atol=1e-14)  # quarter period
    np.testing.assert_allclose(float(s_full(4.0 + 1.0)), 1.0, atol=1e-12)
    np.testing.assert_array_equal(np.asarray(s.jump_times), [1.0, 5.0])


def test_sampled_current_linear():
    times, values = [0.0, 1.0, 2.0, 4.0], [0.0, 1.0, 3.0, -1.0]
    s = hhjax.SampledCurrent(times, values)
    ts = np.array([-1.0, 0.0, 0.25, 1.0, 1.5, 2.0, 3.0, 4.0, 10.0])
    np.testing.assert_allclose(
        _eval(s, ts), np.interp(ts, times, values), rtol=1e-14, atol=1e-14
    )
    assert float(s(-5.0)) == 0.0 and float(s(50.0)) == -1.0  # end values held
    assert s.jump_times.shape == (0,)  # continuous


def test_sampled_current_previous():
    times, values = np.array([0.0, 1.0, 2.0]), np.array([5.0, 1.0, 3.0])
    s = hhjax.SampledCurrent(times, values, interpolation="previous")
    ts = np.array([-1.0, 0.0, 0.5, np.nextafter(1.0, 0.0), 1.0, 1.99, 2.0, 5.0])
    idx = np.clip(np.searchsorted(times, ts, side="right") - 1, 0, len(times) - 1)
    expected = values[idx]
    np.testing.assert_array_equal(_eval(s, ts), expected)
    assert float(s(1.0)) == 1.0  # the new value holds from exactly its sample time
    np.testing.assert_array_equal(np.asarray(s.jump_times), [1.0, 2.0])


def test_sum_current_and_add():
    a = hhjax.StepCurrent(1.0, 2.0, 3.0)
    b = hhjax.ConstantCurrent(0.5)
    c = hhjax.PulseTrain([5.0], 1.0, 2.0)
    s = a + b + c
    assert isinstance(s, hhjax.SumCurrent)
    assert len(s.stimuli) == 3  # nested sums are flattened
    ts = np.array([0.0, 2.0, 2.5, 3.0, 5.0, 5.5, 6.0])
    np.testing.assert_array_equal(
        _eval(s, ts), _eval(a, ts) + _eval(b, ts) + _eval(c, ts)
    )
    np.testing.assert_array_equal(
        np.sort(np.asarray(s.jump_times)), [2.0, 3.0, 5.0, 6.0]
    )
    s2 = hhjax.SumCurrent([a, b])
    np.testing.assert_array_equal(_eval(s2, ts), _eval(a, ts) + 0.5)
    single = hhjax.SumCurrent([c])
    np.testing.assert_array_equal(_eval(single, ts), _eval(c, ts))
    with pytest.raises(TypeError):
        a + 1.0


def test_noise_currents_evaluate_to_their_mean():
    key = jax.random.key(0)
    w = hhjax.WhiteNoiseCurrent(2.0, key, mean=1.5)
    o = hhjax.OUNoiseCurrent(-0.5, 1.0, 3.0, key)
    np.testing.assert_array_equal(_eval(w, [0.0, 7.0]), [1.5, 1.5])
    np.testing.assert_array_equal(_eval(o, [0.0, 7.0]), [-0.5, -0.5])
    assert w.jump_times.shape == (0,) and o.jump_times.shape == (0,)
    # OU initial deviation: a deterministic function of the key, scaled by sigma
    x1 = float(o.initial_deviation())
    assert x1 == float(hhjax.OUNoiseCurrent(-0.5, 1.0, 3.0, key).initial_deviation())
    x2 = float(hhjax.OUNoiseCurrent(-0.5, 2.0, 3.0, key).initial_deviation())
    np.testing.assert_allclose(x2, 2 * x1, rtol=1e-14)
    assert float(hhjax.OUNoiseCurrent(0.0, 0.0, 3.0, key).initial_deviation()) == 0.0
    assert x1 != float(
        hhjax.OUNoiseCurrent(-0.5, 1.0, 3.0, jax.random.key(1)).initial_deviation()
    )
    # legacy uint32 keys are accepted too
    hhjax.WhiteNoiseCurrent(1.0, jax.random.PRNGKey(0))


# --------------------------------------------------------------------------------------
# traceability


@pytest.mark.parametrize(
    "make, t, expected",
    [
        (lambda a: hhjax.ConstantCurrent(a), 1.0, 1.0),
        (lambda a: hhjax.StepCurrent(a, 1.0, 2.0), 1.5, 1.0),
        (lambda a: hhjax.StepCurrent(a, 1.0, 2.0), 2.0, 0.0),
        (lambda a: hhjax.PulseTrain([0.0, 1.0], 0.5, a), 1.25, 1.0),
        (lambda a: hhjax.RampCurrent(1.0, 3.0, 0.0, a), 2.5, 0.75),
        (lambda a: hhjax.SineCurrent(a, 250.0), 0.5, np.sin(np.pi / 4)),
        (lambda a: hhjax.SampledCurrent([0.0, 1.0], jnp.stack([a, 2 * a])), 0.25, 1.25),
        (lambda a: hhjax.StepCurrent(a, 0.0) + hhjax.ConstantCurrent(2 * a), 1.0, 3.0),
    ],
)
def test_grad_wrt_amplitude(make, t, expected):
    g = jax.grad(lambda a: make(a)(t))(3.0)
    np.testing.assert_allclose(float(g), expected, rtol=1e-12, atol=1e-15)


def test_grad_wrt_timing_parameters():
    # ramp value at t=2 is a_end (t - t_on)/(t_off - t_on): smooth in t_on, t_off
    def ramp(t_on, t_off):
        return hhjax.RampCurrent(t_on, t_off, 0.0, 3.0)(2.0)

    g_on, g_off = jax.grad(ramp, argnums=(0, 1))(1.0, 4.0)
    np.testing.assert_allclose(float(g_on), 3.0 * (2.0 - 4.0) / 9.0, rtol=1e-12)
    np.testing.assert_allclose(float(g_off), -3.0 * (2.0 - 1.0) / 9.0, rtol=1e-12)

    # sine: derivative with respect to the frequency and the onset
    def sine(f_hz, t_on):
        return hhjax.SineCurrent(2.0, f_hz, t_on=t_on)(3.0)

    g_f, g_t = jax.grad(sine, argnums=(0, 1))(100.0, 1.0)
    w = 2 * np.pi * 100.0 * 1e-3
    np.testing.assert_allclose(
        float(g_f), 2.0 * np.cos(w * 2.0) * 2 * np.pi * 1e-3 * 2.0
    )
    np.testing.assert_allclose(float(g_t), -2.0 * np.cos(w * 2.0) * w)


def test_step_currents_built_inside_vmap_from_t_on():
    t_ons = jnp.array([0.0, 1.0, 1.5, 2.0, 3.25])
    grid = jnp.linspace(0.0, 5.0, 21)

    @jax.jit
    def batch(t_on):
        def one(t0):
            s = hhjax.StepCurrent(2.0, t0, t0 + 1.0)
            return jax.vmap(s)(grid), s.jump_times

        return jax.vmap(one)(t_on)

    values, jumps = batch(t_ons)
    tn, gn = np.asarray(t_ons)[:, None], np.asarray(grid)[None, :]
    expected = np.where((gn >= tn) & (gn < tn + 1.0), 2.0, 0.0)
    np.testing.assert_array_equal(np.asarray(values), expected)
    np.testing.assert_array_equal(
        np.asarray(jumps), np.stack([t_ons, t_ons + 1.0], axis=1)
    )


def test_pulse_trains_built_inside_vmap_from_onsets():
    onsets = jnp.array([[0.0, 2.0], [1.0, 1.5], [0.5, 4.0]])
    grid = jnp.linspace(0.0, 5.0, 41)
    out = jax.jit(
        jax.vmap(
            lambda o: jax.vmap(hhjax.PulseTrain(o, 1.0, jnp.array([1.0, 2.0])))(grid)
        )
    )(onsets)
    expected = np.array(
        [[_pulse_ref(t, o, 1.0, [1.0, 2.0]) for t in np.asarray(grid)] for o in onsets]
    )
    np.testing.assert_array_equal(np.asarray(out), expected)


# --------------------------------------------------------------------------------------
# dtypes


@pytest.mark.parametrize(
    "stim",
    [
        hhjax.ConstantCurrent(F32(2.0)),
        hhjax.StepCurrent(F32(2.0), F32(1.0), F32(3.0)),
        hhjax.StepCurrent(F32(2.0)),
        hhjax.PulseTrain(
            np.array([0.0, 2.0], F32), F32(1.0), np.array([1.0, 3.0], F32)
        ),
        hhjax.RampCurrent(F32(1.0), F32(3.0), F32(0.0), F32(4.0)),
        hhjax.SineCurrent(F32(1.0), F32(100.0), t_on=F32(0.5)),
        hhjax.SampledCurrent(
            np.array([0.0, 1.0, 3.0], F32), np.array([0.0, 2.0, 1.0], F32)
        ),
        hhjax.SampledCurrent(
            np.array([0.0, 1.0, 3.0], F32), np.array([0.0, 2.0, 1.0], F32), "previous"
        ),
        hhjax.StepCurrent(F32(2.0), F32(1.0)) + hhjax.ConstantCurrent(F32(1.0)),
        hhjax.WhiteNoiseCurrent(F32(1.0), jax.random.key(0)),
        hhjax.OUNoiseCurrent(F32(1.0), F32(1.0), F32(2.0), jax.random.key(0)),
    ],
    ids=lambda s: type(s).__name__,
)
def test_float32_inputs_give_float32_outputs(stim):
    assert stim(1.5).dtype == jnp.float32
    assert jax.vmap(stim)(jnp.array([0.5, 1.5], jnp.float32)).dtype == jnp.float32
    assert stim.jump_times.dtype == jnp.float32


def test_float64_inputs_give_float64_outputs():
    assert hhjax.StepCurrent(np.float64(1.0), 1.0, 2.0)(1.5).dtype == jnp.float64
    assert hhjax.StepCurrent(2.0, 1.0, 2.0, dtype=jnp.float32)(1.5).dtype == jnp.float32


def test_pulse_train_regular_explicit_dtype():
    s = hhjax.PulseTrain.regular(0.0, 10.0, 3, 1.0, 5.0, dtype=jnp.float32)
    assert s.onsets.dtype == jnp.float32 and s(0.5).dtype == jnp.float32


def test_pulse_train_regular_follows_float32_inputs():
    s = hhjax.PulseTrain.regular(F32(0.0), F32(10.0), 3, F32(1.0), F32(5.0))
    assert s.onsets.dtype == jnp.float32
    assert s(0.5).dtype == jnp.float32


# --------------------------------------------------------------------------------------
# construction errors


KEY = jax.random.key(0)


@pytest.mark.parametrize(
    "make, exc, match",
    [
        # non-finite values
        (lambda: hhjax.ConstantCurrent(np.inf), ValueError, "amplitude"),
        (lambda: hhjax.StepCurrent(np.nan, 1.0, 2.0), ValueError, "amplitude"),
        (lambda: hhjax.StepCurrent(1.0, np.inf), ValueError, "t_on"),
        (lambda: hhjax.StepCurrent(1.0, 0.0, np.nan), ValueError, "t_off"),
        (lambda: hhjax.PulseTrain([0.0, np.nan], 1.0, 1.0), ValueError, "onsets"),
        (lambda: hhjax.PulseTrain([0.0], np.inf, 1.0), ValueError, "width"),
        (lambda: hhjax.PulseTrain([0.0], 1.0, np.nan), ValueError, "amplitude"),
        (lambda: hhjax.RampCurrent(0.0, np.inf, 0.0, 1.0), ValueError, "t_off"),
        (
            lambda: hhjax.RampCurrent(0.0, 1.0, np.nan, 1.0),
            ValueError,
            "amplitude_start",
        ),
        (
            lambda: hhjax.RampCurrent(0.0, 1.0, 0.0, -np.inf),
            ValueError,
            "amplitude_end",
        ),
        (lambda: hhjax.SineCurrent(np.nan, 10.0), ValueError, "amplitude"),
        (lambda: hhjax.SineCurrent(1.0, np.inf), ValueError, "frequency_hz"),
        (lambda: hhjax.SineCurrent(1.0, 10.0, phase=np.nan), ValueError, "phase"),
        (lambda: hhjax.SineCurrent(1.0, 10.0, offset=np.inf), ValueError, "offset"),
        (lambda: hhjax.SineCurrent(1.0, 10.0, t_off=np.nan), ValueError, "t_off"),
        (lambda: hhjax.SampledCurrent([0.0, 1.0], [0.0, np.nan]), ValueError, "values"),
        (lambda: hhjax.SampledCurrent([0.0, np.inf], [0.0, 1.0]), ValueError, "times"),
        (lambda: hhjax.WhiteNoiseCurrent(np.nan, KEY), ValueError, "sigma"),
        (lambda: hhjax.OUNoiseCurrent(np.inf, 1.0, 1.0, KEY), ValueError, "mean"),
        # ranges
        (lambda: hhjax.StepCurrent(1.0, 5.0, 5.0), ValueError, "t_off"),
        (lambda: hhjax.StepCurrent(1.0, 5.0, 4.0), ValueError, "t_off"),
        (lambda: hhjax.RampCurrent(3.0, 1.0, 0.0, 1.0), ValueError, "t_off"),
        (lambda: hhjax.RampCurrent(1.0, 1.0, 0.0, 1.0), ValueError, "t_off"),
        (lambda: hhjax.PulseTrain([0.0, 5.0], 0.0, 1.0), ValueError, "width"),
        (lambda: hhjax.PulseTrain([0.0, 5.0], [1.0, -1.0], 1.0), ValueError, "width"),
        (lambda: hhjax.SineCurrent(1.0, -10.0), ValueError, "frequency_hz"),
        (lambda: hhjax.WhiteNoiseCurrent(-1.0, KEY), ValueError, "sigma"),
        (lambda: hhjax.OUNoiseCurrent(0.0, -1.0, 1.0, KEY), ValueError, "sigma"),
        (lambda: hhjax.OUNoiseCurrent(0.0, 1.0, 0.0, KEY), ValueError, "tau"),
        (lambda: hhjax.PulseTrain.regular(0.0, 10.0, 0, 1.0, 1.0), ValueError, "count"),
        (
            lambda: hhjax.PulseTrain.regular(0.0, 10.0, 2.5, 1.0, 1.0),
            ValueError,
            "count",
        ),
        (
            lambda: hhjax.PulseTrain.regular(0.0, -1.0, 3, 1.0, 1.0),
            ValueError,
            "period",
        ),
        # shapes
        (
            lambda: hhjax.PulseTrain([0.0, 5.0], [1.0, 1.0, 1.0], 1.0),
            ValueError,
            "width",
        ),
        (
            lambda: hhjax.PulseTrain([0.0, 5.0], 1.0, [1.0, 2.0, 3.0]),
            ValueError,
            "amplitude",
        ),
        (lambda: hhjax.PulseTrain([[0.0, 5.0]], 1.0, 1.0), ValueError, "onsets"),
        (
            lambda: hhjax.SampledCurrent([0.0, 1.0, 2.0], [0.0, 1.0]),
            ValueError,
            "values",
        ),
        (lambda: hhjax.SampledCurrent([], []), ValueError, "times"),
        (
            lambda: hhjax.SampledCurrent([0.0, 1.0, 1.0], [0.0, 1.0, 2.0]),
            ValueError,
            "times",
        ),
        (
            lambda: hhjax.SampledCurrent([0.0, 2.0, 1.0], [0.0, 1.0, 2.0]),
            ValueError,
            "times",
        ),
        # options and types
        (
            lambda: hhjax.SampledCurrent([0.0, 1.0], [0.0, 1.0], "cubic"),
            ValueError,
            "interpolation",
        ),
        (lambda: hhjax.WhiteNoiseCurrent(1.0, 0), TypeError, "key"),
        (lambda: hhjax.WhiteNoiseCurrent(1.0, np.array([0, 1])), TypeError, "key"),
        (lambda: hhjax.OUNoiseCurrent(0.0, 1.0, 1.0, "seed"), TypeError, "key"),
        (lambda: hhjax.OUNoiseCurrent(0.0, 1.0, 1.0, None), TypeError, "key"),
        (lambda: hhjax.ConstantCurrent(None), TypeError, "amplitude"),
        (lambda: hhjax.SineCurrent(1.0, None), TypeError, "frequency_hz"),
        (lambda: hhjax.SumCurrent([]), ValueError, "stimuli"),
        (
            lambda: hhjax.SumCurrent([hhjax.ConstantCurrent(1.0), 2.0]),
            TypeError,
            "stimuli",
        ),
    ],
)
def test_construction_errors(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize("t_off", [5.0, 2.0])
def test_sine_current_rejects_empty_window(t_off):
    with pytest.raises(ValueError, match="t_off"):
        hhjax.SineCurrent(1.0, 10.0, t_on=5.0, t_off=t_off)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: hhjax.ConstantCurrent("1.0"), "amplitude"),
        (lambda: hhjax.StepCurrent(1.0, "2.0"), "t_on"),
        (lambda: hhjax.StepCurrent(1.0, 0.0, "5"), "t_off"),
        (lambda: hhjax.PulseTrain([0.0], "1", 1.0), "width"),
    ],
)
def test_string_arguments_name_the_argument(make, match):
    with pytest.raises(TypeError, match=match):
        make()


# --------------------------------------------------------------------------------------
# simulate: adaptive steps land on stimulus edges

P = hhjax.HHParams()
T_ON, T_OFF, T_END, AMP = 10.3, 15.7, 20.0, 10.0
# four samples in each constant piece [0, T_ON], [T_ON, T_OFF], [T_OFF, T_END]
PIECE_TS = ((3.0, 6.0, 9.0, T_ON), (11.0, 12.0, 14.0, T_OFF), (16.0, 17.0, 18.0, T_END))
TS = jnp.array(sum(PIECE_TS, ()))
NO_JUMPS = diffrax.ClipStepSizeController(
    diffrax.PIDController(rtol=1e-6, atol=1e-6, norm=hhjax.finite_rms_norm)
)


def _piecewise_reference():
    """The step response solved as three separate constant-current pieces with tight
    tolerances (no discontinuity inside any solve)."""
    tight = diffrax.PIDController(rtol=1e-11, atol=1e-11)
    y = hhjax.resting_state(P)
    bounds = ((0.0, T_ON, 0.0), (T_ON, T_OFF, AMP), (T_OFF, T_END, 0.0))
    out = []
    for (a, b, i), ts in zip(bounds, PIECE_TS):
        r = hhjax.simulate(
            P,
            hhjax.ConstantCurrent(i),
            t0=a,
            t_end=b,
            ts=jnp.array(ts),
            y0=y,
            stepsize_controller=tight,
            max_steps=100_000,
        )
        out.append(np.asarray(r.v))
        y = jax.tree_util.tree_map(lambda x: x[-1], r.state)
    return np.concatenate(out)


@pytest.fixture(scope="module")
def step_reference():
    return _piecewise_reference()


def test_adaptive_solve_steps_onto_stimulus_edges(step_reference):
    stim = hhjax.StepCurrent(AMP, T_ON, T_OFF)
    with_jumps = hhjax.simulate(P, stim, t_end=T_END, ts=TS)
    without = hhjax.simulate(P, stim, t_end=T_END, ts=TS, stepsize_controller=NO_JUMPS)
    err_with = np.max(np.abs(np.asarray(with_jumps.v) - step_reference))
    err_without = np.max(np.abs(np.asarray(without.v) - step_reference))
    # the default solve matches the piecewise reference to about the tolerance...
    assert err_with < 2e-3, err_with
    # ...and is clearly better than the same controller blind to the edges
    assert err_without > 5 * err_with, (err_with, err_without)
    rej_with = int(with_jumps.stats["num_rejected_steps"])
    rej_without = int(without.stats["num_rejected_steps"])
    assert rej_with < 30
    assert rej_without > rej_with, (rej_with, rej_without)


def test_vmapped_step_onsets_in_simulate_match_unbatched():
    t_ons = jnp.array([T_ON, 7.7])

    def run(t_on):
        return hhjax.simulate(
            P, hhjax.StepCurrent(AMP, t_on, T_OFF), t_end=T_END, ts=TS
        ).v

    batched = jax.jit(jax.vmap(run))(t_ons)
    for i, t_on in enumerate(np.asarray(t_ons)):
        np.testing.assert_allclose(
            np.asarray(batched[i]), np.asarray(run(t_on)), atol=1e-10
        )
    # the onset matters (before 7.7 both are at rest, afterwards they differ)
    np.testing.assert_allclose(
        np.asarray(batched[0, 0]), np.asarray(batched[1, 0]), atol=1e-10
    )
    assert np.max(np.abs(np.asarray(batched[0, 1:] - batched[1, 1:]))) > 1.0


# --------------------------------------------------------------------------------------
# simulate: noise currents

NOISE_T_END, NOISE_DT0, NOISE_SAVE = 200.0, 0.025, 0.1
N_KEYS = 8


def _ou_run(params, mean, sigma, tau, key):
    return hhjax.simulate(
        params,
        hhjax.OUNoiseCurrent(mean, sigma, tau, key),
        t_end=NOISE_T_END,
        dt0=NOISE_DT0,
        save_every=NOISE_SAVE,
        throw=False,
    )


# one compiled solve, reused by every OU test (compiling the SDE solve is slow)
_ou_batch = jax.jit(jax.vmap(_ou_run, in_axes=(None, None, None, None, 0)))


@pytest.fixture(scope="module")
def ou_runs():
    keys = jax.random.split(jax.random.key(1234), N_KEYS)
    hh = _ou_batch(P, 2.0, 1.0, 2.0, keys)
    hh_again = _ou_batch(P, 2.0, 1.0, 2.0, keys)
    return keys, hh, hh_again


def test_ou_noise_same_key_same_trace_different_keys_differ(ou_runs):
    _, hh, hh_again = ou_runs
    assert bool(jnp.all(hh.successful))
    v = np.asarray(hh.v)
    np.testing.assert_array_equal(v, np.asarray(hh_again.v))
    np.testing.assert_array_equal(
        np.asarray(hh.noise[0]), np.asarray(hh_again.noise[0])
    )
    for i in range(1, N_KEYS):
        assert np.max(np.abs(v[0] - v[i])) > 0.1
    assert np.all(np.isfinite(v))
    # an unbatched solve with the same key gives the same realisation
    keys = ou_runs[0]
    single = _ou_run(P, 2.0, 1.0, 2.0, keys[3])
    np.testing.assert_allclose(np.asarray(single.v), v[3], rtol=0, atol=1e-8)


def test_ou_noise_output(ou_runs):
    keys, hh, _ = ou_runs
    n_t = int(round(NOISE_T_END / NOISE_SAVE)) + 1
    assert len(hh.noise) == 1
    x = np.asarray(hh.noise[0])
    assert x.shape == (N_KEYS, n_t)
    # starts from the stationary draw of each key
    x0 = [
        float(hhjax.OUNoiseCurrent(2.0, 1.0, 2.0, k).initial_deviation()) for k in keys
    ]
    np.testing.assert_allclose(x[:, 0], x0, rtol=1e-12)
    # stationary standard deviation sigma = 1 (generous: 8 short traces)
    assert 0.75 < np.sqrt(np.mean(x**2)) < 1.25
    # i_stim includes the OU deviation on top of the mean
    first = jax.tree_util.tree_map(lambda leaf: leaf[0], hh)
    np.testing.assert_allclose(
        np.asarray(first.i_stim), 2.0 + x[0], rtol=1e-12, atol=1e-12
    )


def test_ou_noise_with_zero_sigma_is_deterministic(ou_runs):
    keys, hh, _ = ou_runs
    zero = _ou_batch(P, 2.0, 0.0, 2.0, keys)
    det = hhjax.simulate(
        P, hhjax.ConstantCurrent(2.0), t_end=NOISE_T_END, save_every=NOISE_SAVE
    )
    assert np.all(np.asarray(zero.noise[0]) == 0.0)
    # the SDE solver (fixed step) against the adaptive ODE solve
    np.testing.assert_allclose(
        np.asarray(zero.v), np.broadcast_to(np.asarray(det.v), zero.v.shape), atol=1e-2
    )
    # the noisy runs really are different from the deterministic one
    assert np.min(np.max(np.abs(np.asarray(hh.v) - np.asarray(det.v)), axis=1)) > 0.5


def test_ou_noise_voltage_variance_of_passive_membrane():
    # passive membrane: c dV/dt = -g (V - E) + x, x an OU process (std s, corr. time
    # tau); with tau_m = c/g the stationary Var(V) = (s/g)^2 tau / (tau + tau_m).
    g, c, s, tau = 1.0, 1.0, 1.0, 1.0
    tau_m = c / g
    predicted = (s / g) ** 2 * tau / (tau + tau_m)
    passive = hhjax.HHParams(g_na=0.0, g_k=0.0, g_leak=g, c_m=c)
    keys = jax.random.split(jax.random.key(7), N_KEYS)
    res = _ou_batch(passive, 0.0, s, tau, keys)
    assert bool(jnp.all(res.successful))
    keep = np.asarray(res.t[0]) > 10.0  # drop the initial transient
    dv = np.asarray(res.v)[:, keep] - float(passive.e_leak)
    var = np.mean(dv**2)
    assert abs(var / predicted - 1) < 0.25, (var, predicted)
    # and not the (wrong) white-noise-like or unfiltered values
    assert abs(var / (s / g) ** 2 - 1) > 0.25


def test_noise_output_has_one_entry_per_ou_source():
    def run(key):
        k1, k2, k3 = jax.random.split(key, 3)
        stim = (
            hhjax.OUNoiseCurrent(0.0, 1.0, 5.0, k1)
            + hhjax.StepCurrent(1.0, 2.0)
            + hhjax.OUNoiseCurrent(1.0, 0.5, 2.0, k2)
        )
        return hhjax.simulate(P, stim, t_end=5.0, dt0=0.1, save_every=0.5, throw=False)

    shapes = jax.eval_shape(run, jax.random.key(0))
    assert len(shapes.noise) == 2
    assert all(x.shape == (11,) for x in shapes.noise)

    def run_white(key):
        stim = hhjax.WhiteNoiseCurrent(1.0, key) + hhjax.OUNoiseCurrent(
            0.0, 1.0, 5.0, key
        )
        return hhjax.simulate(P, stim, t_end=5.0, dt0=0.1, save_every=0.5, throw=False)

    assert len(jax.eval_shape(run_white, jax.random.key(0)).noise) == 1


def test_white_noise_same_key_same_trace_and_zero_sigma():
    def run(sigma, key):
        return hhjax.simulate(
            P,
            hhjax.WhiteNoiseCurrent(sigma, key, mean=2.0),
            t_end=20.0,
            dt0=0.1,
            save_every=0.1,
            throw=False,
        )

    k0, k1 = jax.random.key(0), jax.random.key(1)
    a, b, c = run(1.0, k0), run(1.0, k0), run(1.0, k1)
    np.testing.assert_array_equal(np.asarray(a.v), np.asarray(b.v))
    assert np.max(np.abs(np.asarray(a.v) - np.asarray(c.v))) > 0.1
    zero = run(0.0, k0)
    det = hhjax.simulate(P, hhjax.ConstantCurrent(2.0), t_end=20.0, save_every=0.1)
    np.testing.assert_allclose(np.asarray(zero.v), np.asarray(det.v), atol=1e-2)
    assert zero.noise == ()


def test_noise_simulation_inside_jit_with_throw():
    @jax.jit
    def run(key):
        stim = hhjax.OUNoiseCurrent(0.0, 1.0, 2.0, key)
        return hhjax.simulate(P, stim, t_end=1.0, dt0=0.1, save_every=0.5).v

    v = run(jax.random.key(0))
    assert v.shape == (3,) and bool(jnp.all(jnp.isfinite(v)))
