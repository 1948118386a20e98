"""Saving and loading: round trips, exact continuation, no pickle, damaged files,
atomic writes."""
import io
import json
import os
import re
import zipfile

import numpy as np
import pytest

import dl
from dl import layers, losses, optimizers
from dl import saving as dl_saving
from dl_helpers import restore_dl_state  # noqa: F401  (autouse fixture)


def _data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    labels = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1).astype(np.int64)
    return x, labels


def _classifier(optimizer, seed=0, dropout=True, dtype=None):
    dl.utils.set_random_seed(seed)
    stack = [layers.Dense(8, activation="relu", input_shape=(4,), dtype=dtype)]
    if dropout:
        stack.append(layers.Dropout(0.3))
    stack.append(layers.Dense(3, activation="softmax"))
    model = dl.Sequential(stack)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


OPTIMIZERS = {
    "adam": lambda: optimizers.Adam(learning_rate=0.01),
    "sgd_momentum": lambda: optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
    "rmsprop_centered": lambda: optimizers.RMSprop(learning_rate=0.01, momentum=0.5,
                                                   centered=True),
    "adagrad": lambda: optimizers.Adagrad(learning_rate=0.05),
    "adamw_amsgrad": lambda: optimizers.AdamW(learning_rate=0.01, amsgrad=True),
}


def _assert_same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb)
    for x, y in zip(wa, wb):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


# --------------------------------------------------------------- round trips

def test_save_load_round_trip(tmp_path):
    x, y = _data()
    model = _classifier(optimizers.Adam(learning_rate=0.01, beta_1=0.8))
    model.fit(x, y, epochs=2, batch_size=5, verbose=0)
    path = tmp_path / "model.dlk"
    model.save(path)
    loaded = dl.models.load_model(path)
    _assert_same_weights(model, loaded)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    # architecture and compile settings
    assert loaded.get_config() == model.get_config()
    assert loaded.get_compile_config() == model.get_compile_config()
    assert isinstance(loaded.optimizer, optimizers.Adam)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.beta_1 == 0.8
    assert isinstance(loaded.loss, losses.SparseCategoricalCrossentropy)
    assert [m.name for m in loaded.metrics] == ["accuracy"]
    # optimizer state
    assert loaded.optimizer.iterations == model.optimizer.iterations == 10
    for a, b in zip(loaded.optimizer.get_state(), model.optimizer.get_state()):
        np.testing.assert_array_equal(a, b)
    assert loaded.seed == model.seed
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("continuation", ["again", "initial_epoch"])
def test_continue_training_after_reload_is_bit_identical(tmp_path, opt, continuation):
    x, y = _data()

    def second_fit(m):
        if continuation == "again":
            m.fit(x, y, epochs=2, batch_size=5, verbose=0)
        else:
            m.fit(x, y, epochs=4, initial_epoch=2, batch_size=5, verbose=0)

    straight = _classifier(OPTIMIZERS[opt]())
    straight.fit(x, y, epochs=2, batch_size=5, verbose=0)
    second_fit(straight)

    saved = _classifier(OPTIMIZERS[opt]())
    saved.fit(x, y, epochs=2, batch_size=5, verbose=0)
    path = tmp_path / "mid.dlk"
    saved.save(path)
    del saved
    dl.utils.set_random_seed(12345)                 # the global state does not matter
    resumed = dl.models.load_model(path)
    second_fit(resumed)
    _assert_same_weights(straight, resumed)
    assert resumed.optimizer.iterations == straight.optimizer.iterations == 20


def test_continue_training_after_reload_float64_and_regularizers(tmp_path):
    x, y = _data()

    def make():
        dl.utils.set_random_seed(3)
        model = dl.Sequential([layers.Dense(6, activation="tanh", input_shape=(4,),
                                            dtype="float64", kernel_regularizer="l2"),
                               layers.Dropout(0.2, seed=5),
                               layers.Dense(3, activation="softmax",
                                            bias_regularizer=dl.regularizers.L1(0.05))])
        model.compile(optimizers.RMSprop(learning_rate=0.01), "categorical_crossentropy",
                      metrics=["acc", "mse"])
        return model

    y1 = dl.utils.to_categorical(y, 3)
    a = make()
    a.fit(x, y1, epochs=3, batch_size=7, verbose=0)
    a.fit(x, y1, epochs=2, batch_size=7, verbose=0)
    b = make()
    b.fit(x, y1, epochs=3, batch_size=7, verbose=0)
    b.save(tmp_path / "m.dlk")
    c = dl.models.load_model(tmp_path / "m.dlk")
    assert all(w.dtype == np.float64 for w in c.get_weights())
    assert [m.name for m in c.metrics] == ["acc", "mse"]
    c.fit(x, y1, epochs=2, batch_size=7, verbose=0)
    _assert_same_weights(a, c)
    assert c.evaluate(x, y1, verbose=0) == a.evaluate(x, y1, verbose=0)


def test_save_before_training_and_compile_false(tmp_path):
    x, y = _data()
    model = _classifier("adam")
    model.build()
    model.save(tmp_path / "fresh.dlk")
    loaded = dl.models.load_model(tmp_path / "fresh.dlk")
    assert loaded.optimizer.iterations == 0
    model.fit(x, y, epochs=1, verbose=0)
    loaded.fit(x, y, epochs=1, verbose=0)
    _assert_same_weights(model, loaded)
    uncompiled = dl.models.load_model(tmp_path / "fresh.dlk", compile=False)
    assert not uncompiled.compiled
    with pytest.raises(ValueError, match="compile"):
        uncompiled.fit(x, y, verbose=0)
    assert uncompiled.predict(x, verbose=0).shape == (24, 3)


def test_load_with_backend(tmp_path):
    x, _ = _data()
    model = _classifier("sgd", dropout=False)
    model.build()
    model.save(tmp_path / "m.dlk")
    loaded = dl.models.load_model(tmp_path / "m.dlk", backend="numpy")
    assert loaded.backend.name == "numpy"
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-7)


def test_save_overwrite_false(tmp_path):
    model = _classifier("sgd")
    model.build()
    path = tmp_path / "m.dlk"
    model.save(path)
    with pytest.raises(FileExistsError):
        model.save(path, overwrite=False)
    with pytest.raises(FileExistsError):
        model.save_weights(path, overwrite=False)


def test_save_weights_load_weights(tmp_path):
    x, y = _data()
    model = _classifier("adam")
    model.fit(x, y, epochs=2, verbose=0)
    model.save_weights(tmp_path / "w.dlk")
    other = _classifier("sgd", seed=99)
    other.build()
    assert not np.array_equal(other.get_weights()[0], model.get_weights()[0])
    other.load_weights(tmp_path / "w.dlk")
    _assert_same_weights(model, other)
    np.testing.assert_array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))
    # the weights of a full model file load too; an unbuilt model builds itself
    model.save(tmp_path / "full.dlk")
    third = _classifier("sgd", seed=7)
    third.load_weights(str(tmp_path / "full.dlk"))
    _assert_same_weights(model, third)
    # a weights file holds no optimizer state
    with zipfile.ZipFile(tmp_path / "w.dlk") as z:
        assert not any(n.startswith("optimizer/") for n in z.namelist())


# -------------------------------------------------------------------- no pickle

class _Marker:
    """Unpickling this object creates a file: evidence that pickle ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickled_object_array_is_rejected(tmp_path):
    model = _classifier("sgd", dropout=False)
    model.build()
    good = tmp_path / "good.dlk"
    model.save(good)
    marker = tmp_path / "pickle-ran"
    evil = tmp_path / "evil.dlk"
    with np.load(good, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    payload = np.empty(1, dtype=object)
    payload[0] = _Marker(str(marker))
    arrays["weights/0"] = payload
    np.savez(evil, **arrays)
    os.replace(str(evil) + ".npz", evil)
    with pytest.raises(ValueError, match=re.escape(str(evil))):
        dl.models.load_model(evil)
    with pytest.raises(ValueError, match=re.escape(str(evil))):
        model.load_weights(evil)
    assert not marker.exists()
    # the same object array in the config slot
    arrays = {k: v for k, v in arrays.items()}
    arrays["weights/0"] = model.get_weights()[0]
    arrays["config"] = payload
    np.savez(tmp_path / "evil2.npz", **arrays)
    with pytest.raises(ValueError, match="evil2"):
        dl.models.load_model(tmp_path / "evil2.npz")
    assert not marker.exists()


# -------------------------------------------------------------- damaged files

def _good_file(tmp_path):
    x, y = _data()
    model = _classifier("adam")
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "good.dlk"
    model.save(path)
    return model, path


def _damage(tmp_path, kind):
    model, good = _good_file(tmp_path)
    raw = good.read_bytes()
    bad = tmp_path / f"bad-{kind}.dlk"
    if kind == "truncated":
        bad.write_bytes(raw[:len(raw) // 2])
    elif kind == "truncated_tail":
        bad.write_bytes(raw[:-10])
    elif kind == "random":
        bad.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "empty":
        bad.write_bytes(b"")
    elif kind == "plain_npz":
        np.savez(bad, a=np.arange(3), b=np.ones((2, 2)))
        os.replace(str(bad) + ".npz", bad)
    elif kind == "plain_zip":
        with zipfile.ZipFile(bad, "w") as z:
            z.writestr("hello.txt", "not a model")
    elif kind in ("wrong_format", "wrong_version", "bad_json"):
        with np.load(good, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        header = {"format": "dlkernels-model", "version": 1, "kind": "model"}
        if kind == "wrong_format":
            header["format"] = "keras"
        elif kind == "wrong_version":
            header["version"] = 99
        arrays["__dlkernels__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
        if kind == "bad_json":
            arrays["config"] = np.frombuffer(b"{not json", np.uint8)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        bad.write_bytes(buf.getvalue())
    elif kind == "flipped_bytes":
        arr = bytearray(raw)
        mid = len(arr) // 3
        for i in range(mid, mid + 64):
            arr[i] ^= 0xFF
        bad.write_bytes(bytes(arr))
    elif kind == "text":
        bad.write_text("hello, I am a text file\n" * 50)
    else:
        raise ValueError(kind)
    return model, bad


DAMAGE = ["truncated", "truncated_tail", "random", "empty", "plain_npz", "plain_zip",
          "wrong_format", "wrong_version", "bad_json", "flipped_bytes", "text"]


@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_file_load_model(tmp_path, kind):
    _, bad = _damage(tmp_path, kind)
    with pytest.raises(ValueError, match=re.escape(repr(str(bad)))) as info:
        dl.models.load_model(bad)
    assert "filepath" in str(info.value)


@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_file_load_weights(tmp_path, kind):
    model, bad = _damage(tmp_path, kind)
    before = model.get_weights()
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        model.load_weights(bad)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_damaged_file_messages_say_what(tmp_path):
    _, bad = _damage(tmp_path, "plain_npz")
    with pytest.raises(ValueError, match="not a dlkernels model file"):
        dl.models.load_model(bad)
    _, bad = _damage(tmp_path, "wrong_version")
    with pytest.raises(ValueError, match="version"):
        dl.models.load_model(bad)
    _, bad = _damage(tmp_path, "truncated")
    with pytest.raises(ValueError, match="truncated|damaged|corrupt"):
        dl.models.load_model(bad)


def _rewrite(good, bad, change):
    with np.load(good, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    change(arrays)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    bad.write_bytes(buf.getvalue())


def test_wrong_weight_shapes_load_weights(tmp_path):
    """Weights saved from another architecture: ValueError naming the file."""
    x, y = _data()
    small = _classifier("sgd", dropout=False)
    small.build()
    path = tmp_path / "small.dlk"
    small.save_weights(path)
    dl.utils.set_random_seed(1)
    big = dl.Sequential([layers.Dense(9, activation="relu", input_shape=(4,)),
                         layers.Dense(3, activation="softmax")])
    big.build()
    before = big.get_weights()
    with pytest.raises(ValueError, match=re.escape(str(path))):
        big.load_weights(path)
    for a, b in zip(big.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_load_weights_mismatch_in_a_later_layer_changes_nothing(tmp_path):
    """The first layer fits, the last does not: the model must be left as it was (Keras
    checks every shape before assigning any)."""
    small = _classifier("sgd", dropout=False)
    small.build()
    path = tmp_path / "small.dlk"
    small.save_weights(path)
    dl.utils.set_random_seed(1)
    other = dl.Sequential([layers.Dense(8, activation="relu", input_shape=(4,)),
                           layers.Dense(4, activation="softmax")])
    other.build()
    before = other.get_weights()
    with pytest.raises(ValueError):
        other.load_weights(path)
    for a, b in zip(other.get_weights(), before):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("change", ["shape", "count", "optimizer_state"])
def test_wrong_weight_shapes_load_model(tmp_path, change):
    """A file whose arrays do not fit its own architecture: ValueError naming the file."""
    _, good = _good_file(tmp_path)
    bad = tmp_path / f"bad-{change}.dlk"

    def edit(arrays):
        if change == "shape":
            arrays["weights/0"] = np.zeros((5, 8), np.float32)
        elif change == "count":
            arrays["weights/4"] = np.zeros(3, np.float32)
        else:
            arrays["optimizer/1"] = np.zeros((7, 7), np.float32)

    _rewrite(good, bad, edit)
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        dl.models.load_model(bad)


def test_missing_file(tmp_path):
    model = _classifier("sgd")
    model.build()
    with pytest.raises(FileNotFoundError):
        dl.models.load_model(tmp_path / "nope.dlk")
    with pytest.raises(FileNotFoundError):
        model.load_weights(tmp_path / "nope.dlk")
    with pytest.raises(FileNotFoundError, match="nope"):
        dl.load_model(str(tmp_path / "nope.dlk"))


def test_saved_file_is_npz_without_pickles(tmp_path):
    _, good = _good_file(tmp_path)
    with zipfile.ZipFile(good) as z:
        names = z.namelist()
    assert "__dlkernels__.npy" in names and "config.npy" in names
    with np.load(good, allow_pickle=False) as data:     # every member loads without pickle
        for k in data.files:
            assert data[k].dtype != object
        cfg = json.loads(data["config"].tobytes())
    assert cfg["class_name"] == "Sequential"
    assert cfg["compile_config"]["optimizer"]["class_name"] == "Adam"


# ------------------------------------------------------------------ atomicity

@pytest.mark.parametrize("where", ["replace", "fsync", "write"])
@pytest.mark.parametrize("method", ["save", "save_weights"])
def test_atomic_write_failure_keeps_previous_file(tmp_path, monkeypatch, where, method):
    x, y = _data()
    model, path = _good_file(tmp_path)
    if method == "save_weights":
        model.save_weights(path)
    original = path.read_bytes()
    model.fit(x, y, epochs=1, verbose=0)           # something new to save

    class Boom(OSError):
        pass

    def fail(*args, **kwargs):
        raise Boom("disk on fire")

    if where == "replace":
        monkeypatch.setattr(os, "replace", fail)
    elif where == "fsync":
        monkeypatch.setattr(os, "fsync", fail)
    else:
        def fake_fdopen(fd, mode="r", *args, **kwargs):
            real = io.open(fd, mode, *args, **kwargs)

            class Half:
                def __enter__(self):
                    return self

                def __exit__(self, *exc):
                    real.close()
                    return False

                def write(self, data):
                    real.write(data[:len(data) // 2])
                    raise Boom("disk full")

                def flush(self):
                    real.flush()

                def fileno(self):
                    return real.fileno()

            return Half()

        monkeypatch.setattr(dl_saving.os, "fdopen", fake_fdopen)
    with pytest.raises(Boom):
        getattr(model, method)(path)
    monkeypatch.undo()
    assert path.read_bytes() == original
    assert sorted(os.listdir(tmp_path)) == ["good.dlk"]     # no temporary file left
    if method == "save":
        dl.models.load_model(path)                            # still loads


def test_atomic_write_interrupted(tmp_path, monkeypatch):
    model, path = _good_file(tmp_path)
    original = path.read_bytes()

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        model.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == original
    assert sorted(os.listdir(tmp_path)) == ["good.dlk"]


def test_save_to_new_path_leaves_only_the_file(tmp_path):
    model = _classifier("sgd")
    model.build()
    model.save(tmp_path / "a.dlk")
    model.save(str(tmp_path / "a.dlk"))        # overwrite
    model.save_weights(tmp_path / "b.weights")
    assert sorted(os.listdir(tmp_path)) == ["a.dlk", "b.weights"]


def test_float64_model_loads_as_float64_under_float32_floatx(tmp_path):
    x, y = _data()
    dl.config.set_floatx("float64")
    model = _classifier("adam", dropout=False)
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.dlk")
    dl.config.set_floatx("float32")
    loaded = dl.models.load_model(tmp_path / "m.dlk")
    assert all(w.dtype == np.float64 for w in loaded.get_weights())
    assert loaded.predict(x, verbose=0).dtype == np.float64
    model.fit(x, y, epochs=1, verbose=0)
    loaded.fit(x, y, epochs=1, verbose=0)
    _assert_same_weights(model, loaded)


@pytest.mark.parametrize("iterations", [np.int64(2**63 - 1), np.uint64(2**63), np.int64(-1)])
def test_saved_iteration_count_beyond_the_kernels_step_range(tmp_path, iterations):
    """The next step (iterations + 1) must be an int64: a file claiming more is refused
    at load, naming filepath, not at the first training step."""
    _, good = _good_file(tmp_path)
    with np.load(good, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["optimizer/0"] = np.array(iterations)
    bad = tmp_path / "bad-iterations.dlk"
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    bad.write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match=r"^filepath: .*optimizer state: expected an integer "
                                         r"iteration count in \[0, 9223372036854775807\)"):
        dl.models.load_model(bad)
