"""Embedding kernels (a row gather and its scatter-add), float32 and float64.

Memory-bound row copies and adds: one build for every CPU (no per-ISA variants).
Arguments arrive validated from ``kernels.cpu.backend``: ``ids`` flattened to a
C-contiguous ``intp`` array of valid row numbers, the arrays C-contiguous and 2-D.

The backward is a scatter-add made deterministic without atomics: the positions are
bucketed by id with a counting sort (stable: each bucket keeps position order), then
each table row is owned by one thread, which zeroes it and adds its bucket's gradient
rows in position order.  The result is the same for any thread count, and equal to
the reference's ``np.add.at``.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy

from kernels.cpu._threads cimport threads_for


def forward(const Py_ssize_t[::1] ids, const floating[:, ::1] table,
            floating[:, ::1] out):
    """out[p] = table[ids[p]] for every position p."""
    cdef Py_ssize_t p, n = ids.shape[0], d = table.shape[1]
    cdef int nt = threads_for(n * d)
    cdef size_t row = d * sizeof(floating)
    with nogil:
        if nt == 1:
            for p in range(n):
                memcpy(&out[p, 0], &table[ids[p], 0], row)
        else:
            for p in prange(n, num_threads=nt, schedule="static"):
                memcpy(&out[p, 0], &table[ids[p], 0], row)


cdef void _row_sum(const floating* dy, const Py_ssize_t* order, Py_ssize_t lo,
                   Py_ssize_t hi, floating* acc, Py_ssize_t d) noexcept nogil:
    """acc = the sum of the rows dy[order[lo:hi]], added in that order (0 if none)."""
    cdef Py_ssize_t k, j
    cdef const floating* src
    for j in range(d):
        acc[j] = 0
    for k in range(lo, hi):
        src = dy + order[k] * d
        for j in range(d):
            acc[j] += src[j]


def backward(const floating[:, ::1] dy, const Py_ssize_t[::1] ids,
             floating[:, ::1] dtable):
    """dtable[r] = sum of dy[p] over the positions with ids[p] == r, in position
    order."""
    cdef Py_ssize_t n = ids.shape[0], rows = dtable.shape[0], d = dtable.shape[1]
    cdef Py_ssize_t p, r
    cdef int nt = threads_for(n * d + rows * d)
    # start[r]..start[r + 1]: the bucket of row r in order[]
    cdef Py_ssize_t* start = <Py_ssize_t*>malloc((rows + 1 + n) * sizeof(Py_ssize_t))
    cdef Py_ssize_t* order
    cdef Py_ssize_t* fill
    if start == NULL:
        raise MemoryError("embedding_backward: the position buckets")
    order = start + rows + 1
    fill = <Py_ssize_t*>malloc((rows + 1) * sizeof(Py_ssize_t))
    if fill == NULL:
        free(start)
        raise MemoryError("embedding_backward: the position buckets")
    with nogil:
        for r in range(rows + 1):
            start[r] = 0
        for p in range(n):
            start[ids[p] + 1] += 1
        for r in range(rows):
            start[r + 1] += start[r]
        for r in range(rows + 1):
            fill[r] = start[r]
        for p in range(n):                 # stable: each bucket in position order
            order[fill[ids[p]]] = p
            fill[ids[p]] += 1
        if nt == 1:
            for r in range(rows):
                _row_sum(&dy[0, 0], order, start[r], start[r + 1], &dtable[r, 0], d)
        else:
            for r in prange(rows, num_threads=nt, schedule="static"):
                _row_sum(&dy[0, 0], order, start[r], start[r + 1], &dtable[r, 0], d)
    free(fill)
    free(start)
