"""fit / evaluate / predict on data that is not one array: generators and iterators
(steps_per_epoch, validation_steps, steps), dl.utils.PyDataset (shuffled, in worker
threads or processes) and NumPy memmaps read batch by batch -- the same numbers as the
in-memory arrays, and the memory of a batch."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import dl
import kernels
from dl import callbacks
from dl_helpers import restore_dl_state  # noqa: F401  (autouse fixture)

BACKENDS = [b for b in ("numpy", "cython") if b in kernels.available_backends()]


def data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 5)).astype(np.float32)
    return x, rng.integers(0, 3, n), rng.uniform(0.5, 2.0, n)


def model_on(backend, seed=7):
    dl.utils.set_random_seed(seed)
    model = dl.Sequential([dl.Input((5,)), dl.layers.Dense(8, activation="relu"),
                           dl.layers.Dense(3, activation="softmax")], backend=backend)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], weighted_metrics=["accuracy"])
    return model


def batches(x, y, w=None, size=8):
    for lo in range(0, len(x), size):
        part = (x[lo:lo + size], y[lo:lo + size])
        yield part if w is None else part + (w[lo:lo + size],)


class Batches(dl.utils.PyDataset):
    def __init__(self, x, y, w=None, size=8, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.w, self.size = x, y, w, size
        self.epochs_ended = 0

    def __len__(self):
        return -(-len(self.x) // self.size)

    def __getitem__(self, i):
        s = slice(i * self.size, (i + 1) * self.size)
        return (self.x[s], self.y[s]) if self.w is None else (self.x[s], self.y[s], self.w[s])

    def on_epoch_end(self):
        self.epochs_ended += 1


def same(a, b, backend):
    if backend == "numpy":        # NumPy's BLAS: alignment may change the last bit
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    else:
        np.testing.assert_array_equal(a, b)


def assert_same_training(m1, h1, m2, h2, backend):
    for a, b in zip(m1.get_weights(), m2.get_weights()):
        same(a, b, backend)
    assert h1.history.keys() == h2.history.keys()
    for k in h1.history:
        same(h1.history[k], h2.history[k], backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("weighted", [False, True])
def test_a_generator_trains_as_the_arrays(backend, weighted):
    x, y, w = data()
    a = model_on(backend)
    ha = a.fit(x, y, sample_weight=w if weighted else None, batch_size=8, epochs=3,
               shuffle=False, verbose=0)
    b = model_on(backend)

    def endless():
        while True:
            yield from batches(x, y, w if weighted else None)
    hb = b.fit(endless(), steps_per_epoch=5, epochs=3, verbose=0)
    assert_same_training(a, ha, b, hb, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_pydataset_trains_as_the_arrays_and_ends_each_epoch(backend):
    x, y, w = data()
    a = model_on(backend)
    ha = a.fit(x, y, sample_weight=w, batch_size=8, epochs=3, shuffle=False, verbose=0,
               validation_data=(x[:10], y[:10]))
    b = model_on(backend)
    ds = Batches(x, y, w)
    hb = b.fit(ds, epochs=3, shuffle=False, verbose=0,
               validation_data=Batches(x[:10], y[:10], size=8))
    assert_same_training(a, ha, b, hb, backend)
    assert ds.epochs_ended == 3


@pytest.mark.parametrize("workers, processes", [(2, False), (3, True)])
def test_pydataset_workers_give_the_same_batches_in_order(workers, processes):
    x, y, w = data()
    runs = []
    for kwargs in ({}, dict(workers=workers, use_multiprocessing=processes,
                            max_queue_size=2)):
        model = model_on("cython")
        h = model.fit(Batches(x, y, w, **kwargs), epochs=2, shuffle=True, verbose=0)
        runs.append((model, h))
    assert_same_training(*runs[0], *runs[1], "cython")


def test_shuffled_pydataset_orders_are_seeded_and_differ_by_epoch():
    x, y, _ = data()
    runs = []

    class Recorder(Batches):
        def on_epoch_begin(self):
            self.seen = runs[-1]             # (not the first batch fit reads to build)

        def __getitem__(self, i):
            if hasattr(self, "seen"):
                self.seen.append(i)
            return super().__getitem__(i)
    for _ in range(2):
        runs.append([])
        model = model_on("numpy")
        model.fit(Recorder(x, y), epochs=2, verbose=0)
    assert runs[0] == runs[1]                 # the same seed: the same orders
    assert sorted(runs[0][:5]) == list(range(5)) and runs[0][:5] != runs[0][5:]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_memmap_trains_as_the_arrays(tmp_path, backend):
    x, y, w = data(n=37)
    xm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float64,
                                   shape=x.shape)
    xm[...] = x
    xm.flush()
    xm = np.load(tmp_path / "x.npy", mmap_mode="r")
    runs = []
    for xs in (x.astype(np.float64), xm):
        model = model_on(backend)
        h = model.fit(xs, y, sample_weight=w, batch_size=8, epochs=3, shuffle=True,
                      validation_split=0.2, verbose=0)
        runs.append((model, h))
    assert_same_training(*runs[0], *runs[1], backend)
    np.testing.assert_allclose(runs[1][0].predict(xm, verbose=0),
                               runs[1][0].predict(x, verbose=0), rtol=1e-6)
    assert runs[1][0].evaluate(xm, y, verbose=0)[0] == pytest.approx(
        runs[1][0].evaluate(x, y, verbose=0)[0], rel=1e-6)


def test_evaluate_and_predict_read_generators_with_steps():
    x, y, w = data()
    model = model_on("cython")
    model.fit(x, y, verbose=0)
    expected = model.evaluate(x[:24], y[:24], sample_weight=w[:24], batch_size=8,
                              verbose=0, return_dict=True)
    got = model.evaluate(batches(x, y, w), steps=3, verbose=0, return_dict=True)
    assert got == pytest.approx(expected, rel=1e-6)
    preds = model.predict((xb for xb, _ in batches(x, y)), verbose=0)
    np.testing.assert_allclose(preds, model.predict(x, verbose=0), rtol=1e-6)
    assert model.predict(Batches(x, y), steps=2, verbose=0).shape == (16, 3)


def test_a_generator_that_runs_out_stops_training_with_keras_warning():
    x, y, _ = data()
    model = model_on("numpy")
    with pytest.warns(UserWarning, match="Your input ran out of data"):
        h = model.fit(batches(x, y), epochs=3, verbose=0)     # 5 batches, then nothing
    assert h.epoch == [0] and model.optimizer.iterations == 5
    model = model_on("numpy")
    with pytest.warns(UserWarning, match="Your input ran out of data"):
        h = model.fit(batches(x, y), steps_per_epoch=3, epochs=3, verbose=0)
    assert h.epoch == [0, 1] and model.optimizer.iterations == 5


def test_an_endless_pydataset_needs_steps_per_epoch():
    class Endless(Batches):
        @property
        def num_batches(self):
            return None

        def __getitem__(self, i):
            return super().__getitem__(i % 5)
    x, y, _ = data()
    model = model_on("numpy")
    with pytest.raises(ValueError, match="^x: an endless PyDataset"):
        model.fit(Endless(x, y), epochs=1, verbose=0)
    h = model.fit(Endless(x, y), steps_per_epoch=7, epochs=2, verbose=0)
    assert len(h.history["loss"]) == 2 and model.optimizer.iterations == 14


def test_backup_and_restore_resumes_a_pydataset_mid_epoch(tmp_path):
    x, y, w = data()

    class Stop(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.model.optimizer.iterations == 7:
                raise KeyboardInterrupt
    straight = model_on("cython")
    expected = straight.fit(Batches(x, y, w), epochs=3, verbose=0)
    first = model_on("cython")
    with pytest.raises(KeyboardInterrupt):
        first.fit(Batches(x, y, w), epochs=3, verbose=0,
                  callbacks=[callbacks.BackupAndRestore(tmp_path / "b", save_freq=1), Stop()])
    resumed = model_on("cython", seed=99)
    h = resumed.fit(Batches(x, y, w), epochs=3, verbose=0,
                    callbacks=[callbacks.BackupAndRestore(tmp_path / "b", save_freq=1)])
    for key, values in h.history.items():
        assert values == expected.history[key][1:]
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("call, kwargs, exc, start", [
    ("fit", dict(batch_size=8), ValueError, "batch_size: expected None when x is a "),
    ("fit", dict(validation_split=0.2), ValueError, "validation_split: only supported"),
    ("fit", dict(class_weight={0: 2.0}), ValueError, "class_weight: not supported for a "
                                                      "Python generator"),
    ("fit", dict(y=np.zeros(3)), ValueError, "y: expected None when x is a generator"),
    ("fit", dict(steps_per_epoch=0), ValueError, "steps_per_epoch: expected an int >= 1"),
    ("evaluate", dict(steps=-1), ValueError, "steps: expected an int >= 1"),
])
def test_stream_arguments_are_named(call, kwargs, exc, start):
    x, y, _ = data()
    model = model_on("numpy")
    with pytest.raises(exc) as info:
        getattr(model, call)(batches(x, y), verbose=0, **kwargs)
    assert str(info.value).startswith(start), str(info.value)


def test_a_bad_batch_is_named_by_its_index():
    x, y, _ = data()
    model = model_on("numpy")

    def gen():
        yield x[:8], y[:8]
        yield x[8:16], np.full(8, 7)            # labels out of range
    with pytest.raises(ValueError, match=r"^x: batch 1: y: expected class labels in "
                                         r"\[0, 3\)"):
        model.fit(gen(), epochs=1, verbose=0)

    def nan_gen():
        bad = x[:8].copy()
        bad[3, 1] = np.nan
        yield bad, y[:8]
    with pytest.raises(ValueError, match=r"^x: batch 0: expected finite values, got NaN or "
                                         r"inf in row 3"):
        model.fit(nan_gen(), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="^x: batch 0: expected batches \\(x, y\\)"):
        model.fit((xb for xb, _ in batches(x, y)), epochs=1, verbose=0)


def test_pydataset_arguments():
    with pytest.raises(ValueError, match="^workers: expected an int >= 1"):
        Batches(np.zeros((2, 5)), np.zeros(2), workers=0)
    with pytest.raises(TypeError, match="^use_multiprocessing: expected True or False"):
        Batches(np.zeros((2, 5)), np.zeros(2), use_multiprocessing="yes")


def test_an_epoch_over_a_large_memmap_keeps_a_flat_memory(tmp_path):
    """A 192 MiB float32 memmap, shuffled, read by a fresh process (the file written
    here, so its pages are not the child's): the child's peak RSS grows by less than a
    quarter of the file during the epoch.  (Read through the mapping, the scattered
    rows of one shuffled batch would map nearly the whole file: +197 MiB.)"""
    n, d = 786432, 64
    path = tmp_path / "x.npy"
    xm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    for lo in range(0, n, 65536):
        xm[lo:lo + 65536] = np.random.default_rng(lo).standard_normal((65536, d))
    xm.flush()
    del xm
    script = textwrap.dedent(f"""
        import numpy as np, dl

        def hwm_kb():     # the process's own peak RSS (ru_maxrss carries the parent's)
            with open("/proc/self/status") as f:
                return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
        x = np.load({str(path)!r}, mmap_mode="r")
        y = np.zeros({n}, np.float32)
        model = dl.Sequential([dl.Input(({d},)), dl.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        model.fit(x[:1024], y[:1024], verbose=0)
        before = hwm_kb()
        model.fit(x, y, batch_size=4096, epochs=1, verbose=0)
        after = hwm_kb()
        print(before, after)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300, env={**os.environ})
    assert out.returncode == 0, out.stderr
    before, after = map(int, out.stdout.split())
    grown_mib = (after - before) / 1024
    assert grown_mib < 48, f"peak RSS grew by {grown_mib:.0f} MiB over a 192 MiB memmap"
