"""Cases several kernel test modules share: the activation and loss parameter tables,
their inputs, and the runs of the thread-count determinism checks."""
import numpy as np

import kernels
from kernels.cpu import _threads

from kernel_helpers import normal, uniform

ACT_CASES = [
    ("linear", {}), ("relu", {}),
    ("leaky_relu", {}), ("leaky_relu", {"negative_slope": 0.01}),
    ("leaky_relu", {"negative_slope": 0.0}),
    ("elu", {}), ("elu", {"alpha": 0.5}),
    ("sigmoid", {}), ("tanh", {}), ("softmax", {}), ("softplus", {}),
    ("gelu", {}), ("gelu", {"approximate": True}), ("gelu", {"approximate": False}),
    # relu's Keras parameters: each alone, together, and the relu6 and leaky forms
    ("relu", {"negative_slope": 0.5}), ("relu", {"max_value": 2.0}),
    ("relu", {"threshold": 1.0}), ("relu", {"max_value": 6.0}),
    ("relu", {"negative_slope": 0.3, "max_value": 2.5, "threshold": 0.5}),
    ("relu", {"max_value": 0.0}),
    ("relu6", {}), ("selu", {}), ("silu", {}), ("hard_sigmoid", {}), ("hard_silu", {}),
    ("mish", {}), ("exponential", {}), ("softsign", {}), ("log_softmax", {}),
]
ACT_IDS = [name + "".join(f"-{k}={v}" for k, v in kw.items()) for name, kw in ACT_CASES]


def act_kind(name):
    return "reduction" if name in ("softmax", "log_softmax") else "elementwise"


LOSS_CASES = [
    ("mean_squared_error", {}), ("mean_absolute_error", {}),
    ("huber", {}), ("huber", {"delta": 0.3}), ("huber", {"delta": 2.5}),
    ("binary_crossentropy", {}), ("binary_crossentropy", {"from_logits": True}),
    ("categorical_crossentropy", {}), ("categorical_crossentropy", {"from_logits": True}),
    ("hinge", {}), ("squared_hinge", {}), ("poisson", {}), ("log_cosh", {}),
    ("mean_absolute_percentage_error", {}), ("mean_squared_logarithmic_error", {}),
    ("kl_divergence", {}), ("categorical_hinge", {}), ("cosine_similarity", {}),
]
LOSS_IDS = [name + "".join(f"-{k}={v}" for k, v in kw.items()) for name, kw in LOSS_CASES]


def loss_inputs(rng, name, kw, shape, dtype):
    logits = kw.get("from_logits", False)
    if name in ("mean_squared_error", "mean_absolute_error", "huber", "log_cosh",
                "mean_absolute_percentage_error", "cosine_similarity"):
        return normal(rng, shape, dtype, 2.0), normal(rng, shape, dtype, 2.0)
    if name in ("hinge", "squared_hinge"):
        # hinge: 0/1 labels (converted to -1/1); squared_hinge: -1/1 labels
        y = rng.integers(0, 2, size=shape).astype(dtype)
        y = y if name == "hinge" else 2 * y - 1
        return y, normal(rng, shape, dtype, 1.5)
    if name in ("poisson", "mean_squared_logarithmic_error"):
        # counts-like targets; predictions with some below 1e-7 for msle's max
        y = rng.uniform(0, 4, size=shape)
        low = 0.01 if name == "poisson" else -0.5
        return y.astype(dtype), rng.uniform(low, 4, size=shape).astype(dtype)
    if name == "kl_divergence":
        # probability-like, some outside [1e-7, 1] (the clip)
        y = rng.uniform(0, 1, size=shape)
        p = rng.uniform(-0.05, 1.05, size=shape)
        return y.astype(dtype), p.astype(dtype)
    if name == "categorical_hinge":
        n, c = shape
        return np.eye(c)[rng.integers(0, c, size=n)].astype(dtype), normal(rng, shape, dtype, 2.0)
    if name == "binary_crossentropy":
        # soft targets, with some exact 0 and 1 labels
        y = rng.uniform(0, 1, size=shape)
        u = rng.uniform(size=shape)
        y = np.where(u < 0.3, 0.0, np.where(u > 0.7, 1.0, y))
        p = rng.standard_normal(shape) * 4 if logits else rng.uniform(0.01, 0.99, size=shape)
        return y.astype(dtype), p.astype(dtype)
    # categorical: one-hot rows, with some soft-label rows
    n, c = shape
    y = np.eye(c)[rng.integers(0, c, size=n)]
    soft = rng.uniform(size=n) < 0.3
    y[soft] = rng.dirichlet(np.ones(c), size=int(soft.sum()))
    p = rng.standard_normal(shape) * 3 if logits else rng.uniform(0.05, 1.0, size=shape)
    return y.astype(dtype), p.astype(dtype)


def run_threads(n, fn):
    old_n = kernels.get_num_threads()
    old_min = _threads.set_min_parallel_work(1)
    kernels.set_num_threads(n)
    try:
        return fn()
    finally:
        kernels.set_num_threads(old_n)
        _threads.set_min_parallel_work(old_min)


def det_cases(rng, dtype):
    a = uniform(rng, (150, 170), dtype)
    b = uniform(rng, (170, 90), dtype)
    x = uniform(rng, (300, 70), dtype)
    t = uniform(rng, (300, 70), dtype, 0.0, 1.0)
    y = np.eye(70, dtype=dtype)[rng.integers(0, 70, 300)]
    lab = rng.integers(0, 70, 300)
    wide = uniform(rng, (50, 200), dtype)
    w0 = normal(rng, (20000,), dtype)
    g = normal(rng, (20000,), dtype)
    w_d = uniform(rng, (70, 40), dtype)

    def adam():
        w, m, v, vh = w0.copy(), np.zeros_like(w0), np.zeros_like(w0), np.zeros_like(w0)
        for step in (1, 2, 3):
            cy = kernels.get_backend("cython")
            cy.adam_update(w, g, m, v, step=step, amsgrad=True, v_hat=vh, weight_decay=0.01)
        return w, m, v, vh

    def rmsprop():
        w, v, mom, mg = w0.copy(), np.zeros_like(w0), np.zeros_like(w0), np.zeros_like(w0)
        kernels.get_backend("cython").rmsprop_update(w, g, v, momentum=0.9, centered=True,
                                                     mom=mom, mg=mg)
        return w, v, mom, mg

    cy = kernels.get_backend("cython")
    return {
        "gemm": lambda: cy.gemm(a, b),
        "gemm_TT": lambda: cy.gemm(b, a, trans_a=True, trans_b=True),
        "column_sums": lambda: cy.column_sums(wide),
        "mse": lambda: (cy.mean_squared_error(t, x), cy.backprop_mean_squared_error(t, x)),
        "bce": lambda: cy.binary_crossentropy(t, x, from_logits=True),
        "cce": lambda: (cy.categorical_crossentropy(y, x, from_logits=True),
                        cy.categorical_crossentropy(y, t + 0.01)),
        "softmax_xent": lambda: cy.softmax_crossentropy(y, x),
        "sparse_softmax_xent": lambda: cy.sparse_softmax_crossentropy(lab, x),
        "sparse_cce": lambda: cy.sparse_categorical_crossentropy(lab, t + 0.01),
        "softmax": lambda: cy.softmax(x),
        "gelu": lambda: cy.gelu(x),
        "dense_forward": lambda: cy.dense_forward(x, w_d, w_d[0], activation="tanh"),
        "dense_backward": lambda: cy.dense_backward(uniform(np.random.default_rng(1),
                                                            (300, 40), dtype),
                                                    x, w_d, cy.tanh(x @ w_d),
                                                    activation="tanh"),
        "adam": adam,
        "rmsprop": rmsprop,
    }


DET_NAMES = ["gemm", "gemm_TT", "column_sums", "mse", "bce", "cce", "softmax_xent",
             "sparse_softmax_xent", "sparse_cce", "softmax", "gelu", "dense_forward",
             "dense_backward", "adam", "rmsprop"]


def flatten(result):
    if isinstance(result, (tuple, list)):
        out = []
        for r in result:
            out.extend(flatten(r))
        return out
    return [np.asarray(result)]
