"""Keras 3's ``keras/src/metrics/accuracy_metrics_test.py``, ported for the accuracy
metrics dl provides (Accuracy, BinaryAccuracy, CategoricalAccuracy,
SparseCategoricalAccuracy, TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy): the
same inputs and expected values.  Each test names its Keras test.  Keras's
``len(metric.variables) == 2`` (total, count) is dl's ``metric.total`` / ``metric.count``."""
import numpy as np
import pytest

from dl import metrics


def close(actual, expected, atol=1e-3):
    np.testing.assert_allclose(actual, expected, atol=atol)


@pytest.mark.parametrize("cls, name", [
    (metrics.Accuracy, "accuracy"), (metrics.BinaryAccuracy, "binary_accuracy"),
    (metrics.CategoricalAccuracy, "categorical_accuracy"),
    (metrics.SparseCategoricalAccuracy, "sparse_categorical_accuracy")])
def test_config(cls, name):
    # AccuracyTest, BinaryAccuracyTest, CategoricalAccuracyTest,
    # SparseCategoricalAccuracyTest.test_config
    obj = cls(name=name, dtype="float32")
    assert obj.name == name and obj.dtype == "float32"
    assert (obj.total, obj.count) == (0.0, 0)
    cfg = obj.get_config()
    assert cfg["name"] == name and cfg["dtype"] == "float32"
    again = cls.from_config(cfg)
    assert again.name == name and again.dtype == "float32"


def _result(m, y_true, y_pred, sample_weight=None):
    m.update_state(np.array(y_true), np.array(y_pred),
                   sample_weight=None if sample_weight is None else np.array(sample_weight))
    return m.result()


# ------------------------------------------------------------------- AccuracyTest
ACC_T, ACC_P = [[1], [2], [3], [4]], [[0], [2], [3], [4]]


def test_accuracy_unweighted():
    close(_result(metrics.Accuracy(), ACC_T, ACC_P), 0.75)


def test_accuracy_weighted():
    close(_result(metrics.Accuracy(), ACC_T, ACC_P, [1, 1, 0, 0]), 0.5)


def test_accuracy_weighted_rank_1():
    close(_result(metrics.Accuracy(), [1, 2, 3, 4], [0, 2, 3, 4], [1, 1, 0, 0]), 0.5)


def test_accuracy_weighted_nd_weights():
    close(_result(metrics.Accuracy(), [[1, 2], [3, 4]], [[0, 2], [3, 4]], [[1, 0], [0, 1]]),
          0.5)


def test_accuracy_weighted_nd_broadcast_weights():
    close(_result(metrics.Accuracy(), [[1, 2], [3, 4]], [[0, 2], [3, 4]], [[1, 0]]), 0.5)


# ------------------------------------------------------------- BinaryAccuracyTest
BIN_T, BIN_P = [[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]]


def test_binary_unweighted():
    close(_result(metrics.BinaryAccuracy(), BIN_T, BIN_P), 0.75)
    close(_result(metrics.BinaryAccuracy(), [1, 1, 0, 0], BIN_P), 0.75)    # broadcasting


def test_binary_weighted():
    close(_result(metrics.BinaryAccuracy(), BIN_T, BIN_P, [1, 0, 0, 1]), 0.5)


def test_binary_weighted_rank_1():
    close(_result(metrics.BinaryAccuracy(), [1, 1, 0, 0], [0.98, 1, 0, 0.6], [1, 0, 0, 1]),
          0.5)


def test_binary_weighted_nd_weights():
    close(_result(metrics.BinaryAccuracy(), [[1, 1], [0, 0]], [[0.98, 1], [0, 0.6]],
                  [[1, 0], [0, 1]]), 0.5)


def test_binary_weighted_nd_broadcast_weights():
    close(_result(metrics.BinaryAccuracy(), [[1, 1], [0, 0]], [[0.98, 1], [0, 0.6]],
                  [[1, 0]]), 1.0)


def test_binary_threshold():
    y_true, y_pred = [[1], [1], [0], [0]], [[0.98], [0.5], [0.1], [0.2]]
    close(_result(metrics.BinaryAccuracy(threshold=0.3), y_true, y_pred), 1.0, 1e-6)
    close(_result(metrics.BinaryAccuracy(threshold=0.9), y_true, y_pred), 0.75, 1e-6)


# -------------------------------------------------------- CategoricalAccuracyTest
CAT_T, CAT_P = [[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]]


def test_categorical_unweighted():
    close(_result(metrics.CategoricalAccuracy(), CAT_T, CAT_P), 0.5)


def test_categorical_weighted():
    close(_result(metrics.CategoricalAccuracy(), CAT_T, CAT_P, [0.7, 0.3]), 0.3)


# -------------------------------------------------- SparseCategoricalAccuracyTest
SP_T, SP_P = [[2], [1]], [[0.1, 0.6, 0.3], [0.05, 0.95, 0]]


def test_sparse_unweighted():
    close(_result(metrics.SparseCategoricalAccuracy(), SP_T, SP_P), 0.5)


def test_sparse_weighted():
    close(_result(metrics.SparseCategoricalAccuracy(), SP_T, SP_P, [0.7, 0.3]), 0.3)


@pytest.mark.parametrize("y_true, y_pred", [
    ([[0], [1], [2]], [[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]]),  # squeeze
    (np.array([0, 1], np.int64), np.array([[0.9, 0.1], [0.1, 0.9]], np.float32)),   # cast
    ([[0], [1], [2]], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),       # shape
    (np.array([0, 1, 2], np.int32),
     np.array([[0.9, 0.1, 0.0], [0.0, 0.9, 0.1], [0.1, 0.0, 0.9]], np.float64)),  # dtypes
], ids=["squeeze_y_true", "cast_y_pred_dtype", "squeeze_y_true_shape",
        "cast_y_pred_to_match_y_true_dtype"])
def test_sparse_all_correct(y_true, y_pred):
    close(_result(metrics.SparseCategoricalAccuracy(), y_true, y_pred), 1.0, 1e-4)


def test_sparse_reshape_matches():
    y_true = np.array([[0], [0]], dtype=np.int64)
    y_pred = np.array([[[0.9, 0.1, 0.0], [0.8, 0.15, 0.05]]], dtype=np.float32)
    close(_result(metrics.SparseCategoricalAccuracy(), y_true, y_pred), 1.0, 1e-6)


# ------------------------------------------------------- TopKCategoricalAccuracyTest
@pytest.mark.parametrize("cls, name", [
    (metrics.TopKCategoricalAccuracy, "top_k_categorical_accuracy"),
    (metrics.SparseTopKCategoricalAccuracy, "sparse_top_k_categorical_accuracy")])
def test_top_k_config(cls, name):
    # TopKCategoricalAccuracyTest / SparseTopKCategoricalAccuracyTest.test_config
    obj = cls(k=1, name=name, dtype="float32")
    assert obj.name == name and obj.dtype == "float32" and (obj.total, obj.count) == (0.0, 0)
    cfg = obj.get_config()
    assert cfg["name"] == name and cfg["dtype"] == "float32" and cfg["k"] == 1
    again = cls.from_config(cfg)
    assert again.name == name and again.dtype == "float32" and again.k == 1
    if cls is metrics.SparseTopKCategoricalAccuracy:
        assert again.from_sorted_ids is False


def test_sparse_top_k_config_from_sorted_ids():
    # SparseTopKCategoricalAccuracyTest.test_config_from_sorted_ids
    obj = metrics.SparseTopKCategoricalAccuracy(k=1, from_sorted_ids=True)
    assert obj.get_config()["from_sorted_ids"] is True
    assert metrics.SparseTopKCategoricalAccuracy.from_config(obj.get_config()).from_sorted_ids


TOPK_P = [[0.1, 0.9, 0.8], [0.05, 0.95, 0]]


@pytest.mark.parametrize("weights, expected", [(None, 0.5), ([0.7, 0.3], 0.3)],
                         ids=["unweighted", "weighted"])
def test_top_k(weights, expected):
    # TopKCategoricalAccuracyTest.test_unweighted / test_weighted
    close(_result(metrics.TopKCategoricalAccuracy(k=1), [[0, 0, 1], [0, 1, 0]], TOPK_P,
                  weights), expected)
    # SparseTopKCategoricalAccuracyTest.test_unweighted / test_weighted
    close(_result(metrics.SparseTopKCategoricalAccuracy(k=1), [2, 1], TOPK_P, weights),
          expected)
    # SparseTopKCategoricalAccuracyTest.test_from_sorted_ids_unweighted / _weighted
    close(_result(metrics.SparseTopKCategoricalAccuracy(k=1, from_sorted_ids=True), [2, 1],
                  [[1, 0, 3], [1, 2, 3]], weights), expected)
