"""What the installed package carries (the tests run against the installed copy in CI).

The README invites people to read the kernels: the installed ``kernels/cpu/`` holds the
Cython source of every compiled module, the .pxd/.pxi files they cimport and include,
and the C headers, next to the extension modules.  The top of ``kernels`` stays small:
the public entry, the backend objects, the reference, the checks, the host ops and
the two twins.
"""
import glob
import importlib.machinery
import os
import re

import kernels

KERNELS_DIR = os.path.dirname(kernels.__file__)
CPU_DIR = os.path.join(KERNELS_DIR, "cpu")


def _compiled_modules():
    """Module names of the extension files in kernels/cpu (the longest suffix off:
    "gemm.cpython-311-x86_64-linux-gnu.so" is gemm)."""
    suffixes = sorted(importlib.machinery.EXTENSION_SUFFIXES, key=len, reverse=True)
    names = set()
    for entry in os.listdir(CPU_DIR):
        suffix = next((s for s in suffixes if entry.endswith(s)), None)
        if suffix:
            names.add(entry[:-len(suffix)])
    return names


def test_every_compiled_module_has_its_source_beside_it():
    compiled = _compiled_modules()
    assert {"gemm", "elementwise", "losses", "optimizers", "dense"} <= compiled
    missing = sorted(m for m in compiled if not os.path.exists(os.path.join(CPU_DIR, m + ".pyx")))
    assert not missing, missing


def test_every_include_and_cimport_and_header_is_there():
    text = ""
    for path in glob.glob(os.path.join(CPU_DIR, "*.p[yx][xid]")):
        with open(path, encoding="utf-8") as f:
            text += f.read()
    includes = set(re.findall(r'^\s*include "([^"]+)"', text, re.M))
    headers = set(re.findall(r'^cdef extern from "([^"]+)"', text, re.M))
    cimports = set(re.findall(r"^from kernels\.cpu\.(\w+) cimport", text, re.M))
    assert includes and headers and cimports
    for name in includes | headers | {c + ".pxd" for c in cimports}:
        assert os.path.exists(os.path.join(CPU_DIR, name)), name
    for header in glob.glob(os.path.join(CPU_DIR, "*.h")):
        with open(header, encoding="utf-8") as f:
            for inc in re.findall(r'^#include "([^"]+)"', f.read(), re.M):
                assert os.path.exists(os.path.join(CPU_DIR, inc)), (header, inc)


def test_the_top_of_kernels_is_small():
    entries = {e for e in os.listdir(KERNELS_DIR) if e != "__pycache__"}
    # comm.py: the collectives of data parallelism, the one place mpi4py is imported
    # (dl may not import it: docs/architecture.md)
    assert entries == {"__init__.py", "_backend.py", "_hostops.py", "checks.py", "comm.py",
                       "reference.py", "cpu", "cuda"}, sorted(entries)


def test_the_twins_have_the_same_families():
    families = {"gemm", "dense", "elementwise", "losses", "optimizers", "normalization"}
    cpu = {os.path.splitext(e)[0] for e in os.listdir(CPU_DIR) if e.endswith(".pyx")}
    cuda = {os.path.splitext(e)[0] for e in os.listdir(os.path.join(KERNELS_DIR, "cuda"))
            if e.endswith(".py")}
    assert families <= cpu and families <= cuda
