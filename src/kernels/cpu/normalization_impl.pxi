# The normalisation kernels (layer normalisation forward and backward), one source for
# float32 and float64 (fused `floating`), `include`d by the per-ISA modules
# normalization_base (baseline flags), normalization_avx2 (-mavx2 -mfma) and
# normalization_avx512; kernels.cpu.normalization imports the best one this CPU runs
# and forwards to it (see normalization.pyx), as the other families do.
#
# Rows are independent: the forward pass and dx split rows among OpenMP threads.  A
# row's mean and variance are summed in double precision, in fixed partial sums.
# dgamma and dbeta are column sums over the rows: each column is summed by one thread
# with the rows in order (as ``column_sums``), so every result is the same for any
# thread count.

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt
from libc.stdlib cimport malloc, free
from cpython.pycapsule cimport PyCapsule_New

from kernels.cpu._threads cimport threads_for
from kernels.cpu.normalization cimport norm_table


cdef enum:
    LANES = 8       # partial sums of a row (the loops step by 8: keep equal)


cdef inline double _combine(double* acc) noexcept nogil:
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))


cdef inline void _stats(const floating* x, Py_ssize_t d, double eps, floating* mean,
                        floating* r) noexcept nogil:
    """A row's mean and 1 / sqrt(biased variance + eps): two passes, sums in double in
    LANES strided partial sums combined in a fixed order (a loop gcc vectorises), then
    the last d % LANES terms in order."""
    cdef Py_ssize_t j, k, nb = d - d % LANES
    cdef double acc[LANES]
    cdef double s = 0, v = 0, t, m
    for k in range(LANES):
        acc[k] = 0
    for j in range(0, nb, 8):
        for k in range(LANES):
            acc[k] += x[j + k]
    for j in range(nb, d):
        s += x[j]
    m = (_combine(acc) + s) / d
    for k in range(LANES):
        acc[k] = 0
    for j in range(0, nb, 8):
        for k in range(LANES):
            t = x[j + k] - m
            acc[k] += t * t
    for j in range(nb, d):
        t = x[j] - m
        v += t * t
    mean[0] = <floating>m
    r[0] = <floating>(1.0 / sqrt((_combine(acc) + v) / d + eps))


cdef void _forward_row(const floating* x, const floating* gamma, const floating* beta,
                       floating* y, Py_ssize_t d, double eps) noexcept nogil:
    """y = x * inv + (beta - mean * inv), inv = r * gamma (Keras's order); y may be x.
    One loop per case of gamma/beta given, so that each vectorises."""
    cdef Py_ssize_t j
    cdef floating m, r, inv
    _stats(x, d, eps, &m, &r)
    if gamma != NULL and beta != NULL:
        for j in range(d):
            inv = r * gamma[j]
            y[j] = x[j] * inv + (beta[j] - m * inv)
    elif gamma != NULL:
        for j in range(d):
            inv = r * gamma[j]
            y[j] = x[j] * inv + (-m * inv)
    elif beta != NULL:
        for j in range(d):
            y[j] = x[j] * r + (beta[j] - m * r)
    else:
        for j in range(d):
            y[j] = x[j] * r + (-m * r)


cdef void _dx_row(const floating* dy, const floating* x, const floating* gamma,
                  floating m, floating r, floating* dx, Py_ssize_t d) noexcept nogil:
    """dx = r (g - mean(g) - xhat mean(g xhat)), g = dy * gamma; dx may be dy or x
    (both sums are complete before it is written, element j read before written).  The
    sums in double, in LANES partial sums as _stats."""
    cdef Py_ssize_t j, k, nb = d - d % LANES
    cdef double ag[LANES]
    cdef double agx[LANES]
    cdef double sg = 0, sgx = 0
    cdef floating g, xh, mg, mgx
    for k in range(LANES):
        ag[k] = 0
        agx[k] = 0
    if gamma != NULL:
        for j in range(0, nb, 8):
            for k in range(LANES):
                g = dy[j + k] * gamma[j + k]
                ag[k] += g
                agx[k] += g * ((x[j + k] - m) * r)
        for j in range(nb, d):
            g = dy[j] * gamma[j]
            sg += g
            sgx += g * ((x[j] - m) * r)
    else:
        for j in range(0, nb, 8):
            for k in range(LANES):
                g = dy[j + k]
                ag[k] += g
                agx[k] += g * ((x[j + k] - m) * r)
        for j in range(nb, d):
            g = dy[j]
            sg += g
            sgx += g * ((x[j] - m) * r)
    mg = <floating>((_combine(ag) + sg) / d)
    mgx = <floating>((_combine(agx) + sgx) / d)
    if gamma != NULL:
        for j in range(d):
            xh = (x[j] - m) * r
            dx[j] = r * (dy[j] * gamma[j] - mg - xh * mgx)
    else:
        for j in range(d):
            xh = (x[j] - m) * r
            dx[j] = r * (dy[j] - mg - xh * mgx)


cdef void _param_grads(const floating* dy, const floating* x, const floating* mean,
                       const floating* rr, floating* dgamma, floating* dbeta,
                       Py_ssize_t n, Py_ssize_t d, Py_ssize_t lo,
                       Py_ssize_t hi) noexcept nogil:
    """dgamma[j] = sum_i dy[i, j] xhat[i, j], dbeta[j] = sum_i dy[i, j] for the columns
    j in [lo, hi), the rows added in order."""
    cdef Py_ssize_t i, j
    cdef floating t
    for j in range(lo, hi):
        dgamma[j] = 0
        dbeta[j] = 0
    for i in range(n):
        for j in range(lo, hi):
            t = dy[i * d + j]
            dgamma[j] += t * ((x[i * d + j] - mean[i]) * rr[i])
            dbeta[j] += t



cdef void _forward(const floating* x, const floating* g, const floating* b, floating* out,
                   Py_ssize_t n, Py_ssize_t d, double epsilon) noexcept nogil:
    cdef Py_ssize_t i
    cdef int nt = threads_for(n * d)
    if nt == 1:
        for i in range(n):
            _forward_row(x + i * d, g, b, out + i * d, d, epsilon)
    else:
        for i in prange(n, num_threads=nt, schedule="static"):
            _forward_row(x + i * d, g, b, out + i * d, d, epsilon)


cdef int _backward(const floating* dy, const floating* x, const floating* g,
                   floating* dx, floating* dgamma, floating* dbeta, Py_ssize_t n,
                   Py_ssize_t d, double epsilon) noexcept nogil:
    """Returns -1 when the row statistics cannot be allocated, else 0."""
    cdef Py_ssize_t i, c
    cdef Py_ssize_t block = 64, nblocks = (d + 63) // 64
    cdef int nt = threads_for(n * d)
    cdef floating* mean = <floating*>malloc(2 * n * sizeof(floating))
    cdef floating* rr
    if mean == NULL:
        return -1
    rr = mean + n
    # the rows' statistics, then the parameters' gradients (before dx, which may be dy
    # or x), then dx
    if nt == 1:
        for i in range(n):
            _stats(x + i * d, d, epsilon, &mean[i], &rr[i])
        _param_grads(dy, x, mean, rr, dgamma, dbeta, n, d, 0, d)
        for i in range(n):
            _dx_row(dy + i * d, x + i * d, g, mean[i], rr[i], dx + i * d, d)
    else:
        for i in prange(n, num_threads=nt, schedule="static"):
            _stats(x + i * d, d, epsilon, &mean[i], &rr[i])
        for c in prange(nblocks, num_threads=nt, schedule="static"):
            _param_grads(dy, x, mean, rr, dgamma, dbeta, n, d, c * block,
                         min((c + 1) * block, d))
        for i in prange(n, num_threads=nt, schedule="static"):
            _dx_row(dy + i * d, x + i * d, g, mean[i], rr[i], dx + i * d, d)
    free(mean)
    return 0


# ------------------------------------------------------------ export table

cdef void _forward_f32(const float* x, const float* g, const float* b, float* out,
                       Py_ssize_t n, Py_ssize_t d, double eps) noexcept nogil:
    _forward(x, g, b, out, n, d, eps)


cdef void _forward_f64(const double* x, const double* g, const double* b, double* out,
                       Py_ssize_t n, Py_ssize_t d, double eps) noexcept nogil:
    _forward(x, g, b, out, n, d, eps)


cdef int _backward_f32(const float* dy, const float* x, const float* g, float* dx,
                       float* dgamma, float* dbeta, Py_ssize_t n, Py_ssize_t d,
                       double eps) noexcept nogil:
    return _backward(dy, x, g, dx, dgamma, dbeta, n, d, eps)


cdef int _backward_f64(const double* dy, const double* x, const double* g, double* dx,
                       double* dgamma, double* dbeta, Py_ssize_t n, Py_ssize_t d,
                       double eps) noexcept nogil:
    return _backward(dy, x, g, dx, dgamma, dbeta, n, d, eps)


cdef norm_table _table
_table.forward_f32 = _forward_f32
_table.forward_f64 = _forward_f64
_table.backward_f32 = _backward_f32
_table.backward_f64 = _backward_f64


def capsule():
    """This variant's entry points: a capsule ("kernels.norm_table") of a norm_table."""
    return PyCapsule_New(<void*>&_table, "kernels.norm_table", NULL)
