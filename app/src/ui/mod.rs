//! The page: settings from the URL hash, the worker bridge, the live views.

mod charts;
mod controls;
mod explain;
mod masks;
mod state;
mod status;
mod views;

use crate::axes::YAxis;
use charts::{LineChart, Series};
use explain::Explain;
use leptos::prelude::*;
use masks::{DensityBars, MaskHeatmaps, MaskLegend};
use state::State;
use views::{Confusion, Histogram, Samples};

pub fn mount() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

type Points = Vec<(f64, f64)>;

/// Colours of kept runs in the comparison overlays.
const PALETTE: &[&str] = &["#888", "#c60", "#909", "#066", "#660", "#06c"];

#[component]
fn App() -> impl IntoView {
    let state = State::new();
    state.start();
    let x_max = Signal::derive(move || {
        state.info.with(|i| {
            i.as_ref()
                .map(|i| i.start.total_steps as f64)
                .unwrap_or(1.0)
        })
    });
    // The charts' series are memos: each is computed once per change of what it reads,
    // however many parts of its chart read it.
    let loss_series = Memo::new(move |_| {
        let mut out: Vec<Series> = state
            .kept
            .get()
            .iter()
            .enumerate()
            .map(|(i, k)| {
                Series::line(&k.label, PALETTE[i % PALETTE.len()], k.smoothed_loss()).dashed()
            })
            .collect();
        out.push(Series::line(
            "train loss",
            "#2a6",
            state.smoothed(|s| s.loss),
        ));
        out.push(
            Series::line(
                "val loss",
                "#d33",
                state
                    .evals
                    .with(|e| e.iter().map(|p| (p.step as f64, p.loss)).collect()),
            )
            .dots(),
        );
        out
    });
    let acc_series = Memo::new(move |_| {
        let mut out: Vec<Series> = state
            .kept
            .get()
            .iter()
            .enumerate()
            .map(|(i, k)| {
                Series::line(&k.label, PALETTE[i % PALETTE.len()], k.val_accuracy()).dashed()
            })
            .collect();
        out.push(Series::line(
            "train acc",
            "#2a6",
            state.smoothed(|s| s.accuracy),
        ));
        out.push(
            Series::line(
                "val acc",
                "#d33",
                state
                    .evals
                    .with(|e| e.iter().map(|p| (p.step as f64, p.accuracy)).collect()),
            )
            .dots(),
        );
        out
    });
    let sparse_layers = Signal::derive(move || {
        state.info.with(|i| {
            i.as_ref()
                .map(|i| i.start.sparse_kernel_layers.clone())
                .unwrap_or_default()
        })
    });
    let density_series = Memo::new(move |_| {
        let plan = state.info.with(|i| {
            i.as_ref()
                .map(|i| {
                    i.schedule
                        .iter()
                        .map(|p| (p.step as f64, p.density))
                        .collect()
                })
                .unwrap_or_default()
        });
        vec![
            Series::line("planned density", "#999", plan).dashed(),
            Series::line(
                "mask density (counted)",
                "#26c",
                // Counted as the plan is, over the weights at every use (a step's own
                // `density` is over the learnable ones, fewer with weight sharing).
                state.info.with(|i| {
                    let Some(i) = i else { return Vec::new() };
                    state.steps.with(|s| {
                        s.iter()
                            .map(|r| (r.step as f64, i.alive_fraction(r.nnz)))
                            .collect()
                    })
                }),
            ),
        ]
    });
    let phase_series = Memo::new(move |_| {
        let (phase, lr): (Points, Points) = state.info.with(|i| {
            i.as_ref()
                .map(|i| {
                    let lr_max = i.schedule.iter().map(|p| p.lr).fold(1e-12, f64::max);
                    (
                        i.schedule
                            .iter()
                            .filter_map(|p| p.phase.map(|ph| (p.step as f64, ph)))
                            .collect(),
                        i.schedule
                            .iter()
                            .map(|p| (p.step as f64, p.lr / lr_max))
                            .collect(),
                    )
                })
                .unwrap_or_default()
        });
        let mut out = vec![Series::line("LR / peak LR", "#999", lr).dashed()];
        if !phase.is_empty() {
            out.push(Series::line("DyReLU p (planned)", "#c60", phase).dashed());
            out.push(Series::line(
                "DyReLU p (each step)",
                "#c60",
                state.steps.with(|s| {
                    s.iter()
                        .filter_map(|r| r.phase.map(|p| (r.step as f64, p)))
                        .collect()
                }),
            ));
        }
        out
    });
    let classes = Signal::derive(move || {
        state.info.with(|i| {
            i.as_ref()
                .map(|i| i.class_names.clone())
                .unwrap_or_default()
        })
    });
    // Chance: the loss of a network that predicts every class equally, ln C.
    let chance = Signal::derive(move || {
        let classes = classes.with(Vec::len);
        (classes > 1).then(|| {
            (
                (classes as f64).ln(),
                format!("chance: ln {classes} = {:.2}", (classes as f64).ln()),
            )
        })
    });
    let hidden = move |name: &'static str| state.settings.with(|s| s.hide.contains(name));
    // Explanations beside the plots follow the run's method and tricks.
    let concerns = move |topic: &str| {
        state.settings.with(|s| {
            explain::concerns(
                topic,
                &s.method,
                s.east_dyrelu,
                s.east_sharing,
                s.east_cyclic,
            )
        })
    };

    view! {
        <header>
            <h1>"sparselab"<span class="muted">" extreme sparse training, live"</span></h1>
            <status::StatusLine state=state />
            <status::SparsityLine state=state />
        </header>
        <status::Banners state=state />
        <main>
            <aside class="controls">
                <controls::Controls state=state />
            </aside>
            <section class="views">
                <div class="card">
                    <h2>"Loss"</h2>
                    <LineChart series=loss_series x_max=x_max y_title="loss (cross-entropy)" reference=chance test_id="loss-chart" />
                </div>
                <div class="card">
                    <h2>"Accuracy"</h2>
                    <LineChart series=acc_series x_max=x_max y_axis_kind=YAxis::Percent y_range=(0.0, 1.0) y_title="accuracy" test_id="acc-chart" />
                </div>
                <div class="card">
                    <h2>"Density over training (log scale)"</h2>
                    <LineChart series=density_series x_max=x_max y_axis_kind=YAxis::Log y_title="density (weights alive)" test_id="density-chart" />
                    <Show when=move || !hidden("explain") && concerns("cyclic")>
                        <Explain title="Cyclic sparsity (EAST)" text=explain::CYCLIC />
                    </Show>
                    <Show when=move || !hidden("explain") && concerns("recipes")>
                        <Explain title="Recipes: GMP, AC/DC, LRR" text=explain::RECIPES />
                    </Show>
                </div>
                <div class="card">
                    <h2>{move || if concerns("dyrelu") { "DyReLU phase and learning rate" } else { "Learning rate" }}</h2>
                    <LineChart series=phase_series x_max=x_max y_range=(0.0, 1.0) y_title="p, and LR / peak LR" test_id="phase-chart" />
                    <Show when=move || !hidden("explain") && concerns("dyrelu")>
                        <Explain title="DyReLU phasing (EAST)" text=explain::DYRELU />
                    </Show>
                    <Show when=move || !hidden("explain") && concerns("sculpt")>
                        <Explain title="SCULPT-ing" text=explain::SCULPT />
                    </Show>
                </div>
                <div class="card wide">
                    <h2>"Per-layer density"</h2>
                    <div data-testid="density-bars"><DensityBars masks=state.masks sparse=sparse_layers /></div>
                    <Show when=move || !hidden("explain")>
                        <Explain title="Layer-wise densities (ERK, uniform)" text=explain::DISTRIBUTION />
                    </Show>
                    <Show when=move || !hidden("explain") && concerns("sharing")>
                        <Explain title="Weight sharing (EAST)" text=explain::SHARING />
                    </Show>
                </div>
                <div class="card wide">
                    <h2>"Masks"</h2>
                    <MaskLegend />
                    <MaskHeatmaps masks=state.masks />
                    <Show when=move || !hidden("explain") && concerns("dynamic")><Explain title="Prune and regrow (SET, RigL)" text=explain::DYNAMIC /></Show>
                </div>
                <div class="card">
                    <h2>"Weight magnitudes (active weights)"</h2>
                    <Histogram hist=state.weights />
                </div>
                <div class="card">
                    <h2>"Confusion matrix"</h2>
                    <Confusion eval=state.last_eval classes=classes />
                </div>
                <div class="card wide">
                    <h2>"Sample predictions (validation)"</h2>
                    <Samples eval=state.last_eval classes=classes />
                </div>
                <Show when=move || !hidden("explain")>
                    <details class="card wide" id="more-explanations">
                        <summary>"More: what the other methods and tricks do"</summary>
                        {move || explain::TOPICS.iter().filter(|(topic, _, _)| !concerns(topic)).map(|&(topic, title, text)| view! {
                            <details class="explain" data-topic=topic><summary>{title}</summary><p>{text}</p></details>
                        }).collect_view()}
                    </details>
                </Show>
            </section>
        </main>
    }
}
