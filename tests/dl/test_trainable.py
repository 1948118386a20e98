"""trainable flags: frozen layers and models train nothing and save as such."""

import numpy as np

import dl
from dl import (initializers, layers, optimizers,
                regularizers)
from dl_helpers import ACT, both_backends, restore_dl_state  # noqa: F401  (autouse fixture)

from dl_helpers import xy as _xy


# ------------------------------------------------------------------ trainable

def test_frozen_layer_is_not_updated():
    x, y = _xy(12, n_in=3)
    model = dl.Sequential([layers.Dense(4, activation="tanh", input_shape=(3,), trainable=False,
                                        name="frozen"),
                           layers.Dense(1, name="head")])
    model.compile(optimizers.Adam(learning_rate=0.05), "mse")
    model.build()
    before = model.get_weights()
    assert [w.shape for w in model.trainable_weights] == [(4, 1), (1,)]
    _, grads = model.compute_gradients(x, y)
    assert [g.shape for g in grads] == [(4, 1), (1,)]
    model.fit(x, y, epochs=3, verbose=0)
    after = model.get_weights()
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[1], before[1])
    assert not np.array_equal(after[2], before[2])
    lines = []
    model.summary(print_fn=lines.append)
    assert " Trainable params: 5 (20.00 B)" in lines
    assert " Non-trainable params: 16 (64.00 B)" in lines
    # a frozen model trains nothing
    frozen = dl.Sequential([layers.Dense(1, input_shape=(3,))], trainable=False)
    frozen.compile("sgd", "mse")
    frozen.build()
    w = frozen.get_weights()
    frozen.fit(x, y, epochs=2, verbose=0)
    np.testing.assert_array_equal(frozen.get_weights()[0], w[0])
    assert frozen.trainable_weights == []


def test_frozen_layer_regularizer_not_in_loss():
    """Keras 3 adds the penalties of trainable weights only
    (Layer._get_regularization_losses iterates over trainable_weights)."""
    x, y = _xy(12, n_in=3)
    x = x.astype(np.float64)

    def make(trainable):
        model = dl.Sequential([layers.Dense(4, input_shape=(3,), trainable=trainable,
                                            kernel_regularizer=regularizers.L2(0.5),
                                            kernel_initializer="ones", dtype="float64"),
                               layers.Dense(1, kernel_initializer="ones")])
        model.compile(optimizers.SGD(learning_rate=0.0), "mse")
        return model

    frozen, trained = make(False), make(True)
    pred = (x @ np.ones((3, 4))) @ np.ones((4, 1))
    mse = np.mean((pred[:, 0] - y) ** 2)
    np.testing.assert_allclose(trained.evaluate(x, y, verbose=0), mse + 0.5 * 12, rtol=1e-12)
    np.testing.assert_allclose(frozen.evaluate(x, y, verbose=0), mse, rtol=1e-12)
    np.testing.assert_allclose(frozen.fit(x, y, verbose=0, batch_size=12).history["loss"][0],
                               mse, rtol=1e-12)


def test_dropout_noise_shape():
    dl.utils.set_random_seed(2)
    model = dl.Sequential([layers.Dropout(0.5, noise_shape=(None, 1), input_shape=(6,))])
    model.build()
    out = np.array(model.layers[0].forward(np.ones((50, 6), np.float32), training=True))
    assert set(np.unique(out)) == {0.0, 2.0}
    assert (out == out[:, :1]).all()            # one decision per row
    assert 0 < (out[:, 0] == 0).sum() < 50


def test_layer_call_on_arrays():
    x = np.random.default_rng(0).normal(size=(5, 3))
    dense = layers.Dense(2, kernel_initializer="ones", bias_initializer=initializers.Constant(1.0))
    out = dense(x)
    assert out.shape == (5, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out, np.repeat(x.sum(1, keepdims=True), 2, 1) + 1, rtol=1e-5)
    np.testing.assert_allclose(layers.Activation("relu")(x), np.maximum(x, 0).astype(np.float32),
                               rtol=1e-6)
    assert layers.Flatten()(np.ones((2, 3, 4))).shape == (2, 12)
