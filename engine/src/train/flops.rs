//! Training FLOPs as the sparse-training papers count them: 2 per multiply-add of an
//! active weight, at every output position and every use of a shared weight. BatchNorm,
//! DyReLU and the pooling are not counted (they are tiny beside the convolutions).

use crate::model::ResNet;
use crate::sparsity::Budget;

pub struct FlopCounter {
    /// Per layer, how many times each weight is used per image (positions x uses).
    layer_uses: Vec<f64>,
    /// Per layer, its weight count (the dense layer).
    numel: Vec<usize>,
}

impl FlopCounter {
    pub fn new(model: &ResNet, budget: &Budget) -> Self {
        let layer_uses = (0..budget.layers.len())
            .map(|i| (model.layers[i].positions * budget.uses(i)) as f64)
            .collect();
        let numel = budget.layers.iter().map(|l| l.numel()).collect();
        Self { layer_uses, numel }
    }

    /// Forward FLOPs per image with `layer_nnz` active weights per layer.
    pub fn forward(&self, layer_nnz: &[usize]) -> f64 {
        layer_nnz
            .iter()
            .zip(&self.layer_uses)
            .map(|(&n, uses)| 2.0 * n as f64 * uses)
            .sum()
    }

    /// One training step of `batch` images: forward plus a backward of twice its cost
    /// with the step's masks; a step that reads dense gradients (RigL's grow) computes
    /// the dense weight gradient instead.
    pub fn step(&self, layer_nnz: &[usize], batch: usize, dense_gradients: bool) -> f64 {
        let sparse = self.forward(layer_nnz);
        batch as f64
            * if dense_gradients {
                2.0 * sparse + self.forward(&self.numel)
            } else {
                3.0 * sparse
            }
    }
}
