"""Merge layers: Keras's ``Add``, ``Subtract``, ``Multiply``, ``Average``, ``Maximum``,
``Minimum``, ``Concatenate`` and ``Dot``, which combine a list of tensors.

They take their inputs as a list (``forward(xs)``) and return one gradient per input
from ``backward``.  The arithmetic runs through ``backend.ops`` (``binary``,
``select_grad``, ``place_cols``/``take_cols``) and the backend's ``gemm`` (``Dot``), so
the same code runs on host and device arrays.  Also exported by ``dl.layers``.
"""
import math

import numpy as np

from kernels.checks import describe, flag, short_repr

from .layers import Layer


class _Merge(Layer):
    """A layer over a list of tensors of one shape (dl does not broadcast them)."""

    _multi_input = True
    _SAVED = ("_xs",)
    _min_inputs = 1
    _max_inputs = None

    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    def _check_count(self, shapes):
        n = len(shapes)
        if n < self._min_inputs or (self._max_inputs is not None and n > self._max_inputs):
            want = (f"exactly {self._min_inputs}" if self._min_inputs == self._max_inputs
                    else f"at least {self._min_inputs}")
            raise ValueError(f"{self.name}: a {type(self).__name__} layer should be called "
                             f"on a list of {want} inputs, got {n}")

    def compute_output_shape(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        self._check_count(shapes)
        if any(s != shapes[0] for s in shapes):
            raise ValueError(f"{self.name}: expected inputs of one shape, got "
                             f"{', '.join(str((None,) + s) for s in shapes)} (dl's merge "
                             f"layers do not broadcast)")
        return shapes[0]

    def _build(self, input_shape, backend, dtype):
        self.backend = backend
        if self.dtype is None:
            self.dtype = dtype
        self.input_shape = [tuple(s) for s in input_shape]
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True

    def _out(self, key, shape, training):
        return self._buffer(key, shape) if training else self.backend.ops.empty(
            shape, self.dtype)


class _Elementwise(_Merge):
    """Add, Subtract, Multiply, Maximum, Minimum: ``op`` folded over the inputs."""

    _op = None

    def forward(self, xs, training=False, step=0):
        ops = self.backend.ops
        out = self._out("y", xs[0].shape, training)
        ops.binary(self._op, xs[0], xs[1], out) if len(xs) > 1 else \
            ops.affine(xs[0], 1.0, 0.0, out)
        for x in xs[2:]:
            ops.binary(self._op, out, x, out)
        if training:
            self._xs = list(xs)
        return out


class Add(_Elementwise):
    """``output = inputs[0] + inputs[1] + ...`` (also ``x + y`` on symbolic tensors)."""

    _op = "add"
    _SAVED = ("_n",)

    def forward(self, xs, training=False, step=0):
        if training:
            self._n = len(xs)
        return _Elementwise.forward(self, xs, training, step)

    def backward(self, dy, need_dx=True):
        return [dy] * self._n


class Subtract(_Elementwise):
    """``output = inputs[0] - inputs[1]`` (also ``x - y`` on symbolic tensors)."""

    _op = "subtract"
    _min_inputs = _max_inputs = 2
    _SAVED = ()

    def backward(self, dy, need_dx=True):
        neg = self._buffer("dx1", dy.shape)
        self.backend.ops.affine(dy, -1.0, 0.0, neg)
        return [dy, neg]


class Multiply(_Elementwise):
    """``output = inputs[0] * inputs[1] * ...`` elementwise (also ``x * y``)."""

    _op = "multiply"

    def backward(self, dy, need_dx=True):
        ops = self.backend.ops
        dxs = []
        for i in range(len(self._xs)):
            dx = self._buffer(f"dx{i}", dy.shape)
            others = [x for j, x in enumerate(self._xs) if j != i]
            ops.binary("multiply", dy, others[0], dx)
            for x in others[1:]:
                ops.binary("multiply", dx, x, dx)
            dxs.append(dx)
        return dxs


class Average(_Elementwise):
    """``output = (inputs[0] + inputs[1] + ...) / n``."""

    _op = "add"
    _SAVED = ("_n",)

    def forward(self, xs, training=False, step=0):
        out = _Elementwise.forward(self, xs, training, step)
        self.backend.ops.affine(out, 1.0 / len(xs), 0.0, out)
        if training:
            self._n = len(xs)
        return out

    def backward(self, dy, need_dx=True):
        dx = self._buffer("dx", dy.shape)
        self.backend.ops.affine(dy, 1.0 / self._n, 0.0, dx)
        return [dx] * self._n


class Maximum(_Elementwise):
    """``output = max(inputs[0], inputs[1], ...)`` elementwise, folded pairwise as
    Keras's; the gradient goes to the larger input, split in half on ties (Keras's
    torch backend)."""

    _op = "maximum"
    _SAVED = ("_xs", "_partial")

    def forward(self, xs, training=False, step=0):
        ops = self.backend.ops
        if not training:
            return _Elementwise.forward(self, xs, False, step)
        # keep each partial result: the backward walks the fold back
        partial = [xs[0]]
        for i, x in enumerate(xs[1:], 1):
            out = self._buffer(f"m{i}", x.shape)
            ops.binary(self._op, partial[-1], x, out)
            partial.append(out)
        self._xs, self._partial = list(xs), partial
        return partial[-1]

    def backward(self, dy, need_dx=True):
        ops = self.backend.ops
        dxs = [None] * len(self._xs)
        g = dy
        for i in range(len(self._xs) - 1, 0, -1):
            da = self._buffer(f"da{i}", dy.shape)
            db = self._buffer(f"dx{i}", dy.shape)
            a, b = self._partial[i - 1], self._xs[i]
            if self._op == "maximum":
                ops.select_grad(a, b, g, da, db)
            else:
                ops.select_grad(b, a, g, da, db)   # a gets dy where b > a
            dxs[i] = db
            g = da
        dxs[0] = g
        return dxs


class Minimum(Maximum):
    """``output = min(inputs[0], inputs[1], ...)`` elementwise (see Maximum)."""

    _op = "minimum"


class Concatenate(_Merge):
    """Joins the inputs along ``axis`` (default -1, the last; the batch axis 0 cannot
    be joined).  The other dimensions must agree."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"axis: expected an int, got {describe(axis)}")
        self.axis = int(axis)

    def _sample_axis(self, rank):
        """The axis among one sample's dimensions (0-based), or a ValueError."""
        full = rank + 1
        axis = self.axis + full if self.axis < 0 else self.axis
        if not 1 <= axis < full:
            raise ValueError(f"axis: {self.name} joins inputs of rank {full} along an "
                             f"axis in [1, {full - 1}] or [-{full - 1}, -1] (not the "
                             f"batch), got {self.axis}")
        return axis - 1

    def compute_output_shape(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        self._check_count(shapes)
        ranks = {len(s) for s in shapes}
        if len(ranks) > 1:
            raise ValueError(f"{self.name}: expected inputs of one rank, got "
                             f"{', '.join(str((None,) + s) for s in shapes)}")
        k = self._sample_axis(len(shapes[0]))
        rest = {s[:k] + s[k + 1:] for s in shapes}
        if len(rest) > 1:
            raise ValueError(f"{self.name}: A Concatenate layer requires inputs with "
                             f"matching shapes except for the concatenation axis "
                             f"{self.axis}; got {', '.join(str((None,) + s) for s in shapes)}")
        s = shapes[0]
        return s[:k] + (sum(x[k] for x in shapes),) + s[k + 1:]

    def _as_2d(self, x, k):
        # (batch, d0..dk-1, dk, dk+1..): rows = batch * d0..dk-1, columns = dk * rest
        rows = x.shape[0] * math.prod(x.shape[1:k + 1])
        return x.reshape(rows, x.size // rows)

    def forward(self, xs, training=False, step=0):
        ops = self.backend.ops
        k = self._sample_axis(xs[0].ndim - 1)
        shape = (xs[0].shape[0],) + tuple(self.output_shape)
        out = self._out("y", shape, training)
        out2 = self._as_2d(out, k)
        offset = 0
        for x in xs:
            x2 = self._as_2d(x, k)
            ops.place_cols(x2, out2, offset)
            offset += x2.shape[1]
        if training:
            self._xs = [tuple(x.shape) for x in xs]
        return out

    def backward(self, dy, need_dx=True):
        ops = self.backend.ops
        k = self._sample_axis(dy.ndim - 1)
        dy2 = self._as_2d(dy, k)
        dxs, offset = [], 0
        for i, shape in enumerate(self._xs):
            dx = self._buffer(f"dx{i}", shape)
            dx2 = self._as_2d(dx, k)
            ops.take_cols(dy2, offset, dx2)
            offset += dx2.shape[1]
            dxs.append(dx)
        return dxs

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class Dot(_Merge):
    """The dot product of two tensors per sample, over ``axes`` (Keras's batch dot).

    Inputs of rank 2, ``(batch, d)`` each with ``axes=1`` (or -1): ``(batch, 1)``;
    inputs of rank 3, ``(batch, p, q)`` and ``(batch, r, s)`` with ``axes=(a1, a2)``
    (an int: the same for both): the sample-wise matrix product contracting x's axis
    ``a1`` with y's ``a2``, ``(batch, the other axis of x, the other axis of y)``.
    ``normalize=True`` first L2-normalises each input along its contracted axis, as
    Keras (``x * min(1 / sqrt(sum x^2), 1e7)``): the dot product of two vectors is then
    their cosine similarity.  ``x @ y`` on symbolic tensors of rank 3 is
    ``Dot(axes=(2, 1))``: a matrix product per sample.
    """

    _min_inputs = _max_inputs = 2
    _SAVED = ("_xs", "_raw", "_norm_state")

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axes, (list, tuple)):
            if len(axes) != 2:
                raise ValueError(f"axes: expected an int or a pair of ints, got "
                                 f"{short_repr(axes)}")
            pair = tuple(axes)
        else:
            pair = (axes, axes)
        for a in pair:
            if isinstance(a, (bool, np.bool_)) or not isinstance(a, (int, np.integer)):
                raise TypeError(f"axes: expected an int or a pair of ints, got "
                                f"{short_repr(axes)}")
        self.axes = axes if not isinstance(axes, (list, tuple)) else list(axes)
        self._pair = tuple(int(a) for a in pair)
        self.normalize = flag("normalize", normalize)

    def _axes_for(self, shapes):
        ranks = [len(s) + 1 for s in shapes]
        if ranks[0] != ranks[1] or ranks[0] not in (2, 3):
            raise ValueError(f"{self.name}: dl's Dot takes two inputs of rank 2 or two of "
                             f"rank 3, got {', '.join(str((None,) + tuple(s)) for s in shapes)}")
        out = []
        for a, r in zip(self._pair, ranks):
            a = a + r if a < 0 else a
            if not 1 <= a < r:
                raise ValueError(f"axes: {self.name}'s axes must be sample axes of its "
                                 f"rank-{r} inputs (1..{r - 1}), got {short_repr(self.axes)}")
            out.append(a)
        return tuple(out)

    def compute_output_shape(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        self._check_count(shapes)
        a1, a2 = self._axes_for(shapes)
        x, y = shapes
        if x[a1 - 1] != y[a2 - 1]:
            raise ValueError(f"{self.name}: Incompatible input shapes: axis {a1} of "
                             f"{(None,) + x} is {x[a1 - 1]}, axis {a2} of {(None,) + y} "
                             f"is {y[a2 - 1]}")
        if len(x) == 1:
            return (1,)
        return (x[2 - a1],) + (y[2 - a2],)

    # L2 normalisation along one sample axis (normalize=True) ---------------------
    def _moved(self, a, axis, key, training, back=False):
        """``a`` with ``axis`` moved last (or, ``back``, from last to ``axis``): a view
        when it already is, else a permuted copy."""
        rank = a.ndim
        if axis == rank - 1:
            return a
        ops = self.backend.ops
        if not back:
            perm = tuple(i for i in range(rank) if i != axis) + (axis,)
        else:
            perm = tuple(int(i) for i in np.argsort(
                tuple(i for i in range(rank) if i != axis) + (axis,)))
        shape = tuple(a.shape[p] for p in perm)
        out = self._buffer(key, shape) if training else ops.empty(shape, self.dtype)
        return ops.permute(a, perm, out)

    def _normalized(self, x, axis, k, training):
        """(x L2-normalised along ``axis``, what the backward needs)."""
        be, ops = self.backend, self.backend.ops
        xm = self._moved(x, axis, f"nx{k}", training)
        d = xm.shape[xm.ndim - 1]      # (device arrays take no negative index)
        rows = xm.size // d
        X = xm.reshape(rows, d)
        buf = (lambda key, shape: self._buffer(key, shape)) if training else (
            lambda key, shape: ops.empty(shape, self.dtype))
        sq = ops.binary("multiply", X, X, buf(f"nsq{k}", (rows, d)))
        s = be.gemm(sq, self._constant(1.0, (d, 1)), buf(f"ns{k}", (rows, 1)))
        r = ops.unary("inv_norm", s, buf(f"nr{k}", (rows, 1)))
        R = be.gemm(r, self._constant(1.0, (1, d)), buf(f"nR{k}", (rows, d)))
        Y = ops.binary("multiply", X, R, buf(f"nY{k}", (rows, d)))
        out = self._moved(Y.reshape(xm.shape), axis, f"nout{k}", training, back=True)
        return out, (X, s, r, R, xm.shape)

    def _normalized_backward(self, g, axis, k, state):
        """The gradient reaching x from ``g`` reaching its normalised version:
        dX = r dY + 2 f'(s) (dY . X) X, f(s) = min(s^-1/2, 1/eps)."""
        be, ops = self.backend, self.backend.ops
        X, s, r, R, shape = state
        rows, d = X.shape
        G = self._moved(g, axis, f"ng{k}", True).reshape(rows, d)
        t = ops.binary("multiply", G, X, self._buffer(f"nt{k}", (rows, d)))
        dot = be.gemm(t, self._constant(1.0, (d, 1)), self._buffer(f"ndot{k}", (rows, 1)))
        c = ops.unary_grad("inv_norm", s, r, dot, self._buffer(f"nc{k}", (rows, 1)))
        C = be.gemm(c, self._constant(1.0, (1, d)), self._buffer(f"nC{k}", (rows, d)), alpha=2.0)
        dX = ops.binary("multiply", G, R, self._buffer(f"ndX{k}", (rows, d)))
        ops.binary("multiply", C, X, t)
        ops.binary("add", dX, t, dX)
        return self._moved(dX.reshape(shape), axis, f"ndx{k}", True, back=True)

    def forward(self, xs, training=False, step=0):
        be, ops = self.backend, self.backend.ops
        x, y = xs
        if self.normalize:
            a1, a2 = self._axes_for([x.shape[1:], y.shape[1:]])
            raw = (x, y)
            x, sx = self._normalized(x, a1, 0, training)
            y, sy = self._normalized(y, a2, 1, training)
            if training:
                self._raw, self._norm_state = raw, (sx, sy)
        n = x.shape[0]
        out = self._out("y", (n,) + tuple(self.output_shape), training)
        if x.ndim == 2:          # rowwise dot: (x * y) @ ones(d, 1)
            prod = self._out("prod", x.shape, training)
            ops.binary("multiply", x, y, prod)
            be.gemm(prod, self._constant(1.0, (x.shape[1], 1)), out)
        else:
            a1, a2 = self._axes_for([x.shape[1:], y.shape[1:]])
            for b in range(n):
                be.gemm(x[b], y[b], out[b], trans_a=a1 == 1, trans_b=a2 == 2)
        if training:
            self._xs = [x, y]
        return out

    def backward(self, dy, need_dx=True):
        be, ops = self.backend, self.backend.ops
        x, y = self._xs
        dx = self._buffer("dx0", x.shape)
        dyy = self._buffer("dx1", y.shape)
        if x.ndim == 2:          # both get dy broadcast over the row, times the other
            g = self._buffer("g", x.shape)
            be.gemm(dy, self._constant(1.0, (1, x.shape[1])), g)
            ops.binary("multiply", g, y, dx)
            ops.binary("multiply", g, x, dyy)
        else:
            a1, a2 = self._axes_for([x.shape[1:], y.shape[1:]])
            ta, tb = a1 == 1, a2 == 2
            for b in range(x.shape[0]):
                if not ta:
                    be.gemm(dy[b], y[b], dx[b], trans_b=not tb)
                else:
                    be.gemm(y[b], dy[b], dx[b], trans_a=tb, trans_b=True)
                if not tb:
                    be.gemm(x[b], dy[b], dyy[b], trans_a=not ta)
                else:
                    be.gemm(dy[b], x[b], dyy[b], trans_a=True, trans_b=ta)
        if self.normalize:
            a1, a2 = self._axes_for([x.shape[1:], y.shape[1:]])
            sx, sy = self._norm_state
            dx = self._normalized_backward(dx, a1, 0, sx)
            dyy = self._normalized_backward(dyy, a2, 1, sy)
        return [dx, dyy]

    def get_config(self):
        return {**super().get_config(), "axes": self.axes, "normalize": self.normalize}


def MatMul():
    """``x @ y`` on symbolic tensors: a matrix product per sample (rank 3 only)."""
    return _MatMul(axes=(2, 1))


class _MatMul(Dot):
    _base_name = "matmul"

    def compute_output_shape(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        if any(len(s) != 2 for s in shapes):
            raise ValueError(f"{self.name}: x @ y multiplies the matrices of each sample "
                             f"(inputs of rank 3, (batch, m, k) @ (batch, k, n)), got "
                             f"{', '.join(str((None,) + s) for s in shapes)}; for a "
                             f"per-sample dot product of vectors use dl.layers.Dot(axes=1)")
        return super().compute_output_shape(shapes)
