//! Sparse-training methods behind one small trait and one registry.
//!
//! A method owns two decisions: the initial masks, and how the masks change during
//! training. The training loop owns everything else (it zeroes dropped weights, starts
//! grown weights and their momentum at zero, and keeps pruned weights at zero).

pub mod acdc;
pub mod cyclic;
pub mod dense;
pub mod drop_grow;
pub mod east;
pub mod gmp;
pub mod lrr;
pub mod rigl;
pub mod sculpt;
pub mod set;
pub mod settings;
pub mod static_mask;

pub use settings::{MethodSettings, MethodTables, SettingsTable};

use crate::model::ModelConfig;
use crate::rng::Rng;
use crate::sparsity::prune::PruneScope;
use crate::sparsity::{Budget, Masks, SparsityError};
use serde::{Deserialize, Serialize};

/// How the fraction of weights replaced at each update decays over training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DropSchedule {
    Cosine,
    Linear,
    Constant,
}

/// `[method]`: which method, the drop-and-grow settings several methods share, and each
/// method's own table (`[method.<name>]`, see `MethodTables`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
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
    /// Unknown keys of `[method]` land here and are refused by name.
    #[serde(flatten)]
    pub tables: MethodTables,
}

impl Default for MethodConfig {
    fn default() -> Self {
        Self {
            name: "rigl".into(),
            update_every: 100,
            drop_fraction: 0.3,
            drop_schedule: DropSchedule::Cosine,
            end_fraction: 0.75,
            tables: MethodTables::default(),
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
        self.tables.validate()
    }

    /// The settings of method `name` (its `[method.<name>]` table).
    pub fn settings<T: MethodSettings>(&self, name: &str) -> Result<T, SparsityError> {
        self.tables.get(name)
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

/// The run's length in steps, which methods turn their fractions and epochs into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeline {
    pub steps_per_epoch: usize,
    pub total_steps: usize,
}

impl Timeline {
    /// The step at `fraction` of training (rounded).
    pub fn at(&self, fraction: f64) -> usize {
        (fraction * self.total_steps as f64).round() as usize
    }
}

/// A stretch of training with its own LR schedule (cyclic methods restart it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cycle {
    pub index: usize,
    pub start: usize,
    pub len: usize,
}

/// `n` back-to-back cycles of (nearly) equal length covering the whole run.
pub fn equal_cycles(n: usize, timeline: &Timeline, step: usize) -> Cycle {
    let total = timeline.total_steps;
    let bound = |i: usize| i * total / n;
    let index = (0..n).rev().find(|&i| step >= bound(i)).unwrap_or(0);
    Cycle {
        index,
        start: bound(index),
        len: (bound(index + 1) - bound(index)).max(1),
    }
}

/// What a method sees at a mask update. Vectors are per mask layer, flattened.
pub struct UpdateContext<'a> {
    pub step: usize,
    pub seed: u64,
    pub budget: &'a Budget,
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
    fn initial_masks(&self, budget: &Budget, rng: &mut Rng) -> Result<Masks, SparsityError> {
        random_initial_masks(budget, rng)
    }
    /// Does the mask change at this step?
    fn is_update_step(&self, _step: usize) -> bool {
        false
    }
    /// Does `update` at this step read gradients at inactive weights?
    fn needs_gradients(&self, _step: usize) -> bool {
        false
    }
    /// Drop-and-grow methods (RigL) skip the optimizer step on update steps; pruning
    /// methods update the mask, then take the step with the new mask.
    fn replaces_optimizer_step(&self) -> bool {
        true
    }
    fn update(
        &mut self,
        _ctx: &UpdateContext,
        _masks: &mut Masks,
    ) -> Result<MaskUpdate, SparsityError> {
        Ok(MaskUpdate::default())
    }
    /// The overall density the method aims for at `step` (logged as a series).
    fn scheduled_density(&self, _step: usize, budget: &Budget) -> f64 {
        budget.config.density()
    }
    /// The LR cycle `step` is in; `None`: one schedule over the whole run.
    fn cycle(&self, _step: usize) -> Option<Cycle> {
        None
    }
    /// Clear the optimizer state at every cycle start (SCULPT-ing).
    fn restarts_optimizer(&self) -> bool {
        false
    }
}

/// Builds a method for a run of the given length.
pub type BuildMethod =
    fn(&MethodConfig, Timeline) -> Result<Box<dyn SparsityMethod>, SparsityError>;

/// Changes a method makes to the configured model.
pub type AdjustModel = fn(&MethodConfig, &mut ModelConfig) -> Result<(), SparsityError>;

/// A method as the registry lists it. Its file defines it (`pub const ENTRY`).
pub struct MethodEntry {
    pub name: &'static str,
    pub summary: &'static str,
    pub build: BuildMethod,
    /// Its `[method.<name>]` table, if it has settings of its own.
    pub settings: Option<SettingsTable>,
    /// Changes to the model the method brings (EAST's DyReLU and weight sharing).
    pub adjust_model: Option<AdjustModel>,
}

/// Every method, one line each.
pub const REGISTRY: &[MethodEntry] = &[
    dense::ENTRY,
    static_mask::ENTRY,
    set::ENTRY,
    rigl::ENTRY,
    east::ENTRY,
    gmp::ENTRY,
    acdc::ENTRY,
    lrr::ENTRY,
    sculpt::ENTRY,
];

pub fn find(name: &str) -> Option<&'static MethodEntry> {
    REGISTRY.iter().find(|m| m.name == name)
}

pub fn build(
    config: &MethodConfig,
    timeline: Timeline,
) -> Result<Box<dyn SparsityMethod>, SparsityError> {
    config.validate()?;
    (find(&config.name).expect("validated").build)(config, timeline)
}

/// `model` with the changes the configured method brings to it.
pub fn adjusted_model(
    config: &MethodConfig,
    model: &ModelConfig,
) -> Result<ModelConfig, SparsityError> {
    let mut model = model.clone();
    if let Some(adjust) = find(&config.name).and_then(|m| m.adjust_model) {
        adjust(config, &mut model)?;
    }
    Ok(model)
}

/// The masks every sparse method starts from: random, with the configured layer-wise counts.
pub fn random_initial_masks(budget: &Budget, rng: &mut Rng) -> Result<Masks, SparsityError> {
    let counts = budget.target_counts()?;
    Ok(Masks::random(&budget.layers, &counts, rng))
}

/// Dense starting masks for the pruning methods (GMP, AC/DC, LRR), after checking that
/// the target they will prune to can be met: fail at the start, not at the last prune.
pub fn dense_start(budget: &Budget) -> Result<Masks, SparsityError> {
    budget.target_counts()?;
    Ok(Masks::dense(&budget.layers))
}

/// Prunes to overall density `density` by the largest `|ctx.weights|` (the scores: the
/// weights themselves, or SNIP's |w·g|), with layer-wise quotas or one global threshold.
/// Nothing grows. Every pruning method (GMP, AC/DC, LRR, SCULPT-ing) goes through here.
pub fn prune_to_density(
    scope: PruneScope,
    density: f64,
    ctx: &UpdateContext,
    masks: &mut Masks,
) -> Result<MaskUpdate, SparsityError> {
    let counts = match scope {
        PruneScope::Layerwise => ctx.budget.counts_at(density)?,
        PruneScope::Global => crate::sparsity::prune::global_counts(
            masks,
            ctx.weights,
            ctx.budget
                .target_nnz(density)
                .min(ctx.budget.unique_total()),
        ),
    };
    Ok(MaskUpdate {
        dropped: crate::sparsity::prune::prune_to_counts(masks, ctx.weights, &counts),
        grown: vec![Vec::new(); masks.layers.len()],
        drop_fraction: 0.0,
    })
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
    fn equal_cycles_cover_the_run() {
        let t = Timeline {
            steps_per_epoch: 10,
            total_steps: 100,
        };
        assert_eq!(
            equal_cycles(3, &t, 0),
            Cycle {
                index: 0,
                start: 0,
                len: 33
            }
        );
        assert_eq!(equal_cycles(3, &t, 33).index, 1);
        assert_eq!(equal_cycles(3, &t, 99).start, 66);
        assert_eq!(equal_cycles(3, &t, 99).len, 34);
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
