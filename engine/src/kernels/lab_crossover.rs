//! The kernel lab's crossover measurement (`sparselab bench kernels --crossover`): per unique
//! conv shape of the given models, the dense masked convolution against the sparse kernels
//! in training (forward and backward) at a grid of densities, lowest first. A shape's
//! crossover is the highest grid density at which sparse wins there and at every lower one;
//! `crossover.rs` ships the rows this prints.

use super::timing::{ConvShape, LayerBench};
use crate::model::Arch;
use crate::rng::Rng;
use burn::tensor::Device;
use std::fmt::Write;

/// The densities tried, lowest first.
pub const GRID: [f64; 11] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5,
];

/// One shape: (density, dense ms, sparse ms) at each density tried, and its crossover.
pub struct MeasuredCrossover {
    pub shape: ConvShape,
    pub tried: Vec<(f64, f64, f64)>,
    pub max_density: f64,
}

/// Measures every unique conv shape of `archs` (full width) on `device` with autodiff.
pub fn measure(
    archs: &[Arch],
    batch: usize,
    repeats: usize,
    device: &Device,
) -> Vec<MeasuredCrossover> {
    let shapes: Vec<ConvShape> = super::lab::unique_shapes(archs)
        .into_iter()
        .map(|(shape, _)| shape)
        .collect();
    let device = device.clone().autodiff();
    shapes
        .into_iter()
        .enumerate()
        .map(|(i, shape)| {
            eprintln!(
                "  {:?} at {}x{}, stride {}...",
                shape.weight, shape.in_side, shape.in_side, shape.stride
            );
            let bench = LayerBench::new(&shape, batch, &device, true);
            let numel: usize = shape.weight.iter().product();
            let mut rng = Rng::new(101 + i as u64);
            let mask = |rng: &mut Rng, density: f64| {
                let k = ((numel as f64 * density).round() as usize).clamp(1, numel);
                let mut active = vec![false; numel];
                for j in rng.sample_indices(numel, k) {
                    active[j] = true;
                }
                active
            };
            // Dense time barely depends on the mask: once, at the grid's middle.
            let dense = bench.dense_ms(&mask(&mut rng, 0.01), repeats).0;
            let mut tried = Vec::new();
            let mut max_density = 0.0;
            for density in GRID {
                let sparse = bench.sparse_ms(&mask(&mut rng, density), repeats).0;
                tried.push((density, dense, sparse));
                if sparse >= dense {
                    break;
                }
                max_density = density;
            }
            MeasuredCrossover {
                shape,
                tried,
                max_density,
            }
        })
        .collect()
}

/// The measurement as markdown: per shape, dense ms, sparse ms at each density tried, and
/// the crossover.
pub fn table(rows: &[MeasuredCrossover]) -> String {
    let mut out = String::from(
        "| layer [out, in, k, k] | input | stride | dense ms | sparse ms at density (tried until sparse lost) | crossover density |\n|---|---:|---:|---:|---|---:|\n",
    );
    for r in rows {
        let tried: Vec<String> = r
            .tried
            .iter()
            .map(|(d, _, s)| format!("{s:.1} @ {d}"))
            .collect();
        let _ = writeln!(
            out,
            "| {:?} | {}x{} | {} | {:.1} | {} | {} |",
            r.shape.weight,
            r.shape.in_side,
            r.shape.in_side,
            r.shape.stride,
            r.tried.first().map_or(0.0, |t| t.1),
            tried.join(", "),
            r.max_density
        );
    }
    out
}

/// The rows as `crossover.rs` holds them.
pub fn rust_rows(rows: &[MeasuredCrossover]) -> String {
    let mut out = String::new();
    for r in rows {
        let _ = writeln!(
            out,
            "    row({:?}, {}, {}, {:?}),",
            r.shape.weight, r.shape.in_side, r.shape.stride, r.max_density
        );
    }
    out
}
