"""The validated-once training step: ``fit``'s steps through unchecked kernels.

Every public kernel validates its arguments (``kernels.checks``), a few microseconds a
call: for a small model that is most of a training step.  A backend whose ``unchecked``
is not None (the cython backend) also offers private entry points that skip the
checks.  ``fit`` runs the first step of each batch shape through the public kernels,
as every other step runs on other backends (:meth:`Trainer._train_step`); once that
step has succeeded, :meth:`FastStep.build` records the arrays it validated and the
remaining steps of that shape run through the unchecked entry points with exactly
those arrays, giving bit-identical results.

What makes this safe:

- the plan holds its own views of every array it passes (weights, gradients, optimizer
  state, the layers' training buffers): a user changing an array's ``shape`` in place,
  or rebinding ``layer.kernel``, cannot make a compiled kernel read or write outside
  what was validated;
- ``fit`` passes row slices of its own views of the validated x and y (dtype, shape
  and finiteness checked before the loop), or, shuffled, rows of them gathered into
  its own batch buffers; the plan requires x and y C-contiguous and
  sharing no memory with any array the step writes, and holds one row count only (the
  last partial batch gets its own plan, after its own checked step);
- before each step, :meth:`FastStep.current` compares what the plan captured (layers,
  weights, activations, trainable flags, regularizers, loss, optimizer and its
  hyper-parameters and state) with the model's: after any change (by a callback, say)
  that step runs through the public kernels and the plan is rebuilt (unless the
  model changed again before the plan ever ran: that batch shape then stays on the
  public kernels for the rest of the fit);
- sparse labels index the predictions' rows unchecked inside the compiled loss, so
  ``fit`` hands the plan its own int64 copy of them, range-checked before the loop
  (``SparseCategoricalCrossentropy.prepare_targets``): no callback can change them;
- anything the plan does not cover runs as before: layers other than ``Dense`` with a
  default activation, ``TerminateOnNaN``, and any backend without
  ``unchecked`` (numpy, cuda) or model whose steps have no trainable weights.

Inference never uses it: ``predict`` and ``evaluate`` allocate their outputs and call
the public kernels.
"""
import numpy as np

from . import layers as layers_module, losses as losses_module

# Loss classes whose value and gradient the unchecked ``loss`` entry computes: the name
# of their kernel.
_LOSS_KERNELS = {losses_module.MeanSquaredError: "mean_squared_error",
                 losses_module.MeanAbsoluteError: "mean_absolute_error",
                 losses_module.Huber: "huber",
                 losses_module.BinaryCrossentropy: "binary_crossentropy",
                 losses_module.CategoricalCrossentropy: "categorical_crossentropy",
                 **{cls: cls.kernel for cls in (
                     losses_module.Hinge, losses_module.SquaredHinge,
                     losses_module.CategoricalHinge, losses_module.KLDivergence,
                     losses_module.Poisson, losses_module.LogCosh,
                     losses_module.MeanAbsolutePercentageError,
                     losses_module.MeanSquaredLogarithmicError,
                     losses_module.CosineSimilarity)}}
_CROSS_ENTROPIES = (losses_module.BinaryCrossentropy, losses_module.CategoricalCrossentropy)


def _loss_key(loss):
    """What identifies a loss the plan computes (its kernel, the parameter it takes or
    whether it reads logits, its reduction), or None for a loss it does not cover."""
    kind = type(loss)
    if kind is losses_module.SparseCategoricalCrossentropy:
        if loss.ignore_class is not None:
            return None      # targets masked per batch: the checked step does it
        return "sparse", bool(loss.from_logits), loss.reduction
    name = _LOSS_KERNELS.get(kind)
    if name is None:
        return None
    if kind is losses_module.Huber:
        return name, loss.delta, loss.reduction
    if kind in _CROSS_ENTROPIES:
        if loss.label_smoothing:
            return None      # targets smoothed per batch: the checked step does it
        if loss.from_logits:
            name += "_logits"
    return name, 0.0, loss.reduction


def _plain(arr, written=True):
    """A plain C-contiguous ndarray (writeable when ``written``)."""
    return (type(arr) is np.ndarray and arr.flags.c_contiguous
            and (arr.flags.writeable or not written))


class _DenseStep:
    """One Dense layer's forward and backward, on the arrays the checked step used."""

    __slots__ = ("layer", "act", "fused", "linear", "kernel", "bias", "d_kernel", "d_bias",
                 "out", "pre", "saved", "dx", "dz", "x", "identity")

    def __init__(self, layer, uk, x, rows, need_dx):
        shape = (rows, layer.units)
        act = layer.activation
        self.layer = layer
        self.act = uk.activation_id(act.name)
        # a softmax fused into the loss (the last layer): forward keeps the logits and
        # applies the softmax apart; backward receives dL/dlogits and is linear
        self.fused = layer.fuse_softmax_loss
        self.linear = uk.activation_id("linear")
        self.kernel = layer.kernel.view()
        self.bias = layer.bias.view() if layer.use_bias else None
        self.d_kernel = layer.d_kernel.view()
        self.d_bias = layer.d_bias.view() if layer.use_bias else None
        self.out = layer._buffers[("y", shape)].view()
        self.pre = layer._buffers[("z", shape)].view() \
            if act.needs_input or self.fused else None
        self.saved = self.pre if act.needs_input else self.out
        self.dx = layer._buffers[("dx", (rows,) + tuple(layer.input_shape))].view() \
            if need_dx else None
        self.dz = np.empty(shape, layer.dtype)      # dense_backward's scratch
        self.x = x           # None for the first layer: the batch, passed per step
        # what the plan was built from, compared before every step (see current())
        self.identity = (layer.kernel, layer.bias, layer.d_kernel, layer.d_bias, act,
                         layer.trainable, layer.use_bias, layer.kernel_regularizer,
                         layer.bias_regularizer, layer.fuse_softmax_loss,
                         layer.kernel_constraint, layer.bias_constraint)
        if layer.kernel_constraint is not None or layer.bias_constraint is not None:
            raise _Unsupported     # projected after each step: the checked step does it
        for a in (self.kernel, self.bias, self.d_kernel, self.d_bias, self.out, self.pre,
                  self.dx):
            if a is not None and not _plain(a):
                raise _Unsupported

    def current(self):
        layer = self.layer
        i = self.identity
        return (layer.kernel is i[0] and layer.bias is i[1] and layer.d_kernel is i[2]
                and layer.d_bias is i[3] and layer._activation is i[4]
                and layer.trainable is i[5] and layer.use_bias is i[6]
                and layer.kernel_regularizer is i[7] and layer.bias_regularizer is i[8]
                and layer.fuse_softmax_loss is i[9] and layer.kernel_constraint is i[10]
                and layer.bias_constraint is i[11])

    def forward(self, uk, x):
        if self.fused:     # as Dense.forward: the logits, then the softmax apart
            uk.dense_forward(self.linear, x, self.kernel, self.bias, self.pre, None)
            uk.activation(self.act, self.pre, self.out)
        else:
            uk.dense_forward(self.act, x, self.kernel, self.bias, self.out, self.pre)
        return self.out

    def backward(self, uk, dy, x):
        if self.fused:     # dy is dL/dlogits already (Dense.backward passes it as y)
            uk.dense_backward(self.linear, dy, x, self.kernel, dy, self.dz, self.dx,
                              self.d_kernel, self.d_bias)
        else:
            uk.dense_backward(self.act, dy, x, self.kernel, self.saved, self.dz, self.dx,
                              self.d_kernel, self.d_bias)
        return self.dx

    def written(self):
        return [a for a in (self.kernel, self.bias, self.d_kernel, self.d_bias, self.out,
                            self.pre, self.dx, self.dz) if a is not None]


class _Unsupported(Exception):
    pass


class TrainSteps:
    """``fit``'s training steps, by batch size: through a validated-once plan where
    one applies, else the model's checked step.

    A plan for a batch size is built right after a checked step of that size has
    succeeded, and used while :meth:`FastStep.current` says the model is still the one
    it was built from; after a change, that step is checked again and the plan rebuilt
    (unless the model changed again before the plan ever ran: it changes every step,
    and that batch size stays on the checked step for the rest of the fit).

    Args:
        model, backend: the model and its backend.
        x, y, w: the training data and sample weights (or None) as fit placed them;
            plans need fit's own views of them.
        streamed: the data is streamed to a device batch by batch (no plans).
    """

    def __init__(self, model, backend, x, y, w, streamed):
        # by batch rows: None not built yet, False not covered
        self._plans = {} if backend.unchecked is not None and not streamed else None
        if self._plans is not None:
            # batches come from fit's own views of the validated x, y and w
            x, y = x.view(), y.view()
            w = None if w is None else w.view()
        self.x, self.y, self.w = x, y, w
        self._model, self._backend = model, backend

    def run(self, xb, yb, wb=None):
        """One training step on a batch (of rows of :attr:`x`, :attr:`y`, :attr:`w`)."""
        rows = len(xb)
        plans = self._plans
        plan = plans.get(rows) if plans is not None else False
        if plan and plan.current():
            plan.run(xb, yb, wb)
            return
        self._model._train_step(xb, yb, wb)
        if plan is None or (plan and plan.used):
            plans[rows] = FastStep.build(self._model, self._backend, self.x, self.y,
                                         self.w, rows) or False
        elif plan:
            plans[rows] = False


class FastStep:
    """The training step of one model, backend and batch size through unchecked
    kernels; build it with :meth:`build` right after a checked step of that size."""

    @classmethod
    def build(cls, model, backend, x, y, w, rows):
        """A plan for batches of ``rows`` rows sliced from ``x``, ``y`` and the weights
        ``w`` (fit's own views of the validated data; ``w`` may be None), or None when
        the model is not one it covers."""
        if backend.unchecked is None or model._keep_finite_weights:
            return None
        uk = backend.unchecked(model.dtype)
        if uk is None:
            return None
        try:
            return cls(model, backend, uk, x, y, w, rows)
        except (_Unsupported, KeyError):
            return None

    def __init__(self, model, backend, uk, x, y, w, rows):
        layers = list(model._layers)
        if not model._is_chain:
            raise _Unsupported          # a functional graph: the checked step runs it
        if not layers or any(type(layer) is not layers_module.Dense or not layer.built
                             or not layer.activation.is_default
                             or (layer.fuse_softmax_loss and layer is not layers[-1])
                             or layer.dtype != model.dtype for layer in layers):
            raise _Unsupported
        trainable = model._trainable_layers()
        if not trainable:
            raise _Unsupported
        first = trainable[0]
        loss_key = _loss_key(model.loss)
        if loss_key is None:
            raise _Unsupported
        sparse = loss_key[0] == "sparse"
        if sparse:     # labels: fit's own int64 copy, range-checked before the loop
            targets_ok = y.ndim == 1 and y.dtype == np.int64
        else:
            targets_ok = y.ndim == 2 and y.shape[1:] == (layers[-1].units,)
        if not (_plain(x, False) and _plain(y, False) and targets_ok) or x.ndim != 2:
            raise _Unsupported
        if w is not None and not (_plain(w, False) and w.ndim == 1 and w.dtype == x.dtype):
            raise _Unsupported
        self.model, self.backend, self.uk, self.ops = model, backend, uk, backend.ops
        self.rows = rows
        steps = []
        h = None
        for i, layer in enumerate(layers):
            step = _DenseStep(layer, uk, h, rows, need_dx=i > first)
            steps.append(step)
            h = step.out
        self.steps = steps
        self.layers = layers
        self.model_trainable = model.trainable
        self.first = first
        self.backward = steps[first:][::-1]
        self.penalized = [layers[i] for i in trainable if layers[i].has_penalty()]
        last = layers[-1]
        self.grad = last._buffers[("dloss", (rows, last.units))].view()
        if not _plain(self.grad):
            raise _Unsupported
        self.loss = model.loss
        self.loss_key = loss_key
        self.loss_step = self._loss_step(uk, loss_key, last.fuse_softmax_loss)
        params, grads = [], []
        for i in trainable:
            params.extend(layers[i]._trainable_variables)
            grads.extend(layers[i].gradients)
        opt = model.optimizer
        self.optimizer = opt
        self.slots = opt._slots
        self.opt_key = opt._unchecked_key()
        self.update = opt._unchecked_update(backend, uk, params, grads)
        if self.update is None:
            raise _Unsupported
        self.clip = opt.clipvalue is not None or opt.clipnorm is not None \
            or opt.global_clipnorm is not None
        self.grads = grads
        self.used = False       # whether run() ran since the plan was built
        # fit's data shares no memory with anything a step writes
        written = [self.grad] + [a for s in steps for a in s.written()]
        written += [s for slots in opt._slots for s in slots.values()]
        for a in written:
            if np.may_share_memory(a, x) or np.may_share_memory(a, y) or (
                    w is not None and np.may_share_memory(a, w)):
                raise _Unsupported
        # kernel weights != sample weights: a reduction, or compile's loss weight
        self.loss_weight = model._loss_weight
        self.reweighs = model.loss.reweighs or self.loss_weight != 1.0
        self.metric_plan = model._metric_plan
        self.run = self._make_run()

    @staticmethod
    def _loss_step(uk, key, fused):
        """``f(y_true, y_pred or logits, grad) -> loss``: the loss and its gradient, by
        the compiled kernels Trainer._forward_backward's public ones run."""
        name, param, _ = key
        if fused and name == "sparse":
            return lambda t, z, out, w: uk.sparse_crossentropy(True, t, z, out, w)
        if fused:
            if name != "categorical_crossentropy":
                raise _Unsupported
            return uk.softmax_crossentropy
        if name == "sparse":
            return lambda t, p, out, w: uk.sparse_crossentropy(param, t, p, out, w)
        loss_id = uk.loss_id(name)
        return lambda t, p, out, w: uk.loss(loss_id, param, t, p, out, w)

    def current(self):
        """Whether the model is still the one this plan was built from."""
        model = self.model
        if (model._layers != self.layers or model.trainable is not self.model_trainable
                or model._keep_finite_weights or model.loss is not self.loss
                or model.optimizer is not self.optimizer
                or self.optimizer._slots is not self.slots
                or _loss_key(self.loss) != self.loss_key
                or self.optimizer._unchecked_key() != self.opt_key
                or model._metric_plan is not self.metric_plan
                or model._loss_weight != self.loss_weight):
            return False
        for step in self.steps:
            if not step.current():
                return False
        return True

    def _make_run(self):
        """:meth:`run` for this plan: a closure over what the plan fixed at build time
        (its steps, buffers, loss and optimizer entries), so that a step spends no
        time looking them up (the seed program's step is a few microseconds)."""
        uk, model, ops = self.uk, self.model, self.ops
        steps, backward = tuple(self.steps), tuple(self.backward)
        penalized = tuple(self.penalized)
        last = steps[-1]
        fused = last.fused
        loss_step, grad, rows = self.loss_step, self.grad, self.rows
        n = float(rows)
        acc_add = ops.acc_add
        opt, clip, grads, update = self.optimizer, self.clip, self.grads, self.update
        metric_plan = tuple(self.metric_plan)
        reweighs, loss, loss_weight = self.reweighs, self.loss, self.loss_weight
        plan = self

        def run(xb, yb, wb=None):
            """One training step on a batch of ``rows`` rows of fit's x, y and weights:
            the same operations, in the same order, as :meth:`Trainer._train_step`."""
            plan.used = True
            h = xb
            for s in steps:
                h = s.forward(uk, h)
            kw = (loss.kernel_weights(ops, wb, rows, model.dtype, loss_weight) if reweighs
                  else wb)
            value = loss_step(yb, last.pre if fused else h, grad, kw)
            dy = grad
            for s in backward:
                dy = s.backward(uk, dy, xb if s.x is None else s.x)
            for layer in penalized:
                layer.add_regularization_gradients()
            acc = model._loss_acc
            acc_add(acc, value, n, n)
            for layer in penalized:
                layer.add_penalty(acc, n)
            if clip:
                opt._clip(grads)
            update()
            opt.iterations += 1
            for m, weighted in metric_plan:
                m.update_on(ops, yb, h, wb if weighted else None)
        return run
