"""Every loss kernel's ``sample_weight``: Keras's weighted "sum_over_batch_size",
``sum_i w_i loss_i / n``, and the gradient rows scaled by their weights.

The expected values are built independently of the kernels' weighted code: each row's
loss and gradient row from the *unweighted* reference kernel called on that row alone,
then weighted and summed here.  Every CPU backend, both dtypes, 1 and 2 threads.
"""
import numpy as np
import pytest

from kernels import reference as ref

from kernel_cases import LOSS_CASES, LOSS_IDS, loss_inputs, run_threads
from kernel_helpers import assert_close

SHAPES = [(1,), (13,), (7, 13), (300, 70)]
ROW_CASES = [("sparse_categorical_crossentropy", {}),
             ("sparse_categorical_crossentropy", {"from_logits": True})]


def _weights(rng, n, dtype):
    w = rng.uniform(0, 2, size=n)
    w[::4] = 0.0                       # zero weights drop a sample
    if n > 2:
        w[1] = 3.5
    return w.astype(dtype)


def _by_rows(name, kw, y_true, y_pred, w):
    """(sum_i w_i loss_i / n, the gradient with row i times w_i) from the unweighted
    reference on one row at a time (a 1-D array: each element is a sample)."""
    n = y_pred.shape[0]
    loss, grad = 0.0, np.empty(y_pred.shape, np.float64)
    for i in range(n):
        t, p = y_true[i:i + 1], y_pred[i:i + 1]
        loss += float(w[i]) * float(getattr(ref, name)(t, p, **kw))
        # the one-row gradient carries 1/(row size); the batch's carries 1/(n * row size)
        grad[i] = getattr(ref, "backprop_" + name)(t, p, **kw)[0] * float(w[i]) / n
    return loss / n, grad


def _cases():
    for (name, kw), lid in zip(LOSS_CASES, LOSS_IDS):
        for shape in SHAPES:
            if (name.startswith("categorical") or name in ref.ROW_LOSSES) and len(shape) == 1:
                continue
            yield pytest.param(name, kw, shape, id=f"{lid}-{shape}")


@pytest.mark.parametrize("name, kw, shape", list(_cases()))
def test_weighted_loss_and_gradient(backend, dtype, threads, rng, name, kw, shape):
    y_true, y_pred = loss_inputs(rng, name, kw, shape, dtype)
    w = _weights(rng, shape[0], dtype)
    expected, e_grad = _by_rows(name, kw, y_true, y_pred, w)
    value = getattr(backend, name)(y_true, y_pred, sample_weight=w, **kw)
    assert type(value) is dtype.type
    assert_close(value, expected, dtype, "reduction")
    grad = getattr(backend, "backprop_" + name)(y_true, y_pred, sample_weight=w, **kw)
    assert_close(grad, e_grad, dtype, "reduction")


def _labels(rng, n, c):
    return rng.integers(0, c, size=n)


@pytest.mark.parametrize("name, kw", ROW_CASES, ids=["probs", "logits"])
@pytest.mark.parametrize("shape", [(7, 13), (300, 70)])
def test_weighted_sparse_crossentropy(backend, dtype, threads, rng, name, kw, shape):
    labels = _labels(rng, *shape)
    p = (rng.standard_normal(shape) * 3 if kw else rng.uniform(0.05, 1, shape)).astype(dtype)
    w = _weights(rng, shape[0], dtype)
    expected, e_grad = _by_rows(name, kw, labels, p, w)
    assert_close(getattr(backend, name)(labels, p, sample_weight=w, **kw), expected,
                 dtype, "reduction")
    assert_close(getattr(backend, "backprop_" + name)(labels, p, sample_weight=w, **kw),
                 e_grad, dtype, "reduction")


@pytest.mark.parametrize("shape", [(7, 13), (300, 70)])
def test_weighted_fused_softmax_crossentropies(backend, dtype, threads, rng, shape):
    z = (rng.standard_normal(shape) * 3).astype(dtype)
    w = _weights(rng, shape[0], dtype)
    y, _ = loss_inputs(rng, "categorical_crossentropy", {}, shape, dtype)
    expected, e_grad = _by_rows("categorical_crossentropy", {"from_logits": True}, y, z, w)
    loss, grad = backend.softmax_crossentropy(y, z, sample_weight=w)
    assert_close(loss, expected, dtype, "reduction")
    assert_close(grad, e_grad, dtype, "reduction")
    labels = _labels(rng, *shape)
    expected, e_grad = _by_rows("sparse_categorical_crossentropy", {"from_logits": True},
                                labels, z, w)
    loss, grad = backend.sparse_softmax_crossentropy(labels, z, sample_weight=w)
    assert_close(loss, expected, dtype, "reduction")
    assert_close(grad, e_grad, dtype, "reduction")


@pytest.mark.parametrize("name, kw", LOSS_CASES, ids=LOSS_IDS)
def test_unit_weights_are_the_unweighted_loss(backend, dtype, rng, name, kw):
    y_true, y_pred = loss_inputs(rng, name, kw, (9, 5), dtype)
    ones = np.ones(9, dtype)
    assert_close(getattr(backend, name)(y_true, y_pred, sample_weight=ones, **kw),
                 getattr(backend, name)(y_true, y_pred, **kw), dtype, "reduction")
    np.testing.assert_array_equal(
        getattr(backend, "backprop_" + name)(y_true, y_pred, sample_weight=ones, **kw),
        getattr(backend, "backprop_" + name)(y_true, y_pred, **kw))
    zeros = np.zeros(9, dtype)
    assert getattr(backend, name)(y_true, y_pred, sample_weight=zeros, **kw) == 0
    assert not getattr(backend, "backprop_" + name)(y_true, y_pred, sample_weight=zeros,
                                                    **kw).any()


@pytest.mark.parametrize("name, kw", LOSS_CASES + ROW_CASES,
                         ids=LOSS_IDS + ["sparse", "sparse-logits"])
def test_weighted_results_do_not_depend_on_the_thread_count(cy, dtype, rng, name, kw):
    shape = (517, 33)
    if name.startswith("sparse"):
        y_true = _labels(rng, *shape)
        y_pred = (rng.uniform(0.05, 1, shape) if not kw else rng.standard_normal(shape))
        y_pred = y_pred.astype(dtype)
    else:
        y_true, y_pred = loss_inputs(rng, name, kw, shape, dtype)
    w = _weights(rng, shape[0], dtype)
    runs = [run_threads(n, lambda: (getattr(cy, name)(y_true, y_pred, sample_weight=w, **kw),
                                    getattr(cy, "backprop_" + name)(y_true, y_pred,
                                                                    sample_weight=w, **kw)))
            for n in (1, 2)]
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_a_strided_weight_vector_is_read_as_its_values(backend, rng):
    y_true, y_pred = loss_inputs(rng, "mean_squared_error", {}, (8, 3), np.float64)
    w = np.arange(16, dtype=np.float64)[::2]
    assert backend.mean_squared_error(y_true, y_pred, sample_weight=w) == \
        backend.mean_squared_error(y_true, y_pred, sample_weight=w.copy())


@pytest.mark.parametrize("bad, exc, start", [
    (np.ones(5, np.float64), ValueError, "sample_weight: expected 4 weights"),
    (np.ones((4, 1), np.float64), ValueError, "sample_weight:"),
    (np.ones(4, np.float32), TypeError, "sample_weight:"),
    ([1.0, 1.0, 1.0, 1.0], TypeError, "sample_weight: expected a numpy.ndarray"),
    (np.ones(4, np.int64), TypeError, "sample_weight:"),
])
def test_bad_weights_are_named(backend, bad, exc, start):
    y = np.zeros((4, 3))
    for call in (lambda: backend.mean_squared_error(y, y, sample_weight=bad),
                 lambda: backend.backprop_categorical_crossentropy(y + 1, y + 1,
                                                                   sample_weight=bad),
                 lambda: backend.sparse_softmax_crossentropy(np.zeros(4, np.int64), y,
                                                             sample_weight=bad)):
        with pytest.raises(exc) as info:
            call()
        assert str(info.value).startswith(start), str(info.value)


def test_weights_sharing_memory_with_out_are_refused(backend):
    y = np.zeros((4, 1))
    out = np.zeros((4, 1))
    with pytest.raises(ValueError, match="^out: must not share memory with sample_weight"):
        backend.backprop_mean_squared_error(y, y, out, sample_weight=out[:, 0])
