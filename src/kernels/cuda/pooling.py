"""Pooling CUDA kernels: 2-D max and average pooling, global max and average pooling.

Forward passes: a thread per output element, its window's real cells in row-major
order (max: the first maximum, or the first NaN, as the reference's argmax; its int32
index ``row * w + col`` in the channel plane stored beside it).  Backward passes
without atomics, the same bits on every run:

* max pooling: a thread per (image, channel) zeroes its plane of dx, then adds each
  window's dy at the cell its argmax names, windows in output order (the reference's
  ``np.add.at`` order, so any in-range argmax is honoured, chosen by the forward or not);
* average pooling: a thread per element of dx adds ``dy / count`` of the windows that
  hold it, cells in window order (the reference's col2im order);
* global pooling: a thread per element of dx.

Host argmax arrays are range-checked as by every backend; a device argmax is not read
back (``checks.argmax_input(..., read_values=False)``: type, dtype, shape and overlaps
only): an out-of-range index makes its (image, channel) plane of dx NaN instead.
"""
import math

import numpy as np

from .. import checks as check
from . import _nb
from ._nb import cuda
from ._arrays import Call
from ._compile import kernels, launch_1d, register

# pool_size and strides (kh kw sh sw), padding before (pt pl), output size (oh ow)
_GEO = "I I I I I I I I"


def _span(i, s, p, k, size):
    """The window of output index i along one axis: [lo, hi) of real input indices."""
    lo = i * s - p
    return max(lo, 0), min(lo + k, size)


@register("max_pool", "C4 C4 J4 " + _GEO)
def _max_pool(dtype):
    span = _nb.jit(device=True)(_span)

    def max_pool(x, out, argmax, kh, kw, sh, sw, pt, pl, oh, ow):
        h = x.shape[1]
        wd = x.shape[2]
        ch = x.shape[3]
        total = x.shape[0] * oh * ow * ch
        for e in range(cuda.grid(1), total, cuda.gridsize(1)):
            c = e % ch
            t = e // ch
            j = t % ow
            t = t // ow
            i = t % oh
            n = t // oh
            r0, r1 = span(i, sh, pt, kh, h)
            c0, c1 = span(j, sw, pl, kw, wd)
            best = x[n, r0, c0, c]
            at = r0 * wd + c0
            r = r0
            while r < r1 and best == best:      # stop at the first NaN
                for q in range(c0, c1):
                    v = x[n, r, q, c]
                    if v != v or v > best:       # a larger value, or a NaN
                        best = v
                        at = r * wd + q
                        if v != v:
                            break
                r += 1
            out[n, i, j, c] = best
            argmax[n, i, j, c] = at
    return max_pool


@register("max_pool_backward", "C4 J4 C4")
def _max_pool_backward(dtype):
    T = np.dtype(dtype).type
    zero, nan = T(0), T(math.nan)

    def max_pool_backward(dy, argmax, dx):
        # a thread per (image, channel): its plane of dx zeroed, then each window's dy
        # added at argmax in output order; a bad index: the plane is NaN
        h = dx.shape[1]
        wd = dx.shape[2]
        ch = dx.shape[3]
        oh = dy.shape[1]
        ow = dy.shape[2]
        for e in range(cuda.grid(1), dx.shape[0] * ch, cuda.gridsize(1)):
            n = e // ch
            c = e - n * ch
            for r in range(h):
                for q in range(wd):
                    dx[n, r, q, c] = zero
            bad = False
            for i in range(oh):
                for j in range(ow):
                    a = argmax[n, i, j, c]
                    if a < 0 or a >= h * wd:
                        bad = True
                    else:
                        r = a // wd
                        q = a - r * wd
                        dx[n, r, q, c] += dy[n, i, j, c]
            if bad:
                for r in range(h):
                    for q in range(wd):
                        dx[n, r, q, c] = nan
    return max_pool_backward


@register("avg_pool", "C4 C4 " + _GEO)
def _avg_pool(dtype):
    T = np.dtype(dtype).type
    zero = T(0)
    span = _nb.jit(device=True)(_span)

    def avg_pool(x, out, kh, kw, sh, sw, pt, pl, oh, ow):
        h = x.shape[1]
        wd = x.shape[2]
        ch = x.shape[3]
        total = x.shape[0] * oh * ow * ch
        for e in range(cuda.grid(1), total, cuda.gridsize(1)):
            c = e % ch
            t = e // ch
            j = t % ow
            t = t // ow
            i = t % oh
            n = t // oh
            r0, r1 = span(i, sh, pt, kh, h)
            c0, c1 = span(j, sw, pl, kw, wd)
            acc = zero
            for r in range(r0, r1):
                for q in range(c0, c1):
                    acc += x[n, r, q, c]
            out[n, i, j, c] = acc / T((r1 - r0) * (c1 - c0))   # the real cells only
    return avg_pool


@register("avg_pool_backward", "C4 C4 " + _GEO)
def _avg_pool_backward(dtype):
    T = np.dtype(dtype).type
    zero = T(0)
    span = _nb.jit(device=True)(_span)

    def avg_pool_backward(dy, dx, kh, kw, sh, sw, pt, pl, oh, ow):
        # dx[n, y, v, c] = sum over the cells (a, b) in window order of dy / count of the
        # window (i, j) that holds (y, v) at that cell
        h = dx.shape[1]
        wd = dx.shape[2]
        ch = dx.shape[3]
        for e in range(cuda.grid(1), dx.shape[0] * h * wd * ch, cuda.gridsize(1)):
            c = e % ch
            t = e // ch
            v = t % wd
            t = t // wd
            y = t % h
            n = t // h
            acc = zero
            for a in range(kh):
                ti = y + pt - a
                if ti >= 0 and ti % sh == 0 and ti // sh < oh:
                    i = ti // sh
                    r0, r1 = span(i, sh, pt, kh, h)
                    for b in range(kw):
                        tj = v + pl - b
                        if tj >= 0 and tj % sw == 0 and tj // sw < ow:
                            j = tj // sw
                            c0, c1 = span(j, sw, pl, kw, wd)
                            acc += dy[n, i, j, c] / T((r1 - r0) * (c1 - c0))
            dx[n, y, v, c] = acc
    return avg_pool_backward


@register("global_pool", "C4 C2 J2 B")
def _global_pool(dtype):
    T = np.dtype(dtype).type
    zero = T(0)

    def global_pool(x, out, argmax, is_max):
        # a thread per (image, channel): the mean, or the first maximum (first NaN)
        h = x.shape[1]
        wd = x.shape[2]
        ch = x.shape[3]
        for e in range(cuda.grid(1), x.shape[0] * ch, cuda.gridsize(1)):
            n = e // ch
            c = e - n * ch
            if is_max:
                best = x[n, 0, 0, c]
                at = 0
                r = 0
                while r < h and best == best:
                    for q in range(wd):
                        v = x[n, r, q, c]
                        if v != v or v > best:
                            best = v
                            at = r * wd + q
                            if v != v:
                                break
                    r += 1
                out[n, c] = best
                argmax[n, c] = at
            else:
                acc = zero
                for r in range(h):
                    for q in range(wd):
                        acc += x[n, r, q, c]
                out[n, c] = acc / T(h * wd)
    return global_pool


@register("global_pool_backward", "C2 J2 C4 B")
def _global_pool_backward(dtype):
    T = np.dtype(dtype).type
    zero, nan = T(0), T(math.nan)

    def global_pool_backward(dy, argmax, dx, is_max):
        # a thread per element of dx: dy at the argmax cell (max), dy / (h * w) (mean)
        h = dx.shape[1]
        wd = dx.shape[2]
        ch = dx.shape[3]
        for e in range(cuda.grid(1), dx.shape[0] * h * wd * ch, cuda.gridsize(1)):
            c = e % ch
            t = e // ch
            q = t % wd
            t = t // wd
            r = t % h
            n = t // h
            if is_max:
                a = argmax[n, c]
                if a < 0 or a >= h * wd:
                    dx[n, r, q, c] = nan
                else:
                    dx[n, r, q, c] = dy[n, c] if a == r * wd + q else zero
            else:
                dx[n, r, q, c] = dy[n, c] / T(h * wd)
    return global_pool_backward


# ------------------------------------------------------------------ host side

def _geometry(g):
    return (g.kh, g.kw, g.sh, g.sw, g.pt, g.pl, g.oh, g.ow)


def max_pool2d_forward(x, out=None, argmax=None, *, pool_size=2, strides=None,
                       padding="valid"):
    c = Call(x=x, out=out, argmax=argmax)
    g, out = check.pool_forward_args(c.v["x"], c.v["out"], pool_size, strides, padding)
    argmax = check.argmax_output("argmax", c.v["argmax"], out.shape,
                                 (("x", c.v["x"]), ("out", out)))
    d_out = c.dev(out, name="out")
    launch_1d(kernels(out.dtype).max_pool, d_out.size, c.dev(c.v["x"], name="x"), d_out,
              c.dev(argmax, name="argmax"), *_geometry(g))
    c.write_back(out, argmax)
    return c.result(out), c.result(argmax)


def max_pool2d_backward(dy, argmax, dx, *, pool_size=2, strides=None, padding="valid"):
    c = Call(dy=dy, argmax=argmax, dx=dx)
    # a device argmax's view cannot be read: its range is the kernel's (a NaN plane)
    g, dx = check.max_pool_backward_args(c.v["dy"], c.v["argmax"], c.v["dx"], pool_size,
                                         strides, padding, read_values=not c.on_device)
    d_dx = c.dev(dx, name="dx")
    launch_1d(kernels(dx.dtype).max_pool_backward, g.n * g.cin, c.dev(c.v["dy"], name="dy"),
              c.dev(c.v["argmax"], name="argmax"), d_dx)
    c.write_back(dx)
    return c.result(dx)


def avg_pool2d_forward(x, out=None, *, pool_size=2, strides=None, padding="valid"):
    c = Call(x=x, out=out)
    g, out = check.pool_forward_args(c.v["x"], c.v["out"], pool_size, strides, padding)
    d_out = c.dev(out, name="out")
    launch_1d(kernels(out.dtype).avg_pool, d_out.size, c.dev(c.v["x"], name="x"), d_out,
              *_geometry(g))
    c.write_back(out)
    return c.result(out)


def avg_pool2d_backward(dy, dx, *, pool_size=2, strides=None, padding="valid"):
    c = Call(dy=dy, dx=dx)
    g, dx = check.avg_pool_backward_args(c.v["dy"], c.v["dx"], pool_size, strides, padding)
    d_dx = c.dev(dx, name="dx")
    launch_1d(kernels(dx.dtype).avg_pool_backward, d_dx.size, c.dev(c.v["dy"], name="dy"),
              d_dx, *_geometry(g))
    c.write_back(dx)
    return c.result(dx)


def _global_forward(x, out, argmax, is_max):
    c = Call(x=x, out=out, argmax=argmax)
    out = check.global_pool_forward_args(c.v["x"], c.v["out"])
    if is_max:
        argmax = check.argmax_output("argmax", c.v["argmax"], out.shape,
                                     (("x", c.v["x"]), ("out", out)))
    d_out = c.dev(out, name="out")
    d_arg = c.dev(argmax, name="argmax") if is_max else None
    launch_1d(kernels(out.dtype).global_pool, d_out.size, c.dev(c.v["x"], name="x"), d_out,
              _unread_argmax() if d_arg is None else d_arg, is_max)
    c.write_back(out, argmax if is_max else None)
    return (c.result(out), c.result(argmax)) if is_max else c.result(out)


def _global_backward(dy, argmax, dx, is_max):
    c = Call(dy=dy, argmax=argmax, dx=dx)
    if is_max:
        dx = check.global_pool_backward_args(c.v["dy"], c.v["dx"], c.v["argmax"],
                                             want_argmax=True, read_values=not c.on_device)
    else:
        dx = check.global_pool_backward_args(c.v["dy"], c.v["dx"])
    d_dx = c.dev(dx, name="dx")
    d_dy = c.dev(c.v["dy"], name="dy")
    d_arg = c.dev(c.v["argmax"], name="argmax") if is_max else _unread_argmax()
    launch_1d(kernels(dx.dtype).global_pool_backward, d_dx.size, d_dy, d_arg, d_dx, is_max)
    c.write_back(dx)
    return c.result(dx)


def _unread_argmax():
    """A small int32 device array standing for an argmax the kernel does not read."""
    return _nb.device_array((1, 1), np.int32)


def global_avg_pool2d_forward(x, out=None):
    return _global_forward(x, out, None, False)


def global_avg_pool2d_backward(dy, dx):
    return _global_backward(dy, None, dx, False)


def global_max_pool2d_forward(x, out=None, argmax=None):
    return _global_forward(x, out, argmax, True)


def global_max_pool2d_backward(dy, argmax, dx):
    return _global_backward(dy, argmax, dx, True)
