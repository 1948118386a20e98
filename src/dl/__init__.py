"""dl: the Keras-style layer over a kernels backend."""
