//! EAST (Extreme Adaptive Sparse Training): RigL plus three tricks, each switchable.
//! - DyReLU phasing and weight sharing change the model; `[method.east]` turns them on
//!   for the run (they also work with any other method through `[model]`).
//! - Cyclic sparsity changes the masks, here: during the cycles, every ΔT steps each
//!   layer moves to its quota at the cyclic density d(t): above it, prune by magnitude;
//!   below it, grow the inactive weights with the largest |gradient| (starting at zero).
//!   After the cycles, plain RigL at the target density.

use super::SettingsTable;
use super::cyclic::{CyclesConfig, CyclicSchedule};
use super::drop_grow::{DropAndGrow, GrowRule};
use super::{MaskUpdate, MethodConfig, SparsityMethod, Timeline, UpdateContext};
use crate::model::{Activation, ModelConfig};
use crate::sparsity::prune::{grow_to_counts, prune_to_counts};
use crate::sparsity::{Budget, Masks, SparsityError};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EastConfig {
    /// Every ReLU becomes DyReLU-B, phased into ReLU (see `[model.dyrelu]`).
    pub dyrelu: bool,
    /// Blocks after `model.own_blocks` in each stage reuse the last owned block's weights.
    pub weight_sharing: bool,
    /// The density cycles before RigL.
    pub cyclic: bool,
    pub cycles: CyclesConfig,
}

impl Default for EastConfig {
    fn default() -> Self {
        Self {
            dyrelu: true,
            weight_sharing: true,
            cyclic: true,
            cycles: CyclesConfig::default(),
        }
    }
}

impl super::MethodSettings for EastConfig {
    fn validate(&self) -> Result<(), SparsityError> {
        self.cycles.validate()
    }
}

/// DyReLU and weight sharing, as `[method.east]` switches them on, on top of `[model]`.
fn east_model(config: &MethodConfig, model: &mut ModelConfig) -> Result<(), SparsityError> {
    let settings: EastConfig = config.settings("east")?;
    if settings.dyrelu {
        model.activation = Activation::Dyrelu;
    }
    if settings.weight_sharing {
        model.shared_weights = true;
    }
    Ok(())
}

pub struct East {
    schedule: Option<CyclicSchedule>,
    rigl: DropAndGrow,
}

impl East {
    pub fn new(config: MethodConfig, timeline: Timeline) -> Result<Self, SparsityError> {
        let settings: EastConfig = config.settings("east")?;
        let schedule = if settings.cyclic {
            Some(CyclicSchedule::new(&settings.cycles, &timeline)?)
        } else {
            None
        };
        Ok(Self {
            schedule,
            rigl: DropAndGrow {
                name: "east",
                config,
                timeline,
                rule: GrowRule::Gradient,
            },
        })
    }

    fn in_cycles(&self, step: usize) -> bool {
        self.schedule.as_ref().is_some_and(|s| step < s.end())
    }
}

impl SparsityMethod for East {
    fn name(&self) -> &'static str {
        "east"
    }

    fn is_update_step(&self, step: usize) -> bool {
        let every = self.rigl.config.update_every;
        // The first step after the cycles always brings the density back to the target,
        // even when the cycles run past RigL's T_end.
        let cycles_end = self.schedule.as_ref().map(|s| s.end());
        (self.in_cycles(step) && step > 0 && step.is_multiple_of(every))
            || (cycles_end == Some(step) && step > 0)
            || self.rigl.is_update_step(step)
    }

    fn needs_gradients(&self, _step: usize) -> bool {
        true
    }

    fn update(
        &mut self,
        ctx: &UpdateContext,
        masks: &mut Masks,
    ) -> Result<MaskUpdate, SparsityError> {
        let target = ctx.budget.config.density();
        let cyclic = self
            .schedule
            .as_ref()
            .and_then(|s| s.density(ctx.step, target));
        let counts = ctx.budget.counts_at(cyclic.unwrap_or(target))?;
        let at_quota = masks.layers.iter().zip(&counts).all(|(l, &q)| l.nnz() == q);
        if cyclic.is_none() && at_quota {
            return self.rigl.update(ctx, masks);
        }
        // In a cycle, or the first update after the last one (back to the target).
        Ok(MaskUpdate {
            dropped: prune_to_counts(masks, ctx.weights, &counts),
            grown: grow_to_counts(masks, ctx.grads, &counts),
            drop_fraction: 0.0,
        })
    }

    fn scheduled_density(&self, step: usize, budget: &Budget) -> f64 {
        let target = budget.config.density();
        self.schedule
            .as_ref()
            .and_then(|s| s.density(step, target))
            .unwrap_or(target)
    }
}

/// The registry's line for east.
pub const ENTRY: super::MethodEntry = super::MethodEntry {
    name: "east",
    summary: "EAST: RigL + DyReLU phasing + weight sharing + cyclic density (each switchable in [method.east])",
    build: |c, t| Ok(Box::new(East::new(c.clone(), t)?)),
    settings: Some(SettingsTable::of::<EastConfig>()),
    adjust_model: Some(east_model),
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::sparsity::{SparseLayer, SparsityConfig};

    #[test]
    fn non_zero_count_follows_the_cyclic_target_after_every_update() {
        let layers = vec![
            SparseLayer {
                path: "a".into(),
                dims: vec![64, 32, 3, 3],
            },
            SparseLayer {
                path: "b".into(),
                dims: vec![10, 64],
            },
        ];
        let budget = Budget::new(
            layers.clone(),
            SparsityConfig {
                sparsity: 0.99,
                ..Default::default()
            },
            Default::default(),
        );
        let timeline = Timeline {
            steps_per_epoch: 50,
            total_steps: 800,
        };
        let config = MethodConfig {
            name: "east".into(),
            update_every: 10,
            ..Default::default()
        };
        let mut east = East::new(config, timeline).unwrap();
        let mut rng = Rng::new(3);
        let mut masks = east.initial_masks(&budget, &mut rng).unwrap();
        assert_eq!(masks.nnz(), budget.target_nnz(0.01));
        let mut peak = 0;
        let mut updates = 0;
        for step in 0..800 {
            if !east.is_update_step(step) {
                continue;
            }
            let noise = |rng: &mut Rng, l: &SparseLayer| -> Vec<f32> {
                (0..l.numel()).map(|_| rng.normal()).collect()
            };
            let weights: Vec<Vec<f32>> = layers.iter().map(|l| noise(&mut rng, l)).collect();
            let grads: Vec<Vec<f32>> = layers.iter().map(|l| noise(&mut rng, l)).collect();
            let ctx = UpdateContext {
                step,
                seed: 0,
                budget: &budget,
                weights: &weights,
                grads: &grads,
            };
            east.update(&ctx, &mut masks).unwrap();
            updates += 1;
            let want = budget.target_nnz(east.scheduled_density(step, &budget));
            assert_eq!(masks.nnz(), want, "step {step}");
            peak = peak.max(masks.nnz());
        }
        // Cycles over steps 0..400 peak at 3x the target (steps 100, 300); RigL to 600.
        assert_eq!(peak, budget.target_nnz(0.03));
        assert_eq!(updates, 59);
        assert_eq!(masks.nnz(), budget.target_nnz(0.01));
    }
}
