#!/usr/bin/env bash
# One device run for the speed work (prepared on the CPU, ~6 min on an H100): the fused kernels' tests compiled
# for the GPU, then the side-by-side tables against torch-conv-kan (fp32, bf16) and the layer table (bf16).
#
#   bash benchmarks/gpu_check.sh [REFERENCE_DIR]      # default .reference (a git-ignored export of torch-conv-kan)
#
# Writes reports/vs-reference-$TAG.md, reports/vs-reference-$TAG-bf16.md and reports/layers-$TAG-bf16.md, TAG being
# the GPU's model (h100, h200, …) or $TAG. Needs only torch, triton, pytest and einops (the reference's models).
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REF=${1:-.reference}
OUT=${OUT:-reports}
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
TAG=${TAG:-$($PY -c "import torch; print(torch.cuda.get_device_name().split()[1].lower())")}
mkdir -p "$OUT"
$PY -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"
status=0
step() { echo "== $*"; timeout "$@" || { echo "== failed ($?): $*"; status=1; }; }
step 180 $PY -m pytest -q -p no:cacheprovider tests/test_kernels.py
step 120 $PY benchmarks/vs_reference.py --reference-dir "$REF" --device cuda --markdown "$OUT/vs-reference-$TAG.md"
step 120 $PY benchmarks/vs_reference.py --reference-dir "$REF" --device cuda --dtype bf16 \
    --markdown "$OUT/vs-reference-$TAG-bf16.md"
step 90 $PY benchmarks/layers.py --device cuda --dtype bf16 --markdown "$OUT/layers-$TAG-bf16.md"
exit $status
