"""dl's convolution, pooling, normalisation and image layers on the cuda backend: a
small net using every one of them (channels_first edges, causal Conv1D padded by dl,
BatchNormalization on axis 1 and -1) trains to the numbers of the numpy backend,
with its buffers and weights on the device (ops.permute / place_cols / take_cols,
int32 argmax buffers).  Under Numba's simulator the net is tiny."""
import numpy as np
import pytest

import dl
from dl import layers
from dl_helpers import restore_dl_state  # noqa: F401  (autouse fixture)

pytestmark = pytest.mark.usefixtures("cuda")


def _net(backend):
    dl.utils.set_random_seed(0)
    cf = "channels_first"
    model = dl.Sequential([
        dl.Input((2, 5, 5)),
        layers.Conv2D(2, 3, padding="same", data_format=cf, activation="relu"),
        layers.BatchNormalization(axis=1),
        layers.MaxPooling2D(2, data_format=cf, padding="same"),
        layers.ZeroPadding2D(((1, 0), (0, 1)), data_format=cf),
        layers.UpSampling2D((1, 2), data_format=cf),
        layers.SeparableConv2D(2, 2, data_format=cf),
        layers.DepthwiseConv2D(1, data_format=cf, activation="gelu"),
        layers.AveragePooling2D(2, data_format=cf, padding="same"),
        layers.GlobalMaxPooling2D(data_format=cf),
        layers.Reshape((2, 1)),
        layers.Conv1D(2, 2, padding="causal", strides=2),
        layers.GlobalAveragePooling1D(),
        layers.BatchNormalization(),
        layers.Dense(2, activation="softmax")], backend=backend)
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def test_conv_net_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 2, 5, 5)).astype(np.float32)
    y = rng.integers(0, 2, 4)
    results = []
    for backend in ("cuda", "numpy"):
        model = _net(backend)
        history = model.fit(x, y, epochs=1, batch_size=4, verbose=0).history["loss"]
        results.append((history, model.get_weights(), model.predict(x, verbose=0)))
    (h_cu, w_cu, p_cu), (h_np, w_np, p_np) = results
    np.testing.assert_allclose(h_cu, h_np, rtol=2e-4, atol=2e-5)
    for a, b in zip(w_cu, w_np):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4)
    np.testing.assert_allclose(p_cu, p_np, rtol=2e-4, atol=2e-5)
