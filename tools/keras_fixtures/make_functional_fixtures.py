"""Write Keras reference numbers for dl's functional-model tests.

This script is kept for provenance only: it is NOT part of the library, is not
imported by the tests, and Keras is NOT a dependency of dlkernels.  It builds
four small Keras 3 functional graphs ("residual", "merge", "shapes",
"two_in_two_out"), trains each full-batch for 20 epochs and writes what Keras
computed to

    tests/dl/fixtures/keras_functional_<graph>.json

Each JSON file holds: "keras_version", "backend", "script" (this file's repo
path), "x" and "y" (the data, nested lists, or dicts of them), "initial_weights"
and "final_weights" (layer name -> that layer's get_weights(), Keras order, for
every layer that has weights), "history" (the History dict from fit, every key
Keras logged) and "predict" (model.predict(x) after training, list or dict as
Keras returns it).  "two_in_two_out" also holds "history_list_form": the same
graph rebuilt with list inputs/outputs/losses/loss_weights/metrics, started
from the same initial weights.  Everything is float32 (Keras's default);
float32 -> Python float via .tolist() is exact.

Run it from the repo root with a private Keras environment kept outside the
repo (never the project's venv), e.g.:

    python3.11 -m venv /tmp/kvenv
    /tmp/kvenv/bin/pip install "keras==3.15.1" torch numpy
    KERAS_BACKEND=torch /tmp/kvenv/bin/python tools/keras_fixtures/make_functional_fixtures.py
"""

import json
import os
import sys

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402
from keras import layers  # noqa: E402

SCRIPT = "tools/keras_fixtures/make_functional_fixtures.py"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT_DIR = os.path.join(REPO, "tests", "dl", "fixtures")

N = 32
EPOCHS = 20
DATA_SEEDS = {"residual": 101, "merge": 102, "shapes": 103, "two_in_two_out": 104}


def tolist(a):
    """Nested lists of an array (float32 -> exact Python floats, ints as ints)."""
    if isinstance(a, dict):
        return {k: tolist(v) for k, v in a.items()}
    if isinstance(a, (list, tuple)):
        return [tolist(v) for v in a]
    a = np.asarray(a)
    if a.dtype.kind == "f":
        a = a.astype(np.float32)
    return a.tolist()


def weights_by_layer(model):
    return {
        layer.name: [np.asarray(w, dtype=np.float32).tolist() for w in layer.get_weights()]
        for layer in model.layers
        if layer.get_weights()
    }


def history_dict(history):
    return {k: [float(np.float32(v)) for v in vals] for k, vals in history.history.items()}


def run(model, x, y):
    init = weights_by_layer(model)
    hist = model.fit(x, y, epochs=EPOCHS, batch_size=N, shuffle=False, verbose=0)
    pred = model.predict(x, batch_size=N, verbose=0)
    return init, history_dict(hist), weights_by_layer(model), pred


# ----------------------------------------------------------------- graphs

def build_residual():
    x = keras.Input((4,), name="x")
    h = layers.Dense(8, activation="tanh", name="h")(x)
    r = layers.Dense(8, activation="relu", name="r")(h)
    s = h + r
    shared = layers.Dense(8, activation="tanh", name="shared")
    s2 = shared(shared(s))
    c = layers.Concatenate(name="cat")([s2, x])
    out = layers.Dense(1, name="out")(c)
    model = keras.Model(x, out)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    return model


def data_residual(rng):
    x = rng.normal(size=(N, 4)).astype(np.float32)
    y = (x.sum(axis=1, keepdims=True) + 0.1 * rng.normal(size=(N, 1))).astype(np.float32)
    return x, y


def build_merge():
    x = keras.Input((6,), name="x")
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
    out = layers.Dense(3, activation="softmax", name="out")(n)
    model = keras.Model(x, out)
    model.compile(
        optimizer=keras.optimizers.RMSprop(0.01),
        loss="categorical_crossentropy",
        metrics=["categorical_accuracy"],
    )
    return model


def data_merge(rng):
    x = rng.normal(size=(N, 6)).astype(np.float32)
    labels = rng.integers(0, 3, size=N)
    y = np.eye(3, dtype=np.float32)[labels]
    return x, y


def build_shapes():
    x = keras.Input((6,), name="x")
    h = layers.Dense(12, activation="relu", name="h")(x)
    r = layers.Reshape((3, 4), name="reshape")(h)
    p = layers.Permute((2, 1), name="permute")(r)
    d = layers.Dense(5, activation="tanh", name="dense3d")(p)
    f = layers.Flatten(name="flat")(d)
    rv = layers.RepeatVector(2, name="repeat")(layers.Dense(3, name="small")(x))
    mm = rv @ layers.Reshape((3, 2), name="reshape2")(layers.Dense(6, name="six")(x))
    c = layers.Concatenate(name="cat")([f, layers.Flatten(name="flat2")(mm)])
    out = layers.Dense(2, name="out")(c)
    model = keras.Model(x, out)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    return model


def data_shapes(rng):
    x = rng.normal(size=(N, 6)).astype(np.float32)
    y = rng.normal(size=(N, 2)).astype(np.float32)
    return x, y


def _two_in_two_out_tensors():
    num = keras.Input((3,), name="num")
    cat = keras.Input((1,), dtype="int32", name="cat")
    e = layers.Embedding(10, 4, name="emb")(cat)
    ef = layers.Flatten(name="emb_flat")(e)
    c = layers.Concatenate(name="cat_all")([num, ef])
    h = layers.Dense(8, activation="relu", name="h")(c)
    price = layers.Dense(1, name="price")(h)
    kind = layers.Dense(3, activation="softmax", name="kind")(h)
    return num, cat, price, kind


def build_two_in_two_out():
    num, cat, price, kind = _two_in_two_out_tensors()
    model = keras.Model(inputs={"num": num, "cat": cat}, outputs={"price": price, "kind": kind})
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss={"price": "mse", "kind": "sparse_categorical_crossentropy"},
        loss_weights={"price": 1.0, "kind": 0.5},
        metrics={"kind": ["accuracy"]},
    )
    return model


def build_two_in_two_out_list_form():
    num, cat, price, kind = _two_in_two_out_tensors()
    model = keras.Model(inputs=[num, cat], outputs=[price, kind])
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=["mse", "sparse_categorical_crossentropy"],
        loss_weights=[1.0, 0.5],
        metrics=[[], ["accuracy"]],
    )
    return model


def data_two_in_two_out(rng):
    num = rng.normal(size=(N, 3)).astype(np.float32)
    cat = rng.integers(0, 10, size=(N, 1)).astype(np.int32)
    price = (num.sum(axis=1, keepdims=True) + (cat == 3)).astype(np.float32)
    kind = rng.integers(0, 3, size=(N,)).astype(np.int32)
    return {"num": num, "cat": cat}, {"price": price, "kind": kind}


GRAPHS = {
    "residual": (build_residual, data_residual),
    "merge": (build_merge, data_merge),
    "shapes": (build_shapes, data_shapes),
    "two_in_two_out": (build_two_in_two_out, data_two_in_two_out),
}


def make(name):
    build, data = GRAPHS[name]
    x, y = data(np.random.default_rng(DATA_SEEDS[name]))
    keras.utils.set_random_seed(0)
    model = build()
    init, hist, final, pred = run(model, x, y)
    record = {
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
        "script": SCRIPT,
        "graph": name,
        "data_seed": DATA_SEEDS[name],
        "epochs": EPOCHS,
        "batch_size": N,
        "x": tolist(x),
        "y": tolist(y),
        "initial_weights": init,
        "history": hist,
        "final_weights": final,
        "predict": tolist(pred),
    }
    if name == "two_in_two_out":
        keras.utils.set_random_seed(0)
        model2 = build_two_in_two_out_list_form()
        for layer in model2.layers:
            if layer.name in init:
                layer.set_weights([np.asarray(w, dtype=np.float32) for w in init[layer.name]])
        assert weights_by_layer(model2) == init
        x_list = [x["num"], x["cat"]]
        y_list = [y["price"], y["kind"]]
        hist2 = model2.fit(x_list, y_list, epochs=EPOCHS, batch_size=N, shuffle=False, verbose=0)
        record["history_list_form"] = history_dict(hist2)
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, "keras_functional_%s.json" % name)
    with open(path, "w") as fh:
        json.dump(record, fh, separators=(",", ":"))
        fh.write("\n")
    return path, record


def main(argv):
    names = argv[1:] or list(GRAPHS)
    for name in names:
        path, rec = make(name)
        h = rec["history"]
        print(
            "%s: keras %s (%s) -> %s (%d bytes)"
            % (name, rec["keras_version"], rec["backend"], os.path.relpath(path, REPO),
               os.path.getsize(path))
        )
        print("  history keys:", sorted(h), " loss %.6g -> %.6g" % (h["loss"][0], h["loss"][-1]))
        if "history_list_form" in rec:
            h2 = rec["history_list_form"]
            print("  list-form keys:", sorted(h2),
                  " loss %.6g -> %.6g" % (h2["loss"][0], h2["loss"][-1]))


if __name__ == "__main__":
    main(sys.argv)
