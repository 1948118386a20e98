"""The convolution family on the shapes of Keras's simple MNIST convnet (batch 128,
float32), and a whole ``fit`` epoch of that convnet.

Kernels, each against the NumPy reference (numpy / cython / cuda backends), outputs
preallocated, checked after timing:

- ``conv2d_forward`` / ``conv2d_backward`` of the convnet's two layers, relu fused:
  conv1 = 1 -> 32 channels, 3x3 valid on 28x28 (backward with ``need_dx=False``: fit
  asks the first layer for no dx); conv2 = 32 -> 64, 3x3 valid on 13x13 (backward with
  dx).  PyTorch runs in the same groups: ``torch`` is ``torch.nn.functional.conv2d``
  then ``relu`` on NCHW tensors (PyTorch's eager default), ``torch_cl`` the same on
  channels_last tensors (images and kernel); the backward is autograd of that same
  op (``torch.autograd.grad`` from dy, the graph kept between rounds) with the same
  need for dx.  The forward runs under ``torch.no_grad()`` (the kernels' forward keeps
  nothing for autograd either).  Its inputs are converted before timing.
- ``max_pool2d`` 2x2 forward (out and int32 argmax) and backward on (128, 26, 26, 32)
  and (128, 11, 11, 64); ``avg_pool2d`` 2x2, ``global_avg_pool2d`` and
  ``global_max_pool2d`` forward and backward on (128, 11, 11, 64).
- ``depthwise_conv2d`` 3x3 "same", relu, depth multiplier 1 on (128, 13, 13, 32);
  ``conv1d`` (128, 100, 32) -> 64, k=5 "same", relu; forward and backward (with dx).
- ``batch_norm_forward`` (training: batch statistics, moving statistics updated in
  place), ``batch_norm_inference`` and ``batch_norm_backward`` on (128, 13, 13, 32)
  and (128, 256), gamma and beta given.

``flops`` (the products only) is recorded for the convolutions: forward ``2 M K N`` (M
output pixels, K = kh kw cin per group, N filters), backward the same for dw plus the
same again for dx when it is asked for.

The epoch (``fit convnet 1 epoch ...``): Conv2D 32 3x3 relu, MaxPooling2D 2, Conv2D 64
3x3 relu, MaxPooling2D 2, Flatten, Dropout 0.5, Dense 10 softmax; Adam; sparse
categorical cross-entropy; batch 128; 60000 random 28x28x1 float32 images in [0, 1)
generated once per session, labels 0-9 the argmax of a fixed random linear map of the
images' 4x4 block means (something a convnet can learn).  The cython backend (numpy
would take many minutes an epoch: not run), cuda where it loads, a hand-written
PyTorch eager loop of the same network, initialisation (glorot uniform, zero biases),
optimizer (Keras's Adam defaults, eps 1e-7), batches and epoch on NCHW tensors
(``torch``), and tf.keras where TensorFlow is installed (``tf_keras``; its train step
is traced and compiled by a short fit on 224 samples, batches of 128 and the final 96,
before timing).  ONE round each (an epoch takes 10-30 s on a 2-core machine): read
them as single measurements.  extra_info records the epoch's GFLOP (forward ``2 M K
N`` of each convolution and of the Dense layer, backward twice that, conv1 without
dx), its GFLOP/s, and our GEMM's GFLOP/s on a 1024^3 float32 product (the cython
backend's ``gemm``, median of 5, measured just before the epoch with the same
threads): ``gemm_floor_seconds`` = epoch GFLOP / GEMM GFLOP/s, the time the epoch's
products would take at GEMM speed, and ``fraction_of_gemm_floor`` = that / the
epoch's time.  The torch case also records ``torch.matmul``'s GFLOP/s on the same
product.  Checked after timing: the epoch's loss is finite and the loss on the first
4096 images went down from the untrained model's.
"""
import math
import statistics
import time

import numpy as np
import pytest

import dl

BATCH = 128
WITH_TORCH = ["numpy", "cython", "cuda", "torch", "torch_cl"]

# The convnet's two convolutions: (input shape, filters, need_dx); 3x3 valid, relu.
CONV_LAYERS = [pytest.param((BATCH, 28, 28, 1), 32, False, id="conv1"),
               pytest.param((BATCH, 13, 13, 32), 64, True, id="conv2")]
MAX_POOL_SHAPES = [pytest.param((BATCH, 26, 26, 32), id="26x26x32"),
                   pytest.param((BATCH, 11, 11, 64), id="11x11x64")]
POOL_SHAPE = (BATCH, 11, 11, 64)
DEPTHWISE_SHAPE = (BATCH, 13, 13, 32)
CONV1D_SHAPE, CONV1D_FILTERS, CONV1D_K = (BATCH, 100, 32), 64, 5
BN_SHAPES = [pytest.param((BATCH, 13, 13, 32), id="128x13x13x32"),
             pytest.param((BATCH, 256), id="128x256")]
BN_RTOL, BN_ATOL = 1e-4, 1e-5   # per-channel statistics, then elementwise (as layer norm)

# the epoch
N_IMAGES, IMAGE, N_CLASSES = 60000, (28, 28, 1), 10
EPOCH_ROUNDS = 1
CHECK_ROWS = 4096
GEMM_N, GEMM_REPS = 1024, 5
TF_WARMUP = BATCH + N_IMAGES % BATCH   # one full batch and the epoch's last, partial one


def _glorot(uniform, shape, fan_in, fan_out):
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return uniform(shape, -limit, limit)


def _conv_weights(uniform, kh, kw, cin, cout):
    return (_glorot(uniform, (kh, kw, cin, cout), kh * kw * cin, kh * kw * cout),
            uniform(cout, -0.1, 0.1))


def _conv_flops(m, k, n, need_dx=None):
    """Forward ``2 m k n``; with need_dx given, the backward: dw, and dx when asked."""
    if need_dx is None:
        return 2 * m * k * n
    return 2 * m * k * n * (2 if need_dx else 1)


def _conv_label(shape, filters, k):
    return f"{'x'.join(map(str, shape))}->{filters} k{k}"


# ----------------------------------------------------------------- PyTorch side

def _torch_images(backend, a):
    """An NHWC array as an NCHW tensor: contiguous NCHW for ``torch``, the array's own
    memory (NHWC is channels_last) for ``torch_cl``."""
    torch = backend.torch
    t = torch.from_numpy(a).permute(0, 3, 1, 2)
    if backend.channels_last:
        return t.contiguous(memory_format=torch.channels_last)
    return t.contiguous()


def _torch_kernel(backend, w):
    """Keras's (kh, kw, cin, cout) kernel as PyTorch's (cout, cin, kh, kw) weight."""
    torch = backend.torch
    t = torch.from_numpy(w).permute(3, 2, 0, 1)
    if backend.channels_last:
        return t.contiguous(memory_format=torch.channels_last)
    return t.contiguous()


def _nhwc(t):
    return t.detach().permute(0, 2, 3, 1).numpy()


# ------------------------------------------------------------------- conv2d

@pytest.mark.parametrize("backend", WITH_TORCH, indirect=True)
@pytest.mark.parametrize("shape, filters, need_dx", CONV_LAYERS)
def test_conv2d_forward(benchmark, backend, describe, close, ref, uniform, shape, filters,
                        need_dx):
    n, h, w_, cin = shape
    x = uniform(shape, 0.0, 1.0)
    w, b = _conv_weights(uniform, 3, 3, cin, filters)
    oh, ow = h - 2, w_ - 2
    m, k = n * oh * ow, 9 * cin
    describe("conv2d_forward relu", _conv_label(shape, filters, 3),
             flops=_conv_flops(m, k, filters))

    if hasattr(backend, "torch"):
        torch = backend.torch
        F = torch.nn.functional
        xt, wt, bt = _torch_images(backend, x), _torch_kernel(backend, w), torch.from_numpy(b)
        with torch.no_grad():
            result = _nhwc(benchmark(lambda: F.relu(F.conv2d(xt, wt, bt))))
    else:
        out = np.empty((n, oh, ow, filters), np.float32)
        result = benchmark(backend.conv2d_forward, x, w, b, out, activation="relu")

    assert result.shape == (n, oh, ow, filters)
    close(result, ref.conv2d_forward(x, w, b, activation="relu"), "gemm", k=k)


@pytest.mark.parametrize("backend", WITH_TORCH, indirect=True)
@pytest.mark.parametrize("shape, filters, need_dx", CONV_LAYERS)
def test_conv2d_backward(benchmark, backend, describe, close, ref, uniform, shape, filters,
                         need_dx):
    n, h, w_, cin = shape
    x = uniform(shape, 0.0, 1.0)
    w, b = _conv_weights(uniform, 3, 3, cin, filters)
    y = ref.conv2d_forward(x, w, b, activation="relu")
    dy = uniform(y.shape)
    m, k = n * (h - 2) * (w_ - 2), 9 * cin
    describe(f"conv2d_backward relu {'dx' if need_dx else 'no dx'}",
             _conv_label(shape, filters, 3), flops=_conv_flops(m, k, filters, need_dx),
             need_dx=need_dx)

    if hasattr(backend, "torch"):
        torch = backend.torch
        F = torch.nn.functional
        xt = _torch_images(backend, x).requires_grad_(need_dx)
        wt = _torch_kernel(backend, w).requires_grad_(True)
        bt = torch.from_numpy(b.copy()).requires_grad_(True)
        yt = F.relu(F.conv2d(xt, wt, bt))
        dyt = _torch_images(backend, dy)
        inputs = (xt, wt, bt) if need_dx else (wt, bt)
        grads = benchmark(torch.autograd.grad, yt, inputs, grad_outputs=dyt,
                          retain_graph=True)
        got_dx = _nhwc(grads[0]) if need_dx else None
        got_dw = grads[-2].detach().permute(2, 3, 1, 0).numpy()
        got_db = grads[-1].detach().numpy()
    else:
        dx = np.empty_like(x) if need_dx else None
        dw, db = np.empty_like(w), np.empty_like(b)
        got_dx, got_dw, got_db = benchmark(backend.conv2d_backward, dy, x, w, y,
                                           activation="relu", dx=dx, dw=dw, db=db,
                                           need_dx=need_dx)

    exp_dx, exp_dw, exp_db = ref.conv2d_backward(dy, x, w, y, activation="relu",
                                                 need_dx=need_dx)
    if need_dx:
        close(got_dx, exp_dx, "gemm", k=9 * filters)
    else:
        assert got_dx is None and exp_dx is None
    close(got_dw, exp_dw, "gemm", k=m)
    close(got_db, exp_db, "gemm", k=m)


# ------------------------------------------------------------------ pooling

@pytest.mark.parametrize("shape", MAX_POOL_SHAPES)
def test_max_pool2d_forward(benchmark, backend, describe, ref, uniform, shape):
    x = uniform(shape)
    n, h, w, c = shape
    out = np.empty((n, h // 2, w // 2, c), np.float32)
    argmax = np.empty(out.shape, np.int32)
    describe("max_pool2d_forward 2x2", shape, elements=x.size)
    got, got_argmax = benchmark(backend.max_pool2d_forward, x, out, argmax, pool_size=2)
    expected, exp_argmax = ref.max_pool2d_forward(x, pool_size=2)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got_argmax, exp_argmax)


@pytest.mark.parametrize("shape", MAX_POOL_SHAPES)
def test_max_pool2d_backward(benchmark, backend, describe, ref, uniform, shape):
    x = uniform(shape)
    _, argmax = ref.max_pool2d_forward(x, pool_size=2)
    dy = uniform(argmax.shape)
    dx = np.empty_like(x)
    describe("max_pool2d_backward 2x2", shape, elements=x.size)
    result = benchmark(backend.max_pool2d_backward, dy, argmax, dx, pool_size=2)
    # windows do not overlap: each cell receives at most one dy, so the bits agree
    np.testing.assert_array_equal(result, ref.max_pool2d_backward(dy, argmax,
                                                                  np.empty_like(x),
                                                                  pool_size=2))


def test_avg_pool2d_forward(benchmark, backend, describe, close, ref, uniform):
    x = uniform(POOL_SHAPE)
    n, h, w, c = POOL_SHAPE
    out = np.empty((n, h // 2, w // 2, c), np.float32)
    describe("avg_pool2d_forward 2x2", POOL_SHAPE, elements=x.size)
    result = benchmark(backend.avg_pool2d_forward, x, out, pool_size=2)
    close(result, ref.avg_pool2d_forward(x, pool_size=2))


def test_avg_pool2d_backward(benchmark, backend, describe, close, ref, uniform):
    n, h, w, c = POOL_SHAPE
    dy = uniform((n, h // 2, w // 2, c))
    dx = np.empty(POOL_SHAPE, np.float32)
    describe("avg_pool2d_backward 2x2", POOL_SHAPE, elements=dx.size)
    result = benchmark(backend.avg_pool2d_backward, dy, dx, pool_size=2)
    close(result, ref.avg_pool2d_backward(dy, np.empty_like(dx), pool_size=2))


def test_global_avg_pool2d_forward(benchmark, backend, describe, close, ref, uniform):
    x = uniform(POOL_SHAPE)
    n, h, w, c = POOL_SHAPE
    out = np.empty((n, c), np.float32)
    describe("global_avg_pool2d_forward", POOL_SHAPE, elements=x.size)
    result = benchmark(backend.global_avg_pool2d_forward, x, out)
    close(result, ref.global_avg_pool2d_forward(x), "gemm", k=h * w)


def test_global_avg_pool2d_backward(benchmark, backend, describe, close, ref, uniform):
    n, h, w, c = POOL_SHAPE
    dy = uniform((n, c))
    dx = np.empty(POOL_SHAPE, np.float32)
    describe("global_avg_pool2d_backward", POOL_SHAPE, elements=dx.size)
    result = benchmark(backend.global_avg_pool2d_backward, dy, dx)
    close(result, ref.global_avg_pool2d_backward(dy, np.empty_like(dx)))


def test_global_max_pool2d_forward(benchmark, backend, describe, ref, uniform):
    x = uniform(POOL_SHAPE)
    n, _, _, c = POOL_SHAPE
    out, argmax = np.empty((n, c), np.float32), np.empty((n, c), np.int32)
    describe("global_max_pool2d_forward", POOL_SHAPE, elements=x.size)
    got, got_argmax = benchmark(backend.global_max_pool2d_forward, x, out, argmax)
    expected, exp_argmax = ref.global_max_pool2d_forward(x)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got_argmax, exp_argmax)


def test_global_max_pool2d_backward(benchmark, backend, describe, ref, uniform):
    x = uniform(POOL_SHAPE)
    _, argmax = ref.global_max_pool2d_forward(x)
    dy = uniform(argmax.shape)
    dx = np.empty_like(x)
    describe("global_max_pool2d_backward", POOL_SHAPE, elements=dx.size)
    result = benchmark(backend.global_max_pool2d_backward, dy, argmax, dx)
    np.testing.assert_array_equal(result, ref.global_max_pool2d_backward(
        dy, argmax, np.empty_like(dx)))


# ----------------------------------------------------- depthwise conv2d, conv1d

def _depthwise(uniform):
    c = DEPTHWISE_SHAPE[-1]
    x = uniform(DEPTHWISE_SHAPE, 0.0, 1.0)
    w = _glorot(uniform, (3, 3, c, 1), 9, 9)
    return x, w, uniform(c, -0.1, 0.1)


def test_depthwise_conv2d_forward(benchmark, backend, describe, close, ref, uniform):
    x, w, b = _depthwise(uniform)
    out = np.empty_like(x)
    n, h, w_, c = x.shape
    describe("depthwise_conv2d_forward relu same", _conv_label(x.shape, c, 3),
             flops=_conv_flops(n * h * w_, 9, c))
    result = benchmark(backend.depthwise_conv2d_forward, x, w, b, out, padding="same",
                       activation="relu")
    close(result, ref.depthwise_conv2d_forward(x, w, b, padding="same", activation="relu"),
          "gemm", k=9)


def test_depthwise_conv2d_backward(benchmark, backend, describe, close, ref, uniform):
    x, w, b = _depthwise(uniform)
    y = ref.depthwise_conv2d_forward(x, w, b, padding="same", activation="relu")
    dy = uniform(y.shape)
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty_like(b)
    n, h, w_, c = x.shape
    m = n * h * w_
    describe("depthwise_conv2d_backward relu same dx", _conv_label(x.shape, c, 3),
             flops=_conv_flops(m, 9, c, True), need_dx=True)
    got = benchmark(backend.depthwise_conv2d_backward, dy, x, w, y, padding="same",
                    activation="relu", dx=dx, dw=dw, db=db)
    expected = ref.depthwise_conv2d_backward(dy, x, w, y, padding="same",
                                             activation="relu")
    close(got[0], expected[0], "gemm", k=9)
    close(got[1], expected[1], "gemm", k=m)
    close(got[2], expected[2], "gemm", k=m)


def _conv1d(uniform):
    cin = CONV1D_SHAPE[-1]
    x = uniform(CONV1D_SHAPE, 0.0, 1.0)
    w = _glorot(uniform, (CONV1D_K, cin, CONV1D_FILTERS), CONV1D_K * cin,
                CONV1D_K * CONV1D_FILTERS)
    return x, w, uniform(CONV1D_FILTERS, -0.1, 0.1)


def test_conv1d_forward(benchmark, backend, describe, close, ref, uniform):
    x, w, b = _conv1d(uniform)
    n, length, cin = x.shape
    out = np.empty((n, length, CONV1D_FILTERS), np.float32)
    k = CONV1D_K * cin
    describe("conv1d_forward relu same", _conv_label(x.shape, CONV1D_FILTERS, CONV1D_K),
             flops=_conv_flops(n * length, k, CONV1D_FILTERS))
    result = benchmark(backend.conv1d_forward, x, w, b, out, padding="same",
                       activation="relu")
    close(result, ref.conv1d_forward(x, w, b, padding="same", activation="relu"), "gemm",
          k=k)


def test_conv1d_backward(benchmark, backend, describe, close, ref, uniform):
    x, w, b = _conv1d(uniform)
    y = ref.conv1d_forward(x, w, b, padding="same", activation="relu")
    dy = uniform(y.shape)
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty_like(b)
    n, length, cin = x.shape
    m = n * length
    describe("conv1d_backward relu same dx", _conv_label(x.shape, CONV1D_FILTERS, CONV1D_K),
             flops=_conv_flops(m, CONV1D_K * cin, CONV1D_FILTERS, True), need_dx=True)
    got = benchmark(backend.conv1d_backward, dy, x, w, y, padding="same", activation="relu",
                    dx=dx, dw=dw, db=db)
    expected = ref.conv1d_backward(dy, x, w, y, padding="same", activation="relu")
    close(got[0], expected[0], "gemm", k=CONV1D_K * CONV1D_FILTERS)
    close(got[1], expected[1], "gemm", k=m)
    close(got[2], expected[2], "gemm", k=m)


# ------------------------------------------------------- batch normalisation

def _bn_inputs(uniform, shape):
    c = shape[-1]
    return (uniform(shape, -3.0, 3.0), uniform(c, 0.5, 1.5), uniform(c),
            uniform(c, -0.5, 0.5), uniform(c, 0.5, 2.0))


@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batch_norm_forward(benchmark, backend, describe, ref, uniform, shape):
    x, gamma, beta, moving_mean, moving_variance = _bn_inputs(uniform, shape)
    out = np.empty_like(x)
    describe("batch_norm_forward", shape, elements=x.size)
    # the moving statistics are updated in place by every round: timed on copies
    mm, mv = moving_mean.copy(), moving_variance.copy()
    result = benchmark(backend.batch_norm_forward, x, gamma, beta, mm, mv, out)
    np.testing.assert_allclose(result, ref.batch_norm_forward(x, gamma, beta),
                               rtol=BN_RTOL, atol=BN_ATOL)
    # one more call from the initial moving statistics, against the reference's update
    mm, mv = moving_mean.copy(), moving_variance.copy()
    backend.batch_norm_forward(x, gamma, beta, mm, mv, np.empty_like(x))
    exp_mm, exp_mv = moving_mean.copy(), moving_variance.copy()
    ref.batch_norm_forward(x, gamma, beta, exp_mm, exp_mv)
    np.testing.assert_allclose(mm, exp_mm, rtol=BN_RTOL, atol=BN_ATOL)
    np.testing.assert_allclose(mv, exp_mv, rtol=BN_RTOL, atol=BN_ATOL)


@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batch_norm_inference(benchmark, backend, describe, ref, uniform, shape):
    x, gamma, beta, moving_mean, moving_variance = _bn_inputs(uniform, shape)
    out = np.empty_like(x)
    describe("batch_norm_inference", shape, elements=x.size)
    result = benchmark(backend.batch_norm_inference, x, gamma, beta, moving_mean,
                       moving_variance, out)
    np.testing.assert_allclose(
        result, ref.batch_norm_inference(x, gamma, beta, moving_mean, moving_variance),
        rtol=BN_RTOL, atol=BN_ATOL)


@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batch_norm_backward(benchmark, backend, describe, ref, uniform, shape):
    x, gamma = _bn_inputs(uniform, shape)[:2]
    dy = uniform(shape)
    dx, dgamma, dbeta = np.empty_like(x), np.empty_like(gamma), np.empty_like(gamma)
    describe("batch_norm_backward", shape, elements=x.size)
    result = benchmark(backend.batch_norm_backward, dy, x, gamma, dx, dgamma, dbeta)
    cells = x.size // shape[-1]   # the terms of each channel's sums
    for got, expected, atol in zip(result, ref.batch_norm_backward(dy, x, gamma),
                                   (BN_ATOL, BN_ATOL * np.sqrt(cells),
                                    BN_ATOL * np.sqrt(cells))):
        np.testing.assert_allclose(got, expected, rtol=BN_RTOL, atol=atol)


# ------------------------------------------------------------ the convnet epoch

@pytest.fixture(scope="session")
def mnist_like():
    """x: (60000, 28, 28, 1) float32 in [0, 1); y: int64 labels 0-9, the argmax of a
    fixed random linear map of each image's 7x7 grid of 4x4 block means."""
    rng = np.random.default_rng(20240601)
    x = rng.random((N_IMAGES,) + IMAGE, dtype=np.float32)
    blocks = x.reshape(N_IMAGES, 7, 4, 7, 4).mean(axis=(2, 4)).reshape(N_IMAGES, 49)
    teacher = rng.standard_normal((49, N_CLASSES)).astype(np.float32)
    y = np.argmax((blocks - 0.5) @ teacher, axis=1).astype(np.int64)
    return x, y


def _epoch_flops(n):
    """The products of one epoch over n images: forward 2 M K N of each convolution and
    of the Dense layer, backward twice that but for conv1 (dw only: no dx)."""
    conv1 = 2 * 26 * 26 * (9 * 1) * 32
    conv2 = 2 * 11 * 11 * (9 * 32) * 64
    dense = 2 * (5 * 5 * 64) * N_CLASSES
    return n * ((conv1 + conv2 + dense) + (conv1 + 2 * conv2 + 2 * dense))


def _gemm_gflops():
    """Our GEMM (the cython backend's) on a 1024^3 float32 product: the median of
    GEMM_REPS calls after a warm-up, in GFLOP/s; None where cython does not load."""
    import kernels
    try:
        gemm = kernels.get_backend("cython").gemm
    except ImportError:
        return None
    rng = np.random.default_rng(1)
    a = rng.uniform(-1, 1, (GEMM_N, GEMM_N)).astype(np.float32)
    b = rng.uniform(-1, 1, (GEMM_N, GEMM_N)).astype(np.float32)
    out = np.empty_like(a)
    return _product_gflops(lambda: gemm(a, b, out))


def _product_gflops(product):
    product()
    times = []
    for _ in range(GEMM_REPS):
        t = time.perf_counter()
        product()
        times.append(time.perf_counter() - t)
    return 2 * GEMM_N ** 3 / statistics.median(times) / 1e9


def _timed_epochs(benchmark, make, epoch):
    """Times ``epoch(*make())`` EPOCH_ROUNDS times; returns (the last round's result,
    each round's seconds measured around the epoch itself)."""
    seconds = []

    def timed(*args):
        t = time.perf_counter()
        result = epoch(*args)
        seconds.append(time.perf_counter() - t)
        return result

    result = benchmark.pedantic(timed, setup=lambda: (make(), {}), rounds=EPOCH_ROUNDS,
                                iterations=1)
    return result, seconds


def _convnet(keras, **model_kwargs):
    """The MNIST convnet, in Keras code that ``dl`` and ``keras`` (tf.keras) both run."""
    keras.utils.set_random_seed(0)
    layers = keras.layers
    model = keras.Sequential([
        keras.Input(IMAGE),
        layers.Conv2D(32, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(N_CLASSES, activation="softmax"),
    ], **model_kwargs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def _dl_convnet(backend_name):
    return _convnet(dl, backend=backend_name)


def _dl_epoch(benchmark, backend, x, y):
    """(loss on the check slice before training, after, the epoch's loss, seconds)."""
    def loss(model):
        return float(model.evaluate(x[:CHECK_ROWS], y[:CHECK_ROWS], batch_size=1024,
                                    verbose=0))

    before = loss(_dl_convnet(backend.name))

    def epoch(model):
        history = model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
        return model, history.history["loss"][-1]

    (model, epoch_loss), seconds = _timed_epochs(
        benchmark, lambda: (_dl_convnet(backend.name),), epoch)
    return before, loss(model), epoch_loss, seconds


def _torch_convnet(torch):
    torch.manual_seed(0)
    nn = torch.nn
    conv1, conv2 = nn.Conv2d(1, 32, 3), nn.Conv2d(32, 64, 3)
    dense = nn.Linear(5 * 5 * 64, N_CLASSES)
    for layer in (conv1, conv2, dense):
        nn.init.xavier_uniform_(layer.weight)   # Keras's glorot_uniform, zero bias
        nn.init.zeros_(layer.bias)
    model = nn.Sequential(conv1, nn.ReLU(), nn.MaxPool2d(2), conv2, nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.5), dense)
    # logits: cross_entropy applies the softmax; Keras's Adam defaults (epsilon 1e-7)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    return model, optimizer


def _torch_epoch(benchmark, torch, x, y):
    # one channel: the NHWC images are already NCHW in memory
    xt = torch.from_numpy(x).view(x.shape[0], 1, *IMAGE[:2])
    yt = torch.from_numpy(y)
    cross_entropy = torch.nn.functional.cross_entropy

    def loss(model):
        model.eval()
        with torch.no_grad():
            return float(cross_entropy(model(xt[:CHECK_ROWS]), yt[:CHECK_ROWS]))

    before = loss(_torch_convnet(torch)[0])

    def epoch(model, optimizer):
        """Reshuffled batches of BATCH, the last partial batch kept (as fit)."""
        model.train()
        n = xt.shape[0]
        order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
        total = 0.0
        for lo in range(0, n, BATCH):
            idx = order[lo:lo + BATCH]
            xb, yb = xt.index_select(0, idx), yt.index_select(0, idx)
            optimizer.zero_grad(set_to_none=True)
            batch_loss = cross_entropy(model(xb), yb)
            batch_loss.backward()
            optimizer.step()
            total += batch_loss.item() * idx.shape[0]    # fit also reads each loss
        return model, total / n

    (model, epoch_loss), seconds = _timed_epochs(
        benchmark, lambda: _torch_convnet(torch), epoch)
    return before, loss(model), epoch_loss, seconds


def _tf_epoch(benchmark, keras, x, y):
    def loss(model):
        return float(model.evaluate(x[:CHECK_ROWS], y[:CHECK_ROWS], batch_size=1024,
                                    verbose=0))

    before = loss(_convnet(keras))

    def make():
        model = _convnet(keras)
        # trace (and compile) the train step for both batch sizes before timing
        model.fit(x[:TF_WARMUP], y[:TF_WARMUP], batch_size=BATCH, epochs=1, verbose=0,
                  shuffle=False)
        return (model,)

    def epoch(model):
        history = model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
        return model, history.history["loss"][-1]

    (model, epoch_loss), seconds = _timed_epochs(benchmark, make, epoch)
    return before, loss(model), epoch_loss, seconds


@pytest.mark.parametrize("backend", ["cython", "cuda", "torch", "tf_keras"], indirect=True)
def test_convnet_epoch(benchmark, backend, describe, mnist_like):
    x, y = mnist_like
    flops = _epoch_flops(N_IMAGES)
    describe("fit convnet 1 epoch", f"{N_IMAGES}x28x28x1 c32-p2-c64-p2-d10 b{BATCH}",
             flops=flops, samples=N_IMAGES, batch_size=BATCH, rounds=EPOCH_ROUNDS)
    gemm_gflops = _gemm_gflops()

    if backend.name == "torch":
        torch = backend.torch
        a = torch.rand(GEMM_N, GEMM_N, generator=torch.Generator().manual_seed(1))
        b, out = torch.rand_like(a), torch.empty_like(a)
        benchmark.extra_info["torch_gemm_1024_gflops"] = _product_gflops(
            lambda: torch.matmul(a, b, out=out))
        before, after, epoch_loss, seconds = _torch_epoch(benchmark, torch, x, y)
    elif backend.name == "tf_keras":
        before, after, epoch_loss, seconds = _tf_epoch(benchmark, backend.keras, x, y)
        benchmark.extra_info["warmup"] = (f"fit on {TF_WARMUP} images before timing "
                                          f"(traces the train step)")
    else:
        before, after, epoch_loss, seconds = _dl_epoch(benchmark, backend, x, y)

    epoch_seconds = statistics.median(seconds)
    info = benchmark.extra_info
    info.update(loss_before=before, loss_after=after, epoch_loss=epoch_loss,
                epoch_seconds=epoch_seconds, epoch_gflop=flops / 1e9,
                epoch_gflops=flops / epoch_seconds / 1e9, gemm_1024_gflops=gemm_gflops)
    if gemm_gflops is not None:
        floor = flops / 1e9 / gemm_gflops
        info.update(gemm_floor_seconds=floor, fraction_of_gemm_floor=floor / epoch_seconds)
    assert math.isfinite(epoch_loss) and math.isfinite(after)
    assert after < before, f"loss on the first {CHECK_ROWS} images: {before} -> {after}"
