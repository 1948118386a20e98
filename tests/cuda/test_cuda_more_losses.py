"""Keras's other losses on the cuda backend (hinge ... cosine_similarity): values and
gradients against the reference, host and device arrays, with and without sample
weights, out in place; hinge's label conversion decided on the device; NaN and
non-positive predictions as the reference gives them.  Small shapes (the simulator)."""
import numpy as np
import pytest

from cuda_helpers import to_device, to_host
from kernel_helpers import assert_close
from kernels import reference as ref

NAMES = ["hinge", "squared_hinge", "poisson", "log_cosh", "mean_absolute_percentage_error",
         "mean_squared_logarithmic_error", "kl_divergence", "categorical_hinge",
         "cosine_similarity"]


def _inputs(rng, name, shape, dtype):
    """targets and predictions that suit the loss (some outside its clips and maxima)."""
    if name in ("hinge", "squared_hinge"):
        t = rng.integers(0, 2, size=shape).astype(float)
        t = t if name == "hinge" else 2 * t - 1          # 0/1 (converted) or -1/1
        return t.astype(dtype), (rng.standard_normal(shape) * 1.5).astype(dtype)
    if name in ("poisson", "mean_squared_logarithmic_error"):
        low = 0.01 if name == "poisson" else -0.5
        return (rng.uniform(0, 4, shape).astype(dtype),
                rng.uniform(low, 4, shape).astype(dtype))
    if name == "kl_divergence":
        return (rng.uniform(0, 1, shape).astype(dtype),
                rng.uniform(-0.05, 1.05, shape).astype(dtype))
    if name == "categorical_hinge":
        t = np.eye(shape[1])[rng.integers(0, shape[1], shape[0])]
        return t.astype(dtype), (rng.standard_normal(shape) * 2).astype(dtype)
    return ((rng.standard_normal(shape) * 2).astype(dtype),
            (rng.standard_normal(shape) * 2).astype(dtype))


def _value(x):
    return to_host(x)[()] if not isinstance(x, np.generic) else x


@pytest.mark.parametrize("weighted", [False, True], ids=["", "weighted"])
@pytest.mark.parametrize("name", NAMES)
def test_loss_and_gradient_match_reference(cuda, rng, dtype, name, weighted):
    shape = (7, 13) if name in ref.ROW_LOSSES else (9, 5)
    t, p = _inputs(rng, name, shape, dtype)
    kw = {"sample_weight": rng.uniform(0, 2, shape[0]).astype(dtype)} if weighted else {}
    expected = getattr(ref, name)(t, p, **kw)
    e_grad = getattr(ref, "backprop_" + name)(t, p, **kw)
    assert_close(getattr(cuda, name)(t, p, **kw), expected, dtype, "reduction")
    assert_close(getattr(cuda, "backprop_" + name)(t, p, **kw), e_grad, dtype, "reduction")
    dkw = {k: to_device(v) for k, v in kw.items()}
    dt, dp = to_device(t), to_device(p)
    assert_close(_value(getattr(cuda, name)(dt, dp, **dkw)), expected, dtype, "reduction")
    assert getattr(cuda, "backprop_" + name)(dt, dp, out=dp, **dkw) is dp      # in place
    assert_close(to_host(dp), e_grad, dtype, "reduction")


@pytest.mark.parametrize("labels", [[[0.0, 1.0], [1.0, 0.0]], [[-1.0, 1.0], [1.0, 0.0]]],
                         ids=["0/1: converted", "with -1: as given"])
@pytest.mark.parametrize("name", ["hinge", "squared_hinge"])
def test_hinge_label_conversion_on_the_device(cuda, dtype, name, labels):
    t = np.array(labels, dtype)
    p = np.array([[0.3, -0.8], [1.5, 0.2]], dtype)
    expected = getattr(ref, name)(t, p)
    assert_close(_value(getattr(cuda, name)(to_device(t), to_device(p))), expected, dtype,
                 "reduction")


def test_non_finite_and_non_positive_predictions(cuda, dtype):
    """NaN propagates; poisson's log of a prediction at or below -1e-7 is -inf or NaN,
    as the reference's (and no exception in the simulator)."""
    t = np.array([[1.0, 2.0, 0.5]], dtype)
    for p in (np.array([[np.nan, 1.0, 2.0]], dtype), np.array([[-0.5, 1.0, 2.0]], dtype)):
        for name in ("poisson", "log_cosh", "kl_divergence", "mean_squared_logarithmic_error"):
            with np.errstate(all="ignore"):
                expected = getattr(ref, name)(t, p)
                e_grad = getattr(ref, "backprop_" + name)(t, p)
            got = getattr(cuda, name)(t, p)
            assert np.isnan(got) == np.isnan(expected), (name, p)
            if not np.isnan(expected):
                assert_close(got, expected, dtype, "reduction")
            with np.errstate(all="ignore"):
                grad = getattr(cuda, "backprop_" + name)(t, p)
            np.testing.assert_array_equal(np.isnan(grad), np.isnan(e_grad))
