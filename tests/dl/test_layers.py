"""The layers: Dense, Activation, Dropout, Flatten, Input."""
import math

import numpy as np
import pytest

import dl
from dl import (activations, layers, optimizers)
from dl_helpers import ACT, ROW_ACT, both_backends, restore_dl_state  # noqa: F401  (autouse fixture)

from dl_helpers import xy as _xy


# -------------------------------------------------------------------- layers

def _dropout_probe(rate, n=400, seed=None, **kw):
    """A model whose kernel gradient reveals the dropout mask of its input."""
    model = dl.Sequential([layers.Dropout(rate, input_shape=(n,), seed=seed),
                           layers.Dense(1, use_bias=False, kernel_initializer="ones")], **kw)
    model.compile(optimizers.SGD(learning_rate=0.0), "mse")
    return model


def _mask_and_loss(model, n=400):
    x = np.ones((1, n), dtype=np.float32)
    loss, (g,) = model.compute_gradients(x, np.zeros((1, 1)))
    return g[:, 0] != 0, loss, g[:, 0]


def test_dropout_only_in_training_with_inverted_scaling():
    dl.utils.set_random_seed(0)
    rate, n = 0.25, 400
    model = _dropout_probe(rate, n)
    x = np.ones((1, n), dtype=np.float32)
    # inference: the identity
    np.testing.assert_allclose(model.predict(x, verbose=0), [[n]], rtol=1e-6)
    np.testing.assert_allclose(model.evaluate(x, np.zeros(1), verbose=0), n ** 2, rtol=1e-6)
    # training: kept inputs scaled by 1 / (1 - rate)
    keep, loss, g = _mask_and_loss(model, n)
    kept = int(keep.sum())
    assert 0.6 < kept / n < 0.9
    pred = kept / (1 - rate)
    np.testing.assert_allclose(loss, pred ** 2, rtol=1e-5)
    np.testing.assert_allclose(g[keep], 2 * pred / (1 - rate), rtol=1e-5)


def test_dropout_layer_mean_preserved():
    dl.utils.set_random_seed(1)
    model = dl.Sequential([layers.Dropout(0.5, input_shape=(500,))])
    model.build()
    layer = model.layers[0]
    x = np.full((200, 500), 3.0, dtype=np.float32)
    out = np.array(layer.forward(x, training=True, step=0))
    assert set(np.unique(out)) == {0.0, 6.0}
    assert abs(out.mean() - 3.0) < 0.05
    assert abs((out == 0).mean() - 0.5) < 0.01
    np.testing.assert_array_equal(layer.forward(x, training=False), x)
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)


def test_dropout_masks_change_per_step_and_are_seedable():
    dl.utils.set_random_seed(5)
    m1 = _dropout_probe(0.5)
    k1, _, _ = _mask_and_loss(m1)
    k1_again, _, _ = _mask_and_loss(m1)
    np.testing.assert_array_equal(k1, k1_again)              # same step: same mask
    m1.train_on_batch(np.ones((1, 400)), np.zeros(1))       # lr 0: only the step moves
    k1_next, _, _ = _mask_and_loss(m1)
    assert not np.array_equal(k1, k1_next)
    # the same global seed gives the same masks
    dl.utils.set_random_seed(5)
    m2 = _dropout_probe(0.5)
    k2, _, _ = _mask_and_loss(m2)
    np.testing.assert_array_equal(k1, k2)
    dl.utils.set_random_seed(6)
    k3, _, _ = _mask_and_loss(_dropout_probe(0.5))
    assert not np.array_equal(k1, k3)
    # Dropout(seed=...): the same masks whatever the global state
    dl.utils.set_random_seed(7)
    a, _, _ = _mask_and_loss(_dropout_probe(0.5, seed=42))
    dl.utils.set_random_seed(8)
    b, _, _ = _mask_and_loss(_dropout_probe(0.5, seed=42))
    np.testing.assert_array_equal(a, b)


def test_dropout_rate_validation():
    with pytest.raises(ValueError, match="rate"):
        layers.Dropout(1.0)
    with pytest.raises(ValueError, match="rate"):
        layers.Dropout(-0.1)


def test_dropout_in_training_changes_fit_deterministically():
    def run():
        dl.utils.set_random_seed(3)
        x, y = _xy(16)
        model = dl.Sequential([layers.Dense(8, activation="relu", input_shape=(2,)),
                               layers.Dropout(0.5), layers.Dense(1)])
        model.compile("adam", "mse")
        model.fit(x, y, epochs=3, batch_size=4, verbose=0)
        return model.get_weights()
    for a, b in zip(run(), run()):
        np.testing.assert_array_equal(a, b)


def test_flatten_on_images():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 8, 8)).astype(np.float32)
    for model in (dl.Sequential([layers.Flatten(input_shape=(8, 8)), layers.Dense(3)]),
                  dl.Sequential([layers.Flatten(), layers.Dense(3)])):
        out = model.predict(x, verbose=0)
        assert out.shape == (5, 3)
        assert model.layers[0].output_shape == (64,)
        w, b = model.get_weights()
        assert w.shape == (64, 3)
        np.testing.assert_allclose(out, x.reshape(5, 64) @ w + b, rtol=1e-5, atol=1e-6)
        model.compile("sgd", "sparse_categorical_crossentropy")
        model.fit(x, np.array([0, 1, 2, 0, 1]), epochs=1, verbose=0)
    # without Flatten, Dense applies to the last axis (as Keras's): (8, 8) -> (8, 3)
    model = dl.Sequential([layers.Dense(3, input_shape=(8, 8))])
    w, b = model.get_weights()
    assert w.shape == (8, 3)
    np.testing.assert_allclose(model.predict(x, verbose=0), x @ w + b, rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("backend", both_backends())
@pytest.mark.parametrize("act", activations.ACTIVATIONS)
def test_activation_layer_matches_dense_activation(act, backend):
    """Dense(activation=act) (the fused dense kernel) == Dense + Activation(act) (the
    elementwise kernel) == the formula, in inference and in the training gradients."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 3))
    ws = [rng.normal(size=(3, 4)), rng.normal(size=4)]
    a = dl.Sequential([layers.Dense(4, activation=act, input_shape=(3,), dtype="float64")],
                      backend=backend)
    b = dl.Sequential([layers.Dense(4, input_shape=(3,), dtype="float64"),
                       layers.Activation(act)], backend=backend)
    a.set_weights(ws)
    b.set_weights(ws)
    np.testing.assert_allclose(a.predict(x, verbose=0), b.predict(x, verbose=0), rtol=1e-12)
    z = x @ ws[0] + ws[1]
    np.testing.assert_allclose(b.predict(x, verbose=0), activations.get(act)(z), rtol=1e-12)
    if act != "softmax":
        formula = ACT[act][0] if act in ACT else ROW_ACT[act]
        np.testing.assert_allclose(a.predict(x, verbose=0), formula(z), rtol=1e-12)
    y = rng.normal(size=(6, 4))
    for m in (a, b):
        m.compile("sgd", "mse")
    la, ga = a.compute_gradients(x, y)
    lb, gb = b.compute_gradients(x, y)
    np.testing.assert_allclose(la, lb, rtol=1e-12)
    for g1, g2 in zip(ga, gb):
        np.testing.assert_allclose(g1, g2, rtol=1e-10, atol=1e-14)


def test_activation_functions_values():
    z = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    np.testing.assert_allclose(activations.relu(z), np.maximum(z, 0))
    np.testing.assert_allclose(activations.leaky_relu(z), np.where(z > 0, z, 0.2 * z))
    np.testing.assert_allclose(activations.elu(z), np.where(z > 0, z, np.expm1(z)))
    np.testing.assert_allclose(activations.sigmoid(z), 1 / (1 + np.exp(-z)))
    np.testing.assert_allclose(activations.softplus(z), np.log1p(np.exp(z)))
    erf = np.vectorize(math.erf)
    np.testing.assert_allclose(activations.gelu(z), 0.5 * z * (1 + erf(z / math.sqrt(2))))
    np.testing.assert_allclose(activations.softmax(z[None]), np.exp(z)[None] / np.exp(z).sum())
    np.testing.assert_allclose(activations.leaky_relu(z, negative_slope=0.1),
                               np.where(z > 0, z, 0.1 * z))
