"""Faults during training lose nothing.

A training process (this file run as a script: ``python test_kill_resume.py worker
...``) fits a small model with shuffling, Dropout and Adam, and ModelCheckpoint saves
it after every epoch to one path.  The test kills it with SIGKILL, every other time at
a random moment (seeded) and in between inside a save, by construction: the worker is
told to stop in its first or second save at one of three stages (half of the file
written; all of it written, not yet fsync'ed; fsync'ed, not yet renamed), says so and
waits there to be killed, so no kill depends on timing.  After every kill it checks that

* the checkpoint on disk loads with ``dl.load_model`` and is a complete model: the
  architecture, every weight, the optimizer state, bit for bit those of an
  uninterrupted run at the same epoch;
* next to it there is nothing else but, at most, the one temporary file the killed
  save was writing, which a glob for checkpoints does not pick up and which
  ``load_model`` rejects as damaged (or, when the kill fell between its fsync and its
  rename, loads as the complete next checkpoint);

then resumes from the checkpoint (``load_model`` + ``fit(initial_epoch=...)``, the
epoch read from the optimizer's step count), and at the end compares the final
weights bit for bit with those of the uninterrupted run.
"""
import glob
import hashlib
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time

import numpy as np

EPOCHS = 60
N_SAMPLES, BATCH = 256, 32
STEPS = -(-N_SAMPLES // BATCH)
KILLS = 22
SEED = 20240607
CKPT = "ckpt.dlk"


# ======================================================================== the worker

def _digest(model):
    """A hash of every weight and the optimizer state (iterations included)."""
    h = hashlib.sha256()
    for a in model.get_weights() + list(model.optimizer.get_state()):
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _build(dl):
    from dl import layers
    dl.utils.set_random_seed(7)
    model = dl.Sequential([
        layers.Dense(512, activation="relu", input_shape=(64,)),
        layers.Dropout(0.3),
        layers.Dense(512, activation="tanh"),
        layers.Dropout(0.2),
        layers.Dense(4, activation="softmax"),
    ])
    model.compile(optimizer=dl.optimizers.Adam(learning_rate=1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


# where a save can be held until the kill: half of the file written; all of it written
# and flushed, not fsync'ed; fsync'ed, not renamed into place
STAGES = ("partial", "written", "synced")


class _HalfWriter:
    """A file whose write() writes the first half of the data, then holds."""

    def __init__(self, f, hold):
        self._f, self._hold = f, hold

    def write(self, data):
        self._f.write(data[:len(data) // 2])
        self._f.flush()
        self._hold("partial")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._f.__exit__(*exc)

    def __getattr__(self, name):
        return getattr(self._f, name)


def _hold_in_save(saving, number, stage, say):
    """Make this process's ``number``-th save stop at ``stage``, say "paused <stage>" and
    sleep until killed.  The real ``dl.saving.atomic_write`` runs; only the os calls it
    makes are watched during that one save."""
    real_write, real_fdopen = saving.atomic_write, os.fdopen
    real_fsync, real_replace = os.fsync, os.replace
    state = {"saves": 0, "armed": False}

    def hold(where):
        if state["armed"] and where == stage:
            say("paused", stage)
            time.sleep(3600)
            raise SystemExit("the worker was not killed inside its save")

    def fdopen(*a, **kw):
        f = real_fdopen(*a, **kw)
        return _HalfWriter(f, hold) if state["armed"] and stage == "partial" else f

    def fsync(fd):
        hold("written")
        return real_fsync(fd)

    def replace(src, dst):
        hold("synced")
        return real_replace(src, dst)

    def atomic_write(path, data):
        state["saves"] += 1
        state["armed"] = state["saves"] == number
        try:
            return real_write(path, data)
        finally:
            state["armed"] = False

    saving.atomic_write = atomic_write
    os.fdopen, os.fsync, os.replace = fdopen, fsync, replace


def _worker(folder, mode, hold=None):
    """Train to EPOCHS, checkpointing to folder/CKPT every epoch.  ``mode``: "fresh"
    (the uninterrupted reference run, which also prints each epoch's digest) or
    "resume" (from the checkpoint when there is one).  ``hold``: "<number>:<stage>" to
    stop inside that save (see _hold_in_save)."""
    import dl

    rng = np.random.default_rng(0)
    x = rng.normal(size=(N_SAMPLES, 64)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + 2 * (x[:, 1] > 0).astype(np.int64)
    path = os.path.join(folder, CKPT)
    say = lambda *a: print(*a, flush=True)
    if hold is not None:
        number, stage = hold.split(":")
        _hold_in_save(dl.saving, int(number), stage, say)
    initial = 0
    if mode == "resume" and os.path.exists(path):
        model = dl.load_model(path)
        it = model.optimizer.iterations
        assert it % STEPS == 0, it
        initial = it // STEPS
    else:
        model = _build(dl)
    say("ready", initial)
    before = dl.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: say("saving", e + 1))
    after = dl.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: say("saved", e + 1))
    cbs = [before, dl.callbacks.ModelCheckpoint(path), after]
    if mode == "fresh":
        cbs.append(dl.callbacks.LambdaCallback(
            on_epoch_end=lambda e, logs: say("digest", e + 1, _digest(model))))
    model.fit(x, y, epochs=EPOCHS, initial_epoch=initial, batch_size=BATCH, shuffle=True,
              callbacks=cbs, verbose=0)
    say("done", _digest(model))


if __name__ == "__main__" and len(sys.argv) in (4, 5) and sys.argv[1] == "worker":
    _worker(*sys.argv[2:])
    sys.exit(0)


# ========================================================================= the test

import dl  # noqa: E402


class _Proc:
    """A worker process whose stdout lines arrive on a queue."""

    def __init__(self, folder, mode, hold=None):
        env = dict(os.environ)
        src = os.path.dirname(os.path.dirname(os.path.abspath(dl.__file__)))
        env["PYTHONPATH"] = os.pathsep.join([src] + [p for p in env.get("PYTHONPATH", "")
                                                     .split(os.pathsep) if p])
        env["PYTHONUNBUFFERED"] = "1"
        self.p = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "worker", str(folder), mode]
            + ([hold] if hold else []),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.p.stdout:
            self.lines.put(line.split())
        self.lines.put(None)

    def wait_for(self, word, timeout=30.0):
        """Lines until one starting with ``word``; None when the process ended."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                item = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.p.kill()
                raise AssertionError(f"worker: no {word!r} within {timeout} s; "
                                     f"seen {self.seen[-5:]}") from None
            if item is None:
                return None
            self.seen.append(item)
            if item and item[0] == word:
                return item

    def drain(self):
        """Every line the process wrote (after it ended)."""
        while True:
            item = self.lines.get(timeout=30)
            if item is None:
                return self.seen
            self.seen.append(item)

    def kill(self):
        os.kill(self.p.pid, signal.SIGKILL)
        self.p.wait(timeout=30)
        assert self.p.returncode == -signal.SIGKILL

    def finish(self, timeout=120):
        """Wait for the end of a run that is not killed; every line it wrote."""
        while self.wait_for("done", timeout) is not None:
            pass
        self.p.wait(timeout=30)
        err = self.p.stderr.read()
        assert self.p.returncode == 0, f"worker failed ({self.p.returncode}): {err}"
        return self.seen


def _tmp_files(folder):
    return {n for n in os.listdir(folder) if n != CKPT}


def _check_checkpoint(folder, reference, last_epoch):
    """The checkpoint is complete and equals the reference run at its epoch; returns
    its epoch (0 when there is none yet)."""
    path = os.path.join(folder, CKPT)
    if not os.path.exists(path):
        assert last_epoch == 0, "the checkpoint vanished"
        return 0
    model = dl.load_model(path)
    assert model.compiled and model.built
    assert [type(layer).__name__ for layer in model.layers] == [
        "Dense", "Dropout", "Dense", "Dropout", "Dense"]
    assert [w.shape for w in model.get_weights()] == [(64, 512), (512,), (512, 512),
                                                      (512,), (512, 4), (4,)]
    it = model.optimizer.iterations
    assert it > 0 and it % STEPS == 0, it
    epoch = it // STEPS
    assert epoch >= last_epoch, (epoch, last_epoch)
    assert _digest(model) == reference[epoch], f"checkpoint of epoch {epoch} differs"
    return epoch


def test_sigkill_during_training_loses_nothing(tmp_path):
    rng = random.Random(SEED)
    ref_dir, run_dir = tmp_path / "reference", tmp_path / "killed"
    ref_dir.mkdir()
    run_dir.mkdir()

    # The uninterrupted run, alongside the killed ones (its digests are read later).
    ref_proc = _Proc(ref_dir, "fresh")
    reference = {}

    def read_reference():
        if not reference:
            reference[0] = None
            for item in ref_proc.finish():
                if item[0] == "digest":
                    reference[int(item[1])] = item[2]
            assert len(reference) == EPOCHS + 1
        return reference

    stats = {"kills": 0, "mid_save": 0, "tmp_left": 0, "tmp_loadable": 0}
    held = []             # the stage of each kill made inside a save
    last_epoch = 0
    epochs_seen = []
    epoch_time = None
    while stats["kills"] < KILLS:
        before = _tmp_files(run_dir)
        # odd kills: inside the first or second save of the run, at a stage in turn
        hold = None
        if epoch_time is not None and stats["kills"] % 2:
            hold = f"{rng.randint(1, 2)}:{STAGES[len(held) % len(STAGES)]}"
        proc = _Proc(run_dir, "resume", hold)
        ready = proc.wait_for("ready")
        assert ready is not None, proc.p.stderr.read()
        assert int(ready[1]) == last_epoch          # resumed from the checkpoint's epoch
        if epoch_time is None:    # first: measure how long an epoch takes
            t_saves = []
            for _ in range(4):
                proc.wait_for("saving")
                t_saves.append(time.monotonic())
            epoch_time = sorted(np.diff(t_saves))[1]
        elif hold is not None:    # the worker holds inside the save until killed
            paused = proc.wait_for("paused")
            assert paused is not None, f"the worker ended instead: {proc.p.stderr.read()}"
            assert paused[1] == hold.split(":")[1]
            held.append(paused[1])
        else:                     # at any moment after start-up, within ~2 epochs (so
            time.sleep(rng.uniform(0.0, 2.5 * epoch_time))   # 60 epochs outlast 22 kills)
        if proc.p.poll() is not None:               # finished before the kill: rare
            break
        proc.kill()
        stats["kills"] += 1
        markers = [s[0] for s in proc.drain() if s[0] in ("saving", "saved", "paused")]
        if hold is not None:
            assert markers[-2:] == ["saving", "paused"], markers
            stats["mid_save"] += 1

        new_tmp = _tmp_files(run_dir) - before
        assert len(new_tmp) <= 1, f"a kill left several files: {sorted(new_tmp)}"
        for name in new_tmp:                         # the save the kill interrupted
            stats["tmp_left"] += 1
            assert name.startswith(".tmp-") and name.endswith(".dlk"), name
            # not mistaken for a checkpoint: a glob for checkpoints skips it
            assert glob.glob(str(run_dir / "*.dlk")) == [str(run_dir / CKPT)]
            try:
                partial = dl.load_model(run_dir / name)
            except ValueError as exc:                # written halfway: rejected
                assert "filepath" in str(exc)
            else:                                    # complete (killed before rename)
                stats["tmp_loadable"] += 1
                assert _digest(partial) == read_reference()[
                    partial.optimizer.iterations // STEPS]
            os.unlink(run_dir / name)
        last_epoch = _check_checkpoint(run_dir, read_reference(), last_epoch)
        epochs_seen.append(last_epoch)

    # The last resume runs to the end undisturbed.
    proc = _Proc(run_dir, "resume")
    out = proc.finish()
    assert _tmp_files(run_dir) == set()              # a finished run leaves nothing
    assert out[0][0] == "ready" and int(out[0][1]) == last_epoch and out[-1][0] == "done"
    final = dl.load_model(run_dir / CKPT)
    straight = dl.load_model(ref_dir / CKPT)
    assert final.optimizer.iterations == straight.optimizer.iterations == EPOCHS * STEPS
    for a, b in zip(final.get_weights(), straight.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(final.optimizer.get_state(), straight.optimizer.get_state()):
        np.testing.assert_array_equal(a, b)
    assert out[-1][1] == reference[EPOCHS] == _digest(final)

    print(f"kills={stats['kills']} (inside a save: {stats['mid_save']}, at {held}; "
          f"temporary files left: {stats['tmp_left']}, complete ones among them: "
          f"{stats['tmp_loadable']}); checkpoint epoch after each kill: {epochs_seen}; "
          f"an epoch takes ~{epoch_time * 1e3:.0f} ms")
    assert stats["kills"] == KILLS
    # every other kill landed inside a save, at each stage in turn: a half-written
    # temporary file (rejected), a complete one not yet renamed (loadable)
    assert stats["mid_save"] == len(held) == KILLS // 2
    assert set(held) == set(STAGES)
    assert stats["tmp_left"] >= stats["mid_save"]
    assert stats["tmp_loadable"] >= sum(stage != "partial" for stage in held)
    assert 0 < last_epoch < EPOCHS         # the kills happened during training
