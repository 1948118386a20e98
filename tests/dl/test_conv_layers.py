"""Conv1D, Conv2D, DepthwiseConv2D, SeparableConv2D, ZeroPadding2D, UpSampling2D:
output shapes by Keras's formulas, gradients of whole small models against finite
differences (float64), channels_first as channels_last transposed, configs, errors,
initializer fans, saving and loading, buffers reused from step to step.  Every test
runs on each CPU backend that has the convolution kernels (a backend whose twins are
still pending is skipped, saying so)."""
import json

import numpy as np
import pytest

import dl
from dl import layers

from dl_helpers import both_backends, fd_check, restore_dl_state  # noqa: F401



@pytest.fixture(params=both_backends())
def be(request):
    dl.set_backend(request.param)
    return request.param


RNG = np.random.default_rng(7)


# ------------------------------------------------------------------ shapes

def keras_size(size, k, s, d, padding):
    """Keras's output length (operation_utils.compute_conv_output_shape)."""
    if padding == "valid":
        return (size - d * (k - 1) - 1) // s + 1
    return (size - 1) // s + 1          # same, causal


SHAPE_CASES = [
    (layers.Conv2D, dict(filters=3, kernel_size=3), (9, 7, 2)),
    (layers.Conv2D, dict(filters=4, kernel_size=(2, 3), strides=(2, 3), padding="same"),
     (9, 7, 2)),
    (layers.Conv2D, dict(filters=4, kernel_size=(3, 2), dilation_rate=(2, 3), groups=2),
     (9, 8, 2)),
    (layers.Conv2D, dict(filters=2, kernel_size=4, strides=3, padding="same"), (10, 5, 1)),
    (layers.Conv1D, dict(filters=3, kernel_size=3, strides=2), (9, 2)),
    (layers.Conv1D, dict(filters=3, kernel_size=3, padding="causal", dilation_rate=3),
     (9, 2)),
    (layers.Conv1D, dict(filters=3, kernel_size=4, padding="causal", strides=3), (10, 2)),
    (layers.Conv1D, dict(filters=2, kernel_size=2, padding="same", strides=2), (7, 3)),
    (layers.DepthwiseConv2D, dict(kernel_size=3, depth_multiplier=2, strides=2), (9, 7, 3)),
    (layers.DepthwiseConv2D, dict(kernel_size=(3, 2), padding="same", dilation_rate=2),
     (6, 5, 2)),
    (layers.SeparableConv2D, dict(filters=5, kernel_size=3, strides=(1, 2), padding="same",
                                  depth_multiplier=3), (6, 7, 2)),
]


def _expected_shape(cls, kw, cl_shape):
    rank = len(cl_shape) - 1
    k = np.broadcast_to(kw["kernel_size"], rank)
    s = np.broadcast_to(kw.get("strides", 1), rank)
    d = np.broadcast_to(kw.get("dilation_rate", 1), rank)
    spatial = tuple(keras_size(n, *args, kw.get("padding", "valid"))
                    for n, *args in zip(cl_shape[:-1], k, s, d))
    channels = (cl_shape[-1] * kw.get("depth_multiplier", 1) if cls is layers.DepthwiseConv2D
                else kw["filters"])
    return spatial + (channels,)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("cls, kw, shape", SHAPE_CASES)
def test_output_shape_is_keras(be, cls, kw, shape, data_format):
    expected = _expected_shape(cls, kw, shape)
    if data_format == "channels_first":
        shape, expected = shape[-1:] + shape[:-1], expected[-1:] + expected[:-1]
    layer = cls(**kw, data_format=data_format)
    assert layer.compute_output_shape(shape) == expected
    y = layer(np.zeros((2,) + shape, np.float32))
    assert y.shape == (2,) + expected
    model = dl.Sequential([dl.Input(shape), cls(**kw, data_format=data_format)])
    assert model.output_shape == (None,) + expected


def test_summary_shows_shapes_and_params(be):
    model = dl.Sequential([dl.Input((12, 12, 1)), layers.Conv2D(4, 3, activation="relu"),
                           layers.MaxPooling2D(2), layers.SeparableConv2D(6, 3),
                           layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same"),
                           layers.Flatten(), layers.Dense(3)])
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert model.layers[0].name.startswith("conv2d")
    for shape, params in (("(None, 10, 10, 4)", 40), ("(None, 5, 5, 4)", 0),
                          ("(None, 3, 3, 6)", 4 * 9 + 4 * 6 + 6),
                          ("(None, 3, 3, 12)", 6 * 2 * 9 + 12), ("(None, 108)", 0),
                          ("(None, 3)", 327)):
        assert any(shape in line and line.rstrip("│ ").endswith(f"{params:,}")
                   for line in lines), (shape, text)
    assert model.count_params() == 40 + 66 + 120 + 327


# --------------------------------------------------------------- gradients

def _fd_model(model_layers, shape, n=3, classes=3, loss="sparse_categorical_crossentropy"):
    dl.config.set_floatx("float64")
    model = dl.Sequential([dl.Input(shape)] + model_layers)
    model.compile("sgd", loss)
    x = RNG.normal(size=(n,) + shape)
    y = RNG.integers(0, classes, n)
    fd_check(model, x, y, rel=1e-4, abs_=1e-7)
    return model


def _head():
    return [layers.Flatten(), layers.Dense(3, activation="softmax")]


GRAD_CASES = {
    "conv2d_same_strided_tanh": lambda: ([layers.Conv2D(3, 3, strides=2, padding="same",
                                                        activation="tanh")] + _head(),
                                         (5, 6, 2)),
    "conv2d_dilated_grouped_gelu": lambda: ([layers.Conv2D(4, (2, 3), dilation_rate=2,
                                                           groups=2, activation="gelu")]
                                            + _head(), (6, 7, 2)),
    "conv2d_unfused_relu_channels_first": lambda: (
        [layers.Conv2D(3, 3, data_format="channels_first",
                       activation=dl.activations.Activation("relu", negative_slope=0.1)),
         layers.Conv2D(2, 2, data_format="channels_first", use_bias=False)] + _head(),
        (2, 6, 5)),
    "conv1d_causal_strided": lambda: ([layers.Conv1D(3, 3, strides=2, padding="causal",
                                                     activation="tanh"),
                                       layers.Conv1D(2, 2, padding="same")] + _head(),
                                      (6, 2)),
    "conv1d_causal_dilated_channels_first": lambda: (
        [layers.Conv1D(3, 2, dilation_rate=2, padding="causal", activation="softplus",
                       data_format="channels_first")] + _head(), (2, 7)),
    "depthwise_separable": lambda: ([layers.DepthwiseConv2D(3, depth_multiplier=2,
                                                            padding="same",
                                                            activation="sigmoid"),
                                     layers.SeparableConv2D(3, 2, strides=2,
                                                            activation="silu")] + _head(),
                                    (5, 5, 2)),
    "separable_unfused_channels_first": lambda: (
        [layers.SeparableConv2D(3, 2, data_format="channels_first", use_bias=False,
                                activation=dl.activations.Activation("elu", alpha=0.5)),
         layers.DepthwiseConv2D(2, data_format="channels_first", use_bias=False)]
        + _head(), (2, 5, 4)),
    "padding_upsampling_reshape": lambda: (
        [layers.Dense(16), layers.Reshape((4, 4, 1)), layers.Conv2D(2, 2),
         layers.ZeroPadding2D(((1, 0), (0, 2))), layers.UpSampling2D((2, 1)),
         layers.Conv2D(2, 3, strides=2)] + _head(), (3,)),
    "padding_upsampling_channels_first": lambda: (
        [layers.ZeroPadding2D(1, data_format="channels_first"),
         layers.UpSampling2D(2, data_format="channels_first"),
         layers.Conv2D(2, 3, strides=3, data_format="channels_first")] + _head(),
        (2, 3, 2)),
}


@pytest.mark.parametrize("case", list(GRAD_CASES))
def test_gradients_match_finite_differences(be, case):
    model_layers, shape = GRAD_CASES[case]()
    _fd_model(model_layers, shape)


def test_gradients_of_a_shared_conv_in_a_functional_graph(be):
    """A Conv2D called twice (its weight gradients summed over the calls, each call's
    saved arrays restored for its backward) and a Conv1D after a Reshape."""
    dl.config.set_floatx("float64")
    inp = dl.Input((5, 5, 2))
    shared = layers.Conv2D(2, 3, padding="same", activation="tanh")
    h = shared(shared(inp))
    s = layers.Add()([h, layers.DepthwiseConv2D(3, padding="same")(inp)])
    r = layers.Reshape((25, 2))(s)
    c = layers.Conv1D(3, 4, strides=3, padding="causal")(r)
    out = layers.Dense(2, activation="softmax")(layers.Flatten()(c))
    model = dl.Model(inp, out)
    model.compile("sgd", "sparse_categorical_crossentropy")
    fd_check(model, RNG.normal(size=(3, 5, 5, 2)), RNG.integers(0, 2, 3), rel=1e-4,
             abs_=1e-7)


def test_finite_difference_check_catches_a_wrong_conv_gradient(be, monkeypatch):
    """The check above can fail: a kernel gradient off by a factor is caught."""
    from dl import convolutional
    real = convolutional._Conv._backward_last

    def wrong(self, dy, need_dx):
        dx = real(self, dy, need_dx)
        self.backend.ops.affine(self.d_kernel, 1.01, 0.0, self.d_kernel)
        return dx
    monkeypatch.setattr(convolutional._Conv, "_backward_last", wrong)
    with pytest.raises(AssertionError):
        _fd_model([layers.Conv2D(2, 2)] + _head(), (3, 3, 1))


# ------------------------------------------------------------ numerics

def _conv1d_reference(x, w, b, stride, dilation, left):
    """A direct 1-D convolution of x (n, L, c) with ``left`` zeros before the
    sequence (Keras's causal padding is dilation * (k - 1))."""
    n, steps, _ = x.shape
    k = w.shape[0]
    xp = np.concatenate([np.zeros((n, left, x.shape[2])), x], axis=1)
    out = []
    t = 0
    while t + dilation * (k - 1) < steps + left:
        out.append(sum(xp[:, t + a * dilation] @ w[a] for a in range(k)) + b)
        t += stride
    return np.stack(out, axis=1)


@pytest.mark.parametrize("steps, k, s, d", [(10, 3, 2, 1), (9, 3, 2, 1), (7, 2, 1, 3),
                                            (11, 4, 3, 1)])
def test_causal_conv1d_is_keras_left_padding(be, steps, k, s, d):
    """Keras pads dilation * (k - 1) zeros before the sequence, then a valid
    convolution: output[t] reads no input after t * strides."""
    layer = layers.Conv1D(3, k, strides=s, dilation_rate=d, padding="causal",
                          bias_initializer="glorot_uniform", dtype="float64")
    x = RNG.normal(size=(2, steps, 2))
    y = layer(x)
    kernel, bias = layer.get_weights()
    np.testing.assert_allclose(y, _conv1d_reference(x, kernel, bias, s, d, d * (k - 1)),
                               rtol=1e-12, atol=1e-12)


def test_channels_first_is_channels_last_transposed(be):
    """The same weights give the transposed outputs, and the same weight gradients."""
    dl.config.set_floatx("float64")
    makers = [lambda f: layers.Conv2D(3, (3, 2), strides=(2, 1), padding="same",
                                      activation="relu", data_format=f),
              lambda f: layers.DepthwiseConv2D(2, depth_multiplier=2, data_format=f),
              lambda f: layers.SeparableConv2D(2, 2, padding="same", data_format=f),
              lambda f: layers.ZeroPadding2D(((0, 1), (2, 1)), data_format=f),
              lambda f: layers.UpSampling2D((1, 2), data_format=f)]
    x = RNG.normal(size=(3, 5, 4, 2))
    for make in makers:
        last = dl.Sequential([dl.Input((5, 4, 2)), make("channels_last")])
        first = dl.Sequential([dl.Input((2, 5, 4)), make("channels_first")])
        first.set_weights(last.get_weights())
        y = last.predict(x, verbose=0)
        np.testing.assert_allclose(first.predict(x.transpose(0, 3, 1, 2), verbose=0),
                                   y.transpose(0, 3, 1, 2), rtol=1e-12, atol=1e-12)
        if last.count_params():        # (dl's losses take (batch, values): flattened)
            target = RNG.normal(size=y.shape)
            last.add(layers.Flatten())
            first.add(layers.Flatten())
            last.compile("sgd", "mse")
            first.compile("sgd", "mse")
            _, g_last = last.compute_gradients(x, target.reshape(3, -1))
            _, g_first = first.compute_gradients(
                x.transpose(0, 3, 1, 2), target.transpose(0, 3, 1, 2).reshape(3, -1))
            for a, b in zip(g_last, g_first):
                np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    steps = RNG.normal(size=(2, 6, 3))
    last = dl.Sequential([dl.Input((6, 3)), layers.Conv1D(2, 3, padding="causal",
                                                          strides=2)])
    first = dl.Sequential([dl.Input((3, 6)), layers.Conv1D(2, 3, padding="causal",
                                                           strides=2,
                                                           data_format="channels_first")])
    first.set_weights(last.get_weights())
    np.testing.assert_allclose(first.predict(steps.transpose(0, 2, 1), verbose=0),
                               last.predict(steps, verbose=0).transpose(0, 2, 1),
                               rtol=1e-12, atol=1e-12)


def test_zero_padding_and_upsampling_as_numpy(be):
    x = RNG.normal(size=(2, 3, 4, 2)).astype(np.float32)
    np.testing.assert_array_equal(layers.ZeroPadding2D(((1, 2), (0, 3)))(x),
                                  np.pad(x, ((0, 0), (1, 2), (0, 3), (0, 0))))
    np.testing.assert_array_equal(layers.ZeroPadding2D(2)(x),
                                  np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0))))
    np.testing.assert_array_equal(layers.ZeroPadding2D((0, 1))(x),
                                  np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 0))))
    np.testing.assert_array_equal(layers.UpSampling2D((2, 3))(x),
                                  x.repeat(2, axis=1).repeat(3, axis=2))
    np.testing.assert_array_equal(layers.UpSampling2D(1)(x), x)
    np.testing.assert_array_equal(layers.Flatten()(x), x.reshape(2, -1))


def test_glorot_fans_of_conv_kernels(be):
    """Keras's fans of a conv kernel (kh, kw, cin, cout): fan_in = cin * kh * kw,
    fan_out = cout * kh * kw; a depthwise kernel (kh, kw, cin, m) and a pointwise
    (1, 1, cin * m, filters) alike."""
    def limit(fan_in, fan_out):
        return np.sqrt(6 / (fan_in + fan_out))

    dl.utils.set_random_seed(3)
    cases = [(layers.Conv2D(32, 3), (8, 8, 16), 0, limit(16 * 9, 32 * 9)),
             (layers.Conv1D(32, 5), (8, 16), 0, limit(16 * 5, 32 * 5)),
             (layers.DepthwiseConv2D(3, depth_multiplier=4), (8, 8, 16), 0,
              limit(16 * 9, 4 * 9)),
             (layers.SeparableConv2D(32, 3, depth_multiplier=2), (8, 8, 16), 1,
              limit(32, 32))]
    for layer, shape, k, lim in cases:
        dl.Sequential([dl.Input(shape), layer])
        w = layer.get_weights()[k]
        assert np.abs(w).max() <= lim
        assert np.abs(w).max() > 0.95 * lim, type(layer).__name__


def test_regularizers_and_constraints(be):
    dl.config.set_floatx("float64")
    conv = layers.Conv2D(2, 2, kernel_regularizer=dl.regularizers.L2(0.1),
                         bias_regularizer="l1", kernel_constraint="non_neg",
                         bias_initializer="ones")
    sep = layers.SeparableConv2D(2, 2, pointwise_regularizer=dl.regularizers.L1(0.2),
                                 depthwise_constraint=dl.constraints.MaxNorm(0.5))
    model = dl.Sequential([dl.Input((4, 4, 1)), conv, sep, layers.Flatten(),
                           layers.Dense(1)])
    model.compile(dl.optimizers.SGD(0.0), "mse")
    x, y = RNG.normal(size=(4, 4, 4, 1)), RNG.normal(size=4)
    k, b = conv.get_weights()
    pw = sep.get_weights()[1]
    plain = np.mean((model.predict(x, verbose=0)[:, 0] - y) ** 2)
    penalty = 0.1 * np.sum(k ** 2) + 0.01 * np.sum(np.abs(b)) + 0.2 * np.sum(np.abs(pw))
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), plain + penalty, rtol=1e-10)
    fd_check(model, x, y, rel=1e-4, abs_=1e-7)       # the penalties' gradients too
    model.compile(dl.optimizers.SGD(0.1), "mse")
    model.fit(x, y, epochs=2, verbose=0)
    assert (conv.get_weights()[0] >= 0).all()
    norms = np.sqrt((sep.get_weights()[0] ** 2).sum(axis=0))      # MaxNorm's axis 0
    assert (norms <= 0.5 + 1e-12).all()


# ------------------------------------------------------------ configs, errors

CONFIG_CASES = [
    layers.Conv2D(4, (3, 2), strides=(2, 1), padding="same", data_format="channels_first",
                  groups=2, activation="relu", use_bias=False, kernel_initializer="he_normal",
                  kernel_regularizer="l2", bias_constraint="non_neg", name="c2"),
    layers.Conv2D(2, 3, dilation_rate=2,
                  activation=dl.activations.Activation("relu", max_value=2.0)),
    layers.Conv1D(3, 5, padding="causal", dilation_rate=2, bias_initializer="ones"),
    layers.DepthwiseConv2D(3, depth_multiplier=3, strides=2, depthwise_regularizer="l1",
                           depthwise_constraint="non_neg", activation="tanh"),
    layers.SeparableConv2D(5, 2, depth_multiplier=2, pointwise_initializer="lecun_normal",
                           pointwise_constraint="unit_norm", padding="SAME"),
    layers.ZeroPadding2D(((1, 2), (3, 0)), data_format="channels_first"),
    layers.UpSampling2D(3),
]


@pytest.mark.parametrize("layer", CONFIG_CASES, ids=lambda layer: type(layer).__name__)
def test_config_round_trips(layer):
    cfg = layer.get_config()
    again = type(layer).from_config(json.loads(json.dumps(cfg)))
    assert again.get_config() == cfg
    assert dl.layers.deserialize(dl.layers.serialize(layer)).get_config() == cfg


def test_keras_config_keys():
    cfg = layers.Conv2D(2, 3).get_config()
    assert cfg["kernel_size"] == [3, 3] and cfg["strides"] == [1, 1]
    assert cfg["dilation_rate"] == [1, 1] and cfg["padding"] == "valid"
    assert cfg["data_format"] == "channels_last" and cfg["activation"] == "linear"
    assert cfg["groups"] == 1 and cfg["activity_regularizer"] is None
    assert layers.Conv1D(2, 3, padding="Causal").padding == "causal"
    assert layers.ZeroPadding2D().get_config()["padding"] == [[1, 1], [1, 1]]
    assert layers.UpSampling2D().get_config()["interpolation"] == "nearest"


def test_image_data_format_setting():
    assert dl.config.image_data_format() == "channels_last"
    dl.config.set_image_data_format("channels_first")
    assert layers.Conv2D(2, 3).data_format == "channels_first"
    assert layers.MaxPooling2D().data_format == "channels_first"
    assert layers.Conv2D(2, 3, data_format="channels_last").data_format == "channels_last"
    with pytest.raises(ValueError, match="data_format"):
        dl.config.set_image_data_format("nhwc")
    with pytest.raises(ValueError, match="data_format"):
        layers.Conv2D(2, 3, data_format="NCHW")


ERRORS = [
    (lambda: layers.Conv2D(2, 3, strides=2, dilation_rate=2), "strides > 1"),
    (lambda: layers.Conv1D(2, 3, strides=(2,), dilation_rate=3), "dilation_rate > 1"),
    (lambda: layers.Conv2D(3, 3, groups=2), "filters must be evenly divisible"),
    (lambda: layers.Conv2D(0, 3), "filters"),
    (lambda: layers.Conv2D(2, 0), "kernel_size"),
    (lambda: layers.Conv2D(2, (3, 3, 3)), "kernel_size"),
    (lambda: layers.Conv2D(2, 3, strides=0), "strides"),
    (lambda: layers.Conv2D(2, 3, padding="causal"), "padding"),
    (lambda: layers.Conv1D(2, 3, padding="full"), "padding"),
    (lambda: layers.Conv2D(2, 3, activity_regularizer="l2"), "activity_regularizer"),
    (lambda: layers.DepthwiseConv2D(3, depth_multiplier=0), "depth_multiplier"),
    (lambda: layers.SeparableConv2D(0, 3), "filters"),
    (lambda: layers.UpSampling2D(interpolation="bilinear"), "interpolation"),
    (lambda: layers.ZeroPadding2D((1, 2, 3)), "padding"),
    (lambda: layers.ZeroPadding2D(-1), "padding"),
    (lambda: dl.Sequential([dl.Input((5, 5, 3)), layers.Conv2D(4, 3, groups=2)]),
     "input channels must be evenly divisible"),
    (lambda: dl.Sequential([dl.Input((4, 4, 1)), layers.Conv2D(2, 5)]),
     "zero or negative"),
    (lambda: dl.Sequential([dl.Input((4, 4, 1)), layers.Conv2D(2, 2, dilation_rate=4)]),
     "zero or negative"),
    (lambda: dl.Sequential([dl.Input((4, 3)), layers.Conv2D(2, 2)]), "rank 4"),
    (lambda: layers.Conv1D(2, 3)(dl.Input((4, 4, 1))), "rank 3"),
]


@pytest.mark.parametrize("make, match", ERRORS)
def test_keras_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# ------------------------------------------------------------ saving, buffers

def _convnet(seed=1):
    dl.utils.set_random_seed(seed)
    model = dl.Sequential([
        dl.Input((8, 8, 2)), layers.Conv2D(3, 3, activation="relu", padding="same"),
        layers.BatchNormalization(), layers.MaxPooling2D(2),
        layers.SeparableConv2D(4, 2, activation="tanh"),
        layers.DepthwiseConv2D(2, data_format="channels_last"), layers.Flatten(),
        layers.Dense(3, activation="softmax")])
    model.compile(dl.optimizers.Adam(0.01), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def test_save_load_and_resume(be, tmp_path):
    x = RNG.normal(size=(12, 8, 8, 2)).astype(np.float32)
    y = RNG.integers(0, 3, 12)
    model = _convnet()
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    path = str(tmp_path / "conv.npz")
    model.save(path)
    loaded = dl.load_model(path)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert loaded.get_config() == model.get_config()
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    h1 = model.fit(x, y, epochs=2, batch_size=4, verbose=0).history
    h2 = loaded.fit(x, y, epochs=2, batch_size=4, verbose=0).history
    assert h1 == h2
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_functional_channels_first_save_load(be, tmp_path):
    inp = dl.Input((2, 6, 6))
    shared = layers.Conv2D(2, 3, padding="same", data_format="channels_first")
    h = layers.Add()([shared(inp), shared(shared(inp))])
    h = layers.BatchNormalization(axis=1)(h)
    h = layers.AveragePooling2D(2, data_format="channels_first")(h)
    out = layers.Dense(2)(layers.GlobalMaxPooling2D(data_format="channels_first")(h))
    model = dl.Model(inp, out)
    model.compile("adam", "mse")
    x = RNG.normal(size=(6, 2, 6, 6)).astype(np.float32)
    y = RNG.normal(size=(6, 2)).astype(np.float32)
    model.fit(x, y, epochs=2, batch_size=3, verbose=0)
    path = str(tmp_path / "f.npz")
    model.save(path)
    loaded = dl.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    model.fit(x, y, epochs=1, batch_size=3, verbose=0)
    loaded.fit(x, y, epochs=1, batch_size=3, verbose=0)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_training_buffers_are_reused(be):
    """After the first step of a batch shape, training allocates no new buffers: each
    layer's buffers are the same arrays from epoch to epoch."""
    x = RNG.normal(size=(8, 8, 8, 2)).astype(np.float32)
    y = RNG.integers(0, 3, 8)
    model = _convnet()
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    before = [{k: id(v) for k, v in layer._buffers.items()} for layer in model.layers]
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    after = [{k: id(v) for k, v in layer._buffers.items()} for layer in model.layers]
    assert before == after
    assert all(before[i] for i in (0, 1, 2, 3, 4))
