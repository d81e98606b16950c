//! The typed messages between the page and the worker (sent with serde-wasm-bindgen).
//! A dataset or checkpoint file travels beside a message as a JS `File` (see `bridge`),
//! not inside it, so the worker can read it in chunks.

use serde::{Deserialize, Serialize};

/// Which device the worker should train on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// WebGPU when the browser offers an adapter, else the CPU (with a message).
    #[default]
    Auto,
    Gpu,
    Cpu,
}

/// Where the run's images come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "lowercase")]
pub enum DataSource {
    /// The built-in synthetic set: generated in the worker, instant.
    Synthetic,
    /// The file attached to the message (picked or dropped by the user).
    File { name: String },
    /// Fetched by the worker.
    Url { url: String },
}

/// Page → worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToWorker {
    /// Start the device (once per worker).
    Init {
        backend: BackendChoice,
    },
    /// Build a run from typed engine settings (`method.name = "east"`).
    Configure {
        settings: Vec<sparselab::train::Setting>,
        data: DataSource,
    },
    Play,
    Pause,
    /// One batch, then pause.
    Step,
    /// Back to step 0 with the same settings (the data stays loaded).
    Reset,
    /// Send the run's checkpoint (the native CLI's format).
    ExportCheckpoint,
    /// Send the run's model as safetensors under PyTorch's names (`sparselab export`).
    ExportSafetensors,
    /// Inspect the checkpoint attached to the message on the loaded data.
    ImportCheckpoint {
        name: String,
    },
}

/// Worker → page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromWorker {
    /// The worker is listening. Sent first: a message posted before the worker's wasm has
    /// loaded would be lost, so the page waits for this before sending `Init`.
    Alive,
    Ready(DeviceInfo),
    /// Loading data: what and how far (bytes so far, total when known).
    Loading {
        what: String,
        done: u64,
        total: Option<u64>,
    },
    Started(Box<RunInfo>),
    /// What the run driver reported: every step, mask update, epoch end and the end (the
    /// command line logs the same events to `metrics.jsonl`).
    Event(Box<sparselab::train::Event>),
    Masks(MaskReport),
    Eval(EvalReport),
    Weights(WeightHistogram),
    /// Running or paused, and whether the run reached its last step.
    State {
        running: bool,
        finished: bool,
    },
    /// A file for the user to save (a checkpoint, a safetensors export).
    Download {
        name: String,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// Something the user must act on; `context` says what failed (data, config, device).
    Error {
        context: String,
        message: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// "webgpu" or "cpu".
    pub backend: String,
    /// The adapter's name and kind, or the CPU backend's.
    pub adapter: String,
    /// Why the worker is on the CPU although the GPU was asked for (or `auto`).
    pub fallback_reason: Option<String>,
    /// The WebGPU adapter that `auto` left unused because it is a software emulation
    /// (the browser's fallback adapter, e.g. SwiftShader): the CPU path is faster there.
    #[serde(default)]
    pub software_adapter: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerInfo {
    pub path: String,
    /// The weight's dims as stored (conv: out, in, kh, kw; linear: in, out).
    pub dims: Vec<usize>,
    pub numel: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub method: String,
    pub model: String,
    pub class_names: Vec<String>,
    pub batch_size: usize,
    /// The run driver's start: data, sizes (the command line logs the same record).
    pub start: sparselab::train::StartRecord,
    /// The prunable layers with their weight shapes (the heatmaps' layout).
    pub layers: Vec<LayerInfo>,
    /// The planned density, DyReLU phase and LR over the whole run.
    pub schedule: Vec<sparselab::train::SchedulePoint>,
    /// The engine config the run uses, as TOML (the CLI reads it: `--config`).
    pub config_toml: String,
    /// The same config, typed (an imported checkpoint sets the controls from it).
    pub config: sparselab::train::TrainConfig,
    /// From an imported checkpoint: the step it was saved at.
    pub imported_at_step: Option<usize>,
}

impl RunInfo {
    /// The network's prunable weights counted at every use, as the configured sparsity
    /// counts them (weight sharing makes the learnable ones fewer). Records from before
    /// the count existed carry 0: then the learnable count.
    pub fn weights_at_every_use(&self) -> usize {
        self.start.unshared_numel.max(self.start.numel)
    }

    /// `nnz` alive weights as a fraction of `weights_at_every_use`, as the planned density
    /// counts them (over the learnable weights a shared network would look denser).
    pub fn alive_fraction(&self, nnz: usize) -> f64 {
        nnz as f64 / self.weights_at_every_use().max(1) as f64
    }
}

/// One layer's mask as a heatmap: `rows x cols` cells (the weight matrix, pooled when
/// large), each the fraction of active weights in it (0–255), plus what changed since the
/// previous report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerHeatmap {
    pub path: String,
    pub nnz: usize,
    pub numel: usize,
    pub rows: usize,
    pub cols: usize,
    /// Weights per cell along rows and columns (1 = exact).
    pub pool: (usize, usize),
    #[serde(with = "serde_bytes")]
    pub active: Vec<u8>,
    /// Per cell: 0 unchanged, 1 a weight regrown, 2 a weight pruned (regrowth wins).
    #[serde(with = "serde_bytes")]
    pub change: Vec<u8>,
    pub grown: usize,
    pub pruned: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MaskReport {
    pub step: usize,
    pub layers: Vec<LayerHeatmap>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplePrediction {
    /// 32x32 RGBA pixels, ready for a canvas.
    #[serde(with = "serde_bytes")]
    pub rgba: Vec<u8>,
    pub label: usize,
    pub predicted: usize,
    pub probability: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub step: usize,
    pub images: usize,
    pub loss: f64,
    pub accuracy: f64,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<usize>>,
    pub samples: Vec<SamplePrediction>,
}

/// log10 |w| of the active weights, in equal bins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeightHistogram {
    pub step: usize,
    pub log10_min: f64,
    pub log10_max: f64,
    pub counts: Vec<usize>,
    /// Active weights that are exactly zero (just regrown): not on a log axis.
    pub zeros: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_through_json() {
        let msgs = vec![
            ToWorker::Configure {
                settings: vec![sparselab::train::Setting::new("method.name", "east")],
                data: DataSource::File {
                    name: "cifar-10-binary.tar.gz".into(),
                },
            },
            ToWorker::Init {
                backend: BackendChoice::Cpu,
            },
            ToWorker::Step,
        ];
        for m in msgs {
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(serde_json::from_str::<ToWorker>(&json).unwrap(), m);
        }
        let back = FromWorker::Error {
            context: "data".into(),
            message: "bad".into(),
        };
        let json = serde_json::to_string(&back).unwrap();
        assert!(json.contains("\"type\":\"error\""), "{json}");
    }
}
