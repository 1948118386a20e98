"""Weight initializers, by object and by name, with Keras 3's formulas and defaults.

Unseeded initializers draw from ``dl.utils``'s global generator, so
``dl.utils.set_random_seed`` makes them deterministic; a seeded one draws from a
generator of its own.  Fans are Keras's: for a Dense kernel of shape (n_in, units),
fan_in = n_in and fan_out = units.
"""
import math

import numpy as np

from . import _serial, config, utils
from kernels.checks import describe, short_repr

# A normal truncated at two standard deviations has this standard deviation (Keras
# divides by it so that truncated initializers keep the intended variance).
_TRUNCATED_STD = 0.87962566103423978


def _fans(shape, input_axes=None, output_axes=None):
    if input_axes is not None and output_axes is not None:
        return (math.prod(shape[a] for a in input_axes),
                math.prod(shape[a] for a in output_axes))
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _axes(name, axes):
    """None, or a list of int axes (Keras's VarianceScaling input/output axes)."""
    if axes is None:
        return None
    if isinstance(axes, (int, np.integer)) and not isinstance(axes, bool):
        axes = [axes]
    if not isinstance(axes, (list, tuple)) or not all(
            isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes):
        raise TypeError(f"{name}: expected None or a list of ints, got {describe(axes)}")
    return [int(a) for a in axes]


def _float(name, value):
    """float(value), with a named error for what is not a number (or overflows)."""
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        raise (ValueError if isinstance(value, (int, float)) else TypeError)(
            f"{name}: expected a real number, got {describe(value)}") from None


class Initializer(_serial.Configurable):
    """Base class: ``init(shape, dtype=None)`` returns a new array."""

    def __call__(self, shape, dtype=None):
        raise NotImplementedError


class _Seeded(Initializer):
    def __init__(self, seed=None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed: expected an int or None, got {describe(seed)}")
        self.seed = seed

    def _rng(self):
        # Keras: a seeded initializer gives the same values at every call.
        return utils.make_rng(self.seed)

    def get_config(self):
        return {"seed": self.seed}


class Zeros(Initializer):
    def __call__(self, shape, dtype=None):
        return np.zeros(shape, dtype=config.resolve_dtype(dtype))


class Ones(Initializer):
    def __call__(self, shape, dtype=None):
        return np.ones(shape, dtype=config.resolve_dtype(dtype))


class Constant(Initializer):
    """Every element ``value``: a number, or an array broadcast to the weight's shape
    (as Keras's ``value * ones(shape)``)."""

    def __init__(self, value=0.0):
        if isinstance(value, (list, tuple, np.ndarray)):
            arr = np.asarray(value)
            if arr.dtype.kind not in "biuf" or not np.isfinite(arr).all():
                raise ValueError(f"value: expected finite numbers, got {short_repr(value)}")
            self.value = arr.astype(np.float64)
        else:
            self.value = _float("value", value)

    @classmethod
    def _exactly(cls, array):
        """The initializer ``get(array)`` gives: that array, for a weight of its shape."""
        init = cls(array)
        init._exact = True
        return init

    def __call__(self, shape, dtype=None):
        dtype = config.resolve_dtype(dtype)
        if getattr(self, "_exact", False) and tuple(shape) != self.value.shape:
            # (named after the layer argument the array was given as, when known)
            raise ValueError(f"{getattr(self, '_argument', 'value')}: an array of shape "
                             f"{self.value.shape} initializes a weight of that shape only, "
                             f"got a weight of shape {tuple(shape)}")
        if isinstance(self.value, np.ndarray):
            try:
                return np.ascontiguousarray(np.broadcast_to(self.value, shape), dtype=dtype)
            except ValueError:
                raise ValueError(f"value: an array of shape {self.value.shape} does not "
                                 f"broadcast to the weight's shape {tuple(shape)}") from None
        return np.full(shape, self.value, dtype=dtype)

    def get_config(self):
        value = self.value
        return {"value": value.tolist() if isinstance(value, np.ndarray) else value}


class RandomNormal(_Seeded):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = _float("mean", mean), _float("stddev", stddev)

    def __call__(self, shape, dtype=None):
        x = self._rng().normal(self.mean, self.stddev, size=shape)
        return x.astype(config.resolve_dtype(dtype))

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class RandomUniform(_Seeded):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = _float("minval", minval), _float("maxval", maxval)

    def __call__(self, shape, dtype=None):
        x = self._rng().uniform(self.minval, self.maxval, size=shape)
        return x.astype(config.resolve_dtype(dtype))

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class TruncatedNormal(_Seeded):
    """Normal values redrawn when beyond two standard deviations from the mean."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = _float("mean", mean), _float("stddev", stddev)

    def __call__(self, shape, dtype=None):
        return _truncated(self._rng(), self.mean, self.stddev, shape, dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


def _truncated(rng, mean, stddev, shape, dtype):
    x = rng.standard_normal(size=shape)
    bad = np.abs(x) > 2
    while bad.any():
        x[bad] = rng.standard_normal(size=int(bad.sum()))
        bad = np.abs(x) > 2
    return (mean + stddev * x).astype(config.resolve_dtype(dtype))


class VarianceScaling(_Seeded):
    """Keras's VarianceScaling: variance ``scale / n`` with n = fan_in, fan_out or their
    mean (``mode``); distribution "truncated_normal", "untruncated_normal" or "uniform"."""

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None,
                 input_axes=None, output_axes=None):
        super().__init__(seed)
        self.input_axes = _axes("input_axes", input_axes)
        self.output_axes = _axes("output_axes", output_axes)
        scale = _float("scale", scale)
        if not scale > 0:
            raise ValueError(f"scale: expected a positive number, got {scale}")
        if not isinstance(mode, str) or mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"mode: expected 'fan_in', 'fan_out' or 'fan_avg', got "
                             f"{short_repr(mode)}")
        if not isinstance(distribution, str) or distribution not in (
                "truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(f"distribution: expected 'truncated_normal', "
                             f"'untruncated_normal' or 'uniform', got {short_repr(distribution)}")
        self.scale, self.mode, self.distribution = scale, mode, distribution

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        for name, axes in (("input_axes", self.input_axes), ("output_axes", self.output_axes)):
            if axes is not None and any(not -len(shape) <= a < len(shape) for a in axes):
                raise ValueError(f"{name}: axes {axes} are outside a weight of shape {shape}")
        fan_in, fan_out = _fans(shape, self.input_axes, self.output_axes)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        scale = self.scale / max(1.0, n)
        rng = self._rng()
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * scale)
            return rng.uniform(-limit, limit, size=shape).astype(config.resolve_dtype(dtype))
        if self.distribution == "untruncated_normal":
            return (rng.standard_normal(size=shape) * math.sqrt(scale)).astype(
                config.resolve_dtype(dtype))
        return _truncated(rng, 0.0, math.sqrt(scale) / _TRUNCATED_STD, shape, dtype)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                "seed": self.seed, "input_axes": self.input_axes,
                "output_axes": self.output_axes}


class Orthogonal(_Seeded):
    """Keras's Orthogonal: the Q of a QR decomposition of a normal matrix (signs fixed
    by R's diagonal), of shape (prod(shape[:-1]), shape[-1]) -- orthogonal rows when it
    is wide, columns when tall -- times ``gain``, reshaped to the weight's shape."""

    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed)
        self.gain = _float("gain", gain)

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError(f"shape: the Orthogonal initializer needs a weight of at least "
                             f"two dimensions, got {shape}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = self._rng().standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q.reshape(shape)).astype(config.resolve_dtype(dtype))

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


class Identity(Initializer):
    """Keras's Identity (``IdentityInitializer``): ``gain * eye(rows, cols)`` for a 2-D
    weight."""

    def __init__(self, gain=1.0):
        self.gain = _float("gain", gain)

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        if len(shape) != 2:
            raise ValueError(f"shape: Identity matrix initializer can only be used for 2D "
                             f"matrices, got {shape}")
        return (self.gain * np.eye(*shape)).astype(config.resolve_dtype(dtype))

    def get_config(self):
        return {"gain": self.gain}


def _variance_scaling(name, scale, mode, distribution, doc):
    class _Init(VarianceScaling):
        __doc__ = doc

        def __init__(self, seed=None, input_axes=None, output_axes=None):
            super().__init__(scale, mode, distribution, seed, input_axes, output_axes)

        def get_config(self):
            return {"seed": self.seed, "input_axes": self.input_axes,
                    "output_axes": self.output_axes}

    _Init.__name__ = _Init.__qualname__ = name
    return _Init


GlorotUniform = _variance_scaling(
    "GlorotUniform", 1.0, "fan_avg", "uniform",
    "U(-l, l) with l = sqrt(6 / (fan_in + fan_out)) (Keras's Dense default).")
GlorotNormal = _variance_scaling(
    "GlorotNormal", 1.0, "fan_avg", "truncated_normal",
    "Truncated normal with stddev sqrt(2 / (fan_in + fan_out)).")
HeUniform = _variance_scaling(
    "HeUniform", 2.0, "fan_in", "uniform", "U(-l, l) with l = sqrt(6 / fan_in).")
HeNormal = _variance_scaling(
    "HeNormal", 2.0, "fan_in", "truncated_normal",
    "Truncated normal with stddev sqrt(2 / fan_in).")
LecunUniform = _variance_scaling(
    "LecunUniform", 1.0, "fan_in", "uniform", "U(-l, l) with l = sqrt(3 / fan_in).")
LecunNormal = _variance_scaling(
    "LecunNormal", 1.0, "fan_in", "truncated_normal",
    "Truncated normal with stddev sqrt(1 / fan_in).")

_CLASSES = {c.__name__: c for c in (
    Zeros, Ones, Constant, RandomNormal, RandomUniform, TruncatedNormal, VarianceScaling,
    Orthogonal, Identity,
    GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform, LecunNormal)}
_ALIASES = {
    "zeros": Zeros, "ones": Ones, "constant": Constant, "random_normal": RandomNormal,
    "random_uniform": RandomUniform, "truncated_normal": TruncatedNormal,
    # Keras 3's short aliases (Embedding's default is "uniform")
    "uniform": RandomUniform, "normal": RandomNormal, "one": Ones, "zero": Zeros,
    "variance_scaling": VarianceScaling, "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal, "he_uniform": HeUniform, "he_normal": HeNormal,
    "lecun_uniform": LecunUniform, "lecun_normal": LecunNormal,
    "orthogonal": Orthogonal, "OrthogonalInitializer": Orthogonal, "identity": Identity,
    "IdentityInitializer": Identity,
}


def get(identifier):
    """An initializer from a name ("glorot_uniform"), a config dict or an instance;
    None for None (the layer's default then applies), and an array for a weight of
    exactly its shape (as Keras)."""
    if isinstance(identifier, np.ndarray):
        return Constant._exactly(identifier)
    return _serial.resolve(identifier, "initializer", _CLASSES, _ALIASES, Initializer,
                           allow_none=True)


def serialize(initializer):
    return _serial.serialize(initializer)
