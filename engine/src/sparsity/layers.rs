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
