# The dense layer's epilogue, part of the blocked GEMM of gemm_impl.pxi (included from
# there): C += bias, then Y = act(C), applied to a block of C as soon as its k-sum is
# complete, by the thread that computed it.

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
    """The driver's return value: 0 when a row activation (softmax) was left to the caller (a block
    did not hold whole lines), else 1."""
    return 0 if ep != NULL and act_by_rows(ep.act) and not rows_ok else 1


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


cdef void _ep_whole(const _Ep* ep, Py_ssize_t m, Py_ssize_t n,
                    floating* c, Py_ssize_t rsc, Py_ssize_t csc) noexcept nogil:
    """The whole epilogue on all of C (after a fallback computed C without it)."""
    _ep_lines(ep, c, rsc, csc, 0, 0, m, n)
    if _ep_act_pending(ep):
        _ep_block(ep, c, rsc, csc, 0, 0, m, n)
