# GEMM core compiled for AVX2 + FMA
# (flags set by setup.py); the algorithm is in gemm_impl.pxi.
# Import only on a CPU that supports these instructions: kernels.cpu.gemm checks
# before importing (this module's init code may already use them).
#
# Blocking constants for this instruction set (see gemm_impl.pxi).  NR is the
# vector axis of the MR x NR accumulator tile, which the C micro-kernel of
# gemm_impl.pxi fixes too (DLK_UK_*: a mismatch fails the import); KC x NR packed
# B ~ L1, MC x KC packed A ~ L2, KC x NC packed B ~ L3 (tuned on a Zen 4: 32 KiB L1,
# 1 MiB L2).
# 16 ymm registers: 4 x 24 floats = 12 accumulators (f32), 2 x 24 doubles =
# 12 accumulators (f64), leaving room for the B loads and the broadcast.

cdef enum:
    S_MR = 4
    S_NR = 24
    S_KC = 256
    S_MC = 144
    S_NC = 4080
    D_MR = 2
    D_NR = 24
    D_KC = 256
    D_MC = 144
    D_NC = 4080

include "gemm_impl.pxi"
