"""GPU benchmarks of the cuda backend (run by bench/gpu/run.sh; see its header).

    python bench/gpu/gpu_bench.py --out DIR [--smoke]

Times, as medians over repeats with the device synchronised around each timed block:
GEMM float32 n = 1024..8192 (ours vs CuPy's cuBLAS, TF32 off), the fused dense forward
and backward passes of the MLP's layers (ours vs the same steps in CuPy), and one
epoch of the MNIST-sized MLP (60000x784, Dense 256 relu, 128 relu, 10 softmax, sparse
cross-entropy, Adam, batch 128) through ``dl.fit`` on backend='cuda' vs backend='cython'
vs a PyTorch CUDA loop; the same for Keras's simple MNIST convnet (60000x28x28x1,
Conv2D 32 3x3 relu, MaxPooling2D 2, Conv2D 64 3x3 relu, MaxPooling2D 2, Flatten,
Dropout 0.5, Dense 10 softmax; the issue's goal: within 2x of PyTorch CUDA); and the
kernel launches per training step.  ``--smoke`` runs tiny sizes (works under
NUMBA_ENABLE_CUDASIM=1, to check the script itself).
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

import dl
import kernels

try:
    import cupy
except ImportError:
    cupy = None
try:
    import torch
except ImportError:
    torch = None


def _sync():
    from kernels.cuda import _nb
    _nb.synchronize()


def timeit(fn, repeats=5, inner=1, sync=_sync):
    fn()                      # warm-up (and compilation)
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        sync()
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times)


def bench_gemm(cu, sizes, rows):
    from kernels.cuda.backend import to_device
    rng = np.random.default_rng(0)
    for n in sizes:
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        da, db = to_device(a), to_device(b)
        out = to_device(np.empty((n, n), np.float32))
        flops = 2.0 * n ** 3
        inner = 1 if n >= 4096 else 3
        t_ours = timeit(lambda: cu.gemm(da, db, out), inner=inner)
        row = {"case": f"gemm f32 {n}^3", "ours_ms": t_ours * 1e3,
               "ours_tflops": flops / t_ours / 1e12}
        if cupy is not None:
            ca, cb = cupy.asarray(a), cupy.asarray(b)
            co = cupy.empty((n, n), cupy.float32)
            t_cublas = timeit(lambda: cupy.matmul(ca, cb, out=co), inner=inner,
                              sync=cupy.cuda.Device().synchronize)
            row.update(cublas_ms=t_cublas * 1e3, cublas_tflops=flops / t_cublas / 1e12,
                       ours_vs_cublas=t_cublas / t_ours)
            # ours reading CuPy arrays directly (__cuda_array_interface__, no copy)
            cu.gemm(ca, cb, co)
            err = float(cupy.abs(co - cupy.matmul(ca, cb)).max())
            row["max_abs_err_vs_cublas"] = err
        rows.append(row)
        print(row, flush=True)


def bench_dense(cu, batch, layers, rows):
    from kernels.cuda.backend import to_device
    rng = np.random.default_rng(1)
    for n_in, units, act in layers:
        x = to_device(rng.standard_normal((batch, n_in), dtype=np.float32))
        w = to_device(rng.standard_normal((n_in, units), dtype=np.float32) * 0.05)
        b = to_device(np.zeros(units, np.float32))
        y = to_device(np.empty((batch, units), np.float32))
        dy = to_device(rng.standard_normal((batch, units), dtype=np.float32))
        dx = to_device(np.empty((batch, n_in), np.float32))
        dw = to_device(np.empty((n_in, units), np.float32))
        dbias = to_device(np.empty(units, np.float32))
        t_f = timeit(lambda: cu.dense_forward(x, w, b, y, activation=act), inner=20)
        t_b = timeit(lambda: cu.dense_backward(dy, x, w, y, activation=act, dx=dx, dw=dw,
                                               db=dbias), inner=20)
        row = {"case": f"dense {batch}x{n_in}->{units} {act}", "forward_us": t_f * 1e6,
               "backward_us": t_b * 1e6}
        if cupy is not None:
            cx, cw, cb_ = cupy.asarray(x), cupy.asarray(w), cupy.asarray(b)
            cdy = cupy.asarray(dy)

            def cp_forward():
                z = cx @ cw + cb_
                return cupy.maximum(z, 0) if act == "relu" else z

            def cp_backward():
                dz = cdy * (cp_y > 0) if act == "relu" else cdy
                return cx.T @ dz, dz.sum(axis=0), dz @ cw.T

            cp_y = cp_forward()
            sync = cupy.cuda.Device().synchronize
            row["cupy_forward_us"] = timeit(cp_forward, inner=20, sync=sync) * 1e6
            row["cupy_backward_us"] = timeit(cp_backward, inner=20, sync=sync) * 1e6
        rows.append(row)
        print(row, flush=True)


def _convnet(backend, side, filters):
    dl.utils.set_random_seed(0)
    model = dl.Sequential([
        dl.Input(shape=(side, side, 1)),
        dl.layers.Conv2D(filters[0], kernel_size=(3, 3), activation="relu"),
        dl.layers.MaxPooling2D(pool_size=(2, 2)),
        dl.layers.Conv2D(filters[1], kernel_size=(3, 3), activation="relu"),
        dl.layers.MaxPooling2D(pool_size=(2, 2)),
        dl.layers.Flatten(), dl.layers.Dropout(0.5),
        dl.layers.Dense(10, activation="softmax")], backend=backend)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def bench_convnet(n, epochs, rows, side=28, filters=(32, 64), with_cython=True):
    rng = np.random.default_rng(3)
    x = rng.random((n, side, side, 1), dtype=np.float32)
    y = rng.integers(0, 10, n)
    result = {"case": f"convnet epoch {n}x{side}x{side}x1 conv{filters[0]}-conv{filters[1]} "
                      f"adam b128"}
    from kernels.cuda.backend import launches
    model = _convnet("cuda", side, filters)
    model.fit(x[:256], y[:256], batch_size=128, epochs=1, verbose=0)     # compile
    times = []
    for _ in range(epochs):
        before = launches.count
        t0 = time.perf_counter()
        hist = model.fit(x, y, batch_size=128, epochs=1, verbose=0)
        times.append(time.perf_counter() - t0)
        result["launches_per_step"] = (launches.count - before) / -(-n // 128)
    result["cuda_s"] = statistics.median(times)
    result["cuda_final_loss"] = float(hist.history["loss"][-1])
    if with_cython:
        model = _convnet("cython", side, filters)
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=128, epochs=1, verbose=0)
        result["cython_s"] = time.perf_counter() - t0
        result["cuda_speedup_vs_cython"] = result["cython_s"] / result["cuda_s"]
    if torch is not None and torch.cuda.is_available():
        result["torch_cuda_s"] = _torch_convnet_epoch(x, y, epochs, filters)
        result["cuda_vs_torch"] = result["torch_cuda_s"] / result["cuda_s"]
    rows.append(result)
    print(result, flush=True)


def _torch_convnet_epoch(x, y, epochs, filters):
    dev = torch.device("cuda")
    torch.manual_seed(0)
    side = x.shape[1]
    flat = filters[1] * (((side - 2) // 2 - 2) // 2) ** 2
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, filters[0], 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(filters[0], filters[1], 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Dropout(0.5), torch.nn.Linear(flat, 10)).to(dev)
    tx = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(dev)
    return _torch_loop(net, tx, torch.from_numpy(y).to(dev), epochs)


def _mlp(backend, features, hidden):
    dl.utils.set_random_seed(0)
    model = dl.Sequential([dl.layers.Dense(hidden[0], activation="relu",
                                           input_shape=(features,)),
                           dl.layers.Dense(hidden[1], activation="relu"),
                           dl.layers.Dense(10, activation="softmax")], backend=backend)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def bench_mlp(n, epochs, rows, with_cython=True, features=784, hidden=(256, 128)):
    rng = np.random.default_rng(2)
    x = rng.random((n, features), dtype=np.float32)
    y = rng.integers(0, 10, n)
    result = {"case": f"MLP epoch {n}x{features} {hidden[0]}-{hidden[1]}-10 adam b128"}
    from kernels.cuda.backend import launches
    model = _mlp("cuda", features, hidden)
    model.fit(x, y, batch_size=128, epochs=1, verbose=0)          # compile, upload
    times = []
    for _ in range(epochs):
        before = launches.count
        t0 = time.perf_counter()
        hist = model.fit(x, y, batch_size=128, epochs=1, verbose=0)
        times.append(time.perf_counter() - t0)
        steps = -(-n // 128)
        result["launches_per_step"] = (launches.count - before) / steps
    result["cuda_s"] = statistics.median(times)
    result["cuda_final_loss"] = float(hist.history["loss"][-1])
    if with_cython:
        model = _mlp("cython", features, hidden)
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=128, epochs=1, verbose=0)
        result["cython_s"] = time.perf_counter() - t0
        result["cuda_speedup_vs_cython"] = result["cython_s"] / result["cuda_s"]
    if torch is not None and torch.cuda.is_available():
        result["torch_cuda_s"] = _torch_epoch(x, y, epochs, features, hidden)
        result["cuda_vs_torch"] = result["torch_cuda_s"] / result["cuda_s"]
    rows.append(result)
    print(result, flush=True)


def _torch_epoch(x, y, epochs, features, hidden):
    dev = torch.device("cuda")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(features, hidden[0]), torch.nn.ReLU(),
                              torch.nn.Linear(hidden[0], hidden[1]), torch.nn.ReLU(),
                              torch.nn.Linear(hidden[1], 10)).to(dev)
    return _torch_loop(net, torch.from_numpy(x).to(dev), torch.from_numpy(y).to(dev),
                       epochs)


def _torch_loop(net, tx, ty, epochs):
    """The median time of an epoch of ``net`` on (tx, ty) on the GPU: shuffled batches
    of 128, cross-entropy, Keras's Adam defaults."""
    dev = tx.device
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()

    def epoch():
        perm = torch.randperm(tx.shape[0], device=dev)
        total = torch.zeros((), device=dev)
        for i in range(0, tx.shape[0], 128):
            idx = perm[i:i + 128]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(tx[idx]), ty[idx])
            loss.backward()
            opt.step()
            total += loss.detach()
        return float(total)          # one synchronisation per epoch, like dl's

    epoch()
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def write_table(rows, path, header):
    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    lines = [header, "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(k, "")) for k in keys) + " |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--smoke", action="store_true", help="tiny sizes (simulator check)")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    cu = kernels.get_backend("cuda")
    rows = []
    if args.smoke:
        bench_gemm(cu, [16], rows)
        bench_dense(cu, 8, [(12, 6, "relu")], rows)
        bench_mlp(200, 1, rows, with_cython=True, features=12, hidden=(8, 8))
        bench_convnet(16, 1, rows, side=10, filters=(2, 3))
    else:
        bench_gemm(cu, [1024, 2048, 4096, 8192], rows)
        bench_dense(cu, 128, [(784, 256, "relu"), (256, 128, "relu"), (128, 10, "linear")],
                    rows)
        bench_mlp(60000, 3, rows)
        bench_convnet(60000, 2, rows)
    info = {"python": sys.version.split()[0], "numpy": np.__version__,
            "cupy": getattr(cupy, "__version__", None),
            "torch": getattr(torch, "__version__", None),
            "simulator": os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"}
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"info": info, "rows": rows}, f, indent=1)
    write_table(rows, os.path.join(args.out, "results.md"),
                f"# dlkernels cuda benchmarks ({info})")


if __name__ == "__main__":
    main()
