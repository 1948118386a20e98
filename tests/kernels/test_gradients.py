"""Every backprop is the derivative of its forward: float64 central finite differences.

For a kernel ``f`` and a random upstream gradient ``dy`` the scalar
``L(x) = sum(dy * f(x))`` has ``dL/dx = backprop(dy, ...)`` (the vector-Jacobian product
the backprop kernels compute); losses are scalars already.  The numerical derivative
uses the 4th-order central stencil

    dL/dx_i ~ (-L(x + 2h e_i) + 8 L(x + h e_i) - 8 L(x - h e_i) + L(x - 2h e_i)) / (12 h)

with h = 1e-6, whose truncation error (O(h^4)) is negligible and whose rounding error
is ~1e-10 relative, far below the 5e-6 tolerance.  Inputs keep away from kinks
(relu/leaky_relu/elu at 0, MAE at y_pred == y_true, huber at |e| == delta) and from
the probability clip, where no derivative exists.  The checker is shown to reject
wrong gradients at the end.
"""
import numpy as np
import pytest

from kernels import reference as ref

H = 1e-6
RTOL = 5e-6


def numerical_gradient(loss, x, h=H):
    """d loss() / d x, x perturbed in place element by element (and restored)."""
    assert x.dtype == np.float64 and x.flags.c_contiguous
    grad = np.empty(x.shape, np.float64)
    flat = x.reshape(-1)
    gflat = grad.reshape(-1)
    for i in range(flat.size):
        orig = flat[i]
        values = []
        for step in (2.0, 1.0, -1.0, -2.0):
            flat[i] = orig + step * h
            values.append(float(loss()))
        flat[i] = orig
        gflat[i] = (-values[0] + 8.0 * values[1] - 8.0 * values[2] + values[3]) / (12.0 * h)
    return grad


def check_gradient(loss, x, analytic, rtol=RTOL, what="gradient"):
    """Raise AssertionError unless ``analytic`` is d loss() / d x.

    Element i passes when |analytic_i - numeric_i| <= rtol * (|numeric_i| + scale), with
    scale = max |numeric| (so entries that are ~0 are held to the precision of the
    largest entry, not to an impossible relative one).
    """
    analytic = np.asarray(analytic, np.float64)
    numeric = numerical_gradient(loss, x)
    assert analytic.shape == numeric.shape, f"{what}: shape {analytic.shape} != {numeric.shape}"
    scale = float(np.abs(numeric).max())
    err = np.abs(analytic - numeric)
    bound = rtol * (np.abs(numeric) + scale) + 1e-12
    bad = err > bound
    if bad.any():
        i = np.unravel_index(np.argmax(err / bound), err.shape)
        raise AssertionError(
            f"{what}: {int(bad.sum())}/{bad.size} entries differ from the finite difference; "
            f"worst at {i}: analytic {analytic[i]!r} numeric {numeric[i]!r} "
            f"(|diff| {err[i]:.3g} > {bound[i]:.3g})")


def _away_from_zero(rng, shape, low=0.1, high=3.0):
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(low, high, size=shape)


# ======================================================================= activations
ACT_CASES = [
    ("linear", {}), ("relu", {}), ("leaky_relu", {}), ("leaky_relu", {"negative_slope": 0.05}),
    ("elu", {}), ("elu", {"alpha": 0.3}), ("sigmoid", {}), ("tanh", {}), ("softmax", {}),
    ("softplus", {}), ("gelu", {}), ("gelu", {"approximate": True}),
    # relu's Keras parameters: kinks at the threshold (0.05) and the cap (2.0), which the
    # inputs (|x| in [0.1, 3]) stay away from
    ("relu", {"negative_slope": 0.5}), ("relu", {"threshold": 0.05, "max_value": 2.0}),
    ("relu", {"negative_slope": 0.2, "max_value": 2.0, "threshold": 0.05}),
    ("relu6", {}), ("selu", {}), ("silu", {}), ("hard_sigmoid", {}), ("hard_silu", {}),
    ("mish", {}), ("exponential", {}), ("softsign", {}), ("log_softmax", {}),
]
ACT_IDS = [name + "".join(f"-{k}={v}" for k, v in kw.items()) for name, kw in ACT_CASES]


@pytest.mark.parametrize("shape", [(3, 4), (2, 2, 3)], ids=str)
@pytest.mark.parametrize("name, kw", ACT_CASES, ids=ACT_IDS)
def test_activation_backprop_is_derivative(backend, rng, name, kw, shape):
    x = _away_from_zero(rng, shape)
    dy = rng.standard_normal(shape)
    fwd = getattr(backend, name)
    y = fwd(x, **kw)
    saved = x.copy() if name in ref.ACTIVATIONS_NEEDING_INPUT else y
    analytic = getattr(backend, "backprop_" + name)(dy, saved, **kw)
    check_gradient(lambda: np.sum(dy * fwd(x, **kw)), x, analytic,
                   what=f"{backend.name} backprop_{name}")


# ============================================================================ losses
LOSS_CASES = [
    ("mean_squared_error", {}), ("mean_absolute_error", {}),
    ("huber", {}), ("huber", {"delta": 0.4}),
    ("binary_crossentropy", {}), ("binary_crossentropy", {"from_logits": True}),
    ("categorical_crossentropy", {}), ("categorical_crossentropy", {"from_logits": True}),
    ("hinge", {}), ("squared_hinge", {}), ("poisson", {}), ("log_cosh", {}),
    ("mean_absolute_percentage_error", {}), ("mean_squared_logarithmic_error", {}),
    ("kl_divergence", {}), ("categorical_hinge", {}), ("cosine_similarity", {}),
]
LOSS_IDS = [name + "".join(f"-{k}={v}" for k, v in kw.items()) for name, kw in LOSS_CASES]


def _loss_inputs(rng, name, kw, shape):
    if name in ("hinge", "squared_hinge"):
        # -1/1 labels (hinge: 0/1, converted); 1 - t p at least 0.1 away from 0
        t = rng.choice([-1.0, 1.0], size=shape)
        p = t * (1 + _away_from_zero(rng, shape, 0.1, 2.0))
        return ((t + 1) / 2 if name == "hinge" else t), p
    if name in ("poisson", "mean_squared_logarithmic_error"):
        return rng.uniform(0, 4, size=shape), rng.uniform(0.2, 4, size=shape)
    if name == "log_cosh":
        return rng.standard_normal(shape), rng.standard_normal(shape)
    if name == "mean_absolute_percentage_error":
        y_true = _away_from_zero(rng, shape, 0.5, 3.0)
        return y_true, y_true + _away_from_zero(rng, shape, 0.05, 2.0)
    if name == "kl_divergence":
        return rng.uniform(0.05, 1, size=shape), rng.uniform(0.05, 0.95, size=shape)
    if name == "cosine_similarity":
        return rng.standard_normal(shape), rng.standard_normal(shape)
    if name == "categorical_hinge":
        n, c = shape
        return np.eye(c)[rng.integers(0, c, size=n)], rng.standard_normal(shape) * 2
    if name in ("mean_squared_error", "mean_absolute_error", "huber"):
        y_true = rng.standard_normal(shape)
        delta = kw.get("delta", 1.0)
        # |e| in (0.05, 0.9 delta) or (1.1 delta, 3): away from the kinks at 0 and delta
        mag = np.where(rng.uniform(size=shape) < 0.5, rng.uniform(0.05, 0.9 * delta, shape),
                       rng.uniform(1.1 * delta, 3.0, shape))
        e = rng.choice([-1.0, 1.0], size=shape) * mag
        return y_true, y_true + e
    if name == "binary_crossentropy":
        y_true = rng.uniform(0, 1, size=shape)
        y_true[rng.uniform(size=shape) < 0.3] = 1.0
        if kw.get("from_logits"):
            return y_true, rng.standard_normal(shape) * 3
        return y_true, rng.uniform(0.05, 0.95, size=shape)     # inside the clip range
    n, c = shape
    y_true = np.eye(c)[rng.integers(0, c, size=n)]
    y_true[0] = rng.dirichlet(np.ones(c)) * 0.7              # a soft row not summing to 1
    if kw.get("from_logits"):
        return y_true, rng.standard_normal(shape) * 2
    return y_true, rng.uniform(0.1, 1.0, size=shape)          # q = p / sum(p) inside the clip


LOSS_PARAMS = [pytest.param(name, kw, shape, id=f"{lid}-{shape}")
               for (name, kw), lid in zip(LOSS_CASES, LOSS_IDS)
               for shape in ([(3, 4)] if name in ("categorical_crossentropy",) + ref.ROW_LOSSES
                             else [(6,), (3, 4)])]


@pytest.mark.parametrize("name, kw, shape", LOSS_PARAMS)
def test_loss_backprop_is_derivative(backend, rng, name, kw, shape):
    y_true, y_pred = _loss_inputs(rng, name, kw, shape)
    loss = getattr(backend, name)
    analytic = getattr(backend, "backprop_" + name)(y_true, y_pred, **kw)
    check_gradient(lambda: loss(y_true, y_pred, **kw), y_pred, analytic,
                   what=f"{backend.name} backprop_{name}")


@pytest.mark.parametrize("from_logits", [False, True], ids=["probs", "logits"])
@pytest.mark.parametrize("column", [False, True], ids=["(n,)", "(n,1)"])
def test_sparse_loss_backprop_is_derivative(backend, rng, from_logits, column):
    n, c = 4, 5
    labels = rng.integers(0, c, size=n)
    labels = labels.reshape(n, 1) if column else labels
    y_pred = rng.standard_normal((n, c)) * 2 if from_logits else rng.uniform(0.1, 1.0, (n, c))
    analytic = backend.backprop_sparse_categorical_crossentropy(labels, y_pred,
                                                                from_logits=from_logits)
    check_gradient(lambda: backend.sparse_categorical_crossentropy(labels, y_pred,
                                                                   from_logits=from_logits),
                   y_pred, analytic, what=f"{backend.name} sparse")


def test_fused_softmax_crossentropy_gradient_is_derivative(backend, rng):
    n, c = 4, 5
    y_true = np.eye(c)[rng.integers(0, c, size=n)]
    y_true[1] = rng.dirichlet(np.ones(c)) * 1.3               # soft row summing to 1.3
    logits = rng.standard_normal((n, c)) * 2
    loss, grad = backend.softmax_crossentropy(y_true, logits)
    check_gradient(lambda: backend.softmax_crossentropy(y_true, logits)[0], logits, grad,
                   what=f"{backend.name} softmax_crossentropy")


def test_fused_sparse_softmax_crossentropy_gradient_is_derivative(backend, rng):
    n, c = 4, 5
    labels = rng.integers(0, c, size=n).astype(np.int32)
    logits = rng.standard_normal((n, c)) * 2
    loss, grad = backend.sparse_softmax_crossentropy(labels, logits)
    check_gradient(lambda: backend.sparse_softmax_crossentropy(labels, logits)[0], logits,
                   grad, what=f"{backend.name} sparse_softmax_crossentropy")


# ======================================================================= dense layer
def _dense_inputs(rng, activation, n=4, n_in=3, units=5):
    """x, w, b with every pre-activation |z| > 0.1 (no kink inside the stencil)."""
    while True:
        x = rng.uniform(-1, 1, (n, n_in))
        w = rng.uniform(-1, 1, (n_in, units))
        b = rng.uniform(-0.5, 0.5, units)
        if np.abs(x @ w + b).min() > 0.1:
            return x, w, b


@pytest.mark.parametrize("activation", list(ref.ACTIVATIONS))
def test_dense_backward_is_derivative(backend, rng, activation):
    x, w, b = _dense_inputs(rng, activation)
    dy = rng.standard_normal((x.shape[0], w.shape[1]))
    z = np.empty_like(dy)
    y = backend.dense_forward(x, w, b, activation=activation, pre_activation=z)
    dx, dw, db = backend.dense_backward(dy, x, w, y, activation=activation, pre_activation=z)

    def loss():
        return np.sum(dy * backend.dense_forward(x, w, b, activation=activation))

    what = f"{backend.name} dense {activation}"
    check_gradient(loss, x, dx, what=what + " dx")
    check_gradient(loss, w, dw, what=what + " dw")
    check_gradient(loss, b, db, what=what + " db")


@pytest.mark.parametrize("activation", ["linear", "relu", "gelu", "softmax"])
def test_dense_backward_without_bias_is_derivative(backend, rng, activation):
    x, w, _ = _dense_inputs(rng, activation)
    dy = rng.standard_normal((x.shape[0], w.shape[1]))
    z = np.empty_like(dy)
    y = backend.dense_forward(x, w, None, activation=activation, pre_activation=z)
    dx, dw, db = backend.dense_backward(dy, x, w, y, activation=activation, pre_activation=z,
                                        use_bias=False, need_dx=False)
    assert dx is None and db is None

    def loss():
        return np.sum(dy * backend.dense_forward(x, w, None, activation=activation))

    check_gradient(loss, w, dw, what=f"{backend.name} dense {activation} dw (no bias)")


def test_gemm_is_bilinear_derivative(backend, rng):
    """d sum(dy * a @ b) / da = dy @ b^T, through the GEMM kernel's transposes."""
    a = rng.standard_normal((3, 4))
    b = rng.standard_normal((4, 2))
    dy = rng.standard_normal((3, 2))
    da = backend.gemm(dy, b, trans_b=True)
    db = backend.gemm(a, dy, trans_a=True)
    check_gradient(lambda: np.sum(dy * backend.gemm(a, b)), a, da, what="gemm da")
    check_gradient(lambda: np.sum(dy * backend.gemm(a, b)), b, db, what="gemm db")


# ============================================================ the checker can fail
def test_checker_accepts_a_known_derivative(rng):
    x = rng.standard_normal(7)
    check_gradient(lambda: np.sum(np.sin(x) * x), x, np.cos(x) * x + np.sin(x))


def test_checker_rejects_relu_derivative_without_mask(backend, rng):
    x = _away_from_zero(rng, (3, 4))
    assert (x < 0).any()
    dy = rng.standard_normal((3, 4))
    wrong = dy.copy()                                  # dy * 1 everywhere: no (y > 0) mask
    with pytest.raises(AssertionError, match="differ from the finite difference"):
        check_gradient(lambda: np.sum(dy * backend.relu(x)), x, wrong)


def test_checker_rejects_twice_the_mse_gradient(backend, rng):
    y_true = rng.standard_normal((3, 4))
    y_pred = rng.standard_normal((3, 4))
    wrong = 2.0 * backend.backprop_mean_squared_error(y_true, y_pred)
    with pytest.raises(AssertionError):
        check_gradient(lambda: backend.mean_squared_error(y_true, y_pred), y_pred, wrong)
    # the tutorial's 1/(2N) MSE gradient is half of Keras's: also rejected
    half = 0.5 * backend.backprop_mean_squared_error(y_true, y_pred)
    with pytest.raises(AssertionError):
        check_gradient(lambda: backend.mean_squared_error(y_true, y_pred), y_pred, half)


def test_checker_rejects_one_slightly_wrong_entry(backend, rng):
    x = rng.standard_normal((3, 4))
    dy = rng.standard_normal((3, 4))
    good = backend.backprop_tanh(dy, backend.tanh(x))
    check_gradient(lambda: np.sum(dy * backend.tanh(x)), x, good)
    bad = good.copy()
    bad[1, 2] *= 1.0 + 1e-4                            # 1e-4 relative in one entry
    with pytest.raises(AssertionError):
        check_gradient(lambda: np.sum(dy * backend.tanh(x)), x, bad)


def test_checker_rejects_gelu_backprop_given_the_output(backend, rng):
    """gelu's backprop takes the input x; handing it the output y is a real bug the
    checker must catch."""
    x = _away_from_zero(rng, (3, 4))
    dy = rng.standard_normal((3, 4))
    wrong = backend.backprop_gelu(dy, backend.gelu(x))
    with pytest.raises(AssertionError):
        check_gradient(lambda: np.sum(dy * backend.gelu(x)), x, wrong)


# ===================================================================== normalisation
@pytest.mark.parametrize("params", ["gamma-beta", "none"])
@pytest.mark.parametrize("shape", [(3, 5), (2, 2, 4)], ids=str)
def test_layer_norm_backward_is_derivative(backend, rng, shape, params):
    x = rng.standard_normal(shape) * 2 + 0.5
    dy = rng.standard_normal(shape)
    d = shape[-1]
    gamma = rng.uniform(0.5, 2.0, d) if params != "none" else None
    beta = rng.standard_normal(d) if params != "none" else None

    def loss():
        return np.sum(dy * backend.layer_norm_forward(x, gamma, beta, epsilon=1e-2))

    dx, dgamma, dbeta = backend.layer_norm_backward(dy, x, gamma, epsilon=1e-2)
    check_gradient(loss, x, dx, what=f"{backend.name} layer_norm dx")
    if gamma is not None:
        check_gradient(loss, gamma, dgamma, what=f"{backend.name} layer_norm dgamma")
        check_gradient(loss, beta, dbeta, what=f"{backend.name} layer_norm dbeta")
