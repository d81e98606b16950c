#!/usr/bin/env bash
# The whole test suite: formatting and lints, then every unit, integration and end-to-end test
# (release profile: Burn in debug is too slow to train in tests). CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
# Elapsed time at each phase (env.sh's `phase`), the scripts' own steps counted from here too,
# so a CI log shows where a cold run spends its minutes.
SPARSELAB_T0=$(date +%s)
export SPARSELAB_T0
# The tools (Trunk and wasm-bindgen, then mdBook) compile beside the native build and the
# native tests, which leave a core idle part of the time; the browser phases wait for them.
# At the lowest priority, so they take the idle core rather than half of the native build's.
tools_log=$(mktemp)
nice -n 19 bash -c "bash scripts/install-web-tools.sh && bash scripts/install-mdbook.sh" >"$tools_log" 2>&1 &
tools_pid=$!
trap 'pkill -P "$tools_pid" 2>/dev/null || true; kill "$tools_pid" 2>/dev/null || true; rm -f "$tools_log"' EXIT
phase "setup and native build"
bash scripts/setup.sh
phase "fmt and clippy"
cargo fmt --all -- --check
# `cargo clippy --release --workspace --all-targets -- -D warnings`, without checking every
# dependency again: it reuses the release build above (scripts/clippy.sh).
bash scripts/clippy.sh --workspace --all-targets
phase "native tests"
cargo test --release --locked --workspace 2>&1
# An exported model read from Python (PyPI's safetensors and numpy in a venv).
phase "export read from Python"
bash scripts/test-python-export.sh
# The parsers of user files under mutated input (proptest), each for a bounded time.
phase "fuzz targets (${SPARSELAB_FUZZ_SECONDS:=20} s each)"
SPARSELAB_FUZZ_SECONDS=$SPARSELAB_FUZZ_SECONDS \
  cargo test --release --locked --workspace --test fuzz -- --nocapture 2>&1
# A sweep on a real single-node SLURM (installed and started by the script).
phase "sweep on SLURM"
bash scripts/test-slurm.sh
# The kernel tests again in headless Chromium on WebGPU (the browser runs the same WGSL).
phase "kernel tests in the browser"
if ! wait "$tools_pid"; then
  cat "$tools_log"
  echo "error: installing the tools failed (its output is above)" >&2
  exit 1
fi
grep '^== ' "$tools_log" || true
bash scripts/test-browser.sh
# The playground page end to end in headless Chromium (WebGPU and the CPU fallback).
phase "page tests"
bash scripts/test-e2e.sh
phase "the book"
bash scripts/check-book.sh
phase "all passed"
