"""The seed program, exactly as users write it, on both CPU backends."""
import numpy as np
import pytest

import dl
from dl_helpers import both_backends, restore_dl_state  # noqa: F401  (autouse fixture)

BACKENDS = both_backends()
SEEDS = (0, 1, 2, 3, 7)


def seed_program(seed, backend=None, use_set_backend=False):
    """The seed tutorial: a 1-unit Dense on four points, SGD, MSE, 1000 epochs."""
    dl.utils.set_random_seed(seed)
    if use_set_backend:
        dl.set_backend(backend)
        backend = None
    x = np.array([[1, 2], [2, 3], [3, 4], [4, 5]])
    y = np.array([1, 2, 3, 4])
    model = dl.Sequential([dl.layers.Dense(1, input_shape=(2,))], backend=backend)
    model.compile(optimizer="sgd", loss="mean_squared_error")
    model.fit(x, y, epochs=1000, verbose=0)
    return model, model.predict(x, verbose=0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", SEEDS)
def test_seed_program_converges(seed, backend):
    model, pred = seed_program(seed, backend)
    assert model.backend.name == backend
    assert pred.shape == (4, 1)
    assert pred.dtype == np.float32
    np.testing.assert_allclose(pred[:, 0], [1, 2, 3, 4], atol=0.05)
    history = model.history.history["loss"]
    assert len(history) == 1000
    assert history[-1] < history[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_seed_program_with_set_backend(backend):
    model, pred = seed_program(0, backend, use_set_backend=True)
    assert dl.get_backend().name == backend
    assert model.backend.name == backend
    np.testing.assert_allclose(pred[:, 0], [1, 2, 3, 4], atol=0.05)


def test_set_backend_is_restored_by_the_fixture():
    # runs after test_seed_program_with_set_backend: the default is back
    assert dl.config._BACKEND_NAME is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_same_weights(backend):
    m1, p1 = seed_program(3, backend)
    m2, p2 = seed_program(3, backend)
    for a, b in zip(m1.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(p1, p2)
    m3, _ = seed_program(4, backend)
    assert not np.array_equal(m1.get_weights()[0], m3.get_weights()[0])


def test_same_seed_same_initial_weights():
    dl.utils.set_random_seed(11)
    a = dl.Sequential([dl.layers.Dense(3, input_shape=(2,))])
    a.build()
    dl.utils.set_random_seed(11)
    b = dl.Sequential([dl.layers.Dense(3, input_shape=(2,))])
    b.build()
    np.testing.assert_array_equal(a.get_weights()[0], b.get_weights()[0])
    assert a.seed == b.seed


@pytest.mark.skipif(len(BACKENDS) < 2, reason="the cython backend does not load")
@pytest.mark.parametrize("seed", (0, 5))
def test_numpy_and_cython_agree(seed):
    m_np, p_np = seed_program(seed, "numpy")
    m_cy, p_cy = seed_program(seed, "cython")
    for a, b in zip(m_np.get_weights(), m_cy.get_weights()):
        assert a.dtype == b.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p_np, p_cy, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m_np.history.history["loss"], m_cy.history.history["loss"],
                               rtol=1e-3, atol=1e-7)
