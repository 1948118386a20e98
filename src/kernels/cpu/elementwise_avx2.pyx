# Elementwise kernels compiled for AVX2 + FMA (flags set by setup.py); the code is in
# elementwise_impl.pxi.  Import only on a CPU that supports these instructions:
# kernels.cpu.elementwise checks before importing (this module's init code may already
# use them).

include "elementwise_impl.pxi"
