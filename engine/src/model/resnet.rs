//! CIFAR ResNets: a 3x3 stem with no max-pool, BasicBlock stages for the ResNet-20 family
//! (16/32/64 channels, depth 6n+2) and ResNet-18/34 (64..512), Bottleneck stages for
//! ResNet-50, a width multiplier, 1x1 projection shortcuts where the shape changes, and a
//! bias-free classifier. Conv layers carry no bias (BatchNorm follows each one).

use super::block::{Block, BlockLayerIds, BlockShape, activated, conv};
use super::config::{Activation, ModelConfig};
use super::dyrelu::DyRelu;
use super::forward_ctx::{ForwardCtx, LayerId, NormTail};
use burn::module::Module;
use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A prunable layer as the model places it: its weight's path, how many output positions
/// each weight is used at per 32x32 image, and its stride. Indexed by `LayerId`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerSite {
    pub path: String,
    pub positions: usize,
    pub stride: usize,
}

impl ModelConfig {
    pub fn init(&self, num_classes: usize, device: &Device) -> ResNet {
        let (widths, depths, bottleneck) = self.arch.layout();
        let expansion = if bottleneck { 4 } else { 1 };
        let dyrelu = self.activation == Activation::Dyrelu;
        let stem_out = self.scaled(widths[0]);
        let mut in_ch = stem_out;
        let mut stages = Vec::new();
        for (s, (&w, &n)) in widths.iter().zip(&depths).enumerate() {
            let mid = self.scaled(w);
            let mut blocks = Vec::new();
            for b in 0..n {
                let stride = if s > 0 && b == 0 { 2 } else { 1 };
                let shared = self.shared_weights && b >= self.own_blocks;
                blocks.push(Block::new(
                    BlockShape {
                        in_ch,
                        mid,
                        expansion,
                        stride,
                        bottleneck,
                    },
                    shared,
                    dyrelu,
                    device,
                ));
                in_ch = mid * expansion;
            }
            stages.push(Stage { blocks });
        }
        ResNet {
            stem: conv(3, stem_out, 3, 1, device),
            stem_bn: BatchNormConfig::new(stem_out).init(device),
            dyrelu_stem: dyrelu.then(|| DyRelu::new(stem_out, device)),
            stages,
            classifier: LinearConfig::new(in_ch, num_classes)
                .with_bias(false)
                .init(device),
            layers: Arc::new(Vec::new()),
        }
        .with_layer_table()
    }
}

#[derive(Module, Debug)]
pub struct Stage {
    pub blocks: Vec<Block>,
}

impl Stage {
    /// The index of the block whose convs block `b` runs: the last one up to `b` with
    /// its own weights (`b` itself for an owning block).
    fn owner_index(&self, b: usize) -> usize {
        self.blocks[..=b]
            .iter()
            .rposition(|blk| !blk.is_shared())
            .expect("block 0 always owns its weights")
    }
}

#[derive(Module, Debug)]
pub struct ResNet {
    pub stem: Conv2d,
    pub stem_bn: BatchNorm,
    pub dyrelu_stem: Option<DyRelu>,
    pub stages: Vec<Stage>,
    pub classifier: Linear,
    /// The prunable layers in mask order (see `LayerSite`), built once with the model.
    #[module(skip)]
    pub layers: Arc<Vec<LayerSite>>,
}

impl ResNet {
    /// Every BatchNorm of the network, the stem's first.
    pub fn batch_norms_mut(&mut self) -> impl Iterator<Item = &mut BatchNorm> {
        std::iter::once(&mut self.stem_bn).chain(
            self.stages
                .iter_mut()
                .flat_map(|s| s.blocks.iter_mut().flat_map(Block::batch_norms_mut)),
        )
    }

    /// Numbers the prunable layers in parameter order (the masks' order) and tells every
    /// block where its convolutions sit.
    fn with_layer_table(mut self) -> Self {
        let mut table = Vec::new();
        let mut push = |path: String, side: usize, stride: usize| {
            table.push(LayerSite {
                path,
                positions: side * side,
                stride,
            });
            LayerId(table.len() - 1)
        };
        push("stem.weight".into(), 32, self.stem.stride[0]);
        for (s, stage) in self.stages.iter_mut().enumerate() {
            let side = 32usize >> s.min(5);
            let mut owner = BlockLayerIds::default();
            for (b, block) in stage.blocks.iter_mut().enumerate() {
                let mut ids = BlockLayerIds::default();
                if block.is_shared() {
                    ids.convs = owner.convs;
                } else {
                    let convs = [&block.conv1, &block.conv2, &block.conv3];
                    for (i, c) in convs.into_iter().enumerate() {
                        if let Some(c) = c {
                            // A bottleneck's first 1x1 conv runs before its stride-2 3x3:
                            // at the previous stage's resolution.
                            let entry = i == 0 && s > 0 && b == 0 && block.conv3.is_some();
                            let at = if entry { side * 2 } else { side };
                            let path = format!("stages.{s}.blocks.{b}.conv{}.weight", i + 1);
                            ids.convs[i] = Some(push(path, at, c.stride[0]));
                        }
                    }
                }
                if let Some(sc) = &block.shortcut {
                    let path = format!("stages.{s}.blocks.{b}.shortcut.conv.weight");
                    ids.shortcut = Some(push(path, side, sc.conv.stride[0]));
                }
                if !block.is_shared() {
                    owner = ids;
                }
                block.ids = ids;
            }
        }
        push("classifier.weight".into(), 1, 1);
        self.layers = Arc::new(table);
        self
    }

    /// Logits `[batch, classes]` for images `[batch, 3, 32, 32]`.
    pub fn forward(&self, images: Tensor<4>, ctx: &ForwardCtx) -> Tensor<2> {
        let mut x = activated(ctx, &self.dyrelu_stem, |after| {
            let tail = NormTail {
                gain: None,
                bn: &self.stem_bn,
                after,
            };
            ctx.conv_norm(LayerId(0), &self.stem, images, tail)
        });
        for stage in &self.stages {
            for (b, block) in stage.blocks.iter().enumerate() {
                x = block.forward(x, &stage.blocks[stage.owner_index(b)], ctx);
            }
        }
        let [b, c, h, w] = x.dims();
        let pooled = x.reshape([b, c, h * w]).mean_dim(2).reshape([b, c]);
        ctx.linear(LayerId(self.layers.len() - 1), &self.classifier, pooled)
    }

    pub fn has_dyrelu(&self) -> bool {
        self.dyrelu_stem.is_some()
    }

    /// How many extra times each conv weight runs (shared blocks), by parameter path.
    /// Owning weights that nobody reuses are absent.
    pub fn reuse_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for block in self.stages.iter().flat_map(|s| &s.blocks) {
            if block.is_shared() {
                for id in block.ids.convs.into_iter().flatten() {
                    *counts.entry(self.layers[id.0].path.clone()).or_insert(0) += 1;
                }
            }
        }
        counts
    }

    /// Output positions (height x width) of the layer at `path`, for 32x32 inputs: how
    /// many times each of its weights is used per image (0 for no such layer).
    pub fn output_positions(&self, path: &str) -> usize {
        self.layers
            .iter()
            .find(|l| l.path == path)
            .map_or(0, |l| l.positions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Arch;
    use crate::model::params::param_infos;

    fn count_prunable(arch: Arch) -> usize {
        let m = ModelConfig {
            arch,
            ..Default::default()
        }
        .init(10, &Device::flex());
        param_infos(&m)
            .iter()
            .filter(|p| p.dims.len() >= 2)
            .map(|p| p.numel())
            .sum()
    }

    #[test]
    fn parameter_counts_match_the_known_architectures() {
        // ResNet-20 with 1x1 projection shortcuts: 0.27M conv/linear weights.
        let r20 = count_prunable(Arch::Resnet20);
        assert!((268_000..275_000).contains(&r20), "resnet20: {r20}");
        // CIFAR ResNet-18: about 11.2M weights.
        let r18 = count_prunable(Arch::Resnet18);
        assert!((11_000_000..11_300_000).contains(&r18), "resnet18: {r18}");
    }

    #[test]
    fn forward_shape_and_bias_free_classifier() {
        let device = Device::flex();
        let m = ModelConfig {
            arch: Arch::Resnet8,
            width: 0.5,
            ..Default::default()
        }
        .init(7, &device);
        assert!(m.classifier.bias.is_none());
        let y = m.forward(Tensor::zeros([2, 3, 32, 32], &device), &ForwardCtx::DENSE);
        assert_eq!(y.dims(), [2, 7]);
    }

    fn shared_resnet20(device: &Device) -> ResNet {
        ModelConfig {
            shared_weights: true,
            ..Default::default()
        }
        .init(10, device)
    }

    #[test]
    fn sharing_counts_unique_and_reused_weights() {
        let device = Device::flex();
        let unshared = count_prunable(Arch::Resnet20);
        let shared = shared_resnet20(&device);
        let layers = crate::sparsity::sparse_layers(&shared);
        let unique: usize = layers.iter().map(|l| l.numel()).sum();
        let reuse = shared.reuse_counts();
        // ResNet-20 has 3 blocks per stage: block 2 of each stage reuses block 1's convs.
        assert_eq!(reuse.len(), 6);
        assert!(reuse.values().all(|&n| n == 1));
        let reused: usize = layers
            .iter()
            .map(|l| l.numel() * reuse.get(&l.path).copied().unwrap_or(0))
            .sum();
        assert!(unique < unshared);
        assert_eq!(unique + reused, unshared);
        // Gains and DyReLU are not prunable.
        assert!(layers.iter().all(|l| !l.path.contains("gain")));
    }

    #[test]
    fn shared_weight_gradients_accumulate_from_every_use() {
        let device = Device::flex().autodiff();
        let shared = shared_resnet20(&device);
        // The same network without sharing, whose block 2 holds copies of block 1's convs.
        let mut values = std::collections::BTreeMap::new();
        crate::model::for_each_param(&shared, |path, _, t| {
            values.insert(path.to_string(), t);
        });
        let unshared =
            crate::model::map_params(ModelConfig::default().init(10, &device), |path, w| {
                let source = path.replace(".blocks.2.conv", ".blocks.1.conv");
                values.get(&source).cloned().unwrap_or(w)
            });
        let images = Tensor::<4>::random(
            [4, 3, 32, 32],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let grads_of = |m: &ResNet| {
            let loss = m
                .forward(images.clone(), &ForwardCtx::DENSE)
                .powi_scalar(2)
                .sum();
            let grads = burn::optim::GradientsParams::from_grads(loss.backward(), m);
            crate::model::grads_by_path(m, &grads)
                .into_iter()
                .map(|(p, g)| (p, g.into_data().try_to_vec::<f32>().unwrap()))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let (gs, gu) = (grads_of(&shared), grads_of(&unshared));
        for s in 0..3 {
            for c in ["conv1", "conv2"] {
                let owner = &gs[&format!("stages.{s}.blocks.1.{c}.weight")];
                let first = &gu[&format!("stages.{s}.blocks.1.{c}.weight")];
                let second = &gu[&format!("stages.{s}.blocks.2.{c}.weight")];
                let scale = first.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
                for i in 0..owner.len() {
                    let sum = first[i] + second[i];
                    assert!(
                        (owner[i] - sum).abs() <= 1e-3 * scale,
                        "stage {s} {c}[{i}]: shared {} vs {} + {}",
                        owner[i],
                        first[i],
                        second[i]
                    );
                }
                // The reuse really contributes (the test would pass trivially otherwise).
                assert!(second.iter().any(|v| v.abs() > 1e-3 * scale));
            }
        }
        assert!(gs.contains_key("stages.0.blocks.2.gain1"));
    }

    #[test]
    fn layer_table_survives_inference_mode_and_dyrelu_params_are_not_prunable() {
        let device = Device::flex();
        let m = ModelConfig {
            arch: Arch::Resnet8,
            activation: Activation::Dyrelu,
            ..Default::default()
        }
        .init(10, &device);
        assert_eq!(m.clone().valid().layers, m.layers);
        assert!(m.has_dyrelu());
        let layers = crate::sparsity::sparse_layers(&m);
        assert!(
            layers.iter().all(|l| !l.path.contains("dyrelu")),
            "{layers:?}"
        );
        assert_eq!(layers.len(), count_layers_resnet8());
    }

    #[test]
    fn the_layer_table_follows_the_masks_order_in_every_architecture() {
        let device = Device::flex();
        for arch in Arch::ALL {
            for shared_weights in [false, true] {
                let m = ModelConfig {
                    arch,
                    width: 0.25,
                    shared_weights,
                    ..Default::default()
                }
                .init(10, &device);
                let table: Vec<&str> = m.layers.iter().map(|l| l.path.as_str()).collect();
                let masks: Vec<String> = crate::sparsity::sparse_layers(&m)
                    .into_iter()
                    .map(|l| l.path)
                    .collect();
                assert_eq!(table, masks, "{arch:?} shared={shared_weights}");
                // A shared block's convs are its owner's layers.
                for block in m.stages.iter().flat_map(|s| &s.blocks) {
                    assert!(block.ids.convs[0].is_some() && block.ids.convs[1].is_some());
                }
            }
        }
    }

    fn count_layers_resnet8() -> usize {
        // stem, 3 blocks x 2 convs, 2 projection shortcuts, classifier
        1 + 6 + 2 + 1
    }

    #[test]
    fn output_positions_follow_the_stages() {
        let m = ModelConfig::default().init(10, &Device::flex());
        assert_eq!(m.output_positions("stem.weight"), 1024);
        assert_eq!(m.output_positions("stages.1.blocks.0.conv1.weight"), 256);
        assert_eq!(m.output_positions("stages.2.blocks.2.conv2.weight"), 64);
        assert_eq!(m.output_positions("classifier.weight"), 1);
        let r50 = ModelConfig {
            arch: Arch::Resnet50,
            ..Default::default()
        }
        .init(10, &Device::flex());
        assert_eq!(r50.output_positions("stages.1.blocks.0.conv1.weight"), 1024);
        assert_eq!(r50.output_positions("stages.1.blocks.0.conv2.weight"), 256);
        assert_eq!(r50.output_positions("stages.1.blocks.1.conv1.weight"), 256);
    }
}
