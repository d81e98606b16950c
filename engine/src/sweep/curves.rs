//! The sweep's training curves: one SVG per sparsity, the training loss of every variant
//! against the step (mean over seeds, then a trailing mean over `SMOOTHING` steps), with
//! chance (ln of the class count) drawn, so a run that never leaves chance reads as a line
//! lying on it rather than as a curve.

use super::chart::{H, PALETTE, PLOT_B, PLOT_L, PLOT_R, PLOT_T, W, group, line, text, xml_escape};
use super::report::percent;
use crate::axis::{tick_label, ticks};
use crate::train::{Event, metrics::read_events};
use std::collections::BTreeMap;
use std::path::Path;

/// Steps in the trailing mean: one batch's loss is too noisy to read a trend from.
pub const SMOOTHING: usize = 10;

/// One run's training loss per step.
#[derive(Clone, Debug, PartialEq)]
pub struct LossCurve {
    pub variant: String,
    pub sparsity: f64,
    pub seed: u64,
    /// The dataset's classes (0 when the log predates the count).
    pub classes: usize,
    pub losses: Vec<(usize, f64)>,
}

/// The curve in a run's `metrics.jsonl`; a step logged twice (a resumed run) keeps its
/// last value. None when the log is missing or unreadable.
pub fn read_loss_curve(
    variant: &str,
    sparsity: f64,
    seed: u64,
    metrics: &Path,
) -> Option<LossCurve> {
    let mut classes = 0;
    let mut losses = BTreeMap::new();
    for event in read_events(metrics).ok()? {
        match event {
            Event::Start(s) => classes = s.classes,
            Event::Step(s) if s.loss.is_finite() => {
                losses.insert(s.step, s.loss);
            }
            _ => {}
        }
    }
    Some(LossCurve {
        variant: variant.to_string(),
        sparsity,
        seed,
        classes,
        losses: losses.into_iter().collect(),
    })
}

/// The mean over `runs` at every step each of them logged.
pub fn mean_over_seeds(runs: &[&LossCurve]) -> Vec<(usize, f64)> {
    let mut sums: BTreeMap<usize, (f64, usize)> = BTreeMap::new();
    for run in runs {
        for &(step, loss) in &run.losses {
            let e = sums.entry(step).or_default();
            e.0 += loss;
            e.1 += 1;
        }
    }
    sums.into_iter()
        .filter(|(_, (_, n))| *n == runs.len())
        .map(|(step, (sum, n))| (step, sum / n as f64))
        .collect()
}

/// A trailing mean over the last `window` points (fewer at the start).
pub fn trailing_mean(points: &[(usize, f64)], window: usize) -> Vec<(usize, f64)> {
    let window = window.max(1);
    (0..points.len())
        .map(|i| {
            let from = (i + 1).saturating_sub(window);
            let part = &points[from..=i];
            (
                points[i].0,
                part.iter().map(|p| p.1).sum::<f64>() / part.len() as f64,
            )
        })
        .collect()
}

/// A variant's drawn line: its name, how many seeds it averages, its points.
struct Series<'a> {
    variant: &'a str,
    seeds: usize,
    points: Vec<(usize, f64)>,
}

/// The loss curves of every variant at one sparsity, in first-seen variant order.
pub fn loss_curves_svg(curves: &[LossCurve], sparsity: f64, title: &str) -> String {
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" \
         viewBox=\"0 0 {W} {H}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>\n"
    );
    let heading = format!("{title}: training loss at {} sparsity", percent(sparsity));
    let mut centred = vec![format!(
        "<text x=\"{}\" y=\"28\" font-size=\"15\">{}</text>\n",
        W / 2.0,
        xml_escape(&heading)
    )];
    let here: Vec<&LossCurve> = curves
        .iter()
        .filter(|c| c.sparsity == sparsity && !c.losses.is_empty())
        .collect();
    let mut variants: Vec<&str> = Vec::new();
    for c in &here {
        if !variants.contains(&c.variant.as_str()) {
            variants.push(&c.variant);
        }
    }
    let series: Vec<Series> = variants
        .iter()
        .map(|v| {
            let runs: Vec<&LossCurve> = here.iter().copied().filter(|c| c.variant == *v).collect();
            Series {
                variant: v,
                seeds: runs.len(),
                points: trailing_mean(&mean_over_seeds(&runs), SMOOTHING),
            }
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    if series.is_empty() {
        centred.push(text(W / 2.0, H / 2.0, "no logged steps"));
        return out + &group("text-anchor=\"middle\"", centred) + "</svg>\n";
    }
    let classes = here.iter().map(|c| c.classes).max().unwrap_or(0);
    let chance = (classes > 1).then(|| (classes as f64).ln());

    let all = series.iter().flat_map(|s| s.points.iter());
    let max_step = all.clone().map(|p| p.0).max().unwrap_or(0).max(1) as f64;
    let (mut lo, mut hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    if let Some(c) = chance {
        (lo, hi) = (lo.min(c), hi.max(c));
    }
    let pad = ((hi - lo) * 0.08).max(0.05);
    let (lo, hi) = ((lo - pad).max(0.0), hi + pad);
    let y_ticks = ticks(lo, hi, 4);
    let y_step = if y_ticks.len() > 1 {
        y_ticks[1] - y_ticks[0]
    } else {
        1.0
    };
    let x_ticks = ticks(0.0, max_step, 4);
    let x_step = if x_ticks.len() > 1 {
        x_ticks[1] - x_ticks[0]
    } else {
        1.0
    };
    let px = |s: f64| PLOT_L + s / max_step * (PLOT_R - PLOT_L);
    let py = |v: f64| PLOT_B - (v - lo) / (hi - lo) * (PLOT_B - PLOT_T);

    out += &group(
        "class=\"grid\" stroke=\"#ddd\"",
        y_ticks.iter().map(|&t| line(PLOT_L, py(t), PLOT_R, py(t))),
    );
    out += &group(
        "class=\"y-labels\" text-anchor=\"end\"",
        y_ticks
            .iter()
            .map(|&t| text(PLOT_L - 6.0, py(t) + 4.0, &tick_label(t, y_step))),
    );
    out += &group(
        "class=\"x-ticks\" stroke=\"black\"",
        x_ticks
            .iter()
            .map(|&s| line(px(s), PLOT_B, px(s), PLOT_B + 5.0)),
    );
    out += &group(
        "class=\"x-labels\" text-anchor=\"middle\"",
        x_ticks
            .iter()
            .map(|&s| text(px(s), PLOT_B + 18.0, &tick_label(s, x_step))),
    );
    out += &format!(
        "<polyline fill=\"none\" stroke=\"black\" \
         points=\"{PLOT_L},{PLOT_T} {PLOT_L},{PLOT_B} {PLOT_R},{PLOT_B}\"/>\n\
         <text transform=\"translate(20 {}) rotate(-90)\" text-anchor=\"middle\">\
         training loss (mean over seeds, last {SMOOTHING} steps)</text>\n",
        (PLOT_T + PLOT_B) / 2.0
    );
    centred.push(text(
        (PLOT_L + PLOT_R) / 2.0,
        PLOT_B + 42.0,
        "training step",
    ));
    out += &group("text-anchor=\"middle\"", centred);
    if let Some(c) = chance {
        out += &format!(
            "<g class=\"chance\" stroke=\"#777\" stroke-dasharray=\"6 4\">{}</g>\n\
             <text class=\"chance-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#555\">\
             chance: ln {classes} = {c:.3}</text>\n",
            line(PLOT_L, py(c), PLOT_R, py(c)).trim_end(),
            PLOT_R - 4.0,
            py(c) - 5.0
        );
    }

    let mut legend = Vec::new();
    for (
        i,
        Series {
            variant,
            seeds,
            points,
        },
    ) in series.iter().enumerate()
    {
        let colour = PALETTE[i % PALETTE.len()];
        let coords: Vec<String> = points
            .iter()
            .map(|&(s, v)| format!("{:.1},{:.1}", px(s as f64), py(v)))
            .collect();
        out += &format!(
            "<polyline class=\"series\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\n",
            coords.join(" ")
        );
        let y = PLOT_T + 10.0 + 20.0 * i as f64;
        legend.push(format!(
            "<rect x=\"{}\" y=\"{:.1}\" width=\"20\" height=\"3\" fill=\"{colour}\"/>\n",
            PLOT_R + 15.0,
            y - 1.5
        ));
        let name = format!(
            "{variant} ({seeds} seed{})",
            if *seeds == 1 { "" } else { "s" }
        );
        legend.push(text(PLOT_R + 42.0, y + 4.0, &xml_escape(&name)));
    }
    out + &group("class=\"legend\"", legend) + "</svg>\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(variant: &str, seed: u64, losses: &[f64]) -> LossCurve {
        LossCurve {
            variant: variant.into(),
            sparsity: 0.9999,
            seed,
            classes: 10,
            losses: losses.iter().copied().enumerate().collect(),
        }
    }

    #[test]
    fn seeds_average_on_shared_steps_then_smooth_trailing() {
        let a = curve("rigl", 0, &[2.0, 4.0, 6.0]);
        let mut b = curve("rigl", 1, &[4.0, 6.0]);
        b.losses.push((5, 1.0));
        let mean = mean_over_seeds(&[&a, &b]);
        assert_eq!(mean, vec![(0, 3.0), (1, 5.0)], "step 2 and 5 lack a seed");
        assert_eq!(
            trailing_mean(&[(0, 1.0), (1, 3.0), (2, 8.0)], 2),
            vec![(0, 1.0), (1, 2.0), (2, 5.5)]
        );
    }

    #[test]
    fn the_chart_draws_each_variant_and_chance() {
        let curves = vec![
            curve("rigl", 0, &[std::f64::consts::LN_10; 30]),
            curve("rigl", 1, &[std::f64::consts::LN_10; 30]),
            curve(
                "east",
                0,
                &(0..30).map(|i| 2.3 - 0.01 * i as f64).collect::<Vec<_>>(),
            ),
        ];
        let svg = loss_curves_svg(&curves, 0.9999, "grid");
        assert_eq!(svg.matches("class=\"series\"").count(), 2);
        assert!(svg.contains("rigl (2 seeds)") && svg.contains("east (1 seed)"));
        assert!(svg.contains("chance: ln 10 = 2.303"));
        assert!(svg.contains("99.99% sparsity") && svg.contains("training step"));
        // Another sparsity has nothing logged.
        assert!(loss_curves_svg(&curves, 0.999, "grid").contains("no logged steps"));
    }
}
