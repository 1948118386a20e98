"""The cuda backend's GEMM and Dense layer against the reference.

Runs under Numba's simulator without a GPU (shapes of at most 32x32 plus uneven ones,
see cuda_helpers.GEMM_SHAPES) and for real on a machine with one.  The simulator's
shapes pick the small tiling (kernels.cuda.gemm.SMALL); the ``*_large_tiling`` tests
force the large one (LARGE_MIN_TILES = 0) so that both compiled kernels are checked.
"""
import numpy as np
import pytest

from cuda_helpers import GEMM_SHAPES, SIMULATOR, to_device, to_host
from kernel_helpers import Guarded, assert_close, uniform
from kernels import reference as ref

ACTIVATIONS = list(ref.ACTIVATIONS)
TRANS = [(False, False), (False, True), (True, False), (True, True)]
TRANS_IDS = ["NN", "NT", "TN", "TT"]
SHAPE_IDS = ["x".join(map(str, s)) for s in GEMM_SHAPES]
DENSE_SHAPE = (17, 31, 9)           # (n, n_in, units): uneven, below one small tile
DENSE_TOL = dict(kind="gemm", k=DENSE_SHAPE[1] + 1, scale=1.5)


def _operands(rng, m, k, n, dtype, trans_a, trans_b):
    a = uniform(rng, (k, m) if trans_a else (m, k), dtype)
    b = uniform(rng, (n, k) if trans_b else (k, n), dtype)
    return a, b


def _dense_inputs(rng, dtype, shape=DENSE_SHAPE):
    n, n_in, units = shape
    return (uniform(rng, (n, n_in), dtype), uniform(rng, (n_in, units), dtype, -0.5, 0.5),
            uniform(rng, (units,), dtype))


@pytest.fixture
def large_tiles(monkeypatch):
    """Every GEMM launch uses the large tiling (128 x 128 tiles, 256 threads)."""
    from kernels.cuda import gemm
    monkeypatch.setattr(gemm, "LARGE_MIN_TILES", 0)
    return gemm.LARGE


@pytest.fixture
def launches():
    from kernels.cuda.backend import launches
    return launches


# ======================================================================= GEMM

@pytest.mark.parametrize("trans", TRANS, ids=TRANS_IDS)
@pytest.mark.parametrize("shape", GEMM_SHAPES, ids=SHAPE_IDS)
def test_gemm_matches_reference(cuda, rng, dtype, shape, trans):
    m, k, n = shape
    a, b = _operands(rng, m, k, n, dtype, *trans)
    kw = dict(trans_a=trans[0], trans_b=trans[1])
    got = cuda.gemm(a, b, **kw)
    assert isinstance(got, np.ndarray)
    assert_close(got, ref.gemm(a, b, **kw), dtype, "gemm", k=k)


@pytest.mark.parametrize("trans", TRANS, ids=TRANS_IDS)
def test_gemm_device_operands(cuda, rng, dtype, trans):
    m, k, n = GEMM_SHAPES[-1]
    a, b = _operands(rng, m, k, n, dtype, *trans)
    kw = dict(trans_a=trans[0], trans_b=trans[1])
    got = cuda.gemm(to_device(a), to_device(b), **kw)
    assert not isinstance(got, np.ndarray)          # the result stays on the device
    assert_close(to_host(got), ref.gemm(a, b, **kw), dtype, "gemm", k=k)


# the simulator runs the 256 threads of a large tile slowly: each transpose case once
@pytest.mark.parametrize("dtype, trans", [(np.float32, TRANS[0]), (np.float64, TRANS[1]),
                                          (np.float32, TRANS[2]), (np.float64, TRANS[3])],
                         ids=["float32-NN", "float64-NT", "float32-TN", "float64-TT"])
def test_gemm_large_tiling(cuda, rng, dtype, large_tiles, trans):
    m, k, n = 33, 20, 31                       # edges in every direction of one tile
    a, b = _operands(rng, m, k, n, dtype, *trans)
    kw = dict(trans_a=trans[0], trans_b=trans[1])
    if trans[0] == trans[1]:                   # host; beta = 0: NaN in out is not read
        out = np.full((m, n), np.nan, dtype)
        assert cuda.gemm(a, b, out, **kw) is out
        assert_close(out, ref.gemm(a, b, **kw), dtype, "gemm", k=k)
    else:                                      # device, alpha and beta
        c = uniform(rng, (m, n), dtype)
        got = cuda.gemm(to_device(a), to_device(b), to_device(c), alpha=-0.5, beta=2.0,
                        **kw)
        assert_close(to_host(got), ref.gemm(a, b, c.copy(), alpha=-0.5, beta=2.0, **kw),
                     dtype, "gemm", k=k, scale=2.5)


@pytest.mark.parametrize("alpha, beta", [(0.5, 0.0), (-1.5, 0.25), (1.0, 1.0), (0.0, 2.0),
                                         (0.0, 0.0)])
def test_gemm_alpha_beta(cuda, rng, dtype, alpha, beta):
    m, k, n = 17, 31, 9
    a, b = _operands(rng, m, k, n, dtype, False, True)
    c = uniform(rng, (m, n), dtype)
    if beta == 0.0:
        c[...] = np.nan                        # not read
    if alpha == 0.0:
        a[0, 0] = b[-1, -1] = np.nan           # not read either
    with np.errstate(invalid="ignore"):
        expected = ref.gemm(a, b, c.copy(), trans_b=True, alpha=alpha, beta=beta)
    assert not np.isnan(expected).any()
    out = c.copy()
    assert cuda.gemm(a, b, out, trans_b=True, alpha=alpha, beta=beta) is out
    tol = dict(k=k, scale=abs(alpha) + abs(beta))
    assert_close(out, expected, dtype, "gemm", **tol)
    d_out = to_device(c)
    assert cuda.gemm(to_device(a), to_device(b), d_out, trans_b=True, alpha=alpha,
                     beta=beta) is d_out
    assert_close(to_host(d_out), expected, dtype, "gemm", **tol, err_msg="device")


def test_gemm_alpha_zero_without_out(cuda, rng, dtype):
    a, b = _operands(rng, 5, 7, 3, dtype, False, False)
    a[...] = np.nan
    np.testing.assert_array_equal(cuda.gemm(a, b, alpha=0.0), np.zeros((5, 3), dtype))


@pytest.mark.parametrize("layout", ["F", "rows2", "neg"])
def test_gemm_host_out_layouts(cuda, rng, dtype, layout):
    m, k, n = 17, 31, 9
    a, b = _operands(rng, m, k, n, dtype, True, False)
    expected = ref.gemm(a, b, trans_a=True)
    out = Guarded((m, n), dtype, layout)
    assert cuda.gemm(a, b, out.view, trans_a=True) is out.view
    assert_close(out.view, expected, dtype, "gemm", k=k)
    assert out.guard_ok()
    c = uniform(rng, (m, n), dtype)
    out.view[...] = c                          # beta != 0 reads the strided out
    cuda.gemm(a, b, out.view, trans_a=True, alpha=2.0, beta=-1.0)
    assert_close(out.view, 2.0 * expected - c, dtype, "gemm", k=k, scale=3.0)
    assert out.guard_ok()


def test_gemm_strided_device_operands(cuda, rng, dtype):
    """Device views are read through their strides, without a copy."""
    m, k, n = 17, 31, 9
    a_t = uniform(rng, (k, m), dtype)          # op(a) = a_t.T
    b = uniform(rng, (k, n), dtype)
    expected = ref.gemm(a_t, b, trans_a=True)
    # a.T view of a device array, given back with trans_a: the plain (m, k) product
    got = cuda.gemm(to_device(a_t).T, to_device(b))
    assert_close(to_host(got), expected, dtype, "gemm", k=k, err_msg=".T")
    # every other row / every third column of larger device arrays (NaN elsewhere)
    a_base = np.full((2 * k, m), np.nan, dtype)
    a_base[::2] = a_t
    b_base = np.full((k, 3 * n), np.nan, dtype)
    b_base[:, 1::3] = b
    d_a, d_b = to_device(a_base)[::2], to_device(b_base)[:, 1::3]
    got = cuda.gemm(d_a, d_b, trans_a=True)
    assert_close(to_host(got), expected, dtype, "gemm", k=k, err_msg="sliced")
    # b^T b through one strided device array read twice (both transposes)
    got = cuda.gemm(d_b, d_b, trans_a=True)
    assert_close(to_host(got), ref.gemm(b, b, trans_a=True), dtype, "gemm", k=k)
    got = cuda.gemm(d_a, d_a, trans_b=True)
    assert_close(to_host(got), ref.gemm(a_t, a_t, trans_b=True), dtype, "gemm", k=m)


def test_gemm_strided_device_out(cuda, rng, dtype):
    m, k, n = 17, 31, 9
    a, b = _operands(rng, m, k, n, dtype, False, False)
    base = to_device(np.full((m, 3 * n), np.nan, dtype))
    out = base[:, ::3]
    assert cuda.gemm(to_device(a), to_device(b), out) is out
    host = to_host(base)
    assert_close(host[:, ::3], ref.gemm(a, b), dtype, "gemm", k=k)
    assert np.isnan(host[:, 1::3]).all() and np.isnan(host[:, 2::3]).all()


def test_gemm_checks(cuda, rng):
    a = uniform(rng, (4, 5), np.float32)
    with pytest.raises(TypeError, match=r"^b: expected a device array like a"):
        cuda.gemm(to_device(a), a.T.copy())
    with pytest.raises(TypeError, match=r"^out: expected a device array like a"):
        cuda.gemm(to_device(a), to_device(a), np.empty((4, 4), np.float32), trans_b=True)
    with pytest.raises(TypeError, match=r"^a: expected a numpy.ndarray or a CUDA device"):
        cuda.gemm([[1.0]], a)
    with pytest.raises(ValueError, match=r"^b: expected op\(b\) with 5 rows"):
        cuda.gemm(a, a)
    with pytest.raises(ValueError, match=r"^out: expected an array to accumulate into"):
        cuda.gemm(a, a, trans_b=True, beta=1.0)
    with pytest.raises(TypeError, match=r"^b: expected dtype float32"):
        cuda.gemm(to_device(a), to_device(a.T.astype(np.float64)))
    # out overlapping an operand (host and device)
    big = uniform(rng, (5, 5), np.float32)
    with pytest.raises(ValueError, match=r"^out: must not share memory with a"):
        cuda.gemm(big, big, big)
    d = to_device(big)
    with pytest.raises(ValueError, match=r"^out: must not share memory with b"):
        cuda.gemm(to_device(a), d, d[:4])


# ======================================================================= Dense forward

@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_dense_forward(cuda, rng, dtype, activation, use_bias):
    """With a bias on the device, without one on the host; the pre-activation stored
    (and out given) in half of the cases."""
    x, w, b = _dense_inputs(rng, dtype)
    b = b if use_bias else None
    z = ref.gemm(x, w) if b is None else ref.bias_add(ref.gemm(x, w), b)
    expected = ref.dense_forward(x, w, b, activation=activation)
    store = (ACTIVATIONS.index(activation) + use_bias) % 2 == 0
    pre = np.full(z.shape, np.nan, dtype) if store else None
    out = np.full(z.shape, np.nan, dtype) if store else None
    if use_bias:
        if store:
            pre, out = to_device(pre), to_device(out)
        got = cuda.dense_forward(to_device(x), to_device(w), to_device(b), out,
                                 activation=activation, pre_activation=pre)
        assert not isinstance(got, np.ndarray)
    else:
        got = cuda.dense_forward(x, w, None, out, activation=activation, pre_activation=pre)
        assert isinstance(got, np.ndarray)
    if out is not None:
        assert got is out
    assert_close(to_host(got), expected, dtype, **DENSE_TOL)
    if pre is not None:
        assert_close(to_host(pre), z, dtype, **DENSE_TOL, err_msg="pre_activation")


def test_dense_forward_host_out_and_pre(cuda, rng, dtype):
    x, w, b = _dense_inputs(rng, dtype)
    out = Guarded((17, 9), dtype, "rows2")
    pre = Guarded((17, 9), dtype, "cols3")
    res = cuda.dense_forward(x, w, b, out.view, activation="gelu", pre_activation=pre.view)
    assert res is out.view
    assert_close(out.view, ref.dense_forward(x, w, b, activation="gelu"), dtype, **DENSE_TOL)
    assert_close(pre.view, ref.bias_add(ref.gemm(x, w), b), dtype, **DENSE_TOL)
    assert out.guard_ok() and pre.guard_ok()


@pytest.mark.parametrize("activation", ["leaky_relu", "elu"])
def test_dense_forward_uses_activation_defaults(cuda, dtype, activation):
    x = np.array([[-1.0, 2.0]], dtype)
    w = np.array([[1.0], [0.25]], dtype)           # z = -0.5
    expected = getattr(ref, activation)(np.array([[-0.5]], dtype))
    assert_close(cuda.dense_forward(x, w, activation=activation), expected, dtype)


@pytest.mark.parametrize("dtype, activation", [(np.float32, "softmax"), (np.float64, "gelu")])
def test_dense_forward_large_tiling(cuda, rng, dtype, large_tiles, activation):
    x, w, b = _dense_inputs(rng, dtype, (33, 20, 31))
    pre = np.full((33, 31), np.nan, dtype)
    got = cuda.dense_forward(x, w, b, activation=activation, pre_activation=pre)
    tol = dict(kind="gemm", k=21, scale=1.5)
    assert_close(got, ref.dense_forward(x, w, b, activation=activation), dtype, **tol)
    assert_close(pre, ref.bias_add(ref.gemm(x, w), b), dtype, **tol)


def test_dense_forward_launches(cuda, rng, launches):
    x, w, b = (to_device(v) for v in _dense_inputs(rng, np.float32))
    for activation, count in [("relu", 1), ("gelu", 1), ("softmax", 2)]:
        before = launches.count
        cuda.dense_forward(x, w, b, activation=activation)
        assert launches.count - before == count, activation


def test_dense_forward_checks(cuda, rng):
    x, w, b = _dense_inputs(rng, np.float32)
    dx, dw, db = to_device(x), to_device(w), to_device(b)
    with pytest.raises(TypeError, match=r"^b: expected a device array like x"):
        cuda.dense_forward(dx, dw, b)
    with pytest.raises(TypeError, match=r"^pre_activation: expected a device array like x"):
        cuda.dense_forward(dx, dw, db, pre_activation=np.empty((17, 9), np.float32))
    with pytest.raises(ValueError, match=r"^activation: expected one of"):
        cuda.dense_forward(dx, dw, db, activation="swish")
    with pytest.raises(ValueError, match=r"^w: expected 31 rows"):
        cuda.dense_forward(dx, to_device(w.T.copy()))
    # out overlapping an input, pre_activation overlapping out
    xx = uniform(rng, (9, 9), np.float32)
    with pytest.raises(ValueError, match=r"^out: must not share memory with x"):
        cuda.dense_forward(xx, uniform(rng, (9, 9), np.float32), out=xx)
    out = to_device(np.empty((17, 9), np.float32))
    with pytest.raises(ValueError, match=r"^pre_activation: must not share memory with out"):
        cuda.dense_forward(dx, dw, db, out, pre_activation=out)
    # the activation kernels read out as a dense buffer
    base = to_device(np.empty((17, 18), np.float32))
    with pytest.raises(ValueError, match=r"^out: expected a C-contiguous device array"):
        cuda.dense_forward(dx, dw, db, base[:, ::2])


# ======================================================================= Dense backward

def _backward_case(rng, dtype, activation, shape=DENSE_SHAPE):
    x, w, b = _dense_inputs(rng, dtype, shape)
    z = ref.bias_add(ref.gemm(x, w), b)
    y = getattr(ref, activation)(z)
    dy = uniform(rng, y.shape, dtype)
    return dy, x, w, y, z


def _check_grads(got, expected, dtype, n, err_msg=""):
    dx, dw, db = got
    edx, edw, edb = expected
    tol = dict(kind="gemm", scale=1.5)
    if edx is None:
        assert dx is None
    else:
        assert_close(to_host(dx), edx, dtype, k=DENSE_SHAPE[2], **tol, err_msg="dx " + err_msg)
    assert_close(to_host(dw), edw, dtype, k=n, **tol, err_msg="dw " + err_msg)
    if edb is None:
        assert db is None
    else:
        assert_close(to_host(db), edb, dtype, k=n, **tol, err_msg="db " + err_msg)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_dense_backward(cuda, rng, dtype, activation):
    """On the host for float32, on the device for float64."""
    dy, x, w, y, z = _backward_case(rng, dtype, activation)
    expected = ref.dense_backward(dy, x, w, y, activation=activation, pre_activation=z)
    on_device = dtype == np.float64
    args = [to_device(v) if on_device else v for v in (dy, x, w, y, z)]
    got = cuda.dense_backward(*args[:4], activation=activation, pre_activation=args[4])
    assert all(isinstance(g, np.ndarray) != on_device for g in got)
    _check_grads(got, expected, dtype, len(x))


@pytest.mark.parametrize("need_dx, use_bias", [(False, True), (True, False), (False, False)])
def test_dense_backward_options(cuda, rng, dtype, need_dx, use_bias, launches):
    """On the host for float32, on the device for float64 (counting the launches)."""
    dy, x, w, y, _ = _backward_case(rng, dtype, "tanh")
    kw = dict(activation="tanh", need_dx=need_dx, use_bias=use_bias)
    expected = ref.dense_backward(dy, x, w, y, **kw)
    if dtype == np.float32:
        got = cuda.dense_backward(dy, x, w, y, **kw)
    else:
        d = [to_device(v) for v in (dy, x, w, y)]
        before = launches.count
        got = cuda.dense_backward(*d, **kw)
        assert launches.count - before == 2 + need_dx   # dz (+ db) in one pass, dw (, dx)
    _check_grads(got, expected, dtype, len(x))


def test_dense_backward_given_outputs(cuda, rng, dtype):
    dy, x, w, y, _ = _backward_case(rng, dtype, "softmax")
    expected = ref.dense_backward(dy, x, w, y, activation="softmax")
    # host outputs of any layout, written in place
    b_shape = (w.shape[1],)
    dx, dw, db = (Guarded(x.shape, dtype, "F"), Guarded(w.shape, dtype, "rows2"),
                  Guarded(b_shape, dtype, "cols3"))
    got = cuda.dense_backward(dy, x, w, y, activation="softmax", dx=dx.view, dw=dw.view,
                              db=db.view)
    assert got[0] is dx.view and got[1] is dw.view and got[2] is db.view
    _check_grads(got, expected, dtype, len(x), "host out")
    assert dx.guard_ok() and dw.guard_ok() and db.guard_ok()
    # device outputs: dx and dw may be strided (GEMM results), db is dense
    dx_base = to_device(np.full((x.shape[0], 2 * x.shape[1]), np.nan, dtype))
    d_dx, d_dw = dx_base[:, ::2], to_device(np.full(w.shape, np.nan, dtype))
    d_db = to_device(np.full(b_shape, np.nan, dtype))
    got = cuda.dense_backward(*(to_device(v) for v in (dy, x, w, y)), activation="softmax",
                              dx=d_dx, dw=d_dw, db=d_db)
    assert got[0] is d_dx and got[1] is d_dw and got[2] is d_db
    _check_grads(got, expected, dtype, len(x), "device out")
    assert np.isnan(to_host(dx_base)[:, 1::2]).all()


@pytest.mark.parametrize("dtype", [np.float32])
def test_dense_backward_large_tiling(cuda, rng, dtype, large_tiles):
    dy, x, w, y, z = _backward_case(rng, dtype, "gelu", (33, 20, 31))
    expected = ref.dense_backward(dy, x, w, y, activation="gelu", pre_activation=z)
    got = cuda.dense_backward(dy, x, w, None, activation="gelu", pre_activation=z)
    dx, dw, db = got
    tol = dict(kind="gemm", scale=1.5)
    assert_close(dx, expected[0], dtype, k=31, **tol)
    assert_close(dw, expected[1], dtype, k=33, **tol)
    assert_close(db, expected[2], dtype, k=33, **tol)


def test_dense_backward_scratch_is_reused(cuda, rng):
    """Two backward passes in a row (the scratch dz of one shape serves both, each pass
    complete before the next reuses it)."""
    dy, x, w, y, _ = _backward_case(rng, np.float32, "relu")
    d = [to_device(v) for v in (dy, x, w, y)]
    first = [to_host(g) for g in cuda.dense_backward(*d, activation="relu")]
    dy2 = uniform(rng, dy.shape, np.float32)
    second = cuda.dense_backward(to_device(dy2), *d[1:], activation="relu")
    _check_grads(first, ref.dense_backward(dy, x, w, y, activation="relu"), np.float32,
                 len(x))
    _check_grads(second, ref.dense_backward(dy2, x, w, y, activation="relu"), np.float32,
                 len(x))


def test_dense_backward_checks(cuda, rng):
    dy, x, w, y, z = _backward_case(rng, np.float32, "relu")
    d = [to_device(v) for v in (dy, x, w, y)]
    with pytest.raises(TypeError, match=r"^y: expected a device array like dy"):
        cuda.dense_backward(*d[:3], y, activation="relu")
    with pytest.raises(TypeError, match=r"^dw: expected a device array like dy"):
        cuda.dense_backward(*d, activation="relu", dw=np.empty_like(w))
    with pytest.raises(ValueError, match=r"^pre_activation: expected the layer's"):
        cuda.dense_backward(*d, activation="gelu")
    with pytest.raises(ValueError, match=r"^dw: must not share memory with w"):
        cuda.dense_backward(*d, activation="relu", dw=d[2])
    with pytest.raises(ValueError, match=r"^dx: must not share memory with x"):
        cuda.dense_backward(dy, x, w, y, activation="relu", dx=x)
    # y is not used by gelu (pre_activation is), as in the reference: not classified
    got = cuda.dense_backward(*d[:3], y, activation="gelu", pre_activation=to_device(z))
    assert not isinstance(got[1], np.ndarray)


@pytest.mark.skipif(SIMULATOR, reason="Dense layers of real sizes: on a GPU only")
@pytest.mark.parametrize("shape", [(128, 784, 256), (300, 513, 257), (2048, 1024, 1024)],
                         ids=str)
def test_dense_real_sizes(cuda, rng, dtype, shape):
    x, w, b = _dense_inputs(rng, dtype, shape)
    n, n_in, units = shape
    tol = dict(kind="gemm", scale=1.5)
    d = [to_device(v) for v in (x, w, b)]
    pre = to_device(np.empty((n, units), dtype))
    y = cuda.dense_forward(*d, activation="gelu", pre_activation=pre)
    z = ref.bias_add(ref.gemm(x, w), b)
    assert_close(to_host(pre), z, dtype, k=n_in + 1, **tol)
    assert_close(to_host(y), ref.gelu(z), dtype, k=n_in + 1, **tol)
    dy = uniform(rng, (n, units), dtype)
    got = cuda.dense_backward(to_device(dy), d[0], d[1], y, activation="gelu",
                              pre_activation=pre)
    edx, edw, edb = ref.dense_backward(dy, x, w, None, activation="gelu", pre_activation=z)
    assert_close(to_host(got[0]), edx, dtype, k=units, **tol)
    assert_close(to_host(got[1]), edw, dtype, k=n, **tol)
    assert_close(to_host(got[2]), edb, dtype, k=n, **tol)
