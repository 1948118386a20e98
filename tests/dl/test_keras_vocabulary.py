"""Keras's everyday vocabulary through dl's training loop: the losses, activations and
AUC added with issue 12, trained on every backend (numpy, cython, cuda under the
simulator) against hand-written formulas, and the validated-once step against the
checked one."""
import numpy as np
import pytest

import dl
from dl import activations, layers, losses, metrics

from dl_helpers import restore_dl_state  # noqa: F401  (autouse fixture)

BACKENDS = ["numpy", "cython", "cuda"]
NEW_LOSSES = ["hinge", "squared_hinge", "categorical_hinge", "kl_divergence", "poisson",
              "log_cosh", "cosine_similarity", "mean_absolute_percentage_error",
              "mean_squared_logarithmic_error"]


def _backend(name):
    try:
        dl.config.get_backend(name)
    except ImportError as exc:      # pragma: no cover - cuda without Numba
        pytest.skip(f"{name}: {exc}")
    return name


def _data(name, n=24, k=3, seed=0):
    """x, targets and the output activation that suit the loss."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    if name in ("categorical_hinge", "kl_divergence"):
        y = np.eye(k)[rng.integers(0, k, n)]
        if name == "kl_divergence":
            return x, y * 0.9 + 0.1 / k, "softmax"
        return x, y, "linear"
    if name in ("hinge", "squared_hinge"):
        return x, rng.integers(0, 2, (n, k)).astype(float), "tanh"
    if name in ("poisson", "mean_squared_logarithmic_error"):
        return x, rng.poisson(2.0, (n, k)).astype(float), "softplus"
    return x, rng.normal(size=(n, k)) + 2.0, "linear"


@pytest.mark.parametrize("name", NEW_LOSSES)
def test_each_new_loss_trains_alike_on_every_backend(name):
    """Two epochs of SGD, float64: the same loss history (to rounding) on numpy,
    cython and cuda, and the loss goes down.  (Few steps: the cuda simulator runs
    one Python thread per GPU thread.)"""
    x, y, act = _data(name)
    histories = {}
    for be in BACKENDS:
        _backend(be)
        model = dl.Sequential([layers.Dense(3, activation=act, input_shape=(4,),
                                            dtype="float64")], backend=be)
        model.set_weights([np.full((4, 3), 0.1), np.zeros(3)])
        # MAPE's gradient is 100 / |y| per unit: a smaller step
        lr = 0.001 if name == "mean_absolute_percentage_error" else 0.05
        model.compile(optimizer=dl.optimizers.SGD(lr), loss=name)
        histories[be] = model.fit(x, y, epochs=2, batch_size=12, shuffle=False,
                                  verbose=0).history["loss"]
    ref = histories["numpy"]
    assert ref[-1] < ref[0], (name, ref)
    for be, h in histories.items():
        np.testing.assert_allclose(h, ref, rtol=1e-9, err_msg=f"{name} on {be}")


@pytest.mark.parametrize("name", NEW_LOSSES)
def test_the_validated_once_step_matches_the_checked_one(name, monkeypatch):
    """The cython validated-once step covers the new losses (a plan is built) and
    computes them with the same kernels: weights after a weighted fit with and without
    it are bit-identical."""
    from dl import _fast
    cy = dl.config.get_backend("cython")
    x, y, act = _data(name, seed=3)
    w = np.random.default_rng(4).uniform(0.5, 2.0, len(x))
    plans = []
    build = _fast.FastStep.build.__func__

    def recording(cls, *args):
        plan = build(cls, *args)
        plans.append(plan)
        return plan

    monkeypatch.setattr(_fast.FastStep, "build", classmethod(recording))
    results = []
    for fast in (True, False):
        with monkeypatch.context() as m:
            if not fast:
                m.setattr(cy, "unchecked", None)
            model = dl.Sequential([layers.Dense(3, activation=act, input_shape=(4,))],
                                  backend="cython")
            model.set_weights([np.full((4, 3), 0.1, np.float32), np.zeros(3, np.float32)])
            model.compile(optimizer="adam", loss=name)
            model.fit(x, y, sample_weight=w, epochs=2, batch_size=8, shuffle=False,
                      verbose=0)
            results.append(model.get_weights())
        if fast:
            assert any(p is not None for p in plans), f"{name}: no validated-once plan"
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_losses_by_hand():
    """Per-sample values written from Keras 3's formulas."""
    t = np.array([[0.0, 1.0], [1.0, 1.0]])
    p = np.array([[0.3, -0.6], [2.0, 0.4]])
    tt = 2 * t - 1                                  # 0/1 labels become -1/1
    np.testing.assert_allclose(losses.hinge(t, p), np.mean(np.maximum(1 - tt * p, 0), -1))
    np.testing.assert_allclose(losses.squared_hinge(t, p),
                               np.mean(np.maximum(1 - tt * p, 0) ** 2, -1))
    pm = np.array([[1.0, -1.0], [1.0, 1.0]])       # -1/1 labels: taken as they are
    np.testing.assert_allclose(losses.hinge(pm, p), np.mean(np.maximum(1 - pm * p, 0), -1))
    np.testing.assert_allclose(losses.categorical_hinge(t, p),
                               np.maximum(np.max((1 - t) * p, -1) - np.sum(t * p, -1) + 1, 0))
    e = p - t
    np.testing.assert_allclose(losses.log_cosh(t, p), np.mean(np.log(np.cosh(e)), -1))
    q = np.array([[0.2, 0.8], [0.5, 0.5]])
    r = np.array([[0.1, 0.9], [0.7, 0.3]])
    np.testing.assert_allclose(losses.kl_divergence(q, r), np.sum(q * np.log(q / r), -1))
    np.testing.assert_allclose(losses.poisson(q, r), np.mean(r - q * np.log(r + 1e-7), -1))
    np.testing.assert_allclose(losses.cosine_similarity(t + 1, p),
                               -np.sum((t + 1) * p, -1) / np.linalg.norm(t + 1, axis=-1)
                               / np.linalg.norm(p, axis=-1))
    np.testing.assert_allclose(losses.mape(q, r), 100 * np.mean(np.abs(q - r) / q, -1))
    np.testing.assert_allclose(losses.msle(q, r),
                               np.mean((np.log1p(r) - np.log1p(q)) ** 2, -1))


def test_loss_names_and_configs():
    for alias, cls in [("kld", losses.KLDivergence), ("logcosh", losses.LogCosh),
                       ("mape", losses.MeanAbsolutePercentageError),
                       ("msle", losses.MeanSquaredLogarithmicError),
                       ("cosine_similarity", losses.CosineSimilarity),
                       ("categorical_hinge", losses.CategoricalHinge)]:
        loss = losses.get(alias)
        assert type(loss) is cls
        again = losses.get(losses.serialize(loss))
        assert type(again) is cls and again.get_config() == loss.get_config()


def test_hinge_labels_are_converted_only_when_all_are_0_or_1():
    """Keras's rule looks at the whole batch: a single -1 keeps every label as given."""
    # 0/1 labels: the 0 becomes -1, terms 1 - (-1)(-0.5) = 0.5 and 0.5
    assert losses.Hinge()(np.array([[1.0], [0.0]]), np.array([[0.5], [-0.5]])) == \
        pytest.approx(0.5)
    # with a -1 among them the 0 stays 0: terms 0.5, 1, 1.5 (converted it would be 0.5)
    assert losses.Hinge()(np.array([[1.0], [0.0], [-1.0]]),
                          np.array([[0.5], [-0.5], [0.5]])) == pytest.approx(1.0)


# --------------------------------------------------------------------- activations

@pytest.mark.parametrize("be", BACKENDS)
@pytest.mark.parametrize("act", ["relu6", "selu", "silu", "hard_sigmoid", "hard_silu", "mish",
                                 "exponential", "softsign", "log_softmax"])
def test_dense_with_each_new_activation_trains_as_the_reference(be, act):
    """Dense(activation=act) fused on every backend: the same predictions and gradients
    as the numpy reference."""
    _backend(be)
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 4))
    ws = [rng.normal(size=(3, 4)) * 0.5, rng.normal(size=4) * 0.1]
    got = []
    for backend in ("numpy", be):
        m = dl.Sequential([layers.Dense(4, activation=act, input_shape=(3,),
                                        dtype="float64")], backend=backend)
        m.set_weights(ws)
        m.compile("sgd", "mse")
        got.append((m.predict(x, verbose=0), *m.compute_gradients(x, y)))
    (p0, l0, g0), (p1, l1, g1) = got
    np.testing.assert_allclose(p1, p0, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(l1, l0, rtol=1e-12)
    for a, b in zip(g1, g0):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


def test_relu_with_parameters_in_a_layer_trains_unfused():
    """relu(max_value=6, negative_slope=0.1) on a Dense: the unfused path (the
    activation's own kernels), gradient checked against finite differences."""
    act = activations.Activation("relu", negative_slope=0.1, max_value=1.0, threshold=0.2)
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    model = dl.Sequential([layers.Dense(2, activation=act, input_shape=(3,),
                                        dtype="float64")], backend="cython")
    model.compile("sgd", "mse")
    loss, grads = model.compute_gradients(x, y)
    w = model.get_weights()
    eps = 1e-6
    for i in range(w[0].size):
        plus = [a.copy() for a in w]
        plus[0].flat[i] += eps
        minus = [a.copy() for a in w]
        minus[0].flat[i] -= eps
        model.set_weights(plus)
        lp = model.compute_gradients(x, y)[0]
        model.set_weights(minus)
        lm = model.compute_gradients(x, y)[0]
        assert grads[0].flat[i] == pytest.approx((lp - lm) / (2 * eps), rel=1e-5, abs=1e-8)
    model.set_weights(w)
    assert model.get_config()["layers"][0]["config"]["activation"] == {
        "name": "relu", "negative_slope": 0.1, "max_value": 1.0, "threshold": 0.2}


def test_activation_aliases_and_errors():
    assert activations.get("swish") == activations.silu
    assert activations.get("hard_swish") == activations.hard_silu
    assert activations.serialize("swish") == "silu"
    with pytest.raises(TypeError, match="arbitrary Python callables"):
        activations.get(lambda z: z)
    with pytest.raises(TypeError, match="only softmax and log_softmax"):
        activations.relu(np.ones(3), axis=0)
    with pytest.raises(ValueError, match="^axis: "):
        activations.softmax(np.ones((2, 3)), axis=2)
    with pytest.raises(ValueError, match="^axis: expected distinct"):
        activations.softmax(np.ones((2, 3)), axis=(1, -1))
    with pytest.raises(ValueError, match="^max_value: "):
        activations.relu(np.ones(3), max_value=-1.0)


# ---------------------------------------------------------------------------- AUC

@pytest.mark.parametrize("be", BACKENDS)
def test_auc_in_fit_is_the_auc_of_the_epoch(be):
    """compile(metrics=["auc"]) on every backend: evaluate's AUC equals the metric's on
    the predictions, and a perfect ranking scores 1."""
    _backend(be)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(64, 3))
    y = (x[:, :1] + 0.3 * rng.normal(size=(64, 1)) > 0).astype(float)
    model = dl.Sequential([layers.Dense(1, activation="sigmoid", input_shape=(3,))],
                          backend=be)
    model.compile("adam", "binary_crossentropy", metrics=["auc"])
    history = model.fit(x, y, epochs=2, batch_size=32, verbose=0).history
    assert set(history) == {"loss", "auc"}
    result = model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    expected = metrics.AUC()(y, model.predict(x, verbose=0))
    assert result["auc"] == pytest.approx(expected, abs=1e-6)
    assert metrics.AUC()(y, y) == 1.0


def test_auc_matches_the_exact_area_with_many_thresholds():
    """With 10,000 thresholds the interpolated ROC AUC is the exact (Mann-Whitney)
    area of scores that do not tie within a bucket."""
    rng = np.random.default_rng(9)
    y = rng.integers(0, 2, 400)
    p = np.clip(0.5 * rng.random(400) + 0.3 * y, 0, 1)
    pos, neg = p[y == 1], p[y == 0]
    exact = np.mean(pos[:, None] > neg[None, :]) + 0.5 * np.mean(pos[:, None] == neg[None, :])
    assert metrics.AUC(num_thresholds=10000)(y, p) == pytest.approx(exact, abs=2e-3)
