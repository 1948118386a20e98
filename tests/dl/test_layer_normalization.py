"""dl.layers.LayerNormalization: Keras's values (its layer_normalization_test's output
case), training on every backend against finite differences, weights, regularizers,
constraints, config and saving."""
import numpy as np
import pytest

import dl
from dl import layers

from dl_helpers import restore_dl_state  # noqa: F401  (autouse fixture)

BACKENDS = ["numpy", "cython", "cuda"]


def _backend(name):
    try:
        dl.config.get_backend(name)
    except ImportError as exc:      # pragma: no cover - cuda without Numba
        pytest.skip(f"{name}: {exc}")
    return name


def test_keras_output_case():
    """Keras's LayerNormalizationTest.test_output: arange(5), gamma and beta ones."""
    layer = layers.LayerNormalization(dtype="float32", beta_initializer="ones",
                                      gamma_initializer="ones")
    out = layer(np.arange(5).astype("float32")[None, :])
    np.testing.assert_allclose(out, [[-0.41386, 0.29307, 1.0, 1.70693, 2.41386]],
                               rtol=1e-5, atol=1e-5)


def test_keras_correctness_case():
    """Keras's LayerNormalizationTest.test_correctness (rows of 8 features here: dl's
    inputs are (batch, features)): after removing beta and gamma, mean 0 and std 1."""
    rng = np.random.default_rng(0)
    layer = layers.LayerNormalization(dtype="float32")
    x = rng.normal(loc=5.0, scale=10.0, size=(1000, 8)).astype("float32")
    out = (layer(x) - layer.get_weights()[1]) / layer.get_weights()[0]
    assert abs(out.mean()) < 1e-1 and abs(out.std() - 1.0) < 1e-1


def test_weights_and_arguments():
    full = layers.LayerNormalization()
    full.build((None, 4))
    assert [w.shape for w in full.get_weights()] == [(4,), (4,)]
    np.testing.assert_array_equal(full.get_weights()[0], np.ones(4))       # gamma first
    np.testing.assert_array_equal(full.get_weights()[1], np.zeros(4))
    bare = layers.LayerNormalization(scale=False, center=False)
    bare.build((None, 3))
    assert bare.get_weights() == [] and bare.count_params() == 0
    reg = layers.LayerNormalization(gamma_regularizer=dl.regularizers.L2(0.01),
                                    beta_regularizer=dl.regularizers.L2(0.01))
    reg.build((None, 2))
    assert reg.has_penalty()
    assert reg.regularization_penalty() == pytest.approx(0.01 * 2)    # gamma ones, beta 0
    with pytest.raises(ValueError, match="^rms_scaling: not provided"):
        layers.LayerNormalization(rms_scaling=True)
    with pytest.raises(TypeError, match="^axis: Expected an int"):
        layers.LayerNormalization(axis={"axis": -1})
    with pytest.raises(ValueError, match="^axis: 0 is out of bounds"):
        layers.LayerNormalization(axis=0).build((None, 3))
    with pytest.raises(ValueError, match="^epsilon: "):
        layers.LayerNormalization(epsilon=0.0)


def _ln_model(be):
    model = dl.Sequential([layers.Dense(5, activation="tanh", input_shape=(4,),
                                        dtype="float64"),
                           layers.LayerNormalization(dtype="float64",
                                                     gamma_initializer="random_normal",
                                                     beta_initializer="random_normal"),
                           layers.Dense(2, dtype="float64")], backend=be)
    model.compile("sgd", "mse")
    return model


@pytest.mark.parametrize("be", ["numpy", "cython"])
def test_gradients_match_finite_differences(be):
    """A Dense -> LayerNormalization -> Dense model, float64: every weight's gradient
    (gamma and beta included) against central differences of the loss."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(6, 4)), rng.normal(size=(6, 2))
    model = _ln_model(be)
    _, grads = model.compute_gradients(x, y)
    weights = model.get_weights()
    eps = 1e-6
    for k, w in enumerate(weights):
        for i in range(w.size):
            plus = [a.copy() for a in weights]
            minus = [a.copy() for a in weights]
            plus[k].flat[i] += eps
            minus[k].flat[i] -= eps
            model.set_weights(plus)
            lp = model.compute_gradients(x, y)[0]
            model.set_weights(minus)
            lm = model.compute_gradients(x, y)[0]
            assert grads[k].flat[i] == pytest.approx((lp - lm) / (2 * eps), rel=1e-5,
                                                      abs=1e-9), (be, k, i)
        model.set_weights(weights)


def test_cuda_gradients_are_the_checked_ones():
    """The cuda backend's gradients of the same model and batch equal numpy's (which
    the finite differences above check), to rounding."""
    _backend("cuda")
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(6, 4)), rng.normal(size=(6, 2))
    ref_model, cuda_model = _ln_model("numpy"), _ln_model("cuda")
    cuda_model.set_weights(ref_model.get_weights())
    (l0, g0), (l1, g1) = ref_model.compute_gradients(x, y), cuda_model.compute_gradients(x, y)
    assert l1 == pytest.approx(l0, rel=1e-12)
    for a, b in zip(g1, g0):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


def test_trains_alike_on_every_backend_and_saves():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(24, 6)), rng.integers(0, 3, 24)
    histories, preds = {}, {}
    for be in BACKENDS:
        _backend(be)
        dl.utils.set_random_seed(2)
        model = dl.Sequential([layers.Dense(8, activation="relu", input_shape=(6,),
                                            dtype="float64"),
                               layers.LayerNormalization(
                                   dtype="float64",
                                   gamma_constraint=dl.constraints.NonNeg()),
                               layers.Dense(3, activation="softmax", dtype="float64")],
                              backend=be)
        model.compile("adam", "sparse_categorical_crossentropy")
        histories[be] = model.fit(x, y, epochs=2, batch_size=12, shuffle=False,
                                  verbose=0).history["loss"]
        assert (model.layers[1].get_weights()[0] >= 0).all()       # the constraint held
        preds[be] = model.predict(x, verbose=0)
    for be in BACKENDS:
        np.testing.assert_allclose(histories[be], histories["numpy"], rtol=1e-9)
        np.testing.assert_allclose(preds[be], preds["numpy"], rtol=1e-9, atol=1e-12)
    cfg = model.layers[1].get_config()
    again = layers.LayerNormalization.from_config(cfg)
    assert again.get_config() == cfg


def test_save_and_load(tmp_path):
    rng = np.random.default_rng(6)
    x = rng.normal(size=(10, 3))
    model = dl.Sequential([layers.Dense(4, input_shape=(3,)),
                           layers.LayerNormalization(center=False),
                           layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(x, rng.normal(size=10), epochs=2, verbose=0)
    path = tmp_path / "ln.dlk"
    model.save(path)
    loaded = dl.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [w.shape for w in loaded.layers[1].get_weights()] == [(4,)]


def test_summary_wraps_a_long_layer_cell():
    model = dl.Sequential([layers.Dense(8, input_shape=(6,)), layers.LayerNormalization()])
    lines = []
    model.summary(print_fn=lines.append)
    assert len({len(line) for line in lines[1:-3]}) == 1        # the table stays aligned
    i = next(k for k, line in enumerate(lines) if "layer_normalization" in line)
    assert "(LayerNormalization)" in lines[i + 1] and "16" in lines[i]


@pytest.mark.parametrize("be", ["numpy", "cython"])
def test_rank_3_over_two_axes_gradients(be):
    """Normalising the last two axes of (batch, 3, 4) samples inside a model: gamma and
    beta of shape (3, 4), gradients against finite differences."""
    from dl_helpers import fd_check
    x = dl.Input((3, 4), dtype="float64")
    h = layers.Dense(4, activation="tanh", dtype="float64")(x)
    n = layers.LayerNormalization(axis=[-2, -1], dtype="float64",
                                  gamma_initializer="random_normal",
                                  beta_initializer="random_normal")(h)
    model = dl.Model(x, layers.Dense(2, dtype="float64")(layers.Flatten()(n)), backend=be)
    model.compile("sgd", "mse")
    assert [w.shape for w in model.get_layer(n.node.layer.name).get_weights()] == \
        [(3, 4), (3, 4)]
    rng = np.random.default_rng(9)
    fd_check(model, rng.normal(size=(4, 3, 4)), rng.normal(size=(4, 2)))
