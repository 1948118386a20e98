"""Bad arguments to dl's entry points raise TypeError/ValueError naming the argument."""

import numpy as np
import pytest

import dl
from dl import (initializers, layers, losses, metrics, regularizers)
from dl_helpers import ACT, both_backends, restore_dl_state  # noqa: F401  (autouse fixture)

from dl_helpers import xy as _xy


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
    with pytest.raises(ValueError, match="compile"):
        model.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match="compile"):
        model.evaluate(x, y, verbose=0)
    with pytest.raises(ValueError, match="compile"):
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


# ------------------------------------------- arguments the fuzzer found unchecked
# Each bad argument raises TypeError/ValueError whose message starts with its name
# (tests/dl/test_fuzz_dl.py), before anything is allocated or trained.

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
    (dict(class_weight=-10**5000), ValueError, "class_weight: expected a dict"),
])
def test_fit_arguments_named(kwargs, exc, start):
    model = _compiled()
    with pytest.raises(exc) as info:
        model.fit(np.ones((6, 4), np.float32), np.zeros((6, 2), np.float32), **kwargs)
    assert str(info.value).startswith(start), str(info.value)


def test_input_layer_shape_spellings():
    assert layers.InputLayer(input_dim=3).input_spec_shape == (3,)
    assert layers.InputLayer(input_shape=[5]).input_spec_shape == (5,)
    assert dl.Input(np.int64(4)).shape == (None, 4)
    assert dl.Input(np.int64(4)).node.layer.input_spec_shape == (4,)


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
