# The convolution kernels that are not GEMMs, compiled once per instruction set like
# the other families (conv_base, conv_avx2, conv_avx512 include this file; the
# dispatcher kernels.cpu.conv picks one): the col2im scatter of the input gradient and
# the depthwise convolution.  Each entry is serial over the output pixels [i0, i1)
# of a patch matrix (dlk_patches.h); the dispatcher splits the pixels among threads in
# pieces that depend only on the shapes, and sums partial results in piece order, so
# results are the same for any thread count.  Shapes: see conv.pxd.

from cython cimport floating
from libc.string cimport memset
from cpython.pycapsule cimport PyCapsule_New

from kernels.cpu._patches cimport dlk_patches, dlk_pixel, dlk_pixel_at, dlk_pixel_step
from kernels.cpu.conv cimport conv_table


cdef void _col2im(const dlk_patches* g, const floating* dcols, Py_ssize_t ldd,
                  floating* dx, Py_ssize_t i0, Py_ssize_t i1) noexcept nogil:
    """dx[the pixel P[i, (a, b, ch)] reads, c0 + ch] += dcols[i - i0, (a, b, ch)]: pixels
    in order, then cells in order (padding dropped)."""
    cdef Py_ssize_t i, cell, ch, y, xx, y0, x0, base
    cdef Py_ssize_t cg = g.cg
    cdef floating* d
    cdef const floating* s
    cdef dlk_pixel q
    dlk_pixel_at(g, i0, &q)
    for i in range(i0, i1):
        base, y0, x0 = q.base, q.y0, q.x0
        dlk_pixel_step(g, &q)
        for cell in range(g.kh * g.kw):
            y = y0 + (cell // g.kw) * g.dh
            xx = x0 + (cell % g.kw) * g.dw
            if y < 0 or y >= g.h or xx < 0 or xx >= g.w:
                continue
            d = dx + base + (y * g.w + xx) * g.c + g.c0
            s = dcols + (i - i0) * ldd + cell * cg
            for ch in range(cg):
                d[ch] = d[ch] + s[ch]


cdef void _dw_fwd(const dlk_patches* g, const floating* w, Py_ssize_t dm,
                  const floating* bias, floating* out, Py_ssize_t i0,
                  Py_ssize_t i1) noexcept nogil:
    """Depthwise: out[i, c*dm + m] = bias + sum over the window's cells in order of
    x[cell's pixel, c] w[cell, c, m]."""
    cdef const floating* x = <const floating*>g.x
    cdef Py_ssize_t cin = g.c, cout = g.c * dm
    cdef Py_ssize_t i, cell, ch, m, y, xx, y0, x0, base
    cdef floating v
    cdef floating* o
    cdef const floating* xs
    cdef const floating* ws
    cdef dlk_pixel q
    dlk_pixel_at(g, i0, &q)
    for i in range(i0, i1):
        base, y0, x0 = q.base, q.y0, q.x0
        dlk_pixel_step(g, &q)
        o = out + i * cout
        for ch in range(cout):
            o[ch] = bias[ch] if bias != NULL else 0
        for cell in range(g.kh * g.kw):
            y = y0 + (cell // g.kw) * g.dh
            xx = x0 + (cell % g.kw) * g.dw
            ws = w + cell * cout
            if y < 0 or y >= g.h or xx < 0 or xx >= g.w:
                # a padded cell adds 0 * w (NaN where w is not finite, as the spec's
                # xpad * w)
                for ch in range(cout):
                    o[ch] = o[ch] + 0 * ws[ch]
                continue
            xs = x + base + (y * g.w + xx) * cin
            if dm == 1:
                for ch in range(cin):
                    o[ch] = o[ch] + xs[ch] * ws[ch]
            else:
                for ch in range(cin):
                    v = xs[ch]
                    for m in range(dm):
                        o[ch * dm + m] = o[ch * dm + m] + v * ws[ch * dm + m]


cdef void _dw_wgrad(const dlk_patches* g, const floating* dz, Py_ssize_t dm,
                    Py_ssize_t i0, Py_ssize_t i1, floating* acc) noexcept nogil:
    """Depthwise: acc[cell, c, m] = sum over pixels in order of x[cell's pixel, c]
    dz[i, c*dm + m]."""
    cdef const floating* x = <const floating*>g.x
    cdef Py_ssize_t cin = g.c, cout = g.c * dm
    cdef Py_ssize_t i, cell, j, y, xx, y0, x0, base, ch, m
    cdef floating* a
    cdef const floating* xs
    cdef const floating* d
    memset(acc, 0, g.kh * g.kw * cout * sizeof(floating))
    cdef dlk_pixel q
    dlk_pixel_at(g, i0, &q)
    for i in range(i0, i1):
        base, y0, x0 = q.base, q.y0, q.x0
        dlk_pixel_step(g, &q)
        d = dz + i * cout
        for cell in range(g.kh * g.kw):
            y = y0 + (cell // g.kw) * g.dh
            xx = x0 + (cell % g.kw) * g.dw
            a = acc + cell * cout
            if y < 0 or y >= g.h or xx < 0 or xx >= g.w:
                # a padded cell adds 0 * dz (NaN where dz is not finite, as the spec)
                for j in range(cout):
                    a[j] = a[j] + 0 * d[j]
                continue
            xs = x + base + (y * g.w + xx) * cin
            if dm == 1:
                for j in range(cin):
                    a[j] = a[j] + xs[j] * d[j]
            else:
                for ch in range(cin):
                    for m in range(dm):
                        a[ch * dm + m] = a[ch * dm + m] + xs[ch] * d[ch * dm + m]


cdef void _dw_xgrad(const dlk_patches* g, const floating* dz, const floating* w,
                    Py_ssize_t dm, floating* dx, Py_ssize_t i0,
                    Py_ssize_t i1) noexcept nogil:
    """Depthwise: dx[cell's pixel, c] += sum_m dz[i, c*dm + m] w[cell, c, m], pixels in
    order, then cells."""
    cdef Py_ssize_t cin = g.c, cout = g.c * dm
    cdef Py_ssize_t i, cell, ch, m, y, xx, y0, x0, base
    cdef floating s
    cdef floating* dp
    cdef const floating* ws
    cdef const floating* d
    cdef dlk_pixel q
    dlk_pixel_at(g, i0, &q)
    for i in range(i0, i1):
        base, y0, x0 = q.base, q.y0, q.x0
        dlk_pixel_step(g, &q)
        d = dz + i * cout
        for cell in range(g.kh * g.kw):
            y = y0 + (cell // g.kw) * g.dh
            xx = x0 + (cell % g.kw) * g.dw
            if y < 0 or y >= g.h or xx < 0 or xx >= g.w:
                continue
            dp = dx + base + (y * g.w + xx) * cin
            ws = w + cell * cout
            if dm == 1:
                for ch in range(cin):
                    dp[ch] = dp[ch] + d[ch] * ws[ch]
            else:
                for ch in range(cin):
                    s = 0
                    for m in range(dm):
                        s = s + d[ch * dm + m] * ws[ch * dm + m]
                    dp[ch] = dp[ch] + s


# ---------------------------------------------------------------- the table

cdef void _col2im_f32(const dlk_patches* g, const float* dcols, Py_ssize_t ldd,
                      float* dx, Py_ssize_t i0, Py_ssize_t i1) noexcept nogil:
    _col2im(g, dcols, ldd, dx, i0, i1)


cdef void _col2im_f64(const dlk_patches* g, const double* dcols, Py_ssize_t ldd,
                      double* dx, Py_ssize_t i0, Py_ssize_t i1) noexcept nogil:
    _col2im(g, dcols, ldd, dx, i0, i1)


cdef void _dw_fwd_f32(const dlk_patches* g, const float* w, Py_ssize_t dm,
                      const float* bias, float* out, Py_ssize_t i0,
                      Py_ssize_t i1) noexcept nogil:
    _dw_fwd(g, w, dm, bias, out, i0, i1)


cdef void _dw_fwd_f64(const dlk_patches* g, const double* w, Py_ssize_t dm,
                      const double* bias, double* out, Py_ssize_t i0,
                      Py_ssize_t i1) noexcept nogil:
    _dw_fwd(g, w, dm, bias, out, i0, i1)


cdef void _dw_wgrad_f32(const dlk_patches* g, const float* dz, Py_ssize_t dm,
                        Py_ssize_t i0, Py_ssize_t i1, float* acc) noexcept nogil:
    _dw_wgrad(g, dz, dm, i0, i1, acc)


cdef void _dw_wgrad_f64(const dlk_patches* g, const double* dz, Py_ssize_t dm,
                        Py_ssize_t i0, Py_ssize_t i1, double* acc) noexcept nogil:
    _dw_wgrad(g, dz, dm, i0, i1, acc)


cdef void _dw_xgrad_f32(const dlk_patches* g, const float* dz, const float* w,
                        Py_ssize_t dm, float* dx, Py_ssize_t i0,
                        Py_ssize_t i1) noexcept nogil:
    _dw_xgrad(g, dz, w, dm, dx, i0, i1)


cdef void _dw_xgrad_f64(const dlk_patches* g, const double* dz, const double* w,
                        Py_ssize_t dm, double* dx, Py_ssize_t i0,
                        Py_ssize_t i1) noexcept nogil:
    _dw_xgrad(g, dz, w, dm, dx, i0, i1)


cdef conv_table _table
_table.col2im_f32 = _col2im_f32
_table.col2im_f64 = _col2im_f64
_table.dw_fwd_f32 = _dw_fwd_f32
_table.dw_fwd_f64 = _dw_fwd_f64
_table.dw_wgrad_f32 = _dw_wgrad_f32
_table.dw_wgrad_f64 = _dw_wgrad_f64
_table.dw_xgrad_f32 = _dw_xgrad_f32
_table.dw_xgrad_f64 = _dw_xgrad_f64


def capsule():
    """This variant's entry points: a capsule ("kernels.conv_table") of a conv_table."""
    return PyCapsule_New(<void*>&_table, "kernels.conv_table", NULL)
