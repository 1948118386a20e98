# Loss kernels compiled for AVX2 + FMA (flags set by setup.py);
# the code is in _losses_impl.pxi.
# Import only on a CPU that supports these instructions: kernels._losses checks
# before importing (this module's init code may already use them).

include "_losses_impl.pxi"
