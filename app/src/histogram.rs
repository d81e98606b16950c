//! The weight-magnitude histogram: log10 |w| of the active weights in fixed bins, so
//! successive histograms of a run (and of two runs) share an axis.

use crate::protocol::WeightHistogram;

pub const LOG10_MIN: f64 = -5.0;
pub const LOG10_MAX: f64 = 1.0;
pub const BINS: usize = 48;

/// `layers`: each layer's weights and its mask (`None`: every weight counts).
pub fn weight_histogram<'a>(
    step: usize,
    layers: impl IntoIterator<Item = (&'a [f32], Option<&'a [bool]>)>,
) -> WeightHistogram {
    let mut counts = vec![0usize; BINS];
    let mut zeros = 0;
    let width = (LOG10_MAX - LOG10_MIN) / BINS as f64;
    for (weights, mask) in layers {
        for (i, &w) in weights.iter().enumerate() {
            if mask.is_some_and(|m| !m[i]) {
                continue;
            }
            if w == 0.0 {
                zeros += 1;
                continue;
            }
            // Out-of-range magnitudes land in the edge bins.
            let bin = ((w.abs() as f64).log10() - LOG10_MIN) / width;
            counts[(bin.max(0.0) as usize).min(BINS - 1)] += 1;
        }
    }
    WeightHistogram {
        step,
        log10_min: LOG10_MIN,
        log10_max: LOG10_MAX,
        counts,
        zeros,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_active_weights_by_magnitude() {
        let w = [0.1f32, -0.1, 0.0, 1e-9, 100.0, 0.5];
        let m = [true, true, true, true, true, false];
        let h = weight_histogram(3, [(&w[..], Some(&m[..]))]);
        assert_eq!(h.counts.iter().sum::<usize>(), 4);
        assert_eq!(h.zeros, 1);
        // log10(0.1) = -1 lies at bin (−1 + 5) / 0.125 = 32.
        assert_eq!(h.counts[32], 2);
        assert_eq!(h.counts[0], 1);
        assert_eq!(h.counts[BINS - 1], 1);
    }
}
