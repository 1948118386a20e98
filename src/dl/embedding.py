"""Keras's ``Embedding`` layer: a table of ``input_dim`` vectors of ``output_dim``
values, looked up by integer id (the ``embedding_forward`` / ``embedding_backward``
kernels).  Also exported by ``dl.layers``."""
import numpy as np

from kernels.checks import describe, fits_in_memory, flag, short_repr

from . import constraints, initializers, regularizers
from .layers import Layer, _named


def _positive_int(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected a positive int, got {describe(value)}")
    if value < 1:
        raise ValueError(f"{name}: expected a positive int, got {short_repr(value)}")
    return int(value)


class Embedding(Layer):
    """Turns ids into dense vectors: ``output[..., :] = embeddings[ids[...]]``.

    Args:
        input_dim: the number of ids (the vocabulary size): ids are in
            ``[0, input_dim)``, any other raises (on the cuda backend, with ids on the
            device, it gives a NaN row).
        output_dim: the size of each vector.
        embeddings_initializer: Keras's default "uniform" (uniform in [-0.05, 0.05]).
        embeddings_regularizer, embeddings_constraint: as Dense's kernel ones.
        mask_zero: refused when True (dl has no masking).

    Input ``(batch, ...)`` of ids (integers, or floats holding whole numbers, as
    Keras casts them); output ``(batch, ..., output_dim)``.  The weight is
    ``embeddings``, ``(input_dim, output_dim)``; its gradient sums the output
    gradients of each id's positions, in position order (deterministic on every
    backend and thread count).  No gradient flows to the ids.
    """

    _SAVED = ("_ids",)
    _accepts_ids = True          # may consume integer inputs (dl.Input(dtype="int32"))

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 embeddings_regularizer=None, embeddings_constraint=None, mask_zero=False,
                 weights=None, lora_rank=None, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = _positive_int("input_dim", input_dim)
        self.output_dim = _positive_int("output_dim", output_dim)
        # the table (and its gradient) must fit in memory: refused now otherwise
        fits_in_memory("output_dim", (2, self.input_dim, self.output_dim), 4,
                       "an embeddings table and its gradient")
        self.embeddings_initializer = _named("embeddings_initializer", initializers.get,
                                             embeddings_initializer)
        self.embeddings_regularizer = _named("embeddings_regularizer", regularizers.get,
                                             embeddings_regularizer)
        self.embeddings_constraint = _named("embeddings_constraint", constraints.get,
                                            embeddings_constraint)
        if flag("mask_zero", mask_zero):
            raise ValueError("mask_zero: dl has no masking, so mask_zero=True is not "
                             "provided (see docs/keras-differences.md)")
        if lora_rank is not None:
            raise ValueError(f"lora_rank: not provided by dl, got {short_repr(lora_rank)}")
        self.mask_zero = False
        self._initial = weights
        self.embeddings = None

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def _weight_shapes(self, input_shape):
        return [(self.input_dim, self.output_dim)]

    def _build(self, input_shape, backend, dtype):
        super()._build(input_shape, backend, dtype)
        ops = backend.ops
        shape = (self.input_dim, self.output_dim)
        self.embeddings = ops.to_device(self.embeddings_initializer(shape, self.dtype))
        self.d_embeddings = ops.zeros(shape, self.dtype)
        if self._initial is not None:
            initial, self._initial = self._initial, None
            self.set_weights(initial)

    @property
    def weights(self):
        return [self.embeddings] if self.built and self.embeddings is not None else []

    @property
    def gradients(self):
        return [self.d_embeddings] if self.built and self.embeddings is not None else []

    @property
    def weight_names(self):
        return ("embeddings",)

    def constrained(self):
        c = self.embeddings_constraint
        return [] if c is None else [(self.embeddings, c)]

    def forward(self, x, training=False, step=0):
        shape = tuple(x.shape) + (self.output_dim,)
        out = self._buffer("y", shape) if training else self.backend.ops.empty(
            shape, self.dtype)
        y = self.backend.embedding_forward(x, self.embeddings, out)
        if training:
            self._ids = x
        return y

    def backward(self, dy, need_dx=True):
        self.backend.embedding_backward(dy, self._ids, self.d_embeddings)
        if not need_dx:
            return None
        # ids are cast to integers: nothing flows back through them (zeros)
        dx = self._buffers.get(("zero_dx", tuple(self._ids.shape)))
        if dx is None:
            dx = self._buffers[("zero_dx", tuple(self._ids.shape))] = \
                self.backend.ops.zeros(self._ids.shape, self.dtype)
        return dx

    def _regularized(self):
        r = self.embeddings_regularizer
        return [] if r is None else [(r, self.embeddings, self.d_embeddings)]

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim,
                "output_dim": self.output_dim,
                "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
                "embeddings_regularizer": regularizers.serialize(self.embeddings_regularizer),
                "embeddings_constraint": constraints.serialize(self.embeddings_constraint),
                "mask_zero": False}
