"""Losses and their gradients (elementwise, categorical, sparse labels, the fused
softmax cross-entropies): the cython kernels against the reference and formulas.

Every comparison runs for float32 and float64 and (through the ``threads`` fixture)
with 1 and 2 kernel threads, the parallel threshold lowered to 1 element so that the
threaded code paths run even on small shapes.  Tolerances come from conftest's table.
"""
import math

import numpy as np
import pytest

from kernels import reference as ref

from kernel_cases import LOSS_CASES, LOSS_IDS, loss_inputs
from kernel_helpers import (Guarded, assert_close, check_out,
                            no_fp_warnings, normal, with_layout)

# ============================================================================ losses
ELEMENTWISE_LOSSES = ["mean_squared_error", "mean_absolute_error", "huber",
                      "binary_crossentropy", "hinge", "squared_hinge", "poisson", "log_cosh",
                      "mean_absolute_percentage_error", "mean_squared_logarithmic_error",
                      "kl_divergence"]
LOSS_SHAPES = [(1,), (13,), (1, 1), (7, 13), (300, 70)]


def _loss_shapes(name):
    return LOSS_SHAPES if name in ELEMENTWISE_LOSSES else [s for s in LOSS_SHAPES if len(s) == 2]


LOSS_PARAMS = [pytest.param(name, kw, shape, id=f"{lid}-{shape}")
               for (name, kw), lid in zip(LOSS_CASES, LOSS_IDS) for shape in _loss_shapes(name)]


@pytest.mark.parametrize("name, kw, shape", LOSS_PARAMS)
def test_loss_and_gradient(cy, dtype, threads, rng, name, kw, shape):
    y_true, y_pred = loss_inputs(rng, name, kw, shape, dtype)
    t0, p0 = y_true.copy(), y_pred.copy()
    value = getattr(cy, name)(y_true, y_pred, **kw)
    expected = getattr(ref, name)(y_true, y_pred, **kw)
    assert type(value) is dtype.type and type(expected) is dtype.type
    assert_close(value, expected, dtype, "reduction")
    grad = getattr(cy, "backprop_" + name)(y_true, y_pred, **kw)
    e_grad = getattr(ref, "backprop_" + name)(y_true, y_pred, **kw)
    assert_close(grad, e_grad, dtype, "reduction")
    np.testing.assert_array_equal(y_true, t0)
    np.testing.assert_array_equal(y_pred, p0)


@pytest.mark.parametrize("layout", ["F", "cols3", "negboth"])
@pytest.mark.parametrize("name, kw", LOSS_CASES, ids=LOSS_IDS)
def test_loss_strided_inputs_and_out(cy, dtype, two_threads, rng, name, kw, layout):
    y_true, y_pred = loss_inputs(rng, name, kw, (7, 13), dtype)
    expected = getattr(ref, name)(y_true, y_pred, **kw)
    e_grad = getattr(ref, "backprop_" + name)(y_true, y_pred, **kw)
    t, p = with_layout(y_true, layout), with_layout(y_pred, layout)
    assert_close(getattr(cy, name)(t, p, **kw), expected, dtype, "reduction")
    assert_close(getattr(ref, name)(t, p, **kw), expected, dtype, "reduction")
    assert_close(getattr(cy, "backprop_" + name)(t, p, **kw), e_grad, dtype, "reduction")
    out = Guarded((7, 13), dtype, layout)
    res = getattr(cy, "backprop_" + name)(t, p, out.view, **kw)
    check_out(res, out.view)
    assert_close(res, e_grad, dtype, "reduction")
    assert out.guard_ok()


@pytest.mark.parametrize("target", ["y_pred", "y_true"])
@pytest.mark.parametrize("name, kw", LOSS_CASES, ids=LOSS_IDS)
def test_loss_gradient_in_place(backend, dtype, rng, name, kw, target):
    """out may be y_pred itself, and y_true for elementwise losses (the spec allows the
    alias): the gradient must be the one computed from the inputs as they were before
    the call.  Row-wise cross-entropies reject out=y_true (they reread a row's targets
    after writing it)."""
    y_true, y_pred = loss_inputs(rng, name, kw, (7, 13), dtype)
    e_grad = getattr(ref, "backprop_" + name)(y_true, y_pred, **kw)
    out = y_pred if target == "y_pred" else y_true
    if target == "y_true" and name in ref.ROW_LOSSES + ("categorical_crossentropy",):
        with pytest.raises(ValueError, match="^out: must not share memory with y_true"):
            getattr(backend, "backprop_" + name)(y_true, y_pred, out=out, **kw)
        return
    res = getattr(backend, "backprop_" + name)(y_true, y_pred, out=out, **kw)
    check_out(res, out)
    assert_close(res, e_grad, dtype, "reduction", err_msg=f"{backend.name}: out={target}")


@pytest.mark.parametrize("dtype_", [np.float32, np.float64], ids=["float32", "float64"])
def test_binary_crossentropy_clip(cy, threads, dtype_):
    dtype = np.dtype(dtype_)
    p = np.array([[0.0, 1e-12, 1e-9, 5e-7, 0.3, 1 - 5e-7, 1 - 1e-12, 1.0]] * 2, dtype)
    y = np.array([[0, 1, 0, 1, 1, 0, 1, 0], [1, 0, 1, 0, 0, 1, 0, 1]], dtype)
    with no_fp_warnings():
        e_val = ref.binary_crossentropy(y, p)
        e_grad = ref.backprop_binary_crossentropy(y, p)
        val = cy.binary_crossentropy(y, p)
        grad = cy.backprop_binary_crossentropy(y, p)
    assert np.isfinite(e_val) and np.isfinite(e_grad).all()
    assert np.isfinite(val) and np.isfinite(grad).all()
    assert_close(val, e_val, dtype, "reduction")
    assert_close(grad, e_grad, dtype, "reduction")
    # the clip is active at 0, 1e-12, 1e-9, 1 - 1e-12 and 1: no gradient flows there
    clipped = (p < ref.EPSILON) | (p > 1 - ref.EPSILON)
    assert (grad[clipped] == 0).all()
    assert (grad[~clipped] != 0).all()


def test_categorical_crossentropy_clip(cy, dtype, threads):
    p = np.array([[0.0, 1.0, 1.0], [1e-12, 0.5, 0.5], [0.2, 0.3, 0.5], [0.0, 0.0, 1.0]], dtype)
    y = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype)
    with no_fp_warnings():
        e_val = ref.categorical_crossentropy(y, p)
        e_grad = ref.backprop_categorical_crossentropy(y, p)
        val = cy.categorical_crossentropy(y, p)
        grad = cy.backprop_categorical_crossentropy(y, p)
    assert np.isfinite(val) and np.isfinite(grad).all()
    assert_close(val, e_val, dtype, "reduction")
    assert_close(grad, e_grad, dtype, "reduction")


def test_losses_by_hand(backend, dtype):
    """Keras's definitions, written out (not taken from the reference)."""
    yt = np.array([[0.0, 0.0]], dtype)
    yp = np.array([[1.0, 3.0]], dtype)
    # MSE is 1/N, not the tutorial's 1/(2N): (1 + 9) / 2
    assert_close(backend.mean_squared_error(yt, yp), 5.0, dtype)
    assert_close(backend.backprop_mean_squared_error(yt, yp), [[1.0, 3.0]], dtype)
    assert_close(backend.mean_absolute_error(yt, yp), 2.0, dtype)
    assert_close(backend.backprop_mean_absolute_error(yt, yp), [[0.5, 0.5]], dtype)
    assert_close(backend.backprop_mean_absolute_error(yp, yp), [[0.0, 0.0]], dtype)
    # huber, delta 1: e = 2 -> 1 * (2 - 0.5) = 1.5; e = 0.5 -> 0.125
    assert_close(backend.huber(np.array([0.0, 0.0], dtype), np.array([2.0, -0.5], dtype)),
                 (1.5 + 0.125) / 2, dtype)
    assert_close(backend.backprop_huber(np.array([0.0, 0.0], dtype),
                                        np.array([2.0, -0.5], dtype)), [0.5, -0.25], dtype)
    assert_close(backend.huber(np.array([0.0], dtype), np.array([3.0], dtype), delta=2.0),
                 2.0 * (3.0 - 1.0), dtype)
    # categorical: y_pred is normalised per row first: [2, 2] -> [0.5, 0.5]
    assert_close(backend.categorical_crossentropy(np.array([[1.0, 0.0]], dtype),
                                                  np.array([[2.0, 2.0]], dtype)),
                 math.log(2.0), dtype)
    assert_close(backend.categorical_crossentropy(np.array([[1.0, 0.0]], dtype),
                                                  np.array([[0.0, 0.0]], dtype),
                                                  from_logits=True), math.log(2.0), dtype)
    assert_close(backend.sparse_categorical_crossentropy(np.array([1]),
                                                         np.array([[0.25, 0.75]], dtype)),
                 -math.log(0.75), dtype)
    # binary: -(y log p + (1 - y) log(1 - p)), mean over all elements
    assert_close(backend.binary_crossentropy(np.array([1.0, 0.0], dtype),
                                             np.array([0.8, 0.4], dtype)),
                 -(math.log(0.8) + math.log(0.6)) / 2, dtype)
    assert_close(backend.binary_crossentropy(np.array([1.0], dtype), np.array([0.0], dtype),
                                             from_logits=True), math.log(2.0), dtype)
    # fused: logits [0, 0], one-hot -> loss log 2, gradient (p - y) / n
    loss, grad = backend.softmax_crossentropy(np.array([[1.0, 0.0]], dtype),
                                              np.array([[0.0, 0.0]], dtype))
    assert_close(loss, math.log(2.0), dtype)
    assert_close(grad, [[-0.5, 0.5]], dtype)


def test_binary_crossentropy_clip_value_by_hand(backend):
    # y = 1, p = 0: the clip turns log(0) into log(1e-7)
    v = backend.binary_crossentropy(np.array([1.0]), np.array([0.0]))
    assert_close(v, -math.log(1e-7), np.float64)


# ------------------------------------------------------------------- sparse labels
LABEL_CASES = [("int32", False), ("int64", False), ("float64", False), ("uint8", False),
               ("int64", True), ("float32", True)]


def _labels(rng, n, c, kind, column):
    lab = rng.integers(0, c, size=n)
    lab[0] = c - 1
    lab = lab.astype(kind)
    return lab.reshape(n, 1) if column else lab


@pytest.mark.parametrize("from_logits", [False, True], ids=["probs", "logits"])
@pytest.mark.parametrize("label_kind, column", LABEL_CASES,
                         ids=[f"{k}-{'(n,1)' if c else '(n,)'}" for k, c in LABEL_CASES])
def test_sparse_categorical_crossentropy(cy, dtype, threads, rng, label_kind, column,
                                         from_logits):
    for n, c in [(1, 1), (7, 13), (300, 70)]:
        lab = _labels(rng, n, c, label_kind, column)
        lab0 = lab.copy()
        p = (rng.standard_normal((n, c)) * 3 if from_logits
             else rng.uniform(0.05, 1.0, (n, c))).astype(dtype)
        onehot = np.eye(c, dtype=dtype)[lab.reshape(-1).astype(np.int64)]
        e_val = ref.sparse_categorical_crossentropy(lab, p, from_logits=from_logits)
        e_grad = ref.backprop_sparse_categorical_crossentropy(lab, p, from_logits=from_logits)
        # the reference agrees with the dense loss on one-hot labels
        assert_close(e_val, ref.categorical_crossentropy(onehot, p, from_logits=from_logits),
                     dtype, "reduction")
        assert_close(e_grad, ref.backprop_categorical_crossentropy(onehot, p,
                                                                   from_logits=from_logits),
                     dtype, "reduction")
        val = cy.sparse_categorical_crossentropy(lab, p, from_logits=from_logits)
        assert type(val) is dtype.type
        assert_close(val, e_val, dtype, "reduction", err_msg=str((n, c)))
        grad = cy.backprop_sparse_categorical_crossentropy(lab, p, from_logits=from_logits)
        assert_close(grad, e_grad, dtype, "reduction", err_msg=str((n, c)))
        out = Guarded((n, c), dtype, "rows2")
        res = cy.backprop_sparse_categorical_crossentropy(lab, p, out.view,
                                                          from_logits=from_logits)
        check_out(res, out.view)
        assert_close(res, e_grad, dtype, "reduction")
        assert out.guard_ok()
        pp = p.copy()
        res = cy.backprop_sparse_categorical_crossentropy(lab, pp, out=pp,
                                                          from_logits=from_logits)
        check_out(res, pp)
        assert_close(pp, e_grad, dtype, "reduction", err_msg="in place")
        np.testing.assert_array_equal(lab, lab0)


# ------------------------------------------------------------------- fused losses
@pytest.mark.parametrize("shape", [(1, 1), (1, 4), (7, 13), (300, 70)], ids=str)
@pytest.mark.parametrize("layout", ["C", "F", "neg"])
def test_softmax_crossentropy(cy, dtype, threads, rng, shape, layout):
    y, z = loss_inputs(rng, "categorical_crossentropy", {"from_logits": True}, shape, dtype)
    e_loss, e_grad = ref.softmax_crossentropy(y, z)
    # the fused reference equals the unfused loss + its gradient
    assert_close(e_loss, ref.categorical_crossentropy(y, z, from_logits=True), dtype,
                 "reduction")
    assert_close(e_grad, ref.backprop_categorical_crossentropy(y, z, from_logits=True), dtype,
                 "reduction")
    ys, zs = with_layout(y, layout), with_layout(z, layout)
    loss, grad = cy.softmax_crossentropy(ys, zs)
    assert type(loss) is dtype.type
    assert_close(loss, e_loss, dtype, "reduction")
    assert_close(grad, e_grad, dtype, "reduction")
    assert_close(loss, cy.categorical_crossentropy(ys, zs, from_logits=True), dtype,
                 "reduction")
    assert_close(grad, cy.backprop_categorical_crossentropy(ys, zs, from_logits=True), dtype,
                 "reduction")
    out = Guarded(shape, dtype, "cols3")
    loss2, res = cy.softmax_crossentropy(ys, zs, out.view)
    check_out(res, out.view)
    assert loss2 == loss
    assert_close(res, e_grad, dtype, "reduction")
    assert out.guard_ok()


@pytest.mark.parametrize("label_kind, column", LABEL_CASES[:3] + LABEL_CASES[4:],
                         ids=lambda v: str(v))
def test_sparse_softmax_crossentropy(cy, dtype, threads, rng, label_kind, column):
    for n, c in [(1, 1), (1, 4), (7, 13), (300, 70)]:
        lab = _labels(rng, n, c, label_kind, column)
        z = normal(rng, (n, c), dtype, 3.0)
        e_loss, e_grad = ref.sparse_softmax_crossentropy(lab, z)
        assert_close(e_loss, ref.sparse_categorical_crossentropy(lab, z, from_logits=True),
                     dtype, "reduction")
        assert_close(e_grad, ref.backprop_sparse_categorical_crossentropy(
            lab, z, from_logits=True), dtype, "reduction")
        onehot = np.eye(c, dtype=dtype)[lab.reshape(-1).astype(np.int64)]
        d_loss, d_grad = ref.softmax_crossentropy(onehot, z)
        assert_close(e_loss, d_loss, dtype, "reduction")
        assert_close(e_grad, d_grad, dtype, "reduction")
        loss, grad = cy.sparse_softmax_crossentropy(lab, z)
        assert type(loss) is dtype.type
        assert_close(loss, e_loss, dtype, "reduction", err_msg=str((n, c)))
        assert_close(grad, e_grad, dtype, "reduction", err_msg=str((n, c)))
        out = Guarded((n, c), dtype, "neg")
        loss2, res = cy.sparse_softmax_crossentropy(lab, with_layout(z, "F"), out.view)
        check_out(res, out.view)
        assert_close(loss2, e_loss, dtype, "reduction")
        assert_close(res, e_grad, dtype, "reduction")
        assert out.guard_ok()


@pytest.mark.parametrize("target", ["logits", "y_true"])
def test_softmax_crossentropy_in_place(backend, dtype, rng, target):
    """out may be the logits themselves (loss and gradient unchanged), never y_true."""
    y, z = loss_inputs(rng, "categorical_crossentropy", {"from_logits": True}, (7, 13), dtype)
    e_loss, e_grad = ref.softmax_crossentropy(y, z)
    out = z if target == "logits" else y
    if target == "y_true":
        with pytest.raises(ValueError, match="^out: must not share memory with y_true"):
            backend.softmax_crossentropy(y, z, out=out)
        return
    loss, res = backend.softmax_crossentropy(y, z, out=out)
    check_out(res, out)
    assert_close(loss, e_loss, dtype, "reduction", err_msg=f"{backend.name} loss, out={target}")
    assert_close(res, e_grad, dtype, "reduction", err_msg=f"{backend.name} grad, out={target}")


def test_sparse_softmax_crossentropy_in_place(backend, dtype, rng):
    lab = rng.integers(0, 13, size=7)
    z = normal(rng, (7, 13), dtype, 3.0)
    e_loss, e_grad = ref.sparse_softmax_crossentropy(lab, z)
    loss, res = backend.sparse_softmax_crossentropy(lab, z, out=z)
    check_out(res, z)
    assert_close(loss, e_loss, dtype, "reduction", err_msg=f"{backend.name} loss, out=logits")
    assert_close(res, e_grad, dtype, "reduction", err_msg=f"{backend.name} grad, out=logits")


def test_fused_loss_extreme_logits(cy, dtype, threads):
    z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -1000.0], [50.0, 49.0, -80.0]],
                 dtype)
    y = np.eye(3, dtype=dtype)[[1, 0, 2]]
    with no_fp_warnings():
        e_loss, e_grad = ref.softmax_crossentropy(y, z)
        loss, grad = cy.softmax_crossentropy(y, z)
        s_loss, s_grad = cy.sparse_softmax_crossentropy(np.array([1, 0, 2]), z)
    assert np.isfinite(loss) and np.isfinite(grad).all()
    assert_close(loss, e_loss, dtype, "reduction")
    assert_close(grad, e_grad, dtype, "reduction")
    assert_close(s_loss, e_loss, dtype, "reduction")
    assert_close(s_grad, e_grad, dtype, "reduction")
