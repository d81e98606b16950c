#!/usr/bin/env bash
# On a machine with a hardware GPU: the figures this machine cannot make, in one unattended
# run that writes one markdown report (default gpu-report.md; the book's results pages
# take it as it is). Steps, each bounded by a timeout so the whole stays under 8 minutes
# once the CLI is built:
#   1. sparselab info
#   2. the kernel lab on the GPU (per layer, ResNet-34 whole, update kernels), batch 128
#   3. the crossover densities on the GPU: the rows wgpu's table in
#      engine/src/kernels/crossover.rs lacks
#   4. training throughput of ResNet-34 at 99.9%, GPU against Flex, dense / sparse / auto
#   5. a short EAST ResNet-34 run at 99.9% (300 steps, synthetic images) on the GPU
# Builds the CLI first if it is not built (scripts/setup.sh). Without a hardware GPU it
# says so and exits 1 before measuring anything.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

report="${1:-gpu-report.md}"
bin="$CARGO_TARGET_DIR/release/sparselab"
[ -x "$bin" ] || bash scripts/setup.sh
if ! probe=$("$bin" bench kernels --device gpu --models resnet8 --batch 1 --repeats 1 --layers-only --sparsities 0.9 2>&1); then
  echo "$probe" | tail -n 1 >&2
  echo "error: scripts/gpu-check.sh needs a hardware GPU; none was found (sparselab info lists the adapters)" >&2
  exit 1
fi

run_dir=$(mktemp -d)
trap 'rm -rf "$run_dir"' EXIT
# One section: its title, the command, and what it printed (or how it failed).
section() {
  local title=$1 limit=$2
  shift 2
  echo "== $title" >&2
  {
    printf '\n## %s\n\n```sh\nsparselab %s\n```\n\n' "$title" "$*"
    if ! timeout "$limit" "$bin" "$@" 2>"$run_dir/stderr"; then
      printf '\n**Failed or ran past %s s.** Its last messages:\n\n```\n' "$limit"
      tail -n 20 "$run_dir/stderr"
      printf '```\n'
    fi
  } >>"$report"
}

{
  echo "# GPU check"
  echo
  echo "Written by \`scripts/gpu-check.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
  echo
  echo '```'
  uname -srm
  nproc | sed 's/^/CPU cores: /'
  (nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "nvidia-smi: not available") | sed 's/^/GPU: /'
  echo '```'
} >"$report"
section "Backends and adapters" 30 info
section "Kernel lab" 150 bench kernels --device gpu --models resnet18,resnet34 --network resnet34 \
  --sparsities 0.9,0.99,0.999,0.9999 --batch 128 --repeats 5
section "Crossover densities" 90 bench kernels --device gpu --models resnet20,resnet18,resnet34 \
  --batch 128 --repeats 3 --crossover
section "Training throughput" 120 bench train --backends gpu,flex --model resnet34 --batch 128 \
  --sparsity 0.999 --kernels dense,sparse,auto --warmup 2 --steps 5
section "A short EAST ResNet-34 run" 90 train --config configs/east-resnet34-cifar10.toml \
  --device gpu --sparsity 0.999 --set 'data.kind="synthetic"' --set run.log_every=50 \
  --stop-after 300 --out "$run_dir/east"
echo "report: $report"
