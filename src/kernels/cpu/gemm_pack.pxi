# Packing, part of the blocked GEMM of gemm_impl.pxi (included from there): A blocks
# into MR-row micro-panels, B blocks into NR-column micro-panels, padded with zeros,
# so that the micro-kernel reads both contiguously.

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
    cdef _Blocking blk = _blocking(<floating>0)
    cdef Py_ssize_t MR = blk.MR
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
    cdef _Blocking blk = _blocking(<floating>0)
    cdef Py_ssize_t NR = blk.NR
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


cdef inline void _pack_a_block(const dlk_patches* pa, Py_ssize_t i0, Py_ssize_t p0,
                               Py_ssize_t mc, Py_ssize_t kc,
                               const floating* a, Py_ssize_t rsa, Py_ssize_t csa,
                               floating* dst) noexcept nogil:
    """_pack_a of A's block at (i0, p0): from `a` (that block's first element) or,
    when pa is not NULL, gathered from a convolution's patch matrix P, or from P^T
    when pa.transposed (each micro-panel is then P's rows p0.. as B-style panels of
    MR columns)."""
    cdef Py_ssize_t MR = _blocking(<floating>0).MR
    cdef Py_ssize_t ip
    if pa == NULL:
        _pack_a(mc, kc, a, rsa, csa, dst)
    elif pa.transposed:
        for ip in range(_ceil_div(mc, MR)):
            if floating is float:
                dlk_patch_pack_b_f(pa, p0, i0 + ip * MR, kc, _imin(MR, mc - ip * MR), MR,
                                   dst + ip * MR * kc)
            else:
                dlk_patch_pack_b_d(pa, p0, i0 + ip * MR, kc, _imin(MR, mc - ip * MR), MR,
                                   dst + ip * MR * kc)
    elif floating is float:
        dlk_patch_pack_a_f(pa, i0, p0, mc, kc, _blocking(<floating>0).MR, dst)
    else:
        dlk_patch_pack_a_d(pa, i0, p0, mc, kc, _blocking(<floating>0).MR, dst)


cdef inline void _pack_b_block(const dlk_patches* pb, Py_ssize_t p0, Py_ssize_t j0,
                               Py_ssize_t kc, Py_ssize_t nr,
                               const floating* b, Py_ssize_t rsb, Py_ssize_t csb,
                               floating* dst) noexcept nogil:
    """_pack_b_panel of B's panel at (p0, j0): from `b` (that panel's first element)
    or, when pb is not NULL, gathered from a convolution's patch matrix."""
    if pb == NULL:
        _pack_b_panel(kc, nr, b, rsb, csb, dst)
    elif floating is float:
        dlk_patch_pack_b_f(pb, p0, j0, kc, nr, _blocking(<floating>0).NR, dst)
    else:
        dlk_patch_pack_b_d(pb, p0, j0, kc, nr, _blocking(<floating>0).NR, dst)
