"""Functional graphs against Keras 3: the same graphs, from the same initial weights,
trained 20 full-batch epochs; loss histories, metrics, final weights and predictions
to a relative 1e-4 in float32 (the cuda backend, simulated in CI: the first two
epochs' history).

The expected numbers are fixtures (tests/dl/fixtures/keras_functional_<graph>.json),
written by tools/keras_fixtures/make_functional_fixtures.py with Keras 3.15.1 on its
torch backend (the version and backend are in each file): Keras is not a dependency of
dl or of its tests.  The fourth fixture, "two_in_two_out" (two inputs, an Embedding,
two outputs with two losses), waits for the Embedding layer and multi-output training.
"""
import json
import os

import numpy as np
import pytest

import dl
from dl import layers

from dl_helpers import restore_dl_state  # noqa: F401  (autouse fixture)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
# Under Numba's CUDA simulator (one Python thread per CUDA thread) 20 epochs of these
# graphs take minutes: the cuda backend is compared on the first epochs' history (the
# losses before each update: the forward, the gradients and the optimizer's steps)
CUDA_EPOCHS = 2


def _fixture(graph):
    with open(os.path.join(FIXTURES, f"keras_functional_{graph}.json")) as f:
        data = json.load(f)
    assert data["keras_version"].startswith("3.") and data["backend"] == "torch"
    return data


def _residual():
    x = dl.Input((4,), name="x")
    h = layers.Dense(8, activation="tanh", name="h")(x)
    r = layers.Dense(8, activation="relu", name="r")(h)
    s = h + r
    shared = layers.Dense(8, activation="tanh", name="shared")
    s2 = shared(shared(s))
    c = layers.Concatenate(name="cat")([s2, x])
    model = dl.Model(x, layers.Dense(1, name="out")(c))
    model.compile(optimizer=dl.optimizers.SGD(0.05), loss="mse")
    return model


def _merge():
    x = dl.Input((6,), name="x")
    a = layers.Dense(6, name="a")(x)
    b = layers.Dense(6, activation="sigmoid", name="b")(x)
    m = layers.Multiply(name="mul")([a, b])
    mx = layers.Maximum(name="max")([a, b])
    av = layers.Average(name="avg")([a, b, m])
    mn = layers.Minimum(name="min")([a, m])
    sub = layers.Subtract(name="sub")([mx, mn])
    d = layers.Dot(axes=1, name="dot")([a, b])
    c = layers.Concatenate(name="cat")([m, sub, av, d])
    n = layers.LayerNormalization(name="ln")(c)
    model = dl.Model(x, layers.Dense(3, activation="softmax", name="out")(n))
    model.compile(optimizer=dl.optimizers.RMSprop(0.01), loss="categorical_crossentropy",
                  metrics=["categorical_accuracy"])
    return model


def _shapes():
    x = dl.Input((6,), name="x")
    h = layers.Dense(12, activation="relu", name="h")(x)
    r = layers.Reshape((3, 4), name="reshape")(h)
    p = layers.Permute((2, 1), name="permute")(r)
    d = layers.Dense(5, activation="tanh", name="dense3d")(p)
    f = layers.Flatten(name="flat")(d)
    rv = layers.RepeatVector(2, name="repeat")(layers.Dense(3, name="small")(x))
    mm = rv @ layers.Reshape((3, 2), name="reshape2")(layers.Dense(6, name="six")(x))
    c = layers.Concatenate(name="cat")([f, layers.Flatten(name="flat2")(mm)])
    model = dl.Model(x, layers.Dense(2, name="out")(c))
    model.compile(optimizer=dl.optimizers.Adam(0.01), loss="mse")
    return model


GRAPHS = {"residual": _residual, "merge": _merge, "shapes": _shapes}


def _set_by_name(model, weights):
    for name, arrays in weights.items():
        model.get_layer(name).set_weights([np.asarray(a, np.float32) for a in arrays])


@pytest.mark.parametrize("be", ["numpy", "cython", "cuda"])
@pytest.mark.parametrize("graph", list(GRAPHS))
def test_functional_graph_trains_as_keras(graph, be):
    try:
        dl.set_backend(be)
    except ImportError as exc:      # pragma: no cover - cuda without Numba
        pytest.skip(f"{be}: {exc}")
    data = _fixture(graph)
    model = GRAPHS[graph]()
    assert not model._is_chain
    _set_by_name(model, data["initial_weights"])
    x = np.asarray(data["x"], np.float32)
    y = np.asarray(data["y"], np.float32)
    epochs = data["epochs"] if be != "cuda" else CUDA_EPOCHS
    history = model.fit(x, y, epochs=epochs, batch_size=data["batch_size"],
                        shuffle=False, verbose=0).history
    assert sorted(history) == sorted(data["history"])
    for key, expected in data["history"].items():
        np.testing.assert_allclose(history[key], expected[:epochs], rtol=1e-4, atol=1e-6,
                                   err_msg=key)
    if be == "cuda":
        return
    for name, arrays in data["final_weights"].items():
        for got, want in zip(model.get_layer(name).get_weights(), arrays):
            np.testing.assert_allclose(got, np.asarray(want, np.float32), rtol=1e-4,
                                       atol=1e-5, err_msg=name)
    np.testing.assert_allclose(model.predict(x, verbose=0), np.asarray(data["predict"]),
                               rtol=1e-4, atol=1e-5)


def _two_in_two_out(form):
    num = dl.Input((3,), name="num")
    cat = dl.Input((1,), dtype="int32", name="cat")
    e = layers.Embedding(10, 4, name="emb")(cat)
    ef = layers.Flatten(name="emb_flat")(e)
    c = layers.Concatenate(name="cat_all")([num, ef])
    h = layers.Dense(8, activation="relu", name="h")(c)
    price = layers.Dense(1, name="price")(h)
    kind = layers.Dense(3, activation="softmax", name="kind")(h)
    if form == "dict":
        model = dl.Model(inputs={"num": num, "cat": cat},
                         outputs={"price": price, "kind": kind})
        model.compile(optimizer=dl.optimizers.Adam(0.01),
                      loss={"price": "mse", "kind": "sparse_categorical_crossentropy"},
                      loss_weights={"price": 1.0, "kind": 0.5},
                      metrics={"kind": ["accuracy"]})
    else:
        model = dl.Model(inputs=[num, cat], outputs=[price, kind])
        model.compile(optimizer=dl.optimizers.Adam(0.01),
                      loss=["mse", "sparse_categorical_crossentropy"],
                      loss_weights=[1.0, 0.5], metrics=[[], ["accuracy"]])
    return model


@pytest.mark.parametrize("be", ["numpy", "cython", "cuda"])
@pytest.mark.parametrize("form", ["dict", "list"])
def test_two_inputs_two_outputs_train_as_keras(form, be):
    """Keras's wide model: a numeric input and an Embedding of a categorical one, a
    regression output (mse) and a classification output (sparse cross-entropy, fused
    with its softmax) weighted 1 and 0.5, accuracy on the second."""
    try:
        dl.set_backend(be)
    except ImportError as exc:      # pragma: no cover - cuda without Numba
        pytest.skip(f"{be}: {exc}")
    data = _fixture("two_in_two_out")
    model = _two_in_two_out(form)
    assert model.get_layer("kind").fuse_softmax_loss
    _set_by_name(model, data["initial_weights"])
    x = {"num": np.asarray(data["x"]["num"], np.float32),
         "cat": np.asarray(data["x"]["cat"], np.int32)}
    y = {"price": np.asarray(data["y"]["price"], np.float32),
         "kind": np.asarray(data["y"]["kind"], np.int64)}
    if form == "list":
        x, y = [x["num"], x["cat"]], [y["price"], y["kind"]]
    epochs = data["epochs"] if be != "cuda" else CUDA_EPOCHS
    history = model.fit(x, y, epochs=epochs, batch_size=data["batch_size"],
                        shuffle=False, verbose=0).history
    expected = data["history"] if form == "dict" else data["history_list_form"]
    assert sorted(history) == sorted(expected)
    for key, values in expected.items():
        np.testing.assert_allclose(history[key], values[:epochs], rtol=1e-4, atol=1e-6,
                                   err_msg=key)
    if be == "cuda":
        return
    if form == "dict":
        for name, arrays in data["final_weights"].items():
            for got, want in zip(model.get_layer(name).get_weights(), arrays):
                np.testing.assert_allclose(got, np.asarray(want, np.float32), rtol=1e-4,
                                           atol=1e-5, err_msg=name)
        pred = model.predict(x, verbose=0)
        assert isinstance(pred, dict) and sorted(pred) == ["kind", "price"]
        for key in ("price", "kind"):
            np.testing.assert_allclose(pred[key], np.asarray(data["predict"][key]),
                                       rtol=1e-4, atol=1e-5)
    else:
        pred = model.predict(x, verbose=0)
        assert isinstance(pred, list) and [p.shape for p in pred] == [(32, 1), (32, 3)]
