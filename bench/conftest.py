"""Shared fixtures of the dlkernels benchmarks (pytest-benchmark).

Run with ``pytest bench --benchmark-only`` (see bench/README.md).  Every benchmark is
parametrized over the ``numpy`` (reference), ``cython`` and ``cuda`` backends (cuda is
skipped where ``kernels.get_backend("cuda")`` does not load; a few benchmarks add
``torch``, skipped where PyTorch is not installed, the convolution benchmarks also
``torch_cl`` (PyTorch on channels_last tensors) and the convnet epoch ``tf_keras``,
skipped where TensorFlow is not installed), uses float32 data (GEMM, dense and
optimizer benchmarks also float64), times one call, and checks the result after timing.

The items are reordered so that the backends of one case run back to back (numpy, then
cython, cuda, torch, torch_cl, tf_keras): on a shared machine the load drifts, and a
ratio is only fair between measurements taken close together.  When NumPy's BLAS may run
more than one thread, a benchmark of another backend first waits ``BLAS_SETTLE``
seconds, right before its timing (after the test's own setup, which often computes
reference inputs with NumPy): OpenBLAS's idle threads keep spinning for about 0.1 s
after a call (2**28 cycles) and would otherwise compete for the cores with the timed
threads (measured: a 2-thread float64 512^3 GEMM of ours at 38-43 GFLOP/s right after
NumPy's, 76 after a pause; and the kernels' adaptive thread teams shrink while they
spin).

Options added here:

``--threads N``
    ``kernels.set_num_threads(N)`` for the compiled kernels, and NumPy's BLAS pinned to
    the same N threads (with threadpoolctl when installed; otherwise, when NumPy is not
    imported yet, through ``OPENBLAS_NUM_THREADS``/``MKL_NUM_THREADS``/...), so that both
    backends get the same cores.  Default: both libraries keep their own defaults.

Unless ``--benchmark-max-time`` is given on the command line, each benchmark runs for
about ``DEFAULT_MAX_TIME`` seconds (pytest-benchmark's default is 1 s; still at least 5
rounds); the big cases (GEMM 2048, training) set their own few rounds with
``benchmark.pedantic``.  The whole suite stays within about 5 minutes on a 2-core machine.

Fixtures for the benchmarks: ``backend``, ``dtype`` (float32 unless parametrized
indirectly), ``uniform``, ``rng``, ``ref``, ``describe`` (group name and extra_info),
``close`` (the check after timing) and ``threads_for`` (a context manager giving the
kernels and NumPy's BLAS N threads for one benchmark).
"""
import contextlib
import os
import sys

import pytest

DTYPE_NAME = "float32"        # the dtype of benchmarks not parametrized over dtypes
DTYPES = ["float32", "float64"]
BACKENDS = ["numpy", "cython", "cuda"]   # the default parametrization of ``backend``
BACKEND_ORDER = ["numpy", "cython", "cuda", "torch", "torch_cl", "tf_keras"]
DEFAULT_MAX_TIME = 0.3  # seconds per benchmark unless --benchmark-max-time is given
BLAS_SETTLE = 0.2       # seconds before timing another backend than numpy (see above)
SEED = 20240601

# Environment variables read by BLAS libraries when NumPy loads them (the fallback used
# to pin NumPy's threads when threadpoolctl is not installed).
_BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                     "VECLIB_MAXIMUM_THREADS")

# Filled in by pytest_configure: how many threads each side was given.
_THREADS = {"kernels": None, "blas": None, "blas_pinned_by": None, "requested": None,
            "torch": None, "tf": None}
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
    _THREADS["requested"] = threads
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
        "torch_threads": _THREADS["torch"],
        "tf_threads": _THREADS["tf"],
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


def pytest_collection_modifyitems(session, config, items):
    """Runs the backends of one case back to back (stable otherwise)."""
    first_seen = {}

    def case(item):
        spec = getattr(item, "callspec", None)
        if spec is None or "backend" not in spec.params:
            return (item.nodeid,)
        others = tuple((k, repr(v)) for k, v in sorted(spec.params.items()) if k != "backend")
        return (str(item.path), item.originalname, others)

    def backend_rank(item):
        spec = getattr(item, "callspec", None)
        name = spec.params.get("backend") if spec is not None else None
        return BACKEND_ORDER.index(name) if name in BACKEND_ORDER else len(BACKEND_ORDER)

    for item in items:
        first_seen.setdefault(case(item), len(first_seen))
    items.sort(key=lambda item: (first_seen[case(item)], backend_rank(item)))


# ------------------------------------------------------------------------- backends

_UNAVAILABLE = {}  # backend name -> why it does not load (tried once per session)


def _settle_blas():
    """Wait for NumPy's idle BLAS threads to stop spinning (see the module docstring)."""
    if _THREADS["blas"] != 1:
        import time
        time.sleep(BLAS_SETTLE)


_SETTLED_CLASSES = {}


def _settled_class(cls):
    """A subclass of pytest-benchmark's fixture class whose timings start once NumPy's
    idle BLAS threads have stopped spinning (pytest-benchmark's hooks check the type,
    so the fixture object keeps it)."""
    if cls not in _SETTLED_CLASSES:
        class Settled(cls):
            def __call__(self, *args, **kwargs):
                _settle_blas()
                return super().__call__(*args, **kwargs)

            def pedantic(self, *args, **kwargs):
                _settle_blas()
                return super().pedantic(*args, **kwargs)
        Settled.__name__ = Settled.__qualname__ = "Settled" + cls.__name__
        _SETTLED_CLASSES[cls] = Settled
    return _SETTLED_CLASSES[cls]


@pytest.fixture
def benchmark(benchmark, request):
    """pytest-benchmark's ``benchmark``, settled (see _settled_class) unless the item
    benchmarks the numpy backend."""
    spec = getattr(request.node, "callspec", None)
    if spec is None or spec.params.get("backend") != "numpy":
        benchmark.__class__ = _settled_class(type(benchmark))
    return benchmark


class TorchBackend:
    """PyTorch (CPU), for comparison: not a kernels backend.  The benchmarks that take it
    (``@pytest.mark.parametrize("backend", [..., "torch"], indirect=True)``) call
    ``backend.torch`` themselves.  Its intra-op threads follow ``--threads``.
    ``torch_cl`` is the same library asked for channels_last tensors
    (``channels_last`` True): the benchmarks that take it lay out their images and
    kernels with ``memory_format=torch.channels_last``."""

    def __init__(self, torch, name="torch"):
        self.torch = torch
        self.name = name
        self.channels_last = name == "torch_cl"

    def __repr__(self):
        layout = ", channels_last" if self.channels_last else ""
        return (f"<torch {self.torch.__version__}{layout}, "
                f"{self.torch.get_num_threads()} threads>")


def _torch_backend(name="torch"):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    if _THREADS["torch"] is None:   # first use: same threads as the kernels' (--threads)
        if _THREADS["requested"] is not None:
            torch.set_num_threads(_THREADS["requested"])
        _THREADS["torch"] = torch.get_num_threads()
    return TorchBackend(torch, name)


class TfKerasBackend:
    """tf.keras (TensorFlow's Keras, on the CPU), for comparison: not a kernels
    backend.  The benchmarks that take it (``"tf_keras"``) use ``backend.keras``.
    With ``--threads N`` TensorFlow gets N intra-op threads and 1 inter-op thread (set
    before its first operation; tf.data's own threads are not pinned)."""
    name = "tf_keras"

    def __init__(self, tf):
        self.tf = tf
        self.keras = tf.keras

    def __repr__(self):
        return f"<tf.keras {self.tf.__version__}, intra-op threads {_THREADS['tf']}>"


def _tf_keras_backend():
    tf = pytest.importorskip("tensorflow", reason="TensorFlow is not installed")
    if tf.keras.backend.backend() != "tensorflow":   # Keras 3 follows KERAS_BACKEND
        pytest.skip(f"tf.keras runs on Keras's {tf.keras.backend.backend()!r} backend "
                    f"here (KERAS_BACKEND or ~/.keras/keras.json), not TensorFlow's")
    if _THREADS["tf"] is None:
        if _THREADS["requested"] is not None:
            tf.config.threading.set_intra_op_parallelism_threads(_THREADS["requested"])
            tf.config.threading.set_inter_op_parallelism_threads(1)
        # 0: TensorFlow's default (all cores)
        _THREADS["tf"] = tf.config.threading.get_intra_op_parallelism_threads() or None
    return TfKerasBackend(tf)


# ------------------------------------------------------------------------- fixtures

@pytest.fixture(params=BACKENDS)
def backend(request):
    """The backend under test: a ``kernels.Backend``, or a :class:`TorchBackend` for
    the benchmarks that add ``torch`` (or ``torch_cl``), a :class:`TfKerasBackend` for
    ``tf_keras``.  A backend that does not load here (cython not built, no CUDA device
    or Numba, PyTorch or TensorFlow not installed) is skipped."""
    name = request.param
    if name in ("torch", "torch_cl"):
        return _torch_backend(name)
    if name == "tf_keras":
        return _tf_keras_backend()
    if name in _UNAVAILABLE:
        pytest.skip(_UNAVAILABLE[name])
    import kernels
    try:
        return kernels.get_backend(name)
    except Exception as exc:  # ImportError; a CUDA driver may raise its own errors too
        _UNAVAILABLE[name] = f"backend {name!r} not available: {type(exc).__name__}: {exc}"
        pytest.skip(_UNAVAILABLE[name])


@pytest.fixture(scope="session")
def ref():
    """The NumPy specification the results are checked against."""
    from kernels import reference
    return reference


@pytest.fixture
def dtype(request):
    """float32, or the dtype a benchmark parametrizes indirectly:
    ``@pytest.mark.parametrize("dtype", DTYPES, indirect=True)``."""
    import numpy as np
    return np.dtype(getattr(request, "param", DTYPE_NAME))


# Tolerances of the checks after timing, per dtype and kind of computation (the kernel
# tests hold the strict ones; these only catch a benchmark that computes garbage).
# "gemm": atol grows with the inner dimension k (sums of k products of size <= 1).
_TOLERANCES = {
    "float32": {"elementwise": (2e-5, 1e-6), "optimizer": (1e-5, 1e-7),
                "gemm": (1e-4, 2e-6)},
    "float64": {"elementwise": (1e-12, 1e-14), "optimizer": (1e-10, 1e-13),
                "gemm": (1e-10, 1e-13)},
}


def assert_close(actual, expected, kind="elementwise", k=None, err_msg=""):
    """``np.testing.assert_allclose`` with the tolerance of ``kind`` for the dtype of
    ``actual`` (which must equal ``expected``'s dtype when that is an array)."""
    import numpy as np
    actual = np.asarray(actual)
    rtol, atol = _TOLERANCES[actual.dtype.name][kind]
    if k is not None:
        atol *= k
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=err_msg)


@pytest.fixture(scope="session")
def close():
    """``close(actual, expected, kind="elementwise", k=None)``: see :func:`assert_close`."""
    return assert_close


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
def describe(benchmark, request):
    """``describe(kernel, shape, flops=None, **extra)``: names the benchmark's group
    ``"<kernel> <shape> <dtype>"`` (so the backends of one case land side by side) and
    records kernel, backend, dtype, shape, threads (and flops for GEMM-like kernels) in
    extra_info; ``extra`` adds to it or overrides it (e.g. ``threads=2``)."""
    backend = request.getfixturevalue("backend") if "backend" in request.fixturenames else None
    dtype = (request.getfixturevalue("dtype").name if "dtype" in request.fixturenames
             else DTYPE_NAME)

    def record(kernel, shape, *, flops=None, **extra):
        if not isinstance(shape, str):
            shape = shape_str(shape)
        benchmark.group = f"{kernel} {shape} {dtype}"
        info = benchmark.extra_info
        info["kernel"] = kernel
        info["backend"] = backend.name if backend is not None else None
        info["dtype"] = dtype
        info["shape"] = shape
        info["threads"] = _THREADS["kernels"]
        info["blas_threads"] = _THREADS["blas"]
        if isinstance(backend, TorchBackend):
            info["torch_threads"] = backend.torch.get_num_threads()
        if isinstance(backend, TfKerasBackend):
            info["tf_threads"] = _THREADS["tf"]
        if flops is not None:
            info["flops"] = int(flops)
        if hasattr(os, "getloadavg"):
            info["loadavg_1min"] = os.getloadavg()[0]
        info.update(extra)
    return record


@contextlib.contextmanager
def num_threads(n):
    """Within the block, the compiled kernels and NumPy's BLAS (when threadpoolctl is
    installed) use ``n`` threads; the session's settings come back afterwards."""
    import kernels
    before = kernels.get_num_threads()
    limiter = None
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    kernels.set_num_threads(n)
    try:
        if threadpool_limits is not None:
            limiter = threadpool_limits(limits=n, user_api="blas")
        yield {"threads": n, "blas_threads": n if limiter is not None else _THREADS["blas"]}
    finally:
        if limiter is not None:
            limiter.restore_original_limits()
        kernels.set_num_threads(before)


@pytest.fixture(scope="session")
def threads_for():
    """``with threads_for(n) as info:``: see :func:`num_threads`."""
    return num_threads
