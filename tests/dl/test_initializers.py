"""Initializers: their statistics and determinism under a seed."""
import math

import numpy as np
import pytest

import dl
from dl import (initializers, layers)
from dl_helpers import ACT, both_backends, restore_dl_state  # noqa: F401  (autouse fixture)


# ---------------------------------------------------------------- initializers

def test_glorot_uniform_bounds_default_kernel():
    dl.utils.set_random_seed(0)
    model = dl.Sequential([layers.Dense(300, input_shape=(200,))])
    model.build()
    w, b = model.get_weights()
    limit = math.sqrt(6 / (200 + 300))
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.99 * limit
    np.testing.assert_allclose(w.std(), limit / math.sqrt(3), rtol=0.02)
    assert abs(w.mean()) < 0.01 * limit
    np.testing.assert_array_equal(b, 0)


def test_initializers_by_name_and_object():
    model = dl.Sequential([layers.Dense(4, input_shape=(3,), kernel_initializer="zeros",
                                        bias_initializer="ones"),
                           layers.Dense(2, kernel_initializer=initializers.Constant(0.5),
                                        bias_initializer=initializers.Ones())])
    model.build()
    w1, b1, w2, b2 = model.get_weights()
    np.testing.assert_array_equal(w1, 0)
    np.testing.assert_array_equal(b1, 1)
    np.testing.assert_array_equal(w2, 0.5)
    np.testing.assert_array_equal(b2, 1)


def test_he_normal_std():
    dl.utils.set_random_seed(1)
    fan_in = 400
    w = initializers.get("he_normal")((fan_in, 1000))
    std = math.sqrt(2 / fan_in)
    np.testing.assert_allclose(w.std(), std, rtol=0.02)
    assert np.abs(w).max() <= 2 * std / 0.87962566103423978 + 1e-7   # truncated at 2 sigma
    assert w.dtype == np.float32


@pytest.mark.parametrize("name,check", [
    ("random_normal", lambda w: abs(w.std() - 0.05) < 0.002 and abs(w.mean()) < 0.002),
    ("random_uniform", lambda w: w.min() >= -0.05 and w.max() <= 0.05
     and w.max() > 0.049 and w.min() < -0.049),
    ("he_uniform", lambda w: np.abs(w).max() <= math.sqrt(6 / 100)),
    ("lecun_uniform", lambda w: np.abs(w).max() <= math.sqrt(3 / 100)),
    ("glorot_normal", lambda w: abs(w.std() - math.sqrt(2 / 300)) < 0.02 * math.sqrt(2 / 300)),
    ("lecun_normal", lambda w: abs(w.std() - math.sqrt(1 / 100)) < 0.02 * math.sqrt(1 / 100)),
    ("truncated_normal", lambda w: np.abs(w).max() <= 0.1 + 1e-7),
])
def test_initializer_defaults(name, check):
    dl.utils.set_random_seed(2)
    w = initializers.get(name)((100, 200))
    assert w.shape == (100, 200)
    assert check(w)


def test_seeded_initializer_repeats_and_global_seed_is_deterministic():
    init = initializers.GlorotUniform(seed=3)
    np.testing.assert_array_equal(init((4, 5)), init((4, 5)))
    dl.utils.set_random_seed(9)
    a = initializers.get("glorot_uniform")((4, 5))
    dl.utils.set_random_seed(9)
    b = initializers.get("glorot_uniform")((4, 5))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="seed"):
        dl.utils.set_random_seed(-1)


@pytest.mark.parametrize("shape", [(3, 5), (6, 4), (2, 3, 4)])
def test_orthogonal_rows_or_columns_are_orthonormal(shape):
    from dl import initializers as init
    q = init.Orthogonal(gain=1.5, seed=3)(shape, "float64")
    flat = q.reshape(-1, shape[-1])
    gram = flat @ flat.T if flat.shape[0] < flat.shape[1] else flat.T @ flat
    np.testing.assert_allclose(gram, 2.25 * np.eye(gram.shape[0]), atol=1e-12)
    np.testing.assert_array_equal(q, init.Orthogonal(gain=1.5, seed=3)(shape, "float64"))
    with pytest.raises(ValueError, match="^shape: the Orthogonal initializer needs"):
        init.Orthogonal()((4,))
    with pytest.raises(ValueError, match="^shape: Identity matrix initializer can only"):
        init.Identity()((2, 2, 2))
