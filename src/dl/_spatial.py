"""What the image layers share (convolutions, pooling, ZeroPadding2D, UpSampling2D):
Keras's argument forms (``kernel_size=3`` or ``(3, 3)``, padding names, the data
format) and the ``data_format`` edge.

The kernels compute channels_last (NHWC, or NWC for sequences).  A layer with
``data_format="channels_first"`` takes and gives NCHW: its forward permutes the batch
to channels_last (``ops.permute`` into a buffer of the layer), runs the channels_last
pass, and permutes the result back; its backward does the same with the gradients.
The layers below write only their channels_last passes (``_forward_last``,
``_backward_last``) and shapes (``_output_last``).
"""
import numpy as np

from kernels.checks import describe, short_repr

from . import config
from .layers import Layer


def int_tuple(name, value, n, allow_zero=False):
    """Keras's ``standardize_tuple``: an int, or an iterable of ``n`` ints, as a tuple
    of ``n`` ints, each positive (or >= 0 with ``allow_zero``)."""
    def is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
    if is_int(value):
        values = (int(value),) * n
    else:
        if not isinstance(value, (tuple, list)) or len(value) != n or not all(
                is_int(v) for v in value):
            raise ValueError(f"{name}: expected an int or a tuple of {n} ints, got "
                             f"{short_repr(value)}")
        values = tuple(int(v) for v in value)
    low = 0 if allow_zero else 1
    if any(v < low for v in values):
        raise ValueError(f"{name}: expected {'non-negative' if allow_zero else 'positive'} "
                         f"ints, got {short_repr(value)}")
    return values


def padding_mode(value, allow_causal=False):
    """Keras's ``standardize_padding``: "valid" or "same" (also "causal" for Conv1D),
    any case."""
    allowed = ("valid", "same", "causal") if allow_causal else ("valid", "same")
    padding = value.lower() if isinstance(value, str) else value
    if padding not in allowed:
        raise ValueError(f"padding: expected one of {', '.join(map(repr, allowed))}, got "
                         f"{short_repr(value)}")
    return padding


def positive_int(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected a positive int, got {describe(value)}")
    if value < 1:
        raise ValueError(f"{name}: expected a strictly positive int, got "
                         f"{short_repr(value)}")
    return int(value)


class Spatial(Layer):
    """Base of the image layers: ``_rank`` spatial axes and a channel axis, placed by
    ``data_format``; the passes work on channels_last arrays."""

    _rank = 2

    def _init_format(self, data_format):
        self.data_format = config.standardize_data_format(data_format)
        self._first = self.data_format == "channels_first"

    # shapes ------------------------------------------------------------------------
    def _check_rank(self, input_shape):
        if len(input_shape) != self._rank + 1:
            spatial = "steps" if self._rank == 1 else "height, width"
            order = (f"(batch, channels, {spatial})" if self._first
                     else f"(batch, {spatial}, channels)")
            raise ValueError(f"{self.name}: expected inputs of rank {self._rank + 2}, "
                             f"{order}, got shape {(None,) + tuple(input_shape)}")

    def _last(self, shape):
        """A sample shape of this layer's format as channels_last."""
        shape = tuple(shape)
        return shape[1:] + shape[:1] if self._first and len(shape) > 1 else shape

    def _in_format(self, shape):
        """A channels_last sample shape in this layer's format."""
        shape = tuple(shape)
        return shape[-1:] + shape[:-1] if self._first and len(shape) > 1 else shape

    def compute_output_shape(self, input_shape):
        self._check_rank(tuple(input_shape))
        return self._in_format(self._output_last(self._last(input_shape)))

    def _output_last(self, shape):
        """The output sample shape for channels_last samples of ``shape``."""
        raise NotImplementedError

    def _build(self, input_shape, backend, dtype):
        super()._build(input_shape, backend, dtype)
        self._in_last = self._last(self.input_shape)
        self._out_last = self._output_last(self._in_last)

    # buffers -----------------------------------------------------------------------
    def _array(self, key, shape, training, dtype=None, zero=False):
        """A training buffer of the layer (one per key, shape and call), or a fresh
        array in inference; ``zero``: zero-filled when made (a padded border that is
        never written afterwards)."""
        ops = self.backend.ops
        dtype = self.dtype if dtype is None else dtype
        if not training:
            return ops.zeros(shape, dtype) if zero else ops.empty(shape, dtype)
        if dtype == self.dtype and not zero:
            return self._buffer(key, shape)
        full = (key, shape) if not self._call_index else (key, shape, self._call_index)
        buf = self._buffers.get(full)
        if buf is None:
            buf = self._buffers[full] = (ops.zeros(shape, dtype) if zero
                                         else ops.empty(shape, dtype))
        return buf

    # the data_format edge ----------------------------------------------------------
    def _permuted(self, a, key, to_last, training):
        """``a`` (rank >= 3) with its channel axis moved last (``to_last``) or back
        to axis 1, into a buffer."""
        r = a.ndim
        axes = ((0,) + tuple(range(2, r)) + (1,)) if to_last else \
            ((0, r - 1) + tuple(range(1, r - 1)))
        shape = tuple(a.shape[k] for k in axes)
        return self.backend.ops.permute(a, axes, self._array(key, shape, training))

    def forward(self, x, training=False, step=0):
        if not self._first:
            return self._forward_last(x, training)
        y = self._forward_last(self._permuted(x, "cf_x", True, training), training)
        return y if y.ndim < 3 else self._permuted(y, "cf_y", False, training)

    def backward(self, dy, need_dx=True):
        if self._first and dy.ndim >= 3:
            dy = self._permuted(dy, "cf_dy", True, True)
        dx = self._backward_last(dy, need_dx)
        if dx is None or not self._first:
            return dx
        return self._permuted(dx, "cf_dx", False, True)

    def _forward_last(self, x, training):
        raise NotImplementedError

    def _backward_last(self, dy, need_dx):
        raise NotImplementedError

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}
