"""Keras's pooling layers: ``MaxPooling1D/2D``, ``AveragePooling1D/2D``,
``GlobalAveragePooling1D/2D`` and ``GlobalMaxPooling1D/2D``, on the ``max_pool2d_*``,
``avg_pool2d_*``, ``global_avg_pool2d_*`` and ``global_max_pool2d_*`` kernels.  A 1-D
layer runs the 2-D pass on its batch viewed as images of one row (``(n, steps, c)``
as ``(n, 1, steps, c)``: a reshape, no copy) with windows of one row.  Also exported
by ``dl.layers``."""
import numpy as np

from kernels.checks import flag, padding_amounts

from ._spatial import Spatial, int_tuple, padding_mode


class _Pooling(Spatial):
    """Max or average pooling over windows of ``pool_size`` moved by ``strides``."""

    _SAVED = ("_argmax", "_in_shape")
    _max = True

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(**kwargs)
        r = self._rank
        self.pool_size = int_tuple("pool_size", pool_size, r)
        self.strides = self.pool_size if strides is None else int_tuple("strides",
                                                                        strides, r)
        self.padding = padding_mode(padding)
        self._init_format(data_format)
        self.built = True        # no weights: ready at construction, as Keras's

    def _output_last(self, shape):
        out = []
        for size, k, s in zip(shape[:-1], self.pool_size, self.strides):
            o = padding_amounts(size, k, s, 1, self.padding)[2]
            if o <= 0:
                raise ValueError(
                    f"{self.name}: Computed output size would be zero or negative: "
                    f"inputs of shape {(None,) + self._in_format(shape)}, pool_size "
                    f"{self.pool_size}, strides {self.strides}, padding {self.padding!r}")
            out.append(o)
        return tuple(out) + (shape[-1],)

    def _kw(self):
        """The 2-D window arguments (one row for 1-D layers)."""
        if self._rank == 1:
            return dict(pool_size=(1,) + self.pool_size, strides=(1,) + self.strides,
                        padding=self.padding)
        return dict(pool_size=self.pool_size, strides=self.strides, padding=self.padding)

    def _image(self, a):
        """A 1-D batch ``(n, steps, c)`` as images of one row (a view)."""
        return a if self._rank == 2 else a.reshape(a.shape[0], 1, a.shape[1], a.shape[2])

    def _forward_last(self, x, training):
        shape = (x.shape[0],) + self._out_last
        out = self._array("y", shape, training)
        if self._max:
            argmax = self._array("argmax", (x.shape[0],) + self._image_out(), training,
                                 dtype=np.int32)
            self.backend.max_pool2d_forward(self._image(x), self._image(out), argmax,
                                            **self._kw())
            if training:
                self._argmax = argmax
        else:
            self.backend.avg_pool2d_forward(self._image(x), self._image(out), **self._kw())
        if training:
            self._in_shape = tuple(x.shape)
        return out

    def _image_out(self):
        out = self._out_last
        return out if self._rank == 2 else (1,) + out

    def _backward_last(self, dy, need_dx):
        if not need_dx:
            return None
        dx = self._buffer("dx", self._in_shape)
        if self._max:
            self.backend.max_pool2d_backward(self._image(dy), self._argmax, self._image(dx),
                                             **self._kw())
        else:
            self.backend.avg_pool2d_backward(self._image(dy), self._image(dx), **self._kw())
        return dx

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "padding": self.padding, "strides": list(self.strides)}


class MaxPooling2D(_Pooling):
    """Keras's 2-D max pooling: the largest value of each ``pool_size`` window
    (``strides`` None: ``pool_size``; "same" padding counts padded cells as -inf).
    Its gradient goes to the first maximum of each window (row-major order); a NaN
    wins."""

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None,
                 name=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, name=name, **kwargs)


class MaxPooling1D(_Pooling):
    """Keras's 1-D max pooling over ``(batch, steps, channels)``."""

    _rank = 1

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None,
                 name=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, name=name, **kwargs)


class AveragePooling2D(_Pooling):
    """Keras's 2-D average pooling: the mean of each window's cells (with "same"
    padding, of its real cells only)."""

    _max = False
    _SAVED = ("_in_shape",)

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None,
                 name=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, name=name, **kwargs)


class AveragePooling1D(_Pooling):
    """Keras's 1-D average pooling over ``(batch, steps, channels)``."""

    _rank = 1
    _max = False
    _SAVED = ("_in_shape",)

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None,
                 name=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, name=name, **kwargs)


class _GlobalPooling(Spatial):
    """The mean or the maximum over every spatial axis: ``(batch, channels)``, or
    with ``keepdims`` the spatial axes kept as 1s."""

    _SAVED = ("_argmax", "_in_shape")
    _max = True

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self._init_format(data_format)
        self.keepdims = flag("keepdims", keepdims)
        self.built = True

    def _output_last(self, shape):
        return ((1,) * self._rank if self.keepdims else ()) + (shape[-1],)

    def _image(self, a):
        return a if self._rank == 2 else a.reshape(a.shape[0], 1, a.shape[1], a.shape[2])

    def _forward_last(self, x, training):
        n, c = x.shape[0], x.shape[x.ndim - 1]
        out = self._array("y", (n,) + self._out_last, training)
        flat = out.reshape(n, c)
        if self._max:
            argmax = self._array("argmax", (n, c), training, dtype=np.int32)
            self.backend.global_max_pool2d_forward(self._image(x), flat, argmax)
            if training:
                self._argmax = argmax
        else:
            self.backend.global_avg_pool2d_forward(self._image(x), flat)
        if training:
            self._in_shape = tuple(x.shape)
        return out

    def _backward_last(self, dy, need_dx):
        if not need_dx:
            return None
        dx = self._buffer("dx", self._in_shape)
        dy = dy.reshape(dy.shape[0], dy.shape[dy.ndim - 1])
        if self._max:
            self.backend.global_max_pool2d_backward(dy, self._argmax, self._image(dx))
        else:
            self.backend.global_avg_pool2d_backward(dy, self._image(dx))
        return dx

    def get_config(self):
        return {**super().get_config(), "keepdims": self.keepdims}


class GlobalAveragePooling2D(_GlobalPooling):
    """Keras's GlobalAveragePooling2D: the mean over height and width."""

    _max = False
    _SAVED = ("_in_shape",)


class GlobalAveragePooling1D(_GlobalPooling):
    """Keras's GlobalAveragePooling1D: the mean over the steps (no masking)."""

    _rank = 1
    _max = False
    _SAVED = ("_in_shape",)


class GlobalMaxPooling2D(_GlobalPooling):
    """Keras's GlobalMaxPooling2D: the maximum over height and width (its gradient
    to the first maximum; a NaN wins)."""


class GlobalMaxPooling1D(_GlobalPooling):
    """Keras's GlobalMaxPooling1D: the maximum over the steps."""

    _rank = 1
