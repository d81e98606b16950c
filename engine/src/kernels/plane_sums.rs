//! Sums over the planes of an `[N, C, H, W]` activation, in a fixed order (so fixed bits
//! whatever the thread count), for the fused BatchNorm's and DyReLU's CPU loops.

use crate::kernels::parallel;

/// Two sums over a plane, of `f(a[k], b[k])`'s first and second halves, each in 8 f32
/// lanes (element k into lane k % 8; the elements after the last full eight into one
/// running sum) and totalled in f64. A fixed order, so fixed bits, over slices the
/// compiler sees whole: written over indices, the BatchNorm's sums were bounds-checked
/// element by element and stayed scalar (the book's "Where a CPU step goes").
pub(crate) fn lane_sums(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> (f32, f32)) -> (f64, f64) {
    assert_eq!(a.len(), b.len(), "summed side by side");
    let (mut first, mut second) = ([0.0f32; 8], [0.0f32; 8]);
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let (a_rest, b_rest) = (a8.remainder(), b8.remainder());
    for (p, q) in a8.zip(b8) {
        let (p, q): (&[f32; 8], &[f32; 8]) = (p.try_into().unwrap(), q.try_into().unwrap());
        for k in 0..8 {
            let (u, v) = f(p[k], q[k]);
            first[k] += u;
            second[k] += v;
        }
    }
    // The tail added one by one from -0.0, as `Iterator::sum` does.
    let (mut first_rest, mut second_rest) = (-0.0f32, -0.0f32);
    for (&p, &q) in a_rest.iter().zip(b_rest) {
        let (u, v) = f(p, q);
        first_rest += u;
        second_rest += v;
    }
    let total =
        |lanes: [f32; 8], rest: f32| lanes.iter().map(|&l| l as f64).sum::<f64>() + rest as f64;
    (total(first, first_rest), total(second, second_rest))
}

/// One sum over a plane, in `lane_sums`' order.
pub(crate) fn lane_sum(a: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    lane_sums(a, a, |v, _| (f(v), 0.0)).0
}

/// `f(k, plane)` for each of the `count` planes of `plane` elements that `x` holds, in
/// memory order (image by image, channel by channel), in parallel: each thread reads a
/// stretch of memory straight through. A channel's planes, one per image, lie `C` planes
/// apart: summed a channel at a time, each plane's first lines missed the cache and the
/// prefetcher started again.
pub(crate) fn per_plane<T: Send>(
    x: &[f32],
    count: usize,
    plane: usize,
    f: impl Fn(usize, &[f32]) -> T + Sync + Send,
) -> Vec<T> {
    assert_eq!(x.len(), count * plane, "{count} planes of {plane}");
    let planes: Vec<usize> = (0..count).collect();
    parallel::map(&planes, |&k| f(k, &x[k * plane..(k + 1) * plane]))
}
