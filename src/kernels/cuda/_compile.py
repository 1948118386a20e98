"""The registry of CUDA kernels and the per-dtype factory that compiles them.

A kernel is registered as a *factory*: ``factory(dtype) -> python function`` whose body
may use ``dtype`` (shared-memory arrays, typed constants) as a compile-time constant,
with a signature *spec* (one token per argument):

    "A1" "A2" "A3"  float arrays of that rank and any layout
    "C1" "C2"       C-contiguous float arrays
    "A0"            a 0-d float array (a device scalar: a loss)
    "F"             a float scalar of the dtype
    "I"             an int64 scalar
    "B"             a bool
    "L1"            C-contiguous int64 labels
    "J1" ... "J4"   C-contiguous int32 arrays of that rank (max pooling's argmax)
    "D1"            a C-contiguous float64 array whatever the dtype (accumulators)
    "G"             a float64 scalar whatever the dtype (with "D1": float64 statistics)

``kernels(dtype)`` returns the namespace of that dtype's kernels, each compiled on
first use and then cached (``kernels(np.float32).relu``).  ``definitions()`` lists every
(name, dtype, python function, signature) for ahead-of-time checks (PTX).
"""
import functools

import numpy as np

from . import _nb

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# Launch shapes.  Under the simulator every CUDA thread is a Python thread: the same
# grid-stride kernels run on a few small blocks there (what they compute is the same).
THREADS = 32 if _nb.SIMULATOR else 256        # threads per block of the 1-D kernels
MAX_BLOCKS = 4 if _nb.SIMULATOR else 2048     # 1-D grids stride over larger arrays
REDUCE_BLOCKS = 4 if _nb.SIMULATOR else 256   # partial sums of a reduction: fixed count
# Sums over many rows (a channel's sum over every pixel of a batch) are cut into chunks
# of SPLIT_ROWS rows (at most MAX_SPLITS chunks), one thread's partial sum each, added
# in chunk order by a second launch: the chunking depends on the shape alone, so every
# run adds in the same order.
SPLIT_ROWS = 16 if _nb.SIMULATOR else 1024
MAX_SPLITS = 4 if _nb.SIMULATOR else 128

_FACTORIES = {}


def register(name, spec):
    """Decorator: register ``factory(dtype)`` as the kernel ``name``."""
    def deco(factory):
        if name in _FACTORIES:
            raise ValueError(f"kernel {name!r} registered twice")
        _FACTORIES[name] = (factory, tuple(spec.split()))
        return factory
    return deco


def _type(token, dtype):
    t = _nb.types
    f = _nb.NUMBA_FLOAT[np.dtype(dtype)]
    if token == "F":
        return f
    if token == "I":
        return _nb.int64
    if token == "G":
        return _nb.NUMBA_FLOAT[np.dtype(np.float64)]
    if token == "B":
        return _nb.boolean
    if token == "L1":
        return t.Array(_nb.int64, 1, "C")
    if token[0] == "J" and token[1:].isdigit():
        return t.Array(_nb.int32, int(token[1:]), "C")
    if token == "D1":
        return t.Array(_nb.NUMBA_FLOAT[np.dtype(np.float64)], 1, "C")
    if token[0] in "AC" and token[1:].isdigit():
        return t.Array(f, int(token[1:]), "C" if token[0] == "C" else "A")
    raise ValueError(f"unknown signature token {token!r}")


def signature(name, dtype):
    """The numba signature of kernel ``name`` for ``dtype``."""
    _, spec = _FACTORIES[name]
    return _nb.types.void(*(_type(tok, dtype) for tok in spec))


class _Kernels:
    """One dtype's kernels, compiled on first attribute access."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)

    def __getattr__(self, name):
        try:
            factory, _ = _FACTORIES[name]
        except KeyError:
            raise AttributeError(name) from None
        compiled = _nb.jit(signature(name, self.dtype))(factory(self.dtype))
        setattr(self, name, compiled)   # later lookups skip __getattr__
        return compiled


@functools.lru_cache(maxsize=None)
def kernels(dtype):
    return _Kernels(dtype)


def definitions():
    """(name, dtype, python function, signature) of every registered kernel."""
    from . import (conv, devops, elementwise, embedding, gemm, losses,  # noqa: F401
                   normalization, optimizers, pooling)   # (imported: they register)
    for name in sorted(_FACTORIES):
        factory, _ = _FACTORIES[name]
        for dtype in DTYPES:
            yield name, dtype, factory(dtype), signature(name, dtype)


# ---------------------------------------------------------------------- launches

class _Counter:
    """Kernel launches since the last reset (for benchmarks: launches per step)."""

    def __init__(self):
        self.count = 0


launches = _Counter()


def blocks_for(n, threads=THREADS, max_blocks=MAX_BLOCKS):
    return max(1, min((n + threads - 1) // threads, max_blocks))


def launch(kernel, blocks, threads, *args):
    """``kernel[blocks, threads](*args)``, counted."""
    kernel[blocks, threads](*args)
    launches.count += 1


def split_rows(rows, step=1):
    """``(splits, chunk)``: ``rows`` cut into ``splits`` chunks of ``chunk`` rows (the
    last one shorter), ``chunk`` a multiple of ``step``; a function of the shape only."""
    splits = max(1, min(MAX_SPLITS, -(-rows // SPLIT_ROWS)))
    chunk = -(-rows // splits)
    chunk = -(-chunk // step) * step
    return -(-rows // chunk), chunk


def launch_1d(kernel, n, *args):
    """A grid-stride 1-D launch over ``n`` items."""
    launch(kernel, blocks_for(n), THREADS, *args)
