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
    /// Of `nnz`, the weights on an input→output path (`sparsity::connectivity`); counted
    /// at the start, each epoch's end and the end, absent elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_nnz: Option<usize>,
}

/// A run's start: its data, its size, where it resumed from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StartRecord {
    pub device: String,
    pub dataset: String,
    /// Classes of the dataset (chance loss is ln of it); 0 in logs that predate it.
    #[serde(default)]
    pub classes: usize,
    pub train_images: usize,
    pub val_images: usize,
    pub steps_per_epoch: usize,
    pub total_steps: usize,
    pub nnz: usize,
    pub numel: usize,
    pub dense_params: usize,
    /// Prunable weights counting every reuse of a shared weight (= numel unshared).
    #[serde(default)]
    pub unshared_numel: usize,
    /// DyReLU's parameters, included in `dense_params`.
    #[serde(default)]
    pub dyrelu_params: usize,
    /// The layers that run the sparse kernels (`run.kernels`); the rest run dense.
    #[serde(default)]
    pub sparse_kernel_layers: Vec<String>,
    /// Alive weights on an input→output path; 0: the network is disconnected.
    #[serde(default)]
    pub connected_nnz: Option<usize>,
    pub layers: Vec<LayerDensity>,
    pub resumed_from: Option<usize>,
}

/// One training step as logged (every `run.log_every` steps on the command line).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: usize,
    pub epoch: usize,
    pub loss: f64,
    pub accuracy: f64,
    pub lr: f64,
    pub density: f64,
    /// The method's scheduled density (EAST's cycles, GMP's ramp, ...).
    #[serde(default)]
    pub target_density: f64,
    /// DyReLU's phase p (absent without DyReLU).
    #[serde(default)]
    pub phase: Option<f64>,
    pub images_per_sec: f64,
    /// Non-zeros of the masks after the step.
    #[serde(default)]
    pub nnz: usize,
}

/// A mask update: how many weights moved, and the layer densities after it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MaskUpdateRecord {
    pub step: usize,
    pub drop_fraction: f64,
    pub dropped: usize,
    pub grown: usize,
    pub churn: f64,
    pub density: f64,
    pub layers: Vec<LayerDensity>,
}

/// Everything a run reports, in order. Steps, starts and mask updates are records of their
/// own, so the page's messages carry the same types as the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    Start(StartRecord),
    Step(StepRecord),
    MaskUpdate(MaskUpdateRecord),
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
        /// Alive weights on an input→output path (see `LayerDensity::connected_nnz`).
        #[serde(default)]
        connected_nnz: Option<usize>,
        /// In-time over-parameterisation: fraction of weights ever active so far.
        #[serde(default)]
        itop: f64,
        #[serde(default)]
        train_flops: f64,
        /// Training batches BatchNorm's statistics were re-estimated on before the
        /// validation (`run.bn_recalibration_batches`; 0: the running averages).
        #[serde(default)]
        bn_recalibration_batches: usize,
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
        connected_nnz: Option<usize>,
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
            Event::Start(_) => 0,
            Event::Step(StepRecord { step, .. })
            | Event::MaskUpdate(MaskUpdateRecord { step, .. }) => step + 1,
            Event::Epoch { step, .. }
            | Event::Checkpoint { step, .. }
            | Event::End { step, .. } => *step,
        }
    }

    /// The training step the event belongs to (`Start` belongs before step 0).
    pub fn step(&self) -> Option<usize> {
        match self {
            Event::Start(_) => None,
            Event::Step(StepRecord { step, .. })
            | Event::MaskUpdate(MaskUpdateRecord { step, .. })
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
    /// The file's length after the last whole line: a failed write is cut back to it.
    len: u64,
}

impl MetricsLog {
    pub fn append_to(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let len = file.metadata()?.len();
        Ok(Self {
            path: path.to_path_buf(),
            file,
            len,
        })
    }

    /// Appends one line, whole or not at all: a write that fails (a full disk) is cut back,
    /// and the error names the file.
    pub fn write(&mut self, event: &Event) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(event).expect("events serialise");
        line.push(b'\n');
        match self.file.write_all(&line).and_then(|()| self.file.flush()) {
            Ok(()) => {
                self.len += line.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.len);
                Err(std::io::Error::new(
                    e.kind(),
                    format!("cannot append to {}: {e}", self.path.display()),
                ))
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads a metrics file. A torn last line (a run killed mid-write) is skipped; any other
/// line that does not parse is an error naming the file and line, never dropped: a resume
/// rewrites the file from what this returns.
pub fn read_events(path: &Path) -> std::io::Result<Vec<Event>> {
    let bytes = std::fs::read(path)?;
    parse_events(&bytes).map_err(|message| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{}: {message}; the metrics log is damaged. Move it aside to resume without \
                 its history",
                path.display()
            ),
        )
    })
}

/// Parses JSON lines; `Err` names the first damaged line.
pub fn parse_events(bytes: &[u8]) -> Result<Vec<Event>, String> {
    let whole = bytes.ends_with(b"\n") || bytes.is_empty();
    let lines: Vec<&[u8]> = bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let mut events = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_slice(line) {
            Ok(e) => events.push(e),
            Err(_) if i + 1 == lines.len() && !whole => {} // torn by a kill mid-write
            Err(e) => return Err(format!("line {} is not a metrics event ({e})", i + 1)),
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(step: usize) -> String {
        let e = Event::Checkpoint {
            step,
            path: "c".into(),
        };
        serde_json::to_string(&e).unwrap() + "\n"
    }

    #[test]
    fn a_torn_last_line_is_skipped_but_damage_elsewhere_is_an_error() {
        let good = line(1) + &line(2);
        assert_eq!(parse_events(good.as_bytes()).unwrap().len(), 2);
        let torn = good.clone() + "{\"kind\":\"che";
        assert_eq!(parse_events(torn.as_bytes()).unwrap().len(), 2);
        let mut bad = good.clone().into_bytes();
        bad[3] = 0xFF; // invalid UTF-8 in line 1
        let err = parse_events(&bad).unwrap_err();
        assert!(err.contains("line 1"), "{err}");
        let middle = line(1) + "garbage\n" + &line(2);
        assert!(
            parse_events(middle.as_bytes())
                .unwrap_err()
                .contains("line 2")
        );
    }
}
