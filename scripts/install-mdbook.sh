#!/usr/bin/env bash
# Installs mdBook (the book's builder, pinned) when it is missing. scripts/test.sh starts it
# in the background after the wasm tools, beside the native build; check-book.sh runs it
# again, which only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

# From crates.io, mdBook's own channel: none of the registries reachable here ships an
# official prebuilt binary (PyPI's is an unofficial repackaging, npm's `mdbook` another
# program). Pinned, so every machine renders the same ids the link check relies on.
mdbook_version="0.5.4"
if ! mdbook --version 2>/dev/null | grep -qx "mdbook v$mdbook_version"; then
  phase "tools: cargo install mdbook $mdbook_version"
  # The tools' own target dir (as install-web-tools.sh): the workspace's may be locked by a
  # build running beside this one.
  CARGO_TARGET_DIR="$HOME/.cache/sparselab-tools" cargo install --locked mdbook --version "$mdbook_version"
  phase "tools: mdbook installed"
fi
