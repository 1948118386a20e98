"""MPI data-parallel training (dl.distribution.DataParallel) of the MNIST MLP.

Every benchmark runs bench/distributed_worker.py in a subprocess (with a timeout):
``mpiexec -n 2 python -m dl.distribution bench/distributed_worker.py ...`` for the
data-parallel cases, ``python bench/distributed_worker.py ...`` for one process.  The
worker measures inside (see its docstring) and writes JSON; pytest-benchmark's own time
(one round) is the whole subprocess, start-up and data included: the numbers to read
are in ``extra_info``.  The model and data are those of test_bench_training.py's MLP
(784 -> 256 relu -> 128 relu -> 10 softmax, sparse categorical cross-entropy, Adam,
cython, float32, 60000 random samples), ``verbose=0``.

- ``test_dp_mlp_epoch``: at global batch 128 and 1024, one measured epoch (after a
  warm-up fit of 5 steps) of
  (a) ``1p1t``: 1 process x 1 kernel thread,
  (b) ``1p2t``: 1 process x 2 kernel threads,
  (c) ``2r1t``: 2 ranks x 1 thread (``reduction="sum"``: MPI's Allreduce),
  (d) ``2r1t-ordered``: 2 ranks x 1 thread, ``--reduction ordered`` (an Allgather and
  the rank-order sum),
  each in ``ROUNDS`` (3) subprocesses, the rounds of a batch interleaving the four
  (a, b, c, d, a, b, c, d, ...): the speed of a process on this shared machine drifts
  from one to the next by up to 2x, within a process far less.
  Per step: ``wall_s`` (one step's start to the next's, from ``on_train_batch_begin``:
  the same measure for every case) and, for (c) and (d), ``DataParallel.timings``'s
  per-step deltas (``step_s``, ``reduce_s``).  Per round (extra_info): the medians
  ``wall_ms``, ``fit_ms_per_step`` (fit's seconds / steps), for (c) and (d)
  ``step_ms``, ``reduce_ms`` and ``reduce_share`` (= median reduce_s / median step_s;
  ``reduce_share_total``: sum over sum); for (c) ``speedup_vs_1p1t`` and
  ``speedup_vs_1p2t`` (the same round's median wall of (a) or (b) / (c)'s;
  ``..._fit``: the same from fit's seconds); for (d) ``ordered_vs_sum`` (its median
  wall / (c)'s of the round).  ``over_rounds_*``: the medians over the case's rounds so
  far (complete at its last round), which the table printed at the end (``-s``) shows.
  Checked: the losses are finite and the loss on the first 4096 samples went down.
  Timings are never asserted.
- ``test_dp_simulated_link``: (c) at batch 1024 with ``DLKERNELS_SIMULATED_LINK`` set
  (each allreduce first sleeps ``2(p-1) alpha + 2(p-1)/p 4P / beta``, kernels/comm.py),
  in one job alternating ``LINK_ROUNDS`` epochs without the link (``comm.set_link(None)``)
  and with it.  predicted = median step_s without the link + the ring-allreduce time of
  bench/distributed_model.py (p = 2, P = the parameter count, float32); measured =
  median step_s with the link.  Asserted: |measured / predicted - 1| <= 25% (the
  issue's requirement).  Two links: latency-bound (2 ms, 1 GB/s: 4.9 ms per step) and
  bandwidth-bound (0.1 ms, 100 MB/s: 9.6 ms), 42% and 58% of the predicted step on a 2-core machine.

Skipped when mpi4py or an ``mpiexec`` (next to ``sys.executable``, else on PATH) is
missing, or the cython backend does not load.  About 50 s on a 2-core machine.
"""
import importlib.util
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

import dl
import kernels

HERE = Path(__file__).resolve().parent
WORKER = HERE / "distributed_worker.py"
SRC = Path(dl.__file__).resolve().parent.parent     # where dl and kernels live

SAMPLES = 60000
ROUNDS = 3               # subprocesses per case, one measured epoch each, interleaved
WARMUP_STEPS = 5
TIMEOUT = 180            # seconds per subprocess
COLLECTIVE_TIMEOUT = 60  # the launcher's --timeout: a stalled rank aborts the job
LINK_BATCH = 1024
LINK_ROUNDS = 3          # epochs without the link and with it, alternating
LINK_TOLERANCE = 0.25    # |measured / predicted - 1| (the requirement)
RANKS = 2

CONFIGS = {   # name: (processes, kernel threads per process, reduction)
    "1p1t": (1, 1, None),
    "1p2t": (1, 2, None),
    "2r1t": (2, 1, "sum"),
    "2r1t-ordered": (2, 1, "ordered"),
}
# the rounds of one batch interleave the configurations (a ratio is fair between
# measurements taken close together; the load of a shared machine drifts)
CASES = [(b, i, c) for b in (128, 1024) for i in range(ROUNDS) for c in CONFIGS]
LINKS = {   # name: (latency s, bandwidth bytes/s)
    "latency-2ms-1GBps": (2e-3, 1e9),
    "bandwidth-0.1ms-100MBps": (1e-4, 1e8),
}

_RESULTS = {}          # (batch, config) -> the reported numbers
_LINK_RESULTS = {}     # link name -> the reported numbers


def _load_model_module():
    spec = importlib.util.spec_from_file_location("_distributed_model",
                                                  HERE / "distributed_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _mpiexec():
    """The mpiexec of the Python environment (MPICH's wheel puts it next to python),
    else the one on PATH, else None."""
    local = Path(sys.executable).parent / "mpiexec"
    if local.exists():
        return str(local)
    return shutil.which("mpiexec")


def _need_cython():
    try:
        kernels.get_backend("cython")
    except Exception as exc:          # noqa: BLE001 -- any load failure: skip
        pytest.skip(f"the cython backend does not load: {exc}")


def _need_mpi():
    try:
        found = importlib.util.find_spec("mpi4py") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        pytest.skip("mpi4py is not installed (pip install 'dlkernels[mpi]')")
    if _mpiexec() is None:
        pytest.skip("no mpiexec next to the Python executable or on PATH")


def _env(threads, link=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC)] + [p for p in env.get("PYTHONPATH", "")
                                                      .split(os.pathsep) if p])
    env["DLKERNELS_NUM_THREADS"] = str(threads)
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
        env[var] = "1"      # NumPy's BLAS: not on the training path; no spinning threads
    env.pop("DLKERNELS_SIMULATED_LINK", None)
    if link is not None:
        env["DLKERNELS_SIMULATED_LINK"] = f"{link[0]!r},{link[1]!r}"
    return env


def _run_worker(tmp_path, *, ranks, threads, reduction, batch, links="none", link=None):
    """Runs the worker (under mpiexec when ranks > 1); returns its JSON."""
    out = tmp_path / f"worker-{ranks}-{threads}-{reduction}-{batch}.json"
    args = [str(WORKER), "--out", str(out), "--batch", str(batch), "--samples",
            str(SAMPLES), "--warmup-steps", str(WARMUP_STEPS), "--links", links,
            "--ranks", str(ranks)]
    if ranks == 1:
        cmd = [sys.executable] + args
    else:
        cmd = [_mpiexec(), "-n", str(ranks), sys.executable, "-m", "dl.distribution",
               "--reduction", reduction, "--timeout", str(COLLECTIVE_TIMEOUT)] + args
    proc = subprocess.Popen(cmd, env=_env(threads, link), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)      # mpiexec and its ranks: our own group
        output, _ = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} ran past {TIMEOUT} s:\n{output[-4000:]}")
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited with {proc.returncode}:\n{output[-4000:]}")
    return json.loads(out.read_text())


def _pooled(doc, key, linked=None):
    """Every measured step's ``key`` (fits with a link, without, or all)."""
    values = []
    for fit in doc["fits"]:
        if linked is None or (fit["link"] is not None) == linked:
            values.extend(fit[key])
    return values


def _check_losses(doc):
    losses = [f["loss"] for f in doc["fits"]]
    assert all(math.isfinite(v) for v in losses), f"epoch losses: {losses}"
    assert math.isfinite(doc["loss_after"])
    assert doc["loss_after"] < doc["loss_before"], (
        f"loss on the first 4096 samples: {doc['loss_before']} -> {doc['loss_after']}")


def _ms(seconds):
    return round(seconds * 1e3, 4)


def _aggregate(batch, config):
    """The medians over the rounds so far of (batch, config)'s per-round numbers."""
    rounds = _RESULTS.get((batch, config), {})
    keys = ("wall_ms", "fit_ms_per_step", "step_ms", "reduce_ms", "reduce_share",
            "speedup_vs_1p1t", "speedup_vs_1p2t", "ordered_vs_sum", "loadavg_1min")
    agg = {"rounds": len(rounds)}
    for k in keys:
        values = [r[k] for r in rounds.values() if r.get(k) is not None]
        if values:
            agg[k] = statistics.median(values)
            if k.startswith(("speedup", "ordered", "wall")):
                agg[k + "_rounds"] = [round(v, 4) for v in values]
    return agg


@pytest.fixture(scope="module", autouse=True)
def _summary():
    """Prints the tables of the module's results at its end (visible with -s)."""
    yield
    if not (_RESULTS or _LINK_RESULTS):
        return
    lines = ["", "data-parallel MLP: medians per step (ms) in each round, median over the "
             "rounds; speedup: median over the rounds of the ratio of median walls",
             "| batch | config | rounds | wall ms | fit ms/step | step ms | reduce ms | "
             "reduce share | speedup vs 1p1t | vs 1p2t | ordered/sum | load |",
             "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for batch, config in sorted(_RESULTS, key=lambda k: (k[0], list(CONFIGS).index(k[1]))):
        r = _aggregate(batch, config)
        cell = lambda k, f="{:.2f}": f.format(r[k]) if r.get(k) is not None else "-"
        lines.append(f"| {batch} | {config} | {r['rounds']} | {cell('wall_ms')} | "
                     f"{cell('fit_ms_per_step')} | {cell('step_ms')} | {cell('reduce_ms')} | "
                     f"{cell('reduce_share', '{:.1%}')} | {cell('speedup_vs_1p1t')} | "
                     f"{cell('speedup_vs_1p2t')} | {cell('ordered_vs_sum')} | "
                     f"{cell('loadavg_1min')} |")
    if _LINK_RESULTS:
        lines += ["", "simulated link, 2 ranks x 1 thread, batch 1024 (medians of step_s, ms)",
                  "| link | no-link step | model comm | predicted | measured | error |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for name, r in _LINK_RESULTS.items():
            lines.append(f"| {name} | {r['base_step_ms']:.2f} | {r['comm_model_ms']:.2f} | "
                         f"{r['predicted_ms']:.2f} | {r['measured_ms']:.2f} | "
                         f"{r['rel_error']:+.1%} |")
    print("\n".join(lines))


@pytest.mark.parametrize("batch,round_,config", CASES,
                         ids=[f"b{b}-{c}-r{i + 1}" for b, i, c in CASES])
def test_dp_mlp_epoch(benchmark, describe, tmp_path, batch, round_, config):
    ranks, threads, reduction = CONFIGS[config]
    _need_cython()
    if ranks > 1:
        _need_mpi()
    describe(f"dp fit mlp 1 epoch b{batch}", f"{SAMPLES}x784->256->128->10",
             backend="cython", config=config, round=round_ + 1, ranks=ranks,
             threads=threads, reduction=reduction, batch_size=batch, samples=SAMPLES)

    doc = benchmark.pedantic(
        _run_worker, args=(tmp_path,),
        kwargs=dict(ranks=ranks, threads=threads, reduction=reduction, batch=batch),
        rounds=1, iterations=1)

    assert doc["ranks"] == ranks and doc["kernel_threads"] == threads
    wall = _pooled(doc, "wall_s")
    quartiles = statistics.quantiles(wall, n=4)
    steps = sum(f["steps"] for f in doc["fits"])
    r = {"steps": steps, "wall_ms": _ms(statistics.median(wall)),
         "wall_iqr_ms": _ms(quartiles[2] - quartiles[0]),
         "fit_ms_per_step": _ms(sum(f["fit_s"] for f in doc["fits"]) / steps),
         "params": doc["params"], "loss_before": doc["loss_before"],
         "loss_after": doc["loss_after"], "epoch_losses": [f["loss"] for f in doc["fits"]],
         "worker_loadavg": doc["loadavg"], "adaptive_threads": doc["adaptive_threads"],
         "loadavg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    if ranks > 1:
        step, red = _pooled(doc, "step_s"), _pooled(doc, "reduce_s")
        r.update(step_ms=_ms(statistics.median(step)), reduce_ms=_ms(statistics.median(red)),
                 reduce_share=statistics.median(red) / statistics.median(step),
                 reduce_share_total=sum(red) / sum(step),
                 rank_medians_ms=[[{k: _ms(v) for k, v in m.items()} for m in rank]
                                  for rank in doc["rank_medians"]],
                 mpi_library=doc["library"])
    this_round = lambda name: _RESULTS.get((batch, name), {}).get(round_)
    if config == "2r1t":       # against the one-process cases of the same round
        for base in ("1p1t", "1p2t"):
            other = this_round(base)
            if other is not None:
                r[f"speedup_vs_{base}"] = other["wall_ms"] / r["wall_ms"]
                r[f"speedup_vs_{base}_fit"] = other["fit_ms_per_step"] / r["fit_ms_per_step"]
    if config == "2r1t-ordered":
        other = this_round("2r1t")
        if other is not None:
            r["ordered_vs_sum"] = r["wall_ms"] / other["wall_ms"]
            r["ordered_reduce_vs_sum"] = r["reduce_ms"] / other["reduce_ms"]
    _RESULTS.setdefault((batch, config), {})[round_] = r
    benchmark.extra_info.update(r)
    # the medians over this case's rounds so far (complete at its last round)
    benchmark.extra_info.update({"over_rounds_" + k: v
                                 for k, v in _aggregate(batch, config).items()})
    _check_losses(doc)


@pytest.mark.parametrize("link", list(LINKS))
def test_dp_simulated_link(benchmark, describe, tmp_path, link):
    _need_cython()
    _need_mpi()
    model = _load_model_module()
    alpha, beta = LINKS[link]
    describe(f"dp simulated link b{LINK_BATCH}", f"{SAMPLES}x784->256->128->10",
             backend="cython", config="2r1t", ranks=RANKS, threads=1, reduction="sum",
             batch_size=LINK_BATCH, link=link, alpha_s=alpha, beta_bytes_per_s=beta)

    doc = benchmark.pedantic(
        _run_worker, args=(tmp_path,),
        kwargs=dict(ranks=RANKS, threads=1, reduction="sum", batch=LINK_BATCH,
                    links=";".join(["none", "env"] * LINK_ROUNDS), link=(alpha, beta)),
        rounds=1, iterations=1)

    assert doc["env_link"] == [alpha, beta], "the worker did not see the simulated link"
    params = doc["params"]
    base_steps, link_steps = _pooled(doc, "step_s", False), _pooled(doc, "step_s", True)
    base = statistics.median(base_steps)
    measured = statistics.median(link_steps)
    comm = model.ring_allreduce_time(params, RANKS, alpha, beta)
    predicted = base + comm
    # the same through the model's step-time function (t_compute_1: one process at the
    # global batch; base already holds p = 2's compute and real reduction)
    assert math.isclose(model.predict_step_time(RANKS * base, params, RANKS, alpha, beta),
                        predicted, rel_tol=1e-9)
    error = measured / predicted - 1
    wall_base = statistics.median(_pooled(doc, "wall_s", False))
    wall_link = statistics.median(_pooled(doc, "wall_s", True))
    r = {"params": params, "base_step_ms": _ms(base), "comm_model_ms": _ms(comm),
         "comm_share_predicted": comm / predicted,
         "predicted_ms": _ms(predicted), "measured_ms": _ms(measured), "rel_error": error,
         "base_reduce_ms": _ms(statistics.median(_pooled(doc, "reduce_s", False))),
         "link_reduce_ms": _ms(statistics.median(_pooled(doc, "reduce_s", True))),
         "wall_base_ms": _ms(wall_base), "wall_link_ms": _ms(wall_link),
         "wall_rel_error": wall_link / (wall_base + comm) - 1,
         "steps_base": len(base_steps), "steps_link": len(link_steps),
         "worker_loadavg": doc["loadavg"],
         "loadavg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    _LINK_RESULTS[link] = r
    benchmark.extra_info.update(r)
    _check_losses(doc)
    assert abs(error) <= LINK_TOLERANCE, (
        f"{link}: measured {measured * 1e3:.2f} ms per step, the model predicts "
        f"{predicted * 1e3:.2f} ms ({base * 1e3:.2f} without the link + {comm * 1e3:.2f}): "
        f"{error:+.1%}")
