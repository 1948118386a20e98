"""GEMM: ``out = op(a) @ op(b)`` on squares and on the shapes of real Dense layers.

- squares 256, 512, 1024 (float32 and float64) and 2048 (float32 only, a few rounds);
- the three products of each layer of the MLP 784 -> 256 -> 128 -> 10 on batches of
  32, 128 and 256: forward ``x @ W`` (``gemm fwd``), and backward ``dW = x^T dz``
  (``gemm dW``, ``trans_a``) and ``dX = dz W^T`` (``gemm dX``, ``trans_b``).

Group names give the stored operands, ``^T`` marking a transposed one.  ``flops`` (2mnk)
is recorded, so the JSON and ``report.py`` give GFLOP/s.  PyTorch (``torch.matmul`` with
``out=`` on tensors sharing the NumPy arrays' memory) is timed too when installed.
"""
import numpy as np
import pytest

DTYPES = ["float32", "float64"]
BACKENDS = ["numpy", "cython", "cuda", "torch"]

BIG = 2048           # timed with a few pedantic rounds, float32 only
BIG_ROUNDS = 3

# (role, m, k, n, trans_a, trans_b, dtype): op(a) is (m, k), op(b) is (k, n)
CASES = []
for size in (256, 512, 1024):
    for dt in DTYPES:
        CASES.append(pytest.param("gemm", size, size, size, False, False, dt,
                                  id=f"square{size}-{dt}"))
CASES.append(pytest.param("gemm", BIG, BIG, BIG, False, False, "float32",
                          id=f"square{BIG}-float32"))
for batch in (32, 128, 256):
    for n_in, units in ((784, 256), (256, 128), (128, 10)):
        layer = f"b{batch}-{n_in}x{units}"
        for dt in DTYPES:
            CASES += [
                # forward: x (batch, n_in) @ W (n_in, units)
                pytest.param("gemm fwd", batch, n_in, units, False, False, dt,
                             id=f"fwd-{layer}-{dt}"),
                # dW = x^T dz: x stored (batch, n_in), dz (batch, units)
                pytest.param("gemm dW", n_in, batch, units, True, False, dt,
                             id=f"dW-{layer}-{dt}"),
                # dX = dz W^T: dz (batch, units), W stored (n_in, units)
                pytest.param("gemm dX", batch, units, n_in, False, True, dt,
                             id=f"dX-{layer}-{dt}"),
            ]


def _label(a, b, trans_a, trans_b):
    return (f"{a.shape[0]}x{a.shape[1]}{'^T' if trans_a else ''}"
            f"@{b.shape[0]}x{b.shape[1]}{'^T' if trans_b else ''}")


def _timed_call(backend, a, b, out, trans_a, trans_b):
    """(function, args, kwargs) of one product on ``backend``; for torch the tensors
    are made once, outside the timing."""
    if backend.name == "torch":
        torch = backend.torch
        ta, tb, tout = (torch.from_numpy(v) for v in (a, b, out))
        return torch.matmul, (ta.T if trans_a else ta, tb.T if trans_b else tb), {"out": tout}
    return backend.gemm, (a, b, out), {"trans_a": trans_a, "trans_b": trans_b}


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
@pytest.mark.parametrize("role, m, k, n, trans_a, trans_b, dtype", CASES,
                         indirect=["dtype"])
def test_gemm(benchmark, backend, describe, close, uniform, dtype, role, m, k, n,
              trans_a, trans_b):
    a = uniform((k, m) if trans_a else (m, k))
    b = uniform((n, k) if trans_b else (k, n))
    out = np.empty((m, n), dtype=dtype)
    describe(role, _label(a, b, trans_a, trans_b), flops=2 * m * n * k,
             m=m, n=n, k=k, trans_a=trans_a, trans_b=trans_b)

    fn, args, kwargs = _timed_call(backend, a, b, out, trans_a, trans_b)
    if m >= BIG:
        benchmark.pedantic(fn, args, kwargs, rounds=BIG_ROUNDS, iterations=1,
                           warmup_rounds=1)
    else:
        benchmark(fn, *args, **kwargs)

    # Checked against the product in float64: sums of k terms of size <= 1.
    opa = a.T if trans_a else a
    opb = b.T if trans_b else b
    expected = opa.astype(np.float64) @ opb.astype(np.float64)
    assert out.shape == (m, n) and out.dtype == dtype
    close(out, expected, "gemm", k=k)
