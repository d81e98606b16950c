//! Flex: the fused DyReLU's CPU loops, one thread per image-and-channel plane of the
//! `[N, C, H, W]` activation, so no result depends on the thread count.

use super::FusedDyReluBackend;
use crate::kernels::flex_tensor::{f32_elements, tensor};
use crate::kernels::parallel;
use burn::backend::{Flex, TensorMetadata, tensor::FloatTensor};

/// (planes, plane size) of an `[N, C, ...]` activation.
fn planes(x: &FloatTensor<Flex>) -> (usize, usize) {
    let shape = x.shape();
    let planes = shape[0] * shape[1];
    (planes, shape.num_elements() / planes.max(1))
}

/// Whether the first piece wins at `v` (ties and NaN included, as `max_pair` decides).
#[inline]
fn first_wins(v: f32, c: &[f32]) -> bool {
    let (first, second) = (c[0] * v + c[2], c[1] * v + c[3]);
    second.partial_cmp(&first) != Some(std::cmp::Ordering::Greater)
}

impl FusedDyReluBackend for Flex {
    fn dyrelu_apply(x: FloatTensor<Self>, coef: FloatTensor<Self>) -> FloatTensor<Self> {
        let shape = x.shape();
        let (_, plane) = planes(&x);
        let (xs, cs) = (f32_elements(&x), f32_elements(&coef));
        let out = parallel::mapped_chunks(xs.len(), plane, |p| {
            let c = &cs[p * 4..p * 4 + 4];
            xs[p * plane..(p + 1) * plane].iter().map(move |&v| {
                let (first, second) = (c[0] * v + c[2], c[1] * v + c[3]);
                if first < second { second } else { first }
            })
        });
        tensor(out, shape)
    }

    fn dyrelu_input_grad(
        x: FloatTensor<Self>,
        coef: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let shape = x.shape();
        let (_, plane) = planes(&x);
        let (xs, cs, gs) = (
            f32_elements(&x),
            f32_elements(&coef),
            f32_elements(&grad_out),
        );
        let out = parallel::mapped_chunks(xs.len(), plane, |p| {
            let c = &cs[p * 4..p * 4 + 4];
            let range = p * plane..(p + 1) * plane;
            xs[range.clone()]
                .iter()
                .zip(&gs[range])
                .map(move |(&v, &g)| g * if first_wins(v, c) { c[0] } else { c[1] })
        });
        tensor(out, shape)
    }

    fn dyrelu_coef_grad(
        x: FloatTensor<Self>,
        coef: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let coef_shape = coef.shape();
        let (count, plane) = planes(&x);
        let (xs, cs, gs) = (
            f32_elements(&x),
            f32_elements(&coef),
            f32_elements(&grad_out),
        );
        let mut out = vec![0.0f32; count * 4];
        parallel::for_each_chunk(&mut out, 4, |p, o| {
            let c = &cs[p * 4..p * 4 + 4];
            let range = p * plane..(p + 1) * plane;
            // [d a1, d a2, d b1, d b2], summed in f64: a plane is up to 32x32 values.
            let mut sums = [0.0f64; 4];
            for (&v, &g) in xs[range.clone()].iter().zip(&gs[range]) {
                let piece = usize::from(!first_wins(v, c));
                sums[piece] += (g * v) as f64;
                sums[2 + piece] += g as f64;
            }
            for (o, s) in o.iter_mut().zip(sums) {
                *o = s as f32;
            }
        });
        tensor(out, coef_shape)
    }
}
