"""Optimizers, by object and by name, with Keras 3's formulas and defaults.

An optimizer keeps one set of state arrays per parameter array (momentum, moments...)
and updates each parameter in place with one fused kernel call per step
(``backend.adam_update`` ...).  ``iterations`` counts applied steps; Keras's
``t = iterations + 1`` is passed to the kernels.
"""
import math
import re
import warnings

import numpy as np

from kernels.checks import MAX_STEP, describe, flag, short_repr

from .. import _serial, config
from .._args import optional_str
from ..layers import _snake, _unique_name
from . import schedules


def _host_ops():
    """The host backend's array operations: where an optimizer keeps its state until
    :meth:`Optimizer.build` is told otherwise."""
    return config.get_backend("numpy").ops


def _positive(name, value, allow_zero=True):
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name}: expected a number, got {describe(value)}")
    try:
        value = float(value)
    except OverflowError:       # an int beyond the float range
        raise ValueError(f"{name}: expected a finite number, got {short_repr(value)}") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name}: expected a finite number {'>=' if allow_zero else '>'} 0, "
                         f"got {value}")
    return value


def _at_least_1d(a):
    """A 0-d array as a 1-d view of its element (the kernels update 1-d and more)."""
    return a.reshape(1) if getattr(a, "ndim", 1) == 0 else a


def _is_function(value):
    """A zero-argument callable giving the learning rate (Keras accepts one), not a
    class or a schedule."""
    return callable(value) and not isinstance(value, (type, schedules.LearningRateSchedule))


def _learning_rate_arg(value):
    """The ``learning_rate`` argument: a float >= 0, a schedule (or its config), or a
    function of no arguments."""
    if isinstance(value, schedules.LearningRateSchedule) or _is_function(value):
        return value
    if isinstance(value, dict):
        return schedules.deserialize(value)
    return _positive("learning_rate", value)


class Optimizer:
    """Base class: learning rate, decoupled weight decay and gradient clipping.

    Args:
        learning_rate: a float, a :mod:`dl.optimizers.schedules` schedule (or its
            config), or a function of no arguments returning the rate.
        weight_decay: None, or the decoupled decay: ``w -= w * weight_decay * lr``.
        clipnorm: clip each gradient to this L2 norm.
        clipvalue: clip each gradient element to [-clipvalue, clipvalue].
        global_clipnorm: clip all gradients together to this global L2 norm.
    """

    name = "optimizer"
    _slot_names = ()   # state arrays per parameter, in saving order

    def __init__(self, learning_rate=0.001, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None):
        self._learning_rate = _learning_rate_arg(learning_rate)
        self._lr = None          # the learning rate of the step being applied
        self.weight_decay = (None if weight_decay is None
                             else _positive("weight_decay", weight_decay))
        clips = [c for c in (clipnorm, clipvalue, global_clipnorm) if c is not None]
        if len(clips) > 1:
            raise ValueError("clipnorm, clipvalue, global_clipnorm: expected at most one of "
                             "them to be set, got several")
        self.clipnorm = None if clipnorm is None else _positive("clipnorm", clipnorm, False)
        self.clipvalue = None if clipvalue is None else _positive("clipvalue", clipvalue, False)
        self.global_clipnorm = (None if global_clipnorm is None
                                else _positive("global_clipnorm", global_clipnorm, False))
        # Keras's auto_name: the snake_case class name, numbered ("adam", "adam_1"...)
        self.name = (optional_str("name", name) if name is not None
                     else _unique_name(_snake(type(self).__name__)))
        self.iterations = 0
        self._slots = None
        self._ops = _host_ops()

    # learning rate ------------------------------------------------------------------
    @property
    def learning_rate(self):
        """The learning rate of the next step: the float given, or the schedule's value
        at :attr:`iterations`.  Settable (to a float or a schedule) between steps, as
        in Keras, unless the optimizer was created with a schedule."""
        return self._lr_at(self.iterations)

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, schedules.LearningRateSchedule) or _is_function(value):
            self._learning_rate = value
        elif isinstance(self._learning_rate, schedules.LearningRateSchedule):
            raise TypeError("This optimizer was created with a `LearningRateSchedule` object "
                            "as its `learning_rate` constructor argument, hence its learning "
                            "rate is not settable. If you need the learning rate to be "
                            "settable, you should instantiate the optimizer with a float "
                            "`learning_rate` argument.")
        else:
            self._learning_rate = _positive("learning_rate", value)

    def _lr_at(self, step):
        """The learning rate for the step after ``step`` applied ones, checked."""
        lr = self._learning_rate
        if type(lr) is float:
            return lr
        value = lr(step) if isinstance(lr, schedules.LearningRateSchedule) else lr()
        number = value[()] if isinstance(value, np.ndarray) and value.ndim == 0 else value
        checked = math.nan
        if isinstance(number, (int, float, np.integer, np.floating)) and \
                not isinstance(number, (bool, np.bool_)):
            checked = float(number)
        if not (0 <= checked < math.inf):
            raise ValueError(f"learning_rate: expected the schedule {short_repr(lr)} to "
                             f"return a finite number >= 0, got {short_repr(value)} at step "
                             f"{step}")
        return checked

    # state --------------------------------------------------------------------------
    @property
    def built(self):
        return self._slots is not None

    def build(self, params, ops=None):
        """Create the state arrays for a list of parameter arrays, where ``ops`` (a
        backend's array operations: host by default) keeps its arrays."""
        self._ops = _host_ops() if ops is None else ops
        params = list(params)
        self._slots = [{s: self._initial_slot(s, p) for s in self.slots_for(p)} for p in params]
        self._variables = params      # what apply() updates when not told

    def slots_for(self, param):
        return self._slot_names

    def _initial_slot(self, slot, param):
        return self._ops.zeros(param.shape, param.dtype)

    def get_state(self):
        """[iterations, every state array in order] as NumPy arrays: what saving stores."""
        arrays = [np.array(self.iterations, dtype=np.int64)]
        for slots in self._slots or []:
            arrays.extend(self._ops.to_host(slots[s]) for s in sorted(slots))
        return arrays

    def set_state(self, arrays, params, ops=None):
        """Restore what :meth:`get_state` returned (shapes checked)."""
        self.build(params, ops)
        expected = 1 + sum(len(s) for s in self._slots)
        if len(arrays) != expected:
            raise ValueError(f"optimizer state: expected {expected} arrays, got {len(arrays)}")
        iterations = np.asarray(arrays[0])
        # the next step (iterations + 1) must stay within the kernels' int64 step count
        if iterations.shape != () or iterations.dtype.kind not in "iu" or iterations < 0 \
                or int(iterations) >= MAX_STEP:
            raise ValueError(f"optimizer state: expected an integer iteration count in "
                             f"[0, {MAX_STEP}), got {short_repr(iterations)}")
        self.iterations = int(iterations)
        i = 1
        for slots in self._slots:
            for s in sorted(slots):
                a = np.asarray(arrays[i])
                if a.shape != slots[s].shape:
                    raise ValueError(f"optimizer state {s!r}: expected shape "
                                     f"{slots[s].shape}, got {a.shape}")
                self._ops.copy_from_host(slots[s], a)
                i += 1

    # one step -----------------------------------------------------------------------
    def _clip(self, grads):
        # through the backend's ops: on a device, norms are summed and applied there
        ops = self._ops
        if self.clipvalue is not None:
            for g in grads:
                ops.clip_value(g, self.clipvalue)
        elif self.clipnorm is not None:
            acc = self._norm_acc()
            for g in grads:
                ops.acc_reset(acc)
                ops.sum_squares(g, acc)
                ops.scale_to_norm(g, acc, self.clipnorm)
        elif self.global_clipnorm is not None:
            acc = self._norm_acc()
            ops.acc_reset(acc)
            for g in grads:
                ops.sum_squares(g, acc)
            for g in grads:
                ops.scale_to_norm(g, acc, self.global_clipnorm)

    def _norm_acc(self):
        """The accumulator the norm clipping reuses step after step (no allocation per
        step; on a device, reset by a kernel)."""
        acc = getattr(self, "_clip_acc", None)
        if acc is None or getattr(self, "_clip_acc_ops", None) is not self._ops:
            acc = self._clip_acc = self._ops.acc_new()
            self._clip_acc_ops = self._ops
        return acc

    def apply(self, grads, trainable_variables=None):
        """Keras's ``optimizer.apply(grads, trainable_variables)``: one step updating
        each variable (a weight array, e.g. of ``model.trainable_weights``) in place
        from its gradient (NumPy arrays, or device arrays of the cuda backend).  The
        state is built on the first call; later calls must pass the same variables
        (or none: those of the first call).  Returns :attr:`iterations`."""
        if trainable_variables is None:
            trainable_variables = getattr(self, "_variables", None)
            if trainable_variables is None:
                raise ValueError("trainable_variables: expected the variables of the "
                                 "first apply() (the optimizer is not built yet)")
        params, grads = list(trainable_variables), list(grads)
        if len(params) != len(grads):
            raise ValueError(f"grads: expected one gradient per variable ({len(params)}), "
                             f"got {len(grads)}")
        if all(g is None for g in grads):
            raise ValueError("grads: No gradients provided for any variable.")
        if any(g is None for g in grads):
            skipped = [i for i, g in enumerate(grads) if g is None]
            warnings.warn(f"Gradients do not exist for variables {skipped} when "
                          f"minimizing the loss: they are not updated.", stacklevel=2)
        for i, (p, g) in enumerate(zip(params, grads)):
            if g is not None and getattr(g, "shape", None) != getattr(p, "shape", ()):
                raise ValueError(f"grads[{i}]: expected shape {getattr(p, 'shape', None)} "
                                 f"(that of its variable), got {getattr(g, 'shape', None)}")
        known = getattr(self, "_variables", None)
        if self.built and (known is None or len(known) != len(params) or
                           any(a is not b for a, b in zip(known, params))):
            raise ValueError("trainable_variables: expected the variables this optimizer "
                             "was built for (a new optimizer for other variables)")
        on_device = any(not isinstance(p, np.ndarray) and
                        hasattr(p, "__cuda_array_interface__") for p in params)
        backend = config.get_backend("cuda" if on_device else "numpy")
        if not on_device:
            for i, (p, g) in enumerate(zip(params, grads)):
                if not isinstance(p, np.ndarray) or not (g is None or
                                                         isinstance(g, np.ndarray)):
                    raise TypeError(f"grads[{i}], trainable_variables[{i}]: expected NumPy "
                                    f"arrays (or device arrays), got {describe(g)} and "
                                    f"{describe(p)}")
        if not self.built:
            self.build([_at_least_1d(p) for p in params], backend.ops)
            self._variables = params
        keep = [i for i, g in enumerate(grads) if g is not None]
        slots = [self._slots[i] for i in keep]
        # 0-d variables update through 1-d views; the gradients are copied (clipped)
        params = [_at_least_1d(params[i]) for i in keep]
        grads = [_at_least_1d(grads[i]).copy() if isinstance(grads[i], np.ndarray)
                 else grads[i] for i in keep]
        self._apply(backend, params, grads, slots)
        return self.iterations

    def apply_gradients(self, grads_and_vars):
        """Keras's ``apply_gradients(zip(grads, vars))``; returns :attr:`iterations`."""
        pairs = list(grads_and_vars)
        return self.apply([g for g, _ in pairs], [v for _, v in pairs])

    def _apply(self, backend, params, grads, states=None):
        """Update every parameter array in place from its gradient (clipped first);
        ``states``: the slots of these parameters when they are a subset of those the
        optimizer was built for."""
        if not self.built:
            self.build(params, backend.ops)
        self._clip(grads)
        self._lr = self._lr_at(self.iterations)
        for p, g, slots in zip(params, grads, self._slots if states is None else states):
            self._update(backend, p, g, slots)
        self.iterations += 1

    def _update(self, backend, p, g, slots):
        raise NotImplementedError

    # the validated-once training step (dl._fast) -------------------------------------
    def _unchecked_key(self):
        """The hyper-parameters an unchecked update bakes in: a plan compares them
        before every step and goes back to the public kernels when they changed.  (The
        learning rate is not one: updates read it every step, as :meth:`apply`.)"""
        return (self.weight_decay, self.clipnorm, self.clipvalue, self.global_clipnorm)

    def _unchecked_update(self, backend, uk, params, grads):
        """A function updating ``params`` from ``grads`` (the arrays a checked step
        has just validated, state built) through the unchecked kernels ``uk``, with
        the same arithmetic as :meth:`_update`; None when there is none (a subclass
        with its own ``_update``, say)."""
        return None

    def _flat_entries(self, params, grads, names):
        """1-D views (the plan's own) of each param, its gradient and its named slots
        (None for a slot it lacks), and the param's weight decay."""
        flat = lambda a: None if a is None else a.reshape(-1)
        return [(flat(p), flat(g)) + tuple(flat(slots.get(n)) for n in names)
                + (self._decay_for(p),)
                for p, g, slots in zip(params, grads, self._slots)]

    def _checked_all(self, backend, params, grads):
        self._lr = self._lr_at(self.iterations)
        for p, g, slots in zip(params, grads, self._slots):
            self._update(backend, p, g, slots)

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Keras's: no weight decay for the arrays of ``var_list`` nor for the weights
        whose name (``"<layer>/kernel"``, ``"<layer>/bias"``) matches one of the
        regular expressions ``var_names``.  Call before the optimizer is built."""
        if self.built:
            raise ValueError("`exclude_from_weight_decay()` can only be configured before "
                             "the optimizer is built.")
        if var_names is not None and (isinstance(var_names, str) or not all(
                isinstance(n, str) for n in var_names)):
            raise TypeError(f"var_names: expected a list of str, got {describe(var_names)}")
        self._exclude_ids = {id(v) for v in (var_list or [])}
        self._exclude_names = [re.compile(n) for n in (var_names or [])]

    def _decay_for(self, param):
        """The weight decay of this parameter array (0 where excluded)."""
        if self.weight_decay is None:
            return 0.0
        excluded = getattr(self, "_exclude_ids", ())
        if id(param) in excluded or id(getattr(param, "base", None)) in excluded:
            return 0.0       # (a view: apply()'s 1-d view of a 0-d variable)
        patterns = getattr(self, "_exclude_names", None)
        if patterns:
            name = getattr(self, "_param_names", {}).get(id(param), "")
            if any(p.search(name) for p in patterns):
                return 0.0
        return self.weight_decay

    # pickling: the backend's ops (a module) stay behind; the state comes as NumPy arrays
    def __getstate__(self):
        state = dict(self.__dict__)
        ops = state.pop("_ops")
        state.pop("_clip_acc", None)
        state.pop("_clip_acc_ops", None)
        state.pop("_variables", None)
        if state.get("_slots") is not None:
            state["_slots"] = [{k: np.array(ops.to_host(v)) for k, v in slots.items()}
                               for slots in state["_slots"]]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._ops = _host_ops()

    # config -------------------------------------------------------------------------
    def get_config(self):
        lr = self._learning_rate
        if isinstance(lr, schedules.LearningRateSchedule):
            lr = schedules.serialize(lr)
        elif type(lr) is not float:
            raise TypeError(f"learning_rate: a function {short_repr(lr)} cannot be saved; "
                            f"use a float or a dl.optimizers.schedules.LearningRateSchedule")
        return {"name": self.name, "learning_rate": lr,
                "weight_decay": self.weight_decay, "clipnorm": self.clipnorm,
                "clipvalue": self.clipvalue, "global_clipnorm": self.global_clipnorm}

    @classmethod
    def from_config(cls, cfg):
        return cls(**cfg)

    def __repr__(self):
        lr = self._learning_rate
        return f"{type(self).__name__}(learning_rate={lr if type(lr) is float else short_repr(lr)})"


class SGD(Optimizer):
    """``w -= lr * g``; momentum ``m = momentum m - lr g; w += m``; Nesterov
    ``w += momentum m - lr g``.  Keras defaults: lr 0.01, momentum 0."""
    name = "SGD"

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.momentum = _positive("momentum", momentum)
        if self.momentum > 1:
            raise ValueError(f"momentum: expected a value in [0, 1], got {momentum}")
        self.nesterov = flag("nesterov", nesterov)

    def slots_for(self, param):
        return ("momentum",) if self.momentum else ()

    def _update(self, backend, p, g, slots):
        backend.sgd_update(p, g, slots.get("momentum"), learning_rate=self._lr,
                           momentum=self.momentum, nesterov=self.nesterov,
                           weight_decay=self._decay_for(p))

    def _unchecked_key(self):
        return super()._unchecked_key() + (self.momentum, self.nesterov)

    def _unchecked_update(self, backend, uk, params, grads):
        if type(self)._update is not SGD._update:
            return None
        mu, nesterov = self.momentum, self.nesterov
        entries = self._flat_entries(params, grads, ("momentum",))
        sgd = uk.sgd_update

        def update():
            lr = self._learning_rate
            if type(lr) is not float:
                lr = self._lr_at(self.iterations)
            for w, g, m, decay in entries:
                sgd(w, g, m, lr, mu, nesterov, decay)
        return update

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam, Keras 3 form (epsilon added to the uncorrected sqrt(v)).  Defaults: lr 1e-3,
    beta_1 0.9, beta_2 0.999, epsilon 1e-7."""
    name = "adam"
    _kernel = "adam_update"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = _positive("beta_1", beta_1)
        self.beta_2 = _positive("beta_2", beta_2)
        self.epsilon = _positive("epsilon", epsilon)
        self.amsgrad = flag("amsgrad", amsgrad)

    def slots_for(self, param):
        return ("m", "v", "v_hat") if self.amsgrad else ("m", "v")

    def _update(self, backend, p, g, slots):
        getattr(backend, self._kernel)(
            p, g, slots["m"], slots["v"], step=self.iterations + 1,
            learning_rate=self._lr, beta_1=self.beta_1, beta_2=self.beta_2,
            epsilon=self.epsilon, amsgrad=self.amsgrad, v_hat=slots.get("v_hat"),
            weight_decay=self._decay_for(p))

    def _unchecked_key(self):
        return super()._unchecked_key() + (self.beta_1, self.beta_2, self.epsilon,
                                           self.amsgrad)

    def _unchecked_update(self, backend, uk, params, grads):
        if type(self)._update is not Adam._update:
            return None
        b1, b2, eps, ams = self.beta_1, self.beta_2, self.epsilon, self.amsgrad
        entries = self._flat_entries(params, grads, ("m", "v", "v_hat"))
        adam = uk.adam_update

        def update():
            step = self.iterations + 1
            if type(step) is not int or not 1 <= step <= MAX_STEP:
                self._checked_all(backend, params, grads)    # which rejects the step
                return
            lr = self._learning_rate
            if type(lr) is not float:
                lr = self._lr_at(step - 1)
            for w, g, m, v, v_hat, decay in entries:
                adam(w, g, m, v, step, lr, b1, b2, eps, ams, v_hat, decay)
        return update

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay (Keras default 0.004)."""
    name = "adamw"
    _kernel = "adamw_update"

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, **kwargs):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad,
                         weight_decay=weight_decay, **kwargs)
        if self.weight_decay is None:
            raise ValueError("weight_decay: expected a number for AdamW, got None")


class RMSprop(Optimizer):
    """RMSprop, Keras 3 form (epsilon inside the square root).  Defaults: lr 1e-3,
    rho 0.9, momentum 0, epsilon 1e-7, centered False."""
    name = "rmsprop"

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho = _positive("rho", rho)
        self.momentum = _positive("momentum", momentum)
        self.epsilon = _positive("epsilon", epsilon)
        self.centered = flag("centered", centered)

    def slots_for(self, param):
        return (("velocity",) + (("momentum",) if self.momentum else ())
                + (("average_gradient",) if self.centered else ()))

    def _update(self, backend, p, g, slots):
        backend.rmsprop_update(p, g, slots["velocity"], learning_rate=self._lr,
                               rho=self.rho, momentum=self.momentum, epsilon=self.epsilon,
                               centered=self.centered, mom=slots.get("momentum"),
                               mg=slots.get("average_gradient"), weight_decay=self._decay_for(p))

    def _unchecked_key(self):
        return super()._unchecked_key() + (self.rho, self.momentum, self.epsilon,
                                           self.centered)

    def _unchecked_update(self, backend, uk, params, grads):
        if type(self)._update is not RMSprop._update:
            return None
        rho, mu, eps, centered = self.rho, self.momentum, self.epsilon, self.centered
        entries = self._flat_entries(params, grads,
                                     ("velocity", "momentum", "average_gradient"))
        rmsprop = uk.rmsprop_update

        def update():
            lr = self._learning_rate
            if type(lr) is not float:
                lr = self._lr_at(self.iterations)
            for w, g, v, mom, mg, decay in entries:
                rmsprop(w, g, v, lr, rho, mu, eps, centered, mom, mg, decay)
        return update

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class Adagrad(Optimizer):
    """Adagrad: ``acc += g^2; w -= lr g / sqrt(acc + epsilon)``, acc starting at
    initial_accumulator_value (0.1).  Defaults: lr 1e-3, epsilon 1e-7."""
    name = "adagrad"
    _slot_names = ("accumulator",)

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value = _positive("initial_accumulator_value",
                                                   initial_accumulator_value)
        self.epsilon = _positive("epsilon", epsilon)

    def _initial_slot(self, slot, param):
        return self._ops.full(param.shape, self.initial_accumulator_value, param.dtype)

    def _update(self, backend, p, g, slots):
        backend.adagrad_update(p, g, slots["accumulator"], learning_rate=self._lr,
                               epsilon=self.epsilon, weight_decay=self._decay_for(p))

    def _unchecked_key(self):
        return super()._unchecked_key() + (self.epsilon,)

    def _unchecked_update(self, backend, uk, params, grads):
        if type(self)._update is not Adagrad._update:
            return None
        eps = self.epsilon
        entries = self._flat_entries(params, grads, ("accumulator",))
        adagrad = uk.adagrad_update

        def update():
            lr = self._learning_rate
            if type(lr) is not float:
                lr = self._lr_at(self.iterations)
            for w, g, acc, decay in entries:
                adagrad(w, g, acc, lr, eps, decay)
        return update

    def get_config(self):
        return {**super().get_config(),
                "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


_CLASSES = {c.__name__: c for c in (SGD, Adam, AdamW, RMSprop, Adagrad)}
_ALIASES = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}


def get(identifier):
    """An optimizer from a name ("sgd", "adam"...), a config dict or an instance (None
    for None, as Keras)."""
    return _serial.resolve(identifier, "optimizer", _CLASSES, _ALIASES, Optimizer,
                           allow_none=True)


def deserialize(config):
    """An optimizer from what :func:`serialize` returned."""
    if not isinstance(config, dict):
        raise TypeError(f"config: expected a dict with 'class_name' and 'config', got "
                        f"{describe(config)}")
    return get(config)


def serialize(optimizer):
    return _serial.serialize(optimizer)
