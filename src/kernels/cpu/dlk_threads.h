/* The thread-count policy of the compiled kernels, in C (included by _threads.pyx
   only: the state below is this module's, one copy per process):

     dlk_adapt(want, ncpu)     the threads a team that wants `want` may start now;
     dlk_adapt_decide(...)     the pure policy, on given readings (for the tests);
     dlk_adapt_set(on)         adaptive teams on or off;
     dlk_cpu_some_us, dlk_runnable
                               the readings: /proc/pressure/cpu, /proc/loadavg.

   See _threads.pyx's docstring for the policy and the measurements behind it. */
#ifndef DLK_THREADS_H
#define DLK_THREADS_H

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

#endif /* DLK_THREADS_H */
