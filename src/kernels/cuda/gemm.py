"""GEMM on the GPU: one tiled, register-blocked GEMM kernel (the Dense layer's passes,
in ``dense.py``, launch it too).

The kernel is written once (``_make_gemm``) and compiled per dtype in two tilings and
two flavours: ``gemm`` / ``gemm_small`` (plain GEMM) and ``gemm_dense`` /
``gemm_dense_small`` (with the bias + activation epilogue of the fused Dense forward
pass).  ``launch_gemm`` picks the tiling from the size of the result:

* ``LARGE``: a block of 256 threads computes a 128 x 128 tile of the result; thread
  ``(ty, tx)`` (``tid = 16 * ty + tx``) holds an 8 x 8 sub-tile in registers: rows
  ``8 * ty + i`` and columns ``4 * tx + 64 * g + v`` (``i < 8``, ``g < 2``, ``v < 4``),
  so that per step of the inner dimension it reads its 8 + 8 operands from shared
  memory with four 16-byte loads (a warp's columns are 256 consecutive bytes: no bank
  conflict) for 64 FMAs; steps of 8 along the inner dimension.
* ``SMALL`` (when the large tiling would give fewer than ``LARGE_MIN_TILES`` blocks,
  leaving most of the GPU idle: thin Dense layers, small batches): 32 x 32 tiles, 64
  threads of 4 x 4 (rows ``4 * ty + i``, columns ``4 * tx + v``), steps of 16.

In both:

* Tiles are double-buffered in shared memory, ``As[buf, k, m]`` and ``Bs[buf, k, n]``
  (rows padded by 4 elements, so the transposing stores do not collide in one bank):
  while the block multiplies the current tile, every thread already holds its
  elements of the next one in registers, stored into the other buffer afterwards;
  one barrier per step.
* Transposes cost nothing: the kernel takes ``a``/``b`` as given (any strides, "A2")
  with the ``trans_a``/``trans_b`` flags and multiplies the views ``op(a) = a.T`` /
  ``op(b) = b.T`` (no copy).  Each tile is loaded with consecutive threads along the
  operand's axis of smaller stride (the contiguous one for the usual layouts), so the
  global loads are coalesced for all four transpose cases.
* Every load and store is bounds-checked, so any ``m, n, k`` work; ``alpha == 0``
  skips the loop over ``k`` (``a`` and ``b`` are not read), ``beta == 0`` does not read
  ``out`` (BLAS semantics, as ``reference.gemm``).  Threads whose sub-tile lies wholly
  outside the result skip the multiply (edges of small layers).
* Tiles are numbered along a 1-D grid in groups of ``GROUP_M`` tile rows (the blocks
  running together share their tiles of ``b`` in L2).
"""
import numpy as np

from . import _nb
from ._nb import cuda
from ._compile import register
from .elementwise import activation_functions

PAD = 4           # shared-memory row padding (bank-conflict-free transposing stores)
# A thread's columns come in groups of VEC adjacent ones (the groups GW = TX * VEC
# apart), its rows are TM adjacent ones: with 16-byte aligned shared arrays the
# compiler reads each group with one vector load (ld.shared.v4.f32 / v2.f64).
VEC = 4
ALIGN = None if _nb.SIMULATOR else 16    # (the simulator takes no alignment)
GROUP_M = 8       # tile rows per group of the grid's tile order


class Tiles:
    """A tiling of the GEMM kernel: a block of ``nt`` threads computes a ``bm x bn``
    tile of the result, each thread a ``tm x tn`` sub-tile in registers, walking the
    inner dimension ``bk`` at a time."""

    def __init__(self, bm, bn, bk, tm, tn):
        self.bm, self.bn, self.bk, self.tm, self.tn = bm, bn, bk, tm, tn
        self.tx = bn // tn              # threads along the columns of a tile
        self.ty = bm // tm              # threads along its rows
        self.nt = self.tx * self.ty     # threads per block
        # the index arithmetic masks with these and divides the threads by them
        for v in (bm, bn, bk, self.tx, self.nt):
            assert v & (v - 1) == 0, "tile sizes and thread counts must be powers of two"
        assert self.tx * tn == bn and self.ty * tm == bm and tn % VEC == 0 and tm % VEC == 0
        assert self.nt % bm == 0 and self.nt % bn == 0 and self.nt % bk == 0
        assert (bm * bk) % self.nt == 0 and (bk * bn) % self.nt == 0

    def tiles(self, m, n):
        return ((m + self.bm - 1) // self.bm) * ((n + self.bn - 1) // self.bn)


# Large problems: 128 x 128 tiles, 256 threads of 8 x 8.  Small ones (a grid of fewer
# than LARGE_MIN_TILES large tiles would leave most of the GPU idle): 32 x 32 tiles,
# 64 threads of 4 x 4.
LARGE = Tiles(128, 128, 8, 8, 8)
SMALL = Tiles(32, 32, 16, 4, 4)
LARGE_MIN_TILES = 64

# a, b, out, bias, pre, alpha, beta, trans_a, trans_b, act, p, has_bias, has_pre
_SPEC = "A2 A2 A2 A1 A2 F F B B I F B B"


def _make_gemm(dtype, tiling, epilogue):
    """The GEMM kernel for ``dtype`` and ``tiling``; with ``epilogue`` the result is
    ``forward(act, alpha * op(a) @ op(b) + beta * out + bias)`` (bias when
    ``has_bias``), the value before the activation stored in ``pre`` when ``has_pre``.
    Without it, ``bias``, ``pre``, ``act``, ``p`` and the flags are ignored (the
    compiler drops that code)."""
    T = np.dtype(dtype).type
    zero = T(0)
    forward, _ = activation_functions(dtype)
    # compile-time constants of the tiling
    BM, BN, BK, TM, TN = tiling.bm, tiling.bn, tiling.bk, tiling.tm, tiling.tn
    TX, NT = tiling.tx, tiling.nt
    AW, BW = BM + PAD, BN + PAD          # shared-memory row widths
    LOADS_A, LOADS_B = BM * BK // NT, BK * BN // NT   # tile elements per thread
    ACC = TM * TN
    GW = TX * VEC                        # columns of a group (see VEC)

    @_nb.jit(device=True)
    def load_tile(src, regs, rows, cols, r, c, dr, dc, count):
        """regs[q] = src[r + q * dr, c + q * dc] (zero outside src), q < count."""
        for q in range(count):
            gr = r + q * dr
            gc = c + q * dc
            regs[q] = src[gr, gc] if gr < rows and gc < cols else zero

    @_nb.jit(device=True)
    def store_tile(tile, buf, regs, r, c, dr, dc, count):
        """tile[buf, r + q * dr, c + q * dc] = regs[q], q < count."""
        for q in range(count):
            tile[buf, r + q * dr, c + q * dc] = regs[q]

    # Which elements of a tile thread ``tid`` moves: consecutive threads along the
    # axis of smaller stride in global memory (coalesced loads), the constant steps
    # (dr, dc) between a thread's elements passed as literals (address arithmetic
    # folds into the loads).  A tile of op(a) is stored transposed, As[buf, k, i].
    @_nb.jit(device=True)
    def load_a(opa, ra, m, k, row0, k0, tid, k_fast):
        if k_fast:
            load_tile(opa, ra, m, k, row0 + tid // BK, k0 + (tid & (BK - 1)),
                      NT // BK, 0, LOADS_A)
        else:
            load_tile(opa, ra, m, k, row0 + (tid & (BM - 1)), k0 + tid // BM,
                      0, NT // BM, LOADS_A)

    @_nb.jit(device=True)
    def store_a(As, buf, ra, tid, k_fast):
        if k_fast:
            store_tile(As, buf, ra, tid & (BK - 1), tid // BK, 0, NT // BK, LOADS_A)
        else:
            store_tile(As, buf, ra, tid // BM, tid & (BM - 1), NT // BM, 0, LOADS_A)

    @_nb.jit(device=True)
    def load_b(opb, rb, k, n, k0, col0, tid, n_fast):
        if n_fast:
            load_tile(opb, rb, k, n, k0 + tid // BN, col0 + (tid & (BN - 1)),
                      NT // BN, 0, LOADS_B)
        else:
            load_tile(opb, rb, k, n, k0 + (tid & (BK - 1)), col0 + tid // BK,
                      0, NT // BK, LOADS_B)

    @_nb.jit(device=True)
    def store_b(Bs, buf, rb, tid, n_fast):
        if n_fast:
            store_tile(Bs, buf, rb, tid // BN, tid & (BN - 1), NT // BN, 0, LOADS_B)
        else:
            store_tile(Bs, buf, rb, tid & (BK - 1), tid // BK, 0, NT // BK, LOADS_B)

    def gemm_kernel(a, b, out, bias, pre, alpha, beta, trans_a, trans_b, act, p,
                    has_bias, has_pre):
        opa = a.T if trans_a else a          # (m, k) views, no copy
        opb = b.T if trans_b else b          # (k, n)
        m = out.shape[0]
        n = out.shape[1]
        k = opa.shape[1]

        # this block's tile, grouped: GROUP_M tile rows sweep the tile columns together
        tiles_m = (m + BM - 1) // BM
        tiles_n = (n + BN - 1) // BN
        pid = cuda.blockIdx.x
        per_group = GROUP_M * tiles_n
        first_m = (pid // per_group) * GROUP_M
        group_m = min(tiles_m - first_m, GROUP_M)
        in_group = pid - (pid // per_group) * per_group
        row0 = (first_m + in_group % group_m) * BM
        col0 = (in_group // group_m) * BN

        # the block has NT threads; the masks tell the compiler these are >= 0 (no
        # negative-index handling in the inner loop)
        tid = cuda.threadIdx.x & (NT - 1)
        tx = tid & (TX - 1)
        ty = tid // TX
        # load along the axis of smaller stride: coalesced global reads
        a_k_fast = abs(opa.strides[1]) <= abs(opa.strides[0])
        b_n_fast = abs(opb.strides[1]) <= abs(opb.strides[0])
        # a thread whose sub-tile is wholly outside the result only loads tiles
        cb = tx * VEC                # the thread's first column in the tile
        active = row0 + ty * TM < m and col0 + cb < n

        As = cuda.shared.array((2, BK, AW), dtype, alignment=ALIGN)  # [buffer, k, row]
        Bs = cuda.shared.array((2, BK, BW), dtype, alignment=ALIGN)  # [buffer, k, column]
        acc = cuda.local.array(ACC, dtype)
        fa = cuda.local.array(TM, dtype)
        fb = cuda.local.array(TN, dtype)
        ra = cuda.local.array(LOADS_A, dtype)
        rb = cuda.local.array(LOADS_B, dtype)

        for i in range(ACC):
            acc[i] = zero

        steps = (k + BK - 1) // BK if alpha != zero else 0   # alpha == 0: a, b unread
        if steps > 0:
            load_a(opa, ra, m, k, row0, 0, tid, a_k_fast)
            load_b(opb, rb, k, n, 0, col0, tid, b_n_fast)
            store_a(As, 0, ra, tid, a_k_fast)
            store_b(Bs, 0, rb, tid, b_n_fast)
            cuda.syncthreads()
        for s in range(steps):
            cur = s & 1
            more = s + 1 < steps
            if more:        # the next tile, global -> registers, during the multiply
                k0 = (s + 1) * BK
                load_a(opa, ra, m, k, row0, k0, tid, a_k_fast)
                load_b(opb, rb, k, n, k0, col0, tid, b_n_fast)
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
            if more:        # into the other buffer (last read before the previous barrier)
                store_a(As, cur ^ 1, ra, tid, a_k_fast)
                store_b(Bs, cur ^ 1, rb, tid, b_n_fast)
            cuda.syncthreads()

        # epilogue: alpha, beta (out read only when beta != 0), bias, activation
        for i in range(TM):
            r = row0 + ty * TM + i
            if r < m:
                for j in range(TN):
                    c = col0 + cb + (j // VEC) * GW + (j % VEC)
                    if c < n:
                        v = alpha * acc[i * TN + j]
                        if beta != zero:
                            v += beta * out[r, c]
                        if epilogue:
                            if has_bias:
                                v += bias[c]
                            if has_pre:
                                pre[r, c] = v
                            v = forward(act, v, p)
                        out[r, c] = v
    return gemm_kernel


@register("gemm", _SPEC)
def _gemm(dtype):
    return _make_gemm(dtype, LARGE, False)


@register("gemm_dense", _SPEC)
def _gemm_dense(dtype):
    return _make_gemm(dtype, LARGE, True)


@register("gemm_small", _SPEC)
def _gemm_small(dtype):
    return _make_gemm(dtype, SMALL, False)


@register("gemm_dense_small", _SPEC)
def _gemm_dense_small(dtype):
    return _make_gemm(dtype, SMALL, True)


# ------------------------------------------------------------------ public kernels

from .. import checks as check                      # noqa: E402
from ._arrays import Call                            # noqa: E402
from ._compile import kernels, launch                # noqa: E402


def launch_gemm(dtype, a, b, out, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0,
                bias=None, pre=None, act=None, param=0.0, tiling=None):
    """``out = alpha * op(a) @ op(b) + beta * out`` on device arrays (``out`` (m, n),
    any strides); with ``act`` (an ``ACT`` id) the Dense epilogue, ``bias`` and ``pre``
    optional.  The tiling is picked from the size of ``out`` unless given."""
    m, n = out.shape
    if tiling is None:
        tiling = LARGE if LARGE.tiles(m, n) >= LARGE_MIN_TILES else SMALL
    name = "gemm" if act is None else "gemm_dense"
    kernel = getattr(kernels(dtype), name if tiling is LARGE else name + "_small")
    if alpha == 0.0:        # a and b are not read: nothing to pass
        a = b = out
        trans_a = trans_b = False
    launch(kernel, tiling.tiles(m, n), tiling.nt, a, b, out,
           out[0] if bias is None else bias, out if pre is None else pre,
           alpha, beta, trans_a, trans_b, 0 if act is None else act, param,
           bias is not None, pre is not None)


def gemm(a, b, out=None, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0):
    c = Call(a=a, b=b, out=out)
    out, trans_a, trans_b, alpha, beta = check.gemm_args(
        c.v["a"], c.v["b"], c.v["out"], trans_a, trans_b, alpha, beta)
    if alpha == 0.0:
        da = db = None      # not read: a host call uploads nothing but out
    else:
        da = c.dev(c.v["a"], contiguous=False, name="a")
        db = c.dev(c.v["b"], contiguous=False, name="b")
    launch_gemm(out.dtype, da, db, c.dev(out, contiguous=False, name="out"),
                trans_a=trans_a, trans_b=trans_b, alpha=alpha, beta=beta)
    c.write_back(out)
    return c.result(out)
