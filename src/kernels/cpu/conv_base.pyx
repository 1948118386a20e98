# Convolution kernels compiled for baseline flags (flags set by setup.py); the code is in
# conv_impl.pxi.  Always importable.

include "conv_impl.pxi"
