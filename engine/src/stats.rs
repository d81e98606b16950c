//! Mean and sample standard deviation of timings, for the benchmarks' "mean ± std".

/// (mean, sample std with n − 1); the std of a single value is 0.
pub fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}
