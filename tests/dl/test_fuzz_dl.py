"""Fuzzing the ``dl`` entry points with Hypothesis (docs/hardening.md, "Fuzzing").

Layers' constructors (Dense, Dropout, Flatten, Activation, Input), Sequential and
``add``, ``compile``, ``fit``/``evaluate``/``predict``/``train_on_batch``/
``test_on_batch``/``predict_on_batch``/``__call__``, callbacks (lists holding
non-callbacks; every callback's constructor) and ``load_model`` (random bytes,
truncated and bit-flipped files, hand-written .npz files with adversarial headers,
JSON configs, weights and optimizer state) are called with arguments drawn from valid
and invalid pools (tests/fuzz_strategies.py).  The invariant:

* a rejected call raises ``TypeError`` or ``ValueError`` (``FileNotFoundError`` for a
  missing file; ``OSError`` for a path a callback cannot write) whose message starts
  with the name of the argument at fault (``x:``, ``validation_data[0]:``,
  ``filepath:``, a layer's ``rate:``, a key of a config dict...);
* no other exception, no crash, no hang (every call runs under a watchdog);
* an accepted call gives a result of the right structure: correctly shaped outputs,
  finite whenever the inputs and settings are (a ``History`` of finite losses, one per
  epoch run).

Known bugs in ``dl`` (which this fuzzer found and which are fixed outside the kernels'
validation) are listed in ``KNOWN_BUGS``: each has a minimal reproducer and a test,
``test_known_dl_bug[<id>]``, that fails while the bug is there.  While a bug reproduces,
the fuzz tests accept that one symptom (so they keep guarding everything else); once
its reproducer stops reproducing, the symptom is no longer accepted anywhere.
"""
import contextlib
import math
import os
import re
import signal
import tempfile
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import dl
import fuzz_strategies as fz
import kernels

BACKENDS = [name for name in ("numpy", "cython") if name in kernels.available_backends()]
SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
            HealthCheck.function_scoped_fixture]
NAME = re.compile(r"^([A-Za-z_]\w*)(?:\[\d+\])?(?:, [A-Za-z_]\w*)*:")
# Python's own argument-binding errors name the argument in quotes
BINDING = re.compile(r"\(\) (got an unexpected keyword argument|missing \d+ required "
                     r"(positional|keyword-only) argument|takes \d+ positional argument|"
                     r"takes from \d+ to \d+ positional arguments|got multiple values)")
WATCHDOG_SECONDS = 20
COUNTS = fz.COUNTS


# ------------------------------------------------------------------ machinery
class Hang(BaseException):
    """Raised by the watchdog: a call ran past WATCHDOG_SECONDS."""


@contextlib.contextmanager
def watchdog(seconds=WATCHDOG_SECONDS):
    def alarm(signum, frame):
        raise Hang(f"no result after {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@contextlib.contextmanager
def inside(folder):
    """Run with ``folder`` as the working directory: a fuzzed relative path (a
    checkpoint or CSV file name drawn as text) lands there, not in the repository."""
    old = os.getcwd()
    os.chdir(folder)
    try:
        yield folder
    finally:
        os.chdir(old)


@contextlib.contextmanager
def quiet():
    """No warnings (EarlyStopping's, NumPy's) and no progress output."""
    with warnings.catch_warnings(), np.errstate(all="ignore"), \
            contextlib.redirect_stdout(open(os.devnull, "w")) as out:
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            out.close()


class Violation(AssertionError):
    pass


def attempt(entry, fn, allowed_names, extra_ok=()):
    """Run ``fn()``; returns (True, result) or (False, exception) for an allowed
    rejection; raises Violation for anything else (unless a known bug)."""
    try:
        with watchdog(), quiet():
            return True, fn()
    except Hang as exc:
        _violation(entry, exc, f"{entry}: hang ({exc})")
    except fz.UserError as exc:      # the caller's object raised: it propagates, rightly
        return False, exc
    except tuple(extra_ok) as exc:
        if not isinstance(exc, (TypeError, ValueError)):
            return False, exc          # OSError of a path, ImportError of a backend
        message = str(exc)
        m = NAME.match(message)
        if not m or m.group(1) not in allowed_names:
            _violation(entry, exc, f"{entry}: {type(exc).__name__}: {message[:300]}")
        return False, exc
    except (TypeError, ValueError) as exc:
        message = str(exc)
        if isinstance(exc, TypeError) and BINDING.search(message):
            return False, exc
        m = NAME.match(message)
        if not m or m.group(1) not in allowed_names:
            _violation(entry, exc, f"{entry}: {type(exc).__name__} whose message does not "
                                   f"start with an argument among {sorted(allowed_names)}: "
                                   f"{message[:300]}")
        return False, exc
    except Exception as exc:  # noqa: BLE001
        _violation(entry, exc, f"{entry}: {type(exc).__name__} (not TypeError/ValueError): "
                               f"{str(exc)[:300]}")
    return False, None


def _violation(entry, exc, text):
    bug = known_bug(entry, exc)
    if bug is not None:
        COUNTS["dl cases: known bug met"] += 1
        note(f"known bug {bug}: {text}")
        return
    raise Violation(text) from (exc if isinstance(exc, Exception) else None)


def check_result(entry, condition, text, symptom=None):
    if not condition:
        if symptom is not None and known_bug(entry, symptom) is not None:
            COUNTS["dl cases: known bug met"] += 1
            return
        raise Violation(f"{entry}: {text}")


def keys_in(obj, depth=0):
    """Every string key of the dicts inside ``obj`` (config keys a message may name)."""
    out = set()
    if depth > 6:
        return out
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(k, str):
                out.add(k)
            out |= keys_in(v, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            out |= keys_in(v, depth + 1)
    return out


def params_of(fn):
    import inspect
    try:
        return set(inspect.signature(fn).parameters) - {"self", "kwargs", "args"}
    except (TypeError, ValueError):
        return set()


# --------------------------------------------------------------------- data
X = np.linspace(-1, 1, 24, dtype=np.float32).reshape(6, 4)


def targets(loss, n=6, units=2, rng=None):
    rng = rng or np.random.default_rng(0)
    labels = rng.integers(0, units, n)
    if isinstance(loss, dl.losses.SparseCategoricalCrossentropy):
        return labels
    if isinstance(loss, (dl.losses.CategoricalCrossentropy, dl.losses.BinaryCrossentropy)):
        return np.eye(units, dtype=np.float32)[labels]
    return rng.uniform(-1, 1, (n, units)).astype(np.float32)


def small_model(backend, compiled=True, loss="mse", optimizer="sgd", metrics=None):
    """4 -> 3 (relu) -> 2 (softmax), deterministic (seeded initializers and model seed)."""
    init = dl.initializers.GlorotUniform(seed=5)
    model = dl.Sequential([dl.layers.Dense(3, activation="relu", kernel_initializer=init),
                           dl.layers.Dense(2, activation="softmax", kernel_initializer=init)],
                          backend=backend)
    model.seed = 99
    model.build((None, 4))
    if compiled:
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    return model


def moderate(x, bound=1e6):
    """Finite numbers of moderate size: on these, float32 training cannot overflow, so
    results must be finite (huge finite inputs may overflow, as in Keras)."""
    try:
        a = np.asarray(x, dtype=np.float64)
    except Exception:  # noqa: BLE001
        return False
    return bool(np.isfinite(a).all() and (a.size == 0 or np.abs(a).max() <= bound))


def finite_history(history, epochs_expected=None):
    losses = history.history.get("loss", [])
    ok = all(math.isfinite(v) for vs in history.history.values() for v in vs)
    if epochs_expected is not None:
        ok = ok and len(losses) <= epochs_expected
    return ok


def assert_output(entry, out, n, units=2, finite=True):
    out = np.asarray(out)
    check_result(entry, out.shape == (n, units),
                 f"output shape {out.shape}, expected {(n, units)}")
    check_result(entry, out.dtype in (np.float32, np.float64), f"output dtype {out.dtype}")
    if finite:
        check_result(entry, bool(np.isfinite(out).all()), "non-finite output from finite input")


# ================================================================ known bugs
# id -> (entry, exception class name or symptom, message regex, reproducer).  The
# reproducer returns the exception (or symptom string) the bug gives on a minimal input,
# or None once the bug is fixed.

def _model_fit(**kwargs):
    model = small_model("numpy")
    y = targets(model.loss)
    return lambda: model.fit(X, y, verbose=0, **kwargs)


def _seq(layer):
    def run():
        model = dl.Sequential([layer, dl.layers.Dense(2)], backend="numpy")
        model.compile("sgd", "mse")
        model.fit(X, np.zeros((6, 2), np.float32), verbose=0, batch_size=3)
    return run


def _lazy_x():
    return np.broadcast_to(np.ones((1, 4), np.float32), (2**40, 4))


def _bad_file(make):
    def run():
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "m.dlk")
            with open(path, "wb") as f:
                f.write(make())
            return dl.load_model(path)
    return run


def _cfg_file(mutate):
    def make():
        cfg, weights, opt = fz.good_model_file()
        mutate(cfg)
        import json
        arrays = {"__dlkernels__": fz._utf8(json.dumps({"format": "dlkernels-model",
                                                        "version": 1, "kind": "model"})),
                  "config": fz._utf8(json.dumps(cfg))}
        arrays.update({f"weights/{i}": w for i, w in enumerate(weights)})
        arrays.update({f"optimizer/{i}": a for i, a in enumerate(opt)})
        return fz.npz_bytes(arrays)
    return make


def _load_and_fit(make):
    """Load the file ``make()`` writes, then fit it one epoch on well-formed data."""
    def run():
        model = _bad_file(make)()
        n_in = model.input_shape[1]
        x = np.linspace(-1, 1, 4 * n_in, dtype=np.float32).reshape(4, n_in)
        model.fit(x, np.zeros((4,) + tuple(model.output_shape[1:]), np.float32), verbose=0)
    return run


def _set(path, value):
    def mutate(cfg):
        node = cfg
        for p in path[:-1]:
            node = node[p]
        node[path[-1]] = value
    return mutate


class Bug:
    """A known bug: where the fuzzer meets it (``entries``; None: anywhere), its symptom (exception
    class names joined by "|", or "silent" for a wrong result, "Hang"; and a regex of
    the message), a minimal reproducer, and where in dl it lives.  ``named``: the
    symptom is a message that starts with some name, just not the argument's."""

    def __init__(self, bug_id, entries, exc_name, pattern, reproduce, where, named=False,
                 frame=None):
        self.id, self.entries, self.exc_name = bug_id, entries, exc_name
        self.pattern = re.compile(pattern)
        self.reproduce = reproduce
        self.where = where
        self.named = named
        # (file name, function): the symptom is any listed exception raised through that
        # function, whatever NumPy's message (instead of ``pattern``)
        self.frame = frame

    def raised_through(self, exc):
        tb = exc.__traceback__
        while tb is not None:
            code = tb.tb_frame.f_code
            if code.co_filename.endswith(self.frame[0]) and code.co_name == self.frame[1]:
                return True
            tb = tb.tb_next
        return False

    def __repr__(self):
        return self.id


KNOWN_BUGS = []


def _with_opt0(value):
    cfg, weights, opt = fz.good_model_file()
    import json
    arrays = {"__dlkernels__": fz._utf8(json.dumps({"format": "dlkernels-model",
                                                    "version": 1, "kind": "model"})),
              "config": fz._utf8(json.dumps(cfg))}
    arrays.update({f"weights/{i}": w for i, w in enumerate(weights)})
    opt = [value] + list(opt[1:])
    arrays.update({f"optimizer/{i}": a for i, a in enumerate(opt)})
    return fz.npz_bytes(arrays)


_ACTIVE = None


def _symptom(bug, exc):
    """The symptom string when ``exc`` (an exception, or "silent"/"Hang") is this bug."""
    names = bug.exc_name.split("|")
    if isinstance(exc, str):
        return exc if exc in names else None
    name = "Hang" if isinstance(exc, Hang) else type(exc).__name__
    if name not in names:
        return None
    if bug.frame is not None:
        if not bug.raised_through(exc):
            return None
    elif not bug.pattern.search(str(exc)):
        return None
    if isinstance(exc, (TypeError, ValueError)) and NAME.match(str(exc)) and not bug.named:
        return None          # a message naming an argument: that is the fix
    return f"{name}: {str(exc)[:200]}"


def _reproduces(bug):
    """The bug's symptom on its minimal input, or None once it is fixed."""
    try:
        with watchdog(10), quiet():
            result = bug.reproduce()
    except (Exception, Hang) as exc:  # noqa: BLE001
        return _symptom(bug, exc)
    return _symptom(bug, "silent") if result == "silent" else None


def active_bugs():
    global _ACTIVE
    if _ACTIVE is None:
        _ACTIVE = [b for b in KNOWN_BUGS if _reproduces(b)]
    return _ACTIVE


def known_bug(entry, exc):
    """The id of the still-present known bug ``exc`` is a symptom of, else None."""
    for bug in active_bugs():
        if (bug.entries is None or entry in bug.entries) and _symptom(bug, exc):
            return bug.id
    return None


@pytest.mark.xfail(strict=True, reason="a known bug, still present: see KNOWN_BUGS. When a "
                   "fix makes this pass, strict xfail fails the run: remove the entry")
@pytest.mark.parametrize("bug", KNOWN_BUGS, ids=[b.id for b in KNOWN_BUGS])
def test_known_dl_bug(bug):
    """Fails while the bug is there (see the docstring of ``bug.where``)."""
    symptom = _reproduces(bug)
    assert symptom is None, f"{bug.where}: {symptom} on the minimal input (bug {bug.id})"


# ================================================================ layers
LAYER_CLASSES = {"Dense": dl.layers.Dense, "Dropout": dl.layers.Dropout,
                 "Flatten": dl.layers.Flatten, "Activation": dl.layers.Activation,
                 "InputLayer": dl.layers.InputLayer}
BASE_PARAMS = {"name", "dtype", "input_shape", "input_dim", "trainable"}

ACT_OK = st.sampled_from([None, "relu", "linear", "tanh", "sigmoid", "softmax", "gelu", "elu",
                          "leaky_relu", "softplus", dl.activations.relu, "relu6", "selu",
                          "swish", "hard_sigmoid", "hard_swish", "mish", "softsign",
                          "log_softmax", {"name": "relu", "max_value": 6.0},
                          {"name": "leaky_relu", "negative_slope": 0.1},
                          {"class_name": "Activation", "config": {"name": "elu", "alpha": 0.5}},
                          {"name": "gelu", "approximate": True}])
INIT_OK = st.sampled_from(["glorot_uniform", "zeros", "ones", "he_normal", "lecun_uniform",
                           dl.initializers.RandomNormal(stddev=0.1, seed=3),
                           {"class_name": "Constant", "config": {"value": 0.1}},
                           {"class_name": "RandomUniform", "config": {"minval": -0.1,
                                                                      "maxval": 0.1}}])
REG_OK = st.sampled_from([None, "l1", "l2", "l1_l2", dl.regularizers.L2(0.01),
                          {"class_name": "L1L2", "config": {"l1": 0.001, "l2": 0.01}}])


def _layer_arg_pools(cls_name):
    ok = {"units": st.one_of(st.integers(1, 4), st.sampled_from([np.int64(2), np.int32(3)])),
          "activation": ACT_OK, "use_bias": st.booleans(), "kernel_initializer": INIT_OK,
          "bias_initializer": INIT_OK, "kernel_regularizer": REG_OK, "bias_regularizer": REG_OK,
          "rate": st.one_of(st.floats(0, 0.9), st.sampled_from([0, np.float32(0.5)])),
          "noise_shape": st.sampled_from([None, (None, 4), (1, 4), (None, 1), [None, 4]]),
          "seed": st.sampled_from([None, 0, 7, 2**31]),
          "name": st.sampled_from([None, "layer_x", "dense_fuzz"]),
          "dtype": st.sampled_from([None, "float32", "float64", np.float32, np.dtype("float64")]),
          "trainable": st.booleans(), "shape": st.sampled_from([(4,), [4], 4, (None,)[:0] + (4,)]),
          "batch_size": st.sampled_from([None, 6])}
    return ok


@st.composite
def layer_kwargs(draw, cls_name):
    cls = LAYER_CLASSES[cls_name]
    ok = _layer_arg_pools(cls_name)
    params = sorted((params_of(cls.__init__) | BASE_PARAMS) - {"input_shape", "input_dim"})
    if cls_name == "InputLayer":
        params = ["shape", "batch_size", "dtype", "name"]
    kwargs, valid = {}, True
    required = {"Dense": ["units"], "Dropout": ["rate"], "Activation": ["activation"],
                "InputLayer": ["shape"]}.get(cls_name, [])
    for p in params:
        if p not in required and not draw(st.integers(0, 2)) == 0:
            continue
        if draw(st.integers(0, 4)) == 0 or p not in ok:
            kwargs[p] = draw(st.one_of(fz.bad_scalars(), fz.bad_identifiers(), fz.any_array()))
            valid = False
        else:
            kwargs[p] = draw(ok[p])
    if draw(st.integers(0, 6)) == 0:
        kwargs[draw(st.sampled_from(["input_dim", "input_shape"]))] = draw(st.one_of(
            fz.bad_scalars(), st.sampled_from([(0,), (-1,), (2.5,), ("4",), [4, None], ()])))
        valid = False
    if draw(st.integers(0, 10)) == 0:
        kwargs["bogus_kwarg"] = 1
        valid = False
    return kwargs, valid


@settings(deadline=None, suppress_health_check=SUPPRESS)
@given(cls_name=st.sampled_from(sorted(LAYER_CLASSES)), data=st.data(),
       backend=st.sampled_from(BACKENDS))
def test_fuzz_layer_constructors(cls_name, data, backend):
    """A layer built from fuzzed arguments is rejected naming an argument, or works in a
    model (fit and predict give finite outputs of the right shape)."""
    kwargs, valid = data.draw(layer_kwargs(cls_name), label="kwargs")
    cls = LAYER_CLASSES[cls_name]
    allowed = params_of(cls.__init__) | BASE_PARAMS | {cls_name, "layer"} | keys_in(kwargs)
    allowed |= {"shape"} if cls_name == "InputLayer" else set()
    COUNTS["dl cases"] += 1
    ok, layer = attempt(cls_name, lambda: cls(**kwargs), allowed)
    if not ok:
        check_result(cls_name, not valid, f"valid arguments rejected: {layer}")
        return
    if cls_name == "InputLayer":
        layers = [layer, dl.layers.Dense(2)]
    else:
        first = [] if layer.input_spec_shape is not None else [dl.Input((4,))]
        layers = first + [layer, dl.layers.Flatten(), dl.layers.Dense(2)]

    def use():
        model = dl.Sequential(layers, backend=backend)
        model.compile("sgd", "mse")
        history = model.fit(X, np.zeros((6, 2), np.float32), batch_size=4, epochs=2, verbose=0)
        return model, history, model.predict(X, verbose=0)

    for key in ("shape", "input_shape"):
        if isinstance(kwargs.get(key), str):
            check_result(cls_name, False, f"{key}={kwargs[key]!r} accepted", symptom="silent")
    declared = layer.input_spec_shape
    if (declared is not None and math.prod(d or 1 for d in declared) > 2**24) or \
            getattr(layer, "units", 0) > 2**24:
        # a valid but long request (an input of 500 million features, or as many units,
        # builds gigabytes of Dense weights that fit in memory): not what is fuzzed; sizes
        # beyond the memory are refused by the constructor or at build (tests/dl/test_layers.py)
        COUNTS["dl cases: huge declared input not used"] += 1
        return
    names = {n for n in (getattr(layer_, "name", None) for layer_ in layers)
             if isinstance(n, str)}
    ok, result = attempt("fit", use, allowed | {"x", "y", "input_shape"} | names)
    if not ok:
        check_result(cls_name, not valid, f"valid arguments fail in use: {result}")
        return
    model, history, out = result
    assert_output(cls_name, out, 6, finite=valid)
    check_result(cls_name, not valid or finite_history(history, 2), "non-finite loss")


# ============================================================ Sequential, add
@st.composite
def layer_items(draw):
    good = [lambda: dl.layers.Dense(2), lambda: dl.layers.Dense(3, activation="relu"),
            lambda: dl.layers.Dropout(0.2), lambda: dl.layers.Flatten(),
            lambda: dl.layers.Activation("tanh"), lambda: dl.Input((4,)),
            lambda: dl.layers.Dense(2, input_shape=(4,)), lambda: dl.layers.Dense(2, input_dim=3)]
    n = draw(st.integers(0, 4))
    items = []
    for _ in range(n):
        if draw(st.integers(0, 3)):
            items.append(draw(st.sampled_from(good))())
        else:
            items.append(draw(st.one_of(fz.bad_scalars(), st.sampled_from(
                [dl.layers.Layer(), dl.losses.MeanSquaredError(), dl.Sequential, dl.layers.Dense,
                 dl.activations.relu]))))
    return items


@settings(deadline=None, suppress_health_check=SUPPRESS)
@given(items=layer_items(), adds=layer_items(), data=st.data())
def test_fuzz_sequential_and_add(items, adds, data):
    """Sequential(layers) and .add(layer) with junk among the layers: rejected naming
    ``layers``/``layer`` (or the layer at fault), else a model that predicts."""
    COUNTS["dl cases"] += 1
    layers_arg = data.draw(st.one_of(st.just(items), st.just(tuple(items)),
                                     fz.bad_scalars()), label="layers")
    backend = data.draw(st.sampled_from(BACKENDS + [None, "cuda", "nope", 3]), label="backend")
    name = data.draw(st.sampled_from([None, "m", 3, ""]), label="name")
    allowed = {"layers", "layer", "name", "backend", "input_shape", "trainable"}
    allowed |= {n for n in (getattr(x, "name", None) for x in list(items) + list(adds))
                if isinstance(n, str)}
    ok, model = attempt("Sequential", lambda: dl.Sequential(layers_arg, name=name,
                                                           backend=backend),
                        allowed, extra_ok=(ImportError,))
    if not ok:
        return
    for layer in adds:
        ok, _ = attempt("add", lambda: model.add(layer), allowed)
    ok, out = attempt("predict", lambda: model.predict(X, verbose=0),
                      allowed | {"x", "input_shape"}, extra_ok=())
    if ok:
        check_result("predict", np.asarray(out).shape[0] == 6, f"output shape {np.shape(out)}")


# ================================================================ compile
OPT_OK = st.sampled_from(["sgd", "adam", "adamw", "rmsprop", "adagrad", "SGD", "Adam",
                          dl.optimizers.SGD(0.01, momentum=0.9, nesterov=True),
                          dl.optimizers.Adam(amsgrad=True), dl.optimizers.RMSprop(centered=True,
                                                                                  momentum=0.5),
                          {"class_name": "SGD", "config": {"learning_rate": 0.05}},
                          {"class_name": "Adam", "config": {"clipnorm": 1.0}},
                          dl.optimizers.Adagrad, {"class_name": "adamw", "config": {}}])
LOSS_OK = st.sampled_from(["mse", "mae", "huber", "mean_squared_error", "binary_crossentropy",
                           "categorical_crossentropy", "sparse_categorical_crossentropy",
                           dl.losses.Huber(delta=0.5),
                           dl.losses.CategoricalCrossentropy(from_logits=True),
                           {"class_name": "MeanAbsoluteError", "config": {}}])
METRICS_OK = st.sampled_from([None, [], ["mae"], ["mse", "mae"], "mae"])


@settings(deadline=None, suppress_health_check=SUPPRESS)
@given(data=st.data(), backend=st.sampled_from(BACKENDS))
def test_fuzz_compile(data, backend):
    """compile with optimizer/loss/metrics by bad names, types and configs: rejected
    naming the argument (or the config key at fault), else one epoch of fit gives a
    finite loss and predict finite outputs."""
    kwargs, valid = {}, True
    for key, ok in (("optimizer", OPT_OK), ("loss", LOSS_OK), ("metrics", METRICS_OK)):
        if data.draw(st.integers(0, 3), label=f"{key} bad?") == 0:
            kwargs[key] = data.draw(fz.bad_identifiers(), label=key)
            valid = False
        else:
            kwargs[key] = data.draw(ok, label=key)
    if data.draw(st.integers(0, 6), label="extra?") == 0:
        key = data.draw(st.sampled_from(["loss_weights", "weighted_metrics",
                                         "steps_per_execution", "jit_compile", "run_eagerly",
                                         "bogus"]), label="extra key")
        kwargs[key] = data.draw(fz.bad_scalars(), label=key)
        valid = valid and key in ("jit_compile", "run_eagerly")
    model = small_model(backend, compiled=False)
    allowed = (params_of(model.compile) | {"metric", "optimizer", "loss", "reduction"}
               | keys_in(kwargs))
    COUNTS["dl cases"] += 1
    ok, _ = attempt("compile", lambda: model.compile(**kwargs), allowed)
    if not ok:
        check_result("compile", not valid, "valid arguments rejected")
        return
    y = targets(model.loss)
    ok, history = attempt("fit", lambda: model.fit(X, y, epochs=1, batch_size=4, verbose=0),
                          allowed | {"x", "y"})
    if not ok:
        check_result("fit", not valid, "fit failed after a valid compile")
        return
    check_result("fit", not valid or finite_history(history, 1), f"losses {history.history}")
    ok, out = attempt("predict", lambda: model.predict(X, verbose=0), {"x"})
    if ok:
        assert_output("predict", out, 6)


# ============================================================ fit and friends
def _x_values():
    return st.one_of(
        st.just(X), st.just(X.astype(np.float64)), st.just(X.tolist()),
        st.just(np.asfortranarray(X)), st.just(X[::-1]), st.just(X.astype(np.int32)),
        st.just(X > 0), fz.bad_data(),
        st.builds(lambda v: np.where(np.arange(24).reshape(6, 4) == 5, v, X).astype(np.float32),
                  st.sampled_from([np.nan, np.inf, -np.inf, 1e30])),
        st.just(np.broadcast_to(X[:1], (6, 4))), st.just(X[:, :3]), st.just(X[:1]),
        st.just(X.reshape(6, 2, 2)), st.just(X[:, 0]))


def _y_values(loss):
    y = targets(loss)
    return st.one_of(st.just(y), st.just(np.asarray(y).tolist()),
                     st.just(np.asarray(y, dtype=np.float64)), fz.bad_data(),
                     st.just(np.asarray(y)[:3]),
                     st.just(np.full_like(np.asarray(y, float), np.nan)),
                     st.just(np.asarray(y)[..., None]), st.just(np.asarray(y) + 7))


def _callbacks_values(tmp):
    cb = dl.callbacks
    good = [lambda: cb.History(), lambda: cb.EarlyStopping(monitor="loss", patience=1),
            lambda: cb.TerminateOnNaN(), lambda: cb.LambdaCallback(on_epoch_end=lambda e, l: None),
            lambda: cb.ModelCheckpoint(os.path.join(tmp, "ck-{epoch}.dlk"), monitor="loss"),
            lambda: cb.CSVLogger(os.path.join(tmp, "log.csv"))]
    items = st.lists(st.one_of(st.sampled_from(good).map(lambda f: f()), fz.bad_scalars(),
                               st.sampled_from([cb.Callback, dl.layers.Dense(2), print])),
                     max_size=3)
    return st.one_of(st.none(), items, items.map(tuple), fz.bad_scalars())


FIT_ARGS = {
    "batch_size": lambda: st.one_of(st.sampled_from([None, 1, 4, 100]), fz.batch_sizes()),
    "epochs": lambda: st.one_of(st.sampled_from([0, 1, 2]), fz.epochs_values()),
    "verbose": lambda: st.one_of(st.sampled_from([0, 1, 2, "auto"]), fz.bad_scalars()),
    "validation_split": lambda: st.one_of(st.sampled_from([0.0, 0.25, 0.5]),
                                          fz.validation_splits()),
    "shuffle": lambda: st.one_of(st.booleans(), fz.bad_scalars()),
    "initial_epoch": lambda: st.one_of(st.sampled_from([0, 1]), fz.bad_scalars()),
    "validation_freq": lambda: st.one_of(st.sampled_from([1, 2]), fz.bad_scalars()),
    "validation_batch_size": lambda: st.one_of(st.sampled_from([None, 2]), fz.batch_sizes()),
    "class_weight": lambda: st.one_of(st.none(), fz.bad_scalars()),
    "sample_weight": lambda: st.one_of(st.none(), fz.bad_data()),
    "steps_per_epoch": lambda: st.one_of(st.none(), fz.bad_scalars()),
}
VALID_FIT = {"batch_size": {None, 1, 4, 100}, "epochs": {0, 1, 2}, "verbose": {0, 1, 2, "auto"},
             "validation_split": {0.0, 0.25, 0.5}, "shuffle": {True, False},
             "initial_epoch": {0, 1}, "validation_freq": {1, 2},
             "validation_batch_size": {None, 2}, "class_weight": {None},
             "sample_weight": {None}, "steps_per_epoch": {None}}


def _is_valid(key, value):
    try:
        return any(value is v or (type(value) is type(v) and value == v) for v in VALID_FIT[key])
    except Exception:  # noqa: BLE001
        return False


def _data_is_valid(x, y, loss):
    try:
        xa = np.asarray(x)
        ya = np.asarray(y)
    except Exception:  # noqa: BLE001
        return False
    good_y = np.asarray(targets(loss))
    return (xa.shape == (6, 4) and xa.dtype.kind in "fiub" and np.isfinite(xa).all()
            and ya.shape == good_y.shape and ya.dtype.kind in "fiu" and
            np.array_equal(ya, good_y))


FIT_NAMES = None


@settings(deadline=None, suppress_health_check=SUPPRESS)
@given(data=st.data(), backend=st.sampled_from(BACKENDS),
       loss=st.sampled_from(["mse", "categorical_crossentropy",
                             "sparse_categorical_crossentropy", "binary_crossentropy"]))
def test_fuzz_fit(data, backend, loss):
    """fit with bad x/y (shapes, dtypes, NaN/inf, empty, ragged), batch sizes, epochs,
    validation_split/validation_data and callbacks: rejected naming the argument, else
    a History of finite losses and a model that still predicts finite outputs."""
    model = small_model(backend, loss=loss, metrics=["mae"] if loss == "mse" else ["accuracy"])
    with tempfile.TemporaryDirectory() as tmp, inside(tmp):
        x = data.draw(_x_values(), label="x")
        y = data.draw(_y_values(model.loss), label="y")
        kwargs, valid = {}, _data_is_valid(x, y, model.loss)
        for key, make in FIT_ARGS.items():
            if data.draw(st.integers(0, 3), label=f"{key}?") == 0:
                kwargs[key] = data.draw(make(), label=key)
                valid = valid and _is_valid(key, kwargs[key])
        if data.draw(st.integers(0, 4), label="callbacks?") == 0:
            kwargs["callbacks"] = data.draw(_callbacks_values(tmp), label="callbacks")
            valid = False
        if data.draw(st.integers(0, 4), label="validation_data?") == 0:
            kwargs["validation_data"] = data.draw(fz.validation_datas(4, 2), label="vd")
            valid = False
        if isinstance(kwargs.get("epochs"), (int, np.integer)) and not isinstance(
                kwargs.get("epochs"), bool) and kwargs["epochs"] > 3:
            kwargs["epochs"] = 3          # a valid but long request: not what is fuzzed
        allowed = params_of(model.fit) | {"x", "y", "validation_data", "layer"}
        COUNTS["dl cases"] += 1
        ok, history = attempt("fit", lambda: model.fit(x, y, **kwargs), allowed,
                              extra_ok=(OSError,) if "callbacks" in kwargs else ())
        if not ok:
            check_result("fit", not valid, "valid arguments rejected")
            return
        check_result("fit", isinstance(history, dl.callbacks.History),
                     f"fit returned {type(history).__name__}")
        if moderate(x) and moderate(kwargs.get("validation_data", [0])[0]
                                    if isinstance(kwargs.get("validation_data"), (tuple, list))
                                    and kwargs.get("validation_data") else 0):
            check_result("fit", finite_history(history), f"non-finite logs {history.history}",
                         symptom="silent" if history.history.get("val_loss") == [0.0] else None)
            for w in model.get_weights():
                check_result("fit", bool(np.isfinite(w).all()), "non-finite weights after fit")
        ok, out = attempt("predict", lambda: model.predict(X, verbose=0), {"x"})
        if ok:
            assert_output("predict", out, 6)


INFER = ("predict", "evaluate", "train_on_batch", "test_on_batch", "predict_on_batch",
         "__call__", "compute_gradients")


@settings(deadline=None, suppress_health_check=SUPPRESS)
@given(data=st.data(), backend=st.sampled_from(BACKENDS), entry=st.sampled_from(INFER),
       loss=st.sampled_from(["mse", "sparse_categorical_crossentropy"]))
def test_fuzz_predict_evaluate_train_on_batch(data, backend, entry, loss):
    """predict/evaluate/train_on_batch/test_on_batch/predict_on_batch/__call__ with bad
    data and arguments: rejected naming the argument, else correctly shaped results."""
    model = small_model(backend, loss=loss)
    x = data.draw(_x_values(), label="x")
    y = data.draw(_y_values(model.loss), label="y")
    kwargs = {}
    for key in ("batch_size", "verbose", "steps", "callbacks", "return_dict", "training",
                "sample_weight"):
        if data.draw(st.integers(0, 4), label=f"{key}?") == 0:
            kwargs[key] = data.draw(st.one_of(fz.bad_scalars(), fz.batch_sizes()), label=key)
    fn = getattr(model, entry)
    accepted = params_of(fn)
    kwargs = {k: v for k, v in kwargs.items() if k in accepted}
    takes_y = "y" in accepted
    call = (lambda: fn(x, y, **kwargs)) if takes_y else (lambda: fn(x, **kwargs))
    allowed = accepted | {"x", "y", "input_shape", "training"}
    valid = _data_is_valid(x, y, model.loss) if takes_y else _data_is_valid(
        x, targets(model.loss), model.loss)
    valid = valid and not kwargs
    COUNTS["dl cases"] += 1
    ok, result = attempt(entry, call, allowed)
    if not ok:
        check_result(entry, not valid, f"valid call rejected: {result}")
        return
    finite = moderate(x)
    if entry in ("predict", "predict_on_batch", "__call__"):
        n = np.asarray(x).shape[0]
        assert_output(entry, result, n, finite=finite)
    elif entry == "compute_gradients":
        loss_value, grads = result
        check_result(entry, len(grads) == 4, "gradient count")
    else:
        values = list(result.values()) if isinstance(result, dict) else np.atleast_1d(result)
        check_result(entry, not valid or all(math.isfinite(float(v)) for v in values),
                     f"non-finite {result}")


# ================================================================ callbacks
CALLBACK_ARGS = {
    "EarlyStopping": {"monitor": ["loss", "val_loss", "mae"], "min_delta": [0, 0.1],
                      "patience": [0, 1, 3], "verbose": [0, 1], "mode": ["auto", "min", "max"],
                      "baseline": [None, 10.0], "restore_best_weights": [False, True],
                      "start_from_epoch": [0, 1]},
    "ModelCheckpoint": {"filepath": ["{tmp}/ck-{epoch}.dlk", "{tmp}/ck.dlk"],
                        "monitor": ["loss", "val_loss"], "verbose": [0, 1],
                        "save_best_only": [False, True], "save_weights_only": [False, True],
                        "mode": ["auto", "min", "max"], "save_freq": ["epoch"],
                        "initial_value_threshold": [None, 100.0]},
    "CSVLogger": {"filename": ["{tmp}/log.csv"], "separator": [",", ";"],
                  "append": [False, True]},
    "TerminateOnNaN": {},
    "LambdaCallback": {"on_epoch_end": [None, lambda e, l: None],
                       "on_train_batch_end": [None, lambda b, l: None]},
    "ProgbarLogger": {"verbose": [1, 2]},
    "History": {},
}
CALLBACK_BAD = st.one_of(fz.bad_scalars(), st.sampled_from(
    ["{tmp}/{nope}.dlk", "{tmp}/{epoch:d}{", "{tmp}/no/such/dir/x.dlk", "{tmp}", "",
     "{tmp}/ck-{val_loss:.2f}.dlk", "\x00"]))


@settings(deadline=None, suppress_health_check=SUPPRESS)
@given(data=st.data(), cls_name=st.sampled_from(sorted(CALLBACK_ARGS)),
       backend=st.sampled_from(BACKENDS))
def test_fuzz_callbacks(data, cls_name, backend):
    """Every callback's constructor with fuzzed arguments, then fit with it (and a
    validation split): rejected naming the argument (an OSError for a path that cannot
    be written), else fit returns a History of finite losses."""
    cls = getattr(dl.callbacks, cls_name)
    with tempfile.TemporaryDirectory() as tmp, inside(tmp):
        kwargs, valid = {}, True
        for key, good in CALLBACK_ARGS[cls_name].items():
            if key in ("filepath", "filename") or data.draw(st.integers(0, 2), label=f"{key}?"):
                if data.draw(st.integers(0, 4), label=f"{key} bad?") == 0:
                    value = data.draw(CALLBACK_BAD, label=key)
                    valid = False
                else:
                    value = data.draw(st.sampled_from(good), label=key)
                if isinstance(value, str):
                    value = value.replace("{tmp}", tmp)
                kwargs[key] = value
        if data.draw(st.integers(0, 8), label="extra?") == 0:
            kwargs["bogus"] = 1
            valid = False
        allowed = params_of(cls.__init__) | {cls_name, "callbacks"}
        COUNTS["dl cases"] += 1
        ok, callback = attempt(cls_name, lambda: cls(**kwargs), allowed)
        if not ok:
            check_result(cls_name, not valid, f"valid arguments rejected: {callback}")
            return
        model = small_model(backend, metrics=["mae"])
        y = targets(model.loss)
        ok, history = attempt("fit", lambda: model.fit(X, y, epochs=2, batch_size=4, verbose=0,
                                                       validation_split=0.5,
                                                       callbacks=[callback]),
                              allowed | {"x", "y", "filepath"}, extra_ok=(OSError,))
        if not ok:
            check_result(cls_name, not valid, f"fit failed with a valid callback: {history}")
            return
        check_result("fit", finite_history(history, 2), f"logs {history.history}")


# ================================================================ load_model
@settings(deadline=None, suppress_health_check=SUPPRESS)
@given(blob=fz.adversarial_model_file(), compile_=st.booleans(),
       backend=st.sampled_from(BACKENDS + [None]))
def test_fuzz_load_model(blob, compile_, backend):
    """load_model on random bytes, truncated or bit-flipped files and hand-written .npz
    files with adversarial content: ValueError naming ``filepath``, or a model that
    predicts correctly shaped outputs (and trains, when compiled)."""
    data, what = blob
    note(what)
    COUNTS["dl cases"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.dlk")
        with open(path, "wb") as f:
            f.write(data)
        ok, model = attempt("load_model", lambda: dl.load_model(path, compile=compile_,
                                                                backend=backend),
                            {"filepath"})
        if not ok:
            return
        n_in = model.input_shape[1] if model.built else 2
        x = np.linspace(-1, 1, 3 * n_in, dtype=np.float32).reshape(3, n_in)
        ok, out = attempt("predict", lambda: model.predict(x, verbose=0), {"x", "input_shape"})
        if ok:
            check_result("load_model", np.asarray(out).shape[0] == 3, f"shape {np.shape(out)}")
        if model.compiled and ok:
            # an optimizer setting the kernels reject at the first step is named by them
            y = np.zeros(np.shape(out), np.float32)
            attempt("fit", lambda: model.fit(x, y, verbose=0),
                    {"x", "y"} | set(model.optimizer.get_config()))


@settings(deadline=None, suppress_health_check=SUPPRESS)
@given(path=st.one_of(fz.bad_scalars(), st.sampled_from(["", "/no/such/file.dlk", "/", ".",
                                                         b"/no/such", "\x00"])))
def test_fuzz_load_model_paths(path):
    """load_model's filepath itself: FileNotFoundError or ValueError/TypeError naming
    ``filepath`` (a directory, a bad type)."""
    COUNTS["dl cases"] += 1
    with tempfile.TemporaryDirectory() as tmp, inside(tmp):
        ok, exc = attempt("load_model", lambda: dl.load_model(path), {"filepath"},
                          extra_ok=(FileNotFoundError, IsADirectoryError, PermissionError))
    if isinstance(exc, FileNotFoundError):
        check_result("load_model", str(exc).startswith("filepath:"), f"message {exc}")


def test_missing_file_is_file_not_found_naming_filepath(tmp_path):
    with pytest.raises(FileNotFoundError, match="^filepath:"):
        dl.load_model(tmp_path / "absent.dlk")
