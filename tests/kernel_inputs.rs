//! Inputs and comparisons shared by the kernel tests, natively (`tests/tests/kernels.rs`,
//! `sparse_conv.rs`, `batch_norm.rs`)
//! and in the browser (`tests/browser/tests/kernels_webgpu.rs`), included by `#[path]` so
//! the wasm-only browser crate needs no dependency on this crate.

use sparselab::burn::tensor::{Device, Tensor, TensorData};

/// Deterministic pseudo-random numbers for test inputs (no shared RNG state).
pub struct Lcg(pub u64);

impl Lcg {
    /// Uniform in [0, 1).
    pub fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32) / (1u64 << 24) as f32
    }

    /// `n` values uniform in [-1, 1).
    pub fn uniform_vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| (self.next() - 0.5) * 2.0).collect()
    }

    /// `n` booleans, each true with probability `p`.
    pub fn bools(&mut self, n: usize, p: f32) -> Vec<bool> {
        (0..n).map(|_| self.next() < p).collect()
    }
}

pub fn tensor1(v: &[f32], device: &Device) -> Tensor<1> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
}

/// The largest |a - b|; a NaN anywhere counts as infinitely far (`f32::max` would skip it).
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .map(|d| if d.is_nan() { f32::INFINITY } else { d })
        .fold(0.0, f32::max)
}

/// A mask as the 0/1 floats the kernels take.
pub fn as_f32(mask: &[bool]) -> Vec<f32> {
    mask.iter().map(|&a| if a { 1.0 } else { 0.0 }).collect()
}
