"""Callbacks: History, EarlyStopping, ModelCheckpoint, TerminateOnNaN, CSVLogger,
LambdaCallback and the progress display, with Keras 3's semantics."""
import csv
import os
import re
import warnings

import numpy as np
import pytest

import dl
from dl import callbacks, layers, optimizers
from dl_helpers import restore_dl_state  # noqa: F401  (autouse fixture)


def _model(lr=0.01, metrics=None):
    dl.utils.set_random_seed(0)
    model = dl.Sequential([layers.Dense(2, activation="tanh", input_shape=(3,)),
                           layers.Dense(1)])
    model.compile(optimizers.SGD(learning_rate=lr), "mse", metrics=metrics)
    model.build()
    return model


def _xy(n=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    return x, (x.sum(axis=1) + 1.0).astype(np.float32)


def _mark(model, value):
    """Set every weight of ``model`` to ``value`` (to recognise restored weights)."""
    model.set_weights([np.full(w.shape, value, w.dtype) for w in model.get_weights()])


def _drive(cb, model, values, key="val_loss"):
    """Run ``cb`` through an epoch loop as fit does, with scripted monitored values; the
    weights at the end of epoch e are all e.  Returns the epochs run."""
    cb.set_model(model)
    cb.set_params({"epochs": len(values), "steps": 1, "verbose": 0})
    model.stop_training = False
    cb.on_train_begin({})
    ran = []
    logs = {}
    for epoch, value in enumerate(values):
        cb.on_epoch_begin(epoch, {})
        _mark(model, float(epoch))
        logs = {"loss": 1.0, key: value}
        cb.on_epoch_end(epoch, logs)
        ran.append(epoch)
        if model.stop_training:
            break
    cb.on_train_end(logs)
    return ran


def _weights_value(model):
    values = {float(v) for w in model.get_weights() for v in np.ravel(w)}
    assert len(values) == 1, values
    return values.pop()


# ---------------------------------------------------------------- History

def test_history():
    model = _model(metrics=["mae"])
    x, y = _xy()
    hist = model.fit(x, y, epochs=3, batch_size=5, validation_data=(x[:4], y[:4]), verbose=0)
    assert hist.epoch == [0, 1, 2]
    assert list(hist.history) == ["loss", "mae", "val_loss", "val_mae"]
    assert all(len(v) == 3 for v in hist.history.values())
    assert hist.model is model and model.history is hist
    assert hist.params["epochs"] == 3 and hist.params["steps"] == 4
    np.testing.assert_allclose(hist.history["val_loss"][-1],
                               model.evaluate(x[:4], y[:4], verbose=0)[0], rtol=1e-6)


# ---------------------------------------------------------- EarlyStopping

@pytest.mark.parametrize("kwargs,values,ran,stopped", [
    # patience 0: stops at the first epoch without improvement (but never at epoch 0)
    (dict(), [1.0, 0.9, 0.95, 0.5], [0, 1, 2], 2),
    (dict(), [1.0], [0], 0),
    # patience 2: two epochs without improvement
    (dict(patience=2), [1.0, 0.9, 0.95, 0.93, 0.5], [0, 1, 2, 3], 3),
    (dict(patience=2), [1.0, 0.9, 0.95, 0.85, 0.9, 0.86, 0.1], [0, 1, 2, 3, 4, 5], 5),
    # equal is not an improvement
    (dict(patience=1), [1.0, 1.0, 0.5], [0, 1], 1),
    # min_delta: improvements smaller than 0.1 do not count
    (dict(patience=2, min_delta=0.1), [1.0, 0.95, 0.92, 0.5], [0, 1, 2], 2),
    (dict(patience=2, min_delta=-0.1), [1.0, 0.95, 0.85, 0.8, 0.79], [0, 1, 2, 3, 4], 4),
    (dict(patience=1, min_delta=0.1), [1.0, 0.85, 0.8, 0.5], [0, 1, 2], 2),
    # baseline: improvements that do not beat the baseline do not reset the wait; an
    # improving epoch never triggers the stop (Keras 3 returns early)
    (dict(patience=2, baseline=0.5), [1.0, 0.9, 0.95, 0.4], [0, 1, 2], 2),
    (dict(patience=2, baseline=0.5), [1.0, 0.9, 0.8, 0.7, 0.6], [0, 1, 2, 3, 4], 0),
    (dict(patience=1, baseline=0.5), [0.4, 0.45, 0.3], [0, 1], 1),
    # start_from_epoch: the first epochs are not watched
    (dict(patience=1, start_from_epoch=2), [5.0, 6.0, 7.0, 1.0, 1.1, 0.5],
     [0, 1, 2, 3, 4], 4),
    (dict(start_from_epoch=3), [1.0, 2.0, 3.0, 4.0, 5.0], [0, 1, 2, 3, 4], 4),
    # mode max
    (dict(patience=1, mode="max"), [0.5, 0.6, 0.55, 0.9], [0, 1, 2], 2),
])
def test_early_stopping_semantics(kwargs, values, ran, stopped):
    model = _model()
    es = callbacks.EarlyStopping(**kwargs)
    assert _drive(es, model, values) == ran
    assert es.stopped_epoch == stopped
    assert model.stop_training == (stopped > 0)


@pytest.mark.parametrize("kwargs,values,best_epoch,restored", [
    (dict(patience=2), [1.0, 0.8, 0.9, 0.95], 1, 1.0),
    # no stop: the best epoch's weights are still restored at the end (Keras 3)
    (dict(patience=5), [1.0, 0.8, 0.9, 0.95], 1, 1.0),
    # the first watched epoch's weights when nothing improves after it
    (dict(patience=1, start_from_epoch=1), [0.1, 1.0, 2.0, 3.0], 1, 1.0),
    # baseline never beaten: the best epoch among those run
    (dict(patience=2, baseline=0.1), [1.0, 0.7, 0.8, 0.9], 1, 1.0),
    (dict(patience=1, mode="max"), [0.1, 0.3, 0.2], 1, 1.0),
])
def test_early_stopping_restore_best_weights(kwargs, values, best_epoch, restored):
    model = _model()
    es = callbacks.EarlyStopping(restore_best_weights=True, **kwargs)
    _drive(es, model, values)
    assert es.best_epoch == best_epoch
    assert _weights_value(model) == restored


def test_early_stopping_without_restore_keeps_last_weights():
    model = _model()
    es = callbacks.EarlyStopping(patience=1)
    ran = _drive(es, model, [1.0, 0.5, 0.7, 0.8])
    assert ran == [0, 1, 2]
    assert _weights_value(model) == 2.0


def test_early_stopping_auto_mode_from_metric_direction():
    model = _model(metrics=["accuracy"])
    es = callbacks.EarlyStopping(monitor="val_accuracy", patience=1)
    assert _drive(es, model, [0.5, 0.6, 0.55, 0.9], key="val_accuracy") == [0, 1, 2]
    model = _model(metrics=["mae"])
    es = callbacks.EarlyStopping(monitor="val_mae", patience=1)
    assert _drive(es, model, [0.5, 0.4, 0.45, 0.1], key="val_mae") == [0, 1, 2]
    es = callbacks.EarlyStopping(monitor="something_else")
    with pytest.raises(ValueError, match="mode"):
        _drive(es, model, [1.0], key="something_else")
    with pytest.warns(UserWarning):
        callbacks.EarlyStopping(mode="sideways")


def test_early_stopping_missing_monitor_warns_and_continues():
    model = _model()
    es = callbacks.EarlyStopping(monitor="val_loss")
    with pytest.warns(UserWarning, match="val_loss"):
        assert _drive(es, model, [1.0, 2.0, 3.0], key="loss_other") == [0, 1, 2]
    assert not model.stop_training


def test_early_stopping_instance_reused():
    model = _model()
    es = callbacks.EarlyStopping(patience=1)
    assert _drive(es, model, [1.0, 0.5, 0.7, 0.8]) == [0, 1, 2]
    # on_train_begin resets wait and stopped_epoch; best carries over (Keras 3)
    assert _drive(es, model, [0.6, 0.4, 0.45, 0.46]) == [0, 1, 2]
    assert es.best == 0.4


def test_early_stopping_in_fit_keras_docstring_example():
    """keras.callbacks.EarlyStopping's docstring: only 4 epochs are run.  (Keras passes
    np.zeros(5) and broadcasts it against the 10 outputs; dl wants the full shape.)"""
    dl.utils.set_random_seed(0)
    model = dl.Sequential([layers.Dense(10)])
    model.compile(optimizers.SGD(), loss="mse")
    es = callbacks.EarlyStopping(monitor="loss", patience=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)    # the run overflows, as in Keras
        history = model.fit(np.arange(100).reshape(5, 20), np.zeros((5, 10)), epochs=10,
                            batch_size=1, callbacks=[es], verbose=0)
    assert len(history.history["loss"]) == 4
    assert es.stopped_epoch == 3


def test_early_stopping_in_fit_restores_weights_of_best_epoch():
    """In a real fit, with val_loss scripted through a callback placed before it."""
    model = _model(lr=0.05)
    x, y = _xy()
    script = [1.0, 0.7, 0.8, 0.75, 0.9, 0.1]
    snapshots = []

    class Script(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = script[epoch]
            snapshots.append(self.model.get_weights())

    es = callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    hist = model.fit(x, y, epochs=6, batch_size=4, callbacks=[Script(), es], verbose=0)
    assert hist.epoch == [0, 1, 2, 3]
    assert es.stopped_epoch == 3 and es.best_epoch == 1
    for a, b in zip(model.get_weights(), snapshots[1]):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------- ModelCheckpoint

def test_checkpoint_every_epoch(tmp_path):
    model = _model(metrics=["mae"])
    x, y = _xy()
    path = str(tmp_path / "ckpt-{epoch:02d}-{loss:.3f}.dlk")
    snapshots = []
    snap = callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: snapshots.append((model.get_weights(), dict(logs))))
    hist = model.fit(x, y, epochs=3, batch_size=8,
                     callbacks=[snap, callbacks.ModelCheckpoint(path, monitor="loss")],
                     verbose=0)
    names = sorted(os.listdir(tmp_path))
    expected = [f"ckpt-{e + 1:02d}-{hist.history['loss'][e]:.3f}.dlk" for e in range(3)]
    assert names == sorted(expected)
    for e, name in enumerate(expected):
        loaded = dl.models.load_model(str(tmp_path / name))
        for a, b in zip(loaded.get_weights(), snapshots[e][0]):
            np.testing.assert_array_equal(a, b)
        assert loaded.optimizer.iterations == 2 * (e + 1)
    final = dl.models.load_model(str(tmp_path / expected[-1]))
    np.testing.assert_array_equal(final.predict(x, verbose=0), model.predict(x, verbose=0))
    assert final.optimizer.iterations == model.optimizer.iterations


@pytest.mark.parametrize("mode,monitor,values,saved", [
    ("min", "val_loss", [1.0, 0.8, 0.9, 0.7, 0.7], [1, 2, 4]),
    ("auto", "val_loss", [1.0, 0.8, 0.9, 0.7, 0.7], [1, 2, 4]),
    ("max", "val_acc", [0.5, 0.4, 0.6, 0.6, 0.9], [1, 3, 5]),
])
def test_checkpoint_save_best_only(tmp_path, mode, monitor, values, saved):
    model = _model()
    ckpt = callbacks.ModelCheckpoint(str(tmp_path / "best-{epoch:02d}.dlk"), monitor=monitor,
                                     mode=mode, save_best_only=True)
    _drive(ckpt, model, values, key=monitor)
    assert sorted(os.listdir(tmp_path)) == [f"best-{e:02d}.dlk" for e in saved]
    for e in saved:      # each file holds the weights at the end of epoch e (1-based)
        assert _weights_value(dl.models.load_model(str(tmp_path / f"best-{e:02d}.dlk"))) \
            == float(e - 1)


def test_checkpoint_save_best_only_single_file_in_fit(tmp_path):
    model = _model()
    x, y = _xy()
    script = [1.0, 0.6, 0.9, 0.8]
    snapshots = []

    class Script(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = script[epoch]
            snapshots.append(self.model.get_weights())

    path = tmp_path / "best.dlk"
    model.fit(x, y, epochs=4, batch_size=4, verbose=0,
              callbacks=[Script(), callbacks.ModelCheckpoint(path, save_best_only=True)])
    loaded = dl.models.load_model(path)
    for a, b in zip(loaded.get_weights(), snapshots[1]):
        np.testing.assert_array_equal(a, b)
    assert sorted(os.listdir(tmp_path)) == ["best.dlk"]     # no temporary files left


def test_checkpoint_auto_mode_follows_the_metric_as_early_stopping(tmp_path):
    """Keras 3: "auto" takes the direction of the loss or of the compiled metric of
    that name; a name it cannot tell is a ValueError (no guessing from "acc")."""
    model = _model()
    ckpt = callbacks.ModelCheckpoint(str(tmp_path / "b-{epoch}.dlk"), monitor="val_acc",
                                     save_best_only=True)
    with pytest.raises(ValueError, match="^monitor: ModelCheckpoint cannot tell whether "
                                         "'val_acc'"):
        _drive(ckpt, model, [0.5], key="val_acc")
    model.compile(optimizer="sgd", loss="mse", metrics=["acc"])
    ckpt = callbacks.ModelCheckpoint(str(tmp_path / "b-{epoch}.dlk"), monitor="val_acc",
                                     save_best_only=True)
    _drive(ckpt, model, [0.5, 0.4, 0.6], key="val_acc")
    assert sorted(os.listdir(tmp_path)) == ["b-1.dlk", "b-3.dlk"]


def test_checkpoint_missing_monitor_warns_and_saves(tmp_path):
    model = _model()
    ckpt = callbacks.ModelCheckpoint(str(tmp_path / "x.dlk"), save_best_only=True)
    with pytest.warns(UserWarning, match="Can save best model only with val_loss available"):
        _drive(ckpt, model, [1.0], key="other")
    assert os.listdir(tmp_path) == ["x.dlk"]          # as Keras 3 (Keras 2 skipped)


def test_checkpoint_save_weights_only(tmp_path):
    model = _model()
    x, y = _xy()
    path = str(tmp_path / "w-{epoch}.weights.dlk")
    model.fit(x, y, epochs=2, callbacks=[callbacks.ModelCheckpoint(path, save_weights_only=True)],
              verbose=0)
    assert sorted(os.listdir(tmp_path)) == ["w-1.weights.dlk", "w-2.weights.dlk"]
    other = _model()
    _mark(other, 0.0)
    other.load_weights(str(tmp_path / "w-2.weights.dlk"))
    for a, b in zip(other.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------- TerminateOnNaN

def test_terminate_on_nan(capsys):
    model = _model(lr=1e6)
    x, y = _xy(32)
    y = y * 1e3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        hist = model.fit(x, y, epochs=50, batch_size=4, callbacks=[callbacks.TerminateOnNaN()],
                         verbose=0)
    losses = hist.history["loss"]
    assert len(losses) < 50
    assert not np.isfinite(losses[-1])
    assert all(np.isfinite(losses[:-1]))
    assert model.stop_training
    assert "Invalid loss, terminating training" in capsys.readouterr().out


def test_terminate_on_nan_stops_mid_epoch():
    model = _model(lr=1e6)
    x, y = _xy(32)
    steps = []
    cb = callbacks.LambdaCallback(on_train_batch_end=lambda b, logs=None: steps.append(b))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model.fit(x, y * 1e3, epochs=1, batch_size=1,
                  callbacks=[callbacks.TerminateOnNaN(), cb], verbose=0)
    assert len(steps) < 32


# --------------------------------------------------------------- CSVLogger

def test_csv_logger(tmp_path):
    model = _model(metrics=["mae"])
    x, y = _xy()
    path = tmp_path / "log.csv"
    hist = model.fit(x, y, epochs=3, validation_split=0.25, verbose=0,
                     callbacks=[callbacks.CSVLogger(path)])
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", "loss", "mae", "val_loss", "val_mae"]
    assert len(rows) == 4
    for e, row in enumerate(rows[1:]):
        assert int(row[0]) == e
        for key, value in zip(rows[0][1:], row[1:]):
            np.testing.assert_allclose(float(value), hist.history[key][e], rtol=1e-12)
    # append=True adds rows, not a second header; the default overwrites
    model.fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.CSVLogger(path, append=True)])
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert len(rows) == 6 and rows.count(rows[0]) == 1
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.CSVLogger(path, separator=";")])
    lines = path.read_text().splitlines()
    assert lines == [lines[0], lines[1]] and lines[0].startswith("epoch;loss;mae")


# ----------------------------------------------------------- LambdaCallback

def test_lambda_callback_keras_signatures():
    """Keras's LambdaCallback: on_epoch_* and on_train_batch_* take (index, logs),
    on_train_begin/end take (logs)."""
    model = _model()
    x, y = _xy(10)
    calls = []
    cb = callbacks.LambdaCallback(
        on_train_begin=lambda logs: calls.append(("train_begin", logs)),
        on_epoch_begin=lambda epoch, logs: calls.append(("epoch_begin", epoch, logs)),
        on_train_batch_begin=lambda batch, logs: calls.append(("batch_begin", batch, logs)),
        on_train_batch_end=lambda batch, logs: calls.append(("batch_end", batch, dict(logs))),
        on_epoch_end=lambda epoch, logs: calls.append(("epoch_end", epoch, dict(logs))),
        on_train_end=lambda logs: calls.append(("train_end", dict(logs))))
    hist = model.fit(x, y, epochs=2, batch_size=4, callbacks=[cb], verbose=0)
    kinds = [c[0] for c in calls]
    assert kinds == (["train_begin"] + (["epoch_begin"] + ["batch_begin", "batch_end"] * 3
                                        + ["epoch_end"]) * 2 + ["train_end"])
    assert [c[1] for c in calls if c[0] == "epoch_begin"] == [0, 1]
    assert [c[1] for c in calls if c[0] == "batch_end"] == [0, 1, 2, 0, 1, 2]
    epoch_logs = [c[2] for c in calls if c[0] == "epoch_end"]
    assert [e["loss"] for e in epoch_logs] == hist.history["loss"]
    assert calls[-1][1]["loss"] == hist.history["loss"][-1]


def test_lambda_callback_hooks_with_optional_logs():
    """The same hooks, written to tolerate a missing logs argument: the call order and
    the arguments dl passes."""
    model = _model()
    x, y = _xy(10)
    calls = []
    cb = callbacks.LambdaCallback(
        on_train_begin=lambda logs=None: calls.append("train_begin"),
        on_epoch_begin=lambda epoch, logs=None: calls.append(("epoch_begin", epoch)),
        on_train_batch_end=lambda batch, logs=None: calls.append(("batch_end", batch,
                                                                  sorted(logs))),
        on_epoch_end=lambda epoch, logs=None: calls.append(("epoch_end", epoch, sorted(logs))),
        on_train_end=lambda logs=None: calls.append("train_end"))
    model.fit(x, y, epochs=2, batch_size=5, validation_split=0.2, callbacks=[cb], verbose=0)
    assert calls == ["train_begin",
                     ("epoch_begin", 0), ("batch_end", 0, ["loss"]), ("batch_end", 1, ["loss"]),
                     ("epoch_end", 0, ["loss", "val_loss"]),
                     ("epoch_begin", 1), ("batch_end", 0, ["loss"]), ("batch_end", 1, ["loss"]),
                     ("epoch_end", 1, ["loss", "val_loss"]),
                     "train_end"]


def test_lambda_callback_unknown_hook():
    with pytest.raises(TypeError, match="on_nothing"):
        callbacks.LambdaCallback(on_nothing=lambda: None)


def test_callbacks_must_be_callback_instances():
    model = _model()
    x, y = _xy()
    with pytest.raises(TypeError, match="callbacks"):
        model.fit(x, y, callbacks=[lambda: None], verbose=0)


def test_custom_callback_stop_training_and_test_hooks():
    class StopAfterTwo(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.stop_training = True

    model = _model()
    x, y = _xy()
    hist = model.fit(x, y, epochs=10, callbacks=[StopAfterTwo()], verbose=0)
    assert hist.epoch == [0, 1]

    seen = []

    class Test(callbacks.Callback):
        def on_test_batch_end(self, batch, logs=None):
            seen.append((batch, round(logs["loss"], 6)))

        def on_test_end(self, logs=None):
            seen.append(("end", round(logs["loss"], 6)))

    loss = model.evaluate(x, y, batch_size=8, callbacks=[Test()], verbose=0)
    assert [s[0] for s in seen] == [0, 1, "end"]
    assert seen[-1][1] == round(loss, 6)


# ---------------------------------------------------------------- progress

PROGRESS_LINE = re.compile(r"^(\d+)/(\d+) ━{20} \d+s \d+(us|ms|s)/step - loss: \d+\.\d{4}$")


def test_verbose_1_output(capsys):
    model = _model()
    x, y = _xy()
    model.fit(x, y * 10, epochs=2, batch_size=4, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    assert "━" in out and "- loss:" in out
    lines = [line.split("\r")[-1].rstrip() for line in out.splitlines() if line.strip()]
    assert lines[0] == "Epoch 1/2"
    bars = [line for line in lines if "━" in line]
    assert len(bars) == 2
    for bar in bars:
        m = PROGRESS_LINE.match(bar)
        assert m, bar
        assert m.group(1) == m.group(2) == "4"


def test_verbose_auto_is_1(capsys):
    model = _model()
    x, y = _xy()
    model.fit(x, y * 10, epochs=1)
    out = capsys.readouterr().out
    assert "━" in out and "Epoch" not in out       # no header for a single epoch


def test_verbose_2_one_line_per_epoch(capsys):
    model = _model(metrics=["mae"])
    x, y = _xy()
    model.fit(x, y * 10, epochs=3, batch_size=4, validation_split=0.25, verbose=2)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert lines[0::2] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    for line in lines[1::2]:
        assert re.match(r"^3/3 - \d+s - \d+(us|ms|s)/step - loss: \d+\.\d{4} - mae: \d+\.\d{4}"
                        r" - val_loss: \d+\.\d{4} - val_mae: \d+\.\d{4}$", line), line
        assert "━" not in line
    assert len(lines) == 6


def test_verbose_0_prints_nothing(capsys):
    model = _model()
    x, y = _xy()
    model.fit(x, y, epochs=2, verbose=0)
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    assert capsys.readouterr().out == ""


def test_evaluate_and_predict_progress(capsys):
    model = _model()
    x, y = _xy(40)
    model.evaluate(x, y * 10)
    out = capsys.readouterr().out
    assert re.match(r"^2/2 ━{20} \d+s \d+(us|ms|s)/step - loss: \d+\.\d{4}$",
                    out.splitlines()[-1].split("\r")[-1].rstrip())
    model.predict(x)
    out = capsys.readouterr().out
    assert re.match(r"^2/2 ━{20} \d+s \d+(us|ms|s)/step$",
                    out.splitlines()[-1].split("\r")[-1].rstrip())


def test_checkpoint_initial_value_threshold(tmp_path):
    model = _model()
    ckpt = callbacks.ModelCheckpoint(str(tmp_path / "c-{epoch}.dlk"), save_best_only=True,
                                     initial_value_threshold=0.5)
    _drive(ckpt, model, [0.9, 0.6, 0.4, 0.45, 0.3])
    assert sorted(os.listdir(tmp_path)) == ["c-3.dlk", "c-5.dlk"]


# ------------------------------------------------- arguments checked at construction
# A bad argument raises TypeError/ValueError whose message starts with its name
# (tests/dl/test_fuzz_dl.py), when the callback is made, not in the middle of fit.

def _raises(exc, start, make):
    with pytest.raises(exc) as info:
        make()
    assert str(info.value).startswith(start), str(info.value)


@pytest.mark.parametrize("kwargs,exc,start", [
    (dict(monitor=3), TypeError, "monitor: expected the name of a log entry"),
    (dict(min_delta="x"), TypeError, "min_delta: expected a real number, got str 'x'"),
    (dict(min_delta=np.nan), ValueError, "min_delta: expected a finite number"),
    (dict(patience=1.5), TypeError, "patience: expected an integer, got float 1.5"),
    (dict(patience=-1), ValueError, "patience: expected an integer >= 0"),
    (dict(verbose="x"), TypeError, "verbose: expected an integer"),
    (dict(mode=["min"]), TypeError, "mode: expected 'auto', 'min' or 'max'"),
    (dict(baseline="x"), TypeError, "baseline: expected a real number"),
    (dict(restore_best_weights="yes"), TypeError, "restore_best_weights: expected True or"),
    (dict(start_from_epoch=-1), ValueError, "start_from_epoch: expected an integer >= 0"),
    (dict(start_from_epoch=None), TypeError, "start_from_epoch: expected an integer"),
])
def test_early_stopping_arguments_named(kwargs, exc, start):
    _raises(exc, start, lambda: callbacks.EarlyStopping(**kwargs))


def test_early_stopping_keras_lenient_arguments_kept():
    es = callbacks.EarlyStopping(min_delta=-0.1, patience=np.int64(2), verbose=True,
                                 baseline=np.float32(0.5), start_from_epoch=1)
    assert es.min_delta == 0.1 and es.patience == 2 and es.verbose == 1
    with pytest.warns(UserWarning, match="mode 'bogus' is unknown"):    # Keras: a warning
        assert callbacks.EarlyStopping(mode="bogus").mode == "auto"


def test_early_stopping_undecidable_monitor_names_monitor():
    model = _model()
    x, y = _xy()
    with pytest.raises(ValueError, match=r"^monitor: EarlyStopping cannot tell whether 'custom'"):
        model.fit(x, y, verbose=0, callbacks=[callbacks.EarlyStopping(monitor="custom")])


@pytest.mark.parametrize("kwargs,exc,start", [
    (dict(filepath=3), TypeError, "filepath: expected a str or os.PathLike path, got int 3"),
    (dict(filepath=b"ck.dlk"), TypeError, "filepath: expected a str or os.PathLike path"),
    (dict(filepath=""), ValueError, "filepath: expected a non-empty path"),
    (dict(filepath="ck\x00.dlk"), ValueError, "filepath: expected a path without NUL"),
    (dict(filepath="ck-{epoch:zz}.dlk"), ValueError,
     "filepath: expected a template that formats with an int epoch and float log values"),
    (dict(filepath="ck-{loss:d}.dlk"), ValueError, "filepath: expected a template that formats"),
    (dict(filepath="ck-{epoch!x}.dlk"), ValueError, "filepath: expected a template that formats"),
    (dict(filepath="ck-{epoch:d}{"), ValueError, "filepath: expected a valid format template"),
    (dict(filepath="ck-}.dlk"), ValueError, "filepath: expected a valid format template"),
    (dict(filepath="ck-{}.dlk"), ValueError, "filepath: expected named fields such as {epoch}"),
    (dict(filepath="ck-{0}.dlk"), ValueError, "filepath: expected named fields"),
    (dict(filepath="ck-{epoch.real}.dlk"), ValueError, "filepath: expected named fields"),
    (dict(filepath="ck-{epoch:{w}}.dlk"), ValueError, "filepath: expected a plain format spec"),
    (dict(filepath="ck-{epoch:999999999}.dlk"), ValueError, "filepath: expected a plain format"),
    (dict(monitor=None), TypeError, "monitor: expected the name of a log entry"),
    (dict(verbose=[1]), TypeError, "verbose: expected an integer"),
    (dict(save_best_only="yes"), TypeError, "save_best_only: expected True or False"),
    (dict(save_weights_only=1), TypeError, "save_weights_only: expected True or False"),
    (dict(mode=3), TypeError, "mode: expected 'auto', 'min' or 'max'"),
    (dict(save_freq="batch"), ValueError, "save_freq: expected 'epoch' or a positive int"),
    (dict(save_freq=0), ValueError, "save_freq: expected an integer >= 1"),
    (dict(save_freq=[1]), TypeError, "save_freq: expected an integer"),
    (dict(save_freq=10), ValueError, "save_freq: only 'epoch' is supported"),
    (dict(initial_value_threshold="x"), TypeError, "initial_value_threshold: expected a real"),
])
def test_checkpoint_arguments_named(tmp_path, kwargs, exc, start):
    kwargs = {"filepath": str(tmp_path / "ck-{epoch}.dlk"), **kwargs}
    _raises(exc, start, lambda: callbacks.ModelCheckpoint(**kwargs))


def test_checkpoint_template_fields_must_be_log_keys(tmp_path):
    model = _model(metrics=["mae"])
    x, y = _xy()
    ckpt = callbacks.ModelCheckpoint(str(tmp_path / "ck-{nope}.dlk"))
    with pytest.raises(ValueError, match=r"^filepath: \{nope\} is not a key of the logs: "
                                         r"expected \{epoch\} or one of loss, mae, val_loss"):
        model.fit(x, y, verbose=0, callbacks=[ckpt])
    assert model.optimizer.iterations == 0 and os.listdir(tmp_path) == []   # before training
    # a validation key without validation data: named when the epoch's logs lack it
    ckpt = callbacks.ModelCheckpoint(str(tmp_path / "ck-{val_mae:.3f}.dlk"))
    with pytest.raises(ValueError, match=r"^filepath: \{val_mae\} is not in the logs of epoch 1"):
        model.fit(x, y, verbose=0, callbacks=[ckpt])
    # the Keras templates work, a pathlib.Path too
    ckpt = callbacks.ModelCheckpoint(tmp_path / "ok-{epoch:02d}-{val_loss:.2f}-{mae!r}.dlk",
                                     monitor="val_loss")
    model.fit(x, y, epochs=2, verbose=0, validation_split=0.25, callbacks=[ckpt])
    assert len([f for f in os.listdir(tmp_path) if f.startswith("ok-0")]) == 2


@pytest.mark.parametrize("kwargs,exc,start", [
    (dict(filename=3), TypeError, "filename: expected a str or os.PathLike path, got int 3"),
    (dict(filename=""), ValueError, "filename: expected a non-empty path"),
    (dict(filename="log\x00.csv"), ValueError, "filename: expected a path without NUL"),
    (dict(separator=";;"), TypeError, "separator: expected a 1-character str, got str ';;'"),
    (dict(separator=""), TypeError, "separator: expected a 1-character str"),
    (dict(separator=3), TypeError, "separator: expected a 1-character str, got int 3"),
    (dict(append="yes"), TypeError, "append: expected True or False, got str 'yes'"),
])
def test_csv_logger_arguments_named(tmp_path, kwargs, exc, start):
    kwargs = {"filename": str(tmp_path / "log.csv"), **kwargs}
    _raises(exc, start, lambda: callbacks.CSVLogger(**kwargs))


def test_csv_logger_path_like(tmp_path):
    model = _model()
    x, y = _xy()
    model.fit(x, y, verbose=0, callbacks=[callbacks.CSVLogger(tmp_path / "log.csv")])
    assert (tmp_path / "log.csv").read_text().startswith("epoch,loss")


@pytest.mark.parametrize("kwargs,start", [
    (dict(on_epoch_end=3), "on_epoch_end: expected None or a function called as "
                           "on_epoch_end(epoch, logs), got int 3"),
    (dict(on_train_batch_end="f"), "on_train_batch_end: expected None or a function called "
                                   "as on_train_batch_end(batch, logs)"),
    (dict(on_train_begin=lambda epoch, logs: None), "on_train_begin: expected None or a "
                                                    "function called as on_train_begin(logs)"),
    (dict(on_epoch_begin=lambda: None), "on_epoch_begin: expected None or a function"),
    (dict(on_epoch_end=float), "on_epoch_end: expected None or a function"),
    (dict(on_epoch_end=int), "on_epoch_end: expected None or a function"),
])
def test_lambda_callback_hooks_must_be_callable_with_the_hook_arguments(kwargs, start):
    _raises(TypeError, start, lambda: callbacks.LambdaCallback(**kwargs))


def test_lambda_callback_accepts_any_matching_callable(capsys):
    model = _model()
    x, y = _xy()
    seen = []
    cb = callbacks.LambdaCallback(on_epoch_end=print, on_train_begin=lambda *a: seen.append(a),
                                  on_train_end=seen.append)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[cb])
    assert len(seen) == 2 and capsys.readouterr().out.startswith("0 {'loss'")


def test_progbar_logger_verbose_checked():
    _raises(ValueError, "verbose: expected 0, 1 or 2, got 'x'",
            lambda: callbacks.ProgbarLogger(verbose="x"))
    _raises(ValueError, "verbose: expected 0, 1 or 2", lambda: callbacks.ProgbarLogger(verbose=3))
