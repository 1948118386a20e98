# GEMM core compiled for baseline x86-64 (SSE2) or the target's default
# (flags set by setup.py); the algorithm is in gemm_impl.pxi.
#
# Blocking constants for this instruction set (see gemm_impl.pxi).  NR is the
# vector axis of the MR x NR accumulator tile, which the C micro-kernel of
# gemm_impl.pxi fixes too (DLK_UK_*: a mismatch fails the import); KC x NR packed
# B ~ L1, MC x KC packed A ~ L2, KC x NC packed B ~ L3 (tuned on a Zen 4: 32 KiB L1,
# 1 MiB L2).
# 16 xmm registers: 2 x 24 floats = 12 accumulators (f32), 1 x 24 doubles =
# 12 accumulators (f64).  SSE2 has no FMA: mul + add.  (On a non-x86 target,
# e.g. aarch64 with NEON, the same tiles hold: 6 q registers per row.)

cdef enum:
    S_MR = 2
    S_NR = 24
    S_KC = 256
    S_MC = 144
    S_NC = 4080
    D_MR = 1
    D_NR = 24
    D_KC = 256
    D_MC = 144
    D_NC = 4080

include "gemm_impl.pxi"
