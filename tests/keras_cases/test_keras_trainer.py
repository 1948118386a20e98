"""Keras 3's ``keras/src/trainers/trainer_test.py``, ported: the cases of
``TestTrainer`` that run fit / evaluate / predict / train_on_batch / test_on_batch /
predict_on_batch on NumPy arrays with a single-input, single-output model (our code,
Keras's facts).  Each test is named as its Keras method; a case split in parts says
so.

How Keras's objects map onto dl's:
- ``ExampleModel(units)`` (a Trainer mixed into ``Dense(units, use_bias=False,
  kernel_initializer=Ones())``) -> ``Sequential([Dense(units, use_bias=False,
  kernel_initializer="ones")])``: the same single layer, so the same numbers;
- the ``run_eagerly``/``jit_compile`` parametrizations are kept where Keras passes them
  to ``compile`` (dl accepts both and has no graph: they change nothing); where Keras
  sets them as attributes (``test_predict_flow``) or only on the cases that dl fails at
  once (steps_per_execution, steps_per_epoch), that axis is dropped;
- ``verbose=0`` where Keras leaves the progress bar on (nothing is asserted of it);
- ``x = np.random.rand(...)`` -> a seeded ``np.random.default_rng``;
- cases Keras writes with an infinite generator (``test_stop_loop``) or a subclassed
  model holding counter weights (``test_callbacks_can_update_state_at_batch_boundary``)
  are run on finite NumPy arrays and a plain Sequential, keeping the facts asserted
  (how many batches run, how many times each hook is called);
- ``test_for_eval_epoch_iterator`` checks a private Keras attribute; its dl form checks
  the behaviour around it: a fit whose validation_data is refused leaves the model
  fit for the next one.

Deliberately different: nothing of dl's behaviour is asserted against Keras's here;
where an error is expected only its type is asserted (dl's messages are its own).

Not ported (outside dl's surface): subclassed models and custom train/test/predict
steps or compute_loss (``test_metric_tracking``, ``test_fit_with_custom_train_step``,
``test_evaluate_with_custom_test_step``, ``test_training_arg``,
``test_internal_only_loss``, ``test_metric_update_in_compute_loss``,
``test_fwd_pass_loss_presence_in_compute_loss``,
``test_evaluate_with_custom_compute_loss``,
``test_compute_loss_no_training_backwards_compatibility``, ``test_symbolic_build``,
``test_rng_updated_during_predict``, ``test_nested_input_predict``); functional models,
nested trainers, multi-input or multi-output models (``test_nested_trainer_metrics``,
``test_nested_trainer_metrics_without_compile``, ``test_multiple_compiles``,
``test_predict_flow_struct``, ``test_nested_inputs``, the dict/list halves of
``test_loss_weights``, ``test_partial_loss_partial_label``,
``test_functional_layer_training_overrides_model_training_argument``,
``test_retracing``, ``test_retracing_predict``); datasets and generators (every
``test_fit_with_data_adapter`` case but ``np_array``, ``test_predict_preserve_order``,
``test_predict_generator``, ``test_steps_per_execution_steps_count_unknown_dataset_size``,
``test_steps_per_execution_steps_per_epoch_unknown_data_size``,
``test_validation_data_infinite_generator``,
``test_evaluate_fixed_batch_dim_graph_matches_eager``); sparse and ragged inputs
(``test_fit_sparse``, ``test_evaluate_sparse``, ``test_predict_sparse``,
``test_trainer_with_raggeds``); mixed precision (``test_adds_loss_scaling_optimizer``,
``test_loss_scaling_prevents_underflow``); backend-specific cases
(``test_compile_eager_vs_jit_torch``, ``test_fit_eval_flow_for_jax_model_weights``,
``test_steps_per_execution_unrolled_steps_steps_count``,
``test_jit_compile_with_tf_determinism``,
``JAXTrainerCorrectnessTest.test_jit_fit_with_out_shardings_logic``).  The
``native_array`` case of ``test_fit_with_data_adapter`` and the backend-tensor half of
``test_fit_with_val_split`` are the NumPy cases again for dl (its arrays are NumPy's).
"""
import numpy as np
import pytest

import dl
from dl import callbacks, layers, losses, metrics, optimizers


def close(actual, desired, atol=1e-6, rtol=1e-6):
    np.testing.assert_allclose(actual, desired, atol=atol, rtol=rtol)


def almost(actual, desired, decimal=3):      # Keras's TestCase.assertAlmostEqual
    np.testing.assert_almost_equal(actual, desired, decimal=decimal)


def example_model(units):
    """Keras's ExampleModel: one bias-free Dense layer with a kernel of ones."""
    return dl.Sequential([layers.Dense(units, use_bias=False, kernel_initializer="ones")])


def compile_sgd_mse(model, **kwargs):
    model.compile(optimizer=optimizers.SGD(), loss=losses.MeanSquaredError(),
                  metrics=[metrics.MeanSquaredError()], **kwargs)


class EpochAgnosticMeanSquaredError(metrics.MeanSquaredError):
    def __init__(self):
        super().__init__(name="mse")
        super().reset_state()

    def reset_state(self):
        # prevent reset at each starting epoch
        pass


class StepObserver(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.begin_count = 0
        self.end_count = 0
        self.epoch_begin_count = 0
        self.epoch_end_count = 0
        self.batch_loss_history = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_begin_count += 1

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_end_count += 1

    def on_batch_begin(self, batch, logs=None):
        self.begin_count += 1

    def on_batch_end(self, batch, logs=None):
        self.end_count += 1
        self.batch_loss_history.append(logs["mse"])


class StepCount(callbacks.Callback):
    def __init__(self, steps_per_execution=1):
        super().__init__()
        self.begin_count = 0
        self.end_count = 0
        self.epoch_begin_count = 0
        self.epoch_end_count = 0
        self.steps_per_execution = steps_per_execution

    def on_epoch_begin(self, epoch, logs=None):
        self.begin_count = 0
        self.end_count = 0
        self.epoch_begin_count += 1

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_end_count += 1

    def on_batch_begin(self, batch, logs=None):
        if batch != self.begin_count * self.steps_per_execution:
            raise ValueError("Batch index is not correct")
        self.begin_count += 1

    def on_batch_end(self, batch, logs=None):
        self.end_count += 1
        if batch != self.end_count * self.steps_per_execution - 1:
            raise ValueError("Batch index is not correct")




def flow_params(with_steps_per_epoch):
    """Keras's (name, run_eagerly, jit_compile, use_steps_per_epoch) parametrization."""
    base = [("eager", True, False), ("graph_fn", False, False), ("jit", False, True)]
    params = [pytest.param(e, j, False, id=name) for name, e, j in base]
    if with_steps_per_epoch:
        params += [pytest.param(e, j, True, id="steps_per_epoch_" + name,
                                ) for name, e, j in base]
    return params


COMPILE_MODES = [pytest.param(True, False, id="eager"), pytest.param(False, False, id="graph_fn"),
                 pytest.param(False, True, id="jit")]


# ================================== TestTrainer (each test named as its Keras method)
@pytest.mark.parametrize("run_eagerly, jit_compile, use_steps_per_epoch", flow_params(True))
def test_fit_flow(run_eagerly, jit_compile, use_steps_per_epoch):
    model = example_model(3)
    epochs, batch_size, steps_per_epoch = 3, 20, 7
    dataset_size = batch_size * (steps_per_epoch - 2)
    x = np.ones((dataset_size, 4))
    y = np.zeros((dataset_size, 3))
    compile_sgd_mse(model, run_eagerly=run_eagerly, jit_compile=jit_compile)
    history = model.fit(x, y, batch_size=batch_size,
                        steps_per_epoch=steps_per_epoch if use_steps_per_epoch else None,
                        epochs=epochs, verbose=0).history
    assert "loss" in history
    assert "mean_squared_error" in history
    close(history["mean_squared_error"], [14.5, 11.5, 8.5], atol=1.0)   # Keras's tolerance


def test_fit_with_data_adapter():                   # the "np_array" case
    model = example_model(3)
    model.compile(optimizer=optimizers.Adagrad(), loss=losses.MeanSquaredError(),
                  metrics=[metrics.MeanSquaredError()], jit_compile=True)
    x, y = np.ones((100, 4)), np.zeros((100, 3))
    model.fit(x, y, epochs=3, batch_size=5, verbose=0)


@pytest.mark.parametrize("run_eagerly, jit_compile, use_steps_per_epoch", flow_params(True))
def test_fit_with_val_split(run_eagerly, jit_compile, use_steps_per_epoch):
    model = example_model(3)
    epochs, batch_size, steps_per_epoch = 3, 20, 7
    dataset_size = batch_size * (steps_per_epoch - 2)
    x = np.ones((dataset_size, 4))
    y = np.zeros((dataset_size, 3))
    compile_sgd_mse(model, run_eagerly=run_eagerly, jit_compile=jit_compile)
    history = model.fit(x, y, batch_size=batch_size,
                        steps_per_epoch=steps_per_epoch if use_steps_per_epoch else None,
                        epochs=epochs, validation_split=0.2, verbose=0).history
    assert "loss" in history
    assert "val_loss" in history


@pytest.mark.parametrize("run_eagerly, jit_compile", COMPILE_MODES)
def test_evaluate_flow(run_eagerly, jit_compile):
    model = example_model(3)
    x, y = np.ones((100, 4)), np.zeros((100, 3))
    compile_sgd_mse(model, run_eagerly=run_eagerly, jit_compile=jit_compile)
    output = model.evaluate(x, y, batch_size=16, verbose=0)
    close(output, [16.0, 16.0])
    output = model.evaluate(x, y, batch_size=16, return_dict=True, verbose=0)
    assert isinstance(output, dict)
    assert "loss" in output
    assert "mean_squared_error" in output
    close(output["mean_squared_error"], 16.0)


def test_predict_flow():
    model = example_model(3)
    outputs = model.predict(np.ones((100, 4)), batch_size=16, verbose=0)
    close(outputs, 4 * np.ones((100, 3)))


@pytest.mark.parametrize("steps_per_execution", [3, 101])
def test_steps_per_execution_steps_count(steps_per_execution):
    data_size, batch_size, epochs = 100, 16, 2
    x, y = np.ones((data_size, 4)), np.ones((data_size, 1))
    model = example_model(1)
    model.compile(loss="mse", optimizer="sgd", steps_per_execution=steps_per_execution)
    step_count = StepCount(steps_per_execution)
    history = model.fit(x=x, y=y, batch_size=batch_size, epochs=epochs,
                        callbacks=[step_count], verbose=0)
    assert step_count.begin_count == 1 + (data_size - 1) // (steps_per_execution * batch_size)
    assert step_count.end_count == step_count.begin_count
    assert step_count.epoch_begin_count == epochs
    assert step_count.epoch_end_count == step_count.epoch_begin_count

    model_2 = example_model(1)
    model_2.compile(loss="mse", optimizer="sgd", steps_per_execution=1)
    history_2 = model_2.fit(x=x, y=y, batch_size=batch_size, epochs=epochs, verbose=0)
    close(history.history["loss"], history_2.history["loss"])
    for w, w_2 in zip(model.get_weights(), model_2.get_weights()):
        close(w, w_2)
    close(model.predict(x, batch_size=batch_size, verbose=0),
          model_2.predict(x, batch_size=batch_size, verbose=0))
    close(model.evaluate(x, y, verbose=0), model_2.evaluate(x, y, verbose=0))


SPE_CASES = ["match_one_epoch", "match_multi_epoch", "not_match_too_low",
             "not_match_but_high_enough"]


def compare_with_plain_fit(model, observer, x, y, batch_size, epochs_2, every=1):
    """The second half of Keras's steps-per-epoch tests: the same losses, weights,
    predictions and evaluation as a plain fit of ``epochs_2`` epochs."""
    model_2 = example_model(1)
    model_2.compile(loss="mse", optimizer="sgd", metrics=[EpochAgnosticMeanSquaredError()],
                    steps_per_execution=1)
    observer_2 = StepObserver()
    model_2.fit(x=x, y=y, batch_size=batch_size, epochs=epochs_2, callbacks=[observer_2],
                verbose=0)
    close(observer.batch_loss_history, observer_2.batch_loss_history[every - 1::every])
    for w, w_2 in zip(model.get_weights(), model_2.get_weights()):
        close(w, w_2)
    close(model.predict(x, batch_size=batch_size, verbose=0),
          model_2.predict(x, batch_size=batch_size, verbose=0))
    close(model.evaluate(x, y, verbose=0), model_2.evaluate(x, y, verbose=0))


@pytest.mark.parametrize("steps_per_epoch_test", SPE_CASES)
def test_steps_per_execution_steps_per_epoch(steps_per_epoch_test):
    batch_size, epochs, steps_per_execution = 8, 2, 2
    num_batches = 5 * steps_per_execution
    data_size = num_batches * batch_size
    steps_per_epoch = {"match_one_epoch": num_batches,
                       "match_multi_epoch": num_batches // steps_per_execution,
                       "not_match_too_low": num_batches - steps_per_execution,
                       "not_match_but_high_enough": num_batches + steps_per_execution,
                       }[steps_per_epoch_test]
    x, y = np.ones((data_size, 4)), np.ones((data_size, 1))
    model = example_model(1)
    model.compile(loss="mse", optimizer="sgd", metrics=[EpochAgnosticMeanSquaredError()],
                  steps_per_execution=steps_per_execution)
    step_observer = StepObserver()
    model.fit(x=x, y=y, batch_size=batch_size, epochs=epochs,
              steps_per_epoch=steps_per_epoch, callbacks=[step_observer], verbose=0)
    if steps_per_epoch_test != "not_match_too_low":
        training_batch_count = epochs * min(steps_per_epoch, num_batches) // steps_per_execution
    else:
        complete_epochs = (num_batches // steps_per_execution) // (
            steps_per_epoch // steps_per_execution)
        remaining_steps = (num_batches // steps_per_execution) % (
            steps_per_epoch // steps_per_execution)
        steps_cycles = [complete_epochs * steps_per_epoch // steps_per_execution,
                        remaining_steps] * epochs
        training_batch_count = sum(steps_cycles[:epochs])
    assert step_observer.begin_count == training_batch_count
    assert step_observer.end_count == step_observer.begin_count
    assert step_observer.epoch_begin_count == epochs
    assert step_observer.epoch_end_count == step_observer.epoch_begin_count
    if steps_per_epoch_test != "not_match_too_low":
        epochs_2 = epochs if steps_per_epoch_test in ("not_match_but_high_enough",
                                                      "match_one_epoch") else 1
        compare_with_plain_fit(model, step_observer, x, y, batch_size, epochs_2,
                               every=steps_per_execution)


@pytest.mark.parametrize("steps_per_epoch_test", SPE_CASES)
def test_steps_per_epoch(steps_per_epoch_test):
    batch_size, epochs, num_batches = 8, 4, 10
    data_size = num_batches * batch_size
    steps_per_epoch = {"match_one_epoch": num_batches,
                       "match_multi_epoch": num_batches // (epochs // 2),
                       "not_match_too_low": num_batches - 1,
                       "not_match_but_high_enough": num_batches + 1,
                       }[steps_per_epoch_test]
    x, y = np.ones((data_size, 4)), np.ones((data_size, 1))
    model = example_model(1)
    model.compile(loss="mse", optimizer="sgd", metrics=[EpochAgnosticMeanSquaredError()])
    step_observer = StepObserver()
    model.fit(x=x, y=y, batch_size=batch_size, epochs=epochs,
              steps_per_epoch=steps_per_epoch, callbacks=[step_observer], verbose=0)
    if steps_per_epoch_test != "not_match_too_low":
        training_batch_count = epochs * min(steps_per_epoch, num_batches)
    else:
        complete_epochs = num_batches // steps_per_epoch
        remaining_steps = num_batches % steps_per_epoch
        steps_cycles = [complete_epochs * steps_per_epoch, remaining_steps] * epochs
        training_batch_count = sum(steps_cycles[:epochs])
    assert step_observer.begin_count == training_batch_count
    assert step_observer.end_count == step_observer.begin_count
    assert step_observer.epoch_begin_count == epochs
    assert step_observer.epoch_end_count == step_observer.epoch_begin_count
    if steps_per_epoch_test != "not_match_too_low":
        if steps_per_epoch_test == "match_multi_epoch":
            epochs_2 = epochs // (num_batches // steps_per_epoch)
        else:
            epochs_2 = epochs
        compare_with_plain_fit(model, step_observer, x, y, batch_size, epochs_2)


def max_epochs_setup():
    batch_size, epochs, num_batches = 8, 4, 10
    x, y = np.ones((num_batches * batch_size, 4)), np.ones((num_batches * batch_size, 1))
    model = example_model(1)
    model.compile(loss="mse", optimizer="sgd", metrics=[EpochAgnosticMeanSquaredError()])
    return model, x, y, batch_size, epochs, num_batches


def test_max_epochs_and_steps():                    # part 1: no limits set
    model, x, y, batch_size, epochs, num_batches = max_epochs_setup()
    step_observer = StepObserver()
    model.fit(x=x, y=y, batch_size=batch_size, epochs=epochs, callbacks=[step_observer],
              verbose=0)
    assert step_observer.epoch_begin_count == epochs
    assert step_observer.begin_count == num_batches * epochs


def test_max_epochs_and_steps_limits():             # test_max_epochs_and_steps, part 2
    model, x, y, batch_size, epochs, _ = max_epochs_setup()
    try:
        dl.config.set_max_epochs(2)
        dl.config.set_max_steps_per_epoch(3)
        step_observer = StepObserver()
        model.fit(x=x, y=y, batch_size=batch_size, epochs=epochs, callbacks=[step_observer],
                  verbose=0)
        assert step_observer.epoch_begin_count == 2
        assert step_observer.begin_count == 6
    finally:
        if hasattr(dl.config, "set_max_epochs"):
            dl.config.set_max_epochs(None)
            dl.config.set_max_steps_per_epoch(None)


def test_steps_per_execution_steps_count_without_training():
    class BatchIndexes(callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.test_count = 0
            self.predict_count = 0
            self.batches = [0, 3, 6]

        def on_test_batch_begin(self, batch, logs=None):
            assert batch == self.batches[self.test_count]
            self.test_count += 1

        def on_predict_batch_begin(self, batch, logs=None):
            assert batch == self.batches[self.predict_count]
            self.predict_count += 1

    x, y = np.ones((100, 4)), np.ones((100, 1))
    model = example_model(1)
    model.compile(loss="mse", steps_per_execution=3)
    step_count = BatchIndexes()
    model.predict(x, batch_size=16, callbacks=[step_count], verbose=0)
    assert step_count.predict_count == 3
    model.evaluate(x, y, batch_size=16, callbacks=[step_count], verbose=0)
    assert step_count.test_count == 3


def test_fit_with_different_batch_size_same_loss():
    rng = np.random.default_rng(0)
    x, y = rng.random((100, 4)), np.ones((100, 1))
    model = example_model(1)
    model.trainable = False
    model.compile(loss="mse")
    loss1 = model.fit(x, y, batch_size=80, verbose=0).history["loss"]
    loss2 = model.fit(x, y, batch_size=100, verbose=0).history["loss"]
    close(loss1, loss2)


def test_evaluate_with_different_batch_size_same_loss():
    rng = np.random.default_rng(0)
    x, y = rng.random((100, 4)), np.ones((100, 1))
    model = example_model(1)
    model.compile(loss="mse")
    loss1 = model.evaluate(x, y, batch_size=80, verbose=0)
    loss2 = model.evaluate(x, y, batch_size=100, verbose=0)
    close(loss1, loss2)


X100, Y100 = np.ones((100, 4)), np.zeros((100, 3))
SW100 = np.arange(100).reshape((100,)).astype("float32") / 50.0


@pytest.mark.parametrize("run_eagerly, jit_compile", COMPILE_MODES)
def test_on_batch_methods(run_eagerly, jit_compile):
    model = example_model(3)
    compile_sgd_mse(model, run_eagerly=run_eagerly, jit_compile=jit_compile)
    logs = model.train_on_batch(X100, Y100)
    assert isinstance(logs, list)
    assert len(logs) == 2
    almost(logs[0], 16.0)

    logs = model.train_on_batch(X100, Y100, return_dict=True)
    assert isinstance(logs, dict)
    assert len(logs) == 2
    almost(logs["loss"], 15.158)

    logs = model.test_on_batch(X100, Y100)
    assert isinstance(logs, list)
    assert len(logs) == 2
    almost(logs[0], 14.360)

    logs = model.test_on_batch(X100, Y100, return_dict=True)
    assert isinstance(logs, dict)
    assert len(logs) == 2
    almost(logs["loss"], 14.360)

    output = model.predict_on_batch(X100)
    assert isinstance(output, np.ndarray)
    close(output[0], np.array([3.789511, 3.789511, 3.789511]))

    # With sample weights
    logs = model.train_on_batch(X100, Y100, SW100)
    almost(logs[0], 14.217)
    logs = model.test_on_batch(X100, Y100, SW100)
    almost(logs[0], 13.476)
    output = model.predict_on_batch(X100)
    close(output[0], np.array([3.689468, 3.689468, 3.689468]))

    # With class weights
    logs = model.train_on_batch(X100, Y100, class_weight={1: 0.3, 0: 0.2})
    almost(logs[0], 2.722)


def test_on_batch_methods_per_batch():              # test_on_batch_methods, metrics reset
    # Keras's sequence and numbers, with reset_metrics() before each train_on_batch:
    # what Keras 3's train_on_batch does itself.
    model = example_model(3)
    compile_sgd_mse(model)
    model.reset_metrics()
    logs = model.train_on_batch(X100, Y100)
    assert isinstance(logs, list) and len(logs) == 2
    almost(logs[0], 16.0)
    model.reset_metrics()
    logs = model.train_on_batch(X100, Y100, return_dict=True)
    assert isinstance(logs, dict) and len(logs) == 2
    almost(logs["loss"], 15.158)
    logs = model.test_on_batch(X100, Y100)
    assert isinstance(logs, list) and len(logs) == 2
    almost(logs[0], 14.360)
    logs = model.test_on_batch(X100, Y100, return_dict=True)
    assert isinstance(logs, dict) and len(logs) == 2
    almost(logs["loss"], 14.360)
    output = model.predict_on_batch(X100)
    assert isinstance(output, np.ndarray)
    close(output[0], np.array([3.789511, 3.789511, 3.789511]))

    model.reset_metrics()
    logs = model.train_on_batch(X100, Y100, SW100)
    almost(logs[0], 14.217)
    logs = model.test_on_batch(X100, Y100, SW100)
    almost(logs[0], 13.476)
    close(model.predict_on_batch(X100)[0], np.array([3.689468, 3.689468, 3.689468]))

    model.reset_metrics()
    logs = model.train_on_batch(X100, Y100, class_weight={1: 0.3, 0: 0.2})
    almost(logs[0], 2.722)


@pytest.mark.parametrize("run_eagerly, jit_compile", COMPILE_MODES)
def test_on_batch_methods_without_training(run_eagerly, jit_compile):
    model = example_model(3)
    model.compile(loss=losses.MeanSquaredError(), metrics=[metrics.MeanSquaredError()],
                  run_eagerly=run_eagerly, jit_compile=jit_compile)
    output = model.predict_on_batch(X100)
    assert isinstance(output, np.ndarray)
    close(output[0], np.array([4.0, 4.0, 4.0]))

    logs = model.test_on_batch(X100, Y100)
    assert isinstance(logs, list)
    assert len(logs) == 2
    almost(logs[0], 16.0)

    logs = model.test_on_batch(X100, Y100, return_dict=True)
    assert isinstance(logs, dict)
    assert len(logs) == 2
    almost(logs["loss"], 16.0)


def test_for_eval_epoch_iterator():
    model = example_model(3)
    model.compile(optimizer="adam", loss="mse", metrics=["mean_absolute_error"])
    x, y = np.ones((16, 4)), np.zeros((16, 3))
    x_test, y_test = np.ones((16, 4)), np.zeros((16, 3))
    model.fit(x, y, batch_size=4, validation_data=(x_test, y_test), verbose=0)
    # Keras: "This will throw an exception which is intended"
    with pytest.raises(ValueError):
        model.fit(x, y, batch_size=4, verbose=0,
                  validation_data=(x_test.reshape((-1, 16, 4)), y_test.reshape((-1, 16, 3))))
    # Try model.fit with correct validation_data this should work.
    history = model.fit(x, y, batch_size=4, validation_data=(x_test, y_test), verbose=0)
    assert "val_loss" in history.history


def test_callback_methods_keys():
    def keys(logs):
        return sorted((logs or {}).keys())

    fit_keys = ["loss", "mean_absolute_error", "val_loss", "val_mean_absolute_error"]

    class CustomCallback(callbacks.Callback):
        def on_train_begin(self, logs=None):
            assert keys(logs) == []

        def on_train_end(self, logs=None):
            assert keys(logs) == fit_keys

        def on_epoch_begin(self, epoch, logs=None):
            assert keys(logs) == []

        def on_epoch_end(self, epoch, logs=None):
            assert keys(logs) == fit_keys

        def on_test_begin(self, logs=None):
            assert keys(logs) == []

        def on_test_end(self, logs=None):
            assert keys(logs) == ["loss", "mean_absolute_error"]

        def on_predict_begin(self, logs=None):
            assert keys(logs) == []

        def on_predict_end(self, logs=None):
            assert keys(logs) == []

        def on_train_batch_begin(self, batch, logs=None):
            assert keys(logs) == []

        def on_train_batch_end(self, batch, logs=None):
            assert keys(logs) == ["loss", "mean_absolute_error"]

        def on_test_batch_begin(self, batch, logs=None):
            assert keys(logs) == []

        def on_test_batch_end(self, batch, logs=None):
            assert keys(logs) == ["loss", "mean_absolute_error"]

        def on_predict_batch_begin(self, batch, logs=None):
            assert keys(logs) == []

        def on_predict_batch_end(self, batch, logs=None):
            assert keys(logs) == ["outputs"]

    model = example_model(3)
    model.compile(optimizer="adam", loss="mse", metrics=["mean_absolute_error"])
    x, y = np.ones((16, 4)), np.zeros((16, 3))
    x_test, y_test = np.ones((16, 4)), np.zeros((16, 3))
    model.fit(x, y, callbacks=[CustomCallback()], batch_size=4,
              validation_data=(x_test, y_test), verbose=0)
    model.evaluate(x_test, y_test, batch_size=4, verbose=0)
    model.predict(x_test, batch_size=4, verbose=0)


def test_recompile():
    model = example_model(3)
    model.compile(optimizer="sgd", loss="mse", metrics=["mean_squared_error"])
    history_1 = model.fit(np.ones((3, 2)), np.ones((3, 3)), verbose=0).history
    eval_out_1 = model.evaluate(np.ones((3, 2)), np.ones((3, 3)), return_dict=True,
                                verbose=0)
    model.compile(optimizer="sgd", loss="mse", metrics=["mean_absolute_error"])
    history_2 = model.fit(np.ones((3, 2)), np.ones((3, 3)), verbose=0).history
    eval_out_2 = model.evaluate(np.ones((3, 2)), np.ones((3, 3)), return_dict=True,
                                verbose=0)
    assert sorted(history_1.keys()) == ["loss", "mean_squared_error"]
    assert sorted(eval_out_1.keys()) == ["loss", "mean_squared_error"]
    assert sorted(history_2.keys()) == ["loss", "mean_absolute_error"]
    assert sorted(eval_out_2.keys()) == ["loss", "mean_absolute_error"]


def test_evaluate_return_list_respect_metrics_order():
    def metrics_zero(y_true, y_pred):
        return 0.0

    def metrics_one(y_true, y_pred):
        return 1.0

    model = example_model(3)
    model.compile(optimizer="sgd", loss="mse", metrics=[metrics_zero, metrics_one])
    eval_out = model.evaluate(np.ones((3, 2)), np.ones((3, 3)), verbose=0)
    assert len(eval_out) == 3
    assert eval_out[1] == 0.0
    assert eval_out[2] == 1.0

    model.compile(optimizer="sgd", loss="mse", metrics=[metrics_one, metrics_zero])
    eval_out = model.evaluate(np.ones((3, 2)), np.ones((3, 3)), verbose=0)
    assert len(eval_out) == 3
    assert eval_out[1] == 1.0
    assert eval_out[2] == 0.0


def test_evaluate_return_list_respect_metrics_order_builtin():
    # The same fact with two built-in metrics whose values differ: on ones((3, 2))
    # the kernel of ones predicts 2 against targets 0, so mse = 4 and mae = 2.
    x, y = np.ones((3, 2)), np.zeros((3, 3))
    model = example_model(3)
    model.compile(optimizer="sgd", loss="mse", metrics=["mse", "mae"])
    eval_out = model.evaluate(x, y, verbose=0)
    assert len(eval_out) == 3
    close(eval_out[1:], [4.0, 2.0])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae", "mse"])
    eval_out = model.evaluate(x, y, verbose=0)
    assert len(eval_out) == 3
    close(eval_out[1:], [2.0, 4.0])


STOP_LOOPS = [pytest.param("fit", "training", "train", id="fit"),
              pytest.param("evaluate", "evaluating", "test", id="evaluate"),
              pytest.param("predict", "predicting", "predict", id="predict")]


@pytest.mark.parametrize("method, method_gerund, on_end_name", STOP_LOOPS)
def test_stop_loop(method, method_gerund, on_end_name):
    model = example_model(3)
    model.compile(optimizer="sgd", loss="mse", metrics=["mse"])

    class Stopper(callbacks.Callback):
        def __init__(self, stop_count):
            super().__init__()
            self.stop_count = stop_count
            self.counter = 0
            setattr(self, f"on_{on_end_name}_batch_end", self.batch_end)

        def batch_end(self, *args, **kwargs):
            self.counter += 1
            if self.counter == self.stop_count:
                setattr(self.model, f"stop_{method_gerund}", True)

    # Keras: an infinite generator of (ones((2, 2)), ones((2, 3))) batches; here 20
    # batches of 2, far more than the 5 the callback lets run.
    x, y = np.ones((40, 2)), np.ones((40, 3))
    stopper = Stopper(stop_count=5)
    args = (x,) if method == "predict" else (x, y)
    getattr(model, method)(*args, batch_size=2, callbacks=[stopper], verbose=0)
    assert stopper.counter == 5


def test_constraints_are_applied():
    model = dl.Sequential([layers.Dense(2, kernel_constraint="non_neg")])
    x, y = np.ones((2, 3)), np.ones((2, 2))
    model.compile(optimizer="rmsprop", loss="mse")
    model.fit(x, y, verbose=0)
    assert np.min(model.get_weights()[0]) >= 0.0


class CounterCallback(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.eager_call_counter_train = 0
        self.eager_call_counter_test = 0
        self.eager_call_counter_predict = 0

    def on_train_batch_end(self, *args, **kwargs):
        self.eager_call_counter_train += 1

    def on_test_batch_end(self, *args, **kwargs):
        self.eager_call_counter_test += 1

    def on_predict_batch_end(self, *args, **kwargs):
        self.eager_call_counter_predict += 1


def counted_fit():
    model = dl.Sequential([layers.Dense(3)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mse"], run_eagerly=True)
    cbk = CounterCallback()
    model.fit(np.ones((4, 3)), np.ones((4, 3)), callbacks=[cbk], epochs=3, batch_size=1,
              verbose=0, validation_data=(np.ones((2, 3)), np.ones((2, 3))))
    return model, cbk


def test_callbacks_can_update_state_at_batch_boundary():   # train and predict counts
    model, cbk = counted_fit()
    assert cbk.eager_call_counter_train == 12
    model.predict(np.ones((4, 3)), callbacks=[cbk], batch_size=1, verbose=0)
    assert cbk.eager_call_counter_predict == 4


def test_callbacks_can_update_state_at_batch_boundary_validation():   # ..., test count
    _, cbk = counted_fit()
    assert cbk.eager_call_counter_test == 6


def test_loss_weights():                            # the single-output case
    epochs, batch_size = 3, 20
    dataset_size = batch_size * 2
    model = example_model(3)
    compile_sgd_mse(model, loss_weights=0.2)
    x, y = np.ones((dataset_size, 4)), np.zeros((dataset_size, 3))
    history = model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0).history
    assert "loss" in history
    close(history["loss"], [3.182979, 3.115617, 3.049681], atol=1e-3)
