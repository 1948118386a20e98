"""Subclassed models (class M(dl.Model) with call) and dl.ops: tracing into a graph,
training on every backend, equal to the functional model of the same graph, each
op's values and gradients (finite differences), and the errors tracing raises with
the line of call that caused them."""
import numpy as np
import pytest

import dl
from dl import layers, ops

from dl_helpers import fd_check, restore_dl_state  # noqa: F401  (autouse fixture)

BACKENDS = ["numpy", "cython", "cuda"]


def _backend(name):
    try:
        dl.config.get_backend(name)
    except ImportError as exc:      # pragma: no cover - cuda without Numba
        pytest.skip(f"{name}: {exc}")
    return name


class ResidualMLP(dl.Model):
    def __init__(self, width=8, blocks=2, dtype="float64", **kwargs):
        super().__init__(**kwargs)
        self.width, self.blocks, self.dt = width, blocks, dtype
        self.inp = layers.Dense(width, activation="tanh", dtype=dtype)
        self.hidden = [layers.Dense(width, activation="tanh", dtype=dtype)
                       for _ in range(blocks)]
        self.norm = layers.LayerNormalization(dtype=dtype)
        self.out = layers.Dense(1, dtype=dtype)

    def call(self, inputs, training=False):
        h = self.inp(inputs)
        for layer in self.hidden:
            h = h + layer(h)                 # residual blocks
        return self.out(self.norm(h))

    def get_config(self):
        return {"width": self.width, "blocks": self.blocks, "dtype": self.dt}


def _data(n=24, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(dtype)
    return x, np.sin(x).sum(axis=1, keepdims=True).astype(dtype)


def test_traced_on_first_data_and_equal_to_its_functional_twin():
    x, y = _data()
    dl.utils.set_random_seed(1)
    model = ResidualMLP(backend="cython")
    assert not model.built and model.count_params() == 0
    model.compile("adam", "mse")              # before the graph exists
    h1 = model.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history
    assert model.built and isinstance(model, ResidualMLP)
    assert isinstance(model, dl.functional.Functional)
    # the same graph written as a functional model, from the same weights
    dl.utils.set_random_seed(1)
    twin = ResidualMLP(backend="cython")
    twin.build((None, 4))
    inp = dl.Input((4,), dtype="float64")
    h = twin.inp(inp)
    for layer in twin.hidden:
        h = layers.Add()([h, layer(h)])
    fun = dl.Model(inp, twin.out(twin.norm(h)), backend="cython")
    fun.set_weights(twin.get_weights())
    fun.compile("adam", "mse")
    h2 = fun.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history
    assert h1 == h2


@pytest.mark.parametrize("be", BACKENDS)
def test_trains_the_same_on_every_backend(be):
    _backend(be)
    x, y = _data(n=16, seed=2)
    ref = ResidualMLP(backend="numpy")
    ref.compile("sgd", "mse")
    ref.build((None, 4))
    model = ResidualMLP(backend=be)
    model.build((None, 4))
    model.set_weights(ref.get_weights())
    model.compile("sgd", "mse")
    h0 = ref.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0).history["loss"]
    h1 = model.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(h1, h0, rtol=1e-10)
    assert h1[-1] < h1[0]


def test_gradients_match_finite_differences():
    x, y = _data(n=5, seed=3)
    model = ResidualMLP(backend="cython")
    model.compile("sgd", "mse")
    model.build((None, 4))
    fd_check(model, x, y)


def test_saving_config_and_summary(tmp_path):
    x, y = _data(seed=4)
    model = ResidualMLP(width=6, backend="cython")
    lines = []
    model.summary(print_fn=lines.append)           # unbuilt: no layers yet
    assert "Total params: 0" in "\n".join(lines)
    model.compile("adam", "mse")
    model.fit(x, y, epochs=2, verbose=0)
    model.save_weights(tmp_path / "w.dlk")
    again = ResidualMLP.from_config(model.get_config())
    assert again.width == 6
    again.build((None, 4))
    again.load_weights(tmp_path / "w.dlk")
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    model.save(tmp_path / "m.dlk")                   # the traced graph: a functional model
    loaded = dl.load_model(tmp_path / "m.dlk")
    assert not isinstance(loaded, ResidualMLP)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    mine = dl.load_model(tmp_path / "m.dlk", custom_objects={"ResidualMLP": ResidualMLP})
    assert isinstance(mine, ResidualMLP) and mine.width == 6
    np.testing.assert_array_equal(mine.predict(x, verbose=0), model.predict(x, verbose=0))
    h0 = model.fit(x, y, epochs=2, shuffle=False, verbose=0).history
    h1 = mine.fit(x, y, epochs=2, shuffle=False, verbose=0).history
    assert h0 == h1                                  # optimizer state restored too


class TwoHeads(dl.Model):
    def __init__(self):
        super().__init__()
        self.num = layers.Dense(4, activation="relu", dtype="float64")
        self.emb = layers.Embedding(5, 2, dtype="float64")
        self.reg = layers.Dense(1, dtype="float64", name="reg_head")
        self.cls = layers.Dense(3, activation="softmax", dtype="float64", name="cls_head")

    def call(self, inputs, training=False):
        h = ops.concatenate([self.num(inputs["num"]),
                             ops.reshape(self.emb(inputs["ids"]), (-1, 2))])
        return {"reg": self.reg(h), "cls": self.cls(h)}


def test_dict_inputs_and_outputs():
    rng = np.random.default_rng(5)
    x = {"num": rng.normal(size=(20, 3)), "ids": rng.integers(0, 5, size=(20, 1))}
    y = {"reg": rng.normal(size=(20, 1)), "cls": rng.integers(0, 3, size=20)}
    model = TwoHeads()
    model.compile("adam", {"reg": "mse", "cls": "sparse_categorical_crossentropy"},
                  loss_weights={"cls": 0.5}, metrics={"cls": "accuracy"})
    history = model.fit(x, y, epochs=3, batch_size=5, verbose=0).history
    assert sorted(history) == ["cls_accuracy", "cls_loss", "loss", "reg_loss"]
    pred = model.predict(x, verbose=0)
    assert sorted(pred) == ["cls", "reg"] and pred["cls"].shape == (20, 3)


# ------------------------------------------------------------------ tracing errors

def _traced_error(call):
    cls = type("Broken", (dl.Model,), {"__init__": lambda self: (
        dl.Model.__init__(self), setattr(self, "d", layers.Dense(1)))[0], "call": call})
    model = cls()
    with pytest.raises(TypeError) as info:
        model.predict(np.ones((2, 3)), verbose=0)
    return str(info.value)


def test_what_cannot_be_traced_names_the_line():
    def branch(self, x, training=False):
        if training:                                    # the line named
            x = ops.square(x)
        return self.d(x)
    message = _traced_error(branch)
    assert "pass training on to layers" in message and "if training:" in message
    assert "test_subclassed.py" in message

    def numpy_call(self, x):
        return self.d(np.tanh(x))
    assert "NumPy functions cannot be applied" in _traced_error(numpy_call)
    assert "np.tanh(x)" in _traced_error(numpy_call)

    def value_branch(self, x):
        if x > 0:
            return self.d(x)
        return x
    assert "cannot decide Python control flow" in _traced_error(value_branch)

    def to_float(self, x):
        return self.d(x * float(x))
    assert "no value to convert to float" in _traced_error(to_float)

    def no_tensor(self, x):
        return np.zeros(3)
    assert "must return what dl layers and dl.ops make" in _traced_error(no_tensor)


# ------------------------------------------------------------------ dl.ops

def _op_model(fn, be="cython", shape=(3, 4)):
    dl.utils.set_random_seed(6)
    x = dl.Input(shape, dtype="float64")
    h = layers.Dense(shape[-1], activation="sigmoid", dtype="float64",
                     kernel_initializer="random_normal", bias_initializer="random_normal")(x)
    g = layers.Dense(shape[-1], activation="tanh", dtype="float64",
                     kernel_initializer="random_normal")(x)
    out = fn(h, g)
    flat = layers.Flatten()(out) if len(out.shape) > 2 else out
    model = dl.Model(x, layers.Dense(2, dtype="float64")(flat), backend=be)
    model.compile("sgd", "mse")
    return model


OPS = {
    "add": lambda h, g: ops.add(h, g),
    "subtract_number": lambda h, g: 1.0 - h + (g - 2) * 3 / 4 - (-h),
    "multiply": lambda h, g: ops.multiply(h, g) * 2.0,
    "divide": lambda h, g: ops.divide(h, 4.0),
    "maximum_minimum": lambda h, g: ops.maximum(h, g) - ops.minimum(h, g),
    "matmul": lambda h, g: ops.matmul(ops.transpose(h), g),
    "transpose": lambda h, g: ops.transpose(h, (0, 2, 1)),
    "reshape": lambda h, g: ops.reshape(h, (-1, 2, 6)),
    "concatenate": lambda h, g: ops.concatenate([h, g], axis=1),
    "mean_last": lambda h, g: ops.concatenate([ops.mean(h, axis=-1, keepdims=True), g]),
    "sum_first": lambda h, g: ops.sum(g, axis=1),
    "mean_both": lambda h, g: ops.mean(h * g, axis=(1, 2), keepdims=True),
    "activations": lambda h, g: ops.relu(g) + ops.sigmoid(g) + ops.tanh(g) + ops.softmax(g),
    "exp_log_sqrt": lambda h, g: ops.exp(g) + ops.log(h) + ops.sqrt(h),
    "square_abs": lambda h, g: ops.square(g) + ops.abs(g),
    "where": lambda h, g: ops.where(g > 0.1, h, ops.square(g)),
    "where_tensor_mask": lambda h, g: ops.where(ops.greater_equal(h, g), g, h),
    "comparisons": lambda h, g: h * (ops.less(g, h) + ops.less_equal(g, 0.0)
                                     + ops.equal(g, g) + ops.not_equal(h, 0.5)),
}


@pytest.mark.parametrize("name", list(OPS))
def test_op_gradients_match_finite_differences(name):
    rng = np.random.default_rng(7)
    model = _op_model(OPS[name])
    fd_check(model, rng.normal(size=(3, 3, 4)), rng.normal(size=(3, 2)), rel=1e-5,
             abs_=1e-8)


@pytest.mark.parametrize("name", list(OPS))
def test_op_values_on_every_backend(name):
    _backend("cuda")
    rng = np.random.default_rng(8)
    x = rng.normal(size=(4, 3, 4))
    ref = _op_model(OPS[name], "numpy")
    for be in ("cython", "cuda"):
        model = _op_model(OPS[name], be)
        model.set_weights(ref.get_weights())
        np.testing.assert_allclose(model.predict(x, verbose=0), ref.predict(x, verbose=0),
                                   rtol=1e-12, atol=1e-12)


def test_op_values_by_hand():
    a = np.array([[[0.25, -1.0], [4.0, 0.0]]])
    np.testing.assert_allclose(ops.sqrt(ops.abs(a)), np.sqrt(np.abs(a)).astype(np.float32))
    np.testing.assert_allclose(ops.mean(a.astype(np.float32), axis=2), a.mean(axis=2))
    np.testing.assert_allclose(ops.sum(a.astype(np.float32), axis=(1, 2)), a.sum(axis=(1, 2)))
    np.testing.assert_array_equal(ops.where(np.array([[1.0, 0.0]]), np.array([[1.0, 2.0]]),
                                            np.array([[3.0, 4.0]])), [[1.0, 4.0]])
    with pytest.raises(ValueError, match="the batch axis 0 cannot be reduced"):
        ops.mean(dl.Input((3,)), axis=0)
    with pytest.raises(ValueError, match="batch entry comes first"):
        ops.reshape(dl.Input((4,)), (2, 2))
    with pytest.raises(ValueError, match="the batch axis 0 stays first"):
        ops.transpose(dl.Input((2, 3)), (1, 0, 2))
