//! Metrics as typed events, streamed as JSON lines (one event per line, each written with
//! a single write and flushed, so a killed run leaves only whole lines).

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerDensity {
    pub path: String,
    pub nnz: usize,
    pub numel: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    Start {
        device: String,
        dataset: String,
        train_images: usize,
        val_images: usize,
        steps_per_epoch: usize,
        total_steps: usize,
        nnz: usize,
        numel: usize,
        dense_params: usize,
        /// Prunable weights counting every reuse of a shared weight (= numel unshared).
        #[serde(default)]
        unshared_numel: usize,
        /// DyReLU's parameters, included in `dense_params`.
        #[serde(default)]
        dyrelu_params: usize,
        /// The layers that run the sparse kernels (`run.kernels`); the rest run dense.
        #[serde(default)]
        sparse_kernel_layers: Vec<String>,
        layers: Vec<LayerDensity>,
        resumed_from: Option<usize>,
    },
    Step {
        step: usize,
        epoch: usize,
        loss: f64,
        accuracy: f64,
        lr: f64,
        density: f64,
        /// The method's scheduled density (EAST's cycles, GMP's ramp, ...).
        #[serde(default)]
        target_density: f64,
        /// DyReLU's phase p (absent without DyReLU).
        #[serde(default)]
        phase: Option<f64>,
        images_per_sec: f64,
    },
    MaskUpdate {
        step: usize,
        drop_fraction: f64,
        dropped: usize,
        grown: usize,
        churn: f64,
        density: f64,
        layers: Vec<LayerDensity>,
    },
    Epoch {
        epoch: usize,
        step: usize,
        train_loss: f64,
        train_accuracy: f64,
        val_loss: Option<f64>,
        val_accuracy: Option<f64>,
        nnz: usize,
        density: f64,
        #[serde(default)]
        effective_nnz: usize,
        /// In-time over-parameterisation: fraction of weights ever active so far.
        #[serde(default)]
        itop: f64,
        #[serde(default)]
        train_flops: f64,
        layers: Vec<LayerDensity>,
        images_per_sec: f64,
        seconds: f64,
    },
    Checkpoint {
        step: usize,
        path: String,
    },
    End {
        step: usize,
        best_val_accuracy: Option<f64>,
        final_val_accuracy: Option<f64>,
        test_accuracy: Option<f64>,
        nnz: usize,
        density: f64,
        #[serde(default)]
        effective_nnz: usize,
        #[serde(default)]
        itop: f64,
        #[serde(default)]
        train_flops: f64,
        seconds: f64,
    },
}

impl Event {
    /// Steps completed when the event was emitted; `Start` counts as before any step.
    pub fn completed_steps(&self) -> usize {
        match self {
            Event::Start { .. } => 0,
            Event::Step { step, .. } | Event::MaskUpdate { step, .. } => step + 1,
            Event::Epoch { step, .. }
            | Event::Checkpoint { step, .. }
            | Event::End { step, .. } => *step,
        }
    }

    /// The training step the event belongs to (`Start` belongs before step 0).
    pub fn step(&self) -> Option<usize> {
        match self {
            Event::Start { .. } => None,
            Event::Step { step, .. }
            | Event::MaskUpdate { step, .. }
            | Event::Epoch { step, .. }
            | Event::Checkpoint { step, .. }
            | Event::End { step, .. } => Some(*step),
        }
    }
}

/// Appends events to `metrics.jsonl`.
pub struct MetricsLog {
    path: PathBuf,
    file: std::fs::File,
}

impl MetricsLog {
    pub fn append_to(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn write(&mut self, event: &Event) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(event).expect("events serialise");
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.flush()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads a metrics file, skipping a torn last line (a run killed mid-write).
pub fn read_events(path: &Path) -> std::io::Result<Vec<Event>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}
