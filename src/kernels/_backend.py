"""Backend objects: one per implementation, each exposing every kernel by name."""
import importlib

from . import _hostops, reference

_MODULES = {
    "numpy": "kernels.reference",
    "cython": "kernels.cpu.backend",
    "cuda": "kernels.cuda.backend",
}
# Preference order of get_backend() without a name: the fastest available CPU backend.
_CPU_PREFERENCE = ("cython", "numpy")
_cache = {}


class Backend:
    """One implementation of the kernels of ``kernels.reference``.

    Each kernel is an attribute with the reference's name, parameters and defaults, so
    code written against one backend runs on any: ``backend.gemm(a, b)``,
    ``backend.relu(x)``, ``backend.adam_update(w, g, m, v, step=1)``...
    """

    def __init__(self, name, module):
        self.name = name
        self.module = module
        self.kernel_names = tuple(reference.__all__)
        missing = [k for k in self.kernel_names if not hasattr(module, k)]
        if missing:
            raise ImportError(f"backend {name!r} lacks kernels: {', '.join(missing)}")
        for k in self.kernel_names:
            setattr(self, k, getattr(module, k))
        # allocation, transfers and accumulators where this backend keeps its arrays
        # (kernels._hostops, or kernels.cuda.devops): what dl uses besides the kernels
        self.ops = getattr(module, "ops", None) or _hostops
        self.on_device = self.ops.on_device
        # ``unchecked(dtype)``: private entry points without validation, for dl's
        # training loop once a step has validated the same arrays (None: this backend
        # has none, and dl calls the public kernels every step)
        self.unchecked = getattr(module, "unchecked", None)

    def __repr__(self):
        return f"<kernels backend {self.name!r}: {len(self.kernel_names)} kernels>"


def _load(name):
    if name not in _cache:
        _cache[name] = Backend(name, importlib.import_module(_MODULES[name]))
    return _cache[name]


def get_backend(name=None):
    """The backend called ``name`` ("numpy", "cython" or "cuda"); the fastest available
    CPU backend when None.  Raises ValueError for an unknown name and ImportError, with
    the reason, when that backend cannot be loaded here."""
    if name is None:
        for candidate in _CPU_PREFERENCE:
            try:
                return _load(candidate)
            except ImportError:
                continue
        raise ImportError("no kernels backend could be loaded")  # numpy always loads
    if not isinstance(name, str) or name not in _MODULES:
        raise ValueError(f"name: expected one of {', '.join(map(repr, _MODULES))} or None, "
                         f"got {name!r}")
    try:
        return _load(name)
    except ImportError as exc:
        if name == "cython":
            raise ImportError("the cython backend's compiled extensions are missing or "
                              "failed to import (was the package built? `pip install .`): "
                              f"{exc}") from exc
        if name == "cuda":
            raise ImportError(f"the cuda backend is not available: {exc}") from exc
        raise


def available_backends():
    """Names of the backends that load on this machine."""
    names = []
    for name in _MODULES:
        try:
            _load(name)
        except ImportError:
            continue
        names.append(name)
    return names
