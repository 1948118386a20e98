"""Keras's convolution layers: ``Conv1D``, ``Conv2D``, ``DepthwiseConv2D`` and
``SeparableConv2D``, on the ``conv1d_*``, ``conv2d_*`` and ``depthwise_conv2d_*``
kernels (NHWC, Keras's kernel layout, bias and activation fused as in Dense's passes).
Also exported by ``dl.layers``.

A pass has Dense's two paths: fused (the kernel applies the bias and a default-
parameter activation, one backward call) and unfused (an activation with other
parameters: a linear convolution into z, the activation's own kernels on rows of z).
``SeparableConv2D`` is a depthwise pass (no bias, linear) followed by its 1x1
pointwise convolution as one dense product over every pixel (``dense_forward`` on an
``(n * h * w, channels)`` view).
"""
import math

import numpy as np

from kernels.checks import fits_in_memory, flag, padding_amounts, short_repr

from . import activations as activations_module
from . import constraints, initializers, regularizers
from ._spatial import Spatial, int_tuple, padding_mode, positive_int
from .layers import _named


def _rows(a):
    """``a`` as (pixels, channels): a view of a C-contiguous array (device arrays'
    shapes take no negative index)."""
    c = a.shape[a.ndim - 1]
    return a.reshape(a.size // c, c)


def _refuse(activity_regularizer, lora_rank=None):
    if activity_regularizer is not None:
        raise ValueError(f"activity_regularizer: not provided by dl (see "
                         f"docs/keras-differences.md), got {short_repr(activity_regularizer)}")
    if lora_rank is not None:
        raise ValueError(f"lora_rank: not provided by dl, got {short_repr(lora_rank)}")


class _ConvBase(Spatial):
    """The window geometry and the fused / unfused passes every convolution shares."""

    _SAVED = ("_x", "_z", "_y")

    def _init_window(self, kernel_size, strides, padding, data_format, dilation_rate,
                     activation, use_bias, causal=False):
        self._init_format(data_format)
        r = self._rank
        self.kernel_size = int_tuple("kernel_size", kernel_size, r)
        self.strides = int_tuple("strides", strides, r)
        self.dilation_rate = int_tuple("dilation_rate", dilation_rate, r)
        self.padding = padding_mode(padding, allow_causal=causal)
        self.activation = _named("activation", activations_module.get,
                                 "linear" if activation is None else activation)
        self.use_bias = flag("use_bias", use_bias)

    def _spatial_out(self, shape):
        """The output's spatial sizes for channels_last samples of ``shape``; a
        "valid" size of zero or less is Keras's ValueError."""
        out = []
        for size, k, s, d in zip(shape[:-1], self.kernel_size, self.strides,
                                 self.dilation_rate):
            o = padding_amounts(size, k, s, d, self.padding)[2]
            if o <= 0:
                raise ValueError(
                    f"{self.name}: Computed output size would be zero or negative: "
                    f"inputs of shape {(None,) + self._in_format(shape)}, kernel_size "
                    f"{self.kernel_size}, dilation_rate {self.dilation_rate}, strides "
                    f"{self.strides}, padding {self.padding!r}")
            out.append(o)
        return tuple(out)

    def _window_kw(self):
        return dict(strides=self.strides, padding=self.padding,
                    dilation_rate=self.dilation_rate)

    # the passes -------------------------------------------------------------------
    def _pass_forward(self, fwd, x, w, b, out_shape, training, **kw):
        be, act = self.backend, self.activation
        out = self._array("y", out_shape, training)
        if act.is_default:
            z = self._array("z", out_shape, training) if act.needs_input else None
            y = fwd(x, w, b, out, activation=act.name, pre_activation=z, **kw)
        else:
            z = self._array("z", out_shape, training)
            fwd(x, w, b, z, activation="linear", **kw)
            act.forward(be, _rows(z), _rows(out))
            y = out
        if training:
            self._x, self._z, self._y = x, z, y
        return y

    def _pass_backward(self, bwd, dy, w, dw, db, need_dx, **kw):
        be, act = self.backend, self.activation
        dx = self._buffer("dx", tuple(self._x.shape)) if need_dx else None
        if act.is_default:
            bwd(dy, self._x, w, self._y, activation=act.name, pre_activation=self._z,
                dx=dx, dw=dw, db=db, need_dx=need_dx, use_bias=db is not None, **kw)
        else:
            dz = self._buffer("dz", tuple(dy.shape))
            act.backward(be, _rows(dy), _rows(self._z), _rows(self._y), _rows(dz))
            bwd(dz, self._x, w, dz, activation="linear", dx=dx, dw=dw, db=db,
                need_dx=need_dx, use_bias=db is not None, **kw)
        return dx

    # weights ----------------------------------------------------------------------
    # Keras's weights in order: (name, the initializer's, regularizer's and
    # constraint's attributes).  A weight is the attribute of its name, its gradient
    # "d_<name>"; the bias is absent without use_bias.
    _WEIGHTS = ()

    def _present(self):
        return [entry for entry in self._WEIGHTS
                if entry[0] != "bias" or self.use_bias]

    @property
    def weights(self):
        if not self.built:
            return []
        return [getattr(self, name) for name, _, _, _ in self._present()]

    @property
    def gradients(self):
        if not self.built:
            return []
        return [getattr(self, "d_" + name) for name, _, _, _ in self._present()]

    @property
    def weight_names(self):
        return tuple(name for name, _, _, _ in self._present())

    def _regularized(self):
        return [(getattr(self, reg), getattr(self, name), getattr(self, "d_" + name))
                for name, _, reg, _ in self._present() if getattr(self, reg) is not None]

    def constrained(self):
        return [(getattr(self, name), getattr(self, con))
                for name, _, _, con in self._present() if getattr(self, con) is not None]

    def _build(self, input_shape, backend, dtype):
        """Check the inputs, then create each weight with its initializer (on the
        host: the same numbers on every backend) and its gradient."""
        self._check_rank(tuple(input_shape))
        shapes = self._weight_shapes(input_shape)
        itemsize = np.dtype(self.dtype if self.dtype is not None else dtype).itemsize
        fits_in_memory("input_shape", (2 * sum(math.prod(s) for s in shapes),), itemsize,
                       f"weights of {self.name!r} and their gradients")
        super()._build(input_shape, backend, dtype)
        ops = backend.ops
        for (name, init, _, _), shape in zip(self._present(), shapes):
            setattr(self, name, ops.to_device(getattr(self, init)(shape, self.dtype)))
            setattr(self, "d_" + name, ops.zeros(shape, self.dtype))
        if not self.use_bias:
            self.bias = self.d_bias = None

    def _config(self):
        return {"kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding, "data_format": self.data_format,
                "dilation_rate": list(self.dilation_rate)}


class _Conv(_ConvBase):
    """Conv1D and Conv2D: kernel ``kernel_size + (channels // groups, filters)``."""

    _WEIGHTS = (("kernel", "kernel_initializer", "kernel_regularizer", "kernel_constraint"),
                ("bias", "bias_initializer", "bias_regularizer", "bias_constraint"))

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, lora_rank=None,
                 lora_alpha=None, **kwargs):
        super().__init__(**kwargs)
        _refuse(activity_regularizer, lora_rank)
        self.filters = positive_int("filters", filters)
        self.groups = positive_int("groups", groups)
        if self.filters % self.groups:
            raise ValueError(f"filters: The number of filters must be evenly divisible by "
                             f"the number of groups. Received: groups={self.groups}, "
                             f"filters={self.filters}.")
        self._init_window(kernel_size, strides, padding, data_format, dilation_rate,
                          activation, use_bias, causal=self._rank == 1)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"strides: `strides > 1` not supported in conjunction with "
                             f"`dilation_rate > 1`. Received: strides={self.strides} and "
                             f"dilation_rate={self.dilation_rate}")
        # None: the add_weight defaults, glorot_uniform and zeros
        self.kernel_initializer = _named("kernel_initializer", initializers.get,
                                         kernel_initializer) or initializers.GlorotUniform()
        self.bias_initializer = _named("bias_initializer", initializers.get,
                                       bias_initializer) or initializers.Zeros()
        self.kernel_regularizer = _named("kernel_regularizer", regularizers.get,
                                         kernel_regularizer)
        self.bias_regularizer = _named("bias_regularizer", regularizers.get, bias_regularizer)
        self.kernel_constraint = _named("kernel_constraint", constraints.get,
                                        kernel_constraint)
        self.bias_constraint = _named("bias_constraint", constraints.get, bias_constraint)
        self.kernel = self.bias = None

    def _output_last(self, shape):
        cin = shape[-1]
        if cin % self.groups:
            raise ValueError(f"{self.name}: The number of input channels must be evenly "
                             f"divisible by the number of groups. Received groups="
                             f"{self.groups}, but the input has {cin} channels (full "
                             f"input shape is {(None,) + self._in_format(shape)}).")
        return self._spatial_out(shape) + (self.filters,)

    def _weight_shapes(self, input_shape):
        self._check_rank(tuple(input_shape))
        shape = self._last(input_shape)
        self._output_last(shape)
        kernel = self.kernel_size + (shape[-1] // self.groups, self.filters)
        return [kernel] + ([(self.filters,)] if self.use_bias else [])

    def _kw(self):
        return {**self._window_kw(), "groups": self.groups}

    def _forward_last(self, x, training):
        n = x.shape[0]
        return self._pass_forward(self._fwd, x, self.kernel, self.bias,
                                  (n,) + self._out_last, training, **self._kw())

    def _backward_last(self, dy, need_dx):
        return self._pass_backward(self._bwd, dy, self.kernel, self.d_kernel, self.d_bias,
                                   need_dx, **self._kw())

    @property
    def _fwd(self):
        return self.backend.conv2d_forward

    @property
    def _bwd(self):
        return self.backend.conv2d_backward

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, **self._config(),
                "groups": self.groups,
                "activation": activations_module.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "activity_regularizer": None,
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint)}


class Conv2D(_Conv):
    """Keras's 2-D convolution: ``activation(conv2d(x, kernel) + bias)``.

    Args:
        filters: the number of output channels.
        kernel_size, strides, dilation_rate: an int or a tuple of 2 ints (strides > 1
            with dilation_rate > 1 is Keras's ValueError).
        padding: "valid" (none) or "same" (output ``ceil(size / stride)``, the odd
            padded pixel after, as Keras).
        data_format: "channels_last" (NHWC) or "channels_first" (NCHW); None:
            ``dl.config.image_data_format()``.
        groups: input channels and filters split into this many groups.
        activation, use_bias, kernel_initializer, bias_initializer,
        kernel_regularizer, bias_regularizer, kernel_constraint, bias_constraint: as
            Dense's (glorot fans of a conv kernel: ``cin * kh * kw`` and
            ``filters * kh * kw``).

    Weights: ``kernel`` ``(kh, kw, channels // groups, filters)``, ``bias``
    ``(filters,)``.
    """

    _rank = 2

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid",
                 data_format=None, dilation_rate=(1, 1), groups=1, activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(filters, kernel_size, strides, padding, data_format,
                         dilation_rate, groups, activation, use_bias, kernel_initializer,
                         bias_initializer, kernel_regularizer, bias_regularizer,
                         activity_regularizer, kernel_constraint, bias_constraint, **kwargs)


class Conv1D(_Conv):
    """Keras's 1-D convolution over ``(batch, steps, channels)`` (channels_first:
    ``(batch, channels, steps)``): Conv2D's arguments with one spatial axis, and
    ``padding="causal"`` (``dilation_rate * (kernel_size - 1)`` zeros before the
    sequence, none after: ``output[t]`` reads no input after ``t``).

    Weights: ``kernel`` ``(kernel_size, channels // groups, filters)``, ``bias``.
    """

    _rank = 1

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(filters, kernel_size, strides, padding, data_format,
                         dilation_rate, groups, activation, use_bias, kernel_initializer,
                         bias_initializer, kernel_regularizer, bias_regularizer,
                         activity_regularizer, kernel_constraint, bias_constraint, **kwargs)

    @property
    def _fwd(self):
        return self.backend.conv1d_forward

    @property
    def _bwd(self):
        return self.backend.conv1d_backward


class DepthwiseConv2D(_ConvBase):
    """Keras's depthwise 2-D convolution: each input channel convolved with its own
    ``depth_multiplier`` filters, ``channels * depth_multiplier`` outputs.

    Args: Conv2D's window arguments, ``depth_multiplier``, ``activation``,
    ``use_bias``, ``depthwise_initializer`` / ``_regularizer`` / ``_constraint`` (the
    kernel's) and the bias's.

    Weights (Keras 3's names): ``kernel`` ``(kh, kw, channels, depth_multiplier)``,
    ``bias`` ``(channels * depth_multiplier,)``.
    """

    _rank = 2
    _WEIGHTS = (("kernel", "depthwise_initializer", "depthwise_regularizer",
                 "depthwise_constraint"),
                ("bias", "bias_initializer", "bias_regularizer", "bias_constraint"))

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1,
                 data_format=None, dilation_rate=(1, 1), activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, depthwise_constraint=None,
                 bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        _refuse(activity_regularizer)
        self.depth_multiplier = positive_int("depth_multiplier", depth_multiplier)
        self._init_window(kernel_size, strides, padding, data_format, dilation_rate,
                          activation, use_bias)
        self.depthwise_initializer = _named("depthwise_initializer", initializers.get,
                                            depthwise_initializer) or \
            initializers.GlorotUniform()
        self.bias_initializer = _named("bias_initializer", initializers.get,
                                       bias_initializer) or initializers.Zeros()
        self.depthwise_regularizer = _named("depthwise_regularizer", regularizers.get,
                                            depthwise_regularizer)
        self.bias_regularizer = _named("bias_regularizer", regularizers.get, bias_regularizer)
        self.depthwise_constraint = _named("depthwise_constraint", constraints.get,
                                           depthwise_constraint)
        self.bias_constraint = _named("bias_constraint", constraints.get, bias_constraint)
        self.kernel = self.bias = None

    def _output_last(self, shape):
        return self._spatial_out(shape) + (shape[-1] * self.depth_multiplier,)

    def _weight_shapes(self, input_shape):
        self._check_rank(tuple(input_shape))
        shape = self._last(input_shape)
        self._output_last(shape)
        cin = shape[-1]
        return [self.kernel_size + (cin, self.depth_multiplier)] + (
            [(cin * self.depth_multiplier,)] if self.use_bias else [])

    def _forward_last(self, x, training):
        return self._pass_forward(self.backend.depthwise_conv2d_forward, x, self.kernel,
                                  self.bias, (x.shape[0],) + self._out_last, training,
                                  **self._window_kw())

    def _backward_last(self, dy, need_dx):
        return self._pass_backward(self.backend.depthwise_conv2d_backward, dy, self.kernel,
                                   self.d_kernel, self.d_bias, need_dx, **self._window_kw())

    def get_config(self):
        return {**super().get_config(), "depth_multiplier": self.depth_multiplier,
                **self._config(),
                "activation": activations_module.serialize(self.activation),
                "use_bias": self.use_bias,
                "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "depthwise_regularizer": regularizers.serialize(self.depthwise_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "activity_regularizer": None,
                "depthwise_constraint": constraints.serialize(self.depthwise_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint)}


class SeparableConv2D(_ConvBase):
    """Keras's depthwise-separable 2-D convolution: a depthwise convolution (window
    arguments, ``depth_multiplier``; no bias, linear), then a 1x1 convolution to
    ``filters`` channels with the bias and the activation.

    Weights (Keras's order and names): ``depthwise_kernel`` ``(kh, kw, channels,
    depth_multiplier)``, ``pointwise_kernel`` ``(1, 1, channels * depth_multiplier,
    filters)``, ``bias`` ``(filters,)``.
    """

    _rank = 2
    _SAVED = ("_x", "_z", "_y", "_h")
    _WEIGHTS = (("depthwise_kernel", "depthwise_initializer", "depthwise_regularizer",
                 "depthwise_constraint"),
                ("pointwise_kernel", "pointwise_initializer", "pointwise_regularizer",
                 "pointwise_constraint"),
                ("bias", "bias_initializer", "bias_regularizer", "bias_constraint"))

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid",
                 data_format=None, dilation_rate=(1, 1), depth_multiplier=1,
                 activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 pointwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_regularizer=None, pointwise_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, pointwise_constraint=None,
                 bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        _refuse(activity_regularizer)
        self.filters = positive_int("filters", filters)
        self.depth_multiplier = positive_int("depth_multiplier", depth_multiplier)
        self._init_window(kernel_size, strides, padding, data_format, dilation_rate,
                          activation, use_bias)
        for part in ("depthwise", "pointwise", "bias"):
            init = {"depthwise": depthwise_initializer, "pointwise": pointwise_initializer,
                    "bias": bias_initializer}[part]
            setattr(self, f"{part}_initializer",
                    _named(f"{part}_initializer", initializers.get, init)
                    or (initializers.Zeros() if part == "bias"
                        else initializers.GlorotUniform()))
        self.depthwise_regularizer = _named("depthwise_regularizer", regularizers.get,
                                            depthwise_regularizer)
        self.pointwise_regularizer = _named("pointwise_regularizer", regularizers.get,
                                            pointwise_regularizer)
        self.bias_regularizer = _named("bias_regularizer", regularizers.get, bias_regularizer)
        self.depthwise_constraint = _named("depthwise_constraint", constraints.get,
                                           depthwise_constraint)
        self.pointwise_constraint = _named("pointwise_constraint", constraints.get,
                                           pointwise_constraint)
        self.bias_constraint = _named("bias_constraint", constraints.get, bias_constraint)
        self.depthwise_kernel = self.pointwise_kernel = self.bias = None

    def _output_last(self, shape):
        return self._spatial_out(shape) + (self.filters,)

    def _weight_shapes(self, input_shape):
        self._check_rank(tuple(input_shape))
        shape = self._last(input_shape)
        self._output_last(shape)
        mid = shape[-1] * self.depth_multiplier
        return [self.kernel_size + (shape[-1], self.depth_multiplier),
                (1, 1, mid, self.filters)] + ([(self.filters,)] if self.use_bias else [])

    def _forward_last(self, x, training):
        be, act = self.backend, self.activation
        n = x.shape[0]
        mid = self._in_last[-1] * self.depth_multiplier
        h = self._array("h", (n,) + self._out_last[:-1] + (mid,), training)
        be.depthwise_conv2d_forward(x, self.depthwise_kernel, None, h,
                                    activation="linear", **self._window_kw())
        # the pointwise 1x1 convolution: one product over every pixel
        h2 = _rows(h)
        pw = self.pointwise_kernel.reshape(mid, self.filters)
        shape = (n,) + self._out_last
        out = self._array("y", shape, training)
        if act.is_default:
            z = self._array("z", shape, training) if act.needs_input else None
            be.dense_forward(h2, pw, self.bias, _rows(out), activation=act.name,
                             pre_activation=None if z is None else _rows(z))
        else:
            z = self._array("z", shape, training)
            be.dense_forward(h2, pw, self.bias, _rows(z), activation="linear")
            act.forward(be, _rows(z), _rows(out))
        if training:
            self._x, self._h, self._z, self._y = x, h, z, out
        return out

    def _backward_last(self, dy, need_dx):
        be, act = self.backend, self.activation
        mid = self._h.shape[3]
        pw = self.pointwise_kernel.reshape(mid, self.filters)
        d_pw = self.d_pointwise_kernel.reshape(mid, self.filters)
        dh = self._buffer("dh", tuple(self._h.shape))
        dy2, z2 = _rows(dy), None if self._z is None else _rows(self._z)
        if act.is_default:
            be.dense_backward(dy2, _rows(self._h), pw, _rows(self._y), activation=act.name,
                              pre_activation=z2, dx=_rows(dh), dw=d_pw, db=self.d_bias,
                              use_bias=self.use_bias)
        else:
            dz = _rows(self._buffer("dz", tuple(dy.shape)))
            act.backward(be, dy2, z2, _rows(self._y), dz)
            be.dense_backward(dz, _rows(self._h), pw, dz, activation="linear",
                              dx=_rows(dh), dw=d_pw, db=self.d_bias, use_bias=self.use_bias)
        dx = self._buffer("dx", tuple(self._x.shape)) if need_dx else None
        be.depthwise_conv2d_backward(dh, self._x, self.depthwise_kernel, dh,
                                     activation="linear", dx=dx,
                                     dw=self.d_depthwise_kernel, need_dx=need_dx,
                                     use_bias=False, **self._window_kw())
        return dx

    def get_config(self):
        return {**super().get_config(), "depth_multiplier": self.depth_multiplier,
                "filters": self.filters, **self._config(),
                "activation": activations_module.serialize(self.activation),
                "use_bias": self.use_bias,
                "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
                "pointwise_initializer": initializers.serialize(self.pointwise_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "depthwise_regularizer": regularizers.serialize(self.depthwise_regularizer),
                "pointwise_regularizer": regularizers.serialize(self.pointwise_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "activity_regularizer": None,
                "depthwise_constraint": constraints.serialize(self.depthwise_constraint),
                "pointwise_constraint": constraints.serialize(self.pointwise_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint)}
