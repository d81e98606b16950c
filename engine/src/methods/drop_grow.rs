//! The prune-and-regrow method behind SET and RigL: every ΔT steps until T_end, in every
//! layer, drop the `round(f(t) x active)` smallest-magnitude active weights, then grow as
//! many, chosen by the grow rule among the weights inactive after the drop. Layer
//! densities never move; the update replaces that step's optimizer step.

use super::{MaskUpdate, MethodConfig, SparsityMethod, Timeline, UpdateContext};
use crate::rng::Rng;
use crate::sparsity::{Masks, SparsityError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrowRule {
    /// Largest |dense gradient| (RigL).
    Gradient,
    /// Uniformly at random, seeded by the step (SET).
    Random,
}

pub struct DropAndGrow {
    pub name: &'static str,
    pub config: MethodConfig,
    pub timeline: Timeline,
    pub rule: GrowRule,
}

impl SparsityMethod for DropAndGrow {
    fn name(&self) -> &'static str {
        self.name
    }

    fn is_update_step(&self, step: usize) -> bool {
        self.config.is_update_step(step, self.timeline.total_steps)
    }

    fn needs_gradients(&self, _step: usize) -> bool {
        self.rule == GrowRule::Gradient
    }

    fn update(
        &mut self,
        ctx: &UpdateContext,
        masks: &mut Masks,
    ) -> Result<MaskUpdate, SparsityError> {
        let fraction = self
            .config
            .drop_fraction_at(ctx.step, self.timeline.total_steps);
        Ok(drop_and_grow(ctx, masks, fraction, self.rule))
    }
}

/// One prune-and-regrow pass over every layer, with the fraction `fraction`.
pub fn drop_and_grow(
    ctx: &UpdateContext,
    masks: &mut Masks,
    fraction: f64,
    rule: GrowRule,
) -> MaskUpdate {
    let mut update = MaskUpdate {
        drop_fraction: fraction,
        ..Default::default()
    };
    let mut rng = Rng::stream(ctx.seed, 0x6_0000_0000 + ctx.step as u64);
    for (l, layer) in masks.layers.iter_mut().enumerate() {
        let nnz = layer.nnz();
        // Never more than the inactive weights available to regrow into.
        let k = ((fraction * nnz as f64).round() as usize).min(layer.numel() - nnz);
        let dropped = layer.drop_smallest(&ctx.weights[l], k);
        let grown = match rule {
            GrowRule::Gradient => layer.grow_largest(&ctx.grads[l], k),
            GrowRule::Random => layer.grow_random(&mut rng, k),
        };
        update.dropped.push(dropped);
        update.grown.push(grown);
    }
    update
}
