"""Activations (forward and backprop), bias add and column sums, float32 and float64.

The kernels themselves are in ``elementwise_impl.pxi``, compiled once per instruction
set like the GEMM core:

    base    elementwise_base    baseline flags, always present
    avx2    elementwise_avx2    -mavx2 -mfma
    avx512  elementwise_avx512  -mavx512f -mavx512dq -mavx512vl -mavx512bw -mavx2 -mfma

This module is the dispatcher: its cdef API (declared in ``elementwise.pxd``, used by
the dense layer and the GEMM epilogue) and its Python entry points forward to the
table of entry points of the best variant this CPU supports.  A SIMD variant is
imported only after the CPU was found to support its instructions (checked with
``__builtin_cpu_supports`` by ``_isa``: valgrind's emulated CPU, which lacks
AVX-512, never gets the avx512 code), and only if it was built.

The environment variable DLKERNELS_EW_IMPL (base / avx2 / avx512) forces a variant at
import; ``use_impl()`` switches at run time.  Variants differ in the last bits of the
transcendental functions (fma), never in which thread computes what: each one gives
the same result for any thread count.
"""
import importlib

from cython cimport floating
from cpython.pycapsule cimport PyCapsule_GetPointer

_PACKAGE = __name__.rpartition(".")[0] or "kernels.cpu"
_isa = importlib.import_module(f"{_PACKAGE}._isa")

cdef ew_table* _tab = NULL

cpu_features = _isa.cpu_features


def _install(capsule):
    global _tab
    _tab = <ew_table*>PyCapsule_GetPointer(capsule, "kernels.ew_table")


_variants = _isa.Variants(_PACKAGE, "elementwise", "DLKERNELS_EW_IMPL",
                          lambda mod: mod.capsule(), _install)


def available_impls():
    """Elementwise variants both built and supported by this CPU, e.g.
    ['base', 'avx2', 'avx512']."""
    return _variants.names()


def current_impl():
    """Name of the elementwise variant in use."""
    return _variants.current


def use_impl(name):
    """Make every elementwise kernel (and the dense layer's and GEMM epilogue's calls
    to them) use the variant `name` (one of available_impls()).  Not to be called while
    another thread runs a kernel."""
    _variants.use(name)


# ---------------------------------------------------------- cdef API (forwarders)

cdef void activate_f32(int act, double param, const float* x, float* y,
                       Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    _tab.activate_f32(act, param, x, y, rows, cols)


cdef void activate_f64(int act, double param, const double* x, double* y,
                       Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    _tab.activate_f64(act, param, x, y, rows, cols)


cdef void backprop_f32(int act, double param, const float* dy, const float* saved,
                       float* out, Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    _tab.backprop_f32(act, param, dy, saved, out, rows, cols)


cdef void backprop_f64(int act, double param, const double* dy, const double* saved,
                       double* out, Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    _tab.backprop_f64(act, param, dy, saved, out, rows, cols)


cdef void column_sums_f32(const float* x, float* out, Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    _tab.column_sums_f32(x, out, rows, cols)


cdef void column_sums_f64(const double* x, double* out, Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    _tab.column_sums_f64(x, out, rows, cols)


cdef void activate_rows_f32(int act, double param, const float* x, Py_ssize_t ldx,
                            float* y, Py_ssize_t ldy, Py_ssize_t rows,
                            Py_ssize_t cols) noexcept nogil:
    _tab.activate_rows_f32(act, param, x, ldx, y, ldy, rows, cols)


cdef void activate_rows_f64(int act, double param, const double* x, Py_ssize_t ldx,
                            double* y, Py_ssize_t ldy, Py_ssize_t rows,
                            Py_ssize_t cols) noexcept nogil:
    _tab.activate_rows_f64(act, param, x, ldx, y, ldy, rows, cols)


cdef void backprop_colsum_f32(int act, double param, const float* dy, const float* saved,
                              float* dz, float* db, Py_ssize_t rows,
                              Py_ssize_t cols) noexcept nogil:
    _tab.backprop_colsum_f32(act, param, dy, saved, dz, db, rows, cols)


cdef void backprop_colsum_f64(int act, double param, const double* dy,
                              const double* saved, double* dz, double* db,
                              Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    _tab.backprop_colsum_f64(act, param, dy, saved, dz, db, rows, cols)


# ------------------------------------------------------- Python entry points
# Called by kernels.cpu.backend with validated, C-contiguous arguments.

def activation_forward(int act, double param, const floating[:, ::1] x, floating[:, ::1] out):
    with nogil:
        if floating is float:
            _tab.activate_f32(act, param, &x[0, 0], &out[0, 0], x.shape[0], x.shape[1])
        else:
            _tab.activate_f64(act, param, &x[0, 0], &out[0, 0], x.shape[0], x.shape[1])


def activation_backward(int act, double param, const floating[:, ::1] dy,
                        const floating[:, ::1] saved, floating[:, ::1] out):
    with nogil:
        if floating is float:
            _tab.backprop_f32(act, param, &dy[0, 0], &saved[0, 0], &out[0, 0],
                              dy.shape[0], dy.shape[1])
        else:
            _tab.backprop_f64(act, param, &dy[0, 0], &saved[0, 0], &out[0, 0],
                              dy.shape[0], dy.shape[1])


def bias_add(const floating[:, ::1] x, const floating[::1] b, floating[:, ::1] out):
    with nogil:
        if floating is float:
            _tab.bias_add_f32(&x[0, 0], &b[0], &out[0, 0], x.shape[0], x.shape[1])
        else:
            _tab.bias_add_f64(&x[0, 0], &b[0], &out[0, 0], x.shape[0], x.shape[1])


def column_sums(const floating[:, ::1] x, floating[::1] out):
    with nogil:
        if floating is float:
            _tab.column_sums_f32(&x[0, 0], &out[0], x.shape[0], x.shape[1])
        else:
            _tab.column_sums_f64(&x[0, 0], &out[0], x.shape[0], x.shape[1])


# Activation ids by name, for the Python wrappers (ACTIVATION_COUNT: how many the enum
# numbers; tests/kernels/test_tables.py checks both against the reference's table).
ACTIVATION_COUNT = ACT_COUNT
ACTIVATION_IDS = {
    "linear": ACT_LINEAR, "relu": ACT_RELU, "leaky_relu": ACT_LEAKY_RELU, "elu": ACT_ELU,
    "sigmoid": ACT_SIGMOID, "tanh": ACT_TANH, "softmax": ACT_SOFTMAX,
    "softplus": ACT_SOFTPLUS, "gelu": ACT_GELU, "relu6": ACT_RELU6, "selu": ACT_SELU,
    "silu": ACT_SILU, "hard_sigmoid": ACT_HARD_SIGMOID, "hard_silu": ACT_HARD_SILU,
    "mish": ACT_MISH, "exponential": ACT_EXPONENTIAL, "softsign": ACT_SOFTSIGN,
    "log_softmax": ACT_LOG_SOFTMAX, "gelu_tanh": ACT_GELU_TANH,
}


# ------------------------------------------- relu with Keras's three parameters
# relu(x, negative_slope, max_value, threshold) away from its defaults (which take the
# ACT_RELU kernel above).  Not an epilogue activation (the fused dense passes apply the
# defaults), so plain loops here, compiled once; elementwise, so the same result for
# any thread count.  See reference.relu for the formulas.

from cython.parallel cimport prange
from kernels.cpu._threads cimport threads_for


cdef inline floating _relu_p(floating v, floating slope, floating cap, bint has_cap,
                             floating thr) noexcept nogil:
    if v > thr:
        return (cap if v > cap else v) if has_cap else v
    if slope == 0:
        return v if v != v else 0       # NaN stays NaN; 0 * -inf would be NaN
    return slope * (v - thr)


cdef inline floating _relu_p_grad(floating d, floating y, floating slope, floating cap,
                                  bint has_cap, bint leaky) noexcept nogil:
    if y > 0:
        return 0 if (has_cap and not y < cap) else d
    if y < 0 or (leaky and y == 0):
        return slope * d
    return 0


def relu_params_forward(double slope, double cap, bint has_cap, double thr,
                        const floating[::1] x, floating[::1] out):
    cdef Py_ssize_t i, n = x.shape[0]
    cdef int nt = threads_for(n)
    cdef floating s = <floating>slope, c = <floating>cap, t = <floating>thr
    with nogil:
        for i in prange(n, num_threads=nt, schedule="static"):
            out[i] = _relu_p(x[i], s, c, has_cap, t)


def relu_params_backward(double slope, double cap, bint has_cap, double thr,
                         const floating[::1] dy, const floating[::1] y,
                         floating[::1] out):
    cdef Py_ssize_t i, n = dy.shape[0]
    cdef int nt = threads_for(n)
    cdef floating s = <floating>slope, c = <floating>cap
    cdef bint leaky = not has_cap and thr == 0
    with nogil:
        for i in prange(n, num_threads=nt, schedule="static"):
            out[i] = _relu_p_grad(dy[i], y[i], s, c, has_cap, leaky)
