//! Flex: the fused BatchNorm's CPU loops over the activation as it lies (`[N, C, H, W]`:
//! channel c is N planes of H x W, one per image, C planes apart). Every loop reads the
//! activation once, in memory order: the statistics take each plane's mean and squared
//! deviations while it is in cache, then combine each channel's planes in image order
//! (Chan's formula, in f64); the gradients' two sums likewise. With `relu`, the output is
//! `max(0, ·)` and the backward loops mask the incoming gradient where the output was not
//! positive, recomputing the normalised value from x rather than reading a second tensor.
//! Every plane is one thread's work and every channel's planes combine in one order, so
//! the results do not depend on the thread count.

use super::FusedNormBackend;
use crate::kernels::flex_tensor::{f32_elements, tensor};
use crate::kernels::parallel;
use crate::kernels::plane_sums::{lane_sum, lane_sums, per_plane};
use crate::kernels::wide::wide_fn;
use burn::backend::{Flex, TensorMetadata, tensor::FloatTensor};
use burn::tensor::Shape;

/// (images, channels, plane size) of an `[N, C, ...]` tensor.
fn dims(t: &FloatTensor<Flex>) -> (usize, usize, usize) {
    let shape = t.shape();
    let (n, c) = (shape[0], shape[1]);
    (n, c, shape.num_elements() / (n * c).max(1))
}

/// Per channel, the normalisation as `x * scale + shift`.
pub(crate) struct Affine {
    pub(crate) scale: Vec<f32>,
    pub(crate) shift: Vec<f32>,
    inv_std: Vec<f32>,
    mean: Vec<f32>,
}

impl Affine {
    /// From the `[2, C]` statistics (mean, biased variance) and gamma, beta.
    pub(crate) fn of(
        stats: &FloatTensor<Flex>,
        gamma: &FloatTensor<Flex>,
        beta: &FloatTensor<Flex>,
        epsilon: f64,
    ) -> Self {
        let (stats, gamma, beta) = (f32_elements(stats), f32_elements(gamma), f32_elements(beta));
        let channels = gamma.len();
        let mean = stats[..channels].to_vec();
        let inv_std: Vec<f32> = stats[channels..2 * channels]
            .iter()
            .map(|&v| (1.0 / (v as f64 + epsilon).sqrt()) as f32)
            .collect();
        let scale: Vec<f32> = (0..channels).map(|c| gamma[c] * inv_std[c]).collect();
        let shift = (0..channels)
            .map(|c| beta[c] - mean[c] * scale[c])
            .collect();
        Self {
            scale,
            shift,
            inv_std,
            mean,
        }
    }
}

/// A `[2, C]` tensor: the first of each channel's pair in row 0, the second in row 1.
fn two_rows(pairs: Vec<(f32, f32)>) -> FloatTensor<Flex> {
    let channels = pairs.len();
    let mut out = vec![0.0f32; 2 * channels];
    for (c, (first, second)) in pairs.into_iter().enumerate() {
        out[c] = first;
        out[channels + c] = second;
    }
    tensor(out, Shape::new([2, channels]))
}

/// The normalised value `v * s + t`, through the ReLU if there is one. The backward
/// loops decide "the ReLU passed this" with the same expression, so the same bits.
#[inline(always)]
fn output(v: f32, s: f32, t: f32, relu: bool) -> f32 {
    let y = v * s + t;
    if relu { y.max(0.0) } else { y }
}

wide_fn! {
/// `plane` normalised in place by channel scale `s` and shift `t`, through the ReLU if
/// `relu`: `norm_apply`'s values, for a kernel that holds the plane in cache already (the
/// sparse convolution's inference epilogue).
pub(crate) fn normalise_in_place(plane: &mut [f32], s: f32, t: f32, relu: bool) {
    // A copy of the loop for each case, so that neither tests `relu` per element.
    if relu {
        plane.iter_mut().for_each(|v| *v = output(*v, s, t, true));
    } else {
        plane.iter_mut().for_each(|v| *v = output(*v, s, t, false));
    }
}
}

wide_fn! {
/// `plane` normalised in place and added to `residual`, through the ReLU:
/// `norm_apply_add_relu`'s values.
pub(crate) fn normalise_add_relu_in_place(plane: &mut [f32], residual: &[f32], s: f32, t: f32) {
    assert_eq!(
        plane.len(),
        residual.len(),
        "a residual plane of the plane's size"
    );
    for (v, &r) in plane.iter_mut().zip(residual) {
        *v = residual_sum(*v, s, t, r).max(0.0);
    }
}
}

/// The incoming gradient `g` of an output computed from `v`, zero where a ReLU cut it.
#[inline(always)]
fn passed(g: f32, v: f32, s: f32, t: f32, relu: bool) -> f32 {
    if relu && v * s + t <= 0.0 { 0.0 } else { g }
}

/// The sum `v * s + t + r` of a residual block's end, before its ReLU: the forward pass
/// and the gradient's mask compute it alike.
#[inline(always)]
fn residual_sum(v: f32, s: f32, t: f32, r: f32) -> f32 {
    (v * s + t) + r
}

/// The residual a block's end adds, checked against the BatchNorm's input.
fn residual_of<'a>(
    x: &FloatTensor<Flex>,
    residual: &'a FloatTensor<Flex>,
) -> std::borrow::Cow<'a, [f32]> {
    assert_eq!(
        x.shape(),
        residual.shape(),
        "a residual of the BatchNorm's shape"
    );
    f32_elements(residual)
}

impl FusedNormBackend for Flex {
    fn norm_stats(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let (n, channels, plane) = dims(&x);
        let xs = f32_elements(&x);
        // Each plane's mean and sum of squared deviations (two passes over a plane in
        // cache), then merged plane by plane in image order: one pass over memory, as
        // exact as two.
        let moments = per_plane(&xs, n * channels, plane, |_, p| {
            let plane_mean = lane_sum(p, |v| v) / p.len() as f64;
            let pm = plane_mean as f32;
            (plane_mean, lane_sum(p, |v| (v - pm) * (v - pm)))
        });
        let size = plane as f64;
        let per_channel = (0..channels)
            .map(|c| {
                let (mut count, mut mean, mut m2) = (0.0f64, 0.0f64, 0.0f64);
                for image in 0..n {
                    let (plane_mean, plane_m2) = moments[image * channels + c];
                    let total = count + size;
                    let delta = plane_mean - mean;
                    mean += delta * size / total;
                    m2 += plane_m2 + delta * delta * count * size / total;
                    count = total;
                }
                (mean as f32, (m2 / count.max(1.0)) as f32)
            })
            .collect();
        two_rows(per_channel)
    }

    fn norm_apply(
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> FloatTensor<Self> {
        let (_, channels, plane) = dims(&x);
        let shape = x.shape();
        let xs = f32_elements(&x);
        let affine = Affine::of(&stats, &gamma, &beta, epsilon);
        let y = parallel::mapped_chunks(xs.len(), plane, |i| {
            let c = i % channels;
            let (s, t) = (affine.scale[c], affine.shift[c]);
            xs[i * plane..(i + 1) * plane]
                .iter()
                .map(move |&v| output(v, s, t, relu))
        });
        tensor(y, shape)
    }

    fn norm_param_grads(
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> FloatTensor<Self> {
        let (n, channels, plane) = dims(&x);
        let (xs, dy) = (f32_elements(&x), f32_elements(&grad_out));
        let affine = Affine::of(&stats, &gamma, &beta, epsilon);
        assert_eq!(xs.len(), dy.len(), "a gradient of the BatchNorm's shape");
        let plane_sums = per_plane(&dy, n * channels, plane, |k, g| {
            let c = k % channels;
            let xp = &xs[k * plane..(k + 1) * plane];
            let (m, s, t) = (affine.mean[c], affine.scale[c], affine.shift[c]);
            let sums = |relu| {
                lane_sums(g, xp, |d, v| {
                    let d = passed(d, v, s, t, relu);
                    (d, d * (v - m))
                })
            };
            // A copy of the loop for each case, so that neither tests `relu` per element.
            if relu { sums(true) } else { sums(false) }
        });
        let sums = (0..channels)
            .map(|c| {
                let (mut dbeta, mut dxhat) = (0.0f64, 0.0f64);
                for image in 0..n {
                    let (db, dx) = plane_sums[image * channels + c];
                    dbeta += db;
                    dxhat += dx;
                }
                ((dxhat * affine.inv_std[c] as f64) as f32, dbeta as f32)
            })
            .collect();
        two_rows(sums)
    }

    fn norm_input_grad(
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        param_grads: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> FloatTensor<Self> {
        let (n, channels, plane) = dims(&x);
        let shape = x.shape();
        let (xs, dy) = (f32_elements(&x), f32_elements(&grad_out));
        let affine = Affine::of(&stats, &gamma, &beta, epsilon);
        let grads = f32_elements(&param_grads);
        let count = (n * plane) as f32;
        // dx = scale (dy - dbeta / M - xhat dgamma / M), xhat = (x - mean) inv_std:
        // dx = a dy + b x + d per channel (dy masked by the ReLU, if any).
        let coef: Vec<(f32, f32, f32)> = (0..channels)
            .map(|c| {
                let a = affine.scale[c];
                let (dgamma, dbeta) = (grads[c], grads[channels + c]);
                let b = -a * affine.inv_std[c] * dgamma / count;
                let d = -a * dbeta / count - b * affine.mean[c];
                (a, b, d)
            })
            .collect();
        let dx = parallel::mapped_chunks(xs.len(), plane, |i| {
            let c = i % channels;
            let (a, b, d) = coef[c];
            let (s, t) = (affine.scale[c], affine.shift[c]);
            let range = i * plane..(i + 1) * plane;
            dy[range.clone()]
                .iter()
                .zip(&xs[range])
                .map(move |(&g, &v)| a * passed(g, v, s, t, relu) + b * v + d)
        });
        tensor(dx, shape)
    }

    fn norm_apply_add_relu(
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        let (_, channels, plane) = dims(&x);
        let shape = x.shape();
        let (xs, rs) = (f32_elements(&x), residual_of(&x, &residual));
        let affine = Affine::of(&stats, &gamma, &beta, epsilon);
        let y = parallel::mapped_chunks(xs.len(), plane, |i| {
            let c = i % channels;
            let (s, t) = (affine.scale[c], affine.shift[c]);
            let range = i * plane..(i + 1) * plane;
            xs[range.clone()]
                .iter()
                .zip(&rs[range])
                .map(move |(&v, &r)| residual_sum(v, s, t, r).max(0.0))
        });
        tensor(y, shape)
    }

    fn norm_add_relu_grad(
        x: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        let (_, channels, plane) = dims(&x);
        let shape = x.shape();
        let (xs, rs, dy) = (
            f32_elements(&x),
            residual_of(&x, &residual),
            f32_elements(&grad_out),
        );
        let affine = Affine::of(&stats, &gamma, &beta, epsilon);
        let g = parallel::mapped_chunks(xs.len(), plane, |i| {
            let c = i % channels;
            let (s, t) = (affine.scale[c], affine.shift[c]);
            let range = i * plane..(i + 1) * plane;
            let inputs = xs[range.clone()].iter().zip(&rs[range.clone()]);
            inputs.zip(&dy[range]).map(move |((&v, &r), &d)| {
                if residual_sum(v, s, t, r) > 0.0 {
                    d
                } else {
                    0.0
                }
            })
        });
        tensor(g, shape)
    }
}
