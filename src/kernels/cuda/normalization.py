"""Normalisation CUDA kernels: layer normalisation over the last axis, batch
normalisation per channel (the last axis) over every other axis.

Layer norm: one thread per row for a row's statistics, its forward values and its dx;
one thread per column for dgamma and dbeta (the rows added in order).  Batch norm: the
per-channel sums in float64 (as the reference), over fixed row chunks (a thread per
(chunk, channel)) then a thread per channel adding its chunks in order; the scale and
shift per channel, then one elementwise pass.  No atomics: the same result on every
run.  ``gamma``/``beta`` None are passed as a dummy array with a flag.
"""
import math

import numpy as np

from .. import checks as check
from . import _nb
from ._nb import cuda
from ._arrays import Call
from ._compile import kernels, launch_1d, register, split_rows


@register("layer_norm_stats", "C2 C1 C1 F")
def _layer_norm_stats(dtype):
    T = np.dtype(dtype).type
    zero, one = T(0), T(1)

    def layer_norm_stats(x, mean, rr, eps):
        d = x.shape[1]
        dn = T(d)
        for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            s = zero
            for j in range(d):
                s += x[i, j]
            m = s / dn
            v = zero
            for j in range(d):
                t = x[i, j] - m
                v += t * t
            mean[i] = m
            rr[i] = one / math.sqrt(v / dn + eps)
    return layer_norm_stats


@register("layer_norm_rows", "C2 C1 C1 C1 C1 B B C2")
def _layer_norm_rows(dtype):
    def layer_norm_rows(x, mean, rr, gamma, beta, has_gamma, has_beta, out):
        # y = x * inv + (beta - mean * inv), inv = r * gamma (Keras's order); out may be x
        d = x.shape[1]
        for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            m = mean[i]
            r = rr[i]
            for j in range(d):
                inv = r * gamma[j] if has_gamma else r
                shift = beta[j] - m * inv if has_beta else -m * inv
                out[i, j] = x[i, j] * inv + shift
    return layer_norm_rows


@register("layer_norm_param_grads", "C2 C2 C1 C1 C1 C1")
def _layer_norm_param_grads(dtype):
    T = np.dtype(dtype).type
    zero = T(0)

    def layer_norm_param_grads(dy, x, mean, rr, dgamma, dbeta):
        for j in range(cuda.grid(1), x.shape[1], cuda.gridsize(1)):
            sg = zero
            sb = zero
            for i in range(x.shape[0]):
                t = dy[i, j]
                sg += t * ((x[i, j] - mean[i]) * rr[i])
                sb += t
            dgamma[j] = sg
            dbeta[j] = sb
    return layer_norm_param_grads


@register("layer_norm_dx", "C2 C2 C1 B C1 C1 C2")
def _layer_norm_dx(dtype):
    T = np.dtype(dtype).type
    zero = T(0)

    def layer_norm_dx(dy, x, gamma, has_gamma, mean, rr, dx):
        # dx = r (g - mean(g) - xhat mean(g xhat)), g = dy * gamma; dx may be dy or x
        d = x.shape[1]
        dn = T(d)
        for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            m = mean[i]
            r = rr[i]
            sg = zero
            sgx = zero
            for j in range(d):
                g = dy[i, j] * gamma[j] if has_gamma else dy[i, j]
                sg += g
                sgx += g * ((x[i, j] - m) * r)
            mg = sg / dn
            mgx = sgx / dn
            for j in range(d):
                g = dy[i, j] * gamma[j] if has_gamma else dy[i, j]
                dx[i, j] = r * (g - mg - ((x[i, j] - m) * r) * mgx)
    return layer_norm_dx


def _rows(d):
    return d.reshape(-1, tuple(d.shape)[-1]) if d.ndim != 2 else d


def _stats(dtype, x2, epsilon):
    n = x2.shape[0]
    mean = _nb.device_array((n,), dtype)
    rr = _nb.device_array((n,), dtype)
    launch_1d(kernels(dtype).layer_norm_stats, n, x2, mean, rr, epsilon)
    return mean, rr


def _param(c, name, dtype, dummy):
    v = c.v[name]
    return (dummy, False) if v is None else (c.dev(v, name=name), True)


def layer_norm_forward(x, gamma=None, beta=None, out=None, *, epsilon=1e-3):
    c = Call(x=x, gamma=gamma, beta=beta, out=out)
    out, epsilon = check.layer_norm_forward_args(c.v["x"], c.v["gamma"], c.v["beta"], c.v["out"],
                                         epsilon)
    dtype = out.dtype
    x2 = _rows(c.dev(c.v["x"], name="x"))
    mean, rr = _stats(dtype, x2, epsilon)
    g, has_g = _param(c, "gamma", dtype, mean)
    b, has_b = _param(c, "beta", dtype, mean)
    launch_1d(kernels(dtype).layer_norm_rows, x2.shape[0], x2, mean, rr, g, b, has_g, has_b,
              _rows(c.dev(out, name="out")))
    c.write_back(out)
    return c.result(out)


def layer_norm_backward(dy, x, gamma=None, dx=None, dgamma=None, dbeta=None, *,
                        epsilon=1e-3):
    c = Call(dy=dy, x=x, gamma=gamma, dx=dx, dgamma=dgamma, dbeta=dbeta)
    dx, dgamma, dbeta, epsilon = check.layer_norm_backward_args(
        c.v["dy"], c.v["x"], c.v["gamma"], c.v["dx"], c.v["dgamma"], c.v["dbeta"], epsilon)
    dtype = dx.dtype
    K = kernels(dtype)
    dy2 = _rows(c.dev(c.v["dy"], name="dy"))
    x2 = _rows(c.dev(c.v["x"], name="x"))
    mean, rr = _stats(dtype, x2, epsilon)
    # the parameters' gradients before dx, which may be dy or x
    launch_1d(K.layer_norm_param_grads, x2.shape[1], dy2, x2, mean, rr,
              c.dev(dgamma, name="dgamma"), c.dev(dbeta, name="dbeta"))
    g, has_g = _param(c, "gamma", dtype, mean)
    launch_1d(K.layer_norm_dx, x2.shape[0], dy2, x2, g, has_g, mean, rr,
              _rows(c.dev(dx, name="dx")))
    c.write_back(dx, dgamma, dbeta)
    return c.result(dx), c.result(dgamma), c.result(dbeta)


# ------------------------------------------------------------- batch normalisation
# Per channel (the last axis; x as rows of channels) over every other axis.  The sums
# are in float64 as in the reference, in fixed row chunks (``split_rows``: a thread per
# (chunk, channel), then a thread per channel adding its chunks in order), so every run
# gives the same bits.  Training forward: 2 + 2 launches of statistics, 1 for the scale
# and shift (and the moving statistics), 1 elementwise; inference: 3; backward: 8.

@register("bn_partial_sums", "C2 D1 D1 I B")
def _bn_partial_sums(dtype):
    F64 = np.float64
    zero = F64(0)

    def bn_partial_sums(x, mean, ws, chunk, squares):
        # ws[s * c + j] = sum over the rows of chunk s of x[r, j] (or (x[r, j] - mean[j])^2)
        cols = x.shape[1]
        rows = x.shape[0]
        for e in range(cuda.grid(1), ws.shape[0], cuda.gridsize(1)):
            s = e // cols
            j = e - s * cols
            acc = zero
            if squares:
                m = mean[j]
                for r in range(s * chunk, min(rows, s * chunk + chunk)):
                    t = F64(x[r, j]) - m
                    acc += t * t
            else:
                for r in range(s * chunk, min(rows, s * chunk + chunk)):
                    acc += F64(x[r, j])
            ws[e] = acc
    return bn_partial_sums


@register("bn_finish_sums", "D1 I D1 G B")
def _bn_finish_sums(dtype):
    F64 = np.float64
    one = F64(1)

    def bn_finish_sums(ws, count, out, eps, rstd):
        # out[j] = (the chunks' sums added in order) / count; with rstd 1 / sqrt(that + eps)
        cols = out.shape[0]
        for j in range(cuda.grid(1), cols, cuda.gridsize(1)):
            acc = ws[j]
            for s in range(1, ws.shape[0] // cols):
                acc += ws[s * cols + j]
            v = acc / F64(count)
            out[j] = one / math.sqrt(v + eps) if rstd else v
    return bn_finish_sums


@register("bn_widen", "C1 C1 D1 D1")
def _bn_widen(dtype):
    F64 = np.float64

    def bn_widen(mm, mv, mean, var):
        for j in range(cuda.grid(1), mm.shape[0], cuda.gridsize(1)):
            mean[j] = F64(mm[j])
            var[j] = F64(mv[j])
    return bn_widen


@register("bn_scale_shift", "D1 D1 G C1 C1 B B C1 C1 C1 C1 B F F")
def _bn_scale_shift(dtype):
    T = np.dtype(dtype).type
    F64 = np.float64
    one = F64(1)

    def bn_scale_shift(mean, var, eps, gamma, beta, has_gamma, has_beta, scale, shift,
                       mm, mv, update, momentum, keep):
        # inv = gamma / sqrt(var + eps) (the root in float64, rounded), y = x * inv +
        # (beta - mean * inv) in the dtype, Keras's order; the moving statistics updated
        # with the rounded batch statistics (keep = 1 - momentum)
        for j in range(cuda.grid(1), scale.shape[0], cuda.gridsize(1)):
            m = T(mean[j])
            inv = T(one / math.sqrt(var[j] + eps))
            if has_gamma:
                inv = inv * gamma[j]
            scale[j] = inv
            shift[j] = beta[j] - m * inv if has_beta else -m * inv
            if update:
                mm[j] = mm[j] * momentum + m * keep
                mv[j] = mv[j] * momentum + T(var[j]) * keep
    return bn_scale_shift


@register("bn_apply", "C2 C1 C1 C2")
def _bn_apply(dtype):
    def bn_apply(x, scale, shift, out):
        # out = x * scale + shift per channel; out may be x
        cols = x.shape[1]
        for e in range(cuda.grid(1), x.shape[0] * cols, cuda.gridsize(1)):
            r = e // cols
            j = e - r * cols
            out[r, j] = x[r, j] * scale[j] + shift[j]
    return bn_apply


@register("bn_partial_grads", "C2 C2 D1 D1 D1 D1 I")
def _bn_partial_grads(dtype):
    F64 = np.float64
    zero = F64(0)

    def bn_partial_grads(dy, x, mean, rr, ws_dy, ws_dyx, chunk):
        # per (chunk, channel): sum dy and sum dy * xhat, xhat = (x - mean) r, in float64
        cols = x.shape[1]
        rows = x.shape[0]
        for e in range(cuda.grid(1), ws_dy.shape[0], cuda.gridsize(1)):
            s = e // cols
            j = e - s * cols
            m = mean[j]
            r_ = rr[j]
            a = zero
            b = zero
            for r in range(s * chunk, min(rows, s * chunk + chunk)):
                g = F64(dy[r, j])
                a += g
                b += g * ((F64(x[r, j]) - m) * r_)
            ws_dy[e] = a
            ws_dyx[e] = b
    return bn_partial_grads


@register("bn_grad_sums", "D1 D1 D1 D1 C1 C1")
def _bn_grad_sums(dtype):
    T = np.dtype(dtype).type

    def bn_grad_sums(ws_dy, ws_dyx, sdy, sdyx, dgamma, dbeta):
        cols = sdy.shape[0]
        for j in range(cuda.grid(1), cols, cuda.gridsize(1)):
            a = ws_dy[j]
            b = ws_dyx[j]
            for s in range(1, ws_dy.shape[0] // cols):
                a += ws_dy[s * cols + j]
                b += ws_dyx[s * cols + j]
            sdy[j] = a
            sdyx[j] = b
            dbeta[j] = T(a)
            dgamma[j] = T(b)
    return bn_grad_sums


@register("bn_dx", "C2 C2 D1 D1 C1 B D1 D1 C2")
def _bn_dx(dtype):
    T = np.dtype(dtype).type
    F64 = np.float64

    def bn_dx(dy, x, mean, rr, gamma, has_gamma, sdy, sdyx, dx):
        # dx = gamma r (dy - sum(dy) / m - xhat sum(dy xhat) / m) in float64; dx may be
        # dy or x (each element read, then written, by one thread)
        cols = x.shape[1]
        count = F64(x.shape[0])
        for e in range(cuda.grid(1), x.shape[0] * cols, cuda.gridsize(1)):
            r = e // cols
            j = e - r * cols
            r_ = rr[j]
            scale = r_ * F64(gamma[j]) if has_gamma else r_
            xhat = (F64(x[r, j]) - mean[j]) * r_
            dx[r, j] = T(scale * (F64(dy[r, j]) - sdy[j] / count - xhat * (sdyx[j] / count)))
    return bn_dx


def _f64(n):
    return _nb.device_array((n,), np.float64)


def _channel_stats(dtype, x2, epsilon=None):
    """(mean, var) of each column of the device rows ``x2`` in float64; with ``epsilon``
    (mean, 1 / sqrt(var + epsilon))."""
    K = kernels(dtype)
    rows, cols = x2.shape
    splits, chunk = split_rows(rows)
    ws = _f64(splits * cols)
    mean, second = _f64(cols), _f64(cols)
    launch_1d(K.bn_partial_sums, splits * cols, x2, mean, ws, chunk, False)
    launch_1d(K.bn_finish_sums, cols, ws, rows, mean, 0.0, False)
    launch_1d(K.bn_partial_sums, splits * cols, x2, mean, ws, chunk, True)
    launch_1d(K.bn_finish_sums, cols, ws, rows, second, 0.0 if epsilon is None else epsilon,
              epsilon is not None)
    return mean, second


def _normalize(c, dtype, x2, mean, var, epsilon, update, momentum, out):
    K = kernels(dtype)
    cols = x2.shape[1]
    scale = _nb.device_array((cols,), dtype)
    shift = _nb.device_array((cols,), dtype)
    g, has_g = _param(c, "gamma", dtype, scale)
    b, has_b = _param(c, "beta", dtype, scale)
    mm = c.dev(c.v["moving_mean"], name="moving_mean") if update else scale
    mv = c.dev(c.v["moving_variance"], name="moving_variance") if update else scale
    launch_1d(K.bn_scale_shift, cols, mean, var, epsilon, g, b, has_g, has_b, scale, shift,
              mm, mv, update, momentum, 1.0 - momentum)
    launch_1d(K.bn_apply, x2.size, x2, scale, shift, _rows(c.dev(out, name="out")))


def batch_norm_forward(x, gamma=None, beta=None, moving_mean=None, moving_variance=None,
                       out=None, *, momentum=0.99, epsilon=1e-3):
    c = Call(x=x, gamma=gamma, beta=beta, moving_mean=moving_mean,
             moving_variance=moving_variance, out=out)
    out, momentum, epsilon = check.batch_norm_forward_args(
        c.v["x"], c.v["gamma"], c.v["beta"], c.v["moving_mean"], c.v["moving_variance"],
        c.v["out"], momentum, epsilon)
    dtype = out.dtype
    x2 = _rows(c.dev(c.v["x"], name="x"))
    mean, var = _channel_stats(dtype, x2)
    update = c.v["moving_mean"] is not None
    _normalize(c, dtype, x2, mean, var, epsilon, update, momentum, out)
    c.write_back(out, c.v["moving_mean"], c.v["moving_variance"])
    return c.result(out)


def batch_norm_inference(x, gamma, beta, moving_mean, moving_variance, out=None, *,
                         epsilon=1e-3):
    c = Call(x=x, gamma=gamma, beta=beta, moving_mean=moving_mean,
             moving_variance=moving_variance, out=out)
    out, epsilon = check.batch_norm_inference_args(
        c.v["x"], c.v["gamma"], c.v["beta"], c.v["moving_mean"], c.v["moving_variance"],
        c.v["out"], epsilon)
    dtype = out.dtype
    x2 = _rows(c.dev(c.v["x"], name="x"))
    cols = x2.shape[1]
    mean, var = _f64(cols), _f64(cols)
    launch_1d(kernels(dtype).bn_widen, cols, c.dev(c.v["moving_mean"], name="moving_mean"),
              c.dev(c.v["moving_variance"], name="moving_variance"), mean, var)
    _normalize(c, dtype, x2, mean, var, epsilon, False, 0.0, out)
    c.write_back(out)
    return c.result(out)


def batch_norm_backward(dy, x, gamma=None, dx=None, dgamma=None, dbeta=None, *,
                        epsilon=1e-3):
    c = Call(dy=dy, x=x, gamma=gamma, dx=dx, dgamma=dgamma, dbeta=dbeta)
    dx, dgamma, dbeta, epsilon = check.batch_norm_backward_args(
        c.v["dy"], c.v["x"], c.v["gamma"], c.v["dx"], c.v["dgamma"], c.v["dbeta"], epsilon)
    dtype = dx.dtype
    K = kernels(dtype)
    x2 = _rows(c.dev(c.v["x"], name="x"))
    dy2 = _rows(c.dev(c.v["dy"], name="dy"))
    rows, cols = x2.shape
    mean, rr = _channel_stats(dtype, x2, epsilon)
    splits, chunk = split_rows(rows)
    ws_dy, ws_dyx = _f64(splits * cols), _f64(splits * cols)
    launch_1d(K.bn_partial_grads, splits * cols, dy2, x2, mean, rr, ws_dy, ws_dyx, chunk)
    sdy, sdyx = _f64(cols), _f64(cols)
    launch_1d(K.bn_grad_sums, cols, ws_dy, ws_dyx, sdy, sdyx, c.dev(dgamma, name="dgamma"),
              c.dev(dbeta, name="dbeta"))
    g, has_g = _param(c, "gamma", dtype, c.dev(dgamma, name="dgamma"))
    # dx last: it may be dy or x
    launch_1d(K.bn_dx, x2.size, dy2, x2, mean, rr, g, has_g, sdy, sdyx,
              _rows(c.dev(dx, name="dx")))
    c.write_back(dx, dgamma, dbeta)
    return c.result(dx), c.result(dgamma), c.result(dbeta)
