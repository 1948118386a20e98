/* The GEMM's register-tiled kernels in C, on the vectors of gemm_vector.h:

     dlk_ukernel_f / _d   the blocked GEMM's micro-kernel: an MR x NR tile of packed
                          A and B micro-panels (the tile per instruction set is
                          DLK_UK_*; the including module's S_MR... must agree, checked
                          at import);
     dlk_rows_f / _d      C with few rows, B's rows read straight from memory;
     dlk_dot_tile_f / _d  C with few columns: dot products vectorised along k.

   Why C with explicit vectors: in plain Cython loops the vector axis and the register
   allocation of the accumulators were left to gcc's vectoriser and register
   allocator, whose choices changed with unrelated code (spilled accumulators, up to
   1.7x slower).  Included by the per-ISA GEMM modules through gemm_impl.pxi only. */
#ifndef DLK_GEMM_KERNELS_H
#define DLK_GEMM_KERNELS_H

#include "dlk_gemm_vector.h"

/* The dot-product tile, written once for both widths (T: float or double; VT, LANES:
   its vector type and lanes; REDUCE: its lane-sum tree):
       out[r * RJ + q] = sum_p a[r * rsa + p] * bt[q * ldbt + p]
   for r < DLK_DOT_RI (rows from nrows on repeat the last valid one), q < DLK_DOT_RJ,
   p < k.  The vector axis is k: each accumulator holds LANES partial sums (lane l: the
   p = l mod LANES, in order), reduced at the end by a fixed shuffle tree.  bt must hold
   zeros from k up to k rounded up to LANES; k >= LANES. */
#define DLK_DOT_TILE(SFX, T, VT, LANES, REDUCE)                                           \
static void dlk_dot_tile_##SFX(ptrdiff_t k, const T* a, ptrdiff_t rsa, ptrdiff_t nrows,   \
                               const T* bt, ptrdiff_t ldbt, T* out) {                     \
    const T* ar[DLK_DOT_RI];                                                              \
    VT acc[DLK_DOT_NACC];                                                                 \
    VT av[DLK_DOT_RI];                                                                    \
    VT grp[LANES];                                                                        \
    VT bv, s;                                                                             \
    ptrdiff_t p, kfull = k - k % LANES;                                                   \
    int r, q, q0;                                                                         \
    for (r = 0; r < DLK_DOT_RI; r++)                                                      \
        ar[r] = a + (r < nrows ? r : nrows - 1) * rsa;                                    \
    /* the first chunk initialises the accumulators (k >= LANES: no zero fill) */         \
    for (r = 0; r < DLK_DOT_RI; r++)                                                      \
        memcpy(&av[r], ar[r], sizeof(VT));                                                \
    for (q = 0; q < DLK_DOT_RJ; q++) {                                                    \
        memcpy(&bv, bt + q * ldbt, sizeof(VT));                                           \
        DLK_IN_REGISTER(bv);                                                              \
        for (r = 0; r < DLK_DOT_RI; r++)                                                  \
            acc[r * DLK_DOT_RJ + q] = av[r] * bv;                                         \
    }                                                                                     \
    for (p = LANES; p < kfull; p += LANES) {                                              \
        for (r = 0; r < DLK_DOT_RI; r++)                                                  \
            memcpy(&av[r], ar[r] + p, sizeof(VT));                                        \
        for (q = 0; q < DLK_DOT_RJ; q++) {                                                \
            memcpy(&bv, bt + q * ldbt + p, sizeof(VT));                                   \
            DLK_IN_REGISTER(bv);                                                          \
            for (r = 0; r < DLK_DOT_RI; r++)                                              \
                acc[r * DLK_DOT_RJ + q] += av[r] * bv;                                    \
        }                                                                                 \
    }                                                                                     \
    if (p < k) {                                                                          \
        for (r = 0; r < DLK_DOT_RI; r++) {                                                \
            av[r] = (VT){0};                                                              \
            memcpy(&av[r], ar[r] + p, (size_t)(k - p) * sizeof(T));                       \
        }                                                                                 \
        for (q = 0; q < DLK_DOT_RJ; q++) {                                                \
            memcpy(&bv, bt + q * ldbt + p, sizeof(VT));                                   \
            for (r = 0; r < DLK_DOT_RI; r++)                                              \
                acc[r * DLK_DOT_RJ + q] += av[r] * bv;                                    \
        }                                                                                 \
    }                                                                                     \
    for (q0 = 0; q0 < DLK_DOT_NACC; q0 += LANES) {                                        \
        for (q = 0; q < LANES; q++)                                                       \
            grp[q] = q0 + q < DLK_DOT_NACC ? acc[q0 + q] : (VT){0};                       \
        s = REDUCE(grp);                                                                  \
        for (q = 0; q < LANES && q0 + q < DLK_DOT_NACC; q++)                              \
            out[q0 + q] = s[q];                                                           \
    }                                                                                     \
}
DLK_DOT_TILE(f, float, dlk_vf, DLK_VF, dlk_reducef)
DLK_DOT_TILE(d, double, dlk_vd, DLK_VD, dlk_reduced)

/* Rank-1 updates of an R x (NRV * LANES) register tile, the body of the blocked GEMM's
   micro-kernel and of the rows kernels:
       out[r, :] = sum_p A[r, p] * B[p, :]     A[r, p] = a[r * rsa + p * csa],
                                               B[p, :] = b[p * rsb + 0 : NRV * LANES]
   in order of p (from a zero accumulator: the arithmetic of the plain-loop kernel this
   replaces).  The accumulators are explicit vectors: in plain loops gcc's register
   allocation of the tile changed with the code around it, spilling accumulators in
   some variants.  The NRV B vectors or the R A values are loaded first, whichever
   are fewer, so that the tile fits the 16 registers of AVX2/SSE2 (4 x 24 floats,
   2 x 24 doubles: checked with objdump, no stack access in the loop).
   out: R x (NRV * LANES), row-major. */
#define DLK_TILE_BODY(T, VT, LANES, R, NRV, k, a, rsa, csa, b, rsb, out)                 \
    do {                                                                                 \
        VT acc_[(R) * (NRV)], bv_[NRV];                                                  \
        const T* ap_ = (a);                                                              \
        const T* bp_ = (b);                                                              \
        ptrdiff_t p_;                                                                    \
        int i_, v_;                                                                      \
        for (i_ = 0; i_ < (R) * (NRV); i_++)                                             \
            acc_[i_] = (VT){0};                                                          \
        for (p_ = 0; p_ < (k); p_++) {                                                   \
            if ((NRV) <= (R)) {                                                          \
                for (v_ = 0; v_ < (NRV); v_++)                                           \
                    memcpy(&bv_[v_], bp_ + v_ * (LANES), sizeof(VT));                    \
                for (i_ = 0; i_ < (R); i_++) {                                           \
                    T s_ = ap_[i_ * (rsa)];                                              \
                    for (v_ = 0; v_ < (NRV); v_++)                                       \
                        acc_[i_ * (NRV) + v_] += s_ * bv_[v_];                           \
                }                                                                        \
            } else {                                                                     \
                T as_[R];                                                                \
                for (i_ = 0; i_ < (R); i_++)                                             \
                    as_[i_] = ap_[i_ * (rsa)];                                           \
                for (v_ = 0; v_ < (NRV); v_++) {                                         \
                    VT t_;                                                               \
                    memcpy(&t_, bp_ + v_ * (LANES), sizeof(VT));                         \
                    for (i_ = 0; i_ < (R); i_++)                                         \
                        acc_[i_ * (NRV) + v_] += as_[i_] * t_;                           \
                }                                                                        \
            }                                                                            \
            ap_ += (csa);                                                                \
            bp_ += (rsb);                                                                \
        }                                                                                \
        for (i_ = 0; i_ < (R) * (NRV); i_++)                                             \
            memcpy((out) + i_ * (LANES), &acc_[i_], sizeof(VT));                         \
    } while (0)

/* The same rank-1 updates with A's rows read in place (a convolution's patch rows
   whose windows lie inside the image, dlk_patches.h): row r's values are
   rows[r][off], its k columns the runs off = offs[u] .. offs[u] + lens[u] - 1 in order,
   B packed as the micro-kernel's.  The same arithmetic in the same order as
   DLK_TILE_BODY on those rows packed, so the same bits, without packing them. */
#define DLK_TILE_RUNS(T, VT, LANES, R, NRV, nruns, offs, lens, rows, b, rsb, out)        \
    do {                                                                                 \
        VT acc_[(R) * (NRV)], bv_[NRV];                                                  \
        const T* bp_ = (b);                                                              \
        const T* rp_[R];                                                                 \
        ptrdiff_t u_, p_, o_;                                                            \
        int i_, v_;                                                                      \
        for (i_ = 0; i_ < (R); i_++)                                                     \
            rp_[i_] = (rows)[i_];                                                        \
        for (i_ = 0; i_ < (R) * (NRV); i_++)                                             \
            acc_[i_] = (VT){0};                                                          \
        for (u_ = 0; u_ < (nruns); u_++) {                                               \
            o_ = (offs)[u_];                                                             \
            for (p_ = 0; p_ < (lens)[u_]; p_++, o_++) {                                  \
                if ((NRV) <= (R)) {                                                      \
                    for (v_ = 0; v_ < (NRV); v_++)                                       \
                        memcpy(&bv_[v_], bp_ + v_ * (LANES), sizeof(VT));                \
                    for (i_ = 0; i_ < (R); i_++) {                                       \
                        T s_ = rp_[i_][o_];                                              \
                        for (v_ = 0; v_ < (NRV); v_++)                                   \
                            acc_[i_ * (NRV) + v_] += s_ * bv_[v_];                       \
                    }                                                                    \
                } else {                                                                 \
                    T as_[R];                                                            \
                    for (i_ = 0; i_ < (R); i_++)                                         \
                        as_[i_] = rp_[i_][o_];                                           \
                    for (v_ = 0; v_ < (NRV); v_++) {                                     \
                        VT t_;                                                           \
                        memcpy(&t_, bp_ + v_ * (LANES), sizeof(VT));                     \
                        for (i_ = 0; i_ < (R); i_++)                                     \
                            acc_[i_ * (NRV) + v_] += as_[i_] * t_;                       \
                    }                                                                    \
                }                                                                        \
                bp_ += (rsb);                                                            \
            }                                                                            \
        }                                                                                \
        for (i_ = 0; i_ < (R) * (NRV); i_++)                                             \
            memcpy((out) + i_ * (LANES), &acc_[i_], sizeof(VT));                         \
    } while (0)

/* The blocked GEMM's micro-tile for this instruction set (the including module's
   S_MR, S_NR, D_MR, D_NR must agree: checked at import). */
#if DLK_VBYTES == 64
#define DLK_UK_S_MR 8
#define DLK_UK_S_NRV 2
#define DLK_UK_D_MR 8
#define DLK_UK_D_NRV 3
#elif DLK_VBYTES == 32
#define DLK_UK_S_MR 4
#define DLK_UK_S_NRV 3
#define DLK_UK_D_MR 2
#define DLK_UK_D_NRV 6
#else
#define DLK_UK_S_MR 2
#define DLK_UK_S_NRV 6
#define DLK_UK_D_MR 1
#define DLK_UK_D_NRV 12
#endif
#define DLK_UK_S_NR (DLK_UK_S_NRV * DLK_VF)
#define DLK_UK_D_NR (DLK_UK_D_NRV * DLK_VD)

/* The micro-kernel: out = packed A micro-panel (MR per p) @ packed B micro-panel (NR
   per p), kc >= 0.  Not inlined: one copy, its registers allocated for itself. */
__attribute__((noinline)) static void dlk_ukernel_f(ptrdiff_t kc, const float* pa,
                                                    const float* pb, float* out) {
    DLK_TILE_BODY(float, dlk_vf, DLK_VF, DLK_UK_S_MR, DLK_UK_S_NRV, kc, pa, 1,
                  DLK_UK_S_MR, pb, DLK_UK_S_NR, out);
}
__attribute__((noinline)) static void dlk_ukernel_d(ptrdiff_t kc, const double* pa,
                                                    const double* pb, double* out) {
    DLK_TILE_BODY(double, dlk_vd, DLK_VD, DLK_UK_D_MR, DLK_UK_D_NRV, kc, pa, 1,
                  DLK_UK_D_MR, pb, DLK_UK_D_NR, out);
}

/* The micro-kernel on rows read in place (DLK_TILE_RUNS): out = A rows @ packed B
   micro-panel, the k columns given as runs of offsets into each row. */
__attribute__((noinline)) static void dlk_ukernel_runs_f(ptrdiff_t nruns,
        const ptrdiff_t* offs, const ptrdiff_t* lens, const float* const* rows,
        const float* pb, float* out) {
    DLK_TILE_RUNS(float, dlk_vf, DLK_VF, DLK_UK_S_MR, DLK_UK_S_NRV, nruns, offs, lens,
                  rows, pb, DLK_UK_S_NR, out);
}
__attribute__((noinline)) static void dlk_ukernel_runs_d(ptrdiff_t nruns,
        const ptrdiff_t* offs, const ptrdiff_t* lens, const double* const* rows,
        const double* pb, double* out) {
    DLK_TILE_RUNS(double, dlk_vd, DLK_VD, DLK_UK_D_MR, DLK_UK_D_NRV, nruns, offs, lens,
                  rows, pb, DLK_UK_D_NR, out);
}

/* The rows kernels: out (R x 2 LANES) = A (R rows, any strides) @ B (rows contiguous,
   row stride rsb), R <= DLK_ROWS_MAX: C with few rows, B read straight from memory. */
#define DLK_ROWS_KERNEL(SFX, T, VT, LANES, R)                                             \
static void dlk_rows_##SFX##_##R(ptrdiff_t k, const T* a, ptrdiff_t rsa,                  \
                                 ptrdiff_t csa, const T* b, ptrdiff_t rsb, T* out) {      \
    DLK_TILE_BODY(T, VT, LANES, R, 2, k, a, rsa, csa, b, rsb, out);                       \
}
#if DLK_VBYTES == 64
#define DLK_ROWS_MAX 8
#else
#define DLK_ROWS_MAX 6
#endif
DLK_ROWS_KERNEL(f, float, dlk_vf, DLK_VF, 1)
DLK_ROWS_KERNEL(f, float, dlk_vf, DLK_VF, 2)
DLK_ROWS_KERNEL(f, float, dlk_vf, DLK_VF, 3)
DLK_ROWS_KERNEL(f, float, dlk_vf, DLK_VF, 4)
DLK_ROWS_KERNEL(f, float, dlk_vf, DLK_VF, 5)
DLK_ROWS_KERNEL(f, float, dlk_vf, DLK_VF, 6)
DLK_ROWS_KERNEL(d, double, dlk_vd, DLK_VD, 1)
DLK_ROWS_KERNEL(d, double, dlk_vd, DLK_VD, 2)
DLK_ROWS_KERNEL(d, double, dlk_vd, DLK_VD, 3)
DLK_ROWS_KERNEL(d, double, dlk_vd, DLK_VD, 4)
DLK_ROWS_KERNEL(d, double, dlk_vd, DLK_VD, 5)
DLK_ROWS_KERNEL(d, double, dlk_vd, DLK_VD, 6)
#if DLK_ROWS_MAX > 6
DLK_ROWS_KERNEL(f, float, dlk_vf, DLK_VF, 7)
DLK_ROWS_KERNEL(f, float, dlk_vf, DLK_VF, 8)
DLK_ROWS_KERNEL(d, double, dlk_vd, DLK_VD, 7)
DLK_ROWS_KERNEL(d, double, dlk_vd, DLK_VD, 8)
#endif

/* out (rows x 2 LANES) for rows <= DLK_ROWS_MAX */
static void dlk_rows_f(int rows, ptrdiff_t k, const float* a, ptrdiff_t rsa,
                       ptrdiff_t csa, const float* b, ptrdiff_t rsb, float* out) {
    switch (rows) {
    case 1: dlk_rows_f_1(k, a, rsa, csa, b, rsb, out); break;
    case 2: dlk_rows_f_2(k, a, rsa, csa, b, rsb, out); break;
    case 3: dlk_rows_f_3(k, a, rsa, csa, b, rsb, out); break;
    case 4: dlk_rows_f_4(k, a, rsa, csa, b, rsb, out); break;
    case 5: dlk_rows_f_5(k, a, rsa, csa, b, rsb, out); break;
    case 6: dlk_rows_f_6(k, a, rsa, csa, b, rsb, out); break;
#if DLK_ROWS_MAX > 6
    case 7: dlk_rows_f_7(k, a, rsa, csa, b, rsb, out); break;
    case 8: dlk_rows_f_8(k, a, rsa, csa, b, rsb, out); break;
#endif
    }
}
/* out (rows x 2 LANES) for rows <= DLK_ROWS_MAX */
static void dlk_rows_d(int rows, ptrdiff_t k, const double* a, ptrdiff_t rsa,
                       ptrdiff_t csa, const double* b, ptrdiff_t rsb, double* out) {
    switch (rows) {
    case 1: dlk_rows_d_1(k, a, rsa, csa, b, rsb, out); break;
    case 2: dlk_rows_d_2(k, a, rsa, csa, b, rsb, out); break;
    case 3: dlk_rows_d_3(k, a, rsa, csa, b, rsb, out); break;
    case 4: dlk_rows_d_4(k, a, rsa, csa, b, rsb, out); break;
    case 5: dlk_rows_d_5(k, a, rsa, csa, b, rsb, out); break;
    case 6: dlk_rows_d_6(k, a, rsa, csa, b, rsb, out); break;
#if DLK_ROWS_MAX > 6
    case 7: dlk_rows_d_7(k, a, rsa, csa, b, rsb, out); break;
    case 8: dlk_rows_d_8(k, a, rsa, csa, b, rsb, out); break;
#endif
    }
}

#endif /* DLK_GEMM_KERNELS_H */
