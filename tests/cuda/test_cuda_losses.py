"""The cuda backend's losses against the NumPy reference: host and device calls.

A host call returns a NumPy scalar (a gradient: a NumPy array), a device call a 0-d
device array (a gradient: a device array); both are reduced on the device in a fixed
order, so repeated calls are bit-identical.  Under Numba's simulator every CUDA thread
is a Python thread: shapes stay small and each test makes few calls.
"""
import numpy as np
import pytest

from cuda_helpers import SHAPES_2D, SIMULATOR, to_device, to_host
from kernel_helpers import assert_close
from kernels import reference as ref

ELEMENTWISE = [("mean_squared_error", {}), ("mean_absolute_error", {}),
               ("huber", {"delta": 0.3}), ("binary_crossentropy", {}),
               ("binary_crossentropy", {"from_logits": True})]
ELEMENTWISE_IDS = [n + "".join(f"-{k}={v}" for k, v in kw.items()) for n, kw in ELEMENTWISE]
# host shape, device shape of each elementwise case (1-D and 2-D, the uneven one)
ELEMENTWISE_SHAPES = [((7, 13), (31,)), ((31,), (7, 13)), ((32, 32), (1,)),
                      ((7, 13), (1, 1)), ((1, 1), (32, 32))]
ROW_SHAPES = SHAPES_2D[1:]          # (7, 13), (32, 32) (+ the larger ones on a GPU)


def _is_device(x):
    from kernels.cuda import _nb
    return _nb.is_device_array(x)


def _inputs(rng, name, kw, shape, dtype):
    """y_true, y_pred for a loss (as tests/kernels/kernel_cases.py draws them)."""
    logits = kw.get("from_logits", False)
    if name in ("mean_squared_error", "mean_absolute_error", "huber"):
        t = rng.standard_normal(shape) * 2
        p = rng.standard_normal(shape) * 2
        p.flat[0] = t.flat[0]                 # a zero error (MAE's sign, huber's kink)
        return t.astype(dtype), p.astype(dtype)
    if name == "binary_crossentropy":
        y = rng.uniform(0, 1, size=shape)
        u = rng.uniform(size=shape)
        y = np.where(u < 0.3, 0.0, np.where(u > 0.7, 1.0, y))
        p = rng.standard_normal(shape) * 4 if logits else rng.uniform(0.01, 0.99, size=shape)
        if not logits and p.size > 1:
            p.flat[1] = 1e-9                  # the clip is active there
        return y.astype(dtype), p.astype(dtype)
    n, c = shape                              # categorical: one-hot and soft rows
    y = np.eye(c)[rng.integers(0, c, size=n)]
    soft = rng.uniform(size=n) < 0.3
    y[soft] = rng.dirichlet(np.ones(c), size=int(soft.sum()))
    p = rng.standard_normal(shape) * 3 if logits else rng.uniform(0.05, 1.0, size=shape)
    return y.astype(dtype), p.astype(dtype)


def _check_loss(got, expected, dtype, device, msg=""):
    if device:
        assert _is_device(got) and got.shape == (), msg
        got = to_host(got)[()]
    assert type(got) is np.dtype(dtype).type, msg
    assert_close(got, expected, dtype, "reduction", err_msg=msg)


# ------------------------------------------------------------ elementwise losses

@pytest.mark.parametrize("case", range(len(ELEMENTWISE)), ids=ELEMENTWISE_IDS)
def test_elementwise_loss(cuda, rng, dtype, case):
    """Host call (value, gradient) and device call (value, gradient in place: out is
    y_pred) against the reference, on a 1-D and a 2-D shape."""
    name, kw = ELEMENTWISE[case]
    host_shape, dev_shape = ELEMENTWISE_SHAPES[case]
    loss, backprop = getattr(cuda, name), getattr(cuda, "backprop_" + name)
    t, p = _inputs(rng, name, kw, host_shape, dtype)
    t0, p0 = t.copy(), p.copy()
    _check_loss(loss(t, p, **kw), getattr(ref, name)(t, p, **kw), dtype, False, name)
    grad = backprop(t, p, **kw)
    assert isinstance(grad, np.ndarray)
    assert_close(grad, getattr(ref, "backprop_" + name)(t, p, **kw), dtype, "reduction")
    np.testing.assert_array_equal(t, t0)
    np.testing.assert_array_equal(p, p0)

    t, p = _inputs(rng, name, kw, dev_shape, dtype)
    dt, dp = to_device(t), to_device(p)
    _check_loss(loss(dt, dp, **kw), getattr(ref, name)(t, p, **kw), dtype, True, name)
    assert backprop(dt, dp, out=dp, **kw) is dp                    # in place
    assert_close(to_host(dp), getattr(ref, "backprop_" + name)(t, p, **kw), dtype,
                 "reduction")
    np.testing.assert_array_equal(to_host(dt), t)


def test_elementwise_gradient_into_y_true_and_host_out(cuda, rng, dtype):
    """out may be y_true for an elementwise loss; a given host out is written and
    returned, whatever its layout."""
    t, p = _inputs(rng, "huber", {}, (7, 13), dtype)
    expected = ref.backprop_huber(t, p, delta=2.0)
    tt = t.copy()
    assert cuda.backprop_huber(tt, p, out=tt, delta=2.0) is tt
    assert_close(tt, expected, dtype, "reduction")
    out = np.full((13, 7), np.nan, dtype).T                         # F-ordered
    assert cuda.backprop_huber(t, p, out, delta=2.0) is out
    assert_close(out, expected, dtype, "reduction")


# ------------------------------------------------------------ categorical

@pytest.mark.parametrize("from_logits", [False, True], ids=["probs", "logits"])
def test_categorical_crossentropy(cuda, rng, dtype, from_logits):
    kw = {"from_logits": from_logits}
    for i, shape in enumerate(ROW_SHAPES):
        y, p = _inputs(rng, "categorical_crossentropy", kw, shape, dtype)
        e_val = ref.categorical_crossentropy(y, p, **kw)
        e_grad = ref.backprop_categorical_crossentropy(y, p, **kw)
        if i % 2 == 0:          # host: value, gradient into a given out
            _check_loss(cuda.categorical_crossentropy(y, p, **kw), e_val, dtype, False)
            out = np.full_like(p, np.nan)
            assert cuda.backprop_categorical_crossentropy(y, p, out, **kw) is out
            assert_close(out, e_grad, dtype, "reduction")
        else:                   # device: value, gradient in place (out is y_pred)
            dy, dp = to_device(y), to_device(p)
            _check_loss(cuda.categorical_crossentropy(dy, dp, **kw), e_val, dtype, True)
            assert cuda.backprop_categorical_crossentropy(dy, dp, out=dp, **kw) is dp
            assert_close(to_host(dp), e_grad, dtype, "reduction")
    with pytest.raises(ValueError, match="^out: must not share memory with y_true"):
        cuda.backprop_categorical_crossentropy(y, p, out=y, **kw)


def test_softmax_crossentropy(cuda, rng, dtype):
    """The fused loss and gradient: host (gradient into the logits, in place) and
    device (a new gradient, then a given out)."""
    y, z = _inputs(rng, "categorical_crossentropy", {"from_logits": True}, (7, 13), dtype)
    e_loss, e_grad = ref.softmax_crossentropy(y, z)
    zz = z.copy()
    loss, grad = cuda.softmax_crossentropy(y, zz, out=zz)
    assert grad is zz
    _check_loss(loss, e_loss, dtype, False)
    assert_close(grad, e_grad, dtype, "reduction")

    dy, dz = to_device(y), to_device(z)
    loss, grad = cuda.softmax_crossentropy(dy, dz)
    _check_loss(loss, e_loss, dtype, True)
    assert _is_device(grad)
    assert_close(to_host(grad), e_grad, dtype, "reduction")
    np.testing.assert_array_equal(to_host(dz), z)
    out = to_device(np.full_like(z, np.nan))
    assert cuda.softmax_crossentropy(dy, dz, out)[1] is out
    assert_close(to_host(out), e_grad, dtype, "reduction")


# ------------------------------------------------------------ sparse labels

def _labels(rng, n, c):
    lab = rng.integers(0, c, size=n)
    lab[0] = c - 1
    return lab


@pytest.mark.parametrize("from_logits", [False, True], ids=["probs", "logits"])
def test_sparse_categorical_crossentropy(cuda, rng, dtype, from_logits):
    """Host labels (int32 column, float) validated as the reference does; device
    labels int64, (n,) and (n, 1)."""
    kw = {"from_logits": from_logits}
    n, c = 7, 13
    lab = _labels(rng, n, c)
    p = (rng.standard_normal((n, c)) * 3 if from_logits
         else rng.uniform(0.05, 1.0, (n, c))).astype(dtype)
    e_val = ref.sparse_categorical_crossentropy(lab, p, **kw)
    e_grad = ref.backprop_sparse_categorical_crossentropy(lab, p, **kw)
    host_lab = lab.astype(np.int32).reshape(n, 1)
    _check_loss(cuda.sparse_categorical_crossentropy(host_lab, p, **kw), e_val, dtype, False)
    grad = cuda.backprop_sparse_categorical_crossentropy(lab.astype(np.float64), p, **kw)
    assert_close(grad, e_grad, dtype, "reduction")

    dlab, dp = to_device(lab.astype(np.int64)), to_device(p)
    _check_loss(cuda.sparse_categorical_crossentropy(dlab, dp, **kw), e_val, dtype, True)
    dcol = to_device(lab.astype(np.int64).reshape(n, 1))
    assert cuda.backprop_sparse_categorical_crossentropy(dcol, dp, dp, **kw) is dp
    assert_close(to_host(dp), e_grad, dtype, "reduction")
    with pytest.raises(ValueError, match=r"^y_true: expected class labels in \[0, 13\)"):
        cuda.sparse_categorical_crossentropy(np.full(n, 13), p, **kw)


def test_sparse_softmax_crossentropy(cuda, rng, dtype):
    n, c = 32, 32
    lab = _labels(rng, n, c)
    z = (rng.standard_normal((n, c)) * 3).astype(dtype)
    e_loss, e_grad = ref.sparse_softmax_crossentropy(lab, z)
    loss, grad = cuda.sparse_softmax_crossentropy(lab.reshape(n, 1), z)
    _check_loss(loss, e_loss, dtype, False)
    assert_close(grad, e_grad, dtype, "reduction")
    dz = to_device(z)
    loss, grad = cuda.sparse_softmax_crossentropy(to_device(lab), dz, out=dz)   # in place
    _check_loss(loss, e_loss, dtype, True)
    assert grad is dz
    assert_close(to_host(dz), e_grad, dtype, "reduction")


def test_out_of_range_device_label_is_nan_not_a_crash(cuda, rng, dtype):
    """Device labels are not read on the host: the kernel guards the range, and a
    row with a bad label gets a NaN loss (so the mean is NaN) and a NaN gradient row;
    the other rows are computed as usual."""
    n, c = 5, 4
    lab = np.array([1, c, 0, -1, 3], np.int64)
    ok = np.array([True, False, True, False, True])
    z = rng.standard_normal((n, c)).astype(dtype)
    good = np.where(ok, lab, 0)
    _, e_grad = ref.sparse_softmax_crossentropy(good, z)
    loss, grad = cuda.sparse_softmax_crossentropy(to_device(lab), to_device(z))
    assert np.isnan(to_host(loss))
    grad = to_host(grad)
    assert np.isnan(grad[~ok]).all()
    assert_close(grad[ok], e_grad[ok], dtype, "reduction")
    p = rng.uniform(0.1, 1.0, (n, c)).astype(dtype)
    e_grad = ref.backprop_sparse_categorical_crossentropy(good, p)
    grad = to_host(cuda.backprop_sparse_categorical_crossentropy(to_device(lab), to_device(p)))
    assert np.isnan(grad[~ok]).all()
    assert_close(grad[ok], e_grad[ok], dtype, "reduction")


# ------------------------------------------------------------ the reduction

def test_multi_block_reduction_is_deterministic(cuda, rng):
    """Sizes that need several partial sums (elements beyond one block, rows beyond
    one block): right values, and two calls (host or device) bit-identical.  (The
    block code does not depend on the dtype: float32 only, to spare the simulator.)"""
    dtype = np.dtype(np.float32)
    n = 1500                                   # 2 blocks of 256 threads x 4 elements
    t, p = (rng.standard_normal(n).astype(dtype) for _ in range(2))
    first = cuda.mean_squared_error(t, p)
    _check_loss(first, ref.mean_squared_error(t, p), dtype, False)
    again = to_host(cuda.mean_squared_error(to_device(t), to_device(p)))
    assert again.tobytes() == np.asarray(first).tobytes()

    y, z = _inputs(rng, "categorical_crossentropy", {"from_logits": True}, (300, 2), dtype)
    dy, dz = to_device(y), to_device(z)        # 300 rows: 2 blocks
    first = to_host(cuda.softmax_crossentropy(dy, dz)[0])
    _check_loss(first[()], ref.softmax_crossentropy(y, z)[0], dtype, False)
    again = to_host(cuda.categorical_crossentropy(dy, dz, from_logits=True))
    assert again.tobytes() == first.tobytes()


def test_launches_per_call(cuda, rng):
    """A loss: partial sums + the final one-block sum; a gradient: one launch; the fused
    loss and gradient: one row pass + the final sum."""
    from kernels.cuda.backend import launches
    y, z = _inputs(rng, "categorical_crossentropy", {"from_logits": True}, (3, 4), np.float32)
    dy, dz = to_device(y), to_device(z)
    for fn, args, expected in [
            (cuda.mean_absolute_error, (dy, dz), 2),
            (cuda.backprop_mean_absolute_error, (dy, dz), 1),
            (cuda.softmax_crossentropy, (dy, dz), 2)]:
        before = launches.count
        fn(*args)
        assert launches.count - before == expected, fn.__name__


# ------------------------------------------------------------ non-finite values

def _nonfinite(fn, *args, **kw):
    with np.errstate(all="ignore"):
        return fn(*args, **kw)


def _same(got, expected, dtype):
    got, expected = np.asarray(got), np.asarray(expected)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    assert_close(got, expected, dtype, "reduction")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # the simulator's NumPy scalars
def test_non_finite_values_follow_the_reference(cuda, dtype):
    """NaN and infinities in the inputs give the reference's values (its documented
    rules for infinite targets and logits, undefined normalised rows)."""
    inf, nan = np.inf, np.nan
    # elementwise gradients, element by element
    t = np.array([0.5, inf, 0.2, -inf, nan, 0.3, 1.0], dtype)
    p = np.array([inf, 0.5, nan, -inf, 0.3, -inf, 0.0], dtype)
    for name, kw in ELEMENTWISE:
        fn = "backprop_" + name
        _same(_nonfinite(getattr(cuda, fn), t, p, **kw),
              _nonfinite(getattr(ref, fn), t, p, **kw), dtype)
    # categorical from logits: infinite targets (term by term), -inf logits; rows
    # grouped so that each call's mean is +inf, -inf and NaN
    y = np.array([[inf, 0.5, 0.0], [inf, 0.3, 0.2], [-inf, 0.5, 0.0], [inf, -inf, 0.0],
                  [1.0, 0.0, 0.0]], dtype)
    z = np.array([[0.5, 0.3, 0.1], [0.5, -inf, 0.1], [0.5, 0.3, 0.1], [0.5, 0.3, 0.1],
                  [0.5, -inf, nan]], dtype)
    for rows in (slice(0, 2), slice(2, 3), slice(3, 5)):
        loss, grad = _nonfinite(cuda.softmax_crossentropy, y[rows], z[rows])
        e_loss, e_grad = _nonfinite(ref.softmax_crossentropy, y[rows], z[rows])
        _same(loss, e_loss, dtype)
        _same(grad, e_grad, dtype)
    _same(_nonfinite(cuda.backprop_categorical_crossentropy, y, z, from_logits=True),
          _nonfinite(ref.backprop_categorical_crossentropy, y, z, from_logits=True), dtype)
    # sparse from probabilities: inf / inf, -inf, 0 / 0 rows are NaN; an overflowing sum
    big = np.finfo(dtype).max * 0.75
    lab = np.array([0, 0, 1, 0, 1])
    p = np.array([[0.5, inf], [0.2, 0.3], [inf, 0.5], [0.5, -inf], [big, big]], dtype)
    _same(_nonfinite(cuda.backprop_sparse_categorical_crossentropy, lab, p),
          _nonfinite(ref.backprop_sparse_categorical_crossentropy, lab, p), dtype)
    _same(_nonfinite(cuda.sparse_categorical_crossentropy, lab[4:], p[4:]),
          _nonfinite(ref.sparse_categorical_crossentropy, lab[4:], p[4:]), dtype)
    # sparse from logits: a -inf logit is a class of probability 0
    z = np.array([[0.5, -inf], [0.5, -inf]], dtype)
    lab = np.array([0, 1])
    for rows in (slice(0, 1), slice(0, 2)):
        loss, grad = _nonfinite(cuda.sparse_softmax_crossentropy, lab[rows], z[rows])
        e_loss, e_grad = _nonfinite(ref.sparse_softmax_crossentropy, lab[rows], z[rows])
        _same(loss, e_loss, dtype)
        _same(grad, e_grad, dtype)


# ------------------------------------------------------------ bad calls

def test_mixing_host_and_device_is_a_type_error(cuda):
    t = np.ones((3, 4), np.float32)
    with pytest.raises(TypeError, match=r"^y_true: expected a device array like y_pred"):
        cuda.mean_squared_error(t, to_device(t))
    with pytest.raises(TypeError, match=r"^out: expected a device array"):
        cuda.backprop_huber(to_device(t), to_device(t), out=t)
    with pytest.raises(TypeError, match=r"^y_true: expected a device array like logits"):
        cuda.sparse_softmax_crossentropy(np.zeros(3, np.int64), to_device(t))
    with pytest.raises(TypeError, match=r"^y_true: expected a device array like y_pred"):
        cuda.sparse_categorical_crossentropy(np.zeros(3, np.int64), to_device(t))


def test_device_labels_must_be_int64(cuda):
    p = to_device(np.full((3, 4), 0.25, np.float32))
    for dt in (np.int32, np.float32, np.uint8):
        with pytest.raises(TypeError, match=r"^y_true: expected int64 class labels"):
            cuda.sparse_categorical_crossentropy(to_device(np.zeros(3, dt)), p)
    with pytest.raises(ValueError, match=r"^y_true: expected shape \(3,\) or \(3, 1\)"):
        cuda.backprop_sparse_categorical_crossentropy(to_device(np.zeros((3, 2), np.int64)), p)
    with pytest.raises(ValueError, match=r"^y_true: expected 3 labels"):
        cuda.sparse_softmax_crossentropy(to_device(np.zeros(4, np.int64)), p)
    with pytest.raises(ValueError, match=r"^y_true: expected a C-contiguous device array"):
        cuda.sparse_softmax_crossentropy(to_device(np.zeros(6, np.int64))[::2], p)
    with pytest.raises(TypeError, match=r"^y_true: expected a numpy.ndarray of integer"):
        cuda.sparse_categorical_crossentropy([0, 1, 2], p)       # as the reference says


def test_device_checks_match_the_reference(cuda):
    p = to_device(np.ones((3, 4), np.float32))
    with pytest.raises(TypeError, match=r"^y_true: expected dtype float32"):
        cuda.huber(to_device(np.ones((3, 4))), p)
    with pytest.raises(ValueError, match=r"^y_true: expected shape \(3, 4\)"):
        cuda.categorical_crossentropy(to_device(np.ones((4, 3), np.float32)), p)
    with pytest.raises(ValueError, match=r"^y_pred: expected a 2-D array"):
        cuda.categorical_crossentropy(to_device(np.ones(3, np.float32)),
                                      to_device(np.ones(3, np.float32)))
    with pytest.raises(ValueError, match=r"^delta: expected a value > 0.0"):
        cuda.huber(p, p, delta=0.0)
    with pytest.raises(TypeError, match=r"^from_logits: expected True or False"):
        cuda.binary_crossentropy(p, p, from_logits=1)
    with pytest.raises(ValueError, match=r"^y_pred: expected a C-contiguous device array"):
        cuda.mean_squared_error(p.T, p.T)
    with pytest.raises(ValueError, match=r"^out: must not share memory with y_true"):
        cuda.softmax_crossentropy(p, to_device(np.ones((3, 4), np.float32)), out=p)


@pytest.mark.skipif(SIMULATOR, reason="larger shapes: real GPU only")
@pytest.mark.parametrize("shape", [(1000, 10), (4096, 1000), (100_003, 7)], ids=str)
def test_large_shapes(cuda, rng, dtype, shape):
    """Full grids: REDUCE_BLOCKS partial sums, grid-stride rows."""
    for name, kw in ELEMENTWISE[:2] + [("categorical_crossentropy", {"from_logits": True})]:
        t, p = _inputs(rng, name, kw, shape, dtype)
        _check_loss(getattr(cuda, name)(to_device(t), to_device(p), **kw),
                    getattr(ref, name)(t, p, **kw), dtype, True, name)
    lab = _labels(rng, shape[0], shape[1])
    z = rng.standard_normal(shape).astype(dtype)
    e_loss, e_grad = ref.sparse_softmax_crossentropy(lab, z)
    loss, grad = cuda.sparse_softmax_crossentropy(to_device(lab), to_device(z))
    _check_loss(loss, e_loss, dtype, True)
    assert_close(to_host(grad), e_grad, dtype, "reduction")
