//! A residual block (BasicBlock or Bottleneck, owning or sharing its convolutions) and the
//! convolution every layer of the model is built with.

use super::dyrelu::DyRelu;
use super::forward_ctx::{AfterNorm, ConvNorm, ForwardCtx, LayerId, NormTail};
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

pub(crate) fn conv(
    in_ch: usize,
    out_ch: usize,
    kernel: usize,
    stride: usize,
    device: &Device,
) -> Conv2d {
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

pub(crate) struct BlockShape {
    pub in_ch: usize,
    pub mid: usize,
    pub expansion: usize,
    pub stride: usize,
    pub bottleneck: bool,
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
    /// Where this block's convolutions sit in the model's layer table (a shared block's
    /// are its owner's): set once by `ModelConfig::init`, so a forward looks nothing up.
    #[module(skip)]
    pub ids: BlockLayerIds,
}

/// The layer ids of a block's convolutions (conv1..conv3) and projection shortcut.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockLayerIds {
    pub convs: [Option<LayerId>; 3],
    pub shortcut: Option<LayerId>,
}

fn gain(device: &Device) -> Param<Tensor<1>> {
    Param::from_tensor(Tensor::ones([1], device))
}

impl Block {
    /// This block's BatchNorms, in forward order (the shortcut's last).
    pub fn batch_norms_mut(&mut self) -> impl Iterator<Item = &mut BatchNorm> {
        [Some(&mut self.bn1), Some(&mut self.bn2), self.bn3.as_mut()]
            .into_iter()
            .flatten()
            .chain(self.shortcut.as_mut().map(|s| &mut s.bn))
    }

    pub(crate) fn new(shape: BlockShape, shared: bool, dyrelu: bool, device: &Device) -> Self {
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
            ids: BlockLayerIds::default(),
        }
    }

    pub fn is_shared(&self) -> bool {
        self.conv1.is_none()
    }

    /// Conv i (this block's own, or `owner`'s times this block's gain), its BatchNorm `bn`
    /// and what follows it.
    fn conv_norm_of<'a>(
        &'a self,
        owner: &'a Block,
        i: usize,
        bn: &'a BatchNorm,
        after: AfterNorm,
    ) -> ConvNorm<'a> {
        let id = self.ids.convs[i].expect("every conv of a built model has an id");
        let own = [&self.conv1, &self.conv2, &self.conv3][i];
        let theirs = [&owner.conv1, &owner.conv2, &owner.conv3][i];
        let (conv, gain) = match (own, theirs, [&self.gain1, &self.gain2, &self.gain3][i]) {
            (Some(c), _, _) => (c, None),
            (None, Some(c), Some(g)) => (c, Some(g)),
            _ => unreachable!("a shared block always has an owner with convs and a gain"),
        };
        ConvNorm {
            id,
            conv,
            tail: NormTail { gain, bn, after },
        }
    }

    /// `owner` is the block whose convs a shared block runs (itself for an owning block).
    pub fn forward(&self, x: Tensor<4>, owner: &Block, ctx: &ForwardCtx) -> Tensor<4> {
        let conv_norm = |i: usize, bn: &BatchNorm, after: AfterNorm, x: Tensor<4>| {
            let s = self.conv_norm_of(owner, i, bn, after);
            ctx.conv_norm(s.id, s.conv, x, s.tail)
        };
        let conv_activate = |i: usize, bn: &BatchNorm, dyrelu: &Option<DyRelu>, x: Tensor<4>| {
            activated(ctx, dyrelu, |after| conv_norm(i, bn, after, x))
        };
        let identity = match (&self.shortcut, self.ids.shortcut) {
            (Some(s), Some(id)) => {
                let tail = NormTail {
                    gain: None,
                    bn: &s.bn,
                    after: AfterNorm::Nothing,
                };
                ctx.conv_norm(id, &s.conv, x.clone(), tail)
            }
            _ => x.clone(),
        };
        // A BasicBlock with ReLUs: its two convolutions as a pair, which the kernels may
        // run with the activation between them narrowed.
        if self.bn3.is_none() && self.dyrelu1.is_none() && self.dyrelu_out.is_none() {
            return ctx.conv_norm_pair(
                self.conv_norm_of(owner, 0, &self.bn1, AfterNorm::Relu),
                self.conv_norm_of(owner, 1, &self.bn2, AfterNorm::AddRelu(identity)),
                x,
            );
        }
        let out = conv_activate(0, &self.bn1, &self.dyrelu1, x);
        // The last conv (its number, its BatchNorm, its input), which the shortcut's sum
        // follows.
        let (last, last_bn, out) = match &self.bn3 {
            Some(bn3) => (2, bn3, conv_activate(1, &self.bn2, &self.dyrelu2, out)),
            None => (1, &self.bn2, out),
        };
        match &self.dyrelu_out {
            Some(d) => d.forward(
                conv_norm(last, last_bn, AfterNorm::Nothing, out) + identity,
                ctx.phase,
            ),
            None => conv_norm(last, last_bn, AfterNorm::AddRelu(identity), out),
        }
    }
}

/// A BatchNorm's output through the activation: `normalised(AfterNorm::Nothing)` through
/// DyReLU, or `normalised(AfterNorm::Relu)`, the ReLU inside the BatchNorm's pass.
pub(crate) fn activated(
    ctx: &ForwardCtx,
    dyrelu: &Option<DyRelu>,
    normalised: impl FnOnce(AfterNorm) -> Tensor<4>,
) -> Tensor<4> {
    match dyrelu {
        Some(d) => d.forward(normalised(AfterNorm::Nothing), ctx.phase),
        None => normalised(AfterNorm::Relu),
    }
}
