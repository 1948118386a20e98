"""Losses, by object and by name, with Keras 3's reductions and sample weights.

A loss object is callable on arrays (``dl.losses.MeanSquaredError()(y_true, y_pred,
sample_weight=None)``) and gives the training loop the loss and ``dL/dy_pred`` through
the backend's kernels.  y_true of shape (n,) against y_pred of shape (n, 1) is expanded
as Keras does.

Reductions (Keras's ``reduction`` argument), for per-sample losses ``l_i`` and weights
``w_i`` (1 without ``sample_weight``):

    "sum_over_batch_size" (default), "mean"   sum_i w_i l_i / n
    "sum"                                      sum_i w_i l_i
    "mean_with_sample_weight"                  sum_i w_i l_i / sum_i w_i  (0 if that is 0)
    None, "none"                               the vector w_i l_i (not for training)

The kernels compute the first; the others are the same kernels with the weights
rescaled (:meth:`Loss.kernel_weights`), so a weighted loss stays one fused kernel call.
"""
import numpy as np

from . import _serial, config
from kernels import reference
from kernels.checks import describe, real, short_repr
from ._args import optional_str

REDUCTIONS = ("sum_over_batch_size", "sum", None, "none", "mean", "mean_with_sample_weight")


def _reduction(reduction):
    if reduction is not None and not (isinstance(reduction, str) and reduction in REDUCTIONS):
        raise ValueError(f"Invalid value for argument `reduction`. Expected one of "
                         f"{list(REDUCTIONS)}. Received: reduction={short_repr(reduction)}")
    return reduction


def sample_weight_array(sample_weight, n, dtype, name="sample_weight", allow_scalar=True):
    """Per-sample weights as the kernels take them: a C-contiguous (n,) array of
    ``dtype`` from a number (every sample; unless not ``allow_scalar``, as for ``fit``'s
    data), or an array of shape (n,) or (n, 1) (Keras's squeeze); a named
    TypeError/ValueError otherwise."""
    if isinstance(sample_weight, (bool, np.bool_)):
        raise TypeError(f"{name}: expected numbers, got {describe(sample_weight)}")
    try:
        w = np.asarray(sample_weight)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected an array of numbers, got "
                        f"{type(sample_weight).__name__} ({exc})") from None
    if w.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected numbers, got dtype {w.dtype}")
    if w.ndim == 0 and allow_scalar:
        w = np.broadcast_to(w, (n,))
    elif w.ndim == 2 and w.shape[1] == 1:
        w = w[:, 0]
    if w.shape != (n,):
        raise ValueError(f"{name}: expected one weight per sample, shape ({n},) or "
                         f"({n}, 1), got shape {w.shape}")
    return np.ascontiguousarray(w, dtype=dtype)


class Loss:
    """Base class.  ``name`` is Keras's; ``from_logits`` where it applies.

    Subclasses give ``kernel`` (the reference's name of their loss kernel) and
    :meth:`_params` (its parameters), and the kernel calls in :meth:`value`,
    :meth:`gradient` (and :meth:`fused` for a softmax output).
    """

    name = "loss"
    kernel = None
    # Elementwise losses broadcast targets of shape (n, 1) over the output units.
    broadcast_targets = True

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        if name is not None:
            self.name = optional_str("name", name)
        self.reduction = _reduction(reduction)
        self.dtype = None if dtype is None else config.resolve_dtype(dtype)
        self._cache = {}       # (ops, n, dtype, scale) -> rescaling vectors of kernel_weights

    def _params(self):
        return {}

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

    @property
    def trains(self):
        """Whether this loss reduces to a number (what training needs)."""
        return self.reduction not in (None, "none")

    @property
    def reweighs(self):
        """Whether the kernels' weights differ from the sample weights (a reduction
        other than the kernels' own sum_over_batch_size)."""
        return self.reduction not in ("sum_over_batch_size", "mean")

    def kernel_weights(self, ops, sample_weight, n, dtype, loss_weight=1.0):
        """The weights to give the loss kernels for a batch of ``n`` samples with these
        sample weights (None: unweighted), arrays of ``ops``: None for the kernels'
        own mean, else the weights rescaled to this loss's reduction (and multiplied by
        compile's ``loss_weights``)."""
        if not self.reweighs and loss_weight == 1.0:
            return sample_weight
        scale = loss_weight
        if self.reduction == "sum":
            scale *= float(n)
        elif self.reduction == "mean_with_sample_weight" and sample_weight is not None:
            # divide by the weights' sum, not by n
            total = float(np.sum(ops.to_host(sample_weight), dtype=np.float64))
            scale *= n / total if total != 0 else 0.0
        if scale == 1.0:
            return sample_weight
        key = (id(ops), n, np.dtype(dtype).str, scale)
        cached = self._cache.get(key)
        if cached is None:
            if len(self._cache) > 16:
                self._cache.clear()
            cached = self._cache[key] = (ops.full((n,), scale, dtype),
                                         ops.empty((n,), dtype))
        factor, product = cached
        if sample_weight is None:
            return factor
        return ops.multiply(sample_weight, factor, product)

    def loss_targets(self, ops, y_true):
        """The targets the loss kernels see for a batch of targets (arrays of
        ``ops``): the targets themselves, or a smoothed copy (label smoothing changes
        what the loss sees, not what the metrics see)."""
        return y_true

    def value(self, backend, y_true, y_pred, w=None):
        raise NotImplementedError

    def gradient(self, backend, y_true, y_pred, out=None, w=None):
        raise NotImplementedError

    def __call__(self, y_true, y_pred, sample_weight=None):
        y_pred = np.asarray(y_pred)
        dtype = self.dtype or (y_pred.dtype if y_pred.dtype in (np.float32, np.float64)
                               else np.dtype(config.floatx()))
        y_pred = y_pred.astype(dtype, copy=False)
        if y_pred.ndim == 1:
            y_pred = y_pred.reshape(-1, 1)
        if y_pred.ndim != 2:
            raise ValueError(f"y_pred: expected predictions of shape (samples,) or "
                             f"(samples, values), got shape {y_pred.shape}")
        y_true = self.prepare_targets(y_true, y_pred.shape, y_pred.dtype)
        n = y_pred.shape[0]
        w = None if sample_weight is None else sample_weight_array(sample_weight, n, dtype)
        host = config.get_backend("numpy").ops
        y_true, w = self._masked(host, y_true, w, dtype)
        y_true = self.loss_targets(host, y_true)
        if not self.trains:
            per = reference.per_sample_losses(self.kernel, y_true, y_pred, **self._params())
            return (per if w is None else per * w).astype(dtype, copy=False)
        be = config.get_backend()
        return float(self.value(be, y_true, y_pred, self.kernel_weights(host, w, n, dtype)))

    def _masked(self, ops, y_true, sample_weight, dtype):
        """(targets, weights of ``dtype``) with ignored samples masked out (sparse
        cross-entropy's ``ignore_class``); unchanged for the other losses."""
        return y_true, sample_weight

    def batch_inputs(self, ops, y_true, sample_weight, n, dtype, loss_weight=1.0):
        """(targets, kernel weights) for the loss kernels on a batch of ``n`` samples:
        what training and evaluation pass them (masking, label smoothing, the
        reduction's rescaled weights, compile's loss weight)."""
        y_true, sample_weight = self._masked(ops, y_true, sample_weight, dtype)
        return (self.loss_targets(ops, y_true),
                self.kernel_weights(ops, sample_weight, n, dtype, loss_weight))

    def get_config(self):
        cfg = {"name": self.name, "reduction": self.reduction}
        if self.dtype is not None:
            cfg["dtype"] = np.dtype(self.dtype).name
        return cfg

    @classmethod
    def from_config(cls, cfg):
        return cls(**cfg)

    def __repr__(self):
        return f"{type(self).__name__}({self.get_config()})"


def _weighted(w):
    """The kernels' keyword for weights (none at all without: the plain call)."""
    return {} if w is None else {"sample_weight": w}


class MeanSquaredError(Loss):
    """``mean((y_true - y_pred)^2)``; gradient ``2 (y_pred - y_true) / size``."""
    name = "mean_squared_error"
    kernel = "mean_squared_error"

    def value(self, backend, y_true, y_pred, w=None):
        return backend.mean_squared_error(y_true, y_pred, **_weighted(w))

    def gradient(self, backend, y_true, y_pred, out=None, w=None):
        return backend.backprop_mean_squared_error(y_true, y_pred, out, **_weighted(w))


class MeanAbsoluteError(Loss):
    """``mean(|y_true - y_pred|)``."""
    name = "mean_absolute_error"
    kernel = "mean_absolute_error"

    def value(self, backend, y_true, y_pred, w=None):
        return backend.mean_absolute_error(y_true, y_pred, **_weighted(w))

    def gradient(self, backend, y_true, y_pred, out=None, w=None):
        return backend.backprop_mean_absolute_error(y_true, y_pred, out, **_weighted(w))


class Huber(Loss):
    """``0.5 e^2`` for ``|e| <= delta``, else ``delta (|e| - delta / 2)``."""
    name = "huber_loss"
    kernel = "huber"

    def __init__(self, delta=1.0, name=None, reduction="sum_over_batch_size", dtype=None):
        super().__init__(name, reduction, dtype)
        self.delta = real("delta", delta, low=0, low_open=True)

    def _params(self):
        return {"delta": self.delta}

    def value(self, backend, y_true, y_pred, w=None):
        return backend.huber(y_true, y_pred, delta=self.delta, **_weighted(w))

    def gradient(self, backend, y_true, y_pred, out=None, w=None):
        return backend.backprop_huber(y_true, y_pred, out, delta=self.delta, **_weighted(w))

    def get_config(self):
        return {**super().get_config(), "delta": self.delta}


def _axis(axis):
    """A cross-entropy's class axis: the last one (-1, or 1 of dl's 2-D outputs)."""
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis: expected an int, got {describe(axis)}")
    if axis not in (-1, 1):
        raise ValueError(f"axis: only the last axis (-1) holds the classes of dl's "
                         f"(samples, classes) outputs, got {axis} (see "
                         f"docs/keras-differences.md)")
    return int(axis)


def _label_smoothing(value):
    value = real("label_smoothing", value)
    if not 0 <= value <= 1:
        raise ValueError(f"label_smoothing: expected a number in [0, 1], got {value}")
    return value


class _FromLogits(Loss):
    def __init__(self, from_logits=False, name=None, reduction="sum_over_batch_size",
                 dtype=None, axis=-1):
        super().__init__(name, reduction, dtype)
        if not isinstance(from_logits, (bool, np.bool_)):
            raise TypeError(f"from_logits: expected True or False, got {describe(from_logits)}")
        self.from_logits = bool(from_logits)
        self.axis = _axis(axis)

    def _params(self):
        return {"from_logits": self.from_logits}

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits, "axis": self.axis}


class _Smoothed(_FromLogits):
    """A cross-entropy with Keras's ``label_smoothing``: the loss sees
    ``y (1 - s) + s / k`` (k = 2 for binary targets, the class count otherwise)."""

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name=None, dtype=None):
        super().__init__(from_logits, name, reduction, dtype, axis)
        self.label_smoothing = _label_smoothing(label_smoothing)
        self._smoothed = {}       # (ops, shape, dtype) -> the smoothed batch's buffer

    def _classes(self, y_true):
        raise NotImplementedError

    def loss_targets(self, ops, y_true):
        s = self.label_smoothing
        if not s:
            return y_true
        key = (id(ops), tuple(y_true.shape), np.dtype(y_true.dtype).str)
        out = self._smoothed.get(key)
        if out is None:
            if len(self._smoothed) > 8:
                self._smoothed.clear()
            out = self._smoothed[key] = ops.empty(tuple(y_true.shape), y_true.dtype)
        return ops.affine(y_true, 1.0 - s, s / self._classes(y_true), out)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


class BinaryCrossentropy(_Smoothed):
    """``-(y log p + (1 - y) log(1 - p))``, p clipped to [1e-7, 1 - 1e-7]."""
    name = "binary_crossentropy"
    kernel = "binary_crossentropy"

    def _classes(self, y_true):
        return 2

    def value(self, backend, y_true, y_pred, w=None):
        return backend.binary_crossentropy(y_true, y_pred, from_logits=self.from_logits,
                                           **_weighted(w))

    def gradient(self, backend, y_true, y_pred, out=None, w=None):
        return backend.backprop_binary_crossentropy(y_true, y_pred, out,
                                                    from_logits=self.from_logits,
                                                    **_weighted(w))


class CategoricalCrossentropy(_Smoothed):
    """``-sum_j y_j log p_j`` per sample, y one-hot (or soft) of shape (n, classes)."""
    name = "categorical_crossentropy"
    kernel = "categorical_crossentropy"
    broadcast_targets = False

    def _classes(self, y_true):
        return y_true.shape[-1]

    def value(self, backend, y_true, y_pred, w=None):
        return backend.categorical_crossentropy(y_true, y_pred, from_logits=self.from_logits,
                                                **_weighted(w))

    def gradient(self, backend, y_true, y_pred, out=None, w=None):
        return backend.backprop_categorical_crossentropy(y_true, y_pred, out,
                                                         from_logits=self.from_logits,
                                                         **_weighted(w))

    def fused(self, backend, y_true, logits, out=None, w=None):
        """Loss and gradient with respect to the logits of a softmax output."""
        return backend.softmax_crossentropy(y_true, logits, out, **_weighted(w))


class SparseCategoricalCrossentropy(_FromLogits):
    """Categorical cross-entropy with integer class labels of shape (n,) or (n, 1).

    ``ignore_class``: a label value whose samples are left out, as Keras masks them:
    their loss and gradient are 0 and, under "sum_over_batch_size", the mean is over
    the other samples.
    """
    name = "sparse_categorical_crossentropy"
    kernel = "sparse_categorical_crossentropy"

    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size",
                 name=None, dtype=None, axis=-1):
        super().__init__(from_logits, name, reduction, dtype, axis)
        if ignore_class is not None and (isinstance(ignore_class, (bool, np.bool_)) or
                                         not isinstance(ignore_class, (int, np.integer))):
            raise TypeError(f"ignore_class: expected None or an int, got "
                            f"{describe(ignore_class)}")
        self.ignore_class = None if ignore_class is None else int(ignore_class)

    def get_config(self):
        return {**super().get_config(), "ignore_class": self.ignore_class}

    def _masked(self, ops, y_true, sample_weight, dtype):
        if self.ignore_class is None:
            return y_true, sample_weight
        labels = np.asarray(ops.to_host(y_true))
        valid = labels != self.ignore_class
        n, kept = valid.shape[0], int(valid.sum())
        # Keras's mask weights: total / valid for the kept samples under a mean, 1 under
        # a sum; the ignored ones 0 (and any in-range label, so the kernel reads its row)
        scale = (n / kept if kept else 0.0) if self.reduction in (
            "sum_over_batch_size", "mean") else 1.0
        weights = np.where(valid, scale, 0.0)
        if sample_weight is not None:
            weights = weights * np.asarray(ops.to_host(sample_weight), dtype=np.float64)
        labels = np.where(valid, labels, 0)
        return (ops.to_device(labels.astype(np.int64)),
                ops.to_device(weights.astype(dtype)))

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
        checked = y_true if getattr(self, "ignore_class", None) is None else \
            y_true[y_true != self.ignore_class]
        if checked.size and (checked.min() < 0 or checked.max() >= classes):
            bad = checked[(checked < 0) | (checked >= classes)][0]
            raise ValueError(f"y: expected class labels in [0, {classes}) (the model's "
                             f"output units), got {bad}")
        return y_true.astype(np.int64, copy=False)

    def value(self, backend, y_true, y_pred, w=None):
        return backend.sparse_categorical_crossentropy(y_true, y_pred,
                                                       from_logits=self.from_logits,
                                                       **_weighted(w))

    def gradient(self, backend, y_true, y_pred, out=None, w=None):
        return backend.backprop_sparse_categorical_crossentropy(
            y_true, y_pred, out, from_logits=self.from_logits, **_weighted(w))

    def fused(self, backend, y_true, logits, out=None, w=None):
        return backend.sparse_softmax_crossentropy(y_true, logits, out, **_weighted(w))


class _Kernel(Loss):
    """A loss with no parameters: its value and gradient are the backend's kernels of
    the class's ``kernel`` name."""

    def value(self, backend, y_true, y_pred, w=None):
        return getattr(backend, self.kernel)(y_true, y_pred, **_weighted(w))

    def gradient(self, backend, y_true, y_pred, out=None, w=None):
        return getattr(backend, "backprop_" + self.kernel)(y_true, y_pred, out,
                                                            **_weighted(w))


class Hinge(_Kernel):
    """``mean(max(1 - y_true * y_pred, 0))``; labels -1/1, or 0/1 (converted to -1/1
    when every label is 0 or 1, as Keras does)."""
    name = kernel = "hinge"


class SquaredHinge(_Kernel):
    """``mean(max(1 - y_true * y_pred, 0)^2)``; labels as for :class:`Hinge`."""
    name = kernel = "squared_hinge"


class CategoricalHinge(_Kernel):
    """Per sample ``max(max((1 - y) * p) - sum(y * p) + 1, 0)``, y one-hot."""
    name = kernel = "categorical_hinge"
    broadcast_targets = False


class KLDivergence(_Kernel):
    """Per sample ``sum(y log(y / p))``, y and p clipped to [1e-7, 1]."""
    name = kernel = "kl_divergence"


class Poisson(_Kernel):
    """``mean(y_pred - y_true * log(y_pred + 1e-7))``."""
    name = kernel = "poisson"


class LogCosh(_Kernel):
    """``mean(log(cosh(y_pred - y_true)))``."""
    name = kernel = "log_cosh"


class MeanAbsolutePercentageError(_Kernel):
    """``100 * mean(|y_true - y_pred| / max(|y_true|, 1e-7))``."""
    name = kernel = "mean_absolute_percentage_error"


class MeanSquaredLogarithmicError(_Kernel):
    """``mean((log(max(y_pred, 1e-7) + 1) - log(max(y_true, 1e-7) + 1))^2)``."""
    name = kernel = "mean_squared_logarithmic_error"


class CosineSimilarity(_Kernel):
    """Per sample ``-sum(l2_normalize(y_true) * l2_normalize(y_pred))`` along ``axis``
    (the last: dl's outputs are (samples, values)); -1 for aligned vectors."""
    name = kernel = "cosine_similarity"
    broadcast_targets = False

    def __init__(self, axis=-1, reduction="sum_over_batch_size", name=None, dtype=None):
        super().__init__(name, reduction, dtype)
        self.axis = _axis(axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


_CLASSES = {c.__name__: c for c in (MeanSquaredError, MeanAbsoluteError, Huber,
                                    BinaryCrossentropy, CategoricalCrossentropy,
                                    SparseCategoricalCrossentropy, Hinge, SquaredHinge,
                                    CategoricalHinge, KLDivergence, Poisson, LogCosh,
                                    MeanAbsolutePercentageError,
                                    MeanSquaredLogarithmicError, CosineSimilarity)}
_ALIASES = {
    "mse": MeanSquaredError, "MSE": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "MAE": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "huber": Huber, "huber_loss": Huber,
    "binary_crossentropy": BinaryCrossentropy, "bce": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "hinge": Hinge, "squared_hinge": SquaredHinge, "categorical_hinge": CategoricalHinge,
    "kl_divergence": KLDivergence, "kld": KLDivergence, "KLD": KLDivergence,
    "kullback_leibler_divergence": KLDivergence, "poisson": Poisson,
    "log_cosh": LogCosh, "logcosh": LogCosh, "cosine_similarity": CosineSimilarity,
    "mape": MeanAbsolutePercentageError, "MAPE": MeanAbsolutePercentageError,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError, "MSLE": MeanSquaredLogarithmicError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
}


# ---------------------------------------------------------------- loss functions
# Keras's functional forms (keras.losses.mean_squared_error(y_true, y_pred)...): the
# per-sample losses, unreduced and unweighted.

def mean_squared_error(y_true, y_pred):
    """Per-sample ``mean((y_true - y_pred)^2, axis=-1)``."""
    return MeanSquaredError(reduction=None)(y_true, y_pred)


def mean_absolute_error(y_true, y_pred):
    """Per-sample ``mean(|y_true - y_pred|, axis=-1)``."""
    return MeanAbsoluteError(reduction=None)(y_true, y_pred)


def huber(y_true, y_pred, delta=1.0):
    """Per-sample Huber loss."""
    return Huber(delta=delta, reduction=None)(y_true, y_pred)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Per-sample binary cross-entropy (mean over the last axis)."""
    return BinaryCrossentropy(from_logits, label_smoothing, axis, reduction=None)(
        y_true, y_pred)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0,
                             axis=-1):
    """Per-sample categorical cross-entropy."""
    return CategoricalCrossentropy(from_logits, label_smoothing, axis, reduction=None)(
        y_true, y_pred)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None,
                                    axis=-1):
    """Per-sample sparse categorical cross-entropy (0 for an ignored class)."""
    return SparseCategoricalCrossentropy(from_logits, ignore_class, reduction=None,
                                         axis=axis)(y_true, y_pred)


def hinge(y_true, y_pred):
    """Per-sample hinge loss."""
    return Hinge(reduction=None)(y_true, y_pred)


def squared_hinge(y_true, y_pred):
    """Per-sample squared hinge loss."""
    return SquaredHinge(reduction=None)(y_true, y_pred)


def categorical_hinge(y_true, y_pred):
    """Per-sample categorical hinge loss."""
    return CategoricalHinge(reduction=None)(y_true, y_pred)


def kl_divergence(y_true, y_pred):
    """Per-sample Kullback-Leibler divergence."""
    return KLDivergence(reduction=None)(y_true, y_pred)


def poisson(y_true, y_pred):
    """Per-sample Poisson loss."""
    return Poisson(reduction=None)(y_true, y_pred)


def log_cosh(y_true, y_pred):
    """Per-sample mean of log(cosh(error))."""
    return LogCosh(reduction=None)(y_true, y_pred)


def mean_absolute_percentage_error(y_true, y_pred):
    """Per-sample mean absolute percentage error."""
    return MeanAbsolutePercentageError(reduction=None)(y_true, y_pred)


def mean_squared_logarithmic_error(y_true, y_pred):
    """Per-sample mean squared logarithmic error."""
    return MeanSquaredLogarithmicError(reduction=None)(y_true, y_pred)


def cosine_similarity(y_true, y_pred, axis=-1):
    """Per-sample negative cosine similarity."""
    return CosineSimilarity(axis=axis, reduction=None)(y_true, y_pred)


mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kullback_leibler_divergence = kl_divergence
logcosh = log_cosh


def get(identifier):
    """A loss from a name ("mse", "sparse_categorical_crossentropy"...), a config dict
    or an instance."""
    return _serial.resolve(identifier, "loss", _CLASSES, _ALIASES, Loss)


def serialize(loss):
    return _serial.serialize(loss)
