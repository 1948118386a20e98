# The table of entry points each per-ISA variant of conv_impl.pxi (conv_base, _avx2,
# _avx512) exports in a capsule named "kernels.conv_table"; kernels.cpu.conv forwards
# to the one chosen for this CPU.  Every entry is serial and works on the output
# pixels [i0, i1) of a patch matrix described by a dlk_patches (rows (image, oy, ox),
# columns (a, b, channel of the group)); the caller splits the pixels among threads.
# Arrays are C-contiguous: out/dz (pixels, cout) with row stride ldo; the Keras kernel
# w as (kh * kw * cg, cout).

from kernels.cpu._patches cimport dlk_patches

# dx[pixel read by P[i, p]] += dcols[i - i0, p] for i in [i0, i1), in that order (dx is
# the NHWC gradient of the input; dcols row stride ldd; the group's channels only)
ctypedef void (*col2im_f32)(const dlk_patches* g, const float* dcols, Py_ssize_t ldd,
                            float* dx, Py_ssize_t i0, Py_ssize_t i1) noexcept nogil
ctypedef void (*col2im_f64)(const dlk_patches* g, const double* dcols, Py_ssize_t ldd,
                            double* dx, Py_ssize_t i0, Py_ssize_t i1) noexcept nogil
# depthwise (g.cg = g.c = cin, dm filters per channel; w (kh, kw, cin, dm)):
# out[i, c*dm + m] = bias + sum over cells of x * w
ctypedef void (*dw_fwd_f32)(const dlk_patches* g, const float* w, Py_ssize_t dm,
                            const float* bias, float* out, Py_ssize_t i0,
                            Py_ssize_t i1) noexcept nogil
ctypedef void (*dw_fwd_f64)(const dlk_patches* g, const double* w, Py_ssize_t dm,
                            const double* bias, double* out, Py_ssize_t i0,
                            Py_ssize_t i1) noexcept nogil
# acc (kh, kw, cin, dm) = sum over pixels [i0, i1) of x * dz (overwritten; in order)
ctypedef void (*dw_wgrad_f32)(const dlk_patches* g, const float* dz, Py_ssize_t dm,
                              Py_ssize_t i0, Py_ssize_t i1, float* acc) noexcept nogil
ctypedef void (*dw_wgrad_f64)(const dlk_patches* g, const double* dz, Py_ssize_t dm,
                              Py_ssize_t i0, Py_ssize_t i1, double* acc) noexcept nogil
# dx[pixel read, c] += sum_m dz[i, c*dm + m] w[cell, c, m] for i in [i0, i1), in order
ctypedef void (*dw_xgrad_f32)(const dlk_patches* g, const float* dz, const float* w,
                              Py_ssize_t dm, float* dx, Py_ssize_t i0,
                              Py_ssize_t i1) noexcept nogil
ctypedef void (*dw_xgrad_f64)(const dlk_patches* g, const double* dz, const double* w,
                              Py_ssize_t dm, double* dx, Py_ssize_t i0,
                              Py_ssize_t i1) noexcept nogil

ctypedef struct conv_table:
    col2im_f32 col2im_f32
    col2im_f64 col2im_f64
    dw_fwd_f32 dw_fwd_f32
    dw_fwd_f64 dw_fwd_f64
    dw_wgrad_f32 dw_wgrad_f32
    dw_wgrad_f64 dw_wgrad_f64
    dw_xgrad_f32 dw_xgrad_f32
    dw_xgrad_f64 dw_xgrad_f64
