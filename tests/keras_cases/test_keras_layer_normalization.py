"""Keras 3's ``keras/src/layers/normalization/layer_normalization_test.py``, ported for
dl's LayerNormalization: the same cases and values, run on dl.  Each test names the
Keras test it comes from.

Deliberate differences (docs/keras-differences.md "Layers"), asserted as dl's
behaviour:
- the layer takes ``(batch, features)`` inputs and normalises the last axis: Keras's
  rank-3/rank-4 inputs, tuples of axes and out-of-range or duplicate axes are refused
  with an error naming ``axis`` or the layer (at construction for the axis, at build
  for the shape; Keras raises at build or call).  The rank-2 parts of those cases run
  as Keras's;
- ``rms_scaling=True`` is refused by name;
- ``layer.axis`` keeps the int it was given (-1; Keras canonicalises it to ``[1]``).

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
    """test_ln_basics, case 1: L2 regularizers on gamma and beta: 2 trainable weights,
    2 losses.  Keras's input (3, 4, 2) is rank 3: refused (deliberately different); the
    same layer on (3, 2) as Keras."""
    kw = {"gamma_regularizer": regularizers.L2(0.01), "beta_regularizer": regularizers.L2(0.01)}
    with pytest.raises(ValueError, match="expected inputs of shape \\(batch, features\\)"):
        _built(layers.LayerNormalization(**kw), (4, 2))
    layer = _built(layers.LayerNormalization(**kw), (2,))
    assert len(layer.weights) == 2 and layer.has_penalty()
    assert len(layer._regularized()) == 2
    assert layer(np.ones((3, 2), "float32")).shape == (3, 2)


def test_basics_initializers():
    """test_ln_basics, case 2: ones initializers, 2 weights, no losses (rank 2 here)."""
    layer = _built(layers.LayerNormalization(gamma_initializer="ones",
                                             beta_initializer="ones"), (2,))
    assert len(layer.weights) == 2 and not layer.has_penalty()
    np.testing.assert_array_equal(layer.get_weights()[1], np.ones(2))


def test_basics_no_scale_no_center():
    """test_ln_basics, case 3: scale=False, center=False on (3, 3): no weights."""
    layer = layers.LayerNormalization(scale=False, center=False)
    out = layer(np.arange(9, dtype="float32").reshape(3, 3))
    assert out.shape == (3, 3) and layer.weights == []


def test_basics_rms_scaling():      # deliberately different
    """test_ln_basics, case 4: rms_scaling=True is refused by name."""
    with pytest.raises(ValueError, match="^rms_scaling: not provided"):
        layers.LayerNormalization(rms_scaling=True)


def test_basics_axis_tuple():       # deliberately different
    """test_ln_basics, case 5: axis=(-3, -2, -1) on rank-4 inputs: refused."""
    with pytest.raises(TypeError, match="^axis: expected an int"):
        layers.LayerNormalization(axis=(-3, -2, -1))


def test_basics_empty_rank_3():     # deliberately different
    """test_ln_basics, case 6: input (1, 0, 10): a sample of 0 x 10 values, refused at
    build (dl's samples have positive dimensions, and rank 2)."""
    with pytest.raises(ValueError, match="^input_shape: expected positive dimensions"):
        _built(layers.LayerNormalization(), (0, 10))
    with pytest.raises(ValueError, match="expected inputs of shape \\(batch, features\\)"):
        _built(layers.LayerNormalization(), (1, 10))


# ------------------------------------------------------------------------ axes
def test_invalid_axis():
    with pytest.raises(TypeError, match="^axis: expected an int"):
        layers.LayerNormalization(axis={"axis": -1})


@pytest.mark.parametrize("axis", [2, 99, -3, -99, [0, 99]])
def test_out_of_bounds_axis(axis):  # deliberately different: at construction, "axis:"
    """test_out_of_bounds_axis: Keras raises ValueError "is out of bounds" at call."""
    with pytest.raises((ValueError, TypeError), match="^axis: "):
        layers.LayerNormalization(axis=axis)


@pytest.mark.parametrize("axis", [[-1, 1], [1, 1]])
def test_duplicate_axis(axis):      # deliberately different: a list of axes is refused
    with pytest.raises(TypeError, match="^axis: expected an int"):
        layers.LayerNormalization(axis=axis)


def test_axis_is_canonicalized():   # deliberately different: the int is kept
    layer = _built(layers.LayerNormalization(axis=-1), (4,))
    assert layer.axis == -1
    assert _built(layers.LayerNormalization(axis=[1]), (4,)).axis == 1


def test_unsorted_axis():           # deliberately different: one axis only
    with pytest.raises(TypeError, match="^axis: expected an int"):
        layers.LayerNormalization(axis=[-1, -2])


# -------------------------------------------------------------------- values
def test_correctness():
    """test_correctness, on rows of 8 features (Keras: (1000, 2, 2, 2) normalised over
    the last axis, 2 features): after removing beta and gamma, mean 0 and std 1."""
    layer = layers.LayerNormalization(dtype="float32")
    x = np.random.default_rng(0).normal(loc=5.0, scale=10.0, size=(1000, 8)).astype("float32")
    gamma, beta = (_built(layer, (8,)).get_weights())
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
