#!/usr/bin/env bash
# The Python side of `sparselab export`: a venv with PyPI's safetensors and numpy (no torch),
# then tests/python/check_export.py on files exported from short runs of both ResNet
# families (EAST with weight sharing on ResNet-20, RigL at 99% on a bottleneck ResNet-50),
# and once on a tampered file, which it must refuse.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
venv=${SPARSELAB_PYTHON_HOME:-$HOME/.cache/sparselab-python}/venv
if ! "$venv/bin/python" -c 'import safetensors, numpy' 2>/dev/null; then
  # Like the SLURM test: where the venv or PyPI is out of reach, say so and skip.
  if ! python3 -m venv "$venv" || ! "$venv/bin/pip" install -q "safetensors==0.8.0" "numpy==2.4.6"; then
    echo "skipped: could not create a venv with PyPI's safetensors and numpy (python3-venv and PyPI are needed)"
    exit 0
  fi
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The runs' output is shown only when one fails.
train() { scripts/sparselab train "$@" --epochs 1 --batch-size 32 --set data.synthetic_size=100 \
  --device cpu -q >"$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }; }
train --model resnet20 --width 0.25 --method east --set method.east.dyrelu=false --out "$tmp/east"
train --model resnet50 --width 0.125 --method rigl --sparsity 0.99 --out "$tmp/rigl"
for run in east rigl; do
  scripts/sparselab export "$tmp/$run/checkpoint.bin" --out "$tmp/$run.safetensors" >/dev/null
  "$venv/bin/python" tests/python/check_export.py "$tmp/$run.safetensors"
done
# A weight brought back to life outside its mask: the check must catch it.
"$venv/bin/python" - "$tmp/rigl.safetensors" "$tmp/tampered.safetensors" <<'PY'
import sys
from safetensors import safe_open
from safetensors.numpy import load_file, save_file
tensors = load_file(sys.argv[1])
with safe_open(sys.argv[1], framework="numpy") as f:
    meta = f.metadata()
w, m = tensors["layer1.0.conv2.weight"], tensors["masks.layer1.0.conv2.weight"]
w[~m] = 1.0
save_file(tensors, sys.argv[2], metadata=meta)
PY
if "$venv/bin/python" tests/python/check_export.py "$tmp/tampered.safetensors" 2>"$tmp/err"; then
  echo "error: check_export.py accepted a weight outside its mask" >&2
  exit 1
fi
grep -q "non-zero weights where its mask is off" "$tmp/err"
echo "check_export.py refused the tampered file ($(cat "$tmp/err"))"
