"""The cuda backend: loading, packaging promises, host/device rules, the elementwise
kernels against the reference, and every kernel compiled to PTX for an H200.

Runs under Numba's simulator without a GPU (tests/conftest.py sets it up) and for real
on a machine with one; the GEMM, loss and optimizer kernels have their own files
(test_cuda_gemm.py, test_cuda_losses.py, test_cuda_optimizers.py).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import kernels
from cuda_helpers import SHAPES_2D, to_device, to_host
from kernel_helpers import assert_close
from kernels import reference as ref

ACTIVATIONS = list(ref.ACTIVATIONS)
PARAMS = {"leaky_relu": {"negative_slope": 0.1}, "elu": {"alpha": 0.7},
          "gelu": {"approximate": True}}
# relu with Keras's parameters away from their defaults (its own kernel pair)
RELU_PARAMS = [{"negative_slope": 0.5}, {"max_value": 2.0}, {"threshold": 1.0},
               {"negative_slope": 0.3, "max_value": 2.5, "threshold": 0.5}]


def _run(code, env_extra=None, env_drop=()):
    env = {k: v for k, v in os.environ.items() if k not in env_drop}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=600)


# ------------------------------------------------------------------ loading

def test_backend_loads_in_ci():
    """CI installs the cuda extra: there the backend must load (under the simulator),
    so that its tests cannot all be skipped unnoticed."""
    if not os.environ.get("CI"):
        pytest.skip("only enforced in CI")
    assert "cuda" in kernels.available_backends()


def test_import_kernels_and_dl_never_import_numba():
    r = _run("import sys, kernels, dl\n"
             "m = dl.Sequential([dl.layers.Dense(2, input_shape=(3,))])\n"
             "kernels.get_backend('cython'); kernels.available_backends.__doc__\n"
             "print(sorted(k for k in sys.modules if k.split('.')[0] in "
             "('numba', 'numba_cuda', 'llvmlite', 'cuda')))")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_missing_extra_is_named():
    # numba blocked: as if the extra were not installed
    r = _run("import sys; sys.modules['numba'] = None\n"
             "import kernels\n"
             "try:\n    kernels.get_backend('cuda')\n"
             "except ImportError as e:\n    print(e)\n")
    assert r.returncode == 0, r.stderr
    assert "pip install 'dlkernels[cuda]'" in r.stdout
    assert "numba-cuda" in r.stdout


@pytest.mark.skipif(os.path.exists("/dev/nvidiactl"), reason="this machine has a GPU")
def test_missing_gpu_is_named():
    pytest.importorskip("numba")
    r = _run("import kernels\n"
             "try:\n    kernels.get_backend('cuda')\n"
             "except ImportError as e:\n    print(e)\n",
             env_extra={"NUMBA_ENABLE_CUDASIM": "0"})
    assert r.returncode == 0, r.stderr
    assert "no usable CUDA GPU" in r.stdout
    assert "NUMBA_ENABLE_CUDASIM" in r.stdout


def test_numba_is_imported_by_one_module_only():
    src = os.path.join(os.path.dirname(kernels.__file__), "cuda")
    importers = []
    for name in sorted(os.listdir(src)):
        if name.endswith(".py"):
            with open(os.path.join(src, name), encoding="utf-8") as f:
                text = f.read()
            if "import numba" in text or "from numba" in text:
                importers.append(name)
    assert importers == ["_nb.py"]


def test_backend_object(cuda):
    assert repr(cuda) == f"<kernels backend 'cuda': {len(ref.__all__)} kernels>"
    assert cuda.name == "cuda"


# ------------------------------------------------------------------ host and device

def test_mixing_host_and_device_is_a_type_error(cuda):
    x = np.ones((3, 4), np.float32)
    with pytest.raises(TypeError, match=r"^out: expected a device array like x"):
        cuda.relu(to_device(x), out=np.empty_like(x))
    with pytest.raises(TypeError, match=r"^y: expected a device array like dy"):
        cuda.backprop_relu(to_device(x), x)


def test_not_an_array_names_the_argument(cuda):
    with pytest.raises(TypeError, match=r"^x: expected a numpy.ndarray or a CUDA device "
                                        r"array of float32 or float64, got a list"):
        cuda.relu([1.0, 2.0])


def test_device_checks_match_host_checks(cuda):
    x = to_device(np.ones((3, 4), np.float32))
    with pytest.raises(TypeError, match=r"^y: expected dtype float32"):
        cuda.backprop_relu(x, to_device(np.ones((3, 4), np.float64)))
    with pytest.raises(ValueError, match=r"^y: expected shape \(3, 4\)"):
        cuda.backprop_relu(x, to_device(np.ones((4, 3), np.float32)))
    with pytest.raises(TypeError, match=r"^x: expected dtype float32 or float64, got int64"):
        cuda.relu(to_device(np.ones(3, np.int64)))
    with pytest.raises(ValueError, match=r"^out: expected shape \(3, 4\)"):
        cuda.relu(x, out=to_device(np.ones((3, 5), np.float32)))


def test_non_contiguous_device_input_is_refused(cuda):
    base = to_device(np.ones((4, 6), np.float32))
    with pytest.raises(ValueError, match=r"^x: expected a C-contiguous device array"):
        cuda.relu(base[:, ::2])


def test_device_call_stays_on_device(cuda):
    x = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
    d = to_device(x)
    y = cuda.relu(d)
    assert not isinstance(y, np.ndarray)
    np.testing.assert_array_equal(to_host(y), ref.relu(x))
    out = to_device(np.full((3, 4), np.nan, np.float32))
    assert cuda.tanh(d, out=out) is out
    assert_close(to_host(out), ref.tanh(x), np.float32)
    assert cuda.sigmoid(d, out=d) is d                      # in place on the device
    assert_close(to_host(d), ref.sigmoid(x), np.float32)


def test_launches_are_counted(cuda):
    from kernels.cuda.backend import launches
    before = launches.count
    cuda.relu(to_device(np.ones((2, 2), np.float32)))
    assert launches.count == before + 1


# ------------------------------------------------------------------ elementwise kernels

def _data(rng, shape, dtype):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    x.flat[0] = 0.0          # the kinks (relu, leaky_relu, elu at 0)
    return x


@pytest.mark.parametrize("shape", SHAPES_2D + [(2, 3, 5)], ids=str)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_matches_reference(cuda, rng, dtype, shape, name):
    x = _data(rng, shape, dtype)
    kw = PARAMS.get(name, {})
    expected = getattr(ref, name)(x, **kw)
    assert_close(getattr(cuda, name)(x, **kw), expected, dtype, err_msg=name)
    got = getattr(cuda, name)(to_device(x), **kw)
    assert_close(to_host(got), expected, dtype, err_msg=name)


@pytest.mark.parametrize("shape", SHAPES_2D + [(2, 3, 5)], ids=str)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_backprop_matches_reference(cuda, rng, dtype, shape, name):
    x = _data(rng, shape, dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    kw = PARAMS.get(name, {})
    saved = x if name in ref.ACTIVATIONS_NEEDING_INPUT else getattr(ref, name)(x, **kw)
    fn = "backprop_" + name
    expected = getattr(ref, fn)(dy, saved, **kw)
    assert_close(getattr(cuda, fn)(dy, saved, **kw), expected, dtype, err_msg=fn)
    got = getattr(cuda, fn)(to_device(dy), to_device(saved), **kw)
    assert_close(to_host(got), expected, dtype, err_msg=fn)


@pytest.mark.parametrize("kw", RELU_PARAMS, ids=str)
def test_relu_parameters_match_reference(cuda, rng, dtype, kw):
    x = _data(rng, (5, 7), dtype)
    x[0, :4] = [np.nan, np.inf, -np.inf, kw.get("threshold", 0.0)]
    dy = rng.standard_normal(x.shape).astype(dtype)
    with np.errstate(all="ignore"):
        y = ref.relu(x, **kw)
        assert_close(cuda.relu(x, **kw), y, dtype)
        assert_close(to_host(cuda.relu(to_device(x), **kw)), y, dtype)
        expected = ref.backprop_relu(dy, y, **kw)
    assert_close(cuda.backprop_relu(dy, y, **kw), expected, dtype)
    assert_close(to_host(cuda.backprop_relu(to_device(dy), to_device(y), **kw)), expected,
                 dtype)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_defaults_and_host_out(cuda, rng, dtype, name):
    x = _data(rng, (4, 5), dtype)
    out = np.full_like(x, np.nan)
    assert getattr(cuda, name)(x, out=out) is out
    assert_close(out, getattr(ref, name)(x), dtype)
    inplace = x.copy()                                  # out is x (in place)
    getattr(cuda, name)(inplace, out=inplace)
    assert_close(inplace, getattr(ref, name)(x), dtype)


def test_strided_host_arrays_are_fine(cuda, rng, dtype):
    x = _data(rng, (6, 8), dtype)[::2, ::-1]
    out = np.full((8, 3), np.nan, dtype).T                # F-ordered out
    cuda.softplus(x, out=out)
    assert_close(out, ref.softplus(x), dtype)


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan, 1e4, -1e4])
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_extremes(cuda, dtype, name, value):
    x = np.array([[value, 0.5, -0.5]], dtype)
    with np.errstate(all="ignore"):
        expected = getattr(ref, name)(x)
        assert_close(getattr(cuda, name)(x), expected, dtype, err_msg=name)


@pytest.mark.parametrize("shape", SHAPES_2D, ids=str)
def test_bias_add_and_column_sums(cuda, rng, dtype, shape):
    x = _data(rng, shape, dtype)
    b = rng.standard_normal(shape[1]).astype(dtype)
    assert_close(cuda.bias_add(x, b), ref.bias_add(x, b), dtype)
    assert_close(to_host(cuda.bias_add(to_device(x), to_device(b))), ref.bias_add(x, b), dtype)
    assert_close(cuda.column_sums(x), ref.column_sums(x), dtype, "reduction")
    assert_close(to_host(cuda.column_sums(to_device(x))), ref.column_sums(x), dtype, "reduction")
    inplace = x.copy()
    cuda.bias_add(inplace, b, out=inplace)
    assert_close(inplace, ref.bias_add(x, b), dtype)
    with pytest.raises(ValueError, match=r"^out: must not share memory with x"):
        cuda.column_sums(x, out=x[0])


# ------------------------------------------------------------------ PTX for the H200

_PTX_SCRIPT = r"""
import json, re
from kernels.cuda import _compile, _nb
report = {}
for name, dtype, pyfunc, sig in _compile.definitions():
    ptx, _ = _nb.compile_ptx(pyfunc, sig, cc=(9, 0))
    f64 = len(re.findall(r"^\s*[a-z][a-z0-9.]*\.f64\b", ptx, re.M))
    # accumulators ("D1": loss and metric sums) are float64 on purpose
    wide = "D1" in _compile._FACTORIES[name][1]
    report[f"{name}/{dtype}"] = {"target": ".target sm_90" in ptx, "f64": 0 if wide else f64,
                                 "bytes": len(ptx)}
print(json.dumps(report))
"""


def test_every_kernel_compiles_to_ptx_for_sm90():
    """The simulator does no type checking: compile every kernel for compute
    capability 9.0 (the H200) with numba-cuda's NVVM, no GPU needed.  float32 kernels
    must not compute in float64 (a stray Python float or math call on a double)."""
    pytest.importorskip("numba")
    r = _run(_PTX_SCRIPT, env_extra={"NUMBA_ENABLE_CUDASIM": "0"})
    if r.returncode != 0 and "NVVM" in r.stderr and "not found" in r.stderr.lower():
        pytest.fail("NVVM missing: install numba-cuda with its cu13 extra "
                    "(pip install 'dlkernels[cuda]')\n" + r.stderr[-2000:])
    assert r.returncode == 0, r.stderr[-4000:]
    report = json.loads(r.stdout.strip().splitlines()[-1])
    names = {k.split("/")[0] for k in report}
    assert len(report) == 2 * len(names) and len(names) >= 10
    assert all(v["target"] for v in report.values())
    doubles = {k: v["f64"] for k, v in report.items() if k.endswith("float32") and v["f64"]}
    assert not doubles, f"float64 instructions in float32 kernels: {doubles}"
