//! The mask views: per-layer density bars and a heatmap of each layer's mask, with the
//! weights regrown (blue) and pruned (red) since the previous report marked.

use crate::protocol::{LayerHeatmap, MaskReport};
use leptos::html::Canvas;
use leptos::prelude::*;
use wasm_bindgen::{Clamped, JsCast};
use web_sys::{CanvasRenderingContext2d, ImageData};

fn short(path: &str) -> String {
    path.trim_end_matches(".weight").to_string()
}

/// The reported layers' paths: the keys the bars and heatmaps keep their elements under.
fn layer_paths(masks: Signal<Option<MaskReport>>) -> Vec<String> {
    masks.with(|m| {
        m.as_ref()
            .map(|m| m.layers.iter().map(|l| l.path.clone()).collect())
            .unwrap_or_default()
    })
}

/// One layer's row of the density bars.
#[derive(Clone, PartialEq)]
struct BarRow {
    path: String,
    alive: usize,
    total: usize,
    on_sparse_kernels: bool,
}

impl BarRow {
    fn density(&self) -> f64 {
        self.alive as f64 / self.total.max(1) as f64
    }

    fn kernel(&self) -> String {
        if self.on_sparse_kernels {
            "sparse"
        } else {
            "dense"
        }
        .to_string()
    }

    /// The bar's length, log-scaled: 100% full, 0.01% nearly empty.
    fn length(&self) -> String {
        let len = if self.alive == 0 {
            0.0
        } else {
            (1.0 + self.density().log10() / 4.0).clamp(0.01, 1.0) * 100.0
        };
        format!("{len:.1}%")
    }

    fn figures(&self) -> String {
        format!(
            "{:.3}% ({}/{})",
            self.density() * 100.0,
            self.alive,
            self.total
        )
    }
}

#[component]
pub fn DensityBars(
    #[prop(into)] masks: Signal<Option<MaskReport>>,
    /// The layers on the sparse kernels; the rest run dense masked convolutions.
    #[prop(into)]
    sparse: Signal<Vec<String>>,
) -> impl IntoView {
    let row = move |path: &str| -> Option<BarRow> {
        let (alive, total) = masks.with(|m| {
            m.as_ref()?
                .layers
                .iter()
                .find(|l| l.path == path)
                .map(|l| (l.nnz, l.numel))
        })?;
        Some(BarRow {
            path: path.to_string(),
            alive,
            total,
            on_sparse_kernels: sparse.with(|s| s.iter().any(|p| p == path)),
        })
    };
    // Rows stay in the page and update their figures: a mask update does not rebuild them.
    view! {
        <Show when=move || masks.with(Option::is_some)
            fallback=|| view! { <p class="muted">"no masks yet"</p> }>
            <For each=move || layer_paths(masks) key=|p| p.clone() let:path>
                <DensityBar row=Memo::new(move |_| row(&path)) />
            </For>
        </Show>
    }
}

#[component]
fn DensityBar(#[prop(into)] row: Signal<Option<BarRow>>) -> impl IntoView {
    let read =
        move |f: fn(&BarRow) -> String| move || row.with(|r| r.as_ref().map(f).unwrap_or_default());
    view! {
        <div class="bar-row density-bar" data-nnz=read(|r| r.alive.to_string())
            data-numel=read(|r| r.total.to_string()) data-kernel=read(BarRow::kernel)>
            <span class="bar-label">{read(|r| short(&r.path))}</span>
            <span class=move || format!("kernel-tag {}", read(BarRow::kernel)()) title="the convolution this layer runs">{read(BarRow::kernel)}</span>
            <span class="bar"><span class="bar-fill" style:width=read(BarRow::length)></span></span>
            <span class="bar-value">{read(BarRow::figures)}</span>
        </div>
    }
}

/// A layer's caption: its counts and what the last mask update changed.
fn caption(layer: &LayerHeatmap, step: usize) -> String {
    let pooled = if layer.pool != (1, 1) {
        format!(
            " (each cell pools {}x{} weights)",
            layer.pool.0, layer.pool.1
        )
    } else {
        String::new()
    };
    format!(
        "{}: {} of {} active; {} regrown, {} pruned at step {step}{pooled}",
        short(&layer.path),
        layer.nnz,
        layer.numel,
        layer.grown,
        layer.pruned,
    )
}

// The heatmaps' colours, drawn by `pixels` and shown by `MaskLegend`.
const REGROWN: [u8; 3] = [40, 110, 255];
const PRUNED: [u8; 3] = [235, 50, 50];
const ZERO: [u8; 3] = [236, 236, 236];

/// An active cell: dark green, brighter the larger its share `a` (1–255) of alive weights.
fn active_colour(a: u8) -> [u8; 3] {
    [20, (90 + a as u32 * 165 / 255) as u8, 60]
}

fn css(rgb: [u8; 3]) -> String {
    format!("background: rgb({},{},{})", rgb[0], rgb[1], rgb[2])
}

/// The cell colours of a layer's heatmap, RGBA.
fn pixels(layer: &LayerHeatmap) -> Vec<u8> {
    let mut px = vec![0u8; layer.rows * layer.cols * 4];
    for (i, cell) in px.chunks_exact_mut(4).enumerate() {
        let rgb = match (layer.change[i], layer.active[i]) {
            (1, _) => REGROWN,
            (2, _) => PRUNED,
            (_, a) if a > 0 => active_colour(a),
            _ => ZERO,
        };
        cell.copy_from_slice(&[rgb[0], rgb[1], rgb[2], 255]);
    }
    px
}

/// One layer's heatmap. It stays in the page while its layer exists and redraws its pixels
/// when a report comes: a mask update costs a redraw, not a rebuilt page section.
#[component]
fn LayerCanvas(#[prop(into)] layer: Signal<Option<(LayerHeatmap, usize)>>) -> impl IntoView {
    let canvas = NodeRef::<Canvas>::new();
    Effect::new(move |_| {
        let Some(c) = canvas.get() else { return };
        layer.with(|l| {
            let Some((l, _)) = l else { return };
            let Some(ctx) = c
                .get_context("2d")
                .ok()
                .flatten()
                .and_then(|x| x.dyn_into::<CanvasRenderingContext2d>().ok())
            else {
                return;
            };
            let px = pixels(l);
            if let Ok(img) = ImageData::new_with_u8_clamped_array_and_sh(
                Clamped(&px),
                l.cols as u32,
                l.rows as u32,
            ) {
                let _ = ctx.put_image_data(&img, 0.0, 0.0);
            }
        });
    });
    let read = move |f: fn(&LayerHeatmap, usize) -> String| {
        move || layer.with(|l| l.as_ref().map(|(l, step)| f(l, *step)).unwrap_or_default())
    };
    let title = read(caption);
    // Thin layers are stretched so every layer is visible at a similar size. Only the width
    // is set: the height follows the canvas's aspect ratio, so a narrow screen shrinks the
    // heatmap instead of overflowing.
    let width = read(|l, _| {
        let scale = (480.0 / l.cols as f64)
            .min(96.0 / l.rows as f64)
            .clamp(1.0, 24.0);
        format!("{:.0}px", l.cols as f64 * scale)
    });
    view! {
        <figure class="heatmap" title=title data-grown=read(|l, _| l.grown.to_string())
            data-pruned=read(|l, _| l.pruned.to_string())>
            <canvas node_ref=canvas width=read(|l, _| l.cols.to_string())
                height=read(|l, _| l.rows.to_string()) style:width=width></canvas>
            <figcaption>{read(caption)}</figcaption>
        </figure>
    }
}

/// What the heatmaps' colours, rows and columns mean.
#[component]
pub fn MaskLegend() -> impl IntoView {
    view! {
        <div class="legend" id="mask-legend">
            <span><i class="swatch" style=css(active_colour(255))></i><i class="swatch" style=css(active_colour(1))></i>"active (brighter: more of the cell's weights alive)"</span>
            <span><i class="swatch" style=css(REGROWN)></i>"regrown at the last mask update"</span>
            <span><i class="swatch" style=css(PRUNED)></i>"pruned at the last mask update"</span>
            <span><i class="swatch" style=css(ZERO)></i>"zero"</span>
            <span>"rows: output channels · columns: input channels × kernel positions (large layers pooled into cells)"</span>
        </div>
    }
}

#[component]
pub fn MaskHeatmaps(#[prop(into)] masks: Signal<Option<MaskReport>>) -> impl IntoView {
    let layer = move |path: &str| {
        masks.with(|m| {
            let m = m.as_ref()?;
            let l = m.layers.iter().find(|l| l.path == path)?;
            Some((l.clone(), m.step))
        })
    };
    view! {
        <Show when=move || masks.with(Option::is_some)
            fallback=|| view! { <p class="muted">"no masks yet"</p> }>
            <div class="heatmaps" data-step=move || masks.with(|m| m.as_ref().map(|m| m.step))>
                // A memo per layer: its parts read one copy, made once per report.
                <For each=move || layer_paths(masks) key=|p| p.clone() let:path>
                    <LayerCanvas layer=Memo::new(move |_| layer(&path)) />
                </For>
            </div>
        </Show>
    }
}
