//! The prunable layers of a model: every conv weight (rank 4) and linear weight (rank 2).
//! Biases, BatchNorm parameters and running statistics stay dense.

use crate::model::params::param_infos;
use burn::module::Module;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SparseLayer {
    pub path: String,
    pub dims: Vec<usize>,
}

impl SparseLayer {
    pub fn numel(&self) -> usize {
        self.dims.iter().product()
    }

    /// ERK's raw score: (sum of dimensions) / (product of dimensions). For a conv weight
    /// `[out, in, kh, kw]` that is (n_out + n_in + kh + kw) / (n_out n_in kh kw); for a
    /// linear weight, the Erdős–Rényi (n_out + n_in) / (n_out n_in).
    pub fn erk_score(&self) -> f64 {
        self.dims.iter().sum::<usize>() as f64 / self.numel() as f64
    }
}

pub fn sparse_layers<M: Module>(model: &M) -> Vec<SparseLayer> {
    param_infos(model)
        .into_iter()
        // DyReLU's coefficient networks stay dense (EAST reports them separately).
        .filter(|p| p.dims.len() >= 2 && p.path.ends_with("weight"))
        .filter(|p| !crate::model::dyrelu::is_dyrelu_path(&p.path))
        .map(|p| SparseLayer {
            path: p.path,
            dims: p.dims,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Arch, ModelConfig};
    use crate::sparsity::distribution::{Distribution, SparsityConfig, allocate, sparsity_bound};
    use burn::tensor::Device;

    #[test]
    fn the_layout_counts_every_prunable_layer_and_bounds_the_sparsity() {
        for (arch, width) in [
            (Arch::Resnet20, 0.25),
            (Arch::Resnet14, 0.5),
            (Arch::Resnet18, 0.125),
            (Arch::Resnet50, 0.0625),
        ] {
            let cfg = ModelConfig {
                arch,
                width,
                ..Default::default()
            };
            let built: Vec<usize> = sparse_layers(&cfg.init(10, &Device::flex()))
                .iter()
                .map(SparseLayer::numel)
                .collect();
            let counted: Vec<usize> = cfg
                .layer_weight_counts(10)
                .iter()
                .map(|&n| n as usize)
                .collect();
            assert_eq!(counted, built, "{arch:?} x{width}");
        }
        // The page's default model: its bound is what the engine's error quotes, and
        // allocating at it works while one weight fewer does not.
        let cfg = ModelConfig {
            arch: Arch::Resnet20,
            width: 0.25,
            ..Default::default()
        };
        let layers = sparse_layers(&cfg.init(10, &Device::flex()));
        let numels: Vec<usize> = layers.iter().map(SparseLayer::numel).collect();
        let bound = sparsity_bound(&numels, 0, false);
        assert!((bound - 0.998716).abs() < 1e-6, "{bound}");
        let at = |sparsity| SparsityConfig {
            sparsity,
            distribution: Distribution::Erk,
            ..Default::default()
        };
        let total: usize = numels.iter().sum();
        assert!(allocate(&layers, &at(bound)).is_ok());
        assert!(allocate(&layers, &at(bound + 1.0 / total as f64)).is_err());

        // With weight sharing (EAST), the budget is counted on the unshared network and
        // shared layers need no weight of their own: the bound moves up, exactly.
        let shared = ModelConfig {
            shared_weights: true,
            own_blocks: 2,
            ..cfg
        };
        let model = shared.init(10, &Device::flex());
        let numels: Vec<usize> = shared
            .layer_weight_counts(10)
            .iter()
            .map(|&n| n as usize)
            .collect();
        let bound_shared = sparsity_bound(&numels, shared.shared_layer_count(), false);
        assert!(bound_shared > bound);
        let total: usize = numels.iter().sum();
        let budget = |sparsity| {
            crate::sparsity::Budget::new(sparse_layers(&model), at(sparsity), model.reuse_counts())
                .target_counts()
        };
        assert!(budget(bound_shared).is_ok());
        assert!(budget(bound_shared + 1.0 / total as f64).is_err());
    }
}
