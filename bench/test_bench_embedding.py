"""Embedding lookups and their gradient: a batch of 128 and of 4096 sequences of 32
ids into a 10,000 x 64 table (a word embedding), float32, results into preallocated
arrays.  The backward's result is the same bits on every backend (each row's terms
added in position order), which is checked after timing."""
import numpy as np
import pytest

VOCAB, DIM, SEQ = 10_000, 64, 32
BATCHES = [pytest.param(128, id="128x32"), pytest.param(4096, id="4096x32")]


def _ids(batch):
    return np.random.default_rng(7).integers(0, VOCAB, size=(batch, SEQ))


@pytest.mark.parametrize("batch", BATCHES)
def test_embedding_forward(benchmark, backend, describe, ref, uniform, batch):
    table, ids = uniform((VOCAB, DIM)), _ids(batch)
    out = np.empty(ids.shape + (DIM,), np.float32)
    describe("embedding_forward", (batch, SEQ, DIM), elements=out.size)
    result = benchmark(backend.embedding_forward, ids, table, out)
    np.testing.assert_array_equal(result, ref.embedding_forward(ids, table))


@pytest.mark.parametrize("batch", BATCHES)
def test_embedding_backward(benchmark, backend, describe, ref, uniform, batch):
    ids, dy = _ids(batch), uniform((batch, SEQ, DIM))
    dtable = np.empty((VOCAB, DIM), np.float32)
    describe("embedding_backward", (batch, SEQ, DIM), elements=dy.size)
    result = benchmark(backend.embedding_backward, dy, ids, dtable)
    np.testing.assert_array_equal(result, ref.embedding_backward(dy, ids,
                                                                 np.empty_like(dtable)))
