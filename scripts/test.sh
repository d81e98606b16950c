#!/usr/bin/env bash
# The whole test suite: formatting and lints, then every unit, integration and end-to-end test
# (release profile: Burn in debug is too slow to train in tests). CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --release --locked --workspace --all-targets -- -D warnings
cargo test --release --locked --workspace 2>&1
# The kernel tests again in headless Chromium on WebGPU (the browser runs the same WGSL).
bash scripts/test-browser.sh
# The playground page end to end in headless Chromium (WebGPU and the CPU fallback).
bash scripts/test-e2e.sh
