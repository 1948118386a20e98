"""Kernel teams shrink while the cores are oversubscribed (kernels.cpu._threads: "adaptive
threads"): the policy on given readings, the readings on this system, the switch, and
on a machine with PSI a real competing process that makes the cap engage and lift."""
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import kernels

pytestmark = pytest.mark.skipif("cython" not in kernels.available_backends(),
                                reason="the cython backend is not built")

threads = pytest.importorskip("kernels.cpu._threads")


@pytest.fixture(autouse=True)
def restore():
    on, n = threads.get_adaptive_threads(), kernels.get_num_threads()
    yield
    threads.set_adaptive_threads(on)
    kernels.set_num_threads(n)


@pytest.mark.parametrize("cap, pressure, runnable, want, ncpu, expected", [
    # running wide: low (or unknown) pressure keeps teams wide
    (0, 0.0, -1, 2, 2, 0),
    (0, 0.2, 5, 2, 2, 0),
    (0, -1.0, 5, 2, 2, 0),
    # ... waiting tasks: at least one other task is assumed, teams get the rest
    (0, 0.9, 3, 2, 2, 1),       # our 2 threads and 1 other on 2 cores
    (0, 0.9, 2, 2, 2, 1),       # our team may not have been counted: still 1 other
    (0, 0.9, 3, 8, 8, 7),
    (0, 0.9, 12, 8, 8, 4),
    (0, 0.9, 40, 8, 8, 1),      # never fewer than one thread
    # capped (our other threads idle): the others are runnable - 1
    (1, 0.0, 2, 2, 2, 1),       # the competitor is still there
    (1, 0.0, 1, 2, 2, 0),       # alone again: the cap lifts
    (1, 0.0, -1, 2, 2, 0),      # no reading: no cap
    (4, 0.0, 3, 8, 8, 6),
    (4, 0.0, 2, 4, 8, 0),       # as many free cores as wanted: no cap
])
def test_policy(cap, pressure, runnable, want, ncpu, expected):
    assert threads._adapt_decide(cap, pressure, runnable, want, ncpu) == expected


def test_readings_on_this_system():
    some, runnable = threads._readings()
    if os.path.exists("/proc/pressure/cpu"):
        assert some >= 0
    else:
        assert some == -1
    if os.path.exists("/proc/loadavg"):
        assert runnable >= 1          # this thread is running
    else:
        assert runnable == -1


def test_switch():
    threads.set_adaptive_threads(False)
    assert threads.get_adaptive_threads() is False and threads.adaptive_cap() == 0
    threads.set_adaptive_threads(True)
    assert threads.get_adaptive_threads() is True
    with pytest.raises(TypeError, match="on: expected True or False"):
        threads.set_adaptive_threads(1)


def test_results_do_not_depend_on_the_switch():
    cy = kernels.get_backend("cython")
    rng = np.random.default_rng(0)
    a = rng.random((300, 500)).astype(np.float32)
    b = rng.random((500, 400)).astype(np.float32)
    kernels.set_num_threads(2)
    out = []
    for on in (False, True):
        threads.set_adaptive_threads(on)
        out.append((cy.gemm(a, b), cy.tanh(a), cy.softmax(a)))
    for u, v in zip(*out):
        np.testing.assert_array_equal(u, v)


def _wait_for(cond, seconds, work):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        work()
        if cond():
            return True
    return False


@pytest.mark.skipif(not os.path.exists("/proc/pressure/cpu"),
                    reason="this kernel reports no CPU pressure (PSI)")
@pytest.mark.skipif(len(os.sched_getaffinity(0)) != 2 if hasattr(os, "sched_getaffinity")
                    else True, reason="checked on 2 cores (as CI's machine)")
def test_a_competing_process_caps_the_team_and_the_cap_lifts():
    cy = kernels.get_backend("cython")
    x = np.random.default_rng(1).random((512, 512)).astype(np.float32)
    out = np.empty_like(x)
    kernels.set_num_threads(2)
    threads.set_adaptive_threads(True)

    def work():
        cy.gemm(x, x, out)

    competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        assert _wait_for(lambda: threads.adaptive_cap() == 1, 10.0, work), \
            "a competing CPU-bound process did not cap the 2-thread teams"
        assert threads._team_for(10**9) == 1
    finally:
        competitor.kill()
        competitor.wait()
    assert _wait_for(lambda: threads.adaptive_cap() == 0, 10.0, work), \
        "the cap did not lift after the competitor stopped"
    assert threads._team_for(10**9) == 2
    threads.set_adaptive_threads(False)
    assert threads._team_for(10**9) == 2
