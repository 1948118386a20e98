"""Functional models (dl.Model(inputs, outputs)): graph building and its errors, the
merge and shape layers, gradients of graphs (residuals, shared layers, a tensor used
twice) against finite differences on every backend, and a chain equal to Sequential."""
import numpy as np
import pytest

import dl
from dl import layers

from dl_helpers import fd_check as _fd_check, restore_dl_state  # noqa: F401  (autouse)

BACKENDS = ["numpy", "cython", "cuda"]


def _backend(name):
    try:
        dl.config.get_backend(name)
    except ImportError as exc:      # pragma: no cover - cuda without Numba
        pytest.skip(f"{name}: {exc}")
    return name


# ------------------------------------------------------------------ graph building

def test_input_is_a_symbolic_tensor():
    x = dl.Input(shape=(3,), name="features")
    assert x.shape == (None, 3) and x.dtype == np.float32 and x.ndim == 2
    assert x.name == "features"
    assert isinstance(x.node.layer, layers.InputLayer)
    y = layers.Dense(4)(x)
    assert y.shape == (None, 4)
    assert dl.Input((2, 5), dtype="float64").dtype == np.float64
    z = layers.Dense(7)(dl.Input((2, 5)))
    assert z.shape == (None, 2, 7)          # Dense on the last axis


def test_shape_errors_are_raised_while_building():
    a, b = dl.Input((3,)), dl.Input((4,))
    with pytest.raises(ValueError, match=r"add_err: expected inputs of one shape, got "
                                         r"\(None, 3\), \(None, 4\)"):
        layers.Add(name="add_err")([a, b])
    with pytest.raises(ValueError, match=r"cat: A Concatenate layer requires inputs with "
                                         r"matching shapes"):
        layers.Concatenate(axis=1, name="cat")([dl.Input((2, 3)), dl.Input((3, 4))])
    shared = layers.Dense(2, name="shared")
    shared(a)
    with pytest.raises(ValueError, match=r"shared: called on inputs of shape \(None, 4\), "
                                         r"but it was first called on \(None, 3\)"):
        shared(b)
    with pytest.raises(ValueError, match=r"subtract.*exactly 2 inputs, got 3"):
        layers.Subtract()([a, a, a])
    with pytest.raises(ValueError, match=r"dot.*Incompatible input shapes"):
        layers.Dot(axes=1, name="dot")([a, b])
    with pytest.raises(ValueError, match=r"x @ y multiplies the matrices"):
        a @ a
    with pytest.raises(TypeError, match="takes one tensor"):
        layers.Dense(2)([a, b])
    with pytest.raises(TypeError, match="expected a list of symbolic tensors"):
        layers.Add()(a)


def test_what_tracing_cannot_do_raises():
    x = dl.Input((3,))
    with pytest.raises(TypeError, match="NumPy functions cannot be applied"):
        np.exp(np.asarray(x))
    with pytest.raises(TypeError, match="cannot decide Python control flow"):
        if x:
            pass
    with pytest.raises(TypeError, match="combines with another symbolic tensor"):
        x + "1"
    assert (x + 1.0).node.layer.shift == 1.0        # a number: an affine op layer
    with pytest.raises(TypeError, match="has no length"):
        len(x)


def test_model_errors():
    x = dl.Input((3,))
    other = dl.Input((3,), name="other")
    y = layers.Dense(2)(x + other)
    with pytest.raises(ValueError, match="Graph disconnected.*'other'"):
        dl.Model(x, y)
    with pytest.raises(ValueError, match="is one of the model's inputs"):
        dl.Model(x, x)
    h = layers.Dense(2)(x)
    with pytest.raises(ValueError, match="expected tensors made by dl.Input"):
        dl.Model(h, layers.Dense(1)(h))
    with pytest.raises(TypeError, match="outputs: expected a symbolic tensor"):
        dl.Model(x, np.zeros(3))
    with pytest.raises(TypeError, match="subclass of dl.Model"):
        dl.Model()


def test_structure_and_get_layer():
    x = dl.Input((4,), name="x_in")
    h = layers.Dense(3, name="hidden")(x)
    y = layers.Dense(1, name="out")(layers.Add(name="res")([h, layers.Dense(3, name="skip")(x)]))
    model = dl.Model(inputs=x, outputs=y, name="residual")
    assert isinstance(model, dl.Model) and isinstance(model, dl.functional.Functional)
    assert isinstance(dl.Sequential(), dl.Model)
    assert [layer.name for layer in model.layers] == ["x_in", "hidden", "skip", "res", "out"]
    assert model.get_layer("res").__class__ is layers.Add
    assert model.get_layer(index=1).name == "hidden"
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        model.get_layer("nope")
    assert model.inputs == [x] and model.outputs == [y]
    assert model.input_shape == (None, 4) and model.output_shape == (None, 1)
    assert model.count_params() == 4 * 3 + 3 + 4 * 3 + 3 + 3 + 1
    assert not model._is_chain


# ------------------------------------------------------------------ merge layers

def _values(rng, *shapes):
    return [rng.normal(size=s).astype(np.float64) for s in shapes]


MERGE_CASES = [
    ("add", lambda: layers.Add(), [(5, 3)] * 3, lambda a, b, c: a + b + c),
    ("subtract", lambda: layers.Subtract(), [(5, 3)] * 2, lambda a, b: a - b),
    ("multiply", lambda: layers.Multiply(), [(5, 3)] * 3, lambda a, b, c: a * b * c),
    ("average", lambda: layers.Average(), [(5, 3)] * 3, lambda a, b, c: (a + b + c) / 3),
    ("maximum", lambda: layers.Maximum(), [(5, 3)] * 3,
     lambda a, b, c: np.maximum(np.maximum(a, b), c)),
    ("minimum", lambda: layers.Minimum(), [(5, 3)] * 2, np.minimum),
    ("concat_last", lambda: layers.Concatenate(), [(5, 2), (5, 3)],
     lambda a, b: np.concatenate([a, b], axis=-1)),
    ("concat_axis1", lambda: layers.Concatenate(axis=1), [(5, 2, 3), (5, 1, 3)],
     lambda a, b: np.concatenate([a, b], axis=1)),
    ("concat_axis2", lambda: layers.Concatenate(axis=2), [(5, 2, 3), (5, 2, 4)],
     lambda a, b: np.concatenate([a, b], axis=2)),
    ("dot_2d", lambda: layers.Dot(axes=1), [(5, 3), (5, 3)],
     lambda a, b: (a * b).sum(axis=1, keepdims=True)),
    ("dot_3d_21", lambda: layers.Dot(axes=(2, 1)), [(5, 2, 3), (5, 3, 4)],
     lambda a, b: a @ b),
    ("dot_3d_22", lambda: layers.Dot(axes=2), [(5, 2, 3), (5, 4, 3)],
     lambda a, b: a @ b.transpose(0, 2, 1)),
    ("dot_3d_11", lambda: layers.Dot(axes=1), [(5, 3, 2), (5, 3, 4)],
     lambda a, b: a.transpose(0, 2, 1) @ b),
    ("dot_3d_12", lambda: layers.Dot(axes=(1, 2)), [(5, 3, 2), (5, 4, 3)],
     lambda a, b: a.transpose(0, 2, 1) @ b.transpose(0, 2, 1)),
    ("dot_2d_normalize", lambda: layers.Dot(axes=1, normalize=True), [(5, 3), (5, 3)],
     lambda a, b: (_l2(a, 1) * _l2(b, 1)).sum(axis=1, keepdims=True)),
    ("dot_3d_normalize", lambda: layers.Dot(axes=(1, 2), normalize=True),
     [(5, 3, 2), (5, 4, 3)],
     lambda a, b: _l2(a, 1).transpose(0, 2, 1) @ _l2(b, 2).transpose(0, 2, 1)),
]


def _l2(a, axis):
    """Keras's ops.normalize: x * min(1 / sqrt(sum x^2), 1 / 1e-7) along ``axis``."""
    return a * np.minimum(1 / np.sqrt((a * a).sum(axis=axis, keepdims=True)), 1e7)


@pytest.mark.parametrize("be", BACKENDS)
@pytest.mark.parametrize("name,make,shapes,expect", MERGE_CASES, ids=[c[0] for c in MERGE_CASES])
def test_merge_layer_values(name, make, shapes, expect, be):
    dl.set_backend(_backend(be))
    rng = np.random.default_rng(0)
    xs = _values(rng, *shapes)
    out = make()(xs)
    np.testing.assert_allclose(out, expect(*xs), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("be", ["numpy", "cython"])
@pytest.mark.parametrize("name,make,shapes,expect", MERGE_CASES, ids=[c[0] for c in MERGE_CASES])
def test_merge_layer_gradients(name, make, shapes, expect, be):
    """Each input goes through its own Dense first, so the merge's gradient with
    respect to every input reaches a weight: all against finite differences."""
    rng = np.random.default_rng(1)
    # one input feeds every branch through a Dense (and a Reshape) of its own
    x = dl.Input((7,), dtype="float64")
    branches = []
    for s in shapes:
        size = int(np.prod(s[1:]))
        h = layers.Dense(size, dtype="float64", kernel_initializer="random_normal",
                         bias_initializer="random_normal")(x)
        branches.append(layers.Reshape(s[1:])(h) if len(s) > 2 else h)
    merged = make()(branches)
    out = layers.Dense(2, dtype="float64")(layers.Flatten()(merged) if merged.ndim > 2
                                           else merged)
    model = dl.Model(x, out, backend=be)
    model.compile("sgd", "mse")
    xb, yb = rng.normal(size=(4, 7)), rng.normal(size=(4, 2))
    _fd_check(model, xb, yb)


# ------------------------------------------------------------------ shape layers

SHAPE_CASES = [
    ("reshape", lambda: layers.Reshape((3, 2)), (4, 6), lambda a: a.reshape(4, 3, 2)),
    ("reshape_infer", lambda: layers.Reshape((-1, 3)), (4, 2, 3), lambda a: a.reshape(4, 2, 3)),
    ("permute", lambda: layers.Permute((2, 1)), (4, 2, 3), lambda a: a.transpose(0, 2, 1)),
    ("permute3", lambda: layers.Permute((3, 1, 2)), (2, 2, 3, 4),
     lambda a: a.transpose(0, 3, 1, 2)),
    ("repeat", lambda: layers.RepeatVector(3), (4, 5),
     lambda a: np.repeat(a[:, None, :], 3, axis=1)),
    ("identity", lambda: layers.Identity(), (4, 5), lambda a: a),
]


@pytest.mark.parametrize("be", BACKENDS)
@pytest.mark.parametrize("name,make,shape,expect", SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES])
def test_shape_layer_values(name, make, shape, expect, be):
    dl.set_backend(_backend(be))
    a = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    np.testing.assert_array_equal(make()(a), expect(a))


@pytest.mark.parametrize("name,make,shape,expect", SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES])
def test_shape_layer_gradients(name, make, shape, expect):
    rng = np.random.default_rng(2)
    x = dl.Input((3,), dtype="float64")
    size = int(np.prod(shape[1:]))
    h = layers.Dense(size, dtype="float64", kernel_initializer="random_normal")(x)
    if len(shape) > 2:
        h = layers.Reshape(shape[1:])(h)
    h = make()(h)
    out = layers.Dense(2, dtype="float64")(layers.Flatten()(h) if h.ndim > 2 else h)
    model = dl.Model(x, out, backend="cython")
    model.compile("sgd", "mse")
    _fd_check(model, rng.normal(size=(3, 3)), rng.normal(size=(3, 2)))


def test_shape_layer_errors():
    with pytest.raises(ValueError, match="total size of the new array must be unchanged"):
        layers.Reshape((4,))(dl.Input((3,)))
    with pytest.raises(ValueError, match="Invalid permutation argument"):
        layers.Permute((1, 3))
    with pytest.raises(ValueError, match=r"dims \(2, 1\) permute 2 sample axes"):
        layers.Permute((2, 1))(dl.Input((3,)))
    with pytest.raises(ValueError, match="n: expected a positive int"):
        layers.RepeatVector(0)
    with pytest.raises(ValueError, match="expected inputs of shape \\(batch, features\\)"):
        layers.RepeatVector(2)(dl.Input((2, 3)))


# ------------------------------------------------------------------ graph gradients

def _residual_model(be, dtype="float64"):
    dl.utils.set_random_seed(5)
    x = dl.Input((4,), dtype=dtype)
    h = layers.Dense(6, activation="tanh", dtype=dtype)(x)
    r = layers.Dense(6, activation="sigmoid", dtype=dtype)(h)
    h = h + r                                    # residual: h used twice
    shared = layers.Dense(6, activation="tanh", dtype=dtype, name="shared")
    h = shared(shared(h))                        # one layer, two calls
    h = layers.Concatenate()([h, x]) - layers.Dense(10, dtype=dtype)(x)
    y = layers.Dense(2, dtype=dtype)(layers.LayerNormalization(dtype=dtype)(h))
    model = dl.Model(x, y, backend=be)
    model.compile("sgd", "mse")
    return model


@pytest.mark.parametrize("be", ["numpy", "cython"])
def test_graph_gradients_match_finite_differences(be):
    rng = np.random.default_rng(3)
    model = _residual_model(be)
    assert id(model.get_layer("shared")) in model._shared
    _fd_check(model, rng.normal(size=(5, 4)), rng.normal(size=(5, 2)))


def test_graph_gradients_on_every_backend_agree():
    _backend("cuda")
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(5, 4)), rng.normal(size=(5, 2))
    ref = _residual_model("numpy")
    out = {}
    for be in BACKENDS:
        model = _residual_model(be)
        model.set_weights(ref.get_weights())
        out[be] = model.compute_gradients(x, y)
        np.testing.assert_allclose(model.predict(x, verbose=0), ref.predict(x, verbose=0),
                                   rtol=1e-12, atol=1e-12)
    for be in BACKENDS[1:]:
        assert out[be][0] == pytest.approx(out["numpy"][0], rel=1e-12)
        for g, g0 in zip(out[be][1], out["numpy"][1]):
            np.testing.assert_allclose(g, g0, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("be", BACKENDS)
def test_graph_training_is_the_same_on_every_backend(be):
    _backend(be)
    rng = np.random.default_rng(6)
    x = rng.normal(size=(16, 4)).astype(np.float32)
    y = rng.normal(size=(16, 2)).astype(np.float32)
    ref = _residual_model("numpy", "float32")
    ref.compile("adam", "mse")
    model = _residual_model(be, "float32")
    model.set_weights(ref.get_weights())
    model.compile("adam", "mse")
    h0 = ref.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0).history["loss"]
    h1 = model.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(h1, h0, rtol=1e-4)
    assert h1[-1] < h1[0]


def test_shared_dropout_draws_a_mask_per_call():
    x = dl.Input((200,), dtype="float64")
    drop = layers.Dropout(0.5)
    a, b = drop(x), drop(x)
    model = dl.Model(x, layers.Dense(1, dtype="float64")(layers.Concatenate()([a, b])))
    model.compile("sgd", "mse")
    model._run_forward(np.ones((1, 200)), 0)
    m0 = model._nodes[0].saved[0]
    m1 = model._nodes[1].saved[0]
    assert not np.array_equal(m0, m1)


# ------------------------------------------------------------------ chains

def test_functional_chain_equals_sequential_bit_for_bit():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(64, 8)).astype(np.float32)
    y = rng.integers(0, 3, size=64)
    seq = dl.Sequential([layers.Dense(16, activation="relu", input_shape=(8,)),
                         layers.Dense(16, activation="relu"),
                         layers.Dense(3, activation="softmax")], backend="cython")
    inp = dl.Input((8,))
    h = layers.Dense(16, activation="relu")(inp)
    h = layers.Dense(16, activation="relu")(h)
    fun = dl.Model(inp, layers.Dense(3, activation="softmax")(h), backend="cython")
    assert fun._is_chain
    fun.set_weights(seq.get_weights())
    fun.seed = seq.seed                 # the same shuffles
    for m in (seq, fun):
        m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    h0 = seq.fit(x, y, epochs=3, batch_size=16, verbose=0).history
    h1 = fun.fit(x, y, epochs=3, batch_size=16, verbose=0).history
    assert h0 == h1
    for a, b in zip(seq.get_weights(), fun.get_weights()):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ saving, summary

def test_config_round_trip_rebuilds_the_graph(tmp_path):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(5, 4))
    model = _residual_model("cython")
    cfg = model.get_config()
    import json
    assert json.loads(json.dumps(cfg)) == cfg
    shared = next(e for e in cfg["layers"] if e["name"] == "shared")
    assert len(shared["inbound_nodes"]) == 2            # called twice
    assert shared["inbound_nodes"][1] == [["shared", 0, 0]]
    again = dl.Model.from_config(cfg)
    assert [layer.name for layer in again.layers] == [layer.name for layer in model.layers]
    assert again.get_config() == cfg
    again.set_weights(model.get_weights())
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    # save and load: architecture, weights, compile settings and optimizer state
    y = rng.normal(size=(5, 2))
    model.compile("adam", "mse", metrics=["mae"])
    model.fit(x, y, epochs=2, verbose=0)
    path = tmp_path / "graph.dlk"
    model.save(path)
    loaded = dl.load_model(path)
    assert isinstance(loaded, dl.functional.Functional)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    h0 = model.fit(x, y, epochs=2, verbose=0, shuffle=False).history
    h1 = loaded.fit(x, y, epochs=2, verbose=0, shuffle=False).history
    assert h0 == h1                                    # training continues identically
    model.save_weights(tmp_path / "w.dlk")
    fresh = _residual_model("numpy")
    fresh.load_weights(tmp_path / "w.dlk")
    np.testing.assert_allclose(fresh.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-12)


def test_functional_summary_shows_connections():
    x = dl.Input((4,), name="x")
    h = layers.Dense(3, name="h")(x)
    s = layers.Add(name="res")([h, layers.Dense(3, name="skip")(x)])
    model = dl.Model(x, layers.Dense(1, name="out")(s), name="res_mlp")
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert 'Model: "res_mlp"' in text and "Connected to" in text
    row = next(line for line in lines if line.startswith("│ res (Add)"))
    assert "(None, 3)" in row and "h[0][0], skip[0][0]" in row
    assert any(line.startswith("│ x (InputLayer)") and "-" in line for line in lines)
    assert f"Total params: {model.count_params():,}" in text


# ------------------------------------------------------------------ several inputs

def _two_input_model(be, dtype="float64"):
    dl.utils.set_random_seed(11)
    num = dl.Input((3,), name="num", dtype=dtype)
    img = dl.Input((2, 2), name="img", dtype=dtype)
    flat = layers.Flatten()(img)
    h = layers.Concatenate()([layers.Dense(4, activation="relu", dtype=dtype)(num), flat])
    out = layers.Dense(2, dtype=dtype, name="out")(h)
    model = dl.Model(inputs={"num": num, "img": img}, outputs=out, backend=be)
    model.compile("adam", "mse")
    return model


@pytest.mark.parametrize("be", BACKENDS)
def test_two_inputs_train_from_lists_and_dicts(be):
    _backend(be)
    rng = np.random.default_rng(12)
    num, img = rng.normal(size=(20, 3)), rng.normal(size=(20, 2, 2))
    y = rng.normal(size=(20, 2))
    model = _two_input_model(be)
    assert model._packed and model.input_shape == {"num": (None, 3), "img": (None, 2, 2)}
    ref = _two_input_model("numpy")
    ref.set_weights(model.get_weights())
    w = model.get_weights()
    expected = np.concatenate([np.maximum(num @ w[0] + w[1], 0), img.reshape(20, 4)],
                              axis=1) @ w[2] + w[3]
    for x in ({"num": num, "img": img}, [num, img], {"img": img, "num": num}):
        np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-12)
    h0 = ref.fit({"num": num, "img": img}, y, epochs=3, batch_size=8, verbose=0)
    h1 = model.fit([num, img], y, epochs=3, batch_size=8, verbose=0,
                   validation_split=0.25)
    assert h1.history["loss"][-1] < h1.history["loss"][0]
    assert "val_loss" in h1.history
    assert len(h0.history["loss"]) == 3


def test_two_input_gradients_and_errors():
    rng = np.random.default_rng(13)
    model = _two_input_model("cython")
    x = {"num": rng.normal(size=(4, 3)), "img": rng.normal(size=(4, 2, 2))}
    _fd_check(model, x, rng.normal(size=(4, 2)))
    with pytest.raises(ValueError, match=r"x\['img'\]: expected samples of shape \(2, 2\)"):
        model.predict({"num": np.zeros((4, 3)), "img": np.zeros((4, 4))}, verbose=0)
    with pytest.raises(ValueError, match=r"x: missing the input 'img'"):
        model.predict({"num": np.zeros((4, 3))}, verbose=0)
    with pytest.raises(ValueError, match=r"x\[1\]: expected 4 samples"):
        model.predict([np.zeros((4, 3)), np.zeros((5, 2, 2))], verbose=0)
    with pytest.raises(ValueError, match=r"x: the model has 2 inputs"):
        model.predict(np.zeros((4, 3)), verbose=0)


def _two_output_model(be="cython", dtype="float64"):
    dl.utils.set_random_seed(21)
    x = dl.Input((4,), name="x", dtype=dtype)
    h = layers.Dense(5, activation="tanh", dtype=dtype, name="h")(x)
    reg = layers.Dense(2, dtype=dtype, name="reg")(h)
    cls = layers.Dense(3, activation="softmax", dtype=dtype, name="cls")(h)
    return dl.Model(x, [reg, cls], backend=be)


def test_two_outputs_gradients_with_loss_weights():
    rng = np.random.default_rng(22)
    model = _two_output_model()
    model.compile("sgd", ["mse", "sparse_categorical_crossentropy"], loss_weights=[0.3, 2.0])
    assert model.get_layer("cls").fuse_softmax_loss
    x = rng.normal(size=(6, 4))
    y = [rng.normal(size=(6, 2)), rng.integers(0, 3, size=6)]
    loss, _ = model.compute_gradients(x, y)
    reg, cls = model.predict(x, verbose=0)
    mse = np.mean((reg - y[0]) ** 2)
    xent = -np.mean(np.log(cls[np.arange(6), y[1]]))
    assert loss == pytest.approx(0.3 * mse + 2.0 * xent, rel=1e-12)
    _fd_check(model, x, y)


def test_two_outputs_logs_evaluate_predict_and_errors(tmp_path):
    rng = np.random.default_rng(23)
    model = _two_output_model()
    model.compile("adam", {"reg": "mse", "cls": "sparse_categorical_crossentropy"},
                  metrics={"cls": ["accuracy"], "reg": "mae"},
                  weighted_metrics={"cls": "accuracy"}, loss_weights={"cls": 0.5})
    x = rng.normal(size=(20, 4))
    y = {"reg": rng.normal(size=(20, 2)), "cls": rng.integers(0, 3, size=20)}
    history = model.fit(x, y, epochs=2, batch_size=8, validation_split=0.25,
                        verbose=0).history
    assert sorted(history) == sorted(
        ["loss", "reg_loss", "cls_loss", "reg_mae", "cls_accuracy", "cls_weighted_accuracy"]
        + ["val_" + k for k in ("loss", "reg_loss", "cls_loss", "reg_mae", "cls_accuracy",
                                "cls_weighted_accuracy")])
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    reg, cls = model.predict(x, verbose=0)
    mse = np.mean((reg - y["reg"]) ** 2)
    xent = -np.mean(np.log(cls[np.arange(20), y["cls"]]))
    assert logs["reg_loss"] == pytest.approx(mse, rel=1e-10)
    assert logs["cls_loss"] == pytest.approx(xent, rel=1e-10)
    assert logs["loss"] == pytest.approx(mse + 0.5 * xent, rel=1e-10)
    assert logs["reg_mae"] == pytest.approx(np.mean(np.abs(reg - y["reg"])), rel=1e-10)
    assert logs["cls_accuracy"] == pytest.approx(np.mean(cls.argmax(1) == y["cls"]))
    # save and load: the per-output compile settings come back
    model.save(tmp_path / "two.dlk")
    loaded = dl.load_model(tmp_path / "two.dlk")
    assert loaded.evaluate(x, y, verbose=0, return_dict=True) == pytest.approx(logs)
    # errors, named
    with pytest.raises(ValueError, match=r"loss: unknown output 'nope'"):
        model.compile("sgd", {"nope": "mse"})
    with pytest.raises(ValueError, match=r"loss: expected one entry per output \(2"):
        model.compile("sgd", ["mse"])
    with pytest.raises(ValueError, match=r"metrics: a model with 2 outputs takes"):
        model.compile("sgd", "mse", metrics="mae")
    model.compile("sgd", ["mse", "sparse_categorical_crossentropy"])
    with pytest.raises(ValueError, match=r"y: the model has 2 outputs"):
        model.fit(x, y["reg"], verbose=0)
    with pytest.raises(ValueError, match=r"y\[1\]: expected 20 targets"):
        model.fit(x, [y["reg"], y["cls"][:5]], verbose=0)
    with pytest.raises(ValueError, match="class_weight: not supported for a model with "
                                         "several outputs"):
        model.fit(x, [y["reg"], y["cls"]], class_weight={0: 1.0}, verbose=0)


def test_an_output_without_a_loss_is_not_trained_on():
    rng = np.random.default_rng(24)
    model = _two_output_model("numpy")
    model.compile("sgd", [None, "sparse_categorical_crossentropy"],
                  metrics=[["mae"], None])
    x = rng.normal(size=(6, 4))
    y = [rng.normal(size=(6, 2)), rng.integers(0, 3, size=6)]
    reg_before = model.get_layer("reg").get_weights()
    history = model.fit(x, y, epochs=2, verbose=0).history
    assert sorted(history) == ["cls_loss", "loss", "reg_mae"]
    for a, b in zip(reg_before, model.get_layer("reg").get_weights()):
        np.testing.assert_array_equal(a, b)           # no loss reaches it
    assert history["loss"] == history["cls_loss"]



def test_sequential_refuses_merge_layers():
    with pytest.raises(TypeError, match=r"layer: add_m \(Add\) combines a list of tensors"):
        dl.Sequential([dl.Input((3,)), layers.Add(name="add_m")])


@pytest.mark.parametrize("be", ["numpy", "cython"])
def test_shared_softmax_output_is_not_fused(be):
    """A softmax Dense called twice, its last call the output: the fused softmax
    cross-entropy would hand its first call dL/dlogits; the graph's gradients must be
    the finite differences' (and the fusion off)."""
    rng = np.random.default_rng(14)
    x = dl.Input((3,), dtype="float64")
    sm = layers.Dense(3, activation="softmax", dtype="float64", name="sm")
    model = dl.Model(x, sm(sm(x)), backend=be)
    model.compile("sgd", "categorical_crossentropy")
    assert not model.get_layer("sm").fuse_softmax_loss
    y = np.eye(3)[rng.integers(0, 3, size=5)]
    _fd_check(model, rng.normal(size=(5, 3)), y)
    single = dl.Model(x, layers.Dense(3, activation="softmax", dtype="float64",
                                      name="sm1")(x))
    single.compile("sgd", "categorical_crossentropy")
    assert single.get_layer("sm1").fuse_softmax_loss


def test_two_outputs_resume_mid_epoch_with_every_sum(tmp_path):
    """BackupAndRestore mid-epoch on a two-output model: the resumed fit logs the same
    per-output losses as the fit that ran through (their running sums are in the
    backup too)."""
    class Interrupt(dl.callbacks.Callback):
        def __init__(self, after):
            super().__init__()
            self.left = after

        def on_train_batch_end(self, batch, logs=None):
            self.left -= 1
            if self.left == 0:
                raise KeyboardInterrupt

    rng = np.random.default_rng(25)
    x = rng.normal(size=(20, 4))
    y = [rng.normal(size=(20, 2)), rng.integers(0, 3, size=20)]

    def fresh():
        model = _two_output_model("cython")
        model.compile("adam", ["mse", "sparse_categorical_crossentropy"],
                      loss_weights=[1.0, 0.5], metrics=[[], ["accuracy"]])
        return model
    model = fresh()
    weights = model.get_weights()
    expected = model.fit(x, y, epochs=2, batch_size=8, verbose=0).history
    backup = tmp_path / "backup"
    first = fresh()
    first.set_weights(weights)
    first.seed = model.seed
    with pytest.raises(KeyboardInterrupt):
        first.fit(x, y, epochs=2, batch_size=8, verbose=0,
                  callbacks=[dl.callbacks.BackupAndRestore(backup, save_freq=1),
                             Interrupt(4)])
    resumed = fresh()
    history = resumed.fit(x, y, epochs=2, batch_size=8, verbose=0,
                          callbacks=[dl.callbacks.BackupAndRestore(backup, save_freq=1)]
                          ).history
    assert sorted(history) == sorted(expected)
    done = len(expected["loss"]) - len(history["loss"])
    for key in expected:
        np.testing.assert_array_equal(history[key], expected[key][done:], err_msg=key)
