# BLIS-style blocked GEMM, one source for float32 and float64 (fused `floating`).
#
#     C = alpha * A @ B + beta * C        A: m x k, B: k x n, C: m x n
#
# Every matrix is read or written through its (row stride, column stride) in
# elements, so all four transpose combinations, non-contiguous views and negative
# strides cost no copy beyond the packing that the algorithm does anyway.
#
# This file is `include`d by the per-ISA modules (_gemm_base, _gemm_avx2,
# _gemm_avx512).  The including module must first define the blocking constants,
# as compile-time constants (e.g. in a `cdef enum:`), for both precisions:
#
#     S_MR, S_NR, S_KC, S_MC, S_NC     float32
#     D_MR, D_NR, D_KC, D_MC, D_NC     float64
#
#   MR x NR  register tile computed by the micro-kernel (NR is the vector axis:
#            a multiple of the SIMD width, and more than 16 -- see _ukernel;
#            MR * NR / width accumulators must fit in the vector registers);
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
# Threads (OpenMP, when num_threads > 1) share the packing of each B block and
# split the (ic block, group of jr micro-panels) work items between them.
#
# Determinism: every C element is computed by the same micro-kernel arithmetic
# whatever the thread count -- its k-sum is split at the same KC boundaries and
# summed in the same order inside each -- so the result is bit-identical for any
# num_threads (it depends only on the blocking constants, i.e. on the variant).
#
# Memory: the packed B block is allocated once per call (shared); each thread
# allocates its own packed A block inside the parallel region.  Nothing is static
# or global, so concurrent calls from several Python threads are safe.  If the B
# buffer cannot be allocated the call falls back to a plain triple loop that needs
# no scratch memory; if a thread's A buffer cannot be allocated, that thread packs
# one MR x KC micro-panel at a time into a small stack buffer instead.  Either way
# the result is computed, only slower.
#
# As in BLAS, alpha == 0 means A and B are not read (C = beta * C), and beta == 0
# means C is not read (C = alpha * A @ B; NaN already in C does not leak).

from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdlib cimport malloc, free
from libc.stdint cimport uintptr_t
from cpython.pyport cimport PY_SSIZE_T_MAX

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
    cdef Py_ssize_t ip, i, p, mr
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
    cdef Py_ssize_t j, p
    cdef floating* d
    if csb == 1:
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


cdef void _ukernel(Py_ssize_t kc, const floating* pa, const floating* pb,
                   floating alpha, floating beta,
                   floating* c, Py_ssize_t rsc, Py_ssize_t csc,
                   Py_ssize_t mr, Py_ssize_t nr) noexcept nogil:
    """C[0:mr, 0:nr] = alpha * (A-panel @ B-panel)[0:mr, 0:nr] + beta * C[0:mr, 0:nr].

    pa: packed MR x kc micro-panel (MR contiguous per k), pb: packed kc x NR
    micro-panel (NR contiguous per k).  The accumulator tile `acc` is a local
    array with constant bounds: gcc's loop vectoriser vectorises the j loop (NR
    contiguous in pb; one broadcast of pa[i] per row), the i and j loops are then
    unrolled completely and acc lives in MR * NR / width vector registers across
    the k loop.  Checked with objdump for every variant (gcc 12, -O3): the k loop
    is MR * NR / width FMAs (SSE2: mul + add), NR / width loads, MR broadcasts and
    no stack traffic.

    Two things keep gcc on that path:
    * NR > 16.  gcc -O3 completely unrolls inner loops of at most 16 iterations
      *before* vectorising, and the SLP vectoriser then makes a poor job of the
      result (wrong axis, spilled accumulators, 4-10x slower);
    * this function is not `inline`: inlined into the macro-kernel's two call
      sites, gcc compiled one of the copies with spilled accumulators.

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
    cdef Py_ssize_t i, j, p
    cdef floating ai

    for i in range(MR * NR):
        acc[i] = 0
    # the rank-1 updates: acc[i, :] += pa[p, i] * pb[p, :]
    for p in range(kc):
        for i in range(MR):
            ai = pa[i]
            for j in range(NR):
                acc[i * NR + j] += ai * pb[j]
        pa += MR
        pb += NR

    # write-back with alpha / beta: only the mr x nr corner of the tile, so an
    # edge tile never touches anything outside C (acc is its temporary)
    _store_tile(acc, NR, mr, nr, alpha, beta, c, rsc, csc)


# ----------------------------------------------------------------------------
# macro-kernel: loops 2 and 1 around the micro-kernel for one packed A block
# ----------------------------------------------------------------------------

cdef void _macro_kernel(Py_ssize_t mc, Py_ssize_t nc, Py_ssize_t kc,
                        Py_ssize_t jp0, Py_ssize_t jp1,
                        const floating* a, Py_ssize_t rsa, Py_ssize_t csa,
                        floating* a_pack, const floating* b_pack,
                        floating alpha, floating beta,
                        floating* c, Py_ssize_t rsc, Py_ssize_t csc) noexcept nogil:
    """C[0:mc, jp0*NR : min(jp1*NR, nc)] (+)= A[0:mc, 0:kc] @ B-block panels jp0..jp1-1.

    `a` is the unpacked A block (packed here into a_pack), `b_pack` the packed
    B block of the current (jc, pc) iteration, `c` the C block at (ic, jc).
    With a_pack == NULL (allocation failed) A is packed one micro-panel at a time
    into a stack buffer: same arithmetic, so the same result, only slower.
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


# ----------------------------------------------------------------------------
# driver: loops 5, 4 and 3, packing and threading
# ----------------------------------------------------------------------------

cdef void _gemm_driver(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, floating alpha,
                       const floating* a, Py_ssize_t rsa, Py_ssize_t csa,
                       const floating* b, Py_ssize_t rsb, Py_ssize_t csb,
                       floating beta, floating* c, Py_ssize_t rsc, Py_ssize_t csc,
                       int num_threads) noexcept nogil:
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

    if m <= 0 or n <= 0:
        return
    if k <= 0 or alpha == 0:
        _scale_c(m, n, beta, c, rsc, csc)
        return
    # Thin products: the micro-kernel pads m up to a multiple of MR and n up to one of
    # NR (NR > MR).  For a narrow C (a 10-unit layer: n = 10 padded to 32) computing
    # C^T = B^T A^T instead -- the same strides, swapped -- wastes far less.  Each C
    # element's k-sum is the same sequence either way, so the result is identical.
    if (_ceil_div(m, MR) * MR * _ceil_div(n, NR) * NR
            > _ceil_div(n, MR) * MR * _ceil_div(m, NR) * NR):
        _gemm_driver(n, m, k, alpha, b, csb, rsb, a, csa, rsa, beta, c, csc, rsc,
                     num_threads)
        return

    # Work split: an item is (group g of B micro-panels, ic block); the groups cut
    # each NC block's micro-panels into nt slices, so with a static schedule each
    # thread owns one column slice of C (and packs the B panels it will use).
    cdef Py_ssize_t kc_max = _imin(KC, k)
    cdef Py_ssize_t nc_max = _imin(NC, n)
    cdef Py_ssize_t mc_max = _imin(MC, m)
    cdef Py_ssize_t n_ic = _ceil_div(m, MC)
    cdef Py_ssize_t n_jc = _ceil_div(n, NC)
    cdef Py_ssize_t n_pc = _ceil_div(k, KC)
    cdef Py_ssize_t nt = num_threads
    if nt < 1:
        nt = 1
    # give each thread at least ~96^3 multiply-adds, or waking it and the
    # barriers cost more than it saves (the result does not depend on nt)
    cdef double work = <double>m * <double>n * <double>k
    if work < <double>nt * _GEMM_MIN_WORK_PER_THREAD:
        nt = <Py_ssize_t>(work / _GEMM_MIN_WORK_PER_THREAD)
        if nt < 1:
            nt = 1
    cdef Py_ssize_t n_jg = _imin(nt, _ceil_div(nc_max, NR))
    cdef Py_ssize_t n_items = n_jg * n_ic
    if nt > n_items:
        nt = n_items

    cdef void* b_raw = _alloc_floats(kc_max * _ceil_div(nc_max, NR) * NR, sizeof(floating))
    if b_raw == NULL:
        _gemm_unpacked(m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
        return
    cdef floating* b_pack = <floating*>_aligned_ptr(b_raw)
    cdef Py_ssize_t a_len = kc_max * _ceil_div(mc_max, MR) * MR

    # per-thread / per-iteration variables (private inside the parallel block)
    cdef void* a_raw
    cdef floating* a_pack
    cdef Py_ssize_t jb, pb, jc, pc, nc, kc, n_jp
    cdef Py_ssize_t jp, w, g, ib, ic, mc
    cdef floating beta_eff

    with parallel(num_threads=nt):
        a_raw = _alloc_floats(a_len, sizeof(floating))
        a_pack = <floating*>_aligned_ptr(a_raw)
        # loop 5: jc over n by NC
        for jb in range(n_jc):
            jc = jb * NC
            nc = _imin(NC, n - jc)
            n_jp = _ceil_div(nc, NR)
            # loop 4: pc over k by KC
            for pb in range(n_pc):
                pc = pb * KC
                kc = _imin(KC, k - pc)
                # beta applies to the first rank-kc update only, later ones add
                beta_eff = beta if pb == 0 else 1
                # pack B[pc:pc+kc, jc:jc+nc] into NR-column micro-panels (shared
                # by all threads, each packs a share); the barrier publishes it
                for jp in prange(n_jp, schedule='static'):
                    _pack_b_panel(kc, _imin(NR, nc - jp * NR),
                                  b + pc * rsb + (jc + jp * NR) * csb, rsb, csb,
                                  b_pack + jp * NR * kc)
                dlk_gemm_barrier()
                # loop 3: ic over m by MC, split between the threads together with
                # the jr groups (see the work split above)
                for w in prange(n_items, schedule='static'):
                    g = w // n_ic
                    ib = w - g * n_ic
                    ic = ib * MC
                    mc = _imin(MC, m - ic)
                    _macro_kernel(mc, nc, kc,
                                  (g * n_jp) // n_jg, ((g + 1) * n_jp) // n_jg,
                                  a + ic * rsa + pc * csa, rsa, csa,
                                  a_pack, b_pack, alpha, beta_eff,
                                  c + ic * rsc + jc * csc, rsc, csc)
                # nobody repacks b_pack for the next block while it is in use
                dlk_gemm_barrier()
        free(a_raw)
    free(b_raw)
