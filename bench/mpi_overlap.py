"""Does a non-blocking allreduce progress while a rank computes?  The question behind
overlapping the gradient reduction with the backward pass (docs/distributed.md).

    mpiexec -n 2 python bench/mpi_overlap.py
    MPIR_CVAR_ASYNC_PROGRESS=1 mpiexec -n 2 python bench/mpi_overlap.py   # MPICH's
                                                     # progress thread, a core a rank

Per round, on a float32 buffer the size of the MNIST MLP's gradients (235,146 values):
the blocking Allreduce alone; an Iallreduce started before 3 ms of computing (NumPy
matmuls, no MPI call) and the Wait after it; and the same 3 ms followed by a blocking
Allreduce.  When the Wait after computing takes as long as the blocking Allreduce, the
transfer did not move while the rank computed, and starting each layer's reduction
during the backward pass cannot hide it.  Prints medians of rank 0 (the first 10
rounds left out).
"""
import time

import numpy as np
from mpi4py import MPI

ROUNDS, COMPUTE_MS, VALUES = 60, 3.0, 235146


def main():
    comm = MPI.COMM_WORLD
    buf = np.ones(VALUES, np.float32)
    a = np.random.default_rng(0).random((256, 256), dtype=np.float32)

    def compute(ms):
        start = time.perf_counter()
        while time.perf_counter() - start < ms / 1e3:
            a @ a

    res = {"blocking Allreduce": [], "Wait after computing": [],
           "compute with Iallreduce": [], "compute then Allreduce": []}
    for _ in range(ROUNDS):
        comm.Barrier()
        t = time.perf_counter()
        comm.Allreduce(MPI.IN_PLACE, buf)
        res["blocking Allreduce"].append(time.perf_counter() - t)
        comm.Barrier()
        t0 = time.perf_counter()
        req = comm.Iallreduce(MPI.IN_PLACE, buf)
        compute(COMPUTE_MS)
        t = time.perf_counter()
        req.Wait()
        res["Wait after computing"].append(time.perf_counter() - t)
        res["compute with Iallreduce"].append(time.perf_counter() - t0)
        comm.Barrier()
        t0 = time.perf_counter()
        compute(COMPUTE_MS)
        comm.Allreduce(MPI.IN_PLACE, buf)
        res["compute then Allreduce"].append(time.perf_counter() - t0)
    if comm.rank == 0:
        print(f"{comm.size} ranks, {VALUES} float32 values, {COMPUTE_MS} ms of compute; "
              f"{MPI.Get_library_version().splitlines()[0]}")
        for key, values in res.items():
            print(f"  {key}: median {np.median(values[10:]) * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
