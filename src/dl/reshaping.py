"""Shape layers: Keras's ``Reshape``, ``Permute``, ``RepeatVector``, ``Identity``,
and the image layers ``ZeroPadding2D`` and ``UpSampling2D``.

``Reshape`` and ``Identity`` move no data (a view of a C-contiguous batch);
``Permute``, ``RepeatVector``, ``ZeroPadding2D`` and ``UpSampling2D`` copy through
``backend.ops`` (``permute``, ``place_cols``/``take_cols``), on host and device arrays
alike.  Also exported by ``dl.layers``.
"""
import math

import numpy as np

from kernels.checks import describe, short_repr

from ._spatial import Spatial, int_tuple
from .layers import Layer


def _int_tuple(value, what):
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, (bool, np.bool_))
            for d in value):
        raise TypeError(f"{what}: expected a tuple of ints, got {short_repr(value)}")
    return tuple(int(d) for d in value)


class Identity(Layer):
    """Returns its input unchanged (in training and inference)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.built = True

    def forward(self, x, training=False, step=0):
        return x

    def backward(self, dy, need_dx=True):
        return dy if need_dx else None


class Reshape(Layer):
    """Reshapes each sample to ``target_shape`` (without the batch; one entry may be
    -1, inferred from the others), as Keras's."""

    _SAVED = ("_in_shape",)

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        shape = _int_tuple(target_shape, "target_shape")
        if shape.count(-1) > 1 or any(d < 1 and d != -1 for d in shape):
            raise ValueError(f"target_shape: expected positive ints and at most one -1, "
                             f"got {short_repr(target_shape)}")
        self.target_shape = shape
        self.built = True

    def compute_output_shape(self, input_shape):
        size = math.prod(input_shape)
        known = math.prod(d for d in self.target_shape if d != -1)
        if -1 in self.target_shape:
            if size % known:
                raise ValueError(f"{self.name}: cannot reshape samples of shape "
                                 f"{tuple(input_shape)} ({size} values) to "
                                 f"{self.target_shape}")
            return tuple(size // known if d == -1 else d for d in self.target_shape)
        if known != size:
            raise ValueError(f"{self.name}: total size of the new array must be unchanged: "
                             f"samples of shape {tuple(input_shape)} ({size} values), "
                             f"target_shape {self.target_shape} ({known} values)")
        return self.target_shape

    def forward(self, x, training=False, step=0):
        if training:
            self._in_shape = tuple(x.shape)
        return x.reshape((x.shape[0],) + tuple(self.output_shape))

    def backward(self, dy, need_dx=True):
        return dy.reshape(self._in_shape) if need_dx else None

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Permute(Layer):
    """Permutes the sample axes: ``dims`` is a permutation of 1..rank (the batch axis
    0 stays), e.g. ``Permute((2, 1))`` swaps the two axes of (batch, a, b)."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        dims = _int_tuple(dims, "dims")
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(f"dims: Invalid permutation argument `dims` for Permute "
                             f"layer: expected a permutation of 1..{len(dims)} (the batch "
                             f"axis 0 stays), got {dims}")
        self.dims = dims
        self.built = True

    def compute_output_shape(self, input_shape):
        if len(input_shape) != len(self.dims):
            raise ValueError(f"{self.name}: dims {self.dims} permute {len(self.dims)} "
                             f"sample axes, got inputs of shape "
                             f"{(None,) + tuple(input_shape)}")
        return tuple(input_shape[d - 1] for d in self.dims)

    def forward(self, x, training=False, step=0):
        axes = (0,) + self.dims
        shape = tuple(x.shape[a] for a in axes)
        out = self._buffer("y", shape) if training else self.backend.ops.empty(
            shape, self.dtype)
        return self.backend.ops.permute(x, axes, out)

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        axes = (0,) + self.dims
        inverse = tuple(int(i) for i in np.argsort(axes))
        shape = tuple(dy.shape[a] for a in inverse)
        return self.backend.ops.permute(dy, inverse, self._buffer("dx", shape))

    def get_config(self):
        return {**super().get_config(), "dims": list(self.dims)}


class RepeatVector(Layer):
    """Repeats each sample ``n`` times: ``(batch, d) -> (batch, n, d)``."""

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"n: expected a positive int, got {describe(n)}")
        if n < 1:
            raise ValueError(f"n: expected a positive int, got {short_repr(n)}")
        self.n = int(n)
        self.built = True

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(f"{self.name}: expected inputs of shape (batch, features), "
                             f"got {(None,) + tuple(input_shape)}")
        return (self.n, input_shape[0])

    def forward(self, x, training=False, step=0):
        ops = self.backend.ops
        rows, d = x.shape
        out = self._buffer("y", (rows, self.n, d)) if training else ops.empty(
            (rows, self.n, d), self.dtype)
        out2 = out.reshape(rows, self.n * d)
        for r in range(self.n):
            ops.place_cols(x, out2, r * d)
        return out

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        ops = self.backend.ops
        rows, n, d = dy.shape
        dy2 = dy.reshape(rows, n * d)
        dx = self._buffer("dx", (rows, d))
        ops.take_cols(dy2, 0, dx)
        if n > 1:
            part = self._buffer("part", (rows, d))
            for r in range(1, n):      # summed in order: the same for any backend
                ops.take_cols(dy2, r * d, part)
                ops.binary("add", dx, part, dx)
        return dx

    def get_config(self):
        return {**super().get_config(), "n": self.n}


# ------------------------------------------------------------ image reshaping
# ZeroPadding2D and UpSampling2D copy blocks of columns (``ops.place_cols`` /
# ``take_cols``) of 2-D views of the NHWC batch: the same code on host and device
# arrays.

class ZeroPadding2D(Spatial):
    """Keras's ZeroPadding2D: zeros added around each image.

    Args:
        padding: an int (all four sides), a tuple of 2 ints (symmetric height and
            width padding) or a tuple of 2 tuples of 2 ints ``((top, bottom), (left,
            right))``.
        data_format: "channels_last" or "channels_first" (None:
            ``dl.config.image_data_format()``).
    """

    _SAVED = ("_in_shape",)

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self._init_format(data_format)
        if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
            p = int_tuple("padding", padding, 2, allow_zero=True)
            self.padding = (p, p)
        elif isinstance(padding, (tuple, list)) and len(padding) == 2:
            self.padding = (int_tuple("padding", padding[0], 2, allow_zero=True),
                            int_tuple("padding", padding[1], 2, allow_zero=True))
        else:
            raise ValueError(f"padding: expected an int, a tuple of 2 ints or a tuple of "
                             f"2 tuples of 2 ints ((top, bottom), (left, right)), got "
                             f"{short_repr(padding)}")
        self.built = True

    def _output_last(self, shape):
        (top, bottom), (left, right) = self.padding
        return (shape[0] + top + bottom, shape[1] + left + right, shape[2])

    def _forward_last(self, x, training):
        ops = self.backend.ops
        (top, bottom), (left, right) = self.padding
        n, h, w, c = x.shape
        wide = w + left + right
        if training:
            self._in_shape = tuple(x.shape)
        if left or right:            # each image row placed inside a wider row
            xw = self._array("pad_w", (n, h, wide, c), training, zero=True)
            ops.place_cols(x.reshape(n * h, w * c), xw.reshape(n * h, wide * c), left * c)
            x = xw
        if top or bottom:            # the image's rows placed below the top rows
            out = self._array("pad_h", (n, h + top + bottom, wide, c), training, zero=True)
            ops.place_cols(x.reshape(n, h * wide * c),
                           out.reshape(n, (h + top + bottom) * wide * c), top * wide * c)
            x = out
        return x

    def _backward_last(self, dy, need_dx):
        if not need_dx:
            return None
        ops = self.backend.ops
        (top, bottom), (left, right) = self.padding
        n, h, w, c = self._in_shape
        wide = w + left + right
        if top or bottom:
            dh = self._buffer("dx_h", (n, h, wide, c))
            ops.take_cols(dy.reshape(n, (h + top + bottom) * wide * c), top * wide * c,
                          dh.reshape(n, h * wide * c))
            dy = dh
        if left or right:
            dx = self._buffer("dx", (n, h, w, c))
            ops.take_cols(dy.reshape(n * h, wide * c), left * c, dx.reshape(n * h, w * c))
            dy = dx
        return dy

    def get_config(self):
        return {**super().get_config(), "padding": [list(p) for p in self.padding]}


class UpSampling2D(Spatial):
    """Keras's UpSampling2D with nearest-neighbour interpolation: each pixel repeated
    ``size = (rows, cols)`` times (an int: both); its gradient sums each block.

    ``interpolation`` other than "nearest" is refused (not provided by dl).
    """

    _SAVED = ("_in_shape",)

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        self._init_format(data_format)
        self.size = int_tuple("size", size, 2)
        if not isinstance(interpolation, str) or interpolation.lower() != "nearest":
            raise ValueError(f"interpolation: dl provides 'nearest' only, got "
                             f"{short_repr(interpolation)}")
        self.interpolation = "nearest"
        self.built = True

    def _output_last(self, shape):
        return (shape[0] * self.size[0], shape[1] * self.size[1], shape[2])

    def _forward_last(self, x, training):
        ops = self.backend.ops
        sh, sw = self.size
        n, h, w, c = x.shape
        if training:
            self._in_shape = tuple(x.shape)
        if sw > 1:                   # each pixel repeated along its row
            xw = self._array("up_w", (n, h, w * sw, c), training)
            src, dst = x.reshape(n * h * w, c), xw.reshape(n * h * w, sw * c)
            for b in range(sw):
                ops.place_cols(src, dst, b * c)
            x = xw
        if sh > 1:                   # each row repeated
            out = self._array("up_h", (n, h * sh, w * sw, c), training)
            row = w * sw * c
            src, dst = x.reshape(n * h, row), out.reshape(n * h, sh * row)
            for a in range(sh):
                ops.place_cols(src, dst, a * row)
            x = out
        return x

    def _sum_blocks(self, d2, out2, width, count):
        """out2 = the sum of the ``count`` column blocks of ``width`` of d2, in order."""
        ops = self.backend.ops
        ops.take_cols(d2, 0, out2)
        if count > 1:
            part = self._buffer(("part", width), out2.shape)
            for k in range(1, count):
                ops.take_cols(d2, k * width, part)
                ops.binary("add", out2, part, out2)
        return out2

    def _backward_last(self, dy, need_dx):
        if not need_dx:
            return None
        sh, sw = self.size
        n, h, w, c = self._in_shape
        if sh > 1:
            row = w * sw * c
            dh = self._buffer("dx_h", (n, h, w * sw, c))
            self._sum_blocks(dy.reshape(n * h, sh * row), dh.reshape(n * h, row), row, sh)
            dy = dh
        if sw > 1:
            dx = self._buffer("dx", (n, h, w, c))
            self._sum_blocks(dy.reshape(n * h * w, sw * c), dx.reshape(n * h * w, c), c, sw)
            dy = dx
        return dy

    def get_config(self):
        return {**super().get_config(), "size": list(self.size),
                "interpolation": self.interpolation}
