"""Checks of dl's own kinds of arguments: names and file paths.

Everything else (numbers, flags, array sizes) is checked with ``kernels.checks``, the
public module whose helpers and message wording the kernels use too: a bad argument
raises ``TypeError`` (wrong type) or ``ValueError`` (wrong value) whose message starts
with the argument's name, then says what was expected and what was received
(``min_delta: expected a real number, got str 'x'``).
"""
import os

from kernels.checks import describe, short_repr

__all__ = ["optional_str", "path"]


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
        raise ValueError(f"{name}: expected a path without NUL characters, got "
                         f"{short_repr(value)}")
    return value
