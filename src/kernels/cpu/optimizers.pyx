"""Optimizer updates in place, one pass over memory per parameter array (Keras 3 formulas).

Every update reads the gradient and the state once and writes the state and the
weights once; elements are independent, so chunks go to OpenMP threads with no effect
on the result.  Arithmetic is done in the parameters' dtype, as Keras does.
Arguments arrive validated and C-contiguous from ``kernels.cpu.backend``.
"""
from cython cimport floating
from cython.parallel cimport prange

from kernels.cpu._threads cimport threads_for, CHUNK
from kernels.cpu._fmath cimport f_sqrt, ftz_enter, ftz_exit


cdef inline void _decay(floating* w, floating decay, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    """Keras's decoupled weight decay, before the step: w -= w * weight_decay * lr.

    The kernels call it only when the factor ``decay`` (weight_decay * learning_rate
    rounded to the dtype) is not 0, as the reference does (a 0 factor could only turn an
    infinite weight into NaN): ``decays``, which the Python caller decides (see the
    entry points).  Under denormals-are-zero a subnormal factor multiplies as 0 here:
    w stays w and an infinite w becomes NaN, as with the reference's w - w * factor."""
    cdef Py_ssize_t i
    for i in range(lo, hi):
        w[i] -= w[i] * decay


cdef void _sgd(floating* w, const floating* g, floating* m, floating lr, floating mu,
               bint nesterov, floating decay, bint decays, Py_ssize_t lo,
               Py_ssize_t hi) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating mi
    cdef unsigned int csr = ftz_enter()
    if decays:
        _decay(w, decay, lo, hi)
    if m == NULL:
        for i in range(lo, hi):
            w[i] -= lr * g[i]
    elif nesterov:
        for i in range(lo, hi):
            mi = mu * m[i] - lr * g[i]
            m[i] = mi
            w[i] += mu * mi - lr * g[i]
    else:
        for i in range(lo, hi):
            mi = mu * m[i] - lr * g[i]
            m[i] = mi
            w[i] += mi
    ftz_exit(csr)


cdef void _adam(floating* w, const floating* g, floating* m, floating* v, floating* v_hat,
                floating alpha, floating b1c, floating b2c, floating eps, floating decay,
                bint decays, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    # b1c = 1 - beta_1, b2c = 1 - beta_2; alpha is the bias-corrected step size.
    # Option branches stay outside the loops so that each loop vectorises.
    cdef Py_ssize_t i
    cdef floating gi, mi, vi
    cdef unsigned int csr = ftz_enter()
    if decays:
        _decay(w, decay, lo, hi)
    if v_hat == NULL:
        for i in range(lo, hi):
            gi = g[i]
            mi = m[i] + (gi - m[i]) * b1c
            vi = v[i] + (gi * gi - v[i]) * b2c
            m[i] = mi
            v[i] = vi
            w[i] -= (mi * alpha) / (f_sqrt(vi) + eps)
    else:
        for i in range(lo, hi):
            gi = g[i]
            mi = m[i] + (gi - m[i]) * b1c
            vi = v[i] + (gi * gi - v[i]) * b2c
            m[i] = mi
            v[i] = vi
            if vi > v_hat[i] or vi != vi:   # AMSGrad: v_hat = max(v_hat, v), NaN propagating
                v_hat[i] = vi
            else:
                vi = v_hat[i]
            w[i] -= (mi * alpha) / (f_sqrt(vi) + eps)
    ftz_exit(csr)


cdef void _rmsprop(floating* w, const floating* g, floating* v, floating* mom, floating* mg,
                   floating lr, floating rho, floating mu, floating eps, floating decay,
                   bint decays, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating gi, vi, den, inc, one_rho = 1 - rho
    cdef unsigned int csr = ftz_enter()
    if decays:
        _decay(w, decay, lo, hi)
    if mg == NULL and mom == NULL:
        for i in range(lo, hi):
            gi = g[i]
            vi = rho * v[i] + one_rho * gi * gi
            v[i] = vi
            w[i] -= lr * gi / f_sqrt(vi + eps)
    elif mg == NULL:
        for i in range(lo, hi):
            gi = g[i]
            vi = rho * v[i] + one_rho * gi * gi
            v[i] = vi
            inc = lr * gi / f_sqrt(vi + eps)
            mom[i] = mu * mom[i] + inc
            w[i] -= mom[i]
    else:
        for i in range(lo, hi):
            gi = g[i]
            vi = rho * v[i] + one_rho * gi * gi
            v[i] = vi
            mg[i] = rho * mg[i] + one_rho * gi
            den = vi - mg[i] * mg[i]
            inc = lr * gi / f_sqrt(den + eps)
            if mom != NULL:
                mom[i] = mu * mom[i] + inc
                w[i] -= mom[i]
            else:
                w[i] -= inc
    ftz_exit(csr)


cdef void _adagrad(floating* w, const floating* g, floating* acc, floating lr, floating eps,
                   floating decay, bint decays, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating gi
    cdef unsigned int csr = ftz_enter()
    if decays:
        _decay(w, decay, lo, hi)
    for i in range(lo, hi):
        gi = g[i]
        acc[i] += gi * gi
        w[i] -= lr * gi / f_sqrt(acc[i] + eps)
    ftz_exit(csr)


# ------------------------------------------------------- Python entry points
# Each splits [0, n) into CHUNK pieces for the threads.  State arrays that an option
# does not use arrive as None.  ``decays``: whether weight_decay * learning_rate,
# rounded to the dtype, is not 0 (the caller decides, in Python: a test here could be
# scheduled by the C compiler after ftz_enter(), inside the kernels' denormals-are-zero
# mode, which takes a subnormal factor for 0).

cdef inline floating* _ptr(floating[::1] a) noexcept:
    return &a[0] if a is not None else NULL


def sgd(floating[::1] w, const floating[::1] g, floating[::1] m, double learning_rate,
        double momentum, bint nesterov, double weight_decay, bint decays):
    cdef floating* pm = _ptr(m)
    cdef Py_ssize_t n = w.shape[0], c, nchunks = (n + CHUNK - 1) // CHUNK
    cdef floating lr = <floating>learning_rate, mu = <floating>momentum
    cdef floating decay = <floating>(weight_decay * learning_rate)
    cdef int nt = threads_for(n)
    with nogil:
        if nt == 1:
            _sgd(&w[0], &g[0], pm, lr, mu, nesterov, decay, decays, 0, n)
        else:
            for c in prange(nchunks, num_threads=nt, schedule="static"):
                _sgd(&w[0], &g[0], pm, lr, mu, nesterov, decay, decays, c * CHUNK,
                     min(n, (c + 1) * CHUNK))


def adam(floating[::1] w, const floating[::1] g, floating[::1] m, floating[::1] v,
         floating[::1] v_hat, double alpha, double beta_1, double beta_2, double epsilon,
         double learning_rate, double weight_decay, bint decays):
    cdef floating* ph = _ptr(v_hat)
    cdef Py_ssize_t n = w.shape[0], c, nchunks = (n + CHUNK - 1) // CHUNK
    cdef floating a = <floating>alpha, b1c = <floating>(1 - beta_1), b2c = <floating>(1 - beta_2)
    cdef floating eps = <floating>epsilon, decay = <floating>(weight_decay * learning_rate)
    cdef int nt = threads_for(n)
    with nogil:
        if nt == 1:
            _adam(&w[0], &g[0], &m[0], &v[0], ph, a, b1c, b2c, eps, decay, decays, 0, n)
        else:
            for c in prange(nchunks, num_threads=nt, schedule="static"):
                _adam(&w[0], &g[0], &m[0], &v[0], ph, a, b1c, b2c, eps, decay, decays,
                      c * CHUNK, min(n, (c + 1) * CHUNK))


def rmsprop(floating[::1] w, const floating[::1] g, floating[::1] v, floating[::1] mom,
            floating[::1] mg, double learning_rate, double rho, double momentum,
            double epsilon, double weight_decay, bint decays):
    cdef floating* pmom = _ptr(mom)
    cdef floating* pmg = _ptr(mg)
    cdef Py_ssize_t n = w.shape[0], c, nchunks = (n + CHUNK - 1) // CHUNK
    cdef floating lr = <floating>learning_rate, r = <floating>rho, mu = <floating>momentum
    cdef floating eps = <floating>epsilon, decay = <floating>(weight_decay * learning_rate)
    cdef int nt = threads_for(n)
    with nogil:
        if nt == 1:
            _rmsprop(&w[0], &g[0], &v[0], pmom, pmg, lr, r, mu, eps, decay, decays, 0, n)
        else:
            for c in prange(nchunks, num_threads=nt, schedule="static"):
                _rmsprop(&w[0], &g[0], &v[0], pmom, pmg, lr, r, mu, eps, decay, decays,
                         c * CHUNK, min(n, (c + 1) * CHUNK))


def adagrad(floating[::1] w, const floating[::1] g, floating[::1] acc, double learning_rate,
            double epsilon, double weight_decay, bint decays):
    cdef Py_ssize_t n = w.shape[0], c, nchunks = (n + CHUNK - 1) // CHUNK
    cdef floating lr = <floating>learning_rate, eps = <floating>epsilon
    cdef floating decay = <floating>(weight_decay * learning_rate)
    cdef int nt = threads_for(n)
    with nogil:
        if nt == 1:
            _adagrad(&w[0], &g[0], &acc[0], lr, eps, decay, decays, 0, n)
        else:
            for c in prange(nchunks, num_threads=nt, schedule="static"):
                _adagrad(&w[0], &g[0], &acc[0], lr, eps, decay, decays, c * CHUNK,
                         min(n, (c + 1) * CHUNK))
