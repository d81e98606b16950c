//! Learning-rate rewinding (Renda et al., 2020), the iterative-pruning baseline: train
//! dense for one LR cycle, then at each of `levels` levels prune by magnitude to the next
//! density (an equal fraction each level, ending at the target), keep the weights, and
//! restart the LR schedule. The run's epochs are split evenly over the levels + 1 cycles.

use super::SettingsTable;
use super::{
    Cycle, MaskUpdate, MethodConfig, SparsityMethod, Timeline, UpdateContext, dense_start,
    equal_cycles, prune_to_density,
};
use crate::rng::Rng;
use crate::sparsity::prune::PruneScope;
use crate::sparsity::{Budget, Masks, SparsityError};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LrrConfig {
    pub levels: usize,
    pub scope: PruneScope,
}

impl Default for LrrConfig {
    fn default() -> Self {
        Self {
            levels: 3,
            scope: PruneScope::Global,
        }
    }
}

impl super::MethodSettings for LrrConfig {
    fn validate(&self) -> Result<(), SparsityError> {
        if self.levels == 0 || self.levels > 100 {
            return Err(SparsityError::Invalid(
                "method.lrr.levels must be in 1..=100".into(),
            ));
        }
        Ok(())
    }
}

pub struct Lrr {
    levels: usize,
    scope: PruneScope,
    timeline: Timeline,
}

impl Lrr {
    pub fn new(config: MethodConfig, timeline: Timeline) -> Result<Self, SparsityError> {
        let settings: LrrConfig = config.settings("lrr")?;
        Ok(Self {
            levels: settings.levels,
            scope: settings.scope,
            timeline,
        })
    }

    /// Density after `level` prunings: the target to the power level/levels.
    fn density_at_level(&self, level: usize, target: f64) -> f64 {
        target.powf(level as f64 / self.levels as f64)
    }
}

impl SparsityMethod for Lrr {
    fn name(&self) -> &'static str {
        "lrr"
    }

    fn initial_masks(&self, budget: &Budget, _: &mut Rng) -> Result<Masks, SparsityError> {
        dense_start(budget)
    }

    fn is_update_step(&self, step: usize) -> bool {
        let c = self.cycle(step).expect("cyclic");
        c.index > 0 && c.start == step
    }

    fn replaces_optimizer_step(&self) -> bool {
        false
    }

    fn update(
        &mut self,
        ctx: &UpdateContext,
        masks: &mut Masks,
    ) -> Result<MaskUpdate, SparsityError> {
        let density = self.scheduled_density(ctx.step, ctx.budget);
        prune_to_density(self.scope, density, ctx, masks)
    }

    fn scheduled_density(&self, step: usize, budget: &Budget) -> f64 {
        let level = self.cycle(step).expect("cyclic").index;
        self.density_at_level(level, budget.config.density())
    }

    fn cycle(&self, step: usize) -> Option<Cycle> {
        Some(equal_cycles(self.levels + 1, &self.timeline, step))
    }
}

/// The registry's line for lrr.
pub const ENTRY: super::MethodEntry = super::MethodEntry {
    name: "lrr",
    summary: "LRR: train dense, prune a fraction per level by magnitude, keep weights, rewind the LR",
    build: |c, t| Ok(Box::new(Lrr::new(c.clone(), t)?)),
    settings: Some(SettingsTable::of::<LrrConfig>()),
    adjust_model: None,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparsity::{SparseLayer, SparsityConfig};

    #[test]
    fn prunes_geometrically_at_each_rewind_to_the_target() {
        let budget = Budget::new(
            vec![SparseLayer {
                path: "w".into(),
                dims: vec![1000],
            }],
            SparsityConfig {
                sparsity: 0.999,
                distribution: crate::sparsity::Distribution::Uniform,
                ..Default::default()
            },
            Default::default(),
        );
        let timeline = Timeline {
            steps_per_epoch: 10,
            total_steps: 80,
        };
        let mut lrr = Lrr::new(MethodConfig::default(), timeline).unwrap();
        let mut masks = lrr.initial_masks(&budget, &mut Rng::new(0)).unwrap();
        let weights = vec![(0..1000).map(|i| (i % 97) as f32).collect::<Vec<_>>()];
        let mut counts = Vec::new();
        for step in 0..80 {
            if lrr.is_update_step(step) {
                let ctx = UpdateContext {
                    step,
                    seed: 0,
                    budget: &budget,
                    weights: &weights,
                    grads: &[],
                };
                lrr.update(&ctx, &mut masks).unwrap();
                counts.push((step, masks.nnz()));
            }
        }
        // 4 cycles of 20 steps; densities 10%, 1%, 0.1% of 1000.
        assert_eq!(counts, vec![(20, 100), (40, 10), (60, 1)]);
        assert_eq!(lrr.cycle(45).unwrap().start, 40);
    }
}
