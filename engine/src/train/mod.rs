//! The training loop (our own, thread-free and async at its read-backs so the same code
//! runs in a browser worker), its configuration, metrics and checkpoints.

pub mod checkpoint;
#[cfg(feature = "native")]
pub mod cli_sink;
pub mod config;
pub mod data;
pub mod driver;
pub mod error;
pub mod eval;
pub mod flops;
pub mod mask_state;
#[cfg(feature = "native")]
pub mod memory;
pub mod metrics;
pub mod resume;
#[cfg(feature = "native")]
pub mod run;
#[cfg(feature = "native")]
pub mod run_lock;
pub mod setting;
pub mod trainer;

pub use checkpoint::Checkpoint;
pub use config::{RunConfig, TrainConfig};
pub use data::TrainData;
pub use driver::{Advance, RunDriver, RunEnd, RunSink};
pub use error::TrainError;
pub use eval::{Evaluation, Prediction};
pub use mask_state::MaskState;
pub use metrics::{Event, LayerDensity, MaskUpdateRecord, StartRecord, StepRecord};
pub use setting::Setting;
pub use trainer::{MaskUpdateOutcome, SchedulePoint, StepOutcome, Trainer};
