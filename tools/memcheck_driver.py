"""Call every kernel of the cython backend over and over: the driver of the valgrind
and RSS checks of tools/memcheck.sh (which runs it against a copy of the tree).

    python tools/memcheck_driver.py count N     every call N times (under valgrind)
    python tools/memcheck_driver.py rss W R     W rounds, RSS read, R more, RSS again
    python tools/memcheck_driver.py canary      a deliberate one-byte heap overflow,
                                                which valgrind must report

Every kernel, both dtypes, small (serial) and large (threaded) sizes, in-place,
strided and allocating forms; the convolution family on small shapes, serial and
with the parallel threshold at one element (threaded), several paddings, strides,
dilations and groups.
"""
import sys

import numpy as np

import kernels
from kernels import reference as ref
from kernels.cpu import _threads, conv as _conv

be = kernels.get_backend("cython")
assert be.name == "cython"
missing = set(ref.__all__) - set(dir(be))
assert not missing, missing


def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def make_cases(dtype, rows, cols, k):
    rng = np.random.default_rng(0)
    u = lambda *s: rng.uniform(-1, 1, size=s).astype(dtype)
    p = lambda *s: rng.uniform(0.05, 0.95, size=s).astype(dtype)
    x, w, b = u(rows, k), u(k, cols), u(cols)
    y, dy = u(rows, cols), u(rows, cols)
    prob = p(rows, cols)
    prob /= prob.sum(axis=1, keepdims=True)
    onehot = np.eye(cols, dtype=dtype)[rng.integers(0, cols, rows)]
    labels = rng.integers(0, cols, rows)
    out = np.empty((rows, cols), dtype)
    strided = np.empty((rows, 2 * cols), dtype)[:, ::2]
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty_like(b)
    calls = [
        lambda: be.gemm(x, w),
        lambda: be.gemm(x, w, out, alpha=0.5, beta=1.0),
        lambda: be.gemm(x.T.copy(), w, out, trans_a=True),
        lambda: be.gemm(x, w.T.copy(), strided, trans_b=True),
        lambda: be.bias_add(y, b),
        lambda: be.column_sums(y),
        lambda: be.dense_forward(x, w, b, out, activation="relu",
                                 pre_activation=np.empty_like(out)),
        lambda: be.dense_forward(x, w, None, activation="softmax"),
        lambda: be.dense_backward(dy, x, w, np.maximum(y, 0), activation="relu",
                                  dx=dx, dw=dw, db=db),
        lambda: be.dense_backward(dy, x, w, y, activation="gelu", pre_activation=y,
                                  dx=None, dw=dw, db=None, need_dx=False, use_bias=False),
    ]
    for act in ("linear", "relu", "leaky_relu", "elu", "sigmoid", "tanh", "softmax",
                "softplus", "gelu", "relu6", "selu", "silu", "hard_sigmoid", "hard_silu",
                "mish", "exponential", "softsign", "log_softmax"):
        fwd, bwd = getattr(be, act), getattr(be, "backprop_" + act)
        calls.append(lambda fwd=fwd: fwd(y))
        calls.append(lambda fwd=fwd: fwd(y, out))
        calls.append(lambda fwd=fwd: fwd(y, strided))
        calls.append(lambda bwd=bwd: bwd(dy, y))
        calls.append(lambda bwd=bwd: bwd(dy, y, out))
    gam, bet = u(cols), u(cols)
    calls += [lambda: be.layer_norm_forward(y, gam, bet),
              lambda: be.layer_norm_forward(y, None, None, out),
              lambda: be.layer_norm_backward(dy, y, gam),
              lambda: be.layer_norm_backward(dy, y, None, out)]
    # embedding: rows * 14 positions (threaded at the large size), ids of rank 1 and 2,
    # int64, int32 and whole-number float ids; the table's last row is never looked up
    # (an empty bucket in the backward's counting sort)
    table, dtable = u(k, cols), np.empty((k, cols), dtype)
    ids2 = rng.integers(0, k - 1, (rows, 14))
    ids1, n_ids = ids2.reshape(-1), ids2.size
    ids1_i32, ids2_f = ids1.astype(np.int32), ids2.astype(dtype)
    e_out, e_dy = np.empty((n_ids, cols), dtype), u(n_ids, cols)
    e_out2, e_dy2 = np.empty((rows, 14, cols), dtype), u(rows, 14, cols)
    e_strided = np.empty((n_ids, 2 * cols), dtype)[:, ::2]
    dtable_strided = np.empty((k, 2 * cols), dtype)[:, ::2]
    calls += [lambda: be.embedding_forward(ids1, table),
              lambda: be.embedding_forward(ids1_i32, table, e_out),
              lambda: be.embedding_forward(ids2_f, table, e_out2),
              lambda: be.embedding_forward(ids1, table, e_strided),
              lambda: be.embedding_backward(e_dy, ids1, dtable),
              lambda: be.embedding_backward(e_dy2, ids2_f, dtable),
              lambda: be.embedding_backward(e_dy, ids1_i32, dtable_strided)]
    calls += [lambda: be.relu(y, negative_slope=0.1, max_value=0.5, threshold=0.2),
              lambda: be.backprop_relu(dy, y, out, negative_slope=0.1, max_value=0.5)]
    for name in ("mean_squared_error", "mean_absolute_error", "huber", "hinge",
                 "squared_hinge", "poisson", "log_cosh", "mean_absolute_percentage_error",
                 "mean_squared_logarithmic_error", "kl_divergence", "categorical_hinge",
                 "cosine_similarity"):
        calls.append(lambda f=getattr(be, name): f(onehot, y))
        calls.append(lambda f=getattr(be, "backprop_" + name): f(onehot, y, out))
    for logits in (False, True):
        src = y if logits else prob
        calls += [
            lambda s=src, l=logits: be.binary_crossentropy(onehot, s if l else prob, from_logits=l),
            lambda s=src, l=logits: be.backprop_binary_crossentropy(onehot, s if l else prob, out,
                                                                    from_logits=l),
            lambda s=src, l=logits: be.categorical_crossentropy(onehot, s, from_logits=l),
            lambda s=src, l=logits: be.backprop_categorical_crossentropy(onehot, s, out,
                                                                         from_logits=l),
            lambda s=src, l=logits: be.sparse_categorical_crossentropy(labels, s, from_logits=l),
            lambda s=src, l=logits: be.backprop_sparse_categorical_crossentropy(
                labels, s, out, from_logits=l),
        ]
    calls += [lambda: be.softmax_crossentropy(onehot, y, out),
              lambda: be.sparse_softmax_crossentropy(labels, y, out)]
    pw, g = u(rows, cols), u(rows, cols) * dtype(1e-3)
    m, v, vh, acc = (np.zeros_like(pw), np.zeros_like(pw), np.zeros_like(pw),
                     np.full_like(pw, 0.1))
    calls += [
        lambda: be.sgd_update(pw, g, learning_rate=1e-4),
        lambda: be.sgd_update(pw, g, m, learning_rate=1e-4, momentum=0.9, nesterov=True),
        lambda: be.adam_update(pw, g, m, v, step=3, amsgrad=True, v_hat=vh),
        lambda: be.adamw_update(pw, g, m, v, step=3, learning_rate=1e-4),
        lambda: be.rmsprop_update(pw, g, v, learning_rate=1e-4, momentum=0.5, mom=m,
                                  centered=True, mg=vh),
        lambda: be.adagrad_update(pw, g, acc, learning_rate=1e-4),
    ]
    return calls


def spatial_cases(dtype, threaded):
    """The convolution family: conv2d (groups, strides, dilation, both paddings, a
    one-channel first layer), conv1d (causal, same, groups), depthwise, max/avg/global
    pooling, batch normalisation; allocating, given, strided and in-place outputs.
    ``threaded``: each call with the parallel threshold at one element (the OpenMP
    paths on shapes small enough for valgrind)."""
    rng = np.random.default_rng(1)
    u = lambda *s: rng.uniform(-1, 1, size=s).astype(dtype)
    calls = []

    def conv(kernel, x_shape, w_shape, kw, channels):
        fwd, bwd = getattr(be, kernel + "_forward"), getattr(be, kernel + "_backward")
        x, w, b = u(*x_shape), u(*w_shape), u(channels)
        y = fwd(x, w, b, activation="relu", **kw)
        z, out = np.empty_like(y), np.empty_like(y)
        fwd(x, w, b, activation="gelu", pre_activation=z, **kw)
        dy = u(*y.shape)
        # a non-contiguous out: the wrapper writes through a temporary
        strided = np.empty(y.shape[:-1] + (2 * y.shape[-1],), dtype)[..., ::2]
        dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty_like(b)
        return [
            lambda: fwd(x, w, b, activation="relu", **kw),
            lambda: fwd(x, w, None, out, activation="gelu", pre_activation=z, **kw),
            lambda: fwd(x, w, b, strided, activation="softmax", **kw),
            lambda: bwd(dy, x, w, y, activation="relu", dx=dx, dw=dw, db=db, **kw),
            lambda: bwd(dy, x, w, y, activation="gelu", pre_activation=z, need_dx=False,
                        use_bias=False, **kw),
            lambda: bwd(dy, x[:, ::-1].copy(), w, np.maximum(y, 0), **kw),
        ]

    for x_shape, w_shape, kw in (
            ((2, 7, 6, 4), (3, 3, 4, 6), {}),
            ((2, 7, 6, 4), (3, 2, 2, 6), {"strides": 2, "padding": "same", "groups": 2}),
            ((1, 8, 8, 3), (2, 2, 3, 5), {"dilation_rate": 2, "padding": "same"}),
            ((3, 9, 5, 1), (3, 3, 1, 8), {"strides": (2, 1), "padding": "same"})):
        calls += conv("conv2d", x_shape, w_shape, kw, w_shape[-1])
    for x_shape, w_shape, kw in (
            ((2, 9, 4), (3, 4, 6), {"padding": "causal", "dilation_rate": 2}),
            ((2, 9, 4), (2, 2, 4), {"strides": 2, "padding": "same", "groups": 2}),
            ((3, 6, 2), (6, 2, 3), {})):
        calls += conv("conv1d", x_shape, w_shape, kw, w_shape[-1])
    for x_shape, w_shape, kw in (
            ((2, 6, 6, 3), (3, 3, 3, 2), {"padding": "same"}),
            ((1, 7, 5, 4), (2, 2, 4, 1), {"strides": 2, "dilation_rate": (1, 2)})):
        calls += conv("depthwise_conv2d", x_shape, w_shape, kw, w_shape[-2] * w_shape[-1])

    x = u(2, 7, 6, 5)
    for kw in ({}, {"pool_size": 3, "strides": 2, "padding": "same"},
               {"pool_size": (3, 2), "strides": 1, "padding": "same"}):
        out, argmax = be.max_pool2d_forward(x, **kw)
        dy, dx = u(*out.shape), np.empty_like(x)
        p_out, p_arg = np.empty_like(out), np.empty_like(argmax)
        strided = np.empty(out.shape[:-1] + (2 * out.shape[-1],), dtype)[..., ::2]
        calls += [
            lambda kw=kw: be.max_pool2d_forward(x, **kw),
            lambda kw=kw, o=p_out, a=p_arg: be.max_pool2d_forward(x, o, a, **kw),
            lambda kw=kw, dy=dy, a=argmax, dx=dx: be.max_pool2d_backward(dy, a, dx, **kw),
            lambda kw=kw: be.avg_pool2d_forward(x, **kw),
            lambda kw=kw, o=strided: be.avg_pool2d_forward(x, o, **kw),
            lambda kw=kw, dy=dy, dx=dx: be.avg_pool2d_backward(dy, dx, **kw),
        ]
    g_out, g_arg = be.global_max_pool2d_forward(x)
    g_dy, g_dx = u(*g_out.shape), np.empty_like(x)
    calls += [lambda: be.global_max_pool2d_forward(x),
              lambda: be.global_max_pool2d_forward(x, np.empty_like(g_out),
                                                   np.empty_like(g_arg)),
              lambda: be.global_max_pool2d_backward(g_dy, g_arg, g_dx),
              lambda: be.global_avg_pool2d_forward(x),
              lambda: be.global_avg_pool2d_backward(g_dy, g_dx)]

    for shape in ((2, 5, 4, 3), (9, 6)):
        bx, bdy = u(*shape), u(*shape)
        c = shape[-1]
        gam, bet = u(c), u(c)
        mm, mv = u(c), rng.uniform(0.5, 2.0, c).astype(dtype)
        bout, bdx = np.empty_like(bx), bdy.copy()
        calls += [
            lambda bx=bx, g=gam, b=bet, m=mm, v=mv: be.batch_norm_forward(bx, g, b, m, v),
            lambda bx=bx, o=bout: be.batch_norm_forward(bx, None, None, None, None, o,
                                                        momentum=0.9),
            lambda bx=bx, g=gam, b=bet, m=mm, v=mv, o=bout: be.batch_norm_inference(
                bx, g, b, m, v, o),
            lambda bx=bx, m=mm, v=mv: be.batch_norm_inference(bx, None, None, m, v),
            lambda bx=bx, bdy=bdy, g=gam: be.batch_norm_backward(bdy, bx, g),
            lambda bx=bx, d=bdx: be.batch_norm_backward(d, bx, None, d),   # dx is dy
        ]
    if threaded:
        calls = [lambda c=c: _threaded(c) for c in calls]
    return calls


def _threaded(call):
    old = _threads.set_min_parallel_work(1)
    try:
        return call()
    finally:
        _threads.set_min_parallel_work(old)


def all_cases():
    calls = []
    for dtype in (np.float32, np.float64):
        calls += make_cases(dtype, 5, 3, 7)          # below the parallel threshold
        calls += make_cases(dtype, 300, 70, 130)     # threaded, several GEMM blocks
        calls += spatial_cases(dtype, threaded=False)
        calls += spatial_cases(dtype, threaded=True)
    return calls


def run(calls, iters):
    for _ in range(iters):
        for c in calls:
            c()


if __name__ == "__main__":
    mode = sys.argv[1]
    calls = all_cases()
    kernels.set_num_threads(2)
    if mode == "canary":                      # must be reported: proves the tool is live
        import ctypes
        a = np.zeros(10, np.float32)
        ctypes.memset(a.ctypes.data, 0, a.nbytes + 1)     # one byte past the end
        print("kernel_loop: canary overflow done")
    elif mode == "count":                     # valgrind: just make the calls
        run(calls, int(sys.argv[2]))
        print(f"kernel_loop: {len(calls)} calls x {sys.argv[2]} done, "
              f"gemm_impl={kernels.build_info().get('gemm_impl')} "
              f"ew_impl={kernels.build_info().get('ew_impl')} "
              f"loss_impl={kernels.build_info().get('loss_impl')} "
              f"norm_impl={kernels.build_info().get('norm_impl')} "
              f"conv_impl={_conv.current_impl()}")
    else:                                     # rss: warm-up W, then R more
        warm, more = int(sys.argv[2]), int(sys.argv[3])
        run(calls, warm)
        before = rss_kb()
        run(calls, more)
        after = rss_kb()
        print(f"kernel_loop: {len(calls)} calls; RSS after {warm} rounds {before} kB, "
              f"after {warm + more} rounds {after} kB, growth {after - before} kB")
        print(f"RSS_GROWTH_KB={after - before}")
