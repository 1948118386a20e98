"""Activations and their backprops, bias add and column sums: the cython kernels
against the reference for every layout, shape and thread count, and the reference
against formulas at extreme inputs.

Every comparison runs for float32 and float64 and (through the ``threads`` fixture)
with 1 and 2 kernel threads, the parallel threshold lowered to 1 element so that the
threaded code paths run even on small shapes.  Tolerances come from conftest's table.
"""
import math

import numpy as np
import pytest

from kernels import reference as ref

from kernel_cases import ACT_CASES, ACT_IDS, act_kind
from kernel_helpers import (act_fp_context, LAYOUTS, Guarded, assert_close, check_out,
                            no_fp_warnings, normal, uniform, with_layout)

# ======================================================================== activations
ACT_SHAPES = [(1,), (1, 1), (7, 13), (3, 5, 7), (130, 150)]


def _saved(name, kw, x):
    """What the backprop takes: the output y, or the input x (the table says which)."""
    return x if name in ref.ACTIVATIONS_NEEDING_INPUT else getattr(ref, name)(x, **kw)


@pytest.mark.parametrize("shape", ACT_SHAPES, ids=str)
@pytest.mark.parametrize("name, kw", ACT_CASES, ids=ACT_IDS)
def test_activation_forward(cy, dtype, threads, rng, name, kw, shape):
    x = normal(rng, shape, dtype, scale=3.0)
    x0 = x.copy()
    expected = getattr(ref, name)(x, **kw)
    got = getattr(cy, name)(x, **kw)
    assert_close(got, expected, dtype, act_kind(name))
    np.testing.assert_array_equal(x, x0)
    # in place
    res = getattr(cy, name)(x, out=x, **kw)
    check_out(res, x)
    assert_close(x, expected, dtype, act_kind(name))


@pytest.mark.parametrize("shape", ACT_SHAPES, ids=str)
@pytest.mark.parametrize("name, kw", ACT_CASES, ids=ACT_IDS)
def test_activation_backprop(cy, dtype, threads, rng, name, kw, shape):
    x = normal(rng, shape, dtype, scale=3.0)
    saved = _saved(name, kw, x)
    dy = normal(rng, shape, dtype)
    dy0, saved0 = dy.copy(), saved.copy()
    expected = getattr(ref, "backprop_" + name)(dy, saved, **kw)
    got = getattr(cy, "backprop_" + name)(dy, saved, **kw)
    assert_close(got, expected, dtype, act_kind(name))
    np.testing.assert_array_equal(dy, dy0)
    np.testing.assert_array_equal(saved, saved0)
    # in place over dy, then over the saved array
    res = getattr(cy, "backprop_" + name)(dy, saved, out=dy, **kw)
    check_out(res, dy)
    assert_close(dy, expected, dtype, act_kind(name))
    res = getattr(cy, "backprop_" + name)(dy0.copy(), saved, out=saved, **kw)
    check_out(res, saved)
    assert_close(saved, expected, dtype, act_kind(name))


# each input layout paired with a different output layout
LAYOUT_OUT_PAIRS = list(zip(LAYOUTS, LAYOUTS[1:] + LAYOUTS[:1]))


@pytest.mark.parametrize("x_layout, out_layout", LAYOUT_OUT_PAIRS,
                         ids=[f"{x}-out{o}" for x, o in LAYOUT_OUT_PAIRS])
@pytest.mark.parametrize("name, kw", ACT_CASES, ids=ACT_IDS)
def test_activation_layouts_and_out(cy, dtype, two_threads, rng, name, kw, x_layout, out_layout):
    x_c = normal(rng, (7, 13), dtype, scale=3.0)
    dy_c = normal(rng, (7, 13), dtype)
    kind = act_kind(name)
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
    check_out(res, out.view)
    assert_close(res, y_exp, dtype, kind, err_msg=f"forward out {out_layout}")
    assert out.guard_ok()
    out = Guarded((7, 13), dtype, out_layout)
    res = bwd(dy, saved, out=out.view, **kw)
    check_out(res, out.view)
    assert_close(res, dx_exp, dtype, kind, err_msg=f"backprop out {out_layout}")
    assert out.guard_ok()
    np.testing.assert_array_equal(x, x_c)
    # in place on the strided array itself
    res = fwd(x, out=x, **kw)
    check_out(res, x)
    assert_close(x, y_exp, dtype, kind, err_msg="forward in place")
    res = bwd(dy, saved, out=dy, **kw)
    check_out(res, dy)
    assert_close(dy, dx_exp, dtype, kind, err_msg="backprop in place")


EXTREMES = [-1000.0, -100.0, -30.0, -10.0, -1.0, -0.1, 0.0, 0.1, 1.0, 10.0, 30.0, 100.0,
            1000.0]


@pytest.mark.parametrize("name, kw", ACT_CASES, ids=ACT_IDS)
def test_activation_extreme_values(cy, dtype, threads, name, kw):
    """Finite results at large |x| (exponential: inf exactly where exp overflows)."""
    x = np.array([EXTREMES, EXTREMES[::-1]], dtype)
    overflows = name == "exponential"
    with act_fp_context(name):
        expected = getattr(ref, name)(x, **kw)
        got = getattr(cy, name)(x, **kw)
    if overflows:
        np.testing.assert_array_equal(np.isinf(got), x > np.log(np.finfo(dtype).max))
    else:
        assert np.isfinite(expected).all() and np.isfinite(got).all()
    assert_close(got, expected, dtype, act_kind(name))
    saved = x if name in ref.ACTIVATIONS_NEEDING_INPUT else expected
    dy = np.ones_like(x)
    with act_fp_context(name):
        d_expected = getattr(ref, "backprop_" + name)(dy, saved, **kw)
        d_got = getattr(cy, "backprop_" + name)(dy, saved, **kw)
    assert overflows or (np.isfinite(d_expected).all() and np.isfinite(d_got).all())
    assert_close(d_got, d_expected, dtype, act_kind(name))


@pytest.mark.parametrize("x", [30.0, -30.0, 88.0, -88.0, 700.0, -700.0])
def test_sigmoid_softplus_saturate_without_overflow(backend, dtype, x):
    arr = np.array([x], dtype)
    with no_fp_warnings():
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
        check_out(res, out.view)
        assert_close(res, expected, dtype, err_msg=out_layout)
        assert out.guard_ok()
    res = cy.bias_add(x, b_c, out=x)                      # in place
    check_out(res, x)
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
        check_out(res, out.view)
        assert_close(res, expected, dtype, "gemm", k=shape[0], err_msg=out_layout)
        assert out.guard_ok()
    np.testing.assert_array_equal(x, x_c)


def test_column_sums_by_hand(backend, dtype):
    x = np.array([[1, 2, 3], [4, 5, 6]], dtype)
    np.testing.assert_array_equal(backend.column_sums(x), np.array([5, 7, 9], dtype))


def test_exp_of_large_inputs_overflows_as_the_reference(cy, dtype, threads):
    """exponential and backprop_log_softmax take libm's exp for inputs past 88 (the
    float32 polynomial stops at exp(88)), and the vectorised polynomial otherwise."""
    x = np.array([[1.0, 87.9, 88.5, 89.0, 700.0, 710.0, -3.0, 0.0]] * 3, dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        np.testing.assert_array_equal(np.isinf(cy.exponential(x)),
                                      np.isinf(ref.exponential(x)))
        assert_close(cy.exponential(x), ref.exponential(x), dtype)
        dy = np.full_like(x, 0.5)
        dy[:, 0] = 0.0           # sum(dy) != 0: exp(y) * sum(dy) overflows where exp does
        expected = ref.backprop_log_softmax(dy, x)
        got = cy.backprop_log_softmax(dy, x)
    np.testing.assert_array_equal(np.isinf(got), np.isinf(expected))
    finite = np.isfinite(expected)
    assert_close(got[finite], expected[finite], dtype, "reduction")
