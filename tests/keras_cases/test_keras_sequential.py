"""Keras 3's ``keras/src/models/sequential_test.py``, ported for what dl's
``Sequential`` provides: the same models, inputs and expected facts, run on dl (our
code, Keras's facts).  Each test is named as its Keras method in
``SequentialTest``; a case split in parts says so.

How Keras's calls map onto dl's:
- ``model(x)`` is dl's inference call on a NumPy array (as Keras's eager call);
- ``run_class_serialization_test`` -> get_config -> JSON -> from_config -> the same
  config (dl has no ``keras.saving.serialize_keras_object``);
- ``model.summary()`` prints as in Keras (pytest captures it); nothing is asserted of
  its text, as in Keras.

Deliberately different (asserted as dl's behaviour):
- error messages are dl's own (the argument first) where Keras's wording differs
  ("already been configured", "Only instances of", "Use `add()` and `pop()`"); the
  exception types are Keras's, except ``model.add({})``: a TypeError in dl (a wrong
  type), a ValueError in Keras;
- Keras's checks of internals (``model._functional`` is a ``Functional``) and of
  symbolic calls (``model(KerasTensor)``, ``model.inputs``/``model.outputs``) are left
  out of the cases that have them: dl has no symbolic tensors (issue 13).

Not ported (outside dl's surface): ``test_basic_flow_as_a_submodel`` (TimeDistributed,
functional Model), ``test_basic_flow_with_functional_model_as_first_layer`` and
``test_basic_flow_with_sequential_model_as_first_layer`` (a model as a layer, Conv2D),
``test_nested_sequential`` (a Sequential inside a Sequential), ``test_dict_inputs``,
``test_list_inputs``, ``test_shape_inference_failure``, ``test_training_arg`` and the
``BadLayer`` half of ``test_bad_layer`` (custom Layer subclasses), the "Weird"
(DictLayer) part of ``test_serialization``, ``test_serialization_with_lambda_layer``
(Lambda), ``test_functional_properties``'s ``inputs``/``outputs`` (symbolic tensors).
"""
import json
import pickle

import numpy as np
import pytest

import dl
from dl import layers

RNG = np.random.default_rng(0)

def roundtrip(model):
    """Keras's run_class_serialization_test: the config survives JSON and from_config;
    returns the revived model."""
    cfg = model.get_config()
    revived = dl.Sequential.from_config(json.loads(json.dumps(cfg)))
    assert revived.get_config() == cfg
    return revived


# ================================== SequentialTest (each test named as its Keras method)
def test_basic_flow_with_input():
    model = dl.Sequential(name="seq")
    model.add(dl.Input(shape=(2,), batch_size=3))
    model.add(layers.Dense(4))
    model.add(layers.Dense(5))
    model.summary()
    assert len(model.layers) == 2
    assert model.built
    assert len(model.weights) == 4
    # Test eager call
    y = model(RNG.random((3, 2)))
    assert y.shape == (3, 5)

    # Test `layers` constructor arg
    model = dl.Sequential(layers=[dl.Input(shape=(2,), batch_size=3), layers.Dense(4),
                                  layers.Dense(5)])
    assert len(model.layers) == 2
    assert model.built
    assert len(model.weights) == 4
    assert model(RNG.random((3, 2))).shape == (3, 5)

    # Test pop
    model.pop()
    assert len(model.layers) == 1
    assert model.built
    assert len(model.weights) == 2
    assert model(RNG.random((3, 2))).shape == (3, 4)


def test_legacy_flow_with_input_shape():
    model = dl.Sequential(name="seq")
    model.add(layers.Dense(4, input_shape=(2,)))
    model.add(layers.Dense(5))
    assert len(model.layers) == 2
    assert model.built
    assert len(model.weights) == 4

    # Input_dim works too
    model = dl.Sequential(name="seq")
    model.add(layers.Dense(4, input_dim=2))
    model.add(layers.Dense(5))
    assert len(model.layers) == 2
    assert model.built
    assert len(model.weights) == 4


def test_legacy_flow_with_input_shape_subsequent_ignored():   # ...with_input_shape, part 3
    # Subsequent input_shapes are ignored
    model = dl.Sequential(name="seq")
    model.add(layers.Dense(4, input_shape=(2,)))
    model.add(layers.Dense(5, input_shape=(3, 4)))
    assert len(model.layers) == 2
    assert model.built
    assert len(model.weights) == 4


def test_basic_flow_deferred():
    model = dl.Sequential(name="seq")
    model.add(layers.Dense(4))
    model.add(layers.Dense(5))
    model.summary()
    assert len(model.layers) == 2
    # Test eager call
    y = model(RNG.random((3, 2)))
    assert model.built
    model.summary()
    assert y.shape == (3, 5)

    # Test `layers` constructor arg
    model = dl.Sequential(layers=[layers.Dense(4), layers.Dense(5)])
    assert model(RNG.random((3, 2))).shape == (3, 5)

    # Test pop
    model.pop()
    assert len(model.layers) == 1
    assert model.built
    assert len(model.weights) == 2
    assert model(RNG.random((3, 2))).shape == (3, 4)


def test_errors():
    # Trying to pass 2 Inputs
    model = dl.Sequential()
    model.add(dl.Input(shape=(2,), batch_size=3))
    with pytest.raises(ValueError, match="^layer:"):    # Keras: "already been configured"
        model.add(dl.Input(shape=(2,), batch_size=3))
    with pytest.raises(ValueError, match="^layer:"):
        model.add(layers.InputLayer(shape=(2,), batch_size=3))

    # Same name 2x
    model = dl.Sequential()
    model.add(layers.Dense(2, name="dense"))
    with pytest.raises(ValueError, match="should have unique names"):
        model.add(layers.Dense(2, name="dense"))

    # No layers
    model = dl.Sequential()
    with pytest.raises(ValueError, match="no layers"):
        model(RNG.random((3, 2)))

    # Build conflict
    model = dl.Sequential()
    model.add(dl.Input(shape=(2,), batch_size=3))
    model.add(layers.Dense(2))
    with pytest.raises(ValueError):                     # Keras: "already been configured"
        model.build((3, 4))
    # But this works
    model.build((3, 2))


def test_serialization():
    # Unbuilt deferred
    model = dl.Sequential(name="seq")
    model.add(layers.Dense(4))
    model.add(layers.Dense(5))
    assert len(roundtrip(model).layers) == 2

    # Built deferred
    model.build((2, 3))
    assert len(roundtrip(model).layers) == 2

    # Regular
    model = dl.Sequential(name="seq")
    model.add(dl.Input(shape=(2,), batch_size=3))
    model.add(layers.Dense(4))
    model.add(layers.Dense(5))
    model.add(layers.Dense(6))
    assert len(roundtrip(model).layers) == 3


def test_functional_properties():                   # part 1: input_shape
    model = dl.Sequential(name="seq")
    model.add(dl.Input(shape=(2,)))
    model.add(layers.Dense(4))
    assert model.input_shape == (None, 2)


def test_functional_properties_output_shape():      # test_functional_properties, part 2
    model = dl.Sequential(name="seq")
    model.add(dl.Input(shape=(2,)))
    model.add(layers.Dense(4))
    assert model.output_shape == (None, 4)


def test_pickleable():
    model = dl.Sequential(name="seq")
    model.add(layers.Dense(4))
    result = pickle.loads(pickle.dumps(model))
    assert len(result.layers) == 1


def test_bad_layer():                               # the `model.add({})` half
    model = dl.Sequential(name="seq")
    with pytest.raises(TypeError, match="^layer:"):  # Keras: ValueError "Only instances of"
        model.add({})


def test_compute_output_shape():
    layer = dl.Sequential([layers.Dense(4), layers.Dense(8)])
    output_shape = layer.compute_output_shape((1, 2))
    assert output_shape == (1, 8)


def test_hasattr():                                 # part 1: an empty model
    model = dl.Sequential()
    assert not hasattr(model, "input_shape")
    assert not hasattr(model, "output_shape")
    assert not hasattr(model, "inputs")
    assert not hasattr(model, "outputs")


def test_hasattr_built():                           # test_hasattr, part 2 (no inputs/outputs)
    model = dl.Sequential([dl.Input((4,)), layers.Dense(8)])
    assert hasattr(model, "input_shape")
    assert hasattr(model, "output_shape")


def test_layers_setter():
    model = dl.Sequential()
    with pytest.raises(AttributeError):      # Keras: "Use `add()` and `pop()`"
        model.layers = [layers.Dense(4)]
