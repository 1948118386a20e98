"""Smaller Keras behaviours issue 12 lists: the error kinds Keras raises, unique layer
names, ModelCheckpoint into a new folder, TerminateOnNaN(raise_error),
Constant(array), optimizer.apply / apply_gradients, and SparseCategoricalAccuracy
on Keras's shapes."""
import numpy as np
import pytest

import dl
from dl import callbacks, initializers, metrics, optimizers
from dl_helpers import restore_dl_state, xy  # noqa: F401  (autouse fixture)


def test_fit_before_compile_is_a_value_error():
    model = dl.Sequential([dl.Input((2,)), dl.layers.Dense(1)])
    x, y = xy()
    for call in (lambda: model.fit(x, y), lambda: model.evaluate(x, y),
                 lambda: model.train_on_batch(x, y)):
        with pytest.raises(ValueError, match="you must compile the model"):
            call()


def test_layer_names_are_unique_in_a_sequential():
    model = dl.Sequential([dl.layers.Dense(2, name="a")])
    with pytest.raises(ValueError, match="^layer: All layers added to a Sequential model "
                                         "should have unique names. Name 'a'"):
        model.add(dl.layers.Dense(1, name="a"))
    assert len(model.layers) == 1
    with pytest.raises(ValueError, match="unique names"):
        dl.Sequential([dl.layers.Dense(2, name="b"), dl.layers.Dense(2, name="b")])


def test_model_checkpoint_creates_its_folder(tmp_path):
    x, y = xy()
    model = dl.Sequential([dl.Input((2,)), dl.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    path = tmp_path / "new" / "deeper" / "ckpt-{epoch}.dlk"
    model.fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.ModelCheckpoint(str(path))])
    assert sorted(p.name for p in (tmp_path / "new" / "deeper").iterdir()) == [
        "ckpt-1.dlk", "ckpt-2.dlk"]


def test_terminate_on_nan_can_raise():
    x, y = xy()
    y[3] = 1e30
    model = dl.Sequential([dl.Input((2,)), dl.layers.Dense(1)])
    model.compile(optimizer=optimizers.SGD(1e10), loss="mse")
    with pytest.raises(RuntimeError, match="^NaN or Inf loss encountered at batch"):
        model.fit(x, y, batch_size=2, epochs=3, verbose=0,
                  callbacks=[callbacks.TerminateOnNaN(raise_error=True)])
    assert model._keep_finite_weights is False
    assert np.isfinite(np.concatenate([w.ravel() for w in model.get_weights()])).all()
    with pytest.raises(TypeError, match="^raise_error: expected"):
        callbacks.TerminateOnNaN(raise_error="yes")


def test_constant_takes_an_array():
    init = initializers.Constant([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(init((2, 3)), [[1, 2, 3], [1, 2, 3]])
    assert init((2, 3)).dtype == np.float32
    again = initializers.get(initializers.serialize(init))
    np.testing.assert_array_equal(again((2, 3)), init((2, 3)))
    with pytest.raises(ValueError, match="^value: an array of shape \\(3,\\) does not "
                                         "broadcast"):
        init((3, 2))
    with pytest.raises(ValueError, match="^value: expected finite numbers"):
        initializers.Constant([1.0, np.nan])
    model = dl.Sequential([dl.Input((2,)), dl.layers.Dense(
        3, kernel_initializer=initializers.Constant(np.arange(3.0)))])
    np.testing.assert_array_equal(model.get_weights()[0], [[0, 1, 2], [0, 1, 2]])


def test_optimizer_apply_and_apply_gradients():
    w, b = np.ones(3), np.zeros(1)
    opt = optimizers.SGD(0.1)
    assert opt.apply_gradients(zip([np.ones(3), np.full(1, 2.0)], [w, b])) == 1
    np.testing.assert_allclose(w, 0.9)
    np.testing.assert_allclose(b, -0.2)
    assert opt.apply([np.ones(3), np.ones(1)]) == 2       # the variables of the first call
    np.testing.assert_allclose(w, 0.8)
    with pytest.raises(ValueError, match="^trainable_variables: expected the variables"):
        opt.apply([np.ones(3), np.ones(1)], [np.ones(3), np.ones(1)])
    with pytest.raises(ValueError, match=r"^grads\[0\]: expected shape \(3,\)"):
        opt.apply([np.ones(2), np.ones(1)])
    with pytest.raises(ValueError, match="^grads: expected one gradient per variable"):
        opt.apply([np.ones(3)])
    with pytest.raises(ValueError, match="^trainable_variables: expected the variables of "
                                         "the first apply"):
        optimizers.Adam().apply([np.ones(3)])


def test_apply_gradients_trains_a_model_as_fit_does():
    x, y = xy(n=8)
    runs = []
    for manual in (False, True):
        dl.utils.set_random_seed(3)
        model = dl.Sequential([dl.Input((2,)), dl.layers.Dense(1)], backend="cython")
        model.compile(optimizer="adam", loss="mse")
        if manual:
            opt = optimizers.Adam()
            for _ in range(5):
                _, grads = model.compute_gradients(x, y)
                opt.apply_gradients(zip(grads, model.trainable_weights))
        else:
            model.fit(x, y, batch_size=8, epochs=5, verbose=0)
        runs.append(model.get_weights())
    for a, b in zip(*runs):
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize("y_true, y_pred, expected", [
    ([[0], [0]], [[[0.9, 0.1, 0.0], [0.8, 0.15, 0.05]]], 1.0),    # (2, 1) vs (1, 2, 3)
    ([[0], [1]], [[[0.9, 0.1, 0.0], [0.8, 0.15, 0.05]]], 0.5),
    ([[2], [1]], [[0.1, 0.6, 0.3], [0.05, 0.95, 0]], 0.5),
    ([0, 1, 2], [[0.9, 0.1, 0.0], [0.0, 0.9, 0.1], [0.1, 0.0, 0.9]], 1.0),
])
def test_sparse_categorical_accuracy_shapes_as_keras(y_true, y_pred, expected):
    m = metrics.SparseCategoricalAccuracy()
    m.update_state(np.array(y_true), np.array(y_pred))
    assert m.result() == pytest.approx(expected)


@pytest.mark.parametrize("how", ["var_list", "var_names"])
@pytest.mark.parametrize("backend", ["numpy", "cython"])
def test_exclude_from_weight_decay(how, backend):
    """SGD with lr 0.1, weight decay 0.5 and zero gradients (mae at the target):
    decayed weights shrink by 5% a step, excluded ones stay."""
    dl.config.set_floatx("float64")
    model = dl.Sequential([dl.Input((2,)), dl.layers.Dense(
        1, kernel_initializer="ones", bias_initializer="ones")], backend=backend)
    opt = optimizers.SGD(0.1, weight_decay=0.5)
    if how == "var_list":
        opt.exclude_from_weight_decay(var_list=[model.layers[0].bias])
    else:
        opt.exclude_from_weight_decay(var_names=["bias"])
    model.compile(optimizer=opt, loss="mae")
    x = np.zeros((4, 2))
    model.fit(x, np.ones(4), batch_size=4, epochs=3, verbose=0)   # predictions = bias = 1
    kernel, bias = model.get_weights()
    np.testing.assert_allclose(kernel, 0.95 ** 3, rtol=1e-12)
    np.testing.assert_allclose(bias, 1.0, rtol=1e-12)
    with pytest.raises(ValueError, match="can only be configured before the optimizer is "
                                         "built"):
        opt.exclude_from_weight_decay(var_names=["kernel"])
