"""Seeding and small helpers."""
import random

import numpy as np

_rng = np.random.default_rng()


def set_random_seed(seed):
    """Make initialisation, shuffling and dropout deterministic (as Keras's
    ``keras.utils.set_random_seed``: also seeds Python's and NumPy's global RNGs)."""
    global _rng
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative int, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    _rng = np.random.default_rng(seed)


def clear_session():
    """Keras's ``clear_session``: forget the names given so far, so the next layers,
    models and optimizers are named from scratch ("dense", "adam"...)."""
    from . import layers
    layers._name_counters.clear()


def global_rng():
    """The generator behind every unseeded random draw in ``dl``."""
    return _rng


def make_rng(seed=None):
    """A generator of its own for a seeded object, else the global one."""
    if seed is None:
        return _rng
    return np.random.default_rng(seed)


def to_categorical(y, num_classes=None, dtype="float32"):
    """One-hot encode integer class labels (as ``keras.utils.to_categorical``)."""
    y = np.asarray(y, dtype=np.int64)
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y.reshape(y.shape[:-1])
    if num_classes is None:
        num_classes = int(y.max()) + 1
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"y: expected class labels in [0, {num_classes}), got values in "
                         f"[{y.min()}, {y.max()}]")
    out = np.zeros(y.shape + (num_classes,), dtype=dtype)
    np.put_along_axis(out, y[..., None], 1, axis=-1)
    return out



class EpochShuffler:
    """The shuffled sample order of each epoch, for a model of seed ``seed``.

    ``permutation(epoch, n)`` is a function of (seed, epoch) only, so training resumed
    at any epoch shuffles exactly as an uninterrupted run.  A counter-based generator
    (Philox keyed by the seed, its counter set to the epoch) makes each epoch's draw
    cheap: no seed hashing, no new generator.
    """

    def __init__(self, seed):
        self._bitgen = np.random.Philox(key=int(seed) % 2**64)
        self._gen = np.random.Generator(self._bitgen)
        self._state = self._bitgen.state

    def permutation(self, epoch, n):
        state = self._state
        state["state"]["counter"] = np.array([0, 0, int(epoch) % 2**64, 0], dtype=np.uint64)
        state["buffer_pos"] = 4          # drop any buffered output of the last epoch
        state["has_uint32"] = 0
        self._bitgen.state = state
        return self._gen.permutation(n)


# Keras's keras.utils.PyDataset (defined with the other data sources)
from .data import PyDataset  # noqa: E402, F401


def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False,
               show_layer_names=True, rankdir="TB", expand_nested=False, dpi=96,
               show_layer_activations=False, show_trainable=False):
    """Keras's ``keras.utils.plot_model``, drawn with matplotlib (see ``dl._plot``)."""
    from ._plot import plot_model as _plot_model
    return _plot_model(model, to_file, show_shapes, show_dtype, show_layer_names, rankdir,
                       expand_nested, dpi, show_layer_activations, show_trainable)
