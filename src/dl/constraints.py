"""Weight constraints (Keras 3's ``keras.constraints``): functions projecting a weight
array back into a set after every optimizer step (``Dense(kernel_constraint=...)``).

Formulas (Keras's; ``norms`` are the L2 norms along ``axis``, kept as dims, and
``eps = 1e-7``, Keras's ``backend.epsilon()``):

    MaxNorm(max_value=2, axis=0)     w * clip(norms, 0, max_value) / (eps + norms)
    MinMaxNorm(min_value=0, max_value=1, rate=1, axis=0)
                                     w * (rate * clip(norms, min, max)
                                          + (1 - rate) * norms) / (eps + norms)
    NonNeg()                         max(w, 0)
    UnitNorm(axis=0)                 w / (eps + norms)

A constraint is called on a NumPy array and returns one of the same shape and dtype.
"""
import math

import numpy as np

from kernels.checks import describe, short_repr

from . import _serial

EPSILON = 1e-7      # Keras's backend.epsilon()


class Constraint(_serial.Configurable):
    """Base class: ``__call__(w)`` returns the constrained weights."""

    def __call__(self, w):
        return w


def _axis(axis):
    if isinstance(axis, (list, tuple)):
        if not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axis):
            raise TypeError(f"axis: expected an int or a list of ints, got {describe(axis)}")
        return [int(a) for a in axis]
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis: expected an int or a list of ints, got {describe(axis)}")
    return int(axis)


def _number(name, value, low=0.0):
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)) or not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number >= {low}, got {short_repr(value)}")
    if value < low:
        raise ValueError(f"{name}: expected a finite number >= {low}, got {value}")
    return float(value) if isinstance(value, (float, np.floating)) else int(value)


def _norms(w, axis):
    try:
        return np.sqrt(np.sum(np.square(w), axis=tuple(axis) if isinstance(axis, list)
                              else axis, keepdims=True))
    except np.exceptions.AxisError:
        raise ValueError(f"axis: {axis} is outside a weight of shape {w.shape}") from None


class MaxNorm(Constraint):
    """Norms along ``axis`` at most ``max_value`` (each Dense unit's incoming weights
    with the default axis 0)."""

    def __init__(self, max_value=2, axis=0):
        self.max_value = _number("max_value", max_value)
        self.axis = _axis(axis)

    def __call__(self, w):
        w = np.asarray(w)
        norms = _norms(w, self.axis)
        desired = np.clip(norms, 0, self.max_value)
        return (w * (desired / (EPSILON + norms))).astype(w.dtype, copy=False)

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class MinMaxNorm(Constraint):
    """Norms along ``axis`` moved (at ``rate``) into ``[min_value, max_value]``."""

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value = _number("min_value", min_value)
        self.max_value = _number("max_value", max_value)
        if self.max_value < self.min_value:
            raise ValueError(f"max_value: expected a number >= min_value "
                             f"({self.min_value}), got {self.max_value}")
        self.rate = _number("rate", rate)
        self.axis = _axis(axis)

    def __call__(self, w):
        w = np.asarray(w)
        norms = _norms(w, self.axis)
        desired = (self.rate * np.clip(norms, self.min_value, self.max_value)
                   + (1 - self.rate) * norms)
        return (w * (desired / (EPSILON + norms))).astype(w.dtype, copy=False)

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value,
                "rate": self.rate, "axis": self.axis}


class NonNeg(Constraint):
    """Negative weights set to 0."""

    def __call__(self, w):
        w = np.asarray(w)
        return np.maximum(w, 0).astype(w.dtype, copy=False)


class UnitNorm(Constraint):
    """Norms along ``axis`` equal to 1."""

    def __init__(self, axis=0):
        self.axis = _axis(axis)

    def __call__(self, w):
        w = np.asarray(w)
        return (w / (EPSILON + _norms(w, self.axis))).astype(w.dtype, copy=False)

    def get_config(self):
        return {"axis": self.axis}


_CLASSES = {c.__name__: c for c in (Constraint, MaxNorm, MinMaxNorm, NonNeg, UnitNorm)}
_ALIASES = {"max_norm": MaxNorm, "min_max_norm": MinMaxNorm, "non_neg": NonNeg,
            "unit_norm": UnitNorm}

# Keras's lower-case spellings
max_norm, min_max_norm, non_neg, unit_norm = MaxNorm, MinMaxNorm, NonNeg, UnitNorm


def get(identifier):
    """A constraint from None, a name ("max_norm"), a config dict or an instance."""
    return _serial.resolve(identifier, "constraint", _CLASSES, _ALIASES, Constraint,
                           allow_none=True)


def serialize(constraint):
    return None if constraint is None else _serial.serialize(constraint)
