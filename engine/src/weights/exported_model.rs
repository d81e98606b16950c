//! A `sparselab export` file read back as a model to evaluate: its metadata says which
//! network it is (the run's config, classes, input normalisation, DyReLU phase), so a
//! model fine-tuned elsewhere and saved with that metadata evaluates here too.

use super::import::{WeightsError, read_initial_weights};
use crate::data::Normalization;
use crate::model::ResNet;
use crate::train::TrainConfig;
use burn::tensor::Device;
use safetensors::SafeTensors;
use std::collections::HashMap;

/// The largest weights file sparselab reads: a dense ResNet-50 is about 95 MB.
pub const MAX_WEIGHTS_BYTES: u64 = 2 << 30;

pub struct ExportedModel {
    /// The run's config, as the metadata holds it.
    pub config: TrainConfig,
    pub num_classes: usize,
    pub class_names: Vec<String>,
    pub normalization: Normalization,
    /// DyReLU's phase to run the model at (None: plain ReLUs).
    pub dyrelu_phase: Option<f64>,
    pub model: ResNet,
    /// Alive and all prunable weights, each shared weight once (as a checkpoint counts
    /// them): from the file's masks, or its non-zero weights where it has none.
    pub nnz: usize,
    pub numel: usize,
}

/// Reads `bytes` (the file `origin`), written by `sparselab export`, as a model on `device`.
pub fn read_exported_model(
    bytes: &[u8],
    origin: &str,
    device: &Device,
) -> Result<ExportedModel, WeightsError> {
    let fail = |message: String| WeightsError {
        origin: origin.to_string(),
        message,
    };
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| {
        fail(format!(
            "not a readable safetensors file ({e}); was it cut short?"
        ))
    })?;
    let info: HashMap<String, String> = header.metadata().clone().unwrap_or_default();
    let get = |key: &str| {
        info.get(key).ok_or_else(|| {
            fail(format!(
                "its metadata has no `{key}`, so it does not say which network it is (files \
                 from `sparselab export` do); start a run from it with `train --init-from`, \
                 which takes the network from the run's config"
            ))
        })
    };
    let bad = |key: &str, e: &dyn std::fmt::Display| fail(format!("metadata `{key}`: {e}"));
    let table: toml::Table = toml::from_str(get("config")?).map_err(|e| bad("config", &e))?;
    let mut config = TrainConfig::from_table_checked(table, "its metadata's config")
        .map_err(|e| fail(e.to_string()))?;
    config.run.init_from = None;
    let num_classes: usize = get("num_classes")?
        .parse()
        .map_err(|e| bad("num_classes", &e))?;
    let class_names: Vec<String> =
        serde_json::from_str(get("class_names")?).map_err(|e| bad("class_names", &e))?;
    let normalization: Normalization =
        serde_json::from_str(get("normalization")?).map_err(|e| bad("normalization", &e))?;
    let dyrelu_phase = match info.get("dyrelu_phase") {
        Some(p) => Some(p.parse::<f64>().map_err(|e| bad("dyrelu_phase", &e))?),
        None => None,
    };
    if num_classes == 0 || !class_names.is_empty() && class_names.len() != num_classes {
        return Err(fail(format!(
            "metadata: {num_classes} classes but {} class names",
            class_names.len()
        )));
    }
    let model_config = config.resolved_model();
    let model = model_config.init(num_classes, device);
    let name = format!(
        "{} x{} with {num_classes} classes",
        model_config.arch.name(),
        model_config.width
    );
    let weights = read_initial_weights(bytes, origin, &model, &name)?;
    if model.has_dyrelu() && dyrelu_phase.is_some_and(|p| p > 0.0) && !weights.dyrelu_from_file {
        return Err(fail(format!(
            "DyReLU is on (phase {}), but the file has none of its parameters",
            dyrelu_phase.unwrap_or_default()
        )));
    }
    // Counted from the tensors, not the metadata: a model fine-tuned elsewhere changed them.
    let (mut nnz, mut numel) = (0, 0);
    for layer in model.layers.iter() {
        let values = &weights.values[&layer.path];
        numel += values.len();
        nnz += match weights.masks.get(&layer.path) {
            Some(mask) => mask.iter().filter(|&&a| a).count(),
            None => values.iter().filter(|&&v| v != 0.0).count(),
        };
    }
    Ok(ExportedModel {
        model: weights.apply_to(model, device),
        config,
        num_classes,
        class_names,
        normalization,
        dyrelu_phase,
        nnz,
        numel,
    })
}
