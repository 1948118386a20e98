"""Checks of the arguments of dl's entry points.

A bad argument raises ``TypeError`` (wrong type) or ``ValueError`` (wrong value) whose
message starts with the argument's name, then says what was expected and what was
received (``min_delta: expected a real number, got str 'x'``), as the kernels' own
checks do (``kernels._checks``).
"""
import math
import numbers
import os

import numpy as np
from kernels import _checks
from kernels._checks import MAX_BYTES, _describe, _repr

__all__ = ["MAX_BYTES", "describe", "fits", "flag", "integer", "optional_str", "path", "real",
           "_repr"]


# What a value is, for a message (the kernels' own wording).
describe = _describe


def real(name, value, low=None, low_open=False):
    """A finite real number (a bool is not one), >= ``low`` (> with ``low_open``)."""
    return _checks.real(name, value, low=low, low_open=low_open)


def integer(name, value, low=None):
    """An int (Python or NumPy; a bool is not one) >= ``low``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int, got {describe(value)}")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{name}: expected an int >= {low}, got {_repr(value)}")
    return value


def flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {describe(value)}")
    return bool(value)


def optional_str(name, value):
    """A name argument: None (a default is made) or a str."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name}: expected a str or None, got {describe(value)}")
    return value


def path(name, value):
    """A file path argument: a non-empty str, or an os.PathLike naming one."""
    if isinstance(value, os.PathLike):
        try:
            value = os.fspath(value)
        except TypeError:
            raise TypeError(f"{name}: expected a str or os.PathLike path, got "
                            f"{describe(value)} whose __fspath__ returns no str") from None
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected a str or os.PathLike path, got {describe(value)}")
    if not value:
        raise ValueError(f"{name}: expected a non-empty path, got ''")
    if "\x00" in value:
        raise ValueError(f"{name}: expected a path without NUL characters, got {_repr(value)}")
    return value


def fits(name, shape, itemsize, what="an array"):
    """Refuse, before allocating anything, ``shape`` items of ``itemsize`` bytes that this
    machine's memory cannot hold (a lazily huge view, a gigantic layer)."""
    nbytes = math.prod(shape) * itemsize
    if nbytes > MAX_BYTES:
        raise ValueError(f"{name}: expected {what} that fits in memory (at most {MAX_BYTES} "
                         f"bytes here), got shape {_repr(tuple(shape))} of {_repr(nbytes)} "
                         f"bytes")
