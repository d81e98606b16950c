//! Layer-wise densities: uniform or ERK (Erdős–Rényi-Kernel), turned into exact per-layer
//! non-zero counts whose sum is exactly `round(density x prunable weights)`.

use super::{SparseLayer, SparsityError};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    Uniform,
    Erk,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SparsityConfig {
    /// Fraction of prunable weights that are zero, in [0, 1): 0.99 keeps 1%.
    pub sparsity: f64,
    pub distribution: Distribution,
    /// Keep the first conv (the stem) dense; its weights count toward the budget.
    pub dense_first: bool,
    /// ERK's exponent on the raw scores (1 = the published ERK).
    pub erk_power: f64,
}

impl Default for SparsityConfig {
    fn default() -> Self {
        Self {
            sparsity: 0.9,
            distribution: Distribution::Erk,
            dense_first: false,
            erk_power: 1.0,
        }
    }
}

impl SparsityConfig {
    pub fn density(&self) -> f64 {
        1.0 - self.sparsity
    }

    pub fn validate(&self) -> Result<(), SparsityError> {
        if !(self.sparsity.is_finite() && (0.0..1.0).contains(&self.sparsity)) {
            return Err(SparsityError::Invalid(format!(
                "sparsity.sparsity = {} must be in [0, 1) (0.99 keeps 1% of the weights; \
                 for a dense run use method \"dense\")",
                self.sparsity
            )));
        }
        if !(self.erk_power.is_finite() && self.erk_power >= 0.0) {
            return Err(SparsityError::Invalid(format!(
                "sparsity.erk_power = {} must be >= 0",
                self.erk_power
            )));
        }
        Ok(())
    }
}

/// The highest sparsity `layers` (their weight counts, the first conv first, shared ones
/// counted at every use) can hold: every layer with weights of its own keeps at least one
/// (`shared_layers` reuse another's), and with `dense_first` the first conv keeps all.
pub fn sparsity_bound(layer_numels: &[usize], shared_layers: usize, dense_first: bool) -> f64 {
    let total: usize = layer_numels.iter().sum();
    let fixed = if dense_first {
        layer_numels.first().copied().unwrap_or(0)
    } else {
        0
    };
    let own = layer_numels.len().saturating_sub(shared_layers);
    let sparse_layers = own.saturating_sub(usize::from(dense_first));
    1.0 - (fixed + sparse_layers) as f64 / total.max(1) as f64
}

/// Non-zeros per layer for `config` over `layers` (layer 0 is the first conv).
///
/// Every sparse layer keeps at least one weight, so that no layer cuts the network; a
/// target smaller than that is an error that says which sparsity would work.
pub fn allocate(
    layers: &[SparseLayer],
    config: &SparsityConfig,
) -> Result<Vec<usize>, SparsityError> {
    config.validate()?;
    let total: usize = layers.iter().map(SparseLayer::numel).sum();
    allocate_total(
        (config.density() * total as f64).round() as usize,
        layers,
        config,
    )
}

/// Exactly `target` non-zeros over `layers`, distributed as `config` says (its sparsity
/// is only quoted in errors). Weight sharing and schedules that move the density use
/// this with their own target.
pub fn allocate_total(
    target: usize,
    layers: &[SparseLayer],
    config: &SparsityConfig,
) -> Result<Vec<usize>, SparsityError> {
    let total: usize = layers.iter().map(SparseLayer::numel).sum();
    if target > total {
        return Err(SparsityError::Impossible(format!(
            "sparsity {} asks for {target} non-zero weights but the model has only {total} \
             unique prunable weights (weight sharing keeps the unshared network's count): \
             raise the sparsity or turn weight sharing off (model.shared_weights, or \
             method.east.weight_sharing for EAST)",
            config.sparsity
        )));
    }
    let mut dense = vec![false; layers.len()];
    if config.dense_first && !layers.is_empty() {
        dense[0] = true;
    }
    let fixed: usize = layers
        .iter()
        .zip(&dense)
        .filter(|(_, d)| **d)
        .map(|(l, _)| l.numel())
        .sum();
    let n_sparse = dense.iter().filter(|d| !**d).count();
    if target < fixed + n_sparse {
        let numels: Vec<usize> = layers.iter().map(SparseLayer::numel).collect();
        let bound = sparsity_bound(&numels, 0, config.dense_first);
        return Err(SparsityError::Impossible(format!(
            "sparsity {} ({}%) keeps {target} of {total} weights, but {} dense weights plus \
             one weight in each of the other {n_sparse} layers need {}: use a sparsity of at \
             most {:.6} ({:.4}%){}",
            config.sparsity,
            // Percent to four decimals, without float noise: 0.9999 is 99.99%.
            (config.sparsity * 1e6).round() / 1e4,
            fixed,
            fixed + n_sparse,
            bound,
            bound * 100.0,
            if config.dense_first {
                ", or set sparsity.dense_first = false"
            } else {
                ", or a larger model"
            }
        )));
    }

    // Real-valued densities: uniform, or ERK with the re-solve that makes a layer dense
    // whenever its ERK density would exceed 1 (the most over-full layer first).
    let densities: Vec<f64> = loop {
        let budget = target as f64
            - layers
                .iter()
                .zip(&dense)
                .filter(|(_, d)| **d)
                .map(|(l, _)| l.numel() as f64)
                .sum::<f64>();
        let score = |l: &SparseLayer| match config.distribution {
            Distribution::Uniform => 1.0,
            Distribution::Erk => l.erk_score().powf(config.erk_power),
        };
        let divisor: f64 = layers
            .iter()
            .zip(&dense)
            .filter(|(_, d)| !**d)
            .map(|(l, _)| score(l) * l.numel() as f64)
            .sum();
        let eps = budget / divisor;
        let over = layers
            .iter()
            .enumerate()
            .filter(|(i, l)| !dense[*i] && eps * score(l) > 1.0)
            .max_by(|a, b| score(a.1).total_cmp(&score(b.1)));
        match over {
            Some((i, _)) => dense[i] = true,
            None => {
                break layers
                    .iter()
                    .zip(&dense)
                    .map(|(l, d)| if *d { 1.0 } else { eps * score(l) })
                    .collect();
            }
        }
    };

    // Exact integer counts: floor, at least one, then hand the remainder out by largest
    // fractional part (ties: earlier layer), never past a layer's size.
    let ideal: Vec<f64> = layers
        .iter()
        .zip(&densities)
        .map(|(l, d)| d * l.numel() as f64)
        .collect();
    let mut counts: Vec<usize> = ideal
        .iter()
        .zip(layers)
        .map(|(x, l)| (x.floor() as usize).clamp(1, l.numel()))
        .collect();
    let mut assigned: usize = counts.iter().sum();
    let mut order: Vec<usize> = (0..layers.len()).collect();
    order.sort_by(|&a, &b| {
        let fa = ideal[a] - ideal[a].floor();
        let fb = ideal[b] - ideal[b].floor();
        fb.total_cmp(&fa).then(a.cmp(&b))
    });
    while assigned < target {
        let before = assigned;
        for &i in &order {
            if assigned == target {
                break;
            }
            if counts[i] < layers[i].numel() {
                counts[i] += 1;
                assigned += 1;
            }
        }
        assert!(assigned > before, "target within total weights");
    }
    // The "at least one" floor can overshoot when many layers round to zero: take the
    // excess back from the layers with the most weights.
    while assigned > target {
        let i = (0..layers.len())
            .filter(|&i| counts[i] > 1 && !dense[i])
            .max_by_key(|&i| counts[i])
            .expect("target >= layers");
        counts[i] -= 1;
        assigned -= 1;
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(path: &str, dims: &[usize]) -> SparseLayer {
        SparseLayer {
            path: path.into(),
            dims: dims.to_vec(),
        }
    }

    fn small_net() -> Vec<SparseLayer> {
        vec![
            layer("stem", &[16, 3, 3, 3]),
            layer("a", &[16, 16, 3, 3]),
            layer("b", &[32, 16, 3, 3]),
            layer("c", &[64, 32, 3, 3]),
            layer("fc", &[10, 64]),
        ]
    }

    fn cfg(sparsity: f64, distribution: Distribution, dense_first: bool) -> SparsityConfig {
        SparsityConfig {
            sparsity,
            distribution,
            dense_first,
            erk_power: 1.0,
        }
    }

    #[test]
    fn uniform_counts_are_exact_and_proportional() {
        let layers = small_net();
        let total: usize = layers.iter().map(|l| l.numel()).sum();
        let counts = allocate(&layers, &cfg(0.9, Distribution::Uniform, false)).unwrap();
        assert_eq!(
            counts.iter().sum::<usize>(),
            (0.1 * total as f64).round() as usize
        );
        for (c, l) in counts.iter().zip(&layers) {
            let d = *c as f64 / l.numel() as f64;
            assert!(
                (d - 0.1).abs() < 1.5 / l.numel() as f64 + 1e-9,
                "{} {d}",
                l.path
            );
        }
    }

    #[test]
    fn erk_counts_are_exact_and_follow_the_formula() {
        let layers = small_net();
        let total: usize = layers.iter().map(|l| l.numel()).sum();
        for sparsity in [0.5, 0.9, 0.99] {
            let counts = allocate(&layers, &cfg(sparsity, Distribution::Erk, false)).unwrap();
            let target = ((1.0 - sparsity) * total as f64).round() as usize;
            assert_eq!(counts.iter().sum::<usize>(), target, "sparsity {sparsity}");
            assert!(
                counts
                    .iter()
                    .zip(&layers)
                    .all(|(c, l)| *c >= 1 && *c <= l.numel())
            );
        }
        // At 90% no layer saturates: densities are proportional to the ERK score.
        let counts = allocate(&layers, &cfg(0.9, Distribution::Erk, false)).unwrap();
        let d: Vec<f64> = counts
            .iter()
            .zip(&layers)
            .map(|(c, l)| *c as f64 / l.numel() as f64)
            .collect();
        let ratio_bc = d[1] / d[2];
        let expected = layers[1].erk_score() / layers[2].erk_score();
        assert!(
            (ratio_bc - expected).abs() < 0.02,
            "{ratio_bc} vs {expected}"
        );
    }

    #[test]
    fn erk_resolves_layers_that_would_exceed_density_one() {
        // At 50% sparsity ERK would give the small stem and fc layers density > 1.
        let layers = small_net();
        let counts = allocate(&layers, &cfg(0.5, Distribution::Erk, false)).unwrap();
        assert_eq!(counts[0], layers[0].numel(), "stem made dense");
        assert_eq!(counts[4], layers[4].numel(), "fc made dense");
        let total: usize = layers.iter().map(|l| l.numel()).sum();
        assert_eq!(
            counts.iter().sum::<usize>(),
            (0.5 * total as f64).round() as usize
        );
    }

    #[test]
    fn dense_first_keeps_the_stem_whole_and_the_total_exact() {
        let layers = small_net();
        let total: usize = layers.iter().map(|l| l.numel()).sum();
        for dist in [Distribution::Uniform, Distribution::Erk] {
            let counts = allocate(&layers, &cfg(0.8, dist, true)).unwrap();
            assert_eq!(counts[0], layers[0].numel());
            assert_eq!(
                counts.iter().sum::<usize>(),
                (0.2 * total as f64).round() as usize
            );
        }
    }

    #[test]
    fn impossible_sparsity_is_a_clear_error() {
        let layers = small_net();
        let err = allocate(&layers, &cfg(0.9999, Distribution::Erk, true))
            .unwrap_err()
            .to_string();
        assert!(err.contains("at most") && err.contains("%)"), "{err}");
        let err = allocate(&layers, &cfg(1.0, Distribution::Erk, false))
            .unwrap_err()
            .to_string();
        assert!(err.contains("[0, 1)"), "{err}");
    }

    #[test]
    fn extreme_sparsity_keeps_one_weight_per_layer() {
        let layers = small_net();
        let total: usize = layers.iter().map(|l| l.numel()).sum();
        let sparsity = 1.0 - 7.0 / total as f64;
        let counts = allocate(&layers, &cfg(sparsity, Distribution::Erk, false)).unwrap();
        assert_eq!(counts.iter().sum::<usize>(), 7);
        assert!(counts.iter().all(|&c| c >= 1));
    }
}
