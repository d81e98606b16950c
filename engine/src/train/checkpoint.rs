//! Checkpoints: model parameters and running statistics, optimizer momentum, masks, the
//! step, and the epoch's running sums — everything a resumed run needs to continue as if
//! never stopped. One self-describing file: a magic line, the header's length, a JSON
//! header and its CRC-32, then raw little-endian data, each tensor with its CRC-32 in the
//! header. Every length, offset and checksum is verified on load, so a flipped bit or a
//! crafted header is an error that names the file, never a silently wrong model. Written
//! to a temporary file, synced and renamed, so a crash never leaves a half-written
//! checkpoint behind. The same bytes load in the browser.

mod exact_f64;
mod format;

pub use format::write_atomic;

use super::config::TrainConfig;
use crate::data::Normalization;
use crate::model::{ResNet, map_params};
use crate::sparsity::{LayerMask, Masks, SparseLayer, sparse_layers};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Payload {
    F32(Vec<f32>),
    Bits(Vec<bool>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NamedTensor {
    pub name: String,
    pub dims: Vec<usize>,
    #[serde(skip)]
    pub payload: Option<Payload>,
}

/// Running sums of the current epoch (so a resume mid-epoch reports the same averages).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochSums {
    #[serde(with = "exact_f64")]
    pub loss: f64,
    #[serde(with = "exact_f64")]
    pub correct: f64,
    #[serde(with = "exact_f64")]
    pub seen: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    pub step: usize,
    pub config: TrainConfig,
    pub num_classes: usize,
    pub class_names: Vec<String>,
    pub normalization: Normalization,
    pub epoch_sums: EpochSums,
    #[serde(default, with = "exact_f64::option")]
    pub best_val_accuracy: Option<f64>,
    /// Training FLOPs so far (0 in checkpoints written before they were counted).
    #[serde(default, with = "exact_f64")]
    pub train_flops: f64,
    /// DyReLU's phase p at this step, for evaluating the checkpoint.
    #[serde(default, with = "exact_f64::option")]
    pub dyrelu_phase: Option<f64>,
    /// The layers that ran the sparse kernels, so a resumed run keeps the same choice
    /// (`run.kernels = "timed"` measures, and a second measurement could differ).
    #[serde(default)]
    pub sparse_kernel_layers: Option<Vec<String>>,
    /// Identifies the training images (count, classes, CRC-32 of pixels and labels), so a
    /// resume on a changed dataset is refused instead of continuing on another split.
    #[serde(default)]
    pub dataset_fingerprint: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub meta: CheckpointMeta,
    /// `param:<path>`, `momentum:<path>`, `mask:<path>`, `ever:<path>`.
    pub tensors: Vec<NamedTensor>,
}

#[derive(Debug, thiserror::Error)]
#[error("checkpoint {origin}: {message}")]
pub struct CheckpointError {
    pub origin: String,
    pub message: String,
}

impl Checkpoint {
    pub fn tensor(&self, name: &str) -> Option<&NamedTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    fn error(&self, message: String) -> CheckpointError {
        CheckpointError {
            origin: format!("at step {}", self.meta.step),
            message,
        }
    }

    /// `model` with every parameter and running statistic replaced by the checkpoint's.
    pub fn load_params(&self, model: ResNet, device: &Device) -> Result<ResNet, CheckpointError> {
        let mut missing = Vec::new();
        let mut used = std::collections::BTreeSet::new();
        let model = map_params(model, |path, w| {
            used.insert(format!("param:{path}"));
            match self.tensor(&format!("param:{path}")) {
                Some(NamedTensor {
                    payload: Some(Payload::F32(v)),
                    ..
                }) if v.len() == w.dims()[0] => {
                    Tensor::from_data(TensorData::new(v.clone(), [v.len()]), device)
                }
                _ => {
                    missing.push(path.to_string());
                    w
                }
            }
        });
        if !missing.is_empty() {
            return Err(self.error(format!(
                "does not match the model: missing or wrong-sized {}",
                missing.join(", ")
            )));
        }
        let unknown: Vec<&str> = self
            .tensors
            .iter()
            .filter(|t| t.name.starts_with("param:") && !used.contains(&t.name))
            .map(|t| t.name.as_str())
            .collect();
        if !unknown.is_empty() {
            return Err(self.error(format!(
                "holds parameters the model does not have: {}",
                unknown.join(", ")
            )));
        }
        Ok(model)
    }

    /// The masks of `layers`, as saved.
    pub fn masks(&self, layers: &[SparseLayer]) -> Result<Masks, CheckpointError> {
        self.bit_layers("mask", layers)
    }

    /// Which weights were ever active (None in checkpoints written before it was kept).
    pub fn ever_active(&self, layers: &[SparseLayer]) -> Result<Option<Masks>, CheckpointError> {
        if self.tensors.iter().any(|t| t.name.starts_with("ever:")) {
            self.bit_layers("ever", layers).map(Some)
        } else {
            Ok(None)
        }
    }

    fn bit_layers(&self, prefix: &str, layers: &[SparseLayer]) -> Result<Masks, CheckpointError> {
        let mut masks = Masks::default();
        for layer in layers {
            match self.tensor(&format!("{prefix}:{}", layer.path)) {
                Some(NamedTensor {
                    payload: Some(Payload::Bits(b)),
                    ..
                }) if b.len() == layer.numel() => {
                    masks.layers.push(LayerMask {
                        path: layer.path.clone(),
                        dims: layer.dims.clone(),
                        active: b.clone(),
                    });
                }
                _ => {
                    return Err(self.error(format!(
                        "{prefix} bits for {} missing or wrong-sized",
                        layer.path
                    )));
                }
            }
        }
        Ok(masks)
    }

    /// The trained model and its masks, ready for inference (no optimizer, no data); run
    /// it at `meta.dyrelu_phase`.
    pub fn restore_model(&self, device: &Device) -> Result<(ResNet, Masks), CheckpointError> {
        let model = self
            .meta
            .config
            .resolved_model()
            .init(self.meta.num_classes, device);
        let layers = sparse_layers(&model);
        let model = self.load_params(model, device)?;
        Ok((model, self.masks(&layers)?))
    }
}
