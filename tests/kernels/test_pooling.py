"""Pooling kernels (2-D max and average pooling, global max and average pooling, forward
and backward) on every backend (numpy = the reference, cython, cuda) against the
reference: odd shapes, windows as large as the image, strides other than the window,
"same" padding (average pooling counts only the real cells), the int32 argmax (the
first maximum, the first NaN), a backward honouring any in-range argmax, non-contiguous
inputs, given outputs, 1 and 2 threads bit-identical; the reference's gradients
against finite differences (float64); bad inputs naming the argument.
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


# (id, x shape, keyword arguments)
POOL_CASES = [
    ("2x2", (2, 4, 6, 3), {}),
    ("odd-valid", (1, 5, 7, 2), {}),
    ("3x3-stride2-same", (2, 5, 7, 2), {"pool_size": 3, "strides": 2, "padding": "same"}),
    ("nonsquare-stride1-same", (1, 4, 5, 3), {"pool_size": (3, 2), "strides": 1,
                                              "padding": "same"}),
    ("stride-above-pool", (1, 7, 7, 1), {"pool_size": 2, "strides": (3, 2)}),
    ("window-is-image", (2, 3, 4, 2), {"pool_size": (3, 4)}),
    ("1x1-image", (3, 1, 1, 2), {"pool_size": 1}),
    ("1x1-image-same", (1, 1, 1, 3), {"pool_size": 2, "padding": "same"}),
]
POOL_IDS = [c[0] for c in POOL_CASES]


@pytest.mark.parametrize("shape, kw", [c[1:] for c in POOL_CASES], ids=POOL_IDS)
def test_max_pool_matches_reference(every_backend, dtype, rng, shape, kw):
    x = normal(rng, shape, dtype)
    out, argmax = every_backend.max_pool2d_forward(x, **kw)
    ref_out, ref_argmax = ref.max_pool2d_forward(x, **kw)
    assert argmax.dtype == np.int32
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(argmax, ref_argmax)
    dy = normal(rng, out.shape, dtype)
    got = every_backend.max_pool2d_backward(dy, ref_argmax, np.full(shape, np.nan, dtype), **kw)
    # dy added in output order where windows overlap: the reference's np.add.at
    np.testing.assert_array_equal(got, ref.max_pool2d_backward(dy, ref_argmax,
                                                               np.empty(shape, dtype), **kw))


@pytest.mark.parametrize("shape, kw", [c[1:] for c in POOL_CASES], ids=POOL_IDS)
def test_avg_pool_matches_reference(every_backend, dtype, rng, shape, kw):
    x = normal(rng, shape, dtype)
    assert_close(every_backend.avg_pool2d_forward(x, **kw), ref.avg_pool2d_forward(x, **kw),
                 dtype, "reduction")
    dy = normal(rng, ref.avg_pool2d_forward(x, **kw).shape, dtype)
    assert_close(every_backend.avg_pool2d_backward(dy, np.full(shape, np.nan, dtype), **kw),
                 ref.avg_pool2d_backward(dy, np.empty(shape, dtype), **kw), dtype, "reduction")


def test_avg_pool_same_counts_only_real_cells(every_backend, dtype):
    """3x3 windows, stride 1, "same" on a 2x3 image of ones: every mean is 1 (the
    padding is not counted); the gradient of each cell is the sum of 1/count over the
    windows holding it (counts 4 at the corners' windows, 6 in the middle column)."""
    x = np.ones((1, 2, 3, 1), dtype)
    out = every_backend.avg_pool2d_forward(x, pool_size=3, strides=1, padding="same")
    np.testing.assert_array_equal(out, np.ones((1, 2, 3, 1), dtype))
    dx = every_backend.avg_pool2d_backward(np.ones((1, 2, 3, 1), dtype),
                                           np.empty((1, 2, 3, 1), dtype), pool_size=3,
                                           strides=1, padding="same")
    # windows at columns 0, 1, 2 hold 4, 6, 4 real cells; cell column 0 is in windows
    # 0 and 1 of both rows: 2 * (1/4 + 1/6); column 1 in all three: 2 * (1/4 + 1/6 + 1/4)
    edge, middle = 2 * (1 / 4 + 1 / 6), 2 * (1 / 4 + 1 / 6 + 1 / 4)
    assert_close(dx[0, :, :, 0], np.array([[edge, middle, edge]] * 2), dtype)


def test_max_pool_ties_and_nan(every_backend, dtype):
    """Ties: the first maximum in row-major window order; a NaN wins (the first one)
    and propagates; the argmax is row * w + col in the channel plane."""
    nan = np.nan
    x = np.array([[[5, 1, 2, 2],
                   [5, 0, 2, 1],
                   [nan, 3, 7, nan],
                   [1, nan, 7, 7]]], dtype)[..., None]
    out, argmax = every_backend.max_pool2d_forward(x)
    np.testing.assert_array_equal(argmax[0, :, :, 0], [[0, 2], [8, 11]])
    np.testing.assert_array_equal(out[0, :, :, 0], [[5, 2], [nan, nan]])
    # -inf everywhere but one cell; an all -inf window takes its first cell
    y = np.full((1, 2, 4, 1), -np.inf, dtype)
    y[0, 1, 3, 0] = -1.0
    out, argmax = every_backend.max_pool2d_forward(y)
    np.testing.assert_array_equal(argmax[0, :, :, 0], [[0, 7]])
    np.testing.assert_array_equal(out[0, :, :, 0], [[-np.inf, -1.0]])
    # global pooling: the same rules over the whole plane
    g_out, g_arg = every_backend.global_max_pool2d_forward(x)
    np.testing.assert_array_equal(g_arg, [[8]])
    assert np.isnan(g_out[0, 0])
    g_out, g_arg = every_backend.global_max_pool2d_forward(x[:, :2])
    np.testing.assert_array_equal(g_arg, [[0]])
    np.testing.assert_array_equal(g_out, [[5]])


def test_max_pool_all_minus_inf_window_behind_padding(every_backend, dtype):
    """A "same" window whose real cells are all -inf ties with its -inf padding: the
    argmax names the first real cell (padded cells are no candidates), which the
    backward accepts."""
    x = np.full((1, 3, 3, 1), -np.inf, dtype)
    out, argmax = every_backend.max_pool2d_forward(x, pool_size=3, strides=1, padding="same")
    np.testing.assert_array_equal(argmax[0, :, :, 0], [[0, 0, 1], [0, 0, 1], [3, 3, 4]])
    every_backend.max_pool2d_backward(np.ones_like(out), argmax, np.empty_like(x),
                                      pool_size=3, strides=1, padding="same")


def test_max_pool_backward_honours_any_argmax(every_backend, dtype, rng):
    """The backward scatters dy to whatever in-range cells argmax names (not only ones
    inside their window), adding in output order: the reference's np.add.at."""
    dy = normal(rng, (2, 2, 3, 3), dtype)
    argmax = rng.integers(0, 4 * 6, size=dy.shape).astype(np.int32)
    argmax[0, 0, :, 0] = 5                        # several windows naming one cell
    got = every_backend.max_pool2d_backward(dy, argmax, np.empty((2, 4, 6, 3), dtype))
    np.testing.assert_array_equal(got, ref.max_pool2d_backward(dy, argmax,
                                                               np.empty((2, 4, 6, 3), dtype)))


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 1, 1, 2), (3, 2, 1, 1)], ids=str)
def test_global_pooling_matches_reference(every_backend, dtype, rng, shape):
    x = normal(rng, shape, dtype)
    assert_close(every_backend.global_avg_pool2d_forward(x), ref.global_avg_pool2d_forward(x),
                 dtype, "reduction")
    out, argmax = every_backend.global_max_pool2d_forward(x)
    ref_out, ref_argmax = ref.global_max_pool2d_forward(x)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(argmax, ref_argmax)
    assert argmax.dtype == np.int32
    dy = normal(rng, out.shape, dtype)
    assert_close(every_backend.global_avg_pool2d_backward(dy, np.full(shape, np.nan, dtype)),
                 ref.global_avg_pool2d_backward(dy, np.empty(shape, dtype)), dtype)
    np.testing.assert_array_equal(
        every_backend.global_max_pool2d_backward(dy, argmax, np.full(shape, np.nan, dtype)),
        ref.global_max_pool2d_backward(dy, argmax, np.empty(shape, dtype)))


@pytest.mark.parametrize("layout", ["F", "cols3", "negboth"])
def test_strided_inputs_and_given_outputs(every_backend, dtype, rng, layout):
    B = every_backend
    kw = dict(pool_size=3, strides=2, padding="same")
    x = normal(rng, (2, 5, 4, 3), dtype)
    ref_out, ref_arg = ref.max_pool2d_forward(x, **kw)
    xs = with_layout(x, layout)
    out = Guarded(ref_out.shape, dtype, layout)
    arg_base = np.full((2,) + ref_arg.shape, -7, np.int32)
    arg = arg_base[1]
    res = B.max_pool2d_forward(xs, out.view, arg, **kw)
    check_out(res[0], out.view)
    check_out(res[1], arg)
    assert out.guard_ok() and (arg_base[0] == -7).all()
    np.testing.assert_array_equal(out.view, ref_out)
    np.testing.assert_array_equal(arg, ref_arg)
    dy = normal(rng, ref_out.shape, dtype)
    dx = Guarded(x.shape, dtype, layout)
    check_out(B.max_pool2d_backward(with_layout(dy, layout), ref_arg, dx.view, **kw), dx.view)
    assert dx.guard_ok()
    np.testing.assert_array_equal(dx.view, ref.max_pool2d_backward(dy, ref_arg,
                                                                   np.empty_like(x), **kw))
    avg = Guarded(ref_out.shape, dtype, layout)
    check_out(B.avg_pool2d_forward(xs, avg.view, **kw), avg.view)
    assert avg.guard_ok()
    assert_close(avg.view, ref.avg_pool2d_forward(x, **kw), dtype, "reduction")
    dx = Guarded(x.shape, dtype, layout)
    check_out(B.avg_pool2d_backward(with_layout(dy, layout), dx.view, **kw), dx.view)
    assert dx.guard_ok()
    assert_close(dx.view, ref.avg_pool2d_backward(dy, np.empty_like(x), **kw), dtype,
                 "reduction")
    g = Guarded((2, 3), dtype, layout)
    check_out(B.global_avg_pool2d_forward(xs, g.view), g.view)
    assert g.guard_ok()
    assert_close(g.view, ref.global_avg_pool2d_forward(x), dtype, "reduction")


def test_one_and_two_threads_give_the_same_bits(every_backend, dtype, rng):
    B = every_backend
    kw = dict(pool_size=3, strides=2, padding="same")
    x = normal(rng, (3, 7, 5, 4), dtype)
    out, arg = ref.max_pool2d_forward(x, **kw)
    dy = normal(rng, out.shape, dtype)
    g_arg = ref.global_max_pool2d_forward(x)[1]
    dyg = normal(rng, g_arg.shape, dtype)

    def run():
        return (B.max_pool2d_forward(x, **kw)
                + (B.max_pool2d_backward(dy, arg, np.empty_like(x), **kw),
                   B.avg_pool2d_forward(x, **kw),
                   B.avg_pool2d_backward(dy, np.empty_like(x), **kw),
                   B.global_avg_pool2d_forward(x),
                   B.global_avg_pool2d_backward(dyg, np.empty_like(x)))
                + B.global_max_pool2d_forward(x)
                + (B.global_max_pool2d_backward(dyg, g_arg, np.empty_like(x)),))
    assert_same_bits(results_for_thread_counts(run))


# ------------------------------------------------------------------ cuda specifics

def test_cuda_device_arrays_and_bad_device_argmax(cuda, rng):
    """Device arrays stay on the device (equal bit for bit to the host call); a device
    argmax is not read back: an out-of-range index makes its (image, channel) plane of
    dx NaN instead of raising."""
    x = normal(rng, (2, 4, 4, 2), np.dtype(np.float32))
    out, arg = ref.max_pool2d_forward(x)
    dy = normal(rng, out.shape, np.dtype(np.float32))
    d_x, d_dy, d_dx = device_copies(x, dy, np.empty_like(x))
    d_out, d_arg = cuda.max_pool2d_forward(d_x)
    assert not isinstance(d_out, np.ndarray) and not isinstance(d_arg, np.ndarray)
    np.testing.assert_array_equal(on_host(d_out), out)
    np.testing.assert_array_equal(on_host(d_arg), arg)
    assert cuda.max_pool2d_backward(d_dy, d_arg, d_dx) is d_dx
    np.testing.assert_array_equal(on_host(d_dx), ref.max_pool2d_backward(dy, arg,
                                                                         np.empty_like(x)))
    bad = arg.copy()
    bad[1, 0, 1, 0] = 16                           # one past the 4 x 4 plane
    got = on_host(cuda.max_pool2d_backward(d_dy, device_copies(bad)[0], d_dx))
    assert np.isnan(got[1, :, :, 0]).all()
    np.testing.assert_array_equal(got[0], ref.max_pool2d_backward(dy, arg,
                                                                  np.empty_like(x))[0])
    assert not np.isnan(got[1, :, :, 1]).any()
    g_bad = device_copies(np.array([[0, -1], [3, 2]], np.int32))[0]
    got = on_host(cuda.global_max_pool2d_backward(device_copies(dy[:, 0, 0])[0], g_bad, d_dx))
    assert np.isnan(got[0, :, :, 1]).all() and not np.isnan(got[1]).any()
    # the checks still run on device arrays: type, dtype, shape, overlap
    with pytest.raises(TypeError, match="^argmax: expected dtype int32"):
        cuda.max_pool2d_backward(d_dy, device_copies(arg.astype(np.int64))[0], d_dx)
    with pytest.raises(ValueError, match="^argmax: expected shape"):
        cuda.max_pool2d_backward(d_dy, device_copies(arg[:1])[0], d_dx)
    # an argmax in dx's own memory (its first bytes seen as int32)
    in_dx = d_dx.reshape(d_dx.size)[:arg.size].view(np.int32).reshape(arg.shape)
    with pytest.raises(ValueError, match="^dx: must not share memory with argmax"):
        cuda.max_pool2d_backward(d_dy, in_dx, d_dx)
    in_dx = d_dx.reshape(d_dx.size)[:4].view(np.int32).reshape(2, 2)
    with pytest.raises(ValueError, match="^dx: must not share memory with argmax"):
        cuda.global_max_pool2d_backward(device_copies(dy[:, 0, 0])[0], in_dx, d_dx)


def test_argmax_check_without_reading_the_values():
    """checks.argmax_input(read_values=False) (the cuda backend's device argmax): no
    range check, the type, dtype and shape checks still; True (the default) reads the
    range."""
    from kernels import checks
    bad = np.array([[0, 9]], np.int32)
    assert checks.argmax_input(bad, (1, 2), 4, read_values=False) is bad
    with pytest.raises(ValueError, match=r"^argmax: expected cell indices in \[0, 4\), got 9"):
        checks.argmax_input(bad, (1, 2), 4)
    with pytest.raises(TypeError, match="^argmax: expected dtype int32"):
        checks.argmax_input(bad.astype(np.int64), (1, 2), 4, read_values=False)
    with pytest.raises(ValueError, match="^argmax: expected shape"):
        checks.argmax_input(bad, (2, 1), 4, read_values=False)
    dy, dx = np.ones((1, 1, 1, 1)), np.empty((1, 2, 2, 1))
    high = np.full((1, 1, 1, 1), 4, np.int32)
    checks.max_pool_backward_args(dy, high, dx, 2, None, "valid", read_values=False)
    with pytest.raises(ValueError, match="^argmax: expected cell indices"):
        checks.max_pool_backward_args(dy, high, dx, 2, None, "valid")
    checks.global_pool_backward_args(dy[:, 0, 0], dx, high[:, 0, 0], want_argmax=True,
                                     read_values=False)
    with pytest.raises(ValueError, match="^argmax: expected cell indices"):
        checks.global_pool_backward_args(dy[:, 0, 0], dx, high[:, 0, 0], want_argmax=True)


# ------------------------------------------------------------------ gradients

def _distinct(rng, shape):
    """Values at least 0.05 apart (no tie inside the finite-difference stencil)."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.05 - 1.0).reshape(shape)


@pytest.mark.parametrize("kw", [{}, {"pool_size": 3, "strides": 2, "padding": "same"},
                                {"pool_size": (2, 3), "strides": 1, "padding": "same"}],
                         ids=["2x2", "3x3-s2-same", "2x3-s1-same"])
def test_backward_is_derivative(backend, rng, kw):
    x = _distinct(rng, (2, 4, 5, 2))
    out, argmax = backend.max_pool2d_forward(x, **kw)
    dy = rng.standard_normal(out.shape)
    check_gradient(lambda: np.sum(dy * backend.max_pool2d_forward(x, **kw)[0]), x,
                   backend.max_pool2d_backward(dy, argmax, np.empty_like(x), **kw),
                   what=f"{backend.name} max_pool {kw}")
    check_gradient(lambda: np.sum(dy * backend.avg_pool2d_forward(x, **kw)), x,
                   backend.avg_pool2d_backward(dy, np.empty_like(x), **kw),
                   what=f"{backend.name} avg_pool {kw}")
    g_out, g_arg = backend.global_max_pool2d_forward(x)
    dyg = rng.standard_normal(g_out.shape)
    check_gradient(lambda: np.sum(dyg * backend.global_max_pool2d_forward(x)[0]), x,
                   backend.global_max_pool2d_backward(dyg, g_arg, np.empty_like(x)),
                   what=f"{backend.name} global_max_pool")
    check_gradient(lambda: np.sum(dyg * backend.global_avg_pool2d_forward(x)), x,
                   backend.global_avg_pool2d_backward(dyg, np.empty_like(x)),
                   what=f"{backend.name} global_avg_pool")


def test_gradient_check_rejects_counting_the_padding(backend, rng):
    """The check can fail: an average-pool gradient dividing by the full window size
    (counting the padding) is caught."""
    x = rng.standard_normal((1, 3, 3, 1))
    kw = dict(pool_size=2, strides=2, padding="same")
    dy = rng.standard_normal(backend.avg_pool2d_forward(x, **kw).shape)
    wrong = np.zeros_like(x)
    for i in range(2):
        for j in range(2):
            wrong[0, 2 * i:2 * i + 2, 2 * j:2 * j + 2, 0] += dy[0, i, j, 0] / 4
    with pytest.raises(AssertionError, match="differ from the finite difference"):
        check_gradient(lambda: np.sum(dy * backend.avg_pool2d_forward(x, **kw)), x, wrong)


# ------------------------------------------------------------------ bad inputs

def A(*shape, dtype=np.float64):
    n = int(np.prod(shape))
    return (0.1 + 0.8 * (np.arange(n) % 7) / 7).reshape(shape).astype(dtype)


def I32(*shape, value=0, dtype=np.int32):
    return np.full(shape, value, dtype)


def _argmax_is_out(B):
    out = np.empty((1, 2, 2, 1))        # float64: its first 16 bytes seen as int32
    argmax = out.reshape(-1).view(np.int32)[:4].reshape(1, 2, 2, 1)
    return B.max_pool2d_forward(A(1, 4, 4, 1), out, argmax)


def _dx_is_dy(B):
    dy = A(1, 4, 4, 2)
    return B.avg_pool2d_backward(dy[:, :2, :2], dy)


BAD = [
    ("x-rank", lambda B: B.max_pool2d_forward(A(4, 4, 2)), ValueError, "x"),
    ("x-int", lambda B: B.avg_pool2d_forward(np.ones((1, 2, 2, 1), np.int64)), TypeError, "x"),
    ("pool-zero", lambda B: B.max_pool2d_forward(A(1, 4, 4, 1), pool_size=0), ValueError,
     "pool_size"),
    ("pool-three", lambda B: B.avg_pool2d_forward(A(1, 4, 4, 1), pool_size=(2, 2, 2)),
     ValueError, "pool_size"),
    ("strides-zero", lambda B: B.max_pool2d_forward(A(1, 4, 4, 1), strides=0), ValueError,
     "strides"),
    ("padding-bad", lambda B: B.avg_pool2d_forward(A(1, 4, 4, 1), padding="causal"), ValueError,
     "padding"),
    ("pool-larger-than-image", lambda B: B.max_pool2d_forward(A(1, 2, 4, 1), pool_size=3),
     ValueError, "x"),
    ("out-shape", lambda B: B.avg_pool2d_forward(A(1, 4, 4, 1), A(1, 2, 2, 2)), ValueError, "out"),
    ("out-dtype", lambda B: B.max_pool2d_forward(A(1, 4, 4, 1), A(1, 2, 2, 1, dtype=np.float32)),
     TypeError, "out"),
    ("argmax-dtype", lambda B: B.max_pool2d_forward(A(1, 4, 4, 1), None, I32(1, 2, 2, 1,
                                                                             dtype=np.int64)),
     TypeError, "argmax"),
    ("argmax-shape", lambda B: B.max_pool2d_forward(A(1, 4, 4, 1), None, I32(1, 2, 2, 2)),
     ValueError, "argmax"),
    ("argmax-overlaps-out", _argmax_is_out, ValueError, "argmax"),
    ("backward-argmax-float", lambda B: B.max_pool2d_backward(A(1, 2, 2, 1), A(1, 2, 2, 1),
                                                              A(1, 4, 4, 1)), TypeError, "argmax"),
    ("backward-argmax-shape", lambda B: B.max_pool2d_backward(A(1, 2, 2, 1), I32(1, 2, 1, 1),
                                                              A(1, 4, 4, 1)), ValueError, "argmax"),
    ("backward-argmax-negative", lambda B: B.max_pool2d_backward(A(1, 2, 2, 1),
                                                                 I32(1, 2, 2, 1, value=-1),
                                                                 A(1, 4, 4, 1)),
     ValueError, "argmax"),
    ("backward-argmax-past-plane", lambda B: B.max_pool2d_backward(A(1, 2, 2, 1),
                                                                   I32(1, 2, 2, 1, value=16),
                                                                   A(1, 4, 4, 1)),
     ValueError, "argmax"),
    ("backward-argmax-none", lambda B: B.max_pool2d_backward(A(1, 2, 2, 1), None, A(1, 4, 4, 1)),
     TypeError, "argmax"),
    ("backward-dx-none", lambda B: B.avg_pool2d_backward(A(1, 2, 2, 1), None), TypeError, "dx"),
    ("backward-dy-shape", lambda B: B.avg_pool2d_backward(A(1, 3, 2, 1), A(1, 4, 4, 1)),
     ValueError, "dy"),
    ("backward-dtype-mix", lambda B: B.max_pool2d_backward(A(1, 2, 2, 1), I32(1, 2, 2, 1),
                                                           A(1, 4, 4, 1, dtype=np.float32)),
     TypeError, "dx"),
    ("backward-dx-overlaps-dy", _dx_is_dy, ValueError, "dx"),
    ("global-x-rank", lambda B: B.global_avg_pool2d_forward(A(2, 3)), ValueError, "x"),
    ("global-out-shape", lambda B: B.global_max_pool2d_forward(A(2, 3, 3, 4), A(2, 3)),
     ValueError, "out"),
    ("global-dy-shape", lambda B: B.global_avg_pool2d_backward(A(2, 3), A(2, 3, 3, 4)),
     ValueError, "dy"),
    ("global-argmax-range", lambda B: B.global_max_pool2d_backward(A(1, 2), I32(1, 2, value=9),
                                                                   A(1, 3, 3, 2)),
     ValueError, "argmax"),
    ("global-argmax-dtype", lambda B: B.global_max_pool2d_backward(A(1, 2), A(1, 2),
                                                                   A(1, 3, 3, 2)),
     TypeError, "argmax"),
]


@pytest.mark.parametrize("call, exc, name", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_input_raises_naming_the_argument(every_backend, call, exc, name):
    with pytest.raises(exc, match=rf"^{re.escape(name)}:") as info:
        call(every_backend)
    assert type(info.value) is exc, f"{type(info.value).__name__}: {info.value}"


@pytest.mark.parametrize("kernel", ["max_pool2d_forward", "global_max_pool2d_forward"])
def test_max_pooling_refuses_planes_int32_cannot_index(backend, kernel):
    """argmax is int32: a channel plane of 2**31 cells or more is refused, naming x (a
    zero-stride view: nothing is allocated or read)."""
    from numpy.lib.stride_tricks import as_strided
    x = as_strided(np.zeros(1, np.float32), (1, 2**16, 2**15 + 1, 1), (0, 0, 0, 0))
    kw = {"pool_size": 2} if kernel == "max_pool2d_forward" else {}
    with pytest.raises(ValueError, match=r"^x: expected at most 2\*\*31 - 1 cells"):
        getattr(backend, kernel)(x, **kw)
