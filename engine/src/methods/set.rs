//! SET (Mocanu et al., 2018): every ΔT steps, per layer, drop the fraction f(t) of active
//! weights with the smallest magnitude and regrow as many at random positions.

use super::drop_grow::{DropAndGrow, GrowRule};
use super::{MethodConfig, Timeline};

pub fn set(config: MethodConfig, timeline: Timeline) -> DropAndGrow {
    DropAndGrow {
        name: "set",
        config,
        timeline,
        rule: GrowRule::Random,
    }
}

/// The registry's line for set.
pub const ENTRY: super::MethodEntry = super::MethodEntry {
    name: "set",
    summary: "SET: every ΔT steps drop the smallest-magnitude weights, regrow as many at random",
    build: |c, t| Ok(Box::new(set(c.clone(), t))),
    settings: None,
    adjust_model: None,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::{SparsityMethod, UpdateContext};
    use crate::rng::Rng;
    use crate::sparsity::Distribution;
    use crate::sparsity::{Budget, SparseLayer, SparsityConfig};
    const TIMELINE: crate::methods::Timeline = crate::methods::Timeline {
        steps_per_epoch: 100,
        total_steps: 1000,
    };

    #[test]
    fn set_keeps_layer_counts_and_regrows_reproducibly() {
        let layers = vec![
            SparseLayer {
                path: "a".into(),
                dims: vec![30, 10],
            },
            SparseLayer {
                path: "b".into(),
                dims: vec![10, 10],
            },
        ];
        let sparsity = SparsityConfig {
            sparsity: 0.8,
            distribution: Distribution::Erk,
            ..Default::default()
        };
        let budget = Budget::new(layers.clone(), sparsity.clone(), Default::default());
        let run = || {
            let mut m = set(
                MethodConfig {
                    name: "set".into(),
                    ..Default::default()
                },
                TIMELINE,
            );
            let mut masks = m.initial_masks(&budget, &mut Rng::new(4)).unwrap();
            let counts: Vec<usize> = masks.layers.iter().map(|l| l.nnz()).collect();
            let weights: Vec<Vec<f32>> = masks
                .layers
                .iter()
                .map(|l| (0..l.numel()).map(|i| i as f32 * 0.1).collect())
                .collect();
            let ctx = UpdateContext {
                step: 100,
                budget: &budget,
                seed: 9,
                weights: &weights,
                grads: &[],
            };
            let up = m.update(&ctx, &mut masks).unwrap();
            assert_eq!(
                counts,
                masks.layers.iter().map(|l| l.nnz()).collect::<Vec<_>>()
            );
            assert!(up.grown.iter().map(Vec::len).sum::<usize>() > 0);
            masks
        };
        assert_eq!(run(), run());
    }
}
