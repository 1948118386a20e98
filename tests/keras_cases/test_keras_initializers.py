"""Keras 3's ``keras/src/initializers/random_initializers_test.py`` and
``keras/src/initializers/constant_initializers_test.py``, ported for the initializers
dl provides (Zeros, Ones, Constant, RandomNormal, RandomUniform, VarianceScaling and
the named ones, ``get``/``serialize``): the same cases and expected values, run on dl.
Each test names the Keras test (Class.method) it comes from.

Deliberate differences (docs/keras-differences.md), asserted as dl's behaviour:
- dl draws from NumPy's generator, so a seed does not give Keras's numbers ("Random
  numbers").  None of these Keras cases compares drawn values with fixed numbers: they
  check moments (standard deviations, within Keras's atol), bounds and determinism
  (same seed, same values; unseeded, new values), which are ported unchanged.
- Keras's ``keras.utils.set_random_seed`` is ``dl.utils.set_random_seed``; a backend
  tensor is a NumPy array.
- Argument errors are ValueErrors as in Keras, with dl's messages (they start with the
  argument: ``scale: expected a positive number``) instead of Keras's wording.

Not ported (dl has no such object):
- ConstantInitializersTest.test_stft_initializer: no STFT initializer;
- the ``backend.random.SeedGenerator`` parts of test_random_normal and all of
  test_serialization_with_seed_generator: a dl seed is an int or None;
- test_compute_fans_with_axes: Keras's internal ``compute_fans(shape, input_axes,
  output_axes)``; dl's fans are private (the axes are tested through
  VarianceScaling's ``input_axes``/``output_axes``);
- test_mha_query_projection_variance: no MultiHeadAttention layer.
"""
import json

import numpy as np
import pytest

from dl import initializers, utils


def close(actual, desired, atol=1e-6, rtol=1e-6):
    np.testing.assert_allclose(actual, desired, atol=atol, rtol=rtol)


def not_close(actual, desired, atol=1e-6, rtol=1e-6):
    # Keras's assertNotAllClose
    assert not np.allclose(actual, desired, atol=atol, rtol=rtol)


def to_json(config):
    return json.dumps(config, sort_keys=True)


def roundtrip(instance):
    """Keras's run_class_serialization_test: get_config -> from_config keeps the config
    (as JSON) and the attributes (``dir``); so does serialize -> JSON -> get."""
    cls = type(instance)
    config_json = to_json(instance.get_config())
    revived = cls.from_config(instance.get_config())
    assert to_json(revived.get_config()) == config_json
    assert set(dir(revived)) == set(dir(instance))
    revived = initializers.get(json.loads(json.dumps(initializers.serialize(instance))))
    assert type(revived) is cls
    assert to_json(revived.get_config()) == config_json
    assert set(dir(revived)) == set(dir(instance))
    return revived


# ------------------------------------------------------------- RandomInitializersTest
def test_random_normal():
    # RandomInitializersTest.test_random_normal (less its SeedGenerator parts)
    utils.set_random_seed(1337)
    shape, mean, stddev, seed = (25, 20), 0.0, 1.0, 1234
    initializer = initializers.RandomNormal(mean=mean, stddev=stddev, seed=seed)
    values = initializer(shape=shape)
    assert initializer.mean == mean
    assert initializer.stddev == stddev
    assert initializer.seed == seed
    assert values.shape == shape
    close(np.std(values), stddev, atol=1e-1)
    roundtrip(initializer)

    # a fixed seed yields the same results each call
    initializer = initializers.RandomNormal(mean=mean, stddev=stddev, seed=1337)
    close(initializer(shape=shape), initializer(shape=shape))

    # an unseeded initializer gets different results after cloning
    initializer = initializers.RandomNormal(mean=mean, stddev=stddev, seed=None)
    values = initializer(shape=shape)
    cloned = initializers.RandomNormal.from_config(initializer.get_config())
    not_close(values, cloned(shape=shape))

    # a seeded one gets the same results after cloning
    initializer = initializers.RandomNormal(mean=mean, stddev=stddev, seed=1337)
    values = initializer(shape=shape)
    cloned = initializers.RandomNormal.from_config(initializer.get_config())
    close(values, cloned(shape=shape))


def test_random_uniform():
    # RandomInitializersTest.test_random_uniform
    shape, minval, maxval, seed = (5, 5), -1.0, 1.0, 1234
    initializer = initializers.RandomUniform(minval=minval, maxval=maxval, seed=seed)
    values = initializer(shape=shape)
    assert initializer.minval == minval
    assert initializer.maxval == maxval
    assert initializer.seed == seed
    assert values.shape == shape
    assert np.min(values) >= minval
    assert np.max(values) < maxval
    roundtrip(initializer)


@pytest.mark.parametrize("mode, fan", [("fan_in", 25), ("fan_out", 20)])
def test_variance_scaling(mode, fan):
    # RandomInitializersTest.test_variance_scaling
    utils.set_random_seed(1337)
    shape, scale, seed = (25, 20), 2.0, 1234
    initializer = initializers.VarianceScaling(scale=scale, seed=seed, mode=mode)
    values = initializer(shape=shape)
    assert initializer.scale == scale
    assert initializer.seed == seed
    assert values.shape == shape
    close(np.std(values), np.sqrt(scale / fan), atol=1e-1)
    roundtrip(initializer)


def test_get_method():
    # RandomInitializersTest.test_get_method (less get(None), below).  Keras asserts
    # assertTrue(obj, GlorotNormal), always true: the type is checked here.
    assert isinstance(initializers.get("glorot_normal"), initializers.GlorotNormal)
    with pytest.raises(ValueError):
        initializers.get("typo")


def test_get_method_none():
    # RandomInitializersTest.test_get_method: get(None)
    assert initializers.get(None) is None


def test_get_method_with_tensor():
    # RandomInitializersTest.test_get_method_with_tensor (a NumPy array is dl's tensor)
    shape = (5, 5)
    tensor = np.random.default_rng(0).uniform(size=shape).astype("float32")
    initializer = initializers.get(tensor)
    close(initializer(shape=shape), tensor)
    # a bad `shape` argument (Keras: "Expected `shape` to be ...")
    with pytest.raises(ValueError):
        initializer(shape=(10, 10))


def test_variance_scaling_invalid_scale():
    # RandomInitializersTest.test_variance_scaling_invalid_scale
    with pytest.raises(ValueError, match="^scale: expected a positive number"):
        initializers.VarianceScaling(scale=-1.0, seed=1234, mode="fan_in")


def test_variance_scaling_invalid_mode():
    # RandomInitializersTest.test_variance_scaling_invalid_mode
    with pytest.raises(ValueError, match="^mode: expected"):
        initializers.VarianceScaling(scale=2.0, seed=1234, mode="invalid_mode")


def test_variance_scaling_invalid_distribution():
    # RandomInitializersTest.test_variance_scaling_invalid_distribution
    with pytest.raises(ValueError, match="^distribution: expected"):
        initializers.VarianceScaling(scale=2.0, seed=1234, mode="fan_in",
                                     distribution="invalid_dist")


def test_variance_scaling_with_axes():
    # RandomInitializersTest.test_variance_scaling_with_axes (the part with axes)
    utils.set_random_seed(1337)
    shape, scale = (32, 4, 16), 2.0
    initializer = initializers.VarianceScaling(scale=scale, seed=1234, mode="fan_in",
                                               input_axes=[0], output_axes=[1, 2])
    values = initializer(shape=shape)
    assert values.shape == shape
    close(np.std(values), np.sqrt(scale / 32), atol=1e-1)


def test_variance_scaling_without_axes():
    # RandomInitializersTest.test_variance_scaling_with_axes (the part without axes:
    # fan_in of (32, 4, 16) is 4 * 32 = 128)
    utils.set_random_seed(1337)
    shape, scale = (32, 4, 16), 2.0
    values = initializers.VarianceScaling(scale=scale, seed=1234, mode="fan_in")(shape=shape)
    assert values.shape == shape
    close(np.std(values), np.sqrt(scale / 128), atol=1e-1)


def test_variance_scaling_serialization_with_axes():
    # RandomInitializersTest.test_variance_scaling_serialization_with_axes
    roundtrip(initializers.VarianceScaling(input_axes=[0], output_axes=[1, 2]))


# ----------------------------------------------------------- ConstantInitializersTest
def test_zeros_initializer():
    # ConstantInitializersTest.test_zeros_initializer
    shape = (3, 3)
    initializer = initializers.Zeros()
    values = initializer(shape=shape)
    assert values.shape == shape
    close(values, np.zeros(shape=shape))
    roundtrip(initializer)


def test_ones_initializer():
    # ConstantInitializersTest.test_ones_initializer
    shape = (3, 3)
    initializer = initializers.Ones()
    values = initializer(shape=shape)
    assert values.shape == shape
    close(values, np.ones(shape=shape))
    roundtrip(initializer)


def test_constant_initializer():
    # ConstantInitializersTest.test_constant_initializer
    shape, constant_value = (3, 3), 6.0
    initializer = initializers.Constant(value=constant_value)
    values = initializer(shape=shape)
    assert values.shape == shape
    close(values, np.full(shape=shape, fill_value=constant_value))
    roundtrip(initializer)


def test_constant_initializer_array_value():
    # ConstantInitializersTest.test_constant_initializer_array_value
    shape = (3, 3)
    constant_value = np.random.default_rng(0).random((3, 3))
    initializer = initializers.Constant(value=constant_value)
    values = initializer(shape=shape)
    assert values.shape == shape
    close(values, np.full(shape=shape, fill_value=constant_value))
    roundtrip(initializer)


def test_orthogonal():                              # RandomInitializersTest.test_orthogonal
    initializer = initializers.Orthogonal(gain=2.0, seed=1234)
    values = initializer(shape=(5, 5))
    assert initializer.seed == 1234 and initializer.gain == 2.0
    assert values.shape == (5, 5)
    for column in values.T:                          # columns of norm gain
        np.testing.assert_almost_equal(np.linalg.norm(column), 2.0, decimal=3)
    for i in range(5):                               # and orthogonal to each other
        for j in range(i + 1, 5):
            np.testing.assert_almost_equal(np.dot(values[..., i], values[..., j]), 0.0,
                                           decimal=3)
    roundtrip(initializer)
    assert isinstance(initializers.get("OrthogonalInitializer"), initializers.Orthogonal)


def test_identity_initializer():     # ConstantInitializersTest.test_identity_initializer
    initializer = initializers.Identity(gain=2)
    values = initializer(shape=(3, 3))
    assert values.shape == (3, 3)
    close(values, np.eye(3) * 2)
    roundtrip(initializer)
    assert isinstance(initializers.get("IdentityInitializer"), initializers.Identity)
