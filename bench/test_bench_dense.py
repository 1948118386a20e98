"""Dense layers of the MLP 784 -> 256 (relu) -> 128 (relu) -> 10 on batches of 32, 128
and 256, float32 and float64: forward ``act(x @ w + b)`` and backward ``(dx, dw, db)``
with ``need_dx=True``.  The 128 -> 10 layer is linear: in training its softmax is fused
with the loss, so the layer itself computes logits.

The numpy backend is the "separate steps" baseline (NumPy matmul, then bias, then
activation); the cython backend fuses them.  Outputs are preallocated.  ``flops``
counts the products only (2 n n_in units forward, twice that backward).
"""
import numpy as np
import pytest

DTYPES = ["float32", "float64"]

# (batch, n_in, units, activation)
LAYERS = [(784, 256, "relu"), (256, 128, "relu"), (128, 10, "linear")]
SHAPES = [pytest.param(batch, n_in, units, act, id=f"{batch}x{n_in}-{units}")
          for batch in (32, 128, 256) for n_in, units, act in LAYERS]

pytestmark = pytest.mark.parametrize("dtype", DTYPES, indirect=True)


def _label(n, n_in, units):
    return f"{n}x{n_in}->{units}"


def _layer(uniform, n, n_in, units):
    x = uniform((n, n_in))
    w = uniform((n_in, units), -(n_in ** -0.5), n_in ** -0.5)
    b = uniform(units, -0.1, 0.1)
    return x, w, b


@pytest.mark.parametrize("n, n_in, units, activation", SHAPES)
def test_dense_forward(benchmark, backend, describe, close, ref, uniform, dtype,
                       n, n_in, units, activation):
    x, w, b = _layer(uniform, n, n_in, units)
    out = np.empty((n, units), dtype=dtype)
    describe(f"dense_forward {activation}", _label(n, n_in, units),
             flops=2 * n * n_in * units)

    result = benchmark(backend.dense_forward, x, w, b, out, activation=activation)

    assert result.dtype == dtype
    close(result, ref.dense_forward(x, w, b, activation=activation), "gemm", k=n_in)


@pytest.mark.parametrize("n, n_in, units, activation", SHAPES)
def test_dense_backward(benchmark, backend, describe, close, ref, uniform, dtype,
                        n, n_in, units, activation):
    x, w, b = _layer(uniform, n, n_in, units)
    y = ref.dense_forward(x, w, b, activation=activation)
    dy = uniform((n, units))
    dx = np.empty_like(x)
    dw = np.empty_like(w)
    db = np.empty_like(b)
    describe(f"dense_backward {activation}", _label(n, n_in, units),
             flops=4 * n * n_in * units)

    result = benchmark(backend.dense_backward, dy, x, w, y, activation=activation,
                       dx=dx, dw=dw, db=db, need_dx=True)

    expected = ref.dense_backward(dy, x, w, y, activation=activation, need_dx=True)
    got_dx, got_dw, got_db = result
    close(got_dx, expected[0], "gemm", k=units)
    close(got_dw, expected[1], "gemm", k=n)
    close(got_db, expected[2], "gemm", k=n)
