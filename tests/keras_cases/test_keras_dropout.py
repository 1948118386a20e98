"""Keras 3's ``keras/src/layers/regularization/dropout_test.py``, ported: the same
cases and expected values, run on dl's ``Dropout`` (our code, Keras's facts).  Each
test names the Keras test (Class.method) it comes from.

How Keras's calls map onto dl's:
- ``layer(inputs, training=True)`` is dl's too (``test_dropout_call_training``); the
  other training-mode cases run the layer's ``forward(x, training=True)`` -- what
  ``fit`` runs -- after an inference call has built it;
- ``run_layer_test``: its essence -- built by a call on an array of the input shape,
  the output's shape in training mode, no weights, the get_config -> JSON ->
  from_config round trip.  Seed generators and masking are Keras's machinery.

Deliberately different (asserted as dl's behaviour):
- error messages are dl's own (the argument first); where Keras raises ValueError for
  a ``noise_shape`` of the wrong type (a str, a float entry), dl raises TypeError
  (docs/keras-differences.md: "Shapes are ints or tuples/lists of ints").

Every case of the Keras file is ported.
"""
import json

import numpy as np
import pytest

from dl import layers


def close(actual, desired, atol=1e-6, rtol=1e-6):
    np.testing.assert_allclose(actual, desired, atol=atol, rtol=rtol)


def call_training(layer, inputs):
    """Keras's ``layer(inputs, training=True)``, on dl: build by an (inference) call,
    then the training forward pass.  Returns a copy (the pass reuses its buffer)."""
    x = np.asarray(inputs, dtype="float32")
    layer(x)
    return np.array(layer.forward(x, training=True), copy=True)


# ====================================== DropoutTest (each test named as its Keras method)
def test_dropout_basics():
    layer = layers.Dropout(rate=0.2)
    cfg = layer.get_config()
    assert layers.Dropout.from_config(json.loads(json.dumps(cfg))).get_config() == cfg
    out = call_training(layer, np.ones((2, 3)))
    assert out.shape == (2, 3)
    assert layer.weights == []            # 0 trainable, 0 non-trainable weights
    assert layer.count_params() == 0


def test_dropout_basics_built_after_instantiation():   # DropoutTest.test_dropout_basics
    assert layers.Dropout(rate=0.2).built


def test_dropout_call_training():                   # DropoutTest.test_dropout_rescaling
    outputs = layers.Dropout(0.5, seed=1337)(np.ones((20, 500)), training=True)
    close(np.mean(outputs), 1.0, atol=0.02)


def test_dropout_rescaling():
    outputs = call_training(layers.Dropout(0.5, seed=1337), np.ones((20, 500)))
    close(np.mean(outputs), 1.0, atol=0.02)
    close(np.max(outputs), 2.0)


def test_dropout_partial_noise_shape_dynamic():
    outputs = call_training(layers.Dropout(0.5, noise_shape=(None, 1, None)),
                            np.ones((20, 5, 10)))
    close(outputs[:, 0, :], outputs[:, 1, :])


def test_dropout_partial_noise_shape_static():
    outputs = call_training(layers.Dropout(0.5, noise_shape=(20, 1, 10)),
                            np.ones((20, 5, 10)))
    close(outputs[:, 0, :], outputs[:, 1, :])


def test_dropout_negative_rate():
    with pytest.raises(ValueError, match="^rate:"):
        layers.Dropout(rate=-0.5)


def test_dropout_rate_greater_than_one():
    with pytest.raises(ValueError, match="^rate:"):
        layers.Dropout(rate=1.5)


def test_validate_noise_shape_none():
    assert layers.Dropout(0.5, noise_shape=None).noise_shape is None


def test_validate_noise_shape_integer_tuple():
    assert layers.Dropout(0.5, noise_shape=(20, 1, 10)).noise_shape == (20, 1, 10)


def test_validate_noise_shape_none_values():
    assert layers.Dropout(0.5, noise_shape=(None, 1, None)).noise_shape == (None, 1, None)


def test_validate_noise_shape_cast_to_a_tuple():
    layer = layers.Dropout(0.5, noise_shape=[20, 1, 10])
    assert layer.noise_shape == (20, 1, 10)
    assert isinstance(layer.noise_shape, tuple)


def test_validate_noise_shape_non_iterable():
    with pytest.raises(TypeError, match="^noise_shape:"):     # Keras: ValueError
        layers.Dropout(0.5, noise_shape="Invalid")


def test_validate_noise_shape_invalid_type():
    with pytest.raises(TypeError, match="^noise_shape:"):     # Keras: ValueError
        layers.Dropout(0.5, noise_shape=(20, 1.5, 10))


def test_validate_noise_shape_negative_value():
    with pytest.raises(ValueError, match="^noise_shape:"):
        layers.Dropout(0.5, noise_shape=(20, -1, 10))


def test_validate_noise_shape_zero_value():
    with pytest.raises(ValueError, match="^noise_shape:"):
        layers.Dropout(0.5, noise_shape=(20, 0, 10))
