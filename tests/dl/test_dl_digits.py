"""An MLP on scikit-learn's bundled 8x8 digits reaches Keras-like test accuracy."""
import numpy as np
import pytest

import dl
from dl import layers
from dl_helpers import restore_dl_state  # noqa: F401  (autouse fixture)

sklearn_datasets = pytest.importorskip("sklearn.datasets")


def _digits():
    x, y = sklearn_datasets.load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    n_train = int(0.75 * len(x))
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


@pytest.mark.parametrize("flatten", [False, True], ids=["vectors", "images"])
def test_digits_mlp(flatten):
    x_train, y_train, x_test, y_test = _digits()
    dl.utils.set_random_seed(0)
    if flatten:     # the same model from 8x8 images through a Flatten layer
        x_train, x_test = x_train.reshape(-1, 8, 8), x_test.reshape(-1, 8, 8)
        head = [layers.Flatten(input_shape=(8, 8)), layers.Dense(64, activation="relu")]
    else:
        head = [layers.Dense(64, activation="relu", input_shape=(64,))]
    model = dl.Sequential(head + [layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    hist = model.fit(x_train, y_train, epochs=40, batch_size=32, validation_split=0.1,
                     verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0] / 4
    assert hist.history["accuracy"][-1] > 0.95
    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    assert acc >= 0.95, f"test accuracy {acc:.3f}"
    assert loss < 0.15
    pred = model.predict(x_test, verbose=0)
    assert pred.shape == (len(x_test), 10)
    np.testing.assert_allclose(pred.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.mean(pred.argmax(axis=1) == y_test), acc)


def test_digits_one_hot_categorical():
    x_train, y_train, x_test, y_test = _digits()
    dl.utils.set_random_seed(1)
    model = dl.Sequential([layers.Dense(64, activation="relu", input_shape=(64,)),
                           layers.Dropout(0.1),
                           layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, dl.utils.to_categorical(y_train, 10), epochs=40, verbose=0)
    res = model.evaluate(x_test, dl.utils.to_categorical(y_test, 10), verbose=0,
                         return_dict=True)
    assert res["accuracy"] >= 0.95
