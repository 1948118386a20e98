"""The cuda backend's optimizer updates against the NumPy reference.

Each call is one fused kernel launch per parameter array, updating w and the state
arrays in place: on the device for device arrays (the same objects returned), or on
host arrays (copied to the device and back into the caller's arrays, whatever their
layout).  Several steps with every option; small shapes for Numba's simulator.
"""
import numpy as np
import pytest

from cuda_helpers import SIMULATOR, SIZES_1D, to_device, to_host
from kernel_helpers import assert_close, optimizer_state_names
from kernels import reference as ref

CASES = [
    ("sgd", {}), ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.5, "nesterov": True, "weight_decay": 0.1, "learning_rate": 0.1}),
    ("adam", {}),
    ("adam", {"amsgrad": True, "weight_decay": 0.05, "learning_rate": 0.01, "beta_1": 0.8,
              "beta_2": 0.99, "epsilon": 1e-5}),
    ("adamw", {}), ("adamw", {"amsgrad": True, "weight_decay": 0.1, "learning_rate": 0.01}),
    ("rmsprop", {}), ("rmsprop", {"momentum": 0.9}),
    ("rmsprop", {"centered": True, "momentum": 0.5, "rho": 0.8, "weight_decay": 0.01,
                 "learning_rate": 0.01}),
    ("adagrad", {}), ("adagrad", {"weight_decay": 0.01, "epsilon": 1e-3, "learning_rate": 0.1}),
]
IDS = [name + "".join(f"-{k}={v}" for k, v in kw.items()) for name, kw in CASES]
# the shape of each case's host run (its device run uses the next one): 1-D, 2-D, 3-D
SHAPES = [(7, 13), (31,), (2, 3, 5), (1,)] + ([] if SIMULATOR else [(SIZES_1D[-1],)])
STEPS = 3


def _init_state(name, shape, dtype):
    if name == "adagrad":
        return np.full(shape, 0.1, dtype)       # Keras's initial_accumulator_value
    return np.zeros(shape, dtype)


def _call(backend, name, w, g, states, kw, step):
    fn = getattr(backend, name + "_update")
    positional = {"sgd": ["m"], "adam": ["m", "v"], "adamw": ["m", "v"], "rmsprop": ["v"],
                  "adagrad": ["acc"]}[name]
    args = [states[s] for s in positional if s in states]
    keywords = {s: states[s] for s in states if s not in positional}
    if name in ("adam", "adamw"):
        keywords["step"] = step
    return fn(w, g, *args, **keywords, **kw)


def _run(backend, name, kw, w0, grads, convert=np.copy):
    w = convert(w0)
    states = {s: convert(_init_state(name, w0.shape, w0.dtype))
              for s in optimizer_state_names(name, kw)}
    for step, g in enumerate(grads, start=1):
        assert _call(backend, name, w, convert(g), states, kw, step) is w
    return w, states


def _compare(w, states, e_w, e_states, dtype):
    assert_close(to_host(w), e_w, dtype, "optimizer", err_msg="w")
    assert set(states) == set(e_states)
    for s in states:
        assert_close(to_host(states[s]), e_states[s], dtype, "optimizer", err_msg=s)


@pytest.mark.parametrize("case", range(len(CASES)), ids=IDS)
def test_optimizer_steps(cuda, rng, dtype, case):
    """STEPS updates on host arrays and on device arrays, against the reference."""
    name, kw = CASES[case]
    for convert, shape in [(np.copy, SHAPES[case % len(SHAPES)]),
                           (to_device, SHAPES[(case + 1) % len(SHAPES)])]:
        w0 = rng.standard_normal(shape).astype(dtype)
        grads = [rng.standard_normal(shape).astype(dtype) for _ in range(STEPS)]
        e_w, e_states = _run(ref, name, kw, w0, grads)
        w, states = _run(cuda, name, kw, w0, grads, convert)
        assert not np.array_equal(e_w, w0)
        _compare(w, states, e_w, e_states, dtype)


def test_one_launch_per_call(cuda, rng):
    """Decay, state and weight updates fused: one launch per call, all options on."""
    from kernels.cuda.backend import launches
    shape = (4, 5)

    def arrays(k):
        # positive, the last one small (rmsprop's mg: v - mg^2 > 0, a real square root)
        return [to_device(rng.uniform(0.5, 1.0, shape).astype(np.float32)
                          * (0.1 if i == k - 1 else 1.0)) for i in range(k)]

    calls = [
        lambda w, g, m: cuda.sgd_update(w, g, m, momentum=0.9, nesterov=True,
                                        weight_decay=0.1),
        lambda w, g, m, v, vh: cuda.adamw_update(w, g, m, v, step=2, amsgrad=True, v_hat=vh),
        lambda w, g, v, mom, mg: cuda.rmsprop_update(w, g, v, momentum=0.5, centered=True,
                                                     mom=mom, mg=mg, weight_decay=0.1),
        lambda w, g, acc: cuda.adagrad_update(w, g, acc, weight_decay=0.1)]
    for call, k in zip(calls, (3, 5, 5, 3)):
        args = arrays(k)
        before = launches.count
        assert call(*args) is args[0]
        assert launches.count == before + 1


def test_strided_host_arrays_are_updated_in_place(cuda, rng, dtype):
    """Host w and states as non-contiguous views: written back into the views, nothing
    around them touched."""
    shape = (5, 6)
    base_w = np.full((5, 12), np.nan, dtype)
    base_m = np.full((6, 5), np.nan, dtype)
    w = base_w[:, ::2]                       # every other column
    m = base_m.T                             # Fortran order
    w[...] = rng.standard_normal(shape)
    m[...] = 0.0
    v = np.zeros(shape, dtype)
    g = rng.standard_normal(shape).astype(dtype)[::-1]
    e_w, e_m, e_v = w.copy(), m.copy(), v.copy()
    ref.adam_update(e_w, g, e_m, e_v, step=1, weight_decay=0.1)
    assert cuda.adam_update(w, g, m, v, step=1, weight_decay=0.1) is w
    _compare(w, {"m": m, "v": v}, e_w, {"m": e_m, "v": e_v}, dtype)
    assert np.isnan(base_w[:, 1::2]).all()


def test_sgd_momentum_buffer_ignored_without_momentum(cuda, rng, dtype):
    w = rng.standard_normal(5).astype(dtype)
    g = rng.standard_normal(5).astype(dtype)
    expected = w - np.asarray(0.01, dtype) * g
    m = to_device(np.full(5, 3.0, dtype))
    dw = to_device(w)
    assert cuda.sgd_update(dw, to_device(g), m) is dw
    assert_close(to_host(dw), expected, dtype, "optimizer")
    np.testing.assert_array_equal(to_host(m), np.full(5, 3.0, dtype))


def test_amsgrad_nan_propagates_like_the_reference(cuda, dtype):
    g = np.array([1.0, np.nan, -2.0], dtype)
    results = []
    for backend in (ref, cuda):
        arrays = [np.ones(3, dtype), np.zeros(3, dtype), np.zeros(3, dtype),
                  np.array([0.0, 0.0, np.nan], dtype)]
        w, m, v, vh = arrays
        with np.errstate(invalid="ignore"):
            backend.adam_update(w, g, m, v, step=1, amsgrad=True, v_hat=vh)
        results.append(arrays)
    for a, b in zip(*results):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        assert_close(a, b, dtype, "optimizer")


def _step_with_zero_gradient(backend, name, w, **kw):
    g = np.zeros_like(w)
    z = [np.zeros_like(w) for _ in range(2)]
    with np.errstate(all="ignore"):
        if name == "sgd":
            backend.sgd_update(w, g, z[0], momentum=0.9, **kw)
        elif name == "adamw":
            backend.adamw_update(w, g, z[0], z[1], step=1, **kw)
        elif name == "rmsprop":
            backend.rmsprop_update(w, g, z[0], **kw)
        else:
            backend.adagrad_update(w, g, z[0], **kw)
    return w


@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # inf - inf in the simulator
@pytest.mark.parametrize("name", ["sgd", "adamw", "rmsprop", "adagrad"])
def test_weight_decay_rule_follows_the_reference(cuda, dtype, name):
    """The decoupled decay w -= w * (weight_decay * learning_rate) is applied exactly
    when the reference applies it (an infinite weight shows it: inf - inf = NaN)."""
    w0 = np.array([np.inf, -np.inf, 1.0], dtype)
    for kw in [{"learning_rate": 0.0, "weight_decay": 0.1},
               {"learning_rate": 1e-30, "weight_decay": 1e-30},    # 0 in float32 only
               {"learning_rate": 1e-20, "weight_decay": 1e-20}]:   # subnormal in float32
        expected = _step_with_zero_gradient(ref, name, w0.copy(), **kw)
        got = _step_with_zero_gradient(cuda, name, w0.copy(), **kw)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=str(kw))
        assert_close(got, expected, dtype, "optimizer", err_msg=str(kw))


def test_mixing_host_and_device_is_a_type_error(cuda):
    w = np.ones(4, np.float32)
    with pytest.raises(TypeError, match=r"^g: expected a device array like w"):
        cuda.sgd_update(to_device(w), w)
    with pytest.raises(TypeError, match=r"^v: expected a device array like w"):
        cuda.adam_update(to_device(w), to_device(w), to_device(w), w.copy(), step=1)
    with pytest.raises(TypeError, match=r"^mom: expected a device array"):
        cuda.rmsprop_update(to_device(w), to_device(w), to_device(w), momentum=0.5,
                            mom=w.copy())


def test_device_checks_match_the_reference(cuda):
    w = to_device(np.ones((3, 4), np.float32))
    g = to_device(np.ones((3, 4), np.float32))
    with pytest.raises(ValueError, match=r"^g: expected shape \(3, 4\)"):
        cuda.adagrad_update(w, to_device(np.ones((4, 3), np.float32)),
                            to_device(np.ones((3, 4), np.float32)))
    with pytest.raises(TypeError, match=r"^m: expected dtype float32"):
        cuda.sgd_update(w, g, to_device(np.ones((3, 4))), momentum=0.9)
    with pytest.raises(ValueError, match=r"^m: must not share memory with g"):
        cuda.sgd_update(w, g, g, momentum=0.9)
    with pytest.raises(ValueError, match=r"^v_hat: expected the AMSGrad maximum buffer"):
        cuda.adam_update(w, g, to_device(np.ones((3, 4), np.float32)),
                         to_device(np.ones((3, 4), np.float32)), step=1, amsgrad=True)
    with pytest.raises(ValueError, match=r"^step: expected an integer >= 1"):
        cuda.adamw_update(w, g, to_device(np.ones((3, 4), np.float32)),
                          to_device(np.ones((3, 4), np.float32)), step=0)
    with pytest.raises(ValueError, match=r"^w: expected a C-contiguous device array"):
        cuda.adagrad_update(w.T, g.T, to_device(np.ones((3, 4), np.float32)).T)
