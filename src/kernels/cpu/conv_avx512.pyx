# Convolution kernels compiled for AVX-512 (F, DQ, VL, BW) + AVX2 + FMA (flags set by setup.py); the code is in
# conv_impl.pxi.  Imported only on a CPU that supports these instructions.

include "conv_impl.pxi"
