# The table of entry points each per-ISA variant of normalization_impl.pxi
# (normalization_base, _avx2, _avx512) exports in a capsule named "kernels.norm_table";
# kernels.cpu.normalization forwards to the one chosen for this CPU.  Arrays are
# C-contiguous (n rows, d features); gamma/beta may be NULL.

# y = layer_norm(x) per row into out (which may be x)
ctypedef void (*norm_fwd_f32)(const float* x, const float* gamma, const float* beta,
                              float* out, Py_ssize_t n, Py_ssize_t d,
                              double epsilon) noexcept nogil
ctypedef void (*norm_fwd_f64)(const double* x, const double* gamma, const double* beta,
                              double* out, Py_ssize_t n, Py_ssize_t d,
                              double epsilon) noexcept nogil
# dx (may be dy or x), dgamma and dbeta; returns -1 when out of memory, else 0
ctypedef int (*norm_bwd_f32)(const float* dy, const float* x, const float* gamma,
                             float* dx, float* dgamma, float* dbeta, Py_ssize_t n,
                             Py_ssize_t d, double epsilon) noexcept nogil
ctypedef int (*norm_bwd_f64)(const double* dy, const double* x, const double* gamma,
                             double* dx, double* dgamma, double* dbeta, Py_ssize_t n,
                             Py_ssize_t d, double epsilon) noexcept nogil

ctypedef struct norm_table:
    norm_fwd_f32 forward_f32
    norm_fwd_f64 forward_f64
    norm_bwd_f32 backward_f32
    norm_bwd_f64 backward_f64
