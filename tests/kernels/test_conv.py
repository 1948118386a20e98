"""Convolution kernels (conv2d, conv1d, depthwise conv2d, forward and backward) on every
backend (numpy = the reference, cython, cuda) against the reference: odd shapes (1x1
images, kernels as large as the image, non-square, channel counts of no particular
multiple), strides, dilation, "valid" / "same" (and conv1d's "causal") padding,
groups, every fused activation (pre_activation stored and used), need_dx=False,
use_bias=False / b=None, non-contiguous inputs, given outputs, 1 and 2 threads
bit-identical; the reference's gradients against finite differences (float64); bad
inputs naming the argument.  Shapes stay tiny: the cuda backend runs under Numba's
simulator where there is no GPU.
"""
import re

import numpy as np
import pytest

from kernels import reference as ref

from kernel_helpers import Guarded, assert_close, check_out, uniform, with_layout
from spatial_helpers import (BACKENDS, assert_same_bits, device_copies, load_backend,
                             on_host, results_for_thread_counts)
from test_gradients import check_gradient


@pytest.fixture(params=BACKENDS)
def every_backend(request):
    return load_backend(request)


def _inputs(rng, dtype, x_shape, w_shape, bias=True, depthwise=False):
    """x, w, b uniform in [-1, 1]; b has a value per output channel (cin * dm for a
    depthwise kernel (kh, kw, cin, dm))."""
    x = uniform(rng, x_shape, dtype)
    w = uniform(rng, w_shape, dtype)
    channels = w_shape[-2] * w_shape[-1] if depthwise else w_shape[-1]
    b = uniform(rng, (channels,), dtype) if bias else None
    return x, w, b


def _close(got, expected, dtype, terms, err_msg=""):
    """A sum of ``terms`` products of values in [-1, 1] (uniform inputs, |dy| <= 1)."""
    assert_close(got, expected, dtype, "gemm", k=terms, scale=2.0, err_msg=err_msg)


def _terms(x_shape, w_shape, y_shape, groups=1, depthwise=False):
    """The number of products in an element of (forward, dw, dx)."""
    window = int(np.prod(w_shape[:-2]))
    m = int(np.prod(y_shape[:-1]))
    per_group = 1 if depthwise else w_shape[-2]
    out_per_group = w_shape[-1] if depthwise else w_shape[-1] // groups
    return window * per_group + 1, m, window * out_per_group


def _check_pass(B, fwd, bwd, dtype, rng, x, w, b, kw, act="linear", groups=1,
                depthwise=False):
    """Forward and backward of ``B`` against the reference, pre_activation included."""
    kw = dict(kw, activation=act)
    y_ref = getattr(ref, fwd)(x, w, b, **kw)
    z_ref = np.empty_like(y_ref)
    getattr(ref, fwd)(x, w, b, pre_activation=z_ref, **kw)
    tf, tw, tx = _terms(x.shape, w.shape, y_ref.shape, groups, depthwise)
    z = np.full_like(y_ref, np.nan)
    y = getattr(B, fwd)(x, w, b, pre_activation=z, **kw)
    _close(z, z_ref, dtype, tf, "pre_activation")
    _close(y, y_ref, dtype, tf, "out")
    dy = uniform(rng, y_ref.shape, dtype)
    expected = getattr(ref, bwd)(dy, x, w, y_ref, pre_activation=z_ref,
                                 use_bias=b is not None, **kw)
    got = getattr(B, bwd)(dy, x, w, y_ref, pre_activation=z_ref, use_bias=b is not None,
                          **kw)
    for g, e, name, terms in zip(got, expected, ("dx", "dw", "db"), (tx, tw, tw)):
        if e is None:
            assert g is None, name
        else:
            _close(g, e, dtype, terms, name)


# (id, x shape, w shape, keyword arguments)
CONV2D_CASES = [
    ("basic", (2, 5, 6, 3), (3, 2, 3, 4), {}),
    ("1x1-image", (2, 1, 1, 3), (1, 1, 3, 2), {}),
    ("1x1-image-same-3x3", (1, 1, 1, 2), (3, 3, 2, 3), {"padding": "same"}),
    ("kernel-is-image", (1, 4, 3, 2), (4, 3, 2, 5), {}),
    ("strides-same-nonsquare", (2, 7, 5, 3), (3, 2, 3, 5), {"strides": (2, 3), "padding": "same"}),
    ("dilation-same", (1, 6, 7, 2), (2, 3, 2, 3), {"dilation_rate": (2, 1), "padding": "same"}),
    ("groups-3", (2, 5, 4, 6), (3, 3, 2, 9), {"groups": 3, "padding": "same"}),
    ("groups-strides-dilation", (1, 7, 7, 4), (2, 2, 2, 6),
     {"groups": 2, "strides": 2, "dilation_rate": 2}),
    ("odd-channels", (1, 3, 4, 7), (1, 2, 7, 5), {"padding": "same"}),
    ("depthwise-as-groups", (1, 4, 4, 3), (2, 2, 1, 3), {"groups": 3}),
]
CONV2D_IDS = [c[0] for c in CONV2D_CASES]


@pytest.mark.parametrize("x_shape, w_shape, kw", [c[1:] for c in CONV2D_CASES], ids=CONV2D_IDS)
def test_conv2d_matches_reference(every_backend, dtype, rng, x_shape, w_shape, kw):
    x, w, b = _inputs(rng, dtype, x_shape, w_shape)
    _check_pass(every_backend, "conv2d_forward", "conv2d_backward", dtype, rng, x, w, b, kw,
                "relu", groups=kw.get("groups", 1))


CONV1D_CASES = [
    ("valid", (2, 7, 3), (3, 3, 4), {}),
    ("same-strides", (2, 8, 2), (4, 2, 3), {"padding": "same", "strides": 3}),
    ("causal-dilation", (1, 9, 3), (3, 3, 2), {"padding": "causal", "dilation_rate": 2}),
    ("causal-strides-groups", (2, 6, 4), (2, 2, 6), {"padding": "causal", "strides": 2,
                                                     "groups": 2}),
    ("length-1", (3, 1, 2), (1, 2, 2), {}),
]


@pytest.mark.parametrize("x_shape, w_shape, kw", [c[1:] for c in CONV1D_CASES],
                         ids=[c[0] for c in CONV1D_CASES])
def test_conv1d_matches_reference(every_backend, dtype, rng, x_shape, w_shape, kw):
    x, w, b = _inputs(rng, dtype, x_shape, w_shape)
    _check_pass(every_backend, "conv1d_forward", "conv1d_backward", dtype, rng, x, w, b, kw,
                "tanh", groups=kw.get("groups", 1))


def test_conv1d_is_conv2d_of_one_row(every_backend, rng):
    """Causal padding is conv2d's with all the padding before: pad by hand, then valid."""
    x, w, b = _inputs(rng, np.float64, (2, 6, 3), (3, 3, 2))
    y = every_backend.conv1d_forward(x, w, b, padding="causal", dilation_rate=2)
    xp = np.concatenate([np.zeros((2, 4, 3)), x], axis=1)
    _close(y[:, None], ref.conv2d_forward(xp[:, None], w[None], b, dilation_rate=2),
           np.float64, 10)


DEPTHWISE_CASES = [
    ("dm1", (2, 4, 5, 3), (3, 3, 3, 1), {}),
    ("dm2-same-strides", (1, 5, 4, 2), (2, 3, 2, 2), {"padding": "same", "strides": (2, 1)}),
    ("dm3-dilation", (1, 6, 6, 1), (2, 2, 1, 3), {"dilation_rate": 2, "padding": "same"}),
    ("1x1-image", (2, 1, 1, 3), (1, 1, 3, 2), {}),
]


@pytest.mark.parametrize("x_shape, w_shape, kw", [c[1:] for c in DEPTHWISE_CASES],
                         ids=[c[0] for c in DEPTHWISE_CASES])
def test_depthwise_matches_reference(every_backend, dtype, rng, x_shape, w_shape, kw):
    x, w, b = _inputs(rng, dtype, x_shape, w_shape, depthwise=True)
    _check_pass(every_backend, "depthwise_conv2d_forward", "depthwise_conv2d_backward", dtype,
                rng, x, w, b, kw, "sigmoid", depthwise=True)


def test_depthwise_is_conv2d_with_one_group_per_channel(every_backend, rng):
    """w (kh, kw, cin, dm) is the grouped kernel (kh, kw, 1, cin * dm), groups = cin."""
    x, w, b = _inputs(rng, np.float64, (2, 5, 4, 3), (2, 3, 3, 2), depthwise=True)
    kw = dict(strides=2, padding="same")
    y = every_backend.depthwise_conv2d_forward(x, w, b, **kw)
    _close(y, ref.conv2d_forward(x, w.reshape(2, 3, 1, 6), b, groups=3, **kw), np.float64, 7)


# every activation in float64; float32 on those whose code differs the most (a row
# activation, one needing the input, a clamp, the exponential)
ACT_CASES = ([(a, np.float64) for a in ref.ACTIVATIONS]
             + [(a, np.float32) for a in ("relu", "gelu", "softmax", "exponential")])


@pytest.mark.parametrize("act, dtype", ACT_CASES,
                         ids=[f"{a}-{np.dtype(d).name}" for a, d in ACT_CASES])
def test_every_fused_activation(every_backend, rng, act, dtype):
    """Each activation fused into the forward pass (softmax over the channels), and its
    backprop from y or, for gelu, silu, hard_silu and mish, from pre_activation."""
    dtype = np.dtype(dtype)
    x, w, b = _inputs(rng, dtype, (1, 3, 4, 2), (2, 2, 2, 3))
    _check_pass(every_backend, "conv2d_forward", "conv2d_backward", dtype, rng, x, w, b,
                {"padding": "same"}, act)


@pytest.mark.parametrize("act", ["linear", "gelu", "softmax"])
def test_depthwise_fused_activation(every_backend, dtype, rng, act):
    x, w, b = _inputs(rng, dtype, (1, 3, 3, 2), (2, 2, 2, 2), depthwise=True)
    _check_pass(every_backend, "depthwise_conv2d_forward", "depthwise_conv2d_backward", dtype,
                rng, x, w, b, {"padding": "same"}, act, depthwise=True)


@pytest.mark.parametrize("kernel", ["conv2d", "conv1d", "depthwise_conv2d"])
def test_no_bias_and_no_dx(every_backend, dtype, rng, kernel):
    """b=None computes without a bias; use_bias=False returns db None; need_dx=False
    returns dx None (and leaves a given dx untouched)."""
    shapes = {"conv2d": ((2, 4, 3, 2), (2, 2, 2, 3)), "conv1d": ((2, 5, 2), (3, 2, 3)),
              "depthwise_conv2d": ((2, 4, 3, 2), (2, 2, 2, 2))}[kernel]
    x, w, _ = _inputs(rng, dtype, *shapes, bias=False)
    fwd = getattr(every_backend, kernel + "_forward")
    bwd = getattr(every_backend, kernel + "_backward")
    y_ref = getattr(ref, kernel + "_forward")(x, w, None, padding="same")
    _close(fwd(x, w, None, padding="same"), y_ref, dtype, 13)
    dy = uniform(rng, y_ref.shape, dtype)
    expected = getattr(ref, kernel + "_backward")(dy, x, w, y_ref, padding="same",
                                                  use_bias=False, need_dx=False)
    dx = np.full(x.shape, 7.0, dtype)
    got = bwd(dy, x, w, y_ref, padding="same", use_bias=False, need_dx=False, dx=dx)
    assert got[0] is None and got[2] is None and expected[0] is None
    np.testing.assert_array_equal(dx, 7.0)
    _close(got[1], expected[1], dtype, int(np.prod(dy.shape[:-1])))
    # need_dx alone
    got = bwd(dy, x, w, y_ref, padding="same", need_dx=False)
    assert got[0] is None and got[2] is not None


@pytest.mark.parametrize("layout", ["F", "cols3", "negboth"])
def test_strided_inputs_and_given_outputs(every_backend, dtype, rng, layout):
    """Non-contiguous x, w, b, dy, y; outputs given in that layout (NaN-filled inside a
    NaN base: nothing outside them may be written) and returned as given."""
    B = every_backend
    kw = dict(strides=(1, 2), padding="same", groups=2, activation="gelu")
    x, w, b = _inputs(rng, dtype, (2, 4, 5, 4), (2, 3, 2, 4))
    z_ref = np.empty(ref.conv2d_forward(x, w, b, **kw).shape, dtype)
    y_ref = ref.conv2d_forward(x, w, b, pre_activation=z_ref, **kw)
    dy = uniform(rng, y_ref.shape, dtype)
    grads = ref.conv2d_backward(dy, x, w, y_ref, pre_activation=z_ref, **kw)
    xs, ws, bs, dys, zs = (with_layout(a, layout) for a in (x, w, b, dy, z_ref))
    out, pre = Guarded(y_ref.shape, dtype, layout), Guarded(y_ref.shape, dtype, layout)
    check_out(B.conv2d_forward(xs, ws, bs, out.view, pre_activation=pre.view, **kw), out.view)
    assert out.guard_ok() and pre.guard_ok()
    _close(out.view, y_ref, dtype, 13)
    _close(pre.view, z_ref, dtype, 13)
    outs = [Guarded(a.shape, dtype, layout) for a in grads]
    got = B.conv2d_backward(dys, xs, ws, with_layout(y_ref, layout), pre_activation=zs,
                            dx=outs[0].view, dw=outs[1].view, db=outs[2].view, **kw)
    for g, o, e, name in zip(got, outs, grads, ("dx", "dw", "db")):
        check_out(g, o.view)
        assert o.guard_ok(), name
        _close(o.view, e, dtype, 60, name)


def test_inputs_are_not_written(every_backend, dtype, rng):
    x, w, b = _inputs(rng, dtype, (1, 4, 4, 2), (2, 2, 2, 2))
    y = every_backend.conv2d_forward(x, w, b, activation="relu")
    dy = uniform(rng, y.shape, dtype)
    saved = [a.copy() for a in (x, w, b, y, dy)]
    every_backend.conv2d_backward(dy, x, w, y, activation="relu")
    for a, s in zip((x, w, b, y, dy), saved):
        np.testing.assert_array_equal(a, s)


@pytest.mark.parametrize("kernel", ["conv2d", "conv1d", "depthwise_conv2d"])
def test_one_and_two_threads_give_the_same_bits(every_backend, dtype, rng, kernel):
    shapes = {"conv2d": ((2, 5, 4, 4), (3, 3, 2, 6), {"groups": 2, "padding": "same"}),
              "conv1d": ((3, 9, 4), (3, 4, 5), {"padding": "causal", "strides": 2}),
              "depthwise_conv2d": ((2, 5, 4, 3), (3, 2, 3, 2), {"padding": "same"})}
    x_shape, w_shape, kw = shapes[kernel]
    x, w, b = _inputs(rng, dtype, x_shape, w_shape, depthwise=kernel == "depthwise_conv2d")
    fwd = getattr(every_backend, kernel + "_forward")
    bwd = getattr(every_backend, kernel + "_backward")
    y = getattr(ref, kernel + "_forward")(x, w, b, activation="tanh", **kw)
    dy = uniform(rng, y.shape, dtype)

    def run():
        return (fwd(x, w, b, activation="tanh", **kw),) + tuple(
            bwd(dy, x, w, y, activation="tanh", **kw))
    assert_same_bits(results_for_thread_counts(run))


# ------------------------------------------------------------------ cuda specifics

def test_cuda_device_arrays_stay_on_the_device(cuda, rng):
    """Device inputs: results are device arrays, equal bit for bit to the host call's;
    a given device dx is written in place."""
    dtype = np.dtype(np.float32)
    kw = dict(padding="same", strides=2, groups=2, activation="silu")
    x, w, b = _inputs(rng, dtype, (2, 5, 5, 4), (3, 3, 2, 4))
    z = np.empty(ref.conv2d_forward(x, w, b, **kw).shape, dtype)
    y = cuda.conv2d_forward(x, w, b, pre_activation=z, **kw)
    dy = uniform(rng, y.shape, dtype)
    grads = cuda.conv2d_backward(dy, x, w, y, pre_activation=z, **kw)
    x_, w_, b_, z_, dy_, d_z, d_dx = device_copies(x, w, b, z, dy, np.empty_like(z),
                                                   np.empty_like(x))
    d_y = cuda.conv2d_forward(x_, w_, b_, pre_activation=d_z, **kw)
    assert not isinstance(d_y, np.ndarray)
    np.testing.assert_array_equal(on_host(d_y), y)
    np.testing.assert_array_equal(on_host(d_z), z)
    d_grads = cuda.conv2d_backward(dy_, x_, w_, None, pre_activation=z_, dx=d_dx, **kw)
    assert d_grads[0] is d_dx
    for g, e in zip(d_grads, grads):
        assert not isinstance(g, np.ndarray)
        np.testing.assert_array_equal(on_host(g), e)
    with pytest.raises(TypeError, match="^w: expected a device array"):
        cuda.conv2d_forward(x_, w, b_)


def test_cuda_large_tiling(cuda, monkeypatch, rng):
    """The 128 x 128 tiling (256 threads a block) of the implicit GEMM, forward and dw."""
    from kernels.cuda import gemm
    monkeypatch.setattr(gemm, "LARGE_MIN_TILES", 0)
    x, w, b = _inputs(rng, np.float32, (1, 3, 4, 3), (2, 2, 3, 2))
    _check_pass(cuda, "conv2d_forward", "conv2d_backward", np.dtype(np.float32), rng, x, w, b,
                {"padding": "same"}, "elu")


# ------------------------------------------------------------------ gradients

def _smooth_inputs(rng, x_shape, w_shape, depthwise=False):
    channels = w_shape[-2] * w_shape[-1] if depthwise else w_shape[-1]
    return (rng.uniform(-1, 1, x_shape), rng.uniform(-1, 1, w_shape),
            rng.uniform(-0.5, 0.5, channels))


GRAD_CASES = [
    ("conv2d", (1, 4, 3, 4), (2, 2, 2, 4), {"groups": 2, "strides": (1, 2), "padding": "same",
                                           "activation": "gelu"}),
    ("conv2d", (2, 4, 4, 1), (2, 2, 1, 2), {"dilation_rate": 2, "activation": "tanh"}),
    ("conv1d", (2, 5, 2), (3, 2, 2), {"padding": "causal", "dilation_rate": 2,
                                      "activation": "silu"}),
    ("conv1d", (1, 6, 2), (2, 2, 3), {"padding": "same", "strides": 2}),
    ("depthwise_conv2d", (1, 4, 3, 2), (2, 2, 2, 2), {"padding": "same", "strides": 2,
                                                      "activation": "softplus"}),
]


@pytest.mark.parametrize("kernel, x_shape, w_shape, kw", GRAD_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(GRAD_CASES)])
def test_backward_is_derivative(backend, rng, kernel, x_shape, w_shape, kw):
    """dx, dw, db are the derivatives of sum(dy * forward(x, w, b)) (float64)."""
    x, w, b = _smooth_inputs(rng, x_shape, w_shape, depthwise=kernel == "depthwise_conv2d")
    fwd = getattr(backend, kernel + "_forward")
    y = fwd(x, w, b, **kw)
    z = np.empty_like(y)
    fwd(x, w, b, pre_activation=z, **kw)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = getattr(backend, kernel + "_backward")(dy, x, w, y, pre_activation=z, **kw)

    def loss():
        return np.sum(dy * fwd(x, w, b, **kw))

    what = f"{backend.name} {kernel} {kw}"
    check_gradient(loss, x, dx, what=what + " dx")
    check_gradient(loss, w, dw, what=what + " dw")
    check_gradient(loss, b, db, what=what + " db")


def test_gradient_check_rejects_a_wrong_col2im(backend, rng):
    """The check can fail: dx with the stride ignored (the cells' gradients put back at
    stride 1) is caught."""
    x, w, b = _smooth_inputs(rng, (1, 5, 5, 1), (2, 2, 1, 1))
    y = backend.conv2d_forward(x, w, b, strides=2)
    dy = rng.standard_normal(y.shape)
    wrong = np.zeros_like(x)
    for a in range(2):
        for c in range(2):
            wrong[0, a:a + 2, c:c + 2, 0] += dy[0, :, :, 0] * w[a, c, 0, 0]
    with pytest.raises(AssertionError, match="differ from the finite difference"):
        check_gradient(lambda: np.sum(dy * backend.conv2d_forward(x, w, b, strides=2)), x,
                       wrong)


# ------------------------------------------------------------------ bad inputs

def A(*shape, dtype=np.float64):
    n = int(np.prod(shape))
    return (0.1 + 0.8 * (np.arange(n) % 7) / 7).reshape(shape).astype(dtype)


def _overlapping_out(B):
    x = A(1, 3, 3, 2)
    return B.conv2d_forward(x, A(1, 1, 2, 2), None, x)


def _dw_is_w(B):
    w = A(2, 2, 2, 3)
    return B.conv2d_backward(A(1, 2, 2, 3), A(1, 3, 3, 2), w, A(1, 2, 2, 3), dw=w)


# (id, call, exception, argument the message starts with)
BAD = [
    ("x-rank", lambda B: B.conv2d_forward(A(3, 3, 2), A(1, 1, 2, 2)), ValueError, "x"),
    ("w-rank", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(1, 2, 2)), ValueError, "w"),
    ("w-channels", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(1, 1, 3, 2)), ValueError, "w"),
    ("groups-not-dividing", lambda B: B.conv2d_forward(A(1, 3, 3, 3), A(1, 1, 1, 2), groups=2),
     ValueError, "groups"),
    ("groups-filters", lambda B: B.conv2d_forward(A(1, 3, 3, 4), A(1, 1, 2, 3), groups=2),
     ValueError, "w"),
    ("groups-zero", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(1, 1, 2, 2), groups=0),
     ValueError, "groups"),
    ("padding-bad", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(1, 1, 2, 2), padding="full"),
     ValueError, "padding"),
    ("padding-causal-2d", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(1, 1, 2, 2),
                                                     padding="causal"), ValueError, "padding"),
    ("valid-too-small", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(4, 1, 2, 2)), ValueError, "x"),
    ("valid-too-small-dilated", lambda B: B.conv1d_forward(A(1, 4, 2), A(2, 2, 2),
                                                           dilation_rate=4), ValueError, "x"),
    ("strides-zero", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(1, 1, 2, 2), strides=0),
     ValueError, "strides"),
    ("strides-three", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(1, 1, 2, 2), strides=(1, 1, 1)),
     ValueError, "strides"),
    ("dilation-float", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(1, 1, 2, 2),
                                                  dilation_rate=1.5), TypeError, "dilation_rate"),
    ("activation-bad", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(1, 1, 2, 2), activation="x"),
     ValueError, "activation"),
    ("dtype-mix-w", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(1, 1, 2, 2, dtype=np.float32)),
     TypeError, "w"),
    ("dtype-mix-b", lambda B: B.conv1d_forward(A(1, 3, 2), A(1, 2, 2), A(2, dtype=np.float32)),
     TypeError, "b"),
    ("b-shape", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(1, 1, 2, 2), A(3)), ValueError, "b"),
    ("out-shape", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(1, 1, 2, 2), None, A(1, 3, 3, 3)),
     ValueError, "out"),
    ("out-overlaps-x", _overlapping_out, ValueError, "out"),
    ("int-x", lambda B: B.conv2d_forward(np.ones((1, 3, 3, 2), np.int32), A(1, 1, 2, 2)),
     TypeError, "x"),
    ("dy-shape", lambda B: B.conv2d_backward(A(1, 3, 3, 3), A(1, 3, 3, 2), A(2, 2, 2, 3),
                                             A(1, 3, 3, 3)), ValueError, "dy"),
    ("y-shape", lambda B: B.conv2d_backward(A(1, 2, 2, 3), A(1, 3, 3, 2), A(2, 2, 2, 3),
                                            A(1, 2, 3, 3)), ValueError, "y"),
    ("gelu-without-pre", lambda B: B.conv2d_backward(A(1, 2, 2, 3), A(1, 3, 3, 2), A(2, 2, 2, 3),
                                                     A(1, 2, 2, 3), activation="gelu"),
     ValueError, "pre_activation"),
    ("dw-is-w", _dw_is_w, ValueError, "dw"),
    ("need_dx-int", lambda B: B.conv1d_backward(A(1, 2, 2), A(1, 3, 2), A(2, 2, 2), A(1, 2, 2),
                                                need_dx=1), TypeError, "need_dx"),
    ("db-shape", lambda B: B.conv1d_backward(A(1, 2, 2), A(1, 3, 2), A(2, 2, 2), A(1, 2, 2),
                                             db=A(3)), ValueError, "db"),
    ("depthwise-w-channels", lambda B: B.depthwise_conv2d_forward(A(1, 3, 3, 2), A(2, 2, 3, 1)),
     ValueError, "w"),
    ("depthwise-backward-dx-shape", lambda B: B.depthwise_conv2d_backward(
        A(1, 2, 2, 2), A(1, 3, 3, 2), A(2, 2, 2, 1), A(1, 2, 2, 2), dx=A(1, 3, 3, 1)),
     ValueError, "dx"),
]


@pytest.mark.parametrize("call, exc, name", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_input_raises_naming_the_argument(every_backend, call, exc, name):
    with pytest.raises(exc, match=rf"^{re.escape(name)}:") as info:
        call(every_backend)
    assert type(info.value) is exc, f"{type(info.value).__name__}: {info.value}"
