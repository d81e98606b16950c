#!/usr/bin/env bash
# Builds the book (docs/, mdBook) into docs/book/ and checks its links and README.md's
# (scripts/check-doc-links.py): every relative link must name a file that exists and, with
# a #fragment, a heading of that page. Installs mdBook when it is missing. Part of
# scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

# From crates.io, mdBook's own channel: none of the registries reachable here ships an
# official prebuilt binary (PyPI's is an unofficial repackaging, npm's `mdbook` another
# program). Pinned, so every machine renders the same ids the link check relies on.
mdbook_version="0.5.4"
if ! mdbook --version 2>/dev/null | grep -qx "mdbook v$mdbook_version"; then
  # The tools' own target dir (as install-web-tools.sh): the workspace's may be locked by a
  # build running beside this one, which the low priority leaves the cores to.
  CARGO_TARGET_DIR="$HOME/.cache/sparselab-tools" \
    nice -n 19 cargo install --locked mdbook --version "$mdbook_version"
fi

# Before the build, so that a page SUMMARY.md names but lacks is reported as such.
python3 scripts/check-doc-links.py summary
mdbook build docs
python3 scripts/check-doc-links.py links
