# Normalisation kernels compiled for baseline x86-64 (SSE2) or the target's default (flags set by
# setup.py); the code is in normalization_impl.pxi.  Always built: the variant
# kernels.cpu.normalization falls back to.

include "normalization_impl.pxi"
