//! In inference, a residual block's two sparse convolutions as a pair, the activation
//! between them narrowed to the channels the second one reads.
//!
//! The second convolution reads an input channel only if one of its active weights sits
//! on it. At 99.9% a ResNet-34 first-stage block's second convolution keeps 37 of its
//! 36,864 weights, so it reads at most 37 (about 28) of its 64 input channels; the other
//! planes of the first convolution's output, 33 MB of the 68 MB written per block at
//! batch 128, are written and never read. Here the first convolution runs over the read
//! channels only (its weight's rows, its BatchNorm's channels and its index's rows
//! narrowed to them) and writes `[N, k, H, W]`; the second runs on that narrowed input,
//! its weight's columns narrowed and its index's input channels renumbered. Each kept
//! plane gets the same terms in the same order, and the renumbering keeps the second's
//! entries in order: the block's output has the same bits as the two convolutions
//! apart (the plan's tests compare them).
//!
//! Flex only, without autodiff, as the fused inference BatchNorm it runs through
//! (`conv_norm`).

use super::conv_norm::{InferenceNorm, inference_norm_with, runs_fused};
use super::sparse_index::{DeviceSparseIndex, SparseIndex, WeightLayout};
use crate::model::{ConvNorm, LayerId};
use crate::sparsity::LayerMask;
use burn::tensor::{Device, Int, Tensor, TensorData};

/// Narrowing pays where it leaves out at least this share of the middle activation: the
/// two weights and the BatchNorm are gathered on every forward pass, and at ResNet-34's
/// last stage (where the second convolution reads nearly every channel) that gather would
/// copy 9 MB to save almost nothing.
const LEFT_OUT_AT_LEAST: f64 = 0.25;

/// Two convolutions of a block, `[C, I, kh, kw]` then `[O, C, kh, kw]`, whose pair runs
/// narrowed to the `C` channels the second reads.
#[derive(Clone, Debug)]
pub struct NarrowedPair {
    /// The second convolution's layer.
    pub second: LayerId,
    /// The channels the second reads, ascending.
    channels: Tensor<1, Int>,
    /// The first's index over its kept output channels.
    first_index: DeviceSparseIndex,
    /// The second's index, its input channels renumbered to their places in `channels`.
    second_index: DeviceSparseIndex,
}

impl NarrowedPair {
    /// The pair of convolutions masked by `first` and `second`, where the second reads at
    /// least one of the first's output channels and leaves out at least
    /// `LEFT_OUT_AT_LEAST` of them; `None` where not, or where the shapes do not chain.
    pub fn new(
        first: &LayerMask,
        second: &LayerMask,
        second_id: LayerId,
        device: &Device,
    ) -> Option<Self> {
        let (&[c, i, kh1, kw1], &[o, c2, kh2, kw2]) =
            (first.dims.as_slice(), second.dims.as_slice())
        else {
            return None;
        };
        if c != c2 {
            return None;
        }
        let (first_layout, second_layout) = (
            WeightLayout::conv([c, i, kh1, kw1]),
            WeightLayout::conv([o, c, kh2, kw2]),
        );
        let taps = second_layout.taps;
        let read: Vec<usize> = (0..c)
            .filter(|&ch| {
                (0..o).any(|oc| (0..taps).any(|t| second.active[second_layout.flat(oc, ch, t)]))
            })
            .collect();
        let k = read.len();
        if k == 0 || ((c - k) as f64) < LEFT_OUT_AT_LEAST * c as f64 {
            return None;
        }
        let narrow_first = WeightLayout::conv([k, i, kh1, kw1]);
        let first_active: Vec<bool> = (0..narrow_first.numel())
            .map(|f| {
                let (row, rest) = (f / narrow_first.stride_oc, f % narrow_first.stride_oc);
                first.active[read[row] * first_layout.stride_oc + rest]
            })
            .collect();
        let narrow_second = WeightLayout::conv([o, k, kh2, kw2]);
        let second_active: Vec<bool> = (0..o)
            .flat_map(|oc| {
                read.iter().flat_map(move |&ch| {
                    (0..taps).map(move |t| second.active[second_layout.flat(oc, ch, t)])
                })
            })
            .collect();
        let channels: Vec<i64> = read.iter().map(|&ch| ch as i64).collect();
        Some(Self {
            second: second_id,
            channels: Tensor::from_data(TensorData::new(channels, [k]), device),
            first_index: SparseIndex::new(narrow_first, &first_active).to_device(device),
            second_index: SparseIndex::new(narrow_second, &second_active).to_device(device),
        })
    }

    /// How many channels the middle activation keeps.
    pub fn kept(&self) -> usize {
        self.channels.dims()[0]
    }

    /// `second` after `first` on `x`, the activation between them narrowed; `None` off
    /// Flex or on autodiff (the caller runs them apart).
    pub fn run(&self, first: &ConvNorm, second: &ConvNorm, x: &Tensor<4>) -> Option<Tensor<4>> {
        let device = x.device();
        if !runs_fused(&device) {
            return None;
        }
        let padding = |c: &burn::nn::conv::Conv2d| [c.kernel_size[0] / 2, c.kernel_size[1] / 2];
        let (f, s) = (first.conv, second.conv);
        // Off autodiff like every other input: a plan built on the training device
        // evaluates a model whose parameters are still on it.
        let channels = self.channels.clone().inner();
        let middle = inference_norm_with(
            x,
            f.weight.val().inner().select(0, channels.clone()),
            &self.first_index,
            f.stride,
            padding(f),
            first.tail.gain,
            InferenceNorm::of(first.tail.bn, &device).select(&channels),
            &first.tail.after,
        );
        Some(inference_norm_with(
            &middle,
            s.weight.val().inner().select(1, channels),
            &self.second_index,
            s.stride,
            padding(s),
            second.tail.gain,
            InferenceNorm::of(second.tail.bn, &device),
            &second.tail.after,
        ))
    }
}
