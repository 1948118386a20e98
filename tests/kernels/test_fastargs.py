"""kernels.cpu._fastargs: the C test of the common case that lets the cython wrappers of
gemm, dense_forward and dense_backward skip the Python checks.

Its contract: it may say False for anything (the full checks then run), but it must
never say True for arguments ``kernels.checks`` rejects, nor for a layout the compiled
kernel cannot take as is.  Checked here over every single bad variation of each
argument and over random combinations of them; and that it does say True for the
common case (else the fast path would silently never run).
"""
import itertools

import numpy as np
import pytest

import kernels
from kernels import checks as check

pytestmark = [pytest.mark.filterwarnings("ignore:the matrix subclass"),
              pytest.mark.skipif("cython" not in kernels.available_backends(),
                                 reason="the cython backend is not built")]

fastargs = pytest.importorskip("kernels.cpu._fastargs")


def _variants(base, *, output):
    """(name, array) variations of ``base``: the good one first, then bad ones."""
    dt = base.dtype
    other = np.float64 if dt == np.float32 else np.float32
    out = [("good", base)]
    out.append(("other dtype", base.astype(other)))
    out.append(("int", base.astype(np.int64)))
    out.append(("byteswapped", base.astype(dt.newbyteorder())))
    raw = np.zeros(base.nbytes + 1, np.uint8)
    unaligned = raw[1:].view(dt).reshape(base.shape)
    unaligned[...] = base
    out.append(("unaligned", unaligned))
    out.append(("matrix", np.asmatrix(base) if base.ndim == 2 else base.view(np.ma.MaskedArray)))
    out.append(("masked", base.view(np.ma.MaskedArray)))
    out.append(("list", base.tolist()))
    out.append(("empty", np.empty((0,) + base.shape[1:], dt)))
    out.append(("extra dim", base[None]))
    if base.ndim == 2:
        out.append(("flat", base.reshape(-1)))
        out.append(("short", base[:-1] if base.shape[0] > 1 else base[:, :0]))
        out.append(("narrow", base[:, :-1] if base.shape[1] > 1 else base[:0]))
        big = np.zeros((base.shape[0], base.shape[1] * 2), dt)
        big[:, ::2] = base
        out.append(("strided", big[:, ::2]))
        out.append(("fortran", np.asfortranarray(base)))
        out.append(("reversed", base[::-1]))
        bytes_view = np.zeros(base.size * dt.itemsize * 2 + 1, np.uint8)
        odd = np.lib.stride_tricks.as_strided(
            bytes_view[:base.size * dt.itemsize].view(dt),
            shape=base.shape, strides=(base.shape[1] * dt.itemsize + 1, dt.itemsize))
        out.append(("odd stride", odd))
        out.append(("huge broadcast", np.broadcast_to(base[:1, :1], (2**36, 2**20))))
    else:
        out.append(("strided", np.repeat(base, 2)[::2]))
        out.append(("huge broadcast", np.broadcast_to(base[:1], (2**50,))))
    if output:
        ro = base.copy()
        ro.flags.writeable = False
        out.append(("read-only", ro))
    out.append(("none", None))
    return out


def _checks_accept(fn, *args):
    try:
        fn(*args)
    except (TypeError, ValueError):
        return False
    return True


def _kernel_layout_ok(arrays_c, arrays_strided):
    """What the compiled kernel takes as is: C-contiguous where the wrapper would
    otherwise copy (``_c``), element-multiple strides elsewhere (``_strided``)."""
    for a in arrays_c:
        if a is not None and not a.flags.c_contiguous:
            return False
    for a in arrays_strided:
        if a is not None and any(s % a.itemsize for s in a.strides):
            return False
    return True


def _forward_case(m=6, k=5, n=4, dtype=np.float32):
    rng = np.random.default_rng(0)
    return dict(x=rng.random((m, k)).astype(dtype), w=rng.random((k, n)).astype(dtype),
                b=rng.random(n).astype(dtype), out=np.zeros((m, n), dtype),
                pre=np.zeros((m, n), dtype))


def _forward_verdicts(x, w, b, out, pre):
    fast = fastargs.dense_forward(x, w, b, out, pre)
    accepted = _checks_accept(check.dense_forward_args, x, w, b, out, "relu", pre)
    return fast, accepted and _kernel_layout_ok([b, out, pre], [x, w])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_forward_common_case_is_fast(dtype):
    case = _forward_case(dtype=dtype)
    assert fastargs.dense_forward(**case)
    assert fastargs.dense_forward(case["x"], case["w"], None, case["out"], None)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_forward_never_accepts_what_the_checks_reject(dtype):
    case = _forward_case(dtype=dtype)
    names = list(case)
    tried = 0
    for name in names:
        for label, value in _variants(case[name], output=name in ("out", "pre")):
            args = dict(case, **{name: value})
            fast, ok = _forward_verdicts(**args)
            assert not fast or ok, (name, label)
            tried += 1
    assert tried > 60


def test_dense_forward_overlaps_are_left_to_the_checks():
    case = _forward_case()
    x, w, b, out, pre = case.values()
    buf = np.zeros(200, np.float32)
    # out inside x, pre inside out, out == pre, out overlapping b, pre overlapping w
    joint = np.zeros((6, 9), np.float32)
    for args in [(joint[:, :5], w, b, joint[:, 5:], None),     # interleaved rows
                 (x, w, b, out, out),
                 (x, w, buf[:4], buf[2:26].reshape(6, 4), None),
                 (x, buf[:20].reshape(5, 4), b, out, buf[10:34].reshape(6, 4))]:
        assert not fastargs.dense_forward(*args)


def _backward_case(m=6, k=5, n=4, dtype=np.float32):
    rng = np.random.default_rng(1)
    return dict(dy=rng.random((m, n)).astype(dtype), x=rng.random((m, k)).astype(dtype),
                w=rng.random((k, n)).astype(dtype), saved=rng.random((m, n)).astype(dtype),
                dx=np.zeros((m, k), dtype), dw=np.zeros((k, n), dtype),
                db=np.zeros(n, dtype))


def _backward_verdicts(dy, x, w, saved, dx, dw, db):
    fast = fastargs.dense_backward(dy, x, w, saved, dx, dw, db)
    accepted = _checks_accept(check.dense_backward_args, dy, x, w, saved, "relu", None,
                              dx, dw, db, dx is not None, db is not None)
    return fast, accepted and _kernel_layout_ok([dy, saved, dx, dw, db], [x, w])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_backward_common_case_is_fast(dtype):
    case = _backward_case(dtype=dtype)
    assert fastargs.dense_backward(**case)
    assert fastargs.dense_backward(**dict(case, dx=None, db=None))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_backward_never_accepts_what_the_checks_reject(dtype):
    case = _backward_case(dtype=dtype)
    for name in case:
        for label, value in _variants(case[name], output=name in ("dx", "dw", "db")):
            fast, ok = _backward_verdicts(**dict(case, **{name: value}))
            assert not fast or ok, (name, label)


def test_backward_outputs_sharing_memory_are_left_to_the_checks():
    case = _backward_case()
    buf = np.zeros(100, np.float32)
    shared = [dict(dw=buf[:20].reshape(5, 4), db=buf[16:20]),           # db inside dw
              dict(dx=buf[:30].reshape(6, 5), dw=buf[25:45].reshape(5, 4)),
              dict(dw=case["w"]),                                        # dw is w
              dict(dx=case["x"]),
              dict(db=case["dy"][0]),
              dict(dx=np.zeros((6, 5), np.float32), dw=case["saved"][:5])]
    for change in shared:
        args = dict(case, **change)
        assert not fastargs.dense_backward(**args), change
        fast, ok = _backward_verdicts(**args)
        assert not ok, change


def test_random_combinations_of_bad_arguments():
    rng = np.random.default_rng(7)
    fcase = _forward_case()
    fvars = {k: _variants(v, output=k in ("out", "pre")) for k, v in fcase.items()}
    bcase = _backward_case()
    bvars = {k: _variants(v, output=k in ("dx", "dw", "db")) for k, v in bcase.items()}
    for _ in range(400):
        args = {k: v[rng.integers(len(v))][1] if rng.random() < 0.4 else fcase[k]
                for k, v in fvars.items()}
        fast, ok = _forward_verdicts(**args)
        assert not fast or ok
        args = {k: v[rng.integers(len(v))][1] if rng.random() < 0.4 else bcase[k]
                for k, v in bvars.items()}
        fast, ok = _backward_verdicts(**args)
        assert not fast or ok


@pytest.mark.parametrize("trans_a, trans_b", list(itertools.product([False, True], repeat=2)))
def test_gemm_never_accepts_what_the_checks_reject(trans_a, trans_b):
    rng = np.random.default_rng(2)
    a = rng.random((5, 7) if trans_a else (7, 5)).astype(np.float32)
    b = rng.random((3, 5) if trans_b else (5, 3)).astype(np.float32)
    out = np.empty((7, 3), np.float32)
    assert fastargs.gemm(a, b, out, trans_a, trans_b)
    case = dict(a=a, b=b, out=out)
    for name in case:
        for label, value in _variants(case[name], output=name == "out"):
            args = dict(case, **{name: value})
            fast = fastargs.gemm(args["a"], args["b"], args["out"], trans_a, trans_b)
            ok = _checks_accept(check.gemm_args, args["a"], args["b"], args["out"],
                                trans_a, trans_b, 1.0, 0.0)
            ok = ok and _kernel_layout_ok([args["out"]], [args["a"], args["b"]])
            assert not fast or ok, (name, label)
    square = np.zeros((7, 7), np.float32)
    assert not fastargs.gemm(square, square[:, :7], square, False, False)


def test_the_wrappers_take_the_fast_path_and_agree_with_the_checked_one():
    """Same numbers whether the arguments take the fast path (C-contiguous outputs) or
    the checked one (a Fortran-ordered output, copied back by the wrapper)."""
    cy = kernels.get_backend("cython")
    ref = kernels.get_backend("numpy")
    case = _forward_case(m=9, k=7, n=5)
    x, w, b = case["x"], case["w"], case["b"]
    fast = cy.dense_forward(x, w, b, np.empty((9, 5), np.float32), activation="tanh")
    slow = cy.dense_forward(x, w, b, np.empty((9, 5), np.float32, order="F"),
                            activation="tanh")
    np.testing.assert_array_equal(fast, slow)
    np.testing.assert_allclose(fast, ref.dense_forward(x, w, b, activation="tanh"),
                               rtol=1e-5)
    dy = np.random.default_rng(3).random((9, 5)).astype(np.float32)
    outs = [np.empty((9, 7), np.float32), np.empty((7, 5), np.float32),
            np.empty(5, np.float32)]
    got_fast = cy.dense_backward(dy, x, w, fast, activation="tanh", dx=outs[0], dw=outs[1],
                                 db=outs[2])
    assert all(g is o for g, o in zip(got_fast, outs))
    got_slow = cy.dense_backward(dy, x, w, fast, activation="tanh",
                                 dx=np.empty((9, 7), np.float32, order="F"),
                                 dw=np.empty((7, 5), np.float32, order="F"),
                                 db=np.empty(5, np.float32))
    for u, v in zip(got_fast, got_slow):
        np.testing.assert_array_equal(u, v)
    # the fast path still refuses what the checks refuse, with their message
    with pytest.raises(ValueError, match="activation"):
        cy.dense_forward(x, w, b, np.empty((9, 5), np.float32), activation="gelu_tanh")
    with pytest.raises(TypeError, match="need_dx"):
        cy.dense_backward(dy, x, w, fast, activation="tanh", dx=outs[0], dw=outs[1],
                          db=outs[2], need_dx=1)
    with pytest.raises(ValueError, match="alpha"):
        cy.gemm(x, w, np.empty((9, 5), np.float32), alpha=float("nan"))


def test_lazily_huge_inputs_are_left_to_the_checks():
    """Broadcast views claiming more memory than the machine has (the inner size k is
    huge, the result small): the checks reject them, so the fast test must."""
    k = 2**40
    for dtype in (np.float32, np.float64):
        x = np.broadcast_to(np.ones((1, 1), dtype), (6, k))
        w = np.broadcast_to(np.ones((1, 1), dtype), (k, 4))
        out = np.zeros((6, 4), dtype)
        assert not _checks_accept(check.dense_forward_args, x, w, None, out, "relu", None)
        assert not fastargs.dense_forward(x, w, None, out, None)
        assert not _checks_accept(check.gemm_args, x, w, out, False, False, 1.0, 0.0)
        assert not fastargs.gemm(x, w, out, False, False)
