"""NaN, infinities and alpha == 0: the rules every backend follows where the maths
leaves a choice, pinned with concrete values.

Every comparison runs for float32 and float64 and (through the ``threads`` fixture)
with 1 and 2 kernel threads, the parallel threshold lowered to 1 element so that the
threaded code paths run even on small shapes.  Tolerances come from conftest's table.
"""
import math

import numpy as np
import pytest

from kernels import reference as ref

from kernel_cases import ACT_CASES, ACT_IDS, act_kind, LOSS_CASES, LOSS_IDS, loss_inputs
from kernel_helpers import (assert_close)

# ================================================================ NaN, alpha = 0
@pytest.mark.parametrize("name, kw", ACT_CASES, ids=ACT_IDS)
def test_activation_nan_propagates_like_reference(cy, dtype, threads, name, kw):
    x = np.array([[np.nan, -1.0, 0.5, 2.0], [-3.0, 0.25, np.nan, 1.0]], dtype)
    with np.errstate(invalid="ignore"):
        expected = getattr(ref, name)(x, **kw)
        got = getattr(cy, name)(x, **kw)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    assert_close(got, expected, dtype, act_kind(name))
    dy = np.array([[1.0, np.nan, 1.0, 1.0], [1.0, 1.0, 1.0, -1.0]], dtype)
    saved = x if name in ref.ACTIVATIONS_NEEDING_INPUT else expected
    with np.errstate(invalid="ignore"):
        d_expected = getattr(ref, "backprop_" + name)(dy, saved, **kw)
        d_got = getattr(cy, "backprop_" + name)(dy, saved, **kw)
    np.testing.assert_array_equal(np.isnan(d_got), np.isnan(d_expected))
    assert_close(d_got, d_expected, dtype, act_kind(name))


@pytest.mark.parametrize("name, kw", LOSS_CASES, ids=LOSS_IDS)
def test_loss_nan_propagates_like_reference(cy, dtype, threads, rng, name, kw):
    y_true, y_pred = loss_inputs(rng, name, kw, (7, 13), dtype)
    y_pred[2, 3] = np.nan
    with np.errstate(invalid="ignore"):
        expected = getattr(ref, name)(y_true, y_pred, **kw)
        got = getattr(cy, name)(y_true, y_pred, **kw)
        e_grad = getattr(ref, "backprop_" + name)(y_true, y_pred, **kw)
        grad = getattr(cy, "backprop_" + name)(y_true, y_pred, **kw)
    assert np.isnan(got) == np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(grad), np.isnan(e_grad))
    assert_close(grad, e_grad, dtype, "reduction")


def test_amsgrad_nan_propagates_like_reference(cy, dtype):
    g = np.array([1.0, np.nan, -2.0], dtype)
    results = []
    for backend in (ref, cy):
        w, m, v, vh = (np.ones(3, dtype), np.zeros(3, dtype), np.zeros(3, dtype),
                       np.zeros(3, dtype))
        with np.errstate(invalid="ignore"):
            backend.adam_update(w, g, m, v, step=1, amsgrad=True, v_hat=vh)
        results.append((w, m, v, vh))
    for a, b in zip(*results):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        assert_close(a, b, dtype, "optimizer")


def test_gemm_alpha_zero_with_nan_in_a_agrees_with_reference(cy, dtype):
    """out = alpha * op(a) @ op(b) + beta * out: with alpha == 0 and NaN/inf in ``a`` the
    reference gives NaN (0 * NaN); the Cython GEMM skips the product (BLAS's 'alpha == 0:
    A and B are not read').  The backends must agree, whichever rule the spec picks."""
    a = np.array([[np.nan, 1.0], [np.inf, 2.0]], dtype)
    b = np.ones((2, 2), dtype)
    out_ref, out_cy = np.ones((2, 2), dtype), np.ones((2, 2), dtype)
    with np.errstate(invalid="ignore"):
        ref.gemm(a, b, out_ref, alpha=0.0, beta=2.0)
        cy.gemm(a, b, out_cy, alpha=0.0, beta=2.0)
    np.testing.assert_array_equal(out_cy, out_ref)


# ====================================================== infinities: the rules, both backends
# Each rule below was a divergence between the Cython backend and the reference found by
# tests/kernels/test_fuzz_kernels.py; the concrete values pin the rule the reference documents.

def _nonfinite(fn, *args, **kw):
    with np.errstate(all="ignore"):
        return fn(*args, **kw)


def _assert_same(got, expected):
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("approximate", [False, True], ids=["erf", "tanh"])
def test_backprop_gelu_at_infinite_x_is_the_limit(backend, dtype, threads, approximate):
    """gelu'(+inf) = 1, gelu'(-inf) = 0: not inf * phi(inf) = inf * 0 = NaN."""
    x = np.array([np.inf, -np.inf, np.nan, 0.0], dtype)
    dy = np.array([3.0, 3.0, 3.0, 3.0], dtype)
    got = _nonfinite(backend.backprop_gelu, dy, x, approximate=approximate)
    _assert_same(got, [3.0, 0.0, np.nan, 1.5])
    # an infinite dy at -inf: inf * 0
    got = _nonfinite(backend.backprop_gelu, np.array([np.inf, np.inf], dtype),
                     np.array([np.inf, -np.inf], dtype), approximate=approximate)
    _assert_same(got, [np.inf, np.nan])


def test_dense_backward_gelu_at_infinite_pre_activation(backend, dtype, threads):
    x = np.ones((1, 1), dtype)
    w = np.ones((1, 2), dtype)
    z = np.array([[np.inf, -np.inf]], dtype)
    dy = np.full((1, 2), 2.0, dtype)
    dx, dw, db = _nonfinite(backend.dense_backward, dy, x, w, np.zeros((1, 2), dtype),
                            activation="gelu", pre_activation=z)
    _assert_same(db, [2.0, 0.0])
    _assert_same(dw, [[2.0, 0.0]])
    _assert_same(dx, [[2.0]])


def test_sparse_crossentropy_of_a_row_with_an_infinite_probability_is_nan(
        backend, dtype, threads):
    """Keras normalises the whole row, p / sum(p): inf / inf = NaN in it makes the row's
    loss NaN even when the label's own probability is finite; its gradient row too."""
    labels = np.array([0, 0, 1])
    p = np.array([[0.5, np.inf], [0.2, 0.3], [np.inf, 0.5]], dtype)
    loss = _nonfinite(backend.sparse_categorical_crossentropy, labels, p)
    assert np.isnan(loss)
    grad = _nonfinite(backend.backprop_sparse_categorical_crossentropy, labels, p)
    _assert_same(grad, [[np.nan, np.nan], [-1.0, 2.0 / 3.0], [np.nan, np.nan]])
    # a -inf probability: sum(p) = -inf, -inf / -inf = NaN
    p = np.array([[0.5, -np.inf]], dtype)
    assert np.isnan(_nonfinite(backend.sparse_categorical_crossentropy, labels[:1], p))
    # a row whose sum overflows without an infinity in it is no NaN: p / sum(p) = 0,
    # clipped to 1e-7
    big = np.finfo(dtype).max * 0.75
    p = np.array([[big, big]], dtype)
    loss = _nonfinite(backend.sparse_categorical_crossentropy, labels[:1], p)
    assert loss == pytest.approx(-math.log(1e-7), rel=1e-5)
    grad = _nonfinite(backend.backprop_sparse_categorical_crossentropy, labels[:1], p)
    _assert_same(grad, [[0.0, 0.0]])


def test_sparse_crossentropy_from_logits_with_a_minus_inf_logit(backend, dtype, threads):
    """A -inf logit is a class of probability 0, not 0 * -inf = NaN in a one-hot sum;
    on the label it makes the loss inf."""
    z = np.array([[0.5, -np.inf], [0.5, -np.inf]], dtype)
    labels = np.array([0, 1])
    loss = _nonfinite(backend.sparse_categorical_crossentropy, labels[:1], z[:1],
                      from_logits=True)
    assert loss == 0
    grad = _nonfinite(backend.backprop_sparse_categorical_crossentropy, labels, z,
                      from_logits=True)
    _assert_same(grad, [[0.0, 0.0], [0.5, -0.5]])
    assert _nonfinite(backend.sparse_categorical_crossentropy, labels, z,
                      from_logits=True) == np.inf
    fused_loss, fused_grad = _nonfinite(backend.sparse_softmax_crossentropy, labels, z)
    assert fused_loss == np.inf
    _assert_same(fused_grad, grad)


def test_categorical_crossentropy_from_logits_with_infinite_targets(backend, dtype, threads):
    """-sum_j y_j log_softmax(z)_j term by term: an infinite target gives an infinite
    loss; NaN where its log-probability is 0 or infinities of both signs meet."""
    z = np.array([[0.5, 0.3]], dtype)
    cases = [([[np.inf, 0.5]], np.inf), ([[-np.inf, 0.5]], -np.inf),
             ([[np.inf, -np.inf]], np.nan)]
    for y, expected in cases:
        y = np.array(y, dtype)
        got = _nonfinite(backend.categorical_crossentropy, y, z, from_logits=True)
        fused, _ = _nonfinite(backend.softmax_crossentropy, y, z)
        _assert_same([got, fused], [expected, expected])
    # one class: log_softmax = 0, inf * 0
    y, z1 = np.array([[np.inf]], dtype), np.array([[1.0]], dtype)
    assert np.isnan(_nonfinite(backend.categorical_crossentropy, y, z1, from_logits=True))
    # the gradient (softmax(z) * sum(y) - y) / n with a -inf logit: softmax is exactly 0
    # there, and 0 * inf = NaN
    y = np.array([[np.inf, 0.3, 0.2]], dtype)
    z = np.array([[0.5, -np.inf, 0.1]], dtype)
    expected = [[np.nan, np.nan, np.inf]]
    _assert_same(_nonfinite(backend.backprop_categorical_crossentropy, y, z,
                            from_logits=True), expected)
    loss, grad = _nonfinite(backend.softmax_crossentropy, y, z)
    assert loss == np.inf
    _assert_same(grad, expected)


def _optimizer_step(backend, name, w, **kw):
    g = np.zeros_like(w)
    z = [np.zeros_like(w) for _ in range(2)]
    with np.errstate(all="ignore"):
        if name == "sgd":
            backend.sgd_update(w, g, z[0], momentum=0.9, **kw)
        elif name in ("adam", "adamw"):
            getattr(backend, name + "_update")(w, g, z[0], z[1], step=1, **kw)
        elif name == "rmsprop":
            backend.rmsprop_update(w, g, z[0], **kw)
        else:
            backend.adagrad_update(w, g, z[0], **kw)
    return w


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "rmsprop", "adagrad"])
def test_weight_decay_is_skipped_when_its_factor_is_zero_in_the_dtype(backend, dtype,
                                                                      threads, name):
    """w -= w * (weight_decay * learning_rate) is skipped when that factor, rounded to
    w's dtype, is 0: a no-op but for inf * 0 = NaN of an infinite weight."""
    w0 = np.array([np.inf, -np.inf, 1.0], dtype)
    # learning_rate = 0: skipped, the infinities stay
    w = _optimizer_step(backend, name, w0.copy(), learning_rate=0.0, weight_decay=0.1)
    _assert_same(w, w0)
    # 1e-60: 0 in float32 (skipped), not in float64 (inf - inf * 1e-60 = NaN)
    w = _optimizer_step(backend, name, w0.copy(), learning_rate=1e-30, weight_decay=1e-30)
    _assert_same(w, w0 if dtype == np.float32 else [np.nan, np.nan, 1.0])
    # 1e-40: subnormal in float32, not 0: applied (the Cython kernels' flush-to-zero
    # mode must not take it for 0)
    w = _optimizer_step(backend, name, w0.copy(), learning_rate=1e-20, weight_decay=1e-20)
    _assert_same(w, [np.nan, np.nan, 1.0])
    # a nonzero factor: applied
    w = _optimizer_step(backend, name, w0.copy(), learning_rate=0.1, weight_decay=0.5)
    assert np.isnan(w[:2]).all() and np.isfinite(w[2])


@pytest.mark.parametrize("name", ["silu", "mish"])
def test_backprop_silu_mish_at_minus_inf_is_the_limit(backend, dtype, threads, name):
    """silu'(-inf) = mish'(-inf) = 0 exactly (float32's sigmoid once stopped at the
    smallest normal, 1.18e-38), so an infinite dy there gives inf * 0 = NaN, as gelu's;
    1 at +inf."""
    x = np.array([-np.inf, -np.inf, np.inf], dtype)
    dy = np.array([1.0, np.inf, 2.0], dtype)
    got = _nonfinite(getattr(backend, "backprop_" + name), dy, x)
    np.testing.assert_array_equal(got, np.array([0.0, np.nan, 2.0], dtype))


def test_backprop_log_softmax_at_minus_inf_output(backend, dtype, threads):
    """exp(-inf) is exactly 0 in log_softmax's backprop, so an infinite sum of dy gives
    0 * inf = NaN there, as the reference's (float32's exp polynomial once stopped at the
    smallest normal: -inf; found by the thorough fuzz run)."""
    dy = np.array([[np.inf, -1.8417], [1.0, -1.8417]], dtype)
    y = np.array([[1.0957, -np.inf], [-0.5, -np.inf]], dtype)
    got = _nonfinite(backend.backprop_log_softmax, dy, y)
    assert np.isnan(got[0]).all()
    np.testing.assert_allclose(got[1], dy[1] - np.exp(y[1]) * dy[1].sum(), rtol=1e-6)


def _check_padding_times_inf(B, dtype):
    """The padding's zeros are multiplied like the image's cells (the spec's xpad * w):
    a non-finite weight over padding gives 0 * inf = NaN, in the forward and in dw."""
    x = np.ones((1, 1, 1, 1), dtype)
    w = np.array([np.inf, 1.0, 1.0], dtype).reshape(3, 1, 1, 1)   # taps 0 and 2 on padding
    for kernel in ("conv2d", "depthwise_conv2d"):
        got = _nonfinite(getattr(B, kernel + "_forward"), x, w, padding="same")
        _assert_same(np.asarray(got).ravel(), [np.nan])
        dy = np.full((1, 1, 1, 1), np.inf, dtype)
        _, dw, _ = _nonfinite(getattr(B, kernel + "_backward"), dy, x, np.ones_like(w), dy,
                              padding="same")
        _assert_same(np.asarray(dw).ravel(), [np.nan, np.inf, np.nan])
    got = _nonfinite(B.conv1d_forward, x[0], w[:2, 0], padding="causal")   # one zero before
    _assert_same(np.asarray(got).ravel(), [np.nan])


def test_convolution_padding_times_infinite_weight(backend, dtype, threads):
    _check_padding_times_inf(backend, dtype)


def test_convolution_padding_times_infinite_weight_cuda(cuda, dtype):
    _check_padding_times_inf(cuda, dtype)
