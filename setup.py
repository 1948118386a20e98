"""Build the compiled kernels of dlkernels.

The Cython backend lives in ``src/kernels/cpu/``.  Every module there is built for
baseline x86-64 (or whatever the target's default is), so the package imports on any
CPU.  The GEMM core, the elementwise and the loss kernels are compiled once more per
SIMD instruction set (AVX2+FMA, AVX-512) as ``<family>_avx2`` / ``<family>_avx512``;
the family's dispatcher (``kernels.cpu.gemm``, ``.elementwise``, ``.losses``) imports
one of those only after checking, at run time, that the CPU supports it.

Environment switches:
  DLKERNELS_NATIVE=1       also compile every module with -march=native (opt-in; the
                           result only runs on CPUs like the build machine's).
  DLKERNELS_DEBUG=1        Cython bounds checking and wraparound back on, -O0 -g.
  DLKERNELS_NO_OPENMP=1    build without OpenMP even where the compiler has it.
  DLKERNELS_SANITIZE=address  build with AddressSanitizer.
"""
import glob
import os
import platform
import subprocess
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("DLKERNELS_DEBUG", "") not in ("", "0")
NATIVE = os.environ.get("DLKERNELS_NATIVE", "") not in ("", "0")
NO_OPENMP = os.environ.get("DLKERNELS_NO_OPENMP", "") not in ("", "0")
SANITIZE = os.environ.get("DLKERNELS_SANITIZE", "")

IS_X86_64 = platform.machine().lower() in ("x86_64", "amd64")
CPU_DIR = "src/kernels/cpu"
# A debug build keeps every file it makes (generated C, objects, modules) under its own
# build folder: build_ext reuses outputs that look up to date by their timestamps, and
# `build_ext --inplace` copies modules from build/lib, so a debug module left there
# would otherwise end up in a later release build.
BUILD_BASE = "build/debug" if DEBUG else "build"

# Modules of kernels.cpu built once, for the baseline instruction set.
BASE_MODULES = [
    "_isa",
    "_threads",
    "gemm_base",
    "gemm",
    "elementwise_base",
    "elementwise",
    "losses_base",
    "losses",
    "optimizers",
    "normalization_base",
    "normalization",
    "embedding",
    "conv_base",
    "conv",
    "pooling",
    "dense",
    "_fastargs",
]
# The GEMM core, the elementwise and the loss kernels again, per SIMD instruction set:
# (module, extra compiler flags).
AVX2_FLAGS = ["-mavx2", "-mfma"]
AVX512_FLAGS = ["-mavx512f", "-mavx512dq", "-mavx512vl", "-mavx512bw",
                "-mavx2", "-mfma", "-mprefer-vector-width=512"]
SIMD_MODULES = [
    ("gemm_avx2", AVX2_FLAGS),
    ("gemm_avx512", AVX512_FLAGS),
    ("elementwise_avx2", AVX2_FLAGS),
    ("elementwise_avx512", AVX512_FLAGS),
    ("losses_avx2", AVX2_FLAGS),
    ("losses_avx512", AVX512_FLAGS),
    ("normalization_avx2", AVX2_FLAGS),
    ("normalization_avx512", AVX512_FLAGS),
    ("conv_avx2", AVX2_FLAGS),
    ("conv_avx512", AVX512_FLAGS),
]
# The GEMM variants' hot loops start on a 64-byte line (-falign-loops=64): with gcc's
# default 16, where the same instructions landed within the lines depended on the
# code around them, and moving code elsewhere in the module (the split of
# gemm_impl.pxi) made the AVX-512 float32 dot-product path of a 32x128 @ 128x10
# product 13% slower with identical machine code, the AVX2 one 5% faster.  Aligned,
# both are at least as fast as either placement.
ALIGNED_LOOP_MODULES = {"gemm_base", "gemm_avx2", "gemm_avx512"}
# Modules compiled with -ffp-contract=off: gcc may not fuse a * b + c into an fma on
# its own (it could do so in a loop's vector body and not in its scalar tail, giving
# an element different bits depending on where a chunk starts); their code asks for
# fma explicitly where it wants one (dlk_fmath.h's DLK_FMAF).
NO_CONTRACT_MODULES = {"elementwise_base", "elementwise_avx2", "elementwise_avx512",
                       "losses_base", "losses_avx2", "losses_avx512"}

COMPILER_DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
    "binding": True,
}


def _compiler_accepts(cc_cmd, flags, code="int main(void){return 0;}\n"):
    """True when the C compiler builds and links a tiny program with ``flags``."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(code)
        cmd = list(cc_cmd) + flags + [src, "-o", os.path.join(tmp, "probe")]
        try:
            return subprocess.run(cmd, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL).returncode == 0
        except OSError:
            return False


OPENMP_PROBE = """
#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    return omp_get_max_threads() > 0 && n > 0 ? 0 : 1;
}
"""


class BuildExt(build_ext):
    """build_ext that probes the compiler for OpenMP and SIMD flags first, and compiles
    the modules side by side (one per core) unless told otherwise (-j)."""

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:
            self.parallel = os.cpu_count() or 1

    def build_extensions(self):
        cc = getattr(self.compiler, "compiler_so", None) or ["cc"]
        cc = [cc[0]]
        unix_like = self.compiler.compiler_type == "unix"
        openmp = (unix_like and not NO_OPENMP
                  and _compiler_accepts(cc, ["-fopenmp"], OPENMP_PROBE))
        print(f"dlkernels: OpenMP {'on' if openmp else 'off'}")
        align_loops = unix_like and _compiler_accepts(cc, ["-falign-loops=64"])
        keep = []
        for ext in self.extensions:
            simd = getattr(ext, "simd_flags", None)
            if simd is not None:
                if not (unix_like and IS_X86_64 and _compiler_accepts(cc, simd)):
                    print(f"dlkernels: skipping {ext.name} (compiler lacks {' '.join(simd)})")
                    continue
                ext.extra_compile_args += simd
            if unix_like:
                ext.extra_compile_args += (["-O0", "-g"] if DEBUG else ["-O3", "-g0"])
                # -fno-math-errno: sqrt need not set errno; -fno-trapping-math: a float
                # compare may be evaluated for both sides of a select (we never enable FP
                # traps).  Together they let gcc vectorise our loops; neither changes a
                # single result bit (unlike -ffast-math, which is not used).
                ext.extra_compile_args += ["-fno-math-errno", "-fno-trapping-math",
                                           "-Wno-unused-function", "-Wno-maybe-uninitialized"]
                if align_loops and ext.name.rsplit(".", 1)[-1] in ALIGNED_LOOP_MODULES:
                    ext.extra_compile_args += ["-falign-loops=64"]
                if ext.name.rsplit(".", 1)[-1] in NO_CONTRACT_MODULES:
                    ext.extra_compile_args += ["-ffp-contract=off"]
                if NATIVE:
                    ext.extra_compile_args += ["-march=native"]
                if openmp:
                    ext.extra_compile_args += ["-fopenmp"]
                    ext.extra_link_args += ["-fopenmp"]
                    ext.define_macros.append(("DLK_HAVE_OPENMP", "1"))
                if SANITIZE:
                    ext.extra_compile_args += [f"-fsanitize={SANITIZE}", "-fno-omit-frame-pointer"]
                    ext.extra_link_args += [f"-fsanitize={SANITIZE}"]
            keep.append(ext)
        self.extensions = keep
        super().build_extensions()


def _extensions():
    from Cython.Build import cythonize

    def extension(name):
        # the C headers (dlk_*.h) sit beside the .pyx files; listed as dependencies so
        # that a changed header rebuilds the modules
        return Extension(f"kernels.cpu.{name}", [f"{CPU_DIR}/{name}.pyx"],
                         include_dirs=[CPU_DIR],
                         depends=sorted(glob.glob(f"{CPU_DIR}/dlk_*.h")))

    exts = [extension(name) for name in BASE_MODULES]
    # _fastargs reads array headers through NumPy's C API
    import numpy
    exts[BASE_MODULES.index("_fastargs")].include_dirs.append(numpy.get_include())
    exts[BASE_MODULES.index("_fastargs")].define_macros.append(
        ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"))
    if IS_X86_64:
        for name, _ in SIMD_MODULES:
            exts.append(extension(name))
    exts = cythonize(
        exts,
        compiler_directives=COMPILER_DIRECTIVES,
        include_path=["src"],
        # the debug build's C (bounds checks on) apart from the release build's: cythonize
        # regenerates a .c only when its sources are newer, not when directives change
        build_dir=f"{BUILD_BASE}/cython" if DEBUG else None,
        quiet=True,
        nthreads=os.cpu_count() or 1,       # Cython's C generation, a module per core
    )
    # cythonize returns new Extension objects: attach the SIMD flags afterwards.
    simd = dict(SIMD_MODULES)
    for ext in exts:
        short = ext.name.rsplit(".", 1)[-1]
        if short in simd:
            ext.simd_flags = simd[short]
    return exts


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt},
      options={"build": {"build_base": BUILD_BASE}})
