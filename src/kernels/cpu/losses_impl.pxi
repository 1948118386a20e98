# The loss kernels (values, gradients, the sparse and fused softmax cross-entropies),
# one source for float32 and float64 (fused `floating`), `include`d by the per-ISA
# modules losses_base (baseline flags), losses_avx2 (-mavx2 -mfma) and losses_avx512
# (AVX-512 F/DQ/VL/BW + AVX2 + FMA); kernels.cpu.losses imports the best one this CPU
# runs and forwards to it (see losses.pyx), as _elementwise does for the activations.
# The logs and exps come from _fmath.pxd (float32: branch-free polynomials gcc
# vectorises at the module's width); setup.py compiles these modules with
# -ffp-contract=off, so an element gets the same bits in a loop's vector body as in
# its scalar tail.
#
# A loss value is a mean over samples: per-element (or per-row) terms are summed in
# double precision over fixed chunks, chunk sums added in chunk order, so the result is
# the same whatever the number of threads.  Gradients include the 1/size factor.
# Arguments arrive validated and C-contiguous.  ``w`` is NULL or one weight per row
# (sample_weight): a row's loss is multiplied by its weight before it is summed (the
# sum then runs over rows, in fixed row chunks), and its gradient row by the weight
# folded into the row's scale.

from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.math cimport NAN, INFINITY
from libc.stdlib cimport malloc, free
from cpython.pycapsule cimport PyCapsule_New

from kernels.cpu._threads cimport threads_for, CHUNK
from kernels.cpu._fmath cimport f_exp, f_log, f_log1p, f_abs, f_sigmoid, f_tanh, f_sqrt
from kernels.cpu.losses cimport (loss_table, MSE, MAE, HUBER, BCE, BCE_LOGITS, CCE,
                                  CCE_LOGITS, HINGE, SQUARED_HINGE, POISSON, LOG_COSH, MAPE,
                                  MSLE, KLD, CAT_HINGE, COSINE, SPARSE_CROSSENTROPY)

cdef double EPS = 1e-7   # Keras's probability clip
cdef double COS_EPS2 = 1e-14     # Keras's normalize: the squared norm clamped at eps^2
cdef double LOG2 = 0.6931471805599453


cdef inline bint _by_row(int loss) noexcept nogil:
    """A row loss: computed a row at a time (reference.ROW_LOSSES)."""
    return loss == CCE or loss == CCE_LOGITS or loss == CAT_HINGE or loss == COSINE


cdef inline bint _summed_per_row(int loss) noexcept nogil:
    """A sample's loss is a sum over its row: the mean divides by the rows
    (reference.LOSSES_SUMMED_PER_ROW)."""
    return _by_row(loss) or loss == KLD


cdef floating _hinge_param(int loss, floating param, const floating* t,
                           Py_ssize_t n) noexcept nogil:
    """For hinge and squared_hinge: 1 when every target is 0 or 1 (Keras converts such
    labels to -1/1), else 0; param unchanged for the other losses.  Read before any
    output is written (out may be t)."""
    cdef Py_ssize_t i
    cdef int other = 0
    if loss != HINGE and loss != SQUARED_HINGE:
        return param
    for i in range(n):            # no early exit: a loop gcc vectorises
        other |= (t[i] != 0) & (t[i] != 1)
    return 0 if other else 1


cdef inline floating _hinge_t(floating t, floating convert) noexcept nogil:
    return 2 * t - 1 if convert != 0 else t


cdef inline floating _max0(floating v) noexcept nogil:
    return 0 if v <= 0 else v          # NaN stays NaN, as np.maximum(v, 0)


cdef inline floating _maxeps(floating v) noexcept nogil:
    return <floating>EPS if v < <floating>EPS else v      # NaN stays NaN


cdef inline floating _softplus(floating x) noexcept nogil:
    return (x if x > 0 else 0) + f_log1p(f_exp(-f_abs(x)))


# the terms of the losses past BCE_LOGITS, one inline function each so that every
# loss's loop in _elem_sum vectorises (param: hinge's label conversion)

cdef inline floating _t_hinge(floating t, floating p, floating param) noexcept nogil:
    return _max0(1 - _hinge_t(t, param) * p)


cdef inline floating _t_squared_hinge(floating t, floating p, floating param) noexcept nogil:
    cdef floating d = _max0(1 - _hinge_t(t, param) * p)
    return d * d


cdef inline floating _t_poisson(floating t, floating p) noexcept nogil:
    return p - t * f_log(p + <floating>EPS)


cdef inline floating _t_log_cosh(floating t, floating p) noexcept nogil:
    cdef floating d = p - t
    return d + _softplus(-2 * d) - <floating>LOG2


cdef inline floating _t_mape(floating t, floating p) noexcept nogil:
    return 100 * f_abs((t - p) / _maxeps(f_abs(t)))


cdef inline floating _t_msle(floating t, floating p) noexcept nogil:
    cdef floating d = f_log(_maxeps(p) + 1) - f_log(_maxeps(t) + 1)
    return d * d


cdef inline floating _t_kld(floating t, floating p) noexcept nogil:
    # t and p clipped to [eps, 1]
    cdef floating lo = <floating>EPS
    cdef floating c = lo if t < lo else (1 if t > 1 else t)
    return c * f_log(c / (lo if p < lo else (1 if p > 1 else p)))


# ------------------------------------------------------------- loss terms

cdef inline floating _clip(floating p) noexcept nogil:
    cdef floating lo = <floating>EPS, hi = <floating>(1.0 - EPS)
    return lo if p < lo else (hi if p > hi else p)


cdef inline bint _finite(floating x) noexcept nogil:
    return x - x == 0          # false for +-inf and NaN (no -ffast-math: not folded)


cdef inline floating _exp0(floating x) noexcept nogil:
    """exp(x - m) of a logit: exactly 0 at x = -inf (a -inf logit), which f_exp is not
    in float32 (it stops at ~1e-38), so that an infinite target makes 0 * inf = NaN of
    its gradient there, as the reference's exp(log_softmax) does."""
    return 0 if x == -<floating>INFINITY else f_exp(x)


cdef double _xent_terms(const floating* t, const floating* z, floating m, floating lse,
                        Py_ssize_t cols) noexcept nogil:
    """-sum_j t_j log_softmax(z)_j term by term, log_softmax(z)_j = (z_j - m) - lse: the
    reference's arithmetic, for rows with a non-finite target or logit, where the fast
    form sum(t) * lse - sum(t * (z - m)) can make inf * 0 (NaN) of an infinite loss."""
    cdef Py_ssize_t j
    cdef floating r = 0
    for j in range(cols):
        r -= t[j] * ((z[j] - m) - lse)
    return r


cdef inline floating _row_max(const floating* p, Py_ssize_t cols) noexcept nogil:
    """max of a row; a NaN anywhere makes it NaN (so the whole row's result is NaN)."""
    cdef Py_ssize_t j
    cdef floating m = p[0]
    for j in range(1, cols):
        if p[j] > m or p[j] != p[j]:
            m = p[j]
    return m


cdef enum:
    LANES = 8      # partial sums of _elem_sum (the loops step by 8: keep equal)


cdef double _elem_sum(int loss, floating param, const floating* t, const floating* p,
                      Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    """Sum of the per-element terms of an elementwise loss over [lo, hi): LANES strided
    partial sums in double (a loop gcc vectorises; one running sum it cannot reorder),
    combined pairwise, then the last (hi - lo) % LANES terms in order.  The order
    depends only on lo and hi (a fixed chunk): the same for any thread count."""
    cdef Py_ssize_t i, k, nb = lo + (hi - lo) - (hi - lo) % LANES
    cdef double s = 0
    cdef double acc[LANES]
    cdef floating d, a, c
    for k in range(LANES):
        acc[k] = 0
    if loss == MSE:
        for i in range(lo, nb, 8):
            for k in range(LANES):
                d = p[i + k] - t[i + k]
                acc[k] += d * d
        for i in range(nb, hi):
            d = p[i] - t[i]
            s += d * d
    elif loss == MAE:
        for i in range(lo, nb, 8):
            for k in range(LANES):
                acc[k] += f_abs(p[i + k] - t[i + k])
        for i in range(nb, hi):
            s += f_abs(p[i] - t[i])
    elif loss == HUBER:
        for i in range(lo, nb, 8):
            for k in range(LANES):
                a = f_abs(p[i + k] - t[i + k])
                acc[k] += ((<floating>0.5 * a * a) if a <= param
                           else param * (a - <floating>0.5 * param))
        for i in range(nb, hi):
            a = f_abs(p[i] - t[i])
            s += (<floating>0.5 * a * a) if a <= param else param * (a - <floating>0.5 * param)
    elif loss == BCE:
        for i in range(lo, nb, 8):
            for k in range(LANES):
                c = _clip(p[i + k])
                acc[k] -= t[i + k] * f_log(c) + (1 - t[i + k]) * f_log(1 - c)
        for i in range(nb, hi):
            c = _clip(p[i])
            s -= t[i] * f_log(c) + (1 - t[i]) * f_log(1 - c)
    elif loss == BCE_LOGITS:
        for i in range(lo, nb, 8):
            for k in range(LANES):
                d = p[i + k]
                acc[k] += (d if d > 0 else 0) - d * t[i + k] + f_log1p(f_exp(-f_abs(d)))
        for i in range(nb, hi):
            d = p[i]
            s += (d if d > 0 else 0) - d * t[i] + f_log1p(f_exp(-f_abs(d)))
    elif loss == HINGE:
        for i in range(lo, nb, 8):
            for k in range(LANES):
                acc[k] += _t_hinge(t[i + k], p[i + k], param)
        for i in range(nb, hi):
            s += _t_hinge(t[i], p[i], param)
    elif loss == SQUARED_HINGE:
        for i in range(lo, nb, 8):
            for k in range(LANES):
                acc[k] += _t_squared_hinge(t[i + k], p[i + k], param)
        for i in range(nb, hi):
            s += _t_squared_hinge(t[i], p[i], param)
    elif loss == POISSON:
        for i in range(lo, nb, 8):
            for k in range(LANES):
                acc[k] += _t_poisson(t[i + k], p[i + k])
        for i in range(nb, hi):
            s += _t_poisson(t[i], p[i])
    elif loss == LOG_COSH:
        for i in range(lo, nb, 8):
            for k in range(LANES):
                acc[k] += _t_log_cosh(t[i + k], p[i + k])
        for i in range(nb, hi):
            s += _t_log_cosh(t[i], p[i])
    elif loss == MAPE:
        for i in range(lo, nb, 8):
            for k in range(LANES):
                acc[k] += _t_mape(t[i + k], p[i + k])
        for i in range(nb, hi):
            s += _t_mape(t[i], p[i])
    elif loss == MSLE:
        for i in range(lo, nb, 8):
            for k in range(LANES):
                acc[k] += _t_msle(t[i + k], p[i + k])
        for i in range(nb, hi):
            s += _t_msle(t[i], p[i])
    elif loss == KLD:
        for i in range(lo, nb, 8):
            for k in range(LANES):
                acc[k] += _t_kld(t[i + k], p[i + k])
        for i in range(nb, hi):
            s += _t_kld(t[i], p[i])
    return (((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))) + s


cdef inline floating _clamp2(floating v) noexcept nogil:
    return <floating>COS_EPS2 if v < <floating>COS_EPS2 else v       # NaN stays NaN


cdef double _row_loss(int loss, const floating* t, const floating* p, Py_ssize_t cols) noexcept nogil:
    """-sum_j t_j log q_j for one row (q = clipped normalised p, or softmax of logits);
    categorical hinge; cosine similarity."""
    cdef Py_ssize_t j
    cdef floating m, s = 0, tz = 0, ts = 0, v
    if loss == CAT_HINGE:
        # max((1 - t) p) - sum(t p) + 1, clamped at 0 (NaN kept)
        m = (1 - t[0]) * p[0]
        for j in range(cols):
            tz += t[j] * p[j]
            v = (1 - t[j]) * p[j]
            if v > m or v != v:
                m = v
        return _max0(m - tz + 1)
    if loss == COSINE:
        for j in range(cols):
            tz += t[j] * p[j]
            ts += t[j] * t[j]
            s += p[j] * p[j]
        return -tz / f_sqrt(_clamp2(ts)) / f_sqrt(_clamp2(s))
    if loss == CCE:
        for j in range(cols):
            s += p[j]
        for j in range(cols):
            tz -= t[j] * f_log(_clip(p[j] / s))
        return tz
    # from logits: sum(t) * logsumexp(z) - sum(t * z), with the max taken out
    m = _row_max(p, cols)
    for j in range(cols):
        s += _exp0(p[j] - m)
        tz += t[j] * (p[j] - m)
        ts += t[j]
    if _finite(ts) and _finite(tz):
        return ts * f_log(s) - tz
    return _xent_terms(t, p, m, f_log(s), cols)


cdef double _chunk_sum(int loss, floating param, const floating* t, const floating* p,
                       const floating* w, Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t c,
                       Py_ssize_t per) noexcept nogil:
    """Sum of the loss terms of chunk c (``per`` elements, or ``per`` rows: categorical
    losses, and every loss with weights)."""
    cdef Py_ssize_t r, lo = c * per, hi
    cdef double s = 0
    if _by_row(loss):
        hi = min(lo + per, rows)
        for r in range(lo, hi):
            if w == NULL:
                s += _row_loss(loss, t + r * cols, p + r * cols, cols)
            else:
                s += w[r] * _row_loss(loss, t + r * cols, p + r * cols, cols)
        return s
    if w != NULL:
        hi = min(lo + per, rows)
        for r in range(lo, hi):
            s += w[r] * _elem_sum(loss, param, t, p, r * cols, (r + 1) * cols)
        return s
    hi = min(lo + per, rows * cols)
    return _elem_sum(loss, param, t, p, lo, hi)


cdef double _loss(int loss, floating param, const floating* t, const floating* p,
                  const floating* w, Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    cdef bint by_row = _by_row(loss)
    cdef bint chunk_rows = by_row or w != NULL
    cdef Py_ssize_t per = max(1, CHUNK // cols) if chunk_rows else CHUNK
    cdef Py_ssize_t units = rows if chunk_rows else rows * cols
    cdef Py_ssize_t nchunks = (units + per - 1) // per, c
    cdef int nt = threads_for(rows * cols)
    cdef double total = 0
    cdef double* partial = NULL
    param = _hinge_param(loss, param, t, rows * cols)
    if nt > 1 and nchunks > 1:
        partial = <double*>malloc(nchunks * sizeof(double))
    if partial == NULL:       # one thread (or no memory): the same chunk order, serially
        for c in range(nchunks):
            total += _chunk_sum(loss, param, t, p, w, rows, cols, c, per)
    else:
        for c in prange(nchunks, nogil=True, num_threads=nt, schedule="static"):
            partial[c] = _chunk_sum(loss, param, t, p, w, rows, cols, c, per)
        for c in range(nchunks):
            total += partial[c]
        free(partial)
    # mean over samples of the per-sample mean (elementwise) or sum (cross-entropy...)
    return total / (rows if _summed_per_row(loss) else rows * cols)


# -------------------------------------------------------------- gradients

cdef void _elem_grad(int loss, floating param, const floating* t, const floating* p,
                     floating* out, floating scale, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating d, c, lo_c = <floating>EPS, hi_c = <floating>(1.0 - EPS)
    if loss == MSE:
        for i in range(lo, hi):
            out[i] = (p[i] - t[i]) * (2 * scale)
    elif loss == MAE:
        for i in range(lo, hi):
            d = p[i] - t[i]
            out[i] = scale if d > 0 else (-scale if d < 0 else d * scale)  # 0, or NaN
    elif loss == HUBER:
        for i in range(lo, hi):
            d = p[i] - t[i]
            out[i] = scale * (param if d > param else (-param if d < -param else d))
    elif loss == BCE:
        for i in range(lo, hi):
            c = p[i]
            if c >= lo_c and c <= hi_c:
                out[i] = ((1 - t[i]) / (1 - c) - t[i] / c) * scale
            else:
                out[i] = 0    # the clip is active: no gradient flows through it
    elif loss == BCE_LOGITS:
        for i in range(lo, hi):
            out[i] = (f_sigmoid(p[i]) - t[i]) * scale
    elif loss == HINGE:
        for i in range(lo, hi):
            c = _hinge_t(t[i], param)
            out[i] = -c * scale if 1 - c * p[i] > 0 else 0
    elif loss == SQUARED_HINGE:
        for i in range(lo, hi):
            c = _hinge_t(t[i], param)
            out[i] = -2 * c * _max0(1 - c * p[i]) * scale
    elif loss == POISSON:
        for i in range(lo, hi):
            out[i] = (1 - t[i] / (p[i] + lo_c)) * scale
    elif loss == LOG_COSH:
        for i in range(lo, hi):
            out[i] = f_tanh(p[i] - t[i]) * scale
    elif loss == MAPE:
        for i in range(lo, hi):
            d = p[i] - t[i]
            c = 100 * scale / _maxeps(f_abs(t[i]))
            out[i] = c if d > 0 else (-c if d < 0 else d * c)     # 0, or NaN
    elif loss == MSLE:
        for i in range(lo, hi):
            c = p[i]
            if c > lo_c:
                d = f_log(c + 1) - f_log(_maxeps(t[i]) + 1)
                out[i] = 2 * d / (c + 1) * scale
            else:
                out[i] = 0    # max(p, eps) is active: no gradient through it
    elif loss == KLD:
        for i in range(lo, hi):
            c = p[i]
            d = t[i]
            d = lo_c if d < lo_c else (1 if d > 1 else d)
            out[i] = -d / c * scale if (c >= lo_c and c <= 1) else 0


cdef void _row_grad(int loss, const floating* t, const floating* p, floating* out,
                    Py_ssize_t cols, floating scale) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating m, s = 0, ts = 0, q, g, dot = 0, inv, it, ip
    cdef floating lo_c = <floating>EPS, hi_c = <floating>(1.0 - EPS)
    cdef Py_ssize_t k
    if loss == CAT_HINGE:
        # -t_j + (1 - t_j) [j = k] where the margin is positive, k the first argmax of
        # (1 - t) p; all of t and p read before out (which may be p) is written
        k = 0
        m = (1 - t[0]) * p[0]
        for j in range(cols):
            dot += t[j] * p[j]
            q = (1 - t[j]) * p[j]
            if q > m:
                m = q
                k = j
        if m - dot + 1 > 0:
            g = (1 - t[k]) * scale
            for j in range(cols):
                out[j] = -t[j] * scale
            out[k] += g
        else:
            for j in range(cols):
                out[j] = 0
        return
    if loss == COSINE:
        # -(t_j - (t.p) p_j / |p|^2) / (|t| |p|), the norms clamped as in the loss
        for j in range(cols):
            dot += t[j] * p[j]
            ts += t[j] * t[j]
            s += p[j] * p[j]
        it = 1 / f_sqrt(_clamp2(ts))
        ip = 1 / f_sqrt(_clamp2(s))
        g = dot * ip * ip if s > <floating>COS_EPS2 else 0
        inv = -it * ip * scale
        for j in range(cols):
            out[j] = (t[j] - g * p[j]) * inv
        return
    if loss == CCE:
        # q = p / s; g_j = -t_j / q_j inside the clip range; out = (g - sum(g q)) / (s n)
        for j in range(cols):
            s += p[j]
        inv = 1 / s
        for j in range(cols):
            q = p[j] * inv
            g = -t[j] / q if (q >= lo_c and q <= hi_c) else 0
            out[j] = g
            dot += g * q
        for j in range(cols):
            out[j] = (out[j] - dot) * inv * scale
        return
    m = _row_max(p, cols)
    for j in range(cols):
        out[j] = _exp0(p[j] - m)
        s += out[j]
        ts += t[j]
    inv = ts / s
    for j in range(cols):
        out[j] = (out[j] * inv - t[j]) * scale


cdef inline floating _row_scale(double scale, const floating* w,
                                Py_ssize_t r) noexcept nogil:
    """A gradient row's factor: 1/size, times the row's weight when there are weights."""
    return <floating>scale if w == NULL else <floating>(scale * w[r])


cdef void _weighted_elem_rows(int loss, floating param, const floating* t,
                              const floating* p, const floating* w, floating* out,
                              double scale, Py_ssize_t lo, Py_ssize_t hi,
                              Py_ssize_t cols) noexcept nogil:
    cdef Py_ssize_t r
    for r in range(lo, hi):
        _elem_grad(loss, param, t, p, out, _row_scale(scale, w, r), r * cols, (r + 1) * cols)


cdef void _grad(int loss, floating param, const floating* t, const floating* p,
                const floating* w, floating* out, Py_ssize_t rows,
                Py_ssize_t cols) noexcept nogil:
    cdef Py_ssize_t n = rows * cols, r, c, nchunks, per
    cdef int nt = threads_for(n)
    cdef floating scale
    param = _hinge_param(loss, param, t, n)
    if _by_row(loss):
        if nt == 1:
            for r in range(rows):
                _row_grad(loss, t + r * cols, p + r * cols, out + r * cols, cols,
                          _row_scale(1.0 / rows, w, r))
        else:
            for r in prange(rows, nogil=True, num_threads=nt, schedule="static"):
                _row_grad(loss, t + r * cols, p + r * cols, out + r * cols, cols,
                          _row_scale(1.0 / rows, w, r))
        return
    if w != NULL:
        per = max(1, CHUNK // cols)
        nchunks = (rows + per - 1) // per
        if nt == 1:
            _weighted_elem_rows(loss, param, t, p, w, out,
                                1.0 / (rows if loss == KLD else n), 0, rows, cols)
            return
        for c in prange(nchunks, nogil=True, num_threads=nt, schedule="static"):
            _weighted_elem_rows(loss, param, t, p, w, out,
                                1.0 / (rows if loss == KLD else n), c * per,
                                min((c + 1) * per, rows), cols)
        return
    scale = <floating>(1.0 / (rows if loss == KLD else n))
    if nt == 1:
        _elem_grad(loss, param, t, p, out, scale, 0, n)
        return
    nchunks = (n + CHUNK - 1) // CHUNK
    for c in prange(nchunks, nogil=True, num_threads=nt, schedule="static"):
        _elem_grad(loss, param, t, p, out, scale, c * CHUNK, min((c + 1) * CHUNK, n))


# ------------------------------------------------ sparse labels and fused losses

cdef double _sparse_crossentropy_row(bint logits, int64_t k, const floating* p, floating* out,
                        Py_ssize_t cols, floating scale) noexcept nogil:
    """Loss of one row with true class k; when out != NULL also its gradient row.

    From logits (the fused softmax cross-entropy): loss = logsumexp(z) - z_k,
    gradient (softmax(z) - onehot(k)) * scale.  From probabilities (Keras): q = p / s,
    loss = -log(clip(q_k)), gradient of that through the clip and the normalisation;
    loss and gradient row NaN when p_j / s is NaN for any j (0/0, inf/inf, a NaN: Keras
    normalises the whole row), which needs s to be non-finite or 0.
    """
    cdef Py_ssize_t j
    cdef floating m, s = 0, q, g, inv, pk = p[k]   # p[k] read before out (may be p) is written
    cdef floating lo_c = <floating>EPS, hi_c = <floating>(1.0 - EPS)
    cdef bint undefined = False
    if logits:
        m = _row_max(p, cols)
        if out != NULL:
            # exp(z - m) once, kept in out (each p[j] is read before out[j], which may
            # be it, is written), then scaled: the same products as forming it twice
            for j in range(cols):
                g = _exp0(p[j] - m)
                s += g
                out[j] = g
            inv = 1 / s
            for j in range(cols):
                out[j] = out[j] * inv * scale
            out[k] -= scale
        else:
            for j in range(cols):
                s += _exp0(p[j] - m)
        return f_log(s) - (pk - m)
    for j in range(cols):
        s += p[j]
    if not _finite(s) or s == 0:
        for j in range(cols):
            q = p[j] / s
            if q != q:
                undefined = True
                break
        if undefined:
            if out != NULL:
                for j in range(cols):
                    out[j] = <floating>NAN
            return NAN
    inv = 1 / s
    q = pk / s
    if out != NULL:
        g = -1 / q if (q >= lo_c and q <= hi_c) else 0
        for j in range(cols):
            out[j] = -g * q * inv * scale
        out[k] += g * inv * scale
    return -f_log(_clip(q))


cdef double _softmax_crossentropy_row(const floating* t, const floating* z, floating* out,
                            Py_ssize_t cols, floating scale) noexcept nogil:
    """Fused softmax cross-entropy of one row: returns the loss, writes the gradient.
    The loss is complete before out (which may be z) is written; exp(z - m) is formed
    again for the gradient."""
    cdef Py_ssize_t j
    cdef floating m = _row_max(z, cols), s = 0, ts = 0, tz = 0, inv
    cdef double loss
    for j in range(cols):
        s += _exp0(z[j] - m)
        ts += t[j]
        tz += t[j] * (z[j] - m)
    if _finite(ts) and _finite(tz):
        loss = ts * f_log(s) - tz
    else:
        loss = _xent_terms(t, z, m, f_log(s), cols)
    inv = ts / s
    for j in range(cols):
        out[j] = (_exp0(z[j] - m) * inv - t[j]) * scale
    return loss


cdef double _rows_total(int kind, bint logits, const floating* t, const int64_t* labels,
                        const floating* p, const floating* w, floating* out,
                        Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    """Sum over rows of a row loss (kind SPARSE_CROSSENTROPY: integer labels, or
    SOFTMAX_CROSSENTROPY: the fused softmax with one-hot or soft targets t), gradient into
    out when out != NULL; fixed row chunks so the sum does not depend on the thread count."""
    cdef Py_ssize_t per = max(1, CHUNK // cols), nchunks = (rows + per - 1) // per, c, r
    cdef int nt = threads_for(rows * cols)
    cdef double total = 0
    cdef double* partial = NULL
    cdef double scale = 1.0 / rows
    if nt > 1 and nchunks > 1:
        partial = <double*>malloc(nchunks * sizeof(double))
    if partial == NULL:       # one thread (or no memory): the same chunk order, serially
        for c in range(nchunks):
            total += _rows_chunk(kind, logits, t, labels, p, w, out, rows, cols, c, per,
                                 scale)
        return total
    for c in prange(nchunks, nogil=True, num_threads=nt, schedule="static"):
        partial[c] = _rows_chunk(kind, logits, t, labels, p, w, out, rows, cols, c, per,
                                 scale)
    for c in range(nchunks):
        total += partial[c]
    free(partial)
    return total


cdef double _rows_chunk(int kind, bint logits, const floating* t, const int64_t* labels,
                        const floating* p, const floating* w, floating* out,
                        Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t c, Py_ssize_t per,
                        double scale) noexcept nogil:
    cdef Py_ssize_t r
    cdef double s = 0, row
    for r in range(c * per, min((c + 1) * per, rows)):
        if kind == SPARSE_CROSSENTROPY:
            row = _sparse_crossentropy_row(logits, labels[r], p + r * cols,
                                           (out + r * cols) if out != NULL else NULL, cols,
                                           _row_scale(scale, w, r))
        else:
            row = _softmax_crossentropy_row(t + r * cols, p + r * cols, out + r * cols, cols,
                                            _row_scale(scale, w, r))
        s += row if w == NULL else w[r] * row
    return s



# ------------------------------------------------------------ export table

cdef double _value_f32(int loss, double param, const float* t, const float* p,
                       const float* w, Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    return _loss(loss, <float>param, t, p, w, rows, cols)


cdef double _value_f64(int loss, double param, const double* t, const double* p,
                       const double* w, Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    return _loss(loss, param, t, p, w, rows, cols)


cdef void _gradient_f32(int loss, double param, const float* t, const float* p,
                        const float* w, float* out, Py_ssize_t rows,
                        Py_ssize_t cols) noexcept nogil:
    _grad(loss, <float>param, t, p, w, out, rows, cols)


cdef void _gradient_f64(int loss, double param, const double* t, const double* p,
                        const double* w, double* out, Py_ssize_t rows,
                        Py_ssize_t cols) noexcept nogil:
    _grad(loss, param, t, p, w, out, rows, cols)


cdef double _rows_total_f32(int kind, bint logits, const float* t, const int64_t* labels,
                            const float* p, const float* w, float* out, Py_ssize_t rows,
                            Py_ssize_t cols) noexcept nogil:
    return _rows_total(kind, logits, t, labels, p, w, out, rows, cols)


cdef double _rows_total_f64(int kind, bint logits, const double* t, const int64_t* labels,
                            const double* p, const double* w, double* out, Py_ssize_t rows,
                            Py_ssize_t cols) noexcept nogil:
    return _rows_total(kind, logits, t, labels, p, w, out, rows, cols)


cdef loss_table _table
_table.value_f32 = _value_f32
_table.value_f64 = _value_f64
_table.gradient_f32 = _gradient_f32
_table.gradient_f64 = _gradient_f64
_table.rows_total_f32 = _rows_total_f32
_table.rows_total_f64 = _rows_total_f64


def capsule():
    """This variant's entry points: a capsule ("kernels.loss_table") of a loss_table."""
    return PyCapsule_New(<void*>&_table, "kernels.loss_table", NULL)
