"""Summarize pytest-benchmark JSON files of this suite as a Markdown table.

    python bench/report.py run.json [more.json ...]

One row per group ("<kernel> <shape>"), and for each file: the numpy and cython
medians, the cython/numpy ratio of the medians (below 1: cython is faster) and, for
GEMM-like kernels, cython's GFLOP/s from the median.  Ratios only compare backends
measured in the same run; the machine may be shared, so medians are used throughout.
"""
import argparse
import json
import sys


def _time(seconds):
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def load(path):
    """{group: {backend: bench dict}}, and the threads recorded in that run."""
    with open(path) as f:
        data = json.load(f)
    groups, threads = {}, set()
    for bench in data["benchmarks"]:
        extra = bench.get("extra_info", {})
        backend = extra.get("backend") or bench["param"].split("-")[0]
        groups.setdefault(bench["group"], {})[backend] = bench
        threads.add(extra.get("threads"))
    return groups, threads


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="files written by --benchmark-json")
    args = parser.parse_args(argv)

    runs = []
    for path in args.files:
        groups, threads = load(path)
        label = f"threads={'/'.join(str(t) for t in sorted(threads, key=str))}"
        runs.append((label, groups))

    names = []
    for _, groups in runs:
        names += [g for g in groups if g not in names]

    header = ["group"]
    for label, _ in runs:
        header += [f"numpy ({label})", f"cython ({label})", "cython/numpy", "cython GFLOP/s"]
    rows = [header, ["---"] * len(header)]
    for name in names:
        row = [name]
        for _, groups in runs:
            pair = groups.get(name, {})
            med = {b: pair[b]["stats"]["median"] for b in ("numpy", "cython") if b in pair}
            ratio = (f"{med['cython'] / med['numpy']:.2f}"
                     if "numpy" in med and "cython" in med else "-")
            flops = pair.get("cython", {}).get("extra_info", {}).get("flops")
            gflops = (f"{flops / med['cython'] / 1e9:.1f}"
                      if flops and "cython" in med else "")
            row += [_time(med.get("numpy")), _time(med.get("cython")), ratio, gflops]
        rows.append(row)
    for row in rows:
        sys.stdout.write("| " + " | ".join(row) + " |\n")


if __name__ == "__main__":
    main()
