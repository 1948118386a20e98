"""Thread count of the compiled kernels (``kernels.set_num_threads``/``get_num_threads``).

The count is a process-wide setting read by every kernel call; each call then runs an
OpenMP team of at most that many threads, and only when its work is large enough to pay
for the start-up (``min_parallel_work``).
"""
import os

cdef extern from *:
    """
    #ifdef DLK_HAVE_OPENMP
    #include <omp.h>
    #define DLK_OPENMP 1
    #else
    #define DLK_OPENMP 0
    #endif
    """
    int DLK_OPENMP

cdef int _num_threads = 1
# below this many elements a kernel runs on one thread: a fork/join costs a few us idle
# (and far more on a busy machine), more than splitting ~100 us of work saves
cdef Py_ssize_t _min_parallel_work = 131072


cdef int threads_for(Py_ssize_t work) noexcept nogil:
    if _num_threads <= 1 or work < _min_parallel_work:
        return 1
    return _num_threads


def openmp_enabled():
    """True when the extension was compiled with OpenMP (else kernels run on one thread)."""
    return bool(DLK_OPENMP)


def default_num_threads():
    """Cores this process may run on, or DLKERNELS_NUM_THREADS / OMP_NUM_THREADS if set."""
    for var in ("DLKERNELS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "").split(",")[0].strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def set_num_threads(n):
    """Set how many threads the compiled kernels may use (an int >= 1)."""
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n: expected an int >= 1, got {type(n).__name__} {n!r}")
    if n < 1:
        raise ValueError(f"n: expected an int >= 1, got {n}")
    _num_threads = n


def get_num_threads():
    """How many threads the compiled kernels may use."""
    return _num_threads


def set_min_parallel_work(n):
    """Smallest work (elements) that is split across threads; returns the old value.

    Tuning and test hook: the tests set it to 1 so that small shapes exercise the
    threaded code paths.
    """
    global _min_parallel_work
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected an int >= 1, got {n!r}")
    old = _min_parallel_work
    _min_parallel_work = n
    return old


set_num_threads(default_num_threads())
