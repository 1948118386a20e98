# Elementwise kernels shared with other modules (the dense layer applies activations
# through these).  Activations are identified by the ids below; ``param`` is the
# activation's one parameter (leaky_relu's negative_slope, elu's alpha), ignored by
# the others.  Pointers are to C-contiguous buffers.

# The ids are the positions in kernels.reference.ACTIVATION_KERNELS; ACT_COUNT, one past
# the last, lets tests/kernels/test_tables.py see an id added here but not there.
cdef enum:
    ACT_LINEAR = 0
    ACT_RELU = 1
    ACT_LEAKY_RELU = 2
    ACT_ELU = 3
    ACT_SIGMOID = 4
    ACT_TANH = 5
    ACT_SOFTMAX = 6
    ACT_SOFTPLUS = 7
    ACT_GELU = 8
    ACT_RELU6 = 9
    ACT_SELU = 10
    ACT_SILU = 11
    ACT_HARD_SIGMOID = 12
    ACT_HARD_SILU = 13
    ACT_MISH = 14
    ACT_EXPONENTIAL = 15
    ACT_SOFTSIGN = 16
    ACT_LOG_SOFTMAX = 17
    ACT_GELU_TANH = 18
    ACT_COUNT = 19


cdef inline bint act_by_rows(int act) noexcept nogil:
    """True for the activations computed on whole rows (softmax, log_softmax): a
    block must hold complete rows to apply them (reference.ROW_ACTIVATIONS)."""
    return act == ACT_SOFTMAX or act == ACT_LOG_SOFTMAX

# y = act(x) over rows x cols elements (softmax works row by row); y may be x.
cdef void activate_f32(int act, double param, const float* x, float* y,
                       Py_ssize_t rows, Py_ssize_t cols) noexcept nogil
cdef void activate_f64(int act, double param, const double* x, double* y,
                       Py_ssize_t rows, Py_ssize_t cols) noexcept nogil

# out = dy * act'(.) from the saved output y (or the input x for gelu); out may be dy.
cdef void backprop_f32(int act, double param, const float* dy, const float* saved,
                       float* out, Py_ssize_t rows, Py_ssize_t cols) noexcept nogil
cdef void backprop_f64(int act, double param, const double* dy, const double* saved,
                       double* out, Py_ssize_t rows, Py_ssize_t cols) noexcept nogil

# out[j] = sum_i x[i, j] for a C-contiguous (rows, cols) x.
cdef void column_sums_f32(const float* x, float* out, Py_ssize_t rows, Py_ssize_t cols) noexcept nogil
cdef void column_sums_f64(const double* x, double* out, Py_ssize_t rows, Py_ssize_t cols) noexcept nogil

# y[r, :] = act(x[r, :]) for the rows x cols block at x (row stride ldx) into y (row
# stride ldy; y may be x with ldy == ldx); softmax per row.  One thread (the caller's):
# made to be called on blocks by code that already runs in parallel (the GEMM's
# epilogue).  Same arithmetic as activate_*, so the same results.
cdef void activate_rows_f32(int act, double param, const float* x, Py_ssize_t ldx,
                            float* y, Py_ssize_t ldy, Py_ssize_t rows,
                            Py_ssize_t cols) noexcept nogil
cdef void activate_rows_f64(int act, double param, const double* x, Py_ssize_t ldx,
                            double* y, Py_ssize_t ldy, Py_ssize_t rows,
                            Py_ssize_t cols) noexcept nogil

# dz = dy * act'(saved) (as backprop_*) and, when db is not NULL, db[j] = sum_i dz[i, j]
# in the same pass (as column_sums_*: each column summed by one thread, rows in order,
# so the result does not depend on the thread count).  C-contiguous (rows, cols)
# buffers; dz may be dy.
cdef void backprop_colsum_f32(int act, double param, const float* dy, const float* saved,
                              float* dz, float* db, Py_ssize_t rows,
                              Py_ssize_t cols) noexcept nogil
cdef void backprop_colsum_f64(int act, double param, const double* dy,
                              const double* saved, double* dz, double* db,
                              Py_ssize_t rows, Py_ssize_t cols) noexcept nogil


# ------------------------------------------------------- per-ISA implementations
# The functions above forward to one of the variants of elementwise_impl.pxi
# (elementwise_base, elementwise_avx2, elementwise_avx512), chosen at import for this CPU (see
# elementwise.pyx).  Each variant exports this table of its entry points in a
# capsule named "kernels.ew_table".  (Only the types and enums of this file may be
# cimported by the variants: they are imported by _elementwise itself.)

ctypedef void (*ew_act_f32)(int act, double param, const float* x, float* y,
                            Py_ssize_t rows, Py_ssize_t cols) noexcept nogil
ctypedef void (*ew_act_f64)(int act, double param, const double* x, double* y,
                            Py_ssize_t rows, Py_ssize_t cols) noexcept nogil
ctypedef void (*ew_bwd_f32)(int act, double param, const float* dy, const float* saved,
                            float* out, Py_ssize_t rows, Py_ssize_t cols) noexcept nogil
ctypedef void (*ew_bwd_f64)(int act, double param, const double* dy, const double* saved,
                            double* out, Py_ssize_t rows, Py_ssize_t cols) noexcept nogil
ctypedef void (*ew_colsum_f32)(const float* x, float* out, Py_ssize_t rows,
                               Py_ssize_t cols) noexcept nogil
ctypedef void (*ew_colsum_f64)(const double* x, double* out, Py_ssize_t rows,
                               Py_ssize_t cols) noexcept nogil
ctypedef void (*ew_bias_f32)(const float* x, const float* b, float* out, Py_ssize_t rows,
                             Py_ssize_t cols) noexcept nogil
ctypedef void (*ew_bias_f64)(const double* x, const double* b, double* out,
                             Py_ssize_t rows, Py_ssize_t cols) noexcept nogil
ctypedef void (*ew_rows_f32)(int act, double param, const float* x, Py_ssize_t ldx,
                             float* y, Py_ssize_t ldy, Py_ssize_t rows,
                             Py_ssize_t cols) noexcept nogil
ctypedef void (*ew_rows_f64)(int act, double param, const double* x, Py_ssize_t ldx,
                             double* y, Py_ssize_t ldy, Py_ssize_t rows,
                             Py_ssize_t cols) noexcept nogil
ctypedef void (*ew_bcs_f32)(int act, double param, const float* dy, const float* saved,
                            float* dz, float* db, Py_ssize_t rows,
                            Py_ssize_t cols) noexcept nogil
ctypedef void (*ew_bcs_f64)(int act, double param, const double* dy, const double* saved,
                            double* dz, double* db, Py_ssize_t rows,
                            Py_ssize_t cols) noexcept nogil

ctypedef struct ew_table:
    ew_act_f32 activate_f32
    ew_act_f64 activate_f64
    ew_bwd_f32 backprop_f32
    ew_bwd_f64 backprop_f64
    ew_colsum_f32 column_sums_f32
    ew_colsum_f64 column_sums_f64
    ew_bias_f32 bias_add_f32
    ew_bias_f64 bias_add_f64
    ew_rows_f32 activate_rows_f32
    ew_rows_f64 activate_rows_f64
    ew_bcs_f32 backprop_colsum_f32
    ew_bcs_f64 backprop_colsum_f64
