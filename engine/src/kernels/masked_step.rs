//! Kernel 1: the masked SGD step (Nesterov momentum, weight decay, gradient clipping) in
//! one fused pass over weight, momentum, gradient and mask, leaving pruned weights and
//! their momentum at exactly zero. Shaders: `shaders/masked_sgd_step_v1.wgsl` (one weight
//! per thread) and `_v2` (four per thread, vec4; used when the size is a multiple of 4).
//! `sparselab bench kernels` times both.
//!
//! The tensor-op reference (`reference`) is what the tests compare the kernel against; it
//! is also, op for op, `optim::MaskedSgd`'s update. Flex runs the same operations per
//! element in one pass (`masked_step/flex.rs`).

mod flex;

use super::wgsl::{self, shader};
use burn::backend::wgpu::{CubeBackend, CubeTensor};
use burn::backend::{Backend, Dispatch, TensorMetadata, backend_extension, tensor::FloatTensor};
use burn::tensor::{DType, Tensor};

/// The step's hyper-parameters for one call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepHyper {
    /// Which kernel version runs on wgpu: 1 (scalar), 2 (vec4), or 0 (the best that fits).
    pub version: u8,
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    pub nesterov: bool,
}

/// One kept element's new (weight, momentum) from its (masked) gradient `grad`, in the
/// reference's operation order: the masked step's and the active step's arithmetic.
#[inline(always)]
pub(crate) fn stepped(w: f32, m: f32, grad: f32, clip: f32, hyper: &StepHyper) -> (f32, f32) {
    let step = grad * clip + w * hyper.weight_decay;
    let new_m = m * hyper.momentum + step;
    let d = if hyper.nesterov {
        step + new_m * hyper.momentum
    } else {
        new_m
    };
    (w - d * hyper.lr, new_m)
}

#[backend_extension(Cube, Fusion, Flex)]
pub trait MaskedStepBackend: Backend {
    /// Returns the updated (weight, momentum). `clip` is a 1-element tensor scaling the
    /// gradient (the global clipping coefficient, 1 when clipping is off). Without
    /// `has_mask` the parameter is dense (BatchNorm, biases) and `mask` is not read.
    #[fusion(meta = |weight, momentum, _grad, _mask, _clip, _hyper, _has_mask| (weight.clone(), momentum.clone()))]
    fn masked_sgd_step(
        weight: FloatTensor<Self>,
        momentum: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        clip: FloatTensor<Self>,
        hyper: StepHyper,
        has_mask: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

/// One masked step on flat (1-D) tensors of any backend: the fused kernel on wgpu, the
/// tensor reference elsewhere. Tensors must not carry autodiff.
pub fn masked_sgd_step(
    weight: Tensor<1>,
    momentum: Tensor<1>,
    grad: Tensor<1>,
    mask: Option<Tensor<1>>,
    clip: Tensor<1>,
    hyper: StepHyper,
) -> (Tensor<1>, Tensor<1>) {
    let has_mask = mask.is_some();
    // An optimizer step is not differentiated: run it on the inner backend.
    // Without a mask the kernel still needs a buffer to bind: a small one of its own, since
    // WebGPU rejects two writable bindings of the same buffer (passing `grad` twice did).
    let mask = mask.unwrap_or_else(|| Tensor::zeros([4], &grad.device()));
    let (w, m) = <Dispatch as MaskedStepBackend>::masked_sgd_step(
        weight.inner().into_dispatch(),
        momentum.inner().into_dispatch(),
        grad.inner().into_dispatch(),
        mask.inner().into_dispatch(),
        clip.inner().into_dispatch(),
        hyper,
        has_mask,
    );
    (Tensor::from_dispatch(w), Tensor::from_dispatch(m))
}

/// The plain tensor version, in the kernel's operation order.
pub fn reference(
    weight: Tensor<1>,
    momentum: Tensor<1>,
    grad: Tensor<1>,
    mask: Option<Tensor<1>>,
    clip: Tensor<1>,
    hyper: StepHyper,
) -> (Tensor<1>, Tensor<1>) {
    let (w, m) = reference_ops::<Dispatch>(
        weight.into_dispatch(),
        momentum.into_dispatch(),
        grad.into_dispatch(),
        mask.map(Tensor::into_dispatch),
        clip.into_dispatch(),
        hyper,
    );
    (Tensor::from_dispatch(w), Tensor::from_dispatch(m))
}

/// The reference on any backend's primitives.
fn reference_ops<B: Backend>(
    weight: FloatTensor<B>,
    momentum: FloatTensor<B>,
    grad: FloatTensor<B>,
    mask: Option<FloatTensor<B>>,
    clip: FloatTensor<B>,
    hyper: StepHyper,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let grad = match &mask {
        Some(mask) => B::float_mul(grad, mask.clone()),
        None => grad,
    };
    let clip = B::float_expand(clip, weight.shape());
    let decay = B::float_mul_scalar(weight.clone(), hyper.weight_decay.into());
    let g = B::float_add(B::float_mul(grad, clip), decay);
    let m = B::float_add(
        B::float_mul_scalar(momentum, hyper.momentum.into()),
        g.clone(),
    );
    let d = if hyper.nesterov {
        B::float_add(g, B::float_mul_scalar(m.clone(), hyper.momentum.into()))
    } else {
        m.clone()
    };
    let w = B::float_sub(weight, B::float_mul_scalar(d, hyper.lr.into()));
    match mask {
        Some(mask) => (B::float_mul(w, mask.clone()), B::float_mul(m, mask)),
        None => (w, m),
    }
}

impl MaskedStepBackend for CubeBackend {
    fn masked_sgd_step(
        weight: CubeTensor,
        momentum: CubeTensor,
        grad: CubeTensor,
        mask: CubeTensor,
        clip: CubeTensor,
        hyper: StepHyper,
        has_mask: bool,
    ) -> (CubeTensor, CubeTensor) {
        let f32_only = [DType::F32];
        let weight = wgsl::contiguous(weight, "weight", &f32_only);
        let momentum = wgsl::contiguous(momentum, "momentum", &f32_only);
        let grad = wgsl::contiguous(grad, "gradient", &f32_only);
        let mask = wgsl::contiguous(mask, "mask", &f32_only);
        let clip = wgsl::contiguous(clip, "clip", &f32_only);
        let shape = weight.meta.shape().clone();
        let n = shape.num_elements();
        let weight_out = wgsl::empty_f32(&weight, shape.clone());
        let momentum_out = wgsl::empty_f32(&weight, shape);
        let vec4 = match hyper.version {
            1 => false,
            2 => {
                assert!(
                    n.is_multiple_of(4),
                    "masked step v2 needs a size divisible by 4, got {n}"
                );
                true
            }
            _ => n.is_multiple_of(4),
        };
        let (threads, shader) = if vec4 {
            (n / 4, shader!("masked_sgd_step_v2"))
        } else {
            (n, shader!("masked_sgd_step_v1"))
        };
        let (count, groups_x) = wgsl::grid(wgsl::groups_for(threads));
        wgsl::launch(
            &weight,
            shader,
            wgsl::WORKGROUP,
            count,
            vec![
                weight.handle.clone(),
                momentum.handle.clone(),
                grad.handle.clone(),
                mask.handle.clone(),
                clip.handle.clone(),
                weight_out.handle.clone(),
                momentum_out.handle.clone(),
            ],
            &[
                threads as u32,
                hyper.lr.to_bits(),
                hyper.momentum.to_bits(),
                hyper.weight_decay.to_bits(),
                hyper.nesterov as u32,
                has_mask as u32,
                groups_x,
            ],
        );
        (weight_out, momentum_out)
    }
}
