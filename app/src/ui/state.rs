//! The page's state (signals), what each worker message does to it, and the commands the
//! controls send.

use crate::bridge::Bridge;
use crate::export::{EvalPoint, RunRecord, to_csv, to_json};
use crate::presets::{LESSONS, Preset};
use crate::protocol::{
    DataSource, DeviceInfo, EvalReport, FromWorker, MaskReport, RunInfo, ToWorker, WeightHistogram,
};
use crate::settings::Settings;
use leptos::prelude::*;
use sparselab::train::{Event, MaskUpdateRecord, StepRecord};
use wasm_bindgen::JsCast;
use web_sys::File;

/// A finished (or kept) run, for the comparison overlays.
#[derive(Clone, Debug, PartialEq)]
pub struct KeptRun {
    pub label: String,
    pub steps: Vec<(usize, f64)>,
    pub evals: Vec<EvalPoint>,
}

impl KeptRun {
    pub fn smoothed_loss(&self) -> Vec<(f64, f64)> {
        smooth(self.steps.iter().map(|&(s, l)| (s as f64, l)))
    }

    pub fn val_accuracy(&self) -> Vec<(f64, f64)> {
        self.evals
            .iter()
            .map(|e| (e.step as f64, e.accuracy))
            .collect()
    }
}

/// An exponential moving average, as training curves are usually drawn.
fn smooth(points: impl Iterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    let mut avg: Option<f64> = None;
    points
        .map(|(x, y)| {
            let a = avg.map_or(y, |a| 0.9 * a + 0.1 * y);
            avg = Some(a);
            (x, a)
        })
        .collect()
}

#[derive(Clone, Copy)]
pub struct State {
    pub settings: RwSignal<Settings>,
    pub device: RwSignal<Option<DeviceInfo>>,
    pub info: RwSignal<Option<RunInfo>>,
    pub steps: RwSignal<Vec<StepRecord>>,
    /// The run's mask updates (how many weights moved, at which step).
    pub mask_updates: RwSignal<Vec<MaskUpdateRecord>>,
    /// Alive weights on an input→output path, as the last epoch's end counted them (the
    /// start's count until then).
    pub connected: RwSignal<Option<usize>>,
    pub evals: RwSignal<Vec<EvalPoint>>,
    pub last_eval: RwSignal<Option<EvalReport>>,
    pub masks: RwSignal<Option<MaskReport>>,
    pub weights: RwSignal<Option<WeightHistogram>>,
    pub running: RwSignal<bool>,
    pub finished: RwSignal<bool>,
    pub loading: RwSignal<Option<String>>,
    /// (what failed, the message): shown until the next successful start.
    pub error: RwSignal<Option<(String, String)>>,
    pub kept: RwSignal<Vec<KeptRun>>,
    /// Milliseconds from navigation start to the first finished training step.
    pub first_step_ms: RwSignal<Option<f64>>,
    /// Pause was pressed and the worker has not stopped yet (it finishes its step).
    pub pausing: RwSignal<bool>,
    /// The next run of a link's sequence is being built: play it once it has started.
    pub play_when_started: RwSignal<bool>,
    /// The lesson being shown, from its button or its link, until a control changes.
    pub lesson: RwSignal<Option<&'static Preset>>,
    pub file: RwSignal<Option<File>, LocalStorage>,
    bridge: StoredValue<Option<Bridge>, LocalStorage>,
}

fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or(0.0)
}

fn hash() -> String {
    web_sys::window()
        .and_then(|w| w.location().hash().ok())
        .unwrap_or_default()
}

impl State {
    pub fn new() -> Self {
        let (settings, link_error) = match Settings::from_hash(&hash()) {
            Ok(s) => (s, None),
            Err(e) => (Settings::default(), Some(("link".to_string(), e))),
        };
        Self {
            lesson: RwSignal::new(LESSONS.iter().find(|l| l.matches(&settings))),
            settings: RwSignal::new(settings),
            device: RwSignal::new(None),
            info: RwSignal::new(None),
            steps: RwSignal::new(Vec::new()),
            mask_updates: RwSignal::new(Vec::new()),
            connected: RwSignal::new(None),
            evals: RwSignal::new(Vec::new()),
            last_eval: RwSignal::new(None),
            masks: RwSignal::new(None),
            weights: RwSignal::new(None),
            running: RwSignal::new(false),
            finished: RwSignal::new(false),
            loading: RwSignal::new(Some("starting the worker".into())),
            error: RwSignal::new(link_error),
            kept: RwSignal::new(Vec::new()),
            first_step_ms: RwSignal::new(None),
            play_when_started: RwSignal::new(false),
            pausing: RwSignal::new(false),
            file: RwSignal::new_local(None),
            bridge: StoredValue::new_local(None),
        }
    }

    /// Spawns the worker and asks it for a device.
    pub fn start(self) {
        match Bridge::spawn(
            move |msg| self.on_message(msg),
            move |crash| {
                self.running.set(false);
                self.error.set(Some((
                    "worker".into(),
                    format!(
                        "the training worker stopped: {crash}. Reload the page to start again."
                    ),
                )));
            },
        ) {
            Ok(b) => self.bridge.set_value(Some(b)),
            Err(e) => self.error.set(Some(("worker".into(), e))),
        }
        // A pasted link (or the browser's back button) changes the hash: apply it.
        let on_hash = wasm_bindgen::closure::Closure::<dyn FnMut()>::new(move || {
            match Settings::from_hash(&hash()) {
                Ok(s) => {
                    if s != self.settings.get_untracked() {
                        self.settings.set(s);
                        self.configure();
                    }
                }
                Err(e) => self.error.set(Some(("link".into(), e))),
            }
        });
        if let Some(w) = web_sys::window() {
            w.set_onhashchange(Some(on_hash.as_ref().unchecked_ref()));
        }
        on_hash.forget();
    }

    pub fn send(&self, msg: ToWorker) {
        self.bridge.with_value(|b| {
            if let Some(b) = b {
                b.send(&msg)
            }
        });
    }

    fn send_with_file(&self, msg: ToWorker, file: Option<File>) {
        self.bridge.with_value(|b| {
            if let Some(b) = b {
                b.send_with_file(&msg, file.as_ref())
            }
        });
    }

    /// Writes the settings into the URL (without a history entry per slider move).
    fn write_hash(&self) {
        let h = self.settings.with_untracked(|s| s.to_hash());
        if let Some(w) = web_sys::window()
            && let Ok(history) = w.history()
        {
            let url = if h.is_empty() {
                "#".to_string()
            } else {
                format!("#{h}")
            };
            let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url));
        }
    }

    /// Changes a setting and rebuilds the run with it.
    /// A change made with the controls: it ends a link's sequence (`then=`), whose runs
    /// were written for the settings the link set.
    pub fn change(&self, f: impl FnOnce(&mut Settings)) {
        self.settings.update(|s| {
            f(s);
            s.then.clear();
        });
        self.lesson.set(None);
        self.configure();
    }

    /// Settings replaced as a whole (a preset, a sequence's next run), sequence included.
    pub fn replace(&self, next: Settings) {
        self.settings.set(next);
        self.configure();
    }

    /// Sends the settings to the worker, which (re)builds the run from step 0.
    pub fn configure(&self) {
        self.write_hash();
        let s = self.settings.get_untracked();
        if let Err(e) = s.to_config() {
            self.refuse("settings", e);
            return;
        }
        // Before the worker has its device, the run is built when it reports Ready (with
        // whatever file was picked meanwhile).
        if self.device.with_untracked(Option::is_none) {
            return;
        }
        let file = self.file.get_untracked();
        let data = if s.data == "synthetic" {
            DataSource::Synthetic
        } else if let Some(url) = &s.data_url {
            DataSource::Url { url: url.clone() }
        } else if let Some(f) = &file {
            DataSource::File { name: f.name() }
        } else {
            self.refuse(
                "data",
                format!(
                    "data = {}: pick or drop the dataset file (the official .tar.gz, or an image-folder .tar.gz), or give its URL",
                    s.data
                ),
            );
            return;
        };
        let settings = match s.overrides() {
            Ok(settings) => settings,
            Err(e) => {
                self.refuse("settings", e);
                return;
            }
        };
        self.keep_if_trained();
        self.running.set(false);
        self.send_with_file(ToWorker::Configure { settings, data }, file);
    }

    /// Settings that cannot make a run: the message, and no run on screen or in the
    /// worker, so neither Play nor the views speak of the previous settings' run (it is
    /// kept for comparison if it trained).
    fn refuse(&self, context: &str, message: String) {
        self.loading.set(None);
        self.play_when_started.set(false);
        self.error.set(Some((context.into(), message)));
        if self.info.with_untracked(Option::is_some) {
            self.send(ToWorker::Pause);
            self.keep_if_trained();
        }
        self.running.set(false);
        self.info.set(None);
        self.masks.set(None);
        self.clear_run_views();
    }

    /// Empties what a run shows as it trains (a new run starts from nothing).
    fn clear_run_views(&self) {
        self.steps.set(Vec::new());
        self.mask_updates.set(Vec::new());
        self.connected.set(None);
        self.evals.set(Vec::new());
        self.last_eval.set(None);
        self.weights.set(None);
        self.finished.set(false);
    }

    pub fn import_checkpoint(&self, file: File) {
        self.keep_if_trained();
        self.send_with_file(ToWorker::ImportCheckpoint { name: file.name() }, Some(file));
    }

    /// Smoothed per-step values of the current run.
    pub fn smoothed(&self, f: impl Fn(&StepRecord) -> f64) -> Vec<(f64, f64)> {
        self.steps
            .with(|s| smooth(s.iter().map(|r| (r.step as f64, f(r)))))
    }

    fn label(&self) -> String {
        self.info.with_untracked(|i| match i {
            Some(i) => format!("{} {:.2}% dense", i.method, self.density_now() * 100.0),
            None => "run".into(),
        })
    }

    /// Weights alive over the network's weights counted at every use, as the configured
    /// sparsity counts them (weight sharing would otherwise look denser than it is).
    fn density_now(&self) -> f64 {
        self.info.with_untracked(|i| {
            let Some(i) = i else { return 1.0 };
            let nnz = self
                .steps
                .with_untracked(|s| s.last().map_or(i.start.nnz, |r| r.nnz));
            i.alive_fraction(nnz)
        })
    }

    /// A link's sequence (`then=`): once a run finishes, the next one is configured and
    /// plays as soon as the worker has built it; the finished one stays for comparison.
    fn start_next_in_sequence(&self) {
        if let Some(next) = self.settings.with_untracked(Settings::next_in_sequence) {
            self.play_when_started.set(true);
            self.replace(next);
        }
    }

    /// Keeps the current run for comparison (once), if it trained at all.
    pub fn keep_if_trained(&self) {
        let steps: Vec<(usize, f64)> = self
            .steps
            .with_untracked(|s| s.iter().map(|r| (r.step, r.loss)).collect());
        if steps.is_empty() {
            return;
        }
        let label = self.label();
        let evals = self.evals.get_untracked();
        self.kept.update(|k| {
            if !k.iter().any(|r| r.steps == steps) {
                k.push(KeptRun {
                    label,
                    steps,
                    evals,
                });
            }
        });
    }

    pub fn record(&self) -> Option<RunRecord> {
        Some(RunRecord {
            link: self.settings.with_untracked(|s| s.to_hash()),
            device: self
                .device
                .with_untracked(|d| d.as_ref().map(|d| d.adapter.clone()).unwrap_or_default()),
            info: self.info.get_untracked()?,
            steps: self.steps.get_untracked(),
            mask_updates: self.mask_updates.get_untracked(),
            evals: self.evals.get_untracked(),
        })
    }

    pub fn export_csv(&self) {
        let batch = self
            .info
            .with_untracked(|i| i.as_ref().map_or(0, |i| i.batch_size));
        let csv = self.steps.with_untracked(|s| {
            self.mask_updates
                .with_untracked(|u| self.evals.with_untracked(|e| to_csv(batch, s, u, e)))
        });
        download("sparselab-metrics.csv", "text/csv", csv.as_bytes());
    }

    pub fn export_json(&self) {
        if let Some(r) = self.record() {
            download(
                "sparselab-run.json",
                "application/json",
                to_json(&r).as_bytes(),
            );
        }
    }

    fn on_message(&self, msg: FromWorker) {
        match msg {
            FromWorker::Alive => {
                let backend = self.settings.with_untracked(|s| s.backend);
                self.send(ToWorker::Init { backend });
            }
            FromWorker::Ready(d) => {
                self.device.set(Some(d));
                self.configure();
            }
            FromWorker::Loading { what, done, total } => {
                let text = match total {
                    Some(t) if t > 0 => format!(
                        "{what}: {:.1} of {:.1} MB ({:.0}%)",
                        done as f64 / 1e6,
                        t as f64 / 1e6,
                        done as f64 / t as f64 * 100.0
                    ),
                    _ if done > 0 => format!("{what}: {:.1} MB", done as f64 / 1e6),
                    _ => what,
                };
                self.loading.set(Some(text));
            }
            FromWorker::Started(info) => {
                self.loading.set(None);
                // A bad link stays on screen: the run started from defaults instead.
                if self
                    .error
                    .with_untracked(|e| e.as_ref().is_some_and(|(c, _)| c != "link"))
                {
                    self.error.set(None);
                }
                self.clear_run_views();
                // An imported checkpoint: the controls (and the link) show its settings.
                if info.imported_at_step.is_some() {
                    self.settings.update(|s| *s = s.with_config(&info.config));
                    self.write_hash();
                }
                self.info.set(Some(*info));
                let autoplay = self.settings.with_untracked(|s| s.autoplay)
                    && self.first_step_ms.get_untracked().is_none();
                if autoplay || self.play_when_started.get_untracked() {
                    self.play_when_started.set(false);
                    self.send(ToWorker::Play);
                }
            }
            // A paused run's last step, and the views pausing refreshes, can arrive after
            // its settings were refused: no run, nothing to show.
            FromWorker::Event(_)
            | FromWorker::Masks(_)
            | FromWorker::Eval(_)
            | FromWorker::Weights(_)
            | FromWorker::State { .. }
                if self.info.with_untracked(Option::is_none) => {}
            FromWorker::Event(event) => match *event {
                Event::Step(r) => {
                    if self.first_step_ms.get_untracked().is_none() {
                        self.first_step_ms.set(Some(now_ms()));
                    }
                    self.steps.update(|s| s.push(r));
                }
                Event::MaskUpdate(u) => self.mask_updates.update(|v| v.push(u)),
                Event::Epoch { connected_nnz, .. } | Event::End { connected_nnz, .. } => {
                    self.connected.set(connected_nnz)
                }
                // Epoch ends and the end arrive with their evaluation (`Eval`) too.
                _ => {}
            },
            FromWorker::Masks(m) => self.masks.set(Some(m)),
            FromWorker::Eval(e) => {
                let point = EvalPoint::from(&e);
                self.evals.update(|v| {
                    v.retain(|p| p.step != point.step);
                    v.push(point);
                });
                self.last_eval.set(Some(e));
            }
            FromWorker::Weights(h) => self.weights.set(Some(h)),
            FromWorker::State { running, finished } => {
                if !running {
                    self.pausing.set(false);
                }
                self.running.set(running);
                if finished && !self.finished.get_untracked() {
                    self.keep_if_trained();
                    self.start_next_in_sequence();
                }
                self.finished.set(finished);
            }
            FromWorker::Download { name, bytes } => {
                download(&name, "application/octet-stream", &bytes)
            }
            FromWorker::Error { context, message } => {
                self.loading.set(None);
                self.error.set(Some((context, message)));
            }
        }
    }
}

/// Saves bytes as a file through a temporary object URL.
pub fn download(name: &str, mime: &str, bytes: &[u8]) {
    let array = js_sys::Uint8Array::from(bytes);
    let parts = js_sys::Array::of1(&array);
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let Ok(blob) = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options) else {
        return;
    };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else {
        return;
    };
    if let Some(doc) = web_sys::window().and_then(|w| w.document())
        && let Ok(a) = doc.create_element("a")
    {
        let a: web_sys::HtmlAnchorElement = a.unchecked_into();
        a.set_href(&url);
        a.set_download(name);
        a.click();
    }
    let _ = web_sys::Url::revoke_object_url(&url);
}
