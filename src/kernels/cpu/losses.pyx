"""Losses and their gradients, float32 and float64, reduced as Keras 3 does.

The kernels themselves are in ``losses_impl.pxi``, compiled once per instruction set
like the GEMM core and the activations:

    base    losses_base    baseline flags, always present
    avx2    losses_avx2    -mavx2 -mfma
    avx512  losses_avx512  -mavx512f -mavx512dq -mavx512vl -mavx512bw -mavx2 -mfma

This module is the dispatcher: its Python entry points forward to the table of entry
points of the best variant this CPU supports (chosen by ``kernels.cpu._isa``, as for the
activations: a SIMD variant is imported only after the CPU was found to support it).
The environment variable DLKERNELS_LOSS_IMPL (base / avx2 / avx512) forces a variant at
import; ``use_impl()`` switches at run time.  Variants differ in the last bits of the
logs and exps (fma), never in which thread computes what: each one gives the same
result for any thread count.  Arguments arrive validated and C-contiguous from
``kernels.cpu.backend``.
"""
import importlib

from cython cimport floating
from libc.stdint cimport int64_t
from cpython.pycapsule cimport PyCapsule_GetPointer

_PACKAGE = __name__.rpartition(".")[0] or "kernels.cpu"
_isa = importlib.import_module(f"{_PACKAGE}._isa")

cdef loss_table* _tab = NULL

# Loss ids by name (LOSS_COUNT: how many the enum numbers; tests/kernels/test_tables.py
# checks both against the reference's table).
LOSS_COUNT = LOSS_ID_COUNT
LOSS_IDS = {"mean_squared_error": MSE, "mean_absolute_error": MAE, "huber": HUBER,
            "binary_crossentropy": BCE, "binary_crossentropy_logits": BCE_LOGITS,
            "categorical_crossentropy": CCE, "categorical_crossentropy_logits": CCE_LOGITS,
            "hinge": HINGE, "squared_hinge": SQUARED_HINGE, "poisson": POISSON,
            "log_cosh": LOG_COSH, "mean_absolute_percentage_error": MAPE,
            "mean_squared_logarithmic_error": MSLE, "kl_divergence": KLD,
            "categorical_hinge": CAT_HINGE, "cosine_similarity": COSINE}


def _install(capsule):
    global _tab
    _tab = <loss_table*>PyCapsule_GetPointer(capsule, "kernels.loss_table")


_variants = _isa.Variants(_PACKAGE, "losses", "DLKERNELS_LOSS_IMPL",
                          lambda mod: mod.capsule(), _install)


def available_impls():
    """Loss variants both built and supported by this CPU, e.g.
    ['base', 'avx2', 'avx512']."""
    return _variants.names()


def current_impl():
    """Name of the loss variant in use."""
    return _variants.current


def use_impl(name):
    """Make every loss kernel use the variant `name` (one of available_impls()).  Not
    to be called while another thread runs a kernel."""
    _variants.use(name)


# ------------------------------------------------------- Python entry points
# ``w``: None, or one weight per row (sample_weight), C-contiguous, of the dtype.  It
# is taken as an object and viewed only when given: an optional typed memoryview
# argument costs every (unweighted) call its setup and release.

def loss_value(int loss, double param, const floating[:, ::1] y_true,
               const floating[:, ::1] y_pred, w=None):
    cdef double v
    cdef const floating[::1] wv
    cdef const floating* wp = NULL
    if w is not None:
        wv = w
        wp = &wv[0]
    with nogil:
        if floating is float:
            v = _tab.value_f32(loss, param, &y_true[0, 0], &y_pred[0, 0], wp,
                               y_pred.shape[0], y_pred.shape[1])
        else:
            v = _tab.value_f64(loss, param, &y_true[0, 0], &y_pred[0, 0], wp,
                               y_pred.shape[0], y_pred.shape[1])
    return v


def loss_gradient(int loss, double param, const floating[:, ::1] y_true,
                  const floating[:, ::1] y_pred, floating[:, ::1] out,
                  w=None):
    cdef const floating[::1] wv
    cdef const floating* wp = NULL
    if w is not None:
        wv = w
        wp = &wv[0]
    with nogil:
        if floating is float:
            _tab.gradient_f32(loss, param, &y_true[0, 0], &y_pred[0, 0], wp, &out[0, 0],
                              y_pred.shape[0], y_pred.shape[1])
        else:
            _tab.gradient_f64(loss, param, &y_true[0, 0], &y_pred[0, 0], wp, &out[0, 0],
                              y_pred.shape[0], y_pred.shape[1])


cdef inline double _rows(int kind, bint logits, const floating* t, const int64_t* labels,
                         const floating* p, const floating* w, floating* out,
                         Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    if floating is float:
        return _tab.rows_total_f32(kind, logits, t, labels, p, w, out, rows, cols)
    else:
        return _tab.rows_total_f64(kind, logits, t, labels, p, w, out, rows, cols)


def sparse_crossentropy(bint from_logits, const int64_t[::1] labels,
                        const floating[:, ::1] y_pred, floating[:, ::1] out=None,
                        w=None):
    """Mean (weighted) sparse categorical cross-entropy (from logits: the fused softmax
    one); gradient into ``out`` when given."""
    cdef double total
    cdef floating* o = &out[0, 0] if out is not None else NULL
    cdef const floating[::1] wv
    cdef const floating* wp = NULL
    if w is not None:
        wv = w
        wp = &wv[0]
    with nogil:
        total = _rows(SPARSE_CROSSENTROPY, from_logits, <const floating*>NULL, &labels[0],
                      &y_pred[0, 0], wp, o, y_pred.shape[0], y_pred.shape[1])
    return total / y_pred.shape[0]


def softmax_crossentropy(const floating[:, ::1] y_true, const floating[:, ::1] logits,
                         floating[:, ::1] out, w=None):
    """Fused softmax + categorical cross-entropy: returns the mean (weighted) loss,
    gradient in out."""
    cdef double total
    cdef const floating[::1] wv
    cdef const floating* wp = NULL
    if w is not None:
        wv = w
        wp = &wv[0]
    with nogil:
        total = _rows(SOFTMAX_CROSSENTROPY, True, &y_true[0, 0], <const int64_t*>NULL,
                      &logits[0, 0], wp, &out[0, 0], logits.shape[0], logits.shape[1])
    return total / logits.shape[0]
