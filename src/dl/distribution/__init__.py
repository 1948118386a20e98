"""Data-parallel training over MPI, in Keras 3's ``keras.distribution`` spelling.

>>> dl.distribution.set_distribution(dl.distribution.DataParallel())
>>> model.fit(x, y, batch_size=256)      # 256: the global batch, split among the ranks

or, for unchanged scripts, the launcher: ``mpiexec -n 4 python -m dl.distribution
train.py`` (see ``python -m dl.distribution --help`` and docs/distributed.md).

Every process (rank) holds the whole model and the whole dataset; ``fit`` broadcasts
rank 0's weights, every rank draws the same epoch order and computes the gradients of
its contiguous slice of each global batch, and one reduction per step sums them (each
scaled by its slice's share of the batch), so every rank applies the same update.
The logs (loss and metric sums) are reduced too: every callback sees the same numbers
on every rank.  The transport is MPI through :mod:`kernels.comm` (mpi4py, loaded only
when the process was started by an MPI launcher).

``DataParallel(simulate=N)`` runs the N slices one after the other in one process:
with ``reduction="ordered"``, N real processes give the same bits.
"""
import contextlib
import math
import os

import numpy as np

import kernels
from kernels import comm as comm_module
from kernels.checks import describe, short_repr

__all__ = ["DataParallel", "set_distribution", "distribution", "list_devices",
           "process_rank", "writes_files"]

_CURRENT = None          # set_distribution's
REDUCTIONS = ("sum", "ordered")


def distribution():
    """The distribution set by :func:`set_distribution` (or a ``scope``), or None."""
    return _CURRENT


def set_distribution(value):
    """Make ``value`` (a :class:`DataParallel`, or None) the distribution every
    ``fit``, ``evaluate`` and ``predict`` uses.  On several processes this also makes
    an uncaught exception abort the whole job (with its traceback) rather than leave
    the other ranks waiting."""
    global _CURRENT
    if value is not None and not isinstance(value, DataParallel):
        raise TypeError(f"value: expected a dl.distribution.DataParallel or None, got "
                        f"{describe(value)}")
    _CURRENT = value
    if value is not None:
        value.comm.install_abort_on_exception()


def list_devices(device_type=None):
    """The devices data parallelism runs on here: one per process of the job
    (``"cpu:<rank>"``, or ``"gpu:<rank>"`` with ``device_type="gpu"``)."""
    if device_type not in (None, "cpu", "gpu"):
        raise ValueError(f"device_type: expected None, 'cpu' or 'gpu', got "
                         f"{short_repr(device_type)}")
    size = comm_module.world().size
    return [f"{device_type or 'cpu'}:{r}" for r in range(size)]


def process_rank():
    """This process's rank under the current distribution (0 without one, or with
    one of a single process)."""
    dist = _CURRENT
    return 0 if dist is None or dist.simulate is not None else dist.process_id


def writes_files():
    """Whether this process writes files (``save``, ``ModelCheckpoint``,
    ``CSVLogger``, ``BackupAndRestore``): under a distribution over several processes
    only rank 0 does, each file written once."""
    return process_rank() == 0


class DataParallel:
    """Data parallelism: the model replicated on every process of the MPI job, the
    global batch split among them.

    Args:
        devices: None (every process of the job), or a list of one entry per
            process (as :func:`list_devices` gives): checked, no other choice exists.
        reduction: ``"sum"`` (MPI's Allreduce: the fastest; reproducible run to run for
            a fixed number of processes) or ``"ordered"`` (an Allgather, then the
            rank-order sum: the same bits as ``simulate=N`` on one process, whatever
            the MPI library).
        simulate: None, or N: run the N ranks' slices one after the other in this one
            process (the reduction is then the rank-order sum).
        timeout: None, or seconds: abort the job (with the step it waited at) when a
            collective waits longer, e.g. for a killed or stalled rank.

    Attributes: ``timings`` (``steps``, ``step_s``, ``reduce_s``: the training steps
    applied, their seconds and those spent in the reduction, over every ``fit``),
    ``num_processes`` and ``process_id`` (MPI's size and rank),
    ``num_replicas`` (the slices a batch is split into: ``simulate`` or the
    processes), ``local_rank`` / ``local_size`` (on this node), ``num_threads`` (the
    kernel threads given to each process: the node's cores divided by its ranks,
    unless ``DLKERNELS_NUM_THREADS`` / ``OMP_NUM_THREADS`` say otherwise), ``gpu``
    (the GPU a cuda-backend rank uses: its local rank modulo the node's GPUs),
    ``cuda_aware_mpi`` (whether the MPI library takes device buffers, detected; the
    reduction goes through host memory either way in this version).
    """

    def __init__(self, devices=None, *, reduction="sum", simulate=None, timeout=None):
        if not isinstance(reduction, str) or reduction not in REDUCTIONS:
            raise ValueError(f"reduction: expected 'sum' or 'ordered', got "
                             f"{short_repr(reduction)}")
        if simulate is not None:
            if isinstance(simulate, bool) or not isinstance(simulate, (int, np.integer)) \
                    or simulate < 1:
                raise ValueError(f"simulate: expected None or an int >= 1, got "
                                 f"{short_repr(simulate)}")
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(
                    timeout, (int, float, np.integer, np.floating)) or \
                    not (math.isfinite(timeout) and timeout > 0):
                raise ValueError(f"timeout: expected None or a positive number of "
                                 f"seconds, got {short_repr(timeout)}")
        self.reduction = reduction
        self.simulate = None if simulate is None else int(simulate)
        self.timeout = None if timeout is None else float(timeout)
        self.comm = comm_module.LocalComm() if simulate is not None else comm_module.world()
        self.num_processes = self.comm.size
        self.process_id = self.comm.rank
        self.local_rank, self.local_size = self.comm.local_rank, self.comm.local_size
        self.num_replicas = (self.simulate if self.simulate is not None
                             else self.num_processes)
        self.cuda_aware_mpi = self.comm.cuda_aware
        if devices is not None:
            if not isinstance(devices, (list, tuple)) or len(devices) != self.num_processes:
                raise ValueError(f"devices: expected None or a list of {self.num_processes} "
                                 f"devices (one per process: {list_devices()}), got "
                                 f"{short_repr(devices)}")
        self.devices = list(devices) if devices is not None else list_devices()
        self.num_threads = None
        self.gpu = None
        # what fit measured (all fits under this distribution): the training steps
        # applied, their seconds, and the seconds spent in the reduction
        self.timings = {"steps": 0, "step_s": 0.0, "reduce_s": 0.0}
        if self.num_processes > 1:
            self._share_node()
            self.comm.set_timeout(timeout)

    def _share_node(self):
        """Kernel threads and the GPU of this rank, from the ranks on its node."""
        if not (os.environ.get("DLKERNELS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")):
            self.num_threads = max(1, comm_module.local_cores() // self.local_size)
            kernels.set_num_threads(self.num_threads)
        gpus = _local_gpus()
        if gpus:
            self.gpu = gpus[self.local_rank % len(gpus)]
            if "numba" not in __import__("sys").modules:
                # before the CUDA driver starts: this rank sees (as device 0) its GPU only
                os.environ["CUDA_VISIBLE_DEVICES"] = self.gpu

    @property
    def distributed(self):
        """Whether a batch is split at all (more than one replica)."""
        return self.num_replicas > 1

    @contextlib.contextmanager
    def scope(self):
        """``with DataParallel().scope():`` -- this distribution for the ``fit``,
        ``evaluate`` and ``predict`` calls within the block (the previous one after
        it)."""
        global _CURRENT
        previous = _CURRENT
        set_distribution(self)
        try:
            yield self
        finally:
            _CURRENT = previous

    def __repr__(self):
        what = (f"simulate={self.simulate}" if self.simulate is not None
                else f"{self.num_processes} processes, rank {self.process_id}")
        return f"DataParallel({what}, reduction={self.reduction!r})"


def _local_gpus():
    """The GPUs of this node as CUDA_VISIBLE_DEVICES entries ("0", "1"... or the ones
    the variable lists), without starting CUDA: the driver's /proc entries.  Under
    Numba's simulator (NUMBA_ENABLE_CUDASIM=1): its one device."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return ["0"]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [v for v in visible.split(",") if v.strip()]
    try:
        count = len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        return []
    return [str(i) for i in range(count)]


def active(model):
    """The distribution ``fit`` / ``evaluate`` / ``predict`` of ``model`` use now (the
    current one), or None when there is none or it splits nothing."""
    dist = _CURRENT
    return dist if dist is not None and dist.distributed else None
