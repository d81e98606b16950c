//! Flex: the fused BatchNorm's CPU loops, per channel over the activation as it lies
//! (`[N, C, H, W]`: channel c is N planes of H x W, one per image). Sums accumulate per
//! plane in f32 lanes and across planes in f64; every channel and plane is one thread's
//! work, so the results do not depend on the thread count.

use super::FusedNormBackend;
use crate::kernels::flex_tensor::{f32_elements, tensor};
use crate::kernels::parallel;
use burn::backend::{Flex, TensorMetadata, tensor::FloatTensor};
use burn::tensor::Shape;

/// (images, channels, plane size) of an `[N, C, ...]` tensor.
fn dims(t: &FloatTensor<Flex>) -> (usize, usize, usize) {
    let shape = t.shape();
    let (n, c) = (shape[0], shape[1]);
    (n, c, shape.num_elements() / (n * c).max(1))
}

/// `f(plane)` summed over channel `c`'s planes, in f64.
fn channel_sum(
    x: &[f32],
    n: usize,
    c: usize,
    channels: usize,
    plane: usize,
    f: impl Fn(&[f32], usize) -> f64,
) -> f64 {
    (0..n)
        .map(|i| {
            let start = (i * channels + c) * plane;
            f(&x[start..start + plane], start)
        })
        .sum()
}

/// Sum of `g(k)` for k in 0..len, in 8 f32 lanes.
fn lanes(len: usize, g: impl Fn(usize) -> f32) -> f64 {
    let mut acc = [0.0f32; 8];
    let full = len / 8 * 8;
    for base in (0..full).step_by(8) {
        for (k, a) in acc.iter_mut().enumerate() {
            *a += g(base + k);
        }
    }
    let rest: f32 = (full..len).map(&g).sum();
    acc.iter().map(|&a| a as f64).sum::<f64>() + rest as f64
}

/// Mean and inverse standard deviation per channel from a `[2, C]` stats buffer.
fn mean_inv_std(stats: &[f32], channels: usize, epsilon: f64) -> (Vec<f32>, Vec<f32>) {
    let mean = stats[..channels].to_vec();
    let inv_std = stats[channels..2 * channels]
        .iter()
        .map(|&v| (1.0 / (v as f64 + epsilon).sqrt()) as f32)
        .collect();
    (mean, inv_std)
}

impl FusedNormBackend for Flex {
    fn norm_stats(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let (n, channels, plane) = dims(&x);
        let xs = f32_elements(&x);
        let count = (n * plane) as f64;
        let ids: Vec<usize> = (0..channels).collect();
        // Two passes per channel (mean, then the squared deviations), as Burn computes it.
        let per_channel = parallel::map(&ids, |&c| {
            let mean =
                channel_sum(&xs, n, c, channels, plane, |p, _| lanes(p.len(), |k| p[k])) / count;
            let m = mean as f32;
            let var = channel_sum(&xs, n, c, channels, plane, |p, _| {
                lanes(p.len(), |k| (p[k] - m) * (p[k] - m))
            }) / count;
            (mean as f32, var as f32)
        });
        let mut out = vec![0.0f32; 2 * channels];
        for (c, (mean, var)) in per_channel.into_iter().enumerate() {
            out[c] = mean;
            out[channels + c] = var;
        }
        tensor(out, Shape::new([2, channels]))
    }

    fn norm_apply(
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        let (_, channels, plane) = dims(&x);
        let shape = x.shape();
        let (xs, gamma, beta) = (f32_elements(&x), f32_elements(&gamma), f32_elements(&beta));
        let (mean, inv_std) = mean_inv_std(&f32_elements(&stats), channels, epsilon);
        // y = x * scale + shift per channel.
        let scale: Vec<f32> = (0..channels).map(|c| gamma[c] * inv_std[c]).collect();
        let shift: Vec<f32> = (0..channels)
            .map(|c| beta[c] - mean[c] * scale[c])
            .collect();
        let mut y = vec![0.0f32; xs.len()];
        parallel::for_each_chunk(&mut y, plane, |i, out| {
            let c = i % channels;
            let (s, t) = (scale[c], shift[c]);
            for (o, v) in out.iter_mut().zip(&xs[i * plane..(i + 1) * plane]) {
                *o = v * s + t;
            }
        });
        tensor(y, shape)
    }

    fn norm_param_grads(
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        let (n, channels, plane) = dims(&x);
        let (xs, dy) = (f32_elements(&x), f32_elements(&grad_out));
        let (mean, inv_std) = mean_inv_std(&f32_elements(&stats), channels, epsilon);
        let ids: Vec<usize> = (0..channels).collect();
        let sums = parallel::map(&ids, |&c| {
            let m = mean[c];
            let dbeta = channel_sum(&dy, n, c, channels, plane, |p, _| lanes(p.len(), |k| p[k]));
            let dxhat = channel_sum(&dy, n, c, channels, plane, |p, start| {
                let xp = &xs[start..start + p.len()];
                lanes(p.len(), |k| p[k] * (xp[k] - m))
            });
            ((dxhat * inv_std[c] as f64) as f32, dbeta as f32)
        });
        let mut out = vec![0.0f32; 2 * channels];
        for (c, (dgamma, dbeta)) in sums.into_iter().enumerate() {
            out[c] = dgamma;
            out[channels + c] = dbeta;
        }
        tensor(out, Shape::new([2, channels]))
    }

    fn norm_input_grad(
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        param_grads: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        let (n, channels, plane) = dims(&x);
        let shape = x.shape();
        let (xs, dy, gamma) = (
            f32_elements(&x),
            f32_elements(&grad_out),
            f32_elements(&gamma),
        );
        let (mean, inv_std) = mean_inv_std(&f32_elements(&stats), channels, epsilon);
        let grads = f32_elements(&param_grads);
        let count = (n * plane) as f32;
        // dx = scale (dy - dbeta / M - xhat dgamma / M), xhat = (x - mean) inv_std:
        // dx = a dy + b x + d per channel.
        let coef: Vec<(f32, f32, f32)> = (0..channels)
            .map(|c| {
                let a = gamma[c] * inv_std[c];
                let (dgamma, dbeta) = (grads[c], grads[channels + c]);
                let b = -a * inv_std[c] * dgamma / count;
                let d = -a * dbeta / count - b * mean[c];
                (a, b, d)
            })
            .collect();
        let mut dx = vec![0.0f32; xs.len()];
        parallel::for_each_chunk(&mut dx, plane, |i, out| {
            let (a, b, d) = coef[i % channels];
            let range = i * plane..(i + 1) * plane;
            for ((o, g), v) in out.iter_mut().zip(&dy[range.clone()]).zip(&xs[range]) {
                *o = a * g + b * v + d;
            }
        });
        tensor(dx, shape)
    }
}
