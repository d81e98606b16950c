//! v6 of the sparse convolution's CPU loops: v5, with the stride-2 convolutions' rows
//! taken as pairs of input columns.
//!
//! v3 (which v5 runs for strided convolutions) indexes a stride-2 row element by element,
//! `input[start + 2 * j]`, bounds-checked each time, so the loop stays scalar, and its
//! weight gradient adds a strided row into one running sum, each addition waiting on the
//! one before. Here a row's inputs are read as `chunks_exact(2)` (the first of each pair),
//! which the compiler vectorises, and the weight gradient sums element j of a row into
//! lane j % 8. The plane loops around these rows are v3's. ResNets' downsampling
//! convolutions (3x3 and 1x1, stride 2) are the only strided ones; every other geometry
//! runs v5.
//!
//! Each output still takes its entries in v1's order, one addition each, so the forward
//! pass and the input gradient are v1's bits; the weight gradient sums each image in 8 f32
//! lanes and the images in f64 (v1's to rounding). No sum depends on the thread count.

use super::ConvGeometry;
use crate::kernels::wide::wide_fn;

/// Whether `g`'s rows run here: input columns two apart for neighbouring output columns.
pub(super) fn runs(g: &ConvGeometry) -> bool {
    g.stride[1] == 2
}

/// The `2 * len - 1` values from `start` that a row of `len` outputs reads every other one
/// of (or writes, in the input gradient): `len - 1` full pairs, then the last value.
pub(super) fn row_span(len: usize, start: usize) -> std::ops::Range<usize> {
    start..start + 2 * len - 1
}

wide_fn! {
/// `out[j] += weight * input[2 * j]` over a row (`input` is its `row_span`).
pub(super) fn axpy(weight: f32, input: &[f32], out: &mut [f32]) {
    let pairs = input.chunks_exact(2);
    let last = pairs.remainder()[0];
    let (row, end) = out.split_at_mut(out.len() - 1);
    for (y, p) in row.iter_mut().zip(pairs) {
        *y += weight * p[0];
    }
    end[0] += weight * last;
}
}

wide_fn! {
/// `dx[2 * j] += weight * dy[j]` over a row (`dx` is its `row_span`).
pub(super) fn scatter(weight: f32, dy: &[f32], dx: &mut [f32]) {
    let mut pairs = dx.chunks_exact_mut(2);
    for (p, &d) in pairs.by_ref().zip(dy) {
        p[0] += weight * d;
    }
    pairs.into_remainder()[0] += weight * dy[dy.len() - 1];
}
}

wide_fn! {
/// `lanes[j % 8] += a[j] * b[2 * j]` over a row (`b` is its `row_span`).
pub(super) fn dot(lanes: &mut [f32; 8], a: &[f32], b: &[f32]) {
    // Whole eights whose 16 inputs all lie in `b` (its last pair lacks a second value).
    let eights = (a.len() - 1) / 8;
    for (p, q) in a.chunks_exact(8).zip(b.chunks_exact(16)).take(eights) {
        for k in 0..8 {
            lanes[k] += p[k] * q[2 * k];
        }
    }
    for j in eights * 8..a.len() {
        lanes[j % 8] += a[j] * b[2 * j];
    }
}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rows_pairs_are_every_other_value_of_its_span() {
        for len in [1usize, 4, 7, 8, 9, 16, 17] {
            let a: Vec<f32> = (0..len).map(|j| j as f32 + 1.0).collect();
            let b: Vec<f32> = (0..2 * len - 1).map(|j| (j as f32) * 0.5 - 3.0).collect();
            let mut lanes = [0.0f32; 8];
            dot(&mut lanes, &a, &b);
            let want: f32 = (0..len).map(|j| a[j] * b[2 * j]).sum();
            assert!(
                (lanes.iter().sum::<f32>() - want).abs() < 1e-3,
                "row of {len}"
            );

            let mut out = vec![1.0f32; len];
            axpy(2.0, &b, &mut out);
            assert!(
                (0..len).all(|j| out[j] == 1.0 + 2.0 * b[2 * j]),
                "row of {len}"
            );

            let mut dx = vec![1.0f32; 2 * len - 1];
            scatter(2.0, &a, &mut dx);
            for (i, v) in dx.iter().enumerate() {
                let want = if i % 2 == 0 {
                    1.0 + 2.0 * a[i / 2]
                } else {
                    1.0
                };
                assert_eq!(*v, want, "row of {len}, value {i}");
            }
        }
    }
}
