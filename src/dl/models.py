"""The Sequential model: its structure, compile, configuration and saving.

``dl`` is thin: the model holds the layers, the loss, the optimizer and the metrics;
training, evaluation and prediction are :class:`dl.trainer.Trainer`'s, a base class of
the model (as Keras keeps ``Trainer`` apart from its models); every computation is a
call on one kernels backend object (``model.backend``).
"""
import math
import os
import textwrap

import numpy as np
from kernels.checks import flag, short_repr

from . import config, layers as layers_module, losses as losses_module
from . import metrics as metrics_module, optimizers as optimizers_module, saving, utils
from .trainer import Trainer


def finite_number(value):
    """True for a finite real number (not a bool); a Python int too large for a float
    is not finite (np.isfinite would raise on it)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


class Model(Trainer):
    """A model: layers wired into a graph, trained by :class:`dl.trainer.Trainer`.

    ``dl.Model(inputs, outputs)`` builds a functional model from symbolic tensors
    (``dl.Input`` and the layer calls on it: see :mod:`dl.functional`);
    :class:`Sequential` is a Model whose graph is a chain.  What they share lives here:
    weights, compile, summary, saving.
    """

    def __new__(cls, *args, **kwargs):
        if cls is Model:
            if args or "inputs" in kwargs or "outputs" in kwargs:
                from .functional import Functional
                return super().__new__(Functional)
            raise TypeError("Model: expected dl.Model(inputs=..., outputs=...) (tensors "
                            "from dl.Input and layer calls), or a subclass of dl.Model")
        return super().__new__(cls)

    def __init__(self, *args, name=None, backend=None, trainable=True, dtype=None,
                 **kwargs):
        """A subclassed model (``class M(dl.Model)`` calling ``super().__init__()``):
        its ``call(inputs, training=...)`` is traced once on symbolic inputs of the
        first data's shape (or ``build(input_shape)``'s) into a graph, which then
        trains as a functional model.  See :mod:`dl.functional`."""
        if args or kwargs:
            got = [short_repr(a) for a in args] + [f"{k}=..." for k in kwargs]
            raise TypeError(f"{type(self).__name__}: Model.__init__ takes the keywords "
                            f"name, backend, trainable and dtype, got {', '.join(got)}")
        self._init_state(name, layers_module._snake(type(self).__name__), backend,
                         trainable)
        self._subclassed = True
        self._input_dtype = None if dtype is None else config.resolve_dtype(dtype)

    def call(self, inputs, training=False):
        raise NotImplementedError(f"{type(self).__name__}: a subclassed model defines "
                                  f"call(self, inputs, training=False)")

    # ------------------------------------------------------------- tracing
    def _trace(self, x):
        """Trace ``call`` on symbolic inputs shaped like ``x``'s samples (an array, or
        a list or dict of them; or shapes for build) and become the functional model
        of the recorded graph."""
        from . import functional, _symbolic

        dtype = self._input_dtype or self._layer_dtype()

        def symbolic(value, name):
            shape = tuple(value) if isinstance(value, tuple) else tuple(
                np.shape(value)[1:])
            if not shape:
                shape = (1,)
            return layers_module.Input(shape=shape, name=name, dtype=dtype)
        if isinstance(x, dict):
            inputs = {k: symbolic(v, k) for k, v in x.items()}
        elif isinstance(x, list):
            inputs = [symbolic(v, None) for v in x]
        else:
            inputs = symbolic(x, None)
        outputs = _symbolic.trace_call(self, inputs)
        cls = type(self)
        traced = _TRACED.get(cls)
        if traced is None:
            traced = _TRACED[cls] = type(cls.__name__, (cls, functional.Functional),
                                         {"__module__": cls.__module__,
                                          "__qualname__": cls.__qualname__})
        self.__class__ = traced
        compiled, self.compiled = self.compiled, False
        self._init_graph(inputs, outputs)
        if compiled:               # compiled before the graph existed: again, on it
            self.compile(**self._compile_args)

    def _layer_dtype(self):
        """The traced inputs' dtype: the model's ``dtype=``, else the first float dtype
        a layer of the model was given (its attributes, lists and dicts of them), else
        floatx."""
        def layers_in(value):
            if isinstance(value, layers_module.Layer):
                yield value
            elif isinstance(value, (list, tuple)):
                for v in value:
                    yield from layers_in(v)
            elif isinstance(value, dict):
                for v in value.values():
                    yield from layers_in(v)
        for value in vars(self).values():
            for layer in layers_in(value):
                if layer.dtype is not None and layer.dtype.kind == "f":
                    return layer.dtype
        return config.resolve_dtype(None)

    def _ensure_built(self, x):
        if getattr(self, "_subclassed", False) and not self.built:
            self._trace(x)

    def _as_x(self, x, name="x"):
        if getattr(self, "_subclassed", False) and not self.built and isinstance(
                x, (list, dict)):
            self._trace(x)              # several inputs: traced from their structure
            return self._as_x(x, name)
        return super()._as_x(x, name)

    def build(self, input_shape=None):
        """A subclassed model: trace ``call`` for inputs of ``input_shape`` (with the
        batch dimension, e.g. ``(None, 4)``; a list or dict of them for several)."""
        if not getattr(self, "_subclassed", False):
            raise NotImplementedError
        if self.built:
            return
        if input_shape is None:
            raise ValueError("input_shape: a subclassed model is built from its first "
                             "data, or from build((None, n))")

        def sample(shape):
            shape = layers_module._shape(tuple(shape), "input_shape")
            return tuple(shape[1:])
        if isinstance(input_shape, dict):
            self._trace({k: sample(v) for k, v in input_shape.items()})
        elif isinstance(input_shape, list):
            self._trace([sample(v) for v in input_shape])
        else:
            self._trace(sample(input_shape))

    def _init_state(self, name, default_name, backend, trainable):
        """The state every model starts with."""
        self.name = layers_module._name(name) or layers_module._unique_name(default_name)
        self._backend_name = backend
        if backend is not None:
            config.get_backend(backend)     # fail now if it cannot load
        self._trainable = flag("trainable", trainable)   # (the layers' flags untouched)
        self._layers = []
        self._sample_shape = None       # one sample's shape (input_shape without batch)
        self.built = False
        self.compiled = False
        self.optimizer = self.loss = None
        self.metrics = []
        self._metric_plan = ()            # (metric, weighted) pairs, set by compile
        self._weighted_metric_count = 0
        self._steps_per_execution = 1
        self._loss_weight = 1.0
        self.stop_training = False
        self.history = None
        self.seed = None
        # Set by TerminateOnNaN during fit: a step whose loss or gradients are not
        # finite then updates nothing, so the weights stay the last finite ones.
        self._keep_finite_weights = False
        self._resume = None          # a BackupAndRestore backup fit resumes from
        self._nonfinite_step = False

    # ---------------------------------------------------------------- execution
    _is_chain = True        # the layers run one after the other (see below)

    # A chain of layers (a Sequential, or a functional model whose graph is one):
    # Trainer's steps call these; dl.functional.Functional overrides them for graphs.
    def _output_layer(self):
        """The layer whose output is the model's prediction."""
        return self._layers[-1]

    def _output_sample_shape(self):
        return tuple(self._layers[-1].output_shape)

    def _run_forward(self, x, step):
        """The training forward pass of a batch: the prediction (a layer's buffer)."""
        h = x
        for layer in self._layers:
            h = layer.forward(h, training=True, step=step)
        return h

    def _run_backward(self, grad, trainable):
        """The backward pass from ``grad = dL/dy_pred``, down to the first trainable
        layer (``trainable``: the indices of the trainable layers, in order), which is
        asked for no dx."""
        first = trainable[0]
        dy = grad
        for i in range(len(self._layers) - 1, first - 1, -1):
            dy = self._layers[i].backward(dy, need_dx=i > first)

    def _forward(self, x):
        """The inference forward pass of a batch."""
        h = x
        for layer in self._layers:
            h = layer.forward(h, training=False)
        return h

    # ---------------------------------------------------------------- structure
    @property
    def trainable(self):
        """Whether fit updates the model's weights.  Setting it sets every layer's
        ``trainable`` too, as Keras's setter does (so a BatchNormalization of a model
        frozen this way normalises with its moving statistics); ``trainable=False``
        at construction freezes the model and leaves its layers' flags alone."""
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = flag("trainable", value)
        for layer in getattr(self, "_layers", ()):
            layer.trainable = self._trainable

    @property
    def backend(self):
        """The kernels backend object this model computes with."""
        return config.get_backend(self._backend_name)

    @property
    def weights(self):
        return [w for layer in self._layers for w in layer.weights]

    @property
    def trainable_weights(self):
        """The weights the optimizer updates, layer by layer (none while the model is
        frozen)."""
        if not self.trainable:
            return []
        return [w for layer in self._layers for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self):
        """The other weights: frozen layers' and the moving statistics of
        BatchNormalization layers (every weight while the model is frozen)."""
        if not self.trainable:
            return self.weights
        return [w for layer in self._layers for w in layer.non_trainable_weights]

    def count_params(self):
        return int(sum(w.size for w in self.weights))

    def get_layer(self, name=None, index=None):
        """The layer named ``name`` (or at ``index`` of :attr:`layers`)."""
        if (name is None) == (index is None):
            raise ValueError("get_layer: expected exactly one of name and index")
        layers = self.layers
        if index is not None:
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or \
                    not -len(layers) <= index < len(layers):
                raise ValueError(f"index: expected an int in [0, {len(layers)}), got "
                                 f"{short_repr(index)}")
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(f"name: no layer named {name!r} in the model; its layers: "
                         f"{', '.join(layer.name for layer in layers)}")

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

    def summary(self, print_fn=None, line_length=None):
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
        self._print_table(print_fn, ("Layer (type)", "Output Shape", "Param #"), rows,
                          (33, 24, 15))

    def _print_table(self, print_fn, header, rows, w):
        """Keras's summary table (columns of widths ``w``, the parameter count right-
        aligned) and the parameter totals."""
        def line(*cells):
            return "│" + "│".join(f" {c:>{n - 2}} " if k == 2 else f" {c:<{n - 2}} "
                                  for k, (c, n) in enumerate(zip(cells, w))) + "│"
        print_fn(f'Model: "{self.name}"')
        print_fn("┏" + "┳".join("━" * n for n in w) + "┓")
        print_fn(line(*header).replace("│", "┃"))
        print_fn("┡" + "╇".join("━" * n for n in w) + "┩")
        for row in rows:
            # a cell longer than its column wraps onto more lines (at spaces, else
            # anywhere), as Keras's
            cells = [textwrap.wrap(text, n - 2, break_on_hyphens=False) or [""]
                     for text, n in zip(row, w)]
            for k in range(max(len(c) for c in cells)):
                print_fn(line(*(c[k] if k < len(c) else "" for c in cells)))
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
        if getattr(self, "_subclassed", False) and not self.built:
            # the outputs are unknown until call is traced: kept, applied (and checked)
            # when the first data traces it
            self._compile_args = dict(
                optimizer=optimizer, loss=loss, metrics=metrics, loss_weights=loss_weights,
                weighted_metrics=weighted_metrics, steps_per_execution=steps_per_execution)
            if loss is None:
                raise ValueError("loss: expected a loss name or object, got None")
            self.compiled = True
            return
        if isinstance(steps_per_execution, bool) or not isinstance(
                steps_per_execution, (int, np.integer)) or steps_per_execution < 1:
            raise ValueError(f"steps_per_execution: expected an int >= 1, got "
                             f"{short_repr(steps_per_execution)}")
        loss_weight = self._loss_weight_arg(loss_weights)
        if loss is None:
            raise ValueError("loss: expected a loss name or object, got None")
        if optimizer is None:
            raise ValueError("optimizer: expected an optimizer name, config or object, got "
                             "None")
        self.optimizer = optimizers_module.get(optimizer)
        loss = losses_module.get(loss)
        if not loss.trains:
            raise ValueError(f"loss: a loss with reduction={loss.reduction!r} gives one "
                             f"value per sample and cannot be trained on; use "
                             f"'sum_over_batch_size' (the default), 'sum' or 'mean'")
        self.loss = loss
        plain = [metrics_module.get(m) for m in _metric_list(metrics, "metrics")]
        weighted = [metrics_module.get(m)
                    for m in _metric_list(weighted_metrics, "weighted_metrics")]
        names = {m.name for m in plain}
        for m in weighted:     # both kinds in the logs: Keras 2's prefix on a clash
            if m.name in names:
                m.name = "weighted_" + m.name
        self.metrics = plain + weighted
        # (metric, weighted): what each step updates, and whether with the weights
        self._metric_plan = tuple((m, False) for m in plain) + tuple((m, True)
                                                                     for m in weighted)
        self._weighted_metric_count = len(weighted)
        # Keras's steps_per_execution: batch callbacks once every n steps (dl runs the
        # steps one by one; the numbers are those of n = 1)
        self._steps_per_execution = int(steps_per_execution)
        self._loss_weight = loss_weight
        self.compiled = True
        self.reset_metrics()
        self._configure_fusion()

    @classmethod
    def from_config(cls, cfg, backend=None):
        """A functional model from its config (``dl.Model.from_config``); a subclassed
        model's class makes itself from its ``get_config()`` (``cls(**config)``)."""
        if cls is Model:
            from .functional import Functional
            return Functional.from_config(cfg, backend=backend)
        return cls(**cfg)

    def _compile_from(self, cc, opt_state):
        """compile from a saved compile config, then restore the optimizer's state."""
        self.compile(optimizer=cc["optimizer"], loss=cc["loss"], metrics=cc["metrics"],
                     weighted_metrics=cc.get("weighted_metrics"),
                     loss_weights=cc.get("loss_weights"),
                     steps_per_execution=cc.get("steps_per_execution", 1))
        if opt_state:
            self.optimizer.set_state(opt_state, [w for layer in self._layers
                                                 for w in layer.trainable_weights],
                                     self.backend.ops)

    def _loss_weight_arg(self, loss_weights):
        """compile's ``loss_weights`` for the model's one output: None (1), a number, a
        list of one, or a dict {output layer name: number}."""
        if loss_weights is None:
            return 1.0
        value = loss_weights
        if isinstance(loss_weights, (list, tuple)):
            if len(loss_weights) != 1:
                raise ValueError(f"loss_weights: expected one weight (the model has one "
                                 f"output), got {len(loss_weights)}")
            value = loss_weights[0]
        elif isinstance(loss_weights, dict):
            names = [self._output_layer().name] if self._layers else []
            if len(loss_weights) != 1 or (names and list(loss_weights) != names):
                raise ValueError(f"loss_weights: expected {{{names[0] if names else 'output'}"
                                 f"!r: weight}} (the model's one output), got "
                                 f"{short_repr(loss_weights)}")
            value = next(iter(loss_weights.values()))
        if not finite_number(value):
            raise ValueError(f"loss_weights: expected a finite number, got "
                             f"{short_repr(value)}")
        return float(value)

    def _configure_fusion(self):
        """Fuse a final softmax Dense into a categorical cross-entropy loss: training then
        uses the stable softmax + cross-entropy kernel, whose gradient is (p - y) / n."""
        for layer in self._layers:
            if isinstance(layer, layers_module.Dense):
                layer.fuse_softmax_loss = False
        if not (self.compiled and self._layers):
            return
        last = self._output_layer()
        fusable = (isinstance(last, layers_module.Dense) and last.activation.name == "softmax"
                   and id(last) not in getattr(self, "_shared", ())  # one call of it
                   and (last.output_shape is None or len(last.output_shape) == 1)
                   and isinstance(self.loss, (losses_module.CategoricalCrossentropy,
                                              losses_module.SparseCategoricalCrossentropy))
                   and not self.loss.from_logits)
        last.fuse_softmax_loss = fusable

    def _require_compiled(self, what):
        if not self.compiled:
            raise ValueError(f"{what}: you must compile the model before training or "
                               f"evaluating it (model.compile(optimizer, loss))")

    def get_compile_config(self):
        if not self.compiled:
            return None
        split = len(self.metrics) - self._weighted_metric_count
        return {"optimizer": optimizers_module.serialize(self.optimizer),
                "loss": losses_module.serialize(self.loss),
                "loss_weights": self._loss_weight,
                "steps_per_execution": self._steps_per_execution,
                "metrics": [metrics_module.serialize(m) for m in self.metrics[:split]],
                "weighted_metrics": [metrics_module.serialize(m)
                                     for m in self.metrics[split:]]}

    # ------------------------------------------------------------------- saving
    def save(self, filepath, overwrite=True):
        """Save architecture, compile settings, weights and optimizer state to one file,
        atomically (see ``dl.saving``).  Reload with ``dl.models.load_model``."""
        if not overwrite and os.path.exists(filepath):
            raise FileExistsError(f"filepath: {filepath!r} exists and overwrite=False")
        self._save(filepath)

    def _save(self, filepath, **extra):
        """:meth:`save`, with ``extra`` entries added to the file's config (what
        ``BackupAndRestore`` keeps of a fit in progress, in the same atomic write)."""
        opt = self.optimizer.get_state() if (self.compiled and self.optimizer.built) else []
        saving.atomic_write(filepath, saving.pack({**self._file_config(), **extra},
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



class Sequential(Model):
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
        self._init_state(name, "sequential", backend, trainable)
        self._input = None
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
        from ._symbolic import KerasTensor
        if isinstance(layer, KerasTensor):
            if not isinstance(layer.node.layer, layers_module.InputLayer):
                raise TypeError(f"layer: a Sequential takes layers (and dl.Input first), "
                                f"got the symbolic output of {layer.node.layer.name!r}; "
                                f"use dl.Model(inputs, outputs) for a graph")
            layer = layer.node.layer
        if isinstance(layer, layers_module.Layer) and layer._multi_input:
            raise TypeError(f"layer: {layer.name} ({type(layer).__name__}) combines a list "
                            f"of tensors; a Sequential passes one from layer to layer: use "
                            f"dl.Model(inputs, outputs)")
        if isinstance(layer, layers_module.InputLayer):
            if self._input is not None or self._layers:
                raise ValueError("layer: an Input can only be the first entry of a Sequential")
            self._input = layer
            return
        if not isinstance(layer, layers_module.Layer) or type(layer) is layers_module.Layer:
            raise TypeError(f"layer: expected a dl.layers layer (Dense, Dropout...), got "
                            f"{type(layer).__name__}")
        # input_shape/input_dim on a later layer: ignored, as Keras's Sequential does
        # (only the first layer's declares the model's input)
        if any(other.name == layer.name for other in self._layers):
            raise ValueError(f"layer: All layers added to a Sequential model should have "
                             f"unique names. Name {layer.name!r} is already the name of a "
                             f"layer in this model. Update the `name` argument to pass a "
                             f"unique name.")
        self._layers.append(layer)
        try:
            if self.built:            # extend a built model: build the new layer in place
                prev = (self._layers[-2].output_shape if len(self._layers) > 1
                        else self._sample_shape)
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
        if self._input is not None and self._input.dtype is not None and \
                self._input.dtype.kind == "f":      # (integer ids: the model's floatx)
            dtype = self._input.dtype
        self.dtype = config.resolve_dtype(dtype or self._layers[0].dtype)
        self._sample_shape = tuple(shape)
        current = self._sample_shape
        for i, layer in enumerate(self._layers):
            current = self._build_layer(layer, i, current)
        self.built = True
        self._configure_fusion()

    def _build_layer(self, layer, index, input_shape):
        layer.index_in_model = index
        if hasattr(layer, "model_seed"):
            layer.model_seed = self.seed
        if not layer.built or not layer.weights:     # (weightless layers: cheap, shapes)
            layer._build(input_shape, self.backend, self.dtype)
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
    def input_shape(self):
        """The model's input shape with Keras's batch dimension, e.g. ``(None, 2)``."""
        if not self.built:
            raise AttributeError("input_shape: the model is not built yet (build it, or "
                                 "give its first layer input_shape)")
        return (None,) + self._sample_shape

    @property
    def output_shape(self):
        """The model's output shape with Keras's batch dimension, e.g. ``(None, 1)``."""
        if not self._layers or self._layers[-1].output_shape is None:
            raise AttributeError("output_shape: the model has no built layers yet")
        return (None,) + tuple(self._layers[-1].output_shape)

    def compute_output_shape(self, input_shape):
        """The output shape for inputs of ``input_shape`` (with the batch dimension),
        layer after layer, without building anything."""
        shape = layers_module._shape(tuple(input_shape)[1:], "input_shape")
        if not self._layers:
            raise ValueError("compute_output_shape: the model has no layers")
        for layer in self._layers:
            shape = layer.compute_output_shape(shape)
        return (tuple(input_shape)[0],) + tuple(shape)

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
                "build": {"input_shape": list(self._sample_shape),
                          "dtype": str(np.dtype(self.dtype))} if self.built else None,
                "seed": self.seed, "stop_training": False}


# subclassed model classes -> their traced twin (the class and Functional)
_TRACED = {}


def _metric_list(metrics, name):
    """compile's ``metrics`` / ``weighted_metrics`` as a list (None: none)."""
    if metrics is None:
        return []
    if isinstance(metrics, (str, dict, metrics_module.Metric)):
        return [metrics]
    if not isinstance(metrics, (list, tuple)):
        raise TypeError(f"{name}: expected a list of metric names or objects, got "
                        f"{type(metrics).__name__}")
    return list(metrics)


def _human_bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024


def load_model(filepath, compile=True, backend=None, custom_objects=None):
    """A model saved with ``model.save``: architecture, weights and (when ``compile``)
    the compile settings and optimizer state, so training continues exactly where it
    stopped.  Never unpickles; a damaged or foreign file raises ValueError.

    A subclassed model loads as the functional model of its traced graph, or, when
    ``custom_objects`` maps its class name to its class and it saved a
    ``get_config()``, as that class (``cls.from_config(config)``), traced again."""
    cfg, weights, opt_state, kind = saving.unpack(filepath)
    if not isinstance(cfg, dict) or cfg.get("class_name") not in ("Sequential",
                                                                   "Functional"):
        got = cfg.get("class_name") if isinstance(cfg, dict) else type(cfg).__name__
        raise ValueError(f"filepath: {filepath!r}: expected a saved Sequential or "
                         f"functional model, got {got!r}")
    if cfg["class_name"] == "Functional":
        sub = cfg.get("subclass")
        cls = (custom_objects or {}).get(sub["class_name"]) if isinstance(sub, dict) \
            else None
        if cls is not None and sub.get("config") is not None:
            return _load_subclassed(filepath, cls, cfg, weights, opt_state, compile,
                                    backend)
        return _load_functional(filepath, cfg, weights, opt_state, compile, backend)
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
            model._compile_from(cfg["compile_config"], opt_state if build is not None
                                else None)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise ValueError(f"filepath: {filepath!r} holds an invalid model "
                         f"({type(exc).__name__}: {exc})") from None
    return model


def _load_functional(filepath, cfg, weights, opt_state, compile, backend):
    """load_model's functional part: the graph from its config (each layer checks its
    own sizes before allocating), then the stored arrays, shape by shape."""
    from .functional import Functional
    try:
        seed = cfg.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)
                                 or seed < 0):
            raise ValueError(f"seed: expected a non-negative int or null, got {seed!r}")
        model = Functional.from_config(cfg["config"], backend=backend)
        model.seed = seed
        model.set_weights(weights)
        if compile and cfg.get("compile_config"):
            model._compile_from(cfg["compile_config"], opt_state)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise ValueError(f"filepath: {filepath!r} holds an invalid model "
                         f"({type(exc).__name__}: {exc})") from None
    return model


def _load_subclassed(filepath, cls, cfg, weights, opt_state, compile, backend):
    """load_model of a subclassed model whose class the caller gave."""
    sub = cfg["subclass"]
    try:
        model = cls.from_config(dict(sub["config"]))
        if backend is not None:
            model._backend_name = backend
        shapes = [(None,) + tuple(s) for s in sub["input_shapes"]]
        keys = sub.get("input_keys")
        model.build(shapes[0] if keys is None else (
            shapes if keys == "list" else dict(zip(keys, shapes))))
        model.seed = cfg.get("seed")
        model.set_weights(weights)
        if compile and cfg.get("compile_config"):
            model._compile_from(cfg["compile_config"], opt_state)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise ValueError(f"filepath: {filepath!r} does not rebuild as {cls.__name__} "
                         f"({type(exc).__name__}: {exc})") from None
    return model


def _check_stored_weights(layer_configs, input_shape, weights):
    """Check, without building anything, that the stored arrays are exactly the
    weights the layer configs declare for inputs of ``input_shape`` (in order, shapes
    chained through the layers; each layer's constructor refuses sizes that cannot
    fit in memory)."""
    shape = tuple(int(d) for d in input_shape)
    i = 0
    for lc in layer_configs:
        layer = layers_module.deserialize(lc)
        if isinstance(layer, layers_module.InputLayer):
            continue
        for expected in layer._weight_shapes(shape):
            if i >= len(weights):
                raise ValueError(f"the config declares more weight arrays than the "
                                 f"{len(weights)} stored")
            if weights[i].shape != tuple(expected):
                raise ValueError(f"weights[{i}]: the config declares an array of shape "
                                 f"{tuple(expected)} for {layer.name!r}, the file stores "
                                 f"{weights[i].shape}")
            i += 1
        shape = tuple(layer.compute_output_shape(shape))
    if i != len(weights):
        raise ValueError(f"the file stores {len(weights)} weight arrays, the config "
                         f"declares {i}")
