#!/usr/bin/env bash
# sparselab beside PyTorch eager on this machine's CPU, at batch 128 on 2 threads:
# ResNet-20 at 90% (the default run's setting) and ResNet-34 at 99.9% (the EAST paper's).
# PyTorch runs as the sparse-training libraries built on it do: a dense convolution of the
# masked weights (scripts/pytorch-peer/bench.py).
#
# PyPI's Linux torch wheel links the CUDA runtime (libcudart, libcublas, libcudnn, ...) even
# for CPU work, and the CUDA wheels behind it are gigabytes. So the venv gets torch with
# `pip install --no-deps` plus its pure-Python dependencies, and
# scripts/pytorch-peer/cuda_stubs.py writes small stand-ins for the CUDA libraries its .so
# files list as NEEDED (each symbol a function returning CUDA's "no device" code). They are
# on LD_LIBRARY_PATH for the PyTorch benchmark only; torch.cuda.is_available() is False.
#
# usage: scripts/bench-pytorch-peer.sh [STEPS]   (timed steps per row, default 5)
# Needs the release CLI (scripts/setup.sh). Run it on an idle machine: it times things.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
steps=${1:-5}
torch_version=${TORCH_VERSION:-2.15.0}
home=${SPARSELAB_TORCH_HOME:-$HOME/.cache/sparselab-torch}
venv=$home/venv
stubs=$home/cuda-stubs

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/pip" show torch >/dev/null 2>&1; then
  phase "pytorch peer: venv with torch $torch_version (no CUDA wheels)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --no-deps "torch==$torch_version"
  "$venv/bin/pip" install -q filelock "typing-extensions>=4.13" sympy networkx jinja2 fsspec
fi
lib=$("$venv/bin/python" -c 'import importlib.util, os; print(os.path.join(os.path.dirname(importlib.util.find_spec("torch").origin), "lib"))')
python3 scripts/pytorch-peer/cuda_stubs.py "$lib" "$stubs" >/dev/null
LD_LIBRARY_PATH="$stubs" "$venv/bin/python" -c 'import torch; assert not torch.cuda.is_available()'

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u +%Y-%m-%d)"
echo
echo "## sparselab (Flex)"
for run in "resnet20 0.9" "resnet34 0.999"; do
  set -- $run
  scripts/sparselab bench train --backends flex --model "$1" --sparsity "$2" \
    --batch 128 --steps "$steps" --kernels dense,auto
  echo
done
echo "## PyTorch eager, dense convolution of masked weights"
LD_LIBRARY_PATH="$stubs" "$venv/bin/python" scripts/pytorch-peer/bench.py \
  --models resnet20,resnet34 --sparsity 0.9,0.999 --batch 128 --threads 2 --steps "$steps"
