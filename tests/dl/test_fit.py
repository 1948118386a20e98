"""fit / evaluate / predict on arrays: batches, shuffling, validation, the epoch loss."""

import numpy as np
import pytest

import dl
from dl import (callbacks, layers, optimizers)
from dl_helpers import ACT, both_backends, restore_dl_state  # noqa: F401  (autouse fixture)

from dl_helpers import xy as _xy


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
    # train_on_batch gives this batch's loss: Keras 3 resets the metrics at every call
    # (keras-team/keras#22617; it kept running means before)
    second_before = model.evaluate(x, y, verbose=0)[0]
    out2 = model.train_on_batch(x, y, return_dict=True)
    np.testing.assert_allclose(out2["loss"], second_before, rtol=1e-6)


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
