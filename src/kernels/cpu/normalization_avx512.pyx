# Normalisation kernels compiled for AVX-512 F/DQ/VL/BW + AVX2 + FMA (flags set by setup.py); the code
# is in normalization_impl.pxi.  Imported only on a CPU that supports them.

include "normalization_impl.pxi"
