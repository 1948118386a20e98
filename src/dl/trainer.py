"""Training, evaluation and prediction: ``fit``, ``evaluate``, ``predict`` and their
one-batch forms, apart from the model's structure (as Keras keeps its trainer apart
from its models).

:class:`Trainer` is a base class of the models (``dl.models.Model``): it works on what
the model holds -- its layers (``_layers``), ``backend``, ``loss``, ``optimizer`` and
``metrics``, its ``seed`` and its ``_ensure_built`` -- and on the model's hooks:
``_run_forward`` / ``_run_backward`` / ``_forward`` (a chain of layers in ``Model``, a
graph in ``dl.functional``), ``_output_layer``, ``_output_sample_shape``, and the loss
hooks ``_add_loss`` / ``_eval_loss`` / ``_update_metrics`` / ``_logs`` (one output
here; several in ``dl.functional``).  A training step (:meth:`Trainer._train_step`) is
the forward pass, the loss kernel, the backward pass down to the first trainable layer
and one optimizer update per parameter array; ``fit`` draws its batches from
:class:`dl.epoch_iterator.EpochIterator` and runs each through
:class:`dl._fast.TrainSteps` (the validated-once plans).
"""
import contextlib
import itertools
import math
import warnings

import numpy as np
from kernels.checks import MAX_BYTES, describe, fits_in_memory, short_repr

from . import _fast, callbacks as callbacks_module, config, data as data_module
from . import distribution as distribution_module
from . import losses as losses_module, saving
from .distribution._replicas import Replicas
from .epoch_iterator import EpochIterator, bounds, steps_for


def _verbose(verbose):
    if isinstance(verbose, str) and verbose == "auto":
        return 1
    if not isinstance(verbose, (int, np.integer)) or verbose not in (0, 1, 2):
        raise ValueError(f"verbose: expected 'auto', 0, 1 or 2, got {short_repr(verbose)}")
    return int(verbose)


def _int_arg(name, value, low):
    """An int argument >= ``low``, or a named TypeError/ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int >= {low}, got {type(value).__name__}")
    if value < low:
        shown = value if abs(int(value)) < 10**30 else "a huge negative int"
        raise ValueError(f"{name}: expected an int >= {low}, got {shown}")
    return int(value)


def _batch_size(batch_size, name="batch_size"):
    return 32 if batch_size is None else _int_arg(name, batch_size, 1)


def _callback_list(callbacks):
    if callbacks is None:
        return []
    if isinstance(callbacks, callbacks_module.Callback):
        return [callbacks]
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"callbacks: expected a list of dl.callbacks.Callback, got "
                        f"{type(callbacks).__name__}")
    return list(callbacks)


class Trainer:
    """fit / evaluate / predict and their batch forms, for a model built of layers (see
    the module docstring for what it needs of the model)."""

    # the data parallelism (dl.distribution._replicas.Replicas) of the fit, evaluate or
    # predict in progress, or None
    _replicas = None

    # --------------------------------------------------------------------- data
    @staticmethod
    def _numeric(value, name, what):
        """``value`` as a numeric ndarray, or a TypeError/ValueError naming ``name``."""
        if value is None:
            raise ValueError(f"{name}: expected {what}, got None")
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"{name}: expected an array-like of numbers, got "
                            f"{type(value).__name__} ({exc})") from None
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name}: expected numeric {what}, got dtype {arr.dtype}")
        return arr

    def _itemsize(self, arr):
        """The bytes per element of ``arr`` once converted to the model's dtype."""
        model = np.dtype(self.dtype).itemsize if self.built else 4
        return max(arr.itemsize, model)

    def _as_x(self, x, name="x"):
        arr = self._numeric(x, name, "input data")
        if arr.ndim == 0 or arr.shape[0] == 0:
            raise ValueError(f"{name}: expected at least one sample, got shape {arr.shape}")
        # a lazily huge view (zero strides, np.broadcast_to) must not be converted,
        # scanned or predicted on: it would not fit in memory once materialized
        fits_in_memory(name, arr.shape, self._itemsize(arr))
        self._ensure_built(arr if arr.ndim > 1 else arr.reshape(-1, 1))
        fits_in_memory(name, arr.shape, self._itemsize(arr))
        if arr.ndim == 1 and self._sample_shape == (1,):
            arr = arr.reshape(-1, 1)
        if tuple(arr.shape[1:]) != tuple(self._sample_shape):
            raise ValueError(f"{name}: expected samples of shape {self._sample_shape} (the "
                             f"model's input), got data of shape {arr.shape}")
        return arr.astype(self.dtype, copy=False)

    def _as_y(self, y, n, name="y"):
        arr = self._numeric(y, name, "targets")
        if arr.ndim == 0 or arr.shape[0] != n:
            raise ValueError(f"{name}: expected {n} targets (one per sample of x), got "
                             f"shape {arr.shape}")
        fits_in_memory(name, arr.shape, self._itemsize(arr))
        self._check_finite(arr, name)      # before the loss reshapes or casts them
        return self.loss.prepare_targets(arr, (n,) + self._output_sample_shape(),
                                         self.dtype)

    @staticmethod
    def _check_finite(arr, name, rows_per_chunk=4096):
        """Raise naming the first row holding NaN or inf; scans in row chunks so that a
        large dataset needs no full-size temporary."""
        if arr.dtype.kind != "f":
            return
        for lo in range(0, arr.shape[0], rows_per_chunk):
            chunk = arr[lo:lo + rows_per_chunk]
            if not np.isfinite(chunk).all():
                ok = np.isfinite(chunk.reshape(chunk.shape[0], -1)).all(axis=1)
                row = lo + int(np.flatnonzero(~ok)[0])
                raise ValueError(f"{name}: expected finite values, got NaN or inf in row {row}")

    # ----------------------------------------------------------------- training
    def _trainable_layers(self):
        """The indices of the layers whose weights the optimizer updates (trainable,
        with trainable variables: not a BatchNormalization of moving statistics only)."""
        if not self.trainable:
            return []
        return [i for i, layer in enumerate(self._layers)
                if layer.trainable and layer._trainable_variables]

    def _forward_backward(self, xb, yb, wb=None):
        """Forward, loss and backward on a batch: fills every layer's gradient arrays.

        Returns ``(loss, y_pred)``: the data loss as the backend returns it (a NumPy
        scalar, or a 0-d device array: nothing is read back here) without the
        regularization penalties (:meth:`_add_penalty`), and ``y_pred``, a training
        buffer valid until the next step.  ``wb``: the batch's sample weights or None.
        """
        be = self.backend
        yl, kw = self.loss.batch_inputs(be.ops, yb, wb, xb.shape[0], self.dtype,
                                        self._loss_weight)
        y_pred = self._run_forward(xb, self.optimizer.iterations)
        last = self._output_layer()
        grad_buf = last._buffer("dloss", tuple(y_pred.shape))
        if getattr(last, "fuse_softmax_loss", False):
            loss, grad = self.loss.fused(be, yl, last._z, grad_buf, kw)
        else:
            loss = self.loss.value(be, yl, y_pred, kw)
            grad = self.loss.gradient(be, yl, y_pred, grad_buf, kw)
        trainable = self._trainable_layers()
        if trainable:
            self._run_backward(grad, trainable)
            for i in trainable:
                self._layers[i].add_regularization_gradients()
        return loss, y_pred

    def _add_penalty(self, acc, weight):
        """``acc[0] += weight * (regularization penalties)``; as Keras, only those of
        trainable weights count."""
        for i in self._trainable_layers():
            self._layers[i].add_penalty(acc, weight)

    def _train_step(self, xb, yb, wb=None):
        """One optimisation step on a batch (``wb``: its sample weights, or None), its
        loss (with penalties, weighted by the batch size) added to the running loss;
        nothing is read back from a device unless TerminateOnNaN watches the step."""
        ops = self.backend.ops
        loss, y_pred = self._forward_backward(xb, yb, wb)
        n = xb.shape[0]
        params, grads = self._step_params()
        if self._keep_finite_weights and not (self._step_loss_finite(loss)
                                              and ops.all_finite(grads)):
            params = []    # TerminateOnNaN is watching: keep the last finite weights
            self._nonfinite_step = True
        self._add_loss(self._loss_acc, loss, float(n))
        self._add_penalty(self._loss_acc, float(n))    # of the weights before the step
        self._apply_step(params, grads)
        self._update_metrics(ops, yb, y_pred, wb)

    def _step_params(self):
        """``(params, grads)``: the arrays the optimizer updates and their gradients,
        in order."""
        params, grads = [], []
        for i in self._trainable_layers():
            params.extend(self._layers[i]._trainable_variables)
            grads.extend(self._layers[i].gradients)
        return params, grads

    def _step_loss_finite(self, loss):
        """Whether a step's loss (as ``_forward_backward`` returned it) with the
        penalties is finite (reads a device back)."""
        ops = self.backend.ops
        step_acc = ops.acc_new()
        self._add_loss(step_acc, loss, 1.0)
        self._add_penalty(step_acc, 1.0)
        return math.isfinite(ops.acc_read(step_acc)[0])

    def _apply_step(self, params, grads):
        """The optimizer's update of ``params`` from ``grads`` (none: nothing), then the
        constraints."""
        if not params:
            return
        if getattr(self.optimizer, "_exclude_names", None):
            # weight names for exclude_from_weight_decay(var_names=...): Keras's
            # variable paths, "<layer>/kernel"
            self.optimizer._param_names = {
                id(w): f"{layer.name}/{name}" for layer in self._layers
                for w, name in zip(layer.weights, layer.weight_names)}
        self.optimizer._apply(self.backend, params, grads)
        for i in self._trainable_layers():       # Keras: after the update
            self._layers[i].apply_constraints()

    def _set_batch_part(self, lo, total):
        """Data parallelism: the layers drawing random masks (Dropout) draw them for
        the rows ``lo:`` of a global batch of ``total`` rows (None: the batch is
        whole)."""
        part = None if lo is None else (lo, total)
        for layer in self._layers:
            if hasattr(layer, "_batch_part"):
                layer._batch_part = part

    def _add_loss(self, acc, loss, n):
        """``acc += n * loss`` (and n samples): a batch's loss, as the step returned it,
        into a running sum."""
        self.backend.ops.acc_add(acc, loss, n, n)

    def _eval_loss(self, acc, yb, y_pred, wb, rows):
        """An evaluation batch's loss (of its ``rows`` samples) into ``acc``."""
        be = self.backend
        yl, kw = self.loss.batch_inputs(be.ops, yb, wb, rows, self.dtype, self._loss_weight)
        be.ops.acc_add(acc, self.loss.value(be, yl, y_pred, kw), float(rows), float(rows))

    def _update_metrics(self, ops, yb, y_pred, wb):
        """Every compiled metric on a batch: ``weighted_metrics`` with the sample
        weights, ``metrics`` without them (as Keras)."""
        for m, weighted in self._metric_plan:
            m.update_on(ops, yb, y_pred, wb if weighted else None)

    def compute_gradients(self, x, y):
        """``(loss, [dL/dw for w in trainable_weights])`` on one batch, in training mode
        (dropout active), without updating anything: what a step would apply (the
        moving statistics a training forward updates are put back).  The gradients
        are NumPy arrays whatever the backend."""
        self._require_compiled("compute_gradients")
        x = self._as_x(x)
        y = self._as_y(y, x.shape[0])
        ops = self.backend.ops
        state = [w for layer in self._layers for w in layer._non_trainable_variables]
        kept = [np.array(ops.to_host(w), copy=True) for w in state]
        loss, _ = self._forward_backward(ops.to_device(x), ops.to_device(y))
        for w, value in zip(state, kept):
            ops.copy_from_host(w, value)
        acc = ops.acc_new()
        self._add_loss(acc, loss, 1.0)
        self._add_penalty(acc, 1.0)
        grads = [np.array(ops.to_host(g), copy=True)
                 for i in self._trainable_layers() for g in self._layers[i].gradients]
        return ops.acc_read(acc)[0], grads

    def _penalty(self):
        """The regularization penalties as a float."""
        ops = self.backend.ops
        acc = ops.acc_new()
        self._add_penalty(acc, 1.0)
        return ops.acc_read(acc)[0]

    def _logs(self, acc, ops=None):
        """The logs from a loss accumulator (of ``ops``, by default the backend's) and
        the metrics: reads a device back.  Under data parallelism, of every rank's
        sums (a collective: every rank asks at the same points)."""
        if self._replicas is not None:
            return self._replicas.logs(acc)
        return self._local_logs(acc, ops)

    def _acc_group(self, acc):
        """The accumulators summed with ``acc`` (several outputs: each one's loss)."""
        return [acc]

    def _sum_state(self, acc):
        """The running sums behind the logs of ``acc``: its accumulators' and the
        metrics' states (what data parallelism adds up over the ranks)."""
        ops = self.backend.ops
        return [[list(ops.acc_read(a)) for a in self._acc_group(acc)],
                [m._get_state() for m in self.metrics]]

    def _load_sum_state(self, acc, state):
        """Set the sums :meth:`_sum_state` returned."""
        ops = self.backend.ops
        accs, metrics = state
        for a, (total, count) in zip(self._acc_group(acc), accs):
            ops.acc_reset(a)
            ops.acc_add(a, total, 1.0, count)
        for m, value in zip(self.metrics, metrics):
            m._set_state(value)

    def _local_logs(self, acc, ops=None):
        """The logs of this process's sums."""
        total, count = (ops or self.backend.ops).acc_read(acc)
        logs = {"loss": total / count if count else 0.0}
        for m in self.metrics:
            value = np.asarray(m.result())
            # a number, or (a per-class metric: F1Score(average=None)...) an array
            logs[m.name] = float(value) if value.ndim == 0 else value
        return logs

    def _place(self, *arrays):
        """The data (arrays, or None) where the backend computes: as is on the host;
        on the cuda backend copied once to the device (it stays there for the whole
        call), unless it does not fit there: then it stays on the host and batches are
        sent one by one."""
        ops = self.backend.ops
        if not ops.on_device or not ops.fits_on_device(
                sum(a.nbytes for a in arrays if a is not None)):
            return arrays
        return tuple(None if a is None else ops.to_device(a) for a in arrays)

    def _as_weights(self, sample_weight, n, name="sample_weight"):
        """Per-sample weights as the kernels take them (the model's dtype), finite."""
        w = losses_module.sample_weight_array(sample_weight, n, self.dtype, name,
                                              allow_scalar=False)
        self._check_finite(w, name)
        return w

    def _class_weights(self, class_weight, y):
        """Keras's ``class_weight``: each sample weighted by its class's weight (1 for a
        class the dict does not name); the class of a target row is its argmax, or the
        rounded value of a single column (sparse labels: the label)."""
        if not hasattr(class_weight, "items") or not hasattr(class_weight, "get"):
            raise ValueError(f"class_weight: expected a dict of class index -> weight, got "
                             f"{describe(class_weight)}")
        weights = {}
        for key, value in class_weight.items():
            if isinstance(key, (bool, np.bool_)) or not isinstance(key, (int, np.integer)):
                raise ValueError(f"class_weight: expected integer class indices as keys, "
                                 f"got {short_repr(key)}")
            if isinstance(value, (bool, np.bool_)) or not isinstance(
                    value, (int, float, np.integer, np.floating)) or not math.isfinite(value):
                raise ValueError(f"class_weight: expected a finite number for class "
                                 f"{int(key)}, got {short_repr(value)}")
            weights[int(key)] = float(value)
        labels = np.asarray(y)
        if labels.ndim > 1:
            labels = labels.reshape(labels.shape[0], -1)
            labels = (np.argmax(labels, axis=-1) if labels.shape[1] != 1
                      else np.round(labels[:, 0]))
        classes, index = np.unique(labels.astype(np.int64), return_inverse=True)
        per_class = np.array([weights.get(int(c), 1.0) for c in classes])
        return per_class[index.reshape(-1)].astype(self.dtype)

    def _batch(self, a):
        """A batch where the backend computes (a slice of placed data, or a host slice
        sent to the device)."""
        ops = self.backend.ops
        return ops.to_device(a) if ops.on_device and isinstance(a, np.ndarray) else a

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None,
            validation_steps=None, validation_batch_size=None, validation_freq=1):
        """Train for ``epochs`` epochs over ``x``, ``y`` in batches of ``batch_size``
        (32); returns a :class:`dl.callbacks.History`.  ``x`` may also be a generator,
        an iterator or a :class:`dl.utils.PyDataset` of batches (``steps_per_epoch``
        of them an epoch), or a NumPy memmap read batch by batch (see ``dl.data``).

        As in Keras: ``validation_split`` holds out the *last* fraction of the samples,
        before shuffling; ``shuffle`` reshuffles every epoch; the last partial batch is
        kept; the epoch's loss is the batch losses' mean weighted by batch size.

        On the cuda backend the data is copied to the device once, batches are gathered
        there, and the loss and metric sums are read back once per epoch (and per
        batch only for callbacks that look at batch logs, e.g. a verbose=1 progress bar).

        Under a :class:`dl.distribution.DataParallel` (``set_distribution``),
        ``batch_size`` is the global batch, split among the processes; the arguments
        and data are checked on every process and any error raised on all of them.
        """
        dist = distribution_module.active(self)
        if dist is None:
            feed, val, loop_args = self._fit_setup(
                x, y, batch_size, epochs, verbose, callbacks, validation_split,
                validation_data, shuffle, class_weight, sample_weight, initial_epoch,
                steps_per_epoch, validation_steps, validation_batch_size, validation_freq)
            return self._fit_feeds(feed, val, loop_args, None)
        replicas = Replicas(dist, self)
        setup = self._checked_everywhere(replicas, lambda: self._fit_setup(
            x, y, batch_size, epochs, verbose, callbacks, validation_split,
            validation_data, shuffle, class_weight, sample_weight, initial_epoch,
            steps_per_epoch, validation_steps, validation_batch_size, validation_freq))
        try:
            replicas.same_rows(setup[0].rows, "x")
        except BaseException:
            setup[0].close()
            if setup[1] is not None:
                setup[1].close()
            raise
        return self._fit_feeds(*setup, replicas)

    def _fit_feeds(self, feed, val, loop_args, replicas):
        try:
            return self._fit_loop(feed, val, *loop_args, replicas=replicas)
        finally:
            feed.close()
            if val is not None:
                val.close()

    def _fit_setup(self, x, y, batch_size, epochs, verbose, callbacks, validation_split,
                   validation_data, shuffle, class_weight, sample_weight, initial_epoch,
                   steps_per_epoch, validation_steps, validation_batch_size,
                   validation_freq):
        """fit's arguments checked and its data placed: ``(feed, validation feed or
        None, the loop's arguments)``."""
        self._require_compiled("fit")
        if sample_weight is not None and class_weight is not None:
            raise ValueError("sample_weight, class_weight: You cannot `class_weight` and "
                             "`sample_weight` at the same time.")
        verbose = _verbose(verbose)
        stream = data_module.is_stream(x) and not isinstance(x, np.memmap)
        if not stream:
            batch_size = _batch_size(batch_size)
        epochs = _int_arg("epochs", epochs, 0)
        initial_epoch = _int_arg("initial_epoch", initial_epoch, 0)
        validation_freq = _int_arg("validation_freq", validation_freq, 1)
        validation_batch_size = (None if validation_batch_size is None else
                                 _batch_size(validation_batch_size, "validation_batch_size"))
        callbacks = _callback_list(callbacks)
        if isinstance(validation_split, bool) or not isinstance(
                validation_split, (int, float, np.integer, np.floating)):
            raise TypeError(f"validation_split: expected a number in [0, 1), got "
                            f"{type(validation_split).__name__}")
        steps_per_epoch = None if steps_per_epoch is None else _int_arg(
            "steps_per_epoch", steps_per_epoch, 1)
        limit = config.max_steps_per_epoch()
        if limit is not None and (steps_per_epoch is None or limit < steps_per_epoch):
            steps_per_epoch = limit
        validation_steps = None if validation_steps is None else _int_arg(
            "validation_steps", validation_steps, 1)
        if stream:
            feed, val = self._stream_fit_data(x, y, sample_weight, class_weight,
                                              validation_split, validation_data,
                                              validation_steps, steps_per_epoch, shuffle,
                                              batch_size)
        else:
            feed, val = self._array_fit_data(x, y, sample_weight, class_weight,
                                             validation_split, validation_data,
                                             validation_steps, steps_per_epoch, shuffle,
                                             batch_size, validation_batch_size)
        return feed, val, (epochs, initial_epoch, verbose, callbacks, validation_freq)

    def _fit_loop(self, feed, val, epochs, initial_epoch, verbose, callbacks,
                  validation_freq, replicas=None):
        previous, self._replicas = self._replicas, replicas
        try:
            return self._fit_epochs(feed, val, epochs, initial_epoch, verbose, callbacks,
                                    validation_freq, replicas)
        finally:
            self._replicas = previous

    def _fit_epochs(self, feed, val, epochs, initial_epoch, verbose, callbacks,
                    validation_freq, replicas):
        max_epochs = config.max_epochs()
        if max_epochs is not None:
            epochs = min(epochs, max_epochs)
        # as Keras: the user's callbacks first, then History, then the progress bar
        # (which so show what the others add to the logs, e.g. "learning_rate")
        history = callbacks_module.History()
        cbs = callbacks + [history]
        # several processes: a stop set by a callback reaches the others inside the
        # next step's reduction (the step is then cancelled everywhere), or at the
        # epoch's end; one process (simulate too): at once
        several = replicas is not None and not replicas.simulated
        if verbose and (not several or replicas.rank == 0):
            cbs.append(callbacks_module.ProgbarLogger(verbose))
        cb = callbacks_module.CallbackList(
            cbs, self, {"epochs": epochs, "steps": feed.steps, "verbose": verbose,
                        "in_fit": True})
        self.stop_training = False
        ops = self.backend.ops
        self._resume = None
        cb.on_train_begin({})
        resume, self._resume = self._resume, None     # set by BackupAndRestore
        if resume is not None:
            initial_epoch = resume["epoch"]
        if replicas is not None:
            replicas.broadcast_model()
            if several and hasattr(feed, "part"):
                feed.part = (replicas.rank, replicas.parts)
        feed.start()
        batch_logs = cb.wants("on_train_batch_end")
        batches, run, may_run_out = feed.batches, feed.run, feed.may_run_out
        if replicas is not None:
            batch_logs = replicas.any(batch_logs)     # the logs are a collective
            run = replicas.step
        execution = self._steps_per_execution
        logs = {}
        for epoch in range(initial_epoch, epochs):
            self._reset_metrics(ops)
            done = 0
            if resume is not None:
                if resume["batch"]:
                    done = self._resume_sums(resume)
                resume = None
            cb.on_epoch_begin(epoch, {})
            step = None
            if execution == 1:
                for step, xb, yb, wb in batches(epoch, done):
                    cb.on_train_batch_begin(step, {})
                    if run(xb, yb, wb) is False:
                        break           # several processes: a rank asked to stop
                    cb.on_train_batch_end(step, self._logs(self._loss_acc, ops)
                                          if batch_logs else {})
                    if self.stop_training and not several:
                        break
            else:     # Keras's steps_per_execution: the batch hooks once an execution
                for step, xb, yb, wb in batches(epoch, done):
                    first = step - step % execution
                    if step == first or step == done:
                        cb.on_train_batch_begin(first, {})
                    if run(xb, yb, wb) is False:
                        step = None     # several processes: a rank asked to stop
                        break
                    if step % execution == execution - 1:
                        cb.on_train_batch_end(first + execution - 1, self._logs(
                            self._loss_acc, ops) if batch_logs else {})
                        if self.stop_training and not several:
                            break
                if step is not None and step % execution != execution - 1:
                    first = step - step % execution
                    cb.on_train_batch_end(first + execution - 1, self._logs(
                        self._loss_acc, ops) if batch_logs else {})
            if may_run_out:
                ran = 0 if step is None else step + 1 - done
                if feed.ran_out(ran + done):
                    warnings.warn("Your input ran out of data; interrupting training. Make "
                                  "sure that your dataset or generator can generate at least "
                                  "`steps_per_epoch * epochs` batches.", stacklevel=3)
                    self.stop_training = True
                    if ran == 0:
                        break
            logs = self._logs(self._loss_acc, ops)
            if val is not None and (epoch + 1) % validation_freq == 0:
                # as Keras's evaluate(callbacks=callbacks): the on_test_* hooks run
                cb.on_test_begin({})
                vlogs = self._evaluate_batches(val.eval_batches(), cb)
                cb.on_test_end(vlogs)
                logs.update({"val_" + k: v for k, v in vlogs.items()})
            cb.on_epoch_end(epoch, logs)
            if several:       # a stop asked for at the epoch's end, on any rank
                self.stop_training = replicas.any(self.stop_training)
            if self.stop_training:
                break
        cb.on_train_end(logs)
        return history

    def _array_fit_data(self, x, y, sample_weight, class_weight, validation_split,
                        validation_data, validation_steps, steps_per_epoch, shuffle,
                        batch_size, validation_batch_size):
        """(the training feed, the validation feed or None) of arrays (or memmaps)."""
        memmap = isinstance(x, np.memmap)
        if memmap:
            x_checked = self._as_x(x[:1])       # builds the model; rows read per batch
            n = x.shape[0]
            if tuple(x.shape[1:]) != tuple(x_checked.shape[1:]):
                raise ValueError(f"x: expected samples of shape {self._sample_shape}, got "
                                 f"{x.shape}")
            if y is None:
                raise ValueError("y: expected targets, got None")
            y_arr = np.asarray(y) if not isinstance(y, np.memmap) else y
            if y_arr.ndim == 0 or y_arr.shape[0] != n:
                raise ValueError(f"y: expected {n} targets (one per sample of x), got "
                                 f"shape {np.shape(y)}")
            w = sample_weight
            if w is not None and (np.ndim(w) == 0 or np.shape(w)[0] != n):
                raise ValueError(f"sample_weight: expected one weight per sample, shape "
                                 f"({n},), got shape {np.shape(w)}")
            y = y_arr
        else:
            x = self._as_x(x)
            y = self._as_y(y, x.shape[0])
            self._check_finite(x, "x")
            w = None if sample_weight is None else self._as_weights(sample_weight,
                                                                     x.shape[0])
        val = None
        if validation_data is not None:
            val = self._validation_feed(validation_data, validation_steps,
                                        validation_batch_size or batch_size)
        elif validation_split:
            if not 0 < validation_split < 1:
                raise ValueError(f"validation_split: expected a value in (0, 1), got "
                                 f"{short_repr(validation_split)}")
            split = int(math.floor(x.shape[0] * (1.0 - validation_split)))
            if split == 0 or split == x.shape[0]:
                raise ValueError(f"validation_split: {x.shape[0]} samples cannot be split "
                                 f"into training and validation sets with "
                                 f"validation_split={validation_split}")
            vx, vy, vw = x[split:], y[split:], None if w is None else w[split:]
            x, y, w = x[:split], y[:split], None if w is None else w[:split]
            if memmap:
                val = _StreamFeed(self, data_module.MemmapSource(
                    vx, vy, vw, validation_batch_size or batch_size, False, 0), None, "x")
            else:
                val = _ArrayEval(self, vx, vy, vw, validation_batch_size or batch_size)
        if memmap:
            source = data_module.MemmapSource(x, y, w, batch_size, shuffle, self.seed)
            if steps_per_epoch is not None:
                source.steps = min(source.steps, steps_per_epoch)
            return _StreamFeed(self, source, class_weight, "x"), val
        if class_weight is not None:      # on the training samples only, as Keras
            w = self._class_weights(class_weight, y)
        if y.dtype.kind in "iu":
            # Class labels, range-checked by _as_y: fit trains on its own copy, so that
            # a callback changing the caller's array cannot make them invalid mid-fit
            # (the validated-once steps index rows with them unchecked).
            y = y.copy()
        if w is not None:
            w = w.copy()      # fit's own (the validated-once steps read it unchecked)
        return _ArrayFeed(self, x, y, w, batch_size, shuffle, steps_per_epoch,
                          self._steps_per_execution), val

    def _stream_fit_data(self, x, y, sample_weight, class_weight, validation_split,
                         validation_data, validation_steps, steps_per_epoch, shuffle,
                         batch_size):
        """(the training feed, the validation feed or None) of a generator or a
        PyDataset."""
        if batch_size is not None:
            raise ValueError(f"batch_size: expected None when x is a generator or a "
                             f"PyDataset (its batches have their size), got "
                             f"{short_repr(batch_size)}")
        if validation_split:
            raise ValueError("validation_split: only supported for arrays; with a "
                             "generator or a PyDataset pass validation_data")
        if class_weight is not None and not isinstance(x, data_module.PyDataset):
            raise ValueError("class_weight: not supported for a Python generator (as "
                             "Keras); use a PyDataset or sample weights in its batches")
        source = data_module.make_source(x, y, sample_weight, None, steps_per_epoch,
                                         shuffle, self.seed)
        feed = _StreamFeed(self, source, class_weight, "x")
        feed.peek()      # the first batch builds the model
        val = None
        if validation_data is not None:
            val = self._validation_feed(validation_data, validation_steps, None)
        return feed, val

    def _validation_feed(self, validation_data, validation_steps, batch_size):
        if data_module.is_stream(validation_data) and not isinstance(validation_data,
                                                                     np.memmap):
            source = data_module.make_source(validation_data, None, None, None,
                                             validation_steps, False, 0,
                                             "validation_data")
            return _StreamFeed(self, source, None, "validation_data")
        if not isinstance(validation_data, (tuple, list)) or \
                len(validation_data) not in (2, 3):
            raise ValueError("validation_data: expected a tuple (x_val, y_val) or "
                             "(x_val, y_val, sample_weight_val), a generator or a "
                             "PyDataset")
        vx = self._as_x(validation_data[0], "validation_data[0]")
        vw = validation_data[2] if len(validation_data) == 3 else None
        vy = self._as_y(validation_data[1], vx.shape[0], "validation_data[1]")
        vw = None if vw is None else self._as_weights(vw, vx.shape[0], "validation_data[2]")
        self._check_finite(vx, "validation_data[0]")
        return _ArrayEval(self, vx, vy, vw, batch_size or 32)

    def _checked_batch(self, xb, yb, wb, name, index, class_weight=None, want_y=True):
        """A raw batch of a stream, checked and converted as arrays are (errors name
        the batch), ``(x, y, w)`` as host arrays of the model's dtypes."""
        try:
            x = self._as_x(xb, name)
            self._check_finite(x, name)
            if not want_y:
                return x, None, None
            if yb is None:
                raise ValueError(f"{name}: expected batches (x, y) or (x, y, "
                                 f"sample_weight) to train or evaluate on, got x alone")
            y = self._as_y(yb, x.shape[0], name)
            w = None if wb is None else self._as_weights(wb, x.shape[0], name)
            if class_weight is not None and w is None:
                w = self._class_weights(class_weight, y)
            return x, y, w
        except (TypeError, ValueError) as exc:
            message = str(exc)        # "x: ..." of the batch's x, "y: ..." of its y
            if message.startswith(name + ": "):
                message = message[len(name) + 2:]
            raise type(exc)(f"{name}: batch {index}: {message}") from None

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None,
                       return_dict=False):
        """One optimisation step on one batch.  Returns the loss (and metrics) of this
        batch: the metrics are reset first, as Keras 3 does (since keras#22617)."""
        dist = distribution_module.active(self)
        replicas = None
        if dist is not None:       # the batch is a global one; made once per model
            cached = getattr(self, "_batch_replicas", None)
            if cached is None or cached.dist is not dist:
                cached = self._batch_replicas = Replicas(dist, self)
                cached.broadcast_model()
            replicas = cached

        def check():
            self._require_compiled("train_on_batch")
            if sample_weight is not None and class_weight is not None:
                raise ValueError("sample_weight, class_weight: You cannot `class_weight` "
                                 "and `sample_weight` at the same time.")
            x_ = self._as_x(x)
            y_ = self._as_y(y, x_.shape[0])
            w = None if sample_weight is None else self._as_weights(sample_weight,
                                                                     x_.shape[0])
            if class_weight is not None:
                w = self._class_weights(class_weight, y_)
            return x_, y_, w
        batch = self._checked_everywhere(replicas, check)
        self._reset_metrics(self.backend.ops)
        if replicas is None:
            self._train_step(*self._place(*batch))
            return self._result(self._logs(self._loss_acc), return_dict)
        previous, self._replicas = self._replicas, replicas
        try:
            replicas.step(*self._place(*batch), watch_stop=False)
            return self._result(self._logs(self._loss_acc), return_dict)
        finally:
            self._replicas = previous

    @staticmethod
    def _checked_everywhere(replicas, check):
        """``check()``'s result; under data parallelism over several processes, its
        TypeError or ValueError (the first rank's) is raised on every rank, so that
        no rank goes on alone to a collective."""
        if replicas is None or replicas.simulated:
            return check()
        result, error = None, None
        try:
            result = check()
        except (TypeError, ValueError) as exc:
            error = exc
        replicas.agree(error)
        return result

    # ------------------------------------------------- BackupAndRestore's state
    def _save_backup(self, path, epoch, batches_done):
        """Save the model with where fit is: at ``batches_done`` batches into
        ``epoch``, with the running loss and metric sums of those batches."""
        with self._all_sums(self._loss_acc):
            total, count = self.backend.ops.acc_read(self._loss_acc)
            state = {"epoch": int(epoch), "batch": int(batches_done),
                     "loss_sums": [total, count],
                     "metric_states": [m._get_state() for m in self.metrics],
                     **self._extra_sums()}
        self._save(path, fit_state=state)

    def _all_sums(self, acc):
        """A context in which ``acc`` and the metrics hold every rank's sums (data
        parallelism over several processes; a collective), this rank's after it."""
        if self._replicas is None:
            return contextlib.nullcontext()
        return self._replicas.all_sums(acc)

    def _extra_sums(self):
        """Running sums besides the loss and the metrics' to keep in a backup (a
        model with several outputs: each output's loss)."""
        return {}

    def _restore_extra_sums(self, state):
        """Put back what :meth:`_extra_sums` saved (``state``: the backup's)."""

    def _restore_backup(self, path):
        """Restore what :meth:`_save_backup` wrote: weights, optimizer state and
        learning rate, seed; ``fit`` then resumes from the recorded batch."""
        cfg, weights, opt_state, _ = saving.unpack(path)
        try:
            state = cfg["fit_state"]
            epoch, batch = state["epoch"], state["batch"]
            loss_sums, metric_states = state["loss_sums"], list(state["metric_states"])
            seed = cfg["seed"]
            lr = cfg["compile_config"]["optimizer"]["config"]["learning_rate"]
            if not all(type(v) is int and v >= 0 for v in (epoch, batch, seed)) or \
                    len(metric_states) != len(self.metrics) or len(loss_sums) != 2 or \
                    not all(isinstance(v, (int, float)) for v in loss_sums):
                raise ValueError("malformed fit state")
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"backup: {path!r} is not a backup of a fit in progress for "
                             f"this model ({type(exc).__name__}: {exc})") from None
        try:
            self.set_weights(weights)
            params = [w for i in self._trainable_layers()
                      for w in self._layers[i]._trainable_variables]
            if opt_state:
                self.optimizer.set_state(opt_state, params, self.backend.ops)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"backup: {path!r} does not fit this model: {exc}") from None
        if isinstance(lr, (int, float)) and type(self.optimizer._learning_rate) is float:
            self.optimizer.learning_rate = lr      # as a callback may have set it
        self.seed = seed
        for layer in self._layers:
            if hasattr(layer, "model_seed"):
                layer.model_seed = seed
        self._resume = {"epoch": epoch, "batch": batch, "loss_sums": loss_sums,
                        "metric_states": metric_states, "state": state}

    def _resume_sums(self, resume):
        """Restore the running sums of an epoch resumed mid-way; the batches done."""
        if self._replicas is not None and self._replicas.rank != 0:
            return resume["batch"]    # the sums are every rank's: rank 0 holds them
        total, count = resume["loss_sums"]
        self.backend.ops.acc_add(self._loss_acc, total, 1.0, count)
        for m, state in zip(self.metrics, resume["metric_states"]):
            m._set_state(state)
        self._restore_extra_sums(resume.get("state", {}))
        return resume["batch"]

    def reset_metrics(self):
        """Reset the running loss and every metric (fit does this at each epoch)."""
        self._reset_metrics(self.backend.ops)

    def _reset_metrics(self, ops):
        for m in self.metrics:
            m.reset_state()
        self._loss_acc = ops.acc_new()

    def _result(self, logs, return_dict):
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    # --------------------------------------------------------------- evaluation
    def _evaluate_batches(self, batches, cb):
        """Loss and metrics over placed batches ``(x, y, w)`` (``w`` the sample weights
        or None); a callback may end the loop with ``model.stop_evaluating``."""
        for m in self.metrics:
            m.reset_state()
        be = self.backend
        ops = be.ops
        acc = ops.acc_new()
        batch_logs = cb is not None and cb.wants("on_test_batch_end")
        replicas = self._replicas
        if replicas is not None and replicas.simulated:
            replicas = None         # one process: whole batches
        if replicas is not None:
            batch_logs = replicas.any(batch_logs)     # the logs are a collective
        self.stop_evaluating = False
        total = 0
        execution = self._steps_per_execution
        step = -1
        for step, batch in enumerate(batches):
            first = step - step % execution
            if cb is not None and step == first:
                cb.on_test_batch_begin(first, {})
            if replicas is not None:      # this process's rows of the batch
                batch = replicas.eval_slice(*batch)
            if batch is not None:
                xb, yb, wb = batch
                rows = xb.shape[0]
                total += rows
                y_pred = self._forward(xb)
                self._eval_loss(acc, yb, y_pred, wb, rows)
                self._update_metrics(ops, yb, y_pred, wb)
            if cb is not None and step % execution == execution - 1:
                cb.on_test_batch_end(first + execution - 1, self._eval_logs(acc, batch_logs))
            if self.stop_evaluating:
                break
        if cb is not None and step >= 0 and step % execution != execution - 1:
            first = step - step % execution
            cb.on_test_batch_end(first + execution - 1, self._eval_logs(acc, batch_logs))
        self._add_penalty(acc, float(total))
        return self._logs(acc)

    def _eval_logs(self, acc, wanted):
        """An evaluation batch's logs (the running loss with the penalties), when a
        callback looks at them."""
        if not wanted:
            return {}
        logs = self._logs(acc)
        logs["loss"] += self._penalty()
        return logs

    def _eval_feed(self, x, y, sample_weight, batch_size, steps, name="x"):
        """What evaluate and test_on_batch read: arrays, or a stream's batches."""
        if data_module.is_stream(x) and not isinstance(x, np.memmap):
            if batch_size is not None:
                raise ValueError(f"batch_size: expected None when x is a generator or a "
                                 f"PyDataset, got {short_repr(batch_size)}")
            return _StreamFeed(self, data_module.make_source(
                x, y, sample_weight, None, steps, False, 0, name), None, name)
        batch_size = _batch_size(batch_size)
        if isinstance(x, np.memmap):
            self._as_x(x[:1])
            return _StreamFeed(self, data_module.MemmapSource(
                x, y, sample_weight, batch_size, False, 0), None, name)
        x = self._as_x(x)
        y = self._as_y(y, x.shape[0])
        w = None if sample_weight is None else self._as_weights(sample_weight, x.shape[0])
        return _ArrayEval(self, x, y, w, batch_size, steps)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False):
        """The loss (with regularisation penalties) and metrics over ``x``, ``y`` (or
        a generator / PyDataset ``x`` of batches, ``steps`` of them): a scalar, a list
        ``[loss, *metrics]``, or a dict with ``return_dict``."""
        replicas = self._processes()

        def check():
            self._require_compiled("evaluate")
            steps_ = None if steps is None else _int_arg("steps", steps, 1)
            return _verbose(verbose), self._eval_feed(x, y, sample_weight, batch_size,
                                                      steps_)
        verbose, feed = self._checked_everywhere(replicas, check)
        previous, self._replicas = self._replicas, replicas or self._replicas
        try:
            show = verbose and (replicas is None or replicas.rank == 0)
            cbs = (([callbacks_module.ProgbarLogger(verbose)] if show else [])
                   + _callback_list(callbacks))
            cb = callbacks_module.CallbackList(cbs, self, {"steps": feed.steps,
                                                           "verbose": verbose})
            cb.on_test_begin({})
            logs = self._evaluate_batches(feed.eval_batches(), cb)
            cb.on_test_end(logs)
        finally:
            self._replicas = previous
            feed.close()
        return self._result(logs, return_dict)

    def _processes(self):
        """The data parallelism over several processes of evaluate and predict (each
        process computes its slice of every batch), or None (simulate computes whole
        batches)."""
        dist = distribution_module.active(self)
        if dist is None or dist.simulate is not None:
            return None
        return Replicas(dist, self)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """Loss and metrics on one batch (metrics reset first)."""
        replicas = self._processes()

        def check():
            self._require_compiled("test_on_batch")
            x_ = self._as_x(x)
            y_ = self._as_y(y, x_.shape[0])
            w = None if sample_weight is None else self._as_weights(sample_weight,
                                                                     x_.shape[0])
            return x_, y_, w
        x_, y_, w = self._checked_everywhere(replicas, check)
        feed = _ArrayEval(self, x_, y_, w, x_.shape[0])
        previous, self._replicas = self._replicas, replicas or self._replicas
        try:
            logs = self._evaluate_batches(feed.eval_batches(), None)
        finally:
            self._replicas = previous
        return self._result(logs, return_dict)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """The model's outputs for ``x`` (a NumPy array whatever the backend), computed
        in batches of ``batch_size`` (32); ``x`` may be a generator / PyDataset of
        batches (``steps`` of them), or a memmap.  A callback may end the loop with
        ``model.stop_predicting`` (the outputs so far are returned)."""
        verbose = _verbose(verbose)
        steps = None if steps is None else _int_arg("steps", steps, 1)
        if data_module.is_stream(x):
            return self._predict_stream(x, batch_size, verbose, steps, callbacks)
        replicas = self._processes()

        def check():
            size = _batch_size(batch_size)
            x_ = self._as_x(x)
            n = x_.shape[0] if steps is None else min(x_.shape[0], steps * size)
            out_shape = (n,) + self._output_sample_shape()
            nbytes = math.prod(out_shape) * np.dtype(self.dtype).itemsize
            if nbytes > MAX_BYTES:
                raise ValueError(f"x: expected inputs whose predictions fit in memory (at "
                                 f"most {MAX_BYTES} bytes here), got {n} samples: "
                                 f"predictions of shape {out_shape} need {nbytes} bytes")
            return x_[:n], size
        x, batch_size = self._checked_everywhere(replicas, check)
        n = x.shape[0]
        if replicas is None:
            return self._predict_rows(x, batch_size, verbose, callbacks)
        # several processes: rank r predicts rows bounds(n, N, r), then every rank
        # gathers all of them in order
        lo, hi = bounds(n, replicas.parts, replicas.rank)
        local = self._predict_rows(x[lo:hi], batch_size,
                                   verbose if replicas.rank == 0 else 0, callbacks)
        return replicas.gather_predictions(local)

    def _predict_rows(self, x, batch_size, verbose, callbacks):
        """The outputs for the checked array ``x`` (possibly no rows), in batches."""
        n = x.shape[0]
        total = steps_for(n, batch_size)
        cbs = (([callbacks_module.ProgbarLogger(verbose)] if verbose else [])
               + _callback_list(callbacks))
        cb = callbacks_module.CallbackList(cbs, self, {"steps": total, "verbose": verbose})
        out = np.empty((n,) + self._output_sample_shape(), dtype=self.dtype)
        ops = self.backend.ops
        xd, = self._place(x)
        self.stop_predicting = False
        cb.on_predict_begin({})
        hi = 0
        execution = self._steps_per_execution
        for step in range(total):
            lo, hi = step * batch_size, min(n, (step + 1) * batch_size)
            first = step - step % execution
            if step == first:
                cb.on_predict_batch_begin(first, {})
            out[lo:hi] = ops.to_host(self._forward(self._batch(xd[lo:hi])))
            if step % execution == execution - 1 or step == total - 1:
                cb.on_predict_batch_end(first + execution - 1, {})
            if self.stop_predicting:
                break
        cb.on_predict_end({})
        return out if hi == n else out[:hi]

    def _predict_stream(self, x, batch_size, verbose, steps, callbacks):
        if isinstance(x, np.memmap):
            self._as_x(x[:1])
            source = data_module.MemmapSource(x, None, None, _batch_size(batch_size), False,
                                              0)
        else:
            if batch_size is not None:
                raise ValueError(f"batch_size: expected None when x is a generator or a "
                                 f"PyDataset, got {short_repr(batch_size)}")
            source = data_module.make_source(x, None, None, None, steps, False, 0)
        feed = _StreamFeed(self, source, None, "x")
        cbs = (([callbacks_module.ProgbarLogger(verbose)] if verbose else [])
               + _callback_list(callbacks))
        cb = callbacks_module.CallbackList(cbs, self, {"steps": feed.steps,
                                                       "verbose": verbose})
        ops = self.backend.ops
        outs = []
        self.stop_predicting = False
        cb.on_predict_begin({})
        try:
            for step, (xb, _, _) in enumerate(feed.eval_batches(want_y=False)):
                cb.on_predict_batch_begin(step, {})
                outs.append(np.array(ops.to_host(self._forward(xb)), copy=True))
                cb.on_predict_batch_end(step, {})
                if self.stop_predicting:
                    break
        finally:
            feed.close()
        cb.on_predict_end({})
        if not outs:
            return np.empty((0,) + self._output_sample_shape(), self.dtype)
        return np.concatenate(outs)

    def predict_on_batch(self, x):
        """The model's outputs for one batch (a NumPy array)."""
        xd, = self._place(self._as_x(x))
        return np.array(self.backend.ops.to_host(self._forward(xd)), copy=True)

    def __call__(self, x, training=False):
        """Apply the model to a batch (inference; ``training`` is accepted for Keras
        compatibility and must be False: training goes through fit/train_on_batch)."""
        if training is not None and not isinstance(training, (bool, np.bool_)):
            raise TypeError(f"training: expected False or None, got {describe(training)}")
        if training:
            raise ValueError("training: calling a model with training=True is not "
                             "supported; use fit or train_on_batch")
        return self.predict_on_batch(x)


# ------------------------------------------------------------------ data feeds
# What fit's loop, evaluate and predict read: ``steps`` (batches an epoch, or None),
# ``batches(epoch, start)`` -> (step, x, y, w) placed where the backend computes,
# ``run(x, y, w)`` (one training step), ``eval_batches()`` -> (x, y, w),
# ``ran_out(batches_run)``, ``start()``, ``close()``.

class _ArrayFeed:
    """In-memory arrays: the validated-once steps over fit's own arrays, batches by
    :class:`EpochIterator`.  With ``steps_per_epoch``, epochs take their batches from
    one pass over the data after another, as Keras's epoch iterator does: an epoch of
    executions of ``steps_per_execution`` batches each (``range(0, steps_per_epoch,
    steps_per_execution)``); a pass that ends within an epoch ends that epoch (with
    Keras's warning) and the next epoch starts a new pass (a new shuffled order)."""

    def __init__(self, model, x, y, w, batch_size, shuffle, steps_per_epoch,
                 steps_per_execution=1):
        self.model = model
        self._data = (x, y, w)
        self.rows = x.shape[0]
        self._batch_size, self._shuffle = batch_size, shuffle
        # data parallelism over several processes: (rank, ranks), set before start()
        # (drawn batches are gathered in this rank's rows only)
        self.part = None
        self.per_pass = steps_for(x.shape[0], batch_size)
        self.steps_per_epoch = steps_per_epoch
        self.execution = steps_per_execution
        self.steps = (self.per_pass if steps_per_epoch is None
                      else min(steps_per_epoch, self.per_pass))
        self._train = self._iter = None
        self._plans = {}       # epoch -> (pass, first batch, batches, ran out)
        self.may_run_out = False

    def start(self):
        """Place the data and build the steps (after on_train_begin: a
        BackupAndRestore may have restored the seed)."""
        model = self.model
        be = model.backend
        x, y, w = model._place(*self._data)
        self._data = None
        self._train = _fast.TrainSteps(model, be, x, y, w, EpochIterator.streams(x, be.ops))
        self._iter = EpochIterator(self._train.x, self._train.y, self._train.w,
                                   self._batch_size, be.ops, self._shuffle, model.seed,
                                   self.part)
        self.run = self._train.run
        if self.steps_per_epoch is None:
            self.batches = self._iter.batches      # the plain case: no extra call

    def _plan(self, epoch):
        """(pass, its first batch used, batches, whether the pass ended early) of
        ``epoch``, simulated from the last epoch planned (from 0 after a resume)."""
        plans = self._plans
        if epoch in plans:
            return plans[epoch]
        last = max((e for e in plans if e < epoch), default=None)
        if last is None:
            e, p, pos = 0, 0, 0
        else:
            p, first, count, _ = plans[last]
            e, pos = last + 1, first + count
            if pos >= self.per_pass:
                p, pos = p + 1, 0
        per, spe, run = self.per_pass, self.steps_per_epoch, self.execution
        while True:
            first, count, short = pos, 0, False
            for _ in range(0, spe, run):
                if pos >= per:
                    short = True
                    break
                count += min(run, per - pos)
                pos += run
            plans[e] = (p, first, count, short)
            if e == epoch:
                return plans[e]
            if pos >= per:
                p, pos = p + 1, 0
            e += 1

    def batches(self, epoch, start=0):
        if self.steps_per_epoch is None:
            return self._iter.batches(epoch, start)
        return self._epoch_of_passes(epoch, start)

    def _epoch_of_passes(self, epoch, start):
        p, first, count, short = self._plan(epoch)
        if short:
            warnings.warn("Your input ran out of data; interrupting training. Make sure "
                          "that your dataset or generator can generate at least "
                          "`steps_per_epoch * epochs` batches.", stacklevel=4)
        for i, (_, xb, yb, wb) in enumerate(
                itertools.islice(self._iter.batches(p, start=first + start), count - start)):
            yield start + i, xb, yb, wb

    def ran_out(self, ran):
        return False

    def close(self):
        self._train = self._iter = None


class _ArrayEval:
    """Arrays to evaluate on: placed once, read in slices."""

    def __init__(self, model, x, y, w, batch_size, steps=None):
        self.model = model
        self._data = (x, y, w)
        self._batch_size = batch_size
        self.steps = steps_for(x.shape[0], batch_size)
        if steps is not None:
            self.steps = min(self.steps, steps)
        self._placed = None

    def eval_batches(self):
        model = self.model
        if self._placed is None:
            self._placed = model._place(*self._data)
        x, y, w = self._placed
        size, n = self._batch_size, x.shape[0]
        for step in range(self.steps):
            lo, hi = step * size, min(n, (step + 1) * size)
            yield (model._batch(x[lo:hi]), model._batch(y[lo:hi]),
                   None if w is None else model._batch(w[lo:hi]))


    def close(self):
        self._placed = None


class _StreamFeed:
    """Batches of a :mod:`dl.data` source (generator, PyDataset, memmap): each batch
    checked as arrays are, then copied into fit's own batch buffers (host backends:
    the validated-once steps run on them) or sent to the device."""

    def __init__(self, model, source, class_weight, name):
        self.model = model
        self.source = source
        self.rows = None          # batches of their own size
        self.class_weight = class_weight
        self.name = name
        self.steps = source.steps
        self._bufs = None
        self._train = None
        self._epochs_seen = 0
        self.may_run_out = isinstance(source, data_module.IteratorSource)

    def peek(self):
        xb, yb, wb = self.source.peek()
        self.model._checked_batch(xb, yb, wb, self.name, 0, self.class_weight)

    def start(self):
        self.source.reseed(self.model.seed)

    def _stage(self, x, y, w):
        model = self.model
        be = model.backend
        if be.ops.on_device:
            x, y, w = model._place(x, y, w)
            if self._train is None:
                self._train = _fast.TrainSteps(model, be, x, y, w, True)
            return x, y, w
        rows = x.shape[0]
        bufs = self._bufs
        if bufs is None or rows > bufs[0].shape[0] or any(
                (a is None) != (b is None) or (a is not None and (
                    a.shape[1:] != b.shape[1:] or a.dtype != b.dtype))
                for a, b in zip((x, y, w), bufs)):
            bufs = self._bufs = tuple(
                None if a is None else np.empty((max(rows, 1),) + a.shape[1:], a.dtype)
                for a in (x, y, w))
            self._train = _fast.TrainSteps(model, be, *bufs, False)
        out = []
        for a, view in zip((x, y, w), (self._train.x, self._train.y, self._train.w)):
            if a is None:
                out.append(None)
            else:       # rows of fit's own buffers (TrainSteps's views of them)
                np.copyto(view[:rows], a)
                out.append(view[:rows])
        return tuple(out)

    def batches(self, epoch, start=0):
        for i, (xb, yb, wb) in enumerate(self.source.epoch_batches(epoch)):
            if i < start:
                continue
            x, y, w = self.model._checked_batch(xb, yb, wb, self.name, i, self.class_weight)
            yield (i,) + self._stage(x, y, w)

    def run(self, xb, yb, wb):
        self._train.run(xb, yb, wb)

    def eval_batches(self, want_y=True):
        model = self.model
        epoch = self._epochs_seen
        self._epochs_seen += 1
        for i, (xb, yb, wb) in enumerate(self.source.epoch_batches(epoch)):
            x, y, w = model._checked_batch(xb, yb, wb, self.name, i, want_y=want_y)
            yield model._place(x, y, w)

    def ran_out(self, ran):
        src = self.source
        if not isinstance(src, data_module.IteratorSource) or not src.exhausted:
            return False
        return src.steps is not None or ran == 0

    def close(self):
        self.source.close()
