"""Results are bit-identical whatever the number of kernel threads.

Every comparison runs for float32 and float64 and (through the ``threads`` fixture)
with 1 and 2 kernel threads, the parallel threshold lowered to 1 element so that the
threaded code paths run even on small shapes.  Tolerances come from conftest's table.
"""

import numpy as np
import pytest

import kernels
from kernels.cpu import _threads
from kernels import reference as ref

from kernel_cases import run_threads, det_cases, DET_NAMES, flatten
from kernel_helpers import (assert_close, uniform)

# =========================================================== thread-count determinism
@pytest.mark.parametrize("case", DET_NAMES)
def test_one_and_two_threads_bit_identical(cy, dtype, case):
    rng1 = np.random.default_rng(7)
    rng2 = np.random.default_rng(7)
    one = flatten(run_threads(1, det_cases(rng1, dtype)[case]))
    two = flatten(run_threads(2, det_cases(rng2, dtype)[case]))
    assert len(one) == len(two)
    for r1, r2 in zip(one, two):
        np.testing.assert_array_equal(r1, r2)
    # and not merely identical: right
    if case == "gemm":
        rng3 = np.random.default_rng(7)
        a = uniform(rng3, (150, 170), dtype)
        b = uniform(rng3, (170, 90), dtype)
        assert_close(one[0], ref.gemm(a, b), dtype, "gemm", k=170)


def test_threads_fixture_takes_threaded_path(threads):
    assert kernels.get_num_threads() == threads
    old = _threads.set_min_parallel_work(1)
    assert old == 1
    _threads.set_min_parallel_work(old)
