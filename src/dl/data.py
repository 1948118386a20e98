"""Data that is not one in-memory array: Python generators and iterators,
:class:`PyDataset` (Keras's ``keras.utils.PyDataset``), and NumPy memmaps.

``fit``, ``evaluate`` and ``predict`` take them in place of arrays.  A source gives
each epoch's raw batches ``(x, y, sample_weight)`` (y and the weights None where the
source has none); the trainer checks and converts every batch as it checks arrays, and
copies it into batch buffers of its own, so a dataset larger than memory trains with
the memory of a batch:

* a **generator / iterator** yields batches ``x``, ``(x,)``, ``(x, y)`` or
  ``(x, y, sample_weight)``; ``steps_per_epoch`` batches make an epoch, drawn from the
  same iterator epoch after epoch (without it, the first epoch runs until the iterator
  ends, as Keras's does);
* a **PyDataset** gives batch ``i`` as ``dataset[i]`` for ``i < len(dataset)`` (or its
  ``num_batches``); with ``shuffle`` the batch order is redrawn every epoch (from the
  model's seed, so a resumed run sees the same order); ``workers > 1`` prepares the next
  batches in threads (or, with ``use_multiprocessing``, in forked processes) while the
  kernels train, at most ``max_queue_size`` ahead, in order; ``on_epoch_begin`` and
  ``on_epoch_end`` are called around each epoch;
* a **memmap** ``x`` (and ``y``, ``sample_weight``: memmaps or arrays) is read one
  batch at a time -- rows sliced, or gathered in the epoch's shuffled order -- and the
  pages read are handed back to the kernel after each batch (``madvise``), so the
  process's resident memory stays that of a few batches whatever the file's size.
"""
import concurrent.futures
import itertools
import mmap
import multiprocessing
import os
import warnings

import numpy as np

from kernels.checks import describe, short_repr


class PyDataset:
    """Keras's ``PyDataset``: subclass it with ``__len__`` (the number of batches, or a
    ``num_batches`` property, None for an endless dataset used with
    ``steps_per_epoch``) and ``__getitem__(index)`` returning a batch (``x``,
    ``(x, y)`` or ``(x, y, sample_weight)``).

    Args:
        workers: batches prepared at once (1: in the training thread).
        use_multiprocessing: prepare them in processes (forked: the dataset is not
            pickled) instead of threads.
        max_queue_size: how many batches may be prepared ahead.
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        self._workers = _count("workers", workers)
        if not isinstance(use_multiprocessing, (bool, np.bool_)):
            raise TypeError(f"use_multiprocessing: expected True or False, got "
                            f"{describe(use_multiprocessing)}")
        self._use_multiprocessing = bool(use_multiprocessing)
        self._max_queue_size = _count("max_queue_size", max_queue_size)

    # Keras's properties (a subclass that forgot super().__init__ gets the defaults)
    @property
    def workers(self):
        return getattr(self, "_workers", 1)

    @workers.setter
    def workers(self, value):
        self._workers = _count("workers", value)

    @property
    def use_multiprocessing(self):
        return getattr(self, "_use_multiprocessing", False)

    @use_multiprocessing.setter
    def use_multiprocessing(self, value):
        self._use_multiprocessing = bool(value)

    @property
    def max_queue_size(self):
        return getattr(self, "_max_queue_size", 10)

    @max_queue_size.setter
    def max_queue_size(self, value):
        self._max_queue_size = _count("max_queue_size", value)

    def __getitem__(self, index):
        raise NotImplementedError

    def __iter__(self):
        n = self.num_batches
        for index in (range(n) if n is not None else itertools.count()):
            yield self[index]

    @property
    def num_batches(self):
        """The number of batches (``len(self)``), or None for an endless dataset."""
        if hasattr(self, "__len__"):
            return len(self)
        raise NotImplementedError("You need to implement the `num_batches` property:\n\n"
                                  "@property\ndef num_batches(self):\n  return ...")

    def on_epoch_begin(self):
        """Called at the beginning of every epoch."""

    def on_epoch_end(self):
        """Called at the end of every epoch."""


def _shuffler(seed):
    from .utils import EpochShuffler      # (dl.utils imports this module)
    return EpochShuffler(seed)


def _count(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {short_repr(value)}")
    return int(value)


def is_stream(x):
    """Whether ``x`` is data fit reads batch by batch rather than as arrays."""
    return (isinstance(x, (PyDataset, np.memmap)) or _is_iterator(x))


def _is_iterator(x):
    import types
    return isinstance(x, types.GeneratorType) or (
        hasattr(x, "__next__") and hasattr(x, "__iter__")
        and not isinstance(x, (np.ndarray, list, tuple, dict, str, bytes)))


def unpack(batch, name="x"):
    """``(x, y, sample_weight)`` of a batch given as x, (x,), (x, y) or (x, y, w)."""
    if isinstance(batch, tuple) or (isinstance(batch, list) and len(batch) in (1, 2, 3)
                                    and not _looks_like_rows(batch)):
        if not 1 <= len(batch) <= 3:
            raise ValueError(f"{name}: expected batches (x,), (x, y) or (x, y, "
                             f"sample_weight), got a tuple of {len(batch)}")
        return tuple(batch) + (None,) * (3 - len(batch))
    return batch, None, None


def _looks_like_rows(batch):
    """A list that is itself the rows of x (numbers or lists of numbers)."""
    return all(isinstance(b, (int, float, np.number)) for b in batch)


class Source:
    """Raw batches of an epoch: ``epoch_batches(epoch)`` yields ``(x, y, w)``."""

    steps = None            # batches per epoch, when known
    _shuffler = None

    def reseed(self, seed):
        """Draw the shuffled orders from ``seed`` (fit's model seed, known once a
        BackupAndRestore has restored it)."""
        if self._shuffler is not None:
            self._shuffler = _shuffler(seed)

    def epoch_batches(self, epoch):
        raise NotImplementedError

    def close(self):
        pass


class IteratorSource(Source):
    """A generator or iterator of batches; ``steps`` per epoch (None: to its end)."""

    def __init__(self, iterator, steps, name):
        self._it = iter(iterator)
        self.steps = steps
        self._name = name
        self._peeked = []
        self.exhausted = False

    def peek(self):
        """The first batch, kept for the first epoch (what builds the model)."""
        if not self._peeked:
            try:
                self._peeked.append(next(self._it))
            except StopIteration:
                raise ValueError(f"{self._name}: the generator gave no batch at all") \
                    from None
        return unpack(self._peeked[0], self._name)

    def epoch_batches(self, epoch):
        count = 0
        while self.steps is None or count < self.steps:
            if self._peeked:
                batch = self._peeked.pop()
            else:
                try:
                    batch = next(self._it)
                except StopIteration:
                    self.exhausted = True
                    return
            count += 1
            yield unpack(batch, self._name)


class PyDatasetSource(Source):
    """Batches ``dataset[i]``, in order or shuffled per epoch, prepared ahead by the
    dataset's workers."""

    def __init__(self, dataset, steps, shuffle, seed, name):
        self.dataset = dataset
        try:
            n = dataset.num_batches
        except NotImplementedError:
            n = None
        if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer))
                              or n < 0):
            raise ValueError(f"{name}: expected len() or num_batches to be an int >= 0 or "
                             f"None, got {short_repr(n)}")
        if n is None and steps is None:
            raise ValueError(f"{name}: an endless PyDataset (num_batches None) needs "
                             f"steps_per_epoch (or steps)")
        self.size = n
        self.steps = steps if steps is not None else n
        if self.size is not None and self.steps > self.size:
            self.steps = self.size
        self._shuffler = _shuffler(seed) if shuffle and n else None
        self._name = name
        self._pool = None
        workers = dataset.workers
        if workers > 1:
            if dataset.use_multiprocessing:
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    workers, mp_context=multiprocessing.get_context("fork"))
            else:
                self._pool = concurrent.futures.ThreadPoolExecutor(workers)
        self._ahead = max(1, dataset.max_queue_size)

    def peek(self):
        return unpack(self.dataset[0], self._name)

    def _order(self, epoch):
        if self.size is None:
            return itertools.count()
        order = (self._shuffler.permutation(epoch, self.size) if self._shuffler
                 else np.arange(self.size))
        return iter(order[:self.steps].tolist())

    def epoch_batches(self, epoch):
        self.dataset.on_epoch_begin()
        order = itertools.islice(self._order(epoch), self.steps)
        if self._pool is None:
            for i in order:
                yield unpack(self.dataset[i], self._name)
        else:
            get = _getter(self.dataset)
            pending = []
            for i in itertools.islice(order, self._ahead):
                pending.append(self._pool.submit(get, i))
            while pending:
                batch = pending.pop(0).result()
                nxt = next(order, None)
                if nxt is not None:
                    pending.append(self._pool.submit(get, nxt))
                yield unpack(batch, self._name)
        self.dataset.on_epoch_end()

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _getter(dataset):
    return dataset.__getitem__


class MemmapSource(Source):
    """Batches of rows of memmapped (or in-memory) arrays x, y, w: sliced, or gathered
    in the epoch's shuffled order.  A shuffled batch of a file-backed memmap is read
    with ``os.preadv`` (rows in file order, runs of adjacent rows at once): touching
    scattered rows through the mapping would map their neighbourhoods too (the
    kernel's fault-around), the whole file within one batch.  Sliced batches read
    through the mapping, whose pages are released after each batch (``madvise``)."""

    def __init__(self, x, y, w, batch_size, shuffle, seed):
        self.arrays = (x, y, w)
        self.n = x.shape[0]
        self.batch_size = batch_size
        self.steps = -(-self.n // batch_size)
        self._shuffler = _shuffler(seed) if shuffle and self.steps > 1 else None
        self._maps = [m for m in (_mapping(a) for a in self.arrays) if m is not None]
        self._files = [_file_rows(a) for a in self.arrays]
        self._fds = {}

    def peek(self):
        return tuple(None if a is None else np.asarray(a[:1]) for a in self.arrays)

    def epoch_batches(self, epoch):
        order = None if self._shuffler is None else self._shuffler.permutation(epoch, self.n)
        for lo in range(0, self.n, self.batch_size):
            hi = min(self.n, lo + self.batch_size)
            if order is None:
                rows = slice(lo, hi)
            else:     # sorted, so each batch reads the file in one forward pass
                idx = order[lo:hi]
                rows = np.sort(idx)
                back = np.argsort(np.argsort(idx))
            batch = []
            for a, where in zip(self.arrays, self._files):
                if a is None:
                    batch.append(None)
                elif order is None:
                    batch.append(np.array(a[rows]))     # a copy: nothing keeps the pages
                else:
                    part = (self._pread(a, where, rows) if where is not None
                            else np.array(a[rows]))
                    batch.append(part[back])
            self.release()
            yield tuple(batch)

    def _pread(self, a, where, rows):
        """Rows ``rows`` (sorted) of the file-backed array ``a``, read with preadv."""
        path, pos0, stride = where
        fd = self._fds.get(path)
        if fd is None:
            fd = self._fds[path] = os.open(path, os.O_RDONLY)
        out = np.empty((len(rows),) + a.shape[1:], a.dtype)
        row_bytes = out.itemsize * (out.size // max(1, len(rows)))
        view = memoryview(out.reshape(-1).view(np.uint8))
        # runs of adjacent rows are one read when the rows are packed in the file
        starts = np.flatnonzero(np.diff(rows, prepend=-2) != 1) if stride == row_bytes \
            else np.arange(len(rows))
        ends = np.append(starts[1:], len(rows))
        for k, e in zip(starts.tolist(), ends.tolist()):
            want = (e - k) * row_bytes
            got = os.preadv(fd, [view[k * row_bytes:e * row_bytes]],
                            pos0 + int(rows[k]) * stride)
            if got != want:
                raise OSError(f"x: the file {path!r} ended while reading row {rows[k]} "
                              f"(read {got} of {want} bytes)")
        return out

    def release(self):
        """Drop this process's resident pages of the memmaps (clean file pages: they
        stay in the page cache, and are read again when needed)."""
        for m in self._maps:
            try:
                m.madvise(mmap.MADV_DONTNEED)
            except (OSError, ValueError, AttributeError):     # pragma: no cover
                pass

    def close(self):
        for fd in self._fds.values():
            os.close(fd)
        self._fds = {}


def _file_rows(a):
    """(file path, file position of row 0, row stride in bytes) when ``a``'s rows are
    contiguous rows of a file-backed memmap (read then with preadv), else None."""
    if a is None or not isinstance(a, np.ndarray) or a.ndim == 0 or a.shape[0] == 0:
        return None
    root = a
    while isinstance(root, np.ndarray) and not isinstance(root.base, mmap.mmap):
        root = root.base
    if not isinstance(root, np.memmap) or getattr(root, "filename", None) is None:
        return None
    row = a[0]
    if not (row.flags.c_contiguous or row.ndim == 0) or a.strides[0] < row.nbytes or \
            not a.dtype.isnative:
        return None
    pos0 = root.offset + (a.__array_interface__["data"][0]
                          - root.__array_interface__["data"][0])
    return root.filename, int(pos0), int(a.strides[0])


def _mapping(a):
    """The mmap object behind a memmap (or its base), or None."""
    while a is not None:
        m = getattr(a, "_mmap", None)
        if isinstance(m, mmap.mmap):
            return m
        a = getattr(a, "base", None)
    return None


def make_source(x, y, sample_weight, batch_size, steps, shuffle, seed, name="x"):
    """The source for fit's (or evaluate's, predict's) ``x``: a generator / iterator,
    a PyDataset, or a memmap; batch_size only with the memmap."""
    if isinstance(x, np.memmap):
        if steps is not None:
            warnings.warn(f"steps: ignored for array data (the batches cover the "
                          f"{x.shape[0]} samples)", stacklevel=3)
        return MemmapSource(x, y, sample_weight, batch_size, bool(shuffle), seed)
    if y is not None or sample_weight is not None:
        what = "y" if y is not None else "sample_weight"
        raise ValueError(f"{what}: expected None when x is a generator or a PyDataset "
                         f"(its batches hold the targets and weights), got "
                         f"{describe(y if y is not None else sample_weight)}")
    if isinstance(x, PyDataset):
        return PyDatasetSource(x, steps, bool(shuffle), seed, name)
    return IteratorSource(x, steps, name)
