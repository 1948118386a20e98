"""Activation functions, by object and by name (``activation="relu"``).

Each is an :class:`Activation`: callable on arrays like Keras's functions
(``dl.activations.relu(x)``, ``dl.activations.softmax(x, axis=1)``), and carrying the
forward and backprop kernels the layers run.  Names and defaults follow Keras 3
(``relu`` negative_slope 0, max_value None, threshold 0; ``leaky_relu`` negative_slope
0.2, ``elu`` alpha 1.0, ``gelu`` approximate=False): they are the kernels' own table,
``kernels.reference.ACTIVATION_SPECS``.  ``swish`` and ``hard_swish`` are Keras's other
names of ``silu`` and ``hard_silu``.
"""
import numpy as np
from kernels.reference import ACTIVATION_SPECS, ROW_ACTIVATIONS

from . import config

ACTIVATIONS = tuple(ACTIVATION_SPECS)
# name -> the kernel pair's parameters and their Keras defaults
_PARAMS = {name: spec.params for name, spec in ACTIVATION_SPECS.items()}
# Keras's other names (its get() returns the same function for both)
ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}


class Activation:
    """An activation function ``y = f(x)`` with its backprop ``dx = dy * f'(x)``.

    Args:
        name: one of ``ACTIVATIONS`` (linear, relu, leaky_relu, elu, sigmoid, tanh,
            softmax, softplus, gelu, relu6, selu, silu, hard_sigmoid, hard_silu, mish,
            exponential, softsign, log_softmax) or an alias (swish, hard_swish).
        **params: its parameters (relu's negative_slope, max_value and threshold,
            leaky_relu's negative_slope, elu's alpha or gelu's approximate).
    """

    def __init__(self, name, **params):
        name = ALIASES.get(name, name)
        if name not in _PARAMS:
            raise ValueError(f"activation: unknown activation {name!r}; expected one of "
                             f"{', '.join(_PARAMS)}")
        unknown = set(params) - set(_PARAMS[name])
        if unknown:
            raise TypeError(f"{name}: unexpected parameter(s) {', '.join(sorted(unknown))}")
        self.name = name
        self.params = {**_PARAMS[name], **params}
        self.__name__ = name

    @property
    def is_default(self):
        """True when the parameters are Keras's defaults (the fused dense kernels apply)."""
        return self.params == _PARAMS[self.name]

    @property
    def needs_input(self):
        """True when the backprop needs the pre-activation input (gelu, silu, hard_silu,
        mish), not the output."""
        return ACTIVATION_SPECS[self.name].needs_input

    def forward(self, backend, x, out=None):
        return getattr(backend, self.name)(x, out, **self.params)

    def backward(self, backend, dy, x, y, out=None):
        saved = x if self.needs_input else y
        return getattr(backend, "backprop_" + self.name)(dy, saved, out, **self.params)

    def __call__(self, x, axis=-1, **params):
        """Apply to an array (converted to floatx when it is not a float array).

        ``axis`` (softmax and log_softmax): the axis, or tuple of axes, normalised over
        (Keras's argument); the others work element by element and take no axis.
        """
        x = np.asarray(x)
        if x.dtype not in (np.float32, np.float64):
            x = x.astype(config.floatx())
        act = Activation(self.name, **{**self.params, **params}) if params else self
        backend = config.get_backend()
        if self.name not in ROW_ACTIVATIONS:
            if axis != -1:
                raise TypeError(f"{self.name}: unexpected parameter axis (only softmax and "
                                f"log_softmax take one)")
            return act.forward(backend, x)
        axes = _axes(axis, x.ndim)
        if axes == (x.ndim - 1,):
            return act.forward(backend, x)
        # the normalised axes moved last and flattened into one: a row per the others
        rest = tuple(a for a in range(x.ndim) if a not in axes)
        moved = np.transpose(x, rest + axes)
        rows = np.ascontiguousarray(moved).reshape(moved.shape[:len(rest)] + (-1,))
        y = np.asarray(act.forward(backend, rows)).reshape(moved.shape)
        return np.transpose(y, np.argsort(rest + axes))

    def get_config(self):
        return {"name": self.name, **self.params}

    @classmethod
    def from_config(cls, cfg):
        cfg = dict(cfg)
        return cls(cfg.pop("name"), **cfg)

    def __eq__(self, other):
        return (isinstance(other, Activation)
                and (self.name, self.params) == (other.name, other.params))

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        extra = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return f"Activation({self.name!r}{extra})"


def _axes(axis, ndim):
    """``axis`` (an int or a tuple of ints, negative from the end) as sorted positive
    axes of an array of rank ``ndim``."""
    items = axis if isinstance(axis, (tuple, list)) else (axis,)
    if not items or not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool)
                            for a in items):
        raise TypeError(f"axis: expected an int or a tuple of ints, got {axis!r}")
    out = []
    for a in items:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis: expected axes in [{-ndim}, {ndim}) for an input of "
                             f"rank {ndim}, got {axis!r}")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"axis: expected distinct axes, got {axis!r}")
    return tuple(sorted(out))


linear = Activation("linear")
relu = Activation("relu")
leaky_relu = Activation("leaky_relu")
elu = Activation("elu")
sigmoid = Activation("sigmoid")
tanh = Activation("tanh")
softmax = Activation("softmax")
softplus = Activation("softplus")
gelu = Activation("gelu")
relu6 = Activation("relu6")
selu = Activation("selu")
silu = Activation("silu")
swish = silu
hard_sigmoid = Activation("hard_sigmoid")
hard_silu = Activation("hard_silu")
hard_swish = hard_silu
mish = Activation("mish")
exponential = Activation("exponential")
softsign = Activation("softsign")
log_softmax = Activation("log_softmax")


def get(identifier):
    """An :class:`Activation` from a name, None (linear), a config, or an instance."""
    if identifier is None:
        return linear
    if isinstance(identifier, Activation):
        return identifier
    if isinstance(identifier, str):
        return Activation(identifier)
    if isinstance(identifier, dict):
        if "class_name" in identifier:   # {"class_name": "Activation", "config": {...}}
            identifier = identifier.get("config", {})
        if not isinstance(identifier, dict) or not isinstance(identifier.get("name"), str):
            raise ValueError(f"activation: expected a config with a 'name' such as "
                             f"{{'name': 'relu'}}, got {identifier!r}")
        return Activation.from_config(identifier)
    raise TypeError(f"activation: expected a name such as 'relu', None or a "
                    f"dl.activations.Activation, got {type(identifier).__name__} "
                    f"(arbitrary Python callables cannot be differentiated by dl)")


def serialize(activation):
    """A name when the parameters are the defaults (as Keras stores them), else a dict."""
    activation = get(activation)
    return activation.name if activation.is_default else activation.get_config()
