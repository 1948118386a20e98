# The narrow paths, part of the GEMM of gemm_impl.pxi (included from there): C with
# few columns by dot products along k (dlk_dot_tile_*), C with few rows by the rows
# kernels (dlk_rows_*), each with its loops over threads and its small scratch.

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
                           and (not act_by_rows(ep.act) or job.ep_rows_ok))
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
                           and (not act_by_rows(ep.act) or job.ep_rows_ok))
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
