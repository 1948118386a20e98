# BLIS-style blocked GEMM, one source for float32 and float64 (fused `floating`).
#
#     C = alpha * A @ B + beta * C        A: m x k, B: k x n, C: m x n
#
# Every matrix is read or written through its (row stride, column stride) in
# elements, so all four transpose combinations, non-contiguous views and negative
# strides cost no copy beyond the packing that the algorithm does anyway.
#
# This file is `include`d by the per-ISA modules (gemm_base, gemm_avx2,
# gemm_avx512).  The including module must first define the blocking constants,
# as compile-time constants (e.g. in a `cdef enum:`), for both precisions:
#
#     S_MR, S_NR, S_KC, S_MC, S_NC     float32
#     D_MR, D_NR, D_KC, D_MC, D_NC     float64
#
#   MR x NR  register tile computed by the micro-kernel (NR is the vector axis:
#            a multiple of the SIMD width; MR * NR / width accumulators must fit
#            in the vector registers).  The tile is also fixed, per instruction
#            set, in the C micro-kernel (DLK_UK_* below): checked at import;
#   KC       depth of one rank-KC update; a KC x NR packed B micro-panel should
#            stay in L1 while the micro-kernel sweeps the A micro-panels;
#   MC       rows of the packed A block (MC x KC, should stay in L2); multiple of MR;
#   NC       columns of the packed B block (KC x NC, in L3); multiple of NR.
#
# The loop nest (Goto/BLIS):
#
#   loop 5  jc over n by NC
#     loop 4  pc over k by KC          pack B[pc:pc+KC, jc:jc+NC] -> b_pack (shared)
#       loop 3  ic over m by MC        pack A[ic:ic+MC, pc:pc+KC] -> a_pack (per thread)
#         loop 2  jr over the NC block by NR
#           loop 1  ir over the MC block by MR
#                     micro-kernel: C[ir:ir+MR, jr:jr+NR] (+)= A-panel @ B-panel
#
# k is cut into equal rank-kc updates of at most KC (784 = 4 x 196, not 3 x 256 + 16).
#
# Narrow products take other paths (see _gemm_driver): C with <= 16 columns and A's
# rows contiguous -> dot products along k (_dot_loops); C with <= 16 rows and B's rows
# contiguous, directly or after the transpose swap -> the rows kernels (_rows_loops);
# else, if padding n to NR wastes much, the transpose swap C^T = B^T A^T.
#
# Threads (OpenMP, when num_threads > 1) share the packing of each B block and
# split the (ic block, group of jr micro-panels) work items between them (static
# slices by thread number: _gemm_loops); one thread runs the same loops without
# entering an OpenMP region (which costs microseconds: a whole small product).
#
# Determinism: every C element is computed by the same arithmetic whatever the thread
# count -- the path and the k blocking depend only on the shapes and strides, and a
# thread computes whole tiles -- so the result is bit-identical for any num_threads
# (it depends only on the variant).
#
# Epilogue (the dense layer's fused entry, _gemm_ep_entry): C += bias, Y = act(C),
# applied to each tile or work item after its last rank-kc update, by the thread that
# computed it (see _Ep).
#
# Memory: the packed B block is allocated once per call (shared); each thread
# allocates its own packed A block inside the parallel region.  Nothing is static
# or global, so concurrent calls from several Python threads are safe.  If the B
# buffer cannot be allocated the call falls back to a plain triple loop that needs
# no scratch memory; if a thread's A buffer cannot be allocated, that thread packs
# one MR x KC micro-panel at a time into a small stack buffer instead.  Either way
# the result is computed, only slower.  (The narrow paths' small scratch -- B^T, or
# B's last partial column block -- failing, the blocked path runs instead.)
#
# As in BLAS, alpha == 0 means A and B are not read (C = beta * C), and beta == 0
# means C is not read (C = alpha * A @ B; NaN already in C does not leak).

from cython cimport floating
from cpython.pycapsule cimport PyCapsule_New
from cython.parallel cimport parallel
from libc.stdlib cimport malloc, free
from libc.stdint cimport uintptr_t
from cpython.pyport cimport PY_SSIZE_T_MAX

# The epilogue's activations: ids, and the row-block routine for those not applied
# per tile (elementwise's dispatcher: the elementwise variant in use, the same code
# as the separate activation pass).
from kernels.cpu.elementwise cimport (activate_rows_f32, activate_rows_f64, ACT_LINEAR,
                                   ACT_RELU, ACT_LEAKY_RELU, ACT_SOFTMAX)

cdef extern from *:
    """
    /* A barrier for the threads of the enclosing OpenMP parallel region (an
       orphaned barrier; outside a region, or without OpenMP, it does nothing).
       Cython compiles a prange inside a `with parallel()` block to
       `omp for nowait`, so the driver synchronises explicitly with this. */
    static void dlk_gemm_barrier(void) {
    #ifdef _OPENMP
    #pragma omp barrier
    #endif
    }
    """
    void dlk_gemm_barrier() noexcept nogil

# Stack sizes that fit either precision (the sum bounds the max of the two).
cdef enum:
    _GEMM_ACC_LEN = S_MR * S_NR + D_MR * D_NR
    _GEMM_APANEL_LEN = S_MR * S_KC + D_MR * D_KC
    _GEMM_ALIGN = 64                 # bytes; one cache line, one zmm register
    _GEMM_MIN_WORK_PER_THREAD = 96 * 96 * 96     # multiply-adds


# ----------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------

cdef inline Py_ssize_t _imin(Py_ssize_t x, Py_ssize_t y) noexcept nogil:
    return x if x < y else y


cdef inline Py_ssize_t _iabs(Py_ssize_t x) noexcept nogil:
    return -x if x < 0 else x


cdef inline Py_ssize_t _ceil_div(Py_ssize_t x, Py_ssize_t y) noexcept nogil:
    return (x + y - 1) // y


cdef inline void* _aligned_ptr(void* raw) noexcept nogil:
    """First _GEMM_ALIGN-aligned address at or after raw (raw must have the slack)."""
    if raw == NULL:
        return NULL
    return <void*>((<uintptr_t>raw + (_GEMM_ALIGN - 1)) & ~(<uintptr_t>(_GEMM_ALIGN - 1)))


cdef inline void* _alloc_floats(Py_ssize_t count, Py_ssize_t itemsize) noexcept nogil:
    """malloc with room for alignment; NULL on failure or size overflow."""
    if count <= 0 or count > (PY_SSIZE_T_MAX - _GEMM_ALIGN) // itemsize:
        return NULL
    return malloc(<size_t>(count * itemsize + _GEMM_ALIGN))


# ----------------------------------------------------------------------------
# explicit-vector kernels (C): the micro-kernel, narrow products, 8 x 8 transposes
# ----------------------------------------------------------------------------
#
# Written in C with GCC vector extensions (the vector width follows the module's
# instruction set), so that the vector axis and the registers are explicit: plain
# Cython loops left both to gcc's vectoriser and register allocator, whose choices
# changed with unrelated code.
#
# For C with few columns (a 10-unit layer's x @ w: n = 10) the micro-kernel would pad
# n to NR, or after the transpose swap, pack A^T -- a transposition of all of A.  When
# A's rows are contiguous (csa == 1) the dot-product form needs neither: a tile of
# DLK_DOT_RI rows of A times DLK_DOT_RJ columns of B, vectorised along k straight from
# A, with only B (k x n, small) packed as B^T.  The vector axis is explicit (GCC vector
# extensions; the width follows the module's instruction set): gcc does not find it on
# its own in plain loops.
#
# Its mirror image, for C with few rows (dW^T = dz^T x of a 10-unit layer after the
# transpose swap, or a batch of <= 16 rows) and B's rows contiguous: the rows path.
# DLK_ROWS_MAX-row chunks of C times 2-vector column blocks read straight from B (no
# packing, and no padding of m to MR: 10 rows are two chunks of 5).

cdef extern from *:
    """
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
    /* The dot-product tile: out[r * RJ + q] = sum_p a[r * rsa + p] * bt[q * ldbt + p]
       for r < DLK_DOT_RI (rows from nrows on repeat the last valid one), q < DLK_DOT_RJ,
       p < k.  The vector axis is k: each accumulator holds DLK_VF partial sums (lane l:
       the p = l mod DLK_VF, in order), reduced at the end by a fixed shuffle tree.  bt must
       hold zeros from k up to k rounded up to DLK_VF; k >= DLK_VF. */
    static void dlk_dot_tile_f(Py_ssize_t k, const float* a, Py_ssize_t rsa, Py_ssize_t nrows,
                                 const float* bt, Py_ssize_t ldbt, float* out) {
        const float* ar[DLK_DOT_RI];
        dlk_vf acc[DLK_DOT_NACC];
        dlk_vf av[DLK_DOT_RI];
        dlk_vf grp[DLK_VF];
        dlk_vf bv, s;
        Py_ssize_t p, kfull = k - k % DLK_VF;
        int r, q, q0;
        for (r = 0; r < DLK_DOT_RI; r++)
            ar[r] = a + (r < nrows ? r : nrows - 1) * rsa;
        /* the first chunk initialises the accumulators (k >= DLK_VF: no zero fill) */
        for (r = 0; r < DLK_DOT_RI; r++)
            memcpy(&av[r], ar[r], sizeof(dlk_vf));
        for (q = 0; q < DLK_DOT_RJ; q++) {
            memcpy(&bv, bt + q * ldbt, sizeof(dlk_vf));
            DLK_IN_REGISTER(bv);
            for (r = 0; r < DLK_DOT_RI; r++)
                acc[r * DLK_DOT_RJ + q] = av[r] * bv;
        }
        for (p = DLK_VF; p < kfull; p += DLK_VF) {
            for (r = 0; r < DLK_DOT_RI; r++)
                memcpy(&av[r], ar[r] + p, sizeof(dlk_vf));
            for (q = 0; q < DLK_DOT_RJ; q++) {
                memcpy(&bv, bt + q * ldbt + p, sizeof(dlk_vf));
                DLK_IN_REGISTER(bv);
                for (r = 0; r < DLK_DOT_RI; r++)
                    acc[r * DLK_DOT_RJ + q] += av[r] * bv;
            }
        }
        if (p < k) {
            for (r = 0; r < DLK_DOT_RI; r++) {
                av[r] = (dlk_vf){0};
                memcpy(&av[r], ar[r] + p, (size_t)(k - p) * sizeof(float));
            }
            for (q = 0; q < DLK_DOT_RJ; q++) {
                memcpy(&bv, bt + q * ldbt + p, sizeof(dlk_vf));
                for (r = 0; r < DLK_DOT_RI; r++)
                    acc[r * DLK_DOT_RJ + q] += av[r] * bv;
            }
        }
        for (q0 = 0; q0 < DLK_DOT_NACC; q0 += DLK_VF) {
            for (q = 0; q < DLK_VF; q++)
                grp[q] = q0 + q < DLK_DOT_NACC ? acc[q0 + q] : (dlk_vf){0};
            s = dlk_reducef(grp);
            for (q = 0; q < DLK_VF && q0 + q < DLK_DOT_NACC; q++)
                out[q0 + q] = s[q];
        }
    }
    /* The dot-product tile: out[r * RJ + q] = sum_p a[r * rsa + p] * bt[q * ldbt + p]
       for r < DLK_DOT_RI (rows from nrows on repeat the last valid one), q < DLK_DOT_RJ,
       p < k.  The vector axis is k: each accumulator holds DLK_VD partial sums (lane l:
       the p = l mod DLK_VD, in order), reduced at the end by a fixed shuffle tree.  bt must
       hold zeros from k up to k rounded up to DLK_VD; k >= DLK_VD. */
    static void dlk_dot_tile_d(Py_ssize_t k, const double* a, Py_ssize_t rsa, Py_ssize_t nrows,
                                 const double* bt, Py_ssize_t ldbt, double* out) {
        const double* ar[DLK_DOT_RI];
        dlk_vd acc[DLK_DOT_NACC];
        dlk_vd av[DLK_DOT_RI];
        dlk_vd grp[DLK_VD];
        dlk_vd bv, s;
        Py_ssize_t p, kfull = k - k % DLK_VD;
        int r, q, q0;
        for (r = 0; r < DLK_DOT_RI; r++)
            ar[r] = a + (r < nrows ? r : nrows - 1) * rsa;
        /* the first chunk initialises the accumulators (k >= DLK_VD: no zero fill) */
        for (r = 0; r < DLK_DOT_RI; r++)
            memcpy(&av[r], ar[r], sizeof(dlk_vd));
        for (q = 0; q < DLK_DOT_RJ; q++) {
            memcpy(&bv, bt + q * ldbt, sizeof(dlk_vd));
            DLK_IN_REGISTER(bv);
            for (r = 0; r < DLK_DOT_RI; r++)
                acc[r * DLK_DOT_RJ + q] = av[r] * bv;
        }
        for (p = DLK_VD; p < kfull; p += DLK_VD) {
            for (r = 0; r < DLK_DOT_RI; r++)
                memcpy(&av[r], ar[r] + p, sizeof(dlk_vd));
            for (q = 0; q < DLK_DOT_RJ; q++) {
                memcpy(&bv, bt + q * ldbt + p, sizeof(dlk_vd));
                DLK_IN_REGISTER(bv);
                for (r = 0; r < DLK_DOT_RI; r++)
                    acc[r * DLK_DOT_RJ + q] += av[r] * bv;
            }
        }
        if (p < k) {
            for (r = 0; r < DLK_DOT_RI; r++) {
                av[r] = (dlk_vd){0};
                memcpy(&av[r], ar[r] + p, (size_t)(k - p) * sizeof(double));
            }
            for (q = 0; q < DLK_DOT_RJ; q++) {
                memcpy(&bv, bt + q * ldbt + p, sizeof(dlk_vd));
                for (r = 0; r < DLK_DOT_RI; r++)
                    acc[r * DLK_DOT_RJ + q] += av[r] * bv;
            }
        }
        for (q0 = 0; q0 < DLK_DOT_NACC; q0 += DLK_VD) {
            for (q = 0; q < DLK_VD; q++)
                grp[q] = q0 + q < DLK_DOT_NACC ? acc[q0 + q] : (dlk_vd){0};
            s = dlk_reduced(grp);
            for (q = 0; q < DLK_VD && q0 + q < DLK_DOT_NACC; q++)
                out[q0 + q] = s[q];
        }
    }

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
    #define DLK_TILE_BODY(T, VT, LANES, R, NRV, k, a, rsa, csa, b, rsb, out)               \
        do {                                                                                 \
            VT acc_[(R) * (NRV)], bv_[NRV];                                                  \
            const T* ap_ = (a);                                                              \
            const T* bp_ = (b);                                                              \
            Py_ssize_t p_;                                                                   \
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
    __attribute__((noinline)) static void dlk_ukernel_f(Py_ssize_t kc, const float* pa,
                                                        const float* pb, float* out) {
        DLK_TILE_BODY(float, dlk_vf, DLK_VF, DLK_UK_S_MR, DLK_UK_S_NRV, kc, pa, 1,
                      DLK_UK_S_MR, pb, DLK_UK_S_NR, out);
    }
    __attribute__((noinline)) static void dlk_ukernel_d(Py_ssize_t kc, const double* pa,
                                                        const double* pb, double* out) {
        DLK_TILE_BODY(double, dlk_vd, DLK_VD, DLK_UK_D_MR, DLK_UK_D_NRV, kc, pa, 1,
                      DLK_UK_D_MR, pb, DLK_UK_D_NR, out);
    }

    /* The rows kernels: out (R x 2 LANES) = A (R rows, any strides) @ B (rows contiguous,
       row stride rsb), R <= DLK_ROWS_MAX: C with few rows, B read straight from memory. */
    #define DLK_ROWS_KERNEL(SFX, T, VT, LANES, R)                                             \
    static void dlk_rows_##SFX##_##R(Py_ssize_t k, const T* a, Py_ssize_t rsa,                \
                                     Py_ssize_t csa, const T* b, Py_ssize_t rsb, T* out) {    \
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
    static void dlk_rows_f(int rows, Py_ssize_t k, const float* a, Py_ssize_t rsa,
                           Py_ssize_t csa, const float* b, Py_ssize_t rsb, float* out) {
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
    static void dlk_rows_d(int rows, Py_ssize_t k, const double* a, Py_ssize_t rsa,
                           Py_ssize_t csa, const double* b, Py_ssize_t rsb, double* out) {
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
    /* 8 x 8 block transposes: dst[i * ldd + j] = src[j * lds + i], i, j < 8, with three
       rounds of two-vector shuffles (explicit 8-lane vectors: gcc turns a scalar transpose
       into one element move at a time).  Used to pack a row-major A or a column-major B. */
    typedef float dlk_v8f __attribute__((vector_size(32)));
    typedef int dlk_v8fi __attribute__((vector_size(32)));
    typedef double dlk_v8d __attribute__((vector_size(64)));
    typedef long long dlk_v8di __attribute__((vector_size(64)));
    #define DLK_TR8(SFX, T, VT, MT)                                                           \
    static inline void dlk_tr8_##SFX(const T* src, Py_ssize_t lds, T* dst, Py_ssize_t ldd) {  \
        VT r[8], t[8];                                                                        \
        int i;                                                                                \
        for (i = 0; i < 8; i++)                                                               \
            memcpy(&r[i], src + i * lds, sizeof(VT));                                         \
        for (i = 0; i < 4; i++) {                                                             \
            t[i] = __builtin_shuffle(r[i], r[i + 4], (MT){0, 1, 2, 3, 8, 9, 10, 11});         \
            t[i + 4] = __builtin_shuffle(r[i], r[i + 4], (MT){4, 5, 6, 7, 12, 13, 14, 15});   \
        }                                                                                     \
        for (i = 0; i < 8; i += 4) {                                                          \
            r[i] = __builtin_shuffle(t[i], t[i + 2], (MT){0, 1, 8, 9, 4, 5, 12, 13});         \
            r[i + 2] = __builtin_shuffle(t[i], t[i + 2], (MT){2, 3, 10, 11, 6, 7, 14, 15});   \
            r[i + 1] = __builtin_shuffle(t[i + 1], t[i + 3], (MT){0, 1, 8, 9, 4, 5, 12, 13}); \
            r[i + 3] = __builtin_shuffle(t[i + 1], t[i + 3], (MT){2, 3, 10, 11, 6, 7, 14, 15});\
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
    """
    enum:
        DLK_DOT_RI
        DLK_DOT_RJ
        DLK_DOT_NACC
        DLK_VF
        DLK_VD
    enum:
        DLK_TR8_F_OK
        DLK_TR8_D_OK
        DLK_UK_S_MR
        DLK_UK_S_NR
        DLK_UK_D_MR
        DLK_UK_D_NR
    void dlk_ukernel_f(Py_ssize_t kc, const float* pa, const float* pb, float* out) noexcept nogil
    void dlk_ukernel_d(Py_ssize_t kc, const double* pa, const double* pb,
                       double* out) noexcept nogil
    void dlk_tr8_f(const float* src, Py_ssize_t lds, float* dst, Py_ssize_t ldd) noexcept nogil
    void dlk_tr8_d(const double* src, Py_ssize_t lds, double* dst, Py_ssize_t ldd) noexcept nogil
    void dlk_dot_tile_f(Py_ssize_t k, const float* a, Py_ssize_t rsa, Py_ssize_t nrows,
                        const float* bt, Py_ssize_t ldbt, float* out) noexcept nogil
    void dlk_dot_tile_d(Py_ssize_t k, const double* a, Py_ssize_t rsa, Py_ssize_t nrows,
                        const double* bt, Py_ssize_t ldbt, double* out) noexcept nogil
    enum:
        DLK_ROWS_MAX
    void dlk_rows_f(int rows, Py_ssize_t k, const float* a, Py_ssize_t rsa, Py_ssize_t csa,
                    const float* b, Py_ssize_t rsb, float* out) noexcept nogil
    void dlk_rows_d(int rows, Py_ssize_t k, const double* a, Py_ssize_t rsa, Py_ssize_t csa,
                    const double* b, Py_ssize_t rsb, double* out) noexcept nogil

# The micro-kernel's tile is fixed in C per instruction set; the including module's
# constants must describe the same tile (a build inconsistency: fail loudly, not as
# an ImportError that kernels.cpu.gemm would take for a variant not built).
if (S_MR != DLK_UK_S_MR or S_NR != DLK_UK_S_NR or D_MR != DLK_UK_D_MR
        or D_NR != DLK_UK_D_NR):
    raise RuntimeError(f"{__name__}: blocking constants (S {S_MR}x{S_NR}, D {D_MR}x{D_NR}) "
                      f"differ from the micro-kernel's tile (S {DLK_UK_S_MR}x{DLK_UK_S_NR}, "
                      f"D {DLK_UK_D_MR}x{DLK_UK_D_NR})")

cdef enum:
    _GEMM_DOT_MAX_N = 16            # the widest C the dot-product path takes
    _GEMM_DOT_MIN_K_LANES = 4       # ... and the shortest k, in vectors
    _GEMM_ROWS_MAX_CHUNKS = 2       # the rows path takes m <= this x DLK_ROWS_MAX
    _GEMM_ROWS_TILE_LEN = 8 * 32    # >= DLK_ROWS_MAX x 2 vectors, any width
    _GEMM_DOT_ROW_LEN = 8 * 20      # >= DLK_DOT_RI x (_GEMM_DOT_MAX_N up to RJ)


# ----------------------------------------------------------------------------
# packing
# ----------------------------------------------------------------------------

cdef void _pack_a(Py_ssize_t mc, Py_ssize_t kc,
                  const floating* a, Py_ssize_t rsa, Py_ssize_t csa,
                  floating* dst) noexcept nogil:
    """Pack the mc x kc block at `a` into ceil(mc/MR) micro-panels of MR rows.

    Micro-panel ip holds rows ip*MR .. ip*MR+MR-1, column by column:
    dst[ip*MR*kc + p*MR + i] = a[(ip*MR + i)*rsa + p*csa]; rows past mc are zero.
    """
    cdef Py_ssize_t MR
    if floating is float:
        MR = S_MR
    else:
        MR = D_MR
    cdef Py_ssize_t ip, i, p, mr, p0
    cdef const floating* src
    cdef floating* d
    for ip in range(_ceil_div(mc, MR)):
        mr = _imin(MR, mc - ip * MR)
        src = a + ip * MR * rsa
        d = dst + ip * MR * kc
        if _iabs(rsa) < _iabs(csa):
            # column-major A (e.g. a transposed view): the inner loop walks down
            # a column, contiguous in memory and in the panel
            for p in range(kc):
                for i in range(mr):
                    d[p * MR + i] = src[i * rsa + p * csa]
                for i in range(mr, MR):
                    d[p * MR + i] = 0
        elif mr == MR:
            # row-major A, a full micro-panel: one packed column (MR values) per p,
            # the MR rows read as MR sequential streams; by 8 x 8 transposes when
            # MR is 8 (explicit vectors)
            p0 = 0
            if MR == 8 and csa == 1 and (DLK_TR8_F_OK if floating is float else DLK_TR8_D_OK):
                while p0 + 8 <= kc:
                    if floating is float:
                        dlk_tr8_f(src + p0, rsa, d + p0 * 8, 8)
                    else:
                        dlk_tr8_d(src + p0, rsa, d + p0 * 8, 8)
                    p0 += 8
            for p in range(p0, kc):
                for i in range(MR):
                    d[p * MR + i] = src[i * rsa + p * csa]
        else:
            # row-major A: the inner loop walks along a row
            for i in range(mr):
                if csa == 1:
                    for p in range(kc):
                        d[p * MR + i] = src[i * rsa + p]
                else:
                    for p in range(kc):
                        d[p * MR + i] = src[i * rsa + p * csa]
            if mr < MR:
                for p in range(kc):
                    for i in range(mr, MR):
                        d[p * MR + i] = 0


cdef void _pack_b_panel(Py_ssize_t kc, Py_ssize_t nr,
                        const floating* b, Py_ssize_t rsb, Py_ssize_t csb,
                        floating* dst) noexcept nogil:
    """Pack the kc x nr slice at `b` into one NR-column micro-panel.

    dst[p*NR + j] = b[p*rsb + j*csb]; columns past nr are zero.  NR is contiguous,
    which is the axis the micro-kernel vectorises along.
    """
    cdef Py_ssize_t NR
    if floating is float:
        NR = S_NR
    else:
        NR = D_NR
    cdef Py_ssize_t j, p, p0
    cdef floating* d
    if csb == 1 and nr == NR:
        # row-major B, a full panel: fixed-length copies (vector moves, no edge code)
        for p in range(kc):
            d = dst + p * NR
            for j in range(NR):
                d[j] = b[p * rsb + j]
    elif csb == 1:
        # row-major B: each packed row is a contiguous copy
        for p in range(kc):
            d = dst + p * NR
            for j in range(nr):
                d[j] = b[p * rsb + j]
            for j in range(nr, NR):
                d[j] = 0
    elif _iabs(csb) <= _iabs(rsb):
        for p in range(kc):
            d = dst + p * NR
            for j in range(nr):
                d[j] = b[p * rsb + j * csb]
            for j in range(nr, NR):
                d[j] = 0
    elif (rsb == 1 and nr == NR and NR % 8 == 0
            and (DLK_TR8_F_OK if floating is float else DLK_TR8_D_OK)):
        # column-major B, a full panel: 8 x 8 transposes (explicit vectors)
        p0 = 0
        while p0 + 8 <= kc:
            for j in range(0, NR, 8):
                if floating is float:
                    dlk_tr8_f(b + j * csb + p0, csb, dst + p0 * NR + j, NR)
                else:
                    dlk_tr8_d(b + j * csb + p0, csb, dst + p0 * NR + j, NR)
            p0 += 8
        for p in range(p0, kc):
            for j in range(NR):
                dst[p * NR + j] = b[j * csb + p]
    else:
        # column-major B (e.g. B transposed): walk down each column
        for j in range(nr):
            if rsb == 1:
                for p in range(kc):
                    dst[p * NR + j] = b[j * csb + p]
            else:
                for p in range(kc):
                    dst[p * NR + j] = b[j * csb + p * rsb]
        if nr < NR:
            for p in range(kc):
                for j in range(nr, NR):
                    dst[p * NR + j] = 0


# ----------------------------------------------------------------------------
# micro-kernel
# ----------------------------------------------------------------------------

cdef inline void _store_tile(const floating* t, Py_ssize_t ldt, Py_ssize_t mr, Py_ssize_t nr,
                             floating alpha, floating beta,
                             floating* c, Py_ssize_t rsc, Py_ssize_t csc) noexcept nogil:
    """C[0:mr, 0:nr] = alpha * T[0:mr, 0:nr] + beta * C[0:mr, 0:nr] (T row-major, ld ldt).

    beta == 0 stores without reading C.
    """
    cdef Py_ssize_t i, j
    cdef floating* cp
    if csc == 1:
        for i in range(mr):
            cp = c + i * rsc
            if beta == 0:
                for j in range(nr):
                    cp[j] = alpha * t[i * ldt + j]
            elif beta == 1:
                for j in range(nr):
                    cp[j] = alpha * t[i * ldt + j] + cp[j]
            else:
                for j in range(nr):
                    cp[j] = alpha * t[i * ldt + j] + beta * cp[j]
    else:
        for i in range(mr):
            cp = c + i * rsc
            if beta == 0:
                for j in range(nr):
                    cp[j * csc] = alpha * t[i * ldt + j]
            elif beta == 1:
                for j in range(nr):
                    cp[j * csc] = alpha * t[i * ldt + j] + cp[j * csc]
            else:
                for j in range(nr):
                    cp[j * csc] = alpha * t[i * ldt + j] + beta * cp[j * csc]


# ----------------------------------------------------------------------------
# epilogue: bias and activation, applied to a block of C once its k-sum is complete
# ----------------------------------------------------------------------------
#
# The layer's C is row-major (unit column stride); after the transposed "narrow
# product" swap (see _gemm_driver) the driver sees C^T instead, whose unit stride runs
# down the rows.  So the bias is indexed along C's unit-stride axis and a "line" of C
# (a layer row) is along that axis, in both orientations.

ctypedef struct _Ep:
    const void* bias        # NULL: no bias; bias[t] is added to every line's element t
    void* y                 # activation output, strides (rsy, csy) like C's; may be C
    Py_ssize_t rsy
    Py_ssize_t csy
    double param
    int act                 # activation id (kernels.cpu.elementwise ACT_*)
    int tile_act            # applied by _ep_lines (relu, leaky_relu, linear), else -1
    bint rows_i             # True: csc == 1 (lines are C's rows); False: rsc == 1


cdef inline bint _ep_act_pending(const _Ep* ep) noexcept nogil:
    """The activation is applied on whole blocks by activate_rows (not per tile)."""
    return ep.tile_act < 0


cdef inline int _ep_result(const _Ep* ep, bint rows_ok) noexcept nogil:
    """The driver's return value: 0 when a softmax was left to the caller (a block
    did not hold whole lines), else 1."""
    return 0 if ep != NULL and ep.act == ACT_SOFTMAX and not rows_ok else 1


cdef void _ep_lines(const _Ep* ep, floating* c, Py_ssize_t rsc, Py_ssize_t csc,
                    Py_ssize_t i0, Py_ssize_t j0, Py_ssize_t mr, Py_ssize_t nr) noexcept nogil:
    """z += bias, then y = act(z) for the simple activations, on the complete block
    C[i0:i0+mr, j0:j0+nr] (c points at C[i0, j0]).  Elementwise: the same arithmetic
    as the separate passes (z + b, then relu...), whoever calls it."""
    cdef const floating* bias = <const floating*>ep.bias
    cdef floating* y = <floating*>ep.y + i0 * ep.rsy + j0 * ep.csy
    cdef floating prm = <floating>ep.param
    cdef int act = ep.tile_act
    cdef Py_ssize_t nl, ll, cls, yls, l, e
    cdef floating* cp
    cdef floating* yp
    cdef floating v
    if ep.rows_i:
        nl = mr
        ll = nr
        cls = rsc
        yls = ep.rsy
        if bias != NULL:
            bias = bias + j0
    else:
        nl = nr
        ll = mr
        cls = csc
        yls = ep.csy
        if bias != NULL:
            bias = bias + i0
    for l in range(nl):
        cp = c + l * cls
        yp = y + l * yls
        if bias != NULL:
            for e in range(ll):
                cp[e] = cp[e] + bias[e]
        if act == ACT_RELU:
            for e in range(ll):
                v = cp[e]
                yp[e] = 0 if v <= 0 else v          # NaN stays NaN (as elementwise)
        elif act == ACT_LEAKY_RELU:
            for e in range(ll):
                v = cp[e]
                yp[e] = v if v > 0 else prm * v
        elif act == ACT_LINEAR and yp != cp:
            for e in range(ll):
                yp[e] = cp[e]


cdef void _ep_block(const _Ep* ep, floating* c, Py_ssize_t rsc, Py_ssize_t csc,
                    Py_ssize_t i0, Py_ssize_t j0, Py_ssize_t mr, Py_ssize_t nr) noexcept nogil:
    """y = act(z) on the block C[i0:i0+mr, j0:j0+nr] (c points at C[0, 0]) through
    elementwise's activate_rows (it forwards to the elementwise variant in use, the
    same code as the separate activation pass).  For softmax the block must hold whole
    lines."""
    cdef floating* y = <floating*>ep.y
    if ep.rows_i:
        if floating is float:
            activate_rows_f32(ep.act, ep.param, c + i0 * rsc + j0, rsc,
                              y + i0 * ep.rsy + j0, ep.rsy, mr, nr)
        else:
            activate_rows_f64(ep.act, ep.param, c + i0 * rsc + j0, rsc,
                              y + i0 * ep.rsy + j0, ep.rsy, mr, nr)
    else:
        if floating is float:
            activate_rows_f32(ep.act, ep.param, c + j0 * csc + i0, csc,
                              y + j0 * ep.csy + i0, ep.csy, nr, mr)
        else:
            activate_rows_f64(ep.act, ep.param, c + j0 * csc + i0, csc,
                              y + j0 * ep.csy + i0, ep.csy, nr, mr)


# ----------------------------------------------------------------------------
# micro-kernel
# ----------------------------------------------------------------------------

cdef void _ukernel(Py_ssize_t kc, const floating* pa, const floating* pb,
                   floating alpha, floating beta,
                   floating* c, Py_ssize_t rsc, Py_ssize_t csc,
                   Py_ssize_t mr, Py_ssize_t nr) noexcept nogil:
    """C[0:mr, 0:nr] = alpha * (A-panel @ B-panel)[0:mr, 0:nr] + beta * C[0:mr, 0:nr].

    pa: packed MR x kc micro-panel (MR contiguous per k), pb: packed kc x NR
    micro-panel (NR contiguous per k).  The rank-1 updates are the C function
    dlk_ukernel_f/_d (DLK_TILE_BODY): an MR x NR accumulator tile of explicit vectors,
    NR / width vector loads and MR broadcasts per k, nothing else in the loop (checked
    with objdump for every variant, gcc 12 -O3).  Written as plain loops over a local
    array, gcc's register allocation of the tile depended on the code around it (a
    change elsewhere in this function spilled accumulators in some variants, up to
    1.7x slower).

    Only the mr x nr corner is written back, so edge tiles never touch anything
    outside C (acc is the temporary for the edge).  beta == 0 never reads C.
    """
    cdef Py_ssize_t MR, NR
    if floating is float:
        MR = S_MR
        NR = S_NR
    else:
        MR = D_MR
        NR = D_NR
    cdef floating acc[_GEMM_ACC_LEN]
    cdef Py_ssize_t i, j

    if floating is float:
        dlk_ukernel_f(kc, pa, pb, acc)
    else:
        dlk_ukernel_d(kc, pa, pb, acc)

    # write-back with alpha / beta: only the mr x nr corner of the tile, so an
    # edge tile never touches anything outside C (acc is its temporary)
    if mr == MR and nr == NR and csc == 1 and beta == 0:
        # a full row-major tile: fixed-length rows (vector moves)
        for i in range(MR):
            for j in range(NR):
                c[i * rsc + j] = alpha * acc[i * NR + j]
    elif mr == MR and nr == NR and csc == 1 and beta == 1:
        for i in range(MR):
            for j in range(NR):
                c[i * rsc + j] = alpha * acc[i * NR + j] + c[i * rsc + j]
    else:
        _store_tile(acc, NR, mr, nr, alpha, beta, c, rsc, csc)


# ----------------------------------------------------------------------------
# macro-kernel: loops 2 and 1 around the micro-kernel for one packed A block
# ----------------------------------------------------------------------------

cdef void _macro_kernel(Py_ssize_t mc, Py_ssize_t nc, Py_ssize_t kc,
                        Py_ssize_t jp0, Py_ssize_t jp1,
                        const floating* a, Py_ssize_t rsa, Py_ssize_t csa,
                        floating* a_pack, const floating* b_pack,
                        floating alpha, floating beta,
                        floating* c, Py_ssize_t rsc, Py_ssize_t csc,
                        const _Ep* ep, Py_ssize_t ic, Py_ssize_t jc) noexcept nogil:
    """C[0:mc, jp0*NR : min(jp1*NR, nc)] (+)= A[0:mc, 0:kc] @ B-block panels jp0..jp1-1.

    `a` is the unpacked A block (packed here into a_pack), `b_pack` the packed
    B block of the current (jc, pc) iteration, `c` the C block at (ic, jc).
    With a_pack == NULL (allocation failed) A is packed one micro-panel at a time
    into a stack buffer: same arithmetic, so the same result, only slower.
    With ep (the last rank-kc update of a fused GEMM), each tile then gets its bias
    and simple activation (_ep_lines) while it is in L1.
    """
    cdef Py_ssize_t MR, NR
    if floating is float:
        MR = S_MR
        NR = S_NR
    else:
        MR = D_MR
        NR = D_NR
    cdef Py_ssize_t n_ip = _ceil_div(mc, MR)
    cdef Py_ssize_t ip, jp, mr, nr
    cdef floating a_panel[_GEMM_APANEL_LEN]

    if a_pack != NULL:
        _pack_a(mc, kc, a, rsa, csa, a_pack)
        # loop 2: jr over the B micro-panels (each stays in L1 during loop 1)
        for jp in range(jp0, jp1):
            nr = _imin(NR, nc - jp * NR)
            # loop 1: ir over the A micro-panels (the A block stays in L2)
            for ip in range(n_ip):
                mr = _imin(MR, mc - ip * MR)
                _ukernel(kc, a_pack + ip * MR * kc, b_pack + jp * NR * kc,
                         alpha, beta, c + ip * MR * rsc + jp * NR * csc, rsc, csc,
                         mr, nr)
                if ep != NULL:
                    # the tile is complete: its bias and simple activation while it
                    # is in L1
                    _ep_lines(ep, c + ip * MR * rsc + jp * NR * csc, rsc, csc,
                              ic + ip * MR, jc + jp * NR, mr, nr)
    else:
        # low-memory path: loops 1 and 2 swapped, one A micro-panel at a time
        for ip in range(n_ip):
            mr = _imin(MR, mc - ip * MR)
            _pack_a(mr, kc, a + ip * MR * rsa, rsa, csa, a_panel)
            for jp in range(jp0, jp1):
                nr = _imin(NR, nc - jp * NR)
                _ukernel(kc, a_panel, b_pack + jp * NR * kc,
                         alpha, beta, c + ip * MR * rsc + jp * NR * csc, rsc, csc,
                         mr, nr)
                if ep != NULL:
                    _ep_lines(ep, c + ip * MR * rsc + jp * NR * csc, rsc, csc,
                              ic + ip * MR, jc + jp * NR, mr, nr)


# ----------------------------------------------------------------------------
# fallbacks that need no scratch memory
# ----------------------------------------------------------------------------

cdef void _scale_c(Py_ssize_t m, Py_ssize_t n, floating beta,
                   floating* c, Py_ssize_t rsc, Py_ssize_t csc) noexcept nogil:
    """C = beta * C (beta == 0: C = 0 without reading it)."""
    cdef Py_ssize_t i, j
    for i in range(m):
        for j in range(n):
            if beta == 0:
                c[i * rsc + j * csc] = 0
            else:
                c[i * rsc + j * csc] = beta * c[i * rsc + j * csc]


cdef void _gemm_unpacked(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, floating alpha,
                         const floating* a, Py_ssize_t rsa, Py_ssize_t csa,
                         const floating* b, Py_ssize_t rsb, Py_ssize_t csb,
                         floating beta, floating* c, Py_ssize_t rsc, Py_ssize_t csc
                         ) noexcept nogil:
    """Plain triple loop straight from the strided operands (no scratch memory)."""
    cdef Py_ssize_t i, j, p
    cdef floating s
    for i in range(m):
        for j in range(n):
            s = 0
            for p in range(k):
                s = s + a[i * rsa + p * csa] * b[p * rsb + j * csb]
            if beta == 0:
                c[i * rsc + j * csc] = alpha * s
            else:
                c[i * rsc + j * csc] = alpha * s + beta * c[i * rsc + j * csc]


cdef void _ep_whole(const _Ep* ep, Py_ssize_t m, Py_ssize_t n,
                    floating* c, Py_ssize_t rsc, Py_ssize_t csc) noexcept nogil:
    """The whole epilogue on all of C (after a fallback computed C without it)."""
    _ep_lines(ep, c, rsc, csc, 0, 0, m, n)
    if _ep_act_pending(ep):
        _ep_block(ep, c, rsc, csc, 0, 0, m, n)



# ----------------------------------------------------------------------------
# driver: loops 5, 4 and 3, packing and threading
# ----------------------------------------------------------------------------

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int dlk_gemm_team_size(void) { return omp_get_num_threads(); }
    static int dlk_gemm_thread_num(void) { return omp_get_thread_num(); }
    #else
    static int dlk_gemm_team_size(void) { return 1; }
    static int dlk_gemm_thread_num(void) { return 0; }
    #endif
    """
    int dlk_gemm_team_size() noexcept nogil
    int dlk_gemm_thread_num() noexcept nogil


ctypedef struct _Job:
    # the problem (pointers of the element type, as void*)
    Py_ssize_t m, n, k
    const void* a
    Py_ssize_t rsa, csa
    const void* b
    Py_ssize_t rsb, csb
    void* c
    Py_ssize_t rsc, csc
    double alpha, beta          # exact copies of the float32/float64 values
    const _Ep* ep               # NULL: plain GEMM
    bint ep_rows_ok             # an item holds whole lines of C (softmax can be fused)
    # the blocking and work split
    Py_ssize_t kc_blk            # depth of the rank-kc updates (the last may be less)
    Py_ssize_t n_jc, n_pc, n_ic, n_jg, n_items, a_len


cdef void _gemm_loops(const _Job* job, floating* b_pack, int tid, int nthr) noexcept nogil:
    """Loops 5, 4 and 3 for thread `tid` of `nthr` (the serial call is tid 0 of 1).

    Each (jc, pc) step: the threads pack B[pc:pc+kc, jc:jc+nc] together (static
    slices of its micro-panels), a barrier publishes it, each thread computes its
    static slice of the work items, and a barrier keeps b_pack until all are done.
    An item w is (jr group g, ic block): C[ic:ic+mc, the group's columns].  The split
    decides only who computes an item, never how, so results do not depend on nthr.
    """
    cdef Py_ssize_t MR, NR, KC, MC, NC
    if floating is float:
        MR = S_MR
        NR = S_NR
        KC = S_KC
        MC = S_MC
        NC = S_NC
    else:
        MR = D_MR
        NR = D_NR
        KC = D_KC
        MC = D_MC
        NC = D_NC
    cdef Py_ssize_t m = job.m, n = job.n, k = job.k
    cdef const floating* a = <const floating*>job.a
    cdef const floating* b = <const floating*>job.b
    cdef floating* c = <floating*>job.c
    cdef Py_ssize_t rsa = job.rsa, csa = job.csa, rsb = job.rsb, csb = job.csb
    cdef Py_ssize_t rsc = job.rsc, csc = job.csc
    cdef floating alpha = <floating>job.alpha, beta = <floating>job.beta, beta_eff
    cdef const _Ep* ep = job.ep
    cdef const _Ep* ep_now
    cdef bint block_act = (ep != NULL and _ep_act_pending(ep)
                           and (ep.act != ACT_SOFTMAX or job.ep_rows_ok))
    cdef Py_ssize_t n_ic = job.n_ic, n_jg = job.n_jg, n_items = job.n_items
    cdef Py_ssize_t jb, pb, jc, pc, nc, kc, n_jp, jp, w, g, ib, ic, mc, jp0, jp1, lo, hi

    cdef void* a_raw = _alloc_floats(job.a_len, sizeof(floating))
    cdef floating* a_pack = <floating*>_aligned_ptr(a_raw)
    # loop 5: jc over n by NC
    for jb in range(job.n_jc):
        jc = jb * NC
        nc = _imin(NC, n - jc)
        n_jp = _ceil_div(nc, NR)
        # loop 4: pc over k by KC
        for pb in range(job.n_pc):
            pc = pb * job.kc_blk
            kc = _imin(job.kc_blk, k - pc)
            # beta applies to the first rank-kc update only, later ones add
            beta_eff = beta if pb == 0 else 1
            # the epilogue goes with the last rank-kc update, when C is complete
            ep_now = ep if pb == job.n_pc - 1 else NULL
            # pack this thread's share of B[pc:pc+kc, jc:jc+nc] into NR-column
            # micro-panels; the barrier publishes the whole block to every thread
            lo = (tid * n_jp) // nthr
            hi = ((tid + 1) * n_jp) // nthr
            for jp in range(lo, hi):
                _pack_b_panel(kc, _imin(NR, nc - jp * NR),
                              b + pc * rsb + (jc + jp * NR) * csb, rsb, csb,
                              b_pack + jp * NR * kc)
            if nthr > 1:
                dlk_gemm_barrier()
            # loop 3: ic over m by MC, split between the threads together with the
            # jr groups (see _gemm_driver)
            lo = (tid * n_items) // nthr
            hi = ((tid + 1) * n_items) // nthr
            for w in range(lo, hi):
                g = w // n_ic
                ib = w - g * n_ic
                ic = ib * MC
                mc = _imin(MC, m - ic)
                jp0 = (g * n_jp) // n_jg
                jp1 = ((g + 1) * n_jp) // n_jg
                if jp0 >= jp1:
                    continue
                _macro_kernel(mc, nc, kc, jp0, jp1,
                              a + ic * rsa + pc * csa, rsa, csa,
                              a_pack, b_pack, alpha, beta_eff,
                              c + ic * rsc + jc * csc, rsc, csc, ep_now, ic, jc)
                if ep_now != NULL and block_act:
                    # the item's block of C is complete: its activation now, while
                    # it is still in cache
                    _ep_block(ep, c, rsc, csc, ic, jc + jp0 * NR, mc,
                              _imin(jp1 * NR, nc) - jp0 * NR)
            # nobody repacks b_pack for the next block while it is in use
            if nthr > 1:
                dlk_gemm_barrier()
    free(a_raw)


cdef void _dot_loops(const _Job* job, const floating* bt, Py_ssize_t kp, int tid,
                     int nthr) noexcept nogil:
    """The dot-product path for thread `tid` of `nthr`: a static slice of the row tiles,
    each with all its column tiles (then its block holds whole rows of C)."""
    cdef Py_ssize_t m = job.m, n = job.n, k = job.k
    cdef const floating* a = <const floating*>job.a
    cdef floating* c = <floating*>job.c
    cdef Py_ssize_t rsa = job.rsa, rsc = job.rsc, csc = job.csc
    cdef floating alpha = <floating>job.alpha, beta = <floating>job.beta
    cdef const _Ep* ep = job.ep
    cdef bint block_act = (ep != NULL and _ep_act_pending(ep)
                           and (ep.act != ACT_SOFTMAX or job.ep_rows_ok))
    cdef Py_ssize_t n_it = _ceil_div(m, DLK_DOT_RI), n_jt = _ceil_div(n, DLK_DOT_RJ)
    cdef Py_ssize_t ldr = n_jt * DLK_DOT_RJ
    cdef Py_ssize_t it, jt, i0, j0, i, q, mr
    cdef floating t[DLK_DOT_NACC]
    cdef floating row[_GEMM_DOT_ROW_LEN]      # the row tile: DLK_DOT_RI x ldr
    cdef floating* cp
    # A bias along C's rows with alpha 1 and beta 0 (the dense layer's forward): added
    # to the row tile before its store, in one pass -- the same sums as adding it to
    # C afterwards (1 * t is t, and C is not read) -- and the epilogue skips it.
    cdef _Ep ep_rest
    cdef const floating* row_bias = NULL
    if ep != NULL and ep.bias != NULL and ep.rows_i and alpha == 1 and beta == 0:
        row_bias = <const floating*>ep.bias
        ep_rest = ep[0]
        ep_rest.bias = NULL
        ep = &ep_rest
    for it in range((tid * n_it) // nthr, ((tid + 1) * n_it) // nthr):
        i0 = it * DLK_DOT_RI
        mr = _imin(DLK_DOT_RI, m - i0)
        for jt in range(n_jt):
            j0 = jt * DLK_DOT_RJ
            if floating is float:
                dlk_dot_tile_f(k, a + i0 * rsa, rsa, mr, bt + j0 * kp, kp, t)
            else:
                dlk_dot_tile_d(k, a + i0 * rsa, rsa, mr, bt + j0 * kp, kp, t)
            for i in range(DLK_DOT_RI):
                for q in range(DLK_DOT_RJ):
                    row[i * ldr + j0 + q] = t[i * DLK_DOT_RJ + q]
        if row_bias != NULL:
            for i in range(mr):
                for q in range(n):
                    row[i * ldr + q] = row[i * ldr + q] + row_bias[q]
        # the whole row tile at once: its store, then its epilogue (whole lines)
        cp = c + i0 * rsc
        _store_tile(row, ldr, mr, n, alpha, beta, cp, rsc, csc)
        if ep != NULL:
            _ep_lines(ep, cp, rsc, csc, i0, 0, mr, n)
            if block_act:
                _ep_block(ep, c, rsc, csc, i0, 0, mr, n)


cdef bint _gemm_dot(const _Job* job, const floating* b, Py_ssize_t nt) noexcept nogil:
    """C = alpha * A @ B + beta * C (and the epilogue) by the dot-product path; False
    (nothing done) if its scratch cannot be allocated."""
    cdef Py_ssize_t lanes = DLK_VF if floating is float else DLK_VD
    cdef Py_ssize_t n = job.n, k = job.k
    cdef Py_ssize_t kp = _ceil_div(k, lanes) * lanes
    cdef Py_ssize_t nj = _ceil_div(n, DLK_DOT_RJ) * DLK_DOT_RJ
    cdef Py_ssize_t rsb = job.rsb, csb = job.csb, j, p
    cdef void* raw = _alloc_floats(nj * kp, sizeof(floating))
    if raw == NULL:
        return False
    cdef floating* bt = <floating*>_aligned_ptr(raw)
    # B^T, zero-padded to nj rows of kp values
    for j in range(nj):
        if j < n:
            for p in range(k):
                bt[j * kp + p] = b[p * rsb + j * csb]
            for p in range(k, kp):
                bt[j * kp + p] = 0
        else:
            for p in range(kp):
                bt[j * kp + p] = 0
    if nt > _ceil_div(job.m, DLK_DOT_RI):
        nt = _ceil_div(job.m, DLK_DOT_RI)
    if nt <= 1:
        _dot_loops(job, bt, kp, 0, 1)
    else:
        with parallel(num_threads=nt):
            _dot_loops(job, bt, kp, dlk_gemm_thread_num(), dlk_gemm_team_size())
    free(raw)
    return True


cdef void _rows_loops(const _Job* job, const floating* b_edge, int tid,
                      int nthr) noexcept nogil:
    """The rows path for thread `tid` of `nthr`: a static slice of the column blocks,
    each with all of C's rows (fixed chunks of at most DLK_ROWS_MAX)."""
    cdef Py_ssize_t w = 2 * (DLK_VF if floating is float else DLK_VD)
    cdef Py_ssize_t m = job.m, n = job.n, k = job.k
    cdef const floating* a = <const floating*>job.a
    cdef const floating* b = <const floating*>job.b
    cdef floating* c = <floating*>job.c
    cdef Py_ssize_t rsa = job.rsa, csa = job.csa, rsb = job.rsb, rsc = job.rsc, csc = job.csc
    cdef floating alpha = <floating>job.alpha, beta = <floating>job.beta
    cdef const _Ep* ep = job.ep
    cdef bint block_act = (ep != NULL and _ep_act_pending(ep)
                           and (ep.act != ACT_SOFTMAX or job.ep_rows_ok))
    cdef Py_ssize_t n_jb = _ceil_div(n, w), n_ch = _ceil_div(m, DLK_ROWS_MAX)
    cdef Py_ssize_t jb, j0, nc, ch, r0, r1, ldb
    cdef const floating* bp
    cdef floating t[_GEMM_ROWS_TILE_LEN]
    cdef floating* cp
    for jb in range((tid * n_jb) // nthr, ((tid + 1) * n_jb) // nthr):
        j0 = jb * w
        nc = _imin(w, n - j0)
        if nc == w:
            bp = b + j0
            ldb = rsb
        else:
            bp = b_edge           # the last, partial block: a zero-padded copy
            ldb = w
        for ch in range(n_ch):
            r0 = (ch * m) // n_ch
            r1 = ((ch + 1) * m) // n_ch
            if floating is float:
                dlk_rows_f(<int>(r1 - r0), k, a + r0 * rsa, rsa, csa, bp, ldb, t)
            else:
                dlk_rows_d(<int>(r1 - r0), k, a + r0 * rsa, rsa, csa, bp, ldb, t)
            cp = c + r0 * rsc + j0 * csc
            _store_tile(t, w, r1 - r0, nc, alpha, beta, cp, rsc, csc)
            if ep != NULL:
                _ep_lines(ep, cp, rsc, csc, r0, j0, r1 - r0, nc)
        if block_act:
            _ep_block(ep, c, rsc, csc, 0, j0, m, nc)


cdef bint _gemm_rows(const _Job* job, const floating* b, Py_ssize_t nt) noexcept nogil:
    """C = alpha * A @ B + beta * C (and the epilogue) by the rows path (B's rows
    contiguous); False (nothing done) if its scratch cannot be allocated."""
    cdef Py_ssize_t w = 2 * (DLK_VF if floating is float else DLK_VD)
    cdef Py_ssize_t n = job.n, k = job.k, rsb = job.rsb
    cdef Py_ssize_t j0 = (n // w) * w, nc = n - j0, j, p
    cdef void* raw = NULL
    cdef floating* b_edge = NULL
    if nc > 0:
        raw = _alloc_floats(k * w, sizeof(floating))
        if raw == NULL:
            return False
        b_edge = <floating*>_aligned_ptr(raw)
        for p in range(k):
            for j in range(nc):
                b_edge[p * w + j] = b[p * rsb + j0 + j]
            for j in range(nc, w):
                b_edge[p * w + j] = 0
    if nt > _ceil_div(n, w):
        nt = _ceil_div(n, w)
    if nt <= 1:
        _rows_loops(job, b_edge, 0, 1)
    else:
        with parallel(num_threads=nt):
            _rows_loops(job, b_edge, dlk_gemm_thread_num(), dlk_gemm_team_size())
    free(raw)
    return True


cdef int _gemm_driver(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, floating alpha,
                      const floating* a, Py_ssize_t rsa, Py_ssize_t csa,
                      const floating* b, Py_ssize_t rsb, Py_ssize_t csb,
                      floating beta, floating* c, Py_ssize_t rsc, Py_ssize_t csc,
                      int num_threads, const _Ep* ep) noexcept nogil:
    """C = alpha * A @ B + beta * C, then the epilogue ep (NULL: none).

    Returns 1, or 0 when ep's activation is left to the caller (softmax, when the
    work items do not hold whole lines of C); the bias is always applied.
    """
    return _gemm_run(m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc,
                     num_threads, ep, True)


cdef int _gemm_run(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, floating alpha,
                   const floating* a, Py_ssize_t rsa, Py_ssize_t csa,
                   const floating* b, Py_ssize_t rsb, Py_ssize_t csb,
                   floating beta, floating* c, Py_ssize_t rsc, Py_ssize_t csc,
                   int num_threads, const _Ep* ep, bint may_swap) noexcept nogil:
    """_gemm_driver; may_swap False once C^T is computed (never swap back)."""
    cdef Py_ssize_t MR, NR, KC, MC, NC
    if floating is float:
        MR = S_MR
        NR = S_NR
        KC = S_KC
        MC = S_MC
        NC = S_NC
    else:
        MR = D_MR
        NR = D_NR
        KC = D_KC
        MC = D_MC
        NC = D_NC
    cdef _Ep ep_t

    if m <= 0 or n <= 0:
        return 1
    if k <= 0 or alpha == 0:
        _scale_c(m, n, beta, c, rsc, csc)
        if ep != NULL:
            _ep_whole(ep, m, n, c, rsc, csc)
        return 1
    cdef Py_ssize_t lanes = DLK_VF if floating is float else DLK_VD
    cdef _Job job
    cdef Py_ssize_t nt = num_threads
    if nt < 1:
        nt = 1
    # give each thread at least ~96^3 multiply-adds, or waking it and the
    # barriers cost more than it saves (the result does not depend on nt)
    cdef double work = <double>m * <double>n * <double>k
    # (float64: half as many multiply-adds, each vector holds half as many)
    cdef double min_work = _GEMM_MIN_WORK_PER_THREAD if floating is float \
        else _GEMM_MIN_WORK_PER_THREAD / 2.0
    if work < <double>nt * min_work:
        nt = <Py_ssize_t>(work / min_work)
        if nt < 1:
            nt = 1
    job.m = m
    job.n = n
    job.k = k
    job.a = a
    job.rsa = rsa
    job.csa = csa
    job.b = b
    job.rsb = rsb
    job.csb = csb
    job.c = c
    job.rsc = rsc
    job.csc = csc
    job.alpha = alpha
    job.beta = beta
    job.ep = ep

    # Narrow C, rows of A contiguous: the dot-product path (no packing of A, no
    # padding of n; see _dot_loops).  Its row tiles hold whole rows of C.
    if (n <= _GEMM_DOT_MAX_N and csa == 1 and k >= _GEMM_DOT_MIN_K_LANES * lanes
            and (ep == NULL or ep.rows_i)):
        job.ep_rows_ok = True
        if _gemm_dot(&job, b, nt):
            return _ep_result(ep, job.ep_rows_ok)
    # Few rows, rows of B contiguous: the rows path.  Its column blocks hold whole
    # columns of C: whole lines in C^T's orientation, or in C's when one block is all.
    if m <= _GEMM_ROWS_MAX_CHUNKS * DLK_ROWS_MAX and csb == 1:
        job.ep_rows_ok = ep != NULL and (not ep.rows_i or n <= 2 * lanes)
        if _gemm_rows(&job, b, nt):
            return _ep_result(ep, job.ep_rows_ok)
    # Few columns, A's columns contiguous (dW = x^T dz of a narrow layer): the rows path
    # on C^T = B^T A^T, where they are B^T's rows.
    cdef bint transpose = n <= _GEMM_ROWS_MAX_CHUNKS * DLK_ROWS_MAX and rsa == 1

    # Thin products: the micro-kernel pads m up to a multiple of MR and n up to one of
    # NR (NR > MR).  For a narrow C (n = 10 padded to 32) computing C^T = B^T A^T
    # instead -- the same strides, swapped -- wastes far less; but only for a clear
    # gain (a third less padded work): C^T's stores go across C's rows, which costs more
    # than a few percent of padding (784 x 256 with NR = 24).  The epilogue follows the
    # transpose: its output's strides swap too, and its lines (bias axis) become C^T's
    # columns.
    if may_swap and (transpose or (3 * _ceil_div(m, MR) * MR * _ceil_div(n, NR) * NR
                                   > 4 * _ceil_div(n, MR) * MR * _ceil_div(m, NR) * NR)):
        if ep != NULL:
            ep_t = ep[0]
            ep_t.rsy = ep.csy
            ep_t.csy = ep.rsy
            ep_t.rows_i = not ep.rows_i
            return _gemm_run(n, m, k, alpha, b, csb, rsb, a, csa, rsa, beta, c, csc, rsc,
                             num_threads, &ep_t, False)
        return _gemm_run(n, m, k, alpha, b, csb, rsb, a, csa, rsa, beta, c, csc, rsc,
                         num_threads, NULL, False)

    # The blocked path.  Work split: an item is (group g of B micro-panels, ic block);
    # the groups cut each NC block's micro-panels into nt slices, so with a static
    # split each thread owns one column slice of C (and packs the B panels it will
    # use).  k is cut into n_pc rank-kc updates of (nearly) equal depth <= KC:
    # 784 = 4 x 196, not 3 x 256 + 16 (a last thin update costs a whole pass over C
    # for little work).
    cdef Py_ssize_t n_pc = _ceil_div(k, KC)
    cdef Py_ssize_t kc_max = _ceil_div(k, n_pc)
    cdef Py_ssize_t nc_max = _imin(NC, n)
    cdef Py_ssize_t mc_max = _imin(MC, m)
    job.n_ic = _ceil_div(m, MC)
    job.n_jc = _ceil_div(n, NC)
    job.n_pc = n_pc
    job.kc_blk = kc_max
    job.n_jg = _imin(nt, _ceil_div(nc_max, NR))
    job.n_items = job.n_jg * job.n_ic
    job.a_len = kc_max * _ceil_div(mc_max, MR) * MR
    if nt > job.n_items:
        nt = job.n_items
    # an item holds whole lines of C (what a fused softmax needs): in C's orientation
    # when it spans all columns, in C^T's when it spans all rows
    if ep != NULL and ep.rows_i:
        job.ep_rows_ok = job.n_jc == 1 and job.n_jg == 1
    else:
        job.ep_rows_ok = job.n_ic == 1

    cdef void* b_raw = _alloc_floats(kc_max * _ceil_div(nc_max, NR) * NR, sizeof(floating))
    if b_raw == NULL:
        _gemm_unpacked(m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
        if ep != NULL:
            _ep_whole(ep, m, n, c, rsc, csc)
        return 1
    cdef floating* b_pack = <floating*>_aligned_ptr(b_raw)

    if nt == 1:
        # no OpenMP region at all: entering one costs microseconds, which is what a
        # whole small product takes
        _gemm_loops(&job, b_pack, 0, 1)
    else:
        with parallel(num_threads=nt):
            _gemm_loops(&job, b_pack, dlk_gemm_thread_num(), dlk_gemm_team_size())
    free(b_raw)
    return _ep_result(ep, job.ep_rows_ok)


cdef int _gemm_ep_entry(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                        const floating* a, Py_ssize_t rsa, Py_ssize_t csa,
                        const floating* b, Py_ssize_t rsb, Py_ssize_t csb,
                        floating* c, Py_ssize_t rsc, const floating* bias, int act,
                        double param, floating* y, Py_ssize_t rsy,
                        int num_threads) noexcept nogil:
    """The fused entry (sgemm_ep / dgemm_ep of gemm.pxd): C = A @ B + bias, Y = act(C)."""
    cdef _Ep ep
    if bias == NULL and act == ACT_LINEAR and y == c:
        return _gemm_driver(m, n, k, <floating>1, a, rsa, csa, b, rsb, csb, <floating>0,
                            c, rsc, 1, num_threads, NULL)
    ep.bias = bias
    ep.y = y
    ep.rsy = rsy
    ep.csy = 1
    ep.param = param
    ep.act = act
    if act == ACT_LINEAR or act == ACT_RELU or act == ACT_LEAKY_RELU:
        ep.tile_act = act
    else:
        ep.tile_act = -1
    ep.rows_i = True
    return _gemm_driver(m, n, k, <floating>1, a, rsa, csa, b, rsb, csb, <floating>0,
                        c, rsc, 1, num_threads, &ep)


# ----------------------------------------------------------------------------
# what each ISA module exports: concrete float32/float64 entry points and capsules
# ----------------------------------------------------------------------------


cdef void _sgemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, float alpha,
                 const float* a, Py_ssize_t rsa, Py_ssize_t csa,
                 const float* b, Py_ssize_t rsb, Py_ssize_t csb,
                 float beta, float* c, Py_ssize_t rsc, Py_ssize_t csc,
                 int num_threads) noexcept nogil:
    _gemm_driver(m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc,
                 num_threads, NULL)


cdef void _dgemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, double alpha,
                 const double* a, Py_ssize_t rsa, Py_ssize_t csa,
                 const double* b, Py_ssize_t rsb, Py_ssize_t csb,
                 double beta, double* c, Py_ssize_t rsc, Py_ssize_t csc,
                 int num_threads) noexcept nogil:
    _gemm_driver(m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc,
                 num_threads, NULL)



cdef int _sgemm_ep(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                   const float* a, Py_ssize_t rsa, Py_ssize_t csa,
                   const float* b, Py_ssize_t rsb, Py_ssize_t csb,
                   float* c, Py_ssize_t rsc, const float* bias, int act, double param,
                   float* y, Py_ssize_t rsy, int num_threads) noexcept nogil:
    return _gemm_ep_entry(m, n, k, a, rsa, csa, b, rsb, csb, c, rsc, bias, act, param,
                          y, rsy, num_threads)


cdef int _dgemm_ep(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                   const double* a, Py_ssize_t rsa, Py_ssize_t csa,
                   const double* b, Py_ssize_t rsb, Py_ssize_t csb,
                   double* c, Py_ssize_t rsc, const double* bias, int act, double param,
                   double* y, Py_ssize_t rsy, int num_threads) noexcept nogil:
    return _gemm_ep_entry(m, n, k, a, rsa, csa, b, rsb, csb, c, rsc, bias, act, param,
                          y, rsy, num_threads)


def capsules():
    """(capsule "kernels.sgemm_fn", capsule "kernels.dgemm_fn") for this variant.

    The pointers have the types sgemm_fn / dgemm_fn of kernels/cpu/gemm.pxd.  (That
    pxd is not cimported here: this module must not depend on kernels.cpu.gemm,
    which imports it.)
    """
    return (PyCapsule_New(<void*>_sgemm, "kernels.sgemm_fn", NULL),
            PyCapsule_New(<void*>_dgemm, "kernels.dgemm_fn", NULL))


def ep_capsules():
    """(capsule "kernels.sgemm_ep_fn", capsule "kernels.dgemm_ep_fn"): the GEMM with
    the dense layer's epilogue (types sgemm_ep_fn / dgemm_ep_fn of kernels/cpu/gemm.pxd)."""
    return (PyCapsule_New(<void*>_sgemm_ep, "kernels.sgemm_ep_fn", NULL),
            PyCapsule_New(<void*>_dgemm_ep, "kernels.dgemm_ep_fn", NULL))


def blocking():
    """The blocking constants: {'float32': {...}, 'float64': {...}}."""
    return {
        "float32": dict(MR=S_MR, NR=S_NR, KC=S_KC, MC=S_MC, NC=S_NC),
        "float64": dict(MR=D_MR, NR=D_NR, KC=D_KC, MC=D_MC, NC=D_NC),
    }
