"""The NumPy reference: the specification of every kernel.

Every backend (``cython``, ``cuda``) exposes the functions below with the same names,
parameters and defaults, and must compute the same values up to float rounding.
Conventions shared by all kernels:

* Inputs are NumPy arrays of dtype float32 or float64 (all floating inputs of one call
  share a dtype); nothing is converted silently.  Empty arrays are rejected.
* ``out=None`` allocates the result; a given ``out`` must have the result's shape and
  dtype, is written in place and returned.  Elementwise kernels accept ``out`` equal to
  an input (in place); GEMM-based kernels reject any overlap with their inputs.
* Hyper-parameters are keyword-only, with Keras 3's defaults.
* Bad arguments raise ``TypeError``/``ValueError`` naming the argument (``checks``).

Shapes: ``x`` of shape ``(n, n_in)`` (a batch of rows), a Dense kernel ``w`` of shape
``(n_in, units)`` as in Keras, a bias ``b`` of shape ``(units,)``.
"""
import math
from types import MappingProxyType
from typing import NamedTuple

import numpy as np

EPSILON = 1e-7  # Keras's backend.epsilon(): probability clipping and optimizer defaults


# ---------------------------------------------------------------------------- tables
# Each kernel family's table is written once, here.  The compiled twins and ``dl``
# derive from it (kernels.cuda, dl.activations) or are checked against it by
# tests/kernels/test_tables.py (the C enums of kernels/cpu/*.pxd, which must be
# compile-time constants), which fails when one side gains an entry the other lacks.

class ActivationSpec(NamedTuple):
    """One activation kernel pair ``name`` / ``backprop_name``."""
    params: MappingProxyType   # its keyword parameters and their Keras 3 defaults
    needs_input: bool          # its backprop takes the input x: f' not had from y = f(x)


def _spec(params, needs_input=False):
    return ActivationSpec(MappingProxyType(params), needs_input)   # read-only


ACTIVATION_SPECS = MappingProxyType({
    "linear": _spec({}),
    "relu": _spec({}),
    "leaky_relu": _spec({"negative_slope": 0.2}),
    "elu": _spec({"alpha": 1.0}),
    "sigmoid": _spec({}),
    "tanh": _spec({}),
    "softmax": _spec({}),
    "softplus": _spec({}),
    "gelu": _spec({"approximate": False}, needs_input=True),
})
ACTIVATIONS = tuple(ACTIVATION_SPECS)
ACTIVATIONS_NEEDING_INPUT = tuple(n for n, s in ACTIVATION_SPECS.items() if s.needs_input)
# The compiled twins select an activation by id: its position here (the ACT_* enum of
# kernels/cpu/elementwise.pxd, kernels.cuda.elementwise.ACT).  Past the public names
# come the variants a parameter selects: "gelu_tanh" is gelu(approximate=True).
ACTIVATION_KERNELS = ACTIVATIONS + ("gelu_tanh",)
# The one real parameter a compiled activation takes (leaky_relu's negative_slope,
# elu's alpha), at its default: what the fused dense passes apply.  0.0 for the others.
ACTIVATION_DEFAULT_PARAM = {
    name: next((float(v) for v in spec.params.values() if not isinstance(v, bool)), 0.0)
    for name, spec in ACTIVATION_SPECS.items()}

# The losses with an elementwise or categorical compiled kernel, in the order of their
# ids (the enum of kernels/cpu/losses.pxd, kernels.cuda.losses.LOSS_IDS);
# "<name>_logits" is the kernel of from_logits=True.  (The sparse and the fused softmax
# cross-entropies are row kernels of their own.)
LOSS_KERNELS = ("mean_squared_error", "mean_absolute_error", "huber",
                "binary_crossentropy", "binary_crossentropy_logits",
                "categorical_crossentropy", "categorical_crossentropy_logits")


def adam_step_size(learning_rate, beta_1, beta_2, step):
    """Adam's bias-corrected step size at step ``t = step`` (Keras 3), in double
    precision: ``alpha = learning_rate * sqrt(1 - beta_2^t) / (1 - beta_1^t)``.  Every
    backend's Adam and dl's validated-once step take it from here."""
    return learning_rate * math.sqrt(1 - beta_2 ** step) / (1 - beta_1 ** step)


# (after the tables: checks reads them)
from . import checks as check  # noqa: E402

__all__ = [
    "gemm", "bias_add", "column_sums", "dense_forward", "dense_backward",
    "linear", "backprop_linear", "relu", "backprop_relu", "leaky_relu",
    "backprop_leaky_relu", "elu", "backprop_elu", "sigmoid", "backprop_sigmoid",
    "tanh", "backprop_tanh", "softmax", "backprop_softmax", "softplus",
    "backprop_softplus", "gelu", "backprop_gelu",
    "mean_squared_error", "backprop_mean_squared_error",
    "mean_absolute_error", "backprop_mean_absolute_error",
    "huber", "backprop_huber",
    "binary_crossentropy", "backprop_binary_crossentropy",
    "categorical_crossentropy", "backprop_categorical_crossentropy",
    "sparse_categorical_crossentropy", "backprop_sparse_categorical_crossentropy",
    "softmax_crossentropy", "sparse_softmax_crossentropy",
    "sgd_update", "adam_update", "adamw_update", "rmsprop_update", "adagrad_update",
]


def _store(out, value):
    out[...] = value
    return out


# --------------------------------------------------------------------------- GEMM

def gemm(a, b, out=None, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0):
    """General matrix multiply: ``out = alpha * op(a) @ op(b) + beta * out``.

    ``op(a)`` is ``a.T`` when ``trans_a`` else ``a``, of shape ``(m, k)``; ``op(b)`` of
    shape ``(k, n)``; ``out`` of shape ``(m, n)``.  As in BLAS, with ``beta == 0`` the
    previous content of ``out`` is not read (NaN in it does not propagate), and with
    ``alpha == 0`` neither ``a`` nor ``b`` is (``out = beta * out``).  A nonzero
    ``beta`` needs an ``out``.  ``out`` must not overlap ``a`` or ``b``.
    """
    out, trans_a, trans_b, alpha, beta = check.gemm_args(a, b, out, trans_a, trans_b,
                                                         alpha, beta)
    opa = a.T if trans_a else a
    opb = b.T if trans_b else b
    if alpha == 0.0:
        product = np.zeros(out.shape, out.dtype)
    else:
        product = alpha * (opa @ opb) if alpha != 1.0 else opa @ opb
    if beta == 0.0:
        return _store(out, product)
    return _store(out, product + beta * out)


# ------------------------------------------------------------------- bias, sums

def bias_add(x, b, out=None):
    """Row-wise bias: ``out[i, j] = x[i, j] + b[j]``; x ``(n, m)``, b ``(m,)``."""
    out = check.bias_args(x, b, out)
    return _store(out, x + b)


def column_sums(x, out=None):
    """Sum over rows: ``out[j] = sum_i x[i, j]``; x ``(n, m)``, out ``(m,)``.

    This is the bias gradient ``dL/db = sum over the batch of dL/dz``.
    """
    out = check.column_sums_args(x, out)
    return _store(out, x.sum(axis=0))


# ------------------------------------------------------------------- activations
# Each forward ``f(x, out=None)`` is followed by its backprop, which returns
# ``dL/dx = dL/dy * f'(x)``, computed from the saved output ``y`` wherever the maths
# allows (all but gelu).  Shapes: any rank >= 1; softmax works along the last axis.

_unary = check.unary
_backprop_args = check.backprop


def linear(x, out=None):
    """Identity: ``y = x``."""
    out = _unary(x, out)
    return _store(out, x)


def backprop_linear(dy, y, out=None):
    """``dx = dy``."""
    out = _backprop_args(dy, y, out)
    return _store(out, dy)


def relu(x, out=None):
    """``y = max(x, 0)``."""
    out = _unary(x, out)
    return _store(out, np.maximum(x, 0))


def backprop_relu(dy, y, out=None):
    """``dx = dy * (y > 0)`` (the derivative at 0 is taken as 0, as Keras does)."""
    out = _backprop_args(dy, y, out)
    return _store(out, np.where(y > 0, dy, 0))


def leaky_relu(x, out=None, *, negative_slope=0.2):
    """``y = x if x > 0 else negative_slope * x`` (Keras's activation default 0.2)."""
    negative_slope = check.real("negative_slope", negative_slope, low=0.0)
    out = _unary(x, out)
    return _store(out, np.where(x > 0, x, negative_slope * x))


def backprop_leaky_relu(dy, y, out=None, *, negative_slope=0.2):
    """``dx = dy * (1 if y > 0 else negative_slope)``.

    ``y > 0`` exactly when ``x > 0`` because ``negative_slope >= 0``.
    """
    negative_slope = check.real("negative_slope", negative_slope, low=0.0)
    out = _backprop_args(dy, y, out)
    return _store(out, np.where(y > 0, dy, negative_slope * dy))


def elu(x, out=None, *, alpha=1.0):
    """``y = x if x > 0 else alpha * (exp(x) - 1)``."""
    alpha = check.real("alpha", alpha, low=0.0, low_open=True)
    out = _unary(x, out)
    return _store(out, np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))))


def backprop_elu(dy, y, out=None, *, alpha=1.0):
    """``dx = dy * (1 if y > 0 else y + alpha)`` since ``alpha * exp(x) = y + alpha``."""
    alpha = check.real("alpha", alpha, low=0.0, low_open=True)
    out = _backprop_args(dy, y, out)
    return _store(out, np.where(y > 0, dy, dy * (y + alpha)))


def sigmoid(x, out=None):
    """``y = 1 / (1 + exp(-x))``, evaluated without overflow for large ``|x|``."""
    out = _unary(x, out)
    e = np.exp(-np.abs(x))
    return _store(out, np.where(x >= 0, 1 / (1 + e), e / (1 + e)))


def backprop_sigmoid(dy, y, out=None):
    """``dx = dy * y * (1 - y)``."""
    out = _backprop_args(dy, y, out)
    return _store(out, dy * y * (1 - y))


def tanh(x, out=None):
    """``y = tanh(x)``."""
    out = _unary(x, out)
    return _store(out, np.tanh(x))


def backprop_tanh(dy, y, out=None):
    """``dx = dy * (1 - y^2)``."""
    out = _backprop_args(dy, y, out)
    return _store(out, dy * (1 - y * y))


def softmax(x, out=None):
    """Stable softmax along the last axis: ``y = exp(x - max(x)) / sum(exp(x - max(x)))``."""
    out = _unary(x, out)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return _store(out, e / e.sum(axis=-1, keepdims=True))


def backprop_softmax(dy, y, out=None):
    """``dx = y * (dy - sum(dy * y, axis=-1))`` (the softmax Jacobian applied to dy)."""
    out = _backprop_args(dy, y, out)
    return _store(out, y * (dy - (dy * y).sum(axis=-1, keepdims=True)))


def softplus(x, out=None):
    """``y = log(1 + exp(x))``, evaluated as ``max(x, 0) + log1p(exp(-|x|))``."""
    out = _unary(x, out)
    return _store(out, np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x))))


def backprop_softplus(dy, y, out=None):
    """``dx = dy * sigmoid(x) = dy * (1 - exp(-y))``, as ``-expm1(-y)`` for accuracy."""
    out = _backprop_args(dy, y, out)
    return _store(out, dy * -np.expm1(-y))


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_C = 0.044715


def _erf(x):
    """Elementwise erf with libm accuracy (SciPy's when installed, else math.erf)."""
    try:
        from scipy.special import erf
    except ImportError:  # NumPy has no erf: fall back to the C library's, one by one
        erf = np.vectorize(math.erf, otypes=[x.dtype])
    return erf(x).astype(x.dtype, copy=False)


def gelu(x, out=None, *, approximate=False):
    """Gaussian error linear unit.

    Exact (Keras's default): ``y = 0.5 * x * (1 + erf(x / sqrt(2)))``.
    ``approximate=True``: ``y = 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))``.
    """
    approximate = check.flag("approximate", approximate)
    out = _unary(x, out)
    if approximate:
        return _store(out, 0.5 * x * (1 + np.tanh(_SQRT_2_OVER_PI * (x + _GELU_C * x ** 3))))
    return _store(out, 0.5 * x * (1 + _erf(x * _INV_SQRT_2)))


def backprop_gelu(dy, x, out=None, *, approximate=False):
    """``dx = dy * gelu'(x)``; takes the input ``x`` (gelu is not invertible).

    Exact: ``gelu'(x) = Phi(x) + x * phi(x)``, Phi/phi the standard normal cdf/pdf.
    Approximate: with ``t = tanh(u)``, ``u = sqrt(2/pi) (x + 0.044715 x^3)``:
    ``0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)``.

    The second term (``x * phi(x)``, or the one with ``1 - t^2``) vanishes as
    ``|x| -> inf`` and is taken as 0 where it would be ``inf * 0``: exact form at
    ``x = +-inf``, approximate form wherever ``1 - t^2`` rounds to 0.  So
    ``gelu'(+inf) = 1`` and ``gelu'(-inf) = 0`` (the limits): ``dx = dy`` at ``+inf``,
    ``dy * 0`` (0, or NaN for an infinite ``dy``) at ``-inf``.
    """
    approximate = check.flag("approximate", approximate)
    out = _backprop_args(dy, x, out, y_name="x")
    if approximate:
        t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_C * x ** 3))
        s = 1 - t * t
        d = 0.5 * (1 + t) + np.where(
            s == 0, 0, 0.5 * x * s * _SQRT_2_OVER_PI * (1 + 3 * _GELU_C * x * x))
    else:
        d = 0.5 * (1 + _erf(x * _INV_SQRT_2)) + np.where(
            np.isinf(x), 0, x * _INV_SQRT_2PI * np.exp(-0.5 * x * x))
    return _store(out, dy * d)


# the pairs of the table, by name (a name without its functions fails at import)
_FORWARD = {name: globals()[name] for name in ACTIVATIONS}
_BACKWARD = {name: globals()["backprop_" + name] for name in ACTIVATIONS}


# ------------------------------------------------------------------ dense layer

def dense_forward(x, w, b=None, out=None, *, activation="linear", pre_activation=None):
    """A Dense layer's forward pass: ``z = x @ w + b``, ``y = activation(z)``.

    x ``(n, n_in)``, w ``(n_in, units)``, b ``(units,)`` or None (no bias), out and
    ``pre_activation`` ``(n, units)``.  When ``pre_activation`` is given, ``z`` is
    stored there too (``dense_backward`` needs it for activations in
    ``ACTIVATIONS_NEEDING_INPUT``).  The activation takes its default parameters.
    """
    out, pre_activation, activation = check.dense_forward_args(x, w, b, out, activation,
                                                               pre_activation)
    z = x @ w
    if b is not None:
        z = z + b
    if pre_activation is not None:
        pre_activation[...] = z
    return _FORWARD[activation](z, out=out)


def dense_backward(dy, x, w, y, *, activation="linear", pre_activation=None,
                   dx=None, dw=None, db=None, need_dx=True, use_bias=True):
    """A Dense layer's backward pass, from ``dy = dL/dy``.

    ``dz = dy * activation'(z)`` (from the output ``y``, or from ``pre_activation`` = z
    for activations in ``ACTIVATIONS_NEEDING_INPUT``); then, by the chain rule,
    ``dw = x^T @ dz`` ``(n_in, units)``, ``db = sum over rows of dz`` ``(units,)``,
    ``dx = dz @ w^T`` ``(n, n_in)``.  Returns ``(dx, dw, db)``; ``dx`` is None when
    ``need_dx`` is False (a first layer needs none), ``db`` None when ``use_bias`` is
    False.  ``dx``/``dw``/``db`` given are written in place.
    """
    dx, dw, db, saved, activation = check.dense_backward_args(
        dy, x, w, y, activation, pre_activation, dx, dw, db, need_dx, use_bias)
    dz = _BACKWARD[activation](dy, saved)
    dw[...] = x.T @ dz
    if db is not None:
        db[...] = dz.sum(axis=0)
    if dx is not None:
        dx[...] = dz @ w.T
    return dx, dw, db


# ------------------------------------------------------------------------ losses
# Keras 3 reduction "sum_over_batch_size": the per-sample loss (a mean over the last
# axis, or a sum over classes for cross-entropies) averaged over the batch.  Every
# loss returns a NumPy scalar of the input dtype; its ``backprop_`` twin returns
# ``dL/dy_pred`` with that same 1/n reduction folded in.
# y_true and y_pred have shape (n,) or (n, d); a 1-D array is n samples of one value.
#
# ``sample_weight`` (every loss kernel): None, or one weight per sample, a 1-D array of
# y_pred's dtype and length n.  The loss is then Keras's weighted
# "sum_over_batch_size", ``sum_i w_i * loss_i / n`` (divided by the number of samples,
# not by the weights' sum), and the gradient's row i is multiplied by ``w_i``.  (Keras's
# other reductions are this with the weights rescaled: dl.losses does that.)

def _pair(y_true, y_pred, ndim=None):
    check.loss_args(y_true, y_pred, ndim=ndim)


def _loss_out(out, y_true, y_pred):
    return check.loss_args(y_true, y_pred, out, want_out=True)


def _scalar(value, dtype):
    return dtype.type(value)


def _reduce(terms, weights, dtype, per_row=False):
    """The loss from its terms: elementwise terms of shape (n,) or (n, d) (each
    sample's loss is the mean of its row), or per-sample losses (``per_row``)."""
    if weights is None:
        return _scalar(np.mean(terms), dtype)
    per = terms if (per_row or terms.ndim == 1) else terms.mean(axis=-1)
    return _scalar(np.sum(per * weights) / per.shape[0], dtype)


def _weigh(grad, weights):
    """The gradient with row i multiplied by weight i (unchanged without weights)."""
    if weights is None:
        return grad
    return grad * (weights[:, None] if grad.ndim == 2 else weights)


def _mse_terms(y_true, y_pred):
    return (y_pred - y_true) ** 2


def _mae_terms(y_true, y_pred):
    return np.abs(y_pred - y_true)


def _huber_terms(y_true, y_pred, delta):
    e = np.abs(y_pred - y_true)
    return np.where(e <= delta, 0.5 * e * e, delta * (e - 0.5 * delta))


def _bce_terms(y_true, y_pred, from_logits):
    if from_logits:
        z = y_pred
        return np.maximum(z, 0) - z * y_true + np.log1p(np.exp(-np.abs(z)))
    p = np.clip(y_pred, EPSILON, 1 - EPSILON)
    return -(y_true * np.log(p) + (1 - y_true) * np.log(1 - p))


def _cce_rows(y_true, y_pred, from_logits):
    if from_logits:
        return -(y_true * _log_softmax(y_pred)).sum(axis=-1)
    q = y_pred / y_pred.sum(axis=-1, keepdims=True)
    return -(y_true * np.log(np.clip(q, EPSILON, 1 - EPSILON))).sum(axis=-1)


def per_sample_losses(kernel, y_true, y_pred, **params):
    """Not a kernel: the per-sample losses a loss kernel reduces (what a loss with
    Keras's ``reduction=None`` returns), shape ``(n,)``, for ``kernel`` one of the loss
    kernels' names with its parameters (``delta``, ``from_logits``): an elementwise
    loss's per-sample value is the mean of its row."""
    if kernel == "sparse_categorical_crossentropy":
        labels, _ = check.sparse_args(y_true, y_pred)
        return _sparse_xent(labels, y_pred, check.flag("from_logits",
                                                       params.get("from_logits", False)))
    if kernel == "categorical_crossentropy":
        _pair(y_true, y_pred, ndim=2)
        return _cce_rows(y_true, y_pred, check.flag("from_logits",
                                                    params.get("from_logits", False)))
    _pair(y_true, y_pred)
    if kernel == "mean_squared_error":
        terms = _mse_terms(y_true, y_pred)
    elif kernel == "mean_absolute_error":
        terms = _mae_terms(y_true, y_pred)
    elif kernel == "huber":
        terms = _huber_terms(y_true, y_pred, check.real("delta", params.get("delta", 1.0),
                                                        low=0.0, low_open=True))
    elif kernel == "binary_crossentropy":
        terms = _bce_terms(y_true, y_pred, check.flag("from_logits",
                                                      params.get("from_logits", False)))
    else:
        raise ValueError(f"kernel: expected the name of a loss kernel, got {kernel!r}")
    return terms if terms.ndim == 1 else terms.mean(axis=-1)


def mean_squared_error(y_true, y_pred, *, sample_weight=None):
    """``mean((y_true - y_pred)^2)`` over all elements (Keras's MSE).

    The seed tutorial's ``1/(2N)`` form is half of this; Keras (and we) use ``1/N``.
    """
    _pair(y_true, y_pred)
    w = check.sample_weights(sample_weight, y_pred)
    return _reduce(_mse_terms(y_true, y_pred), w, y_pred.dtype)


def backprop_mean_squared_error(y_true, y_pred, out=None, *, sample_weight=None):
    """``2 * (y_pred - y_true) / size``."""
    _pair(y_true, y_pred)
    out = _loss_out(out, y_true, y_pred)
    w = check.sample_weights(sample_weight, y_pred, out)
    return _store(out, _weigh((y_pred - y_true) * (2.0 / y_pred.size), w))


def mean_absolute_error(y_true, y_pred, *, sample_weight=None):
    """``mean(|y_true - y_pred|)`` over all elements."""
    _pair(y_true, y_pred)
    w = check.sample_weights(sample_weight, y_pred)
    return _reduce(_mae_terms(y_true, y_pred), w, y_pred.dtype)


def backprop_mean_absolute_error(y_true, y_pred, out=None, *, sample_weight=None):
    """``sign(y_pred - y_true) / size`` (0 where they are equal)."""
    _pair(y_true, y_pred)
    out = _loss_out(out, y_true, y_pred)
    w = check.sample_weights(sample_weight, y_pred, out)
    return _store(out, _weigh(np.sign(y_pred - y_true) * (1.0 / y_pred.size), w))


def huber(y_true, y_pred, *, delta=1.0, sample_weight=None):
    """Huber loss, mean over all elements of ``e = y_pred - y_true``:
    ``0.5 e^2`` where ``|e| <= delta``, else ``delta * (|e| - 0.5 delta)``."""
    delta = check.real("delta", delta, low=0.0, low_open=True)
    _pair(y_true, y_pred)
    w = check.sample_weights(sample_weight, y_pred)
    return _reduce(_huber_terms(y_true, y_pred, delta), w, y_pred.dtype)


def backprop_huber(y_true, y_pred, out=None, *, delta=1.0, sample_weight=None):
    """``clip(y_pred - y_true, -delta, delta) / size``."""
    delta = check.real("delta", delta, low=0.0, low_open=True)
    _pair(y_true, y_pred)
    out = _loss_out(out, y_true, y_pred)
    w = check.sample_weights(sample_weight, y_pred, out)
    return _store(out, _weigh(np.clip(y_pred - y_true, -delta, delta) * (1.0 / y_pred.size),
                              w))


def _sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def binary_crossentropy(y_true, y_pred, *, from_logits=False, sample_weight=None):
    """Mean over all elements of ``-(y log p + (1 - y) log(1 - p))``.

    Probabilities are clipped to ``[1e-7, 1 - 1e-7]`` as Keras does.  From logits ``z``
    the stable form ``max(z, 0) - z y + log(1 + exp(-|z|))`` is used.
    """
    from_logits = check.flag("from_logits", from_logits)
    _pair(y_true, y_pred)
    w = check.sample_weights(sample_weight, y_pred)
    return _reduce(_bce_terms(y_true, y_pred, from_logits), w, y_pred.dtype)


def backprop_binary_crossentropy(y_true, y_pred, out=None, *, from_logits=False,
                                 sample_weight=None):
    """From logits: ``(sigmoid(z) - y) / size``.  From probabilities:
    ``((1 - y) / (1 - p) - y / p) / size`` where ``p`` lies inside the clip range, 0 where
    the clip is active (the clip's gradient)."""
    from_logits = check.flag("from_logits", from_logits)
    _pair(y_true, y_pred)
    out = _loss_out(out, y_true, y_pred)
    w = check.sample_weights(sample_weight, y_pred, out)
    scale = 1.0 / y_pred.size
    if from_logits:
        return _store(out, _weigh((_sigmoid(y_pred) - y_true) * scale, w))
    inside = (y_pred >= EPSILON) & (y_pred <= 1 - EPSILON)
    p = np.clip(y_pred, EPSILON, 1 - EPSILON)
    return _store(out, _weigh(np.where(inside, ((1 - y_true) / (1 - p) - y_true / p) * scale,
                                       0), w))


def _log_softmax(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def categorical_crossentropy(y_true, y_pred, *, from_logits=False, sample_weight=None):
    """Mean over rows of ``-sum_j y_j log p_j``; y_true and y_pred ``(n, classes)``.

    From probabilities (Keras): ``p = clip(y_pred / sum(y_pred), 1e-7, 1 - 1e-7)`` per
    row.  From logits: ``log p = log_softmax(y_pred)``.

    The sum is formed term by term, as written: an infinite target ``y_j`` gives an
    infinite loss (NaN where its ``log p_j`` is 0, or where terms of both infinite signs
    meet), and a ``-inf`` logit with ``y_j > 0`` an infinite one (``0 * -inf`` = NaN where
    ``y_j = 0``).
    """
    from_logits = check.flag("from_logits", from_logits)
    _pair(y_true, y_pred, ndim=2)
    w = check.sample_weights(sample_weight, y_pred)
    return _reduce(_cce_rows(y_true, y_pred, from_logits), w, y_pred.dtype, per_row=True)


def backprop_categorical_crossentropy(y_true, y_pred, out=None, *, from_logits=False,
                                      sample_weight=None):
    """Gradient with respect to ``y_pred`` of ``categorical_crossentropy``.

    From logits: ``(softmax(z) * sum_j y_j - y) / n`` (``(p - y) / n`` for one-hot y).
    From probabilities, with ``s = sum_j p_j``, ``q = p / s``, ``c = clip(q)`` and
    ``g_j = -y_j / c_j`` where the clip is inactive (0 where active):
    ``(g_k - sum_j g_j q_j) / (s n)``.
    """
    from_logits = check.flag("from_logits", from_logits)
    _pair(y_true, y_pred, ndim=2)
    out = check.loss_args(y_true, y_pred, out, ndim=2, want_out=True)
    w = check.sample_weights(sample_weight, y_pred, out)
    n = y_pred.shape[0]
    if from_logits:
        p = np.exp(_log_softmax(y_pred))
        return _store(out, _weigh((p * y_true.sum(axis=-1, keepdims=True) - y_true)
                                  * (1.0 / n), w))
    s = y_pred.sum(axis=-1, keepdims=True)
    q = y_pred / s
    inside = (q >= EPSILON) & (q <= 1 - EPSILON)
    g = np.where(inside, -y_true / np.clip(q, EPSILON, 1 - EPSILON), 0)
    return _store(out, _weigh((g - (g * q).sum(axis=-1, keepdims=True)) / (s * n), w))


def _sparse_xent(labels, y_pred, from_logits, out=None, weights=None):
    """Per-row losses of the sparse cross-entropy; its gradient (with the 1/n of the
    batch mean, and each row's weight) into ``out`` when given.  Only the label's term
    is formed: the other classes contribute no ``0 * log(...)`` (which would be NaN at a
    ``-inf`` logit)."""
    n = y_pred.shape[0]
    rows = np.arange(n)
    if from_logits:
        logp = _log_softmax(y_pred)
        if out is not None:
            grad = np.exp(logp)
            grad[rows, labels] -= 1
            _store(out, _weigh(grad * (1.0 / n), weights))
        return -logp[rows, labels]
    s = y_pred.sum(axis=-1)
    q = y_pred / s[:, None]
    # Keras normalises the whole row first: 0/0, inf/inf or a NaN anywhere in p / s
    # makes the row's loss NaN, whatever the label's probability
    undefined = np.isnan(q).any(axis=-1)
    qk = q[rows, labels]
    per = np.where(undefined, np.nan, -np.log(np.clip(qk, EPSILON, 1 - EPSILON)))
    if out is not None:
        # d(-log q_k)/dq_k = -1/q_k inside the clip range (0 where the clip is active);
        # dq_k/dp_j = ([j == k] - q_k) / s
        inside = (qk >= EPSILON) & (qk <= 1 - EPSILON)
        g = np.where(inside, -1 / np.clip(qk, EPSILON, 1 - EPSILON), 0)
        inv = 1 / s
        grad = np.empty_like(y_pred)
        grad[...] = (-g * qk * inv)[:, None]
        grad[rows, labels] += g * inv
        grad *= 1.0 / n
        grad[undefined] = np.nan
        _store(out, _weigh(grad, weights))
    return per


def sparse_categorical_crossentropy(y_true, y_pred, *, from_logits=False,
                                    sample_weight=None):
    """``categorical_crossentropy`` with integer labels: y_true ``(n,)`` or ``(n, 1)``
    holding classes in ``[0, classes)``; y_pred ``(n, classes)``.

    Per row with label ``k``: from logits ``-log_softmax(z)_k`` (as
    ``sparse_softmax_crossentropy``: a ``-inf`` logit of another class is a class of
    probability 0); from probabilities ``-log(clip(p_k / sum(p)))``, NaN when ``p / sum(p)``
    is undefined for any class of the row (``0/0``, ``inf/inf``, a NaN), as Keras's
    normalised row is then NaN there; an infinite probability thus makes the row's loss
    NaN.
    """
    from_logits = check.flag("from_logits", from_logits)
    labels, _ = check.sparse_args(y_true, y_pred)
    w = check.sample_weights(sample_weight, y_pred)
    return _reduce(_sparse_xent(labels, y_pred, from_logits), w, y_pred.dtype, per_row=True)


def backprop_sparse_categorical_crossentropy(y_true, y_pred, out=None, *, from_logits=False,
                                             sample_weight=None):
    """Gradient of ``sparse_categorical_crossentropy`` with respect to ``y_pred``.

    From logits: ``(softmax(z) - onehot(k)) / n``.  From probabilities, with
    ``s = sum(p)``, ``q_k = p_k / s`` and ``g = -1 / q_k`` inside the clip range (0 where
    it is active): ``(g * [j == k] - g * q_k) / (s n)``; a row whose loss is NaN (see
    ``sparse_categorical_crossentropy``) has an all-NaN gradient.
    """
    from_logits = check.flag("from_logits", from_logits)
    labels, out = check.sparse_args(y_true, y_pred, out, want_out=True)
    w = check.sample_weights(sample_weight, y_pred, out)
    _sparse_xent(labels, y_pred, from_logits, out, w)
    return out


def softmax_crossentropy(y_true, logits, out=None, *, sample_weight=None):
    """Fused softmax + categorical cross-entropy from logits, loss and gradient at once.

    Returns ``(loss, out)`` where ``loss = mean over rows of -sum_j y_j log_softmax(z)_j``
    and ``out = (softmax(z) * sum_j y_j - y) / n`` (``(p - y) / n`` for one-hot rows):
    the gradient with respect to the logits, never forming ``log(p)`` of a tiny ``p``.
    The loss at non-finite values is ``categorical_crossentropy``'s (an infinite target
    gives an infinite loss).
    """
    out = check.loss_args(y_true, logits, out, ndim=2, want_out=True, pred_name="logits")
    w = check.sample_weights(sample_weight, logits, out, pred_name="logits")
    logp = _log_softmax(logits)
    loss = _reduce(-(y_true * logp).sum(axis=-1), w, logits.dtype, per_row=True)
    n = logits.shape[0]
    _store(out, _weigh((np.exp(logp) * y_true.sum(axis=-1, keepdims=True) - y_true)
                       * (1.0 / n), w))
    return loss, out


def sparse_softmax_crossentropy(y_true, logits, out=None, *, sample_weight=None):
    """``softmax_crossentropy`` with integer labels ``(n,)`` or ``(n, 1)``:
    returns ``(loss, (softmax(z) - onehot(y)) / n)``, the loss and gradient of
    ``sparse_categorical_crossentropy(from_logits=True)``."""
    labels, out = check.sparse_args(y_true, logits, out, pred_name="logits", want_out=True)
    w = check.sample_weights(sample_weight, logits, out, pred_name="logits")
    loss = _reduce(_sparse_xent(labels, logits, True, out, w), w, logits.dtype, per_row=True)
    return loss, out


# -------------------------------------------------------------------- optimizers
# One call updates one parameter array ``w`` (and its state arrays) in place, with
# Keras 3's formulas; each returns ``w``.  ``g`` is dL/dw.  All arrays share w's shape
# and dtype.  ``weight_decay`` is Keras's decoupled decay, ``w -= w * weight_decay *
# learning_rate``, applied before the step -- and skipped when the factor
# ``weight_decay * learning_rate`` (formed in double precision, rounded to w's dtype) is
# 0, where it could only turn an infinite weight into NaN (``inf - inf * 0``), e.g. with
# ``learning_rate=0``.  ``step`` is Keras's ``iterations + 1``.

def _decay(w, learning_rate, weight_decay):
    factor, applies = check.decay_factor(w.dtype, learning_rate, weight_decay)
    if applies:
        w -= w * factor


def sgd_update(w, g, m=None, *, learning_rate=0.01, momentum=0.0, nesterov=False,
               weight_decay=0.0):
    """SGD.  Plain: ``w -= lr * g``.  With momentum (``m`` required):
    ``m = momentum * m - lr * g``; then ``w += m``, or with Nesterov
    ``w += momentum * m - lr * g``."""
    learning_rate, momentum, nesterov, weight_decay = check.sgd_args(
        w, g, m, learning_rate, momentum, nesterov, weight_decay)
    _decay(w, learning_rate, weight_decay)
    if momentum == 0.0:
        w -= learning_rate * g
        return w
    m *= momentum
    m -= learning_rate * g
    if nesterov:
        w += momentum * m - learning_rate * g
    else:
        w += m
    return w


def _adam(w, g, m, v, step, learning_rate, beta_1, beta_2, epsilon, amsgrad, v_hat,
          weight_decay):
    alpha, learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay = check.adam_args(
        w, g, m, v, step, learning_rate, beta_1, beta_2, epsilon, amsgrad, v_hat, weight_decay)
    _decay(w, learning_rate, weight_decay)
    m += (g - m) * (1 - beta_1)
    v += (g * g - v) * (1 - beta_2)
    if amsgrad:
        np.maximum(v_hat, v, out=v_hat)
        v = v_hat
    w -= (m * alpha) / (np.sqrt(v) + epsilon)
    return w


def adam_update(w, g, m, v, *, step, learning_rate=0.001, beta_1=0.9, beta_2=0.999,
                epsilon=1e-7, amsgrad=False, v_hat=None, weight_decay=0.0):
    """Adam (Keras 3 form), ``t = step``:
    ``alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)``;
    ``m += (g - m) * (1 - beta_1)``; ``v += (g^2 - v) * (1 - beta_2)``;
    AMSGrad: ``v_hat = max(v_hat, v)`` used instead of ``v``;
    ``w -= alpha * m / (sqrt(v) + epsilon)``."""
    return _adam(w, g, m, v, step, learning_rate, beta_1, beta_2, epsilon, amsgrad, v_hat,
                 weight_decay)


def adamw_update(w, g, m, v, *, step, learning_rate=0.001, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, v_hat=None, weight_decay=0.004):
    """AdamW: ``adam_update`` with Keras's default decoupled weight decay 0.004
    (``w -= w * weight_decay * lr`` before the Adam step; skipped when that factor is 0
    in w's dtype, e.g. with ``learning_rate=0``)."""
    return _adam(w, g, m, v, step, learning_rate, beta_1, beta_2, epsilon, amsgrad, v_hat,
                 weight_decay)


def rmsprop_update(w, g, v, *, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                   centered=False, mom=None, mg=None, weight_decay=0.0):
    """RMSprop (Keras 3): ``v = rho v + (1 - rho) g^2``; centered:
    ``mg = rho mg + (1 - rho) g`` and the denominator is ``v - mg^2``;
    ``inc = lr * g / sqrt(denominator + epsilon)`` (epsilon inside the root);
    with momentum (``mom`` required): ``mom = momentum * mom + inc; w -= mom``,
    else ``w -= inc``."""
    learning_rate, rho, momentum, epsilon, centered, weight_decay = check.rmsprop_args(
        w, g, v, learning_rate, rho, momentum, epsilon, centered, mom, mg, weight_decay)
    _decay(w, learning_rate, weight_decay)
    v *= rho
    v += (1 - rho) * g * g
    if centered:
        mg *= rho
        mg += (1 - rho) * g
        denominator = v - mg * mg
    else:
        denominator = v
    inc = learning_rate * g / np.sqrt(denominator + epsilon)
    if momentum != 0.0:
        mom *= momentum
        mom += inc
        w -= mom
    else:
        w -= inc
    return w


def adagrad_update(w, g, acc, *, learning_rate=0.001, epsilon=1e-7, weight_decay=0.0):
    """Adagrad (Keras 3): ``acc += g^2; w -= lr * g / sqrt(acc + epsilon)``
    (Keras starts ``acc`` at ``initial_accumulator_value = 0.1``)."""
    learning_rate, epsilon, weight_decay = check.adagrad_args(w, g, acc, learning_rate,
                                                              epsilon, weight_decay)
    _decay(w, learning_rate, weight_decay)
    acc += g * g
    w -= learning_rate * g / np.sqrt(acc + epsilon)
    return w


def share_docs(functions, twin):
    """Give each kernel of a twin backend (``functions``: {name: function}) this
    module's docstring of the same name, under a first line naming the twin: a
    docstring is written once, here."""
    for name, function in functions.items():
        function.__doc__ = (f"{twin} of kernels.reference.{name}.\n\n"
                            + (globals()[name].__doc__ or ""))
