//! The status line (device, progress, speed) and the banners (errors, notes) above the
//! charts: views of the state, nothing more.

use super::state::State;
use crate::protocol::RunInfo;
use leptos::prelude::*;
use sparselab::train::StepRecord;

#[component]
pub fn StatusLine(state: State) -> impl IntoView {
    let text = move || {
        let device = state.device.with(|d| match d {
            Some(d) => format!("{} · {}", d.backend, d.adapter),
            None => "starting…".into(),
        });
        let progress = state.info.with(|i| {
            let total = i.as_ref().map(|i| i.start.total_steps).unwrap_or(0);
            let start = i.as_ref().and_then(|i| i.imported_at_step).unwrap_or(0);
            let done = state
                .steps
                .with(|s| s.last().map(|r| r.step + 1).unwrap_or(start));
            let epoch = state
                .steps
                .with(|s| s.last().map(|r| r.epoch + 1).unwrap_or(1));
            format!("step {done}/{total} · epoch {epoch}")
        });
        let speed = state.steps.with(|s| {
            // The median of the last 20 steps: one slow step (a mask update) does not swing it.
            let mut recent: Vec<&StepRecord> = s.iter().rev().take(20).collect();
            if recent.is_empty() {
                return String::new();
            }
            recent.sort_by(|a, b| a.images_per_sec.total_cmp(&b.images_per_sec));
            let m = recent[recent.len() / 2];
            let batch = state.info.with(|i| i.as_ref().map_or(0, |i| i.batch_size));
            format!(
                " · {:.1} images/s · {:.0} ms/step",
                m.images_per_sec,
                batch as f64 * 1000.0 / m.images_per_sec.max(1e-9)
            )
        });
        let state_word = if state.running.get() && state.pausing.get() {
            // The worker finishes the step it is in: on a large model that takes seconds.
            "pausing… (after this step)"
        } else if state.running.get() {
            "training"
        } else if state.finished.get() {
            "finished"
        } else {
            "paused"
        };
        let imported = state.info.with(|i| {
            i.as_ref()
                .and_then(|i| i.imported_at_step)
                .map(|s| format!(" · imported checkpoint (saved at step {s})"))
                .unwrap_or_default()
        });
        format!("{state_word} · {progress}{speed} · {device}{imported}")
    };
    let loss = move || {
        state.steps.with(|s| {
            s.last()
                .map(|r| format!("{:.4}", r.loss))
                .unwrap_or_default()
        })
    };
    let steps_done = move || state.steps.with(|s| s.len());
    // Means of the first five and the last ten losses: what "the loss falls" is judged on.
    let loss_start = move || {
        state.steps.with(|s| {
            let n = s.len().min(5);
            (n > 0).then(|| {
                format!(
                    "{:.4}",
                    s[..n].iter().map(|r| r.loss).sum::<f64>() / n as f64
                )
            })
        })
    };
    let loss_recent = move || {
        state.steps.with(|s| {
            let n = s.len().min(10);
            (n > 0).then(|| {
                format!(
                    "{:.4}",
                    s[s.len() - n..].iter().map(|r| r.loss).sum::<f64>() / n as f64
                )
            })
        })
    };
    let median_ips = move || {
        state.steps.with(|s| {
            let mut v: Vec<f64> = s.iter().skip(2).map(|r| r.images_per_sec).collect();
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).map(|m| format!("{m:.2}"))
        })
    };
    // Every validation as `step:accuracy`, and every mask update as
    // `step:dropped:grown:density`, for tests and scripts that read the page.
    let evals = move || {
        state.evals.with(|e| {
            e.iter()
                .map(|p| format!("{}:{:.4}", p.step, p.accuracy))
                .collect::<Vec<_>>()
                .join("|")
        })
    };
    let mask_updates = move || {
        state.mask_updates.with(|u| {
            u.iter()
                .map(|u| format!("{}:{}:{}:{:.6}", u.step, u.dropped, u.grown, u.density))
                .collect::<Vec<_>>()
                .join("|")
        })
    };
    view! {
        <p id="status" data-running=move || state.running.get().to_string()
            data-steps=steps_done data-loss=loss data-loss-start=loss_start
            data-loss-recent=loss_recent data-images-per-second=median_ips
            data-method=move || state.info.with(|i| i.as_ref().map(|i| i.method.clone()).unwrap_or_default())
            data-dataset=move || state.info.with(|i| i.as_ref().map(|i| i.start.dataset.clone()).unwrap_or_default())
            data-train-images=move || state.info.with(|i| i.as_ref().map(|i| i.start.train_images.to_string()).unwrap_or_default())
            data-classes=move || state.info.with(|i| i.as_ref().map(|i| i.class_names.join(",")).unwrap_or_default())
            data-imported=move || state.info.with(|i| i.as_ref().and_then(|i| i.imported_at_step).map(|s| s.to_string()).unwrap_or_default())
            data-backend=move || state.device.with(|d| d.as_ref().map(|d| d.backend.clone()).unwrap_or_default())
            data-evals=evals data-mask-updates=mask_updates
            data-first-step-ms=move || state.first_step_ms.get().map(|m| format!("{m:.0}")).unwrap_or_default()>
            {text}
        </p>
    }
}

/// Thousands separated by commas: 21,282,122 reads at a glance, 21282122 does not.
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The run's size as it trains: weights alive out of the network's (shared weights counted
/// at every use, as the configured sparsity counts them), and which layers run the sparse
/// kernels.
#[component]
pub fn SparsityLine(state: State) -> impl IntoView {
    let nnz = move || {
        let start = state.info.with(|i| i.as_ref().map_or(0, |i| i.start.nnz));
        state.steps.with(|s| s.last().map_or(start, |r| r.nnz))
    };
    let total = move || {
        state
            .info
            .with(|i| i.as_ref().map_or(0, RunInfo::weights_at_every_use))
    };
    let layers = move || {
        state
            .info
            .with(|i| i.as_ref().map_or(0, |i| i.layers.len()))
    };
    let sparse = move || {
        state
            .info
            .with(|i| i.as_ref().map_or(0, |i| i.start.sparse_kernel_layers.len()))
    };
    let connected = move || {
        state.connected.get().or_else(|| {
            state
                .info
                .with(|i| i.as_ref().and_then(|i| i.start.connected_nnz))
        })
    };
    let text = move || {
        if total() == 0 {
            return String::new();
        }
        let kernels = match (sparse(), layers()) {
            (0, _) => "every layer on dense masked convolutions".to_string(),
            (s, n) if s == n => format!("all {n} layers on the sparse kernels"),
            (s, n) => format!("{s} of {n} layers on the sparse kernels"),
        };
        // Of the alive weights, those on an input→output path (`sparsity::connectivity`).
        let paths = match connected() {
            Some(0) => " · none on a path from the input to the output: the network cannot \
                         see its images (lower the sparsity, or narrow the model)"
                .to_string(),
            Some(c) => format!(" · {} on an input→output path", grouped(c)),
            None => String::new(),
        };
        format!(
            "{} of {} weights alive ({:.3}%){paths} · {kernels}",
            grouped(nnz()),
            grouped(total()),
            nnz() as f64 * 100.0 / total().max(1) as f64
        )
    };
    let cut_off = move || connected() == Some(0);
    view! {
        <p id="sparsity-summary" class="muted" class:warn=cut_off data-nnz=nnz data-numel=total
            data-connected=move || connected().map(|c| c.to_string()).unwrap_or_default()
            data-layers=layers data-sparse-layers=sparse>{text}</p>
    }
}

#[component]
pub fn Banners(state: State) -> impl IntoView {
    view! {
        {move || state.device.get().and_then(|d| {
            let software = d.software_adapter.is_some();
            // Plain words first; the technical reason after, for whoever wants it.
            let title = if software {
                "This browser's GPU support is a software imitation, so training runs on your CPU, which is faster here. "
            } else {
                "This browser offers no GPU, so training runs on your CPU. "
            };
            d.fallback_reason.map(|r| view! {
                <div class="banner warn" id="fallback" data-software=software.to_string()>
                    <strong>{title}</strong>
                    "The small models still train in a minute or two. "
                    <span class="muted">{format!("(Details: {r})")}</span>
                </div>
            })
        })}
        {move || state.loading.get().map(|l| view! { <div class="banner info" id="loading">{l}</div> })}
        {move || state.error.get().map(|(context, message)| view! {
            <div class="banner error" id="error" data-context=context.clone()>
                <strong>{format!("{context}: ")}</strong>{message}
            </div>
        })}
    }
}
