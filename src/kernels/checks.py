"""Argument checks and error messages shared by every backend, and by ``dl``.

Each public kernel validates its arguments here, at the Python boundary, before any
compiled (``nogil``) code runs.  A bad argument raises ``TypeError`` (wrong type or
dtype) or ``ValueError`` (wrong shape, rank, size or value) whose message names the
argument, what was expected and what was received::

    learning_rate: expected a real number, got str 'x'

That wording is a contract: ``dl`` checks its own arguments with the scalar checks and
message helpers below (``real``, ``integer``, ``flag``, ``describe``, ``short_repr``,
``fits_in_memory``), so a user reads one style of message from both packages.  The
argument groups (``gemm_args``, ``adam_args``...) are what every backend runs, so all
backends accept and reject exactly the same calls.
"""
import math
import numbers
import os
from typing import NamedTuple

import numpy as np

__all__ = [
    # limits and dtypes
    "FLOAT_DTYPES", "MAX_BYTES", "MAX_STEP",
    # message helpers
    "describe", "short_repr",
    # single arguments
    "array", "choice", "fits_in_memory", "flag", "integer", "labels", "output", "real",
    "row_matrix", "same_memory", "same_shape",
    # the argument groups of the public kernels
    "adagrad_args", "adam_args", "backprop", "bias_args", "column_sums_args",
    "decay_factor", "dense_backward_args", "dense_forward_args", "embedding_backward_args",
    "embedding_forward_args", "embedding_ids", "gemm_args", "loss_args",
    "rmsprop_args", "sample_weights", "sgd_args", "sparse_args", "unary", "update_arrays",
    # convolution, pooling, batch normalisation
    "ConvGeometry", "argmax_input", "argmax_output", "avg_pool_backward_args",
    "batch_norm_backward_args", "batch_norm_forward_args", "batch_norm_inference_args",
    "conv_backward_args", "conv_forward_args", "global_pool_backward_args",
    "global_pool_forward_args", "max_pool_backward_args", "padding_amounts",
    "pool_forward_args", "window_geometry",
]

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_REJECTED_SUBCLASSES = (np.matrix, np.ma.MaskedArray)
# The largest step an optimizer takes (Keras counts iterations in an int64).
MAX_STEP = 2**63 - 1


def _physical_memory():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 1 << 46


# No array argument or result may need more bytes than this machine has: a lazily huge
# view (zero strides, e.g. np.broadcast_to) would otherwise be materialized or looped
# over by a kernel, failing with MemoryError after a long time or hanging.
MAX_BYTES = _physical_memory()


def short_repr(x, limit=80):
    """repr(x) for a message: shortened, and never failing (huge ints, broken reprs)."""
    if isinstance(x, int) and not isinstance(x, bool) and abs(x) >= 10**limit:
        return f"{'-' if x < 0 else ''}an integer of {len(format(abs(x), 'x')) * 4} bits"
    try:
        text = repr(x)
    except Exception:  # noqa: BLE001 -- a message must not fail
        return f"<{type(x).__name__}>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def describe(x):
    """What ``x`` is, for a message: its type, and its value when short to show."""
    if isinstance(x, np.ndarray):
        return f"an array of dtype {x.dtype} and shape {x.shape}"
    if isinstance(x, (str, bytes)):
        return f"{type(x).__name__} {short_repr(x)}"
    if isinstance(x, int) and not isinstance(x, bool) and abs(x) >= 10**80:
        return short_repr(x)             # "an integer of N bits"
    try:
        sized = hasattr(x, "__len__")
    except Exception:  # noqa: BLE001
        sized = False
    return f"a {type(x).__name__}" if sized else f"{type(x).__name__} {short_repr(x)}"


def _overrides_numpy(cls):
    """True for an ndarray subclass whose ufuncs or array functions compute something
    else than ndarray's (units, masks, lazy arrays): the NumPy reference would compute
    that, compiled backends reading the memory would not."""
    return (getattr(cls, "__array_ufunc__", None) is not np.ndarray.__array_ufunc__
            or getattr(cls, "__array_function__", None) is not np.ndarray.__array_function__)


def fits_in_memory(name, shape, itemsize, what="an array"):
    """Reject, without allocating anything, a shape of more bytes than this machine has."""
    nbytes = math.prod(shape) * itemsize
    if nbytes > MAX_BYTES:
        raise ValueError(f"{name}: expected {what} that fits in memory (at most {MAX_BYTES} "
                         f"bytes here), got shape {short_repr(tuple(shape))} of "
                         f"{short_repr(nbytes)} bytes")


def _plain_ndarray(name, x):
    """Reject ndarray subclasses whose operators mean something else (matrix power,
    masks, units): results would differ between the NumPy reference and compiled
    backends."""
    if type(x) is not np.ndarray and (isinstance(x, _REJECTED_SUBCLASSES)
                                      or _overrides_numpy(type(x))):
        raise TypeError(f"{name}: expected a plain numpy.ndarray, got {type(x).__name__} "
                        f"(convert it with np.asarray)")


def array(name, x, ndim=None, dtype=None, min_ndim=None, max_ndim=None):
    """Check that ``x`` is a non-empty float32/float64 ndarray of the given rank.

    ``ndim`` is an exact rank; ``min_ndim``/``max_ndim`` give a range instead.  ``dtype``
    (when given) is the dtype ``x`` must share with the arguments checked before it.
    Returns ``x`` unchanged.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray of float32 or float64, "
                        f"got {describe(x)}")
    _plain_ndarray(name, x)
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected dtype float32 or float64, got {x.dtype}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype} (the dtype of the other inputs), "
                        f"got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got {x.ndim}-D with shape {x.shape}")
    if min_ndim is not None and x.ndim < min_ndim:
        raise ValueError(f"{name}: expected at least {min_ndim} dimensions, got shape {x.shape}")
    if max_ndim is not None and x.ndim > max_ndim:
        raise ValueError(f"{name}: expected at most {max_ndim} dimensions, got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {x.shape}")
    fits_in_memory(name, x.shape, x.itemsize)
    return x


def same_shape(name, x, shape, other="the other inputs"):
    if x.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)} (that of {other}), got {x.shape}")


def output(name, out, shape, dtype, inputs=(), may_alias=()):
    """Validate an ``out=`` argument, or allocate it when ``out`` is None.

    ``inputs`` are arrays ``out`` must not overlap at all; ``may_alias`` are arrays ``out``
    may be exactly (same memory, same layout: an in-place elementwise update) but must
    not partially overlap.
    """
    shape = tuple(shape)
    if out is None:
        fits_in_memory(name, shape, np.dtype(dtype).itemsize, "a result")
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray or None, got {describe(out)}")
    if out.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {np.dtype(dtype)}, got {out.dtype}")
    if out.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {out.shape}")
    if not out.flags.writeable:
        raise ValueError(f"{name}: expected a writeable array, got a read-only one")
    for arg_name, x in inputs:
        if np.may_share_memory(out, x):
            raise ValueError(f"{name}: must not share memory with {arg_name}, "
                             f"which it would overwrite while still being read")
    for arg_name, x in may_alias:
        if np.may_share_memory(out, x) and not same_memory(out, x):
            raise ValueError(f"{name}: may be {arg_name} itself (in place) but must not "
                             f"partially overlap it")
    return out


def same_memory(a, b):
    """True when ``a`` and ``b`` are views of exactly the same elements in the same layout."""
    return (a.shape == b.shape and a.strides == b.strides
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])


def real(name, value, low=None, high=None, low_open=False, high_open=False):
    """Check a finite real scalar hyper-parameter within [low, high] (or open ends)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {describe(value)}")
    try:
        value = float(value)
    except OverflowError:       # an int or Fraction beyond the float range
        raise ValueError(f"{name}: expected a finite number, got {short_repr(value)}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        bound = f"> {low}" if low_open else f">= {low}"
        raise ValueError(f"{name}: expected a value {bound}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        bound = f"< {high}" if high_open else f"<= {high}"
        raise ValueError(f"{name}: expected a value {bound}, got {value}")
    return value


def relu_is_plain(negative_slope, max_value, threshold):
    """Whether relu's parameters are their defaults, as plain Python numbers (the
    compiled twins' fast path; anything else goes through relu_params)."""
    return (max_value is None and type(negative_slope) in (float, int)
            and type(threshold) in (float, int) and negative_slope == 0
            and threshold == 0)


def relu_params(negative_slope, max_value, threshold):
    """relu's (negative_slope, max_value, threshold): finite, >= 0 (as Keras's ReLU layer
    requires: its gradient is then a function of the output), max_value None or a number."""
    negative_slope = real("negative_slope", negative_slope, low=0.0)
    if max_value is not None:
        max_value = real("max_value", max_value, low=0.0)
    threshold = real("threshold", threshold, low=0.0)
    return negative_slope, max_value, threshold


def integer(name, value, low=None, high=None):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {describe(value)}")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {short_repr(value)}")
    if high is not None and value > high:
        raise ValueError(f"{name}: expected an integer <= {high}, got {short_repr(value)}")
    return value


def flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {describe(value)}")
    return bool(value)


def choice(name, value, allowed):
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, allowed))}, "
                         f"got {short_repr(value)}")
    return value


def labels(name, y, n_rows, n_classes):
    """Sparse class labels: shape (n,) or (n, 1), integer-valued, in [0, n_classes).

    Returns them as a 1-D C-contiguous ``intp`` array.  Float labels are accepted when
    they hold whole numbers (Keras casts them); NaN, fractions and out-of-range classes
    raise ``ValueError``.
    """
    if not isinstance(y, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray of integer class labels, "
                        f"got {describe(y)}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{name}: expected shape ({n_rows},) or ({n_rows}, 1), got {y.shape}")
    if y.shape[0] != n_rows:
        raise ValueError(f"{name}: expected {n_rows} labels (one per row of the predictions), "
                         f"got {y.shape[0]}")
    # contiguous, whatever the layout of y (a column view, reversed...): compiled
    # kernels read the labels as a C-contiguous buffer
    return _indices(name, y, n_classes, "class labels")


def _indices(name, v, high, what):
    """A 1-D integer array, or a float one holding whole numbers, each in [0, high),
    as a C-contiguous ``intp`` array (class labels, embedding ids); ``what`` names
    them in the errors.  Ranges are checked before any cast can wrap or overflow."""
    if v.dtype.kind == "u" and v.size and v.max() >= high:
        raise ValueError(f"{name}: expected {what} in [0, {high}), got {v[v >= high][0]}")
    if v.dtype.kind in "iu":
        out = v.astype(np.intp, copy=False)
    elif v.dtype.kind == "f":
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name}: expected finite {what}, got NaN or inf")
        if v.size and (v.min() < 0 or v.max() >= high):
            bad = v[(v < 0) | (v >= high)][0]
            raise ValueError(f"{name}: expected {what} in [0, {high}), got {bad}")
        out = v.astype(np.intp)
        if not np.array_equal(out, v):
            raise ValueError(f"{name}: expected whole-number {what}, got fractions")
    else:
        raise TypeError(f"{name}: expected an integer dtype, got {v.dtype}")
    if out.size and (out.min() < 0 or out.max() >= high):
        bad = out[(out < 0) | (out >= high)][0]
        raise ValueError(f"{name}: expected {what} in [0, {high}), got {bad}")
    return np.ascontiguousarray(out)


def row_matrix(name, x, dtype=None):
    """A 1-D or 2-D float array, viewed as 2-D (a 1-D array is a single column).

    Returns the 2-D view.
    """
    array(name, x, dtype=dtype, min_ndim=1, max_ndim=2)
    return x if x.ndim == 2 else x.reshape(-1, 1)


# ------------------------------------------------------------------------------
# Argument groups of the public kernels, shared by every backend so that they all
# accept and reject exactly the same calls.  The activation names come from the
# reference's table (imported at the end of this module: the reference imports this one).


def gemm_args(a, b, out, trans_a, trans_b, alpha, beta):
    """Returns (out, trans_a, trans_b, alpha, beta) with out allocated when None."""
    array("a", a, ndim=2)
    array("b", b, ndim=2, dtype=a.dtype)
    trans_a = flag("trans_a", trans_a)
    trans_b = flag("trans_b", trans_b)
    alpha = real("alpha", alpha)
    beta = real("beta", beta)
    m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
    kb, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if kb != k:
        raise ValueError(f"b: expected op(b) with {k} rows to match the columns of op(a) "
                         f"({m}, {k}), got op(b) of shape ({kb}, {n})")
    if beta != 0.0 and out is None:
        raise ValueError(f"out: expected an array to accumulate into since beta={beta} is "
                         f"nonzero, got None")
    out = output("out", out, (m, n), a.dtype, inputs=(("a", a), ("b", b)))
    return out, trans_a, trans_b, alpha, beta


def unary(x, out):
    """An elementwise kernel's (x, out): out allocated, or x itself, or disjoint."""
    array("x", x, min_ndim=1)
    return output("out", out, x.shape, x.dtype, may_alias=(("x", x),))


def backprop(dy, y, out, y_name="y"):
    array("dy", dy, min_ndim=1)
    array(y_name, y, dtype=dy.dtype)
    same_shape(y_name, y, dy.shape, "dy")
    return output("out", out, dy.shape, dy.dtype, may_alias=(("dy", dy), (y_name, y)))


def bias_args(x, b, out):
    array("x", x, ndim=2)
    array("b", b, ndim=1, dtype=x.dtype)
    same_shape("b", b, (x.shape[1],), "the columns of x")
    return output("out", out, x.shape, x.dtype, inputs=(("b", b),), may_alias=(("x", x),))


def column_sums_args(x, out):
    array("x", x, ndim=2)
    return output("out", out, (x.shape[1],), x.dtype, inputs=(("x", x),))


def _norm_param(name, v, x):
    if v is None:
        return None
    array(name, v, ndim=1, dtype=x.dtype)
    same_shape(name, v, (x.shape[-1],), "the last axis of x")
    return v


def layer_norm_forward_args(x, gamma, beta, out, epsilon):
    """Returns (out, epsilon): x of rank >= 1 normalised over its last axis; gamma and
    beta None or of shape (features,); out may be x (in place)."""
    array("x", x, min_ndim=1)
    _norm_param("gamma", gamma, x)
    _norm_param("beta", beta, x)
    epsilon = real("epsilon", epsilon, low=0.0, low_open=True)
    out = output("out", out, x.shape, x.dtype, inputs=tuple(
        (n, v) for n, v in (("gamma", gamma), ("beta", beta)) if v is not None),
        may_alias=(("x", x),))
    return out, epsilon


def layer_norm_backward_args(dy, x, gamma, dx, dgamma, dbeta, epsilon):
    """Returns (dx, dgamma, dbeta, epsilon); dx may be dy or x (in place)."""
    return _norm_backward_args(dy, x, gamma, dx, dgamma, dbeta, epsilon, 1, _norm_param)


def _norm_backward_args(dy, x, gamma, dx, dgamma, dbeta, epsilon, min_ndim, param):
    """A normalisation's backward (layer: rank >= 1; batch: rank >= 2): dy and x of
    one shape, gamma checked by ``param``, the three outputs."""
    array("dy", dy, min_ndim=min_ndim)
    array("x", x, dtype=dy.dtype)
    same_shape("x", x, dy.shape, "dy")
    param("gamma", gamma, x)
    epsilon = real("epsilon", epsilon, low=0.0, low_open=True)
    reads = (("dy", dy), ("x", x)) + ((("gamma", gamma),) if gamma is not None else ())
    d = (x.shape[-1],)
    dgamma = output("dgamma", dgamma, d, x.dtype, inputs=reads)
    dbeta = output("dbeta", dbeta, d, x.dtype, inputs=reads + (("dgamma", dgamma),))
    dx = output("dx", dx, x.shape, x.dtype,
                inputs=(("dgamma", dgamma), ("dbeta", dbeta)) + reads[2:],
                may_alias=(("dy", dy), ("x", x)))
    return dx, dgamma, dbeta, epsilon


def embedding_ids(name, ids, n_rows):
    """Embedding ids: an integer array, or a float array of whole numbers (Keras casts
    them), of any shape, each in [0, n_rows).  Returns them flattened as a C-contiguous
    ``intp`` array."""
    if not isinstance(ids, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray of integer row ids, got "
                        f"{describe(ids)}")
    _plain_ndarray(name, ids)
    if ids.size == 0:
        raise ValueError(f"{name}: expected at least one id, got shape {ids.shape}")
    # a lazy huge view (zero strides) must not be scanned or converted
    fits_in_memory(name, ids.shape, max(ids.itemsize, np.dtype(np.intp).itemsize))
    return _indices(name, ids.reshape(-1), n_rows, "ids")


def embedding_forward_args(ids, table, out):
    """Returns (flat intp ids, out): out of shape ids.shape + (output_dim,)."""
    array("table", table, ndim=2)
    flat = embedding_ids("ids", ids, table.shape[0])
    out = output("out", out, tuple(ids.shape) + (table.shape[1],), table.dtype,
                 inputs=(("table", table), ("ids", ids)))
    return flat, out


def embedding_backward_args(dy, ids, dtable):
    """Returns (flat intp ids, dtable): dy of shape ids.shape + (output_dim,), dtable
    (required: its rows are the table's) of shape (input_dim, output_dim)."""
    array("dy", dy, min_ndim=1)
    if not isinstance(dtable, np.ndarray):
        raise TypeError(f"dtable: expected a numpy.ndarray of shape (input_dim, "
                        f"output_dim) (the table's rows), got {describe(dtable)}")
    array("dtable", dtable, ndim=2, dtype=dy.dtype)
    flat = embedding_ids("ids", ids, dtable.shape[0])
    same_shape("dy", dy, tuple(ids.shape) + (dtable.shape[1],),
               "ids.shape + (output_dim,)")
    dtable = output("dtable", dtable, dtable.shape, dy.dtype,
                    inputs=(("dy", dy), ("ids", ids)))
    return flat, dtable


def dense_forward_args(x, w, b, out, activation, pre_activation):
    """Returns (out, pre_activation, activation)."""
    array("x", x, ndim=2)
    array("w", w, ndim=2, dtype=x.dtype)
    activation = choice("activation", activation, ACTIVATIONS)
    if w.shape[0] != x.shape[1]:
        raise ValueError(f"w: expected {x.shape[1]} rows (the columns of x), got shape {w.shape}")
    if b is not None:
        array("b", b, ndim=1, dtype=x.dtype)
        same_shape("b", b, (w.shape[1],), "the columns of w")
    shape = (x.shape[0], w.shape[1])
    inputs = (("x", x), ("w", w)) + ((("b", b),) if b is not None else ())
    out = output("out", out, shape, x.dtype, inputs=inputs)
    if pre_activation is not None:
        pre_activation = output("pre_activation", pre_activation, shape, x.dtype,
                                inputs=inputs + (("out", out),))
    return out, pre_activation, activation


def dense_backward_args(dy, x, w, y, activation, pre_activation, dx, dw, db, need_dx,
                        use_bias):
    """Returns (dx, dw, db, saved, activation); saved is y, or the pre-activation for
    activations in ACTIVATIONS_NEEDING_INPUT; dx/db None when not wanted."""
    array("dy", dy, ndim=2)
    array("x", x, ndim=2, dtype=dy.dtype)
    array("w", w, ndim=2, dtype=dy.dtype)
    activation = choice("activation", activation, ACTIVATIONS)
    need_dx = flag("need_dx", need_dx)
    use_bias = flag("use_bias", use_bias)
    n, units = dy.shape
    if w.shape[1] != units:
        raise ValueError(f"w: expected {units} columns (the columns of dy), got shape {w.shape}")
    same_shape("x", x, (n, w.shape[0]), "dy's rows by w's rows")
    return _layer_gradients(dy, x, w, y, activation, pre_activation, dx, dw, db, need_dx,
                            use_bias, units)


def _layer_gradients(dy, x, w, y, activation, pre_activation, dx, dw, db, need_dx,
                     use_bias, units):
    """What a dense or convolution backward shares once dy, x and w agree: the saved
    array its activation's derivative reads (y, or the pre-activation for activations
    in ACTIVATIONS_NEEDING_INPUT: of dy's shape), then the outputs dw, db (None without
    use_bias; ``units`` long) and dx (None without need_dx).  Returns (dx, dw, db,
    saved, activation)."""
    if activation in ACTIVATIONS_NEEDING_INPUT:
        if pre_activation is None:
            raise ValueError(f"pre_activation: expected the layer's pre-activation z of shape "
                             f"{dy.shape} (activation {activation!r} needs it), got None")
        saved, saved_name = pre_activation, "pre_activation"
    else:
        saved, saved_name = y, "y"
    array(saved_name, saved, ndim=dy.ndim, dtype=dy.dtype)
    same_shape(saved_name, saved, dy.shape, "dy")
    inputs = (("dy", dy), ("x", x), ("w", w), (saved_name, saved))
    dw = output("dw", dw, w.shape, dy.dtype, inputs=inputs)
    inputs += (("dw", dw),)
    if use_bias:
        db = output("db", db, (units,), dy.dtype, inputs=inputs)
        inputs += (("db", db),)
    else:
        db = None
    dx = output("dx", dx, x.shape, dy.dtype, inputs=inputs) if need_dx else None
    return dx, dw, db, saved, activation


# ---------------------------------------------------------- convolution, pooling

class ConvGeometry(NamedTuple):
    """The shapes of one 2-D window pass (a convolution or a pooling), NHWC.

    A 1-D pass is the same with ``h == kh == oh == 1``.  Output pixel ``(i, j)`` reads
    input rows ``i*sh - pt + a*dh`` (``a < kh``) and columns ``j*sw - pl + b*dw``
    (``b < kw``); indices outside the image are the padding.
    """
    n: int
    h: int
    w: int
    cin: int
    kh: int
    kw: int
    cout: int
    sh: int
    sw: int
    dh: int
    dw: int
    pt: int
    pb: int
    pl: int
    pr: int
    oh: int
    ow: int
    groups: int


def _window_int(name, value):
    """A positive window size, stride or dilation: no longer than the longest array
    axis this machine can hold (MAX_BYTES), so every index a compiled loop derives
    from it fits in 64 bits."""
    value = integer(name, value, low=1)
    if value > MAX_BYTES:
        raise ValueError(f"{name}: expected at most {MAX_BYTES} (no array axis is longer "
                         f"on this machine), got {short_repr(value)}")
    return value


def _int_tuple(name, value, rank):
    """A positive int, or a tuple/list of ``rank`` positive ints."""
    if isinstance(value, (tuple, list)):
        if len(value) != rank:
            raise ValueError(f"{name}: expected {rank} positive integers, got "
                             f"{short_repr(value)}")
        return tuple(_window_int(name, v) for v in value)
    return (_window_int(name, value),) * rank


def padding_amounts(size, k, s, d, padding):
    """``(before, after, out)`` along one axis for Keras's padding modes: ``valid``
    none; ``same`` out = ceil(size/s) with the odd pixel after (Keras's split);
    ``causal`` (1-D) ``d * (k - 1)`` before and none after (Keras's left padding, so
    no output reads a later step), out = ceil(size/s)."""
    eff = (k - 1) * d + 1
    if padding == "valid":
        return 0, 0, (size - eff) // s + 1 if size >= eff else 0
    out = (size + s - 1) // s
    if padding == "causal":
        return eff - 1, 0, out
    total = max(0, (out - 1) * s + eff - size)
    return total // 2, total - total // 2, out


def window_geometry(x, window, strides, padding, dilation_rate, rank, paddings,
                    cout=None, groups=1, what="kernel", name="x", out_name="out"):
    """The ConvGeometry of a pass of ``window`` (kh, kw) over ``x`` (NHWC, or NWC when
    ``rank`` is 1), checking strides, padding and dilation.  A window larger than the
    (unpadded) input with ``valid`` padding is a ValueError, as in Keras.  ``name`` is
    the argument of the input's shape (dx in a pooling's backward) and ``out_name``
    that of the output's (dy in a backward), which the errors name."""
    strides = _int_tuple("strides", strides, rank)
    dilation = _int_tuple("dilation_rate", dilation_rate, rank)
    padding = choice("padding", padding, paddings)
    if rank == 1:
        window, strides, dilation = (1,) + window, (1,) + strides, (1,) + dilation
        n, w, cin = x.shape
        h = 1
    else:
        n, h, w, cin = x.shape
    pt, pb, oh = padding_amounts(h, window[0], strides[0], dilation[0],
                                 "valid" if rank == 1 else padding)
    pl, pr, ow = padding_amounts(w, window[1], strides[1], dilation[1], padding)
    if oh <= 0 or ow <= 0:
        span = tuple((k - 1) * d + 1 for k, d in zip(window, dilation))[2 - rank:]
        raise ValueError(f"{name}: expected an input at least as large as the {what}'s "
                         f"span {span} (dilation included) with padding 'valid', got "
                         f"{x.shape[1:-1]}")
    # what the window pass reads, its zeros included (a large dilation or pool_size
    # with "same" or "causal" padding pads by as much)
    fits_in_memory("padding", (n, h + pt + pb, w + pl + pr, cin), x.itemsize,
                   "a padded input")
    fits_in_memory(out_name, (n, oh, ow, cout or cin), x.itemsize, "a result")
    return ConvGeometry(n, h, w, cin, window[0], window[1], cout or cin, strides[0],
                        strides[1], dilation[0], dilation[1], pt, pb, pl, pr, oh, ow, groups)


def _out_shape(g, rank, channels=None):
    c = g.cout if channels is None else channels
    return (g.n, g.ow, c) if rank == 1 else (g.n, g.oh, g.ow, c)


def _conv_weights(x, w, groups, rank, depthwise):
    """Check ``w`` against ``x``; returns (window, cout, groups)."""
    array("w", w, ndim=rank + 2, dtype=x.dtype)
    cin = x.shape[-1]
    window = tuple(w.shape[:rank])
    if depthwise:
        if w.shape[rank] != cin:
            raise ValueError(f"w: expected {cin} input channels (the last axis of x) on "
                             f"axis {rank}, got shape {w.shape}")
        return window, cin * w.shape[rank + 1], 1
    groups = integer("groups", groups, low=1)
    if cin % groups:
        raise ValueError(f"groups: expected a divisor of x's {cin} channels, got {groups}")
    if w.shape[rank] * groups != cin:
        raise ValueError(f"w: expected {cin // groups} input channels per group on axis "
                         f"{rank} ({cin} channels of x / groups={groups}), got shape {w.shape}")
    if w.shape[rank + 1] % groups:
        raise ValueError(f"w: expected a filter count divisible by groups={groups}, got "
                         f"shape {w.shape}")
    return window, w.shape[rank + 1], groups


def conv_forward_args(x, w, b, out, strides, padding, dilation_rate, groups, activation,
                      pre_activation, rank=2, depthwise=False):
    """Returns (geometry, out, pre_activation, activation) for conv2d_forward (x
    ``(n, h, w, cin)``, w ``(kh, kw, cin // groups, cout)``), conv1d_forward (rank 1:
    x ``(n, length, cin)``, w ``(k, cin // groups, cout)``) and
    depthwise_conv2d_forward (w ``(kh, kw, cin, depth_multiplier)``)."""
    array("x", x, ndim=rank + 2)
    window, cout, groups = _conv_weights(x, w, groups, rank, depthwise)
    activation = choice("activation", activation, ACTIVATIONS)
    g = window_geometry(x, window, strides, padding, dilation_rate, rank,
                        ("valid", "same", "causal") if rank == 1 else ("valid", "same"),
                        cout, groups)
    if b is not None:
        array("b", b, ndim=1, dtype=x.dtype)
        same_shape("b", b, (cout,), "the output channels")
    shape = _out_shape(g, rank)
    inputs = (("x", x), ("w", w)) + ((("b", b),) if b is not None else ())
    out = output("out", out, shape, x.dtype, inputs=inputs)
    if pre_activation is not None:
        pre_activation = output("pre_activation", pre_activation, shape, x.dtype,
                                inputs=inputs + (("out", out),))
    return g, out, pre_activation, activation


def conv_backward_args(dy, x, w, y, strides, padding, dilation_rate, groups, activation,
                       pre_activation, dx, dw, db, need_dx, use_bias, rank=2,
                       depthwise=False):
    """Returns (geometry, dx, dw, db, saved, activation), as dense_backward_args: saved
    is y, or the pre-activation for activations in ACTIVATIONS_NEEDING_INPUT."""
    array("x", x, ndim=rank + 2)
    array("dy", dy, ndim=rank + 2, dtype=x.dtype)
    window, cout, groups = _conv_weights(x, w, groups, rank, depthwise)
    activation = choice("activation", activation, ACTIVATIONS)
    need_dx = flag("need_dx", need_dx)
    use_bias = flag("use_bias", use_bias)
    g = window_geometry(x, window, strides, padding, dilation_rate, rank,
                        ("valid", "same", "causal") if rank == 1 else ("valid", "same"),
                        cout, groups, out_name="dy")
    shape = _out_shape(g, rank)
    same_shape("dy", dy, shape, "the output of x through w")
    return (g,) + _layer_gradients(dy, x, w, y, activation, pre_activation, dx, dw, db,
                                   need_dx, use_bias, cout)


def _pool_size(pool_size, strides, rank):
    window = _int_tuple("pool_size", pool_size, rank)
    return window, window if strides is None else strides


def pool_forward_args(x, out, pool_size, strides, padding, rank=2):
    """Returns (geometry, out) of max/avg pooling: x ``(n, h, w, c)``; strides None
    means pool_size (Keras)."""
    array("x", x, ndim=rank + 2)
    window, strides = _pool_size(pool_size, strides, rank)
    g = window_geometry(x, window, strides, padding, 1, rank, ("valid", "same"),
                        what="pool")
    out = output("out", out, _out_shape(g, rank), x.dtype, inputs=(("x", x),))
    return g, out


def argmax_output(name, argmax, shape, inputs):
    """The int32 array of a max pooling's chosen cells: allocated when None.  ``inputs``
    start with ("x", x): its channel planes (h * w cells) must be indexable in int32."""
    x = inputs[0][1]
    if x.shape[1] * x.shape[2] > 2**31 - 1:
        raise ValueError(f"x: expected at most 2**31 - 1 cells in a channel plane (max "
                         f"pooling's argmax is int32), got {x.shape[1]} x {x.shape[2]}")
    shape = tuple(shape)
    if argmax is None:
        return np.empty(shape, np.int32)
    if not isinstance(argmax, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray of int32 or None, got "
                        f"{describe(argmax)}")
    if argmax.dtype != np.int32:
        raise TypeError(f"{name}: expected dtype int32, got {argmax.dtype}")
    if argmax.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {argmax.shape}")
    if not argmax.flags.writeable:
        raise ValueError(f"{name}: expected a writeable array, got a read-only one")
    for arg_name, x in inputs:
        if np.may_share_memory(argmax, x):
            raise ValueError(f"{name}: must not share memory with {arg_name}")
    return argmax


def _dx_output(dx, shape, dtype, inputs, what):
    if not isinstance(dx, np.ndarray):
        raise TypeError(f"dx: expected a numpy.ndarray of shape {shape} ({what}), got "
                        f"{describe(dx)}")
    return output("dx", dx, shape, dtype, inputs=inputs)


def argmax_input(argmax, shape, cells, read_values=True):
    """A max pooling's argmax as the backward reads it: int32, of dy's shape, each in
    [0, cells) (the cells of one channel plane of x).

    ``read_values=False`` checks the type, dtype and shape only: for a view of device
    memory, which the host cannot read (the cuda backend's kernels then treat an index
    out of range themselves)."""
    if not isinstance(argmax, np.ndarray):
        raise TypeError(f"argmax: expected the int32 array max pooling's forward "
                        f"returned, got {describe(argmax)}")
    _plain_ndarray("argmax", argmax)
    if argmax.dtype != np.int32:
        raise TypeError(f"argmax: expected dtype int32, got {argmax.dtype}")
    same_shape("argmax", argmax, shape, "dy")
    if read_values and (argmax.min() < 0 or argmax.max() >= cells):
        bad = argmax[(argmax < 0) | (argmax >= cells)][0]
        raise ValueError(f"argmax: expected cell indices in [0, {cells}), got {bad}")
    return argmax


def max_pool_backward_args(dy, argmax, dx, pool_size, strides, padding, rank=2,
                           read_values=True):
    """Returns (geometry, dx): dx (required, x's shape) receives dy at argmax
    (range-checked unless ``read_values`` is False: see ``argmax_input``)."""
    array("dy", dy, ndim=rank + 2)
    if isinstance(dx, np.ndarray):
        array("dx", dx, ndim=rank + 2, dtype=dy.dtype)
    else:
        _dx_output(dx, "x's", dy.dtype, (), "the pooled input's shape")
    window, strides = _pool_size(pool_size, strides, rank)
    g = window_geometry(dx, window, strides, padding, 1, rank, ("valid", "same"),
                        what="pool", name="dx", out_name="dy")
    same_shape("dy", dy, _out_shape(g, rank), "the pooling of dx's shape")
    argmax_input(argmax, dy.shape, g.h * g.w, read_values=read_values)
    dx = output("dx", dx, dx.shape, dy.dtype, inputs=(("dy", dy), ("argmax", argmax)))
    return g, dx


def avg_pool_backward_args(dy, dx, pool_size, strides, padding, rank=2):
    """Returns (geometry, dx) for average pooling's backward."""
    array("dy", dy, ndim=rank + 2)
    if isinstance(dx, np.ndarray):
        array("dx", dx, ndim=rank + 2, dtype=dy.dtype)
    else:
        _dx_output(dx, "x's", dy.dtype, (), "the pooled input's shape")
    window, strides = _pool_size(pool_size, strides, rank)
    g = window_geometry(dx, window, strides, padding, 1, rank, ("valid", "same"),
                        what="pool", name="dx", out_name="dy")
    same_shape("dy", dy, _out_shape(g, rank), "the pooling of dx's shape")
    dx = output("dx", dx, dx.shape, dy.dtype, inputs=(("dy", dy),))
    return g, dx


def global_pool_forward_args(x, out):
    """x ``(n, h, w, c)``; returns out ``(n, c)``."""
    array("x", x, ndim=4)
    return output("out", out, (x.shape[0], x.shape[3]), x.dtype, inputs=(("x", x),))


def global_pool_backward_args(dy, dx, argmax=None, want_argmax=False, read_values=True):
    """dy ``(n, c)``; dx (required) ``(n, h, w, c)``; argmax (max pooling) ``(n, c)``,
    range-checked unless ``read_values`` is False (see ``argmax_input``)."""
    array("dy", dy, ndim=2)
    if not isinstance(dx, np.ndarray):
        _dx_output(dx, "(n, h, w, c)", dy.dtype, (), "the pooled input's shape")
    array("dx", dx, ndim=4, dtype=dy.dtype)
    if (dx.shape[0], dx.shape[3]) != dy.shape:
        raise ValueError(f"dy: expected shape {(dx.shape[0], dx.shape[3])} (dx's batch and "
                         f"channels), got {dy.shape}")
    inputs = (("dy", dy),)
    if want_argmax:
        argmax_input(argmax, dy.shape, dx.shape[1] * dx.shape[2], read_values=read_values)
        inputs += (("argmax", argmax),)
    return output("dx", dx, dx.shape, dy.dtype, inputs=inputs)


# --------------------------------------------------------- batch normalisation

def _channel_param(name, v, x, required=False):
    if v is None:
        if required:
            raise TypeError(f"{name}: expected a numpy.ndarray of shape ({x.shape[-1]},), "
                            f"got None")
        return None
    array(name, v, ndim=1, dtype=x.dtype)
    same_shape(name, v, (x.shape[-1],), "the channels (last axis) of x")
    return v


def batch_norm_forward_args(x, gamma, beta, moving_mean, moving_variance, out, momentum,
                            epsilon):
    """Training forward: returns (out, momentum, epsilon); the moving statistics are
    both given (updated in place) or both None; out may be x."""
    array("x", x, min_ndim=2)
    _channel_param("gamma", gamma, x)
    _channel_param("beta", beta, x)
    _channel_param("moving_mean", moving_mean, x)
    _channel_param("moving_variance", moving_variance, x)
    if (moving_mean is None) != (moving_variance is None):
        raise ValueError("moving_variance: expected both moving statistics or neither, "
                         f"got moving_mean {describe(moving_mean)} and moving_variance "
                         f"{describe(moving_variance)}")
    momentum = real("momentum", momentum, low=0.0, high=1.0)
    epsilon = real("epsilon", epsilon, low=0.0, low_open=True)
    params = tuple((n, v) for n, v in (("gamma", gamma), ("beta", beta)) if v is not None)
    moving = tuple((n, v) for n, v in (("moving_mean", moving_mean),
                                       ("moving_variance", moving_variance)) if v is not None)
    for i, (name, v) in enumerate(moving):
        if not v.flags.writeable:
            raise ValueError(f"{name}: expected a writeable array (updated in place), got "
                             f"a read-only one")
        for other, u in (("x", x),) + params + moving[:i]:
            if np.may_share_memory(v, u):
                raise ValueError(f"{name}: must not share memory with {other}")
    out = output("out", out, x.shape, x.dtype, inputs=params + moving, may_alias=(("x", x),))
    return out, momentum, epsilon


def batch_norm_inference_args(x, gamma, beta, moving_mean, moving_variance, out, epsilon):
    """Inference forward: returns (out, epsilon); out may be x."""
    array("x", x, min_ndim=2)
    _channel_param("gamma", gamma, x)
    _channel_param("beta", beta, x)
    _channel_param("moving_mean", moving_mean, x, required=True)
    _channel_param("moving_variance", moving_variance, x, required=True)
    epsilon = real("epsilon", epsilon, low=0.0, low_open=True)
    params = tuple((n, v) for n, v in (("gamma", gamma), ("beta", beta),
                                       ("moving_mean", moving_mean),
                                       ("moving_variance", moving_variance)) if v is not None)
    out = output("out", out, x.shape, x.dtype, inputs=params, may_alias=(("x", x),))
    return out, epsilon


def batch_norm_backward_args(dy, x, gamma, dx, dgamma, dbeta, epsilon):
    """Returns (dx, dgamma, dbeta, epsilon); dx may be dy or x."""
    return _norm_backward_args(dy, x, gamma, dx, dgamma, dbeta, epsilon, 2, _channel_param)


def loss_args(y_true, y_pred, out=None, ndim=None, want_out=False, pred_name="y_pred"):
    """y_true and y_pred of one shape, (n,) or (n, d) (exactly ``ndim``-D if given);
    returns the validated/allocated out when ``want_out``.

    ``out`` may be y_pred itself.  It may be y_true only for elementwise losses
    (``ndim`` None): a row-wise (cross-entropy) gradient reads a row's targets again
    after writing the row.
    """
    array(pred_name, y_pred, min_ndim=1, max_ndim=2, ndim=ndim)
    array("y_true", y_true, dtype=y_pred.dtype)
    same_shape("y_true", y_true, y_pred.shape, pred_name)
    if want_out:
        if ndim is None:
            return output("out", out, y_pred.shape, y_pred.dtype,
                          may_alias=((pred_name, y_pred), ("y_true", y_true)))
        return output("out", out, y_pred.shape, y_pred.dtype, inputs=(("y_true", y_true),),
                      may_alias=((pred_name, y_pred),))
    return None


def sparse_args(y_true, y_pred, out=None, pred_name="y_pred", want_out=False):
    """Returns (labels as 1-D intp, out or None)."""
    array(pred_name, y_pred, ndim=2)
    lab = labels("y_true", y_true, y_pred.shape[0], y_pred.shape[1])
    if want_out:
        out = output("out", out, y_pred.shape, y_pred.dtype, may_alias=((pred_name, y_pred),))
    return lab, out


def sample_weights(sample_weight, y_pred, out=None, pred_name="y_pred"):
    """A loss kernel's ``sample_weight``: None, or one weight per row of ``y_pred``, a
    1-D array of its dtype sharing no memory with ``out`` (written while the weights
    are read)."""
    if sample_weight is None:
        return None
    array("sample_weight", sample_weight, ndim=1, dtype=y_pred.dtype)
    if sample_weight.shape[0] != y_pred.shape[0]:
        raise ValueError(f"sample_weight: expected {y_pred.shape[0]} weights (one per row "
                         f"of {pred_name}), got shape {sample_weight.shape}")
    if out is not None and np.may_share_memory(out, sample_weight):
        raise ValueError("out: must not share memory with sample_weight")
    return sample_weight


def update_arrays(w, g, states):
    """An optimizer's arrays: w and named state arrays updated in place, g read."""
    array("w", w, min_ndim=1)
    array("g", g, dtype=w.dtype)
    same_shape("g", g, w.shape, "w")
    written = [("w", w)] + list(states)
    for name, s in written:
        if name != "w":
            array(name, s, dtype=w.dtype)
            same_shape(name, s, w.shape, "w")
        if not s.flags.writeable:
            raise ValueError(f"{name}: expected a writeable array (updated in place), "
                             f"got a read-only one")
    for i, (name, s) in enumerate(written):
        for other, t in written[i + 1:] + [("g", g)]:
            if np.may_share_memory(s, t):
                raise ValueError(f"{name}: must not share memory with {other}")


def decay_factor(dtype, learning_rate, weight_decay):
    """The decoupled weight decay's factor ``weight_decay * learning_rate`` rounded to
    ``dtype``, and whether the decay applies (the factor is not 0 there): the rule of
    every backend (an infinite weight would otherwise become inf * 0 = NaN)."""
    with np.errstate(over="ignore"):      # a product beyond the dtype's range: inf
        factor = np.dtype(dtype).type(weight_decay * learning_rate)
    return factor, bool(factor != 0)


def sgd_args(w, g, m, learning_rate, momentum, nesterov, weight_decay):
    learning_rate = real("learning_rate", learning_rate, low=0.0)
    momentum = real("momentum", momentum, low=0.0, high=1.0)
    nesterov = flag("nesterov", nesterov)
    weight_decay = real("weight_decay", weight_decay, low=0.0)
    if momentum != 0.0 and m is None:
        raise ValueError(f"m: expected the momentum buffer (momentum={momentum}), got None")
    update_arrays(w, g, [("m", m)] if m is not None else [])
    return learning_rate, momentum, nesterov, weight_decay


def adam_args(w, g, m, v, step, learning_rate, beta_1, beta_2, epsilon, amsgrad, v_hat,
              weight_decay):
    learning_rate = real("learning_rate", learning_rate, low=0.0)
    beta_1 = real("beta_1", beta_1, low=0.0, high=1.0, high_open=True)
    beta_2 = real("beta_2", beta_2, low=0.0, high=1.0, high_open=True)
    epsilon = real("epsilon", epsilon, low=0.0)
    amsgrad = flag("amsgrad", amsgrad)
    weight_decay = real("weight_decay", weight_decay, low=0.0)
    step = integer("step", step, low=1, high=MAX_STEP)
    if amsgrad and v_hat is None:
        raise ValueError("v_hat: expected the AMSGrad maximum buffer (amsgrad=True), got None")
    update_arrays(w, g, [("m", m), ("v", v)] + ([("v_hat", v_hat)] if amsgrad else []))
    return (adam_step_size(learning_rate, beta_1, beta_2, step), learning_rate, beta_1,
            beta_2, epsilon, amsgrad, weight_decay)


def rmsprop_args(w, g, v, learning_rate, rho, momentum, epsilon, centered, mom, mg,
                 weight_decay):
    learning_rate = real("learning_rate", learning_rate, low=0.0)
    rho = real("rho", rho, low=0.0, high=1.0)
    momentum = real("momentum", momentum, low=0.0, high=1.0)
    epsilon = real("epsilon", epsilon, low=0.0)
    centered = flag("centered", centered)
    weight_decay = real("weight_decay", weight_decay, low=0.0)
    if momentum != 0.0 and mom is None:
        raise ValueError(f"mom: expected the momentum buffer (momentum={momentum}), got None")
    if centered and mg is None:
        raise ValueError("mg: expected the mean-gradient buffer (centered=True), got None")
    states = [("v", v)] + ([("mom", mom)] if momentum != 0.0 else []) \
        + ([("mg", mg)] if centered else [])
    update_arrays(w, g, states)
    return learning_rate, rho, momentum, epsilon, centered, weight_decay


def adagrad_args(w, g, acc, learning_rate, epsilon, weight_decay):
    learning_rate = real("learning_rate", learning_rate, low=0.0)
    epsilon = real("epsilon", epsilon, low=0.0)
    weight_decay = real("weight_decay", weight_decay, low=0.0)
    update_arrays(w, g, [("acc", acc)])
    return learning_rate, epsilon, weight_decay


# The tables these checks read are defined once, in the reference (which imports this
# module at its top, after defining them: either import order works).
from .reference import (ACTIVATIONS, ACTIVATIONS_NEEDING_INPUT,  # noqa: E402
                        adam_step_size)
