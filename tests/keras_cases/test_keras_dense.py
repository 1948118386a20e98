"""Keras 3's ``keras/src/layers/core/dense_test.py``, ported for what dl's ``Dense``
provides: the same layers, weights, inputs and expected values, run on dl (our code,
Keras's facts).  Each test names the Keras test (Class.method) it comes from.

How Keras's calls map onto dl's:
- ``layer.build((1, 2))`` + ``layer.set_weights(ws)`` are dl's too
  (``test_dense_correctness_layer_api``); the other cases build the layer inside a
  ``Sequential([dl.Input((2,)), layer])``; ``layer(inputs)`` is dl's
  ``Layer.__call__`` (on a NumPy array, built on first use);
- ``run_layer_test``: its essence -- the layer built by a call on an array of the
  input shape, the output's shape, the number of weights, the get_config -> JSON ->
  from_config round trip, a forward pass.  Seed generators, masking, symbolic
  (KerasTensor) calls and the training-mode call are Keras's machinery, not dl's;
- ``test_dense_errors`` calls the built layer on a NumPy array where Keras uses a
  KerasTensor (dl has no symbolic tensors).

Deliberately different (asserted as dl's behaviour):
- error messages are dl's own (the argument first); the exception types are Keras's
  (``test_dense_invalid_units_raises`` matches "positive int", which both wordings hold).

Deliberately different until issue 13: Dense on inputs of rank 3 is refused (dl's Dense
takes (batch, features)); ``test_dense_basics_3d`` asserts the refusal.

Not ported (outside dl's surface), 53 of the file's 61 tests:
- quantization and the per-mode variable stores of ``save_own_variables``/
  ``load_own_variables`` (45): ``test_dense_quantize_config``, ``test_quantize_*``,
  ``test_dense_quantize_ternary_*``, ``test_dense_prebuilt_ternary_mode``,
  ``test_dense_int8_*``, ``test_dense_int4_custom_quantizer``, ``test_int4_*``,
  ``test_gptq_*``, ``test_awq_*``, ``test_legacy_load_own_variables``,
  ``test_serialization_round_trip``, ``test_load_own_variables_reports_clear_errors``;
- LoRA (7): ``test_enable_lora*``, ``test_lora_weight_name``, ``test_lora_rank_argument``;
- ``test_dense_sparse`` (sparse inputs).
"""
import json

import numpy as np
import pytest

import dl
from dl import layers


def close(actual, desired, atol=1e-6, rtol=1e-6):
    np.testing.assert_allclose(actual, desired, atol=atol, rtol=rtol)


def built_dense(n_in, weights, **kwargs):
    """A Dense layer built for ``n_in`` features with ``weights`` set (Keras:
    ``layer.build((1, n_in)); layer.set_weights(weights)``)."""
    layer = layers.Dense(**kwargs)
    dl.Sequential([dl.Input((n_in,)), layer]).set_weights(weights)
    return layer


def config_roundtrip(layer):
    """Keras's run_class_serialization_test, for a layer: the config survives JSON and
    from_config."""
    cfg = layer.get_config()
    revived = type(layer).from_config(json.loads(json.dumps(cfg)))
    assert revived.get_config() == cfg


KERNEL = np.array([[1.0, -2.0], [3.0, -4.0]])
INPUTS = np.array([[-1.0, 2.0]])


# ======================================================================= DenseTest
def test_dense_basics():                            # DenseTest.test_dense_basics (2D case)
    layer = layers.Dense(units=4, activation="relu", kernel_initializer="random_uniform",
                         bias_initializer="ones", use_bias=False)
    config_roundtrip(layer)
    out = layer(np.random.default_rng(0).random((2, 3)))
    assert layer.built
    assert out.shape == (2, 4)
    assert len(layer.weights) == 1 and layer.trainable      # 1 trainable, 0 non-trainable
    assert layer.bias is None
    assert not layer.has_penalty()                          # expected_num_losses=0
    assert (out >= 0).all()                                 # relu
    config_roundtrip(layer)


def test_dense_basics_3d():                         # DenseTest.test_dense_basics (3D case)
    # Keras applies the kernel to the last axis of a (2, 3, 4) input
    layer = layers.Dense(units=5, activation="sigmoid", kernel_regularizer="l2",
                         bias_regularizer="l2")
    config_roundtrip(layer)
    x = np.random.default_rng(0).random((2, 3, 4)).astype(np.float32)
    y = layer(x)
    assert y.shape == (2, 3, 5)
    assert len(layer.weights) == 2 and layer.kernel.shape == (4, 5)
    w, b = layer.get_weights()
    close(y, 1 / (1 + np.exp(-(x @ w + b))))
    assert layer.has_penalty()          # Keras's expected_num_losses=2: both penalised


@pytest.mark.parametrize("units", [0, -3, 2.5, None, "64"],
                         ids=["zero", "negative", "float", "none", "string"])
def test_dense_invalid_units_raises(units):         # DenseTest.test_dense_invalid_units_raises
    with pytest.raises(ValueError, match="positive int"):
        layers.Dense(units)


def test_dense_correctness():                       # DenseTest.test_dense_correctness
    # With bias and activation.
    layer = built_dense(2, [KERNEL, np.array([5.0, -6.0])], units=2, activation="relu")
    close(layer(INPUTS), [[10.0, 0.0]])
    # Just a kernel matmul.
    layer = built_dense(2, [KERNEL], units=2, use_bias=False)
    assert layer.bias is None
    close(layer(INPUTS), [[5.0, -6.0]])


def test_dense_correctness_layer_api():             # DenseTest.test_dense_correctness
    layer = layers.Dense(units=2, activation="relu")
    layer.build((1, 2))
    layer.set_weights([KERNEL, np.array([5.0, -6.0])])
    close(layer(INPUTS), [[10.0, 0.0]])


def test_dense_errors():                            # DenseTest.test_dense_errors
    layer = layers.Dense(units=2, activation="relu")
    layer(np.ones((1, 2)))
    with pytest.raises(ValueError):        # Keras: "incompatible with the layer"
        layer(np.ones((1, 3)))


def test_dense_no_activation():                     # DenseTest.test_dense_no_activation
    layer = built_dense(2, [KERNEL], units=2, use_bias=False, activation=None)
    assert layer.bias is None
    close(layer(INPUTS), [[5.0, -6.0]])


def test_dense_without_activation_set():            # DenseTest.test_dense_without_activation_set
    layer = built_dense(2, [KERNEL], units=2, use_bias=False)
    layer.activation = None
    assert layer.bias is None
    close(layer(INPUTS), [[5.0, -6.0]])


def test_dense_with_activation():                   # DenseTest.test_dense_with_activation
    layer = built_dense(2, [KERNEL], units=2, use_bias=False, activation="relu")
    close(layer(INPUTS), np.array([[5.0, 0.0]]))


def test_dense_constraints():                       # DenseTest.test_dense_constraints
    layer = layers.Dense(units=2, kernel_constraint="non_neg")
    dl.Sequential([dl.Input((2,)), layer])
    assert type(layer.kernel_constraint).__name__ == "NonNeg"
    layer = layers.Dense(units=2, bias_constraint="non_neg")
    dl.Sequential([dl.Input((2,)), layer])
    assert type(layer.bias_constraint).__name__ == "NonNeg"
