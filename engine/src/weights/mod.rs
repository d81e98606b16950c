//! Weights in and out: a trained model as a safetensors file under PyTorch's CIFAR-ResNet
//! names (for PyTorch, inference runtimes, a paper's figure), and initial weights read
//! from such a file (a dense pretrained model to prune, or a sparse one to continue).

pub mod export;
pub mod exported_model;
pub mod import;
pub mod layout;

pub use export::{ExportError, ExportExtras, MASK_PREFIX, export_safetensors};
pub use exported_model::{ExportedModel, MAX_WEIGHTS_BYTES, read_exported_model};
pub use import::{InitialWeights, WeightsError, read_initial_weights};
pub use layout::{PyTorchTensor, Source, pytorch_layout};
