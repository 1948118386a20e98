"""BatchNormalization: training on batch statistics with the moving statistics updated
as Keras (``moving * momentum + batch * (1 - momentum)``, biased variance), inference
and a frozen layer on the moving statistics, the weights (gamma, beta trainable;
moving_mean, moving_variance not) in the model's trainable / non-trainable lists and
the summary, finite-difference gradients (training and frozen), axis other than -1,
after Dense and after convolutions, save/load of the moving statistics with training
resumed bit for bit, configs and errors.  Every test runs on each CPU backend that has
the batch-normalisation kernels (a backend whose twins are still pending is skipped,
saying so)."""
import json

import numpy as np
import pytest

import dl
from dl import layers

from dl_helpers import both_backends, fd_check, restore_dl_state  # noqa: F401



@pytest.fixture(params=both_backends())
def be(request):
    dl.set_backend(request.param)
    return request.param


RNG = np.random.default_rng(5)


def _bn_reference(x, gamma, beta, mean, var, eps):
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def test_training_inference_and_moving_statistics(be):
    dl.config.set_floatx("float64")
    bn = layers.BatchNormalization(momentum=0.8, epsilon=1e-2,
                                   gamma_initializer=dl.initializers.Constant(1.5),
                                   beta_initializer=dl.initializers.Constant(-0.5))
    model = dl.Sequential([dl.Input((3, 4, 2)), bn, layers.Flatten()])
    model.compile(dl.optimizers.SGD(0.0), "mse")
    x = RNG.normal(2.0, 3.0, size=(5, 3, 4, 2))
    gamma, beta, mm, mv = bn.get_weights()
    assert (mm == 0).all() and (mv == 1).all()
    # inference: the moving statistics
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               _bn_reference(x, gamma, beta, mm, mv, 1e-2).reshape(5, -1),
                               rtol=1e-12)
    # a training step: the batch statistics (over every axis but the channels), then
    # the moving statistics updated with the biased variance
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    y = bn(x, training=True)
    np.testing.assert_allclose(y, _bn_reference(x, gamma, beta, mean, var, 1e-2),
                               rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(bn.moving_mean, 0.8 * mm + 0.2 * mean, rtol=1e-12)
    np.testing.assert_allclose(bn.moving_variance, 0.8 * mv + 0.2 * var, rtol=1e-12)
    # fit: one update per batch, as Keras
    before = bn.get_weights()[2:]
    model.fit(x, np.zeros((5, 24)), batch_size=5, epochs=2, verbose=0)
    expect_m, expect_v = before
    for _ in range(2):
        expect_m = 0.8 * expect_m + 0.2 * mean
        expect_v = 0.8 * expect_v + 0.2 * var
    np.testing.assert_allclose(bn.moving_mean, expect_m, rtol=1e-12)
    np.testing.assert_allclose(bn.moving_variance, expect_v, rtol=1e-12)
    # evaluate and predict leave them alone
    kept = [w.copy() for w in bn.get_weights()]
    model.evaluate(x, np.zeros((5, 24)), verbose=0)
    model.predict(x, verbose=0)
    bn(x)
    for a, b in zip(bn.get_weights(), kept):
        np.testing.assert_array_equal(a, b)


def test_weights_order_and_trainability(be):
    bn = layers.BatchNormalization(name="bn")
    dense = layers.Dense(3, name="d")
    model = dl.Sequential([dl.Input((4,)), dense, bn, layers.Dense(2)])
    assert bn.weight_names == ("gamma", "beta", "moving_mean", "moving_variance")
    assert [w is v for w, v in zip(bn.weights, (bn.gamma, bn.beta, bn.moving_mean,
                                                bn.moving_variance))] == [True] * 4
    assert [id(w) for w in bn.trainable_weights] == [id(bn.gamma), id(bn.beta)]
    assert [id(w) for w in bn.non_trainable_weights] == [id(bn.moving_mean),
                                                         id(bn.moving_variance)]
    assert len(model.weights) == 8 and len(model.get_weights()) == 8
    assert [w.shape for w in model.trainable_weights] == [(4, 3), (3,), (3,), (3,), (3, 2),
                                                          (2,)]
    assert [id(w) for w in model.non_trainable_weights] == [id(bn.moving_mean),
                                                            id(bn.moving_variance)]
    lines = []
    model.summary(print_fn=lines.append)
    assert " Total params: 35 (140.00 B)" in lines
    assert " Trainable params: 29 (116.00 B)" in lines
    assert " Non-trainable params: 6 (24.00 B)" in lines
    assert any("batch_normalization" in line or "bn (BatchNormalization)" in line
               for line in lines)
    # a frozen layer: every weight non-trainable
    bn.trainable = False
    assert bn.trainable_weights == [] and len(bn.non_trainable_weights) == 4
    assert len(model.non_trainable_weights) == 4
    # no center, no scale: only the moving statistics
    plain = layers.BatchNormalization(center=False, scale=False)
    dl.Sequential([dl.Input((2,)), plain])
    assert plain.weight_names == ("moving_mean", "moving_variance")
    assert plain.trainable_weights == [] and plain.count_params() == 4
    assert layers.BatchNormalization(center=False)._weight_shapes((3,)) == [(3,)] * 3


def test_optimizer_gets_only_trainable_weights(be):
    model = dl.Sequential([dl.Input((4,)), layers.Dense(3), layers.BatchNormalization(),
                           layers.Dense(1)])
    model.compile("adam", "mse")
    x, y = RNG.normal(size=(8, 4)).astype(np.float32), RNG.normal(size=8).astype(np.float32)
    model.fit(x, y, epochs=1, verbose=0)
    state = model.optimizer.get_state()
    # iterations, then Adam's two moments for each of the 6 trainable arrays
    assert len(state) == 1 + 2 * 6
    _, grads = model.compute_gradients(x, y)
    assert [g.shape for g in grads] == [w.shape for w in model.trainable_weights]


def test_gradients_match_finite_differences(be):
    """Training mode (batch statistics: the gradient through mean and variance),
    after Dense and after convolutions, axis 1 of channels_first."""
    dl.config.set_floatx("float64")
    cases = [
        ([layers.Dense(4), layers.BatchNormalization(), layers.Dense(3, activation="softmax")],
         (3,)),
        ([layers.Dense(4), layers.BatchNormalization(scale=False, center=False),
          layers.Dense(3, activation="softmax")], (3,)),
        ([layers.Conv2D(3, 2), layers.BatchNormalization(beta_regularizer="l2"),
          layers.Flatten(), layers.Dense(3, activation="softmax")], (3, 3, 2)),
        ([layers.Conv2D(3, 2, data_format="channels_first"),
          layers.BatchNormalization(axis=1, center=False), layers.Flatten(),
          layers.Dense(3, activation="softmax")], (2, 3, 3)),
        ([layers.Conv1D(2, 2), layers.BatchNormalization(axis=-2), layers.Flatten(),
          layers.Dense(3, activation="softmax")], (4, 2)),
    ]
    for model_layers, shape in cases:
        model = dl.Sequential([dl.Input(shape)] + model_layers)
        model.compile("sgd", "sparse_categorical_crossentropy")
        before = [w.copy() for w in model.get_weights()]
        fd_check(model, RNG.normal(size=(4,) + shape), RNG.integers(0, 3, 4), rel=1e-4,
                 abs_=1e-7)
        # compute_gradients (used by the check) leaves the moving statistics alone
        for a, b in zip(model.get_weights(), before):
            np.testing.assert_array_equal(a, b)


def test_frozen_layer_uses_moving_statistics(be):
    """trainable=False (Keras 3): training runs on the moving statistics, updates
    nothing of the layer, and passes dy * gamma / sqrt(moving_var + eps) back."""
    dl.config.set_floatx("float64")
    bn = layers.BatchNormalization(trainable=False, epsilon=0.1)
    model = dl.Sequential([dl.Input((3, 3, 1)), layers.Conv2D(2, 2), bn, layers.Flatten(),
                           layers.Dense(2, activation="softmax")])
    model.compile(dl.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    bn.set_weights([np.array([1.5, 0.5]), np.array([0.1, -0.2]), np.array([0.3, -0.1]),
                    np.array([2.0, 0.5])])
    x, y = RNG.normal(size=(4, 3, 3, 1)), RNG.integers(0, 2, 4)
    fd_check(model, x, y, rel=1e-4, abs_=1e-7)      # the conv below, through bn
    frozen = bn.get_weights()
    conv_before = model.layers[0].get_weights()[0].copy()
    model.fit(x, y, epochs=2, verbose=0)
    for a, b in zip(bn.get_weights(), frozen):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(model.layers[0].get_weights()[0], conv_before)
    z = RNG.normal(size=(4, 2, 2, 2))
    gamma, beta, mm, mv = frozen
    np.testing.assert_allclose(bn(z, training=True),
                               _bn_reference(z, gamma, beta, mm, mv, 0.1), rtol=1e-12)
    bn.forward(z, training=True)
    dy = RNG.normal(size=z.shape)
    np.testing.assert_allclose(bn.backward(dy), dy * gamma / np.sqrt(mv + 0.1), rtol=1e-12)


def test_axis_1_is_axis_minus_1_transposed(be):
    dl.config.set_floatx("float64")
    x = RNG.normal(size=(4, 3, 2, 5))
    last = layers.BatchNormalization(momentum=0.5)
    first = layers.BatchNormalization(axis=1, momentum=0.5)
    y_last = last(x, training=True)
    y_first = first(x.transpose(0, 3, 1, 2), training=True)
    np.testing.assert_allclose(y_first, y_last.transpose(0, 3, 1, 2), rtol=1e-12, atol=1e-13)
    for a, b in zip(first.get_weights(), last.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(first(x.transpose(0, 3, 1, 2)),
                               last(x).transpose(0, 3, 1, 2), rtol=1e-12, atol=1e-13)
    assert first.compute_output_shape((5, 3, 2)) == (5, 3, 2)
    assert first._weight_shapes((5, 3, 2)) == [(5,)] * 4


def _bn_net():
    dl.utils.set_random_seed(4)
    model = dl.Sequential([dl.Input((6, 6, 2)), layers.Conv2D(3, 3),
                           layers.BatchNormalization(momentum=0.7),
                           layers.Activation("relu"), layers.GlobalAveragePooling2D(),
                           layers.Dense(4), layers.BatchNormalization(center=False),
                           layers.Dense(2, activation="softmax")])
    model.compile(dl.optimizers.RMSprop(0.01), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def test_save_load_restores_moving_statistics_and_resumes(be, tmp_path):
    x = RNG.normal(size=(10, 6, 6, 2)).astype(np.float32)
    y = RNG.integers(0, 2, 10)
    model = _bn_net()
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    bn = model.layers[1]
    assert not np.allclose(bn.get_weights()[2], 0)
    path = str(tmp_path / "bn.npz")
    model.save(path)
    loaded = dl.load_model(path)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.layers[1].moving_variance, bn.moving_variance)
    assert len(loaded.non_trainable_weights) == 4
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    h1 = model.fit(x, y, epochs=2, batch_size=4, verbose=0).history
    h2 = loaded.fit(x, y, epochs=2, batch_size=4, verbose=0).history
    assert h1 == h2
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    # the weights-only file too
    wpath = str(tmp_path / "w.npz")
    model.save_weights(wpath)
    fresh = _bn_net()
    fresh.load_weights(wpath)
    np.testing.assert_array_equal(fresh.layers[1].moving_mean, bn.moving_mean)


def test_shared_layer_in_a_graph(be):
    """A BatchNormalization called twice: each call normalises its own batch and
    updates the moving statistics (twice a step, as Keras); gradients summed."""
    dl.config.set_floatx("float64")
    inp = dl.Input((4,))
    bn = layers.BatchNormalization(momentum=0.5)
    d1, d2 = layers.Dense(3), layers.Dense(3, activation="tanh")
    a = bn(d1(inp))
    b = bn(d2(inp))
    model = dl.Model(inp, layers.Dense(2, activation="softmax")(layers.Add()([a, b])))
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = RNG.normal(size=(5, 4)), RNG.integers(0, 2, 5)
    fd_check(model, x, y, rel=1e-4, abs_=1e-7)
    mean_a = d1(x).mean(axis=0)          # the statistics of this step's two calls
    mean_b = d2(x).mean(axis=0)
    m0 = bn.moving_mean.copy()
    model.fit(x, y, batch_size=5, epochs=1, verbose=0)
    np.testing.assert_allclose(bn.moving_mean, 0.5 * (0.5 * m0 + 0.5 * mean_a)
                               + 0.5 * mean_b, rtol=1e-12)


@pytest.mark.parametrize("make, exc, match", [
    (lambda: layers.BatchNormalization(renorm=True), ValueError, "renorm"),
    (lambda: layers.BatchNormalization(synchronized=True), ValueError, "synchronized"),
    (lambda: layers.BatchNormalization(axis=1.0), TypeError, "axis"),
    (lambda: layers.BatchNormalization(momentum=1.5), ValueError, "momentum"),
    (lambda: layers.BatchNormalization(epsilon=0), ValueError, "epsilon"),
    (lambda: dl.Sequential([dl.Input((3,)), layers.BatchNormalization(axis=2)]),
     ValueError, "axis"),
    (lambda: dl.Sequential([dl.Input((3,)), layers.BatchNormalization(axis=0)]),
     ValueError, "axis"),
])
def test_errors(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_config_round_trips():
    bn = layers.BatchNormalization(axis=1, momentum=0.9, epsilon=1e-2, center=False,
                                   gamma_regularizer="l2", beta_constraint="non_neg",
                                   moving_variance_initializer="zeros", name="bn")
    cfg = bn.get_config()
    assert cfg["axis"] == 1 and cfg["momentum"] == 0.9 and cfg["renorm"] is False
    assert cfg["synchronized"] is False and cfg["renorm_momentum"] == 0.99
    again = layers.BatchNormalization.from_config(json.loads(json.dumps(cfg)))
    assert again.get_config() == cfg
    assert dl.layers.deserialize(dl.layers.serialize(bn)).get_config() == cfg


def test_freezing_a_model_freezes_its_batch_normalization(be):
    """``model.trainable = False`` sets every layer's flag, as Keras's setter: fit then
    updates nothing, moving statistics included; ``trainable=False`` given at
    construction freezes the model only (its layers keep their flags, as Keras)."""
    x = RNG.normal(size=(6, 4)).astype(np.float32)
    y = RNG.normal(size=6).astype(np.float32)
    model = dl.Sequential([dl.Input((4,)), layers.Dense(3), layers.BatchNormalization(),
                           layers.Dense(1)])
    model.compile("sgd", "mse")
    model.trainable = False
    assert not any(layer.trainable for layer in model.layers)
    before = model.get_weights()
    model.fit(x, y, epochs=2, verbose=0)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    model.trainable = True
    assert all(layer.trainable for layer in model.layers)
    built = dl.Sequential([dl.Input((4,)), layers.BatchNormalization()], trainable=False)
    assert built.layers[0].trainable and built.trainable_weights == []
