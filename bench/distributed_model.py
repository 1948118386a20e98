"""Projected speedup of MPI data-parallel training (dl.distribution.DataParallel).

Measures the single-process step time T1(B) of two MLPs (dl, cython backend, 1 kernel
thread, float32: ``model.train_on_batch`` after 2 warm-up calls, median of the timed
calls) at global batches 1024 and 8192, then projects the step time and speedup at p
ranks with a ring-allreduce cost model (no overlap of communication with compute):

    bytes sent (= received) per rank per step  = 2(p-1)/p * b * P
    T_comm(p) = 2(p-1) * alpha + 2(p-1)/p * b * P / beta
    T_comp(p) = T1(B) / p                        (global batch B fixed)
    S(p)      = T1(B) / (T_comp(p) + T_comm(p)),  efficiency E = S / p

P: values in the reduced buffer (the parameter count), b: bytes per value (4, float32),
alpha: per-message latency, beta: effective bandwidth per link (bytes/s).

    PYTHONPATH=src python bench/distributed_model.py [--json PATH] [--repeats N]

A second table takes the step time at batch 1 as a part t0 of T1 that does not shrink
with p (per-step overhead, the optimizer update every rank does):
S(p) = T1 / (t0 + (T1 - t0)/p + T_comm(p)).

Runs in under a minute on a 2-core machine (T1 is measured at both batches, not
scaled).  ``predict_step_time`` is importable
without dl (``bench/distributed_model.py`` imports nothing heavy at module level).
See docs/distributed.md.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

# ----------------------------------------------------------------- network constants
# alpha: MPI per-message latency (half round trip of a small-message ping-pong), s.
# beta:  effective point-to-point bandwidth, bytes/s.
#
# 10 GbE and 25 GbE: MPI over the kernel TCP stack.
#   alpha = 20 us.  Hurwitz & Feng, "Initial End-to-End Performance Evaluation of
#     10-Gigabit Ethernet" (HOTI 11): 20 us end-to-end latency between applications
#     with tuned TCP and NIC, http://www.hoti.org/archive/Hoti11_program/abstracts/24.html
#     ; J. Squyres (Cisco), "Ain't your father's TCP": ~10 us half-round-trip MPI
#     ping-pong over TCP (NetPIPE) after NIC tuning, a best case,
#     https://blogs.cisco.com/performance/aint-your-fathers-tcp
#     TCP latency is set by the host stack rather than the line rate, so 25 GbE gets
#     the same alpha (an assumption: no 25 GbE MPI latency figure was found).
#   beta(10 GbE) = 9.29 Gb/s = 1.16e9 B/s: iperf3 receiver average between two hosts
#     on 10 GbE, https://github.com/open-mpi/ompi/issues/13321
#   beta(25 GbE) = 24 Gb/s = 3.0e9 B/s: iperf3 with parallel streams (-P) between two
#     25 Gb/s AWS c5.18xlarge, https://github.com/open-mpi/ompi/issues/6521 (one TCP
#     stream per peer, as an MPI TCP transport opens by default, may get less).
# InfiniBand HDR (200 Gb/s), RDMA:
#   alpha = 1.2 us, beta = 192 Gb/s = 24e9 B/s: Azure HBv3 (HDR InfiniBand) expected
#     "RDMA latency & bandwidth: 1.2 microseconds (1 byte), 192 GB/s (one-way)" (the
#     page writes GB/s; on a 200 Gb/s link it can only be Gb/s),
#     https://docs.azure.cn/en-us/virtual-machines/hbv3-performance
NETWORKS = {
    "10GbE": {"alpha": 20e-6, "beta": 9.29e9 / 8,
              "what": "10 Gb Ethernet, MPI over TCP"},
    "25GbE": {"alpha": 20e-6, "beta": 24e9 / 8,
              "what": "25 Gb Ethernet, MPI over TCP"},
    "IB-HDR": {"alpha": 1.2e-6, "beta": 192e9 / 8,
               "what": "InfiniBand HDR 200 Gb/s, RDMA"},
}

RANKS = (2, 4, 8, 16, 32)
BATCHES = (1024, 8192)
N_FEATURES, N_CLASSES = 784, 10
MODELS = {
    # bench/test_bench_training.py's MLP (235,146 parameters)
    "MNIST MLP": (256, 128),
    # 784 -> 2048 -> 2048 -> 2048 -> 10 (10,020,874 parameters)
    "10M MLP": (2048, 2048, 2048),
}
WARMUP = 2


# ----------------------------------------------------------------------- the model

def ring_allreduce_bytes(params, p, bytes_per_param=4):
    """Bytes each rank sends (and receives) in one ring allreduce of ``params`` values
    over ``p`` ranks: 2(p-1)/p * bytes_per_param * params (0 for p == 1)."""
    return 2.0 * (p - 1) / p * bytes_per_param * params


def ring_allreduce_time(params, p, alpha, beta, bytes_per_param=4):
    """Time of one ring allreduce: 2(p-1) steps (reduce-scatter, then allgather), each
    one message of bytes_per_param * params / p bytes per rank:
    2(p-1) * alpha + 2(p-1)/p * bytes_per_param * params / beta."""
    if p <= 1:
        return 0.0
    return 2 * (p - 1) * alpha + ring_allreduce_bytes(params, p, bytes_per_param) / beta


def ring_allgather_time(params, p, alpha, beta, bytes_per_param=4):
    """Time of one ring allgather of every rank's whole buffer (the ``reduction=
    "ordered"`` mode): p-1 steps of bytes_per_param * params bytes each, so each rank
    sends (p-1) * bytes_per_param * params bytes:
    (p-1) * alpha + (p-1) * bytes_per_param * params / beta."""
    if p <= 1:
        return 0.0
    return (p - 1) * alpha + (p - 1) * bytes_per_param * params / beta


def predict_step_time(t_compute_1, params, p, alpha, beta, bytes_per_param=4, *,
                      t_fixed=0.0):
    """Predicted time of one data-parallel training step at ``p`` ranks.

    t_compute_1     seconds of one step on one process at the *global* batch B (the
                    batch stays B at every p: each rank computes on B/p samples).
    params          values reduced per step (the parameter count P; the few extra
                    floats of a step are negligible).
    p               number of ranks (>= 1).
    alpha           per-message latency, seconds.
    beta            effective bandwidth per link, bytes/s.
    bytes_per_param 4 for float32.
    t_fixed         (keyword only, default 0) the part of t_compute_1 that does not
                    shrink with p (per-step Python overhead, the optimizer update of
                    all P weights, which every rank does); e.g. the step time at
                    batch 1.

    Returns t_fixed + (t_compute_1 - t_fixed) / p + 2(p-1) * alpha
    + 2(p-1)/p * bytes_per_param * params / beta: compute scaled by 1/p plus one ring
    allreduce, not overlapped.  With the default t_fixed=0 that is the plain model
    t_compute_1 / p + T_comm(p).  For p == 1 it is t_compute_1.  The speedup is
    t_compute_1 / predict_step_time(...).
    Left out: overlap with the backward pass, stragglers, and the local summation of
    received chunks.
    """
    if p < 1:
        raise ValueError(f"p: expected an integer >= 1, got {p}")
    if not 0.0 <= t_fixed <= t_compute_1:
        raise ValueError(f"t_fixed: expected 0 <= t_fixed <= t_compute_1, got {t_fixed}")
    return (t_fixed + (t_compute_1 - t_fixed) / p
            + ring_allreduce_time(params, p, alpha, beta, bytes_per_param))


def speedup(t_compute_1, params, p, alpha, beta, bytes_per_param=4, *, t_fixed=0.0):
    """t_compute_1 / predict_step_time(...), the projected speedup S(p)."""
    return t_compute_1 / predict_step_time(t_compute_1, params, p, alpha, beta,
                                           bytes_per_param, t_fixed=t_fixed)


# ------------------------------------------------------------------ the measurement

def _build(hidden):
    import dl
    dl.utils.set_random_seed(0)
    layers = [dl.layers.Dense(hidden[0], activation="relu", input_shape=(N_FEATURES,))]
    layers += [dl.layers.Dense(u, activation="relu") for u in hidden[1:]]
    layers.append(dl.layers.Dense(N_CLASSES, activation="softmax"))
    model = dl.Sequential(layers, backend="cython")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def _time_steps(model, batch, repeats, rng):
    import numpy as np
    x = rng.random((batch, N_FEATURES), dtype=np.float32)
    y = rng.integers(0, N_CLASSES, batch)
    for _ in range(WARMUP):
        model.train_on_batch(x, y)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - t)
    return times


def measure(repeats, repeats_big):
    """{model: {"params", "hidden", "t1": {batch: median s}, "times": {...}}}.
    ``repeats_big`` calls are timed for the 10M model at the largest batch."""
    import numpy as np
    import kernels
    kernels.set_num_threads(1)
    kernels.set_adaptive_threads(False)
    rng = np.random.default_rng(20240601)
    out = {}
    for name, hidden in MODELS.items():
        model = _build(hidden)
        entry = {"hidden": list(hidden), "params": int(model.count_params()),
                 "t1": {}, "times": {}}
        for batch in BATCHES:
            n = repeats_big if (batch == max(BATCHES) and name == "10M MLP") else repeats
            times = _time_steps(model, batch, n, rng)
            entry["times"][batch] = times
            entry["t1"][batch] = statistics.median(times)
            print(f"  {name:9s} batch {batch:5d}: median {entry['t1'][batch] * 1e3:9.2f} ms"
                  f" of {n} (min {min(times) * 1e3:.2f}, max {max(times) * 1e3:.2f})",
                  file=sys.stderr, flush=True)
        # the part of a step that does not shrink with the batch: one sample
        small = _time_steps(model, 1, repeats, rng)
        entry["t_batch1"] = statistics.median(small)
        out[name] = entry
    return out


# ---------------------------------------------------------------------------- report

def _project(measured):
    rows = []
    for net, c in NETWORKS.items():
        for name, m in measured.items():
            for batch in BATCHES:
                t1 = m["t1"][batch]
                for p in RANKS:
                    step = predict_step_time(t1, m["params"], p, c["alpha"], c["beta"])
                    s = t1 / step
                    step_fixed = predict_step_time(t1, m["params"], p, c["alpha"],
                                                   c["beta"], t_fixed=m["t_batch1"])
                    rows.append({
                        "network": net, "model": name, "batch": batch, "p": p,
                        "t1_s": t1, "t_comp_s": t1 / p,
                        "t_comm_s": ring_allreduce_time(m["params"], p, c["alpha"],
                                                        c["beta"]),
                        "t_step_s": step, "speedup": s, "efficiency": s / p,
                        "t_fixed_s": m["t_batch1"], "t_step_fixed_s": step_fixed,
                        "speedup_fixed": t1 / step_fixed,
                        "bytes_per_rank": ring_allreduce_bytes(m["params"], p),
                        "t_comm_ordered_s": ring_allgather_time(m["params"], p,
                                                                c["alpha"], c["beta"]),
                    })
    return rows


def _short(name):
    return {"MNIST MLP": "MLP", "10M MLP": "10M"}[name]


def report(measured):
    rows = _project(measured)
    by = {(r["network"], r["model"], r["batch"], r["p"]): r for r in rows}
    lines = []
    lines.append("Measured T1 (one process, cython, 1 kernel thread, float32, median):")
    lines.append("")
    lines.append("| model | parameters | T1(1024) ms | T1(8192) ms | T1(8192) / (8 T1(1024))"
                 " | step at batch 1, ms |")
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, m in measured.items():
        t1k, t8k = m["t1"][1024], m["t1"][8192]
        lines.append(f"| {name} | {m['params']:,} | {t1k * 1e3:.2f} | {t8k * 1e3:.1f} | "
                     f"{t8k / (8 * t1k):.2f} | {m['t_batch1'] * 1e3:.2f} |")
    lines.append("")
    lines.append("Ring allreduce per step: bytes each rank sends (and receives), and "
                 "T_comm in ms:")
    lines.append("")
    head = "| model | p | MB per rank | " + " | ".join(f"T_comm {n} ms" for n in NETWORKS) + " |"
    lines.append(head)
    lines.append("| --- | ---: | ---: | " + " | ".join("---:" for _ in NETWORKS) + " |")
    for name in measured:
        for p in RANKS:
            r0 = by[(next(iter(NETWORKS)), name, BATCHES[0], p)]
            cells = [f"{by[(n, name, BATCHES[0], p)]['t_comm_s'] * 1e3:.3f}"
                     for n in NETWORKS]
            lines.append(f"| {name} | {p} | {r0['bytes_per_rank'] / 1e6:.3f} | "
                         + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Projected speedup S(p) = T1 / (T1/p + T_comm(p)), no overlap; "
                 "efficiency S/p in brackets:")
    lines.append("")
    cols = [(n, name, b) for n in NETWORKS for name in measured for b in BATCHES]
    lines.append("| p | " + " | ".join(f"{n} {_short(name)} {b // 1024}k"
                                        for n, name, b in cols) + " |")
    lines.append("| ---: | " + " | ".join("---:" for _ in cols) + " |")
    for p in RANKS:
        cells = []
        for n, name, b in cols:
            r = by[(n, name, b, p)]
            cells.append(f"{r['speedup']:.2f} ({r['efficiency'] * 100:.0f}%)")
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Columns: network, model (MLP = MNIST MLP, 10M = 10M MLP), global batch.")
    lines.append("")
    lines.append("The same with the step time at batch 1 as a part t0 that does not shrink "
                 "with p, S(p) = T1 / (t0 + (T1 - t0)/p + T_comm(p)):")
    lines.append("")
    lines.append("| p | " + " | ".join(f"{n} {_short(name)} {b // 1024}k"
                                        for n, name, b in cols) + " |")
    lines.append("| ---: | " + " | ".join("---:" for _ in cols) + " |")
    for p in RANKS:
        cells = [f"{by[(n, name, b, p)]['speedup_fixed']:.2f}" for n, name, b in cols]
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    return "\n".join(lines), rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", metavar="PATH", help="write all numbers to PATH")
    ap.add_argument("--repeats", type=int, default=7,
                    help="timed calls per case (default 7; the 10M model at batch 8192 "
                         "gets min(this, 5))")
    args = ap.parse_args(argv)
    if args.repeats < 5:
        ap.error("--repeats: at least 5")
    # NumPy's BLAS is not used by the cython kernels; pin it anyway, before NumPy loads.
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(var, "1")

    t0 = time.perf_counter()
    print("measuring T1 (cython, 1 kernel thread, float32) ...", file=sys.stderr)
    measured = measure(args.repeats, min(args.repeats, 5))
    text, rows = report(measured)
    print(text)
    print(f"\n(measured in {time.perf_counter() - t0:.0f} s)", file=sys.stderr)

    if args.json:
        import kernels
        doc = {
            "date": time.strftime("%Y-%m-%d"),
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                        "python": platform.python_version(),
                        "kernels_build": {k: v for k, v in kernels.build_info().items()
                                          if k in ("gemm_impl", "num_threads")}},
            "settings": {"backend": "cython", "kernel_threads": 1, "dtype": "float32",
                         "warmup": WARMUP, "repeats": args.repeats,
                         "bytes_per_param": 4, "overlap": False},
            "networks": NETWORKS,
            "models": {name: {"hidden": m["hidden"], "params": m["params"],
                              "t1_s": {str(b): t for b, t in m["t1"].items()},
                              "times_s": {str(b): t for b, t in m["times"].items()},
                              "t_batch1_s": m["t_batch1"]}
                       for name, m in measured.items()},
            "projection": rows,
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
        print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
