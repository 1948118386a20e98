# The convolution kernels that are not GEMMs, compiled once per instruction set like
# the other families (conv_base, conv_avx2, conv_avx512 include this file; the
# dispatcher kernels.cpu.conv picks one): the direct kernels of a first layer (a patch
# matrix of at most DIRECT_MAX_K columns), the col2im scatter of the input gradient,
# and the depthwise convolution.  Each entry is serial over the output pixels [i0, i1)
# of a patch matrix (dlk_patches.h); the dispatcher splits the pixels among threads in
# pieces that depend only on the shapes, and sums partial results in piece order, so
# results are the same for any thread count.  Shapes: see conv.pxd.

from cython cimport floating
from libc.string cimport memset
from cpython.pycapsule cimport PyCapsule_New

from kernels.cpu._patches cimport (dlk_patches, dlk_pixel, dlk_pixel_at, dlk_pixel_step,
                                   dlk_patch_walk, dlk_patch_start, dlk_patch_next)
from kernels.cpu.conv cimport conv_table, DIRECT_MAX_K

cdef enum:
    _CB = 16          # output channels per register block of the direct kernels


cdef inline void _gather_row(const dlk_patches* g, const dlk_pixel* q, Py_ssize_t k,
                             floating* pv) noexcept nogil:
    """pv[p] = P[q's row, p] for p < k (0 in the padding)."""
    cdef const floating* x = <const floating*>g.x
    cdef Py_ssize_t p, t, run, off
    cdef dlk_patch_walk walk
    dlk_patch_start(g, q, 0, &walk)
    p = 0
    while p < k:
        off = dlk_patch_next(g, &walk, k - p, &run)
        if off < 0:
            for t in range(run):
                pv[p + t] = 0
        else:
            for t in range(run):
                pv[p + t] = x[off + t]
        p += run


cdef inline void _direct_block(Py_ssize_t k, const floating* pv, const floating* w,
                               Py_ssize_t cout, const floating* bias, Py_ssize_t cb,
                               Py_ssize_t nb, Py_ssize_t rows, floating* o,
                               Py_ssize_t ldo) noexcept nogil:
    """o[r, cb:cb+nb] = bias + sum_p pv[r*DIRECT_MAX_K + p] w[p, cb:cb+nb] for `rows`
    (<= 4) pixels at once: 4 independent accumulator blocks share each load of w."""
    cdef floating a0[_CB]
    cdef floating a1[_CB]
    cdef floating a2[_CB]
    cdef floating a3[_CB]
    cdef Py_ssize_t p, t
    cdef floating v0, v1, v2, v3, wt
    cdef const floating* wp
    for t in range(_CB):
        wt = bias[cb + t] if bias != NULL and t < nb else 0
        a0[t] = wt
        a1[t] = wt
        a2[t] = wt
        a3[t] = wt
    if nb == _CB:
        for p in range(k):
            v0 = pv[p]
            v1 = pv[DIRECT_MAX_K + p]
            v2 = pv[2 * DIRECT_MAX_K + p]
            v3 = pv[3 * DIRECT_MAX_K + p]
            wp = w + p * cout + cb
            for t in range(_CB):
                a0[t] = a0[t] + v0 * wp[t]
                a1[t] = a1[t] + v1 * wp[t]
                a2[t] = a2[t] + v2 * wp[t]
                a3[t] = a3[t] + v3 * wp[t]
    else:
        for p in range(k):
            v0 = pv[p]
            v1 = pv[DIRECT_MAX_K + p]
            v2 = pv[2 * DIRECT_MAX_K + p]
            v3 = pv[3 * DIRECT_MAX_K + p]
            wp = w + p * cout + cb
            for t in range(nb):
                a0[t] = a0[t] + v0 * wp[t]
                a1[t] = a1[t] + v1 * wp[t]
                a2[t] = a2[t] + v2 * wp[t]
                a3[t] = a3[t] + v3 * wp[t]
    for t in range(nb):
        o[t] = a0[t]
    if rows > 1:
        for t in range(nb):
            o[ldo + t] = a1[t]
    if rows > 2:
        for t in range(nb):
            o[2 * ldo + t] = a2[t]
    if rows > 3:
        for t in range(nb):
            o[3 * ldo + t] = a3[t]


cdef void _direct_fwd(const dlk_patches* g, const floating* w, const floating* bias,
                      Py_ssize_t cout, floating* out, Py_ssize_t ldo, Py_ssize_t i0,
                      Py_ssize_t i1) noexcept nogil:
    """out[i, :] = bias + sum_p P[i, p] w[p, :]: 4 pixels at a time, the output channels
    in register blocks of _CB (a fixed trip count the compiler vectorises), p in
    order (each pixel's arithmetic does not depend on its neighbours)."""
    cdef Py_ssize_t k = g.kh * g.kw * g.cg
    cdef floating pv[4 * DIRECT_MAX_K]
    cdef Py_ssize_t i, r, rows, p, cb
    cdef dlk_pixel q
    dlk_pixel_at(g, i0, &q)
    i = i0
    while i < i1:
        rows = min(4, i1 - i)
        for r in range(4):
            if r < rows:
                _gather_row(g, &q, k, pv + r * DIRECT_MAX_K)
                dlk_pixel_step(g, &q)
            else:
                for p in range(k):
                    pv[r * DIRECT_MAX_K + p] = 0
        cb = 0
        while cb < cout:
            _direct_block(k, pv, w, cout, bias, cb, min(<Py_ssize_t>_CB, cout - cb), rows,
                          out + i * ldo + cb, ldo)
            cb += _CB
        i += rows


cdef void _direct_dw(const dlk_patches* g, const floating* dz, Py_ssize_t cout,
                     Py_ssize_t ldz, Py_ssize_t i0, Py_ssize_t i1,
                     floating* acc) noexcept nogil:
    """acc[p, :] = sum over pixels i0..i1-1, in order, of P[i, p] dz[i, :]."""
    cdef Py_ssize_t k = g.kh * g.kw * g.cg
    cdef floating pv[DIRECT_MAX_K]
    cdef Py_ssize_t i, p, co
    cdef floating v
    cdef floating* a
    cdef const floating* d
    cdef dlk_pixel q
    memset(acc, 0, k * cout * sizeof(floating))
    dlk_pixel_at(g, i0, &q)
    for i in range(i0, i1):
        _gather_row(g, &q, k, pv)
        dlk_pixel_step(g, &q)
        d = dz + i * ldz
        for p in range(k):
            v = pv[p]
            a = acc + p * cout
            for co in range(cout):
                a[co] = a[co] + v * d[co]


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
            if y < 0 or y >= g.h or xx < 0 or xx >= g.w:
                continue
            xs = x + base + (y * g.w + xx) * cin
            ws = w + cell * cout
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
            if y < 0 or y >= g.h or xx < 0 or xx >= g.w:
                continue
            xs = x + base + (y * g.w + xx) * cin
            a = acc + cell * cout
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

cdef void _direct_fwd_f32(const dlk_patches* g, const float* w, const float* bias,
                          Py_ssize_t cout, float* out, Py_ssize_t ldo, Py_ssize_t i0,
                          Py_ssize_t i1) noexcept nogil:
    _direct_fwd(g, w, bias, cout, out, ldo, i0, i1)


cdef void _direct_fwd_f64(const dlk_patches* g, const double* w, const double* bias,
                          Py_ssize_t cout, double* out, Py_ssize_t ldo, Py_ssize_t i0,
                          Py_ssize_t i1) noexcept nogil:
    _direct_fwd(g, w, bias, cout, out, ldo, i0, i1)


cdef void _direct_dw_f32(const dlk_patches* g, const float* dz, Py_ssize_t cout,
                         Py_ssize_t ldz, Py_ssize_t i0, Py_ssize_t i1,
                         float* acc) noexcept nogil:
    _direct_dw(g, dz, cout, ldz, i0, i1, acc)


cdef void _direct_dw_f64(const dlk_patches* g, const double* dz, Py_ssize_t cout,
                         Py_ssize_t ldz, Py_ssize_t i0, Py_ssize_t i1,
                         double* acc) noexcept nogil:
    _direct_dw(g, dz, cout, ldz, i0, i1, acc)


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
_table.direct_fwd_f32 = _direct_fwd_f32
_table.direct_fwd_f64 = _direct_fwd_f64
_table.direct_dw_f32 = _direct_dw_f32
_table.direct_dw_f64 = _direct_dw_f64
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
