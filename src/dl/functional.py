"""Functional models: ``dl.Model(inputs, outputs)`` over a graph of layer calls.

The graph is what :mod:`dl._symbolic` recorded while layers were called on
``dl.Input`` tensors: nodes (a layer, its input tensors, its output tensor) in creation
order, which is a topological order.  A :class:`Functional` model keeps the nodes that
lead from its inputs to its outputs and runs them in that order:

- **forward**: each node's layer computes from the values of its input tensors; a
  layer called by several nodes (shared weights) runs once per node, with its own
  buffers per call (``Layer._call_index``), and what its backward needs is saved per
  node (``Layer._save_call``);
- **backward**: nodes in reverse order; the gradients reaching a tensor from several
  consumers are summed (into buffers of the model); a shared layer's weight gradients
  are the sum over its calls; nodes that cannot reach a trainable weight are skipped.

When the graph is a plain chain (one input, one output, each layer called once on the
previous one's output) the model runs exactly as a Sequential of those layers: the same
code, the validated-once training step included.
"""
import numpy as np

from kernels.checks import fits_in_memory, short_repr

from . import config, data as data_module, layers as layers_module
from . import losses as losses_module, metrics as metrics_module
from . import optimizers as optimizers_module, utils
from ._symbolic import KerasTensor
from .models import Model, finite_number


def _structure(value, what):
    """A model's ``inputs`` / ``outputs`` argument as (list of tensors, keys): keys is
    None for one tensor, "list" for a list or tuple, the dict's keys for a dict."""
    if isinstance(value, KerasTensor):
        return [value], None
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(t, KerasTensor) for t in value):
        return list(value), "list"
    if isinstance(value, dict) and value and all(
            isinstance(t, KerasTensor) for t in value.values()):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"{what}: expected str keys, got {short_repr(list(value))}")
        return list(value.values()), list(value)
    raise TypeError(f"{what}: expected a symbolic tensor (dl.Input or a layer's output), "
                    f"or a non-empty list or dict of them, got {short_repr(value)}")


class Functional(Model):
    """A model over the graph from ``inputs`` to ``outputs`` (what
    ``dl.Model(inputs=..., outputs=...)`` returns).

    Args:
        inputs: a tensor from ``dl.Input``, or a list or dict of them.
        outputs: a tensor made from the inputs by layer calls, or a list or dict of
            them.
        name, backend, trainable: as Sequential's.

    The layers' weights are created here, on the model's backend, in graph order.
    """

    def __init__(self, inputs=None, outputs=None, name=None, backend=None, trainable=True):
        self._init_state(name, "functional", backend, trainable)
        self._init_graph(inputs, outputs)

    def _init_graph(self, inputs, outputs):
        """The graph from ``inputs`` to ``outputs``, its layers built (what a traced
        subclassed model gets too)."""
        if inputs is None or outputs is None:
            raise ValueError(f"{'inputs' if inputs is None else 'outputs'}: "
                             f"dl.Model(inputs=..., outputs=...) needs both, got None")
        self._inputs, self._input_keys = _structure(inputs, "inputs")
        self._outputs, self._output_keys = _structure(outputs, "outputs")
        for t in self._inputs:
            if t.node is None or not isinstance(t.node.layer, layers_module.InputLayer):
                raise ValueError(f"inputs: expected tensors made by dl.Input, got "
                                 f"{t.name}, the output of layer {t.node.layer.name!r}")
        if len({id(t) for t in self._inputs}) != len(self._inputs):
            raise ValueError("inputs: the same dl.Input is given twice")
        self._nodes = self._collect_nodes()
        layers, seen = [], set()
        for node in self._nodes:
            if id(node.layer) not in seen:
                seen.add(id(node.layer))
                layers.append(node.layer)
        names = [layer.name for layer in layers] + [t.node.layer.name for t in self._inputs]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"layers: the name {dup[0]!r} is used by more than one layer "
                             f"of the model; all layer names should be unique")
        self._layers = layers
        counts = {}
        for node in self._nodes:
            counts[id(node.layer)] = counts.get(id(node.layer), 0) + 1
        self._shared = {lid for lid, c in counts.items() if c > 1}
        self._is_chain = self._chain_check()
        # several inputs travel through fit as one packed array (n, their columns
        # side by side): shuffling, batching, validation splits and device placement
        # stay those of one array; each batch is unpacked into the inputs' buffers
        self._packed = len(self._inputs) > 1
        self._in_layout, offset = [], 0
        for t in self._inputs:
            width = int(np.prod(t.sample_shape))
            self._in_layout.append((offset, width, tuple(t.sample_shape)))
            offset += width
        self._out_layout, offset = [], 0
        for t in self._outputs:
            width = int(np.prod(t.sample_shape))
            self._out_layout.append((offset, width, tuple(t.sample_shape)))
            offset += width
        self._out_accs = {}
        self._grad_bufs = {}
        self._needs_cache = None
        self._build_graph()
        self._configure_fusion()

    # ------------------------------------------------------------- structure
    def _collect_nodes(self):
        """The nodes from the inputs to the outputs, in creation (topological) order;
        a graph that needs an input the model was not given is refused, naming it."""
        given = {id(t) for t in self._inputs}
        nodes, seen, stack = [], set(), list(self._outputs)
        while stack:
            t = stack.pop()
            if id(t) in given:
                continue
            node = t.node
            if isinstance(node.layer, layers_module.InputLayer):
                raise ValueError(f"outputs: Graph disconnected: cannot obtain the value of "
                                 f"the input {t.name!r} ({t.shape}): it is not among the "
                                 f"model's inputs")
            if id(node) in seen:
                continue
            seen.add(id(node))
            nodes.append(node)
            stack.extend(node.inputs)
        for t in self._outputs:
            if id(t) in given:
                raise ValueError(f"outputs: {t.name} is one of the model's inputs; add a "
                                 f"layer (dl.layers.Identity()) to output it")
        return sorted(nodes, key=lambda n: n.id)

    def _chain_check(self):
        if len(self._inputs) != 1 or len(self._outputs) != 1 or self._shared:
            return False
        prev = self._inputs[0]
        for node in self._nodes:
            if node.layer._multi_input or node.inputs != [prev]:
                return False
            prev = node.output
        return prev is self._outputs[0]

    def _build_graph(self):
        """Create every layer's weights on the model's backend, in graph order."""
        dtypes = {t.dtype for t in self._inputs if t.dtype.kind == "f"}
        if len(dtypes) > 1:
            raise TypeError(f"inputs: expected one float dtype for every input (dl models "
                            f"compute in one), got "
                            f"{', '.join(sorted(d.name for d in dtypes))}")
        # integer inputs (ids) travel as the model's floats, checked exact by _as_x
        self.dtype = config.resolve_dtype(dtypes.pop() if dtypes else None)
        if self.seed is None:
            self.seed = int(utils.global_rng().integers(2**62))
        self._sample_shape = (tuple(self._inputs[0].sample_shape) if not self._packed
                              else (sum(w for _, w, _ in self._in_layout),))
        backend = self.backend
        built = set()
        for i, layer in enumerate(self._layers):
            layer.index_in_model = i
            if hasattr(layer, "model_seed"):
                layer.model_seed = self.seed
        for node in self._nodes:
            layer = node.layer
            if id(layer) in built:
                continue
            built.add(id(layer))
            shapes = ([tuple(t.sample_shape) for t in node.inputs] if layer._multi_input
                      else tuple(node.inputs[0].sample_shape))
            if not layer.built or not layer.weights or layer.backend is None:
                layer._build(shapes, backend, self.dtype)
            else:
                layer.backend = backend
        self.built = True

    @property
    def layers(self):
        """The model's layers: its InputLayers, then the others in graph order."""
        return [t.node.layer for t in self._inputs] + list(self._layers)

    @property
    def inputs(self):
        return list(self._inputs)

    @property
    def outputs(self):
        return list(self._outputs)

    @property
    def input(self):
        return self._inputs[0] if self._input_keys is None else self._structured(
            self._inputs, self._input_keys)

    @property
    def output(self):
        return self._outputs[0] if self._output_keys is None else self._structured(
            self._outputs, self._output_keys)

    @staticmethod
    def _structured(values, keys):
        if keys is None:
            return values[0]
        if keys == "list":
            return list(values)
        return dict(zip(keys, values))

    @property
    def input_shape(self):
        shapes = [t.shape for t in self._inputs]
        return shapes[0] if self._input_keys is None else self._structured(
            shapes, self._input_keys)

    @property
    def output_shape(self):
        shapes = [t.shape for t in self._outputs]
        return shapes[0] if self._output_keys is None else self._structured(
            shapes, self._output_keys)

    def _ensure_built(self, x):
        pass        # built with the graph

    def build(self, input_shape=None):
        pass

    # -------------------------------------------------------------- execution
    def _output_layer(self):
        return self._outputs[0].node.layer

    def _output_sample_shape(self):
        if len(self._outputs) > 1:       # predictions travel packed, as inputs do
            return (sum(w for _, w, _ in self._out_layout),)
        return tuple(self._outputs[0].sample_shape)

    def _graph_forward(self, xs, training, step):
        values = dict(zip(map(id, self._inputs), xs))
        shared = self._shared
        for node in self._nodes:
            layer = node.layer
            is_shared = id(layer) in shared
            if is_shared:
                layer._call_index = node.call_index
            if layer._multi_input:
                args = [values[id(t)] for t in node.inputs]
            else:
                args = values[id(node.inputs[0])]
            values[id(node.output)] = layer.forward(args, training=training, step=step)
            if training and is_shared:
                node.saved = layer._save_call()
        return [values[id(t)] for t in self._outputs]

    def _needs_grad(self, trainable):
        """The tensors whose gradient leads to a trainable weight (ids)."""
        key = tuple(trainable)
        if self._needs_cache is not None and self._needs_cache[0] == key:
            return self._needs_cache[1]
        train_layers = {id(self._layers[i]) for i in trainable}
        needs = set()
        for node in self._nodes:
            if id(node.layer) in train_layers or any(id(t) in needs for t in node.inputs):
                needs.add(id(node.output))
        self._needs_cache = (key, needs)
        return needs

    def _gbuf(self, key, shape):
        buf = self._grad_bufs.get((key, shape))
        if buf is None:
            buf = self._grad_bufs[(key, shape)] = self.backend.ops.empty(shape, self.dtype)
        return buf

    def _graph_backward(self, grads_out, trainable):
        ops = self.backend.ops
        needs = self._needs_grad(trainable)
        train_layers = {id(self._layers[i]) for i in trainable}
        grads = {}

        def add_grad(t, d):
            cur = grads.get(id(t))
            if cur is None:
                grads[id(t)] = d
                return
            buf = self._gbuf(("sum", t.id), tuple(d.shape))
            ops.binary("add", cur, d, buf)
            grads[id(t)] = buf

        for t, g in zip(self._outputs, grads_out):
            add_grad(t, g)
        done = set()
        for node in reversed(self._nodes):
            g = grads.pop(id(node.output), None)
            if g is None:
                continue
            layer = node.layer
            need_dx = any(id(t) in needs for t in node.inputs)
            has_w = id(layer) in train_layers
            if not (need_dx or has_w):
                continue
            if id(layer) in self._shared:
                layer._call_index = node.call_index
                layer._restore_call(node.saved)
            stash = None
            if has_w and id(layer) in done:   # a shared layer: keep the other calls' sum
                stash = []
                for k, grad in enumerate(layer.gradients):
                    s = self._gbuf(("stash", id(layer), k), tuple(grad.shape))
                    ops.affine(grad, 1.0, 0.0, s)
                    stash.append(s)
            dx = layer.backward(g, need_dx=need_dx)
            if stash is not None:
                for grad, s in zip(layer.gradients, stash):
                    ops.binary("add", grad, s, grad)
            done.add(id(layer))
            if need_dx:
                dxs = dx if layer._multi_input else [dx]
                for t, d in zip(node.inputs, dxs):
                    if id(t) in needs and d is not None:
                        add_grad(t, d)
        for i in trainable:          # a trainable layer no loss reaches: no gradient
            layer = self._layers[i]
            if id(layer) not in done:
                for grad in layer.gradients:
                    ops.copy_from_host(grad, np.zeros(grad.shape, grad.dtype))

    # ------------------------------------------------------- several inputs
    def _input_parts(self, x, name):
        """``x`` for several inputs (a list in the inputs' order, or a dict keyed by
        the model's input keys or the Input names) as [(label, value)] in order."""
        names = [t.node.layer.name for t in self._inputs]
        keys = self._input_keys if isinstance(self._input_keys, list) else names
        if isinstance(x, dict):
            for key in x:
                if key not in keys and key not in names:
                    raise ValueError(f"{name}: unexpected key {key!r}; the model's inputs "
                                     f"are {', '.join(map(repr, keys))}")
            parts = []
            for key, input_name in zip(keys, names):
                if key in x:
                    parts.append((f"{name}[{key!r}]", x[key]))
                elif input_name in x:
                    parts.append((f"{name}[{input_name!r}]", x[input_name]))
                else:
                    raise ValueError(f"{name}: missing the input {key!r} (the model's "
                                     f"inputs are {', '.join(map(repr, keys))})")
            return parts
        if isinstance(x, (list, tuple)) and len(x) == len(self._inputs):
            return [(f"{name}[{i}]", v) for i, v in enumerate(x)]
        raise ValueError(f"{name}: the model has {len(self._inputs)} inputs; expected a "
                         f"list of {len(self._inputs)} arrays or a dict keyed by "
                         f"{', '.join(map(repr, keys))}, got {short_repr(x)}")

    def _check_ids(self, arr, t, label):
        """An integer input's values: whole numbers the model's float dtype holds
        exactly (they travel through fit as floats)."""
        limit = 2 ** (24 if np.dtype(self.dtype) == np.float32 else 53)
        a = np.asarray(arr)
        if a.dtype.kind == "f":
            if not np.all(np.isfinite(a)) or not np.array_equal(a, np.round(a)):
                raise ValueError(f"{label}: expected whole-number ids for the "
                                 f"{t.dtype.name} input {t.node.layer.name!r}, got "
                                 f"fractions, NaN or inf")
        if a.size and (a.min() < -limit or a.max() > limit):
            bad = a[(a < -limit) | (a > limit)].flat[0]
            raise ValueError(f"{label}: expected ids within +-{limit} (they travel as "
                             f"{np.dtype(self.dtype).name}), got {bad}")

    def _as_x(self, x, name="x"):
        if not self._packed:
            if self._inputs[0].dtype.kind != "f" and not data_module.is_stream(x):
                self._check_ids(self._numeric(x, name, "input data"), self._inputs[0], name)
            return super()._as_x(x, name)
        arrays, n = [], None
        for (label, value), (_, _, shape) in zip(self._input_parts(x, name),
                                                    self._in_layout):
            arr = self._numeric(value, label, "input data")
            if arr.ndim == 1 and shape == (1,):
                arr = arr.reshape(-1, 1)
            if arr.ndim == 0 or tuple(arr.shape[1:]) != shape:
                raise ValueError(f"{label}: expected samples of shape {shape}, got data "
                                 f"of shape {arr.shape}")
            if n is not None and arr.shape[0] != n:
                raise ValueError(f"{label}: expected {n} samples (as the first input), "
                                 f"got {arr.shape[0]}")
            n = arr.shape[0]
            if n == 0:
                raise ValueError(f"{label}: expected at least one sample, got shape "
                                 f"{arr.shape}")
            t = self._inputs[len(arrays)]
            if t.dtype.kind != "f":
                self._check_ids(arr, t, label)
            arrays.append(arr)
        fits_in_memory(name, (n, self._sample_shape[0]), np.dtype(self.dtype).itemsize)
        packed = np.empty((n,) + self._sample_shape, self.dtype)
        for arr, (offset, width, _) in zip(arrays, self._in_layout):
            packed[:, offset:offset + width] = arr.reshape(n, width)
        return packed

    def _unpack(self, xb, training):
        """The inputs of a packed batch, each C-contiguous in its sample shape."""
        ops, rows = self.backend.ops, xb.shape[0]
        xs = []
        for k, (offset, width, shape) in enumerate(self._in_layout):
            buf = (self._gbuf(("in", k), (rows, width)) if training
                   else ops.empty((rows, width), self.dtype))
            ops.take_cols(xb, offset, buf)
            xs.append(buf.reshape((rows,) + shape))
        return xs

    def _run_forward(self, x, step):
        if self._is_chain:
            return Model._run_forward(self, x, step)
        xs = self._unpack(x, True) if self._packed else [x]
        return self._graph_forward(xs, True, step)[0]

    def _run_backward(self, grad, trainable):
        if self._is_chain:
            return Model._run_backward(self, grad, trainable)
        self._graph_backward([grad], trainable)

    def _forward(self, x):
        if self._is_chain:
            return Model._forward(self, x)
        xs = self._unpack(x, False) if self._packed else [x]
        outs = self._graph_forward(xs, False, 0)
        if len(outs) == 1:
            return outs[0]
        ops, rows = self.backend.ops, x.shape[0]
        packed = ops.empty((rows,) + self._output_sample_shape(), self.dtype)
        for out, (offset, width, _) in zip(outs, self._out_layout):
            ops.place_cols(out.reshape(rows, width), packed, offset)
        return packed

    # ---------------------------------------------------------------- config
    def _node_refs(self):
        """{id(tensor): [layer name, node index, 0]}: each tensor of the graph named as
        Keras's configs name them (a layer's node index counts its calls in this
        model)."""
        refs, counts = {}, {}
        for t in self._inputs:
            refs[id(t)] = [t.node.layer.name, 0, 0]
        for node in self._nodes:
            k = counts.get(id(node.layer), 0)
            counts[id(node.layer)] = k + 1
            refs[id(node.output)] = [node.layer.name, k, 0]
        return refs

    def get_config(self):
        """Keras's functional config: the layers with their inbound nodes, and the
        model's input and output tensors."""
        refs = self._node_refs()
        entries = []
        for t in self._inputs:
            layer = t.node.layer
            entries.append({"class_name": "InputLayer", "name": layer.name,
                            "config": layer.get_config(), "inbound_nodes": []})
        by_layer = {}
        for layer in self._layers:
            entry = {**layers_module.serialize(layer), "name": layer.name,
                     "inbound_nodes": []}
            by_layer[id(layer)] = entry
            entries.append(entry)
        for node in self._nodes:
            by_layer[id(node.layer)]["inbound_nodes"].append(
                [refs[id(t)] for t in node.inputs])

        def struct(tensors, keys):
            named = [refs[id(t)] for t in tensors]
            if keys is None or keys == "list":
                return named
            return dict(zip(keys, named))
        return {"name": self.name, "trainable": self.trainable, "layers": entries,
                "input_layers": struct(self._inputs, self._input_keys),
                "output_layers": struct(self._outputs, self._output_keys),
                "single_input": self._input_keys is None,
                "single_output": self._output_keys is None}

    @classmethod
    def from_config(cls, cfg, backend=None):
        """The model :meth:`get_config` describes, with new weights."""
        if not isinstance(cfg, dict) or not isinstance(cfg.get("layers"), list):
            raise ValueError(f"config: expected a functional model's config (a dict with "
                             f"'layers'), got {short_repr(cfg)}")
        created, tensors, pending = {}, {}, []
        for entry in cfg["layers"]:
            if not isinstance(entry, dict):
                raise ValueError(f"config: expected a layer entry (dict), got "
                                 f"{short_repr(entry)}")
            layer = layers_module.deserialize(entry)
            created[layer.name] = layer
            if isinstance(layer, layers_module.InputLayer):
                tensors[(layer.name, 0)] = layer.output
            for k, inbound in enumerate(entry.get("inbound_nodes", [])):
                pending.append((layer, k, inbound))

        def tensor(ref):
            if not (isinstance(ref, list) and len(ref) == 3):
                raise ValueError(f"config: expected a tensor reference [layer, node, "
                                 f"0], got {short_repr(ref)}")
            return tensors.get((ref[0], ref[1]))

        while pending:       # call each layer once its inputs exist
            progress = []
            for item in pending:
                layer, k, inbound = item
                ins = [tensor(ref) for ref in inbound]
                if any(t is None for t in ins):
                    continue
                out = layer(ins if layer._multi_input else ins[0])
                tensors[(layer.name, k)] = out
                progress.append(item)
            if not progress:
                raise ValueError(f"config: the layers' inbound nodes do not form a graph "
                                 f"(unresolved: {', '.join(p[0].name for p in pending)})")
            pending = [p for p in pending if p not in progress]

        def struct(value, single):
            if isinstance(value, dict):
                return {key: tensor(ref) for key, ref in value.items()}
            items = [tensor(ref) for ref in value]
            if any(t is None for t in items):
                raise ValueError(f"config: a model input or output refers to no tensor "
                                 f"({short_repr(value)})")
            return items[0] if single and len(items) == 1 else items
        inputs = struct(cfg["input_layers"], cfg.get("single_input", True))
        outputs = struct(cfg["output_layers"], cfg.get("single_output", True))
        return cls(inputs, outputs, name=cfg.get("name"), backend=backend,
                   trainable=cfg.get("trainable", True))

    def _file_config(self):
        cfg = {"class_name": "Functional", "config": Functional.get_config(self),
               "compile_config": self.get_compile_config(),
               "build": {"dtype": str(np.dtype(self.dtype))},
               "seed": self.seed, "stop_training": False}
        if getattr(self, "_subclassed", False):
            # the traced graph is what loads; with its class in load_model's
            # custom_objects, the subclass itself (when it has a get_config)
            own = type(self).get_config is not Functional.get_config
            cfg["subclass"] = {"class_name": type(self).__name__,
                               "config": self.get_config() if own else None,
                               "input_shapes": [list(t.sample_shape) for t in self._inputs],
                               "input_keys": self._input_keys}
        return cfg

    # --------------------------------------------------------------- summary
    def summary(self, print_fn=None, line_length=None):
        """Keras's functional summary: each layer's output shape, parameters and the
        layers it is connected to (``name[node][0]``)."""
        print_fn = print_fn or print
        refs = self._node_refs()
        rows = []
        for t in self._inputs:
            layer = t.node.layer
            rows.append((f"{layer.name} ({type(layer).__name__})", str(t.shape), "0", "-"))
        for layer in self._layers:
            nodes = [n for n in self._nodes if n.layer is layer]
            shapes = [str(n.output.shape) for n in nodes]
            links = [f"{r[0]}[{r[1]}][{r[2]}]" for n in nodes
                     for r in (refs[id(t)] for t in n.inputs)]
            rows.append((f"{layer.name} ({type(layer).__name__})",
                         shapes[0] if len(set(shapes)) == 1 else ", ".join(shapes),
                         f"{layer.count_params():,}", ", ".join(links)))
        self._print_table(print_fn, ("Layer (type)", "Output Shape", "Param #",
                                     "Connected to"), rows, (30, 22, 11, 24))

    # ------------------------------------------------------- several outputs
    # Targets and predictions of several outputs travel as one packed array (columns
    # side by side; sparse labels as one float column), as inputs do; compile keeps a
    # loss, a loss weight and metrics per output, the logs name them as Keras 3:
    # "<output>_loss" (unweighted), "<output>_<metric>", "loss" the weighted sum.

    def _output_names(self):
        """Keras's names of the outputs: the dict's keys, else the output layers'."""
        if isinstance(self._output_keys, list):
            return list(self._output_keys)
        return [t.node.layer.name for t in self._outputs]

    def _per_output(self, value, what):
        """A compile argument given per output (a list in output order, or a dict by
        output name) as a list; None when it is one value for every output."""
        names = self._output_names()
        if isinstance(value, dict):
            unknown = [key for key in value if key not in names]
            if unknown:
                raise ValueError(f"{what}: unknown output {unknown[0]!r}; the model's "
                                 f"outputs are {', '.join(map(repr, names))}")
            return [value.get(name) for name in names]
        if isinstance(value, (list, tuple)):
            if len(value) != len(names):
                raise ValueError(f"{what}: expected one entry per output ({len(names)}: "
                                 f"{', '.join(map(repr, names))}), got {len(value)}")
            return list(value)
        return None

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None,
                weighted_metrics=None, run_eagerly=False, steps_per_execution=1,
                jit_compile="auto", auto_scale_loss=True):
        if len(self._outputs) == 1:
            return super().compile(optimizer, loss, metrics, loss_weights,
                                   weighted_metrics, run_eagerly, steps_per_execution,
                                   jit_compile, auto_scale_loss)
        names = self._output_names()
        k = len(names)
        if isinstance(steps_per_execution, bool) or not isinstance(
                steps_per_execution, (int, np.integer)) or steps_per_execution < 1:
            raise ValueError(f"steps_per_execution: expected an int >= 1, got "
                             f"{short_repr(steps_per_execution)}")
        if loss is None:
            raise ValueError("loss: expected a loss (for every output), or a list or dict "
                             "of them, got None")
        if optimizer is None:
            raise ValueError("optimizer: expected an optimizer name, config or object, got "
                             "None")
        per_loss = self._per_output(loss, "loss")
        if per_loss is None:
            per_loss = [loss] * k        # one loss for every output, as Keras
        out_losses = []
        for name, spec in zip(names, per_loss):
            if spec is None:
                out_losses.append(None)  # an output without a loss: not trained on
                continue
            obj = losses_module.get(spec)
            if not obj.trains:
                raise ValueError(f"loss: the loss of {name!r} has reduction="
                                 f"{obj.reduction!r} and cannot be trained on")
            out_losses.append(obj)
        if all(x is None for x in out_losses):
            raise ValueError("loss: expected a loss for at least one output, got None for "
                             "every output")
        if loss_weights is None:
            weights = [1.0] * k
        else:
            weights = self._per_output(loss_weights, "loss_weights")
            if weights is None:
                raise ValueError(f"loss_weights: expected a list or a dict of weights for "
                                 f"the {k} outputs, got {short_repr(loss_weights)}")
            weights = [1.0 if w is None else w for w in weights]
        for name, w in zip(names, weights):
            if not finite_number(w):
                raise ValueError(f"loss_weights: expected a finite number for {name!r}, "
                                 f"got {short_repr(w)}")
        plan, names_out, objects = [], [], []
        for arg, weighted in ((metrics, False), (weighted_metrics, True)):
            if arg is None:
                continue
            per = self._per_output(arg, "weighted_metrics" if weighted else "metrics")
            if per is None:
                raise ValueError(f"{'weighted_metrics' if weighted else 'metrics'}: a model "
                                 f"with {k} outputs takes its metrics as a list with one "
                                 f"entry per output (a metric, a list of them or None) or "
                                 f"a dict by output name, got {short_repr(arg)}")
            for j, entry in enumerate(per):
                entries = [] if entry is None else (
                    list(entry) if isinstance(entry, (list, tuple)) else [entry])
                for spec in entries:
                    m = metrics_module.get(spec)
                    label = f"{names[j]}_{m.name}"
                    if weighted and label in names_out:
                        label = f"{names[j]}_weighted_{m.name}"
                    plan.append((m, weighted, j))
                    names_out.append(label)
                    objects.append(m)
        self.optimizer = optimizers_module.get(optimizer)
        self._out_losses = out_losses
        self._out_weights = [float(w) for w in weights]
        self.loss = next(x for x in out_losses if x is not None)
        self._loss_weight = 1.0
        self.metrics = objects
        self._metric_names = names_out
        self._metric_plan = tuple(plan)
        self._weighted_metric_count = sum(1 for _, weighted, _ in plan if weighted)
        self._compile_spec = {"loss": [None if x is None else losses_module.serialize(x)
                                       for x in out_losses],
                              "loss_weights": list(self._out_weights),
                              "metrics": self._metric_specs(plan, False),
                              "weighted_metrics": self._metric_specs(plan, True)}
        self._steps_per_execution = int(steps_per_execution)
        self.compiled = True
        self.reset_metrics()
        self._configure_fusion()

    def _metric_specs(self, plan, weighted):
        specs = [[] for _ in self._outputs]
        for m, w, j in plan:
            if w == weighted:
                specs[j].append(metrics_module.serialize(m))
        return specs

    def get_compile_config(self):
        if not self.compiled or len(self._outputs) == 1:
            return super().get_compile_config()
        return {"optimizer": optimizers_module.serialize(self.optimizer),
                "steps_per_execution": self._steps_per_execution, **self._compile_spec}

    def _multi(self):
        return len(self._outputs) > 1

    def _configure_fusion(self):
        if not self._multi():
            return super()._configure_fusion()
        for layer in self._layers:
            if isinstance(layer, layers_module.Dense):
                layer.fuse_softmax_loss = False
        if not self.compiled:
            return
        consumed = {id(t) for node in self._nodes for t in node.inputs}
        for t, loss in zip(self._outputs, self._out_losses):
            layer = t.node.layer
            layer.fuse_softmax_loss = bool(
                isinstance(layer, layers_module.Dense) and layer.activation.name == "softmax"
                and len(layer.output_shape) == 1 and id(layer) not in self._shared
                and id(t) not in consumed
                and isinstance(loss, (losses_module.CategoricalCrossentropy,
                                      losses_module.SparseCategoricalCrossentropy))
                and not loss.from_logits)

    def _output_parts(self, y, name):
        names = self._output_names()
        if isinstance(y, dict):
            for key in y:
                if key not in names:
                    raise ValueError(f"{name}: unexpected key {key!r}; the model's outputs "
                                     f"are {', '.join(map(repr, names))}")
            return [(f"{name}[{key!r}]", y.get(key)) for key in names]
        if isinstance(y, (list, tuple)) and len(y) == len(names):
            return [(f"{name}[{i}]", v) for i, v in enumerate(y)]
        raise ValueError(f"{name}: the model has {len(names)} outputs; expected a list of "
                         f"{len(names)} target arrays or a dict keyed by "
                         f"{', '.join(map(repr, names))}, got {short_repr(y)}")

    def _as_y(self, y, n, name="y"):
        if not self._multi():
            return super()._as_y(y, n, name)
        self._y_layout, parts, offset = [], [], 0
        limit = 2 ** (24 if np.dtype(self.dtype) == np.float32 else 53)
        measured = {k for _, _, k in self._metric_plan}
        for k, ((label, value), t, loss) in enumerate(zip(
                self._output_parts(y, name), self._outputs, self._out_losses)):
            if value is None or (loss is None and k not in measured):
                if loss is not None or k in measured:
                    raise ValueError(f"{label}: expected the targets of output "
                                     f"{t.node.layer.name!r} (it has a loss or metrics), "
                                     f"got None")
                self._y_layout.append(None)
                continue
            if loss is None:     # metrics only: labels as they come, else values
                a = np.asarray(value)
                sparse = a.dtype.kind in "iu" and a.ndim <= 2 and a.shape[1:] in ((), (1,)) \
                    and t.sample_shape != (1,)
                loss = losses_module.get("sparse_categorical_crossentropy" if sparse
                                         else "mse")
            arr = self._numeric(value, label, "targets")
            if arr.ndim == 0 or arr.shape[0] != n:
                raise ValueError(f"{label}: expected {n} targets (one per sample of x), "
                                 f"got shape {arr.shape}")
            self._check_finite(arr, label)
            try:
                prepared = loss.prepare_targets(arr, (n,) + tuple(t.sample_shape),
                                                self.dtype)
            except (TypeError, ValueError) as exc:
                message = str(exc)
                raise type(exc)(f"{label}: {message.partition(': ')[2] or message}") \
                    from None
            labels = prepared.dtype.kind in "iu"
            if labels and prepared.size and (prepared.min() < 0 or prepared.max() > limit):
                raise ValueError(f"{label}: expected class labels in [0, {limit}] (they "
                                 f"travel as {np.dtype(self.dtype).name})")
            width = 1 if labels else int(np.prod(prepared.shape[1:]))
            self._y_layout.append((offset, width, tuple(prepared.shape[1:]), labels))
            parts.append(prepared.reshape(n, width))
            offset += width
        packed = np.empty((n, offset), self.dtype)
        col = 0
        for part in parts:
            packed[:, col:col + part.shape[1]] = part
            col += part.shape[1]
        return packed

    def _class_weights(self, class_weight, y):
        if self._multi():
            raise ValueError("class_weight: not supported for a model with several "
                             "outputs (as Keras); pass sample_weight")
        return super()._class_weights(class_weight, y)

    def _unpack_y(self, yb, training):
        """Each output's targets from a packed batch (labels as int64), None for an
        output without a loss."""
        ops, rows = self.backend.ops, yb.shape[0]
        ys = []
        for k, lay in enumerate(self._y_layout):
            if lay is None:
                ys.append(None)
                continue
            offset, width, shape, labels = lay
            buf = (self._gbuf(("y", k), (rows, width)) if training
                   else ops.empty((rows, width), self.dtype))
            ops.take_cols(yb, offset, buf)
            if labels:
                key = ("labels", k, rows)
                lab = self._grad_bufs.get(key) if training else None
                if lab is None:
                    lab = ops.empty((rows,), np.int64)
                    if training:
                        self._grad_bufs[key] = lab
                ops.to_labels(buf.reshape(rows), lab)
                ys.append(lab)
            else:
                ys.append(buf.reshape((rows,) + shape))
        return ys

    def _unpack_outputs(self, packed):
        """The outputs of a packed prediction (views for host arrays, copies on a
        device)."""
        ops, rows = self.backend.ops, packed.shape[0]
        outs = []
        for offset, width, shape in self._out_layout:
            buf = ops.empty((rows, width), self.dtype)
            ops.take_cols(packed, offset, buf)
            outs.append(buf.reshape((rows,) + shape))
        return outs

    def _output_losses(self, ys, preds, wb, n, training):
        """[(weighted loss, unweighted loss) or None per output] and, in training, the
        gradients ([dL/dy_pred or None])."""
        be, ops = self.backend, self.backend.ops
        losses, grads = [], []
        for k, (loss, lw) in enumerate(zip(self._out_losses, self._out_weights)):
            if loss is None:
                losses.append(None)
                grads.append(None)
                continue
            y_pred = preds[k]
            yl, kw = loss.batch_inputs(ops, ys[k], wb, n, self.dtype, lw)
            layer = self._outputs[k].node.layer
            if training:
                gbuf = self._gbuf(("dloss", k), tuple(y_pred.shape))
                if getattr(layer, "fuse_softmax_loss", False):
                    value, grad = loss.fused(be, yl, layer._z, gbuf, kw)
                else:
                    value = loss.value(be, yl, y_pred, kw)
                    grad = loss.gradient(be, yl, y_pred, gbuf, kw)
                grads.append(grad)
            else:
                value = loss.value(be, yl, y_pred, kw)
            raw = value
            if lw != 1.0:         # the logs show each output's loss unweighted
                yl1, kw1 = loss.batch_inputs(ops, ys[k], wb, n, self.dtype, 1.0)
                raw = loss.value(be, yl1, y_pred, kw1)
            losses.append((value, raw))
        return losses, grads

    def _forward_backward(self, xb, yb, wb=None):
        if not self._multi():
            return super()._forward_backward(xb, yb, wb)
        xs = self._unpack(xb, True) if self._packed else [xb]
        preds = self._graph_forward(xs, True, self.optimizer.iterations)
        ys = self._unpack_y(yb, True)
        self._unpacked = (yb, ys, None, None)     # for the step's metrics
        losses, grads = self._output_losses(ys, preds, wb, xb.shape[0], True)
        trainable = self._trainable_layers()
        if trainable:
            self._graph_backward(grads, trainable)
            for i in trainable:
                self._layers[i].add_regularization_gradients()
        return losses, preds

    def _out_acc(self, acc, k):
        accs = self._out_accs.get(id(acc))
        if accs is None:
            ops = self.backend.ops
            accs = self._out_accs[id(acc)] = [ops.acc_new() for _ in self._outputs]
        return accs[k]

    def _add_loss(self, acc, loss, n):
        if not isinstance(loss, list):
            return super()._add_loss(acc, loss, n)
        ops, first = self.backend.ops, True
        for k, item in enumerate(loss):
            if item is None:
                continue
            value, raw = item
            ops.acc_add(acc, value, n, n if first else 0.0)
            first = False
            ops.acc_add(self._out_acc(acc, k), raw, n, n)

    def _eval_loss(self, acc, yb, y_pred, wb, rows):
        if not self._multi():
            return super()._eval_loss(acc, yb, y_pred, wb, rows)
        ys, preds = self._unpack_y(yb, False), self._unpack_outputs(y_pred)
        self._unpacked = (yb, ys, y_pred, preds)  # for the batch's metrics
        losses, _ = self._output_losses(ys, preds, wb, rows, False)
        self._add_loss(acc, losses, float(rows))

    def _update_metrics(self, ops, yb, y_pred, wb):
        if not self._multi():
            return super()._update_metrics(ops, yb, y_pred, wb)
        if not self._metric_plan:
            return
        # the batch was split for its loss just before: not again
        seen_y, ys, seen_pred, preds = getattr(self, "_unpacked", (None,) * 4)
        if seen_y is not yb:
            ys = self._unpack_y(yb, False)
        if isinstance(y_pred, list):
            preds = y_pred
        elif seen_pred is not y_pred:
            preds = self._unpack_outputs(y_pred)
        for m, weighted, k in self._metric_plan:
            m.update_on(ops, ys[k], preds[k], wb if weighted else None)

    def _reset_metrics(self, ops):
        super()._reset_metrics(ops)
        self._out_accs = {}

    def _extra_sums(self):
        if not self._multi():
            return {}
        ops = self.backend.ops
        return {"output_loss_sums": [list(ops.acc_read(self._out_acc(self._loss_acc, k)))
                                     for k in range(len(self._outputs))]}

    def _restore_extra_sums(self, state):
        sums = state.get("output_loss_sums")
        if not self._multi() or sums is None:
            return
        if not (isinstance(sums, list) and len(sums) == len(self._outputs) and all(
                isinstance(p, list) and len(p) == 2
                and all(isinstance(v, (int, float)) for v in p) for p in sums)):
            raise ValueError(f"backup: malformed output_loss_sums {short_repr(sums)}")
        ops = self.backend.ops
        for k, (total, count) in enumerate(sums):
            ops.acc_add(self._out_acc(self._loss_acc, k), total, 1.0, count)

    def _evaluate_batches(self, batches, cb):
        # the training sums stay; those of earlier evaluations go
        train = id(getattr(self, "_loss_acc", None))
        self._out_accs = {key: v for key, v in self._out_accs.items() if key == train}
        return super()._evaluate_batches(batches, cb)

    def _acc_group(self, acc):
        if not self._multi():
            return [acc]
        return [acc] + [self._out_acc(acc, k) for k in range(len(self._outputs))]

    def _local_logs(self, acc, ops=None):
        if not self._multi():
            return super()._local_logs(acc, ops)
        ops = ops or self.backend.ops
        total, count = ops.acc_read(acc)
        logs = {"loss": total / count if count else 0.0}
        for name, loss, k in zip(self._output_names(), self._out_losses,
                                 range(len(self._outputs))):
            if loss is not None:
                t, c = ops.acc_read(self._out_acc(acc, k))
                logs[f"{name}_loss"] = t / c if c else 0.0
        for m, name in zip(self.metrics, self._metric_names):
            value = np.asarray(m.result())
            logs[name] = float(value) if value.ndim == 0 else value
        return logs

    def _structured_outputs(self, packed):
        """predict's result in the structure of the model's outputs."""
        outs, rows = [], packed.shape[0]
        for offset, width, shape in self._out_layout:
            outs.append(np.ascontiguousarray(packed[:, offset:offset + width]).reshape(
                (rows,) + shape))
        return self._structured(outs, self._output_keys)

    def predict(self, x, *args, **kwargs):
        out = super().predict(x, *args, **kwargs)
        return self._structured_outputs(out) if self._multi() else out

    def predict_on_batch(self, x):
        out = super().predict_on_batch(x)
        return self._structured_outputs(out) if self._multi() else out
