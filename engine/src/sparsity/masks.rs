//! The masks: one boolean per prunable weight, per layer, held on the host as the source
//! of truth (densities and churn are counted from these), mirrored to the device as 0/1
//! float tensors for the masked optimizer step.

use super::{SparseLayer, topk::top_k};
use crate::rng::Rng;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerMask {
    pub path: String,
    pub dims: Vec<usize>,
    pub active: Vec<bool>,
}

impl LayerMask {
    pub fn numel(&self) -> usize {
        self.active.len()
    }

    pub fn nnz(&self) -> usize {
        self.active.iter().filter(|a| **a).count()
    }

    pub fn density(&self) -> f64 {
        self.nnz() as f64 / self.numel() as f64
    }

    pub fn to_tensor(&self, device: &Device) -> Tensor<1> {
        let data: Vec<f32> = self
            .active
            .iter()
            .map(|&a| if a { 1.0 } else { 0.0 })
            .collect();
        Tensor::from_data(TensorData::new(data, [self.numel()]), device)
    }

    /// Deactivates the `k` active weights of smallest magnitude (ties: lower index goes).
    /// Returns the dropped indices.
    pub fn drop_smallest(&mut self, weights: &[f32], k: usize) -> Vec<usize> {
        let active: Vec<usize> = (0..self.numel()).filter(|&i| self.active[i]).collect();
        let dropped = top_k(active, |i| -weights[i].abs(), k);
        for &i in &dropped {
            self.active[i] = false;
        }
        dropped
    }

    /// Activates the `k` inactive weights of largest `|score|`. Returns their indices.
    pub fn grow_largest(&mut self, scores: &[f32], k: usize) -> Vec<usize> {
        let inactive: Vec<usize> = (0..self.numel()).filter(|&i| !self.active[i]).collect();
        let grown = top_k(inactive, |i| scores[i].abs(), k);
        for &i in &grown {
            self.active[i] = true;
        }
        grown
    }

    /// Activates `k` inactive weights chosen uniformly at random.
    pub fn grow_random(&mut self, rng: &mut Rng, k: usize) -> Vec<usize> {
        let inactive: Vec<usize> = (0..self.numel()).filter(|&i| !self.active[i]).collect();
        let mut grown: Vec<usize> = rng
            .sample_indices(inactive.len(), k)
            .into_iter()
            .map(|j| inactive[j])
            .collect();
        grown.sort_unstable();
        for &i in &grown {
            self.active[i] = true;
        }
        grown
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Masks {
    pub layers: Vec<LayerMask>,
}

impl Masks {
    /// All weights active (the dense baseline).
    pub fn dense(layers: &[SparseLayer]) -> Self {
        Self {
            layers: layers
                .iter()
                .map(|l| LayerMask {
                    path: l.path.clone(),
                    dims: l.dims.clone(),
                    active: vec![true; l.numel()],
                })
                .collect(),
        }
    }

    /// Exactly `counts[i]` active weights in layer i, placed uniformly at random.
    pub fn random(layers: &[SparseLayer], counts: &[usize], rng: &mut Rng) -> Self {
        Self {
            layers: layers
                .iter()
                .zip(counts)
                .map(|(l, &k)| {
                    let mut active = vec![false; l.numel()];
                    for i in rng.sample_indices(l.numel(), k) {
                        active[i] = true;
                    }
                    LayerMask {
                        path: l.path.clone(),
                        dims: l.dims.clone(),
                        active,
                    }
                })
                .collect(),
        }
    }

    pub fn get(&self, path: &str) -> Option<&LayerMask> {
        self.layers.iter().find(|l| l.path == path)
    }

    pub fn nnz(&self) -> usize {
        self.layers.iter().map(LayerMask::nnz).sum()
    }

    pub fn numel(&self) -> usize {
        self.layers.iter().map(LayerMask::numel).sum()
    }

    pub fn density(&self) -> f64 {
        self.nnz() as f64 / self.numel().max(1) as f64
    }

    /// Per-layer (path, non-zeros, size).
    pub fn per_layer(&self) -> Vec<(String, usize, usize)> {
        self.layers
            .iter()
            .map(|l| (l.path.clone(), l.nnz(), l.numel()))
            .collect()
    }

    /// Fraction of `self`'s active weights that were inactive in `before`.
    pub fn churn_since(&self, before: &Masks) -> f64 {
        let mut new = 0usize;
        for (a, b) in self.layers.iter().zip(&before.layers) {
            new += a
                .active
                .iter()
                .zip(&b.active)
                .filter(|(x, y)| **x && !**y)
                .count();
        }
        new as f64 / self.nnz().max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_masks_have_exact_counts() {
        let layers = vec![
            SparseLayer {
                path: "a".into(),
                dims: vec![8, 3, 3, 3],
            },
            SparseLayer {
                path: "b".into(),
                dims: vec![10, 8],
            },
        ];
        let m = Masks::random(&layers, &[17, 5], &mut Rng::new(1));
        assert_eq!(m.layers[0].nnz(), 17);
        assert_eq!(m.layers[1].nnz(), 5);
        assert_eq!(m.nnz(), 22);
    }

    #[test]
    fn drop_then_grow_keeps_the_count_and_picks_the_right_weights() {
        let mut m = LayerMask {
            path: "w".into(),
            dims: vec![6],
            active: vec![true, true, true, false, false, false],
        };
        let w = [0.5, -0.1, 2.0, 0.0, 0.0, 0.0];
        assert_eq!(m.drop_smallest(&w, 1), vec![1]);
        // Index 1 was just dropped and may regrow, but its gradient is small.
        let g = [9.0, 0.5, 9.0, 0.2, -3.0, 1.0];
        assert_eq!(m.grow_largest(&g, 1), vec![4]);
        assert_eq!(m.nnz(), 3);
        assert_eq!(m.active, vec![true, false, true, false, true, false]);
    }
}
