//! The controls: every setting of the run (each group hideable by the link), the
//! play/pause/step/reset buttons, data loading, comparison, export and import.

use super::explain::{self, Explain};
use super::state::State;
use crate::presets::{LESSONS, PRESETS, Preset};
use crate::protocol::ToWorker;
use crate::settings::{Settings, slider_from_sparsity, sparsity_from_slider};
use leptos::ev;
use leptos::prelude::*;
use web_sys::{File, HtmlInputElement};

const DATASETS: &[(&str, &str)] = &[
    ("synthetic", "synthetic shapes (built in)"),
    ("cifar10", "CIFAR-10 (official .tar.gz)"),
    ("cifar100", "CIFAR-100 (official .tar.gz)"),
    ("cifar100-coarse", "CIFAR-100, 20 superclasses"),
    ("folder", "image folder (.tar.gz: class/img.jpg)"),
];
use crate::settings::{MODELS, WIDTHS};
const SCHEDULES: &[&str] = &["cosine", "multistep", "constant", "linear"];
const BATCHES: &[&str] = &["8", "16", "32", "64", "128", "256"];

/// A menu of settings; `name` is what a screen reader announces (the fieldset's legend
/// says it on screen).
fn select(
    state: State,
    id: &'static str,
    name: &'static str,
    options: Vec<(String, String)>,
    current: impl Fn(&Settings) -> String + Send + Sync + 'static + Copy,
    apply: impl Fn(&mut Settings, String) + Send + Sync + 'static + Copy,
) -> impl IntoView {
    view! {
        <select id=id aria-label=name on:change=move |e| {
            let v = event_target_value(&e);
            state.change(|s| apply(s, v));
        }>
            {options.into_iter().map(|(value, label)| {
                let v = value.clone();
                view! {
                    <option value=value selected=move || state.settings.with(|s| current(s) == v)>{label}</option>
                }
            }).collect_view()}
        </select>
    }
}

fn number(
    state: State,
    id: &'static str,
    step: &'static str,
    current: impl Fn(&Settings) -> String + Send + Sync + 'static + Copy,
    apply: impl Fn(&mut Settings, &str) -> bool + Send + Sync + 'static + Copy,
) -> impl IntoView {
    view! {
        <input id=id type="number" step=step prop:value=move || state.settings.with(current)
            on:change=move |e| {
                let v = event_target_value(&e);
                let mut next = state.settings.get_untracked();
                if apply(&mut next, &v) {
                    state.change(|s| *s = next);
                } else {
                    state.error.set(Some(("settings".into(), format!("{id} = {v}: not a valid number"))));
                }
            } />
    }
}

fn guess_kind(name: &str) -> &'static str {
    let n = name.to_ascii_lowercase();
    if n.contains("cifar-100") || n.contains("cifar100") {
        "cifar100"
    } else if n.contains("cifar-10")
        || n.contains("cifar10-binary")
        || n.contains("cifar-10-binary")
    {
        "cifar10"
    } else {
        "folder"
    }
}

fn use_file(state: State, file: File) {
    let kind = guess_kind(&file.name());
    state.file.set(Some(file));
    state.change(|s| {
        s.data_url = None;
        // The format chosen by hand wins, unless the file's name says otherwise (a CIFAR
        // tarball keeps its name); CIFAR-100 stays coarse if coarse was chosen.
        let named = kind != "folder";
        let matches = s.data == kind || (kind == "cifar100" && s.data == "cifar100-coarse");
        if s.data == "synthetic" || (named && !matches) {
            s.data = kind.into();
        }
    });
}

fn apply_preset(state: State, preset: &'static Preset) {
    state.keep_if_trained();
    match state.settings.with_untracked(|s| preset.apply(s)) {
        Ok(next) => {
            state
                .lesson
                .set(LESSONS.iter().any(|l| l.id == preset.id).then_some(preset));
            state.replace(next)
        }
        Err(e) => state.error.set(Some(("preset".into(), e))),
    }
}

#[component]
pub fn Controls(state: State) -> impl IntoView {
    let hidden = move |name: &'static str| state.settings.with(|s| s.hide.contains(name));
    let shown = move |name: &'static str| !hidden(name);
    let method_summary = move || {
        state.settings.with(|s| {
            sparselab::methods::find(&s.method)
                .map(|m| m.summary)
                .unwrap_or("")
        })
    };
    let sparsity_text = move || {
        state.settings.with(|s| {
            if !(0.0..1.0).contains(&s.sparsity) {
                return format!(
                    "{}%: not a sparsity (from 0% up to, not including, 100%)",
                    trim(s.sparsity * 100.0)
                );
            }
            format!(
                "{}% sparse: keeps 1 weight in {:.0}",
                trim(s.sparsity * 100.0),
                1.0 / (1.0 - s.sparsity).max(1e-9)
            )
        })
    };
    // The slider stops where the chosen model runs out of layers to keep a weight in.
    let bound = Memo::new(move |_| state.settings.with(Settings::sparsity_bound));
    let slider_max = move || {
        bound.get().map_or(1000.0, |b| {
            let mut t = slider_from_sparsity(b).floor().clamp(0.0, 1000.0);
            while t > 0.0 && sparsity_from_slider(t) > b {
                t -= 1.0;
            }
            t
        })
    };
    let capacity_text = move || {
        let Some(b) = bound.get().filter(|b| *b < 0.9999) else {
            return String::new();
        };
        let next = state
            .settings
            .with(|s| s.next_model_holding(0.9999))
            .map(|(m, w)| format!("; for 99.99%, choose {m} ×{w}"))
            .unwrap_or_default();
        format!(
            "This model holds at most {}% (one weight left in every layer){next}.",
            trim(b * 100.0)
        )
    };
    let running = move || state.running.get();
    // Nothing to play until the worker has built a run from valid settings.
    let no_run = move || state.info.with(Option::is_none);
    let url_input = RwSignal::new(String::new());
    view! {
        <div class="buttons">
            <button id="play" on:click=move |_| state.send(ToWorker::Play) disabled=move || running() || no_run()>"▶ Play"</button>
            <button id="pause" on:click=move |_| { state.pausing.set(true); state.send(ToWorker::Pause) }
                disabled=move || !running() || state.pausing.get()>"⏸ Pause"</button>
            <button id="step" on:click=move |_| state.send(ToWorker::Step) disabled=move || running() || no_run()>"Step (1 batch)"</button>
            <button id="reset" on:click=move |_| { state.keep_if_trained(); state.send(ToWorker::Reset) }>"⟲ Reset"</button>
        </div>
        <Show when=move || state.settings.with(|s| !s.fixed_settings().is_empty())>
            <div id="fixed-settings" class="chips" title="set by this page's link">
                {move || state.settings.with(Settings::fixed_settings).into_iter().map(|f| view! {
                    <span class="chip">{f}</span>
                }).collect_view()}
            </div>
        </Show>
        <Show when=move || !no_run() && !running() && state.steps.with(Vec::is_empty) && !state.finished.get()>
            <p id="play-hint" class="hint">"Press ▶ Play to train this network, or Step to run one batch at a time."</p>
        </Show>

        <Show when=move || shown("lessons")>
            <fieldset id="lessons">
                <legend>"Lessons"</legend>
                <div class="presets">
                    {LESSONS.iter().map(|l| view! {
                        <button id=format!("lesson-{}", l.id) title=l.summary
                            class:current=move || state.lesson.with(|c| c.is_some_and(|c| c.id == l.id))
                            on:click=move |_| apply_preset(state, l)>{l.title}</button>
                    }).collect_view()}
                </div>
                <Show when=move || state.lesson.with(Option::is_some)>
                    <p class="hint" id="lesson-look"><b>"Look at: "</b>{move || state.lesson.with(|l| l.map(|l| l.summary).unwrap_or(""))}</p>
                </Show>
            </fieldset>
        </Show>

        <Show when=move || shown("presets")>
            <fieldset>
                <legend>"Presets"</legend>
                <div class="presets">
                    {PRESETS.iter().map(|p| view! {
                        <button id=format!("preset-{}", p.id) title=p.summary
                            class:current=move || state.settings.with(|s| p.matches(s))
                            on:click=move |_| apply_preset(state, p)>{p.title}</button>
                    }).collect_view()}
                </div>
                <p class="muted" id="preset-summary">{move || state.settings.with(|s| {
                    PRESETS.iter().find(|p| p.matches(s)).map(|p| p.summary).unwrap_or("")
                })}</p>
            </fieldset>
        </Show>

        <Show when=move || shown("data")>
            <fieldset>
                <legend>"Data"</legend>
                {select(state, "data", "dataset", DATASETS.iter().map(|(v, l)| (v.to_string(), l.to_string())).collect(),
                    |s| s.data.clone(), |s, v| s.data = v)}
                <Show when=move || state.settings.with(|s| s.data == "synthetic")>
                    <label>"images " {number(state, "synthetic_size", "100", |s| s.synthetic_size.to_string(),
                        |s, v| v.parse().map(|n| s.synthetic_size = n).is_ok())}</label>
                </Show>
                <Show when=move || state.settings.with(|s| s.data != "synthetic")>
                    <div class="drop" id="drop"
                        on:dragover=move |e: ev::DragEvent| e.prevent_default()
                        on:drop=move |e: ev::DragEvent| {
                            e.prevent_default();
                            if let Some(f) = e.data_transfer().and_then(|d| d.files()).and_then(|l| l.get(0)) {
                                use_file(state, f);
                            }
                        }>
                        "Drop the dataset's .tar.gz here, or "
                        <input id="data-file" type="file" accept=".gz,.tgz,.tar.gz"
                            on:change=move |e| {
                                let input: HtmlInputElement = event_target(&e);
                                if let Some(f) = input.files().and_then(|l| l.get(0)) {
                                    use_file(state, f);
                                }
                            } />
                        <p class="muted">{move || state.file.with(|f| f.as_ref().map(|f| format!("file: {}", f.name())).unwrap_or_else(|| "no file yet".into()))}</p>
                    </div>
                    <label>"or URL "
                        <input id="data-url" type="url" placeholder="https://…/cifar-10-binary.tar.gz"
                            prop:value=move || url_input.get() on:input=move |e| url_input.set(event_target_value(&e)) />
                        <button on:click=move |_| {
                            let url = url_input.get_untracked();
                            if !url.is_empty() { state.change(|s| s.data_url = Some(url)); }
                        }>"Load"</button>
                    </label>
                    <label>"use at most " {number(state, "limit", "1000", |s| s.limit.to_string(),
                        |s, v| v.parse().map(|n| s.limit = n).is_ok())} " images (0: all)"</label>
                </Show>
            </fieldset>
        </Show>

        <Show when=move || shown("model")>
            <fieldset>
                <legend>"Model"</legend>
                {select(state, "model", "model", MODELS.iter().map(|m| (m.to_string(), m.to_string())).collect(),
                    |s| s.model.clone(), |s, v| s.model = v)}
                " width ×"
                {select(state, "width", "width multiplier", WIDTHS.iter().map(|w| (w.to_string(), w.to_string())).collect(),
                    |s| s.width.to_string(), |s, v| s.width = v.parse().unwrap_or(s.width))}
            </fieldset>
        </Show>

        <Show when=move || shown("method")>
            <fieldset>
                <legend>"Method"</legend>
                {select(state, "method", "method",
                    sparselab::methods::REGISTRY.iter().map(|m| (m.name.to_string(), m.name.to_string())).collect(),
                    |s| s.method.clone(), |s, v| s.method = v)}
                <p class="muted" id="method-summary">{method_summary}</p>
                <label>"ΔT (steps between mask updates) " {number(state, "update_every", "1", |s| s.update_every.to_string(),
                    |s, v| v.parse().map(|n| s.update_every = n).is_ok())}</label>
            </fieldset>
        </Show>

        <Show when=move || shown("east") && state.settings.with(|s| s.method == "east")>
            <fieldset>
                <legend>"EAST's tricks"</legend>
                <label><input id="east-dyrelu" type="checkbox" prop:checked=move || state.settings.with(|s| s.east_dyrelu)
                    on:change=move |e| { let v = event_target_checked(&e); state.change(|s| s.east_dyrelu = v) } />
                    " DyReLU phasing"</label>
                <label><input id="east-sharing" type="checkbox" prop:checked=move || state.settings.with(|s| s.east_sharing)
                    on:change=move |e| { let v = event_target_checked(&e); state.change(|s| s.east_sharing = v) } />
                    " weight sharing"</label>
                <label><input id="east-cyclic" type="checkbox" prop:checked=move || state.settings.with(|s| s.east_cyclic)
                    on:change=move |e| { let v = event_target_checked(&e); state.change(|s| s.east_cyclic = v) } />
                    " cyclic sparsity"</label>
            </fieldset>
        </Show>

        <Show when=move || shown("sparsity")>
            <fieldset>
                <legend>"Target sparsity"</legend>
                <input id="sparsity" type="range" aria-label="target sparsity" min="0" max=move || slider_max().to_string() step="1"
                    prop:value=move || state.settings.with(|s| slider_from_sparsity(s.sparsity).round().to_string())
                    on:change=move |e| {
                        let t: f64 = event_target_value(&e).parse().unwrap_or(0.0);
                        state.change(|s| s.sparsity = sparsity_from_slider(t));
                    } />
                <p id="sparsity-value">{sparsity_text}</p>
                <p id="sparsity-capacity" class="muted">{capacity_text}</p>
                <Show when=move || shown("explain")><Explain title="Sparsity" text=explain::SPARSITY /></Show>
            </fieldset>
        </Show>

        <Show when=move || shown("distribution")>
            <fieldset>
                <legend>"Layer-wise densities"</legend>
                {select(state, "distribution", "layer-wise density distribution", vec![("erk".into(), "ERK".into()), ("uniform".into(), "uniform".into())],
                    |s| s.distribution.clone(), |s, v| s.distribution = v)}
            </fieldset>
        </Show>

        <Show when=move || shown("schedule")>
            <fieldset>
                <legend>"LR schedule"</legend>
                {select(state, "schedule", "learning-rate schedule", SCHEDULES.iter().map(|m| (m.to_string(), m.to_string())).collect(),
                    |s| s.lr_schedule.clone(), |s, v| s.lr_schedule = v)}
                <label>" LR " {number(state, "lr", "0.01", |s| s.lr.to_string(), |s, v| v.parse().map(|n| s.lr = n).is_ok())}</label>
            </fieldset>
        </Show>

        <Show when=move || shown("batch") || shown("epochs") || shown("seed")>
            <fieldset>
                <legend>"Training"</legend>
                <Show when=move || shown("batch")>
                    <label>"batch " {select(state, "batch", "batch size", BATCHES.iter().map(|m| (m.to_string(), m.to_string())).collect(),
                        |s| s.batch.to_string(), |s, v| s.batch = v.parse().unwrap_or(s.batch))}</label>
                </Show>
                <Show when=move || shown("epochs")>
                    <label>" epochs " {number(state, "epochs", "1", |s| s.epochs.to_string(), |s, v| v.parse().map(|n| s.epochs = n).is_ok())}</label>
                </Show>
                <Show when=move || shown("seed")>
                    <label>" seed " {number(state, "seed", "1", |s| s.seed.to_string(), |s, v| v.parse().map(|n| s.seed = n).is_ok())}</label>
                </Show>
            </fieldset>
        </Show>

        <Show when=move || shown("backend")>
            <fieldset>
                <legend>"Device"</legend>
                <select id="backend" aria-label="device" on:change=move |e| {
                    let v = event_target_value(&e);
                    state.settings.update(|s| s.backend = match v.as_str() {
                        "gpu" => crate::protocol::BackendChoice::Gpu,
                        "cpu" => crate::protocol::BackendChoice::Cpu,
                        _ => crate::protocol::BackendChoice::Auto,
                    });
                    // The worker picks its device once: start a fresh page with the new link.
                    let h = state.settings.with_untracked(|s| s.to_hash());
                    if let Some(w) = web_sys::window() {
                        let _ = w.location().set_hash(&h);
                        let _ = w.location().reload();
                    }
                }>
                    {["auto", "gpu", "cpu"].into_iter().map(|b| view! {
                        <option value=b selected=move || state.settings.with(|s| format!("{:?}", s.backend).to_lowercase() == b)>{b}</option>
                    }).collect_view()}
                </select>
            </fieldset>
        </Show>

        <Show when=move || shown("compare")>
            <fieldset>
                <legend>"Compare runs"</legend>
                <button id="keep" on:click=move |_| state.keep_if_trained()>"Keep this run"</button>
                <button on:click=move |_| state.kept.set(Vec::new())>"Clear"</button>
                <ul id="kept">{move || state.kept.get().into_iter().map(|k| {
                    let last = k.evals.last().map(|e| format!(" · val {:.1}%", e.accuracy * 100.0)).unwrap_or_default();
                    view! { <li>{format!("{}: {} steps{last}", k.label, k.steps.len())}</li> }
                }).collect_view()}</ul>
                <p id="sequence" class="muted">{move || state.settings.with(|s| sequence_text(&s.then))}</p>
            </fieldset>
        </Show>

        <Show when=move || shown("export")>
            <fieldset>
                <legend>"Export / import"</legend>
                <button id="export-csv" on:click=move |_| state.export_csv()>"metrics CSV"</button>
                <button id="export-json" on:click=move |_| state.export_json()>"run JSON"</button>
                <button id="export-ckpt" on:click=move |_| state.send(ToWorker::ExportCheckpoint)>"checkpoint"</button>
                <button id="export-pytorch" title="safetensors under PyTorch's CIFAR-ResNet names, with the masks (as sparselab export writes it)"
                    on:click=move |_| state.send(ToWorker::ExportSafetensors)>"for PyTorch"</button>
                <label>"import a checkpoint (from the CLI or this page): "
                    <input id="import-ckpt" type="file" accept=".bin"
                        on:change=move |e| {
                            let input: HtmlInputElement = event_target(&e);
                            if let Some(f) = input.files().and_then(|l| l.get(0)) {
                                state.import_checkpoint(f);
                            }
                        } />
                </label>
                <details>
                    <summary>"this run's engine config (for the CLI: --config)"</summary>
                    <pre id="config-toml" tabindex="0" aria-label="the run's engine configuration (TOML)">{move || state.info.with(|i| i.as_ref().map(|i| i.config_toml.clone()).unwrap_or_default())}</pre>
                </details>
            </fieldset>
        </Show>
    }
}

/// What a link's sequence runs next, e.g. "then: method rigl; then: sparsity 99%".
fn sequence_text(then: &[Vec<(String, String)>]) -> String {
    if then.is_empty() {
        return String::new();
    }
    let runs: Vec<String> = then
        .iter()
        .map(|run| {
            let changes: Vec<String> = run
                .iter()
                .map(|(k, v)| match (k.as_str(), v.parse::<f64>()) {
                    ("sparsity", Ok(x)) => format!("sparsity {}%", trim(x * 100.0)),
                    _ => format!("{k} {v}"),
                })
                .collect();
            changes.join(", ")
        })
        .collect();
    format!(
        "When this run finishes it is kept here and the next starts: {}.",
        runs.join("; then ")
    )
}

fn trim(v: f64) -> String {
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}
