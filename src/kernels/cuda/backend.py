"""The cuda backend module: every kernel of ``kernels.reference``, same signatures.

Loaded by ``kernels.get_backend("cuda")``.  Importing it raises ImportError, saying
what is missing, when numba-cuda is not installed or no CUDA GPU is usable (Numba's
simulator, ``NUMBA_ENABLE_CUDASIM=1``, counts as usable: that is how CI runs it).

Calls take NumPy arrays (copied to the device and back: a drop-in twin of the other
backends) or device arrays (Numba's, or any ``__cuda_array_interface__`` object, used
without a copy; results stay on the device, losses are 0-d device arrays), never a mix.
"""
from . import _nb

_reason = _nb.unavailable_reason()
if _reason is not None:
    raise ImportError(_reason)

from .. import reference as _reference  # noqa: E402
from ._arrays import to_device, to_host  # noqa: E402,F401
from . import devops as ops  # noqa: E402,F401
from ._compile import launches  # noqa: E402,F401
from .elementwise import (  # noqa: E402,F401
    backprop_elu, backprop_gelu, backprop_leaky_relu, backprop_linear, backprop_relu,
    backprop_sigmoid, backprop_softmax, backprop_softplus, backprop_tanh, bias_add,
    column_sums, elu, gelu, leaky_relu, linear, relu, sigmoid, softmax, softplus, tanh,
    relu6, backprop_relu6, selu, backprop_selu, silu, backprop_silu, hard_sigmoid,
    backprop_hard_sigmoid, hard_silu, backprop_hard_silu, mish, backprop_mish, exponential,
    backprop_exponential, softsign, backprop_softsign, log_softmax, backprop_log_softmax)
from .dense import dense_backward, dense_forward  # noqa: E402,F401
from .gemm import gemm  # noqa: E402,F401
from .losses import (  # noqa: E402,F401
    backprop_binary_crossentropy, backprop_categorical_crossentropy, backprop_huber,
    backprop_mean_absolute_error, backprop_mean_squared_error,
    backprop_sparse_categorical_crossentropy, binary_crossentropy, categorical_crossentropy,
    huber, mean_absolute_error, mean_squared_error, softmax_crossentropy,
    sparse_categorical_crossentropy, sparse_softmax_crossentropy,
    hinge, backprop_hinge, squared_hinge, backprop_squared_hinge, poisson, backprop_poisson,
    log_cosh, backprop_log_cosh, mean_absolute_percentage_error,
    backprop_mean_absolute_percentage_error, mean_squared_logarithmic_error,
    backprop_mean_squared_logarithmic_error, kl_divergence, backprop_kl_divergence,
    categorical_hinge, backprop_categorical_hinge, cosine_similarity,
    backprop_cosine_similarity)
from .embedding import embedding_backward, embedding_forward  # noqa: E402,F401
from .conv import (  # noqa: E402,F401
    conv1d_backward, conv1d_forward, conv2d_backward, conv2d_forward,
    depthwise_conv2d_backward, depthwise_conv2d_forward)
from .pooling import (  # noqa: E402,F401
    avg_pool2d_backward, avg_pool2d_forward, global_avg_pool2d_backward,
    global_avg_pool2d_forward, global_max_pool2d_backward, global_max_pool2d_forward,
    max_pool2d_backward, max_pool2d_forward)
from .normalization import (  # noqa: E402,F401
    batch_norm_backward, batch_norm_forward, batch_norm_inference, layer_norm_backward,
    layer_norm_forward)
from .optimizers import (  # noqa: E402,F401
    adagrad_update, adam_update, adamw_update, rmsprop_update, sgd_update)

SIMULATOR = _nb.SIMULATOR
__all__ = list(_reference.__all__)

# each kernel documents itself with its reference twin's docstring (host or device
# arrays: see this module's docstring)
_reference.share_docs({name: globals()[name] for name in __all__}, "Numba CUDA twin")
