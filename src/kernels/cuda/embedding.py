"""Embedding CUDA kernels: the row gather and its deterministic scatter-add.

Forward: one thread per output element.  Backward: one thread per element of the
table's gradient, which scans the ids in position order and adds the gradient rows
that name its row: no atomics, so every run (and the CPU twins) add in the same order.
That scan costs ``input_dim * output_dim * positions`` id reads: fine for the
vocabularies of the examples and tests, a sort-based pass would be the next step for
large ones.

Ids on the device are int64, or floats of the table's dtype holding whole numbers
(what dl's packed inputs carry).  A kernel cannot raise, and device ids are not read
back: an id that is out of range, fractional or NaN gives a NaN output row and adds
nothing to the table's gradient.  Host ids are validated as the reference does.
"""
import math

import numpy as np

from .. import checks as check
from . import _nb
from ._nb import cuda
from ._arrays import Call
from ._compile import kernels, launch_1d, register


def _gather(dtype, float_ids):
    T = np.dtype(dtype).type
    nan, zero = T(math.nan), T(0)
    # float ids below this are whole numbers an int64 holds exactly (larger ones are no
    # row of a table in memory); compared in the ids' dtype, then as integers, so a
    # float32 kernel needs no float64 (comparing a float32 with the int64 row count
    # would convert both to float64)
    limit = T(2.0**62)

    def gather(ids, table, out):
        d = out.shape[1]
        rows = table.shape[0]
        for i in range(cuda.grid(1), out.shape[0] * d, cuda.gridsize(1)):
            p = i // d
            j = i - p * d
            v = ids[p]
            if float_ids:
                # NaN fails the first comparison, infinities the second
                ok = v >= zero and v < limit and T(math.floor(v)) == v
                k = int(v) if ok else 0
                ok = ok and k < rows
            else:
                k = v
                ok = k >= 0 and k < rows
            out[p, j] = table[k, j] if ok else nan
    return gather


def _scatter(dtype, float_ids):
    T = np.dtype(dtype).type
    zero = T(0)

    def scatter(ids, dy, dtable):
        d = dtable.shape[1]
        n = ids.shape[0]
        for i in range(cuda.grid(1), dtable.shape[0] * d, cuda.gridsize(1)):
            r = i // d
            j = i - r * d
            s = zero
            for p in range(n):
                v = ids[p]
                # a float32 id equal to T(r) may still be another row: T(r) rounds r
                # above 2**24 (the row the gather reads is int(v))
                hit = (v == T(r) and int(v) == r) if float_ids else v == r
                if hit:
                    s += dy[p, j]
            dtable[r, j] = s
    return scatter


register("embedding_gather", "L1 C2 C2")(lambda dtype: _gather(dtype, False))
register("embedding_gather_f", "C1 C2 C2")(lambda dtype: _gather(dtype, True))
register("embedding_scatter", "L1 C2 C2")(lambda dtype: _scatter(dtype, False))
register("embedding_scatter_f", "C1 C2 C2")(lambda dtype: _scatter(dtype, True))


def _device_ids(ids, dtype):
    """Checks device ids without reading them; returns whether they are floats."""
    if ids.dtype != np.int64 and ids.dtype != dtype:
        raise TypeError(f"ids: expected int64 ids (or {np.dtype(dtype).name}, the table's "
                        f"dtype, holding whole numbers) on the device, got dtype "
                        f"{ids.dtype}")
    if ids.size == 0:
        raise ValueError(f"ids: expected at least one id, got shape {ids.shape}")
    return ids.dtype != np.int64


def _ids(c, dtype, n_rows):
    """(flat device ids, whether they are floats) for the call ``c``."""
    v = c.v["ids"]
    if c.on_device:
        is_float = _device_ids(v, dtype)
        d = c.dev(v, name="ids")
        return d.reshape(d.size) if d.ndim != 1 else d, is_float
    flat = check.embedding_ids("ids", v, n_rows)
    return _nb.to_device(flat.astype(np.int64)), False


def embedding_forward(ids, table, out=None):
    c = Call(ids=ids, table=table, out=out)
    check.array("table", c.v["table"], ndim=2)
    v_table = c.v["table"]
    dtype = v_table.dtype
    flat, is_float = _ids(c, dtype, v_table.shape[0])
    out = check.output("out", c.v["out"], tuple(c.v["ids"].shape) + (v_table.shape[1],),
                       dtype, inputs=(("table", v_table), ("ids", c.v["ids"])))
    o = c.dev(out, name="out")
    o2 = o.reshape(flat.shape[0], v_table.shape[1]) if o.ndim != 2 else o
    K = kernels(dtype)
    launch_1d(K.embedding_gather_f if is_float else K.embedding_gather, o2.size, flat,
              c.dev(v_table, name="table"), o2)
    c.write_back(out)
    return c.result(out)


def embedding_backward(dy, ids, dtable):
    c = Call(dy=dy, ids=ids, dtable=dtable)
    v_dy, v_dt = c.v["dy"], c.v["dtable"]
    check.array("dy", v_dy, min_ndim=1)
    if v_dt is None:
        raise TypeError("dtable: expected an array of shape (input_dim, output_dim) (the "
                        "table's rows), got None")
    check.array("dtable", v_dt, ndim=2, dtype=v_dy.dtype)
    flat, is_float = _ids(c, v_dy.dtype, v_dt.shape[0])
    check.same_shape("dy", v_dy, tuple(c.v["ids"].shape) + (v_dt.shape[1],),
                     "ids.shape + (output_dim,)")
    check.output("dtable", v_dt, v_dt.shape, v_dy.dtype,
                 inputs=(("dy", v_dy), ("ids", c.v["ids"])))
    d = c.dev(v_dy, name="dy")
    d2 = d.reshape(flat.shape[0], v_dt.shape[1]) if d.ndim != 2 else d
    t = c.dev(v_dt, name="dtable")
    K = kernels(v_dy.dtype)
    launch_1d(K.embedding_scatter_f if is_float else K.embedding_scatter, t.size, flat,
              d2, t)
    c.write_back(v_dt)
    return c.result(v_dt)
