"""Thread count of the compiled kernels (``kernels.set_num_threads``/``get_num_threads``).

The count is a process-wide setting read by every kernel call; each call then runs an
OpenMP team of at most that many threads, and only when its work is large enough to pay
for the start-up (``min_parallel_work``).

Oversubscription (``set_adaptive_threads``, on by default).  A team whose threads
share the cores with other busy processes waits at every barrier for a thread the
scheduler has set aside: on 2 cores with one competing CPU-bound process, a 2-thread
training epoch took 1.8 s against 0.8 s on one thread.  So at most every 20 ms, a
kernel call that would start a team looks at the machine (Linux): while our teams run
wide, the CPU pressure (``/proc/pressure/cpu``: the share of time some runnable task
waited for a CPU) above 1/4 means the cores are oversubscribed, and teams are capped
at the cores the other runnable tasks (``/proc/loadavg``) leave free, at least one
thread; while capped, the cap follows that count and lifts when nothing else runs
(and, as a probe, after 10 capped periods in a row: a real competitor caps it again).
Results do not change: every kernel computes the same bits for any thread count.
Where those files do not exist, nothing is capped.
"""
import os

cdef extern from "dlk_threads.h":
    int DLK_OPENMP
    int dlk_adapt(int want, int ncpu) nogil
    int dlk_adapt_decide(int cap, double pressure, int runnable, int want, int ncpu) nogil
    void dlk_adapt_set(int on) nogil
    int dlk_cap
    int dlk_adapt_on
    long long dlk_checks
    long long dlk_capped
    long long dlk_cpu_some_us() nogil
    int dlk_runnable() nogil

cdef int _num_threads = 1
cdef int _ncpu = 1          # cores this process may run on (the adaptive cap's bound)
# below this many elements a kernel runs on one thread: a fork/join costs a few us idle
# (and far more on a busy machine), more than splitting ~100 us of work saves
cdef Py_ssize_t _min_parallel_work = 131072


cdef int threads_for(Py_ssize_t work) noexcept nogil:
    if _num_threads <= 1 or work < _min_parallel_work:
        return 1
    return dlk_adapt(_num_threads, _ncpu)


def openmp_enabled():
    """True when the extension was compiled with OpenMP (else kernels run on one thread)."""
    return bool(DLK_OPENMP)


def _available_cores():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def set_adaptive_threads(on):
    """Whether kernel teams shrink while the cores are oversubscribed (see the module
    docstring); on by default, or off when DLKERNELS_ADAPTIVE_THREADS=0."""
    if not isinstance(on, bool):
        raise TypeError(f"on: expected True or False, got {type(on).__name__} {on!r}")
    dlk_adapt_set(1 if on else 0)


def get_adaptive_threads():
    return bool(dlk_adapt_on)


def adaptive_cap():
    """The current cap on a team's threads (0: none)."""
    return dlk_cap


def adaptive_stats():
    """(periods looked at, periods that ended capped) since the process started."""
    return dlk_checks, dlk_capped


def _team_for(Py_ssize_t work):
    """The threads a kernel with ``work`` units would use now (a test hook)."""
    return threads_for(work)


def _adapt_decide(cap, pressure, runnable, want, ncpu):
    """The adaptive policy on given readings (a test hook; see dlk_adapt_decide)."""
    return dlk_adapt_decide(cap, pressure, runnable, want, ncpu)


def _readings():
    """(microseconds some task waited for a CPU since boot, tasks runnable now); -1
    for what this system does not report (a test hook)."""
    return dlk_cpu_some_us(), dlk_runnable()


def default_num_threads():
    """Cores this process may run on, or DLKERNELS_NUM_THREADS / OMP_NUM_THREADS if set."""
    for var in ("DLKERNELS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "").split(",")[0].strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return _available_cores()


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


_ncpu = _available_cores()
set_num_threads(default_num_threads())
set_adaptive_threads(os.environ.get("DLKERNELS_ADAPTIVE_THREADS", "1").strip() != "0")
