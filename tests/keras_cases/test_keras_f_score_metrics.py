"""Keras 3's ``keras/src/metrics/f_score_metrics_test.py`` (FBetaScoreTest, F1ScoreTest),
ported to dl's ``FBetaScore`` and ``F1Score``: the same inputs and expected values, run
on dl (our code, Keras's facts).  Each test names the Keras test (Class.method) it comes
from.

How Keras's calls map onto dl's:
- ``test_non_2d_input_shapes_raises_value_error`` calls Keras's private
  ``fbeta._build(y_true_shape, y_pred_shape)``; here ``update_state`` gets arrays of
  those shapes (dl checks the shapes there).

Deliberately different (asserted as dl's behaviour):
- error messages are dl's own (the argument first); the exception types are Keras's;
- an int ``beta`` or ``threshold`` is a real number to dl, as dl's other real-valued
  arguments are (``kernels.checks.real``; docs/keras-differences.md does not list this
  case yet): ``beta=1`` and ``threshold=1`` are accepted as 1.0, where Keras requires a
  Python float (``test_beta_integer_type_raises_value_error``,
  ``test_threshold_not_float_raises_value_error``).  A non-number beta or threshold
  (str, None) is a ValueError, as Keras's.

Not ported: ``test_undefined_output_dim_raises_value_error`` -- a ``(2, None)`` shape is
a symbolic shape; dl has no symbolic tensors (every array has its sizes).
"""
import numpy as np
import pytest

from dl import metrics


def close(actual, desired, atol=1e-6, rtol=1e-6):
    # Keras's TestCase.assertAllClose
    np.testing.assert_allclose(actual, desired, atol=atol, rtol=rtol)


def run_test(y_true, y_pred, sample_weights, average, beta, threshold, reference_result):
    # FBetaScoreTest._run_test
    fbeta = metrics.FBetaScore(average, beta, threshold, dtype="float32")
    fbeta.update_state(y_true, y_pred, sample_weights)
    close(fbeta.result(), reference_result, atol=1e-6)


AVERAGES_BETAS = [(a, b) for a in ("micro", "macro", "weighted") for b in (0.5, 1.0, 2.0)]


# ----------------------------------------------------------------- FBetaScoreTest
def test_config():                                  # FBetaScoreTest.test_config
    fbeta_obj = metrics.FBetaScore(beta=0.5, threshold=0.3, average=None, dtype="float32")
    assert fbeta_obj.beta == 0.5 and fbeta_obj.average is None
    assert fbeta_obj.threshold == 0.3 and fbeta_obj.dtype == "float32"
    fbeta_obj2 = metrics.FBetaScore.from_config(fbeta_obj.get_config())
    assert fbeta_obj2.beta == 0.5 and fbeta_obj2.average is None
    assert fbeta_obj2.threshold == 0.3 and fbeta_obj2.dtype == "float32"


@pytest.mark.parametrize("average, beta", AVERAGES_BETAS)
def test_fbeta_perfect_score(average, beta):        # FBetaScoreTest.test_fbeta_perfect_score
    y_true = [[1, 1, 1], [1, 0, 0], [1, 1, 0]]
    y_pred = [[0.7, 0.7, 0.7], [1, 0, 0], [0.9, 0.8, 0]]
    run_test(y_true, y_pred, None, average=average, beta=beta, threshold=0.66,
             reference_result=1.0)


@pytest.mark.parametrize("average, beta", AVERAGES_BETAS)
def test_fbeta_worst_score(average, beta):          # FBetaScoreTest.test_fbeta_worst_score
    y_true = [[0, 0, 0], [0, 1, 0], [0, 0, 1]]
    y_pred = [[0.7, 0.7, 0.7], [1, 0, 0], [0.9, 0.8, 0]]
    run_test(y_true, y_pred, None, average=average, beta=beta, threshold=0.66,
             reference_result=0.0)


@pytest.mark.parametrize("average, beta, result", [
    (None, 0.5, [0.71428573, 0.5, 0.833334]),
    (None, 1.0, [0.8, 0.5, 0.6666667]),
    (None, 2.0, [0.9090904, 0.5, 0.555556]),
    ("micro", 0.5, 0.6666667),
    ("micro", 1.0, 0.6666667),
    ("micro", 2.0, 0.6666667),
    ("macro", 0.5, 0.6825397),
    ("macro", 1.0, 0.6555555),
    ("macro", 2.0, 0.6548822),
    ("weighted", 0.5, 0.6825397),
    ("weighted", 1.0, 0.6555555),
    ("weighted", 2.0, 0.6548822),
])
def test_fbeta_random_score(average, beta, result):  # FBetaScoreTest.test_fbeta_random_score
    y_pred = [[0.7, 0.7, 0.7], [1, 0, 0], [0.9, 0.8, 0]]
    y_true = [[0, 0, 1], [1, 1, 0], [1, 1, 1]]
    run_test(y_true, y_pred, None, average=average, beta=beta, threshold=0.66,
             reference_result=result)


NONE_TRUE = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0], [1, 0, 0], [0, 0, 1]]
NONE_PRED = [[0.9, 0.1, 0], [0.2, 0.6, 0.2], [0, 0, 1], [0.4, 0.3, 0.3], [0, 0.9, 0.1],
             [0, 0, 1]]


@pytest.mark.parametrize("average, beta, result", [
    (None, 0.5, [0.9090904, 0.555556, 1.0]),
    (None, 1.0, [0.8, 0.6666667, 1.0]),
    (None, 2.0, [0.71428573, 0.833334, 1.0]),
    ("micro", 0.5, 0.833334),
    ("micro", 1.0, 0.833334),
    ("micro", 2.0, 0.833334),
    ("macro", 0.5, 0.821549),
    ("macro", 1.0, 0.822222),
    ("macro", 2.0, 0.849206),
    ("weighted", 0.5, 0.880471),
    ("weighted", 1.0, 0.844445),
    ("weighted", 2.0, 0.829365),
])
def test_fbeta_random_score_none(average, beta, result):
    # FBetaScoreTest.test_fbeta_random_score_none
    run_test(NONE_TRUE, NONE_PRED, None, average=average, beta=beta, threshold=None,
             reference_result=result)


W_ONES = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
W_ZEROS = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
W_HALF = [0.5, 1.0, 1.0, 1.0, 0.5, 1.0]


@pytest.mark.parametrize("average, beta, sample_weights, result", [
    (None, 0.5, W_ONES, [0.909091, 0.555556, 1.0]),
    (None, 0.5, W_ZEROS, [1.0, 0.0, 1.0]),
    (None, 0.5, W_HALF, [0.9375, 0.714286, 1.0]),
    (None, 1.0, W_ONES, [0.8, 0.666667, 1.0]),
    (None, 1.0, W_ZEROS, [1.0, 0.0, 1.0]),
    (None, 1.0, W_HALF, [0.857143, 0.8, 1.0]),
    (None, 2.0, W_ONES, [0.714286, 0.833333, 1.0]),
    (None, 2.0, W_ZEROS, [1.0, 0.0, 1.0]),
    (None, 2.0, W_HALF, [0.789474, 0.909091, 1.0]),
    ("micro", 0.5, W_ONES, 0.833333),
    ("micro", 0.5, W_ZEROS, 1.0),
    ("micro", 0.5, W_HALF, 0.9),
    ("micro", 1.0, W_ONES, 0.833333),
    ("micro", 1.0, W_ZEROS, 1.0),
    ("micro", 1.0, W_HALF, 0.9),
    ("micro", 2.0, W_ONES, 0.833333),
    ("micro", 2.0, W_ZEROS, 1.0),
    ("micro", 2.0, W_HALF, 0.9),
    ("macro", 0.5, W_ONES, 0.821549),
    ("macro", 0.5, W_ZEROS, 0.666667),
    ("macro", 0.5, W_HALF, 0.883929),
    ("macro", 1.0, W_ONES, 0.822222),
    ("macro", 1.0, W_ZEROS, 0.666667),
    ("macro", 1.0, W_HALF, 0.885714),
    ("macro", 2.0, W_ONES, 0.849206),
    ("macro", 2.0, W_ZEROS, 0.666667),
    ("macro", 2.0, W_HALF, 0.899522),
    ("weighted", 0.5, W_ONES, 0.880471),
    ("weighted", 0.5, W_ZEROS, 1.0),
    ("weighted", 0.5, W_HALF, 0.917857),
    ("weighted", 1.0, W_ONES, 0.844444),
    ("weighted", 1.0, W_ZEROS, 1.0),
    ("weighted", 1.0, W_HALF, 0.902857),
    ("weighted", 2.0, W_ONES, 0.829365),
    ("weighted", 2.0, W_ZEROS, 1.0),
    ("weighted", 2.0, W_HALF, 0.897608),
])
def test_fbeta_weighted_random_score_none(average, beta, sample_weights, result):
    # FBetaScoreTest.test_fbeta_weighted_random_score_none
    run_test(NONE_TRUE, NONE_PRED, sample_weights, average=average, beta=beta,
             threshold=None, reference_result=result)


def test_invalid_average_raises_value_error():
    # FBetaScoreTest.test_invalid_average_raises_value_error
    with pytest.raises(ValueError, match="^average: .*invalid_average"):
        metrics.FBetaScore(average="invalid_average", beta=1.0, threshold=None,
                           dtype="float32")


@pytest.mark.parametrize("beta", ["1.0", None], ids=["string", "none"])
def test_beta_type_raises_value_error(beta):
    # FBetaScoreTest.test_beta_string_type_raises_value_error,
    # FBetaScoreTest.test_beta_none_type_raises_value_error
    with pytest.raises(ValueError, match="^beta: "):
        metrics.FBetaScore(average="macro", beta=beta, threshold=None, dtype="float32")


def test_beta_integer_type_accepted():              # deliberately different: ints are reals
    # FBetaScoreTest.test_beta_integer_type_raises_value_error (Keras: ValueError)
    fbeta = metrics.FBetaScore(average="macro", beta=1, threshold=None, dtype="float32")
    assert fbeta.beta == 1.0
    fbeta.update_state(NONE_TRUE, NONE_PRED)
    close(fbeta.result(), 0.822222)                 # Keras's value for beta=1.0


@pytest.mark.parametrize("beta", [0.0, -1.0, -0.5], ids=["zero", "negative_one",
                                                         "negative_half"])
def test_beta_not_positive_raises_value_error(beta):
    # FBetaScoreTest.test_beta_zero_raises_value_error,
    # FBetaScoreTest.test_beta_negative_one_raises_value_error,
    # FBetaScoreTest.test_beta_negative_half_raises_value_error
    with pytest.raises(ValueError, match=f"^beta: .*{beta}"):
        metrics.FBetaScore(average="macro", beta=beta, threshold=None, dtype="float32")


def test_fbeta_scalar_weight():                     # FBetaScoreTest.test_fbeta_scalar_weight
    metric = metrics.FBetaScore(threshold=0.5)
    y_true = np.array([[1, 1], [1, 0]], np.int32)
    y_pred = np.array([[0.2, 0.6], [0.2, 0.6]], np.float32)
    metric.update_state(y_true, y_pred, sample_weight=0.5)
    close(metric.result(), [0.0, 0.6666665], atol=1e-5)


def test_fbeta_2d_weight():                         # FBetaScoreTest.test_fbeta_2d_weight
    metric = metrics.FBetaScore(threshold=0.5)
    y_true = np.array([[1, 1], [1, 0]], np.int32)
    y_pred = np.array([[0.2, 0.6], [0.2, 0.6]], np.float32)
    sample_weight = np.array([[0.5, 0.2], [0.3, 0.8]], np.float32)
    metric.update_state(y_true, y_pred, sample_weight=sample_weight)
    close(metric.result(), [0.0, 0.333333], atol=1e-5)


def test_threshold_integer_type_accepted():         # deliberately different: ints are reals
    # FBetaScoreTest.test_threshold_not_float_raises_value_error (Keras: ValueError)
    fbeta = metrics.FBetaScore(average="macro", beta=1.0, threshold=1, dtype="float32")
    assert fbeta.threshold == 1.0


def test_threshold_string_raises_value_error():
    # FBetaScoreTest.test_threshold_string_raises_value_error
    with pytest.raises(ValueError, match="^threshold: .*0.5"):
        metrics.FBetaScore(average="macro", beta=1.0, threshold="0.5", dtype="float32")


@pytest.mark.parametrize("threshold", [1.1, 0.0, -0.5], ids=["above_one", "zero",
                                                             "negative"])
def test_threshold_out_of_range_raises_value_error(threshold):
    # FBetaScoreTest.test_threshold_above_one_raises_value_error,
    # FBetaScoreTest.test_threshold_zero_raises_value_error,
    # FBetaScoreTest.test_threshold_negative_raises_value_error
    with pytest.raises(ValueError, match=f"^threshold: .*{threshold}"):
        metrics.FBetaScore(average="macro", beta=1.0, threshold=threshold, dtype="float32")


def test_non_2d_input_shapes_raises_value_error():
    # FBetaScoreTest.test_non_2d_input_shapes_raises_value_error (Keras: fbeta._build)
    fbeta = metrics.FBetaScore(beta=1.0, dtype="float32")
    with pytest.raises(ValueError, match=r"^y_pred: .*\(2, 3, 4\)"):
        fbeta.update_state(np.zeros((2, 3, 4)), np.zeros((2, 3, 4)))


# -------------------------------------------------------------------- F1ScoreTest
def test_f1_config():                               # F1ScoreTest.test_config
    f1_obj = metrics.F1Score(dtype="float32")
    config = f1_obj.get_config()
    assert "beta" not in config
    f1_obj = metrics.F1Score.from_config(config)
    assert f1_obj.average is None and f1_obj.dtype == "float32"


def test_f1_correctness():                          # F1ScoreTest.test_correctness
    f1 = metrics.F1Score()
    fbeta = metrics.FBetaScore(beta=1.0)
    y_true, y_pred = np.array(NONE_TRUE), np.array(NONE_PRED)
    fbeta.update_state(y_true, y_pred)
    f1.update_state(y_true, y_pred)
    close(fbeta.result(), f1.result(), atol=1e-6)
