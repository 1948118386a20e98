# Thread-count policy shared by every compiled kernel.

# Number of OpenMP threads a kernel should use for ``work`` units (elements, or
# multiply-adds for GEMM): 1 below the parallel threshold, else the user's setting.
cdef int threads_for(Py_ssize_t work) noexcept nogil

# Size, in elements, of the fixed chunks that elementwise kernels and reductions hand to
# threads.  Fixed (not derived from the thread count) so that every reduction adds in
# the same order whatever the number of threads: results are bit-identical.
cdef enum:
    CHUNK = 8192
