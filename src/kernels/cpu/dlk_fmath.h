/* Float math for the Cython kernels, in C (included through _fmath.pxd):

     DLK_FMAF       a * b + c fused where the instruction set has fma;
     dlk_expf, dlk_expm1f, dlk_tanhf, dlk_logf, dlk_log1pf
                    float32 exp, expm1, tanh, log and log1p as branch-free polynomials
                    (1-2.5 ulp, checked over every float32), which gcc vectorises at
                    the width of the module's instruction set (glibc's are scalar
                    calls);
     dlk_ftz_enter / dlk_ftz_exit
                    flush-to-zero and denormals-are-zero for the calling thread.

   Every function is static inline: each module that cimports _fmath gets its own copy,
   compiled for that module's instruction set. */
#ifndef DLK_FMATH_H
#define DLK_FMATH_H

#include <stdint.h>
#include <string.h>
/* a * b + c, fused (one rounding) where the instruction set has fma, else two
   roundings.  Modules built with -ffp-contract=off (the per-ISA elementwise
   kernels) get an fma only where the code asks for it here, so an element's
   result does not depend on whether gcc computed it in a vector or a scalar
   loop. */
#if defined(__FMA__) || defined(__AVX512F__)
#define DLK_FMAF(a, b, c) __builtin_fmaf((a), (b), (c))
#else
#define DLK_FMAF(a, b, c) ((a) * (b) + (c))
#endif
static inline float dlk_f_from_bits(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }
static inline uint32_t dlk_bits_of_f(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }

/* Shared range reduction of exp/expm1: x = n ln2 + r, |r| <= ln2/2 (+ rounding),
   n the nearest integer to x / ln2 by the 1.5 * 2^23 trick (its low mantissa bits
   hold n: no float -> int conversion, so NaN is no undefined behaviour), ln2 split
   in two (the first part with few mantissa bits: n * part exact).  Returns r,
   stores 2^n (n in [-127, 127]; 2^-127 is given as 0) in *scale.  x must be
   clamped to [-88, 88] (NaN passes). */
static inline float dlk_reduce_expf(float x, float* scale) {
    float t = DLK_FMAF(x, 1.44269504088896341f, 12582912.0f);
    float n = t - 12582912.0f;
    float r = DLK_FMAF(n, -0.693359375f, x);
    r = DLK_FMAF(n, 2.12194440e-4f, r);
    uint32_t e = (dlk_bits_of_f(t) - 0x4B400000u + 127u) << 23;
    *scale = dlk_f_from_bits(e);
    return r;
}
/* exp(x) in float32 for x <= 88, branch-free so that gcc vectorises the loops
   calling it (glibc's expf is a scalar call).  exp(r) by its Taylor polynomial of
   degree 7 (|r| <= ln2/2: truncation below 6e-9); 2^n assembled in the exponent
   bits.  About 1-2 ulp.  NaN propagates; x < -87.3 gives ~1.2e-38 instead of a
   subnormal or 0; x > 88 gives exp(88). */
static inline float dlk_expf(float x) {
    float xc = x < -87.33654f ? -87.33654f : x;
    xc = xc > 88.0f ? 88.0f : xc;
    float scale;
    float r = dlk_reduce_expf(xc, &scale);
    float p = 1.0f / 5040.0f;
    p = DLK_FMAF(p, r, 1.0f / 720.0f);
    p = DLK_FMAF(p, r, 1.0f / 120.0f);
    p = DLK_FMAF(p, r, 1.0f / 24.0f);
    p = DLK_FMAF(p, r, 1.0f / 6.0f);
    p = DLK_FMAF(p, r, 0.5f);
    p = DLK_FMAF(p, r, 1.0f);
    p = DLK_FMAF(p, r, 1.0f);
    return p * scale;
}
/* expm1(r) for a reduced argument |r| <= ln2/2: r + r^2 (1/2 + r/6 + ... + r^6/8!)
   (truncation < 1e-9 relative); shared by expm1f and tanhf. */
static inline float dlk_expm1_reduced(float r) {
    float p = 1.0f / 40320.0f;
    p = DLK_FMAF(p, r, 1.0f / 5040.0f);
    p = DLK_FMAF(p, r, 1.0f / 720.0f);
    p = DLK_FMAF(p, r, 1.0f / 120.0f);
    p = DLK_FMAF(p, r, 1.0f / 24.0f);
    p = DLK_FMAF(p, r, 1.0f / 6.0f);
    p = DLK_FMAF(p, r, 0.5f);
    return DLK_FMAF(p * r, r, r);
}
/* exp(x) - 1 in float32, branch-free, accurate near 0 (relative, 1-3 ulp):
   expm1(r) = r + r^2 (1/2 + r/6 + ... + r^6/8!) (truncation < 1e-9 relative),
   then 2^n expm1(r) + (2^n - 1).  For x <= 88 (max error found over every float:
   about 1-2 ulp); x in (88, 88.72] gives expm1(88), above +inf; x < -88 gives -1;
   NaN propagates. */
static inline float dlk_expm1f(float x) {
    float xc = x < -88.0f ? -88.0f : x;
    xc = xc > 88.0f ? 88.0f : xc;
    float scale;
    float r = dlk_reduce_expf(xc, &scale);
    float p = dlk_expm1_reduced(r);
    float res = DLK_FMAF(scale, p, scale - 1.0f);
    return x > 88.72283f ? __builtin_inff() : res;
}
/* tanh in float32, branch-free: tanh|x| = -q / (1 + e) with q = expm1(-2|x|) in
   (-1, 0] and e = exp(-2|x|) = q + 1 both from one polynomial (the numerator has no
   cancellation for small x, tiny and subnormal x included; the denominator is
   rounded from e, not from q + 2, which keeps 1 - |tanh x| accurate near 1:
   max error 8.9e-8 absolute, 2 ulp), the sign of x put back.  NaN propagates,
   +-inf give +-1. */
static inline float dlk_tanhf(float x) {
    float y = -2.0f * __builtin_fabsf(x);
    y = y < -88.0f ? -88.0f : y;
    float scale;
    float r = dlk_reduce_expf(y, &scale);
    float p = dlk_expm1_reduced(r);
    float q = DLK_FMAF(scale, p, scale - 1.0f);
    float e = DLK_FMAF(scale, p, scale);
    return __builtin_copysignf(-q / (1.0f + e), x);
}
/* log(x) in float32, branch-free (FreeBSD's e_logf.c: x = 2^k m, m in
   [sqrt(1/2), sqrt(2)), log(m) = f - f^2/2 + s (f^2/2 + R(s^2)), s = f / (2 + f)).
   Under 1 ulp.  Subnormals handled; log(0) = -inf, log(x < 0) = NaN,
   log(+inf) = +inf, NaN propagates. */
static inline float dlk_logf(float x) {
    int sub = x < 1.17549435e-38f;
    float xs = sub ? x * 8388608.0f : x;
    uint32_t t = dlk_bits_of_f(xs) - 0x3f3504f3u;
    int32_t k = (int32_t)(t >> 23) - (int32_t)((t >> 31) << 9);  /* signed t >> 23 */
    float m = dlk_f_from_bits((t & 0x007fffffu) + 0x3f3504f3u);
    float dk = (float)(k - (sub ? 23 : 0));
    float f = m - 1.0f;
    float s = f / (2.0f + f);
    float z = s * s;
    float w = z * z;
    float t1 = w * DLK_FMAF(w, 0.24279078841f, 0.40000972152f);
    float t2 = z * DLK_FMAF(w, 0.28498786688f, 0.66666662693f);
    float R = t2 + t1;
    float hfsq = 0.5f * f * f;
    float res = dk * 6.9313812256e-01f
                - ((hfsq - (s * (hfsq + R) + dk * 9.0580006145e-06f)) - f);
    res = x == 0.0f ? -__builtin_inff() : res;
    res = x < 0.0f ? __builtin_nanf("") : res;
    res = x == __builtin_inff() ? x : res;
    return x != x ? x : res;
}
/* log(1 + x) in float32, branch-free: u = 1 + x rounded, log(u) corrected by
   ((u - 1) - x) / u, the rounding error of u (about 2 ulp).  log1p(-1) = -inf,
   log1p(+inf) = +inf, x < -1 NaN, NaN propagates. */
static inline float dlk_log1pf(float x) {
    float u = 1.0f + x;
    float c = (u - 1.0f) - x;
    float res = dlk_logf(u) - c / u;
    res = u == 1.0f ? x : res;
    res = u == 0.0f ? -__builtin_inff() : res;
    return x == __builtin_inff() ? x : res;
}

/* Flush-to-zero / denormals-are-zero for the calling thread, restored afterwards.
   Subnormal floats (e.g. Adam moments of weights whose gradient is always 0) cost
   ~100x a normal operation on x86; kernels treat them as 0 instead, which changes
   results by less than the smallest normal float.  Each thread that runs a kernel's
   loop calls ftz_enter() before and ftz_exit(saved) after, so the caller's
   floating-point state is untouched on return.  A no-op off x86. */
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

#endif /* DLK_FMATH_H */
