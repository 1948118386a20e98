"""Elementwise CUDA kernels: activations and their gradients, bias, column sums.

Activations are device functions selected by an integer id (``ACT``), shared by the
standalone kernels here and by the GEMM epilogue of the fused dense forward pass.  Every
kernel is a grid-stride loop over a flat C-contiguous array; softmax and its gradient
work per row (one thread per row).
"""
import functools
import math

import numpy as np

from .. import reference
from . import _nb
from ._nb import cuda
from ._compile import register

# Activation ids: their position in the reference's table (shared with the Cython twin's
# ACT_* enum, which tests/kernels/test_tables.py checks against it).
ACT = {name: i for i, name in enumerate(reference.ACTIVATION_KERNELS)}
# (module constants: Numba compiles them into the device functions)
RELU, LEAKY_RELU, ELU, SIGMOID, TANH, SOFTPLUS, GELU, GELU_TANH = (
    ACT["relu"], ACT["leaky_relu"], ACT["elu"], ACT["sigmoid"], ACT["tanh"],
    ACT["softplus"], ACT["gelu"], ACT["gelu_tanh"])

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_C = 0.044715


@functools.lru_cache(maxsize=None)
def activation_functions(dtype):
    """Device functions ``forward(act, z, p)`` and ``backward(act, dy, s, p)`` for
    ``dtype``; ``s`` is the saved output y (the input z for gelu), ``p`` the
    activation's parameter (leaky_relu's slope, elu's alpha).  Softmax (a row
    operation) is not handled here."""
    T = np.dtype(dtype).type
    zero, one, half = T(0), T(1), T(0.5)
    c_s2pi, c_is2, c_is2pi, c_g, c_3g = (T(_SQRT_2_OVER_PI), T(_INV_SQRT_2),
                                         T(_INV_SQRT_2PI), T(_GELU_C), T(3 * _GELU_C))
    inf = T(np.inf)

    @_nb.jit(device=True)
    def forward(act, z, p):
        if act == RELU:
            return zero if z < zero else z       # NaN passes through, as np.maximum
        if act == LEAKY_RELU:
            return z if z > zero else p * z
        if act == ELU:
            return z if z > zero else p * math.expm1(min(z, zero))
        if act == SIGMOID:
            e = math.exp(-abs(z))
            return one / (one + e) if z >= zero else e / (one + e)
        if act == TANH:
            return math.tanh(z)
        if act == SOFTPLUS:
            return max(z, zero) + math.log1p(math.exp(-abs(z)))
        if act == GELU:
            return half * z * (one + math.erf(z * c_is2))
        if act == GELU_TANH:
            return half * z * (one + math.tanh(c_s2pi * (z + c_g * z * z * z)))
        return z

    @_nb.jit(device=True)
    def backward(act, dy, s, p):
        if act == RELU:
            return dy if s > zero else zero
        if act == LEAKY_RELU:
            return dy if s > zero else p * dy
        if act == ELU:
            return dy if s > zero else dy * (s + p)
        if act == SIGMOID:
            return dy * s * (one - s)
        if act == TANH:
            return dy * (one - s * s)
        if act == SOFTPLUS:
            return dy * -math.expm1(-s)
        if act == GELU:
            # x * phi(x) -> 0 as |x| -> inf (inf * 0 would be NaN)
            tail = zero if abs(s) == inf else s * c_is2pi * math.exp(-half * s * s)
            return dy * (half * (one + math.erf(s * c_is2)) + tail)
        if act == GELU_TANH:
            t = math.tanh(c_s2pi * (s + c_g * s * s * s))
            if abs(s) == inf:
                tail = zero
            else:
                tail = half * s * (one - t * t) * c_s2pi * (one + c_3g * s * s)
            return dy * (half * (one + t) + tail)
        return dy

    return forward, backward


@register("activate", "C1 C1 I F")
def _activate(dtype):
    forward, _ = activation_functions(dtype)

    def activate(x, out, act, p):
        for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            out[i] = forward(act, x[i], p)
    return activate


@register("backprop", "C1 C1 C1 I F")
def _backprop(dtype):
    _, backward = activation_functions(dtype)

    def backprop(dy, s, out, act, p):
        for i in range(cuda.grid(1), dy.shape[0], cuda.gridsize(1)):
            out[i] = backward(act, dy[i], s[i], p)
    return backprop


@register("softmax_rows", "C2 C2")
def _softmax_rows(dtype):
    T = np.dtype(dtype).type
    zero = T(0)

    def softmax_rows(x, out):
        for r in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            mx = x[r, 0]
            for j in range(1, x.shape[1]):
                mx = max(mx, x[r, j])
            total = zero
            for j in range(x.shape[1]):
                e = math.exp(x[r, j] - mx)
                out[r, j] = e
                total += e
            for j in range(x.shape[1]):
                out[r, j] = out[r, j] / total
    return softmax_rows


@register("backprop_softmax_rows", "C2 C2 C2")
def _backprop_softmax_rows(dtype):
    T = np.dtype(dtype).type
    zero = T(0)

    def backprop_softmax_rows(dy, y, out):
        for r in range(cuda.grid(1), dy.shape[0], cuda.gridsize(1)):
            dot = zero
            for j in range(dy.shape[1]):
                dot += dy[r, j] * y[r, j]
            for j in range(dy.shape[1]):
                out[r, j] = y[r, j] * (dy[r, j] - dot)
    return backprop_softmax_rows


@register("bias_add", "C2 C1 C2")
def _bias_add(dtype):
    def bias_add(x, b, out):
        cols = x.shape[1]
        for i in range(cuda.grid(1), x.shape[0] * cols, cuda.gridsize(1)):
            r = i // cols
            c = i - r * cols
            out[r, c] = x[r, c] + b[c]
    return bias_add


@register("column_sums", "C2 C1")
def _column_sums(dtype):
    T = np.dtype(dtype).type
    zero = T(0)

    def column_sums(x, out):
        # one thread per column, rows in order: deterministic, coalesced across threads
        for c in range(cuda.grid(1), x.shape[1], cuda.gridsize(1)):
            total = zero
            for r in range(x.shape[0]):
                total += x[r, c]
            out[c] = total
    return column_sums


@register("backprop_colsum", "C2 C2 C2 C1 I F B")
def _backprop_colsum(dtype):
    """dz = backward(dy, s) and db = column sums of dz in one pass (dense backward)."""
    _, backward = activation_functions(dtype)
    T = np.dtype(dtype).type
    zero = T(0)

    def backprop_colsum(dy, s, dz, db, act, p, want_db):
        for c in range(cuda.grid(1), dy.shape[1], cuda.gridsize(1)):
            total = zero
            for r in range(dy.shape[0]):
                d = backward(act, dy[r, c], s[r, c], p)
                dz[r, c] = d
                total += d
            if want_db:
                db[c] = total
    return backprop_colsum


# ------------------------------------------------------------------ public kernels

from .. import checks as check                      # noqa: E402
from ._arrays import Call                            # noqa: E402
from ._compile import launch_1d, kernels             # noqa: E402

_DEFAULT_PARAM = reference.ACTIVATION_DEFAULT_PARAM


def _flat(d):
    return d.reshape(-1) if d.ndim != 1 else d


def _rows(d):
    return d.reshape(-1, tuple(d.shape)[-1]) if d.ndim != 2 else d


def _act_id(name, approximate=False):
    return ACT["gelu_tanh"] if name == "gelu" and approximate else ACT[name]


def apply_activation(dtype, name, z, out, param=None, approximate=False):
    """out = activation(z) on C-contiguous device arrays (out may be z)."""
    K = kernels(dtype)
    if name == "softmax":
        rows = _rows(z)
        launch_1d(K.softmax_rows, rows.shape[0], rows, _rows(out))
        return
    p = _DEFAULT_PARAM.get(name, 0.0) if param is None else param
    zf = _flat(z)
    launch_1d(K.activate, zf.shape[0], zf, _flat(out), _act_id(name, approximate), p)


def apply_backprop(dtype, name, dy, saved, out, param=None, approximate=False):
    """out = dy * activation'(.) from the saved output (input for gelu)."""
    K = kernels(dtype)
    if name == "softmax":
        rows = _rows(dy)
        launch_1d(K.backprop_softmax_rows, rows.shape[0], rows, _rows(saved), _rows(out))
        return
    p = _DEFAULT_PARAM.get(name, 0.0) if param is None else param
    dyf = _flat(dy)
    launch_1d(K.backprop, dyf.shape[0], dyf, _flat(saved), _flat(out),
              _act_id(name, approximate), p)


def _forward(name, x, out, param=None, approximate=False):
    c = Call(x=x, out=out)
    out = check.unary(c.v["x"], c.v["out"])
    apply_activation(out.dtype, name, c.dev(c.v["x"], name="x"), c.dev(out, name="out"),
                     param, approximate)
    c.write_back(out)
    return c.result(out)


def _backward(name, dy, y, out, param=None, approximate=False, y_name="y"):
    c = Call(dy=dy, y=y, out=out)
    out = check.backprop(c.v["dy"], c.v["y"], c.v["out"], y_name=y_name)
    apply_backprop(out.dtype, name, c.dev(c.v["dy"], name="dy"),
                   c.dev(c.v["y"], name=y_name), c.dev(out, name="out"), param, approximate)
    c.write_back(out)
    return c.result(out)


def linear(x, out=None):
    return _forward("linear", x, out)


def backprop_linear(dy, y, out=None):
    return _backward("linear", dy, y, out)


def relu(x, out=None):
    return _forward("relu", x, out)


def backprop_relu(dy, y, out=None):
    return _backward("relu", dy, y, out)


def leaky_relu(x, out=None, *, negative_slope=0.2):
    negative_slope = check.real("negative_slope", negative_slope, low=0.0)
    return _forward("leaky_relu", x, out, negative_slope)


def backprop_leaky_relu(dy, y, out=None, *, negative_slope=0.2):
    negative_slope = check.real("negative_slope", negative_slope, low=0.0)
    return _backward("leaky_relu", dy, y, out, negative_slope)


def elu(x, out=None, *, alpha=1.0):
    alpha = check.real("alpha", alpha, low=0.0, low_open=True)
    return _forward("elu", x, out, alpha)


def backprop_elu(dy, y, out=None, *, alpha=1.0):
    alpha = check.real("alpha", alpha, low=0.0, low_open=True)
    return _backward("elu", dy, y, out, alpha)


def sigmoid(x, out=None):
    return _forward("sigmoid", x, out)


def backprop_sigmoid(dy, y, out=None):
    return _backward("sigmoid", dy, y, out)


def tanh(x, out=None):
    return _forward("tanh", x, out)


def backprop_tanh(dy, y, out=None):
    return _backward("tanh", dy, y, out)


def softmax(x, out=None):
    return _forward("softmax", x, out)


def backprop_softmax(dy, y, out=None):
    return _backward("softmax", dy, y, out)


def softplus(x, out=None):
    return _forward("softplus", x, out)


def backprop_softplus(dy, y, out=None):
    return _backward("softplus", dy, y, out)


def gelu(x, out=None, *, approximate=False):
    approximate = check.flag("approximate", approximate)
    return _forward("gelu", x, out, approximate=approximate)


def backprop_gelu(dy, x, out=None, *, approximate=False):
    approximate = check.flag("approximate", approximate)
    return _backward("gelu", dy, x, out, approximate=approximate, y_name="x")


def bias_add(x, b, out=None):
    c = Call(x=x, b=b, out=out)
    out = check.bias_args(c.v["x"], c.v["b"], c.v["out"])
    K = kernels(out.dtype)
    launch_1d(K.bias_add, out.size, c.dev(c.v["x"], name="x"), c.dev(c.v["b"], name="b"),
              c.dev(out, name="out"))
    c.write_back(out)
    return c.result(out)


def column_sums(x, out=None):
    c = Call(x=x, out=out)
    out = check.column_sums_args(c.v["x"], c.v["out"])
    K = kernels(out.dtype)
    launch_1d(K.column_sums, out.shape[0], c.dev(c.v["x"], name="x"), c.dev(out, name="out"))
    c.write_back(out)
    return c.result(out)
