"""The validated-once training step (dl._fast): fit's steps after the first of each
batch shape run through the cython backend's unchecked entry points.

Checked here: the same numbers, bit for bit, as the public kernels at every step
(weights, optimizer state, loss history) over the losses, optimizers, activations and
options the plan covers; that it is used (one public-kernel call per batch shape), and
not used where it must not be; that a change made by a callback mid-fit sends the step
back through the public kernels; and that the public kernels still validate every call.
"""
import numpy as np
import pytest

import dl
import kernels
from dl import _fast
from dl_helpers import restore_dl_state  # noqa: F401  (autouse fixture)

pytestmark = pytest.mark.skipif("cython" not in kernels.available_backends(),
                                reason="the cython backend is not built")


@pytest.fixture
def cy():
    return kernels.get_backend("cython")


@pytest.fixture
def checked_only(cy, monkeypatch):
    """Within the block: the cython backend offers no unchecked entry points, so every
    step calls the public kernels (what the plan must reproduce)."""
    import contextlib

    @contextlib.contextmanager
    def block():
        with monkeypatch.context() as m:
            m.setattr(cy, "unchecked", None)
            yield
    return block


def _data(n=37, n_in=5, n_out=3, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, n_in)).astype(dtype)
    y = rng.random((n, n_out)).astype(dtype)
    return x, y


def _model(hidden=("tanh",), out_act=None, n_in=5, n_out=3, seed=3, **dense):
    dl.utils.set_random_seed(seed)
    layers = [dl.layers.Dense(4, activation=a, input_shape=(n_in,) if i == 0 else None,
                              **dense) for i, a in enumerate(hidden)]
    layers.append(dl.layers.Dense(n_out, activation=out_act,
                                  input_shape=None if hidden else (n_in,)))
    return dl.Sequential(layers, backend="cython")


def _state(model):
    opt = model.optimizer
    return (model.get_weights(), opt.get_state() if opt.built else [],
            model.history.history)


def _assert_same(a, b):
    wa, sa, ha = a
    wb, sb, hb = b
    assert len(wa) == len(wb) and len(sa) == len(sb)
    for u, v in zip(wa + sa, wb + sb):
        np.testing.assert_array_equal(u, v)
    assert ha == hb


def _fresh(compile_kwargs):
    """The compile arguments with new optimizer, loss and metric objects (an optimizer
    keeps its state: each run needs its own)."""
    fresh = {}
    for key, value in compile_kwargs.items():
        if key == "metrics":
            value = list(value)
        elif not isinstance(value, str):
            value = type(value).from_config(value.get_config())
        fresh[key] = value
    return fresh


def _run(build, fit_kwargs, x, y, checked_only, compile_kwargs):
    results = []
    for fast in (False, True):
        model = build()
        model.compile(**_fresh(compile_kwargs))
        if fast:
            model.fit(x, y, **fit_kwargs)
        else:
            with checked_only():
                model.fit(x, y, **fit_kwargs)
        results.append(_state(model))
    _assert_same(*results)


CASES = [
    # (model kwargs, compile kwargs)
    (dict(hidden=()), dict(optimizer="sgd", loss="mse")),
    (dict(hidden=("relu", "tanh")), dict(optimizer="adam", loss="mse")),
    (dict(hidden=("gelu",)), dict(optimizer=dl.optimizers.Adam(amsgrad=True), loss="mae")),
    (dict(hidden=("elu", "leaky_relu")), dict(optimizer="adamw", loss="huber")),
    (dict(hidden=("softplus",), out_act="sigmoid"),
     dict(optimizer=dl.optimizers.RMSprop(momentum=0.5, centered=True),
          loss="binary_crossentropy")),
    (dict(hidden=("sigmoid",)),
     dict(optimizer="adagrad", loss=dl.losses.BinaryCrossentropy(from_logits=True))),
    (dict(hidden=("relu",), out_act="sigmoid"),
     dict(optimizer=dl.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
          loss="categorical_crossentropy")),
    (dict(hidden=("tanh",), out_act="softmax"),     # softmax with MSE: not fused
     dict(optimizer=dl.optimizers.SGD(0.1, momentum=0.5), loss="mse",
          metrics=["mae", "mse"])),
    (dict(hidden=("relu",)),
     dict(optimizer=dl.optimizers.Adam(clipnorm=0.01, weight_decay=0.1), loss="mse")),
    (dict(hidden=("relu",)),
     dict(optimizer=dl.optimizers.SGD(global_clipnorm=0.01), loss="mse")),
    (dict(hidden=("relu",), kernel_regularizer="l2", bias_regularizer="l1"),
     dict(optimizer=dl.optimizers.RMSprop(clipvalue=0.001), loss="mse")),
    (dict(hidden=("relu",), use_bias=False), dict(optimizer="sgd", loss="mse")),
    # softmax + categorical cross-entropy: fused, the loss reads the logits
    (dict(hidden=("relu",), out_act="softmax"),
     dict(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])),
    (dict(hidden=("tanh", "relu"), out_act="softmax"),
     dict(optimizer="rmsprop", loss="sparse_categorical_crossentropy",
          metrics=["accuracy"])),
    (dict(hidden=("relu",), out_act="softmax", use_bias=False),
     dict(optimizer=dl.optimizers.SGD(0.1, momentum=0.9),
          loss="sparse_categorical_crossentropy")),
    # sparse labels, not fused: from logits, and from probabilities of a sigmoid
    (dict(hidden=("relu",)),
     dict(optimizer="adam", loss=dl.losses.SparseCategoricalCrossentropy(from_logits=True),
          metrics=["sparse_categorical_accuracy"])),
    (dict(hidden=("elu",), out_act="sigmoid"),
     dict(optimizer="sgd", loss="sparse_categorical_crossentropy")),
]


def _targets(compile_kwargs, y):
    """y, or class labels (int64, from y's argmax) for a sparse loss."""
    loss = compile_kwargs["loss"]
    name = loss if isinstance(loss, str) else loss.name
    return np.argmax(y, axis=1) if name.startswith("sparse") else y


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("shuffle", [False, True])
def test_same_numbers_as_the_public_kernels(case, shuffle, checked_only):
    model_kwargs, compile_kwargs = CASES[case]
    x, y = _data()
    y = _targets(compile_kwargs, y)
    # 37 samples in batches of 8: four full batches and a partial one (two plans)
    _run(lambda: _model(**model_kwargs), dict(epochs=4, batch_size=8, shuffle=shuffle,
                                             verbose=0), x, y, checked_only, compile_kwargs)


def test_same_numbers_float64_and_a_frozen_first_layer(checked_only):
    x, y = _data(dtype=np.float64)

    def build():
        model = _model(hidden=("tanh", "relu"), dtype="float64")
        model.layers[0].trainable = False
        return model
    _run(build, dict(epochs=3, batch_size=16, verbose=0), x, y, checked_only,
         dict(optimizer="adam", loss="mse"))


def test_seed_program_same_numbers(checked_only):
    x = np.array([[1, 2], [2, 3], [3, 4], [4, 5]])
    y = np.array([1, 2, 3, 4])

    def build():
        dl.utils.set_random_seed(0)
        return dl.Sequential([dl.layers.Dense(1, input_shape=(2,))], backend="cython")
    _run(build, dict(epochs=300, verbose=0), x, y, checked_only,
         dict(optimizer="sgd", loss="mean_squared_error"))


def _count_public(cy, monkeypatch, names=("dense_forward", "dense_backward",
                                          "mean_squared_error", "sgd_update")):
    calls = {name: 0 for name in names}
    for name in names:
        original = getattr(cy, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)
        monkeypatch.setattr(cy, name, counted)
    return calls


def test_public_kernels_run_once_per_batch_shape(cy, monkeypatch):
    calls = _count_public(cy, monkeypatch)
    x, y = _data(n=20)
    model = _model(hidden=())
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, epochs=5, batch_size=8, verbose=0)   # batches of 8, 8 and 4 rows
    assert calls == {"dense_forward": 2, "dense_backward": 2, "mean_squared_error": 2,
                     "sgd_update": 4}
    assert model.optimizer.iterations == 15


def test_fused_and_sparse_losses_run_the_plan(cy, monkeypatch):
    """The fused softmax losses and sparse labels: public kernels on the first step
    only, as for the other losses."""
    calls = _count_public(cy, monkeypatch, ("dense_forward", "sparse_softmax_crossentropy",
                                            "softmax_crossentropy"))
    x, y = _data(n=16)
    for loss, targets, kernel in (
            ("categorical_crossentropy", y, "softmax_crossentropy"),
            ("sparse_categorical_crossentropy", np.arange(16) % 3,
             "sparse_softmax_crossentropy")):
        before = dict(calls)
        model = _model(out_act="softmax")
        model.compile(optimizer="adam", loss=loss)
        model.fit(x, targets, epochs=5, batch_size=8, verbose=0)
        assert calls["dense_forward"] - before["dense_forward"] == 2
        assert calls[kernel] - before[kernel] == 1
        assert model.optimizer.iterations == 10


@pytest.mark.parametrize("backend", ["numpy", "cython"])
def test_labels_changed_by_a_callback_mid_fit_do_not_reach_the_step(backend):
    """fit trains on its own copy of the (range-checked) class labels: a callback that
    overwrites the caller's array, even with labels out of range, changes nothing."""
    x, y = _data(n=24)
    labels = np.argmax(y, axis=1)

    def run(callbacks):
        dl.utils.set_random_seed(1)
        model = dl.Sequential([dl.layers.Dense(4, activation="relu", input_shape=(5,)),
                               dl.layers.Dense(3, activation="softmax")], backend=backend)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, mine, epochs=3, batch_size=8, verbose=0, callbacks=callbacks)
        return model.get_weights(), model.history.history

    mine = labels.copy()
    expected = run([])

    def vandal(batch, logs):
        mine[:] = 10 ** 6 if batch % 2 else -5
    mine = labels.copy()
    got = run([dl.callbacks.LambdaCallback(on_train_batch_end=vandal)])
    assert (mine != labels).all()       # the callback did overwrite them
    for a, b in zip(expected[0], got[0]):
        np.testing.assert_array_equal(a, b)
    assert expected[1] == got[1]


def test_no_plan_where_it_does_not_apply(cy, monkeypatch):
    calls = _count_public(cy, monkeypatch, ("dense_forward",))
    x, y = _data(n=8)
    steps = 4
    # a Dropout layer, TerminateOnNaN
    models = []
    dl.utils.set_random_seed(0)
    models.append((dl.Sequential([dl.layers.Dense(4, input_shape=(5,)),
                                  dl.layers.Dropout(0.5), dl.layers.Dense(3)],
                                 backend="cython"), dict(loss="mse"), y, []))
    models.append((_model(), dict(loss="mse"), y, [dl.callbacks.TerminateOnNaN()]))
    for model, compile_kwargs, targets, callbacks in models:
        before = calls["dense_forward"]
        model.compile(optimizer="sgd", **compile_kwargs)
        model.fit(x, targets, epochs=steps, batch_size=8, verbose=0, callbacks=callbacks)
        per_step = sum(isinstance(layer, dl.layers.Dense) for layer in model.layers)
        assert calls["dense_forward"] - before == steps * per_step, model.layers


def test_no_plan_on_other_backends():
    for name in ("numpy",):
        backend = kernels.get_backend(name)
        assert backend.unchecked is None
    x, y = _data(n=8)
    dl.utils.set_random_seed(0)
    model = dl.Sequential([dl.layers.Dense(3, input_shape=(5,))], backend="numpy")
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, epochs=3, verbose=0)
    assert model.optimizer.iterations == 3


def test_unchecked_only_for_float_dtypes(cy):
    assert cy.unchecked(np.float32).dtype == np.float32
    assert cy.unchecked("float64").dtype == np.float64
    assert cy.unchecked(np.int64) is None
    assert cy.unchecked(np.float16) is None


def test_a_callback_changing_the_model_mid_fit(checked_only):
    """A learning-rate schedule, a frozen layer and a new loss object during fit: each
    change sends that step through the public kernels, and the run matches a run
    that never left them."""
    x, y = _data()

    def on_epoch_begin(epoch, logs, model):
        model.optimizer.learning_rate = 0.1 / (epoch + 1)
        if epoch == 2:
            model.layers[0].trainable = False
        if epoch == 3:
            model.loss = dl.losses.Huber(delta=0.5)
        if epoch == 4:
            model.layers[0].trainable = True

    results = []
    for fast in (False, True):
        model = _model(hidden=("relu",))
        model.compile(optimizer="sgd", loss="mse")  # no state: layers can be frozen
        cb = dl.callbacks.LambdaCallback(
            on_epoch_begin=lambda e, logs, m=model: on_epoch_begin(e, logs, m))
        kwargs = dict(epochs=6, batch_size=8, verbose=0, callbacks=[cb])
        if fast:
            model.fit(x, y, **kwargs)
        else:
            with checked_only():
                model.fit(x, y, **kwargs)
        results.append(_state(model))
    _assert_same(*results)


def test_a_model_changing_every_step_stays_on_the_public_kernels(checked_only,
                                                                  monkeypatch):
    """A learning rate set before every batch: each plan would go stale before its
    first use, so fit stops building them; the numbers match a run without plans."""
    builds = []
    original = _fast.FastStep.build.__func__

    def counted(cls, *args):
        builds.append(args[-1])
        return original(cls, *args)
    monkeypatch.setattr(_fast.FastStep, "build", classmethod(counted))
    x, y = _data()
    results = []
    for fast in (False, True):
        builds.clear()
        model = _model(hidden=("relu",))
        model.compile(optimizer="adam", loss="mse")
        cb = dl.callbacks.LambdaCallback(
            on_train_batch_begin=lambda b, logs, m=model: setattr(
                m.optimizer, "learning_rate", 0.01 / (m.optimizer.iterations + 1)))
        kwargs = dict(epochs=5, batch_size=8, verbose=0, callbacks=[cb])
        if fast:
            model.fit(x, y, **kwargs)
            assert builds == [8, 5]      # once per batch shape, never rebuilt
        else:
            with checked_only():
                model.fit(x, y, **kwargs)
        results.append(_state(model))
    _assert_same(*results)


def test_an_invalid_hyper_parameter_set_mid_fit_is_still_rejected():
    x, y = _data()
    model = _model()
    model.compile(optimizer="sgd", loss="mse")

    def breaks(epoch, logs):
        if epoch == 2:
            model.optimizer.learning_rate = float("nan")
    cb = dl.callbacks.LambdaCallback(on_epoch_begin=breaks)
    with pytest.raises(ValueError, match="learning_rate"):
        model.fit(x, y, epochs=4, batch_size=8, verbose=0, callbacks=[cb])


def test_a_weight_array_rebound_mid_fit_is_validated(checked_only):
    """Rebinding a layer's kernel to an array of another shape: the plan notices and the
    public kernel rejects it, as on a run without plans."""
    x, y = _data()
    for fast in (False, True):
        model = _model(hidden=())
        model.compile(optimizer="sgd", loss="mse")

        def rebinds(epoch, logs, model=model):
            if epoch == 2:
                model.layers[0].kernel = np.zeros((4, 3), np.float32)
        cb = dl.callbacks.LambdaCallback(on_epoch_begin=rebinds)
        with pytest.raises(ValueError, match="w: expected 5 rows"):
            if fast:
                model.fit(x, y, epochs=4, batch_size=8, verbose=0, callbacks=[cb])
            else:
                with checked_only():
                    model.fit(x, y, epochs=4, batch_size=8, verbose=0, callbacks=[cb])


def test_data_sharing_memory_with_a_gradient_is_rejected():
    """x viewing a gradient array that the step writes: the first (checked) step
    refuses it, so no plan is ever built on it."""
    model = _model(hidden=(), n_in=3, n_out=2)
    model.compile(optimizer="sgd", loss="mse")
    x = model.layers[0].d_kernel.reshape(2, 3)
    with pytest.raises(ValueError, match="share memory"):
        model.fit(x, np.zeros((2, 2), np.float32), epochs=3, verbose=0)


def test_plan_refuses_data_overlapping_what_it_writes(cy):
    x, y = _data(n=8, n_in=3)
    model = _model(hidden=(), n_in=3)
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    plan = _fast.FastStep.build(model, cy, x, y, None, 8)
    assert plan is not None and plan.current()
    out = model.layers[0]._buffers[("y", (8, 3))]
    assert _fast.FastStep.build(model, cy, out, y, None, 8) is None
    assert _fast.FastStep.build(model, cy, x, out, None, 8) is None
    assert _fast.FastStep.build(model, cy, x, np.asfortranarray(y), None, 8) is None
    w = np.ones(8, np.float32)
    assert _fast.FastStep.build(model, cy, x, y, w, 8) is not None
    assert _fast.FastStep.build(model, cy, x, y, out[:, 0], 8) is None     # strided
    assert _fast.FastStep.build(model, cy, x, y, out.reshape(-1)[:8], 8) is None  # written
    assert _fast.FastStep.build(model, cy, x, y, w.astype(np.float64), 8) is None


def test_plan_holds_its_own_views(cy):
    """Changing a weight array's shape in place cannot make the plan's kernels read or
    write outside the validated arrays: the plan passes views of its own."""
    x, y = _data(n=8)
    model = _model(hidden=())
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    plan = _fast.FastStep.build(model, cy, x, y, None, 8)
    kernel = model.layers[0].kernel
    kernel.shape = (3, 5)
    plan.run(x, y)
    assert plan.steps[0].kernel.shape == (5, 3)
    kernel.shape = (5, 3)


def test_public_kernels_still_validate_every_call(cy):
    """After fits that used the unchecked entry points, the public kernels reject
    what they always rejected."""
    x, y = _data(n=8)
    model = _model(hidden=())
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, epochs=3, verbose=0)
    w = np.ones((5, 3), np.float32)
    with pytest.raises(ValueError, match="w: expected 5 rows"):
        cy.dense_forward(x, np.ones((4, 3), np.float32))
    with pytest.raises(TypeError, match="dtype"):
        cy.dense_forward(x, w.astype(np.float64))
    out = np.empty((8, 3), np.float32)
    with pytest.raises(ValueError, match="share memory"):
        cy.gemm(out, np.ones((3, 3), np.float32), out=out)
    with pytest.raises(ValueError, match="learning_rate"):
        cy.sgd_update(w, w.copy(), learning_rate=float("nan"))
    with pytest.raises(ValueError, match="shape"):
        cy.mean_squared_error(np.ones((8, 2), np.float32), out)
    with pytest.raises(ValueError, match="must not share memory"):
        cy.sgd_update(w, w)
