"""Sequential's structure: building, layers added and removed, weights."""

import numpy as np
import pytest

import dl
from dl import (layers)
from dl_helpers import ACT, both_backends, restore_dl_state  # noqa: F401  (autouse fixture)


# ------------------------------------------------------------------ building

@pytest.mark.parametrize("how", ["input_shape", "input_dim", "Input", "add", "add_Input",
                                 "first_call", "build"])
def test_build_variants(how):
    if how == "input_shape":
        model = dl.Sequential([layers.Dense(4, input_shape=(3,)), layers.Dense(1)])
    elif how == "input_dim":
        model = dl.Sequential([layers.Dense(4, input_dim=3), layers.Dense(1)])
    elif how == "Input":
        model = dl.Sequential([dl.Input(shape=(3,)), layers.Dense(4), layers.Dense(1)])
    elif how == "add":
        model = dl.Sequential()
        model.add(layers.Dense(4, input_shape=(3,)))
        model.add(layers.Dense(1))
    elif how == "add_Input":
        model = dl.Sequential()
        model.add(dl.Input((3,)))
        model.add(layers.Dense(4))
        model.add(layers.Dense(1))
    else:
        model = dl.Sequential([layers.Dense(4), layers.Dense(1)])
        if how == "build":
            model.build((None, 3))
            assert model.built
    x = np.ones((5, 3), dtype=np.float32)
    out = model.predict(x, verbose=0)            # "first_call" builds here
    assert model.built
    assert out.shape == (5, 1)
    assert model.input_shape == (None, 3)
    assert model.output_shape == (None, 1)
    assert [w.shape for w in model.get_weights()] == [(3, 4), (4,), (4, 1), (1,)]
    assert model.count_params() == 3 * 4 + 4 + 4 + 1


def test_declared_input_shape_weights_available_before_fit():
    """Keras 3 builds a Sequential whose first layer declares its input shape at once:
    get_weights() works right after construction."""
    model = dl.Sequential([layers.Dense(1, input_shape=(2,))])
    assert [w.shape for w in model.get_weights()] == [(2, 1), (1,)]
    assert model.count_params() == 3


def test_unbuilt_model_without_input_shape_has_no_weights():
    """Keras 3: an unbuilt model's get_weights() is [] (no crash)."""
    model = dl.Sequential([layers.Dense(1)])
    assert model.weights == []
    assert model.get_weights() == []
    assert model.count_params() == 0


def test_build_without_any_shape_raises():
    model = dl.Sequential([layers.Dense(2)])
    with pytest.raises(ValueError, match="input_shape"):
        model.build()


def test_input_shape_on_a_later_layer_is_ignored_as_keras():
    model = dl.Sequential([layers.Dense(2, input_shape=(3,)),
                           layers.Dense(1, input_shape=(7, 7))])
    assert model.input_shape == (None, 3) and model.output_shape == (None, 1)
    assert model.predict(np.ones((2, 3)), verbose=0).shape == (2, 1)


def test_add_after_build_extends_the_model():
    model = dl.Sequential([layers.Dense(4, input_shape=(3,))])
    model.build()
    model.add(layers.Dense(2))
    assert model.predict(np.ones((2, 3)), verbose=0).shape == (2, 2)
    assert model.pop().units == 2
    assert len(model.layers) == 1


def test_summary(capsys):
    model = dl.Sequential([layers.Dense(4, input_shape=(3,), name="hidden"),
                           layers.Dense(2, activation="softmax", name="probs")],
                          name="my_model")
    model.summary()
    out = capsys.readouterr().out
    assert 'Model: "my_model"' in out
    assert "hidden (Dense)" in out and "probs (Dense)" in out
    assert "(None, 4)" in out and "(None, 2)" in out
    assert "Total params: 26" in out
    assert "Trainable params: 26" in out
    lines = []
    model.summary(print_fn=lines.append)
    assert any(line.startswith(" Total params: 26 ") for line in lines)
    # the parameter counts per layer
    row = next(line for line in lines if "hidden (Dense)" in line)
    assert row.split("│")[-2].strip() == "16"


# ------------------------------------------------------------------- weights

def test_get_set_weights_order_and_shapes():
    model = dl.Sequential([layers.Dense(3, input_shape=(2,)), layers.Dense(1)])
    model.build()
    ws = model.get_weights()
    assert [w.shape for w in ws] == [(2, 3), (3,), (3, 1), (1,)]
    assert all(w.dtype == np.float32 for w in ws)
    np.testing.assert_array_equal(ws[1], 0)                  # bias zeros by default
    new = [np.full(w.shape, i + 1.0) for i, w in enumerate(ws)]
    model.set_weights(new)
    for a, b in zip(model.get_weights(), new):
        np.testing.assert_array_equal(a, b)
    # get_weights returns copies
    model.get_weights()[0][...] = 99
    assert model.get_weights()[0][0, 0] == 1.0
    # the layer's own attributes are the same arrays
    np.testing.assert_array_equal(model.layers[0].kernel, new[0])
    np.testing.assert_array_equal(model.layers[1].bias, new[3])
    x = np.array([[1.0, 2.0]])
    expected = (x @ new[0] + new[1]) @ new[2] + new[3]
    np.testing.assert_allclose(model.predict(x, verbose=0), expected)


def test_set_weights_wrong_count_or_shape():
    model = dl.Sequential([layers.Dense(3, input_shape=(2,)), layers.Dense(1)])
    model.build()
    ws = model.get_weights()
    with pytest.raises(ValueError, match="4 arrays"):
        model.set_weights(ws[:3])
    with pytest.raises(ValueError, match="4 arrays"):
        model.set_weights(ws + [ws[0]])
    bad = list(ws)
    bad[2] = np.zeros((1, 3))
    with pytest.raises(ValueError, match=r"weights\[2\]"):
        model.set_weights(bad)
    model.set_weights(ws)


def test_set_weights_failure_changes_nothing():
    """Keras checks every shape before assigning any: a bad last array leaves the model
    as it was."""
    model = dl.Sequential([layers.Dense(3, input_shape=(2,)), layers.Dense(1)])
    model.build()
    before = model.get_weights()
    new = [w + 1 for w in before]
    new[3] = np.zeros(2)                    # the last one is wrong
    with pytest.raises(ValueError, match=r"weights\[3\]"):
        model.set_weights(new)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_use_bias_false():
    model = dl.Sequential([layers.Dense(3, input_shape=(2,), use_bias=False,
                                        kernel_initializer="ones")])
    model.build()
    ws = model.get_weights()
    assert [w.shape for w in ws] == [(2, 3)]
    np.testing.assert_array_equal(model.predict(np.array([[1.0, 2.0]]), verbose=0),
                                  [[3.0, 3.0, 3.0]])
    model.compile("sgd", "mse")
    _, grads = model.compute_gradients(np.array([[1.0, 2.0]]), np.zeros((1, 3)))
    assert [g.shape for g in grads] == [(2, 3)]
