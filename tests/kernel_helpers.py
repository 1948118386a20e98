"""Helpers shared by the kernel tests: memory layouts, guarded outputs, and (published
here by ``conftest.py``, which defines them) ``assert_close`` and ``tolerance``.

The tolerance table lives in ``tests/conftest.py`` alone; test modules import the
comparison helpers from this module rather than from ``conftest`` (a module name
that another conftest, bench/'s, can shadow when both directories are collected in
one run).

Every non-contiguous array is carved out of a larger base whose unused elements hold
NaN, so a kernel that reads through the wrong strides reads NaN (and fails the
comparison), and one that writes outside its output is caught by ``guard``.
"""
import contextlib
import warnings

import numpy as np

# Set by tests/conftest.py when it loads (before any test module is imported).
assert_close = None
tolerance = None
TOLERANCES = None

# C: contiguous; F: Fortran order (the .T view of a C array); rows2: every other row;
# cols3: every third column (every third element of a 1-D array); neg: rows reversed
# (negative first stride); negboth: both axes reversed.
LAYOUTS = ("C", "F", "rows2", "cols3", "neg", "negboth")


def _base_and_view(shape, dtype, kind):
    shape = tuple(shape)
    dtype = np.dtype(dtype)
    if kind == "C":
        base = np.full(shape, np.nan, dtype)
        return base, base
    if kind == "F":
        base = np.full(shape[::-1], np.nan, dtype)
        return base, base.T
    if kind == "rows2":
        base = np.full((2 * shape[0],) + shape[1:], np.nan, dtype)
        return base, base[::2]
    if kind == "cols3":
        if len(shape) == 1:
            base = np.full((3 * shape[0],), np.nan, dtype)
            return base, base[::3]
        base = np.full(shape[:-1] + (3 * shape[-1],), np.nan, dtype)
        return base, base[..., ::3]
    if kind == "neg":
        base = np.full(shape, np.nan, dtype)
        return base, base[::-1]
    if kind == "negboth":
        base = np.full(shape, np.nan, dtype)
        return base, base[(slice(None, None, -1),) * len(shape)]
    raise ValueError(kind)


def with_layout(x, kind):
    """An array equal to ``x`` laid out as ``kind`` (see LAYOUTS)."""
    _, view = _base_and_view(x.shape, x.dtype, kind)
    view[...] = x
    return view


class Guarded:
    """An output array of a given layout, NaN-filled, inside a NaN-filled base.

    ``guard_ok()`` is True when nothing outside the view was written.
    """

    def __init__(self, shape, dtype, kind, fill=np.nan):
        self.base, self.view = _base_and_view(shape, dtype, kind)
        self.view[...] = fill
        self._mask = np.ones(self.base.shape, bool)
        _, mask_view = _mask_view(self.base.shape, self._mask, kind)
        mask_view[...] = False
        self._outside = self.base[self._mask].copy()

    def guard_ok(self):
        return np.array_equal(self.base[self._mask], self._outside, equal_nan=True)


def _mask_view(base_shape, mask, kind):
    if kind in ("C", "F"):
        return mask, mask
    if kind == "rows2":
        return mask, mask[::2]
    if kind == "cols3":
        return mask, mask[..., ::3]
    if kind == "neg":
        return mask, mask[::-1]
    if kind == "negboth":
        return mask, mask[(slice(None, None, -1),) * mask.ndim]
    raise ValueError(kind)


def uniform(rng, shape, dtype, low=-1.0, high=1.0):
    return rng.uniform(low, high, size=shape).astype(dtype)


def normal(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(size=shape) * scale).astype(dtype)


@contextlib.contextmanager
def using_impl(dispatcher, name):
    """Within the block, the per-ISA ``dispatcher`` (kernels.cpu.gemm, elementwise or
    losses) runs its variant ``name``; the variant in use before comes back after."""
    previous = dispatcher.current_impl()
    dispatcher.use_impl(name)
    try:
        yield name
    finally:
        dispatcher.use_impl(previous)


# the four transpose combinations of a product, and their test ids
TRANS = [(False, False), (True, False), (False, True), (True, True)]
TRANS_IDS = ["NN", "TN", "NT", "TT"]


def act_fp_context(name):
    """What an activation's reference may raise: nothing (no_fp_warnings), except
    exponential's overflow to inf, which is its value."""
    return np.errstate(over="ignore") if name == "exponential" else no_fp_warnings()


def no_fp_warnings():
    """Context: any NumPy floating-point overflow / invalid / divide warning fails."""
    class _Ctx:
        def __enter__(self):
            self._err = np.errstate(over="raise", invalid="raise", divide="raise")
            self._err.__enter__()
            self._warn = warnings.catch_warnings()
            self._warn.__enter__()
            warnings.simplefilter("error", RuntimeWarning)
            return self

        def __exit__(self, *exc):
            self._warn.__exit__(*exc)
            self._err.__exit__(*exc)
            return False
    return _Ctx()


def check_out(result, out):
    """A kernel returned the ``out`` it was given, written in place."""
    assert result is out
    assert np.shares_memory(result, out)


def optimizer_state_names(name, kw):
    """The state arrays an optimizer update of kernel ``<name>_update`` takes with the
    hyper-parameters ``kw`` (the keyword names of the kernels' signatures)."""
    if name == "sgd":
        return ["m"] if kw.get("momentum", 0.0) else []
    if name in ("adam", "adamw"):
        return ["m", "v"] + (["v_hat"] if kw.get("amsgrad") else [])
    if name == "rmsprop":
        return (["v"] + (["mom"] if kw.get("momentum", 0.0) else [])
                + (["mg"] if kw.get("centered") else []))
    return ["acc"]
