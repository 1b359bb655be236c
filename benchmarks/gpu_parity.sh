#!/usr/bin/env bash
# The parity runs this 2-core CPU cannot finish in a session (KAN and WavKAN at the seed's widths take hours per run
# here, the reference's WavKAN most; the CPU measured them at narrower widths, --widths), on a lent GPU: the same
# recipe and subset, both implementations of a (family, seed) pair on the same device.
#
#   mkdir -p data/fashion-mnist && cp /usr/share/datasets/fashion-mnist/*.gz data/fashion-mnist/   # make data
#   bash benchmarks/gpu_parity.sh [REFERENCE_DIR]       # carry .reference and data/fashion-mnist (git-ignored)
#
# Writes the new runs' JSON into $OUT (default reports/parity-fashion-mnist/results), which already holds the CPU
# runs (skipped); copy them back into that folder and regenerate the table with the README's command.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REF=${1:-.reference}
OUT=${OUT:-reports/parity-fashion-mnist/results}
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
export KANCONVS_DATA=${KANCONVS_DATA:-data/fashion-mnist}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
if [ "$OUT" != reports/parity-fashion-mnist/results ]; then  # the finished CPU pairs are skipped
    cp reports/parity-fashion-mnist/results/*.json "$OUT"/
fi
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
timeout "${LIMIT:-540}" $PY benchmarks/parity.py --reference-dir "$REF" --device cuda --families kan,wavkan \
    --seeds 0,1,2 --output "$OUT"
