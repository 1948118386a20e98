"""Shared by the convolution, pooling and batch-normalisation kernel tests
(test_conv.py, test_pooling.py, test_batch_norm.py): every backend, cuda included (on
a GPU, or under Numba's simulator: keep shapes tiny), and the thread-count comparison.

Each test module declares the fixture itself (a fixture imported by name would be
shadowed by the test's argument of the same name, which ruff reports)::

    @pytest.fixture(params=BACKENDS)
    def every_backend(request):
        return load_backend(request)
"""
import contextlib

import numpy as np

import kernels
from kernels.cpu import _threads

BACKENDS = ("numpy", "cython", "cuda")


def load_backend(request):
    """The backend named by ``request.param``; cuda through conftest's ``cuda`` fixture
    (skipped only when numba-cuda is not installed, a failure if it does not load)."""
    if request.param == "cuda":
        return request.getfixturevalue("cuda")
    return kernels.get_backend(request.param)


@contextlib.contextmanager
def kernel_threads(n):
    """``n`` kernel threads with the parallel threshold at 1 element (the threaded paths
    even on tiny shapes); both restored afterwards."""
    old_threads = kernels.get_num_threads()
    old_min = _threads.set_min_parallel_work(1)
    kernels.set_num_threads(n)
    try:
        yield n
    finally:
        kernels.set_num_threads(old_threads)
        _threads.set_min_parallel_work(old_min)


def results_for_thread_counts(run, counts=(1, 2)):
    """``run()``'s arrays (a tuple, None entries kept) with each kernel thread count, as
    host copies; run twice on cuda this checks run-to-run determinism."""
    out = []
    for n in counts:
        with kernel_threads(n):
            res = run()
        res = res if isinstance(res, tuple) else (res,)
        out.append(tuple(None if r is None else np.array(r, copy=True) for r in res))
    return out


def assert_same_bits(results):
    """Every entry of ``results`` (from results_for_thread_counts) equal bit for bit."""
    first = results[0]
    for other in results[1:]:
        assert len(other) == len(first)
        for a, b in zip(first, other):
            if a is None:
                assert b is None
                continue
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))


def device_copies(*arrays):
    """Device copies of host arrays for the cuda backend (None stays None)."""
    from kernels.cuda.backend import to_device
    return [None if a is None else to_device(a) for a in arrays]


def on_host(x):
    """A device result copied to the host (host arrays returned as they are)."""
    from kernels.cuda.backend import to_host
    return None if x is None else to_host(x)
