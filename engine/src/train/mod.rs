//! The training loop (our own, thread-free and async at its read-backs so the same code
//! runs in a browser worker), its configuration, metrics and checkpoints.

pub mod checkpoint;
pub mod config;
pub mod eval;
#[cfg(feature = "native")]
pub mod memory;
pub mod metrics;
pub mod resume;
#[cfg(feature = "native")]
pub mod run;
#[cfg(feature = "native")]
pub mod run_lock;
pub mod trainer;

pub use checkpoint::Checkpoint;
pub use config::{RunConfig, TrainConfig};
pub use eval::Evaluation;
pub use metrics::{Event, LayerDensity};
pub use trainer::{Prediction, SchedulePoint, StepOutcome, TrainData, TrainError, Trainer};
