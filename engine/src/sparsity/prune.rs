//! Moving masks to per-layer quotas: prune by magnitude, grow by a score, and global
//! magnitude selection. Every method that changes densities (EAST's cycles, GMP, AC/DC,
//! LRR, SCULPT-ing) goes through these.

use super::Masks;
use super::topk::top_k;
use serde::{Deserialize, Serialize};

/// Where magnitudes are compared when pruning to a density.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PruneScope {
    /// Each layer keeps its quota from the layer-wise distribution (uniform/ERK).
    Layerwise,
    /// One threshold over all layers (every layer keeps at least one weight).
    Global,
}

/// Per layer, deactivates the smallest-magnitude active weights down to `counts[l]`.
pub fn prune_to_counts(
    masks: &mut Masks,
    weights: &[Vec<f32>],
    counts: &[usize],
) -> Vec<Vec<usize>> {
    masks
        .layers
        .iter_mut()
        .zip(counts)
        .enumerate()
        .map(|(l, (layer, &q))| {
            let excess = layer.nnz().saturating_sub(q);
            layer.drop_smallest(&weights[l], excess)
        })
        .collect()
}

/// Per layer, activates the inactive weights of largest `|score|` up to `counts[l]`.
pub fn grow_to_counts(masks: &mut Masks, scores: &[Vec<f32>], counts: &[usize]) -> Vec<Vec<usize>> {
    masks
        .layers
        .iter_mut()
        .zip(counts)
        .enumerate()
        .map(|(l, (layer, &q))| {
            let missing = q.saturating_sub(layer.nnz());
            layer.grow_largest(&scores[l], missing)
        })
        .collect()
}

/// Per-layer counts that keep the `target` largest-|score| active weights over all
/// layers, with at least one weight per layer (taken from the fullest layers).
pub fn global_counts(masks: &Masks, scores: &[Vec<f32>], target: usize) -> Vec<usize> {
    let candidates: Vec<(usize, usize)> = masks
        .layers
        .iter()
        .enumerate()
        .flat_map(|(l, layer)| {
            (0..layer.numel())
                .filter(|&i| layer.active[i])
                .map(move |i| (l, i))
        })
        .collect();
    let target = target.min(candidates.len());
    let keep = top_k(
        (0..candidates.len()).collect::<Vec<usize>>(),
        |c| {
            let (l, i) = candidates[c];
            scores[l][i].abs()
        },
        target,
    );
    let mut counts = vec![0usize; masks.layers.len()];
    for c in keep {
        counts[candidates[c].0] += 1;
    }
    // No layer may be cut off entirely: give it one weight, from the largest count.
    for l in 0..counts.len() {
        if counts[l] == 0
            && masks.layers[l].nnz() > 0
            && let Some(donor) = (0..counts.len())
                .filter(|&d| counts[d] > 1)
                .max_by_key(|&d| counts[d])
        {
            counts[donor] -= 1;
            counts[l] = 1;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparsity::LayerMask;

    fn mask(active: Vec<bool>) -> LayerMask {
        LayerMask {
            path: "w".into(),
            dims: vec![active.len()],
            active,
        }
    }

    #[test]
    fn quotas_are_met_by_magnitude_and_by_score() {
        let mut m = Masks {
            layers: vec![mask(vec![true; 6]), mask(vec![true, false, false, false])],
        };
        let w = vec![
            vec![0.1, -5.0, 0.3, 2.0, -0.2, 1.0],
            vec![1.0, 0.0, 0.0, 0.0],
        ];
        let dropped = prune_to_counts(&mut m, &w, &[2, 1]);
        assert_eq!(dropped, vec![vec![0, 2, 4, 5], vec![]]);
        let g = vec![vec![0.0; 6], vec![0.0, 0.5, -3.0, 1.0]];
        let grown = grow_to_counts(&mut m, &g, &[2, 3]);
        assert_eq!(grown[1], vec![2, 3]);
        assert_eq!(m.layers[1].nnz(), 3);
    }

    #[test]
    fn global_counts_follow_one_threshold_but_keep_every_layer() {
        let m = Masks {
            layers: vec![mask(vec![true; 4]), mask(vec![true; 3])],
        };
        let w = vec![vec![9.0, 8.0, 7.0, 6.0], vec![0.1, 0.2, 0.3]];
        assert_eq!(global_counts(&m, &w, 3), vec![2, 1]);
        assert_eq!(global_counts(&m, &w, 5), vec![4, 1]);
        assert_eq!(global_counts(&m, &w, 6), vec![4, 2]);
    }
}
