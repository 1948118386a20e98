"""Whole training runs through dl's Keras-style machinery, per backend.

- the seed program: ``fit(x, y, epochs=1000)`` of a Dense(1) on 4 samples (verbose=0);
  checked after timing: predictions within 0.05 of y.
"""
import numpy as np

import dl

SEED_X = np.array([[1, 2], [2, 3], [3, 4], [4, 5]])
SEED_Y = np.array([1, 2, 3, 4])


def test_seed_program_fit_1000_epochs(benchmark, backend, describe):
    describe("fit seed program 1000 epochs", "4x2->1")

    def make():
        dl.utils.set_random_seed(0)
        model = dl.Sequential([dl.layers.Dense(1, input_shape=(2,))], backend=backend.name)
        model.compile(optimizer="sgd", loss="mean_squared_error")
        return (model,), {}

    def run(model):
        model.fit(SEED_X, SEED_Y, epochs=1000, verbose=0)
        return model

    model = benchmark.pedantic(run, setup=make, rounds=7, iterations=1)
    y_pred = model.predict(SEED_X, verbose=0).ravel()
    np.testing.assert_allclose(y_pred, SEED_Y, atol=0.05)
