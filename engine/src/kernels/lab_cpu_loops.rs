//! The kernel lab's CPU table: the sparse convolution's loop versions (`cpu_loops.rs`)
//! timed against each other on plain buffers, per layer shape, at one sparsity: forward,
//! input gradient and weight gradient, each checked against v1 before it is timed.

use super::sparse_conv::ConvGeometry;
use super::sparse_conv::cpu_loops::{self, IndexList, LoopVersion};
use super::sparse_index::{SparseIndex, WeightLayout};
use super::timing::ConvShape;
use crate::model::Arch;
use crate::rng::Rng;
use crate::stats::mean_std;
use std::fmt::Write;
use web_time::Instant;

/// One layer shape's times (mean, std ms) per version: forward, input grad, weight grad.
pub struct LoopTimings {
    pub shape: ConvShape,
    pub nnz: usize,
    pub times: Vec<(LoopVersion, [(f64, f64); 3])>,
}

/// Every unique conv shape of `archs` at `sparsity`, each version timed `repeats` times
/// after one untimed call. Panics if a version's result differs from v1's: a timing of a
/// wrong loop means nothing.
pub fn loop_timings(
    archs: &[Arch],
    sparsity: f64,
    batch: usize,
    repeats: usize,
) -> Vec<LoopTimings> {
    let shapes: Vec<ConvShape> = super::lab::unique_shapes(archs)
        .into_iter()
        .map(|(shape, _)| shape)
        .collect();
    shapes
        .into_iter()
        .enumerate()
        .map(|(i, shape)| time_shape(shape, sparsity, batch, repeats, 31 + i as u64))
        .collect()
}

fn time_shape(
    shape: ConvShape,
    sparsity: f64,
    batch: usize,
    repeats: usize,
    seed: u64,
) -> LoopTimings {
    let layout = WeightLayout::conv(shape.weight);
    let numel = layout.numel();
    let mut rng = Rng::new(seed);
    let k = ((numel as f64 * (1.0 - sparsity)).round() as usize).clamp(1, numel);
    let mut active = vec![false; numel];
    for j in rng.sample_indices(numel, k) {
        active[j] = true;
    }
    let index = SparseIndex::new(layout, &active);
    let g = geometry(&shape, batch, layout, index.nnz());
    let mut values = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.normal()).collect() };
    let x = values(batch * layout.in_channels * shape.in_side.pow(2));
    let w = values(numel);
    let dy = values(batch * layout.out_channels * shape.out_side().pow(2));
    let (rows, cols) = (IndexList::rows(&index), IndexList::cols(&index));
    let reference = run_all(LoopVersion::V1, &g, &x, &w, &dy, rows, cols);
    let times = LoopVersion::ALL
        .into_iter()
        .map(|v| {
            let out = run_all(v, &g, &x, &w, &dy, rows, cols);
            for (name, a, b) in [
                ("forward", &out.0, &reference.0),
                ("input gradient", &out.1, &reference.1),
                ("weight gradient", &out.2, &reference.2),
            ] {
                // Relative to the largest value: a weight gradient sums batch x positions
                // products, and a small one may be what is left of large ones.
                let scale = b.iter().fold(1.0f32, |m, q| m.max(q.abs()));
                let diff = a
                    .iter()
                    .zip(b)
                    .map(|(p, q)| (p - q).abs())
                    .fold(0.0, f32::max);
                assert!(
                    diff <= 1e-4 * scale,
                    "{} {name} differs from v1 by {diff} (largest value {scale})",
                    v.name()
                );
            }
            let time = |f: &dyn Fn() -> Vec<f32>| {
                drop(f());
                let samples: Vec<f64> = (0..repeats.max(1))
                    .map(|_| {
                        let start = Instant::now();
                        drop(f());
                        start.elapsed().as_secs_f64() * 1000.0
                    })
                    .collect();
                mean_std(&samples)
            };
            let t = [
                time(&|| cpu_loops::forward(v, &g, &x, &w, rows)),
                time(&|| cpu_loops::input_grad(v, &g, &dy, &w, cols)),
                time(&|| cpu_loops::weight_grad(v, &g, &x, &dy, rows)),
            ];
            (v, t)
        })
        .collect();
    LoopTimings {
        shape,
        nnz: index.nnz(),
        times,
    }
}

type Outputs = (Vec<f32>, Vec<f32>, Vec<f32>);

fn run_all(
    v: LoopVersion,
    g: &ConvGeometry,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    rows: IndexList,
    cols: IndexList,
) -> Outputs {
    (
        cpu_loops::forward(v, g, x, w, rows),
        cpu_loops::input_grad(v, g, dy, w, cols),
        cpu_loops::weight_grad(v, g, x, dy, rows),
    )
}

fn geometry(shape: &ConvShape, batch: usize, layout: WeightLayout, nnz: usize) -> ConvGeometry {
    let (k, s, p) = (shape.weight[2], shape.stride, shape.padding());
    ConvGeometry {
        batch,
        in_h: shape.in_side,
        in_w: shape.in_side,
        out_h: shape.out_side(),
        out_w: shape.out_side(),
        kernel: [k, k],
        stride: [s, s],
        padding: [p, p],
        layout,
        weight_shape: shape.weight,
        nnz,
        weight_grad: Default::default(),
    }
}

/// The table as markdown: one row per shape, each version's three times, and the last
/// version's speed-up over the first on the three together.
pub fn loop_table(rows: &[LoopTimings]) -> String {
    let mut out = String::from("| layer [out, in, k, k] | input | stride | nnz |");
    let versions: Vec<LoopVersion> = rows
        .first()
        .map(|r| r.times.iter().map(|t| t.0).collect())
        .unwrap_or_default();
    for v in &versions {
        let _ = write!(out, " {} fwd / dx / dw ms |", v.name());
    }
    out.push_str(" last / first |\n|---|---:|---:|---:|");
    out.push_str(&"---:|".repeat(versions.len() + 1));
    out.push('\n');
    for r in rows {
        let _ = write!(
            out,
            "| {:?} | {}x{} | {} | {} |",
            r.shape.weight, r.shape.in_side, r.shape.in_side, r.shape.stride, r.nnz
        );
        for (_, t) in &r.times {
            let _ = write!(out, " {:.2} / {:.2} / {:.2} |", t[0].0, t[1].0, t[2].0);
        }
        let total = |t: &[(f64, f64); 3]| t.iter().map(|x| x.0).sum::<f64>();
        let (first, last) = (&r.times[0].1, &r.times[r.times.len() - 1].1);
        let _ = writeln!(out, " {:.1}x |", total(first) / total(last));
    }
    out
}
