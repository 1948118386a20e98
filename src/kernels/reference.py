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
    "relu": _spec({"negative_slope": 0.0, "max_value": None, "threshold": 0.0}),
    "leaky_relu": _spec({"negative_slope": 0.2}),
    "elu": _spec({"alpha": 1.0}),
    "sigmoid": _spec({}),
    "tanh": _spec({}),
    "softmax": _spec({}),
    "softplus": _spec({}),
    "gelu": _spec({"approximate": False}, needs_input=True),
    "relu6": _spec({}),
    "selu": _spec({}),
    "silu": _spec({}, needs_input=True),
    "hard_sigmoid": _spec({}),
    "hard_silu": _spec({}, needs_input=True),
    "mish": _spec({}, needs_input=True),
    "exponential": _spec({}),
    "softsign": _spec({}),
    "log_softmax": _spec({}),
})
ACTIVATIONS = tuple(ACTIVATION_SPECS)
ACTIVATIONS_NEEDING_INPUT = tuple(n for n, s in ACTIVATION_SPECS.items() if s.needs_input)
# The activations that work on whole rows (the last axis) rather than element by element.
ROW_ACTIVATIONS = ("softmax", "log_softmax")
# The compiled twins select an activation by id: its position here (the ACT_* enum of
# kernels/cpu/elementwise.pxd, kernels.cuda.elementwise.ACT).  Past the public names
# come the variants a parameter selects: "gelu_tanh" is gelu(approximate=True).
ACTIVATION_KERNELS = ACTIVATIONS + ("gelu_tanh",)
# The one real parameter a compiled activation takes (leaky_relu's negative_slope,
# elu's alpha), at its default: what the fused dense passes apply.  0.0 for the others
# (relu's three parameters, at their defaults, are plain relu: see relu()).
ACTIVATION_DEFAULT_PARAM = {
    name: 0.0 if name == "relu" else
    next((float(v) for v in spec.params.values() if not isinstance(v, bool)), 0.0)
    for name, spec in ACTIVATION_SPECS.items()}
# SELU's constants (Klambauer et al. 2017, as Keras 3 spells them)
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

# The losses with an elementwise or categorical compiled kernel, in the order of their
# ids (the enum of kernels/cpu/losses.pxd, kernels.cuda.losses.LOSS_IDS);
# "<name>_logits" is the kernel of from_logits=True.  (The sparse and the fused softmax
# cross-entropies are row kernels of their own.)
LOSS_KERNELS = ("mean_squared_error", "mean_absolute_error", "huber",
                "binary_crossentropy", "binary_crossentropy_logits",
                "categorical_crossentropy", "categorical_crossentropy_logits",
                "hinge", "squared_hinge", "poisson", "log_cosh",
                "mean_absolute_percentage_error", "mean_squared_logarithmic_error",
                "kl_divergence", "categorical_hinge", "cosine_similarity")
# Of those, the ones whose per-sample loss is a sum over the last axis (so the loss is
# divided by the number of rows, not of elements) and the ones computed row by row.
LOSSES_SUMMED_PER_ROW = ("categorical_crossentropy", "categorical_crossentropy_logits",
                         "kl_divergence", "categorical_hinge", "cosine_similarity")
ROW_LOSSES = ("categorical_crossentropy", "categorical_crossentropy_logits",
              "categorical_hinge", "cosine_similarity")


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
    "backprop_softplus", "gelu", "backprop_gelu", "relu6", "backprop_relu6", "selu",
    "backprop_selu", "silu", "backprop_silu", "hard_sigmoid", "backprop_hard_sigmoid",
    "hard_silu", "backprop_hard_silu", "mish", "backprop_mish", "exponential",
    "backprop_exponential", "softsign", "backprop_softsign", "log_softmax",
    "backprop_log_softmax",
    "mean_squared_error", "backprop_mean_squared_error",
    "mean_absolute_error", "backprop_mean_absolute_error",
    "huber", "backprop_huber",
    "binary_crossentropy", "backprop_binary_crossentropy",
    "categorical_crossentropy", "backprop_categorical_crossentropy",
    "sparse_categorical_crossentropy", "backprop_sparse_categorical_crossentropy",
    "softmax_crossentropy", "sparse_softmax_crossentropy",
    "hinge", "backprop_hinge", "squared_hinge", "backprop_squared_hinge",
    "categorical_hinge", "backprop_categorical_hinge", "kl_divergence",
    "backprop_kl_divergence", "poisson", "backprop_poisson", "log_cosh", "backprop_log_cosh",
    "cosine_similarity", "backprop_cosine_similarity",
    "mean_absolute_percentage_error", "backprop_mean_absolute_percentage_error",
    "mean_squared_logarithmic_error", "backprop_mean_squared_logarithmic_error",
    "layer_norm_forward", "layer_norm_backward",
    "embedding_forward", "embedding_backward",
    "conv2d_forward", "conv2d_backward", "conv1d_forward", "conv1d_backward",
    "depthwise_conv2d_forward", "depthwise_conv2d_backward",
    "max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward",
    "avg_pool2d_backward", "global_avg_pool2d_forward", "global_avg_pool2d_backward",
    "global_max_pool2d_forward", "global_max_pool2d_backward",
    "batch_norm_forward", "batch_norm_inference", "batch_norm_backward",
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


def relu(x, out=None, *, negative_slope=0.0, max_value=None, threshold=0.0):
    """Rectified linear unit, with Keras 3's three parameters (all >= 0, as Keras's
    ``ReLU`` layer requires):

    * ``x > threshold``: ``y = min(x, max_value)`` (``max_value`` None: no cap);
    * ``x <= threshold``: ``y = negative_slope * (x - threshold)``.

    At the defaults ``y = max(x, 0)``; with only ``negative_slope`` it is leaky_relu.
    """
    negative_slope, max_value, threshold = check.relu_params(negative_slope, max_value,
                                                             threshold)
    out = _unary(x, out)
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return _store(out, np.maximum(x, 0))
    high = x if max_value is None else np.minimum(x, max_value)
    # slope 0: the low side is 0 (0 * (-inf - t) would be NaN); NaN stays NaN
    low = (np.where(np.isnan(x), x, 0) if negative_slope == 0.0
           else negative_slope * (x - threshold))
    return _store(out, np.where(x > threshold, high, low))


def backprop_relu(dy, y, out=None, *, negative_slope=0.0, max_value=None, threshold=0.0):
    """``dx = dy * relu'(x)`` from the output ``y``: the parameters being >= 0, ``y > 0``
    exactly above the threshold (derivative 1, or 0 at the cap ``y == max_value``) and
    ``y < 0`` below it (derivative ``negative_slope``).  At ``y == 0`` the derivative
    is taken as 0, as Keras does (``negative_slope`` for leaky_relu's form, with no cap
    or threshold, as Keras's leaky_relu)."""
    negative_slope, max_value, threshold = check.relu_params(negative_slope, max_value,
                                                             threshold)
    out = _backprop_args(dy, y, out)
    high = y > 0 if max_value is None else (y > 0) & (y < max_value)
    leaky = max_value is None and threshold == 0.0
    low = (y < 0) | (y == 0) if leaky else y < 0
    d = np.where(high, dy, 0)
    if negative_slope != 0.0:
        d = np.where(low, negative_slope * dy, d)
    return _store(out, d)


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


def relu6(x, out=None):
    """``y = min(max(x, 0), 6)``."""
    out = _unary(x, out)
    return _store(out, np.minimum(np.maximum(x, 0), 6))


def backprop_relu6(dy, y, out=None):
    """``dx = dy * (0 < y < 6)``."""
    out = _backprop_args(dy, y, out)
    return _store(out, np.where((y > 0) & (y < 6), dy, 0))


def selu(x, out=None):
    """``y = scale * (x if x > 0 else alpha * (exp(x) - 1))``, Keras's constants
    ``SELU_ALPHA``, ``SELU_SCALE``."""
    out = _unary(x, out)
    neg = (SELU_SCALE * SELU_ALPHA) * np.expm1(np.minimum(x, 0))
    return _store(out, np.where(x > 0, SELU_SCALE * x, neg))


def backprop_selu(dy, y, out=None):
    """``dx = dy * (scale if y > 0 else y + scale * alpha)``, since
    ``scale * alpha * exp(x) = y + scale * alpha``."""
    out = _backprop_args(dy, y, out)
    return _store(out, np.where(y > 0, SELU_SCALE * dy, dy * (y + SELU_SCALE * SELU_ALPHA)))


def _finite_below(x):
    """x with -inf replaced by 0: for the ``x * g(x)`` activations (g -> 0 as x -> -inf),
    whose value there is their limit 0 (not -inf * 0 = NaN)."""
    return np.where(x == -np.inf, x.dtype.type(0), x)


def silu(x, out=None):
    """Swish: ``y = x * sigmoid(x)`` (0 at ``x = -inf``, its limit)."""
    out = _unary(x, out)
    x = _finite_below(x)
    return _store(out, x * sigmoid(x))


def backprop_silu(dy, x, out=None):
    """``dx = dy * (s + x s (1 - s))``, ``s = sigmoid(x)``; takes the input ``x``.  The
    second term is taken as 0 at ``x = +-inf`` (its limit; inf * 0 would be NaN)."""
    out = _backprop_args(dy, x, out, y_name="x")
    s = sigmoid(x)
    return _store(out, dy * (s + np.where(np.isinf(x), 0, x * s * (1 - s))))


def _hard_sigmoid(x):
    t = x / x.dtype.type(6) + x.dtype.type(0.5)
    return np.where(t <= 0, 0, np.where(t >= 1, 1, t)).astype(x.dtype, copy=False)


def hard_sigmoid(x, out=None):
    """``y = clip(x / 6 + 0.5, 0, 1)`` (Keras 3: 0 for ``x <= -3``, 1 for ``x >= 3``)."""
    out = _unary(x, out)
    return _store(out, _hard_sigmoid(x))


def backprop_hard_sigmoid(dy, y, out=None):
    """``dx = dy / 6`` where ``0 < y < 1``, else 0."""
    out = _backprop_args(dy, y, out)
    return _store(out, np.where((y > 0) & (y < 1), dy / dy.dtype.type(6), 0))


def hard_silu(x, out=None):
    """Hard swish: ``y = x * hard_sigmoid(x)`` (0 at ``x = -inf``, its limit)."""
    out = _unary(x, out)
    x = _finite_below(x)
    return _store(out, x * _hard_sigmoid(x))


def backprop_hard_silu(dy, x, out=None):
    """``dx = dy * (0 if x <= -3, 1 if x >= 3, else x / 3 + 0.5)`` (``hard_sigmoid(x) +
    x / 6`` inside); takes the input ``x``.  The regions are those of the forward pass's
    ``t = x / 6 + 0.5``."""
    out = _backprop_args(dy, x, out, y_name="x")
    six = x.dtype.type(6)
    t = x / six + x.dtype.type(0.5)
    d = np.where(t <= 0, 0, np.where(t >= 1, 1, t + x / six))
    return _store(out, dy * d)


def mish(x, out=None):
    """``y = x * tanh(softplus(x))`` (0 at ``x = -inf``, its limit)."""
    out = _unary(x, out)
    x = _finite_below(x)
    return _store(out, x * np.tanh(softplus(x)))


def backprop_mish(dy, x, out=None):
    """``dx = dy * (t + x (1 - t^2) sigmoid(x))``, ``t = tanh(softplus(x))``; takes the
    input ``x``.  The second term is taken as 0 at ``x = +-inf`` (its limit)."""
    out = _backprop_args(dy, x, out, y_name="x")
    t = np.tanh(softplus(x))
    tail = np.where(np.isinf(x), 0, x * (1 - t * t) * sigmoid(x))
    return _store(out, dy * (t + tail))


def exponential(x, out=None):
    """``y = exp(x)``."""
    out = _unary(x, out)
    return _store(out, np.exp(x))


def backprop_exponential(dy, y, out=None):
    """``dx = dy * y``."""
    out = _backprop_args(dy, y, out)
    return _store(out, dy * y)


def softsign(x, out=None):
    """``y = x / (1 + |x|)`` (NaN at ``+-inf``, as Keras's formula gives)."""
    out = _unary(x, out)
    return _store(out, x / (1 + np.abs(x)))


def backprop_softsign(dy, y, out=None):
    """``dx = dy / (1 + |x|)^2 = dy * (1 - |y|)^2``."""
    out = _backprop_args(dy, y, out)
    a = 1 - np.abs(y)
    return _store(out, dy * (a * a))


def log_softmax(x, out=None):
    """Stable log-softmax along the last axis: ``y = (x - m) - log(sum(exp(x - m)))``,
    ``m = max(x)``."""
    out = _unary(x, out)
    z = x - x.max(axis=-1, keepdims=True)
    return _store(out, z - np.log(np.exp(z).sum(axis=-1, keepdims=True)))


def backprop_log_softmax(dy, y, out=None):
    """``dx = dy - exp(y) * sum(dy, axis=-1)`` (``exp(y)`` is the softmax)."""
    out = _backprop_args(dy, y, out)
    return _store(out, dy - np.exp(y) * dy.sum(axis=-1, keepdims=True))


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
    elif kernel in _MORE_LOSSES:
        terms, _, per_row = _MORE_LOSSES[kernel]
        if kernel in ROW_LOSSES:
            check.loss_args(y_true, y_pred, ndim=2)
            return terms(y_true, y_pred)
        terms = terms(y_true, y_pred)
        if per_row:
            return terms if terms.ndim == 1 else terms.sum(axis=-1)
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


# ------------------------------------------------- more of Keras's losses
# Keras 3's formulas (keras/src/losses/losses.py), each a value kernel and its backprop
# with the conventions above.  Elementwise losses average their terms over all
# elements; kl_divergence sums its terms over the last axis (a sample's loss) and
# averages over samples; categorical_hinge and cosine_similarity are row losses of
# 2-D inputs.

def _hinge_targets(y_true):
    """Keras's convert_binary_labels_to_hinge: labels that are all 0 or 1 become -1/1;
    any other labels are taken as they are (meant to be -1/1)."""
    if np.all((y_true == 0) | (y_true == 1)):
        return 2 * y_true - 1
    return y_true


def _hinge_terms(y_true, y_pred):
    return np.maximum(1 - _hinge_targets(y_true) * y_pred, 0)


def _hinge_grad(y_true, y_pred):
    t = _hinge_targets(y_true)
    return np.where(1 - t * y_pred > 0, -t, 0)


def _squared_hinge_terms(y_true, y_pred):
    return _hinge_terms(y_true, y_pred) ** 2


def _squared_hinge_grad(y_true, y_pred):
    t = _hinge_targets(y_true)
    return -2 * t * np.maximum(1 - t * y_pred, 0)


def _poisson_terms(y_true, y_pred):
    return y_pred - y_true * np.log(y_pred + EPSILON)


def _poisson_grad(y_true, y_pred):
    return 1 - y_true / (y_pred + EPSILON)


def _log_cosh_terms(y_true, y_pred):
    e = y_pred - y_true          # log(cosh(e)) = e + softplus(-2e) - log(2), stably
    u = -2 * e
    return e + (np.maximum(u, 0) + np.log1p(np.exp(-np.abs(u)))) - math.log(2.0)


def _log_cosh_grad(y_true, y_pred):
    return np.tanh(y_pred - y_true)


def _mape_terms(y_true, y_pred):
    return 100 * np.abs((y_true - y_pred) / np.maximum(np.abs(y_true), EPSILON))


def _mape_grad(y_true, y_pred):
    return 100 * np.sign(y_pred - y_true) / np.maximum(np.abs(y_true), EPSILON)


def _msle_logs(y_true, y_pred):
    return (np.log(np.maximum(y_pred, EPSILON) + 1),
            np.log(np.maximum(y_true, EPSILON) + 1))


def _msle_terms(y_true, y_pred):
    lp, lt = _msle_logs(y_true, y_pred)
    return (lp - lt) ** 2


def _msle_grad(y_true, y_pred):
    lp, lt = _msle_logs(y_true, y_pred)
    return np.where(y_pred > EPSILON, 2 * (lp - lt) / (y_pred + 1), 0)


def _kld_terms(y_true, y_pred):
    t = np.clip(y_true, EPSILON, 1)
    return t * np.log(t / np.clip(y_pred, EPSILON, 1))


def _kld_grad(y_true, y_pred):
    t = np.clip(y_true, EPSILON, 1)
    inside = (y_pred >= EPSILON) & (y_pred <= 1)
    return np.where(inside, -t / np.where(inside, y_pred, 1), 0)


def _categorical_hinge_rows(y_true, y_pred):
    pos = (y_true * y_pred).sum(axis=-1)
    neg = ((1 - y_true) * y_pred).max(axis=-1)
    return np.maximum(neg - pos + 1, 0)


def _categorical_hinge_grad(y_true, y_pred):
    """``-t_j + (1 - t_j) [j = k]`` where the margin is positive, k the first index of
    the largest ``(1 - t_j) p_j``; 0 elsewhere."""
    pos = (y_true * y_pred).sum(axis=-1)
    other = (1 - y_true) * y_pred
    k = other.argmax(axis=-1)
    active = (other.max(axis=-1) - pos + 1) > 0
    g = -y_true.copy()
    rows = np.arange(y_true.shape[0])
    g[rows, k] += (1 - y_true)[rows, k]
    return np.where(active[:, None], g, 0)


_COS_EPS2 = EPSILON * EPSILON     # Keras's normalize clamps the squared norm at eps^2


def _cosine_rows(y_true, y_pred):
    it = 1 / np.sqrt(np.maximum((y_true * y_true).sum(axis=-1), _COS_EPS2))
    ip = 1 / np.sqrt(np.maximum((y_pred * y_pred).sum(axis=-1), _COS_EPS2))
    return -(y_true * y_pred).sum(axis=-1) * it * ip


def _cosine_grad(y_true, y_pred):
    """``-(t_j - (t.p) p_j / |p|^2) / (|t| |p|)`` (norms clamped as the loss does; where
    |p|^2 is clamped, p's norm is a constant and the second term goes)."""
    b = (y_pred * y_pred).sum(axis=-1, keepdims=True)
    it = 1 / np.sqrt(np.maximum((y_true * y_true).sum(axis=-1, keepdims=True), _COS_EPS2))
    ip = 1 / np.sqrt(np.maximum(b, _COS_EPS2))
    d = (y_true * y_pred).sum(axis=-1, keepdims=True)
    return -it * ip * (y_true - np.where(b > _COS_EPS2, d * ip * ip, 0) * y_pred)


# name -> (terms or row losses, gradient before the reduction's scale, summed per row)
_MORE_LOSSES = {
    "hinge": (_hinge_terms, _hinge_grad, False),
    "squared_hinge": (_squared_hinge_terms, _squared_hinge_grad, False),
    "poisson": (_poisson_terms, _poisson_grad, False),
    "log_cosh": (_log_cosh_terms, _log_cosh_grad, False),
    "mean_absolute_percentage_error": (_mape_terms, _mape_grad, False),
    "mean_squared_logarithmic_error": (_msle_terms, _msle_grad, False),
    "kl_divergence": (_kld_terms, _kld_grad, True),
    "categorical_hinge": (_categorical_hinge_rows, _categorical_hinge_grad, True),
    "cosine_similarity": (_cosine_rows, _cosine_grad, True),
}


def _more_loss(name, y_true, y_pred, sample_weight):
    terms, _, per_row = _MORE_LOSSES[name]
    _pair(y_true, y_pred, ndim=2 if name in ROW_LOSSES else None)
    w = check.sample_weights(sample_weight, y_pred)
    values = terms(y_true, y_pred)
    if name in ROW_LOSSES:
        return _reduce(values, w, y_pred.dtype, per_row=True)
    if per_row:
        values = values if values.ndim == 1 else values.sum(axis=-1)
        return _reduce(values, w, y_pred.dtype, per_row=True)
    return _reduce(values, w, y_pred.dtype)


def _more_backprop(name, y_true, y_pred, out, sample_weight):
    _, grad, per_row = _MORE_LOSSES[name]
    _pair(y_true, y_pred, ndim=2 if name in ROW_LOSSES else None)
    out = check.loss_args(y_true, y_pred, out, ndim=2 if name in ROW_LOSSES else None,
                          want_out=True)
    w = check.sample_weights(sample_weight, y_pred, out)
    scale = 1.0 / (y_pred.shape[0] if per_row else y_pred.size)
    return _store(out, _weigh(grad(y_true, y_pred) * scale, w))


def hinge(y_true, y_pred, *, sample_weight=None):
    """Mean of ``max(1 - t * y_pred, 0)``; targets ``t`` are -1/1, or 0/1 labels
    converted to -1/1 when every one of them is 0 or 1 (Keras)."""
    return _more_loss("hinge", y_true, y_pred, sample_weight)


def backprop_hinge(y_true, y_pred, out=None, *, sample_weight=None):
    """``-t / size`` where ``1 - t * y_pred > 0``, else 0."""
    return _more_backprop("hinge", y_true, y_pred, out, sample_weight)


def squared_hinge(y_true, y_pred, *, sample_weight=None):
    """Mean of ``max(1 - t * y_pred, 0)^2`` (targets as for hinge)."""
    return _more_loss("squared_hinge", y_true, y_pred, sample_weight)


def backprop_squared_hinge(y_true, y_pred, out=None, *, sample_weight=None):
    """``-2 t max(1 - t * y_pred, 0) / size``."""
    return _more_backprop("squared_hinge", y_true, y_pred, out, sample_weight)


def poisson(y_true, y_pred, *, sample_weight=None):
    """Mean of ``y_pred - y_true * log(y_pred + 1e-7)``."""
    return _more_loss("poisson", y_true, y_pred, sample_weight)


def backprop_poisson(y_true, y_pred, out=None, *, sample_weight=None):
    """``(1 - y_true / (y_pred + 1e-7)) / size``."""
    return _more_backprop("poisson", y_true, y_pred, out, sample_weight)


def log_cosh(y_true, y_pred, *, sample_weight=None):
    """Mean of ``log(cosh(e))``, ``e = y_pred - y_true``, as Keras evaluates it:
    ``e + softplus(-2 e) - log(2)``."""
    return _more_loss("log_cosh", y_true, y_pred, sample_weight)


def backprop_log_cosh(y_true, y_pred, out=None, *, sample_weight=None):
    """``tanh(y_pred - y_true) / size``."""
    return _more_backprop("log_cosh", y_true, y_pred, out, sample_weight)


def mean_absolute_percentage_error(y_true, y_pred, *, sample_weight=None):
    """Mean of ``100 |y_true - y_pred| / max(|y_true|, 1e-7)``."""
    return _more_loss("mean_absolute_percentage_error", y_true, y_pred, sample_weight)


def backprop_mean_absolute_percentage_error(y_true, y_pred, out=None, *,
                                            sample_weight=None):
    """``100 sign(y_pred - y_true) / max(|y_true|, 1e-7) / size``."""
    return _more_backprop("mean_absolute_percentage_error", y_true, y_pred, out,
                          sample_weight)


def mean_squared_logarithmic_error(y_true, y_pred, *, sample_weight=None):
    """Mean of ``(log(max(y_pred, 1e-7) + 1) - log(max(y_true, 1e-7) + 1))^2``."""
    return _more_loss("mean_squared_logarithmic_error", y_true, y_pred, sample_weight)


def backprop_mean_squared_logarithmic_error(y_true, y_pred, out=None, *,
                                            sample_weight=None):
    """``2 (lp - lt) / (y_pred + 1) / size`` where ``y_pred > 1e-7`` (0 where the max
    is active)."""
    return _more_backprop("mean_squared_logarithmic_error", y_true, y_pred, out,
                          sample_weight)


def kl_divergence(y_true, y_pred, *, sample_weight=None):
    """Kullback-Leibler divergence: per sample ``sum(t log(t / p))`` over the last axis,
    ``t`` and ``p`` clipped to ``[1e-7, 1]``; the mean over samples."""
    return _more_loss("kl_divergence", y_true, y_pred, sample_weight)


def backprop_kl_divergence(y_true, y_pred, out=None, *, sample_weight=None):
    """``-t / y_pred / n`` where ``y_pred`` lies inside the clip range, else 0."""
    return _more_backprop("kl_divergence", y_true, y_pred, out, sample_weight)


def categorical_hinge(y_true, y_pred, *, sample_weight=None):
    """Per row ``max(max((1 - t) * p) - sum(t * p) + 1, 0)``; the mean over rows."""
    return _more_loss("categorical_hinge", y_true, y_pred, sample_weight)


def backprop_categorical_hinge(y_true, y_pred, out=None, *, sample_weight=None):
    """``(-t_j + (1 - t_j) [j = k]) / n`` on rows with a positive margin (k the first
    index of the largest ``(1 - t_j) p_j``), else 0."""
    return _more_backprop("categorical_hinge", y_true, y_pred, out, sample_weight)


def cosine_similarity(y_true, y_pred, *, sample_weight=None):
    """Per row ``-sum(t_hat * p_hat)``, ``x_hat = x / sqrt(max(sum(x^2), 1e-14))``
    (Keras's normalize); the mean over rows (between -1 and 1; -1 when aligned)."""
    return _more_loss("cosine_similarity", y_true, y_pred, sample_weight)


def backprop_cosine_similarity(y_true, y_pred, out=None, *, sample_weight=None):
    """``-(t_j - (t.p) p_j / |p|^2) / (|t| |p| n)`` with the loss's clamped norms."""
    return _more_backprop("cosine_similarity", y_true, y_pred, out, sample_weight)



# ---------------------------------------------------------------- normalisation

def _row_stats(x, epsilon):
    """Each row's mean and ``1 / sqrt(var + epsilon)`` (biased variance), computed in
    float64 and rounded to x's dtype (so a constant row's ``x - mean`` is exactly 0)."""
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=-1, keepdims=True)
    var = np.square(x64 - mean).mean(axis=-1, keepdims=True)
    return mean.astype(x.dtype), (1 / np.sqrt(var + epsilon)).astype(x.dtype)


def layer_norm_forward(x, gamma=None, beta=None, out=None, *, epsilon=1e-3):
    """Layer normalisation over the last axis (Keras 3's LayerNormalization, axis -1):
    per row, ``mean`` and the biased ``var`` (in float64, rounded to the dtype),
    ``inv = gamma / sqrt(var + epsilon)``
    (``gamma`` None: 1) and ``y = x * inv + (beta - mean * inv)`` (``beta`` None: 0),
    Keras's order of operations.  ``x`` of rank >= 1; ``gamma``, ``beta`` of shape
    ``(features,)``; ``out`` may be ``x``."""
    out, epsilon = check.layer_norm_forward_args(x, gamma, beta, out, epsilon)
    mean, inv = _row_stats(x, epsilon)
    if gamma is not None:
        inv = inv * gamma
    shift = -mean * inv if beta is None else beta - mean * inv
    return _store(out, x * inv + shift)


def layer_norm_backward(dy, x, gamma=None, dx=None, dgamma=None, dbeta=None, *,
                        epsilon=1e-3):
    """Gradients of :func:`layer_norm_forward` from ``dy`` and its input ``x``: returns
    ``(dx, dgamma, dbeta)``.  With ``r = 1 / sqrt(var + epsilon)``, ``xhat = (x - mean)
    r`` and ``g = dy * gamma`` per row: ``dx = r (g - mean(g) - xhat mean(g xhat))``;
    ``dgamma = sum(dy * xhat)`` and ``dbeta = sum(dy)`` over every row (each column
    summed in row order).  ``dx`` may be ``dy`` or ``x``."""
    dx, dgamma, dbeta, epsilon = check.layer_norm_backward_args(dy, x, gamma, dx, dgamma,
                                                                dbeta, epsilon)
    d = x.shape[-1]
    x2, dy2 = x.reshape(-1, d), dy.reshape(-1, d)
    mean, r = _row_stats(x2, epsilon)
    xhat = (x2 - mean) * r
    g = dy2 if gamma is None else dy2 * gamma
    grad = r * (g - g.mean(axis=-1, keepdims=True)
                - xhat * (g * xhat).mean(axis=-1, keepdims=True))
    _store(dgamma, (dy2 * xhat).sum(axis=0))
    _store(dbeta, dy2.sum(axis=0))
    _store(dx, grad.reshape(x.shape))
    return dx, dgamma, dbeta


# --------------------------------------------------------------------- embedding

def embedding_forward(ids, table, out=None):
    """An embedding lookup (Keras 3's Embedding): ``out[..., :] = table[ids[...]]``.

    ``ids``: row numbers of any shape, an integer array or a float array of whole
    numbers (Keras casts them), each in ``[0, input_dim)`` (else ValueError);
    ``table``: ``(input_dim, output_dim)``; ``out``: ``ids.shape + (output_dim,)``.
    """
    flat, out = check.embedding_forward_args(ids, table, out)
    out[...] = table[flat].reshape(out.shape)     # (out may be any layout)
    return out


def embedding_backward(dy, ids, dtable):
    """The gradient of :func:`embedding_forward` with respect to the table:
    ``dtable[r] = sum of dy[p] over the positions p with ids[p] == r``, each row's
    terms added in position order (so every backend, and every thread count, gives the
    same bits); rows no id names are zero.  ``dtable`` (required: its shape is the
    table's) is written and returned."""
    flat, dtable = check.embedding_backward_args(dy, ids, dtable)
    rows = dy.reshape(-1, dtable.shape[1])
    acc = np.zeros(dtable.shape, dtable.dtype)
    np.add.at(acc, flat, rows)             # unbuffered, one position after the other
    return _store(dtable, acc)


# ------------------------------------------------------------------- convolution
# NHWC images ``(n, h, w, channels)`` and Keras's kernel layout ``(kh, kw, cin // groups,
# filters)``; 1-D sequences ``(n, length, channels)`` with kernels ``(k, cin // groups,
# filters)``.  ``strides`` and ``dilation_rate``: an int or one per spatial axis.
# ``padding``: "valid" (none) or "same" (output ceil(size / stride), the odd pixel of
# padding after: Keras's split), and "causal" for 1-D (all padding before).  Output
# pixel (i, j) reads input rows ``i*sh - pad_top + a*dh`` and columns ``j*sw -
# pad_left + b*dw``; padded cells read 0 (convolution, average pooling) or -inf (max).

def _padded(x, g, value=0.0):
    return np.pad(x, ((0, 0), (g.pt, g.pb), (g.pl, g.pr), (0, 0)), constant_values=value)


def _window_views(xp, g):
    """The kh * kw strided views of padded ``xp``, each ``(n, oh, ow, c)``: view
    ``a * kw + b`` holds, at output pixel (i, j), the cell (a, b) of its window."""
    return [xp[:, a * g.dh: a * g.dh + (g.oh - 1) * g.sh + 1: g.sh,
               b * g.dw: b * g.dw + (g.ow - 1) * g.sw + 1: g.sw, :]
            for a in range(g.kh) for b in range(g.kw)]


def _as_2d(x, w, rank):
    """A rank-1 pass as a rank-2 one: (n, L, c) -> (n, 1, L, c), kernel (k, ...) ->
    (1, k, ...)."""
    return (x[:, None], w[None]) if rank == 1 else (x, w)


def _conv_z(x, w, b, g):
    """z = conv(x, w) + b as (n*oh*ow, cout): im2col (the patch matrix, columns in
    (a, b, channel) order, as the kernel's rows) times the kernel, group by group."""
    cols = np.stack(_window_views(_padded(x, g), g), axis=3)      # (n, oh, ow, kk, cin)
    m = g.n * g.oh * g.ow
    cg, og = g.cin // g.groups, g.cout // g.groups
    z = np.empty((m, g.cout), x.dtype)
    for j in range(g.groups):
        patches = cols[..., j * cg:(j + 1) * cg].reshape(m, -1)
        z[:, j * og:(j + 1) * og] = patches @ w[..., j * og:(j + 1) * og].reshape(-1, og)
    if b is not None:
        z += b
    return z, cols


def _activate_into(z, out, pre_activation, activation):
    """Store the pre-activation when asked, then ``out = activation(z)``."""
    z = z.reshape(out.shape)
    if pre_activation is not None:
        pre_activation[...] = z
    _FORWARD[activation](np.ascontiguousarray(z), out=out)
    return out


def _conv_forward(x, w, b, out, strides, padding, dilation_rate, groups, activation,
                  pre_activation, rank):
    g, out, pre_activation, activation = check.conv_forward_args(
        x, w, b, out, strides, padding, dilation_rate, groups, activation,
        pre_activation, rank=rank)
    x2, w2 = _as_2d(x, w, rank)
    z, _ = _conv_z(x2, w2, b, g)
    return _activate_into(z, out, pre_activation, activation)


def _col2im(dcols, g, dtype):
    """The adjoint of the patch gather: each window cell's gradient added back to the
    input pixel it read (cells in window order), the padding dropped."""
    dxp = np.zeros((g.n, g.h + g.pt + g.pb, g.w + g.pl + g.pr, dcols.shape[-1]), dtype)
    for cell, view in enumerate(_window_views(dxp, g)):
        view += dcols[:, :, :, cell]
    return dxp[:, g.pt: g.pt + g.h, g.pl: g.pl + g.w]


def _conv_backward(dy, x, w, y, strides, padding, dilation_rate, groups, activation,
                   pre_activation, dx, dw, db, need_dx, use_bias, rank):
    g, dx, dw, db, saved, activation = check.conv_backward_args(
        dy, x, w, y, strides, padding, dilation_rate, groups, activation, pre_activation,
        dx, dw, db, need_dx, use_bias, rank=rank)
    m = g.n * g.oh * g.ow
    dz = _BACKWARD[activation](np.ascontiguousarray(dy), np.ascontiguousarray(saved))
    dz = dz.reshape(m, g.cout)
    x2, w2 = _as_2d(x, w, rank)
    cols = np.stack(_window_views(_padded(x2, g), g), axis=3)
    cg, og = g.cin // g.groups, g.cout // g.groups
    kk = g.kh * g.kw
    dcols = np.empty((m, kk, g.cin), x.dtype) if dx is not None else None
    dw2 = dw.reshape(w2.shape)
    for j in range(g.groups):
        patches = cols[..., j * cg:(j + 1) * cg].reshape(m, -1)
        dzj = dz[:, j * og:(j + 1) * og]
        dw2[..., j * og:(j + 1) * og] = (patches.T @ dzj).reshape(g.kh, g.kw, cg, og)
        if dcols is not None:
            wj = w2[..., j * og:(j + 1) * og].reshape(-1, og)
            dcols[:, :, j * cg:(j + 1) * cg] = (dzj @ wj.T).reshape(m, kk, cg)
    if db is not None:
        db[...] = dz.sum(axis=0)
    if dx is not None:
        dcols = dcols.reshape(g.n, g.oh, g.ow, kk, g.cin)
        dx[...] = _col2im(dcols, g, x.dtype).reshape(dx.shape)
    return dx, dw, db


def conv2d_forward(x, w, b=None, out=None, *, strides=1, padding="valid",
                   dilation_rate=1, groups=1, activation="linear", pre_activation=None):
    """A Conv2D layer's forward pass (Keras 3's Conv2D, channels_last):
    ``z[n, i, j, o] = sum_{a, b, c} xpad[n, i*sh + a*dh, j*sw + b*dw, c] w[a, b, c, o]
    + b[o]`` (over the input channels ``c`` of o's group), ``y = activation(z)``.

    x ``(n, h, w, cin)``, w ``(kh, kw, cin // groups, cout)``, b ``(cout,)`` or None,
    out (and ``pre_activation``, stored when given) ``(n, oh, ow, cout)``; output
    channel ``o`` belongs to group ``o // (cout // groups)``, which reads input
    channels ``[g * cin // groups, (g + 1) * cin // groups)``.  Strides and dilation
    may both exceed 1 (Keras's layer refuses that; the kernel does not)."""
    return _conv_forward(x, w, b, out, strides, padding, dilation_rate, groups, activation,
                         pre_activation, 2)


def conv2d_backward(dy, x, w, y, *, strides=1, padding="valid", dilation_rate=1,
                    groups=1, activation="linear", pre_activation=None, dx=None, dw=None,
                    db=None, need_dx=True, use_bias=True):
    """The backward pass of :func:`conv2d_forward`, from ``dy = dL/dy``, as
    ``dense_backward``: ``dz = dy * activation'`` (from ``y``, or ``pre_activation``
    for ``ACTIVATIONS_NEEDING_INPUT``); with P the patch matrix (one row per output
    pixel) ``dw = P^T dz``, ``db = sum of dz over n, oh, ow``, ``dx = col2im(dz w^T)``
    (each patch cell's gradient added back to the pixel it read).  Returns ``(dx, dw,
    db)``; dx None when ``need_dx`` is False, db None when ``use_bias`` is False."""
    return _conv_backward(dy, x, w, y, strides, padding, dilation_rate, groups, activation,
                          pre_activation, dx, dw, db, need_dx, use_bias, 2)


def conv1d_forward(x, w, b=None, out=None, *, strides=1, padding="valid",
                   dilation_rate=1, groups=1, activation="linear", pre_activation=None):
    """A Conv1D layer's forward pass: :func:`conv2d_forward` of one row.  x ``(n,
    length, cin)``, w ``(k, cin // groups, cout)``, out ``(n, out_length, cout)``;
    ``padding`` also "causal" (``dilation * (k - 1)`` zeros before, none after)."""
    return _conv_forward(x, w, b, out, strides, padding, dilation_rate, groups, activation,
                         pre_activation, 1)


def conv1d_backward(dy, x, w, y, *, strides=1, padding="valid", dilation_rate=1,
                    groups=1, activation="linear", pre_activation=None, dx=None, dw=None,
                    db=None, need_dx=True, use_bias=True):
    """The backward pass of :func:`conv1d_forward` (:func:`conv2d_backward` of one
    row): returns ``(dx, dw, db)``."""
    return _conv_backward(dy, x, w, y, strides, padding, dilation_rate, groups, activation,
                          pre_activation, dx, dw, db, need_dx, use_bias, 1)


def depthwise_conv2d_forward(x, w, b=None, out=None, *, strides=1, padding="valid",
                             dilation_rate=1, activation="linear", pre_activation=None):
    """A DepthwiseConv2D layer's forward pass: each input channel ``c`` convolved
    with its own ``depth_multiplier`` filters, ``z[n, i, j, c*dm + m] = sum_{a, b}
    xpad[n, i*sh + a*dh, j*sw + b*dw, c] w[a, b, c, m] + b[c*dm + m]``.  x ``(n, h, w,
    cin)``, w ``(kh, kw, cin, dm)``, b ``(cin * dm,)`` or None, out ``(n, oh, ow,
    cin * dm)``; cells added in window order."""
    g, out, pre_activation, activation = check.conv_forward_args(
        x, w, b, out, strides, padding, dilation_rate, 1, activation, pre_activation,
        depthwise=True)
    z = np.zeros((g.n, g.oh, g.ow, g.cin, w.shape[3]), x.dtype)
    for cell, view in enumerate(_window_views(_padded(x, g), g)):
        z += view[..., None] * w[cell // g.kw, cell % g.kw]
    z = z.reshape(-1, g.cout)
    if b is not None:
        z += b
    return _activate_into(z, out, pre_activation, activation)


def depthwise_conv2d_backward(dy, x, w, y, *, strides=1, padding="valid",
                              dilation_rate=1, activation="linear", pre_activation=None,
                              dx=None, dw=None, db=None, need_dx=True, use_bias=True):
    """The backward pass of :func:`depthwise_conv2d_forward`: ``dz`` as in
    ``conv2d_backward``; ``dw[a, b, c, m] = sum over n, i, j of xpad[...] dz[..., c*dm
    + m]``, ``db`` the sums of dz, ``dx`` each cell's ``sum_m dz w`` added back to the
    pixel it read.  Returns ``(dx, dw, db)``."""
    g, dx, dw, db, saved, activation = check.conv_backward_args(
        dy, x, w, y, strides, padding, dilation_rate, 1, activation, pre_activation,
        dx, dw, db, need_dx, use_bias, depthwise=True)
    dm = w.shape[3]
    dz = _BACKWARD[activation](np.ascontiguousarray(dy), np.ascontiguousarray(saved))
    if db is not None:
        db[...] = dz.reshape(-1, g.cout).sum(axis=0)
    dz = dz.reshape(g.n, g.oh, g.ow, g.cin, dm)
    views = _window_views(_padded(x, g), g)
    for cell, view in enumerate(views):
        dw[cell // g.kw, cell % g.kw] = np.einsum("nijc,nijcm->cm", view, dz)
    if dx is not None:
        dcols = np.stack([(dz * w[cell // g.kw, cell % g.kw]).sum(axis=-1)
                          for cell in range(len(views))], axis=3)
        dx[...] = _col2im(dcols, g, x.dtype)
    return dx, dw, db


# ---------------------------------------------------------------------- pooling

def _pool_cells(x, g, value):
    return np.stack(_window_views(_padded(x, g, value), g), axis=3)   # (n, oh, ow, kk, c)


def _flat_cells(g):
    """Each window cell's index into the h * w plane of x, ``(oh, ow, kk)``; padded
    cells get -1."""
    rows = (np.arange(g.oh)[:, None] * g.sh - g.pt + np.arange(g.kh)[None] * g.dh)
    cols = (np.arange(g.ow)[:, None] * g.sw - g.pl + np.arange(g.kw)[None] * g.dw)
    r = rows[:, None, :, None]
    c = cols[None, :, None, :]
    flat = np.where((r >= 0) & (r < g.h) & (c >= 0) & (c < g.w), r * g.w + c, -1)
    return flat.reshape(g.oh, g.ow, g.kh * g.kw)


def _pool2d(x, rank):
    return x[:, None] if rank == 1 else x


def max_pool2d_forward(x, out=None, argmax=None, *, pool_size=2, strides=None,
                       padding="valid"):
    """2-D max pooling (Keras 3's MaxPooling2D, channels_last): each output cell the
    largest of its window (padded cells are -inf; strides None means pool_size).
    Returns ``(out, argmax)``: argmax ``(n, oh, ow, c)`` int32 holds the chosen cell's
    index ``row * w + col`` in its channel plane, the first maximum among the window's
    real (unpadded) cells in row-major order; a NaN wins (the first NaN), so NaN
    propagates as in Keras."""
    g, out = check.pool_forward_args(x, out, pool_size, strides, padding)
    argmax = check.argmax_output("argmax", argmax, out.shape, (("x", x), ("out", out)))
    cells = _pool_cells(x, g, -np.inf)
    pick = np.argmax(cells, axis=3)          # the first maximum; the first NaN if any
    # padded cells are no candidates: where the maximum is -inf and a padded cell came
    # first, the first real cell is the first maximum
    real = _flat_cells(g) >= 0
    padded = ~np.take_along_axis(np.broadcast_to(real[None, :, :, :, None], cells.shape),
                                 pick[:, :, :, None], axis=3)[:, :, :, 0]
    pick = np.where(padded, np.argmax(real, axis=-1)[None, :, :, None], pick)
    out[...] = np.take_along_axis(cells, pick[:, :, :, None], axis=3)[:, :, :, 0]
    flat = np.broadcast_to(_flat_cells(g)[None, :, :, :, None], cells.shape)
    argmax[...] = np.take_along_axis(flat, pick[:, :, :, None], axis=3)[:, :, :, 0]
    return out, argmax


def max_pool2d_backward(dy, argmax, dx, *, pool_size=2, strides=None, padding="valid"):
    """The gradient of :func:`max_pool2d_forward`: ``dx`` (required, x's shape) is zero
    but at each window's chosen cell, which receives its ``dy`` (added in output
    order where windows overlap).  Returns dx."""
    g, dx = check.max_pool_backward_args(dy, argmax, dx, pool_size, strides, padding)
    acc = np.zeros((g.n, g.h * g.w, g.cin), dy.dtype)
    n_idx = np.arange(g.n)[:, None, None, None]
    c_idx = np.arange(g.cin)[None, None, None, :]
    np.add.at(acc, (n_idx, argmax, c_idx), dy)
    return _store(dx, acc.reshape(dx.shape))


def avg_pool2d_forward(x, out=None, *, pool_size=2, strides=None, padding="valid"):
    """2-D average pooling (Keras 3's AveragePooling2D): the mean of each window's real
    cells (with "same", padded cells are not counted)."""
    g, out = check.pool_forward_args(x, out, pool_size, strides, padding)
    cells = _pool_cells(x, g, 0.0)
    counts = (_flat_cells(g) >= 0).sum(axis=-1)[None, :, :, None]
    return _store(out, cells.sum(axis=3) / counts.astype(x.dtype))


def avg_pool2d_backward(dy, dx, *, pool_size=2, strides=None, padding="valid"):
    """The gradient of :func:`avg_pool2d_forward`: each window's ``dy / count`` added
    to its real cells.  ``dx`` (required, x's shape) is written and returned."""
    g, dx = check.avg_pool_backward_args(dy, dx, pool_size, strides, padding)
    counts = (_flat_cells(g) >= 0).sum(axis=-1)[None, :, :, None]
    share = dy / counts.astype(dy.dtype)
    dcols = np.broadcast_to(share[:, :, :, None, :], (g.n, g.oh, g.ow, g.kh * g.kw, g.cin))
    return _store(dx, _col2im(dcols, g, dy.dtype))


def global_avg_pool2d_forward(x, out=None):
    """Keras's GlobalAveragePooling2D: the mean over h and w, ``(n, c)``."""
    out = check.global_pool_forward_args(x, out)
    return _store(out, x.mean(axis=(1, 2)))


def global_avg_pool2d_backward(dy, dx):
    """``dx[n, i, j, c] = dy[n, c] / (h * w)``; dx (required) written and returned."""
    dx = check.global_pool_backward_args(dy, dx)
    return _store(dx, (dy / dy.dtype.type(dx.shape[1] * dx.shape[2]))[:, None, None, :])


def global_max_pool2d_forward(x, out=None, argmax=None):
    """Keras's GlobalMaxPooling2D: the maximum over h and w, ``(n, c)``.  Returns
    ``(out, argmax)``, argmax ``(n, c)`` int32 the chosen cell ``row * w + col`` (the
    first maximum, or the first NaN)."""
    out = check.global_pool_forward_args(x, out)
    argmax = check.argmax_output("argmax", argmax, out.shape, (("x", x), ("out", out)))
    flat = x.reshape(x.shape[0], -1, x.shape[3])
    argmax[...] = np.argmax(flat, axis=1)
    out[...] = np.take_along_axis(flat, argmax[:, None, :].astype(np.intp), axis=1)[:, 0]
    return out, argmax


def global_max_pool2d_backward(dy, argmax, dx):
    """``dx`` zero but ``dx[n, argmax[n, c], c] = dy[n, c]``; written and returned."""
    dx = check.global_pool_backward_args(dy, dx, argmax, want_argmax=True)
    acc = np.zeros((dx.shape[0], dx.shape[1] * dx.shape[2], dx.shape[3]), dy.dtype)
    np.put_along_axis(acc, argmax[:, None, :].astype(np.intp), dy[:, None, :], axis=1)
    return _store(dx, acc.reshape(dx.shape))


# ---------------------------------------------------------- batch normalisation
# Statistics per channel (the last axis) over every other axis: after a Dense layer
# x is (n, features), after a convolution (n, h, w, channels).

def _channel_stats(x):
    """Each channel's mean and biased variance over every other axis, in float64."""
    x64 = x.reshape(-1, x.shape[-1]).astype(np.float64)
    mean = x64.mean(axis=0)
    return mean, np.square(x64 - mean).mean(axis=0)


def _bn_coefficients(mean, inv, gamma, beta):
    """``(scale, shift)`` with ``y = x * scale + shift``: ``scale = inv * gamma``,
    ``shift = beta - mean * scale`` (``inv = 1 / sqrt(var + eps)``; gamma None: 1, beta
    None: 0), Keras's order of operations, in the dtype of ``inv``.  (The cython twin
    takes its per-channel arithmetic from here and the three helpers below.)"""
    if gamma is not None:
        inv = inv * gamma
    return inv, (-mean * inv if beta is None else beta - mean * inv)


def _bn_batch_coefficients(mean, var, dtype, gamma, beta, epsilon):
    """The training forward's ``(scale, shift, mean, var)`` from the batch's float64
    statistics: ``inv = 1 / sqrt(var + epsilon)`` and the statistics rounded to dtype."""
    inv = (1 / np.sqrt(var + epsilon)).astype(dtype)
    mean_t, var_t = mean.astype(dtype), var.astype(dtype)
    return _bn_coefficients(mean_t, inv, gamma, beta) + (mean_t, var_t)


def _bn_inference_coefficients(gamma, beta, moving_mean, moving_variance, dtype, epsilon):
    """Inference's ``(scale, shift)`` from the moving statistics."""
    inv = (1 / np.sqrt(moving_variance.astype(np.float64) + epsilon)).astype(dtype)
    return _bn_coefficients(moving_mean, inv, gamma, beta)


def _bn_update_moving(moving_mean, moving_variance, mean, var, momentum):
    """``moving = moving * momentum + batch * (1 - momentum)``, in place."""
    if moving_mean is not None:
        moving_mean[...] = moving_mean * momentum + mean * (1 - momentum)
        moving_variance[...] = moving_variance * momentum + var * (1 - momentum)


def batch_norm_forward(x, gamma=None, beta=None, moving_mean=None, moving_variance=None,
                       out=None, *, momentum=0.99, epsilon=1e-3):
    """Batch normalisation in training (Keras 3's BatchNormalization, axis -1): per
    channel the batch ``mean`` and biased ``var`` over every other axis (in float64,
    rounded to the dtype), ``inv = gamma / sqrt(var + epsilon)``, ``y = x * inv +
    (beta - mean * inv)`` (gamma None: 1, beta None: 0).  The moving statistics, when
    given, are updated in place: ``moving = moving * momentum + batch * (1 -
    momentum)`` (the biased variance, as Keras).  x of rank >= 2; ``out`` may be x."""
    out, momentum, epsilon = check.batch_norm_forward_args(
        x, gamma, beta, moving_mean, moving_variance, out, momentum, epsilon)
    scale, shift, mean, var = _bn_batch_coefficients(*_channel_stats(x), x.dtype, gamma,
                                                     beta, epsilon)
    _store(out, x * scale + shift)
    _bn_update_moving(moving_mean, moving_variance, mean, var, momentum)
    return out


def batch_norm_inference(x, gamma, beta, moving_mean, moving_variance, out=None, *,
                         epsilon=1e-3):
    """Batch normalisation in inference: :func:`batch_norm_forward`'s scale and shift
    from the moving statistics, ``inv = gamma / sqrt(moving_variance + epsilon)``,
    ``y = x * inv + (beta - moving_mean * inv)``; gamma and beta may be None."""
    out, epsilon = check.batch_norm_inference_args(x, gamma, beta, moving_mean,
                                                   moving_variance, out, epsilon)
    scale, shift = _bn_inference_coefficients(gamma, beta, moving_mean, moving_variance,
                                              x.dtype, epsilon)
    return _store(out, x * scale + shift)


def batch_norm_backward(dy, x, gamma=None, dx=None, dgamma=None, dbeta=None, *,
                        epsilon=1e-3):
    """Gradients of :func:`batch_norm_forward` (training) from ``dy`` and its input
    ``x``: returns ``(dx, dgamma, dbeta)``.  Per channel, over the ``m`` cells of every
    other axis, with ``r = 1 / sqrt(var + epsilon)`` and ``xhat = (x - mean) r``:
    ``dbeta = sum(dy)``, ``dgamma = sum(dy xhat)``, ``dx = gamma r (dy - dbeta / m -
    xhat dgamma / m)`` (sums in float64, rounded to the dtype).  ``dx`` may be dy or x."""
    dx, dgamma, dbeta, epsilon = check.batch_norm_backward_args(dy, x, gamma, dx, dgamma,
                                                                dbeta, epsilon)
    c = x.shape[-1]
    x2, dy2 = x.reshape(-1, c), dy.reshape(-1, c)
    mean, var = _channel_stats(x)
    r = 1 / np.sqrt(var + epsilon)
    xhat = (x2 - mean) * r
    sum_dy = dy2.sum(axis=0, dtype=np.float64)
    sum_dy_xhat = (dy2 * xhat).sum(axis=0)
    m = x2.shape[0]
    scale = r if gamma is None else r * gamma
    grad = scale * (dy2 - sum_dy / m - xhat * (sum_dy_xhat / m))
    _store(dgamma, sum_dy_xhat)
    _store(dbeta, sum_dy)
    _store(dx, grad.reshape(x.shape))
    return dx, dgamma, dbeta


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
