"""Shared by the cuda backend's tests: shapes that suit where they run, device copies.

Under Numba's simulator every CUDA thread is a Python thread, so the tests use shapes
of at most 32x32 (plus one uneven shape); on a real GPU (``NUMBA_ENABLE_CUDASIM`` not 1)
the same tests run on larger shapes too.
"""
import os


SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"

# (rows, cols) for elementwise/row kernels and losses; the uneven one crosses block edges
SHAPES_2D = [(1, 1), (7, 13), (32, 32)] + ([] if SIMULATOR else [(257, 1031), (1000, 10)])
# GEMM (m, k, n): squares, thin dense-layer shapes, and odd sizes around the tile edges
GEMM_SHAPES = [(1, 1, 1), (5, 7, 3), (32, 32, 32), (17, 31, 9), (33, 20, 31)] + (
    [] if SIMULATOR else [(128, 784, 256), (128, 256, 10), (300, 513, 257), (1024, 1024, 1024)])
SIZES_1D = [1, 31, 1000] + ([] if SIMULATOR else [1_000_003])


def to_device(x):
    from kernels.cuda.backend import to_device as _to_device
    return _to_device(x)


def to_host(x):
    from kernels.cuda.backend import to_host as _to_host
    return _to_host(x)
