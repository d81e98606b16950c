//! The command line's view of a run: every event in `metrics.jsonl` (steps every
//! `run.log_every`), checkpoints written atomically beside it, a progress bar and one line
//! per epoch on stderr.

use super::checkpoint::Checkpoint;
use super::driver::RunSink;
use super::metrics::{Event, MetricsLog, StepRecord};
use super::trainer::Trainer;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;

pub struct CliSink {
    log: MetricsLog,
    checkpoint_path: PathBuf,
    bar: ProgressBar,
}

impl CliSink {
    pub fn new(
        log: MetricsLog,
        checkpoint_path: PathBuf,
        trainer: &Trainer,
        progress: bool,
    ) -> Self {
        let bar = if progress {
            let bar = ProgressBar::new(trainer.total_steps() as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} steps {elapsed}<{eta} {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(format!(
                "{} {:.2}% sparse",
                trainer.config().method.name,
                (1.0 - trainer.budget_density()) * 100.0
            ));
            bar.set_position(trainer.step() as u64);
            bar
        } else {
            ProgressBar::hidden()
        };
        Self {
            log,
            checkpoint_path,
            bar,
        }
    }

    /// The run stopped on purpose before its end.
    pub fn stopped(&self) {
        self.bar
            .abandon_with_message("stopped; continue with --resume");
    }

    pub fn finished(&self) {
        self.bar.finish_and_clear();
    }
}

impl RunSink for CliSink {
    fn event(&mut self, event: &Event, trainer: &Trainer) -> anyhow::Result<()> {
        match event {
            Event::Start(start) => {
                if let Some(line) = connectivity_line(start.connected_nnz, start.nnz) {
                    self.bar.suspend(|| eprintln!("{line}"));
                }
            }
            Event::Step(StepRecord {
                step,
                loss,
                accuracy,
                ..
            }) => {
                self.bar.set_position(trainer.step() as u64);
                self.bar
                    .set_message(format!("loss {loss:.3} acc {:.1}%", accuracy * 100.0));
                if step % trainer.config().run.log_every != 0 {
                    return Ok(());
                }
            }
            Event::Epoch {
                epoch,
                train_loss,
                train_accuracy,
                val_loss: Some(val_loss),
                val_accuracy: Some(val_accuracy),
                ..
            } => {
                let line = format!(
                    "epoch {:>3}  train loss {train_loss:.4} acc {:.2}%  val loss {val_loss:.4} acc {:.2}%  density {:.4}%",
                    epoch + 1,
                    100.0 * train_accuracy,
                    val_accuracy * 100.0,
                    trainer.budget_density() * 100.0
                );
                // --quiet (or stderr not being a terminal) drops the bar, not the epoch line.
                if !self.bar.is_hidden() {
                    self.bar.println(line)
                } else {
                    eprintln!("{line}")
                }
            }
            _ => {}
        }
        self.log.write(event)?;
        Ok(())
    }

    fn save_checkpoint(&mut self, checkpoint: &Checkpoint) -> anyhow::Result<Option<String>> {
        // `save` names the file in its errors.
        checkpoint.save(&self.checkpoint_path)?;
        Ok(Some(self.checkpoint_path.display().to_string()))
    }

    fn keeps_checkpoints(&self) -> bool {
        true
    }
}

/// A line about the weights off every input→output path, when there are any.
fn connectivity_line(connected: Option<usize>, nnz: usize) -> Option<String> {
    match connected? {
        0 if nnz > 0 => Some(format!(
            "warning: no alive weight lies on a path from the input to the output: all {nnz} \
             sit on dead ends, so the logits cannot depend on the image. Methods that regrow \
             (RigL, SET, EAST) may reconnect it; otherwise lower the sparsity, or narrow the \
             model (model.width) so that each channel keeps more of the weights"
        )),
        c if c < nnz => Some(format!(
            "connectivity: {c} of {nnz} alive weights lie on an input→output path; the other \
             {} feed or read channels cut off from it",
            nnz - c
        )),
        _ => None,
    }
}
