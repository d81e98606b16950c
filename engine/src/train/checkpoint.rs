//! Checkpoints: model parameters and running statistics, optimizer momentum, masks, the
//! step, and the epoch's running sums — everything a resumed run needs to continue as if
//! never stopped. One self-describing file: a magic line, a TOML header, raw
//! little-endian data. (TOML, not JSON: serde_json's default parser does not read every
//! float back bit for bit, and a resumed run must continue exactly.) Written to a
//! temporary file, synced and renamed, so a crash never leaves a half-written checkpoint
//! behind. The same bytes load in the browser.

use super::config::TrainConfig;
use crate::data::Normalization;
use crate::model::{ResNet, map_params};
use crate::sparsity::{LayerMask, Masks, SparseLayer, sparse_layers};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::path::Path;

const MAGIC: &[u8; 16] = b"sparselab-ckpt2\n";

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
    pub loss: f64,
    pub correct: f64,
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
    pub best_val_accuracy: Option<f64>,
    /// Training FLOPs so far (0 in checkpoints written before they were counted).
    #[serde(default)]
    pub train_flops: f64,
    /// DyReLU's phase p at this step, for evaluating the checkpoint.
    #[serde(default)]
    pub dyrelu_phase: Option<f64>,
    /// The layers that ran the sparse kernels, so a resumed run keeps the same choice
    /// (`run.kernels = "auto"` measures, and a second measurement could differ).
    #[serde(default)]
    pub sparse_kernel_layers: Option<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub meta: CheckpointMeta,
    /// `param:<path>`, `momentum:<path>`, `mask:<path>`.
    pub tensors: Vec<NamedTensor>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    meta: CheckpointMeta,
    tensors: Vec<TensorEntry>,
}

#[derive(Serialize, Deserialize)]
struct TensorEntry {
    name: String,
    dims: Vec<usize>,
    kind: String,
    offset: usize,
    len: usize,
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
        let model = map_params(model, |path, w| {
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

    /// The trained model and its masks, ready for inference (no optimizer, no data).
    pub fn restore_model(&self, device: &Device) -> Result<(ResNet, Masks), CheckpointError> {
        let model = self
            .meta
            .config
            .resolved_model()
            .init(self.meta.num_classes, device);
        let layers = sparse_layers(&model);
        let mut model = self.load_params(model, device)?;
        if let Some(p) = self.meta.dyrelu_phase {
            model.phase = p as f32;
        }
        Ok((model, self.masks(&layers)?))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        let mut entries = Vec::new();
        for t in &self.tensors {
            let offset = body.len();
            let kind = match t.payload.as_ref().expect("tensor payload") {
                Payload::F32(v) => {
                    body.reserve(v.len() * 4);
                    for x in v {
                        body.extend_from_slice(&x.to_le_bytes());
                    }
                    "f32"
                }
                Payload::Bits(v) => {
                    let mut bytes = vec![0u8; v.len().div_ceil(8)];
                    for (i, &b) in v.iter().enumerate() {
                        if b {
                            bytes[i / 8] |= 1 << (i % 8);
                        }
                    }
                    body.extend_from_slice(&bytes);
                    "bits"
                }
            };
            entries.push(TensorEntry {
                name: t.name.clone(),
                dims: t.dims.clone(),
                kind: kind.into(),
                offset,
                len: body.len() - offset,
            });
        }
        let header = serde_json::to_vec(&Header {
            meta: self.meta.clone(),
            tensors: entries,
        })
        .expect("header serialises");
        let mut out = Vec::with_capacity(MAGIC.len() + 8 + header.len() + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&body);
        out
    }

    pub fn decode(bytes: &[u8], origin: &str) -> Result<Self, CheckpointError> {
        let fail = |m: &str| CheckpointError {
            origin: origin.to_string(),
            message: m.to_string(),
        };
        if bytes.len() < MAGIC.len() + 8 || &bytes[..MAGIC.len()] != MAGIC {
            return Err(fail("not a sparselab checkpoint (wrong magic bytes)"));
        }
        let hlen =
            u64::from_le_bytes(bytes[MAGIC.len()..MAGIC.len() + 8].try_into().unwrap()) as usize;
        let start = MAGIC.len() + 8;
        if bytes.len() < start + hlen {
            return Err(fail(
                "truncated: the header is cut short; the file is incomplete",
            ));
        }
        let header: Header = serde_json::from_slice(&bytes[start..start + hlen]).map_err(|e| {
            fail(&format!(
                "unreadable header ({e}); written by another version?"
            ))
        })?;
        let body = &bytes[start + hlen..];
        let mut tensors = Vec::with_capacity(header.tensors.len());
        for e in header.tensors {
            let numel: usize = e.dims.iter().product();
            let raw = body.get(e.offset..e.offset + e.len).ok_or_else(|| {
                fail(&format!(
                    "truncated: tensor {} lies past the end of the file",
                    e.name
                ))
            })?;
            let payload = match e.kind.as_str() {
                "f32" if e.len == numel * 4 => Payload::F32(
                    raw.chunks_exact(4)
                        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                        .collect(),
                ),
                "bits" if e.len == numel.div_ceil(8) => {
                    Payload::Bits((0..numel).map(|i| raw[i / 8] >> (i % 8) & 1 == 1).collect())
                }
                _ => {
                    return Err(fail(&format!(
                        "tensor {} has a size that does not match its shape",
                        e.name
                    )));
                }
            };
            tensors.push(NamedTensor {
                name: e.name,
                dims: e.dims,
                payload: Some(payload),
            });
        }
        Ok(Checkpoint {
            meta: header.meta,
            tensors,
        })
    }

    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let bytes = std::fs::read(path).map_err(|e| CheckpointError {
            origin: path.display().to_string(),
            message: format!("cannot read: {e}"),
        })?;
        Self::decode(&bytes, &path.display().to_string())
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        write_atomic(path, &self.encode())
    }
}

/// Writes `bytes` to `path` so that `path` holds either the old or the new content, never
/// a mix: temporary file in the same folder, fsync, rename, fsync of the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
