"""Optimizer updates: the cython kernels against the reference over several steps, and
the reference against Keras's formulas (one hand-computed step, multi-step tables).

Every comparison runs for float32 and float64 and (through the ``threads`` fixture)
with 1 and 2 kernel threads, the parallel threshold lowered to 1 element so that the
threaded code paths run even on small shapes.  Tolerances come from conftest's table.
"""
import math

import numpy as np
import pytest

from kernels import reference as ref

from kernel_helpers import Guarded, assert_close, normal, optimizer_state_names

# ======================================================================== optimizers
OPT_CASES = [
    ("sgd", {}), ("sgd", {"momentum": 0.9}), ("sgd", {"momentum": 0.9, "nesterov": True}),
    ("sgd", {"weight_decay": 0.01}),
    ("sgd", {"momentum": 0.5, "nesterov": True, "weight_decay": 0.1, "learning_rate": 0.1}),
    ("adam", {}), ("adam", {"amsgrad": True}), ("adam", {"weight_decay": 0.01}),
    ("adam", {"amsgrad": True, "weight_decay": 0.05, "learning_rate": 0.01, "beta_1": 0.8,
              "beta_2": 0.99, "epsilon": 1e-5}),
    ("adamw", {}), ("adamw", {"amsgrad": True}), ("adamw", {"weight_decay": 0.1,
                                                          "learning_rate": 0.01}),
    ("rmsprop", {}), ("rmsprop", {"momentum": 0.9}), ("rmsprop", {"centered": True}),
    ("rmsprop", {"centered": True, "momentum": 0.5, "rho": 0.8, "weight_decay": 0.01,
                 "learning_rate": 0.01}),
    ("adagrad", {}), ("adagrad", {"weight_decay": 0.01, "epsilon": 1e-3, "learning_rate": 0.1}),
]
OPT_IDS = [name + "".join(f"-{k}={v}" for k, v in kw.items()) for name, kw in OPT_CASES]
OPT_SHAPES = [(1,), (3, 4, 5), (130, 150)]


def _init_state(name, state, shape, dtype):
    if name == "adagrad":
        return np.full(shape, 0.1, dtype)       # Keras's initial_accumulator_value
    return np.zeros(shape, dtype)


def _call_update(backend, name, w, g, states, kw, step):
    fn = getattr(backend, name + "_update")
    positional = {"sgd": [], "adam": ["m", "v"], "adamw": ["m", "v"], "rmsprop": ["v"],
                  "adagrad": ["acc"]}[name]
    args = [states[s] for s in positional]
    keywords = {s: states[s] for s in states if s not in positional}
    if name == "sgd" and "m" in states:
        args = [states["m"]]
        keywords = {}
    if name in ("adam", "adamw"):
        keywords["step"] = step
    return fn(w, g, *args, **keywords, **kw)


def _run_optimizer(backend, name, kw, w0, grads, make_layout=lambda a: a.copy()):
    w = make_layout(w0)
    states = {s: make_layout(_init_state(name, s, w0.shape, w0.dtype))
              for s in optimizer_state_names(name, kw)}
    for step, g in enumerate(grads, start=1):
        res = _call_update(backend, name, w, make_layout(g), states, kw, step)
        assert res is w
    return w, states


@pytest.mark.parametrize("shape", OPT_SHAPES, ids=str)
@pytest.mark.parametrize("name, kw", OPT_CASES, ids=OPT_IDS)
def test_optimizer_steps(cy, dtype, threads, rng, name, kw, shape):
    w0 = normal(rng, shape, dtype)
    grads = [normal(rng, shape, dtype) for _ in range(5)]
    e_w, e_states = _run_optimizer(ref, name, kw, w0, grads)
    w, states = _run_optimizer(cy, name, kw, w0, grads)
    assert not np.array_equal(e_w, w0)
    assert_close(w, e_w, dtype, "optimizer", err_msg="w")
    for s in states:
        assert_close(states[s], e_states[s], dtype, "optimizer", err_msg=s)


@pytest.mark.parametrize("layout", ["F", "cols3", "neg"])
@pytest.mark.parametrize("name, kw", OPT_CASES, ids=OPT_IDS)
def test_optimizer_strided_arrays(cy, dtype, two_threads, rng, name, kw, layout):
    """w (and the state arrays) as non-contiguous views: updated in place, nothing
    outside them written."""
    shape = (7, 13)
    w0 = normal(rng, shape, dtype)
    grads = [normal(rng, shape, dtype) for _ in range(3)]
    e_w, e_states = _run_optimizer(ref, name, kw, w0, grads)

    guards = []

    def make(a):
        g = Guarded(a.shape, a.dtype, layout)
        g.view[...] = a
        guards.append(g)
        return g.view

    w, states = _run_optimizer(cy, name, kw, w0, grads, make_layout=make)
    assert_close(w, e_w, dtype, "optimizer", err_msg="w")
    for s in states:
        assert_close(states[s], e_states[s], dtype, "optimizer", err_msg=s)
    assert all(g.guard_ok() for g in guards)


def test_optimizer_column_slice_of_weights(cy, dtype, threads, rng):
    """A column slice of a bigger matrix updated in place; the other columns untouched."""
    big = normal(rng, (9, 12), dtype)
    expected_big = big.copy()
    g = normal(rng, (9, 4), dtype)
    m, v = np.zeros((9, 4), dtype), np.zeros((9, 4), dtype)
    ref.adam_update(expected_big[:, 2:6], g, m.copy(), v.copy(), step=1)
    w = big[:, 2:6]
    res = cy.adam_update(w, g, m, v, step=1)
    assert res is w and np.shares_memory(res, big)
    assert_close(big, expected_big, dtype, "optimizer")
    np.testing.assert_array_equal(np.delete(big, np.s_[2:6], axis=1),
                                  np.delete(expected_big, np.s_[2:6], axis=1))


def test_sgd_momentum_buffer_ignored_without_momentum(backend, dtype, rng):
    w = normal(rng, (5,), dtype)
    g = normal(rng, (5,), dtype)
    m = np.full((5,), 3.0, dtype)
    expected = w - np.asarray(0.01, dtype) * g
    backend.sgd_update(w, g, m)
    assert_close(w, expected, dtype, "optimizer")
    np.testing.assert_array_equal(m, np.full((5,), 3.0, dtype))


# ----------------------------------------------- optimizers against Keras's formulas
def _keras_adam(w, grads, lr=0.001, b1=0.9, b2=0.999, eps=1e-7, amsgrad=False, wd=0.0):
    """Keras 3 Adam, written from KERAS_NUMERICS.md in float64, element by element."""
    w = [float(x) for x in w]
    m = [0.0] * len(w)
    v = [0.0] * len(w)
    vh = [0.0] * len(w)
    for t, g in enumerate(grads, start=1):
        alpha = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        for i, gi in enumerate(g):
            w[i] -= w[i] * wd * lr
            m[i] += (gi - m[i]) * (1 - b1)
            v[i] += (gi * gi - v[i]) * (1 - b2)
            denom_v = v[i]
            if amsgrad:
                vh[i] = max(vh[i], v[i])
                denom_v = vh[i]
            w[i] -= alpha * m[i] / (math.sqrt(denom_v) + eps)
    return np.array(w), np.array(m), np.array(v)


def test_adam_first_step_is_keras(backend):
    w0 = np.array([0.5, -1.0, 2.0, 0.0])
    g = np.array([0.1, -3.0, 1e-4, 2.0])
    w = w0.copy()
    m, v = np.zeros(4), np.zeros(4)
    backend.adam_update(w, g, m, v, step=1)
    # step 1: m = 0.1 g, v = 0.001 g^2, alpha = lr sqrt(0.001) / 0.1, so
    # w1 = w0 - lr * sqrt(0.001) * g / (sqrt(0.001) |g| + 1e-7) ~ w0 - lr * sign(g)
    s = math.sqrt(1 - 0.999)
    expected = w0 - 0.001 * s * g / (s * np.abs(g) + 1e-7)
    np.testing.assert_allclose(w, expected, rtol=1e-13)
    np.testing.assert_allclose(m, 0.1 * g, rtol=1e-14)
    np.testing.assert_allclose(v, 0.001 * g * g, rtol=1e-14)
    assert abs(w[1] - (w0[1] + 0.001)) < 1e-8          # large |g|: a step of lr


@pytest.mark.parametrize("kw", [{}, {"amsgrad": True}, {"weight_decay": 0.004},
                                {"learning_rate": 0.05, "beta_1": 0.5, "beta_2": 0.9}])
def test_adam_matches_keras_formula_over_steps(backend, rng, kw):
    w0 = rng.standard_normal(6)
    grads = [rng.standard_normal(6) for _ in range(5)]
    grads[3] = grads[3] * 0.01                       # let AMSGrad's maximum matter
    w, m, v = w0.copy(), np.zeros(6), np.zeros(6)
    v_hat = np.zeros(6)
    extra = {"v_hat": v_hat} if kw.get("amsgrad") else {}
    for t, g in enumerate(grads, start=1):
        backend.adam_update(w, g, m, v, step=t, **kw, **extra)
    e_w, e_m, e_v = _keras_adam(w0, grads, lr=kw.get("learning_rate", 0.001),
                                b1=kw.get("beta_1", 0.9), b2=kw.get("beta_2", 0.999),
                                amsgrad=kw.get("amsgrad", False),
                                wd=kw.get("weight_decay", 0.0))
    np.testing.assert_allclose(w, e_w, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(m, e_m, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(v, e_v, rtol=1e-12, atol=1e-15)


def test_adamw_default_decay_is_keras(backend, rng):
    w0 = rng.standard_normal(5)
    g = rng.standard_normal(5)
    w = w0.copy()
    backend.adamw_update(w, g, np.zeros(5), np.zeros(5), step=1, learning_rate=0.01)
    e_w, _, _ = _keras_adam(w0, [g], lr=0.01, wd=0.004)
    np.testing.assert_allclose(w, e_w, rtol=1e-13)


def test_rmsprop_matches_keras_formula(backend, rng):
    w0 = rng.standard_normal(6)
    grads = [rng.standard_normal(6) for _ in range(4)]
    for centered in (False, True):
        for momentum in (0.0, 0.9):
            w = w0.copy()
            v, mom, mg = np.zeros(6), np.zeros(6), np.zeros(6)
            for g in grads:
                backend.rmsprop_update(w, g, v, momentum=momentum, centered=centered,
                                       mom=mom, mg=mg)
            # Keras: v = rho v + (1 - rho) g^2; centered: mg likewise, denominator
            # v - mg^2; inc = lr g / sqrt(denominator + eps)  (eps INSIDE the root)
            ew, ev, emom, emg = list(w0), [0.0] * 6, [0.0] * 6, [0.0] * 6
            for g in grads:
                for i in range(6):
                    ev[i] = 0.9 * ev[i] + 0.1 * g[i] ** 2
                    den = ev[i]
                    if centered:
                        emg[i] = 0.9 * emg[i] + 0.1 * g[i]
                        den = ev[i] - emg[i] ** 2
                    inc = 0.001 * g[i] / math.sqrt(den + 1e-7)
                    if momentum:
                        emom[i] = momentum * emom[i] + inc
                        ew[i] -= emom[i]
                    else:
                        ew[i] -= inc
            msg = f"centered={centered} momentum={momentum}"
            np.testing.assert_allclose(w, ew, rtol=1e-12, err_msg=msg)
            np.testing.assert_allclose(v, ev, rtol=1e-12, err_msg=msg)


def test_rmsprop_first_step_epsilon_inside_root(backend):
    g = np.array([1e-4])
    w = np.array([0.0])
    backend.rmsprop_update(w, g, np.zeros(1), epsilon=1e-7)
    # v = 0.1 * 1e-8 = 1e-9; inc = 1e-3 * 1e-4 / sqrt(1e-9 + 1e-7)
    np.testing.assert_allclose(w, [-1e-7 / math.sqrt(1.01e-7)], rtol=1e-13)


def test_adagrad_matches_keras_formula(backend):
    w = np.array([1.0, -2.0])
    acc = np.full(2, 0.1)
    g1, g2 = np.array([0.5, -1.0]), np.array([-0.25, 2.0])
    backend.adagrad_update(w, g1, acc)
    backend.adagrad_update(w, g2, acc)
    e_acc = 0.1 + g1 ** 2 + g2 ** 2
    e_w = np.array([1.0, -2.0])
    e_w = e_w - 0.001 * g1 / np.sqrt(0.1 + g1 ** 2 + 1e-7)
    e_w = e_w - 0.001 * g2 / np.sqrt(e_acc + 1e-7)
    np.testing.assert_allclose(acc, e_acc, rtol=1e-15)
    np.testing.assert_allclose(w, e_w, rtol=1e-14)


def test_sgd_matches_keras_formula(backend):
    g1, g2 = np.array([1.0, -2.0]), np.array([0.5, 0.5])
    # plain: w -= lr g
    w = np.array([1.0, 1.0])
    backend.sgd_update(w, g1, learning_rate=0.1)
    np.testing.assert_allclose(w, [0.9, 1.2], rtol=1e-15)
    # momentum: m = mu m - lr g; w += m
    w, m = np.array([1.0, 1.0]), np.zeros(2)
    backend.sgd_update(w, g1, m, learning_rate=0.1, momentum=0.9)
    backend.sgd_update(w, g2, m, learning_rate=0.1, momentum=0.9)
    m1 = -0.1 * g1
    m2 = 0.9 * m1 - 0.1 * g2
    np.testing.assert_allclose(m, m2, rtol=1e-15)
    np.testing.assert_allclose(w, 1.0 + m1 + m2, rtol=1e-15)
    # nesterov: w += mu m - lr g
    w, m = np.array([1.0, 1.0]), np.zeros(2)
    backend.sgd_update(w, g1, m, learning_rate=0.1, momentum=0.9, nesterov=True)
    backend.sgd_update(w, g2, m, learning_rate=0.1, momentum=0.9, nesterov=True)
    np.testing.assert_allclose(w, 1.0 + (0.9 * m1 - 0.1 * g1) + (0.9 * m2 - 0.1 * g2),
                               rtol=1e-15)
    # decoupled weight decay before the step: w -= w wd lr
    w = np.array([2.0])
    backend.sgd_update(w, np.array([1.0]), learning_rate=0.1, weight_decay=0.5)
    np.testing.assert_allclose(w, [2.0 - 2.0 * 0.05 - 0.1], rtol=1e-15)
