"""Weighted training: sample_weight and class_weight in fit / evaluate /
train_on_batch / test_on_batch, the loss reductions, weighted_metrics, weighted
validation data, and the validated-once steps with weights -- against hand-computed
values and against each other on every backend."""
import numpy as np
import pytest

import dl
import kernels
from dl import losses, metrics
from dl_helpers import restore_dl_state  # noqa: F401  (autouse fixture)

BACKENDS = [b for b in ("numpy", "cython", "cuda") if b in kernels.available_backends()]


def linear(backend="numpy", n_in=3, units=1, dtype="float64"):
    dl.config.set_floatx(dtype)
    model = dl.Sequential([dl.Input((n_in,)),
                           dl.layers.Dense(units, kernel_initializer="zeros")],
                          backend=backend)
    return model


def regression(n=8, n_in=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, n_in))
    y = x @ np.arange(1.0, n_in + 1) + 0.5
    return x, y


def test_one_weighted_sgd_step_is_the_hand_gradient():
    """Full batch, MSE, SGD: W -= lr * X^T (w * 2 (p - y)) / n, b likewise."""
    x, y = regression()
    w = np.array([1.0, 0.0, 2.0, 0.5, 3.0, 1.0, 0.0, 1.5])
    model = linear()
    model.compile(optimizer=dl.optimizers.SGD(0.1), loss="mse")
    model.fit(x, y, sample_weight=w, batch_size=8, epochs=1, shuffle=False, verbose=0)
    r = w * 2 * (0.0 - y) / 8          # zero weights: predictions are 0 at the start
    kernel, bias = model.get_weights()
    np.testing.assert_allclose(kernel[:, 0], -0.1 * x.T @ r, rtol=1e-12)
    np.testing.assert_allclose(bias, [-0.1 * r.sum()], rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_weights_two_and_zero_train_as_half_the_data(backend):
    """sum_i w_i l_i / n with w = (2, 2, 2, 2, 0, 0, 0, 0) is the mean loss over the
    first four samples: full-batch training gives the same weights."""
    x, y = regression()
    runs = []
    for data, kw in (((x, y), dict(sample_weight=np.repeat([2.0, 0.0], 4))),
                     ((x[:4], y[:4]), {})):
        model = linear(backend)
        model.compile(optimizer=dl.optimizers.Adam(0.05), loss="mse", metrics=["mae"])
        model.fit(*data, batch_size=8, epochs=5, verbose=0, **kw)
        runs.append(model.get_weights())
    for a, b in zip(*runs):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_class_weight_is_sample_weight_by_label():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20, 3))
    labels = rng.integers(0, 3, 20)
    class_weight = {0: 0.5, 2: 4.0}         # class 1 not named: weight 1
    by_hand = np.array([{0: 0.5, 2: 4.0}.get(int(c), 1.0) for c in labels])
    runs = []
    for y, kw in ((labels, dict(class_weight=class_weight)),
                  (labels, dict(sample_weight=by_hand)),
                  (np.eye(3)[labels], dict(class_weight=class_weight))):
        model = linear("cython", units=3)
        loss = "sparse_categorical_crossentropy" if y.ndim == 1 else "categorical_crossentropy"
        model.compile(optimizer="adam", loss=loss)
        h = model.fit(x, y, batch_size=6, epochs=3, verbose=0, **kw)
        runs.append((model.get_weights(), h.history["loss"]))
    for other in runs[1:]:
        for a, b in zip(runs[0][0], other[0]):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(runs[0][1], other[1], rtol=1e-12)


def test_class_weight_of_binary_targets_rounds_the_label():
    model = linear()
    model.compile(optimizer="sgd", loss="mse")
    w = model._class_weights({0: 2.0, 1: 3.0}, np.array([[0.0], [1.0], [0.9]]))
    np.testing.assert_array_equal(w, [2.0, 3.0, 3.0])


@pytest.mark.parametrize("reduction, scale", [("sum_over_batch_size", 1.0), ("mean", 1.0),
                                              ("sum", 8.0)])
def test_reductions_in_training_scale_the_gradient(reduction, scale):
    """SGD on the "sum" reduction with lr / n is SGD on the mean with lr."""
    x, y = regression()
    w = np.linspace(0.5, 2.0, 8)
    runs = []
    for red, lr in ((reduction, 0.01 / scale), ("sum_over_batch_size", 0.01)):
        model = linear()
        model.compile(optimizer=dl.optimizers.SGD(lr),
                      loss=losses.MeanSquaredError(reduction=red))
        h = model.fit(x, y, sample_weight=w, batch_size=8, epochs=3, verbose=0)
        runs.append((model.get_weights(), np.array(h.history["loss"]) / (
            scale if red == reduction else 1.0)))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(runs[0][1], runs[1][1], rtol=1e-12)


def test_mean_with_sample_weight_divides_by_the_weights():
    x, y = regression()
    w = np.linspace(0.5, 2.0, 8)
    model = linear()
    model.compile(optimizer="sgd", loss=losses.MeanSquaredError(
        reduction="mean_with_sample_weight"))
    loss = model.evaluate(x, y, sample_weight=w, batch_size=8, verbose=0)
    np.testing.assert_allclose(loss, np.sum(w * y ** 2) / w.sum(), rtol=1e-12)


def test_evaluate_and_test_on_batch_weigh_batches_by_size():
    """Keras: each batch's weighted loss sum_i w_i l_i / n_batch, the epoch's the
    batch-size-weighted mean of those."""
    x, y = regression(n=10)
    w = np.arange(10.0)
    model = linear()
    model.compile(optimizer="sgd", loss="mse", weighted_metrics=["mse"], metrics=["mse"])
    logs = model.evaluate(x, y, sample_weight=w, batch_size=4, verbose=0, return_dict=True)
    per = y ** 2
    batches = [(0, 4), (4, 8), (8, 10)]
    expected = sum((b - a) * np.sum(w[a:b] * per[a:b]) / (b - a) for a, b in batches) / 10
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-12)
    np.testing.assert_allclose(logs["weighted_mse"], np.sum(w * per) / w.sum(), rtol=1e-12)
    np.testing.assert_allclose(logs["mse"], per.mean(), rtol=1e-12)
    one = model.test_on_batch(x[:4], y[:4], sample_weight=w[:4], return_dict=True)
    np.testing.assert_allclose(one["loss"], np.sum(w[:4] * per[:4]) / 4, rtol=1e-12)


def test_weighted_validation_data_is_evaluate_with_weights():
    x, y = regression(n=12)
    xv, yv = regression(n=5, seed=3)
    wv = np.array([1.0, 0.0, 2.0, 3.0, 0.5])
    model = linear()
    model.compile(optimizer="sgd", loss="mse", weighted_metrics=["mae"])
    h = model.fit(x, y, validation_data=(xv, yv, wv), epochs=1, verbose=0)
    logs = model.evaluate(xv, yv, sample_weight=wv, verbose=0, return_dict=True)
    assert h.history["val_loss"][0] == pytest.approx(logs["loss"], rel=1e-12)
    assert h.history["val_mae"][0] == pytest.approx(logs["mae"], rel=1e-12)


def test_validation_split_splits_the_weights_too():
    x, y = regression(n=10)
    w = np.arange(1.0, 11.0)
    model = linear()
    model.compile(optimizer="sgd", loss="mse")
    h = model.fit(x, y, sample_weight=w, validation_split=0.2, epochs=1, verbose=0)
    val = model.evaluate(x[8:], y[8:], sample_weight=w[8:], verbose=0)
    assert h.history["val_loss"][0] == pytest.approx(val, rel=1e-12)


def test_train_on_batch_with_weights_and_class_weight():
    x, y = regression(n=4)
    model = linear()
    model.compile(optimizer=dl.optimizers.SGD(0.1), loss="mse")
    loss = model.train_on_batch(x, y, sample_weight=np.array([1.0, 0.0, 0.0, 0.0]))
    assert loss == pytest.approx(y[0] ** 2 / 4, rel=1e-12)
    model = dl.Sequential([dl.Input((3,)), dl.layers.Dense(2, activation="softmax",
                                                          kernel_initializer="zeros")],
                          backend="numpy")
    model.compile(optimizer=dl.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy",
                  weighted_metrics=["accuracy"])
    logs = model.train_on_batch(x, np.array([0, 1, 1, 1]), class_weight={1: 0.0},
                                return_dict=True)
    # zero weights: only sample 0 counts, its loss log(2) (equal logits) over 4 samples
    assert logs["loss"] == pytest.approx(np.log(2) / 4, rel=1e-12)


@pytest.mark.skipif("cython" not in kernels.available_backends(), reason="no cython")
@pytest.mark.parametrize("loss", ["mse", "sparse_categorical_crossentropy",
                                  losses.MeanAbsoluteError(reduction="sum"),
                                  losses.CategoricalCrossentropy(
                                      reduction="mean_with_sample_weight")])
def test_weighted_steps_keep_the_validated_once_plans_and_their_bits(monkeypatch, loss):
    from dl import _fast
    builds = []
    original = _fast.FastStep.build.__func__

    def counted(cls, *args):
        builds.append(args[-1])
        return original(cls, *args)
    monkeypatch.setattr(_fast.FastStep, "build", classmethod(counted))
    rng = np.random.default_rng(2)
    x = rng.standard_normal((29, 4)).astype(np.float32)
    labels = rng.integers(0, 3, 29)
    name = loss if isinstance(loss, str) else loss.name
    y = labels if "sparse" in name else np.eye(3, dtype=np.float32)[labels]
    w = rng.uniform(0, 2, 29)
    cy = kernels.get_backend("cython")
    runs = []
    for unchecked in (True, False):
        dl.utils.set_random_seed(4)
        model = dl.Sequential([dl.Input((4,)), dl.layers.Dense(5, activation="relu"),
                               dl.layers.Dense(3, activation="softmax")], backend="cython")
        the_loss = loss if isinstance(loss, str) else type(loss).from_config(
            loss.get_config())
        model.compile(optimizer="adam", loss=the_loss, weighted_metrics=["accuracy"])
        with monkeypatch.context() as m:
            if not unchecked:
                m.setattr(cy, "unchecked", None)
            builds.clear()
            h = model.fit(x, y, sample_weight=w, batch_size=8, epochs=3, verbose=0)
            if unchecked:
                assert builds == [8, 5]
        runs.append((model.get_weights(), h.history))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
    assert runs[0][1] == runs[1][1]


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "numpy"])
def test_weighted_fit_agrees_across_backends(backend):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((12, 4)).astype(np.float32)
    y = rng.integers(0, 3, 12)
    w = rng.uniform(0, 2, 12)
    histories = []
    for be in ("numpy", backend):
        dl.utils.set_random_seed(4)
        model = dl.Sequential([dl.Input((4,)), dl.layers.Dense(3, activation="softmax")],
                              backend=be)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      weighted_metrics=["accuracy"])
        histories.append(model.fit(x, y, sample_weight=w, batch_size=8, epochs=2,
                                   shuffle=True, verbose=0).history)
    for key in histories[0]:
        np.testing.assert_allclose(histories[0][key], histories[1][key], rtol=2e-5)


def test_loss_and_metric_calls_take_sample_weight():
    y_true = np.array([[1.0, 9, 2], [-5, -2, 6]])
    y_pred = np.array([[4.0, 8, 12], [8, 1, 3]])
    mse = losses.MeanSquaredError()
    assert mse(y_true, y_pred, sample_weight=[1.2, 3.4]) == pytest.approx(767.8 / 6)
    m = metrics.MeanSquaredError()
    m.update_state(y_true, y_pred, sample_weight=[1.2, 3.4])
    assert m.result() == pytest.approx((110 / 3 * 1.2 + 187 / 3 * 3.4) / 4.6)
    assert metrics.MeanSquaredError()(y_true, y_pred, sample_weight=[0, 0]) == 0.0


@pytest.mark.parametrize("kwargs, exc, start", [
    (dict(sample_weight=np.ones(7)), ValueError, "sample_weight: expected one weight per "
                                                 "sample, shape (8,)"),
    (dict(sample_weight=np.ones((8, 2))), ValueError, "sample_weight: expected one weight"),
    (dict(sample_weight=2.0), ValueError, "sample_weight: expected one weight"),
    (dict(sample_weight=np.array(["a"] * 8)), TypeError, "sample_weight: expected numbers"),
    (dict(sample_weight=np.r_[np.ones(7), np.nan]), ValueError,
     "sample_weight: expected finite values, got NaN or inf in row 7"),
    (dict(sample_weight=np.ones(8), class_weight={0: 1.0}), ValueError,
     "sample_weight, class_weight: You cannot"),
    (dict(class_weight=[1.0, 2.0]), ValueError, "class_weight: expected a dict"),
    (dict(class_weight={"zero": 1.0}), ValueError, "class_weight: expected integer class"),
    (dict(class_weight={0: float("inf")}), ValueError, "class_weight: expected a finite"),
    (dict(validation_data=(np.ones((2, 3)), np.ones(2), np.ones(3))), ValueError,
     "validation_data[2]: expected one weight per sample"),
])
def test_bad_weights_are_named(kwargs, exc, start):
    x, y = regression()
    model = linear()
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(exc) as info:
        model.fit(x, y, verbose=0, **kwargs)
    assert str(info.value).startswith(start), str(info.value)


def test_a_per_sample_loss_cannot_be_compiled():
    model = linear()
    with pytest.raises(ValueError, match="^loss: a loss with reduction=None gives one value"):
        model.compile(optimizer="sgd", loss=losses.MeanSquaredError(reduction=None))
    with pytest.raises(ValueError, match="Invalid value for argument `reduction`"):
        losses.MeanSquaredError(reduction="max")


def test_weighted_metrics_survive_saving(tmp_path):
    x, y = regression()
    model = linear()
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"], weighted_metrics=["mae"])
    model.fit(x, y, sample_weight=np.arange(8.0), verbose=0)
    model.save(tmp_path / "m.dlk")
    again = dl.load_model(tmp_path / "m.dlk")
    assert [m.name for m in again.metrics] == ["mae", "weighted_mae"]
    assert again._metric_plan[1][1] is True
