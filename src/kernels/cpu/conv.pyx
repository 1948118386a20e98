"""Convolution kernels: conv2d (conv1d is its one-row case) and depthwise conv2d,
forward and backward, float32 and float64, NHWC with Keras's kernel layout.

A convolution is a GEMM of its patch matrix P (one row per output pixel, one column
per kernel cell and input channel of a group: dlk_patches.h) with the kernel viewed as
(kh * kw * cg, filters).  P is never formed: the GEMM gathers its blocks from the image
while packing them (``sgemm_px`` / ``dgemm_px`` of gemm.pxd), or, for a micro-panel of
rows whose windows lie inside the image, reads them in place (the runs micro-kernel),
so the workspace is the GEMM's packing buffers, whatever the batch.

* forward: ``z = P w + b`` through the GEMM, bias and activation in its epilogue, one
  call per group.  A first layer's short k (9 for one channel and 3 x 3) included: a
  direct kernel (4 pixels x 16 channels in registers) measured slower than the GEMM
  fed by the gathering pack (the same forward 9.4 vs 7.0 ms, its dw 14.5 vs 7.8 ms, on
  the MNIST convnet's first layer, batch 128), so there is none.
* backward: dz and db in one pass (``backprop_colsum``); the weight gradient through
  the GEMM, its k being the batch's pixels (cut in blocks that depend only on the
  shapes): ``dw^T = dz^T P`` (P as the B operand), or ``dw = P^T dz`` (P^T packed as
  the A operand) when the patch is narrower than the filters -- the narrow side padded
  to the micro-tile's MR rather than its wider NR --, in pieces of _DW_ROWS pixels run
  in parallel and added in piece order (a first layer's dw is one GEMM work item);
  ``dx``: pieces of whole images, each
  owned by one thread, ``dz w^T`` into a piece-sized buffer (a plain GEMM) then col2im
  into its images -- no atomics, the same bits for any thread count.
* depthwise: direct kernels (each channel its own small filter).

The non-GEMM loops are in conv_impl.pxi, compiled per instruction set (conv_base,
conv_avx2, conv_avx512); this module is the dispatcher (``use_impl``,
DLKERNELS_CONV_IMPL) and splits the work among threads.  Arguments arrive validated
and C-contiguous from ``kernels.cpu.backend``.
"""
import importlib

from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.stdlib cimport malloc, free
from libc.string cimport memset
from cpython.pycapsule cimport PyCapsule_GetPointer

from kernels.cpu._patches cimport dlk_patches
from kernels.cpu._threads cimport threads_for
from kernels.cpu.gemm cimport sgemm, dgemm, sgemm_px, dgemm_px, gemm_threads
from kernels.cpu.elementwise cimport (activate_f32, activate_f64, backprop_colsum_f32,
                                      backprop_colsum_f64, ACT_LINEAR, act_by_rows)

_PACKAGE = __name__.rpartition(".")[0] or "kernels.cpu"
_isa = importlib.import_module(f"{_PACKAGE}._isa")

cdef conv_table* _tab = NULL

cdef enum:
    _ROWS = 1024        # output pixels per piece of the depthwise kernels and partial sums
    _DX_ROWS = 256      # at least this many output pixels per dx piece (whole images)
    _DW_ROWS = 16384    # output pixels per piece of the weight gradient's sum


def _install(capsule):
    global _tab
    _tab = <conv_table*>PyCapsule_GetPointer(capsule, "kernels.conv_table")


_variants = _isa.Variants(_PACKAGE, "conv", "DLKERNELS_CONV_IMPL",
                          lambda mod: mod.capsule(), _install)


def available_impls():
    """Convolution variants both built and supported by this CPU."""
    return _variants.names()


def current_impl():
    """Name of the convolution variant in use."""
    return _variants.current


def use_impl(name):
    """Make the convolution kernels use the variant `name` (one of available_impls()).
    Not to be called while another thread runs a kernel."""
    _variants.use(name)


cdef void _describe(dlk_patches* d, g, const void* x, Py_ssize_t cg):
    """The patch matrix of group 0 of input x with geometry g (checks.ConvGeometry)."""
    d.x = x
    d.h, d.w, d.c = g.h, g.w, g.cin
    d.c0, d.cg = 0, cg
    d.kh, d.kw, d.sh, d.sw, d.dh, d.dw = g.kh, g.kw, g.sh, g.sw, g.dh, g.dw
    d.pt, d.pl, d.oh, d.ow = g.pt, g.pl, g.oh, g.ow
    d.transposed = 0
    d.i0 = 0


cdef inline void _activate(int act, double param, const floating* z, floating* y,
                           Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    if floating is float:
        activate_f32(act, param, z, y, rows, cols)
    else:
        activate_f64(act, param, z, y, rows, cols)


cdef inline void _backprop_colsum(int act, double param, const floating* dy,
                                  const floating* saved, floating* dz, floating* db,
                                  Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    if floating is float:
        backprop_colsum_f32(act, param, dy, saved, dz, db, rows, cols)
    else:
        backprop_colsum_f64(act, param, dy, saved, dz, db, rows, cols)


cdef inline int _gemm_px(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                         const floating* a, Py_ssize_t rsa, Py_ssize_t csa,
                         const dlk_patches* pa,
                         const floating* b, Py_ssize_t rsb, Py_ssize_t csb,
                         const dlk_patches* pb,
                         floating* c, Py_ssize_t rsc, Py_ssize_t csc,
                         const floating* bias, int act, double param, floating* y,
                         Py_ssize_t rsy) noexcept nogil:
    cdef int nt = gemm_threads(m, n, k, floating is float)
    if floating is float:
        return sgemm_px(m, n, k, a, rsa, csa, pa, b, rsb, csb, pb, 0, c, rsc, csc, bias,
                        act, param, y, rsy, nt)
    else:
        return dgemm_px(m, n, k, a, rsa, csa, pa, b, rsb, csb, pb, 0, c, rsc, csc, bias,
                        act, param, y, rsy, nt)


cdef inline Py_ssize_t _pieces(Py_ssize_t total, Py_ssize_t size) noexcept nogil:
    return (total + size - 1) // size


cdef void _sum_pieces(const floating* part, Py_ssize_t pieces, Py_ssize_t size,
                      floating* out) noexcept nogil:
    """out = part[0] + part[1] + ... (each element summed in piece order)."""
    cdef Py_ssize_t j, p
    for j in range(size):
        out[j] = part[j]
    for p in range(1, pieces):
        for j in range(size):
            out[j] = out[j] + part[p * size + j]


cdef int _dw_piece(const dlk_patches* d0, Py_ssize_t c0, Py_ssize_t i0, Py_ssize_t rows,
                   Py_ssize_t k, Py_ssize_t og, const floating* dz, Py_ssize_t ldz,
                   floating* dw, Py_ssize_t ldw, bint serial) noexcept nogil:
    """dw (k, og; row stride ldw) = P[i0 : i0 + rows]^T dz (rows, og; row stride ldz)
    for the group whose channels start at c0; single-threaded when ``serial``.  The
    narrow side is the GEMM's rows: P^T (padded to MR) when the patch is narrower than
    the filters, else dz^T (dw^T = dz^T P)."""
    cdef dlk_patches d = d0[0]
    cdef int status, nt = 1 if serial else gemm_threads(rows, k, og, floating is float)
    d.c0 = c0
    d.i0 = i0
    if k < og:
        d.transposed = 1
        if floating is float:
            status = sgemm_px(k, og, rows, NULL, 0, 0, &d, dz, ldz, 1, NULL, 0, dw, ldw, 1,
                              NULL, ACT_LINEAR, 0.0, dw, ldw, nt)
        else:
            status = dgemm_px(k, og, rows, NULL, 0, 0, &d, dz, ldz, 1, NULL, 0, dw, ldw, 1,
                              NULL, ACT_LINEAR, 0.0, dw, ldw, nt)
    elif floating is float:
        status = sgemm_px(og, k, rows, dz, 1, ldz, NULL, NULL, 0, 0, &d, 0, dw, 1, ldw,
                          NULL, ACT_LINEAR, 0.0, dw, 1, nt)
    else:
        status = dgemm_px(og, k, rows, dz, 1, ldz, NULL, NULL, 0, 0, &d, 0, dw, 1, ldw,
                          NULL, ACT_LINEAR, 0.0, dw, 1, nt)
    return status


cdef void _sum_rows(const floating* part, Py_ssize_t pieces, Py_ssize_t rows,
                    Py_ssize_t cols, floating* out, Py_ssize_t ldo) noexcept nogil:
    """out[r, :cols] (row stride ldo) = the pieces' (rows, cols) blocks added in piece
    order."""
    cdef Py_ssize_t p, r, j
    cdef const floating* src
    for r in range(rows):
        for j in range(cols):
            out[r * ldo + j] = part[r * cols + j]
        for p in range(1, pieces):
            src = part + p * rows * cols + r * cols
            for j in range(cols):
                out[r * ldo + j] = out[r * ldo + j] + src[j]


def conv2d_forward(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w, b,
                   floating[:, :, :, ::1] out, pre, g, int act, double param):
    """out = act(conv(x, w) + b), z kept in ``pre`` when it is not None (see the module
    docstring); g: checks.ConvGeometry."""
    cdef Py_ssize_t groups = g.groups, cout = g.cout
    cdef Py_ssize_t cg = g.cin // groups, og = cout // groups
    cdef Py_ssize_t m = g.n * g.oh * g.ow, k = g.kh * g.kw * cg
    cdef dlk_patches d
    cdef const floating[::1] bv
    cdef floating[:, :, :, ::1] pv
    cdef const floating* bias = NULL
    cdef floating* y = &out[0, 0, 0, 0]
    cdef floating* z = y
    cdef const floating* wp = &w[0, 0, 0, 0]
    cdef Py_ssize_t gi, c, pieces
    cdef int nt, done = 1, status = 1
    cdef bint whole_act
    if b is not None:
        bv = b
        bias = &bv[0]
    if pre is not None:
        pv = pre
        z = &pv[0, 0, 0, 0]
    _describe(&d, g, &x[0, 0, 0, 0], cg)
    # a row activation (softmax) spans every group's channels: after all groups
    whole_act = groups > 1 and act_by_rows(act)
    with nogil:
        for gi in range(groups):
            d.c0 = gi * cg
            status = _gemm_px(m, og, k, <const floating*>NULL, 0, 0, &d, wp + gi * og,
                              cout, 1, NULL, z + gi * og, cout, 1,
                              bias + gi * og if bias != NULL else NULL,
                              ACT_LINEAR if whole_act else act, param, y + gi * og, cout)
            if status < 0:
                break
            if status == 0:
                done = 0
        if status >= 0 and (whole_act or not done):
            _activate(act, param, z, y, m, cout)
    if status < 0:
        raise MemoryError("conv2d_forward: no memory for the GEMM's packing buffer")


def conv2d_backward(const floating[:, :, :, ::1] dy, const floating[:, :, :, ::1] x,
                    const floating[:, :, :, ::1] w, const floating[:, :, :, ::1] saved,
                    int act, double param, floating[:, ::1] dz, dx, floating[:, :, :, ::1] dw,
                    db, g):
    """dz = dy * act' and db in one pass, then dw and (when dx is not None) dx, as the
    module docstring says.  dz: scratch (pixels, cout)."""
    cdef Py_ssize_t groups = g.groups, cout = g.cout, n = g.n
    cdef Py_ssize_t cg = g.cin // groups, og = cout // groups
    cdef Py_ssize_t m = n * g.oh * g.ow, k = g.kh * g.kw * cg, per_image = g.oh * g.ow
    cdef Py_ssize_t image_size = g.h * g.w * g.cin
    cdef dlk_patches d, dl
    cdef floating[::1] dbv
    cdef floating[:, :, :, ::1] dxv
    cdef floating* pdb = NULL
    cdef floating* pdx = NULL
    cdef floating* pdz = &dz[0, 0]
    cdef floating* pdw = &dw[0, 0, 0, 0]
    cdef const floating* wp = &w[0, 0, 0, 0]
    cdef floating* buf = NULL
    cdef floating* part = NULL
    cdef Py_ssize_t gi, c, pieces, per_piece, rows_max, img0, img1
    cdef int nt, status = 1, t, failed = 0
    if db is not None:
        dbv = db
        pdb = &dbv[0]
    if dx is not None:
        dxv = dx
        pdx = &dxv[0, 0, 0, 0]
    _describe(&d, g, &x[0, 0, 0, 0], cg)
    with nogil:
        _backprop_colsum(act, param, &dy[0, 0, 0, 0], &saved[0, 0, 0, 0], pdz, pdb, m, cout)
    # dw: a GEMM whose k is the batch's pixels, in pieces of _DW_ROWS pixels (a count
    # that depends on the shape only) run in parallel and added in piece order; one
    # piece is one GEMM with its own threads
    pieces = _pieces(m, _DW_ROWS)
    if pieces > 1:
        part = <floating*>malloc(pieces * k * og * sizeof(floating))
        if part == NULL:
            raise MemoryError("conv2d_backward: no memory for the partial sums of dw")
    nt = max(1, min(gemm_threads(m, k, og, floating is float), pieces))
    for gi in range(groups):
        with nogil:
            if pieces == 1:
                status = _dw_piece(&d, gi * cg, 0, m, k, og, pdz + gi * og, cout,
                                   pdw + gi * og, cout, 0)
            else:
                for c in prange(pieces, num_threads=nt, schedule="static"):
                    failed += _dw_piece(&d, gi * cg, c * _DW_ROWS,
                                        min(m - c * _DW_ROWS, _DW_ROWS), k, og,
                                        pdz + c * _DW_ROWS * cout + gi * og, cout,
                                        part + c * k * og, og, 1) < 0
                _sum_rows(part, pieces, k, og, pdw + gi * og, cout)
        if status < 0 or failed:
            status = -1
            break
    free(part)
    if status < 0:
        raise MemoryError("conv2d_backward: no memory for the GEMM's packing buffer")
    if pdx == NULL:
        return
    # dx: pieces of whole images; per piece and group, dcols = dz w^T then col2im
    per_piece = max(1, _DX_ROWS // per_image)
    pieces = _pieces(n, per_piece)
    rows_max = per_piece * per_image
    nt = max(1, min(gemm_threads(m, k, og, floating is float), pieces))
    buf = <floating*>malloc(nt * rows_max * k * sizeof(floating))
    if buf == NULL:
        raise MemoryError("conv2d_backward: no memory for the col2im buffers")
    with nogil, parallel(num_threads=nt):
        t = threadid()
        for c in prange(pieces, schedule="static"):
            img0 = c * per_piece
            img1 = min(n, img0 + per_piece)
            memset(pdx + img0 * image_size, 0, (img1 - img0) * image_size * sizeof(floating))
            dl = d
            for gi in range(groups):
                dl.c0 = gi * cg
                # dcols (rows, k) = dz[rows, group] (rows, og) @ w_group^T (og, k)
                if floating is float:
                    sgemm((img1 - img0) * per_image, k, og, 1,
                          pdz + img0 * per_image * cout + gi * og, cout, 1,
                          wp + gi * og, 1, cout, 0, buf + t * rows_max * k, k, 1, 1)
                    _tab.col2im_f32(&dl, buf + t * rows_max * k, k, pdx,
                                    img0 * per_image, img1 * per_image)
                else:
                    dgemm((img1 - img0) * per_image, k, og, 1,
                          pdz + img0 * per_image * cout + gi * og, cout, 1,
                          wp + gi * og, 1, cout, 0, buf + t * rows_max * k, k, 1, 1)
                    _tab.col2im_f64(&dl, buf + t * rows_max * k, k, pdx,
                                    img0 * per_image, img1 * per_image)
    free(buf)


def depthwise_forward(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w, b,
                      floating[:, :, :, ::1] out, pre, g, int act, double param):
    """out = act(depthwise(x, w) + b); z kept in ``pre`` when it is not None."""
    cdef Py_ssize_t dm = w.shape[3], cout = g.cout
    cdef Py_ssize_t m = g.n * g.oh * g.ow
    cdef dlk_patches d
    cdef const floating[::1] bv
    cdef floating[:, :, :, ::1] pv
    cdef const floating* bias = NULL
    cdef floating* y = &out[0, 0, 0, 0]
    cdef floating* z = y
    cdef const floating* wp = &w[0, 0, 0, 0]
    cdef Py_ssize_t c, pieces = _pieces(m, _ROWS)
    cdef int nt = max(1, min(threads_for(m * cout * g.kh * g.kw), pieces))
    if b is not None:
        bv = b
        bias = &bv[0]
    if pre is not None:
        pv = pre
        z = &pv[0, 0, 0, 0]
    _describe(&d, g, &x[0, 0, 0, 0], g.cin)
    with nogil:
        for c in prange(pieces, num_threads=nt, schedule="static"):
            if floating is float:
                _tab.dw_fwd_f32(&d, wp, dm, bias, z, c * _ROWS, min(m, (c + 1) * _ROWS))
            else:
                _tab.dw_fwd_f64(&d, wp, dm, bias, z, c * _ROWS, min(m, (c + 1) * _ROWS))
        if act != ACT_LINEAR or z != y:
            _activate(act, param, z, y, m, cout)


def depthwise_backward(const floating[:, :, :, ::1] dy, const floating[:, :, :, ::1] x,
                       const floating[:, :, :, ::1] w, const floating[:, :, :, ::1] saved,
                       int act, double param, floating[:, ::1] dz, dx,
                       floating[:, :, :, ::1] dw, db, g):
    """dz and db in one pass; dw from fixed pieces of pixels summed in piece order; dx
    by pieces of whole images, each owned by one thread."""
    cdef Py_ssize_t dm = w.shape[3], cout = g.cout, n = g.n
    cdef Py_ssize_t m = n * g.oh * g.ow, per_image = g.oh * g.ow
    cdef Py_ssize_t wsize = g.kh * g.kw * cout, image_size = g.h * g.w * g.cin
    cdef dlk_patches d
    cdef floating[::1] dbv
    cdef floating[:, :, :, ::1] dxv
    cdef floating* pdb = NULL
    cdef floating* pdx = NULL
    cdef floating* pdz = &dz[0, 0]
    cdef const floating* wp = &w[0, 0, 0, 0]
    cdef floating* part
    cdef Py_ssize_t c, pieces = _pieces(m, _ROWS), per_piece, img0, img1
    cdef int nt = max(1, min(threads_for(m * cout * g.kh * g.kw), pieces))
    if db is not None:
        dbv = db
        pdb = &dbv[0]
    if dx is not None:
        dxv = dx
        pdx = &dxv[0, 0, 0, 0]
    _describe(&d, g, &x[0, 0, 0, 0], g.cin)
    part = <floating*>malloc(pieces * wsize * sizeof(floating))
    if part == NULL:
        raise MemoryError("depthwise_conv2d_backward: no memory for the partial sums of dw")
    with nogil:
        _backprop_colsum(act, param, &dy[0, 0, 0, 0], &saved[0, 0, 0, 0], pdz, pdb, m, cout)
        for c in prange(pieces, num_threads=nt, schedule="static"):
            if floating is float:
                _tab.dw_wgrad_f32(&d, pdz, dm, c * _ROWS, min(m, (c + 1) * _ROWS),
                                  part + c * wsize)
            else:
                _tab.dw_wgrad_f64(&d, pdz, dm, c * _ROWS, min(m, (c + 1) * _ROWS),
                                  part + c * wsize)
        _sum_pieces(part, pieces, wsize, &dw[0, 0, 0, 0])
    free(part)
    if pdx == NULL:
        return
    per_piece = max(1, _DX_ROWS // per_image)
    pieces = _pieces(n, per_piece)
    nt = max(1, min(nt, pieces))
    with nogil:
        for c in prange(pieces, num_threads=nt, schedule="static"):
            img0 = c * per_piece
            img1 = min(n, img0 + per_piece)
            memset(pdx + img0 * image_size, 0, (img1 - img0) * image_size * sizeof(floating))
            if floating is float:
                _tab.dw_xgrad_f32(&d, pdz, wp, dm, pdx, img0 * per_image, img1 * per_image)
            else:
                _tab.dw_xgrad_f64(&d, pdz, wp, dm, pdx, img0 * per_image, img1 * per_image)
