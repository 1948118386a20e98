"""Keras 3's ``keras/src/metrics/confusion_metrics_test.py``, ported for the confusion
metrics dl provides (its classes PrecisionTest and RecallTest): the same inputs and
expected values, run on dl (our code, Keras's facts).  Each test names the Keras test
(Class.method) it comes from.

How Keras's calls map onto dl's:
- Keras's ``metric(y_true, y_pred)`` updates the metric's state and returns its result;
  dl's ``__call__`` is a one-off value that leaves the state alone.  A single call on a
  fresh metric is dl's ``__call__`` (the same value); the cases that read the state
  afterwards (``p_obj.true_positives``) or call twice to accumulate
  (``test_weighted_top_k``) use ``update_state`` + ``result()``;
- Keras's variables ``true_positives`` / ``false_positives`` / ``false_negatives`` are
  ``metric.state["tp"]`` / ``["fp"]`` / ``["fn"]`` (one entry per threshold);
- ``test_unweighted_all_incorrect`` draws its 0/1 labels with an unseeded
  ``np.random.randint``; the expected 0 holds for any draw, so a seeded NumPy generator
  draws them here.

Deliberately different (asserted as dl's behaviour):
- dl's state is None until the first update and then holds all four counts (tp, fp,
  fn, tn); Keras makes its two variables (``assertLen(p_obj.variables, 2)``) at
  construction;
- error messages are dl's own; the exception types are Keras's (the class_id case
  matches "y_pred", which both wordings hold).

Not ported: FalsePositivesTest, FalseNegativesTest, TrueNegativesTest, TruePositiveTest
(6 tests each), SensitivityAtSpecificityTest (9), SpecificityAtSensitivityTest (8),
PrecisionAtRecallTest (8), RecallAtPrecisionTest (10), AUCTest (21) and MultiAUCTest
(16): dl has no such metrics.
"""
import numpy as np
import pytest

from dl import metrics


def almost(actual, desired, decimal=3):
    # Keras's TestCase.assertAlmostEqual
    np.testing.assert_almost_equal(actual, desired, decimal=decimal)


def close(actual, desired, atol=1e-6, rtol=1e-6):
    # Keras's TestCase.assertAllClose
    np.testing.assert_allclose(actual, desired, atol=atol, rtol=rtol)


TOP_K_DEFAULT_THRESHOLD = ("dl: top_k without thresholds keeps the 0.5 threshold; Keras's "
                           "default is then -inf (each of the top k counts as positive)")
TOP_K_TIES = ("dl: top_k keeps every prediction tied with the k-th largest; Keras's "
              "ops.top_k keeps exactly k")
CLASS_ID_1D = ("dl: class_id with 1-D y_pred indexes the one sample's predictions; Keras "
               "raises ValueError (y_pred must be (num_samples, num_classes))")

CLASSES = [(metrics.Precision, "my_precision", "fp"), (metrics.Recall, "my_recall", "fn")]


# -------------------------------------------------------------- both classes
@pytest.mark.parametrize("cls, name, count", CLASSES, ids=["precision", "recall"])
def test_config(cls, name, count):
    # PrecisionTest.test_config, RecallTest.test_config
    obj = cls(name=name, thresholds=[0.4, 0.9], top_k=15, class_id=12)
    assert obj.name == name
    assert obj.thresholds == [0.4, 0.9] and obj.top_k == 15 and obj.class_id == 12
    obj2 = cls.from_config(obj.get_config())
    assert obj2.name == name
    assert obj2.thresholds == [0.4, 0.9] and obj2.top_k == 15 and obj2.class_id == 12


@pytest.mark.parametrize("cls, name, count", CLASSES, ids=["precision", "recall"])
def test_config_variables(cls, name, count):     # deliberately different: dl's state
    # PrecisionTest.test_config / RecallTest.test_config: Keras's two variables
    # (true_positives and false_positives / false_negatives) exist from construction
    obj = cls(name=name, thresholds=[0.4, 0.9])
    assert obj.state is None
    obj.update_state(np.array([[0, 1]]), np.array([[0.5, 0.95]]))
    assert {"tp", count} <= set(obj.state)
    assert obj.state["tp"].shape == obj.state[count].shape == (2,)
    assert cls.from_config(obj.get_config()).state is None


@pytest.mark.parametrize("cls", [metrics.Precision, metrics.Recall],
                         ids=["precision", "recall"])
def test_unweighted_all_incorrect(cls):
    # PrecisionTest.test_unweighted_all_incorrect, RecallTest.test_unweighted_all_incorrect
    inputs = np.random.default_rng(0).integers(0, 2, size=(100, 1))
    y_pred = np.array(inputs)
    y_true = np.array(1 - inputs)
    almost(cls(thresholds=[0.5])(y_true, y_pred), 0)


@pytest.mark.parametrize("cls", [metrics.Precision, metrics.Recall],
                         ids=["precision", "recall"])
def test_div_by_zero(cls):
    # PrecisionTest.test_div_by_zero, RecallTest.test_div_by_zero
    result = cls()(np.array([0, 0, 0, 0]), np.array([0, 0, 0, 0]))
    assert result == 0


@pytest.mark.parametrize("cls", [metrics.Precision, metrics.Recall],
                         ids=["precision", "recall"])
def test_unweighted_class_id_should_throw_error_1d(cls):
    # PrecisionTest / RecallTest.test_unweighted_class_id_should_throw_error_1d
    obj = cls(class_id=2)
    y_pred = np.array([0.2, 0.1, 0.6, 0, 0.2])
    y_true = np.array([0, 1, 1, 0, 0])
    with pytest.raises(ValueError, match="y_pred"):
        obj(y_true, y_pred)


MULTICLASS_PRED = np.array([[0.1, 0.2, 0.7], [0.5, 0.3, 0.2], [0.2, 0.6, 0.2],
                            [0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
MULTICLASS_TRUE = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0],
                            [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


# ------------------------------------------------------------------ PrecisionTest
def test_precision_unweighted():                    # PrecisionTest.test_unweighted
    result = metrics.Precision()(np.array([0, 1, 1, 0]), np.array([1, 0, 1, 0]))
    almost(result, 0.5)


def test_precision_weighted():                      # PrecisionTest.test_weighted
    y_pred = np.array([[1, 0, 1, 0], [1, 0, 1, 0]])
    y_true = np.array([[0, 1, 1, 0], [1, 0, 0, 1]])
    result = metrics.Precision()(y_true, y_pred,
                                 sample_weight=np.array([[1, 2, 3, 4], [4, 3, 2, 1]]))
    weighted_tp = 3.0 + 4.0
    weighted_positives = (1.0 + 3.0) + (4.0 + 2.0)
    almost(result, weighted_tp / weighted_positives)


def test_precision_unweighted_with_threshold():     # PrecisionTest.test_unweighted_with_threshold
    p_obj = metrics.Precision(thresholds=[0.5, 0.7])
    result = p_obj(np.array([0, 1, 1, 0]), np.array([1, 0, 0.6, 0]))
    almost(result, [0.5, 0.0], 0)


def test_precision_weighted_with_threshold():       # PrecisionTest.test_weighted_with_threshold
    p_obj = metrics.Precision(thresholds=[0.5, 1.0])
    y_true = np.array([[0, 1], [1, 0]])
    y_pred = np.array([[1, 0], [0.6, 0]], dtype="float32")
    weights = np.array([[4, 0], [3, 1]], dtype="float32")
    result = p_obj(y_true, y_pred, sample_weight=weights)
    weighted_tp = 0 + 3.0
    weighted_positives = (0 + 3.0) + (4.0 + 0.0)
    almost(result, [weighted_tp / weighted_positives, 0])


def test_precision_multiple_updates():              # PrecisionTest.test_multiple_updates
    p_obj = metrics.Precision(thresholds=[0.5, 1.0])
    y_true = np.array([[0, 1], [1, 0]])
    y_pred = np.array([[1, 0], [0.6, 0]], dtype="float32")
    weights = np.array([[4, 0], [3, 1]], dtype="float32")
    for _ in range(2):
        p_obj.update_state(y_true, y_pred, sample_weight=weights)
    weighted_tp = (0 + 3.0) + (0 + 3.0)
    weighted_positives = ((0 + 3.0) + (4.0 + 0.0)) + ((0 + 3.0) + (4.0 + 0.0))
    almost(p_obj.result(), [weighted_tp / weighted_positives, 0])


def test_precision_unweighted_top_k():              # PrecisionTest.test_unweighted_top_k
    p_obj = metrics.Precision(top_k=3)
    result = p_obj(np.array([0, 1, 1, 0, 0]), np.array([0.2, 0.1, 0.5, 0, 0.2]))
    almost(result, 1.0 / 3)


def test_precision_weighted_top_k():                # PrecisionTest.test_weighted_top_k
    p_obj = metrics.Precision(top_k=3)
    y_pred1 = np.array([[0.2, 0.1, 0.4, 0, 0.2]])
    y_true1 = np.array([[0, 1, 1, 0, 1]])
    p_obj.update_state(y_true1, y_pred1, sample_weight=np.array([[1, 4, 2, 3, 5]]))
    y_pred2 = np.array([0.2, 0.6, 0.4, 0.2, 0.2])
    y_true2 = np.array([1, 0, 1, 1, 1])
    p_obj.update_state(y_true2, y_pred2, sample_weight=np.array(3))
    tp = (2 + 5) + (3 + 3)
    predicted_positives = (1 + 2 + 5) + (3 + 3 + 3)
    almost(p_obj.result(), tp / predicted_positives)


def test_precision_unweighted_class_id_multiclass():
    # PrecisionTest.test_unweighted_class_id_multiclass
    p_obj = metrics.Precision(class_id=1)
    p_obj.update_state(MULTICLASS_TRUE, MULTICLASS_PRED)
    almost(p_obj.result(), 1.0)
    almost(p_obj.state["tp"], 1.0)
    almost(p_obj.state["fp"], 0.0)


def test_precision_unweighted_top_k_and_threshold():
    # PrecisionTest.test_unweighted_top_k_and_threshold
    p_obj = metrics.Precision(thresholds=0.7, top_k=2)
    p_obj.update_state(np.array([0, 1, 1, 0, 1]), np.array([0.2, 0.8, 0.6, 0, 0.2]))
    almost(p_obj.result(), 1)
    almost(p_obj.state["tp"], 1)
    almost(p_obj.state["fp"], 0)


# --------------------------------------------------------------------- RecallTest
def test_recall_unweighted():                       # RecallTest.test_unweighted
    almost(metrics.Recall()(np.array([0, 1, 1, 0]), np.array([1, 0, 1, 0])), 0.5)


def test_recall_weighted():                         # RecallTest.test_weighted
    y_pred = np.array([[1, 0, 1, 0], [0, 1, 0, 1]])
    y_true = np.array([[0, 1, 1, 0], [1, 0, 0, 1]])
    result = metrics.Recall()(y_true, y_pred,
                              sample_weight=np.array([[1, 2, 3, 4], [4, 3, 2, 1]]))
    weighted_tp = 3.0 + 1.0
    weighted_t = (2.0 + 3.0) + (4.0 + 1.0)
    almost(result, weighted_tp / weighted_t)


def test_recall_unweighted_with_threshold():        # RecallTest.test_unweighted_with_threshold
    r_obj = metrics.Recall(thresholds=[0.5, 0.7])
    close(r_obj(np.array([0, 1, 1, 0]), np.array([1, 0, 0.6, 0])), [0.5, 0.0], 0)


def test_recall_weighted_with_threshold():          # RecallTest.test_weighted_with_threshold
    r_obj = metrics.Recall(thresholds=[0.5, 1.0])
    y_true = np.array([[0, 1], [1, 0]])
    y_pred = np.array([[1, 0], [0.6, 0]], dtype="float32")
    weights = np.array([[1, 4], [3, 2]], dtype="float32")
    result = r_obj(y_true, y_pred, sample_weight=weights)
    weighted_tp = 0 + 3.0
    weighted_positives = (0 + 3.0) + (4.0 + 0.0)
    close(result, [weighted_tp / weighted_positives, 0], 1e-3)


def test_recall_multiple_updates():                 # RecallTest.test_multiple_updates
    r_obj = metrics.Recall(thresholds=[0.5, 1.0])
    y_true = np.array([[0, 1], [1, 0]])
    y_pred = np.array([[1, 0], [0.6, 0]], dtype="float32")
    weights = np.array([[1, 4], [3, 2]], dtype="float32")
    for _ in range(2):
        r_obj.update_state(y_true, y_pred, sample_weight=weights)
    weighted_tp = (0 + 3.0) + (0 + 3.0)
    weighted_positives = ((0 + 3.0) + (4.0 + 0.0)) + ((0 + 3.0) + (4.0 + 0.0))
    close(r_obj.result(), [weighted_tp / weighted_positives, 0], 1e-3)


def test_recall_unweighted_top_k():                 # RecallTest.test_unweighted_top_k
    r_obj = metrics.Recall(top_k=3)
    almost(r_obj(np.array([0, 1, 1, 0, 0]), np.array([0.2, 0.1, 0.5, 0, 0.2])), 0.5)


def test_recall_weighted_top_k():                   # RecallTest.test_weighted_top_k
    r_obj = metrics.Recall(top_k=3)
    y_pred1 = np.array([[0.2, 0.1, 0.4, 0, 0.2]])
    y_true1 = np.array([[0, 1, 1, 0, 1]])
    r_obj.update_state(y_true1, y_pred1, sample_weight=np.array([[1, 4, 2, 3, 5]]))
    y_pred2 = np.array([0.2, 0.6, 0.4, 0.2, 0.2])
    y_true2 = np.array([1, 0, 1, 1, 1])
    r_obj.update_state(y_true2, y_pred2, sample_weight=np.array(3))
    tp = (2 + 5) + (3 + 3)
    positives = (4 + 2 + 5) + (3 + 3 + 3 + 3)
    almost(r_obj.result(), tp / positives)


def test_recall_unweighted_class_id_multiclass():
    # RecallTest.test_unweighted_class_id_multiclass
    r_obj = metrics.Recall(class_id=1)
    r_obj.update_state(MULTICLASS_TRUE, MULTICLASS_PRED)
    almost(r_obj.result(), 1.0)
    almost(r_obj.state["tp"], 1.0)
    almost(r_obj.state["fn"], 0.0)


def test_recall_unweighted_top_k_and_threshold():
    # RecallTest.test_unweighted_top_k_and_threshold
    r_obj = metrics.Recall(thresholds=0.7, top_k=2)
    r_obj.update_state(np.array([1, 1, 1, 0, 1]), np.array([0.2, 0.8, 0.6, 0, 0.2]))
    almost(r_obj.result(), 0.25)
    almost(r_obj.state["tp"], 1)
    almost(r_obj.state["fn"], 3)
