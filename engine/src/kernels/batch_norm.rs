//! Kernel 5: BatchNorm in training mode, fused, on Flex. Burn's own builds it from tensor
//! ops: each of the statistics' reductions first copies the activation into channel-major
//! order, and the normalisation and its backward pass are a dozen more full passes, each a
//! new buffer. At 99.9% sparsity those passes are most of a CPU step (the profile in the
//! book's kernel page). Here the statistics take one pass per channel over the activation
//! as it lies, the normalisation one pass, and the backward pass two.
//!
//! Only Flex has it: `ForwardCtx` routes a BatchNorm here on Flex while training (autodiff),
//! and everywhere else to Burn's `BatchNorm::forward`, which is the reference the tests
//! compare outputs, gradients and running statistics with.

mod autodiff;
mod flex;

use burn::backend::{Backend, Dispatch, backend_extension, tensor::FloatTensor};
use burn::nn::BatchNorm;
use burn::tensor::Tensor;

#[backend_extension(Autodiff, Flex)]
pub trait FusedNormBackend: Backend {
    /// Per-channel mean and biased variance of `x` (`[N, C, H, W]`), as one `[2, C]`
    /// tensor (not differentiated: `norm_apply`'s backward accounts for it).
    fn norm_stats(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `(x - mean) / sqrt(var + epsilon) * gamma + beta`, with `stats = norm_stats(x)`.
    fn norm_apply(
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self>;

    /// The gradients of `gamma` and of `beta` as one `[2, C]` tensor.
    fn norm_param_grads(
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self>;

    /// The gradient of `x`, through the statistics too; `param_grads` from
    /// `norm_param_grads`.
    fn norm_input_grad(
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        param_grads: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self>;
}

/// `bn.forward(x)` in training mode, fused: normalises with the batch's statistics and
/// moves the running ones as Burn does (`running = (1 - momentum) running + momentum
/// batch`, with the biased variance). Flex only.
pub fn batch_norm_train(bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    let channels = x.dims()[1];
    let device = x.device();
    let stats = Tensor::<2>::from_dispatch(<Dispatch as FusedNormBackend>::norm_stats(
        x.clone().into_dispatch(),
    ));
    let y = Tensor::<4>::from_dispatch(<Dispatch as FusedNormBackend>::norm_apply(
        x.into_dispatch(),
        stats.clone().into_dispatch(),
        bn.gamma.val().into_dispatch(),
        bn.beta.val().into_dispatch(),
        bn.epsilon,
    ));
    let stats = stats.detach();
    let mean = stats.clone().slice([0..1, 0..channels]).reshape([channels]);
    let var = stats.slice([1..2, 0..channels]).reshape([channels]);
    let m = bn.momentum;
    let running_mean = bn.running_mean.value_sync().to_device(&device);
    let running_var = bn.running_var.value_sync().to_device(&device);
    bn.running_mean
        .update((running_mean.mul_scalar(1.0 - m) + mean.mul_scalar(m)).detach());
    bn.running_var
        .update((running_var.mul_scalar(1.0 - m) + var.mul_scalar(m)).detach());
    y
}

/// The BatchNorm a training forward on `device` should use (`ForwardCtx::batch_norm`): the
/// fused one on Flex, else None (Burn's).
pub fn for_device(device: &burn::tensor::Device) -> Option<crate::model::BatchNormTrain> {
    matches!(
        device.clone().inner().as_dispatch(),
        burn::backend::DispatchDevice::Flex(_)
    )
    .then_some(batch_norm_train as crate::model::BatchNormTrain)
}
