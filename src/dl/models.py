"""The Sequential model: structure, compile/fit/evaluate/predict, saving.

``dl`` is thin: the model holds the layers and the training loop; every computation is
a call on one kernels backend object (``model.backend``).
"""
import math
import os

import numpy as np

from . import _fast, callbacks as callbacks_module
from . import config, layers as layers_module, losses as losses_module
from . import metrics as metrics_module, optimizers as optimizers_module, saving, utils
from kernels.checks import MAX_BYTES, describe, fits_in_memory, flag, short_repr


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


def _steps(n, batch_size):
    """Batches of ``batch_size`` covering ``n`` samples, in integers: ``n / batch_size``
    underflows to 0.0 for a huge batch size, and no batch would run."""
    return -(-n // batch_size)


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


def _unsupported(**kwargs):
    for name, value in kwargs.items():
        if value is not None:
            raise ValueError(f"{name}: not supported by dl yet (got {short_repr(value)}); "
                             f"see docs/keras-differences.md")


class Sequential:
    """A linear stack of layers.

    Args:
        layers: a list of layers (optionally starting with ``dl.Input(shape)``).
        name: the model's name.
        backend: the kernels backend for this model ("numpy", "cython", "cuda"); by
            default the one set with ``dl.set_backend``, else the fastest available.

    >>> model = dl.Sequential([dl.layers.Dense(1, input_shape=(2,))])
    >>> model.compile(optimizer="sgd", loss="mean_squared_error")
    >>> model.fit(x, y, epochs=1000)
    """

    def __init__(self, layers=None, name=None, backend=None, trainable=True):
        self.name = layers_module._name(name) or layers_module._unique_name("sequential")
        self._backend_name = backend
        if backend is not None:
            config.get_backend(backend)     # fail now if it cannot load
        self.trainable = flag("trainable", trainable)
        self._input = None
        self._layers = []
        self.built = False
        self.compiled = False
        self.optimizer = self.loss = None
        self.metrics = []
        self.stop_training = False
        self.history = None
        self.seed = None
        # Set by TerminateOnNaN during fit: a step whose loss or gradients are not
        # finite then updates nothing, so the weights stay the last finite ones.
        self._keep_finite_weights = False
        self._nonfinite_step = False
        if layers is not None and not isinstance(layers, (list, tuple)):
            raise TypeError(f"layers: expected a list of layers, got {type(layers).__name__}")
        for layer in layers or []:
            self.add(layer)

    # ---------------------------------------------------------------- structure
    @property
    def layers(self):
        return list(self._layers)

    def add(self, layer):
        """Append a layer (or set the input with ``dl.Input``)."""
        if isinstance(layer, layers_module.InputLayer):
            if self._input is not None or self._layers:
                raise ValueError("layer: an Input can only be the first entry of a Sequential")
            self._input = layer
            return
        if not isinstance(layer, layers_module.Layer) or type(layer) is layers_module.Layer:
            raise TypeError(f"layer: expected a dl.layers layer (Dense, Dropout...), got "
                            f"{type(layer).__name__}")
        if layer.input_spec_shape is not None and (self._layers or self._input is not None):
            raise ValueError(f"layer: input_shape/input_dim belong on the first layer only, "
                             f"got one on {layer.name!r}")
        self._layers.append(layer)
        try:
            if self.built:            # extend a built model: build the new layer in place
                prev = (self._layers[-2].output_shape if len(self._layers) > 1
                        else self.input_shape)
                self._build_layer(layer, len(self._layers) - 1, prev)
            elif self._declared_input_shape() is not None:
                self.build()      # as Keras 3: weights exist once the input shape is known
        except BaseException:
            self._layers.pop()    # a layer that cannot be built is not added
            raise
        self._configure_fusion()

    def pop(self):
        """Remove the last layer."""
        if not self._layers:
            raise ValueError("pop: the model has no layers to remove")
        layer = self._layers.pop()
        self._configure_fusion()
        return layer

    def _declared_input_shape(self):
        if self._input is not None:
            return self._input.input_spec_shape
        if self._layers and self._layers[0].input_spec_shape is not None:
            return self._layers[0].input_spec_shape
        return None

    @property
    def backend(self):
        """The kernels backend object this model computes with."""
        return config.get_backend(self._backend_name)

    def build(self, input_shape=None):
        """Create every layer's weights.  ``input_shape`` includes the batch
        dimension, as in Keras (``model.build((None, 2))``); by default the declared
        input shape is used."""
        if input_shape is None:
            shape = self._declared_input_shape()
            if shape is None:
                raise ValueError("input_shape: the model has no declared input shape; pass "
                                 "input_shape=(None, n) or give the first layer input_shape")
        else:
            shape = layers_module._shape(input_shape, "input_shape")[1:]
        if any(d is None for d in shape):
            raise ValueError(f"input_shape: expected known sample dimensions (dl builds the "
                             f"weights from them), got {(None,) + tuple(shape)}")
        if not self._layers:
            raise ValueError("layers: the model has no layers; add some before building, "
                             "training or predicting")
        if self.seed is None:
            self.seed = int(utils.global_rng().integers(2**62))
        dtype = None
        if self._input is not None:
            dtype = self._input.dtype
        self.dtype = config.resolve_dtype(dtype or self._layers[0].dtype)
        self.input_shape = tuple(shape)
        current = self.input_shape
        for i, layer in enumerate(self._layers):
            current = self._build_layer(layer, i, current)
        self.built = True
        self._configure_fusion()

    def _build_layer(self, layer, index, input_shape):
        layer.index_in_model = index
        if hasattr(layer, "model_seed"):
            layer.model_seed = self.seed
        if not layer.built:
            layer.build(input_shape, self.backend, self.dtype)
        else:
            layer.backend = self.backend
        if tuple(layer.input_shape) != tuple(input_shape):
            raise ValueError(f"{layer.name}: built for inputs of shape {layer.input_shape}, "
                             f"but the previous layer gives {tuple(input_shape)}")
        return layer.output_shape

    def _ensure_built(self, x):
        if not self.built:
            shape = self._declared_input_shape()
            self.build((None,) + (tuple(shape) if shape is not None else tuple(x.shape[1:])))

    @property
    def output_shape(self):
        return (None,) + tuple(self._layers[-1].output_shape)

    @property
    def weights(self):
        return [w for layer in self._layers for w in layer.weights]

    @property
    def trainable_weights(self):
        return [w for layer in self._layers if layer.trainable and self.trainable
                for w in layer.weights]

    def count_params(self):
        return int(sum(w.size for w in self.weights))

    def get_weights(self):
        """Copies of every weight array as NumPy arrays, in Keras's order (layer by
        layer: kernel, bias), whatever the backend keeps them in."""
        ops = self.backend.ops if self.built else None
        return [np.array(ops.to_host(w), copy=True) for w in self.weights]

    def set_weights(self, weights):
        """Set every weight from a list shaped like :meth:`get_weights`'s."""
        if not self.built:
            self.build()
        current = self.weights
        weights = list(weights)
        if len(weights) != len(current):
            raise ValueError(f"weights: expected a list of {len(current)} arrays, got "
                             f"{len(weights)}")
        arrays = [np.asarray(new) for new in weights]
        for i, (w, new) in enumerate(zip(current, arrays)):   # check all before any write
            if new.shape != w.shape:
                raise ValueError(f"weights[{i}]: expected shape {w.shape}, got {new.shape}")
            if new.dtype.kind not in "biuf":
                raise TypeError(f"weights[{i}]: expected a numeric array, got dtype {new.dtype}")
        ops = self.backend.ops
        for w, new in zip(current, arrays):
            ops.copy_from_host(w, new)

    def summary(self, print_fn=None):
        """Print the layers, their output shapes and parameter counts."""
        print_fn = print_fn or print
        if not self.built:
            try:
                self.build()
            except ValueError:
                pass
        rows = [(f"{layer.name} ({type(layer).__name__})",
                 str((None,) + tuple(layer.output_shape)) if layer.built else "?",
                 f"{layer.count_params():,}" if layer.built else "0 (unbuilt)")
                for layer in self._layers]
        w = (33, 24, 15)
        line = lambda a, b, c: f"│ {a:<{w[0] - 2}} │ {b:<{w[1] - 2}} │ {c:>{w[2] - 2}} │"
        print_fn(f'Model: "{self.name}"')
        print_fn("┏" + "┳".join("━" * n for n in w) + "┓")
        print_fn(line("Layer (type)", "Output Shape", "Param #").replace("│", "┃"))
        print_fn("┡" + "╇".join("━" * n for n in w) + "┩")
        for row in rows:
            print_fn(line(*row))
        print_fn("└" + "┴".join("─" * n for n in w) + "┘")
        total = self.count_params() if self.built else 0
        trainable = sum(w.size for w in self.trainable_weights) if self.built else 0
        itemsize = np.dtype(getattr(self, "dtype", np.float32)).itemsize
        size = lambda n: _human_bytes(n * itemsize)
        print_fn(f" Total params: {total:,} ({size(total)})")
        print_fn(f" Trainable params: {trainable:,} ({size(trainable)})")
        print_fn(f" Non-trainable params: {total - trainable:,} ({size(total - trainable)})")

    # ------------------------------------------------------------------ compile
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None,
                weighted_metrics=None, run_eagerly=False, steps_per_execution=1,
                jit_compile="auto", auto_scale_loss=True):
        """Set the optimizer, the loss and the metrics (Keras's names and objects).

        ``run_eagerly``, ``jit_compile`` and ``auto_scale_loss`` are accepted for
        compatibility and have no effect (dl has no graph to compile).
        """
        _unsupported(loss_weights=loss_weights, weighted_metrics=weighted_metrics)
        if not isinstance(steps_per_execution, (int, np.integer)) or steps_per_execution != 1:
            raise ValueError(f"steps_per_execution: only 1 is supported, got "
                             f"{short_repr(steps_per_execution)}")
        if loss is None:
            raise ValueError("loss: expected a loss name or object, got None")
        self.optimizer = optimizers_module.get(optimizer)
        self.loss = losses_module.get(loss)
        if metrics is None:
            metrics = []
        if isinstance(metrics, (str, dict, metrics_module.Metric)):
            metrics = [metrics]
        if not isinstance(metrics, (list, tuple)):
            raise TypeError(f"metrics: expected a list of metric names or objects, got "
                            f"{type(metrics).__name__}")
        self.metrics = [metrics_module.get(m) for m in metrics]
        self.compiled = True
        self.reset_metrics()
        self._configure_fusion()

    def _configure_fusion(self):
        """Fuse a final softmax Dense into a categorical cross-entropy loss: training then
        uses the stable softmax + cross-entropy kernel, whose gradient is (p - y) / n."""
        for layer in self._layers:
            if isinstance(layer, layers_module.Dense):
                layer.fuse_softmax_loss = False
        if not (self.compiled and self._layers):
            return
        last = self._layers[-1]
        fusable = (isinstance(last, layers_module.Dense) and last.activation.name == "softmax"
                   and isinstance(self.loss, (losses_module.CategoricalCrossentropy,
                                              losses_module.SparseCategoricalCrossentropy))
                   and not self.loss.from_logits)
        last.fuse_softmax_loss = fusable

    def _require_compiled(self, what):
        if not self.compiled:
            raise RuntimeError(f"{what}: you must compile the model before training or "
                               f"evaluating it (model.compile(optimizer, loss))")

    def get_compile_config(self):
        if not self.compiled:
            return None
        return {"optimizer": optimizers_module.serialize(self.optimizer),
                "loss": losses_module.serialize(self.loss),
                "metrics": [metrics_module.serialize(m) for m in self.metrics]}

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
        if arr.ndim == 1 and self.input_shape == (1,):
            arr = arr.reshape(-1, 1)
        if tuple(arr.shape[1:]) != tuple(self.input_shape):
            raise ValueError(f"{name}: expected samples of shape {self.input_shape} (the "
                             f"model's input), got data of shape {arr.shape}")
        return arr.astype(self.dtype, copy=False)

    def _as_y(self, y, n, name="y"):
        arr = self._numeric(y, name, "targets")
        if arr.ndim == 0 or arr.shape[0] != n:
            raise ValueError(f"{name}: expected {n} targets (one per sample of x), got "
                             f"shape {arr.shape}")
        fits_in_memory(name, arr.shape, self._itemsize(arr))
        self._check_finite(arr, name)      # before the loss reshapes or casts them
        return self.loss.prepare_targets(arr, (n,) + tuple(self._layers[-1].output_shape),
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
    def _param_layers(self):
        return [i for i, layer in enumerate(self._layers) if layer.weights]

    def _trainable_layers(self):
        return [i for i in self._param_layers() if self.trainable and self._layers[i].trainable]

    def _forward_backward(self, xb, yb):
        """Forward, loss and backward on a batch: fills every layer's gradient arrays.

        Returns ``(loss, y_pred)``: the data loss as the backend returns it (a NumPy
        scalar, or a 0-d device array: nothing is read back here) without the
        regularization penalties (:meth:`_add_penalty`), and ``y_pred``, a training
        buffer valid until the next step.
        """
        be = self.backend
        step = self.optimizer.iterations
        h = xb
        for layer in self._layers:
            h = layer.forward(h, training=True, step=step)
        y_pred = h
        last = self._layers[-1]
        grad_buf = last._buffer("dloss", tuple(y_pred.shape))
        if getattr(last, "fuse_softmax_loss", False):
            loss, grad = self.loss.fused(be, yb, last._z, grad_buf)
        else:
            loss = self.loss.value(be, yb, y_pred)
            grad = self.loss.gradient(be, yb, y_pred, grad_buf)
        trainable = self._trainable_layers()
        if trainable:
            first = trainable[0]
            dy = grad
            for i in range(len(self._layers) - 1, first - 1, -1):
                dy = self._layers[i].backward(dy, need_dx=i > first)
            for i in trainable:
                self._layers[i].add_regularization_gradients()
        return loss, y_pred

    def _add_penalty(self, acc, weight):
        """``acc[0] += weight * (regularization penalties)``; as Keras, only those of
        trainable weights count."""
        for i in self._trainable_layers():
            self._layers[i].add_penalty(acc, weight)

    def _train_step(self, xb, yb):
        """One optimisation step on a batch, its loss (with penalties, weighted by the
        batch size) added to the running loss; nothing is read back from a device
        unless TerminateOnNaN watches the step."""
        ops = self.backend.ops
        loss, y_pred = self._forward_backward(xb, yb)
        n = xb.shape[0]
        params, grads = [], []
        for i in self._trainable_layers():
            params.extend(self._layers[i].weights)
            grads.extend(self._layers[i].gradients)
        if self._keep_finite_weights:
            step_acc = ops.acc_new()
            ops.acc_add(step_acc, loss, 1.0, 1.0)
            self._add_penalty(step_acc, 1.0)
            if not (math.isfinite(ops.acc_read(step_acc)[0]) and ops.all_finite(grads)):
                params = []    # TerminateOnNaN is watching: keep the last finite weights
                self._nonfinite_step = True
        ops.acc_add(self._loss_acc, loss, float(n), float(n))
        self._add_penalty(self._loss_acc, float(n))    # of the weights before the step
        if params:
            self.optimizer.apply(self.backend, params, grads)
        for m in self.metrics:
            m.update_on(ops, yb, y_pred)

    def compute_gradients(self, x, y):
        """``(loss, [dL/dw for w in trainable_weights])`` on one batch, in training mode
        (dropout active), without updating anything: what a step would apply.  The
        gradients are NumPy arrays whatever the backend."""
        self._require_compiled("compute_gradients")
        x = self._as_x(x)
        y = self._as_y(y, x.shape[0])
        ops = self.backend.ops
        loss, _ = self._forward_backward(ops.to_device(x), ops.to_device(y))
        acc = ops.acc_new()
        ops.acc_add(acc, loss, 1.0, 1.0)
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
        the metrics: reads a device back."""
        total, count = (ops or self.backend.ops).acc_read(acc)
        logs = {"loss": total / count if count else 0.0}
        for m in self.metrics:
            logs[m.name] = float(m.result())
        return logs

    def _place(self, x, y=None):
        """The data where the backend computes: as is on the host; on the cuda backend
        copied once to the device (it stays there for the whole call), unless it does
        not fit there: then it stays on the host and batches are sent one by one."""
        ops = self.backend.ops
        if not ops.on_device or not ops.fits_on_device(
                x.nbytes + (0 if y is None else y.nbytes)):
            return x, y
        return ops.to_device(x), (None if y is None else ops.to_device(y))

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
        (32); returns a :class:`dl.callbacks.History`.

        As in Keras: ``validation_split`` holds out the *last* fraction of the samples,
        before shuffling; ``shuffle`` reshuffles every epoch; the last partial batch is
        kept; the epoch's loss is the batch losses' mean weighted by batch size.

        On the cuda backend the data is copied to the device once, batches are gathered
        there, and the loss and metric sums are read back once per epoch (and per
        batch only for callbacks that look at batch logs, e.g. a verbose=1 progress bar).
        """
        self._require_compiled("fit")
        _unsupported(class_weight=class_weight, sample_weight=sample_weight,
                     steps_per_epoch=steps_per_epoch, validation_steps=validation_steps)
        verbose = _verbose(verbose)
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
        x = self._as_x(x)
        y = self._as_y(y, x.shape[0])
        self._check_finite(x, "x")
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data: expected a tuple (x_val, y_val)")
            vx = self._as_x(validation_data[0], "validation_data[0]")
            val = (vx, self._as_y(validation_data[1], vx.shape[0], "validation_data[1]"))
            self._check_finite(val[0], "validation_data[0]")
        elif validation_split:
            if not 0 < validation_split < 1:
                raise ValueError(f"validation_split: expected a value in (0, 1), got "
                                 f"{short_repr(validation_split)}")
            split = int(math.floor(x.shape[0] * (1.0 - validation_split)))
            if split == 0 or split == x.shape[0]:
                raise ValueError(f"validation_split: {x.shape[0]} samples cannot be split "
                                 f"into training and validation sets with "
                                 f"validation_split={validation_split}")
            x, val = x[:split], (x[split:], y[split:])
            y = y[:split]
        if y.dtype.kind in "iu":
            # Class labels, range-checked by _as_y: fit trains on its own copy, so that
            # a callback changing the caller's array cannot make them invalid mid-fit
            # (the validated-once steps index rows with them unchecked).
            y = y.copy()
        n = x.shape[0]
        steps = -(-n // batch_size)
        cbs = [callbacks_module.History()]
        if verbose:
            cbs.insert(0, callbacks_module.ProgbarLogger(verbose))
        cbs += callbacks
        cb = callbacks_module.CallbackList(
            cbs, self, {"epochs": epochs, "steps": steps, "verbose": verbose, "in_fit": True})
        history = cbs[1] if verbose else cbs[0]
        self.stop_training = False
        be = self.backend
        ops = be.ops
        x, y = self._place(x, y)
        if val is not None:
            val = self._place(*val)
        rows = min(batch_size, n)
        xbuf = ops.empty((rows,) + tuple(x.shape[1:]), x.dtype)
        ybuf = ops.empty((rows,) + tuple(y.shape[1:]), y.dtype)
        # data too large for the device: gathered on the host into page-locked
        # buffers, then copied into the device batch buffers
        streamed = ops.on_device and isinstance(x, np.ndarray)
        if streamed:
            xpin = ops.pinned_empty(xbuf.shape, x.dtype)
            ypin = ops.pinned_empty(ybuf.shape, y.dtype)
        batch_logs = cb.wants("on_train_batch_end")
        shuffler = utils.EpochShuffler(self.seed)
        # The validated-once steps (dl._fast), by batch rows: None not built yet, False
        # not covered.  Batches come from fit's own views of the validated x and y.
        plans = None
        if be.unchecked is not None and not streamed:
            plans = {}
            x, y = x.view(), y.view()
        cb.on_train_begin({})
        logs = {}
        for epoch in range(initial_epoch, epochs):
            self._reset_metrics(ops)
            cb.on_epoch_begin(epoch, {})
            # One batch holds every sample whatever the order: no shuffle needed (the
            # gradient is a sum; only its rounding could differ).
            order = shuffler.permutation(epoch, n) if shuffle and steps > 1 else None
            if order is not None and not streamed:
                order = ops.to_device(order.astype(np.int64, copy=False))
            for step in range(steps):
                lo, hi = step * batch_size, min(n, (step + 1) * batch_size)
                if streamed:
                    m = hi - lo
                    if order is None:
                        xpin[:m], ypin[:m] = x[lo:hi], y[lo:hi]
                    else:
                        np.take(x, order[lo:hi], axis=0, out=xpin[:m])
                        np.take(y, order[lo:hi], axis=0, out=ypin[:m])
                    ops.copy_from_host(xbuf[:m], xpin[:m])
                    ops.copy_from_host(ybuf[:m], ypin[:m])
                    xb, yb = xbuf[:m], ybuf[:m]
                elif order is None:
                    xb, yb = x[lo:hi], y[lo:hi]
                else:      # gather this batch only: no copy of the dataset per epoch
                    idx = order[lo:hi]
                    xb = ops.take_rows(x, idx, xbuf[:hi - lo])
                    yb = ops.take_rows(y, idx, ybuf[:hi - lo])
                cb.on_train_batch_begin(step, {})
                plan = plans.get(hi - lo) if plans is not None else False
                if plan and plan.current():
                    plan.run(xb, yb)
                else:
                    self._train_step(xb, yb)
                    # (re)built after a successful checked step; not when the model
                    # changed again before its plan ever ran (it changes every step)
                    if plan is None or (plan and plan.used):
                        plans[hi - lo] = _fast.FastStep.build(self, be, x, y, hi - lo) or False
                    elif plan:
                        plans[hi - lo] = False
                cb.on_train_batch_end(step, self._logs(self._loss_acc, ops) if batch_logs
                                      else {})
                if self.stop_training:
                    break
            logs = self._logs(self._loss_acc, ops)
            if val is not None and (epoch + 1) % validation_freq == 0:
                vlogs = self._evaluate_arrays(val[0], val[1], validation_batch_size or batch_size,
                                              None)
                logs.update({"val_" + k: v for k, v in vlogs.items()})
            cb.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cb.on_train_end(logs)
        return history

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None,
                       return_dict=False):
        """One optimisation step on one batch.  Returns the loss (and metrics) as
        running means since the last ``reset_metrics()``, as Keras 3 does."""
        self._require_compiled("train_on_batch")
        _unsupported(sample_weight=sample_weight, class_weight=class_weight)
        x = self._as_x(x)
        y = self._as_y(y, x.shape[0])
        self._train_step(*self._place(x, y))
        return self._result(self._logs(self._loss_acc), return_dict)

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
    def _forward(self, x):
        h = x
        for layer in self._layers:
            h = layer.forward(h, training=False)
        return h

    def _evaluate_arrays(self, x, y, batch_size, cb):
        """Loss and metrics over arrays already placed by :meth:`_place`."""
        for m in self.metrics:
            m.reset_state()
        be = self.backend
        ops = be.ops
        n = x.shape[0]
        steps = -(-n // batch_size)
        acc = ops.acc_new()
        batch_logs = cb is not None and cb.wants("on_test_batch_end")
        for step in range(steps):
            lo, hi = step * batch_size, min(n, (step + 1) * batch_size)
            if cb is not None:
                cb.on_test_batch_begin(step, {})
            xb, yb = self._batch(x[lo:hi]), self._batch(y[lo:hi])
            y_pred = self._forward(xb)
            ops.acc_add(acc, self.loss.value(be, yb, y_pred), float(hi - lo), float(hi - lo))
            for m in self.metrics:
                m.update_on(ops, yb, y_pred)
            if cb is not None:
                if batch_logs:
                    logs = self._logs(acc)
                    logs["loss"] += self._penalty()
                else:
                    logs = {}
                cb.on_test_batch_end(step, logs)
        self._add_penalty(acc, float(n))
        return self._logs(acc)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False):
        """The loss (with regularisation penalties) and metrics over ``x``, ``y``:
        a scalar, a list ``[loss, *metrics]``, or a dict with ``return_dict``."""
        self._require_compiled("evaluate")
        _unsupported(sample_weight=sample_weight, steps=steps)
        verbose = _verbose(verbose)
        batch_size = _batch_size(batch_size)
        x = self._as_x(x)
        y = self._as_y(y, x.shape[0])
        cbs = (([callbacks_module.ProgbarLogger(verbose)] if verbose else [])
               + _callback_list(callbacks))
        cb = callbacks_module.CallbackList(
            cbs, self, {"steps": -(-x.shape[0] // batch_size), "verbose": verbose})
        cb.on_test_begin({})
        logs = self._evaluate_arrays(*self._place(x, y), batch_size, cb)
        cb.on_test_end(logs)
        return self._result(logs, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """Loss and metrics on one batch (metrics reset first)."""
        self._require_compiled("test_on_batch")
        _unsupported(sample_weight=sample_weight)
        x = self._as_x(x)
        y = self._as_y(y, x.shape[0])
        return self._result(self._evaluate_arrays(*self._place(x, y), x.shape[0], None),
                            return_dict)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """The model's outputs for ``x`` (a NumPy array whatever the backend), computed
        in batches of ``batch_size`` (32)."""
        _unsupported(steps=steps)
        verbose = _verbose(verbose)
        batch_size = _batch_size(batch_size)
        x = self._as_x(x)
        n = x.shape[0]
        out_shape = (n,) + tuple(self._layers[-1].output_shape)
        nbytes = math.prod(out_shape) * np.dtype(self.dtype).itemsize
        if nbytes > MAX_BYTES:
            raise ValueError(f"x: expected inputs whose predictions fit in memory (at most "
                             f"{MAX_BYTES} bytes here), got {n} samples: predictions of "
                             f"shape {out_shape} need {nbytes} bytes")
        steps = -(-n // batch_size)
        cbs = (([callbacks_module.ProgbarLogger(verbose)] if verbose else [])
               + _callback_list(callbacks))
        cb = callbacks_module.CallbackList(cbs, self, {"steps": steps, "verbose": verbose})
        out = np.empty(out_shape, dtype=self.dtype)
        ops = self.backend.ops
        xd, _ = self._place(x)
        cb.on_predict_begin({})
        for step in range(steps):
            lo, hi = step * batch_size, min(n, (step + 1) * batch_size)
            cb.on_predict_batch_begin(step, {})
            out[lo:hi] = ops.to_host(self._forward(self._batch(xd[lo:hi])))
            cb.on_predict_batch_end(step, {})
        cb.on_predict_end({})
        return out

    def predict_on_batch(self, x):
        """The model's outputs for one batch (a NumPy array)."""
        xd, _ = self._place(self._as_x(x))
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

    # ------------------------------------------------------------------- saving
    def get_config(self):
        layers = [layers_module.serialize(layer) for layer in self._layers]
        if self._input is not None:
            layers.insert(0, layers_module.serialize(self._input))
        return {"name": self.name, "layers": layers, "trainable": self.trainable}

    @classmethod
    def from_config(cls, cfg, backend=None):
        layers = [layers_module.deserialize(c) for c in cfg.get("layers", [])]
        return cls(layers, name=cfg.get("name"), backend=backend,
                   trainable=cfg.get("trainable", True))

    def _file_config(self):
        return {"class_name": "Sequential", "config": self.get_config(),
                "compile_config": self.get_compile_config(),
                "build": {"input_shape": list(self.input_shape),
                          "dtype": str(np.dtype(self.dtype))} if self.built else None,
                "seed": self.seed, "stop_training": False}

    def save(self, filepath, overwrite=True):
        """Save architecture, compile settings, weights and optimizer state to one file,
        atomically (see ``dl.saving``).  Reload with ``dl.models.load_model``."""
        if not overwrite and os.path.exists(filepath):
            raise FileExistsError(f"filepath: {filepath!r} exists and overwrite=False")
        opt = self.optimizer.get_state() if (self.compiled and self.optimizer.built) else []
        saving.atomic_write(filepath, saving.pack(self._file_config(),
                                                  self.get_weights() if self.built else [],
                                                  opt))

    def save_weights(self, filepath, overwrite=True):
        """Save only the weights (atomically); reload with :meth:`load_weights`."""
        if not overwrite and os.path.exists(filepath):
            raise FileExistsError(f"filepath: {filepath!r} exists and overwrite=False")
        saving.atomic_write(filepath, saving.pack(self._file_config(), self.get_weights(), [],
                                                  kind="weights"))

    def load_weights(self, filepath):
        """Load weights saved by :meth:`save_weights` or :meth:`save` (shapes checked)."""
        _, weights, _, _ = saving.unpack(filepath)
        try:
            self.set_weights(weights)
        except ValueError as exc:
            raise ValueError(f"filepath: {filepath!r} does not fit this model: {exc}") from None


def _human_bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024


def load_model(filepath, compile=True, backend=None):
    """A model saved with ``model.save``: architecture, weights and (when ``compile``)
    the compile settings and optimizer state, so training continues exactly where it
    stopped.  Never unpickles; a damaged or foreign file raises ValueError."""
    cfg, weights, opt_state, kind = saving.unpack(filepath)
    if not isinstance(cfg, dict) or cfg.get("class_name") != "Sequential":
        got = cfg.get("class_name") if isinstance(cfg, dict) else type(cfg).__name__
        raise ValueError(f"filepath: {filepath!r}: expected a saved Sequential model, got "
                         f"{got!r}")
    try:
        seed = cfg.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)
                                 or seed < 0):
            raise ValueError(f"seed: expected a non-negative int or null, got {seed!r}")
        build = cfg.get("build")
        if build is not None:
            # Before anything is allocated: the file's arrays must be what its config
            # declares, so a config claiming a gigantic layer cannot make us allocate it.
            _check_stored_weights(cfg["config"]["layers"], build["input_shape"], weights)
        model = Sequential.from_config(cfg["config"], backend=backend)
        model.seed = seed
        if build is not None:
            for layer in model._layers:
                if layer.dtype is None:
                    layer.dtype = config.resolve_dtype(build["dtype"])
            model.build((None,) + tuple(build["input_shape"]))
            model.set_weights(weights)
        if compile and cfg.get("compile_config"):
            cc = cfg["compile_config"]
            model.compile(optimizer=cc["optimizer"], loss=cc["loss"], metrics=cc["metrics"])
            if opt_state and build is not None:
                model.optimizer.set_state(opt_state, [w for layer in model._layers
                                                      if layer.trainable for w in layer.weights],
                                          model.backend.ops)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise ValueError(f"filepath: {filepath!r} holds an invalid model "
                         f"({type(exc).__name__}: {exc})") from None
    return model


def _check_stored_weights(layer_configs, input_shape, weights):
    """Check, without building anything, that the stored arrays are exactly the Dense
    kernels and biases the layer configs declare (in order, chained shapes)."""
    features = math.prod(int(d) for d in input_shape)
    i = 0
    for lc in layer_configs:
        if lc.get("class_name") != "Dense":
            continue
        c = lc["config"]
        units, use_bias = c["units"], c.get("use_bias", True)
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            raise ValueError(f"layer config: expected a positive int for units, got {units!r}")
        need = 2 if use_bias else 1
        if i + need > len(weights):
            raise ValueError(f"the config declares more weight arrays than the "
                             f"{len(weights)} stored")
        kernel = weights[i]
        if kernel.shape != (features, units):
            raise ValueError(f"weights[{i}]: the config declares a kernel of shape "
                             f"{(features, units)}, the file stores {kernel.shape}")
        if use_bias and weights[i + 1].shape != (units,):
            raise ValueError(f"weights[{i + 1}]: the config declares a bias of shape "
                             f"{(units,)}, the file stores {weights[i + 1].shape}")
        i += need
        features = units
    if i != len(weights):
        raise ValueError(f"the file stores {len(weights)} weight arrays, the config "
                         f"declares {i}")

