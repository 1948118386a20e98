"""Global settings: the default float type and the kernels backend ``dl`` uses."""
import numpy as np

_FLOATX = "float32"
_BACKEND_NAME = None   # None: the fastest available CPU backend


def floatx():
    """The default float type of new layers' weights and of converted inputs."""
    return _FLOATX


def set_floatx(value):
    """Set the default float type: "float32" (Keras's default) or "float64"."""
    global _FLOATX
    if value not in ("float32", "float64"):
        raise ValueError(f"value: expected 'float32' or 'float64', got {value!r}")
    _FLOATX = value


def resolve_dtype(dtype):
    """A dtype argument (None = floatx()) as a float32/float64 NumPy dtype."""
    try:
        dtype = np.dtype(floatx() if dtype is None else dtype)
    except Exception:  # noqa: BLE001 -- NumPy raises TypeError, ValueError, SyntaxError...
        from kernels.checks import describe
        raise TypeError(f"dtype: expected 'float32', 'float64' or None, got "
                        f"{describe(dtype)}") from None
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype: expected float32 or float64, got {dtype}")
    return dtype


_IMAGE_DATA_FORMAT = "channels_last"


def image_data_format():
    """The default ``data_format`` of the convolution, pooling and image layers:
    "channels_last" (NHWC, Keras's default) or "channels_first" (NCHW)."""
    return _IMAGE_DATA_FORMAT


def set_image_data_format(data_format):
    """Set :func:`image_data_format` ("channels_last" or "channels_first")."""
    global _IMAGE_DATA_FORMAT
    _IMAGE_DATA_FORMAT = standardize_data_format(data_format, default=False)


def standardize_data_format(data_format, default=True):
    """A layer's ``data_format``: None means :func:`image_data_format` (when
    ``default``); otherwise "channels_last" or "channels_first" (any case), as
    Keras's."""
    if data_format is None and default:
        return _IMAGE_DATA_FORMAT
    value = data_format.lower() if isinstance(data_format, str) else data_format
    if value not in ("channels_last", "channels_first"):
        raise ValueError(f"data_format: expected 'channels_last' or 'channels_first', "
                         f"got {data_format!r}")
    return value


def set_backend(name):
    """Choose the kernels backend of models built from now on: "numpy" (the reference),
    "cython" or "cuda"; None for the fastest available CPU backend.

    Raises ImportError (with the reason) when that backend cannot load here.
    """
    global _BACKEND_NAME
    import kernels
    kernels.get_backend(name)   # fail now, with the reason, if it cannot load
    _BACKEND_NAME = name


def get_backend(name=None):
    """The kernels backend object ``dl`` uses: ``name`` if given, else the one chosen
    with :func:`set_backend`, else the fastest available."""
    import kernels
    return kernels.get_backend(name if name is not None else _BACKEND_NAME)


def backend_name():
    return get_backend().name


# Keras's global limits on training (keras.config.set_max_epochs ...): handy to run a
# training script quickly; also read from KERAS_MAX_EPOCHS / KERAS_MAX_STEPS_PER_EPOCH.
_MAX_EPOCHS = None
_MAX_STEPS_PER_EPOCH = None


def _limit(name, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        from kernels.checks import short_repr
        raise ValueError(f"{name}: expected None or an int >= 1, got {short_repr(value)}")
    return int(value)


def set_max_epochs(max_epochs):
    """Limit every fit to at most ``max_epochs`` epochs (None: no limit)."""
    global _MAX_EPOCHS
    _MAX_EPOCHS = _limit("max_epochs", max_epochs)


def set_max_steps_per_epoch(max_steps_per_epoch):
    """Limit every epoch to at most ``max_steps_per_epoch`` steps (None: no limit), as
    a ``steps_per_epoch`` would."""
    global _MAX_STEPS_PER_EPOCH
    _MAX_STEPS_PER_EPOCH = _limit("max_steps_per_epoch", max_steps_per_epoch)


def _from_env(name):
    import os
    value = os.environ.get(name)
    return int(value) if value else None


def max_epochs():
    """The limit set by :func:`set_max_epochs` (or KERAS_MAX_EPOCHS), or None."""
    return _MAX_EPOCHS if _MAX_EPOCHS is not None else _from_env("KERAS_MAX_EPOCHS")


def max_steps_per_epoch():
    """The limit set by :func:`set_max_steps_per_epoch` (or KERAS_MAX_STEPS_PER_EPOCH)."""
    return (_MAX_STEPS_PER_EPOCH if _MAX_STEPS_PER_EPOCH is not None
            else _from_env("KERAS_MAX_STEPS_PER_EPOCH"))
