//! Kernel 5: BatchNorm, fused, on Flex. Burn's own builds it from tensor ops: in training
//! mode each of the statistics' reductions first copies the activation into channel-major
//! order, and the normalisation and its backward pass are a dozen more full passes, each a
//! new buffer; in inference mode the normalisation alone is four passes (subtract, divide,
//! scale, shift). At 99.9% sparsity those passes are most of a CPU step (the profile in
//! the book's kernel page). Here the statistics take one pass over the activation as it
//! lies, the normalisation one pass, and the backward pass two; a ReLU after the
//! BatchNorm, or a residual block's sum and ReLU, runs inside those passes instead of
//! passes of its own. Inference is the same normalising pass over the running statistics.
//!
//! Only Flex has it: `ForwardCtx` routes a BatchNorm here on Flex while training
//! (autodiff) and in inference (no autodiff), and everywhere else to Burn's
//! `BatchNorm::forward`, which is the reference the tests compare outputs, gradients and
//! running statistics with.

mod autodiff;
mod flex;

pub(crate) use flex::{Affine, normalise_add_relu_in_place, normalise_in_place};

use burn::backend::{Backend, Dispatch, backend_extension, tensor::FloatTensor};
use burn::nn::BatchNorm;
use burn::tensor::Tensor;

#[backend_extension(Autodiff, Flex)]
pub trait FusedNormBackend: Backend {
    /// Per-channel mean and biased variance of `x` (`[N, C, H, W]`), as one `[2, C]`
    /// tensor (not differentiated: `norm_apply`'s backward accounts for it).
    fn norm_stats(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `(x - mean) / sqrt(var + epsilon) * gamma + beta`, with `stats = norm_stats(x)`;
    /// with `relu`, `max(0, ·)` of it.
    fn norm_apply(
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> FloatTensor<Self>;

    /// The gradients of `gamma` and of `beta` as one `[2, C]` tensor.
    #[allow(clippy::too_many_arguments)]
    fn norm_param_grads(
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> FloatTensor<Self>;

    /// The gradient of `x`, through the statistics too; `param_grads` from
    /// `norm_param_grads`.
    #[allow(clippy::too_many_arguments)]
    fn norm_input_grad(
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        param_grads: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> FloatTensor<Self>;

    /// `max(0, norm_apply(x, ..) + residual)`: a residual block's last BatchNorm, the sum
    /// with its shortcut and the ReLU after it, in one pass.
    fn norm_apply_add_relu(
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self>;

    /// The gradient at the sum inside `norm_apply_add_relu`: `grad_out` where its output
    /// was positive, else 0. It is the residual's gradient and the one the BatchNorm's
    /// backward pass starts from.
    fn norm_add_relu_grad(
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self>;
}

/// `bn.forward(x)` in training mode, fused, then `relu` of it if `relu`: normalises with
/// the batch's statistics and moves the running ones as Burn does (`running = (1 -
/// momentum) running + momentum batch`, with the biased variance). Flex only.
pub fn batch_norm_train(bn: &BatchNorm, x: Tensor<4>, relu: bool) -> Tensor<4> {
    let stats = statistics(bn, &x);
    normalised(bn, x, stats, relu)
}

/// `relu(bn.forward(x) + residual)` in training mode, fused (the end of a residual block),
/// moving the running statistics as `batch_norm_train` does. Flex only.
pub fn batch_norm_add_relu_train(bn: &BatchNorm, x: Tensor<4>, residual: Tensor<4>) -> Tensor<4> {
    let stats = statistics(bn, &x);
    normalised_add_relu(bn, x, stats, residual)
}

/// `bn.forward(x)` in inference mode (the running statistics), fused, then `relu` of it if
/// `relu`. Flex, without autodiff (`norm_apply`'s backward would differentiate through
/// batch statistics).
pub fn batch_norm_inference(bn: &BatchNorm, x: Tensor<4>, relu: bool) -> Tensor<4> {
    let stats = running_statistics(bn, &x.device());
    normalised(bn, x, stats, relu)
}

/// `relu(bn.forward(x) + residual)` in inference mode, fused. Flex, without autodiff.
pub fn batch_norm_add_relu_inference(
    bn: &BatchNorm,
    x: Tensor<4>,
    residual: Tensor<4>,
) -> Tensor<4> {
    let stats = running_statistics(bn, &x.device());
    normalised_add_relu(bn, x, stats, residual)
}

/// `x` normalised by `stats` (`[2, C]`: mean, variance) and `bn`'s affine parameters,
/// through the ReLU if `relu`.
fn normalised(bn: &BatchNorm, x: Tensor<4>, stats: Tensor<2>, relu: bool) -> Tensor<4> {
    Tensor::<4>::from_dispatch(<Dispatch as FusedNormBackend>::norm_apply(
        x.into_dispatch(),
        stats.into_dispatch(),
        bn.gamma.val().into_dispatch(),
        bn.beta.val().into_dispatch(),
        bn.epsilon,
        relu,
    ))
}

/// `relu(normalised(bn, x, stats) + residual)`.
fn normalised_add_relu(
    bn: &BatchNorm,
    x: Tensor<4>,
    stats: Tensor<2>,
    residual: Tensor<4>,
) -> Tensor<4> {
    Tensor::<4>::from_dispatch(<Dispatch as FusedNormBackend>::norm_apply_add_relu(
        x.into_dispatch(),
        stats.into_dispatch(),
        bn.gamma.val().into_dispatch(),
        bn.beta.val().into_dispatch(),
        residual.into_dispatch(),
        bn.epsilon,
    ))
}

/// `bn`'s running mean and variance as the `[2, C]` statistics `norm_apply` takes.
pub(crate) fn running_statistics(bn: &BatchNorm, device: &burn::tensor::Device) -> Tensor<2> {
    let [channels] = bn.gamma.dims();
    let mean = bn.running_mean.value().to_device(device);
    let var = bn.running_var.value().to_device(device);
    Tensor::cat(
        vec![mean.reshape([1, channels]), var.reshape([1, channels])],
        0,
    )
}

/// The batch's `[2, C]` statistics of `x`, with `bn`'s running ones moved towards them.
fn statistics(bn: &BatchNorm, x: &Tensor<4>) -> Tensor<2> {
    let channels = x.dims()[1];
    let device = x.device();
    let stats = Tensor::<2>::from_dispatch(<Dispatch as FusedNormBackend>::norm_stats(
        x.clone().into_dispatch(),
    ));
    let batch = stats.clone().detach();
    let mean = batch.clone().slice([0..1, 0..channels]).reshape([channels]);
    let var = batch.slice([1..2, 0..channels]).reshape([channels]);
    let m = bn.momentum;
    let running_mean = bn.running_mean.value_sync().to_device(&device);
    let running_var = bn.running_var.value_sync().to_device(&device);
    bn.running_mean
        .update((running_mean.mul_scalar(1.0 - m) + mean.mul_scalar(m)).detach());
    bn.running_var
        .update((running_var.mul_scalar(1.0 - m) + var.mul_scalar(m)).detach());
    stats
}

/// The BatchNorm a forward on `device` (or its inner device) should use
/// (`ForwardCtx::batch_norm`): the fused one on Flex, else None (Burn's).
pub fn for_device(device: &burn::tensor::Device) -> Option<crate::model::FusedBatchNorm> {
    use crate::model::{FusedBatchNorm, NormKernels};
    super::runs_flex(device).then_some(FusedBatchNorm {
        train: NormKernels {
            norm: batch_norm_train,
            norm_add_relu: batch_norm_add_relu_train,
        },
        inference: NormKernels {
            norm: batch_norm_inference,
            norm_add_relu: batch_norm_add_relu_inference,
        },
    })
}
