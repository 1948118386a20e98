"""Layer normalisation: the cython kernels against the reference for every shape,
parameter combination, layout and thread count (1 and 2 threads bit-identical), in
place, and the reference against Keras's formula written out by hand.  Gradients are
checked against finite differences in test_gradients.py, bad inputs in
test_bad_inputs.py."""
import numpy as np
import pytest

from kernels import reference as ref

from kernel_helpers import assert_close, check_out, normal, with_layout

SHAPES = [(1,), (1, 1), (5,), (7, 13), (3, 4, 5), (300, 70)]
PARAMS = ["gamma-beta", "gamma", "beta", "none"]


def _params(rng, d, dtype, which):
    gamma = normal(rng, (d,), dtype) if "gamma" in which else None
    beta = normal(rng, (d,), dtype) if "beta" in which else None
    return gamma, beta


@pytest.mark.parametrize("which", PARAMS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_forward_and_backward_match_reference(cy, dtype, threads, rng, shape, which):
    x = normal(rng, shape, dtype, scale=3.0) + dtype.type(1.0)
    dy = normal(rng, shape, dtype)
    gamma, beta = _params(rng, shape[-1], dtype, which)
    x0, dy0 = x.copy(), dy.copy()
    assert_close(cy.layer_norm_forward(x, gamma, beta), ref.layer_norm_forward(x, gamma, beta),
                 dtype, "reduction")
    got = cy.layer_norm_backward(dy, x, gamma)
    expected = ref.layer_norm_backward(dy, x, gamma)
    for g, e, name in zip(got, expected, ("dx", "dgamma", "dbeta")):
        assert_close(g, e, dtype, "reduction", err_msg=name,
                     scale=1.0 if name == "dx" else float(np.sqrt(x.size // shape[-1])))
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(dy, dy0)


def test_keras_formula_by_hand(backend, dtype):
    """Keras 3's ops.layer_normalization: inv = rsqrt(var + eps) * gamma, y = x * inv +
    (beta - mean * inv), the variance biased."""
    x = np.array([[1.0, 2.0, 4.0], [-3.0, 0.0, 3.0]], dtype)
    gamma = np.array([1.0, 0.5, 2.0], dtype)
    beta = np.array([0.0, 1.0, -1.0], dtype)
    m = x.mean(axis=1, keepdims=True)
    v = ((x - m) ** 2).mean(axis=1, keepdims=True)
    expected = (x - m) / np.sqrt(v + 1e-3) * gamma + beta
    assert_close(backend.layer_norm_forward(x, gamma, beta), expected, dtype, "reduction")
    # a constant row: 0 (x - mean), then beta
    c = np.full((1, 3), 7.0, dtype)
    assert_close(backend.layer_norm_forward(c, gamma, beta), beta[None], dtype, "reduction")


def test_in_place(cy, dtype, two_threads, rng):
    x = normal(rng, (6, 9), dtype)
    dy = normal(rng, (6, 9), dtype)
    gamma, beta = _params(rng, 9, dtype, "gamma-beta")
    y = ref.layer_norm_forward(x, gamma, beta)
    dx, dg, db = ref.layer_norm_backward(dy, x, gamma)
    xi = x.copy()
    check_out(cy.layer_norm_forward(xi, gamma, beta, out=xi), xi)
    assert_close(xi, y, dtype, "reduction")
    for alias in ("dy", "x"):
        a, b = dy.copy(), x.copy()
        target = a if alias == "dy" else b
        res = cy.layer_norm_backward(a, b, gamma, dx=target)
        check_out(res[0], target)
        assert_close(target, dx, dtype, "reduction", err_msg=alias)
        assert_close(res[1], dg, dtype, "reduction")
        assert_close(res[2], db, dtype, "reduction")


@pytest.mark.parametrize("layout", ["F", "cols3", "negboth"])
def test_strided_inputs_and_outputs(cy, dtype, two_threads, rng, layout):
    x = normal(rng, (7, 13), dtype)
    dy = normal(rng, (7, 13), dtype)
    gamma, beta = _params(rng, 13, dtype, "gamma-beta")
    y = ref.layer_norm_forward(x, gamma, beta)
    grads = ref.layer_norm_backward(dy, x, gamma)
    xs, dys = with_layout(x, layout), with_layout(dy, layout)
    assert_close(cy.layer_norm_forward(xs, gamma, beta), y, dtype, "reduction")
    out = with_layout(np.zeros_like(x), layout)
    assert cy.layer_norm_forward(xs, gamma, beta, out=out) is out
    assert_close(out, y, dtype, "reduction")
    for g, e in zip(cy.layer_norm_backward(dys, xs, gamma), grads):
        assert_close(g, e, dtype, "reduction")


def test_one_and_two_threads_give_the_same_bits(cy, rng, dtype):
    import kernels
    from kernels.cpu import _threads
    x = normal(rng, (257, 130), dtype)
    dy = normal(rng, (257, 130), dtype)
    gamma, beta = _params(rng, 130, dtype, "gamma-beta")
    results = []
    old_threads, old_min = kernels.get_num_threads(), _threads.set_min_parallel_work(1)
    try:
        for n in (1, 2):
            kernels.set_num_threads(n)
            results.append((cy.layer_norm_forward(x, gamma, beta),)
                           + cy.layer_norm_backward(dy, x, gamma))
    finally:
        kernels.set_num_threads(old_threads)
        _threads.set_min_parallel_work(old_min)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
