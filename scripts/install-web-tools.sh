#!/usr/bin/env bash
# Installs the wasm tools the browser builds need: the wasm32 target, wasm-bindgen-cli at
# Cargo.lock's version (its test runner too) and Trunk 0.21.14 (0.22 needs a newer rustc).
# Only checks when they are there. scripts/test.sh starts it in the background beside the
# native build, whose two cores are not both busy all the time; build-app.sh and
# test-browser.sh run it again.
# Compiled from crates.io: none of the registries reachable here (crates.io, PyPI, npm,
# Debian) ships an official prebuilt wasm-bindgen-cli or Trunk, and an install step that
# downloads a release binary from elsewhere cannot work on these machines.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

rustup target add wasm32-unknown-unknown >/dev/null
# Their own target dir: the workspace's is locked by the builds that run beside this.
tools="$HOME/.cache/sparselab-tools"
wb_version=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/[version ="]/, ""); print; exit}' Cargo.lock)
if ! grep -q "wasm_bindgen = \"$wb_version\"" Trunk.toml; then
  echo "error: Trunk.toml's [tools] wasm_bindgen must be $wb_version (Cargo.lock's wasm-bindgen)" >&2
  exit 1
fi
if ! wasm-bindgen --version 2>/dev/null | grep -q "$wb_version" \
  || ! wasm-bindgen-test-runner --version 2>/dev/null | grep -q "$wb_version"; then
  phase "tools: cargo install wasm-bindgen-cli $wb_version"
  # Not --locked: its lock file names a webpki-roots release that the registry here lacks.
  CARGO_TARGET_DIR="$tools" cargo install wasm-bindgen-cli --version "$wb_version"
  phase "tools: wasm-bindgen-cli installed"
fi
if ! trunk --version 2>/dev/null | grep -q "0.21.14"; then
  phase "tools: cargo install trunk 0.21.14"
  # Unoptimized (and without the fat LTO its release profile asks for): 3.5 instead of 8.5
  # CPU minutes to compile, and the page builds as fast, byte for byte the same, since
  # cargo, wasm-bindgen and wasm-opt do that work. These overrides reach no other build.
  CARGO_TARGET_DIR="$tools" CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_LTO=false \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 cargo install --locked trunk@0.21.14
  phase "tools: trunk installed"
fi
