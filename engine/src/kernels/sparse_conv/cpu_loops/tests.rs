//! The loop versions against v1 (outputs, input gradients and weight gradients, on
//! every geometry and with both copies of the innermost loops), and their helpers.

use super::*;
use crate::kernels::sparse_conv::conv_out_len;
use crate::kernels::sparse_index::WeightLayout;

/// Small deterministic pseudo-random values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(2862933555777941757)
        .wrapping_add(3037000493);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0
        })
        .collect()
}

/// A mask over `l` keeping the weights whose value (`values(.., seed)`) is above
/// `above`, none of them in the (output, input) channels `skip` names.
fn random_mask(
    l: WeightLayout,
    seed: u64,
    above: f32,
    skip: impl Fn(usize, usize) -> bool,
) -> Vec<bool> {
    values(l.numel(), seed)
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let (oc, ic) = (i / (l.in_channels * l.taps), i / l.taps % l.in_channels);
            *v > above && !skip(oc, ic)
        })
        .collect()
}

fn bits(values: Vec<f32>) -> Vec<u32> {
    values.into_iter().map(f32::to_bits).collect()
}

fn geometry(size: usize, kernel: usize, stride: usize, padding: usize) -> ConvGeometry {
    shaped(size, size + 1, kernel, stride, padding)
}

/// Input planes of `h` x `w`.
fn shaped(h: usize, w: usize, kernel: usize, stride: usize, padding: usize) -> ConvGeometry {
    let dims = [6, 5, kernel, kernel];
    ConvGeometry {
        batch: 3,
        in_h: h,
        in_w: w,
        out_h: conv_out_len(h, kernel, stride, padding),
        out_w: conv_out_len(w, kernel, stride, padding),
        kernel: [kernel, kernel],
        stride: [stride, stride],
        padding: [padding, padding],
        layout: WeightLayout::conv(dims),
        weight_shape: dims,
        nnz: 0,
        weight_grad: Default::default(),
    }
}

#[test]
fn inside_is_the_range_that_the_per_position_test_accepts() {
    for (out_len, in_len, stride, padding, tap) in [
        (9usize, 9usize, 1usize, 1usize, 0usize),
        (5, 9, 2, 1, 2),
        (4, 8, 2, 0, 0),
        (5, 10, 2, 2, 4),
        (3, 3, 1, 1, 2),
    ] {
        let accepted: Vec<usize> = (0..out_len)
            .filter(|&o| {
                (o * stride + tap)
                    .checked_sub(padding)
                    .is_some_and(|i| i < in_len)
            })
            .collect();
        let (lo, hi) = inside(out_len, in_len, stride, padding, tap);
        assert_eq!((lo..hi).collect::<Vec<_>>(), accepted);
    }
}

#[test]
fn v8_runs_v4_on_small_strided_planes_only() {
    // Output planes: 5x5, 16x16 (1x1 kernel, 31x32 input), 16x17 and 17x18 strided;
    // 9x10 and 4x5 unstrided.
    let picked = [
        (9, 3, 2, 1),
        (31, 1, 2, 0),
        (32, 3, 2, 1),
        (34, 3, 2, 1),
        (9, 3, 1, 1),
        (4, 3, 1, 1),
    ]
    .map(|(size, kernel, stride, padding)| v8_loops(&geometry(size, kernel, stride, padding)));
    use LoopVersion::{V4, V7};
    assert_eq!(picked, [V4, V4, V7, V7, V7, V7]);
}

#[test]
fn every_version_matches_v1_on_every_geometry() {
    with_both_copies_of_the_inner_loops(every_version_matches_v1);
}

/// `check`, then once more with the baseline copies of the innermost loops, which a
/// machine with AVX2 would otherwise never run.
fn with_both_copies_of_the_inner_loops(check: fn()) {
    check();
    crate::kernels::wide::set_avx2_off(true);
    let baseline = std::panic::catch_unwind(check);
    crate::kernels::wide::set_avx2_off(false);
    if let Err(failure) = baseline {
        std::panic::resume_unwind(failure);
    }
}

fn every_version_matches_v1() {
    // Input planes h x w, kernel, stride, padding.
    for (case, &(h, width, kernel, stride, padding)) in [
        (9, 10, 3, 1, 1),
        (9, 10, 3, 2, 1),
        (8, 9, 1, 2, 0),
        (10, 11, 5, 2, 2),
        (4, 5, 3, 1, 1),
        (8, 9, 1, 1, 0),
        (7, 8, 5, 1, 2),
        // Rows of 17 outputs: v6's weight gradient runs its 8-lane loop and a tail.
        (34, 35, 3, 2, 1),
        // Planes of 16 and 64 values, which v10 sums whole, and of 256, which it
        // leaves to v9.
        (4, 4, 3, 1, 1),
        (8, 8, 3, 1, 1),
        (8, 8, 1, 1, 0),
        (16, 16, 3, 1, 1),
        // Even inputs at stride 2, which v11 splits by phase: outputs of 16 and 64 values
        // (summed whole), 256 and 25 (by runs), 6x5, and a 1x1 shortcut.
        (8, 8, 3, 2, 1),
        (16, 16, 3, 2, 1),
        (32, 32, 3, 2, 1),
        (10, 10, 5, 2, 2),
        (12, 10, 3, 2, 1),
        (16, 16, 1, 2, 0),
        // Even kernels, whose taps v11 also maps to a shift of at most one.
        (8, 8, 2, 2, 0),
        (12, 12, 4, 2, 1),
    ]
    .iter()
    .enumerate()
    {
        let g = shaped(h, width, kernel, stride, padding);
        let l = g.layout;
        let seed = case as u64 * 10;
        // Output channel 0 and input channel 1 without a weight: planes with no terms,
        // in the forward pass and in the input gradient.
        let active = random_mask(l, seed, 0.2, |oc, ic| oc == 0 || ic == 1);
        let index = SparseIndex::new(l, &active);
        let (rows, cols) = (IndexList::rows(&index), IndexList::cols(&index));
        // A quarter of the inputs exactly zero, as after a ReLU: a negative weight times
        // +0.0 is -0.0, which v1's zero-started sums turn into +0.0.
        let x: Vec<f32> = values(g.batch * l.in_channels * g.in_h * g.in_w, seed + 1)
            .into_iter()
            .map(|v| if v < -0.5 { 0.0 } else { v })
            .collect();
        let w = values(l.numel(), seed + 2);
        let dy: Vec<f32> = values(g.batch * l.out_channels * g.out_h * g.out_w, seed + 3)
            .into_iter()
            .map(|v| if v < -0.5 { 0.0 } else { v })
            .collect();
        let what = format!("{h}x{width}, kernel {kernel}, stride {stride}, padding {padding}");
        let d1 = weight_grad(LoopVersion::V1, &g, &x, &dy, rows);
        // v9's weight gradient is v6's dots, decoded once: v8's (v6's or v4's) bits.
        assert_eq!(
            weight_grad(LoopVersion::V8, &g, &x, &dy, rows),
            weight_grad(LoopVersion::V9, &g, &x, &dy, rows),
            "v9's weight gradient, {what}"
        );
        // A finish that depends on the plane's number and every value in it.
        let finish = |slab: usize, plane: &mut [f32]| {
            let first = plane[0];
            for v in plane.iter_mut() {
                *v = *v * 0.5 + first + slab as f32;
            }
        };
        let finished = forward_finished(LoopVersion::V1, &g, &x, &w, rows, &finish);
        let plane_len = g.out_h * g.out_w;
        let mut expected = forward(LoopVersion::V1, &g, &x, &w, rows);
        for (slab, plane) in expected.chunks_mut(plane_len).enumerate() {
            finish(slab, plane);
        }
        assert_eq!(finished, expected, "v1's finished forward, {what}");
        for v in &LoopVersion::ALL[1..] {
            let v = *v;
            let what = format!("{}, {what}", v.name());
            // The same additions in the same order: the same bits (compared as bits,
            // so that a -0.0 for a +0.0 fails too).
            assert_eq!(
                bits(forward(LoopVersion::V1, &g, &x, &w, rows)),
                bits(forward(v, &g, &x, &w, rows)),
                "forward, {what}"
            );
            assert_eq!(
                bits(finished.clone()),
                bits(forward_finished(v, &g, &x, &w, rows, &finish)),
                "finished forward, {what}"
            );
            assert_eq!(
                bits(input_grad(LoopVersion::V1, &g, &dy, &w, cols)),
                bits(input_grad(v, &g, &dy, &w, cols)),
                "input gradient, {what}"
            );
            let d2 = weight_grad(v, &g, &x, &dy, rows);
            for (i, (a, b)) in d1.iter().zip(&d2).enumerate() {
                assert!(
                    (a - b).abs() < 1e-4,
                    "weight gradient {i}: {a} vs {b}, {what}"
                );
                if !active[i] {
                    assert_eq!(*b, 0.0, "pruned weight {i} got a gradient, {what}");
                }
            }
        }
    }
}

#[test]
fn v11_splits_even_stride_2_inputs_only() {
    let runs = [
        (8, 8, 3, 2, 1),
        (32, 32, 3, 2, 1),
        (16, 16, 1, 2, 0),
        (10, 10, 5, 2, 2),
        (9, 9, 3, 2, 1),
        (8, 9, 1, 2, 0),
        (8, 8, 3, 1, 1),
        // A 7x7 kernel reads two rows away from its phase plane.
        (14, 14, 7, 2, 3),
    ]
    .map(|(h, w, kernel, stride, padding)| phased::runs(&shaped(h, w, kernel, stride, padding)));
    assert_eq!(runs, [true, true, true, true, false, false, false, false]);
}

#[test]
fn v11_never_lets_a_stale_phase_plane_reach_an_output() {
    // Phase planes no weight reads keep whatever an earlier call left in each thread's
    // buffer. Fill them with NaN (every weight active, so every plane is written), then
    // run a sparse layer: only masked positions may see the NaN, and they must add +0.0.
    let mut g = shaped(8, 8, 3, 2, 1);
    g.batch = 64;
    let l = g.layout;
    let full = SparseIndex::new(l, &vec![true; l.numel()]);
    let nan = vec![f32::NAN; g.batch * l.in_channels * g.in_h * g.in_w];
    let w = values(l.numel(), 5);
    forward(LoopVersion::V11, &g, &nan, &w, IndexList::rows(&full));
    // One active weight per output channel, each reading input channel 0 at a corner tap.
    let active: Vec<bool> = (0..l.numel())
        .map(|i| i % (l.in_channels * 9) == 0)
        .collect();
    let sparse = SparseIndex::new(l, &active);
    let list = IndexList::rows(&sparse);
    let x = values(nan.len(), 6);
    assert_eq!(
        bits(forward(LoopVersion::V1, &g, &x, &w, list)),
        bits(forward(LoopVersion::V11, &g, &x, &w, list)),
    );
}

#[test]
fn a_plane_started_by_a_negative_weight_on_zeros_holds_plus_zero() {
    // One active weight, negative, on inputs that are all +0.0: each product is -0.0,
    // which v1 adds to its zero start and so stores as +0.0. v11 writes the first term
    // instead of adding it, and must store +0.0 too, in the forward pass and the input
    // gradient, on planes of 256 values (its first-term path), reached by a stride-1 layer
    // and by a stride-2 layer's phase planes.
    for g in [shaped(32, 32, 3, 2, 1), shaped(16, 16, 3, 1, 1)] {
        let l = g.layout;
        let centre = l.flat(2, 3, 4);
        let active: Vec<bool> = (0..l.numel()).map(|i| i == centre).collect();
        let index = SparseIndex::new(l, &active);
        let (rows, cols) = (IndexList::rows(&index), IndexList::cols(&index));
        let w = vec![-1.0f32; l.numel()];
        let x = vec![0.0f32; g.batch * l.in_channels * g.in_h * g.in_w];
        let dy = vec![0.0f32; g.batch * l.out_channels * g.out_h * g.out_w];
        let stride = g.stride[0];
        let forward_bits = bits(forward(LoopVersion::V11, &g, &x, &w, rows));
        assert!(
            forward_bits.iter().all(|&b| b == 0),
            "stride {stride}, forward: a -0.0 stored"
        );
        let dx_bits = bits(input_grad(LoopVersion::V11, &g, &dy, &w, cols));
        assert!(
            dx_bits.iter().all(|&b| b == 0),
            "stride {stride}, input gradient: a -0.0 stored"
        );
    }
}

/// A block's two convolutions: `[6, 5, k, k]` at `stride` on input planes of `size` x
/// `size`, then `[4, 6, k, k]` at stride 1 on its output.
fn block_pair(
    size: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> (ConvGeometry, ConvGeometry) {
    let first = shaped(size, size, kernel, stride, padding);
    let dims = [4, 6, kernel, kernel];
    let second = ConvGeometry {
        in_h: first.out_h,
        in_w: first.out_w,
        out_h: conv_out_len(first.out_h, kernel, 1, padding),
        out_w: conv_out_len(first.out_w, kernel, 1, padding),
        stride: [1, 1],
        layout: WeightLayout::conv(dims),
        weight_shape: dims,
        ..first
    };
    (first, second)
}

#[test]
fn a_pair_run_image_by_image_gives_the_bits_of_its_convolutions_apart() {
    with_both_copies_of_the_inner_loops(pair_matches_apart);
}

fn pair_matches_apart() {
    // Planes of 16 and 64 values (summed whole), 256 and 49 (by runs), 1x1 kernels, and a
    // strided first convolution (split by phase) before planes of 64, 256 and 16 values.
    let cases = [
        (4, 3, 1, 1),
        (8, 3, 1, 1),
        (16, 3, 1, 1),
        (7, 3, 1, 1),
        (8, 1, 1, 0),
        (16, 3, 2, 1),
        (32, 3, 2, 1),
        (16, 1, 2, 0),
        (8, 3, 2, 1),
    ];
    for (case, &(size, kernel, stride, padding)) in cases.iter().enumerate() {
        let (g1, g2) = block_pair(size, kernel, stride, padding);
        assert!(pair_runs(&g1, &g2));
        let seed = 100 + case as u64 * 10;
        // The first convolution's channel 0 and the second's input channel 2 without a
        // weight: a middle plane with no terms, and one no term reads.
        let (l1, l2) = (g1.layout, g2.layout);
        let (i1, i2) = (
            SparseIndex::new(l1, &random_mask(l1, seed, 0.3, |oc, _| oc == 0)),
            SparseIndex::new(l2, &random_mask(l2, seed + 1, 0.3, |_, ic| ic == 2)),
        );
        let (w1, w2) = (
            values(g1.layout.numel(), seed + 2),
            values(g2.layout.numel(), seed + 3),
        );
        let x: Vec<f32> = values(g1.batch * 5 * size * size, seed + 4)
            .into_iter()
            .map(|v| if v < -0.5 { 0.0 } else { v })
            .collect();
        let out_plane = g2.out_h * g2.out_w;
        let residual = values(g2.batch * 4 * out_plane, seed + 5);
        // Finishes that depend on the plane's number and its values, the second reading
        // its plane of the residual, as the block's sum does.
        let finish1 = |slab: usize, plane: &mut [f32]| {
            plane
                .iter_mut()
                .for_each(|v| *v = (*v * 0.5 + slab as f32 * 0.01 - 0.2).max(0.0));
        };
        let finish2 = |slab: usize, plane: &mut [f32]| {
            let r = &residual[slab * out_plane..][..out_plane];
            plane
                .iter_mut()
                .zip(r)
                .for_each(|(v, &r)| *v = (*v * 1.5 + r).max(0.0));
        };
        let (rows1, rows2) = (IndexList::rows(&i1), IndexList::rows(&i2));
        let middle = forward_finished(LoopVersion::V11, &g1, &x, &w1, rows1, &finish1);
        let apart = forward_finished(LoopVersion::V11, &g2, &middle, &w2, rows2, &finish2);
        let paired = pair_forward(&g1, &x, &w1, rows1, &finish1, &g2, &w2, rows2, &finish2)
            .expect("a stride-1 pair");
        assert_eq!(
            bits(apart),
            bits(paired),
            "{size}x{size}, kernel {kernel}, stride {stride}, padding {padding}"
        );
    }
}

#[test]
fn a_pair_runs_image_by_image_only_where_v11_runs_both_and_their_shapes_chain() {
    let (first, second) = block_pair(8, 3, 1, 1);
    assert!(pair_runs(&first, &second));
    // A first convolution that v11 splits by phase runs; one on an odd input, which it
    // does not, and a strided second do not.
    let (strided, after_strided) = block_pair(16, 3, 2, 1);
    assert!(pair_runs(&strided, &after_strided));
    let (odd, after_odd) = block_pair(15, 3, 2, 1);
    assert!(!pair_runs(&odd, &after_odd));
    let strided_second = ConvGeometry {
        stride: [2, 2],
        out_h: 4,
        out_w: 4,
        ..second
    };
    assert!(!pair_runs(&first, &strided_second));
    // Stride 1 without padding: rows of other widths, no runs.
    let (unpadded, after_unpadded) = block_pair(8, 3, 1, 0);
    assert!(!pair_runs(&unpadded, &after_unpadded));
    let other_batch = ConvGeometry { batch: 2, ..second };
    assert!(!pair_runs(&first, &other_batch));
    let other_size = block_pair(9, 3, 1, 1).1;
    assert!(!pair_runs(&first, &other_size));
    let unchained = ConvGeometry {
        layout: WeightLayout::conv([4, 5, 3, 3]),
        weight_shape: [4, 5, 3, 3],
        ..second
    };
    assert!(!pair_runs(&first, &unchained));
    let x = vec![1.0f32; odd.batch * 5 * 15 * 15];
    let w = vec![1.0f32; odd.layout.numel()];
    let index = SparseIndex::new(odd.layout, &vec![true; odd.layout.numel()]);
    let rows = IndexList::rows(&index);
    let none = |_: usize, _: &mut [f32]| {};
    let paired = pair_forward(&odd, &x, &w, rows, &none, &after_odd, &w, rows, &none);
    assert!(paired.is_none());
}
