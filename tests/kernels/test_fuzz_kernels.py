"""Fuzzing every kernel of every CPU backend with Hypothesis (docs/hardening.md, "Fuzzing").

For every kernel of ``kernels.reference.__all__`` a strategy draws a valid call (shapes,
dtype, hyper-parameters, ``out`` given or not, in place or not), then mutates it: an
argument replaced by an adversarial value (any dtype, rank, shape, layout; a bad
scalar), reshaped, re-typed, aliased to another argument, dropped, made lazily huge,
an ndarray subclass, or the call's arity broken; and re-lays out arrays (Fortran,
steps, negative strides, read-only, broadcast, misaligned).  See tests/fuzz_strategies.py.

The call runs on independent, layout-identical copies of its arguments on the
reference (``numpy``) and on every other loadable backend (``cython`` twice: 1 thread,
and 2 threads with the parallel threshold at one element).  The invariant:

* either every backend raises -- the same exception class, ``TypeError`` or
  ``ValueError``, with the same message, which starts with ``<parameter>:`` for a
  parameter of the kernel's signature (Python's own argument-binding TypeErrors are
  the exception to the message rule) -- and no argument was modified;
* or every backend returns: the result has the reference's structure, shape and dtype,
  a given ``out`` (``dx``/``dw``/``db``, the optimizer's ``w``) is the returned object,
  a result not given is a new array sharing no memory with the inputs, nothing but the
  documented in-place arguments was modified, the Cython result is bit-identical for 1
  and 2 threads, and the values equal the reference's:

  - ``normal`` values (finite, in the argument's domain) with typical hyper-parameters:
    within the tolerance table of tests/conftest.py (``kernel_helpers.tolerance``),
    with the absolute tolerance of products and sums scaled by the sum of the
    magnitudes of their terms (the classical k * eps * sum|terms| bound); NaN and inf
    positions must match exactly;
  - ``nonfinite`` values (NaN and +-inf among normal ones), typical hyper-parameters:
    the same, NaN and inf positions included;
  - ``wild``/``extreme`` values or edge hyper-parameters (exact bounds, 1e300,
    subnormals): structure only, since overflow and cancellation then depend on the
    order of operations, which the spec leaves free.

Lazily huge arguments (terabytes described by zero strides) must be rejected with a
ValueError within a second, allocating nothing.  The fuzz runs as on a machine of
``FUZZ_MEMORY`` bytes (``checks.MAX_BYTES`` lowered for every backend): a window
hyper-parameter drawn at random (pool_size=5000 with "same" padding) then asks for a
padded input too large and is rejected, where on the real machine the reference would
materialise gigabytes.  A subprocess runs the Cython backend
under the fuzzer: any signal death fails.
"""
import contextlib
import inspect
import os
from fractions import Fraction
import re
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import fuzz_strategies as fz
import kernel_helpers
import kernels
from kernels import checks
from kernels.cpu import _threads
from kernels import reference as ref

KERNELS = list(ref.__all__)
BACKENDS = [name for name in ("numpy", "cython") if name in kernels.available_backends()]
SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
MESSAGE = re.compile(r"^([A-Za-z_]\w*):")

# Cases run by this module's fuzz tests (reported at the end of the session).
COUNTS = fz.COUNTS
# The memory the validation believes this machine has while fuzzing (see the docstring);
# every array the strategies draw is far smaller (<= 4096 elements).
FUZZ_MEMORY = 1 << 24


@contextlib.contextmanager
def small_machine(limit=FUZZ_MEMORY):
    """``kernels.checks.MAX_BYTES`` (and the Cython fast path's copy) at ``limit``."""
    old = checks.MAX_BYTES
    fast = None
    if "cython" in BACKENDS:
        from kernels.cpu import _fastargs as fast
    checks.MAX_BYTES = limit
    if fast is not None:
        fast.set_max_bytes(limit)
    try:
        yield limit
    finally:
        checks.MAX_BYTES = old
        if fast is not None:
            fast.set_max_bytes(old)


class Outcome:
    def __init__(self, backend, args, kwargs):
        self.backend = backend
        self.args, self.kwargs = args, kwargs
        self.arrays = fz.snapshot(list(args) + list(kwargs.values()))
        self.result = self.exc = None
        self.seconds = 0.0

    @property
    def label(self):
        return self.backend


def _run(backend_name, call, threads=None):
    """The call on fresh copies of its arguments; other exceptions than TypeError and
    ValueError propagate (the test fails on them)."""
    args, kwargs = fz.clone_call(*call.args_kwargs())
    outcome = Outcome(backend_name + (f"[{threads} threads]" if threads else ""), args, kwargs)
    fn = getattr(kernels.get_backend(backend_name), call.name)
    old = None
    if threads:
        old = (kernels.get_num_threads(), _threads.set_min_parallel_work(1))
        kernels.set_num_threads(threads)
    start = time.perf_counter()
    try:
        with np.errstate(all="ignore"):
            outcome.result = fn(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        outcome.exc = exc
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(f"{outcome.label}.{call.name} raised {type(exc).__name__}: "
                             f"{exc}\n  call: {call.describe()}") from exc
    finally:
        outcome.seconds = time.perf_counter() - start
        if old is not None:
            kernels.set_num_threads(old[0])
            _threads.set_min_parallel_work(old[1])
    return outcome


def _binds(call):
    args, kwargs = call.args_kwargs()
    try:
        inspect.signature(getattr(ref, call.name)).bind(*args, **kwargs)
    except TypeError:
        return False
    return True


# ---------------------------------------------------------------- rejections
def _check_rejection(call, outcomes, binds):
    first = outcomes[0]
    params = [p.name for p in call.params]
    for o in outcomes:
        assert o.exc is not None, (
            f"{o.label} accepted a call {first.label} rejected with "
            f"{type(first.exc).__name__}: {first.exc}")
        assert type(o.exc) is type(first.exc), (
            f"{o.label} raised {type(o.exc).__name__}: {o.exc}; {first.label} raised "
            f"{type(first.exc).__name__}: {first.exc}")
        if not binds:
            assert isinstance(o.exc, TypeError), f"{o.label}: {o.exc!r}"
            continue
        message = str(o.exc)
        match = MESSAGE.match(message)
        assert match and match.group(1) in params, (
            f"{o.label}: the message does not start with a parameter of {call.name}"
            f"{tuple(params)}: {type(o.exc).__name__}: {message}")
        assert "expected" in message or "must" in message, (
            f"{o.label}: the message says neither what was expected nor what must hold: "
            f"{message}")
        assert message == str(first.exc), (
            f"messages differ: {o.label}: {message!r}; {first.label}: {first.exc}")
        for a, before in o.arrays:
            assert fz.unchanged(a, before), (
                f"{o.label} modified an argument of a rejected call ({message})")


# ---------------------------------------------------------------- results
def _written_arrays(call, outcome):
    """The arrays this call may write, as passed to the backend."""
    args, kwargs = outcome.args, outcome.kwargs
    names = [p.name for p in call.params]
    bound = dict(zip(names, args))
    bound.update(kwargs)
    return [bound[p] for p in fz.written_params(call.name)
            if isinstance(bound.get(p), np.ndarray)], bound


def _returned_arrays(call, result):
    """(name, array) pairs of what the kernel returned."""
    fam = fz._family(call.name)
    if call.name == "dense_backward" or fam == "conv_backward":
        return [(n, r) for n, r in zip(("dx", "dw", "db"), result) if r is not None]
    if call.name in ("layer_norm_backward", "batch_norm_backward"):
        return list(zip(("dx", "dgamma", "dbeta"), result))
    if call.name in ("max_pool2d_forward", "global_max_pool2d_forward"):
        return [("out", result[0]), ("argmax", result[1])]
    if fam == "pool" and call.name.endswith("_backward"):
        return [("dx", result)]
    if call.name == "embedding_backward":
        return [("dtable", result)]
    if call.name.endswith("softmax_crossentropy"):
        return [("loss", result[0]), ("out", result[1])]
    if call.name.endswith("_update"):
        return [("w", result)]
    if isinstance(result, np.ndarray):
        return [("out", result)]
    return [("loss", result)]


def _check_structure(call, o, expected):
    written, bound = _written_arrays(call, o)
    r = o.result
    assert type(r) is type(expected) or (isinstance(r, np.ndarray)
                                         and isinstance(expected, np.ndarray)), (
        f"{o.label} returned {type(r).__name__}, the reference {type(expected).__name__}")
    if isinstance(expected, tuple):
        assert len(r) == len(expected)
        for got, exp in zip(r, expected):
            assert (got is None) == (exp is None), f"{o.label}: None where not expected"
    inputs = [v for k, v in bound.items() if isinstance(v, np.ndarray)]
    for name, got in _returned_arrays(call, r):
        exp = dict(_returned_arrays(call, expected))[name]
        got_arr, exp_arr = np.asarray(got), np.asarray(exp)
        assert got_arr.shape == exp_arr.shape and got_arr.dtype == exp_arr.dtype, (
            f"{o.label}: {name} has shape {got_arr.shape} dtype {got_arr.dtype}, expected "
            f"{exp_arr.shape} {exp_arr.dtype}")
        if name == "loss":
            assert isinstance(got, np.generic) and np.ndim(got) == 0, (
                f"{o.label}: the loss is {got!r}, expected a NumPy scalar")
            continue
        given = bound.get(name)
        if isinstance(given, np.ndarray):
            assert got is given, f"{o.label}: {name} given but another array returned"
        else:
            assert isinstance(got, np.ndarray) and got.flags.writeable
            for x in inputs:
                assert not np.may_share_memory(got, x), (
                    f"{o.label}: the new result {name} shares memory with an input")
    for a, before in o.arrays:
        if any(np.may_share_memory(a, w) for w in written):
            continue
        assert fz.unchanged(a, before), (
            f"{o.label} modified an input it must only read: {fz.describe_value(a)}")


def _mode(call):
    if call.hyper != "typical" or any(n.split("->")[0] in ("replace", "retype", "reshape", "huge")
                                      for n in call.notes):
        return "structure"
    return {"normal": "strict", "nonfinite": "nonfinite"}.get(call.regime, "structure")


def _float_inputs(call):
    return [np.asarray(v, dtype=np.float64) for k, v in call.values.items()
            if isinstance(v, np.ndarray) and v.dtype in fz.FLOATS
            and k not in fz.written_params(call.name) | {"out"}]


def _finite_abs(x):
    x = np.abs(np.asarray(x, dtype=np.float64))
    return np.where(np.isfinite(x), x, 0.0)


def _magnitude(call):
    m = 1.0
    for x in _float_inputs(call):
        if x.size:
            m = max(m, float(_finite_abs(x).max()))
    for k in ("alpha", "beta", "negative_slope", "delta"):
        v = call.values.get(k)
        if isinstance(v, float):
            m = max(m, abs(v))
    return m


def _tolerances(call, name):
    """(rtol, atol) -- atol a scalar or an array broadcasting against the result --
    for comparing the returned/written array ``name`` of ``call``."""
    dt, eps = call.dt, float(np.finfo(call.dt).eps)
    table = kernel_helpers.TOLERANCES[dt]
    v = {k: (np.asarray(x, dtype=np.float64) if isinstance(x, np.ndarray) else x)
         for k, x in call.values.items()}
    mag = _magnitude(call)
    fam = fz._family(call.name)

    def gemm_bound(k, terms):
        return 4.0 * (k + 2) * eps * terms + table["reduction"]["atol"]

    if fam == "gemm":
        a = v["a"].T if v.get("trans_a") else v["a"]
        b = v["b"].T if v.get("trans_b") else v["b"]
        terms = abs(v.get("alpha", 1.0)) * (_finite_abs(a) @ _finite_abs(b))
        if v.get("beta", 0.0) != 0.0:
            terms = terms + abs(v["beta"]) * _finite_abs(v["out"])
        return table["gemm"]["rtol"], gemm_bound(a.shape[1], terms)
    if fam == "column_sums":
        return table["reduction"]["rtol"], gemm_bound(v["x"].shape[0],
                                                      _finite_abs(v["x"]).sum(axis=0))
    if fam == "dense_forward":
        z = _finite_abs(v["x"]) @ _finite_abs(v["w"])
        if isinstance(v.get("b"), np.ndarray):
            z = z + _finite_abs(v["b"])
        bound = gemm_bound(v["x"].shape[1], z)
        if name == "out" and v.get("activation", "linear") == "softmax":
            bound = 2 * bound.max(axis=-1, keepdims=True)
        return 2 * table["elementwise"]["rtol"], 1.2 * bound
    if fam == "dense_backward":
        act = v.get("activation", "linear")
        saved = v["pre_activation"] if act in ref.ACTIVATIONS_NEEDING_INPUT else v["y"]
        dy = _finite_abs(v["dy"])
        s = _finite_abs(saved)
        if act == "softmax":
            dz = s * (dy + (dy * s).sum(axis=-1, keepdims=True)) * (dy.shape[1] + 2)
        else:
            dz = dy * (1.0 + s) ** 2 * 8
        if name == "dw":
            bound = gemm_bound(dy.shape[0], _finite_abs(v["x"]).T @ dz)
        elif name == "db":
            bound = gemm_bound(dy.shape[0], dz.sum(axis=0))
        else:
            bound = gemm_bound(dy.shape[1], dz @ _finite_abs(v["w"]).T)
        return 4 * table["reduction"]["rtol"], bound
    if fam == "optimizer":
        return 2 * table["optimizer"]["rtol"], table["optimizer"]["atol"] * mag ** 2
    if fam == "embedding_forward":
        return 0.0, 0.0                    # copies: the same bits on every backend
    if fam == "embedding_backward":        # sums in position order: the same order
        return 0.0, 0.0
    if fam in ("conv_forward", "conv_backward", "pool", "batch_norm"):
        return _spatial_tolerances(call, name, v, mag, table, gemm_bound)
    if fam in ("layer_norm_forward", "layer_norm_backward"):
        # a row's statistics, then elementwise: scaled by gamma and the row's 1/std,
        # which a near-constant row makes as large as 1/sqrt(epsilon)
        x = v["x"]
        d = x.shape[-1]
        eps_ = float(v.get("epsilon", 1e-3))
        scale = mag ** 3 * (d + 2) / np.sqrt(eps_)
        if name in ("dgamma", "dbeta"):
            scale = scale * max(1, x.size // d)
        return 4 * table["reduction"]["rtol"], table["reduction"]["atol"] * scale
    if fam in ("act_forward", "act_backward", "bias_add"):
        base = call.name[9:] if call.name.startswith("backprop_") else call.name
        if base == "softmax":
            n = np.shape(v.get("x", v.get("dy")))[-1]
            return (table["reduction"]["rtol"],
                    gemm_bound(n, 1.0) * mag ** 3)
        return 2 * table["elementwise"]["rtol"], table["elementwise"]["atol"] * mag ** 3
    # losses: scalar values (sums of non-negative terms for in-domain inputs) and
    # gradients (elementwise, or row-wise for the cross-entropies)
    pred = v.get("y_pred", v.get("logits"))
    size = pred.size
    if name == "loss":
        return 2 * table["reduction"]["rtol"], table["reduction"]["atol"] * mag ** 2
    width = pred.shape[-1] if pred.ndim == 2 else 1
    return (2 * table["reduction"]["rtol"],
            table["reduction"]["atol"] * mag ** 2 * (width + 2) * 50 / size)


def _window_kwargs(call, fn):
    """The window hyper-parameters the call passed (strides, padding...), for calling
    ``fn`` (a reference kernel) on bounds."""
    keys = set(inspect.signature(fn).parameters) & {
        "strides", "padding", "dilation_rate", "groups", "pool_size"}
    return {k: call.values[k] for k in keys if k in call.values}


def _spatial_tolerances(call, name, v, mag, table, gemm_bound):
    """The convolution family's tolerances: each element's bound from the reference run
    on the magnitudes of its terms (a sum of products, a window's mean...)."""
    fam = fz._family(call.name)
    fn = getattr(ref, call.name)
    kw = _window_kwargs(call, fn)
    if fam == "conv_forward":
        b = v.get("b")
        w = v["w"]
        terms = fn(_finite_abs(v["x"]), _finite_abs(w),
                   _finite_abs(b) if isinstance(b, np.ndarray) else None, **kw)
        k = int(np.prod(w.shape[:-1])) + 1
        bound = gemm_bound(k, terms)
        if name == "pre_activation":
            return table["gemm"]["rtol"], bound
        if v.get("activation", "linear") == "softmax":
            bound = 2 * bound.max(axis=-1, keepdims=True)
        return 2 * table["elementwise"]["rtol"], 1.2 * bound
    if fam == "conv_backward":
        act = v.get("activation", "linear")
        saved = v["pre_activation"] if act in ref.ACTIVATIONS_NEEDING_INPUT else v["y"]
        dy, s = _finite_abs(v["dy"]), _finite_abs(saved)
        if act == "softmax":
            dz = s * (dy + (dy * s).sum(axis=-1, keepdims=True)) * (dy.shape[-1] + 2)
        else:
            dz = dy * (1.0 + s) ** 2 * 8
        bounds = dict(zip(("dx", "dw", "db"), fn(dz, _finite_abs(v["x"]),
                                                _finite_abs(v["w"]), dz, **kw)))
        k = max(dy.size // dy.shape[-1], int(np.prod(v["w"].shape)))
        return 4 * table["reduction"]["rtol"], gemm_bound(k, bounds[name])
    if fam == "pool":
        if "max" in call.name:
            if call.name.endswith("_forward"):
                return 0.0, 0.0            # the same cell: the same bits
            dy = _finite_abs(v["dy"])
            argmax = call.values["argmax"]
            bound = fn(dy, argmax, np.empty(v["dx"].shape), **kw)
            return table["reduction"]["rtol"], gemm_bound(dy.size, bound)
        if call.name.endswith("_forward"):
            x = v["x"]
            cells = x.shape[1] * x.shape[2]
            return table["reduction"]["rtol"], gemm_bound(cells, fn(_finite_abs(x), **kw))
        dy = _finite_abs(v["dy"])
        return table["reduction"]["rtol"], gemm_bound(
            v["dx"].shape[1] * v["dx"].shape[2], fn(dy, np.empty(v["dx"].shape), **kw))
    # batch normalisation: per-channel statistics over m cells, then elementwise, scaled
    # by gamma and the channel's 1/std (as large as 1/sqrt(epsilon))
    x = v["x"]
    m = x.size // x.shape[-1]
    eps_ = float(v.get("epsilon", 1e-3))
    scale = mag ** 3 * ((m + 2) if call.name != "batch_norm_inference" else 3) / np.sqrt(eps_)
    if name in ("dgamma", "dbeta", "moving_mean", "moving_variance"):
        scale = scale * m
    return 4 * table["reduction"]["rtol"], table["reduction"]["atol"] * scale


def _assert_values(call, name, got, exp, mode):
    with np.errstate(all="ignore"):
        _assert_values_(call, name, got, exp, mode)


def _assert_values_(call, name, got, exp, mode):
    got = np.asarray(got, dtype=np.float64)
    exp = np.asarray(exp, dtype=np.float64)
    gnan, enan = np.isnan(got), np.isnan(exp)
    assert np.array_equal(gnan, enan), (
        f"{name}: NaN at {np.argwhere(gnan != enan)[:5].tolist()}: got "
        f"{got[gnan != enan][:5]}, reference {exp[gnan != enan][:5]}")
    ginf, einf = np.isinf(got), np.isinf(exp)
    both = ginf | einf
    assert np.array_equal(got[both], exp[both]), (
        f"{name}: infinities differ at {np.argwhere(both & (got != exp))[:5].tolist()}: "
        f"got {got[both][:5]}, reference {exp[both][:5]}")
    rtol, atol = _tolerances(call, name)
    atol = np.broadcast_to(np.asarray(atol, dtype=np.float64), exp.shape)
    fin = np.isfinite(exp) & np.isfinite(got)
    err = np.abs(got - exp)
    bad = fin & (err > atol + rtol * np.abs(exp))
    assert not bad.any(), (
        f"{name}: differs from the reference at {np.argwhere(bad)[:5].tolist()}: got "
        f"{got[bad][:5]}, reference {exp[bad][:5]} (atol {atol[bad][:5]}, rtol {rtol})")


# ------------------------------------------------------- known divergences
# Calls on which the Cython backend and the reference disagree (found by this fuzzer;
# the fix belongs in reference.py's or the .pyx's arithmetic, outside the validation).
# Each has a minimal reproducer and a test, test_known_kernel_divergence[<id>], that
# fails while the divergence is there; meanwhile check_call accepts a NaN/inf mismatch
# on calls of that shape, and nothing else.  A reproducer that stops reproducing turns
# its acceptance off.

def _has(call, param, test):
    v = call.values.get(param)
    return isinstance(v, np.ndarray) and v.dtype in fz.FLOATS and bool(test(v).any())


def _logits(call):
    return bool(call.values.get("from_logits", False))


def _nan_patterns_differ(make):
    with np.errstate(all="ignore"):
        got = [np.concatenate([np.ravel(np.asarray(r, dtype=np.float64))
                               for r in (res if isinstance(res, tuple) else (res,))
                               if r is not None])
               for res in (make(kernels.get_backend(b)) for b in ("numpy", "cython"))]
    a, b = got
    same = np.array_equal(a, b, equal_nan=True) or np.allclose(a, b, rtol=1e-5, equal_nan=True)
    return None if same else f"reference {a.tolist()}, cython {b.tolist()}"


class Divergence:
    def __init__(self, div_id, applies, reproduce, where):
        self.id, self.applies, self.reproduce, self.where = div_id, applies, reproduce, where

    def __repr__(self):
        return self.id


# Fixed (with a regression test each in tests/kernels/test_nonfinite.py): gelu's derivative at
# x = +-inf, the sparse cross-entropy at an infinite probability or a -inf logit, the
# categorical cross-entropy from logits at an infinite target, the weight decay
# with a factor weight_decay * learning_rate that is 0 in the dtype, float32 silu' and
# mish' at -inf (1.18e-38, not 0), the depthwise convolution's padded cells (skipped,
# not 0 * w: a non-finite weight or gradient over padding gave no NaN), and the
# reference's embedding_forward into an out that is not C-contiguous (left unwritten:
# test_embedding.py).
KNOWN_DIVERGENCES = []
_ACTIVE_DIVERGENCES = None


def active_divergences():
    global _ACTIVE_DIVERGENCES
    if _ACTIVE_DIVERGENCES is None:
        _ACTIVE_DIVERGENCES = ([d for d in KNOWN_DIVERGENCES if d.reproduce()]
                               if "cython" in BACKENDS else [])
    return _ACTIVE_DIVERGENCES


def known_divergence(call):
    return next((d.id for d in active_divergences() if d.applies(call)), None)


@pytest.mark.skipif("cython" not in BACKENDS, reason="the cython backend does not load")
@pytest.mark.xfail(strict=True, reason="a known divergence, still present: see "
                   "KNOWN_DIVERGENCES. When a fix makes this pass, strict xfail fails the "
                   "run: remove the entry")
@pytest.mark.parametrize("divergence", KNOWN_DIVERGENCES, ids=[d.id for d in KNOWN_DIVERGENCES])
def test_known_kernel_divergence(divergence):
    """Fails while the Cython backend and the reference disagree on the minimal call."""
    symptom = divergence.reproduce()
    assert symptom is None, f"{divergence.where}: {symptom}"


def _check_values(call, o, reference, mode):
    written_ref, bound_ref = _written_arrays(call, reference)
    written, bound = _written_arrays(call, o)
    pairs = list(zip(_returned_arrays(call, o.result),
                     _returned_arrays(call, reference.result)))
    # the in-place state arrays of the optimizers, and pre_activation
    for p in sorted(fz.written_params(call.name) - {"w", "out", "dx", "dw", "db"}):
        if isinstance(bound.get(p), np.ndarray) and isinstance(bound_ref.get(p), np.ndarray):
            pairs.append(((p, bound[p]), (p, bound_ref[p])))
    for (name, got), (_, exp) in pairs:
        try:
            _assert_values(call, name, got, exp, mode)
        except AssertionError as exc:
            known = known_divergence(call)
            if known is not None:
                COUNTS["kernel cases: known divergence met"] += 1
                note(f"known divergence {known}: {exc}")
                return
            raise AssertionError(f"{o.label}.{call.name} vs the reference ({mode}): {exc}"
                                 f"\n  call: {call.describe()}") from None


def _identical(a, b):
    if isinstance(a, tuple):
        return all(_identical(x, y) for x, y in zip(a, b))
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype:
        return False
    if a.dtype.kind not in "fc":      # object, int, bool... arrays: NaN has no meaning
        return a.shape == b.shape and all(x is y or x == y or (x != x and y != y)
                                           for x, y in zip(a.ravel(), b.ravel()))
    return np.array_equal(a, b, equal_nan=True)


# ---------------------------------------------------------------- the property
def check_call(call):
    note(call.describe())
    binds = _binds(call)
    outcomes = [_run("numpy", call)]
    for name in BACKENDS[1:]:
        if name == "cython":
            outcomes += [_run(name, call, threads=1), _run(name, call, threads=2)]
        else:
            outcomes.append(_run(name, call))
    reference = outcomes[0]
    # A lazily huge argument is either rejected or unused by the kernel (pre_activation
    # without gelu, dx with need_dx=False...): materializing it would have raised
    # MemoryError above, which fails the test.  (No timing assertion: time is bench/'s.)
    if reference.exc is not None or any(o.exc is not None for o in outcomes):
        if reference.exc is None:
            bad = next(o for o in outcomes if o.exc is not None)
            raise AssertionError(f"{bad.label} rejected a call the reference accepts: "
                                 f"{type(bad.exc).__name__}: {bad.exc}\n  call: "
                                 f"{call.describe()}")
        _check_rejection(call, outcomes, binds)
        return "rejected"
    assert binds, "a call that does not bind to the signature was accepted"
    mode = _mode(call)
    for o in outcomes:
        _check_structure(call, o, reference.result)
    for o in outcomes[1:]:
        if mode != "structure":
            _check_values(call, o, reference, mode)
    if "cython" in BACKENDS:
        one, two = outcomes[-2], outcomes[-1]
        written1 = [np.array(a, copy=True) for a in _written_arrays(call, one)[0]
                    if not fz.is_lazy_huge(a)]
        written2 = [np.array(a, copy=True) for a in _written_arrays(call, two)[0]
                    if not fz.is_lazy_huge(a)]
        assert _identical(one.result, two.result) and all(
            _identical(a, b) for a, b in zip(written1, written2)), (
            f"cython gives different results with 1 and 2 threads\n  call: {call.describe()}")
    return mode


@pytest.mark.parametrize("name", KERNELS)
@settings(deadline=None, suppress_health_check=SUPPRESS)
@given(data=st.data())
def test_fuzz_kernel(name, data):
    """Valid and invalid calls of one kernel on every backend (module docstring)."""
    call = data.draw(fz.kernel_call(name), label="call")
    with small_machine():
        outcome = check_call(call)
    COUNTS["kernel cases"] += 1
    COUNTS[f"kernel cases {outcome}"] += 1


def test_fuzz_covers_every_kernel_and_backend():
    assert set(KERNELS) == set(ref.__all__)
    assert "numpy" in BACKENDS
    for name in BACKENDS:
        backend = kernels.get_backend(name)
        assert all(callable(getattr(backend, k)) for k in KERNELS)


# ------------------------------------------------ the validation's own edge cases
# Found by the fuzzer; fixed in kernels/_checks.py.  Each must be a TypeError or
# ValueError naming the argument on every backend.
EDGE_CASES = [
    ("huge-int-alpha", lambda B, a: B.gemm(a(2, 2), a(2, 2), alpha=10**400), ValueError, "alpha"),
    ("huge-fraction-delta", lambda B, a: B.huber(a(3), a(3), delta=Fraction(10**400, 3)),
     ValueError, "delta"),
    ("huge-int-step", lambda B, a: B.adam_update(a(3), a(3), a(3), a(3), step=10**400),
     ValueError, "step"),
    ("int64-overflow-step", lambda B, a: B.adam_update(a(3), a(3), a(3), a(3), step=2**63),
     ValueError, "step"),
    ("unprintable-negative-step", lambda B, a: B.adam_update(a(3), a(3), a(3), a(3),
                                                            step=-10**5000), ValueError, "step"),
    ("unprintable-lr", lambda B, a: B.sgd_update(a(3), a(3), learning_rate=fz.Weird()),
     TypeError, "learning_rate"),
    ("unprintable-activation", lambda B, a: B.dense_forward(a(2, 2), a(2, 2),
                                                           activation=fz.Weird()),
     ValueError, "activation"),
    ("huge-lazy-x", lambda B, a: B.relu(np.broadcast_to(a(1, 3), (2**40, 3))), ValueError, "x"),
    ("huge-lazy-result", lambda B, a: B.gemm(np.broadcast_to(a(1, 1), (2**28, 1)),
                                             np.broadcast_to(a(1, 1), (1, 2**28))),
     ValueError, "out"),
    ("huge-lazy-sum", lambda B, a: B.column_sums(np.broadcast_to(a(1, 1), (2**44, 1))),
     ValueError, "x"),
    ("ufunc-override-subclass", lambda B, a: B.relu(a(2, 2).view(fz.UfuncOverride)),
     TypeError, "x"),
    ("unsigned-labels-beyond-int64", lambda B, a: B.sparse_categorical_crossentropy(
        np.array([2**64 - 1, 0], np.uint64), a(2, 3)), ValueError, "y_true"),
    # window hyper-parameters: Cython took a stride or dilation beyond 64 bits to an
    # OverflowError, the reference a huge "same" padding to NumPy's own errors (or a
    # MemoryError), and Cython's pooling looped over every cell of a 2**40-wide window
    ("strides-beyond-int64", lambda B, a: B.conv2d_forward(a(1, 3, 3, 2), a(1, 1, 2, 2),
                                                          strides=2**70),
     ValueError, "strides"),
    ("dilation-beyond-int64-same", lambda B, a: B.conv2d_forward(
        a(1, 3, 3, 2), a(2, 2, 2, 2), padding="same", dilation_rate=(1, 2**63)),
     ValueError, "dilation_rate"),
    ("pool-size-beyond-memory-same", lambda B, a: B.max_pool2d_forward(
        a(1, 3, 3, 2), pool_size=2**62, padding="same"), ValueError, "pool_size"),
    ("huge-padding-dilation-same", lambda B, a: B.conv2d_forward(
        a(1, 3, 3, 2), a(2, 2, 2, 2), padding="same", dilation_rate=checks.MAX_BYTES // 4),
     ValueError, "padding"),
    ("huge-padding-causal", lambda B, a: B.conv1d_backward(
        a(1, 3, 2), a(1, 3, 2), a(2, 2, 2), a(1, 3, 2), padding="causal",
        dilation_rate=checks.MAX_BYTES // 4), ValueError, "padding"),
    ("huge-padding-pool-same", lambda B, a: B.avg_pool2d_forward(
        a(1, 3, 3, 2), pool_size=checks.MAX_BYTES // 4, strides=1, padding="same"),
     ValueError, "padding"),
]


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("call, exc, name", [c[1:] for c in EDGE_CASES],
                         ids=[c[0] for c in EDGE_CASES])
def test_validation_edge_cases(backend_name, call, exc, name):
    def a(*shape):
        return np.full(shape, 0.5)

    backend = kernels.get_backend(backend_name)
    with pytest.raises(exc, match=rf"^{re.escape(name)}:") as info:
        call(backend, a)   # lazily huge inputs must be refused before any work is done
    assert type(info.value) is exc, repr(info.value)


# The harness itself: cast() turns any array a strategy drew (an earlier cast's object
# or complex array with NaN and infinities too) into any dtype, never stopping the run
# in the strategy (the thorough profile once died of OverflowError there, converting an
# object array's inf to an integer dtype).
@pytest.mark.parametrize("target", [np.int8, np.int32, np.int64, np.uint8, np.uint64, bool,
                                    np.float16, np.float32, np.float64, np.complex64, object])
@pytest.mark.parametrize("source", ["float64", "float32", "complex128", "object",
                                    "object-complex"])
def test_cast_takes_any_earlier_cast_to_any_dtype(source, target):
    x = np.array([1.5, -2.0, np.inf, -np.inf, np.nan, 1e300, -1e300, 0.0])
    if source.startswith("object"):
        x = x.astype(object) + (0.5j if source == "object-complex" else 0)
    else:
        with np.errstate(over="ignore"):        # 1e300 in float32: inf
            x = x.astype(source)
    out = fz.cast(x, target)
    assert out.dtype == np.dtype(target) and out.shape == x.shape
    if np.dtype(target).kind == "i":
        assert list(out[:2]) == [1, -2]      # the real parts, truncated


def test_plain_ndarray_subclass_is_computed_like_ndarray():
    """A subclass that changes nothing is accepted and gives the ndarray's results."""
    x = np.linspace(-2, 2, 12).reshape(3, 4)
    for name in BACKENDS:
        backend = kernels.get_backend(name)
        got = backend.softmax(x.view(fz.PlainSubclass))
        np.testing.assert_allclose(np.asarray(got), ref.softmax(x), rtol=1e-12)


# ------------------------------------------------------------ crash smoke
def crash_smoke(n_examples, seed):
    """Runs in a child process: the Cython backend (2 threads, parallel threshold at 1
    element) under the fuzzer.  Exit status 0 when every call returned or raised
    TypeError/ValueError; 3 when another exception was seen; a crash kills the child."""
    from hypothesis import seed as hseed

    backend = kernels.get_backend("cython")
    kernels.set_num_threads(2)
    _threads.set_min_parallel_work(1)
    stats = {"calls": 0, "ok": 0, "rejected": 0, "unexpected": 0}
    machine = small_machine()
    machine.__enter__()             # for the child's lifetime (see FUZZ_MEMORY)

    @hseed(seed)
    @settings(max_examples=n_examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), derandomize=False)
    @given(call=st.sampled_from(KERNELS).flatmap(fz.kernel_call))
    def body(call):
        args, kwargs = fz.clone_call(*call.args_kwargs())
        stats["calls"] += 1
        try:
            with np.errstate(all="ignore"):
                getattr(backend, call.name)(*args, **kwargs)
            stats["ok"] += 1
        except (TypeError, ValueError):
            stats["rejected"] += 1
        except Exception as exc:  # noqa: BLE001
            stats["unexpected"] += 1
            print(f"UNEXPECTED {type(exc).__name__}: {exc}\n  {call.describe()}", flush=True)

    body()
    print(f"crash smoke: {stats}", flush=True)
    return 3 if stats["unexpected"] else 0


SMOKE = """
import sys
sys.path[:0] = [{here!r}, {tests!r}]
import test_fuzz_kernels
sys.exit(test_fuzz_kernels.crash_smoke({n}, {seed}))
"""


@pytest.mark.skipif("cython" not in BACKENDS, reason="the cython backend does not load")
def test_cython_survives_the_fuzzer_in_a_subprocess():
    n = int(os.environ.get("DLKERNELS_FUZZ_SMOKE_EXAMPLES",
                           fz.smoke_examples()))
    here = os.path.dirname(os.path.abspath(__file__))
    code = SMOKE.format(here=here, tests=os.path.dirname(here), n=n, seed=12345)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600, env=dict(os.environ))
    report = proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.returncode >= 0, f"the child died of signal {-proc.returncode}:\n{report}"
    assert proc.returncode == 0, f"exit status {proc.returncode}:\n{report}"
    assert "crash smoke:" in proc.stdout, report
    COUNTS["kernel cases (crash smoke, cython)"] += n
