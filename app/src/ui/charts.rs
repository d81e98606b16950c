//! A small SVG line chart: several series on one pair of axes, optionally log-scaled in y
//! (densities of 1% to 0.01% need it) or in percent, with round ticks (`sparselab::axis`),
//! axis titles, an optional reference line (chance) and a legend below the plot, where
//! names cannot collide.

use crate::axes::{YAxis, y_axis};
use leptos::prelude::*;
use sparselab::axis;

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
const H: f64 = 178.0;
const LEFT: f64 = 58.0;
const BOTTOM: f64 = 34.0;
const TOP: f64 = 8.0;
const RIGHT: f64 = 10.0;

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

/// `x_max`: the axis end (the run's total steps), so a run draws into its full width.
/// `reference`: a dashed horizontal line with its label (chance for the loss).
#[component]
pub fn LineChart(
    #[prop(into)] series: Signal<Vec<Series>>,
    #[prop(into)] x_max: Signal<f64>,
    #[prop(default = YAxis::Linear)] y_axis_kind: YAxis,
    #[prop(optional)] y_range: Option<(f64, f64)>,
    #[prop(into)] y_title: String,
    #[prop(optional, into)] reference: Option<Signal<Option<(f64, String)>>>,
    #[prop(into)] test_id: String,
) -> impl IntoView {
    let view_box = format!("0 0 {W} {H}");
    let log_y = y_axis_kind == YAxis::Log;
    let reference = move || reference.and_then(|r| r.get());
    // Computed once per change of the series, for the body and the tick attribute.
    let axes = Memo::new(move |_| {
        series.with(|all| {
            y_axis(
                all.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
                y_axis_kind,
                y_range,
                reference().map(|r| r.0),
            )
        })
    });
    let y_ticks_attr = move || {
        axes.with(|a| {
            a.1.iter()
                .map(|(_, l)| l.as_str())
                .collect::<Vec<_>>()
                .join("|")
        })
    };
    let body = move || {
        let all = series.get();
        let ((lo, hi), y_ticks) = axes.get();
        let map_y = move |y: f64| if log_y { y.max(1e-9).log10() } else { y };
        let (mlo, mhi) = (map_y(lo), map_y(hi));
        // Steps are whole: at least 4 on the axis, so no tick reads 0.2 of a step.
        let x_end = x_max.get().max(4.0);
        let px = move |x: f64| LEFT + x / x_end * (W - LEFT - RIGHT);
        let py = move |y: f64| {
            TOP + (1.0 - (map_y(y).clamp(mlo, mhi) - mlo) / (mhi - mlo).max(1e-12))
                * (H - TOP - BOTTOM)
        };
        let x_ticks = axis::ticks(0.0, x_end, 4);
        let x_step = if x_ticks.len() > 1 {
            x_ticks[1] - x_ticks[0]
        } else {
            1.0
        };
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
        let grid = y_ticks
            .iter()
            .map(|(v, label)| {
                let y = py(*v);
                view! {
                    <line x1=LEFT y1=y x2=W - RIGHT y2=y stroke="#eee"></line>
                    <text x=LEFT - 4.0 y=y + 3.0 text-anchor="end" font-size="9">{label.clone()}</text>
                }
            })
            .collect_view();
        let x_labels = x_ticks
            .iter()
            .map(|&v| {
                view! {
                    <line x1=px(v) y1=H - BOTTOM x2=px(v) y2=H - BOTTOM + 3.0 stroke="#999"></line>
                    <text x=px(v) y=H - BOTTOM + 12.0 text-anchor="middle" font-size="9">{axis::tick_label(v, x_step)}</text>
                }
            })
            .collect_view();
        let reference_line = reference().map(|(v, label)| {
            let y = py(v);
            view! {
                <line class="reference" x1=LEFT y1=y x2=W - RIGHT y2=y stroke="#777" stroke-dasharray="2 3"></line>
                <text x=W - RIGHT - 2.0 y=y - 3.0 text-anchor="end" font-size="9" fill="#555">{label}</text>
            }
        });
        view! {
            {grid}
            <line x1=LEFT y1=H - BOTTOM x2=W - RIGHT y2=H - BOTTOM stroke="#999"></line>
            <line x1=LEFT y1=TOP x2=LEFT y2=H - BOTTOM stroke="#999"></line>
            {x_labels}
            <text x=(LEFT + W - RIGHT) / 2.0 y=H - 4.0 text-anchor="middle" font-size="10">"training step"</text>
            <text transform=format!("translate(12 {}) rotate(-90)", (TOP + H - BOTTOM) / 2.0)
                text-anchor="middle" font-size="10">{y_title.clone()}</text>
            {reference_line}
            {lines}
        }
    };
    let legend = move || {
        series
            .get()
            .into_iter()
            .map(|s| {
                let style = if s.dashed {
                    format!("border-top: 2px dashed {}", s.color)
                } else if s.dots {
                    format!(
                        "background: {}; border-radius: 50%; height: 7px; width: 7px",
                        s.color
                    )
                } else {
                    format!("border-top: 2px solid {}", s.color)
                };
                view! { <span><i style=style></i>{s.name}</span> }
            })
            .collect_view()
    };
    view! {
        <svg class="chart" viewBox=view_box data-testid=test_id data-y-ticks=y_ticks_attr>{body}</svg>
        <div class="legend">{legend}</div>
    }
}
