//! CIFAR ResNets: a 3x3 stem with no max-pool, BasicBlock stages for the ResNet-20 family
//! (16/32/64 channels, depth 6n+2) and ResNet-18/34 (64..512), Bottleneck stages for
//! ResNet-50, a width multiplier, 1x1 projection shortcuts where the shape changes, and a
//! bias-free classifier. Conv layers carry no bias (BatchNorm follows each one).

use super::dyrelu::DyRelu;
use crate::kernels::plan::SparsePlan;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Relu,
    /// DyReLU-B, phased into ReLU over training (EAST).
    Dyrelu,
}

/// When DyReLU hands over to ReLU, in epochs. Unset: EAST's defaults, e_s = M/2 and
/// e_e = M − 1 with M the first LR milestone (half of training for schedules without one).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DyReluConfig {
    pub phase_start: Option<f64>,
    pub phase_end: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub arch: Arch,
    /// Multiplies every stage width (and the stem); 0.25 makes a tiny browser model.
    pub width: f64,
    pub activation: Activation,
    pub dyrelu: DyReluConfig,
    /// EAST's weight sharing: in each stage, blocks from `own_blocks` on reuse the conv
    /// weights of block `own_blocks − 1`, each with its own learnable gain.
    pub shared_weights: bool,
    pub own_blocks: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            arch: Arch::Resnet20,
            width: 1.0,
            activation: Activation::Relu,
            dyrelu: DyReluConfig::default(),
            shared_weights: false,
            own_blocks: 2,
        }
    }
}

impl ModelConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.width.is_finite() && self.width > 0.0 && self.width <= 16.0) {
            return Err(format!("model.width = {} must be in (0, 16]", self.width));
        }
        if self.shared_weights && self.own_blocks < 2 {
            // Block 0 may change the shape (stride 2, new width): it cannot be reused.
            return Err(format!(
                "model.own_blocks = {} must be at least 2 with model.shared_weights",
                self.own_blocks
            ));
        }
        if let (Some(s), Some(e)) = (self.dyrelu.phase_start, self.dyrelu.phase_end)
            && e < s
        {
            return Err(format!(
                "model.dyrelu.phase_end = {e} is before phase_start = {s}"
            ));
        }
        for (name, v) in [
            ("phase_start", self.dyrelu.phase_start),
            ("phase_end", self.dyrelu.phase_end),
        ] {
            if v.is_some_and(|v| !(v.is_finite() && v >= 0.0)) {
                return Err(format!("model.dyrelu.{name} must be >= 0 (in epochs)"));
            }
        }
        Ok(())
    }

    fn scaled(&self, channels: usize) -> usize {
        ((channels as f64 * self.width).round() as usize).max(1)
    }

    /// Convolution and classifier weights of the model, counted from its layout without
    /// building it (sharing ignored: an upper bound), to refuse a model too large for the
    /// machine before allocating it.
    pub fn weight_count(&self, num_classes: usize) -> u64 {
        let (widths, depths, bottleneck) = self.arch.layout();
        let expansion = if bottleneck { 4 } else { 1 };
        let stem_out = self.scaled(widths[0]) as u64;
        let mut total = 27 * stem_out;
        let mut in_ch = stem_out;
        for (s, (&w, &n)) in widths.iter().zip(&depths).enumerate() {
            let mid = self.scaled(w) as u64;
            let out = mid * expansion;
            for b in 0..n {
                let stride = s > 0 && b == 0;
                total += if bottleneck {
                    in_ch * mid + 9 * mid * mid + mid * out
                } else {
                    9 * in_ch * mid + 9 * mid * mid
                };
                if stride || in_ch != out {
                    total += in_ch * out;
                }
                in_ch = out;
            }
        }
        total + in_ch * num_classes as u64
    }

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
            phase: 1.0,
            sparse: None,
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

struct BlockShape {
    in_ch: usize,
    mid: usize,
    expansion: usize,
    stride: usize,
    bottleneck: bool,
}

/// A residual block. BasicBlock: 3x3 → 3x3. Bottleneck: 1x1 → 3x3 → 1x1 (x4 channels).
///
/// A shared block has no convs of its own (`conv*` are `None`): it runs its stage's
/// owner block's convs, each output times its own learnable scalar (`gain*`; a conv is
/// linear in its weight, so this is the shared weight times the gain). Its BatchNorms,
/// activations and shortcut stay its own.
#[derive(Module, Debug)]
pub struct Block {
    pub conv1: Option<Conv2d>,
    pub bn1: BatchNorm,
    pub conv2: Option<Conv2d>,
    pub bn2: BatchNorm,
    pub conv3: Option<Conv2d>,
    pub bn3: Option<BatchNorm>,
    pub shortcut: Option<Shortcut>,
    pub gain1: Option<Param<Tensor<1>>>,
    pub gain2: Option<Param<Tensor<1>>>,
    pub gain3: Option<Param<Tensor<1>>>,
    pub dyrelu1: Option<DyRelu>,
    pub dyrelu2: Option<DyRelu>,
    pub dyrelu_out: Option<DyRelu>,
}

fn gain(device: &Device) -> Param<Tensor<1>> {
    Param::from_tensor(Tensor::ones([1], device))
}

impl Block {
    fn new(shape: BlockShape, shared: bool, dyrelu: bool, device: &Device) -> Self {
        let BlockShape {
            in_ch,
            mid,
            expansion,
            stride,
            bottleneck,
        } = shape;
        let out_ch = mid * expansion;
        let shortcut = (stride != 1 || in_ch != out_ch).then(|| Shortcut {
            conv: conv(in_ch, out_ch, 1, stride, device),
            bn: BatchNormConfig::new(out_ch).init(device),
        });
        let own = |c: Conv2d| (!shared).then_some(c);
        let gain = || shared.then(|| gain(device));
        let act = |channels: usize| dyrelu.then(|| DyRelu::new(channels, device));
        let (conv1, conv2) = if bottleneck {
            (
                conv(in_ch, mid, 1, 1, device),
                conv(mid, mid, 3, stride, device),
            )
        } else {
            (
                conv(in_ch, mid, 3, stride, device),
                conv(mid, mid, 3, 1, device),
            )
        };
        Block {
            conv1: own(conv1),
            bn1: BatchNormConfig::new(mid).init(device),
            conv2: own(conv2),
            bn2: BatchNormConfig::new(mid).init(device),
            conv3: if bottleneck {
                own(conv(mid, out_ch, 1, 1, device))
            } else {
                None
            },
            bn3: bottleneck.then(|| BatchNormConfig::new(out_ch).init(device)),
            shortcut,
            gain1: gain(),
            gain2: gain(),
            gain3: if bottleneck { gain() } else { None },
            dyrelu1: act(mid),
            dyrelu2: if bottleneck { act(mid) } else { None },
            dyrelu_out: act(out_ch),
        }
    }

    pub fn is_shared(&self) -> bool {
        self.conv1.is_none()
    }

    /// `owner` is the block whose convs a shared block runs (ignored by owning blocks);
    /// `at` locates both blocks, for the sparse plan.
    pub fn forward(&self, x: Tensor<4>, owner: &Block, phase: f32, at: ConvSite) -> Tensor<4> {
        let c1 = run_conv(
            &self.conv1,
            &owner.conv1,
            &self.gain1,
            x.clone(),
            at,
            "conv1",
        );
        let out = activate(&self.dyrelu1, self.bn1.forward(c1), phase);
        let c2 = run_conv(&self.conv2, &owner.conv2, &self.gain2, out, at, "conv2");
        let mut out = self.bn2.forward(c2);
        if let Some(bn3) = &self.bn3 {
            let out2 = activate(&self.dyrelu2, out, phase);
            let c3 = run_conv(&self.conv3, &owner.conv3, &self.gain3, out2, at, "conv3");
            out = bn3.forward(c3);
        }
        let identity = match &self.shortcut {
            Some(s) => s.bn.forward(at.conv(at.block, "shortcut.conv", &s.conv, x)),
            None => x,
        };
        activate(&self.dyrelu_out, out + identity, phase)
    }
}

/// Where a block sits (stage, its own index, its owner's index) and the sparse plan.
#[derive(Clone, Copy)]
pub struct ConvSite<'a> {
    pub stage: usize,
    pub block: usize,
    pub owner: usize,
    pub plan: Option<&'a SparsePlan>,
}

impl ConvSite<'_> {
    /// Block `block`'s convolution `name`: through the plan (sparse where it says so)
    /// when there is one. Paths are only spelled out then, off the plain dense path.
    fn conv(&self, block: usize, name: &str, conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
        match self.plan {
            Some(plan) => {
                let path = format!("stages.{}.blocks.{block}.{name}.weight", self.stage);
                plan.conv(&path, conv, x)
            }
            None => conv.forward(x),
        }
    }
}

fn run_conv(
    own: &Option<Conv2d>,
    owner: &Option<Conv2d>,
    gain: &Option<Param<Tensor<1>>>,
    x: Tensor<4>,
    at: ConvSite,
    name: &str,
) -> Tensor<4> {
    match (own, owner, gain) {
        (Some(c), _, _) => at.conv(at.block, name, c, x),
        (None, Some(c), Some(g)) => at.conv(at.owner, name, c, x) * g.val().reshape([1, 1, 1, 1]),
        _ => unreachable!("a shared block always has an owner with convs and a gain"),
    }
}

fn activate(dyrelu: &Option<DyRelu>, x: Tensor<4>, phase: f32) -> Tensor<4> {
    match dyrelu {
        Some(d) => d.forward(x, phase),
        None => relu(x),
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
    /// DyReLU's phase p (1: fully dynamic, 0: exactly ReLU); the trainer sets it.
    #[module(skip)]
    pub phase: f32,
    /// Which layers run the sparse kernels, with their compressed index (none: all dense).
    #[module(skip)]
    pub sparse: Option<Arc<SparsePlan>>,
}

impl ResNet {
    /// Logits `[batch, classes]` for images `[batch, 3, 32, 32]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let plan = self.sparse.as_deref();
        let stem = match plan {
            Some(p) => p.conv("stem.weight", &self.stem, images),
            None => self.stem.forward(images),
        };
        let stem = self.stem_bn.forward(stem);
        let mut x = activate(&self.dyrelu_stem, stem, self.phase);
        for (s, stage) in self.stages.iter().enumerate() {
            for (b, block) in stage.blocks.iter().enumerate() {
                let owner = stage.owner_index(b);
                let site = ConvSite {
                    stage: s,
                    block: b,
                    owner,
                    plan,
                };
                x = block.forward(x, &stage.blocks[owner], self.phase, site);
            }
        }
        let [b, c, h, w] = x.dims();
        let pooled = x.reshape([b, c, h * w]).mean_dim(2).reshape([b, c]);
        match plan {
            Some(p) => p.linear("classifier.weight", &self.classifier, pooled),
            None => self.classifier.forward(pooled),
        }
    }

    pub fn has_dyrelu(&self) -> bool {
        self.dyrelu_stem.is_some()
    }

    /// How many extra times each conv weight runs (shared blocks), by parameter path.
    /// Owning weights that nobody reuses are absent.
    pub fn reuse_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for (s, stage) in self.stages.iter().enumerate() {
            for (b, block) in stage.blocks.iter().enumerate() {
                if !block.is_shared() {
                    continue;
                }
                let owner = stage.owner_index(b);
                let owner_block = &stage.blocks[owner];
                for (name, c) in [
                    ("conv1", &owner_block.conv1),
                    ("conv2", &owner_block.conv2),
                    ("conv3", &owner_block.conv3),
                ] {
                    if c.is_some() {
                        *counts
                            .entry(format!("stages.{s}.blocks.{owner}.{name}.weight"))
                            .or_insert(0) += 1;
                    }
                }
            }
        }
        counts
    }

    /// The stride of every convolution, by weight path.
    pub fn conv_strides(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::from([("stem.weight".to_string(), self.stem.stride[0])]);
        for (s, stage) in self.stages.iter().enumerate() {
            for (b, block) in stage.blocks.iter().enumerate() {
                let at = format!("stages.{s}.blocks.{b}");
                for (name, conv) in [
                    ("conv1", &block.conv1),
                    ("conv2", &block.conv2),
                    ("conv3", &block.conv3),
                ] {
                    if let Some(c) = conv {
                        out.insert(format!("{at}.{name}.weight"), c.stride[0]);
                    }
                }
                if let Some(sc) = &block.shortcut {
                    out.insert(format!("{at}.shortcut.conv.weight"), sc.conv.stride[0]);
                }
            }
        }
        out
    }

    /// Output positions (height x width) of the layer at `path`, for 32x32 inputs: how
    /// many times each of its weights is used per image.
    pub fn output_positions(&self, path: &str) -> usize {
        let side = match path.strip_prefix("stages.") {
            Some(rest) => {
                let s: usize = rest
                    .split('.')
                    .next()
                    .and_then(|i| i.parse().ok())
                    .unwrap_or(0);
                // A bottleneck's first 1x1 conv runs before its stride-2 3x3: at the
                // previous stage's resolution.
                let bottleneck_entry = s > 0
                    && rest.ends_with(".blocks.0.conv1.weight")
                    && self.stages[s].blocks[0].conv3.is_some();
                32usize >> (s - usize::from(bottleneck_entry)).min(5)
            }
            None if path.starts_with("stem") => 32,
            None => 1,
        };
        side * side
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let y = m.forward(Tensor::zeros([2, 3, 32, 32], &device));
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
            let loss = m.forward(images.clone()).powi_scalar(2).sum();
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
    fn phase_survives_inference_mode_and_dyrelu_params_are_not_prunable() {
        let device = Device::flex();
        let mut m = ModelConfig {
            arch: Arch::Resnet8,
            activation: Activation::Dyrelu,
            ..Default::default()
        }
        .init(10, &device);
        m.phase = 0.25;
        assert_eq!(m.clone().valid().phase, 0.25);
        assert!(m.has_dyrelu());
        let layers = crate::sparsity::sparse_layers(&m);
        assert!(
            layers.iter().all(|l| !l.path.contains("dyrelu")),
            "{layers:?}"
        );
        assert_eq!(layers.len(), count_layers_resnet8());
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
