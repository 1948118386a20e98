#!/usr/bin/env bash
# The GPU check, one command on a machine with an NVIDIA GPU (an H200 when lent):
#   bench/gpu/run.sh OUTDIR
# builds the package in place, runs the cuda tests for real (not under the simulator,
# with larger shapes), then benchmarks GEMM against CuPy's cuBLAS (TF32 off), the dense
# passes and one epoch of the MNIST-sized MLP on backend='cuda' against the cython
# backend and PyTorch CUDA (when installed), and the same for Keras's MNIST convnet,
# writing OUTDIR/results.md (the table),
# OUTDIR/results.json, OUTDIR/tests.txt and OUTDIR/build.log.  A few minutes in all.
set -u
OUT=${1:?usage: bench/gpu/run.sh OUTDIR}
mkdir -p "$OUT"
cd "$(dirname "$0")/../.."
export NUMBA_ENABLE_CUDASIM=0 CUPY_TF32=0 PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}
PY=${PYTHON:-python3}

echo "== build" | tee "$OUT/build.log"
$PY setup.py build_ext --inplace >>"$OUT/build.log" 2>&1 || { echo "build failed"; tail -30 "$OUT/build.log"; exit 1; }
nvidia-smi >>"$OUT/build.log" 2>&1

echo "== cuda tests on the GPU"
# (the PTX check is CI's: here every kernel is compiled for the real device anyway)
# (the convolution family's kernel tests run every backend: their cuda cases here)
timeout "${TEST_TIMEOUT:-300}" $PY -m pytest tests/cuda tests/kernels/test_conv.py \
    tests/kernels/test_pooling.py tests/kernels/test_batch_norm.py -k cuda \
    -q -p no:cacheprovider -x --durations=10 \
    --deselect tests/cuda/test_cuda_elementwise.py::test_every_kernel_compiles_to_ptx_for_sm90 \
    >"$OUT/tests.txt" 2>&1
status=$?
tail -5 "$OUT/tests.txt"

echo "== benchmarks"
timeout "${BENCH_TIMEOUT:-360}" $PY bench/gpu/gpu_bench.py --out "$OUT" ${BENCH_ARGS:-}
bench=$?
cat "$OUT/results.md" 2>/dev/null
exit $(( status != 0 ? status : bench ))
