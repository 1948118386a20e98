# BLIS-style blocked GEMM, one source for float32 and float64 (fused `floating`).
#
#     C = alpha * A @ B + beta * C        A: m x k, B: k x n, C: m x n
#
# Every matrix is read or written through its (row stride, column stride) in
# elements, so all four transpose combinations, non-contiguous views and negative
# strides cost no copy beyond the packing that the algorithm does anyway.
#
# This file is `include`d by the per-ISA modules (gemm_base, gemm_avx2,
# gemm_avx512), and includes the parts of the algorithm, each in its own file:
#
#     gemm_pack.pxi      packing A and B blocks into micro-panels
#     gemm_epilogue.pxi  bias and activation on a finished block of C (dense layers)
#     gemm_loops.pxi     the micro-kernel call, the macro-kernel, loops 5-3 per thread
#     gemm_narrow.pxi    the dot-product and rows paths for thin C
#     gemm_driver.pxi    choosing the path, the blocking and the threads; the exports
#
# and, in C (real headers, so that compiler errors point at real lines):
#
#     dlk_gemm_vector.h   vector types, lane sums, 8 x 8 transposes
#     dlk_gemm_kernels.h  the micro-kernel, the rows and dot-product tiles
#     dlk_gemm_team.h     the OpenMP team: barrier, thread number, team size
#
# The including module must first define the blocking constants, as compile-time
# constants (e.g. in a `cdef enum:`), for both precisions (_blocking() below is the
# one place that picks them by element type):
#
#     S_MR, S_NR, S_KC, S_MC, S_NC     float32
#     D_MR, D_NR, D_KC, D_MC, D_NC     float64
#
#   MR x NR  register tile computed by the micro-kernel (NR is the vector axis:
#            a multiple of the SIMD width; MR * NR / width accumulators must fit
#            in the vector registers).  The tile is also fixed, per instruction
#            set, in the C micro-kernel (DLK_UK_* of dlk_gemm_kernels.h): checked
#            at import;
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
# Patch operands (the conv kernels' entry, _gemm_px_entry): A or B may be a
# convolution's patch matrix (dlk_patches.h), gathered from the image while its blocks
# are packed -- the blocked path only, never the narrow ones or the transpose swap.
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
                                      ACT_RELU, ACT_LEAKY_RELU, act_by_rows)
# A convolution's patch matrix as an operand read while packing (dlk_patches.h).
from kernels.cpu._patches cimport (dlk_patches, dlk_patch_pack_a_f, dlk_patch_pack_a_d,
                                   dlk_patch_pack_b_f, dlk_patch_pack_b_d, dlk_patch_runs,
                                   dlk_patch_corners_f, dlk_patch_corners_d)

cdef extern from "dlk_gemm_team.h":
    void dlk_gemm_barrier() noexcept nogil
    int dlk_gemm_team_size() noexcept nogil
    int dlk_gemm_thread_num() noexcept nogil

# The explicit-vector kernels (see the header for why they are C).  For C with few
# columns (a 10-unit layer's x @ w: n = 10) the micro-kernel would pad n to NR, or after
# the transpose swap, pack A^T -- a transposition of all of A.  When A's rows are
# contiguous (csa == 1) the dot-product tile needs neither: DLK_DOT_RI rows of A times
# DLK_DOT_RJ columns of B, vectorised along k straight from A, with only B (k x n,
# small) packed as B^T.  Its mirror image, for C with few rows (dW^T = dz^T x of a
# 10-unit layer after the transpose swap, or a batch of <= 16 rows) and B's rows
# contiguous: the rows kernels, DLK_ROWS_MAX-row chunks of C times 2-vector column
# blocks read straight from B (no packing, and no padding of m to MR: 10 rows are two
# chunks of 5).
cdef extern from "dlk_gemm_kernels.h":
    enum:
        DLK_DOT_RI
        DLK_DOT_RJ
        DLK_DOT_NACC
        DLK_VF
        DLK_VD
        DLK_TR8_F_OK
        DLK_TR8_D_OK
        DLK_UK_S_MR
        DLK_UK_S_NR
        DLK_UK_D_MR
        DLK_UK_D_NR
        DLK_ROWS_MAX
    void dlk_ukernel_f(Py_ssize_t kc, const float* pa, const float* pb, float* out) noexcept nogil
    void dlk_ukernel_d(Py_ssize_t kc, const double* pa, const double* pb,
                       double* out) noexcept nogil
    void dlk_ukernel_runs_f(Py_ssize_t nruns, const Py_ssize_t* offs,
                            const Py_ssize_t* lens, const float* const* rows,
                            const float* pb, float* out) noexcept nogil
    void dlk_ukernel_runs_d(Py_ssize_t nruns, const Py_ssize_t* offs,
                            const Py_ssize_t* lens, const double* const* rows,
                            const double* pb, double* out) noexcept nogil
    void dlk_tr8_f(const float* src, Py_ssize_t lds, float* dst, Py_ssize_t ldd) noexcept nogil
    void dlk_tr8_d(const double* src, Py_ssize_t lds, double* dst, Py_ssize_t ldd) noexcept nogil
    void dlk_dot_tile_f(Py_ssize_t k, const float* a, Py_ssize_t rsa, Py_ssize_t nrows,
                        const float* bt, Py_ssize_t ldbt, float* out) noexcept nogil
    void dlk_dot_tile_d(Py_ssize_t k, const double* a, Py_ssize_t rsa, Py_ssize_t nrows,
                        const double* bt, Py_ssize_t ldbt, double* out) noexcept nogil
    void dlk_rows_f(int rows, Py_ssize_t k, const float* a, Py_ssize_t rsa, Py_ssize_t csa,
                    const float* b, Py_ssize_t rsb, float* out) noexcept nogil
    void dlk_rows_d(int rows, Py_ssize_t k, const double* a, Py_ssize_t rsa, Py_ssize_t csa,
                    const double* b, Py_ssize_t rsb, double* out) noexcept nogil

# Stack sizes that fit either precision (the sum bounds the max of the two).
cdef enum:
    _GEMM_ACC_LEN = S_MR * S_NR + D_MR * D_NR
    _GEMM_APANEL_LEN = S_MR * S_KC + D_MR * D_KC
    _GEMM_ALIGN = 64                 # bytes; one cache line, one zmm register
    _GEMM_MIN_WORK_PER_THREAD = 96 * 96 * 96     # multiply-adds
    _GEMM_MAX_MC = 512               # >= every variant's MC (a patch block's row table)
    _GEMM_MAX_KC = 512               # >= every variant's KC (a patch block's runs)

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
# the blocking constants of an element type
# ----------------------------------------------------------------------------

ctypedef struct _Blocking:
    Py_ssize_t MR, NR, KC, MC, NC


cdef inline _Blocking _blocking(floating tag) noexcept nogil:
    """The blocking constants of ``floating`` (``tag`` only picks the type): the
    including module's S_* for float32, D_* for float64.  Inlined, so the fields are
    compile-time constants where the loops use them."""
    cdef _Blocking b
    if floating is float:
        b.MR = S_MR
        b.NR = S_NR
        b.KC = S_KC
        b.MC = S_MC
        b.NC = S_NC
    else:
        b.MR = D_MR
        b.NR = D_NR
        b.KC = D_KC
        b.MC = D_MC
        b.NC = D_NC
    return b


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


# the parts, in the order their declarations need
include "gemm_pack.pxi"
include "gemm_epilogue.pxi"
include "gemm_loops.pxi"
include "gemm_narrow.pxi"
include "gemm_driver.pxi"
