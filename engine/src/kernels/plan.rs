//! The sparse kernels as a model's forward pass meets them: per chosen layer, the
//! compressed index built from that layer's mask. The forward asks the plan for each
//! layer by id (`LayerKernels`); layers the plan does not hold run dense.

use super::conv_norm::sparse_conv2d_inference_norm;
use super::narrowed::{NarrowedPair, run_unnarrowed};
use super::sparse_conv::{WeightGrad, sparse_conv2d_with, sparse_linear_with};
use super::sparse_index::{DeviceSparseIndex, SparseIndex, WeightLayout};
use crate::model::{ConvNorm, LayerId, LayerKernels, NormTail};
use crate::sparsity::{LayerMask, Masks};
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor};

/// Which layers run sparse, indexed by `LayerId` (the masks' order).
#[derive(Clone, Debug, Default)]
pub struct SparsePlan {
    layers: Vec<Option<DeviceSparseIndex>>,
    paths: Vec<String>,
    /// By the first convolution's id: the pair it forms with the next layer, run in
    /// inference with the activation between them narrowed, where that pays. (Pairs not
    /// built here still run image by image where they can: `run_unnarrowed`.)
    pairs: Vec<Option<NarrowedPair>>,
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
        let layers: Vec<Option<DeviceSparseIndex>> = masks
            .layers
            .iter()
            .map(|mask| {
                let layout = layout_of(mask).filter(|_| wanted.contains(mask.path.as_str()))?;
                paths.push(mask.path.clone());
                Some(SparseIndex::new(layout, &mask.active).to_device(device))
            })
            .collect();
        // Only Flex runs a pair; elsewhere none is built.
        let pairs = (0..layers.len())
            .map(|i| {
                let chained = super::runs_flex(device)
                    && layers[i].is_some()
                    && layers.get(i + 1).is_some_and(Option::is_some)
                    && basic_block_pair(masks, i);
                chained
                    .then(|| {
                        NarrowedPair::new(
                            &masks.layers[i],
                            &masks.layers[i + 1],
                            LayerId(i + 1),
                            device,
                        )
                    })
                    .flatten()
            })
            .collect();
        Self {
            layers,
            paths,
            pairs,
        }
    }

    /// The block pairs this plan runs narrowed in inference.
    #[cfg(test)]
    fn narrowed_pairs(&self) -> impl Iterator<Item = &NarrowedPair> {
        self.pairs.iter().flatten()
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
        let padding = same_padding(conv);
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

    fn conv_inference_norm(
        &self,
        id: LayerId,
        conv: &Conv2d,
        x: &Tensor<4>,
        tail: &NormTail,
    ) -> Option<Tensor<4>> {
        let index = self.index(id)?;
        let padding = same_padding(conv);
        sparse_conv2d_inference_norm(x, conv.weight.val(), index, conv.stride, padding, tail)
    }

    fn conv_pair_inference_norm(
        &self,
        first: &ConvNorm,
        second: &ConvNorm,
        x: &Tensor<4>,
    ) -> Option<Tensor<4>> {
        if let Some(pair) = self.pairs.get(first.id.0).and_then(Option::as_ref) {
            return (pair.second == second.id)
                .then(|| pair.run(first, second, x))
                .flatten();
        }
        let (first_index, second_index) = (self.index(first.id)?, self.index(second.id)?);
        run_unnarrowed(first, first_index, second, second_index, x)
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

/// A convolution's padding: every conv in our models pads by half its kernel
/// (`model::block::conv`).
pub(crate) fn same_padding(conv: &Conv2d) -> [usize; 2] {
    [conv.kernel_size[0] / 2, conv.kernel_size[1] / 2]
}

/// Whether layers `i` and `i + 1` are a BasicBlock's two convolutions (`<block>.conv1`
/// then `<block>.conv2`, and no `<block>.conv3`): the only pair a block asks the plan
/// for (`Block::forward`), so no other pair is built.
fn basic_block_pair(masks: &Masks, i: usize) -> bool {
    let (first, second) = (&masks.layers[i].path, &masks.layers[i + 1].path);
    let Some(block) = first.strip_suffix("conv1.weight") else {
        return false;
    };
    let third = format!("{block}conv3.weight");
    second.strip_suffix("conv2.weight") == Some(block)
        && !masks.layers.iter().any(|m| m.path == third)
}

/// The weight layout of a conv (`[out, in, kh, kw]`) or linear (`[in, out]`) mask.
pub fn layout_of(mask: &LayerMask) -> Option<WeightLayout> {
    match *mask.dims.as_slice() {
        [o, i, kh, kw] => Some(WeightLayout::conv([o, i, kh, kw])),
        [i, o] => Some(WeightLayout::linear([i, o])),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::lab::uniform_masks;
    use crate::model::{Activation, Arch, ForwardCtx, ModelConfig, ResNet};
    use burn::module::{Module, Param};
    use burn::tensor::{Distribution, TensorData};
    use std::cell::Cell;

    /// The plan, counting convolutions run alone, those run with their BatchNorm inside
    /// and the pairs run as pairs; with `fuse` false, none runs fused (the two run apart)
    /// and no pair runs.
    struct Counting<'a> {
        plan: &'a SparsePlan,
        fuse: bool,
        convs: Cell<usize>,
        fused: Cell<usize>,
        pairs: Cell<usize>,
    }

    impl<'a> Counting<'a> {
        fn new(plan: &'a SparsePlan, fuse: bool) -> Self {
            let (convs, fused, pairs) = (Cell::new(0), Cell::new(0), Cell::new(0));
            Self {
                plan,
                fuse,
                convs,
                fused,
                pairs,
            }
        }
    }

    impl LayerKernels for Counting<'_> {
        fn conv(&self, id: LayerId, conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
            self.convs.set(self.convs.get() + 1);
            self.plan.conv(id, conv, x)
        }

        fn linear(&self, id: LayerId, linear: &Linear, x: Tensor<2>) -> Tensor<2> {
            self.plan.linear(id, linear, x)
        }

        fn conv_inference_norm(
            &self,
            id: LayerId,
            conv: &Conv2d,
            x: &Tensor<4>,
            tail: &NormTail,
        ) -> Option<Tensor<4>> {
            let y = self
                .fuse
                .then(|| self.plan.conv_inference_norm(id, conv, x, tail))
                .flatten();
            self.fused.set(self.fused.get() + y.is_some() as usize);
            y
        }

        fn conv_pair_inference_norm(
            &self,
            first: &ConvNorm,
            second: &ConvNorm,
            x: &Tensor<4>,
        ) -> Option<Tensor<4>> {
            let y = self
                .fuse
                .then(|| self.plan.conv_pair_inference_norm(first, second, x))
                .flatten();
            self.pairs.set(self.pairs.get() + y.is_some() as usize);
            y
        }
    }

    /// Every shared block's gains set away from 1.
    fn with_gains(mut model: ResNet, device: &Device) -> ResNet {
        let gain = |g: f32| Some(Param::from_tensor(Tensor::from_data([g], device)));
        for block in model.stages.iter_mut().flat_map(|s| s.blocks.iter_mut()) {
            if block.is_shared() {
                block.gain1 = gain(0.8);
                block.gain2 = gain(1.25);
                block.gain3 = block.gain3.as_ref().and(gain(0.9));
            }
        }
        model
    }

    #[test]
    fn a_resnet_infers_with_the_same_bits_with_its_batch_norms_inside_the_sparse_convolutions() {
        let device = Device::flex();
        // The last four at a density where the blocks' second convolutions read few of
        // their input channels: the plain-ReLU BasicBlocks' pairs run narrowed, DyReLU's
        // and the bottlenecks' convolutions one by one.
        let configs = [
            (Arch::Resnet8, 0.5, Activation::Relu, false, 0.3),
            (Arch::Resnet8, 0.5, Activation::Dyrelu, false, 0.3),
            (Arch::Resnet20, 0.5, Activation::Relu, true, 0.3),
            (Arch::Resnet50, 0.125, Activation::Relu, false, 0.3),
            (Arch::Resnet20, 1.0, Activation::Relu, false, 0.005),
            (Arch::Resnet20, 1.0, Activation::Relu, true, 0.005),
            (Arch::Resnet8, 0.5, Activation::Dyrelu, false, 0.005),
            (Arch::Resnet50, 0.125, Activation::Relu, false, 0.005),
        ];
        for (arch, width, activation, shared_weights, density) in configs {
            let what =
                format!("{arch:?}, {activation:?}, shared {shared_weights}, density {density}");
            let config = ModelConfig {
                arch,
                width,
                activation,
                shared_weights,
                ..Default::default()
            };
            // A few training forwards move every running statistic away from 0 and 1.
            let train = device.clone().autodiff();
            let model = with_gains(config.init(10, &train), &train);
            for _ in 0..2 {
                let x = Tensor::<4>::random([4, 3, 32, 32], Distribution::Default, &train);
                let _ = model.forward(x, &ForwardCtx::DENSE);
            }
            let model = model.valid();
            let masks = uniform_masks(&model, density, 5);
            // At the low density the classifier stays dense: its three or so active weights
            // would read features that the random initialisation often leaves at zero, and
            // logits that are all zero would make the comparison an empty one.
            let paths: Vec<&str> = masks
                .layers
                .iter()
                .filter(|m| density > 0.01 || m.dims.len() == 4)
                .map(|m| m.path.as_str())
                .collect();
            let plan = SparsePlan::new(&masks, paths.clone(), &device);
            let norm = crate::kernels::batch_norm::for_device(&device);
            let x = Tensor::<4>::random([3, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
            let logits_of = |model: &ResNet, kernels: &dyn LayerKernels| -> Vec<u32> {
                let ctx = ForwardCtx::new(Some(0.5), Some(kernels)).with_batch_norm(norm);
                let data: TensorData = model.forward(x.clone(), &ctx).into_data();
                let values = data.convert::<f32>().try_to_vec::<f32>().unwrap();
                assert!(values.iter().any(|v| v.abs() > 1e-3), "{what}: {values:?}");
                values.iter().map(|v| v.to_bits()).collect()
            };
            let logits = |kernels: &dyn LayerKernels| logits_of(&model, kernels);
            let (apart, fused) = (Counting::new(&plan, false), Counting::new(&plan, true));
            let expected = logits(&apart);
            assert_eq!(expected, logits(&fused), "{what}");
            assert!(apart.convs.get() > 0, "{what}");
            assert_eq!(apart.fused.get(), 0, "{what}");
            assert_eq!(fused.convs.get(), 0, "{what}: a convolution ran apart");
            assert_eq!(
                fused.fused.get() + 2 * fused.pairs.get(),
                apart.convs.get(),
                "{what}: every convolution fused"
            );
            // In plain-ReLU BasicBlocks every pair runs as a pair: narrowed where the plan
            // builds it so (once per forward pass, or once per block that shares it; at
            // 0.5% density some leave out enough channels), image by image otherwise (every
            // first convolution here is stride 1, or stride 2 on an even input). Blocks
            // with DyReLU or a bottleneck never ask for a pair.
            let narrowed = plan.narrowed_pairs().count();
            let unnarrowed = (0..masks.layers.len().saturating_sub(1))
                .filter(|&i| {
                    basic_block_pair(&masks, i)
                        && plan.pairs[i].is_none()
                        && plan.layers[i].is_some()
                        && plan.layers[i + 1].is_some()
                })
                .count();
            assert_eq!(apart.pairs.get(), 0, "{what}");
            let plain_basic = activation == Activation::Relu && arch != Arch::Resnet50;
            if !plain_basic {
                assert_eq!(fused.pairs.get(), 0, "{what}");
            } else if shared_weights {
                assert!(fused.pairs.get() >= narrowed + unnarrowed, "{what}");
            } else {
                assert_eq!(fused.pairs.get(), narrowed + unnarrowed, "{what}");
                if density > 0.1 {
                    assert!(unnarrowed > 0, "{what}: no pair ran image by image");
                }
            }
            if plain_basic {
                assert_eq!(narrowed > 0, density < 0.1, "{what}: {narrowed} pairs");
            }
            if arch == Arch::Resnet50 {
                assert_eq!(narrowed, 0, "{what}: a bottleneck's convolutions paired");
            }
            // The trainer evaluates with its plan built on the training device: the same
            // bits.
            let on_train = SparsePlan::new(&masks, paths, &train);
            let fused_on_train = Counting::new(&on_train, true);
            assert_eq!(
                expected,
                logits_of(&model, &fused_on_train),
                "{what}, the plan on the training device"
            );
            assert_eq!(fused_on_train.pairs.get(), fused.pairs.get(), "{what}");
        }
    }
}
