"""Memory use of fit on an MNIST-sized dataset (60000 x 784 float32, 188 MB): an MLP,
and Keras's simple MNIST convnet.

fit converts x once and gathers each shuffled batch into a reused buffer, so it never
copies the dataset per epoch.  This benchmark checks it: in a fresh subprocess it
builds the dataset and an MLP 784-256-128-10 (relu, softmax, sparse categorical
cross-entropy, Adam, batch 128), fits it for a few epochs, and measures

* the peak RSS (``VmHWM``: the process's own high-water mark; ``ru_maxrss`` would not
  do, Linux carries it over ``exec`` from the forking parent, here a large pytest
  process) minus the RSS right after the imports, which must stay
  under 1.5 x (dataset + parameters x (1 + gradients + optimizer state) + one batch of
  layer buffers), everything counted from the actual arrays;
* the RSS (``VmRSS``) at the end of every epoch (a LambdaCallback), which must not grow
  from epoch 1 to the last epoch beyond a small slack.

The convnet case (``--model convnet``; cython backend) does the same with 60000 x 28 x 28
x 1 float32 images and Keras's simple MNIST convnet (Conv2D 32 3x3 relu, MaxPooling2D 2,
Conv2D 64 3x3 relu, MaxPooling2D 2, Flatten, Dropout 0.5, Dense 10 softmax; Adam; sparse
categorical cross-entropy; batch 128) for one epoch (an epoch takes 10-30 s); its
target: peak RSS over the post-import baseline <= dataset + 150 MiB
(``CONVNET_SLACK``).  The same figures are recorded (and ``factor_bound``, the MLP's
1.5 x rule applied to the convnet).

Run with the other benchmarks (``pytest bench --benchmark-only``), or alone:

    PYTHONPATH=src python -m pytest bench/test_bench_memory.py --benchmark-only -s
    DLKERNELS_BENCH_MEMORY_EPOCHS=50 PYTHONPATH=src python -m pytest \
        bench/test_bench_memory.py --benchmark-only -s -k cython
    PYTHONPATH=src python bench/test_bench_memory.py --epochs 50 --backend cython
    PYTHONPATH=src python bench/test_bench_memory.py --model convnet --epochs 1

The epoch count defaults to 5 for the cython backend and 2 for the (slow) numpy one, 1
for the convnet (``DLKERNELS_BENCH_MEMORY_EPOCHS`` or ``--epochs`` sets it for all); a
50-epoch run shows that the RSS stays flat (figures in docs/hardening.md, "Memory
use").
"""
import json
import os
import subprocess
import sys
import time

import pytest

N_SAMPLES, N_FEATURES, N_CLASSES, BATCH = 60000, 784, 10, 128
IMAGE = (28, 28, 1)               # the convnet's samples (N_FEATURES values each)
DEFAULT_EPOCHS = int(os.environ.get("DLKERNELS_BENCH_MEMORY_EPOCHS", "5"))
CONVNET_EPOCHS = int(os.environ.get("DLKERNELS_BENCH_MEMORY_EPOCHS", "1"))
FACTOR = 1.5                      # the MLP's bound: FACTOR x (what fit needs to hold)
CONVNET_SLACK = 150 * 2**20       # the convnet's bound: dataset + this (bytes)
GROWTH_SLACK = 8 * 2**20          # RSS growth allowed from epoch 1 to the last (bytes)


# ============================================================ the measured process

def _status_kb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def _model(dl, name, backend):
    from dl import layers
    dl.utils.set_random_seed(0)
    if name == "convnet":
        stack = [dl.Input(IMAGE),
                 layers.Conv2D(32, 3, activation="relu"),
                 layers.MaxPooling2D(2),
                 layers.Conv2D(64, 3, activation="relu"),
                 layers.MaxPooling2D(2),
                 layers.Flatten(),
                 layers.Dropout(0.5),
                 layers.Dense(N_CLASSES, activation="softmax")]
    else:
        stack = [layers.Dense(256, activation="relu", input_shape=(N_FEATURES,)),
                 layers.Dense(128, activation="relu"),
                 layers.Dense(N_CLASSES, activation="softmax")]
    model = dl.Sequential(stack, backend=backend)
    model.compile(dl.optimizers.Adam(learning_rate=1e-3), "sparse_categorical_crossentropy")
    return model


def _child(backend, epochs, model_name="mlp"):
    """Runs in a fresh interpreter; prints one JSON line of measurements."""
    import numpy as np

    import dl

    rss_base = _status_kb("VmRSS") * 1024          # interpreter + NumPy + dl + kernels
    maxrss_base = _status_kb("VmHWM") * 1024

    rng = np.random.default_rng(0)
    sample = IMAGE if model_name == "convnet" else (N_FEATURES,)
    x = rng.random((N_SAMPLES,) + sample, dtype=np.float32)
    y = rng.integers(0, N_CLASSES, size=N_SAMPLES)
    rss_data = _status_kb("VmRSS") * 1024

    model = _model(dl, model_name, backend)

    epoch_rss = []
    rec = dl.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: epoch_rss.append(_status_kb("VmRSS") * 1024))
    t0 = time.perf_counter()
    hist = model.fit(x, y, epochs=epochs, batch_size=BATCH, shuffle=True, verbose=0,
                     callbacks=[rec])
    fit_seconds = time.perf_counter() - t0
    maxrss = _status_kb("VmHWM") * 1024

    params = sum(w.nbytes for w in model.weights)
    grads = sum(g.nbytes for layer in model.layers for g in layer.gradients)
    opt_state = sum(np.asarray(a).nbytes for a in model.optimizer.get_state())
    layer_buffers = sum(b.nbytes for layer in model.layers
                        for b in getattr(layer, "_buffers", {}).values())
    batch_io = BATCH * (N_FEATURES * x.itemsize + y.itemsize)        # xbuf, ybuf
    needed = x.nbytes + y.nbytes + params + grads + opt_state + layer_buffers + batch_io
    print(json.dumps({
        "model": model_name, "backend": backend, "epochs": epochs, "fit_seconds": fit_seconds,
        "rss_base": rss_base, "maxrss_base": maxrss_base, "rss_after_data": rss_data,
        "maxrss": maxrss, "epoch_rss": epoch_rss,
        "dataset_bytes": int(x.nbytes + y.nbytes), "param_bytes": int(params),
        "grad_bytes": int(grads), "optimizer_state_bytes": int(opt_state),
        "batch_buffer_bytes": int(layer_buffers + batch_io), "needed_bytes": int(needed),
        "final_loss": hist.history["loss"][-1],
    }), flush=True)


# ============================================================ the parent side

def measure(backend, epochs, threads=None, model="mlp"):
    """Run the child; return its measurements with the derived figures added."""
    env = dict(os.environ)
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        import dl
        src = os.path.dirname(os.path.dirname(os.path.abspath(dl.__file__)))
        env["PYTHONPATH"] = os.pathsep.join(
            [src] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    except ImportError:
        pass
    if threads is not None:
        env["DLKERNELS_NUM_THREADS"] = str(threads)
    out = subprocess.run(
        [sys.executable, os.path.join(here, "test_bench_memory.py"), "--child",
         "--backend", backend, "--epochs", str(epochs), "--model", model],
        capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"the measuring process failed ({out.returncode}):\n{out.stderr}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["peak_over_base"] = r["maxrss"] - r["rss_base"]
    r["factor_bound"] = FACTOR * r["needed_bytes"]
    if r["model"] == "convnet":
        r["bound"] = r["dataset_bytes"] + CONVNET_SLACK
        r["bound_rule"] = f"dataset + {CONVNET_SLACK / 2**20:.0f} MiB"
    else:
        r["bound"] = r["factor_bound"]
        r["bound_rule"] = f"{FACTOR} x what fit holds"
    r["growth"] = r["epoch_rss"][-1] - r["epoch_rss"][0]
    return r


def report(r):
    mb = lambda b: f"{b / 2**20:.1f} MiB"
    return (f"[{r['model']}, {r['backend']}, {r['epochs']} epochs, fit "
            f"{r['fit_seconds']:.1f} s] peak RSS over the post-import baseline "
            f"{mb(r['peak_over_base'])} (bound {r['bound_rule']} = {mb(r['bound'])}; "
            f"fit holds {mb(r['needed_bytes'])}: dataset "
            f"{mb(r['dataset_bytes'])}, params {mb(r['param_bytes'])}, grads "
            f"{mb(r['grad_bytes'])}, Adam state {mb(r['optimizer_state_bytes'])}, one "
            f"batch of buffers {mb(r['batch_buffer_bytes'])}); RSS at the end of epoch 1 "
            f"{mb(r['epoch_rss'][0])}, of epoch {r['epochs']} {mb(r['epoch_rss'][-1])} "
            f"(growth {r['growth'] / 2**20:+.2f} MiB); baseline {mb(r['rss_base'])}")


def check(r):
    assert r["peak_over_base"] <= r["bound"], report(r)
    if r["epochs"] > 1:
        assert r["growth"] <= GROWTH_SLACK, report(r)


@pytest.mark.parametrize("backend_name", ["numpy", "cython"])
def test_fit_memory_mnist_sized(benchmark, backend_name):
    """Peak RSS of fit bounded by 1.5 x what it must hold; no growth across epochs.
    (Host backends only: a GPU backend's memory is not the process's RSS.)"""
    import kernels
    try:
        backend = kernels.get_backend(backend_name)
    except ImportError as exc:
        pytest.skip(f"backend {backend_name!r} not available: {exc}")
    # the numpy backend takes ~20 s an epoch here: 2 epochs (enough to compare epoch 1
    # with the last) unless the epoch count was set explicitly
    epochs = DEFAULT_EPOCHS
    if backend.name == "numpy" and "DLKERNELS_BENCH_MEMORY_EPOCHS" not in os.environ:
        epochs = 2
    benchmark.group = f"fit memory {N_SAMPLES}x{N_FEATURES}"
    holder = {}

    def run():
        holder["r"] = measure(backend.name, epochs, threads=kernels.get_num_threads())

    benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
    r = holder["r"]
    info = benchmark.extra_info
    info.update({k: r[k] for k in ("backend", "epochs", "fit_seconds", "rss_base", "maxrss",
                                   "peak_over_base", "needed_bytes", "bound", "growth",
                                   "epoch_rss", "dataset_bytes", "param_bytes",
                                   "optimizer_state_bytes", "batch_buffer_bytes")})
    print("\n" + report(r))
    check(r)


def test_fit_memory_convnet(benchmark):
    """Peak RSS of a convnet epoch (cython) within the dataset + 150 MiB."""
    import kernels
    try:
        backend = kernels.get_backend("cython")
    except ImportError as exc:
        pytest.skip(f"backend 'cython' not available: {exc}")
    benchmark.group = f"fit memory convnet {N_SAMPLES}x{'x'.join(map(str, IMAGE))}"
    holder = {}

    def run():
        holder["r"] = measure(backend.name, CONVNET_EPOCHS,
                              threads=kernels.get_num_threads(), model="convnet")

    benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
    r = holder["r"]
    benchmark.extra_info.update({k: r[k] for k in (
        "model", "backend", "epochs", "fit_seconds", "rss_base", "maxrss", "peak_over_base",
        "bound", "bound_rule", "needed_bytes", "factor_bound", "growth", "epoch_rss",
        "dataset_bytes", "param_bytes", "optimizer_state_bytes", "batch_buffer_bytes",
        "final_loss")})
    print("\n" + report(r))
    check(r)


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"default: {DEFAULT_EPOCHS} (mlp), {CONVNET_EPOCHS} (convnet)")
    parser.add_argument("--backend", default="cython")
    parser.add_argument("--model", choices=("mlp", "convnet"), default="mlp")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.epochs is None:
        args.epochs = CONVNET_EPOCHS if args.model == "convnet" else DEFAULT_EPOCHS
    if args.child:
        _child(args.backend, args.epochs, args.model)
    else:
        result = measure(args.backend, args.epochs, model=args.model)
        print(report(result))
        check(result)
        print("ok")
