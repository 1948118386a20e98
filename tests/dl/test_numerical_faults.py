"""Numerical faults, on both backends:

* NaN or inf in the training data is reported before training starts, naming the row;
* a diverging run (NaN/inf loss) under TerminateOnNaN stops with a clear message and
  keeps the weights of the last finite step;
* losses stay finite for extreme logits (+-1e4) in float32: every loss with
  ``from_logits=True``, the fused softmax cross-entropy, the probability-space losses on
  saturated outputs, and a model-level fit with such logits.
"""
import math
import warnings

import numpy as np
import pytest

import dl
import kernels
from dl import callbacks, layers, losses, optimizers
from dl_helpers import both_backends, restore_dl_state  # noqa: F401  (autouse fixture)

BACKENDS = both_backends()


# ======================================================== NaN / inf in the data

def _regressor(backend, loss="mse", units=1):
    dl.utils.set_random_seed(0)
    model = dl.Sequential([layers.Dense(8, activation="relu", input_shape=(5,)),
                           layers.Dense(units)], backend=backend)
    model.compile(optimizers.Adam(learning_rate=0.01), loss)
    return model


class _Spy(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append("train_begin")

    def on_train_batch_begin(self, batch, logs=None):
        self.calls.append("batch")


# rows on both sides of fit's 4096-row scanning chunks, and the very last row
@pytest.mark.parametrize("row", [0, 4095, 4096, 9999])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["x", "y", "validation_x", "validation_y"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_nonfinite_data_is_reported_with_its_row_before_training(backend, where, bad, row):
    rng = np.random.default_rng(0)
    n = 10000
    x = rng.normal(size=(n, 5)).astype(np.float32)
    y = rng.normal(size=(n, 1)).astype(np.float32)
    vx, vy = x[:n // 2].copy(), y[:n // 2].copy()
    if where.startswith("validation") and row >= n // 2:
        row = n // 2 - 1
    target = {"x": x, "y": y, "validation_x": vx, "validation_y": vy}[where]
    target[row, -1] = bad
    model = _regressor(backend)
    before = model.get_weights()
    spy = _Spy()
    name = {"x": "x", "y": "y", "validation_x": r"validation_data\[0\]",
            "validation_y": r"validation_data\[1\]"}[where]
    with pytest.raises(ValueError, match=rf"{name}: .*NaN or inf in row {row}\b"):
        model.fit(x, y, epochs=1, batch_size=256, validation_data=(vx, vy), callbacks=[spy],
                  verbose=0)
    assert spy.calls == []                       # not a callback, not a step
    assert model.optimizer.iterations == 0
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nonfinite_float64_and_3d_data_name_the_row(backend):
    """float64 inputs (converted to the model's float32: an overflow to inf is caught
    too) and samples that are matrices (Flatten)."""
    dl.utils.set_random_seed(0)
    model = dl.Sequential([layers.Flatten(input_shape=(3, 4)), layers.Dense(2)],
                          backend=backend)
    model.compile("sgd", "mse")
    x = np.zeros((50, 3, 4))
    x[17, 2, 3] = 1e300                          # finite in float64, inf in float32
    with pytest.raises(ValueError, match=r"x: .*row 17\b"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)      # "overflow in cast"
        model.fit(x, np.zeros((50, 2)), verbose=0)
    x[17, 2, 3] = 0
    x[33, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"x: .*row 33\b"):
        model.fit(x, np.zeros((50, 2)), verbose=0)
    assert model.optimizer.iterations == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_nonfinite_validation_split_rows_are_reported(backend):
    """With validation_split the check runs on the whole x before the split: the row
    is the row of the caller's array."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(100, 5)).astype(np.float32)
    y = rng.normal(size=(100, 1)).astype(np.float32)
    x[95, 0] = np.nan                            # in the held-out validation part
    model = _regressor(backend)
    with pytest.raises(ValueError, match=r"row 95\b"):
        model.fit(x, y, validation_split=0.2, verbose=0)
    assert model.optimizer.iterations == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_nonfinite_sparse_labels_name_the_row(backend):
    """Integer-label targets given as floats with a NaN: also reported with the row."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 5)).astype(np.float32)
    labels = rng.integers(0, 3, size=40).astype(np.float32)
    labels[21] = np.nan
    model = _regressor(backend, loss="sparse_categorical_crossentropy", units=3)
    with pytest.raises(ValueError, match=r"row 21\b"):
        model.fit(x, labels, verbose=0)
    assert model.optimizer.iterations == 0


# ==================================================== TerminateOnNaN, divergence

def _diverging(backend):
    """A linear model that SGD(learning_rate=1.0) sends to infinity within a few dozen
    steps (the curvature of the MSE is far above 2 / learning_rate)."""
    dl.utils.set_random_seed(3)
    model = dl.Sequential([layers.Dense(1, input_shape=(4,))], backend=backend)
    model.compile(optimizers.SGD(learning_rate=1.0), "mse")
    rng = np.random.default_rng(4)
    x = (3.0 * rng.normal(size=(64, 4))).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32)
    return model, x, y


@pytest.mark.parametrize("backend", BACKENDS)
def test_terminate_on_nan_keeps_the_last_finite_weights(backend, capsys):
    model, x, y = _diverging(backend)
    finite_steps, last_finite = [0], [model.get_weights()]

    def record(batch, logs):
        # logs["loss"] is the epoch's running mean: finite exactly while every batch
        # of the epoch so far was finite
        if math.isfinite(logs["loss"]):
            finite_steps[0] += 1
            last_finite[0] = model.get_weights()

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        hist = model.fit(x, y, epochs=100, batch_size=8, shuffle=False, verbose=0,
                         callbacks=[callbacks.TerminateOnNaN(),
                                    callbacks.LambdaCallback(on_train_batch_end=record)])
    out = capsys.readouterr().out
    assert "Invalid loss, terminating training" in out
    assert "last finite step" in out
    epochs_run = len(hist.history["loss"])
    assert epochs_run < 100                              # stopped early
    assert not math.isfinite(hist.history["loss"][-1])
    steps = finite_steps[0]
    assert 3 < steps < 100 * 8
    assert model.optimizer.iterations == steps           # the bad step applied nothing
    weights = model.get_weights()
    for w in weights:
        assert np.isfinite(w).all()
    for w, w_last in zip(weights, last_finite[0]):
        np.testing.assert_array_equal(w, w_last)
    # bad weights are not "last finite": they are far from where training started
    assert np.abs(weights[0]).max() > 1e3

    # the same weights as a run stopped one step earlier (no TerminateOnNaN): the same
    # `steps` updates on the same batches
    again, _, _ = _diverging(backend)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        for step in range(steps):
            lo = (step % 8) * 8
            again.train_on_batch(x[lo:lo + 8], y[lo:lo + 8])
    for w, w_again in zip(weights, again.get_weights()):
        np.testing.assert_array_equal(w, w_again)
    # and its next step is the one that is not finite
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        lo = (steps % 8) * 8
        loss, grads = again.compute_gradients(x[lo:lo + 8], y[lo:lo + 8])
    assert not (math.isfinite(loss) and all(np.isfinite(g).all() for g in grads))


@pytest.mark.parametrize("backend", BACKENDS)
def test_without_terminate_on_nan_divergence_runs_on(backend):
    """The contrast: with no TerminateOnNaN, fit runs every epoch and the weights end
    up non-finite (so the test above does test the callback)."""
    model, x, y = _diverging(backend)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        hist = model.fit(x, y, epochs=30, batch_size=8, shuffle=False, verbose=0)
    assert len(hist.history["loss"]) == 30
    assert not all(np.isfinite(w).all() for w in model.get_weights())


# ================================================================= extreme logits

BIG = 1e4


def _extreme_logits(n=6, c=4, seed=5):
    """float32 logits of +-1e4 (and a few 0s), one-hot and integer labels, some rows
    right (the label's logit is the largest) and some badly wrong."""
    rng = np.random.default_rng(seed)
    z = rng.choice([-BIG, BIG, 0.0], size=(n, c), p=[0.45, 0.45, 0.1]).astype(np.float32)
    labels = rng.integers(0, c, size=n)
    z[0] = -BIG
    z[0, labels[0]] = BIG                     # right, saturated
    z[1] = BIG
    z[1, labels[1]] = -BIG                    # wrong, saturated
    onehot = np.eye(c, dtype=np.float32)[labels]
    return z, labels, onehot


def _logsumexp(z):
    m = z.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]


def _expected_ce(z, onehot):
    z = z.astype(np.float64)
    return float(np.mean(_logsumexp(z) - (z * onehot).sum(axis=1)))


def _expected_softmax(z):
    z = z.astype(np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _assert_finite(value, what):
    arr = np.asarray(value)
    assert arr.dtype == np.float32, f"{what}: dtype {arr.dtype}"
    assert np.isfinite(arr).all(), f"{what}: {arr}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_crossentropies_from_logits_at_extreme_logits(backend):
    be = kernels.get_backend(backend)
    z, labels, onehot = _extreme_logits()
    n, c = z.shape
    ce = _expected_ce(z, onehot)
    assert ce > 1e3                                     # the wrong rows count
    grad_ce = (_expected_softmax(z) - onehot) / n

    value = be.categorical_crossentropy(onehot, z, from_logits=True)
    _assert_finite(value, "categorical_crossentropy")
    np.testing.assert_allclose(float(value), ce, rtol=1e-6)
    grad = be.backprop_categorical_crossentropy(onehot, z, from_logits=True)
    _assert_finite(grad, "backprop_categorical_crossentropy")
    np.testing.assert_allclose(grad, grad_ce, rtol=1e-5, atol=1e-7)

    value = be.sparse_categorical_crossentropy(labels, z, from_logits=True)
    _assert_finite(value, "sparse_categorical_crossentropy")
    np.testing.assert_allclose(float(value), ce, rtol=1e-6)
    grad = be.backprop_sparse_categorical_crossentropy(labels, z, from_logits=True)
    _assert_finite(grad, "backprop_sparse_categorical_crossentropy")
    np.testing.assert_allclose(grad, grad_ce, rtol=1e-5, atol=1e-7)

    # binary: every element its own logit; targets 0/1
    t = (onehot > 0).astype(np.float32)
    z64 = z.astype(np.float64)
    bce = float(np.mean(np.maximum(z64, 0) - z64 * t + np.log1p(np.exp(-np.abs(z64)))))
    value = be.binary_crossentropy(t, z, from_logits=True)
    _assert_finite(value, "binary_crossentropy")
    np.testing.assert_allclose(float(value), bce, rtol=1e-6)
    grad = be.backprop_binary_crossentropy(t, z, from_logits=True)
    _assert_finite(grad, "backprop_binary_crossentropy")
    np.testing.assert_allclose(grad, (0.5 * (1 + np.tanh(z64 / 2)) - t) / z.size,
                               rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fused_softmax_crossentropy_at_extreme_logits(backend):
    be = kernels.get_backend(backend)
    z, labels, onehot = _extreme_logits(n=9, c=5, seed=6)
    n = z.shape[0]
    ce = _expected_ce(z, onehot)
    grad_ce = (_expected_softmax(z) - onehot) / n
    for loss, grad in (be.softmax_crossentropy(onehot, z),
                       be.sparse_softmax_crossentropy(labels, z)):
        _assert_finite(loss, "fused loss")
        _assert_finite(grad, "fused gradient")
        np.testing.assert_allclose(float(loss), ce, rtol=1e-6)
        np.testing.assert_allclose(grad, grad_ce, rtol=1e-5, atol=1e-7)
    # all logits equal and huge: a uniform softmax, log(c) per row
    flat = np.full((3, 5), BIG, np.float32)
    loss, grad = be.softmax_crossentropy(np.eye(5, dtype=np.float32)[:3], flat)
    np.testing.assert_allclose(float(loss), math.log(5), rtol=1e-6)
    _assert_finite(grad, "fused gradient (flat)")


@pytest.mark.parametrize("backend", BACKENDS)
def test_probability_losses_on_saturated_outputs(backend):
    """softmax/sigmoid of +-1e4 gives exact 0s and 1s: the probability-space losses
    clip (Keras's epsilon) and stay finite, their gradients too; the regression losses
    of 1e4-sized errors are finite."""
    be = kernels.get_backend(backend)
    z, labels, onehot = _extreme_logits()
    p = be.softmax(z)          # saturated: 1 and 0 (the cython exp gives ~1e-38
    assert (p < 1e-30).any() and (p == 1).any()        # for exp(-1e4), NumPy 0)
    s = be.sigmoid(z)
    assert (s < 1e-30).any() and (s == 1).any()
    t = (onehot > 0).astype(np.float32)
    for name, args in [
            ("categorical_crossentropy", (onehot, p)),
            ("sparse_categorical_crossentropy", (labels, p)),
            ("binary_crossentropy", (t, s)),
            ("mean_squared_error", (t, z)),
            ("mean_absolute_error", (t, z)),
            ("huber", (t, z))]:
        with np.errstate(all="raise"):           # no overflow / 0-division on the way
            value = getattr(be, name)(*args)
            grad = getattr(be, "backprop_" + name)(*args)
        _assert_finite(value, name)
        _assert_finite(grad, "backprop_" + name)
    # the clipped cross-entropy of a certainly-wrong row is -log(1e-7), not inf
    wrong = be.categorical_crossentropy(onehot[1:2], p[1:2])
    np.testing.assert_allclose(float(wrong), -math.log(1e-7), rtol=1e-4)


def _logit_model(backend, activation, loss, units=4):
    """x = ones(8): one Dense layer whose kernel makes logits of exactly +-1e4."""
    dl.utils.set_random_seed(7)
    model = dl.Sequential([layers.Dense(units, activation=activation, input_shape=(8,))],
                          backend=backend)
    model.compile(optimizers.SGD(learning_rate=1e-3), loss)
    z, labels, onehot = _extreme_logits(n=6, c=units, seed=8)
    # every sample sees the same input, so give each its own input row: x = e_i (one-hot
    # of the sample index, 8 >= 6 rows) and kernel row i = the logits of sample i
    x = np.eye(8, dtype=np.float32)[:6]
    kernel = np.zeros((8, units), np.float32)
    kernel[:6] = z
    model.set_weights([kernel, np.zeros(units, np.float32)])
    return model, x, z, labels, onehot


FIT_CASES = [
    ("linear", lambda: losses.SparseCategoricalCrossentropy(from_logits=True), "labels"),
    ("linear", lambda: losses.CategoricalCrossentropy(from_logits=True), "onehot"),
    ("linear", lambda: losses.BinaryCrossentropy(from_logits=True), "binary"),
    ("softmax", lambda: "sparse_categorical_crossentropy", "labels"),       # fused
    ("softmax", lambda: "categorical_crossentropy", "onehot"),              # fused
    ("sigmoid", lambda: "binary_crossentropy", "binary"),                    # clipped
]


@pytest.mark.parametrize("case", range(len(FIT_CASES)),
                         ids=[f"{a}-{t}" for a, _, t in FIT_CASES])
@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_with_extreme_logits_stays_finite(backend, case):
    activation, loss, target = FIT_CASES[case]
    model, x, z, labels, onehot = _logit_model(backend, activation, loss())
    if activation == "linear":
        np.testing.assert_array_equal(model.predict(x, verbose=0), z)
    y = {"labels": labels, "onehot": onehot, "binary": (onehot > 0).astype(np.float32)}[target]
    value, grads = model.compute_gradients(x, y)
    # large, as it should be (the clipped sigmoid + BCE is at most -log(1e-7) ~ 16)
    assert math.isfinite(value) and value > 5, value
    for g in grads:
        assert np.isfinite(g).all()
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        hist = model.fit(x, y, epochs=3, batch_size=3, verbose=0,
                         callbacks=[callbacks.TerminateOnNaN()])
    assert len(hist.history["loss"]) == 3
    assert all(math.isfinite(v) for v in hist.history["loss"])
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert math.isfinite(model.evaluate(x, y, verbose=0))
    assert np.isfinite(model.predict(x, verbose=0)).all()
