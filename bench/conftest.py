"""Shared fixtures of the dlkernels benchmarks (pytest-benchmark).

Run with ``pytest bench --benchmark-only`` (see bench/README.md).  Every benchmark is
parametrized over the ``numpy`` (reference) and ``cython`` backends, uses float32 data,
times one kernel call, and checks the result against ``kernels.reference`` after timing.

Options added here:

``--threads N``
    ``kernels.set_num_threads(N)`` for the compiled kernels, and NumPy's BLAS pinned to
    the same N threads (with threadpoolctl when installed; otherwise, when NumPy is not
    imported yet, through ``OPENBLAS_NUM_THREADS``/``MKL_NUM_THREADS``/...), so that both
    backends get the same cores.  Default: both libraries keep their own defaults.

Unless ``--benchmark-max-time`` is given on the command line, each benchmark runs for
about ``DEFAULT_MAX_TIME`` seconds (pytest-benchmark's default is 1 s), which keeps the
whole suite at a minute or two on a 2-core machine.
"""
import os
import sys

import pytest

DTYPE_NAME = "float32"
DEFAULT_MAX_TIME = 0.5  # seconds per benchmark unless --benchmark-max-time is given
SEED = 20240601

# Environment variables read by BLAS libraries when NumPy loads them (the fallback used
# to pin NumPy's threads when threadpoolctl is not installed).
_BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                     "VECLIB_MAXIMUM_THREADS")

# Filled in by pytest_configure: how many threads each side was given.
_THREADS = {"kernels": None, "blas": None, "blas_pinned_by": None}
_THREADPOOL_LIMITS = []  # keeps threadpoolctl's limiter alive for the session


def pytest_addoption(parser):
    group = parser.getgroup("dlkernels benchmarks")
    group.addoption(
        "--threads", type=int, default=None, metavar="N",
        help="threads for the compiled kernels (kernels.set_num_threads) and NumPy's "
             "BLAS (threadpoolctl, if installed); default: each library's own default")


def _option_given(config, flag):
    """Whether ``flag`` was given on the command line, in PYTEST_ADDOPTS or in addopts."""
    sources = list(config.invocation_params.args)
    sources += os.environ.get("PYTEST_ADDOPTS", "").split()
    try:
        sources += list(config.getini("addopts"))
    except (ValueError, KeyError):
        pass
    return any(str(arg).startswith(flag) for arg in sources)


def _pin_blas_threads(n):
    """Limit NumPy's BLAS to ``n`` threads; returns how it was done, or None."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    if threadpool_limits is not None:
        import numpy  # noqa: F401  (load NumPy's BLAS so that threadpoolctl sees it)
        _THREADPOOL_LIMITS.append(threadpool_limits(limits=n, user_api="blas"))
        return "threadpoolctl"
    if "numpy" not in sys.modules:  # BLAS reads these when NumPy first loads it
        for var in _BLAS_THREAD_VARS:
            os.environ[var] = str(n)
        return "environment"
    return None  # too late, and no threadpoolctl: leave NumPy alone


def _blas_threads():
    """NumPy's BLAS thread count as threadpoolctl reports it, else None."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    counts = {d.get("num_threads") for d in threadpool_info() if d.get("user_api") == "blas"}
    return counts.pop() if len(counts) == 1 else None


def pytest_configure(config):
    # Runs before pytest-benchmark's own pytest_configure (trylast), which reads options.
    if not _option_given(config, "--benchmark-max-time"):
        config.option.benchmark_max_time = DEFAULT_MAX_TIME

    threads = config.getoption("threads")
    if threads is not None and threads < 1:
        raise pytest.UsageError(f"--threads: expected an integer >= 1, got {threads}")
    if threads is not None:
        _THREADS["blas_pinned_by"] = _pin_blas_threads(threads)  # before NumPy loads
        if _THREADS["blas_pinned_by"] == "environment":
            _THREADS["blas"] = threads

    import kernels  # imports NumPy

    if threads is not None:
        kernels.set_num_threads(threads)
    _THREADS["kernels"] = kernels.get_num_threads()
    if _THREADS["blas"] is None:
        _THREADS["blas"] = _blas_threads()


def pytest_report_header(config):
    import kernels
    info = kernels.build_info()
    blas = _THREADS["blas"] if _THREADS["blas"] is not None else "default (unknown)"
    how = f" via {_THREADS['blas_pinned_by']}" if _THREADS["blas_pinned_by"] else ""
    return [f"dlkernels benchmarks: kernels threads={_THREADS['kernels']}, "
            f"numpy BLAS threads={blas}{how}, gemm_impl={info.get('gemm_impl')}, "
            f"openmp={info.get('openmp')}"]


def pytest_benchmark_update_machine_info(config, machine_info):
    """Records the build, the thread settings and the load (the machine may be shared)."""
    import kernels
    machine_info["dlkernels"] = {
        "build_info": kernels.build_info(),
        "kernels_threads": _THREADS["kernels"],
        "blas_threads": _THREADS["blas"],
        "blas_pinned_by": _THREADS["blas_pinned_by"],
    }
    if hasattr(os, "getloadavg"):
        machine_info["loadavg"] = list(os.getloadavg())


def pytest_benchmark_update_json(config, benchmarks, output_json):
    """Adds GFLOP/s (from the median) to every benchmark that recorded its flops."""
    for bench in output_json.get("benchmarks", []):
        extra = bench.get("extra_info", {})
        median = bench.get("stats", {}).get("median")
        if extra.get("flops") and median:
            extra["gflops_median"] = extra["flops"] / median / 1e9


# ------------------------------------------------------------------------- fixtures

@pytest.fixture(params=["numpy", "cython"], ids=["numpy", "cython"])
def backend(request):
    """The backend under test; a cython backend that is not built is skipped."""
    import kernels
    try:
        return kernels.get_backend(request.param)
    except ImportError as exc:
        pytest.skip(f"backend {request.param!r} not available: {exc}")


@pytest.fixture(scope="session")
def ref():
    """The NumPy specification the results are checked against."""
    from kernels import reference
    return reference


@pytest.fixture(scope="session")
def dtype():
    import numpy as np
    return np.dtype(DTYPE_NAME)


@pytest.fixture
def rng():
    import numpy as np
    return np.random.default_rng(SEED)


@pytest.fixture
def uniform(rng, dtype):
    """``uniform(shape, low=-1, high=1)``: a float32 array of uniform random values."""
    def make(shape, low=-1.0, high=1.0):
        return rng.uniform(low, high, size=shape).astype(dtype)
    return make


def shape_str(*shapes):
    """``(128, 784)`` -> ``"128x784"``; several shapes are joined with ``,``."""
    return ",".join("x".join(str(int(d)) for d in s) for s in shapes)


@pytest.fixture(scope="session")
def fmt_shape():
    return shape_str


@pytest.fixture
def describe(benchmark, backend):
    """``describe(kernel, shape, flops=None, **extra)``: names the benchmark's group
    ``"<kernel> <shape>"`` (so numpy and cython land side by side) and records
    backend, dtype, shape, threads (and flops for GEMM-like kernels) in extra_info."""
    def record(kernel, shape, *, flops=None, **extra):
        if not isinstance(shape, str):
            shape = shape_str(shape)
        benchmark.group = f"{kernel} {shape}"
        info = benchmark.extra_info
        info["kernel"] = kernel
        info["backend"] = backend.name
        info["dtype"] = DTYPE_NAME
        info["shape"] = shape
        info["threads"] = _THREADS["kernels"]
        info["blas_threads"] = _THREADS["blas"]
        if flops is not None:
            info["flops"] = int(flops)
        info.update(extra)
    return record
