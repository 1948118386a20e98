"""Batch normalisation kernels (training forward with the moving statistics updated in
place, inference, backward) on every backend (numpy = the reference, cython, cuda)
against the reference and against Keras's formula written out by hand: ranks 2 to 4,
with and without gamma / beta / moving statistics, in place (out = x, dx = dy or x),
non-contiguous inputs, given outputs, 1 and 2 threads bit-identical; the reference's
gradients against finite differences (float64); bad inputs naming the argument.
"""
import re

import numpy as np
import pytest

from kernels import reference as ref

from kernel_helpers import Guarded, assert_close, check_out, normal, with_layout
from spatial_helpers import (BACKENDS, assert_same_bits, device_copies, load_backend,
                             on_host, results_for_thread_counts)
from test_gradients import check_gradient


@pytest.fixture(params=BACKENDS)
def every_backend(request):
    return load_backend(request)


SHAPES = [(1, 1), (5, 3), (40, 2), (2, 3, 4), (2, 3, 4, 5)]
PARAMS = ["gamma-beta", "gamma", "beta", "none"]


def _data(rng, shape, dtype, which="gamma-beta"):
    c = shape[-1]
    x = normal(rng, shape, dtype, scale=2.0) + dtype.type(1.0)
    gamma = rng.uniform(0.5, 2.0, c).astype(dtype) if "gamma" in which else None
    beta = normal(rng, (c,), dtype) if "beta" in which else None
    return x, gamma, beta


def _moving(rng, c, dtype):
    return normal(rng, (c,), dtype), rng.uniform(0.5, 2.0, c).astype(dtype)


@pytest.mark.parametrize("which", PARAMS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_matches_reference(every_backend, dtype, rng, shape, which):
    B = every_backend
    x, gamma, beta = _data(rng, shape, dtype, which)
    mm, mv = _moving(rng, shape[-1], dtype)
    ref_mm, ref_mv = mm.copy(), mv.copy()
    x0 = x.copy()
    y = B.batch_norm_forward(x, gamma, beta, mm, mv, momentum=0.9)
    y_ref = ref.batch_norm_forward(x, gamma, beta, ref_mm, ref_mv, momentum=0.9)
    assert_close(y, y_ref, dtype, "reduction")
    assert_close(mm, ref_mm, dtype, "reduction", err_msg="moving_mean")
    assert_close(mv, ref_mv, dtype, "reduction", err_msg="moving_variance")
    assert_close(B.batch_norm_forward(x, gamma, beta), ref.batch_norm_forward(x, gamma, beta),
                 dtype, "reduction", err_msg="without moving statistics")
    assert_close(B.batch_norm_inference(x, gamma, beta, mm, mv, epsilon=0.01),
                 ref.batch_norm_inference(x, gamma, beta, mm, mv, epsilon=0.01), dtype,
                 "reduction", err_msg="inference")
    dy = normal(rng, shape, dtype)
    m = x.size // shape[-1]
    for g, e, name in zip(B.batch_norm_backward(dy, x, gamma),
                          ref.batch_norm_backward(dy, x, gamma), ("dx", "dgamma", "dbeta")):
        assert_close(g, e, dtype, "reduction", err_msg=name,
                     scale=1.0 if name == "dx" else float(np.sqrt(m)))
    np.testing.assert_array_equal(x, x0)


def test_keras_formula_by_hand(every_backend, dtype):
    """Keras 3's BatchNormalization in training: the batch mean and biased variance per
    channel, y = (x - mean) / sqrt(var + eps) * gamma + beta; moving = moving * momentum
    + batch * (1 - momentum)."""
    x = np.array([[1.0, -2.0], [3.0, 0.0], [5.0, 2.0], [7.0, 4.0]], dtype)
    gamma = np.array([2.0, 0.5], dtype)
    beta = np.array([0.0, 1.0], dtype)
    mm, mv = np.zeros(2, dtype), np.ones(2, dtype)
    mean, var = np.array([4.0, 1.0]), np.array([5.0, 5.0])
    expected = (x - mean) / np.sqrt(var + 1e-3) * gamma + beta
    assert_close(every_backend.batch_norm_forward(x, gamma, beta, mm, mv), expected, dtype,
                 "reduction")
    assert_close(mm, 0.01 * mean, dtype)
    assert_close(mv, 0.99 + 0.01 * var, dtype)
    # a constant channel: x - mean is 0, then beta
    c = np.full((3, 2), 7.0, dtype)
    assert_close(every_backend.batch_norm_forward(c, gamma, beta), np.tile(beta, (3, 1)), dtype,
                 "reduction")


def test_in_place(every_backend, dtype, rng):
    B = every_backend
    x, gamma, beta = _data(rng, (6, 2, 3), dtype)
    dy = normal(rng, x.shape, dtype)
    mm, mv = _moving(rng, 3, dtype)
    y = ref.batch_norm_forward(x, gamma, beta)
    y_inf = ref.batch_norm_inference(x, gamma, beta, mm, mv)
    grads = ref.batch_norm_backward(dy, x, gamma)
    xi = x.copy()
    check_out(B.batch_norm_forward(xi, gamma, beta, out=xi), xi)
    assert_close(xi, y, dtype, "reduction")
    xi = x.copy()
    check_out(B.batch_norm_inference(xi, gamma, beta, mm, mv, out=xi), xi)
    assert_close(xi, y_inf, dtype, "reduction")
    for alias in ("dy", "x"):
        a, b = dy.copy(), x.copy()
        target = a if alias == "dy" else b
        res = B.batch_norm_backward(a, b, gamma, dx=target)
        check_out(res[0], target)
        for g, e, name in zip(res, grads, ("dx", "dgamma", "dbeta")):
            assert_close(g, e, dtype, "reduction", scale=1.0 if name == "dx" else 3.0,
                         err_msg=f"{name} (dx is {alias})")


@pytest.mark.parametrize("layout", ["F", "cols3", "negboth"])
def test_strided_inputs_and_given_outputs(every_backend, dtype, rng, layout):
    B = every_backend
    x, gamma, beta = _data(rng, (7, 5), dtype)
    dy = normal(rng, x.shape, dtype)
    mm, mv = _moving(rng, 5, dtype)
    ref_mm, ref_mv = mm.copy(), mv.copy()
    y = ref.batch_norm_forward(x, gamma, beta, ref_mm, ref_mv)
    xs, gs, bs = with_layout(x, layout), with_layout(gamma, layout), with_layout(beta, layout)
    mms, mvs = with_layout(mm, layout), with_layout(mv, layout)
    out = Guarded(x.shape, dtype, layout)
    check_out(B.batch_norm_forward(xs, gs, bs, mms, mvs, out.view), out.view)
    assert out.guard_ok()
    assert_close(out.view, y, dtype, "reduction")
    assert_close(mms, ref_mm, dtype, "reduction")
    assert_close(mvs, ref_mv, dtype, "reduction")
    out = Guarded(x.shape, dtype, layout)
    check_out(B.batch_norm_inference(xs, gs, bs, mms, mvs, out.view), out.view)
    assert out.guard_ok()
    assert_close(out.view, ref.batch_norm_inference(x, gamma, beta, ref_mm, ref_mv), dtype,
                 "reduction")
    outs = [Guarded(s, dtype, layout) for s in (x.shape, (5,), (5,))]
    res = B.batch_norm_backward(with_layout(dy, layout), xs, gs, *(o.view for o in outs))
    for r, o, e, name in zip(res, outs, ref.batch_norm_backward(dy, x, gamma),
                             ("dx", "dgamma", "dbeta")):
        check_out(r, o.view)
        assert o.guard_ok(), name
        assert_close(o.view, e, dtype, "reduction", scale=3.0, err_msg=name)


def test_one_and_two_threads_give_the_same_bits(every_backend, dtype, rng):
    B = every_backend
    x, gamma, beta = _data(rng, (3, 6, 5, 4), dtype)
    dy = normal(rng, x.shape, dtype)
    mm, mv = _moving(rng, 4, dtype)

    def run():
        m, v = mm.copy(), mv.copy()
        y = B.batch_norm_forward(x, gamma, beta, m, v)
        return (y, m, v, B.batch_norm_inference(x, gamma, beta, m, v)) + tuple(
            B.batch_norm_backward(dy, x, gamma))
    assert_same_bits(results_for_thread_counts(run))


def test_cuda_device_arrays_stay_on_the_device(cuda, rng):
    """Device arrays: results stay there, the moving statistics are updated in place,
    equal bit for bit to the host call's."""
    dtype = np.dtype(np.float32)
    x, gamma, beta = _data(rng, (4, 3, 2), dtype)
    dy = normal(rng, x.shape, dtype)
    mm, mv = _moving(rng, 2, dtype)
    h_mm, h_mv = mm.copy(), mv.copy()
    y = cuda.batch_norm_forward(x, gamma, beta, h_mm, h_mv)
    grads = cuda.batch_norm_backward(dy, x, gamma)
    d_x, d_g, d_b, d_mm, d_mv, d_dy = device_copies(x, gamma, beta, mm, mv, dy)
    d_y = cuda.batch_norm_forward(d_x, d_g, d_b, d_mm, d_mv)
    assert not isinstance(d_y, np.ndarray)
    np.testing.assert_array_equal(on_host(d_y), y)
    np.testing.assert_array_equal(on_host(d_mm), h_mm)
    np.testing.assert_array_equal(on_host(d_mv), h_mv)
    d_grads = cuda.batch_norm_backward(d_dy, d_x, d_g, dx=d_dy)      # dx in place of dy
    assert d_grads[0] is d_dy
    for g, e in zip(d_grads, grads):
        np.testing.assert_array_equal(on_host(g), e)


# ------------------------------------------------------------------ gradients

@pytest.mark.parametrize("params", ["gamma-beta", "none"])
@pytest.mark.parametrize("shape", [(5, 3), (2, 2, 3, 2)], ids=str)
def test_backward_is_derivative(backend, rng, shape, params):
    x = rng.standard_normal(shape) * 2 + 0.5
    dy = rng.standard_normal(shape)
    c = shape[-1]
    gamma = rng.uniform(0.5, 2.0, c) if params != "none" else None
    beta = rng.standard_normal(c) if params != "none" else None

    def loss():
        return np.sum(dy * backend.batch_norm_forward(x, gamma, beta, epsilon=1e-2))

    dx, dgamma, dbeta = backend.batch_norm_backward(dy, x, gamma, epsilon=1e-2)
    check_gradient(loss, x, dx, what=f"{backend.name} batch_norm dx")
    if gamma is not None:
        check_gradient(loss, gamma, dgamma, what=f"{backend.name} batch_norm dgamma")
        check_gradient(loss, beta, dbeta, what=f"{backend.name} batch_norm dbeta")


def test_gradient_check_rejects_dx_without_the_mean_terms(backend, rng):
    """The check can fail: dx = gamma r dy (the batch statistics treated as constants,
    inference's gradient) is not the training forward's derivative."""
    x = rng.standard_normal((4, 2))
    dy = rng.standard_normal((4, 2))
    var = x.var(axis=0)
    wrong = dy / np.sqrt(var + 1e-2)
    with pytest.raises(AssertionError, match="differ from the finite difference"):
        check_gradient(lambda: np.sum(dy * backend.batch_norm_forward(x, epsilon=1e-2)), x,
                       wrong)


# ------------------------------------------------------------------ bad inputs

def A(*shape, dtype=np.float64):
    n = int(np.prod(shape))
    return (0.1 + 0.8 * (np.arange(n) % 7) / 7).reshape(shape).astype(dtype)


def _read_only(x):
    x.flags.writeable = False
    return x


def _moving_mean_is_x(B):
    x = A(4, 3)
    return B.batch_norm_forward(x, None, None, x[0], A(3))


def _dx_overlaps_dy(B):
    base = A(5, 3)
    return B.batch_norm_backward(base[:4], A(4, 3), None, base[1:])


BAD = [
    ("x-1d", lambda B: B.batch_norm_forward(A(4)), ValueError, "x"),
    ("x-int", lambda B: B.batch_norm_forward(np.ones((2, 2), np.int64)), TypeError, "x"),
    ("gamma-shape", lambda B: B.batch_norm_forward(A(4, 3), A(2)), ValueError, "gamma"),
    ("beta-dtype", lambda B: B.batch_norm_forward(A(4, 3), None, A(3, dtype=np.float32)),
     TypeError, "beta"),
    ("moving-one-only", lambda B: B.batch_norm_forward(A(4, 3), None, None, A(3)), ValueError,
     "moving_variance"),
    ("moving-read-only", lambda B: B.batch_norm_forward(A(4, 3), None, None, _read_only(A(3)),
                                                        A(3)), ValueError, "moving_mean"),
    ("moving-mean-is-x", _moving_mean_is_x, ValueError, "moving_mean"),
    ("momentum-above-1", lambda B: B.batch_norm_forward(A(4, 3), momentum=1.5), ValueError,
     "momentum"),
    ("epsilon-zero", lambda B: B.batch_norm_forward(A(4, 3), epsilon=0.0), ValueError, "epsilon"),
    ("epsilon-str", lambda B: B.batch_norm_inference(A(4, 3), None, None, A(3), A(3),
                                                     epsilon="1"), TypeError, "epsilon"),
    ("inference-moving-none", lambda B: B.batch_norm_inference(A(4, 3), None, None, None, A(3)),
     TypeError, "moving_mean"),
    ("inference-out-shape", lambda B: B.batch_norm_inference(A(4, 3), None, None, A(3), A(3),
                                                             A(3, 4)), ValueError, "out"),
    ("out-partial-overlap", lambda B: (lambda x: B.batch_norm_forward(x[:4], out=x[1:]))(A(5, 3)),
     ValueError, "out"),
    ("backward-x-shape", lambda B: B.batch_norm_backward(A(4, 3), A(3, 4)), ValueError, "x"),
    ("backward-dtype-mix", lambda B: B.batch_norm_backward(A(4, 3), A(4, 3, dtype=np.float32)),
     TypeError, "x"),
    ("backward-dgamma-shape", lambda B: B.batch_norm_backward(A(4, 3), A(4, 3), None, None,
                                                              A(4)), ValueError, "dgamma"),
    ("backward-dx-partial-overlap", _dx_overlaps_dy, ValueError, "dx"),
]


@pytest.mark.parametrize("call, exc, name", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_input_raises_naming_the_argument(every_backend, call, exc, name):
    with pytest.raises(exc, match=rf"^{re.escape(name)}:") as info:
        call(every_backend)
    assert type(info.value) is exc, f"{type(info.value).__name__}: {info.value}"
