"""Whole training runs through dl's Keras-style machinery, per backend.

- the MLP: one epoch of ``fit`` over 60000x784 float32 inputs with labels 0-9 (Dense
  256 relu, 128 relu, 10 softmax; sparse categorical cross-entropy; Adam; batch 128);
  a fresh model (same seed) per round, 3 rounds.  Where PyTorch is installed, a
  hand-written PyTorch loop of the same model, loss, optimizer and epoch is timed in the
  same group.  Checked after timing: the epoch's loss is finite, and the loss on the
  first 4096 samples went down from the untrained model's.
- contention: a fifth of that epoch (12000 samples) with 2 threads (kernels and BLAS,
  whatever ``--threads`` says), once on a quiet machine ("idle") and once while a
  competing CPU-bound process spins ("busy"); ``report.py`` prints the ratio of the
  two throughputs per backend (the issue's target: busy >= 40% of idle).
- the seed program: ``fit(x, y, epochs=1000)`` of a Dense(1) on 4 samples (verbose=0);
  checked after timing: predictions within 0.05 of y.
- functional models: the same MLP epoch and seed program built as ``dl.Model(inputs,
  outputs)`` (a chain of Dense layers: issue 13's target is within 5% of the
  Sequential's time, the seed program under 15 ms), and a residual MLP (256 relu, then
  two 256 relu layers added back to it, 10 softmax) that runs the graph executor.

The data are random (generated once per session, fixed seed); the labels are the
argmax of a fixed random linear map of the inputs, so that there is something to learn.
"""
import math
import subprocess
import sys
import time

import numpy as np
import pytest

import dl

N_SAMPLES, N_FEATURES, N_CLASSES = 60000, 784, 10
HIDDEN = (256, 128)
BATCH = 128
EPOCH_ROUNDS = 3
CHECK_ROWS = 4096          # the slice evaluated before and after training

CONTENTION_SAMPLES = N_SAMPLES // 5
CONTENTION_THREADS = 2
CONTENTION_ROUNDS = 3
CONTENTION_TARGET = 0.40   # busy throughput / idle throughput (the target)

SEED_X = np.array([[1, 2], [2, 3], [3, 4], [4, 5]])
SEED_Y = np.array([1, 2, 3, 4])

WITH_TORCH = ["numpy", "cython", "cuda", "torch"]


@pytest.fixture(scope="session")
def mlp_data():
    """x: (60000, 784) float32 in [0, 1); y: int64 labels 0-9 (a linear teacher)."""
    rng = np.random.default_rng(20240601)
    x = rng.random((N_SAMPLES, N_FEATURES), dtype=np.float32)
    teacher = rng.standard_normal((N_FEATURES, N_CLASSES)).astype(np.float32)
    y = np.argmax((x - 0.5) @ teacher, axis=1).astype(np.int64)
    return x, y


def _mlp_flops(n):
    """The products of one epoch over n samples: forward, dW of every layer, dX of all
    but the first layer (fit asks the first layer for no dx)."""
    dims = (N_FEATURES,) + HIDDEN + (N_CLASSES,)
    sizes = [a * b for a, b in zip(dims, dims[1:])]
    return n * (2 * sum(sizes) + 2 * sum(sizes) + 2 * sum(sizes[1:]))


def _dl_mlp(backend_name, kind="sequential"):
    dl.utils.set_random_seed(0)
    if kind == "functional":
        x = dl.Input((N_FEATURES,))
        h = dl.layers.Dense(HIDDEN[0], activation="relu")(x)
        h = dl.layers.Dense(HIDDEN[1], activation="relu")(h)
        model = dl.Model(x, dl.layers.Dense(N_CLASSES, activation="softmax")(h),
                         backend=backend_name)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return model
    if kind == "residual":
        x = dl.Input((N_FEATURES,))
        h = dl.layers.Dense(HIDDEN[0], activation="relu")(x)
        r = dl.layers.Dense(HIDDEN[0], activation="relu")(h)
        h = h + dl.layers.Dense(HIDDEN[0], activation="relu")(r)
        model = dl.Model(x, dl.layers.Dense(N_CLASSES, activation="softmax")(h),
                         backend=backend_name)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return model
    model = dl.Sequential([
        dl.layers.Dense(HIDDEN[0], activation="relu", input_shape=(N_FEATURES,)),
        dl.layers.Dense(HIDDEN[1], activation="relu"),
        dl.layers.Dense(N_CLASSES, activation="softmax"),
    ], backend=backend_name)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def _dl_loss(model, x, y):
    return float(model.evaluate(x[:CHECK_ROWS], y[:CHECK_ROWS], batch_size=1024, verbose=0))


def _time_dl_epoch(benchmark, backend, x, y, rounds, kind="sequential"):
    """Times ``fit(x, y, epochs=1)`` of a fresh model per round; returns
    (loss on the check slice before training, after, the last epoch's loss)."""
    before = _dl_loss(_dl_mlp(backend.name, kind), x, y)

    def make():
        return (_dl_mlp(backend.name, kind),), {}

    def epoch(model):
        history = model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
        return model, history.history["loss"][-1]

    model, epoch_loss = benchmark.pedantic(epoch, setup=make, rounds=rounds, iterations=1)
    return before, _dl_loss(model, x, y), epoch_loss


# --------------------------------------------------------------------- PyTorch loop

def _torch_mlp(torch):
    torch.manual_seed(0)
    nn = torch.nn
    dims = (N_FEATURES,) + HIDDEN + (N_CLASSES,)
    layers = []
    for i, (a, b) in enumerate(zip(dims, dims[1:])):
        linear = nn.Linear(a, b)
        nn.init.xavier_uniform_(linear.weight)     # Keras' glorot_uniform, zero bias
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if i < len(dims) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)     # logits: cross_entropy applies the softmax
    # Keras' Adam defaults (epsilon 1e-7)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    return model, optimizer


def _torch_loss(torch, model, xt, yt):
    with torch.no_grad():
        return float(torch.nn.functional.cross_entropy(model(xt[:CHECK_ROWS]),
                                                       yt[:CHECK_ROWS]))


def _torch_epoch(torch, model, optimizer, xt, yt):
    """One epoch: reshuffled batches of BATCH, the last partial batch kept (as fit)."""
    n = xt.shape[0]
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    cross_entropy = torch.nn.functional.cross_entropy
    total = 0.0
    for lo in range(0, n, BATCH):
        idx = order[lo:lo + BATCH]
        xb = xt.index_select(0, idx)
        yb = yt.index_select(0, idx)
        optimizer.zero_grad(set_to_none=True)
        loss = cross_entropy(model(xb), yb)
        loss.backward()
        optimizer.step()
        total += loss.item() * idx.shape[0]    # fit also reads each batch's loss
    return total / n


def _time_torch_epoch(benchmark, torch, x, y, rounds):
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    before = _torch_loss(torch, _torch_mlp(torch)[0], xt, yt)

    def make():
        return _torch_mlp(torch), {}

    def epoch(model, optimizer):
        return model, _torch_epoch(torch, model, optimizer, xt, yt)

    model, epoch_loss = benchmark.pedantic(epoch, setup=make, rounds=rounds, iterations=1)
    return before, _torch_loss(torch, model, xt, yt), epoch_loss


# ------------------------------------------------------------------------ benchmarks

@pytest.mark.parametrize("backend", WITH_TORCH, indirect=True)
def test_mlp_epoch(benchmark, backend, describe, mlp_data):
    x, y = mlp_data
    describe("fit mlp 1 epoch", f"{N_SAMPLES}x{N_FEATURES}->256->128->10 b{BATCH}",
             flops=_mlp_flops(N_SAMPLES), samples=N_SAMPLES, batch_size=BATCH)

    if backend.name == "torch":
        before, after, epoch_loss = _time_torch_epoch(benchmark, backend.torch, x, y,
                                                      EPOCH_ROUNDS)
    else:
        before, after, epoch_loss = _time_dl_epoch(benchmark, backend, x, y, EPOCH_ROUNDS)

    benchmark.extra_info.update(loss_before=before, loss_after=after, epoch_loss=epoch_loss)
    assert math.isfinite(epoch_loss) and math.isfinite(after)
    assert after < before, f"loss on the first {CHECK_ROWS} samples: {before} -> {after}"


@pytest.fixture
def competitor(request):
    """For "busy": a competing CPU-bound process, spinning from before the timing until
    after it; for "idle": nothing."""
    if request.param == "idle":
        yield None
        return
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.3)   # let it start and reach its loop
    try:
        assert proc.poll() is None, "the competing process died"
        yield proc
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("competitor", ["idle", "busy"], indirect=True)
def test_mlp_contention(benchmark, backend, describe, threads_for, mlp_data, competitor):
    x, y = mlp_data
    x, y = x[:CONTENTION_SAMPLES], y[:CONTENTION_SAMPLES]
    state = "idle" if competitor is None else "busy"
    with threads_for(CONTENTION_THREADS) as threads:
        describe(f"contention fit mlp 1/5 epoch {CONTENTION_THREADS} threads {state}",
                 f"{CONTENTION_SAMPLES}x{N_FEATURES}->256->128->10 b{BATCH}",
                 flops=_mlp_flops(CONTENTION_SAMPLES), samples=CONTENTION_SAMPLES,
                 batch_size=BATCH, contention=state,
                 contention_case=f"fit mlp 1/5 epoch {CONTENTION_THREADS} threads",
                 contention_target=CONTENTION_TARGET, **threads)
        before, after, epoch_loss = _time_dl_epoch(benchmark, backend, x, y,
                                                   CONTENTION_ROUNDS)
        if competitor is not None:
            assert competitor.poll() is None, "the competing process stopped during timing"

    benchmark.extra_info.update(loss_before=before, loss_after=after, epoch_loss=epoch_loss)
    assert math.isfinite(epoch_loss) and math.isfinite(after)
    assert after < before, f"loss on the first {CHECK_ROWS} samples: {before} -> {after}"


def test_seed_program_fit_1000_epochs(benchmark, backend, describe):
    describe("fit seed program 1000 epochs", "4x2->1")

    def make():
        dl.utils.set_random_seed(0)
        model = dl.Sequential([dl.layers.Dense(1, input_shape=(2,))], backend=backend.name)
        model.compile(optimizer="sgd", loss="mean_squared_error")
        return (model,), {}

    def run(model):
        model.fit(SEED_X, SEED_Y, epochs=1000, verbose=0)
        return model

    model = benchmark.pedantic(run, setup=make, rounds=7, iterations=1)
    y_pred = model.predict(SEED_X, verbose=0).ravel()
    np.testing.assert_allclose(y_pred, SEED_Y, atol=0.05)


# ------------------------------------------------------------- functional models

@pytest.mark.parametrize("kind", ["functional", "residual"])
def test_mlp_epoch_functional(benchmark, backend, describe, mlp_data, kind):
    """The MLP epoch as a functional model: a chain (compare with test_mlp_epoch's
    Sequential: the same group name but for the kind) and a residual graph."""
    x, y = mlp_data
    if kind == "functional":
        flops = _mlp_flops(N_SAMPLES)
        what = f"{N_SAMPLES}x{N_FEATURES}->256->128->10 b{BATCH}"
    else:
        flops = N_SAMPLES * 6 * (N_FEATURES * 256 + 2 * 256 * 256 + 256 * 10)
        what = f"{N_SAMPLES}x{N_FEATURES}->256->(256->256)+->10 b{BATCH}"
    describe(f"fit mlp 1 epoch {kind}", what, flops=flops, samples=N_SAMPLES,
             batch_size=BATCH)
    before, after, epoch_loss = _time_dl_epoch(benchmark, backend, x, y, EPOCH_ROUNDS,
                                               kind)
    benchmark.extra_info.update(loss_before=before, loss_after=after, epoch_loss=epoch_loss)
    assert math.isfinite(epoch_loss) and math.isfinite(after)
    assert after < before, f"loss on the first {CHECK_ROWS} samples: {before} -> {after}"


def test_seed_program_functional_fit_1000_epochs(benchmark, backend, describe):
    describe("fit seed program 1000 epochs functional", "4x2->1")

    def make():
        dl.utils.set_random_seed(0)
        x = dl.Input(shape=(2,))
        model = dl.Model(x, dl.layers.Dense(1)(x), backend=backend.name)
        model.compile(optimizer="sgd", loss="mean_squared_error")
        return (model,), {}

    def run(model):
        model.fit(SEED_X, SEED_Y, epochs=1000, verbose=0)
        return model

    model = benchmark.pedantic(run, setup=make, rounds=7, iterations=1)
    y_pred = model.predict(SEED_X, verbose=0).ravel()
    np.testing.assert_allclose(y_pred, SEED_Y, atol=0.05)
