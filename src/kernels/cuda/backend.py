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
    column_sums, elu, gelu, leaky_relu, linear, relu, sigmoid, softmax, softplus, tanh)
from .dense import dense_backward, dense_forward  # noqa: E402,F401
from .gemm import gemm  # noqa: E402,F401
from .losses import (  # noqa: E402,F401
    backprop_binary_crossentropy, backprop_categorical_crossentropy, backprop_huber,
    backprop_mean_absolute_error, backprop_mean_squared_error,
    backprop_sparse_categorical_crossentropy, binary_crossentropy, categorical_crossentropy,
    huber, mean_absolute_error, mean_squared_error, softmax_crossentropy,
    sparse_categorical_crossentropy, sparse_softmax_crossentropy)
from .optimizers import (  # noqa: E402,F401
    adagrad_update, adam_update, adamw_update, rmsprop_update, sgd_update)

SIMULATOR = _nb.SIMULATOR
__all__ = list(_reference.__all__)

# each kernel documents itself with its reference twin's docstring (host or device
# arrays: see this module's docstring)
_reference.share_docs({name: globals()[name] for name in __all__}, "Numba CUDA twin")
