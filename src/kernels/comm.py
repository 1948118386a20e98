"""Collectives between processes, for data-parallel training: MPI through mpi4py.

``dl.distribution`` trains one model on several processes; what they exchange goes
through a communicator from this module, the only place that imports mpi4py (on first
use: ``import kernels`` and ``import dl`` never load it).

* :func:`world` -- the communicator of every process of the job: an :class:`MPIComm`
  when this process was started by an MPI launcher (``mpiexec``, ``srun``: see
  :func:`launched`), else a :class:`LocalComm` of one process (nothing is exchanged).
* Both have the same methods: ``allreduce_sum`` (in place), ``allgather_rows`` (each
  process's row ``rank`` of a matrix to every process), ``allgather_obj``, ``bcast_obj``,
  ``allgatherv_rows`` (rows of unequal counts, in rank order), ``abort``.
* :func:`ordered_sum` adds the rows of such a matrix in row order: the same bits
  whatever MPI's own reduction algorithm would have done.

Failure, never a hang (``MPIComm``):

* ``install_abort_on_exception()`` makes an uncaught exception print its traceback
  and abort the whole job (``MPI_Abort``), as ``python -m mpi4py`` does: otherwise
  the other processes would wait in their next collective for ever;
* ``set_timeout(seconds)`` starts a watchdog thread: a collective that has not
  returned after ``seconds`` prints what it was waiting in (``where``, e.g. "fit,
  epoch 2, step 17") and aborts the job.

A simulated link (``set_link(latency, bandwidth)``, or the environment variable
``DLKERNELS_SIMULATED_LINK="latency_s,bandwidth_bytes_per_s"``) sleeps before each
collective for the time the cost model of docs/distributed.md gives it on such a link
(a ring: ``2 (p - 1)`` messages of ``nbytes / p`` for an allreduce): the benchmark
checks the model's predictions against it.
"""
import os
import sys
import threading
import time

import numpy as np

__all__ = ["LAUNCH_VARIABLES", "launched", "world", "LocalComm", "MPIComm", "ordered_sum",
           "local_cores"]

# Set by MPI launchers in every process they start: MPICH's Hydra (PMI_*,
# MPI_LOCALNRANKS), Open MPI (OMPI_COMM_WORLD_*), PMIx launchers (PMIX_RANK), Slurm's
# srun with PMI.
LAUNCH_VARIABLES = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK",
                    "MPI_LOCALNRANKS")

_WORLD = None


def launched():
    """Whether an MPI launcher started this process (its environment says so)."""
    return any(name in os.environ for name in LAUNCH_VARIABLES)


def world():
    """The communicator of all the job's processes (made once): MPI's when
    :func:`launched`, else a :class:`LocalComm`."""
    global _WORLD
    if _WORLD is None:
        _WORLD = MPIComm() if launched() else LocalComm()
    return _WORLD


def local_cores():
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def ordered_sum(rows, out):
    """``out = rows[0] + rows[1] + ...``, added in row order (a fixed order of
    operations: the same bits for any MPI build and algorithm)."""
    np.copyto(out, rows[0])
    for r in range(1, rows.shape[0]):
        np.add(out, rows[r], out=out)
    return out


def _parse_link(text):
    try:
        latency, bandwidth = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"DLKERNELS_SIMULATED_LINK: expected 'latency_seconds,"
                         f"bandwidth_bytes_per_second', got {text!r}") from None
    return latency, bandwidth


def _cuda_aware():
    """Whether the loaded MPI library takes device buffers (CUDA-aware): MPICH's and
    Open MPI's ``MPIX_Query_cuda_support()``, looked up in the libmpi this process
    loaded; False where it has none."""
    import ctypes
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "libmpi" in line.split()[-1]}
    except OSError:
        return False
    for path in sorted(paths):
        try:
            query = ctypes.CDLL(path).MPIX_Query_cuda_support
        except (OSError, AttributeError):
            continue
        return bool(query())
    return False


class _Comm:
    """What both communicators share: the simulated link and the waiting label."""

    rank, size, local_rank, local_size = 0, 1, 0, 1
    cuda_aware = False    # whether MPI takes device buffers (MPIX_Query_cuda_support)
    where = ""            # what the process is doing, for the timeout's message

    def __init__(self):
        self.link = None
        text = os.environ.get("DLKERNELS_SIMULATED_LINK")
        if text:
            self.set_link(*_parse_link(text))

    def set_link(self, latency, bandwidth):
        """Simulate a link of ``latency`` seconds per message and ``bandwidth`` bytes
        per second (None: the real transport only)."""
        if latency is None:
            self.link = None
            return
        if not (latency >= 0 and bandwidth > 0):
            raise ValueError(f"latency, bandwidth: expected >= 0 and > 0, got {latency}, "
                             f"{bandwidth}")
        self.link = (float(latency), float(bandwidth))

    def _delay(self, messages, nbytes):
        """Sleep as ``messages`` messages carrying ``nbytes`` in all on the link."""
        latency, bandwidth = self.link
        time.sleep(messages * latency + nbytes / bandwidth)

    def _link_allreduce(self, nbytes):
        p = self.size
        if self.link is not None and p > 1:
            self._delay(2 * (p - 1), 2 * (p - 1) / p * nbytes)

    def _link_allgather(self, nbytes):
        p = self.size
        if self.link is not None and p > 1:
            self._delay(p - 1, (p - 1) * nbytes)


class LocalComm(_Comm):
    """One process: every collective is a copy (or nothing)."""

    def allreduce_sum(self, buf):
        self._link_allreduce(buf.nbytes)
        return buf

    def allgather_rows(self, rows):
        self._link_allgather(rows[0].nbytes)
        return rows

    def allgather_obj(self, obj):
        return [obj]

    def bcast_obj(self, obj):
        return obj

    def allgatherv_rows(self, local, out, counts):
        out[:counts[0]] = local
        return out

    def set_timeout(self, seconds):
        pass

    def install_abort_on_exception(self):
        pass

    def abort(self, code=1):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


class MPIComm(_Comm):
    """``MPI.COMM_WORLD`` (mpi4py), with the node-local rank and size from a
    shared-memory split."""

    def __init__(self):
        super().__init__()
        try:
            from mpi4py import MPI
        except ImportError as exc:
            raise ImportError(
                f"data-parallel training needs mpi4py and an MPI library: pip install "
                f"'dlkernels[mpi]' (mpi4py and MPICH's wheel) ({exc})") from None
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        local = self.comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank, self.local_size = local.Get_rank(), local.Get_size()
        local.Free()
        self.cuda_aware = _cuda_aware()
        self._timeout = None
        self._deadline = None      # monotonic time a collective in progress must end by
        self._watchdog = None

    # --------------------------------------------------------------- collectives
    def _run(self, call, *args):
        """``call(*args)`` watched by the timeout (when set)."""
        if self._timeout is None:
            return call(*args)
        self._deadline = time.monotonic() + self._timeout
        try:
            return call(*args)
        finally:
            self._deadline = None

    def allreduce_sum(self, buf):
        """``buf`` summed over the processes, in place (MPI's algorithm: reproducible
        for a fixed process count, not in a fixed order)."""
        self._link_allreduce(buf.nbytes)
        self._run(self.comm.Allreduce, self.MPI.IN_PLACE, buf, self.MPI.SUM)
        return buf

    def allgather_rows(self, rows):
        """Every process's row ``rows[rank]`` into the other processes' ``rows``
        (a C-contiguous (size, n) matrix), in place."""
        self._link_allgather(rows[0].nbytes)
        self._run(self.comm.Allgather, self.MPI.IN_PLACE, rows)
        return rows

    def allgather_obj(self, obj):
        """The list of every process's ``obj`` (pickled), in rank order."""
        return self._run(self.comm.allgather, obj)

    def bcast_obj(self, obj):
        """Rank 0's ``obj`` on every process."""
        return self._run(self.comm.bcast, obj, 0)

    def allgatherv_rows(self, local, out, counts):
        """The processes' ``local`` row blocks (``counts[r]`` rows from rank r) into
        ``out``, in rank order."""
        row = int(np.prod(out.shape[1:], dtype=np.int64))
        sizes = [c * row for c in counts]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64).tolist()
        send = np.ascontiguousarray(local).reshape(-1)
        self._run(self.comm.Allgatherv, send, [out.reshape(-1), (sizes, offsets)])
        return out

    # ------------------------------------------------------------------- failure
    def abort(self, code=1):
        """End every process of the job (``MPI_Abort``)."""
        sys.stdout.flush()
        sys.stderr.flush()
        self.comm.Abort(code)

    def install_abort_on_exception(self):
        """An uncaught exception prints its traceback, then aborts the job."""
        if getattr(sys.excepthook, "_dlkernels_abort", False):
            return
        previous = sys.excepthook
        comm = self

        def hook(kind, value, tb):
            try:
                sys.stderr.write(f"[rank {comm.rank} of {comm.size}] uncaught exception; "
                                 f"aborting the job\n")
                previous(kind, value, tb)
            finally:
                comm.abort(1)
        hook._dlkernels_abort = True
        sys.excepthook = hook

    def set_timeout(self, seconds):
        """Abort the job when a collective waits longer than ``seconds`` (None: wait
        for ever)."""
        self._timeout = None if seconds is None else float(seconds)
        if self._timeout is not None and self._watchdog is None:
            self._watchdog = threading.Thread(target=self._watch, name="dlkernels-timeout",
                                              daemon=True)
            self._watchdog.start()

    def _watch(self):
        while True:
            timeout = self._timeout
            time.sleep(0.05 if timeout is None else min(0.1, timeout / 10))
            deadline = self._deadline
            if deadline is not None and time.monotonic() > deadline:
                sys.stderr.write(
                    f"[rank {self.rank} of {self.size}] a collective waited more than "
                    f"{self._timeout:g} s ({self.where or 'outside fit'}): another "
                    f"process stopped or stalls; aborting the job\n")
                self.abort(1)
                return
