"""Keras 3's optimizer tests, ported: ``keras/src/optimizers/sgd_test.py``,
``adam_test.py``, ``adamw_test.py``, ``rmsprop_test.py``, ``adagrad_test.py`` and the
parts of ``optimizer_test.py`` that apply to dl's optimizers (SGD, Adam, AdamW,
RMSprop, Adagrad).  The same inputs and expected values, run on dl (our code, Keras's
facts); each test names the Keras test (Class.method) it comes from.

How Keras's objects map onto dl's:
- ``backend.Variable(...)`` -> a NumPy array (float32 where Keras's variable is
  float32; float64 where Keras builds it from a float64 ``np.ones``), updated in place;
  ``ops.array``/``ops.arange`` gradients -> NumPy arrays of the variable's dtype (dl
  does not cast gradients: a gradient must have its variable's dtype);
- ``optimizer._clip_gradients(grads)`` (private in Keras) -> dl's private
  ``optimizer._clip(grads)``, which clips in place;
- ``run_class_serialization_test`` -> get_config / from_config, serialize -> JSON ->
  ``dl.optimizers.get`` (dl has no ``deserialize``), and the same ``dir()``;
- ``optimizer.variables`` / ``set_weights`` -> ``iterations``, ``learning_rate`` and
  ``get_state()`` / ``set_state(arrays, params)``.

Deliberately different (asserted as dl's behaviour):
- error messages are dl's own (the argument first); the exception types are Keras's;
- ``exclude_from_weight_decay(var_names=...)`` matches a model's weight names
  ("<layer>/kernel"); a bare NumPy array has no name, so Keras's variable named
  "exclude" is decayed here (``var_list`` exclusion is as Keras's);
- EMA (``use_ema``, ``ema_momentum``, ``ema_overwrite_frequency``), loss scaling
  (``loss_scale_factor``) and gradient accumulation (``gradient_accumulation_steps``)
  are not in dl: the constructor raises TypeError naming the argument;
- ``OptimizerTest.test_set_weights``: ``set_state`` takes the variables and builds
  the optimizer itself, so there is no "not built" error to assert;
- ``OptimizerTest.test_setting_lr_to_callable_untracks_lr_var``: dl tracks no
  learning-rate variable; the test checks that the schedule is what is read.

Automatic unique names depend on what the process created before: the test starts
from ``dl.utils.clear_session()``, as Keras's test case does.

Not ported (outside dl's surface): ``OptimizerTest.test_constraints_are_applied``
(NumPy arrays carry no ``constraint``; dl has no constraints),
``test_overwrite_with_gradient`` and its gradient-accumulation form (no
``overwrite_with_gradient`` attribute on arrays), ``test_tf_checkpointing``,
``test_mixed_with_tf_variables`` and ``AdamTest.test_clipnorm_indexed_slices``
(TensorFlow only; dl has no ``Embedding`` or IndexedSlices); the parametrized cases for
optimizers dl does not provide (adadelta, adamax, lion, nadam, ftrl, adafactor: ``get``
raises ValueError for them).
"""
import json
import pickle
import warnings

import numpy as np
import pytest

import dl
from dl import optimizers
from dl.optimizers import SGD, Adagrad, Adam, AdamW, RMSprop

NAMES = ("adam", "sgd", "adamw", "adagrad", "rmsprop")
CLASSES = (SGD, Adam, AdamW, RMSprop, Adagrad)
NOT_IN_DL = ("adadelta", "adamax", "lion", "nadam", "ftrl", "adafactor")


def close(actual, desired, atol=1e-6, rtol=1e-6):
    np.testing.assert_allclose(actual, desired, atol=atol, rtol=rtol)


def almost(actual, desired, decimal=3):
    np.testing.assert_almost_equal(actual, desired, decimal=decimal)


def f32(values):
    return np.array(values, dtype="float32")


def roundtrip(optimizer):
    """Keras's run_class_serialization_test: the config survives from_config and
    serialize -> JSON -> get, and the revived object has the same attributes."""
    cls, cfg = type(optimizer), optimizer.get_config()
    revived = cls.from_config(cfg)
    assert json.dumps(revived.get_config()) == json.dumps(cfg)
    assert set(dir(revived)) == set(dir(optimizer))
    revived = optimizers.get(json.loads(json.dumps(optimizers.serialize(optimizer))))
    assert type(revived) is cls
    assert json.dumps(revived.get_config()) == json.dumps(cfg)
    assert set(dir(revived)) == set(dir(optimizer))


def single_step(optimizer, expected):
    """Keras's *Test.test_single_step: one step from [1, 2, 3, 4] with gradients
    [1, 6, 7, 2] (float32)."""
    grads, variable = f32([1.0, 6.0, 7.0, 2.0]), f32([1.0, 2.0, 3.0, 4.0])
    optimizer.apply_gradients(zip([grads], [variable]))
    close(variable, expected, rtol=1e-4, atol=1e-4)


def weight_decay(cls, shape=(1,)):
    """Keras's *Test.test_weight_decay: one zero-gradient step (lr 1.0, weight_decay
    0.004) decays var1 to 1.9760959; var3, excluded by ``var_list``, stays 2.0.  Keras's
    var2 is excluded by its variable *name*: a NumPy array has none (dl matches
    ``var_names`` against a model's weight names, "<layer>/kernel"), so here var2
    decays like var1 -- dl's documented behaviour."""
    grads = np.zeros(shape, "float32")
    var1, var2, var3 = (np.full(shape, 2.0, "float32") for _ in range(3))
    optimizer_1 = cls(learning_rate=1.0, weight_decay=0.004)
    optimizer_1.apply_gradients(zip([grads], [var1]))
    optimizer_2 = cls(learning_rate=1.0, weight_decay=0.004)
    optimizer_2.exclude_from_weight_decay(var_names=["exclude"])
    optimizer_2.apply_gradients(zip([grads, grads], [var1, var2]))
    optimizer_3 = cls(learning_rate=1.0, weight_decay=0.004)
    optimizer_3.exclude_from_weight_decay(var_list=[var3])
    optimizer_3.apply_gradients(zip([grads, grads], [var1, var3]))
    almost(var1, np.full(shape, 1.9760959), decimal=6)
    almost(var2, np.full(shape, 1.992), decimal=6)          # one step, not excluded
    almost(var3, np.full(shape, 2.0), decimal=6)


def golden_run(optimizer, golden, dtype):
    """Keras's *Test.test_correctness_with_golden: one step with gradients 0.01, then
    five steps with gradients 0.1 ... 1.0, the variable checked before each."""
    x = np.ones([10], dtype=dtype)
    grads = np.arange(1, 11, dtype=dtype) / 10
    first_grads = np.full((10,), 0.01, dtype=dtype)
    optimizer.apply_gradients(zip([first_grads], [x]))
    for i in range(5):
        close(x, golden[i], rtol=5e-4, atol=5e-4)
        optimizer.apply_gradients(zip([grads], [x]))


def clip_gradients(optimizer, grads):
    """Keras's private ``optimizer._clip_gradients(grads)``: dl's private ``_clip``
    clips the arrays in place."""
    grads = [np.array(g) for g in grads]
    optimizer._clip(grads)
    return grads


def check_clip_norm(cls):
    clipped_grad = clip_gradients(cls(clipnorm=1), [np.array([100.0, 100.0])])
    close(clipped_grad[0], [2**0.5 / 2, 2**0.5 / 2])


def check_clip_value(cls):
    clipped_grad = clip_gradients(cls(clipvalue=1), [np.array([100.0, 100.0])])
    close(clipped_grad[0], [1.0, 1.0])


# ======================================================================== SGDTest
def test_sgd_config():                              # SGDTest.test_config
    roundtrip(SGD(learning_rate=0.5, momentum=0.06, nesterov=True, weight_decay=0.004))


def test_sgd_single_step():                         # SGDTest.test_single_step
    optimizer = SGD(learning_rate=0.5)
    grads = f32([1.0, 6.0, 7.0, 2.0])
    variables = f32([1.0, 2.0, 3.0, 4.0])
    optimizer.build([variables])
    optimizer.apply_gradients(zip([grads], [variables]))
    close(variables, [0.5, -1.0, -0.5, 3.0], rtol=1e-4, atol=1e-4)
    # Keras: optimizer.variables == [iterations, learning_rate]
    assert optimizer.iterations == 1
    assert optimizer.learning_rate == 0.5


def test_sgd_single_step_built_on_apply():          # SGDTest.test_single_step, no build()
    optimizer = SGD(learning_rate=0.5)
    single_step(optimizer, [0.5, -1.0, -0.5, 3.0])
    assert optimizer.iterations == 1                # Keras: optimizer.variables[0] == 1
    assert optimizer.learning_rate == 0.5           # Keras: optimizer.variables[1] == 0.5


def test_sgd_invalid_momentum():                    # SGDTest.test_invalid_momentum
    with pytest.raises(ValueError, match="^momentum: expected"):
        SGD(momentum=-1.0)
    with pytest.raises(ValueError, match=r"^momentum: expected a value in \[0, 1\]"):
        SGD(momentum=2.0)


def test_sgd_weight_decay():                        # SGDTest.test_weight_decay
    weight_decay(SGD)


def test_sgd_correctness_with_golden():             # SGDTest.test_correctness_with_golden
    golden = np.array(
        [[0.9999, 0.9999, 0.9999, 0.9999, 0.9999, 0.9999, 0.9999, 0.9999, 0.9999, 0.9999],
         [0.9989, 0.9979, 0.9969, 0.9959, 0.9949, 0.9939, 0.9929, 0.9919, 0.9909, 0.9899],
         [0.9979, 0.9959, 0.9939, 0.9919, 0.9899, 0.9879, 0.9859, 0.9839, 0.9819, 0.9799],
         [0.9969, 0.9939, 0.9909, 0.9879, 0.9849, 0.9819, 0.9789, 0.9759, 0.9729, 0.9699],
         [0.9959, 0.9919, 0.9879, 0.9839, 0.9799, 0.9759, 0.9719, 0.9679, 0.9639, 0.9599]])
    golden_run(SGD(nesterov=True), golden, "float64")


def test_sgd_clip_norm():                           # SGDTest.test_clip_norm
    check_clip_norm(SGD)


def test_sgd_clip_value():                          # SGDTest.test_clip_value
    check_clip_value(SGD)


# ======================================================================= AdamTest
def test_adam_config():                             # AdamTest.test_config
    roundtrip(Adam(learning_rate=0.5, beta_1=0.5, beta_2=0.67, epsilon=1e-5, amsgrad=True))


def test_adam_single_step():                        # AdamTest.test_single_step
    single_step(Adam(learning_rate=0.5), [0.5, 1.5, 2.5, 3.5])


def test_adam_weight_decay():                       # AdamTest.test_weight_decay
    weight_decay(Adam)


def test_adam_correctness_with_golden():            # AdamTest.test_correctness_with_golden
    golden = np.tile([[0.999], [0.9982], [0.9974], [0.9965], [0.9955]], (1, 10))
    golden_run(Adam(amsgrad=True), golden, "float32")


def test_adam_clip_norm():                          # AdamTest.test_clip_norm
    check_clip_norm(Adam)


def test_adam_clip_value():                         # AdamTest.test_clip_value
    check_clip_value(Adam)


def test_adam_ema():                                # AdamTest.test_ema: no EMA in dl
    with pytest.raises(TypeError, match="use_ema"):
        Adam(learning_rate=1.0, use_ema=True, ema_momentum=0.9)


def test_adam_ema_overwrite_frequency():            # AdamTest.test_ema_overwrite_frequency
    with pytest.raises(TypeError, match="ema_overwrite_frequency"):
        Adam(learning_rate=1.0, ema_overwrite_frequency=2)


# ====================================================================== AdamWTest
def test_adamw_config():                            # AdamWTest.test_config
    roundtrip(AdamW(learning_rate=0.5, weight_decay=0.008, beta_1=0.5, beta_2=0.67,
                    epsilon=1e-5, amsgrad=True))


def test_adamw_single_step():                       # AdamWTest.test_single_step
    single_step(AdamW(learning_rate=0.5), [0.4980, 1.4960, 2.494, 3.492])


def test_adamw_weight_decay():                      # AdamWTest.test_weight_decay
    weight_decay(AdamW)


def test_adamw_weight_decay_is_none():              # AdamWTest.test_weight_decay_is_none
    with pytest.raises(ValueError, match="^weight_decay: expected a number"):
        AdamW(learning_rate=1.0, weight_decay=None)


def test_adamw_correctness_with_golden():           # AdamWTest.test_correctness_with_golden
    golden = np.array(
        [[0.4998, 0.4998, 0.4998, 0.4998, 0.4998, 0.4998, 0.4998, 0.4998, 0.4998, 0.4998],
         [0.2486, 0.2475, 0.2463, 0.2451, 0.244, 0.2428, 0.2417, 0.2405, 0.2394, 0.2382],
         [0.1223, 0.1198, 0.1174, 0.1149, 0.1124, 0.11, 0.1075, 0.1051, 0.1027, 0.1003],
         [0.0586, 0.0549, 0.0512, 0.0475, 0.0439, 0.0402, 0.0366, 0.033, 0.0294, 0.0258],
         [0.0263, 0.0215, 0.0167, 0.012, 0.0073, 0.0026, -0.0021, -0.0067, -0.0113,
          -0.0159]])
    golden_run(AdamW(learning_rate=1.0, weight_decay=0.5, epsilon=2), golden, "float32")


def test_adamw_clip_norm():                         # AdamWTest.test_clip_norm
    check_clip_norm(AdamW)


def test_adamw_clip_value():                        # AdamWTest.test_clip_value
    check_clip_value(AdamW)


# ==================================================================== RMSpropTest
def test_rmsprop_config():                          # RMSpropTest.test_config
    roundtrip(RMSprop(learning_rate=0.5, rho=0.8, momentum=0.05, epsilon=1e-6,
                      centered=True))


def test_rmsprop_single_step():                     # RMSpropTest.test_single_step
    single_step(RMSprop(learning_rate=0.5), [-0.5811, 0.4189, 1.4189, 2.4189])


def test_rmsprop_weight_decay():                    # RMSpropTest.test_weight_decay
    weight_decay(RMSprop)


def test_rmsprop_correctness_with_golden():         # RMSpropTest.test_correctness_with_golden
    golden = np.tile([[0.9967], [0.9933], [0.9908], [0.9885], [0.9864]], (1, 10))
    golden_run(RMSprop(centered=True), golden, "float64")


def test_rmsprop_clip_norm():                       # RMSpropTest.test_clip_norm
    check_clip_norm(RMSprop)


def test_rmsprop_clip_value():                      # RMSpropTest.test_clip_value
    check_clip_value(RMSprop)


# ==================================================================== AdagradTest
def test_adagrad_config():                          # AdagradTest.test_config
    roundtrip(Adagrad(learning_rate=0.5, initial_accumulator_value=0.2, epsilon=1e-5))


def test_adagrad_single_step():                     # AdagradTest.test_single_step
    single_step(Adagrad(learning_rate=0.5), [0.5233, 1.5007, 2.5005, 3.5061])


def test_adagrad_weight_decay():                    # AdagradTest.test_weight_decay
    weight_decay(Adagrad)


def test_adagrad_correctness_with_golden():         # AdagradTest.test_correctness_with_golden
    golden = np.array(
        [[0.9963, 0.9963, 0.9963, 0.9963, 0.9963, 0.9963, 0.9963, 0.9963, 0.9963, 0.9963],
         [0.9604, 0.9278, 0.9003, 0.8784, 0.8615, 0.8487, 0.8388, 0.8313, 0.8255, 0.8209],
         [0.9251, 0.8629, 0.8137, 0.7768, 0.7497, 0.7298, 0.7151, 0.704, 0.6956, 0.6891],
         [0.8903, 0.8012, 0.7342, 0.6862, 0.6521, 0.6277, 0.6099, 0.5967, 0.5867, 0.579],
         [0.856, 0.7422, 0.6604, 0.6037, 0.5644, 0.5367, 0.5168, 0.5021, 0.491, 0.4825]])
    golden_run(Adagrad(learning_rate=0.2, initial_accumulator_value=0.3, epsilon=1e-6),
               golden, "float64")


def test_adagrad_clip_norm():                       # AdagradTest.test_clip_norm
    check_clip_norm(Adagrad)


def test_adagrad_clip_value():                      # AdagradTest.test_clip_value
    check_clip_value(Adagrad)


# ================================================ *Test.test_weight_decay, 0-d variables
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_weight_decay_scalar_variable(cls):         # {SGD,Adam,...}Test.test_weight_decay
    weight_decay(cls, shape=())


# ================================================================== OptimizerTest
def test_iterations_counter():                      # OptimizerTest.test_iterations_counter
    v = f32([[1.0, 2.0], [3.0, 4.0]])
    grads = f32([[1.0, 1.0], [1.0, 1.0]])
    optimizer = Adam(learning_rate=1.0)
    assert optimizer.iterations == 0
    optimizer.apply_gradients([(grads, v)])
    assert optimizer.iterations == 1
    optimizer.apply_gradients([(grads, v)])
    assert optimizer.iterations == 2


def test_empty_gradients_none():                    # OptimizerTest.test_empty_gradients
    v = f32([[3.0, 4.0], [5.0, 6.0]])
    optimizer = SGD(learning_rate=1.0)
    with pytest.raises(ValueError, match="No gradients provided for any variable."):
        optimizer.apply_gradients([(None, v)])
    close(v, [[3.0, 4.0], [5.0, 6.0]])


def test_empty_gradients_filtered():                # OptimizerTest.test_empty_gradients
    v = f32([[3.0, 4.0], [5.0, 6.0]])
    v2 = f32([[3.0, 4.0], [5.0, 6.0]])
    grads2 = f32([[1.0, 1.0], [1.0, 1.0]])
    optimizer = SGD(learning_rate=1.0)
    with warnings.catch_warnings(record=True) as caught:     # Keras: assertWarns(Warning)
        warnings.simplefilter("always")
        optimizer.apply_gradients([(None, v), (grads2, v2)])
    assert caught
    close(v, [[3.0, 4.0], [5.0, 6.0]])
    close(v2, [[2.0, 3.0], [4.0, 5.0]])


def test_clip_args():                               # OptimizerTest.test_clip_args
    assert SGD(learning_rate=1.0, clipnorm=0.1).clipnorm == 0.1
    assert SGD(learning_rate=1.0, clipvalue=0.1).clipvalue == 0.1
    assert SGD(learning_rate=1.0, global_clipnorm=0.1).global_clipnorm == 0.1
    message = "^clipnorm, clipvalue, global_clipnorm: expected at most one"
    with pytest.raises(ValueError, match=message):
        SGD(learning_rate=1.0, clipnorm=0.1, clipvalue=0.1)
    with pytest.raises(ValueError, match=message):
        SGD(learning_rate=1.0, clipnorm=0.1, global_clipnorm=0.1)


def test_clip_norm():                               # OptimizerTest.test_clip_norm
    clipped_grad = clip_gradients(SGD(clipnorm=1), [f32([100.0, 100.0])])
    close(clipped_grad[0], [2**0.5 / 2, 2**0.5 / 2])


def test_clip_value():                              # OptimizerTest.test_clip_value
    clipped_grad = clip_gradients(SGD(clipvalue=1), [f32([100.0, 100.0])])
    close(clipped_grad[0], [1.0, 1.0])


def test_global_clip_norm():                        # OptimizerTest.test_global_clip_norm
    grad = f32([50.0, 100.0])
    global_norm = np.linalg.norm(grad)
    clipped_grad = clip_gradients(SGD(global_clipnorm=1), [grad])
    close(clipped_grad[0], grad / global_norm)


def test_ema():                                     # OptimizerTest.test_ema: no EMA in dl
    with pytest.raises(TypeError, match="use_ema"):
        SGD(learning_rate=1.0, use_ema=True, ema_momentum=0.9, ema_overwrite_frequency=3)


def test_ema_with_model_fit():                      # OptimizerTest.test_ema_with_model_fit
    with pytest.raises(TypeError, match="use_ema"):
        SGD(learning_rate=0.1, use_ema=True, ema_momentum=0.9)


def test_get_method():                              # OptimizerTest.test_get_method
    assert isinstance(optimizers.get("sgd"), SGD)
    assert isinstance(optimizers.get("adamw"), AdamW)
    with pytest.raises(ValueError, match="unknown optimizer 'typo'"):
        optimizers.get("typo")


def test_get_method_none():                         # OptimizerTest.test_get_method
    assert optimizers.get(None) is None


def test_static_loss_scaling():                     # OptimizerTest.test_static_loss_scaling
    with pytest.raises(TypeError, match="loss_scale_factor"):
        SGD(learning_rate=1.0, loss_scale_factor=1024.0)


def test_set_weights():                             # OptimizerTest.test_set_weights
    x = f32([[1.0, 2.0], [3.0, 4.0]])
    optimizer_1 = Adam()
    grads = f32([[1.0, 2.0], [3.0, 4.0]])
    optimizer_1.apply_gradients(zip([grads], [x]))
    optimizer_2 = Adam()
    # deliberately different: set_state builds the optimizer for the variables given
    optimizer_2.set_state(optimizer_1.get_state(), [x])
    state_1, state_2 = optimizer_1.get_state(), optimizer_2.get_state()
    assert len(state_1) == len(state_2) == 3        # iterations, m, v
    for a, b in zip(state_1, state_2):
        close(a, b)


def test_gradient_accumulation():                   # OptimizerTest.test_gradient_accumulation
    with pytest.raises(TypeError, match="gradient_accumulation_steps"):
        SGD(learning_rate=1.0, gradient_accumulation_steps=3)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_accumulation_with_weight_decay(name):
    # OptimizerTest.test_gradient_accumulation_with_weigth_decay
    assert isinstance(optimizers.get({"class_name": name, "config": {"weight_decay": 0.05}}),
                      optimizers.Optimizer)
    with pytest.raises(TypeError, match="gradient_accumulation_steps"):
        optimizers.get({"class_name": name,
                        "config": {"weight_decay": 0.05, "gradient_accumulation_steps": 3}})


def test_callable_learning_rate():                  # OptimizerTest.test_callable_learning_rate
    v = f32([[1.0, 2.0], [3.0, 4.0]])
    grads = f32([[1.0, 1.0], [1.0, 1.0]])
    optimizer = SGD(learning_rate=lambda: 0.1)
    assert optimizer.iterations == 0
    optimizer.apply_gradients([(grads, v)])
    close(v, [[0.9, 1.9], [2.9, 3.9]])
    assert optimizer.iterations == 1


def test_setting_lr_to_callable_untracks_lr_var():
    # OptimizerTest.test_setting_lr_to_callable_untracks_lr_var (no variables in dl)
    adam = Adam(learning_rate=0.001)
    schedule = optimizers.schedules.PolynomialDecay(adam.learning_rate, 4)
    adam.learning_rate = schedule
    assert adam.learning_rate == schedule(0)
    assert optimizers.serialize(adam)["config"]["learning_rate"] == \
        optimizers.schedules.serialize(schedule)


@pytest.mark.parametrize("name", NAMES)
def test_pickleable_optimizers(name):               # OptimizerTest.test_pickleable_optimizers
    optimizer = optimizers.get(name)
    reloaded = pickle.loads(pickle.dumps(optimizer))
    assert optimizer.get_config() == reloaded.get_config()


@pytest.mark.parametrize("name", NOT_IN_DL)
def test_optimizers_not_in_dl(name):
    # OptimizerTest's parametrized cases for optimizers dl does not provide
    with pytest.raises(ValueError, match=f"unknown optimizer '{name}'"):
        optimizers.get(name)


def test_optimizer_auto_naming():                   # OptimizerTest.test_optimizer_auto_naming
    dl.utils.clear_session()        # Keras's TestCase starts each test from a new session
    adam_1, adam_2 = Adam(), Adam()
    sgd_1, sgd_2 = SGD(), SGD()
    adamw_1, adamw_2 = AdamW(), AdamW()
    assert adam_1.name == "adam"
    assert adam_2.name == "adam_1"
    assert sgd_1.name == "sgd"
    assert sgd_2.name == "sgd_1"
    assert adamw_1.name == "adam_w"
    assert adamw_2.name == "adam_w_1"
    reloaded_adam_2 = optimizers.get(optimizers.serialize(adam_2))
    assert reloaded_adam_2.name == "adam_1"


def test_optimizer_explicit_naming():               # OptimizerTest.test_optimizer_auto_naming
    custom_adam = Adam(name="my_adam")
    assert custom_adam.name == "my_adam"
    reloaded_custom = optimizers.get(optimizers.serialize(custom_adam))
    assert reloaded_custom.name == "my_adam"
