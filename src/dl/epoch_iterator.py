"""The batches of ``fit``: one iterator over an epoch, whatever the data's place.

``fit`` asks :class:`EpochIterator` for each epoch's ``(step, x_batch, y_batch,
w_batch)`` (``w_batch`` the batch's sample weights, None without) and
does not see where they come from.  There are three sources (Keras keeps the same idea
in its ``EpochIterator``):

* **sliced** -- no shuffling (``shuffle=False``, or one batch holds every sample: the
  gradient is a sum, only its rounding could differ): row slices of the data, no copy;
* **gathered** -- shuffled, the data where the backend computes (host arrays, or device
  arrays copied there once): ``ops.take_rows`` gathers the batch's rows into a batch
  buffer allocated once, so the dataset is never copied per epoch;
* **streamed** -- the data too large for the device (it stayed on the host): the rows
  are gathered on the host into page-locked buffers, then copied into the device batch
  buffers, batch by batch.

The epoch's order is drawn from the model's seed and the epoch number
(:class:`dl.utils.EpochShuffler`), so a resumed run sees the same batches.

Under data parallelism (``part``: this process's slice of every batch, see
:func:`bounds`) a drawn batch is gathered only in this process's rows of the batch
buffer: the step reads no other row, and each process gathers its share, not the
whole batch.
"""
import numpy as np

from . import utils


def bounds(rows, parts, index):
    """``(lo, hi)``: the rows of slice ``index`` when ``rows`` are cut into ``parts``
    contiguous slices (the first ``rows % parts`` one row longer): data parallelism's
    slice of a batch for each process."""
    base, extra = divmod(rows, parts)
    lo = index * base + min(index, extra)
    return lo, lo + base + (1 if index < extra else 0)


def steps_for(n, batch_size):
    """Batches of ``batch_size`` covering ``n`` samples, in integers: ``n / batch_size``
    underflows to 0.0 for a huge batch size, and no batch would run."""
    return -(-n // batch_size)


class EpochIterator:
    """The batches of ``x``, ``y`` and the sample weights ``w`` (placed where the
    backend computes, or host arrays to stream) in ``batch_size`` rows, the last one
    partial.

    Args:
        x, y: the training data, one sample per row.
        w: the samples' weights (n,), or None.
        batch_size: rows per batch.
        ops: the backend's array operations.
        shuffle: draw a new order each epoch.
        seed: the model's seed (the shuffling's).
        part: None, or ``(index, parts)``: only slice ``index`` of ``parts`` of each
            drawn batch is read (data parallelism), and only its rows are gathered.
    """

    def __init__(self, x, y, w, batch_size, ops, shuffle, seed, part=None):
        self.x, self.y, self.w = x, y, w
        self._part = part
        self.n = x.shape[0]
        self.batch_size = batch_size
        self.steps = steps_for(self.n, batch_size)
        self._ops = ops
        # one batch holds every sample whatever the order: nothing to shuffle
        self._shuffler = utils.EpochShuffler(seed) if shuffle and self.steps > 1 else None
        self.streamed = self.streams(x, ops)
        # sliced: the same row slices every epoch, made once (views, no copy; a small
        # model's epoch is a few microseconds, of which a generator would be a tenth)
        self._slices = None
        if self._shuffler is None and not self.streamed:
            self._slices = tuple((step, x[lo:lo + batch_size], y[lo:lo + batch_size],
                                  None if w is None else w[lo:lo + batch_size])
                                 for step, lo in enumerate(range(0, self.n, batch_size)))
            return
        # gathered or streamed: batch buffers where the backend computes, allocated once
        rows = min(batch_size, self.n)
        self._xbuf = ops.empty((rows,) + tuple(x.shape[1:]), x.dtype)
        self._ybuf = ops.empty((rows,) + tuple(y.shape[1:]), y.dtype)
        self._wbuf = None if w is None else ops.empty((rows,), w.dtype)
        if self.streamed:
            self._xpin = ops.pinned_empty(self._xbuf.shape, x.dtype)
            self._ypin = ops.pinned_empty(self._ybuf.shape, y.dtype)
            self._wpin = None if w is None else ops.pinned_empty((rows,), w.dtype)

    @staticmethod
    def streams(x, ops):
        """Whether placed data ``x`` is streamed: left on the host for a device."""
        return ops.on_device and isinstance(x, np.ndarray)

    def batches(self, epoch, start=0):
        """``(step, x_batch, y_batch, w_batch)`` for every batch of ``epoch`` from step
        ``start``
        on (a resumed epoch), in its order.  A batch is valid until the next one is
        drawn (it may live in a reused buffer)."""
        if self._slices is not None:
            return self._slices[start:] if start else self._slices
        return self._drawn(epoch, start)

    def _rows(self, m):
        """The rows of a batch of ``m`` rows to gather (all, or this process's)."""
        return (0, m) if self._part is None else bounds(m, self._part[1], self._part[0])

    def _drawn(self, epoch, start):
        """The batches of a shuffled or streamed epoch, each drawn when it is needed
        (with ``part``, only its rows of each)."""
        x, y, n, size, ops, streamed = (self.x, self.y, self.n, self.batch_size, self._ops,
                                        self.streamed)
        order = self._shuffler.permutation(epoch, n) if self._shuffler else None
        if order is not None and not streamed:
            order = ops.to_device(order.astype(np.int64, copy=False))
        for step in range(start, self.steps):
            lo = step * size
            hi = min(n, lo + size)
            m = hi - lo
            if streamed:
                xb, yb, wb = self._streamed(order, lo, hi)
            else:
                a, b = self._rows(m)
                idx = order[lo + a:lo + b]
                xb, yb = self._xbuf[:m], self._ybuf[:m]
                wb = None if self.w is None else self._wbuf[:m]
                if b > a:
                    ops.take_rows(x, idx, xb[a:b])
                    ops.take_rows(y, idx, yb[a:b])
                    if wb is not None:
                        ops.take_rows(self.w, idx, wb[a:b])
            yield step, xb, yb, wb

    def _streamed(self, order, lo, hi):
        """Rows lo:hi (of the epoch's order) gathered on the host into the page-locked
        buffers, then copied into the device batch buffers."""
        m = hi - lo
        first, last = self._rows(m)
        sources = [(self.x, self._xpin, self._xbuf), (self.y, self._ypin, self._ybuf)]
        if self.w is not None:
            sources.append((self.w, self._wpin, self._wbuf))
        batches = []
        for a, pin, buf in sources:
            if last > first:
                pin = pin[first:last]
                if order is None:
                    pin[...] = a[lo + first:lo + last]
                else:
                    np.take(a, order[lo + first:lo + last], axis=0, out=pin)
                self._ops.copy_from_host(buf[first:last], pin)
            batches.append(buf[:m])
        if self.w is None:
            batches.append(None)
        return tuple(batches)
