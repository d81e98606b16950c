//! Kernel 8: in inference, a sparse convolution with its BatchNorm inside. Inference
//! normalises with the running statistics, a fixed `scale * v + shift` per channel, so
//! each output plane can be normalised (times a shared weight's gain first, through the
//! ReLU or the residual block's sum and ReLU after) by the thread that summed it, while it
//! is still in cache, instead of by a BatchNorm pass that reads every activation back from
//! memory and writes it again. (The strided layers that the loops sum in blocks of whole
//! images, `cpu_loops` v4 and after, have each block's planes normalised once the block's
//! sums are done.) A residual block's two convolutions can also run as one op, image by
//! image (`pair_inference_norm`): the activation between them stays in cache.
//!
//! Flex only, without autodiff (the op has no backward pass: training normalises with the
//! batch's statistics, which need the whole output first). The reference is the
//! convolution and `batch_norm_inference` run apart, whose bits it gives: the same loops,
//! then the same per-element expressions.

mod flex;

use super::batch_norm::running_statistics;
use super::sparse_conv::cpu_loops::pair_runs;
use super::sparse_conv::{ConvGeometry, WeightGrad, conv_geometry_of};
use super::sparse_index::DeviceSparseIndex;
use crate::model::{AfterNorm, NormTail};
use burn::backend::{
    Backend, Dispatch, backend_extension,
    tensor::{FloatTensor, IntTensor},
};
use burn::module::Param;
use burn::nn::BatchNorm;
use burn::tensor::{Device, Int, Tensor};

#[backend_extension(Flex)]
pub trait ConvNormBackend: Backend {
    /// `norm_apply(gain * sparse_conv2d(x, ..), stats, gamma, beta, epsilon, relu)`.
    #[allow(clippy::too_many_arguments)]
    fn sparse_conv2d_norm(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        row_start: IntTensor<Self>,
        row_entries: IntTensor<Self>,
        gain: f32,
        stats: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
        geometry: ConvGeometry,
    ) -> FloatTensor<Self>;

    /// `norm_apply_add_relu(gain * sparse_conv2d(x, ..), stats, gamma, beta, residual,
    /// epsilon)`.
    #[allow(clippy::too_many_arguments)]
    fn sparse_conv2d_norm_add_relu(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        row_start: IntTensor<Self>,
        row_entries: IntTensor<Self>,
        gain: f32,
        stats: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        epsilon: f64,
        geometry: ConvGeometry,
    ) -> FloatTensor<Self>;

    /// A residual block's two convolutions: `norm_apply_add_relu(gain2 * sparse_conv2d(h,
    /// ..), .., residual)` of `h = norm_apply(gain1 * sparse_conv2d(x, ..), .., relu)`,
    /// image by image (`cpu_loops::pair_forward`); the geometries are `pair_runs`.
    #[allow(clippy::too_many_arguments)]
    fn sparse_conv2d_pair_norm_add_relu(
        x: FloatTensor<Self>,
        weight1: FloatTensor<Self>,
        row_start1: IntTensor<Self>,
        row_entries1: IntTensor<Self>,
        gain1: f32,
        stats1: FloatTensor<Self>,
        gamma1: FloatTensor<Self>,
        beta1: FloatTensor<Self>,
        epsilon1: f64,
        weight2: FloatTensor<Self>,
        row_start2: IntTensor<Self>,
        row_entries2: IntTensor<Self>,
        gain2: f32,
        stats2: FloatTensor<Self>,
        gamma2: FloatTensor<Self>,
        beta2: FloatTensor<Self>,
        epsilon2: f64,
        residual: FloatTensor<Self>,
        first: ConvGeometry,
        second: ConvGeometry,
    ) -> FloatTensor<Self>;
}

/// A BatchNorm in inference mode, as the fused kernel reads it: its `[2, C]` running
/// statistics (mean, variance), its scale and shift, off autodiff.
#[derive(Clone)]
pub(crate) struct InferenceNorm {
    pub stats: Tensor<2>,
    pub gamma: Tensor<1>,
    pub beta: Tensor<1>,
    pub epsilon: f64,
}

impl InferenceNorm {
    pub fn of(bn: &BatchNorm, device: &Device) -> Self {
        Self {
            stats: running_statistics(bn, device).inner(),
            gamma: bn.gamma.val().inner(),
            beta: bn.beta.val().inner(),
            epsilon: bn.epsilon,
        }
    }

    /// The same BatchNorm over the listed channels only, in their order.
    pub fn select(self, channels: &Tensor<1, Int>) -> Self {
        Self {
            stats: self.stats.select(1, channels.clone()),
            gamma: self.gamma.select(0, channels.clone()),
            beta: self.beta.select(0, channels.clone()),
            epsilon: self.epsilon,
        }
    }
}

/// The sparse convolution of `x` by `weight` over `index` with `tail` inside it, the
/// BatchNorm in inference mode: on Flex without autodiff, else `None` (the caller runs the
/// convolution and the BatchNorm apart).
pub fn sparse_conv2d_inference_norm(
    x: &Tensor<4>,
    weight: Tensor<4>,
    index: &DeviceSparseIndex,
    stride: [usize; 2],
    padding: [usize; 2],
    tail: &NormTail,
) -> Option<Tensor<4>> {
    let device = x.device();
    if !runs_fused(&device) {
        return None;
    }
    let conv = NormConv {
        weight: weight.inner(),
        index,
        stride,
        padding,
        gain: tail.gain,
        norm: InferenceNorm::of(tail.bn, &device),
    };
    Some(inference_norm_with(x, conv, &tail.after))
}

/// Whether the fused kernel runs on `device`: Flex without autodiff. (Every tensor is taken
/// off autodiff on the way in: a model still on its training device evaluates with
/// autodiff parameters on a plain input.)
pub(crate) fn runs_fused(device: &Device) -> bool {
    super::runs_flex(device) && !device.is_autodiff()
}

/// `sparse_conv2d_inference_norm` of `conv`, `after` inside it; `x` on a device where
/// `runs_fused`.
pub(crate) fn inference_norm_with(x: &Tensor<4>, conv: NormConv, after: &AfterNorm) -> Tensor<4> {
    let geometry = conv.geometry(x.dims());
    let p = conv.parts();
    let x = x.clone().inner().into_dispatch();
    let y = match after {
        AfterNorm::Nothing | AfterNorm::Relu => <Dispatch as ConvNormBackend>::sparse_conv2d_norm(
            x,
            p.weight,
            p.row_start,
            p.row_entries,
            p.gain,
            p.stats,
            p.gamma,
            p.beta,
            p.epsilon,
            matches!(after, AfterNorm::Relu),
            geometry,
        ),
        AfterNorm::AddRelu(residual) => <Dispatch as ConvNormBackend>::sparse_conv2d_norm_add_relu(
            x,
            p.weight,
            p.row_start,
            p.row_entries,
            p.gain,
            p.stats,
            p.gamma,
            p.beta,
            residual.clone().inner().into_dispatch(),
            p.epsilon,
            geometry,
        ),
    };
    Tensor::from_dispatch(y)
}

/// A sparse convolution with its BatchNorm in inference mode, as the fused ops take it
/// (`inference_norm_with`, `pair_inference_norm`): its weight off autodiff, its index,
/// stride, padding and gain.
#[derive(Clone)]
pub(crate) struct NormConv<'a> {
    pub weight: Tensor<4>,
    pub index: &'a DeviceSparseIndex,
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub gain: Option<&'a Param<Tensor<1>>>,
    pub norm: InferenceNorm,
}

impl NormConv<'_> {
    /// Its geometry on an input of shape `x`.
    fn geometry(&self, x: [usize; 4]) -> ConvGeometry {
        let weight = self.weight.dims();
        conv_geometry_of(
            x,
            weight,
            self.index,
            self.stride,
            self.padding,
            WeightGrad::Active,
        )
    }

    /// Its weight, index, gain and BatchNorm as the backend ops take them.
    fn parts(self) -> PairParts {
        let InferenceNorm {
            stats,
            gamma,
            beta,
            epsilon,
        } = self.norm;
        PairParts {
            weight: self.weight.inner().into_dispatch(),
            row_start: self.index.row_start.clone().inner().into_dispatch(),
            row_entries: self.index.row_entries.clone().inner().into_dispatch(),
            gain: self.gain.map_or(1.0, |g| g.val().into_scalar::<f32>()),
            stats: stats.into_dispatch(),
            gamma: gamma.into_dispatch(),
            beta: beta.into_dispatch(),
            epsilon,
        }
    }
}

struct PairParts {
    weight: FloatTensor<Dispatch>,
    row_start: IntTensor<Dispatch>,
    row_entries: IntTensor<Dispatch>,
    gain: f32,
    stats: FloatTensor<Dispatch>,
    gamma: FloatTensor<Dispatch>,
    beta: FloatTensor<Dispatch>,
    epsilon: f64,
}

/// A residual block's `second` convolution (its BatchNorm, `residual` added, the ReLU)
/// after `first` (its BatchNorm and the ReLU) on `x`, image by image
/// (`cpu_loops::pair_forward`): the bits of the two through `inference_norm_with`.
/// `None` where the pair does not run so (`cpu_loops::pair_runs`: a strided second
/// convolution, a stride v11 does not split by phase): the caller runs the two apart. `x`
/// on a device where `runs_fused`.
pub(crate) fn pair_inference_norm(
    x: &Tensor<4>,
    first: NormConv,
    second: NormConv,
    residual: &Tensor<4>,
) -> Option<Tensor<4>> {
    let g1 = first.geometry(x.dims());
    let g2 = second.geometry([g1.batch, g1.layout.out_channels, g1.out_h, g1.out_w]);
    if !pair_runs(&g1, &g2) {
        return None;
    }
    let (a, b) = (first.parts(), second.parts());
    let y = <Dispatch as ConvNormBackend>::sparse_conv2d_pair_norm_add_relu(
        x.clone().inner().into_dispatch(),
        a.weight,
        a.row_start,
        a.row_entries,
        a.gain,
        a.stats,
        a.gamma,
        a.beta,
        a.epsilon,
        b.weight,
        b.row_start,
        b.row_entries,
        b.gain,
        b.stats,
        b.gamma,
        b.beta,
        b.epsilon,
        residual.clone().inner().into_dispatch(),
        g1,
        g2,
    );
    Some(Tensor::from_dispatch(y))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::kernels::batch_norm::{batch_norm_add_relu_inference, batch_norm_inference};
    use crate::kernels::sparse_conv::{reference_conv2d, sparse_conv2d};
    use crate::kernels::sparse_index::{SparseIndex, WeightLayout};
    use crate::rng::Rng;
    use burn::module::{Module, Param};
    use burn::nn::{BatchNorm, BatchNormConfig};
    use burn::tensor::{Device, TensorData};

    pub(crate) fn random(shape: [usize; 4], rng: &mut Rng, device: &Device) -> Tensor<4> {
        let values = (0..shape.iter().product::<usize>())
            .map(|_| rng.next_f32() * 2.0 - 1.0)
            .collect::<Vec<_>>();
        Tensor::from_data(TensorData::new(values, shape), device)
    }

    pub(crate) fn vector(values: Vec<f32>, device: &Device) -> Tensor<1> {
        let n = values.len();
        Tensor::from_data(TensorData::new(values, [n]), device)
    }

    /// A BatchNorm with every parameter and running statistic away from its initial value.
    pub(crate) fn moved_batch_norm(channels: usize, rng: &mut Rng, device: &Device) -> BatchNorm {
        let mut bn = BatchNormConfig::new(channels).init(device);
        let mut draw = |lo: f32, span: f32| {
            (0..channels)
                .map(|_| lo + rng.next_f32() * span)
                .collect::<Vec<_>>()
        };
        bn.gamma = Param::from_tensor(vector(draw(0.5, 1.0), device));
        bn.beta = Param::from_tensor(vector(draw(-0.5, 1.0), device));
        let (mean, var) = (draw(-0.3, 0.6), draw(0.2, 2.0));
        bn.running_mean.update(vector(mean, device));
        bn.running_var.update(vector(var, device));
        bn
    }

    fn values(t: Tensor<4>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
    }

    /// (kernel, stride, input side) of the convolutions a ResNet has: 3x3 at stride 1
    /// (v6 runs them as spans) and 2 (as row pairs), the 1x1 shortcut at stride 2.
    const GEOMETRIES: [(usize, usize, usize); 3] = [(3, 1, 8), (3, 2, 9), (1, 2, 8)];

    #[test]
    fn the_fused_inference_norm_gives_the_bits_of_the_convolution_and_batch_norm_apart() {
        let device = Device::flex();
        let mut rng = Rng::new(7);
        for (kernel, stride, side) in GEOMETRIES {
            let (batch, cin, cout) = (3, 5, 6);
            let shape = [cout, cin, kernel, kernel];
            let active: Vec<bool> = (0..shape.iter().product::<usize>())
                .map(|_| rng.next_f32() < 0.3)
                .collect();
            let index = SparseIndex::new(WeightLayout::conv(shape), &active).to_device(&device);
            let x = random([batch, cin, side, side], &mut rng, &device);
            let weight = random(shape, &mut rng, &device);
            let bn = moved_batch_norm(cout, &mut rng, &device);
            let (stride, padding) = ([stride; 2], [kernel / 2; 2]);
            let conv = sparse_conv2d(x.clone(), weight.clone(), &index, stride, padding);
            let residual = random(conv.dims(), &mut rng, &device);
            for gain in [None, Some(0.7f32)] {
                let gain = gain.map(|g| Param::from_tensor(vector(vec![g], &device)));
                let scaled = match &gain {
                    Some(g) => conv.clone() * g.val().reshape([1, 1, 1, 1]),
                    None => conv.clone(),
                };
                let cases = [
                    (
                        AfterNorm::Nothing,
                        batch_norm_inference(&bn, scaled.clone(), false),
                    ),
                    (
                        AfterNorm::Relu,
                        batch_norm_inference(&bn, scaled.clone(), true),
                    ),
                    (
                        AfterNorm::AddRelu(residual.clone()),
                        batch_norm_add_relu_inference(&bn, scaled.clone(), residual.clone()),
                    ),
                ];
                for (after, apart) in cases {
                    let what = format!(
                        "{kernel}x{kernel} stride {stride:?}, gain {:?}, {}",
                        gain.as_ref().map(|g| g.val().into_scalar::<f32>()),
                        match after {
                            AfterNorm::Nothing => "no activation",
                            AfterNorm::Relu => "relu",
                            AfterNorm::AddRelu(_) => "residual and relu",
                        }
                    );
                    let tail = NormTail {
                        gain: gain.as_ref(),
                        bn: &bn,
                        after,
                    };
                    let fused = sparse_conv2d_inference_norm(
                        &x,
                        weight.clone(),
                        &index,
                        stride,
                        padding,
                        &tail,
                    )
                    .expect("Flex without autodiff has the fused op");
                    let (fused, apart) = (values(fused), values(apart));
                    assert!(fused.iter().any(|&v| v > 0.1), "{what}: {fused:?}");
                    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&fused), bits(&apart), "{what}");
                }
            }
        }
    }

    #[test]
    fn the_fused_inference_norm_matches_burns_dense_convolution_and_batch_norm() {
        let device = Device::flex();
        let mut rng = Rng::new(11);
        for (kernel, stride, side) in GEOMETRIES {
            let shape = [4, 3, kernel, kernel];
            let active: Vec<bool> = (0..shape.iter().product::<usize>())
                .map(|_| rng.next_f32() < 0.4)
                .collect();
            let layout = WeightLayout::conv(shape);
            let index = SparseIndex::new(layout, &active).to_device(&device);
            let mask = Tensor::<4>::from_data(
                TensorData::new(active.iter().map(|&a| a as u8 as f32).collect(), shape),
                &device,
            );
            let x = random([2, 3, side, side], &mut rng, &device);
            let weight = random(shape, &mut rng, &device);
            let bn = moved_batch_norm(4, &mut rng, &device);
            let (stride, padding) = ([stride; 2], [kernel / 2; 2]);
            let dense = reference_conv2d(x.clone(), weight.clone(), mask, stride, padding);
            let residual = random(dense.dims(), &mut rng, &device);
            let burns = values(burn::tensor::activation::relu(
                bn.clone().valid().forward(dense) + residual.clone(),
            ));
            let tail = NormTail {
                gain: None,
                bn: &bn,
                after: AfterNorm::AddRelu(residual),
            };
            let fused = values(
                sparse_conv2d_inference_norm(&x, weight, &index, stride, padding, &tail).unwrap(),
            );
            let differ = burns
                .iter()
                .zip(&fused)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(differ < 1e-5, "{kernel}x{kernel}: differ by {differ}");
        }
    }

    #[test]
    fn there_is_no_fused_inference_norm_on_autodiff() {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(3);
        let shape = [2, 2, 3, 3];
        let index = SparseIndex::new(WeightLayout::conv(shape), &[true; 36]).to_device(&device);
        let bn = moved_batch_norm(2, &mut rng, &device);
        let tail = NormTail {
            gain: None,
            bn: &bn,
            after: AfterNorm::Relu,
        };
        let x = random([1, 2, 4, 4], &mut rng, &device);
        let weight = random(shape, &mut rng, &device);
        assert!(sparse_conv2d_inference_norm(&x, weight, &index, [1, 1], [1, 1], &tail).is_none());
    }
}
