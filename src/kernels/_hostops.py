"""Array operations the ``dl`` layer needs besides the kernels, on the host (NumPy).

The twin of ``kernels.cuda.devops`` (same names, same meaning): the numpy and cython
backends carry this module as ``backend.ops``.  Accumulators are lists of two Python
floats (IEEE doubles, the same arithmetic as a float64 array, at a fraction of the cost
per access: a training step adds to one), ``[sum, count]``.
"""
import numpy as np

on_device = False


def empty(shape, dtype):
    return np.empty(tuple(shape), np.dtype(dtype))


def zeros(shape, dtype):
    return np.zeros(tuple(shape), np.dtype(dtype))


def full(shape, value, dtype):
    return np.full(tuple(shape), value, np.dtype(dtype))


def to_device(x):
    return x


def to_host(x):
    return x


def fits_on_device(nbytes):
    return True


def pinned_empty(shape, dtype):
    return np.empty(tuple(shape), np.dtype(dtype))


def copy_from_host(dst, src):
    dst[...] = src


def take_rows(x, idx, out):
    return np.take(x, idx, axis=0, out=out)


def acc_new():
    return [0.0, 0.0]


def acc_reset(acc):
    acc[0] = acc[1] = 0.0


def acc_add(acc, value, weight, count):
    acc[0] += float(value) * weight
    acc[1] += float(count)


def acc_read(acc):
    return float(acc[0]), float(acc[1])


def penalty_add(acc, w, l1, l2):
    if l1:
        acc[0] += l1 * float(np.abs(w).sum())
    if l2:
        acc[0] += l2 * float(np.square(w).sum())


def penalty_grad(w, g, l1, l2):
    if l1:
        g += l1 * np.sign(w)
    if l2:
        g += (2.0 * l2) * w


def clip_value(g, v):
    np.clip(g, -v, v, out=g)


def sum_squares(g, acc):
    acc[0] += float(np.square(g).sum())


def scale_to_norm(g, acc, clipnorm):
    norm = float(np.sqrt(acc[0]))
    if norm > clipnorm:
        g *= clipnorm / norm


def all_finite(arrays):
    return all(np.isfinite(a).all() for a in arrays)


def multiply(x, m, out):
    return np.multiply(x, m, out=out)


def affine(x, a, b, out):
    """out = x * a + b (a, b numbers), e.g. label smoothing; out may be x."""
    np.multiply(x, out.dtype.type(a), out=out)
    out += out.dtype.type(b)
    return out


# ---------------------------------------------------------------- graph operations
# What dl's merge and shape layers compute (Add, Maximum, Concatenate, Permute,
# RepeatVector...): elementwise arithmetic of same-shaped arrays, the gradients of
# maximum/minimum, copying blocks of columns and permuting axes.  ``out`` is always
# given and returned; arrays are C-contiguous.

BINARY_OPS = ("add", "subtract", "multiply", "maximum", "minimum", "greater", "less",
              "greater_equal", "less_equal", "equal", "not_equal")
_BINARY = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply,
           "maximum": np.maximum, "minimum": np.minimum}
_COMPARE = {"greater": np.greater, "less": np.less, "greater_equal": np.greater_equal,
            "less_equal": np.less_equal, "equal": np.equal, "not_equal": np.not_equal}


def binary(op, a, b, out):
    """out = a <op> b elementwise, ``op`` one of :data:`BINARY_OPS` (same shapes; out
    may be a or b).  maximum and minimum propagate NaN; the comparisons give 1.0 where
    true, 0.0 elsewhere (NaN compares false, but not_equal)."""
    if op in _COMPARE:
        out[...] = _COMPARE[op](a, b)
        return out
    return _BINARY[op](a, b, out=out)


UNARY_OPS = ("log", "sqrt", "square", "abs", "inv_norm")
# inv_norm: Keras's L2-normalisation factor of a sum of squares s, min(1/sqrt(s), 1/eps)
# with eps = 1e-7 (keras.ops.normalize)
INV_NORM_EPS = 1e-7


def unary(op, x, out):
    """out = op(x) elementwise, ``op`` one of :data:`UNARY_OPS` (NumPy's values: log
    of a negative is NaN, of 0 -inf); ``inv_norm``: 1 / sqrt(x), at most 1 / 1e-7."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if op == "inv_norm":
            t = out.dtype.type
            big = t(1.0 / INV_NORM_EPS)
            out[...] = np.where(x > t(INV_NORM_EPS * INV_NORM_EPS),
                                t(1) / np.sqrt(np.maximum(x, t(INV_NORM_EPS ** 2))), big)
            return out
        return {"log": np.log, "sqrt": np.sqrt, "square": np.square,
                "abs": np.abs}[op](x, out=out)


def unary_grad(op, x, y, dy, out):
    """out = dy * op'(x) (y = op(x)): log dy / x, sqrt dy * 0.5 / y, square 2 x dy,
    abs sign(x) dy (0 at 0, as PyTorch), inv_norm -dy y^3 / 2 (0 where clipped)."""
    t = out.dtype.type
    with np.errstate(divide="ignore", invalid="ignore"):
        if op == "log":
            np.divide(dy, x, out=out)
        elif op == "sqrt":
            np.divide(dy * t(0.5), y, out=out)
        elif op == "square":
            np.multiply(dy, x * t(2), out=out)
        elif op == "inv_norm":          # d/ds s^-1/2 = -r^3 / 2, 0 where clipped
            np.multiply(dy, np.where(x > t(INV_NORM_EPS * INV_NORM_EPS),
                                     t(-0.5) * y * y * y, t(0)), out=out)
        else:
            np.multiply(dy, np.sign(x), out=out)
    return out


def select_grad(a, b, dy, da, db):
    """The gradients of ``maximum(a, b)``: ``da`` gets dy where a > b, ``db`` where
    a < b, each half of it where a == b (PyTorch's rule, which Keras's torch backend
    follows); NaN compares false, so its dy goes to b.  For ``minimum(a, b)`` call it
    with (b, a, dy, da, db): a then gets dy where b > a."""
    t = dy.dtype.type
    np.multiply(dy, np.where(a > b, t(1), np.where(a == b, t(0.5), t(0))), out=da)
    np.subtract(dy, da, out=db)
    return da, db


def place_cols(src, dst, offset):
    """dst[:, offset:offset + src.shape[1]] = src (2-D arrays, the same rows):
    Concatenate's forward, RepeatVector's."""
    dst[:, offset:offset + src.shape[1]] = src
    return dst


def take_cols(src, offset, dst):
    """dst = src[:, offset:offset + dst.shape[1]] (2-D arrays, the same rows):
    Concatenate's backward."""
    dst[...] = src[:, offset:offset + dst.shape[1]]
    return dst


def permute(x, axes, out):
    """out = x transposed by ``axes`` (a permutation of x's axes), C-contiguous."""
    out[...] = np.transpose(x, axes)
    return out


def to_labels(x, out):
    """out (int64) = x (floats holding whole numbers: class labels that travelled in a
    float array)."""
    out[...] = x
    return out
