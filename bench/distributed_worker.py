"""The worker of bench/test_bench_distributed.py: trains the MNIST MLP and measures its
steps from inside, then writes JSON.

One process (``python bench/distributed_worker.py --out PATH ...``) or data-parallel
under the launcher (``mpiexec -n 2 python -m dl.distribution
bench/distributed_worker.py --out PATH ...``, which sets ``DataParallel()``).  Kernel
threads come from the environment (``DLKERNELS_NUM_THREADS``).

What it does, on every rank:

1. the data of bench/test_bench_training.py's ``mlp_data`` fixture (``--samples`` rows
   of 784 random float32 values in [0, 1), labels 0-9 the argmax of a fixed random
   linear map, seed 20240601), the MLP (784 -> Dense 256 relu -> 128 relu -> 10
   softmax, sparse categorical cross-entropy, Adam, cython, float32, seed 0);
2. the loss on the first 4096 samples (``evaluate``), a warm-up ``fit`` of
   ``--warmup-steps`` steps;
3. one ``fit(x, y, batch_size=--batch, epochs=1, verbose=0)`` per entry of ``--links``
   (``none``: no simulated link; ``env``: the link ``DLKERNELS_SIMULATED_LINK`` set when
   the communicator was made; ``LAT,BW``: that link, through ``comm.set_link``), so
   that fits with and without a link alternate in one job.  A callback takes
   ``time.perf_counter()`` and a copy of ``DataParallel.timings`` at every
   ``on_train_batch_begin`` and at ``on_epoch_end``: per step, the wall time from one
   step's start to the next's (``wall_s``: the batch gather, the step, the hooks) and,
   under a distribution, the deltas of ``timings`` (``step_s``: the step, reduction
   included; ``reduce_s``: the reduction alone);
4. the loss on the same 4096 samples again.

Rank 0 writes ``--out``: the settings, the parameter count, the losses, every fit's
per-step lists (rank 0's) and every rank's medians.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

import dl
import kernels

N_FEATURES, N_CLASSES = 784, 10
HIDDEN = (256, 128)
DATA_SEED = 20240601       # bench/test_bench_training.py's mlp_data
CHECK_ROWS = 4096


def make_data(n):
    rng = np.random.default_rng(DATA_SEED)
    x = rng.random((n, N_FEATURES), dtype=np.float32)
    teacher = rng.standard_normal((N_FEATURES, N_CLASSES)).astype(np.float32)
    y = np.argmax((x - 0.5) @ teacher, axis=1).astype(np.int64)
    return x, y


def make_model():
    dl.utils.set_random_seed(0)
    model = dl.Sequential([
        dl.layers.Dense(HIDDEN[0], activation="relu", input_shape=(N_FEATURES,)),
        dl.layers.Dense(HIDDEN[1], activation="relu"),
        dl.layers.Dense(N_CLASSES, activation="softmax"),
    ], backend="cython")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


class StepClock(dl.callbacks.Callback):
    """perf_counter and a copy of the distribution's timings at each step's start and
    at the epoch's end (no on_train_batch_end: fit then computes no per-batch logs)."""

    def __init__(self, dist):
        super().__init__()
        self.dist = dist
        self.marks = []

    def _mark(self):
        t = self.dist.timings if self.dist is not None else None
        self.marks.append((time.perf_counter(),
                           None if t is None else (t["step_s"], t["reduce_s"], t["steps"])))

    def on_train_batch_begin(self, batch, logs=None):
        self._mark()

    def on_epoch_end(self, epoch, logs=None):
        self._mark()

    def per_step(self):
        m = self.marks
        out = {"wall_s": [b[0] - a[0] for a, b in zip(m, m[1:])]}
        if m and m[0][1] is not None:
            out["step_s"] = [b[1][0] - a[1][0] for a, b in zip(m, m[1:])]
            out["reduce_s"] = [b[1][1] - a[1][1] for a, b in zip(m, m[1:])]
            out["timed_steps"] = m[-1][1][2] - m[0][1][2]
        return out


def parse_link(text):
    if text in ("none", "env"):
        return text
    lat, bw = (float(v) for v in text.split(","))
    return (lat, bw)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="the JSON file rank 0 writes")
    ap.add_argument("--batch", type=int, default=1024, help="the global batch")
    ap.add_argument("--samples", type=int, default=60000)
    ap.add_argument("--steps", type=int, default=None,
                    help="steps_per_epoch of each measured fit (default: a whole epoch)")
    ap.add_argument("--warmup-steps", type=int, default=5)
    ap.add_argument("--links", default="none",
                    help="one measured fit per entry, ';'-separated: none, env or LAT,BW "
                         "(default: one fit, no link)")
    ap.add_argument("--ranks", type=int, default=1,
                    help="the processes expected (checked against MPI's size)")
    args = ap.parse_args(argv)
    links = [parse_link(s) for s in args.links.split(";")]

    dist = dl.distribution.distribution()
    size = 1 if dist is None else dist.num_processes
    rank = 0 if dist is None else dist.process_id
    if size != args.ranks:
        raise SystemExit(f"expected {args.ranks} processes, MPI says {size} (is mpiexec "
                         f"the one of the MPI library mpi4py uses?)")
    env_link = None if dist is None else dist.comm.link
    if "env" in links and env_link is None:
        raise SystemExit("--links names 'env' but DLKERNELS_SIMULATED_LINK is not set")

    t0 = time.perf_counter()
    x, y = make_data(args.samples)
    model = make_model()
    data_s = time.perf_counter() - t0
    loss_before = float(model.evaluate(x[:CHECK_ROWS], y[:CHECK_ROWS], batch_size=1024,
                                       verbose=0))
    if args.warmup_steps:
        model.fit(x, y, batch_size=args.batch, epochs=1, steps_per_epoch=args.warmup_steps,
                  verbose=0)

    fits = []
    for link in links:
        if dist is not None:
            dist.comm.set_link(*(env_link if link == "env" else
                                 (None, None) if link == "none" else link))
        clock = StepClock(dist)
        start = time.perf_counter()
        history = model.fit(x, y, batch_size=args.batch, epochs=1, steps_per_epoch=args.steps,
                            verbose=0, callbacks=[clock])
        fit_s = time.perf_counter() - start
        per = clock.per_step()
        fits.append({"link": None if link == "none" else list(env_link if link == "env"
                                                                else link),
                     "link_from": "env" if link == "env" else "argument" if link != "none"
                     else None,
                     "steps": len(per["wall_s"]), "fit_s": fit_s,
                     "loss": float(history.history["loss"][-1]), **per})
    if dist is not None:
        dist.comm.set_link(*(env_link or (None, None)))
    loss_after = float(model.evaluate(x[:CHECK_ROWS], y[:CHECK_ROWS], batch_size=1024,
                                      verbose=0))

    # every rank's medians per fit (the reduction waits for the slower rank)
    mine = [{k: statistics.median(f[k]) for k in ("wall_s", "step_s", "reduce_s") if k in f}
            for f in fits]
    ranks = [mine] if dist is None else dist.comm.allgather_obj(mine)
    if rank == 0:
        doc = {
            "ranks": size,
            "reduction": None if dist is None else dist.reduction,
            "kernel_threads": kernels.get_num_threads(),
            "adaptive_threads": kernels.get_adaptive_threads(),
            "dist_num_threads": None if dist is None else dist.num_threads,
            "library": None if dist is None else getattr(dist.comm, "library", None),
            "batch": args.batch, "samples": args.samples,
            "params": int(model.count_params()),
            "env_link": None if env_link is None else list(env_link),
            "data_s": data_s,
            "loss_before": loss_before, "loss_after": loss_after,
            "timings_total": None if dist is None else dict(dist.timings),
            "fits": fits,
            "rank_medians": ranks,
            "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        }
        tmp = args.out + ".part"
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
