"""dl.layers.Embedding: lookups, training against finite differences on every backend,
integer inputs of functional models, a Sequential that starts with it, its config and
the errors (mask_zero, ids out of range, integer tensors into float layers)."""
import numpy as np
import pytest

import dl
from dl import layers

from dl_helpers import fd_check, restore_dl_state  # noqa: F401  (autouse fixture)

BACKENDS = ["numpy", "cython", "cuda"]


def _backend(name):
    try:
        dl.config.get_backend(name)
    except ImportError as exc:      # pragma: no cover - cuda without Numba
        pytest.skip(f"{name}: {exc}")
    return name


def test_lookup_weights_and_config():
    layer = layers.Embedding(10, 3, name="emb")
    out = layer(np.array([[1, 2], [9, 0]]))
    (table,) = layer.get_weights()
    assert table.shape == (10, 3) and np.abs(table).max() <= 0.05    # "uniform" +-0.05
    np.testing.assert_array_equal(out, table[[[1, 2], [9, 0]]])
    assert layer.weight_names == ("embeddings",)
    cfg = layer.get_config()
    assert cfg["input_dim"] == 10 and cfg["output_dim"] == 3 and cfg["mask_zero"] is False
    again = layers.deserialize(layers.serialize(layer))
    assert again.get_config() == cfg
    with pytest.raises(ValueError, match="^mask_zero: dl has no masking"):
        layers.Embedding(4, 2, mask_zero=True)
    with pytest.raises(ValueError, match="^input_dim: expected a positive int"):
        layers.Embedding(0, 2)
    with pytest.raises(ValueError, match=r"^ids: expected ids in \[0, 10\), got 10"):
        layer(np.array([[10]]))
    fixed = layers.Embedding(3, 2, weights=[np.arange(6.0).reshape(3, 2)])
    np.testing.assert_array_equal(fixed(np.array([[2]])), [[[4.0, 5.0]]])


def _wide_model(be, dtype="float64"):
    dl.utils.set_random_seed(3)
    num = dl.Input((2,), name="num", dtype=dtype)
    cat = dl.Input((2,), name="cat", dtype="int32")
    e = layers.Flatten()(layers.Embedding(6, 3, dtype=dtype, name="emb",
                                          embeddings_initializer="random_normal")(cat))
    h = layers.Dense(4, activation="tanh", dtype=dtype)(layers.Concatenate()([num, e]))
    model = dl.Model([num, cat], layers.Dense(1, dtype=dtype)(h), backend=be)
    model.compile("sgd", "mse")
    return model


@pytest.mark.parametrize("be", ["numpy", "cython"])
def test_gradients_match_finite_differences(be):
    rng = np.random.default_rng(4)
    model = _wide_model(be)
    assert model.get_layer("cat").dtype == np.int32
    x = [rng.normal(size=(6, 2)), rng.integers(0, 6, size=(6, 2))]
    x[1][:, 1] = x[1][:, 0]                           # an id repeated within a sample
    fd_check(model, x, rng.normal(size=(6, 1)))


def test_every_backend_trains_the_same():
    _backend("cuda")
    rng = np.random.default_rng(5)
    x = [rng.normal(size=(16, 2)), rng.integers(0, 6, size=(16, 2))]
    y = rng.normal(size=(16, 1))
    histories = {}
    ref = _wide_model("numpy")
    for be in BACKENDS:
        model = _wide_model(be)
        model.set_weights(ref.get_weights())
        histories[be] = model.fit(x, y, epochs=3, batch_size=8, verbose=0).history["loss"]
    for be in BACKENDS[1:]:
        np.testing.assert_allclose(histories[be], histories["numpy"], rtol=1e-10)


def test_sequential_starting_with_an_embedding():
    rng = np.random.default_rng(6)
    model = dl.Sequential([layers.Embedding(20, 4, input_shape=(3,)), layers.Flatten(),
                           layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    x = rng.integers(0, 20, size=(40, 3))
    y = (x[:, 0] > 9).astype(int)
    history = model.fit(x, y, epochs=30, batch_size=8, verbose=0).history["loss"]
    assert history[-1] < history[0]
    assert model.predict(x, verbose=0).shape == (40, 2)


def test_integer_input_errors():
    cat = dl.Input((1,), dtype="int32", name="ids_in")
    with pytest.raises(TypeError, match=r"dense_ids \(Dense\) computes on floats, got the "
                                        r"int32 tensor ids_in"):
        layers.Dense(2, name="dense_ids")(cat)
    model = dl.Model(cat, layers.Dense(1)(layers.Flatten()(layers.Embedding(4, 2)(cat))))
    with pytest.raises(ValueError, match="x: expected whole-number ids"):
        model.predict(np.array([[0.5]]), verbose=0)
    with pytest.raises(ValueError, match=r"ids: expected ids in \[0, 4\), got 7"):
        model.predict(np.array([[7]]), verbose=0)
