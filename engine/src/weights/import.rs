//! Initial weights from a safetensors file under the PyTorch names of `layout`: a model
//! exported by sparselab, or one a PyTorch user saved with the documented names. Every
//! tensor is checked against the model the run builds (missing, extra, mis-shaped, of
//! another type, not finite) and an error names it.

use super::export::{MASK_PREFIX, transpose};
use super::layout::{PyTorchTensor, Source, pytorch_layout};
use crate::model::{ResNet, map_params};
use crate::sparsity::Masks;
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};
use std::collections::{BTreeMap, BTreeSet};

/// A weights file's values, by sparselab parameter path, ready to replace a fresh model's.
#[derive(Clone, Debug, Default)]
pub struct InitialWeights {
    /// The file, for messages.
    pub origin: String,
    /// Every value to set, flat, in Burn's layout (shared blocks' gains included).
    pub values: BTreeMap<String, Vec<f32>>,
    /// The file's masks, by layer path (layers without one are absent).
    pub masks: BTreeMap<String, Vec<bool>>,
    /// The file holds the DyReLU parameters (else they keep their initialisation).
    pub dyrelu_from_file: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct WeightsError {
    pub origin: String,
    pub message: String,
}

/// Reads `bytes` (the file `origin`) as initial weights for `model`.
/// `model_name` describes the run's model for messages ("ResNet-20 x0.25, 10 classes").
pub fn read_initial_weights(
    bytes: &[u8],
    origin: &str,
    model: &ResNet,
    model_name: &str,
) -> Result<InitialWeights, WeightsError> {
    let fail = |message: String| WeightsError {
        origin: origin.to_string(),
        message,
    };
    let file = SafeTensors::deserialize(bytes).map_err(|e| {
        fail(format!(
            "not a readable safetensors file ({e}); was it cut short? Export it again \
             (`sparselab export CKPT`, or safetensors.torch.save_file in Python)"
        ))
    })?;
    let layout = pytorch_layout(model);
    let in_file: BTreeSet<String> = file.names().into_iter().map(str::to_string).collect();
    let expected: BTreeSet<String> = layout
        .iter()
        .flat_map(|t| {
            let mask = t.mask.as_ref().map(|_| format!("{MASK_PREFIX}{}", t.name));
            std::iter::once(t.name.clone()).chain(mask)
        })
        .collect();
    let extra: Vec<&String> = in_file.difference(&expected).collect();
    if !extra.is_empty() {
        return Err(fail(format!(
            "holds {} tensor(s) this model does not have: {} (the run builds {}; names follow \
             the book's PyTorch naming table)",
            extra.len(),
            list(&extra),
            model_name
        )));
    }
    let dyrelu_from_file = layout.iter().any(|t| t.dyrelu && in_file.contains(&t.name));
    let missing: Vec<&String> = layout
        .iter()
        .filter(|t| !in_file.contains(&t.name))
        // Optional: a count sparselab does not keep; DyReLU when the file has none at all.
        .filter(|t| t.source != Source::BatchCount && (dyrelu_from_file || !t.dyrelu))
        .map(|t| &t.name)
        .collect();
    if !missing.is_empty() {
        return Err(fail(format!(
            "lacks {} tensor(s) the model needs: {} (the run builds {})",
            missing.len(),
            list(&missing),
            model_name
        )));
    }
    let mut out = InitialWeights {
        origin: origin.to_string(),
        dyrelu_from_file,
        ..Default::default()
    };
    let mut by_name: BTreeMap<&str, Vec<f32>> = BTreeMap::new();
    for t in layout.iter().filter(|t| in_file.contains(&t.name)) {
        let view = file
            .tensor(&t.name)
            .map_err(|e| fail(format!("{}: {e}", t.name)))?;
        if view.shape() != t.dims.as_slice() {
            return Err(fail(format!(
                "{} has shape {:?}, but the model needs {:?}",
                t.name,
                view.shape(),
                t.dims
            )));
        }
        if t.source == Source::BatchCount {
            continue; // any value: sparselab does not use it
        }
        if view.dtype() != Dtype::F32 {
            return Err(fail(format!(
                "{} is {:?}; the weights must be float32 (in PyTorch: model.float())",
                t.name,
                view.dtype()
            )));
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(fail(format!(
                "{} holds a non-finite value ({} at flat index {i}): the model it came from diverged",
                t.name, values[i]
            )));
        }
        by_name.insert(&t.name, values);
    }
    for t in layout
        .iter()
        .filter(|t| by_name.contains_key(t.name.as_str()))
    {
        let values = &by_name[t.name.as_str()];
        match &t.source {
            Source::Param(p) => {
                out.values.insert(p.clone(), values.clone());
            }
            Source::Transposed(p) => {
                out.values
                    .insert(p.clone(), transpose(values, t.dims[0], t.dims[1]));
            }
            Source::Shared { owner, gain } => {
                let owner_name = owner_tensor(&layout, owner);
                let g = gain_of(values, &by_name[owner_name.as_str()]).ok_or_else(|| {
                    fail(format!(
                        "{} is not a multiple of {owner_name}: the model shares one set of \
                         convolutions per stage (weight sharing), which only a model trained \
                         with sharing can fill; to start a run from independent weights, turn \
                         sharing off (method.east.weight_sharing = false for EAST, else \
                         model.shared_weights = false)",
                        t.name
                    ))
                })?;
                out.values.insert(gain.clone(), vec![g]);
            }
            Source::BatchCount => {}
        }
        if let Some(layer) = &t.mask {
            read_mask(&file, t, layer, &mut out.masks).map_err(fail)?;
        }
    }
    Ok(out)
}

/// Reads `masks.<name>` if the file has it; a shared block's must equal its owner's.
fn read_mask(
    file: &SafeTensors<'_>,
    t: &PyTorchTensor,
    layer: &str,
    masks: &mut BTreeMap<String, Vec<bool>>,
) -> Result<(), String> {
    let name = format!("{MASK_PREFIX}{}", t.name);
    let Ok(view) = file.tensor(&name) else {
        return Ok(());
    };
    if view.shape() != t.dims.as_slice() {
        return Err(format!(
            "{name} has shape {:?}, but its weight {:?}",
            view.shape(),
            t.dims
        ));
    }
    if !matches!(view.dtype(), Dtype::BOOL | Dtype::U8) {
        return Err(format!(
            "{name} is {:?}; a mask is bool (or uint8 0/1)",
            view.dtype()
        ));
    }
    if let Some(b) = view.data().iter().find(|&&b| b > 1) {
        return Err(format!("{name} holds {b}; a mask holds only 0 and 1"));
    }
    let bits: Vec<bool> = view.data().iter().map(|&b| b == 1).collect();
    let bits = match t.source {
        Source::Transposed(_) => transpose(&bits, t.dims[0], t.dims[1]),
        _ => bits,
    };
    match (&t.source, masks.get(layer)) {
        (Source::Shared { .. }, Some(owner)) if *owner != bits => Err(format!(
            "{name} differs from the mask of the convolution it shares ({layer}): a shared \
             convolution has one mask"
        )),
        (Source::Shared { .. }, _) => Ok(()),
        _ => {
            masks.insert(layer.to_string(), bits);
            Ok(())
        }
    }
}

/// The least-squares scale g with `shared ≈ g · owner`, if it is one (to float precision).
fn gain_of(shared: &[f32], owner: &[f32]) -> Option<f32> {
    let dot: f64 = shared
        .iter()
        .zip(owner)
        .map(|(&s, &o)| s as f64 * o as f64)
        .sum();
    let norm: f64 = owner.iter().map(|&o| o as f64 * o as f64).sum();
    let g = if norm > 0.0 { dot / norm } else { 1.0 };
    let scale = shared.iter().fold(0.0f64, |m, &s| m.max(s.abs() as f64));
    let fits = shared
        .iter()
        .zip(owner)
        .all(|(&s, &o)| (s as f64 - g * o as f64).abs() <= 1e-5 * scale);
    fits.then_some(g as f32)
}

fn owner_tensor(layout: &[PyTorchTensor], owner: &str) -> String {
    layout
        .iter()
        .find(|t| t.source == Source::Param(owner.to_string()))
        .map(|t| t.name.clone())
        .expect("an owner convolution is in the layout")
}

fn list(names: &[&String]) -> String {
    const SHOWN: usize = 6;
    let mut s = names
        .iter()
        .take(SHOWN)
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        s.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    s
}

impl InitialWeights {
    /// `masks` (the method's initial masks: how many weights each layer keeps) with the
    /// kept weights chosen from this file: the file's mask first, then by magnitude, then
    /// the method's own choice (so the zeros of a sparse export, when the method keeps
    /// more, are filled where the method would put them, not at the first positions).
    /// A sparse export continued by the same method at the same density gets its own
    /// masks back; a dense model is pruned by magnitude to the method's layer densities.
    pub fn choose_masks(&self, mut masks: Masks) -> Masks {
        for layer in &mut masks.layers {
            let Some(weights) = self.values.get(&layer.path) else {
                continue;
            };
            let keep = layer.nnz();
            let file_mask = self.masks.get(&layer.path);
            let alive = |i: usize| file_mask.is_none_or(|m| m[i]);
            let method = layer.active.clone();
            let mut order: Vec<usize> = (0..weights.len()).collect();
            // A total order (index breaks the last ties), so the choice is deterministic.
            order.sort_unstable_by(|&a, &b| {
                alive(b)
                    .cmp(&alive(a))
                    .then(weights[b].abs().total_cmp(&weights[a].abs()))
                    .then(method[b].cmp(&method[a]))
                    .then(a.cmp(&b))
            });
            layer.active = vec![false; weights.len()];
            for &i in &order[..keep] {
                layer.active[i] = true;
            }
        }
        masks
    }
}

impl InitialWeights {
    /// `model` with every value this file gives replaced (the rest, DyReLU's when the file
    /// has none, keep their initialisation).
    pub fn apply_to(&self, model: ResNet, device: &Device) -> ResNet {
        map_params(model, |path, w| match self.values.get(path) {
            Some(v) => Tensor::from_data(TensorData::new(v.clone(), [v.len()]), device),
            None => w,
        })
    }
}
