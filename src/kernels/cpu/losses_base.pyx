# Loss kernels compiled for the baseline instruction set (always built and loaded);
# the code is in losses_impl.pxi.

include "losses_impl.pxi"
