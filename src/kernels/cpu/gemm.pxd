# The GEMM contract shared by every Cython module that multiplies matrices.
#
# C = alpha * A @ B + beta * C, with A of shape (m, k), B of shape (k, n), C of shape
# (m, n).  Every matrix is given as a pointer to its element [0, 0] plus a row stride
# and a column stride counted in elements (BLIS style), so a transpose is only a swap
# of the two strides and never a copy.  Strides may be negative or zero-free
# arbitrary values; C must not overlap A or B (checked at the Python boundary).
# When beta == 0, C is only written, never read (NaN already in C does not leak).
# The caller guarantees m, n, k >= 1 and 1 <= num_threads.

from cython cimport floating

from kernels.cpu._threads cimport threads_for
from kernels.cpu._patches cimport dlk_patches

ctypedef void (*sgemm_fn)(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, float alpha,
                          const float* a, Py_ssize_t rsa, Py_ssize_t csa,
                          const float* b, Py_ssize_t rsb, Py_ssize_t csb,
                          float beta, float* c, Py_ssize_t rsc, Py_ssize_t csc,
                          int num_threads) noexcept nogil

ctypedef void (*dgemm_fn)(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, double alpha,
                          const double* a, Py_ssize_t rsa, Py_ssize_t csa,
                          const double* b, Py_ssize_t rsb, Py_ssize_t csb,
                          double beta, double* c, Py_ssize_t rsc, Py_ssize_t csc,
                          int num_threads) noexcept nogil

# The dense layer's fused GEMM: C = A @ B + bias, then Y = act(C), the bias and the
# activation applied to each block of C as soon as its k-sum is complete (while it is
# in cache) instead of in separate passes over C.
#   C: row-major (column stride 1, row stride rsc), only written (alpha 1, beta 0);
#   bias: NULL (none) or n values, bias[j] added to column j;
#   act, param: an activation id of kernels.cpu.elementwise (ACT_*) and its parameter;
#   Y: row-major (column stride 1, row stride rsy); Y = C (same pointer and stride)
#      applies the activation in place, else C keeps z = A @ B + bias (the layer's
#      pre-activation) and Y must not overlap C, A or B.
# Returns 1, or 0 when the activation was left to the caller (softmax, when the work
# split does not give whole rows of C to one thread): then C holds z and the caller
# applies act(C) -> Y itself.  The bias is always applied.  The result is the same bits
# as the GEMM followed by the separate bias and activation passes, for any num_threads.
ctypedef int (*sgemm_ep_fn)(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                            const float* a, Py_ssize_t rsa, Py_ssize_t csa,
                            const float* b, Py_ssize_t rsb, Py_ssize_t csb,
                            float* c, Py_ssize_t rsc, const float* bias, int act,
                            double param, float* y, Py_ssize_t rsy,
                            int num_threads) noexcept nogil

ctypedef int (*dgemm_ep_fn)(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                            const double* a, Py_ssize_t rsa, Py_ssize_t csa,
                            const double* b, Py_ssize_t rsb, Py_ssize_t csb,
                            double* c, Py_ssize_t rsc, const double* bias, int act,
                            double param, double* y, Py_ssize_t rsy,
                            int num_threads) noexcept nogil

# The convolution's GEMM: C = A @ B + beta * C where A (pa not NULL; a unused) or B
# (pb not NULL; b unused) is a convolution's patch matrix (dlk_patches.h), gathered
# from the image while the GEMM packs its blocks -- no im2col buffer.  Then the dense
# epilogue of sgemm_ep (bias, act into row-major Y; C row-major, csc 1) unless bias is
# NULL, act is ACT_LINEAR and y == c.  Returns 1, 0 (as sgemm_ep: activation left to
# the caller), or -1 when the packing buffer could not be allocated.
ctypedef int (*sgemm_px_fn)(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                            const float* a, Py_ssize_t rsa, Py_ssize_t csa,
                            const dlk_patches* pa,
                            const float* b, Py_ssize_t rsb, Py_ssize_t csb,
                            const dlk_patches* pb,
                            float beta, float* c, Py_ssize_t rsc, Py_ssize_t csc,
                            const float* bias, int act, double param, float* y,
                            Py_ssize_t rsy, int num_threads) noexcept nogil

ctypedef int (*dgemm_px_fn)(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                            const double* a, Py_ssize_t rsa, Py_ssize_t csa,
                            const dlk_patches* pa,
                            const double* b, Py_ssize_t rsb, Py_ssize_t csb,
                            const dlk_patches* pb,
                            double beta, double* c, Py_ssize_t rsc, Py_ssize_t csc,
                            const double* bias, int act, double param, double* y,
                            Py_ssize_t rsy, int num_threads) noexcept nogil

# The implementation chosen at import time for this CPU (see gemm.pyx).
cdef void sgemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, float alpha,
                const float* a, Py_ssize_t rsa, Py_ssize_t csa,
                const float* b, Py_ssize_t rsb, Py_ssize_t csb,
                float beta, float* c, Py_ssize_t rsc, Py_ssize_t csc,
                int num_threads) noexcept nogil

cdef void dgemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, double alpha,
                const double* a, Py_ssize_t rsa, Py_ssize_t csa,
                const double* b, Py_ssize_t rsb, Py_ssize_t csb,
                double beta, double* c, Py_ssize_t rsc, Py_ssize_t csc,
                int num_threads) noexcept nogil

cdef int sgemm_ep(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                  const float* a, Py_ssize_t rsa, Py_ssize_t csa,
                  const float* b, Py_ssize_t rsb, Py_ssize_t csb,
                  float* c, Py_ssize_t rsc, const float* bias, int act, double param,
                  float* y, Py_ssize_t rsy, int num_threads) noexcept nogil

cdef int dgemm_ep(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                  const double* a, Py_ssize_t rsa, Py_ssize_t csa,
                  const double* b, Py_ssize_t rsb, Py_ssize_t csb,
                  double* c, Py_ssize_t rsc, const double* bias, int act, double param,
                  double* y, Py_ssize_t rsy, int num_threads) noexcept nogil

cdef int sgemm_px(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                  const float* a, Py_ssize_t rsa, Py_ssize_t csa, const dlk_patches* pa,
                  const float* b, Py_ssize_t rsb, Py_ssize_t csb, const dlk_patches* pb,
                  float beta, float* c, Py_ssize_t rsc, Py_ssize_t csc,
                  const float* bias, int act, double param, float* y, Py_ssize_t rsy,
                  int num_threads) noexcept nogil

cdef int dgemm_px(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                  const double* a, Py_ssize_t rsa, Py_ssize_t csa, const dlk_patches* pa,
                  const double* b, Py_ssize_t rsb, Py_ssize_t csb, const dlk_patches* pb,
                  double beta, double* c, Py_ssize_t rsc, Py_ssize_t csc,
                  const double* bias, int act, double param, double* y, Py_ssize_t rsy,
                  int num_threads) noexcept nogil


# sgemm or dgemm picked at compile time from the element type, for code written
# once over `floating` (same parameters as sgemm/dgemm).
cdef inline void gemm_fused(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, floating alpha,
                            const floating* a, Py_ssize_t rsa, Py_ssize_t csa,
                            const floating* b, Py_ssize_t rsb, Py_ssize_t csb,
                            floating beta, floating* c, Py_ssize_t rsc, Py_ssize_t csc,
                            int num_threads) noexcept nogil:
    if floating is float:
        sgemm(m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc, num_threads)
    else:
        dgemm(m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc, num_threads)


# The threads a product of m x n x k multiply-adds deserves, in threads_for's units
# (elements of a pass): its multiply-adds / 16 in float32, / 8 in float64 (half as many
# per vector).
cdef inline int gemm_threads(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                             bint single) noexcept nogil:
    if single:
        return threads_for(m * n * k // 16)
    return threads_for(m * n * k // 8)
