"""Keras 3's ``keras/src/callbacks/reduce_lr_on_plateau_test.py`` and
``keras/src/callbacks/learning_rate_scheduler_test.py``, ported: the same cases and
expected values, run on dl.

Deliberate difference: dl's learning rate is a Python float (double); Keras keeps a
float32 variable.  Where Keras compares the reduced rate exactly, these compare to
float64 rounding (docs/keras-differences.md).
"""
import numpy as np
import pytest

import dl
from dl import callbacks, optimizers
from dl.optimizers import schedules
from keras_data import get_test_data


def close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=0)


def plateau_setup(**compile_kwargs):
    (x_train, y_train), (x_test, y_test) = get_test_data(10, 10, (3,), 2)
    y_train = dl.utils.to_categorical(y_train)
    y_test = dl.utils.to_categorical(y_test)
    model = dl.Sequential([dl.layers.Dense(5), dl.layers.Dense(2)])
    model.compile(loss="mse", optimizer=compile_kwargs.get("optimizer", optimizers.Adam(0.1)))
    return model, x_train, y_train, x_test, y_test


# ReduceLROnPlateauTest.test_reduces_lr_with_model_fit
def test_reduces_lr_with_model_fit():
    model, x, y, xt, yt = plateau_setup()
    reduce_lr = callbacks.ReduceLROnPlateau(patience=1, factor=0.1, monitor="val_loss",
                                            min_delta=100)
    model.fit(x, y, validation_data=(xt, yt), callbacks=[reduce_lr], epochs=2, verbose=0)
    close(model.optimizer.learning_rate, 0.01)


# ReduceLROnPlateauTest.test_throws_when_optimizer_has_schedule
def test_plateau_throws_when_optimizer_has_schedule():
    model, x, y, xt, yt = plateau_setup()
    reduce_lr = callbacks.ReduceLROnPlateau(patience=1, factor=0.1, monitor="val_loss",
                                            min_delta=100)
    model.compile(loss="mse", optimizer=optimizers.Adam(schedules.PolynomialDecay(
        initial_learning_rate=0.1, decay_steps=10)))
    with pytest.raises(TypeError, match="This optimizer was created with a "
                                        "`LearningRateSchedule`"):
        model.fit(x, y, validation_data=(xt, yt), callbacks=[reduce_lr], epochs=2,
                  verbose=0)


# ReduceLROnPlateauTest.test_verbose_logging (Keras logs; dl prints, as its callbacks do)
def test_plateau_verbose_logging(capsys):
    model, x, y, xt, yt = plateau_setup()
    reduce_lr = callbacks.ReduceLROnPlateau(patience=1, factor=0.1, monitor="val_loss",
                                            min_delta=100, verbose=1)
    model.fit(x, y, validation_data=(xt, yt), callbacks=[reduce_lr], epochs=2, verbose=0)
    assert "ReduceLROnPlateau reducing learning rate to 0.01" in capsys.readouterr().out


# ReduceLROnPlateauTest.test_honors_min_lr
def test_plateau_honors_min_lr():
    model, x, y, xt, yt = plateau_setup()
    reduce_lr = callbacks.ReduceLROnPlateau(patience=1, factor=0.1, monitor="val_loss",
                                            min_delta=10, min_lr=0.005)
    model.fit(x, y, validation_data=(xt, yt), callbacks=[reduce_lr], epochs=4, verbose=0)
    assert model.optimizer.learning_rate == 0.005


# ReduceLROnPlateauTest.test_cooldown
def test_plateau_cooldown():
    model, x, y, xt, yt = plateau_setup()
    reduce_lr = callbacks.ReduceLROnPlateau(patience=1, factor=0.1, monitor="val_loss",
                                            min_delta=100, cooldown=2)
    model.fit(x, y, validation_data=(xt, yt), callbacks=[reduce_lr], epochs=4, verbose=0)
    # a cooldown of 2 epochs: reduced every other epoch, twice in 4 epochs
    close(model.optimizer.learning_rate, 0.001)


# ReduceLROnPlateauTest.test_state_reset_across_fit_calls
def test_plateau_state_reset_across_fit_calls():
    model, *_ = plateau_setup()
    reduce_lr = callbacks.ReduceLROnPlateau(patience=1, factor=0.1, monitor="loss",
                                            min_delta=0, cooldown=2)
    reduce_lr.set_model(model)
    reduce_lr.on_train_begin()
    reduce_lr.best, reduce_lr.wait, reduce_lr.cooldown_counter = 0.5, 3, 2
    reduce_lr.on_train_begin()
    assert reduce_lr.best is None
    assert reduce_lr.wait == 0 and reduce_lr.cooldown_counter == 0


def scheduler_setup():
    (x_train, y_train), _ = get_test_data(10, 10, (3,), 2)
    y_train = dl.utils.to_categorical(y_train)
    model = dl.Sequential([dl.layers.Dense(5), dl.layers.Dense(2)])
    model.compile(loss="mse", optimizer="sgd")
    return model, x_train, y_train


# LearningRateSchedulerTest.test_updates_learning_rate
def test_scheduler_updates_learning_rate():
    model, x, y = scheduler_setup()
    lr_scheduler = callbacks.LearningRateScheduler(lambda step: 1.0 / (2.0 + step),
                                                   verbose=1)
    model.fit(x, y, callbacks=[lr_scheduler], epochs=1, verbose=0)
    assert model.optimizer.learning_rate == 0.5


# LearningRateSchedulerTest.test_verbose_logging
def test_scheduler_verbose_logging(capsys):
    model, x, y = scheduler_setup()
    lr_scheduler = callbacks.LearningRateScheduler(lambda step: 1.0 / (1.0 + step),
                                                   verbose=1)
    model.fit(x, y, callbacks=[lr_scheduler], epochs=1, verbose=0)
    assert "LearningRateScheduler setting learning rate to 1.0" in capsys.readouterr().out


# LearningRateSchedulerTest.test_schedule_dependent_on_previous_learning_rate
def test_schedule_dependent_on_previous_learning_rate():
    model, x, y = scheduler_setup()
    lr_scheduler = callbacks.LearningRateScheduler(lambda step, lr: lr / 2)
    model.compile(loss="mse", optimizer=optimizers.Adam(0.03))
    model.fit(x, y, callbacks=[lr_scheduler], epochs=2, verbose=0)
    assert model.optimizer.learning_rate == 0.03 / 4.0


# LearningRateSchedulerTest.test_throws_when_optimizer_has_schedule
def test_scheduler_throws_when_optimizer_has_schedule():
    model, x, y = scheduler_setup()
    lr_scheduler = callbacks.LearningRateScheduler(lambda step, lr: lr / 2)
    model.compile(loss="mse", optimizer=optimizers.Adam(schedules.PolynomialDecay(
        initial_learning_rate=0.1, decay_steps=10)))
    with pytest.raises(TypeError, match="This optimizer was created with a "
                                        "`LearningRateSchedule`"):
        model.fit(x, y, callbacks=[lr_scheduler], epochs=2, verbose=0)


# LearningRateSchedulerTest.test_learning_rate_in_history
def test_learning_rate_in_history():
    model, x, y = scheduler_setup()
    history = model.fit(x, y, callbacks=[callbacks.LearningRateScheduler(
        lambda step, lr: 0.5)], epochs=1, verbose=0)
    assert "learning_rate" in history.history
    assert type(history.history["learning_rate"][0]) is float
    assert history.history["learning_rate"][0] == 0.5
