"""Activation functions, by object and by name (``activation="relu"``).

Each is an :class:`Activation`: callable on arrays like Keras's functions
(``dl.activations.relu(x)``), and carrying the forward and backprop kernels the
layers run.  Names and defaults follow Keras 3 (``leaky_relu`` negative_slope 0.2,
``elu`` alpha 1.0, ``gelu`` approximate=False): they are the kernels' own table,
``kernels.reference.ACTIVATION_SPECS``.
"""
import numpy as np
from kernels.reference import ACTIVATION_SPECS

from . import config

ACTIVATIONS = tuple(ACTIVATION_SPECS)
# name -> the kernel pair's parameters and their Keras defaults
_PARAMS = {name: spec.params for name, spec in ACTIVATION_SPECS.items()}


class Activation:
    """An activation function ``y = f(x)`` with its backprop ``dx = dy * f'(x)``.

    Args:
        name: one of linear, relu, leaky_relu, elu, sigmoid, tanh, softmax, softplus, gelu.
        **params: its parameters (negative_slope, alpha or approximate).
    """

    def __init__(self, name, **params):
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
        """True when the backprop needs the pre-activation input (gelu), not the output."""
        return ACTIVATION_SPECS[self.name].needs_input

    def forward(self, backend, x, out=None):
        return getattr(backend, self.name)(x, out, **self.params)

    def backward(self, backend, dy, x, y, out=None):
        saved = x if self.needs_input else y
        return getattr(backend, "backprop_" + self.name)(dy, saved, out, **self.params)

    def __call__(self, x, **params):
        """Apply to an array (converted to floatx when it is not a float array)."""
        x = np.asarray(x)
        if x.dtype not in (np.float32, np.float64):
            x = x.astype(config.floatx())
        act = Activation(self.name, **{**self.params, **params}) if params else self
        return act.forward(config.get_backend(), x)

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


linear = Activation("linear")
relu = Activation("relu")
leaky_relu = Activation("leaky_relu")
elu = Activation("elu")
sigmoid = Activation("sigmoid")
tanh = Activation("tanh")
softmax = Activation("softmax")
softplus = Activation("softplus")
gelu = Activation("gelu")


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
