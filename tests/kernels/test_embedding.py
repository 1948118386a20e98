"""Embedding kernels: the gather and its scatter-add against the reference (itself
checked against NumPy's fancy indexing and np.add.at written out), every backend,
dtype and thread count (1 and 2 threads bit-identical: each table row is summed by one
thread in position order), id layouts (integer and whole-float ids, any rank), and the
backward as the forward's transpose.  Bad inputs are in test_bad_inputs.py."""
import numpy as np
import pytest

import kernels
from kernels import reference as ref

from kernel_helpers import normal

SHAPES = [(1,), (5,), (3, 4), (2, 3, 2)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("float_ids", [False, True], ids=["int_ids", "float_ids"])
def test_forward_and_backward_match_reference(backend, dtype, threads, rng, shape,
                                              float_ids):
    table = normal(rng, (7, 5), dtype)
    ids = rng.integers(0, 7, size=shape)
    if float_ids:
        ids = ids.astype(dtype)
    dy = normal(rng, tuple(shape) + (5,), dtype)
    out = backend.embedding_forward(ids, table)
    np.testing.assert_array_equal(out, table[ids.astype(np.intp)])
    np.testing.assert_array_equal(out, ref.embedding_forward(ids, table))
    got = backend.embedding_backward(dy, ids, np.full((7, 5), np.nan, dtype))
    expected = np.zeros((7, 5), dtype)
    flat = ids.reshape(-1).astype(np.intp)
    for p in range(flat.size):                      # in position order, as documented
        expected[flat[p]] += dy.reshape(-1, 5)[p]
    np.testing.assert_array_equal(got, expected)


def test_many_repeats_are_bit_identical_for_any_thread_count(cy, dtype, rng):
    """Large enough for several threads; ids repeated thousands of times each: the
    sums are added in position order whatever the thread count."""
    table = normal(rng, (50, 64), dtype)
    ids = rng.integers(0, 50, size=(4096,))
    dy = normal(rng, (4096, 64), dtype)
    results = []
    old = kernels.get_num_threads()
    try:
        for n in (1, 2):
            kernels.set_num_threads(n)
            results.append((cy.embedding_forward(ids, table),
                            cy.embedding_backward(dy, ids, np.empty((50, 64), dtype))))
    finally:
        kernels.set_num_threads(old)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(results[0][1],
                                  ref.embedding_backward(dy, ids, np.empty((50, 64), dtype)))


def test_backward_is_the_transpose_of_forward(backend, rng):
    """<forward(ids, T), dY> = <T, backward(dY, ids)> for any T and dY: the gradient of
    a linear map (the finite-difference check, exact here)."""
    table = normal(rng, (6, 3), np.dtype(np.float64))
    ids = rng.integers(0, 6, size=(4, 2))
    dy = normal(rng, (4, 2, 3), np.dtype(np.float64))
    lhs = np.sum(backend.embedding_forward(ids, table) * dy)
    rhs = np.sum(table * backend.embedding_backward(dy, ids, np.empty((6, 3))))
    assert lhs == pytest.approx(rhs, rel=1e-12)


def test_out_and_unread_rows(backend, dtype, rng):
    table = normal(rng, (4, 2), dtype)
    out = np.empty((2, 2), dtype)
    assert backend.embedding_forward(np.array([3, 0]), table, out) is out
    dtable = np.full((4, 2), 7.0, dtype)
    assert backend.embedding_backward(np.ones((2, 2), dtype), np.array([3, 3]), dtable) \
        is dtable
    np.testing.assert_array_equal(dtable, [[0, 0], [0, 0], [0, 0], [2, 2]])
    strided = np.empty((2, 4), dtype)[:, ::2]       # a non-contiguous out
    backend.embedding_forward(np.array([1, 2]), table, strided)
    np.testing.assert_array_equal(strided, table[[1, 2]])


def test_cuda_matches_and_marks_bad_device_ids(cuda, dtype, rng):
    from kernels.cuda import _nb
    table = normal(rng, (6, 3), dtype)
    ids = rng.integers(0, 6, size=(5, 2))
    dy = normal(rng, (5, 2, 3), dtype)
    np.testing.assert_array_equal(cuda.embedding_forward(ids, table), table[ids])
    np.testing.assert_array_equal(cuda.embedding_backward(dy, ids, np.empty((6, 3), dtype)),
                                  ref.embedding_backward(dy, ids, np.empty((6, 3), dtype)))
    # device ids (int64, or floats of the dtype): nothing read back, bad ids give NaN
    # rows and add nothing
    d_table = _nb.to_device(table)
    for bad in (np.array([0, 6, -1, 2], np.int64), np.array([0, 6.0, 0.5, 2], dtype),
                np.array([0, np.nan, -1.0, 2], dtype), np.array([0, np.inf, -np.inf, 2], dtype),
                np.array([0, 1e30, 2.0**62, 2], dtype)):
        out = cuda.embedding_forward(_nb.to_device(bad), d_table).copy_to_host()
        assert np.isnan(out[1:3]).all() and not np.isnan(out[[0, 3]]).any()
        np.testing.assert_array_equal(out[[0, 3]], table[[0, 2]])
        g = cuda.embedding_backward(_nb.to_device(np.ones((4, 3), dtype)), _nb.to_device(bad),
                                    _nb.to_device(np.empty((6, 3), dtype))).copy_to_host()
        np.testing.assert_array_equal(g.sum(axis=1), [3, 0, 3, 0, 0, 0])
    with pytest.raises(TypeError, match="ids: expected int64 ids"):
        cuda.embedding_forward(_nb.to_device(np.array([0], np.int32)), d_table)


@pytest.mark.parametrize("layout", ["F", "rows2"])
def test_forward_writes_an_out_of_any_layout(backend, rng, layout):
    """A given out that is not C-contiguous is written (the reference once wrote a
    reshaped copy of it, leaving out as it was)."""
    from kernel_helpers import with_layout
    table = normal(rng, (4, 3), np.float64)
    ids = np.array([[1, 0], [3, 1]])
    out = with_layout(np.zeros((2, 2, 3)), layout)
    got = backend.embedding_forward(ids, table, out)
    assert got is out
    np.testing.assert_array_equal(out, table[ids])
