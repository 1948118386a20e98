"""Learning-rate schedules in training, the optimizer's settable learning rate,
ReduceLROnPlateau / LearningRateScheduler edge cases, and BackupAndRestore resuming a
fit bit for bit (the Keras-ported cases are in tests/keras_cases/)."""
import math

import numpy as np
import pytest

import dl
import kernels
from dl import _fast, callbacks, optimizers
from dl.optimizers import schedules
from dl_helpers import restore_dl_state  # noqa: F401  (autouse fixture)

BACKENDS = [b for b in ("numpy", "cython", "cuda") if b in kernels.available_backends()]

SCHEDULES = [
    lambda: schedules.ExponentialDecay(0.05, 3, 0.5),
    lambda: schedules.ExponentialDecay(0.05, 3, 0.5, staircase=True),
    lambda: schedules.PiecewiseConstantDecay([4, 9], [0.05, 0.02, 0.005]),
    lambda: schedules.PolynomialDecay(0.05, 10, 0.001, power=2.0, cycle=True),
    lambda: schedules.InverseTimeDecay(0.05, 2, 1.5, staircase=True),
    lambda: schedules.CosineDecay(0.0, 8, alpha=0.1, warmup_target=0.05, warmup_steps=4),
    lambda: schedules.CosineDecayRestarts(0.05, 3, t_mul=1.5, m_mul=0.8, alpha=0.05),
]
SCHEDULE_IDS = ["exponential", "staircase", "piecewise", "polynomial", "inverse_time",
                "cosine_warmup", "restarts"]


def data(n=29, n_in=4, n_out=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, n_in)).astype(np.float32)
    return x, rng.integers(0, n_out, n)


def model_on(backend, dropout=True, seed=5):
    dl.utils.set_random_seed(seed)
    layers = [dl.Input((4,)), dl.layers.Dense(6, activation="relu")]
    if dropout:
        layers.append(dl.layers.Dropout(0.25))
    layers.append(dl.layers.Dense(3, activation="softmax"))
    return dl.Sequential(layers, backend=backend)


# ------------------------------------------------------------------ schedules in fit
@pytest.mark.parametrize("make", SCHEDULES, ids=SCHEDULE_IDS)
def test_each_step_uses_the_schedule_at_the_steps_applied(make):
    """SGD without momentum moves the bias of a linear model by lr * gradient: the
    rates the steps used, read back from the weights, are schedule(0), schedule(1)..."""
    schedule = make()
    dl.config.set_floatx("float64")
    x = np.zeros((4, 1))
    y = np.ones((4, 1))
    model = dl.Sequential([dl.Input((1,)), dl.layers.Dense(1, kernel_initializer="zeros")],
                          backend="numpy")
    model.compile(optimizer=optimizers.SGD(schedule), loss="mae")   # dL/db = -1
    for step in range(12):
        before = model.get_weights()[1][0]
        assert model.optimizer.learning_rate == schedule(step)
        model.train_on_batch(x, y)
        assert model.get_weights()[1][0] - before == pytest.approx(schedule(step), rel=1e-12)


@pytest.mark.skipif("cython" not in kernels.available_backends(), reason="no cython")
@pytest.mark.parametrize("make", SCHEDULES + [lambda: (lambda: 0.01)],
                         ids=SCHEDULE_IDS + ["function"])
def test_a_schedule_keeps_the_validated_once_steps_and_their_bits(make, monkeypatch):
    """With a schedule, fit's plans are built once per batch shape (the rate is read
    every step, not baked in) and give the public kernels' bits."""
    builds = []
    original = _fast.FastStep.build.__func__

    def counted(cls, *args):
        builds.append(args[-1])
        return original(cls, *args)
    monkeypatch.setattr(_fast.FastStep, "build", classmethod(counted))
    x, y = data()
    runs = []
    for unchecked in (True, False):
        model = model_on("cython", dropout=False)
        model.compile(optimizer=optimizers.Adam(make(), weight_decay=0.01),
                      loss="sparse_categorical_crossentropy")
        cy = kernels.get_backend("cython")
        with monkeypatch.context() as m:
            if not unchecked:
                m.setattr(cy, "unchecked", None)
            builds.clear()
            h = model.fit(x, y, batch_size=8, epochs=4, verbose=0)
            if unchecked:
                assert builds == [8, 5]
        runs.append((model.get_weights(), model.optimizer.get_state(), h.history))
    for a, b in zip(runs[0][0] + runs[0][1], runs[1][0] + runs[1][1]):
        np.testing.assert_array_equal(a, b)
    assert runs[0][2] == runs[1][2]


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "numpy"])
def test_a_schedule_trains_alike_on_every_backend(backend):
    x, y = data(n=12)
    histories = []
    for be in ("numpy", backend):
        model = model_on(be)
        model.compile(optimizer=optimizers.RMSprop(schedules.CosineDecay(0.02, 10)),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        histories.append(model.fit(x, y, batch_size=8, epochs=2, verbose=0).history)
    np.testing.assert_allclose(histories[0]["loss"], histories[1]["loss"], rtol=1e-5)


# --------------------------------------------------------- the optimizer's rate
def test_learning_rate_is_settable_unless_a_schedule():
    opt = optimizers.SGD(0.1)
    opt.learning_rate = 0.05
    assert opt.learning_rate == 0.05 and opt.get_config()["learning_rate"] == 0.05
    opt.learning_rate = schedules.ExponentialDecay(0.1, 1, 0.5)    # Keras allows this
    assert opt.learning_rate == 0.1
    opt.iterations = 2
    assert opt.learning_rate == 0.025
    with pytest.raises(TypeError, match="created with a `LearningRateSchedule`"):
        opt.learning_rate = 0.3
    with pytest.raises(ValueError, match="^learning_rate: expected a finite number >= 0"):
        optimizers.SGD(0.1).learning_rate = -1.0
    with pytest.raises(TypeError, match="^learning_rate: expected a number"):
        optimizers.SGD(0.1).learning_rate = "fast"


@pytest.mark.parametrize("bad", [-0.5, math.nan, math.inf, "0.1", None])
def test_a_schedule_returning_a_bad_rate_is_named(bad):
    class Bad(schedules.LearningRateSchedule):
        def __call__(self, step):
            return 0.1 if step < 2 else bad
    model = dl.Sequential([dl.Input((2,)), dl.layers.Dense(1)], backend="numpy")
    model.compile(optimizer=optimizers.SGD(Bad()), loss="mse")
    x = np.ones((4, 2), np.float32)
    with pytest.raises(ValueError, match=r"^learning_rate: expected the schedule .* to "
                                         r"return a finite number >= 0, got .* at step 2"):
        model.fit(x, x[:, :1], batch_size=2, epochs=2, verbose=0)
    assert model.optimizer.iterations == 2


@pytest.mark.skipif("cython" not in kernels.available_backends(), reason="no cython")
def test_an_optimizer_with_a_schedule_saves_and_resumes(tmp_path):
    x, y = data()
    model = model_on("cython", dropout=False)
    model.compile(optimizer=optimizers.Adam(schedules.PolynomialDecay(0.05, 6, 0.001)),
                  loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "m.dlk")
    again = dl.load_model(tmp_path / "m.dlk")
    assert again.optimizer.get_config() == model.optimizer.get_config()
    assert again.optimizer.learning_rate == model.optimizer.learning_rate
    for m in (model, again):
        m.fit(x, y, batch_size=8, epochs=2, initial_epoch=1, verbose=0)
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    cfg = optimizers.serialize(model.optimizer)
    assert cfg["config"]["learning_rate"]["class_name"] == "PolynomialDecay"
    assert isinstance(optimizers.get(cfg).learning_rate, float)


def test_a_function_rate_trains_but_cannot_be_saved(tmp_path):
    model = dl.Sequential([dl.Input((2,)), dl.layers.Dense(1)], backend="numpy")
    model.compile(optimizer=optimizers.SGD(lambda: 0.01), loss="mse")
    x = np.ones((4, 2), np.float32)
    model.fit(x, x[:, :1], verbose=0)
    with pytest.raises(TypeError, match="^learning_rate: a function .* cannot be saved"):
        model.save(tmp_path / "m.dlk")


@pytest.mark.parametrize("make,exc,start", [
    (lambda: schedules.ExponentialDecay(0.1, 0, 0.5), ValueError, "decay_steps: expected"),
    (lambda: schedules.ExponentialDecay(0.1, 10, "0.5"), TypeError, "decay_rate: expected"),
    (lambda: schedules.ExponentialDecay(-0.1, 10, 0.5), ValueError,
     "initial_learning_rate: expected"),
    (lambda: schedules.PolynomialDecay(0.1, -3), ValueError, "decay_steps: expected"),
    (lambda: schedules.PolynomialDecay(0.1, 3, cycle="yes"), TypeError, "cycle"),
    (lambda: schedules.InverseTimeDecay(0.1, math.inf, 1.0), ValueError, "decay_steps"),
    (lambda: schedules.CosineDecay(0.1, 10, warmup_steps=-1), ValueError, "warmup_steps"),
    (lambda: schedules.CosineDecayRestarts(0.1, 10, t_mul=0), ValueError, "t_mul"),
    (lambda: schedules.PiecewiseConstantDecay([1, 2], [0.1]), ValueError,
     "The length of boundaries"),
    (lambda: schedules.PiecewiseConstantDecay([2, 1], [0.1, 0.2, 0.3]), ValueError,
     "boundaries: expected strictly increasing"),
    (lambda: schedules.PiecewiseConstantDecay(5, [0.1]), TypeError, "boundaries, values"),
    (lambda: schedules.ExponentialDecay(0.1, 1, 0.5)(None), TypeError, "step: expected"),
    (lambda: schedules.CosineDecayRestarts(0.1, 10, t_mul=0.5)(100), ValueError,
     "step: 100 is past the end"),
    (lambda: schedules.deserialize({"class_name": "Nope", "config": {}}), ValueError,
     "learning rate schedule: unknown class_name"),
    (lambda: schedules.LearningRateSchedule()(1), NotImplementedError,
     "Learning rate schedule 'LearningRateSchedule' must override"),
])
def test_schedule_bad_arguments_are_named(make, exc, start):
    with pytest.raises(exc) as info:
        make()
    assert str(info.value).startswith(start), str(info.value)


# -------------------------------------------------------------- the LR callbacks
def test_reduce_lr_on_plateau_arguments():
    with pytest.raises(ValueError, match="does not support a factor >= 1.0"):
        callbacks.ReduceLROnPlateau(factor=1.0)
    with pytest.raises(ValueError, match="^factor: expected a number in"):
        callbacks.ReduceLROnPlateau(factor=-0.5)
    with pytest.raises(ValueError, match="^min_lr: expected"):
        callbacks.ReduceLROnPlateau(min_lr=-1)
    with pytest.raises(TypeError, match="unexpected argument 'patient'"):
        callbacks.ReduceLROnPlateau(patient=3)
    with pytest.warns(UserWarning, match="`epsilon` argument is deprecated"):
        assert callbacks.ReduceLROnPlateau(epsilon=0.5).min_delta == 0.5


def test_reduce_lr_on_plateau_logs_the_rate_and_history_records_it():
    x, y = data()
    model = model_on("numpy")
    model.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    # monitor the training loss, which never improves by 10: reduced every 2 epochs
    cb = callbacks.ReduceLROnPlateau(monitor="loss", patience=2, factor=0.5, min_delta=10)
    h = model.fit(x, y, epochs=6, verbose=0, callbacks=[cb])
    assert h.history["learning_rate"] == [0.1, 0.1, 0.1, 0.05, 0.05, 0.025]
    assert model.optimizer.learning_rate == 0.025


def test_learning_rate_scheduler_rejects_a_non_float():
    x, y = data()
    model = model_on("numpy")
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="should be a float. Got: 1"):
        model.fit(x, y, verbose=0, callbacks=[callbacks.LearningRateScheduler(
            lambda epoch: 1)])
    with pytest.raises(TypeError, match="^schedule: expected a function"):
        callbacks.LearningRateScheduler(0.1)


def test_the_progress_bar_shows_what_callbacks_add(capsys):
    x, y = data()
    model = model_on("numpy")
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(x, y, verbose=2, callbacks=[callbacks.LearningRateScheduler(
        lambda epoch, lr: 0.125)])
    assert "learning_rate: 0.1250" in capsys.readouterr().out


def test_keras2_batch_hook_names_are_called():
    seen = []

    class Old(callbacks.Callback):
        def on_batch_begin(self, batch, logs=None):
            seen.append(("begin", batch))

        def on_batch_end(self, batch, logs=None):
            seen.append(("end", batch, sorted(logs)))
    x, y = data(n=10)
    model = model_on("numpy")
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=5, verbose=0, callbacks=[Old()])
    assert seen == [("begin", 0), ("end", 0, ["loss"]), ("begin", 1), ("end", 1, ["loss"])]


# ------------------------------------------------------------ BackupAndRestore
class Interrupt(callbacks.Callback):
    def __init__(self, after_batches):
        super().__init__()
        self.left = after_batches

    def on_train_batch_end(self, batch, logs=None):
        self.left -= 1
        if self.left == 0:
            raise KeyboardInterrupt


def _fit(model, x, y, xv, yv, cbs):
    return model.fit(x, y, batch_size=8, epochs=3, verbose=0, validation_data=(xv, yv),
                     callbacks=cbs)


CPU_CASES = [("epoch", 6), (1, 6), (2, 7), (3, 4), (4, 8)]
RESUME_CASES = [(b, *case) for b in BACKENDS if b != "cuda" for case in CPU_CASES]
if "cuda" in BACKENDS:      # the simulator is slow: one mid-epoch case, 2 steps an epoch
    RESUME_CASES.append(("cuda", 1, 3))


@pytest.mark.parametrize("backend,save_freq,interrupt_after", RESUME_CASES)
def test_an_interrupted_fit_resumes_bit_for_bit(tmp_path, backend, save_freq,
                                                interrupt_after):
    """Interrupted after some batches, resumed by a fresh model object (a new
    process: another seed until the backup restores it): the same weights, optimizer
    state and epoch logs, bit for bit, as the fit that ran through.  Shuffled, with
    dropout, Adam under a schedule, a metric and validation."""
    n = 12 if backend == "cuda" else 29
    steps = -(-n // 8)
    x, y = data(n=n)
    xv, yv = data(n=5, seed=1)

    def fresh(seed):
        model = model_on(backend, seed=seed)
        model.compile(optimizer=optimizers.Adam(schedules.ExponentialDecay(0.02, 4, 0.7)),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model
    straight = fresh(seed=5)
    expected = _fit(straight, x, y, xv, yv, []).history

    backup = tmp_path / "backup"
    first = fresh(seed=5)
    cbk = callbacks.BackupAndRestore(backup, save_freq=save_freq)
    with pytest.raises(KeyboardInterrupt):
        _fit(first, x, y, xv, yv, [cbk, Interrupt(interrupt_after)])
    assert (backup / "latest.dlk").exists()
    resumed = fresh(seed=99)
    h = _fit(resumed, x, y, xv, yv, [callbacks.BackupAndRestore(backup,
                                                               save_freq=save_freq)])
    done = len(expected["loss"]) - len(h.history["loss"])    # epochs logged before
    if save_freq == "epoch":
        assert done == interrupt_after // steps
    else:     # the last backup's epoch runs (its remaining batches) and is logged again
        assert done == (interrupt_after - interrupt_after % save_freq - 1) // steps
    # the numpy backend's products are NumPy's BLAS's, whose last bits may depend on
    # the arrays' alignment in memory: bit for bit on the compiled backends only
    same = (np.testing.assert_array_equal if backend != "numpy" else
            lambda a, b, err_msg="": np.testing.assert_allclose(a, b, rtol=1e-5,
                                                                 atol=1e-7, err_msg=err_msg))
    assert sorted(h.history) == sorted(expected)
    for key, values in h.history.items():
        same(values, expected[key][done:], err_msg=key)
    for a, b in zip(resumed.get_weights() + resumed.optimizer.get_state(),
                    straight.get_weights() + straight.optimizer.get_state()):
        same(a, b)
    assert not backup.exists()


def test_backup_keeps_a_reduced_learning_rate_and_leaves_other_files(tmp_path):
    x, y = data()
    backup = tmp_path / "b"
    backup.mkdir()
    (backup / "notes.txt").write_text("mine")
    model = model_on("numpy")
    model.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    cbs = [callbacks.LearningRateScheduler(lambda e, lr: 0.1 / (e + 1)),
           callbacks.BackupAndRestore(backup, delete_checkpoint=False)]
    model.fit(x, y, epochs=3, verbose=0, callbacks=cbs)
    again = model_on("numpy")
    again.compile(optimizer=optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    again.fit(x, y, epochs=3, verbose=0, callbacks=[callbacks.BackupAndRestore(backup)])
    assert again.optimizer.learning_rate == pytest.approx(0.1 / 3)
    assert sorted(p.name for p in backup.iterdir()) == ["notes.txt"]


def test_a_backup_of_another_model_is_named(tmp_path):
    x, y = data()
    model = model_on("numpy")
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0,
              callbacks=[callbacks.BackupAndRestore(tmp_path, delete_checkpoint=False)])
    other = dl.Sequential([dl.Input((4,)), dl.layers.Dense(3, activation="softmax")],
                          backend="numpy")
    other.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="^backup: .* does not fit this model"):
        other.fit(x, y, epochs=2, verbose=0,
                  callbacks=[callbacks.BackupAndRestore(tmp_path)])
    model.save(tmp_path / "latest.dlk")       # a plain save: no fit state
    with pytest.raises(ValueError, match="^backup: .* is not a backup of a fit"):
        model.fit(x, y, epochs=2, verbose=0,
                  callbacks=[callbacks.BackupAndRestore(tmp_path)])
