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

#[component]
pub fn DensityBars(
    #[prop(into)] masks: Signal<Option<MaskReport>>,
    /// The layers on the sparse kernels; the rest run dense masked convolutions.
    #[prop(into)]
    sparse: Signal<Vec<String>>,
) -> impl IntoView {
    move || {
        let sparse = sparse.get();
        masks.with(|m| {
            let Some(m) = m else {
                return view! { <p class="muted">"no masks yet"</p> }.into_any();
            };
            m.layers
                .iter()
                .map(|l| {
                    let density = l.nnz as f64 / l.numel.max(1) as f64;
                    // The bar's length is log-scaled: 100% full, 0.01% nearly empty.
                    let len = if l.nnz == 0 {
                        0.0
                    } else {
                        (1.0 + density.log10() / 4.0).clamp(0.01, 1.0) * 100.0
                    };
                    let kernel = if sparse.contains(&l.path) { "sparse" } else { "dense" };
                    view! {
                        <div class="bar-row density-bar" data-nnz=l.nnz data-numel=l.numel data-kernel=kernel>
                            <span class="bar-label">{short(&l.path)}</span>
                            <span class=format!("kernel-tag {kernel}") title="the convolution this layer runs">{kernel}</span>
                            <span class="bar"><span class="bar-fill" style:width=format!("{len:.1}%")></span></span>
                            <span class="bar-value">{format!("{:.3}% ({}/{})", density * 100.0, l.nnz, l.numel)}</span>
                        </div>
                    }
                    .into_any()
                })
                .collect_view()
                .into_any()
        })
    }
}

#[component]
fn LayerCanvas(layer: LayerHeatmap) -> impl IntoView {
    let canvas = NodeRef::<Canvas>::new();
    let (rows, cols) = (layer.rows, layer.cols);
    let title = format!(
        "{}: {} of {} active; {} regrown, {} pruned since the last view{}",
        short(&layer.path),
        layer.nnz,
        layer.numel,
        layer.grown,
        layer.pruned,
        if layer.pool != (1, 1) {
            format!(
                " (each cell pools {}x{} weights)",
                layer.pool.0, layer.pool.1
            )
        } else {
            String::new()
        }
    );
    let (grown, pruned) = (layer.grown, layer.pruned);
    let caption = title.clone();
    Effect::new(move |_| {
        let Some(c) = canvas.get() else { return };
        let Some(ctx) = c
            .get_context("2d")
            .ok()
            .flatten()
            .and_then(|x| x.dyn_into::<CanvasRenderingContext2d>().ok())
        else {
            return;
        };
        let mut px = vec![0u8; rows * cols * 4];
        for i in 0..rows * cols {
            let a = layer.active[i] as u32;
            let rgb = match layer.change[i] {
                1 => [40, 110, 255],
                2 => [235, 50, 50],
                // Active weights in dark green, stronger where the cell is denser.
                _ if a > 0 => {
                    let t = 90 + a * 165 / 255;
                    [20, t as u8, 60]
                }
                _ => [236, 236, 236],
            };
            px[i * 4..i * 4 + 4].copy_from_slice(&[rgb[0], rgb[1], rgb[2], 255]);
        }
        if let Ok(img) =
            ImageData::new_with_u8_clamped_array_and_sh(Clamped(&px), cols as u32, rows as u32)
        {
            let _ = ctx.put_image_data(&img, 0.0, 0.0);
        }
    });
    // Thin layers are stretched so every layer is visible at a similar size.
    let scale = (480.0 / cols as f64)
        .min(96.0 / rows as f64)
        .clamp(1.0, 24.0);
    view! {
        <figure class="heatmap" title=title data-grown=grown data-pruned=pruned>
            <canvas node_ref=canvas width=cols height=rows
                style:width=format!("{:.0}px", cols as f64 * scale)
                style:height=format!("{:.0}px", rows as f64 * scale)></canvas>
            <figcaption>{caption}</figcaption>
        </figure>
    }
}

#[component]
pub fn MaskHeatmaps(#[prop(into)] masks: Signal<Option<MaskReport>>) -> impl IntoView {
    move || {
        let Some(m) = masks.get() else {
            return view! { <p class="muted">"no masks yet"</p> }.into_any();
        };
        let step = m.step;
        view! {
            <div class="heatmaps" data-step=step>
                {m.layers.into_iter().map(|l| view! { <LayerCanvas layer=l /> }).collect_view()}
            </div>
        }
        .into_any()
    }
}
