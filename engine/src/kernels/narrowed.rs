//! In inference, a residual block's two sparse convolutions as a pair, the activation
//! between them narrowed to the channels the second one reads.
//!
//! The second convolution reads an input channel only if one of its active weights sits
//! on it. At 99.9% a ResNet-34 first-stage block's second convolution keeps 37 of its
//! 36,864 weights, so it reads at most 37 (about 30) of its 64 input channels; the other
//! planes of the first convolution's output, about 18 MB per block at batch 128, were
//! written and never read. Here the first convolution runs over the read
//! channels only (its weight's rows, its BatchNorm's channels and its index's rows
//! narrowed to them) and writes `[N, k, H, W]`; the second runs on that narrowed input,
//! its weight's columns narrowed and its index's input channels renumbered. Each kept
//! plane gets the same terms in the same order, and the renumbering keeps the second's
//! entries in order: the block's output has the same bits as the two convolutions
//! apart (the plan's tests compare them).
//!
//! Where v11's loops can take both convolutions one image at a time (`cpu_loops::
//! pair_runs`: every BasicBlock of the CIFAR ResNets on 32x32 images, whose strided
//! layers halve even planes), the pair also runs image by image
//! (`conv_norm::pair_inference_norm`): narrowed here, and not narrowed
//! (`run_unnarrowed`) for the pairs not built narrowed (too many channels read, or none).
//!
//! Flex only, without autodiff, as the fused inference BatchNorm it runs through
//! (`conv_norm`).

use super::conv_norm::{
    InferenceNorm, NormConv, inference_norm_with, pair_inference_norm, runs_fused,
};
use super::plan::same_padding;
use super::sparse_index::{DeviceSparseIndex, SparseIndex, WeightLayout};
use crate::model::{AfterNorm, ConvNorm, LayerId};
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

    /// `second` after `first` on `x`, the activation between them narrowed (and image by
    /// image where `pair_inference_norm` runs them so); `None` off Flex or on autodiff (the
    /// caller runs them apart).
    pub fn run(&self, first: &ConvNorm, second: &ConvNorm, x: &Tensor<4>) -> Option<Tensor<4>> {
        let device = x.device();
        if !runs_fused(&device) {
            return None;
        }
        // Off autodiff like every other input: a plan built on the training device
        // evaluates a model whose parameters are still on it.
        let channels = self.channels.clone().inner();
        let narrowed_first = pair_conv(
            first,
            &self.first_index,
            first.conv.weight.val().inner().select(0, channels.clone()),
            InferenceNorm::of(first.tail.bn, &device).select(&channels),
        );
        let narrowed_second = pair_conv(
            second,
            &self.second_index,
            second.conv.weight.val().inner().select(1, channels),
            InferenceNorm::of(second.tail.bn, &device),
        );
        Some(run_pair(first, narrowed_first, second, narrowed_second, x))
    }
}

/// A block's convolution as `pair_inference_norm` takes it, with `weight` and `norm` (the
/// layer's own, or narrowed).
fn pair_conv<'a>(
    conv: &ConvNorm<'a>,
    index: &'a DeviceSparseIndex,
    weight: Tensor<4>,
    norm: InferenceNorm,
) -> NormConv<'a> {
    NormConv {
        weight,
        index,
        stride: conv.conv.stride,
        padding: same_padding(conv.conv),
        gain: conv.tail.gain,
        norm,
    }
}

/// `second` after `first` on `x`, image by image where `pair_inference_norm` runs the
/// pair so, else one after the other through `inference_norm_with`.
fn run_pair(
    first: &ConvNorm,
    first_conv: NormConv,
    second: &ConvNorm,
    second_conv: NormConv,
    x: &Tensor<4>,
) -> Tensor<4> {
    if let (AfterNorm::Relu, AfterNorm::AddRelu(residual)) = (&first.tail.after, &second.tail.after)
        && let Some(y) = pair_inference_norm(x, first_conv.clone(), second_conv.clone(), residual)
    {
        return y;
    }
    let middle = inference_norm_with(x, first_conv, &first.tail.after);
    inference_norm_with(&middle, second_conv, &second.tail.after)
}

/// A residual block's two convolutions (`first`'s index `first_index`, `second`'s
/// `second_index`), not narrowed, on `x`: image by image where `pair_inference_norm` runs
/// them so; `None` where it does not, or off Flex or on autodiff (the caller runs them
/// apart, as this would).
pub fn run_unnarrowed(
    first: &ConvNorm,
    first_index: &DeviceSparseIndex,
    second: &ConvNorm,
    second_index: &DeviceSparseIndex,
    x: &Tensor<4>,
) -> Option<Tensor<4>> {
    let device = x.device();
    if !runs_fused(&device) {
        return None;
    }
    let AfterNorm::AddRelu(residual) = &second.tail.after else {
        return None;
    };
    if !matches!(first.tail.after, AfterNorm::Relu) {
        return None;
    }
    let first_conv = pair_conv(
        first,
        first_index,
        first.conv.weight.val().inner(),
        InferenceNorm::of(first.tail.bn, &device),
    );
    let second_conv = pair_conv(
        second,
        second_index,
        second.conv.weight.val().inner(),
        InferenceNorm::of(second.tail.bn, &device),
    );
    pair_inference_norm(x, first_conv, second_conv, residual)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::conv_norm::sparse_conv2d_inference_norm;
    use crate::kernels::conv_norm::tests::{moved_batch_norm, random, vector};
    use crate::model::block::conv;
    use crate::model::{AfterNorm, NormTail};
    use crate::rng::Rng;
    use burn::module::Param;

    fn bits(t: Tensor<4>) -> Vec<u32> {
        let data = t.into_data().convert::<f32>();
        data.try_to_vec::<f32>()
            .unwrap()
            .into_iter()
            .map(f32::to_bits)
            .collect()
    }

    #[test]
    fn a_narrowed_pair_gives_the_bits_of_its_two_convolutions_apart() {
        let device = Device::flex();
        let mut rng = Rng::new(3);
        let (batch, inputs, middle, outputs) = (2, 5, 6, 7);
        // The second convolution reads the middle's first and last channels and one
        // between; the first is strided, as a stage's first block is.
        let read = [0, 2, 5];
        let first_mask = LayerMask {
            path: "block.conv1.weight".into(),
            dims: vec![middle, inputs, 3, 3],
            active: (0..middle * inputs * 9)
                .map(|_| rng.next_f32() < 0.4)
                .collect(),
        };
        let second_mask = LayerMask {
            path: "block.conv2.weight".into(),
            dims: vec![outputs, middle, 3, 3],
            active: (0..outputs * middle * 9)
                .map(|f| read.contains(&(f / 9 % middle)) && (f % 9 == 4 || rng.next_f32() < 0.5))
                .collect(),
        };
        let pair = NarrowedPair::new(&first_mask, &second_mask, LayerId(1), &device)
            .expect("half the middle channels are left out");
        let kept = pair.channels.clone().into_data().convert::<i64>();
        assert_eq!(kept.try_to_vec::<i64>().unwrap(), vec![0, 2, 5]);

        let mut first_conv = conv(inputs, middle, 3, 2, &device);
        first_conv.weight = Param::from_tensor(random([middle, inputs, 3, 3], &mut rng, &device));
        let mut second_conv = conv(middle, outputs, 3, 1, &device);
        second_conv.weight = Param::from_tensor(random([outputs, middle, 3, 3], &mut rng, &device));
        let (first_bn, second_bn) = (
            moved_batch_norm(middle, &mut rng, &device),
            moved_batch_norm(outputs, &mut rng, &device),
        );
        let x = random([batch, inputs, 9, 9], &mut rng, &device);
        let residual = random([batch, outputs, 5, 5], &mut rng, &device);
        let (first_gain, second_gain) = (
            Param::from_tensor(vector(vec![0.8], &device)),
            Param::from_tensor(vector(vec![1.25], &device)),
        );
        let first = ConvNorm {
            id: LayerId(0),
            conv: &first_conv,
            tail: NormTail {
                gain: Some(&first_gain),
                bn: &first_bn,
                after: AfterNorm::Relu,
            },
        };
        let second = ConvNorm {
            id: LayerId(1),
            conv: &second_conv,
            tail: NormTail {
                gain: Some(&second_gain),
                bn: &second_bn,
                after: AfterNorm::AddRelu(residual),
            },
        };
        let narrowed = pair
            .run(&first, &second, &x)
            .expect("Flex without autodiff");

        let index = |mask: &LayerMask, dims: [usize; 4]| {
            SparseIndex::new(WeightLayout::conv(dims), &mask.active).to_device(&device)
        };
        let (first_index, second_index) = (
            index(&first_mask, [middle, inputs, 3, 3]),
            index(&second_mask, [outputs, middle, 3, 3]),
        );
        let apart = |conv: &ConvNorm, index: &DeviceSparseIndex, x: &Tensor<4>| {
            let (stride, padding) = (conv.conv.stride, same_padding(conv.conv));
            sparse_conv2d_inference_norm(
                x,
                conv.conv.weight.val(),
                index,
                stride,
                padding,
                &conv.tail,
            )
            .expect("Flex without autodiff")
        };
        let middle_apart = apart(&first, &first_index, &x);
        let expected = apart(&second, &second_index, &middle_apart);
        assert_eq!(narrowed.dims(), expected.dims());
        let expected = bits(expected);
        assert!(expected.iter().any(|&b| f32::from_bits(b) > 0.0));
        assert_eq!(bits(narrowed), expected);

        // On autodiff the caller runs the two apart.
        let x = random([batch, inputs, 9, 9], &mut rng, &device.clone().autodiff());
        assert!(pair.run(&first, &second, &x).is_none());
    }

    #[test]
    fn a_pair_that_reads_most_channels_or_none_is_not_narrowed() {
        let device = Device::flex();
        let mask = |path: &str, dims: [usize; 4], on: &dyn Fn(usize) -> bool| LayerMask {
            path: path.into(),
            dims: dims.to_vec(),
            active: (0..dims.iter().product()).map(on).collect(),
        };
        let first = mask("b.conv1.weight", [4, 3, 3, 3], &|_| true);
        // Three of four channels read: a quarter left out is enough.
        let three = mask("b.conv2.weight", [5, 4, 3, 3], &|f| f / 9 % 4 != 1);
        assert!(NarrowedPair::new(&first, &three, LayerId(1), &device).is_some());
        let all = mask("b.conv2.weight", [5, 4, 3, 3], &|_| true);
        assert!(NarrowedPair::new(&first, &all, LayerId(1), &device).is_none());
        let none = mask("b.conv2.weight", [5, 4, 3, 3], &|_| false);
        assert!(NarrowedPair::new(&first, &none, LayerId(1), &device).is_none());
        // Shapes that do not chain.
        let other = mask("b.conv2.weight", [5, 3, 3, 3], &|_| true);
        assert!(NarrowedPair::new(&first, &other, LayerId(1), &device).is_none());
    }
}
