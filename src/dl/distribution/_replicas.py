"""What a :class:`dl.distribution.DataParallel` changes in ``fit``, ``evaluate`` and
``predict``: :class:`Replicas`, one per call, on the model's trainer hooks.

A training step (:meth:`Replicas.step`) on a global batch of B rows:

1. the batch is cut into ``num_replicas`` contiguous slices (:func:`bounds`: the first
   ``B % N`` slices one row longer); rank r takes slice r (``simulate=N``: every slice
   in turn, in this process);
2. the slice's forward, loss and backward run as in one process (``Trainer.
   _forward_backward``, its Dropout masks the rows of the global batch's:
   ``Layer._batch_part``);
3. its gradients, scaled by the slice's share ``b_r / B`` of the batch, and the state a
   training forward updates (BatchNormalization's moving statistics, scaled the same
   way) are written into one flat buffer, made once per layout, followed by two flags:
   "a rank asked to stop" and "a rank's loss is not finite";
4. one reduction sums the buffers: ``reduction="sum"`` MPI's Allreduce;
   ``"ordered"`` and ``simulate`` an Allgather (or the simulated slices' rows) added in
   rank order (``kernels.comm.ordered_sum``), the same bits either way;
5. the sums are copied back, and the step ends as in one process (loss and penalty
   sums, optimizer, constraints, metrics), or, when a rank asked to stop, ends
   there without updating anything.

The loss and metric sums stay per rank; :meth:`Replicas.logs` adds every rank's (in
rank order) whenever logs are read, so every rank's callbacks see the same numbers.
"""
import contextlib
import time

import numpy as np

from kernels import comm as comm_module

from ..epoch_iterator import bounds


def _sum_states(states):
    """The element-wise sum, in list order, of nested states (numbers, lists, dicts of
    lists; None for a metric that saw nothing yet)."""
    present = [s for s in states if s is not None]
    if not present:
        return None
    first = present[0]
    if isinstance(first, dict):
        return {k: _sum_states([s[k] for s in present]) for k in first}
    if isinstance(first, (list, tuple)):
        return [_sum_states([s[i] for s in present]) for i in range(len(first))]
    total = first
    for s in present[1:]:
        total = total + s
    return total


class Replicas:
    """One ``fit`` / ``evaluate`` / ``predict`` of ``model`` under ``dist``."""

    def __init__(self, dist, model):
        self.dist, self.model = dist, model
        self.comm = dist.comm
        self.parts = dist.num_replicas
        self.simulated = dist.simulate is not None
        self.rank = 0 if self.simulated else dist.process_id
        self.ordered = self.simulated or dist.reduction == "ordered"
        self._layout_key = None
        self.step_number = 0
        # the training steps applied, their seconds, and the seconds in the reduction
        # (the collective and the rank-order sum), added into the DataParallel's
        self.timings = dist.timings

    # ------------------------------------------------------------------ layout
    def _layout(self):
        """The gradients and the training-updated state, and the flat buffers (made
        again only when the model's trainable arrays changed)."""
        model = self.model
        params, grads = model._step_params()
        states = [w for layer in model._layers for w in layer._training_state()]
        key = tuple(map(id, grads)) + (None,) + tuple(map(id, states))
        if key != self._layout_key:
            self._layout_key = key
            arrays = grads + states
            offsets, at = [], 0
            for a in arrays:
                offsets.append((at, at + a.size, tuple(a.shape)))
                at += a.size
            self.params, self.grads, self.states = params, grads, states
            self.spans = offsets
            self.size = at + 2
            dtype = np.dtype(model.dtype)
            self.flat = np.zeros(self.size, dtype)
            self.rows = (np.zeros((self.parts, self.size), dtype) if self.ordered else None)
            self.saved = None
        return self.params, self.grads

    def _pack(self, out, share):
        """``share`` x (each gradient and state array) into ``out``'s spans."""
        ops = self.model.backend.ops
        s = out.dtype.type(share)
        for a, (lo, hi, shape) in zip(self.grads + self.states, self.spans):
            view = out[lo:hi].reshape(shape)
            np.multiply(ops.to_host(a) if ops.on_device else a, s, out=view)

    def _unpack(self):
        ops = self.model.backend.ops
        flat = self.flat
        for a, (lo, hi, shape) in zip(self.grads + self.states, self.spans):
            view = flat[lo:hi].reshape(shape)
            if ops.on_device:
                ops.copy_from_host(a, view)
            else:
                np.copyto(a, view)

    def _save_states(self):
        """A copy of the training-updated state (restored before each simulated slice,
        and when a step is cancelled)."""
        ops = self.model.backend.ops
        if not self.states:
            self.saved = []
            return
        self.saved = [np.array(ops.to_host(a), copy=True) for a in self.states]

    def _restore_states(self):
        ops = self.model.backend.ops
        for a, value in zip(self.states, self.saved):
            if ops.on_device:
                ops.copy_from_host(a, value)
            else:
                np.copyto(a, value)

    # -------------------------------------------------------------------- step
    def _slice(self, xb, yb, wb, lo, hi):
        model = self.model
        model._set_batch_part(lo, xb.shape[0])
        return xb[lo:hi], yb[lo:hi], None if wb is None else wb[lo:hi]

    def _local(self, xb, yb, wb, index, out):
        """Slice ``index``'s forward and backward; its scaled arrays into ``out``.
        Returns ``(loss, y_pred, rows, x, y, w, loss_ok)``, or None for an empty
        slice."""
        model = self.model
        total = xb.shape[0]
        lo, hi = bounds(total, self.parts, index)
        if hi == lo:
            out[:] = 0
            return None
        xs, ys, ws = self._slice(xb, yb, wb, lo, hi)
        loss, y_pred = model._forward_backward(xs, ys, ws)
        self._pack(out, (hi - lo) / total)
        ok = not model._keep_finite_weights or model._step_loss_finite(loss)
        return loss, y_pred, hi - lo, xs, ys, ws, ok

    def step(self, xb, yb, wb=None, watch_stop=True):
        """One training step on the global batch ``xb``, ``yb``, ``wb``.  Returns False
        when a rank asked to stop (``model.stop_training``, when ``watch_stop``: fit's
        steps; the step then changed nothing), else None."""
        model = self.model
        start = time.perf_counter()
        self.step_number += 1
        self.comm.where = f"fit, step {self.step_number}"
        params, grads = self._layout()
        flat, size = self.flat, self.size
        try:
            if self.simulated:
                results = self._simulated(xb, yb, wb)
            else:
                if self.states:
                    self._save_states()
                out = self.rows[self.rank] if self.ordered else flat
                result = self._local(xb, yb, wb, self.rank, out)
                out[size - 2] = 1 if watch_stop and model.stop_training else 0
                out[size - 1] = 0 if result is None or result[-1] else 1
                reduce_start = time.perf_counter()
                if self.ordered:
                    self.comm.allgather_rows(self.rows)
                    comm_module.ordered_sum(self.rows, flat)
                else:
                    self.comm.allreduce_sum(flat)
                self.timings["reduce_s"] += time.perf_counter() - reduce_start
                results = [] if result is None else [result]
        finally:
            model._set_batch_part(None, None)
        if flat[size - 2] > 0:        # a rank's callback asked to stop: as one process,
            if self.states:           # the previous step was the last
                self._restore_states()
            model.stop_training = True
            return False
        self._unpack()
        ops = model.backend.ops
        if model._keep_finite_weights and (flat[size - 1] > 0 or not ops.all_finite(grads)):
            params = []
            model._nonfinite_step = True
        for loss, _, rows, _, _, _, _ in results:
            model._add_loss(model._loss_acc, loss, float(rows))
            model._add_penalty(model._loss_acc, float(rows))
        model._apply_step(params, grads)
        if not self.simulated:      # (simulated slices updated them as they went)
            for _, y_pred, _, _, ys, ws, _ in results:
                model._update_metrics(ops, ys, y_pred, ws)
        self.timings["steps"] += 1
        self.timings["step_s"] += time.perf_counter() - start
        return None

    def _simulated(self, xb, yb, wb):
        """Every slice in turn (from the same state), each into its row; the rows
        added in order."""
        model = self.model
        self._save_states()
        results = []
        for index in range(self.parts):
            if index and self.states:
                self._restore_states()
            row = self.rows[index]
            result = self._local(xb, yb, wb, index, row)
            row[self.size - 2] = 0
            row[self.size - 1] = 0 if result is None or result[-1] else 1
            if result is not None:
                # the metrics read y_pred, a buffer the next slice overwrites: now
                loss, y_pred, rows, xs, ys, ws, ok = result
                model._update_metrics(model.backend.ops, ys, y_pred, ws)
                results.append(result)
        comm_module.ordered_sum(self.rows, self.flat)
        return results

    # -------------------------------------------------------------- agreement
    def agree(self, error):
        """Raise on every rank the first error (rank order) any rank met (``error``:
        this rank's exception or None), naming that rank."""
        if self.simulated:
            if error is not None:
                raise error
            return
        found = self.comm.allgather_obj(
            None if error is None else (type(error).__name__, str(error)))
        for rank, item in enumerate(found):
            if item is not None:
                kind, message = item
                cls = {"TypeError": TypeError, "ValueError": ValueError}.get(kind,
                                                                             RuntimeError)
                raise cls(f"rank {rank} of {self.parts}: {message}") from (
                    error if rank == self.rank else None)

    def any(self, flag):
        """Whether ``flag`` is true on any rank (the same answer on every rank)."""
        if self.simulated:
            return bool(flag)
        return any(self.comm.allgather_obj(bool(flag)))

    def same_rows(self, n, name):
        """Every rank must pass the same number of samples."""
        if self.simulated:
            return
        counts = self.comm.allgather_obj(int(n))
        if len(set(counts)) > 1:
            raise ValueError(f"{name}: expected the same data on every rank (data "
                             f"parallelism splits each global batch), got "
                             f"{', '.join(f'rank {r}: {c} samples' for r, c in enumerate(counts))}")

    def broadcast_model(self):
        """Rank 0's weights, seed and optimizer state on every rank (fit's start)."""
        if self.simulated:
            return
        model = self.model
        opt = model.optimizer
        state = (model.seed, model.get_weights(),
                 opt.get_state() if opt.built else None, opt.iterations)
        seed, weights, opt_state, iterations = self.comm.bcast_obj(
            state if self.rank == 0 else None)
        if self.rank == 0:
            return
        model.seed = seed
        for layer in model._layers:
            if hasattr(layer, "model_seed"):
                layer.model_seed = seed
        model.set_weights(weights)
        if opt_state is not None:
            params = [w for i in model._trainable_layers()
                      for w in model._layers[i]._trainable_variables]
            opt.set_state(opt_state, params, model.backend.ops)
        opt.iterations = iterations

    # -------------------------------------------------------------------- logs
    def logs(self, acc):
        """The logs of every rank's sums (``acc`` and the metrics), added in rank
        order: the same on every rank."""
        with self.all_sums(acc):
            return self.model._local_logs(acc)

    @contextlib.contextmanager
    def all_sums(self, acc):
        """Within it, ``acc`` and the metrics hold the sums of every rank (added in
        rank order), then this rank's again."""
        model = self.model
        if self.simulated:
            yield
            return
        self.comm.where = f"logs after step {self.step_number}"
        local = model._sum_state(acc)
        model._load_sum_state(acc, _sum_states(self.comm.allgather_obj(local)))
        try:
            yield
        finally:
            model._load_sum_state(acc, local)

    def eval_slice(self, xb, yb, wb):
        """This rank's rows of an evaluation batch, or None when it has none."""
        lo, hi = bounds(xb.shape[0], self.parts, self.rank)
        if hi == lo:
            return None
        return xb[lo:hi], yb[lo:hi], None if wb is None else wb[lo:hi]

    def gather_predictions(self, local):
        """Every rank's predictions ``local`` (rank r: rows ``bounds(n, N, r)``, fewer
        where a callback stopped it) in rank order, on every rank."""
        self.comm.where = "predict"
        counts = self.comm.allgather_obj(int(local.shape[0]))
        out = np.empty((sum(counts),) + local.shape[1:], local.dtype)
        self.comm.allgatherv_rows(local, out, counts)
        return out
