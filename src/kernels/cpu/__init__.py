"""The cython backend: the reference's kernels compiled with Cython (nogil, OpenMP,
float32 and float64 from one source, SIMD variants chosen at run time).

Importing this package imports nothing compiled; ``kernels.get_backend("cython")``
loads ``kernels.cpu.backend``, which imports the extension modules.

Layout (each family has the name of its twin in ``kernels/cuda/``):
    backend.py        the public kernels, with the reference's signatures: argument
                      checks (kernels.checks), layout fixes, then the compiled code;
                      ``unchecked(dtype)``, dl's validated-once entry points
    gemm.pyx/.pxd     the GEMM dispatcher (sgemm/dgemm, the fused sgemm_ep/dgemm_ep)
                      and the gemm kernel's entry point
    gemm_impl.pxi     the blocked GEMM, compiled per instruction set into
                      gemm_base/_avx2/_avx512.pyx; its parts: gemm_pack, gemm_epilogue,
                      gemm_loops, gemm_narrow, gemm_driver (.pxi)
    dense.pyx         the dense layer's forward and backward passes
    elementwise.pyx/.pxd   the activations' dispatcher, their ids (ACT_*) and entry
                      points; elementwise_impl.pxi compiled into elementwise_base/
                      _avx2/_avx512.pyx
    losses.pyx/.pxd   the losses' dispatcher, ids and entry points; losses_impl.pxi
                      compiled into losses_base/_avx2/_avx512.pyx
    optimizers.pyx    SGD, Adam(W), RMSprop, Adagrad, one pass over memory each
    normalization.pyx/.pxd  the normalisation dispatcher (layer normalisation,
                      forward and backward; normalization_impl.pxi compiled into
                      normalization_base/_avx2/_avx512.pyx) and batch normalisation's
                      passes over the batch
    embedding.pyx     the embedding gather and its deterministic scatter-add
    conv.pyx/.pxd     convolutions: conv2d (conv1d as one row) on the GEMM with a
                      patch-matrix operand, depthwise; conv_impl.pxi (col2im, the
                      depthwise loops) compiled into conv_base/_avx2/_avx512.pyx
    pooling.pyx       max, average and global pooling, forward and backward
    _patches.pxd      the patch matrix's C declarations (dlk_patches.h), shared by the
                      GEMM variants and conv
    _threads.pyx/.pxd the thread count, its parallel threshold and adaptive cap
    _isa.pyx          the CPU's features; loading the per-ISA variants it can run
    _fmath.pxd        exp, log, tanh... for both widths (float32: our polynomials)
    _fastargs.pyx     the common case of gemm/dense arguments, accepted in C
    dlk_*.h           the C: GEMM vector kernels (dlk_gemm_vector.h,
                      dlk_gemm_kernels.h), its OpenMP team (dlk_gemm_team.h), the
                      patch matrix read while packing (dlk_patches.h), the float math
                      (dlk_fmath.h), the thread policy (dlk_threads.h), the CPU
                      feature probe (dlk_cpu_features.h)

setup.py builds every module for the baseline ISA and the ``*_avx2`` / ``*_avx512``
variants with their flags; docs/architecture.md tells how the pieces fit.
"""
