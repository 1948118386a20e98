"""The Cython backend: the reference's kernels, compiled.

Every function here has the signature of its twin in ``kernels.reference`` (a test
compares them), validates its arguments with the same ``checks`` helpers, lays them
out for the compiled code (C-contiguous where a kernel needs it; GEMM reads any
strides) and calls the extension modules, which run without the GIL.
"""
import threading

import numpy as np

from .. import checks as check
from .. import reference as _reference
from ..reference import (ACTIVATION_DEFAULT_PARAM as _DEFAULT_PARAM, ACTIVATIONS,
                         ACTIVATIONS_NEEDING_INPUT)
from . import _fastargs
from . import dense as _dense, elementwise as _elementwise, gemm as _gemm
from . import conv as _conv, pooling as _pooling
from . import embedding as _embedding, losses as _losses, normalization as _normalization
from . import optimizers as _optimizers

# compiled ids by kernel name (the C enums; tests/kernels/test_tables.py checks them
# against the reference's tables)
_ACT = _elementwise.ACTIVATION_IDS
# the public activation names (ACTIVATION_IDS also holds internal variants): the fast
# paths look names up here, so a name the checks reject never passes them
_PUBLIC_ACT = {name: _ACT[name] for name in ACTIVATIONS}
_fastargs.set_max_bytes(check.MAX_BYTES)
_LOSS = _losses.LOSS_IDS
_ROW_LOSSES = _reference.ROW_LOSSES



# ------------------------------------------------------------------ layout helpers

def _c(x):
    """x as a C-contiguous array (itself when it already is)."""
    return x if x.flags.c_contiguous else np.ascontiguousarray(x)


def _target(out):
    """Where a kernel that needs C-contiguous output should write for ``out``."""
    return out if out.flags.c_contiguous else np.empty(out.shape, out.dtype)


def _finish(out, target):
    if target is not out:
        out[...] = target
    return out


def _strided(x):
    """x itself when its strides are whole elements (what GEMM reads), else a copy."""
    isz = x.itemsize
    if x.strides[0] % isz or x.strides[1] % isz:
        return np.ascontiguousarray(x)
    return x


_scratch = threading.local()


def _scratch_buffer(shape, dtype):
    """A scratch array reused across calls by this thread (kernels that need a
    temporary allocate nothing in a training loop, and threads share nothing)."""
    cache = getattr(_scratch, "buffers", None)
    if cache is None:
        cache = _scratch.buffers = {}
    key = (shape, dtype.str)
    buf = cache.get(key)
    if buf is None:
        if len(cache) >= 16:       # bound the memory kept for shapes seen once
            cache.clear()
        buf = cache[key] = np.empty(shape, dtype)
    return buf


def _rows(x):
    """A C-contiguous array seen as 2-D (rows, last axis)."""
    return x.reshape(-1, x.shape[-1])


# --------------------------------------------------------------------------- GEMM

def _number(v):
    """A finite float or int (not bool), as checks.real accepts: the fast paths' test
    of a hyper-parameter (anything else goes through the full checks)."""
    t = type(v)
    return (t is float or t is int) and -1e308 <= v <= 1e308


def gemm(a, b, out=None, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0):
    if (type(trans_a) is bool and type(trans_b) is bool and _number(alpha)
            and _number(beta) and _fastargs.gemm(a, b, out, trans_a, trans_b)):
        _gemm.gemm(a, b, out, trans_a, trans_b, alpha, beta)
        return out
    out, trans_a, trans_b, alpha, beta = check.gemm_args(a, b, out, trans_a, trans_b,
                                                         alpha, beta)
    target = _strided(out)
    if target is not out and beta != 0.0:
        target[...] = out
    _gemm.gemm(_strided(a), _strided(b), target, trans_a, trans_b, alpha, beta)
    return _finish(out, target)


def bias_add(x, b, out=None):
    out = check.bias_args(x, b, out)
    target = _target(out)
    _elementwise.bias_add(_c(x), _c(b), target)
    return _finish(out, target)


def column_sums(x, out=None):
    out = check.column_sums_args(x, out)
    target = _target(out)
    _elementwise.column_sums(_c(x), target)
    return _finish(out, target)


# -------------------------------------------------------------------- activations

def _forward(name, param, x, out):
    out = check.unary(x, out)
    target = _target(out)
    _elementwise.activation_forward(_ACT[name], param, _rows(_c(x)), _rows(target))
    return _finish(out, target)


def _backward(name, param, dy, saved, out, saved_name="y"):
    out = check.backprop(dy, saved, out, saved_name)
    target = _target(out)
    _elementwise.activation_backward(_ACT[name], param, _rows(_c(dy)), _rows(_c(saved)),
                                     _rows(target))
    return _finish(out, target)


def linear(x, out=None):
    return _forward("linear", 0.0, x, out)


def backprop_linear(dy, y, out=None):
    return _backward("linear", 0.0, dy, y, out)


def relu(x, out=None, *, negative_slope=0.0, max_value=None, threshold=0.0):
    if check.relu_is_plain(negative_slope, max_value, threshold):
        return _forward("relu", 0.0, x, out)
    slope, cap, thr = check.relu_params(negative_slope, max_value, threshold)
    out = check.unary(x, out)
    target = _target(out)
    _elementwise.relu_params_forward(slope, 0.0 if cap is None else cap, cap is not None,
                                     thr, _c(x).reshape(-1), target.reshape(-1))
    return _finish(out, target)


def backprop_relu(dy, y, out=None, *, negative_slope=0.0, max_value=None, threshold=0.0):
    if check.relu_is_plain(negative_slope, max_value, threshold):
        return _backward("relu", 0.0, dy, y, out)
    slope, cap, thr = check.relu_params(negative_slope, max_value, threshold)
    out = check.backprop(dy, y, out)
    target = _target(out)
    _elementwise.relu_params_backward(slope, 0.0 if cap is None else cap, cap is not None,
                                      thr, _c(dy).reshape(-1), _c(y).reshape(-1),
                                      target.reshape(-1))
    return _finish(out, target)


def leaky_relu(x, out=None, *, negative_slope=0.2):
    negative_slope = check.real("negative_slope", negative_slope, low=0.0)
    return _forward("leaky_relu", negative_slope, x, out)


def backprop_leaky_relu(dy, y, out=None, *, negative_slope=0.2):
    negative_slope = check.real("negative_slope", negative_slope, low=0.0)
    return _backward("leaky_relu", negative_slope, dy, y, out)


def elu(x, out=None, *, alpha=1.0):
    alpha = check.real("alpha", alpha, low=0.0, low_open=True)
    return _forward("elu", alpha, x, out)


def backprop_elu(dy, y, out=None, *, alpha=1.0):
    alpha = check.real("alpha", alpha, low=0.0, low_open=True)
    return _backward("elu", alpha, dy, y, out)


def sigmoid(x, out=None):
    return _forward("sigmoid", 0.0, x, out)


def backprop_sigmoid(dy, y, out=None):
    return _backward("sigmoid", 0.0, dy, y, out)


def tanh(x, out=None):
    return _forward("tanh", 0.0, x, out)


def backprop_tanh(dy, y, out=None):
    return _backward("tanh", 0.0, dy, y, out)


def softmax(x, out=None):
    return _forward("softmax", 0.0, x, out)


def backprop_softmax(dy, y, out=None):
    return _backward("softmax", 0.0, dy, y, out)


def softplus(x, out=None):
    return _forward("softplus", 0.0, x, out)


def backprop_softplus(dy, y, out=None):
    return _backward("softplus", 0.0, dy, y, out)


def gelu(x, out=None, *, approximate=False):
    approximate = check.flag("approximate", approximate)
    return _forward("gelu_tanh" if approximate else "gelu", 0.0, x, out)


def backprop_gelu(dy, x, out=None, *, approximate=False):
    approximate = check.flag("approximate", approximate)
    return _backward("gelu_tanh" if approximate else "gelu", 0.0, dy, x, out, "x")


def relu6(x, out=None):
    return _forward("relu6", 0.0, x, out)


def backprop_relu6(dy, y, out=None):
    return _backward("relu6", 0.0, dy, y, out)


def selu(x, out=None):
    return _forward("selu", 0.0, x, out)


def backprop_selu(dy, y, out=None):
    return _backward("selu", 0.0, dy, y, out)


def hard_sigmoid(x, out=None):
    return _forward("hard_sigmoid", 0.0, x, out)


def backprop_hard_sigmoid(dy, y, out=None):
    return _backward("hard_sigmoid", 0.0, dy, y, out)


def exponential(x, out=None):
    return _forward("exponential", 0.0, x, out)


def backprop_exponential(dy, y, out=None):
    return _backward("exponential", 0.0, dy, y, out)


def softsign(x, out=None):
    return _forward("softsign", 0.0, x, out)


def backprop_softsign(dy, y, out=None):
    return _backward("softsign", 0.0, dy, y, out)


def log_softmax(x, out=None):
    return _forward("log_softmax", 0.0, x, out)


def backprop_log_softmax(dy, y, out=None):
    return _backward("log_softmax", 0.0, dy, y, out)


def silu(x, out=None):
    return _forward("silu", 0.0, x, out)


def backprop_silu(dy, x, out=None):
    return _backward("silu", 0.0, dy, x, out, "x")


def hard_silu(x, out=None):
    return _forward("hard_silu", 0.0, x, out)


def backprop_hard_silu(dy, x, out=None):
    return _backward("hard_silu", 0.0, dy, x, out, "x")


def mish(x, out=None):
    return _forward("mish", 0.0, x, out)


def backprop_mish(dy, x, out=None):
    return _backward("mish", 0.0, dy, x, out, "x")


# ------------------------------------------------------------------ dense layer

def dense_forward(x, w, b=None, out=None, *, activation="linear", pre_activation=None):
    act = _PUBLIC_ACT.get(activation) if type(activation) is str else None
    if act is not None and _fastargs.dense_forward(x, w, b, out, pre_activation):
        _dense.forward(act, _DEFAULT_PARAM[activation], x, w, b, out,
                       pre_activation)
        return out
    out, pre_activation, activation = check.dense_forward_args(x, w, b, out, activation,
                                                               pre_activation)
    target = _target(out)
    pre_target = _target(pre_activation) if pre_activation is not None else None
    _dense.forward(_ACT[activation], _DEFAULT_PARAM[activation], _strided(x),
                   _strided(w), _c(b) if b is not None else None, target, pre_target)
    if pre_activation is not None:
        _finish(pre_activation, pre_target)
    return _finish(out, target)


def dense_backward(dy, x, w, y, *, activation="linear", pre_activation=None,
                   dx=None, dw=None, db=None, need_dx=True, use_bias=True):
    act = _PUBLIC_ACT.get(activation) if type(activation) is str else None
    if (act is not None and type(need_dx) is bool and type(use_bias) is bool
            and (dx is not None or not need_dx) and (db is not None or not use_bias)):
        saved = pre_activation if activation in ACTIVATIONS_NEEDING_INPUT else y
        fdx = dx if need_dx else None
        fdb = db if use_bias else None
        if _fastargs.dense_backward(dy, x, w, saved, fdx, dw, fdb):
            _dense.backward(act, _DEFAULT_PARAM[activation], dy, x, w, saved,
                            _scratch_buffer(dy.shape, dy.dtype), fdx, dw, fdb)
            return fdx, dw, fdb
    dx, dw, db, saved, activation = check.dense_backward_args(
        dy, x, w, y, activation, pre_activation, dx, dw, db, need_dx, use_bias)
    dz = _scratch_buffer(dy.shape, dy.dtype)
    dw_t = _strided(dw)
    dx_t = _strided(dx) if dx is not None else None
    db_t = _target(db) if db is not None else None
    _dense.backward(_ACT[activation], _DEFAULT_PARAM[activation], _c(dy), _strided(x),
                    _strided(w), _c(saved), dz, dx_t, dw_t, db_t)
    _finish(dw, dw_t)
    if dx is not None:
        _finish(dx, dx_t)
    if db is not None:
        _finish(db, db_t)
    return dx, dw, db


# ------------------------------------------------------------------------ losses

def _samples(x):
    """A loss's C-contiguous array as (samples, values per sample): a 1-D array is n
    samples of one value (a row each, as its weights count them)."""
    return x.reshape(x.shape[0], -1)


def _weights(sample_weight, y_pred, out=None, pred_name="y_pred"):
    """The validated weights, C-contiguous (a copy when strided), or None."""
    w = check.sample_weights(sample_weight, y_pred, out, pred_name)
    return None if w is None else _c(w)


def _loss(name, param, y_true, y_pred, sample_weight, ndim=None):
    check.loss_args(y_true, y_pred, ndim=ndim)
    w = _weights(sample_weight, y_pred)
    value = _losses.loss_value(_LOSS[name], param, _samples(_c(y_true)), _samples(_c(y_pred)),
                               w)
    return y_pred.dtype.type(value)


def _loss_grad(name, param, y_true, y_pred, out, sample_weight, ndim=None):
    out = check.loss_args(y_true, y_pred, out, ndim=ndim, want_out=True)
    w = _weights(sample_weight, y_pred, out)
    target = _target(out)
    _losses.loss_gradient(_LOSS[name], param, _samples(_c(y_true)), _samples(_c(y_pred)),
                          _samples(target), w)
    return _finish(out, target)


def mean_squared_error(y_true, y_pred, *, sample_weight=None):
    return _loss("mean_squared_error", 0.0, y_true, y_pred, sample_weight)


def backprop_mean_squared_error(y_true, y_pred, out=None, *, sample_weight=None):
    return _loss_grad("mean_squared_error", 0.0, y_true, y_pred, out, sample_weight)


def mean_absolute_error(y_true, y_pred, *, sample_weight=None):
    return _loss("mean_absolute_error", 0.0, y_true, y_pred, sample_weight)


def backprop_mean_absolute_error(y_true, y_pred, out=None, *, sample_weight=None):
    return _loss_grad("mean_absolute_error", 0.0, y_true, y_pred, out, sample_weight)


def huber(y_true, y_pred, *, delta=1.0, sample_weight=None):
    delta = check.real("delta", delta, low=0.0, low_open=True)
    return _loss("huber", delta, y_true, y_pred, sample_weight)


def backprop_huber(y_true, y_pred, out=None, *, delta=1.0, sample_weight=None):
    delta = check.real("delta", delta, low=0.0, low_open=True)
    return _loss_grad("huber", delta, y_true, y_pred, out, sample_weight)


def binary_crossentropy(y_true, y_pred, *, from_logits=False, sample_weight=None):
    from_logits = check.flag("from_logits", from_logits)
    name = "binary_crossentropy_logits" if from_logits else "binary_crossentropy"
    return _loss(name, 0.0, y_true, y_pred, sample_weight)


def backprop_binary_crossentropy(y_true, y_pred, out=None, *, from_logits=False,
                                 sample_weight=None):
    from_logits = check.flag("from_logits", from_logits)
    name = "binary_crossentropy_logits" if from_logits else "binary_crossentropy"
    return _loss_grad(name, 0.0, y_true, y_pred, out, sample_weight)


def categorical_crossentropy(y_true, y_pred, *, from_logits=False, sample_weight=None):
    from_logits = check.flag("from_logits", from_logits)
    name = "categorical_crossentropy_logits" if from_logits else "categorical_crossentropy"
    return _loss(name, 0.0, y_true, y_pred, sample_weight, ndim=2)


def backprop_categorical_crossentropy(y_true, y_pred, out=None, *, from_logits=False,
                                      sample_weight=None):
    from_logits = check.flag("from_logits", from_logits)
    name = "categorical_crossentropy_logits" if from_logits else "categorical_crossentropy"
    return _loss_grad(name, 0.0, y_true, y_pred, out, sample_weight, ndim=2)


# Keras's other losses: the same two entry points (their ids in the loss table)

def _more(name):
    ndim = 2 if name in _ROW_LOSSES else None

    def value(y_true, y_pred, *, sample_weight=None):
        return _loss(name, 0.0, y_true, y_pred, sample_weight, ndim=ndim)

    def gradient(y_true, y_pred, out=None, *, sample_weight=None):
        return _loss_grad(name, 0.0, y_true, y_pred, out, sample_weight, ndim=ndim)

    value.__name__, gradient.__name__ = name, "backprop_" + name
    return value, gradient


hinge, backprop_hinge = _more("hinge")
squared_hinge, backprop_squared_hinge = _more("squared_hinge")
poisson, backprop_poisson = _more("poisson")
log_cosh, backprop_log_cosh = _more("log_cosh")
mean_absolute_percentage_error, backprop_mean_absolute_percentage_error = _more(
    "mean_absolute_percentage_error")
mean_squared_logarithmic_error, backprop_mean_squared_logarithmic_error = _more(
    "mean_squared_logarithmic_error")
kl_divergence, backprop_kl_divergence = _more("kl_divergence")
categorical_hinge, backprop_categorical_hinge = _more("categorical_hinge")
cosine_similarity, backprop_cosine_similarity = _more("cosine_similarity")


def _labels64(labels):
    return labels.astype(np.int64, copy=False)


def sparse_categorical_crossentropy(y_true, y_pred, *, from_logits=False,
                                    sample_weight=None):
    from_logits = check.flag("from_logits", from_logits)
    labels, _ = check.sparse_args(y_true, y_pred)
    w = _weights(sample_weight, y_pred)
    return y_pred.dtype.type(_losses.sparse_crossentropy(from_logits, _labels64(labels),
                                                         _c(y_pred), None, w))


def backprop_sparse_categorical_crossentropy(y_true, y_pred, out=None, *, from_logits=False,
                                             sample_weight=None):
    from_logits = check.flag("from_logits", from_logits)
    labels, out = check.sparse_args(y_true, y_pred, out, want_out=True)
    w = _weights(sample_weight, y_pred, out)
    target = _target(out)
    _losses.sparse_crossentropy(from_logits, _labels64(labels), _c(y_pred), target, w)
    return _finish(out, target)


def softmax_crossentropy(y_true, logits, out=None, *, sample_weight=None):
    out = check.loss_args(y_true, logits, out, ndim=2, want_out=True, pred_name="logits")
    w = _weights(sample_weight, logits, out, "logits")
    target = _target(out)
    loss = _losses.softmax_crossentropy(_c(y_true), _c(logits), target, w)
    return logits.dtype.type(loss), _finish(out, target)


def sparse_softmax_crossentropy(y_true, logits, out=None, *, sample_weight=None):
    labels, out = check.sparse_args(y_true, logits, out, pred_name="logits", want_out=True)
    w = _weights(sample_weight, logits, out, "logits")
    target = _target(out)
    loss = _losses.sparse_crossentropy(True, _labels64(labels), _c(logits), target, w)
    return logits.dtype.type(loss), _finish(out, target)


# ------------------------------------------------------------------ normalisation

def _last_axis_rows(a):
    """A C-contiguous array of rank >= 1 as 2-D (rows, its last axis)."""
    return a.reshape(-1, a.shape[-1])


def layer_norm_forward(x, gamma=None, beta=None, out=None, *, epsilon=1e-3):
    out, epsilon = check.layer_norm_forward_args(x, gamma, beta, out, epsilon)
    target = _target(out)
    _normalization.forward(_last_axis_rows(_c(x)), None if gamma is None else _c(gamma),
                              None if beta is None else _c(beta), epsilon,
                              _last_axis_rows(target))
    return _finish(out, target)


def layer_norm_backward(dy, x, gamma=None, dx=None, dgamma=None, dbeta=None, *,
                        epsilon=1e-3):
    dx, dgamma, dbeta, epsilon = check.layer_norm_backward_args(dy, x, gamma, dx, dgamma,
                                                                dbeta, epsilon)
    targets = [_target(a) for a in (dx, dgamma, dbeta)]
    _normalization.backward(_last_axis_rows(_c(dy)), _last_axis_rows(_c(x)),
                                       None if gamma is None else _c(gamma), epsilon,
                                       _last_axis_rows(targets[0]), targets[1], targets[2])
    for a, t in zip((dx, dgamma, dbeta), targets):
        _finish(a, t)
    return dx, dgamma, dbeta


# ------------------------------------------------------------------- convolution

def _as_2d(rank, *arrays):
    """Rank-1 (NWC) arrays as one-row NHWC views (None stays None)."""
    if rank == 2:
        return arrays
    return tuple(None if a is None else a[:, None] for a in arrays)


def _conv_forward(x, w, b, out, strides, padding, dilation_rate, groups, activation,
                  pre_activation, rank, depthwise=False):
    g, out, pre_activation, activation = check.conv_forward_args(
        x, w, b, out, strides, padding, dilation_rate, groups, activation, pre_activation,
        rank=rank, depthwise=depthwise)
    x2, out2, pre2 = _as_2d(rank, x, out, pre_activation)
    w2 = w if rank == 2 else w[None]
    target = _target(out2)
    pre_t = None if pre2 is None else _target(pre2)
    run = _conv.depthwise_forward if depthwise else _conv.conv2d_forward
    run(_c(x2), _c(w2), None if b is None else _c(b), target, pre_t, g, _ACT[activation],
        _DEFAULT_PARAM[activation])
    if pre2 is not None:
        _finish(pre2, pre_t)
    _finish(out2, target)
    return out


def _conv_backward(dy, x, w, y, strides, padding, dilation_rate, groups, activation,
                   pre_activation, dx, dw, db, need_dx, use_bias, rank, depthwise=False):
    g, dx, dw, db, saved, activation = check.conv_backward_args(
        dy, x, w, y, strides, padding, dilation_rate, groups, activation, pre_activation,
        dx, dw, db, need_dx, use_bias, rank=rank, depthwise=depthwise)
    dy2, x2, saved2, dx2 = _as_2d(rank, dy, x, saved, dx)
    w2 = w if rank == 2 else w[None]
    dw_t = _target(dw)             # (dw itself when C-contiguous: no copy back)
    dx_t = None if dx2 is None else _target(dx2)
    db_t = None if db is None else _target(db)
    dz = _scratch_buffer((g.n * g.oh * g.ow, g.cout), dy.dtype)
    run = _conv.depthwise_backward if depthwise else _conv.conv2d_backward
    run(_c(dy2), _c(x2), _c(w2), _c(saved2), _ACT[activation], _DEFAULT_PARAM[activation],
        dz, dx_t, dw_t.reshape(w2.shape), db_t, g)
    _finish(dw, dw_t)
    if dx is not None:
        _finish(dx2, dx_t)
    if db is not None:
        _finish(db, db_t)
    return dx, dw, db


def conv2d_forward(x, w, b=None, out=None, *, strides=1, padding="valid",
                   dilation_rate=1, groups=1, activation="linear", pre_activation=None):
    return _conv_forward(x, w, b, out, strides, padding, dilation_rate, groups, activation,
                         pre_activation, 2)


def conv2d_backward(dy, x, w, y, *, strides=1, padding="valid", dilation_rate=1,
                    groups=1, activation="linear", pre_activation=None, dx=None, dw=None,
                    db=None, need_dx=True, use_bias=True):
    return _conv_backward(dy, x, w, y, strides, padding, dilation_rate, groups, activation,
                          pre_activation, dx, dw, db, need_dx, use_bias, 2)


def conv1d_forward(x, w, b=None, out=None, *, strides=1, padding="valid",
                   dilation_rate=1, groups=1, activation="linear", pre_activation=None):
    return _conv_forward(x, w, b, out, strides, padding, dilation_rate, groups, activation,
                         pre_activation, 1)


def conv1d_backward(dy, x, w, y, *, strides=1, padding="valid", dilation_rate=1,
                    groups=1, activation="linear", pre_activation=None, dx=None, dw=None,
                    db=None, need_dx=True, use_bias=True):
    return _conv_backward(dy, x, w, y, strides, padding, dilation_rate, groups, activation,
                          pre_activation, dx, dw, db, need_dx, use_bias, 1)


def depthwise_conv2d_forward(x, w, b=None, out=None, *, strides=1, padding="valid",
                             dilation_rate=1, activation="linear", pre_activation=None):
    return _conv_forward(x, w, b, out, strides, padding, dilation_rate, 1, activation,
                         pre_activation, 2, depthwise=True)


def depthwise_conv2d_backward(dy, x, w, y, *, strides=1, padding="valid",
                              dilation_rate=1, activation="linear", pre_activation=None,
                              dx=None, dw=None, db=None, need_dx=True, use_bias=True):
    return _conv_backward(dy, x, w, y, strides, padding, dilation_rate, 1, activation,
                          pre_activation, dx, dw, db, need_dx, use_bias, 2, depthwise=True)


# ----------------------------------------------------------------------- pooling

def max_pool2d_forward(x, out=None, argmax=None, *, pool_size=2, strides=None,
                       padding="valid"):
    g, out = check.pool_forward_args(x, out, pool_size, strides, padding)
    argmax = check.argmax_output("argmax", argmax, out.shape, (("x", x), ("out", out)))
    target, am_t = _target(out), _target(argmax)
    _pooling.max_pool(_c(x), target, am_t, g)
    _finish(argmax, am_t)
    return _finish(out, target), argmax


def max_pool2d_backward(dy, argmax, dx, *, pool_size=2, strides=None, padding="valid"):
    g, dx = check.max_pool_backward_args(dy, argmax, dx, pool_size, strides, padding)
    target = _target(dx)
    _pooling.max_pool_backward(_c(dy), _c(argmax), target)
    return _finish(dx, target)


def avg_pool2d_forward(x, out=None, *, pool_size=2, strides=None, padding="valid"):
    g, out = check.pool_forward_args(x, out, pool_size, strides, padding)
    target = _target(out)
    _pooling.avg_pool(_c(x), target, g)
    return _finish(out, target)


def avg_pool2d_backward(dy, dx, *, pool_size=2, strides=None, padding="valid"):
    g, dx = check.avg_pool_backward_args(dy, dx, pool_size, strides, padding)
    target = _target(dx)
    _pooling.avg_pool_backward(_c(dy), target, g)
    return _finish(dx, target)


def global_avg_pool2d_forward(x, out=None):
    out = check.global_pool_forward_args(x, out)
    target = _target(out)
    _pooling.global_avg_pool(_c(x), target)
    return _finish(out, target)


def global_avg_pool2d_backward(dy, dx):
    dx = check.global_pool_backward_args(dy, dx)
    target = _target(dx)
    _pooling.global_avg_pool_backward(_c(dy), target)
    return _finish(dx, target)


def global_max_pool2d_forward(x, out=None, argmax=None):
    out = check.global_pool_forward_args(x, out)
    argmax = check.argmax_output("argmax", argmax, out.shape, (("x", x), ("out", out)))
    target, am_t = _target(out), _target(argmax)
    _pooling.global_max_pool(_c(x), target, am_t)
    _finish(argmax, am_t)
    return _finish(out, target), argmax


def global_max_pool2d_backward(dy, argmax, dx):
    dx = check.global_pool_backward_args(dy, dx, argmax, want_argmax=True)
    target = _target(dx)
    _pooling.global_max_pool_backward(_c(dy), _c(argmax), target)
    return _finish(dx, target)


# ----------------------------------------------------------- batch normalisation
# The passes over the batch are compiled (kernels.cpu.normalization); the per-channel
# arithmetic between them is the reference's own NumPy expressions, so the scale,
# shift and moving statistics are the reference's bits.

def _moments(x2):
    c = x2.shape[1]
    mean, var = np.empty(c), np.empty(c)
    _normalization.batch_norm_moments(x2, mean, var)
    return mean, var


def _bn_apply(x, out, scale, shift):
    target = _target(out)
    _normalization.batch_norm_apply(_last_axis_rows(_c(x)), _c(scale.astype(x.dtype)),
                                    _c(np.asarray(shift, x.dtype)),
                                    _last_axis_rows(target))
    return _finish(out, target)


def batch_norm_forward(x, gamma=None, beta=None, moving_mean=None, moving_variance=None,
                       out=None, *, momentum=0.99, epsilon=1e-3):
    out, momentum, epsilon = check.batch_norm_forward_args(
        x, gamma, beta, moving_mean, moving_variance, out, momentum, epsilon)
    scale, shift, mean, var = _reference._bn_batch_coefficients(
        *_moments(_last_axis_rows(_c(x))), x.dtype, gamma, beta, epsilon)
    _bn_apply(x, out, scale, shift)
    _reference._bn_update_moving(moving_mean, moving_variance, mean, var, momentum)
    return out


def batch_norm_inference(x, gamma, beta, moving_mean, moving_variance, out=None, *,
                         epsilon=1e-3):
    out, epsilon = check.batch_norm_inference_args(x, gamma, beta, moving_mean,
                                                   moving_variance, out, epsilon)
    return _bn_apply(x, out, *_reference._bn_inference_coefficients(
        gamma, beta, moving_mean, moving_variance, x.dtype, epsilon))


def batch_norm_backward(dy, x, gamma=None, dx=None, dgamma=None, dbeta=None, *,
                        epsilon=1e-3):
    dx, dgamma, dbeta, epsilon = check.batch_norm_backward_args(dy, x, gamma, dx, dgamma,
                                                                dbeta, epsilon)
    x2, dy2 = _last_axis_rows(_c(x)), _last_axis_rows(_c(dy))
    m, c = x2.shape
    mean, var = _moments(x2)
    r = 1 / np.sqrt(var + epsilon)
    sum_dy, sum_dy_xhat = np.empty(c), np.empty(c)
    _normalization.batch_norm_grad_sums(dy2, x2, mean, r, sum_dy, sum_dy_xhat)
    scale = r if gamma is None else r * gamma
    dgamma[...] = sum_dy_xhat
    dbeta[...] = sum_dy
    target = _target(dx)
    _normalization.batch_norm_dx(dy2, x2, mean, r, np.ascontiguousarray(scale),
                                 sum_dy / m, sum_dy_xhat / m, _last_axis_rows(target))
    _finish(dx, target)
    return dx, dgamma, dbeta


# --------------------------------------------------------------------- embedding

def embedding_forward(ids, table, out=None):
    flat, out = check.embedding_forward_args(ids, table, out)
    target = _target(out)
    _embedding.forward(flat, _c(table), target.reshape(-1, table.shape[1]))
    return _finish(out, target)


def embedding_backward(dy, ids, dtable):
    flat, dtable = check.embedding_backward_args(dy, ids, dtable)
    target = _target(dtable)
    _embedding.backward(_c(dy).reshape(-1, dtable.shape[1]), flat, target)
    return _finish(dtable, target)


# -------------------------------------------------------------------- optimizers
# The compiled updates need C-contiguous w and state; others are updated through a
# contiguous copy written back afterwards.

# float64 values up to this one (half float32's smallest subnormal) round to 0 in float32:
# the unchecked path's float comparison for checks.decay_factor's rule
_F32_ROUNDS_TO_ZERO = 2.0 ** -150


def _decays(w, learning_rate, weight_decay):
    """Whether the decoupled weight decay applies (``checks.decay_factor``: its factor
    rounded to w's dtype is not 0).  Decided here, in Python: see
    kernels/cpu/optimizers.pyx's entry points."""
    return check.decay_factor(w.dtype, learning_rate, weight_decay)[1]


def _flat(arrays):
    work = [None if a is None else _c(a) for a in arrays]
    return work, [None if a is None else a.reshape(-1) for a in work]


def _write_back(arrays, work):
    for a, b in zip(arrays, work):
        if a is not None and b is not a:
            a[...] = b


def sgd_update(w, g, m=None, *, learning_rate=0.01, momentum=0.0, nesterov=False,
               weight_decay=0.0):
    learning_rate, momentum, nesterov, weight_decay = check.sgd_args(
        w, g, m, learning_rate, momentum, nesterov, weight_decay)
    arrays = [w, m if momentum != 0.0 else None]
    work, (fw, fm) = _flat(arrays)
    _optimizers.sgd(fw, _c(g).reshape(-1), fm, learning_rate, momentum, nesterov, weight_decay,
                    _decays(w, learning_rate, weight_decay))
    _write_back(arrays, work)
    return w


def _adam(w, g, m, v, step, learning_rate, beta_1, beta_2, epsilon, amsgrad, v_hat,
          weight_decay):
    alpha, learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay = check.adam_args(
        w, g, m, v, step, learning_rate, beta_1, beta_2, epsilon, amsgrad, v_hat, weight_decay)
    arrays = [w, m, v, v_hat if amsgrad else None]
    work, (fw, fm, fv, fh) = _flat(arrays)
    _optimizers.adam(fw, _c(g).reshape(-1), fm, fv, fh, alpha, beta_1, beta_2, epsilon,
                     learning_rate, weight_decay, _decays(w, learning_rate, weight_decay))
    _write_back(arrays, work)
    return w


def adam_update(w, g, m, v, *, step, learning_rate=0.001, beta_1=0.9, beta_2=0.999,
                epsilon=1e-7, amsgrad=False, v_hat=None, weight_decay=0.0):
    return _adam(w, g, m, v, step, learning_rate, beta_1, beta_2, epsilon, amsgrad, v_hat,
                 weight_decay)


def adamw_update(w, g, m, v, *, step, learning_rate=0.001, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, v_hat=None, weight_decay=0.004):
    return _adam(w, g, m, v, step, learning_rate, beta_1, beta_2, epsilon, amsgrad, v_hat,
                 weight_decay)


def rmsprop_update(w, g, v, *, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                   centered=False, mom=None, mg=None, weight_decay=0.0):
    learning_rate, rho, momentum, epsilon, centered, weight_decay = check.rmsprop_args(
        w, g, v, learning_rate, rho, momentum, epsilon, centered, mom, mg, weight_decay)
    arrays = [w, v, mom if momentum != 0.0 else None, mg if centered else None]
    work, (fw, fv, fmom, fmg) = _flat(arrays)
    _optimizers.rmsprop(fw, _c(g).reshape(-1), fv, fmom, fmg, learning_rate, rho, momentum,
                        epsilon, weight_decay, _decays(w, learning_rate, weight_decay))
    _write_back(arrays, work)
    return w


def adagrad_update(w, g, acc, *, learning_rate=0.001, epsilon=1e-7, weight_decay=0.0):
    learning_rate, epsilon, weight_decay = check.adagrad_args(w, g, acc, learning_rate,
                                                              epsilon, weight_decay)
    arrays = [w, acc]
    work, (fw, facc) = _flat(arrays)
    _optimizers.adagrad(fw, _c(g).reshape(-1), facc, learning_rate, epsilon, weight_decay,
                        _decays(w, learning_rate, weight_decay))
    _write_back(arrays, work)
    return w


# ----------------------------------------------------------- unchecked entry points
# For ``dl``'s training loop only (see docs/architecture.md, "A training step"): the
# compiled code of a few kernels, without validation or layout fixes.  The caller must
# pass arrays that the public kernel of the same name has already accepted: the same
# shapes, dtype and buffers (so no forbidden overlap), C-contiguous outputs, y_true and
# dy, element-aligned strides for x and w, 1-D C-contiguous views of every optimizer
# array, and hyper-parameters that the public kernel validated.  Nothing here is part of
# the public API, and nothing a user passes reaches it unvalidated: dl runs the public
# kernels on the first step of a batch shape, and only then switches to these.

class _Unchecked:
    """The unchecked entry points for one dtype (``unchecked(dtype)``)."""

    def __init__(self, dtype):
        key = "float" if dtype == np.float32 else "double"
        self.dtype = dtype
        self._scalar = dtype.type
        self._forward = _dense.forward[key]
        self._backward = _dense.backward[key]
        self._loss_value = _losses.loss_value[key]
        self._loss_gradient = _losses.loss_gradient[key]
        self._sparse = _losses.sparse_crossentropy[key]
        self._softmax_crossentropy = _losses.softmax_crossentropy[key]
        self._activation = _elementwise.activation_forward[key]
        self._sgd = _optimizers.sgd[key]
        self._adam = _optimizers.adam[key]
        self._rmsprop = _optimizers.rmsprop[key]
        self._adagrad = _optimizers.adagrad[key]
        self._zero = _F32_ROUNDS_TO_ZERO if dtype == np.float32 else 0.0

    @staticmethod
    def activation_id(activation):
        """(compiled id, parameter) of an activation name, as dense_forward uses them."""
        return _ACT[activation], _DEFAULT_PARAM[activation]

    @staticmethod
    def loss_id(name):
        """The compiled id of an elementwise or categorical loss (a kernel's name, with
        a ``_logits`` suffix for from_logits)."""
        return _LOSS[name]

    def dense_forward(self, act, x, w, b, out, pre):
        """dense_forward(x, w, b, out, activation, pre_activation) with ``act`` from
        activation_id()."""
        self._forward(act[0], act[1], x, w, b, out, pre)

    def dense_backward(self, act, dy, x, w, saved, dz, dx, dw, db):
        """dense_backward, ``saved`` being y (or the pre-activation for gelu) and ``dz``
        a scratch array of dy's shape."""
        self._backward(act[0], act[1], dy, x, w, saved, dz, dx, dw, db)

    def loss(self, loss, param, y_true, y_pred, out, w=None):
        """The loss (a scalar of the dtype, as the public kernels return it) and its
        gradient into ``out``, for 2-D arrays; ``w`` None or the rows' weights."""
        if w is None:      # the unweighted call without the argument: a little faster
            value = self._loss_value(loss, param, y_true, y_pred)
            self._loss_gradient(loss, param, y_true, y_pred, out)
        else:
            value = self._loss_value(loss, param, y_true, y_pred, w)
            self._loss_gradient(loss, param, y_true, y_pred, out, w)
        return self._scalar(value)

    def sparse_crossentropy(self, from_logits, labels, y_pred, out, w=None):
        """Sparse categorical cross-entropy (the fused softmax one from logits) and its
        gradient into ``out``: the value of sparse_categorical_crossentropy and the
        gradient of its backprop (or of sparse_softmax_crossentropy), in one pass.
        ``labels`` must be int64, C-contiguous, and in range: the compiled loop indexes
        rows with them unchecked."""
        return self._scalar(self._sparse(from_logits, labels, y_pred, out, w))

    def softmax_crossentropy(self, y_true, logits, out, w=None):
        """softmax_crossentropy(y_true, logits, out): the loss; the gradient in out."""
        return self._scalar(self._softmax_crossentropy(y_true, logits, out, w))

    def activation(self, act, x, out):
        """An activation's forward pass on 2-D arrays, ``act`` from activation_id()."""
        self._activation(act[0], act[1], x, out)

    def _decays(self, learning_rate, weight_decay):
        return weight_decay * learning_rate > self._zero

    def sgd_update(self, w, g, m, learning_rate, momentum, nesterov, weight_decay):
        self._sgd(w, g, m if momentum != 0.0 else None, learning_rate, momentum, nesterov,
                  weight_decay, self._decays(learning_rate, weight_decay))

    def adam_update(self, w, g, m, v, step, learning_rate, beta_1, beta_2, epsilon,
                    amsgrad, v_hat, weight_decay):
        # the step size exactly as kernels.checks.adam_args gives it to the public kernel
        alpha = _reference.adam_step_size(learning_rate, beta_1, beta_2, step)
        self._adam(w, g, m, v, v_hat if amsgrad else None, alpha, beta_1, beta_2, epsilon,
                   learning_rate, weight_decay, self._decays(learning_rate, weight_decay))

    def rmsprop_update(self, w, g, v, learning_rate, rho, momentum, epsilon, centered, mom,
                       mg, weight_decay):
        self._rmsprop(w, g, v, mom if momentum != 0.0 else None, mg if centered else None,
                      learning_rate, rho, momentum, epsilon, weight_decay,
                      self._decays(learning_rate, weight_decay))

    def adagrad_update(self, w, g, acc, learning_rate, epsilon, weight_decay):
        self._adagrad(w, g, acc, learning_rate, epsilon, weight_decay,
                      self._decays(learning_rate, weight_decay))


_UNCHECKED = {}


def unchecked(dtype):
    """The unchecked entry points for float32 or float64 arrays (see above), or None for
    another dtype.  Private: dl's training loop only."""
    dtype = np.dtype(dtype)
    if dtype not in check.FLOAT_DTYPES:
        return None
    if dtype not in _UNCHECKED:
        _UNCHECKED[dtype] = _Unchecked(dtype)
    return _UNCHECKED[dtype]


# each kernel documents itself with its reference twin's docstring
# Every kernel of the specification, by the same names (the consistency test checks
# the signatures match).
__all__ = list(_reference.__all__)
_reference.share_docs({name: globals()[name] for name in __all__}, "Compiled twin")
