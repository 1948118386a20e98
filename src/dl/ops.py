"""``dl.ops``: a small differentiable set of Keras's ``keras.ops`` for models' ``call``
methods and functional graphs.

Each function adds a layer call: on symbolic tensors (``dl.Input``, a traced
``call``) it records a node of the graph, on arrays it computes at once (a batch:
the first axis is the samples').  The axes a function takes count the batch axis as 0,
as Keras's do, and the batch axis cannot be reduced, reshaped or moved (every sample
is computed on its own).

    concatenate, add, subtract, multiply, divide (by a number), matmul, reshape,
    transpose, mean, sum, relu, sigmoid, tanh, softmax, exp, log, sqrt, square, abs,
    maximum, minimum, greater, less, greater_equal, less_equal, equal, not_equal,
    where

The comparisons give float masks (1.0 true, 0.0 false) and pass no gradient;
``where(mask, a, b)`` takes ``a`` where the mask is non-zero, else ``b``.
"""
import math

import numpy as np

from kernels.checks import describe, short_repr

from .layers import Activation, Layer
from .merging import Add, Concatenate, Maximum, Minimum, Multiply, Subtract, _Merge
from .merging import MatMul
from .reshaping import Permute, Reshape

__all__ = ["abs", "add", "concatenate", "divide", "equal", "exp", "greater",
           "greater_equal", "less", "less_equal", "log", "matmul", "maximum", "mean",
           "minimum", "multiply", "not_equal", "relu", "reshape", "sigmoid", "softmax",
           "sqrt", "square", "subtract", "sum", "tanh", "transpose", "where"]



def _number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_))


# ------------------------------------------------------------------ op layers

class _Affine(Layer):
    """``x * scale + shift`` (arithmetic of a tensor with a Python number)."""

    _base_name = "affine"

    def __init__(self, scale=1.0, shift=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.shift = float(scale), float(shift)
        self.built = True

    def forward(self, x, training=False, step=0):
        out = self._buffer("y", x.shape) if training else self.backend.ops.empty(
            x.shape, self.dtype)
        return self.backend.ops.affine(x, self.scale, self.shift, out)

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        return self.backend.ops.affine(dy, self.scale, 0.0, self._buffer("dx", dy.shape))

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "shift": self.shift}


class _Unary(Layer):
    """log, sqrt, square or abs, elementwise."""

    _SAVED = ("_x", "_y")

    def __init__(self, op, **kwargs):
        self._base_name = op
        super().__init__(**kwargs)
        self.op = op
        self.built = True

    def forward(self, x, training=False, step=0):
        out = self._buffer("y", x.shape) if training else self.backend.ops.empty(
            x.shape, self.dtype)
        y = self.backend.ops.unary(self.op, x, out)
        if training:
            self._x, self._y = x, y
        return y

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        return self.backend.ops.unary_grad(self.op, self._x, self._y, dy,
                                           self._buffer("dx", dy.shape))

    def get_config(self):
        return {**super().get_config(), "op": self.op}


class _Reduce(Layer):
    """The sum or mean over sample axes (``axes``: 1-based, the batch is 0)."""

    _SAVED = ("_perm", "_in_shape")

    def __init__(self, op, axes, keepdims=False, **kwargs):
        self._base_name = op
        super().__init__(**kwargs)
        self.op, self.axes, self.keepdims = op, tuple(axes), bool(keepdims)
        self.built = True

    def compute_output_shape(self, input_shape):
        rank = len(input_shape)
        if any(not 1 <= a <= rank for a in self.axes):
            raise ValueError(f"axis: {self.name} reduces sample axes 1..{rank} of inputs "
                             f"{(None,) + tuple(input_shape)} (the batch axis 0 cannot be "
                             f"reduced in a model), got {self.axes}")
        if self.keepdims:
            return tuple(1 if i + 1 in self.axes else d for i, d in enumerate(input_shape))
        return tuple(d for i, d in enumerate(input_shape) if i + 1 not in self.axes)

    def _plan(self, shape):
        """(permutation moving the reduced axes last or None, rows, reduced size)."""
        keep = [a for a in range(1, len(shape)) if a not in self.axes]
        perm = (0,) + tuple(keep) + self.axes
        size = math.prod(shape[a] for a in self.axes)
        return (None if perm == tuple(range(len(shape))) else perm), size

    def forward(self, x, training=False, step=0):
        ops, be = self.backend.ops, self.backend
        perm, size = self._plan(x.shape)
        if perm is not None:
            shape = tuple(x.shape[a] for a in perm)
            buf = self._buffer("perm", shape) if training else ops.empty(shape, self.dtype)
            x = ops.permute(x, perm, buf)
        rows = x.size // size
        out_shape = (x.shape[0],) + tuple(self.output_shape)
        out = self._buffer("y", out_shape) if training else ops.empty(out_shape,
                                                                     self.dtype)
        be.gemm(x.reshape(rows, size), self._constant(1.0, (size, 1)), out.reshape(rows, 1),
                alpha=1.0 / size if self.op == "mean" else 1.0)
        if training:
            self._perm, self._in_shape = perm, tuple(x.shape)     # (the permuted shape)
        return out

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        ops, be = self.backend.ops, self.backend
        shape = self._in_shape
        size = math.prod(shape[len(shape) - len(self.axes):])
        rows = math.prod(shape) // size
        g = self._buffer("g", shape)
        be.gemm(dy.reshape(rows, 1), self._constant(1.0, (1, size)), g.reshape(rows, size),
                alpha=1.0 / size if self.op == "mean" else 1.0)
        if self._perm is None:
            return g
        inverse = tuple(int(i) for i in np.argsort(self._perm))
        return ops.permute(g, inverse, self._buffer("dx", tuple(shape[a] for a in inverse)))

    def get_config(self):
        return {**super().get_config(), "op": self.op, "axes": list(self.axes),
                "keepdims": self.keepdims}


class _Compare(_Merge):
    """A float mask: 1.0 where ``a <op> b``, else 0.0; no gradient flows."""

    _min_inputs = _max_inputs = 2
    _SAVED = ("_shape",)

    def __init__(self, op, **kwargs):
        self._base_name = op
        super().__init__(**kwargs)
        self.op = op

    def forward(self, xs, training=False, step=0):
        out = self._out("y", xs[0].shape, training)
        if training:
            self._shape = tuple(xs[0].shape)
        return self.backend.ops.binary(self.op, xs[0], xs[1], out)

    def backward(self, dy, need_dx=True):
        zero = self._constant(0.0, self._shape)
        return [zero, zero]

    def get_config(self):
        return {**super().get_config(), "op": self.op}


class _CompareConst(Layer):
    """``x <op> c`` for a number c, as a float mask (no gradient)."""

    _SAVED = ("_shape",)

    def __init__(self, op, value, **kwargs):
        self._base_name = op
        super().__init__(**kwargs)
        self.op, self.value = op, float(value)
        self.built = True

    def forward(self, x, training=False, step=0):
        ops = self.backend.ops
        shape = tuple(x.shape)
        out = self._buffer("y", shape) if training else ops.empty(shape, self.dtype)
        if training:
            self._shape = shape
        return ops.binary(self.op, x, self._constant(self.value, shape), out)

    def backward(self, dy, need_dx=True):
        return self._constant(0.0, self._shape) if need_dx else None

    def get_config(self):
        return {**super().get_config(), "op": self.op, "value": self.value}


class _Where(_Merge):
    """``a`` where ``mask`` is non-zero, else ``b``; no gradient to the mask."""

    _min_inputs = _max_inputs = 3
    _SAVED = ("_m",)
    _base_name = "where"

    def forward(self, xs, training=False, step=0):
        ops = self.backend.ops
        mask, a, b = xs
        m = self._out("m", mask.shape, training)
        ops.binary("not_equal", mask, self._constant(0.0, mask.shape), m)
        out = self._out("y", a.shape, training)
        tmp = self._out("t", a.shape, training)
        ops.binary("multiply", a, m, out)          # a m + b - b m
        ops.binary("multiply", b, m, tmp)
        ops.binary("add", out, b, out)
        ops.binary("subtract", out, tmp, out)
        if training:
            self._m = m
        return out

    def backward(self, dy, need_dx=True):
        ops = self.backend.ops
        da = ops.binary("multiply", dy, self._m, self._buffer("da", dy.shape))
        db = ops.binary("subtract", dy, da, self._buffer("db", dy.shape))
        return [self._constant(0.0, self._m.shape), da, db]


# ------------------------------------------------------------------ functions

def _scalar_op(x, c, name, reverse=False):
    """A tensor with a Python number (``x + 1``, ``2 * x``, ``x / 4``, ``1 - x``)."""
    c = float(c)
    if name == "add":
        return _Affine(1.0, c)(x)
    if name == "subtract":
        return _Affine(-1.0, c)(x) if reverse else _Affine(1.0, -c)(x)
    if name == "multiply":
        return _Affine(c, 0.0)(x)
    if name == "divide":
        if reverse:
            raise TypeError("divide: a number divided by a tensor is not provided")
        if c == 0:
            raise ValueError("divide: division by zero")
        return _Affine(1.0 / c, 0.0)(x)
    raise ValueError(name)


def _binary(layer_cls, name, a, b):
    if _number(b):
        return _scalar_op(a, b, name)
    if _number(a):
        return _scalar_op(b, a, name, reverse=True)
    return layer_cls()([a, b])


def add(x1, x2):
    return _binary(Add, "add", x1, x2)


def subtract(x1, x2):
    return _binary(Subtract, "subtract", x1, x2)


def multiply(x1, x2):
    return _binary(Multiply, "multiply", x1, x2)


def divide(x1, x2):
    """A tensor divided by a number."""
    if not _number(x2):
        raise TypeError(f"divide: dl divides a tensor by a number, got {describe(x2)}")
    return _scalar_op(x1, x2, "divide")


def maximum(x1, x2):
    return Maximum()([x1, x2])


def minimum(x1, x2):
    return Minimum()([x1, x2])


def matmul(x1, x2):
    """The matrix product of each sample's matrices: (batch, m, k) @ (batch, k, n)."""
    return MatMul()([x1, x2])


def concatenate(xs, axis=-1):
    return Concatenate(axis=axis)(list(xs))


def reshape(x, newshape):
    """``newshape`` with the batch first, as Keras's: -1 or None there."""
    newshape = tuple(newshape)
    if not newshape or newshape[0] not in (-1, None):
        raise ValueError(f"newshape: dl reshapes each sample; the batch entry comes first "
                         f"as -1 or None, got {short_repr(newshape)}")
    return Reshape(newshape[1:])(x)


def transpose(x, axes=None):
    """``axes`` a permutation of all axes with the batch axis 0 first (None: the sample
    axes reversed)."""
    rank = len(x.shape)
    if axes is None:
        axes = (0,) + tuple(range(rank - 1, 0, -1))
    axes = tuple(axes)
    if len(axes) != rank or axes[0] != 0:
        raise ValueError(f"axes: dl transposes the sample axes; the batch axis 0 stays "
                         f"first, got {short_repr(axes)} for a tensor of rank {rank}")
    return Permute(axes[1:])(x)


def _axes(x, axis):
    rank = len(x.shape)
    if axis is None:
        raise ValueError("axis: the batch axis cannot be reduced in a model: give the "
                         "sample axes (1 to rank - 1)")
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in axes:
        if isinstance(a, (bool, np.bool_)) or not isinstance(a, (int, np.integer)):
            raise TypeError(f"axis: expected ints, got {describe(a)}")
        a = int(a) + rank if a < 0 else int(a)
        if not 1 <= a < rank:
            raise ValueError(f"axis: the sample axes of a rank-{rank} tensor are 1 to "
                             f"{rank - 1} (the batch axis 0 cannot be reduced), got {axis}")
        out.append(a)
    return tuple(sorted(set(out)))


def sum(x, axis, keepdims=False):
    return _Reduce("sum", _axes(x, axis), keepdims)(x)


def mean(x, axis, keepdims=False):
    return _Reduce("mean", _axes(x, axis), keepdims)(x)


def relu(x):
    return Activation("relu")(x)


def sigmoid(x):
    return Activation("sigmoid")(x)


def tanh(x):
    return Activation("tanh")(x)


def softmax(x, axis=-1):
    if axis not in (-1, len(x.shape) - 1):
        raise ValueError(f"axis: dl.ops.softmax normalises the last axis, got {axis}")
    return Activation("softmax")(x)


def exp(x):
    return Activation("exponential")(x)


def log(x):
    return _Unary("log")(x)


def sqrt(x):
    return _Unary("sqrt")(x)


def square(x):
    return _Unary("square")(x)


def abs(x):
    return _Unary("abs")(x)


def _compare(op, x1, x2):
    if _number(x2):
        return _CompareConst(op, x2)(x1)
    if _number(x1):
        flipped = {"greater": "less", "less": "greater", "greater_equal": "less_equal",
                   "less_equal": "greater_equal"}.get(op, op)
        return _CompareConst(flipped, x1)(x2)
    return _Compare(op)([x1, x2])


def greater(x1, x2):
    return _compare("greater", x1, x2)


def less(x1, x2):
    return _compare("less", x1, x2)


def greater_equal(x1, x2):
    return _compare("greater_equal", x1, x2)


def less_equal(x1, x2):
    return _compare("less_equal", x1, x2)


def equal(x1, x2):
    return _compare("equal", x1, x2)


def not_equal(x1, x2):
    return _compare("not_equal", x1, x2)


def where(condition, x1, x2):
    """``x1`` where ``condition`` (a mask: a comparison's, or any tensor, non-zero is
    true) holds, else ``x2``; tensors of one shape."""
    return _Where()([condition, x1, x2])
