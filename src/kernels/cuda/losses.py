"""Loss CUDA kernels: the reference's losses and gradients, reduced on the device.

A loss value is a mean, formed without a host round trip and deterministically:

1. a *partials* kernel of ``b <= REDUCE_BLOCKS`` blocks of ``THREADS`` threads (``b``
   from the size: 4+ elements per thread for elementwise losses, one thread per row
   for row-wise ones): each thread sums its items in a grid-stride loop, each block
   sums its threads' sums in a fixed order (``block_sum``: 16 columns of the shared
   sums, then the 16 column sums; two barriers) and writes one partial sum;
2. ``reduce_mean``, one block of 32 threads: the ``b`` partial sums in a fixed order,
   divided by the count, written to a 0-d device array.

The grid depends on the size alone, so every call on the same inputs adds the same
numbers in the same order: two calls give bit-identical losses.  Sums are formed in
the inputs' dtype (float32 kernels do no float64 arithmetic).

A loss is a 0-d device array for device inputs, a NumPy scalar of the inputs' dtype
for host inputs.  Launches per call: a loss 2 (partials + reduce_mean); a gradient 1; the fused
``softmax_crossentropy`` / ``sparse_softmax_crossentropy`` 2 (one row pass writes the
gradient and the partial sums, then reduce_mean).

``sample_weight`` (every loss): None, or one weight per row, a C-contiguous 1-D array
of the dtype on the same side as the other arrays; the kernels take it with a
``weighted`` flag (an unweighted call passes a dummy array it never reads): a row's
loss terms and its gradient row are multiplied by its weight.

Sparse labels on the device must be a C-contiguous int64 device array of shape ``(n,)``
or ``(n, 1)``: their values cannot be checked without a synchronisation, so the kernels
guard the range instead: a row whose label is outside ``[0, classes)`` gets a NaN loss
(so the mean is NaN) and a NaN gradient row, and nothing outside the arrays is read.
Host labels are validated as the reference does (``checks.labels``) and uploaded as
int64.
"""
import functools
import math

import numpy as np

from .. import reference
from . import _nb
from ._nb import cuda
from ._compile import REDUCE_BLOCKS, THREADS, register

EPSILON = reference.EPSILON  # Keras's probability clip

_LANES = 16              # block_sum: THREADS values as _LANES columns, then the columns
_FINISH_THREADS = 32     # reduce_mean's block (it sums at most REDUCE_BLOCKS values)
_ITEMS_PER_THREAD = 4    # elementwise partial sums: at least this many elements per thread
assert THREADS % _LANES == 0

# Loss ids: their position in the reference's table (shared with the Cython twin's
# enum, which tests/kernels/test_tables.py checks against it); the elementwise ones
# are module constants, which Numba compiles into the device functions.
LOSS_IDS = {name: i for i, name in enumerate(reference.LOSS_KERNELS)}
MSE, MAE, HUBER, BCE, BCE_LOGITS = (
    LOSS_IDS["mean_squared_error"], LOSS_IDS["mean_absolute_error"], LOSS_IDS["huber"],
    LOSS_IDS["binary_crossentropy"], LOSS_IDS["binary_crossentropy_logits"])
HINGE, SQUARED_HINGE, POISSON, LOG_COSH, MAPE, MSLE, KLD, CAT_HINGE, COSINE = (
    LOSS_IDS["hinge"], LOSS_IDS["squared_hinge"], LOSS_IDS["poisson"],
    LOSS_IDS["log_cosh"], LOSS_IDS["mean_absolute_percentage_error"],
    LOSS_IDS["mean_squared_logarithmic_error"], LOSS_IDS["kl_divergence"],
    LOSS_IDS["categorical_hinge"], LOSS_IDS["cosine_similarity"])
_LOG2 = math.log(2.0)
_COS_EPS2 = EPSILON * EPSILON


@functools.lru_cache(maxsize=None)
def loss_functions(dtype):
    """Device functions of ``dtype``: the elementwise loss terms and gradients, the
    probability clip, a NaN-propagating row maximum and the block sum."""
    T = np.dtype(dtype).type
    nbtype = _nb.NUMBA_FLOAT[np.dtype(dtype)]
    zero, one, half, two, hundred = T(0), T(1), T(0.5), T(2), T(100)
    lo, hi = T(EPSILON), T(1 - EPSILON)
    log2, inf, nan = T(_LOG2), T(np.inf), T(np.nan)

    @_nb.jit(device=True)
    def clip(p):
        return lo if p < lo else (hi if p > hi else p)       # NaN stays NaN

    @_nb.jit(device=True)
    def max0(v):
        return zero if v <= zero else v                      # NaN stays NaN

    @_nb.jit(device=True)
    def maxeps(v):
        return lo if v < lo else v                           # NaN stays NaN

    @_nb.jit(device=True)
    def clip01(v):
        return lo if v < lo else (one if v > one else v)     # KLD's clip, NaN kept

    @_nb.jit(device=True)
    def hinge_t(t, convert):
        return two * t - one if convert != zero else t

    @_nb.jit(device=True)
    def more_term(kind, t, p, param):
        """The terms of the losses past BCE_LOGITS (param: hinge's label conversion)."""
        if kind == HINGE:
            return max0(one - hinge_t(t, param) * p)
        if kind == SQUARED_HINGE:
            d = max0(one - hinge_t(t, param) * p)
            return d * d
        if kind == POISSON:
            q = p + lo        # log of a non-positive q as the GPU gives it (the simulator's
            lq = math.log(q) if q > zero else (-inf if q == zero else nan)  # math raises)
            return p - t * lq
        if kind == LOG_COSH:
            d = p - t
            u = -two * d
            return d + (max(u, zero) + math.log1p(math.exp(-abs(u)))) - log2
        if kind == MAPE:
            return hundred * abs((t - p) / maxeps(abs(t)))
        if kind == MSLE:
            d = math.log(maxeps(p) + one) - math.log(maxeps(t) + one)
            return d * d
        c = clip01(t)                                        # KLD
        return c * math.log(c / clip01(p))

    @_nb.jit(device=True)
    def more_grad(kind, t, p, param, scale):
        if kind == HINGE:
            c = hinge_t(t, param)
            return -c * scale if one - c * p > zero else zero
        if kind == SQUARED_HINGE:
            c = hinge_t(t, param)
            return -two * c * max0(one - c * p) * scale
        if kind == POISSON:
            return (one - t / (p + lo)) * scale
        if kind == LOG_COSH:
            return math.tanh(p - t) * scale
        if kind == MAPE:
            d = p - t
            c = hundred * scale / maxeps(abs(t))
            if d > zero:
                return c
            if d < zero:
                return -c
            return d * c                                     # 0, or NaN
        if kind == MSLE:
            if p > lo:
                d = math.log(p + one) - math.log(maxeps(t) + one)
                return two * d / (p + one) * scale
            return zero
        if p >= lo and p <= one:                              # KLD
            return -clip01(t) / p * scale
        return zero

    @_nb.jit(device=True)
    def term(kind, t, p, param):
        """One element's loss term (param: huber's delta)."""
        if kind == MSE:
            d = p - t
            return d * d
        if kind == MAE:
            return abs(p - t)
        if kind == HUBER:
            e = abs(p - t)
            if e <= param:
                return half * e * e
            return param * (e - half * param)
        if kind == BCE:
            c = clip(p)
            return -(t * math.log(c) + (one - t) * math.log(one - c))
        if kind != BCE_LOGITS:
            return more_term(kind, t, p, param)
        # BCE from logits: max(z, 0) - z y + log(1 + exp(-|z|)), NaN propagating
        pos = p if (p > zero or p != p) else zero
        return pos - p * t + math.log1p(math.exp(-abs(p)))

    @_nb.jit(device=True)
    def grad(kind, t, p, param, scale):
        """One element's gradient, the 1/size of the mean (``scale``) included."""
        if kind == MSE:
            return (p - t) * scale                 # scale = 2 / size
        if kind == MAE:
            d = p - t
            if d > zero:
                return scale
            if d < zero:
                return -scale
            return d * scale                       # 0, or NaN
        if kind == HUBER:
            d = p - t
            if d > param:
                d = param
            elif d < -param:
                d = -param
            return d * scale
        if kind == BCE:
            if p >= lo and p <= hi:
                return ((one - t) / (one - p) - t / p) * scale
            return zero                            # the clip is active (or p is NaN)
        if kind != BCE_LOGITS:
            return more_grad(kind, t, p, param, scale)
        e = math.exp(-abs(p))
        s = one / (one + e) if p >= zero else e / (one + e)
        return (s - t) * scale

    @_nb.jit(device=True)
    def row_max(x, r):
        """max of row r; a NaN anywhere makes it NaN."""
        m = x[r, 0]
        for j in range(1, x.shape[1]):
            v = x[r, j]
            if v > m or v != v:
                m = v
        return m

    @_nb.jit(device=True)
    def block_sum(acc):
        """The sum of ``acc`` over the block's THREADS threads in a fixed order, with two
        barriers: threads t < _LANES sum the column t, t + _LANES, ... of the shared
        values (conflict-free), then thread 0 sums those _LANES sums.  Thread 0 gets
        the total (the others a meaningless value)."""
        sh = cuda.shared.array(THREADS, nbtype)
        tid = cuda.threadIdx.x
        sh[tid] = acc
        cuda.syncthreads()
        if tid < _LANES:
            s = sh[tid]
            for j in range(tid + _LANES, THREADS, _LANES):
                s += sh[j]
            sh[tid] = s        # only threads < _LANES read or write sh[:_LANES] now
        cuda.syncthreads()
        total = sh[0]
        if tid == 0:
            for j in range(1, _LANES):
                total += sh[j]
        return total

    return clip, term, grad, row_max, block_sum


# ------------------------------------------------------------------ the reduction

@register("reduce_mean", "C1 A0 I F")
def _reduce_mean(dtype):
    T = np.dtype(dtype).type
    zero = T(0)
    nbtype = _nb.NUMBA_FLOAT[np.dtype(dtype)]

    def reduce_mean(partial, out, blocks, count):
        """out = sum(partial[:blocks]) / count, by one block of _FINISH_THREADS threads:
        thread t sums partial[t], partial[t + _FINISH_THREADS]..., thread 0 sums those."""
        sh = cuda.shared.array(_FINISH_THREADS, nbtype)
        tid = cuda.threadIdx.x
        acc = zero
        for i in range(tid, blocks, _FINISH_THREADS):
            acc += partial[i]
        sh[tid] = acc
        cuda.syncthreads()
        if tid == 0:
            total = sh[0]
            for j in range(1, _FINISH_THREADS):
                total += sh[j]
            out[()] = total / count
    return reduce_mean


# ------------------------------------------------------------ elementwise losses

@register("elementwise_loss_partials", "C1 C1 C1 I F C1 B I")
def _elementwise_loss_partials(dtype):
    T = np.dtype(dtype).type
    zero = T(0)
    _, term, _, _, block_sum = loss_functions(dtype)

    def elementwise_loss_partials(t, p, partial, kind, param, w, weighted, cols):
        acc = zero
        for i in range(cuda.grid(1), p.shape[0], cuda.gridsize(1)):
            if weighted:
                acc += term(kind, t[i], p[i], param) * w[i // cols]
            else:
                acc += term(kind, t[i], p[i], param)
        total = block_sum(acc)
        if cuda.threadIdx.x == 0:
            partial[cuda.blockIdx.x] = total
    return elementwise_loss_partials


@register("elementwise_loss_grad", "C1 C1 C1 I F F C1 B I")
def _elementwise_loss_grad(dtype):
    grad = loss_functions(dtype)[2]

    def elementwise_loss_grad(t, p, out, kind, param, scale, w, weighted, cols):
        # out may be t or p: element i is read before it is written
        for i in range(cuda.grid(1), p.shape[0], cuda.gridsize(1)):
            if weighted:
                out[i] = grad(kind, t[i], p[i], param, scale * w[i // cols])
            else:
                out[i] = grad(kind, t[i], p[i], param, scale)
    return elementwise_loss_grad


# ------------------------------------------------------- categorical (row-wise)

@register("xent_rows", "C2 C2 C2 C1 B B B F F C1 B")
def _xent_rows(dtype):
    """Categorical cross-entropy with dense targets, one thread per row: the row loss
    into the block's partial sum (``want_loss``) and/or its gradient into ``out``
    (``want_grad``).  ``out`` may be ``p`` (each row is read before it is written)."""
    T = np.dtype(dtype).type
    zero, one = T(0), T(1)
    clip, _, _, row_max, block_sum = loss_functions(dtype)
    lo, hi = T(EPSILON), T(1 - EPSILON)

    def xent_rows(t, p, out, partial, logits, want_loss, want_grad, scale, n, w, weighted):
        cols = p.shape[1]
        acc = zero
        for r in range(cuda.grid(1), p.shape[0], cuda.gridsize(1)):
            wr = w[r] if weighted else one
            if logits:
                # log_softmax(z)_j = (z_j - m) - log(sum exp(z - m)), term by term
                m = row_max(p, r)
                s = zero
                ts = zero
                for j in range(cols):
                    s += math.exp(p[r, j] - m)
                    ts += t[r, j]
                lse = math.log(s)
                row = zero
                for j in range(cols):
                    a = (p[r, j] - m) - lse
                    tj = t[r, j]
                    row += tj * a
                    if want_grad:
                        out[r, j] = (math.exp(a) * ts - tj) * (scale * wr)
                acc -= row * wr
            else:
                s = zero
                for j in range(cols):
                    s += p[r, j]
                if want_loss:
                    row = zero
                    for j in range(cols):
                        row += t[r, j] * math.log(clip(p[r, j] / s))
                    acc -= row * wr
                if want_grad:
                    # g_j = -t_j / q_j inside the clip range; out = (g - sum g q) / (s n)
                    dot = zero
                    for j in range(cols):
                        q = p[r, j] / s
                        g = zero
                        if q >= lo and q <= hi:
                            g = -t[r, j] / q
                        dot += g * q
                        out[r, j] = g
                    sn = s * n
                    for j in range(cols):
                        out[r, j] = (out[r, j] - dot) / sn * wr
        if want_loss:
            total = block_sum(acc)
            if cuda.threadIdx.x == 0:
                partial[cuda.blockIdx.x] = total
    return xent_rows


@register("more_rows", "C2 C2 C2 C1 I B B F C1 B")
def _more_rows(dtype):
    """Categorical hinge and cosine similarity, one thread per row: the row loss into
    the block's partial sum (``want_loss``) and/or its gradient into ``out`` (which may
    be ``p``: a row is read in full before it is written)."""
    T = np.dtype(dtype).type
    zero, one = T(0), T(1)
    eps2 = T(_COS_EPS2)
    block_sum = loss_functions(dtype)[4]

    def more_rows(t, p, out, partial, kind, want_loss, want_grad, scale, w, weighted):
        cols = p.shape[1]
        acc = zero
        for r in range(cuda.grid(1), p.shape[0], cuda.gridsize(1)):
            wr = w[r] if weighted else one
            sc = scale * wr
            dot = zero
            if kind == CAT_HINGE:
                k = 0
                m = (one - t[r, 0]) * p[r, 0]
                mn = m                 # the max with NaN kept (the loss's), apart
                for j in range(cols):
                    dot += t[r, j] * p[r, j]
                    v = (one - t[r, j]) * p[r, j]
                    if v > m:
                        m = v
                        k = j
                    if v > mn or v != v:
                        mn = v
                margin = mn - dot + one
                if want_loss:
                    acc += (zero if margin <= zero else margin) * wr
                if want_grad:
                    active = (m - dot + one) > zero
                    g = (one - t[r, k]) * sc
                    for j in range(cols):
                        out[r, j] = -t[r, j] * sc if active else zero
                    if active:
                        out[r, k] += g
            else:
                a = zero
                b = zero
                for j in range(cols):
                    dot += t[r, j] * p[r, j]
                    a += t[r, j] * t[r, j]
                    b += p[r, j] * p[r, j]
                it = one / math.sqrt(eps2 if a < eps2 else a)
                ip = one / math.sqrt(eps2 if b < eps2 else b)
                if want_loss:
                    acc -= dot * it * ip * wr
                if want_grad:
                    g = dot * ip * ip if b > eps2 else zero
                    inv = -it * ip * sc
                    for j in range(cols):
                        out[r, j] = (t[r, j] - g * p[r, j]) * inv
        if want_loss:
            total = block_sum(acc)
            if cuda.threadIdx.x == 0:
                partial[cuda.blockIdx.x] = total
    return more_rows


@register("not_binary", "C1 C1")
def _not_binary(dtype):
    """flag[0] = 1 when some element of t is neither 0 nor 1 (flag zeroed before; every
    writer writes the same value)."""
    T = np.dtype(dtype).type
    zero, one = T(0), T(1)

    def not_binary(t, flag):
        for i in range(cuda.grid(1), t.shape[0], cuda.gridsize(1)):
            if t[i] != zero and t[i] != one:
                flag[0] = one
    return not_binary


@register("sparse_xent_rows", "L1 C2 C2 C1 B B B F C1 B")
def _sparse_xent_rows(dtype):
    """Sparse categorical cross-entropy, one thread per row with label ``k``: the row
    loss into the block's partial sum and/or the gradient row into ``out`` (which may
    be ``p``).  A label outside [0, classes) makes the row's loss and gradient NaN."""
    T = np.dtype(dtype).type
    zero, one = T(0), T(1)
    nan = T(np.nan)
    clip, _, _, row_max, block_sum = loss_functions(dtype)
    lo, hi = T(EPSILON), T(1 - EPSILON)

    def sparse_xent_rows(labels, p, out, partial, logits, want_loss, want_grad, scale, w,
                         weighted):
        cols = p.shape[1]
        acc = zero
        for r in range(cuda.grid(1), p.shape[0], cuda.gridsize(1)):
            wr = w[r] if weighted else one
            sc = scale * wr
            k = labels[r]
            if k < 0 or k >= cols:                 # never read outside the row
                acc += nan
                if want_grad:
                    for j in range(cols):
                        out[r, j] = nan
                continue
            if logits:
                m = row_max(p, r)
                s = zero
                for j in range(cols):
                    s += math.exp(p[r, j] - m)
                lse = math.log(s)
                acc -= ((p[r, k] - m) - lse) * wr
                if want_grad:
                    for j in range(cols):
                        e = math.exp((p[r, j] - m) - lse)
                        if j == k:
                            e -= one
                        out[r, j] = e * sc
                continue
            s = zero
            for j in range(cols):
                s += p[r, j]
            # Keras normalises the whole row: 0/0, inf/inf or a NaN anywhere in p / s
            # makes the row NaN (possible only where s is not finite, or 0)
            undefined = False
            if not (s - s == zero) or s == zero:
                for j in range(cols):
                    q = p[r, j] / s
                    if q != q:
                        undefined = True
                        break
            if undefined:
                acc += nan
                if want_grad:
                    for j in range(cols):
                        out[r, j] = nan
                continue
            qk = p[r, k] / s
            acc -= math.log(clip(qk)) * wr
            if want_grad:
                g = zero
                if qk >= lo and qk <= hi:
                    g = -one / qk
                inv = one / s
                base = -g * qk * inv
                for j in range(cols):
                    v = base
                    if j == k:
                        v = base + g * inv
                    out[r, j] = v * sc
        if want_loss:
            total = block_sum(acc)
            if cuda.threadIdx.x == 0:
                partial[cuda.blockIdx.x] = total
    return sparse_xent_rows


# ------------------------------------------------------------------ public kernels

from .. import checks as check                                  # noqa: E402
from ._arrays import Call, device_scalar                         # noqa: E402
from ._compile import blocks_for, kernels, launch, launch_1d     # noqa: E402


def _flat(d):
    return d.reshape(-1) if d.ndim != 1 else d


def _partials(dtype):
    return _nb.device_array((REDUCE_BLOCKS,), dtype)


def _reduce_blocks(items):
    return blocks_for(items, THREADS, REDUCE_BLOCKS)


def _finish(dtype, partial, blocks, count):
    """The 0-d device array sum(partial[:blocks]) / count."""
    result = device_scalar(dtype)
    launch(kernels(dtype).reduce_mean, 1, _FINISH_THREADS, partial, result, blocks,
           float(count))
    return result


def _weights(c, pred_name="y_pred", out=None):
    """(device weights, weighted) of a call: the validated sample_weight, or a dummy
    C1 array of the dtype (never read) and False."""
    view = c.v["sample_weight"]
    if view is None:
        return _partials(c.v[pred_name].dtype), False
    check.sample_weights(view, c.v[pred_name], out, pred_name)
    return c.dev(view, name="sample_weight"), True


def _hinge_param(kind, t):
    """Hinge's label conversion flag (1.0: every target is 0 or 1, Keras maps them to
    -1/1), from the device targets ``t`` (one flag read back); 0.0 for other losses."""
    if kind not in (HINGE, SQUARED_HINGE):
        return 0.0
    flag = _nb.to_device(np.zeros(1, t.dtype))
    launch_1d(kernels(t.dtype).not_binary, t.shape[0], t, flag)
    return 0.0 if flag.copy_to_host()[0] else 1.0


def _elementwise_loss(kind, y_true, y_pred, sample_weight, param=0.0):
    c = Call(y_pred=y_pred, y_true=y_true, sample_weight=sample_weight)
    check.loss_args(c.v["y_true"], c.v["y_pred"])
    w, weighted = _weights(c)
    dtype = c.v["y_pred"].dtype
    cols = 1 if c.v["y_pred"].ndim == 1 else c.v["y_pred"].shape[1]
    p = _flat(c.dev(c.v["y_pred"], name="y_pred"))
    t = _flat(c.dev(c.v["y_true"], name="y_true"))
    n = p.shape[0]
    param = _hinge_param(kind, t) if kind in (HINGE, SQUARED_HINGE) else param
    partial, blocks = _partials(dtype), _reduce_blocks((n + _ITEMS_PER_THREAD - 1)
                                                       // _ITEMS_PER_THREAD)
    launch(kernels(dtype).elementwise_loss_partials, blocks, THREADS, t, p, partial, kind,
           param, w, weighted, cols)
    # a sample's KL divergence is the sum of its row: the mean is over rows
    return c.scalar(_finish(dtype, partial, blocks, n // cols if kind == KLD else n), dtype)


def _elementwise_grad(kind, y_true, y_pred, out, sample_weight, param=0.0, factor=1.0):
    c = Call(y_pred=y_pred, y_true=y_true, out=out, sample_weight=sample_weight)
    out = check.loss_args(c.v["y_true"], c.v["y_pred"], c.v["out"], want_out=True)
    w, weighted = _weights(c, out=out)
    dtype = out.dtype
    cols = 1 if c.v["y_pred"].ndim == 1 else c.v["y_pred"].shape[1]
    p = _flat(c.dev(c.v["y_pred"], name="y_pred"))
    t = _flat(c.dev(c.v["y_true"], name="y_true"))
    o = _flat(c.dev(out, name="out"))
    n = p.shape[0]
    param = _hinge_param(kind, t) if kind in (HINGE, SQUARED_HINGE) else param
    count = n // cols if kind == KLD else n
    launch_1d(kernels(dtype).elementwise_loss_grad, n, t, p, o, kind, param, factor / count,
              w, weighted, cols)
    c.write_back(out)
    return c.result(out)


def mean_squared_error(y_true, y_pred, *, sample_weight=None):
    return _elementwise_loss(MSE, y_true, y_pred, sample_weight)


def backprop_mean_squared_error(y_true, y_pred, out=None, *, sample_weight=None):
    return _elementwise_grad(MSE, y_true, y_pred, out, sample_weight, factor=2.0)


def mean_absolute_error(y_true, y_pred, *, sample_weight=None):
    return _elementwise_loss(MAE, y_true, y_pred, sample_weight)


def backprop_mean_absolute_error(y_true, y_pred, out=None, *, sample_weight=None):
    return _elementwise_grad(MAE, y_true, y_pred, out, sample_weight)


def huber(y_true, y_pred, *, delta=1.0, sample_weight=None):
    delta = check.real("delta", delta, low=0.0, low_open=True)
    return _elementwise_loss(HUBER, y_true, y_pred, sample_weight, delta)


def backprop_huber(y_true, y_pred, out=None, *, delta=1.0, sample_weight=None):
    delta = check.real("delta", delta, low=0.0, low_open=True)
    return _elementwise_grad(HUBER, y_true, y_pred, out, sample_weight, delta)


def binary_crossentropy(y_true, y_pred, *, from_logits=False, sample_weight=None):
    from_logits = check.flag("from_logits", from_logits)
    return _elementwise_loss(BCE_LOGITS if from_logits else BCE, y_true, y_pred,
                             sample_weight)


def backprop_binary_crossentropy(y_true, y_pred, out=None, *, from_logits=False,
                                 sample_weight=None):
    from_logits = check.flag("from_logits", from_logits)
    return _elementwise_grad(BCE_LOGITS if from_logits else BCE, y_true, y_pred, out,
                             sample_weight)


def _xent(y_true, y_pred, out, logits, want_loss, want_grad, sample_weight,
          pred_name="y_pred"):
    """Dense-target cross-entropy: (loss or None, out or None)."""
    c = Call(**{pred_name: y_pred}, y_true=y_true, out=out, sample_weight=sample_weight)
    v_pred, v_true = c.v[pred_name], c.v["y_true"]
    if want_grad:
        out = check.loss_args(v_true, v_pred, c.v["out"], ndim=2, want_out=True,
                              pred_name=pred_name)
    else:
        check.loss_args(v_true, v_pred, ndim=2, pred_name=pred_name)
    w, weighted = _weights(c, pred_name, out if want_grad else None)
    dtype = v_pred.dtype
    p = c.dev(v_pred, name=pred_name)
    t = c.dev(v_true, name="y_true")
    o = c.dev(out, name="out") if want_grad else p     # p is not written without want_grad
    rows = p.shape[0]
    # the partial sums are not written without want_loss: any C1 array of the dtype
    partial = _partials(dtype) if want_loss else _flat(p)
    blocks = _reduce_blocks(rows) if want_loss else blocks_for(rows)
    launch(kernels(dtype).xent_rows, blocks, THREADS, t, p, o, partial, logits, want_loss,
           want_grad, 1.0 / rows, float(rows), w, weighted)
    loss = c.scalar(_finish(dtype, partial, blocks, rows), dtype) if want_loss else None
    if want_grad:
        c.write_back(out)
        out = c.result(out)
    return loss, out


def categorical_crossentropy(y_true, y_pred, *, from_logits=False, sample_weight=None):
    from_logits = check.flag("from_logits", from_logits)
    return _xent(y_true, y_pred, None, from_logits, True, False, sample_weight)[0]


def backprop_categorical_crossentropy(y_true, y_pred, out=None, *, from_logits=False,
                                      sample_weight=None):
    from_logits = check.flag("from_logits", from_logits)
    return _xent(y_true, y_pred, out, from_logits, False, True, sample_weight)[1]


def softmax_crossentropy(y_true, logits, out=None, *, sample_weight=None):
    return _xent(y_true, logits, out, True, True, True, sample_weight, pred_name="logits")


# ------------------------------------------------------------------ sparse labels

def _device_labels(y, n_rows):
    """Checks device labels without reading them: an int64 array of shape (n,) or
    (n, 1) (the view ``y``)."""
    if y.dtype != np.int64:
        raise TypeError(f"y_true: expected int64 class labels on the device (the cuda "
                        f"backend cannot convert device labels without reading them: "
                        f"cast them before the call), got dtype {y.dtype}")
    if not (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)):
        raise ValueError(f"y_true: expected shape ({n_rows},) or ({n_rows}, 1), got {y.shape}")
    if y.shape[0] != n_rows:
        raise ValueError(f"y_true: expected {n_rows} labels (one per row of the predictions), "
                         f"got {y.shape[0]}")


def _sparse(y_true, y_pred, out, logits, want_loss, want_grad, sample_weight,
            pred_name="y_pred"):
    """Sparse cross-entropy: (loss or None, out or None)."""
    if not (isinstance(y_true, np.ndarray) or _nb.is_device_array(y_true)):
        # not an array at all: the reference's error (after its check of y_pred)
        check.sparse_args(y_true, Call(**{pred_name: y_pred}).v[pred_name],
                          pred_name=pred_name)
    c = Call(**{pred_name: y_pred}, y_true=y_true, out=out, sample_weight=sample_weight)
    v_pred, v_true = c.v[pred_name], c.v["y_true"]
    if c.on_device:
        check.array(pred_name, v_pred, ndim=2)
        _device_labels(v_true, v_pred.shape[0])
        if want_grad:
            out = check.output("out", c.v["out"], v_pred.shape, v_pred.dtype,
                               may_alias=((pred_name, v_pred),))
        lab = c.dev(v_true, name="y_true")
        if lab.ndim != 1:
            lab = lab.reshape(lab.shape[0])
    else:
        labels, out = check.sparse_args(v_true, v_pred, c.v["out"], pred_name=pred_name,
                                        want_out=want_grad)
        lab = _nb.to_device(np.ascontiguousarray(labels, dtype=np.int64))
    w, weighted = _weights(c, pred_name, out if want_grad else None)
    dtype = v_pred.dtype
    p = c.dev(v_pred, name=pred_name)
    o = c.dev(out, name="out") if want_grad else p     # p is not written without want_grad
    rows = p.shape[0]
    # the partial sums are not written without want_loss: any C1 array of the dtype
    partial = _partials(dtype) if want_loss else _flat(p)
    blocks = _reduce_blocks(rows) if want_loss else blocks_for(rows)
    launch(kernels(dtype).sparse_xent_rows, blocks, THREADS, lab, p, o, partial, logits,
           want_loss, want_grad, 1.0 / rows, w, weighted)
    loss = c.scalar(_finish(dtype, partial, blocks, rows), dtype) if want_loss else None
    if want_grad:
        c.write_back(out)
        out = c.result(out)
    return loss, out


def sparse_categorical_crossentropy(y_true, y_pred, *, from_logits=False,
                                    sample_weight=None):
    from_logits = check.flag("from_logits", from_logits)
    return _sparse(y_true, y_pred, None, from_logits, True, False, sample_weight)[0]


def backprop_sparse_categorical_crossentropy(y_true, y_pred, out=None, *, from_logits=False,
                                             sample_weight=None):
    from_logits = check.flag("from_logits", from_logits)
    return _sparse(y_true, y_pred, out, from_logits, False, True, sample_weight)[1]


def sparse_softmax_crossentropy(y_true, logits, out=None, *, sample_weight=None):
    return _sparse(y_true, logits, out, True, True, True, sample_weight,
                   pred_name="logits")


# ---------------------------------------------------- Keras's other losses

def _rows_loss(kind, y_true, y_pred, out, want_loss, want_grad, sample_weight):
    """Categorical hinge or cosine similarity: (loss or None, out or None)."""
    c = Call(y_pred=y_pred, y_true=y_true, out=out, sample_weight=sample_weight)
    v_pred, v_true = c.v["y_pred"], c.v["y_true"]
    if want_grad:
        out = check.loss_args(v_true, v_pred, c.v["out"], ndim=2, want_out=True)
    else:
        check.loss_args(v_true, v_pred, ndim=2)
    w, weighted = _weights(c, out=out if want_grad else None)
    dtype = v_pred.dtype
    p = c.dev(v_pred, name="y_pred")
    t = c.dev(v_true, name="y_true")
    o = c.dev(out, name="out") if want_grad else p     # p is not written without want_grad
    rows = p.shape[0]
    partial = _partials(dtype) if want_loss else _flat(p)
    blocks = _reduce_blocks(rows) if want_loss else blocks_for(rows)
    launch(kernels(dtype).more_rows, blocks, THREADS, t, p, o, partial, kind, want_loss,
           want_grad, 1.0 / rows, w, weighted)
    loss = c.scalar(_finish(dtype, partial, blocks, rows), dtype) if want_loss else None
    if want_grad:
        c.write_back(out)
        out = c.result(out)
    return loss, out


def _more(name):
    kind = LOSS_IDS[name]
    if name in reference.ROW_LOSSES:
        def value(y_true, y_pred, *, sample_weight=None):
            return _rows_loss(kind, y_true, y_pred, None, True, False, sample_weight)[0]

        def gradient(y_true, y_pred, out=None, *, sample_weight=None):
            return _rows_loss(kind, y_true, y_pred, out, False, True, sample_weight)[1]
    else:
        def value(y_true, y_pred, *, sample_weight=None):
            return _elementwise_loss(kind, y_true, y_pred, sample_weight)

        def gradient(y_true, y_pred, out=None, *, sample_weight=None):
            return _elementwise_grad(kind, y_true, y_pred, out, sample_weight)
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
