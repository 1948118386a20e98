"""dl.utils.plot_model (matplotlib, no graphviz) and the functional-API examples
(examples/wide_and_deep.py, examples/residual_mlp.py), run briefly."""
import importlib.util
import os
import sys

import numpy as np
import pytest

import dl
from dl import layers

from dl_helpers import restore_dl_state  # noqa: F401  (autouse fixture)

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")
PNG = b"\x89PNG\r\n\x1a\n"


def _residual():
    x = dl.Input((4,), name="x")
    h = layers.Dense(8, activation="relu", name="h")(x)
    s = layers.Add(name="res")([h, layers.Dense(8, name="r")(h)])
    return dl.Model(x, layers.Dense(1, name="out")(layers.Concatenate(name="cat")([s, x])))


def test_plot_model_writes_the_graph(tmp_path):
    model = _residual()
    path = dl.utils.plot_model(model, tmp_path / "graph.png", show_shapes=True,
                               show_dtype=True, show_layer_activations=True,
                               show_trainable=True)
    with open(path, "rb") as f:
        assert f.read(8) == PNG
    lr = dl.utils.plot_model(model, str(tmp_path / "graph_lr.svg"), rankdir="LR")
    with open(lr) as f:
        assert "<svg" in f.read(2000)
    seq = dl.Sequential([layers.Dense(3, input_shape=(2,)), layers.Dense(1)])
    assert os.path.getsize(dl.utils.plot_model(seq, tmp_path / "seq.png")) > 1000


def test_plot_model_layout_and_errors(tmp_path):
    from dl._plot import _graph
    model = _residual()
    layers_, inbound = _graph(model)
    names = {id(layer): layer.name for layer in layers_}
    assert [layer.name for layer in layers_] == ["x", "h", "r", "res", "cat", "out"]
    cat = next(layer for layer in layers_ if layer.name == "cat")
    assert sorted(names[i] for i in inbound[id(cat)]) == ["res", "x"]
    with pytest.raises(ValueError, match="rankdir: expected 'TB' or 'LR'"):
        dl.utils.plot_model(model, tmp_path / "g.png", rankdir="BT")

    class Unbuilt(dl.Model):
        def call(self, x):
            return x
    with pytest.raises(ValueError, match="model: it is not built yet"):
        dl.utils.plot_model(Unbuilt(), tmp_path / "g.png")


def _example(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name, args, floor", [
    ("wide_and_deep", ["--epochs", "500"], 0.30),     # R^2; least squares: 0.36
    ("residual_mlp", ["--epochs", "12", "--blocks", "2"], 0.95),   # test accuracy
])
def test_example_runs_and_learns(name, args, floor, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [name] + args)
    score = _example(name).main()
    assert score >= floor
    for png in (f"{name}_training.png", f"{name}_model.png"):
        with open(tmp_path / png, "rb") as f:
            assert f.read(8) == PNG
    assert np.isfinite(score)
