"""dl talks to kernels through its public surface only.

``dl`` may import ``kernels``, ``kernels.checks`` (the shared argument checks and
messages) and ``kernels.reference`` (the spec and its tables); it reaches everything
else through a backend object (``backend.<kernel>``, ``backend.ops``).  It never
imports a private module ``kernels._*``, a twin's package ``kernels.cpu`` /
``kernels.cuda``, Numba or mpi4py.  This test parses every module of the installed
``dl`` package, so an import anywhere (inside a function too) is seen.
"""
import ast
import os
import subprocess
import sys

import pytest

import dl

DL_DIR = os.path.dirname(dl.__file__)
FORBIDDEN_ROOTS = ("numba", "mpi4py")


def _dl_modules():
    for root, _, files in os.walk(DL_DIR):
        for name in sorted(files):
            if name.endswith(".py"):
                yield os.path.join(root, name)


def _imported(tree):
    """(line, dotted name) of every module an import statement names; for
    ``from kernels import x`` also ``kernels.x`` (x may be a module)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def _violation(name):
    parts = name.split(".")
    if parts[0] in FORBIDDEN_ROOTS:
        return "Numba and mpi4py load on first use inside kernels, never from dl"
    if parts[0] != "kernels" or len(parts) == 1:
        return None
    if parts[1].startswith("_"):
        return "a private module or name of kernels"
    if parts[1] in ("cpu", "cuda"):
        return "a twin's package: reach it through a backend object"
    return None


def test_dl_imports_only_the_public_surface_of_kernels():
    found = []
    modules = list(_dl_modules())
    assert len(modules) >= 10, modules
    for path in modules:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        for line, name in _imported(tree):
            why = _violation(name)
            if why:
                found.append(f"{os.path.relpath(path, DL_DIR)}:{line}: {name} ({why})")
    assert not found, "\n".join(found)


@pytest.mark.parametrize("name, bad", [
    ("kernels", False), ("kernels.checks", False), ("kernels.reference.ACTIVATIONS", False),
    ("kernels._hostops", True), ("kernels._backend", True), ("kernels.cpu", True),
    ("kernels.cpu.backend", True), ("kernels.cuda.devops", True), ("numba.cuda", True),
    ("mpi4py", True), ("numpy", False)])
def test_the_rule_itself(name, bad):
    assert bool(_violation(name)) is bad


def test_the_parser_sees_imports_inside_functions():
    tree = ast.parse("def f():\n    from kernels import _hostops\n")
    assert [n for _, n in _imported(tree)] == ["kernels", "kernels._hostops"]


def test_import_dl_loads_neither_numba_nor_mpi4py():
    code = ("import sys, dl, numpy as np\n"
            "m = dl.Sequential([dl.layers.Dense(1, input_shape=(2,))])\n"
            "m.compile(optimizer='sgd', loss='mse')\n"
            "m.fit(np.ones((4, 2)), np.ones(4), epochs=1, verbose=0)\n"
            "bad = [k for k in sys.modules if k.split('.')[0] in ('numba', 'mpi4py')]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)
