//! RigL (Evci et al., 2020): every ΔT steps, per layer, drop the fraction f(t) of active
//! weights with the smallest magnitude and grow as many inactive weights with the
//! largest dense-gradient magnitude; f decays (cosine by default) to 0 at T_end.
//! New weights start at zero; the update replaces that step's optimizer step.

use super::drop_grow::{DropAndGrow, GrowRule};
use super::{MethodConfig, Timeline};

pub fn rigl(config: MethodConfig, timeline: Timeline) -> DropAndGrow {
    DropAndGrow {
        name: "rigl",
        config,
        timeline,
        rule: GrowRule::Gradient,
    }
}

/// The registry's line for rigl.
pub const ENTRY: super::MethodEntry = super::MethodEntry {
    name: "rigl",
    summary: "RigL: every ΔT steps drop the smallest-magnitude weights, grow those with the largest gradient",
    build: |c, t| Ok(Box::new(rigl(c.clone(), t))),
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
    fn rigl_drops_small_weights_grows_large_gradients_and_keeps_counts() {
        let layers = vec![SparseLayer {
            path: "w".into(),
            dims: vec![20, 10],
        }];
        let sparsity = SparsityConfig {
            sparsity: 0.9,
            distribution: Distribution::Uniform,
            ..Default::default()
        };
        let budget = Budget::new(layers.clone(), sparsity.clone(), Default::default());
        let mut m = rigl(
            MethodConfig {
                drop_fraction: 0.5,
                ..Default::default()
            },
            TIMELINE,
        );
        let mut masks = m.initial_masks(&budget, &mut Rng::new(0)).unwrap();
        assert_eq!(masks.nnz(), 20);
        let before = masks.clone();
        // Weights: index value; gradients: large at two known inactive spots.
        let weights: Vec<f32> = (0..200)
            .map(|i| {
                if before.layers[0].active[i] {
                    i as f32
                } else {
                    0.0
                }
            })
            .collect();
        let inactive: Vec<usize> = (0..200).filter(|&i| !before.layers[0].active[i]).collect();
        let mut grads = vec![0.01f32; 200];
        for (j, &i) in inactive.iter().rev().take(10).enumerate() {
            grads[i] = -(100.0 + j as f32);
        }
        let ctx = UpdateContext {
            step: 0,
            budget: &budget,
            seed: 1,
            weights: std::slice::from_ref(&weights),
            grads: std::slice::from_ref(&grads),
        };
        let up = m.update(&ctx, &mut masks).unwrap();
        assert_eq!(masks.nnz(), 20, "density unchanged");
        assert_eq!(up.dropped[0].len(), 10);
        // The ten smallest active weights were the first ten active indices.
        let first_active: Vec<usize> = (0..200)
            .filter(|&i| before.layers[0].active[i])
            .take(10)
            .collect();
        assert_eq!(up.dropped[0], first_active);
        let mut want: Vec<usize> = inactive.iter().rev().take(10).copied().collect();
        want.sort();
        assert_eq!(up.grown[0], want);
    }
}
