#!/usr/bin/env bash
# Builds the book (docs/, mdBook) into docs/book/ and checks its links and README.md's
# (scripts/check-doc-links.py): every relative link must name a file that exists and, with
# a #fragment, a heading of that page. Installs mdBook when it is missing
# (scripts/install-mdbook.sh). Part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

bash scripts/install-mdbook.sh

# Before the build, so that a page SUMMARY.md names but lacks is reported as such.
python3 scripts/check-doc-links.py summary
mdbook build docs
python3 scripts/check-doc-links.py links
