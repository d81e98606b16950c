//! The sweep's accuracy plot: mean validation accuracy (with its spread over seeds) against
//! sparsity on a log-density axis, one series per variant, as a standalone SVG.

use super::report::{Row, percent};

pub(super) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub(super) const W: f64 = 720.0;
pub(super) const H: f64 = 440.0;
pub(super) const PLOT_L: f64 = 70.0;
pub(super) const PLOT_R: f64 = 560.0;
pub(super) const PLOT_T: f64 = 50.0;
pub(super) const PLOT_B: f64 = 380.0;
pub(super) const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// Log-density position; clamped so a sparsity of 1 cannot produce infinity.
fn log_density(sparsity: f64) -> f64 {
    -(1.0 - sparsity).max(1e-12).log10()
}

pub(super) fn line(x1: f64, y1: f64, x2: f64, y2: f64) -> String {
    format!("<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\"/>\n")
}

pub(super) fn text(x: f64, y: f64, body: &str) -> String {
    format!("<text x=\"{x:.1}\" y=\"{y:.1}\">{body}</text>\n")
}

/// Shared presentation attributes live on the group so each element stays short.
pub(super) fn group(attrs: &str, body: impl IntoIterator<Item = String>) -> String {
    let body: String = body.into_iter().collect();
    format!("<g {attrs}>\n{body}</g>\n")
}

/// Final accuracy against log density, one series per variant in first-seen order.
pub fn accuracy_svg(rows: &[Row], title: &str) -> String {
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" \
         viewBox=\"0 0 {W} {H}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>\n"
    );
    let mut centred = vec![format!(
        "<text x=\"{}\" y=\"28\" font-size=\"16\">{}</text>\n",
        W / 2.0,
        xml_escape(title)
    )];
    if rows.is_empty() {
        centred.push(text(W / 2.0, H / 2.0, "no finished runs"));
        return out + &group("text-anchor=\"middle\"", centred) + "</svg>\n";
    }

    let mut sparsities: Vec<f64> = rows.iter().map(|r| r.sparsity).collect();
    sparsities.sort_by(f64::total_cmp);
    sparsities.dedup();
    let lo = log_density(sparsities[0]);
    let hi = log_density(sparsities[sparsities.len() - 1]);
    let mid_x = (PLOT_L + PLOT_R) / 2.0;
    // Padding keeps the outermost markers off the axes.
    let pad = 30.0;
    let px = |s: f64| match hi - lo {
        span if span < 1e-12 => mid_x,
        span => PLOT_L + pad + (log_density(s) - lo) / span * (PLOT_R - PLOT_L - 2.0 * pad),
    };
    // `f64::max` ignores NaN, so a missing std counts as zero spread.
    let top = rows
        .iter()
        .map(|r| r.last.mean + r.last.std.max(0.0))
        .filter(|v| v.is_finite())
        .fold(f64::NAN, f64::max);
    let ymax = if top.is_nan() {
        100.0
    } else {
        ((top / 10.0).ceil() * 10.0).clamp(10.0, 100.0)
    };
    let py = |acc: f64| PLOT_B - acc.clamp(0.0, ymax) / ymax * (PLOT_B - PLOT_T);
    let y_ticks = (0..=(ymax / 10.0) as usize).map(|i| i as f64 * 10.0);

    out += &group(
        "class=\"grid\" stroke=\"#ddd\"",
        y_ticks.clone().map(|t| line(PLOT_L, py(t), PLOT_R, py(t))),
    );
    out += &group(
        "class=\"y-labels\" text-anchor=\"end\"",
        y_ticks.map(|t| text(PLOT_L - 6.0, py(t) + 4.0, &format!("{t:.0}"))),
    );
    out += &group(
        "class=\"x-ticks\" stroke=\"black\"",
        sparsities
            .iter()
            .map(|&s| line(px(s), PLOT_B, px(s), PLOT_B + 5.0)),
    );
    out += &group(
        "class=\"x-labels\" text-anchor=\"middle\"",
        sparsities
            .iter()
            .map(|&s| text(px(s), PLOT_B + 18.0, &percent(s))),
    );
    out += &format!(
        "<polyline fill=\"none\" stroke=\"black\" \
         points=\"{PLOT_L},{PLOT_T} {PLOT_L},{PLOT_B} {PLOT_R},{PLOT_B}\"/>\n\
         <text transform=\"translate(20 {}) rotate(-90)\" text-anchor=\"middle\">\
         final val accuracy (%)</text>\n",
        (PLOT_T + PLOT_B) / 2.0
    );
    centred.push(text(
        mid_x,
        PLOT_B + 42.0,
        "sparsity (log scale: −log10(1 − sparsity))",
    ));
    out += &group("text-anchor=\"middle\"", centred);

    let mut variants: Vec<&str> = Vec::new();
    for r in rows {
        if !variants.contains(&r.variant.as_str()) {
            variants.push(&r.variant);
        }
    }
    let mut legend = Vec::new();
    for (i, v) in variants.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let mut pts: Vec<&Row> = rows
            .iter()
            .filter(|r| r.variant == *v && r.last.mean.is_finite())
            .collect();
        pts.sort_by(|a, b| a.sparsity.total_cmp(&b.sparsity));
        let coords: Vec<String> = pts
            .iter()
            .map(|r| format!("{:.1},{:.1}", px(r.sparsity), py(r.last.mean)))
            .collect();
        let mut series = vec![format!(
            "<polyline fill=\"none\" stroke-width=\"2\" points=\"{}\"/>\n",
            coords.join(" ")
        )];
        for r in pts {
            let (x, m, sd) = (px(r.sparsity), r.last.mean, r.last.std);
            if sd.is_finite() {
                series.push(line(x, py(m - sd), x, py(m + sd)));
            }
            series.push(format!(
                "<circle cx=\"{x:.1}\" cy=\"{:.1}\" r=\"3.5\"/>\n",
                py(m)
            ));
        }
        let attrs = format!("class=\"series\" stroke=\"{colour}\" fill=\"{colour}\"");
        out += &group(&attrs, series);
        let y = PLOT_T + 10.0 + 20.0 * i as f64;
        legend.push(format!(
            "<rect x=\"{}\" y=\"{:.1}\" width=\"20\" height=\"3\" fill=\"{colour}\"/>\n",
            PLOT_R + 15.0,
            y - 1.5
        ));
        legend.push(text(PLOT_R + 42.0, y + 4.0, &xml_escape(v)));
    }
    out + &group("class=\"legend\"", legend) + "</svg>\n"
}
