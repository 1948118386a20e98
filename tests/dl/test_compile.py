"""Sequential.compile: optimizers, losses and metrics by name, object and config."""

import numpy as np
import pytest

import dl
from dl import (layers, losses, metrics, optimizers)
from dl_helpers import ACT, both_backends, restore_dl_state  # noqa: F401  (autouse fixture)

from dl_helpers import xy as _xy


# ------------------------------------------------------------------- compile

@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop", "adagrad", "adamw", "Adam",
                                       lambda: optimizers.Adam(learning_rate=0.01),
                                       {"class_name": "SGD", "config": {"learning_rate": 0.1}}])
@pytest.mark.parametrize("loss", ["mse", "mean_squared_error", losses.MeanSquaredError(),
                                  losses.Huber(delta=2.0), "mae"])
def test_compile_with_strings_and_objects(optimizer, loss):
    x, y = _xy()
    if callable(optimizer):
        optimizer = optimizer()
    if isinstance(loss, losses.Loss):
        loss = type(loss).from_config(loss.get_config())     # a fresh object per test
    model = dl.Sequential([layers.Dense(1, input_shape=(2,))])
    model.compile(optimizer=optimizer, loss=loss, metrics=["mae", metrics.MeanSquaredError()])
    assert isinstance(model.optimizer, optimizers.Optimizer)
    assert isinstance(model.loss, losses.Loss)
    hist = model.fit(x, y, epochs=2, verbose=0)
    assert set(hist.history) == {"loss", "mae", "mean_squared_error"}
    assert model.optimizer.iterations == 1 * 2


def test_compile_defaults_and_loss_required():
    model = dl.Sequential([layers.Dense(1, input_shape=(2,))])
    model.compile(loss="mse")
    assert isinstance(model.optimizer, optimizers.RMSprop)        # Keras's default
    with pytest.raises(ValueError, match="loss"):
        model.compile(optimizer="sgd")


def test_compile_metric_values():
    x, y = _xy()
    model = dl.Sequential([layers.Dense(1, input_shape=(2,))])
    model.compile("sgd", "mse", metrics=["mae", "mse"])
    loss, mae, mse = model.evaluate(x, y, verbose=0)
    p = model.predict(x, verbose=0)[:, 0]
    np.testing.assert_allclose(mae, np.mean(np.abs(p - y)), rtol=1e-5)
    np.testing.assert_allclose(mse, np.mean((p - y) ** 2), rtol=1e-5)
    np.testing.assert_allclose(loss, mse, rtol=1e-5)


def test_accuracy_resolves_to_binary():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20, 3))
    y = (x[:, 0] > 0).astype(np.float32)
    model = dl.Sequential([layers.Dense(1, activation="sigmoid", input_shape=(3,))])
    model.compile("sgd", "binary_crossentropy", metrics=["accuracy"])
    loss, acc = model.evaluate(x, y, verbose=0)
    p = model.predict(x, verbose=0)[:, 0]
    np.testing.assert_allclose(acc, np.mean((p > 0.5) == (y > 0.5)))
    assert isinstance(model.metrics[0].inner, metrics.BinaryAccuracy)
    assert "accuracy" in model.evaluate(x, y, verbose=0, return_dict=True)


@pytest.mark.parametrize("labels_shape", ["(n,)", "(n,1)"])
def test_accuracy_resolves_to_sparse(labels_shape):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(30, 4))
    labels = rng.integers(0, 3, size=30)
    y = labels if labels_shape == "(n,)" else labels[:, None]
    model = dl.Sequential([layers.Dense(3, activation="softmax", input_shape=(4,))])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    _, acc = model.evaluate(x, y, verbose=0)
    p = model.predict(x, verbose=0)
    np.testing.assert_allclose(acc, np.mean(p.argmax(1) == labels))
    assert isinstance(model.metrics[0].inner, metrics.SparseCategoricalAccuracy)


def test_accuracy_resolves_to_categorical():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(30, 4))
    labels = rng.integers(0, 3, size=30)
    y = dl.utils.to_categorical(labels, 3)
    model = dl.Sequential([layers.Dense(3, activation="softmax", input_shape=(4,))])
    model.compile("adam", "categorical_crossentropy", metrics=["acc"])
    res = model.evaluate(x, y, verbose=0, return_dict=True)
    assert set(res) == {"loss", "acc"}
    p = model.predict(x, verbose=0)
    np.testing.assert_allclose(res["acc"], np.mean(p.argmax(1) == labels))
    assert isinstance(model.metrics[0].inner, metrics.CategoricalAccuracy)


def test_to_categorical():
    np.testing.assert_array_equal(dl.utils.to_categorical([0, 2, 1]),
                                  [[1, 0, 0], [0, 0, 1], [0, 1, 0]])
    assert dl.utils.to_categorical([[1], [0]], 4).shape == (2, 4)
    with pytest.raises(ValueError, match="y"):
        dl.utils.to_categorical([0, 5], num_classes=3)
