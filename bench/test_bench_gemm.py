"""GEMM: ``out = op(a) @ op(b)`` on squares and on the shapes of a Dense layer.

The dense-layer cases are the three products of one layer of a 128-row batch:
forward ``x @ w``, and backward ``dw = x^T dz`` (``trans_a``) and ``dx = dz w^T``
(``trans_b``).  Group names give the stored operands, ``^T`` marking a transposed one.
"""
import numpy as np
import pytest

# (m, k, n, trans_a, trans_b): op(a) is (m, k), op(b) is (k, n)
CASES = [
    pytest.param(256, 256, 256, False, False, id="square256"),
    pytest.param(512, 512, 512, False, False, id="square512"),
    pytest.param(1024, 1024, 1024, False, False, id="square1024"),
    # Dense 784 -> 256 on a batch of 128
    pytest.param(128, 784, 256, False, False, id="fwd-128x784@784x256"),
    pytest.param(784, 128, 256, True, False, id="dw-128x784T@128x256"),
    pytest.param(128, 256, 784, False, True, id="dx-128x256@784x256T"),
    # Dense 256 -> 10 on a batch of 128
    pytest.param(128, 256, 10, False, False, id="fwd-128x256@256x10"),
    pytest.param(256, 128, 10, True, False, id="dw-128x256T@128x10"),
    pytest.param(128, 10, 256, False, True, id="dx-128x10@256x10T"),
]


def _label(a, b, trans_a, trans_b):
    return (f"{a.shape[0]}x{a.shape[1]}{'^T' if trans_a else ''}"
            f"@{b.shape[0]}x{b.shape[1]}{'^T' if trans_b else ''}")


@pytest.mark.parametrize("m, k, n, trans_a, trans_b", CASES)
def test_gemm(benchmark, backend, describe, uniform, m, k, n, trans_a, trans_b):
    a = uniform((k, m) if trans_a else (m, k))
    b = uniform((n, k) if trans_b else (k, n))
    out = np.empty((m, n), dtype=a.dtype)
    describe("gemm", _label(a, b, trans_a, trans_b), flops=2 * m * n * k,
             m=m, n=n, k=k, trans_a=trans_a, trans_b=trans_b)

    result = benchmark(backend.gemm, a, b, out, trans_a=trans_a, trans_b=trans_b)

    # Checked against the product in float64: float32 sums of k terms of size <= 1.
    opa = a.T if trans_a else a
    opb = b.T if trans_b else b
    expected = opa.astype(np.float64) @ opb.astype(np.float64)
    assert result.shape == (m, n) and result.dtype == np.float32
    np.testing.assert_allclose(result, expected, rtol=1e-4, atol=2e-6 * k)
