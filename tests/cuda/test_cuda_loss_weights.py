"""The cuda twin's loss kernels with ``sample_weight``, host and device calls, against
the reference (itself checked row by row in tests/kernels/test_loss_weights.py)."""
import numpy as np
import pytest

from cuda_helpers import to_device, to_host
from kernel_helpers import assert_close
from kernels import reference as ref

CASES = [("mean_squared_error", {}), ("mean_absolute_error", {}),
         ("huber", {"delta": 0.3}), ("binary_crossentropy", {}),
         ("binary_crossentropy", {"from_logits": True}),
         ("categorical_crossentropy", {}), ("categorical_crossentropy", {"from_logits": True}),
         ("sparse_categorical_crossentropy", {}),
         ("sparse_categorical_crossentropy", {"from_logits": True})]
IDS = [n + "".join(f"-{k}={v}" for k, v in kw.items()) for n, kw in CASES]


def _inputs(rng, name, kw, shape, dtype):
    n, c = shape
    logits = kw.get("from_logits", False)
    p = rng.standard_normal(shape) * 3 if logits else rng.uniform(0.05, 0.95, size=shape)
    if name.startswith("sparse"):
        return rng.integers(0, c, size=n), p.astype(dtype)
    if name.startswith("categorical"):
        return np.eye(c)[rng.integers(0, c, size=n)].astype(dtype), p.astype(dtype)
    if name == "binary_crossentropy":
        return rng.uniform(size=shape).astype(dtype), p.astype(dtype)
    return rng.standard_normal(shape).astype(dtype), (rng.standard_normal(shape) * 2).astype(dtype)


def _weights(rng, n, dtype):
    w = rng.uniform(0, 2, size=n)
    w[::3] = 0.0
    return w.astype(dtype)


@pytest.mark.parametrize("shape", [(7, 13), (31, 1)])
@pytest.mark.parametrize("case", range(len(CASES)), ids=IDS)
def test_weighted_losses_host_and_device(cuda, rng, dtype, case, shape):
    name, kw = CASES[case]
    if name.startswith(("categorical", "sparse")) and shape[1] == 1:
        shape = (9, 4)
    t, p = _inputs(rng, name, kw, shape, dtype)
    w = _weights(rng, shape[0], dtype)
    expected = getattr(ref, name)(t, p, sample_weight=w, **kw)
    e_grad = getattr(ref, "backprop_" + name)(t, p, sample_weight=w, **kw)
    assert_close(getattr(cuda, name)(t, p, sample_weight=w, **kw), expected, dtype,
                 "reduction")
    assert_close(getattr(cuda, "backprop_" + name)(t, p, sample_weight=w, **kw), e_grad,
                 dtype, "reduction")
    dt, dp, dw = to_device(t.astype(np.int64) if name.startswith("sparse") else t), \
        to_device(p), to_device(w)
    assert_close(to_host(getattr(cuda, name)(dt, dp, sample_weight=dw, **kw))[()], expected,
                 dtype, "reduction")
    assert_close(to_host(getattr(cuda, "backprop_" + name)(dt, dp, sample_weight=dw, **kw)),
                 e_grad, dtype, "reduction")


def test_weighted_fused_softmax_crossentropies(cuda, rng, dtype):
    z = (rng.standard_normal((9, 5)) * 3).astype(dtype)
    w = _weights(rng, 9, dtype)
    y = np.eye(5)[rng.integers(0, 5, 9)].astype(dtype)
    for fn, t in (("softmax_crossentropy", y),
                  ("sparse_softmax_crossentropy", rng.integers(0, 5, 9))):
        e_loss, e_grad = getattr(ref, fn)(t, z, sample_weight=w)
        loss, grad = getattr(cuda, fn)(t, z, sample_weight=w)
        assert_close(loss, e_loss, dtype, "reduction")
        assert_close(grad, e_grad, dtype, "reduction")


def test_weights_must_live_where_the_other_arrays_do(cuda):
    y = np.zeros((4, 3))
    with pytest.raises(TypeError, match="^sample_weight: expected a device array"):
        cuda.mean_squared_error(to_device(y), to_device(y), sample_weight=np.ones(4))
    with pytest.raises(ValueError, match="^sample_weight: expected 4 weights"):
        cuda.mean_squared_error(y, y, sample_weight=np.ones(3))
