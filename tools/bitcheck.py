"""The same results, bit for bit?  A check for changes that must not change numbers.

    PYTHONPATH=<old tree>/src python tools/bitcheck.py old.npz
    PYTHONPATH=<new tree>/src python tools/bitcheck.py new.npz
    python tools/bitcheck.py --compare old.npz new.npz

The first form computes a fixed set of results through the public API and saves them:
every GEMM transpose, dense forward/backward with every activation, every activation,
the losses and fused cross-entropies, the optimizer updates -- on every ISA variant the
CPU runs, with 1 and 2 threads, in both dtypes -- then dl fits (shuffled, with Dropout
and validation; the seed program).  ``--compare`` says which results differ in any
bit.  It reaches the per-ISA dispatchers by their names before and after the move of
the Cython twin into kernels/cpu/, so it compares trees across that change too.
"""
import importlib
import sys

import numpy as np


def _compare(a_path, b_path):
    a, b = np.load(a_path), np.load(b_path)
    if set(a.files) != set(b.files):
        print(f"different result sets: {sorted(set(a.files) ^ set(b.files))[:10]}")
        return 1
    bad = [k for k in a.files if a[k].dtype != b[k].dtype or a[k].tobytes() != b[k].tobytes()]
    print(f"{len(a.files)} results, {len(bad)} differ" + (f": {bad[:10]}" if bad else ""))
    return 1 if bad else 0


if len(sys.argv) == 4 and sys.argv[1] == "--compare":
    sys.exit(_compare(sys.argv[2], sys.argv[3]))
if len(sys.argv) != 2:
    sys.exit(__doc__)

import dl  # noqa: E402
import kernels  # noqa: E402

out = sys.argv[1]
try:
    G = importlib.import_module("kernels.cpu.gemm")
    E = importlib.import_module("kernels.cpu.elementwise")
    L = importlib.import_module("kernels.cpu.losses")
except ImportError:
    G = importlib.import_module("kernels._gemm")
    E = importlib.import_module("kernels._elementwise")
    L = importlib.import_module("kernels._losses")

cy = kernels.get_backend("cython")
res = {}
rng = np.random.default_rng(1234)
shapes = [(1, 1, 1), (3, 5, 7), (17, 10, 300), (128, 10, 256), (10, 128, 256), (64, 300, 33),
          (129, 257, 200), (256, 256, 256), (513, 100, 784), (12, 700, 40), (40, 12, 900)]
acts = ["linear", "relu", "leaky_relu", "elu", "sigmoid", "tanh", "softmax", "softplus", "gelu"]
for impl in G.available_impls():
    G.use_impl(impl)
    E.use_impl(impl)
    L.use_impl(impl)
    for threads in (1, 2):
        kernels.set_num_threads(threads)
        for dt in (np.float32, np.float64):
            for (m, n, k) in shapes:
                a = rng.standard_normal((m, k)).astype(dt)
                b = rng.standard_normal((k, n)).astype(dt)
                for ta in (False, True):
                    for tb in (False, True):
                        A = np.ascontiguousarray(a.T) if ta else a
                        B = np.ascontiguousarray(b.T) if tb else b
                        res[f"gemm{impl}{threads}{dt.__name__}{m}{n}{k}{ta}{tb}"] = cy.gemm(
                            A, B, trans_a=ta, trans_b=tb, alpha=1.5)
                bias = rng.standard_normal(n).astype(dt)
                for act in acts:
                    pre = np.empty((m, n), dt)
                    y = cy.dense_forward(a, b, bias, activation=act, pre_activation=pre)
                    res[f"fwd{impl}{threads}{dt.__name__}{m}{n}{k}{act}"] = y
                    dy = rng.standard_normal((m, n)).astype(dt)
                    dx, dw, db = cy.dense_backward(dy, a, b, y, activation=act,
                                                   pre_activation=pre)
                    res[f"bwd{impl}{threads}{dt.__name__}{m}{n}{k}{act}"] = np.concatenate(
                        [dx.ravel(), dw.ravel(), db.ravel()])
                    res[f"act{impl}{threads}{dt.__name__}{m}{n}{act}"] = getattr(cy, act)(dy)
            yt = rng.random((300, 10)).astype(dt)
            yp = rng.random((300, 10)).astype(dt) + 0.01
            lab = rng.integers(0, 10, 300)
            for lname in ("mean_squared_error", "mean_absolute_error", "huber",
                          "binary_crossentropy", "categorical_crossentropy"):
                res[f"loss{impl}{threads}{dt.__name__}{lname}"] = np.array(
                    [getattr(cy, lname)(yt, yp)])
                res[f"lossg{impl}{threads}{dt.__name__}{lname}"] = getattr(
                    cy, "backprop_" + lname)(yt, yp)
            l, g = cy.softmax_crossentropy(yt, yp)
            res[f"sxe{impl}{threads}{dt.__name__}"] = np.concatenate([[l], g.ravel()])
            l, g = cy.sparse_softmax_crossentropy(lab, yp)
            res[f"ssxe{impl}{threads}{dt.__name__}"] = np.concatenate([[l], g.ravel()])
            res[f"scce{impl}{threads}{dt.__name__}"] = np.array(
                [cy.sparse_categorical_crossentropy(lab, yp)])
            w = rng.standard_normal(5000).astype(dt)
            gg = rng.standard_normal(5000).astype(dt)
            m_, v_ = np.zeros_like(w), np.zeros_like(w)
            for step in range(1, 4):
                cy.adam_update(w, gg, m_, v_, step=step)
            cy.sgd_update(w, gg, m_, momentum=0.9, nesterov=True)
            cy.rmsprop_update(w, gg, v_, momentum=0.5, mom=np.zeros_like(w), centered=True,
                              mg=np.zeros_like(w))
            res[f"opt{impl}{threads}{dt.__name__}"] = w

# dl training: the validated-once path, the MLP with Adam, shuffling and dropout
G.use_impl(G.available_impls()[-1])
E.use_impl(E.available_impls()[-1])
L.use_impl(L.available_impls()[-1])
kernels.set_num_threads(2)
dl.utils.set_random_seed(7)
x = rng.random((1000, 20)).astype(np.float32)
y = (x.sum(1) * 3).astype(np.int64) % 10
model = dl.Sequential([dl.layers.Dense(64, activation="relu", input_shape=(20,)),
                       dl.layers.Dropout(0.2),
                       dl.layers.Dense(32, activation="tanh"),
                       dl.layers.Dense(10, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
h = model.fit(x, y, batch_size=64, epochs=3, verbose=0, validation_split=0.1)
res["dl_hist"] = np.array(h.history["loss"] + h.history["val_loss"] + h.history["accuracy"])
for i, w in enumerate(model.get_weights()):
    res[f"dl_w{i}"] = w
res["dl_pred"] = model.predict(x[:50], verbose=0)
model = dl.Sequential([dl.layers.Dense(1, input_shape=(2,))])
model.compile(optimizer="sgd", loss="mean_squared_error")
xs = np.array([[1, 2], [2, 3], [3, 4], [4, 5]])
model.fit(xs, np.array([1, 2, 3, 4]), epochs=100, verbose=0)
res["seed_pred"] = model.predict(xs, verbose=0)
np.savez(out, **res)
print(f"{len(res)} results saved to {out}")
