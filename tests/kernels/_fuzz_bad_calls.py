"""Many random bad calls to every kernel of every CPU backend; run as a script.

Run by ``test_bad_inputs.py`` in a subprocess (a crash there must not take pytest
down): ``python _fuzz_bad_calls.py SEED N_CALLS [THREADS]`` (THREADS defaults to 2; the
parallel threshold is set to 1 element so that small arrays take the threaded paths).
Each call starts from a valid argument set and replaces or adds one or two arguments
with bad values (wrong types, dtypes, ranks, shapes, empty, non-finite or out-of-range
hyper-parameters, read-only or aliased arrays, misaligned and strided buffers).  A call
may succeed or raise TypeError/ValueError; any other exception is printed as
``UNEXPECTED ...`` and makes the exit status 3.  A crash of the interpreter gives a
negative status.
"""
import inspect
import sys
import traceback

import numpy as np

import kernels
from kernels.cpu import _threads
from kernels import reference as ref


def valid_call(name, dt, rng):
    """(args, kwargs) of a valid call of kernel ``name`` in dtype ``dt``."""
    def f(*shape):
        return rng.standard_normal(shape).astype(dt)

    def p(*shape):
        return rng.uniform(0.1, 0.9, shape).astype(dt)

    if name == "gemm":
        return [f(3, 4), f(4, 5)], {}
    if name == "bias_add":
        return [f(3, 4), f(4)], {}
    if name == "column_sums":
        return [f(3, 4)], {}
    if name == "dense_forward":
        return [f(3, 4), f(4, 5), f(5)], {"activation": "relu"}
    if name == "dense_backward":
        return [f(3, 5), f(3, 4), f(4, 5), f(3, 5)], {"activation": "gelu",
                                                      "pre_activation": f(3, 5)}
    if name.startswith("backprop_") and name[9:] in ref.ACTIVATIONS:
        return [f(3, 4), f(3, 4)], {}
    if name in ref.ACTIVATIONS:
        return [f(3, 4)], {}
    if name == "layer_norm_forward":
        return [f(3, 4), f(4), f(4)], {"epsilon": 1e-3}
    if name == "layer_norm_backward":
        return [f(3, 4), f(3, 4), f(4)], {"epsilon": 1e-3}
    if name == "embedding_forward":
        return [rng.integers(0, 4, (3, 2)), f(4, 5)], {}
    if name == "embedding_backward":
        return [f(3, 2, 5), rng.integers(0, 4, (3, 2)), f(4, 5)], {}
    if name.startswith(("conv2d_", "conv1d_", "depthwise_conv2d_")):
        return _conv_call(name, f)
    if "pool2d_" in name:
        return _pool_call(name, f, rng)
    if name == "batch_norm_forward":
        return [f(2, 3, 3), f(3), f(3), f(3), p(3)], {"momentum": 0.9}
    if name == "batch_norm_inference":
        return [f(4, 3), f(3), f(3), f(3), p(3)], {"epsilon": 1e-3}
    if name == "batch_norm_backward":
        return [f(4, 3), f(4, 3), f(3)], {}
    if "sparse" in name:
        return [rng.integers(0, 4, 3), p(3, 4)], {}
    if name.endswith("_update"):
        kind = name[:-7]
        w, g = f(3, 4), f(3, 4)
        if kind == "sgd":
            return [w, g, np.zeros_like(w)], {"momentum": 0.9, "nesterov": True}
        if kind in ("adam", "adamw"):
            return [w, g, np.zeros_like(w), np.zeros_like(w)], {
                "step": 2, "amsgrad": True, "v_hat": np.zeros_like(w)}
        if kind == "rmsprop":
            return [w, g, np.zeros_like(w)], {"momentum": 0.9, "centered": True,
                                              "mom": np.zeros_like(w), "mg": np.zeros_like(w)}
        return [w, g, np.full_like(w, 0.1)], {}
    return [p(3, 4), p(3, 4)], {}          # the losses and fused losses


def _conv_call(name, f):
    """A convolution with strides, padding and groups or dilation (small shapes)."""
    if name.startswith("conv2d_"):
        x, w, out = (2, 5, 5, 4), (3, 3, 2, 4), (2, 3, 3, 4)
        kw = {"strides": 2, "padding": "same", "groups": 2}
    elif name.startswith("conv1d_"):
        x, w, out = (2, 7, 4), (3, 2, 4), (2, 7, 4)
        kw = {"padding": "causal", "dilation_rate": 2, "groups": 2}
    else:
        x, w, out = (2, 5, 5, 3), (3, 3, 3, 2), (2, 5, 5, 6)
        kw = {"padding": "same", "dilation_rate": (1, 2)}
    if name.endswith("_forward"):
        return [f(*x), f(*w), f(out[-1])], dict(kw, activation="relu")
    return [f(*out), f(*x), f(*w), f(*out)], dict(kw, activation="gelu",
                                                   pre_activation=f(*out))


def _pool_call(name, f, rng):
    kw = {"pool_size": 3, "strides": 2, "padding": "same"}
    x, out = (2, 5, 5, 3), (2, 3, 3, 3)
    if name.startswith("global_"):
        kw, out = {}, (2, 3)
    argmax = rng.integers(0, 25, out).astype(np.int32)
    if name.endswith("_forward"):
        return [f(*x)], kw
    if "max" in name:
        return [f(*out), argmax, f(*x)], kw
    return [f(*out), f(*x)], kw


def bad_values(rng, dt):
    shaped = rng.standard_normal((3, 4)).astype(dt)
    read_only = shaped.copy()
    read_only.flags.writeable = False
    buf = bytearray(np.dtype(dt).itemsize * 12 + 1)
    misaligned = np.ndarray((3, 4), dtype=dt, buffer=buf, offset=1)
    misaligned[...] = 1.0
    record = np.zeros(12, dtype=[("a", dt), ("b", np.int8)])["a"].reshape(3, 4)
    return [
        None, [1.0, 2.0], [[1.0] * 4] * 3, 3, 2.5, "x", "relu", True, False, np.nan, np.inf,
        -np.inf, -1, 0, 10 ** 30, -0.5, 1.0, 1.5, object(), (3, 4), {},
        np.float64(np.nan), np.int64(2), np.float32(0.5),
        np.zeros((0, 3), dt), np.zeros((3, 0), dt), np.zeros((0,), dt), np.array(1.0, dt),
        np.ones((3, 4), np.int64), np.ones((3, 4), np.int32), np.ones((3, 4), np.float16),
        np.ones((3, 4), np.complex128), np.ones((3, 4), bool), np.ones((3, 4), ">f8"),
        np.ones((3, 4), np.float32 if dt == np.float64 else np.float64),
        np.array(["a", "b", "c"]), np.ones((3, 4), object),
        np.ones((2, 3, 4), dt), np.ones(7, dt), np.ones(4, dt), np.ones(3, dt),
        np.ones((3, 1), dt), np.ones((4, 3), dt), np.ones((3, 5), dt), np.ones((5, 4), dt),
        shaped.T, shaped[::2], shaped[:, ::-1], read_only, misaligned, record,
        np.full((3, 4), np.nan, dt), np.full((3, 4), np.inf, dt), np.full(3, 7), np.full(3, -1),
        np.array([0.5, 1.0, 2.0]), np.array([np.nan, 0.0, 1.0]), np.ones((3, 2), np.int64),
        np.broadcast_to(np.ones(4, dt), (3, 4)),
    ]


def main(seed, n_calls, threads=2):
    rng = np.random.default_rng(seed)
    kernels.set_num_threads(threads)
    _threads.set_min_parallel_work(1)
    backends = [kernels.get_backend(b) for b in kernels.available_backends()
                if b in ("numpy", "cython")]
    names = list(ref.__all__)
    unexpected = 0
    outcomes = {"ok": 0, "TypeError": 0, "ValueError": 0}
    for _ in range(n_calls):
        name = names[rng.integers(len(names))]
        dt = (np.float32, np.float64)[rng.integers(2)]
        backend = backends[rng.integers(len(backends))]
        args, kwargs = valid_call(name, dt, rng)
        params = list(inspect.signature(getattr(ref, name)).parameters)
        for _ in range(rng.integers(1, 3)):
            pool = bad_values(rng, dt)
            bad = pool[rng.integers(len(pool))]
            if rng.uniform() < 0.15:
                # alias: one argument is another one (or a view of it)
                arrays = [a for a in args + list(kwargs.values()) if isinstance(a, np.ndarray)]
                if arrays:
                    src = arrays[rng.integers(len(arrays))]
                    bad = src if rng.uniform() < 0.5 or src.ndim < 2 else src[1:, 1:]
            target = params[rng.integers(len(params))]
            pos = params.index(target)
            if pos < len(args):
                args[pos] = bad
            else:
                kwargs[target] = bad
        try:
            backend_fn = getattr(backend, name)
            with np.errstate(all="ignore"):
                backend_fn(*args, **kwargs)
            outcomes["ok"] += 1
        except (TypeError, ValueError) as exc:
            outcomes[type(exc).__name__ if type(exc).__name__ in outcomes else
                     ("TypeError" if isinstance(exc, TypeError) else "ValueError")] += 1
        except Exception as exc:  # noqa: BLE001 -- what the fuzz is looking for
            unexpected += 1
            desc = {k: (type(v).__name__, getattr(v, "dtype", None), getattr(v, "shape", None))
                    for k, v in zip(params, args)}
            desc.update({k: (type(v).__name__, getattr(v, "dtype", None),
                             getattr(v, "shape", None)) for k, v in kwargs.items()})
            print(f"UNEXPECTED {type(exc).__name__} in {backend.name}.{name}: {exc}; "
                  f"args {desc}")
            if unexpected <= 3:
                traceback.print_exc(limit=3)
    print(f"calls {n_calls} outcomes {outcomes} unexpected {unexpected}")
    return 3 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main(*(int(a) for a in sys.argv[1:4])))
