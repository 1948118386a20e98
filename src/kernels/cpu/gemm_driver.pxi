# The driver, part of the GEMM of gemm_impl.pxi (included from there): choosing the
# path (dot, rows, transpose swap, blocked), the blocking and the threads; then what
# each ISA module exports (concrete float32/float64 entry points, their capsules).

# ----------------------------------------------------------------------------
# driver: the path, loops 5, 4 and 3's blocking, and the threads
# ----------------------------------------------------------------------------

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
    cdef _Blocking blk = _blocking(<floating>0)
    cdef Py_ssize_t MR = blk.MR, NR = blk.NR, KC = blk.KC, MC = blk.MC, NC = blk.NC
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
    cdef Py_ssize_t nt = _gemm_team(m, n, k, num_threads, alpha)
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
    job.pa = NULL
    job.pb = NULL

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

    return _gemm_blocked(&job, nt, alpha)


cdef Py_ssize_t _gemm_team(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, int num_threads,
                           floating tag) noexcept nogil:
    """The threads an m x n x k product gets (``tag`` picks the type): at most
    num_threads, and each at least ~96^3 multiply-adds, or waking it and the barriers
    cost more than it saves (the result does not depend on the count)."""
    cdef Py_ssize_t nt = num_threads
    if nt < 1:
        nt = 1
    cdef double work = <double>m * <double>n * <double>k
    # (float64: half as many multiply-adds, each vector holds half as many)
    cdef double min_work = _GEMM_MIN_WORK_PER_THREAD if floating is float \
        else _GEMM_MIN_WORK_PER_THREAD / 2.0
    if work < <double>nt * min_work:
        nt = <Py_ssize_t>(work / min_work)
        if nt < 1:
            nt = 1
    return nt


cdef int _gemm_blocked(_Job* job, Py_ssize_t nt, floating tag) noexcept nogil:
    """The blocked path of ``job`` (its problem, epilogue and operands filled in) on at
    most nt threads (``tag`` picks the type).  Returns as _gemm_driver, or -1 when the
    packing buffer cannot be allocated and an operand is a patch matrix (which has no
    unpacked fallback)."""
    # The blocked path.  Work split: an item is (group g of B micro-panels, ic block);
    # the groups cut each NC block's micro-panels into nt slices, so with a static
    # split each thread owns one column slice of C (and packs the B panels it will
    # use).  k is cut into n_pc rank-kc updates of (nearly) equal depth <= KC:
    # 784 = 4 x 196, not 3 x 256 + 16 (a last thin update costs a whole pass over C
    # for little work).
    cdef _Blocking blk = _blocking(<floating>0)
    cdef Py_ssize_t MR = blk.MR, NR = blk.NR, KC = blk.KC, MC = blk.MC, NC = blk.NC
    cdef Py_ssize_t m = job.m, n = job.n, k = job.k
    cdef const _Ep* ep = job.ep
    cdef Py_ssize_t n_pc = _ceil_div(k, KC)
    cdef Py_ssize_t kc_max = _ceil_div(k, n_pc)
    cdef Py_ssize_t nc_max = _imin(NC, n)
    cdef Py_ssize_t mc_max = _imin(MC, m)
    job.n_ic = _ceil_div(m, MC)
    job.n_jc = _ceil_div(n, NC)
    job.n_pc = n_pc
    job.kc_blk = kc_max
    job.n_jg = _imin(nt, _ceil_div(nc_max, NR))
    # Tall and narrow (a convolution's pixels x filters): with few column panels and
    # many row blocks, split the rows only -- split columns, every thread would pack
    # the same A blocks for its own few panels.
    if job.n_jc == 1 and _ceil_div(nc_max, NR) <= 4 and job.n_ic >= 4 * nt:
        job.n_jg = 1
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
        if job.pa != NULL or job.pb != NULL:
            return -1                # (a patch matrix has no unpacked form to read)
        _gemm_unpacked(m, n, k, <floating>job.alpha, <const floating*>job.a, job.rsa,
                       job.csa, <const floating*>job.b, job.rsb, job.csb,
                       <floating>job.beta, <floating*>job.c, job.rsc, job.csc)
        if ep != NULL:
            _ep_whole(ep, m, n, <floating*>job.c, job.rsc, job.csc)
        return 1
    cdef floating* b_pack = <floating*>_aligned_ptr(b_raw)

    if nt == 1:
        # no OpenMP region at all: entering one costs microseconds, which is what a
        # whole small product takes
        _gemm_loops(job, b_pack, 0, 1)
    else:
        with parallel(num_threads=nt):
            _gemm_loops(job, b_pack, dlk_gemm_thread_num(), dlk_gemm_team_size())
    free(b_raw)
    return _ep_result(ep, job.ep_rows_ok)


cdef inline bint _ep_init(_Ep* ep, const floating* bias, int act, double param, floating* y,
                          Py_ssize_t rsy, const floating* c) noexcept nogil:
    """Fill the dense epilogue (bias, then act into row-major Y) of a row-major C;
    False when there is nothing to do (no bias, linear, Y = C)."""
    if bias == NULL and act == ACT_LINEAR and y == c:
        return False
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
    return True


cdef int _gemm_ep_entry(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                        const floating* a, Py_ssize_t rsa, Py_ssize_t csa,
                        const floating* b, Py_ssize_t rsb, Py_ssize_t csb,
                        floating* c, Py_ssize_t rsc, const floating* bias, int act,
                        double param, floating* y, Py_ssize_t rsy,
                        int num_threads) noexcept nogil:
    """The fused entry (sgemm_ep / dgemm_ep of gemm.pxd): C = A @ B + bias, Y = act(C)."""
    cdef _Ep ep
    return _gemm_driver(m, n, k, <floating>1, a, rsa, csa, b, rsb, csb, <floating>0,
                        c, rsc, 1, num_threads,
                        &ep if _ep_init(&ep, bias, act, param, y, rsy, c) else NULL)


cdef int _gemm_px_entry(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                        const floating* a, Py_ssize_t rsa, Py_ssize_t csa,
                        const dlk_patches* pa,
                        const floating* b, Py_ssize_t rsb, Py_ssize_t csb,
                        const dlk_patches* pb,
                        floating beta, floating* c, Py_ssize_t rsc, Py_ssize_t csc,
                        const floating* bias, int act, double param, floating* y,
                        Py_ssize_t rsy, int num_threads) noexcept nogil:
    """The conv kernels' entry (sgemm_px / dgemm_px of gemm.pxd): C = A @ B + beta C
    where A (pa not NULL) or B (pb) is a convolution's patch matrix, on the blocked
    path; then the epilogue of _gemm_ep_entry (bias, act into Y; C row-major) unless
    bias is NULL, act linear and Y is C.  Returns as _gemm_driver; -1 when out of
    memory."""
    cdef _Ep ep
    cdef _Job job
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
    job.alpha = 1
    job.beta = beta
    job.ep = &ep if _ep_init(&ep, bias, act, param, y, rsy, c) else NULL
    job.pa = pa
    job.pb = pb
    return _gemm_blocked(&job, _gemm_team(m, n, k, num_threads, beta), beta)


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


cdef int _sgemm_px(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                   const float* a, Py_ssize_t rsa, Py_ssize_t csa, const dlk_patches* pa,
                   const float* b, Py_ssize_t rsb, Py_ssize_t csb, const dlk_patches* pb,
                   float beta, float* c, Py_ssize_t rsc, Py_ssize_t csc,
                   const float* bias, int act, double param, float* y, Py_ssize_t rsy,
                   int num_threads) noexcept nogil:
    return _gemm_px_entry(m, n, k, a, rsa, csa, pa, b, rsb, csb, pb, beta, c, rsc, csc,
                          bias, act, param, y, rsy, num_threads)


cdef int _dgemm_px(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                   const double* a, Py_ssize_t rsa, Py_ssize_t csa, const dlk_patches* pa,
                   const double* b, Py_ssize_t rsb, Py_ssize_t csb, const dlk_patches* pb,
                   double beta, double* c, Py_ssize_t rsc, Py_ssize_t csc,
                   const double* bias, int act, double param, double* y, Py_ssize_t rsy,
                   int num_threads) noexcept nogil:
    return _gemm_px_entry(m, n, k, a, rsa, csa, pa, b, rsb, csb, pb, beta, c, rsc, csc,
                          bias, act, param, y, rsy, num_threads)


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


def px_capsules():
    """(capsule "kernels.sgemm_px_fn", capsule "kernels.dgemm_px_fn"): the GEMM with a
    patch-matrix operand (types sgemm_px_fn / dgemm_px_fn of kernels/cpu/gemm.pxd)."""
    return (PyCapsule_New(<void*>_sgemm_px, "kernels.sgemm_px_fn", NULL),
            PyCapsule_New(<void*>_dgemm_px, "kernels.dgemm_px_fn", NULL))


def blocking():
    """The blocking constants: {'float32': {...}, 'float64': {...}}."""
    return {"float32": _blocking(<float>0), "float64": _blocking(<double>0)}
