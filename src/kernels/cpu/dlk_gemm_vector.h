/* Explicit SIMD vectors for the GEMM (GCC vector extensions), one source for every
   instruction set: the vector width follows the flags the including module is built
   with (-mavx512f: 64 bytes, -mavx: 32, else SSE2's 16).

   Included by the per-ISA GEMM modules (gemm_base/_avx2/_avx512.pyx, through
   gemm_impl.pxi) only; every function is static (one copy per module).  Holds:
     - the vector width and types (dlk_vf: float lanes, dlk_vd: double lanes);
     - DLK_IN_REGISTER, which keeps a vector in a register;
     - dlk_reducef / dlk_reduced: a fixed shuffle tree summing the lanes of
       LANES vectors at once (LANES sums, in one vector);
     - dlk_tr8_f / dlk_tr8_d: 8 x 8 block transposes for packing (dlk_tr8p_*: from 8
       row pointers). */
#ifndef DLK_GEMM_VECTOR_H
#define DLK_GEMM_VECTOR_H

#include <stddef.h>
#include <string.h>

#if defined(__AVX512F__)
#define DLK_VBYTES 64
#define DLK_DOT_RI 3
#elif defined(__AVX__)
#define DLK_VBYTES 32
#define DLK_DOT_RI 2
#else
#define DLK_VBYTES 16
#define DLK_DOT_RI 2
#endif
#define DLK_DOT_RJ 5
#define DLK_DOT_NACC (DLK_DOT_RI * DLK_DOT_RJ)
#define DLK_VF (DLK_VBYTES / 4)
#define DLK_VD (DLK_VBYTES / 8)
typedef float dlk_vf __attribute__((vector_size(DLK_VBYTES)));
typedef int dlk_vfm __attribute__((vector_size(DLK_VBYTES)));
typedef double dlk_vd __attribute__((vector_size(DLK_VBYTES)));
typedef long long dlk_vdm __attribute__((vector_size(DLK_VBYTES)));
/* Keep a vector in a register: without this gcc folds a B load into each of the
   DLK_DOT_RI FMAs that use it, and the loop becomes load-bound. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define DLK_IN_REGISTER(v) __asm__("" : "+v"(v))
#else
#define DLK_IN_REGISTER(v) ((void)0)
#endif

/* ---- lane sums: w[0..LANES-1] -> one vector whose lane q is the sum of w[q]'s lanes,
   pairs merged in a fixed order (the same sums for every call) */
#if DLK_VBYTES == 64
static inline dlk_vf dlk_mergef_16(dlk_vf x, dlk_vf y) {
    return __builtin_shuffle(x, y, (dlk_vfm){0, 1, 2, 3, 4, 5, 6, 7,
                                    16, 17, 18, 19, 20, 21, 22, 23})
         + __builtin_shuffle(x, y, (dlk_vfm){8, 9, 10, 11, 12, 13, 14, 15,
                                    24, 25, 26, 27, 28, 29, 30, 31});
}
static inline dlk_vf dlk_mergef_8(dlk_vf x, dlk_vf y) {
    return __builtin_shuffle(x, y, (dlk_vfm){0, 1, 2, 3, 8, 9, 10, 11,
                                    16, 17, 18, 19, 24, 25, 26, 27})
         + __builtin_shuffle(x, y, (dlk_vfm){4, 5, 6, 7, 12, 13, 14, 15,
                                    20, 21, 22, 23, 28, 29, 30, 31});
}
static inline dlk_vf dlk_mergef_4(dlk_vf x, dlk_vf y) {
    return __builtin_shuffle(x, y, (dlk_vfm){0, 1, 4, 5, 8, 9, 12, 13,
                                    16, 17, 20, 21, 24, 25, 28, 29})
         + __builtin_shuffle(x, y, (dlk_vfm){2, 3, 6, 7, 10, 11, 14, 15,
                                    18, 19, 22, 23, 26, 27, 30, 31});
}
static inline dlk_vf dlk_mergef_2(dlk_vf x, dlk_vf y) {
    return __builtin_shuffle(x, y, (dlk_vfm){0, 2, 4, 6, 8, 10, 12, 14,
                                    16, 18, 20, 22, 24, 26, 28, 30})
         + __builtin_shuffle(x, y, (dlk_vfm){1, 3, 5, 7, 9, 11, 13, 15,
                                    17, 19, 21, 23, 25, 27, 29, 31});
}
static inline dlk_vf dlk_reducef(dlk_vf* w) {
    int i;
    for (i = 0; i < 8; i++) w[i] = dlk_mergef_16(w[2 * i], w[2 * i + 1]);
    for (i = 0; i < 4; i++) w[i] = dlk_mergef_8(w[2 * i], w[2 * i + 1]);
    for (i = 0; i < 2; i++) w[i] = dlk_mergef_4(w[2 * i], w[2 * i + 1]);
    for (i = 0; i < 1; i++) w[i] = dlk_mergef_2(w[2 * i], w[2 * i + 1]);
    return w[0];
}
static inline dlk_vd dlk_merged_8(dlk_vd x, dlk_vd y) {
    return __builtin_shuffle(x, y, (dlk_vdm){0, 1, 2, 3, 8, 9, 10, 11})
         + __builtin_shuffle(x, y, (dlk_vdm){4, 5, 6, 7, 12, 13, 14, 15});
}
static inline dlk_vd dlk_merged_4(dlk_vd x, dlk_vd y) {
    return __builtin_shuffle(x, y, (dlk_vdm){0, 1, 4, 5, 8, 9, 12, 13})
         + __builtin_shuffle(x, y, (dlk_vdm){2, 3, 6, 7, 10, 11, 14, 15});
}
static inline dlk_vd dlk_merged_2(dlk_vd x, dlk_vd y) {
    return __builtin_shuffle(x, y, (dlk_vdm){0, 2, 4, 6, 8, 10, 12, 14})
         + __builtin_shuffle(x, y, (dlk_vdm){1, 3, 5, 7, 9, 11, 13, 15});
}
static inline dlk_vd dlk_reduced(dlk_vd* w) {
    int i;
    for (i = 0; i < 4; i++) w[i] = dlk_merged_8(w[2 * i], w[2 * i + 1]);
    for (i = 0; i < 2; i++) w[i] = dlk_merged_4(w[2 * i], w[2 * i + 1]);
    for (i = 0; i < 1; i++) w[i] = dlk_merged_2(w[2 * i], w[2 * i + 1]);
    return w[0];
}
#endif
#if DLK_VBYTES == 32
static inline dlk_vf dlk_mergef_8(dlk_vf x, dlk_vf y) {
    return __builtin_shuffle(x, y, (dlk_vfm){0, 1, 2, 3, 8, 9, 10, 11})
         + __builtin_shuffle(x, y, (dlk_vfm){4, 5, 6, 7, 12, 13, 14, 15});
}
static inline dlk_vf dlk_mergef_4(dlk_vf x, dlk_vf y) {
    return __builtin_shuffle(x, y, (dlk_vfm){0, 1, 4, 5, 8, 9, 12, 13})
         + __builtin_shuffle(x, y, (dlk_vfm){2, 3, 6, 7, 10, 11, 14, 15});
}
static inline dlk_vf dlk_mergef_2(dlk_vf x, dlk_vf y) {
    return __builtin_shuffle(x, y, (dlk_vfm){0, 2, 4, 6, 8, 10, 12, 14})
         + __builtin_shuffle(x, y, (dlk_vfm){1, 3, 5, 7, 9, 11, 13, 15});
}
static inline dlk_vf dlk_reducef(dlk_vf* w) {
    int i;
    for (i = 0; i < 4; i++) w[i] = dlk_mergef_8(w[2 * i], w[2 * i + 1]);
    for (i = 0; i < 2; i++) w[i] = dlk_mergef_4(w[2 * i], w[2 * i + 1]);
    for (i = 0; i < 1; i++) w[i] = dlk_mergef_2(w[2 * i], w[2 * i + 1]);
    return w[0];
}
static inline dlk_vd dlk_merged_4(dlk_vd x, dlk_vd y) {
    return __builtin_shuffle(x, y, (dlk_vdm){0, 1, 4, 5})
         + __builtin_shuffle(x, y, (dlk_vdm){2, 3, 6, 7});
}
static inline dlk_vd dlk_merged_2(dlk_vd x, dlk_vd y) {
    return __builtin_shuffle(x, y, (dlk_vdm){0, 2, 4, 6})
         + __builtin_shuffle(x, y, (dlk_vdm){1, 3, 5, 7});
}
static inline dlk_vd dlk_reduced(dlk_vd* w) {
    int i;
    for (i = 0; i < 2; i++) w[i] = dlk_merged_4(w[2 * i], w[2 * i + 1]);
    for (i = 0; i < 1; i++) w[i] = dlk_merged_2(w[2 * i], w[2 * i + 1]);
    return w[0];
}
#endif
#if DLK_VBYTES == 16
static inline dlk_vf dlk_mergef_4(dlk_vf x, dlk_vf y) {
    return __builtin_shuffle(x, y, (dlk_vfm){0, 1, 4, 5})
         + __builtin_shuffle(x, y, (dlk_vfm){2, 3, 6, 7});
}
static inline dlk_vf dlk_mergef_2(dlk_vf x, dlk_vf y) {
    return __builtin_shuffle(x, y, (dlk_vfm){0, 2, 4, 6})
         + __builtin_shuffle(x, y, (dlk_vfm){1, 3, 5, 7});
}
static inline dlk_vf dlk_reducef(dlk_vf* w) {
    int i;
    for (i = 0; i < 2; i++) w[i] = dlk_mergef_4(w[2 * i], w[2 * i + 1]);
    for (i = 0; i < 1; i++) w[i] = dlk_mergef_2(w[2 * i], w[2 * i + 1]);
    return w[0];
}
static inline dlk_vd dlk_merged_2(dlk_vd x, dlk_vd y) {
    return __builtin_shuffle(x, y, (dlk_vdm){0, 2})
         + __builtin_shuffle(x, y, (dlk_vdm){1, 3});
}
static inline dlk_vd dlk_reduced(dlk_vd* w) {
    int i;
    for (i = 0; i < 1; i++) w[i] = dlk_merged_2(w[2 * i], w[2 * i + 1]);
    return w[0];
}
#endif

/* ---- 8 x 8 transposes */
/* 8 x 8 block transposes: dst[i * ldd + j] = src[j * lds + i], i, j < 8, with three
   rounds of two-vector shuffles (explicit 8-lane vectors: gcc turns a scalar transpose
   into one element move at a time).  Used to pack a row-major A or a column-major B. */
typedef float dlk_v8f __attribute__((vector_size(32)));
typedef int dlk_v8fi __attribute__((vector_size(32)));
typedef double dlk_v8d __attribute__((vector_size(64)));
typedef long long dlk_v8di __attribute__((vector_size(64)));
#define DLK_TR8(SFX, T, VT, MT)                                                           \
static inline void dlk_tr8p_##SFX(const T* const* src, T* dst, ptrdiff_t ldd);            \
static inline void dlk_tr8_##SFX(const T* src, ptrdiff_t lds, T* dst, ptrdiff_t ldd) {    \
    const T* rows[8];                                                                     \
    int i;                                                                                \
    for (i = 0; i < 8; i++)                                                               \
        rows[i] = src + i * lds;                                                          \
    dlk_tr8p_##SFX(rows, dst, ldd);                                                       \
}                                                                                         \
/* the same from 8 row pointers (rows of a gathered matrix: dlk_patches.h) */             \
static inline void dlk_tr8p_##SFX(const T* const* src, T* dst, ptrdiff_t ldd) {           \
    VT r[8], t[8];                                                                        \
    int i;                                                                                \
    for (i = 0; i < 8; i++)                                                               \
        memcpy(&r[i], src[i], sizeof(VT));                                                \
    for (i = 0; i < 4; i++) {                                                             \
        t[i] = __builtin_shuffle(r[i], r[i + 4], (MT){0, 1, 2, 3, 8, 9, 10, 11});         \
        t[i + 4] = __builtin_shuffle(r[i], r[i + 4], (MT){4, 5, 6, 7, 12, 13, 14, 15});   \
    }                                                                                     \
    for (i = 0; i < 8; i += 4) {                                                          \
        r[i] = __builtin_shuffle(t[i], t[i + 2], (MT){0, 1, 8, 9, 4, 5, 12, 13});         \
        r[i + 2] = __builtin_shuffle(t[i], t[i + 2], (MT){2, 3, 10, 11, 6, 7, 14, 15});   \
        r[i + 1] = __builtin_shuffle(t[i + 1], t[i + 3], (MT){0, 1, 8, 9, 4, 5, 12, 13}); \
        r[i + 3] = __builtin_shuffle(t[i + 1], t[i + 3], (MT){2, 3, 10, 11, 6, 7, 14, 15}); \
    }                                                                                     \
    for (i = 0; i < 8; i += 2) {                                                          \
        t[i] = __builtin_shuffle(r[i], r[i + 1], (MT){0, 8, 2, 10, 4, 12, 6, 14});        \
        t[i + 1] = __builtin_shuffle(r[i], r[i + 1], (MT){1, 9, 3, 11, 5, 13, 7, 15});    \
    }                                                                                     \
    for (i = 0; i < 8; i++)                                                               \
        memcpy(dst + i * ldd, &t[DLK_TR8_ROW(i)], sizeof(VT));                            \
}
#define DLK_TR8_ROW(i) (i)
DLK_TR8(f, float, dlk_v8f, dlk_v8fi)
DLK_TR8(d, double, dlk_v8d, dlk_v8di)

/* where the 8-lane vectors are native registers (else gcc spills them) */
#if DLK_VBYTES >= 32
#define DLK_TR8_F_OK 1
#else
#define DLK_TR8_F_OK 0
#endif
#if DLK_VBYTES >= 64
#define DLK_TR8_D_OK 1
#else
#define DLK_TR8_D_OK 0
#endif

#endif /* DLK_GEMM_VECTOR_H */
