"""Peak memory of a fit epoch over a NumPy memmap larger than the process's memory.

Writes a float32 memmap of ``--mib`` MiB (default 1024) in this process, then, in a
fresh process that only reads it, fits a Dense(1) model for one shuffled epoch and
prints the file size, the child's RSS after the imports, and its peak RSS
(``VmHWM``, the process's own high-water mark) before and after the epoch:

    PYTHONPATH=src python bench/memmap_rss.py --mib 1024
"""
import argparse
import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np

CHILD = """
import time, numpy as np, dl

def status_kb(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(key + ":"))
after_imports = status_kb("VmRSS")
x = np.load({path!r}, mmap_mode="r")
y = np.zeros(x.shape[0], np.float32)
model = dl.Sequential([dl.Input((x.shape[1],)), dl.layers.Dense(1)])
model.compile(optimizer="sgd", loss="mse")
model.fit(x[:1024], y[:1024], verbose=0)
before = status_kb("VmHWM")
t = time.perf_counter()
model.fit(x, y, batch_size=4096, epochs=1, verbose=0)
seconds = time.perf_counter() - t
print(after_imports, before, status_kb("VmHWM"), seconds)
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024, help="file size in MiB")
    parser.add_argument("--features", type=int, default=64)
    args = parser.parse_args()
    d = args.features
    n = args.mib * 2**20 // (4 * d)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "x.npy")
        xm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
        for lo in range(0, n, 65536):
            xm[lo:lo + 65536] = np.random.default_rng(lo).standard_normal(
                (min(65536, n - lo), d))
        xm.flush()
        del xm
        out = subprocess.run([sys.executable, "-c", textwrap.dedent(CHILD.format(path=path))],
                             capture_output=True, text=True, check=True)
    rss, before, after, seconds = out.stdout.split()
    mib = lambda kb: int(kb) / 1024
    print(f"memmap file         {args.mib} MiB ({n} x {d} float32)")
    print(f"RSS after imports   {mib(rss):.0f} MiB")
    print(f"peak RSS before fit {mib(before):.0f} MiB")
    print(f"peak RSS after fit  {mib(after):.0f} MiB (the epoch added "
          f"{mib(after) - mib(before):.0f} MiB; file / peak = "
          f"{args.mib / mib(after):.1f}x)")
    print(f"epoch               {float(seconds):.1f} s")


if __name__ == "__main__":
    main()
