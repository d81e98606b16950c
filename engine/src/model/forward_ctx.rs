//! What a forward pass needs besides the weights: the run's state at this step. The
//! model holds parameters only; the trainer owns the phase and the sparse kernels and
//! hands them to every forward, so nothing on the model changes between steps.

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
}

/// Another implementation of BatchNorm in training mode (the fused one on Flex).
#[derive(Clone, Copy)]
pub struct BatchNormTrain {
    /// `bn(x)`, or with `true` `relu(bn(x))` in the same passes.
    pub norm: fn(&BatchNorm, Tensor<4>, bool) -> Tensor<4>,
    /// `relu(bn(x) + residual)`, a residual block's end, in the same passes.
    pub norm_add_relu: fn(&BatchNorm, Tensor<4>, Tensor<4>) -> Tensor<4>,
}

#[derive(Clone, Copy)]
pub struct ForwardCtx<'a> {
    /// DyReLU's phase p (1: fully dynamic, 0: exactly ReLU); ignored without DyReLU.
    pub phase: f32,
    /// Layers that run through other kernels; None: every layer dense.
    pub kernels: Option<&'a dyn LayerKernels>,
    /// BatchNorm while training (autodiff); None: Burn's `BatchNorm::forward`.
    pub batch_norm: Option<BatchNormTrain>,
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

    /// The same context with another BatchNorm for training.
    pub fn with_batch_norm(self, batch_norm: Option<BatchNormTrain>) -> Self {
        Self { batch_norm, ..self }
    }

    pub(crate) fn norm(&self, bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
        match self.train_norm(bn, &x) {
            Some(train) => (train.norm)(bn, x, false),
            None => bn.forward(x),
        }
    }

    /// `relu(bn(x))`, in the fused BatchNorm's passes where it runs.
    pub(crate) fn norm_relu(&self, bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
        match self.train_norm(bn, &x) {
            Some(train) => (train.norm)(bn, x, true),
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
        match self.train_norm(bn, &x) {
            Some(train) => (train.norm_add_relu)(bn, x, residual),
            None => relu(bn.forward(x) + residual),
        }
    }

    /// The other BatchNorm, where it applies: training (autodiff, a BatchNorm in training).
    fn train_norm(&self, bn: &BatchNorm, x: &Tensor<4>) -> Option<BatchNormTrain> {
        self.batch_norm
            .filter(|_| x.device().is_autodiff() && bn.training.is_enabled())
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
