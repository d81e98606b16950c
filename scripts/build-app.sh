#!/usr/bin/env bash
# Builds the playground page into dist/ with Trunk (release, offline), installing what is
# missing: the wasm32 target, Trunk 0.21.14, wasm-bindgen-cli at Cargo.lock's version and
# npm's binaryen (wasm-opt; Debian's is too old and silently breaks the app).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

rustup target add wasm32-unknown-unknown >/dev/null
tools="$HOME/.cache/sparselab-tools"
wb_version=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/[version ="]/, ""); print; exit}' Cargo.lock)
if ! grep -q "wasm_bindgen = \"$wb_version\"" Trunk.toml; then
  echo "error: Trunk.toml's [tools] wasm_bindgen must be $wb_version (Cargo.lock's wasm-bindgen)" >&2
  exit 1
fi
if ! wasm-bindgen --version 2>/dev/null | grep -q "$wb_version"; then
  CARGO_TARGET_DIR="$tools" cargo install wasm-bindgen-cli --version "$wb_version"
fi
if ! trunk --version 2>/dev/null | grep -q "0.21.14"; then
  # 0.22 needs a newer rustc than this project's.
  CARGO_TARGET_DIR="$tools" cargo install --locked trunk@0.21.14
fi
if [ ! -x tests/e2e/node_modules/.bin/wasm-opt ]; then
  if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
    else
      echo "error: needs Node.js and npm: sudo apt-get install nodejs npm" >&2
      exit 1
    fi
  fi
  (cd tests/e2e && npm ci --no-audit --no-fund)
fi
# Trunk finds wasm-bindgen and wasm-opt on PATH when their versions match Trunk.toml.
export PATH="$PWD/tests/e2e/node_modules/.bin:$HOME/.cargo/bin:$PATH"
trunk build --release "$@"
ls -l dist/*.wasm
