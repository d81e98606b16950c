//! The worker side: owns the device, the loaded data and the session, and trains off the
//! page's thread. Messages from the page go into a queue; one async loop handles them and,
//! while playing, steps and yields to the event loop after every batch (so Pause lands
//! within one step).

use crate::protocol::{BackendChoice, DataSource, DeviceInfo, FromWorker, ToWorker};
use crate::session::{PageStep, Session};
use js_sys::{Promise, Reflect};
use sparselab::burn::tensor::Device;
use sparselab::data::{DataKind, ImageSet, load_split};
use sparselab::train::{Checkpoint, Setting, TrainConfig};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{DedicatedWorkerGlobalScope, File};

mod adapter;
mod io;

use adapter::{NoWebGpu, webgpu};
use io::{decode, fetch_url, read_file};

#[derive(Default)]
struct Inbox {
    queue: VecDeque<(ToWorker, Option<File>)>,
    /// Resolves the loop's wait when a message arrives while it is idle.
    wake: Option<js_sys::Function>,
}

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

fn post(msg: &FromWorker) {
    match serde_wasm_bindgen::to_value(msg) {
        Ok(v) => {
            let _ = scope().post_message(&v);
        }
        Err(e) => web_sys::console::error_1(&format!("could not encode a message: {e}").into()),
    }
}

fn error(context: &str, message: impl Into<String>) {
    post(&FromWorker::Error {
        context: context.into(),
        message: message.into(),
    });
}

/// Lets the event loop run (messages, the page) before the next step.
async fn yield_now() {
    let promise = Promise::new(&mut |resolve, _| {
        let _ = scope().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0);
    });
    let _ = JsFuture::from(promise).await;
}

pub fn start() {
    console_error_panic_hook::set_once();
    let inbox = Rc::new(RefCell::new(Inbox::default()));
    let on_message = {
        let inbox = inbox.clone();
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
            let data = e.data();
            let msg = Reflect::get(&data, &"msg".into()).unwrap_or(JsValue::UNDEFINED);
            let file = Reflect::get(&data, &"file".into())
                .ok()
                .and_then(|f| f.dyn_into::<File>().ok());
            match serde_wasm_bindgen::from_value::<ToWorker>(msg) {
                Ok(m) => {
                    let mut inbox = inbox.borrow_mut();
                    inbox.queue.push_back((m, file));
                    if let Some(wake) = inbox.wake.take() {
                        let _ = wake.call0(&JsValue::NULL);
                    }
                }
                Err(e) => error("protocol", format!("unreadable message: {e}")),
            }
        })
    };
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    post(&FromWorker::Alive);
    wasm_bindgen_futures::spawn_local(Worker::default().run(inbox));
}

#[derive(Default)]
struct Worker {
    device: Option<Device>,
    /// The loaded training images and what they were loaded from.
    /// Shared with the session, so the images are held once (CIFAR-10: about 150 MB).
    data: Option<(String, Arc<ImageSet>)>,
    config: Option<TrainConfig>,
    session: Option<Session>,
    running: bool,
}

impl Worker {
    async fn run(mut self, inbox: Rc<RefCell<Inbox>>) {
        loop {
            let next = inbox.borrow_mut().queue.pop_front();
            if let Some((msg, file)) = next {
                self.handle(msg, file).await;
                continue;
            }
            if self.running {
                self.play_one().await;
                yield_now().await;
                continue;
            }
            let wait = Promise::new(&mut |resolve, _| {
                inbox.borrow_mut().wake = Some(resolve);
            });
            // A message may have come in between the check above and now.
            if !inbox.borrow().queue.is_empty() {
                inbox.borrow_mut().wake = None;
                continue;
            }
            let _ = JsFuture::from(wait).await;
        }
    }

    fn post_state(&self) {
        post(&FromWorker::State {
            running: self.running,
            finished: self.session.as_ref().is_some_and(Session::is_finished),
        });
    }

    async fn handle(&mut self, msg: ToWorker, file: Option<File>) {
        match msg {
            ToWorker::Init { backend } => self.init(backend).await,
            ToWorker::Configure { settings, data } => {
                self.running = false;
                self.session = None;
                match self.configure(settings, data, file).await {
                    Ok(()) => self.after_start().await,
                    Err((context, message)) => error(context, message),
                }
                self.post_state();
            }
            ToWorker::Play => {
                if self.session.is_some() {
                    self.running = true;
                } else {
                    error("run", "nothing to run yet: the run is still being set up");
                }
                self.post_state();
            }
            ToWorker::Pause => {
                self.running = false;
                self.post_state();
                self.report_views().await;
            }
            ToWorker::Step => {
                self.running = false;
                self.play_one().await;
                self.post_state();
            }
            ToWorker::Reset => {
                self.running = false;
                if let (Some(config), Some((_, set)), Some(device)) =
                    (self.config.clone(), self.data.clone(), self.device.clone())
                {
                    match Session::new(config, set, device) {
                        Ok(s) => {
                            self.session = Some(s);
                            self.after_start().await;
                        }
                        Err(e) => error("settings", e),
                    }
                }
                self.post_state();
            }
            ToWorker::ExportCheckpoint | ToWorker::ExportSafetensors => {
                let Some(s) = &self.session else {
                    return error("export", "no run to export yet");
                };
                let stem = format!(
                    "sparselab-{}-step{}",
                    s.trainer().method_name(),
                    s.trainer().step()
                );
                let file = if matches!(msg, ToWorker::ExportCheckpoint) {
                    s.checkpoint_bytes()
                        .await
                        .map(|b| (format!("{stem}.bin"), b))
                } else {
                    s.safetensors_bytes()
                        .await
                        .map(|b| (format!("{stem}.safetensors"), b))
                };
                match file {
                    Ok((name, bytes)) => post(&FromWorker::Download { name, bytes }),
                    Err(e) => error("export", e),
                }
            }
            ToWorker::ImportCheckpoint { name } => {
                self.running = false;
                match self.import(&name, file).await {
                    Ok(()) => self.after_start().await,
                    Err(e) => error("checkpoint", e),
                }
                self.post_state();
            }
        }
    }

    async fn init(&mut self, backend: BackendChoice) {
        let mut fallback_reason = None;
        let mut software_adapter = None;
        if backend != BackendChoice::Cpu {
            // `auto` skips a software adapter: on SwiftShader a step is 20-45x slower than
            // Flex in this worker (the book's benchmarks page, playground figures). `gpu` takes it anyway.
            match webgpu(backend == BackendChoice::Auto).await {
                Ok((device, adapter)) => {
                    self.device = Some(device);
                    return post(&FromWorker::Ready(DeviceInfo {
                        backend: "webgpu".into(),
                        adapter,
                        fallback_reason: None,
                        software_adapter: None,
                    }));
                }
                Err(NoWebGpu::Missing(reason)) => fallback_reason = Some(reason),
                Err(NoWebGpu::Software(name)) => {
                    fallback_reason = Some(format!(
                        "the browser's only WebGPU adapter, {name}, emulates a GPU on the CPU; \
                         the CPU path is much faster there. Choose Device: gpu to train on it anyway."
                    ));
                    software_adapter = Some(name);
                }
            }
        }
        self.device = Some(Device::flex().autodiff());
        post(&FromWorker::Ready(DeviceInfo {
            backend: "cpu".into(),
            adapter: "Flex (CPU, one thread in this worker)".into(),
            fallback_reason,
            software_adapter,
        }));
    }

    async fn configure(
        &mut self,
        settings: Vec<Setting>,
        source: DataSource,
        file: Option<File>,
    ) -> Result<(), (&'static str, String)> {
        let config = TrainConfig::load(None, &settings).map_err(|e| {
            (
                "settings",
                e.to_string()
                    .replace("defaults + command-line settings: ", ""),
            )
        })?;
        let device = self
            .device
            .clone()
            .ok_or(("device", "the device is not ready yet".to_string()))?;
        let set = self
            .load_data(&config, &source, file)
            .await
            .map_err(|e| ("data", e))?;
        self.config = Some(config.clone());
        let session = Session::new(config, set, device).map_err(|e| ("settings", e))?;
        self.session = Some(session);
        Ok(())
    }

    async fn load_data(
        &mut self,
        config: &TrainConfig,
        source: &DataSource,
        file: Option<File>,
    ) -> Result<Arc<ImageSet>, String> {
        let key = match source {
            DataSource::Synthetic => {
                format!("synthetic:{}:{}", config.data.synthetic_size, config.seed)
            }
            DataSource::File { name } => format!("file:{name}:{:?}", config.data.kind),
            DataSource::Url { url } => format!("url:{url}:{:?}", config.data.kind),
        };
        let key = format!("{key}:{}", config.data.limit);
        if let Some((k, set)) = &self.data
            && *k == key
            && file.is_none()
        {
            return Ok(set.clone());
        }
        let set = match source {
            DataSource::Synthetic => {
                post(&FromWorker::Loading {
                    what: "generating the synthetic set".into(),
                    done: 0,
                    total: None,
                });
                load_split(&config.data, false, config.seed).map_err(|e| e.to_string())?
            }
            DataSource::File { name } => {
                let file = file.ok_or_else(|| {
                    format!("{name} is no longer available: pick or drop the file again")
                })?;
                let bytes = read_file(&file).await?;
                decode(config, &bytes, name)?
            }
            DataSource::Url { url } => {
                let bytes = fetch_url(url).await?;
                decode(config, &bytes, url)?
            }
        };
        let set = Arc::new(set);
        self.data = Some((key, set.clone()));
        Ok(set)
    }

    async fn import(&mut self, name: &str, file: Option<File>) -> Result<(), String> {
        let file = file.ok_or("no checkpoint file came with the request: pick it again")?;
        let device = self.device.clone().ok_or("the device is not ready yet")?;
        let bytes = read_file(&file).await?;
        let ckpt = Checkpoint::decode(&bytes, name).map_err(|e| e.to_string())?;
        let data = &ckpt.meta.config.data;
        let set = if data.kind == DataKind::Synthetic {
            // The synthetic set is regenerated exactly from the checkpoint's settings.
            Arc::new(load_split(data, false, ckpt.meta.config.seed).map_err(|e| e.to_string())?)
        } else {
            match &self.data {
                Some((_, set)) if set.num_classes() == ckpt.meta.num_classes => set.clone(),
                _ => {
                    return Err(format!(
                        "{name} was trained on {:?} data with {} classes: load that dataset \
                         in the page first (Data), then import the checkpoint again",
                        data.kind, ckpt.meta.num_classes
                    ));
                }
            }
        };
        // Reset starts this run again here, from a random initialisation: the page reads
        // no weight files, so a run the CLI started with --init-from drops it.
        let mut config = ckpt.meta.config.clone();
        config.run.init_from = None;
        self.config = Some(config);
        self.data = Some((format!("checkpoint:{name}"), set.clone()));
        self.session = Some(Session::from_checkpoint(&ckpt, set, device)?);
        Ok(())
    }

    /// A new session: its description, then every view from real state.
    async fn after_start(&mut self) {
        let Some(s) = &mut self.session else { return };
        post(&FromWorker::Started(Box::new(s.info())));
        let masks = s.mask_report();
        post(&FromWorker::Masks(masks));
        self.report_views().await;
    }

    /// Masks (when changed), the weight histogram and a validation pass.
    async fn report_views(&mut self) {
        let Some(s) = &mut self.session else { return };
        if s.masks_changed() {
            post(&FromWorker::Masks(s.mask_report()));
        }
        match s.weight_histogram().await {
            Ok(h) => post(&FromWorker::Weights(h)),
            Err(e) => error("run", e),
        }
        match s.evaluate().await {
            Ok(Some(eval)) => post(&FromWorker::Eval(eval)),
            Ok(None) => {}
            Err(e) => error("run", e),
        }
    }

    async fn play_one(&mut self) {
        let Some(s) = &mut self.session else { return };
        if s.is_finished() {
            self.running = false;
            return;
        }
        match s.step().await {
            Ok(PageStep {
                events,
                masks_updated: updated,
                epoch_done,
            }) => {
                for event in events {
                    post(&FromWorker::Event(Box::new(event)));
                }
                if s.is_finished() {
                    // The end of the run, as the command line reports it.
                    match s.finish().await {
                        Ok(events) => {
                            for event in events {
                                post(&FromWorker::Event(Box::new(event)));
                            }
                        }
                        Err(e) => error("run", e),
                    }
                }
                if updated {
                    post(&FromWorker::Masks(s.mask_report()));
                }
                if epoch_done || s.is_finished() {
                    self.report_views().await;
                } else if updated && let Some(s) = &self.session {
                    match s.weight_histogram().await {
                        Ok(h) => post(&FromWorker::Weights(h)),
                        Err(e) => error("run", e),
                    }
                }
                if self.session.as_ref().is_some_and(Session::is_finished) {
                    self.running = false;
                    self.post_state();
                }
            }
            Err(e) => {
                self.running = false;
                error("run", e);
                self.post_state();
            }
        }
    }
}
