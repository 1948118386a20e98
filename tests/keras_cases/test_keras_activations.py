"""Keras 3's ``keras/src/activations/activations_test.py``, ported for the activations dl
provides: the same inputs (drawn here from a seeded generator) and expected values (the
test file's own reference formulas), run through ``dl.activations`` on every backend
(numpy, cython and cuda, simulated without a GPU).  Each test names the Keras test it
comes from (``ActivationsTest.<method>``); a Keras test with several checks is split
into one case per check.

Not ported, outside dl's surface (docs/keras-differences.md "Activations"):
test_sparse_sigmoid, test_log_sigmoid, test_celu, test_glu, test_tanh_shrink,
test_hard_tanh, test_hard_shrink, test_threshold, test_squareplus, test_soft_shrink,
test_sparse_plus, test_sparsemax: dl has no such activations.

Deliberate difference: test_linear's int32 input comes back as floatx (dl's activations
run float kernels; Keras returns the ints).  The values are the same, which is what
the Keras case asserts.
"""
import numpy as np
import pytest
from scipy.stats import norm

import dl
from dl import activations

BACKENDS = ["numpy", "cython", "cuda"]


@pytest.fixture(params=BACKENDS)
def on_backend(request):
    try:
        dl.config.set_backend(request.param)
    except ImportError as exc:          # pragma: no cover - cuda without Numba
        pytest.skip(f"{request.param}: {exc}")
    yield request.param
    dl.config.set_backend(None)


@pytest.fixture
def rs():
    return np.random.default_rng(31)


def close(actual, desired, rtol=1e-5, atol=1e-6):
    # Keras's assertAllClose: rtol 1e-6 / atol 1e-6 unless the case gives rtol
    np.testing.assert_allclose(np.asarray(actual), desired, rtol=rtol, atol=atol)


# the test file's own reference formulas
def _ref_softmax(values):
    e = np.exp(values - np.max(values))
    return e / np.sum(e)


def _ref_log_softmax(values):
    z = values - np.max(values)
    return z - np.log(np.sum(np.exp(z)))


def _ref_softplus(x):
    return np.log(np.ones_like(x) + np.exp(x))


def _ref_sigmoid(x):
    if x >= 0:
        return 1 / (1 + np.exp(-x))
    z = np.exp(x)
    return z / (1 + z)


def _ref_hard_sigmoid(x):
    x = (x / 6.0) + 0.5
    return 0.0 if x <= 0 else (1.0 if x >= 1 else x)


def _ref_softsign(x):
    return np.divide(x, np.ones_like(x) + np.absolute(x))


def _ref_hard_silu(x):
    return x * np.minimum(np.maximum(0.0, x + 3.0), 6.0) * (1.0 / 6.0)


def _ref_relu6(x):
    return min(max(0, x), 6)


def _ref_silu(x):
    return x / (1 + np.exp(-x))


def _ref_leaky_relu(x, alpha=0.2):
    return x if x > 0 else alpha * x


# ---------------------------------------------------------------- softmax and log_softmax

def _per_slice(ref, x, lead):
    """ref applied to each x[i, j, ...] over the axes past the first ``lead``."""
    out = np.zeros_like(x)
    for idx in np.ndindex(*x.shape[:lead]):
        out[idx] = ref(x[idx])
    return out


@pytest.mark.parametrize("name, ref", [("softmax", _ref_softmax),
                                       ("log_softmax", _ref_log_softmax)])
class TestSoftmaxFamily:
    """ActivationsTest.test_softmax* and test_log_softmax*."""

    def test_default_axis(self, on_backend, rs, name, ref):
        # test_softmax (log_softmax: the same case)
        x = rs.random((2, 5))
        result = getattr(activations, name)(x[np.newaxis, :])[0]
        close(result[0], ref(x[0]))

    def test_2d_axis_0(self, on_backend, rs, name, ref):
        # test_softmax_2d_axis_0 / test_log_softmax_2d_axis_0
        x = rs.random((2, 5))
        result = getattr(activations, name)(x[np.newaxis, :], axis=1)[0]
        expected = np.zeros((2, 5))
        for i in range(5):
            expected[:, i] = ref(x[:, i])
        close(result, expected)

    def test_3d_axis_tuple(self, on_backend, rs, name, ref):
        # test_softmax_3d_axis_tuple / test_log_softmax_3d_axis_tuple
        x = rs.random((2, 3, 5))
        close(getattr(activations, name)(x, axis=(1, 2)), _per_slice(ref, x, 1))

    def test_1d(self, on_backend, rs, name, ref):
        # test_softmax_1d / test_log_softmax_1d
        x = rs.random(5)
        close(getattr(activations, name)(x), ref(x))

    def test_higher_dim(self, on_backend, rs, name, ref):
        # test_softmax_higher_dim / test_log_softmax_higher_dim
        x = rs.random((2, 3, 4, 5))
        close(getattr(activations, name)(x, axis=(2, 3)), _per_slice(ref, x, 2))

    def test_higher_dim_multiple_axes(self, on_backend, rs, name, ref):
        # test_softmax_higher_dim_multiple_axes / test_log_softmax_higher_dim_multiple_axes
        x = rs.random((2, 3, 4, 5, 6))
        close(getattr(activations, name)(x, axis=(2, 3, 4)), _per_slice(ref, x, 2))

    def test_negative_axis(self, on_backend, rs, name, ref):
        # test_softmax_negative_axis / test_log_softmax_negative_axis
        x = rs.random((2, 5))
        close(getattr(activations, name)(x, axis=-1), _per_slice(ref, x, 1))

    def test_temporal(self, on_backend, rs, name, ref):
        # test_temporal_softmax / test_temporal_log_softmax
        x = rs.random((2, 2, 3)) * 10
        result = getattr(activations, name)(x[np.newaxis, :])[0]
        close(result[0, 0], ref(x[0, 0]))


# ------------------------------------------------------------ elementwise activations

def test_selu(on_backend):
    """ActivationsTest.test_selu."""
    alpha = 1.6732632423543772848170429916717
    scale = 1.0507009873554804934193349852946
    positive = np.array([[1, 2]], dtype="float32")
    close(activations.selu(positive[np.newaxis, :])[0], positive * scale)
    negative = np.array([[-1, -2]], dtype="float32")
    close(activations.selu(negative[np.newaxis, :])[0],
          (np.exp(negative) - 1) * scale * alpha, rtol=1e-6)


# (low, high, shape) of the ranges Keras's tests draw from, one case each
RANGES = {
    "basic": (0, 1, (1, 2, 5)), "1d": (-10, 10, (5,)), "3d": (-10, 10, (3, 3, 3)),
    "near_zero": (-1e-7, 1e-7, (2, 5)), "large_positive": (10, 100, (2, 5)),
    "large_negative": (-100, -10, (2, 5)),
}
_vec = np.vectorize


@pytest.mark.parametrize("case", list(RANGES))
@pytest.mark.parametrize("name, ref", [
    ("softplus", _vec(_ref_softplus)),        # test_softplus
    ("softsign", _vec(_ref_softsign)),        # test_softsign
    ("sigmoid", _vec(_ref_sigmoid)),          # test_sigmoid
])
def test_smooth_activations_over_keras_ranges(on_backend, rs, name, ref, case):
    """ActivationsTest.test_softplus, test_softsign, test_sigmoid: each range a case."""
    low, high, shape = RANGES[case]
    x = rs.uniform(low, high, shape)
    close(getattr(activations, name)(x), ref(x))


@pytest.mark.parametrize("case", ["basic", "1d", "3d", "above_1", "below_0"])
def test_hard_sigmoid(on_backend, rs, case):
    """ActivationsTest.test_hard_sigmoid."""
    low, high, shape = {"basic": (0, 1, (1, 2, 5)), "1d": (-10, 10, (5,)),
                        "3d": (-10, 10, (3, 3, 3)), "above_1": (5, 10, (2, 5)),
                        "below_0": (-10, -5, (2, 5))}[case]
    x = rs.uniform(low, high, shape)
    expected = {"above_1": np.ones(shape), "below_0": np.zeros(shape)}.get(
        case, _vec(_ref_hard_sigmoid)(x))
    close(activations.hard_sigmoid(x), expected)


@pytest.mark.parametrize("case", ["basic", "1d", "3d", "above_3", "below_minus_3"])
def test_hard_silu(on_backend, rs, case):
    """ActivationsTest.test_hard_silu (float32 inputs, as there)."""
    low, high, shape = {"basic": (-3, 3, (1, 2, 5)), "1d": (-10, 10, (5,)),
                        "3d": (-10, 10, (3, 3, 3)), "above_3": (5, 10, (2, 5)),
                        "below_minus_3": (-10, -5, (2, 5))}[case]
    x = rs.uniform(low, high, shape).astype("float32")
    expected = {"above_3": x, "below_minus_3": np.zeros_like(x)}.get(
        case, _vec(_ref_hard_silu)(x))
    close(activations.hard_silu(x), expected)


# relu's parameters: ActivationsTest.test_relu_<...> on x = [-10, -5, 0, 5, 10]
RELU_PARAM_CASES = [
    ("negative_slope", {"negative_slope": 0.5}, [-5.0, -2.5, 0.0, 5.0, 10.0]),
    ("max_value", {"max_value": 5.0}, [0.0, 0.0, 0.0, 5.0, 5.0]),
    ("threshold", {"threshold": 5.0}, [-0.0, -0.0, 0.0, 0.0, 10.0]),
    ("combined_threshold_and_max_value", {"threshold": 5.0, "max_value": 5.0},
     [0.0, 0.0, 0.0, 0.0, 5.0]),
    ("combined_all_parameters",
     {"negative_slope": 0.5, "max_value": 5.0, "threshold": 5.0},
     [-7.5, -5.0, -2.5, 0.0, 5.0]),
    ("to_trigger_leaky", {"negative_slope": 0.5}, [-5.0, -2.5, 0.0, 5.0, 10.0]),
]


@pytest.mark.parametrize("test, kw, expected", RELU_PARAM_CASES,
                         ids=[c[0] for c in RELU_PARAM_CASES])
def test_relu_parameters(on_backend, test, kw, expected):
    """ActivationsTest.test_relu_negative_slope, _max_value, _threshold,
    _combined_threshold_and_max_value, _combined_all_parameters, _to_trigger_leaky."""
    x = np.array([-10, -5, 0.0, 5, 10])
    close(activations.relu(x, **kw), np.array(expected))


def test_relu_to_trigger_relu6(on_backend):
    """ActivationsTest.test_relu_to_trigger_relu6."""
    x = np.array([-10, -5, 0.0, 5, 10, 12])
    close(activations.relu(x, max_value=6.0), np.array([0.0, 0.0, 0.0, 5.0, 6.0, 6.0]))


@pytest.mark.parametrize("low, high, shape, want", [
    (0.1, 10, (1, 2, 5), "x"), (-10, -0.1, (1, 2, 5), "zeros"), (-10, 10, (5,), "max"),
    (-10, 10, (3, 3, 3), "max"), (-1e-7, 1e-7, (2, 5), "max"), (1e4, 1e5, (2, 5), "x"),
    (-1e5, -1e4, (2, 5), "zeros")])
def test_relu(on_backend, rs, low, high, shape, want):
    """ActivationsTest.test_relu: each of its seven checks."""
    x = rs.uniform(low, high, shape)
    expected = {"x": x, "zeros": np.zeros(shape), "max": np.maximum(0, x)}[want]
    close(activations.relu(x), expected)


@pytest.mark.parametrize("slope", [0.01, 0.3])
@pytest.mark.parametrize("sign", [1, -1])
def test_leaky_relu(on_backend, rs, slope, sign):
    """ActivationsTest.test_leaky_relu: positive and negative values, slopes 0.01, 0.3."""
    x = rs.random((2, 5)) if sign > 0 else rs.uniform(-1, 0, (2, 5))
    result = activations.leaky_relu(x[np.newaxis, :], negative_slope=slope)[0]
    close(result, _vec(_ref_leaky_relu)(x, alpha=slope))


@pytest.mark.parametrize("low, high", [(0, 5.9), (6.1, 10), (-1, 0)])
def test_relu6(on_backend, rs, low, high):
    """ActivationsTest.test_relu6."""
    x = rs.uniform(low, high, (2, 5))
    close(activations.relu6(x[np.newaxis, :])[0], _vec(_ref_relu6)(x))


@pytest.mark.parametrize("low, high", [(0, 5.9), (-1, 1), (-5.9, 0)])
def test_silu(on_backend, rs, low, high):
    """ActivationsTest.test_silu (and swish, Keras's other name of the function)."""
    x = rs.uniform(low, high, (2, 5))
    close(activations.silu(x[np.newaxis, :])[0], _vec(_ref_silu)(x))
    close(activations.swish(x), _vec(_ref_silu)(x))


@pytest.mark.parametrize("approximate", [False, True])
def test_gelu(on_backend, rs, approximate):
    """ActivationsTest.test_gelu."""
    x = rs.random((2, 5))
    if approximate:
        expected = 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi)
                                            * (x + 0.044715 * np.power(x, 3))))
    else:
        expected = x * norm.cdf(x)
    result = activations.gelu(x[np.newaxis, :], approximate=approximate)[0]
    close(result, expected)


def test_elu(on_backend, rs):
    """ActivationsTest.test_elu."""
    x = rs.random((2, 5))
    close(activations.elu(x[np.newaxis, :])[0], x)
    negative = np.array([[-1, -2]], dtype="float32")
    close(activations.elu(negative[np.newaxis, :])[0], np.exp(negative) - 1, rtol=1e-6)


TANH_EXP_MISH_RANGES = [(0, 1, (1, 2, 5)), (-10, 10, (1, 2, 5)), (-10, 10, (5,)),
                        (-10, 10, (3, 3, 3)), (0, 10, (2, 5)), (-10, 0, (2, 5)),
                        (-1e-7, 1e-7, (2, 5)), (1e4, 1e5, (2, 5))]


@pytest.mark.parametrize("low, high, shape", TANH_EXP_MISH_RANGES)
@pytest.mark.parametrize("name, formula", [
    ("tanh", np.tanh),                                          # test_tanh
    ("exponential", np.exp),                                    # test_exponential
    ("mish", lambda x: x * np.tanh(_ref_softplus(x))),          # test_mish
])
def test_tanh_exponential_mish(on_backend, rs, name, formula, low, high, shape):
    """ActivationsTest.test_tanh, test_exponential, test_mish: each range a case (the
    last, 1e4 to 1e5, is exp's overflow to inf)."""
    x = rs.uniform(low, high, shape)
    with np.errstate(over="ignore"):         # exp(1e4) is inf, as Keras's case expects
        expected = formula(x)
        got = getattr(activations, name)(x)
    close(got, expected)


@pytest.mark.parametrize("x", [
    np.random.default_rng(1).random((10, 5)),
    np.random.default_rng(2).uniform(-10, 10, 5),
    np.random.default_rng(3).uniform(-10, 10, (10, 5)),
    np.random.default_rng(4).uniform(-10, 10, (5, 5, 5)),
    np.random.default_rng(5).uniform(-10, 10, (10, 5)).astype(np.float32),
    np.random.default_rng(6).integers(-10, 10, (10, 5)).astype(np.int32),
], ids=["2d", "1d", "2d_wide", "3d", "float32", "int32"])
def test_linear(on_backend, x):
    """ActivationsTest.test_linear (the int32 input: see the module's docstring)."""
    close(activations.linear(x), x)


def test_get_method():
    """ActivationsTest.test_get_method."""
    assert activations.get("relu") == activations.relu
    assert activations.get(None) == activations.linear
    with pytest.raises(ValueError):
        activations.get("typo")
