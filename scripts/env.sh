# Shared by the scripts: one target dir for every build, outside the clone so that
# warm runs (CI included) reuse it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sparselab-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Where `cargo install` puts Trunk and wasm-bindgen (a fresh shell may not have it on PATH).
export PATH="$HOME/.cargo/bin:$PATH"
# "== [elapsed] step" lines, so a CI log shows where a cold run spends its minutes. Elapsed
# from the start of scripts/test.sh (SPARSELAB_T0) when it runs the script, else from the
# script's own start.
phase() {
  local s=$SECONDS
  if [ -n "${SPARSELAB_T0:-}" ]; then s=$(($(date +%s) - SPARSELAB_T0)); fi
  echo "== [$((s / 60)) min $((s % 60)) s] $*"
}
