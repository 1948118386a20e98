"""Every backend offers every kernel of the reference, with the same signature."""
import inspect

import pytest

import kernels
from kernels.cpu import _threads
from kernels import reference as ref

KERNEL_NAMES = list(ref.__all__)


def _loadable_backends():
    return [name for name in ("numpy", "cython", "cuda") if _loads(name)]


def _loads(name):
    try:
        kernels.get_backend(name)
    except ImportError:
        return False
    return True


def _signature_key(fn):
    sig = inspect.signature(fn)
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


def test_reference_all_is_unique_and_callable():
    assert len(KERNEL_NAMES) == len(set(KERNEL_NAMES))
    for name in KERNEL_NAMES:
        assert callable(getattr(ref, name)), name


def test_numpy_and_cython_both_load():
    names = kernels.available_backends()
    assert "numpy" in names
    assert "cython" in names


@pytest.mark.parametrize("backend_name", _loadable_backends())
@pytest.mark.parametrize("kernel", KERNEL_NAMES)
def test_kernel_exists_with_reference_signature(backend_name, kernel):
    backend = kernels.get_backend(backend_name)
    assert kernel in backend.kernel_names
    fn = getattr(backend, kernel)
    assert callable(fn)
    expected = _signature_key(getattr(ref, kernel))
    got = _signature_key(fn)
    assert got == expected, f"{backend_name}.{kernel}: {got} != reference {expected}"
    # and the raw signature objects agree too (annotations, return annotation)
    assert inspect.signature(fn) == inspect.signature(getattr(ref, kernel))


@pytest.mark.parametrize("backend_name", _loadable_backends())
def test_backend_module_all_matches_reference(backend_name):
    backend = kernels.get_backend(backend_name)
    module_all = getattr(backend.module, "__all__", None)
    if module_all is not None:
        assert sorted(module_all) == sorted(KERNEL_NAMES)


def test_hyperparameters_are_keyword_only():
    # Keras's hyper-parameters are keyword-only in the spec; the positional part is
    # only arrays (and out).
    array_like = {"a", "b", "x", "w", "g", "m", "v", "acc", "dy", "y", "y_true", "y_pred",
                  "logits", "out", "gamma", "beta", "dx", "dgamma", "dbeta",
                  "ids", "table", "dtable", "argmax", "moving_mean", "moving_variance"}
    for name in KERNEL_NAMES:
        for p in inspect.signature(getattr(ref, name)).parameters.values():
            if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD:
                assert p.name in array_like, f"{name}: {p.name} should be keyword-only"


def test_default_backend_is_cython():
    assert kernels.get_backend() is kernels.get_backend("cython")
    assert kernels.get_backend(None).name == "cython"


def test_get_backend_caches_objects():
    assert kernels.get_backend("numpy") is kernels.get_backend("numpy")
    assert kernels.get_backend("numpy").module is ref


@pytest.mark.parametrize("bad", ["nonesuch", "Cython", "", 3, ("numpy",)])
def test_unknown_backend_name_raises_value_error_naming_name(bad):
    with pytest.raises(ValueError, match="name"):
        kernels.get_backend(bad)


def test_backend_repr():
    text = repr(kernels.get_backend("cython"))
    assert "cython" in text
    assert str(len(KERNEL_NAMES)) in text
    assert "numpy" in repr(kernels.get_backend("numpy"))


def test_build_info_reports_gemm_impls():
    info = kernels.build_info()
    assert info["gemm_impl"] in info["gemm_impls"]
    assert "base" in info["gemm_impls"]
    assert info["num_threads"] == kernels.get_num_threads()


@pytest.fixture
def restore_threads():
    old = kernels.get_num_threads()
    yield
    kernels.set_num_threads(old)


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_num_threads_round_trip(restore_threads, n):
    kernels.set_num_threads(n)
    assert kernels.get_num_threads() == n
    assert _threads.get_num_threads() == n


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-1, ValueError), (1.5, TypeError),
                                      (True, TypeError), (False, TypeError), ("2", TypeError),
                                      (None, TypeError)])
def test_set_num_threads_rejects(restore_threads, bad, exc):
    kernels.set_num_threads(2)
    with pytest.raises(exc, match="n"):
        kernels.set_num_threads(bad)
    assert kernels.get_num_threads() == 2  # unchanged by the failed call


def test_set_min_parallel_work_returns_old_value_and_rejects_bad():
    old = _threads.set_min_parallel_work(5)
    try:
        assert _threads.set_min_parallel_work(7) == 5
        for bad in (0, -3, 1.5, True):
            with pytest.raises(ValueError):
                _threads.set_min_parallel_work(bad)
    finally:
        _threads.set_min_parallel_work(old)


def test_available_gemm_impls_and_use_impl():
    from kernels.cpu import gemm as _gemm
    impls = _gemm.available_impls()
    assert impls and impls[0] == "base"
    previous = _gemm.current_impl()
    try:
        for name in impls:
            _gemm.use_impl(name)
            assert _gemm.current_impl() == name
        with pytest.raises(ValueError):
            _gemm.use_impl("nonesuch")
    finally:
        _gemm.use_impl(previous)
    assert _gemm.current_impl() == previous
