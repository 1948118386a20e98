"""Keras 3's ``keras/src/losses/losses_test.py``, ported for the losses dl provides
(MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError,
MeanSquaredLogarithmicError, Hinge, SquaredHinge, CategoricalHinge, CosineSimilarity,
Huber, LogCosh, KLDivergence, Poisson, BinaryCrossentropy, CategoricalCrossentropy,
SparseCategoricalCrossentropy): the same inputs and expected values, run on dl.  Each
test names the Keras test (class.method) it comes from.

Deliberate differences (docs/keras-differences.md), asserted as dl's behaviour:
- dl's losses take (samples,) or (samples, values) arrays: Keras's "timestep" and
  segmentation cases (rank-3 predictions) raise a ValueError naming the argument;
- dtypes are float32 and float64: ``dtype="bfloat16"`` is a TypeError naming dtype;
- the class axis is the last (-1, or 1 of the 2-D outputs): CosineSimilarity(axis=2)
  is a ValueError naming axis;
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


# ================================================ the losses of Keras's everyday vocabulary
# (MeanAbsolutePercentageErrorTest ... PoissonTest): the same cases and values.

# ---------------------------------------------- MeanAbsolutePercentageErrorTest
def test_mape_config():
    roundtrip(losses.MeanAbsolutePercentageError(name="mymape"))


def test_mape_all_correct_unweighted():
    y = np.array([[4, 8, 12], [8, 1, 3]])
    almost(losses.MeanAbsolutePercentageError()(y, y), 0.0)


def test_mape_unweighted():
    almost(losses.MeanAbsolutePercentageError()(Y_TRUE, Y_PRED), 211.8518)


def test_mape_scalar_weighted():
    almost(losses.MeanAbsolutePercentageError()(Y_TRUE, Y_PRED, sample_weight=2.3), 487.259)


def test_mape_sample_weighted():
    almost(losses.MeanAbsolutePercentageError()(
        Y_TRUE, Y_PRED, sample_weight=np.array([[1.2], [3.4]])), 422.8888)


def test_mape_timestep_weighted():     # deliberately different: rank-3 refused
    with pytest.raises(ValueError, match="^y_pred: expected"):
        losses.MeanAbsolutePercentageError()(**TIMESTEP)


def test_mape_zero_weighted():
    almost(losses.MeanAbsolutePercentageError()(Y_TRUE, Y_PRED, sample_weight=0), 0.0)


def test_mape_no_reduction():
    almost(losses.MeanAbsolutePercentageError(reduction=None)(Y_TRUE, Y_PRED,
                                                              sample_weight=2.3),
           [621.8518, 352.6666])


def test_mape_mean_with_sample_weight_reduction():
    almost(losses.MeanAbsolutePercentageError(reduction="mean_with_sample_weight")(
        Y_TRUE, Y_PRED, sample_weight=np.array([[1.2], [3.4]])), 183.865)


def test_mape_dtype_arg():             # deliberately different: no bfloat16
    with pytest.raises(TypeError, match="^dtype: expected"):
        losses.MeanAbsolutePercentageError(dtype="bfloat16")


# ---------------------------------------------- MeanSquaredLogarithmicErrorTest
def test_msle_config():
    roundtrip(losses.MeanSquaredLogarithmicError(name="mysloge"))


def test_msle_unweighted():
    almost(losses.MeanSquaredLogarithmicError()(Y_TRUE, Y_PRED), 1.4370)


def test_msle_scalar_weighted():
    almost(losses.MeanSquaredLogarithmicError()(Y_TRUE, Y_PRED, sample_weight=2.3), 3.3051)


def test_msle_sample_weighted():
    almost(losses.MeanSquaredLogarithmicError()(
        Y_TRUE, Y_PRED, sample_weight=np.array([[1.2], [3.4]])), 3.7856)


def test_msle_timestep_weighted():     # deliberately different: rank-3 refused
    with pytest.raises(ValueError, match="^y_pred: expected"):
        losses.MeanSquaredLogarithmicError()(**TIMESTEP)


def test_msle_zero_weighted():
    almost(losses.MeanSquaredLogarithmicError()(Y_TRUE, Y_PRED, sample_weight=0), 0.0)


def test_msle_mean_with_sample_weight_reduction():
    almost(losses.MeanSquaredLogarithmicError(reduction="mean_with_sample_weight")(
        Y_TRUE, Y_PRED, sample_weight=np.array([[1.2], [3.4]])), 1.646)


def test_msle_dtype_arg():             # deliberately different: no bfloat16
    with pytest.raises(TypeError, match="^dtype: expected"):
        losses.MeanSquaredLogarithmicError(dtype="bfloat16")


# ------------------------------------------ HingeTest, SquaredHingeTest, CategoricalHingeTest
HG_TRUE = np.array([[0.0, 1.0], [0.0, 0.0]])
HG_PRED = np.array([[0.6, 0.4], [0.4, 0.6]])
# Keras's values: (sum_over_batch_size, sum, per sample) unweighted and with weights [1, 0]
HINGES = {
    "Hinge": ((1.3, 2.6, [1.1, 1.5]), (0.55, 1.1, [1.1, 0.0])),
    "SquaredHinge": ((1.86, 3.72, [1.46, 2.26]), (0.73, 1.46, [1.46, 0.0])),
    "CategoricalHinge": ((1.4, 2.8, [1.2, 1.6]), (0.6, 1.2, [1.2, 0.0])),
}


@pytest.mark.parametrize("cls", list(HINGES))
def test_hinges_unweighted(cls):
    """HingeTest / SquaredHingeTest / CategoricalHingeTest.test_unweighted."""
    loss_cls = getattr(losses, cls)
    mean, total, per = HINGES[cls][0]
    almost(loss_cls(reduction="sum_over_batch_size")(HG_TRUE, HG_PRED), mean)
    almost(loss_cls(reduction="sum")(HG_TRUE, HG_PRED), total)
    close(loss_cls(reduction=None)(HG_TRUE, HG_PRED), per)
    with pytest.raises(ValueError, match="Invalid value for argument"):
        loss_cls(reduction="abc")


@pytest.mark.parametrize("cls", list(HINGES))
def test_hinges_weighted(cls):
    """HingeTest / SquaredHingeTest / CategoricalHingeTest.test_weighted."""
    loss_cls = getattr(losses, cls)
    mean, total, per = HINGES[cls][1]
    w = [1, 0]
    almost(loss_cls(reduction="sum_over_batch_size")(HG_TRUE, HG_PRED, sample_weight=w), mean)
    almost(loss_cls(reduction="sum")(HG_TRUE, HG_PRED, sample_weight=w), total)
    almost(loss_cls(reduction=None)(HG_TRUE, HG_PRED, sample_weight=w), per)


@pytest.mark.parametrize("cls", list(HINGES))
def test_hinges_zero_weighted(cls):
    """HingeTest / SquaredHingeTest / CategoricalHingeTest.test_zero_weighted."""
    assert getattr(losses, cls)()(HG_TRUE, HG_PRED, sample_weight=0.0) == 0.0


@pytest.mark.parametrize("cls", list(HINGES))
def test_hinges_dtype_arg(cls):        # deliberately different: no bfloat16
    """HingeTest / SquaredHingeTest / CategoricalHingeTest.test_dtype_arg."""
    with pytest.raises(TypeError, match="^dtype: expected"):
        getattr(losses, cls)(dtype="bfloat16")
    assert isinstance(getattr(losses, cls)(dtype="float64")(HG_TRUE, HG_PRED), float)


# ------------------------------------------------------------- CosineSimilarityTest
def _cosine_expected(axis=1):
    def l2_norm(x):
        return x / np.sqrt(np.maximum(np.sum(np.square(x), axis=axis, keepdims=True), 1e-12))
    t = np.asarray([[1, 9, 2], [-5, -2, 6]], dtype=np.float32)
    p = np.asarray([[4, 8, 12], [8, 1, 3]], dtype=np.float32)
    return t, p, np.sum(l2_norm(t) * l2_norm(p), axis=axis)


def test_cosine_config():
    # Keras's case uses axis=2 (a rank-3 class axis): dl's outputs are 2-D, so the
    # axis is -1 or 1 and axis=2 is a ValueError naming it (deliberately different)
    with pytest.raises(ValueError, match="^axis: "):
        losses.CosineSimilarity(axis=2, reduction="sum", name="cosine_loss")
    cosine = losses.CosineSimilarity(axis=1, reduction="sum", name="cosine_loss")
    assert cosine.name == "cosine_loss" and cosine.reduction == "sum"
    assert cosine.get_config() == {"name": "cosine_loss", "reduction": "sum", "axis": 1}
    roundtrip(cosine)


def test_cosine_unweighted():
    t, p, expected = _cosine_expected()
    almost(losses.CosineSimilarity()(t, p), -np.mean(expected))


def test_cosine_scalar_weighted():
    t, p, expected = _cosine_expected()
    almost(losses.CosineSimilarity()(t, p, sample_weight=2.3), -np.mean(expected * 2.3))


def test_cosine_sample_weighted():
    t, p, expected = _cosine_expected()
    w = np.asarray([1.2, 3.4])
    almost(losses.CosineSimilarity()(t, p, sample_weight=w), -np.mean(expected * w))


def test_cosine_timestep_weighted():   # deliberately different: rank-3 refused
    t, p, _ = _cosine_expected()
    with pytest.raises(ValueError, match="^y_pred: expected"):
        losses.CosineSimilarity()(t.reshape(2, 3, 1), p.reshape(2, 3, 1),
                                  sample_weight=np.asarray([3, 6, 5, 0, 4, 2]).reshape(2, 3))


def test_cosine_zero_weighted():
    t, p, _ = _cosine_expected()
    almost(losses.CosineSimilarity()(t, p, sample_weight=0), 0.0)


def test_cosine_axis():
    t, p, expected = _cosine_expected(axis=1)
    almost(losses.CosineSimilarity(axis=1)(t, p), -np.mean(expected))


def test_cosine_dtype_arg():           # deliberately different: no bfloat16
    with pytest.raises(TypeError, match="^dtype: expected"):
        losses.CosineSimilarity(dtype="bfloat16")


# ------------------------------------------------ LogCoshTest, KLDivergenceTest, PoissonTest
LC_TRUE = np.asarray([[1, 9, 2], [-5, -2, 6]], dtype=np.float32)
LC_PRED = np.asarray([[4, 8, 12], [8, 1, 3]], dtype=np.float32)
LC_ERR = LC_PRED - LC_TRUE
LC_LOSSES = np.log((np.exp(LC_ERR) + np.exp(-LC_ERR)) / 2)
KL_PRED = np.asarray([0.4, 0.9, 0.12, 0.36, 0.3, 0.4], dtype=np.float32).reshape((2, 3))
KL_TRUE = np.asarray([0.5, 0.8, 0.12, 0.7, 0.43, 0.8], dtype=np.float32).reshape((2, 3))
KL_LOSSES = KL_TRUE * np.log(KL_TRUE / KL_PRED)
PO_PRED = np.asarray([1, 9, 2, 5, 2, 6], dtype=np.float32).reshape((2, 3))
PO_TRUE = np.asarray([4, 8, 12, 8, 1, 3], dtype=np.float32).reshape((2, 3))
PO_LOSSES = PO_PRED - PO_TRUE * np.log(PO_PRED)
# class -> (y_true, y_pred, elementwise losses, the divisor Keras's expected values use)
ELEMENTWISE = {
    "LogCosh": (LC_TRUE, LC_PRED, LC_LOSSES, 6),
    "KLDivergence": (KL_TRUE, KL_PRED, KL_LOSSES, 2),      # a sum per sample
    "Poisson": (PO_TRUE, PO_PRED, PO_LOSSES, 6),
}


def test_logcosh_config():
    loss = losses.LogCosh(reduction="sum", name="logcosh_loss")
    assert loss.name == "logcosh_loss" and loss.reduction == "sum"
    assert loss.get_config() == {"name": "logcosh_loss", "reduction": "sum"}


@pytest.mark.parametrize("cls, name", [("KLDivergence", "kld"), ("Poisson", "poisson")])
def test_kld_poisson_config(cls, name):
    """KLDivergenceTest / PoissonTest.test_config."""
    loss = getattr(losses, cls)(reduction="sum", name=name)
    assert loss.name == name and loss.reduction == "sum"


@pytest.mark.parametrize("cls", list(ELEMENTWISE))
def test_elementwise_unweighted(cls):
    """LogCoshTest / KLDivergenceTest / PoissonTest.test_unweighted."""
    t, p, per, div = ELEMENTWISE[cls]
    almost(getattr(losses, cls)()(t, p), np.sum(per) / div)


@pytest.mark.parametrize("cls", list(ELEMENTWISE))
def test_elementwise_scalar_weighted(cls):
    """LogCoshTest / KLDivergenceTest / PoissonTest.test_scalar_weighted (and the same
    output for the same input)."""
    t, p, per, div = ELEMENTWISE[cls]
    loss = getattr(losses, cls)()
    value = loss(t, p, sample_weight=2.3)
    almost(value, 2.3 * np.sum(per) / div)
    almost(loss(t, p, sample_weight=2.3), value)


@pytest.mark.parametrize("cls", list(ELEMENTWISE))
def test_elementwise_sample_weighted(cls):
    """LogCoshTest / KLDivergenceTest / PoissonTest.test_sample_weighted."""
    t, p, per, div = ELEMENTWISE[cls]
    w = np.asarray([1.2, 3.4], dtype=np.float32).reshape((2, 1))
    expected = np.sum(per * np.asarray([1.2, 1.2, 1.2, 3.4, 3.4, 3.4]).reshape(2, 3)) / div
    almost(getattr(losses, cls)()(t, p, sample_weight=w), expected)


@pytest.mark.parametrize("cls", list(ELEMENTWISE))
def test_elementwise_timestep_weighted(cls):     # deliberately different: rank-3 refused
    """LogCoshTest / KLDivergenceTest / PoissonTest.test_timestep_weighted."""
    t, p, _, _ = ELEMENTWISE[cls]
    with pytest.raises(ValueError, match="^y_pred: expected"):
        getattr(losses, cls)()(t.reshape(2, 3, 1), p.reshape(2, 3, 1),
                               sample_weight=np.asarray([3, 6, 5, 0, 4, 2]).reshape(2, 3))


@pytest.mark.parametrize("cls", list(ELEMENTWISE))
def test_elementwise_zero_weighted(cls):
    """LogCoshTest / KLDivergenceTest / PoissonTest.test_zero_weighted."""
    t, p, _, _ = ELEMENTWISE[cls]
    almost(getattr(losses, cls)()(t, p, sample_weight=0), 0.0)


@pytest.mark.parametrize("cls", list(ELEMENTWISE))
def test_elementwise_dtype_arg(cls):   # deliberately different: no bfloat16
    """LogCoshTest / KLDivergenceTest / PoissonTest.test_dtype_arg."""
    with pytest.raises(TypeError, match="^dtype: expected"):
        getattr(losses, cls)(dtype="bfloat16")
