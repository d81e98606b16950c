//! Which layers of a training run use the sparse kernels (`run.kernels`): none, all, the
//! ones the shipped crossover table says are faster sparse at their density, or the ones a
//! timing on this device says are.

use super::crossover::CrossoverTable;
use super::plan::layout_of;
use super::timing::{ConvShape, LayerTiming, time_layer};
use crate::model::ResNet;
use crate::sparsity::Masks;
use burn::tensor::Device;

/// Which layers of a training run use the sparse kernels (`run.kernels`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelMode {
    /// Dense convolutions of the masked weights everywhere (what peer libraries do).
    Dense,
    /// Every conv and linear layer through the sparse kernels.
    Sparse,
    /// The default. Each conv layer runs sparse where its initial density is at or below
    /// the crossover the kernel lab measured for this backend and shape
    /// (`kernels/crossover.rs`): the same choice on every run of one config.
    #[default]
    Auto,
    /// Each conv layer runs sparse where a timing (forward and backward, at the run's batch
    /// size and initial density) says the sparse kernel wins. The choice is logged and
    /// kept in checkpoints; being timed, it can differ between two runs of one config.
    Timed,
}

/// The layers that run sparse under `mode`, with the per-layer timings behind the choice
/// (only timed measures). None on a backend without the kernels (`has_kernels`).
pub fn choose_layers(
    model: &ResNet,
    masks: &Masks,
    mode: KernelMode,
    batch: usize,
    device: &Device,
) -> (Vec<String>, Vec<LayerTiming>) {
    if !super::has_kernels(device) {
        return (Vec::new(), Vec::new());
    }
    match mode {
        KernelMode::Dense => (Vec::new(), Vec::new()),
        KernelMode::Sparse => (
            masks
                .layers
                .iter()
                .filter(|l| layout_of(l).is_some())
                .map(|l| l.path.clone())
                .collect(),
            Vec::new(),
        ),
        KernelMode::Auto => {
            let table = if super::runs_wgsl(device) {
                CrossoverTable::Wgpu
            } else {
                CrossoverTable::Flex
            };
            let chosen = conv_shapes(model)
                .into_iter()
                .filter(|shape| {
                    let Some(mask) = masks.get(&shape.path) else {
                        return false;
                    };
                    table
                        .max_density(shape)
                        .is_some_and(|max| mask.density() <= max)
                })
                .map(|shape| shape.path)
                .collect();
            (chosen, Vec::new())
        }
        KernelMode::Timed => {
            // Timed as training uses them: forward and backward.
            let device = device.clone().autodiff();
            let timings: Vec<LayerTiming> = conv_shapes(model)
                .into_iter()
                .filter_map(|shape| {
                    let mask = masks.get(&shape.path)?;
                    Some(time_layer(&shape, &mask.active, batch, &device, 3, true))
                })
                .collect();
            let chosen = timings
                .iter()
                .filter(|t| t.sparse_wins())
                .map(|t| t.shape.path.clone())
                .collect();
            (chosen, timings)
        }
    }
}

/// The conv layers of `model` (CIFAR, 32x32 inputs) with their input size and stride.
pub fn conv_shapes(model: &ResNet) -> Vec<ConvShape> {
    crate::sparsity::sparse_layers(model)
        .into_iter()
        .zip(model.layers.iter())
        .filter(|(l, _)| l.dims.len() == 4)
        .map(|(l, site)| {
            let out_side = (site.positions as f64).sqrt().round() as usize;
            ConvShape {
                weight: [l.dims[0], l.dims[1], l.dims[2], l.dims[3]],
                in_side: out_side * site.stride,
                stride: site.stride,
                path: l.path,
            }
        })
        .collect()
}
