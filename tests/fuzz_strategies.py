"""Hypothesis strategies of the fuzz tests (tests/kernels/test_fuzz_kernels.py,
tests/dl/test_fuzz_dl.py).

What they generate
------------------
* **Arrays** of any dtype among float32/float64/float16/int32/int64/bool/complex64/object
  (and a big-endian float64), ranks 0-4, shapes with zero-size and length-1 axes, in
  every memory layout the kernels must handle (see ``LAYOUTS``): C and Fortran order,
  sliced with steps, negative strides, read-only, broadcast (zero strides) and
  misaligned views.  A view is carved out of a NaN-filled base, so a kernel reading
  through wrong strides reads NaN.
* **Values** in one of four regimes (``REGIMES``): ``normal`` (finite, inside the
  argument's domain: probabilities in (0, 1], second moments >= 0...), ``wild`` (finite
  but outside the domain), ``nonfinite`` (normal values with NaN and +-inf at a few
  positions) and ``extreme`` (normal values with huge, tiny, subnormal or +-max values).
* **Hyper-parameters**: typical values, edge values (exact bounds, huge, tiny) and bad
  ones (NaN, inf, negative, out of range, bool, str, None, complex, huge ints...).
* **Huge dimensions**, built lazily: zero-stride views (``np.broadcast_to``,
  ``as_strided``) whose shapes describe terabytes or exabytes but allocate one element.
* **Kernel calls** (:func:`kernel_call`): a valid call of any kernel of
  ``kernels.reference.__all__``, then 0-3 mutations (an argument replaced by an
  adversarial value, reshaped, re-typed, aliased to another argument, dropped, or the
  call's arity broken) and any argument re-laid out.
* **dl inputs**: bad x/y data, bad hyper-parameters of layers/compile/fit, and
  adversarial model files (see the ``dl`` section at the end).

Everything is small (<= 64 per axis, <= 4096 elements) except the lazy huge arrays.
Values come from a NumPy generator seeded by a drawn integer (fast), with special values
put at drawn positions, so Hypothesis shrinks shapes, layouts and positions.

``clone_call`` copies a call's arrays preserving their layouts, flags, alignment and
which arguments share memory, so every backend runs on identical, independent inputs.
"""
import collections
import ctypes
import math

import numpy as np
from hypothesis import strategies as st
from numpy.lib.stride_tricks import as_strided

try:
    from numpy.lib.array_utils import byte_bounds
except ImportError:  # NumPy < 2
    byte_bounds = np.byte_bounds

from kernels import reference as ref

# Cases the fuzz tests ran, by kind; tests/conftest.py prints them at the end of a session.
COUNTS = collections.Counter()
TOTAL_KEYS = ("kernel cases", "kernel cases (crash smoke, cython)", "dl cases")


def smoke_examples():
    """Calls of the subprocess crash smoke: ten times the profile's max_examples."""
    from hypothesis import settings
    return max(200, 10 * settings().max_examples)


# ------------------------------------------------------------------- vocabulary
FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
OTHER_DTYPES = (np.dtype(np.float16), np.dtype(np.int32), np.dtype(np.int64),
                np.dtype(bool), np.dtype(np.complex64), np.dtype(object), np.dtype(">f8"))
ALL_DTYPES = FLOATS + OTHER_DTYPES

LAYOUTS = ("C", "F", "steps", "neg", "readonly", "broadcast", "misaligned")
REGIMES = ("normal", "wild", "nonfinite", "extreme")

# value domains of array arguments in the "normal" regime
DOMAINS = {
    "any": (-4.0, 4.0),
    "prob": (0.02, 1.0),        # probabilities (losses without from_logits)
    "unit": (0.0, 1.0),         # targets of cross-entropies
    "pos": (0.0, 4.0),          # second-moment states (v, v_hat, acc)
    "big_pos": (1.0, 4.0),      # rmsprop's v when centered (v - mg^2 stays > 0)
    "small": (-0.5, 0.5),       # rmsprop's mg
}
MAX_ELEMENTS = 4096
MAX_DIM = 64

NONFINITE = (np.nan, np.inf, -np.inf)


def extreme_values(dt):
    fi = np.finfo(dt)
    return (float(fi.max), -float(fi.max), float(fi.max) / 3, float(fi.tiny),
            -float(fi.tiny), float(fi.smallest_subnormal), 0.0, -0.0,
            1e30 if dt == np.float64 else 1e20, -1e15, 1e-30, 88.8, -88.8, 710.0, -745.0)


# ------------------------------------------------------------------------- shapes
def dim(hi=MAX_DIM):
    """An axis length, mostly small; 1 often (broadcasting and degenerate paths)."""
    return st.one_of(st.integers(1, min(6, hi)), st.just(1), st.integers(1, hi))


@st.composite
def shape(draw, min_rank=1, max_rank=4, allow_zero=False):
    rank = draw(st.integers(min_rank, max_rank))
    hi = {0: 1, 1: MAX_DIM, 2: MAX_DIM, 3: 16, 4: 8}[rank]
    dims = [draw(dim(hi)) for _ in range(rank)]
    while math.prod(dims) > MAX_ELEMENTS:
        dims[dims.index(max(dims))] //= 2
    if allow_zero and rank and draw(st.booleans()):
        dims[draw(st.integers(0, rank - 1))] = 0
    return tuple(dims)


# ------------------------------------------------------------------------- values
@st.composite
def values(draw, shp, dt, domain="any", regime="normal"):
    """A C-contiguous float array of ``shp`` in ``dt`` for the value regime."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    lo, hi = DOMAINS[domain] if regime != "wild" else (-8.0, 8.0)
    x = rng.uniform(lo, hi, shp)
    n = x.size
    if n and draw(st.integers(0, 4)) == 0:   # exact edges of the domain
        for _ in range(draw(st.integers(1, 3))):
            x.flat[draw(st.integers(0, n - 1))] = draw(st.sampled_from(
                [lo, hi, 0.0 if lo <= 0 <= hi else lo, 1.0 if lo <= 1 <= hi else hi]))
    if n and regime in ("nonfinite", "extreme"):
        pool = NONFINITE if regime == "nonfinite" else extreme_values(dt)
        for _ in range(draw(st.integers(1, min(4, n)))):
            x.flat[draw(st.integers(0, n - 1))] = draw(st.sampled_from(pool))
    with np.errstate(over="ignore"):
        return x.astype(dt)


def _aligned_empty(nbytes, align_mod=0, align=64):
    """A uint8 buffer view of ``nbytes`` whose address is ``align_mod`` mod ``align``."""
    raw = np.empty(nbytes + 2 * align, np.uint8)
    addr = raw.__array_interface__["data"][0]
    start = (align_mod - addr) % align
    return raw[start:start + nbytes]


@st.composite
def relayout(draw, x, layouts=LAYOUTS):
    """An array equal to ``x`` (same shape, dtype, values; for ``broadcast`` the values
    of one slice repeated) in a drawn memory layout.  Returns (array, layout name)."""
    kind = draw(st.sampled_from(layouts))
    if x.ndim == 0 and kind in ("F", "steps", "neg", "broadcast"):
        kind = "C"
    if x.dtype == object and kind == "misaligned":
        kind = "C"
    if kind == "C":
        return x.copy(), kind
    if kind == "F":
        return np.asfortranarray(x), kind
    if kind == "readonly":
        y = x.copy()
        y.flags.writeable = False
        return y, kind
    if kind == "steps":
        steps = [draw(st.integers(1, 3)) for _ in range(x.ndim)]
        starts = [draw(st.integers(0, s - 1)) for s in steps]
        base = np.empty(tuple(n * s + st_ for n, s, st_ in zip(x.shape, steps, starts)), x.dtype)
        _fill_poison(base)
        view = base[tuple(slice(st_, None, s) for st_, s in zip(starts, steps))]
        view = view[tuple(slice(0, n) for n in x.shape)]
        view[...] = x
        return view, kind
    if kind == "neg":
        axes = draw(st.lists(st.integers(0, x.ndim - 1), min_size=1, max_size=x.ndim,
                             unique=True))
        flip = tuple(slice(None, None, -1) if i in axes else slice(None)
                     for i in range(x.ndim))
        base = np.ascontiguousarray(x[flip])
        return base[flip], kind
    if kind == "broadcast":
        axis = draw(st.integers(0, x.ndim - 1))
        one = np.take(x, [0], axis=axis) if x.shape[axis] else x
        return np.broadcast_to(one, x.shape), kind
    if kind == "misaligned":
        buf = _aligned_empty(x.nbytes, align_mod=1)     # address 1 mod 64: misaligned
        view = np.ndarray(x.shape, x.dtype, buffer=buf)
        view[...] = x
        return view, kind
    raise AssertionError(kind)


def _fill_poison(base):
    if base.dtype.kind in "fc":
        base.fill(np.nan)
    elif base.dtype.kind in "iu":
        base.fill(np.iinfo(base.dtype).min)
    elif base.dtype == object:
        base.fill(None)
    else:
        base.fill(True)


def _real_parts(x):
    """``x`` (complex, or an object array of Python numbers) as float64 real parts."""
    if x.dtype == object:
        return np.array([complex(v).real for v in x.ravel()], np.float64).reshape(x.shape)
    return np.real(x).astype(np.float64)


def cast(x, dt):
    """``x`` in another dtype (object: Python floats; complex: an imaginary part).

    Any ``x`` works, an earlier cast's complex or object array too: those are taken by
    their real parts first, and NaN and infinities become small integers before an
    integer cast (an object array of inf cannot be cast to int at all)."""
    dt = np.dtype(dt)
    with np.errstate(all="ignore"):
        if dt.kind == "O":
            return x.astype(object)
        if dt.kind == "c":
            return (x + 0.5j).astype(dt)
        if x.dtype.kind in "cO":
            x = _real_parts(x)
        if dt.kind in "iu":
            return np.nan_to_num(x, nan=0, posinf=7, neginf=-7).astype(dt)
        if dt.kind == "b":
            return np.nan_to_num(x) > 0
        return x.astype(dt)


# -------------------------------------------------------------- adversarial arrays
class PlainSubclass(np.ndarray):
    """An ndarray subclass that changes nothing: must behave exactly as ndarray."""


class UfuncOverride(np.ndarray):
    """An ndarray subclass whose ufuncs mean something else (like a units library):
    NumPy arithmetic on it does not compute what compiled code reading its memory does."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        inputs = tuple(np.asarray(i) if isinstance(i, UfuncOverride) else i for i in inputs)
        out = kwargs.pop("out", None)
        if out is not None:
            kwargs["out"] = tuple(np.asarray(o) for o in out)
        result = getattr(ufunc, method)(*inputs, **kwargs)
        return result * 2 if isinstance(result, np.ndarray) and result.dtype.kind == "f" \
            else result


HUGE_SHAPES = ((2**40, 3), (3, 2**40), (2**44,), (2**21, 2**21), (2, 2**40, 2),
               (2**20, 2**20, 4), (1, 2**58), (2**58, 1))


@st.composite
def huge_lazy_array(draw, dt=None, rank=None):
    """A read-only zero-stride view describing terabytes (one element allocated)."""
    dt = np.dtype(dt or draw(st.sampled_from(FLOATS)))
    shapes = [s for s in HUGE_SHAPES if rank is None or len(s) == rank]
    shp = draw(st.sampled_from(shapes or list(HUGE_SHAPES)))
    one = np.full(1, draw(st.sampled_from([0.5, 1.0, np.nan])), dt)
    if draw(st.booleans()):
        return np.broadcast_to(one.reshape((1,) * len(shp)), shp)
    return as_strided(one, shape=shp, strides=(0,) * len(shp), writeable=False)


def is_lazy_huge(x):
    return isinstance(x, np.ndarray) and x.size > 10 * MAX_ELEMENTS


@st.composite
def any_array(draw, dtypes=ALL_DTYPES, min_rank=0, max_rank=4, allow_zero=True):
    """An arbitrary array: any dtype, rank, shape (zero-size too), layout, values."""
    dt = draw(st.sampled_from(dtypes))
    shp = draw(shape(min_rank, max_rank, allow_zero=allow_zero))
    regime = draw(st.sampled_from(REGIMES))
    x = draw(values(shp, np.float64 if dt.kind != "f" or dt.itemsize < 4 else dt,
                    "any", regime))
    x = cast(x, dt)
    if x.ndim and x.size:
        x, _ = draw(relayout(x))
    return x


@st.composite
def perturbed_shape(draw, x):
    """``x``'s dtype, a shape near ``x``'s (one axis +-1, 0 or 1; an axis added or
    removed; transposed), values in the normal regime."""
    shp = list(x.shape)
    how = draw(st.sampled_from(["grow", "shrink", "zero", "one", "add", "drop", "swap"]))
    if how in ("grow", "shrink", "zero", "one") and shp:
        i = draw(st.integers(0, len(shp) - 1))
        shp[i] = {"grow": shp[i] + 1, "shrink": max(shp[i] - 1, 0), "zero": 0,
                  "one": 1}[how]
    elif how == "add" and len(shp) < 4:
        shp.insert(draw(st.integers(0, len(shp))), draw(st.integers(1, 3)))
    elif how == "drop" and shp:
        shp.pop(draw(st.integers(0, len(shp) - 1)))
    elif how == "swap" and len(shp) >= 2:
        shp = shp[::-1]
    else:
        shp = shp + [2] if len(shp) < 4 else shp[:-1]
    dt = x.dtype if x.dtype in FLOATS else np.dtype(np.float64)
    return draw(values(tuple(shp), dt))


# ------------------------------------------------------------------ bad scalars
class UserError(RuntimeError):
    """Raised by the adversarial objects' own methods: when it propagates, the caller's
    object failed, not the library."""


class Weird:
    """An object whose repr fails and which is no number."""

    def __repr__(self):
        raise UserError("no repr")


class WeirdLen:
    """An object with a __len__ that raises (so bool() of it raises too)."""

    def __len__(self):
        raise UserError("no len")


def bad_scalars():
    """Values that are wrong for most hyper-parameters (some right for a few)."""
    from decimal import Decimal
    from fractions import Fraction
    return st.one_of(
        st.sampled_from([None, True, False, 0, 1, -1, 2, 0.5, -0.5, 1.0, -0.0, 1e-300,
                         1e300, np.nan, np.inf, -np.inf, "relu", "", "1.0", "linear ",
                         1j, 1 + 0j, [1.0], (1,), {}, b"1", 10**400, -10**5000,
                         np.float32(np.nan), np.float16(0.5), np.int64(3), np.uint8(1),
                         np.bool_(True), np.bool_(False), np.float64(-1.0),
                         np.longdouble(0.5), np.complex64(1), np.array(0.5),
                         np.array([0.5]), np.array(True), Decimal("0.5"), Fraction(1, 2),
                         Fraction(10**400, 3), object(), Weird(), WeirdLen(), np.int8,
                         float, print, Ellipsis]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(-2**70, 2**70),
        st.text(max_size=5))


# ------------------------------------------------------------- hyper-parameters
# name -> (typical strategy, edge strategy).  Typical values are the ones on which the
# backends must agree within the tolerance table; edge values (exact bounds, huge,
# tiny) must give no crash and the same acceptance, and results of the right structure.
def _unit_edges(open_high=False):
    vals = [0.0, 1e-300, 5e-324, 1.0 - 2**-53, 0.5]
    return st.sampled_from(vals if open_high else vals + [1.0])


def _typical(lo, hi, zero=True):
    """Floats in [lo, hi] (lo >= 0) without the tiny values whose products underflow
    in float32 (those are edge values); 0 itself when ``zero``."""
    body = st.floats(max(lo, 1e-4), hi)
    return st.one_of(st.just(0.0), body) if zero else body


def _signed(hi):
    return st.one_of(st.just(0.0), _typical(1e-3, hi, False), _typical(1e-3, hi, False).map(
        lambda v: -v))


HYPER = {
    "alpha": (st.one_of(st.sampled_from([1.0, 0.0, -1.0, 2.0]), _signed(2)),
              st.sampled_from([1e300, -1e300, 5e-324, 1e-30, 3.4e38, 0.0, -0.0])),
    "beta": (st.one_of(st.sampled_from([0.0, 1.0, -0.5]), _signed(2)),
             st.sampled_from([1e300, -1e300, 5e-324, 0.0, -0.0])),
    "negative_slope": (_typical(0, 1), st.sampled_from([0.0, 1e300, 5e-324, 1e30])),
    "elu_alpha": (st.floats(0.1, 2), st.sampled_from([5e-324, 1e-300, 1e300, 1e30])),
    "delta": (st.floats(0.1, 3), st.sampled_from([5e-324, 1e-300, 1e300, 1e30])),
    "learning_rate": (_typical(0, 0.1), st.sampled_from([0.0, 1e300, 5e-324, 1e30, 3.5e38])),
    "momentum": (_typical(0, 0.99), _unit_edges()),
    "weight_decay": (_typical(0, 0.1), st.sampled_from([0.0, 1e300, 5e-324, 1e30])),
    "beta_1": (st.floats(0.5, 0.99), _unit_edges(open_high=True)),
    "beta_2": (st.floats(0.5, 0.999), _unit_edges(open_high=True)),
    "epsilon": (st.floats(1e-8, 1e-3), st.sampled_from([0.0, 5e-324, 1e300, 1e30])),
    "rho": (st.floats(0.5, 0.99), _unit_edges()),
    "step": (st.integers(1, 1000), st.sampled_from([1, 2, 2**31, 2**53 + 1, 2**62, 2**63 - 1])),
}


def flags():
    return st.one_of(st.booleans(), st.sampled_from([np.bool_(True), np.bool_(False)]))


# ------------------------------------------------------------------- kernel calls
class Call:
    """One call of a kernel: ``values`` maps parameter names to arguments (absent =
    default); the first ``n_positional`` parameters are passed positionally.

    ``regime``/``hyper`` say how strictly results are compared (see the kernel test);
    ``notes`` lists what was done to the valid call (for failure reports).
    """

    def __init__(self, name, dt, values, regime, hyper, meta):
        self.name = name
        self.dt = np.dtype(dt)
        self.values = dict(values)
        self.regime = regime
        self.hyper = hyper
        self.meta = dict(meta)
        self.notes = []
        self.extra_positional = []
        self.extra_keywords = {}
        self.n_positional = None

    @property
    def params(self):
        import inspect
        return list(inspect.signature(getattr(ref, self.name)).parameters.values())

    def args_kwargs(self, values=None):
        values = self.values if values is None else values
        params = self.params
        positional = [p.name for p in params if p.kind == p.POSITIONAL_OR_KEYWORD]
        n = self.n_positional if self.n_positional is not None else 0
        args, kwargs = [], {}
        for i, p in enumerate(positional):
            if i < n and p in values:
                args.append(values[p])
            elif i < n:
                n = i          # a gap: the rest by keyword
        for p, v in values.items():
            if p not in positional[:len(args)]:
                kwargs[p] = v
        args += self.extra_positional
        kwargs.update(self.extra_keywords)
        return args, kwargs

    def describe(self):
        parts = []
        for k, v in self.values.items():
            parts.append(f"{k}={describe_value(v)}")
        extra = [describe_value(v) for v in self.extra_positional]
        return (f"{self.name}({', '.join(parts)}) dtype={self.dt} regime={self.regime} "
                f"hyper={self.hyper} positional={self.n_positional} notes={self.notes} "
                f"extra={extra}, {sorted(self.extra_keywords)}")

    __repr__ = describe


def describe_value(v):
    if isinstance(v, np.ndarray):
        flags = "" if v.flags.writeable else " ro"
        kind = ("C" if v.flags.c_contiguous else "F" if v.flags.f_contiguous else "strided")
        sub = "" if type(v) is np.ndarray else f" {type(v).__name__}"
        text = f"<{v.dtype} {v.shape} {kind} strides={v.strides}{flags}{sub}"
        if v.size <= 16 and v.dtype != object:
            text += f" {np.array2string(np.asarray(v), precision=4, separator=',')}"
        return text + ">"
    try:
        return repr(v)[:60]
    except Exception:  # noqa: BLE001
        return f"<{type(v).__name__}>"


@st.composite
def _hyper(draw, key, hyper):
    typical, edge = HYPER[key]
    return draw(edge if hyper == "edge" and draw(st.booleans()) else typical)


@st.composite
def kernel_call(draw, name, mutate=True):
    """A call of kernel ``name``: valid, then (when ``mutate``) mutated."""
    dt = draw(st.sampled_from(FLOATS))
    regime = draw(st.sampled_from(("normal",) * 6 + REGIMES))
    hyper = draw(st.sampled_from(["typical"] * 5 + ["edge"]))
    vals, meta = _VALID[_family(name)](draw, name, dt, regime, hyper)
    call = Call(name, dt, vals, regime, hyper, meta)
    params = [p.name for p in call.params]
    required = [p.name for p in call.params if p.default is p.empty]
    positional = [p.name for p in call.params if p.kind == p.POSITIONAL_OR_KEYWORD]
    call.n_positional = draw(st.integers(len([p for p in required if p in positional]),
                                         len(positional)))
    # re-lay out some arrays (valid calls stay valid, except read-only/broadcast outputs)
    for p in list(call.values):
        v = call.values[p]
        if isinstance(v, np.ndarray) and v.ndim and draw(st.integers(0, 3)) == 0:
            if p in meta.get("aliases", ()):
                continue
            call.values[p], kind = draw(relayout(v))
            call.notes.append(f"{p}:{kind}")
    if mutate:
        for _ in range(draw(st.sampled_from([0, 0, 0, 1, 1, 1, 2, 3]))):
            draw(_mutation(call, params))
    return call


@st.composite
def _mutation(draw, call, params):
    how = draw(st.sampled_from(["replace", "replace", "reshape", "retype", "alias", "drop",
                                "huge", "arity", "subclass"]))
    arrays = [p for p, v in call.values.items()
              if isinstance(v, np.ndarray) and not is_lazy_huge(v)]
    target = draw(st.sampled_from(params))
    current = call.values.get(target)
    if how == "replace":
        if isinstance(current, np.ndarray) or draw(st.integers(0, 3)) == 0:
            call.values[target] = draw(st.one_of(any_array(), bad_scalars()))
        else:
            call.values[target] = draw(bad_scalars())
    elif how == "reshape" and arrays:
        target = draw(st.sampled_from(arrays))
        call.values[target] = draw(perturbed_shape(call.values[target]))
    elif how == "retype" and arrays:
        target = draw(st.sampled_from(arrays))
        x = call.values[target]
        call.values[target] = cast(np.asarray(x, dtype=np.float64) if x.dtype.kind != "O"
                                   else x, draw(st.sampled_from(ALL_DTYPES)))
    elif how == "alias" and arrays:
        src = draw(st.sampled_from(arrays))
        x = call.values[src]
        view = draw(st.sampled_from(["same", "T", "flip", "window", "reshape"]))
        if view == "same" or x.ndim == 0:
            alias = x
        elif view == "T":
            alias = x.T
        elif view == "flip":
            alias = x[::-1]
        elif view == "reshape" and x.flags.c_contiguous:
            alias = x.reshape(-1)
        else:                     # a partially overlapping window of the same memory
            flat = np.empty(x.size + 1, x.dtype)
            flat[:-1] = np.asarray(x).reshape(-1)
            flat[-1] = flat[0] if x.size else 0
            x2 = flat[:-1].reshape(x.shape)
            call.values[src] = x2
            alias = flat[1:].reshape(x.shape)
            target = draw(st.sampled_from(arrays))
            if target == src:
                return
        call.values[target] = alias
    elif how == "drop" and call.values:
        target = draw(st.sampled_from(sorted(call.values)))
        if draw(st.booleans()):
            del call.values[target]
        else:
            call.values[target] = None
    elif how == "huge":
        target = draw(st.sampled_from(arrays)) if arrays and draw(st.integers(0, 4)) else target
        rank = getattr(call.values.get(target), "ndim", None)
        dt = getattr(call.values.get(target), "dtype", call.dt)
        call.values[target] = draw(huge_lazy_array(dt if dt in FLOATS else call.dt, rank))
    elif how == "arity":
        kind = draw(st.sampled_from(["extra_kw", "extra_pos", "missing"]))
        if kind == "extra_kw":
            call.extra_keywords[draw(st.sampled_from(["foo", "outt", "Out", "dtype"]))] = 1
        elif kind == "extra_pos":
            call.n_positional = 10**6       # everything that can go positionally does
            call.extra_positional.append(draw(bad_scalars()))
        else:
            required = [p.name for p in call.params if p.default is p.empty]
            if required:
                call.values.pop(draw(st.sampled_from(required)), None)
        how = f"arity:{kind}"
    elif how == "subclass" and arrays:
        target = draw(st.sampled_from(arrays))
        x = call.values[target]
        cls = draw(st.sampled_from([PlainSubclass, UfuncOverride, np.ma.MaskedArray]))
        call.values[target] = x.view(cls)
        how = f"subclass:{cls.__name__}"
    call.notes.append(f"{how}->{target}")


def _family(name):
    if name in ("gemm", "bias_add", "column_sums", "dense_forward", "dense_backward",
                "layer_norm_forward", "layer_norm_backward", "embedding_forward",
                "embedding_backward"):
        return name
    if name.startswith("backprop_") and name[9:] in ref.ACTIVATIONS:
        return "act_backward"
    if name in ref.ACTIVATIONS:
        return "act_forward"
    if name.endswith("_update"):
        return "optimizer"
    base, _, kind = name.rpartition("_")
    if base in CONV_KERNELS:
        return "conv_" + kind
    if base in POOL_KERNELS:
        return "pool"
    if name.startswith("batch_norm_"):
        return "batch_norm"
    return "loss"


# -------------------------------------------------- valid calls, per kernel family
def _maybe_out(draw, shp, dt, p_out=0.5):
    if draw(st.floats(0, 1)) < p_out:
        return draw(values(shp, dt))
    return None


def _v(draw, shp, dt, regime, domain="any"):
    return draw(values(shp, dt, domain, regime))


def _valid_gemm(draw, name, dt, regime, hyper):
    m, k, n = draw(dim()), draw(dim()), draw(dim())
    trans_a, trans_b = draw(flags()), draw(flags())
    a = _v(draw, (k, m) if trans_a else (m, k), dt, regime)
    b = _v(draw, (n, k) if trans_b else (k, n), dt, regime)
    vals = {"a": a, "b": b}
    alpha = draw(_hyper("alpha", hyper))
    beta = draw(_hyper("beta", hyper))
    out = _maybe_out(draw, (m, n), dt, 0.6)
    if out is None:
        beta = 0.0
    else:
        vals["out"] = out
    if draw(st.booleans()):
        vals["trans_a"] = trans_a
    elif trans_a:
        vals["trans_a"] = trans_a
    if trans_b or draw(st.booleans()):
        vals["trans_b"] = trans_b
    if alpha != 1.0 or draw(st.booleans()):
        vals["alpha"] = alpha
    if beta != 0.0 or draw(st.booleans()):
        vals["beta"] = beta
    return vals, {"k": k}


def _valid_bias_add(draw, name, dt, regime, hyper):
    n, m = draw(dim()), draw(dim())
    x = _v(draw, (n, m), dt, regime)
    vals = {"x": x, "b": _v(draw, (m,), dt, regime)}
    meta = {}
    how = draw(st.sampled_from(["none", "new", "inplace"]))
    if how == "new":
        vals["out"] = draw(values((n, m), dt))
    elif how == "inplace":
        vals["out"] = x
        meta["aliases"] = ("out",)
    return vals, meta


def _valid_column_sums(draw, name, dt, regime, hyper):
    n, m = draw(dim()), draw(dim())
    vals = {"x": _v(draw, (n, m), dt, regime)}
    out = _maybe_out(draw, (m,), dt)
    if out is not None:
        vals["out"] = out
    return vals, {"k": n}


def _valid_dense_forward(draw, name, dt, regime, hyper):
    n, n_in, units = draw(dim()), draw(dim()), draw(dim())
    vals = {"x": _v(draw, (n, n_in), dt, regime), "w": _v(draw, (n_in, units), dt, regime)}
    if draw(st.booleans()):
        vals["b"] = _v(draw, (units,), dt, regime)
    elif draw(st.booleans()):
        vals["b"] = None
    out = _maybe_out(draw, (n, units), dt)
    if out is not None:
        vals["out"] = out
    vals["activation"] = draw(st.sampled_from(ref.ACTIVATIONS))
    if draw(st.booleans()):
        vals["pre_activation"] = draw(values((n, units), dt))
    return vals, {"k": n_in}


def _valid_dense_backward(draw, name, dt, regime, hyper):
    n, n_in, units = draw(dim()), draw(dim()), draw(dim())
    act = draw(st.sampled_from(ref.ACTIVATIONS))
    vals = {"dy": _v(draw, (n, units), dt, regime), "x": _v(draw, (n, n_in), dt, regime),
            "w": _v(draw, (n_in, units), dt, regime), "y": _v(draw, (n, units), dt, regime),
            "activation": act}
    if act in ref.ACTIVATIONS_NEEDING_INPUT or draw(st.booleans()):
        vals["pre_activation"] = _v(draw, (n, units), dt, regime)
    need_dx, use_bias = draw(flags()), draw(flags())
    if not need_dx or draw(st.booleans()):
        vals["need_dx"] = need_dx
    if not use_bias or draw(st.booleans()):
        vals["use_bias"] = use_bias
    for key, shp in (("dx", (n, n_in)), ("dw", (n_in, units)), ("db", (units,))):
        if draw(st.booleans()):
            vals[key] = draw(values(shp, dt))
    return vals, {"k": n, "k_dx": units}


# an activation's real parameter -> its HYPER strategy (the parameters themselves are
# the reference's table: ACTIVATION_SPECS)
_ACT_HYPER = {"leaky_relu": ("negative_slope", "negative_slope"), "elu": ("alpha", "elu_alpha")}


def _act_params(draw, name, hyper, vals):
    base = name[9:] if name.startswith("backprop_") else name
    if base in _ACT_HYPER and draw(st.booleans()):
        param, key = _ACT_HYPER[base]
        vals[param] = draw(_hyper(key, hyper))
    for param, default in ref.ACTIVATION_SPECS[base].params.items():
        if isinstance(default, bool) and draw(st.booleans()):    # gelu's approximate
            vals[param] = draw(flags())


def _valid_act_forward(draw, name, dt, regime, hyper):
    shp = draw(shape(1, 4))
    x = _v(draw, shp, dt, regime)
    vals = {"x": x}
    meta = {}
    how = draw(st.sampled_from(["none", "new", "inplace"]))
    if how == "new":
        vals["out"] = draw(values(shp, dt))
    elif how == "inplace":
        vals["out"] = x
        meta["aliases"] = ("out",)
    _act_params(draw, name, hyper, vals)
    return vals, meta


def _valid_act_backward(draw, name, dt, regime, hyper):
    shp = draw(shape(1, 4))
    saved = "x" if name[9:] in ref.ACTIVATIONS_NEEDING_INPUT else "y"
    dy = _v(draw, shp, dt, regime)
    y = _v(draw, shp, dt, regime)
    vals = {"dy": dy, saved: y}
    meta = {}
    how = draw(st.sampled_from(["none", "new", "dy", "saved"]))
    if how == "new":
        vals["out"] = draw(values(shp, dt))
    elif how in ("dy", "saved"):
        vals["out"] = dy if how == "dy" else y
        meta["aliases"] = ("out",)
    _act_params(draw, name, hyper, vals)
    return vals, meta


_PROB_LOSSES = ("binary_crossentropy", "categorical_crossentropy",
                "sparse_categorical_crossentropy")


def _valid_loss(draw, name, dt, regime, hyper):
    base = name[9:] if name.startswith("backprop_") else name
    grad = name.startswith("backprop_") or base.endswith("softmax_crossentropy")
    sparse = "sparse" in base
    two_d = sparse or "categorical" in base or base.endswith("softmax_crossentropy")
    n = draw(dim())
    d = draw(dim())
    shp = (n, d) if two_d or draw(st.booleans()) else (n,)
    vals, meta = {}, {}
    from_logits = draw(flags()) if "crossentropy" in base and "softmax" not in base else None
    if from_logits is not None and (from_logits or draw(st.booleans())):
        vals["from_logits"] = from_logits
    logits = bool(from_logits) or base.endswith("softmax_crossentropy")
    pred_domain = "any" if logits or base not in _PROB_LOSSES else "prob"
    pred_name = "logits" if base.endswith("softmax_crossentropy") else "y_pred"
    y_pred = _v(draw, shp, dt, regime, pred_domain)
    if sparse:
        label_dt = draw(st.sampled_from([np.int64, np.int32, np.intp, np.uint8, np.float32,
                                         np.float64, np.int16]))
        labels = draw(st.lists(st.integers(0, d - 1), min_size=n, max_size=n))
        y_true = np.array(labels).astype(label_dt)
        if draw(st.booleans()):
            y_true = y_true.reshape(n, 1)
    else:
        true_domain = "unit" if "crossentropy" in base else "any"
        y_true = _v(draw, shp, dt, regime, true_domain)
        if y_true.size and draw(st.integers(0, 3)) == 0:   # some exact ties y_true == y_pred
            mask = np.asarray(draw(values(shp, np.float64, "unit"))) > 0.5
            y_true[mask] = y_pred[mask]
    vals["y_true"], vals[pred_name] = y_true, y_pred
    if base == "huber" and draw(st.booleans()):
        vals["delta"] = draw(_hyper("delta", hyper))
    if grad:
        how = draw(st.sampled_from(["none", "new", "pred", "true"]))
        if how == "new":
            vals["out"] = draw(values(shp, dt))
        elif how == "pred":
            vals["out"] = y_pred
            meta["aliases"] = ("out",)
        elif how == "true" and not sparse:
            vals["out"] = y_true        # allowed for elementwise losses only
            meta["aliases"] = ("out",)
    meta["k"] = y_pred.size
    return vals, meta


_OPT_STATES = {"sgd": ("m",), "adam": ("m", "v", "v_hat"), "adamw": ("m", "v", "v_hat"),
               "rmsprop": ("v", "mom", "mg"), "adagrad": ("acc",)}
_STATE_DOMAIN = {"m": "any", "v": "pos", "v_hat": "pos", "mom": "any", "mg": "small",
                 "acc": "pos"}


def _valid_optimizer(draw, name, dt, regime, hyper):
    kind = name[:-len("_update")]
    shp = draw(shape(1, 4))
    vals = {"w": _v(draw, shp, dt, regime), "g": _v(draw, shp, dt, regime)}

    def state(s, domain=None):
        return _v(draw, shp, dt, regime, domain or _STATE_DOMAIN[s])

    def hp(key, param=None):
        if draw(st.booleans()):
            vals[param or key] = draw(_hyper(key, hyper))

    hp("learning_rate")
    hp("weight_decay")
    if kind == "sgd":
        momentum = draw(_hyper("momentum", hyper)) if draw(st.booleans()) else 0.0
        if momentum or draw(st.booleans()):
            vals["momentum"] = momentum
        if momentum or draw(st.booleans()):
            vals["m"] = state("m")
        if draw(st.booleans()):
            vals["nesterov"] = draw(flags())
    elif kind in ("adam", "adamw"):
        vals["m"], vals["v"] = state("m"), state("v")
        vals["step"] = draw(_hyper("step", hyper))
        for key in ("beta_1", "beta_2", "epsilon"):
            hp(key)
        amsgrad = draw(flags())
        if amsgrad or draw(st.booleans()):
            vals["amsgrad"] = amsgrad
        if amsgrad or draw(st.booleans()):
            vals["v_hat"] = state("v_hat")
    elif kind == "rmsprop":
        centered = draw(flags())
        vals["v"] = state("v", "big_pos" if centered else "pos")
        hp("rho")
        hp("epsilon")
        momentum = draw(_hyper("momentum", hyper)) if draw(st.booleans()) else 0.0
        if momentum or draw(st.booleans()):
            vals["momentum"] = momentum
        if momentum or draw(st.booleans()):
            vals["mom"] = state("mom")
        if centered or draw(st.booleans()):
            vals["centered"] = centered
        if centered or draw(st.booleans()):
            vals["mg"] = state("mg")
    else:
        vals["acc"] = state("acc")
        hp("epsilon")
    return vals, {}


def _valid_layer_norm_forward(draw, name, dt, regime, hyper):
    shp = draw(shape(1, 3))
    x = _v(draw, shp, dt, regime)
    vals, meta = {"x": x}, {}
    for p in ("gamma", "beta"):
        if draw(st.booleans()):
            vals[p] = _v(draw, shp[-1:], dt, regime)
    how = draw(st.sampled_from(["none", "new", "inplace"]))
    if how == "new":
        vals["out"] = draw(values(shp, dt))
    elif how == "inplace":
        vals["out"] = x
        meta["aliases"] = ("out",)
    if draw(st.booleans()):
        vals["epsilon"] = draw(_hyper("epsilon", hyper))
    return vals, meta


def _valid_layer_norm_backward(draw, name, dt, regime, hyper):
    shp = draw(shape(1, 3))
    dy, x = _v(draw, shp, dt, regime), _v(draw, shp, dt, regime)
    vals, meta = {"dy": dy, "x": x}, {}
    if draw(st.booleans()):
        vals["gamma"] = _v(draw, shp[-1:], dt, regime)
    for p, s in (("dgamma", shp[-1:]), ("dbeta", shp[-1:])):
        if draw(st.booleans()):
            vals[p] = draw(values(s, dt))
    how = draw(st.sampled_from(["none", "new", "dy", "x"]))
    if how == "new":
        vals["dx"] = draw(values(shp, dt))
    elif how in ("dy", "x"):
        vals["dx"] = vals[how]
        meta["aliases"] = ("dx",)
    if draw(st.booleans()):
        vals["epsilon"] = draw(_hyper("epsilon", hyper))
    return vals, meta


def _ids(draw, rows, dt):
    """Embedding ids: a shape of rank 1-2, values in [0, rows), integers or whole
    floats of the kernel's dtype."""
    shp = draw(shape(1, 2))
    seed = draw(st.integers(0, 2**32 - 1))
    ids = np.random.default_rng(seed).integers(0, rows, size=shp)
    kind = draw(st.sampled_from(["int64", "int32", "float"]))
    return ids.astype(dt if kind == "float" else kind), shp


def _valid_embedding_forward(draw, name, dt, regime, hyper):
    rows, d = draw(st.integers(1, 6)), draw(st.integers(1, 5))
    ids, shp = _ids(draw, rows, dt)
    vals = {"ids": ids, "table": _v(draw, (rows, d), dt, regime)}
    if draw(st.booleans()):
        vals["out"] = draw(values(tuple(shp) + (d,), dt))
    return vals, {}


def _valid_embedding_backward(draw, name, dt, regime, hyper):
    rows, d = draw(st.integers(1, 6)), draw(st.integers(1, 5))
    ids, shp = _ids(draw, rows, dt)
    return {"dy": _v(draw, tuple(shp) + (d,), dt, regime), "ids": ids,
            "dtable": draw(values((rows, d), dt))}, {}


# ------------------------------------------------ convolution, pooling, batch norm
# Images stay tiny (at most 2 x 6 x 6 x 4, or 2 x 8 x 4 for conv1d): the same
# strategies may drive the cuda backend, which runs under Numba's simulator where there
# is no GPU.
CONV_KERNELS = ("conv2d", "conv1d", "depthwise_conv2d")
POOL_KERNELS = ("max_pool2d", "avg_pool2d", "global_max_pool2d", "global_avg_pool2d")


def _axis_out(size, k, s, d, padding):
    from kernels import checks
    return checks.padding_amounts(size, k, s, d, padding)[2]


def _per_axis(draw, values, rank):
    """A window hyper-parameter as Keras takes it: an int, or a tuple/list of one per
    axis (``values`` is that tuple)."""
    if rank == 1:
        return draw(st.sampled_from([values[0], (values[0],), [values[0]]]))
    if values[0] == values[1] and draw(st.booleans()):
        return values[0]
    return draw(st.sampled_from([tuple(values), list(values)]))


@st.composite
def _conv_geometry(draw, rank, kernel):
    """(n, image sizes, keyword arguments, output sizes) of a valid convolution with a
    ``kernel`` of one size per axis: strides, dilation and padding drawn (a valid pass
    too large for the image becomes "same")."""
    n = draw(st.integers(1, 2))
    sizes = (draw(st.integers(1, 8)),) if rank == 1 else (draw(st.integers(1, 6)),
                                                         draw(st.integers(1, 6)))
    strides = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    dil = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    padding = draw(st.sampled_from(("valid", "same", "causal") if rank == 1
                                   else ("valid", "same")))
    if padding == "valid" and any((k - 1) * d + 1 > sz
                                  for k, d, sz in zip(kernel, dil, sizes)):
        padding = "same"
    kw = {}
    if strides != (1,) * rank or draw(st.booleans()):
        kw["strides"] = _per_axis(draw, strides, rank)
    if padding != "valid" or draw(st.booleans()):
        kw["padding"] = padding
    if dil != (1,) * rank or draw(st.booleans()):
        kw["dilation_rate"] = _per_axis(draw, dil, rank)
    out = tuple(_axis_out(sz, k, s, d, padding)
                for sz, k, s, d in zip(sizes, kernel, strides, dil))
    return n, sizes, kw, out


def _conv_shapes(draw, name):
    """(x shape, w shape, output shape, keyword arguments) of a valid convolution."""
    rank = 1 if name.startswith("conv1d") else 2
    depthwise = name.startswith("depthwise")
    cin = draw(st.integers(1, 4))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    n, sizes, kw, out = draw(_conv_geometry(rank, kernel))
    if depthwise:
        dm = draw(st.integers(1, 2))
        w_shape, cout = kernel + (cin, dm), cin * dm
    else:
        groups = draw(st.sampled_from([g for g in (1, 2, 3, 4) if cin % g == 0]))
        cout = groups * draw(st.integers(1, 2))
        w_shape = kernel + (cin // groups, cout)
        if groups != 1 or draw(st.booleans()):
            kw["groups"] = groups
    return (n,) + sizes + (cin,), w_shape, (n,) + out + (cout,), kw


def _valid_conv_forward(draw, name, dt, regime, hyper):
    x_shape, w_shape, out_shape, kw = _conv_shapes(draw, name)
    vals = {"x": _v(draw, x_shape, dt, regime), "w": _v(draw, w_shape, dt, regime)}
    if draw(st.booleans()):
        vals["b"] = _v(draw, out_shape[-1:], dt, regime)
    elif draw(st.booleans()):
        vals["b"] = None
    out = _maybe_out(draw, out_shape, dt)
    if out is not None:
        vals["out"] = out
    act = draw(st.sampled_from(ref.ACTIVATIONS))
    if act != "linear" or draw(st.booleans()):
        vals["activation"] = act
    if draw(st.booleans()):
        vals["pre_activation"] = draw(values(out_shape, dt))
    vals.update(kw)
    return vals, {}


def _valid_conv_backward(draw, name, dt, regime, hyper):
    x_shape, w_shape, out_shape, kw = _conv_shapes(draw, name)
    act = draw(st.sampled_from(ref.ACTIVATIONS))
    vals = {"dy": _v(draw, out_shape, dt, regime), "x": _v(draw, x_shape, dt, regime),
            "w": _v(draw, w_shape, dt, regime), "y": _v(draw, out_shape, dt, regime),
            "activation": act}
    if act in ref.ACTIVATIONS_NEEDING_INPUT or draw(st.booleans()):
        vals["pre_activation"] = _v(draw, out_shape, dt, regime)
    need_dx, use_bias = draw(flags()), draw(flags())
    if not need_dx or draw(st.booleans()):
        vals["need_dx"] = need_dx
    if not use_bias or draw(st.booleans()):
        vals["use_bias"] = use_bias
    for key, shp in (("dx", x_shape), ("dw", w_shape), ("db", out_shape[-1:])):
        if draw(st.booleans()):
            vals[key] = draw(values(shp, dt))
    vals.update(kw)
    return vals, {}


def _pool_shapes(draw):
    """(x shape, output shape, keyword arguments) of a valid 2-D pooling."""
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    sizes = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    pool = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.sampled_from(["valid", "same"]))
    if padding == "valid" and any(k > sz for k, sz in zip(pool, sizes)):
        padding = "same"
    kw = {}
    if draw(st.booleans()):
        strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        kw["strides"] = _per_axis(draw, strides, 2)
    else:
        strides = pool                    # strides None: the pool size (Keras)
        if draw(st.booleans()):
            kw["strides"] = None
    if padding != "valid" or draw(st.booleans()):
        kw["padding"] = padding
    if pool != (2, 2) or draw(st.booleans()):
        kw["pool_size"] = _per_axis(draw, pool, 2)
    out = tuple(_axis_out(sz, k, s, 1, padding) for sz, k, s in zip(sizes, pool, strides))
    return (n,) + sizes + (c,), (n,) + out + (c,), kw


def _argmax(draw, shp, cells):
    """int32 indices in [0, cells): what a backward honours (chosen by a forward or not)."""
    seed = draw(st.integers(0, 2**32 - 1))
    return np.random.default_rng(seed).integers(0, cells, size=shp).astype(np.int32)


def _valid_pool(draw, name, dt, regime, hyper):
    max_pool = "max" in name
    if name.startswith("global"):
        x_shape = (draw(st.integers(1, 2)), draw(st.integers(1, 6)), draw(st.integers(1, 6)),
                   draw(st.integers(1, 3)))
        out_shape, kw = (x_shape[0], x_shape[3]), {}
    else:
        x_shape, out_shape, kw = _pool_shapes(draw)
    cells = x_shape[1] * x_shape[2]
    vals = dict(kw)
    if name.endswith("_forward"):
        vals["x"] = _v(draw, x_shape, dt, regime)
        out = _maybe_out(draw, out_shape, dt)
        if out is not None:
            vals["out"] = out
        if max_pool and draw(st.booleans()):
            vals["argmax"] = np.full(out_shape, -7, np.int32)
        return vals, {}
    vals["dy"] = _v(draw, out_shape, dt, regime)
    vals["dx"] = draw(values(x_shape, dt))
    if max_pool:
        vals["argmax"] = _argmax(draw, out_shape, cells)
    return vals, {}


def _valid_batch_norm(draw, name, dt, regime, hyper):
    shp = draw(shape(2, 4))
    c = shp[-1:]
    x = _v(draw, shp, dt, regime)
    vals, meta = {"x": x}, {}
    if name == "batch_norm_backward":
        vals["dy"] = _v(draw, shp, dt, regime)
        if draw(st.booleans()):
            vals["gamma"] = _v(draw, c, dt, regime)
        for p in ("dgamma", "dbeta"):
            if draw(st.booleans()):
                vals[p] = draw(values(c, dt))
        how = draw(st.sampled_from(["none", "new", "dy", "x"]))
        if how == "new":
            vals["dx"] = draw(values(shp, dt))
        elif how in ("dy", "x"):
            vals["dx"] = vals[how]
            meta["aliases"] = ("dx",)
    else:
        inference = name == "batch_norm_inference"
        for p in ("gamma", "beta"):
            if draw(st.booleans()):
                vals[p] = _v(draw, c, dt, regime)
            elif inference or draw(st.booleans()):
                vals[p] = None           # required (positional) by the inference
        if inference or draw(st.booleans()):
            vals["moving_mean"] = _v(draw, c, dt, regime)
            vals["moving_variance"] = _v(draw, c, dt, regime, "pos")
        how = draw(st.sampled_from(["none", "new", "inplace"]))
        if how == "new":
            vals["out"] = draw(values(shp, dt))
        elif how == "inplace":
            vals["out"] = x
            meta["aliases"] = ("out",)
        if not inference and draw(st.booleans()):
            vals["momentum"] = draw(_hyper("momentum", hyper))
    if draw(st.booleans()):
        vals["epsilon"] = draw(_hyper("epsilon", hyper))
    return vals, meta


_VALID = {"gemm": _valid_gemm, "bias_add": _valid_bias_add, "column_sums": _valid_column_sums,
          "dense_forward": _valid_dense_forward, "dense_backward": _valid_dense_backward,
          "act_forward": _valid_act_forward, "act_backward": _valid_act_backward,
          "loss": _valid_loss, "optimizer": _valid_optimizer,
          "layer_norm_forward": _valid_layer_norm_forward,
          "layer_norm_backward": _valid_layer_norm_backward,
          "embedding_forward": _valid_embedding_forward,
          "embedding_backward": _valid_embedding_backward,
          "conv_forward": _valid_conv_forward, "conv_backward": _valid_conv_backward,
          "pool": _valid_pool, "batch_norm": _valid_batch_norm}


def written_params(name):
    """The arguments kernel ``name`` may write; all others it must only read."""
    if name.endswith("_update"):
        return {"w"} | set(_OPT_STATES[name[:-len("_update")]])
    if name == "dense_forward":
        return {"out", "pre_activation"}
    if name == "dense_backward":
        return {"dx", "dw", "db"}
    if name == "layer_norm_backward":
        return {"dx", "dgamma", "dbeta"}
    if name == "embedding_backward":
        return {"dtable"}
    fam = _family(name)
    if fam == "conv_forward":
        return {"out", "pre_activation"}
    if fam == "conv_backward":
        return {"dx", "dw", "db"}
    if fam == "pool":
        return {"dx"} if name.endswith("_backward") else {"out", "argmax"}
    if name == "batch_norm_forward":
        return {"out", "moving_mean", "moving_variance"}
    if name == "batch_norm_backward":
        return {"dx", "dgamma", "dbeta"}
    return {"out"}


# --------------------------------------------------------------------- cloning
def _arrays_in(objs):
    seen, arrays = set(), []
    for v in objs:
        if isinstance(v, np.ndarray) and id(v) not in seen:
            seen.add(id(v))
            arrays.append(v)
    return arrays


def clone_call(args, kwargs):
    """Independent copies of a call's arguments with identical layouts: strides,
    alignment, flags, subclasses, and which arrays overlap (arrays whose memory
    overlaps are re-created as views of one new buffer, at the same offsets).
    Object arrays and lazy huge arrays (read-only, one element) are shared as they are.
    """
    arrays = [a for a in _arrays_in(list(args) + list(kwargs.values()))
              if a.dtype != object and not is_lazy_huge(a)]
    spans = sorted(((*byte_bounds(a), i) for i, a in enumerate(arrays)))
    groups, current = [], None
    for lo, hi, i in spans:
        if current is not None and lo < current[1]:
            current[1] = max(current[1], hi)
            current[2].append(i)
        else:
            current = [lo, max(hi, lo), [i]]
            groups.append(current)
    replacement = {}
    for lo, hi, members in groups:
        size = max(hi - lo, 1)
        buf = _aligned_empty(size, align_mod=lo % 64)
        if hi > lo:
            ctypes.memmove(buf.__array_interface__["data"][0], lo, hi - lo)
        for i in members:
            a = arrays[i]
            offset = a.__array_interface__["data"][0] - lo
            b = np.ndarray(a.shape, a.dtype, buffer=buf, offset=offset, strides=a.strides)
            if type(a) is not np.ndarray:
                b = b.view(type(a))
            if not a.flags.writeable:
                b.flags.writeable = False
            replacement[id(a)] = b
    new_args = [replacement.get(id(v), v) for v in args]
    new_kwargs = {k: replacement.get(id(v), v) for k, v in kwargs.items()}
    return new_args, new_kwargs


def snapshot(objs):
    """(array, copy of its values) for every array that is not lazily huge."""
    return [(a, np.array(a, copy=True, subok=False)) for a in _arrays_in(objs)
            if not is_lazy_huge(a)]


def unchanged(a, before):
    now = np.asarray(a)
    if now.dtype == object:
        return all(x is y or x == y or (x != x and y != y)
                   for x, y in zip(now.ravel().tolist(), before.ravel().tolist()))
    if now.dtype.kind in "fc":
        return np.array_equal(now, before, equal_nan=True)
    return np.array_equal(now, before)


# ============================================================================ dl
# Strategies for the dl entry points (tests/dl/test_fuzz_dl.py).

def bad_data():
    """x or y values that are not a usable batch of numbers."""
    return st.one_of(
        st.sampled_from([None, "abc", 3, 3.5, [], [[]], [[1.0, 2.0], [3.0]], [[1, "a"]],
                         {"x": 1}, object(), np.array("s"), np.array(["a", "b"]),
                         np.array([[1 + 1j, 2j]]), np.zeros((0, 2)), np.zeros((2, 0)),
                         np.array(1.0), np.array([[None, None]], dtype=object),
                         np.array([[1.0, 2.0]], dtype=object), np.zeros((3, 2), "m8[s]"),
                         np.zeros((3, 2), "M8[s]"), np.zeros((3,), [("a", "f8"), ("b", "f8")]),
                         b"\x00\x01", Weird(), WeirdLen()]),
        any_array())


def batch_sizes():
    return st.one_of(st.sampled_from([0, -1, 1.5, 2.0, "32", True, False, np.float64(4.0),
                                      np.int64(0), 10**30, -10**30, [], np.nan]),
                     st.integers(-5, 0), bad_scalars())


def epochs_values():
    return st.one_of(st.sampled_from([-1, -10**20, 1.5, "2", None, True, np.nan, np.inf,
                                      2.0, np.float32(1.0)]), bad_scalars())


def validation_splits():
    return st.one_of(st.sampled_from([-0.1, 1.0, 1.5, np.nan, np.inf, -np.inf, "0.2", True,
                                      None, [0.2], 1e-300, 1 - 1e-16]),
                     st.floats(allow_nan=True), bad_scalars())


@st.composite
def validation_datas(draw, n_in, n_out):
    good_x = np.zeros((3, n_in), np.float32)
    good_y = np.zeros((3, n_out), np.float32)
    return draw(st.one_of(
        st.sampled_from([(good_x,), (good_x, good_y, good_y, good_y), [good_x], good_x,
                         "xy", 3, {"x": good_x, "y": good_y}, (None, None),
                         (good_x, None), (None, good_y), (good_x, good_y[:2]),
                         (good_x[:, :0], good_y), (good_x.T, good_y),
                         (np.full_like(good_x, np.nan), good_y),
                         (good_x, np.full_like(good_y, np.inf))]),
        st.tuples(bad_data(), bad_data()),
        st.tuples(st.just(good_x), bad_data()),
        st.tuples(bad_data(), st.just(good_y))))


# names and configs of compile's arguments
def bad_identifiers():
    return st.one_of(
        st.sampled_from(["", "nope", "SGD ", "Adam()", "mse2", "relu", "softmax", "accuracy2",
                         "Sequential", "__class__", "l2", 3, 3.5, None, True, [], (), {},
                         {"class_name": "Nope"}, {"class_name": "SGD", "config": "x"},
                         {"class_name": "SGD", "config": {"learning_rate": "fast"}},
                         {"class_name": "SGD", "config": {"bogus": 1}},
                         {"class_name": "SGD", "config": {"learning_rate": -1}},
                         {"class_name": "SGD", "config": {"learning_rate": np.nan}},
                         {"class_name": "Adam", "config": {"beta_1": 1.5}},
                         {"class_name": "Adam", "config": {"beta_1": "x"}},
                         {"class_name": "Adam", "config": {"epsilon": -1}},
                         {"class_name": "RMSprop", "config": {"rho": 2.0}},
                         {"class_name": "Adagrad", "config": {"initial_accumulator_value": -1}},
                         {"class_name": "MeanSquaredError", "config": {"reduction": "sum"}},
                         {"class_name": "Huber", "config": {"delta": "big"}},
                         {"class_name": "Huber", "config": {"delta": -1}},
                         {"class_name": "BinaryCrossentropy", "config": {"from_logits": "yes"}},
                         {"class_name": None}, {"config": {}}, {"class_name": ["SGD"]},
                         {"class_name": "SGD", "config": {"clipnorm": 1, "clipvalue": 1}},
                         {"class_name": "SGD", "config": {"momentum": 1.5}},
                         {"class_name": "SGD", "config": {"momentum": -0.5}},
                         {"class_name": "BinaryAccuracy", "config": {"threshold": "x"}},
                         {"class_name": "BinaryAccuracy", "config": {"threshold": np.nan}},
                         object(), Weird(), print, type, int, np.float32]),
        bad_scalars(),
        st.text(max_size=8))


# ------------------------------------------------------------- model files
def npz_bytes(arrays):
    """The bytes of an .npz holding ``arrays`` (name -> array), written by NumPy."""
    import io
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _utf8(text):
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


_GOOD_FILES = {}


def good_model_file(n_in=2, units=(3, 1), compiled=True, optimizer="adam"):
    """A valid saved model's parts: (config dict, weights list, optimizer state list).

    Deterministic (fixed names, seeds and data), so that strategies built on it draw
    the same choices from the same bytes; cached."""
    import copy

    import dl
    key = (n_in, tuple(units), compiled, optimizer)
    if key not in _GOOD_FILES:
        init = dl.initializers.GlorotUniform(seed=1)
        layers = [dl.layers.Dense(units[0], activation="relu", kernel_initializer=init,
                                  name="dense_in")]
        layers += [dl.layers.Dense(u, kernel_initializer=init, name=f"dense_{i}")
                   for i, u in enumerate(units[1:])]
        model = dl.Sequential(layers, name="fuzz_model", backend="numpy")
        model.seed = 1234
        model.build((None, n_in))
        if compiled:
            model.compile(optimizer=optimizer, loss="mse", metrics=["mae"])
            x = np.linspace(-1, 1, 4 * n_in, dtype=np.float32).reshape(4, n_in)
            model.train_on_batch(x, np.ones((4, units[-1]), np.float32))
        opt = model.optimizer.get_state() if compiled else []
        _GOOD_FILES[key] = (model._file_config(), model.get_weights(), opt)
    cfg, weights, opt = _GOOD_FILES[key]
    return copy.deepcopy(cfg), [w.copy() for w in weights], [a.copy() for a in opt]


JSON_GARBAGE = (None, 1, -1, 1.5, "x", "", [], [None], {}, {"a": {"b": []}}, True,
                [[[[[]]]]], 10**30, -10**30, 1e308, "Dense", "float16", "nan",
                {"class_name": "Dense"}, [2**62], [2**62, 2**62], [0], [-1], [1.5],
                ["2"], [None, 2], {"class_name": "Lambda", "config": {}})


@st.composite
def json_mutation(draw, cfg):
    """``cfg`` (a saved model's JSON config) with one value replaced by garbage,
    or a key removed, somewhere in the tree."""
    import copy
    cfg = copy.deepcopy(cfg)
    paths = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                paths.append(path + [k])
                walk(v, path + [k])
        elif isinstance(node, list):
            for i, v in enumerate(node):
                paths.append(path + [i])
                walk(v, path + [i])

    walk(cfg, [])
    path = draw(st.sampled_from(paths))
    parent = cfg
    for p in path[:-1]:
        parent = parent[p]
    key = path[-1]
    if isinstance(parent, dict) and draw(st.integers(0, 3)) == 0:
        del parent[key]
        return cfg, f"del {path}"
    parent[key] = draw(st.sampled_from(JSON_GARBAGE))
    return cfg, f"{path} = {parent[key]!r}"[:200]


@st.composite
def adversarial_model_file(draw):
    """(file bytes, description) of something that is not a loadable model: random
    bytes, a truncated or bit-flipped model, a hand-written .npz with bad headers,
    JSON configs with wrong types, unknown class names or nested garbage, weights
    of huge declared shapes, wrong dtypes, object arrays..."""
    cfg, weights, opt = good_model_file(optimizer=draw(st.sampled_from(
        ["adam", "sgd", "rmsprop", "adagrad", "adamw"])))
    header = {"format": "dlkernels-model", "version": 1, "kind": "model"}
    import json
    kind = draw(st.sampled_from(["random", "truncated", "bitflip", "header", "json",
                                 "config", "weights", "optimizer", "extra"]))

    def file(cfg_=cfg, weights_=weights, opt_=opt, header_=header, extra=None,
             raw_config=None, raw_header=None):
        arrays = {"__dlkernels__": raw_header if raw_header is not None
                  else _utf8(json.dumps(header_)),
                  "config": raw_config if raw_config is not None else _utf8(json.dumps(cfg_))}
        for i, w in enumerate(weights_):
            arrays[f"weights/{i}"] = w
        for i, a in enumerate(opt_):
            arrays[f"optimizer/{i}"] = a
        arrays.update(extra or {})
        return npz_bytes(arrays)

    good = file()
    if kind == "random":
        data = draw(st.binary(max_size=300))
        return (b"PK\x03\x04" + data if draw(st.booleans()) else data), "random bytes"
    if kind == "truncated":
        cut = draw(st.integers(0, len(good) - 1))
        return good[:cut], f"truncated at {cut}/{len(good)}"
    if kind == "bitflip":
        data = bytearray(good)
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        return bytes(data), "bit flips"
    if kind == "header":
        h = draw(st.sampled_from([
            {"format": "keras", "version": 1}, {"format": "dlkernels-model", "version": 2},
            {"format": "dlkernels-model", "version": "1"}, {"format": "dlkernels-model"},
            {"format": "dlkernels-model", "version": 1, "kind": "weights"},
            {"format": "dlkernels-model", "version": 1, "kind": 7}, [], "x", None, 3]))
        raw = draw(st.sampled_from([None, np.array([1.5, 2.0]), np.array(["a"]),
                                    np.frombuffer(b"\xff\xfe", np.uint8),
                                    np.zeros((2, 2), np.uint8)]))
        return file(header_=h, raw_header=raw), f"header {h!r} raw {raw!r}"
    if kind == "json":
        raw = draw(st.sampled_from([_utf8("{"), _utf8("null"), _utf8("[]"), _utf8('"x"'),
                                    _utf8("1e999"), _utf8("NaN"), _utf8('{"class_name": 1}'),
                                    np.frombuffer(b"\xff\xfe\x00", np.uint8),
                                    np.array([1.0, 2.0]), np.zeros((2, 2), np.uint8),
                                    _utf8("[" * 100000 + "]" * 100000)]))
        return file(raw_config=raw), f"config bytes {bytes(np.asarray(raw).tobytes()[:40])!r}"
    if kind == "config":
        new_cfg, what = draw(json_mutation(cfg))
        return file(cfg_=new_cfg), f"config {what}"
    if kind == "weights":
        i = draw(st.integers(0, len(weights) - 1))
        w = weights[i]
        bad = draw(st.sampled_from([
            "huge", "object", "complex", "bool", "int", "float16", "shape", "scalar",
            "missing", "nan", "extra", "str", "float64", "fortran", "structured"]))
        new = list(weights)
        if bad == "huge":
            # a header declaring an enormous shape over a few bytes of data
            shp = draw(st.sampled_from([(2**40, 3), (2**62,), (3, 2**61), (2**31, 2**31)]))
            return (_npz_with_raw_member(file(weights_=new), f"weights/{i}.npy", w.dtype, shp),
                    f"weights/{i} declares the shape {shp}")
        if bad == "missing":         # a gap in the numbering, or one weight fewer
            rest = {f"weights/{j}": v for j, v in enumerate(new) if j > i}
            return file(weights_=new[:i], extra=rest), f"weights/{i} missing"
        if bad == "extra":
            new.append(np.ones(3, np.float32))
            return file(weights_=new), "an extra weight"
        new[i] = {
            "object": np.array([None] * 3, dtype=object), "complex": w.astype(np.complex64),
            "bool": w > 0, "int": w.astype(np.int64), "float16": w.astype(np.float16),
            "shape": np.ones(w.shape + (2,), w.dtype), "scalar": np.array(1.0, w.dtype),
            "nan": np.full_like(w, np.nan), "str": np.array(["a"] * max(w.size, 1)),
            "float64": w.astype(np.float64), "fortran": np.asfortranarray(w),
            "structured": np.zeros(w.shape, [("a", "f4")]),
        }[bad]
        if bad == "object":
            return _npz_object_member(file(), f"weights/{i}"), f"weights/{i} object"
        return file(weights_=new), f"weights/{i} {bad}"
    if kind == "optimizer":
        new = list(opt)
        what = draw(st.sampled_from(["drop", "extra", "shape", "iterations", "nan", "huge",
                                     "negative"]))
        if what == "drop" and new:
            new.pop(draw(st.integers(0, len(new) - 1)))
        elif what == "extra":
            new.append(np.ones(2, np.float32))
        elif what == "shape" and len(new) > 1:
            j = draw(st.integers(1, len(new) - 1))
            new[j] = np.ones(new[j].shape + (1,), new[j].dtype)
        elif what == "iterations" and new:
            new[0] = draw(st.sampled_from([np.array([1, 2]), np.array(2.5), np.array(-5),
                                           np.array(2**63 - 1, np.int64), np.ones((2, 2)),
                                           np.array(True), np.zeros(0)]))
        elif what == "nan" and len(new) > 1:
            new[1] = np.full_like(new[1], np.nan)
        elif what == "huge" and new:
            return _npz_with_raw_member(file(opt_=new), "optimizer/1.npy", np.float32,
                                        (2**40,)), "optimizer/1 declares a huge shape"
        elif what == "negative" and new:
            new[0] = np.array(-(2**62))
        return file(opt_=new), f"optimizer {what}"
    extra = draw(st.sampled_from([{"weights/x": np.ones(2)}, {"optimizer/-1": np.ones(2)},
                                  {"weights/99": np.ones(2)}, {"../evil": np.ones(2)},
                                  {"config2": np.ones(2)}]))
    return file(extra=extra), f"extra members {list(extra)}"


def _npz_rewrite(data, name, payload):
    import io
    import zipfile
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            dst.writestr(item.filename, payload if item.filename == name else src.read(item))
        if name not in src.namelist():
            dst.writestr(name, payload)
    return out.getvalue()


def _npy_header(dtype, shp, fortran=False):
    """A valid .npy (version 1) header declaring ``shp`` (no data follows it)."""
    header = repr({"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                   "fortran_order": fortran, "shape": tuple(shp)})
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode("latin1")


def _npz_with_raw_member(data, name, dtype, shp):
    """``data`` (an .npz) with member ``name`` replaced by a header declaring ``shp``
    followed by 16 bytes: a file claiming terabytes of weights."""
    return _npz_rewrite(data, name, _npy_header(dtype, shp) + b"\x00" * 16)


def _npz_object_member(data, key):
    """``data`` with array ``key`` replaced by a pickled object array (what
    ``allow_pickle=False`` must refuse)."""
    import io
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.array([None, 1], dtype=object), allow_pickle=True)
    return _npz_rewrite(data, key + ".npy", buf.getvalue())
