//! What a forward pass needs besides the weights: the run's state at this step. The
//! model holds parameters only; the trainer owns the phase and the sparse kernels and
//! hands them to every forward, so nothing on the model changes between steps.

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear};
use burn::tensor::Tensor;
use burn::tensor::activation::relu;

/// A prunable layer's place in the model's layer table (`ResNet::layers`): the same
/// order as the masks, fixed when the model is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LayerId(pub usize);

/// Another implementation of some layers (the sparse kernels). Each call falls back to
/// the layer's own dense forward for the layers it does not hold.
pub trait LayerKernels {
    fn conv(&self, id: LayerId, conv: &Conv2d, x: Tensor<4>) -> Tensor<4>;
    fn linear(&self, id: LayerId, linear: &Linear, x: Tensor<2>) -> Tensor<2>;

    /// The convolution with `tail` in inference mode (the running statistics) inside its
    /// own pass over each output plane, where these kernels hold the layer and have such a
    /// pass on `x`'s device; `None` where not, and the caller runs the two apart.
    fn conv_inference_norm(
        &self,
        _id: LayerId,
        _conv: &Conv2d,
        _x: &Tensor<4>,
        _tail: &NormTail,
    ) -> Option<Tensor<4>> {
        None
    }

    /// A residual block's two convolutions in inference, `second` after `first`, where
    /// these kernels run them as one pair (the activation between them narrowed to the
    /// channels `second` reads, or kept in cache image by image); `None` where not, and
    /// the caller runs each with `conv_inference_norm`.
    fn conv_pair_inference_norm(
        &self,
        _first: &ConvNorm,
        _second: &ConvNorm,
        _x: &Tensor<4>,
    ) -> Option<Tensor<4>> {
        None
    }
}

/// A convolution of the model with what follows it: its layer id, its module, its tail.
pub struct ConvNorm<'a> {
    pub id: LayerId,
    pub conv: &'a Conv2d,
    pub tail: NormTail<'a>,
}

/// What follows a convolution up to its activation: the shared weight's gain, the
/// BatchNorm, and then nothing, a ReLU, or a residual block's sum and ReLU.
pub struct NormTail<'a> {
    /// The learnable scalar a shared convolution's output is multiplied by first.
    pub gain: Option<&'a Param<Tensor<1>>>,
    pub bn: &'a BatchNorm,
    pub after: AfterNorm,
}

/// What follows a BatchNorm in the same pass.
// Built once per convolution per forward and moved a few frames down: a box would be an
// allocation for nothing.
#[allow(clippy::large_enum_variant)]
pub enum AfterNorm {
    Nothing,
    Relu,
    /// `relu(bn(x) + residual)`: a residual block's end.
    AddRelu(Tensor<4>),
}

/// BatchNorm in one mode, with what may follow it in the same passes.
#[derive(Clone, Copy)]
pub struct NormKernels {
    /// `bn(x)`, or with `true` `relu(bn(x))` in the same passes.
    pub norm: fn(&BatchNorm, Tensor<4>, bool) -> Tensor<4>,
    /// `relu(bn(x) + residual)`, a residual block's end, in the same passes.
    pub norm_add_relu: fn(&BatchNorm, Tensor<4>, Tensor<4>) -> Tensor<4>,
}

/// Another implementation of BatchNorm (the fused one on Flex), in both of Burn's modes.
#[derive(Clone, Copy)]
pub struct FusedBatchNorm {
    /// Training mode (autodiff, the BatchNorm training): the batch's statistics, the
    /// running ones moved.
    pub train: NormKernels,
    /// Inference mode (no autodiff): the running statistics.
    pub inference: NormKernels,
}

#[derive(Clone, Copy)]
pub struct ForwardCtx<'a> {
    /// DyReLU's phase p (1: fully dynamic, 0: exactly ReLU); ignored without DyReLU.
    pub phase: f32,
    /// Layers that run through other kernels; None: every layer dense.
    pub kernels: Option<&'a dyn LayerKernels>,
    /// Another BatchNorm; None: Burn's `BatchNorm::forward`.
    pub batch_norm: Option<FusedBatchNorm>,
}

impl ForwardCtx<'static> {
    /// Every layer dense, DyReLU fully dynamic (its state at the start of training).
    pub const DENSE: Self = Self {
        phase: 1.0,
        kernels: None,
        batch_norm: None,
    };
}

impl<'a> ForwardCtx<'a> {
    pub fn new(phase: Option<f64>, kernels: Option<&'a dyn LayerKernels>) -> Self {
        Self {
            phase: phase.map_or(1.0, |p| p as f32),
            kernels,
            batch_norm: None,
        }
    }

    /// The same context with another BatchNorm.
    pub fn with_batch_norm(self, batch_norm: Option<FusedBatchNorm>) -> Self {
        Self { batch_norm, ..self }
    }

    pub(crate) fn norm(&self, bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
        match self.fused_norm(bn, &x) {
            Some(fused) => (fused.norm)(bn, x, false),
            None => bn.forward(x),
        }
    }

    /// `relu(bn(x))`, in the fused BatchNorm's passes where it runs.
    pub(crate) fn norm_relu(&self, bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
        match self.fused_norm(bn, &x) {
            Some(fused) => (fused.norm)(bn, x, true),
            None => relu(bn.forward(x)),
        }
    }

    /// `relu(bn(x) + residual)`, in the fused BatchNorm's passes where it runs.
    pub(crate) fn norm_add_relu(
        &self,
        bn: &BatchNorm,
        x: Tensor<4>,
        residual: Tensor<4>,
    ) -> Tensor<4> {
        match self.fused_norm(bn, &x) {
            Some(fused) => (fused.norm_add_relu)(bn, x, residual),
            None => relu(bn.forward(x) + residual),
        }
    }

    /// The other BatchNorm in the mode Burn's would take: training on an autodiff device
    /// where the BatchNorm trains, inference without autodiff. A frozen BatchNorm on an
    /// autodiff device stays Burn's (the fused training backward would differentiate
    /// through batch statistics it does not use).
    fn fused_norm(&self, bn: &BatchNorm, x: &Tensor<4>) -> Option<NormKernels> {
        let fused = self.batch_norm?;
        match (x.device().is_autodiff(), bn.training.is_enabled()) {
            (true, true) => Some(fused.train),
            (true, false) => None,
            (false, _) => Some(fused.inference),
        }
    }

    /// `tail` after the convolution: in one pass per output plane where the BatchNorm
    /// runs in inference mode through the fused kernels and the layer runs sparse,
    /// otherwise the convolution, the gain and `norm` / `norm_relu` / `norm_add_relu`
    /// apart. Both give the same bits (the tests compare them).
    pub(crate) fn conv_norm(
        &self,
        id: LayerId,
        conv: &Conv2d,
        x: Tensor<4>,
        tail: NormTail,
    ) -> Tensor<4> {
        if let Some(kernels) = self.inference_kernels(&x)
            && let Some(y) = kernels.conv_inference_norm(id, conv, &x, &tail)
        {
            return y;
        }
        let y = self.conv(id, conv, x);
        let y = match tail.gain {
            Some(g) => y * g.val().reshape([1, 1, 1, 1]),
            None => y,
        };
        match tail.after {
            AfterNorm::Nothing => self.norm(tail.bn, y),
            AfterNorm::Relu => self.norm_relu(tail.bn, y),
            AfterNorm::AddRelu(residual) => self.norm_add_relu(tail.bn, y, residual),
        }
    }

    /// `second`'s convolution and tail after `first`'s, on `x`: as one pair where the
    /// kernels run one in inference through the fused BatchNorm, otherwise each through
    /// `conv_norm`. Both give the same bits (the plan's tests compare them).
    pub(crate) fn conv_norm_pair(
        &self,
        first: ConvNorm,
        second: ConvNorm,
        x: Tensor<4>,
    ) -> Tensor<4> {
        if let Some(kernels) = self.inference_kernels(&x)
            && let Some(y) = kernels.conv_pair_inference_norm(&first, &second, &x)
        {
            return y;
        }
        let y = self.conv_norm(first.id, first.conv, x, first.tail);
        self.conv_norm(second.id, second.conv, y, second.tail)
    }

    /// The other kernels, where they may run a convolution with its BatchNorm inside:
    /// with the fused BatchNorm, in inference (`x` off autodiff).
    fn inference_kernels(&self, x: &Tensor<4>) -> Option<&'a dyn LayerKernels> {
        let kernels = self.kernels?;
        (self.batch_norm.is_some() && !x.device().is_autodiff()).then_some(kernels)
    }

    pub(crate) fn conv(&self, id: LayerId, conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
        match self.kernels {
            Some(k) => k.conv(id, conv, x),
            None => conv.forward(x),
        }
    }

    pub(crate) fn linear(&self, id: LayerId, linear: &Linear, x: Tensor<2>) -> Tensor<2> {
        match self.kernels {
            Some(k) => k.linear(id, linear, x),
            None => linear.forward(x),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use burn::nn::BatchNormConfig;
    use burn::tensor::Device;

    /// Marker kernels: each fills the output with its own constant, so the output says
    /// which one ran.
    fn ones(_: &BatchNorm, x: Tensor<4>, _: bool) -> Tensor<4> {
        x.ones_like()
    }
    fn twos(_: &BatchNorm, x: Tensor<4>, _: bool) -> Tensor<4> {
        x.ones_like().mul_scalar(2.0)
    }
    fn ones_sum(_: &BatchNorm, x: Tensor<4>, _: Tensor<4>) -> Tensor<4> {
        x.ones_like()
    }
    fn twos_sum(_: &BatchNorm, x: Tensor<4>, _: Tensor<4>) -> Tensor<4> {
        x.ones_like().mul_scalar(2.0)
    }

    const MARKERS: FusedBatchNorm = FusedBatchNorm {
        train: NormKernels {
            norm: ones,
            norm_add_relu: ones_sum,
        },
        inference: NormKernels {
            norm: twos,
            norm_add_relu: twos_sum,
        },
    };

    /// The first element of `ctx.norm` and of `ctx.norm_add_relu` on a constant 5.
    fn routed(bn: &BatchNorm, device: &Device) -> (f32, f32) {
        let ctx = ForwardCtx::DENSE.with_batch_norm(Some(MARKERS));
        let x = Tensor::<4>::full([2, 3, 2, 2], 5.0, device);
        let first = |t: Tensor<4>| t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()[0];
        (
            first(ctx.norm(bn, x.clone())),
            first(ctx.norm_add_relu(bn, x.clone(), x.zeros_like())),
        )
    }

    #[test]
    fn a_resnet_infers_alike_through_the_fused_batch_norm_and_burns() {
        use crate::model::{Arch, ModelConfig};
        let train = Device::flex().autodiff();
        let model = ModelConfig {
            arch: Arch::Resnet8,
            width: 0.5,
            ..Default::default()
        }
        .init(10, &train);
        let images = |seed: u64, device: &Device| {
            let mut rng = crate::rng::Rng::new(seed);
            let values: Vec<f32> = (0..4 * 3 * 32 * 32)
                .map(|_| rng.next_f32() * 4.0 - 1.0)
                .collect();
            Tensor::<4>::from_data(
                burn::tensor::TensorData::new(values, [4, 3, 32, 32]),
                device,
            )
        };
        // Two training forwards move every running statistic away from 0 and 1.
        for seed in [1, 2] {
            let _ = model.forward(images(seed, &train), &ForwardCtx::DENSE);
        }
        let model = model.valid();
        let device = Device::flex();
        let x = images(3, &device);
        let logits = |ctx: &ForwardCtx| {
            model
                .forward(x.clone(), ctx)
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let burns = logits(&ForwardCtx::DENSE);
        let fused = logits(
            &ForwardCtx::DENSE.with_batch_norm(crate::kernels::batch_norm::for_device(&device)),
        );
        let differ = burns
            .iter()
            .zip(&fused)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(differ < 1e-4, "logits differ by {differ}");
        assert!(burns.iter().any(|l| l.abs() > 1e-3), "{burns:?}");
    }

    #[test]
    fn the_fused_batch_norm_runs_in_the_mode_burns_would_take() {
        let train = Device::flex().autodiff();
        let bn = BatchNormConfig::new(3).init(&train);
        // Training on an autodiff device: the training kernels.
        assert_eq!(routed(&bn, &train), (1.0, 1.0));
        // Without autodiff: inference, whether or not the BatchNorm is set to train.
        assert_eq!(routed(&bn, &Device::flex()), (2.0, 2.0));
        assert_eq!(routed(&bn.clone().valid(), &Device::flex()), (2.0, 2.0));
        // Frozen on an autodiff device: Burn's own, over the running statistics (mean 0,
        // variance 1): 5 normalised is 5, and relu(5 + 0) is 5.
        let (norm, sum) = routed(&bn.freeze(), &train);
        assert!(
            (norm - 5.0).abs() < 1e-3 && (sum - 5.0).abs() < 1e-3,
            "{norm}, {sum}"
        );
    }
}
