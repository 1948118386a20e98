"""Keras 3's callback tests, ported: the same cases and expected facts, run on dl.

Ported from ``keras/src/callbacks/``: ``early_stopping_test.py``,
``monitor_callback_test.py``, ``terminate_on_nan_test.py``, ``csv_logger_test.py``,
``lambda_callback_test.py``, ``model_checkpoint_test.py`` and ``callback_test.py``.
Each test names the Keras test (``Class.method``, and the case) it comes from.  The code
is ours (seeded NumPy data instead of ``np.random``, dl models, a list of the hooks
called where Keras asserts on ``logging`` output); the expected facts are Keras's.

Deliberate differences (docs/keras-differences.md):

- ``fit`` refuses NaN/inf in ``y``, so the cases that train on ``y = inf`` make the loss
  overflow instead: a sample whose ``x @ kernel`` overflows float32 (non-finite loss at
  batch 0), or ``SGD`` with a learning rate of 1e37 (finite loss at batch 0, infinite
  weights after its step, non-finite loss at batch 1).
- ``TerminateOnNaN`` keeps the weights of the last finite step, so after the
  non-finite step the validation loss is ``inf`` (the initial weights' loss
  overflowing), where Keras's NaN weights give ``nan``: ``CSVLoggerTest.
  test_stop_training_csv`` finds ``inf`` in the last row where Keras finds ``nan``.
- ``ModelCheckpoint(save_freq=<int>)`` is a ``ValueError`` (only ``"epoch"``); an
  unknown str is a ``ValueError`` whose message starts with ``save_freq:`` (dl's style)
  instead of Keras's ``Unrecognized save_freq``.  dl saves in its own format, so the
  files are ``.dlk`` (Keras's ``.keras``/``.weights.h5`` suffix rules do not apply).
- ``LambdaCallback(custom_method=...)``: dl refuses a keyword that is not a callback
  hook (``TypeError``); Keras stores it as an attribute.
- ``EarlyStopping.monitor_op`` is ``np.less``/``np.greater`` (Keras: ``ops.less``/
  ``ops.greater``).
- ``CallbackTest``: Keras counts the forward passes with a subclassed model's variable;
  dl has no subclassed models and counts the optimizer's steps.
- ``ModelCheckpointTest.test_model_checkpoint_loading`` builds a functional model in
  Keras; here the same layers in a ``Sequential``.

Not ported:

- The ``"hinge"`` and ``F1Score`` cases of ``EarlyStoppingTest.test_early_stopping`` and
  ``MonitorCallbackTest.test_monitor_op_logic``, and case 15 (``AUC``) of
  ``ModelCheckpointTest.test_model_checkpoint_options``: dl has no hinge, F1 or AUC
  metric.
- Cases 8a, 8b, 10a, 10b of ``test_model_checkpoint_options`` (checkpoints every
  ``save_freq`` batches, ``{batch}`` in the file name): dl saves per epoch only; the
  refusal of an int ``save_freq`` is tested instead.
- Keras's ``.keras``/``.h5`` formats, tf.data/generators, distribution, TensorBoard,
  ``steps_per_execution``, functional and subclassed models, custom layers.
"""
import csv
import os
import re
import warnings

import numpy as np
import pytest

import dl
from dl import callbacks, initializers, layers, optimizers
from keras_data import get_test_data

TRAIN_SAMPLES = 10
TEST_SAMPLES = 10
INPUT_DIM = 3
BATCH_SIZE = 4


def random_data(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.random(shape) for shape in shapes]


# ------------------------------------------------------------------ EarlyStopping

def two_relu_model():
    return dl.Sequential([dl.Input((5,)), layers.Dense(1, activation="relu"),
                          layers.Dense(1, activation="relu")])


# EarlyStoppingTest.test_early_stopping (without the "hinge" and F1Score cases)
def test_early_stopping():
    x_train, y_train, x_test, y_test = random_data((10, 5), (10, 1), (10, 5), (10, 1))
    model = two_relu_model()
    model.compile(loss="mae", optimizer="adam", metrics=["mse", "acc", "accuracy"])
    cases = [
        ("max", "val_mse", "max"),
        ("min", "val_loss", "min"),
        ("auto", "val_mse", "min"),
        ("auto", "loss", "min"),
        ("auto", "acc", "max"),
        ("auto", "val_accuracy", "max"),
    ]
    for mode, monitor, expected_mode in cases:
        cbks = [callbacks.EarlyStopping(patience=0, monitor=monitor, mode=mode)]
        model.fit(x_train, y_train, batch_size=5, validation_data=(x_test, y_test),
                  callbacks=cbks, epochs=2, verbose=0)
        expected = np.greater if expected_mode == "max" else np.less
        assert cbks[0].monitor_op is expected, (mode, monitor)

    with pytest.raises(ValueError):
        cbks = [callbacks.EarlyStopping(patience=0, monitor="unknown")]
        model.fit(x_train, y_train, batch_size=5, validation_data=(x_test, y_test),
                  callbacks=cbks, epochs=2, verbose=0)


# EarlyStoppingTest.test_early_stopping_patience
@pytest.mark.parametrize("patience", [0, 1, 2, 3])
def test_early_stopping_patience(patience):
    losses = [10.0, 9.0, 8.0, 9.0, 8.9, 8.8, 8.7, 8.6, 8.5]
    stopper = callbacks.EarlyStopping(monitor="loss", patience=patience)
    stopper.set_model(dl.Sequential())
    stopper.model.compile(loss="mse", optimizer="sgd")
    stopper.on_train_begin()
    for epoch, loss in enumerate(losses):
        stopper.on_epoch_end(epoch=epoch, logs={"loss": loss})
        if stopper.model.stop_training:
            break
    assert stopper.stopped_epoch == max(patience, 1) + 2


# EarlyStoppingTest.test_early_stopping_reuse
def test_early_stopping_reuse():
    patience = 3
    data, = random_data((100, 1))
    labels = np.where(data > 0.5, 1, 0)
    model = dl.Sequential([dl.Input((1,)), layers.Dense(1, activation="relu"),
                           layers.Dense(1, activation="relu")])
    model.compile(optimizer="sgd", loss="mae", metrics=["mse"])
    stopper = callbacks.EarlyStopping(monitor="mse", patience=patience)
    history1 = model.fit(data, labels, callbacks=[stopper], verbose=0, epochs=20)
    assert len(history1.epoch) >= patience
    history2 = model.fit(data, labels, callbacks=[stopper], verbose=0, epochs=20)
    assert len(history2.epoch) >= patience


# EarlyStoppingTest.test_state_reset_across_fit_calls
def test_early_stopping_state_reset_across_fit_calls():
    stopper = callbacks.EarlyStopping(monitor="loss", patience=3)
    stopper.set_model(dl.Sequential())
    stopper.on_train_begin()
    stopper.best = 0.1
    stopper.wait = 3
    stopper.stopped_epoch = 5
    stopper.best_epoch = 5
    stopper.best_weights = object()
    stopper.on_train_begin()
    assert stopper.best is None
    assert stopper.wait == 0
    assert stopper.stopped_epoch == 0
    assert stopper.best_epoch == 0
    assert stopper.best_weights is None


# EarlyStoppingTest.test_early_stopping_with_baseline
def test_early_stopping_with_baseline():
    x_train, y_train = random_data((10, 5), (10, 1))
    model = two_relu_model()
    model.compile(optimizer="sgd", loss="mae", metrics=["mse"])
    patience = 3
    stopper = callbacks.EarlyStopping(monitor="mse", patience=patience, baseline=0.6)
    hist = model.fit(x_train, y_train, callbacks=[stopper], verbose=0, epochs=20)
    assert len(hist.epoch) >= patience


class DummyModel:
    """Keras's stand-in model: its "weights" are the epoch they were set at."""

    def __init__(self):
        self.stop_training = False
        self.weights = -1

    def get_weights(self):
        return self.weights

    def set_weights(self, weights):
        self.weights = weights

    def set_weight_to_epoch(self, epoch):
        self.weights = epoch


def run_dummy(early_stop, losses, stop_at=None):
    """Keras's loop: set the weights to the epoch, end the epoch, stop when asked (or
    when another callback asks at ``stop_at``); the number of epochs trained."""
    early_stop.set_model(DummyModel())
    epochs_trained = 0
    early_stop.on_train_begin()
    for epoch in range(len(losses)):
        epochs_trained += 1
        early_stop.model.set_weight_to_epoch(epoch=epoch)
        early_stop.on_epoch_end(epoch, logs={"val_loss": losses[epoch]})
        if epoch == stop_at:
            early_stop.model.stop_training = True
        if early_stop.model.stop_training:
            break
    early_stop.on_train_end()
    return epochs_trained


# EarlyStoppingTest.test_early_stopping_final_weights_when_restoring_model_weights
def test_early_stopping_final_weights_when_restoring_model_weights():
    early_stop = callbacks.EarlyStopping(monitor="val_loss", patience=2,
                                         restore_best_weights=True)
    run_dummy(early_stop, [0.2, 0.15, 0.1, 0.11, 0.12])
    # the best epoch is 2 (loss 0.1): its weights are restored
    assert early_stop.model.get_weights() == 2

    # no epoch beats the baseline: 5 epochs (patience), the best one's weights
    early_stop = callbacks.EarlyStopping(monitor="val_loss", patience=5, baseline=0.5,
                                         restore_best_weights=True)
    epochs_trained = run_dummy(early_stop, [0.9, 0.8, 0.7, 0.71, 0.72, 0.73])
    assert epochs_trained == 5
    assert early_stop.model.get_weights() == 2

    # another callback stops training: the best weights are restored all the same
    early_stop = callbacks.EarlyStopping(monitor="val_loss", patience=5, baseline=0.5,
                                         restore_best_weights=True)
    epochs_trained = run_dummy(early_stop, [0.9, 0.8, 0.7, 0.71, 0.72, 0.73], stop_at=3)
    assert epochs_trained == 4
    assert early_stop.model.get_weights() == 2


# EarlyStoppingTest.test_early_stopping_with_start_from_epoch
def test_early_stopping_with_start_from_epoch():
    x_train, y_train = random_data((10, 5), (10, 1))
    model = two_relu_model()
    model.compile(optimizer="sgd", loss="mae", metrics=["mse"])
    start_from_epoch, patience = 2, 3
    stopper = callbacks.EarlyStopping(monitor="mse", patience=patience,
                                      start_from_epoch=start_from_epoch)
    history = model.fit(x_train, y_train, callbacks=[stopper], verbose=0, epochs=20)
    assert len(history.epoch) >= patience + start_from_epoch

    start_from_epoch, patience = 2, 0
    stopper = callbacks.EarlyStopping(monitor="mse", patience=patience,
                                      start_from_epoch=start_from_epoch)
    history = model.fit(x_train, y_train, callbacks=[stopper], verbose=0, epochs=20)
    assert len(history.epoch) >= start_from_epoch


# ------------------------------------------------------------------ MonitorCallback

# MonitorCallbackTest.test_monitor_op_logic (without the "hinge" and F1Score cases)
def test_monitor_op_logic():
    x_train, y_train, x_test, y_test = random_data((10, 5), (10, 1), (10, 5), (10, 1))
    model = two_relu_model()
    model.compile(loss="mae", optimizer="adam", metrics=["mse", "acc", "accuracy"])
    cases = [
        ("max", "val_mse", "max"),
        ("min", "val_loss", "min"),
        ("auto", "val_mse", "min"),
        ("auto", "loss", "min"),
        ("auto", "acc", "max"),
        ("auto", "val_accuracy", "max"),
    ]
    for mode, monitor, expected_mode in cases:
        monitor_callback = callbacks.MonitorCallback(monitor, mode)
        monitor_callback.set_model(model)
        model.fit(x_train, y_train, batch_size=5, validation_data=(x_test, y_test),
                  epochs=2, verbose=0)
        monitor_callback._set_monitor_op()
        expected = np.greater if expected_mode == "max" else np.less
        assert monitor_callback.monitor_op is expected, (mode, monitor)

    with pytest.raises(ValueError):
        monitor_callback = callbacks.MonitorCallback("unknown")
        monitor_callback.set_model(model)
        model.fit(x_train, y_train, batch_size=5, validation_data=(x_test, y_test),
                  epochs=2, verbose=0)
        monitor_callback._set_monitor_op()


# MonitorCallbackTest.test_min_delta
def test_monitor_min_delta():
    monitor_callback = callbacks.MonitorCallback(mode="max", min_delta=0.5)
    monitor_callback._set_monitor_op()
    assert monitor_callback._is_improvement(0.75, 0)
    assert monitor_callback._is_improvement(0.5, None)
    assert not monitor_callback._is_improvement(0.5, 0)
    assert not monitor_callback._is_improvement(0.2, 0.5)


# ------------------------------------------------------------------ TerminateOnNaN

def exploding_model():
    """Keras's model of 1e5-constant kernels: 5 relu layers and a linear one, whose
    outputs (~1e30) overflow the float32 squared error at the first batch."""
    model = dl.Sequential(
        [dl.Input((INPUT_DIM,))]
        + [layers.Dense(2, activation="relu",
                        kernel_initializer=initializers.Constant(value=1e5))
           for _ in range(5)]
        + [layers.Dense(2)])
    model.compile(loss="mean_squared_error", optimizer="sgd")
    return model


def classification_data(num_classes=2, seed=1337):
    rng = np.random.default_rng(seed)
    x_train = rng.random((TRAIN_SAMPLES, INPUT_DIM))
    y_train = rng.choice(np.arange(num_classes), size=TRAIN_SAMPLES)
    x_test = rng.random((TEST_SAMPLES, INPUT_DIM))
    y_test = rng.choice(np.arange(num_classes), size=TEST_SAMPLES)
    return (x_train, dl.utils.to_categorical(y_train, num_classes)), \
        (x_test, dl.utils.to_categorical(y_test, num_classes))


def overflow_at_first_batch():
    """A model and one sample whose loss is inf at batch 0 (Keras: ``y = [[inf]]``):
    ``x @ kernel`` = 2 * 3e38 overflows float32."""
    model = dl.Sequential([dl.Input((2,)), layers.Dense(1, kernel_initializer="ones")])
    model.compile(optimizer="sgd", loss="mse")
    return model, np.array([[3e38, 3e38]]), np.array([[1.0]])


# TerminateOnNaNTest.test_TerminateOnNaN
def test_terminate_on_nan():
    (x_train, y_train), (x_test, y_test) = classification_data()
    model = exploding_model()
    history = model.fit(x_train, y_train, batch_size=BATCH_SIZE,
                        validation_data=(x_test, y_test),
                        callbacks=[callbacks.TerminateOnNaN()], epochs=20)
    loss = history.history["loss"]
    assert len(loss) == 1
    assert np.isnan(loss[0]) or np.isinf(loss[0])


# TerminateOnNaNTest.test_terminate_on_nan_graceful_stop
def test_terminate_on_nan_graceful_stop():
    model, x, y = overflow_at_first_batch()
    x, y = np.concatenate([x, x]), np.concatenate([y, y])
    callback = callbacks.TerminateOnNaN(raise_error=False)
    history = model.fit(x, y, epochs=2, batch_size=1, callbacks=[callback], verbose=0)
    assert len(history.history["loss"]) < 4
    assert len(history.history["loss"]) == 1      # stopped in the first epoch


# TerminateOnNaNTest.test_terminate_on_nan_raise_error_raises_error
def test_terminate_on_nan_raise_error_raises_error():
    model, x, y = overflow_at_first_batch()
    callback = callbacks.TerminateOnNaN(raise_error=True)
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered"):
        model.fit(x, y, epochs=1, batch_size=1, callbacks=[callback], verbose=0)


class TrackingCallback(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.train_end_called = False

    def on_train_end(self, logs=None):
        self.train_end_called = True


# TerminateOnNaNTest.test_raise_error_terminate_does_not_trigger_on_train_end
def test_raise_error_terminate_does_not_trigger_on_train_end():
    model, x, y = overflow_at_first_batch()
    tracking_callback = TrackingCallback()
    with pytest.raises(RuntimeError):
        model.fit(x, y, epochs=1, verbose=0,
                  callbacks=[tracking_callback, callbacks.TerminateOnNaN(raise_error=True)])
    assert not tracking_callback.train_end_called


# TerminateOnNaNTest.test_raise_error_terminate_preserves_backup
def test_raise_error_terminate_preserves_backup(tmp_path):
    backup_dir = os.path.join(tmp_path, "backups")
    os.makedirs(backup_dir, exist_ok=True)
    fake_file = os.path.join(backup_dir, "checkpoint.txt")
    with open(fake_file, "w") as f:
        f.write("dummy checkpoint")
    model, x, y = overflow_at_first_batch()
    backup_callback = callbacks.BackupAndRestore(backup_dir=backup_dir)
    backup_callback.on_train_end = lambda logs=None: None     # Keras's monkeypatch
    with pytest.raises(RuntimeError):
        model.fit(x, y, epochs=1, verbose=0,
                  callbacks=[backup_callback, callbacks.TerminateOnNaN(raise_error=True)])
    assert os.path.exists(backup_dir), f"Backup dir deleted: {backup_dir}"
    assert os.path.exists(fake_file), "Backup file missing unexpectedly."


# TerminateOnNaNTest.test_normal_training_does_not_raise
@pytest.mark.parametrize("raise_error", [False, True],
                         ids=["raise_error_false", "raise_error_true"])
def test_normal_training_does_not_raise(raise_error):
    model = dl.Sequential([dl.Input((1,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.array([[1.0], [2.0]])
    y = np.array([[1.0], [2.0]])
    callback = callbacks.TerminateOnNaN(raise_error=raise_error)
    history = model.fit(x, y, epochs=2, callbacks=[callback], verbose=0)
    assert len(history.history["loss"]) == 2


# TerminateOnNaNTest.test_raise_error_terminate_stops_on_later_batch
def test_raise_error_terminate_stops_on_later_batch():
    # Keras: y = [[1], [inf]].  Here batch 0's loss is finite and its step (learning
    # rate 1e37) overflows the weights, so batch 1's loss is inf.
    model = dl.Sequential([dl.Input((1,)), layers.Dense(1)])
    model.compile(optimizer=optimizers.SGD(learning_rate=1e37), loss="mse")
    x = np.array([[1.0], [2.0]])
    y = np.array([[100.0], [100.0]])
    callback = callbacks.TerminateOnNaN(raise_error=True)
    with pytest.raises(RuntimeError) as exc:
        model.fit(x, y, epochs=1, batch_size=1, callbacks=[callback], verbose=0)
    assert any(f"batch {i}" in str(exc.value) for i in [0, 1])
    assert "batch 1" in str(exc.value)          # the later batch, as in Keras's case


# ------------------------------------------------------------------ CSVLogger

def csv_model():
    model = dl.Sequential([dl.Input((INPUT_DIM,)), layers.Dense(2, activation="relu"),
                           layers.Dense(1)])
    model.compile(loss="mse", optimizer="sgd", metrics=["mse"])
    return model


def regression_data():
    return random_data((TRAIN_SAMPLES, INPUT_DIM), (TRAIN_SAMPLES, 1),
                       (TEST_SAMPLES, INPUT_DIM), (TEST_SAMPLES, 1), seed=1337)


# CSVLoggerTest.test_CSVLogger (cases 1 to 3)
def test_csv_logger(tmp_path):
    sep = "\t"
    filepath = os.path.join(tmp_path, "log.tsv")
    x_train, y_train, x_test, y_test = regression_data()

    # case 1, create new file with defined separator
    model = csv_model()
    cbks = [callbacks.CSVLogger(filepath, separator=sep)]
    model.fit(x_train, y_train, batch_size=BATCH_SIZE, validation_data=(x_test, y_test),
              callbacks=cbks, epochs=1, verbose=0)
    assert os.path.exists(filepath)
    with open(filepath) as csvfile:
        dialect = csv.Sniffer().sniff(csvfile.read())
    assert dialect.delimiter == sep

    # case 2, append data to existing file, skip header
    model = csv_model()
    cbks = [callbacks.CSVLogger(filepath, separator=sep, append=True)]
    model.fit(x_train, y_train, batch_size=BATCH_SIZE, validation_data=(x_test, y_test),
              callbacks=cbks, epochs=1, verbose=0)

    # case 3, reuse of CSVLogger object
    model.fit(x_train, y_train, batch_size=BATCH_SIZE, validation_data=(x_test, y_test),
              callbacks=cbks, epochs=2, verbose=0)

    with open(filepath) as csvfile:
        list_lines = csvfile.readlines()
    for line in list_lines:
        assert line.count(sep) == 4
    assert len(list_lines) == 5
    output = " ".join(list_lines)
    assert len(re.findall("epoch", output)) == 1


# CSVLoggerTest.test_CSVLogger (the case "Val. loss also registered when Validation
# Freq > 1")
def test_csv_logger_validation_freq(tmp_path):
    sep = "\t"
    filepath = os.path.join(tmp_path, "log.tsv")
    x_train, y_train, x_test, y_test = regression_data()
    model = csv_model()
    cbks = [callbacks.CSVLogger(filepath, separator=sep)]
    hist = model.fit(x_train, y_train, batch_size=BATCH_SIZE,
                     validation_data=(x_test, y_test), validation_freq=3, callbacks=cbks,
                     epochs=5, verbose=0)
    assert os.path.exists(filepath)
    with open(filepath) as csvfile:
        rows = list(csv.DictReader(csvfile, delimiter=sep))
    assert len(rows) == 5
    for idx, row in enumerate(rows, 1):
        assert "val_loss" in row
        if idx == 3:
            assert row["val_loss"] == str(hist.history["val_loss"][0])
        else:
            assert row["val_loss"] == "NA"


# CSVLoggerTest.test_stop_training_csv
def test_stop_training_csv(tmp_path):
    csv_logfile = os.path.join(tmp_path, "csv_logger.csv")
    (x_train, y_train), (x_test, y_test) = classification_data()
    model = exploding_model()
    history = model.fit(x_train, y_train, batch_size=BATCH_SIZE,
                        validation_data=(x_test, y_test),
                        callbacks=[callbacks.TerminateOnNaN(),
                                   callbacks.CSVLogger(csv_logfile)],
                        epochs=20)
    loss = history.history["loss"]
    assert len(loss) == 1
    assert np.isnan(loss[0]) or np.isinf(loss[0])
    with open(csv_logfile) as f:
        values = [row for row in csv.reader(f) if row]
    # Keras: "nan" (its NaN weights' val_loss).  dl keeps the last finite weights, so
    # the non-finite value logged is "inf" (deliberate difference, module docstring).
    assert "inf" in values[-1], "Inf not logged in CSV Logger."


# ------------------------------------------------------------------ LambdaCallback

def lambda_setup():
    model = dl.Sequential([dl.Input(shape=(2,), batch_size=4), layers.Dense(1)])
    model.compile(optimizer=optimizers.SGD(), loss=dl.losses.MeanSquaredError())
    rng = np.random.default_rng(0)
    return model, rng.standard_normal((16, 2)), rng.standard_normal((16, 1))


# LambdaCallbackTest.test_lambda_callback
def test_lambda_callback():
    model, x, y = lambda_setup()
    seen = []
    lambda_log_callback = callbacks.LambdaCallback(
        on_train_begin=lambda logs: seen.append("on_train_begin"),
        on_epoch_begin=lambda epoch, logs: seen.append("on_epoch_begin"),
        on_epoch_end=lambda epoch, logs: seen.append("on_epoch_end"),
        on_train_end=lambda logs: seen.append("on_train_end"),
    )
    model.fit(x, y, batch_size=4, validation_split=0.2, callbacks=[lambda_log_callback],
              epochs=5, verbose=0)
    for hook in ("on_train_begin", "on_epoch_begin", "on_epoch_end", "on_train_end"):
        assert hook in seen


# LambdaCallbackTest.test_lambda_callback_with_batches
def test_lambda_callback_with_batches():
    model, x, y = lambda_setup()
    seen = []
    lambda_log_callback = callbacks.LambdaCallback(
        on_train_batch_begin=lambda batch, logs: seen.append("on_train_batch_begin"),
        on_train_batch_end=lambda batch, logs: seen.append("on_train_batch_end"),
    )
    model.fit(x, y, batch_size=4, validation_split=0.2, callbacks=[lambda_log_callback],
              epochs=5, verbose=0)
    assert "on_train_batch_begin" in seen
    assert "on_train_batch_end" in seen


# LambdaCallbackTest.test_lambda_callback_with_kwargs
def test_lambda_callback_with_kwargs():
    model, x, y = lambda_setup()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    seen = []

    def custom_on_test_begin(logs):
        seen.append("custom_on_test_begin_executed")

    lambda_log_callback = callbacks.LambdaCallback(on_test_begin=custom_on_test_begin)
    model.evaluate(x, y, batch_size=4, callbacks=[lambda_log_callback], verbose=0)
    assert "custom_on_test_begin_executed" in seen


# LambdaCallbackTest.test_lambda_callback_no_args
def test_lambda_callback_no_args():
    lambda_callback = callbacks.LambdaCallback()
    assert isinstance(lambda_callback, callbacks.LambdaCallback)


# LambdaCallbackTest.test_lambda_callback_with_additional_kwargs: deliberately
# different.  Keras keeps `custom_method` as an attribute; dl refuses a keyword that
# is not a callback hook (a misspelt hook would never be called).
def test_lambda_callback_with_additional_kwargs():
    def custom_callback(logs):
        pass

    with pytest.raises(TypeError, match="LambdaCallback: unknown hook 'custom_method'"):
        callbacks.LambdaCallback(custom_method=custom_callback)


# LambdaCallbackTest.test_lambda_callback_during_prediction
def test_lambda_callback_during_prediction():
    model, x, _ = lambda_setup()
    seen = []

    def custom_on_predict_begin(logs):
        seen.append("on_predict_begin_executed")

    lambda_callback = callbacks.LambdaCallback(on_predict_begin=custom_on_predict_begin)
    model.predict(x, batch_size=4, callbacks=[lambda_callback], verbose=0)
    assert "on_predict_begin_executed" in seen


# ------------------------------------------------------------------ ModelCheckpoint

CKPT_TRAIN = CKPT_TEST = 30
NUM_CLASSES = 3
NUM_HIDDEN = 5
CKPT_BATCH = 5


def checkpoint_model():
    model = dl.Sequential([dl.Input((INPUT_DIM,)),
                           layers.Dense(NUM_HIDDEN, activation="relu"),
                           layers.Dense(NUM_CLASSES, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="sgd",
                  metrics=[dl.metrics.Accuracy("acc")])
    return model


def checkpoint_data():
    (x_train, y_train), (x_test, y_test) = get_test_data(
        CKPT_TRAIN, CKPT_TEST, (INPUT_DIM,), NUM_CLASSES, seed=42)
    return (x_train, dl.utils.to_categorical(y_train, NUM_CLASSES),
            x_test, dl.utils.to_categorical(y_test, NUM_CLASSES))


def fit_checkpoint(model, data, cbk):
    x_train, y_train, x_test, y_test = data
    model.fit(x_train, y_train, batch_size=CKPT_BATCH, validation_data=(x_test, y_test),
              callbacks=[cbk], epochs=1, verbose=0)


# ModelCheckpointTest.test_model_checkpoint_options (cases 1 to 4, 11 to 14)
@pytest.mark.parametrize("monitor, save_best_only, mode, threshold, saved", [
    ("val_loss", False, "auto", None, True),     # case 1
    ("val_loss", False, "min", None, True),      # case 2
    ("val_acc", False, "max", None, True),       # case 3
    ("val_acc", True, "max", None, True),        # case 4
    ("val_acc", True, "max", -0.01, True),       # case 11
    ("val_loss", True, "auto", None, True),      # case 12
    ("val_loss", True, "min", 0, False),         # case 13: nothing beats a loss of 0
    ("val_loss", True, "auto", 0, False),        # case 14: the same in auto mode
], ids=["case1", "case2", "case3", "case4", "case11", "case12", "case13", "case14"])
def test_model_checkpoint_options(tmp_path, monitor, save_best_only, mode, threshold,
                                  saved):
    # a file in a sub-folder: the callback creates the folder
    filepath = os.path.join(tmp_path, "subdir", "checkpoint.dlk")
    cbk = callbacks.ModelCheckpoint(filepath, monitor=monitor, save_best_only=save_best_only,
                                    mode=mode, initial_value_threshold=threshold)
    fit_checkpoint(checkpoint_model(), checkpoint_data(), cbk)
    assert os.path.exists(filepath) == saved


# ModelCheckpointTest.test_model_checkpoint_options (case 5: metric not available)
def test_model_checkpoint_monitor_not_available(tmp_path):
    filepath = os.path.join(tmp_path, "checkpoint.dlk")
    cbk = callbacks.ModelCheckpoint(filepath, monitor="unknown", save_best_only=True,
                                    mode="min")
    with pytest.warns(UserWarning):
        fit_checkpoint(checkpoint_model(), checkpoint_data(), cbk)
    assert os.path.exists(filepath)


# ModelCheckpointTest.test_model_checkpoint_options (case 6: unknown mode)
def test_model_checkpoint_unknown_mode(tmp_path):
    filepath = os.path.join(tmp_path, "checkpoint.dlk")
    with warnings.catch_warnings(record=True) as warning_logs:
        warnings.simplefilter("always")
        callbacks.ModelCheckpoint(filepath, monitor="val_acc", save_best_only=True,
                                  mode="unknown")
    assert "ModelCheckpoint mode 'unknown' is unknown" in str(warning_logs[-1].message)


# ModelCheckpointTest.test_model_checkpoint_options (cases 8a, 8b, 9, 10a, 10b):
# deliberately different.  Keras accepts an int save_freq (a checkpoint every n
# batches) and refuses other strs with "Unrecognized save_freq"; dl saves per epoch
# only and refuses both with a ValueError naming save_freq.
@pytest.mark.parametrize("save_freq, save_weights_only", [
    (15, False),                    # case 8a
    (15, True),                     # case 8b
    (3, True),                      # case 9, valid in Keras
    ("invalid_save_freq", True),    # case 9, invalid in Keras too
    (1, False),                     # case 10a
    (1, True),                      # case 10b
])
def test_model_checkpoint_save_freq(tmp_path, save_freq, save_weights_only):
    filepath = os.path.join(tmp_path, "checkpoint.epoch{epoch:02d}.dlk")
    with pytest.raises(ValueError, match="^save_freq: "):
        callbacks.ModelCheckpoint(filepath, monitor="val_acc", save_best_only=False,
                                  save_weights_only=save_weights_only, mode="max",
                                  save_freq=save_freq)


# ModelCheckpointTest.test_model_checkpoint_options (case 9: "epoch" is valid)
def test_model_checkpoint_save_freq_epoch(tmp_path):
    filepath = os.path.join(tmp_path, "checkpoint.epoch{epoch:02d}.dlk")
    callbacks.ModelCheckpoint(filepath, monitor="val_acc", save_best_only=False,
                              save_weights_only=True, mode="max", save_freq="epoch")


# ModelCheckpointTest.test_model_checkpoint_loading (a Sequential model where Keras
# builds a functional one; dl's file format)
@pytest.mark.parametrize("save_weights_only", [False, True], ids=["model", "weights"])
def test_model_checkpoint_loading(tmp_path, save_weights_only):
    filepath = os.path.join(tmp_path, "checkpoint.dlk")
    model = checkpoint_model()
    cbk = callbacks.ModelCheckpoint(filepath, monitor="val_loss", save_best_only=True,
                                    save_weights_only=save_weights_only, mode="auto")
    fit_checkpoint(model, checkpoint_data(), cbk)
    ref_weights = model.get_weights()
    assert os.path.exists(filepath)
    if save_weights_only:
        new_model = checkpoint_model()
        new_model.load_weights(filepath)
    else:
        new_model = dl.load_model(filepath)
    new_weights = new_model.get_weights()
    assert len(ref_weights) == len(new_weights)
    for ref_w, w in zip(ref_weights, new_weights):
        np.testing.assert_allclose(w, ref_w)


# ------------------------------------------------------------------ Callback

# CallbackTest.test_model_state_is_current_on_epoch_end (Keras counts the forward passes
# in a subclassed model's variable; dl counts the optimizer's steps)
def test_model_state_is_current_on_batch_end():
    seen = []

    class CBK(callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            seen.append((batch, self.model.optimizer.iterations))

    model = dl.Sequential([dl.Input((1,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = random_data((8, 1), (8, 1))
    model.fit(x, y, callbacks=[CBK()], batch_size=2)
    assert seen == [(batch, batch + 1) for batch in range(4)]
