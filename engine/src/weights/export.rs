//! A checkpoint as a safetensors file a PyTorch user can load: the network under PyTorch's
//! CIFAR-ResNet names (pruned weights exactly 0, shared weights unfolded), each pruned
//! layer's mask as `masks.<name>` (bool), and a metadata block that says what the model is.

use super::layout::{PyTorchTensor, Source, pytorch_layout};
use crate::train::checkpoint::{Checkpoint, Payload};
use burn::tensor::Device;
use safetensors::Dtype;
use safetensors::tensor::TensorView;
use std::collections::{BTreeMap, HashMap};

/// The prefix of the masks' names.
pub const MASK_PREFIX: &str = "masks.";

/// What a checkpoint alone does not know about its run, when the caller does.
#[derive(Clone, Debug, Default)]
pub struct ExportExtras {
    pub test_accuracy: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ExportError(pub String);

/// The safetensors bytes of `ckpt`'s model.
pub fn export_safetensors(
    ckpt: &Checkpoint,
    extras: &ExportExtras,
) -> Result<Vec<u8>, ExportError> {
    let meta = &ckpt.meta;
    let model = meta
        .config
        .resolved_model()
        .init(meta.num_classes, &Device::flex());
    // At phase 0 (EAST's end) every DyReLU is exactly a ReLU: the plain network is complete.
    let with_dyrelu = meta.dyrelu_phase.is_some_and(|p| p > 0.0);
    let layout: Vec<PyTorchTensor> = pytorch_layout(&model)
        .into_iter()
        .filter(|t| with_dyrelu || !t.dyrelu)
        .collect();
    // A parameter's values, checked to be the `len` the model's config gives it.
    let param = |path: &str, len: usize| -> Result<&[f32], ExportError> {
        let payload = ckpt
            .tensor(&format!("param:{path}"))
            .and_then(|t| t.payload.as_ref());
        match payload {
            Some(Payload::F32(v)) if v.len() == len => Ok(v),
            Some(Payload::F32(v)) => Err(ExportError(format!(
                "{path} has {} values, but the model its config builds has {len}",
                v.len()
            ))),
            _ => Err(ExportError(format!(
                "the checkpoint holds no values for {path}"
            ))),
        }
    };
    let mut buffers: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    let (mut nnz, mut numel) = (0usize, 0usize);
    for t in &layout {
        let values: Vec<f32> = match &t.source {
            Source::Param(p) => param(p, t.numel())?.to_vec(),
            Source::Transposed(p) => transpose(param(p, t.numel())?, t.dims[1], t.dims[0]),
            Source::Shared { owner, gain } => {
                let g = param(gain, 1)?[0];
                param(owner, t.numel())?.iter().map(|w| w * g).collect()
            }
            Source::BatchCount => {
                let count = meta.step as i64;
                buffers.push((
                    t.name.clone(),
                    Dtype::I64,
                    Vec::new(),
                    count.to_le_bytes().to_vec(),
                ));
                continue;
            }
        };
        if let Some(layer) = &t.mask {
            let active = match ckpt
                .tensor(&format!("mask:{layer}"))
                .and_then(|m| m.payload.as_ref())
            {
                Some(Payload::Bits(b)) if b.len() == values.len() => b,
                _ => {
                    return Err(ExportError(format!(
                        "the checkpoint holds no mask of {} values for {layer}",
                        values.len()
                    )));
                }
            };
            let active = match t.source {
                // The classifier's mask is laid out as Burn's [in, out] weight.
                Source::Transposed(_) => transpose(active, t.dims[1], t.dims[0]),
                _ => active.clone(),
            };
            // Pruned entries are exactly 0 (not -0, not a stale value).
            let values: Vec<f32> = values
                .iter()
                .zip(&active)
                .map(|(&w, &a)| if a { w } else { 0.0 })
                .collect();
            nnz += active.iter().filter(|&&a| a).count();
            numel += values.len();
            buffers.push((
                format!("{MASK_PREFIX}{}", t.name),
                Dtype::BOOL,
                t.dims.clone(),
                active.iter().map(|&a| a as u8).collect(),
            ));
            buffers.push((
                t.name.clone(),
                Dtype::F32,
                t.dims.clone(),
                f32_bytes(&values),
            ));
        } else {
            buffers.push((
                t.name.clone(),
                Dtype::F32,
                t.dims.clone(),
                f32_bytes(&values),
            ));
        }
    }
    let metadata = metadata(ckpt, extras, nnz, numel, with_dyrelu);
    let views: Vec<(String, TensorView<'_>)> = buffers
        .iter()
        .map(|(name, dtype, dims, bytes)| {
            TensorView::new(*dtype, dims.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| ExportError(format!("{name}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    safetensors::serialize(views, Some(metadata)).map_err(|e| ExportError(e.to_string()))
}

fn metadata(
    ckpt: &Checkpoint,
    extras: &ExportExtras,
    nnz: usize,
    numel: usize,
    with_dyrelu: bool,
) -> HashMap<String, String> {
    let meta = &ckpt.meta;
    let model = meta.config.resolved_model();
    let mut m = BTreeMap::new();
    // "pt": the tensors follow PyTorch's conventions (the key Hugging Face's tools read).
    m.insert("format", "pt".to_string());
    m.insert(
        "producer",
        format!("sparselab {}", env!("CARGO_PKG_VERSION")),
    );
    m.insert(
        "layout",
        "pytorch-cifar ResNet (conv1, bn1, layerN.B.convI, shortcut.0/1, linear without bias)"
            .into(),
    );
    m.insert("arch", model.arch.name().to_string());
    m.insert("width", model.width.to_string());
    m.insert("num_classes", meta.num_classes.to_string());
    m.insert(
        "class_names",
        serde_json::to_string(&meta.class_names).unwrap_or_default(),
    );
    m.insert(
        "normalization",
        serde_json::to_string(&meta.normalization).unwrap_or_default(),
    );
    m.insert("method", meta.config.method.name.clone());
    m.insert("sparsity", meta.config.sparsity.sparsity.to_string());
    m.insert("nnz", nnz.to_string());
    m.insert("numel", numel.to_string());
    m.insert("density", format!("{}", nnz as f64 / numel.max(1) as f64));
    m.insert("step", meta.step.to_string());
    m.insert("shared_weights", model.shared_weights.to_string());
    if model.shared_weights {
        // The weights training learned: each shared one counts once (nnz counts every use).
        let unique: usize = ckpt
            .tensors
            .iter()
            .filter(|t| t.name.starts_with("mask:"))
            .filter_map(|t| match &t.payload {
                Some(Payload::Bits(b)) => Some(b.iter().filter(|&&a| a).count()),
                _ => None,
            })
            .sum();
        m.insert("learnable_nnz", unique.to_string());
    }
    if let Some(p) = meta.dyrelu_phase {
        m.insert("dyrelu_phase", p.to_string());
    }
    m.insert(
        "activation",
        if with_dyrelu {
            "dyrelu-b (see dyrelu_phase)"
        } else {
            "relu"
        }
        .to_string(),
    );
    if let Some(a) = meta.best_val_accuracy {
        m.insert("best_val_accuracy", a.to_string());
    }
    if let Some(a) = extras.test_accuracy {
        m.insert("test_accuracy", a.to_string());
    }
    m.insert("config", meta.config.to_toml());
    m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// `rows x cols` row-major to `cols x rows`.
pub(crate) fn transpose<T: Copy>(values: &[T], rows: usize, cols: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(values.len());
    for c in 0..cols {
        for r in 0..rows {
            out.push(values[r * cols + c]);
        }
    }
    out
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}
