#!/usr/bin/env bash
# Builds the playground (scripts/build-app.sh) and serves dist/ on http://localhost:${PORT:-8080}/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-app.sh
echo "serving http://localhost:${PORT:-8080}/ (Ctrl-C stops)"
# python3's server sends .wasm as application/wasm, which streaming compilation needs.
exec python3 -m http.server "${PORT:-8080}" --directory dist
