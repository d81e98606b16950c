#!/usr/bin/env bash
# The playground page end to end: builds dist/ (scripts/build-app.sh), then drives it in
# Debian's headless Chromium with playwright-core (tests/e2e/). Screenshots and timings
# land in tests/e2e/output/. Needs the native CLI built (one test imports its checkpoint).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/build-app.sh
# The browser-only code (page and worker glue) is linted here: native clippy cannot see it.
# Selected as Trunk's build is, so it reuses that build's dependencies (scripts/clippy.sh).
phase "page: clippy for wasm32"
bash scripts/clippy.sh --target wasm32-unknown-unknown -p sparselab-app --bins
if [ ! -x /usr/lib/chromium/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    phase "page: apt-get install chromium"
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else
    echo "error: needs Debian's chromium: sudo apt-get install chromium" >&2
    exit 1
  fi
fi
phase "page: tests in Chromium"
cd tests/e2e
# Each test file adds its figures to timings.json: start from none.
rm -f output/timings.json
node --test --test-concurrency=1 playground.test.mjs classroom.test.mjs
