"""GEMM: the cython kernel against the reference for every transpose, layout, alpha/beta,
shape and thread count; BLAS semantics (alpha == 0, beta == 0), bad calls.

Every comparison runs for float32 and float64 and (through the ``threads`` fixture)
with 1 and 2 kernel threads, the parallel threshold lowered to 1 element so that the
threaded code paths run even on small shapes.  Tolerances come from conftest's table.
"""

import numpy as np
import pytest

from kernels.cpu import gemm as _gemm
from kernels import reference as ref

from kernel_helpers import (TRANS, TRANS_IDS, Guarded, assert_close, check_out,
                            uniform, with_layout)

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
    check_out(got, out.view)
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
    check_out(got, out.view)
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
    check_out(got, out.view)
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
