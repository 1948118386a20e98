"""Convolutional nets against Keras 3: the same nets, from Keras's initial weights,
trained a few epochs in mini-batches (no shuffling); loss histories, metrics, final
weights (BatchNormalization's moving statistics included), predictions and evaluate
within 1e-4 in float32; and the layers' constructor vocabulary (parameters, defaults,
weight names and trainability) as Keras's.

The expected numbers are fixtures (tests/dl/fixtures/keras_conv_<net>.json and
keras_conv_signatures.json), written by tools/keras_fixtures/make_conv_fixtures.py with
Keras 3.15.1 on its torch backend: Keras is not a dependency of dl or of its tests.
"""
import inspect
import json
import os

import numpy as np
import pytest

import dl
from dl import layers

from dl_helpers import both_backends, restore_dl_state  # noqa: F401  (autouse fixture)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def _fixture(name):
    with open(os.path.join(FIXTURES, f"keras_conv_{name}.json")) as f:
        data = json.load(f)
    assert data["keras_version"].startswith("3.")
    return data


def _mnist():
    model = dl.Sequential([
        dl.Input((12, 12, 1)),
        layers.Conv2D(4, 3, activation="relu", name="conv1"),
        layers.MaxPooling2D(2, name="pool1"),
        layers.Conv2D(8, 3, activation="relu", name="conv2"),
        layers.MaxPooling2D(2, name="pool2"),
        layers.Flatten(name="flatten"),
        layers.Dropout(0.0, name="dropout"),
        layers.Dense(10, activation="softmax", name="out")])
    model.compile(optimizer=dl.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def _batchnorm():
    model = dl.Sequential([
        dl.Input((8, 8, 2)),
        layers.Conv2D(4, 3, padding="same", name="conv1"),
        layers.BatchNormalization(name="bn1"),
        layers.Activation("relu", name="relu"),
        layers.AveragePooling2D(2, name="pool"),
        layers.Conv2D(6, 3, strides=2, padding="same", activation="tanh", name="conv2"),
        layers.BatchNormalization(momentum=0.9, epsilon=1e-2, name="bn2"),
        layers.GlobalAveragePooling2D(name="gap"),
        layers.Dense(3, activation="softmax", name="out")])
    model.compile(optimizer=dl.optimizers.SGD(0.05, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _separable():
    model = dl.Sequential([
        dl.Input((7, 7, 2)),
        layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu",
                               name="dw"),
        layers.SeparableConv2D(5, 3, strides=2, padding="same", depth_multiplier=2,
                               activation="tanh", name="sep"),
        layers.MaxPooling2D(2, strides=1, padding="same", name="pool"),
        layers.ZeroPadding2D(((1, 0), (0, 2)), name="pad"),
        layers.UpSampling2D((1, 2), name="up"),
        layers.GlobalMaxPooling2D(name="gmp"),
        layers.Dense(2, name="out")])
    model.compile(optimizer=dl.optimizers.RMSprop(0.005), loss="mse")
    return model


def _causal():
    model = dl.Sequential([
        dl.Input((10, 3)),
        layers.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="relu", name="c1"),
        layers.Conv1D(5, 3, strides=2, padding="causal", name="c2"),
        layers.MaxPooling1D(2, padding="same", name="pool1"),
        layers.AveragePooling1D(2, strides=1, name="pool2"),
        layers.GlobalAveragePooling1D(name="gap"),
        layers.Dense(1, name="out")])
    model.compile(optimizer=dl.optimizers.Adam(0.01), loss="mse")
    return model


def _channels_first():
    inp = dl.Input((4, 6, 6), name="x")
    h = layers.Conv2D(4, 3, padding="same", groups=2, activation="relu",
                      data_format="channels_first", name="grouped")(inp)
    h = layers.BatchNormalization(axis=1, name="bn")(h)
    shared = layers.Conv2D(4, 3, padding="same", activation="tanh",
                           data_format="channels_first", name="shared")
    s = layers.Add(name="add")([shared(h), shared(shared(h))])
    p = layers.MaxPooling2D(2, data_format="channels_first", name="pool")(s)
    c = layers.Conv2D(3, 2, data_format="channels_first", name="last")(p)
    model = dl.Model(inp, layers.Dense(3, activation="softmax", name="out")(
        layers.Flatten(name="flat")(c)))
    model.compile(optimizer=dl.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


NETS = {"mnist": _mnist, "batchnorm": _batchnorm, "separable": _separable,
        "causal": _causal, "channels_first": _channels_first}


@pytest.mark.parametrize("be", both_backends())
@pytest.mark.parametrize("net", list(NETS))
def test_convnet_trains_as_keras(net, be):
    dl.set_backend(be)
    data = _fixture(net)
    model = NETS[net]()
    for name, arrays in data["initial_weights"].items():
        model.get_layer(name).set_weights([np.asarray(a, np.float32) for a in arrays])
    x = np.asarray(data["x_units"]).astype(np.float32) / np.float32(data["x_scale"])
    y = np.asarray(data["y"])
    history = model.fit(x, y, epochs=data["epochs"], batch_size=data["batch_size"],
                        shuffle=False, verbose=0).history
    assert sorted(history) == sorted(data["history"])
    for key, expected in data["history"].items():
        np.testing.assert_allclose(history[key], expected, rtol=1e-4, atol=1e-6,
                                   err_msg=key)
    for name, arrays in data["final_weights"].items():
        got = model.get_layer(name).get_weights()
        assert len(got) == len(arrays), name
        for g, want in zip(got, arrays):
            np.testing.assert_allclose(g, np.asarray(want, np.float32), rtol=1e-4,
                                       atol=1e-5, err_msg=name)
    np.testing.assert_allclose(model.predict(x, batch_size=data["batch_size"], verbose=0),
                               np.asarray(data["predict"]), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.evaluate(x, y, batch_size=data["batch_size"],
                                              verbose=0, return_dict=True)["loss"],
                               data["evaluate"], rtol=1e-4)


def _signatures():
    with open(os.path.join(FIXTURES, "keras_conv_signatures.json")) as f:
        return json.load(f)["classes"]


SIGNATURES = _signatures()


def _default(value):
    if value is inspect.Parameter.empty:
        return "<required>"
    return list(value) if isinstance(value, tuple) else value


@pytest.mark.parametrize("cls_name", sorted(SIGNATURES))
def test_constructor_as_keras(cls_name):
    """Each layer takes Keras's parameters, in Keras's order, with Keras's defaults
    (a parameter dl refuses when set, such as renorm, still has Keras's default)."""
    cls = getattr(layers, cls_name)
    params = [[p.name, _default(p.default)]
              for p in inspect.signature(cls.__init__).parameters.values()
              if p.name != "self" and p.kind is not p.VAR_KEYWORD]
    assert params == SIGNATURES[cls_name]["parameters"]


BUILT = {"Conv1D": (lambda: layers.Conv1D(3, 2), (None, 5, 2)),
         "Conv2D": (lambda: layers.Conv2D(3, 2), (None, 5, 5, 2)),
         "DepthwiseConv2D": (lambda: layers.DepthwiseConv2D(2, depth_multiplier=2),
                             (None, 5, 5, 2)),
         "SeparableConv2D": (lambda: layers.SeparableConv2D(3, 2), (None, 5, 5, 2)),
         "BatchNormalization": (lambda: layers.BatchNormalization(), (None, 5, 5, 2))}


@pytest.mark.parametrize("cls_name", sorted(BUILT))
def test_weight_names_and_trainability_as_keras(cls_name):
    make, shape = BUILT[cls_name]
    layer = make()
    layer.build(shape)
    trainable = {id(w) for w in layer.trainable_weights}
    got = [[name, id(w) in trainable] for name, w in zip(layer.weight_names, layer.weights)]
    assert got == SIGNATURES[cls_name]["weights"]
