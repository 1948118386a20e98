"""dl on the cuda backend: the same models train to the same numbers as on the cython
backend (within float tolerance), with weights, gradients and optimizer state on the
device for the whole fit and one read back per epoch.

Under Numba's simulator these run small models (the seed program, a digits subset);
on a GPU the same tests run for real.
"""
import numpy as np
import pytest

import dl
from dl_helpers import restore_dl_state  # noqa: F401  (autouse fixture)

pytestmark = pytest.mark.usefixtures("cuda")

RTOL = dict(rtol=2e-4, atol=2e-5)   # float32 training: sums in another order


def seed_model(backend, epochs, seed=0):
    dl.utils.set_random_seed(seed)
    x = np.array([[1, 2], [2, 3], [3, 4], [4, 5]])
    y = np.array([1, 2, 3, 4])
    model = dl.Sequential([dl.layers.Dense(1, input_shape=(2,))], backend=backend)
    model.compile(optimizer="sgd", loss="mean_squared_error")
    history = model.fit(x, y, epochs=epochs, verbose=0)
    return model, history, model.predict(x, verbose=0)


def _digits(n=96):
    datasets = pytest.importorskip("sklearn.datasets")
    d = datasets.load_digits()
    x = (d.data[:n] / 16.0).astype(np.float32)
    return x, d.target[:n]


def digits_model(backend, epochs=2, **fit):
    dl.utils.set_random_seed(1)
    x, y = _digits()
    model = dl.Sequential([dl.layers.Dense(24, activation="relu", input_shape=(64,)),
                           dl.layers.Dense(10, activation="softmax")], backend=backend)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, **fit)
    return model, history, x, y


def _assert_weights_close(a, b, **tol):
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb)
    for u, v in zip(wa, wb):
        assert isinstance(u, np.ndarray) and u.dtype == v.dtype
        np.testing.assert_allclose(u, v, **(tol or RTOL))


def test_seed_program_matches_cython():
    cu, h_cu, p_cu = seed_model("cuda", 12)
    cy, h_cy, p_cy = seed_model("cython", 12)
    assert cu.backend.name == "cuda"
    np.testing.assert_allclose(h_cu.history["loss"], h_cy.history["loss"], **RTOL)
    _assert_weights_close(cu, cy)
    assert isinstance(p_cu, np.ndarray)
    np.testing.assert_allclose(p_cu, p_cy, **RTOL)


def test_digits_subset_matches_cython():
    cu, h_cu, x, y = digits_model("cuda")
    cy, h_cy, _, _ = digits_model("cython")
    for key in ("loss", "accuracy"):
        np.testing.assert_allclose(h_cu.history[key], h_cy.history[key], **RTOL)
    _assert_weights_close(cu, cy)
    np.testing.assert_allclose(cu.evaluate(x, y, verbose=0), cy.evaluate(x, y, verbose=0),
                               **RTOL)
    np.testing.assert_allclose(cu.predict(x, verbose=0), cy.predict(x, verbose=0), **RTOL)
    assert h_cu.history["loss"][-1] < h_cu.history["loss"][0]


def test_state_lives_on_the_device():
    model, _, _, _ = digits_model("cuda", epochs=1)
    layer = model.layers[0]
    for w in layer.weights + layer.gradients:
        assert not isinstance(w, np.ndarray)
        assert hasattr(w, "copy_to_host")
    for slots in model.optimizer._slots:
        for s in slots.values():
            assert not isinstance(s, np.ndarray)


def test_one_read_back_per_epoch():
    """fit without per-batch callbacks reads the device once per epoch (loss and metric
    sums), not once per step or kernel."""
    from kernels.cuda import devops
    before = devops.reads.count
    digits_model("cuda", epochs=2)            # 3 steps per epoch
    reads = devops.reads.count - before
    assert 1 <= reads <= 2 * 2, reads


def test_validation_and_callbacks_match_cython():
    cb_cu = dl.callbacks.EarlyStopping(monitor="val_loss", patience=5)
    cu, h_cu, _, _ = digits_model("cuda", validation_split=0.25, callbacks=[cb_cu])
    cy, h_cy, _, _ = digits_model("cython", validation_split=0.25)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(h_cu.history[key], h_cy.history[key], **RTOL)


def test_regularizers_dropout_clipping_match_cython():
    def build(backend):
        dl.utils.set_random_seed(2)
        x, y = _digits(64)
        model = dl.Sequential([
            dl.layers.Dense(16, activation="tanh", input_shape=(64,),
                            kernel_regularizer=dl.regularizers.L1L2(l1=1e-3, l2=1e-2)),
            dl.layers.Dropout(0.3),
            dl.layers.Dense(10)], backend=backend)
        model.compile(optimizer=dl.optimizers.RMSprop(clipnorm=0.5),
                      loss=dl.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        h = model.fit(x, y, batch_size=32, epochs=2, verbose=0)
        return model, h
    cu, h_cu = build("cuda")
    cy, h_cy = build("cython")
    np.testing.assert_allclose(h_cu.history["loss"], h_cy.history["loss"], **RTOL)
    _assert_weights_close(cu, cy)


@pytest.mark.parametrize("loss,metric,out", [
    ("mse", "mae", None), ("binary_crossentropy", "accuracy", "sigmoid"),
    ("categorical_crossentropy", "categorical_accuracy", "softmax")])
def test_other_losses_and_metrics(loss, metric, out):
    def build(backend):
        dl.utils.set_random_seed(3)
        rng = np.random.default_rng(0)
        x = rng.random((40, 5)).astype(np.float32)
        units = 1 if loss != "categorical_crossentropy" else 3
        if loss == "mse":
            y = x[:, :1] * 2 - 1
        elif loss == "binary_crossentropy":
            y = (x[:, :1] > 0.5).astype(np.float32)
        else:
            y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 40)]
        model = dl.Sequential([dl.layers.Dense(8, activation="elu", input_shape=(5,)),
                               dl.layers.Dense(units, activation=out)], backend=backend)
        model.compile(optimizer=dl.optimizers.SGD(0.05, momentum=0.9), loss=loss,
                      metrics=[metric])
        return model, model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    cu, h_cu = build("cuda")
    cy, h_cy = build("cython")
    for key in h_cy.history:
        np.testing.assert_allclose(h_cu.history[key], h_cy.history[key], **RTOL)


def test_weights_round_trip(tmp_path):
    model, _, x, y = digits_model("cuda", epochs=1)
    path = tmp_path / "m.dlk"
    model.save(path)
    loaded = dl.models.load_model(path, backend="cuda")
    assert loaded.backend.name == "cuda"
    _assert_weights_close(model, loaded, rtol=0, atol=0)
    other = dl.models.load_model(path, backend="cython")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), other.predict(x, verbose=0),
                               **RTOL)
    weights = model.get_weights()
    weights[0] = weights[0] * 0
    model.set_weights(weights)
    np.testing.assert_array_equal(model.get_weights()[0], 0)


def test_train_on_batch_and_gradients_match_cython():
    def build(backend):
        dl.utils.set_random_seed(4)
        x, y = _digits(32)
        model = dl.Sequential([dl.layers.Dense(12, activation="gelu", input_shape=(64,)),
                               dl.layers.Dense(10, activation="softmax")], backend=backend)
        model.compile(optimizer="adamw", loss="sparse_categorical_crossentropy")
        loss, grads = model.compute_gradients(x, y)
        step = model.train_on_batch(x, y)
        return loss, grads, step
    l_cu, g_cu, s_cu = build("cuda")
    l_cy, g_cy, s_cy = build("cython")
    np.testing.assert_allclose(l_cu, l_cy, **RTOL)
    np.testing.assert_allclose(s_cu, s_cy, **RTOL)
    for a, b in zip(g_cu, g_cy):
        assert isinstance(a, np.ndarray)
        np.testing.assert_allclose(a, b, **RTOL)


def test_terminate_on_nan_on_the_device():
    dl.utils.set_random_seed(0)
    x = np.array([[1.0, 2.0], [2.0, 3.0]], np.float32)
    y = np.array([1.0, 2.0], np.float32)
    model = dl.Sequential([dl.layers.Dense(1, input_shape=(2,))], backend="cuda")
    model.compile(optimizer=dl.optimizers.SGD(1e3), loss="mse")
    history = model.fit(x, y, epochs=50, verbose=0,
                        callbacks=[dl.callbacks.TerminateOnNaN()])
    assert len(history.history["loss"]) < 50
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_launches_per_step_are_counted():
    from kernels.cuda.backend import launches
    model, _, x, y = digits_model("cuda", epochs=1)
    before = launches.count
    model.fit(x[:32], y[:32], batch_size=32, epochs=1, verbose=0, shuffle=False)
    per_step = launches.count - before
    # 2 dense forward + loss (2) + 2 dense backward + 4 Adam updates + accumulators
    assert 8 <= per_step <= 30, per_step


def test_data_too_large_for_the_device_streams(monkeypatch):
    """A dataset over the device's budget stays on the host; batches go through
    page-locked buffers, with the same numbers as when it is resident."""
    from kernels.cuda import devops
    resident, h_res, x, y = digits_model("cuda")
    monkeypatch.setattr(devops, "DEVICE_DATA_LIMIT", 1024)
    streamed, h_str, _, _ = digits_model("cuda", validation_split=0.0)
    np.testing.assert_allclose(h_str.history["loss"], h_res.history["loss"], rtol=1e-6)
    _assert_weights_close(streamed, resident, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(streamed.evaluate(x, y, verbose=0),
                               resident.evaluate(x, y, verbose=0), rtol=1e-6)
