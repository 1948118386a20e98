"""Normalisation kernels (layer normalisation over the last axis), float32 and float64.

The kernels themselves are in ``normalization_impl.pxi``, compiled once per
instruction set like the other families:

    base    normalization_base    baseline flags, always present
    avx2    normalization_avx2    -mavx2 -mfma
    avx512  normalization_avx512  -mavx512f -mavx512dq -mavx512vl -mavx512bw -mavx2 -mfma

This module is the dispatcher: its Python entry points forward to the table of the
best variant this CPU supports (``kernels.cpu._isa``).  DLKERNELS_NORM_IMPL (base /
avx2 / avx512) forces a variant at import; ``use_impl()`` switches at run time.
Variants may differ in the last bits (fma), never in which thread computes what: each
gives the same result for any thread count.  Arguments arrive validated and
C-contiguous (2-D: rows x features) from ``kernels.cpu.backend``; ``gamma``/``beta``
may be None.
"""
import importlib

from cython cimport floating
from cpython.pycapsule cimport PyCapsule_GetPointer

_PACKAGE = __name__.rpartition(".")[0] or "kernels.cpu"
_isa = importlib.import_module(f"{_PACKAGE}._isa")

cdef norm_table* _tab = NULL


def _install(capsule):
    global _tab
    _tab = <norm_table*>PyCapsule_GetPointer(capsule, "kernels.norm_table")


_variants = _isa.Variants(_PACKAGE, "normalization", "DLKERNELS_NORM_IMPL",
                          lambda mod: mod.capsule(), _install)


def available_impls():
    """Normalisation variants both built and supported by this CPU."""
    return _variants.names()


def current_impl():
    """Name of the normalisation variant in use."""
    return _variants.current


def use_impl(name):
    """Make the normalisation kernels use the variant `name` (one of
    available_impls()).  Not to be called while another thread runs a kernel."""
    _variants.use(name)


def forward(const floating[:, ::1] x, gamma, beta, double epsilon, floating[:, ::1] out):
    cdef const floating[::1] gv
    cdef const floating[::1] bv
    cdef const floating* g = NULL
    cdef const floating* b = NULL
    if gamma is not None:
        gv = gamma
        g = &gv[0]
    if beta is not None:
        bv = beta
        b = &bv[0]
    with nogil:
        if floating is float:
            _tab.forward_f32(&x[0, 0], g, b, &out[0, 0], x.shape[0], x.shape[1], epsilon)
        else:
            _tab.forward_f64(&x[0, 0], g, b, &out[0, 0], x.shape[0], x.shape[1], epsilon)


def backward(const floating[:, ::1] dy, const floating[:, ::1] x, gamma, double epsilon,
             floating[:, ::1] dx, floating[::1] dgamma, floating[::1] dbeta):
    cdef const floating[::1] gv
    cdef const floating* g = NULL
    cdef int status
    if gamma is not None:
        gv = gamma
        g = &gv[0]
    with nogil:
        if floating is float:
            status = _tab.backward_f32(&dy[0, 0], &x[0, 0], g, &dx[0, 0], &dgamma[0],
                                       &dbeta[0], x.shape[0], x.shape[1], epsilon)
        else:
            status = _tab.backward_f64(&dy[0, 0], &x[0, 0], g, &dx[0, 0], &dgamma[0],
                                       &dbeta[0], x.shape[0], x.shape[1], epsilon)
    if status != 0:
        raise MemoryError("layer_norm_backward: no memory for the row statistics")


# ----------------------------------------------------------- batch normalisation
# Statistics per channel (column) over every row, in double.  The rows are cut into
# pieces of _BN_ROWS (a size that depends on nothing but itself); each piece's column
# sums are taken in row order by one thread, then the pieces are added in piece order:
# the same bits for any thread count.  The per-channel arithmetic between the passes
# (scale, shift, moving statistics) is NumPy's in kernels.cpu.backend, as the
# reference's; these are the passes over the whole batch.

import numpy

from cython.parallel cimport prange
from kernels.cpu._threads cimport threads_for

cdef enum:
    _BN_ROWS = 256


cdef inline Py_ssize_t _bn_pieces(Py_ssize_t m) noexcept nogil:
    return (m + _BN_ROWS - 1) // _BN_ROWS


def _combine(double[:, ::1] part, double[::1] out):
    """out = the pieces' sums added in piece order."""
    cdef Py_ssize_t p, j, c = part.shape[1]
    for j in range(c):
        out[j] = part[0, j]
    for p in range(1, part.shape[0]):
        for j in range(c):
            out[j] += part[p, j]


def batch_norm_moments(const floating[:, ::1] x, double[::1] mean, double[::1] var):
    """mean and biased variance of each column of x (m rows), in double: two passes."""
    cdef Py_ssize_t m = x.shape[0], c = x.shape[1], pieces = _bn_pieces(m)
    cdef Py_ssize_t p, i, j
    cdef double[:, ::1] part = numpy.empty((pieces, c), numpy.float64)
    cdef double d
    cdef int nt = min(threads_for(m * c), pieces)
    for p in prange(pieces, nogil=True, num_threads=max(nt, 1), schedule="static"):
        for j in range(c):
            part[p, j] = 0
        for i in range(p * _BN_ROWS, min(m, (p + 1) * _BN_ROWS)):
            for j in range(c):
                part[p, j] += x[i, j]
    _combine(part, mean)
    for j in range(c):
        mean[j] = mean[j] / m
    for p in prange(pieces, nogil=True, num_threads=max(nt, 1), schedule="static"):
        for j in range(c):
            part[p, j] = 0
        for i in range(p * _BN_ROWS, min(m, (p + 1) * _BN_ROWS)):
            for j in range(c):
                d = x[i, j] - mean[j]
                part[p, j] += d * d
    _combine(part, var)
    for j in range(c):
        var[j] = var[j] / m


def batch_norm_apply(const floating[:, ::1] x, const floating[::1] scale,
                     const floating[::1] shift, floating[:, ::1] out):
    """out = x * scale + shift per column (out may be x)."""
    cdef Py_ssize_t m = x.shape[0], c = x.shape[1], i, j
    cdef int nt = threads_for(m * c)
    for i in prange(m, nogil=True, num_threads=nt, schedule="static"):
        for j in range(c):
            out[i, j] = x[i, j] * scale[j] + shift[j]


def batch_norm_grad_sums(const floating[:, ::1] dy, const floating[:, ::1] x,
                         const double[::1] mean, const double[::1] r, double[::1] sum_dy,
                         double[::1] sum_dy_xhat):
    """sum_dy = column sums of dy, sum_dy_xhat = column sums of dy (x - mean) r."""
    cdef Py_ssize_t m = x.shape[0], c = x.shape[1], pieces = _bn_pieces(m)
    cdef Py_ssize_t p, i, j
    cdef double[:, ::1] part = numpy.empty((pieces, c), numpy.float64)
    cdef double[:, ::1] part2 = numpy.empty((pieces, c), numpy.float64)
    cdef int nt = min(threads_for(m * c), pieces)
    for p in prange(pieces, nogil=True, num_threads=max(nt, 1), schedule="static"):
        for j in range(c):
            part[p, j] = 0
            part2[p, j] = 0
        for i in range(p * _BN_ROWS, min(m, (p + 1) * _BN_ROWS)):
            for j in range(c):
                part[p, j] += dy[i, j]
                part2[p, j] += dy[i, j] * ((x[i, j] - mean[j]) * r[j])
    _combine(part, sum_dy)
    _combine(part2, sum_dy_xhat)


def batch_norm_dx(const floating[:, ::1] dy, const floating[:, ::1] x,
                  const double[::1] mean, const double[::1] r, const double[::1] scale,
                  const double[::1] mean_dy, const double[::1] mean_dy_xhat,
                  floating[:, ::1] dx):
    """dx = scale (dy - mean_dy - xhat mean_dy_xhat), xhat = (x - mean) r, in double
    (dx may be dy or x: each element is read before it is written)."""
    cdef Py_ssize_t m = x.shape[0], c = x.shape[1], i, j
    cdef int nt = threads_for(m * c)
    for i in prange(m, nogil=True, num_threads=nt, schedule="static"):
        for j in range(c):
            dx[i, j] = <floating>(scale[j] * (dy[i, j] - mean_dy[j]
                                               - (x[i, j] - mean[j]) * r[j] * mean_dy_xhat[j]))
