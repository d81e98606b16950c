//! Static constructors run once, at start-up, instead of on every call into the wasm.
//!
//! The engine's GPU stack registers its IR operations through `inventory`, whose entries
//! are static constructors. When a `wasm32-unknown-unknown` binary never calls
//! `__wasm_call_ctors` itself, wasm-ld assumes a one-call "command" module and wraps every
//! export in a call to it: every closure the browser invokes and every JS value handed to
//! the wasm (`__externref_table_alloc`) re-ran all constructors. Profiled in the page, that
//! was about two thirds of the main thread's busy time while training. Calling it here,
//! once, from `main`, turns the wrappers off.

unsafe extern "C" {
    fn __wasm_call_ctors();
}

/// Runs every static constructor. Call once, first thing in `main`.
pub fn run_once() {
    // SAFETY: wasm-ld synthesises `__wasm_call_ctors`; it takes no arguments and only runs
    // the registered constructors. Calling it explicitly (and only here, once) is what
    // keeps the linker from calling it again before every export.
    unsafe { __wasm_call_ctors() }
}
