# cython: boundscheck=True, wraparound=True
# (Python-level code: the build's unchecked indexing is for the kernels' loops)
"""Choosing, at import, which per-ISA build of a compiled module runs here.

The GEMM core (``gemm_base/_avx2/_avx512``), the elementwise kernels
(``elementwise_base/_avx2/_avx512``), the losses (``losses_base/_avx2/_avx512``) and the
normalisation kernels (``normalization_base/_avx2/_avx512``) are each one source
compiled once per instruction set.  Their dispatchers (``gemm.pyx``,
``elementwise.pyx``, ``losses.pyx``, ``normalization.pyx``) hold the function pointers; this module holds what
they share: the CPU's features (detected once, here: compiled for the baseline, it
imports nothing of ours, so no dispatcher depends on another), which variants need
which features, loading only the variants this CPU can run and that were built,
checking a variant's name, and the environment override.
"""
import importlib
import os
import warnings

cdef extern from "dlk_cpu_features.h":
    int dlk_cpu_has(int feature) nogil

# the features dlk_cpu_has numbers, in its order
FEATURE_NAMES = ("sse2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512vl",
                 "avx512bw")
_FEATURES = {name: bool(dlk_cpu_has(i)) for i, name in enumerate(FEATURE_NAMES)}


def cpu_features():
    """The CPU features relevant to the per-ISA dispatch: {name: supported}."""
    return dict(_FEATURES)

# variant name -> the CPU features it needs; best last
NEEDS = {
    "base": (),
    "avx2": ("avx2", "fma"),
    "avx512": ("avx512f", "avx512dq", "avx512vl", "avx512bw", "avx2", "fma"),
}


def load(package, prefix, features):
    """{variant: module} for ``{package}.{prefix}_{variant}`` that this CPU supports and
    that were built, best last.  A SIMD variant is imported only after ``features``
    said the CPU has its instructions (its init code may already use them); the base
    variant must load."""
    modules = {}
    for name, needs in NEEDS.items():
        if not all(features.get(f, False) for f in needs):
            continue            # never import code the CPU cannot run
        try:
            modules[name] = importlib.import_module(f"{package}.{prefix}_{name}")
        except ImportError:
            if name == "base":
                raise
            continue            # not built for this target
    return modules


def check_name(name, available, what):
    """``name`` if it is one of ``available``, else a ValueError saying why not."""
    if isinstance(name, str) and name in available:
        return name
    why = " (not supported by this CPU or not built)" if (
        isinstance(name, str) and name in NEEDS) else ""
    raise ValueError(f"{what} must be one of {list(available)}, got {name!r}{why}")


def initial(available, env_var):
    """The variant to start with: the best available, unless ``env_var`` names another
    (an unusable name warns and keeps the best)."""
    best = list(available)[-1]
    forced = os.environ.get(env_var, "").strip()
    if not forced:
        return best
    try:
        return check_name(forced.lower(), available, env_var)
    except ValueError as exc:
        warnings.warn(f"{exc}; using {best!r}", RuntimeWarning, stacklevel=3)
        return best


class Variants:
    """The per-ISA variants of one dispatcher: those loaded for this CPU (``load``),
    the one in use (``current``), and switching (``use``).  ``exports(module)`` takes
    what the dispatcher needs from a variant module (its capsules); ``install(exports)``
    stores the chosen variant's function pointers in the dispatcher (C globals only
    the dispatcher's own code can set)."""

    def __init__(self, package, prefix, env_var, exports, install):
        self._exports = {name: exports(mod)
                         for name, mod in load(package, prefix, _FEATURES).items()}
        self._install = install
        self.current = None
        self.use(initial(self._exports, env_var))

    def names(self):
        """The loaded variants' names, best last."""
        return list(self._exports)

    def use(self, name):
        name = check_name(name, self.names(), "use_impl(name): name")
        self._install(self._exports[name])
        self.current = name
