"""Activations and their backprops: elementwise ones on 128x256 and 1024x1024,
softmax and log_softmax on rows of 10 and of 256 classes.

Forward: ``f(x, out)``.  Backprop: ``backprop_f(dy, y, out)`` from the saved output
``y`` (gelu takes its input ``x`` instead).  Results go to a preallocated ``out``.
"""
import numpy as np
import pytest

ELEMENTWISE = ["relu", "sigmoid", "tanh", "gelu", "silu", "mish", "selu", "hard_silu"]
ELEMENTWISE_SHAPES = [(128, 256), (1024, 1024)]
SOFTMAX_SHAPES = [(128, 10), (4096, 10), (128, 256), (4096, 256)]

CASES = ([pytest.param(name, shape, id=f"{name}-{shape[0]}x{shape[1]}")
          for name in ELEMENTWISE for shape in ELEMENTWISE_SHAPES]
         + [pytest.param(name, shape, id=f"{name}-{shape[0]}x{shape[1]}")
            for name in ("softmax", "log_softmax") for shape in SOFTMAX_SHAPES])

RTOL, ATOL = 2e-5, 1e-6  # float32: a few ulps of values of order 1


@pytest.mark.parametrize("name, shape", CASES)
def test_activation(benchmark, backend, describe, ref, uniform, name, shape):
    x = uniform(shape, -4.0, 4.0)
    out = np.empty_like(x)
    describe(name, shape, elements=x.size)

    result = benchmark(getattr(backend, name), x, out)

    expected = getattr(ref, name)(x)
    np.testing.assert_allclose(result, expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name, shape", CASES)
def test_activation_backprop(benchmark, backend, describe, ref, uniform, name, shape):
    x = uniform(shape, -4.0, 4.0)
    dy = uniform(shape)
    # gelu's backprop takes x (the reference's table says which do)
    saved = x if name in ref.ACTIVATIONS_NEEDING_INPUT else getattr(ref, name)(x)
    out = np.empty_like(x)
    kernel = f"backprop_{name}"
    describe(kernel, shape, elements=x.size)

    result = benchmark(getattr(backend, kernel), dy, saved, out)

    expected = getattr(ref, kernel)(dy, saved)
    np.testing.assert_allclose(result, expected, rtol=RTOL, atol=ATOL)
