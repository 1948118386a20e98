# Normalisation kernels compiled for AVX2 + FMA (flags set by setup.py); the code is in
# normalization_impl.pxi.  Imported only on a CPU that supports these instructions.

include "normalization_impl.pxi"
