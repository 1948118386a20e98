# The blocked loops, part of the GEMM of gemm_impl.pxi (included from there): the
# micro-kernel's call and write-back, the macro-kernel (loops 2 and 1), the work of one
# thread (loops 5, 4 and 3) and the fallbacks that need no scratch memory.

# ----------------------------------------------------------------------------
# writing a finished tile back
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
# micro-kernel
# ----------------------------------------------------------------------------

cdef void _ukernel(Py_ssize_t kc, const floating* pa, const floating* pb,
                   floating alpha, floating beta,
                   floating* c, Py_ssize_t rsc, Py_ssize_t csc,
                   Py_ssize_t mr, Py_ssize_t nr,
                   const floating* const* rows=NULL, Py_ssize_t nruns=0,
                   const Py_ssize_t* offs=NULL, const Py_ssize_t* lens=NULL) noexcept nogil:
    """C[0:mr, 0:nr] = alpha * (A-panel @ B-panel)[0:mr, 0:nr] + beta * C[0:mr, 0:nr].

    pa: packed MR x kc micro-panel (MR contiguous per k), pb: packed kc x NR
    micro-panel (NR contiguous per k).  The rank-1 updates are the C function
    dlk_ukernel_f/_d (DLK_TILE_BODY): an MR x NR accumulator tile of explicit vectors,
    NR / width vector loads and MR broadcasts per k, nothing else in the loop (checked
    with objdump for every variant, gcc 12 -O3).  Written as plain loops over a local
    array, gcc's register allocation of the tile depended on the code around it (a
    change elsewhere in this function spilled accumulators in some variants, up to
    1.7x slower).

    With ``rows`` (a convolution's patch rows inside the image), A is read in place
    instead of pa: dlk_ukernel_runs_f/_d, the same arithmetic in the same order (the
    same bits), over the k columns given as runs of offsets into each row.

    Only the mr x nr corner is written back, so edge tiles never touch anything
    outside C (acc is the temporary for the edge).  beta == 0 never reads C.
    """
    cdef _Blocking blk = _blocking(<floating>0)
    cdef Py_ssize_t MR = blk.MR, NR = blk.NR
    cdef floating acc[_GEMM_ACC_LEN]
    cdef Py_ssize_t i, j

    if rows != NULL:
        if floating is float:
            dlk_ukernel_runs_f(nruns, offs, lens, rows, pb, acc)
        else:
            dlk_ukernel_runs_d(nruns, offs, lens, rows, pb, acc)
    elif floating is float:
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

cdef void _macro_kernel_patches(Py_ssize_t mc, Py_ssize_t nc, Py_ssize_t kc,
                                Py_ssize_t jp0, Py_ssize_t jp1,
                                const dlk_patches* pa, Py_ssize_t pc,
                                floating* a_pack, const floating* b_pack,
                                floating alpha, floating beta,
                                floating* c, Py_ssize_t rsc, Py_ssize_t csc,
                                const _Ep* ep, Py_ssize_t ic, Py_ssize_t jc) noexcept nogil:
    """_macro_kernel when A is a convolution's patch matrix P with long runs (at least
    8 channels per cell): a micro-panel whose MR rows all have their windows inside the
    image is read in place by the runs micro-kernel (its rows are the windows'
    corners, its k columns the block's runs) -- no packing; the others (padding, the
    last partial panel) are packed as before.  Same bits either way."""
    cdef _Blocking blk = _blocking(<floating>0)
    cdef Py_ssize_t MR = blk.MR, NR = blk.NR
    cdef Py_ssize_t n_ip = _ceil_div(mc, MR)
    cdef Py_ssize_t ip, jp, mr, nr, r, nruns
    cdef const floating* corners[_GEMM_MAX_MC]
    cdef char inside[_GEMM_MAX_MC]
    cdef char direct[_GEMM_MAX_MC]
    cdef Py_ssize_t offs[_GEMM_MAX_KC]
    cdef Py_ssize_t lens[_GEMM_MAX_KC]
    if floating is float:
        dlk_patch_corners_f(pa, ic, mc, corners, inside)
    else:
        dlk_patch_corners_d(pa, ic, mc, corners, inside)
    nruns = dlk_patch_runs(pa, pc, kc, offs, lens)
    for ip in range(n_ip):
        mr = _imin(MR, mc - ip * MR)
        direct[ip] = mr == MR
        for r in range(mr):
            if not inside[ip * MR + r]:
                direct[ip] = False
        if not direct[ip]:
            _pack_a_block(pa, ic + ip * MR, pc, mr, kc, <const floating*>NULL, 0, 0,
                          a_pack + ip * MR * kc)
    for jp in range(jp0, jp1):
        nr = _imin(NR, nc - jp * NR)
        for ip in range(n_ip):
            mr = _imin(MR, mc - ip * MR)
            if direct[ip]:
                _ukernel(kc, a_pack, b_pack + jp * NR * kc, alpha, beta,
                         c + ip * MR * rsc + jp * NR * csc, rsc, csc, mr, nr,
                         &corners[ip * MR], nruns, offs, lens)
            else:
                _ukernel(kc, a_pack + ip * MR * kc, b_pack + jp * NR * kc, alpha, beta,
                         c + ip * MR * rsc + jp * NR * csc, rsc, csc, mr, nr)
            if ep != NULL:
                _ep_lines(ep, c + ip * MR * rsc + jp * NR * csc, rsc, csc,
                          ic + ip * MR, jc + jp * NR, mr, nr)


cdef void _macro_kernel(Py_ssize_t mc, Py_ssize_t nc, Py_ssize_t kc,
                        Py_ssize_t jp0, Py_ssize_t jp1,
                        const dlk_patches* pa, Py_ssize_t pc,
                        const floating* a, Py_ssize_t rsa, Py_ssize_t csa,
                        floating* a_pack, const floating* b_pack,
                        floating alpha, floating beta,
                        floating* c, Py_ssize_t rsc, Py_ssize_t csc,
                        const _Ep* ep, Py_ssize_t ic, Py_ssize_t jc) noexcept nogil:
    """C[0:mc, jp0*NR : min(jp1*NR, nc)] (+)= A[0:mc, 0:kc] @ B-block panels jp0..jp1-1.

    `a` is the unpacked A block (packed here into a_pack) -- or, with pa, A is that
    patch matrix and its block at (ic, pc) is gathered --, `b_pack` the packed
    B block of the current (jc, pc) iteration, `c` the C block at (ic, jc).
    With a_pack == NULL (allocation failed) A is packed one micro-panel at a time
    into a stack buffer: same arithmetic, so the same result, only slower.
    With ep (the last rank-kc update of a fused GEMM), each tile then gets its bias
    and simple activation (_ep_lines) while it is in L1.
    """
    cdef _Blocking blk = _blocking(<floating>0)
    cdef Py_ssize_t MR = blk.MR, NR = blk.NR
    cdef Py_ssize_t n_ip = _ceil_div(mc, MR)
    cdef Py_ssize_t ip, jp, mr, nr
    cdef floating a_panel[_GEMM_APANEL_LEN]

    if (a_pack != NULL and pa != NULL and not pa.transposed and pa.cg >= 8
            and mc <= _GEMM_MAX_MC and kc <= _GEMM_MAX_KC):
        _macro_kernel_patches(mc, nc, kc, jp0, jp1, pa, pc, a_pack, b_pack, alpha, beta,
                              c, rsc, csc, ep, ic, jc)
    elif a_pack != NULL:
        _pack_a_block(pa, ic, pc, mc, kc, a, rsa, csa, a_pack)
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
            _pack_a_block(pa, ic + ip * MR, pc, mr, kc,
                          a + ip * MR * rsa if pa == NULL else a, rsa, csa, a_panel)
            for jp in range(jp0, jp1):
                nr = _imin(NR, nc - jp * NR)
                _ukernel(kc, a_panel, b_pack + jp * NR * kc,
                         alpha, beta, c + ip * MR * rsc + jp * NR * csc, rsc, csc,
                         mr, nr)
                if ep != NULL:
                    _ep_lines(ep, c + ip * MR * rsc + jp * NR * csc, rsc, csc,
                              ic + ip * MR, jc + jp * NR, mr, nr)


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
    const dlk_patches* pa       # not NULL: A is this patch matrix (a unused)
    const dlk_patches* pb       # not NULL: B is this patch matrix (b unused)
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
    cdef _Blocking blk = _blocking(<floating>0)
    cdef Py_ssize_t MR = blk.MR, NR = blk.NR, KC = blk.KC, MC = blk.MC, NC = blk.NC
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
                           and (not act_by_rows(ep.act) or job.ep_rows_ok))
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
                _pack_b_block(job.pb, pc, jc + jp * NR, kc, _imin(NR, nc - jp * NR),
                              b + pc * rsb + (jc + jp * NR) * csb if job.pb == NULL
                              else b, rsb, csb, b_pack + jp * NR * kc)
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
                _macro_kernel(mc, nc, kc, jp0, jp1, job.pa, pc,
                              a + ic * rsa + pc * csa if job.pa == NULL else a, rsa, csa,
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
