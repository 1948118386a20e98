"""A Dense layer with relu on a batch of 128: forward ``relu(x @ w + b)`` and backward
``(dx, dw, db)`` with ``need_dx=True``.  The numpy backend is the "separate steps"
baseline (NumPy matmul, then bias, then activation); the cython backend fuses them.
Outputs are preallocated.
"""
import numpy as np
import pytest

# (batch, n_in, units)
SHAPES = [
    pytest.param(128, 784, 256, id="128x784-256"),
    pytest.param(128, 256, 10, id="128x256-10"),
    pytest.param(128, 128, 10, id="128x128-10"),
]


def _label(n, n_in, units):
    return f"{n}x{n_in}->{units}"


def _layer(uniform, n, n_in, units):
    x = uniform((n, n_in))
    w = uniform((n_in, units), -(n_in ** -0.5), n_in ** -0.5)
    b = uniform(units, -0.1, 0.1)
    return x, w, b


def _close(actual, expected, k):
    # float32 sums of k products of size <= 1
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=2e-6 * k)


@pytest.mark.parametrize("n, n_in, units", SHAPES)
def test_dense_forward(benchmark, backend, describe, ref, uniform, n, n_in, units):
    x, w, b = _layer(uniform, n, n_in, units)
    out = np.empty((n, units), dtype=x.dtype)
    describe("dense_forward relu", _label(n, n_in, units), flops=2 * n * n_in * units)

    result = benchmark(backend.dense_forward, x, w, b, out, activation="relu")

    _close(result, ref.dense_forward(x, w, b, activation="relu"), n_in)


@pytest.mark.parametrize("n, n_in, units", SHAPES)
def test_dense_backward(benchmark, backend, describe, ref, uniform, n, n_in, units):
    x, w, b = _layer(uniform, n, n_in, units)
    y = ref.dense_forward(x, w, b, activation="relu")
    dy = uniform((n, units))
    dx = np.empty_like(x)
    dw = np.empty_like(w)
    db = np.empty_like(b)
    describe("dense_backward relu", _label(n, n_in, units), flops=4 * n * n_in * units)

    result = benchmark(backend.dense_backward, dy, x, w, y, activation="relu",
                       dx=dx, dw=dw, db=db, need_dx=True)

    expected = ref.dense_backward(dy, x, w, y, activation="relu", need_dx=True)
    got_dx, got_dw, got_db = result
    _close(got_dx, expected[0], units)
    _close(got_dw, expected[1], n)
    _close(got_db, expected[2], n)
