"""One table per kernel family: the reference's tables against everything numbered or
named after them.

The activations, the losses and Adam's step size are defined once, in
``kernels.reference``.  The CUDA twin and ``dl.activations`` derive from those tables;
the Cython twin's ids are C enums (compile-time constants), so they are checked here,
and each test fails when one side gains an entry the other lacks.
"""
import inspect
import math

import numpy as np
import pytest

import dl
import kernels
from kernels import checks
from kernels import reference as ref
from kernels.cpu import elementwise, losses

ACTIVATION_IDS = {name: i for i, name in enumerate(ref.ACTIVATION_KERNELS)}
LOSS_IDS = {name: i for i, name in enumerate(ref.LOSS_KERNELS)}


# ------------------------------------------------------------------- activations

def test_activation_names_are_the_kernel_pairs_of_the_reference():
    forward = {n for n in ref.__all__ if f"backprop_{n}" in ref.__all__}
    # every forward/backprop pair is an activation, except the loss pairs
    losses_with_backprop = {n for n in forward if n in ref.LOSS_KERNELS
                            or n.endswith("crossentropy")}
    assert forward - losses_with_backprop == set(ref.ACTIVATIONS)


@pytest.mark.parametrize("name", ref.ACTIVATIONS)
def test_reference_signatures_follow_the_activation_table(name):
    spec = ref.ACTIVATION_SPECS[name]
    for fn in (getattr(ref, name), getattr(ref, f"backprop_{name}")):
        kw = {p.name: p.default for p in inspect.signature(fn).parameters.values()
              if p.kind is p.KEYWORD_ONLY}
        assert kw == spec.params, fn.__name__
    saved = list(inspect.signature(getattr(ref, f"backprop_{name}")).parameters)[1]
    assert saved == ("x" if spec.needs_input else "y")


def test_derived_names_follow_the_table():
    assert ref.ACTIVATIONS_NEEDING_INPUT == tuple(
        n for n in ref.ACTIVATIONS
        if list(inspect.signature(getattr(ref, f"backprop_{n}")).parameters)[1] == "x")
    assert "gelu" in ref.ACTIVATIONS_NEEDING_INPUT and "relu" not in ref.ACTIVATIONS_NEEDING_INPUT
    assert checks.ACTIVATIONS is ref.ACTIVATIONS
    assert ref.ACTIVATION_KERNELS[:len(ref.ACTIVATIONS)] == ref.ACTIVATIONS


@pytest.mark.parametrize("name", ref.ACTIVATIONS)
def test_default_param_is_each_activations_real_default(name):
    """The one real parameter a compiled activation takes, at its default (0.0 when it
    has none): what the fused dense passes apply."""
    real = [v for v in ref.ACTIVATION_SPECS[name].params.values() if not isinstance(v, bool)]
    if name == "relu":      # three parameters; at their defaults the plain relu kernel
        assert ref.ACTIVATION_SPECS[name].params == {
            "negative_slope": 0.0, "max_value": None, "threshold": 0.0}
        real = []
    assert len(real) <= 1
    assert ref.ACTIVATION_DEFAULT_PARAM[name] == (real[0] if real else 0.0)
    assert ref.ACTIVATION_DEFAULT_PARAM["leaky_relu"] == 0.2     # Keras's defaults
    assert ref.ACTIVATION_DEFAULT_PARAM["elu"] == 1.0


def test_the_tables_are_read_only():
    with pytest.raises(TypeError):
        ref.ACTIVATION_SPECS["relu"] = ref.ACTIVATION_SPECS["tanh"]
    with pytest.raises(TypeError):
        ref.ACTIVATION_SPECS["elu"].params["alpha"] = 2.0


def test_cython_activation_enum_numbers_the_reference_table():
    assert elementwise.ACTIVATION_IDS == ACTIVATION_IDS
    assert elementwise.ACTIVATION_COUNT == len(ref.ACTIVATION_KERNELS)


def test_cuda_activation_ids_number_the_reference_table():
    from kernels.cuda import elementwise as cuda_elementwise
    assert cuda_elementwise.ACT == ACTIVATION_IDS
    assert cuda_elementwise._DEFAULT_PARAM is ref.ACTIVATION_DEFAULT_PARAM


def test_dl_activations_are_the_reference_table():
    assert set(dl.activations.ACTIVATIONS) == set(ref.ACTIVATIONS)
    for name, spec in ref.ACTIVATION_SPECS.items():
        act = dl.activations.get(name)
        assert act.params == spec.params
        assert act.needs_input == spec.needs_input
        assert act.is_default
        assert getattr(dl.activations, name) == act


# ------------------------------------------------------------------------- losses

def test_loss_kernels_are_reference_kernels_with_a_backprop():
    for name in ref.LOSS_KERNELS:
        base = name.removesuffix("_logits")
        assert base in ref.__all__ and f"backprop_{base}" in ref.__all__
        if name.endswith("_logits"):
            assert "from_logits" in inspect.signature(getattr(ref, base)).parameters


def test_cython_loss_enum_numbers_the_reference_table():
    assert losses.LOSS_IDS == LOSS_IDS
    assert losses.LOSS_COUNT == len(ref.LOSS_KERNELS)


def test_cuda_loss_ids_number_the_reference_table():
    from kernels.cuda import losses as cuda_losses
    assert cuda_losses.LOSS_IDS == LOSS_IDS
    assert (cuda_losses.MSE, cuda_losses.MAE, cuda_losses.HUBER, cuda_losses.BCE,
            cuda_losses.BCE_LOGITS) == (0, 1, 2, 3, 4)
    assert cuda_losses.EPSILON == ref.EPSILON


# ----------------------------------------------------------------- Adam's step size

@pytest.mark.parametrize("step", [1, 2, 10, 1000])
def test_adam_step_size_is_the_one_every_path_uses(step):
    lr, b1, b2 = 0.01, 0.9, 0.999
    expected = lr * math.sqrt(1 - b2 ** step) / (1 - b1 ** step)
    assert ref.adam_step_size(lr, b1, b2, step) == expected
    w = np.ones(3)
    alpha = checks.adam_args(w, np.ones(3), np.zeros(3), np.zeros(3), step, lr, b1, b2,
                             1e-7, False, None, 0.0)[0]
    assert alpha == expected


def test_unchecked_adam_takes_the_reference_step_size(monkeypatch):
    cy = kernels.get_backend("cython")
    seen = []
    real = ref.adam_step_size
    monkeypatch.setattr(ref, "adam_step_size", lambda *a: seen.append(a) or real(*a))
    w, g = np.ones(4), np.full(4, 0.5)
    m, v = np.zeros(4), np.zeros(4)
    cy.unchecked(np.float64).adam_update(w, g, m, v, 3, 0.01, 0.9, 0.999, 1e-7, False,
                                         None, 0.0)
    assert seen == [(0.01, 0.9, 0.999, 3)]


# ------------------------------------------------------------------- docstrings

@pytest.mark.parametrize("backend", ["cython", "cuda"])
def test_twins_take_their_docstrings_from_the_reference(backend):
    b = kernels.get_backend(backend)
    for name in ref.__all__:
        doc = getattr(b, name).__doc__ or ""
        assert doc.splitlines()[0].endswith(f"twin of kernels.reference.{name}.")
        assert doc.endswith(getattr(ref, name).__doc__)
