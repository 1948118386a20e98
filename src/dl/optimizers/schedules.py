"""Learning-rate schedules (Keras 3's ``keras.optimizers.schedules``).

A schedule is a function of the optimizer's step count: pass one as any optimizer's
``learning_rate`` and every training step uses ``schedule(optimizer.iterations)``, the
count of steps applied before it (0 for the first step), as Keras does.  The formulas
are Keras's (``keras/src/optimizers/schedules/learning_rate_schedule.py``), computed in
double precision (Keras computes them in float32: the values agree to float32's
rounding).  Each schedule round-trips through ``get_config`` / ``from_config`` and
``serialize`` / ``deserialize``.
"""
import math

import numpy as np

from kernels.checks import describe, flag, short_repr

from .. import _serial
from .._args import optional_str


def _number(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a number, got {describe(value)}")
    try:
        value = float(value)
    except OverflowError:
        raise ValueError(f"{name}: expected a finite number, got {short_repr(value)}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    return value


def _rate(name, value):
    """A learning rate: a finite number >= 0."""
    value = _number(name, value)
    if value < 0:
        raise ValueError(f"{name}: expected a learning rate >= 0, got {value}")
    return value


def _steps(name, value, allow_zero=False):
    """A step count > 0 (>= 0 with ``allow_zero``): an int, or a float as Keras takes,
    kept as given."""
    number = _number(name, value)
    if number < 0 or (number == 0 and not allow_zero):
        raise ValueError(f"{name}: expected a number of steps {'>=' if allow_zero else '>'} "
                         f"0, got {number}")
    return _keep(value)


def _keep(value):
    """A validated constructor argument as get_config returns it: ints stay ints."""
    return int(value) if isinstance(value, (int, np.integer)) else float(value)


def _step(step):
    """The step a schedule is called with, as a float (an int, a float, a NumPy scalar
    or a 0-d array)."""
    if isinstance(step, np.ndarray) and step.ndim == 0:
        step = step[()]
    if isinstance(step, (bool, np.bool_)) or not isinstance(
            step, (int, float, np.integer, np.floating)):
        raise TypeError(f"step: expected a number (the optimizer's iteration count), got "
                        f"{describe(step)}")
    step = float(step)
    if math.isnan(step):
        raise ValueError("step: expected a number, got nan")
    return step


class LearningRateSchedule:
    """Base class: override ``__call__(self, step)`` (and ``get_config`` to be
    serializable).  ``step`` is the number of steps applied so far."""

    def __call__(self, step):
        raise NotImplementedError(f"Learning rate schedule '{type(self).__name__}' must "
                                  f"override `__call__(self, step)`.")

    def get_config(self):
        raise NotImplementedError(f"Learning rate schedule '{type(self).__name__}' must "
                                  f"override `get_config()` in order to be serializable.")

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        try:
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        except NotImplementedError:
            args = ""
        return f"{type(self).__name__}({args})"


class ExponentialDecay(LearningRateSchedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``; with
    ``staircase`` the exponent is floored."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="ExponentialDecay"):
        self.initial_learning_rate = _rate("initial_learning_rate", initial_learning_rate)
        self.decay_steps = _steps("decay_steps", decay_steps)
        self.decay_rate = _number("decay_rate", decay_rate)
        self.staircase = flag("staircase", staircase)
        self.name = optional_str("name", name)

    def __call__(self, step):
        p = _step(step) / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * self.decay_rate ** p

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` while
    ``boundaries[i-1] < step <= boundaries[i]``, ``values[-1]`` after the last."""

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        if not isinstance(boundaries, (list, tuple)) or not isinstance(values, (list, tuple)):
            raise TypeError(f"boundaries, values: expected two lists of numbers, got "
                            f"{describe(boundaries)} and {describe(values)}")
        if len(boundaries) != len(values) - 1:
            raise ValueError(f"The length of boundaries should be 1 less than the length of "
                             f"values. Received: boundaries={boundaries} of length "
                             f"{len(boundaries)}, and values={values} of length "
                             f"{len(values)}.")
        bounds = [_number(f"boundaries[{i}]", b) for i, b in enumerate(boundaries)]
        if any(b >= c for b, c in zip(bounds, bounds[1:])):
            raise ValueError(f"boundaries: expected strictly increasing numbers, got "
                             f"{short_repr(list(boundaries))}")
        self._bounds = bounds
        self._values = [_rate(f"values[{i}]", v) for i, v in enumerate(values)]
        self.boundaries = [_keep(b) for b in boundaries]
        self.values = [_keep(v) for v in values]
        self.name = optional_str("name", name)

    def __call__(self, step):
        step = _step(step)
        for bound, value in zip(self._bounds, self._values):
            if step <= bound:
                return value
        return self._values[-1]

    def get_config(self):
        return {"boundaries": list(self.boundaries), "values": list(self.values),
                "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """``(initial - end) * (1 - step / decay_steps) ** power + end``, the step held
    at ``decay_steps``; with ``cycle`` the decay restarts over the first multiple of
    ``decay_steps`` that is >= step."""

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001,
                 power=1.0, cycle=False, name="PolynomialDecay"):
        self.initial_learning_rate = _rate("initial_learning_rate", initial_learning_rate)
        self.decay_steps = _steps("decay_steps", decay_steps)
        self.end_learning_rate = _rate("end_learning_rate", end_learning_rate)
        self.power = _number("power", power)
        self.cycle = flag("cycle", cycle)
        self.name = optional_str("name", name)

    def __call__(self, step):
        step = _step(step)
        decay_steps = float(self.decay_steps)
        if self.cycle:
            decay_steps *= 1.0 if step == 0 else math.ceil(step / decay_steps)
        else:
            step = min(step, decay_steps)
        p = step / decay_steps
        return ((self.initial_learning_rate - self.end_learning_rate) * (1 - p) ** self.power
                + self.end_learning_rate)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "end_learning_rate": self.end_learning_rate,
                "power": self.power, "cycle": self.cycle, "name": self.name}


class InverseTimeDecay(LearningRateSchedule):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)``; with
    ``staircase`` the ratio is floored."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="InverseTimeDecay"):
        self.initial_learning_rate = _rate("initial_learning_rate", initial_learning_rate)
        self.decay_steps = _steps("decay_steps", decay_steps)
        self.decay_rate = _number("decay_rate", decay_rate)
        self.staircase = flag("staircase", staircase)
        self.name = optional_str("name", name)

    def __call__(self, step):
        p = _step(step) / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate / (1.0 + self.decay_rate * p)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


def _cosine(fraction):
    return 0.5 * (1.0 + math.cos(math.pi * fraction))


class CosineDecay(LearningRateSchedule):
    """Cosine decay with an optional linear warmup.

    Without ``warmup_target``: ``initial * ((1 - alpha) * c + alpha)`` with
    ``c = 0.5 (1 + cos(pi * min(step, decay_steps) / decay_steps))``.  With it: a linear
    ramp from ``initial_learning_rate`` to ``warmup_target`` over ``warmup_steps``, then
    the same decay from ``warmup_target`` over ``decay_steps``.
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay",
                 warmup_target=None, warmup_steps=0):
        self.initial_learning_rate = _rate("initial_learning_rate", initial_learning_rate)
        self.decay_steps = _steps("decay_steps", decay_steps)
        self.alpha = _number("alpha", alpha)
        self.name = optional_str("name", name)
        self.warmup_target = (None if warmup_target is None
                              else _rate("warmup_target", warmup_target))
        self.warmup_steps = _steps("warmup_steps", warmup_steps, allow_zero=True)

    def _decay(self, step, start):
        decayed = (1.0 - self.alpha) * _cosine(step / self.decay_steps) + self.alpha
        return start * decayed

    def __call__(self, step):
        step = _step(step)
        if self.warmup_target is None:
            return self._decay(min(step, self.decay_steps), self.initial_learning_rate)
        step = min(step, self.decay_steps + self.warmup_steps)
        if step < self.warmup_steps:
            fraction = step / self.warmup_steps
            return ((self.warmup_target - self.initial_learning_rate) * fraction
                    + self.initial_learning_rate)
        return self._decay(step - self.warmup_steps, self.warmup_target)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha, "name": self.name,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(LearningRateSchedule):
    """SGDR: cosine decay from 1 to ``alpha`` over ``first_decay_steps``, then warm
    restarts, each ``t_mul`` times longer and starting ``m_mul`` times lower."""

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0,
                 alpha=0.0, name="SGDRDecay"):
        self.initial_learning_rate = _rate("initial_learning_rate", initial_learning_rate)
        self.first_decay_steps = _steps("first_decay_steps", first_decay_steps)
        t_mul = _number("t_mul", t_mul)
        if t_mul <= 0:
            raise ValueError(f"t_mul: expected a number > 0, got {t_mul}")
        self.t_mul = t_mul
        self.m_mul = _number("m_mul", m_mul)
        self.alpha = _number("alpha", alpha)
        self.name = optional_str("name", name)

    def __call__(self, step):
        fraction = _step(step) / self.first_decay_steps
        t_mul = self.t_mul
        if t_mul == 1.0:
            restart = math.floor(fraction)
            fraction -= restart
        else:
            remaining = 1.0 - fraction * (1.0 - t_mul)
            if remaining <= 0:     # t_mul < 1: the periods add up to a finite length
                raise ValueError(f"step: {step} is past the end of every restart period "
                                 f"of this schedule (t_mul={t_mul} < 1 makes them add up "
                                 f"to {self.first_decay_steps / (1 - t_mul)} steps)")
            restart = math.floor(math.log(remaining) / math.log(t_mul))
            done = (1.0 - t_mul ** restart) / (1.0 - t_mul)
            fraction = (fraction - done) / t_mul ** restart
        decayed = self.m_mul ** restart * _cosine(fraction)
        return self.initial_learning_rate * ((1.0 - self.alpha) * decayed + self.alpha)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "first_decay_steps": self.first_decay_steps, "t_mul": self.t_mul,
                "m_mul": self.m_mul, "alpha": self.alpha, "name": self.name}


_CLASSES = {c.__name__: c for c in (ExponentialDecay, PiecewiseConstantDecay,
                                    PolynomialDecay, InverseTimeDecay, CosineDecay,
                                    CosineDecayRestarts)}


def serialize(schedule):
    """``{"class_name": ..., "config": ...}`` of a schedule."""
    if not isinstance(schedule, LearningRateSchedule):
        raise TypeError(f"schedule: expected a LearningRateSchedule, got "
                        f"{describe(schedule)}")
    return _serial.serialize(schedule)


def deserialize(config):
    """A schedule from what :func:`serialize` returned (or Keras wrote: its extra
    ``module`` / ``registered_name`` keys are ignored)."""
    if not isinstance(config, dict):
        raise TypeError(f"config: expected a dict with 'class_name' and 'config', got "
                        f"{describe(config)}")
    return _serial.resolve(config, "learning rate schedule", _CLASSES, {},
                           LearningRateSchedule)


def get(identifier):
    """A schedule from an instance or a config dict."""
    if isinstance(identifier, LearningRateSchedule):
        return identifier
    return deserialize(identifier)
