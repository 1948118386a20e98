"""Every per-ISA variant of the elementwise, loss, normalisation and convolution kernels
(base, avx2, avx512 where the CPU has them, the GEMM's under the convolutions too)
against the reference.

Every comparison runs for float32 and float64 and (through the ``threads`` fixture)
with 1 and 2 kernel threads, the parallel threshold lowered to 1 element so that the
threaded code paths run even on small shapes.  Tolerances come from conftest's table.
"""

import numpy as np
import pytest

import kernels
from kernels.cpu import elementwise as _elementwise, losses as _losses
from kernels.cpu import conv as _conv, normalization as _normalization
from kernels import reference as ref

from kernel_cases import (ACT_CASES, ACT_IDS, LOSS_CASES, LOSS_IDS, act_kind, det_cases,
                          flatten, loss_inputs, run_threads)
from kernel_helpers import act_fp_context, assert_close, normal, uniform, using_impl

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
    with act_fp_context(name):
        expected = getattr(ref, name)(x, **kw)
    got = getattr(cy, name)(x, **kw)
    assert_close(got, expected, dtype, act_kind(name), err_msg=ew_impl)
    saved = x if name in ref.ACTIVATIONS_NEEDING_INPUT else expected
    dy = normal(rng, shape, dtype)
    with act_fp_context(name):
        d_expected = getattr(ref, "backprop_" + name)(dy, saved, **kw)
    d_got = getattr(cy, "backprop_" + name)(dy, saved, **kw)
    assert_close(d_got, d_expected, dtype, act_kind(name), err_msg=ew_impl)


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
    one = flatten(run_threads(1, det_cases(np.random.default_rng(7), dtype)[case]))
    two = flatten(run_threads(2, det_cases(np.random.default_rng(7), dtype)[case]))
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
    y_true, y_pred = loss_inputs(rng, name, kw, shape, dtype)
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
    one = flatten(run_threads(1, det_cases(np.random.default_rng(7), dtype)[case]))
    two = flatten(run_threads(2, det_cases(np.random.default_rng(7), dtype)[case]))
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


# ======================================================= normalisation ISA variants

@pytest.fixture(params=_normalization.available_impls())
def norm_impl(request):
    """Every normalisation variant this CPU runs; the one in use is restored after."""
    with using_impl(_normalization, request.param) as name:
        yield name


def test_norm_impls_listed():
    impls = _normalization.available_impls()
    assert impls[0] == "base" and _normalization.current_impl() == impls[-1]


@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (5, 37), (64, 300)], ids=str)
def test_layer_norm_every_norm_impl(cy, norm_impl, dtype, threads, rng, shape):
    x = normal(rng, shape, dtype, scale=3.0) + dtype.type(2.0)
    dy = normal(rng, shape, dtype)
    gamma, beta = normal(rng, shape[-1:], dtype), normal(rng, shape[-1:], dtype)
    assert_close(cy.layer_norm_forward(x, gamma, beta), ref.layer_norm_forward(x, gamma, beta),
                 dtype, "reduction", err_msg=norm_impl)
    for got, exp in zip(cy.layer_norm_backward(dy, x, gamma),
                        ref.layer_norm_backward(dy, x, gamma)):
        assert_close(got, exp, dtype, "reduction", err_msg=norm_impl,
                     scale=float(np.sqrt(shape[0])))


# ================================================ convolution: GEMM x conv variants

@pytest.fixture(params=_conv.available_impls())
def conv_impl(request):
    """Every convolution variant this CPU runs (col2im, depthwise); restored after."""
    with using_impl(_conv, request.param) as name:
        yield name


def test_conv_impls_listed():
    impls = _conv.available_impls()
    assert impls[0] == "base" and _conv.current_impl() == impls[-1]


# (shape of x, kernel, strides, padding, activation): long runs (32 channels) read in
# place by the runs micro-kernel, short ones packed through the offsets table, padding
# (packed panels next to in-place ones), a partial last micro-panel
CONV_ISA_CASES = [((3, 9, 9, 32), (3, 3, 32, 20), 1, "valid", "relu"),
                  ((2, 8, 7, 16), (3, 3, 16, 40), 1, "same", "tanh"),
                  ((2, 11, 10, 1), (3, 3, 1, 32), 1, "valid", "relu"),
                  ((2, 9, 9, 8), (2, 3, 8, 12), 2, "same", "linear")]


@pytest.mark.parametrize("xs, ws, strides, padding, activation", CONV_ISA_CASES,
                         ids=[f"{c[0]}-{c[3]}" for c in CONV_ISA_CASES])
def test_conv2d_every_gemm_and_conv_impl(cy, gemm_impl, conv_impl, dtype, rng, xs, ws,
                                         strides, padding, activation):
    """The patch-operand GEMM of every GEMM variant (its runs micro-kernel and the
    packing of P and P^T) with every conv variant's col2im, against the reference."""
    x, w = normal(rng, xs, dtype), normal(rng, ws, dtype, scale=0.3)
    b = normal(rng, ws[-1:], dtype)
    kw = dict(strides=strides, padding=padding, activation=activation)
    y = cy.conv2d_forward(x, w, b, **kw)
    k = ws[0] * ws[1] * ws[2]
    assert_close(y, ref.conv2d_forward(x, w, b, **kw), dtype, "gemm", k=k, scale=3.0,
                 err_msg=f"{gemm_impl}/{conv_impl}")
    dy = normal(rng, y.shape, dtype)
    got = cy.conv2d_backward(dy, x, w, y, **kw)
    for g, e, name in zip(got, ref.conv2d_backward(dy, x, w, y, **kw), ("dx", "dw", "db")):
        assert_close(g, e, dtype, "gemm", k=y.size // y.shape[-1], scale=3.0,
                     err_msg=f"{gemm_impl}/{conv_impl} {name}")
