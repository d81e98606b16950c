//! AC/DC (Peste et al., 2021): alternating compressed and decompressed training. A dense
//! warm-up, then sparse (magnitude-pruned to the target) and dense phases in turn, and a
//! final sparse phase. Decompressing reactivates every weight from zero.

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
pub struct AcdcConfig {
    /// Fractions of training: the dense warm-up, each alternating phase, the sparse finish.
    pub warmup_fraction: f64,
    pub phase_fraction: f64,
    pub finish_fraction: f64,
}

impl Default for AcdcConfig {
    fn default() -> Self {
        // The paper's ImageNet schedule, as fractions of 100 epochs.
        Self {
            warmup_fraction: 0.1,
            phase_fraction: 0.05,
            finish_fraction: 0.15,
        }
    }
}

impl super::MethodSettings for AcdcConfig {
    fn validate(&self) -> Result<(), SparsityError> {
        let fractions = [
            self.warmup_fraction,
            self.phase_fraction,
            self.finish_fraction,
        ];
        if fractions.iter().any(|f| !(0.0..=1.0).contains(f))
            || self.phase_fraction == 0.0
            || self.finish_fraction == 0.0
            || self.warmup_fraction + self.finish_fraction > 1.0
        {
            return Err(SparsityError::Invalid(
                "method.acdc: fractions in [0, 1], phase_fraction > 0, finish_fraction > 0 \
                 (the run ends sparse) and warmup_fraction + finish_fraction <= 1"
                    .into(),
            ));
        }
        Ok(())
    }
}

pub struct AcDc {
    warmup_end: usize,
    phase_len: usize,
    finish_start: usize,
}

impl AcDc {
    pub fn new(config: MethodConfig, timeline: Timeline) -> Result<Self, SparsityError> {
        // `settings` validates the table.
        let c: AcdcConfig = config.settings("acdc")?;
        let c = &c;
        Ok(Self {
            warmup_end: timeline.at(c.warmup_fraction),
            phase_len: timeline.at(c.phase_fraction).max(1),
            finish_start: timeline.total_steps - timeline.at(c.finish_fraction),
        })
    }

    /// Is training compressed (sparse) at `step`?
    pub fn compressed(&self, step: usize) -> bool {
        if step >= self.finish_start {
            return true;
        }
        if step < self.warmup_end {
            return false;
        }
        ((step - self.warmup_end) / self.phase_len).is_multiple_of(2)
    }
}

impl SparsityMethod for AcDc {
    fn name(&self) -> &'static str {
        "acdc"
    }

    fn initial_masks(&self, budget: &Budget, _: &mut Rng) -> Result<Masks, SparsityError> {
        dense_start(budget)
    }

    fn is_update_step(&self, step: usize) -> bool {
        // Masks start dense: without a warm-up the first phase prunes at step 0.
        match step {
            0 => self.compressed(0),
            _ => self.compressed(step) != self.compressed(step - 1),
        }
    }

    fn replaces_optimizer_step(&self) -> bool {
        false
    }

    fn update(
        &mut self,
        ctx: &UpdateContext,
        masks: &mut Masks,
    ) -> Result<MaskUpdate, SparsityError> {
        if self.compressed(ctx.step) {
            let target = ctx.budget.config.density();
            return prune_to_density(PruneScope::Layerwise, target, ctx, masks);
        }
        let grown = masks
            .layers
            .iter_mut()
            .map(|layer| {
                let inactive: Vec<usize> =
                    (0..layer.numel()).filter(|&i| !layer.active[i]).collect();
                layer.active.iter_mut().for_each(|a| *a = true);
                inactive
            })
            .collect();
        Ok(MaskUpdate {
            dropped: vec![Vec::new(); masks.layers.len()],
            grown,
            drop_fraction: 0.0,
        })
    }

    fn scheduled_density(&self, step: usize, budget: &Budget) -> f64 {
        if self.compressed(step) {
            budget.config.density()
        } else {
            1.0
        }
    }
}

/// The registry's line for acdc.
pub const ENTRY: super::MethodEntry = super::MethodEntry {
    name: "acdc",
    summary: "AC/DC: dense warm-up, alternating compressed/decompressed phases, sparse finish",
    build: |c, t| Ok(Box::new(AcDc::new(c.clone(), t)?)),
    settings: Some(SettingsTable::of::<AcdcConfig>()),
    adjust_model: None,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_alternate_after_a_dense_warmup_and_end_sparse() {
        let timeline = Timeline {
            steps_per_epoch: 10,
            total_steps: 100,
        };
        let m = AcDc::new(MethodConfig::default(), timeline).unwrap();
        let pattern: String = (0..100)
            .step_by(5)
            .map(|s| if m.compressed(s) { 'C' } else { 'D' })
            .collect();
        // warm-up 0..10 dense, 5-step phases C/D from 10, sparse from 85.
        assert_eq!(pattern, "DDCDCDCDCDCDCDCDCCCC");
        let updates: Vec<usize> = (0..100).filter(|&s| m.is_update_step(s)).collect();
        assert_eq!(updates[..3], [10, 15, 20]);
        assert_eq!(*updates.last().unwrap(), 80);
    }
}
