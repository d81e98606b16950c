//! Timing one layer's dense and sparse convolution on a device: what `run.kernels = "auto"`
//! chooses by, and what the kernel lab and `sparselab bench` print.

use super::sparse_conv::{conv_out_len, sparse_conv2d};
use super::sparse_index::{SparseIndex, WeightLayout};
use crate::stats::mean_std;
use burn::tensor::{Device, Distribution, Tensor};
use web_time::Instant;

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
    let bench = LayerBench::new(shape, batch, device, backward);
    let nnz = active.iter().filter(|a| **a).count();
    LayerTiming {
        shape: shape.clone(),
        density: nnz as f64 / active.len() as f64,
        nnz,
        dense_ms: bench.dense_ms(active, repeats),
        sparse_ms: bench.sparse_ms(active, repeats),
    }
}

/// One layer's input and weight on a device, for timing it dense and sparse at any mask.
pub struct LayerBench {
    shape: ConvShape,
    device: Device,
    backward: bool,
    x: Tensor<4>,
    weight: Tensor<4>,
}

impl LayerBench {
    pub fn new(shape: &ConvShape, batch: usize, device: &Device, backward: bool) -> Self {
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
        Self {
            shape: shape.clone(),
            device: device.clone(),
            backward,
            x,
            weight,
        }
    }

    fn finish(&self, y: Tensor<4>) -> Option<Tensor<4>> {
        if self.backward {
            drop(y.sum().backward());
            None
        } else {
            Some(y)
        }
    }

    /// What a masked-dense library runs: conv of (weight * mask). Its time hardly depends on
    /// the mask.
    pub fn dense_ms(&self, active: &[bool], repeats: usize) -> (f64, f64) {
        let mask_values: Vec<f32> = active.iter().map(|&a| f32::from(u8::from(a))).collect();
        let mask = Tensor::<4>::from_data(
            burn::tensor::TensorData::new(mask_values, self.shape.weight),
            &self.device,
        );
        let masked = (self.weight.clone() * mask).detach();
        // A fresh leaf: every timed backward builds its graph from leaves.
        let masked = if self.backward {
            masked.require_grad()
        } else {
            masked
        };
        let (stride, padding) = ([self.shape.stride; 2], [self.shape.padding(); 2]);
        let options = burn::tensor::ops::ConvOptions::new(stride, padding, [1, 1], 1);
        time_ms(&self.device, 2, repeats, || {
            self.finish(burn::tensor::module::conv2d(
                self.x.clone(),
                masked.clone(),
                None,
                options.clone(),
            ))
        })
    }

    /// The sparse kernel over the index of `active`.
    pub fn sparse_ms(&self, active: &[bool], repeats: usize) -> (f64, f64) {
        let layout = WeightLayout::conv(self.shape.weight);
        let index = SparseIndex::new(layout, active).to_device(&self.device);
        let (stride, padding) = ([self.shape.stride; 2], [self.shape.padding(); 2]);
        time_ms(&self.device, 2, repeats, || {
            self.finish(sparse_conv2d(
                self.x.clone(),
                self.weight.clone(),
                &index,
                stride,
                padding,
            ))
        })
    }
}
