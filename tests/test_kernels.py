"""The Cython kernels against the NumPy reference, and the reference against formulas.

Every comparison runs for float32 and float64 and (through the ``threads`` fixture)
with 1 and 2 kernel threads, the parallel threshold lowered to 1 element so that the
threaded code paths run even on small shapes.  Tolerances come from conftest's table.
"""
import math
import warnings

import numpy as np
import pytest

import kernels
from kernels.cpu import _threads, elementwise as _elementwise, gemm as _gemm, losses as _losses
from kernels import reference as ref

from kernel_helpers import (LAYOUTS, Guarded, assert_close, normal, uniform, using_impl,
                            with_layout)

TRANS = [(False, False), (True, False), (False, True), (True, True)]
TRANS_IDS = ["NN", "TN", "NT", "TT"]


def _no_fp_warnings():
    """Context: any NumPy floating-point overflow / invalid / divide warning fails."""
    class _Ctx:
        def __enter__(self):
            self._err = np.errstate(over="raise", invalid="raise", divide="raise")
            self._err.__enter__()
            self._warn = warnings.catch_warnings()
            self._warn.__enter__()
            warnings.simplefilter("error", RuntimeWarning)
            return self

        def __exit__(self, *exc):
            self._warn.__exit__(*exc)
            self._err.__exit__(*exc)
            return False
    return _Ctx()


def _check_out(result, out):
    assert result is out
    assert np.shares_memory(result, out)


# =============================================================================== GEMM
# (m, k, n): 1x1x1, primes, k > KC (256), m > MC (>= 120), n > NC (4096), and one
# above the 48^3 size below which the GEMM driver never splits across threads.
GEMM_SHAPES = [(1, 1, 1), (7, 13, 11), (37, 53, 29), (5, 300, 3), (130, 17, 150),
               (2, 3, 4100), (61, 67, 71)]
GEMM_SHAPE_IDS = ["x".join(map(str, s)) for s in GEMM_SHAPES]


def _gemm_operands(rng, m, k, n, dtype, trans_a, trans_b):
    a = uniform(rng, (k, m) if trans_a else (m, k), dtype)
    b = uniform(rng, (n, k) if trans_b else (k, n), dtype)
    return a, b


@pytest.mark.parametrize("trans_a, trans_b", TRANS, ids=TRANS_IDS)
@pytest.mark.parametrize("shape", GEMM_SHAPES, ids=GEMM_SHAPE_IDS)
def test_gemm_matches_reference(cy, dtype, threads, rng, shape, trans_a, trans_b):
    m, k, n = shape
    a, b = _gemm_operands(rng, m, k, n, dtype, trans_a, trans_b)
    a0, b0 = a.copy(), b.copy()
    got = cy.gemm(a, b, trans_a=trans_a, trans_b=trans_b)
    expected = ref.gemm(a, b, trans_a=trans_a, trans_b=trans_b)
    assert got.shape == (m, n)
    assert_close(got, expected, dtype, "gemm", k=k)
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)


@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, True)], ids=["NN", "TT"])
def test_gemm_large_float32(cy, threads, rng, trans_a, trans_b):
    """> 300 in every dimension (several MC, KC blocks; float32 only, to stay fast)."""
    m, k, n = 301, 317, 307
    a, b = _gemm_operands(rng, m, k, n, np.float32, trans_a, trans_b)
    got = cy.gemm(a, b, trans_a=trans_a, trans_b=trans_b)
    expected = ref.gemm(a.astype(np.float64), b.astype(np.float64), trans_a=trans_a,
                        trans_b=trans_b)
    assert_close(got, expected.astype(np.float32), np.float32, "gemm", k=k)


@pytest.mark.parametrize("trans_a, trans_b", TRANS, ids=TRANS_IDS)
@pytest.mark.parametrize("shape", GEMM_SHAPES[:6], ids=GEMM_SHAPE_IDS[:6])
def test_gemm_every_impl(cy, gemm_impl, dtype, threads, rng, shape, trans_a, trans_b):
    assert _gemm.current_impl() == gemm_impl
    m, k, n = shape
    a, b = _gemm_operands(rng, m, k, n, dtype, trans_a, trans_b)
    out = Guarded((m, n), dtype, "C")           # NaN-filled: beta=0 must not read it
    got = cy.gemm(a, b, out.view, trans_a=trans_a, trans_b=trans_b)
    _check_out(got, out.view)
    expected = ref.gemm(a, b, trans_a=trans_a, trans_b=trans_b)
    assert_close(got, expected, dtype, "gemm", k=k, err_msg=gemm_impl)


@pytest.mark.parametrize("alpha, beta", [(0.5, 0.0), (-1.25, 1.0), (0.75, -0.5)])
def test_gemm_every_impl_alpha_beta_strided_out(cy, gemm_impl, dtype, threads, rng,
                                                alpha, beta):
    m, k, n = 37, 300, 29
    a, b = _gemm_operands(rng, m, k, n, dtype, True, False)
    out = Guarded((m, n), dtype, "cols3")
    if beta != 0.0:
        out.view[...] = uniform(rng, (m, n), dtype)
    c0 = out.view.copy()
    got = cy.gemm(a, b, out.view, trans_a=True, alpha=alpha, beta=beta)
    _check_out(got, out.view)
    expected = ref.gemm(a, b, c0, trans_a=True, alpha=alpha, beta=beta)
    assert_close(got, expected, dtype, "gemm", k=k, scale=abs(alpha) + abs(beta))
    assert out.guard_ok()


LAYOUT_PAIRS = [("C", "C"), ("F", "C"), ("C", "F"), ("F", "F"), ("rows2", "cols3"),
                ("cols3", "rows2"), ("neg", "negboth"), ("negboth", "neg")]


@pytest.mark.parametrize("trans_a, trans_b", TRANS, ids=TRANS_IDS)
@pytest.mark.parametrize("a_layout, b_layout", LAYOUT_PAIRS,
                         ids=[f"{x}-{y}" for x, y in LAYOUT_PAIRS])
def test_gemm_strided_inputs(cy, dtype, threads, rng, a_layout, b_layout, trans_a, trans_b):
    m, k, n = 37, 53, 29
    a, b = _gemm_operands(rng, m, k, n, dtype, trans_a, trans_b)
    expected = ref.gemm(a, b, trans_a=trans_a, trans_b=trans_b)
    a_s, b_s = with_layout(a, a_layout), with_layout(b, b_layout)
    got = cy.gemm(a_s, b_s, trans_a=trans_a, trans_b=trans_b)
    assert_close(got, expected, dtype, "gemm", k=k)
    assert_close(ref.gemm(a_s, b_s, trans_a=trans_a, trans_b=trans_b), expected, dtype,
                 "gemm", k=k)


def test_gemm_transposed_views(cy, dtype, threads, rng):
    """Passing ``.T`` views is the same as the trans flags on the original arrays."""
    a = uniform(rng, (53, 37), dtype)
    b = uniform(rng, (29, 53), dtype)
    expected = ref.gemm(a, b, trans_a=True, trans_b=True)
    assert_close(cy.gemm(a.T, b.T), expected, dtype, "gemm", k=53)
    assert_close(cy.gemm(a.T, b, trans_b=True), expected, dtype, "gemm", k=53)
    assert_close(cy.gemm(a, b.T, trans_a=True), expected, dtype, "gemm", k=53)
    # a transposed view with the flag set again is the original orientation
    assert_close(cy.gemm(b.T, a.T, trans_a=True, trans_b=True),
                 ref.gemm(b, a), dtype, "gemm", k=29)


def test_gemm_same_array_as_both_operands(cy, dtype, threads, rng):
    x = uniform(rng, (41, 23), dtype)
    got = cy.gemm(x, x, trans_a=True)                  # x^T x
    assert_close(got, ref.gemm(x, x, trans_a=True), dtype, "gemm", k=41)
    assert_close(got, got.T, dtype, "gemm", k=41)      # symmetric up to rounding


GEMM_AB = [(1.0, 0.0), (0.5, 0.0), (-1.5, 1.0), (0.75, -0.5), (0.0, 2.0), (0.0, 0.0)]
OUT_LAYOUTS = ("C", "F", "rows2", "cols3", "neg", "negboth")


@pytest.mark.parametrize("alpha, beta", GEMM_AB, ids=[f"a{a}_b{b}" for a, b in GEMM_AB])
@pytest.mark.parametrize("out_layout", OUT_LAYOUTS)
def test_gemm_out_alpha_beta(cy, dtype, threads, rng, out_layout, alpha, beta):
    trans_a, trans_b = TRANS[(OUT_LAYOUTS.index(out_layout) + GEMM_AB.index((alpha, beta))) % 4]
    m, k, n = 130, 300, 29           # k > KC: beta applies once, later K blocks add
    a, b = _gemm_operands(rng, m, k, n, dtype, trans_a, trans_b)
    out = Guarded((m, n), dtype, out_layout)       # NaN-filled
    if beta != 0.0:
        out.view[...] = uniform(rng, (m, n), dtype)
    c0 = out.view.copy()
    got = cy.gemm(a, b, out.view, trans_a=trans_a, trans_b=trans_b, alpha=alpha, beta=beta)
    _check_out(got, out.view)
    assert not np.isnan(got).any(), "NaN leaked from out (beta == 0 must not read it)"
    expected = ref.gemm(a, b, c0, trans_a=trans_a, trans_b=trans_b, alpha=alpha, beta=beta)
    assert_close(got, expected, dtype, "gemm", k=k, scale=max(1.0, abs(alpha)) + abs(beta))
    assert out.guard_ok(), "gemm wrote outside out"


def test_gemm_beta_zero_ignores_inf_and_nan(cy, dtype, threads, rng):
    a, b = _gemm_operands(rng, 9, 5, 7, dtype, False, False)
    out = np.full((9, 7), np.inf, dtype)
    out[::2] = np.nan
    cy.gemm(a, b, out, beta=0.0)
    assert np.isfinite(out).all()
    assert_close(out, ref.gemm(a, b), dtype, "gemm", k=5)


def test_gemm_by_hand(backend, dtype):
    a = np.array([[1, 2], [3, 4]], dtype)
    b = np.array([[5, 6], [7, 8]], dtype)
    np.testing.assert_array_equal(backend.gemm(a, b), np.array([[19, 22], [43, 50]], dtype))
    np.testing.assert_array_equal(backend.gemm(a, b, trans_a=True),
                                  np.array([[26, 30], [38, 44]], dtype))
    out = np.ones((2, 2), dtype)
    backend.gemm(a, b, out, alpha=2.0, beta=-1.0)
    np.testing.assert_array_equal(out, np.array([[37, 43], [85, 99]], dtype))


# ======================================================================== activations
ACT_CASES = [
    ("linear", {}), ("relu", {}),
    ("leaky_relu", {}), ("leaky_relu", {"negative_slope": 0.01}),
    ("leaky_relu", {"negative_slope": 0.0}),
    ("elu", {}), ("elu", {"alpha": 0.5}),
    ("sigmoid", {}), ("tanh", {}), ("softmax", {}), ("softplus", {}),
    ("gelu", {}), ("gelu", {"approximate": True}), ("gelu", {"approximate": False}),
]
ACT_IDS = [name + "".join(f"-{k}={v}" for k, v in kw.items()) for name, kw in ACT_CASES]
ACT_SHAPES = [(1,), (1, 1), (7, 13), (3, 5, 7), (130, 150)]


def _act_kind(name):
    return "reduction" if name == "softmax" else "elementwise"


def _saved(name, kw, x):
    """What the backprop takes: the output y, or the input x for gelu."""
    return x if name == "gelu" else getattr(ref, name)(x, **kw)


@pytest.mark.parametrize("shape", ACT_SHAPES, ids=str)
@pytest.mark.parametrize("name, kw", ACT_CASES, ids=ACT_IDS)
def test_activation_forward(cy, dtype, threads, rng, name, kw, shape):
    x = normal(rng, shape, dtype, scale=3.0)
    x0 = x.copy()
    expected = getattr(ref, name)(x, **kw)
    got = getattr(cy, name)(x, **kw)
    assert_close(got, expected, dtype, _act_kind(name))
    np.testing.assert_array_equal(x, x0)
    # in place
    res = getattr(cy, name)(x, out=x, **kw)
    _check_out(res, x)
    assert_close(x, expected, dtype, _act_kind(name))


@pytest.mark.parametrize("shape", ACT_SHAPES, ids=str)
@pytest.mark.parametrize("name, kw", ACT_CASES, ids=ACT_IDS)
def test_activation_backprop(cy, dtype, threads, rng, name, kw, shape):
    x = normal(rng, shape, dtype, scale=3.0)
    saved = _saved(name, kw, x)
    dy = normal(rng, shape, dtype)
    dy0, saved0 = dy.copy(), saved.copy()
    expected = getattr(ref, "backprop_" + name)(dy, saved, **kw)
    got = getattr(cy, "backprop_" + name)(dy, saved, **kw)
    assert_close(got, expected, dtype, _act_kind(name))
    np.testing.assert_array_equal(dy, dy0)
    np.testing.assert_array_equal(saved, saved0)
    # in place over dy, then over the saved array
    res = getattr(cy, "backprop_" + name)(dy, saved, out=dy, **kw)
    _check_out(res, dy)
    assert_close(dy, expected, dtype, _act_kind(name))
    res = getattr(cy, "backprop_" + name)(dy0.copy(), saved, out=saved, **kw)
    _check_out(res, saved)
    assert_close(saved, expected, dtype, _act_kind(name))


# each input layout paired with a different output layout
LAYOUT_OUT_PAIRS = list(zip(LAYOUTS, LAYOUTS[1:] + LAYOUTS[:1]))


@pytest.mark.parametrize("x_layout, out_layout", LAYOUT_OUT_PAIRS,
                         ids=[f"{x}-out{o}" for x, o in LAYOUT_OUT_PAIRS])
@pytest.mark.parametrize("name, kw", ACT_CASES, ids=ACT_IDS)
def test_activation_layouts_and_out(cy, dtype, two_threads, rng, name, kw, x_layout, out_layout):
    x_c = normal(rng, (7, 13), dtype, scale=3.0)
    dy_c = normal(rng, (7, 13), dtype)
    kind = _act_kind(name)
    fwd, bwd = getattr(cy, name), getattr(cy, "backprop_" + name)
    y_exp = getattr(ref, name)(x_c, **kw)
    saved_c = _saved(name, kw, x_c)
    dx_exp = getattr(ref, "backprop_" + name)(dy_c, saved_c, **kw)

    x = with_layout(x_c, x_layout)
    dy = with_layout(dy_c, x_layout)
    saved = with_layout(saved_c, x_layout)
    assert_close(fwd(x, **kw), y_exp, dtype, kind, err_msg="allocated")
    assert_close(bwd(dy, saved, **kw), dx_exp, dtype, kind, err_msg="allocated")
    out = Guarded((7, 13), dtype, out_layout)
    res = fwd(x, out=out.view, **kw)
    _check_out(res, out.view)
    assert_close(res, y_exp, dtype, kind, err_msg=f"forward out {out_layout}")
    assert out.guard_ok()
    out = Guarded((7, 13), dtype, out_layout)
    res = bwd(dy, saved, out=out.view, **kw)
    _check_out(res, out.view)
    assert_close(res, dx_exp, dtype, kind, err_msg=f"backprop out {out_layout}")
    assert out.guard_ok()
    np.testing.assert_array_equal(x, x_c)
    # in place on the strided array itself
    res = fwd(x, out=x, **kw)
    _check_out(res, x)
    assert_close(x, y_exp, dtype, kind, err_msg="forward in place")
    res = bwd(dy, saved, out=dy, **kw)
    _check_out(res, dy)
    assert_close(dy, dx_exp, dtype, kind, err_msg="backprop in place")


EXTREMES = [-1000.0, -100.0, -30.0, -10.0, -1.0, -0.1, 0.0, 0.1, 1.0, 10.0, 30.0, 100.0,
            1000.0]


@pytest.mark.parametrize("name, kw", ACT_CASES, ids=ACT_IDS)
def test_activation_extreme_values(cy, dtype, threads, name, kw):
    x = np.array([EXTREMES, EXTREMES[::-1]], dtype)
    with _no_fp_warnings():
        expected = getattr(ref, name)(x, **kw)
        got = getattr(cy, name)(x, **kw)
    assert np.isfinite(expected).all() and np.isfinite(got).all()
    assert_close(got, expected, dtype, _act_kind(name))
    saved = x if name == "gelu" else expected
    dy = np.ones_like(x)
    with _no_fp_warnings():
        d_expected = getattr(ref, "backprop_" + name)(dy, saved, **kw)
        d_got = getattr(cy, "backprop_" + name)(dy, saved, **kw)
    assert np.isfinite(d_expected).all() and np.isfinite(d_got).all()
    assert_close(d_got, d_expected, dtype, _act_kind(name))


@pytest.mark.parametrize("x", [30.0, -30.0, 88.0, -88.0, 700.0, -700.0])
def test_sigmoid_softplus_saturate_without_overflow(backend, dtype, x):
    arr = np.array([x], dtype)
    with _no_fp_warnings():
        s = backend.sigmoid(arr)
        sp = backend.softplus(arr)
    assert np.isfinite(s).all() and np.isfinite(sp).all()
    assert 0.0 <= s[0] <= 1.0
    if x > 0:
        assert_close(sp, arr, dtype)                  # softplus(x) ~ x for large x
    else:
        assert 0.0 <= sp[0] < 1e-12


def test_activation_by_hand(backend, dtype):
    """Values written independently of the reference (Keras's definitions)."""
    one = np.array([1.0], dtype)
    minus = np.array([-1.0], dtype)
    zero = np.array([0.0], dtype)
    assert_close(backend.sigmoid(zero), [0.5], dtype)
    assert_close(backend.softplus(zero), [math.log(2.0)], dtype)
    assert_close(backend.elu(minus), [math.exp(-1.0) - 1.0], dtype)
    assert_close(backend.elu(minus, alpha=0.5), [0.5 * (math.exp(-1.0) - 1.0)], dtype)
    assert_close(backend.leaky_relu(minus), [-0.2], dtype)    # Keras activation default
    assert_close(backend.relu(np.array([-2.0, 0.0, 3.0], dtype)), [0.0, 0.0, 3.0], dtype)
    assert_close(backend.tanh(one), [math.tanh(1.0)], dtype)
    # exact gelu(1) = Phi(1); tanh form 0.5 (1 + tanh(sqrt(2/pi) * 1.044715))
    assert_close(backend.gelu(one), [0.8413447460685429], dtype)
    assert_close(backend.gelu(one, approximate=True),
                 [0.5 * (1 + math.tanh(math.sqrt(2 / math.pi) * 1.044715))], dtype)
    assert_close(backend.softmax(np.array([[0.0, math.log(3.0)]], dtype)), [[0.25, 0.75]],
                 dtype, "reduction")
    # derivatives: sigmoid'(0) = 1/4, tanh'(0) = 1, gelu'(0) = 1/2, softplus'(0) = 1/2
    d = np.ones(1, dtype)
    assert_close(backend.backprop_sigmoid(d, backend.sigmoid(zero)), [0.25], dtype)
    assert_close(backend.backprop_tanh(d, backend.tanh(zero)), [1.0], dtype)
    assert_close(backend.backprop_gelu(d, zero), [0.5], dtype)
    assert_close(backend.backprop_softplus(d, backend.softplus(zero)), [0.5], dtype)
    assert_close(backend.backprop_elu(d, backend.elu(minus)), [math.exp(-1.0)], dtype)
    # exact gelu'(1) = Phi(1) + phi(1)
    assert_close(backend.backprop_gelu(d, one),
                 [0.8413447460685429 + math.exp(-0.5) / math.sqrt(2 * math.pi)], dtype)


# ===================================================================== bias, col sums
@pytest.mark.parametrize("shape, x_layout", [((1, 1), "C"), ((7, 13), "C"), ((130, 150), "C"),
                                             ((7, 13), "F"), ((7, 13), "rows2"),
                                             ((7, 13), "cols3"), ((130, 150), "neg"),
                                             ((7, 13), "negboth")], ids=str)
def test_bias_add(cy, dtype, threads, rng, shape, x_layout):
    x_c = normal(rng, shape, dtype)
    b_c = normal(rng, shape[1:], dtype)
    expected = ref.bias_add(x_c, b_c)
    np.testing.assert_array_equal(expected, x_c + b_c)
    x = with_layout(x_c, x_layout)
    for b_layout in ("C", "cols3", "neg"):
        b = with_layout(b_c, b_layout)
        assert_close(cy.bias_add(x, b), expected, dtype, err_msg=b_layout)
    for out_layout in LAYOUTS:
        out = Guarded(shape, dtype, out_layout)
        res = cy.bias_add(x, b_c, out.view)
        _check_out(res, out.view)
        assert_close(res, expected, dtype, err_msg=out_layout)
        assert out.guard_ok()
    res = cy.bias_add(x, b_c, out=x)                      # in place
    _check_out(res, x)
    assert_close(x, expected, dtype)


@pytest.mark.parametrize("shape, x_layout", [((1, 1), "C"), ((7, 13), "C"), ((130, 150), "C"),
                                             ((300, 70), "C"), ((3, 200), "C"),
                                             ((7, 13), "F"), ((300, 70), "rows2"),
                                             ((7, 13), "cols3"), ((3, 200), "neg"),
                                             ((130, 150), "negboth")], ids=str)
def test_column_sums(cy, dtype, threads, rng, shape, x_layout):
    x_c = uniform(rng, shape, dtype)
    expected = ref.column_sums(x_c)
    x = with_layout(x_c, x_layout)
    assert_close(cy.column_sums(x), expected, dtype, "gemm", k=shape[0])
    for out_layout in ("C", "cols3", "neg"):
        out = Guarded(shape[1:], dtype, out_layout)
        res = cy.column_sums(x, out.view)
        _check_out(res, out.view)
        assert_close(res, expected, dtype, "gemm", k=shape[0], err_msg=out_layout)
        assert out.guard_ok()
    np.testing.assert_array_equal(x, x_c)


def test_column_sums_by_hand(backend, dtype):
    x = np.array([[1, 2, 3], [4, 5, 6]], dtype)
    np.testing.assert_array_equal(backend.column_sums(x), np.array([5, 7, 9], dtype))


# ======================================================================= dense layer
DENSE_SHAPES = [(1, 1, 1), (37, 53, 29), (130, 70, 90)]   # (n, n_in, units)
DENSE_IDS = ["x".join(map(str, s)) for s in DENSE_SHAPES]
ACTIVATIONS = list(ref.ACTIVATIONS)


def _dense_inputs(rng, n, n_in, units, dtype):
    x = uniform(rng, (n, n_in), dtype)
    w = uniform(rng, (n_in, units), dtype, -0.5, 0.5)
    b = uniform(rng, (units,), dtype)
    return x, w, b


def _dense_tol(n_in):
    # a GEMM of depth n_in plus the bias, then an activation with |f'| <= ~1.1
    return dict(kind="gemm", k=n_in + 1, scale=1.5)


@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", DENSE_SHAPES, ids=DENSE_IDS)
def test_dense_forward(cy, dtype, threads, rng, shape, activation, use_bias):
    n, n_in, units = shape
    x, w, b = _dense_inputs(rng, n, n_in, units, dtype)
    b = b if use_bias else None
    expected = ref.dense_forward(x, w, b, activation=activation)
    # the reference is the composition of its own kernels
    z = ref.gemm(x, w)
    if b is not None:
        z = ref.bias_add(z, b)
    assert_close(expected, getattr(ref, activation)(z), dtype, **_dense_tol(n_in))

    got = cy.dense_forward(x, w, b, activation=activation)
    assert_close(got, expected, dtype, **_dense_tol(n_in), err_msg="allocated")

    pre = Guarded((n, units), dtype, "C")
    out = Guarded((n, units), dtype, "rows2")
    res = cy.dense_forward(x, w, b, out.view, activation=activation, pre_activation=pre.view)
    _check_out(res, out.view)
    assert_close(res, expected, dtype, **_dense_tol(n_in), err_msg="out + pre_activation")
    assert_close(pre.view, z, dtype, **_dense_tol(n_in), err_msg="pre_activation")
    assert out.guard_ok() and pre.guard_ok()

    pre = Guarded((n, units), dtype, "cols3")
    res = cy.dense_forward(x, w, b, activation=activation, pre_activation=pre.view)
    assert_close(res, expected, dtype, **_dense_tol(n_in), err_msg="strided pre_activation")
    assert_close(pre.view, z, dtype, **_dense_tol(n_in), err_msg="strided pre_activation")
    assert pre.guard_ok()


@pytest.mark.parametrize("activation", ["leaky_relu", "elu"])
def test_dense_forward_uses_activation_defaults(backend, dtype, activation):
    """dense_forward applies the activation with its default parameter (leaky_relu's
    negative_slope 0.2, elu's alpha 1.0), like the standalone activation kernel."""
    x = np.array([[-1.0, 2.0], [0.5, -3.0]], dtype)
    w = np.eye(2, dtype=dtype)
    expected = getattr(ref, activation)(x)
    assert_close(backend.dense_forward(x, w, activation=activation), expected, dtype)
    y = expected
    dy = np.ones_like(x)
    dx, dw, db = backend.dense_backward(dy, x, w, y, activation=activation)
    dz = getattr(ref, "backprop_" + activation)(dy, y)
    assert_close(db, dz.sum(axis=0), dtype)
    assert_close(dx, dz, dtype)


@pytest.mark.parametrize("x_layout, w_layout", [("F", "F"), ("rows2", "cols3"),
                                                ("neg", "negboth"), ("cols3", "F")])
@pytest.mark.parametrize("activation", ["linear", "relu", "tanh", "softmax", "gelu"])
def test_dense_strided_inputs(cy, dtype, threads, rng, x_layout, w_layout, activation):
    n, n_in, units = 37, 53, 29
    x, w, b = _dense_inputs(rng, n, n_in, units, dtype)
    expected = ref.dense_forward(x, w, b, activation=activation)
    xs, ws, bs = with_layout(x, x_layout), with_layout(w, w_layout), with_layout(b, "neg")
    got = cy.dense_forward(xs, ws, bs, activation=activation)
    assert_close(got, expected, dtype, **_dense_tol(n_in))

    z = ref.gemm(x, w) + b
    y = getattr(ref, activation)(z)
    dy = uniform(rng, (n, units), dtype)
    saved_kw = {"pre_activation": with_layout(z, x_layout)} if activation == "gelu" else {}
    e_dx, e_dw, e_db = ref.dense_backward(dy, x, w, y, activation=activation,
                                          pre_activation=z if activation == "gelu" else None)
    dx, dw, db = cy.dense_backward(with_layout(dy, x_layout), xs, ws, with_layout(y, x_layout),
                                   activation=activation, **saved_kw)
    assert_close(dx, e_dx, dtype, "gemm", k=units, scale=2.0)
    assert_close(dw, e_dw, dtype, "gemm", k=n, scale=2.0)
    assert_close(db, e_db, dtype, "gemm", k=n, scale=2.0)


# every activation with dx and bias, plus one of the other (need_dx, use_bias) combos
# in turn (all four appear for several activations)
_OTHER_FLAGS = [(True, False), (False, True), (False, False)]
DENSE_BACKWARD_CASES = [(act, True, True) for act in ACTIVATIONS] + [
    (act, *_OTHER_FLAGS[i % 3]) for i, act in enumerate(ACTIVATIONS)] + [
    ("gelu", *_OTHER_FLAGS[(len(ACTIVATIONS) + 1) % 3]), ("relu", False, False)]


@pytest.mark.parametrize("activation, need_dx, use_bias", DENSE_BACKWARD_CASES,
                         ids=[f"{a}-{'dx' if d else 'nodx'}-{'bias' if b else 'nobias'}"
                              for a, d, b in DENSE_BACKWARD_CASES])
def test_dense_backward(cy, dtype, threads, rng, activation, need_dx, use_bias):
    for n, n_in, units in DENSE_SHAPES:
        msg = f"shape {(n, n_in, units)}"
        x, w, b = _dense_inputs(rng, n, n_in, units, dtype)
        z = ref.gemm(x, w) + b
        y = getattr(ref, activation)(z)
        dy = uniform(rng, (n, units), dtype)
        pre = z if activation in ref.ACTIVATIONS_NEEDING_INPUT else None
        inputs0 = [a.copy() for a in (dy, x, w, y, z)]
        e_dx, e_dw, e_db = ref.dense_backward(dy, x, w, y, activation=activation,
                                              pre_activation=pre, need_dx=need_dx,
                                              use_bias=use_bias)
        # the reference is the chain rule over its own kernels
        dz = (ref.backprop_gelu(dy, z) if activation == "gelu"
              else getattr(ref, "backprop_" + activation)(dy, y))
        assert_close(e_dw, ref.gemm(x, dz, trans_a=True), dtype, "gemm", k=n, scale=2.0)
        assert (e_dx is None) == (not need_dx) and (e_db is None) == (not use_bias)

        dx, dw, db = cy.dense_backward(dy, x, w, y, activation=activation, pre_activation=pre,
                                       need_dx=need_dx, use_bias=use_bias)
        assert (dx is None) == (not need_dx), msg
        assert (db is None) == (not use_bias), msg
        assert_close(dw, e_dw, dtype, "gemm", k=n, scale=2.0, err_msg=msg)
        if need_dx:
            assert_close(dx, e_dx, dtype, "gemm", k=units, scale=2.0, err_msg=msg)
        if use_bias:
            assert_close(db, e_db, dtype, "gemm", k=n, scale=2.0, err_msg=msg)

        # outputs given, strided ones among them
        g_dw = Guarded(w.shape, dtype, "F")
        g_dx = Guarded(x.shape, dtype, "rows2")
        g_db = Guarded((units,), dtype, "cols3")
        r_dx, r_dw, r_db = cy.dense_backward(
            dy, x, w, y, activation=activation, pre_activation=pre,
            dx=g_dx.view if need_dx else None, dw=g_dw.view,
            db=g_db.view if use_bias else None, need_dx=need_dx, use_bias=use_bias)
        _check_out(r_dw, g_dw.view)
        assert_close(r_dw, e_dw, dtype, "gemm", k=n, scale=2.0, err_msg=msg)
        if need_dx:
            _check_out(r_dx, g_dx.view)
            assert_close(r_dx, e_dx, dtype, "gemm", k=units, scale=2.0, err_msg=msg)
        else:
            assert r_dx is None
        if use_bias:
            _check_out(r_db, g_db.view)
            assert_close(r_db, e_db, dtype, "gemm", k=n, scale=2.0, err_msg=msg)
        else:
            assert r_db is None
        assert g_dw.guard_ok() and g_dx.guard_ok() and g_db.guard_ok()
        for a, a0 in zip((dy, x, w, y, z), inputs0):
            np.testing.assert_array_equal(a, a0)


# ============================================================================ losses
ELEMENTWISE_LOSSES = ["mean_squared_error", "mean_absolute_error", "huber",
                      "binary_crossentropy"]
LOSS_CASES = [
    ("mean_squared_error", {}), ("mean_absolute_error", {}),
    ("huber", {}), ("huber", {"delta": 0.3}), ("huber", {"delta": 2.5}),
    ("binary_crossentropy", {}), ("binary_crossentropy", {"from_logits": True}),
    ("categorical_crossentropy", {}), ("categorical_crossentropy", {"from_logits": True}),
]
LOSS_IDS = [name + "".join(f"-{k}={v}" for k, v in kw.items()) for name, kw in LOSS_CASES]
LOSS_SHAPES = [(1,), (13,), (1, 1), (7, 13), (300, 70)]


def _loss_inputs(rng, name, kw, shape, dtype):
    logits = kw.get("from_logits", False)
    if name in ("mean_squared_error", "mean_absolute_error", "huber"):
        return normal(rng, shape, dtype, 2.0), normal(rng, shape, dtype, 2.0)
    if name == "binary_crossentropy":
        # soft targets, with some exact 0 and 1 labels
        y = rng.uniform(0, 1, size=shape)
        u = rng.uniform(size=shape)
        y = np.where(u < 0.3, 0.0, np.where(u > 0.7, 1.0, y))
        p = rng.standard_normal(shape) * 4 if logits else rng.uniform(0.01, 0.99, size=shape)
        return y.astype(dtype), p.astype(dtype)
    # categorical: one-hot rows, with some soft-label rows
    n, c = shape
    y = np.eye(c)[rng.integers(0, c, size=n)]
    soft = rng.uniform(size=n) < 0.3
    y[soft] = rng.dirichlet(np.ones(c), size=int(soft.sum()))
    p = rng.standard_normal(shape) * 3 if logits else rng.uniform(0.05, 1.0, size=shape)
    return y.astype(dtype), p.astype(dtype)


def _loss_shapes(name):
    return LOSS_SHAPES if name in ELEMENTWISE_LOSSES else [s for s in LOSS_SHAPES if len(s) == 2]


LOSS_PARAMS = [pytest.param(name, kw, shape, id=f"{lid}-{shape}")
               for (name, kw), lid in zip(LOSS_CASES, LOSS_IDS) for shape in _loss_shapes(name)]


@pytest.mark.parametrize("name, kw, shape", LOSS_PARAMS)
def test_loss_and_gradient(cy, dtype, threads, rng, name, kw, shape):
    y_true, y_pred = _loss_inputs(rng, name, kw, shape, dtype)
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
    y_true, y_pred = _loss_inputs(rng, name, kw, (7, 13), dtype)
    expected = getattr(ref, name)(y_true, y_pred, **kw)
    e_grad = getattr(ref, "backprop_" + name)(y_true, y_pred, **kw)
    t, p = with_layout(y_true, layout), with_layout(y_pred, layout)
    assert_close(getattr(cy, name)(t, p, **kw), expected, dtype, "reduction")
    assert_close(getattr(ref, name)(t, p, **kw), expected, dtype, "reduction")
    assert_close(getattr(cy, "backprop_" + name)(t, p, **kw), e_grad, dtype, "reduction")
    out = Guarded((7, 13), dtype, layout)
    res = getattr(cy, "backprop_" + name)(t, p, out.view, **kw)
    _check_out(res, out.view)
    assert_close(res, e_grad, dtype, "reduction")
    assert out.guard_ok()


@pytest.mark.parametrize("target", ["y_pred", "y_true"])
@pytest.mark.parametrize("name, kw", LOSS_CASES, ids=LOSS_IDS)
def test_loss_gradient_in_place(backend, dtype, rng, name, kw, target):
    """out may be y_pred itself, and y_true for elementwise losses (the spec allows the
    alias): the gradient must be the one computed from the inputs as they were before
    the call.  Row-wise cross-entropies reject out=y_true (they reread a row's targets
    after writing it)."""
    y_true, y_pred = _loss_inputs(rng, name, kw, (7, 13), dtype)
    e_grad = getattr(ref, "backprop_" + name)(y_true, y_pred, **kw)
    out = y_pred if target == "y_pred" else y_true
    if target == "y_true" and name == "categorical_crossentropy":
        with pytest.raises(ValueError, match="^out: must not share memory with y_true"):
            getattr(backend, "backprop_" + name)(y_true, y_pred, out=out, **kw)
        return
    res = getattr(backend, "backprop_" + name)(y_true, y_pred, out=out, **kw)
    _check_out(res, out)
    assert_close(res, e_grad, dtype, "reduction", err_msg=f"{backend.name}: out={target}")


@pytest.mark.parametrize("dtype_", [np.float32, np.float64], ids=["float32", "float64"])
def test_binary_crossentropy_clip(cy, threads, dtype_):
    dtype = np.dtype(dtype_)
    p = np.array([[0.0, 1e-12, 1e-9, 5e-7, 0.3, 1 - 5e-7, 1 - 1e-12, 1.0]] * 2, dtype)
    y = np.array([[0, 1, 0, 1, 1, 0, 1, 0], [1, 0, 1, 0, 0, 1, 0, 1]], dtype)
    with _no_fp_warnings():
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
    with _no_fp_warnings():
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
        _check_out(res, out.view)
        assert_close(res, e_grad, dtype, "reduction")
        assert out.guard_ok()
        pp = p.copy()
        res = cy.backprop_sparse_categorical_crossentropy(lab, pp, out=pp,
                                                          from_logits=from_logits)
        _check_out(res, pp)
        assert_close(pp, e_grad, dtype, "reduction", err_msg="in place")
        np.testing.assert_array_equal(lab, lab0)


# ------------------------------------------------------------------- fused losses
@pytest.mark.parametrize("shape", [(1, 1), (1, 4), (7, 13), (300, 70)], ids=str)
@pytest.mark.parametrize("layout", ["C", "F", "neg"])
def test_softmax_crossentropy(cy, dtype, threads, rng, shape, layout):
    y, z = _loss_inputs(rng, "categorical_crossentropy", {"from_logits": True}, shape, dtype)
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
    _check_out(res, out.view)
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
        _check_out(res, out.view)
        assert_close(loss2, e_loss, dtype, "reduction")
        assert_close(res, e_grad, dtype, "reduction")
        assert out.guard_ok()


@pytest.mark.parametrize("target", ["logits", "y_true"])
def test_softmax_crossentropy_in_place(backend, dtype, rng, target):
    """out may be the logits themselves (loss and gradient unchanged), never y_true."""
    y, z = _loss_inputs(rng, "categorical_crossentropy", {"from_logits": True}, (7, 13), dtype)
    e_loss, e_grad = ref.softmax_crossentropy(y, z)
    out = z if target == "logits" else y
    if target == "y_true":
        with pytest.raises(ValueError, match="^out: must not share memory with y_true"):
            backend.softmax_crossentropy(y, z, out=out)
        return
    loss, res = backend.softmax_crossentropy(y, z, out=out)
    _check_out(res, out)
    assert_close(loss, e_loss, dtype, "reduction", err_msg=f"{backend.name} loss, out={target}")
    assert_close(res, e_grad, dtype, "reduction", err_msg=f"{backend.name} grad, out={target}")


def test_sparse_softmax_crossentropy_in_place(backend, dtype, rng):
    lab = rng.integers(0, 13, size=7)
    z = normal(rng, (7, 13), dtype, 3.0)
    e_loss, e_grad = ref.sparse_softmax_crossentropy(lab, z)
    loss, res = backend.sparse_softmax_crossentropy(lab, z, out=z)
    _check_out(res, z)
    assert_close(loss, e_loss, dtype, "reduction", err_msg=f"{backend.name} loss, out=logits")
    assert_close(res, e_grad, dtype, "reduction", err_msg=f"{backend.name} grad, out=logits")


def test_fused_loss_extreme_logits(cy, dtype, threads):
    z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -1000.0], [50.0, 49.0, -80.0]],
                 dtype)
    y = np.eye(3, dtype=dtype)[[1, 0, 2]]
    with _no_fp_warnings():
        e_loss, e_grad = ref.softmax_crossentropy(y, z)
        loss, grad = cy.softmax_crossentropy(y, z)
        s_loss, s_grad = cy.sparse_softmax_crossentropy(np.array([1, 0, 2]), z)
    assert np.isfinite(loss) and np.isfinite(grad).all()
    assert_close(loss, e_loss, dtype, "reduction")
    assert_close(grad, e_grad, dtype, "reduction")
    assert_close(s_loss, e_loss, dtype, "reduction")
    assert_close(s_grad, e_grad, dtype, "reduction")


# ======================================================================== optimizers
OPT_CASES = [
    ("sgd", {}), ("sgd", {"momentum": 0.9}), ("sgd", {"momentum": 0.9, "nesterov": True}),
    ("sgd", {"weight_decay": 0.01}),
    ("sgd", {"momentum": 0.5, "nesterov": True, "weight_decay": 0.1, "learning_rate": 0.1}),
    ("adam", {}), ("adam", {"amsgrad": True}), ("adam", {"weight_decay": 0.01}),
    ("adam", {"amsgrad": True, "weight_decay": 0.05, "learning_rate": 0.01, "beta_1": 0.8,
              "beta_2": 0.99, "epsilon": 1e-5}),
    ("adamw", {}), ("adamw", {"amsgrad": True}), ("adamw", {"weight_decay": 0.1,
                                                          "learning_rate": 0.01}),
    ("rmsprop", {}), ("rmsprop", {"momentum": 0.9}), ("rmsprop", {"centered": True}),
    ("rmsprop", {"centered": True, "momentum": 0.5, "rho": 0.8, "weight_decay": 0.01,
                 "learning_rate": 0.01}),
    ("adagrad", {}), ("adagrad", {"weight_decay": 0.01, "epsilon": 1e-3, "learning_rate": 0.1}),
]
OPT_IDS = [name + "".join(f"-{k}={v}" for k, v in kw.items()) for name, kw in OPT_CASES]
OPT_SHAPES = [(1,), (3, 4, 5), (130, 150)]


def _state_names(name, kw):
    if name == "sgd":
        return ["m"] if kw.get("momentum", 0.0) else []
    if name in ("adam", "adamw"):
        return ["m", "v"] + (["v_hat"] if kw.get("amsgrad") else [])
    if name == "rmsprop":
        return (["v"] + (["mom"] if kw.get("momentum", 0.0) else [])
                + (["mg"] if kw.get("centered") else []))
    return ["acc"]


def _init_state(name, state, shape, dtype):
    if name == "adagrad":
        return np.full(shape, 0.1, dtype)       # Keras's initial_accumulator_value
    return np.zeros(shape, dtype)


def _call_update(backend, name, w, g, states, kw, step):
    fn = getattr(backend, name + "_update")
    positional = {"sgd": [], "adam": ["m", "v"], "adamw": ["m", "v"], "rmsprop": ["v"],
                  "adagrad": ["acc"]}[name]
    args = [states[s] for s in positional]
    keywords = {s: states[s] for s in states if s not in positional}
    if name == "sgd" and "m" in states:
        args = [states["m"]]
        keywords = {}
    if name in ("adam", "adamw"):
        keywords["step"] = step
    return fn(w, g, *args, **keywords, **kw)


def _run_optimizer(backend, name, kw, w0, grads, make_layout=lambda a: a.copy()):
    w = make_layout(w0)
    states = {s: make_layout(_init_state(name, s, w0.shape, w0.dtype))
              for s in _state_names(name, kw)}
    for step, g in enumerate(grads, start=1):
        res = _call_update(backend, name, w, make_layout(g), states, kw, step)
        assert res is w
    return w, states


@pytest.mark.parametrize("shape", OPT_SHAPES, ids=str)
@pytest.mark.parametrize("name, kw", OPT_CASES, ids=OPT_IDS)
def test_optimizer_steps(cy, dtype, threads, rng, name, kw, shape):
    w0 = normal(rng, shape, dtype)
    grads = [normal(rng, shape, dtype) for _ in range(5)]
    e_w, e_states = _run_optimizer(ref, name, kw, w0, grads)
    w, states = _run_optimizer(cy, name, kw, w0, grads)
    assert not np.array_equal(e_w, w0)
    assert_close(w, e_w, dtype, "optimizer", err_msg="w")
    for s in states:
        assert_close(states[s], e_states[s], dtype, "optimizer", err_msg=s)


@pytest.mark.parametrize("layout", ["F", "cols3", "neg"])
@pytest.mark.parametrize("name, kw", OPT_CASES, ids=OPT_IDS)
def test_optimizer_strided_arrays(cy, dtype, two_threads, rng, name, kw, layout):
    """w (and the state arrays) as non-contiguous views: updated in place, nothing
    outside them written."""
    shape = (7, 13)
    w0 = normal(rng, shape, dtype)
    grads = [normal(rng, shape, dtype) for _ in range(3)]
    e_w, e_states = _run_optimizer(ref, name, kw, w0, grads)

    guards = []

    def make(a):
        g = Guarded(a.shape, a.dtype, layout)
        g.view[...] = a
        guards.append(g)
        return g.view

    w, states = _run_optimizer(cy, name, kw, w0, grads, make_layout=make)
    assert_close(w, e_w, dtype, "optimizer", err_msg="w")
    for s in states:
        assert_close(states[s], e_states[s], dtype, "optimizer", err_msg=s)
    assert all(g.guard_ok() for g in guards)


def test_optimizer_column_slice_of_weights(cy, dtype, threads, rng):
    """A column slice of a bigger matrix updated in place; the other columns untouched."""
    big = normal(rng, (9, 12), dtype)
    expected_big = big.copy()
    g = normal(rng, (9, 4), dtype)
    m, v = np.zeros((9, 4), dtype), np.zeros((9, 4), dtype)
    ref.adam_update(expected_big[:, 2:6], g, m.copy(), v.copy(), step=1)
    w = big[:, 2:6]
    res = cy.adam_update(w, g, m, v, step=1)
    assert res is w and np.shares_memory(res, big)
    assert_close(big, expected_big, dtype, "optimizer")
    np.testing.assert_array_equal(np.delete(big, np.s_[2:6], axis=1),
                                  np.delete(expected_big, np.s_[2:6], axis=1))


def test_sgd_momentum_buffer_ignored_without_momentum(backend, dtype, rng):
    w = normal(rng, (5,), dtype)
    g = normal(rng, (5,), dtype)
    m = np.full((5,), 3.0, dtype)
    expected = w - np.asarray(0.01, dtype) * g
    backend.sgd_update(w, g, m)
    assert_close(w, expected, dtype, "optimizer")
    np.testing.assert_array_equal(m, np.full((5,), 3.0, dtype))


# ----------------------------------------------- optimizers against Keras's formulas
def _keras_adam(w, grads, lr=0.001, b1=0.9, b2=0.999, eps=1e-7, amsgrad=False, wd=0.0):
    """Keras 3 Adam, written from KERAS_NUMERICS.md in float64, element by element."""
    w = [float(x) for x in w]
    m = [0.0] * len(w)
    v = [0.0] * len(w)
    vh = [0.0] * len(w)
    for t, g in enumerate(grads, start=1):
        alpha = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        for i, gi in enumerate(g):
            w[i] -= w[i] * wd * lr
            m[i] += (gi - m[i]) * (1 - b1)
            v[i] += (gi * gi - v[i]) * (1 - b2)
            denom_v = v[i]
            if amsgrad:
                vh[i] = max(vh[i], v[i])
                denom_v = vh[i]
            w[i] -= alpha * m[i] / (math.sqrt(denom_v) + eps)
    return np.array(w), np.array(m), np.array(v)


def test_adam_first_step_is_keras(backend):
    w0 = np.array([0.5, -1.0, 2.0, 0.0])
    g = np.array([0.1, -3.0, 1e-4, 2.0])
    w = w0.copy()
    m, v = np.zeros(4), np.zeros(4)
    backend.adam_update(w, g, m, v, step=1)
    # step 1: m = 0.1 g, v = 0.001 g^2, alpha = lr sqrt(0.001) / 0.1, so
    # w1 = w0 - lr * sqrt(0.001) * g / (sqrt(0.001) |g| + 1e-7) ~ w0 - lr * sign(g)
    s = math.sqrt(1 - 0.999)
    expected = w0 - 0.001 * s * g / (s * np.abs(g) + 1e-7)
    np.testing.assert_allclose(w, expected, rtol=1e-13)
    np.testing.assert_allclose(m, 0.1 * g, rtol=1e-14)
    np.testing.assert_allclose(v, 0.001 * g * g, rtol=1e-14)
    assert abs(w[1] - (w0[1] + 0.001)) < 1e-8          # large |g|: a step of lr


@pytest.mark.parametrize("kw", [{}, {"amsgrad": True}, {"weight_decay": 0.004},
                                {"learning_rate": 0.05, "beta_1": 0.5, "beta_2": 0.9}])
def test_adam_matches_keras_formula_over_steps(backend, rng, kw):
    w0 = rng.standard_normal(6)
    grads = [rng.standard_normal(6) for _ in range(5)]
    grads[3] = grads[3] * 0.01                       # let AMSGrad's maximum matter
    w, m, v = w0.copy(), np.zeros(6), np.zeros(6)
    v_hat = np.zeros(6)
    extra = {"v_hat": v_hat} if kw.get("amsgrad") else {}
    for t, g in enumerate(grads, start=1):
        backend.adam_update(w, g, m, v, step=t, **kw, **extra)
    e_w, e_m, e_v = _keras_adam(w0, grads, lr=kw.get("learning_rate", 0.001),
                                b1=kw.get("beta_1", 0.9), b2=kw.get("beta_2", 0.999),
                                amsgrad=kw.get("amsgrad", False),
                                wd=kw.get("weight_decay", 0.0))
    np.testing.assert_allclose(w, e_w, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(m, e_m, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(v, e_v, rtol=1e-12, atol=1e-15)


def test_adamw_default_decay_is_keras(backend, rng):
    w0 = rng.standard_normal(5)
    g = rng.standard_normal(5)
    w = w0.copy()
    backend.adamw_update(w, g, np.zeros(5), np.zeros(5), step=1, learning_rate=0.01)
    e_w, _, _ = _keras_adam(w0, [g], lr=0.01, wd=0.004)
    np.testing.assert_allclose(w, e_w, rtol=1e-13)


def test_rmsprop_matches_keras_formula(backend, rng):
    w0 = rng.standard_normal(6)
    grads = [rng.standard_normal(6) for _ in range(4)]
    for centered in (False, True):
        for momentum in (0.0, 0.9):
            w = w0.copy()
            v, mom, mg = np.zeros(6), np.zeros(6), np.zeros(6)
            for g in grads:
                backend.rmsprop_update(w, g, v, momentum=momentum, centered=centered,
                                       mom=mom, mg=mg)
            # Keras: v = rho v + (1 - rho) g^2; centered: mg likewise, denominator
            # v - mg^2; inc = lr g / sqrt(denominator + eps)  (eps INSIDE the root)
            ew, ev, emom, emg = list(w0), [0.0] * 6, [0.0] * 6, [0.0] * 6
            for g in grads:
                for i in range(6):
                    ev[i] = 0.9 * ev[i] + 0.1 * g[i] ** 2
                    den = ev[i]
                    if centered:
                        emg[i] = 0.9 * emg[i] + 0.1 * g[i]
                        den = ev[i] - emg[i] ** 2
                    inc = 0.001 * g[i] / math.sqrt(den + 1e-7)
                    if momentum:
                        emom[i] = momentum * emom[i] + inc
                        ew[i] -= emom[i]
                    else:
                        ew[i] -= inc
            msg = f"centered={centered} momentum={momentum}"
            np.testing.assert_allclose(w, ew, rtol=1e-12, err_msg=msg)
            np.testing.assert_allclose(v, ev, rtol=1e-12, err_msg=msg)


def test_rmsprop_first_step_epsilon_inside_root(backend):
    g = np.array([1e-4])
    w = np.array([0.0])
    backend.rmsprop_update(w, g, np.zeros(1), epsilon=1e-7)
    # v = 0.1 * 1e-8 = 1e-9; inc = 1e-3 * 1e-4 / sqrt(1e-9 + 1e-7)
    np.testing.assert_allclose(w, [-1e-7 / math.sqrt(1.01e-7)], rtol=1e-13)


def test_adagrad_matches_keras_formula(backend):
    w = np.array([1.0, -2.0])
    acc = np.full(2, 0.1)
    g1, g2 = np.array([0.5, -1.0]), np.array([-0.25, 2.0])
    backend.adagrad_update(w, g1, acc)
    backend.adagrad_update(w, g2, acc)
    e_acc = 0.1 + g1 ** 2 + g2 ** 2
    e_w = np.array([1.0, -2.0])
    e_w = e_w - 0.001 * g1 / np.sqrt(0.1 + g1 ** 2 + 1e-7)
    e_w = e_w - 0.001 * g2 / np.sqrt(e_acc + 1e-7)
    np.testing.assert_allclose(acc, e_acc, rtol=1e-15)
    np.testing.assert_allclose(w, e_w, rtol=1e-14)


def test_sgd_matches_keras_formula(backend):
    g1, g2 = np.array([1.0, -2.0]), np.array([0.5, 0.5])
    # plain: w -= lr g
    w = np.array([1.0, 1.0])
    backend.sgd_update(w, g1, learning_rate=0.1)
    np.testing.assert_allclose(w, [0.9, 1.2], rtol=1e-15)
    # momentum: m = mu m - lr g; w += m
    w, m = np.array([1.0, 1.0]), np.zeros(2)
    backend.sgd_update(w, g1, m, learning_rate=0.1, momentum=0.9)
    backend.sgd_update(w, g2, m, learning_rate=0.1, momentum=0.9)
    m1 = -0.1 * g1
    m2 = 0.9 * m1 - 0.1 * g2
    np.testing.assert_allclose(m, m2, rtol=1e-15)
    np.testing.assert_allclose(w, 1.0 + m1 + m2, rtol=1e-15)
    # nesterov: w += mu m - lr g
    w, m = np.array([1.0, 1.0]), np.zeros(2)
    backend.sgd_update(w, g1, m, learning_rate=0.1, momentum=0.9, nesterov=True)
    backend.sgd_update(w, g2, m, learning_rate=0.1, momentum=0.9, nesterov=True)
    np.testing.assert_allclose(w, 1.0 + (0.9 * m1 - 0.1 * g1) + (0.9 * m2 - 0.1 * g2),
                               rtol=1e-15)
    # decoupled weight decay before the step: w -= w wd lr
    w = np.array([2.0])
    backend.sgd_update(w, np.array([1.0]), learning_rate=0.1, weight_decay=0.5)
    np.testing.assert_allclose(w, [2.0 - 2.0 * 0.05 - 0.1], rtol=1e-15)


# ======================================================= elementwise ISA variants
@pytest.fixture(params=_elementwise.available_impls())
def ew_impl(request):
    """Every elementwise variant this CPU runs ('base', 'avx2', 'avx512'); the variant
    in use before is restored afterwards."""
    with using_impl(_elementwise, request.param) as name:
        yield name


def test_ew_impls_listed():
    impls = _elementwise.available_impls()
    assert impls[0] == "base" and _elementwise.current_impl() in impls
    assert set(impls) <= {"base", "avx2", "avx512"}
    feats = _elementwise.cpu_features()
    if "avx512" in impls:
        assert feats["avx512f"] and feats["avx512bw"]
    with pytest.raises(ValueError):
        _elementwise.use_impl("sse9")


# odd sizes: vector bodies and scalar tails; rows of 10 (< 16 lanes) and 37 (> 16)
EW_SHAPES = [(1, 1), (3, 37), (5, 10), (33, 129)]


@pytest.mark.parametrize("shape", EW_SHAPES, ids=str)
@pytest.mark.parametrize("name, kw", ACT_CASES, ids=ACT_IDS)
def test_activation_every_ew_impl(cy, ew_impl, dtype, threads, rng, name, kw, shape):
    # scale 2: beyond x ~ -6, gelu_tanh's backprop is 1 + tanh(u) cancelling in both the
    # kernel and the reference (float64 libm tanh, every variant), a few 1e-14 apart
    x = normal(rng, shape, dtype, scale=2.0)
    x[0, 0] = 0.0
    if x.size > 8:   # subnormal, tiny, large and saturating inputs
        x.flat[1:8] = [np.finfo(dtype).smallest_subnormal, -1e-30, 1e-7, -20.0, 20.0,
                       -88.5, 95.0]
    with _no_fp_warnings():
        expected = getattr(ref, name)(x, **kw)
    got = getattr(cy, name)(x, **kw)
    assert_close(got, expected, dtype, _act_kind(name), err_msg=ew_impl)
    saved = x if name == "gelu" else expected
    dy = normal(rng, shape, dtype)
    with _no_fp_warnings():
        d_expected = getattr(ref, "backprop_" + name)(dy, saved, **kw)
    d_got = getattr(cy, "backprop_" + name)(dy, saved, **kw)
    assert_close(d_got, d_expected, dtype, _act_kind(name), err_msg=ew_impl)


@pytest.mark.parametrize("name, kw", [c for c in ACT_CASES if c[0] != "softmax"],
                         ids=[i for i, c in zip(ACT_IDS, ACT_CASES) if c[0] != "softmax"])
def test_activation_specials_every_ew_impl(cy, ew_impl, dtype, name, kw):
    x = np.array([[np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -1e-40, 3.0, -3.0]], dtype)
    with np.errstate(all="ignore"):
        expected = getattr(ref, name)(x, **kw)
    got = getattr(cy, name)(x, **kw)
    assert_close(got, expected, dtype, err_msg=ew_impl)


@pytest.mark.parametrize("cols", [5, 16, 37, 300])
def test_softmax_nan_and_inf_anywhere_in_a_row_every_ew_impl(cy, ew_impl, dtype, cols):
    """The row maximum is vectorised with NaN tracked apart: a NaN in any lane, block or
    tail, with or without infinities in the row, makes the row as the reference's."""
    rng = np.random.default_rng(cols)
    rows = []
    for pos in sorted({0, 1, cols // 2, cols - 1, min(cols - 1, 17), min(cols - 1, 33)}):
        for extra in (None, np.inf, -np.inf):
            row = normal(rng, (cols,), dtype)
            if extra is not None:
                row[(pos + 3) % cols] = extra
            bad = row.copy()
            bad[pos] = np.nan
            rows += [bad, row]
    x = np.array(rows, dtype)
    with np.errstate(all="ignore"):
        expected = ref.softmax(x)
    got = cy.softmax(x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=ew_impl)
    assert_close(got, expected, dtype, err_msg=ew_impl)


@pytest.mark.parametrize("shape", [(7, 13), (40, 300)], ids=str)
def test_bias_column_sums_every_ew_impl(cy, ew_impl, dtype, threads, rng, shape):
    x = uniform(rng, shape, dtype)
    b = uniform(rng, shape[1:], dtype)
    assert_close(cy.bias_add(x, b), ref.bias_add(x, b), dtype, err_msg=ew_impl)
    assert_close(cy.column_sums(x), ref.column_sums(x), dtype, "reduction", err_msg=ew_impl)


@pytest.mark.parametrize("case", ["softmax", "gelu", "column_sums", "dense_forward",
                                  "dense_backward"])
def test_every_ew_impl_one_and_two_threads_bit_identical(cy, ew_impl, dtype, case):
    one = _flatten(_run_threads(1, _det_cases(np.random.default_rng(7), dtype)[case]))
    two = _flatten(_run_threads(2, _det_cases(np.random.default_rng(7), dtype)[case]))
    for r1, r2 in zip(one, two):
        np.testing.assert_array_equal(r1, r2, err_msg=ew_impl)


def test_tanh_vector_body_and_tail_bit_identical(cy, ew_impl, dtype, rng):
    """An element gets the same bits wherever it falls in a loop (no contraction
    of a * b + c into fma by the compiler in one path and not the other)."""
    x = normal(rng, (1, 301), dtype, scale=3.0)
    whole = cy.tanh(x)
    for start in (1, 3, 17):
        part = cy.tanh(np.ascontiguousarray(x[:, start:]))
        np.testing.assert_array_equal(part, whole[:, start:], err_msg=ew_impl)
    g = cy.gelu(x, approximate=True)
    np.testing.assert_array_equal(cy.gelu(np.ascontiguousarray(x[:, 5:]), approximate=True),
                                  g[:, 5:], err_msg=ew_impl)


# ============================================================== loss ISA variants
@pytest.fixture(params=_losses.available_impls())
def loss_impl(request):
    """Every loss variant this CPU runs ('base', 'avx2', 'avx512'); the variant in use
    before is restored afterwards."""
    with using_impl(_losses, request.param) as name:
        yield name


def test_loss_impls_listed():
    impls = _losses.available_impls()
    assert impls[0] == "base" and _losses.current_impl() in impls
    assert impls == _elementwise.available_impls()      # the same CPU checks
    assert kernels.build_info()["loss_impl"] == _losses.current_impl()
    with pytest.raises(ValueError):
        _losses.use_impl("sse9")


# a vector body and a scalar tail at every width; rows of 10 and 37
LOSS_IMPL_SHAPES = [(3, 37), (5, 10), (33, 129)]


@pytest.mark.parametrize("shape", LOSS_IMPL_SHAPES, ids=str)
@pytest.mark.parametrize("name, kw", LOSS_CASES, ids=LOSS_IDS)
def test_loss_every_loss_impl(cy, loss_impl, dtype, threads, rng, name, kw, shape):
    y_true, y_pred = _loss_inputs(rng, name, kw, shape, dtype)
    assert_close(getattr(cy, name)(y_true, y_pred, **kw),
                 getattr(ref, name)(y_true, y_pred, **kw), dtype, "reduction",
                 err_msg=loss_impl)
    assert_close(getattr(cy, "backprop_" + name)(y_true, y_pred, **kw),
                 getattr(ref, "backprop_" + name)(y_true, y_pred, **kw), dtype,
                 "reduction", err_msg=loss_impl)


@pytest.mark.parametrize("shape", LOSS_IMPL_SHAPES, ids=str)
def test_sparse_and_fused_every_loss_impl(cy, loss_impl, dtype, threads, rng, shape):
    n, c = shape
    labels = rng.integers(0, c, size=n)
    logits = normal(rng, shape, dtype, 3.0)
    y = np.eye(c, dtype=dtype)[labels]
    probs = ref.softmax(logits)
    for got, expected in [
            (cy.sparse_softmax_crossentropy(labels, logits),
             ref.sparse_softmax_crossentropy(labels, logits)),
            (cy.softmax_crossentropy(y, logits), ref.softmax_crossentropy(y, logits)),
            ((cy.sparse_categorical_crossentropy(labels, probs),
              cy.backprop_sparse_categorical_crossentropy(labels, probs)),
             (ref.sparse_categorical_crossentropy(labels, probs),
              ref.backprop_sparse_categorical_crossentropy(labels, probs)))]:
        for g, e in zip(got, expected):
            assert_close(g, e, dtype, "reduction", err_msg=loss_impl)


@pytest.mark.parametrize("case", ["mse", "bce", "cce", "softmax_xent", "sparse_softmax_xent",
                                  "sparse_cce"])
def test_every_loss_impl_one_and_two_threads_bit_identical(cy, loss_impl, dtype, case):
    one = _flatten(_run_threads(1, _det_cases(np.random.default_rng(7), dtype)[case]))
    two = _flatten(_run_threads(2, _det_cases(np.random.default_rng(7), dtype)[case]))
    for r1, r2 in zip(one, two):
        np.testing.assert_array_equal(r1, r2, err_msg=loss_impl)


def test_loss_gradient_vector_body_and_tail_bit_identical(cy, loss_impl, dtype, rng):
    """An element's gradient gets the same bits wherever it falls in a loop (no
    contraction into fma by the compiler in one path and not the other)."""
    t = uniform(rng, (1, 301), dtype, 0.0, 1.0)
    z = normal(rng, (1, 301), dtype, 3.0)
    for name, kw in [("binary_crossentropy", {"from_logits": True}),
                     ("huber", {"delta": 0.5}), ("mean_squared_error", {})]:
        whole = getattr(cy, "backprop_" + name)(t, z, **kw)
        for shift in (1, 3, 17):     # the same elements at other places in the loop
            moved = getattr(cy, "backprop_" + name)(np.roll(t, shift, axis=1),
                                                    np.roll(z, shift, axis=1), **kw)
            np.testing.assert_array_equal(moved, np.roll(whole, shift, axis=1),
                                          err_msg=f"{loss_impl} {name}")


# =========================================================== thread-count determinism
def _run_threads(n, fn):
    old_n = kernels.get_num_threads()
    old_min = _threads.set_min_parallel_work(1)
    kernels.set_num_threads(n)
    try:
        return fn()
    finally:
        kernels.set_num_threads(old_n)
        _threads.set_min_parallel_work(old_min)


def _det_cases(rng, dtype):
    a = uniform(rng, (150, 170), dtype)
    b = uniform(rng, (170, 90), dtype)
    x = uniform(rng, (300, 70), dtype)
    t = uniform(rng, (300, 70), dtype, 0.0, 1.0)
    y = np.eye(70, dtype=dtype)[rng.integers(0, 70, 300)]
    lab = rng.integers(0, 70, 300)
    wide = uniform(rng, (50, 200), dtype)
    w0 = normal(rng, (20000,), dtype)
    g = normal(rng, (20000,), dtype)
    w_d = uniform(rng, (70, 40), dtype)

    def adam():
        w, m, v, vh = w0.copy(), np.zeros_like(w0), np.zeros_like(w0), np.zeros_like(w0)
        for step in (1, 2, 3):
            cy = kernels.get_backend("cython")
            cy.adam_update(w, g, m, v, step=step, amsgrad=True, v_hat=vh, weight_decay=0.01)
        return w, m, v, vh

    def rmsprop():
        w, v, mom, mg = w0.copy(), np.zeros_like(w0), np.zeros_like(w0), np.zeros_like(w0)
        kernels.get_backend("cython").rmsprop_update(w, g, v, momentum=0.9, centered=True,
                                                     mom=mom, mg=mg)
        return w, v, mom, mg

    cy = kernels.get_backend("cython")
    return {
        "gemm": lambda: cy.gemm(a, b),
        "gemm_TT": lambda: cy.gemm(b, a, trans_a=True, trans_b=True),
        "column_sums": lambda: cy.column_sums(wide),
        "mse": lambda: (cy.mean_squared_error(t, x), cy.backprop_mean_squared_error(t, x)),
        "bce": lambda: cy.binary_crossentropy(t, x, from_logits=True),
        "cce": lambda: (cy.categorical_crossentropy(y, x, from_logits=True),
                        cy.categorical_crossentropy(y, t + 0.01)),
        "softmax_xent": lambda: cy.softmax_crossentropy(y, x),
        "sparse_softmax_xent": lambda: cy.sparse_softmax_crossentropy(lab, x),
        "sparse_cce": lambda: cy.sparse_categorical_crossentropy(lab, t + 0.01),
        "softmax": lambda: cy.softmax(x),
        "gelu": lambda: cy.gelu(x),
        "dense_forward": lambda: cy.dense_forward(x, w_d, w_d[0], activation="tanh"),
        "dense_backward": lambda: cy.dense_backward(uniform(np.random.default_rng(1),
                                                            (300, 40), dtype),
                                                    x, w_d, cy.tanh(x @ w_d),
                                                    activation="tanh"),
        "adam": adam,
        "rmsprop": rmsprop,
    }


DET_NAMES = ["gemm", "gemm_TT", "column_sums", "mse", "bce", "cce", "softmax_xent",
             "sparse_softmax_xent", "sparse_cce", "softmax", "gelu", "dense_forward",
             "dense_backward", "adam", "rmsprop"]


def _flatten(result):
    if isinstance(result, (tuple, list)):
        out = []
        for r in result:
            out.extend(_flatten(r))
        return out
    return [np.asarray(result)]


@pytest.mark.parametrize("case", DET_NAMES)
def test_one_and_two_threads_bit_identical(cy, dtype, case):
    rng1 = np.random.default_rng(7)
    rng2 = np.random.default_rng(7)
    one = _flatten(_run_threads(1, _det_cases(rng1, dtype)[case]))
    two = _flatten(_run_threads(2, _det_cases(rng2, dtype)[case]))
    assert len(one) == len(two)
    for r1, r2 in zip(one, two):
        np.testing.assert_array_equal(r1, r2)
    # and not merely identical: right
    if case == "gemm":
        rng3 = np.random.default_rng(7)
        a = uniform(rng3, (150, 170), dtype)
        b = uniform(rng3, (170, 90), dtype)
        assert_close(one[0], ref.gemm(a, b), dtype, "gemm", k=170)


def test_threads_fixture_takes_threaded_path(threads):
    assert kernels.get_num_threads() == threads
    old = _threads.set_min_parallel_work(1)
    assert old == 1
    _threads.set_min_parallel_work(old)


# ================================================================ NaN, alpha = 0
@pytest.mark.parametrize("name, kw", ACT_CASES, ids=ACT_IDS)
def test_activation_nan_propagates_like_reference(cy, dtype, threads, name, kw):
    x = np.array([[np.nan, -1.0, 0.5, 2.0], [-3.0, 0.25, np.nan, 1.0]], dtype)
    with np.errstate(invalid="ignore"):
        expected = getattr(ref, name)(x, **kw)
        got = getattr(cy, name)(x, **kw)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    assert_close(got, expected, dtype, _act_kind(name))
    dy = np.array([[1.0, np.nan, 1.0, 1.0], [1.0, 1.0, 1.0, -1.0]], dtype)
    saved = x if name == "gelu" else expected
    with np.errstate(invalid="ignore"):
        d_expected = getattr(ref, "backprop_" + name)(dy, saved, **kw)
        d_got = getattr(cy, "backprop_" + name)(dy, saved, **kw)
    np.testing.assert_array_equal(np.isnan(d_got), np.isnan(d_expected))
    assert_close(d_got, d_expected, dtype, _act_kind(name))


@pytest.mark.parametrize("name, kw", LOSS_CASES, ids=LOSS_IDS)
def test_loss_nan_propagates_like_reference(cy, dtype, threads, rng, name, kw):
    y_true, y_pred = _loss_inputs(rng, name, kw, (7, 13), dtype)
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
# tests/test_fuzz_kernels.py; the concrete values pin the rule the reference documents.

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


# ==================================================== concurrent calls from threads
def test_concurrent_python_threads_get_the_sequential_results(cy, rng):
    """The kernels release the GIL: calls from several Python threads at once (each
    possibly starting its own OpenMP team) give the results of sequential calls."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = []
    for i in range(12):
        dtype = (np.float32, np.float64)[i % 2]
        a = uniform(rng, (90 + i, 70), dtype)
        b = uniform(rng, (70, 60 + i), dtype)
        t = uniform(rng, (90 + i, 70), dtype, 0.0, 1.0)
        jobs.append((a, b, t))

    def work(job):
        a, b, t = job
        w, g = a.copy(), t.copy()
        m, v = np.zeros_like(w), np.zeros_like(w)
        cy.adam_update(w, g, m, v, step=1)
        return [cy.gemm(a, b), cy.column_sums(a), cy.softmax(a),
                np.asarray(cy.binary_crossentropy(t, a, from_logits=True)), w]

    sequential = _run_threads(2, lambda: [work(j) for j in jobs])

    def concurrent():
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(work, jobs))

    parallel = _run_threads(2, concurrent)
    for seq, par in zip(sequential, parallel):
        for s, p in zip(seq, par):
            np.testing.assert_array_equal(s, p)


@pytest.mark.parametrize("shape", [(3, 600, 17), (10, 300, 128), (5, 70, 300), (1, 33, 40),
                                   (17, 5, 3)])
@pytest.mark.parametrize("activation", ["softmax", "gelu", "tanh", "relu"])
def test_dense_fused_paths_small_batches(cy, dtype, threads, rng, shape, activation):
    """The fused GEMM epilogue takes different routes for few rows, few columns and
    whole-row ownership (softmax); each must still apply bias and activation."""
    n, n_in, units = shape
    x = normal(rng, (n, n_in), dtype)
    w = normal(rng, (n_in, units), dtype, 0.1)
    b = normal(rng, (units,), dtype)
    pre = np.empty((n, units), dtype)
    y = cy.dense_forward(x, w, b, activation=activation, pre_activation=pre)
    e_pre = np.empty_like(pre)
    e_y = ref.dense_forward(x, w, b, activation=activation, pre_activation=e_pre)
    assert_close(pre, e_pre, dtype, "gemm", k=n_in, scale=float(np.abs(x).max() * np.abs(w).max()))
    assert_close(y, e_y, dtype, "gemm", k=n_in, scale=float(np.abs(x).max() * np.abs(w).max()))
    dy = normal(rng, (n, units), dtype)
    got = cy.dense_backward(dy, x, w, y, activation=activation, pre_activation=pre)
    exp = ref.dense_backward(dy, x, w, e_y, activation=activation, pre_activation=e_pre)
    for g, e in zip(got, exp):
        assert_close(g, e, dtype, "gemm", k=max(n, n_in, units),
                     scale=float(np.abs(e).max()) + 1.0)
