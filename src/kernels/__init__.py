"""dlkernels' compute layer: one backend object per implementation of the kernels.

>>> import kernels
>>> b = kernels.get_backend()          # the fastest available CPU backend
>>> y = b.relu(x)                      # every backend has the same kernels

``kernels.reference`` (NumPy) is the specification; ``get_backend("cython")`` the
compiled kernels (``kernels/cpu/``); ``get_backend("cuda")`` the Numba CUDA ones
(``kernels/cuda/``).  ``kernels.checks`` holds the argument checks and message helpers
every backend (and ``dl``) shares.
"""
import os as _os

# OpenMP threads that finish a kernel early spin at its closing barrier before they
# sleep; libgomp's default spin (300,000 rounds) assumes the cores are ours alone.  On
# a shared machine a spinning thread burns the time slice its descheduled partner
# needs, and 2-thread training ran 20x slower with other processes busy.  A short
# spin keeps back-to-back kernel calls fast on an idle machine and degrades gently on
# a busy one.  Set before libgomp loads (with our first extension module); a user's
# own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
if "OMP_WAIT_POLICY" not in _os.environ:
    _os.environ.setdefault("GOMP_SPINCOUNT", "3000")

from ._backend import Backend, available_backends, get_backend  # noqa: E402

__version__ = "0.1.0"

__all__ = ["Backend", "available_backends", "build_info", "get_adaptive_threads",
           "get_backend", "get_num_threads", "set_adaptive_threads", "set_num_threads"]


def set_num_threads(n):
    """Set how many threads the compiled kernels may use (an int >= 1).

    Defaults to the cores this process may run on (or ``DLKERNELS_NUM_THREADS`` /
    ``OMP_NUM_THREADS``).  NumPy's own BLAS threads are not affected.
    """
    from .cpu import _threads
    _threads.set_num_threads(n)


def get_num_threads():
    """How many threads the compiled kernels may use."""
    from .cpu import _threads
    return _threads.get_num_threads()


def set_adaptive_threads(on):
    """Whether a kernel's thread team shrinks while other processes keep the cores busy
    (on by default; DLKERNELS_ADAPTIVE_THREADS=0 turns it off at start-up).

    At most every 20 ms a kernel about to start a team reads the CPU pressure and the
    runnable tasks (Linux: /proc/pressure/cpu, /proc/loadavg); while the cores are
    oversubscribed, teams get only the cores the other tasks leave (at least one
    thread).  Results are the same bits for any thread count.
    """
    from .cpu import _threads
    _threads.set_adaptive_threads(on)


def get_adaptive_threads():
    """Whether thread teams adapt to oversubscription (see set_adaptive_threads)."""
    from .cpu import _threads
    return _threads.get_adaptive_threads()


def build_info():
    """What this build and this CPU offer: OpenMP, SIMD GEMM, elementwise, loss and
    normalisation variants, the ones in use."""
    from .cpu import _threads, elementwise, gemm, losses, normalization
    return {
        "openmp": _threads.openmp_enabled(),
        "num_threads": _threads.get_num_threads(),
        "adaptive_threads": _threads.get_adaptive_threads(),
        "cpu_features": gemm.cpu_features(),
        "gemm_impls": gemm.available_impls(),
        "gemm_impl": gemm.current_impl(),
        "ew_impls": elementwise.available_impls(),
        "ew_impl": elementwise.current_impl(),
        "loss_impls": losses.available_impls(),
        "loss_impl": losses.current_impl(),
        "norm_impls": normalization.available_impls(),
        "norm_impl": normalization.current_impl(),
    }
