"""Keras 3's ``keras/src/layers/normalization/layer_normalization_test.py``, ported for
dl's LayerNormalization: the same cases and values, run on dl.  Each test names the
Keras test it comes from.

Deliberate differences (docs/keras-differences.md "Layers"), asserted as dl's
behaviour:
- dl normalises trailing axes (the last, or the last k, of any rank): Keras's cases all
  are; a set of axes that is not trailing is refused naming ``axis``;
- an input with a zero-sized sample dimension is refused at build (dl's samples have
  positive dimensions; Keras's test_ln_basics case 6 builds on (1, 0, 10));
- ``rms_scaling=True`` is refused by name;
- ``layer.axis`` keeps what it was given (Keras canonicalises it to a list).

Not ported: test_large_value_within_autocast_scope (float16 autocast: dl's dtypes are
float32 and float64).
"""
import numpy as np
import pytest

from dl import layers, regularizers


def _built(layer, shape):
    layer.build((None,) + tuple(shape))
    return layer


# ------------------------------------------------------------ test_ln_basics (6 cases)
def test_basics_regularizers():
    """test_ln_basics, case 1: L2 regularizers on gamma and beta, input (3, 4, 2): output
    (3, 4, 2), 2 trainable weights, 2 losses."""
    kw = {"gamma_regularizer": regularizers.L2(0.01), "beta_regularizer": regularizers.L2(0.01)}
    layer = _built(layers.LayerNormalization(**kw), (4, 2))
    assert len(layer.weights) == 2 and layer.has_penalty()
    assert len(layer._regularized()) == 2
    assert layer(np.ones((3, 4, 2), "float32")).shape == (3, 4, 2)


def test_basics_initializers():
    """test_ln_basics, case 2: ones initializers on (3, 4, 2): 2 weights, no losses."""
    layer = _built(layers.LayerNormalization(gamma_initializer="ones",
                                             beta_initializer="ones"), (4, 2))
    assert len(layer.weights) == 2 and not layer.has_penalty()
    np.testing.assert_array_equal(layer.get_weights()[1], np.ones(2))
    assert layer(np.ones((3, 4, 2), "float32")).shape == (3, 4, 2)


def test_basics_no_scale_no_center():
    """test_ln_basics, case 3: scale=False, center=False on (3, 3): no weights."""
    layer = layers.LayerNormalization(scale=False, center=False)
    out = layer(np.arange(9, dtype="float32").reshape(3, 3))
    assert out.shape == (3, 3) and layer.weights == []


def test_basics_rms_scaling():      # deliberately different
    """test_ln_basics, case 4: rms_scaling=True is refused by name."""
    with pytest.raises(ValueError, match="^rms_scaling: not provided"):
        layers.LayerNormalization(rms_scaling=True)


def test_basics_axis_tuple():
    """test_ln_basics, case 5: axis=(-3, -2, -1) on (2, 8, 8, 3): 2 weights of shape
    (8, 8, 3), the output's shape unchanged; each sample normalised over all its
    values."""
    layer = _built(layers.LayerNormalization(axis=(-3, -2, -1)), (8, 8, 3))
    assert [w.shape for w in layer.get_weights()] == [(8, 8, 3), (8, 8, 3)]
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 3)).astype("float32")
    out = layer(x)
    assert out.shape == (2, 8, 8, 3)
    flat = x.reshape(2, -1)
    expected = (flat - flat.mean(1, keepdims=True)) / np.sqrt(flat.var(1, keepdims=True)
                                                               + 1e-3)
    np.testing.assert_allclose(out.reshape(2, -1), expected, rtol=1e-4, atol=1e-5)


def test_basics_empty_rank_3():     # deliberately different
    """test_ln_basics, case 6: input (1, 0, 10): a sample of 0 x 10 values, refused at
    build (dl's samples have positive dimensions)."""
    with pytest.raises(ValueError, match="^input_shape: expected positive dimensions"):
        _built(layers.LayerNormalization(), (0, 10))


# ------------------------------------------------------------------------ axes
def test_invalid_axis():
    with pytest.raises(TypeError, match="Expected an int or a list/tuple of ints for the "
                                        "argument 'axis'"):
        layers.LayerNormalization(axis={"axis": -1})


@pytest.mark.parametrize("axis", [2, 99, -3, -99, [0, 99]])
def test_out_of_bounds_axis(axis):
    """test_out_of_bounds_axis: ValueError "is out of bounds" at call, at build and in
    compute_output_shape."""
    x = np.zeros((2, 4), dtype="float32")
    with pytest.raises(ValueError, match="is out of bounds"):
        layers.LayerNormalization(axis=axis)(x)
    with pytest.raises(ValueError, match="is out of bounds"):
        layers.LayerNormalization(axis=axis).build((2, 4))
    with pytest.raises(ValueError, match="is out of bounds"):
        layers.LayerNormalization(axis=axis).compute_output_shape((4,))


@pytest.mark.parametrize("axis", [[-1, 1], [1, 1]])
def test_duplicate_axis(axis):
    with pytest.raises(ValueError, match="^axis: Duplicate axis"):
        layers.LayerNormalization(axis=axis)(np.zeros((2, 4), "float32"))


def test_axis_is_canonicalized():   # deliberately different: kept as given
    layer = _built(layers.LayerNormalization(axis=-1), (4,))
    assert layer.axis == -1
    assert _built(layers.LayerNormalization(axis=[1]), (4,)).axis == [1]


def test_unsorted_axis():
    """test_unsorted_axis: axis=[-2, -1] and [-1, -2] give the same result."""
    x = np.random.default_rng(2).normal(size=(2, 3, 4)).astype("float32")
    out_sorted = layers.LayerNormalization(axis=[-2, -1])(x)
    out_unsorted = layers.LayerNormalization(axis=[-1, -2])(x)
    assert out_sorted.shape == out_unsorted.shape == (2, 3, 4)
    np.testing.assert_allclose(out_sorted, out_unsorted)


def test_leading_axes_are_refused():   # deliberately different: not trailing
    with pytest.raises(ValueError, match="^axis: dl normalises the trailing axes"):
        layers.LayerNormalization(axis=1)(np.zeros((2, 3, 4), "float32"))


# -------------------------------------------------------------------- values
def test_correctness():
    """test_correctness: (1000, 2, 2, 2) normalised over the last axis: after removing
    beta and gamma, mean 0 and std 1."""
    layer = layers.LayerNormalization(dtype="float32")
    x = np.random.default_rng(0).normal(loc=5.0, scale=10.0,
                                        size=(1000, 2, 2, 2)).astype("float32")
    gamma, beta = (_built(layer, (2, 2, 2)).get_weights())
    out = (layer(x) - beta) / gamma
    np.testing.assert_allclose(out.mean(), 0.0, atol=1e-1)
    np.testing.assert_allclose(out.std(), 1.0, atol=1e-1)


def test_output():
    layer = layers.LayerNormalization(dtype="float32", beta_initializer="ones",
                                      gamma_initializer="ones")
    out = layer(np.arange(5).astype("float32")[None, :])
    np.testing.assert_allclose(out, [[-0.41386, 0.29307, 1.0, 1.70693, 2.41386]],
                               rtol=1e-6, atol=1e-5)


def test_output_with_rms_scaling():  # deliberately different: rms_scaling is refused
    with pytest.raises(ValueError, match="^rms_scaling: not provided"):
        layers.LayerNormalization(dtype="float32", rms_scaling=True,
                                  gamma_initializer="ones")
