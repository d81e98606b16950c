#!/usr/bin/env bash
# Builds the playground page into dist/ with Trunk (release, offline), installing what is
# missing: the wasm32 target, Trunk and wasm-bindgen-cli (install-web-tools.sh) and npm's
# binaryen (wasm-opt; Debian's is too old and silently breaks the app).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

bash scripts/install-web-tools.sh
if [ ! -x tests/e2e/node_modules/.bin/wasm-opt ]; then
  if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
    else
      echo "error: needs Node.js and npm: sudo apt-get install nodejs npm" >&2
      exit 1
    fi
  fi
  phase "app: npm ci (binaryen's wasm-opt, playwright-core, axe-core)"
  (cd tests/e2e && npm ci --no-audit --no-fund)
fi
# Trunk finds wasm-bindgen and wasm-opt on PATH when their versions match Trunk.toml.
export PATH="$PWD/tests/e2e/node_modules/.bin:$PATH"
phase "app: trunk build (wasm32 build, wasm-bindgen, wasm-opt)"
trunk build --release "$@"
ls -l dist/*.wasm
