//! Read-only views of a run for logs, summaries, the page and tests: counts, densities,
//! FLOPs and host copies of weights. Nothing here changes the run.

use super::Trainer;
use crate::data::ImageSet;
use crate::model::{ResNet, for_each_param};
use crate::sparsity::{Budget, Masks, SparseLayer};
use crate::train::config::TrainConfig;
use crate::train::data::TrainData;
use crate::train::error::{TrainError, read_f32};
use crate::train::mask_state::MaskState;
use crate::train::metrics::LayerDensity;
use burn::tensor::{Device, Tensor};
use std::collections::BTreeSet;

impl Trainer {
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn model(&self) -> &ResNet {
        &self.model
    }

    pub fn data(&self) -> &TrainData {
        &self.data
    }

    pub fn dataset(&self) -> &ImageSet {
        &self.data.set
    }

    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// The prunable layers, in mask order.
    pub fn layers(&self) -> &[SparseLayer] {
        &self.budget.layers
    }

    pub fn mask_state(&self) -> &MaskState {
        &self.masks
    }

    pub fn masks(&self) -> &Masks {
        self.masks.masks()
    }

    pub fn ever_active(&self) -> &Masks {
        self.masks.ever_active()
    }

    /// The layers that run the sparse kernels (`run.kernels`), chosen at creation.
    pub fn sparse_kernel_layers(&self) -> &[String] {
        self.masks.sparse_kernel_layers()
    }

    pub fn train_flops(&self) -> f64 {
        self.train_flops
    }

    pub fn best_val_accuracy(&self) -> Option<f64> {
        self.best_val_accuracy
    }

    pub fn method_name(&self) -> &'static str {
        self.method.name()
    }

    /// Non-zeros of the masks (the learnable count).
    pub fn nnz(&self) -> usize {
        self.masks.nnz()
    }

    /// The masks' density over the unique prunable weights.
    pub fn mask_density(&self) -> f64 {
        self.nnz() as f64 / self.budget.unique_total().max(1) as f64
    }

    /// Non-zeros over the prunable weights counted unshared: the density the configured
    /// sparsity refers to (the masks' own density is over the unique weights).
    pub fn budget_density(&self) -> f64 {
        self.nnz() as f64 / self.budget.unshared_total().max(1) as f64
    }

    /// Fraction of prunable weights that have ever been active.
    pub fn itop_rate(&self) -> f64 {
        self.masks.itop_rate()
    }

    /// Non-zeros counted at every use of a shared weight.
    pub fn effective_nnz(&self) -> usize {
        self.budget.effective_nnz(self.masks.layer_nnz())
    }

    /// Forward FLOPs per image with the current masks (see `FlopCounter`).
    pub fn forward_flops(&self) -> f64 {
        self.flops.forward(self.masks.layer_nnz())
    }

    pub fn layer_densities(&self) -> Vec<LayerDensity> {
        self.masks.layer_densities()
    }

    /// Which alive weights lie on an input→output path (see `sparsity::connectivity`).
    pub fn connectivity(&self) -> crate::sparsity::Connectivity {
        crate::sparsity::connectivity(&self.model, self.masks())
    }

    /// `layer_densities` with each layer's connected non-zeros, and their total.
    pub fn layer_densities_connected(&self) -> (Vec<LayerDensity>, usize) {
        let c = self.connectivity();
        let layers = self
            .layer_densities()
            .into_iter()
            .zip(&c.layers)
            .map(|(l, &n)| LayerDensity {
                connected_nnz: Some(n),
                ..l
            })
            .collect();
        (layers, c.total)
    }

    /// Parameters outside the masks (BatchNorm scales and shifts): dense by design.
    pub fn dense_param_count(&self) -> usize {
        let masked: BTreeSet<&str> = self.layers().iter().map(|l| l.path.as_str()).collect();
        let mut n = 0;
        for info in crate::model::param_infos(&self.model) {
            let running = info.path.ends_with("running_mean") || info.path.ends_with("running_var");
            if !masked.contains(info.path.as_str()) && !running {
                n += info.numel();
            }
        }
        n
    }

    /// DyReLU's coefficient-network parameters (dense, part of `dense_param_count`).
    pub fn dyrelu_param_count(&self) -> usize {
        crate::model::param_infos(&self.model)
            .iter()
            .filter(|p| crate::model::dyrelu::is_dyrelu_path(&p.path))
            .map(|p| p.numel())
            .sum()
    }

    /// Non-zero weights actually present in the masked layers (counted on the weights,
    /// not the masks: a test that pruned weights are really zero).
    pub async fn count_nonzero_weights(&self) -> Result<usize, TrainError> {
        let mut n = 0;
        for (_, w) in self.sparse_weights() {
            n += read_f32(w).await?.iter().filter(|x| **x != 0.0).count();
        }
        Ok(n)
    }

    /// Host copies of the masked layers' weights, by path, in layer order.
    pub async fn sparse_weight_values(&self) -> Result<Vec<(String, Vec<f32>)>, TrainError> {
        let mut out = Vec::new();
        for (path, w) in self.sparse_weights() {
            out.push((path, read_f32(w).await?));
        }
        Ok(out)
    }

    /// Host copy of a parameter's momentum buffer, if it has one yet.
    pub async fn momentum_values(&self, path: &str) -> Result<Option<Vec<f32>>, TrainError> {
        match self.optim.momentum.get(path) {
            Some(m) => Ok(Some(read_f32(m.clone()).await?)),
            None => Ok(None),
        }
    }

    pub(super) fn sparse_weights(&self) -> Vec<(String, Tensor<1>)> {
        let wanted: BTreeSet<&str> = self.layers().iter().map(|l| l.path.as_str()).collect();
        let mut out = Vec::new();
        for_each_param(&self.model, |path, _, t| {
            if wanted.contains(path) {
                out.push((path.to_string(), t));
            }
        });
        out
    }
}
