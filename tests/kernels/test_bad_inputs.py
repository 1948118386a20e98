"""Bad arguments raise TypeError/ValueError whose message starts with the argument's name.

Every case runs on every CPU backend (they share ``kernels.checks``, so they must
accept and reject exactly the same calls); the convolution family's (``SPATIAL_CASES``)
on the cuda backend too.  A failed call leaves its arrays untouched.
A batch of random bad calls runs in a subprocess to show the interpreter survives.
"""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

F64 = np.float64
F32 = np.float32


def A(*shape, dtype=F64, value=None):
    """A deterministic array of ``shape`` (values in (0.1, 0.9), or all ``value``)."""
    if value is not None:
        return np.full(shape, value, dtype)
    n = int(np.prod(shape)) if shape else 1
    return (0.1 + 0.8 * (np.arange(n) % 7) / 7).reshape(shape).astype(dtype)


def read_only(x):
    x.flags.writeable = False
    return x


def _square_and_view():
    big = A(5, 5)
    return big[:4, :4], big[1:5, 1:5]          # a and an out overlapping it partially


def _labels(*values, dtype=np.int64):
    return np.array(values, dtype=dtype)


def I32(*shape, value=0, dtype=np.int32):
    """An index array (max pooling's argmax) of ``shape`` holding ``value``."""
    return np.full(shape, value, dtype)


def _int32_view(x, shape):
    """An int32 array of ``shape`` over the first bytes of the float array ``x``
    (zeroed: valid cell indices), to overlap an argmax with a float argument."""
    flat = x.reshape(-1).view(np.int32)[:int(np.prod(shape))]
    flat[...] = 0
    return flat.reshape(shape)


def _conv_out_is_pre_activation(B):
    out = A(1, 3, 3, 2)
    return B.conv2d_forward(A(1, 3, 3, 2), A(1, 1, 2, 2), None, out, pre_activation=out)


def _conv_db_in_dw(B):
    dw = A(1, 1, 2, 3)
    return B.conv2d_backward(A(1, 3, 3, 3), A(1, 3, 3, 2), A(1, 1, 2, 3), A(1, 3, 3, 3),
                             dw=dw, db=dw[0, 0, 0])


def _conv_dx_is_x(B):
    x = A(1, 3, 3, 2)
    return B.conv2d_backward(A(1, 3, 3, 3), x, A(1, 1, 2, 3), A(1, 3, 3, 3), dx=x)


def _conv1d_dx_is_dy(B):
    dy = A(1, 4, 2)
    return B.conv1d_backward(dy, A(1, 4, 2), A(1, 2, 2), A(1, 4, 2), dx=dy)


def _depthwise_out_overlaps_x(B):
    big = A(1, 4, 3, 2)
    return B.depthwise_conv2d_forward(big[:, :3], A(1, 1, 2, 1), None, big[:, 1:])


def _depthwise_dw_is_w(B):
    w = A(2, 2, 2, 1)
    return B.depthwise_conv2d_backward(A(1, 2, 2, 2), A(1, 3, 3, 2), w, A(1, 2, 2, 2), dw=w)


def _max_pool_argmax_in_x(B):
    x = A(1, 4, 4, 1)
    return B.max_pool2d_forward(x, None, _int32_view(x, (1, 2, 2, 1)))


def _max_pool_out_is_x(B):
    x = A(1, 2, 2, 1)
    return B.max_pool2d_forward(x, x, pool_size=1)


def _max_pool_dx_holds_argmax(B):
    dx = A(1, 4, 4, 1)
    return B.max_pool2d_backward(A(1, 2, 2, 1), _int32_view(dx, (1, 2, 2, 1)), dx)


def _avg_pool_out_overlaps_x(B):
    big = A(1, 5, 4, 1)
    return B.avg_pool2d_forward(big[:, :4], big[:, 3:5])


def _global_avg_out_in_x(B):
    x = A(2, 2, 2, 3)
    return B.global_avg_pool2d_forward(x, x[:, 0, 0])


def _global_max_argmax_in_out(B):
    out = A(2, 3)
    return B.global_max_pool2d_forward(A(2, 2, 2, 3), out, _int32_view(out, (2, 3)))


def _global_max_dx_is_dy(B):
    dx = A(1, 2, 2, 2)
    return B.global_max_pool2d_backward(dx[:, 0, 0], I32(1, 2), dx)


def _bn_moving_variance_is_mean(B):
    m = A(3)
    return B.batch_norm_forward(A(4, 3), None, None, m, m)


def _bn_out_is_gamma(B):
    out = A(1, 3)
    return B.batch_norm_forward(A(1, 3), out[0], None, None, None, out)


def _bn_inference_out_is_moving_mean(B):
    out = A(1, 3)
    return B.batch_norm_inference(A(1, 3), None, None, out[0], A(3), out)


def _bn_dbeta_is_dgamma(B):
    g = A(3)
    return B.batch_norm_backward(A(4, 3), A(4, 3), None, None, g, g)


def _bn_dx_is_gamma(B):
    dx = A(1, 3)
    return B.batch_norm_backward(A(1, 3), A(1, 3), dx[0], dx)


# (id, call taking the backend, exception type, argument name the message starts with)
CASES = [
    # ------------------------------------------------------------------ gemm
    ("gemm-a-1d", lambda B: B.gemm(A(3), A(3, 2)), ValueError, "a"),
    ("gemm-b-1d", lambda B: B.gemm(A(2, 3), A(3)), ValueError, "b"),
    ("gemm-a-3d", lambda B: B.gemm(A(2, 2, 3), A(3, 2)), ValueError, "a"),
    ("gemm-inner-dims", lambda B: B.gemm(A(2, 3), A(4, 2)), ValueError, "b"),
    ("gemm-inner-dims-trans", lambda B: B.gemm(A(2, 3), A(2, 3), trans_b=False), ValueError, "b"),
    ("gemm-inner-dims-trans_a", lambda B: B.gemm(A(2, 3), A(3, 2), trans_a=True), ValueError,
     "b"),
    ("gemm-int", lambda B: B.gemm(np.ones((2, 2), np.int64), A(2, 2)), TypeError, "a"),
    ("gemm-int-b", lambda B: B.gemm(A(2, 2), np.ones((2, 2), np.int32)), TypeError, "b"),
    ("gemm-float16", lambda B: B.gemm(A(2, 2, dtype=np.float16), A(2, 2)), TypeError, "a"),
    ("gemm-mixed-32-64", lambda B: B.gemm(A(2, 2, dtype=F32), A(2, 2)), TypeError, "b"),
    ("gemm-mixed-64-32", lambda B: B.gemm(A(2, 2), A(2, 2, dtype=F32)), TypeError, "b"),
    ("gemm-list", lambda B: B.gemm([[1.0, 2.0]], A(2, 2)), TypeError, "a"),
    ("gemm-list-b", lambda B: B.gemm(A(2, 2), [[1.0, 2.0], [3.0, 4.0]]), TypeError, "b"),
    ("gemm-scalar", lambda B: B.gemm(2.0, A(2, 2)), TypeError, "a"),
    ("gemm-empty", lambda B: B.gemm(np.zeros((0, 3)), A(3, 2)), ValueError, "a"),
    ("gemm-empty-b", lambda B: B.gemm(A(2, 3), np.zeros((3, 0))), ValueError, "b"),
    ("gemm-empty-k", lambda B: B.gemm(np.zeros((2, 0)), np.zeros((0, 2))), ValueError, "a"),
    ("gemm-out-shape", lambda B: B.gemm(A(2, 3), A(3, 4), A(4, 2)), ValueError, "out"),
    ("gemm-out-dtype", lambda B: B.gemm(A(2, 3), A(3, 4), A(2, 4, dtype=F32)), TypeError, "out"),
    ("gemm-out-int", lambda B: B.gemm(A(2, 3), A(3, 4), np.zeros((2, 4), int)), TypeError,
     "out"),
    ("gemm-out-list", lambda B: B.gemm(A(2, 3), A(3, 4), [[0.0] * 4] * 2), TypeError, "out"),
    ("gemm-out-readonly", lambda B: B.gemm(A(2, 3), A(3, 4), read_only(A(2, 4))), ValueError,
     "out"),
    ("gemm-out-is-a", lambda B: (lambda a: B.gemm(a, A(3, 3), a))(A(3, 3)), ValueError, "out"),
    ("gemm-out-is-b", lambda B: (lambda b: B.gemm(A(3, 3), b, b))(A(3, 3)), ValueError, "out"),
    ("gemm-out-is-a-transposed", lambda B: (lambda a: B.gemm(a, A(3, 3), a.T))(A(3, 3)),
     ValueError, "out"),
    ("gemm-out-overlaps-a", lambda B: (lambda av: B.gemm(av[0], A(4, 4), av[1]))(
        _square_and_view()), ValueError, "out"),
    ("gemm-beta-without-out", lambda B: B.gemm(A(2, 2), A(2, 2), beta=1.0), ValueError, "out"),
    ("gemm-alpha-nan", lambda B: B.gemm(A(2, 2), A(2, 2), alpha=np.nan), ValueError, "alpha"),
    ("gemm-alpha-inf", lambda B: B.gemm(A(2, 2), A(2, 2), alpha=np.inf), ValueError, "alpha"),
    ("gemm-beta-nan", lambda B: B.gemm(A(2, 2), A(2, 2), A(2, 2), beta=np.nan), ValueError,
     "beta"),
    ("gemm-alpha-str", lambda B: B.gemm(A(2, 2), A(2, 2), alpha="2"), TypeError, "alpha"),
    ("gemm-alpha-complex", lambda B: B.gemm(A(2, 2), A(2, 2), alpha=1j), TypeError, "alpha"),
    ("gemm-trans-int", lambda B: B.gemm(A(2, 2), A(2, 2), trans_a=1), TypeError, "trans_a"),
    ("gemm-trans-str", lambda B: B.gemm(A(2, 2), A(2, 2), trans_b="T"), TypeError, "trans_b"),
    # ------------------------------------------------------- bias, column sums
    ("bias-length", lambda B: B.bias_add(A(3, 4), A(3)), ValueError, "b"),
    ("bias-2d", lambda B: B.bias_add(A(3, 4), A(1, 4)), ValueError, "b"),
    ("bias-x-1d", lambda B: B.bias_add(A(4), A(4)), ValueError, "x"),
    ("bias-mixed", lambda B: B.bias_add(A(3, 4), A(4, dtype=F32)), TypeError, "b"),
    ("bias-list", lambda B: B.bias_add(A(3, 4), [0.0] * 4), TypeError, "b"),
    ("bias-empty", lambda B: B.bias_add(np.zeros((0, 4)), A(4)), ValueError, "x"),
    ("bias-out-is-b", lambda B: (lambda b: B.bias_add(A(4, 4), b, b.reshape(1, 4)))(A(4)),
     ValueError, "out"),
    ("bias-out-overlaps-x", lambda B: (lambda big: B.bias_add(big[:3], A(4), big[1:]))(A(4, 4)),
     ValueError, "out"),
    ("colsums-1d", lambda B: B.column_sums(A(5)), ValueError, "x"),
    ("colsums-out-shape", lambda B: B.column_sums(A(3, 4), A(3)), ValueError, "out"),
    ("colsums-out-in-x", lambda B: (lambda x: B.column_sums(x, x[0]))(A(4, 4)), ValueError,
     "out"),
    ("colsums-float16", lambda B: B.column_sums(A(3, 4, dtype=np.float16)), TypeError, "x"),
    # ------------------------------------------------------------ activations
    ("relu-list", lambda B: B.relu([1.0, -1.0]), TypeError, "x"),
    ("relu-int", lambda B: B.relu(np.arange(4)), TypeError, "x"),
    ("relu-bool", lambda B: B.relu(np.ones(4, bool)), TypeError, "x"),
    ("relu-complex", lambda B: B.relu(np.ones(4, complex)), TypeError, "x"),
    ("relu-float16", lambda B: B.relu(A(4, dtype=np.float16)), TypeError, "x"),
    ("relu-0d", lambda B: B.relu(np.array(1.0)), ValueError, "x"),
    ("relu-empty", lambda B: B.relu(np.zeros((0, 3))), ValueError, "x"),
    ("relu-out-shape", lambda B: B.relu(A(3, 4), A(4, 3)), ValueError, "out"),
    ("relu-out-dtype", lambda B: B.relu(A(3, 4), A(3, 4, dtype=F32)), TypeError, "out"),
    ("relu-out-readonly", lambda B: B.relu(A(3, 4), read_only(A(3, 4))), ValueError, "out"),
    ("relu-out-is-x-transposed", lambda B: (lambda x: B.relu(x, x.T))(A(3, 3)), ValueError,
     "out"),
    ("relu-out-overlaps-x", lambda B: (lambda big: B.relu(big[:4], big[1:]))(A(5, 3)),
     ValueError, "out"),
    ("leaky-slope-negative", lambda B: B.leaky_relu(A(3), negative_slope=-0.1), ValueError,
     "negative_slope"),
    ("leaky-slope-nan", lambda B: B.leaky_relu(A(3), negative_slope=np.nan), ValueError,
     "negative_slope"),
    ("leaky-slope-str", lambda B: B.leaky_relu(A(3), negative_slope="0.2"), TypeError,
     "negative_slope"),
    ("backprop-leaky-slope-inf", lambda B: B.backprop_leaky_relu(A(3), A(3),
                                                                  negative_slope=np.inf),
     ValueError, "negative_slope"),
    ("elu-alpha-zero", lambda B: B.elu(A(3), alpha=0.0), ValueError, "alpha"),
    ("elu-alpha-negative", lambda B: B.elu(A(3), alpha=-1.0), ValueError, "alpha"),
    ("backprop-elu-alpha-nan", lambda B: B.backprop_elu(A(3), A(3), alpha=np.nan), ValueError,
     "alpha"),
    ("gelu-approximate-str", lambda B: B.gelu(A(3), approximate="tanh"), TypeError,
     "approximate"),
    ("gelu-approximate-int", lambda B: B.gelu(A(3), approximate=1), TypeError, "approximate"),
    ("linear-list", lambda B: B.linear([0.0]), TypeError, "x"),
    ("sigmoid-empty", lambda B: B.sigmoid(np.zeros(0, F32)), ValueError, "x"),
    ("tanh-int8", lambda B: B.tanh(np.ones(3, np.int8)), TypeError, "x"),
    ("softmax-out-dtype", lambda B: B.softmax(A(2, 3), A(2, 3, dtype=F32)), TypeError, "out"),
    ("softplus-longdouble", lambda B: B.softplus(np.ones(3, np.longdouble)), TypeError, "x"),
    ("backprop-linear-shape", lambda B: B.backprop_linear(A(3), A(4)), ValueError, "y"),
    ("backprop-shape", lambda B: B.backprop_relu(A(3, 4), A(4, 3)), ValueError, "y"),
    ("backprop-mixed", lambda B: B.backprop_tanh(A(3, 4), A(3, 4, dtype=F32)), TypeError, "y"),
    ("backprop-dy-int", lambda B: B.backprop_sigmoid(np.ones((3, 4), int), A(3, 4)), TypeError,
     "dy"),
    ("backprop-gelu-shape", lambda B: B.backprop_gelu(A(3, 4), A(3, 5)), ValueError, "x"),
    ("backprop-softmax-list", lambda B: B.backprop_softmax(A(3), [0.1, 0.2, 0.7]), TypeError,
     "y"),
    ("backprop-out-shape", lambda B: B.backprop_softplus(A(3, 4), A(3, 4), A(3, 3)),
     ValueError, "out"),
    ("backprop-out-overlaps-dy", lambda B: (lambda big: B.backprop_relu(big[:4], A(4, 3),
                                                                        big[1:]))(A(5, 3)),
     ValueError, "out"),
    # relu's Keras parameters and the activations added with them
    ("relu-slope-negative", lambda B: B.relu(A(3), negative_slope=-0.5), ValueError,
     "negative_slope"),
    ("relu-slope-array", lambda B: B.relu(A(3), negative_slope=np.float32([0.0])), TypeError,
     "negative_slope"),
    ("relu-max-negative", lambda B: B.relu(A(3), max_value=-1.0), ValueError, "max_value"),
    ("relu-max-str", lambda B: B.relu(A(3), max_value="6"), TypeError, "max_value"),
    ("relu-threshold-nan", lambda B: B.relu(A(3), threshold=np.nan), ValueError, "threshold"),
    ("backprop-relu-threshold-negative", lambda B: B.backprop_relu(A(3), A(3), threshold=-1.0),
     ValueError, "threshold"),
    ("backprop-relu-params-shape", lambda B: B.backprop_relu(A(3), A(4), max_value=6.0),
     ValueError, "y"),
    ("relu6-int", lambda B: B.relu6(np.arange(3)), TypeError, "x"),
    ("backprop-relu6-shape", lambda B: B.backprop_relu6(A(3), A(4)), ValueError, "y"),
    ("selu-empty", lambda B: B.selu(np.zeros((2, 0))), ValueError, "x"),
    ("backprop-selu-mixed", lambda B: B.backprop_selu(A(3), A(3, dtype=F32)), TypeError, "y"),
    ("silu-out-shape", lambda B: B.silu(A(3, 4), A(4, 3)), ValueError, "out"),
    ("backprop-silu-shape", lambda B: B.backprop_silu(A(3), A(4)), ValueError, "x"),
    ("hard-sigmoid-list", lambda B: B.hard_sigmoid([0.5]), TypeError, "x"),
    ("backprop-hard-sigmoid-out", lambda B: B.backprop_hard_sigmoid(A(3), A(3), A(4)),
     ValueError, "out"),
    ("hard-silu-0d", lambda B: B.hard_silu(np.array(1.0)), ValueError, "x"),
    ("backprop-hard-silu-list", lambda B: B.backprop_hard_silu(A(3), [1.0, 2.0, 3.0]),
     TypeError, "x"),
    ("mish-bool", lambda B: B.mish(np.ones(3, bool)), TypeError, "x"),
    ("backprop-mish-dy-int", lambda B: B.backprop_mish(np.ones(3, int), A(3)), TypeError, "dy"),
    ("exponential-readonly-out", lambda B: B.exponential(A(3), read_only(A(3))), ValueError,
     "out"),
    ("backprop-exponential-shape", lambda B: B.backprop_exponential(A(2, 3), A(3, 2)),
     ValueError, "y"),
    ("softsign-float16", lambda B: B.softsign(A(3, dtype=np.float16)), TypeError, "x"),
    ("backprop-softsign-mixed", lambda B: B.backprop_softsign(A(3, dtype=F32), A(3)),
     TypeError, "y"),
    ("log-softmax-empty", lambda B: B.log_softmax(np.zeros((0, 3))), ValueError, "x"),
    ("backprop-log-softmax-out-dtype", lambda B: B.backprop_log_softmax(
        A(2, 3), A(2, 3), A(2, 3, dtype=F32)), TypeError, "out"),
    # layer normalisation
    ("layer-norm-int", lambda B: B.layer_norm_forward(np.arange(6).reshape(2, 3)), TypeError,
     "x"),
    ("layer-norm-gamma-length", lambda B: B.layer_norm_forward(A(2, 3), A(4)), ValueError,
     "gamma"),
    ("layer-norm-beta-dtype", lambda B: B.layer_norm_forward(A(2, 3), None, A(3, dtype=F32)),
     TypeError, "beta"),
    ("layer-norm-epsilon-zero", lambda B: B.layer_norm_forward(A(2, 3), epsilon=0.0),
     ValueError, "epsilon"),
    ("layer-norm-out-is-gamma", lambda B: (lambda g: B.layer_norm_forward(
        A(1, 3), g, None, g.reshape(1, 3)))(A(3)), ValueError, "out"),
    ("layer-norm-backward-shape", lambda B: B.layer_norm_backward(A(2, 3), A(3, 2)),
     ValueError, "x"),
    ("layer-norm-backward-dgamma-shape", lambda B: B.layer_norm_backward(
        A(2, 3), A(2, 3), None, None, A(4)), ValueError, "dgamma"),
    ("layer-norm-backward-dbeta-is-dgamma", lambda B: (lambda g: B.layer_norm_backward(
        A(2, 3), A(2, 3), None, None, g, g))(A(3)), ValueError, "dbeta"),
    ("layer-norm-backward-epsilon-str", lambda B: B.layer_norm_backward(
        A(2, 3), A(2, 3), epsilon="1e-3"), TypeError, "epsilon"),
    # embedding
    ("embedding-id-too-large", lambda B: B.embedding_forward(np.array([0, 4]), A(4, 2)),
     ValueError, "ids"),
    ("embedding-id-negative", lambda B: B.embedding_forward(np.array([[-1]]), A(4, 2)),
     ValueError, "ids"),
    ("embedding-id-fraction", lambda B: B.embedding_forward(np.array([0.5]), A(4, 2)),
     ValueError, "ids"),
    ("embedding-id-nan", lambda B: B.embedding_forward(np.array([np.nan]), A(4, 2)),
     ValueError, "ids"),
    ("embedding-id-huge-uint", lambda B: B.embedding_forward(
        np.array([2**64 - 1], np.uint64), A(4, 2)), ValueError, "ids"),
    ("embedding-ids-str", lambda B: B.embedding_forward(np.array(["a"]), A(4, 2)),
     TypeError, "ids"),
    ("embedding-ids-list", lambda B: B.embedding_forward([0, 1], A(4, 2)), TypeError, "ids"),
    ("embedding-ids-empty", lambda B: B.embedding_forward(np.zeros(0, int), A(4, 2)),
     ValueError, "ids"),
    ("embedding-table-1d", lambda B: B.embedding_forward(np.array([0]), A(4)), ValueError,
     "table"),
    ("embedding-out-shape", lambda B: B.embedding_forward(np.array([0, 1]), A(4, 2), A(2, 3)),
     ValueError, "out"),
    ("embedding-backward-dy-shape", lambda B: B.embedding_backward(
        A(3, 2), np.array([0, 1]), A(4, 2)), ValueError, "dy"),
    ("embedding-backward-dtable-none", lambda B: B.embedding_backward(
        A(2, 2), np.array([0, 1]), None), TypeError, "dtable"),
    ("embedding-backward-dtable-dtype", lambda B: B.embedding_backward(
        A(2, 2), np.array([0, 1]), A(4, 2, dtype=F32)), TypeError, "dtable"),
    ("embedding-backward-id-range", lambda B: B.embedding_backward(
        A(2, 2), np.array([0, 4]), A(4, 2)), ValueError, "ids"),
    ("embedding-backward-dtable-is-dy", lambda B: (lambda t: B.embedding_backward(
        t, np.array([0, 1, 2, 3]), t))(A(4, 2)), ValueError, "dtable"),
    # ------------------------------------------------------------ dense layer
    ("dense-w-rows", lambda B: B.dense_forward(A(3, 4), A(5, 2)), ValueError, "w"),
    ("dense-w-1d", lambda B: B.dense_forward(A(3, 4), A(4)), ValueError, "w"),
    ("dense-bias-length", lambda B: B.dense_forward(A(3, 4), A(4, 2), A(3)), ValueError, "b"),
    ("dense-mixed", lambda B: B.dense_forward(A(3, 4), A(4, 2, dtype=F32)), TypeError, "w"),
    ("dense-activation-unknown", lambda B: B.dense_forward(A(3, 4), A(4, 2), activation="swish"),
     ValueError, "activation"),
    ("dense-activation-none", lambda B: B.dense_forward(A(3, 4), A(4, 2), activation=None),
     ValueError, "activation"),
    ("dense-activation-callable", lambda B: B.dense_forward(A(3, 4), A(4, 2),
                                                            activation=np.tanh),
     ValueError, "activation"),
    ("dense-out-shape", lambda B: B.dense_forward(A(3, 4), A(4, 2), None, A(2, 3)), ValueError,
     "out"),
    ("dense-out-is-x", lambda B: (lambda x: B.dense_forward(x, A(4, 4), None, x))(A(4, 4)),
     ValueError, "out"),
    ("dense-pre-shape", lambda B: B.dense_forward(A(3, 4), A(4, 2), pre_activation=A(3, 3)),
     ValueError, "pre_activation"),
    ("dense-pre-is-out", lambda B: (lambda o: B.dense_forward(A(3, 4), A(4, 2), None, o,
                                                              pre_activation=o))(A(3, 2)),
     ValueError, "pre_activation"),
    ("dense-backward-gelu-no-pre", lambda B: B.dense_backward(A(3, 2), A(3, 4), A(4, 2), A(3, 2),
                                                              activation="gelu"),
     ValueError, "pre_activation"),
    ("dense-backward-w-cols", lambda B: B.dense_backward(A(3, 2), A(3, 4), A(4, 3), A(3, 2)),
     ValueError, "w"),
    ("dense-backward-x-shape", lambda B: B.dense_backward(A(3, 2), A(2, 4), A(4, 2), A(3, 2)),
     ValueError, "x"),
    ("dense-backward-y-shape", lambda B: B.dense_backward(A(3, 2), A(3, 4), A(4, 2), A(2, 3)),
     ValueError, "y"),
    ("dense-backward-activation", lambda B: B.dense_backward(A(3, 2), A(3, 4), A(4, 2), A(3, 2),
                                                             activation="Relu"),
     ValueError, "activation"),
    ("dense-backward-dw-shape", lambda B: B.dense_backward(A(3, 2), A(3, 4), A(4, 2), A(3, 2),
                                                           dw=A(2, 4)), ValueError, "dw"),
    ("dense-backward-db-dtype", lambda B: B.dense_backward(A(3, 2), A(3, 4), A(4, 2), A(3, 2),
                                                           db=A(2, dtype=F32)), TypeError, "db"),
    ("dense-backward-dx-is-dy", lambda B: (lambda d: B.dense_backward(d, A(3, 3), A(3, 3),
                                                                      A(3, 3), dx=d))(A(3, 3)),
     ValueError, "dx"),
    ("dense-backward-need_dx", lambda B: B.dense_backward(A(3, 2), A(3, 4), A(4, 2), A(3, 2),
                                                          need_dx="no"), TypeError, "need_dx"),
    ("dense-backward-use_bias", lambda B: B.dense_backward(A(3, 2), A(3, 4), A(4, 2), A(3, 2),
                                                           use_bias=0), TypeError, "use_bias"),
    # ----------------------------------------------------------------- losses
    # Keras's other losses
    ("hinge-shape", lambda B: B.hinge(A(3, 4), A(3, 5)), ValueError, "y_true"),
    ("backprop-hinge-out", lambda B: B.backprop_hinge(A(3), A(3), A(4)), ValueError, "out"),
    ("squared-hinge-mixed", lambda B: B.squared_hinge(A(3, dtype=F32), A(3)), TypeError,
     "y_true"),
    ("backprop-squared-hinge-weights", lambda B: B.backprop_squared_hinge(
        A(3), A(3), sample_weight=A(4)), ValueError, "sample_weight"),
    ("poisson-3d", lambda B: B.poisson(A(2, 2, 2), A(2, 2, 2)), ValueError, "y_pred"),
    ("backprop-poisson-int", lambda B: B.backprop_poisson(A(3), np.arange(3)), TypeError,
     "y_pred"),
    ("log-cosh-list", lambda B: B.log_cosh([1.0], A(1)), TypeError, "y_true"),
    ("backprop-log-cosh-readonly", lambda B: B.backprop_log_cosh(A(3), A(3), read_only(A(3))),
     ValueError, "out"),
    ("mape-empty", lambda B: B.mean_absolute_percentage_error(np.zeros(0), np.zeros(0)),
     ValueError, "y_pred"),
    ("backprop-mape-shape", lambda B: B.backprop_mean_absolute_percentage_error(A(3), A(4)),
     ValueError, "y_true"),
    ("msle-weights-2d", lambda B: B.mean_squared_logarithmic_error(
        A(3, 2), A(3, 2), sample_weight=A(3, 2)), ValueError, "sample_weight"),
    ("backprop-msle-mixed", lambda B: B.backprop_mean_squared_logarithmic_error(
        A(3), A(3, dtype=F32)), TypeError, "y_true"),
    ("kld-shape", lambda B: B.kl_divergence(A(2, 3), A(3, 2)), ValueError, "y_true"),
    ("backprop-kld-out-dtype", lambda B: B.backprop_kl_divergence(A(3), A(3), A(3, dtype=F32)),
     TypeError, "out"),
    ("categorical-hinge-1d", lambda B: B.categorical_hinge(A(3), A(3)), ValueError, "y_pred"),
    ("backprop-categorical-hinge-out-is-y-true", lambda B: (
        lambda t: B.backprop_categorical_hinge(t, A(2, 3), t))(A(2, 3)), ValueError, "out"),
    ("cosine-1d", lambda B: B.cosine_similarity(A(4), A(4)), ValueError, "y_pred"),
    ("backprop-cosine-shape", lambda B: B.backprop_cosine_similarity(A(2, 3), A(2, 4)),
     ValueError, "y_true"),
    ("mse-shape", lambda B: B.mean_squared_error(A(3, 4), A(3, 5)), ValueError, "y_true"),
    ("mse-1d-vs-2d", lambda B: B.mean_squared_error(A(4), A(4, 1)), ValueError, "y_true"),
    ("mse-mixed", lambda B: B.mean_squared_error(A(3, dtype=F32), A(3)), TypeError, "y_true"),
    ("mse-int-pred", lambda B: B.mean_squared_error(A(3), np.arange(3)), TypeError, "y_pred"),
    ("mse-3d", lambda B: B.mean_squared_error(A(2, 2, 2), A(2, 2, 2)), ValueError, "y_pred"),
    ("mse-list", lambda B: B.mean_squared_error([1.0], A(1)), TypeError, "y_true"),
    ("mse-empty", lambda B: B.mean_squared_error(np.zeros(0), np.zeros(0)), ValueError,
     "y_pred"),
    ("mse-grad-mixed", lambda B: B.backprop_mean_squared_error(A(3), A(3, dtype=F32)),
     TypeError, "y_true"),
    ("mae-shape", lambda B: B.mean_absolute_error(A(3, 1), A(1, 3)), ValueError, "y_true"),
    ("mae-grad-out-shape", lambda B: B.backprop_mean_absolute_error(A(3, 4), A(3, 4), A(4, 3)),
     ValueError, "out"),
    ("mae-grad-out-readonly", lambda B: B.backprop_mean_absolute_error(
        A(3, 4), A(3, 4), read_only(A(3, 4))), ValueError, "out"),
    ("huber-delta-zero", lambda B: B.huber(A(3), A(3), delta=0.0), ValueError, "delta"),
    ("huber-delta-negative", lambda B: B.huber(A(3), A(3), delta=-1.0), ValueError, "delta"),
    ("huber-delta-nan", lambda B: B.backprop_huber(A(3), A(3), delta=np.nan), ValueError,
     "delta"),
    ("huber-delta-none", lambda B: B.huber(A(3), A(3), delta=None), TypeError, "delta"),
    ("bce-from_logits-int", lambda B: B.binary_crossentropy(A(3), A(3), from_logits=1),
     TypeError, "from_logits"),
    ("bce-grad-shape", lambda B: B.backprop_binary_crossentropy(A(3), A(4)), ValueError,
     "y_true"),
    ("cce-1d", lambda B: B.categorical_crossentropy(A(4), A(4)), ValueError, "y_pred"),
    ("cce-shape", lambda B: B.backprop_categorical_crossentropy(A(3, 4), A(3, 5)), ValueError,
     "y_true"),
    ("cce-from_logits-str", lambda B: B.categorical_crossentropy(A(3, 4), A(3, 4),
                                                                 from_logits="yes"),
     TypeError, "from_logits"),
    ("fused-logits-1d", lambda B: B.softmax_crossentropy(A(4), A(4)), ValueError, "logits"),
    ("fused-shape", lambda B: B.softmax_crossentropy(A(3, 4), A(3, 5)), ValueError, "y_true"),
    ("fused-mixed", lambda B: B.softmax_crossentropy(A(3, 4), A(3, 4, dtype=F32)), TypeError,
     "y_true"),
    ("fused-out-shape", lambda B: B.softmax_crossentropy(A(3, 4), A(3, 4), A(3, 5)),
     ValueError, "out"),
    # ----------------------------------------------------------- sparse labels
    ("sparse-label-too-big", lambda B: B.sparse_categorical_crossentropy(_labels(0, 4, 1),
                                                                         A(3, 4)),
     ValueError, "y_true"),
    ("sparse-label-negative", lambda B: B.sparse_categorical_crossentropy(_labels(0, -1, 1),
                                                                          A(3, 4)),
     ValueError, "y_true"),
    ("sparse-label-nan", lambda B: B.sparse_categorical_crossentropy(
        _labels(0, np.nan, 1, dtype=F64), A(3, 4)), ValueError, "y_true"),
    ("sparse-label-inf", lambda B: B.backprop_sparse_categorical_crossentropy(
        _labels(0, np.inf, 1, dtype=F32), A(3, 4)), ValueError, "y_true"),
    ("sparse-label-fraction", lambda B: B.sparse_categorical_crossentropy(
        _labels(0, 1.5, 1, dtype=F64), A(3, 4)), ValueError, "y_true"),
    ("sparse-label-huge-float", lambda B: B.sparse_categorical_crossentropy(
        _labels(0, 1e30, 1, dtype=F64), A(3, 4)), ValueError, "y_true"),
    ("sparse-label-count", lambda B: B.sparse_categorical_crossentropy(_labels(0, 1), A(3, 4)),
     ValueError, "y_true"),
    ("sparse-label-2-columns", lambda B: B.sparse_categorical_crossentropy(
        np.zeros((3, 2), int), A(3, 4)), ValueError, "y_true"),
    ("sparse-label-list", lambda B: B.sparse_categorical_crossentropy([0, 1, 2], A(3, 4)),
     TypeError, "y_true"),
    ("sparse-label-bool", lambda B: B.sparse_categorical_crossentropy(
        np.array([True, False, True]), A(3, 4)), TypeError, "y_true"),
    ("sparse-label-str", lambda B: B.sparse_categorical_crossentropy(
        np.array(["0", "1", "2"]), A(3, 4)), TypeError, "y_true"),
    ("sparse-pred-1d", lambda B: B.sparse_categorical_crossentropy(_labels(0, 1, 2), A(3)),
     ValueError, "y_pred"),
    ("sparse-pred-int", lambda B: B.sparse_categorical_crossentropy(
        _labels(0, 1, 2), np.ones((3, 4), int)), TypeError, "y_pred"),
    ("sparse-grad-out-dtype", lambda B: B.backprop_sparse_categorical_crossentropy(
        _labels(0, 1, 2), A(3, 4), A(3, 4, dtype=F32)), TypeError, "out"),
    ("sparse-fused-label-too-big", lambda B: B.sparse_softmax_crossentropy(
        _labels(0, 9, 1, dtype=np.int32), A(3, 4)), ValueError, "y_true"),
    ("sparse-fused-label-fraction", lambda B: B.sparse_softmax_crossentropy(
        np.array([[0.0], [0.5], [1.0]]), A(3, 4)), ValueError, "y_true"),
    ("sparse-fused-logits-1d", lambda B: B.sparse_softmax_crossentropy(_labels(0, 1, 2), A(3)),
     ValueError, "logits"),
    ("sparse-fused-out-shape", lambda B: B.sparse_softmax_crossentropy(_labels(0, 1, 2),
                                                                       A(3, 4), A(4, 3)),
     ValueError, "out"),
    # ------------------------------------------------------------- optimizers
    ("sgd-lr-nan", lambda B: B.sgd_update(A(3), A(3), learning_rate=np.nan), ValueError,
     "learning_rate"),
    ("sgd-lr-inf", lambda B: B.sgd_update(A(3), A(3), learning_rate=np.inf), ValueError,
     "learning_rate"),
    ("sgd-lr-negative", lambda B: B.sgd_update(A(3), A(3), learning_rate=-0.1), ValueError,
     "learning_rate"),
    ("sgd-lr-str", lambda B: B.sgd_update(A(3), A(3), learning_rate="0.1"), TypeError,
     "learning_rate"),
    ("sgd-lr-bool", lambda B: B.sgd_update(A(3), A(3), learning_rate=True), TypeError,
     "learning_rate"),
    ("sgd-momentum-without-m", lambda B: B.sgd_update(A(3), A(3), momentum=0.9), ValueError,
     "m"),
    ("sgd-momentum-above-1", lambda B: B.sgd_update(A(3), A(3), A(3), momentum=1.5),
     ValueError, "momentum"),
    ("sgd-momentum-negative", lambda B: B.sgd_update(A(3), A(3), A(3), momentum=-0.5),
     ValueError, "momentum"),
    ("sgd-nesterov-int", lambda B: B.sgd_update(A(3), A(3), A(3), momentum=0.9, nesterov=1),
     TypeError, "nesterov"),
    ("sgd-weight-decay-negative", lambda B: B.sgd_update(A(3), A(3), weight_decay=-1.0),
     ValueError, "weight_decay"),
    ("sgd-g-shape", lambda B: B.sgd_update(A(3, 2), A(2, 3)), ValueError, "g"),
    ("sgd-g-mixed", lambda B: B.sgd_update(A(3), A(3, dtype=F32)), TypeError, "g"),
    ("sgd-w-int", lambda B: B.sgd_update(np.zeros(3, int), A(3)), TypeError, "w"),
    ("sgd-w-list", lambda B: B.sgd_update([1.0, 2.0], A(2)), TypeError, "w"),
    ("sgd-w-empty", lambda B: B.sgd_update(np.zeros(0), np.zeros(0)), ValueError, "w"),
    ("sgd-w-readonly", lambda B: B.sgd_update(read_only(A(3)), A(3)), ValueError, "w"),
    ("sgd-m-shape", lambda B: B.sgd_update(A(3), A(3), A(4), momentum=0.9), ValueError, "m"),
    ("sgd-m-is-w", lambda B: (lambda w: B.sgd_update(w, A(3), w, momentum=0.9))(A(3)),
     ValueError, "w"),
    ("sgd-g-is-w", lambda B: (lambda w: B.sgd_update(w, w))(A(3)), ValueError, "w"),
    ("adam-beta_1-one", lambda B: B.adam_update(A(3), A(3), A(3), A(3), step=1, beta_1=1.0),
     ValueError, "beta_1"),
    ("adam-beta_1-negative", lambda B: B.adam_update(A(3), A(3), A(3), A(3), step=1,
                                                     beta_1=-0.1), ValueError, "beta_1"),
    ("adam-beta_2-above-1", lambda B: B.adam_update(A(3), A(3), A(3), A(3), step=1,
                                                    beta_2=1.5), ValueError, "beta_2"),
    ("adam-epsilon-negative", lambda B: B.adam_update(A(3), A(3), A(3), A(3), step=1,
                                                      epsilon=-1.0), ValueError, "epsilon"),
    ("adam-epsilon-nan", lambda B: B.adam_update(A(3), A(3), A(3), A(3), step=1,
                                                 epsilon=np.nan), ValueError, "epsilon"),
    ("adam-lr-nan", lambda B: B.adam_update(A(3), A(3), A(3), A(3), step=1,
                                            learning_rate=np.nan), ValueError, "learning_rate"),
    ("adam-step-zero", lambda B: B.adam_update(A(3), A(3), A(3), A(3), step=0), ValueError,
     "step"),
    ("adam-step-negative", lambda B: B.adam_update(A(3), A(3), A(3), A(3), step=-2), ValueError,
     "step"),
    ("adam-step-float", lambda B: B.adam_update(A(3), A(3), A(3), A(3), step=1.5), TypeError,
     "step"),
    ("adam-step-bool", lambda B: B.adam_update(A(3), A(3), A(3), A(3), step=True), TypeError,
     "step"),
    ("adam-step-none", lambda B: B.adam_update(A(3), A(3), A(3), A(3), step=None), TypeError,
     "step"),
    ("adam-amsgrad-without-v_hat", lambda B: B.adam_update(A(3), A(3), A(3), A(3), step=1,
                                                           amsgrad=True),
     ValueError, "v_hat"),
    ("adam-amsgrad-int", lambda B: B.adam_update(A(3), A(3), A(3), A(3), step=1, amsgrad=1,
                                                 v_hat=A(3)), TypeError, "amsgrad"),
    ("adam-v_hat-shape", lambda B: B.adam_update(A(3), A(3), A(3), A(3), step=1, amsgrad=True,
                                                 v_hat=A(4)), ValueError, "v_hat"),
    ("adam-m-is-v", lambda B: (lambda m: B.adam_update(A(3), A(3), m, m, step=1))(A(3)),
     ValueError, "m"),
    ("adam-v-dtype", lambda B: B.adam_update(A(3), A(3), A(3), A(3, dtype=F32), step=1),
     TypeError, "v"),
    ("adam-m-none", lambda B: B.adam_update(A(3), A(3), None, A(3), step=1), TypeError, "m"),
    ("adamw-weight-decay-nan", lambda B: B.adamw_update(A(3), A(3), A(3), A(3), step=1,
                                                        weight_decay=np.nan),
     ValueError, "weight_decay"),
    ("rmsprop-centered-without-mg", lambda B: B.rmsprop_update(A(3), A(3), A(3), centered=True),
     ValueError, "mg"),
    ("rmsprop-momentum-without-mom", lambda B: B.rmsprop_update(A(3), A(3), A(3), momentum=0.5),
     ValueError, "mom"),
    ("rmsprop-rho-above-1", lambda B: B.rmsprop_update(A(3), A(3), A(3), rho=1.1), ValueError,
     "rho"),
    ("rmsprop-rho-nan", lambda B: B.rmsprop_update(A(3), A(3), A(3), rho=np.nan), ValueError,
     "rho"),
    ("rmsprop-epsilon-negative", lambda B: B.rmsprop_update(A(3), A(3), A(3), epsilon=-1e-7),
     ValueError, "epsilon"),
    ("rmsprop-mg-shape", lambda B: B.rmsprop_update(A(3), A(3), A(3), centered=True, mg=A(2)),
     ValueError, "mg"),
    ("rmsprop-v-readonly", lambda B: B.rmsprop_update(A(3), A(3), read_only(A(3))), ValueError,
     "v"),
    ("adagrad-acc-shape", lambda B: B.adagrad_update(A(3), A(3), A(4)), ValueError, "acc"),
    ("adagrad-acc-is-g", lambda B: (lambda g: B.adagrad_update(A(3), g, g))(A(3)), ValueError,
     "acc"),
    ("adagrad-lr-negative", lambda B: B.adagrad_update(A(3), A(3), A(3), learning_rate=-1.0),
     ValueError, "learning_rate"),
    ("adagrad-epsilon-inf", lambda B: B.adagrad_update(A(3), A(3), A(3), epsilon=np.inf),
     ValueError, "epsilon"),
]

# The convolution family (convolution, pooling, batch normalisation): run on the cuda
# backend too (on the host arrays its validation sees, as the CPU backends').
SPATIAL_CASES = [
    # -------------------------------------------------------------- convolution
    ("conv2d-x-3d", lambda B: B.conv2d_forward(A(3, 3, 2), A(1, 1, 2, 2)), ValueError, "x"),
    ("conv2d-x-5d", lambda B: B.conv2d_forward(A(1, 1, 3, 3, 2), A(1, 1, 2, 2)), ValueError,
     "x"),
    ("conv2d-x-list", lambda B: B.conv2d_forward([[[[1.0, 2.0]]]], A(1, 1, 2, 2)), TypeError,
     "x"),
    ("conv2d-x-int", lambda B: B.conv2d_forward(np.ones((1, 3, 3, 2), np.int64),
                                                A(1, 1, 2, 2)), TypeError, "x"),
    ("conv2d-x-empty", lambda B: B.conv2d_forward(np.zeros((0, 3, 3, 2)), A(1, 1, 2, 2)),
     ValueError, "x"),
    ("conv2d-w-3d", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(1, 2, 2)), ValueError, "w"),
    ("conv2d-w-none", lambda B: B.conv2d_forward(A(1, 3, 3, 2), None), TypeError, "w"),
    ("conv2d-mixed-w", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(1, 1, 2, 2, dtype=F32)),
     TypeError, "w"),
    ("conv2d-mixed-b", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(1, 1, 2, 2),
                                                  A(2, dtype=F32)), TypeError, "b"),
    ("conv2d-w-channels", lambda B: B.conv2d_forward(A(1, 3, 3, 3), A(1, 1, 2, 2)), ValueError,
     "w"),
    ("conv2d-w-channels-per-group", lambda B: B.conv2d_forward(A(1, 3, 3, 4), A(1, 1, 4, 2),
                                                               groups=2), ValueError, "w"),
    ("conv2d-groups-not-dividing", lambda B: B.conv2d_forward(A(1, 3, 3, 4), A(1, 1, 2, 3),
                                                              groups=3), ValueError, "groups"),
    ("conv2d-groups-filters", lambda B: B.conv2d_forward(A(1, 3, 3, 4), A(1, 1, 2, 3),
                                                         groups=2), ValueError, "w"),
    ("conv2d-groups-negative", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(1, 1, 2, 2),
                                                          groups=-1), ValueError, "groups"),
    ("conv2d-groups-float", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(1, 1, 2, 2),
                                                       groups=1.0), TypeError, "groups"),
    ("conv2d-padding-upper", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(1, 1, 2, 2),
                                                        padding="SAME"), ValueError, "padding"),
    ("conv2d-padding-int", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(1, 1, 2, 2), padding=1),
     ValueError, "padding"),
    ("conv2d-padding-causal", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(1, 1, 2, 2),
                                                         padding="causal"),
     ValueError, "padding"),
    ("conv2d-strides-negative", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(1, 1, 2, 2),
                                                           strides=(1, -1)),
     ValueError, "strides"),
    ("conv2d-strides-one-of-two", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(1, 1, 2, 2),
                                                             strides=(2,)),
     ValueError, "strides"),
    ("conv2d-strides-str", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(1, 1, 2, 2),
                                                      strides="2"), TypeError, "strides"),
    ("conv2d-strides-bool", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(1, 1, 2, 2),
                                                       strides=True), TypeError, "strides"),
    ("conv2d-dilation-zero", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(1, 1, 2, 2),
                                                        dilation_rate=0),
     ValueError, "dilation_rate"),
    ("conv2d-dilation-float-in-tuple", lambda B: B.conv2d_forward(
        A(1, 3, 3, 2), A(1, 1, 2, 2), dilation_rate=(1, 2.0)), TypeError, "dilation_rate"),
    ("conv2d-valid-output-empty", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(2, 4, 2, 2)),
     ValueError, "x"),
    ("conv2d-valid-output-empty-dilated", lambda B: B.conv2d_forward(
        A(1, 4, 4, 1), A(2, 2, 1, 1), dilation_rate=(1, 4)), ValueError, "x"),
    ("conv2d-b-2d", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(1, 1, 2, 2), A(1, 2)),
     ValueError, "b"),
    ("conv2d-activation-none", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(1, 1, 2, 2),
                                                          activation=None),
     ValueError, "activation"),
    ("conv2d-out-readonly", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(1, 1, 2, 2), None,
                                                       read_only(A(1, 3, 3, 2))),
     ValueError, "out"),
    ("conv2d-out-dtype", lambda B: B.conv2d_forward(A(1, 3, 3, 2), A(1, 1, 2, 2), None,
                                                    A(1, 3, 3, 2, dtype=F32)), TypeError, "out"),
    ("conv2d-out-list", lambda B: B.conv2d_forward(A(1, 1, 1, 2), A(1, 1, 2, 2), None,
                                                   [[[[0.0, 0.0]]]]), TypeError, "out"),
    ("conv2d-pre-activation-shape", lambda B: B.conv2d_forward(
        A(1, 3, 3, 2), A(1, 1, 2, 2), pre_activation=A(1, 3, 3, 3)),
     ValueError, "pre_activation"),
    ("conv2d-pre-activation-is-out", _conv_out_is_pre_activation, ValueError,
     "pre_activation"),
    ("conv2d-backward-dy-3d", lambda B: B.conv2d_backward(A(3, 3, 3), A(1, 3, 3, 2),
                                                          A(1, 1, 2, 3), A(1, 3, 3, 3)),
     ValueError, "dy"),
    ("conv2d-backward-mixed-dy", lambda B: B.conv2d_backward(
        A(1, 3, 3, 3, dtype=F32), A(1, 3, 3, 2), A(1, 1, 2, 3), A(1, 3, 3, 3)),
     TypeError, "dy"),
    ("conv2d-backward-dy-shape-strided", lambda B: B.conv2d_backward(
        A(1, 3, 3, 3), A(1, 3, 3, 2), A(1, 1, 2, 3), A(1, 3, 3, 3), strides=2),
     ValueError, "dy"),
    ("conv2d-backward-y-none", lambda B: B.conv2d_backward(A(1, 3, 3, 3), A(1, 3, 3, 2),
                                                           A(1, 1, 2, 3), None),
     TypeError, "y"),
    ("conv2d-backward-silu-without-pre", lambda B: B.conv2d_backward(
        A(1, 3, 3, 3), A(1, 3, 3, 2), A(1, 1, 2, 3), A(1, 3, 3, 3), activation="silu"),
     ValueError, "pre_activation"),
    ("conv2d-backward-pre-activation-shape", lambda B: B.conv2d_backward(
        A(1, 3, 3, 3), A(1, 3, 3, 2), A(1, 1, 2, 3), None, activation="mish",
        pre_activation=A(1, 3, 3, 2)), ValueError, "pre_activation"),
    ("conv2d-backward-groups-not-dividing", lambda B: B.conv2d_backward(
        A(1, 3, 3, 2), A(1, 3, 3, 3), A(1, 1, 1, 2), A(1, 3, 3, 2), groups=2),
     ValueError, "groups"),
    ("conv2d-backward-dw-readonly", lambda B: B.conv2d_backward(
        A(1, 3, 3, 3), A(1, 3, 3, 2), A(1, 1, 2, 3), A(1, 3, 3, 3),
        dw=read_only(A(1, 1, 2, 3))), ValueError, "dw"),
    ("conv2d-backward-dw-shape", lambda B: B.conv2d_backward(
        A(1, 3, 3, 3), A(1, 3, 3, 2), A(1, 1, 2, 3), A(1, 3, 3, 3), dw=A(1, 1, 3, 2)),
     ValueError, "dw"),
    ("conv2d-backward-db-in-dw", _conv_db_in_dw, ValueError, "db"),
    ("conv2d-backward-dx-is-x", _conv_dx_is_x, ValueError, "dx"),
    ("conv2d-backward-dx-dtype", lambda B: B.conv2d_backward(
        A(1, 3, 3, 3), A(1, 3, 3, 2), A(1, 1, 2, 3), A(1, 3, 3, 3),
        dx=A(1, 3, 3, 2, dtype=F32)), TypeError, "dx"),
    ("conv2d-backward-need-dx-str", lambda B: B.conv2d_backward(
        A(1, 3, 3, 3), A(1, 3, 3, 2), A(1, 1, 2, 3), A(1, 3, 3, 3), need_dx="no"),
     TypeError, "need_dx"),
    ("conv2d-backward-use-bias-int", lambda B: B.conv2d_backward(
        A(1, 3, 3, 3), A(1, 3, 3, 2), A(1, 1, 2, 3), A(1, 3, 3, 3), use_bias=0),
     TypeError, "use_bias"),
    ("conv2d-backward-valid-output-empty", lambda B: B.conv2d_backward(
        A(1, 1, 1, 3), A(1, 1, 3, 2), A(2, 1, 2, 3), A(1, 1, 1, 3)), ValueError, "x"),
    # x and w fit in memory, the output (dy's shape) would not: named by dy, an argument
    # of the backward (there is no out)
    ("conv2d-backward-output-beyond-memory", lambda B: B.conv2d_backward(
        A(1, 1, 1, 1), A(2**20, 1, 1, 1), A(1, 1, 1, 2**20), A(1, 1, 1, 1)),
     ValueError, "dy"),
    ("conv1d-x-4d", lambda B: B.conv1d_forward(A(1, 1, 4, 2), A(1, 2, 2)), ValueError, "x"),
    ("conv1d-w-4d", lambda B: B.conv1d_forward(A(1, 4, 2), A(1, 1, 2, 2)), ValueError, "w"),
    ("conv1d-mixed-w", lambda B: B.conv1d_forward(A(1, 4, 2, dtype=F32), A(1, 2, 2)),
     TypeError, "w"),
    ("conv1d-w-channels", lambda B: B.conv1d_forward(A(1, 4, 2), A(1, 3, 2)), ValueError, "w"),
    ("conv1d-groups-not-dividing", lambda B: B.conv1d_forward(A(1, 4, 3), A(1, 1, 2),
                                                              groups=2), ValueError, "groups"),
    ("conv1d-padding-full", lambda B: B.conv1d_forward(A(1, 4, 2), A(2, 2, 2), padding="full"),
     ValueError, "padding"),
    ("conv1d-strides-two-values", lambda B: B.conv1d_forward(A(1, 4, 2), A(1, 2, 2),
                                                             strides=(1, 1)),
     ValueError, "strides"),
    ("conv1d-dilation-list-str", lambda B: B.conv1d_forward(A(1, 4, 2), A(1, 2, 2),
                                                            dilation_rate=["2"]),
     TypeError, "dilation_rate"),
    ("conv1d-valid-output-empty", lambda B: B.conv1d_forward(A(1, 4, 2), A(5, 2, 2)),
     ValueError, "x"),
    ("conv1d-out-shape", lambda B: B.conv1d_forward(A(1, 4, 2), A(2, 2, 3), None, A(1, 4, 3)),
     ValueError, "out"),
    ("conv1d-backward-dy-shape-causal", lambda B: B.conv1d_backward(
        A(1, 3, 2), A(1, 4, 2), A(2, 2, 2), A(1, 3, 2), padding="causal"),
     ValueError, "dy"),
    ("conv1d-backward-x-2d", lambda B: B.conv1d_backward(A(1, 4, 2), A(4, 2), A(1, 2, 2),
                                                         A(1, 4, 2)), ValueError, "x"),
    ("conv1d-backward-mixed-y", lambda B: B.conv1d_backward(
        A(1, 4, 2), A(1, 4, 2), A(1, 2, 2), A(1, 4, 2, dtype=F32)), TypeError, "y"),
    ("conv1d-backward-dx-is-dy", _conv1d_dx_is_dy, ValueError, "dx"),
    ("conv1d-backward-db-readonly", lambda B: B.conv1d_backward(
        A(1, 4, 2), A(1, 4, 2), A(1, 2, 2), A(1, 4, 2), db=read_only(A(2))),
     ValueError, "db"),
    ("depthwise-x-3d", lambda B: B.depthwise_conv2d_forward(A(3, 3, 2), A(1, 1, 2, 1)),
     ValueError, "x"),
    ("depthwise-w-3d", lambda B: B.depthwise_conv2d_forward(A(1, 3, 3, 2), A(1, 1, 2)),
     ValueError, "w"),
    ("depthwise-w-channels", lambda B: B.depthwise_conv2d_forward(A(1, 3, 3, 2),
                                                                  A(1, 1, 1, 2)),
     ValueError, "w"),
    ("depthwise-mixed-w", lambda B: B.depthwise_conv2d_forward(A(1, 3, 3, 2),
                                                               A(1, 1, 2, 1, dtype=F32)),
     TypeError, "w"),
    ("depthwise-b-per-input-channel", lambda B: B.depthwise_conv2d_forward(
        A(1, 3, 3, 2), A(1, 1, 2, 3), A(2)), ValueError, "b"),
    ("depthwise-strides-zero", lambda B: B.depthwise_conv2d_forward(
        A(1, 3, 3, 2), A(1, 1, 2, 1), strides=(0, 1)), ValueError, "strides"),
    ("depthwise-dilation-str", lambda B: B.depthwise_conv2d_forward(
        A(1, 3, 3, 2), A(1, 1, 2, 1), dilation_rate="1"), TypeError, "dilation_rate"),
    ("depthwise-valid-output-empty", lambda B: B.depthwise_conv2d_forward(
        A(1, 3, 3, 2), A(2, 2, 2, 1), dilation_rate=3), ValueError, "x"),
    ("depthwise-padding-none", lambda B: B.depthwise_conv2d_forward(
        A(1, 3, 3, 2), A(1, 1, 2, 1), padding=None), ValueError, "padding"),
    ("depthwise-out-overlaps-x", _depthwise_out_overlaps_x, ValueError, "out"),
    ("depthwise-backward-dw-is-w", _depthwise_dw_is_w, ValueError, "dw"),
    ("depthwise-backward-db-shape", lambda B: B.depthwise_conv2d_backward(
        A(1, 3, 3, 4), A(1, 3, 3, 2), A(1, 1, 2, 2), A(1, 3, 3, 4), db=A(2)),
     ValueError, "db"),
    ("depthwise-backward-dy-channels", lambda B: B.depthwise_conv2d_backward(
        A(1, 3, 3, 2), A(1, 3, 3, 2), A(1, 1, 2, 2), A(1, 3, 3, 2)), ValueError, "dy"),
    ("depthwise-backward-gelu-without-pre", lambda B: B.depthwise_conv2d_backward(
        A(1, 3, 3, 2), A(1, 3, 3, 2), A(1, 1, 2, 1), A(1, 3, 3, 2), activation="gelu"),
     ValueError, "pre_activation"),
    ("depthwise-backward-need-dx-none", lambda B: B.depthwise_conv2d_backward(
        A(1, 3, 3, 2), A(1, 3, 3, 2), A(1, 1, 2, 1), A(1, 3, 3, 2), need_dx=None),
     TypeError, "need_dx"),
    # ------------------------------------------------------------------ pooling
    ("max-pool-x-3d", lambda B: B.max_pool2d_forward(A(4, 4, 1)), ValueError, "x"),
    ("max-pool-x-list", lambda B: B.max_pool2d_forward([[[[1.0]]]]), TypeError, "x"),
    ("max-pool-x-float16", lambda B: B.max_pool2d_forward(A(1, 4, 4, 1, dtype=np.float16)),
     TypeError, "x"),
    ("max-pool-size-zero-in-tuple", lambda B: B.max_pool2d_forward(A(1, 4, 4, 1),
                                                                   pool_size=(2, 0)),
     ValueError, "pool_size"),
    ("max-pool-size-float", lambda B: B.max_pool2d_forward(A(1, 4, 4, 1), pool_size=2.0),
     TypeError, "pool_size"),
    ("max-pool-size-none", lambda B: B.max_pool2d_forward(A(1, 4, 4, 1), pool_size=None),
     TypeError, "pool_size"),
    ("max-pool-strides-one-value", lambda B: B.max_pool2d_forward(A(1, 4, 4, 1),
                                                                  strides=(2,)),
     ValueError, "strides"),
    ("max-pool-strides-negative", lambda B: B.max_pool2d_forward(A(1, 4, 4, 1), strides=-1),
     ValueError, "strides"),
    ("max-pool-padding-full", lambda B: B.max_pool2d_forward(A(1, 4, 4, 1), padding="full"),
     ValueError, "padding"),
    ("max-pool-valid-output-empty", lambda B: B.max_pool2d_forward(A(1, 4, 2, 1),
                                                                   pool_size=(1, 3)),
     ValueError, "x"),
    ("max-pool-out-readonly", lambda B: B.max_pool2d_forward(A(1, 4, 4, 1),
                                                             read_only(A(1, 2, 2, 1))),
     ValueError, "out"),
    ("max-pool-out-is-x", _max_pool_out_is_x, ValueError, "out"),
    ("max-pool-argmax-float", lambda B: B.max_pool2d_forward(A(1, 4, 4, 1), None,
                                                             A(1, 2, 2, 1)),
     TypeError, "argmax"),
    ("max-pool-argmax-list", lambda B: B.max_pool2d_forward(A(1, 4, 4, 1), None,
                                                            [[[[0]], [[0]]]]),
     TypeError, "argmax"),
    ("max-pool-argmax-int64", lambda B: B.max_pool2d_forward(
        A(1, 4, 4, 1), None, I32(1, 2, 2, 1, dtype=np.int64)), TypeError, "argmax"),
    ("max-pool-argmax-shape", lambda B: B.max_pool2d_forward(A(1, 4, 4, 1), None,
                                                             I32(1, 2, 2)),
     ValueError, "argmax"),
    ("max-pool-argmax-readonly", lambda B: B.max_pool2d_forward(
        A(1, 4, 4, 1), None, read_only(I32(1, 2, 2, 1))), ValueError, "argmax"),
    ("max-pool-argmax-in-x", _max_pool_argmax_in_x, ValueError, "argmax"),
    ("max-pool-backward-argmax-none", lambda B: B.max_pool2d_backward(A(1, 2, 2, 1), None,
                                                                      A(1, 4, 4, 1)),
     TypeError, "argmax"),
    ("max-pool-backward-argmax-uint32", lambda B: B.max_pool2d_backward(
        A(1, 2, 2, 1), I32(1, 2, 2, 1, dtype=np.uint32), A(1, 4, 4, 1)),
     TypeError, "argmax"),
    ("max-pool-backward-argmax-shape", lambda B: B.max_pool2d_backward(
        A(1, 2, 2, 1), I32(1, 2, 2, 2), A(1, 4, 4, 1)), ValueError, "argmax"),
    ("max-pool-backward-argmax-negative", lambda B: B.max_pool2d_backward(
        A(1, 2, 2, 1), I32(1, 2, 2, 1, value=-3), A(1, 4, 4, 1)), ValueError, "argmax"),
    ("max-pool-backward-argmax-past-plane", lambda B: B.max_pool2d_backward(
        A(1, 2, 2, 1), I32(1, 2, 2, 1, value=16), A(1, 4, 4, 1)), ValueError, "argmax"),
    ("max-pool-backward-dx-none", lambda B: B.max_pool2d_backward(A(1, 2, 2, 1),
                                                                  I32(1, 2, 2, 1), None),
     TypeError, "dx"),
    ("max-pool-backward-mixed-dx", lambda B: B.max_pool2d_backward(
        A(1, 2, 2, 1, dtype=F32), I32(1, 2, 2, 1), A(1, 4, 4, 1)), TypeError, "dx"),
    ("max-pool-backward-dy-shape", lambda B: B.max_pool2d_backward(
        A(1, 2, 2, 1), I32(1, 2, 2, 1), A(1, 4, 4, 1), pool_size=1), ValueError, "dy"),
    ("max-pool-backward-dx-readonly", lambda B: B.max_pool2d_backward(
        A(1, 2, 2, 1), I32(1, 2, 2, 1), read_only(A(1, 4, 4, 1))), ValueError, "dx"),
    ("max-pool-backward-dx-holds-argmax", _max_pool_dx_holds_argmax, ValueError, "dx"),
    # the window geometry comes from dx there: dx is named, not x
    ("max-pool-backward-dx-smaller-than-pool", lambda B: B.max_pool2d_backward(
        A(1, 1, 1, 1), I32(1, 1, 1, 1), A(1, 1, 4, 1)), ValueError, "dx"),
    ("avg-pool-x-5d", lambda B: B.avg_pool2d_forward(A(1, 1, 4, 4, 1)), ValueError, "x"),
    ("avg-pool-x-bool", lambda B: B.avg_pool2d_forward(np.ones((1, 4, 4, 1), bool)),
     TypeError, "x"),
    ("avg-pool-size-str", lambda B: B.avg_pool2d_forward(A(1, 4, 4, 1), pool_size="2"),
     TypeError, "pool_size"),
    ("avg-pool-size-three-values", lambda B: B.avg_pool2d_forward(A(1, 4, 4, 1),
                                                                  pool_size=[2, 2, 2]),
     ValueError, "pool_size"),
    ("avg-pool-strides-zero", lambda B: B.avg_pool2d_forward(A(1, 4, 4, 1), strides=(1, 0)),
     ValueError, "strides"),
    ("avg-pool-strides-float", lambda B: B.avg_pool2d_forward(A(1, 4, 4, 1), strides=1.5),
     TypeError, "strides"),
    ("avg-pool-padding-causal", lambda B: B.avg_pool2d_forward(A(1, 4, 4, 1),
                                                               padding="causal"),
     ValueError, "padding"),
    ("avg-pool-valid-output-empty", lambda B: B.avg_pool2d_forward(A(1, 1, 4, 1)),
     ValueError, "x"),
    ("avg-pool-out-shape", lambda B: B.avg_pool2d_forward(A(1, 4, 4, 1), A(1, 2, 2, 2)),
     ValueError, "out"),
    ("avg-pool-out-overlaps-x", _avg_pool_out_overlaps_x, ValueError, "out"),
    ("avg-pool-backward-dx-none", lambda B: B.avg_pool2d_backward(A(1, 2, 2, 1), None),
     TypeError, "dx"),
    ("avg-pool-backward-dy-3d", lambda B: B.avg_pool2d_backward(A(2, 2, 1), A(1, 4, 4, 1)),
     ValueError, "dy"),
    ("avg-pool-backward-mixed-dx", lambda B: B.avg_pool2d_backward(
        A(1, 2, 2, 1), A(1, 4, 4, 1, dtype=F32)), TypeError, "dx"),
    ("avg-pool-backward-dy-shape-same", lambda B: B.avg_pool2d_backward(
        A(1, 2, 2, 1), A(1, 5, 5, 1), padding="same"), ValueError, "dy"),
    ("avg-pool-backward-dx-readonly", lambda B: B.avg_pool2d_backward(
        A(1, 2, 2, 1), read_only(A(1, 4, 4, 1))), ValueError, "dx"),
    ("avg-pool-backward-size-negative", lambda B: B.avg_pool2d_backward(
        A(1, 2, 2, 1), A(1, 4, 4, 1), pool_size=-2), ValueError, "pool_size"),
    ("avg-pool-backward-dx-smaller-than-pool", lambda B: B.avg_pool2d_backward(
        A(1, 1, 1, 1), A(1, 4, 2, 1), pool_size=3), ValueError, "dx"),
    ("global-avg-x-3d", lambda B: B.global_avg_pool2d_forward(A(2, 2, 3)), ValueError, "x"),
    ("global-avg-x-int", lambda B: B.global_avg_pool2d_forward(np.ones((1, 2, 2, 3), int)),
     TypeError, "x"),
    ("global-avg-out-shape", lambda B: B.global_avg_pool2d_forward(A(2, 2, 2, 3), A(3, 2)),
     ValueError, "out"),
    ("global-avg-out-readonly", lambda B: B.global_avg_pool2d_forward(A(2, 2, 2, 3),
                                                                      read_only(A(2, 3))),
     ValueError, "out"),
    ("global-avg-out-in-x", _global_avg_out_in_x, ValueError, "out"),
    ("global-avg-backward-dy-1d", lambda B: B.global_avg_pool2d_backward(A(3), A(1, 2, 2, 3)),
     ValueError, "dy"),
    ("global-avg-backward-dy-channels", lambda B: B.global_avg_pool2d_backward(
        A(1, 2), A(1, 2, 2, 3)), ValueError, "dy"),
    ("global-avg-backward-dx-none", lambda B: B.global_avg_pool2d_backward(A(1, 3), None),
     TypeError, "dx"),
    ("global-avg-backward-dx-3d", lambda B: B.global_avg_pool2d_backward(A(1, 3), A(1, 4, 3)),
     ValueError, "dx"),
    ("global-avg-backward-mixed-dx", lambda B: B.global_avg_pool2d_backward(
        A(1, 3), A(1, 2, 2, 3, dtype=F32)), TypeError, "dx"),
    ("global-max-x-list", lambda B: B.global_max_pool2d_forward([[[[1.0]]]]), TypeError, "x"),
    ("global-max-argmax-int64", lambda B: B.global_max_pool2d_forward(
        A(2, 2, 2, 3), None, I32(2, 3, dtype=np.int64)), TypeError, "argmax"),
    ("global-max-argmax-shape", lambda B: B.global_max_pool2d_forward(A(2, 2, 2, 3), None,
                                                                      I32(3, 2)),
     ValueError, "argmax"),
    ("global-max-argmax-readonly", lambda B: B.global_max_pool2d_forward(
        A(2, 2, 2, 3), None, read_only(I32(2, 3))), ValueError, "argmax"),
    ("global-max-argmax-in-out", _global_max_argmax_in_out, ValueError, "argmax"),
    ("global-max-backward-argmax-none", lambda B: B.global_max_pool2d_backward(
        A(1, 2), None, A(1, 2, 2, 2)), TypeError, "argmax"),
    ("global-max-backward-argmax-float", lambda B: B.global_max_pool2d_backward(
        A(1, 2), A(1, 2), A(1, 2, 2, 2)), TypeError, "argmax"),
    ("global-max-backward-argmax-shape", lambda B: B.global_max_pool2d_backward(
        A(1, 2), I32(2, 1), A(1, 2, 2, 2)), ValueError, "argmax"),
    ("global-max-backward-argmax-negative", lambda B: B.global_max_pool2d_backward(
        A(1, 2), I32(1, 2, value=-1), A(1, 2, 2, 2)), ValueError, "argmax"),
    ("global-max-backward-argmax-past-plane", lambda B: B.global_max_pool2d_backward(
        A(1, 2), I32(1, 2, value=4), A(1, 2, 2, 2)), ValueError, "argmax"),
    ("global-max-backward-dx-readonly", lambda B: B.global_max_pool2d_backward(
        A(1, 2), I32(1, 2), read_only(A(1, 2, 2, 2))), ValueError, "dx"),
    ("global-max-backward-dx-is-dy", _global_max_dx_is_dy, ValueError, "dx"),
    # ------------------------------------------------------- batch normalisation
    ("batch-norm-x-1d", lambda B: B.batch_norm_forward(A(4)), ValueError, "x"),
    ("batch-norm-x-list", lambda B: B.batch_norm_forward([[1.0, 2.0]]), TypeError, "x"),
    ("batch-norm-x-empty", lambda B: B.batch_norm_forward(np.zeros((0, 3))), ValueError, "x"),
    ("batch-norm-gamma-2d", lambda B: B.batch_norm_forward(A(4, 3), A(1, 3)), ValueError,
     "gamma"),
    ("batch-norm-gamma-channels", lambda B: B.batch_norm_forward(A(2, 2, 2, 3), A(2)),
     ValueError, "gamma"),
    ("batch-norm-mixed-beta", lambda B: B.batch_norm_forward(A(4, 3), None, A(3, dtype=F32)),
     TypeError, "beta"),
    ("batch-norm-moving-mean-only", lambda B: B.batch_norm_forward(A(4, 3), None, None, A(3)),
     ValueError, "moving_variance"),
    ("batch-norm-moving-variance-only", lambda B: B.batch_norm_forward(
        A(4, 3), None, None, None, A(3)), ValueError, "moving_variance"),
    ("batch-norm-moving-mean-shape", lambda B: B.batch_norm_forward(
        A(4, 3), None, None, A(4), A(3)), ValueError, "moving_mean"),
    ("batch-norm-moving-variance-readonly", lambda B: B.batch_norm_forward(
        A(4, 3), None, None, A(3), read_only(A(3))), ValueError, "moving_variance"),
    ("batch-norm-moving-variance-is-mean", _bn_moving_variance_is_mean, ValueError,
     "moving_variance"),
    ("batch-norm-momentum-negative", lambda B: B.batch_norm_forward(A(4, 3), momentum=-0.1),
     ValueError, "momentum"),
    ("batch-norm-momentum-str", lambda B: B.batch_norm_forward(A(4, 3), momentum="0.9"),
     TypeError, "momentum"),
    ("batch-norm-epsilon-negative", lambda B: B.batch_norm_forward(A(4, 3), epsilon=-1e-3),
     ValueError, "epsilon"),
    ("batch-norm-epsilon-inf", lambda B: B.batch_norm_forward(A(4, 3), epsilon=np.inf),
     ValueError, "epsilon"),
    ("batch-norm-out-readonly", lambda B: B.batch_norm_forward(
        A(4, 3), None, None, None, None, read_only(A(4, 3))), ValueError, "out"),
    ("batch-norm-out-is-gamma", _bn_out_is_gamma, ValueError, "out"),
    ("batch-norm-inference-x-1d", lambda B: B.batch_norm_inference(A(3), None, None, A(3),
                                                                   A(3)), ValueError, "x"),
    ("batch-norm-inference-moving-variance-none", lambda B: B.batch_norm_inference(
        A(4, 3), None, None, A(3), None), TypeError, "moving_variance"),
    ("batch-norm-inference-mixed-moving-mean", lambda B: B.batch_norm_inference(
        A(4, 3), None, None, A(3, dtype=F32), A(3)), TypeError, "moving_mean"),
    ("batch-norm-inference-gamma-channels", lambda B: B.batch_norm_inference(
        A(4, 3), A(4), None, A(3), A(3)), ValueError, "gamma"),
    ("batch-norm-inference-epsilon-zero", lambda B: B.batch_norm_inference(
        A(4, 3), None, None, A(3), A(3), epsilon=0), ValueError, "epsilon"),
    ("batch-norm-inference-out-dtype", lambda B: B.batch_norm_inference(
        A(4, 3), None, None, A(3), A(3), A(4, 3, dtype=F32)), TypeError, "out"),
    ("batch-norm-inference-out-is-moving-mean", _bn_inference_out_is_moving_mean, ValueError,
     "out"),
    ("batch-norm-backward-dy-1d", lambda B: B.batch_norm_backward(A(3), A(3)), ValueError,
     "dy"),
    ("batch-norm-backward-x-none", lambda B: B.batch_norm_backward(A(4, 3), None), TypeError,
     "x"),
    ("batch-norm-backward-gamma-channels", lambda B: B.batch_norm_backward(
        A(4, 3), A(4, 3), A(4)), ValueError, "gamma"),
    ("batch-norm-backward-dbeta-readonly", lambda B: B.batch_norm_backward(
        A(4, 3), A(4, 3), None, None, None, read_only(A(3))), ValueError, "dbeta"),
    ("batch-norm-backward-dbeta-is-dgamma", _bn_dbeta_is_dgamma, ValueError, "dbeta"),
    ("batch-norm-backward-dx-is-gamma", _bn_dx_is_gamma, ValueError, "dx"),
    ("batch-norm-backward-dx-shape", lambda B: B.batch_norm_backward(A(4, 3), A(4, 3), None,
                                                                     A(3, 4)),
     ValueError, "dx"),
    ("batch-norm-backward-epsilon-nan", lambda B: B.batch_norm_backward(
        A(4, 3), A(4, 3), epsilon=np.nan), ValueError, "epsilon"),
]
CASES += SPATIAL_CASES


@pytest.mark.parametrize("call, exc, name", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_naming_the_argument(backend, call, exc, name):
    with pytest.raises(exc, match=rf"^{re.escape(name)}:") as info:
        call(backend)
    # exactly the expected class (a ValueError is not accepted for a TypeError case)
    assert type(info.value) is exc, f"{type(info.value).__name__}: {info.value}"
    # the message says what was expected and what was received
    assert "expected" in str(info.value) or "must" in str(info.value)


@pytest.mark.parametrize("call, exc, name", [c[1:] for c in SPATIAL_CASES],
                         ids=[c[0] for c in SPATIAL_CASES])
def test_bad_spatial_input_on_cuda(cuda, call, exc, name):
    with pytest.raises(exc, match=rf"^{re.escape(name)}:") as info:
        call(cuda)
    assert type(info.value) is exc, f"{type(info.value).__name__}: {info.value}"
    assert "expected" in str(info.value) or "must" in str(info.value)


def test_every_case_id_is_unique():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))


def test_cases_cover_every_kernel():
    """Every kernel of the reference has at least one bad-input case above."""
    import inspect
    from kernels import reference as ref
    sources = "\n".join(inspect.getsource(c[1]) for c in CASES)
    missing = [k for k in ref.__all__ if f"B.{k}(" not in sources]
    assert not missing, missing


# ----------------------------------------------- failed calls change nothing
@pytest.mark.parametrize("bad", [{"learning_rate": np.nan}, {"beta_1": 1.0}, {"step": 0},
                                 {"epsilon": -1.0}, {"amsgrad": True}])
def test_rejected_optimizer_call_leaves_arrays_untouched(backend, bad):
    w, g, m, v = A(4), A(4) + 1, A(4) * 2, A(4) * 3
    before = [x.copy() for x in (w, g, m, v)]
    kwargs = {"step": 1}
    kwargs.update(bad)
    with pytest.raises((TypeError, ValueError)):
        backend.adam_update(w, g, m, v, **kwargs)
    for x, x0 in zip((w, g, m, v), before):
        np.testing.assert_array_equal(x, x0)


def test_rejected_out_leaves_out_untouched(backend):
    out = A(2, 4, value=7.0)
    with pytest.raises(ValueError):
        backend.gemm(A(2, 3), A(4, 4), out)             # inner dims mismatch
    np.testing.assert_array_equal(out, np.full((2, 4), 7.0))


# --------------------------------------------------- what is NOT an error
def test_in_place_elementwise_is_allowed(backend):
    x = A(3, 4) - 0.5
    expected = np.maximum(x, 0)
    assert backend.relu(x, x) is x
    np.testing.assert_array_equal(x, expected)


def test_disjoint_views_of_one_array_are_allowed(backend):
    big = A(6, 4)
    a, out = big[:3], big[3:]
    expected = a @ A(4, 4)
    backend.gemm(a, A(4, 4), out)
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_numpy_integer_hyperparameters_are_accepted(backend):
    w = A(3)
    backend.adam_update(w, A(3), A(3), A(3), step=np.int64(3), learning_rate=np.float32(0.01))
    backend.sgd_update(w, A(3), learning_rate=1)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
@pytest.mark.parametrize("kernel", ["mean_squared_error", "softmax", "gemm", "column_sums"])
def test_ndarray_subclass_matrix(backend, kernel):
    """np.matrix is an ndarray subclass with other operator semantics (``*`` and ``**``
    are matrix products).  A backend must either reject it (TypeError/ValueError naming
    the argument) or compute exactly what it computes for the plain array."""
    t = np.array([[0.0, 1.0], [2.0, 0.0]])
    p = np.array([[1.0, 0.0], [0.0, 3.0]])
    call = {
        "mean_squared_error": lambda u, v: backend.mean_squared_error(u, v),
        "softmax": lambda u, v: backend.softmax(v),
        "gemm": lambda u, v: backend.gemm(u, v),
        "column_sums": lambda u, v: backend.column_sums(v),
    }[kernel]
    expected = call(t, p)
    try:
        got = call(np.asmatrix(t), np.asmatrix(p))
    except (TypeError, ValueError) as exc:
        assert re.match(r"^(x|a|b|y_true|y_pred):", str(exc)), (
            f"{backend.name}.{kernel} rejected np.matrix without naming the argument: "
            f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"{backend.name}.{kernel}(np.matrix) raised {type(exc).__name__}: {exc}")
    else:
        np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-12,
                                   err_msg=f"{backend.name}.{kernel} on np.matrix")


def test_huge_float_labels_rejected_without_runtime_warning(backend, recwarn):
    """A float label too large for an integer is rejected with a ValueError naming
    y_true, and validation itself emits no NumPy RuntimeWarning on the way."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ValueError, match="^y_true:"):
            backend.sparse_categorical_crossentropy(_labels(0, 1e30, 1, dtype=F64), A(3, 4))


# --------------------------------------------------- no crash on random garbage
FUZZ_SCRIPT = os.path.join(os.path.dirname(__file__), "_fuzz_bad_calls.py")


@pytest.mark.parametrize("seed, threads", [(0, 2), (1, 1)])
def test_random_bad_calls_never_crash_the_interpreter(seed, threads):
    """Thousands of random bad calls (both backends, both dtypes, the parallel threshold
    at 1) in a subprocess: it must exit normally (a segfault or abort gives a negative
    status), and every rejection must be a TypeError or ValueError."""
    proc = subprocess.run([sys.executable, FUZZ_SCRIPT, str(seed), "6000", str(threads)],
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ))
    report = (proc.stdout[-4000:] + proc.stderr[-4000:])
    assert proc.returncode == 0, f"exit status {proc.returncode}:\n{report}"
    assert "calls 6000" in proc.stdout, report


def test_a_crash_in_the_subprocess_would_be_seen():
    """The check above can fail: a segfaulting child reports a negative status."""
    proc = subprocess.run([sys.executable, "-c", "import ctypes; ctypes.string_at(0)"],
                          capture_output=True, timeout=60)
    assert proc.returncode != 0
