"""Sequential: structure, compile, fit/evaluate/predict, layers, configs, errors."""
import math

import numpy as np
import pytest

import dl
from dl import (activations, callbacks, initializers, layers, losses, metrics, optimizers,
                regularizers)
from dl_helpers import ACT, both_backends, restore_dl_state  # noqa: F401  (autouse fixture)


def _xy(n=10, n_in=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, n_in)).astype(np.float32)
    y = (x @ np.arange(1, n_in + 1) + 0.5).astype(np.float32)
    return x, y


# ------------------------------------------------------------------ building

@pytest.mark.parametrize("how", ["input_shape", "input_dim", "Input", "add", "add_Input",
                                 "first_call", "build"])
def test_build_variants(how):
    if how == "input_shape":
        model = dl.Sequential([layers.Dense(4, input_shape=(3,)), layers.Dense(1)])
    elif how == "input_dim":
        model = dl.Sequential([layers.Dense(4, input_dim=3), layers.Dense(1)])
    elif how == "Input":
        model = dl.Sequential([dl.Input(shape=(3,)), layers.Dense(4), layers.Dense(1)])
    elif how == "add":
        model = dl.Sequential()
        model.add(layers.Dense(4, input_shape=(3,)))
        model.add(layers.Dense(1))
    elif how == "add_Input":
        model = dl.Sequential()
        model.add(dl.Input((3,)))
        model.add(layers.Dense(4))
        model.add(layers.Dense(1))
    else:
        model = dl.Sequential([layers.Dense(4), layers.Dense(1)])
        if how == "build":
            model.build((None, 3))
            assert model.built
    x = np.ones((5, 3), dtype=np.float32)
    out = model.predict(x, verbose=0)            # "first_call" builds here
    assert model.built
    assert out.shape == (5, 1)
    assert model.input_shape == (3,)
    assert model.output_shape == (None, 1)
    assert [w.shape for w in model.get_weights()] == [(3, 4), (4,), (4, 1), (1,)]
    assert model.count_params() == 3 * 4 + 4 + 4 + 1


def test_declared_input_shape_weights_available_before_fit():
    """Keras 3 builds a Sequential whose first layer declares its input shape at once:
    get_weights() works right after construction."""
    model = dl.Sequential([layers.Dense(1, input_shape=(2,))])
    assert [w.shape for w in model.get_weights()] == [(2, 1), (1,)]
    assert model.count_params() == 3


def test_unbuilt_model_without_input_shape_has_no_weights():
    """Keras 3: an unbuilt model's get_weights() is [] (no crash)."""
    model = dl.Sequential([layers.Dense(1)])
    assert model.weights == []
    assert model.get_weights() == []
    assert model.count_params() == 0


def test_build_without_any_shape_raises():
    model = dl.Sequential([layers.Dense(2)])
    with pytest.raises(ValueError, match="input_shape"):
        model.build()


def test_input_shape_on_a_later_layer_raises():
    with pytest.raises(ValueError, match="first layer"):
        dl.Sequential([layers.Dense(2, input_shape=(3,)), layers.Dense(1, input_shape=(2,))])


def test_add_after_build_extends_the_model():
    model = dl.Sequential([layers.Dense(4, input_shape=(3,))])
    model.build()
    model.add(layers.Dense(2))
    assert model.predict(np.ones((2, 3)), verbose=0).shape == (2, 2)
    assert model.pop().units == 2
    assert len(model.layers) == 1


def test_summary(capsys):
    model = dl.Sequential([layers.Dense(4, input_shape=(3,), name="hidden"),
                           layers.Dense(2, activation="softmax", name="probs")],
                          name="my_model")
    model.summary()
    out = capsys.readouterr().out
    assert 'Model: "my_model"' in out
    assert "hidden (Dense)" in out and "probs (Dense)" in out
    assert "(None, 4)" in out and "(None, 2)" in out
    assert "Total params: 26" in out
    assert "Trainable params: 26" in out
    lines = []
    model.summary(print_fn=lines.append)
    assert any(line.startswith(" Total params: 26 ") for line in lines)
    # the parameter counts per layer
    row = next(line for line in lines if "hidden (Dense)" in line)
    assert row.split("│")[-2].strip() == "16"


# ------------------------------------------------------------------- weights

def test_get_set_weights_order_and_shapes():
    model = dl.Sequential([layers.Dense(3, input_shape=(2,)), layers.Dense(1)])
    model.build()
    ws = model.get_weights()
    assert [w.shape for w in ws] == [(2, 3), (3,), (3, 1), (1,)]
    assert all(w.dtype == np.float32 for w in ws)
    np.testing.assert_array_equal(ws[1], 0)                  # bias zeros by default
    new = [np.full(w.shape, i + 1.0) for i, w in enumerate(ws)]
    model.set_weights(new)
    for a, b in zip(model.get_weights(), new):
        np.testing.assert_array_equal(a, b)
    # get_weights returns copies
    model.get_weights()[0][...] = 99
    assert model.get_weights()[0][0, 0] == 1.0
    # the layer's own attributes are the same arrays
    np.testing.assert_array_equal(model.layers[0].kernel, new[0])
    np.testing.assert_array_equal(model.layers[1].bias, new[3])
    x = np.array([[1.0, 2.0]])
    expected = (x @ new[0] + new[1]) @ new[2] + new[3]
    np.testing.assert_allclose(model.predict(x, verbose=0), expected)


def test_set_weights_wrong_count_or_shape():
    model = dl.Sequential([layers.Dense(3, input_shape=(2,)), layers.Dense(1)])
    model.build()
    ws = model.get_weights()
    with pytest.raises(ValueError, match="4 arrays"):
        model.set_weights(ws[:3])
    with pytest.raises(ValueError, match="4 arrays"):
        model.set_weights(ws + [ws[0]])
    bad = list(ws)
    bad[2] = np.zeros((1, 3))
    with pytest.raises(ValueError, match=r"weights\[2\]"):
        model.set_weights(bad)
    model.set_weights(ws)


def test_set_weights_failure_changes_nothing():
    """Keras checks every shape before assigning any: a bad last array leaves the model
    as it was."""
    model = dl.Sequential([layers.Dense(3, input_shape=(2,)), layers.Dense(1)])
    model.build()
    before = model.get_weights()
    new = [w + 1 for w in before]
    new[3] = np.zeros(2)                    # the last one is wrong
    with pytest.raises(ValueError, match=r"weights\[3\]"):
        model.set_weights(new)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_use_bias_false():
    model = dl.Sequential([layers.Dense(3, input_shape=(2,), use_bias=False,
                                        kernel_initializer="ones")])
    model.build()
    ws = model.get_weights()
    assert [w.shape for w in ws] == [(2, 3)]
    np.testing.assert_array_equal(model.predict(np.array([[1.0, 2.0]]), verbose=0),
                                  [[3.0, 3.0, 3.0]])
    model.compile("sgd", "mse")
    _, grads = model.compute_gradients(np.array([[1.0, 2.0]]), np.zeros((1, 3)))
    assert [g.shape for g in grads] == [(2, 3)]


# ------------------------------------------------------------------- compile

@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop", "adagrad", "adamw", "Adam",
                                       lambda: optimizers.Adam(learning_rate=0.01),
                                       {"class_name": "SGD", "config": {"learning_rate": 0.1}}])
@pytest.mark.parametrize("loss", ["mse", "mean_squared_error", losses.MeanSquaredError(),
                                  losses.Huber(delta=2.0), "mae"])
def test_compile_with_strings_and_objects(optimizer, loss):
    x, y = _xy()
    if callable(optimizer):
        optimizer = optimizer()
    if isinstance(loss, losses.Loss):
        loss = type(loss).from_config(loss.get_config())     # a fresh object per test
    model = dl.Sequential([layers.Dense(1, input_shape=(2,))])
    model.compile(optimizer=optimizer, loss=loss, metrics=["mae", metrics.MeanSquaredError()])
    assert isinstance(model.optimizer, optimizers.Optimizer)
    assert isinstance(model.loss, losses.Loss)
    hist = model.fit(x, y, epochs=2, verbose=0)
    assert set(hist.history) == {"loss", "mae", "mean_squared_error"}
    assert model.optimizer.iterations == 1 * 2


def test_compile_defaults_and_loss_required():
    model = dl.Sequential([layers.Dense(1, input_shape=(2,))])
    model.compile(loss="mse")
    assert isinstance(model.optimizer, optimizers.RMSprop)        # Keras's default
    with pytest.raises(ValueError, match="loss"):
        model.compile(optimizer="sgd")


def test_compile_metric_values():
    x, y = _xy()
    model = dl.Sequential([layers.Dense(1, input_shape=(2,))])
    model.compile("sgd", "mse", metrics=["mae", "mse"])
    loss, mae, mse = model.evaluate(x, y, verbose=0)
    p = model.predict(x, verbose=0)[:, 0]
    np.testing.assert_allclose(mae, np.mean(np.abs(p - y)), rtol=1e-5)
    np.testing.assert_allclose(mse, np.mean((p - y) ** 2), rtol=1e-5)
    np.testing.assert_allclose(loss, mse, rtol=1e-5)


def test_accuracy_resolves_to_binary():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20, 3))
    y = (x[:, 0] > 0).astype(np.float32)
    model = dl.Sequential([layers.Dense(1, activation="sigmoid", input_shape=(3,))])
    model.compile("sgd", "binary_crossentropy", metrics=["accuracy"])
    loss, acc = model.evaluate(x, y, verbose=0)
    p = model.predict(x, verbose=0)[:, 0]
    np.testing.assert_allclose(acc, np.mean((p > 0.5) == (y > 0.5)))
    assert isinstance(model.metrics[0].inner, metrics.BinaryAccuracy)
    assert "accuracy" in model.evaluate(x, y, verbose=0, return_dict=True)


@pytest.mark.parametrize("labels_shape", ["(n,)", "(n,1)"])
def test_accuracy_resolves_to_sparse(labels_shape):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(30, 4))
    labels = rng.integers(0, 3, size=30)
    y = labels if labels_shape == "(n,)" else labels[:, None]
    model = dl.Sequential([layers.Dense(3, activation="softmax", input_shape=(4,))])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    _, acc = model.evaluate(x, y, verbose=0)
    p = model.predict(x, verbose=0)
    np.testing.assert_allclose(acc, np.mean(p.argmax(1) == labels))
    assert isinstance(model.metrics[0].inner, metrics.SparseCategoricalAccuracy)


def test_accuracy_resolves_to_categorical():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(30, 4))
    labels = rng.integers(0, 3, size=30)
    y = dl.utils.to_categorical(labels, 3)
    model = dl.Sequential([layers.Dense(3, activation="softmax", input_shape=(4,))])
    model.compile("adam", "categorical_crossentropy", metrics=["acc"])
    res = model.evaluate(x, y, verbose=0, return_dict=True)
    assert set(res) == {"loss", "acc"}
    p = model.predict(x, verbose=0)
    np.testing.assert_allclose(res["acc"], np.mean(p.argmax(1) == labels))
    assert isinstance(model.metrics[0].inner, metrics.CategoricalAccuracy)


def test_to_categorical():
    np.testing.assert_array_equal(dl.utils.to_categorical([0, 2, 1]),
                                  [[1, 0, 0], [0, 0, 1], [0, 1, 0]])
    assert dl.utils.to_categorical([[1], [0]], 4).shape == (2, 4)
    with pytest.raises(ValueError, match="y"):
        dl.utils.to_categorical([0, 5], num_classes=3)


# ----------------------------------------------------------------------- fit

def test_fit_returns_history_with_val_keys():
    x, y = _xy(20)
    model = dl.Sequential([layers.Dense(1, input_shape=(2,))])
    model.compile("sgd", "mse", metrics=["mae"])
    hist = model.fit(x, y, epochs=3, batch_size=8, validation_split=0.25, verbose=0)
    assert isinstance(hist, callbacks.History)
    assert model.history is hist
    assert hist.epoch == [0, 1, 2]
    assert set(hist.history) == {"loss", "mae", "val_loss", "val_mae"}
    assert all(len(v) == 3 for v in hist.history.values())
    assert all(isinstance(v, float) for vs in hist.history.values() for v in vs)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    # validation_data gives the same keys
    hist2 = model.fit(x[:15], y[:15], epochs=2, validation_data=(x[15:], y[15:]), verbose=0)
    assert set(hist2.history) == {"loss", "mae", "val_loss", "val_mae"}


def test_validation_split_takes_the_last_fraction_before_shuffling():
    x, y = _xy(20, seed=4)
    model = dl.Sequential([layers.Dense(1, input_shape=(2,))])
    model.compile(optimizers.SGD(learning_rate=0.0), "mse")
    hist = model.fit(x, y, epochs=2, batch_size=4, validation_split=0.3, shuffle=True,
                     verbose=0)
    split = int(20 * 0.7)
    val_expected = model.evaluate(x[split:], y[split:], verbose=0)
    train_expected = model.evaluate(x[:split], y[:split], verbose=0)
    np.testing.assert_allclose(hist.history["val_loss"], [val_expected] * 2, rtol=1e-6)
    np.testing.assert_allclose(hist.history["loss"], [train_expected] * 2, rtol=1e-5)
    first = model.evaluate(x[:20 - split], y[:20 - split], verbose=0)
    assert abs(first - val_expected) > 1e-3   # the first fraction would be another value


def test_validation_split_floor_and_errors():
    x, y = _xy(10)
    model = dl.Sequential([layers.Dense(1, input_shape=(2,))])
    model.compile(optimizers.SGD(learning_rate=0.0), "mse")
    steps = []
    cb = callbacks.LambdaCallback(on_train_batch_end=lambda b, logs=None: steps.append(b))
    model.fit(x, y, epochs=1, batch_size=1, validation_split=0.25, callbacks=[cb], verbose=0)
    assert len(steps) == 7         # floor(10 * 0.75) training samples, as Keras
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(x, y, validation_split=1.5, verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(x[:1], y[:1], validation_split=0.5, verbose=0)


@pytest.mark.parametrize("n,batch_size,steps", [(10, 4, 3), (10, 5, 2), (10, 32, 1),
                                                (33, None, 2), (1, 3, 1)])
def test_last_partial_batch_kept(n, batch_size, steps):
    x, y = _xy(n)
    model = dl.Sequential([layers.Dense(1, input_shape=(2,))])
    model.compile("sgd", "mse")
    seen = []
    begins = []
    cb = callbacks.LambdaCallback(
        on_train_batch_begin=lambda b, logs=None: begins.append(b),
        on_train_batch_end=lambda b, logs=None: seen.append((b, dict(logs))))
    model.fit(x, y, batch_size=batch_size, epochs=2, callbacks=[cb], verbose=0)
    assert [b for b, _ in seen] == list(range(steps)) * 2
    assert begins == list(range(steps)) * 2
    assert model.optimizer.iterations == 2 * steps
    assert all("loss" in logs for _, logs in seen)


def test_shuffle_false_gives_batches_in_order():
    x, y = _xy(12, seed=5)
    model = dl.Sequential([layers.Dense(1, input_shape=(2,))])
    model.compile(optimizers.SGD(learning_rate=0.0), "mse")
    logged = []
    cb = callbacks.LambdaCallback(
        on_train_batch_end=lambda b, logs=None: logged.append(logs["loss"]))
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, callbacks=[cb], verbose=0)
    per_batch = [model.evaluate(x[i:i + 4], y[i:i + 4], verbose=0) for i in (0, 4, 8)]
    running = np.cumsum(per_batch) / np.arange(1, 4)
    np.testing.assert_allclose(logged, running, rtol=1e-5)
    # shuffled: the first batch is another one (and reshuffled every epoch)
    logged.clear()
    model.fit(x, y, batch_size=4, epochs=2, shuffle=True, callbacks=[cb], verbose=0)
    assert not np.allclose(logged[:3], running, rtol=1e-5)
    assert not np.allclose(logged[:3], logged[3:], rtol=1e-5)
    np.testing.assert_allclose(logged[2], logged[5], rtol=1e-5)   # same epoch mean


def test_initial_epoch():
    x, y = _xy()
    model = dl.Sequential([layers.Dense(1, input_shape=(2,))])
    model.compile("sgd", "mse")
    epochs = []
    cb = callbacks.LambdaCallback(on_epoch_begin=lambda e, logs=None: epochs.append(e))
    hist = model.fit(x, y, epochs=5, initial_epoch=3, callbacks=[cb], verbose=0)
    assert epochs == [3, 4]
    assert hist.epoch == [3, 4]
    assert len(hist.history["loss"]) == 2
    hist = model.fit(x, y, epochs=0, verbose=0)
    assert hist.history == {} and hist.epoch == []


def test_evaluate_return_types():
    x, y = _xy()
    model = dl.Sequential([layers.Dense(1, input_shape=(2,))])
    model.compile("sgd", "mse")
    loss = model.evaluate(x, y, verbose=0)
    assert isinstance(loss, float)
    model.compile("sgd", "mse", metrics=["mae"])
    res = model.evaluate(x, y, verbose=0)
    assert isinstance(res, list) and len(res) == 2
    np.testing.assert_allclose(res[0], loss, rtol=1e-6)
    d = model.evaluate(x, y, verbose=0, return_dict=True)
    assert list(d) == ["loss", "mae"]
    np.testing.assert_allclose([d["loss"], d["mae"]], res)


def test_train_test_predict_on_batch_and_call():
    x, y = _xy(8)
    model = dl.Sequential([layers.Dense(3, activation="tanh", input_shape=(2,)),
                           layers.Dense(1)])
    model.compile(optimizers.SGD(learning_rate=0.1), "mse", metrics=["mae"])
    before = model.evaluate(x, y, verbose=0, return_dict=True)
    np.testing.assert_allclose(model.test_on_batch(x, y), [before["loss"], before["mae"]],
                               rtol=1e-6)
    assert model.test_on_batch(x, y, return_dict=True).keys() == {"loss", "mae"}
    w0 = model.get_weights()
    _, grads = model.compute_gradients(x, y)
    out = model.train_on_batch(x, y)
    assert isinstance(out, list) and len(out) == 2
    np.testing.assert_allclose(out[0], before["loss"], rtol=1e-6)   # loss before the step
    for w, w_old, g in zip(model.get_weights(), w0, grads):
        np.testing.assert_allclose(w, w_old - 0.1 * g, rtol=1e-5, atol=1e-7)
    assert model.optimizer.iterations == 1
    p = model.predict(x, verbose=0)
    np.testing.assert_array_equal(model.predict_on_batch(x), p)
    np.testing.assert_array_equal(model(x), p)
    np.testing.assert_allclose(model.predict(x, batch_size=3, verbose=0), p, rtol=1e-6)
    with pytest.raises(ValueError, match="training"):
        model(x, training=True)
    # train_on_batch's loss is a running mean until reset_metrics (Keras 3)
    second_before = model.evaluate(x, y, verbose=0)[0]
    out2 = model.train_on_batch(x, y, return_dict=True)
    np.testing.assert_allclose(out2["loss"], (before["loss"] + second_before) / 2, rtol=1e-6)
    model.reset_metrics()
    third_before = model.evaluate(x, y, verbose=0)[0]
    np.testing.assert_allclose(model.train_on_batch(x, y)[0], third_before, rtol=1e-6)


def test_integer_and_list_inputs():
    model = dl.Sequential([layers.Dense(1, input_shape=(2,))])
    model.compile("sgd", "mse")
    x_list = [[1, 2], [2, 3], [3, 4], [4, 5]]
    y_list = [1, 2, 3, 4]
    hist = model.fit(x_list, y_list, epochs=2, verbose=0)
    assert len(hist.history["loss"]) == 2
    p_list = model.predict(x_list, verbose=0)
    p_int = model.predict(np.array(x_list, dtype=np.int64), verbose=0)
    p_float = model.predict(np.array(x_list, dtype=np.float32), verbose=0)
    np.testing.assert_array_equal(p_list, p_float)
    np.testing.assert_array_equal(p_int, p_float)
    assert p_list.dtype == np.float32
    assert isinstance(model.evaluate(x_list, y_list, verbose=0), float)


def test_y_of_shape_n_for_mse_single_unit():
    x, y = _xy()
    model = dl.Sequential([layers.Dense(1, input_shape=(2,))])
    model.compile("sgd", "mse")
    l1 = model.evaluate(x, y, verbose=0)
    l2 = model.evaluate(x, y[:, None], verbose=0)
    assert l1 == l2
    p = model.predict(x, verbose=0)
    np.testing.assert_allclose(l1, np.mean((p[:, 0] - y) ** 2), rtol=1e-5)  # no broadcasting
    model.fit(x, y, epochs=1, verbose=0)


def test_one_feature_1d_x():
    model = dl.Sequential([layers.Dense(1, input_shape=(1,))])
    model.compile("sgd", "mse")
    x = np.array([1.0, 2.0, 3.0])
    model.fit(x, 2 * x, epochs=1, verbose=0)
    assert model.predict(x, verbose=0).shape == (3, 1)


def test_float64_model():
    model = dl.Sequential([layers.Dense(2, input_shape=(3,), dtype="float64"),
                           layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.random.default_rng(0).normal(size=(4, 3))
    model.fit(x, np.ones(4), epochs=1, verbose=0)
    assert all(w.dtype == np.float64 for w in model.get_weights())
    assert model.predict(x, verbose=0).dtype == np.float64
    ws = model.get_weights()
    expected = (x @ ws[0] + ws[1]) @ ws[2] + ws[3]
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-12)
    # the same with dl.Input(dtype=...) and with set_floatx
    m2 = dl.Sequential([dl.Input((3,), dtype="float64"), layers.Dense(1)])
    assert m2.predict(x, verbose=0).dtype == np.float64
    dl.config.set_floatx("float64")
    m3 = dl.Sequential([layers.Dense(1, input_shape=(3,))])
    assert m3.predict(x, verbose=0).dtype == np.float64
    with pytest.raises(ValueError, match="value"):
        dl.config.set_floatx("float16")


# -------------------------------------------------------------------- layers

def _dropout_probe(rate, n=400, seed=None, **kw):
    """A model whose kernel gradient reveals the dropout mask of its input."""
    model = dl.Sequential([layers.Dropout(rate, input_shape=(n,), seed=seed),
                           layers.Dense(1, use_bias=False, kernel_initializer="ones")], **kw)
    model.compile(optimizers.SGD(learning_rate=0.0), "mse")
    return model


def _mask_and_loss(model, n=400):
    x = np.ones((1, n), dtype=np.float32)
    loss, (g,) = model.compute_gradients(x, np.zeros((1, 1)))
    return g[:, 0] != 0, loss, g[:, 0]


def test_dropout_only_in_training_with_inverted_scaling():
    dl.utils.set_random_seed(0)
    rate, n = 0.25, 400
    model = _dropout_probe(rate, n)
    x = np.ones((1, n), dtype=np.float32)
    # inference: the identity
    np.testing.assert_allclose(model.predict(x, verbose=0), [[n]], rtol=1e-6)
    np.testing.assert_allclose(model.evaluate(x, np.zeros(1), verbose=0), n ** 2, rtol=1e-6)
    # training: kept inputs scaled by 1 / (1 - rate)
    keep, loss, g = _mask_and_loss(model, n)
    kept = int(keep.sum())
    assert 0.6 < kept / n < 0.9
    pred = kept / (1 - rate)
    np.testing.assert_allclose(loss, pred ** 2, rtol=1e-5)
    np.testing.assert_allclose(g[keep], 2 * pred / (1 - rate), rtol=1e-5)


def test_dropout_layer_mean_preserved():
    dl.utils.set_random_seed(1)
    model = dl.Sequential([layers.Dropout(0.5, input_shape=(500,))])
    model.build()
    layer = model.layers[0]
    x = np.full((200, 500), 3.0, dtype=np.float32)
    out = np.array(layer.forward(x, training=True, step=0))
    assert set(np.unique(out)) == {0.0, 6.0}
    assert abs(out.mean() - 3.0) < 0.05
    assert abs((out == 0).mean() - 0.5) < 0.01
    np.testing.assert_array_equal(layer.forward(x, training=False), x)
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)


def test_dropout_masks_change_per_step_and_are_seedable():
    dl.utils.set_random_seed(5)
    m1 = _dropout_probe(0.5)
    k1, _, _ = _mask_and_loss(m1)
    k1_again, _, _ = _mask_and_loss(m1)
    np.testing.assert_array_equal(k1, k1_again)              # same step: same mask
    m1.train_on_batch(np.ones((1, 400)), np.zeros(1))       # lr 0: only the step moves
    k1_next, _, _ = _mask_and_loss(m1)
    assert not np.array_equal(k1, k1_next)
    # the same global seed gives the same masks
    dl.utils.set_random_seed(5)
    m2 = _dropout_probe(0.5)
    k2, _, _ = _mask_and_loss(m2)
    np.testing.assert_array_equal(k1, k2)
    dl.utils.set_random_seed(6)
    k3, _, _ = _mask_and_loss(_dropout_probe(0.5))
    assert not np.array_equal(k1, k3)
    # Dropout(seed=...): the same masks whatever the global state
    dl.utils.set_random_seed(7)
    a, _, _ = _mask_and_loss(_dropout_probe(0.5, seed=42))
    dl.utils.set_random_seed(8)
    b, _, _ = _mask_and_loss(_dropout_probe(0.5, seed=42))
    np.testing.assert_array_equal(a, b)


def test_dropout_rate_validation():
    with pytest.raises(ValueError, match="rate"):
        layers.Dropout(1.0)
    with pytest.raises(ValueError, match="rate"):
        layers.Dropout(-0.1)


def test_dropout_in_training_changes_fit_deterministically():
    def run():
        dl.utils.set_random_seed(3)
        x, y = _xy(16)
        model = dl.Sequential([layers.Dense(8, activation="relu", input_shape=(2,)),
                               layers.Dropout(0.5), layers.Dense(1)])
        model.compile("adam", "mse")
        model.fit(x, y, epochs=3, batch_size=4, verbose=0)
        return model.get_weights()
    for a, b in zip(run(), run()):
        np.testing.assert_array_equal(a, b)


def test_flatten_on_images():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 8, 8)).astype(np.float32)
    for model in (dl.Sequential([layers.Flatten(input_shape=(8, 8)), layers.Dense(3)]),
                  dl.Sequential([layers.Flatten(), layers.Dense(3)])):
        out = model.predict(x, verbose=0)
        assert out.shape == (5, 3)
        assert model.layers[0].output_shape == (64,)
        w, b = model.get_weights()
        assert w.shape == (64, 3)
        np.testing.assert_allclose(out, x.reshape(5, 64) @ w + b, rtol=1e-5, atol=1e-6)
        model.compile("sgd", "sparse_categorical_crossentropy")
        model.fit(x, np.array([0, 1, 2, 0, 1]), epochs=1, verbose=0)
    with pytest.raises(ValueError):
        dl.Sequential([layers.Dense(3, input_shape=(8, 8))]).build()


@pytest.mark.parametrize("backend", both_backends())
@pytest.mark.parametrize("act", ["relu", "tanh", "sigmoid", "softmax", "elu", "softplus",
                                 "leaky_relu", "gelu", "linear"])
def test_activation_layer_matches_dense_activation(act, backend):
    """Dense(activation=act) (the fused dense kernel) == Dense + Activation(act) (the
    elementwise kernel) == the formula, in inference and in the training gradients."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 3))
    ws = [rng.normal(size=(3, 4)), rng.normal(size=4)]
    a = dl.Sequential([layers.Dense(4, activation=act, input_shape=(3,), dtype="float64")],
                      backend=backend)
    b = dl.Sequential([layers.Dense(4, input_shape=(3,), dtype="float64"),
                       layers.Activation(act)], backend=backend)
    a.set_weights(ws)
    b.set_weights(ws)
    np.testing.assert_allclose(a.predict(x, verbose=0), b.predict(x, verbose=0), rtol=1e-12)
    z = x @ ws[0] + ws[1]
    np.testing.assert_allclose(b.predict(x, verbose=0), activations.get(act)(z), rtol=1e-12)
    if act != "softmax":
        np.testing.assert_allclose(a.predict(x, verbose=0), ACT[act][0](z), rtol=1e-12)
    y = rng.normal(size=(6, 4))
    for m in (a, b):
        m.compile("sgd", "mse")
    la, ga = a.compute_gradients(x, y)
    lb, gb = b.compute_gradients(x, y)
    np.testing.assert_allclose(la, lb, rtol=1e-12)
    for g1, g2 in zip(ga, gb):
        np.testing.assert_allclose(g1, g2, rtol=1e-10, atol=1e-14)


def test_activation_functions_values():
    z = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    np.testing.assert_allclose(activations.relu(z), np.maximum(z, 0))
    np.testing.assert_allclose(activations.leaky_relu(z), np.where(z > 0, z, 0.2 * z))
    np.testing.assert_allclose(activations.elu(z), np.where(z > 0, z, np.expm1(z)))
    np.testing.assert_allclose(activations.sigmoid(z), 1 / (1 + np.exp(-z)))
    np.testing.assert_allclose(activations.softplus(z), np.log1p(np.exp(z)))
    erf = np.vectorize(math.erf)
    np.testing.assert_allclose(activations.gelu(z), 0.5 * z * (1 + erf(z / math.sqrt(2))))
    np.testing.assert_allclose(activations.softmax(z[None]), np.exp(z)[None] / np.exp(z).sum())
    np.testing.assert_allclose(activations.leaky_relu(z, negative_slope=0.1),
                               np.where(z > 0, z, 0.1 * z))


# ---------------------------------------------------------------- initializers

def test_glorot_uniform_bounds_default_kernel():
    dl.utils.set_random_seed(0)
    model = dl.Sequential([layers.Dense(300, input_shape=(200,))])
    model.build()
    w, b = model.get_weights()
    limit = math.sqrt(6 / (200 + 300))
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.99 * limit
    np.testing.assert_allclose(w.std(), limit / math.sqrt(3), rtol=0.02)
    assert abs(w.mean()) < 0.01 * limit
    np.testing.assert_array_equal(b, 0)


def test_initializers_by_name_and_object():
    model = dl.Sequential([layers.Dense(4, input_shape=(3,), kernel_initializer="zeros",
                                        bias_initializer="ones"),
                           layers.Dense(2, kernel_initializer=initializers.Constant(0.5),
                                        bias_initializer=initializers.Ones())])
    model.build()
    w1, b1, w2, b2 = model.get_weights()
    np.testing.assert_array_equal(w1, 0)
    np.testing.assert_array_equal(b1, 1)
    np.testing.assert_array_equal(w2, 0.5)
    np.testing.assert_array_equal(b2, 1)


def test_he_normal_std():
    dl.utils.set_random_seed(1)
    fan_in = 400
    w = initializers.get("he_normal")((fan_in, 1000))
    std = math.sqrt(2 / fan_in)
    np.testing.assert_allclose(w.std(), std, rtol=0.02)
    assert np.abs(w).max() <= 2 * std / 0.87962566103423978 + 1e-7   # truncated at 2 sigma
    assert w.dtype == np.float32


@pytest.mark.parametrize("name,check", [
    ("random_normal", lambda w: abs(w.std() - 0.05) < 0.002 and abs(w.mean()) < 0.002),
    ("random_uniform", lambda w: w.min() >= -0.05 and w.max() <= 0.05
     and w.max() > 0.049 and w.min() < -0.049),
    ("he_uniform", lambda w: np.abs(w).max() <= math.sqrt(6 / 100)),
    ("lecun_uniform", lambda w: np.abs(w).max() <= math.sqrt(3 / 100)),
    ("glorot_normal", lambda w: abs(w.std() - math.sqrt(2 / 300)) < 0.02 * math.sqrt(2 / 300)),
    ("lecun_normal", lambda w: abs(w.std() - math.sqrt(1 / 100)) < 0.02 * math.sqrt(1 / 100)),
    ("truncated_normal", lambda w: np.abs(w).max() <= 0.1 + 1e-7),
])
def test_initializer_defaults(name, check):
    dl.utils.set_random_seed(2)
    w = initializers.get(name)((100, 200))
    assert w.shape == (100, 200)
    assert check(w)


def test_seeded_initializer_repeats_and_global_seed_is_deterministic():
    init = initializers.GlorotUniform(seed=3)
    np.testing.assert_array_equal(init((4, 5)), init((4, 5)))
    dl.utils.set_random_seed(9)
    a = initializers.get("glorot_uniform")((4, 5))
    dl.utils.set_random_seed(9)
    b = initializers.get("glorot_uniform")((4, 5))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="seed"):
        dl.utils.set_random_seed(-1)


# -------------------------------------------------------- configs round trips

LAYER_CASES = [
    lambda: layers.Dense(3, activation="relu", use_bias=False, input_shape=(4,),
                         kernel_initializer=initializers.RandomNormal(stddev=0.3, seed=1),
                         kernel_regularizer=regularizers.L2(0.02),
                         bias_regularizer=regularizers.L1(0.1), name="d1"),
    lambda: layers.Dense(2, activation=activations.Activation("leaky_relu", negative_slope=0.1),
                         bias_initializer=initializers.Constant(0.25), dtype="float64"),
    lambda: layers.Dense(2, activation="gelu", trainable=False),
    lambda: layers.Activation("softmax", name="act"),
    lambda: layers.Activation(activations.Activation("elu", alpha=0.5)),
    lambda: layers.Dropout(0.3, noise_shape=(None, 1), seed=7),
    lambda: layers.Flatten(input_shape=(2, 3)),
    lambda: dl.Input(shape=(5,), dtype="float64", name="inp"),
]


@pytest.mark.parametrize("make", LAYER_CASES)
def test_layer_config_round_trip(make):
    layer = make()
    cfg = layer.get_config()
    again = type(layer).from_config(cfg)
    assert type(again) is type(layer)
    assert again.get_config() == cfg
    ser = layers.serialize(layer)
    assert layers.deserialize(ser).get_config() == cfg
    import json
    assert json.loads(json.dumps(ser)) == ser           # JSON-able


def test_dense_round_trip_gives_the_same_weights():
    layer = LAYER_CASES[0]()
    again = layers.Dense.from_config(layer.get_config())
    m1 = dl.Sequential([layer])
    m2 = dl.Sequential([again])
    m1.build()
    m2.build()
    for a, b in zip(m1.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert again.kernel_regularizer.l2 == 0.02 and again.bias_regularizer.l1 == 0.1
    assert again.activation.name == "relu" and again.use_bias is False


def test_model_config_round_trip():
    model = dl.Sequential([dl.Input((3,)), layers.Dense(4, activation="tanh"),
                           layers.Dropout(0.2), layers.Dense(1)], name="m")
    cfg = model.get_config()
    again = dl.Sequential.from_config(cfg)
    assert again.get_config() == cfg
    assert [type(l).__name__ for l in again.layers] == ["Dense", "Dropout", "Dense"]


@pytest.mark.parametrize("loss", [
    losses.MeanSquaredError(), losses.MeanAbsoluteError(name="my_mae"), losses.Huber(delta=0.5),
    losses.BinaryCrossentropy(from_logits=True), losses.CategoricalCrossentropy(),
    losses.SparseCategoricalCrossentropy(from_logits=True)])
def test_loss_config_round_trip(loss):
    cfg = loss.get_config()
    again = losses.get(losses.serialize(loss))
    assert type(again) is type(loss)
    assert again.get_config() == cfg
    assert type(loss).from_config(cfg).get_config() == cfg


@pytest.mark.parametrize("opt", [
    optimizers.SGD(learning_rate=0.1, momentum=0.8, nesterov=True, clipnorm=1.0),
    optimizers.Adam(learning_rate=0.01, beta_1=0.8, amsgrad=True, weight_decay=0.01),
    optimizers.AdamW(weight_decay=0.02, global_clipnorm=2.0),
    optimizers.RMSprop(rho=0.8, momentum=0.5, centered=True, clipvalue=0.5),
    optimizers.Adagrad(initial_accumulator_value=0.2, epsilon=1e-6, name="ada")])
def test_optimizer_config_round_trip(opt):
    cfg = opt.get_config()
    again = optimizers.get(optimizers.serialize(opt))
    assert type(again) is type(opt)
    assert again.get_config() == cfg
    assert type(opt).from_config(cfg).get_config() == cfg


@pytest.mark.parametrize("metric", [
    metrics.BinaryAccuracy(threshold=0.3), metrics.CategoricalAccuracy(),
    metrics.SparseCategoricalAccuracy(name="sca"), metrics.MeanSquaredError(),
    metrics.MeanAbsoluteError(), metrics.Accuracy()])
def test_metric_config_round_trip(metric):
    cfg = metric.get_config()
    again = metrics.get(metrics.serialize(metric))
    assert type(again) is type(metric)
    assert again.get_config() == cfg


@pytest.mark.parametrize("init", [
    initializers.Zeros(), initializers.Ones(), initializers.Constant(2.0),
    initializers.RandomNormal(mean=1.0, stddev=0.2, seed=3),
    initializers.RandomUniform(minval=-1, maxval=2, seed=4),
    initializers.TruncatedNormal(stddev=0.1, seed=5),
    initializers.VarianceScaling(scale=2.0, mode="fan_out", distribution="uniform", seed=6),
    initializers.GlorotUniform(seed=7), initializers.GlorotNormal(), initializers.HeNormal(seed=8),
    initializers.HeUniform(), initializers.LecunNormal(), initializers.LecunUniform(seed=9)])
def test_initializer_config_round_trip(init):
    cfg = init.get_config()
    again = initializers.get(initializers.serialize(init))
    assert type(again) is type(init)
    assert again.get_config() == cfg
    if "seed" not in cfg or cfg["seed"] is not None:
        np.testing.assert_array_equal(again((3, 4)), init((3, 4)))


@pytest.mark.parametrize("reg", [regularizers.L1(0.3), regularizers.L2(0.2),
                                 regularizers.L1L2(l1=0.1, l2=0.4)])
def test_regularizer_config_round_trip(reg):
    cfg = reg.get_config()
    again = regularizers.get(regularizers.serialize(reg))
    assert type(again) is type(reg)
    assert again.get_config() == cfg
    w = np.array([[1.0, -2.0]])
    assert again(w) == reg(w)


@pytest.mark.parametrize("act", ["relu", "tanh", "sigmoid", "softmax", "linear", "softplus",
                                 "gelu", "elu", "leaky_relu"])
def test_activation_config_round_trip(act):
    a = activations.get(act)
    assert activations.serialize(a) == act
    assert activations.get(activations.serialize(a)) == a
    custom = activations.Activation("leaky_relu", negative_slope=0.05)
    assert activations.get(activations.serialize(custom)) == custom
    assert activations.get(None).name == "linear"


def test_keras_defaults():
    sgd = optimizers.get("sgd")
    assert (sgd.learning_rate, sgd.momentum, sgd.nesterov) == (0.01, 0.0, False)
    adam = optimizers.get("adam")
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon, adam.amsgrad) == \
        (1e-3, 0.9, 0.999, 1e-7, False)
    rms = optimizers.get("rmsprop")
    assert (rms.learning_rate, rms.rho, rms.momentum, rms.epsilon, rms.centered) == \
        (1e-3, 0.9, 0.0, 1e-7, False)
    adamw = optimizers.get("adamw")
    assert (adamw.learning_rate, adamw.weight_decay, adamw.epsilon) == (1e-3, 0.004, 1e-7)
    ada = optimizers.get("adagrad")
    assert (ada.learning_rate, ada.initial_accumulator_value, ada.epsilon) == (1e-3, 0.1, 1e-7)
    assert losses.get("huber").delta == 1.0
    assert losses.get("binary_crossentropy").from_logits is False
    assert activations.get("leaky_relu").params == {"negative_slope": 0.2}
    assert activations.get("elu").params == {"alpha": 1.0}
    assert activations.get("gelu").params == {"approximate": False}
    assert regularizers.get("l2").l2 == 0.01 and regularizers.get("l1").l1 == 0.01
    dense = layers.Dense(2)
    assert isinstance(dense.kernel_initializer, initializers.GlorotUniform)
    assert isinstance(dense.bias_initializer, initializers.Zeros)
    assert dense.activation.name == "linear" and dense.use_bias
    rn, ru = initializers.RandomNormal(), initializers.RandomUniform()
    assert (rn.mean, rn.stddev, ru.minval, ru.maxval) == (0.0, 0.05, -0.05, 0.05)


def test_loss_objects_callable():
    y = np.array([[0.0, 1.0], [1.0, 0.0]])
    p = np.array([[0.2, 0.8], [0.6, 0.4]])
    np.testing.assert_allclose(losses.MeanSquaredError()(y, p), np.mean((y - p) ** 2))
    np.testing.assert_allclose(losses.CategoricalCrossentropy()(y, p),
                               -np.mean(np.log([0.8, 0.6])), rtol=1e-6)
    np.testing.assert_allclose(losses.SparseCategoricalCrossentropy()([1, 0], p),
                               -np.mean(np.log([0.8, 0.6])), rtol=1e-6)
    np.testing.assert_allclose(
        losses.BinaryCrossentropy()(y, p),
        np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))), rtol=1e-6)


# ----------------------------------------------------------------- bad inputs

@pytest.mark.parametrize("kwargs,arg", [
    (dict(optimizer="nope", loss="mse"), "optimizer"),
    (dict(optimizer="sgd", loss="nope"), "loss"),
    (dict(optimizer="sgd", loss="mse", metrics=["nope"]), "metric"),
])
def test_unknown_names_in_compile(kwargs, arg):
    model = dl.Sequential([layers.Dense(1, input_shape=(2,))])
    with pytest.raises(ValueError, match=arg) as info:
        model.compile(**kwargs)
    assert "nope" in str(info.value)


@pytest.mark.parametrize("kwargs,arg", [
    (dict(activation="nope"), "activation"),
    (dict(kernel_initializer="nope"), "kernel_initializer"),
    (dict(bias_initializer="nope"), "bias_initializer"),
    (dict(kernel_regularizer="nope"), "kernel_regularizer"),
    (dict(bias_regularizer="nope"), "bias_regularizer"),
])
def test_unknown_names_in_dense(kwargs, arg):
    with pytest.raises(ValueError, match=arg) as info:
        layers.Dense(1, **kwargs)
    assert "nope" in str(info.value)


def test_unknown_activation_layer_and_bad_units():
    with pytest.raises(ValueError, match="activation"):
        layers.Activation("nope")
    with pytest.raises(ValueError, match="units"):
        layers.Dense(0)
    with pytest.raises(TypeError, match="unexpected"):
        layers.Dense(1, bogus=3)


def test_bad_fit_inputs():
    model = dl.Sequential([layers.Dense(1, input_shape=(2,))])
    x, y = _xy(6)
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(x, y, verbose=0)
    with pytest.raises(RuntimeError, match="compile"):
        model.evaluate(x, y, verbose=0)
    with pytest.raises(RuntimeError, match="compile"):
        model.train_on_batch(x, y)
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="y"):
        model.fit(x, y[:5], verbose=0)
    with pytest.raises(ValueError, match=r"\(2,\)"):
        model.fit(np.ones((6, 3)), y, verbose=0)
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="row 3"):
        model.fit(bad, y, verbose=0)
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="row 3"):
        model.fit(bad, y, verbose=0)
    bad_y = y.copy()
    bad_y[4] = np.nan
    with pytest.raises(ValueError, match="row 4"):
        model.fit(x, bad_y, verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(x, y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="epochs"):
        model.fit(x, y, epochs=-1, verbose=0)
    with pytest.raises(TypeError):
        model.fit(np.array([["a", "b"]] * 6), y, verbose=0)
    with pytest.raises(ValueError, match="sample"):
        model.fit(np.ones((0, 2)), np.ones(0), verbose=0)
    with pytest.raises(ValueError, match="verbose"):
        model.fit(x, y, verbose=3)
    # a failed fit left the model untouched and trainable
    assert model.optimizer.iterations == 0
    model.fit(x, y, verbose=0)
    assert model.optimizer.iterations == 1


def test_sparse_labels_validation():
    model = dl.Sequential([layers.Dense(3, activation="softmax", input_shape=(2,))])
    model.compile("sgd", "sparse_categorical_crossentropy")
    x = np.ones((3, 2))
    with pytest.raises(ValueError, match="y"):
        model.fit(x, np.array([0.5, 1, 2]), verbose=0)
    with pytest.raises(ValueError):
        model.fit(x, np.array([0, 1, 3]), verbose=0)       # label out of range
    with pytest.raises(ValueError, match="y"):
        model.fit(x, np.zeros((3, 3)), verbose=0)


def test_set_backend():
    dl.set_backend("numpy")
    assert dl.get_backend().name == "numpy"
    model = dl.Sequential([layers.Dense(1, input_shape=(2,))])
    assert model.backend.name == "numpy"
    import kernels
    if "cython" in kernels.available_backends():
        dl.set_backend("cython")
        assert dl.get_backend().name == "cython"
        assert model.backend.name == "cython"     # follows the global choice
        assert dl.Sequential([layers.Dense(1)], backend="numpy").backend.name == "numpy"
    with pytest.raises(ValueError, match="name"):
        dl.set_backend("tensorflow")
    with pytest.raises(ValueError):
        dl.Sequential([layers.Dense(1)], backend="tensorflow")
    dl.set_backend(None)
    assert dl.get_backend().name in ("cython", "numpy")


# ------------------------------------------------------------------ trainable

def test_frozen_layer_is_not_updated():
    x, y = _xy(12, n_in=3)
    model = dl.Sequential([layers.Dense(4, activation="tanh", input_shape=(3,), trainable=False,
                                        name="frozen"),
                           layers.Dense(1, name="head")])
    model.compile(optimizers.Adam(learning_rate=0.05), "mse")
    model.build()
    before = model.get_weights()
    assert [w.shape for w in model.trainable_weights] == [(4, 1), (1,)]
    _, grads = model.compute_gradients(x, y)
    assert [g.shape for g in grads] == [(4, 1), (1,)]
    model.fit(x, y, epochs=3, verbose=0)
    after = model.get_weights()
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[1], before[1])
    assert not np.array_equal(after[2], before[2])
    lines = []
    model.summary(print_fn=lines.append)
    assert " Trainable params: 5 (20.00 B)" in lines
    assert " Non-trainable params: 16 (64.00 B)" in lines
    # a frozen model trains nothing
    frozen = dl.Sequential([layers.Dense(1, input_shape=(3,))], trainable=False)
    frozen.compile("sgd", "mse")
    frozen.build()
    w = frozen.get_weights()
    frozen.fit(x, y, epochs=2, verbose=0)
    np.testing.assert_array_equal(frozen.get_weights()[0], w[0])
    assert frozen.trainable_weights == []


def test_frozen_layer_regularizer_not_in_loss():
    """Keras 3 adds the penalties of trainable weights only
    (Layer._get_regularization_losses iterates over trainable_weights)."""
    x, y = _xy(12, n_in=3)
    x = x.astype(np.float64)

    def make(trainable):
        model = dl.Sequential([layers.Dense(4, input_shape=(3,), trainable=trainable,
                                            kernel_regularizer=regularizers.L2(0.5),
                                            kernel_initializer="ones", dtype="float64"),
                               layers.Dense(1, kernel_initializer="ones")])
        model.compile(optimizers.SGD(learning_rate=0.0), "mse")
        return model

    frozen, trained = make(False), make(True)
    pred = (x @ np.ones((3, 4))) @ np.ones((4, 1))
    mse = np.mean((pred[:, 0] - y) ** 2)
    np.testing.assert_allclose(trained.evaluate(x, y, verbose=0), mse + 0.5 * 12, rtol=1e-12)
    np.testing.assert_allclose(frozen.evaluate(x, y, verbose=0), mse, rtol=1e-12)
    np.testing.assert_allclose(frozen.fit(x, y, verbose=0, batch_size=12).history["loss"][0],
                               mse, rtol=1e-12)


def test_dropout_noise_shape():
    dl.utils.set_random_seed(2)
    model = dl.Sequential([layers.Dropout(0.5, noise_shape=(None, 1), input_shape=(6,))])
    model.build()
    out = np.array(model.layers[0].forward(np.ones((50, 6), np.float32), training=True))
    assert set(np.unique(out)) == {0.0, 2.0}
    assert (out == out[:, :1]).all()            # one decision per row
    assert 0 < (out[:, 0] == 0).sum() < 50


def test_layer_call_on_arrays():
    x = np.random.default_rng(0).normal(size=(5, 3))
    dense = layers.Dense(2, kernel_initializer="ones", bias_initializer=initializers.Constant(1.0))
    out = dense(x)
    assert out.shape == (5, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out, np.repeat(x.sum(1, keepdims=True), 2, 1) + 1, rtol=1e-5)
    np.testing.assert_allclose(layers.Activation("relu")(x), np.maximum(x, 0).astype(np.float32),
                               rtol=1e-6)
    assert layers.Flatten()(np.ones((2, 3, 4))).shape == (2, 12)


# ------------------------------------------- arguments the fuzzer found unchecked
# Each bad argument raises TypeError/ValueError whose message starts with its name
# (tests/test_fuzz_dl.py), before anything is allocated or trained.

def _compiled(loss="mse", metrics=None):
    model = dl.Sequential([layers.Dense(2, input_shape=(4,))], backend="numpy")
    model.compile("sgd", loss, metrics=metrics)
    return model


def test_dropout_noise_shape_checked_against_the_input():
    def fit(layer, batch_size=3):
        model = dl.Sequential([layer, layers.Dense(2)], backend="numpy")
        model.compile("sgd", "mse")
        return model.fit(np.ones((6, 4), np.float32), np.zeros((6, 2), np.float32),
                         batch_size=batch_size, verbose=0)

    for noise_shape in [(None, 3), (None, 1, 4), (4,), (None, 8)]:
        with pytest.raises(ValueError, match=r"^noise_shape: expected \d entries"):
            fit(layers.Dropout(0.5, noise_shape=noise_shape, input_shape=(4,)))
    # the batch entry: None, 1 or the batch size
    with pytest.raises(ValueError, match=r"^noise_shape: expected None, 1 or the batch size"):
        fit(layers.Dropout(0.5, noise_shape=(5, 4), input_shape=(4,)))
    for noise_shape in [(None, 4), (1, 4), (None, 1), [None, 4], (3, 1)]:
        fit(layers.Dropout(0.5, noise_shape=noise_shape, input_shape=(4,)))


@pytest.mark.parametrize("make,exc,start", [
    (lambda: layers.Dense(2, input_dim="x"), TypeError, "input_dim: expected a positive int"),
    (lambda: layers.Dense(2, input_dim=2.5), TypeError, "input_dim: expected a positive int"),
    (lambda: layers.Dense(2, input_dim=0), ValueError, "input_dim: expected positive"),
    (lambda: layers.Dense(2, dtype="nonsense"), TypeError,
     "dtype: expected 'float32', 'float64' or None, got str 'nonsense'"),
    (lambda: layers.Dropout(0.5, dtype=object()), TypeError, "dtype: expected"),
    (lambda: layers.Dense(2, dtype="int32"), ValueError, "dtype: expected float32 or float64"),
    (lambda: dl.Input((2,), dtype="(("), TypeError, "dtype: expected"),
    (lambda: layers.Dense(2, name=np.array([])), TypeError, "name: expected a str or None"),
    (lambda: layers.Flatten(name=3), TypeError, "name: expected a str or None, got int 3"),
    (lambda: dl.Input((2,), name=["a"]), TypeError, "name: expected a str or None"),
    (lambda: dl.Sequential(name=3), TypeError, "name: expected a str or None"),
    (lambda: layers.Dense(2, trainable="yes"), TypeError, "trainable: expected True or False"),
    (lambda: dl.Input(shape="12"), TypeError, "shape: expected a tuple of ints, got str '12'"),
    (lambda: dl.Input(shape=""), TypeError, "shape: expected a tuple of ints"),
    (lambda: dl.Input(shape=b"12"), TypeError, "shape: expected a tuple of ints"),
    (lambda: dl.Input(shape=("4",)), TypeError, "shape: expected a tuple of ints (or None)"),
    (lambda: dl.Input(shape=(2.0,)), TypeError, "shape: expected a tuple of ints (or None)"),
    (lambda: dl.Input(shape=(2,), batch_size="8"), TypeError, "batch_size: expected"),
    (lambda: layers.Dense(2, input_shape="12"), TypeError, "input_shape: expected a tuple"),
    (lambda: layers.Dense(2, input_shape=(True,)), TypeError, "input_shape: expected a tuple"),
    (lambda: layers.Dense(2, input_dim=3, input_shape="12"), ValueError,
     "input_dim, input_shape: expected only one of them"),
    (lambda: layers.InputLayer(shape=(4,), input_shape=""), ValueError,
     "shape, input_shape: expected only one of them"),
    (lambda: layers.InputLayer(shape=(4,), input_dim=3), ValueError,
     "shape, input_dim: expected only one of them"),
    (lambda: layers.InputLayer(input_dim="3"), TypeError, "input_dim: expected a positive int"),
    (lambda: layers.Dense(2, use_bias=np.array([], np.float32)), TypeError,
     "use_bias: expected True or False, got an array of dtype float32 and shape (0,)"),
])
def test_layer_arguments_named(make, exc, start):
    with pytest.raises(exc) as info:
        make()
    assert str(info.value).startswith(start), str(info.value)


def test_input_shapes_whose_weights_cannot_fit_are_refused_before_allocating():
    # a sample larger than the memory: nothing of that shape could be fed
    with pytest.raises(ValueError, match=r"^input_shape: expected a sample that fits in memory"):
        dl.Sequential([layers.Dense(2, input_shape=(2**40,))])
    with pytest.raises(ValueError, match=r"^shape: expected a sample that fits in memory"):
        dl.Input((2**30, 2**30))
    with pytest.raises(ValueError, match=r"^input_dim: expected a sample that fits"):
        layers.Dense(2, input_dim=10**400)
    with pytest.raises(ValueError, match=r"^units: expected a bias \(a kernel row\) that fits"):
        layers.Dense(2**40)
    # samples that fit, but a kernel that does not: refused at build, and add() leaves
    # the model as it was
    model = dl.Sequential([layers.Dense(2**20, input_shape=(4,))], backend="numpy")
    with pytest.raises(ValueError, match=r"^input_shape: expected inputs for which the weights"):
        model.add(layers.Dense(2**20))
    assert len(model.layers) == 1 and model.built
    unbuilt = dl.Sequential([layers.Dense(2**20), layers.Dense(2**20)], backend="numpy")
    with pytest.raises(ValueError, match=r"^input_shape: expected inputs for which the weights"):
        unbuilt.build((None, 4))
    with pytest.raises(ValueError, match=r"^input_shape: expected a sample that fits"):
        unbuilt.build((None, 2**40, 2**40))


def test_unknown_sample_dimensions_refused_at_build():
    with pytest.raises(ValueError, match=r"^input_shape: expected known sample dimensions"):
        dl.Sequential([dl.Input((4, None)), layers.Flatten(), layers.Dense(2)])
    with pytest.raises(ValueError, match=r"^input_shape: expected known sample dimensions"):
        dl.Sequential([layers.Dense(2, input_shape=(None,))])


@pytest.mark.parametrize("kwargs,exc,start", [
    (dict(metrics=[{"class_name": ["SGD"]}]), ValueError, "metric: unknown class_name ['SGD']"),
    (dict(optimizer={"class_name": {"a": 1}}), ValueError, "optimizer: unknown class_name"),
    (dict(loss={"class_name": ["mse"], "config": {}}), ValueError, "loss: unknown class_name"),
    (dict(optimizer={"class_name": "SGD", "config": "x"}), TypeError,
     "optimizer: expected a dict of arguments under 'config', got str 'x'"),
    (dict(optimizer={"class_name": "SGD", "config": {1: 2}}), TypeError,
     "optimizer: expected a dict of arguments under 'config'"),
    (dict(metrics=[{"class_name": "BinaryAccuracy", "config": {"threshold": "x"}}]), TypeError,
     "threshold: expected a real number, got str 'x'"),
    (dict(metrics=[{"class_name": "BinaryAccuracy", "config": {"threshold": np.nan}}]),
     ValueError, "threshold: expected a finite number"),
    (dict(loss={"class_name": "Huber", "config": {"delta": "big"}}), TypeError,
     "delta: expected a real number, got str 'big'"),
    (dict(loss={"class_name": "Huber", "config": {"delta": -1}}), ValueError,
     "delta: expected a value > 0, got -1.0"),
    (dict(metrics=[{"class_name": "MeanAbsoluteError", "config": {"name": []}}]), TypeError,
     "name: expected a str or None, got a list"),
    (dict(loss={"class_name": "MeanSquaredError", "config": {"name": 3}}), TypeError,
     "name: expected a str or None, got int 3"),
    (dict(optimizer={"class_name": "SGD", "config": {"learning_rate": 10**400}}), ValueError,
     "learning_rate: expected a finite number"),
    (dict(steps_per_execution=np.array([1, 1])), ValueError, "steps_per_execution:"),
    (dict(optimizer={"class_name": "SGD", "config": {"nesterov": "yes"}}), TypeError,
     "nesterov: expected True or False, got str 'yes'"),
    (dict(optimizer={"class_name": "Adam", "config": {"amsgrad": [1]}}), TypeError,
     "amsgrad: expected True or False"),
    (dict(optimizer={"class_name": "RMSprop", "config": {"centered": 1}}), TypeError,
     "centered: expected True or False, got int 1"),
    (dict(optimizer={"class_name": "Adam", "config": {"name": 7}}), TypeError,
     "name: expected a str or None, got int 7"),
])
def test_compile_configs_named(kwargs, exc, start):
    model = dl.Sequential([layers.Dense(2, input_shape=(4,))], backend="numpy")
    kwargs = {"optimizer": "sgd", "loss": "mse", **kwargs}
    with pytest.raises(exc) as info:
        model.compile(**kwargs)
    assert str(info.value).startswith(start), str(info.value)
    assert not model.compiled


def test_metric_and_loss_objects_check_their_arguments():
    with pytest.raises(TypeError, match=r"^name: expected a str or None"):
        metrics.MeanAbsoluteError(name=[])
    with pytest.raises(TypeError, match=r"^threshold: expected a real number"):
        metrics.BinaryAccuracy(threshold=None)
    with pytest.raises(ValueError, match=r"^delta: expected a value > 0"):
        losses.Huber(delta=0)
    assert metrics.BinaryAccuracy(threshold=np.float32(0.25)).threshold == 0.25
    assert losses.Huber(delta=2).delta == 2.0


LAZY_X = np.broadcast_to(np.ones((1, 4), np.float32), (2**40, 4))


@pytest.mark.parametrize("call", [
    lambda m: m.predict(LAZY_X, verbose=0),
    lambda m: m.fit(LAZY_X, np.zeros((6, 2), np.float32), verbose=0),
    lambda m: m.evaluate(LAZY_X, np.zeros((6, 2), np.float32), verbose=0),
    lambda m: m.train_on_batch(LAZY_X, np.zeros((6, 2), np.float32)),
    lambda m: m.test_on_batch(LAZY_X, np.zeros((6, 2), np.float32)),
    lambda m: m.predict_on_batch(LAZY_X),
    lambda m: m(LAZY_X),
    lambda m: m.compute_gradients(LAZY_X, np.zeros((6, 2), np.float32)),
    lambda m: m.predict(np.broadcast_to(np.ones((1, 4), bool), (2**40, 4)), verbose=0),
])
def test_lazily_huge_x_refused_naming_x(call):
    """A zero-stride view of 2**40 rows: refused at once, not materialized or scanned."""
    model = _compiled()
    with pytest.raises(ValueError, match=r"^x: expected an array that fits in memory"):
        call(model)
    assert model.optimizer.iterations == 0


def test_lazily_huge_y_and_validation_data_refused():
    model = _compiled()
    x = np.ones((6, 4), np.float32)
    lazy_y = np.broadcast_to(np.zeros((1, 2), np.float32), (2**40, 2))
    with pytest.raises(ValueError, match=r"^validation_data\[0\]: expected an array that fits"):
        model.fit(x, np.zeros((6, 2), np.float32), validation_data=(LAZY_X, lazy_y), verbose=0)
    wide_y = np.broadcast_to(np.zeros((1, 1), np.float32), (6, 2**40))
    with pytest.raises(ValueError, match=r"^y: expected an array that fits in memory"):
        model.fit(x, wide_y, verbose=0)
    with pytest.raises(ValueError, match=r"^x: expected an array that fits in memory"):
        layers.Activation("relu")(LAZY_X)


def test_predictions_that_cannot_fit_are_refused_naming_x(monkeypatch):
    # a machine of 4000 bytes: x (20 x 1 floats) fits, its 20 x 100 predictions do not
    monkeypatch.setattr(dl.trainer, "MAX_BYTES", 4000)
    model = dl.Sequential([layers.Dense(100, input_shape=(1,))], backend="numpy")
    x = np.ones((20, 1), np.float32)
    with pytest.raises(ValueError, match=r"^x: expected inputs whose predictions fit"):
        model.predict(x, verbose=0)
    assert model.predict(x[:5], verbose=0).shape == (5, 100)


@pytest.mark.parametrize("kwargs,exc,start", [
    (dict(validation_split=10**400), ValueError, "validation_split: expected a value in (0, 1)"),
    (dict(validation_split=-10**5000), ValueError, "validation_split: expected a value"),
    (dict(verbose=np.array([1, 2])), ValueError, "verbose: expected 'auto', 0, 1 or 2"),
    (dict(verbose="x"), ValueError, "verbose: expected 'auto', 0, 1 or 2, got 'x'"),
    (dict(class_weight=-10**5000), ValueError, "class_weight: not supported by dl yet"),
])
def test_fit_arguments_named(kwargs, exc, start):
    model = _compiled()
    with pytest.raises(exc) as info:
        model.fit(np.ones((6, 4), np.float32), np.zeros((6, 2), np.float32), **kwargs)
    assert str(info.value).startswith(start), str(info.value)


def test_input_layer_shape_spellings():
    assert layers.InputLayer(input_dim=3).input_spec_shape == (3,)
    assert layers.InputLayer(input_shape=[5]).input_spec_shape == (5,)
    assert dl.Input(np.int64(4)).input_spec_shape == (4,)


def test_huge_batch_size_is_one_batch():
    """n / batch_size underflowed to 0.0 for a batch size beyond the float range: fit
    then ran no step at all (and the progress bar failed on log10(0))."""
    model = _compiled()
    x, y = np.ones((6, 4), np.float32), np.zeros((6, 2), np.float32)
    history = model.fit(x, y, batch_size=10**400, verbose=1, validation_split=0.5,
                        validation_batch_size=10**400)
    assert model.optimizer.iterations == 1 and len(history.history["val_loss"]) == 1
    assert np.isfinite(model.evaluate(x, y, batch_size=10**400, verbose=0))
    assert model.predict(x, batch_size=10**400, verbose=0).shape == (6, 2)


@pytest.mark.parametrize("make,exc,start", [
    (lambda: layers.Dropout(10**400), ValueError, "rate: expected a value in [0, 1)"),
    (lambda: layers.Dropout(-10**5000), ValueError, "rate: expected a value in [0, 1)"),
    (lambda: layers.Dropout("0.5"), TypeError, "rate: expected a number in [0, 1), got str"),
    (lambda: layers.Dropout(0.5, seed=-10**5000), ValueError, "seed: expected a non-negative"),
    (lambda: layers.Dense(2, kernel_initializer={"class_name": "Constant",
                                                 "config": {"value": 10**400}}),
     ValueError, "kernel_initializer: expected a real number"),
    (lambda: initializers.RandomNormal(stddev="x"), TypeError, "stddev: expected a real number"),
    (lambda: initializers.VarianceScaling(scale="x"), TypeError, "scale: expected a real number"),
    (lambda: initializers.VarianceScaling(mode=["fan_in"]), ValueError, "mode: expected"),
    (lambda: regularizers.L2(10**400), ValueError, "l2: expected a finite number >= 0"),
    (lambda: regularizers.L1("a"), TypeError, "l1: expected a finite number >= 0, got str 'a'"),
])
def test_huge_or_odd_numbers_named(make, exc, start):
    """Python ints beyond the float range (float() raises OverflowError) and values
    whose repr cannot be printed (more than 4300 digits) give named errors."""
    with pytest.raises(exc) as info:
        make()
    assert str(info.value).startswith(start), str(info.value)
