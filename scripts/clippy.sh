#!/usr/bin/env bash
# Clippy with -D warnings on the workspace crates of a release build; the arguments select
# what to build, as for `cargo build`:
#   bash scripts/clippy.sh --workspace --all-targets
#   bash scripts/clippy.sh --target wasm32-unknown-unknown -p sparselab-app --bins
# `cargo clippy` is `cargo check` with clippy-driver compiling the workspace crates, and check
# mode cannot reuse a build's dependencies: it checks all of Burn again (9 minutes of a cold
# CI run). This runs the same driver in a release build, so the dependencies are the tests'
# own. The wrapper is part of the workspace crates' artifact hashes, so the linted and the
# plain builds are kept side by side and neither invalidates the other.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

driver=$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver || true)
if [ -z "$driver" ]; then
  echo "error: clippy-driver not found: rustup component add clippy" >&2
  exit 1
fi
# The workspace crates unoptimized: lints do not depend on code generation, and this build
# is only for them (half a minute instead of two for the workspace). Debug assertions and
# overflow checks stay off, as in release, so the same cfg is linted.
args=(-D warnings -C opt-level=0 -C debug-assertions=off -C overflow-checks=off)
# How cargo-clippy passes `-- ARGS` to the driver; the driver records it, so a change
# rebuilds what it linted.
clippy_args=$(printf '%s__CLIPPY_HACKERY__' "${args[@]}")
out=$(mktemp)
err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
status=0
# Diagnostics to the terminal (and $err), the JSON messages (artifacts) to $out.
{ RUSTC_WORKSPACE_WRAPPER="$driver" CLIPPY_ARGS="$clippy_args" \
  cargo build --release --locked --message-format=json-render-diagnostics "$@" 2>&1 >"$out"; } \
  | tee "$err" || status=$?
# Cargo copied the unoptimized binaries out of deps/ (to target/release/, where
# scripts/sparselab runs the CLI, or the wasm32 twin): remove them; the next plain build or
# test puts the release ones back.
{ grep -o '"executable":"[^"]*"' "$out" || true; } | sed 's/^"executable":"//; s/"$//' | while read -r exe; do
  if [ "$(basename "$(dirname "$exe")")" != deps ]; then rm -f "$exe"; fi
done
# The argument protocol above is clippy's internal one: should it change, lints would come
# back as warnings, and these are refused too (cargo repeats a fresh crate's warnings).
if [ "$status" = 0 ] && grep -Eq '^warning: `[^`]+` \(.+\) generated [0-9]+ warnings?' "$err"; then
  echo "error: warnings above (clippy runs with -D warnings)" >&2
  status=1
fi
exit "$status"
