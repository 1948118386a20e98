"""Symbolic tensors and the graph of layer calls they record (Keras 3's KerasTensor).

``dl.Input(shape)`` returns a :class:`KerasTensor`: a shape (``None`` for the batch), a
dtype and a name, no data.  Calling a layer on symbolic tensors does not compute: it
checks the shapes (raising now, naming the layer and the shapes), works out the output
shape and records a :class:`Node` (layer, input tensors, output tensor).  A ``dl.Model``
built from inputs and outputs then walks these nodes (``dl.functional``).

Nodes are numbered in creation order; a node's inputs always exist before it, so that
order is a topological order of any graph: models execute their nodes in it.
"""
import itertools

import numpy as np

from kernels.checks import describe

_node_ids = itertools.count()
_tensor_ids = itertools.count()


class KerasTensor:
    """A symbolic tensor: what ``dl.Input`` and layer calls on symbolic tensors return.

    Attributes: ``shape`` (batch first, ``None``), ``dtype``, ``name``, ``ndim``.
    ``x + y``, ``x - y``, ``x * y`` add the merge layers ``Add``, ``Subtract`` and
    ``Multiply`` to the graph; ``x @ y`` a ``Dot`` of the last axis of x with the
    second-to-last of y (a matrix product per sample).  A symbolic tensor has no value:
    converting it to a NumPy array or a bool raises (no silent wrong graph).
    """

    # NumPy defers its operators to ours (np.ndarray + KerasTensor -> __radd__)
    __array_priority__ = 1000

    def __init__(self, shape, dtype, name=None, node=None):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.id = next(_tensor_ids)
        self.name = name or f"keras_tensor_{self.id}"
        self.node = node           # the Node that produced it

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def sample_shape(self):
        return self.shape[1:]

    def __repr__(self):
        return (f"<KerasTensor shape={self.shape}, dtype={self.dtype.name}, "
                f"name={self.name}>")

    def __hash__(self):
        return self.id

    def __eq__(self, other):          # identity, so tensors can be dict keys
        return self is other

    # arithmetic: merge layers ----------------------------------------------------
    def _merge(self, other, cls, reverse=False):
        if not isinstance(other, KerasTensor):
            from . import ops
            name = {"Add": "add", "Subtract": "subtract", "Multiply": "multiply"}.get(
                cls.__name__)
            if name is not None and isinstance(other, (int, float, np.integer,
                                                       np.floating)) and \
                    not isinstance(other, (bool, np.bool_)):
                return ops._scalar_op(self, other, name, reverse)
            raise TypeError(f"{cls.__name__.lower()}: a symbolic tensor combines with "
                            f"another symbolic tensor (dl.Input or a layer's output) or "
                            f"a Python number, got {describe(other)}")
        pair = [other, self] if reverse else [self, other]
        return cls()(pair)

    def __add__(self, other):
        from .merging import Add
        return self._merge(other, Add)

    def __radd__(self, other):
        from .merging import Add
        return self._merge(other, Add, reverse=True)

    def __sub__(self, other):
        from .merging import Subtract
        return self._merge(other, Subtract)

    def __rsub__(self, other):
        from .merging import Subtract
        return self._merge(other, Subtract, reverse=True)

    def __mul__(self, other):
        from .merging import Multiply
        return self._merge(other, Multiply)

    def __rmul__(self, other):
        from .merging import Multiply
        return self._merge(other, Multiply, reverse=True)

    def __truediv__(self, other):
        from . import ops
        return ops._scalar_op(self, other, "divide")

    def __neg__(self):
        from . import ops
        return ops._scalar_op(self, -1.0, "multiply")

    def __gt__(self, other):
        from . import ops
        return ops.greater(self, other)

    def __lt__(self, other):
        from . import ops
        return ops.less(self, other)

    def __ge__(self, other):
        from . import ops
        return ops.greater_equal(self, other)

    def __le__(self, other):
        from . import ops
        return ops.less_equal(self, other)

    def __matmul__(self, other):
        from .merging import MatMul
        return self._merge(other, MatMul)

    def __rmatmul__(self, other):
        from .merging import MatMul
        return self._merge(other, MatMul, reverse=True)

    # what a symbolic tensor cannot be ---------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError(f"{self.name}: a symbolic tensor has no value: NumPy functions "
                        f"cannot be applied to it while a model is built; use dl layers "
                        f"or dl.ops on it")

    def __bool__(self):
        raise TypeError(f"{self.name}: a symbolic tensor has no value, so it cannot decide "
                        f"Python control flow (if/while/and/or) while a model is built")

    def __len__(self):
        raise TypeError(f"{self.name}: a symbolic tensor has no length (its batch size is "
                        f"unknown); use .shape")

    def __iter__(self):
        raise TypeError(f"{self.name}: a symbolic tensor cannot be iterated while a model "
                        f"is built")

    def __float__(self):
        raise TypeError(f"{self.name}: a symbolic tensor has no value to convert to float")

    __int__ = __index__ = __float__


class Node:
    """One call of a layer in a graph: ``outputs = layer(inputs)``.

    ``inputs``: the KerasTensors it was called on (a list; one for a single-input
    layer); ``output``: the KerasTensor it returned; ``call_index``: which call of the
    layer this is (0 for the first), so each call keeps its own buffers and saved
    state.
    """

    def __init__(self, layer, inputs, output_shape, dtype):
        self.id = next(_node_ids)
        self.layer = layer
        self.inputs = list(inputs)
        self.call_index = getattr(layer, "_call_count", 0)
        layer._call_count = self.call_index + 1
        self.output = KerasTensor((None,) + tuple(output_shape), dtype, node=self)

    def __repr__(self):
        return f"<Node {self.layer.name}#{self.call_index}>"


def is_symbolic(x):
    """Whether a layer call's argument is symbolic (a KerasTensor, or a list of them)."""
    if isinstance(x, KerasTensor):
        return True
    return isinstance(x, (list, tuple)) and any(isinstance(t, KerasTensor) for t in x)


def call_layer(layer, inputs, training=None):
    """``layer(inputs)`` on symbolic tensors: checks, infers the output shape, records a
    Node and returns its output tensor."""
    from . import layers as layers_module
    if training is not None and training is not False and training is not TRAINING:
        raise ValueError(f"training: {layer.name} called on symbolic tensors runs in the "
                         f"model's mode (training in fit, inference in predict); a fixed "
                         f"training=True is not provided, got {training!r}")
    if isinstance(layer, layers_module.InputLayer):
        raise TypeError(f"{layer.name}: an InputLayer is not called; use dl.Input(shape) "
                        f"to make a model's input")
    if layer._multi_input:
        if not isinstance(inputs, (list, tuple)) or not all(
                isinstance(t, KerasTensor) for t in inputs):
            raise TypeError(f"inputs: {layer.name} ({type(layer).__name__}) expected a "
                            f"list of symbolic tensors, got {describe(inputs)}")
        tensors = list(inputs)
        shapes = [t.sample_shape for t in tensors]
    else:
        if not isinstance(inputs, KerasTensor):
            raise TypeError(f"inputs: {layer.name} ({type(layer).__name__}) takes one "
                            f"tensor, got {describe(inputs)}")
        tensors = [inputs]
        shapes = tensors[0].sample_shape
    for t in tensors:
        if any(d is None for d in t.sample_shape):
            raise ValueError(f"{layer.name}: expected inputs with known sample dimensions "
                             f"(dl builds weights from them), got shape {t.shape} from "
                             f"{t.name}")
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) > 1:
        raise TypeError(f"inputs: {layer.name} expected inputs of one dtype, got "
                        f"{', '.join(sorted(d.name for d in dtypes))}")
    from . import config
    if tensors[0].dtype.kind != "f":
        if not getattr(layer, "_accepts_ids", False):
            raise TypeError(f"inputs: {layer.name} ({type(layer).__name__}) computes on "
                            f"floats, got the {tensors[0].dtype.name} tensor "
                            f"{tensors[0].name}; integer inputs feed an Embedding")
        dtype = layer.dtype if layer.dtype is not None else np.dtype(config.floatx())
    else:
        dtype = layer.dtype if layer.dtype is not None else tensors[0].dtype
    first = getattr(layer, "_graph_input_shape", None)
    if first is not None and first != shapes:
        full = (lambda s: [(None,) + tuple(x) for x in s]) if layer._multi_input else (
            lambda s: (None,) + tuple(s))
        raise ValueError(f"{layer.name}: called on inputs of shape {full(shapes)}, but it "
                         f"was first called on {full(first)} (a layer called again shares "
                         f"its weights, so its inputs must keep their shape)")
    if (not layer._multi_input and layer.built and layer.weights
            and layer.input_shape is not None and tuple(layer.input_shape) != shapes):
        raise ValueError(f"{layer.name}: built for inputs of shape "
                         f"{(None,) + tuple(layer.input_shape)}, called on "
                         f"{(None,) + tuple(shapes)}")
    try:
        out_shape = layer.compute_output_shape(
            [tuple(s) for s in shapes] if layer._multi_input else tuple(shapes))
    except ValueError as exc:
        message = str(exc)
        if not message.startswith(layer.name):
            message = f"{layer.name}: {message}"
        raise ValueError(message) from None
    layer._graph_input_shape = shapes
    node = Node(layer, tensors, out_shape, dtype)
    node.output.name = layer.name if node.call_index == 0 else \
        f"{layer.name}_{node.call_index}"
    return node.output


class _TrainingFlag:
    """What a traced ``call`` receives as ``training``: the graph is traced once for
    both modes (layers such as Dropout act by the mode the model runs in), so Python
    code cannot branch on it."""

    def __bool__(self):
        raise TypeError("training: dl traces call() once for training and inference; "
                        "pass training on to layers (layer(x, training=training)) "
                        "instead of branching on it in Python")

    def __repr__(self):
        return "<training: the mode the model runs in>"


TRAINING = _TrainingFlag()


def _user_line(exc, model):
    """Where in the model's code (the deepest frame outside dl) ``exc`` was raised."""
    import os
    import traceback
    here = os.path.dirname(os.path.abspath(__file__))
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not os.path.abspath(f.filename).startswith(here + os.sep)]
    if not frames:
        return ""
    f = frames[-1]
    return f" (in {type(model).__name__}.call, {f.filename}:{f.lineno}: {f.line})"


def trace_call(model, inputs):
    """``model.call(inputs)`` on symbolic inputs: the symbolic outputs (a tensor, a
    list or a dict of them).  An error while tracing names the line of ``call`` that
    raised it."""
    import inspect
    try:
        params = inspect.signature(model.call).parameters
    except (TypeError, ValueError):
        params = {}
    kwargs = {"training": TRAINING} if "training" in params else {}
    try:
        outputs = model.call(inputs, **kwargs)
    except (TypeError, ValueError, AttributeError) as exc:
        raise type(exc)(f"call: cannot trace {type(model).__name__}.call on symbolic "
                        f"inputs: {exc}{_user_line(exc, model)}") from None
    values = (list(outputs.values()) if isinstance(outputs, dict) else
              list(outputs) if isinstance(outputs, (list, tuple)) else [outputs])
    if not values or not all(isinstance(t, KerasTensor) for t in values):
        raise TypeError(f"call: {type(model).__name__}.call must return what dl layers "
                        f"and dl.ops make of its inputs (a tensor, or a list or dict of "
                        f"them), got {describe(outputs)}")
    return outputs
