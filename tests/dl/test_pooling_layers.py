"""Pooling layers: MaxPooling1D/2D, AveragePooling1D/2D, GlobalAveragePooling1D/2D,
GlobalMaxPooling1D/2D against a direct NumPy computation of Keras's definitions
(windows, "same" padding, strides, keepdims, channels_first), their gradients against
finite differences (float64), configs and errors.  Every test runs on each CPU backend
that has the pooling kernels (a backend whose twins are still pending is skipped,
saying so)."""
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


RNG = np.random.default_rng(11)


def _pool_reference(x, pool, strides, padding, op):
    """Keras's pooling of NHWC ``x`` written directly: "same" pads ceil(size/s)
    outputs' worth, the odd cell after; padded cells are left out (-inf for max, not
    counted for the mean)."""
    n, h, w, c = x.shape
    outs, pads = [], []
    for size, k, s in zip((h, w), pool, strides):
        if padding == "valid":
            outs.append((size - k) // s + 1)
            pads.append(0)
        else:
            outs.append((size + s - 1) // s)
            pads.append(max(0, (outs[-1] - 1) * s + k - size) // 2)
    oh, ow = outs
    y = np.empty((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * strides[0] - pads[0], j * strides[1] - pads[1]
            win = x[:, max(r0, 0):min(r0 + pool[0], h), max(c0, 0):min(c0 + pool[1], w)]
            y[:, i, j] = win.max(axis=(1, 2)) if op == "max" else win.mean(axis=(1, 2))
    return y


CASES = [((2, 2), None, "valid"), ((3, 3), (2, 2), "valid"), ((3, 2), (1, 2), "same"),
         ((2, 3), (3, 2), "same"), ((3, 3), (2, 2), "same")]


@pytest.mark.parametrize("pool, strides, padding", CASES)
def test_2d_pooling_is_keras(be, pool, strides, padding):
    x = RNG.normal(size=(2, 7, 6, 3))
    s = pool if strides is None else strides
    for cls, op in ((layers.MaxPooling2D, "max"), (layers.AveragePooling2D, "avg")):
        layer = cls(pool, strides=strides, padding=padding, dtype="float64")
        want = _pool_reference(x, pool, s, padding, op)
        assert layer.compute_output_shape((7, 6, 3)) == want.shape[1:]
        np.testing.assert_allclose(layer(x), want, rtol=1e-13, atol=1e-14)
        first = cls(pool, strides=strides, padding=padding, dtype="float64",
                    data_format="channels_first")
        np.testing.assert_allclose(first(x.transpose(0, 3, 1, 2)),
                                   want.transpose(0, 3, 1, 2), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("pool, strides, padding", [(2, None, "valid"), (3, 2, "same"),
                                                    (3, 1, "valid"), (2, 3, "same")])
def test_1d_pooling_is_2d_pooling_of_one_row(be, pool, strides, padding):
    x = RNG.normal(size=(2, 9, 3))
    s = pool if strides is None else strides
    for cls, op in ((layers.MaxPooling1D, "max"), (layers.AveragePooling1D, "avg")):
        want = _pool_reference(x[:, None], (1, pool), (1, s), padding, op)[:, 0]
        layer = cls(pool, strides=strides, padding=padding, dtype="float64")
        np.testing.assert_allclose(layer(x), want, rtol=1e-13, atol=1e-14)
        first = cls(pool, strides=strides, padding=padding, dtype="float64",
                    data_format="channels_first")
        np.testing.assert_allclose(first(x.transpose(0, 2, 1)), want.transpose(0, 2, 1),
                                   rtol=1e-13, atol=1e-14)


def test_global_pooling(be):
    x = RNG.normal(size=(3, 4, 5, 2))
    seq = RNG.normal(size=(3, 6, 2))
    for cls, op in ((layers.GlobalAveragePooling2D, np.mean),
                    (layers.GlobalMaxPooling2D, np.max)):
        np.testing.assert_allclose(cls(dtype="float64")(x), op(x, axis=(1, 2)), rtol=1e-13)
        keep = cls(keepdims=True, dtype="float64")
        assert keep.compute_output_shape((4, 5, 2)) == (1, 1, 2)
        np.testing.assert_allclose(keep(x), op(x, axis=(1, 2), keepdims=True), rtol=1e-13)
        first = cls(data_format="channels_first", keepdims=True, dtype="float64")
        assert first.compute_output_shape((2, 4, 5)) == (2, 1, 1)
        np.testing.assert_allclose(first(x.transpose(0, 3, 1, 2)),
                                   op(x, axis=(1, 2), keepdims=True).transpose(0, 3, 1, 2),
                                   rtol=1e-13)
    for cls, op in ((layers.GlobalAveragePooling1D, np.mean),
                    (layers.GlobalMaxPooling1D, np.max)):
        np.testing.assert_allclose(cls(dtype="float64")(seq), op(seq, axis=1), rtol=1e-13)
        assert cls(keepdims=True).compute_output_shape((6, 2)) == (1, 2)
        np.testing.assert_allclose(cls(data_format="channels_first", dtype="float64")(
            seq.transpose(0, 2, 1)), op(seq, axis=1), rtol=1e-13)


def test_max_pooling_gradient_goes_to_the_first_maximum(be):
    """Ties: the whole window's gradient goes to its first maximum (row-major)."""
    x = np.array([[[[1.0], [3.0]], [[3.0], [0.0]]]], np.float32)
    model = dl.Sequential([dl.Input((2, 2, 1)), layers.MaxPooling2D(2), layers.Flatten()])
    model.compile("sgd", "mse")
    model.build()
    layer = model.layers[0]
    layer.forward(x, training=True)
    dx = layer.backward(np.ones((1, 1, 1, 1), np.float32))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0.0, 1.0], [0.0, 0.0]])


def test_pooling_gradients_match_finite_differences(be):
    dl.config.set_floatx("float64")

    def head():
        return [layers.Flatten(), layers.Dense(2, activation="softmax")]
    cases = [
        ([layers.Conv2D(2, 2), layers.MaxPooling2D(2, strides=1, padding="same"),
          layers.AveragePooling2D((2, 3), strides=(1, 2), padding="same")] + head(),
         (5, 6, 1)),
        ([layers.Conv2D(2, 2, data_format="channels_first"),
          layers.MaxPooling2D(2, data_format="channels_first"),
          layers.GlobalMaxPooling2D(data_format="channels_first", keepdims=True)] + head(),
         (1, 5, 5)),
        ([layers.Conv1D(2, 2), layers.MaxPooling1D(3, strides=2, padding="same"),
          layers.AveragePooling1D(2, strides=1)] + head(), (9, 2)),
        ([layers.Conv1D(3, 2), layers.GlobalMaxPooling1D()] + head()[1:], (6, 2)),
        ([layers.Conv1D(3, 2, data_format="channels_first"),
          layers.GlobalAveragePooling1D(data_format="channels_first")] + head()[1:], (2, 6)),
        ([layers.Conv2D(3, 2), layers.GlobalAveragePooling2D()] + head()[1:], (4, 4, 2)),
    ]
    for model_layers, shape in cases:
        model = dl.Sequential([dl.Input(shape)] + model_layers)
        model.compile("sgd", "sparse_categorical_crossentropy")
        fd_check(model, RNG.normal(size=(3,) + shape), RNG.integers(0, 2, 3), rel=1e-4,
                 abs_=1e-7)


def test_pooling_configs_round_trip():
    for layer in (layers.MaxPooling2D((3, 2), strides=(1, 2), padding="SAME"),
                  layers.AveragePooling1D(3, data_format="channels_first"),
                  layers.GlobalMaxPooling1D(keepdims=True),
                  layers.GlobalAveragePooling2D(data_format="channels_first")):
        cfg = layer.get_config()
        assert type(layer).from_config(json.loads(json.dumps(cfg))).get_config() == cfg
    cfg = layers.MaxPooling2D().get_config()
    assert cfg["pool_size"] == [2, 2] and cfg["strides"] == [2, 2]
    assert cfg["padding"] == "valid" and cfg["data_format"] == "channels_last"
    assert layers.MaxPooling1D().get_config()["strides"] == [2]
    assert layers.AveragePooling2D(3, strides=1).strides == (1, 1)
    assert layers.GlobalAveragePooling1D().get_config()["keepdims"] is False


@pytest.mark.parametrize("make, match", [
    (lambda: layers.MaxPooling2D(0), "pool_size"),
    (lambda: layers.MaxPooling2D(2, strides=(1, 2, 3)), "strides"),
    (lambda: layers.AveragePooling2D(2, padding="causal"), "padding"),
    (lambda: layers.GlobalMaxPooling2D(keepdims=1), "keepdims"),
    (lambda: dl.Sequential([dl.Input((3, 3, 1)), layers.MaxPooling2D(4)]),
     "zero or negative"),
    (lambda: dl.Sequential([dl.Input((5, 2)), layers.AveragePooling1D(6)]),
     "zero or negative"),
    (lambda: dl.Sequential([dl.Input((5, 2)), layers.MaxPooling2D()]), "rank 4"),
    (lambda: dl.Sequential([dl.Input((5, 2, 2)), layers.GlobalAveragePooling1D()]),
     "rank 3"),
])
def test_pooling_errors(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()
