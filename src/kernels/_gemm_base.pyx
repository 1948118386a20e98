# GEMM core compiled for baseline x86-64 (SSE2) or the target's default
# (flags set by setup.py); the algorithm is in _gemm_impl.pxi.
#
# Blocking constants for this instruction set (see _gemm_impl.pxi).  NR is the
# vector axis of the MR x NR accumulator tile, which the C micro-kernel of
# _gemm_impl.pxi fixes too (DLK_UK_*: a mismatch fails the import); KC x NR packed
# B ~ L1, MC x KC packed A ~ L2, KC x NC packed B ~ L3 (tuned on a Zen 4: 32 KiB L1,
# 1 MiB L2).
# 16 xmm registers: 2 x 24 floats = 12 accumulators (f32), 1 x 24 doubles =
# 12 accumulators (f64).  SSE2 has no FMA: mul + add.  (On a non-x86 target,
# e.g. aarch64 with NEON, the same tiles hold: 6 q registers per row.)
from cpython.pycapsule cimport PyCapsule_New

cdef enum:
    S_MR = 2
    S_NR = 24
    S_KC = 256
    S_MC = 144
    S_NC = 4080
    D_MR = 1
    D_NR = 24
    D_KC = 256
    D_MC = 144
    D_NC = 4080

include "_gemm_impl.pxi"


cdef void _sgemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, float alpha,
                 const float* a, Py_ssize_t rsa, Py_ssize_t csa,
                 const float* b, Py_ssize_t rsb, Py_ssize_t csb,
                 float beta, float* c, Py_ssize_t rsc, Py_ssize_t csc,
                 int num_threads) noexcept nogil:
    _gemm_driver(m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc,
                 num_threads, NULL)


cdef void _dgemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, double alpha,
                 const double* a, Py_ssize_t rsa, Py_ssize_t csa,
                 const double* b, Py_ssize_t rsb, Py_ssize_t csb,
                 double beta, double* c, Py_ssize_t rsc, Py_ssize_t csc,
                 int num_threads) noexcept nogil:
    _gemm_driver(m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc,
                 num_threads, NULL)



cdef int _sgemm_ep(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                   const float* a, Py_ssize_t rsa, Py_ssize_t csa,
                   const float* b, Py_ssize_t rsb, Py_ssize_t csb,
                   float* c, Py_ssize_t rsc, const float* bias, int act, double param,
                   float* y, Py_ssize_t rsy, int num_threads) noexcept nogil:
    return _gemm_ep_entry(m, n, k, a, rsa, csa, b, rsb, csb, c, rsc, bias, act, param,
                          y, rsy, num_threads)


cdef int _dgemm_ep(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                   const double* a, Py_ssize_t rsa, Py_ssize_t csa,
                   const double* b, Py_ssize_t rsb, Py_ssize_t csb,
                   double* c, Py_ssize_t rsc, const double* bias, int act, double param,
                   double* y, Py_ssize_t rsy, int num_threads) noexcept nogil:
    return _gemm_ep_entry(m, n, k, a, rsa, csa, b, rsb, csb, c, rsc, bias, act, param,
                          y, rsy, num_threads)


def capsules():
    """(capsule "kernels.sgemm_fn", capsule "kernels.dgemm_fn") for this variant.

    The pointers have the types sgemm_fn / dgemm_fn of kernels/_gemm.pxd.  (That
    pxd is not cimported here: this module must not depend on kernels._gemm,
    which imports it.)
    """
    return (PyCapsule_New(<void*>_sgemm, "kernels.sgemm_fn", NULL),
            PyCapsule_New(<void*>_dgemm, "kernels.dgemm_fn", NULL))


def ep_capsules():
    """(capsule "kernels.sgemm_ep_fn", capsule "kernels.dgemm_ep_fn"): the GEMM with
    the dense layer's epilogue (types sgemm_ep_fn / dgemm_ep_fn of kernels/_gemm.pxd)."""
    return (PyCapsule_New(<void*>_sgemm_ep, "kernels.sgemm_ep_fn", NULL),
            PyCapsule_New(<void*>_dgemm_ep, "kernels.dgemm_ep_fn", NULL))


def blocking():
    """The blocking constants: {'float32': {...}, 'float64': {...}}."""
    return {
        "float32": dict(MR=S_MR, NR=S_NR, KC=S_KC, MC=S_MC, NC=S_NC),
        "float64": dict(MR=D_MR, NR=D_NR, KC=D_KC, MC=D_MC, NC=D_NC),
    }
