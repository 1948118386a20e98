"""Layers: Dense, Activation, Dropout, Flatten, LayerNormalization and the Input
placeholder; the other modules' layers are exported here too (merging, reshaping,
embedding, convolutional, pooling, batch_normalization).

A layer holds its weights (Keras's shapes and order: a Dense kernel is (n_in, units),
then the bias) and runs its forward and backward passes through the model's kernels
backend.  In training, a layer keeps what its backward pass needs and reuses its
output and gradient buffers from one batch to the next (one set per batch shape), so
a training step allocates no new arrays; in inference it allocates fresh outputs, so
concurrent ``predict`` calls share nothing mutable.

Arrays are allocated and moved through ``backend.ops`` (NumPy on the CPU backends,
device kernels on the cuda backend): on the cuda backend weights,
gradients and buffers are device arrays, and a layer's passes read and write device
arrays only.
"""
import math

import numpy as np

from . import activations as activations_module
from . import config, constraints, initializers, regularizers
from kernels.checks import MAX_BYTES, describe, fits_in_memory, flag, real, short_repr
from ._args import optional_str

_name_counters = {}


def _unique_name(base):
    n = _name_counters.get(base, 0)
    _name_counters[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


def _snake(name):
    out = []
    for i, ch in enumerate(name):
        # (no underscore after a digit: Conv2D -> conv2d, MaxPooling2D ->
        # max_pooling2d, as Keras names them)
        if ch.isupper() and i and not (name[i - 1].isupper() or name[i - 1].isdigit()):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


class Layer:
    """Base class of every layer.

    Args:
        name: a unique name (default: the snake_case class name, numbered).
        dtype: "float32" or "float64" (default: ``dl.config.floatx()``).
        input_shape: on a first layer, the shape of one sample, e.g. ``(2,)``.
        input_dim: on a first layer, the same as ``input_shape=(input_dim,)``.
    """

    def __init__(self, name=None, dtype=None, input_shape=None, input_dim=None,
                 trainable=True, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) "
                            f"{', '.join(sorted(kwargs))}")
        self.name = _name(name) or _unique_name(getattr(self, "_base_name", None)
                                                or _snake(type(self).__name__))
        self.dtype = config.resolve_dtype(dtype) if dtype is not None else None
        what = "input_shape"
        if input_dim is not None:
            if input_shape is not None:
                raise ValueError("input_dim, input_shape: expected only one of them (the "
                                 "shape of one sample), got both")
            input_shape, what = _input_dim(input_dim), "input_dim"
        self.input_spec_shape = None if input_shape is None else _shape(input_shape, what)
        self.trainable = flag("trainable", trainable)
        self.built = False
        self.input_shape = None     # one sample's shape, without the batch dimension
        self.output_shape = None
        self.backend = None
        self._buffers = {}

    # structure ---------------------------------------------------------------------
    def build(self, input_shape, backend=None, dtype=None):
        """Keras's ``layer.build(input_shape)``: create the weights for inputs of
        ``input_shape``, batch dimension first (``(None, 2)``), on the current backend.
        (A model builds its layers itself, with its backend and dtype.)"""
        if backend is not None:          # the form models use: one sample's shape
            self._build(tuple(input_shape), backend, dtype)
            return
        shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
        if shape is None or len(shape) < 2:
            raise ValueError(f"input_shape: expected the inputs' shape with the batch "
                             f"dimension first, e.g. (None, 2), got {short_repr(input_shape)}")
        self._build(_shape(shape[1:], "input_shape"), config.get_backend(),
                    self.dtype or config.resolve_dtype(None))

    def _build(self, input_shape, backend, dtype):
        """Create the weights for samples of ``input_shape`` (no batch dimension)."""
        self.backend = backend
        if self.dtype is None:
            self.dtype = dtype
        self.input_shape = tuple(input_shape)
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    @property
    def weights(self):
        """Every weight array, in Keras's order: the trainable variables, then the
        non-trainable ones (a BatchNormalization's moving statistics).  What
        get_weights / set_weights, saving and loading see."""
        return []

    @property
    def _trainable_variables(self):
        """The weights the optimizer updates while the layer is trainable, in order:
        one for each array of :attr:`gradients` (by default every weight)."""
        return self.weights

    @property
    def _non_trainable_variables(self):
        """The weights no gradient reaches (state the layer updates itself, such as
        moving statistics): :attr:`weights` without :attr:`_trainable_variables`."""
        return []

    @property
    def gradients(self):
        """Gradient arrays matching :attr:`_trainable_variables` one to one, written by
        :meth:`backward`."""
        return []

    def _training_state(self):
        """The weights a training forward updates itself (BatchNormalization's moving
        statistics): data parallelism averages them over the ranks after each step."""
        return []

    @property
    def trainable_weights(self):
        """Keras's: the weights the optimizer updates; none while ``trainable`` is
        False."""
        return self._trainable_variables if self.trainable else []

    @property
    def non_trainable_weights(self):
        """Keras's: the weights the optimizer leaves alone (every weight while
        ``trainable`` is False)."""
        return self._non_trainable_variables if self.trainable else self.weights

    @property
    def weight_names(self):
        """The names of :attr:`weights` (Keras's variable names: "kernel", "gamma"...)."""
        return ()

    def count_params(self):
        return int(sum(w.size for w in self.weights))

    def _weight_shapes(self, input_shape):
        """The shapes of the weights this layer creates for samples of
        ``input_shape``, in order (without creating them: what a loader checks a
        file's arrays against)."""
        return []

    def _regularized(self):
        """(regularizer, weight, its gradient) triples: what is penalised."""
        return []

    def has_penalty(self):
        return bool(self._regularized())

    def add_penalty(self, acc, weight=1.0):
        """``acc[0] += weight * penalty`` (an accumulator of ``backend.ops``)."""
        for reg, w, _ in self._regularized():
            reg.add_penalty(self.backend.ops, acc, w, weight)

    def regularization_penalty(self):
        """The penalty as a float (reads it back from the device on the cuda backend)."""
        if not self._regularized():
            return 0.0
        ops = self.backend.ops
        acc = ops.acc_new()
        self.add_penalty(acc)
        return ops.acc_read(acc)[0]

    def add_regularization_gradients(self):
        for reg, w, g in self._regularized():
            reg.add_gradient_on(self.backend.ops, w, g)

    def _constant(self, value, shape):
        """A cached array of ``shape`` filled with ``value`` (ones for a row sum by
        GEMM, zeros for a gradient that is none), made once per shape."""
        key = ("constant", float(value), tuple(shape))
        buf = self._buffers.get(key)
        if buf is None:
            buf = self._buffers[key] = self.backend.ops.full(tuple(shape), value,
                                                             self.dtype)
        return buf

    def constrained(self):
        """(weight array, constraint) pairs: what is projected after every step."""
        return []

    def apply_constraints(self):
        """Project the weights with their constraints (after an optimizer step)."""
        for w, c in self.constrained():
            ops = self.backend.ops
            ops.copy_from_host(w, np.ascontiguousarray(c(ops.to_host(w)), dtype=w.dtype))

    # passes ------------------------------------------------------------------------
    # What a training forward keeps for the backward (attribute names).  A layer called
    # more than once in a model (shared weights) runs its calls one after the other:
    # the model saves these after each call's forward and restores them before that
    # call's backward, and sets ``_call_index`` so each call has its own buffers.
    _SAVED = ()
    _call_index = 0

    def _buffer(self, key, shape):
        """A reusable array for ``key`` and ``shape`` (training only), one per call of
        the layer in its model."""
        full = (key, shape) if not self._call_index else (key, shape, self._call_index)
        buf = self._buffers.get(full)
        if buf is None:
            buf = self._buffers[full] = self.backend.ops.empty(shape, self.dtype)
        return buf

    def _save_call(self):
        """What this call's backward needs (see ``_SAVED``)."""
        return tuple(getattr(self, name, None) for name in self._SAVED)

    def _restore_call(self, saved):
        for name, value in zip(self._SAVED, saved):
            setattr(self, name, value)

    def forward(self, x, training=False, step=0):
        raise NotImplementedError

    def backward(self, dy, need_dx=True):
        raise NotImplementedError

    # merge layers take a list of inputs (forward(xs), backward -> one dx per input)
    _multi_input = False

    def __call__(self, x, training=False):
        """Apply the layer to an array, building it on first use; ``training=True``
        applies it as in training (Dropout drops, a new mask each call).  Returns a
        NumPy array whatever the backend.  On symbolic tensors (``dl.Input`` and what
        layers made of them) it adds the call to a graph instead and returns the
        symbolic output (see ``dl.Model``)."""
        from . import _symbolic
        if _symbolic.is_symbolic(x):
            return _symbolic.call_layer(self, x, training)
        if not isinstance(training, (bool, np.bool_)) and training is not None:
            raise TypeError(f"training: expected True, False or None, got "
                            f"{describe(training)}")
        if self._multi_input:
            return self._eager_multi(x, training)
        x = np.asarray(x)
        fits_in_memory("x", x.shape, max(x.itemsize, 4), "an array")
        if x.dtype not in (np.float32, np.float64):
            x = x.astype(self.dtype or config.floatx())
        if not self.built or self.backend is None or (
                not self.weights and self.input_shape != tuple(x.shape[1:])):
            self._build(x.shape[1:], config.get_backend(),
                        self.dtype or config.resolve_dtype(None))
        ops = self.backend.ops
        step = 0
        if training:
            step = self._eager_steps = getattr(self, "_eager_steps", -1) + 1
        y = self.forward(ops.to_device(x.astype(self.dtype, copy=False)),
                         training=bool(training), step=step)
        return np.array(ops.to_host(y), copy=True)

    def _eager_multi(self, xs, training):
        """``__call__`` of a layer taking a list of arrays (the merge layers)."""
        if not isinstance(xs, (list, tuple)):
            raise TypeError(f"inputs: {self.name} expected a list of arrays, got "
                            f"{describe(xs)}")
        arrays = []
        for i, a in enumerate(xs):
            a = np.asarray(a)
            fits_in_memory(f"inputs[{i}]", a.shape, max(a.itemsize, 4), "an array")
            if a.ndim < 1:
                raise ValueError(f"inputs[{i}]: expected a batch of samples, got a scalar")
            arrays.append(a.astype(a.dtype if a.dtype in (np.float32, np.float64)
                                   else self.dtype or config.floatx(), copy=False))
        dtype = self.dtype or arrays[0].dtype if arrays else self.dtype
        shapes = [tuple(a.shape[1:]) for a in arrays]
        if not self.built or self.backend is None or self.input_shape != shapes:
            self._build(shapes, config.get_backend(), config.resolve_dtype(dtype))
        ops = self.backend.ops
        y = self.forward([ops.to_device(a.astype(self.dtype, copy=False)) for a in arrays],
                         training=bool(training), step=0)
        return np.array(ops.to_host(y), copy=True)

    def get_weights(self):
        """Copies of the layer's weights as NumPy arrays (Keras's order)."""
        ops = self.backend.ops if self.backend is not None else None
        return [np.array(ops.to_host(w), copy=True) for w in self.weights]

    def set_weights(self, weights):
        """Set the layer's weights from arrays shaped like :meth:`get_weights`'s."""
        current = self.weights
        weights = list(weights)
        if len(weights) != len(current):
            raise ValueError(f"weights: expected a list of {len(current)} arrays for "
                             f"{self.name!r}, got {len(weights)}")
        arrays = [np.asarray(w) for w in weights]
        for i, (w, new) in enumerate(zip(current, arrays)):
            if new.shape != w.shape:
                raise ValueError(f"weights[{i}]: expected shape {w.shape}, got {new.shape}")
            if new.dtype.kind not in "biuf":
                raise TypeError(f"weights[{i}]: expected a numeric array, got dtype "
                                f"{new.dtype}")
        for w, new in zip(current, arrays):
            self.backend.ops.copy_from_host(w, new.astype(w.dtype, copy=False))

    # config ------------------------------------------------------------------------
    def get_config(self):
        cfg = {"name": self.name, "trainable": self.trainable,
               "dtype": None if self.dtype is None else str(np.dtype(self.dtype))}
        if self.input_spec_shape is not None:
            cfg["input_shape"] = list(self.input_spec_shape)
        return cfg

    @classmethod
    def from_config(cls, cfg):
        return cls(**cfg)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


def _name(name, what="name"):
    """A layer's or model's name: None (a default is made) or a str."""
    return optional_str(what, name)


def _input_dim(input_dim):
    """``input_dim=n`` as the sample shape ``(n,)`` (still to check with _shape)."""
    if isinstance(input_dim, (bool, np.bool_)) or not isinstance(input_dim, (int, np.integer)):
        raise TypeError(f"input_dim: expected a positive int, got {describe(input_dim)}")
    return (int(input_dim),)


def _shape(shape, what):
    """One sample's shape: an int or a tuple/list of positive ints (or None), whose
    samples would fit in memory."""
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, (bool, np.bool_)):
        shape = (shape,)
    if not (isinstance(shape, (tuple, list))
            or (isinstance(shape, np.ndarray) and shape.ndim == 1)):
        raise TypeError(f"{what}: expected a tuple of ints, got {describe(shape)}")
    dims = []
    for d in shape:
        if d is not None and (isinstance(d, (bool, np.bool_))
                              or not isinstance(d, (int, np.integer))):
            raise TypeError(f"{what}: expected a tuple of ints (or None), got "
                            f"{short_repr(tuple(shape))} holding {describe(d)}")
        dims.append(None if d is None else int(d))
    shape = tuple(dims)
    if any(d is not None and d < 1 for d in shape):
        raise ValueError(f"{what}: expected positive dimensions, got {short_repr(shape)}")
    # no sample larger than the memory: nothing of that shape could ever be fed, and
    # the weights built from it could not be allocated
    fits_in_memory(what, [1 if d is None else d for d in shape], 4, "a sample")
    return shape


class InputLayer(Layer):
    """A model's input: the placeholder a Sequential starts with, and the source of a
    functional model's symbolic input (``dl.Input`` returns its ``output``)."""

    def __init__(self, shape=None, batch_size=None, dtype=None, name=None, input_shape=None,
                 **kwargs):
        given = {k: v for k, v in (("shape", shape), ("input_shape", input_shape),
                                   ("input_dim", kwargs.pop("input_dim", None)))
                 if v is not None}
        if len(given) > 1:
            raise ValueError(f"{', '.join(given)}: expected only one of them (the shape of "
                             f"one sample), got {len(given)} of them")
        if not given:
            raise ValueError("shape: expected the shape of one sample, e.g. (784,), got None")
        (what, shape), = given.items()
        shape = _shape(_input_dim(shape) if what == "input_dim" else shape, what)
        # integer inputs carry ids for an Embedding; everything else computes in floats
        int_dtype = None
        if isinstance(dtype, (str, type, np.dtype)):
            try:
                int_dtype = np.dtype(dtype) if np.dtype(dtype).kind in "iu" else None
            except TypeError:
                int_dtype = None
        super().__init__(name=_name(name) or _unique_name("input_layer"),
                         dtype=None if int_dtype is not None else dtype,
                         input_shape=shape, **kwargs)
        if int_dtype is not None:
            self.dtype = int_dtype
        if batch_size is not None:
            if isinstance(batch_size, (bool, np.bool_)) or not isinstance(
                    batch_size, (int, np.integer)):
                raise TypeError(f"batch_size: expected a positive int or None, got "
                                f"{describe(batch_size)}")
            if batch_size < 1:
                raise ValueError(f"batch_size: expected a positive int or None, got "
                                 f"{short_repr(batch_size)}")
            batch_size = int(batch_size)
        self.batch_size = batch_size
        self._output = None

    @property
    def output(self):
        """The symbolic tensor this input stands for (made once)."""
        if self._output is None:
            from ._symbolic import Node
            node = Node(self, [], self.input_spec_shape, self.dtype or config.floatx())
            node.output.name = self.name
            self._output = node.output
        return self._output

    def get_config(self):
        return {"shape": list(self.input_spec_shape), "batch_size": self.batch_size,
                "dtype": None if self.dtype is None else str(np.dtype(self.dtype)),
                "name": self.name}

    @classmethod
    def from_config(cls, cfg):
        return cls(**cfg)


def Input(shape=None, batch_size=None, dtype=None, name=None):
    """``dl.Input(shape=(n,))``: a symbolic tensor of samples of ``shape`` (the batch
    dimension is None), the start of a functional model (``dl.Model(inputs,
    outputs)``), or the first entry of a Sequential."""
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name)
    return layer.output


def _named(argument, getter, identifier):
    """``getter(identifier)``, with errors naming the layer argument it came from (an
    array initializer keeps that name for the shape check of its first call)."""
    try:
        obj = getter(identifier)
    except (ValueError, TypeError) as exc:
        message = str(exc)
        head, _, rest = message.partition(": ")
        raise type(exc)(f"{argument}: {rest if rest else message}") from None
    if getattr(obj, "_exact", False):
        obj._argument = argument
    return obj


class Dense(Layer):
    """Densely connected layer: ``output = activation(input @ kernel + bias)``.

    Args:
        units: output dimension.
        activation: name or ``dl.activations`` object (None: linear).
        use_bias: whether to add a bias.
        kernel_initializer, bias_initializer: names or ``dl.initializers`` objects
            (Keras defaults "glorot_uniform" and "zeros").
        kernel_regularizer, bias_regularizer: None, names or ``dl.regularizers`` objects.
        kernel_constraint, bias_constraint: None, names or ``dl.constraints`` objects,
            applied to the weights after every optimizer step.

    Input shape ``(batch, ..., n_in)``; kernel ``(n_in, units)``; bias ``(units,)``;
    output ``(batch, ..., units)``: on inputs of rank > 2 the layer applies to the
    last axis (every other axis is rows of one product), as Keras's.
    """

    _SAVED = ("_x", "_z", "_y")

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        if activity_regularizer is not None:
            raise ValueError(f"activity_regularizer: not provided by dl (see "
                             f"docs/keras-differences.md), got {short_repr(activity_regularizer)}")
        if isinstance(units, (bool, np.bool_)) or not isinstance(units, (int, np.integer)) \
                or units < 1:
            raise ValueError(f"units: expected a positive int, got {short_repr(units)}")
        # the kernel has at least one row: units that cannot fit are refused now
        fits_in_memory("units", (int(units),), 4 if self.dtype is None else self.dtype.itemsize,
             "a bias (a kernel row)")
        self.units = int(units)
        self.activation = activation
        self.use_bias = flag("use_bias", use_bias)
        # None: Keras's add_weight default for a float weight, glorot_uniform
        self.kernel_initializer = _named("kernel_initializer", initializers.get,
                                         kernel_initializer) or initializers.GlorotUniform()
        self.bias_initializer = _named("bias_initializer", initializers.get,
                                       bias_initializer) or initializers.GlorotUniform()
        self.kernel_regularizer = _named("kernel_regularizer", regularizers.get,
                                         kernel_regularizer)
        self.bias_regularizer = _named("bias_regularizer", regularizers.get, bias_regularizer)
        self.kernel_constraint = _named("kernel_constraint", constraints.get, kernel_constraint)
        self.bias_constraint = _named("bias_constraint", constraints.get, bias_constraint)
        self.kernel = self.bias = None
        # Set by the model when this layer's softmax is fused into the loss: the
        # training forward then also keeps the logits, and backward receives dL/dlogits.
        self.fuse_softmax_loss = False

    @property
    def activation(self):
        return self._activation

    @activation.setter
    def activation(self, value):
        # None is linear, as Keras's activations.get(None)
        self._activation = _named("activation", activations_module.get,
                                  "linear" if value is None else value)

    def compute_output_shape(self, input_shape):
        if len(input_shape) < 1:
            raise ValueError(f"{self.name}: expected inputs of shape (batch, ..., "
                             f"features), got (batch,): one number per sample has no "
                             f"feature axis")
        return tuple(input_shape[:-1]) + (self.units,)

    def _weight_shapes(self, input_shape):
        self.compute_output_shape(tuple(input_shape))
        n_in = tuple(input_shape)[-1]
        return [(n_in, self.units)] + ([(self.units,)] if self.use_bias else [])

    def _build(self, input_shape, backend, dtype):
        input_shape = tuple(input_shape)
        self.compute_output_shape(input_shape)
        # Before allocating: the kernel, the bias and their gradients must fit in memory
        # (an input of 2**40 features would need terabytes).
        n_in = input_shape[-1]
        itemsize = np.dtype(self.dtype if self.dtype is not None else dtype).itemsize
        nbytes = 2 * (n_in + 1) * self.units * itemsize
        if nbytes > MAX_BYTES:
            raise ValueError(f"input_shape: expected inputs for which the weights of "
                             f"{self.name!r} fit in memory (at most {MAX_BYTES} bytes here), "
                             f"got {n_in} features: a ({n_in}, {self.units}) kernel, the bias "
                             f"and their gradients need {nbytes} bytes")
        super()._build(input_shape, backend, dtype)
        n_in = self.input_shape[-1]
        ops = backend.ops
        # initialised on the host (the same numbers on every backend), then placed
        self.kernel = ops.to_device(self.kernel_initializer((n_in, self.units), self.dtype))
        self.bias = (ops.to_device(self.bias_initializer((self.units,), self.dtype))
                     if self.use_bias else None)
        self.d_kernel = ops.zeros(self.kernel.shape, self.dtype)
        self.d_bias = ops.zeros(self.bias.shape, self.dtype) if self.use_bias else None

    @property
    def weights(self):
        if not self.built:
            return []
        return [self.kernel, self.bias] if self.use_bias else [self.kernel]

    _trainable_variables = weights       # (every weight: one property call per step)

    @property
    def gradients(self):
        if not self.built:
            return []
        return [self.d_kernel, self.d_bias] if self.use_bias else [self.d_kernel]

    @property
    def weight_names(self):
        return ("kernel", "bias") if self.use_bias else ("kernel",)

    def constrained(self):
        pairs = []
        if self.kernel_constraint is not None:
            pairs.append((self.kernel, self.kernel_constraint))
        if self.bias_constraint is not None and self.use_bias:
            pairs.append((self.bias, self.bias_constraint))
        return pairs

    def forward(self, x, training=False, step=0):
        # Three paths: fused (dense_forward applies bias and activation in the GEMM's
        # epilogue); unfused (an activation with non-default parameters: a linear
        # dense_forward into z, then the activation's own kernel); softmax-fused (a
        # last softmax layer under a cross-entropy loss, while training: computed as
        # unfused, so the logits z are kept; the model's loss kernel takes z and does
        # softmax and cross-entropy at once, y only feeds the metrics).
        be, act = self.backend, self.activation
        lead = x.shape[:-1]
        if x.ndim != 2:       # rank > 2: the last axis against rows of everything else
            # (device arrays take neither negative indices into shape nor -1)
            x = x.reshape(x.size // self.input_shape[-1], self.input_shape[-1])
        n = x.shape[0]
        shape = (n, self.units)
        out = self._buffer("y", shape) if training else None
        fused = act.is_default and not (training and self.fuse_softmax_loss)
        keep_z = act.needs_input or not fused
        z = (self._buffer("z", shape) if training else be.ops.empty(shape, self.dtype)) \
            if keep_z else None
        if fused:
            y = be.dense_forward(x, self.kernel, self.bias, out, activation=act.name,
                                 pre_activation=z)
        else:
            be.dense_forward(x, self.kernel, self.bias, z, activation="linear")
            y = act.forward(be, z, out)
        if training:
            self._x, self._z, self._y = x, z, y
        return y if len(lead) == 1 else y.reshape(lead + (self.units,))

    def backward(self, dy, need_dx=True):
        # The forward's three paths: fused (one dense_backward: the activation's
        # derivative, db and the two GEMMs); unfused (the activation's backprop kernel
        # into dz, then a linear dense_backward); softmax-fused (dy is already
        # dL/dlogits from the fused loss: a linear dense_backward).
        be, act = self.backend, self.activation
        shape = dy.shape
        if dy.ndim != 2:
            dy = dy.reshape(dy.size // self.units, self.units)
        dx = self._buffer("dx", self._x.shape) if need_dx else None
        if self.fuse_softmax_loss:
            dz = dy                          # the fused loss gave dL/dlogits already
        elif act.is_default:
            be.dense_backward(dy, self._x, self.kernel, self._y, activation=act.name,
                              pre_activation=self._z, dx=dx, dw=self.d_kernel,
                              db=self.d_bias, need_dx=need_dx, use_bias=self.use_bias)
            return dx if dx is None or len(shape) == 2 else dx.reshape(
                shape[:-1] + (self._x.shape[1],))
        else:
            dz = act.backward(be, dy, self._z, self._y, self._buffer("dz", dy.shape))
        be.dense_backward(dz, self._x, self.kernel, dz, activation="linear", dx=dx,
                          dw=self.d_kernel, db=self.d_bias, need_dx=need_dx,
                          use_bias=self.use_bias)
        return dx if dx is None or len(shape) == 2 else dx.reshape(
            shape[:-1] + (self._x.shape[1],))

    def _regularized(self):
        pairs = []
        if self.kernel_regularizer is not None:
            pairs.append((self.kernel_regularizer, self.kernel, self.d_kernel))
        if self.bias_regularizer is not None and self.use_bias:
            pairs.append((self.bias_regularizer, self.bias, self.d_bias))
        return pairs

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": activations_module.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint)}


class Activation(Layer):
    """Applies an activation: ``output = activation(input)``, any input shape."""

    _SAVED = ("_x", "_y")

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = _named("activation", activations_module.get, activation)
        self.built = True        # no weights: ready at construction, as Keras's

    def forward(self, x, training=False, step=0):
        out = self._buffer("y", x.shape) if training else None
        y = self.activation.forward(self.backend, x, out)
        if training:
            self._x, self._y = x, y
        return y

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        return self.activation.backward(self.backend, dy, self._x, self._y,
                                        self._buffer("dx", dy.shape))

    def get_config(self):
        return {**super().get_config(),
                "activation": activations_module.serialize(self.activation)}


class Dropout(Layer):
    """Inverted dropout: in training, each input is zeroed with probability ``rate`` and
    the others scaled by ``1 / (1 - rate)``; in inference the identity.

    Args:
        rate: the fraction to drop, in [0, 1).
        noise_shape: shape of the mask (without batch dimension broadcasting rules:
            a 1 broadcasts), default the input's.
        seed: makes the masks reproducible on their own; otherwise they derive from
            the model's seed (``dl.utils.set_random_seed``) and the training step.
    """

    _SAVED = ("_mask",)

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, (bool, np.bool_)) or not isinstance(
                rate, (int, float, np.integer, np.floating)):
            raise TypeError(f"rate: expected a number in [0, 1), got {describe(rate)}")
        if not 0 <= rate < 1:       # compared before float(): a huge int overflows it
            raise ValueError(f"rate: expected a value in [0, 1), got {short_repr(rate)}")
        rate = float(rate)
        self.rate = rate
        if noise_shape is not None:
            if not isinstance(noise_shape, (tuple, list)) or not all(
                    d is None or (isinstance(d, (int, np.integer)) and not isinstance(d, bool))
                    for d in noise_shape):
                raise TypeError(f"noise_shape: expected a tuple of positive ints or None, "
                                f"got {short_repr(noise_shape)}")
            if any(d is not None and d < 1 for d in noise_shape):     # Keras: ValueError
                raise ValueError(f"noise_shape: expected positive ints or None, got "
                                 f"{short_repr(noise_shape)}")
            noise_shape = tuple(None if d is None else int(d) for d in noise_shape)
        self.noise_shape = noise_shape
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise ValueError(f"seed: expected a non-negative int or None, got {short_repr(seed)}")
        self.seed = seed
        self.model_seed = 0     # set by the model: mixes into the mask generator
        # data parallelism: (first row, rows) of the global batch this batch is a slice
        # of (its mask is those rows of the global batch's), or None
        self._batch_part = None
        self.built = True        # no weights: ready at construction, as Keras's

    def _build(self, input_shape, backend, dtype):
        if self.noise_shape is not None:
            full = (None,) + tuple(input_shape)
            if len(self.noise_shape) != len(full) or any(
                    d is not None and d != 1 and d != n
                    for d, n in zip(self.noise_shape[1:], full[1:])):
                raise ValueError(
                    f"noise_shape: expected {len(full)} entries (the batch first), each None, "
                    f"1 or the input's size, for inputs of shape {full}; got "
                    f"{short_repr(self.noise_shape)}")
        super()._build(input_shape, backend, dtype)

    def forward(self, x, training=False, step=0):
        if not training or self.rate == 0:
            if training:
                self._mask = None
            return x
        part = self._batch_part
        rows = x.shape[0] if part is None else part[1]
        if self.noise_shape is not None and self.noise_shape[0] not in (None, 1, rows):
            raise ValueError(f"noise_shape: expected None, 1 or the batch size "
                             f"({rows}) as its first entry, got {self.noise_shape[0]}")
        seed = [self.seed] if self.seed is not None else [self.model_seed, _layer_id(self)]
        if self._call_index:         # a layer called twice in a model: other masks
            seed.append(10**6 + self._call_index)
        per_row = self.noise_shape is None or self.noise_shape[0] != 1
        shape = x.shape if self.noise_shape is None else tuple(
            x.shape[i] if d is None or (i == 0 and per_row) else d
            for i, d in enumerate(self.noise_shape))
        bits = np.random.PCG64(seed + [step])        # what default_rng(seed) draws with
        if part is not None and per_row:
            # rows lo: of the global batch's mask: each float64 draw is one step of
            # the generator, so skip those of the rows before
            bits.advance(part[0] * math.prod(shape[1:]))
        keep = np.random.Generator(bits).random(shape, dtype=np.float64) >= self.rate
        mask = keep.astype(self.dtype) * self.dtype.type(1.0 / (1.0 - self.rate))
        ops = self.backend.ops
        if ops.on_device:
            # drawn on the host, so every backend drops the same units; one upload
            self._mask = self._buffer("mask", x.shape)
            ops.copy_from_host(self._mask, np.broadcast_to(mask, x.shape))
        else:
            self._mask = mask
        out = self._buffer("y", x.shape)
        ops.multiply(x, self._mask, out)
        return out

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        if self._mask is None:
            return dy
        dx = self._buffer("dx", dy.shape)
        self.backend.ops.multiply(dy, self._mask, dx)
        return dx

    def get_config(self):
        return {**super().get_config(), "rate": self.rate,
                "noise_shape": None if self.noise_shape is None else list(self.noise_shape),
                "seed": self.seed}


def _layer_id(layer):
    """A stable number for a layer within its model (its position), for seeding."""
    return getattr(layer, "index_in_model", 0)


class Flatten(Layer):
    """Flattens each sample: ``(batch, d1, d2, ...) -> (batch, d1 * d2 * ...)``."""

    _SAVED = ("_in_shape",)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.built = True        # no weights: ready at construction, as Keras's

    def compute_output_shape(self, input_shape):
        return (int(math.prod(input_shape)),)

    def forward(self, x, training=False, step=0):
        if training:
            self._in_shape = tuple(x.shape)
        return x.reshape(x.shape[0], int(math.prod(x.shape[1:])))

    def backward(self, dy, need_dx=True):
        return dy.reshape(self._in_shape) if need_dx else None


class _GammaBeta:
    """What the normalisation layers share about their optional ``gamma`` (``scale``)
    and ``beta`` (``center``), each with its gradient (``d_gamma``, ``d_beta``: always
    allocated, the kernels write both), initializer, regularizer and constraint
    (LayerNormalization, BatchNormalization)."""

    def _gamma_beta(self):
        """The present parameters, in Keras's order."""
        if not self.built:
            return []
        return [w for w in (self.gamma, self.beta) if w is not None]

    def _gamma_beta_names(self):
        return tuple(n for n, on in (("gamma", self.scale), ("beta", self.center)) if on)

    @property
    def gradients(self):
        if not self.built:
            return []
        return [g for w, g in ((self.gamma, self.d_gamma), (self.beta, self.d_beta))
                if w is not None]

    def constrained(self):
        return [(w, c) for w, c in ((self.gamma, self.gamma_constraint),
                                    (self.beta, self.beta_constraint))
                if w is not None and c is not None]

    def _regularized(self):
        return [(r, w, g) for r, w, g in ((self.gamma_regularizer, self.gamma, self.d_gamma),
                                          (self.beta_regularizer, self.beta, self.d_beta))
                if r is not None and w is not None]


class LayerNormalization(_GammaBeta, Layer):
    """Keras's LayerNormalization: per sample, over ``axis`` (the last axis by
    default), ``(x - mean) / sqrt(var + epsilon) * gamma + beta`` (the variance biased),
    with Keras's order of operations (``kernels.reference.layer_norm_forward``).

    Args:
        axis: the normalised axis or axes (ints, the batch axis 0 excluded, in any
            order): the last one, or the last k of the input (dl normalises trailing
            axes, which it views as one row per sample and the kernels' last axis).
        epsilon: added to the variance (Keras's default 1e-3).
        center, scale: whether to learn ``beta`` / ``gamma``.
        beta_initializer, gamma_initializer: Keras's "zeros" and "ones".
        beta_regularizer, gamma_regularizer, beta_constraint, gamma_constraint: as
            Dense's.
        rms_scaling: refused (not provided; see docs/keras-differences.md).

    Weights, in Keras's order: ``gamma`` (when ``scale``), then ``beta`` (when
    ``center``), each of the normalised axes' shape.
    """

    _SAVED = ("_x",)

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, rms_scaling=False,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        items = list(axis) if isinstance(axis, (list, tuple)) else [axis]
        if not items or any(isinstance(a, (bool, np.bool_))
                            or not isinstance(a, (int, np.integer)) for a in items):
            raise TypeError(f"axis: Expected an int or a list/tuple of ints for the "
                            f"argument 'axis', got {short_repr(axis)}")
        self.axis = int(axis) if not isinstance(axis, (list, tuple)) else [int(a)
                                                                         for a in items]
        self.epsilon = real("epsilon", epsilon, low=0.0, low_open=True)
        self.center = flag("center", center)
        self.scale = flag("scale", scale)
        if flag("rms_scaling", rms_scaling):
            raise ValueError("rms_scaling: not provided by dl (see docs/keras-differences.md)")
        self.beta_initializer = _named("beta_initializer", initializers.get, beta_initializer)
        self.gamma_initializer = _named("gamma_initializer", initializers.get,
                                        gamma_initializer)
        self.beta_regularizer = _named("beta_regularizer", regularizers.get, beta_regularizer)
        self.gamma_regularizer = _named("gamma_regularizer", regularizers.get,
                                        gamma_regularizer)
        self.beta_constraint = _named("beta_constraint", constraints.get, beta_constraint)
        self.gamma_constraint = _named("gamma_constraint", constraints.get, gamma_constraint)
        self.gamma = self.beta = None

    def _axes(self, input_shape):
        """The normalised axes of inputs with samples of ``input_shape``, sorted,
        counting the batch axis as 0; they must be the trailing ones."""
        rank = len(input_shape) + 1
        items = self.axis if isinstance(self.axis, list) else [self.axis]
        axes = []
        for a in items:
            if not -rank <= a < rank or a % rank == 0:
                raise ValueError(f"axis: {a} is out of bounds for inputs of rank {rank} "
                                 f"(the batch axis 0 cannot be normalised over)")
            axes.append(a % rank)
        if len(set(axes)) != len(axes):
            raise ValueError(f"axis: Duplicate axis in {self.axis}")
        axes = sorted(axes)
        if axes != list(range(rank - len(axes), rank)):
            raise ValueError(f"axis: dl normalises the trailing axes of its inputs (the "
                             f"last one, or the last k), got {self.axis} for inputs of "
                             f"rank {rank} (see docs/keras-differences.md)")
        return axes

    def _param_shape(self, input_shape):
        return tuple(input_shape[a - 1] for a in self._axes(input_shape))

    def compute_output_shape(self, input_shape):
        if len(input_shape) < 1:
            raise ValueError(f"{self.name}: expected inputs of shape (batch, ..., "
                             f"features), got (batch,)")
        self._axes(input_shape)
        return tuple(input_shape)

    def _weight_shapes(self, input_shape):
        param = self._param_shape(tuple(input_shape))
        return [param] * (int(self.scale) + int(self.center))

    def _build(self, input_shape, backend, dtype):
        super()._build(input_shape, backend, dtype)
        ops = backend.ops
        d = self._param_shape(self.input_shape)
        self.gamma = (ops.to_device(self.gamma_initializer(d, self.dtype)) if self.scale
                      else None)
        self.beta = (ops.to_device(self.beta_initializer(d, self.dtype)) if self.center
                     else None)
        # the kernels compute both parameters' gradients: scratch for an absent one
        self.d_gamma = ops.zeros(d, self.dtype)
        self.d_beta = ops.zeros(d, self.dtype)

    @property
    def weights(self):
        return self._gamma_beta()

    @property
    def weight_names(self):
        return self._gamma_beta_names()

    def _rows(self, a):
        """``a`` as (rows, normalised values): the kernels' last axis (a view)."""
        d = self.d_gamma.size
        return a if a.ndim == 2 and a.shape[1] == d else a.reshape(a.size // d, d)

    @staticmethod
    def _flat(w):
        """A parameter (or its gradient) as the kernels' 1-D vector (a view)."""
        return w if w is None or w.ndim == 1 else w.reshape(w.size)

    def forward(self, x, training=False, step=0):
        out = self._buffer("y", x.shape) if training else self.backend.ops.empty(
            x.shape, self.dtype)
        self.backend.layer_norm_forward(self._rows(x), self._flat(self.gamma),
                                        self._flat(self.beta), self._rows(out),
                                        epsilon=self.epsilon)
        if training:
            self._x = x
        return out

    def backward(self, dy, need_dx=True):
        dx = self._buffer("dx", dy.shape)
        self.backend.layer_norm_backward(self._rows(dy), self._rows(self._x),
                                         self._flat(self.gamma), self._rows(dx),
                                         self._flat(self.d_gamma), self._flat(self.d_beta),
                                         epsilon=self.epsilon)
        return dx if need_dx else None

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale, "rms_scaling": False,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "beta_regularizer": regularizers.serialize(self.beta_regularizer),
                "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
                "beta_constraint": constraints.serialize(self.beta_constraint),
                "gamma_constraint": constraints.serialize(self.gamma_constraint)}


from .merging import (Add, Average, Concatenate, Dot, Maximum, Minimum,  # noqa: E402
                      Multiply, Subtract)
from .reshaping import (Identity, Permute, RepeatVector, Reshape,  # noqa: E402
                        UpSampling2D, ZeroPadding2D)
from .embedding import Embedding  # noqa: E402
from .convolutional import (Conv1D, Conv2D, DepthwiseConv2D,  # noqa: E402
                            SeparableConv2D)
from .pooling import (AveragePooling1D, AveragePooling2D,  # noqa: E402
                      GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalMaxPooling1D,
                      GlobalMaxPooling2D, MaxPooling1D, MaxPooling2D)
from .batch_normalization import BatchNormalization  # noqa: E402
from .merging import _MatMul  # noqa: E402
from .ops import _Affine, _Compare, _CompareConst, _Reduce, _Unary, _Where  # noqa: E402

_CLASSES = {c.__name__: c for c in (InputLayer, Dense, Activation, Dropout, Flatten,
                                    LayerNormalization, Add, Subtract, Multiply, Average,
                                    Maximum, Minimum, Concatenate, Dot, Identity, Reshape,
                                    Permute, RepeatVector, Embedding, _MatMul, _Affine,
                                    _Unary, _Reduce, _Compare, _CompareConst, _Where,
                                    Conv1D, Conv2D, DepthwiseConv2D, SeparableConv2D,
                                    MaxPooling1D, MaxPooling2D, AveragePooling1D,
                                    AveragePooling2D, GlobalAveragePooling1D,
                                    GlobalAveragePooling2D, GlobalMaxPooling1D,
                                    GlobalMaxPooling2D, BatchNormalization, ZeroPadding2D,
                                    UpSampling2D)}


def deserialize(cfg):
    """A layer from ``{"class_name": ..., "config": ...}``."""
    if not isinstance(cfg, dict) or not isinstance(cfg.get("class_name"), str) \
            or cfg["class_name"] not in _CLASSES:
        raise ValueError(f"layer config: expected a dict with class_name among "
                         f"{', '.join(_CLASSES)}, got {short_repr(cfg)}")
    config_ = cfg.get("config", {})
    if not isinstance(config_, dict) or not all(isinstance(k, str) for k in config_):
        raise ValueError(f"layer config: expected a dict of arguments under 'config', got "
                         f"{short_repr(config_)}")
    return _CLASSES[cfg["class_name"]].from_config(dict(config_))


def serialize(layer):
    return {"class_name": type(layer).__name__, "config": layer.get_config()}

