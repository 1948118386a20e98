# The loss kernels' ids and the table of entry points each per-ISA variant of
# losses_impl.pxi (losses_base, losses_avx2, losses_avx512) exports in a capsule named
# "kernels.loss_table"; kernels.cpu.losses forwards to the one chosen for this CPU.  (Only
# the types and enums of this file may be cimported by the variants.)
from libc.stdint cimport int64_t

# The ids are the positions in kernels.reference.LOSS_KERNELS; LOSS_ID_COUNT, one past the
# last, lets tests/kernels/test_tables.py see an id added here but not there.
cdef enum:
    MSE = 0
    MAE = 1
    HUBER = 2
    BCE = 3
    BCE_LOGITS = 4
    CCE = 5
    CCE_LOGITS = 6
    HINGE = 7
    SQUARED_HINGE = 8
    POISSON = 9
    LOG_COSH = 10
    MAPE = 11
    MSLE = 12
    KLD = 13
    CAT_HINGE = 14
    COSINE = 15
    LOSS_ID_COUNT = 16

# the kinds of row losses (loss_rows_*)
cdef enum:
    SPARSE_CROSSENTROPY = 0
    SOFTMAX_CROSSENTROPY = 1

# Every entry takes w: NULL, or one weight per row (the loss kernels' sample_weight):
# row r's loss and gradient row are multiplied by w[r].
#
# the mean loss of an elementwise (MSE ... KLD) or row (CCE, CCE_LOGITS, CAT_HINGE,
# COSINE) loss over C-contiguous (rows, cols) targets t and predictions p
ctypedef double (*loss_value_f32)(int loss, double param, const float* t, const float* p,
                                  const float* w, Py_ssize_t rows,
                                  Py_ssize_t cols) noexcept nogil
ctypedef double (*loss_value_f64)(int loss, double param, const double* t,
                                  const double* p, const double* w, Py_ssize_t rows,
                                  Py_ssize_t cols) noexcept nogil
# its gradient with respect to p into out (which may be p)
ctypedef void (*loss_grad_f32)(int loss, double param, const float* t, const float* p,
                               const float* w, float* out, Py_ssize_t rows,
                               Py_ssize_t cols) noexcept nogil
ctypedef void (*loss_grad_f64)(int loss, double param, const double* t, const double* p,
                               const double* w, double* out, Py_ssize_t rows,
                               Py_ssize_t cols) noexcept nogil
# the summed (weighted) row losses of kind SPARSE_CROSSENTROPY (integer labels; from
# logits or probabilities) or SOFTMAX_CROSSENTROPY (the fused softmax cross-entropy
# with one-hot or soft targets t), the gradient into out when out is not NULL
ctypedef double (*loss_rows_f32)(int kind, bint logits, const float* t,
                                 const int64_t* labels, const float* p, const float* w,
                                 float* out, Py_ssize_t rows, Py_ssize_t cols) noexcept nogil
ctypedef double (*loss_rows_f64)(int kind, bint logits, const double* t,
                                 const int64_t* labels, const double* p, const double* w,
                                 double* out, Py_ssize_t rows,
                                 Py_ssize_t cols) noexcept nogil

ctypedef struct loss_table:
    loss_value_f32 value_f32
    loss_value_f64 value_f64
    loss_grad_f32 gradient_f32
    loss_grad_f64 gradient_f64
    loss_rows_f32 rows_total_f32
    loss_rows_f64 rows_total_f64
