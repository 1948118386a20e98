"""Weight regularizers (Keras 3): penalties added to the loss, and their gradients.

``L2(l2)`` adds ``l2 * sum(w^2)`` (no 1/2, so its gradient is ``2 * l2 * w``);
``L1(l1)`` adds ``l1 * sum(|w|)``; ``L1L2`` both.  Keras's defaults are 0.01.
"""
import numpy as np

from . import _serial
from kernels.checks import describe


class Regularizer(_serial.Configurable):
    def __call__(self, w):
        """The penalty for weights ``w`` (a float)."""
        raise NotImplementedError

    def add_gradient(self, w, grad):
        """``grad += d(penalty)/dw``, in place."""
        raise NotImplementedError

    # What the training loop calls, with the backend's array operations (``ops``).  A
    # regularizer written for NumPy arrays works on any backend through these: on the
    # cuda backend its arrays are read back and its gradient sent again (L1L2 stays on
    # the device).
    def add_penalty(self, ops, acc, w, weight=1.0):
        """``acc[0] += weight * penalty(w)``."""
        ops.acc_add(acc, float(self(ops.to_host(w))), weight, 0.0)

    def add_gradient_on(self, ops, w, grad):
        """``grad += d(penalty)/dw`` in place, wherever ``grad`` lives."""
        if not ops.on_device:
            self.add_gradient(w, grad)
            return
        g = ops.to_host(grad)
        self.add_gradient(ops.to_host(w), g)
        ops.copy_from_host(grad, g)


def _coef(name, value):
    try:
        value = float(value)
    except (TypeError, ValueError, OverflowError):
        raise (ValueError if isinstance(value, (int, float)) else TypeError)(
            f"{name}: expected a finite number >= 0, got {describe(value)}") from None
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {value}")
    return value


class L1L2(Regularizer):
    def __init__(self, l1=0.0, l2=0.0):
        # as Keras: None is 0 here, the default of L1 and L2 alone
        self.l1 = _coef("l1", 0.0 if l1 is None else l1)
        self.l2 = _coef("l2", 0.0 if l2 is None else l2)

    def __call__(self, w):
        penalty = 0.0
        if self.l1:
            penalty += self.l1 * float(np.abs(w).sum())
        if self.l2:
            penalty += self.l2 * float(np.square(w).sum())
        return penalty

    def add_gradient(self, w, grad):
        if self.l1:
            grad += self.l1 * np.sign(w)
        if self.l2:
            grad += (2 * self.l2) * w
        return grad

    def add_penalty(self, ops, acc, w, weight=1.0):
        if self.l1 or self.l2:
            ops.penalty_add(acc, w, self.l1 * weight, self.l2 * weight)

    def add_gradient_on(self, ops, w, grad):
        if self.l1 or self.l2:
            ops.penalty_grad(w, grad, self.l1, self.l2)

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    def __init__(self, l1=0.01):
        super().__init__(l1=0.01 if l1 is None else l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    def __init__(self, l2=0.01):
        super().__init__(l2=0.01 if l2 is None else l2)

    def get_config(self):
        return {"l2": self.l2}


_CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2}
_ALIASES = {"l1": L1, "l2": L2, "l1_l2": L1L2, "l1l2": L1L2}


def get(identifier):
    """A regularizer from None, a name ("l2"), a config dict or an instance."""
    return _serial.resolve(identifier, "regularizer", _CLASSES, _ALIASES, Regularizer,
                           allow_none=True)


def serialize(regularizer):
    return None if regularizer is None else _serial.serialize(regularizer)


# Keras's lower-case spellings: ``dl.regularizers.l2(0.001)``.
l1 = L1
l2 = L2
l1_l2 = L1L2
