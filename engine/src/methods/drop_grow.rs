//! The prune-and-regrow update shared by SET and RigL: in every layer, drop the
//! `round(f x active)` smallest-magnitude active weights, then grow as many, chosen by the
//! method's rule among the weights inactive after the drop. Layer densities never move.

use super::{MaskUpdate, UpdateContext};
use crate::rng::Rng;
use crate::sparsity::Masks;

pub enum GrowRule {
    /// Largest |gradient| (RigL).
    Gradient,
    /// Uniformly at random (SET).
    Random,
}

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
