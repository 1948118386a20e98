"""The common case of a kernel's arguments, accepted in C before the Python checks.

``kernels.checks`` validates every argument of every public kernel and names what is
wrong; in Python that costs a few microseconds a call, which is most of a thin dense
layer's time.  The functions here answer one question quickly: are these arguments
the plain common case -- exact ``numpy.ndarray`` objects, of one native float dtype,
aligned, of consistent non-empty shapes, outputs given, writeable and C-contiguous,
no output overlapping any other argument -- that ``checks`` accepts and the compiled
kernel takes as is?  True means the wrapper may call the compiled kernel directly.
False decides nothing: the wrapper then runs the full Python checks, which accept
(with the layout fixes) or raise as always.  So these functions may be conservative
(false negatives only cost time) but must never accept what ``checks`` rejects.
"""
cimport numpy as cnp

cnp.import_array()

# the largest array in bytes (kernels.checks.MAX_BYTES, set by set_max_bytes)
cdef Py_ssize_t _max_bytes = 0
# strides beyond this are left to the Python checks (no overflow in _extent)
cdef Py_ssize_t _STRIDE_LIMIT = (<Py_ssize_t>1) << 40


def set_max_bytes(Py_ssize_t n):
    global _max_bytes
    _max_bytes = n


cdef inline bint _plain(object o, int typenum, int ndim) noexcept:
    """An exact ndarray of ``ndim`` dimensions and native dtype ``typenum``, aligned,
    non-empty, fitting in memory, with element-multiple strides of sane size."""
    if not cnp.PyArray_CheckExact(o):
        return False
    cdef cnp.ndarray a = <cnp.ndarray>o
    if (cnp.PyArray_NDIM(a) != ndim or cnp.PyArray_TYPE(a) != typenum
            or not cnp.PyArray_ISNOTSWAPPED(a) or not cnp.PyArray_ISALIGNED(a)):
        return False
    cdef Py_ssize_t isz = cnp.PyArray_ITEMSIZE(a), nbytes = isz, d, s, i
    for i in range(ndim):
        d = cnp.PyArray_DIM(a, i)
        s = cnp.PyArray_STRIDE(a, i)
        if d <= 0 or d > _max_bytes // nbytes:
            return False
        nbytes *= d
        if s % isz != 0 or s > _STRIDE_LIMIT or s < -_STRIDE_LIMIT:
            return False
    return True


cdef inline bint _out(object o, int typenum, int ndim) noexcept:
    """_plain, and also writeable and C-contiguous."""
    return (_plain(o, typenum, ndim)
            and cnp.PyArray_ISWRITEABLE(<cnp.ndarray>o)
            and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>o))


cdef inline bint _c(object o) noexcept:
    return cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>o)


cdef inline void _extent(object o, Py_ssize_t* lo, Py_ssize_t* hi) noexcept:
    """The bytes [lo, hi) an array's elements span (np.may_share_memory's bounds)."""
    cdef cnp.ndarray a = <cnp.ndarray>o
    cdef Py_ssize_t l = <Py_ssize_t>cnp.PyArray_DATA(a), h, s, i
    h = l + cnp.PyArray_ITEMSIZE(a)
    for i in range(cnp.PyArray_NDIM(a)):
        s = (cnp.PyArray_DIM(a, i) - 1) * cnp.PyArray_STRIDE(a, i)
        if s > 0:
            h += s
        else:
            l += s
    lo[0] = l
    hi[0] = h


cdef inline bint _apart(object a, object b) noexcept:
    """No byte in common (by the bounds: conservative, as np.may_share_memory)."""
    cdef Py_ssize_t alo, ahi, blo, bhi
    _extent(a, &alo, &ahi)
    _extent(b, &blo, &bhi)
    return ahi <= blo or bhi <= alo


cdef inline int _typenum(object o) noexcept:
    """NPY_FLOAT or NPY_DOUBLE for a float32/float64 ndarray, else -1."""
    if not cnp.PyArray_CheckExact(o):
        return -1
    cdef int t = cnp.PyArray_TYPE(<cnp.ndarray>o)
    return t if t == cnp.NPY_FLOAT or t == cnp.NPY_DOUBLE else -1


def dense_forward(x, w, b, out, pre):
    """True for dense_forward's common case: x (m, k) and w (k, n) plain, b None or
    (n,) contiguous, out and pre None-or-given outputs (m, n) (out given), each output
    apart from every input and from the other output."""
    cdef int t = _typenum(x)
    if t < 0 or not _plain(x, t, 2) or not _plain(w, t, 2) or not _out(out, t, 2):
        return False
    cdef cnp.ndarray xa = <cnp.ndarray>x, wa = <cnp.ndarray>w, oa = <cnp.ndarray>out
    cdef Py_ssize_t m = cnp.PyArray_DIM(xa, 0), k = cnp.PyArray_DIM(xa, 1)
    cdef Py_ssize_t n = cnp.PyArray_DIM(wa, 1)
    if (cnp.PyArray_DIM(wa, 0) != k or cnp.PyArray_DIM(oa, 0) != m
            or cnp.PyArray_DIM(oa, 1) != n):
        return False
    if b is not None:
        if not _plain(b, t, 1) or not _c(b) or cnp.PyArray_DIM(<cnp.ndarray>b, 0) != n:
            return False
        if not _apart(out, b):
            return False
    if not (_apart(out, x) and _apart(out, w)):
        return False
    if pre is not None:
        if not _out(pre, t, 2) or cnp.PyArray_DIM(<cnp.ndarray>pre, 0) != m \
                or cnp.PyArray_DIM(<cnp.ndarray>pre, 1) != n:
            return False
        if not (_apart(pre, x) and _apart(pre, w) and _apart(pre, out)
                and (b is None or _apart(pre, b))):
            return False
    return True


def dense_backward(dy, x, w, saved, dx, dw, db):
    """True for dense_backward's common case: dy (m, n) and saved (m, n) contiguous,
    x (m, k) and w (k, n) plain, outputs dw (k, n), db (n,) or None, dx (m, k) or None,
    each apart from every input and from the other outputs."""
    cdef int t = _typenum(dy)
    if (t < 0 or not _plain(dy, t, 2) or not _c(dy) or not _plain(x, t, 2)
            or not _plain(w, t, 2) or not _plain(saved, t, 2) or not _c(saved)
            or not _out(dw, t, 2)):
        return False
    cdef cnp.ndarray dya = <cnp.ndarray>dy, xa = <cnp.ndarray>x, wa = <cnp.ndarray>w
    cdef cnp.ndarray sa = <cnp.ndarray>saved, dwa = <cnp.ndarray>dw
    cdef Py_ssize_t m = cnp.PyArray_DIM(dya, 0), n = cnp.PyArray_DIM(dya, 1)
    cdef Py_ssize_t k = cnp.PyArray_DIM(xa, 1)
    if (cnp.PyArray_DIM(xa, 0) != m or cnp.PyArray_DIM(wa, 0) != k
            or cnp.PyArray_DIM(wa, 1) != n or cnp.PyArray_DIM(sa, 0) != m
            or cnp.PyArray_DIM(sa, 1) != n or cnp.PyArray_DIM(dwa, 0) != k
            or cnp.PyArray_DIM(dwa, 1) != n):
        return False
    outs = [dw]
    if db is not None:
        if not _out(db, t, 1) or cnp.PyArray_DIM(<cnp.ndarray>db, 0) != n:
            return False
        outs.append(db)
    if dx is not None:
        if not _out(dx, t, 2) or cnp.PyArray_DIM(<cnp.ndarray>dx, 0) != m \
                or cnp.PyArray_DIM(<cnp.ndarray>dx, 1) != k:
            return False
        outs.append(dx)
    cdef Py_ssize_t i, j
    for i in range(len(outs)):
        o = outs[i]
        if not (_apart(o, dy) and _apart(o, x) and _apart(o, w) and _apart(o, saved)):
            return False
        for j in range(i):
            if not _apart(o, outs[j]):
                return False
    return True


def gemm(a, b, out, bint trans_a, bint trans_b):
    """True for gemm's common case: a and b plain 2-D of one dtype with matching inner
    sizes (after the transposes), out a given output of the result's shape apart from
    both."""
    cdef int t = _typenum(a)
    if t < 0 or not _plain(a, t, 2) or not _plain(b, t, 2) or not _out(out, t, 2):
        return False
    cdef cnp.ndarray aa = <cnp.ndarray>a, ba = <cnp.ndarray>b, oa = <cnp.ndarray>out
    cdef Py_ssize_t m = cnp.PyArray_DIM(aa, 1 if trans_a else 0)
    cdef Py_ssize_t k = cnp.PyArray_DIM(aa, 0 if trans_a else 1)
    cdef Py_ssize_t kb = cnp.PyArray_DIM(ba, 1 if trans_b else 0)
    cdef Py_ssize_t n = cnp.PyArray_DIM(ba, 0 if trans_b else 1)
    if kb != k or cnp.PyArray_DIM(oa, 0) != m or cnp.PyArray_DIM(oa, 1) != n:
        return False
    return _apart(out, a) and _apart(out, b)
