//! SCULPT-ing (cyclic training, then one prune): prune at initialisation to a moderate
//! density (random ERK, magnitude or SNIP), train C cycles that each restart the LR
//! schedule and the optimizer, prune once by global magnitude to the target, and train
//! one more cycle. The run's epochs are split evenly over the C + 1 cycles; use a
//! warm-up-then-decay LR (`schedule.kind = "linear"` with a warm-up) as in the paper.

use super::SettingsTable;
use super::{
    Cycle, MaskUpdate, MethodConfig, SparsityMethod, Timeline, UpdateContext, equal_cycles,
    prune_to_density,
};
use crate::rng::Rng;
use crate::sparsity::prune::PruneScope;
use crate::sparsity::{Budget, Masks, SparsityError};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InitPruning {
    /// A random mask with the layer-wise distribution.
    Random,
    /// Largest |w| at initialisation.
    Magnitude,
    /// SNIP: largest |w·∂L/∂w| on the first batch.
    Snip,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SculptConfig {
    /// C: cycles of training before the one prune.
    pub cycles: usize,
    pub init: InitPruning,
    /// The density trained before the prune: this multiple of the target (at most 1).
    pub start_density_multiple: f64,
    pub scope: PruneScope,
}

impl Default for SculptConfig {
    fn default() -> Self {
        Self {
            cycles: 3,
            init: InitPruning::Random,
            start_density_multiple: 10.0,
            scope: PruneScope::Global,
        }
    }
}

impl super::MethodSettings for SculptConfig {
    fn validate(&self) -> Result<(), SparsityError> {
        if self.cycles == 0
            || self.cycles > 100
            || self.start_density_multiple.is_nan()
            || self.start_density_multiple < 1.0
        {
            return Err(SparsityError::Invalid(
                "method.sculpt: cycles in 1..=100 and start_density_multiple >= 1".into(),
            ));
        }
        Ok(())
    }
}

pub struct Sculpt {
    config: SculptConfig,
    timeline: Timeline,
}

impl Sculpt {
    pub fn new(config: MethodConfig, timeline: Timeline) -> Result<Self, SparsityError> {
        Ok(Self {
            config: config.settings("sculpt")?,
            timeline,
        })
    }

    fn start_density(&self, budget: &Budget) -> f64 {
        (budget.config.density() * self.config.start_density_multiple).min(1.0)
    }

    fn final_cycle_start(&self) -> usize {
        equal_cycles(
            self.config.cycles + 1,
            &self.timeline,
            self.timeline.total_steps.saturating_sub(1),
        )
        .start
    }
}

impl SparsityMethod for Sculpt {
    fn name(&self) -> &'static str {
        "sculpt"
    }

    fn initial_masks(&self, budget: &Budget, rng: &mut Rng) -> Result<Masks, SparsityError> {
        budget.target_counts()?;
        let start = budget.counts_at(self.start_density(budget))?;
        Ok(match self.config.init {
            InitPruning::Random => Masks::random(&budget.layers, &start, rng),
            // Scored at step 0, from the weights (and the first batch's gradients).
            InitPruning::Magnitude | InitPruning::Snip => Masks::dense(&budget.layers),
        })
    }

    fn is_update_step(&self, step: usize) -> bool {
        (step == 0 && self.config.init != InitPruning::Random) || step == self.final_cycle_start()
    }

    fn needs_gradients(&self, step: usize) -> bool {
        step == 0 && self.config.init == InitPruning::Snip
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
        if ctx.step == 0 && self.config.init == InitPruning::Snip {
            // SNIP scores connections by |w·∂L/∂w| instead of |w|.
            let scores: Vec<Vec<f32>> = ctx
                .weights
                .iter()
                .zip(ctx.grads)
                .map(|(w, g)| w.iter().zip(g).map(|(w, g)| w * g).collect())
                .collect();
            let snip = UpdateContext {
                weights: &scores,
                ..*ctx
            };
            return prune_to_density(self.config.scope, density, &snip, masks);
        }
        prune_to_density(self.config.scope, density, ctx, masks)
    }

    fn scheduled_density(&self, step: usize, budget: &Budget) -> f64 {
        if step >= self.final_cycle_start() {
            budget.config.density()
        } else {
            self.start_density(budget)
        }
    }

    fn cycle(&self, step: usize) -> Option<Cycle> {
        Some(equal_cycles(self.config.cycles + 1, &self.timeline, step))
    }

    fn restarts_optimizer(&self) -> bool {
        true
    }
}

/// The registry's line for sculpt.
pub const ENTRY: super::MethodEntry = super::MethodEntry {
    name: "sculpt",
    summary: "SCULPT-ing: cyclic training of a sparse mask, one global magnitude prune to the target, one more cycle",
    build: |c, t| Ok(Box::new(Sculpt::new(c.clone(), t)?)),
    settings: Some(SettingsTable::of::<SculptConfig>()),
    adjust_model: None,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparsity::{SparseLayer, SparsityConfig};

    fn budget() -> Budget {
        Budget::new(
            vec![
                SparseLayer {
                    path: "a".into(),
                    dims: vec![40, 50],
                },
                SparseLayer {
                    path: "b".into(),
                    dims: vec![10, 100],
                },
            ],
            SparsityConfig {
                sparsity: 0.99,
                ..Default::default()
            },
            Default::default(),
        )
    }

    #[test]
    fn snip_at_init_then_one_global_prune_before_the_last_cycle() {
        let budget = budget();
        let timeline = Timeline {
            steps_per_epoch: 10,
            total_steps: 100,
        };
        let mut config = MethodConfig::default();
        let snip = SculptConfig {
            init: InitPruning::Snip,
            ..Default::default()
        };
        config.tables.set("sculpt", &snip).unwrap();
        let mut m = Sculpt::new(config, timeline).unwrap();
        let mut masks = m.initial_masks(&budget, &mut Rng::new(0)).unwrap();
        assert_eq!(masks.nnz(), 3000);
        let updates: Vec<usize> = (0..100).filter(|&s| m.is_update_step(s)).collect();
        assert_eq!(updates, vec![0, 75]);
        assert!(m.needs_gradients(0) && !m.needs_gradients(75));
        assert_eq!(
            m.cycle(30).unwrap(),
            Cycle {
                index: 1,
                start: 25,
                len: 25
            }
        );
        // SNIP: weight 1 everywhere, so the gradient alone decides; it favours layer "b".
        let weights = vec![vec![1.0f32; 2000], vec![1.0f32; 1000]];
        let grads = vec![vec![0.01f32; 2000], (0..1000).map(|i| i as f32).collect()];
        let ctx = UpdateContext {
            step: 0,
            seed: 0,
            budget: &budget,
            weights: &weights,
            grads: &grads,
        };
        m.update(&ctx, &mut masks).unwrap();
        // Start density 10% of 3000 = 300, by one global threshold: all in "b" but one.
        assert_eq!(masks.nnz(), 300);
        assert_eq!(masks.layers[0].nnz(), 1);
        assert!(masks.layers[1].active[999] && !masks.layers[1].active[700]);
        let ctx = UpdateContext {
            step: 75,
            grads: &[],
            ..ctx
        };
        m.update(&ctx, &mut masks).unwrap();
        assert_eq!(masks.nnz(), 30);
    }
}
