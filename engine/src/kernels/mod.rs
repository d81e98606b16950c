//! sparselab's own GPU kernels, written in WGSL (`shaders/` at the repository root) and
//! launched through Burn's wgpu custom-kernel API, so the same source runs natively and in
//! the browser. Raw WGSL rather than CubeCL: the kernels are short, their bindings and
//! workgroup layout are what we tune, and the browser runs exactly the text we test.
//!
//! Each kernel is a Burn backend extension with three implementations: the WGSL kernel on
//! wgpu (`CubeBackend`, also under Fusion), a CPU version on Flex, and (for the
//! convolution) an autodiff backward pass. Every kernel has a reference built from plain
//! Burn tensor ops or the host code it replaces; the tests compare outputs and gradients.
//!
//! 1. `masked_step`: the fused masked SGD step.
//! 2. `topk`: exact top-k selection (radix select) for prune and grow.
//! 3. and 4. `sparse_conv`: sparse convolution / linear forward, and its backward pass
//!    touching only active weights, over the index built in `sparse_index`.
//!
//! CPU-only fusions on Flex, each tested against Burn's own ops: 5. `batch_norm` in
//! training mode, with the ReLU or the residual sum and ReLU after it; 6. `dyrelu`,
//! DyReLU-B's activation; 7. `masked_norm`, the masked gradient's squared norm for
//! clipping; 8. `conv_norm`, in inference, a sparse convolution that normalises each
//! output plane (and adds the residual, applies the ReLU) as it finishes the plane;
//! 9. `active_step`, the masked step touching only the active weights (tested against
//! the masked step); 10. `narrowed`, in inference, a residual block's two sparse
//! convolutions with the activation between them narrowed to the channels the second
//! reads (tested against the two run apart).

pub mod active_step;
pub mod batch_norm;
pub mod choice;
pub mod conv_norm;
pub mod crossover;
pub mod dyrelu;
pub(crate) mod flex_tensor;
pub mod lab;
pub mod lab_cpu_loops;
pub mod lab_crossover;
pub mod masked_norm;
pub mod masked_step;
pub mod narrowed;
pub(crate) mod parallel;
pub mod plan;
pub(crate) mod plane_sums;
pub mod sparse_conv;
pub mod sparse_index;
pub mod timing;
pub mod topk;
pub(crate) mod wgsl;
pub(crate) mod wide;

use burn::backend::DispatchDevice;
use burn::tensor::Device;

/// Whether `device` runs our WGSL kernels (a wgpu device, hardware or software).
pub fn runs_wgsl(device: &Device) -> bool {
    matches!(
        device.clone().inner().as_dispatch(),
        DispatchDevice::Cube(_)
    )
}

/// Whether `device` is Flex (with or without autodiff), where the CPU fusions run.
pub fn runs_flex(device: &Device) -> bool {
    matches!(
        device.clone().inner().as_dispatch(),
        DispatchDevice::Flex(_)
    )
}

/// Whether the sparse kernels exist for `device`'s backend: wgpu (WGSL) or Flex (CPU
/// loops). Elsewhere (the deprecated ndarray backend) every layer runs dense.
pub fn has_kernels(device: &Device) -> bool {
    matches!(
        device.clone().inner().as_dispatch(),
        DispatchDevice::Cube(_) | DispatchDevice::Flex(_)
    )
}
