"""Kernels called concurrently from several Python threads share nothing mutable.

Every comparison runs for float32 and float64 and (through the ``threads`` fixture)
with 1 and 2 kernel threads, the parallel threshold lowered to 1 element so that the
threaded code paths run even on small shapes.  Tolerances come from conftest's table.
"""

import numpy as np
import pytest

from kernels import reference as ref

from kernel_cases import run_threads
from kernel_helpers import (assert_close, normal, uniform)

# ==================================================== concurrent calls from threads
def test_concurrent_python_threads_get_the_sequential_results(cy, rng):
    """The kernels release the GIL: calls from several Python threads at once (each
    possibly starting its own OpenMP team) give the results of sequential calls."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = []
    for i in range(12):
        dtype = (np.float32, np.float64)[i % 2]
        a = uniform(rng, (90 + i, 70), dtype)
        b = uniform(rng, (70, 60 + i), dtype)
        t = uniform(rng, (90 + i, 70), dtype, 0.0, 1.0)
        jobs.append((a, b, t))

    def work(job):
        a, b, t = job
        w, g = a.copy(), t.copy()
        m, v = np.zeros_like(w), np.zeros_like(w)
        cy.adam_update(w, g, m, v, step=1)
        return [cy.gemm(a, b), cy.column_sums(a), cy.softmax(a),
                np.asarray(cy.binary_crossentropy(t, a, from_logits=True)), w]

    sequential = run_threads(2, lambda: [work(j) for j in jobs])

    def concurrent():
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(work, jobs))

    parallel = run_threads(2, concurrent)
    for seq, par in zip(sequential, parallel):
        for s, p in zip(seq, par):
            np.testing.assert_array_equal(s, p)


@pytest.mark.parametrize("shape", [(3, 600, 17), (10, 300, 128), (5, 70, 300), (1, 33, 40),
                                   (17, 5, 3)])
@pytest.mark.parametrize("activation", ["softmax", "gelu", "tanh", "relu"])
def test_dense_fused_paths_small_batches(cy, dtype, threads, rng, shape, activation):
    """The fused GEMM epilogue takes different routes for few rows, few columns and
    whole-row ownership (softmax); each must still apply bias and activation."""
    n, n_in, units = shape
    x = normal(rng, (n, n_in), dtype)
    w = normal(rng, (n_in, units), dtype, 0.1)
    b = normal(rng, (units,), dtype)
    pre = np.empty((n, units), dtype)
    y = cy.dense_forward(x, w, b, activation=activation, pre_activation=pre)
    e_pre = np.empty_like(pre)
    e_y = ref.dense_forward(x, w, b, activation=activation, pre_activation=e_pre)
    assert_close(pre, e_pre, dtype, "gemm", k=n_in, scale=float(np.abs(x).max() * np.abs(w).max()))
    assert_close(y, e_y, dtype, "gemm", k=n_in, scale=float(np.abs(x).max() * np.abs(w).max()))
    dy = normal(rng, (n, units), dtype)
    got = cy.dense_backward(dy, x, w, y, activation=activation, pre_activation=pre)
    exp = ref.dense_backward(dy, x, w, e_y, activation=activation, pre_activation=e_pre)
    for g, e in zip(got, exp):
        assert_close(g, e, dtype, "gemm", k=max(n, n_in, units),
                     scale=float(np.abs(e).max()) + 1.0)
