# Loss kernels compiled for AVX2 + FMA (flags set by setup.py);
# the code is in losses_impl.pxi.
# Import only on a CPU that supports these instructions: kernels.cpu.losses checks
# before importing (this module's init code may already use them).

include "losses_impl.pxi"
