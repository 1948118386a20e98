# libm functions for both float widths: one fused name per function, resolved at
# compile time to the float (expf...) or double (exp...) C routine.
from cython cimport floating
from libc.math cimport (exp, expf, expm1, expm1f, log, logf, log1p, log1pf, tanh, tanhf,
                        erf, erff, sqrt, sqrtf, fabs, fabsf)


cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    /* exp(x) in float32 for x <= 88, branch-free so that gcc vectorises the loops
       calling it (glibc's expf is a scalar call).  x = n ln2 + r with n the nearest
       integer to x / ln2 and r reduced exactly (ln2 split in two constants, the first
       with few mantissa bits); exp(r) by its Taylor polynomial of degree 7 (|r| <=
       ln2/2: truncation below 6e-9); 2^n assembled in the exponent bits.  About 2 ulp.
       NaN propagates; x < -87.3 gives ~1.2e-38 instead of a subnormal or 0. */
    static inline float dlk_expf(float x) {
        float xc = x < -87.33654f ? -87.33654f : x;
        xc = xc > 88.0f ? 88.0f : xc;
        float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* rint */
        float r = xc - n * 0.693359375f;
        r = r + n * 2.12194440e-4f;
        float p = 1.0f / 5040.0f;
        p = p * r + 1.0f / 720.0f;
        p = p * r + 1.0f / 120.0f;
        p = p * r + 1.0f / 24.0f;
        p = p * r + 1.0f / 6.0f;
        p = p * r + 0.5f;
        p = p * r + 1.0f;
        p = p * r + 1.0f;
        int32_t bits = ((int32_t)n + 127) << 23;
        float scale;
        memcpy(&scale, &bits, sizeof scale);
        return p * scale;
    }
    /* tanh in float32, branch-free: for |x| < 0.5 its Taylor series to x^13 (relative
       error ~1e-7), else (1 - e) / (1 + e) with e = exp(-2|x|) <= 0.37 (no
       cancellation).  NaN propagates. */
    static inline float dlk_tanhf(float x) {
        float a = x < 0 ? -x : x;
        float x2 = x * x;
        float s = 21844.0f / 6081075.0f;
        s = s * x2 - 1382.0f / 155925.0f;
        s = s * x2 + 62.0f / 2835.0f;
        s = s * x2 - 17.0f / 315.0f;
        s = s * x2 + 2.0f / 15.0f;
        s = s * x2 - 1.0f / 3.0f;
        float small = x + x * x2 * s;
        float e = dlk_expf(-2.0f * a);
        float big = (1.0f - e) / (1.0f + e);
        big = x < 0 ? -big : big;
        return a < 0.5f ? small : big;
    }
    """
    float dlk_expf(float x) noexcept nogil
    float dlk_tanhf(float x) noexcept nogil


cdef inline floating f_exp(floating x) noexcept nogil:
    """exp; in float32 a vectorisable polynomial (dlk_expf) valid for x <= 88."""
    if floating is float:
        return dlk_expf(x)
    else:
        return exp(x)


cdef inline floating f_expm1(floating x) noexcept nogil:
    if floating is float:
        return expm1f(x)
    else:
        return expm1(x)


cdef inline floating f_log(floating x) noexcept nogil:
    if floating is float:
        return logf(x)
    else:
        return log(x)


cdef inline floating f_log1p(floating x) noexcept nogil:
    if floating is float:
        return log1pf(x)
    else:
        return log1p(x)


cdef inline floating f_tanh(floating x) noexcept nogil:
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
cdef extern from *:
    """
    #if defined(__SSE2__) || defined(_M_X64)
    #include <xmmintrin.h>
    static inline unsigned int dlk_ftz_enter(void) {
        unsigned int saved = _mm_getcsr();
        _mm_setcsr(saved | 0x8040u);   /* FTZ (bit 15) | DAZ (bit 6) */
        return saved;
    }
    static inline void dlk_ftz_exit(unsigned int saved) { _mm_setcsr(saved); }
    #else
    static inline unsigned int dlk_ftz_enter(void) { return 0u; }
    static inline void dlk_ftz_exit(unsigned int saved) { (void)saved; }
    #endif
    """
    unsigned int ftz_enter "dlk_ftz_enter"() noexcept nogil
    void ftz_exit "dlk_ftz_exit"(unsigned int saved) noexcept nogil
