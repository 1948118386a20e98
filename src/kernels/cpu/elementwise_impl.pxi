# The elementwise kernels (activations, their backprops, bias add, column sums), one
# source for float32 and float64 (fused `floating`), `include`d by the per-ISA modules
# elementwise_base (baseline flags), elementwise_avx2 (-mavx2 -mfma) and elementwise_avx512 (AVX-512 F/DQ/VL/BW
# + AVX2 + FMA); kernels.cpu.elementwise imports the best one this CPU runs and forwards
# its cdef API to it (see elementwise.pyx).  The math functions come from _fmath.pxd:
# float32 exp/tanh (and, in float64, exp) are branch-free polynomials that gcc
# vectorises at the width of the module's instruction set.
#
# Every kernel works on C-contiguous buffers without the GIL.  Elementwise loops are
# cut into fixed CHUNK-sized pieces shared among OpenMP threads; softmax and column
# sums split by rows or columns so that every output is computed by one thread in a
# fixed order: results do not depend on the thread count.  setup.py compiles these
# modules with -ffp-contract=off (the polynomials use explicit fma where the ISA has
# it), so an element gets the same bits in a loop's vector body as in its scalar tail:
# a result does not depend on where a chunk or a block starts either.
#
# Reductions along a row (softmax's max and sum, its backprop's dot product) use
# DLK_LANES independent partial results combined in a fixed order at the end: the
# same arithmetic for every variant width, and a loop that gcc vectorises (a single
# running float sum cannot be reordered without -ffast-math).

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport INFINITY, exp, expf
from cpython.pycapsule cimport PyCapsule_New

from kernels.cpu._threads cimport threads_for, CHUNK
from kernels.cpu._fmath cimport (f_exp, f_expm1, f_log1p, f_tanh, f_erf, f_abs, f_sigmoid,
                             f_softplus)
from kernels.cpu._fmath cimport f_log
from kernels.cpu.elementwise cimport (ew_table, act_by_rows, ACT_LINEAR, ACT_RELU,
                                   ACT_LEAKY_RELU, ACT_ELU, ACT_SIGMOID, ACT_TANH,
                                   ACT_SOFTMAX, ACT_SOFTPLUS, ACT_GELU, ACT_GELU_TANH,
                                   ACT_RELU6, ACT_SELU, ACT_SILU, ACT_HARD_SIGMOID,
                                   ACT_HARD_SILU, ACT_MISH, ACT_EXPONENTIAL, ACT_SOFTSIGN,
                                   ACT_LOG_SOFTMAX)

cdef double SQRT_2_OVER_PI = 0.7978845608028654
cdef double INV_SQRT_2 = 0.7071067811865476
cdef double INV_SQRT_2PI = 0.3989422804014327
cdef double GELU_C = 0.044715
cdef double SELU_ALPHA = 1.6732632423543772848170429916717   # reference.SELU_ALPHA
cdef double SELU_SCALE = 1.0507009873554804934193349852946   # reference.SELU_SCALE


cdef inline bint _any_above(const floating* x, Py_ssize_t lo, Py_ssize_t hi,
                            floating bound) noexcept nogil:
    """Whether some x[i] of [lo, hi) exceeds bound (a vectorised count, no early exit)."""
    cdef Py_ssize_t i
    cdef int n = 0
    for i in range(lo, hi):
        n += x[i] > bound
    return n != 0


cdef inline floating _exp_full(floating x) noexcept nogil:
    """exp over the whole range: f_exp's polynomial up to 88 (float32), libm beyond
    (where f_exp stops at exp(88)), so that exp(x) overflows to inf where it should."""
    if floating is float:
        return f_exp(x) if x <= 88 else expf(x)
    else:
        return exp(x)


# ------------------------------------------------------------------- forward


cdef void _activate_range(int act, floating param, const floating* x, floating* y,
                          Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    """y[i] = act(x[i]) for i in [lo, hi), one loop per activation so each vectorises."""
    cdef Py_ssize_t i
    cdef floating v, c0 = <floating>SQRT_2_OVER_PI, c1 = <floating>GELU_C
    cdef floating r2 = <floating>INV_SQRT_2, sa, sc, u, ninf = -<floating>INFINITY
    if act == ACT_LINEAR:
        if x != y:
            for i in range(lo, hi):
                y[i] = x[i]
    elif act == ACT_RELU:
        for i in range(lo, hi):
            v = x[i]
            y[i] = 0 if v <= 0 else v          # NaN stays NaN
    elif act == ACT_LEAKY_RELU:
        for i in range(lo, hi):
            v = x[i]
            y[i] = v if v > 0 else param * v
    elif act == ACT_ELU:
        for i in range(lo, hi):
            v = x[i]
            y[i] = v if v > 0 else param * f_expm1(v)
    elif act == ACT_SIGMOID:
        for i in range(lo, hi):
            y[i] = f_sigmoid(x[i])
    elif act == ACT_TANH:
        for i in range(lo, hi):
            y[i] = f_tanh(x[i])
    elif act == ACT_SOFTPLUS:
        for i in range(lo, hi):
            y[i] = f_softplus(x[i])
    elif act == ACT_GELU:
        for i in range(lo, hi):
            v = x[i]
            y[i] = <floating>0.5 * v * (1 + f_erf(v * r2))
    elif act == ACT_GELU_TANH:
        for i in range(lo, hi):
            v = x[i]
            y[i] = <floating>0.5 * v * (1 + f_tanh(c0 * (v + c1 * v * v * v)))
    elif act == ACT_RELU6:
        for i in range(lo, hi):
            v = x[i]
            y[i] = 0 if v <= 0 else (6 if v > 6 else v)      # NaN stays NaN
    elif act == ACT_SELU:
        sa = <floating>(SELU_SCALE * SELU_ALPHA)
        sc = <floating>SELU_SCALE
        for i in range(lo, hi):
            v = x[i]
            y[i] = sc * v if v > 0 else sa * f_expm1(0 if v >= 0 else v)     # NaN kept
    elif act == ACT_SILU:
        for i in range(lo, hi):
            v = x[i]
            v = 0 if v == ninf else v           # its limit 0 at -inf (not -inf * 0)
            y[i] = v * f_sigmoid(v)
    elif act == ACT_HARD_SIGMOID:
        for i in range(lo, hi):
            v = x[i] / 6 + <floating>0.5
            y[i] = 0 if v <= 0 else (1 if v >= 1 else v)
    elif act == ACT_HARD_SILU:
        for i in range(lo, hi):
            u = x[i]
            u = 0 if u == ninf else u
            v = u / 6 + <floating>0.5
            y[i] = u * (0 if v <= 0 else (1 if v >= 1 else v))
    elif act == ACT_MISH:
        for i in range(lo, hi):
            v = x[i]
            v = 0 if v == ninf else v
            y[i] = v * f_tanh(f_softplus(v))
    elif act == ACT_EXPONENTIAL:
        if _any_above(x, lo, hi, 88):      # exp overflows past ~88.7: libm's, exactly
            for i in range(lo, hi):
                y[i] = _exp_full(x[i])
        else:                              # the vectorised polynomial
            for i in range(lo, hi):
                y[i] = f_exp(x[i])
    elif act == ACT_SOFTSIGN:
        for i in range(lo, hi):
            v = x[i]
            y[i] = v / (1 + f_abs(v))


cdef enum:
    DLK_LANES = 16     # partial results of the row reductions (fixed: see the top;
                       # the loops step by 16 literally: keep equal)


cdef inline floating _row_max(const floating* x, Py_ssize_t cols) noexcept nogil:
    """max of x[0:cols]; a NaN anywhere makes it NaN (then the whole row is NaN).  In
    DLK_LANES strided partial maxima (max is exact: same value as one running max)."""
    cdef Py_ssize_t j, k, nb = cols - cols % DLK_LANES
    cdef floating m, v
    cdef floating mv[DLK_LANES]
    cdef floating nv[DLK_LANES]     # NaN seen in a lane: the sum of v - v (0, or NaN)
    if nb == 0:
        m = x[0]
        for j in range(1, cols):
            if x[j] > m or x[j] != x[j]:
                m = x[j]
        return m
    # branch-free (vectorised): a plain max per lane, NaN tracked apart.  (The form
    # "v > m or v != v" compiled to a branch per lane, twice as slow on long rows.)
    for k in range(DLK_LANES):
        mv[k] = x[k]
        nv[k] = 0
    for j in range(DLK_LANES, nb, 16):
        for k in range(DLK_LANES):
            v = x[j + k]
            mv[k] = v if v > mv[k] else mv[k]
            nv[k] += v - v           # NaN for a NaN v (inf - inf too: see below)
    for k in range(DLK_LANES):
        # v - v is NaN for +-inf as well: a lane whose max is not NaN gets it only
        # when the lane held a NaN or an infinity; check which, exactly
        if nv[k] != nv[k] and mv[k] == mv[k]:
            j = DLK_LANES + k
            while j < nb:
                if x[j] != x[j]:
                    mv[k] = x[j]
                    break
                j += DLK_LANES
    m = mv[0]
    for k in range(1, DLK_LANES):
        m = mv[k] if (mv[k] > m or mv[k] != mv[k]) else m
    for j in range(nb, cols):
        m = x[j] if (x[j] > m or x[j] != x[j]) else m
    return m


cdef inline floating _lane_sum(const floating* x, Py_ssize_t cols) noexcept nogil:
    """sum of x[0:cols]: DLK_LANES strided partial sums, combined pairwise, then the
    remaining cols % DLK_LANES elements in order.  Fixed order, vectorisable."""
    cdef Py_ssize_t j, k, nb = cols - cols % DLK_LANES
    cdef floating s = 0
    cdef floating sv[DLK_LANES]
    if nb > 0:
        for k in range(DLK_LANES):
            sv[k] = x[k]
        for j in range(DLK_LANES, nb, 16):
            for k in range(DLK_LANES):
                sv[k] += x[j + k]
        for k in range(DLK_LANES // 2):
            sv[k] += sv[k + DLK_LANES // 2]
        for k in range(DLK_LANES // 4):
            sv[k] += sv[k + DLK_LANES // 4]
        for k in range(DLK_LANES // 8):
            sv[k] += sv[k + DLK_LANES // 8]
        s = sv[0] + sv[1]
    for j in range(nb, cols):
        s += x[j]
    return s


cdef void _softmax_row(const floating* x, floating* y, Py_ssize_t cols) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating m = _row_max(x, cols), s = 0, e
    if cols < DLK_LANES:
        for j in range(cols):
            e = f_exp(x[j] - m)
            y[j] = e
            s += e
    else:
        for j in range(cols):
            y[j] = f_exp(x[j] - m)
        s = _lane_sum(y, cols)
    s = 1 / s
    for j in range(cols):
        y[j] *= s


cdef inline floating _lane_sum_exp(const floating* x, floating m,
                                   Py_ssize_t cols) noexcept nogil:
    """sum of exp(x[j] - m), in _lane_sum's order (nothing stored: x may be the output)."""
    cdef Py_ssize_t j, k, nb = cols - cols % DLK_LANES
    cdef floating s = 0
    cdef floating sv[DLK_LANES]
    if nb > 0:
        for k in range(DLK_LANES):
            sv[k] = f_exp(x[k] - m)
        for j in range(DLK_LANES, nb, 16):
            for k in range(DLK_LANES):
                sv[k] += f_exp(x[j + k] - m)
        for k in range(DLK_LANES // 2):
            sv[k] += sv[k + DLK_LANES // 2]
        for k in range(DLK_LANES // 4):
            sv[k] += sv[k + DLK_LANES // 4]
        for k in range(DLK_LANES // 8):
            sv[k] += sv[k + DLK_LANES // 8]
        s = sv[0] + sv[1]
    for j in range(nb, cols):
        s += f_exp(x[j] - m)
    return s


cdef void _log_softmax_row(const floating* x, floating* y, Py_ssize_t cols) noexcept nogil:
    """y = (x - m) - log(sum(exp(x - m))), m the row's max (y may be x)."""
    cdef Py_ssize_t j
    cdef floating m = _row_max(x, cols)
    cdef floating s = f_log(_lane_sum_exp(x, m, cols))
    for j in range(cols):
        y[j] = (x[j] - m) - s


cdef inline void _row_act(int act, const floating* x, floating* y,
                          Py_ssize_t cols) noexcept nogil:
    if act == ACT_SOFTMAX:
        _softmax_row(x, y, cols)
    else:
        _log_softmax_row(x, y, cols)


cdef void _activate(int act, floating param, const floating* x, floating* y,
                    Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    cdef Py_ssize_t n = rows * cols, nchunks, c, r
    cdef int nt = threads_for(n)
    if act_by_rows(act):
        if nt == 1:
            for r in range(rows):
                _row_act(act, x + r * cols, y + r * cols, cols)
        else:
            for r in prange(rows, nogil=True, num_threads=nt, schedule="static"):
                _row_act(act, x + r * cols, y + r * cols, cols)
        return
    if nt == 1:
        _activate_range(act, param, x, y, 0, n)
        return
    nchunks = (n + CHUNK - 1) // CHUNK
    for c in prange(nchunks, nogil=True, num_threads=nt, schedule="static"):
        _activate_range(act, param, x, y, c * CHUNK, min((c + 1) * CHUNK, n))


cdef void _ew_activate_f32(int act, double param, const float* x, float* y,
                       Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    _activate(act, <float>param, x, y, rows, cols)


cdef void _ew_activate_f64(int act, double param, const double* x, double* y,
                       Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    _activate(act, param, x, y, rows, cols)


cdef void _activate_rows(int act, floating param, const floating* x, Py_ssize_t ldx,
                         floating* y, Py_ssize_t ldy, Py_ssize_t rows,
                         Py_ssize_t cols) noexcept nogil:
    """act over a strided block of rows, on the calling thread (see activate_rows_*)."""
    cdef Py_ssize_t r
    if act_by_rows(act):
        for r in range(rows):
            _row_act(act, x + r * ldx, y + r * ldy, cols)
    elif ldx == cols and ldy == cols:
        _activate_range(act, param, x, y, 0, rows * cols)
    else:
        for r in range(rows):
            _activate_range(act, param, x + r * ldx, y + r * ldy, 0, cols)


cdef void _ew_activate_rows_f32(int act, double param, const float* x, Py_ssize_t ldx,
                            float* y, Py_ssize_t ldy, Py_ssize_t rows,
                            Py_ssize_t cols) noexcept nogil:
    _activate_rows(act, <float>param, x, ldx, y, ldy, rows, cols)


cdef void _ew_activate_rows_f64(int act, double param, const double* x, Py_ssize_t ldx,
                            double* y, Py_ssize_t ldy, Py_ssize_t rows,
                            Py_ssize_t cols) noexcept nogil:
    _activate_rows(act, param, x, ldx, y, ldy, rows, cols)


# ------------------------------------------------------------------ backprop

cdef void _backprop_range(int act, floating param, const floating* dy, const floating* s,
                          floating* out, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    """out[i] = dy[i] * act'(.) from the saved output (the input for gelu).

    gelu's second term (x * phi(x), or the one with 1 - t^2) is 0 where it would be
    inf * 0, as in the reference: gelu'(+inf) = 1, gelu'(-inf) = 0, the limits."""
    cdef Py_ssize_t i
    cdef floating v, t, u, s2, c0 = <floating>SQRT_2_OVER_PI, c1 = <floating>GELU_C
    cdef floating r2 = <floating>INV_SQRT_2, rpi = <floating>INV_SQRT_2PI, sa, sc
    cdef floating inf = <floating>INFINITY
    if act == ACT_LINEAR:
        if dy != out:
            for i in range(lo, hi):
                out[i] = dy[i]
    elif act == ACT_RELU:
        for i in range(lo, hi):
            out[i] = dy[i] if s[i] > 0 else 0
    elif act == ACT_LEAKY_RELU:
        for i in range(lo, hi):
            out[i] = dy[i] if s[i] > 0 else param * dy[i]
    elif act == ACT_ELU:
        for i in range(lo, hi):
            v = s[i]
            out[i] = dy[i] if v > 0 else dy[i] * (v + param)
    elif act == ACT_SIGMOID:
        for i in range(lo, hi):
            v = s[i]
            out[i] = dy[i] * v * (1 - v)
    elif act == ACT_TANH:
        for i in range(lo, hi):
            v = s[i]
            out[i] = dy[i] * (1 - v * v)
    elif act == ACT_SOFTPLUS:
        for i in range(lo, hi):
            out[i] = dy[i] * -f_expm1(-s[i])
    elif act == ACT_GELU:
        for i in range(lo, hi):
            v = s[i]
            u = v * rpi * f_exp(<floating>-0.5 * v * v)
            out[i] = dy[i] * (<floating>0.5 * (1 + f_erf(v * r2))
                              + (0 if f_abs(v) == inf else u))
    elif act == ACT_GELU_TANH:
        for i in range(lo, hi):
            v = s[i]
            t = f_tanh(c0 * (v + c1 * v * v * v))
            s2 = 1 - t * t
            u = <floating>0.5 * v * s2 * c0 * (1 + 3 * c1 * v * v)
            out[i] = dy[i] * (<floating>0.5 * (1 + t) + (0 if s2 == 0 else u))
    elif act == ACT_RELU6:
        for i in range(lo, hi):
            v = s[i]
            out[i] = dy[i] if (v > 0 and v < 6) else 0
    elif act == ACT_SELU:
        sa = <floating>(SELU_SCALE * SELU_ALPHA)
        sc = <floating>SELU_SCALE
        for i in range(lo, hi):
            v = s[i]
            out[i] = sc * dy[i] if v > 0 else dy[i] * (v + sa)
    elif act == ACT_SILU:
        # s + x s (1 - s), the second term 0 at x = +-inf (its limit); s exactly 0 at
        # -inf (float32's f_sigmoid stops at the smallest normal there)
        for i in range(lo, hi):
            v = s[i]
            t = 0 if v == -inf else f_sigmoid(v)
            out[i] = dy[i] * (t + (0 if f_abs(v) == inf else v * t * (1 - t)))
    elif act == ACT_HARD_SIGMOID:
        for i in range(lo, hi):
            v = s[i]
            out[i] = dy[i] / 6 if (v > 0 and v < 1) else 0
    elif act == ACT_HARD_SILU:
        for i in range(lo, hi):
            v = s[i]
            t = v / 6 + <floating>0.5
            out[i] = dy[i] * (0 if t <= 0 else (1 if t >= 1 else t + v / 6))
    elif act == ACT_MISH:
        for i in range(lo, hi):
            v = s[i]
            t = 0 if v == -inf else f_tanh(f_softplus(v))     # exactly 0 at -inf
            out[i] = dy[i] * (t + (0 if f_abs(v) == inf else v * (1 - t * t) * f_sigmoid(v)))
    elif act == ACT_EXPONENTIAL:
        for i in range(lo, hi):
            out[i] = dy[i] * s[i]
    elif act == ACT_SOFTSIGN:
        for i in range(lo, hi):
            v = 1 - f_abs(s[i])
            out[i] = dy[i] * (v * v)


cdef void _backprop_log_softmax_row(const floating* dy, const floating* y, floating* out,
                                    Py_ssize_t cols) noexcept nogil:
    """out = dy - exp(y) * sum(dy) (out may be dy or y: each element read before it is
    written, the sum complete first)."""
    cdef Py_ssize_t j
    cdef floating s = _lane_sum(dy, cols)
    if _any_above(y, 0, cols, 88):    # not a log_softmax output (those are <= 0)
        for j in range(cols):
            out[j] = dy[j] - _exp_full(y[j]) * s
    else:       # the vectorised polynomial, exactly 0 at -inf (where float32's f_exp
        # stops at the smallest normal: 0 * inf is NaN, as the reference's)
        for j in range(cols):
            out[j] = dy[j] - (0 if y[j] == -INFINITY else f_exp(y[j])) * s


cdef void _backprop_softmax_row(const floating* dy, const floating* y, floating* out,
                                Py_ssize_t cols) noexcept nogil:
    cdef Py_ssize_t j, k, nb = cols - cols % DLK_LANES
    cdef floating s = 0
    cdef floating sv[DLK_LANES]
    if nb > 0:      # s = sum_j dy_j y_j in lanes, as _lane_sum
        for k in range(DLK_LANES):
            sv[k] = dy[k] * y[k]
        for j in range(DLK_LANES, nb, 16):
            for k in range(DLK_LANES):
                sv[k] += dy[j + k] * y[j + k]
        for k in range(DLK_LANES // 2):
            sv[k] += sv[k + DLK_LANES // 2]
        for k in range(DLK_LANES // 4):
            sv[k] += sv[k + DLK_LANES // 4]
        for k in range(DLK_LANES // 8):
            sv[k] += sv[k + DLK_LANES // 8]
        s = sv[0] + sv[1]
    for j in range(nb, cols):
        s += dy[j] * y[j]
    for j in range(cols):
        out[j] = y[j] * (dy[j] - s)


cdef inline void _backprop_row(int act, const floating* dy, const floating* y,
                               floating* out, Py_ssize_t cols) noexcept nogil:
    if act == ACT_SOFTMAX:
        _backprop_softmax_row(dy, y, out, cols)
    else:
        _backprop_log_softmax_row(dy, y, out, cols)


cdef void _backprop(int act, floating param, const floating* dy, const floating* s,
                    floating* out, Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    cdef Py_ssize_t n = rows * cols, nchunks, c, r
    cdef int nt = threads_for(n)
    if act_by_rows(act):
        if nt == 1:
            for r in range(rows):
                _backprop_row(act, dy + r * cols, s + r * cols, out + r * cols, cols)
        else:
            for r in prange(rows, nogil=True, num_threads=nt, schedule="static"):
                _backprop_row(act, dy + r * cols, s + r * cols, out + r * cols, cols)
        return
    if nt == 1:
        _backprop_range(act, param, dy, s, out, 0, n)
        return
    nchunks = (n + CHUNK - 1) // CHUNK
    for c in prange(nchunks, nogil=True, num_threads=nt, schedule="static"):
        _backprop_range(act, param, dy, s, out, c * CHUNK, min((c + 1) * CHUNK, n))


cdef void _ew_backprop_f32(int act, double param, const float* dy, const float* saved,
                       float* out, Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    _backprop(act, <float>param, dy, saved, out, rows, cols)


cdef void _ew_backprop_f64(int act, double param, const double* dy, const double* saved,
                       double* out, Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    _backprop(act, param, dy, saved, out, rows, cols)


# --------------------------------------------------------- bias, column sums

cdef void _bias_add(const floating* x, const floating* b, floating* out,
                    Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    cdef Py_ssize_t r, j
    cdef int nt = threads_for(rows * cols)
    if nt == 1:
        for r in range(rows):
            for j in range(cols):
                out[r * cols + j] = x[r * cols + j] + b[j]
    else:
        for r in prange(rows, nogil=True, num_threads=nt, schedule="static"):
            for j in range(cols):
                out[r * cols + j] = x[r * cols + j] + b[j]


cdef void _column_sums_block(const floating* x, floating* out, Py_ssize_t rows,
                             Py_ssize_t cols, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    """out[j] = sum_i x[i, j] for j in [lo, hi), rows added in order (vectorised over j)."""
    cdef Py_ssize_t r, j
    for j in range(lo, hi):
        out[j] = x[j]
    for r in range(1, rows):
        for j in range(lo, hi):
            out[j] += x[r * cols + j]


cdef void _column_sums(const floating* x, floating* out, Py_ssize_t rows,
                       Py_ssize_t cols) noexcept nogil:
    # Parallel over blocks of columns: each sum is made by one thread in row order.
    cdef Py_ssize_t block = 64, nblocks = (cols + 63) // 64, c
    cdef int nt = threads_for(rows * cols)
    if nt == 1 or nblocks == 1:
        _column_sums_block(x, out, rows, cols, 0, cols)
    else:
        for c in prange(nblocks, nogil=True, num_threads=nt, schedule="static"):
            _column_sums_block(x, out, rows, cols, c * block, min((c + 1) * block, cols))


cdef void _ew_column_sums_f32(const float* x, float* out, Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    _column_sums(x, out, rows, cols)


cdef void _ew_column_sums_f64(const double* x, double* out, Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    _column_sums(x, out, rows, cols)


cdef void _ew_bias_add_f32(const float* x, const float* b, float* out, Py_ssize_t rows,
                           Py_ssize_t cols) noexcept nogil:
    _bias_add(x, b, out, rows, cols)


cdef void _ew_bias_add_f64(const double* x, const double* b, double* out, Py_ssize_t rows,
                           Py_ssize_t cols) noexcept nogil:
    _bias_add(x, b, out, rows, cols)


# ------------------------------------------- backprop fused with the bias gradient

cdef void _backprop_colsum_block(int act, floating param, const floating* dy,
                                 const floating* s, floating* dz, floating* db,
                                 Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t lo,
                                 Py_ssize_t hi) noexcept nogil:
    """dz[:, lo:hi] = dy * act'(s) row by row, and db[lo:hi] = its column sums, the rows
    added in order (the arithmetic of _backprop_range and _column_sums_block)."""
    cdef Py_ssize_t r, j, o
    for r in range(rows):
        o = r * cols
        _backprop_range(act, param, dy + o, s + o, dz + o, lo, hi)
        if r == 0:
            for j in range(lo, hi):
                db[j] = dz[j]
        else:
            for j in range(lo, hi):
                db[j] += dz[o + j]


cdef void _backprop_colsum(int act, floating param, const floating* dy, const floating* s,
                           floating* dz, floating* db, Py_ssize_t rows,
                           Py_ssize_t cols) noexcept nogil:
    # Parallel over blocks of columns (as _column_sums): each db[j] is made by one thread
    # with the rows in order, so the result does not depend on the thread count.
    cdef Py_ssize_t block = 64, nblocks = (cols + 63) // 64, c
    cdef int nt
    if db == NULL:
        _backprop(act, param, dy, s, dz, rows, cols)
        return
    if act_by_rows(act):
        # needs whole rows: two passes
        _backprop(act, param, dy, s, dz, rows, cols)
        _column_sums(dz, db, rows, cols)
        return
    nt = threads_for(rows * cols)
    if nt == 1 or nblocks == 1:
        _backprop_colsum_block(act, param, dy, s, dz, db, rows, cols, 0, cols)
    else:
        for c in prange(nblocks, nogil=True, num_threads=nt, schedule="static"):
            _backprop_colsum_block(act, param, dy, s, dz, db, rows, cols, c * block,
                                   min((c + 1) * block, cols))


cdef void _ew_backprop_colsum_f32(int act, double param, const float* dy, const float* saved,
                              float* dz, float* db, Py_ssize_t rows,
                              Py_ssize_t cols) noexcept nogil:
    _backprop_colsum(act, <float>param, dy, saved, dz, db, rows, cols)


cdef void _ew_backprop_colsum_f64(int act, double param, const double* dy,
                              const double* saved, double* dz, double* db,
                              Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    _backprop_colsum(act, param, dy, saved, dz, db, rows, cols)


# ------------------------------------------------------------ export table

cdef ew_table _table
_table.activate_f32 = _ew_activate_f32
_table.activate_f64 = _ew_activate_f64
_table.backprop_f32 = _ew_backprop_f32
_table.backprop_f64 = _ew_backprop_f64
_table.column_sums_f32 = _ew_column_sums_f32
_table.column_sums_f64 = _ew_column_sums_f64
_table.bias_add_f32 = _ew_bias_add_f32
_table.bias_add_f64 = _ew_bias_add_f64
_table.activate_rows_f32 = _ew_activate_rows_f32
_table.activate_rows_f64 = _ew_activate_rows_f64
_table.backprop_colsum_f32 = _ew_backprop_colsum_f32
_table.backprop_colsum_f64 = _ew_backprop_colsum_f64


def capsule():
    """This variant's entry points: a capsule ("kernels.ew_table") of an ew_table."""
    return PyCapsule_New(<void*>&_table, "kernels.ew_table", NULL)
