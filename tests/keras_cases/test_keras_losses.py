"""Keras 3's ``keras/src/losses/losses_test.py``, ported for the losses dl provides
(MeanSquaredError, MeanAbsoluteError, Huber, BinaryCrossentropy,
CategoricalCrossentropy, SparseCategoricalCrossentropy): the same inputs and expected
values, run on dl.  Each test names the Keras test (class.method) it comes from.

Deliberate differences (docs/keras-differences.md), asserted as dl's behaviour:
- dl's losses take (samples,) or (samples, values) arrays: Keras's "timestep" and
  segmentation cases (rank-3 predictions) raise a ValueError naming the argument;
- dtypes are float32 and float64: ``dtype="bfloat16"`` is a ValueError;
- a loss called on arrays returns a Python float (Keras: a 0-d tensor), or the
  per-sample NumPy array with ``reduction=None``.
"""
import json

import numpy as np
import pytest

from dl import losses


def almost(actual, desired, decimal=3):
    np.testing.assert_almost_equal(actual, desired, decimal=decimal)


def close(actual, desired, atol=1e-6, rtol=1e-6):
    np.testing.assert_allclose(actual, desired, atol=atol, rtol=rtol)


def roundtrip(loss):
    """Keras's run_class_serialization_test: the config survives from_config and
    serialize -> JSON -> get."""
    cfg = loss.get_config()
    assert type(loss).from_config(cfg).get_config() == cfg
    revived = losses.get(json.loads(json.dumps(losses.serialize(loss))))
    assert type(revived) is type(loss) and revived.get_config() == cfg


Y_TRUE = np.array([[1, 9, 2], [-5, -2, 6]])
Y_PRED = np.array([[4, 8, 12], [8, 1, 3]], dtype="float32")
TIMESTEP = dict(y_true=np.asarray([1, 9, 2, -5, -2, 6]).reshape(2, 3, 1),
                y_pred=np.asarray([4, 8, 12, 8, 1, 3]).reshape(2, 3, 1),
                sample_weight=np.array([3, 6, 5, 0, 4, 2]).reshape((2, 3)))


# ------------------------------------------------------------ MeanSquaredErrorTest
def test_mse_config():
    roundtrip(losses.MeanSquaredError(name="mymse"))


def test_mse_base_function_reduction():
    loss = losses.mean_squared_error(np.array([4, 8, 12]), np.array([[3], [0], [1]]))
    assert loss.shape == (3,)


def test_mse_all_correct_unweighted():
    y = np.array([[4, 8, 12], [8, 1, 3]])
    almost(losses.MeanSquaredError()(y, y), 0.0)


def test_mse_unweighted():
    almost(losses.MeanSquaredError()(Y_TRUE, Y_PRED), 49.5)


def test_mse_scalar_weighted():
    almost(losses.MeanSquaredError()(Y_TRUE, Y_PRED, sample_weight=2.3), 113.85)


def test_mse_sample_weighted():
    almost(losses.MeanSquaredError()(Y_TRUE, Y_PRED, sample_weight=np.array([[1.2], [3.4]])),
           767.8 / 6)


def test_mse_timestep_weighted():      # deliberately different: rank-3 refused
    with pytest.raises(ValueError, match="^y_pred: expected"):
        losses.MeanSquaredError()(**TIMESTEP)


def test_mse_zero_weighted():
    almost(losses.MeanSquaredError()(Y_TRUE, Y_PRED, sample_weight=0), 0.0)


def test_mse_no_reduction():
    almost(losses.MeanSquaredError(reduction=None)(Y_TRUE, Y_PRED, sample_weight=2.3),
           [84.3333, 143.3666])


def test_mse_sum_reduction():
    almost(losses.MeanSquaredError(reduction="sum")(Y_TRUE, Y_PRED, sample_weight=2.3),
           227.69998)


def test_mse_mean_with_sample_weight_reduction():
    loss = losses.MeanSquaredError(reduction="mean_with_sample_weight")(
        Y_TRUE, Y_PRED, sample_weight=np.array([[1.2], [3.4]]))
    almost(loss, (110 / 3 * 1.2 + 187 / 3 * 3.4) / (1.2 + 3.4))


def test_mse_dtype_arg():              # deliberately different: no bfloat16
    with pytest.raises(TypeError, match="^dtype: expected .float32., .float64. or None"):
        losses.MeanSquaredError(dtype="bfloat16")
    assert isinstance(losses.MeanSquaredError(dtype="float64")(Y_TRUE, Y_PRED), float)


# ----------------------------------------------------------- MeanAbsoluteErrorTest
def test_mae_config():
    roundtrip(losses.MeanAbsoluteError(name="myname"))


def test_mae_all_correct_unweighted():
    y = np.array([[4, 8, 12], [8, 1, 3]])
    almost(losses.MeanAbsoluteError()(y, y), 0.0)


def test_mae_unweighted():
    almost(losses.MeanAbsoluteError()(Y_TRUE, Y_PRED), 5.5)


def test_mae_scalar_weighted():
    almost(losses.MeanAbsoluteError()(Y_TRUE, Y_PRED, sample_weight=2.3), 12.65)


def test_mae_sample_weighted():
    almost(losses.MeanAbsoluteError()(Y_TRUE, Y_PRED,
                                      sample_weight=np.array([[1.2], [3.4]])), 81.4 / 6)


def test_mae_timestep_weighted():      # deliberately different: rank-3 refused
    with pytest.raises(ValueError, match="^y_pred: expected"):
        losses.MeanAbsoluteError()(**TIMESTEP)


def test_mae_zero_weighted():
    almost(losses.MeanAbsoluteError()(Y_TRUE, Y_PRED, sample_weight=0), 0.0)


def test_mae_no_reduction():
    almost(losses.MeanAbsoluteError(reduction=None)(Y_TRUE, Y_PRED, sample_weight=2.3),
           [10.7333, 14.5666])


def test_mae_sum_reduction():
    almost(losses.MeanAbsoluteError(reduction="sum")(Y_TRUE, Y_PRED, sample_weight=2.3),
           25.29999)


def test_mae_mean_with_sample_weight_reduction():
    loss = losses.MeanAbsoluteError(reduction="mean_with_sample_weight")(
        Y_TRUE, Y_PRED, sample_weight=np.array([[1.2], [3.4]]))
    almost(loss, (14 / 3 * 1.2 + 19 / 3 * 3.4) / (1.2 + 3.4))


def test_mae_dtype_arg():              # deliberately different: no bfloat16
    with pytest.raises(TypeError, match="^dtype: expected .float32., .float64. or None"):
        losses.MeanAbsoluteError(dtype="bfloat16")


# ------------------------------------------------------------------ HuberLossTest
H_PRED = np.array([[0.9, 0.2, 0.2], [0.8, 0.4, 0.6]])
H_TRUE = np.array([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]])


def huber_np(y_true, y_pred, delta=1.0):
    abs_error = np.abs(y_pred - y_true)
    quadratic = np.minimum(abs_error, delta)
    return 0.5 * quadratic * quadratic + delta * (abs_error - quadratic)


def test_huber_config():
    h_obj = losses.Huber(delta=2.0, reduction="sum", name="huber")
    assert h_obj.name == "huber" and h_obj.reduction == "sum"
    assert h_obj.get_config() == {"name": "huber", "reduction": "sum", "delta": 2.0}
    roundtrip(h_obj)


def test_huber_all_correct():
    almost(losses.Huber()(H_TRUE, H_TRUE), 0.0)


def test_huber_unweighted():
    almost(losses.Huber()(H_TRUE, H_PRED), np.sum(huber_np(H_TRUE, H_PRED)) / 6)


def test_huber_scalar_weighted():
    h_obj = losses.Huber()
    loss = h_obj(H_TRUE, H_PRED, sample_weight=2.3)
    almost(loss, 2.3 * np.sum(huber_np(H_TRUE, H_PRED)) / 6)
    almost(h_obj(H_TRUE, H_PRED, sample_weight=2.3), loss)


def test_huber_sample_weighted():
    loss = losses.Huber()(H_TRUE, H_PRED, sample_weight=np.array([[1.2], [3.4]]))
    expected = np.sum(huber_np(H_TRUE, H_PRED) * np.array([[1.2] * 3, [3.4] * 3])) / 6
    almost(loss, expected)


def test_huber_timestep_weighted():    # deliberately different: rank-3 refused
    with pytest.raises(ValueError, match="^y_pred: expected"):
        losses.Huber()(H_TRUE.reshape(2, 3, 1), H_PRED.reshape(2, 3, 1),
                       sample_weight=np.array([3, 6, 5, 0, 4, 2]).reshape((2, 3, 1)))


def test_huber_zero_weighted():
    almost(losses.Huber()(H_TRUE, H_PRED, sample_weight=0), 0.0)


def test_huber_non_default_delta():
    loss = losses.Huber(delta=0.8)(H_TRUE, H_PRED, sample_weight=2.3)
    almost(loss, 2.3 * np.sum(huber_np(H_TRUE, H_PRED, 0.8)) / 6)


def test_huber_dtype_arg():            # deliberately different: no bfloat16
    with pytest.raises(TypeError, match="^dtype: expected .float32., .float64. or None"):
        losses.Huber(dtype="bfloat16")


# ---------------------------------------------------------- BinaryCrossentropyTest
EYE3 = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype="float32")
B_TRUE = np.array([1, 0, 1, 0]).reshape([2, 2])
B_PRED = np.array([1, 1, 1, 0], dtype="float32").reshape([2, 2])
B_LOGIT_TRUE = np.array([[1, 0, 1], [0, 1, 1]])
B_LOGITS = np.array([[10.0, -10.0, 10.0], [10.0, 10.0, -10.0]])


def test_bce_config():
    roundtrip(losses.BinaryCrossentropy(name="bce", axis=-1))


def test_bce_all_correct_unweighted():
    almost(losses.BinaryCrossentropy()(EYE3, EYE3), 0.0)
    logits = np.where(EYE3 > 0, 10.0, -10.0)
    almost(losses.BinaryCrossentropy(from_logits=True)(EYE3, logits), 0.0)


def test_bce_unweighted():
    y_pred = np.array([[0.9, 0.1, 0.2], [0.3, 0.8, 0.1], [0.1, 0.2, 0.7]], dtype="float32")
    close(losses.BinaryCrossentropy()(EYE3, y_pred), 0.20046903, rtol=1e-5)
    almost(losses.BinaryCrossentropy()(B_TRUE, B_PRED), 3.98559)
    almost(losses.BinaryCrossentropy(from_logits=True)(B_LOGIT_TRUE, B_LOGITS), 3.3333)


def test_bce_scalar_weighted():
    almost(losses.BinaryCrossentropy()(B_TRUE, B_PRED, sample_weight=2.3), 9.1668)
    almost(losses.BinaryCrossentropy(from_logits=True)(B_LOGIT_TRUE, B_LOGITS,
                                                       sample_weight=2.3), 7.666)


def test_bce_sample_weighted():
    almost(losses.BinaryCrossentropy()(B_TRUE, B_PRED,
                                       sample_weight=np.array([1.2, 3.4]).reshape((2, 1))),
           4.7827)
    almost(losses.BinaryCrossentropy(from_logits=True)(B_LOGIT_TRUE, B_LOGITS,
                                                       sample_weight=np.array([4, 3])),
           10.0)


def test_bce_no_reduction():
    loss = losses.BinaryCrossentropy(from_logits=True, reduction=None)(B_LOGIT_TRUE, B_LOGITS)
    close(loss, [0.0, 6.666], atol=1e-3)


def test_bce_label_smoothing():
    loss = losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1)(
        np.array([[1, 0, 1]]), np.array([[10.0, -10.0, -10.0]]))
    almost(loss, (10.0 + 5.0 * 0.1) / 3.0)


def test_bce_shape_mismatch():
    # deliberately different: one target per sample is broadcast over the outputs (as
    # dl's training does, Keras's compile-time rule); Keras's loss call refuses it
    y_pred = np.array([[0.9, 0.05, 0.05], [0.5, 0.89, 0.6], [0.05, 0.01, 0.94]])
    y_true = np.array([[0], [1], [1]])
    almost(losses.BinaryCrossentropy()(y_true, y_pred),
           losses.BinaryCrossentropy()(np.repeat(y_true, 3, axis=1), y_pred))
    with pytest.raises(ValueError, match=r"^y_true: expected shape \(3, 3\)"):
        losses.BinaryCrossentropy()(np.zeros((1, 3)), y_pred)


def test_bce_dtype_arg():              # deliberately different: no bfloat16
    with pytest.raises(TypeError, match="^dtype: expected .float32., .float64. or None"):
        losses.BinaryCrossentropy(dtype="bfloat16")


# ----------------------------------------------------- CategoricalCrossentropyTest
C_TRUE = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
C_PRED = np.array([[0.9, 0.05, 0.05], [0.5, 0.89, 0.6], [0.05, 0.01, 0.94]], dtype="float32")
C_LOGITS = np.array([[8.0, 1.0, 1.0], [0.0, 9.0, 1.0], [2.0, 3.0, 5.0]])
C_WEIGHTS = np.array([[1.2], [3.4], [5.6]]).reshape((3, 1))


def test_cce_config():
    roundtrip(losses.CategoricalCrossentropy(name="cce", axis=-1))


def test_cce_all_correct_unweighted():
    y_true = EYE3.astype("int64")
    almost(losses.CategoricalCrossentropy()(y_true, EYE3), 0.0)
    almost(losses.CategoricalCrossentropy(from_logits=True)(y_true, EYE3 * 10.0), 0.0)


def test_cce_unweighted():
    almost(losses.CategoricalCrossentropy()(C_TRUE, C_PRED), 0.3239)
    almost(losses.CategoricalCrossentropy(from_logits=True)(C_TRUE, C_LOGITS), 0.0573)


def test_cce_scalar_weighted():
    almost(losses.CategoricalCrossentropy()(C_TRUE, C_PRED, sample_weight=2.3), 0.7449)
    almost(losses.CategoricalCrossentropy(from_logits=True)(C_TRUE, C_LOGITS,
                                                            sample_weight=2.3), 0.1317)


def test_cce_sample_weighted():
    almost(losses.CategoricalCrossentropy()(C_TRUE, C_PRED, sample_weight=C_WEIGHTS), 1.0696)
    almost(losses.CategoricalCrossentropy(from_logits=True)(C_TRUE, C_LOGITS,
                                                            sample_weight=C_WEIGHTS), 0.31829)


def test_cce_no_reduction():
    loss = losses.CategoricalCrossentropy(from_logits=True, reduction=None)(C_TRUE, C_LOGITS)
    close(loss, (0.001822, 0.000459, 0.169846), atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("as_array", [False, True], ids=["list", "ndarray"])
def test_cce_label_smoothing(as_array):   # test_label_smoothing, test_label_smoothing_ndarray
    logits = np.asarray([[100.0, -100.0, -100.0]])
    y_true = np.asarray([[1, 0, 0]]) if as_array else [[1, 0, 0]]
    loss = losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(y_true, logits)
    almost(loss, 400.0 * 0.1 / 3.0)


def test_cce_label_smoothing_with_axis():  # deliberately different: class axis last only
    with pytest.raises(ValueError, match="^axis: only the last axis"):
        losses.CategoricalCrossentropy(label_smoothing=0.1, axis=0)


def test_cce_shape_mismatch():
    with pytest.raises(ValueError, match=r"^y: expected targets of shape \(n, 3\)"):
        losses.CategoricalCrossentropy()(np.array([[0], [1], [2]]), C_PRED)


def test_cce_dtype_arg():              # deliberately different: no bfloat16
    with pytest.raises(TypeError, match="^dtype: expected .float32., .float64. or None"):
        losses.CategoricalCrossentropy(dtype="bfloat16")


# ----------------------------------------------- SparseCategoricalCrossentropyTest
S_TRUE = np.array([[0], [1], [2]])


def test_scce_config():
    roundtrip(losses.SparseCategoricalCrossentropy(name="scce"))
    scce_obj = losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=3,
                                                    axis=-1, name="scce")
    config = scce_obj.get_config()
    assert config["from_logits"] is True and config["ignore_class"] == 3
    assert config["axis"] == -1            # Keras's case uses axis=0: see the axis test
    roundtrip(scce_obj)


def test_scce_all_correct_unweighted():
    y_true = np.array([[0], [1], [2]], dtype="int64")
    almost(losses.SparseCategoricalCrossentropy()(y_true, EYE3), 0.0)
    almost(losses.SparseCategoricalCrossentropy(from_logits=True)(y_true, EYE3 * 10.0), 0.0)


def test_scce_unweighted():
    y_true = np.array([0, 1, 2])
    almost(losses.SparseCategoricalCrossentropy()(y_true, C_PRED), 0.3239)
    almost(losses.SparseCategoricalCrossentropy(from_logits=True)(y_true, C_LOGITS), 0.0573)


def test_scce_scalar_weighted():
    almost(losses.SparseCategoricalCrossentropy()(S_TRUE, C_PRED, sample_weight=2.3), 0.7449)
    almost(losses.SparseCategoricalCrossentropy(from_logits=True)(S_TRUE, C_LOGITS,
                                                                  sample_weight=2.3), 0.1317)


def test_scce_sample_weighted():
    almost(losses.SparseCategoricalCrossentropy()(S_TRUE, C_PRED, sample_weight=C_WEIGHTS),
           1.0696)
    almost(losses.SparseCategoricalCrossentropy(from_logits=True)(
        S_TRUE, C_LOGITS, sample_weight=C_WEIGHTS), 0.31829)


def test_scce_no_reduction():
    loss = losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)(
        S_TRUE, C_LOGITS)
    close(loss, (0.001822, 0.000459, 0.169846), atol=1e-6, rtol=1e-4)


def test_scce_ignore_class():
    # Keras's case has a leading batch axis of 1 over 2 "pixels": dl's samples are rows
    logits = np.array([[0.854, 0.698, 0.598], [0.088, 0.86, 0.018]])
    loss = losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1,
                                                reduction=None)(np.array([-1, 2]), logits)
    close(loss, [0.0, 1.480129])
    loss = losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1,
                                                reduction=None)(np.array([[-1], [2]]), logits)
    close(loss, [0.0, 1.480129])


def test_scce_segmentation():          # deliberately different: rank-3 refused
    # test_binary_segmentation, test_multi_class_segmentation and their axis variants
    with pytest.raises(ValueError, match="^y_pred: expected predictions of shape"):
        losses.SparseCategoricalCrossentropy()(np.zeros((4, 4), int), np.ones((4, 4, 2)))


def test_scce_dtype_arg():             # deliberately different: no bfloat16
    with pytest.raises(TypeError, match="^dtype: expected .float32., .float64. or None"):
        losses.SparseCategoricalCrossentropy(dtype="bfloat16")
