"""Host and device arrays in one call of the cuda backend.

A call is either all-host (NumPy arrays: copied to the device, computed there, the
written arrays copied back, so the backend is a drop-in twin of the others) or
all-device (Numba device arrays, or anything exposing ``__cuda_array_interface__``
such as CuPy or PyTorch tensors, used in place without a copy; results stay on the
device).  Mixing the two in one call raises TypeError: a silent copy would hide a
transfer in a training loop.

Validation reuses ``kernels.checks`` unchanged by giving it *views*: a host array is
its own view; a device array's view is a NumPy array describing the same addresses
(shape, strides, dtype, read-only flag) that is never read, only inspected, so shape,
dtype and overlap checks behave exactly as for host arrays.
"""
import numpy as np

from . import _nb
from .. import checks as check


class _Described:
    """Carries an ``__array_interface__`` so that NumPy builds a view from it."""

    __slots__ = ("__array_interface__",)

    def __init__(self, interface):
        self.__array_interface__ = interface


def _device_view(x):
    """A NumPy array over ``x``'s device addresses, for inspection only."""
    host = _nb.host_view(x)
    if host is not None:                 # the simulator: the data really is on the host
        return host
    cai = _nb.cuda_array_interface(x)
    if cai.get("mask") is not None:
        raise TypeError("a masked device array is not supported")
    ptr, readonly = cai["data"]
    return np.asarray(_Described({"version": 3, "shape": tuple(cai["shape"]),
                                  "typestr": cai["typestr"], "strides": cai.get("strides"),
                                  "data": (ptr, bool(readonly))}))


class Call:
    """The arrays of one kernel call: where they live, their views, their device twins.

    ``Call(x=x, out=out)`` classifies every non-None argument; ``call.v[name]`` is the
    view to hand to ``checks``.  After validation, ``call.dev(view)`` gives the device
    array for a view (uploading host arrays once, allocating results the checks
    allocated), and ``call.finish(...)`` copies written arrays back for a host call.
    """

    __slots__ = ("on_device", "v", "_dev", "_given", "_fresh")

    def __init__(self, **arrays):
        host, device = [], []
        for name, x in arrays.items():
            if x is None:
                continue
            if isinstance(x, np.ndarray):
                host.append(name)
            elif _nb.is_device_array(x):
                device.append(name)
            else:
                raise TypeError(f"{name}: expected a numpy.ndarray or a CUDA device array "
                                f"of float32 or float64, got {check.describe(x)}")
        if host and device:
            raise TypeError(
                f"{host[0]}: expected a device array like {device[0]} (the cuda backend "
                f"does not mix host and device arrays in one call: copy it with "
                f"kernels.cuda.backend.to_device), got a numpy.ndarray")
        self.on_device = bool(device)
        self.v = {}
        self._dev = {}      # id(view) -> device array
        self._given = {}    # id(view) -> the caller's object
        self._fresh = {}    # id(view) -> device array allocated for a result
        for name, x in arrays.items():
            if x is None:
                self.v[name] = None
                continue
            view = _device_view(x) if self.on_device else x
            self.v[name] = view
            self._given[id(view)] = x
            if self.on_device:
                self._dev[id(view)] = _nb.as_device_array(x)

    def dev(self, view, contiguous=True, name=None):
        """The device array behind ``view`` (None stays None).

        Host arrays are uploaded once (an alias of an argument maps to the same
        buffer); a result the checks allocated gets a fresh device array.  Device
        arguments must be C-contiguous unless ``contiguous`` is False (GEMM reads any
        strides).
        """
        if view is None:
            return None
        key = id(view)
        d = self._dev.get(key)
        if d is not None:
            if contiguous and self.on_device and not view.flags.c_contiguous:
                raise ValueError(
                    f"{name or 'argument'}: expected a C-contiguous device array (the cuda "
                    f"backend reads device arrays as dense buffers), got strides "
                    f"{view.strides} for shape {view.shape}")
            return d
        if key in self._given:                      # a host argument: upload
            d = _nb.to_device(np.ascontiguousarray(view))
        else:                                       # a result the checks allocated
            d = _nb.device_array(view.shape, view.dtype)
            self._fresh[key] = d
        self._dev[key] = d
        return d

    def result(self, view):
        """What to return for ``view``: the caller's object, or the new result (a
        device array for a device call, a NumPy array for a host call)."""
        key = id(view)
        if key in self._given:
            return self._given[key]
        d = self._fresh.get(key)
        if d is None:
            return view
        return d if self.on_device else d.copy_to_host()

    def write_back(self, *views):
        """For a host call, copy the device results into the caller's written arrays."""
        if self.on_device:
            return
        for view in views:
            if view is None or id(view) not in self._given:
                continue
            d = self._dev.get(id(view))
            if d is not None:
                view[...] = d.copy_to_host()

    def scalar(self, device_scalar, dtype):
        """A loss: a 0-d device array for a device call, a NumPy scalar for a host one."""
        if self.on_device:
            return device_scalar
        return np.dtype(dtype).type(device_scalar.copy_to_host()[()])


def device_scalar(dtype):
    return _nb.device_array((), dtype)


def to_device(x):
    """A device copy of the NumPy array ``x`` (a device array is returned as is)."""
    if _nb.is_device_array(x):
        return _nb.as_device_array(x)
    return _nb.to_device(np.ascontiguousarray(x))


def to_host(x):
    """A NumPy copy of the device array ``x`` (a NumPy array is returned as is)."""
    if isinstance(x, np.ndarray):
        return x
    return _nb.as_device_array(x).copy_to_host()
