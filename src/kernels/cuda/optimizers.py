"""Optimizer CUDA kernels: one fused launch per parameter array per call.

Each kernel is one grid-stride pass over the flat (C-contiguous) arrays: per element
the decoupled weight decay, the state update and the weight update, reading the
gradient and each state once and writing the weight and each state once, in the
parameters' dtype (Keras 3's formulas, the reference's order of operations).  Options
(momentum, Nesterov, AMSGrad, centered) are kernel arguments, uniform across threads;
a state array an option does not use is given as ``g`` and never touched.

The decay ``w -= w * factor`` with ``factor = weight_decay * learning_rate`` (formed in
double precision on the host, rounded to w's dtype) is skipped when the factor is 0,
as in the reference; Adam's bias-corrected step size ``alpha`` comes from
``checks.adam_args`` (double precision, on the host).
"""
import math


from . import _nb  # noqa: F401 -- kernels reach Numba through _nb only
from ._nb import cuda
from ._compile import register


@register("sgd_step", "C1 C1 C1 F F B B F B")
def _sgd_step(dtype):
    def sgd_step(w, g, m, lr, mu, has_m, nesterov, decay, decays):
        for i in range(cuda.grid(1), w.shape[0], cuda.gridsize(1)):
            wi = w[i]
            if decays:
                wi = wi - wi * decay
            gi = g[i]
            if has_m:
                mi = m[i] * mu - lr * gi
                m[i] = mi
                if nesterov:
                    wi = wi + (mu * mi - lr * gi)
                else:
                    wi = wi + mi
            else:
                wi = wi - lr * gi
            w[i] = wi
    return sgd_step


@register("adam_step", "C1 C1 C1 C1 C1 F F F F F B B")
def _adam_step(dtype):
    def adam_step(w, g, m, v, v_hat, alpha, b1c, b2c, eps, decay, decays, amsgrad):
        # b1c = 1 - beta_1, b2c = 1 - beta_2; alpha is the bias-corrected step size
        for i in range(cuda.grid(1), w.shape[0], cuda.gridsize(1)):
            wi = w[i]
            if decays:
                wi = wi - wi * decay
            gi = g[i]
            mi = m[i]
            mi = mi + (gi - mi) * b1c
            vi = v[i]
            vi = vi + (gi * gi - vi) * b2c
            m[i] = mi
            v[i] = vi
            if amsgrad:
                h = v_hat[i]
                if vi > h or vi != vi:       # v_hat = max(v_hat, v), NaN propagating
                    v_hat[i] = vi
                else:
                    vi = h
            w[i] = wi - (mi * alpha) / (math.sqrt(vi) + eps)
    return adam_step


@register("rmsprop_step", "C1 C1 C1 C1 C1 F F F F F F B B B")
def _rmsprop_step(dtype):
    def rmsprop_step(w, g, v, mom, mg, lr, rho, one_rho, mu, eps, decay, decays, has_mom,
                     centered):
        for i in range(cuda.grid(1), w.shape[0], cuda.gridsize(1)):
            wi = w[i]
            if decays:
                wi = wi - wi * decay
            gi = g[i]
            vi = v[i] * rho + one_rho * gi * gi
            v[i] = vi
            den = vi
            if centered:
                mgi = mg[i] * rho + one_rho * gi
                mg[i] = mgi
                den = vi - mgi * mgi
            inc = lr * gi / math.sqrt(den + eps)
            if has_mom:
                mo = mom[i] * mu + inc
                mom[i] = mo
                wi = wi - mo
            else:
                wi = wi - inc
            w[i] = wi
    return rmsprop_step


@register("adagrad_step", "C1 C1 C1 F F F B")
def _adagrad_step(dtype):
    def adagrad_step(w, g, acc, lr, eps, decay, decays):
        for i in range(cuda.grid(1), w.shape[0], cuda.gridsize(1)):
            wi = w[i]
            if decays:
                wi = wi - wi * decay
            gi = g[i]
            ai = acc[i] + gi * gi
            acc[i] = ai
            w[i] = wi - lr * gi / math.sqrt(ai + eps)
    return adagrad_step


# ------------------------------------------------------------------ public kernels

from .. import checks as check                  # noqa: E402
from ._arrays import Call                        # noqa: E402
from ._compile import kernels, launch_1d         # noqa: E402


def _flat(d):
    return d.reshape(-1) if d.ndim != 1 else d


def _decay(dtype, learning_rate, weight_decay):
    """(factor, decays): the reference's rule (``checks.decay_factor``), on the host."""
    return check.decay_factor(dtype, learning_rate, weight_decay)


def _devs(c, *names):
    """The flat device arrays of the named arguments (None stays None)."""
    return [None if c.v[n] is None else _flat(c.dev(c.v[n], name=n)) for n in names]


def sgd_update(w, g, m=None, *, learning_rate=0.01, momentum=0.0, nesterov=False,
               weight_decay=0.0):
    c = Call(w=w, g=g, m=m)
    learning_rate, momentum, nesterov, weight_decay = check.sgd_args(
        c.v["w"], c.v["g"], c.v["m"], learning_rate, momentum, nesterov, weight_decay)
    dtype = c.v["w"].dtype
    has_m = momentum != 0.0
    dw, dg = _devs(c, "w", "g")
    dm = _devs(c, "m")[0] if has_m else dg
    decay, decays = _decay(dtype, learning_rate, weight_decay)
    launch_1d(kernels(dtype).sgd_step, dw.shape[0], dw, dg, dm, learning_rate, momentum,
              has_m, nesterov, decay, decays)
    c.write_back(c.v["w"], c.v["m"] if has_m else None)
    return c.result(c.v["w"])


def _adam(w, g, m, v, step, learning_rate, beta_1, beta_2, epsilon, amsgrad, v_hat,
          weight_decay):
    c = Call(w=w, g=g, m=m, v=v, v_hat=v_hat)
    alpha, learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay = check.adam_args(
        c.v["w"], c.v["g"], c.v["m"], c.v["v"], step, learning_rate, beta_1, beta_2,
        epsilon, amsgrad, c.v["v_hat"], weight_decay)
    dtype = c.v["w"].dtype
    dw, dg, dm, dv = _devs(c, "w", "g", "m", "v")
    dh = _devs(c, "v_hat")[0] if amsgrad else dg
    decay, decays = _decay(dtype, learning_rate, weight_decay)
    launch_1d(kernels(dtype).adam_step, dw.shape[0], dw, dg, dm, dv, dh, alpha,
              1 - beta_1, 1 - beta_2, epsilon, decay, decays, amsgrad)
    c.write_back(c.v["w"], c.v["m"], c.v["v"], c.v["v_hat"] if amsgrad else None)
    return c.result(c.v["w"])


def adam_update(w, g, m, v, *, step, learning_rate=0.001, beta_1=0.9, beta_2=0.999,
                epsilon=1e-7, amsgrad=False, v_hat=None, weight_decay=0.0):
    return _adam(w, g, m, v, step, learning_rate, beta_1, beta_2, epsilon, amsgrad, v_hat,
                 weight_decay)


def adamw_update(w, g, m, v, *, step, learning_rate=0.001, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, v_hat=None, weight_decay=0.004):
    return _adam(w, g, m, v, step, learning_rate, beta_1, beta_2, epsilon, amsgrad, v_hat,
                 weight_decay)


def rmsprop_update(w, g, v, *, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                   centered=False, mom=None, mg=None, weight_decay=0.0):
    c = Call(w=w, g=g, v=v, mom=mom, mg=mg)
    learning_rate, rho, momentum, epsilon, centered, weight_decay = check.rmsprop_args(
        c.v["w"], c.v["g"], c.v["v"], learning_rate, rho, momentum, epsilon, centered,
        c.v["mom"], c.v["mg"], weight_decay)
    dtype = c.v["w"].dtype
    has_mom = momentum != 0.0
    dw, dg, dv = _devs(c, "w", "g", "v")
    dmom = _devs(c, "mom")[0] if has_mom else dg
    dmg = _devs(c, "mg")[0] if centered else dg
    decay, decays = _decay(dtype, learning_rate, weight_decay)
    launch_1d(kernels(dtype).rmsprop_step, dw.shape[0], dw, dg, dv, dmom, dmg, learning_rate,
              rho, 1 - rho, momentum, epsilon, decay, decays, has_mom, centered)
    c.write_back(c.v["w"], c.v["v"], c.v["mom"] if has_mom else None,
                 c.v["mg"] if centered else None)
    return c.result(c.v["w"])


def adagrad_update(w, g, acc, *, learning_rate=0.001, epsilon=1e-7, weight_decay=0.0):
    c = Call(w=w, g=g, acc=acc)
    learning_rate, epsilon, weight_decay = check.adagrad_args(
        c.v["w"], c.v["g"], c.v["acc"], learning_rate, epsilon, weight_decay)
    dtype = c.v["w"].dtype
    dw, dg, dacc = _devs(c, "w", "g", "acc")
    decay, decays = _decay(dtype, learning_rate, weight_decay)
    launch_1d(kernels(dtype).adagrad_step, dw.shape[0], dw, dg, dacc, learning_rate, epsilon,
              decay, decays)
    c.write_back(c.v["w"], c.v["acc"])
    return c.result(c.v["w"])
