# Shared by the scripts: one target dir for every build, outside the clone so that
# warm runs (CI included) reuse it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sparselab-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Where `cargo install` puts Trunk and wasm-bindgen (a fresh shell may not have it on PATH).
export PATH="$HOME/.cargo/bin:$PATH"
