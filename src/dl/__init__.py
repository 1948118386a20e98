"""dl: a Keras-style deep-learning library for NumPy arrays, on compiled kernels.

>>> import dl
>>> model = dl.Sequential([dl.layers.Dense(1, input_shape=(2,))])
>>> model.compile(optimizer="sgd", loss="mean_squared_error")
>>> model.fit(x, y, epochs=1000)
>>> y_pred = model.predict(x)

Names, defaults and numerics follow Keras 3; every computation runs on one
``kernels`` backend (``dl.set_backend("numpy" | "cython" | "cuda")``).
"""
from . import (activations, callbacks, config, constraints, data, distribution,
               functional, initializers, layers, losses, metrics, models, ops, optimizers,
               regularizers, saving, utils)
from .config import get_backend, set_backend
from .layers import Input
from .models import Model, Sequential, load_model

__version__ = "0.1.0"

__all__ = ["Input", "Model", "Sequential", "activations", "callbacks", "config",
           "constraints", "data", "distribution", "functional", "get_backend",
           "initializers", "layers", "load_model", "losses", "metrics", "models", "ops",
           "optimizers", "regularizers", "saving", "set_backend", "utils"]
