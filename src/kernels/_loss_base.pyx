# Loss kernels compiled for the baseline instruction set (always built and loaded);
# the code is in _losses_impl.pxi.

include "_losses_impl.pxi"
