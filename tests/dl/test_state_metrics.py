"""Precision, Recall, F-scores and R2 (metrics whose state is arrays of sums): hand
values, training logs (a per-class metric logs an array), sample weights, the
BackupAndRestore state and every backend."""
import numpy as np
import pytest

import dl
import kernels
from dl import callbacks, metrics
from dl_helpers import restore_dl_state  # noqa: F401  (autouse fixture)

BACKENDS = [b for b in ("numpy", "cython", "cuda") if b in kernels.available_backends()]


def test_precision_recall_by_hand():
    y_true = np.array([[1, 0, 1, 0], [0, 1, 1, 1]])
    y_pred = np.array([[0.9, 0.8, 0.2, 0.1], [0.4, 0.6, 0.7, 0.55]])
    # positives above 0.5: tp 4 (0.9, 0.6, 0.7, 0.55), fp 1 (0.8), fn 1 (0.2)
    assert metrics.Precision()(y_true, y_pred) == pytest.approx(4 / 5)
    assert metrics.Recall()(y_true, y_pred) == pytest.approx(4 / 5)
    np.testing.assert_allclose(metrics.Precision(thresholds=[0.5, 0.75])(y_true, y_pred),
                               [4 / 5, 1 / 2])
    assert metrics.Recall(class_id=2)(y_true, y_pred) == pytest.approx(1 / 2)
    assert metrics.Precision(top_k=1)(y_true, y_pred) == pytest.approx(1.0)   # 0.9, 0.7
    w = np.array([1.0, 3.0])
    assert metrics.Precision()(y_true, y_pred, sample_weight=w) == pytest.approx(
        (1 + 3 * 3) / (1 + 1 + 3 * 3))
    assert metrics.Precision()(np.zeros((2, 2)), np.zeros((2, 2))) == 0.0


def test_fbeta_and_r2_by_hand():
    y_true = np.array([[1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1]])
    y_pred = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    per_class = metrics.F1Score()(y_true, y_pred)     # argmax: class 0 tp1 fp1; 1 tp1 fn1
    np.testing.assert_allclose(per_class, [2 / 3, 2 / 3, 1.0], rtol=1e-5)
    assert metrics.F1Score(average="macro")(y_true, y_pred) == pytest.approx(7 / 9, rel=1e-5)
    assert metrics.F1Score(average="micro")(y_true, y_pred) == pytest.approx(0.75, rel=1e-5)
    y = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([1.5, 2.0, 2.5, 4.0])
    assert metrics.R2Score()(y, p) == pytest.approx(1 - 0.5 / 5.0)
    adjusted = metrics.R2Score(num_regressors=1)(y, p)
    assert adjusted == pytest.approx(1 - (1 - 0.9) * 3 / 2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_state_metrics_in_training_logs(backend, capsys):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((24, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 24)]
    dl.utils.set_random_seed(2)
    model = dl.Sequential([dl.Input((4,)), dl.layers.Dense(3, activation="softmax")],
                          backend=backend)
    model.compile(optimizer="adam", loss="categorical_crossentropy",
                  metrics=["precision", metrics.F1Score()],
                  weighted_metrics=[metrics.Recall(name="w_recall")])
    h = model.fit(x, y, sample_weight=rng.uniform(0, 2, 24), batch_size=8, epochs=2,
                  verbose=2, validation_data=(x[:8], y[:8]))
    assert isinstance(h.history["precision"][0], float)
    assert h.history["f1_score"][0].shape == (3,)          # per class, as Keras logs it
    assert "val_w_recall" in h.history
    assert "f1_score: [" in capsys.readouterr().out
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    pred = model.predict(x, verbose=0)
    assert logs["precision"] == pytest.approx(metrics.Precision()(y, pred), rel=1e-5)


def test_backup_and_restore_keeps_a_state_metric_mid_epoch(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((32, 4)).astype(np.float32)
    y = (rng.random((32, 1)) > 0.5).astype(np.float32)

    def model_on(seed):
        dl.utils.set_random_seed(seed)
        model = dl.Sequential([dl.Input((4,)), dl.layers.Dense(1, activation="sigmoid")],
                              backend="cython")
        model.compile(optimizer="adam", loss="binary_crossentropy",
                      metrics=["precision", "recall"])
        return model

    class Stop(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.model.optimizer.iterations == 6:
                raise KeyboardInterrupt
    straight = model_on(3)
    expected = straight.fit(x, y, batch_size=8, epochs=3, verbose=0)
    first = model_on(3)
    with pytest.raises(KeyboardInterrupt):
        first.fit(x, y, batch_size=8, epochs=3, verbose=0,
                  callbacks=[callbacks.BackupAndRestore(tmp_path, save_freq=1), Stop()])
    resumed = model_on(7)
    h = resumed.fit(x, y, batch_size=8, epochs=3, verbose=0,
                    callbacks=[callbacks.BackupAndRestore(tmp_path, save_freq=1)])
    for key in ("loss", "precision", "recall"):
        assert h.history[key] == expected.history[key][1:], key


@pytest.mark.parametrize("make, exc, start", [
    (lambda: metrics.Precision(thresholds=1.5), ValueError, "thresholds: expected numbers"),
    (lambda: metrics.Recall(top_k=0), ValueError, "top_k: expected None or an int >= 1"),
    (lambda: metrics.F1Score(average="mean"), ValueError, "average: expected None"),
    (lambda: metrics.FBetaScore(beta=0), ValueError, "beta: expected a number > 0"),
    (lambda: metrics.R2Score(class_aggregation="max"), ValueError, "class_aggregation:"),
    (lambda: metrics.Precision()(np.array([2.0]), np.array([0.5])), ValueError,
     "y_true: expected labels of 0 and 1"),
])
def test_bad_arguments_are_named(make, exc, start):
    with pytest.raises(exc) as info:
        make()
    assert str(info.value).startswith(start), str(info.value)
