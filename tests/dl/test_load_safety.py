"""Loading is safe: foreign and hostile files are refused with a ValueError naming the
file, run no code, and change nothing.

What tests/dl/test_dl_saving.py already covers (truncated, random, empty, plain .npz/zip,
wrong format/version, bad JSON, flipped bytes, object arrays in weights/0 and config,
wrong weight shapes/count/optimizer state) is not repeated here.  Added: a Keras 3
``.keras`` zip, a Keras 2 / HDF5 file, a pickle, object-dtype arrays in the other
slots, and a well-formed config JSON that does not fit the stored weights or is not
the structure load_model expects.
"""
import copy
import io
import json
import os
import pickle
import re
import zipfile

import numpy as np
import pytest

import dl
from dl import layers
from dl_helpers import restore_dl_state  # noqa: F401  (autouse fixture)

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class _Marker:
    """Unpickling this object creates a file: evidence that pickle ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def trained(tmp_path):
    """A trained model (Dropout, Adam state) and its file."""
    dl.utils.set_random_seed(0)
    model = dl.Sequential([layers.Dense(8, activation="relu", input_shape=(4,)),
                           layers.Dropout(0.25),
                           layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(20, 4)).astype(np.float32), rng.integers(0, 3, 20),
              epochs=1, batch_size=5, verbose=0)
    path = tmp_path / "good.dlk"
    model.save(path)
    return model, path


def _refused(model, path, match=None):
    """load_model and load_weights both raise ValueError naming ``path``, and the
    model's weights are untouched."""
    before = model.get_weights()
    with pytest.raises(ValueError, match=re.escape(str(path))) as info:
        dl.models.load_model(path)
    if match:
        assert re.search(match, str(info.value)), str(info.value)
    with pytest.raises(ValueError, match=re.escape(str(path))):
        model.load_weights(path)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    return str(info.value)


def _arrays(path):
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _write(path, arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())
    return path


# ------------------------------------------------------------ other formats

def test_keras3_zip_file_is_refused(trained, tmp_path):
    """A Keras 3 ``.keras`` file: a zip of metadata.json, config.json and
    model.weights.h5 (an HDF5 file)."""
    model, _ = trained
    path = tmp_path / "model.keras"
    keras_config = {"module": "keras", "class_name": "Sequential",
                    "config": {"name": "sequential", "layers": [
                        {"module": "keras.layers", "class_name": "Dense",
                         "config": {"units": 3, "activation": "softmax"}}]},
                    "compile_config": None, "build_config": {"input_shape": [None, 4]}}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.3.3",
                                                "date_saved": "2024-06-01@12:00:00"}))
        z.writestr("config.json", json.dumps(keras_config))
        z.writestr("model.weights.h5", HDF5_SIGNATURE + bytes(4096))
    _refused(model, path, match="not a dlkernels model file")
    # the same zip with a .dlk name, and one that also has a "config" entry
    renamed = tmp_path / "model.dlk"
    renamed.write_bytes(path.read_bytes())
    _refused(model, renamed)
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("config.npy", "not an array")
    _refused(model, path)


@pytest.mark.parametrize("suffix", [".h5", ".dlk", ".weights.h5"])
def test_hdf5_file_is_refused(trained, tmp_path, suffix):
    """A Keras 2 ``.h5`` model (HDF5): the signature then a superblock-like body."""
    model, _ = trained
    path = tmp_path / f"model{suffix}"
    body = HDF5_SIGNATURE + bytes([0, 0, 0, 0, 8, 8, 0, 4, 0, 16, 0, 0]) + \
        np.random.default_rng(1).bytes(2048)
    path.write_bytes(body)
    _refused(model, path, match="not a zip|not a dlkernels")


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_pickle_file_is_refused_without_unpickling(trained, tmp_path, protocol):
    model, _ = trained
    marker = tmp_path / "pickle-ran"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"weights": model.get_weights(),
                                   "payload": _Marker(str(marker))}, protocol=protocol))
    _refused(model, path)
    assert not marker.exists()
    # a pickle inside a .npy (np.save of an object array) is refused the same way
    npy = tmp_path / "model.npy"
    payload = np.empty(1, dtype=object)
    payload[0] = _Marker(str(marker))
    np.save(npy, payload, allow_pickle=True)
    _refused(model, npy)
    assert not marker.exists()


@pytest.mark.parametrize("slot", ["__dlkernels__", "optimizer/0", "optimizer/3",
                                  "weights/3", "all"])
def test_npz_with_object_arrays_is_refused_without_unpickling(trained, tmp_path, slot):
    """Object (pickled) arrays in slots not covered by test_dl_saving: the header, the
    optimizer state, a later weight, and an archive made only of object arrays."""
    model, good = trained
    marker = tmp_path / "pickle-ran"
    payload = np.empty(2, dtype=object)
    payload[0] = _Marker(str(marker))
    payload[1] = "x"
    arrays = _arrays(good)
    if slot == "all":
        arrays = {k: payload for k in arrays}
    else:
        assert slot in arrays
        arrays[slot] = payload
    path = _write(tmp_path / f"evil-{slot.replace('/', '_')}.dlk", arrays)
    _refused(model, path)
    assert not marker.exists()


def test_npz_with_an_extra_object_array_runs_no_code(trained, tmp_path):
    """An extra member that load_model has no use for: never unpickled (the file may
    load, as its own members are fine, or be refused; no code runs either way)."""
    model, good = trained
    marker = tmp_path / "pickle-ran"
    payload = np.empty(1, dtype=object)
    payload[0] = _Marker(str(marker))
    arrays = _arrays(good)
    arrays["extra"] = payload
    path = _write(tmp_path / "extra.dlk", arrays)
    try:
        loaded = dl.models.load_model(path)
    except ValueError as exc:
        assert str(path) in str(exc)
    else:
        for a, b in zip(loaded.get_weights(), model.get_weights()):
            np.testing.assert_array_equal(a, b)
    assert not marker.exists()


# ------------------------------------------- a valid config that does not fit

def _with_config(good, path, edit):
    arrays = _arrays(good)
    cfg = json.loads(arrays["config"].tobytes())
    cfg = edit(copy.deepcopy(cfg)) or cfg if callable(edit) else edit
    arrays["config"] = np.frombuffer(json.dumps(cfg).encode(), np.uint8)
    return _write(path, arrays)


def _set(keys, value):
    def edit(cfg):
        node = cfg
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
        return cfg
    return edit


SHAPE_EDITS = {
    "units": _set(["config", "layers", 0, "config", "units"], 9),
    "last_units": _set(["config", "layers", 2, "config", "units"], 4),
    "input_shape": _set(["build", "input_shape"], [5]),
    "layer_input_shape": _set(["config", "layers", 0, "config", "input_shape"], [6]),
    "no_bias": _set(["config", "layers", 2, "config", "use_bias"], False),
    "extra_layer": lambda cfg: cfg["config"]["layers"].append(
        {"class_name": "Dense", "config": {"name": "more", "units": 2}}) or cfg,
    "fewer_layers": lambda cfg: cfg["config"]["layers"].pop() and cfg,
}


@pytest.mark.parametrize("edit", list(SHAPE_EDITS))
def test_config_describing_other_shapes_than_the_weights(trained, tmp_path, edit):
    """The JSON is valid and describes a valid model, but not the stored weights."""
    model, good = trained
    path = _with_config(good, tmp_path / f"shapes-{edit}.dlk", SHAPE_EDITS[edit])
    with pytest.raises(ValueError, match=re.escape(str(path))) as info:
        dl.models.load_model(path)
    assert "invalid model" in str(info.value) or "shape" in str(info.value)


def test_config_claiming_a_gigantic_layer_is_refused_before_allocating(trained, tmp_path):
    """A config whose layer would need a petabyte (4 x 2**45 float64 for the
    initializer) is refused with the ValueError of any misfit file: its shapes are
    not those of the stored weights.  (Allocating first fails with MemoryError here;
    with a merely large layer, 2**26 units, it takes ~18 s and 4.6 GB before failing.)"""
    _, good = trained
    path = _with_config(good, tmp_path / "huge.dlk",
                        _set(["config", "layers", 0, "config", "units"], 2**45))
    with pytest.raises(ValueError, match=re.escape(str(path))):
        dl.models.load_model(path)


@pytest.mark.parametrize("config", [[1, 2], None, {"class_name": "Sequential", "config": [1]}],
                         ids=["list", "null", "config-list"])
def test_config_json_of_the_wrong_structure(trained, tmp_path, config):
    """Valid JSON, but not an object of the expected structure: ValueError naming the
    file (not AttributeError)."""
    model, good = trained
    path = _with_config(good, tmp_path / "structure.dlk", config)
    with pytest.raises(ValueError, match=re.escape(str(path))):
        dl.models.load_model(path)
    # load_weights does not need the config: the weights still load
    model.load_weights(path)


def test_config_with_an_invalid_seed_is_refused(trained, tmp_path):
    """The seed drives shuffling and dropout after a reload: a non-integer seed is an
    invalid file (today it loads, and the next fit fails far from the cause)."""
    _, good = trained
    path = _with_config(good, tmp_path / "seed.dlk", _set(["seed"], "abc"))
    with pytest.raises(ValueError, match=re.escape(str(path))):
        dl.models.load_model(path)


def test_refusals_leave_no_files_behind(trained, tmp_path):
    """Refusing a file neither creates, renames nor deletes anything next to it."""
    model, good = trained
    bad = tmp_path / "bad.h5"
    bad.write_bytes(HDF5_SIGNATURE + bytes(100))
    before = sorted(os.listdir(tmp_path))
    for _ in range(2):
        with pytest.raises(ValueError):
            dl.models.load_model(bad)
    assert sorted(os.listdir(tmp_path)) == before
    assert bad.read_bytes() == HDF5_SIGNATURE + bytes(100)
