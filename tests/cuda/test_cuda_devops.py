"""``backend.ops``: the array operations dl uses besides the kernels, on the host
(kernels._hostops) and on the device (kernels.cuda.devops), give the same numbers."""
import numpy as np
import pytest

import kernels
from cuda_helpers import to_device
from kernels import _hostops as host


@pytest.fixture
def dev(cuda):
    return cuda.ops


def test_backends_carry_their_ops(cuda):
    assert kernels.get_backend("numpy").ops is host
    assert kernels.get_backend("cython").ops is host
    assert cuda.ops.on_device and not host.on_device
    assert cuda.on_device and not kernels.get_backend("cython").on_device


def test_same_names(dev):
    names = {n for n in dir(host) if not n.startswith("_") and callable(getattr(host, n))}
    names.discard("np")
    missing = [n for n in names if not callable(getattr(dev, n, None))]
    assert not missing


def test_alloc_and_transfers(dev, dtype):
    z = dev.zeros((3, 4), dtype)
    np.testing.assert_array_equal(dev.to_host(z), np.zeros((3, 4), dtype))
    f = dev.full((2,), 0.1, dtype)
    np.testing.assert_array_equal(dev.to_host(f), np.full(2, 0.1, dtype))
    e = dev.empty((5,), dtype)
    assert e.shape == (5,) and e.dtype == dtype
    dev.copy_from_host(e, np.arange(5, dtype=dtype))
    np.testing.assert_array_equal(dev.to_host(e), np.arange(5, dtype=dtype))
    labels = dev.to_device(np.array([3, 1, 2], np.int32))
    assert labels.dtype == np.int64


def test_take_rows(dev, rng, dtype):
    x = rng.standard_normal((9, 2, 3)).astype(dtype)
    idx = np.array([8, 0, 3, 3], np.int64)
    out = dev.empty((4, 2, 3), dtype)
    dev.take_rows(dev.to_device(x), dev.to_device(idx), out)
    np.testing.assert_array_equal(dev.to_host(out),
                                  host.take_rows(x, idx, np.empty((4, 2, 3), dtype)))
    y = np.array([5, 6, 7, 8, 9, 0, 1, 2, 3], np.int64)
    yo = dev.empty((4,), np.int64)
    dev.take_rows(dev.to_device(y), dev.to_device(idx), yo)
    np.testing.assert_array_equal(dev.to_host(yo), y[idx])


def test_accumulators(dev, cuda, rng, dtype):
    acc = dev.acc_new()
    for v, w in [(1.5, 3), (2.25, 1)]:
        loss = cuda.mean_squared_error(to_device(np.zeros(2, dtype)),
                                       to_device(np.full(2, np.sqrt(v), dtype)))
        dev.acc_add(acc, loss, float(w), float(w))
    s, c = dev.acc_read(acc)
    assert c == 4.0
    assert s == pytest.approx(1.5 * 3 + 2.25, rel=1e-6)
    dev.acc_reset(acc)
    assert dev.acc_read(acc) == (0.0, 0.0)


@pytest.mark.parametrize("kind", ["sparse_categorical_accuracy", "categorical_accuracy",
                                  "binary_accuracy", "mean_squared_error",
                                  "mean_absolute_error"])
def test_metric_update_matches_dl_metrics(dev, rng, dtype, kind):
    import dl
    n, k = 37, (1 if kind == "binary_accuracy" else 5)
    y_pred = rng.random((n, k)).astype(dtype)
    if kind == "sparse_categorical_accuracy":
        y_true = rng.integers(0, k, n)
    elif kind == "categorical_accuracy":
        y_true = np.eye(k, dtype=dtype)[rng.integers(0, k, n)]
    elif kind == "binary_accuracy":
        y_true = rng.integers(0, 2, (n, 1)).astype(dtype)
    else:
        y_true = rng.random((n, k)).astype(dtype)
    metric = dl.metrics.get(kind)
    metric.update_state(y_true, y_pred)
    acc = dev.acc_new()
    dev.metric_update(kind, dev.to_device(y_true), dev.to_device(y_pred), acc)
    s, c = dev.acc_read(acc)
    assert c == n
    assert s / c == pytest.approx(metric.result(), rel=1e-6, abs=1e-7)


def test_penalties_and_clipping(dev, rng, dtype):
    w = rng.standard_normal((6, 7)).astype(dtype)
    g = rng.standard_normal((6, 7)).astype(dtype)
    acc_h, acc_d = host.acc_new(), dev.acc_new()
    host.penalty_add(acc_h, w, 0.01, 0.02)
    dev.penalty_add(acc_d, dev.to_device(w), 0.01, 0.02)
    assert dev.acc_read(acc_d)[0] == pytest.approx(host.acc_read(acc_h)[0], rel=1e-6)
    gh, gd = g.copy(), dev.to_device(g)
    host.penalty_grad(w, gh, 0.01, 0.02)
    dev.penalty_grad(dev.to_device(w), gd, 0.01, 0.02)
    np.testing.assert_allclose(dev.to_host(gd), gh, rtol=1e-6)
    host.clip_value(gh, 0.5)
    dev.clip_value(gd, 0.5)
    np.testing.assert_allclose(dev.to_host(gd), gh, rtol=1e-6)
    acc_h, acc_d = host.acc_new(), dev.acc_new()
    host.sum_squares(gh, acc_h)
    dev.sum_squares(gd, acc_d)
    host.scale_to_norm(gh, acc_h, 0.3)
    dev.scale_to_norm(gd, acc_d, 0.3)
    np.testing.assert_allclose(dev.to_host(gd), gh, rtol=1e-5)
    assert np.linalg.norm(gh) == pytest.approx(0.3, rel=1e-5)


def test_all_finite_and_multiply(dev, dtype):
    a = np.ones((3, 3), dtype)
    b = a.copy()
    b[1, 2] = np.nan
    assert dev.all_finite([dev.to_device(a)])
    assert not dev.all_finite([dev.to_device(a), dev.to_device(b)])
    out = dev.empty((3, 3), dtype)
    dev.multiply(dev.to_device(a * 3), dev.to_device(a * 0.5), out)
    np.testing.assert_array_equal(dev.to_host(out), a * 1.5)


@pytest.mark.parametrize("op", host.BINARY_OPS)
def test_binary_ops(dev, dtype, op):
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(6, 5)).astype(dtype), rng.normal(size=(6, 5)).astype(dtype)
    a[0, 0] = b[0, 0]
    a[1, 1] = np.nan
    b[2, 2] = np.nan
    want = host.binary(op, a, b, np.empty_like(a))
    got = dev.to_host(dev.binary(op, to_device(a), to_device(b), dev.empty(a.shape, dtype)))
    np.testing.assert_array_equal(got, want)


def test_select_grad(dev, dtype):
    rng = np.random.default_rng(4)
    a, b, dy = (rng.normal(size=(4, 7)).astype(dtype) for _ in range(3))
    a[0, :3] = b[0, :3]                  # ties: half each
    a[1, 0] = np.nan                     # NaN: all to b
    da, db = host.select_grad(a, b, dy, np.empty_like(a), np.empty_like(a))
    np.testing.assert_array_equal(da[0, :3], dy[0, :3] * np.dtype(dtype).type(0.5))
    assert da[1, 0] == 0 and db[1, 0] == dy[1, 0]
    np.testing.assert_array_equal(da + db, dy)
    d_da, d_db = dev.empty(a.shape, dtype), dev.empty(a.shape, dtype)
    dev.select_grad(to_device(a), to_device(b), to_device(dy), d_da, d_db)
    np.testing.assert_array_equal(dev.to_host(d_da), da)
    np.testing.assert_array_equal(dev.to_host(d_db), db)


def test_columns_and_permute(dev, dtype):
    rng = np.random.default_rng(5)
    src = rng.normal(size=(3, 4)).astype(dtype)
    dst = np.zeros((3, 9), dtype)
    host.place_cols(src, dst, 2)
    d_dst = to_device(np.zeros((3, 9), dtype))
    dev.place_cols(to_device(src), d_dst, 2)
    np.testing.assert_array_equal(dev.to_host(d_dst), dst)
    np.testing.assert_array_equal(dst[:, 2:6], src)
    back = dev.take_cols(d_dst, 2, dev.empty((3, 4), dtype))
    np.testing.assert_array_equal(dev.to_host(back), src)
    x = rng.normal(size=(2, 3, 4, 5)).astype(dtype)
    for axes in [(0, 2, 1, 3), (0, 3, 1, 2), (3, 2, 1, 0)]:
        want = np.ascontiguousarray(np.transpose(x, axes))
        out = host.permute(x, axes, np.empty(want.shape, dtype))
        np.testing.assert_array_equal(out, want)
        got = dev.permute(to_device(x), axes, dev.empty(want.shape, dtype))
        np.testing.assert_array_equal(dev.to_host(got), want)


@pytest.mark.filterwarnings("ignore:divide by zero")    # the simulator's x / 0
@pytest.mark.parametrize("op", host.UNARY_OPS)
def test_unary_ops_and_gradients(dev, dtype, op):
    rng = np.random.default_rng(6)
    x = rng.normal(size=(5, 4)).astype(dtype)
    x[0, :3] = [0.0, -0.0, 2.5]
    dy = rng.normal(size=(5, 4)).astype(dtype)
    with np.errstate(all="ignore"):
        y = host.unary(op, x, np.empty_like(x))
        g = host.unary_grad(op, x, y, dy, np.empty_like(x))
    d_y = dev.unary(op, to_device(x), dev.empty(x.shape, dtype))
    d_g = dev.unary_grad(op, to_device(x), d_y, to_device(dy), dev.empty(x.shape, dtype))
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(dev.to_host(d_y), y, rtol=rtol)
    np.testing.assert_allclose(dev.to_host(d_g), g, rtol=rtol)


def test_to_labels(dev):
    x = np.array([0.0, 3.0, 7.0], np.float32)
    out = dev.to_labels(to_device(x), dev.empty((3,), np.int64))
    np.testing.assert_array_equal(dev.to_host(out), [0, 3, 7])
    np.testing.assert_array_equal(host.to_labels(x, np.empty(3, np.int64)), [0, 3, 7])
