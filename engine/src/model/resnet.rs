//! CIFAR ResNets: a 3x3 stem with no max-pool, BasicBlock stages for the ResNet-20 family
//! (16/32/64 channels, depth 6n+2) and ResNet-18/34 (64..512), Bottleneck stages for
//! ResNet-50, a width multiplier, 1x1 projection shortcuts where the shape changes, and a
//! bias-free classifier. Conv layers carry no bias (BatchNorm follows each one).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Resnet8,
    Resnet14,
    Resnet20,
    Resnet32,
    Resnet44,
    Resnet56,
    Resnet110,
    Resnet18,
    Resnet34,
    Resnet50,
}

impl Arch {
    pub const ALL: [Arch; 10] = [
        Arch::Resnet8,
        Arch::Resnet14,
        Arch::Resnet20,
        Arch::Resnet32,
        Arch::Resnet44,
        Arch::Resnet56,
        Arch::Resnet110,
        Arch::Resnet18,
        Arch::Resnet34,
        Arch::Resnet50,
    ];

    /// (stage widths, blocks per stage, bottleneck?)
    fn layout(self) -> (Vec<usize>, Vec<usize>, bool) {
        let small = |n: usize| (vec![16, 32, 64], vec![n; 3], false);
        match self {
            Arch::Resnet8 => small(1),
            Arch::Resnet14 => small(2),
            Arch::Resnet20 => small(3),
            Arch::Resnet32 => small(5),
            Arch::Resnet44 => small(7),
            Arch::Resnet56 => small(9),
            Arch::Resnet110 => small(18),
            Arch::Resnet18 => (vec![64, 128, 256, 512], vec![2, 2, 2, 2], false),
            Arch::Resnet34 => (vec![64, 128, 256, 512], vec![3, 4, 6, 3], false),
            Arch::Resnet50 => (vec![64, 128, 256, 512], vec![3, 4, 6, 3], true),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::Resnet8 => "resnet8",
            Arch::Resnet14 => "resnet14",
            Arch::Resnet20 => "resnet20",
            Arch::Resnet32 => "resnet32",
            Arch::Resnet44 => "resnet44",
            Arch::Resnet56 => "resnet56",
            Arch::Resnet110 => "resnet110",
            Arch::Resnet18 => "resnet18",
            Arch::Resnet34 => "resnet34",
            Arch::Resnet50 => "resnet50",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub arch: Arch,
    /// Multiplies every stage width (and the stem); 0.25 makes a tiny browser model.
    pub width: f64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            arch: Arch::Resnet20,
            width: 1.0,
        }
    }
}

impl ModelConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.width.is_finite() && self.width > 0.0 && self.width <= 16.0) {
            return Err(format!("model.width = {} must be in (0, 16]", self.width));
        }
        Ok(())
    }

    fn scaled(&self, channels: usize) -> usize {
        ((channels as f64 * self.width).round() as usize).max(1)
    }

    pub fn init(&self, num_classes: usize, device: &Device) -> ResNet {
        let (widths, depths, bottleneck) = self.arch.layout();
        let expansion = if bottleneck { 4 } else { 1 };
        let stem_out = self.scaled(widths[0]);
        let mut in_ch = stem_out;
        let mut stages = Vec::new();
        for (s, (&w, &n)) in widths.iter().zip(&depths).enumerate() {
            let mid = self.scaled(w);
            let mut blocks = Vec::new();
            for b in 0..n {
                let stride = if s > 0 && b == 0 { 2 } else { 1 };
                blocks.push(Block::new(
                    in_ch, mid, expansion, stride, bottleneck, device,
                ));
                in_ch = mid * expansion;
            }
            stages.push(Stage { blocks });
        }
        ResNet {
            stem: conv(3, stem_out, 3, 1, device),
            stem_bn: BatchNormConfig::new(stem_out).init(device),
            stages,
            classifier: LinearConfig::new(in_ch, num_classes)
                .with_bias(false)
                .init(device),
        }
    }
}

fn conv(in_ch: usize, out_ch: usize, kernel: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([in_ch, out_ch], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            kernel / 2,
            kernel / 2,
            kernel / 2,
            kernel / 2,
        ))
        .with_bias(false)
        // He initialisation for ReLU networks (fan-in, normal).
        .with_initializer(Initializer::KaimingNormal {
            gain: std::f64::consts::SQRT_2,
            fan_out_only: false,
        })
        .init(device)
}

/// 1x1 conv + BN on the residual path where the shape changes.
#[derive(Module, Debug)]
pub struct Shortcut {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

/// A residual block. BasicBlock: 3x3 → 3x3. Bottleneck: 1x1 → 3x3 → 1x1 (x4 channels).
#[derive(Module, Debug)]
pub struct Block {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub conv3: Option<Conv2d>,
    pub bn3: Option<BatchNorm>,
    pub shortcut: Option<Shortcut>,
}

impl Block {
    fn new(
        in_ch: usize,
        mid: usize,
        expansion: usize,
        stride: usize,
        bottleneck: bool,
        device: &Device,
    ) -> Self {
        let out_ch = mid * expansion;
        let shortcut = (stride != 1 || in_ch != out_ch).then(|| Shortcut {
            conv: conv(in_ch, out_ch, 1, stride, device),
            bn: BatchNormConfig::new(out_ch).init(device),
        });
        if bottleneck {
            Block {
                conv1: conv(in_ch, mid, 1, 1, device),
                bn1: BatchNormConfig::new(mid).init(device),
                conv2: conv(mid, mid, 3, stride, device),
                bn2: BatchNormConfig::new(mid).init(device),
                conv3: Some(conv(mid, out_ch, 1, 1, device)),
                bn3: Some(BatchNormConfig::new(out_ch).init(device)),
                shortcut,
            }
        } else {
            Block {
                conv1: conv(in_ch, mid, 3, stride, device),
                bn1: BatchNormConfig::new(mid).init(device),
                conv2: conv(mid, mid, 3, 1, device),
                bn2: BatchNormConfig::new(mid).init(device),
                conv3: None,
                bn3: None,
                shortcut,
            }
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = relu(self.bn1.forward(self.conv1.forward(x.clone())));
        let out = self.bn2.forward(self.conv2.forward(out));
        let out = match (&self.conv3, &self.bn3) {
            (Some(c3), Some(b3)) => b3.forward(c3.forward(relu(out))),
            _ => out,
        };
        let identity = match &self.shortcut {
            Some(s) => s.bn.forward(s.conv.forward(x)),
            None => x,
        };
        relu(out + identity)
    }
}

#[derive(Module, Debug)]
pub struct Stage {
    pub blocks: Vec<Block>,
}

#[derive(Module, Debug)]
pub struct ResNet {
    pub stem: Conv2d,
    pub stem_bn: BatchNorm,
    pub stages: Vec<Stage>,
    pub classifier: Linear,
}

impl ResNet {
    /// Logits `[batch, classes]` for images `[batch, 3, 32, 32]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = relu(self.stem_bn.forward(self.stem.forward(images)));
        for stage in &self.stages {
            for block in &stage.blocks {
                x = block.forward(x);
            }
        }
        let [b, c, h, w] = x.dims();
        let pooled = x.reshape([b, c, h * w]).mean_dim(2).reshape([b, c]);
        self.classifier.forward(pooled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::params::param_infos;

    fn count_prunable(arch: Arch) -> usize {
        let m = ModelConfig { arch, width: 1.0 }.init(10, &Device::flex());
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
        }
        .init(7, &device);
        assert!(m.classifier.bias.is_none());
        let y = m.forward(Tensor::zeros([2, 3, 32, 32], &device));
        assert_eq!(y.dims(), [2, 7]);
    }
}
