//! The page's end of the worker: spawns it (Trunk's loader shim for the worker binary),
//! sends typed messages (with a `File` beside when there is one) and hands every typed
//! reply to one callback.

use crate::protocol::{FromWorker, ToWorker};
use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;
use web_sys::{File, MessageEvent, Worker};

/// Trunk writes this loader for `data-bin="sparselab-worker"` (`data-loader-shim`).
const WORKER_SCRIPT: &str = "./sparselab-worker_loader.js";

#[derive(Clone)]
pub struct Bridge {
    worker: Worker,
}

impl Bridge {
    /// `on_message` gets every reply; `on_crash` the message of an uncaught error in the
    /// worker (a panic in the engine), after which the worker is gone.
    pub fn spawn(
        on_message: impl Fn(FromWorker) + 'static,
        on_crash: impl Fn(String) + 'static,
    ) -> Result<Self, String> {
        let worker = Worker::new(WORKER_SCRIPT)
            .map_err(|e| format!("cannot start the training worker: {e:?}"))?;
        let on_crash = std::rc::Rc::new(on_crash);
        let crash_on_bad_message = on_crash.clone();
        let handler = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            match serde_wasm_bindgen::from_value::<FromWorker>(e.data()) {
                Ok(msg) => on_message(msg),
                Err(err) => {
                    crash_on_bad_message(format!("unreadable message from the worker: {err}"))
                }
            }
        });
        worker.set_onmessage(Some(handler.as_ref().unchecked_ref()));
        handler.forget();
        let crash = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
            let message = Reflect::get(&e, &"message".into())
                .ok()
                .and_then(|m| m.as_string())
                .unwrap_or_else(|| "the worker stopped".into());
            on_crash(message);
        });
        worker.set_onerror(Some(crash.as_ref().unchecked_ref()));
        crash.forget();
        Ok(Self { worker })
    }

    pub fn send(&self, msg: &ToWorker) {
        self.send_with_file(msg, None);
    }

    pub fn send_with_file(&self, msg: &ToWorker, file: Option<&File>) {
        let envelope = Object::new();
        let value = serde_wasm_bindgen::to_value(msg).expect("messages serialise");
        let _ = Reflect::set(&envelope, &"msg".into(), &value);
        if let Some(f) = file {
            let _ = Reflect::set(&envelope, &"file".into(), f);
        }
        let _ = self.worker.post_message(&envelope);
    }
}
