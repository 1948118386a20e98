"""dl's training numerics against an independent NumPy model of Keras 3 (float64).

The reference (tests/dl_helpers.py) is written from KERAS_NUMERICS.md: its own forward
pass, backprop, losses and optimizer updates; it calls neither kernels nor dl.
"""
import numpy as np
import pytest

import dl
from dl import layers, losses, optimizers, regularizers
from dl_helpers import (RefOptimizer, both_backends, mlp_loss_and_grads,  # noqa: F401
                        reference_fit, restore_dl_state)

RTOL = 1e-6
EPOCHS = 20

# (id, dl optimizer factory, reference kind, reference hyper-parameters)
OPTIMIZERS = [
    ("sgd", lambda: optimizers.SGD(learning_rate=0.1), "sgd", dict(learning_rate=0.1)),
    ("sgd_momentum", lambda: optimizers.SGD(learning_rate=0.05, momentum=0.9), "sgd",
     dict(learning_rate=0.05, momentum=0.9)),
    ("sgd_nesterov", lambda: optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
     "sgd", dict(learning_rate=0.05, momentum=0.9, nesterov=True)),
    ("adam", lambda: optimizers.Adam(learning_rate=0.02), "adam", dict(learning_rate=0.02)),
    ("adam_hp", lambda: optimizers.Adam(learning_rate=0.01, beta_1=0.8, beta_2=0.99,
                                        epsilon=1e-4),
     "adam", dict(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-4)),
    ("rmsprop", lambda: optimizers.RMSprop(learning_rate=0.01), "rmsprop",
     dict(learning_rate=0.01)),
    ("rmsprop_centered_momentum",
     lambda: optimizers.RMSprop(learning_rate=0.005, momentum=0.9, centered=True),
     "rmsprop", dict(learning_rate=0.005, momentum=0.9, centered=True)),
    ("adagrad", lambda: optimizers.Adagrad(learning_rate=0.1), "adagrad",
     dict(learning_rate=0.1, initial_accumulator_value=0.1)),
    ("adamw", lambda: optimizers.AdamW(learning_rate=0.02, weight_decay=0.1), "adamw",
     dict(learning_rate=0.02, weight_decay=0.1)),
    ("adamw_default_decay", lambda: optimizers.AdamW(learning_rate=0.02), "adamw",
     dict(learning_rate=0.02, weight_decay=0.004)),
    ("adam_amsgrad", lambda: optimizers.Adam(learning_rate=0.02, amsgrad=True), "adam",
     dict(learning_rate=0.02, amsgrad=True)),
    # weight_decay on any optimizer: w -= w * wd * lr before the step
    ("sgd_momentum_weight_decay",
     lambda: optimizers.SGD(learning_rate=0.05, momentum=0.5, weight_decay=0.2), "sgd",
     dict(learning_rate=0.05, momentum=0.5, weight_decay=0.2)),
    ("rmsprop_weight_decay", lambda: optimizers.RMSprop(learning_rate=0.01, weight_decay=0.3),
     "rmsprop", dict(learning_rate=0.01, weight_decay=0.3)),
    # gradient clipping (active in these runs: see test_clipping_is_exercised)
    ("sgd_clipnorm", lambda: optimizers.SGD(learning_rate=0.1, clipnorm=0.3), "sgd",
     dict(learning_rate=0.1, clipnorm=0.3)),
    ("sgd_clipvalue", lambda: optimizers.SGD(learning_rate=0.1, clipvalue=0.1), "sgd",
     dict(learning_rate=0.1, clipvalue=0.1)),
    ("adam_global_clipnorm", lambda: optimizers.Adam(learning_rate=0.02, global_clipnorm=0.5),
     "adam", dict(learning_rate=0.02, global_clipnorm=0.5)),
]
OPT_IDS = [o[0] for o in OPTIMIZERS]


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(12, 3))
    y_reg = np.stack([np.sin(x[:, 0]) + 0.5 * x[:, 1], x[:, 2] * x[:, 0]], axis=1)
    x_cls = rng.normal(size=(15, 4))
    labels = np.array([0, 1, 2] * 5)
    rng.shuffle(labels)
    x_cls[np.arange(15), labels] += 1.0   # learnable, not trivially separable
    return x, y_reg, x_cls, labels


def _init_weights(shapes, seed):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-0.6, 0.6, size=s) for s in shapes]


def _mlp(units, acts, n_in, backend=None, **dense_kwargs):
    model = dl.Sequential(
        [layers.Dense(units[0], activation=acts[0], input_shape=(n_in,), dtype="float64",
                      **dense_kwargs)]
        + [layers.Dense(u, activation=a, dtype="float64", **dense_kwargs)
           for u, a in zip(units[1:], acts[1:])], backend=backend)
    model.build()
    return model


def _shapes(units, n_in):
    shapes, prev = [], n_in
    for u in units:
        shapes += [(prev, u), (u,)]
        prev = u
    return shapes


# ------------------------------------------------------------- loss trajectories

@pytest.mark.parametrize("backend", both_backends())
@pytest.mark.parametrize("opt", OPTIMIZERS, ids=OPT_IDS)
def test_mse_regression_trajectory(opt, backend):
    _, make_opt, kind, hp = opt
    x, y, _, _ = _data()
    units, acts = (5, 2), ("tanh", "linear")
    w0 = _init_weights(_shapes(units, 3), seed=1)
    model = _mlp(units, acts, 3, backend=backend)
    model.set_weights(w0)
    model.compile(optimizer=make_opt(), loss="mse")
    hist = model.fit(x, y, batch_size=len(x), epochs=EPOCHS, shuffle=False, verbose=0)
    expected, w_final = reference_fit(w0, acts, x, y, "mse", RefOptimizer(kind, **hp), EPOCHS)
    assert len(hist.history["loss"]) == EPOCHS
    np.testing.assert_allclose(hist.history["loss"], expected, rtol=RTOL)
    assert expected[-1] < expected[0]                      # the run does train
    for w, r in zip(model.get_weights(), w_final):
        assert w.dtype == np.float64
        np.testing.assert_allclose(w, r, rtol=RTOL, atol=1e-9)
    assert model.optimizer.iterations == EPOCHS


@pytest.mark.parametrize("sparse", [False, True], ids=["categorical", "sparse"])
@pytest.mark.parametrize("opt", OPTIMIZERS, ids=OPT_IDS)
def test_crossentropy_classifier_trajectory(opt, sparse):
    _, make_opt, kind, hp = opt
    _, _, x, labels = _data()
    y = labels if sparse else np.eye(3)[labels]
    loss = "sparse_categorical_crossentropy" if sparse else "categorical_crossentropy"
    units, acts = (6, 3), ("tanh", "softmax")
    w0 = _init_weights(_shapes(units, 4), seed=2)
    model = _mlp(units, acts, 4)
    model.set_weights(w0)
    model.compile(optimizer=make_opt(), loss=loss)
    hist = model.fit(x, y, batch_size=len(x), epochs=EPOCHS, shuffle=False, verbose=0)
    expected, w_final = reference_fit(w0, acts, x, y, loss, RefOptimizer(kind, **hp), EPOCHS)
    np.testing.assert_allclose(hist.history["loss"], expected, rtol=RTOL)
    assert expected[-1] < expected[0]
    for w, r in zip(model.get_weights(), w_final):
        np.testing.assert_allclose(w, r, rtol=RTOL, atol=1e-9)


@pytest.mark.parametrize("opt", [o for o in OPTIMIZERS if "clip" in o[0]],
                         ids=[o[0] for o in OPTIMIZERS if "clip" in o[0]])
def test_clipping_is_exercised(opt):
    """The clipping cases above do clip (partly), in both test problems."""
    _, _, kind, hp = opt
    x, y, x_cls, labels = _data()
    ref = RefOptimizer(kind, **hp)
    reference_fit(_init_weights(_shapes((5, 2), 3), seed=1), ("tanh", "linear"), x, y, "mse",
                  ref, EPOCHS)
    assert 0 < ref.clipped
    ref = RefOptimizer(kind, **hp)
    reference_fit(_init_weights(_shapes((6, 3), 4), seed=2), ("tanh", "softmax"), x_cls,
                  labels, "sparse_categorical_crossentropy", ref, EPOCHS)
    assert 0 < ref.clipped


def test_floatx_float64_trains_in_float64():
    dl.config.set_floatx("float64")
    x, y, _, _ = _data()
    w0 = _init_weights(_shapes((5, 2), 3), seed=1)
    model = dl.Sequential([layers.Dense(5, activation="tanh", input_shape=(3,)),
                           layers.Dense(2)])
    model.set_weights(w0)
    assert all(w.dtype == np.float64 for w in model.get_weights())
    model.compile(optimizer=optimizers.Adam(learning_rate=0.02), loss="mse")
    hist = model.fit(x, y, batch_size=12, epochs=EPOCHS, shuffle=False, verbose=0)
    expected, _ = reference_fit(w0, ("tanh", "linear"), x, y, "mse",
                                RefOptimizer("adam", learning_rate=0.02), EPOCHS)
    np.testing.assert_allclose(hist.history["loss"], expected, rtol=RTOL)
    assert model.predict(x, verbose=0).dtype == np.float64


# --------------------------------------------------------------- regularizers

def test_l2_kernel_l1_bias_regularizers_trajectory():
    x, y, _, _ = _data()
    units, acts = (5, 2), ("tanh", "linear")
    l2, l1 = 0.01, 0.02
    w0 = _init_weights(_shapes(units, 3), seed=3)
    model = _mlp(units, acts, 3, kernel_regularizer=regularizers.L2(l2),
                 bias_regularizer=regularizers.L1(l1))
    model.set_weights(w0)
    model.compile(optimizer=optimizers.SGD(learning_rate=0.1), loss="mse")

    def penalty(ws):
        value = sum(l2 * np.sum(w ** 2) for w in ws[0::2]) + sum(l1 * np.sum(np.abs(b))
                                                                 for b in ws[1::2])
        grads = [2 * l2 * w if i % 2 == 0 else l1 * np.sign(w) for i, w in enumerate(ws)]
        return value, grads

    hist = model.fit(x, y, batch_size=12, epochs=EPOCHS, shuffle=False, verbose=0)
    expected, w_final = reference_fit(w0, acts, x, y, "mse",
                                      RefOptimizer("sgd", learning_rate=0.1), EPOCHS,
                                      penalty=penalty)
    np.testing.assert_allclose(hist.history["loss"], expected, rtol=RTOL)
    for w, r in zip(model.get_weights(), w_final):
        np.testing.assert_allclose(w, r, rtol=RTOL, atol=1e-9)


def test_l2_penalty_has_no_half_and_gradient_two_l2_w():
    x, y, _, _ = _data()
    l2 = 0.05
    w0 = _init_weights(_shapes((2,), 3), seed=4)
    plain = _mlp((2,), ("linear",), 3)
    reg = _mlp((2,), ("linear",), 3, kernel_regularizer=regularizers.L2(l2))
    for m in (plain, reg):
        m.set_weights(w0)
        m.compile(optimizer="sgd", loss="mse")
    base_loss = plain.evaluate(x, y, batch_size=12, verbose=0)
    pred = x @ w0[0] + w0[1]
    np.testing.assert_allclose(base_loss, np.mean((pred - y) ** 2), rtol=1e-12)
    # evaluate and the training loss both include l2 * sum(w^2), with no 1/2
    np.testing.assert_allclose(reg.evaluate(x, y, batch_size=12, verbose=0),
                               base_loss + l2 * np.sum(w0[0] ** 2), rtol=1e-12)
    loss_reg, grads_reg = reg.compute_gradients(x, y)
    loss_plain, grads_plain = plain.compute_gradients(x, y)
    np.testing.assert_allclose(loss_reg, loss_plain + l2 * np.sum(w0[0] ** 2), rtol=1e-12)
    np.testing.assert_allclose(grads_reg[0], grads_plain[0] + 2 * l2 * w0[0], rtol=1e-12)
    np.testing.assert_allclose(grads_reg[1], grads_plain[1], rtol=1e-12)
    # and the analytic MSE gradient itself
    np.testing.assert_allclose(grads_plain[0], x.T @ (2 * (pred - y) / y.size), rtol=1e-12)
    # the penalty is in the first reported training loss
    hist = reg.fit(x, y, batch_size=12, epochs=1, shuffle=False, verbose=0)
    np.testing.assert_allclose(hist.history["loss"][0], base_loss + l2 * np.sum(w0[0] ** 2),
                               rtol=1e-12)


def test_regularizer_by_name_defaults():
    w = np.array([[1.0, -2.0], [0.5, 0.0]])
    np.testing.assert_allclose(regularizers.get("l2")(w), 0.01 * np.sum(w ** 2))
    np.testing.assert_allclose(regularizers.get("l1")(w), 0.01 * np.sum(np.abs(w)))
    np.testing.assert_allclose(regularizers.L1L2(l1=0.1, l2=0.2)(w),
                               0.1 * np.sum(np.abs(w)) + 0.2 * np.sum(w ** 2))
    g = np.zeros_like(w)
    regularizers.L1L2(l1=0.1, l2=0.2).add_gradient(w, g)
    np.testing.assert_allclose(g, 0.1 * np.sign(w) + 0.4 * w)


# ---------------------------------------------------- several batches per epoch

@pytest.mark.parametrize("opt", [OPTIMIZERS[0], OPTIMIZERS[3]], ids=["sgd", "adam"])
def test_epoch_loss_is_batch_size_weighted_mean(opt):
    _, make_opt, kind, hp = opt
    x, y, _, _ = _data()
    x, y = x[:10], y[:10]
    units, acts = (5, 2), ("tanh", "linear")
    w0 = _init_weights(_shapes(units, 3), seed=5)
    model = _mlp(units, acts, 3)
    model.set_weights(w0)
    model.compile(optimizer=make_opt(), loss="mse")
    batch_losses = []
    cb = dl.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: batch_losses.append(
        (b, logs["loss"])))
    hist = model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0, callbacks=[cb])
    expected, w_final = reference_fit(w0, acts, x, y, "mse", RefOptimizer(kind, **hp), 3,
                                      batch_size=4)
    np.testing.assert_allclose(hist.history["loss"], expected, rtol=RTOL)
    for w, r in zip(model.get_weights(), w_final):
        np.testing.assert_allclose(w, r, rtol=RTOL, atol=1e-9)
    # three steps per epoch (4 + 4 + 2), the logged loss a running weighted mean
    assert [b for b, _ in batch_losses] == [0, 1, 2] * 3
    assert model.optimizer.iterations == 9
    # the unweighted mean of the three batch losses would differ
    ws = [w.copy() for w in w0]
    from dl_helpers import mlp_loss_and_grads
    per_batch = []
    ref_opt = RefOptimizer(kind, **hp)
    for lo, hi in ((0, 4), (4, 8), (8, 10)):
        value, grads = mlp_loss_and_grads(ws, acts, x[lo:hi], y[lo:hi], "mse")
        ref_opt.step(ws, grads)
        per_batch.append(value)
    np.testing.assert_allclose(hist.history["loss"][0],
                               (4 * per_batch[0] + 4 * per_batch[1] + 2 * per_batch[2]) / 10,
                               rtol=RTOL)
    assert abs(np.mean(per_batch) - hist.history["loss"][0]) > 1e-6
    np.testing.assert_allclose(batch_losses[1][1], (per_batch[0] + per_batch[1]) / 2,
                               rtol=RTOL)


def test_evaluate_is_batch_size_weighted_mean():
    x, y, _, _ = _data()
    x, y = x[:10], y[:10]
    w0 = _init_weights(_shapes((5, 2), 3), seed=6)
    model = _mlp((5, 2), ("tanh", "linear"), 3)
    model.set_weights(w0)
    model.compile(optimizer="sgd", loss="mse")
    full = model.evaluate(x, y, batch_size=10, verbose=0)
    in_threes = model.evaluate(x, y, batch_size=3, verbose=0)
    pred = np.tanh(x @ w0[0] + w0[1]) @ w0[2] + w0[3]
    np.testing.assert_allclose(full, np.mean((pred - y) ** 2), rtol=1e-12)
    np.testing.assert_allclose(in_threes, full, rtol=1e-12)


# ----------------------------------------------- gradients vs finite differences

def _fd_check(model, x, y, ref=None, rtol=1e-5, atol=1e-8, h=1e-6):
    """compute_gradients against central differences of the evaluate loss, and (with
    ``ref = (activations, loss name)``) loss and gradients against the independent
    NumPy backprop of dl_helpers."""
    weights = model.get_weights()
    loss, grads = model.compute_gradients(x, y)
    np.testing.assert_allclose(loss, model.evaluate(x, y, batch_size=len(x), verbose=0),
                               rtol=1e-10)
    if ref is not None:
        ref_loss, ref_grads = mlp_loss_and_grads(weights, ref[0], x, y, ref[1])
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-10, err_msg="loss vs reference")
        for k, (g, r) in enumerate(zip(grads, ref_grads)):
            np.testing.assert_allclose(g, r, rtol=1e-8, atol=1e-12,
                                       err_msg=f"gradient {k} vs reference backprop")
    assert len(grads) == len(weights)
    for k, w in enumerate(weights):
        assert grads[k].shape == w.shape
        fd = np.zeros_like(w)
        for idx in np.ndindex(w.shape):
            for sign in (1, -1):
                trial = [v.copy() for v in weights]
                trial[k][idx] += sign * h
                model.set_weights(trial)
                fd[idx] += sign * model.evaluate(x, y, batch_size=len(x), verbose=0)
        fd /= 2 * h
        np.testing.assert_allclose(grads[k], fd, rtol=rtol, atol=atol,
                                   err_msg=f"weight {k} of shape {w.shape}")
    model.set_weights(weights)
    # compute_gradients changes nothing
    for a, b in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(a, b)


def _three_layer(act, out_units, out_act, loss, seed, n_in=4, extra=(), backend=None):
    rng = np.random.default_rng(seed)
    model = dl.Sequential([layers.Dense(5, activation=act, input_shape=(n_in,), dtype="float64"),
                           layers.Dense(4, activation=act, dtype="float64"),
                           layers.Dense(out_units, activation=out_act, dtype="float64"),
                           *extra], backend=backend)
    model.build()
    model.set_weights([rng.uniform(-0.8, 0.8, size=w.shape) for w in model.get_weights()])
    model.compile(optimizer="sgd", loss=loss)
    return model


HIDDEN = ["relu", "tanh", "sigmoid", "elu", "gelu", "softplus", "leaky_relu", "linear",
          "relu6", "selu", "silu", "hard_sigmoid", "hard_silu", "mish", "exponential",
          "softsign"]


@pytest.mark.parametrize("backend", both_backends())
@pytest.mark.parametrize("act", HIDDEN)
def test_gradients_each_activation_mse(act, backend):
    rng = np.random.default_rng(10)
    x = rng.normal(size=(7, 4))
    y = rng.normal(size=(7, 2))
    model = _three_layer(act, 2, "linear", "mse", seed=11, backend=backend)
    _fd_check(model, x, y, ref=((act, act, "linear"), "mse"))


@pytest.mark.parametrize("backend", both_backends())
@pytest.mark.parametrize("act", ["tanh", "gelu", "elu", "leaky_relu"])
def test_gradients_softmax_output_fused_sparse(act, backend):
    rng = np.random.default_rng(12)
    x = rng.normal(size=(8, 4))
    labels = rng.integers(0, 3, size=8)
    model = _three_layer(act, 3, "softmax", "sparse_categorical_crossentropy", seed=13,
                         backend=backend)
    assert model.layers[-1].fuse_softmax_loss
    _fd_check(model, x, labels, ref=((act, act, "softmax"), "sparse_categorical_crossentropy"))


# case -> (output activation, units, loss, the reference's loss name)
LOSS_CASES = {
    "mse": ("linear", 2, "mse", "mse"),
    "mse_softmax": ("softmax", 3, "mse", "mse"),
    "huber": ("linear", 2, "huber", "huber"),
    "mae": ("linear", 2, "mae", "mae"),
    "bce_sigmoid": ("sigmoid", 2, "binary_crossentropy", "binary_crossentropy"),
    "bce_logits": ("linear", 2, "logits", "bce_logits"),
    "cce_softmax_fused": ("softmax", 3, "categorical_crossentropy", "categorical_crossentropy"),
    "scce_softmax_fused": ("softmax", 3, "sparse_categorical_crossentropy",
                           "sparse_categorical_crossentropy"),
    "cce_logits": ("linear", 3, "cce_logits", "cce_logits"),
    "scce_logits": ("linear", 3, "scce_logits", "scce_logits"),
}


@pytest.mark.parametrize("case", list(LOSS_CASES))
def test_gradients_each_loss(case):
    out_act, units, loss, ref_loss = LOSS_CASES[case]
    rng = np.random.default_rng(20)
    x = rng.normal(size=(9, 4))
    loss_obj = {"logits": losses.BinaryCrossentropy(from_logits=True),
                "cce_logits": losses.CategoricalCrossentropy(from_logits=True),
                "scce_logits": losses.SparseCategoricalCrossentropy(from_logits=True)
                }.get(loss, loss)
    model = _three_layer("tanh", units, out_act, loss_obj, seed=21)
    pred = model.predict(x, verbose=0)
    if case in ("mse", "huber", "mse_softmax"):
        # errors on both sides of Huber's delta = 1, none within 0.2 of it
        size = rng.choice([0.5, 1.6], size=pred.shape) + rng.uniform(-0.3, 0.3, size=pred.shape)
        y = pred + rng.choice([-1, 1], size=pred.shape) * size
        err = np.abs(y - pred)
        assert (err < 0.8).any() and (err > 1.2).any()
    elif case == "mae":
        # away from the kink: |y - p| at least 0.3
        y = pred + rng.choice([-1, 1], size=pred.shape) * rng.uniform(0.3, 1.0, size=pred.shape)
    elif units == 2:
        y = rng.integers(0, 2, size=pred.shape).astype(np.float64)
    elif "scce" in case:
        y = rng.integers(0, 3, size=9)
    else:
        y = np.eye(3)[rng.integers(0, 3, size=9)]
    assert model.layers[-1].fuse_softmax_loss == case.endswith("fused")
    _fd_check(model, x, y, ref=(("tanh", "tanh", out_act), ref_loss))


def test_gradients_softmax_activation_layer_unfused():
    """A softmax applied by an Activation layer: softmax backprop + CE from probabilities."""
    rng = np.random.default_rng(30)
    x = rng.normal(size=(6, 4))
    y = np.eye(3)[rng.integers(0, 3, size=6)]
    model = _three_layer("tanh", 3, "linear", "categorical_crossentropy", seed=31,
                         extra=(layers.Activation("softmax"),))
    assert not model.layers[2].fuse_softmax_loss
    _fd_check(model, x, y, ref=(("tanh", "tanh", "softmax"), "categorical_crossentropy"))


def test_gradients_with_regularizers_and_no_bias():
    rng = np.random.default_rng(40)
    x = rng.normal(size=(6, 3))
    y = rng.normal(size=(6, 1))
    model = dl.Sequential([
        layers.Dense(4, activation="tanh", input_shape=(3,), dtype="float64",
                     kernel_regularizer=regularizers.L1L2(l1=0.01, l2=0.03), use_bias=False),
        layers.Dense(1, dtype="float64", bias_regularizer="l2")])
    model.build()
    model.set_weights([rng.uniform(-0.8, 0.8, size=w.shape) for w in model.get_weights()])
    model.compile(optimizer="sgd", loss="mse")
    assert [w.shape for w in model.get_weights()] == [(3, 4), (4, 1), (1,)]
    _fd_check(model, x, y)


def test_gradients_match_reference_backprop():
    """compute_gradients equals the independent backprop (not only finite differences)."""
    from dl_helpers import mlp_loss_and_grads
    x, y, _, _ = _data()
    w0 = _init_weights(_shapes((5, 2), 3), seed=7)
    model = _mlp((5, 2), ("tanh", "linear"), 3)
    model.set_weights(w0)
    model.compile(optimizer="sgd", loss="mse")
    loss, grads = model.compute_gradients(x, y)
    ref_loss, ref_grads = mlp_loss_and_grads(w0, ("tanh", "linear"), x, y, "mse")
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
    for g, r in zip(grads, ref_grads):
        np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-14)
