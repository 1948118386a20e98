"""Turning objects into JSON-able configs and back: the shared part of every ``get``."""
from kernels.checks import describe, short_repr


class Configurable:
    """``get_config()`` (the constructor's arguments), ``from_config(cfg)`` and a repr
    built from them: what initializers and regularizers share."""

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, cfg):
        return cls(**cfg)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def serialize(obj):
    """``{"class_name": ..., "config": obj.get_config()}``."""
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


def resolve(identifier, what, classes, aliases, instance_type, allow_none=False):
    """An object of kind ``what`` from an instance, a name, a config dict or a class.

    ``classes``: class name -> class; ``aliases``: snake_case name -> class.
    """
    if identifier is None:
        if allow_none:
            return None
        raise ValueError(f"{what}: expected a name, a config or an instance, got None")
    if isinstance(identifier, instance_type):
        return identifier
    if isinstance(identifier, str):
        cls = aliases.get(identifier) or classes.get(identifier)
        if cls is None:
            known = ", ".join(sorted(set(aliases) | set(classes)))
            raise ValueError(f"{what}: unknown {what} {identifier!r}; expected one of: {known}")
        return cls()
    if isinstance(identifier, dict):
        name = identifier.get("class_name")
        cls = (classes.get(name) or aliases.get(name)) if isinstance(name, str) else None
        if cls is None:
            raise ValueError(f"{what}: unknown class_name {short_repr(name)} in config "
                             f"{short_repr(identifier)}")
        cfg = identifier.get("config", {})
        if not isinstance(cfg, dict) or not all(isinstance(k, str) for k in cfg):
            raise TypeError(f"{what}: expected a dict of arguments under 'config', got "
                            f"{describe(cfg)}")
        return cls.from_config(cfg)
    if isinstance(identifier, type) and issubclass(identifier, instance_type):
        return identifier()
    raise TypeError(f"{what}: expected a name, a config dict or a {instance_type.__name__}, "
                    f"got {type(identifier).__name__}")
