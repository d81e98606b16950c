#!/usr/bin/env bash
# The kernel tests in a browser: builds tests/browser for wasm32 and runs it in headless
# Chromium (Debian's package; WebGPU through SwiftShader with --enable-unsafe-webgpu),
# driven by wasm-bindgen-test-runner and chromedriver. Installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

bash scripts/install-web-tools.sh
if ! command -v chromedriver >/dev/null 2>&1 || [ ! -x /usr/lib/chromium/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    phase "browser: apt-get install chromium chromium-driver"
    apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "error: needs Debian's chromium and chromium-driver: sudo apt-get install chromium chromium-driver" >&2
    exit 1
  fi
fi
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
export CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver)}"
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-600}"
# The runner reads webdriver.json (Chromium's path and flags) from the working directory.
cd tests/browser
# Built first on its own, so the log tells the wasm32 build of Burn from the tests' time.
phase "browser: wasm32 build of the kernel tests"
cargo test --release --locked --target wasm32-unknown-unknown -p sparselab-browser-tests --no-run
phase "browser: kernel tests in Chromium"
cargo test --release --locked --target wasm32-unknown-unknown -p sparselab-browser-tests -- --nocapture
