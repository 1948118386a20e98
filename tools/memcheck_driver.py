"""Call every kernel of the cython backend over and over: the driver of the valgrind
and RSS checks of tools/memcheck.sh (which runs it against a copy of the tree).

    python tools/memcheck_driver.py count N     every call N times (under valgrind)
    python tools/memcheck_driver.py rss W R     W rounds, RSS read, R more, RSS again
    python tools/memcheck_driver.py canary      a deliberate one-byte heap overflow,
                                                which valgrind must report

Every kernel, both dtypes, small (serial) and large (threaded) sizes, in-place,
strided and allocating forms.
"""
import sys

import numpy as np

import kernels
from kernels import reference as ref

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


def all_cases():
    calls = []
    for dtype in (np.float32, np.float64):
        calls += make_cases(dtype, 5, 3, 7)          # below the parallel threshold
        calls += make_cases(dtype, 300, 70, 130)     # threaded, several GEMM blocks
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
              f"norm_impl={kernels.build_info().get('norm_impl')}")
    else:                                     # rss: warm-up W, then R more
        warm, more = int(sys.argv[2]), int(sys.argv[3])
        run(calls, warm)
        before = rss_kb()
        run(calls, more)
        after = rss_kb()
        print(f"kernel_loop: {len(calls)} calls; RSS after {warm} rounds {before} kB, "
              f"after {warm + more} rounds {after} kB, growth {after - before} kB")
        print(f"RSS_GROWTH_KB={after - before}")
