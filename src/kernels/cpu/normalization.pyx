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
