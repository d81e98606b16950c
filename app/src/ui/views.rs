//! The evaluation views: weight-magnitude histogram, confusion matrix, sample strip.

use crate::protocol::{EvalReport, SamplePrediction, WeightHistogram};
use leptos::html::Canvas;
use leptos::prelude::*;
use wasm_bindgen::{Clamped, JsCast};
use web_sys::{CanvasRenderingContext2d, ImageData};

#[component]
pub fn Histogram(#[prop(into)] hist: Signal<Option<WeightHistogram>>) -> impl IntoView {
    move || {
        let Some(h) = hist.get() else {
            return view! { <p class="muted">"no weights yet"</p> }.into_any();
        };
        let max = h.counts.iter().copied().max().unwrap_or(1).max(1) as f64;
        let n = h.counts.len() as f64;
        let (w, top) = (360.0, 130.0);
        let bars = h
            .counts
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let bh = c as f64 / max * top;
                view! { <rect x=i as f64 * w / n y=top - bh width=w / n - 1.0 height=bh fill="#3a7"></rect> }
            })
            .collect_view();
        let total: usize = h.counts.iter().sum();
        view! {
            <svg class="chart" viewBox="0 0 360 150" data-testid="weight-histogram" data-total=total>
                {bars}
                <text x="0" y="146" font-size="9">{format!("|w| = 1e{}", h.log10_min)}</text>
                <text x="360" y="146" font-size="9" text-anchor="end">{format!("1e{}", h.log10_max)}</text>
            </svg>
            <p class="muted">{format!("{total} active non-zero weights at step {}; {} active at exactly 0 (just regrown)", h.step, h.zeros)}</p>
        }
        .into_any()
    }
}

#[component]
pub fn Confusion(
    #[prop(into)] eval: Signal<Option<EvalReport>>,
    #[prop(into)] classes: Signal<Vec<String>>,
) -> impl IntoView {
    move || {
        let Some(e) = eval.get() else {
            return view! { <p class="muted">"evaluated at each epoch's end and on pause"</p> }
                .into_any();
        };
        let names = classes.get();
        let k = e.confusion.len();
        let cell = (300.0 / k as f64).min(26.0);
        // Class names along both sides while they can be read (up to 20 classes).
        let labelled = k <= 20;
        // The column names lean right past the last column: room for them on that side.
        let (left, top, right) = if labelled {
            (78.0, 70.0, 30.0)
        } else {
            (0.0, 0.0, 0.0)
        };
        let name = |i: usize| names.get(i).cloned().unwrap_or_else(|| i.to_string());
        let short = |i: usize| name(i).chars().take(12).collect::<String>();
        let rects = e
            .confusion
            .iter()
            .enumerate()
            .flat_map(|(t, row)| {
                let total: usize = row.iter().sum::<usize>().max(1);
                row.iter()
                    .enumerate()
                    .map(move |(p, &c)| (t, p, c as f64 / total as f64, c))
                    .collect::<Vec<_>>()
            })
            .map(|(t, p, frac, c)| {
                let fill = confusion_colour(t == p, frac);
                view! {
                    <rect x=left + p as f64 * cell y=top + t as f64 * cell width=cell height=cell fill=fill stroke="#fff" stroke-width="0.5">
                        <title>{format!("true {} → predicted {}: {c} ({:.0}% of the true class)", name(t), name(p), frac * 100.0)}</title>
                    </rect>
                }
            })
            .collect_view();
        let labels = labelled.then(|| {
            (0..k)
                .map(|i| {
                    let mid = (i as f64 + 0.5) * cell;
                    view! {
                        <text x=left - 4.0 y=top + mid + 3.0 text-anchor="end" font-size="9">{short(i)}</text>
                        <text transform=format!("translate({} {}) rotate(-60)", left + mid + 3.0, top - 4.0) font-size="9">{short(i)}</text>
                    }
                })
                .collect_view()
        });
        let titles = labelled.then(|| {
            view! {
                <text x=left + cell * k as f64 / 2.0 y=10.0 text-anchor="middle" font-size="10">"predicted"</text>
                <text transform=format!("translate(10 {}) rotate(-90)", top + cell * k as f64 / 2.0) text-anchor="middle" font-size="10">"true class"</text>
            }
        });
        let side = cell * k as f64;
        view! {
            <svg class="confusion" viewBox=format!("0 0 {} {}", left + side + right, top + side) style:max-width="380px"
                data-testid="confusion" data-step=e.step>{titles}{labels}{rects}</svg>
            <div class="legend" id="confusion-legend">
                <span><i class="scale" style="background: linear-gradient(to right, rgb(255,255,255), rgb(55,255,55))"></i>"correct: 0% → 100% of the true class"</span>
                <span><i class="scale" style="background: linear-gradient(to right, rgb(255,255,255), rgb(255,55,55))"></i>"predicted as another class: 0% → 100%"</span>
            </div>
            <p class="muted" id="confusion-caption">{format!(
                "validation at step {}: {:.1}% of {} images (rows: true class, columns: predicted; each row sums to 100%)",
                e.step, e.accuracy * 100.0, e.images
            )}</p>
        }
        .into_any()
    }
}

/// A confusion cell's colour: green on the diagonal, red off it, darker the larger the
/// share of its true class (white at 0%).
fn confusion_colour(correct: bool, share: f64) -> String {
    let shade = (255.0 - share.clamp(0.0, 1.0) * 200.0) as u8;
    if correct {
        format!("rgb({shade},255,{shade})")
    } else {
        format!("rgb(255,{shade},{shade})")
    }
}

#[component]
fn Sample(sample: SamplePrediction, names: Vec<String>) -> impl IntoView {
    let canvas = NodeRef::<Canvas>::new();
    let rgba = sample.rgba.clone();
    Effect::new(move |_| {
        let Some(c) = canvas.get() else { return };
        if let Some(ctx) = c
            .get_context("2d")
            .ok()
            .flatten()
            .and_then(|x| x.dyn_into::<CanvasRenderingContext2d>().ok())
            && let Ok(img) = ImageData::new_with_u8_clamped_array_and_sh(Clamped(&rgba), 32, 32)
        {
            let _ = ctx.put_image_data(&img, 0.0, 0.0);
        }
    });
    let name = |i: usize| names.get(i).cloned().unwrap_or_else(|| i.to_string());
    let right = sample.label == sample.predicted;
    view! {
        <figure class="sample" class:wrong=!right>
            <canvas node_ref=canvas width="32" height="32"></canvas>
            <figcaption>
                {format!("{} ({:.0}%)", name(sample.predicted), sample.probability * 100.0)}
                <br/>
                <span class="muted">{format!("true: {}", name(sample.label))}</span>
            </figcaption>
        </figure>
    }
}

#[component]
pub fn Samples(
    #[prop(into)] eval: Signal<Option<EvalReport>>,
    #[prop(into)] classes: Signal<Vec<String>>,
) -> impl IntoView {
    move || {
        let Some(e) = eval.get() else {
            return ().into_any();
        };
        let names = classes.get();
        view! {
            <div class="samples">
                {e.samples.into_iter().map(|s| view! { <Sample sample=s names=names.clone() /> }).collect_view()}
            </div>
        }
        .into_any()
    }
}
