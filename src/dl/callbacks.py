"""Callbacks (Keras 3 semantics): History, EarlyStopping, ReduceLROnPlateau,
LearningRateScheduler, ModelCheckpoint, BackupAndRestore, TerminateOnNaN, CSVLogger,
LambdaCallback, and the progress bar (ProgbarLogger)."""
import csv
import inspect
import io
import math
import os
import re
import string
import sys
import time
import warnings

import numpy as np

from kernels.checks import describe, flag, integer, real, short_repr
from . import distribution, saving
from ._args import path as _path


class Callback:
    """Base class: override any ``on_*`` hook.  ``self.model`` and ``self.params``
    (epochs, steps, verbose) are set before training starts."""

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs)     # Keras 2's names, still called by Keras 3

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs)

    def on_batch_begin(self, batch, logs=None): pass
    def on_batch_end(self, batch, logs=None): pass
    def on_test_begin(self, logs=None): pass
    def on_test_end(self, logs=None): pass
    def on_test_batch_begin(self, batch, logs=None): pass
    def on_test_batch_end(self, batch, logs=None): pass
    def on_predict_begin(self, logs=None): pass
    def on_predict_end(self, logs=None): pass
    def on_predict_batch_begin(self, batch, logs=None): pass
    def on_predict_batch_end(self, batch, logs=None): pass


# hooks whose default calls another (a callback overriding that one wants the hook)
_ALIASES = {"on_train_batch_begin": ("on_batch_begin",),
            "on_train_batch_end": ("on_batch_end",)}


class CallbackList:
    """Calls a hook on every callback, in order."""

    def __init__(self, callbacks, model, params):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks: expected dl.callbacks.Callback instances, got "
                                f"{type(cb).__name__}")
            cb.set_model(model)
            cb.set_params(params)

    def _overriding(self, hook):
        names = (hook,) + _ALIASES.get(hook, ())
        return [cb for cb in self.callbacks
                if any(getattr(type(cb), h, None) is not getattr(Callback, h)
                       or h in vars(cb) for h in names)]

    def wants(self, hook):
        """Whether any callback implements ``hook``: fit computes per-batch logs (a read
        back from the device on the cuda backend) only for callbacks that look at them."""
        return bool(self._overriding(hook))

    def __getattr__(self, hook):
        if not hook.startswith("on_"):
            raise AttributeError(hook)
        # Bind once per hook, skipping callbacks that do not override it: fit calls
        # the batch hooks every step, so this is on the training loop's hot path.
        methods = [getattr(cb, hook) for cb in self._overriding(hook)]

        def call(*args):
            for method in methods:
                method(*args)
        setattr(self, hook, call)
        return call


class History(Callback):
    """Records every epoch's logs: ``history.history["loss"]`` is a list per epoch."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
        self.model.history = self


def _fmt(value):
    value = np.asarray(value)
    if value.ndim:       # a per-class metric
        return " [" + ", ".join(_fmt(v).strip() for v in value.ravel()) + "]"
    value = float(value)
    return f" {value:.4f}" if abs(value) > 1e-3 else f" {value:.4e}"


class ProgbarLogger(Callback):
    """Keras's progress display: verbose=1 a bar per epoch
    (``{cur}/{total} ━━━━ {time}s {ms}ms/step - loss: {v:.4f}``), verbose=2 one line
    per epoch, and ``Epoch i/N`` headers when there are several epochs."""

    def __init__(self, verbose=1, stream=None, interval=0.05):
        super().__init__()
        if isinstance(verbose, (bool, np.bool_)) or not isinstance(
                verbose, (int, np.integer)) or verbose not in (0, 1, 2):
            raise ValueError(f"verbose: expected 0, 1 or 2, got {short_repr(verbose)}")
        self.verbose = int(verbose)
        self.stream = stream
        self.interval = interval

    def _write(self, text):
        stream = self.stream or sys.stdout
        stream.write(text)
        stream.flush()

    def _start(self, target):
        self.target = target
        self.start = time.perf_counter()
        self.last = 0.0
        self.after_first = None
        self.prev_width = 0
        self.dynamic = hasattr(self.stream or sys.stdout, "isatty") and \
            (self.stream or sys.stdout).isatty()

    def on_train_begin(self, logs=None):
        self.epochs = self.params.get("epochs", 1)

    def on_epoch_begin(self, epoch, logs=None):
        if self.verbose and self.epochs > 1:
            self._write(f"Epoch {epoch + 1}/{self.epochs}\n")
        self._start(self.params.get("steps"))

    def on_train_batch_end(self, batch, logs=None):
        if self.verbose == 1:
            self._update(batch + 1, logs, final=False)

    def on_epoch_end(self, epoch, logs=None):
        if self.verbose:
            self._update(self.target, logs, final=True)

    def on_test_begin(self, logs=None):
        if not self.params.get("in_fit"):
            self._start(self.params.get("steps"))

    def on_test_batch_end(self, batch, logs=None):
        if self.verbose == 1 and not self.params.get("in_fit"):
            self._update(batch + 1, logs, final=False)

    def on_test_end(self, logs=None):
        if self.verbose and not self.params.get("in_fit"):
            self._update(self.target, logs, final=True)

    def on_predict_begin(self, logs=None):
        self._start(self.params.get("steps"))

    def on_predict_batch_end(self, batch, logs=None):
        if self.verbose == 1:
            self._update(batch + 1, None, final=False)

    def on_predict_end(self, logs=None):
        if self.verbose:
            self._update(self.target, None, final=True)

    def _step_time(self, current, now):
        if not current:
            return 0.0
        if self.after_first is not None and current > 1:
            per = (now - self.after_first) / (current - 1)
        else:
            per = (now - self.start) / current
        if current == 1 and self.after_first is None:
            self.after_first = now
        return per

    @staticmethod
    def _per_step(seconds):
        if seconds >= 1 or seconds == 0:
            return f" {seconds:.0f}s/step"
        if seconds >= 1e-3:
            return f" {seconds * 1e3:.0f}ms/step"
        return f" {seconds * 1e6:.0f}us/step"

    def _update(self, current, logs, final):
        now = time.perf_counter()
        per = self._step_time(current, now)
        if not final and now - self.last < self.interval:
            return
        self.last = now
        metrics = "".join(f" - {k}:{_fmt(v)}" for k, v in (logs or {}).items())
        target = self.target or current
        digits = int(math.log10(target)) + 1
        count = f"{current:{digits}d}/{target}"
        if self.verbose == 2:
            if final:
                self._write(f"{count} - {now - self.start:.0f}s -{self._per_step(per)}"
                            f"{metrics}\n")
            return
        done = int(20 * current / target)
        bar = f"{count} {'━' * done}{'━' * (20 - done)}"
        if final:
            info = f" {now - self.start:.0f}s"
        else:
            eta = per * (target - current)
            info = (f" {eta:.0f}s" if eta < 60 else f" {int(eta // 60)}:{int(eta % 60):02d}")
        line = bar + info + self._per_step(per) + metrics
        pad = " " * max(0, self.prev_width - len(line))
        self.prev_width = len(line)
        if self.dynamic:
            self._write("\r" + line + pad + ("\n" if final else ""))
        elif final:
            self._write(line + "\n")


def _mode(callback, mode):
    """"auto", "min" or "max"; any other str warns and falls back to "auto" (Keras)."""
    if not isinstance(mode, str):
        raise TypeError(f"mode: expected 'auto', 'min' or 'max', got {describe(mode)}")
    if mode not in ("auto", "min", "max"):
        warnings.warn(f"{callback} mode '{mode}' is unknown, fallback to auto mode.",
                      stacklevel=3)
        return "auto"
    return mode


def _monitor(monitor):
    if not isinstance(monitor, str):
        raise TypeError(f"monitor: expected the name of a log entry such as 'val_loss', got "
                        f"{describe(monitor)}")
    return monitor


def _verbosity(verbose):
    """A callback's ``verbose``: an int >= 0 (or a bool)."""
    if isinstance(verbose, (bool, np.bool_)):
        return int(verbose)
    return integer("verbose", verbose, low=0)


class MonitorCallback(Callback):
    """Base of the callbacks that watch a log entry (EarlyStopping,
    ReduceLROnPlateau): the comparison and the improvement test, as Keras's
    ``MonitorCallback``.

    ``mode="auto"`` takes the direction from the name: ``loss`` (and ``val_loss``) go
    down, a compiled metric goes its own way (accuracies up, errors down); anything
    else needs ``mode="min"`` or ``"max"``.
    """

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0,
                 baseline_name="baseline"):
        super().__init__()
        self.monitor = _monitor(monitor)
        self.mode = _mode(type(self).__name__, mode)
        self.best = None if baseline is None else real(baseline_name, baseline)
        self.min_delta = abs(real("min_delta", min_delta))
        self.monitor_op = None

    def _set_monitor_op(self):
        if self.mode == "min":
            self.monitor_op = np.less
        elif self.mode == "max":
            self.monitor_op = np.greater
        else:
            name = self.monitor[4:] if self.monitor.startswith("val_") else self.monitor
            if name == "loss":
                self.monitor_op = np.less
            for m in getattr(self.model, "metrics", []):
                if m.name == name:
                    self.monitor_op = np.greater if m.direction == "up" else np.less
        if self.monitor_op is None:
            raise ValueError(f"monitor: {type(self).__name__} cannot tell whether "
                             f"{self.monitor!r} should be minimised or maximised; pass "
                             f"mode='min' or mode='max'")
        if self.monitor_op is np.less:
            self.min_delta *= -1

    def _is_improvement(self, value, reference):
        if reference is None:
            return True
        return bool(self.monitor_op(value - self.min_delta, reference))

    def _current(self, logs, what):
        """The monitored value in ``logs``, or None after Keras's warning."""
        current = (logs or {}).get(self.monitor)
        if current is None:
            warnings.warn(f"{what} conditioned on metric `{self.monitor}` which is not "
                          f"available. Available metrics are: {','.join(logs or {})}",
                          stacklevel=3)
        return current


class EarlyStopping(MonitorCallback):
    """Stop training when a monitored quantity stops improving (Keras 3 semantics).

    Args:
        monitor: the log key to watch ("val_loss").
        min_delta: smallest change that counts as an improvement.
        patience: epochs without improvement before stopping.
        verbose: 1 prints when it stops or restores.
        mode: "auto" (from the name: losses down, accuracies up), "min" or "max".
        baseline: a value the monitored quantity must beat for the waiting to reset.
        restore_best_weights: put back the weights of the best epoch at the end.
        start_from_epoch: epochs to wait before watching.

    Reusable: every ``fit`` starts afresh (best, wait and best weights reset).
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, min_delta=min_delta)
        self.patience = integer("patience", patience, low=0)
        self.verbose = _verbosity(verbose)
        self.baseline = None if baseline is None else real("baseline", baseline)
        self.restore_best_weights = flag("restore_best_weights", restore_best_weights)
        self.start_from_epoch = integer("start_from_epoch", start_from_epoch, low=0)
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None
        self.best_epoch = 0

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        current = self._current(logs, "Early stopping")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


def _log_learning_rate(model, logs):
    """Put the optimizer's learning rate in an epoch's logs (as the learning-rate
    callbacks do in Keras)."""
    if logs is not None:
        logs["learning_rate"] = float(model.optimizer.learning_rate)


class ReduceLROnPlateau(MonitorCallback):
    """Multiply the learning rate by ``factor`` when the monitored quantity has not
    improved for ``patience`` epochs (Keras 3 semantics).

    Args:
        monitor: the log key to watch ("val_loss").
        factor: ``new_lr = lr * factor``, < 1.
        patience: epochs without improvement before reducing.
        verbose: 1 prints each reduction.
        mode: "auto", "min" or "max" (as EarlyStopping).
        min_delta: smallest change that counts as an improvement (1e-4).
        cooldown: epochs to wait after a reduction before counting again.
        min_lr: the learning rate is never reduced below this.

    Adds ``learning_rate`` to every epoch's logs.  The optimizer needs a float
    learning rate (a schedule cannot be set: TypeError, as in Keras).
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0, **kwargs):
        super().__init__(monitor, mode, min_delta=min_delta)
        if "epsilon" in kwargs:     # Keras 2's name, accepted with Keras's warning
            self.min_delta = abs(real("epsilon", kwargs.pop("epsilon")))
            warnings.warn("`epsilon` argument is deprecated and will be removed, use "
                          "`min_delta` instead.", stacklevel=2)
        if kwargs:
            raise TypeError(f"ReduceLROnPlateau: unexpected argument "
                            f"{sorted(kwargs)[0]!r}")
        self.factor = real("factor", factor)
        if self.factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0. "
                             f"Received factor={factor}")
        if self.factor < 0:
            raise ValueError(f"factor: expected a number in [0, 1), got {factor}")
        self.patience = integer("patience", patience, low=0)
        self.verbose = _verbosity(verbose)
        self.cooldown = integer("cooldown", cooldown, low=0)
        self.min_lr = real("min_lr", min_lr)
        if self.min_lr < 0:
            raise ValueError(f"min_lr: expected a learning rate >= 0, got {min_lr}")
        self.cooldown_counter = 0
        self.wait = 0

    def _reset(self):
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, logs=None):
        self._reset()

    def in_cooldown(self):
        return self.cooldown_counter > 0

    def _reduce_lr(self, epoch):
        optimizer = self.model.optimizer
        old_lr = float(optimizer.learning_rate)
        if old_lr > np.float32(self.min_lr):
            new_lr = max(old_lr * self.factor, self.min_lr)
            optimizer.learning_rate = new_lr
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to "
                      f"{new_lr}.")
            return True
        return False

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        _log_learning_rate(self.model, logs)
        current = self._current(logs, "Learning rate reduction")
        if current is None:
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience and self._reduce_lr(epoch):
                self.cooldown_counter = self.cooldown
                self.wait = 0


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of every epoch to ``schedule(epoch, lr)``
    (or ``schedule(epoch)``), epochs counted from 0 (Keras 3 semantics).

    The schedule must return a float.  Adds ``learning_rate`` to every epoch's logs.
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"schedule: expected a function of (epoch, lr) or (epoch), got "
                            f"{describe(schedule)}")
        self.schedule = schedule
        self.verbose = _verbosity(verbose)

    def _call_schedule(self, epoch, lr):
        try:
            signature = inspect.signature(self.schedule)
            signature.bind(epoch, lr)
        except TypeError:
            return self.schedule(epoch)     # the old, one-argument form
        except ValueError:      # no signature to inspect: try as Keras does
            try:
                return self.schedule(epoch, lr)
            except TypeError:
                return self.schedule(epoch)
        return self.schedule(epoch, lr)

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        lr = self._call_schedule(epoch, float(optimizer.learning_rate))
        if isinstance(lr, np.ndarray) and lr.ndim == 0 and lr.dtype.kind == "f":
            lr = lr[()]
        if not isinstance(lr, (float, np.float32, np.float64)):
            raise ValueError(f"The output of the `schedule` function should be a float. "
                             f"Got: {short_repr(lr)}")
        optimizer.learning_rate = float(lr)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                  f"{float(lr)}.")

    def on_epoch_end(self, epoch, logs=None):
        _log_learning_rate(self.model, logs)


class TerminateOnNaN(Callback):
    """Stop training when a batch's loss is NaN or infinite.

    Unlike Keras, the step that met the non-finite loss (or non-finite gradients)
    updates nothing: the model keeps the weights of the last finite step.

    Args:
        raise_error: raise RuntimeError at once instead of stopping gracefully (the
            other callbacks' ``on_train_end`` is then not called, as in Keras).
    """

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = flag("raise_error", raise_error)

    def on_train_begin(self, logs=None):
        self.model._keep_finite_weights = True
        self.model._nonfinite_step = False

    def on_train_end(self, logs=None):
        self.model._keep_finite_weights = False

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if (loss is not None and not math.isfinite(loss)) or self.model._nonfinite_step:
            if self.raise_error:
                self.model._keep_finite_weights = False     # fit ends here: no train_end
                raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. Loss "
                                   f"value: {loss}. Terminating training immediately.")
            print(f"Batch {batch}: Invalid loss, terminating training "
                  f"(weights kept from the last finite step)")
            self.model.stop_training = True


class ModelCheckpoint(MonitorCallback):
    """Save the model (or only its weights) at the end of every epoch, atomically.

    Args:
        filepath: where to save; may contain ``{epoch}`` and log keys, e.g.
            ``"ckpt-{epoch:02d}-{val_loss:.2f}.dlk"`` (epoch counted from 1).  A folder
            that does not exist yet is created.
        monitor, mode, save_best_only: with ``save_best_only``, save only when the
            monitored quantity improves on the best seen (``mode="auto"`` as
            EarlyStopping: from the loss or the compiled metric's direction).
        save_weights_only: save weights alone (``model.save_weights``).
        save_freq: "epoch" (only epochs are supported).
        initial_value_threshold: the best value to beat at the start.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None):
        super().__init__(monitor, mode, initial_value_threshold,
                         baseline_name="initial_value_threshold")
        self.filepath = _path("filepath", filepath)
        self._fields = _template_fields(self.filepath)
        self.verbose = _verbosity(verbose)
        self.save_best_only = flag("save_best_only", save_best_only)
        self.save_weights_only = flag("save_weights_only", save_weights_only)
        if isinstance(save_freq, str):
            if save_freq != "epoch":
                raise ValueError(f"save_freq: expected 'epoch' or a positive int, got "
                                 f"{short_repr(save_freq)}")
        else:
            save_freq = integer("save_freq", save_freq, low=1)
            raise ValueError(f"save_freq: only 'epoch' is supported, got {save_freq} "
                             f"(see docs/keras-differences.md)")

    def on_train_begin(self, logs=None):
        # The fields of the template must be log keys: the loss and the metrics, with
        # or without the "val_" of validation.
        names = ["loss"] + [m.name for m in getattr(self.model, "metrics", None) or []]
        known = {"epoch"} | set(names) | {"val_" + n for n in names}
        for field in self._fields:
            if field not in known:
                raise ValueError(f"filepath: {{{field}}} is not a key of the logs: expected "
                                 f"{{epoch}} or one of "
                                 f"{', '.join(sorted(known - {'epoch'}))}; got "
                                 f"{short_repr(self.filepath)}")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        try:
            path = self.filepath.format(**{**logs, "epoch": epoch + 1})
        except KeyError as exc:       # e.g. {val_loss} in an epoch without validation
            raise ValueError(f"filepath: {{{exc.args[0]}}} is not in the logs of epoch "
                             f"{epoch + 1} (keys: {', '.join(sorted(logs))}); got "
                             f"{short_repr(self.filepath)}") from None
        if self.save_best_only:
            if self.monitor_op is None:
                self._set_monitor_op()
            current = logs.get(self.monitor)
            best = "None" if self.best is None else f"{self.best:.5f}"
            if current is None:     # Keras 3: warn, and save as without save_best_only
                warnings.warn(f"Can save best model only with {self.monitor} available.",
                              stacklevel=2)
            elif not self._is_improvement(current, self.best):
                if self.verbose > 0:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best}")
                return
            else:
                if self.verbose > 0:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to "
                          f"{current:.5f}, saving model to {path}")
                self.best = current
        elif self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)      # as Keras: a new folder is created
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class BackupAndRestore(Callback):
    """Back the training state up while ``fit`` runs, and resume from it when ``fit``
    is run again after an interruption (Keras 3's callback, resuming exactly).

    Every backup is one file, ``<backup_dir>/latest.dlk``, written atomically: the
    model, its optimizer state and learning rate, its seed, and where ``fit`` is (the
    epoch, the batches done, the running loss and metric sums of the epoch in
    progress).  The next ``fit`` with this callback restores all of it in
    ``on_train_begin`` and continues from the next batch, so an interrupted and
    resumed run computes the same numbers, bit for bit, as one that ran through: the
    epoch's shuffling and the dropout masks derive from the seed and the step.
    Give the resumed ``fit`` the same data and arguments.

    Args:
        backup_dir: the folder for the backup (created when missing); use it for
            this run only.
        save_freq: ``"epoch"`` (a backup at the end of every epoch) or an int ``n``
            (a backup every ``n`` batches, resumed mid-epoch).
        double_checkpoint: keep the previous backup too (``latest.dlk.bkp``), and
            fall back to it when the latest cannot be read.
        delete_checkpoint: delete the backup files when ``fit`` completes (the folder
            too when that leaves it empty).

    The state of other callbacks (EarlyStopping's patience, say) is not backed up,
    as in Keras.
    """

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=False,
                 delete_checkpoint=True):
        super().__init__()
        if backup_dir is None or (isinstance(backup_dir, (str, bytes)) and not backup_dir):
            raise ValueError("Empty `backup_dir` argument passed")
        self.backup_dir = _path("backup_dir", backup_dir)
        if save_freq != "epoch" and (isinstance(save_freq, (bool, np.bool_)) or
                                     not isinstance(save_freq, (int, np.integer))):
            raise ValueError(f"Invalid value for argument `save_freq`. Received: "
                             f"save_freq={short_repr(save_freq)}. Expected either 'epoch' "
                             f"or an integer value.")
        if save_freq != "epoch":
            save_freq = integer("save_freq", save_freq, low=1)
        self.save_freq = save_freq
        self.double_checkpoint = flag("double_checkpoint", double_checkpoint)
        self.delete_checkpoint = flag("delete_checkpoint", delete_checkpoint)
        self._path = os.path.join(self.backup_dir, "latest.dlk")
        self._prev_path = self._path + ".bkp"
        self._epoch = 0
        self._batches_since_save = 0

    def on_train_begin(self, logs=None):
        path = self._path
        if not os.path.exists(path):
            return
        try:
            self.model._restore_backup(path)
        except (OSError, ValueError):
            if not (self.double_checkpoint and os.path.exists(self._prev_path)):
                raise
            warnings.warn(f"BackupAndRestore: {path!r} cannot be read; restoring the "
                          f"previous backup {self._prev_path!r}", stacklevel=2)
            self.model._restore_backup(self._prev_path)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches_since_save += 1
        if self._batches_since_save >= self.save_freq:
            self._save(self._epoch, batch + 1)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch + 1, 0)

    def _save(self, epoch, batches_done):
        self._batches_since_save = 0
        os.makedirs(self.backup_dir, exist_ok=True)
        if self.double_checkpoint and os.path.exists(self._path):
            with open(self._path, "rb") as f:
                saving.atomic_write(self._prev_path, f.read())
        self.model._save_backup(self._path, epoch, batches_done)

    def on_train_end(self, logs=None):
        if not self.delete_checkpoint or not distribution.writes_files():
            return
        for path in (self._path, self._prev_path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        try:
            os.rmdir(self.backup_dir)
        except OSError:
            pass     # not empty: other files are the user's


# The widest field a template may ask for: a path is at most a few thousand characters.
_MAX_FIELD_WIDTH = 4096


def _template_fields(path):
    """The names of the fields of a ModelCheckpoint filepath template, after checking
    that it formats with an int epoch and float log values (what on_epoch_end passes)."""
    try:
        parsed = list(string.Formatter().parse(path))
    except ValueError as exc:
        raise ValueError(f"filepath: expected a valid format template, got {short_repr(path)} "
                         f"({exc})") from None
    fields = []
    for _, field, spec, _ in parsed:
        if field is None:
            continue
        if not field.isidentifier():
            raise ValueError(f"filepath: expected named fields such as {{epoch}} or "
                             f"{{val_loss:.2f}}, got {short_repr('{' + field + '}')} in "
                             f"{short_repr(path)}")
        if "{" in spec or any(int(n) > _MAX_FIELD_WIDTH for n in re.findall(r"\d+", spec)):
            raise ValueError(f"filepath: expected a plain format spec of at most "
                             f"{_MAX_FIELD_WIDTH} characters for {{{field}}}, got "
                             f"{short_repr(spec)} in {short_repr(path)}")
        fields.append(field)
    samples = {f: 1 if f == "epoch" else 0.5 for f in fields}
    try:
        path.format(**samples)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ValueError(f"filepath: expected a template that formats with an int epoch "
                         f"and float log values, got {short_repr(path)} ({exc})") from None
    return fields


class CSVLogger(Callback):
    """Append every epoch's logs to a CSV file (``epoch`` first, then sorted keys)."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename = _path("filename", filename)
        if not isinstance(separator, str) or len(separator) != 1:
            raise TypeError(f"separator: expected a 1-character str, got "
                            f"{describe(separator)}")
        try:
            csv.writer(io.StringIO(), delimiter=separator)
        except (TypeError, ValueError, csv.Error) as exc:
            raise ValueError(f"separator: {exc}") from None
        self.separator = separator
        self.append = flag("append", append)
        self.keys = None
        self._file = None
        self._writer = None

    def on_train_begin(self, logs=None):
        self.keys = None
        if not distribution.writes_files():
            return          # data parallelism: rank 0 writes the file
        exists = self.append and os.path.exists(self.filename)
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._has_header = exists and os.path.getsize(self.filename) > 0
        self.keys = None           # each fit writes its own columns (Keras)
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        if self._file is None:
            return
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(k.startswith("val_") for k in self.keys):
                # as Keras: validation may come later (validation_freq): its columns
                # exist from the first row, "NA" until then
                self.keys += ["val_" + k for k in self.keys]
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch"] + self.keys,
                                          delimiter=self.separator)
            if not self._has_header:
                self._writer.writeheader()
        self._writer.writerow({"epoch": epoch, **{k: logs.get(k, "NA") for k in self.keys}})
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
        self._file = None
        self._writer = None


class LambdaCallback(Callback):
    """A callback from plain functions: ``on_epoch_end=lambda epoch, logs: ...`` etc."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None,
                 **kwargs):
        super().__init__()
        hooks = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                     on_train_begin=on_train_begin, on_train_end=on_train_end,
                     on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end, **kwargs)
        for name, fn in hooks.items():
            if not name.startswith("on_") or not hasattr(Callback, name):
                raise TypeError(f"LambdaCallback: unknown hook {name!r}")
            if fn is not None:
                _check_hook(name, fn)
                setattr(self, name, fn)


def _check_hook(name, fn):
    """A LambdaCallback hook must be callable as ``fn(epoch, logs)`` (``fn(batch, logs)``,
    ``fn(logs)``...): the arguments fit passes to the hook ``name``."""
    args = [p for p in inspect.signature(getattr(Callback, name)).parameters
            if p != "self"]
    call = f"{name}({', '.join(args)})"
    if not callable(fn):
        raise TypeError(f"{name}: expected None or a function called as {call}, got "
                        f"{describe(fn)}")
    try:
        signature = inspect.signature(fn)
    except Exception:  # noqa: BLE001 -- a builtin without a signature: cannot tell
        if isinstance(fn, type):
            raise TypeError(f"{name}: expected None or a function called as {call}, got "
                            f"the class {short_repr(fn)}") from None
        return
    try:
        signature.bind(*args)
    except TypeError:
        raise TypeError(f"{name}: expected None or a function called as {call}, got "
                        f"{short_repr(fn)} with signature {short_repr(signature)}") from None
