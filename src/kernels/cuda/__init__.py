"""The cuda backend: the reference's kernels as Numba CUDA kernels.

Importing this package imports nothing heavy; ``kernels.get_backend("cuda")`` loads
``kernels.cuda.backend``, which needs the optional extra (``pip install
'dlkernels[cuda]'``) and a CUDA GPU, or Numba's simulator (``NUMBA_ENABLE_CUDASIM=1``
set before Numba is first imported).

Layout:
    _nb.py         the only module that imports Numba / numba-cuda
    _compile.py    the kernel registry, the per-dtype factory, launch helpers
    _arrays.py     host/device classification, validation views, transfers
    elementwise.py, gemm.py, dense.py, losses.py, optimizers.py
                   each family's kernels and its public functions (the families of
                   ``kernels/cpu/``, by the same names)
    backend.py     the public kernels, with the reference's signatures
"""
