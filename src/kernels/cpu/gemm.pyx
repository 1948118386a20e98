# The GEMM dispatcher: sgemm/dgemm and sgemm_ep/dgemm_ep (declared in gemm.pxd) forward
# to the function pointers of the best GEMM variant this CPU supports; gemm() is the
# Python entry point of the cpu backend's gemm kernel.
#
# The variants are the same source (gemm_impl.pxi) compiled three times:
#   base    gemm_base    baseline flags, always present
#   avx2    gemm_avx2    -mavx2 -mfma
#   avx512  gemm_avx512  -mavx512f -mavx512dq -mavx512vl -mavx512bw -mavx2 -mfma
# A SIMD variant is imported only after the CPU was found to support its
# instructions (its module init code may already use them), and only if it was
# built (setup.py skips them on non-x86 targets or compilers without the flags).
#
# The environment variable DLKERNELS_GEMM_IMPL (base / avx2 / avx512) forces a
# variant at import; use_impl() switches at run time.

import importlib

from cython cimport floating
from cpython.pycapsule cimport PyCapsule_GetPointer

_PACKAGE = __name__.rpartition(".")[0] or "kernels.cpu"
_isa = importlib.import_module(f"{_PACKAGE}._isa")

cdef sgemm_fn _s_impl = NULL
cdef dgemm_fn _d_impl = NULL
cdef sgemm_ep_fn _s_ep_impl = NULL
cdef dgemm_ep_fn _d_ep_impl = NULL
cdef sgemm_px_fn _s_px_impl = NULL
cdef dgemm_px_fn _d_px_impl = NULL

cpu_features = _isa.cpu_features


def _install(capsules):
    """Store a variant's six entry points (sgemm, dgemm, sgemm_ep, dgemm_ep, sgemm_px,
    dgemm_px capsules)."""
    global _s_impl, _d_impl, _s_ep_impl, _d_ep_impl, _s_px_impl, _d_px_impl
    scap, dcap, sepcap, depcap, spxcap, dpxcap = capsules
    cdef sgemm_fn s = <sgemm_fn>PyCapsule_GetPointer(scap, "kernels.sgemm_fn")
    cdef dgemm_fn d = <dgemm_fn>PyCapsule_GetPointer(dcap, "kernels.dgemm_fn")
    cdef sgemm_ep_fn sep = <sgemm_ep_fn>PyCapsule_GetPointer(sepcap, "kernels.sgemm_ep_fn")
    cdef dgemm_ep_fn dep = <dgemm_ep_fn>PyCapsule_GetPointer(depcap, "kernels.dgemm_ep_fn")
    _s_impl = s
    _d_impl = d
    _s_ep_impl = sep
    _d_ep_impl = dep
    _s_px_impl = <sgemm_px_fn>PyCapsule_GetPointer(spxcap, "kernels.sgemm_px_fn")
    _d_px_impl = <dgemm_px_fn>PyCapsule_GetPointer(dpxcap, "kernels.dgemm_px_fn")


_variants = _isa.Variants(_PACKAGE, "gemm", "DLKERNELS_GEMM_IMPL",
                          lambda mod: (tuple(mod.capsules()) + tuple(mod.ep_capsules())
                                       + tuple(mod.px_capsules())),
                          _install)


def available_impls():
    """GEMM variants both built and supported by this CPU, e.g. ['base', 'avx2', 'avx512']."""
    return _variants.names()


def current_impl():
    """Name of the GEMM variant sgemm/dgemm use now."""
    return _variants.current


def use_impl(name):
    """Make sgemm/dgemm (and sgemm_ep/dgemm_ep) use the GEMM variant `name` (one of
    available_impls())."""
    _variants.use(name)


cdef void sgemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, float alpha,
                const float* a, Py_ssize_t rsa, Py_ssize_t csa,
                const float* b, Py_ssize_t rsb, Py_ssize_t csb,
                float beta, float* c, Py_ssize_t rsc, Py_ssize_t csc,
                int num_threads) noexcept nogil:
    _s_impl(m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc, num_threads)


cdef void dgemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, double alpha,
                const double* a, Py_ssize_t rsa, Py_ssize_t csa,
                const double* b, Py_ssize_t rsb, Py_ssize_t csb,
                double beta, double* c, Py_ssize_t rsc, Py_ssize_t csc,
                int num_threads) noexcept nogil:
    _d_impl(m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc, num_threads)


cdef int sgemm_ep(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                  const float* a, Py_ssize_t rsa, Py_ssize_t csa,
                  const float* b, Py_ssize_t rsb, Py_ssize_t csb,
                  float* c, Py_ssize_t rsc, const float* bias, int act, double param,
                  float* y, Py_ssize_t rsy, int num_threads) noexcept nogil:
    return _s_ep_impl(m, n, k, a, rsa, csa, b, rsb, csb, c, rsc, bias, act, param, y, rsy,
                      num_threads)


cdef int dgemm_ep(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                  const double* a, Py_ssize_t rsa, Py_ssize_t csa,
                  const double* b, Py_ssize_t rsb, Py_ssize_t csb,
                  double* c, Py_ssize_t rsc, const double* bias, int act, double param,
                  double* y, Py_ssize_t rsy, int num_threads) noexcept nogil:
    return _d_ep_impl(m, n, k, a, rsa, csa, b, rsb, csb, c, rsc, bias, act, param, y, rsy,
                      num_threads)


cdef int sgemm_px(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                  const float* a, Py_ssize_t rsa, Py_ssize_t csa, const dlk_patches* pa,
                  const float* b, Py_ssize_t rsb, Py_ssize_t csb, const dlk_patches* pb,
                  float beta, float* c, Py_ssize_t rsc, Py_ssize_t csc,
                  const float* bias, int act, double param, float* y, Py_ssize_t rsy,
                  int num_threads) noexcept nogil:
    return _s_px_impl(m, n, k, a, rsa, csa, pa, b, rsb, csb, pb, beta, c, rsc, csc, bias,
                      act, param, y, rsy, num_threads)


cdef int dgemm_px(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                  const double* a, Py_ssize_t rsa, Py_ssize_t csa, const dlk_patches* pa,
                  const double* b, Py_ssize_t rsb, Py_ssize_t csb, const dlk_patches* pb,
                  double beta, double* c, Py_ssize_t rsc, Py_ssize_t csc,
                  const double* bias, int act, double param, double* y, Py_ssize_t rsy,
                  int num_threads) noexcept nogil:
    return _d_px_impl(m, n, k, a, rsa, csa, pa, b, rsb, csb, pb, beta, c, rsc, csc, bias,
                      act, param, y, rsy, num_threads)


# ------------------------------------------------------- Python entry point
# Called by kernels.cpu.backend with validated arguments.

def gemm(const floating[:, :] a, const floating[:, :] b, floating[:, :] out,
         bint trans_a, bint trans_b, double alpha, double beta):
    """out = alpha * op(a) @ op(b) + beta * out, transposes taken as stride swaps."""
    cdef Py_ssize_t isz = sizeof(floating)
    cdef Py_ssize_t rsa = a.strides[0] // isz, csa = a.strides[1] // isz
    cdef Py_ssize_t rsb = b.strides[0] // isz, csb = b.strides[1] // isz
    cdef Py_ssize_t m = a.shape[0], k = a.shape[1], n = b.shape[1]
    cdef int nt
    if trans_a:
        rsa, csa, m, k = csa, rsa, k, m
    if trans_b:
        rsb, csb, n = csb, rsb, b.shape[0]
    nt = gemm_threads(m, n, k, floating is float)
    with nogil:
        if floating is float:
            sgemm(m, n, k, <float>alpha, &a[0, 0], rsa, csa, &b[0, 0], rsb, csb, <float>beta,
                  &out[0, 0], out.strides[0] // isz, out.strides[1] // isz, nt)
        else:
            dgemm(m, n, k, alpha, &a[0, 0], rsa, csa, &b[0, 0], rsb, csb, beta,
                  &out[0, 0], out.strides[0] // isz, out.strides[1] // isz, nt)
