# Math functions for both float widths: one fused name per function, resolved at
# compile time to the float (expf...) or double (exp...) routine.  The float32 exp,
# expm1, tanh, log and log1p are our branch-free polynomials, and the flush-to-zero
# switch is an MXCSR write: both C, in dlk_fmath.h.
from cython cimport floating
from libc.math cimport (exp, expf, expm1, expm1f, log, logf, log1p, log1pf, tanh, tanhf,
                        erf, erff, sqrt, sqrtf, fabs, fabsf)


cdef extern from "dlk_fmath.h":
    float dlk_expf(float x) noexcept nogil
    float dlk_expm1f(float x) noexcept nogil
    float dlk_tanhf(float x) noexcept nogil
    float dlk_logf(float x) noexcept nogil
    float dlk_log1pf(float x) noexcept nogil


cdef inline floating f_exp(floating x) noexcept nogil:
    """exp; in float32 a vectorisable polynomial (dlk_expf) valid for x <= 88."""
    if floating is float:
        return dlk_expf(x)
    else:
        return exp(x)


cdef inline floating f_expm1(floating x) noexcept nogil:
    """expm1; in float32 a vectorisable polynomial (dlk_expm1f)."""
    if floating is float:
        return dlk_expm1f(x)
    else:
        return expm1(x)


cdef inline floating f_log(floating x) noexcept nogil:
    """log; in float32 a vectorisable polynomial (dlk_logf)."""
    if floating is float:
        return dlk_logf(x)
    else:
        return log(x)


cdef inline floating f_log1p(floating x) noexcept nogil:
    """log1p; in float32 vectorisable (dlk_log1pf)."""
    if floating is float:
        return dlk_log1pf(x)
    else:
        return log1p(x)


cdef inline floating f_tanh(floating x) noexcept nogil:
    """tanh; in float32 vectorisable (dlk_tanhf, from dlk_expm1f)."""
    if floating is float:
        return dlk_tanhf(x)
    else:
        return tanh(x)


cdef inline floating f_erf(floating x) noexcept nogil:
    if floating is float:
        return erff(x)
    else:
        return erf(x)


cdef inline floating f_sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline floating f_abs(floating x) noexcept nogil:
    if floating is float:
        return fabsf(x)
    else:
        return fabs(x)


cdef inline floating f_sigmoid(floating x) noexcept nogil:
    """1 / (1 + exp(-x)) without overflow: exp is only taken of -|x|."""
    cdef floating e = f_exp(-f_abs(x))
    cdef floating r = 1 / (1 + e)
    return r if x >= 0 else e * r      # a select, not a branch: the loop vectorises


cdef inline floating f_softplus(floating x) noexcept nogil:
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|))."""
    return (x if x > 0 else 0) + f_log1p(f_exp(-f_abs(x)))


# Flush-to-zero / denormals-are-zero for the calling thread, restored afterwards.
# Subnormal floats (e.g. Adam moments of weights whose gradient is always 0) cost
# ~100x a normal operation on x86; kernels treat them as 0 instead, which changes
# results by less than the smallest normal float.  Each thread that runs a kernel's
# loop calls ftz_enter() before and ftz_exit(saved) after, so the caller's
# floating-point state is untouched on return.  A no-op off x86.
cdef extern from "dlk_fmath.h":
    unsigned int ftz_enter "dlk_ftz_enter"() noexcept nogil
    void ftz_exit "dlk_ftz_exit"(unsigned int saved) noexcept nogil
