"""The dense layer passes: dense_forward / dense_backward of the cython backend
against the reference, every activation, layout and (need_dx, use_bias) combination.

Every comparison runs for float32 and float64 and (through the ``threads`` fixture)
with 1 and 2 kernel threads, the parallel threshold lowered to 1 element so that the
threaded code paths run even on small shapes.  Tolerances come from conftest's table.
"""

import numpy as np
import pytest

from kernels import reference as ref

from kernel_helpers import (Guarded, assert_close, check_out,
                            uniform, with_layout)

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
    check_out(res, out.view)
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
    needs_input = activation in ref.ACTIVATIONS_NEEDING_INPUT
    saved_kw = {"pre_activation": with_layout(z, x_layout)} if needs_input else {}
    e_dx, e_dw, e_db = ref.dense_backward(dy, x, w, y, activation=activation,
                                          pre_activation=z if needs_input else None)
    dx, dw, db = cy.dense_backward(with_layout(dy, x_layout), xs, ws, with_layout(y, x_layout),
                                   activation=activation, **saved_kw)
    assert_close(dx, e_dx, dtype, "gemm", k=units, scale=2.0)
    assert_close(dw, e_dw, dtype, "gemm", k=n, scale=2.0)
    assert_close(db, e_db, dtype, "gemm", k=n, scale=2.0)


# every activation with dx and bias, plus one of the other (need_dx, use_bias) combos
# in turn (all four appear for several activations); those whose backprop takes the
# input get a second one
_OTHER_FLAGS = [(True, False), (False, True), (False, False)]
DENSE_BACKWARD_CASES = [(act, True, True) for act in ACTIVATIONS] + [
    (act, *_OTHER_FLAGS[i % 3]) for i, act in enumerate(ACTIVATIONS)] + [
    (act, *_OTHER_FLAGS[(i + 2) % 3]) for i, act in enumerate(ACTIVATIONS)
    if act in ref.ACTIVATIONS_NEEDING_INPUT] + [("relu", False, False)]


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
        dz = getattr(ref, "backprop_" + activation)(
            dy, z if activation in ref.ACTIVATIONS_NEEDING_INPUT else y)
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
        check_out(r_dw, g_dw.view)
        assert_close(r_dw, e_dw, dtype, "gemm", k=n, scale=2.0, err_msg=msg)
        if need_dx:
            check_out(r_dx, g_dx.view)
            assert_close(r_dx, e_dx, dtype, "gemm", k=units, scale=2.0, err_msg=msg)
        else:
            assert r_dx is None
        if use_bias:
            check_out(r_db, g_db.view)
            assert_close(r_db, e_db, dtype, "gemm", k=n, scale=2.0, err_msg=msg)
        else:
            assert r_db is None
        assert g_dw.guard_ok() and g_dx.guard_ok() and g_db.guard_ok()
        for a, a0 in zip((dy, x, w, y, z), inputs0):
            np.testing.assert_array_equal(a, a0)
