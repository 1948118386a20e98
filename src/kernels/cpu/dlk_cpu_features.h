/* Which SIMD instruction sets this CPU runs, asked at run time (gcc/clang's
   __builtin_cpu_supports), so that a per-ISA module is imported only on a CPU that can
   execute it.  Feature numbers: 0 sse2, 1 avx, 2 avx2, 3 fma, 4 avx512f, 5 avx512dq,
   6 avx512vl, 7 avx512bw (the order of kernels.cpu.gemm's _FEATURE_NAMES).  Off x86
   (or another compiler) every feature reads as absent: only the base variants load.

   Included by kernels/cpu/gemm.pyx only. */
#ifndef DLK_CPU_FEATURES_H
#define DLK_CPU_FEATURES_H

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
static int dlk_cpu_has(int feature) {
    __builtin_cpu_init();
    switch (feature) {
        case 0: return __builtin_cpu_supports("sse2") != 0;
        case 1: return __builtin_cpu_supports("avx") != 0;
        case 2: return __builtin_cpu_supports("avx2") != 0;
        case 3: return __builtin_cpu_supports("fma") != 0;
        case 4: return __builtin_cpu_supports("avx512f") != 0;
        case 5: return __builtin_cpu_supports("avx512dq") != 0;
        case 6: return __builtin_cpu_supports("avx512vl") != 0;
        case 7: return __builtin_cpu_supports("avx512bw") != 0;
    }
    return 0;
}
#else
static int dlk_cpu_has(int feature) { (void)feature; return 0; }
#endif

#endif /* DLK_CPU_FEATURES_H */
