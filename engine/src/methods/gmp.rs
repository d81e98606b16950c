//! Gradual magnitude pruning (Zhu & Gupta, 2017): start dense, and every ΔT steps from
//! t_0 to t_end prune by magnitude to s_t = s_f·(1 − (1 − τ)³), τ the progress through
//! [t_0, t_end]. The cubic ramp prunes fast while there is redundancy, slowly near the end.

use super::SettingsTable;
use super::{
    MaskUpdate, MethodConfig, SparsityMethod, Timeline, UpdateContext, dense_start,
    prune_to_density,
};
use crate::rng::Rng;
use crate::sparsity::prune::PruneScope;
use crate::sparsity::{Budget, Masks, SparsityError};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GmpConfig {
    /// t_0 and t_end as fractions of training.
    pub start_fraction: f64,
    pub end_fraction: f64,
    pub scope: PruneScope,
}

impl Default for GmpConfig {
    fn default() -> Self {
        Self {
            start_fraction: 0.1,
            end_fraction: 0.75,
            scope: PruneScope::Layerwise,
        }
    }
}

impl super::MethodSettings for GmpConfig {
    fn validate(&self) -> Result<(), SparsityError> {
        if !(0.0 <= self.start_fraction
            && self.start_fraction < self.end_fraction
            && self.end_fraction <= 1.0)
        {
            return Err(SparsityError::Invalid(
                "method.gmp needs 0 <= start_fraction < end_fraction <= 1".into(),
            ));
        }
        Ok(())
    }
}

pub struct Gmp {
    every: usize,
    start: usize,
    end: usize,
    scope: PruneScope,
}

impl Gmp {
    pub fn new(config: MethodConfig, timeline: Timeline) -> Result<Self, SparsityError> {
        let settings: GmpConfig = config.settings("gmp")?;
        // The last prune (τ = 1) must happen inside the run, even with end_fraction = 1.
        let last = timeline.total_steps.saturating_sub(1);
        let start = timeline
            .at(settings.start_fraction)
            .min(last.saturating_sub(1));
        Ok(Self {
            every: config.update_every,
            start,
            end: timeline
                .at(settings.end_fraction)
                .clamp(start + 1, last.max(start + 1)),
            scope: settings.scope,
        })
    }
}

impl SparsityMethod for Gmp {
    fn name(&self) -> &'static str {
        "gmp"
    }

    fn initial_masks(&self, budget: &Budget, _: &mut Rng) -> Result<Masks, SparsityError> {
        dense_start(budget)
    }

    fn is_update_step(&self, step: usize) -> bool {
        // Through the first multiple of ΔT at or past t_end, where τ = 1.
        step == self.end
            || (step >= self.start
                && (step - self.start).is_multiple_of(self.every)
                && step < self.end)
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
        if step < self.start {
            return 1.0;
        }
        let tau = ((step - self.start) as f64 / (self.end - self.start) as f64).min(1.0);
        let sparsity = budget.config.sparsity * (1.0 - (1.0 - tau).powi(3));
        1.0 - sparsity
    }
}

/// The registry's line for gmp.
pub const ENTRY: super::MethodEntry = super::MethodEntry {
    name: "gmp",
    summary: "gradual magnitude pruning: dense start, cubic sparsity ramp by magnitude (Zhu & Gupta)",
    build: |c, t| Ok(Box::new(Gmp::new(c.clone(), t)?)),
    settings: Some(SettingsTable::of::<GmpConfig>()),
    adjust_model: None,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparsity::{SparseLayer, SparsityConfig};

    #[test]
    fn cubic_ramp_reaches_the_target_exactly_and_prunes_the_smallest() {
        let layers = vec![SparseLayer {
            path: "w".into(),
            dims: vec![100, 10],
        }];
        let budget = Budget::new(
            layers,
            SparsityConfig {
                sparsity: 0.9,
                ..Default::default()
            },
            Default::default(),
        );
        let timeline = Timeline {
            steps_per_epoch: 10,
            total_steps: 100,
        };
        let mut gmp = Gmp::new(
            MethodConfig {
                name: "gmp".into(),
                update_every: 10,
                ..Default::default()
            },
            timeline,
        )
        .unwrap();
        let mut masks = gmp.initial_masks(&budget, &mut Rng::new(0)).unwrap();
        assert_eq!(masks.nnz(), 1000);
        // |w| grows with the index: pruning must keep the highest indices.
        let weights = vec![(0..1000).map(|i| i as f32 * 0.01).collect::<Vec<_>>()];
        let mut seen = Vec::new();
        for step in 0..100 {
            if gmp.is_update_step(step) {
                let ctx = UpdateContext {
                    step,
                    seed: 0,
                    budget: &budget,
                    weights: &weights,
                    grads: &[],
                };
                gmp.update(&ctx, &mut masks).unwrap();
                seen.push((step, masks.nnz()));
            }
        }
        // Updates at 10, 20, ..., 70 and at t_end = 75, where the target is reached.
        assert_eq!(seen.first(), Some(&(10, 1000)));
        assert_eq!(seen.last(), Some(&(75, 100)));
        assert!(seen.windows(2).all(|w| w[1].1 <= w[0].1));
        // Cubic: more than half the pruning happens in the first third of the ramp.
        let (_, at_30) = seen.iter().find(|(s, _)| *s == 30).unwrap();
        assert!(*at_30 < 1000 - 450, "{at_30}");
        assert!(masks.layers[0].active[900..].iter().all(|a| *a));
    }
}
