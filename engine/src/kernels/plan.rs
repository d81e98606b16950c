//! The sparse kernels as a model's forward pass meets them: per chosen layer, the
//! compressed index built from that layer's mask. The forward asks the plan for each
//! layer by id (`LayerKernels`); layers the plan does not hold run dense.

use super::sparse_conv::{WeightGrad, sparse_conv2d_with, sparse_linear_with};
use super::sparse_index::{DeviceSparseIndex, SparseIndex, WeightLayout};
use crate::model::{LayerId, LayerKernels};
use crate::sparsity::{LayerMask, Masks};
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor};

/// Which layers run sparse, indexed by `LayerId` (the masks' order).
#[derive(Clone, Debug, Default)]
pub struct SparsePlan {
    layers: Vec<Option<DeviceSparseIndex>>,
    paths: Vec<String>,
}

impl SparsePlan {
    /// A plan running the layers named in `sparse_paths` sparse, from `masks`.
    pub fn new<'a>(
        masks: &Masks,
        sparse_paths: impl IntoIterator<Item = &'a str>,
        device: &Device,
    ) -> Self {
        let wanted: std::collections::BTreeSet<&str> = sparse_paths.into_iter().collect();
        let mut paths = Vec::new();
        let layers = masks
            .layers
            .iter()
            .map(|mask| {
                let layout = layout_of(mask).filter(|_| wanted.contains(mask.path.as_str()))?;
                paths.push(mask.path.clone());
                Some(SparseIndex::new(layout, &mask.active).to_device(device))
            })
            .collect();
        Self { layers, paths }
    }

    /// The paths of the layers that run sparse, in layer order.
    pub fn sparse_layers(&self) -> impl Iterator<Item = &str> {
        self.paths.iter().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    fn index(&self, id: LayerId) -> Option<&DeviceSparseIndex> {
        self.layers.get(id.0).and_then(Option::as_ref)
    }
}

impl SparsePlan {
    /// The same plan computing dense weight gradients: for a step whose method reads the
    /// gradient at pruned positions too (RigL's grow, AC/DC's decompression).
    pub fn with_dense_weight_grads(&self) -> PlanWith<'_> {
        PlanWith {
            plan: self,
            weight_grad: WeightGrad::Dense,
        }
    }

    fn conv_with(&self, id: LayerId, conv: &Conv2d, x: Tensor<4>, wg: WeightGrad) -> Tensor<4> {
        let Some(index) = self.index(id) else {
            return conv.forward(x);
        };
        let [kh, kw] = conv.kernel_size;
        // Every conv in our models pads by half its kernel (`model::block::conv`).
        let padding = [kh / 2, kw / 2];
        sparse_conv2d_with(x, conv.weight.val(), index, conv.stride, padding, wg)
    }

    fn linear_with(&self, id: LayerId, linear: &Linear, x: Tensor<2>, wg: WeightGrad) -> Tensor<2> {
        let Some(index) = self.index(id) else {
            return linear.forward(x);
        };
        let bias = linear.bias.as_ref().map(|b| b.val());
        sparse_linear_with(x, linear.weight.val(), bias, index, wg)
    }
}

/// The sparse kernels when this plan holds the layer, else its dense forward.
impl LayerKernels for SparsePlan {
    fn conv(&self, id: LayerId, conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
        self.conv_with(id, conv, x, WeightGrad::Active)
    }

    fn linear(&self, id: LayerId, linear: &Linear, x: Tensor<2>) -> Tensor<2> {
        self.linear_with(id, linear, x, WeightGrad::Active)
    }
}

/// A plan with another weight gradient (`SparsePlan::with_dense_weight_grads`).
#[derive(Clone, Copy)]
pub struct PlanWith<'a> {
    plan: &'a SparsePlan,
    weight_grad: WeightGrad,
}

impl LayerKernels for PlanWith<'_> {
    fn conv(&self, id: LayerId, conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
        self.plan.conv_with(id, conv, x, self.weight_grad)
    }

    fn linear(&self, id: LayerId, linear: &Linear, x: Tensor<2>) -> Tensor<2> {
        self.plan.linear_with(id, linear, x, self.weight_grad)
    }
}

/// The weight layout of a conv (`[out, in, kh, kw]`) or linear (`[in, out]`) mask.
pub fn layout_of(mask: &LayerMask) -> Option<WeightLayout> {
    match *mask.dims.as_slice() {
        [o, i, kh, kw] => Some(WeightLayout::conv([o, i, kh, kw])),
        [i, o] => Some(WeightLayout::linear([i, o])),
        _ => None,
    }
}
