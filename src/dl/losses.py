"""Losses, by object and by name, reduced as Keras 3 does ("sum_over_batch_size").

A loss object is callable on arrays (``dl.losses.MeanSquaredError()(y_true, y_pred)``
returns a float) and gives the training loop the loss and ``dL/dy_pred`` through the
backend's kernels.  y_true of shape (n,) against y_pred of shape (n, 1) is expanded
as Keras does.
"""
import numpy as np

from . import _serial, config
from kernels.checks import describe, real, short_repr
from ._args import optional_str


class Loss:
    """Base class.  ``name`` is Keras's; ``from_logits`` where it applies."""

    name = "loss"
    # Elementwise losses broadcast targets of shape (n, 1) over the output units.
    broadcast_targets = True

    def __init__(self, name=None, reduction="sum_over_batch_size"):
        if not (isinstance(reduction, str) and reduction == "sum_over_batch_size"):
            raise ValueError(f"reduction: only 'sum_over_batch_size' (Keras's default) is "
                             f"supported, got {short_repr(reduction)}")
        if name is not None:
            self.name = optional_str("name", name)
        self.reduction = reduction

    # what the training loop calls -------------------------------------------------
    def prepare_targets(self, y_true, y_pred_shape, dtype):
        """y_true as the array the kernels take for predictions of ``y_pred_shape``."""
        y_true = np.asarray(y_true)
        if y_true.dtype != dtype:
            y_true = y_true.astype(dtype)
        if y_true.ndim == len(y_pred_shape) - 1:
            y_true = y_true.reshape(y_true.shape + (1,))
        if (self.broadcast_targets and y_true.ndim == len(y_pred_shape)
                and y_true.shape[1:] == (1,) * (y_true.ndim - 1)):
            # Keras broadcasts one target per sample against every output unit
            y_true = np.ascontiguousarray(np.broadcast_to(y_true, tuple(y_pred_shape)))
        if y_true.shape[1:] != tuple(y_pred_shape[1:]):
            dims = ", ".join(map(str, y_pred_shape[1:]))
            raise ValueError(f"y: expected targets of shape (n, {dims}) "
                             f"to match the model's output, got {y_true.shape}")
        return y_true

    def value(self, backend, y_true, y_pred):
        raise NotImplementedError

    def gradient(self, backend, y_true, y_pred, out=None):
        raise NotImplementedError

    def __call__(self, y_true, y_pred):
        y_pred = np.asarray(y_pred)
        if y_pred.dtype not in (np.float32, np.float64):
            y_pred = y_pred.astype(config.floatx())
        if y_pred.ndim == 1:
            y_pred = y_pred.reshape(-1, 1)
        y_true = self.prepare_targets(y_true, y_pred.shape, y_pred.dtype)
        return float(self.value(config.get_backend(), y_true, y_pred))

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, cfg):
        return cls(**cfg)

    def __repr__(self):
        return f"{type(self).__name__}({self.get_config()})"


class MeanSquaredError(Loss):
    """``mean((y_true - y_pred)^2)``; gradient ``2 (y_pred - y_true) / size``."""
    name = "mean_squared_error"

    def value(self, backend, y_true, y_pred):
        return backend.mean_squared_error(y_true, y_pred)

    def gradient(self, backend, y_true, y_pred, out=None):
        return backend.backprop_mean_squared_error(y_true, y_pred, out)


class MeanAbsoluteError(Loss):
    """``mean(|y_true - y_pred|)``."""
    name = "mean_absolute_error"

    def value(self, backend, y_true, y_pred):
        return backend.mean_absolute_error(y_true, y_pred)

    def gradient(self, backend, y_true, y_pred, out=None):
        return backend.backprop_mean_absolute_error(y_true, y_pred, out)


class Huber(Loss):
    """``0.5 e^2`` for ``|e| <= delta``, else ``delta (|e| - delta / 2)``."""
    name = "huber_loss"

    def __init__(self, delta=1.0, name=None, reduction="sum_over_batch_size"):
        super().__init__(name, reduction)
        self.delta = real("delta", delta, low=0, low_open=True)

    def value(self, backend, y_true, y_pred):
        return backend.huber(y_true, y_pred, delta=self.delta)

    def gradient(self, backend, y_true, y_pred, out=None):
        return backend.backprop_huber(y_true, y_pred, out, delta=self.delta)

    def get_config(self):
        return {**super().get_config(), "delta": self.delta}


class _FromLogits(Loss):
    def __init__(self, from_logits=False, name=None, reduction="sum_over_batch_size"):
        super().__init__(name, reduction)
        if not isinstance(from_logits, (bool, np.bool_)):
            raise TypeError(f"from_logits: expected True or False, got {describe(from_logits)}")
        self.from_logits = bool(from_logits)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


class BinaryCrossentropy(_FromLogits):
    """``-(y log p + (1 - y) log(1 - p))``, p clipped to [1e-7, 1 - 1e-7]."""
    name = "binary_crossentropy"

    def value(self, backend, y_true, y_pred):
        return backend.binary_crossentropy(y_true, y_pred, from_logits=self.from_logits)

    def gradient(self, backend, y_true, y_pred, out=None):
        return backend.backprop_binary_crossentropy(y_true, y_pred, out,
                                                    from_logits=self.from_logits)


class CategoricalCrossentropy(_FromLogits):
    """``-sum_j y_j log p_j`` per sample, y one-hot (or soft) of shape (n, classes)."""
    name = "categorical_crossentropy"
    broadcast_targets = False

    def value(self, backend, y_true, y_pred):
        return backend.categorical_crossentropy(y_true, y_pred, from_logits=self.from_logits)

    def gradient(self, backend, y_true, y_pred, out=None):
        return backend.backprop_categorical_crossentropy(y_true, y_pred, out,
                                                         from_logits=self.from_logits)

    def fused(self, backend, y_true, logits, out=None):
        """Loss and gradient with respect to the logits of a softmax output."""
        return backend.softmax_crossentropy(y_true, logits, out)


class SparseCategoricalCrossentropy(_FromLogits):
    """Categorical cross-entropy with integer class labels of shape (n,) or (n, 1)."""
    name = "sparse_categorical_crossentropy"

    def prepare_targets(self, y_true, y_pred_shape, dtype):
        y_true = np.asarray(y_true)
        if y_true.ndim == 2 and y_true.shape[1] == 1:
            y_true = y_true[:, 0]
        if y_true.ndim != 1:
            raise ValueError(f"y: expected integer class labels of shape (n,) or (n, 1), "
                             f"got {y_true.shape}")
        if y_true.dtype.kind == "f":
            if not np.all(np.isfinite(y_true)) or not np.array_equal(y_true, np.round(y_true)):
                raise ValueError("y: expected whole-number class labels, got fractions, "
                                 "NaN or inf")
        elif y_true.dtype.kind not in "iub":
            raise TypeError(f"y: expected integer class labels, got dtype {y_true.dtype}")
        classes = y_pred_shape[-1]
        if y_true.size and (y_true.min() < 0 or y_true.max() >= classes):
            bad = y_true[(y_true < 0) | (y_true >= classes)][0]
            raise ValueError(f"y: expected class labels in [0, {classes}) (the model's "
                             f"output units), got {bad}")
        return y_true.astype(np.int64, copy=False)

    def value(self, backend, y_true, y_pred):
        return backend.sparse_categorical_crossentropy(y_true, y_pred,
                                                       from_logits=self.from_logits)

    def gradient(self, backend, y_true, y_pred, out=None):
        return backend.backprop_sparse_categorical_crossentropy(
            y_true, y_pred, out, from_logits=self.from_logits)

    def fused(self, backend, y_true, logits, out=None):
        return backend.sparse_softmax_crossentropy(y_true, logits, out)


_CLASSES = {c.__name__: c for c in (MeanSquaredError, MeanAbsoluteError, Huber,
                                    BinaryCrossentropy, CategoricalCrossentropy,
                                    SparseCategoricalCrossentropy)}
_ALIASES = {
    "mse": MeanSquaredError, "MSE": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "MAE": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "huber": Huber, "huber_loss": Huber,
    "binary_crossentropy": BinaryCrossentropy, "bce": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}


def get(identifier):
    """A loss from a name ("mse", "sparse_categorical_crossentropy"...), a config dict
    or an instance."""
    return _serial.resolve(identifier, "loss", _CLASSES, _ALIASES, Loss)


def serialize(loss):
    return _serial.serialize(loss)
