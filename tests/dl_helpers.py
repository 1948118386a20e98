"""Shared helpers of the ``dl`` tests (tests/dl/).

* ``restore_dl_state``: a fixture putting back ``dl``'s global settings (floatx, the
  kernels backend) after a test; import it into a test module to use it (autouse).
* An independent NumPy model of Keras 3's numerics, written from
  /work/shared/KERAS_NUMERICS.md: an MLP's forward pass and backprop, the losses and
  the optimizers.  It deliberately uses neither ``kernels.reference`` nor anything of
  ``dl``, so the ``dl`` tests compare against a second implementation.
"""
import math

import numpy as np
import pytest

import dl


@pytest.fixture(autouse=True)
def restore_dl_state():
    """floatx, the image data format and the chosen backend as they were before the
    test."""
    floatx = dl.config.floatx()
    backend = dl.config._BACKEND_NAME
    image_format = dl.config.image_data_format()
    try:
        yield
    finally:
        dl.config.set_floatx(floatx)
        dl.config._BACKEND_NAME = backend
        dl.config.set_image_data_format(image_format)


def xy(n=10, n_in=2, seed=0):
    """A small regression set: ``n`` samples of ``n_in`` normal features and an exact
    linear target."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, n_in)).astype(np.float32)
    y = (x @ np.arange(1, n_in + 1) + 0.5).astype(np.float32)
    return x, y


def both_backends():
    """The CPU backends that load here."""
    import kernels
    return [name for name in ("numpy", "cython") if name in kernels.available_backends()]


# ------------------------------------------------------------------- activations
# name -> (f(z), f'(z) as a function of z); softmax is handled on its own.
def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _gelu(z):
    erf = np.vectorize(math.erf)
    return 0.5 * z * (1.0 + erf(z / math.sqrt(2.0)))


def _gelu_d(z):
    erf = np.vectorize(math.erf)
    return 0.5 * (1.0 + erf(z / math.sqrt(2.0))) + z * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
ACT = {
    "linear": (lambda z: z, lambda z: np.ones_like(z)),
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(z.dtype)),
    "sigmoid": (_sigmoid, lambda z: _sigmoid(z) * (1.0 - _sigmoid(z))),
    "leaky_relu": (lambda z: np.where(z > 0, z, 0.2 * z), lambda z: np.where(z > 0, 1.0, 0.2)),
    "elu": (lambda z: np.where(z > 0, z, np.exp(np.minimum(z, 0)) - 1.0),
            lambda z: np.where(z > 0, 1.0, np.exp(np.minimum(z, 0)))),
    "softplus": (lambda z: np.log1p(np.exp(z)), _sigmoid),
    "gelu": (_gelu, _gelu_d),
    # written from Keras 3's documented formulas, independently of the kernels
    "relu6": (lambda z: np.minimum(np.maximum(z, 0.0), 6.0),
              lambda z: ((z > 0) & (z < 6)).astype(z.dtype)),
    "selu": (lambda z: _SELU_SCALE * np.where(z > 0, z, _SELU_ALPHA * np.expm1(np.minimum(z, 0))),
             lambda z: _SELU_SCALE * np.where(z > 0, 1.0, _SELU_ALPHA * np.exp(np.minimum(z, 0)))),
    "silu": (lambda z: z * _sigmoid(z), lambda z: _sigmoid(z) * (1 + z * (1 - _sigmoid(z)))),
    "hard_sigmoid": (lambda z: np.clip(z / 6 + 0.5, 0.0, 1.0),
                     lambda z: np.where(np.abs(z) < 3, 1 / 6, 0.0)),
    "hard_silu": (lambda z: z * np.clip(z / 6 + 0.5, 0.0, 1.0),
                  lambda z: np.where(z <= -3, 0.0, np.where(z >= 3, 1.0, z / 3 + 0.5))),
    "mish": (lambda z: z * np.tanh(np.log1p(np.exp(z))),
             lambda z: (np.tanh(np.log1p(np.exp(z)))
                        + z * _sigmoid(z) * (1 - np.tanh(np.log1p(np.exp(z))) ** 2))),
    "exponential": (np.exp, np.exp),
    "softsign": (lambda z: z / (1 + np.abs(z)), lambda z: 1 / (1 + np.abs(z)) ** 2),
}
# row activations: forward only (their derivative is not elementwise)
ROW_ACT = {"log_softmax": lambda z: z - z.max(axis=-1, keepdims=True) - np.log(
    np.exp(z - z.max(axis=-1, keepdims=True)).sum(axis=-1, keepdims=True))}


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ------------------------------------------------------------------------ losses
# Each returns (loss, dL/d(output of the last layer's *pre-activation* z)) given the
# last layer's activation name; the 1/n of "sum_over_batch_size" is folded in.
CLIP = 1e-7


def loss_and_grad(loss, y, z, out_act):
    """Keras 3 loss of ``y`` against the output ``activation(z)`` and dL/dz."""
    n = z.shape[0]
    if out_act == "softmax":
        p = softmax(z)
        if loss == "mse":
            y = np.asarray(y, dtype=z.dtype).reshape(p.shape)
            dp = 2.0 * (p - y) / p.size
            return np.mean((y - p) ** 2), p * (dp - (dp * p).sum(axis=-1, keepdims=True))
        if loss in ("categorical_crossentropy", "sparse_categorical_crossentropy"):
            if loss == "sparse_categorical_crossentropy":
                y = np.eye(z.shape[1])[np.asarray(y, dtype=np.int64).reshape(-1)]
            q = np.clip(p / p.sum(axis=-1, keepdims=True), CLIP, 1 - CLIP)
            value = np.mean(-(y * np.log(q)).sum(axis=-1))
            return value, (p - y) / n            # softmax + cross-entropy, clip inactive
        raise NotImplementedError(loss)
    if loss in ("cce_logits", "scce_logits"):             # from logits: linear output
        if loss == "scce_logits":
            y = np.eye(z.shape[1])[np.asarray(y, dtype=np.int64).reshape(-1)]
        p = softmax(z)
        logp = z - z.max(axis=-1, keepdims=True)
        logp = logp - np.log(np.exp(logp).sum(axis=-1, keepdims=True))
        return np.mean(-(y * logp).sum(axis=-1)), (p - y) / n
    if loss == "bce_logits":
        y = np.asarray(y, dtype=z.dtype).reshape(z.shape)
        value = np.mean(np.log1p(np.exp(z)) - z * y)
        return value, (_sigmoid(z) - y) / z.size
    if loss == "binary_crossentropy" and out_act == "sigmoid":
        y = np.asarray(y, dtype=z.dtype).reshape(z.shape)
        p = np.clip(_sigmoid(z), CLIP, 1 - CLIP)
        value = np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)))
        return value, (_sigmoid(z) - y) / z.size          # clip inactive
    f, fprime = ACT[out_act]
    a = f(z)
    y = np.asarray(y, dtype=z.dtype).reshape(a.shape)
    if loss == "mse":
        value = np.mean(np.mean((y - a) ** 2, axis=-1))
        da = 2.0 * (a - y) / a.size
    elif loss == "mae":
        value = np.mean(np.mean(np.abs(y - a), axis=-1))
        da = np.sign(a - y) / a.size
    elif loss == "huber":
        e = a - y
        value = np.mean(np.where(np.abs(e) <= 1.0, 0.5 * e * e, np.abs(e) - 0.5))
        da = np.clip(e, -1.0, 1.0) / a.size
    else:
        raise NotImplementedError(loss)
    return value, da * fprime(z)


# -------------------------------------------------------------------------- MLP
def mlp_loss_and_grads(weights, acts, x, y, loss):
    """Loss and gradients (same order as ``weights`` = [W1, b1, W2, b2, ...]) of a
    Dense stack with activations ``acts`` (the last one may be 'softmax')."""
    hs, zs = [x], []
    h = x
    n_layers = len(acts)
    for i in range(n_layers):
        W, b = weights[2 * i], weights[2 * i + 1]
        z = h @ W + b
        zs.append(z)
        if i < n_layers - 1:
            h = ACT[acts[i]][0](z)
            hs.append(h)
    value, dz = loss_and_grad(loss, y, zs[-1], acts[-1])
    grads = [None] * len(weights)
    for i in range(n_layers - 1, -1, -1):
        grads[2 * i] = hs[i].T @ dz
        grads[2 * i + 1] = dz.sum(axis=0)
        if i > 0:
            dz = (dz @ weights[2 * i].T) * ACT[acts[i - 1]][1](zs[i - 1])
    return value, grads


# -------------------------------------------------------------------- optimizers
class RefOptimizer:
    """Keras 3's update rules (KERAS_NUMERICS.md), one state dict per parameter."""

    def __init__(self, kind, **hp):
        self.kind = kind
        self.hp = hp
        self.iterations = 0
        self.state = None

    def _clip(self, grads):
        """Keras's clipnorm (per array), global_clipnorm, clipvalue."""
        hp = self.hp
        if hp.get("clipnorm"):
            out = []
            for g in grads:
                norm = np.sqrt(np.sum(g * g))
                self.clipped += bool(norm > hp["clipnorm"])
                out.append(g * hp["clipnorm"] / max(norm, hp["clipnorm"]))
            return out
        if hp.get("global_clipnorm"):
            norm = np.sqrt(sum(np.sum(g * g) for g in grads))
            self.clipped += bool(norm > hp["global_clipnorm"])
            return [g * hp["global_clipnorm"] / max(norm, hp["global_clipnorm"]) for g in grads]
        if hp.get("clipvalue"):
            v = hp["clipvalue"]
            self.clipped += int(sum(np.sum(np.abs(g) > v) for g in grads))
            return [np.clip(g, -v, v) for g in grads]
        return grads

    clipped = 0   # how many clips were active (to check that a test exercises them)

    def step(self, params, grads):
        grads = self._clip(grads)
        if self.state is None:
            init = self.hp.get("initial_accumulator_value", 0.1)
            self.state = [{"m": np.zeros_like(p), "v": np.zeros_like(p),
                           "mg": np.zeros_like(p), "mom": np.zeros_like(p),
                           "acc": np.full_like(p, init)} for p in params]
        t = self.iterations + 1
        hp = self.hp
        lr = hp["learning_rate"]
        for p, g, s in zip(params, grads, self.state):
            wd = hp.get("weight_decay") or 0.0
            if wd:
                p -= p * wd * lr
            if self.kind == "sgd":
                mu = hp.get("momentum", 0.0)
                if mu == 0.0:
                    p -= lr * g
                else:
                    s["m"] = mu * s["m"] - lr * g
                    if hp.get("nesterov", False):
                        p += mu * s["m"] - lr * g
                    else:
                        p += s["m"]
            elif self.kind in ("adam", "adamw"):
                b1, b2 = hp.get("beta_1", 0.9), hp.get("beta_2", 0.999)
                eps = hp.get("epsilon", 1e-7)
                alpha = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
                s["m"] = s["m"] + (g - s["m"]) * (1 - b1)
                s["v"] = s["v"] + (g * g - s["v"]) * (1 - b2)
                v = s["v"]
                if hp.get("amsgrad", False):
                    s["v_hat"] = np.maximum(s.get("v_hat", np.zeros_like(p)), s["v"])
                    v = s["v_hat"]
                p -= alpha * s["m"] / (np.sqrt(v) + eps)
            elif self.kind == "rmsprop":
                rho, mu = hp.get("rho", 0.9), hp.get("momentum", 0.0)
                eps = hp.get("epsilon", 1e-7)
                s["v"] = rho * s["v"] + (1 - rho) * g * g
                den = s["v"]
                if hp.get("centered", False):
                    s["mg"] = rho * s["mg"] + (1 - rho) * g
                    den = s["v"] - s["mg"] ** 2
                inc = lr * g / np.sqrt(den + eps)
                if mu:
                    s["mom"] = mu * s["mom"] + inc
                    p -= s["mom"]
                else:
                    p -= inc
            elif self.kind == "adagrad":
                eps = hp.get("epsilon", 1e-7)
                s["acc"] = s["acc"] + g * g
                p -= lr * g / np.sqrt(s["acc"] + eps)
            else:
                raise NotImplementedError(self.kind)
        self.iterations += 1


def reference_fit(weights, acts, x, y, loss, optimizer, epochs, batch_size=None,
                  penalty=None):
    """Keras's fit with shuffle=False, reimplemented: returns the per-epoch losses
    (batch-size-weighted means) and the final weights.

    ``penalty(weights) -> (value, [grad per weight])`` adds regularisation.
    """
    weights = [np.array(w, dtype=np.float64) for w in weights]
    n = x.shape[0]
    batch_size = batch_size or n
    history = []
    for _ in range(epochs):
        total = 0.0
        for lo in range(0, n, batch_size):
            hi = min(n, lo + batch_size)
            value, grads = mlp_loss_and_grads(weights, acts, x[lo:hi], y[lo:hi], loss)
            if penalty is not None:
                pv, pg = penalty(weights)
                value += pv
                grads = [g + d for g, d in zip(grads, pg)]
            optimizer.step(weights, grads)
            total += value * (hi - lo)
        history.append(total / n)
    return history, weights


def fd_check(model, x, y, rel=1e-5, abs_=1e-9):
    """Every trainable weight's gradient of a compiled ``model``
    (``compute_gradients``, float64) against central differences of its loss; returns
    the gradients.  (Non-trainable weights, such as moving statistics, are left as
    they are.)"""
    _, grads = model.compute_gradients(x, y)
    weights = model.get_weights()
    ids = [id(w) for w in model.weights]
    slots = [ids.index(id(w)) for w in model.trainable_weights]
    assert len(grads) == len(slots)
    eps = 1e-6
    for g, k in enumerate(slots):
        w = weights[k]
        for i in range(w.size):
            plus = [a.copy() for a in weights]
            minus = [a.copy() for a in weights]
            plus[k].flat[i] += eps
            minus[k].flat[i] -= eps
            model.set_weights(plus)
            lp = model.compute_gradients(x, y)[0]
            model.set_weights(minus)
            lm = model.compute_gradients(x, y)[0]
            assert grads[g].flat[i] == pytest.approx((lp - lm) / (2 * eps), rel=rel,
                                                      abs=abs_), (k, i)
    model.set_weights(weights)
    return grads
