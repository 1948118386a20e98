"""Threads: concurrent inference and kernel calls equal serial ones bit for bit, the
compiled kernels release the GIL, and fit during a concurrent predict is safe (see
docs/hardening.md, "Threads")."""
import threading
import time

import numpy as np
import pytest

import dl
import kernels
from dl import layers, optimizers
from dl_helpers import both_backends, restore_dl_state  # noqa: F401  (autouse fixture)

N_THREADS = 8


def _run_in_threads(fn, n=N_THREADS):
    """Run ``fn(i)`` in ``n`` threads started together; return the results in thread
    order and re-raise the first exception any thread met."""
    barrier = threading.Barrier(n)
    results, errors = [None] * n, []

    def target(i):
        try:
            barrier.wait()
            results[i] = fn(i)
        except BaseException as exc:     # noqa: BLE001  (re-raised below)
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def _mlp(backend, seed=0):
    """An MLP through every kind of activation path: fused Dense activations (relu,
    tanh, gelu, sigmoid, elu), an Activation layer, Dropout, a softmax output."""
    dl.utils.set_random_seed(seed)
    model = dl.Sequential([
        layers.Dense(48, activation="relu", input_shape=(20,)),
        layers.Dense(40, activation="tanh"),
        layers.Dropout(0.2),
        layers.Dense(36, activation="gelu"),
        layers.Dense(32),
        layers.Activation("leaky_relu"),
        layers.Dense(28, activation="sigmoid"),
        layers.Dense(24, activation="elu"),
        layers.Dense(6, activation="softmax"),
    ], backend=backend)
    model.compile(optimizer=optimizers.Adam(learning_rate=0.01),
                  loss="sparse_categorical_crossentropy")
    return model


def _data(n=300, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 20)).astype(np.float32)
    y = rng.integers(0, 6, size=n)
    return x, y


def _inputs(seed=2):
    """Batches of several sizes: below and above the kernels' parallel threshold, and
    not multiples of predict's batch size."""
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n, 20)).astype(np.float32) for n in (1, 7, 64, 333, 1000)]


# ---------------------------------------------------------------- predict

@pytest.mark.parametrize("backend", both_backends())
def test_concurrent_predict_equals_serial_bitwise(backend):
    x, y = _data()
    model = _mlp(backend)
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)      # non-trivial weights
    inputs = _inputs()
    serial = [(model.predict(a, verbose=0), model.predict(a, batch_size=50, verbose=0),
               model(a), model.predict_on_batch(a)) for a in inputs]
    weights = model.get_weights()

    def worker(i):
        out = []
        for rep in range(6):
            for j in range(len(inputs)):
                k = (j + i + rep) % len(inputs)     # threads interleave different sizes
                a = inputs[k]
                out.append((k, model.predict(a, verbose=0),
                            model.predict(a, batch_size=50, verbose=0),
                            model(a), model.predict_on_batch(a)))
        return out

    for results in _run_in_threads(worker):
        assert len(results) == 6 * len(inputs)
        for k, *got in results:
            for g, s in zip(got, serial[k]):
                assert g.dtype == s.dtype and g.shape == s.shape
                np.testing.assert_array_equal(g, s)
    for w, w0 in zip(model.get_weights(), weights):          # inference changed nothing
        np.testing.assert_array_equal(w, w0)


@pytest.mark.parametrize("backend", both_backends())
def test_concurrent_predict_of_several_models_and_dtypes(backend):
    """Threads using different models (float32 and float64) at once: no shared scratch
    between models either."""
    models = []
    for seed, dtype in ((0, "float32"), (1, "float64"), (2, "float32")):
        dl.config.set_floatx(dtype)
        models.append(_mlp(backend, seed=seed))
    dl.config.set_floatx("float32")
    a = _inputs()[3]
    serial = [m.predict(a, verbose=0) for m in models]
    assert serial[1].dtype == np.float64

    def worker(i):
        m = i % len(models)
        return m, [models[m].predict(a, batch_size=37, verbose=0) for _ in range(5)]

    for m, outs in _run_in_threads(worker):
        for out in outs:
            np.testing.assert_array_equal(out, serial[m])


# ---------------------------------------------------------------- kernels

def _kernel_jobs(dtype, seed):
    rng = np.random.default_rng(seed)
    u = lambda *s: rng.uniform(-1, 1, size=s).astype(dtype)
    jobs = []
    for rows, k, cols in ((3, 5, 4), (64, 33, 17), (257, 130, 70), (512, 300, 10)):
        x, w, b = u(rows, k), u(k, cols), u(cols)
        dy = u(rows, cols)
        labels = rng.integers(0, cols, size=rows)
        onehot = np.eye(cols, dtype=dtype)[labels]
        prob = rng.uniform(0.05, 1, size=(rows, cols)).astype(dtype)
        prob /= prob.sum(axis=1, keepdims=True)
        jobs.append((x, w, b, dy, labels, onehot, prob))
    return jobs


def _kernel_work(be, job):
    """Every result of a batch of kernel calls (as arrays, copied)."""
    x, w, b, dy, labels, onehot, prob = job
    out = []
    out.append(be.gemm(x, w))
    out.append(be.gemm(x, x, trans_a=True, alpha=0.5))
    out.append(be.gemm(dy, w, trans_b=True))
    acts = ("linear", "relu", "tanh", "sigmoid", "elu", "softmax")
    if x.shape[0] <= 64:                  # the reference's gelu (erf per element) is slow
        acts += ("gelu",)
    for act in acts:
        z = np.empty((x.shape[0], w.shape[1]), x.dtype)
        out.append(be.dense_forward(x, w, b, activation=act, pre_activation=z))
        out.append(z)
    y = be.dense_forward(x, w, b, activation="relu")
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty_like(b)
    be.dense_backward(dy, x, w, y, activation="relu", dx=dx, dw=dw, db=db)
    out += [dx, dw, db]
    out.append(np.asarray(be.mean_squared_error(onehot, prob)))
    out.append(be.backprop_mean_squared_error(onehot, prob))
    out.append(np.asarray(be.huber(onehot, dy)))
    out.append(np.asarray(be.binary_crossentropy(onehot, dy, from_logits=True)))
    out.append(be.backprop_binary_crossentropy(onehot, dy, from_logits=True))
    out.append(np.asarray(be.categorical_crossentropy(onehot, prob)))
    out.append(be.backprop_categorical_crossentropy(onehot, prob))
    out.append(np.asarray(be.sparse_categorical_crossentropy(labels, dy, from_logits=True)))
    g = np.empty_like(dy)
    loss, grad = be.softmax_crossentropy(onehot, dy, g)
    out += [np.asarray(loss), grad.copy()]
    loss, grad = be.sparse_softmax_crossentropy(labels, dy, g)
    out += [np.asarray(loss), grad.copy()]
    out.append(be.column_sums(dy))
    wt, m, v = w.copy(), np.zeros_like(w), np.zeros_like(w)
    be.adam_update(wt, dw, m, v, step=3)
    out += [wt, m, v]
    return [np.array(o, copy=True) for o in out]


@pytest.mark.parametrize("backend", both_backends())
def test_concurrent_kernel_calls_equal_serial_bitwise(backend):
    be = kernels.get_backend(backend)
    jobs = _kernel_jobs(np.float32, 0) + _kernel_jobs(np.float64, 1)
    serial = [_kernel_work(be, j) for j in jobs]

    def worker(i):
        # half of the jobs per thread, rotated: every job runs in 4 threads at once
        order = [(i + 3 * r) % len(jobs) for r in range(len(jobs) // 2)]
        return [(k, _kernel_work(be, jobs[k])) for k in order]

    for results in _run_in_threads(worker):
        for k, got in results:
            assert len(got) == len(serial[k])
            for g, s in zip(got, serial[k]):
                assert g.dtype == s.dtype
                np.testing.assert_array_equal(g, s)


@pytest.mark.parametrize("num_threads", [1, 2])
def test_concurrent_kernel_calls_with_openmp_teams(num_threads):
    """The same with the compiled kernels' own OpenMP threads on (each Python thread
    starts its own team) and off."""
    if "cython" not in kernels.available_backends():
        pytest.skip("the cython backend is not built")
    be = kernels.get_backend("cython")
    before = kernels.get_num_threads()
    kernels.set_num_threads(num_threads)
    try:
        jobs = _kernel_jobs(np.float32, 5)[2:]
        serial = [_kernel_work(be, j) for j in jobs]
        results = _run_in_threads(lambda i: [_kernel_work(be, jobs[(i + r) % len(jobs)])
                                             for r in range(3)])
    finally:
        kernels.set_num_threads(before)
    for i, res in enumerate(results):
        for r, got in enumerate(res):
            for g, s in zip(got, serial[(i + r) % len(jobs)]):
                np.testing.assert_array_equal(g, s)


# ---------------------------------------------------------------- the GIL

def _progress_during(call, min_seconds=0.04):
    """Run ``call()`` (one kernel call) in this thread while another Python thread
    counts; return (duration of the call, counter samples taken strictly inside its
    middle 60%).  Holding the GIL for the whole call would leave no sample there."""
    stamps = []
    stop = threading.Event()
    running = threading.Event()

    def count():
        n = 0
        running.set()
        while not stop.is_set():
            n += 1
            if n % 64 == 0:
                stamps.append(time.perf_counter())

    t = threading.Thread(target=count)
    t.start()
    running.wait()
    time.sleep(0.01)
    t0 = time.perf_counter()
    call()
    t1 = time.perf_counter()
    stop.set()
    t.join()
    d = t1 - t0
    inside = [s for s in stamps if t0 + 0.2 * d < s < t1 - 0.2 * d]
    assert d >= min_seconds, (f"the call took only {d * 1e3:.1f} ms; make it bigger so "
                              f"that the check means something")
    return d, len(inside)


def _gil_cases():
    rng = np.random.default_rng(0)
    a = rng.random((1100, 1100))                                # float64 GEMM ~ 2.7 GFLOP
    b = rng.random((1100, 1100))
    x32 = rng.random((1500, 1500), dtype=np.float32)            # ~ 6.8 GFLOP
    w32 = rng.random((1500, 1500), dtype=np.float32)
    bias = rng.random(1500, dtype=np.float32)
    big = rng.normal(size=(4000, 2500)).astype(np.float32)      # 10M elements
    onehot = np.zeros_like(big)
    onehot[np.arange(big.shape[0]), 0] = 1
    g = np.empty_like(big)
    p = rng.normal(size=12_000_000).astype(np.float32)
    m, v = np.zeros_like(p), np.zeros_like(p)
    gr = rng.normal(size=p.shape).astype(np.float32)
    return {
        "gemm": lambda be: be.gemm(a, b),
        "dense_forward": lambda be: be.dense_forward(x32, w32, bias, activation="gelu"),
        "gelu": lambda be: be.gelu(big, g),
        "softmax_crossentropy": lambda be: be.softmax_crossentropy(onehot, big, g),
        "adam_update": lambda be: be.adam_update(p, gr, m, v, step=1, amsgrad=False),
    }


@pytest.mark.parametrize("kernel", list(_gil_cases()))
def test_compiled_kernels_release_the_gil(kernel):
    """A Python thread keeps running while a long kernel call runs in another."""
    if "cython" not in kernels.available_backends():
        pytest.skip("the cython backend is not built")
    be = kernels.get_backend("cython")
    call = _gil_cases()[kernel]
    before = kernels.get_num_threads()
    kernels.set_num_threads(1)       # leave a core to the counting thread
    min_seconds = 0.01 if kernel == "adam_update" else 0.04   # memory-bound: ~15 ms
    try:
        call(be)                     # warm-up (first-touch of outputs, code paths)
        for _ in range(3):           # a busy machine may not schedule the counter at
            d, inside = _progress_during(lambda: call(be), min_seconds)   # once: retry;
            if inside:               # a call holding the GIL gives 0 every time
                break
    finally:
        kernels.set_num_threads(before)
    print(f"{kernel}: {d * 1e3:.0f} ms, {inside} samples in the middle")
    assert inside > 0, (f"{kernel}: no Python bytecode ran in another thread during the "
                        f"middle of a {d * 1e3:.0f} ms call: the GIL was held")


def test_gil_check_detects_a_call_holding_the_gil():
    """The check above can fail: a pure-C NumPy loop that keeps the GIL (sorting an
    object array compares Python objects, which needs the GIL throughout) leaves no
    counter sample in its middle."""
    rng = np.random.default_rng(0)
    objs = np.array([float(f) for f in rng.random(400_000)], dtype=object)
    d, inside = _progress_during(lambda: np.sort(objs), min_seconds=0.05)
    # the interpreter may hand the GIL over at the switch interval only between
    # bytecodes; inside np.sort there are none, so at most a stray sample
    assert inside <= 1, (d, inside)


# ---------------------------------------------------------------- fit during predict

@pytest.mark.parametrize("backend", both_backends())
def test_fit_while_predicting_in_other_threads(backend):
    """fit in one thread, predict in 7 others on the same model: no crash, every
    prediction finite, shaped and typed right, and rows summing to 1 (softmax); fit's
    result is the same as without the concurrent predictions (predict touches no
    training state); after fit, predict gives the final weights' outputs."""
    x, y = _data(n=600)
    a = _inputs()[3]
    alone = _mlp(backend)
    alone.fit(x, y, epochs=3, batch_size=16, verbose=0)

    model = _mlp(backend)
    done = threading.Event()
    counts = [0] * N_THREADS

    def worker(i):
        if i == 0:
            try:
                model.fit(x, y, epochs=3, batch_size=16, verbose=0)
            finally:
                done.set()
            return None
        while True:
            for out, n in ((model.predict(a, batch_size=64, verbose=0), len(a)),
                           (model(a[:50]), 50)):
                assert out.dtype == np.float32
                assert out.shape == (n, 6)
                assert np.isfinite(out).all()
                np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
            counts[i] += 1
            if done.is_set():
                return None

    _run_in_threads(worker)
    assert min(counts[1:]) >= 1
    for w, w_alone in zip(model.get_weights(), alone.get_weights()):
        np.testing.assert_array_equal(w, w_alone)
    np.testing.assert_array_equal(model.predict(a, verbose=0), alone.predict(a, verbose=0))
