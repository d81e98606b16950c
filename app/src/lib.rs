//! The sparselab playground. The page (`bin/page.rs`, Leptos) and the worker
//! (`bin/worker.rs`, the engine) share this library: the typed messages, the URL-hash
//! settings, the training session and the data behind the views. Those parts are plain
//! Rust, tested natively; the browser glue (`ui`, `worker`, `bridge`) is wasm32-only.

pub mod axes;
pub mod export;
pub mod heatmap;
pub mod histogram;
pub mod presets;
pub mod protocol;
pub mod session;
pub mod settings;

#[cfg(target_arch = "wasm32")]
pub mod bridge;
#[cfg(target_arch = "wasm32")]
pub mod constructors;
#[cfg(target_arch = "wasm32")]
pub mod ui;
#[cfg(target_arch = "wasm32")]
pub mod worker;
