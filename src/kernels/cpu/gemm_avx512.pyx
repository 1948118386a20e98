# GEMM core compiled for AVX-512 (F, DQ, VL, BW) + AVX2 + FMA
# (flags set by setup.py); the algorithm is in gemm_impl.pxi.
# Import only on a CPU that supports these instructions: kernels.cpu.gemm checks
# before importing (this module's init code may already use them).
#
# Blocking constants for this instruction set (see gemm_impl.pxi).  NR is the
# vector axis of the MR x NR accumulator tile, which the C micro-kernel of
# gemm_impl.pxi fixes too (DLK_UK_*: a mismatch fails the import); KC x NR packed
# B ~ L1, MC x KC packed A ~ L2, KC x NC packed B ~ L3 (tuned on a Zen 4: 32 KiB L1,
# 1 MiB L2).
# 32 zmm registers: 8 x 32 floats = 16 accumulators (f32; 6 x 32 ran ~25% slower on
# a Zen 4 for a 128x784 @ 784x256 product, 10-14 x 32 no faster), 8 x 24 doubles =
# 24 accumulators (f64; ~5% faster than 6 x 24 there).  f64 blocks KC 384 x MC 96:
# 2-5% faster than 256 x 144 on 1024-2048 squares there (KC 512 or MC 192 slower).

cdef enum:
    S_MR = 8
    S_NR = 32
    S_KC = 256
    S_MC = 144
    S_NC = 4096
    D_MR = 8
    D_NR = 24
    D_KC = 384
    D_MC = 96
    D_NC = 4080

include "gemm_impl.pxi"
