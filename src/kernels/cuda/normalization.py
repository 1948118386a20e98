"""Normalisation CUDA kernels: layer normalisation over the last axis.

One thread per row for a row's statistics, its forward values and its dx; one thread
per column for dgamma and dbeta (the rows added in order): no atomics, the same result
on every run.  ``gamma``/``beta`` None are passed as a dummy array with a flag.
"""
import math

import numpy as np

from .. import checks as check
from . import _nb
from ._nb import cuda
from ._arrays import Call
from ._compile import kernels, launch_1d, register


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
