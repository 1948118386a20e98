# The patch matrix of a convolution as the GEMM reads it (dlk_patches.h): shared by
# the GEMM variants (gemm_impl.pxi, which pack from it) and the conv kernels (which
# describe their input with it).  Declarations only: nothing to import at run time.

cdef extern from "dlk_patches.h":
    ctypedef struct dlk_patches:
        const void* x
        Py_ssize_t h, w, c
        Py_ssize_t c0, cg
        Py_ssize_t kh, kw
        Py_ssize_t sh, sw, dh, dw
        Py_ssize_t pt, pl
        Py_ssize_t oh, ow
        int transposed
        Py_ssize_t i0
    ctypedef struct dlk_pixel:
        Py_ssize_t base, oy, ox, y0, x0
    void dlk_pixel_at(const dlk_patches* g, Py_ssize_t i, dlk_pixel* q) noexcept nogil
    void dlk_pixel_step(const dlk_patches* g, dlk_pixel* q) noexcept nogil
    ctypedef struct dlk_patch_walk:
        pass
    void dlk_patch_start(const dlk_patches* g, const dlk_pixel* q, Py_ssize_t p,
                         dlk_patch_walk* k) noexcept nogil
    Py_ssize_t dlk_patch_next(const dlk_patches* g, dlk_patch_walk* k, Py_ssize_t limit,
                              Py_ssize_t* run) noexcept nogil
    void dlk_patch_pack_a_f(const dlk_patches* g, Py_ssize_t i0, Py_ssize_t p0,
                            Py_ssize_t mc, Py_ssize_t kc, Py_ssize_t MR,
                            float* dst) noexcept nogil
    void dlk_patch_pack_a_d(const dlk_patches* g, Py_ssize_t i0, Py_ssize_t p0,
                            Py_ssize_t mc, Py_ssize_t kc, Py_ssize_t MR,
                            double* dst) noexcept nogil
    void dlk_patch_pack_b_f(const dlk_patches* g, Py_ssize_t i0, Py_ssize_t j0,
                            Py_ssize_t kc, Py_ssize_t nr, Py_ssize_t NR,
                            float* dst) noexcept nogil
    void dlk_patch_pack_b_d(const dlk_patches* g, Py_ssize_t i0, Py_ssize_t j0,
                            Py_ssize_t kc, Py_ssize_t nr, Py_ssize_t NR,
                            double* dst) noexcept nogil
    Py_ssize_t dlk_patch_runs(const dlk_patches* g, Py_ssize_t p0, Py_ssize_t kc,
                              Py_ssize_t* offs, Py_ssize_t* lens) noexcept nogil
    void dlk_patch_corners_f(const dlk_patches* g, Py_ssize_t i0, Py_ssize_t mc,
                             const float** rows, char* inside) noexcept nogil
    void dlk_patch_corners_d(const dlk_patches* g, Py_ssize_t i0, Py_ssize_t mc,
                             const double** rows, char* inside) noexcept nogil
