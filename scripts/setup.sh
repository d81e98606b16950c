#!/usr/bin/env bash
# Installs what sparselab needs on a fresh Debian machine and builds the CLI (release).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

need_rust="1.95"
if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found. Install Rust $need_rust or newer (rustup) and run this again." >&2
  exit 1
fi
have=$(rustc --version | awk '{print $2}')
if [ "$(printf '%s\n%s\n' "$need_rust" "$have" | sort -V | head -n1)" != "$need_rust" ]; then
  echo "error: rustc $have is older than $need_rust (Burn 0.22 needs it): rustup update" >&2
  exit 1
fi
# A C compiler for the few crates with C parts (ring, for HTTPS downloads).
if ! command -v cc >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    phase "setup: apt-get install build-essential"
    apt-get update -qq && apt-get install -y -qq build-essential
  else
    echo "error: no C compiler: sudo apt-get install build-essential" >&2
    exit 1
  fi
fi
# Mesa's lavapipe: a software Vulkan device, so the tests exercise the wgpu (GPU) code path
# on machines without a GPU. Never used to train.
if ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    phase "setup: apt-get install mesa-vulkan-drivers"
    apt-get update -qq && apt-get install -y -qq mesa-vulkan-drivers >/dev/null
  else
    echo "note: mesa-vulkan-drivers is not installed; the wgpu test will be skipped" >&2
  fi
fi
# The same selection as `cargo test --workspace`, so that building and testing share one
# feature resolution (building the binary alone resolves features differently and
# would rebuild much of Burn each time you switch between the two).
phase "setup: cargo build --release --workspace --all-targets"
cargo build --release --locked --workspace --all-targets
echo "built: $CARGO_TARGET_DIR/release/sparselab"
