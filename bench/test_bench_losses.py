"""Losses on a batch of 10 outputs (128 and 4096 rows): MSE and its gradient, binary
cross-entropy (from probabilities) and its gradient, and the fused softmax +
cross-entropy kernels (loss and gradient in one call, one-hot and integer labels).
Gradients go to a preallocated ``out``.
"""
import numpy as np
import pytest

SHAPES = [pytest.param((128, 10), id="128x10"), pytest.param((4096, 10), id="4096x10")]

RTOL, ATOL = 1e-4, 1e-7  # float32; losses are means, gradients carry a 1/size factor


def _check(result, expected):
    if isinstance(expected, tuple):
        assert isinstance(result, tuple) and len(result) == len(expected)
        for r, e in zip(result, expected):
            np.testing.assert_allclose(r, e, rtol=RTOL, atol=ATOL)
    else:
        np.testing.assert_allclose(result, expected, rtol=RTOL, atol=ATOL)


@pytest.fixture
def regression(uniform):
    def make(shape):
        return uniform(shape), uniform(shape)  # y_true, y_pred
    return make


@pytest.fixture
def probabilities(rng, uniform, dtype):
    def make(shape):
        y_true = (rng.random(shape) < 0.5).astype(dtype)  # 0/1 targets
        y_pred = uniform(shape, 0.01, 0.99)
        return y_true, y_pred
    return make


@pytest.mark.parametrize("shape", SHAPES)
def test_mean_squared_error(benchmark, backend, describe, ref, regression, shape):
    y_true, y_pred = regression(shape)
    describe("mean_squared_error", shape)
    result = benchmark(backend.mean_squared_error, y_true, y_pred)
    _check(result, ref.mean_squared_error(y_true, y_pred))


@pytest.mark.parametrize("shape", SHAPES)
def test_backprop_mean_squared_error(benchmark, backend, describe, ref, regression, shape):
    y_true, y_pred = regression(shape)
    out = np.empty_like(y_pred)
    describe("backprop_mean_squared_error", shape)
    result = benchmark(backend.backprop_mean_squared_error, y_true, y_pred, out)
    _check(result, ref.backprop_mean_squared_error(y_true, y_pred))


@pytest.mark.parametrize("shape", SHAPES)
def test_binary_crossentropy(benchmark, backend, describe, ref, probabilities, shape):
    y_true, y_pred = probabilities(shape)
    describe("binary_crossentropy", shape)
    result = benchmark(backend.binary_crossentropy, y_true, y_pred)
    _check(result, ref.binary_crossentropy(y_true, y_pred))


@pytest.mark.parametrize("shape", SHAPES)
def test_backprop_binary_crossentropy(benchmark, backend, describe, ref, probabilities,
                                      shape):
    y_true, y_pred = probabilities(shape)
    out = np.empty_like(y_pred)
    describe("backprop_binary_crossentropy", shape)
    result = benchmark(backend.backprop_binary_crossentropy, y_true, y_pred, out)
    _check(result, ref.backprop_binary_crossentropy(y_true, y_pred))


@pytest.fixture
def classification(rng, uniform, dtype):
    def make(shape):
        n, classes = shape
        labels = rng.integers(0, classes, size=n)
        one_hot = np.zeros(shape, dtype=dtype)
        one_hot[np.arange(n), labels] = 1
        logits = uniform(shape, -5.0, 5.0)
        return labels, one_hot, logits
    return make


@pytest.mark.parametrize("shape", SHAPES)
def test_softmax_crossentropy(benchmark, backend, describe, ref, classification, shape):
    _, one_hot, logits = classification(shape)
    out = np.empty_like(logits)
    describe("softmax_crossentropy", shape)
    result = benchmark(backend.softmax_crossentropy, one_hot, logits, out)
    _check(tuple(result), ref.softmax_crossentropy(one_hot, logits))


@pytest.mark.parametrize("shape", SHAPES)
def test_sparse_softmax_crossentropy(benchmark, backend, describe, ref, classification,
                                     shape):
    labels, _, logits = classification(shape)
    out = np.empty_like(logits)
    describe("sparse_softmax_crossentropy", shape)
    result = benchmark(backend.sparse_softmax_crossentropy, labels, logits, out)
    _check(tuple(result), ref.sparse_softmax_crossentropy(labels, logits))


# Keras's other losses: value and gradient (hinge on 0/1 labels, so its label
# conversion check runs too; kl_divergence on probabilities; the row losses
# categorical_hinge and cosine_similarity on one-hot targets)
MORE = ["hinge", "log_cosh", "poisson", "kl_divergence", "categorical_hinge",
        "cosine_similarity"]


@pytest.fixture
def more_inputs(probabilities, classification):
    def make(name, shape):
        if name in ("categorical_hinge", "cosine_similarity"):
            _, one_hot, logits = classification(shape)
            return one_hot, logits
        return probabilities(shape)
    return make


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", MORE)
def test_more_losses(benchmark, backend, describe, ref, more_inputs, name, shape):
    y_true, y_pred = more_inputs(name, shape)
    describe(name, shape)
    result = benchmark(getattr(backend, name), y_true, y_pred)
    _check(result, getattr(ref, name)(y_true, y_pred))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", MORE)
def test_more_losses_backprop(benchmark, backend, describe, ref, more_inputs, name, shape):
    y_true, y_pred = more_inputs(name, shape)
    out = np.empty_like(y_pred)
    describe("backprop_" + name, shape)
    result = benchmark(getattr(backend, "backprop_" + name), y_true, y_pred, out)
    _check(result, getattr(ref, "backprop_" + name)(y_true, y_pred))
