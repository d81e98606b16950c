//! Sparse-training methods behind one small trait and one registry.
//!
//! A method owns two decisions: the initial masks, and how the masks change during
//! training. The training loop owns everything else (it zeroes dropped weights, starts
//! grown weights and their momentum at zero, and keeps pruned weights at zero).

pub mod dense;
pub mod drop_grow;
pub mod rigl;
pub mod set;
pub mod static_mask;

use crate::rng::Rng;
use crate::sparsity::{Masks, SparseLayer, SparsityConfig, SparsityError};
use serde::{Deserialize, Serialize};

/// How the fraction of weights replaced at each update decays over training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DropSchedule {
    Cosine,
    Linear,
    Constant,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MethodConfig {
    /// A name from the registry: see `sparselab methods`.
    pub name: String,
    /// ΔT: steps between mask updates.
    pub update_every: usize,
    /// α: fraction of each layer's active weights replaced at the first update.
    pub drop_fraction: f64,
    pub drop_schedule: DropSchedule,
    /// Mask updates stop after this fraction of training (RigL's T_end = 0.75).
    pub end_fraction: f64,
}

impl Default for MethodConfig {
    fn default() -> Self {
        Self {
            name: "rigl".into(),
            update_every: 100,
            drop_fraction: 0.3,
            drop_schedule: DropSchedule::Cosine,
            end_fraction: 0.75,
        }
    }
}

impl MethodConfig {
    pub fn validate(&self) -> Result<(), SparsityError> {
        if find(&self.name).is_none() {
            return Err(SparsityError::Invalid(format!(
                "method.name = \"{}\" is not a known method; known: {}",
                self.name,
                REGISTRY
                    .iter()
                    .map(|m| m.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if self.update_every == 0 {
            return Err(SparsityError::Invalid(
                "method.update_every must be at least 1".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.drop_fraction) {
            return Err(SparsityError::Invalid(format!(
                "method.drop_fraction = {} must be in [0, 1]",
                self.drop_fraction
            )));
        }
        if !(0.0..=1.0).contains(&self.end_fraction) {
            return Err(SparsityError::Invalid(format!(
                "method.end_fraction = {} must be in [0, 1]",
                self.end_fraction
            )));
        }
        Ok(())
    }

    /// Fraction to drop at `step` of `total_steps` (0 outside the update window).
    pub fn drop_fraction_at(&self, step: usize, total_steps: usize) -> f64 {
        let end = self.end_fraction * total_steps as f64;
        if step as f64 >= end {
            return 0.0;
        }
        let t = step as f64 / end;
        match self.drop_schedule {
            DropSchedule::Cosine => {
                self.drop_fraction * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
            DropSchedule::Linear => self.drop_fraction * (1.0 - t),
            DropSchedule::Constant => self.drop_fraction,
        }
    }

    /// Mask updates happen every ΔT steps after the first, until T_end.
    pub fn is_update_step(&self, step: usize, total_steps: usize) -> bool {
        step > 0
            && step.is_multiple_of(self.update_every)
            && (step as f64) < self.end_fraction * total_steps as f64
    }
}

/// What a method sees at a mask update. Vectors are per mask layer, flattened.
pub struct UpdateContext<'a> {
    pub step: usize,
    pub total_steps: usize,
    pub seed: u64,
    pub weights: &'a [Vec<f32>],
    /// Dense gradients (also at inactive weights); empty unless `needs_gradients`.
    pub grads: &'a [Vec<f32>],
}

/// What changed: per layer, the indices dropped and the indices grown (grown weights
/// and their optimizer state start at exactly zero, even if dropped in the same update).
#[derive(Clone, Debug, Default)]
pub struct MaskUpdate {
    pub dropped: Vec<Vec<usize>>,
    pub grown: Vec<Vec<usize>>,
    pub drop_fraction: f64,
}

pub trait SparsityMethod {
    fn name(&self) -> &'static str;
    /// The starting masks: by default random, with the configured layer-wise counts.
    fn initial_masks(
        &self,
        layers: &[SparseLayer],
        sparsity: &SparsityConfig,
        rng: &mut Rng,
    ) -> Result<Masks, SparsityError> {
        random_initial_masks(layers, sparsity, rng)
    }
    /// Does the mask change at this step (instead of an optimizer step, as in RigL)?
    fn is_update_step(&self, _step: usize, _total_steps: usize) -> bool {
        false
    }
    /// Does `update` read gradients at inactive weights?
    fn needs_gradients(&self) -> bool {
        false
    }
    fn update(&mut self, _ctx: &UpdateContext, _masks: &mut Masks) -> MaskUpdate {
        MaskUpdate::default()
    }
}

pub struct MethodEntry {
    pub name: &'static str,
    pub summary: &'static str,
    pub build: fn(&MethodConfig) -> Box<dyn SparsityMethod>,
}

pub const REGISTRY: &[MethodEntry] = &[
    MethodEntry {
        name: "dense",
        summary: "no pruning: every weight trains (the accuracy ceiling)",
        build: |_| Box::new(dense::Dense),
    },
    MethodEntry {
        name: "static",
        summary: "a random mask with the layer-wise densities (uniform/ERK), fixed for the whole run",
        build: |_| Box::new(static_mask::StaticMask),
    },
    MethodEntry {
        name: "set",
        summary: "SET: every ΔT steps drop the smallest-magnitude weights, regrow as many at random",
        build: |c| Box::new(set::set(c.clone())),
    },
    MethodEntry {
        name: "rigl",
        summary: "RigL: every ΔT steps drop the smallest-magnitude weights, grow those with the largest gradient",
        build: |c| Box::new(rigl::rigl(c.clone())),
    },
];

pub fn find(name: &str) -> Option<&'static MethodEntry> {
    REGISTRY.iter().find(|m| m.name == name)
}

pub fn build(config: &MethodConfig) -> Result<Box<dyn SparsityMethod>, SparsityError> {
    config.validate()?;
    Ok((find(&config.name).expect("validated").build)(config))
}

/// The masks every sparse method starts from: random, with the configured layer-wise counts.
pub fn random_initial_masks(
    layers: &[SparseLayer],
    sparsity: &SparsityConfig,
    rng: &mut Rng,
) -> Result<Masks, SparsityError> {
    let counts = crate::sparsity::allocate(layers, sparsity)?;
    Ok(Masks::random(layers, &counts, rng))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_drop_fraction_decays_to_zero_at_end() {
        let c = MethodConfig::default();
        assert!((c.drop_fraction_at(0, 1000) - 0.3).abs() < 1e-12);
        assert!((c.drop_fraction_at(375, 1000) - 0.15).abs() < 1e-9);
        assert_eq!(c.drop_fraction_at(750, 1000), 0.0);
        assert!(c.is_update_step(700, 1000));
        assert!(!c.is_update_step(800, 1000));
        assert!(!c.is_update_step(0, 1000));
        assert!(!c.is_update_step(150, 1000));
    }

    #[test]
    fn unknown_method_lists_the_known_ones() {
        let c = MethodConfig {
            name: "rigl2".into(),
            ..Default::default()
        };
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("rigl2") && err.contains("set") && err.contains("dense"),
            "{err}"
        );
    }
}
