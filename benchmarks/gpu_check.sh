#!/usr/bin/env bash
# GPU checks, one script, under 5 minutes on one GPU: bash benchmarks/gpu_check.sh
#
# 1. the tests that need CUDA (they skip without it) and those of the fused backends:
#    pytest -k "cuda or triton or compile"
# 2. CUDA vs CPU forward and gradients of trace learning, BPTT and eligibility
#    (python -m benchmarks.gpu_check)
# 3. training-step time and peak CUDA memory (torch.cuda.max_memory_allocated) vs T for
#    tracetorch and snnTorch at B=256, H=1024, T in {1e3, 1e4, 1e5}; a case predicted to
#    pass its time budget (40 s) or 80 % of the device memory is skipped, with the reason
# 4. the recursion backends "compile" (torch.compile of blocks of steps) and "triton" (a
#    chunk as one kernel): the recursion alone and tracetorch's training step, speed,
#    compile time and agreement with the PyTorch form
#
# On a machine without CUDA it prints "gpu_check: SKIP: ..." and exits 0.
# PYTHON=... picks the interpreter (default: .venv/bin/python if present, else python3).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x .venv/bin/python ]; then PY=.venv/bin/python
else PY=python3; fi

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu_check: SKIP: no CUDA device (torch.cuda.is_available() is False); nothing checked"
    exit 0
fi
OUT=${OUT:-out/gpu-check}
mkdir -p "$OUT"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
status=0
echo "== 1. CUDA tests and the fused backends (pytest -k 'cuda or triton or compile')"
timeout 90 "$PY" -m pytest -q -rs -k "cuda or triton or compile" tests/ -p no:cacheprovider \
    || status=1
echo "== 2-4. gradients, speed and memory vs T, the compile and triton backends"
timeout 180 "$PY" -m benchmarks.gpu_check --backends compile,triton --total 140 \
    --json "$OUT/gpu_check.json" \
    || status=1
echo "gpu_check: results in $OUT/gpu_check.json; exit $status"
exit $status
