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
#include <string.h>

#include "dlk_gemm_vector.h"

typedef struct {
    const void* x;              /* the input, element [0, 0, 0, 0] */
    Py_ssize_t h, w, c;         /* image height and width; channels of x (pixel stride) */
    Py_ssize_t c0, cg;          /* first channel of this group; channels per group */
    Py_ssize_t kh, kw;          /* kernel cells */
    Py_ssize_t sh, sw, dh, dw;  /* strides, dilation */
    Py_ssize_t pt, pl;          /* padding before (top, left) */
    Py_ssize_t oh, ow;          /* output height and width */
    int transposed;             /* as a GEMM's A operand: 0 for P, 1 for P^T */
    Py_ssize_t i0;              /* the operand's row 0 is P's row i0 (a piece of P) */
} dlk_patches;

/* An output pixel and its window, stepped from one row of P to the next without
 * divisions (dlk_pixel_at divides once). */
typedef struct {
    Py_ssize_t base, oy, ox, y0, x0;    /* image offset, output pixel, window corner */
} dlk_pixel;

static inline void dlk_pixel_at(const dlk_patches* g, Py_ssize_t i, dlk_pixel* q) {
    Py_ssize_t per_image = g->oh * g->ow;
    i += g->i0;
    Py_ssize_t image = i / per_image;
    Py_ssize_t r = i - image * per_image;
    q->oy = r / g->ow;
    q->ox = r - q->oy * g->ow;
    q->y0 = q->oy * g->sh - g->pt;
    q->x0 = q->ox * g->sw - g->pl;
    q->base = image * g->h * g->w * g->c;
}

/* True when the window of the pixel at q lies inside the image (reads no padding). */
static inline int dlk_window_inside(const dlk_patches* g, const dlk_pixel* q) {
    return q->y0 >= 0 && q->y0 + (g->kh - 1) * g->dh < g->h
        && q->x0 >= 0 && q->x0 + (g->kw - 1) * g->dw < g->w;
}

static inline void dlk_pixel_step(const dlk_patches* g, dlk_pixel* q) {
    q->x0 += g->sw;
    if (++q->ox == g->ow) {
        q->ox = 0;
        q->x0 = -g->pl;
        q->y0 += g->sh;
        if (++q->oy == g->oh) {
            q->oy = 0;
            q->y0 = -g->pt;
            q->base += g->h * g->w * g->c;
        }
    }
}

/* A walk along one row of P from column p, one run (a cell's channels) at a time: the
 * cell and channel are divided out once, then stepped (no division per run). */
typedef struct {
    Py_ssize_t base, y0, x0;    /* the row's image offset and window corner */
    Py_ssize_t a, b, ch;        /* the current cell (a, b) and channel */
} dlk_patch_walk;

static inline void dlk_patch_start(const dlk_patches* g, const dlk_pixel* q, Py_ssize_t p,
                                   dlk_patch_walk* k) {
    Py_ssize_t cell = p / g->cg;
    k->base = q->base;
    k->y0 = q->y0;
    k->x0 = q->x0;
    k->ch = p - cell * g->cg;
    k->a = cell / g->kw;
    k->b = cell - k->a * g->kw;
}

/* The offset in x of the walk's next run, or -1 for padding; *run is set to the
 * cell's remaining channels, at most `limit`, and the walk moves past them. */
static inline Py_ssize_t dlk_patch_next(const dlk_patches* g, dlk_patch_walk* k,
                                        Py_ssize_t limit, Py_ssize_t* run) {
    Py_ssize_t y = k->y0 + k->a * g->dh;
    Py_ssize_t xx = k->x0 + k->b * g->dw;
    Py_ssize_t n = g->cg - k->ch;
    Py_ssize_t off = -1;
    if (n > limit)
        n = limit;
    *run = n;
    if (y >= 0 && y < g->h && xx >= 0 && xx < g->w)
        off = k->base + (y * g->w + xx) * g->c + g->c0 + k->ch;
    k->ch += n;
    if (k->ch == g->cg) {
        k->ch = 0;
        if (++k->b == g->kw) {
            k->b = 0;
            k->a++;
        }
    }
    return off;
}

/* One full micro-panel of 8 rows (the pixel at *px and the 7 after it; *px moves past
 * them): panel[q*8 + r] = P[row r, p0 + q] for q < kc.  The rows' runs have the same
 * lengths (they depend on the column only), so the 8 rows are walked together and
 * each run is moved by 8 x 8 transposes from 8 row pointers (a padded row reads
 * zeros). */
#define DLK_PATCH_PACK8(T, SUF)                                                        \
static inline void dlk_patch_pack8_##SUF(const dlk_patches* g, dlk_pixel* px,          \
                                         Py_ssize_t p0, Py_ssize_t kc, T* panel) {     \
    static const T zeros[8] = {0};                                                      \
    const T* x = (const T*)g->x;                                                        \
    dlk_patch_walk k[8];                                                                \
    Py_ssize_t off[8];                                                                  \
    const T* rows[8];                                                                   \
    Py_ssize_t q, r, t, run = 0;                                                        \
    for (r = 0; r < 8; r++) {                                                           \
        dlk_patch_start(g, px, p0, &k[r]);                                              \
        dlk_pixel_step(g, px);                                                          \
    }                                                                                   \
    for (q = 0; q < kc; q += run) {                                                     \
        for (r = 0; r < 8; r++)                                                         \
            off[r] = dlk_patch_next(g, &k[r], kc - q, &run);                            \
        for (t = 0; t + 8 <= run; t += 8) {                                             \
            for (r = 0; r < 8; r++)                                                     \
                rows[r] = off[r] < 0 ? zeros : x + off[r] + t;                          \
            dlk_tr8p_##SUF(rows, panel + (q + t) * 8, 8);                               \
        }                                                                               \
        for (; t < run; t++)                                                            \
            for (r = 0; r < 8; r++)                                                     \
                panel[(q + t) * 8 + r] = off[r] < 0 ? 0 : x[off[r] + t];                \
    }                                                                                   \
}
DLK_PATCH_PACK8(float, f)
DLK_PATCH_PACK8(double, d)

/* Pack P[i0 : i0 + mc, p0 : p0 + kc] into ceil(mc / MR) micro-panels of MR rows, as
 * the GEMM's _pack_a: dst[ip*MR*kc + q*MR + r] = P[i0 + ip*MR + r, p0 + q]; rows past
 * mc are zero. */
#define DLK_REL_MAX 512
/* rel[q] = the offset of P's column p0 + q from its window's corner (the cell's pixel
 * and the channel), for q < kc. */
static inline void dlk_patch_offsets(const dlk_patches* g, Py_ssize_t p0, Py_ssize_t kc,
                                     Py_ssize_t* rel) {
    Py_ssize_t q;
    for (q = 0; q < kc; q++) {
        Py_ssize_t col = p0 + q, cell = col / g->cg, a = cell / g->kw;
        rel[q] = (a * g->dh * g->w + (cell - a * g->kw) * g->dw) * g->c + g->c0
                 + col - cell * g->cg;
    }
}

/* The columns [p0, p0 + kc) of P as runs within cells: offs[u] (the run's offset from
 * a window's corner) and lens[u]; returns the number of runs (at most kc). */
static inline Py_ssize_t dlk_patch_runs(const dlk_patches* g, Py_ssize_t p0, Py_ssize_t kc,
                                        Py_ssize_t* offs, Py_ssize_t* lens) {
    Py_ssize_t q = 0, runs = 0;
    while (q < kc) {
        Py_ssize_t col = p0 + q, cell = col / g->cg, a = cell / g->kw;
        Py_ssize_t ch = col - cell * g->cg;
        Py_ssize_t n = g->cg - ch < kc - q ? g->cg - ch : kc - q;
        offs[runs] = (a * g->dh * g->w + (cell - a * g->kw) * g->dw) * g->c + g->c0 + ch;
        lens[runs++] = n;
        q += n;
    }
    return runs;
}

/* rows[r] = where the window of P's row i0 + r starts in the image (its corner), for
 * r < mc; inside[r] = whether that window lies inside the image (reads no padding). */
#define DLK_PATCH_CORNERS(T, SUF)                                                      \
static inline void dlk_patch_corners_##SUF(const dlk_patches* g, Py_ssize_t i0,        \
                                           Py_ssize_t mc, const T** rows,               \
                                           char* inside) {                              \
    const T* x = (const T*)g->x;                                                        \
    dlk_pixel px;                                                                       \
    Py_ssize_t r;                                                                       \
    dlk_pixel_at(g, i0, &px);                                                           \
    for (r = 0; r < mc; r++) {                                                          \
        inside[r] = (char)dlk_window_inside(g, &px);                                    \
        rows[r] = inside[r] ? x + px.base + (px.y0 * g->w + px.x0) * g->c : x;          \
        dlk_pixel_step(g, &px);                                                         \
    }                                                                                   \
}
DLK_PATCH_CORNERS(float, f)
DLK_PATCH_CORNERS(double, d)

#define DLK_PATCH_PACK_A(T, SUF, TR_OK)                                                \
static inline void dlk_patch_pack_a_##SUF(const dlk_patches* g, Py_ssize_t i0,         \
                                          Py_ssize_t p0, Py_ssize_t mc, Py_ssize_t kc, \
                                          Py_ssize_t MR, T* dst) {                     \
    const T* x = (const T*)g->x;                                                        \
    Py_ssize_t ip, r, q, t, run, off;                                                   \
    Py_ssize_t rel[DLK_REL_MAX];                                                        \
    dlk_patch_walk k;                                                                   \
    dlk_pixel px;                                                                       \
    /* short runs (a first layer's 1-3 channels): each column's offset from the window's \
       corner in a table, for the rows whose window lies inside the image */            \
    int table = g->cg < 8 && kc <= DLK_REL_MAX;                                         \
    Py_ssize_t rs = g->sw * g->c;                                                       \
    if (table)                                                                          \
        dlk_patch_offsets(g, p0, kc, rel);                                              \
    dlk_pixel_at(g, i0, &px);                                                           \
    for (ip = 0; ip * MR < mc; ip++) {                                                  \
        T* panel = dst + ip * MR * kc;                                                  \
        if (MR == 8 && mc - ip * MR >= 8) {                                             \
            if (!table && TR_OK) {                                                      \
                dlk_patch_pack8_##SUF(g, &px, p0, kc, panel);                           \
                continue;                                                               \
            }                                                                           \
            if (table && px.ox + 7 < g->ow && dlk_window_inside(g, &px)                \
                    && px.x0 + 7 * g->sw + (g->kw - 1) * g->dw < g->w) {                \
                /* 8 pixels of one output row inside the image: row r's cell values   \
                   are row 0's moved r strides (rs elements); one channel and stride 1: \
                   8 contiguous values */                                               \
                const T* corner = x + px.base + (px.y0 * g->w + px.x0) * g->c;          \
                if (rs == 1) {                                                          \
                    for (q = 0; q < kc; q++)                                            \
                        memcpy(panel + q * 8, corner + rel[q], 8 * sizeof(T));          \
                } else {                                                                \
                    for (q = 0; q < kc; q++)                                            \
                        for (r = 0; r < 8; r++)                                         \
                            panel[q * 8 + r] = corner[rel[q] + r * rs];                 \
                }                                                                       \
                for (r = 0; r < 8; r++)                                                 \
                    dlk_pixel_step(g, &px);                                             \
                continue;                                                               \
            }                                                                           \
        }                                                                               \
        for (r = 0; r < MR; r++) {                                                      \
            T* d = panel + r;                                                           \
            if (ip * MR + r >= mc) {                                                    \
                for (q = 0; q < kc; q++)                                                \
                    d[q * MR] = 0;                                                      \
                continue;                                                               \
            }                                                                           \
            if (table && dlk_window_inside(g, &px)) {                                   \
                const T* corner = x + px.base + (px.y0 * g->w + px.x0) * g->c;          \
                for (q = 0; q < kc; q++)                                                \
                    d[q * MR] = corner[rel[q]];                                         \
                dlk_pixel_step(g, &px);                                                 \
                continue;                                                               \
            }                                                                           \
            dlk_patch_start(g, &px, p0, &k);                                            \
            dlk_pixel_step(g, &px);                                                     \
            for (q = 0; q < kc; q += run) {                                             \
                off = dlk_patch_next(g, &k, kc - q, &run);                              \
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
    Py_ssize_t q, j, t, run, off;                                                       \
    dlk_patch_walk k;                                                                   \
    dlk_pixel px;                                                                       \
    Py_ssize_t rel[DLK_REL_MAX], rj[DLK_REL_MAX], rn[DLK_REL_MAX], runs = 0;            \
    /* the panel's columns as runs within cells, each run's offset from a window's    \
       corner (the same for every pixel): a pixel whose window lies inside the image  \
       is then copied run by run, without walking its cells */                          \
    int table = nr <= DLK_REL_MAX;                                                      \
    if (table) {                                                                        \
        dlk_patch_offsets(g, j0, nr, rel);                                              \
        for (j = 0; j < nr; j += rn[runs++]) {                                          \
            Py_ssize_t ch = (j0 + j) % g->cg;                                           \
            rj[runs] = j;                                                               \
            rn[runs] = g->cg - ch < nr - j ? g->cg - ch : nr - j;                       \
        }                                                                               \
    }                                                                                   \
    dlk_pixel_at(g, i0, &px);                                                           \
    for (q = 0; q < kc; q++) {                                                          \
        T* d = dst + q * NR;                                                            \
        if (table && dlk_window_inside(g, &px)) {                                       \
            const T* corner = x + px.base + (px.y0 * g->w + px.x0) * g->c;              \
            Py_ssize_t u;                                                               \
            if (g->cg < 8) {            /* short runs: element by element */            \
                for (j = 0; j < nr; j++)                                                \
                    d[j] = corner[rel[j]];                                              \
            } else {                                                                    \
                for (u = 0; u < runs; u++)                                              \
                    memcpy(d + rj[u], corner + rel[rj[u]], rn[u] * sizeof(T));          \
            }                                                                           \
            for (j = nr; j < NR; j++)                                                   \
                d[j] = 0;                                                               \
            dlk_pixel_step(g, &px);                                                     \
            continue;                                                                   \
        }                                                                               \
        dlk_patch_start(g, &px, j0, &k);                                                \
        dlk_pixel_step(g, &px);                                                         \
        for (j = 0; j < nr; j += run) {                                                 \
            off = dlk_patch_next(g, &k, nr - j, &run);                                  \
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

DLK_PATCH_PACK_A(float, f, DLK_TR8_F_OK)
DLK_PATCH_PACK_A(double, d, DLK_TR8_D_OK)
DLK_PATCH_PACK_B(float, f)
DLK_PATCH_PACK_B(double, d)

#endif
