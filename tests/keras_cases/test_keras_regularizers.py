"""Keras 3's ``keras/src/regularizers/regularizers_test.py``, ported for the
regularizers dl provides (L1, L2, L1L2, ``get``/``serialize``): the same cases and
expected values, run on dl.  Each test names the Keras test (Class.method) it comes from.

Keras's weights are ``backend.Variable``s of ``np.random.random`` values: dl's are
NumPy arrays, drawn here from a seeded generator (the expected values are Keras's
formulas on those arrays).

ValidateFloatArgTest exercises Keras's internal ``validate_float_arg``, what the
constructors apply to ``l1``/``l2``: it is ported through ``L1L2(l1=...)``.
Deliberate difference (dl's convention, docs/keras-differences.md "Arguments checked"):
a value that is not a number at all (a str, a list) is a TypeError naming the argument
where Keras raises ValueError; bad numbers (negative, nan, inf) are ValueErrors as in
Keras.  Keras's message is "expected a non-negative float", dl's "expected a finite
number >= 0".

Not ported: the OrthogonalRegularizer cases (test_orthogonal_regularizer,
test_orthogonal_regularizer_mode_validation,
test_orthogonal_regularizer_input_rank_validation,
test_orthogonal_regularizer_get_config, and its parts of test_config and
test_get_method): dl has no OrthogonalRegularizer.
ValidateFloatArgTest.test_validate_float_with_none: Keras's constructors turn None into
their default (``L1(None)`` is ``L1(0.01)``, ``L1L2(l1=None)`` has l1=0.0) before the
helper sees it, so the case has no public-API counterpart; dl's constructors refuse
None (TypeError).
"""
import json
import numpy as np
import pytest

from dl import regularizers


def close(actual, desired, atol=1e-6, rtol=1e-6):
    np.testing.assert_allclose(actual, desired, atol=atol, rtol=rtol)


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
    revived = regularizers.get(json.loads(json.dumps(regularizers.serialize(instance))))
    assert type(revived) is cls
    assert to_json(revived.get_config()) == config_json
    assert set(dir(revived)) == set(dir(instance))
    return revived


def random_value(seed=0):
    return np.random.default_rng(seed).random((4, 4)).astype(np.float32)


# ------------------------------------------------------------------- RegularizersTest
def test_config():
    # RegularizersTest.test_config (less OrthogonalRegularizer)
    roundtrip(regularizers.L1(0.1))
    roundtrip(regularizers.L2(0.1))
    roundtrip(regularizers.L1L2(l1=0.1, l2=0.2))


def test_l1():
    # RegularizersTest.test_l1
    value = random_value()
    close(regularizers.L1(0.1)(value), 0.1 * np.sum(np.abs(value)))


def test_l2():
    # RegularizersTest.test_l2
    value = random_value()
    close(regularizers.L2(0.1)(value), 0.1 * np.sum(np.square(value)))


def test_l1_l2():
    # RegularizersTest.test_l1_l2
    value = random_value()
    close(regularizers.L1L2(l1=0.1, l2=0.2)(value),
          0.1 * np.sum(np.abs(value)) + 0.2 * np.sum(np.square(value)))


def test_get_method():
    # RegularizersTest.test_get_method (less "orthogonal_regularizer"; "l1l2" below)
    assert isinstance(regularizers.get("l1"), regularizers.L1)
    assert isinstance(regularizers.get("l2"), regularizers.L2)
    assert regularizers.get(None) is None
    with pytest.raises(ValueError):
        regularizers.get("typo")


def test_get_method_l1l2():
    # RegularizersTest.test_get_method: get("l1l2")
    assert isinstance(regularizers.get("l1l2"), regularizers.L1L2)


def test_l1l2_get_config():
    # RegularizersTest.test_l1l2_get_config
    l1, l2 = 0.01, 0.02
    reg = regularizers.L1L2(l1=l1, l2=l2)
    config = reg.get_config()
    close(config["l1"], l1)
    close(config["l2"], l2)
    reg_from_config = regularizers.L1L2.from_config(config)
    assert reg_from_config.get_config() == config
    close(reg_from_config.l1, l1)
    close(reg_from_config.l2, l2)


def test_l1_with_zero_weights():
    # RegularizersTest.test_l1_with_zero_weights
    close(regularizers.L1(0.1)(np.zeros((4, 4), dtype=np.float32)), 0.0)


def test_l1_with_negative_weights():
    # RegularizersTest.test_l1_with_negative_weights
    ones = np.ones((4, 4), dtype=np.float32)
    close(regularizers.L1(0.1)(ones), regularizers.L1(0.1)(-ones))


def test_l1_zero_coefficient():
    # RegularizersTest.test_l1_zero_coefficient
    close(regularizers.L1(0.0)(random_value()), 0.0)


def test_l2_with_zero_weights():
    # RegularizersTest.test_l2_with_zero_weights
    close(regularizers.L2(0.1)(np.zeros((4, 4), dtype=np.float32)), 0.0)


def test_l2_zero_coefficient():
    # RegularizersTest.test_l2_zero_coefficient
    close(regularizers.L2(0.0)(random_value()), 0.0)


def test_l2_is_larger_than_l1_for_large_weights():
    # RegularizersTest.test_l2_is_larger_than_l1_for_large_weights
    value = np.ones((4, 4), dtype=np.float32) * 10.0
    assert float(regularizers.L2(1.0)(value)) > float(regularizers.L1(1.0)(value))


def test_l2_is_smaller_than_l1_for_small_weights():
    # RegularizersTest.test_l2_is_smaller_than_l1_for_small_weights
    value = np.ones((4, 4), dtype=np.float32) * 0.1
    assert float(regularizers.L2(1.0)(value)) < float(regularizers.L1(1.0)(value))


def test_l1l2_zero_coefficients():
    # RegularizersTest.test_l1l2_zero_coefficients
    close(regularizers.L1L2(l1=0.0, l2=0.0)(random_value()), 0.0)


def test_l1l2_only_l1():
    # RegularizersTest.test_l1l2_only_l1
    value = random_value()
    close(regularizers.L1L2(l1=0.1, l2=0.0)(value), regularizers.L1(0.1)(value))


def test_l1l2_only_l2():
    # RegularizersTest.test_l1l2_only_l2
    value = random_value()
    close(regularizers.L1L2(l1=0.0, l2=0.1)(value), regularizers.L2(0.1)(value))


def test_l1l2_with_zero_weights():
    # RegularizersTest.test_l1l2_with_zero_weights
    close(regularizers.L1L2(l1=0.1, l2=0.2)(np.zeros((4, 4), dtype=np.float32)), 0.0)


# --------------------------------------- ValidateFloatArgTest (through the constructors)
def l1_of(value):
    return regularizers.L1L2(l1=value).l1


def test_validate_float_with_valid_args():
    # ValidateFloatArgTest.test_validate_float_with_valid_args
    assert l1_of(1) == 1.0
    assert l1_of(1.0) == 1.0


@pytest.mark.parametrize("value", ["not_a_number", [0.1]])
def test_validate_float_with_invalid_types(value):   # deliberately different: TypeError
    # ValidateFloatArgTest.test_validate_float_with_invalid_types, test_validate_float_with_list
    with pytest.raises(TypeError, match="^l1: expected a finite number >= 0"):
        l1_of(value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), -1, -0.001])
def test_validate_float_with_bad_numbers(value):
    # ValidateFloatArgTest.test_validate_float_with_nan, test_validate_float_with_inf,
    # test_validate_float_with_negative_number, test_validate_float_with_negative_float
    with pytest.raises(ValueError, match="^l1: expected a finite number >= 0"):
        l1_of(value)


def test_validate_float_with_zero():
    # ValidateFloatArgTest.test_validate_float_with_zero
    assert l1_of(0) == 0.0
    assert l1_of(0.0) == 0.0


def test_validate_float_with_very_small_positive():
    # ValidateFloatArgTest.test_validate_float_with_very_small_positive (assertAlmostEqual:
    # 7 places)
    assert round(l1_of(1e-10) - 1e-10, 7) == 0


def test_validate_float_returns_float_type():
    # ValidateFloatArgTest.test_validate_float_returns_float_type
    assert type(l1_of(1)) is float
    assert type(l1_of(1.0)) is float


def test_validate_float_with_large_positive():
    # ValidateFloatArgTest.test_validate_float_with_large_positive
    assert round(l1_of(1e6) - 1e6, 7) == 0
