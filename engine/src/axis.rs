//! Round axis ticks, shared by every chart: the sweep's SVG plots and the page's charts.
//! Ticks are 1, 2 or 5 x 10^k apart, at least a few per axis, and their labels carry as
//! many decimals as the step needs, so no two read the same.

/// Round tick values covering [lo, hi]: the largest step of 1, 2 or 5 x 10^k that still
/// gives at least `min_count` ticks.
pub fn ticks(lo: f64, hi: f64, min_count: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let top = (hi - lo).log10().ceil() as i32;
    // 10^top, then 5, 2 and 1 x 10^(top-1), and so on down.
    let candidates = std::iter::once(10f64.powi(top))
        .chain((0..60).map(|i| [5.0, 2.0, 1.0][i % 3] * 10f64.powi(top - 1 - (i / 3) as i32)));
    let count = |step: f64| ((hi / step).floor() - (lo / step).ceil()) as i64 + 1;
    let mut step = 10f64.powi(top);
    for candidate in candidates {
        step = candidate;
        if count(step) >= min_count as i64 {
            break;
        }
    }
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// Tick labels with as many decimals as the step needs, so no two read the same.
pub fn tick_label(v: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

/// Ticks of a log axis over [lo, hi] (data units, both > 0): every power of ten inside,
/// with 2x and 5x added while fewer than `min_count` fit.
pub fn log_ticks(lo: f64, hi: f64, min_count: usize) -> Vec<f64> {
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return vec![lo];
    }
    let decades = (lo.log10().floor() as i32)..=(hi.log10().ceil() as i32);
    let inside = |mantissas: &[f64]| -> Vec<f64> {
        decades
            .clone()
            .flat_map(|e| mantissas.iter().map(move |m| m * 10f64.powi(e)))
            .filter(|v| *v >= lo * (1.0 - 1e-9) && *v <= hi * (1.0 + 1e-9))
            .collect()
    };
    for mantissas in [&[1.0][..], &[1.0, 3.0], &[1.0, 2.0, 5.0]] {
        let t = inside(mantissas);
        if t.len() >= min_count {
            return t;
        }
    }
    inside(&[1.0, 2.0, 3.0, 5.0, 7.0])
}

/// A log-axis tick's label: `0.1%`-style precision is the caller's; this gives the
/// shortest exact decimal (0.0003, 0.002, 1).
pub fn log_tick_label(v: f64) -> String {
    let decimals = (-v.log10().floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_at_least_four() {
        for (lo, hi) in [
            (0.0, 168.0),
            (2.28, 2.31),
            (1.7, 2.45),
            (0.0, 1.0),
            (0.0, 7.0),
        ] {
            let t = ticks(lo, hi, 4);
            assert!(t.len() >= 4, "{lo}..{hi}: {t:?}");
            assert!(t.iter().all(|&v| v >= lo - 1e-9 && v <= hi + 1e-9), "{t:?}");
            let step = t[1] - t[0];
            let labels: Vec<String> = t.iter().map(|&v| tick_label(v, step)).collect();
            let unique: std::collections::BTreeSet<_> = labels.iter().collect();
            assert_eq!(unique.len(), labels.len(), "labels repeat: {labels:?}");
        }
        assert_eq!(ticks(0.0, 168.0, 4), vec![0.0, 50.0, 100.0, 150.0]);
    }

    #[test]
    fn log_ticks_mark_decades_and_fill_in_short_ranges() {
        assert_eq!(log_ticks(1e-4, 1e-1, 4), vec![1e-4, 1e-3, 1e-2, 1e-1]);
        let t = log_ticks(1e-4, 3e-4, 3);
        assert!(
            t.len() >= 2 && t.iter().all(|&v| (1e-4..=3e-4 * 1.000001).contains(&v)),
            "{t:?}"
        );
        let labels: Vec<String> = log_ticks(1e-4, 1e-2, 4)
            .iter()
            .map(|&v| log_tick_label(v))
            .collect();
        assert_eq!(labels, ["0.0001", "0.0003", "0.001", "0.003", "0.01"]);
    }
}
