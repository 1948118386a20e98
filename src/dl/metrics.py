"""Metrics: running means over the samples seen since the last reset (Keras 3).

``"accuracy"`` / ``"acc"`` given to ``compile`` is resolved as Keras does once the
first batch shows the shapes: binary accuracy (threshold 0.5) when the output has one
unit, sparse categorical accuracy when the targets have a lower rank than the output
(or one column against several), else categorical accuracy.
"""
import warnings

import numpy as np

from . import _serial, config
from kernels import reference
from kernels.checks import describe, real
from ._args import optional_str


class Metric:
    """A running mean of per-sample values: ``update_state``, ``result``, ``reset_state``."""

    name = "metric"
    direction = "up"   # which way is better (EarlyStopping's mode="auto")

    def __init__(self, name=None, dtype=None):
        if name is not None:
            # the name is a key of fit's and evaluate's logs
            self.name = optional_str("name", name)
        # Keras's metric dtype (its variables'): dl sums in double whatever it is
        self.dtype = config.resolve_dtype(dtype).name
        self.reset_state()

    def reset_state(self):
        self.total = 0.0
        self.count = 0
        self._device = None     # (ops, accumulator) while summing on a device

    def per_sample(self, y_true, y_pred):
        """One value per sample, shape (n,)."""
        raise NotImplementedError

    def values(self, y_true, y_pred):
        """The values sample weights apply to: per sample (n,), or per element (n, d)
        for the elementwise accuracies (whose sample's value is their mean)."""
        return self.per_sample(y_true, y_pred)

    def device_kind(self, y_true, y_pred):
        """The ``kernels.cuda.devops`` metric computing this one on device arrays of
        these shapes, or None (the arrays are then read back and summed here)."""
        return None

    def update_on(self, ops, y_true, y_pred, sample_weight=None):
        """``update_state`` for arrays of a backend's ``ops`` (the training loop's
        entry point): on a device, built-in metrics sum there, read back by result()
        (weighted ones are read back and summed here)."""
        if ops.on_device:
            kind = self.device_kind(y_true, y_pred) if sample_weight is None else None
            if kind is not None:
                if self._device is None:
                    self._device = (ops, ops.acc_new())
                ops.metric_update(kind, y_true, y_pred, self._device[1],
                                  getattr(self, "threshold", 0.5))
                return
            y_true, y_pred = ops.to_host(y_true), ops.to_host(y_pred)
            if sample_weight is not None:
                sample_weight = ops.to_host(sample_weight)
        self.update_state(y_true, y_pred, sample_weight)

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add a batch: the per-sample values' sum to the total and their count (with
        ``sample_weight``, as Keras: the weighted values' sum, and the weights' sum)."""
        y_true = np.asarray(y_true)
        y_pred = np.asarray(y_pred)
        values = np.asarray(self.values(y_true, y_pred), dtype=np.float64)
        if values.ndim == 0:          # one value for the batch: one sample (Keras's Mean)
            values = values.reshape(1)
        n = values.shape[0]
        if sample_weight is None:
            per = values.reshape(n, -1).mean(axis=1) if values.ndim > 1 else values
            self.total += float(per.sum())
            self.count += n
            return
        values, w = _weighted_values(values, sample_weight)
        self.total += float(values.sum())
        self.count += float(w.sum())

    def _sums(self):
        """``(total, count)`` of the running mean (a device's part read back)."""
        total, count = self.total, self.count
        if self._device is not None:
            ops, acc = self._device
            s, c = ops.acc_read(acc)
            total, count = total + s, count + c
        return total, count

    def _set_sums(self, total, count):
        """Restart the running mean from ``(total, count)`` (a resumed fit's epoch)."""
        self.reset_state()
        self.total, self.count = float(total), count

    def _get_state(self):
        """The metric's state as JSON-able lists (what a BackupAndRestore keeps)."""
        return [float(v) for v in self._sums()]

    def _set_state(self, state):
        """Restore what :meth:`_get_state` returned."""
        total, count = state
        self._set_sums(total, count)

    def result(self):
        total, count = self._sums()
        return total / count if count else 0.0

    def __call__(self, y_true, y_pred, sample_weight=None):
        """A one-off value on these arrays (the running state is left alone)."""
        m = type(self).from_config(self.get_config())
        m.update_state(y_true, y_pred, sample_weight)
        return m.result()

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, cfg):
        return cls(**cfg)

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"


def _weighted_values(values, sample_weight):
    """Keras's ``reduce_to_samplewise_values``: (the weighted values summed per sample,
    the weights per sample).  Weights of one per sample, or one per element of
    elementwise values (broadcast, e.g. (1, d)): a trailing 1 is squeezed, values are
    averaged down to the weights' rank, the weights broadcast to the values, and both
    averaged over all but the sample axis."""
    w = np.asarray(sample_weight)
    if isinstance(sample_weight, (bool, np.bool_)) or w.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight: expected numbers, got {describe(sample_weight)}")
    w = w.astype(np.float64)
    if w.ndim == values.ndim + 1 and w.shape[-1] == 1:
        w = w[..., 0]
    elif values.ndim == w.ndim + 1 and values.shape[-1] == 1:
        values = values[..., 0]
    if values.ndim > w.ndim:
        values = values.reshape(values.shape[:w.ndim] + (-1,)).mean(axis=-1)
    try:
        w = np.broadcast_to(w, values.shape)
    except ValueError:
        raise ValueError(f"sample_weight: expected weights of shape {values.shape[:1]} "
                         f"(one per sample) or broadcastable to {values.shape}, got "
                         f"{np.shape(sample_weight)}") from None
    values = values * w
    if w.ndim > 1:
        w = w.reshape(w.shape[0], -1).mean(axis=1)
        values = values.reshape(values.shape[0], -1).mean(axis=1)
    return values, w


class BinaryAccuracy(Metric):
    """Share of elements where ``(y_pred > threshold) == y_true``."""
    name = "binary_accuracy"

    def __init__(self, name=None, dtype=None, threshold=0.5):
        self.threshold = real("threshold", threshold)
        super().__init__(name, dtype)

    def values(self, y_true, y_pred):
        # Keras: y_true == (y_pred > threshold) per element, the prediction cast to 0/1
        n = y_pred.shape[0]
        p = (y_pred.reshape(n, -1) > self.threshold).astype(np.float64)
        t = y_true.reshape(n, -1)
        if t.shape != p.shape and t.shape[1] == 1:
            t = np.broadcast_to(t, p.shape)
        return t == p

    def per_sample(self, y_true, y_pred):
        return self.values(y_true, y_pred).mean(axis=1)

    def device_kind(self, y_true, y_pred):
        return "binary_accuracy" if tuple(y_true.shape) == tuple(y_pred.shape) else None

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


class CategoricalAccuracy(Metric):
    """Share of rows where ``argmax(y_pred) == argmax(y_true)`` (one-hot targets)."""
    name = "categorical_accuracy"

    def per_sample(self, y_true, y_pred):
        return np.argmax(y_pred, axis=-1) == np.argmax(y_true, axis=-1)

    def device_kind(self, y_true, y_pred):
        same = tuple(y_true.shape) == tuple(y_pred.shape) and y_pred.ndim == 2
        return "categorical_accuracy" if same else None


class SparseCategoricalAccuracy(Metric):
    """Share of rows where ``argmax(y_pred)`` equals the integer label."""
    name = "sparse_categorical_accuracy"

    def per_sample(self, y_true, y_pred):
        # Keras: labels (n, 1) against predictions of the same rank are squeezed, then
        # argmax(y_pred) == labels broadcast, and each sample's matches averaged
        if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
            y_true = y_true[..., 0]
        matches = (np.argmax(y_pred, axis=-1) == y_true).astype(np.float64)
        if matches.ndim == 0:
            return matches.reshape(1)
        return matches.reshape(matches.shape[0], -1).mean(axis=1)

    def device_kind(self, y_true, y_pred):
        ok = y_true.dtype.kind in "iu" and y_pred.ndim == 2 and y_true.size == y_pred.shape[0]
        return "sparse_categorical_accuracy" if ok else None


class MeanSquaredError(Metric):
    name = "mean_squared_error"
    direction = "down"

    def per_sample(self, y_true, y_pred):
        n = y_pred.shape[0]
        d = y_pred.reshape(n, -1) - y_true.reshape(n, -1)
        return np.mean(d * d, axis=1)

    def device_kind(self, y_true, y_pred):
        return "mean_squared_error" if tuple(y_true.shape) == tuple(y_pred.shape) else None


class MeanAbsoluteError(Metric):
    name = "mean_absolute_error"
    direction = "down"

    def per_sample(self, y_true, y_pred):
        n = y_pred.shape[0]
        return np.mean(np.abs(y_pred.reshape(n, -1) - y_true.reshape(n, -1)), axis=1)

    def device_kind(self, y_true, y_pred):
        return "mean_absolute_error" if tuple(y_true.shape) == tuple(y_pred.shape) else None


class _LossMetric(Metric):
    """The running mean of a loss's per-sample values (Keras's metrics of the same
    formulas: Hinge, KLDivergence, LogCoshError...), computed on the host in double
    precision by the reference's per-sample losses."""
    kernel = None
    direction = "down"
    sign = 1.0

    def per_sample(self, y_true, y_pred):
        n = y_pred.shape[0]
        p = np.asarray(y_pred, dtype=np.float64).reshape(n, -1)
        t = np.asarray(y_true, dtype=np.float64)
        if t.size == n and p.shape[1] > 1 and self.kernel not in reference.ROW_LOSSES:
            t = np.broadcast_to(t.reshape(n, 1), p.shape)     # one target per sample
        if t.size != p.size:
            raise ValueError(f"y_true: expected one target per prediction, shape "
                             f"{np.shape(y_pred)}, got shape {np.shape(y_true)}")
        t = np.ascontiguousarray(t.reshape(p.shape))
        return self.sign * reference.per_sample_losses(self.kernel, t, p)


class Hinge(_LossMetric):
    name = kernel = "hinge"


class SquaredHinge(_LossMetric):
    name = kernel = "squared_hinge"


class CategoricalHinge(_LossMetric):
    name = kernel = "categorical_hinge"


class KLDivergence(_LossMetric):
    name = kernel = "kl_divergence"


class Poisson(_LossMetric):
    name = kernel = "poisson"


class LogCoshError(_LossMetric):
    name = "logcosh"
    kernel = "log_cosh"


class MeanAbsolutePercentageError(_LossMetric):
    name = kernel = "mean_absolute_percentage_error"


class MeanSquaredLogarithmicError(_LossMetric):
    name = kernel = "mean_squared_logarithmic_error"


class CosineSimilarity(_LossMetric):
    """The mean cosine similarity of the samples (1 when aligned: the loss's negative)."""
    name = kernel = "cosine_similarity"
    direction = "up"
    sign = -1.0

    def __init__(self, name=None, dtype=None, axis=-1):
        if isinstance(axis, (bool, np.bool_)) or axis not in (-1, 1):
            raise ValueError(f"axis: only the last axis (-1) holds the values of dl's "
                             f"(samples, values) outputs, got {axis!r}")
        self.axis = int(axis)
        super().__init__(name, dtype)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class Accuracy(Metric):
    """Keras's ``Accuracy``: share of elements where y_pred equals y_true exactly."""
    name = "accuracy"

    def values(self, y_true, y_pred):
        n = y_pred.shape[0]
        return y_pred.reshape(n, -1) == y_true.reshape(n, -1)

    def per_sample(self, y_true, y_pred):
        return self.values(y_true, y_pred).mean(axis=1)


class _ResolvedAccuracy(Metric):
    """The metric ``"accuracy"`` becomes once the shapes are known; named as given."""

    def __init__(self, name="accuracy", dtype=None):
        self.inner = None
        super().__init__(name, dtype)

    def reset_state(self):
        self._pending = None     # sums restored before the shapes were known
        if getattr(self, "inner", None) is not None:
            self.inner.reset_state()

    def resolve(self, y_true, y_pred):
        t, p = tuple(y_true.shape), tuple(y_pred.shape)    # device arrays too
        if len(p) >= 1 and p[-1] == 1:
            self.inner = BinaryAccuracy()
        elif len(t) < len(p) or (t[-1] == 1 and p[-1] > 1):
            self.inner = SparseCategoricalAccuracy()
        else:
            self.inner = CategoricalAccuracy()
        if self._pending is not None:
            self.inner._set_sums(*self._pending)
            self._pending = None

    def _sums(self):
        if self.inner is None:
            return self._pending or (0.0, 0)
        return self.inner._sums()

    def _set_sums(self, total, count):
        self.reset_state()
        if self.inner is None:
            self._pending = (total, count)
        else:
            self.inner._set_sums(total, count)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
        if self.inner is None:
            self.resolve(y_true, y_pred)
        self.inner.update_state(y_true, y_pred, sample_weight)

    def update_on(self, ops, y_true, y_pred, sample_weight=None):
        if self.inner is None:
            self.resolve(y_true, y_pred)        # shapes only: fine for device arrays
        self.inner.update_on(ops, y_true, y_pred, sample_weight)

    def result(self):
        total, count = self._sums()
        return total / count if count else 0.0

    def __call__(self, y_true, y_pred, sample_weight=None):
        m = _ResolvedAccuracy(self.name)
        m.update_state(y_true, y_pred, sample_weight)
        return m.result()

    def get_config(self):
        return {"name": self.name}


class RootMeanSquaredError(MeanSquaredError):
    """``sqrt`` of the (weighted) mean squared error over the samples seen (Keras)."""
    name = "root_mean_squared_error"

    def device_kind(self, y_true, y_pred):
        return None

    def result(self):
        return float(np.sqrt(super().result()))


def _in_top_k(scores, targets, k):
    """Whether each row's target class is among its ``k`` highest scores; as Keras's
    in_top_k, classes tied with the k-th score count as in the top k."""
    target_scores = np.take_along_axis(scores, targets[:, None], axis=1)
    return (scores > target_scores).sum(axis=1) < k


def _k(k):
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k: expected an int >= 1, got {k!r}")
    return int(k)


class TopKCategoricalAccuracy(Metric):
    """Share of samples whose one-hot target's class is among the ``k`` (5) highest
    predictions."""
    name = "top_k_categorical_accuracy"

    def __init__(self, k=5, name=None, dtype=None):
        self.k = _k(k)
        super().__init__(name, dtype)

    def per_sample(self, y_true, y_pred):
        n = y_pred.shape[0]
        scores = y_pred.reshape(n, -1)
        return _in_top_k(scores, np.argmax(y_true.reshape(n, -1), axis=1), self.k)

    def get_config(self):
        return {**super().get_config(), "k": self.k}


class SparseTopKCategoricalAccuracy(Metric):
    """TopKCategoricalAccuracy with integer labels (``from_sorted_ids``: y_pred holds
    each sample's top class ids, best first, as Keras's)."""
    name = "sparse_top_k_categorical_accuracy"

    def __init__(self, k=5, name=None, dtype=None, from_sorted_ids=False):
        self.k = _k(k)
        if not isinstance(from_sorted_ids, (bool, np.bool_)):
            raise TypeError(f"from_sorted_ids: expected True or False, got "
                            f"{describe(from_sorted_ids)}")
        self.from_sorted_ids = bool(from_sorted_ids)
        super().__init__(name, dtype)

    def per_sample(self, y_true, y_pred):
        n = y_pred.shape[0]
        labels = y_true.reshape(n, -1)[:, 0].astype(np.int64)
        if self.from_sorted_ids:
            return (y_pred.reshape(n, -1)[:, :self.k] == labels[:, None]).any(axis=1)
        return _in_top_k(y_pred.reshape(n, -1), labels, self.k)

    def get_config(self):
        return {**super().get_config(), "k": self.k, "from_sorted_ids": self.from_sorted_ids}


EPSILON = 1e-7      # Keras's backend.epsilon()


class _SumsMetric(Metric):
    """A metric whose state is named arrays of weighted sums (the confusion counts of
    Precision / Recall / F-scores, R2's sums), updated on the host (a device's arrays
    are read back), its result computed from them."""

    _names = ()

    def reset_state(self):
        self._device = None
        self.state = None        # name -> float64 array, made at the first update

    def _add(self, **sums):
        if self.state is None:
            self.state = {k: np.zeros(np.shape(v)) for k, v in sums.items()}
        for k, v in sums.items():
            self.state[k] = self.state[k] + v

    def update_on(self, ops, y_true, y_pred, sample_weight=None):
        if ops.on_device:
            y_true, y_pred = ops.to_host(y_true), ops.to_host(y_pred)
            if sample_weight is not None:
                sample_weight = ops.to_host(sample_weight)
        self.update_state(y_true, y_pred, sample_weight)

    def _sums(self):
        raise TypeError(f"metric {self.name!r}: its state is not a running mean")

    def _get_state(self):
        return None if self.state is None else {k: v.tolist() for k, v in self.state.items()}

    def _set_state(self, state):
        self.reset_state()
        if state is not None:
            self.state = {k: np.asarray(v, dtype=np.float64) for k, v in state.items()}


def _thresholds(thresholds):
    if thresholds is None:
        return None
    values = [thresholds] if np.ndim(thresholds) == 0 else list(thresholds)
    out = []
    for t in values:
        if isinstance(t, (bool, np.bool_)) or not isinstance(
                t, (int, float, np.integer, np.floating)) or not 0 <= t <= 1:
            raise ValueError(f"thresholds: expected numbers in [0, 1], got "
                             f"{thresholds!r}")
        out.append(float(t))
    return out


class _ConfusionMetric(_SumsMetric):
    """Keras's confusion-count metrics (``update_confusion_matrix_variables``): a
    prediction is positive when above each threshold (0.5), optionally only among the
    sample's ``top_k`` predictions and for one ``class_id``; counts weighted by the
    sample weights."""

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        self.init_thresholds = thresholds
        # Keras: 0.5 by default; with top_k and no thresholds, every kept one counts
        self.thresholds = _thresholds(thresholds) or ([-1e10] if top_k is not None
                                                      else [0.5])
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(
                top_k, (int, np.integer)) or top_k < 1):
            raise ValueError(f"top_k: expected None or an int >= 1, got {top_k!r}")
        if class_id is not None and (isinstance(class_id, bool) or not isinstance(
                class_id, (int, np.integer)) or class_id < 0):
            raise ValueError(f"class_id: expected None or an int >= 0, got {class_id!r}")
        self.top_k = None if top_k is None else int(top_k)
        self.class_id = None if class_id is None else int(class_id)
        super().__init__(name, dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = np.asarray(y_true, dtype=np.float64)
        y_pred = np.asarray(y_pred, dtype=np.float64)
        if y_true.shape != y_pred.shape:
            if y_true.size == y_pred.size:
                y_true = y_true.reshape(y_pred.shape)
            else:
                raise ValueError(f"y_true: expected the shape of y_pred {y_pred.shape}, "
                                 f"got {y_true.shape}")
        if ((y_true != 0) & (y_true != 1)).any():
            raise ValueError("y_true: expected labels of 0 and 1")
        if self.class_id is not None and y_pred.ndim < 2:
            raise ValueError(f"y_pred: expected (samples, classes) predictions with "
                             f"class_id={self.class_id}, got shape {y_pred.shape}")
        if self.top_k is not None:
            # exactly k per sample (ties: the lower index first, as Keras's top_k)
            top = np.argsort(-y_pred, axis=-1, kind="stable")[..., :self.top_k]
            kept = np.zeros(y_pred.shape, bool)
            np.put_along_axis(kept, top, True, axis=-1)
            y_pred = np.where(kept, y_pred, -np.inf)
        if self.class_id is not None:
            y_true, y_pred = y_true[..., self.class_id], y_pred[..., self.class_id]
        w = np.ones(y_pred.shape)
        if sample_weight is not None:
            sw = np.asarray(sample_weight, dtype=np.float64)
            while sw.ndim < w.ndim:
                sw = sw[..., None]
            w = np.broadcast_to(sw, w.shape)
        t, w = y_true.ravel(), w.ravel()
        pred = y_pred.ravel()[None, :] > np.asarray(self.thresholds)[:, None]
        self._add(tp=(pred * (t * w)).sum(axis=1), fp=(pred * ((1 - t) * w)).sum(axis=1),
                  fn=(~pred * (t * w)).sum(axis=1), tn=(~pred * ((1 - t) * w)).sum(axis=1))

    def _counts(self):
        zeros = np.zeros(len(self.thresholds))
        if self.state is None:
            return zeros, zeros, zeros
        return self.state["tp"], self.state["fp"], self.state["fn"]

    @staticmethod
    def _ratio(num, den):
        out = np.divide(num, den, out=np.zeros_like(num), where=den != 0)   # divide_no_nan
        return float(out[0]) if out.size == 1 else out

    def get_config(self):
        return {**super().get_config(), "thresholds": self.init_thresholds,
                "top_k": self.top_k, "class_id": self.class_id}


class Precision(_ConfusionMetric):
    """``TP / (TP + FP)`` (Keras: 0 where nothing was predicted positive)."""
    name = "precision"

    def result(self):
        tp, fp, _ = self._counts()
        return self._ratio(tp, tp + fp)


class Recall(_ConfusionMetric):
    """``TP / (TP + FN)``."""
    name = "recall"

    def result(self):
        tp, _, fn = self._counts()
        return self._ratio(tp, tp + fn)


class AUC(_SumsMetric):
    """Area under the ROC or precision-recall curve, approximated as Keras does: the
    confusion counts at ``num_thresholds`` thresholds (evenly spaced in [0, 1], plus
    one just below 0 and one just above 1; or the given ``thresholds``), then a Riemann
    sum (``summation_method`` "interpolation", "minoring" or "majoring"; PR with
    interpolation: Davis & Goadrich's interpolation).  ``curve``: "ROC", "PR" or
    "PRGAIN" (precision-recall gain, Flach & Kull).  A label counts as positive when
    it is not 0.  ``multi_label``: one curve per column of ``y_pred``, their AUCs
    averaged (weighted by ``label_weights``); otherwise every entry is one sample and
    ``label_weights`` weighs the columns.  ``from_logits``: a sigmoid first."""
    name = "auc"

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation",
                 name=None, dtype=None, thresholds=None, multi_label=False, num_labels=None,
                 label_weights=None, from_logits=False):
        if not isinstance(curve, str) or curve.upper() not in ("ROC", "PR", "PRGAIN"):
            raise ValueError(f'Invalid AUC curve value: "{curve}". Expected values are '
                             f'["PR", "ROC", "PRGAIN"]')
        if not isinstance(summation_method, str) or summation_method.lower() not in (
                "interpolation", "majoring", "minoring"):
            raise ValueError(f'Invalid AUC summation method value: "{summation_method}". '
                             f'Expected values are ["interpolation", "majoring", '
                             f'"minoring"]')
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            inner = sorted(_thresholds(thresholds))
            self.num_thresholds = len(inner) + 2
            # evenly spaced (Keras's is_evenly_distributed_thresholds): the bucketed
            # update, as for the default thresholds
            edges = np.array([0.0] + inner + [1.0])
            even = np.arange(len(edges), dtype=np.float32) / (len(edges) - 1)
            self._evenly = len(edges) >= 3 and np.allclose(edges, even, atol=1e-7)
        else:
            if (isinstance(num_thresholds, bool)
                    or not isinstance(num_thresholds, (int, np.integer))
                    or num_thresholds <= 1):
                raise ValueError(f"Argument `num_thresholds` must be an integer > 1. "
                                 f"Received: num_thresholds={num_thresholds}")
            self.num_thresholds = int(num_thresholds)
            inner = [(i + 1) * 1.0 / (self.num_thresholds - 1)
                     for i in range(self.num_thresholds - 2)]
            self._evenly = True
        self._thresholds = np.array([0.0 - 1e-7] + inner + [1.0 + 1e-7])
        self.curve = curve.upper()
        self.summation_method = summation_method.lower()
        if not isinstance(multi_label, (bool, np.bool_)):
            raise TypeError(f"multi_label: expected True or False, got {describe(multi_label)}")
        self.multi_label = bool(multi_label)
        if num_labels is not None and not self.multi_label:
            raise ValueError("`num_labels` is needed only when `multi_label` is True.")
        self.num_labels = num_labels
        self.label_weights = (None if label_weights is None
                              else np.asarray(label_weights, dtype=np.float64))
        if not isinstance(from_logits, (bool, np.bool_)):
            raise TypeError(f"from_logits: expected True or False, got {describe(from_logits)}")
        self._from_logits = bool(from_logits)
        super().__init__(name, dtype)

    direction = "up"

    @property
    def thresholds(self):
        return list(self._thresholds)

    def _count(self, key):
        if self.state is None:
            labels = self.num_labels or getattr(self, "_built_labels", None)
            shape = (self.num_thresholds,) + (
                (labels,) if self.multi_label and labels else ())
            return np.zeros(shape)
        return self.state[key]

    # Keras's state variables, by name
    true_positives = property(lambda self: self._count("tp"))
    false_positives = property(lambda self: self._count("fp"))
    true_negatives = property(lambda self: self._count("tn"))
    false_negatives = property(lambda self: self._count("fn"))

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = np.asarray(y_true, dtype=np.float64)
        y_pred = np.asarray(y_pred, dtype=np.float64)
        if y_true.shape != y_pred.shape:
            if y_true.size != y_pred.size:
                raise ValueError(f"y_true: expected the shape of y_pred {y_pred.shape}, "
                                 f"got {y_true.shape}")
            y_true = y_true.reshape(y_pred.shape)
        if self.multi_label and y_pred.ndim != 2:
            raise ValueError(f"`y_pred` must have rank 2 when `multi_label=True`. Found "
                             f"rank {y_pred.ndim}. Full shape received for `y_pred`: "
                             f"{y_pred.shape}")
        if self.multi_label:
            self._built_labels = y_pred.shape[1]     # kept by reset_state, as Keras's
        if self._from_logits:
            y_pred = 1 / (1 + np.exp(-y_pred))
        w = np.ones(y_pred.shape)
        if sample_weight is not None:
            sw = np.asarray(sample_weight, dtype=np.float64)
            while sw.ndim < w.ndim:
                sw = sw[..., None]
            w = w * sw
        if self.label_weights is not None and not self.multi_label:
            w = w * self.label_weights            # broadcast over the last axis
        pos = (y_true != 0).astype(np.float64)
        if not self.multi_label:
            pos, y_pred, w = pos.reshape(-1, 1), y_pred.reshape(-1, 1), w.reshape(-1, 1)
        t_w, f_w = pos * w, (1 - pos) * w         # (samples, labels)
        T = self.num_thresholds
        if self._evenly:
            # Keras's bucketed update: positive at threshold i iff ceil(p (T-1)) - 1 >= i
            p = np.clip(y_pred, 0.0, 1.0)
            bucket = np.maximum(np.ceil(p * (T - 1)) - 1, 0).astype(np.int64)
            tp = np.zeros((T, t_w.shape[1]))
            fp = np.zeros((T, t_w.shape[1]))
            cols = np.broadcast_to(np.arange(t_w.shape[1]), bucket.shape)
            np.add.at(tp, (bucket, cols), t_w)
            np.add.at(fp, (bucket, cols), f_w)
            tp = np.flip(np.cumsum(np.flip(tp, 0), 0), 0)
            fp = np.flip(np.cumsum(np.flip(fp, 0), 0), 0)
        else:
            above = y_pred[None, :, :] > self._thresholds[:, None, None]    # (T, n, L)
            tp = (above * t_w[None]).sum(axis=1)
            fp = (above * f_w[None]).sum(axis=1)
        fn = t_w.sum(axis=0)[None, :] - tp
        tn = f_w.sum(axis=0)[None, :] - fp
        if not self.multi_label:
            tp, fp, tn, fn = tp[:, 0], fp[:, 0], tn[:, 0], fn[:, 0]
        self._add(tp=tp, fp=fp, tn=tn, fn=fn)

    @staticmethod
    def _div(num, den):
        return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape),
                         where=den != 0)

    def _average(self, by_label):
        if not self.multi_label:
            return float(np.sum(by_label))
        by_label = np.sum(by_label, axis=0)
        if self.label_weights is None:
            return float(np.mean(by_label))
        total = float(np.sum(self.label_weights))
        return float(np.sum(by_label * self.label_weights) / total) if total else 0.0

    def result(self):
        if self.state is None:
            return 0.0
        tp, fp, tn, fn = (self.state[k] for k in ("tp", "fp", "tn", "fn"))
        if self.curve == "PR" and self.summation_method == "interpolation":
            # Davis & Goadrich: precision interpolated between the thresholds
            dtp = tp[:-1] - tp[1:]
            p = tp + fp
            dp = p[:-1] - p[1:]
            slope = self._div(dtp, np.maximum(dp, 0))
            intercept = tp[1:] - slope * p[1:]
            ratio = np.where((p[:-1] > 0) & (p[1:] > 0),
                             self._div(p[:-1], np.maximum(p[1:], 0)), 1.0)
            increments = self._div(slope * (dtp + intercept * np.log(ratio)),
                                   np.maximum(tp[1:] + fn[1:], 0))
            return self._average(increments)
        recall = self._div(tp, tp + fn)
        if self.curve == "ROC":
            x, y = self._div(fp, fp + tn), recall
        elif self.curve == "PR":
            x, y = recall, self._div(tp, tp + fp)
        else:
            # gains scaled by P/N; no true positive: recall gain 0, precision gain 1;
            # a negative recall gain (recall below the positives' share) is 0
            scale = self._div(tp + fn, tn + fp)
            recall_gain = np.where(tp == 0, 0.0, 1.0 - scale * self._div(fn, tp))
            precision_gain = np.where(tp == 0, 1.0, 1.0 - scale * self._div(fp, tp))
            x, y = np.maximum(recall_gain, 0.0), precision_gain
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:-1], y[1:])
        else:
            heights = np.maximum(y[:-1], y[1:])
        return self._average((x[:-1] - x[1:]) * heights)

    def get_config(self):
        cfg = {**super().get_config(), "num_thresholds": self.num_thresholds,
               "curve": self.curve, "summation_method": self.summation_method,
               "multi_label": self.multi_label, "num_labels": self.num_labels,
               "label_weights": (None if self.label_weights is None
                                 else self.label_weights.tolist()),
               "from_logits": self._from_logits}
        if self._init_from_thresholds:
            cfg["thresholds"] = self.thresholds[1:-1]
        return cfg


class FBetaScore(_SumsMetric):
    """Keras's F-beta score of multi-label / one-hot predictions (n, classes):
    positive above ``threshold``, or (None) the row's highest prediction; per class
    (``average=None``), or averaged "micro" (counts pooled), "macro" or "weighted"
    (by the true counts)."""
    name = "fbeta_score"

    def __init__(self, average=None, beta=1.0, threshold=None, name=None, dtype=None):
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(f"average: expected None, 'micro', 'macro' or 'weighted', got "
                             f"{average!r}")
        if isinstance(beta, (bool, np.bool_)) or not isinstance(
                beta, (int, float, np.integer, np.floating)) or not beta > 0:
            raise ValueError(f"beta: expected a number > 0, got {beta!r}")
        if threshold is not None and (isinstance(threshold, (bool, np.bool_)) or not
                                      isinstance(threshold, (int, float, np.integer,
                                                             np.floating))
                                      or not 0 < threshold <= 1):
            raise ValueError(f"threshold: expected None or a number in (0, 1], got "
                             f"{threshold!r}")
        self.average, self.beta = average, float(beta)
        self.threshold = None if threshold is None else float(threshold)
        super().__init__(name, dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = np.asarray(y_true, dtype=np.float64)
        y_pred = np.asarray(y_pred, dtype=np.float64)
        if y_pred.ndim != 2 or y_true.shape != y_pred.shape:
            raise ValueError(f"y_pred: expected (samples, classes) predictions with "
                             f"targets of the same shape, got {y_pred.shape} and "
                             f"{y_true.shape}")
        if self.threshold is None:
            top = y_pred.max(axis=-1, keepdims=True)
            pred = ((y_pred >= top) & (np.abs(y_pred) > 1e-9)).astype(np.float64)
        else:
            pred = (y_pred > self.threshold).astype(np.float64)
        w = np.ones_like(y_true)
        if sample_weight is not None:
            sw = np.asarray(sample_weight, dtype=np.float64)
            w = np.broadcast_to(sw.reshape(sw.shape + (1,) * (2 - sw.ndim)), y_true.shape)
        axis = None if self.average == "micro" else 0
        self._add(tp=(pred * y_true * w).sum(axis=axis),
                  fp=(pred * (1 - y_true) * w).sum(axis=axis),
                  fn=((1 - pred) * y_true * w).sum(axis=axis),
                  support=(y_true * w).sum(axis=axis))

    def result(self):
        if self.state is None:
            return 0.0
        tp, fp, fn = self.state["tp"], self.state["fp"], self.state["fn"]
        precision = tp / (tp + fp + EPSILON)
        recall = tp / (tp + fn + EPSILON)
        b2 = self.beta ** 2
        score = precision * recall / (b2 * precision + recall + EPSILON) * (1 + b2)
        if self.average == "weighted":
            support = self.state["support"]
            score = np.sum(score * support / (np.sum(support) + EPSILON))
        elif self.average is not None:
            score = np.mean(score)
        score = np.asarray(score)
        return float(score) if score.ndim == 0 else score

    def get_config(self):
        return {**super().get_config(), "average": self.average, "beta": self.beta,
                "threshold": self.threshold}


class F1Score(FBetaScore):
    """FBetaScore with beta = 1."""
    name = "f1_score"

    def __init__(self, average=None, threshold=None, name=None, dtype=None):
        super().__init__(average, 1.0, threshold, name, dtype)

    def get_config(self):
        cfg = super().get_config()
        del cfg["beta"]
        return cfg


class R2Score(_SumsMetric):
    """Keras's coefficient of determination: per output ``1 - SS_res / SS_tot``
    (weighted), aggregated "uniform_average", "variance_weighted_average" or not
    (None); ``num_regressors`` > 0 gives the adjusted score."""
    name = "r2_score"

    def __init__(self, class_aggregation="uniform_average", num_regressors=0, name=None,
                 dtype=None):
        if class_aggregation not in (None, "uniform_average", "variance_weighted_average"):
            raise ValueError(f"class_aggregation: expected None, 'uniform_average' or "
                             f"'variance_weighted_average', got {class_aggregation!r}")
        if isinstance(num_regressors, bool) or not isinstance(
                num_regressors, (int, np.integer)) or num_regressors < 0:
            raise ValueError(f"num_regressors: expected an int >= 0, got "
                             f"{num_regressors!r}")
        self.class_aggregation = class_aggregation
        self.num_regressors = int(num_regressors)
        super().__init__(name, dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = np.asarray(y_true, dtype=np.float64)
        y_pred = np.asarray(y_pred, dtype=np.float64)
        if y_true.ndim == 1:
            y_true = y_true[:, None]
        if y_pred.ndim == 1:
            y_pred = y_pred[:, None]
        if y_true.shape != y_pred.shape:
            raise ValueError(f"y_true: expected the shape of y_pred {y_pred.shape}, got "
                             f"{y_true.shape}")
        w = np.ones_like(y_true) if sample_weight is None else np.asarray(
            sample_weight, dtype=np.float64)
        if w.ndim == 1:
            w = w[:, None]
        w = np.broadcast_to(w, y_true.shape)
        self._add(sum=(y_true * w).sum(axis=0), squared_sum=(y_true * y_true * w).sum(axis=0),
                  total_mse=((y_true - y_pred) ** 2 * w).sum(axis=0), count=w.sum(axis=0),
                  num_samples=np.array(float((w != 0).any(axis=-1).sum())))

    def result(self):
        if self.state is None:
            return 0.0
        st = self.state
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = st["sum"] / st["count"]
            total = st["squared_sum"] - st["sum"] * mean
            raw = 1 - st["total_mse"] / total
        raw = np.where(np.isinf(raw), 0.0, raw)
        if self.class_aggregation == "uniform_average":
            score = np.mean(raw)
        elif self.class_aggregation == "variance_weighted_average":
            score = np.sum(total * raw) / np.sum(total)
        else:
            score = raw
        n, p = float(st["num_samples"]), self.num_regressors
        if p:
            if p > n - 1:
                warnings.warn("More independent predictors than datapoints in adjusted R2 "
                              "score. Falling back to standard R2 score.", stacklevel=2)
            elif p == n - 1:
                warnings.warn("Division by zero in Adjusted R2 score. Falling back to "
                              "standard R2 score.", stacklevel=2)
            else:
                score = 1 - (1 - score) * (n - 1) / (n - p - 1)
        score = np.asarray(score)
        return float(score) if score.ndim == 0 else score

    def get_config(self):
        return {**super().get_config(), "class_aggregation": self.class_aggregation,
                "num_regressors": self.num_regressors}


_CLASSES = {c.__name__: c for c in (Accuracy, BinaryAccuracy, CategoricalAccuracy,
                                    SparseCategoricalAccuracy, MeanSquaredError,
                                    MeanAbsoluteError, RootMeanSquaredError,
                                    TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy,
                                    Precision, Recall, AUC, FBetaScore, F1Score, R2Score,
                                    Hinge, SquaredHinge, CategoricalHinge, KLDivergence,
                                    Poisson, LogCoshError, MeanAbsolutePercentageError,
                                    MeanSquaredLogarithmicError, CosineSimilarity)}
_ALIASES = {
    "binary_accuracy": BinaryAccuracy, "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "root_mean_squared_error": RootMeanSquaredError,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "precision": Precision, "recall": Recall, "auc": AUC, "f1_score": F1Score,
    "fbeta_score": FBetaScore, "r2_score": R2Score,
    "hinge": Hinge, "squared_hinge": SquaredHinge, "categorical_hinge": CategoricalHinge,
    "kl_divergence": KLDivergence, "kld": KLDivergence, "poisson": Poisson,
    "logcosh": LogCoshError, "log_cosh": LogCoshError,
    "mape": MeanAbsolutePercentageError,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "cosine_similarity": CosineSimilarity,
}


class MeanMetricWrapper(Metric):
    """A function ``fn(y_true, y_pred, **kwargs)`` of per-sample values (or one value
    for the batch) as a running-mean metric named after it (Keras's
    ``MeanMetricWrapper``: what ``compile(metrics=[fn])`` makes of a function).
    Trains and evaluates; a model compiled with it cannot be saved (a function has no
    config)."""

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        if not callable(fn):
            raise TypeError(f"fn: expected a function (y_true, y_pred) -> values, got "
                            f"{describe(fn)}")
        self.fn = fn
        self._fn_kwargs = kwargs
        super().__init__(name if name is not None else getattr(fn, "__name__", "metric"),
                         dtype)

    def per_sample(self, y_true, y_pred):
        return np.asarray(self.fn(y_true, y_pred, **self._fn_kwargs), dtype=np.float64)

    def get_config(self):
        raise TypeError(f"metric {self.name!r}: a function cannot be saved; use a "
                        f"dl.metrics.Metric or a metric name")


def get(identifier):
    """A metric from a name, a config dict, an instance, or a function of
    ``(y_true, y_pred)`` (wrapped in :class:`MeanMetricWrapper`).  "accuracy"/"acc"
    resolve from the shapes at the first batch (see the module docstring)."""
    if identifier in ("accuracy", "acc"):
        return _ResolvedAccuracy(identifier)
    if callable(identifier) and not isinstance(identifier, (type, Metric)):
        return MeanMetricWrapper(identifier)
    metric = _serial.resolve(identifier, "metric", _CLASSES, _ALIASES, Metric)
    if isinstance(identifier, str):
        metric.name = identifier   # Keras logs a metric under the name it was given
    return metric


def serialize(metric):
    if isinstance(metric, _ResolvedAccuracy):
        return metric.name
    return _serial.serialize(metric)
