# Elementwise kernels compiled for baseline x86-64 (SSE2) or the target's default
# (flags set by setup.py); the code is in elementwise_impl.pxi.  Always built: the
# variant kernels.cpu.elementwise falls back to.

include "elementwise_impl.pxi"
