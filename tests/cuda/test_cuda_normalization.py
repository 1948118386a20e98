"""Layer normalisation on the cuda backend: forward and backward against the reference
on host and device arrays, with and without gamma/beta, in place, rank 3, and the
same bits on every call (no atomics)."""
import numpy as np
import pytest

from cuda_helpers import to_device, to_host
from kernel_helpers import assert_close
from kernels import reference as ref


def _data(rng, shape, dtype):
    return ((rng.standard_normal(shape) * 3 + 1).astype(dtype),
            rng.standard_normal(shape).astype(dtype))


@pytest.mark.parametrize("with_params", [True, False], ids=["gamma-beta", "none"])
@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (32, 32), (2, 3, 5)], ids=str)
def test_layer_norm_matches_reference(cuda, rng, dtype, shape, with_params):
    x, dy = _data(rng, shape, dtype)
    d = shape[-1]
    gamma = rng.uniform(0.5, 2, d).astype(dtype) if with_params else None
    beta = rng.standard_normal(d).astype(dtype) if with_params else None
    y = ref.layer_norm_forward(x, gamma, beta)
    grads = ref.layer_norm_backward(dy, x, gamma)
    assert_close(cuda.layer_norm_forward(x, gamma, beta), y, dtype, "reduction")
    for g, e in zip(cuda.layer_norm_backward(dy, x, gamma), grads):
        assert_close(g, e, dtype, "reduction")
    dev = [None if a is None else to_device(a) for a in (x, gamma, beta, dy)]
    assert_close(to_host(cuda.layer_norm_forward(dev[0], dev[1], dev[2])), y, dtype,
                 "reduction")
    got = cuda.layer_norm_backward(dev[3], dev[0], dev[1], dx=dev[3])     # dx in place
    assert got[0] is dev[3]
    for g, e in zip(got, grads):
        assert_close(to_host(g), e, dtype, "reduction")


def test_repeated_calls_give_the_same_bits(cuda, rng, dtype):
    x, dy = _data(rng, (32, 32), dtype)
    gamma = rng.uniform(0.5, 2, 32).astype(dtype)
    first = cuda.layer_norm_backward(dy, x, gamma)
    second = cuda.layer_norm_backward(dy, x, gamma)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
