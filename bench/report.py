"""Summarize pytest-benchmark JSON files of this suite: ratio table, contention, chart.

    python bench/report.py t1.json [t2.json ...] [--png chart.png]
    python bench/report.py --run [--threads 1 2] [--pytest-args "-k gemm"] [--png chart.png]

Prints a Markdown table with one row per group ("<kernel> <shape> <dtype>") and, for
each file (side by side: e.g. a --threads 1 run and a --threads 2 run), the medians of
the numpy (reference) and cython backends, the **speedup = numpy median / cython
median** (above 1: cython is faster; "n/c" where the two did different work, e.g.
different epoch counts), and for GEMM-like groups the GFLOP/s of both (from the
medians).  Where a run has them, cuda columns (median, numpy/cuda speedup)
and torch columns (median, torch median / cython median: above 1, cython is faster
than PyTorch) are added; likewise torch_cl (PyTorch on channels_last tensors) and
tf_keras (tf.keras), each against cython.  A second table gives the contention
benchmark's ratio: the 2-thread throughput with a competing CPU-bound process over the
throughput without (busy/idle; the issue's target is >= 0.40).

``--png PATH`` also draws the numpy/cython speedups per group as a bar chart
(matplotlib; skipped with a message when it is not installed).  ``--run`` runs the
suite first (``python -m pytest bench --benchmark-only --benchmark-json=...``, once
per ``--threads`` value; pytest's output goes to stderr) and then reports on what it
wrote.

Ratios only compare backends measured in the same run (the suite runs the backends of
one case back to back); the development machines are shared, so medians are used
throughout and absolute times move with the load.
"""
import argparse
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import tempfile

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
BACKENDS = ("numpy", "cython", "cuda", "torch", "torch_cl", "tf_keras")
# the other libraries, each compared with cython (their median / cython's median)
VERSUS_CYTHON = ("torch", "torch_cl", "tf_keras")
CONTENTION_TARGET = 0.40


# --------------------------------------------------------------------------- loading

def _time(seconds):
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _backend_of(bench):
    extra = bench.get("extra_info", {})
    params = bench.get("params") or {}
    return (extra.get("backend") or params.get("backend") or params.get("backend_name")
            or (bench.get("param") or "?").split("-")[0])


class Run:
    """One JSON file: ``groups`` {group: {backend: bench dict}} in file order."""

    def __init__(self, path):
        self.path = path
        with open(path) as f:
            data = json.load(f)
        self.machine = data.get("machine_info", {})
        self.datetime = data.get("datetime", "?")
        self.commit = (data.get("commit_info") or {}).get("id", "?")
        self.groups = {}
        for bench in data.get("benchmarks", []):
            group = bench.get("group") or bench.get("name")
            self.groups.setdefault(group, {})[_backend_of(bench)] = bench
        dlk = self.machine.get("dlkernels", {})
        self.threads = dlk.get("kernels_threads")
        self.blas_threads = dlk.get("blas_threads")
        self.gemm_impl = (dlk.get("build_info") or {}).get("gemm_impl")
        self.backends = {b for pair in self.groups.values() for b in pair}
        self.label = f"{self.threads}T" if self.threads is not None else "run"

    def median(self, group, backend):
        bench = self.groups.get(group, {}).get(backend)
        return bench["stats"]["median"] if bench else None

    def flops(self, group):
        for bench in self.groups.get(group, {}).values():
            flops = bench.get("extra_info", {}).get("flops")
            if flops:
                return flops
        return None

    def describe(self):
        load = self.machine.get("loadavg")
        load = "/".join(f"{x:.2f}" for x in load) if load else "?"
        cpu = (self.machine.get("cpu") or {}).get("brand_raw", "?")
        count = (self.machine.get("cpu") or {}).get("count", "?")
        return (f"{self.path}: kernels threads={self.threads}, numpy BLAS threads="
                f"{self.blas_threads}, gemm_impl={self.gemm_impl}, {cpu} x{count}, "
                f"load average at the end {load}, {self.datetime}, commit "
                f"{self.commit[:10]}")


# extra_info keys that must agree for two backends' times to be compared
_SAME_WORK = ("epochs", "samples", "shape", "dtype", "batch_size")


def comparable(run, group, a, b):
    """Whether backends a and b of ``group`` did the same work (same epochs, samples,
    shape, dtype where recorded): e.g. test_bench_memory runs fewer numpy epochs."""
    ea = run.groups.get(group, {}).get(a, {}).get("extra_info", {})
    eb = run.groups.get(group, {}).get(b, {}).get("extra_info", {})
    return all(ea.get(k) == eb.get(k) for k in _SAME_WORK if k in ea or k in eb)


def _ratio(num, den):
    return num / den if num is not None and den else None


def _fmt(x, digits=2):
    return "-" if x is None else f"{x:.{digits}f}"


def _gflops(flops, seconds):
    return flops / seconds / 1e9 if flops and seconds else None


def _label_runs(runs):
    seen = {}
    for run in runs:
        seen[run.label] = seen.get(run.label, 0) + 1
    counts = {}
    for run in runs:
        if seen[run.label] > 1:
            counts[run.label] = counts.get(run.label, 0) + 1
            run.label = f"{run.label}#{counts[run.label]}"


def _group_names(runs):
    names = []
    for run in runs:
        names += [g for g in run.groups if g not in names]
    return names


# ---------------------------------------------------------------------------- tables

def ratio_table(runs):
    """Markdown lines: one row per group, per run the backends' medians and ratios."""
    header = ["group"]
    for run in runs:
        L = run.label
        header += [f"numpy {L}", f"cython {L}", f"speedup {L}", f"GFLOP/s np/cy {L}"]
        if "cuda" in run.backends:
            header += [f"cuda {L}", f"numpy/cuda {L}"]
        for other in VERSUS_CYTHON:
            if other in run.backends:
                header += [f"{other} {L}", f"{other}/cython {L}"]
    lines = [header, ["---"] + ["---:"] * (len(header) - 1)]
    for name in _group_names(runs):
        row = [name]
        for run in runs:
            med = {b: run.median(name, b) for b in BACKENDS}
            flops = run.flops(name)
            gf = [_gflops(flops, med[b]) for b in ("numpy", "cython")]
            speedup = (_fmt(_ratio(med["numpy"], med["cython"]))
                       if comparable(run, name, "numpy", "cython") else "n/c")
            row += [_time(med["numpy"]), _time(med["cython"]), speedup,
                    "/".join(_fmt(g, 1) for g in gf) if flops else ""]
            if "cuda" in run.backends:
                row += [_time(med["cuda"]), _fmt(_ratio(med["numpy"], med["cuda"]))
                        if comparable(run, name, "numpy", "cuda") else "n/c"]
            for other in VERSUS_CYTHON:
                if other in run.backends:
                    row += [_time(med[other]), _fmt(_ratio(med[other], med["cython"]))
                            if comparable(run, name, other, "cython") else "n/c"]
        lines.append(row)
    return ["| " + " | ".join(r) + " |" for r in lines]


def contention_rows(run):
    """[(case, backend, idle median, busy median, busy/idle throughput, loads)]."""
    cases = {}
    for pair in run.groups.values():
        for backend, bench in pair.items():
            extra = bench.get("extra_info", {})
            state = extra.get("contention")
            if state in ("idle", "busy"):
                case = extra.get("contention_case", "?")
                cases.setdefault((case, backend), {})[state] = bench
    rows = []
    for (case, backend), states in cases.items():
        idle = states.get("idle", {}).get("stats", {}).get("median")
        busy = states.get("busy", {}).get("stats", {}).get("median")
        loads = "/".join(_fmt(states.get(s, {}).get("extra_info", {}).get("loadavg_1min"), 1)
                         for s in ("idle", "busy"))
        rows.append((case, backend, idle, busy, _ratio(idle, busy), loads))
    order = {b: i for i, b in enumerate(BACKENDS)}
    rows.sort(key=lambda r: (r[0], order.get(r[1], len(order))))
    return rows


def contention_table(runs):
    lines = ["| run | case | backend | idle | busy (+1 spinning process) | "
             "busy/idle throughput | target | 1-min load idle/busy |",
             "| --- | --- | --- | ---: | ---: | ---: | --- | --- |"]
    any_rows = False
    for run in runs:
        for case, backend, idle, busy, ratio, loads in contention_rows(run):
            any_rows = True
            met = ratio is not None and ratio >= CONTENTION_TARGET
            verdict = "-" if ratio is None else f">= {CONTENTION_TARGET:.2f}: " + (
                "met" if met else "NOT met")
            lines.append(f"| {run.label} | {case} | {backend} | {_time(idle)} | {_time(busy)} | "
                         f"{_fmt(ratio)} | {verdict} | {loads} |")
    return lines if any_rows else []


# ----------------------------------------------------------------------------- chart

def write_png(runs, path):
    """Horizontal bars: numpy/cython speedup per group, one bar per run (and the
    torch/cython, torch_cl/cython, tf_keras/cython ratios where timed).  Returns False
    without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        sys.stderr.write(f"--png {path}: matplotlib is not installed; no chart written "
                         f"(pip install matplotlib)\n")
        return False

    series = []   # (label, {group: value})
    for run in runs:
        values = {g: _ratio(run.median(g, "numpy"), run.median(g, "cython"))
                  for g in run.groups if comparable(run, g, "numpy", "cython")}
        series.append((f"numpy/cython {run.label}", values))
        for other in VERSUS_CYTHON:
            if other in run.backends:
                values = {g: _ratio(run.median(g, other), run.median(g, "cython"))
                          for g in run.groups if comparable(run, g, other, "cython")}
                series.append((f"{other}/cython {run.label}", values))
    names = [g for g in _group_names(runs)
             if any(v.get(g) is not None for _, v in series)]
    if not names:
        sys.stderr.write(f"--png {path}: no group with both numpy and cython; no chart\n")
        return False

    bar = 0.8 / len(series)
    fig_h = max(4.0, 0.12 * len(names) * max(1, len(series)) + 1.5)
    fig, ax = plt.subplots(figsize=(11, fig_h))
    for i, (label, values) in enumerate(series):
        ys = [j + (i - (len(series) - 1) / 2) * bar for j in range(len(names))]
        xs = [values.get(g) or float("nan") for g in names]
        ax.barh(ys, xs, height=bar, label=label)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    finite = [v for _, values in series for v in values.values() if v]
    lo, hi = min(finite + [1.0]), max(finite + [1.0])
    ticks = [t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)
             if lo / 2 <= t <= hi * 2]
    ax.set_xticks(ticks)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=6)
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set_xlabel("speedup = other backend's median / cython's median (log; > 1: cython faster)")
    ax.set_title("dlkernels: cython vs numpy reference per benchmark group "
                 "(medians; shared machine)", fontsize=10)
    ax.grid(axis="x", which="both", linewidth=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


# ------------------------------------------------------------------------------- run

def run_suite(threads_list, pytest_args, json_dir):
    """Runs the suite once per thread count; returns (json paths written, worst rc)."""
    env = dict(os.environ)
    src = os.path.join(REPO_DIR, "src")
    if importlib.util.find_spec("kernels") is None and os.path.isdir(os.path.join(src, "kernels")):
        env["PYTHONPATH"] = os.pathsep.join([src] + [p for p in env.get("PYTHONPATH", "")
                                                     .split(os.pathsep) if p])
        sys.stderr.write(f"kernels is not installed: running with PYTHONPATH={src}\n")
    paths, worst = [], 0
    for threads in threads_list:
        name = f"bench-t{threads}.json" if threads is not None else "bench.json"
        path = os.path.join(json_dir, name)
        cmd = [sys.executable, "-m", "pytest", BENCH_DIR, "--benchmark-only", "-q",
               f"--benchmark-json={path}"]
        if threads is not None:
            cmd += ["--threads", str(threads)]
        cmd += shlex.split(pytest_args)
        sys.stderr.write("$ " + " ".join(shlex.quote(c) for c in cmd) + "\n")
        sys.stderr.flush()
        # pytest's own output goes to stderr: stdout carries only the report
        rc = subprocess.call(cmd, cwd=REPO_DIR, env=env, stdout=sys.stderr)
        worst = worst or rc
        if os.path.exists(path) and os.path.getsize(path) > 0:
            paths.append(path)
        else:
            sys.stderr.write(f"pytest exited {rc} without writing benchmark data to {path}\n")
    return paths, worst


# ------------------------------------------------------------------------------ main

def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Ratio table (and chart) of dlkernels' pytest-benchmark JSON files.",
        epilog="speedup = numpy median / cython median: above 1, cython is faster.")
    parser.add_argument("files", nargs="*", help="files written by --benchmark-json")
    parser.add_argument("--png", metavar="PATH", help="also write a bar chart of the speedups")
    parser.add_argument("--run", action="store_true",
                        help="run the suite first (pytest bench --benchmark-only), then report")
    parser.add_argument("--threads", type=int, nargs="+", metavar="N",
                        help="with --run: one run per thread count (pytest's --threads N)")
    parser.add_argument("--pytest-args", default="", metavar="ARGS",
                        help='with --run: more pytest arguments, e.g. "-k gemm"')
    parser.add_argument("--json-dir", metavar="DIR",
                        help="with --run: keep the JSON files there (default: a temporary "
                             "folder, removed afterwards)")
    args = parser.parse_args(argv)
    if not args.files and not args.run:
        parser.error("give JSON files, or --run")
    if (args.threads or args.pytest_args or args.json_dir) and not args.run:
        parser.error("--threads, --pytest-args and --json-dir go with --run")

    files, rc, tmp = list(args.files), 0, None
    if args.run:
        if args.json_dir:
            os.makedirs(args.json_dir, exist_ok=True)
            json_dir = args.json_dir
        else:
            tmp = tempfile.TemporaryDirectory(prefix="dlkernels-bench-")
            json_dir = tmp.name
        written, rc = run_suite(args.threads or [None], args.pytest_args, json_dir)
        files += written
    try:
        if not files:
            sys.stderr.write("no benchmark results to report\n")
            return rc or 1
        runs = []
        for path in files:
            try:
                runs.append(Run(path))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                sys.stderr.write(f"{path}: not a pytest-benchmark JSON file: {exc}\n")
                return rc or 1
        _label_runs(runs)
    finally:
        if tmp is not None:
            tmp.cleanup()

    out = sys.stdout
    out.write("Runs (the machine may be shared: compare ratios within a run, not absolute "
              "times):\n\n")
    for run in runs:
        out.write(f"- {run.label}: {run.describe()}\n")
    out.write("\nspeedup = numpy median / cython median (> 1: cython faster); GFLOP/s "
              "np/cy = numpy's and cython's GFLOP/s from the medians (products only)")
    for other in VERSUS_CYTHON:
        if any(other in r.backends for r in runs):
            out.write(f"; {other}/cython = {other} median / cython median "
                      "(> 1: cython faster)")
    if any("cuda" in r.backends for r in runs):
        out.write("; numpy/cuda = numpy median / cuda median (> 1: cuda faster)")
    out.write("\n\n")
    for line in ratio_table(runs):
        out.write(line + "\n")
    lines = contention_table(runs)
    if lines:
        out.write("\nContention (2 threads; busy/idle throughput = idle median / busy "
                  f"median; target >= {CONTENTION_TARGET:.2f}; 'idle' means no competing "
                  "process of ours, other users' load aside):\n\n")
        for line in lines:
            out.write(line + "\n")
    if args.png and write_png(runs, args.png):
        out.write(f"\nchart: {args.png}\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
