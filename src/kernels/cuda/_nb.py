"""The only module of the package that imports the CUDA compiler.

Everything else reaches Numba through the names below, so moving to numba-cuda's
successor (or to a different binding) is a change to this file alone.
"""
try:
    import numba
    from numba import config as _config
    from numba import cuda
except ImportError as exc:  # the optional extra is not installed
    raise ImportError("the cuda backend needs numba-cuda, which is not installed: "
                      "pip install 'dlkernels[cuda]'") from exc

import numpy as np

SIMULATOR = bool(_config.ENABLE_CUDASIM)
# A grid of a few blocks is what small layers need; Numba's occupancy warning would
# fire on every such launch.
_config.CUDA_LOW_OCCUPANCY_WARNINGS = 0

# Kernel bodies use ``cuda.grid``, ``cuda.shared``... through this module's ``cuda``
# (``from ._nb import cuda``): the simulator swaps that name for its fake module while
# a kernel runs, so it must be the numba.cuda module itself, not its attributes.
jit = cuda.jit
to_device = cuda.to_device
device_array = cuda.device_array
synchronize = cuda.synchronize

# numba types for signatures
types = numba.types
NUMBA_FLOAT = {np.dtype(np.float32): numba.float32, np.dtype(np.float64): numba.float64}
int64 = numba.int64
int32 = numba.int32
boolean = numba.boolean


def pinned_empty(shape, dtype):
    """A page-locked host array (fast, asynchronous copies to the device)."""
    return cuda.pinned_array(shape, dtype)


def free_device_memory():
    """Bytes free on the current device (None under the simulator: no limit)."""
    if SIMULATOR:
        return None
    free, _total = cuda.current_context().get_memory_info()
    return free


def compile_ptx(pyfunc, signature, cc=(9, 0)):
    """PTX for ``pyfunc`` compiled for compute capability ``cc`` (no GPU needed; not
    available under the simulator)."""
    if SIMULATOR:
        raise RuntimeError("compile_ptx needs the real CUDA target (NUMBA_ENABLE_CUDASIM=0)")
    if cuda.is_available():
        return cuda.compile_ptx(pyfunc, signature, cc=cc)
    # Without a GPU, numba-cuda still compiles a kernel, but a device function it calls
    # asks the current device for its compute capability: answer with ``cc``.
    from numba.cuda import dispatcher
    from types import SimpleNamespace
    saved = dispatcher.get_current_device
    dispatcher.get_current_device = lambda: SimpleNamespace(compute_capability=cc)
    try:
        return cuda.compile_ptx(pyfunc, signature, cc=cc)
    finally:
        dispatcher.get_current_device = saved


def unavailable_reason():
    """None when kernels can run here (a GPU, or the simulator), else why not."""
    if SIMULATOR:
        return None
    try:
        if cuda.is_available():
            return None
    except Exception as exc:  # noqa: BLE001 -- a broken driver reports itself here
        return f"CUDA initialisation failed: {exc}"
    return ("numba-cuda is installed but finds no usable CUDA GPU or driver here "
            "(numba.cuda.is_available() is False; run `python -c \"from numba import "
            "cuda; cuda.detect()\"` for details, or set NUMBA_ENABLE_CUDASIM=1 before "
            "importing to use Numba's CPU simulator)")


if SIMULATOR:
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray as _FakeArray

    def is_device_array(x):
        return isinstance(x, _FakeArray)

    def as_device_array(x):
        return x

    def host_view(x):
        """The simulator keeps a device array's data in a NumPy array: that array."""
        return x._ary
else:
    _FakeArray = None

    def is_device_array(x):
        return hasattr(type(x), "__cuda_array_interface__") or hasattr(
            x, "__cuda_array_interface__")

    def as_device_array(x):
        """A Numba device array on ``x``'s memory (no copy): CuPy, PyTorch..."""
        if isinstance(x, cuda.devicearray.DeviceNDArray):
            return x
        return cuda.as_cuda_array(x)

    def host_view(x):
        return None


def cuda_array_interface(x):
    """``x.__cuda_array_interface__`` (a Numba device array builds it on request)."""
    return x.__cuda_array_interface__
