"""Layer normalisation over the last axis: forward (with gamma and beta) and backward
(dx, dgamma, dbeta) on a batch of 128 and of 4096 rows of 256 features (a transformer
block's width), results into preallocated arrays."""
import numpy as np
import pytest

SHAPES = [pytest.param((128, 256), id="128x256"), pytest.param((4096, 256), id="4096x256")]
RTOL, ATOL = 1e-4, 1e-5   # float32: a row's statistics, then elementwise


@pytest.mark.parametrize("shape", SHAPES)
def test_layer_norm_forward(benchmark, backend, describe, ref, uniform, shape):
    x, gamma, beta = uniform(shape, -3.0, 3.0), uniform(shape[-1:]), uniform(shape[-1:])
    out = np.empty_like(x)
    describe("layer_norm_forward", shape, elements=x.size)
    result = benchmark(backend.layer_norm_forward, x, gamma, beta, out)
    np.testing.assert_allclose(result, ref.layer_norm_forward(x, gamma, beta), rtol=RTOL,
                               atol=ATOL)


@pytest.mark.parametrize("shape", SHAPES)
def test_layer_norm_backward(benchmark, backend, describe, ref, uniform, shape):
    x, dy, gamma = uniform(shape, -3.0, 3.0), uniform(shape), uniform(shape[-1:])
    dx, dgamma, dbeta = np.empty_like(x), np.empty_like(gamma), np.empty_like(gamma)
    describe("layer_norm_backward", shape, elements=x.size)
    result = benchmark(backend.layer_norm_backward, dy, x, gamma, dx, dgamma, dbeta)
    for got, expected in zip(result, ref.layer_norm_backward(dy, x, gamma)):
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL * np.sqrt(shape[0]))
