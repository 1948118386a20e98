"""Keras's ``BatchNormalization`` on the ``batch_norm_*`` kernels.  Also exported by
``dl.layers``.

Training (a training pass of a trainable layer) normalises with the batch's
statistics, per channel over every other axis, and updates the moving statistics in
place (the kernel does: ``moving = moving * momentum + batch * (1 - momentum)``);
inference, and training while the layer is frozen (``trainable=False``, as Keras 3),
normalise with the moving statistics.  ``gamma`` and ``beta`` are trainable,
``moving_mean`` and ``moving_variance`` not: they are the layer's
``non_trainable_weights``, saved and loaded with the others but never given to the
optimizer.
"""
import numpy as np

from kernels.checks import flag, real, short_repr

from . import constraints, initializers, regularizers
from .layers import Layer, _GammaBeta, _named


class BatchNormalization(_GammaBeta, Layer):
    """Normalises each channel: ``(x - mean) / sqrt(var + epsilon) * gamma + beta``.

    Args:
        axis: the channel axis (Keras's -1: the last).  Another axis is moved last
            and back at the layer's edge (``ops.permute``), e.g. ``axis=1`` after a
            channels_first convolution.
        momentum: of the moving statistics (0.99).
        epsilon: added to the variance (1e-3).
        center, scale: whether to learn ``beta`` / ``gamma``.
        beta_initializer, gamma_initializer, moving_mean_initializer,
        moving_variance_initializer: Keras's "zeros", "ones", "zeros", "ones".
        beta_regularizer, gamma_regularizer, beta_constraint, gamma_constraint: as
            Dense's.
        renorm, synchronized: refused when True (not provided by dl).

    Weights, in Keras's order: ``gamma`` (when ``scale``), ``beta`` (when
    ``center``), ``moving_mean``, ``moving_variance``, each ``(channels,)``; the last
    two are not trainable.
    """

    _SAVED = ("_x", "_batch_stats")

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, renorm=False, renorm_clipping=None,
                 renorm_momentum=0.99, synchronized=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"axis: expected an int (the channel axis), got "
                            f"{short_repr(axis)}")
        self.axis = int(axis)
        self.momentum = real("momentum", momentum, low=0.0, high=1.0)
        self.epsilon = real("epsilon", epsilon, low=0.0, low_open=True)
        self.center = flag("center", center)
        self.scale = flag("scale", scale)
        if flag("renorm", renorm):
            raise ValueError("renorm: batch renormalization is not provided by dl (see "
                             "docs/keras-differences.md)")
        if flag("synchronized", synchronized):
            raise ValueError("synchronized: dl trains on one device; synchronized=True is "
                             "not provided")
        self.renorm_clipping = renorm_clipping
        self.renorm_momentum = renorm_momentum
        for name, value in (("beta_initializer", beta_initializer),
                            ("gamma_initializer", gamma_initializer),
                            ("moving_mean_initializer", moving_mean_initializer),
                            ("moving_variance_initializer", moving_variance_initializer)):
            setattr(self, name, _named(name, initializers.get, value))
        self.beta_regularizer = _named("beta_regularizer", regularizers.get, beta_regularizer)
        self.gamma_regularizer = _named("gamma_regularizer", regularizers.get,
                                        gamma_regularizer)
        self.beta_constraint = _named("beta_constraint", constraints.get, beta_constraint)
        self.gamma_constraint = _named("gamma_constraint", constraints.get, gamma_constraint)
        self.gamma = self.beta = self.moving_mean = self.moving_variance = None

    # shapes and weights -----------------------------------------------------------
    def _channel_axis(self, input_shape):
        """The channel axis of samples of ``input_shape``, counting the batch as 0."""
        rank = len(input_shape) + 1
        if not -rank <= self.axis < rank or self.axis % rank == 0:
            raise ValueError(f"axis: {self.axis} is out of bounds for inputs of shape "
                             f"{(None,) + tuple(input_shape)} (the batch axis 0 is not a "
                             f"channel axis)")
        return self.axis % rank

    def compute_output_shape(self, input_shape):
        if len(input_shape) < 1:
            raise ValueError(f"{self.name}: expected inputs of shape (batch, ..., "
                             f"channels), got (batch,)")
        self._channel_axis(input_shape)
        return tuple(input_shape)

    def _weight_shapes(self, input_shape):
        input_shape = tuple(input_shape)
        self.compute_output_shape(input_shape)
        c = (input_shape[self._channel_axis(input_shape) - 1],)
        return [c] * (int(self.scale) + int(self.center) + 2)

    def _build(self, input_shape, backend, dtype):
        super()._build(input_shape, backend, dtype)
        ops = backend.ops
        axis = self._channel_axis(self.input_shape)
        c = (self.input_shape[axis - 1],)
        rank = len(self.input_shape) + 1
        # an inner channel axis: the batch is permuted to put it last, and back
        self._to_last = None if axis == rank - 1 else \
            tuple(a for a in range(rank) if a != axis) + (axis,)
        self._from_last = None if self._to_last is None else \
            tuple(int(a) for a in np.argsort(self._to_last))

        def make(init):
            return ops.to_device(init(c, self.dtype))
        self.gamma = make(self.gamma_initializer) if self.scale else None
        self.beta = make(self.beta_initializer) if self.center else None
        self.moving_mean = make(self.moving_mean_initializer)
        self.moving_variance = make(self.moving_variance_initializer)
        # the backward computes both parameters' gradients: scratch for an absent one
        self.d_gamma = ops.zeros(c, self.dtype)
        self.d_beta = ops.zeros(c, self.dtype)

    @property
    def _trainable_variables(self):
        return self._gamma_beta()

    @property
    def _non_trainable_variables(self):
        if not self.built:
            return []
        return [self.moving_mean, self.moving_variance]

    @property
    def weights(self):
        return self._trainable_variables + self._non_trainable_variables

    def _training_state(self):
        # a training forward updates the moving statistics unless frozen (Keras 3)
        return self._non_trainable_variables if self.trainable else []

    @property
    def weight_names(self):
        return self._gamma_beta_names() + ("moving_mean", "moving_variance")

    # passes -----------------------------------------------------------------------
    def _permute(self, a, axes, key, training):
        shape = tuple(a.shape[k] for k in axes)
        out = self._buffer(key, shape) if training else self.backend.ops.empty(
            shape, self.dtype)
        return self.backend.ops.permute(a, axes, out)

    def forward(self, x, training=False, step=0):
        be = self.backend
        if self._to_last is not None:
            x = self._permute(x, self._to_last, "x_last", training)
        out = self._buffer("y", tuple(x.shape)) if training else be.ops.empty(
            x.shape, self.dtype)
        batch_stats = training and self.trainable      # Keras 3: frozen uses moving
        if batch_stats:
            be.batch_norm_forward(x, self.gamma, self.beta, self.moving_mean,
                                  self.moving_variance, out, momentum=self.momentum,
                                  epsilon=self.epsilon)
        else:
            be.batch_norm_inference(x, self.gamma, self.beta, self.moving_mean,
                                    self.moving_variance, out, epsilon=self.epsilon)
        if training:
            self._x, self._batch_stats = x, batch_stats
        if self._to_last is not None:
            out = self._permute(out, self._from_last, "y_back", training)
        return out

    def backward(self, dy, need_dx=True):
        be = self.backend
        if self._to_last is not None:
            dy = self._permute(dy, self._to_last, "dy_last", True)
        if not (need_dx or self._batch_stats):
            return None          # frozen: no gradient of gamma and beta either
        dx = self._buffer("dx", tuple(dy.shape))
        if self._batch_stats:
            be.batch_norm_backward(dy, self._x, self.gamma, dx, self.d_gamma, self.d_beta,
                                   epsilon=self.epsilon)
        else:
            # the moving statistics are constants: dx = dy * gamma / sqrt(var + eps),
            # the inference pass of dy with a zero mean and no beta
            c = self.moving_variance.shape
            be.batch_norm_inference(dy, self.gamma, None, self._constant(0.0, c),
                                    self.moving_variance, dx, epsilon=self.epsilon)
        if not need_dx:
            return None
        if self._to_last is not None:
            dx = self._permute(dx, self._from_last, "dx_back", True)
        return dx

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "moving_mean_initializer":
                    initializers.serialize(self.moving_mean_initializer),
                "moving_variance_initializer":
                    initializers.serialize(self.moving_variance_initializer),
                "beta_regularizer": regularizers.serialize(self.beta_regularizer),
                "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
                "beta_constraint": constraints.serialize(self.beta_constraint),
                "gamma_constraint": constraints.serialize(self.gamma_constraint),
                "synchronized": False, "renorm": False,
                "renorm_clipping": self.renorm_clipping,
                "renorm_momentum": self.renorm_momentum}
