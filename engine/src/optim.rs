//! SGD with (Nesterov) momentum, weight decay and global gradient-norm clipping that keeps
//! pruned weights and their momentum at exactly zero.
//!
//! Per parameter, in PyTorch's convention (dampening 0):
//!   g = clip(mask ⊙ ∇w) + λ w;  m = μ m + g;  d = g + μ m (Nesterov) or m;  w = (w − η d) ⊙ mask;
//!   m = m ⊙ mask.
//! (With momentum 0 this is plain SGD: m = g and d = g.)
//! The clipping norm is taken over the *masked* gradients of all parameters, so inactive
//! weights (whose dense gradient RigL still reads) never shrink the step of active ones.

use crate::kernels::active_step::{ActivePositions, active_sgd_step};
use crate::kernels::masked_norm::masked_sum_squares;
use crate::kernels::masked_step::{StepHyper, masked_sgd_step};
use crate::model::{grads_by_path, map_params};
use crate::sparsity::Masks;
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    /// Peak learning rate (the schedule scales it).
    pub lr: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    /// Global L2 gradient-norm clip; 0 turns clipping off.
    pub clip_norm: f64,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 5e-4,
            clip_norm: 0.0,
        }
    }
}

impl OptimConfig {
    pub fn validate(&self) -> Result<(), String> {
        let checks = [
            (self.lr > 0.0 && self.lr.is_finite(), "optim.lr must be > 0"),
            (
                (0.0..1.0).contains(&self.momentum),
                "optim.momentum must be in [0, 1)",
            ),
            (
                self.weight_decay >= 0.0 && self.weight_decay.is_finite(),
                "optim.weight_decay must be finite and >= 0",
            ),
            (
                self.clip_norm >= 0.0 && self.clip_norm.is_finite(),
                "optim.clip_norm must be finite and >= 0 (0 = off)",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, msg)) => Err(msg.to_string()),
            None => Ok(()),
        }
    }
}

/// The optimizer's state: one momentum buffer per parameter path.
pub struct MaskedSgd {
    pub config: OptimConfig,
    pub momentum: BTreeMap<String, Tensor<1>>,
}

impl MaskedSgd {
    pub fn new(config: OptimConfig) -> Self {
        Self {
            config,
            momentum: BTreeMap::new(),
        }
    }

    /// One step at learning rate `lr`. `mask_tensors` holds the device masks by path.
    /// Each parameter's update is one call of the masked-step kernel
    /// (`kernels::masked_step`: the fused WGSL pass on wgpu, one pass on Flex), or, for the
    /// paths in `active_positions`, of the step over those positions only
    /// (`kernels::active_step`), whose pruned weights and momentum must be zero already.
    pub fn step<M: Module>(
        &mut self,
        model: M,
        grads: &GradientsParams,
        lr: f64,
        mask_tensors: &BTreeMap<String, Tensor<1>>,
        active_positions: &BTreeMap<String, ActivePositions>,
    ) -> M {
        let mut grads: BTreeMap<String, Tensor<1>> =
            grads_by_path(&model, grads).into_iter().collect();
        let Some(any) = grads.values().next() else {
            return model;
        };
        let device = any.device();
        let clip = if self.config.clip_norm > 0.0 {
            // The norm of the *masked* gradients, on the device: no read-back.
            let sum_sq = grads
                .iter()
                .map(|(path, g)| masked_sum_squares(g.clone(), mask_tensors.get(path).cloned()))
                .reduce(|a, b| a + b)
                .expect("non-empty");
            (sum_sq.sqrt().add_scalar(1e-6).recip() * self.config.clip_norm).clamp_max(1.0)
        } else {
            Tensor::<1>::ones([1], &device)
        };
        let c = &self.config;
        let hyper = StepHyper {
            version: 0,
            lr: lr as f32,
            momentum: c.momentum as f32,
            weight_decay: c.weight_decay as f32,
            nesterov: c.nesterov,
        };
        let momentum = &mut self.momentum;
        map_params(model, |path, w| {
            let Some(g) = grads.remove(path) else {
                return w;
            };
            let m = momentum
                .remove(path)
                .unwrap_or_else(|| Tensor::zeros(w.dims(), &w.device()));
            let (w, m) = match active_positions.get(path) {
                Some(active) => active_sgd_step(w, m, g, active, clip.clone(), hyper),
                None => {
                    let mask = mask_tensors.get(path).cloned();
                    masked_sgd_step(w, m, g, mask, clip.clone(), hyper)
                }
            };
            if hyper.momentum > 0.0 {
                momentum.insert(path.to_string(), m);
            }
            w
        })
    }

    /// Zeroes momentum where `keep` is 0 (dropped and newly grown weights).
    pub fn mask_momentum(&mut self, path: &str, keep: &Tensor<1>) {
        if let Some(m) = self.momentum.remove(path) {
            self.momentum.insert(path.to_string(), m * keep.clone());
        }
    }
}

/// Device masks for every layer, keyed by path.
pub fn mask_tensors(masks: &Masks, device: &burn::tensor::Device) -> BTreeMap<String, Tensor<1>> {
    masks
        .layers
        .iter()
        .map(|l| (l.path.clone(), l.to_tensor(device)))
        .collect()
}
