"""Optimizer updates on 2**20 (about 1M) parameters, float32 and float64, in place.

The timed call updates the same arrays round after round (no fresh copies: the cost
of one update does not depend on the values).  After timing, the state is copied twice
and one more step is run on each copy, by the backend and by the reference, and the
two results compared.
"""
import numpy as np
import pytest

SIZE = 1 << 20
DTYPES = ["float32", "float64"]

# name -> (state array names after w and g, keyword hyper-parameters)
CASES = {
    "adam_update": (("m", "v"), {"step": 10, "learning_rate": 1e-3}),
    "sgd_update": (("m",), {"learning_rate": 1e-2, "momentum": 0.9}),
    "rmsprop_update": (("v",), {"learning_rate": 1e-3, "rho": 0.9}),
}


@pytest.fixture
def state(uniform):
    """w, g and non-trivial optimizer state (m around 0, v positive)."""
    def make(names):
        arrays = {"w": uniform(SIZE), "g": uniform(SIZE, -0.1, 0.1)}
        for name in names:
            arrays[name] = uniform(SIZE, 0.0, 1e-2) if name == "v" else uniform(SIZE, -1e-2, 1e-2)
        return arrays
    return make


@pytest.mark.parametrize("dtype", DTYPES, indirect=True)
@pytest.mark.parametrize("name", list(CASES))
def test_optimizer(benchmark, backend, describe, close, ref, state, dtype, name):
    state_names, hyper = CASES[name]
    arrays = state(state_names)
    args = [arrays["w"], arrays["g"]] + [arrays[s] for s in state_names]
    describe(name, (SIZE,), parameters=SIZE, **{k: v for k, v in hyper.items()})

    benchmark(getattr(backend, name), *args, **hyper)

    assert all(np.isfinite(a).all() for a in args)
    ours = {k: v.copy() for k, v in arrays.items()}
    theirs = {k: v.copy() for k, v in arrays.items()}
    order = ["w", "g", *state_names]
    result = getattr(backend, name)(*[ours[k] for k in order], **hyper)
    getattr(ref, name)(*[theirs[k] for k in order], **hyper)
    assert result is ours["w"]  # updated in place and returned
    for k in ["w", *state_names]:
        assert ours[k].dtype == dtype
        close(ours[k], theirs[k], "optimizer", err_msg=k)
