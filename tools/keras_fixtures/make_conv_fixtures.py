"""Write Keras reference numbers for dl's convolutional-layer tests.

Kept for provenance only: NOT part of the library, not imported by the tests, and
Keras is NOT a dependency of dlkernels.  It builds five small Keras 3 convnets, trains
each a few epochs on a few tiny random images (mini-batches, no shuffling) and writes
what Keras computed to

    tests/dl/fixtures/keras_conv_<net>.json

with: "keras_version", "backend", "script", "x_units" and "x_scale" (the images,
x = float32(x_units) / float32(x_scale): pixels 0-255 / 255, or a grid of 1/32), "y",
"epochs", "batch_size",
"initial_weights" / "final_weights" (layer name -> get_weights(), Keras's order: a
BatchNormalization's moving statistics included), "history" (fit's History),
"predict" (after training: inference, BatchNormalization on its moving statistics) and
"evaluate".  The nets:

- "mnist": a small "simple MNIST convnet" (Conv2D relu, MaxPooling2D, Conv2D relu,
  MaxPooling2D, Flatten, Dropout(0.0), Dense softmax; Adam, sparse cross-entropy);
- "batchnorm": Conv2D, BatchNormalization, AveragePooling2D, strided Conv2D,
  BatchNormalization(momentum=0.9), GlobalAveragePooling2D (SGD with momentum);
- "separable": DepthwiseConv2D, SeparableConv2D, MaxPooling2D "same", ZeroPadding2D,
  UpSampling2D, GlobalMaxPooling2D (RMSprop, mse);
- "causal": Conv1D causal dilated, Conv1D causal strided (an odd length: Keras's
  left padding), MaxPooling1D, AveragePooling1D, GlobalAveragePooling1D (Adam, mse);
- "channels_first": a functional NCHW net: a grouped Conv2D, BatchNormalization(axis=1),
  a Conv2D shared by two calls, Add, MaxPooling2D, Flatten, Dense (Adam).

It also writes tests/dl/fixtures/keras_conv_signatures.json: each layer class's
constructor parameters with their defaults, and the names and trainability of a built
layer's weights.  Everything is float32; float32 -> Python float is exact.

Run from the repo root with a private Keras environment kept outside the repo:

    python3.11 -m venv /tmp/kvenv
    /tmp/kvenv/bin/pip install "keras==3.15.1" torch numpy
    KERAS_BACKEND=torch /tmp/kvenv/bin/python tools/keras_fixtures/make_conv_fixtures.py
"""

import inspect
import json
import os
import sys

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402
from keras import layers  # noqa: E402

SCRIPT = "tools/keras_fixtures/make_conv_fixtures.py"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT_DIR = os.path.join(REPO, "tests", "dl", "fixtures")

N = 16
UNITS = 32
BATCH = 8
EPOCHS = 3
SEEDS = {"mnist": 201, "batchnorm": 202, "separable": 203, "causal": 204,
         "channels_first": 205}


def tolist(a):
    if isinstance(a, (list, tuple)):
        return [tolist(v) for v in a]
    a = np.asarray(a)
    return (a.astype(np.float32) if a.dtype.kind == "f" else a).tolist()


def weights_by_layer(model):
    return {layer.name: [tolist(w) for w in layer.get_weights()]
            for layer in model.layers if layer.get_weights()}


# ------------------------------------------------------------------------ nets

def build_mnist():
    model = keras.Sequential([
        keras.Input((12, 12, 1)),
        layers.Conv2D(4, 3, activation="relu", name="conv1"),
        layers.MaxPooling2D(2, name="pool1"),
        layers.Conv2D(8, 3, activation="relu", name="conv2"),
        layers.MaxPooling2D(2, name="pool2"),
        layers.Flatten(name="flatten"),
        layers.Dropout(0.0, name="dropout"),
        layers.Dense(10, activation="softmax", name="out"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def grid(a):
    """Data on a grid of 1/32 (exact in float32, stored as small ints: "x_units")."""
    return np.round(np.asarray(a) * UNITS).astype(np.float32) / np.float32(UNITS)


def data_mnist(rng):
    return (np.round(rng.random((N, 12, 12, 1)) * 255).astype(np.float32) / np.float32(255),
            rng.integers(0, 10, N).astype(np.int32))


def build_batchnorm():
    model = keras.Sequential([
        keras.Input((8, 8, 2)),
        layers.Conv2D(4, 3, padding="same", name="conv1"),
        layers.BatchNormalization(name="bn1"),
        layers.Activation("relu", name="relu"),
        layers.AveragePooling2D(2, name="pool"),
        layers.Conv2D(6, 3, strides=2, padding="same", activation="tanh", name="conv2"),
        layers.BatchNormalization(momentum=0.9, epsilon=1e-2, name="bn2"),
        layers.GlobalAveragePooling2D(name="gap"),
        layers.Dense(3, activation="softmax", name="out"),
    ])
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def data_batchnorm(rng):
    return (grid(rng.normal(1.0, 2.0, (N, 8, 8, 2))),
            rng.integers(0, 3, N).astype(np.int32))


def build_separable():
    model = keras.Sequential([
        keras.Input((7, 7, 2)),
        layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu",
                               name="dw"),
        layers.SeparableConv2D(5, 3, strides=2, padding="same", depth_multiplier=2,
                               activation="tanh", name="sep"),
        layers.MaxPooling2D(2, strides=1, padding="same", name="pool"),
        layers.ZeroPadding2D(((1, 0), (0, 2)), name="pad"),
        layers.UpSampling2D((1, 2), name="up"),
        layers.GlobalMaxPooling2D(name="gmp"),
        layers.Dense(2, name="out"),
    ])
    model.compile(optimizer=keras.optimizers.RMSprop(0.005), loss="mse")
    return model


def data_separable(rng):
    return (grid(rng.normal(size=(N, 7, 7, 2))),
            grid(rng.normal(size=(N, 2))))


def build_causal():
    model = keras.Sequential([
        keras.Input((10, 3)),
        layers.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="relu",
                      name="c1"),
        layers.Conv1D(5, 3, strides=2, padding="causal", name="c2"),
        layers.MaxPooling1D(2, padding="same", name="pool1"),
        layers.AveragePooling1D(2, strides=1, name="pool2"),
        layers.GlobalAveragePooling1D(name="gap"),
        layers.Dense(1, name="out"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    return model


def data_causal(rng):
    x = grid(rng.normal(size=(N, 10, 3)))
    return x, x[:, -3:, 0].sum(axis=1, keepdims=True).astype(np.float32)


def build_channels_first():
    inp = keras.Input((4, 6, 6), name="x")
    h = layers.Conv2D(4, 3, padding="same", groups=2, activation="relu",
                      data_format="channels_first", name="grouped")(inp)
    h = layers.BatchNormalization(axis=1, name="bn")(h)
    shared = layers.Conv2D(4, 3, padding="same", activation="tanh",
                           data_format="channels_first", name="shared")
    s = layers.Add(name="add")([shared(h), shared(shared(h))])
    p = layers.MaxPooling2D(2, data_format="channels_first", name="pool")(s)
    c = layers.Conv2D(3, 2, data_format="channels_first", name="last")(p)
    out = layers.Dense(3, activation="softmax", name="out")(layers.Flatten(name="flat")(c))
    model = keras.Model(inp, out)
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def data_channels_first(rng):
    return (grid(rng.normal(size=(N, 4, 6, 6))),
            rng.integers(0, 3, N).astype(np.int32))


NETS = {"mnist": (build_mnist, data_mnist), "batchnorm": (build_batchnorm, data_batchnorm),
        "separable": (build_separable, data_separable),
        "causal": (build_causal, data_causal),
        "channels_first": (build_channels_first, data_channels_first)}


def x_record(name, x):
    """x as small ints and their scale: x = float32(x_units) / float32(x_scale)."""
    scale = 255 if name == "mnist" else UNITS
    units = np.round(x.astype(np.float64) * scale).astype(np.int64)
    assert np.array_equal(units.astype(np.float32) / np.float32(scale), x)
    return {"x_units": units.tolist(), "x_scale": scale}


def make(name):
    build, data = NETS[name]
    x, y = data(np.random.default_rng(SEEDS[name]))
    keras.utils.set_random_seed(0)
    model = build()
    init = weights_by_layer(model)
    hist = model.fit(x, y, epochs=EPOCHS, batch_size=BATCH, shuffle=False, verbose=0)
    record = {
        "keras_version": keras.__version__, "backend": keras.backend.backend(),
        "script": SCRIPT, "net": name, "data_seed": SEEDS[name], "epochs": EPOCHS,
        "batch_size": BATCH, **x_record(name, x), "y": tolist(y), "initial_weights": init,
        "history": {k: [float(np.float32(v)) for v in vals]
                    for k, vals in hist.history.items()},
        "final_weights": weights_by_layer(model),
        "predict": tolist(model.predict(x, batch_size=BATCH, verbose=0)),
        "evaluate": float(np.float32(model.evaluate(x, y, batch_size=BATCH, verbose=0,
                                                    return_dict=True)["loss"])),
    }
    path = os.path.join(OUT_DIR, f"keras_conv_{name}.json")
    with open(path, "w") as fh:
        json.dump(record, fh, separators=(",", ":"))
        fh.write("\n")
    return path, record


# ------------------------------------------------------------------ signatures

CLASSES = ["Conv1D", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "MaxPooling1D",
           "MaxPooling2D", "AveragePooling1D", "AveragePooling2D",
           "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D",
           "GlobalMaxPooling2D", "BatchNormalization", "ZeroPadding2D", "UpSampling2D"]
# a layer of each class built on a small input: its weights' names and trainability
BUILT = {"Conv1D": (layers.Conv1D(3, 2), (None, 5, 2)),
         "Conv2D": (layers.Conv2D(3, 2), (None, 5, 5, 2)),
         "DepthwiseConv2D": (layers.DepthwiseConv2D(2, depth_multiplier=2), (None, 5, 5, 2)),
         "SeparableConv2D": (layers.SeparableConv2D(3, 2), (None, 5, 5, 2)),
         "BatchNormalization": (layers.BatchNormalization(), (None, 5, 5, 2))}


def default(value):
    if value is inspect.Parameter.empty:
        return "<required>"
    return list(value) if isinstance(value, tuple) else value


def signatures():
    out = {}
    for name in CLASSES:
        cls = getattr(layers, name)
        params = [(p.name, default(p.default))
                  for p in inspect.signature(cls.__init__).parameters.values()
                  if p.name != "self" and p.kind is not p.VAR_KEYWORD]
        entry = {"parameters": params}
        if name in BUILT:
            layer, shape = BUILT[name]
            layer.build(shape)
            entry["weights"] = [[w.name, bool(w.trainable)] for w in layer.weights]
        out[name] = entry
    path = os.path.join(OUT_DIR, "keras_conv_signatures.json")
    with open(path, "w") as fh:
        json.dump({"keras_version": keras.__version__, "script": SCRIPT,
                   "classes": out}, fh, indent=0)
        fh.write("\n")
    return path


def main(argv):
    os.makedirs(OUT_DIR, exist_ok=True)
    for name in argv[1:] or list(NETS):
        path, rec = make(name)
        h = rec["history"]
        print(f"{name}: keras {rec['keras_version']} ({rec['backend']}) -> "
              f"{os.path.relpath(path, REPO)} ({os.path.getsize(path)} bytes); loss "
              f"{h['loss'][0]:.6g} -> {h['loss'][-1]:.6g}")
    path = signatures()
    print(f"signatures -> {os.path.relpath(path, REPO)} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main(sys.argv)
