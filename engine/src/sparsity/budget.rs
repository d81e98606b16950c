//! The non-zero budget of a run: how many weights each layer may keep at a given overall
//! density. With EAST's weight sharing the budget is counted on the *unshared* network
//! (every reuse of a weight counted as a weight), so a shared model learns as many
//! non-zeros as the plain one at the same sparsity: the unique weights' density is
//! scaled by (prunable weights counted as unshared) / (unique prunable weights).

use super::{SparseLayer, SparsityConfig, SparsityError, allocate_total};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq)]
pub struct Budget {
    /// The unique prunable layers (those that own weights).
    pub layers: Vec<SparseLayer>,
    pub config: SparsityConfig,
    /// Extra uses of each layer's weights by shared blocks, by path.
    pub reuse: BTreeMap<String, usize>,
}

impl Budget {
    pub fn new(
        layers: Vec<SparseLayer>,
        config: SparsityConfig,
        reuse: BTreeMap<String, usize>,
    ) -> Self {
        Self {
            layers,
            config,
            reuse,
        }
    }

    /// How many times layer `i`'s weights run per forward pass.
    pub fn uses(&self, i: usize) -> usize {
        1 + self.reuse.get(&self.layers[i].path).copied().unwrap_or(0)
    }

    /// Unique prunable weights.
    pub fn unique_total(&self) -> usize {
        self.layers.iter().map(SparseLayer::numel).sum()
    }

    /// Prunable weights of the unshared network (equal to `unique_total` without sharing).
    pub fn unshared_total(&self) -> usize {
        (0..self.layers.len())
            .map(|i| self.layers[i].numel() * self.uses(i))
            .sum()
    }

    /// Learnable non-zeros at overall density `density`.
    pub fn target_nnz(&self, density: f64) -> usize {
        (density.clamp(0.0, 1.0) * self.unshared_total() as f64).round() as usize
    }

    /// Per-layer counts at overall density `density` (capped at every weight active).
    pub fn counts_at(&self, density: f64) -> Result<Vec<usize>, SparsityError> {
        let target = self.target_nnz(density).min(self.unique_total());
        allocate_total(target, &self.layers, &self.config)
    }

    /// Per-layer counts at the configured (target) sparsity; errors if it cannot be met.
    pub fn target_counts(&self) -> Result<Vec<usize>, SparsityError> {
        self.config.validate()?;
        allocate_total(
            self.target_nnz(self.config.density()),
            &self.layers,
            &self.config,
        )
    }

    /// Non-zeros counted at every use (what the forward pass computes with).
    pub fn effective_nnz(&self, per_layer_nnz: &[usize]) -> usize {
        per_layer_nnz
            .iter()
            .enumerate()
            .map(|(i, n)| n * self.uses(i))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(path: &str, dims: &[usize]) -> SparseLayer {
        SparseLayer {
            path: path.into(),
            dims: dims.to_vec(),
        }
    }

    #[test]
    fn sharing_scales_the_unique_density_to_keep_the_count() {
        let layers = vec![layer("a", &[16, 16, 3, 3]), layer("b", &[16, 16, 3, 3])];
        let config = SparsityConfig {
            sparsity: 0.9,
            ..Default::default()
        };
        let plain = Budget::new(layers.clone(), config.clone(), BTreeMap::new());
        // "b" is reused by two more blocks: the unshared network has 4 x 2304 weights.
        let shared = Budget::new(layers, config, BTreeMap::from([("b".to_string(), 2)]));
        assert_eq!(shared.unshared_total(), 4 * 2304);
        let counts = shared.target_counts().unwrap();
        // 10% of the unshared 9216 weights, held by 4608 unique weights (density 20%).
        assert_eq!(counts.iter().sum::<usize>(), 922);
        assert_eq!(plain.target_counts().unwrap().iter().sum::<usize>(), 461);
        assert_eq!(shared.effective_nnz(&counts), counts[0] + 3 * counts[1]);
        // Low sparsity cannot be kept equal with fewer unique weights: a clear error.
        let too_dense = Budget::new(
            shared.layers.clone(),
            SparsityConfig {
                sparsity: 0.3,
                ..Default::default()
            },
            shared.reuse.clone(),
        );
        let err = too_dense.target_counts().unwrap_err().to_string();
        assert!(err.contains("shared_weights"), "{err}");
    }
}
