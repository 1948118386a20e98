"""The program tests/dl/test_distribution.py runs on several processes:

    mpiexec -n N python -m dl.distribution [--reduction R] [--timeout S] \\
        tests/dl/mpi_worker.py SCENARIO OUT_DIR [DTYPE] [BACKEND]

Each rank writes what it computed to ``OUT_DIR/<scenario>-rank<r>.npz`` (weights,
history, evaluate, predict...) for the test to compare with one process and with
``DataParallel(simulate=N)``, which the test computes itself from :func:`train`.
Failure scenarios (raise, kill, stall) end the job; the test reads its exit status
and output.  Not a test module (no ``test_`` prefix): pytest does not collect it.
"""
import os
import signal
import sys
import time

import numpy as np

import dl

N_SAMPLES, N_FEATURES, N_CLASSES = 203, 6, 3
BATCH, EPOCHS = 20, 10          # 11 steps an epoch (the last one of 3 rows): 110 steps


def data(dtype="float64"):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N_SAMPLES, N_FEATURES)).astype(dtype)
    y = np.argmax(x @ rng.standard_normal((N_FEATURES, N_CLASSES)), axis=1)
    return x, y


def build(dtype="float64", backend=None, batch_norm=False):
    """A small classifier with every kind of per-step state data parallelism must get
    right: Dropout masks, (optionally) BatchNormalization's moving statistics, Adam's
    moments, and a metric."""
    dl.config.set_floatx(dtype)
    dl.utils.set_random_seed(7)
    layers = [dl.layers.Dense(16, activation="relu", input_shape=(N_FEATURES,)),
              dl.layers.Dropout(0.25)]
    if batch_norm:
        layers.append(dl.layers.BatchNormalization())
    layers.append(dl.layers.Dense(N_CLASSES, activation="softmax"))
    model = dl.Sequential(layers, backend=backend)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


class StopAt(dl.callbacks.Callback):
    """Sets ``stop_training`` after batch ``batch`` of epoch ``epoch`` (on the ranks
    listed, or every rank)."""

    def __init__(self, epoch, batch, ranks=None):
        super().__init__()
        self.at, self.ranks = (epoch, batch), ranks

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at and (
                self.ranks is None or dl.distribution.process_rank() in self.ranks):
            self.model.stop_training = True


def train(dtype="float64", backend=None, batch_norm=False, callbacks=(), epochs=EPOCHS):
    """The run every equality check compares: ``(model, history)``."""
    x, y = data(dtype)
    model = build(dtype, backend, batch_norm)
    history = model.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0,
                        callbacks=list(callbacks))
    return model, history


def functional_run():
    """Two inputs, two outputs (a loss each, a metric on one), a validation split:
    the per-output loss sums and the validation logs are added over the ranks too."""
    dl.config.set_floatx("float64")
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((101, 4)), rng.standard_normal((101, 3))
    t1, t2 = a.sum(1, keepdims=True), (b @ rng.standard_normal((3, 2))).argmax(1)
    dl.utils.set_random_seed(3)
    i1, i2 = dl.Input(shape=(4,)), dl.Input(shape=(3,))
    h = dl.layers.Concatenate()([dl.layers.Dense(8, activation="relu")(i1),
                                 dl.layers.Dense(8, activation="tanh")(i2)])
    h = dl.layers.Dropout(0.2)(h)
    model = dl.Model([i1, i2], [dl.layers.Dense(1, name="reg")(h),
                                dl.layers.Dense(2, activation="softmax", name="cls")(h)])
    model.compile(optimizer="adam", loss=["mse", "sparse_categorical_crossentropy"],
                  metrics=[[], ["accuracy"]])
    history = model.fit([a, b], [t1, t2], batch_size=16, epochs=4, verbose=0,
                        validation_split=0.2)
    out = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    out.update({"h_" + k: np.array(v) for k, v in history.history.items()})
    out["evaluate"] = np.array(model.evaluate([a, b], [t1, t2], verbose=0))
    return out


def nan_run(dtype="float64", backend=None):
    """TerminateOnNaN: a huge row overflows the second step's loss (on one rank's
    slice only): every rank keeps the last finite weights and stops there."""
    x, y = data(dtype)
    x[150] = np.finfo(dtype).max
    model = build(dtype, backend)
    history = model.fit(x, y, batch_size=BATCH, epochs=3, verbose=0,
                        callbacks=[dl.callbacks.TerminateOnNaN()])
    return model, history


def results(model, history, x, y):
    """What a run is compared by."""
    out = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    out["iterations"] = np.array(model.optimizer.iterations)
    for key, values in history.history.items():
        out["h_" + key] = np.array(values)
    out["evaluate"] = np.array(model.evaluate(x, y, batch_size=32, verbose=0))
    out["predict"] = model.predict(x, batch_size=32, verbose=0)
    # one global batch more (53 rows: uneven slices), its loss and accuracy, then the
    # same batch evaluated
    out["train_on_batch"] = np.array(model.train_on_batch(x[:53], y[:53]))
    out["test_on_batch"] = np.array(model.test_on_batch(x[:53], y[:53]))
    out["w0_after_batch"] = model.get_weights()[0]
    return out


def _save(out_dir, name, arrays):
    np.savez(os.path.join(out_dir, f"{name}-rank{dl.distribution.process_rank()}.npz"),
             **arrays)


def main(scenario, out_dir, dtype="float64", backend="cython"):
    rank = dl.distribution.process_rank()
    x, y = data(dtype)
    if scenario == "train":
        model, history = train(dtype, backend, batch_norm=False)
        out = results(model, history, x, y)
        if dl.distribution.distribution().reduction == "sum":
            again, _ = train(dtype, backend)        # run to run: the same bits
            out["again"] = np.concatenate([w.ravel() for w in again.get_weights()])
        _save(out_dir, f"train-{dtype}-{backend}", out)
        model, history = train(dtype, backend, batch_norm=True, epochs=3)
        _save(out_dir, f"bn-{dtype}-{backend}", results(model, history, x, y))
    elif scenario == "cuda":
        # the simulator runs a thread per CUDA thread: a few steps on few rows
        model = build(dtype, "cuda")
        history = model.fit(x[:40], y[:40], batch_size=BATCH, epochs=1, verbose=0)
        out = results(model, history, x[:40], y[:40])
        out["gpu"] = np.array(dl.distribution.distribution().gpu)
        _save(out_dir, "cuda", out)
    elif scenario == "stop":
        # a callback on the last rank alone asks to stop after batch 4 of epoch 1
        last = dl.distribution.distribution().num_processes - 1
        model, history = train(dtype, backend, callbacks=[StopAt(1, 4, ranks=[last])])
        _save(out_dir, "stop", results(model, history, x, y))
    elif scenario == "functional":
        _save(out_dir, "functional", functional_run())
    elif scenario == "nan":
        model, history = nan_run(dtype, backend)
        x, y = data(dtype)
        _save(out_dir, "nan", results(model, history, x, y))
    elif scenario == "badrow":
        if rank == 1:
            x = x.copy()
            x[7, 2] = np.nan
        model = build(dtype, backend)
        try:
            model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
            message = "no error"
        except ValueError as exc:
            message = str(exc)
        import kernels
        dist = dl.distribution.distribution()
        _save(out_dir, "badrow", {"message": np.array(message),
                                  "threads": np.array([dist.num_threads or 0,
                                                       kernels.get_num_threads()])})
    elif scenario == "files":
        folder = os.path.join(out_dir, "files")
        os.makedirs(folder, exist_ok=True)
        written = []
        import builtins
        real_replace, real_open = os.replace, builtins.open
        if rank != 0:        # record every file this rank would write or replace

            def replace(src, dst, *a, **k):
                written.append(str(dst))
                return real_replace(src, dst, *a, **k)

            def opener(path, mode="r", *a, **k):
                if any(c in mode for c in "wax+"):
                    written.append(str(path))
                return real_open(path, mode, *a, **k)
            os.replace, builtins.open = replace, opener
        model = build(dtype, backend)
        model.fit(x, y, batch_size=BATCH, epochs=3, verbose=0, callbacks=[
            dl.callbacks.ModelCheckpoint(os.path.join(folder, "ckpt-{epoch}.dlk"),
                                         save_best_only=False),
            dl.callbacks.CSVLogger(os.path.join(folder, "log.csv")),
            dl.callbacks.BackupAndRestore(os.path.join(folder, "backup"), save_freq=4,
                                          delete_checkpoint=False)])
        model.save(os.path.join(folder, "final.dlk"))
        os.replace, builtins.open = real_replace, real_open
        _save(out_dir, "files", {"written": np.array(written, dtype=str)})
    elif scenario in ("raise", "kill", "stall"):
        def misbehave(batch, logs):
            if rank == 1 and batch == 3:
                if scenario == "raise":
                    raise ZeroDivisionError("rank 1 fails on purpose")
                if scenario == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                time.sleep(60)      # stall: the others' timeout ends the job
        model = build(dtype, backend)
        model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0,
                  callbacks=[dl.callbacks.LambdaCallback(on_train_batch_end=misbehave)])
        print("finished", flush=True)     # never reached: the job is aborted
    elif scenario in ("resume-first", "resume-second"):
        backup = dl.callbacks.BackupAndRestore(os.path.join(out_dir, "resume-backup"),
                                               save_freq=5)
        callbacks = [backup]
        if scenario == "resume-first":
            def interrupt(batch, logs):
                if interrupt.epoch == 2 and batch == 7:
                    raise KeyboardInterrupt("interrupted on purpose")

            def note_epoch(epoch, logs):
                interrupt.epoch = epoch
            interrupt.epoch = 0
            callbacks.append(dl.callbacks.LambdaCallback(on_epoch_begin=note_epoch,
                                                         on_train_batch_end=interrupt))
        model, history = train(dtype, backend, callbacks=callbacks)
        _save(out_dir, scenario, results(model, history, x, y))
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
