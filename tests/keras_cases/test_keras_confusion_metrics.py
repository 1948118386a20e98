"""Keras 3's ``keras/src/metrics/confusion_metrics_test.py``, ported for the confusion
metrics dl provides (its classes PrecisionTest, RecallTest, AUCTest and MultiAUCTest):
the same inputs and
expected values, run on dl (our code, Keras's facts).  Each test names the Keras test
(Class.method) it comes from.

How Keras's calls map onto dl's:
- Keras's ``metric(y_true, y_pred)`` updates the metric's state and returns its result;
  dl's ``__call__`` is a one-off value that leaves the state alone.  A single call on a
  fresh metric is dl's ``__call__`` (the same value); the cases that read the state
  afterwards (``p_obj.true_positives``) or call twice to accumulate
  (``test_weighted_top_k``) use ``update_state`` + ``result()``;
- Keras's variables ``true_positives`` / ``false_positives`` / ``false_negatives`` are
  ``metric.state["tp"]`` / ``["fp"]`` / ``["fn"]`` (one entry per threshold); AUC also
  has them as attributes, as Keras;
- ``test_unweighted_all_incorrect`` draws its 0/1 labels with an unseeded
  ``np.random.randint``; the expected 0 holds for any draw, so a seeded NumPy generator
  draws them here.

Deliberately different (asserted as dl's behaviour):
- dl's state is None until the first update and then holds all four counts (tp, fp,
  fn, tn); Keras makes its two variables (``assertLen(p_obj.variables, 2)``) at
  construction;
- error messages are dl's own; the exception types are Keras's (the class_id case
  matches "y_pred", which both wordings hold).

- AUCTest.test_config: Keras's ``curve`` and ``summation_method`` attributes are enums
  (``AUCCurve.PR``), dl's are their values ("PR", "majoring"), which is what both
  configs hold; ``auc_obj._dtype`` is dl's ``dtype``.

Not ported: FalsePositivesTest, FalseNegativesTest, TrueNegativesTest, TruePositiveTest
(6 tests each), SensitivityAtSpecificityTest (9), SpecificityAtSensitivityTest (8),
PrecisionAtRecallTest (8), RecallAtPrecisionTest (10): dl has no such metrics.
MultiAUCTest.test_keras_model_compiles builds a functional model (issue 13); its
Sequential equivalent is here.
"""
import json

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


# ===================================================================== AUCTest
AUC_PRED = np.array([0, 0.5, 0.3, 0.9], dtype="float32")
AUC_PRED_ML = np.array([[0.0, 0.4], [0.5, 0.7], [0.3, 0.2], [0.9, 0.3]], dtype="float32")
AUC_LOGITS = -np.log(1.0 / (AUC_PRED + 1e-12) - 1.0)
AUC_TRUE = np.array([0, 0, 1, 1])
AUC_TRUE_ML = np.array([[0, 0], [1, 1], [1, 1], [1, 0]])
AUC_W = [1, 2, 3, 4]


def test_auc_config():
    """AUCTest.test_config."""
    auc = metrics.AUC(num_thresholds=100, curve="PR", summation_method="majoring",
                      name="auc_1", dtype="float64", multi_label=True, num_labels=2,
                      from_logits=True)
    auc.update_state(AUC_TRUE_ML, AUC_PRED_ML)
    assert auc.name == "auc_1" and auc.dtype == "float64"
    assert len(auc.state) == 4
    assert auc.num_thresholds == 100 and auc.curve == "PR"
    assert auc.summation_method == "majoring"
    assert auc.multi_label and auc.num_labels == 2 and auc._from_logits
    old = auc.get_config()
    assert "thresholds" not in old
    assert old == json.loads(json.dumps(old))
    auc2 = metrics.AUC.from_config(auc.get_config())
    auc2.update_state(AUC_TRUE_ML, AUC_PRED_ML)
    assert auc2.name == "auc_1" and len(auc2.state) == 4 and auc2.num_thresholds == 100
    assert auc2.curve == "PR" and auc2.summation_method == "majoring"
    assert auc2.multi_label and auc2.num_labels == 2 and auc2._from_logits
    assert auc2.get_config() == old
    np.testing.assert_allclose(auc.thresholds, auc2.thresholds)


def test_auc_config_manual_thresholds():
    """AUCTest.test_config_manual_thresholds."""
    auc = metrics.AUC(num_thresholds=None, curve="PR", summation_method="majoring",
                      name="auc_1", thresholds=[0.3, 0.5])
    auc.update_state(AUC_TRUE, AUC_PRED)
    assert auc.name == "auc_1" and len(auc.state) == 4 and auc.num_thresholds == 4
    np.testing.assert_allclose(auc.thresholds, [0.0, 0.3, 0.5, 1.0], atol=1e-6)
    assert auc.curve == "PR" and auc.summation_method == "majoring"
    old = auc.get_config()
    assert old == json.loads(json.dumps(old))
    auc2 = metrics.AUC.from_config(auc.get_config())
    auc2.update_state(AUC_TRUE, AUC_PRED)
    assert auc2.name == "auc_1" and auc2.num_thresholds == 4
    assert auc2.curve == "PR" and auc2.summation_method == "majoring"
    assert auc2.get_config() == old
    np.testing.assert_allclose(auc.thresholds, auc2.thresholds)


def test_auc_unweighted_all_correct():
    """AUCTest.test_unweighted_all_correct."""
    assert metrics.AUC()(AUC_TRUE, AUC_TRUE) == 1


@pytest.mark.parametrize("kw, pred", [({}, AUC_PRED), ({"from_logits": True}, AUC_LOGITS)],
                         ids=["probabilities", "from_logits"])
def test_auc_unweighted(kw, pred):
    """AUCTest.test_unweighted, test_unweighted_from_logits."""
    np.testing.assert_allclose(metrics.AUC(num_thresholds=3, **kw)(AUC_TRUE, pred),
                               0.75 * 1 + 0.25 * 0, rtol=1e-3)


def test_auc_manual_thresholds():
    """AUCTest.test_manual_thresholds."""
    auc = metrics.AUC(num_thresholds=2, thresholds=[0.5])
    assert auc.num_thresholds == 3
    np.testing.assert_allclose(auc.thresholds, [0.0, 0.5, 1.0], atol=1e-6)
    np.testing.assert_allclose(auc(AUC_TRUE, AUC_PRED), 0.75, rtol=1e-3)


# (curve, summation_method) -> Keras's expected value with sample_weight [1, 2, 3, 4]
AUC_WEIGHTED = {
    ("ROC", "interpolation"): 0.7855 * 1 + 0.2855 * 0,
    ("ROC", "majoring"): 1 * 1 + 0.571 * 0,
    ("ROC", "minoring"): 0.571 * 1 + 0 * 0,
    ("PR", "majoring"): 1 * 0.429 + 1 * 0.571,
    ("PR", "minoring"): 0.7 * 0.429 + 0 * 0.571,
    ("PR", "interpolation"): 2.416 / 7 + 4 / 7,
    ("PRGAIN", "majoring"): 1 * 1 + 0 * 1,
    ("PRGAIN", "minoring"): 1 * 0 + 0 * 1,
    ("PRGAIN", "interpolation"): 1 * 0.5 + 0 * 1,
}


@pytest.mark.parametrize("curve, method", list(AUC_WEIGHTED),
                         ids=[f"{c}-{m}" for c, m in AUC_WEIGHTED])
def test_auc_weighted(curve, method):
    """AUCTest.test_weighted_roc_interpolation ... test_weighted_prgain_interpolation."""
    auc = metrics.AUC(num_thresholds=3, curve=curve, summation_method=method)
    np.testing.assert_allclose(auc(AUC_TRUE, AUC_PRED, sample_weight=AUC_W),
                               AUC_WEIGHTED[curve, method], rtol=1e-3)


def test_auc_weighted_pr_interpolation_negative_weights():
    """AUCTest.test_weighted_pr_interpolation_negative_weights."""
    auc = metrics.AUC(num_thresholds=3, curve="PR")
    np.testing.assert_allclose(auc(AUC_TRUE, AUC_PRED, sample_weight=[-1, -2, -3, -4]),
                               0.0, atol=1e-3)


def test_auc_prgain_interpolation():
    """AUCTest.test_prgain_interpolation."""
    y_true = np.array([0, 0, 0, 1, 0, 1, 0, 1, 1, 1])
    y_pred = np.array([0.1, 0.2, 0.3, 0.3, 0.4, 0.4, 0.6, 0.6, 0.8, 0.9])
    np.testing.assert_allclose(metrics.AUC(num_thresholds=3, curve="PRGAIN")(y_true, y_pred),
                               0.666666 * 0.333333 + 0.333333 * 0.833333, rtol=1e-3)


def test_auc_invalid_num_thresholds():
    """AUCTest.test_invalid_num_thresholds."""
    for n in (-1, 1):
        with pytest.raises(ValueError, match="Argument `num_thresholds` must be an integer > 1"):
            metrics.AUC(num_thresholds=n)


def test_auc_invalid_curve():
    """AUCTest.test_invalid_curve."""
    with pytest.raises(ValueError, match='Invalid AUC curve value: "Invalid".'):
        metrics.AUC(curve="Invalid")


def test_auc_invalid_summation_method():
    """AUCTest.test_invalid_summation_method."""
    with pytest.raises(ValueError, match='Invalid AUC summation method value: "Invalid".'):
        metrics.AUC(summation_method="Invalid")


def test_auc_extra_dims():
    """AUCTest.test_extra_dims."""
    z = np.array([[[-10.0, 10.0, -10.0], [10.0, -10.0, 10.0]],
                  [[-12.0, 12.0, -12.0], [12.0, -12.0, 12.0]]], dtype=np.float32)
    probabilities = 1 / (1 + np.exp(z))               # scipy.special.expit(-z)
    labels = np.array([[[1, 0, 0], [1, 0, 0]], [[0, 1, 1], [0, 1, 1]]], dtype=np.int64)
    assert metrics.AUC()(labels, probabilities) == 0.5


# ================================================================ MultiAUCTest
M_PRED = np.array([[0, 0.5, 0.3, 0.9], [0.1, 0.2, 0.3, 0.4]], dtype="float32").T
M_LOGITS = -np.log(1.0 / (M_PRED + 1e-12) - 1.0)
M_GOOD = np.array([[0, 0, 1, 1], [0, 0, 1, 1]]).T
M_BAD = np.array([[0, 0, 1, 1], [1, 1, 0, 0]]).T


@pytest.mark.parametrize("multi_label", [True, False], ids=["", "flat"])
def test_multi_auc_unweighted_all_correct(multi_label):
    """MultiAUCTest.test_unweighted_all_correct, test_unweighted_all_correct_flat."""
    assert metrics.AUC(multi_label=multi_label)(M_GOOD, M_GOOD) == 1


@pytest.mark.parametrize("pred, kw", [(M_PRED, {}), (M_LOGITS, {"from_logits": True})],
                         ids=["probabilities", "from_logits"])
def test_multi_auc_unweighted(pred, kw):
    """MultiAUCTest.test_unweighted, test_unweighted_from_logits."""
    auc = metrics.AUC(num_thresholds=5, multi_label=True, **kw)
    np.testing.assert_allclose(auc(M_GOOD, pred), (0.875 + 1.0) / 2.0, rtol=1e-3)


def test_multi_auc_sample_weight_flat():
    """MultiAUCTest.test_sample_weight_flat."""
    auc = metrics.AUC(num_thresholds=5, multi_label=False)
    np.testing.assert_allclose(auc(M_GOOD, M_PRED, sample_weight=[1, 2, 3, 4]),
                               1.0 - (0.3333 * (1.0 - 0.2857) / 2.0), rtol=1e-3)


def test_multi_auc_full_sample_weight_flat():
    """MultiAUCTest.test_full_sample_weight_flat."""
    auc = metrics.AUC(num_thresholds=5, multi_label=False)
    sw = np.arange(4 * 2).reshape(4, 2)
    np.testing.assert_allclose(auc(M_GOOD, M_PRED, sample_weight=sw),
                               1.0 - (0.3333 * (1.0 - 0.2727) / 2.0), rtol=1e-3)


def test_multi_auc_label_weights():
    """MultiAUCTest.test_label_weights."""
    auc = metrics.AUC(num_thresholds=5, multi_label=True, label_weights=[0.75, 0.25])
    np.testing.assert_allclose(auc(M_GOOD, M_PRED),
                               (0.875 * 0.75 + 1.0 * 0.25) / (0.75 + 0.25), rtol=1e-3)


def test_multi_auc_label_weights_flat():
    """MultiAUCTest.test_label_weights_flat."""
    auc = metrics.AUC(num_thresholds=5, multi_label=False, label_weights=[0.75, 0.25])
    np.testing.assert_allclose(auc(M_GOOD, M_PRED), 1.0 - ((1.0 - 0.375) * 0.375 / 2.0),
                               rtol=1e-2)


@pytest.mark.parametrize("pred, kw", [(M_PRED, {}), (M_LOGITS, {"from_logits": True})],
                         ids=["probabilities", "from_logits"])
def test_multi_auc_unweighted_flat(pred, kw):
    """MultiAUCTest.test_unweighted_flat, test_unweighted_flat_from_logits."""
    auc = metrics.AUC(num_thresholds=5, multi_label=False, **kw)
    np.testing.assert_allclose(auc(M_GOOD, pred), 1.0 - (3.0 / 32.0), rtol=1e-3)


def test_multi_auc_manual_thresholds():
    """MultiAUCTest.test_manual_thresholds."""
    auc = metrics.AUC(num_thresholds=2, thresholds=[0.5], multi_label=True)
    assert auc.num_thresholds == 3
    np.testing.assert_allclose(auc.thresholds, [0.0, 0.5, 1.0], atol=1e-6)
    np.testing.assert_allclose(auc(M_GOOD, M_PRED), (0.75 + 0.5) / 2.0, rtol=1e-3)


def test_multi_auc_weighted_roc_interpolation():
    """MultiAUCTest.test_weighted_roc_interpolation."""
    auc = metrics.AUC(num_thresholds=5, multi_label=True)
    np.testing.assert_allclose(auc(M_GOOD, M_PRED, sample_weight=AUC_W),
                               1.0 - 0.5 * 0.43 * 0.67, rtol=1e-1)


def test_multi_auc_pr_interpolation_unweighted():
    """MultiAUCTest.test_pr_interpolation_unweighted: Keras's two calls accumulate (its
    __call__ updates the state), so the second result is over both batches: here
    update_state twice."""
    auc = metrics.AUC(num_thresholds=5, curve="PR", multi_label=True)
    auc.update_state(M_GOOD, M_PRED)
    np.testing.assert_allclose(auc.result(), (0.91667 + 1.0) / 2.0, rtol=1e-1)
    auc.update_state(M_BAD, M_PRED)
    np.testing.assert_allclose(auc.result(), (0.91667 + 0.5) / 2.0, rtol=1e-1)


def test_multi_auc_pr_interpolation():
    """MultiAUCTest.test_pr_interpolation."""
    auc = metrics.AUC(num_thresholds=5, curve="PR", multi_label=True)
    np.testing.assert_allclose(auc(M_GOOD, M_PRED, sample_weight=AUC_W),
                               (0.939 + 1.0) / 2.0, rtol=1e-1)


def test_multi_auc_model_compiles():
    """MultiAUCTest.test_keras_model_compiles, on a Sequential model (dl has no
    functional API yet), and one fit step to show the metric in the logs."""
    import dl
    model = dl.Sequential([dl.layers.Dense(3, activation="sigmoid", input_shape=(10,))])
    model.compile(optimizer="adam", loss="binary_crossentropy",
                  metrics=[metrics.AUC(multi_label=True)])
    rng = np.random.default_rng(0)
    x, y = rng.random((8, 10)), rng.integers(0, 2, (8, 3))
    logs = model.fit(x, y, batch_size=1, epochs=1, verbose=0).history
    assert 0.0 <= logs["auc"][0] <= 1.0


def test_multi_auc_reset_state():
    """MultiAUCTest.test_reset_state."""
    auc = metrics.AUC(num_thresholds=5, multi_label=True)
    auc.update_state(M_GOOD, M_PRED)
    auc.reset_state()
    np.testing.assert_allclose(auc.true_positives, np.zeros((5, 2)))
