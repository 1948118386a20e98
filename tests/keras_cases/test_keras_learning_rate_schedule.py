"""Keras 3's ``keras/src/optimizers/schedules/learning_rate_schedule_test.py``, ported:
the same cases and expected values, run on dl (our code, Keras's facts).  Each test
names the Keras test it comes from."""
import json
import math

import numpy as np
import pytest

import dl
from dl.optimizers import schedules

BACKENDS = ("numpy", "cython", "cuda")


def close(actual, expected, atol=1e-6, rtol=1e-6):
    np.testing.assert_allclose(actual, expected, atol=atol, rtol=rtol)


def roundtrip(schedule):
    """Keras's run_class_serialization_test: config -> object -> the same config, and
    through serialize / deserialize (and JSON) the same."""
    cfg = schedule.get_config()
    again = type(schedule).from_config(cfg)
    assert again.get_config() == cfg
    ser = json.loads(json.dumps(schedules.serialize(schedule)))
    revived = schedules.deserialize(ser)
    assert type(revived) is type(schedule) and revived.get_config() == cfg
    for step in (0, 1, 7, 25):
        assert revived(step) == schedule(step)


# TestFitLRSchedulesFlow.test_fit_lr_correctness
@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_lr_correctness(backend):
    model = dl.Sequential([dl.layers.Dense(2, kernel_initializer="ones",
                                           bias_initializer="ones")], backend=backend)
    optimizer = dl.optimizers.Adam(learning_rate=schedules.ExponentialDecay(
        initial_learning_rate=0.05, decay_steps=1, decay_rate=0.9))
    assert optimizer.iterations == 0
    model.compile(optimizer=optimizer, loss="mse")
    x = np.arange(32).reshape((16, 2))
    y = np.arange(32).reshape((16, 2))
    history = model.fit(x, y, epochs=3, batch_size=4, shuffle=False, verbose=0)
    assert optimizer.iterations == 4 * 3
    close(history.history["loss"], [230.79457092285156, 128.30319213867188,
                                    79.33648681640625], atol=0, rtol=5e-5)


# ExponentialDecayTest
def test_exponential_decay_config():
    roundtrip(schedules.ExponentialDecay(initial_learning_rate=0.05, decay_steps=10,
                                         decay_rate=0.96, staircase=True, name="my_ed"))


def test_exponential_decay_continuous():
    close(schedules.ExponentialDecay(0.05, 10, 0.96)(5), 0.05 * 0.96 ** (5.0 / 10.0))


def test_exponential_decay_staircase():
    decayed_lr = schedules.ExponentialDecay(0.1, 3, 0.96, staircase=True)
    close(decayed_lr(1.0), 0.1)
    close(decayed_lr(2), 0.1)
    close(decayed_lr(100), 0.1 * 0.96 ** (100 // 3))


def test_exponential_decay_variables():
    decayed_lr = schedules.ExponentialDecay(0.1, 3, 0.96, staircase=True)
    # Keras assigns a backend Variable; a 0-d array is dl's counterpart
    close(decayed_lr(np.array(1.0)), 0.1)
    close(decayed_lr(np.array(2.0)), 0.1)
    close(decayed_lr(np.array(100.0)), 0.1 * 0.96 ** (100 // 3))


# PiecewiseConstantDecayTest
def test_piecewise_constant_config():
    roundtrip(schedules.PiecewiseConstantDecay(boundaries=[10, 20], values=[1, 2, 3],
                                               name="my_pcd"))


def test_piecewise_values():
    decayed_lr = schedules.PiecewiseConstantDecay([100, 110, 120], [1.0, 0.1, 0.01, 0.001])
    for step, expected in ((-999.0, 1.0), (100, 1.0), (105, 0.1), (110, 0.1), (120, 0.01),
                           (999, 0.001)):
        close(decayed_lr(step), expected)


def test_piecewise_boundary_values():
    decayed_lr = schedules.PiecewiseConstantDecay([1, 2, 3], [0.4, 0.5, 0.6, 0.7])
    for step, expected in ((0, 0.4), (1, 0.4), (2, 0.5), (3, 0.6), (4, 0.7)):
        close(decayed_lr(np.int64(step)), expected)


# LinearDecayTest (PolynomialDecay, power 1)
def test_linear_decay_config():
    roundtrip(schedules.PolynomialDecay(initial_learning_rate=0.1, decay_steps=100,
                                        end_learning_rate=0.005, power=1.0, cycle=False,
                                        name="my_ld"))


def test_linear_halfway():
    close(schedules.PolynomialDecay(0.05, 10, 0.0)(5), 0.05 * 0.5)


def test_linear_end():
    close(schedules.PolynomialDecay(0.05, 10, 0.001)(10), 0.001)


def test_linear_halfway_with_end():
    close(schedules.PolynomialDecay(0.05, 10, 0.001)(5), (0.05 + 0.001) * 0.5)


def test_linear_beyond_end():
    close(schedules.PolynomialDecay(0.05, 10, 0.001)(15), 0.001)


def test_linear_beyond_end_with_cycle():
    close(schedules.PolynomialDecay(0.05, 10, 0.001, cycle=True)(15),
          (0.05 - 0.001) * 0.25 + 0.001)


# SqrtDecayTest (PolynomialDecay, power 0.5)
def test_sqrt_halfway():
    close(schedules.PolynomialDecay(0.05, 10, 0.0, power=0.5)(5), 0.05 * 0.5 ** 0.5)


def test_sqrt_end():
    close(schedules.PolynomialDecay(0.05, 10, 0.001, power=0.5)(10), 0.001)


def test_sqrt_halfway_with_end():
    close(schedules.PolynomialDecay(0.05, 10, 0.001, power=0.5)(5),
          (0.05 - 0.001) * 0.5 ** 0.5 + 0.001)


def test_sqrt_beyond_end():
    close(schedules.PolynomialDecay(0.05, 10, 0.001, power=0.5)(15), 0.001)


def test_sqrt_beyond_end_with_cycle():
    close(schedules.PolynomialDecay(0.05, 10, 0.001, power=0.5, cycle=True)(15),
          (0.05 - 0.001) * 0.25 ** 0.5 + 0.001)


def test_sqrt_begin_with_cycle():
    close(schedules.PolynomialDecay(0.001, 10, cycle=True)(0), 0.001)


# InverseTimeDecayTest
def test_inverse_time_config():
    roundtrip(schedules.InverseTimeDecay(initial_learning_rate=0.05, decay_steps=10,
                                         decay_rate=0.96, staircase=True, name="my_itd"))


def test_inverse_time_decay():
    decayed_lr = schedules.InverseTimeDecay(0.1, 10, 0.96)
    for i in range(11):
        close(decayed_lr(float(i)), 0.1 / (1 + i / 10 * 0.96))


def test_inverse_time_staircase():
    decayed_lr = schedules.InverseTimeDecay(0.1, 10, 0.96, staircase=True)
    for i in range(11):
        close(decayed_lr(float(i)), 0.1 / (1 + 0.96 * (i // 10)))


# CosineDecayTest
def np_cosine_decay(step, decay_steps, alpha=0.0):
    step = min(step, decay_steps)
    decay = 0.5 * (1.0 + math.cos(math.pi * step / decay_steps))
    return (1.0 - alpha) * decay + alpha


def linear_warmup(step, warmup_steps, initial_lr, target_lr):
    return step / warmup_steps * (target_lr - initial_lr)


def test_cosine_config():
    roundtrip(schedules.CosineDecay(initial_learning_rate=0.05, decay_steps=10, alpha=0.1,
                                    warmup_target=0.2, warmup_steps=2, name="my_cd"))


def test_cosine_decay():
    for step in range(0, 1500, 250):
        close(schedules.CosineDecay(1.0, 1000)(step), np_cosine_decay(step, 1000))


def test_cosine_warmup():
    for step in range(0, 1500, 250):
        lr = schedules.CosineDecay(0.0, 10, warmup_target=10.0, warmup_steps=1500)
        close(lr(step), linear_warmup(step, 1500, 0.0, 10.0))


def test_cosine_alpha():
    for step in range(0, 1500, 250):
        close(schedules.CosineDecay(1.0, 1000, 0.1)(step), np_cosine_decay(step, 1000, 0.1))


def test_cosine_float64():
    for step in range(0, 1500, 250):
        close(schedules.CosineDecay(np.float64(1.0), 1000)(step), np_cosine_decay(step, 1000))


def test_cosine_warmup_decay():
    for step in range(0, 3000, 250):
        lr = schedules.CosineDecay(0.0, 1000, warmup_target=10.0, warmup_steps=2000)
        if step < 2000 + 1:
            expected = linear_warmup(step, 2000, 0.0, 10.0)
        else:
            expected = 10.0 * np_cosine_decay(step - 2000, 1000)
        close(lr(step), expected)


# CosineDecayRestartsTest
def np_cosine_decay_restarts(step, decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0):
    fac = 1.0
    while step >= decay_steps:
        step -= decay_steps
        decay_steps *= t_mul
        fac *= m_mul
    decay = fac * 0.5 * (1.0 + math.cos(math.pi * step / decay_steps))
    return (1.0 - alpha) * decay + alpha


def test_cosine_restarts_config():
    roundtrip(schedules.CosineDecayRestarts(initial_learning_rate=0.05,
                                            first_decay_steps=10, alpha=0.1, t_mul=3.0,
                                            m_mul=4.0, name="my_cdr"))


@pytest.mark.parametrize("initial_lr", [1.0, np.float64(1.0)], ids=["decay", "float64"])
def test_cosine_restarts_decay(initial_lr):
    for step in range(0, 1500, 250):
        close(schedules.CosineDecayRestarts(initial_lr, 1000)(step),
              np_cosine_decay_restarts(step, 1000))


@pytest.mark.parametrize("kwargs", [dict(alpha=0.1), dict(m_mul=0.9), dict(t_mul=1.0)],
                         ids=["alpha", "mmul", "tmul"])
def test_cosine_restarts_variants(kwargs):
    for step in range(0, 1500, 250):
        close(schedules.CosineDecayRestarts(1.0, 1000, **kwargs)(step),
              np_cosine_decay_restarts(step, 1000, **kwargs))
