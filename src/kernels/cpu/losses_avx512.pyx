# Loss kernels compiled for AVX-512 (F, DQ, VL, BW) + AVX2 + FMA, 512-bit
# vectors preferred (flags set by setup.py);
# the code is in losses_impl.pxi.
# Import only on a CPU that supports these instructions: kernels.cpu.losses checks
# before importing (this module's init code may already use them).

include "losses_impl.pxi"
