"""Pooling kernels: 2-D max and average pooling and their global forms, forward and
backward, float32 and float64, NHWC (1-D pooling is the one-row case).

Memory-bound loops, one build (no per-ISA variants).  Work is split among threads by
whole images: each image's outputs, and each image's input gradient, belong to one
thread, and within an image everything runs in a fixed order (windows in output
order, cells in row-major window order, channels innermost), so results are the same
for any thread count and match the reference's order of accumulation.  Arguments
arrive validated and C-contiguous from ``kernels.cpu.backend``.
"""
import numpy

from cython cimport floating
from cython.parallel cimport prange
from libc.string cimport memset

from kernels.cpu._threads cimport threads_for


cdef inline int _team(Py_ssize_t work, Py_ssize_t images) noexcept nogil:
    cdef int nt = threads_for(work)
    return <int>images if images < nt else nt


cdef inline Py_ssize_t _lo(Py_ssize_t o, Py_ssize_t s, Py_ssize_t p) noexcept nogil:
    """The first cell of output o's window (along one axis) inside the image."""
    return p - o * s if o * s < p else 0


cdef inline Py_ssize_t _hi(Py_ssize_t o, Py_ssize_t s, Py_ssize_t p, Py_ssize_t k,
                           Py_ssize_t size) noexcept nogil:
    """One past the last cell of output o's window inside [0, size)."""
    cdef Py_ssize_t last = size - (o * s - p)
    return k if k < last else last


def max_pool(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out,
             int[:, :, :, ::1] argmax, g):
    """out = the largest real cell of each window; argmax its row * w + col (the first
    maximum in window order; the first NaN wins)."""
    cdef Py_ssize_t n = g.n, h = g.h, w = g.w, c = g.cin, oh = g.oh, ow = g.ow
    cdef Py_ssize_t kh = g.kh, kw = g.kw, sh = g.sh, sw = g.sw, pt = g.pt, pl = g.pl
    cdef Py_ssize_t img, oy, ox, a, b, y, xx, ch
    cdef const floating* src
    cdef floating* o
    cdef int* am
    cdef floating v, cur
    cdef bint first, take
    cdef int cell
    cdef int nt = _team(x.shape[0] * x.shape[1] * x.shape[2] * c, n)
    for img in prange(n, nogil=True, num_threads=nt, schedule="static"):
        for oy in range(oh):
            for ox in range(ow):
                o = &out[img, oy, ox, 0]
                am = &argmax[img, oy, ox, 0]
                first = True
                # the window's rows and columns inside the image only (a window
                # far larger than the image costs its real cells, not its size)
                for a in range(_lo(oy, sh, pt), _hi(oy, sh, pt, kh, h)):
                    y = oy * sh - pt + a
                    for b in range(_lo(ox, sw, pl), _hi(ox, sw, pl, kw, w)):
                        xx = ox * sw - pl + b
                        src = &x[img, y, xx, 0]
                        if first:
                            for ch in range(c):
                                o[ch] = src[ch]
                                am[ch] = <int>(y * w + xx)
                            first = False
                            continue
                        cell = <int>(y * w + xx)
                        for ch in range(c):
                            # a larger value, or the first NaN (NaN > anything is
                            # False); branch-free, so the loop vectorises
                            v = src[ch]
                            cur = o[ch]
                            take = (v > cur) | ((v != v) & (cur == cur))
                            o[ch] = v if take else cur
                            am[ch] = cell if take else am[ch]


def max_pool_backward(const floating[:, :, :, ::1] dy, const int[:, :, :, ::1] argmax,
                      floating[:, :, :, ::1] dx):
    """dx = 0, then dy added at each window's chosen cell, windows in output order."""
    cdef Py_ssize_t n = dx.shape[0], plane = dx.shape[1] * dx.shape[2], c = dx.shape[3]
    cdef Py_ssize_t cells = dy.shape[1] * dy.shape[2]
    cdef Py_ssize_t img, q, ch
    cdef floating* d
    cdef const floating* g
    cdef const int* am
    cdef int nt = _team(n * plane * c, n)
    for img in prange(n, nogil=True, num_threads=nt, schedule="static"):
        d = &dx[img, 0, 0, 0]
        memset(d, 0, plane * c * sizeof(floating))
        g = &dy[img, 0, 0, 0]
        am = &argmax[img, 0, 0, 0]
        for q in range(cells):
            for ch in range(c):
                d[am[q * c + ch] * c + ch] += g[q * c + ch]


cdef inline Py_ssize_t _count(Py_ssize_t o, Py_ssize_t s, Py_ssize_t p, Py_ssize_t k,
                              Py_ssize_t size) noexcept nogil:
    """How many of a window's k cells along one axis lie inside [0, size)."""
    cdef Py_ssize_t lo = o * s - p, hi = o * s - p + k
    if lo < 0:
        lo = 0
    if hi > size:
        hi = size
    return hi - lo if hi > lo else 0


def avg_pool(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out, g):
    """out = the mean of each window's real cells (cells added in window order)."""
    cdef Py_ssize_t n = g.n, h = g.h, w = g.w, c = g.cin, oh = g.oh, ow = g.ow
    cdef Py_ssize_t kh = g.kh, kw = g.kw, sh = g.sh, sw = g.sw, pt = g.pt, pl = g.pl
    cdef Py_ssize_t img, oy, ox, a, b, y, xx, ch
    cdef const floating* src
    cdef floating* o
    cdef floating count
    cdef int nt = _team(x.shape[0] * x.shape[1] * x.shape[2] * c, n)
    for img in prange(n, nogil=True, num_threads=nt, schedule="static"):
        for oy in range(oh):
            for ox in range(ow):
                o = &out[img, oy, ox, 0]
                for ch in range(c):
                    o[ch] = 0
                # the window's rows and columns inside the image only (a window
                # far larger than the image costs its real cells, not its size)
                for a in range(_lo(oy, sh, pt), _hi(oy, sh, pt, kh, h)):
                    y = oy * sh - pt + a
                    for b in range(_lo(ox, sw, pl), _hi(ox, sw, pl, kw, w)):
                        xx = ox * sw - pl + b
                        src = &x[img, y, xx, 0]
                        for ch in range(c):
                            o[ch] = o[ch] + src[ch]
                count = <floating>(_count(oy, sh, pt, kh, h) * _count(ox, sw, pl, kw, w))
                for ch in range(c):
                    o[ch] = o[ch] / count


def avg_pool_backward(const floating[:, :, :, ::1] dy, floating[:, :, :, ::1] dx, g):
    """dx = 0, then each window's dy / count added to its real cells."""
    cdef Py_ssize_t n = g.n, h = g.h, w = g.w, c = g.cin, oh = g.oh, ow = g.ow
    cdef Py_ssize_t kh = g.kh, kw = g.kw, sh = g.sh, sw = g.sw, pt = g.pt, pl = g.pl
    cdef Py_ssize_t img, oy, ox, a, b, y, xx, ch
    cdef const floating* src
    cdef floating* d
    cdef floating count
    cdef int nt = _team(n * h * w * c, n)
    for img in prange(n, nogil=True, num_threads=nt, schedule="static"):
        memset(&dx[img, 0, 0, 0], 0, h * w * c * sizeof(floating))
        for oy in range(oh):
            for ox in range(ow):
                src = &dy[img, oy, ox, 0]
                count = <floating>(_count(oy, sh, pt, kh, h) * _count(ox, sw, pl, kw, w))
                # the window's rows and columns inside the image only (a window
                # far larger than the image costs its real cells, not its size)
                for a in range(_lo(oy, sh, pt), _hi(oy, sh, pt, kh, h)):
                    y = oy * sh - pt + a
                    for b in range(_lo(ox, sw, pl), _hi(ox, sw, pl, kw, w)):
                        xx = ox * sw - pl + b
                        d = &dx[img, y, xx, 0]
                        for ch in range(c):
                            d[ch] = d[ch] + src[ch] / count


def global_avg_pool(const floating[:, :, :, ::1] x, floating[:, ::1] out):
    """out[img, ch] = the mean over the image's pixels (summed in double, in order)."""
    cdef Py_ssize_t n = x.shape[0], plane = x.shape[1] * x.shape[2], c = x.shape[3]
    cdef Py_ssize_t img, q, ch
    cdef const floating* src
    cdef double* acc
    cdef int nt = _team(n * plane * c, n)
    cdef double[:, ::1] sums = numpy.empty((n, c), numpy.float64)   # per-image sums
    for img in prange(n, nogil=True, num_threads=nt, schedule="static"):
        acc = &sums[img, 0]
        for ch in range(c):
            acc[ch] = 0
        src = &x[img, 0, 0, 0]
        for q in range(plane):
            for ch in range(c):
                acc[ch] += src[q * c + ch]
        for ch in range(c):
            out[img, ch] = <floating>(acc[ch] / plane)


def global_avg_pool_backward(const floating[:, ::1] dy, floating[:, :, :, ::1] dx):
    """dx[img, ., ., ch] = dy[img, ch] / (h * w) (each quotient taken once)."""
    cdef Py_ssize_t n = dx.shape[0], plane = dx.shape[1] * dx.shape[2], c = dx.shape[3]
    cdef Py_ssize_t img, q, ch
    cdef floating* d
    cdef floating size = <floating>plane
    cdef int nt = _team(n * plane * c, n)
    for img in prange(n, nogil=True, num_threads=nt, schedule="static"):
        d = &dx[img, 0, 0, 0]
        for ch in range(c):
            d[ch] = dy[img, ch] / size
        for q in range(1, plane):
            for ch in range(c):
                d[q * c + ch] = d[ch]


def global_max_pool(const floating[:, :, :, ::1] x, floating[:, ::1] out,
                    int[:, ::1] argmax):
    """out[img, ch] = the largest of the image's pixels, argmax its index (the first
    maximum; the first NaN wins); the update branch-free, as max_pool's."""
    cdef Py_ssize_t n = x.shape[0], plane = x.shape[1] * x.shape[2], c = x.shape[3]
    cdef Py_ssize_t img, q, ch
    cdef const floating* src
    cdef floating* o
    cdef int* am
    cdef floating v, cur
    cdef bint take
    cdef int nt = _team(n * plane * c, n)
    for img in prange(n, nogil=True, num_threads=nt, schedule="static"):
        src = &x[img, 0, 0, 0]
        o = &out[img, 0]
        am = &argmax[img, 0]
        for ch in range(c):
            o[ch] = src[ch]
            am[ch] = 0
        for q in range(1, plane):
            for ch in range(c):
                v = src[q * c + ch]
                cur = o[ch]
                take = (v > cur) | ((v != v) & (cur == cur))
                o[ch] = v if take else cur
                am[ch] = <int>q if take else am[ch]


def global_max_pool_backward(const floating[:, ::1] dy, const int[:, ::1] argmax,
                             floating[:, :, :, ::1] dx):
    """dx = 0 but dx[img, argmax[img, ch], ch] = dy[img, ch]."""
    cdef Py_ssize_t n = dx.shape[0], plane = dx.shape[1] * dx.shape[2], c = dx.shape[3]
    cdef Py_ssize_t img, ch
    cdef floating* d
    cdef int nt = _team(n * plane * c, n)
    for img in prange(n, nogil=True, num_threads=nt, schedule="static"):
        d = &dx[img, 0, 0, 0]
        memset(d, 0, plane * c * sizeof(floating))
        for ch in range(c):
            d[argmax[img, ch] * c + ch] = dy[img, ch]
