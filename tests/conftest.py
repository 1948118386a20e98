"""Shared fixtures and the one table of numerical tolerances of the kernel tests.

The package is imported as installed (``pip install .`` in CI); for a run from the
source tree use ``PYTHONPATH=src python -m pytest tests``.  Nothing here touches
``sys.path``.

The cuda backend's tests run on a real GPU when the machine has one (an NVIDIA device
node), else under Numba's CUDA simulator: ``NUMBA_ENABLE_CUDASIM=1`` is set here, before
anything imports Numba, unless the environment already says which.
"""
import os

if "NUMBA_ENABLE_CUDASIM" not in os.environ and not os.path.exists("/dev/nvidiactl"):
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

import numpy as np
import pytest

import kernel_helpers
import kernels
from kernels.cpu import _threads, gemm as _gemm
from kernels import reference as ref

DTYPES = (np.float32, np.float64)

# ---------------------------------------------------------------- tolerances
# One table, per dtype and per kind of computation.  ``elementwise``: one libm call or
# a few flops per element (float32 libm functions may differ from NumPy's by a few
# ulp).  ``reduction``: a sum over many terms (losses, column sums, softmax rows) whose
# summation order differs between backends.  ``optimizer``: several update steps, each
# with a division and a square root.  ``gemm``: the base of the k-scaled GEMM bound.
TOLERANCES = {
    np.dtype(np.float32): {
        # atol: gelu's 1 + tanh(u) and 1 - tanh(u)^2 cancel for x ~ -5 (a few ulp of
        # tanhf near -1 are ~1e-6 in the derivative)
        "elementwise": dict(rtol=2e-6, atol=4e-6),
        "reduction": dict(rtol=2e-5, atol=4e-6),
        "optimizer": dict(rtol=2e-5, atol=1e-6),
        "gemm": dict(rtol=1e-5, atol=0.0),
    },
    np.dtype(np.float64): {
        "elementwise": dict(rtol=1e-12, atol=1e-14),
        "reduction": dict(rtol=1e-12, atol=1e-13),
        "optimizer": dict(rtol=1e-12, atol=1e-14),
        "gemm": dict(rtol=1e-12, atol=0.0),
    },
}
# A dot product of length k with terms bounded by ``scale`` is off by at most about
# k * eps * scale in any summation order; GEMM's atol is this times a safety factor.
GEMM_EPS_FACTOR = 4.0


def tolerance(dtype, kind="elementwise", k=None, scale=1.0):
    """(rtol, atol) for comparing a ``dtype`` result of the given kind.

    For ``kind="gemm"`` (and anything built on products: the dense layer), pass the
    inner dimension ``k`` and ``scale`` = max|a| * max|b|: atol grows as
    ``GEMM_EPS_FACTOR * k * eps(dtype) * scale``.
    """
    dtype = np.dtype(dtype)
    tol = dict(TOLERANCES[dtype][kind])
    if kind == "gemm":
        if k is None:
            raise ValueError("tolerance(kind='gemm') needs the inner dimension k")
        tol["atol"] = GEMM_EPS_FACTOR * max(k, 1) * float(np.finfo(dtype).eps) * scale
        tol["atol"] = max(tol["atol"], TOLERANCES[dtype]["reduction"]["atol"] * scale)
    return tol["rtol"], tol["atol"]


def assert_close(actual, expected, dtype, kind="elementwise", *, k=None, scale=1.0,
                 rtol=None, atol=None, err_msg=""):
    """``actual`` equals ``expected`` within the table's tolerance for ``dtype``.

    Also checks that ``actual`` is of ``dtype`` (nothing was silently converted) and of
    the expected shape.  NaN must match NaN.  ``rtol``/``atol`` override the table.
    """
    dtype = np.dtype(dtype)
    t_rtol, t_atol = tolerance(dtype, kind, k=k, scale=scale)
    rtol = t_rtol if rtol is None else rtol
    atol = t_atol if atol is None else atol
    actual_arr = np.asarray(actual)
    assert actual_arr.dtype == dtype, f"dtype {actual_arr.dtype}, expected {dtype}. {err_msg}"
    expected_arr = np.asarray(expected)
    assert actual_arr.shape == expected_arr.shape, (
        f"shape {actual_arr.shape}, expected {expected_arr.shape}. {err_msg}")
    np.testing.assert_allclose(actual_arr.astype(np.float64), expected_arr.astype(np.float64),
                               rtol=rtol, atol=atol, equal_nan=True, err_msg=err_msg)


# Published to the test modules through kernel_helpers (see its docstring).
kernel_helpers.assert_close = assert_close
kernel_helpers.tolerance = tolerance
kernel_helpers.TOLERANCES = TOLERANCES


# ---------------------------------------------------------------- fixtures

@pytest.fixture(params=DTYPES, ids=lambda d: np.dtype(d).name)
def dtype(request):
    """float32 and float64."""
    return np.dtype(request.param)


@pytest.fixture
def rng():
    """A NumPy generator with a fixed seed: every test sees the same numbers."""
    return np.random.default_rng(20240601)


@pytest.fixture(params=[1, 2], ids=lambda n: f"threads{n}")
def threads(request):
    """Runs the test with 1 and with 2 kernel threads; the parallel threshold is set
    to 1 element so that even small shapes take the threaded code paths.  Both
    settings are restored afterwards."""
    old_threads = kernels.get_num_threads()
    old_min = _threads.set_min_parallel_work(1)
    kernels.set_num_threads(request.param)
    try:
        yield request.param
    finally:
        kernels.set_num_threads(old_threads)
        _threads.set_min_parallel_work(old_min)


@pytest.fixture
def two_threads():
    """2 kernel threads and the parallel threshold at 1 element, for tests whose
    subject (memory layouts handled by the Python wrappers, say) does not depend on
    the thread count: the threaded path, once.  Restored afterwards."""
    old_threads = kernels.get_num_threads()
    old_min = _threads.set_min_parallel_work(1)
    kernels.set_num_threads(2)
    try:
        yield 2
    finally:
        kernels.set_num_threads(old_threads)
        _threads.set_min_parallel_work(old_min)


@pytest.fixture(params=_gemm.available_impls())
def gemm_impl(request):
    """Every SIMD GEMM variant this CPU runs ('base', 'avx2', 'avx512'); the variant in
    use before is restored afterwards."""
    with kernel_helpers.using_impl(_gemm, request.param) as name:
        yield name


def _backend_params():
    params = []
    for name in ("numpy", "cython"):
        try:
            kernels.get_backend(name)
        except ImportError as exc:  # a backend that cannot load here is skipped, loudly
            params.append(pytest.param(name, marks=pytest.mark.skip(reason=str(exc))))
        else:
            params.append(name)
    return params


@pytest.fixture(params=_backend_params())
def backend(request):
    """Every CPU backend ('numpy' = the reference, 'cython')."""
    return kernels.get_backend(request.param)


def _cuda_or_skip():
    """The cuda backend; skipped only when numba-cuda is not installed at all (CI
    installs it with the test extra, and test_cuda.py fails there if it does not load).
    Installed but failing to load is a failure, not a skip."""
    import importlib.util
    if importlib.util.find_spec("numba") is None:
        pytest.skip("numba-cuda is not installed (pip install 'dlkernels[cuda]')")
    try:
        return kernels.get_backend("cuda")
    except ImportError as exc:
        pytest.fail(f"the cuda backend is installed but does not load: {exc}")


@pytest.fixture
def cuda():
    """The cuda backend (a real GPU, or Numba's simulator)."""
    return _cuda_or_skip()


@pytest.fixture
def cy():
    """The Cython backend (the tests that need it fail if it does not load)."""
    return kernels.get_backend("cython")


@pytest.fixture
def reference():
    return ref


# ---------------------------------------------------------------- Hypothesis profiles
# The fuzz tests (test_fuzz_*.py) take their number of examples from the profile named by
# HYPOTHESIS_PROFILE: "ci" (default; small, derandomized so CI is reproducible) or
# "thorough" (>= 10,000 generated cases in all; random, with a database to replay
# failures).  See docs/hardening.md, "Fuzzing".
import sys  # noqa: E402

try:
    from hypothesis import HealthCheck, settings
except ImportError:   # a bare machine running a subset (bench/gpu/run.sh on a GPU host)
    settings = None
if settings is not None:
    _FUZZ_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large,
                    HealthCheck.filter_too_much]
    settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True,
                              database=None, print_blob=True,
                              suppress_health_check=_FUZZ_HEALTH)
    settings.register_profile("thorough", max_examples=300, deadline=None, print_blob=True,
                              suppress_health_check=_FUZZ_HEALTH)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_terminal_summary(terminalreporter):
    """How many fuzz cases ran (the thorough profile must reach 10,000)."""
    fuzz = sys.modules.get("fuzz_strategies")
    if fuzz is not None and fuzz.COUNTS:
        total = sum(v for k, v in fuzz.COUNTS.items() if k in fuzz.TOTAL_KEYS)
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(fuzz.COUNTS.items()))
        profile = os.environ.get("HYPOTHESIS_PROFILE", "ci")
        terminalreporter.write_line(f"fuzz cases (profile {profile}): {total} in all; {counts}")
