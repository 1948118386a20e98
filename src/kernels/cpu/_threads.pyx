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

cdef extern from *:
    """
    #ifdef DLK_HAVE_OPENMP
    #include <omp.h>
    #define DLK_OPENMP 1
    #else
    #define DLK_OPENMP 0
    #endif
    #include <fcntl.h>
    #include <stdlib.h>
    #include <string.h>
    #include <time.h>
    #include <unistd.h>

    #define DLK_ADAPT_PERIOD_NS 20000000LL
    #define DLK_ADAPT_PRESSURE 0.25

    static int dlk_adapt_on = 1;
    static int dlk_cap = 0;             /* 0: no cap, else the most threads per team */
    static int dlk_checking = 0;        /* one caller at a time updates the cap */
    static long long dlk_next_ns = 0;
    static long long dlk_prev_ns = -1;
    static long long dlk_prev_some = -1;
    static long long dlk_checks = 0;        /* periods looked at, and of them capped */
    static long long dlk_capped = 0;
    static int dlk_capped_run = 0;          /* consecutive capped periods */
    /* after this many capped periods in a row the cap lifts for one period (a probe:
       the runnable count also counts short-lived kernel tasks, so "others" can be
       wrong; a real competitor makes the pressure cap again within two periods) */
    #define DLK_ADAPT_PROBE 10

    static long long dlk_now_ns(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
    }
    static int dlk_read_text(const char* path, char* buf, int size) {
        int fd = open(path, O_RDONLY), got;
        if (fd < 0) return -1;
        got = (int)read(fd, buf, (size_t)(size - 1));
        close(fd);
        if (got <= 0) return -1;
        buf[got] = 0;
        return got;
    }
    /* microseconds some task waited for a CPU since boot, or -1 */
    static long long dlk_cpu_some_us(void) {
        char buf[256];
        const char* p;
        if (dlk_read_text("/proc/pressure/cpu", buf, (int)sizeof buf) < 0) return -1;
        p = strstr(buf, "total=");
        return p ? strtoll(p + 6, NULL, 10) : -1;
    }
    /* tasks runnable right now (running or waiting for a CPU), or -1 */
    static int dlk_runnable(void) {
        char buf[128];
        char* p = buf;
        int i;
        if (dlk_read_text("/proc/loadavg", buf, (int)sizeof buf) < 0) return -1;
        for (i = 0; i < 3; i++) {
            p = strchr(p, ' ');
            if (p == NULL) return -1;
            p++;
        }
        return (int)strtol(p, NULL, 10);
    }
    /* The policy (pure, for the tests).  cap: the current cap (0: none); pressure:
       the CPU pressure over the last period (< 0: unknown); runnable: tasks runnable
       now, this calling thread included (< 0: unknown); want: the threads asked for;
       ncpu: the cores.  Returns the new cap. */
    static int dlk_adapt_decide(int cap, double pressure, int runnable, int want,
                                int ncpu) {
        int others, free_cores;
        if (cap == 0) {
            /* wide teams: waiting tasks mean oversubscription; our own team may be
               counted in runnable, so the others are at least runnable - want */
            if (pressure < DLK_ADAPT_PRESSURE) return 0;
            others = runnable - want;
            if (others < 1) others = 1;
        } else {
            /* capped, our team's other threads sleep: the others are runnable - 1 */
            if (runnable < 0) return 0;
            others = runnable - 1;
            if (others < 1) return 0;
        }
        free_cores = ncpu - others;
        if (free_cores < 1) free_cores = 1;
        return free_cores >= want ? 0 : free_cores;
    }
    static void dlk_adapt_update(long long now, int want, int ncpu) {
        long long some = dlk_cpu_some_us();
        double pressure = -1.0;
        int cap = __atomic_load_n(&dlk_cap, __ATOMIC_RELAXED);
        /* the pressure of the last period only: after a longer pause (no teams
           wanted), it would describe whatever ran meanwhile */
        if (some >= 0 && dlk_prev_some >= 0 && now > dlk_prev_ns
                && now - dlk_prev_ns <= 2 * DLK_ADAPT_PERIOD_NS)
            pressure = (double)(some - dlk_prev_some) * 1000.0 / (double)(now - dlk_prev_ns);
        if (some >= 0)
            cap = dlk_adapt_decide(cap, pressure, cap == 0 && pressure < DLK_ADAPT_PRESSURE
                                   ? -1 : dlk_runnable(), want, ncpu);
        if (cap > 0 && ++dlk_capped_run >= DLK_ADAPT_PROBE) cap = 0;
        if (cap == 0) dlk_capped_run = 0;
        __atomic_store_n(&dlk_cap, cap, __ATOMIC_RELAXED);
        dlk_checks++;
        if (cap > 0) dlk_capped++;
        dlk_prev_some = some;
        dlk_prev_ns = now;
        __atomic_store_n(&dlk_next_ns, now + DLK_ADAPT_PERIOD_NS, __ATOMIC_RELAXED);
    }
    /* The threads for a team that wants `want` (> 1) threads. */
    static int dlk_adapt(int want, int ncpu) {
        long long now;
        int cap;
        if (!__atomic_load_n(&dlk_adapt_on, __ATOMIC_RELAXED)) return want;
        now = dlk_now_ns();
        if (now >= __atomic_load_n(&dlk_next_ns, __ATOMIC_RELAXED)
                && !__atomic_exchange_n(&dlk_checking, 1, __ATOMIC_ACQUIRE)) {
            dlk_adapt_update(now, want, ncpu);
            __atomic_store_n(&dlk_checking, 0, __ATOMIC_RELEASE);
        }
        cap = __atomic_load_n(&dlk_cap, __ATOMIC_RELAXED);
        return cap > 0 && cap < want ? cap : want;
    }
    static void dlk_adapt_set(int on) {
        __atomic_store_n(&dlk_adapt_on, on, __ATOMIC_RELAXED);
        __atomic_store_n(&dlk_cap, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&dlk_next_ns, 0, __ATOMIC_RELAXED);
        dlk_prev_some = -1;
        dlk_capped_run = 0;
    }
    """
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
