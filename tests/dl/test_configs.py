"""get_config / from_config round trips of every layer, loss, optimizer, metric and
initializer, and of whole models."""

import numpy as np
import pytest

import dl
from dl import (activations, initializers, layers, losses, metrics, optimizers,
                regularizers)
from dl_helpers import ACT, both_backends, restore_dl_state  # noqa: F401  (autouse fixture)


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
    lambda: layers.InputLayer(shape=(5,), dtype="float64", name="inp"),
    lambda: dl.Input(shape=(5,), dtype="float64", name="inp2").node.layer,
    lambda: layers.Add(name="add"),
    lambda: layers.Subtract(),
    lambda: layers.Multiply(),
    lambda: layers.Average(),
    lambda: layers.Maximum(),
    lambda: layers.Minimum(),
    lambda: layers.Concatenate(axis=1),
    lambda: layers.Dot(axes=(2, 1)),
    lambda: layers.Dot(axes=1),
    lambda: layers.Identity(),
    lambda: layers.Reshape((2, -1)),
    lambda: layers.Permute((2, 1)),
    lambda: layers.RepeatVector(3),
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


@pytest.mark.parametrize("act", activations.ACTIVATIONS)
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
