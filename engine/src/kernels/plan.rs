//! Which layers of a model run the sparse kernels. A plan holds, per chosen layer, the
//! compressed index built from that layer's mask; the model's forward pass asks it for each
//! convolution and falls back to the dense one for layers it does not hold. Layers are
//! chosen by measurement (`calibrate`): a layer runs sparse only where the sparse kernel
//! beat the dense convolution on this device, at this layer's shape and density.

use super::sparse_conv::{conv_out_len, sparse_conv2d, sparse_linear};
use super::sparse_index::{DeviceSparseIndex, SparseIndex, WeightLayout};
use crate::model::ResNet;
use crate::sparsity::{LayerMask, Masks, sparse_layers};
use crate::stats::mean_std;
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Distribution, Tensor};
use std::collections::BTreeMap;
use web_time::Instant;

/// Which layers of a training run use the sparse kernels (`run.kernels`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelMode {
    /// Dense convolutions of the masked weights everywhere (what peer libraries do). The
    /// default: two runs of one config give the same numbers, bit for bit.
    #[default]
    Dense,
    /// Every conv and linear layer through the sparse kernels.
    Sparse,
    /// Each conv layer runs sparse where a timing (forward and backward, at the run's batch
    /// size and initial density) says the sparse kernel wins. The choice is logged and
    /// kept in checkpoints; being timed, it can differ between two runs of one config.
    Auto,
}

/// The layers that run sparse under `mode`, with the per-layer timings behind the choice
/// (only auto measures). None on a backend without the kernels (`has_kernels`).
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

#[derive(Clone, Debug, Default)]
pub struct SparsePlan {
    layers: BTreeMap<String, DeviceSparseIndex>,
}

impl SparsePlan {
    /// A plan running the layers named in `sparse_paths` sparse, from `masks`.
    pub fn new<'a>(
        masks: &Masks,
        sparse_paths: impl IntoIterator<Item = &'a str>,
        device: &Device,
    ) -> Self {
        let mut layers = BTreeMap::new();
        for path in sparse_paths {
            if let Some(mask) = masks.layers.iter().find(|l| l.path == path)
                && let Some(layout) = layout_of(mask)
            {
                let index = SparseIndex::new(layout, &mask.active).to_device(device);
                layers.insert(path.to_string(), index);
            }
        }
        Self { layers }
    }

    /// The paths of the layers that run sparse.
    pub fn sparse_layers(&self) -> impl Iterator<Item = &str> {
        self.layers.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The convolution at `path`: the sparse kernel when this plan holds the layer, else
    /// the layer's own dense convolution.
    pub fn conv(&self, path: &str, conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
        let Some(index) = self.layers.get(path) else {
            return conv.forward(x);
        };
        let [kh, kw] = conv.kernel_size;
        // Every conv in our models pads by half its kernel (`model::resnet::conv`).
        sparse_conv2d(x, conv.weight.val(), index, conv.stride, [kh / 2, kw / 2])
    }

    /// The linear layer at `path`: sparse when this plan holds it, else dense.
    pub fn linear(&self, path: &str, linear: &Linear, x: Tensor<2>) -> Tensor<2> {
        let Some(index) = self.layers.get(path) else {
            return linear.forward(x);
        };
        let bias = linear.bias.as_ref().map(|b| b.val());
        sparse_linear(x, linear.weight.val(), bias, index)
    }
}

/// The weight layout of a conv (`[out, in, kh, kw]`) or linear (`[in, out]`) mask.
pub fn layout_of(mask: &LayerMask) -> Option<WeightLayout> {
    match *mask.dims.as_slice() {
        [o, i, kh, kw] => Some(WeightLayout::conv([o, i, kh, kw])),
        [i, o] => Some(WeightLayout::linear([i, o])),
        _ => None,
    }
}

/// The conv layers of `model` (CIFAR, 32x32 inputs) with their input size and stride.
pub fn conv_shapes(model: &ResNet) -> Vec<ConvShape> {
    let strides = model.conv_strides();
    sparse_layers(model)
        .into_iter()
        .filter(|l| l.dims.len() == 4)
        .map(|l| {
            let stride = strides[&l.path];
            let out_side = (model.output_positions(&l.path) as f64).sqrt().round() as usize;
            ConvShape {
                weight: [l.dims[0], l.dims[1], l.dims[2], l.dims[3]],
                in_side: out_side * stride,
                stride,
                path: l.path,
            }
        })
        .collect()
}

/// One layer's shape as a convolution sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvShape {
    pub path: String,
    /// `[out, in, kh, kw]`.
    pub weight: [usize; 4],
    pub in_side: usize,
    pub stride: usize,
}

/// A conv shape without its path: weight dims, input side, stride.
pub type ShapeKey = ([usize; 4], usize, usize);

impl ConvShape {
    pub fn key(&self) -> ShapeKey {
        (self.weight, self.in_side, self.stride)
    }

    pub fn padding(&self) -> usize {
        self.weight[2] / 2
    }

    pub fn out_side(&self) -> usize {
        conv_out_len(self.in_side, self.weight[2], self.stride, self.padding())
    }

    /// Multiply-adds of the dense layer per image.
    pub fn dense_macs(&self) -> usize {
        self.weight.iter().product::<usize>() * self.out_side().pow(2)
    }
}

/// Dense and sparse time of one layer, in milliseconds (mean and std over repeats).
#[derive(Clone, Debug)]
pub struct LayerTiming {
    pub shape: ConvShape,
    pub density: f64,
    pub nnz: usize,
    pub dense_ms: (f64, f64),
    pub sparse_ms: (f64, f64),
}

impl LayerTiming {
    pub fn speedup(&self) -> f64 {
        self.dense_ms.0 / self.sparse_ms.0
    }

    pub fn sparse_wins(&self) -> bool {
        self.sparse_ms.0 < self.dense_ms.0
    }
}

/// Times `f` (which must leave its work queued on `device`): `warmup` untimed calls, then
/// `repeats` timed ones, each followed by a device sync.
/// The result is held until after the sync, so lazy backends cannot skip the work.
pub fn time_ms<T>(
    device: &Device,
    warmup: usize,
    repeats: usize,
    mut f: impl FnMut() -> T,
) -> (f64, f64) {
    for _ in 0..warmup {
        let out = f();
        device.sync().expect("device sync");
        drop(out);
    }
    let samples: Vec<f64> = (0..repeats.max(1))
        .map(|_| {
            let start = Instant::now();
            let out = f();
            device.sync().expect("device sync");
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            drop(out);
            ms
        })
        .collect();
    mean_std(&samples)
}

/// Times the dense masked convolution and the sparse kernel of one layer: the forward
/// pass, or with `backward` (on an autodiff device) forward plus backward.
pub fn time_layer(
    shape: &ConvShape,
    active: &[bool],
    batch: usize,
    device: &Device,
    repeats: usize,
    backward: bool,
) -> LayerTiming {
    let layout = WeightLayout::conv(shape.weight);
    let index = SparseIndex::new(layout, active);
    let nnz = index.nnz();
    let index = index.to_device(device);
    let x = Tensor::<4>::random(
        [batch, shape.weight[1], shape.in_side, shape.in_side],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    let weight = Tensor::<4>::random(shape.weight, Distribution::Normal(0.0, 0.1), device);
    let (x, weight) = if backward {
        (x.require_grad(), weight.require_grad())
    } else {
        (x, weight)
    };
    let finish = |y: Tensor<4>| {
        if backward {
            drop(y.sum().backward());
            None
        } else {
            Some(y)
        }
    };
    let mask_values: Vec<f32> = active.iter().map(|&a| f32::from(u8::from(a))).collect();
    let mask = Tensor::<4>::from_data(
        burn::tensor::TensorData::new(mask_values, shape.weight),
        device,
    );
    // The dense baseline is what a masked-dense library runs: conv of (weight * mask).
    let masked = (weight.clone() * mask).detach();
    // A fresh leaf: every timed backward builds its graph from leaves.
    let masked = if backward {
        masked.require_grad()
    } else {
        masked
    };
    let (stride, padding) = ([shape.stride; 2], [shape.padding(); 2]);
    let options = burn::tensor::ops::ConvOptions::new(stride, padding, [1, 1], 1);
    let dense_ms = time_ms(device, 2, repeats, || {
        finish(burn::tensor::module::conv2d(
            x.clone(),
            masked.clone(),
            None,
            options.clone(),
        ))
    });
    let sparse_ms = time_ms(device, 2, repeats, || {
        finish(sparse_conv2d(
            x.clone(),
            weight.clone(),
            &index,
            stride,
            padding,
        ))
    });
    LayerTiming {
        shape: shape.clone(),
        density: nnz as f64 / active.len() as f64,
        nnz,
        dense_ms,
        sparse_ms,
    }
}
