"""The Dense layer on the GPU: forward and backward passes on the GEMM of ``gemm.py``.

The forward pass is one launch (GEMM + bias + activation, the pre-activation
optionally stored; softmax and log_softmax add their row kernel); the backward pass
is ``backprop_colsum`` (dz and db in one pass; a row activation: its row kernel then
``column_sums``), then ``dw = x^T dz`` and ``dx = dz w^T`` as transposed GEMM launches
reading ``x``, ``w`` and a per-thread scratch ``dz`` in place.
"""
import threading

import numpy as np

from . import _nb
from .. import checks as check
from ._arrays import Call
from ._compile import kernels, launch_1d
from .elementwise import _DEFAULT_PARAM, ACT, apply_activation, apply_backprop
from .gemm import launch_gemm
from ..reference import ROW_ACTIVATIONS


def dense_forward(x, w, b=None, out=None, *, activation="linear", pre_activation=None):
    c = Call(x=x, w=w, b=b, out=out, pre_activation=pre_activation)
    out, pre, activation = check.dense_forward_args(
        c.v["x"], c.v["w"], c.v["b"], c.v["out"], activation, c.v["pre_activation"])
    dtype = out.dtype
    d_out = c.dev(out, name="out")
    rows = activation in ROW_ACTIVATIONS
    # one launch: z = x @ w (+ b), pre = z, out = activation(z) (softmax: out = z)
    launch_gemm(dtype, c.dev(c.v["x"], contiguous=False, name="x"),
                c.dev(c.v["w"], contiguous=False, name="w"), d_out,
                bias=c.dev(c.v["b"], contiguous=False, name="b"),
                pre=c.dev(pre, contiguous=False, name="pre_activation"),
                act=ACT["linear"] if rows else ACT[activation],
                param=_DEFAULT_PARAM.get(activation, 0.0))
    if rows:
        apply_activation(dtype, activation, d_out, d_out)
    c.write_back(out, pre)
    return c.result(out)


_scratch = threading.local()


def _scratch_buffer(shape, dtype):
    """A device scratch array reused across calls by this thread (dz of the backward
    pass: no allocation per training step, and threads share nothing)."""
    cache = getattr(_scratch, "buffers", None)
    if cache is None:
        cache = _scratch.buffers = {}
    key = (tuple(shape), np.dtype(dtype).str)
    buf = cache.get(key)
    if buf is None:
        if len(cache) >= 16:       # bound the memory kept for shapes seen once
            cache.clear()
        buf = cache[key] = _nb.device_array(tuple(shape), np.dtype(dtype))
    return buf


def dense_backward(dy, x, w, y, *, activation="linear", pre_activation=None,
                   dx=None, dw=None, db=None, need_dx=True, use_bias=True):
    # y or pre_activation is ignored (as by the reference) when the activation does not
    # use it: only the one it uses takes part in the host/device classification
    needs_input = isinstance(activation, str) and activation in check.ACTIVATIONS_NEEDING_INPUT
    c = Call(dy=dy, x=x, w=w, y=None if needs_input else y,
             pre_activation=pre_activation if needs_input else None, dx=dx, dw=dw, db=db)
    dx, dw, db, saved, activation = check.dense_backward_args(
        c.v["dy"], c.v["x"], c.v["w"], c.v["y"], activation, c.v["pre_activation"],
        c.v["dx"], c.v["dw"], c.v["db"], need_dx, use_bias)
    saved_name = "pre_activation" if activation in check.ACTIVATIONS_NEEDING_INPUT else "y"
    dtype = dw.dtype
    K = kernels(dtype)
    d_dy = c.dev(c.v["dy"], name="dy")
    d_saved = c.dev(saved, name=saved_name)
    d_db = c.dev(db, name="db")
    dz = _scratch_buffer(saved.shape, dtype)
    if activation in ROW_ACTIVATIONS:
        apply_backprop(dtype, activation, d_dy, d_saved, dz)
        if d_db is not None:
            launch_1d(K.column_sums, dz.shape[1], dz, d_db)
    else:
        launch_1d(K.backprop_colsum, dz.shape[1], d_dy, d_saved, dz,
                  dz[0] if d_db is None else d_db, ACT[activation],
                  _DEFAULT_PARAM.get(activation, 0.0), d_db is not None)
    d_x = c.dev(c.v["x"], contiguous=False, name="x")
    launch_gemm(dtype, d_x, dz, c.dev(dw, contiguous=False, name="dw"), trans_a=True)
    if dx is not None:
        d_w = c.dev(c.v["w"], contiguous=False, name="w")
        launch_gemm(dtype, dz, d_w, c.dev(dx, contiguous=False, name="dx"), trans_b=True)
    c.write_back(dx, dw, db)
    return (None if dx is None else c.result(dx), c.result(dw),
            None if db is None else c.result(db))
