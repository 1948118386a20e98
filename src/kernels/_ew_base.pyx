# Elementwise kernels compiled for baseline x86-64 (SSE2) or the target's default
# (flags set by setup.py); the code is in _elementwise_impl.pxi.  Always built: the
# variant kernels._elementwise falls back to.

include "_elementwise_impl.pxi"
