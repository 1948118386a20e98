"""Keras 3's ``keras/src/callbacks/backup_and_restore_test.py``, ported: the same
cases, run on dl.

Keras counts the forward passes with a "canary" layer; dl counts the optimizer's
steps.  Deliberate difference: a backup taken mid-epoch (``save_freq`` an int) resumes
dl at the next batch, where Keras restarts that epoch from its first batch
(docs/keras-differences.md), so after 2 interrupted steps and a resumed 5-epoch fit of
3 steps each, dl has run 15 steps in all where Keras has run 17.
"""
import os

import numpy as np
import pytest

import dl
from dl import callbacks


class InterruptingCallback(callbacks.Callback):
    """Raises after ``steps_int`` batches or ``epoch_int`` epochs (Keras's helper)."""

    def __init__(self, steps_int, epoch_int):
        super().__init__()
        self.batch_count = 0
        self.epoch_count = 0
        self.steps_int = steps_int
        self.epoch_int = epoch_int

    def on_epoch_end(self, epoch, log=None):
        self.epoch_count += 1
        if self.epoch_int is not None and self.epoch_count == self.epoch_int:
            raise RuntimeError("EpochInterruption")

    def on_batch_end(self, batch, logs=None):
        self.batch_count += 1
        if self.steps_int is not None and self.batch_count == self.steps_int:
            raise RuntimeError("StepsInterruption")


def make_model():
    model = dl.Sequential([dl.Input((3,)), dl.layers.Dense(1)])
    model.compile(loss="mse", optimizer="sgd", metrics=["mse"])
    return model


def data():
    rng = np.random.default_rng(0)
    return rng.random((10, 3)), rng.random((10, 1))


# test_save_freq_unknown_error
@pytest.mark.parametrize("save_freq", ["batch", 0.15])
def test_save_freq_unknown_error(save_freq):
    with pytest.raises(ValueError, match="Invalid value"):
        callbacks.BackupAndRestore(backup_dir="backup_dir", save_freq=save_freq)


# test_best_case_step
def test_best_case_step(tmp_path):
    backup_dir = tmp_path / "subdir"
    model = make_model()
    cbk = callbacks.BackupAndRestore(backup_dir, save_freq=1)
    x, y = data()
    with pytest.raises(RuntimeError, match="StepsInterruption"):
        model.fit(x, y, batch_size=4, epochs=2, verbose=0,
                  callbacks=[cbk, InterruptingCallback(steps_int=2, epoch_int=None)])
    assert backup_dir.exists()
    assert model.optimizer.iterations == 2
    hist = model.fit(x, y, batch_size=4, callbacks=[cbk], epochs=5, verbose=0)
    assert hist.epoch[-1] == 4 and hist.epoch[0] == 0
    assert model.optimizer.iterations == 5 * 3       # Keras: 17 (epoch 0 run again)
    assert not backup_dir.exists()


# test_best_case_epoch
def test_best_case_epoch(tmp_path):
    backup_dir = tmp_path / "subdir"
    model = make_model()
    cbk = callbacks.BackupAndRestore(backup_dir=backup_dir, save_freq="epoch")
    x, y = data()
    with pytest.raises(RuntimeError, match="EpochInterruption"):
        model.fit(x, y, batch_size=4, epochs=6, verbose=0,
                  callbacks=[cbk, InterruptingCallback(steps_int=None, epoch_int=2)])
    assert backup_dir.exists()
    assert model.optimizer.iterations == 6
    hist = model.fit(x, y, batch_size=4, callbacks=[cbk], epochs=5, verbose=0)
    assert hist.epoch == [2, 3, 4]
    assert model.optimizer.iterations == 5 * 3


# test_backup_corrupted
def test_backup_corrupted(tmp_path):
    backup_dir = tmp_path / "subdir"
    model = make_model()
    cbk = callbacks.BackupAndRestore(backup_dir=backup_dir, save_freq="epoch",
                                     double_checkpoint=True)
    x, y = data()
    with pytest.raises(RuntimeError, match="EpochInterruption"):
        model.fit(x, y, batch_size=4, epochs=6, verbose=0,
                  callbacks=[cbk, InterruptingCallback(steps_int=None, epoch_int=2)])
    latest = backup_dir / "latest.dlk"
    assert latest.exists() and (backup_dir / "latest.dlk.bkp").exists()
    latest.write_text("0")          # corrupt the latest backup
    with pytest.warns(UserWarning, match="cannot be read"):
        hist = model.fit(x, y, batch_size=4, callbacks=[cbk], epochs=5, verbose=0)
    # the previous backup is of epoch 1's end: epochs 1-4 run again
    assert hist.epoch == [1, 2, 3, 4]
    assert model.optimizer.iterations == 5 * 3


# test_model_deleted_case_epoch
def test_model_deleted_case_epoch(tmp_path):
    backup_dir = tmp_path / "subdir"
    model = make_model()
    cbk = callbacks.BackupAndRestore(backup_dir, save_freq="epoch")
    x, y = data()
    model.fit(x, y, batch_size=4, callbacks=[cbk], epochs=2, verbose=0)
    assert not os.path.exists(backup_dir)


# test_backup_dir_empty_error, test_backup_dir_none_error
@pytest.mark.parametrize("backup_dir", ["", None])
def test_backup_dir_empty_error(backup_dir):
    with pytest.raises(ValueError, match="Empty `backup_dir` argument passed"):
        callbacks.BackupAndRestore(backup_dir=backup_dir, save_freq="epoch")
