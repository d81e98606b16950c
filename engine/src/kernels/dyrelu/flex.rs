//! Flex: the fused DyReLU's CPU loops, one thread per image-and-channel plane of the
//! `[N, C, H, W]` activation, so no result depends on the thread count.

use super::FusedDyReluBackend;
use crate::kernels::flex_tensor::{f32_elements, tensor};
use crate::kernels::parallel;
use crate::kernels::plane_sums::{lane_sum, per_plane};
use ::wide::f32x4;
use burn::backend::{Flex, TensorMetadata, tensor::FloatTensor};
use burn::tensor::Shape;

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

/// A plane's `[d a1, d a2, d b1, d b2]`: the sums of `g * v` and of `g` where each piece
/// won. Each in 4 f32 lanes (element k into lane k % 4, the elements after the last full
/// four into one running sum), totalled in f64: a fixed order, so fixed bits. Written in
/// explicit 4-wide vectors (SSE natively, SIMD128 in the page): as plain Rust, with the
/// piece picked per element, the compiler compared and picked one element at a time
/// whatever the spelling (`if`, bit masks, products with 0 or 1).
fn piece_sums(xs: &[f32], gs: &[f32], c: &[f32]) -> [f64; 4] {
    assert_eq!(xs.len(), gs.len(), "summed side by side");
    let [c0, c1, c2, c3] = [c[0], c[1], c[2], c[3]].map(f32x4::splat);
    let zero = f32x4::ZERO;
    let (mut a1, mut a2, mut b1, mut b2) = (zero, zero, zero, zero);
    let (x4, g4) = (xs.chunks_exact(4), gs.chunks_exact(4));
    let (x_rest, g_rest) = (x4.remainder(), g4.remainder());
    for (p, q) in x4.zip(g4) {
        let (v, g): ([f32; 4], [f32; 4]) = (p.try_into().unwrap(), q.try_into().unwrap());
        let (v, g) = (f32x4::from(v), f32x4::from(g));
        // `first_wins`' test: the second piece wins where it is strictly greater.
        let second = (c1 * v + c3).simd_gt(c0 * v + c2);
        let gv = g * v;
        a1 += second.select(zero, gv);
        a2 += second.select(gv, zero);
        b1 += second.select(zero, g);
        b2 += second.select(g, zero);
    }
    let mut rest = [-0.0f32; 4];
    for (&v, &g) in x_rest.iter().zip(g_rest) {
        let piece = usize::from(!first_wins(v, c));
        rest[piece] += g * v;
        rest[2 + piece] += g;
    }
    let total = |lanes: f32x4, rest: f32| {
        lanes.to_array().iter().map(|&l| l as f64).sum::<f64>() + rest as f64
    };
    [
        total(a1, rest[0]),
        total(a2, rest[1]),
        total(b1, rest[2]),
        total(b2, rest[3]),
    ]
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
            let sums = piece_sums(&xs[range.clone()], &gs[range], c);
            for (o, s) in o.iter_mut().zip(sums) {
                *o = s as f32;
            }
        });
        tensor(out, coef_shape)
    }

    fn plane_means(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let shape = x.shape();
        let (count, plane) = planes(&x);
        let xs = f32_elements(&x);
        let means = per_plane(&xs, count, plane, |_, p| {
            (lane_sum(p, |v| v) / plane as f64) as f32
        });
        tensor(means, Shape::new([shape[0], shape[1]]))
    }

    fn plane_means_grad(
        grad_out: FloatTensor<Self>,
        height: usize,
        width: usize,
    ) -> FloatTensor<Self> {
        let shape = grad_out.shape();
        let gs = f32_elements(&grad_out);
        let plane = height * width;
        // As Burn's mean: the gradient times 1 / (H W), rounded to f32 first.
        let scale = (1.0 / plane as f64) as f32;
        let out = parallel::mapped_chunks(gs.len() * plane, plane, |p| {
            std::iter::repeat_n(gs[p] * scale, plane)
        });
        tensor(out, Shape::new([shape[0], shape[1], height, width]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `piece_sums` against one f64 sum per coefficient, picked element by element with
    /// `first_wins`, over lengths with and without a partial last vector, with ties (v = 0
    /// where b1 = b2) and both pieces winning somewhere.
    #[test]
    fn piece_sums_match_a_sum_picked_per_element() {
        let mut rng = crate::rng::Rng::new(3);
        for c in [
            [1.0f32, 0.0, 0.0, 0.0],
            [0.9, 0.2, 0.1, -0.3],
            [1.0, 1.0, 0.5, 0.5],
        ] {
            for len in [0usize, 3, 4, 23, 1024] {
                let xs: Vec<f32> = (0..len)
                    .map(|i| {
                        if i % 7 == 0 {
                            0.0
                        } else {
                            rng.next_f32() * 4.0 - 2.0
                        }
                    })
                    .collect();
                let gs: Vec<f32> = (0..len).map(|_| rng.next_f32() - 0.5).collect();
                let mut want = [0.0f64; 4];
                for (&v, &g) in xs.iter().zip(&gs) {
                    let piece = usize::from(!first_wins(v, &c));
                    want[piece] += (g * v) as f64;
                    want[2 + piece] += g as f64;
                }
                let got = piece_sums(&xs, &gs, &c);
                for (k, (g, w)) in got.iter().zip(want).enumerate() {
                    assert!(
                        (g - w).abs() < 1e-5,
                        "c {c:?}, length {len}, sum {k}: {g} vs {w}"
                    );
                }
            }
        }
    }
}
