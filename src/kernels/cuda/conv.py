"""Convolution CUDA kernels: conv2d (conv1d is a conv2d of one row, groups included)
and the depthwise convolution, forward and backward.

**conv2d forward: an implicit GEMM.**  ``z = P w`` per group, P the patch matrix (a row
per output pixel of the batch, a column per ``(a, b, channel)`` cell of a window: the
rows of Keras's kernel ``(kh, kw, cin // groups, cout)`` flattened), is never stored:
the tiled GEMM of ``gemm.py`` (its ``SMALL`` / ``LARGE`` tilings, double-buffered
shared-memory tiles, a register sub-tile per thread) loads each A tile by gathering its
elements from x (zero in the padding), consecutive threads along the channels of a
cell (contiguous in NHWC).  A block computes one tile of one group; bias, the stored
pre-activation and the activation are the epilogue (the activation device functions of
``elementwise.py``, as the Dense forward pass); softmax and log_softmax (over the
channels) run afterwards as their row kernel.

**Backward, without atomics**: every element of a result is summed by one thread in a
fixed order that depends on the shape alone, so every run gives the same bits.

* ``dz = dy * activation'`` (an elementwise launch; none for linear: dz is dy), ``db`` the
  column sums of dz: a thread per (row chunk, channel), the chunks (``_compile.split_rows``)
  then added in chunk order;
* ``dw = P^T dz``: the same implicit GEMM with A = P^T gathered; its inner dimension (every
  output pixel of the batch) is cut into fixed chunks of whole tile steps (split-K: the
  grid's second axis), whose partial products are added in chunk order by a second launch;
* ``dx = col2im(dz w^T)``: a thread per element of x loops over its window cells in order
  and adds, for the output pixel that read it through that cell, the dot product of
  that pixel's dz with the cell's weights (the reference's order: cells in window
  order).

**Depthwise** (each channel its own ``depth_multiplier`` filters): a thread per output
element sums its window's cells in order (forward, bias and activation fused); dw a
thread per (row chunk, element of dw), chunks added in order; dx is conv2d's col2im with
one channel per group.
"""
import numpy as np

from .. import checks as check
from . import _nb
from . import gemm as _gemm
from ._nb import cuda
from ._arrays import Call
from ._compile import kernels, launch, launch_1d, register, split_rows
from .dense import _scratch_buffer
from .elementwise import (_DEFAULT_PARAM, ACT, activation_functions, apply_activation,
                          apply_backprop)
from .gemm import ALIGN, LARGE, PAD, SMALL, VEC
from ..reference import ROW_ACTIVATIONS

# the geometry every kernel takes: kh kw sh sw dh dw pt pl oh ow (checks.ConvGeometry)
_GEO = "I I I I I I I I I I"
# x, b (inner, cout), out (splits, M, cout), bias, pre (M, cout), act, p, has_bias,
# has_pre, geometry, cg (input channels per group), og (output channels per group), M,
# inner, chunk (inner elements per split)
_GEMM_SPEC = "C4 C2 C3 C1 C2 I F B B " + _GEO + " I I I I I"


def _make_conv_gemm(dtype, tiling, weights):
    """The implicit-GEMM kernel for ``dtype`` and ``tiling``.

    Forward (``weights`` False): ``out[0, r, g*og + o] = act(sum_k P[r, k] b[k, g*og + o]
    + bias)`` with ``b`` the kernel as ``(kh*kw*cg, cout)``, M = the output pixels.
    Weights: ``out[s, k, g*og + o] = sum_{r in chunk s} P[r, k] b[r, g*og + o]`` with
    ``b`` = dz ``(pixels, cout)``, M = ``kh*kw*cg``; bias, pre and the activation are
    ignored.  P[r, k] of group g: output pixel ``r`` = (n, i, j), column ``k`` = cell
    (a, b), channel c: ``x[n, i*sh - pt + a*dh, j*sw - pl + b*dw, g*cg + c]``, 0 outside.
    """
    T = np.dtype(dtype).type
    zero = T(0)
    forward, _ = activation_functions(dtype)
    BM, BN, BK, TM, TN = tiling.bm, tiling.bn, tiling.bk, tiling.tm, tiling.tn
    TX, NT = tiling.tx, tiling.nt
    AW, BW = BM + PAD, BN + PAD
    LOADS_A, LOADS_B = BM * BK // NT, BK * BN // NT
    ACC = TM * TN
    GW = TX * VEC

    @_nb.jit(device=True)
    def pixel(r, oh, ow, sh, sw, pt, pl):
        """Output pixel r of the batch: (image, first input row, first input column)."""
        hw = oh * ow
        n = r // hw
        rem = r - n * hw
        i = rem // ow
        return n, i * sh - pt, (rem - i * ow) * sw - pl

    @_nb.jit(device=True)
    def cell(k, kw, cg, dh, dw):
        """Column k of P: (row offset, column offset, channel in the group)."""
        ab = k // cg
        a = ab // kw
        return a * dh, (ab - a * kw) * dw, k - ab * cg

    @_nb.jit(device=True)
    def patch(x, n, row, col, ch):
        if row >= 0 and row < x.shape[1] and col >= 0 and col < x.shape[2]:
            return x[n, row, col, ch]
        return zero

    # A tiles (stored transposed, As[buf, inner, M]): consecutive threads along P's
    # columns, i.e. along the inner axis (forward) or along M (weights)
    @_nb.jit(device=True)
    def load_a(x, ra, row0, k0, k_hi, m, tid, x0, kw, cg, sh, sw, dh, dw, pt, pl, oh, ow):
        if weights:     # A[k, r] = P[r, k]: k fixed per thread, r = k0 + ...
            k = row0 + (tid & (BM - 1))
            da, db, c = cell(k, kw, cg, dh, dw)
            for q in range(LOADS_A):
                r = k0 + tid // BM + q * (NT // BM)
                if k < m and r < k_hi:
                    n, i0, j0 = pixel(r, oh, ow, sh, sw, pt, pl)
                    ra[q] = patch(x, n, i0 + da, j0 + db, x0 + c)
                else:
                    ra[q] = zero
        else:           # A[r, k] = P[r, k]: k fixed per thread, r = row0 + ...
            k = k0 + (tid & (BK - 1))
            da, db, c = cell(k, kw, cg, dh, dw)
            for q in range(LOADS_A):
                r = row0 + tid // BK + q * (NT // BK)
                if r < m and k < k_hi:
                    n, i0, j0 = pixel(r, oh, ow, sh, sw, pt, pl)
                    ra[q] = patch(x, n, i0 + da, j0 + db, x0 + c)
                else:
                    ra[q] = zero

    @_nb.jit(device=True)
    def store_a(As, buf, ra, tid):
        for q in range(LOADS_A):
            if weights:
                As[buf, tid // BM + q * (NT // BM), tid & (BM - 1)] = ra[q]
            else:
                As[buf, tid & (BK - 1), tid // BK + q * (NT // BK)] = ra[q]

    # B tiles: b[inner, c0 + column], consecutive threads along the (contiguous) columns
    @_nb.jit(device=True)
    def load_b(b, rb, k0, k_hi, col0, og, c0, tid):
        col = col0 + (tid & (BN - 1))
        for q in range(LOADS_B):
            k = k0 + tid // BN + q * (NT // BN)
            rb[q] = b[k, c0 + col] if k < k_hi and col < og else zero

    @_nb.jit(device=True)
    def store_b(Bs, buf, rb, tid):
        for q in range(LOADS_B):
            Bs[buf, tid // BN + q * (NT // BN), tid & (BN - 1)] = rb[q]

    def conv_gemm(x, b, out, bias, pre, act, p, has_bias, has_pre,
                  kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, cg, og, m, inner, chunk):
        # this block's tile: group g, tile (row0, col0) of its M x og result; the tile
        # rows vary fastest, so neighbouring blocks share their tiles of b
        tiles_m = (m + BM - 1) // BM
        per_group = tiles_m * ((og + BN - 1) // BN)
        pid = cuda.blockIdx.x
        grp = pid // per_group
        t = pid - grp * per_group
        row0 = (t % tiles_m) * BM
        col0 = (t // tiles_m) * BN
        c0 = grp * og               # the group's first output channel
        x0 = grp * cg               # and first input channel
        split = cuda.blockIdx.y     # the chunk of the inner dimension (weights: split-K)
        k_lo = split * chunk
        k_hi = min(inner, k_lo + chunk)

        tid = cuda.threadIdx.x & (NT - 1)
        tx = tid & (TX - 1)
        ty = tid // TX
        cb = tx * VEC
        active = row0 + ty * TM < m and col0 + cb < og

        As = cuda.shared.array((2, BK, AW), dtype, alignment=ALIGN)
        Bs = cuda.shared.array((2, BK, BW), dtype, alignment=ALIGN)
        acc = cuda.local.array(ACC, dtype)
        fa = cuda.local.array(TM, dtype)
        fb = cuda.local.array(TN, dtype)
        ra = cuda.local.array(LOADS_A, dtype)
        rb = cuda.local.array(LOADS_B, dtype)
        for i in range(ACC):
            acc[i] = zero

        steps = (k_hi - k_lo + BK - 1) // BK if k_hi > k_lo else 0
        if steps > 0:
            load_a(x, ra, row0, k_lo, k_hi, m, tid, x0, kw, cg, sh, sw, dh, dw, pt, pl, oh, ow)
            load_b(b, rb, k_lo, k_hi, col0, og, c0, tid)
            store_a(As, 0, ra, tid)
            store_b(Bs, 0, rb, tid)
            cuda.syncthreads()
        for s in range(steps):
            cur = s & 1
            more = s + 1 < steps
            if more:        # the next tiles, gathered into registers during the multiply
                k1 = k_lo + (s + 1) * BK
                load_a(x, ra, row0, k1, k_hi, m, tid, x0, kw, cg, sh, sw, dh, dw, pt, pl,
                       oh, ow)
                load_b(b, rb, k1, k_hi, col0, og, c0, tid)
            if active:
                for kk in range(BK):
                    kr = kk & (BK - 1)
                    for i in range(TM):
                        fa[i] = As[cur, kr, ty * TM + i]
                    for j in range(TN):
                        fb[j] = Bs[cur, kr, cb + (j // VEC) * GW + (j % VEC)]
                    for i in range(TM):
                        for j in range(TN):
                            acc[i * TN + j] += fa[i] * fb[j]
            if more:
                store_a(As, cur ^ 1, ra, tid)
                store_b(Bs, cur ^ 1, rb, tid)
            cuda.syncthreads()

        for i in range(TM):
            r = row0 + ty * TM + i
            if r < m:
                for j in range(TN):
                    c = col0 + cb + (j // VEC) * GW + (j % VEC)
                    if c < og:
                        v = acc[i * TN + j]
                        if not weights:
                            if has_bias:
                                v += bias[c0 + c]
                            if has_pre:
                                pre[r, c0 + c] = v
                            v = forward(act, v, p)
                        out[split, r, c0 + c] = v
    return conv_gemm


register("conv_forward", _GEMM_SPEC)(lambda dtype: _make_conv_gemm(dtype, LARGE, False))
register("conv_forward_small", _GEMM_SPEC)(lambda dtype: _make_conv_gemm(dtype, SMALL, False))
register("conv_weights", _GEMM_SPEC)(lambda dtype: _make_conv_gemm(dtype, LARGE, True))
register("conv_weights_small", _GEMM_SPEC)(lambda dtype: _make_conv_gemm(dtype, SMALL, True))


@register("conv_dx", "C4 C4 C4 " + _GEO + " I I")
def _conv_dx(dtype):
    T = np.dtype(dtype).type
    zero = T(0)

    def conv_dx(dz, w, dx, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, cg, og):
        # dx[n, y, v, c] = sum over cells (a, b) in window order of dz[n, i, j, group] .
        # w[a, b, c - group start, group], (i, j) the output pixel reading (y, v) there
        h = dx.shape[1]
        wd = dx.shape[2]
        cin = dx.shape[3]
        total = dx.shape[0] * h * wd * cin
        for e in range(cuda.grid(1), total, cuda.gridsize(1)):
            c = e % cin
            t = e // cin
            v = t % wd
            t = t // wd
            y = t % h
            n = t // h
            grp = c // cg
            cl = c - grp * cg
            o0 = grp * og
            acc = zero
            for a in range(kh):
                ti = y + pt - a * dh
                if ti >= 0 and ti % sh == 0 and ti // sh < oh:
                    i = ti // sh
                    for b in range(kw):
                        tj = v + pl - b * dw
                        if tj >= 0 and tj % sw == 0 and tj // sw < ow:
                            j = tj // sw
                            s = zero
                            for o in range(og):
                                s += dz[n, i, j, o0 + o] * w[a, b, cl, o0 + o]
                            acc += s
            dx[n, y, v, c] = acc
    return conv_dx


@register("depthwise_forward", "C4 C4 C4 C1 C4 I F B B " + _GEO)
def _depthwise_forward(dtype):
    T = np.dtype(dtype).type
    zero = T(0)
    forward, _ = activation_functions(dtype)

    def depthwise_forward(x, w, out, bias, pre, act, p, has_bias, has_pre,
                          kh, kw, sh, sw, dh, dw, pt, pl, oh, ow):
        h = x.shape[1]
        wd = x.shape[2]
        dm = w.shape[3]
        cout = out.shape[3]
        total = out.shape[0] * oh * ow * cout
        for e in range(cuda.grid(1), total, cuda.gridsize(1)):
            o = e % cout
            t = e // cout
            j = t % ow
            t = t // ow
            i = t % oh
            n = t // oh
            c = o // dm
            mm = o - c * dm
            acc = zero
            for a in range(kh):          # cells in window order; the padding reads 0
                y = i * sh - pt + a * dh
                for b in range(kw):
                    v = j * sw - pl + b * dw
                    xv = x[n, y, v, c] if y >= 0 and y < h and v >= 0 and v < wd else zero
                    acc += xv * w[a, b, c, mm]
            if has_bias:
                acc += bias[o]
            if has_pre:
                pre[n, i, j, o] = acc
            out[n, i, j, o] = forward(act, acc, p)
    return depthwise_forward


@register("depthwise_dw", "C4 C4 C2 " + _GEO + " I")
def _depthwise_dw(dtype):
    T = np.dtype(dtype).type
    zero = T(0)

    def depthwise_dw(x, dz, ws, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, chunk):
        # ws[s, (a*kw + b)*cout + o] = sum over the output pixels r of chunk s, in order,
        # of xpad[n, i*sh - pt + a*dh, j*sw - pl + b*dw, o // dm] dz[n, i, j, o]
        h = x.shape[1]
        wd = x.shape[2]
        cout = dz.shape[3]
        dm = cout // x.shape[3]
        per = kh * kw * cout
        rows = dz.shape[0] * oh * ow
        for e in range(cuda.grid(1), ws.shape[0] * per, cuda.gridsize(1)):
            s = e // per
            f = e - s * per
            ab = f // cout
            o = f - ab * cout
            a = ab // kw
            b = ab - a * kw
            c = o // dm
            acc = zero
            for r in range(s * chunk, min(rows, s * chunk + chunk)):
                n = r // (oh * ow)
                q = r - n * (oh * ow)
                i = q // ow
                j = q - i * ow
                y = i * sh - pt + a * dh
                v = j * sw - pl + b * dw
                xv = x[n, y, v, c] if y >= 0 and y < h and v >= 0 and v < wd else zero
                acc += xv * dz[n, i, j, o]
            ws[s, f] = acc
    return depthwise_dw


@register("column_sums_split", "C2 C2 I")
def _column_sums_split(dtype):
    T = np.dtype(dtype).type
    zero = T(0)

    def column_sums_split(a, ws, chunk):
        # ws[s, c] = the sum of a's rows of chunk s, column c, in row order
        cols = a.shape[1]
        rows = a.shape[0]
        for e in range(cuda.grid(1), ws.shape[0] * cols, cuda.gridsize(1)):
            s = e // cols
            c = e - s * cols
            acc = zero
            for r in range(s * chunk, min(rows, s * chunk + chunk)):
                acc += a[r, c]
            ws[s, c] = acc
    return column_sums_split


@register("sum_splits", "C2 C1")
def _sum_splits(dtype):
    def sum_splits(ws, out):
        # out[c] = the partial sums ws[:, c] added in chunk order
        for c in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
            acc = ws[0, c]
            for s in range(1, ws.shape[0]):
                acc += ws[s, c]
            out[c] = acc
    return sum_splits


# ------------------------------------------------------------------ host side

def _geometry(g):
    return (g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl, g.oh, g.ow)


def _image(d, rank):
    """A device (n, length, c) sequence as the (n, 1, length, c) image it is."""
    s = tuple(d.shape)
    return d.reshape(s[0], 1, s[1], s[2]) if rank == 1 else d


def _kernel4(d, rank):
    """A device kernel (k, cg, cout) as the (1, k, cg, cout) kernel of one row."""
    s = tuple(d.shape)
    return d.reshape(1, s[0], s[1], s[2]) if rank == 1 else d


def _flat(d):
    return d.reshape(d.size) if d.ndim != 1 else d


def _tiling(m, og, groups):
    """The GEMM tiling for M x og tiles in ``groups`` groups (gemm.launch_gemm's rule)."""
    return LARGE if LARGE.tiles(m, og) * groups >= _gemm.LARGE_MIN_TILES else SMALL


def _sums_in_chunks(dtype, ws, out):
    """``out`` = ws's partial sums ``(splits, size)`` added in chunk order (nothing to
    do when ``ws`` is ``out`` itself, one chunk)."""
    if ws.shape[0] > 1:
        launch_1d(kernels(dtype).sum_splits, out.size, ws, _flat(out))


def _split_target(dtype, splits, out, size):
    """Where chunk partial sums go: ``out`` itself as ``(1, size)`` for one chunk."""
    if splits == 1:
        return out.reshape(1, size)
    return _nb.device_array((splits, size), dtype)


def column_sums_in_chunks(dtype, a2, out):
    """``out[c] = sum_r a2[r, c]`` on the device: row chunks, then chunk order."""
    rows, cols = a2.shape
    splits, chunk = split_rows(rows)
    ws = _split_target(dtype, splits, out, cols)
    launch_1d(kernels(dtype).column_sums_split, splits * cols, a2, ws, chunk)
    _sums_in_chunks(dtype, ws, out)


def _dz(c, dtype, activation, d_dy, saved, saved_name, shape2):
    """dz = dy * activation' as (pixels, cout) on the device (dy itself for linear)."""
    if activation == "linear":
        return d_dy.reshape(*shape2)
    dz = _scratch_buffer(shape2, dtype)
    apply_backprop(dtype, activation, d_dy.reshape(*shape2),
                   c.dev(saved, name=saved_name).reshape(*shape2), dz)
    return dz


def _activate_rows(dtype, activation, d_out, cout):
    if activation in ROW_ACTIVATIONS:        # over the channels of each pixel
        rows = d_out.reshape(d_out.size // cout, cout)
        apply_activation(dtype, activation, rows, rows)


def _conv_forward(x, w, b, out, strides, padding, dilation_rate, groups, activation,
                  pre_activation, rank):
    c = Call(x=x, w=w, b=b, out=out, pre_activation=pre_activation)
    g, out, pre, activation = check.conv_forward_args(
        c.v["x"], c.v["w"], c.v["b"], c.v["out"], strides, padding, dilation_rate, groups,
        activation, c.v["pre_activation"], rank=rank)
    dtype = out.dtype
    cg, og = g.cin // g.groups, g.cout // g.groups
    m, k = g.n * g.oh * g.ow, g.kh * g.kw * cg
    d_out = c.dev(out, name="out")
    out3 = d_out.reshape(1, m, g.cout)
    d_b = c.dev(c.v["b"], name="b")
    d_pre = c.dev(pre, name="pre_activation")
    rows = activation in ROW_ACTIVATIONS
    tiling = _tiling(m, og, g.groups)
    kernel = kernels(dtype).conv_forward if tiling is LARGE else \
        kernels(dtype).conv_forward_small
    launch(kernel, (tiling.tiles(m, og) * g.groups, 1), tiling.nt,
           _image(c.dev(c.v["x"], name="x"), rank), c.dev(c.v["w"], name="w").reshape(k, g.cout),
           out3, out3[0, 0] if d_b is None else d_b,
           out3[0] if d_pre is None else d_pre.reshape(m, g.cout),
           ACT["linear"] if rows else ACT[activation], _DEFAULT_PARAM.get(activation, 0.0),
           d_b is not None, d_pre is not None, *_geometry(g), cg, og, m, k, k)
    if rows:
        _activate_rows(dtype, activation, d_out, g.cout)
    c.write_back(out, pre)
    return c.result(out)


def _backward_call(dy, x, w, y, activation, pre_activation, dx, dw, db):
    # y or pre_activation is ignored (as by the reference) when the activation does not
    # use it: only the one it uses takes part in the host/device classification
    needs_input = isinstance(activation, str) and activation in check.ACTIVATIONS_NEEDING_INPUT
    return Call(dy=dy, x=x, w=w, y=None if needs_input else y,
                pre_activation=pre_activation if needs_input else None, dx=dx, dw=dw, db=db)


def _saved_name(activation):
    return "pre_activation" if activation in check.ACTIVATIONS_NEEDING_INPUT else "y"


def _conv_backward(dy, x, w, y, strides, padding, dilation_rate, groups, activation,
                   pre_activation, dx, dw, db, need_dx, use_bias, rank):
    c = _backward_call(dy, x, w, y, activation, pre_activation, dx, dw, db)
    g, dx, dw, db, saved, activation = check.conv_backward_args(
        c.v["dy"], c.v["x"], c.v["w"], c.v["y"], strides, padding, dilation_rate, groups,
        activation, c.v["pre_activation"], c.v["dx"], c.v["dw"], c.v["db"], need_dx, use_bias,
        rank=rank)
    dtype = dw.dtype
    cg, og = g.cin // g.groups, g.cout // g.groups
    m, k = g.n * g.oh * g.ow, g.kh * g.kw * cg
    dz = _dz(c, dtype, activation, c.dev(c.v["dy"], name="dy"), saved, _saved_name(activation),
             (m, g.cout))
    if db is not None:
        column_sums_in_chunks(dtype, dz, c.dev(db, name="db"))
    # dw = P^T dz, split-K over the output pixels
    d_x = _image(c.dev(c.v["x"], name="x"), rank)
    d_dw = c.dev(dw, name="dw")
    tiling = _tiling(k, og, g.groups)
    splits, chunk = split_rows(m, tiling.bk)
    ws = _split_target(dtype, splits, d_dw, k * g.cout)
    kernel = kernels(dtype).conv_weights if tiling is LARGE else \
        kernels(dtype).conv_weights_small
    ws3 = ws.reshape(splits, k, g.cout)
    launch(kernel, (tiling.tiles(k, og) * g.groups, splits), tiling.nt, d_x, dz, ws3,
           ws3[0, 0], ws3[0], 0, 0.0, False, False, *_geometry(g), cg, og, k, m, chunk)
    _sums_in_chunks(dtype, ws, d_dw)
    if dx is not None:
        d_dx = _image(c.dev(dx, name="dx"), rank)
        launch_1d(kernels(dtype).conv_dx, d_dx.size, dz.reshape(g.n, g.oh, g.ow, g.cout),
                  _kernel4(c.dev(c.v["w"], name="w"), rank), d_dx, *_geometry(g), cg, og)
    c.write_back(dx, dw, db)
    return (None if dx is None else c.result(dx), c.result(dw),
            None if db is None else c.result(db))


def conv2d_forward(x, w, b=None, out=None, *, strides=1, padding="valid",
                   dilation_rate=1, groups=1, activation="linear", pre_activation=None):
    return _conv_forward(x, w, b, out, strides, padding, dilation_rate, groups, activation,
                         pre_activation, 2)


def conv2d_backward(dy, x, w, y, *, strides=1, padding="valid", dilation_rate=1,
                    groups=1, activation="linear", pre_activation=None, dx=None, dw=None,
                    db=None, need_dx=True, use_bias=True):
    return _conv_backward(dy, x, w, y, strides, padding, dilation_rate, groups, activation,
                          pre_activation, dx, dw, db, need_dx, use_bias, 2)


def conv1d_forward(x, w, b=None, out=None, *, strides=1, padding="valid",
                   dilation_rate=1, groups=1, activation="linear", pre_activation=None):
    return _conv_forward(x, w, b, out, strides, padding, dilation_rate, groups, activation,
                         pre_activation, 1)


def conv1d_backward(dy, x, w, y, *, strides=1, padding="valid", dilation_rate=1,
                    groups=1, activation="linear", pre_activation=None, dx=None, dw=None,
                    db=None, need_dx=True, use_bias=True):
    return _conv_backward(dy, x, w, y, strides, padding, dilation_rate, groups, activation,
                          pre_activation, dx, dw, db, need_dx, use_bias, 1)


def depthwise_conv2d_forward(x, w, b=None, out=None, *, strides=1, padding="valid",
                             dilation_rate=1, activation="linear", pre_activation=None):
    c = Call(x=x, w=w, b=b, out=out, pre_activation=pre_activation)
    g, out, pre, activation = check.conv_forward_args(
        c.v["x"], c.v["w"], c.v["b"], c.v["out"], strides, padding, dilation_rate, 1,
        activation, c.v["pre_activation"], depthwise=True)
    dtype = out.dtype
    d_out = c.dev(out, name="out")
    d_b = c.dev(c.v["b"], name="b")
    d_pre = c.dev(pre, name="pre_activation")
    rows = activation in ROW_ACTIVATIONS
    launch_1d(kernels(dtype).depthwise_forward, d_out.size, c.dev(c.v["x"], name="x"),
              c.dev(c.v["w"], name="w"), d_out, _flat(d_out) if d_b is None else d_b,
              d_out if d_pre is None else d_pre, ACT["linear"] if rows else ACT[activation],
              _DEFAULT_PARAM.get(activation, 0.0), d_b is not None, d_pre is not None,
              *_geometry(g))
    if rows:
        _activate_rows(dtype, activation, d_out, g.cout)
    c.write_back(out, pre)
    return c.result(out)


def depthwise_conv2d_backward(dy, x, w, y, *, strides=1, padding="valid",
                              dilation_rate=1, activation="linear", pre_activation=None,
                              dx=None, dw=None, db=None, need_dx=True, use_bias=True):
    c = _backward_call(dy, x, w, y, activation, pre_activation, dx, dw, db)
    g, dx, dw, db, saved, activation = check.conv_backward_args(
        c.v["dy"], c.v["x"], c.v["w"], c.v["y"], strides, padding, dilation_rate, 1,
        activation, c.v["pre_activation"], c.v["dx"], c.v["dw"], c.v["db"], need_dx, use_bias,
        depthwise=True)
    dtype = dw.dtype
    m = g.n * g.oh * g.ow
    dz = _dz(c, dtype, activation, c.dev(c.v["dy"], name="dy"), saved, _saved_name(activation),
             (m, g.cout))
    dz4 = dz.reshape(g.n, g.oh, g.ow, g.cout)
    if db is not None:
        column_sums_in_chunks(dtype, dz, c.dev(db, name="db"))
    d_dw = c.dev(dw, name="dw")
    size = g.kh * g.kw * g.cout
    splits, chunk = split_rows(m)
    ws = _split_target(dtype, splits, d_dw, size)
    launch_1d(kernels(dtype).depthwise_dw, splits * size, c.dev(c.v["x"], name="x"), dz4, ws,
              *_geometry(g), chunk)
    _sums_in_chunks(dtype, ws, d_dw)
    if dx is not None:
        # col2im with one input channel per group: w (kh, kw, cin, dm) read as the grouped
        # kernel (kh, kw, 1, cin * dm)
        d_dx = c.dev(dx, name="dx")
        launch_1d(kernels(dtype).conv_dx, d_dx.size, dz4,
                  c.dev(c.v["w"], name="w").reshape(g.kh, g.kw, 1, g.cout), d_dx,
                  *_geometry(g), 1, g.cout // g.cin)
    c.write_back(dx, dw, db)
    return (None if dx is None else c.result(dx), c.result(dw),
            None if db is None else c.result(db))
