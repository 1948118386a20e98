"""Weight constraints (dl.constraints): Keras's formulas, configs, and their place in
training (projected after every optimizer step, on every backend)."""
import numpy as np
import pytest

import dl
import kernels
from dl import constraints
from dl_helpers import restore_dl_state  # noqa: F401  (autouse fixture)

EPS = 1e-7
W = np.array([[3.0, -0.1], [4.0, 0.2], [0.0, -0.3]])


def test_formulas():
    norms = np.sqrt((W ** 2).sum(axis=0, keepdims=True))          # [5, 0.374]
    np.testing.assert_allclose(constraints.MaxNorm(2.0)(W),
                               W * np.clip(norms, 0, 2) / (EPS + norms))
    np.testing.assert_allclose(constraints.UnitNorm()(W), W / (EPS + norms))
    np.testing.assert_array_equal(constraints.NonNeg()(W), np.maximum(W, 0))
    mm = constraints.MinMaxNorm(min_value=1.0, max_value=2.0, rate=0.5)(W)
    desired = 0.5 * np.clip(norms, 1, 2) + 0.5 * norms
    np.testing.assert_allclose(mm, W * desired / (EPS + norms))
    rows = constraints.UnitNorm(axis=1)(W)
    np.testing.assert_allclose((rows[:2] ** 2).sum(axis=1), [1, 1], rtol=1e-6)
    assert constraints.MaxNorm(axis=[0, 1])(W).shape == W.shape
    assert constraints.NonNeg()(W.astype(np.float32)).dtype == np.float32


def test_configs_and_names():
    for c in (constraints.MaxNorm(3, axis=1), constraints.MinMaxNorm(0.5, 2.0, 0.3),
              constraints.NonNeg(), constraints.UnitNorm(axis=[0])):
        again = constraints.get(constraints.serialize(c))
        assert type(again) is type(c) and again.get_config() == c.get_config()
    assert isinstance(constraints.get("max_norm"), constraints.MaxNorm)
    assert isinstance(constraints.get("non_neg"), constraints.NonNeg)
    assert constraints.get(None) is None


@pytest.mark.parametrize("make, exc, start", [
    (lambda: constraints.MaxNorm(-1), ValueError, "max_value: expected a finite"),
    (lambda: constraints.MaxNorm(axis="0"), TypeError, "axis: expected an int"),
    (lambda: constraints.MinMaxNorm(2.0, 1.0), ValueError, "max_value: expected a number >="),
    (lambda: constraints.UnitNorm(axis=3)(W), ValueError, "axis: 3 is outside"),
    (lambda: constraints.get("nope"), ValueError, "constraint: unknown constraint 'nope'"),
    (lambda: dl.layers.Dense(2, kernel_constraint=5), TypeError, "kernel_constraint:"),
])
def test_bad_arguments_are_named(make, exc, start):
    with pytest.raises(exc) as info:
        make()
    assert str(info.value).startswith(start), str(info.value)


@pytest.mark.parametrize("backend", [b for b in ("numpy", "cython", "cuda")
                                     if b in kernels.available_backends()])
def test_constraints_hold_after_every_step(backend):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 3)).astype(np.float32) * 5
    y = rng.standard_normal((12, 2)).astype(np.float32) * 5
    dl.utils.set_random_seed(1)
    model = dl.Sequential([dl.Input((3,)), dl.layers.Dense(
        2, kernel_constraint=constraints.MaxNorm(0.5), bias_constraint="non_neg")],
        backend=backend)
    model.compile(optimizer=dl.optimizers.SGD(0.5), loss="mse")
    seen = []

    class Watch(dl.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(self.model.get_weights())
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[Watch()])
    assert len(seen) == 6
    for kernel, bias in seen:
        assert (np.sqrt((kernel ** 2).sum(axis=0)) <= 0.5 + 1e-6).all()
        assert (bias >= 0).all()
    cfg = model.layers[0].get_config()
    assert cfg["kernel_constraint"]["class_name"] == "MaxNorm"
    again = dl.layers.Dense.from_config(cfg)
    assert isinstance(again.bias_constraint, constraints.NonNeg)
