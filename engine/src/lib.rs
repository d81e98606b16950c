//! sparselab's engine: data, models, sparsity, methods, schedules, the training loop,
//! metrics and checkpoints. One code path for every backend: Burn picks the backend by
//! the `Device` (Flex on CPU, wgpu natively, WebGPU in the browser).

pub use anyhow;
pub use burn;

pub mod axis;
#[cfg(feature = "native")]
pub mod bench;
pub mod data;
pub mod device;
#[cfg(feature = "native")]
pub mod host_memory;
pub mod kernels;
pub mod methods;
pub mod model;
pub mod optim;
pub mod rng;
pub mod schedule;
pub mod sparsity;
pub mod stats;
#[cfg(feature = "native")]
pub mod sweep;
pub mod train;
pub mod weights;
