"""Array operations the ``dl`` layer needs besides the kernels, on the device.

``kernels._hostops`` is the NumPy twin of this module: both expose the same names, and
a backend object carries one of them as ``backend.ops``.  ``dl`` allocates, moves and
accumulates through ``backend.ops`` only, so a model on the cuda backend keeps its
weights, gradients, optimizer state, batches, loss and metric sums on the device and
reads them back once per epoch (``acc_read``).

Accumulators are float64 arrays of two slots, ``[sum, count]``.
"""
import math
import threading

import numpy as np

from . import _arrays, _nb
from ._compile import REDUCE_BLOCKS, THREADS, kernels, launch, launch_1d, register
from ._nb import cuda

on_device = True


class _Reads:
    """Device-to-host reads made through this module (each one synchronises)."""

    def __init__(self):
        self.count = 0


reads = _Reads()

_METRIC_KINDS = {"sparse_categorical_accuracy": 0, "categorical_accuracy": 1,
                 "binary_accuracy": 2, "mean_squared_error": 3, "mean_absolute_error": 4}


# ------------------------------------------------------------------- kernels

@_nb.jit(device=True)
def _block_sum(value):
    """The float64 sum of ``value`` over the block's THREADS threads, by a tree in a
    fixed order; thread 0 gets the total (the others a partial value)."""
    cache = cuda.shared.array(THREADS, _nb.types.float64)
    t = cuda.threadIdx.x
    cache[t] = value
    cuda.syncthreads()
    s = THREADS // 2
    while s > 0:
        if t < s:
            cache[t] += cache[t + s]
        cuda.syncthreads()
        s //= 2
    return cache[0]


@register("take_rows", "C2 L1 C2")
def _take_rows(dtype):
    def take_rows(x, idx, out):
        cols = x.shape[1]
        for i in range(cuda.grid(1), out.shape[0] * cols, cuda.gridsize(1)):
            r = i // cols
            c = i - r * cols
            out[r, c] = x[idx[r], c]
    return take_rows


@register("take_labels", "L1 L1 L1")
def _take_labels(dtype):
    def take_labels(y, idx, out):
        for i in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
            out[i] = y[idx[i]]
    return take_labels


@register("acc_add", "D1 A0 F F")
def _acc_add(dtype):
    def acc_add(acc, value, weight, count):
        if cuda.grid(1) == 0:
            acc[0] += value[()] * weight
            acc[1] += count
    return acc_add


@register("acc_add_value", "D1 F F F")
def _acc_add_value(dtype):
    def acc_add_value(acc, value, weight, count):
        if cuda.grid(1) == 0:
            acc[0] += value * weight
            acc[1] += count
    return acc_add_value


@register("acc_zero", "D1")
def _acc_zero(dtype):
    def acc_zero(acc):
        if cuda.grid(1) == 0:
            acc[0] = 0.0
            acc[1] = 0.0
    return acc_zero


@register("affine", "C1 F F C1")
def _affine(dtype):
    T = np.dtype(dtype).type

    def affine(x, a, b, out):
        for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            out[i] = x[i] * T(a) + T(b)
    return affine


@register("multiply", "C1 C1 C1")
def _multiply(dtype):
    def multiply(x, m, out):
        for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            out[i] = x[i] * m[i]
    return multiply


@register("metric_rows", "C2 C2 L1 D1 I F B")
def _metric_rows(dtype):
    """Per-row metric values summed in a fixed order by one block, into acc."""
    def metric_rows(y_true, y_pred, labels, acc, kind, threshold, sparse):
        t = cuda.threadIdx.x
        n, k = y_pred.shape[0], y_pred.shape[1]
        total = 0.0
        for r in range(t, n, THREADS):
            v = 0.0
            if kind <= 1:                          # argmax agreement
                best = 0
                for j in range(1, k):
                    if y_pred[r, j] > y_pred[r, best]:
                        best = j
                if sparse:
                    want = labels[r]
                else:
                    want = 0
                    for j in range(1, k):
                        if y_true[r, j] > y_true[r, want]:
                            want = j
                v = 1.0 if best == want else 0.0
            elif kind == 2:                         # binary accuracy, mean over columns
                for j in range(k):
                    p = 1.0 if y_pred[r, j] > threshold else 0.0
                    v += 1.0 if p == y_true[r, j] else 0.0
                v /= k
            else:                                   # mse / mae, mean over columns
                for j in range(k):
                    d = y_pred[r, j] - y_true[r, j]
                    v += d * d if kind == 3 else abs(d)
                v /= k
            total += v
        total = _block_sum(total)
        if t == 0:
            acc[0] += total
            acc[1] += n
    return metric_rows


@register("penalty_partials", "C1 D1 F F")
def _penalty_partials(dtype):
    """partials[b] = sum over block b's grid-stride share of l1 |w| + l2 w^2."""
    def penalty_partials(w, partials, l1, l2):
        t = cuda.threadIdx.x
        total = 0.0
        for i in range(cuda.grid(1), w.shape[0], cuda.gridsize(1)):
            v = w[i]
            total += l1 * abs(v) + l2 * v * v
        total = _block_sum(total)
        if t == 0:
            partials[cuda.blockIdx.x] = total
    return penalty_partials


@register("sum_partials", "D1 D1 I")
def _sum_partials(dtype):
    """acc[0] += sum(partials[:count]) in order, by one thread (count is small)."""
    def sum_partials(partials, acc, count):
        if cuda.grid(1) == 0:
            total = 0.0
            for i in range(count):
                total += partials[i]
            acc[0] += total
    return sum_partials


@register("penalty_grad", "C1 C1 F F")
def _penalty_grad(dtype):
    T = np.dtype(dtype).type
    zero, one, two = T(0), T(1), T(2)

    def penalty_grad(w, g, l1, l2):
        for i in range(cuda.grid(1), w.shape[0], cuda.gridsize(1)):
            v = w[i]
            sign = one if v > zero else (-one if v < zero else zero)
            g[i] += l1 * sign + two * l2 * v
    return penalty_grad


@register("clip_value", "C1 F")
def _clip_value(dtype):
    def clip_value(g, v):
        for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
            g[i] = min(max(g[i], -v), v)
    return clip_value


@register("scale_to_norm", "C1 D1 F")
def _scale_to_norm(dtype):
    T = np.dtype(dtype).type

    def scale_to_norm(g, acc, clipnorm):
        norm = math.sqrt(acc[0])
        if norm > clipnorm:
            scale = T(clipnorm / norm)
            for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
                g[i] *= scale
    return scale_to_norm


@register("finite_flag", "C1 D1")
def _finite_flag(dtype):
    def finite_flag(x, flag):
        for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            if not math.isfinite(x[i]):
                flag[0] = 1.0
    return finite_flag


# Graph operations (dl's merge and shape layers); the op codes follow BINARY_OPS.
BINARY_OPS = ("add", "subtract", "multiply", "maximum", "minimum", "greater", "less",
              "greater_equal", "less_equal", "equal", "not_equal")
UNARY_OPS = ("log", "sqrt", "square", "abs", "inv_norm")
INV_NORM_EPS = 1e-7


@register("binary", "C1 C1 C1 I")
def _binary(dtype):
    T = np.dtype(dtype).type
    one, zero = T(1), T(0)

    def binary(a, b, out, op):
        for i in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
            x = a[i]
            y = b[i]
            if op == 0:
                r = x + y
            elif op == 1:
                r = x - y
            elif op == 2:
                r = x * y
            elif op == 3:
                r = x if (x > y or x != x) else y      # NaN propagates, as np.maximum
            elif op == 4:
                r = x if (x < y or x != x) else y
            elif op == 5:
                r = one if x > y else zero
            elif op == 6:
                r = one if x < y else zero
            elif op == 7:
                r = one if x >= y else zero
            elif op == 8:
                r = one if x <= y else zero
            elif op == 9:
                r = one if x == y else zero
            else:
                r = one if x != y else zero
            out[i] = r
    return binary


@register("unary", "C1 C1 I")
def _unary(dtype):
    T = np.dtype(dtype).type
    nan, ninf = T(math.nan), T(-math.inf)
    one, tiny, big = T(1), T(INV_NORM_EPS * INV_NORM_EPS), T(1.0 / INV_NORM_EPS)

    def unary(x, out, op):
        for i in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
            v = x[i]
            if op == 0:
                r = math.log(v) if v > 0 else (ninf if v == 0 else nan)
            elif op == 1:
                r = math.sqrt(v) if v >= 0 else nan
            elif op == 2:
                r = v * v
            elif op == 3:
                r = abs(v)
            else:
                r = one / math.sqrt(v) if v > tiny else big
            out[i] = r
    return unary


@register("unary_grad", "C1 C1 C1 C1 I")
def _unary_grad(dtype):
    T = np.dtype(dtype).type
    zero, half, two, one = T(0), T(0.5), T(2), T(1)
    tiny = T(INV_NORM_EPS * INV_NORM_EPS)

    def unary_grad(x, y, dy, out, op):
        for i in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
            v = x[i]
            g = dy[i]
            if op == 0:
                r = g / v
            elif op == 1:
                r = g * half / y[i]
            elif op == 2:
                r = g * (v * two)
            elif op == 3:
                r = g * (one if v > zero else (-one if v < zero else zero))
            else:
                w = y[i]
                r = g * (-half * w * w * w) if v > tiny else zero
            out[i] = r
    return unary_grad


@register("select_grad", "C1 C1 C1 C1 C1")
def _select_grad(dtype):
    T = np.dtype(dtype).type

    def select_grad(a, b, dy, da, db):
        for i in range(cuda.grid(1), dy.shape[0], cuda.gridsize(1)):
            g = dy[i]
            if a[i] > b[i]:
                s = g
            elif a[i] == b[i]:
                s = g * T(0.5)
            else:
                s = T(0)
            da[i] = s
            db[i] = g - s
    return select_grad


@register("place_cols", "C2 C2 I")
def _place_cols(dtype):
    def place_cols(src, dst, offset):
        cols = src.shape[1]
        for i in range(cuda.grid(1), src.shape[0] * cols, cuda.gridsize(1)):
            r = i // cols
            c = i - r * cols
            dst[r, offset + c] = src[r, c]
    return place_cols


@register("take_cols", "C2 I C2")
def _take_cols(dtype):
    def take_cols(src, offset, dst):
        cols = dst.shape[1]
        for i in range(cuda.grid(1), dst.shape[0] * cols, cuda.gridsize(1)):
            r = i // cols
            c = i - r * cols
            dst[r, c] = src[r, offset + c]
    return take_cols


@register("permute", "C1 C1 L1 L1")
def _permute(dtype):
    def permute(x, out, out_shape, src_strides):
        rank = out_shape.shape[0]
        for i in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
            rest = i
            src = 0
            for k in range(rank - 1, -1, -1):
                d = out_shape[k]
                q = rest // d
                src += (rest - q * d) * src_strides[k]
                rest = q
            out[i] = x[src]
    return permute


@register("to_labels", "C1 L1")
def _to_labels(dtype):
    def to_labels(x, out):
        for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            out[i] = int(x[i])
    return to_labels


# ------------------------------------------------------------------- operations

def _flat(d):
    return d.reshape(-1) if d.ndim != 1 else d


def empty(shape, dtype):
    return _nb.device_array(tuple(shape), np.dtype(dtype))


def zeros(shape, dtype):
    return full(shape, 0.0, dtype)


def full(shape, value, dtype):
    return _nb.to_device(np.full(tuple(shape), value, np.dtype(dtype)))


def to_device(x):
    """``_arrays.to_device``, integer arrays (labels) made int64 first: what the
    sparse losses and the metrics read on the device."""
    if isinstance(x, np.ndarray) and x.dtype.kind in "iub":
        x = x.astype(np.int64)
    return _arrays.to_device(x)


def to_host(x):
    """``_arrays.to_host``, counted in ``reads``."""
    if not isinstance(x, np.ndarray):
        reads.count += 1
    return _arrays.to_host(x)


# Datasets larger than this many bytes stay on the host and stream through pinned
# buffers, batch by batch; None: what the device has free, less a margin for the
# model (tests lower it to exercise streaming).
DEVICE_DATA_LIMIT = None


def fits_on_device(nbytes):
    """Whether a dataset of ``nbytes`` should be copied to the device whole."""
    limit = DEVICE_DATA_LIMIT
    if limit is None:
        free = _nb.free_device_memory()
        if free is None:
            return True
        limit = free // 2
    return nbytes <= limit


def pinned_empty(shape, dtype):
    return _nb.pinned_empty(tuple(shape), np.dtype(dtype))


def copy_from_host(dst, src):
    """dst (device) = src (host), same shape."""
    dst.copy_to_device(np.ascontiguousarray(src, dtype=dst.dtype))


def take_rows(x, idx, out):
    """out[i] = x[idx[i]] for the rows of a device dataset; ``idx`` int64 on the device."""
    if x.dtype.kind in "iu":
        launch_1d(kernels(np.float32).take_labels, out.shape[0], _flat(x), idx, _flat(out))
        return out
    x2 = x.reshape(x.shape[0], -1) if x.ndim != 2 else x
    o2 = out.reshape(out.shape[0], -1) if out.ndim != 2 else out
    launch_1d(kernels(x.dtype).take_rows, o2.size, x2, idx, o2)
    return out


def acc_new():
    return _nb.to_device(np.zeros(2, np.float64))


def acc_reset(acc):
    """acc = [0, 0], on the device (no transfer)."""
    launch(kernels(np.float64).acc_zero, 1, 1, acc)


def acc_add(acc, value, weight, count):
    """acc[0] += value * weight; acc[1] += count (value: a 0-d device scalar: a loss,
    or a host number)."""
    if _nb.is_device_array(value):
        launch(kernels(value.dtype).acc_add, 1, 1, acc, value, weight, count)
    else:
        launch(kernels(np.float64).acc_add_value, 1, 1, acc, float(value), weight, count)


def acc_read(acc):
    reads.count += 1
    s, c = acc.copy_to_host()
    return float(s), float(c)


def metric_update(kind, y_true, y_pred, acc, threshold=0.5):
    """Add the per-row values of a built-in metric over a batch to ``acc``."""
    y2 = y_pred.reshape(y_pred.shape[0], -1) if y_pred.ndim != 2 else y_pred
    sparse = y_true.dtype.kind in "iu"
    K = kernels(y2.dtype)
    if sparse:
        labels = _flat(y_true)
        dense = y2                           # unused by the kernel on this path
    else:
        labels = _int_dummy()
        dense = y_true.reshape(y2.shape) if y_true.shape != y2.shape else y_true
    launch(K.metric_rows, 1, THREADS, dense, y2, labels, acc, _METRIC_KINDS[kind],
           threshold, sparse)


_scratch = threading.local()     # per Python thread: threads share no device scratch


def _int_dummy():
    """A one-element int64 array standing for labels a kernel does not read."""
    d = getattr(_scratch, "labels", None)
    if d is None:
        d = _scratch.labels = _nb.to_device(np.zeros(1, np.int64))
    return d


def _partials():
    """This thread's partial sums of penalty_add (reused: no allocation per step)."""
    d = getattr(_scratch, "partials", None)
    if d is None:
        d = _scratch.partials = _nb.device_array((REDUCE_BLOCKS,), np.float64)
    return d


def penalty_add(acc, w, l1, l2):
    """acc[0] += l1 * sum|w| + l2 * sum w^2 (deterministic: fixed blocks, fixed order)."""
    wf = _flat(w)
    K = kernels(w.dtype)
    blocks = min(REDUCE_BLOCKS, max(1, -(-wf.shape[0] // THREADS)))
    parts = _partials()
    launch(K.penalty_partials, blocks, THREADS, wf, parts, l1, l2)
    launch(K.sum_partials, 1, 1, parts, acc, blocks)


def penalty_grad(w, g, l1, l2):
    launch_1d(kernels(w.dtype).penalty_grad, w.size, _flat(w), _flat(g), l1, l2)


def clip_value(g, v):
    launch_1d(kernels(g.dtype).clip_value, g.size, _flat(g), v)


def sum_squares(g, acc):
    penalty_add(acc, g, 0.0, 1.0)


def scale_to_norm(g, acc, clipnorm):
    launch_1d(kernels(g.dtype).scale_to_norm, g.size, _flat(g), acc, clipnorm)


def all_finite(arrays):
    """Whether every element of every array is finite (one sync)."""
    flag = _nb.to_device(np.zeros(1, np.float64))
    for a in arrays:
        launch_1d(kernels(a.dtype).finite_flag, a.size, _flat(a), flag)
    reads.count += 1
    return flag.copy_to_host()[0] == 0.0


def multiply(x, m, out):
    launch_1d(kernels(x.dtype).multiply, x.size, _flat(x), _flat(m), _flat(out))
    return out


def affine(x, a, b, out):
    """out = x * a + b (a, b numbers, rounded to the dtype first, as the host's)."""
    launch_1d(kernels(x.dtype).affine, x.size, _flat(x), float(a), float(b), _flat(out))
    return out


def binary(op, a, b, out):
    """out = a <op> b elementwise, ``op`` one of :data:`BINARY_OPS`."""
    launch_1d(kernels(out.dtype).binary, out.size, _flat(a), _flat(b), _flat(out),
              BINARY_OPS.index(op))
    return out


def select_grad(a, b, dy, da, db):
    """The gradients of ``maximum(a, b)`` (see ``kernels._hostops.select_grad``)."""
    launch_1d(kernels(dy.dtype).select_grad, dy.size, _flat(a), _flat(b), _flat(dy),
              _flat(da), _flat(db))
    return da, db


def place_cols(src, dst, offset):
    """dst[:, offset:offset + src.shape[1]] = src (2-D device arrays)."""
    launch_1d(kernels(dst.dtype).place_cols, src.size, src, dst, int(offset))
    return dst


def take_cols(src, offset, dst):
    """dst = src[:, offset:offset + dst.shape[1]] (2-D device arrays)."""
    launch_1d(kernels(dst.dtype).take_cols, dst.size, src, int(offset), dst)
    return dst


def permute(x, axes, out):
    """out = x transposed by ``axes``, C-contiguous (device arrays)."""
    strides = [int(np.prod(x.shape[k + 1:], dtype=np.int64)) for k in range(x.ndim)]
    shape = np.array(out.shape, np.int64)
    src = np.array([strides[a] for a in axes], np.int64)
    launch_1d(kernels(out.dtype).permute, out.size, _flat(x), _flat(out),
              _nb.to_device(shape), _nb.to_device(src))
    return out


def to_labels(x, out):
    """out (int64 device array) = x (floats holding whole numbers)."""
    launch_1d(kernels(x.dtype).to_labels, x.size, _flat(x), _flat(out))
    return out


def unary(op, x, out):
    """out = op(x) elementwise, ``op`` one of :data:`UNARY_OPS`."""
    launch_1d(kernels(out.dtype).unary, out.size, _flat(x), _flat(out), UNARY_OPS.index(op))
    return out


def unary_grad(op, x, y, dy, out):
    """out = dy * op'(x) (see ``kernels._hostops.unary_grad``)."""
    launch_1d(kernels(out.dtype).unary_grad, out.size, _flat(x), _flat(y), _flat(dy),
              _flat(out), UNARY_OPS.index(op))
    return out
