//! A run's record as the page exports it: metrics as CSV (one row per step, the
//! validation passes beside) and everything as JSON.

use crate::protocol::{EvalReport, RunInfo};
use serde::{Deserialize, Serialize};
use sparselab::train::{MaskUpdateRecord, StepRecord};

/// A validation pass, without the images of the sample strip.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalPoint {
    pub step: usize,
    pub loss: f64,
    pub accuracy: f64,
    pub images: usize,
}

impl From<&EvalReport> for EvalPoint {
    fn from(e: &EvalReport) -> Self {
        Self {
            step: e.step,
            loss: e.loss,
            accuracy: e.accuracy,
            images: e.images,
        }
    }
}

/// Everything the page knows about a run, as exported to JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The link (URL hash) that reproduces the run.
    pub link: String,
    pub device: String,
    pub info: RunInfo,
    pub steps: Vec<StepRecord>,
    #[serde(default)]
    pub mask_updates: Vec<MaskUpdateRecord>,
    pub evals: Vec<EvalPoint>,
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// One row per training step; `dropped`/`grown` are filled on mask update steps and
/// `val_loss`/`val_accuracy` on the steps after which the validation set was evaluated.
pub fn to_csv(
    batch: usize,
    steps: &[StepRecord],
    updates: &[MaskUpdateRecord],
    evals: &[EvalPoint],
) -> String {
    let mut out = String::from(
        "step,epoch,loss,accuracy,lr,phase,scheduled_density,mask_density,nnz,seconds,images_per_second,dropped,grown,val_loss,val_accuracy\n",
    );
    for s in steps {
        // An evaluation at `step` = completed steps follows the step numbered step - 1.
        let eval = evals.iter().find(|e| e.step == s.step + 1);
        let update = updates.iter().find(|u| u.step == s.step);
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            s.step,
            s.epoch,
            s.loss,
            s.accuracy,
            s.lr,
            opt(s.phase),
            s.target_density,
            s.density,
            s.nnz,
            batch as f64 / s.images_per_sec.max(1e-9),
            s.images_per_sec,
            update.map(|u| u.dropped.to_string()).unwrap_or_default(),
            update.map(|u| u.grown.to_string()).unwrap_or_default(),
            opt(eval.map(|e| e.loss)),
            opt(eval.map(|e| e.accuracy)),
        ));
    }
    out
}

pub fn to_json(record: &RunRecord) -> String {
    serde_json::to_string_pretty(record).expect("a run record serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(i: usize) -> StepRecord {
        StepRecord {
            step: i,
            epoch: 0,
            loss: 2.0 - i as f64 * 0.1,
            accuracy: 0.1,
            lr: 0.1,
            phase: Some(0.5),
            target_density: 0.01,
            density: 0.01,
            nnz: 100,
            images_per_sec: 64.0,
        }
    }

    fn update(step: usize) -> MaskUpdateRecord {
        MaskUpdateRecord {
            step,
            drop_fraction: 0.3,
            dropped: 3,
            grown: 3,
            churn: 0.03,
            density: 0.01,
            layers: Vec::new(),
        }
    }

    #[test]
    fn csv_has_a_row_per_step_and_the_evaluations_beside() {
        let csv = to_csv(
            32,
            &[step(0), step(1)],
            &[update(1)],
            &[EvalPoint {
                step: 2,
                loss: 1.5,
                accuracy: 0.4,
                images: 10,
            }],
        );
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        let header: Vec<&str> = lines[0].split(',').collect();
        let row: Vec<&str> = lines[2].split(',').collect();
        assert_eq!(header.len(), row.len());
        assert_eq!(row[0], "1");
        assert_eq!(row[11], "3");
        assert_eq!(&row[13..], &["1.5", "0.4"]);
        assert!(lines[1].ends_with(",,,,"), "{}", lines[1]);
    }
}
