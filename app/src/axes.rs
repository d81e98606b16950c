//! The page's chart axes: the y range and round, labelled ticks for the values a chart
//! shows (linear, percent or log), with a value to keep in view. Plain Rust, tested
//! natively; `ui::charts` draws them.

use sparselab::axis;

/// A linear axis never spans less than this share of its largest value: a 0.03 wiggle of a
/// loss near 2.3 stays a wiggle instead of filling the chart like a learning curve.
const MIN_RELATIVE_SPAN: f64 = 0.2;

/// How the y axis reads its values.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum YAxis {
    #[default]
    Linear,
    /// Fractions shown as percent (accuracy).
    Percent,
    /// Log-scaled (densities from 1 down to 0.0001).
    Log,
}

/// The y range and its ticks (values, labels) for `values`, with `fixed` and `keep` (a
/// value to keep in view, e.g. chance) applied.
pub fn y_axis(
    values: impl Iterator<Item = f64>,
    axis: YAxis,
    fixed: Option<(f64, f64)>,
    keep: Option<f64>,
) -> ((f64, f64), Vec<(f64, String)>) {
    let finite = values.filter(|v| v.is_finite() && (axis != YAxis::Log || *v > 0.0));
    let (mut lo, mut hi) = finite
        .chain(keep)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
    if let Some((a, b)) = fixed {
        (lo, hi) = (a, b);
    }
    if !lo.is_finite() {
        (lo, hi) = if axis == YAxis::Log {
            (1e-4, 1.0)
        } else {
            (0.0, 1.0)
        };
    }
    if axis == YAxis::Log {
        // Whole decades, at least one.
        let (a, b) = (
            lo.log10().floor(),
            hi.log10().ceil().max(lo.log10().floor() + 1.0),
        );
        let (lo, hi) = (10f64.powf(a), 10f64.powf(b));
        let ticks = axis::log_ticks(lo, hi, 3)
            .into_iter()
            .map(|v| (v, axis::log_tick_label(v)))
            .collect();
        return ((lo, hi), ticks);
    }
    let min_span = (MIN_RELATIVE_SPAN * lo.abs().max(hi.abs())).max(1e-3);
    if hi - lo < min_span {
        let mid = (lo + hi) / 2.0;
        (lo, hi) = (mid - min_span / 2.0, mid + min_span / 2.0);
        if lo < 0.0 && fixed.is_none() && mid >= 0.0 {
            (lo, hi) = (0.0, min_span);
        }
    }
    let ticks = axis::ticks(lo, hi, 4);
    let step = if ticks.len() > 1 {
        ticks[1] - ticks[0]
    } else {
        1.0
    };
    // The range ends on ticks, so the extremes are labelled.
    let (lo, hi) = (
        ticks.first().copied().unwrap_or(lo).min(lo),
        ticks.last().copied().unwrap_or(hi).max(hi),
    );
    let labelled = ticks
        .into_iter()
        .map(|v| {
            let label = match axis {
                YAxis::Percent => format!("{}%", axis::tick_label(v * 100.0, step * 100.0)),
                _ => axis::tick_label(v, step),
            };
            (v, label)
        })
        .collect();
    ((lo, hi), labelled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(ticks: &[(f64, String)]) -> Vec<&str> {
        ticks.iter().map(|t| t.1.as_str()).collect()
    }

    #[test]
    fn a_flat_loss_near_chance_keeps_a_readable_span_and_chance_in_view() {
        // The default run's first steps: 2.28 to 2.31, chance ln 10.
        let ((lo, hi), ticks) = y_axis(
            [2.28, 2.31].into_iter(),
            YAxis::Linear,
            None,
            Some(10f64.ln()),
        );
        assert!(hi - lo >= 0.4, "{lo}..{hi}");
        assert!(lo <= 10f64.ln() && 10f64.ln() <= hi);
        let l = labels(&ticks);
        assert!(l.len() >= 4, "{l:?}");
        let unique: std::collections::BTreeSet<_> = l.iter().collect();
        assert_eq!(unique.len(), l.len(), "{l:?}");
    }

    #[test]
    fn accuracy_reads_in_percent_and_density_in_decades() {
        let (_, ticks) = y_axis(
            [0.1, 0.3].into_iter(),
            YAxis::Percent,
            Some((0.0, 1.0)),
            None,
        );
        assert_eq!(labels(&ticks), ["0%", "20%", "40%", "60%", "80%", "100%"]);
        let ((lo, hi), ticks) = y_axis([0.001, 0.003].into_iter(), YAxis::Log, None, None);
        assert_eq!((lo, hi), (0.001, 0.01));
        assert!(
            ticks.len() >= 3 && labels(&ticks).contains(&"0.001"),
            "{:?}",
            labels(&ticks)
        );
        // One flat density (RigL's): still a decade, never a zero span.
        let ((lo, hi), _) = y_axis([0.01, 0.01].into_iter(), YAxis::Log, None, None);
        assert!(hi / lo >= 10.0);
    }
}
