//! A small SVG line chart: several series on one pair of axes, optionally log-scaled in y
//! (densities of 1% to 0.01% need it), with the extremes labelled.

use leptos::prelude::*;

#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub color: String,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
    /// Draw the points as dots (evaluations) rather than a line.
    pub dots: bool,
}

impl Series {
    pub fn line(name: &str, color: &str, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            color: color.into(),
            points,
            dashed: false,
            dots: false,
        }
    }

    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }

    pub fn dots(mut self) -> Self {
        self.dots = true;
        self
    }
}

const W: f64 = 360.0;
const H: f64 = 170.0;
const LEFT: f64 = 46.0;
const BOTTOM: f64 = 20.0;
const TOP: f64 = 8.0;
const RIGHT: f64 = 8.0;

/// At most this many points per polyline: long runs are thinned evenly.
const MAX_POINTS: usize = 600;

fn thin(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    if points.len() <= MAX_POINTS {
        return points.to_vec();
    }
    let stride = points.len() as f64 / MAX_POINTS as f64;
    let mut out: Vec<(f64, f64)> = (0..MAX_POINTS)
        .map(|i| points[(i as f64 * stride) as usize])
        .collect();
    out.push(*points.last().expect("non-empty"));
    out
}

fn fmt_tick(v: f64, log: bool) -> String {
    let v = if log { 10f64.powf(v) } else { v };
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1000.0 {
        format!("{:.0}", v)
    } else if v.abs() >= 1.0 {
        format!("{:.2}", v)
    } else if v.abs() >= 0.001 {
        format!("{:.3}", v)
    } else {
        format!("{:.0e}", v)
    }
}

/// `x_max`: the axis end (the run's total steps), so a run draws into its full width.
#[component]
pub fn LineChart(
    #[prop(into)] series: Signal<Vec<Series>>,
    #[prop(into)] x_max: Signal<f64>,
    #[prop(default = false)] log_y: bool,
    #[prop(optional)] y_range: Option<(f64, f64)>,
    #[prop(into)] test_id: String,
) -> impl IntoView {
    let view_box = format!("0 0 {W} {H}");
    let body = move || {
        let all = series.get();
        let map_y = |y: f64| if log_y { y.max(1e-6).log10() } else { y };
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for s in &all {
            for &(_, y) in &s.points {
                if y.is_finite() {
                    lo = lo.min(map_y(y));
                    hi = hi.max(map_y(y));
                }
            }
        }
        if let Some((a, b)) = y_range {
            lo = map_y(a);
            hi = map_y(b);
        }
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if hi - lo < 1e-9 {
            // A flat series (RigL's constant density): centre it in a decade / ±5%.
            let pad = if log_y {
                0.5
            } else {
                1e-3_f64.max(lo.abs() * 0.05)
            };
            (lo, hi) = (lo - pad, hi + pad);
        }
        let x_end = x_max.get().max(1.0);
        let px = move |x: f64| LEFT + x / x_end * (W - LEFT - RIGHT);
        let py = move |y: f64| TOP + (1.0 - (map_y(y) - lo) / (hi - lo)) * (H - TOP - BOTTOM);
        let lines = all
            .iter()
            .map(|s| {
                let pts = thin(&s.points);
                if s.dots {
                    pts.iter()
                        .map(|&(x, y)| {
                            view! { <circle cx=px(x) cy=py(y) r="3" fill=s.color.clone()></circle> }
                        })
                        .collect_view()
                        .into_any()
                } else {
                    let d = pts
                        .iter()
                        .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
                        .collect::<Vec<_>>()
                        .join(" ");
                    view! {
                        <polyline points=d fill="none" stroke=s.color.clone() stroke-width="1.6"
                            stroke-dasharray=if s.dashed { "5 3" } else { "none" }></polyline>
                    }
                    .into_any()
                }
            })
            .collect_view();
        let legend = all
            .iter()
            .enumerate()
            .map(|(i, s)| {
                view! {
                    <text x=LEFT + 6.0 + (i as f64 % 3.0) * 104.0 y=TOP + 10.0 + (i / 3) as f64 * 11.0
                        fill=s.color.clone() font-size="9">{s.name.clone()}</text>
                }
            })
            .collect_view();
        view! {
            <line x1=LEFT y1=H - BOTTOM x2=W - RIGHT y2=H - BOTTOM stroke="#999"></line>
            <line x1=LEFT y1=TOP x2=LEFT y2=H - BOTTOM stroke="#999"></line>
            <text x=LEFT - 4.0 y=TOP + 8.0 text-anchor="end" font-size="9">{fmt_tick(hi, log_y)}</text>
            <text x=LEFT - 4.0 y=H - BOTTOM text-anchor="end" font-size="9">{fmt_tick(lo, log_y)}</text>
            <text x=LEFT y=H - 6.0 font-size="9">"0"</text>
            <text x=W - RIGHT y=H - 6.0 text-anchor="end" font-size="9">{format!("{} steps", x_end as usize)}</text>
            {lines}
            {legend}
        }
    };
    view! {
        <svg class="chart" viewBox=view_box data-testid=test_id>{body}</svg>
    }
}
