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
RELU6, SELU, SILU, HARD_SIGMOID, HARD_SILU, MISH, EXPONENTIAL, SOFTSIGN = (
    ACT["relu6"], ACT["selu"], ACT["silu"], ACT["hard_sigmoid"], ACT["hard_silu"],
    ACT["mish"], ACT["exponential"], ACT["softsign"])

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
    six, sc, sa = T(6), T(reference.SELU_SCALE), T(reference.SELU_SCALE * reference.SELU_ALPHA)
    log_max = T(np.log(np.finfo(dtype).max))      # exp overflows to inf past it

    @_nb.jit(device=True)
    def sigmoid(z):
        e = math.exp(-abs(z))
        return one / (one + e) if z >= zero else e / (one + e)

    @_nb.jit(device=True)
    def softplus(z):
        return max(z, zero) + math.log1p(math.exp(-abs(z)))

    @_nb.jit(device=True)
    def hard(z):          # hard_sigmoid: clip(z / 6 + 0.5, 0, 1), NaN kept
        t = z / six + half
        return zero if t <= zero else (one if t >= one else t)

    @_nb.jit(device=True)
    def forward(act, z, p):
        if act == RELU:
            return zero if z < zero else z       # NaN passes through, as np.maximum
        if act == LEAKY_RELU:
            return z if z > zero else p * z
        if act == ELU:
            return z if z > zero else p * math.expm1(min(z, zero))
        if act == SIGMOID:
            return sigmoid(z)
        if act == TANH:
            return math.tanh(z)
        if act == SOFTPLUS:
            return softplus(z)
        if act == GELU:
            return half * z * (one + math.erf(z * c_is2))
        if act == GELU_TANH:
            return half * z * (one + math.tanh(c_s2pi * (z + c_g * z * z * z)))
        if act == RELU6:
            return zero if z <= zero else (six if z > six else z)
        if act == SELU:
            return sc * z if z > zero else sa * math.expm1(zero if z >= zero else z)  # NaN kept
        if act == SILU or act == HARD_SILU or act == MISH:
            u = zero if z == -inf else z         # the limit 0 at -inf (not -inf * 0)
            if act == SILU:
                return u * sigmoid(u)
            if act == HARD_SILU:
                return u * hard(u)
            return u * math.tanh(softplus(u))
        if act == HARD_SIGMOID:
            return hard(z)
        if act == EXPONENTIAL:
            return inf if z > log_max else math.exp(z)   # (the simulator's exp raises)
        if act == SOFTSIGN:
            return z / (one + abs(z))
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
        if act == RELU6:
            return dy if (s > zero and s < six) else zero
        if act == SELU:
            return sc * dy if s > zero else dy * (s + sa)
        if act == SILU:
            g = sigmoid(s)
            tail = zero if abs(s) == inf else s * g * (one - g)
            return dy * (g + tail)
        if act == HARD_SIGMOID:
            return dy / six if (s > zero and s < one) else zero
        if act == HARD_SILU:
            t = s / six + half
            return dy * (zero if t <= zero else (one if t >= one else t + s / six))
        if act == MISH:
            t = math.tanh(softplus(s))
            tail = zero if abs(s) == inf else s * (one - t * t) * sigmoid(s)
            return dy * (t + tail)
        if act == EXPONENTIAL:
            return dy * s
        if act == SOFTSIGN:
            a = one - abs(s)
            return dy * (a * a)
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


@register("log_softmax_rows", "C2 C2")
def _log_softmax_rows(dtype):
    T = np.dtype(dtype).type
    zero = T(0)

    def log_softmax_rows(x, out):
        for r in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            mx = x[r, 0]
            for j in range(1, x.shape[1]):
                mx = max(mx, x[r, j])
            total = zero
            for j in range(x.shape[1]):
                total += math.exp(x[r, j] - mx)
            lse = math.log(total)
            for j in range(x.shape[1]):
                out[r, j] = (x[r, j] - mx) - lse
    return log_softmax_rows


@register("backprop_log_softmax_rows", "C2 C2 C2")
def _backprop_log_softmax_rows(dtype):
    T = np.dtype(dtype).type
    zero = T(0)

    def backprop_log_softmax_rows(dy, y, out):
        for r in range(cuda.grid(1), dy.shape[0], cuda.gridsize(1)):
            total = zero
            for j in range(dy.shape[1]):
                total += dy[r, j]
            for j in range(dy.shape[1]):
                out[r, j] = dy[r, j] - math.exp(y[r, j]) * total
    return backprop_log_softmax_rows


@register("relu_params", "C1 C1 F F B F")
def _relu_params(dtype):
    """relu with Keras's parameters away from their defaults (reference.relu)."""
    T = np.dtype(dtype).type
    zero = T(0)

    def relu_params(x, out, slope, cap, has_cap, thr):
        for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            v = x[i]
            if v > thr:
                out[i] = min(v, cap) if has_cap else v
            elif slope == zero:
                out[i] = v if v != v else zero
            else:
                out[i] = slope * (v - thr)
    return relu_params


@register("backprop_relu_params", "C1 C1 C1 F F B B")
def _backprop_relu_params(dtype):
    T = np.dtype(dtype).type
    zero = T(0)

    def backprop_relu_params(dy, y, out, slope, cap, has_cap, leaky):
        for i in range(cuda.grid(1), dy.shape[0], cuda.gridsize(1)):
            v = y[i]
            if v > zero:
                out[i] = zero if (has_cap and not v < cap) else dy[i]
            elif v < zero or (leaky and v == zero):
                out[i] = slope * dy[i]
            else:
                out[i] = zero
    return backprop_relu_params


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
    if name in reference.ROW_ACTIVATIONS:
        rows = _rows(z)
        kernel = K.softmax_rows if name == "softmax" else K.log_softmax_rows
        launch_1d(kernel, rows.shape[0], rows, _rows(out))
        return
    p = _DEFAULT_PARAM.get(name, 0.0) if param is None else param
    zf = _flat(z)
    launch_1d(K.activate, zf.shape[0], zf, _flat(out), _act_id(name, approximate), p)


def apply_backprop(dtype, name, dy, saved, out, param=None, approximate=False):
    """out = dy * activation'(.) from the saved output (input for gelu)."""
    K = kernels(dtype)
    if name in reference.ROW_ACTIVATIONS:
        rows = _rows(dy)
        kernel = (K.backprop_softmax_rows if name == "softmax"
                  else K.backprop_log_softmax_rows)
        launch_1d(kernel, rows.shape[0], rows, _rows(saved), _rows(out))
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


def relu(x, out=None, *, negative_slope=0.0, max_value=None, threshold=0.0):
    if check.relu_is_plain(negative_slope, max_value, threshold):
        return _forward("relu", x, out)
    slope, cap, thr = check.relu_params(negative_slope, max_value, threshold)
    c = Call(x=x, out=out)
    out = check.unary(c.v["x"], c.v["out"])
    K = kernels(out.dtype)
    d_x = _flat(c.dev(c.v["x"], name="x"))
    launch_1d(K.relu_params, d_x.shape[0], d_x, _flat(c.dev(out, name="out")), slope,
              0.0 if cap is None else cap, cap is not None, thr)
    c.write_back(out)
    return c.result(out)


def backprop_relu(dy, y, out=None, *, negative_slope=0.0, max_value=None, threshold=0.0):
    if check.relu_is_plain(negative_slope, max_value, threshold):
        return _backward("relu", dy, y, out)
    slope, cap, thr = check.relu_params(negative_slope, max_value, threshold)
    c = Call(dy=dy, y=y, out=out)
    out = check.backprop(c.v["dy"], c.v["y"], c.v["out"])
    K = kernels(out.dtype)
    d_dy = _flat(c.dev(c.v["dy"], name="dy"))
    launch_1d(K.backprop_relu_params, d_dy.shape[0], d_dy, _flat(c.dev(c.v["y"], name="y")),
              _flat(c.dev(out, name="out")), slope, 0.0 if cap is None else cap,
              cap is not None, cap is None and thr == 0.0)
    c.write_back(out)
    return c.result(out)


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


def relu6(x, out=None):
    return _forward("relu6", x, out)


def backprop_relu6(dy, y, out=None):
    return _backward("relu6", dy, y, out)


def selu(x, out=None):
    return _forward("selu", x, out)


def backprop_selu(dy, y, out=None):
    return _backward("selu", dy, y, out)


def hard_sigmoid(x, out=None):
    return _forward("hard_sigmoid", x, out)


def backprop_hard_sigmoid(dy, y, out=None):
    return _backward("hard_sigmoid", dy, y, out)


def exponential(x, out=None):
    return _forward("exponential", x, out)


def backprop_exponential(dy, y, out=None):
    return _backward("exponential", dy, y, out)


def softsign(x, out=None):
    return _forward("softsign", x, out)


def backprop_softsign(dy, y, out=None):
    return _backward("softsign", dy, y, out)


def log_softmax(x, out=None):
    return _forward("log_softmax", x, out)


def backprop_log_softmax(dy, y, out=None):
    return _backward("log_softmax", dy, y, out)


def silu(x, out=None):
    return _forward("silu", x, out)


def backprop_silu(dy, x, out=None):
    return _backward("silu", dy, x, out, y_name="x")


def hard_silu(x, out=None):
    return _forward("hard_silu", x, out)


def backprop_hard_silu(dy, x, out=None):
    return _backward("hard_silu", dy, x, out, y_name="x")


def mish(x, out=None):
    return _forward("mish", x, out)


def backprop_mish(dy, x, out=None):
    return _backward("mish", dy, x, out, y_name="x")


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
