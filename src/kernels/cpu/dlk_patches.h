/* The patch matrix of a 2-D convolution, read straight from the image: the GEMM packs
 * its blocks from here (gemm_impl.pxi), so no im2col buffer of the whole batch exists.
 *
 * For an NHWC input x and one group of channels, the patch matrix P has one row per
 * output pixel i = (image, oy, ox) (row-major over (n, oh, ow)) and one column per
 * kernel cell and channel p = (a, b, ch) (row-major over (kh, kw, cg): the order of a
 * Keras kernel's rows, w.reshape(kh * kw * cg, filters)):
 *
 *     P[i, p] = x[image, oy*sh - pt + a*dh, ox*sw - pl + b*dw, c0 + ch]
 *
 * and 0 where that pixel lies in the padding.  The channels of one cell are
 * contiguous in x, so P is gathered in runs of up to cg elements.
 *
 * Included by the GEMM variants (compiled per instruction set); declared for Cython in
 * _patches.pxd.  Everything here is static inline: each including module gets its own
 * copy, compiled with its own flags.
 */
#ifndef DLK_PATCHES_H
#define DLK_PATCHES_H

#include <stddef.h>

typedef struct {
    const void* x;              /* the input, element [0, 0, 0, 0] */
    Py_ssize_t h, w, c;         /* image height and width; channels of x (pixel stride) */
    Py_ssize_t c0, cg;          /* first channel of this group; channels per group */
    Py_ssize_t kh, kw;          /* kernel cells */
    Py_ssize_t sh, sw, dh, dw;  /* strides, dilation */
    Py_ssize_t pt, pl;          /* padding before (top, left) */
    Py_ssize_t oh, ow;          /* output height and width */
} dlk_patches;

/* Where row i's window starts: the image's first element (offset, in elements) and
 * the window's top-left input pixel (may lie in the padding). */
static inline Py_ssize_t dlk_patch_row(const dlk_patches* g, Py_ssize_t i,
                                       Py_ssize_t* y0, Py_ssize_t* x0) {
    Py_ssize_t per_image = g->oh * g->ow;
    Py_ssize_t image = i / per_image;
    Py_ssize_t r = i - image * per_image;
    Py_ssize_t oy = r / g->ow;
    Py_ssize_t ox = r - oy * g->ow;
    *y0 = oy * g->sh - g->pt;
    *x0 = ox * g->sw - g->pl;
    return image * g->h * g->w * g->c;
}

/* The offset of P[i, p .. p + run) in x (a run within one cell), or -1 for padding;
 * *run is set to the cell's remaining channels, at most `limit`. */
static inline Py_ssize_t dlk_patch_run(const dlk_patches* g, Py_ssize_t base,
                                       Py_ssize_t y0, Py_ssize_t x0, Py_ssize_t p,
                                       Py_ssize_t limit, Py_ssize_t* run) {
    Py_ssize_t cell = p / g->cg;
    Py_ssize_t ch = p - cell * g->cg;
    Py_ssize_t a = cell / g->kw;
    Py_ssize_t b = cell - a * g->kw;
    Py_ssize_t y = y0 + a * g->dh;
    Py_ssize_t xx = x0 + b * g->dw;
    Py_ssize_t n = g->cg - ch;
    *run = n < limit ? n : limit;
    if (y < 0 || y >= g->h || xx < 0 || xx >= g->w)
        return -1;
    return base + (y * g->w + xx) * g->c + g->c0 + ch;
}

/* Pack P[i0 : i0 + mc, p0 : p0 + kc] into ceil(mc / MR) micro-panels of MR rows, as
 * the GEMM's _pack_a: dst[ip*MR*kc + q*MR + r] = P[i0 + ip*MR + r, p0 + q]; rows past
 * mc are zero. */
#define DLK_PATCH_PACK_A(T, SUF)                                                       \
static inline void dlk_patch_pack_a_##SUF(const dlk_patches* g, Py_ssize_t i0,         \
                                          Py_ssize_t p0, Py_ssize_t mc, Py_ssize_t kc, \
                                          Py_ssize_t MR, T* dst) {                     \
    const T* x = (const T*)g->x;                                                        \
    Py_ssize_t ip, r, q, t, run, off, base, y0, x0;                                     \
    for (ip = 0; ip * MR < mc; ip++) {                                                  \
        T* panel = dst + ip * MR * kc;                                                  \
        for (r = 0; r < MR; r++) {                                                      \
            T* d = panel + r;                                                           \
            if (ip * MR + r >= mc) {                                                    \
                for (q = 0; q < kc; q++)                                                \
                    d[q * MR] = 0;                                                      \
                continue;                                                               \
            }                                                                           \
            base = dlk_patch_row(g, i0 + ip * MR + r, &y0, &x0);                        \
            for (q = 0; q < kc; q += run) {                                             \
                off = dlk_patch_run(g, base, y0, x0, p0 + q, kc - q, &run);             \
                if (off < 0) {                                                          \
                    for (t = 0; t < run; t++)                                           \
                        d[(q + t) * MR] = 0;                                            \
                } else {                                                                \
                    const T* s = x + off;                                               \
                    for (t = 0; t < run; t++)                                           \
                        d[(q + t) * MR] = s[t];                                         \
                }                                                                       \
            }                                                                           \
        }                                                                               \
    }                                                                                   \
}

/* Pack P[i0 : i0 + kc, j0 : j0 + nr] (P as the GEMM's B operand: rows are output
 * pixels) into one NR-column micro-panel, as the GEMM's _pack_b_panel:
 * dst[q*NR + j] = P[i0 + q, j0 + j]; columns past nr are zero. */
#define DLK_PATCH_PACK_B(T, SUF)                                                       \
static inline void dlk_patch_pack_b_##SUF(const dlk_patches* g, Py_ssize_t i0,         \
                                          Py_ssize_t j0, Py_ssize_t kc, Py_ssize_t nr, \
                                          Py_ssize_t NR, T* dst) {                     \
    const T* x = (const T*)g->x;                                                        \
    Py_ssize_t q, j, t, run, off, base, y0, x0;                                         \
    for (q = 0; q < kc; q++) {                                                          \
        T* d = dst + q * NR;                                                            \
        base = dlk_patch_row(g, i0 + q, &y0, &x0);                                      \
        for (j = 0; j < nr; j += run) {                                                 \
            off = dlk_patch_run(g, base, y0, x0, j0 + j, nr - j, &run);                 \
            if (off < 0) {                                                              \
                for (t = 0; t < run; t++)                                               \
                    d[j + t] = 0;                                                       \
            } else {                                                                    \
                const T* s = x + off;                                                   \
                for (t = 0; t < run; t++)                                               \
                    d[j + t] = s[t];                                                    \
            }                                                                           \
        }                                                                               \
        for (j = nr; j < NR; j++)                                                       \
            d[j] = 0;                                                                   \
    }                                                                                   \
}

DLK_PATCH_PACK_A(float, f)
DLK_PATCH_PACK_A(double, d)
DLK_PATCH_PACK_B(float, f)
DLK_PATCH_PACK_B(double, d)

#endif
