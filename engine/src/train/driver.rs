//! One run driven from its first step to its end, the same way on the command line and in
//! the page: the step loop, the evaluation policy (validation at every epoch end, the
//! test split once at the end), the checkpoint cadence, and the events that report all
//! of it to a sink. The CLI's sink writes `metrics.jsonl`, the progress bar and the
//! checkpoint file; the page's worker posts the events as messages.

use super::checkpoint::{Checkpoint, EpochSums};
use super::eval::Evaluation;
use super::metrics::{Event, MaskUpdateRecord, StartRecord, StepRecord};
use super::trainer::{StepOutcome, Trainer};
use crate::data::ImageSet;

/// Where a run's events go. Every event comes with the trainer, read-only, for anything
/// a sink shows beyond the event itself.
pub trait RunSink {
    fn event(&mut self, event: &Event, trainer: &Trainer) -> anyhow::Result<()>;

    /// A validation pass in full (the page draws its confusion matrix).
    fn validated(&mut self, _evaluation: &Evaluation) {}

    /// Saves a checkpoint and says where (None: this sink keeps no checkpoints).
    fn save_checkpoint(&mut self, _checkpoint: &Checkpoint) -> anyhow::Result<Option<String>> {
        Ok(None)
    }

    /// Whether `save_checkpoint` keeps anything: if not, none is taken (it costs a copy
    /// of every weight to the host).
    fn keeps_checkpoints(&self) -> bool {
        false
    }
}

/// What one `advance` did.
pub struct Advance {
    pub outcome: StepOutcome,
    /// The epoch-end validation, when the step ended an epoch (and there is a split).
    pub validation: Option<Evaluation>,
    /// A checkpoint was saved after the step.
    pub checkpointed: bool,
}

/// The end of a run, as `Event::End` reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct RunEnd {
    pub final_val_accuracy: Option<f64>,
    pub test_accuracy: Option<f64>,
}

pub struct RunDriver {
    trainer: Trainer,
    started: web_time::Instant,
    epoch_started: web_time::Instant,
    /// Seconds spent in steps this epoch (the epoch's wall time also holds evaluation).
    epoch_train_seconds: f64,
    last_val_accuracy: Option<f64>,
}

impl RunDriver {
    pub fn new(trainer: Trainer) -> Self {
        let now = web_time::Instant::now();
        Self {
            trainer,
            started: now,
            epoch_started: now,
            epoch_train_seconds: 0.0,
            last_val_accuracy: None,
        }
    }

    pub fn trainer(&self) -> &Trainer {
        &self.trainer
    }

    /// The validation split's evaluation now (the page's pause), with BatchNorm's
    /// statistics re-estimated first as at an epoch's end.
    pub async fn evaluate_validation(&mut self) -> anyhow::Result<Option<Evaluation>> {
        self.trainer.recalibrate_batch_norm();
        Ok(self.trainer.evaluate_validation().await?)
    }

    /// Counts the run's seconds from `started` (e.g. before its data were loaded).
    pub fn started_at(mut self, started: web_time::Instant) -> Self {
        self.started = started;
        self
    }

    pub fn into_trainer(self) -> Trainer {
        self.trainer
    }

    pub fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub fn last_val_accuracy(&self) -> Option<f64> {
        self.last_val_accuracy
    }

    /// Reports the run's start: its data, its size and where it resumed from.
    pub fn start(
        &mut self,
        device: &str,
        resumed_from: Option<usize>,
        sink: &mut dyn RunSink,
    ) -> anyhow::Result<()> {
        let event = Event::Start(self.start_record(device, resumed_from));
        sink.event(&event, &self.trainer)
    }

    /// The run's data and size, as `start` reports them.
    pub fn start_record(&self, device: &str, resumed_from: Option<usize>) -> StartRecord {
        let t = &self.trainer;
        let (layers, connected) = t.layer_densities_connected();
        StartRecord {
            device: device.to_string(),
            dataset: t.dataset().name.clone(),
            classes: t.dataset().num_classes(),
            train_images: t.data().split.train.len(),
            val_images: t.data().split.val.len(),
            steps_per_epoch: t.steps_per_epoch(),
            total_steps: t.total_steps(),
            nnz: t.nnz(),
            numel: t.masks().numel(),
            dense_params: t.dense_param_count(),
            unshared_numel: t.budget().unshared_total(),
            dyrelu_params: t.dyrelu_param_count(),
            sparse_kernel_layers: t.sparse_kernel_layers().to_vec(),
            connected_nnz: Some(connected),
            layers,
            resumed_from,
        }
    }

    /// One step and what follows it: its events, the epoch-end validation and the
    /// checkpoint the cadence asks for.
    pub async fn advance(&mut self, sink: &mut dyn RunSink) -> anyhow::Result<Advance> {
        let o = self.trainer.train_step().await?;
        self.epoch_train_seconds += o.seconds;
        let t = &self.trainer;
        sink.event(
            &Event::Step(StepRecord {
                step: o.step,
                epoch: o.epoch,
                loss: o.loss,
                accuracy: o.accuracy,
                lr: o.lr,
                density: o.density,
                target_density: o.scheduled_density,
                phase: o.phase,
                images_per_sec: o.batch as f64 / o.seconds.max(1e-9),
                nnz: o.nnz,
            }),
            t,
        )?;
        if let Some(u) = &o.mask_update {
            sink.event(
                &Event::MaskUpdate(MaskUpdateRecord {
                    step: o.step,
                    drop_fraction: u.drop_fraction,
                    dropped: u.dropped,
                    grown: u.grown,
                    churn: u.churn,
                    density: o.density,
                    layers: t.layer_densities(),
                }),
                t,
            )?;
        }
        let mut validation = None;
        let checkpointed = if o.epoch_done {
            let recalibrated = self.trainer.recalibrate_batch_norm();
            validation = self.trainer.evaluate_validation().await?;
            let sums = self.trainer.take_epoch_sums();
            let val = validation.as_ref().map(|v| (v.loss, v.accuracy));
            if let Some((_, accuracy)) = val {
                self.trainer.record_validation(accuracy);
            }
            self.last_val_accuracy = val.map(|v| v.1);
            if let Some(v) = &validation {
                sink.validated(v);
            }
            let event = self.epoch_event(o.epoch, &sums, val, recalibrated);
            sink.event(&event, &self.trainer)?;
            let saved = self.checkpoint(sink).await?;
            // The next epoch's clock starts after the checkpoint.
            self.epoch_started = web_time::Instant::now();
            self.epoch_train_seconds = 0.0;
            saved
        } else {
            let every = self.trainer.config().run.checkpoint_every;
            if every > 0 && self.trainer.step().is_multiple_of(every) {
                self.checkpoint(sink).await?
            } else {
                false
            }
        };
        Ok(Advance {
            outcome: o,
            validation,
            checkpointed,
        })
    }

    /// Saves a checkpoint through the sink (if it keeps them) and reports it.
    pub async fn checkpoint(&mut self, sink: &mut dyn RunSink) -> anyhow::Result<bool> {
        if !sink.keeps_checkpoints() {
            return Ok(false);
        }
        let checkpoint = self.trainer.checkpoint().await?;
        let Some(path) = sink.save_checkpoint(&checkpoint)? else {
            return Ok(false);
        };
        let event = Event::Checkpoint {
            step: self.trainer.step(),
            path,
        };
        sink.event(&event, &self.trainer)?;
        Ok(true)
    }

    /// The end of a finished run: the test split (if any) and a last validation when no
    /// epoch ended with one, then `Event::End`.
    pub async fn finish(
        &mut self,
        test: Option<&ImageSet>,
        sink: &mut dyn RunSink,
    ) -> anyhow::Result<RunEnd> {
        self.trainer.recalibrate_batch_norm();
        let t = &self.trainer;
        let test_accuracy = match test {
            Some(test) => {
                let all: Vec<usize> = (0..test.len()).collect();
                Some(t.evaluate(test, &all).await?.accuracy)
            }
            None => None,
        };
        if self.last_val_accuracy.is_none() && !t.data().split.val.is_empty() {
            self.last_val_accuracy = t.evaluate_validation().await?.map(|v| v.accuracy);
        }
        let event = Event::End {
            step: t.step(),
            best_val_accuracy: t.best_val_accuracy(),
            final_val_accuracy: self.last_val_accuracy,
            test_accuracy,
            nnz: t.nnz(),
            density: t.mask_density(),
            effective_nnz: t.effective_nnz(),
            connected_nnz: Some(t.connectivity().total),
            itop: t.itop_rate(),
            train_flops: t.train_flops(),
            seconds: self.seconds(),
        };
        sink.event(&event, t)?;
        Ok(RunEnd {
            final_val_accuracy: self.last_val_accuracy,
            test_accuracy,
        })
    }

    fn epoch_event(
        &self,
        epoch: usize,
        sums: &EpochSums,
        val: Option<(f64, f64)>,
        bn_recalibration_batches: usize,
    ) -> Event {
        let t = &self.trainer;
        let (layers, connected) = t.layer_densities_connected();
        Event::Epoch {
            epoch,
            step: t.step(),
            train_loss: sums.loss / sums.seen.max(1.0),
            train_accuracy: sums.correct / sums.seen.max(1.0),
            val_loss: val.map(|v| v.0),
            val_accuracy: val.map(|v| v.1),
            nnz: t.nnz(),
            density: t.mask_density(),
            effective_nnz: t.effective_nnz(),
            connected_nnz: Some(connected),
            itop: t.itop_rate(),
            train_flops: t.train_flops(),
            bn_recalibration_batches,
            layers,
            images_per_sec: sums.seen / self.epoch_train_seconds.max(1e-9),
            seconds: self.epoch_started.elapsed().as_secs_f64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::{Setting, TrainConfig, TrainData};
    use burn::tensor::Device;

    /// Keeps every event (as the CLI's log would hold it) and every checkpoint's step.
    #[derive(Default)]
    struct RecordingSink {
        events: Vec<Event>,
        validations: usize,
        checkpoints: Vec<usize>,
    }

    impl RunSink for RecordingSink {
        fn event(&mut self, event: &Event, _trainer: &Trainer) -> anyhow::Result<()> {
            self.events.push(event.clone());
            Ok(())
        }

        fn validated(&mut self, _evaluation: &Evaluation) {
            self.validations += 1;
        }

        fn save_checkpoint(&mut self, c: &Checkpoint) -> anyhow::Result<Option<String>> {
            self.checkpoints.push(c.meta.step);
            Ok(Some(format!("ckpt-{}", c.meta.step)))
        }

        fn keeps_checkpoints(&self) -> bool {
            true
        }
    }

    fn kind(e: &Event) -> String {
        match e {
            Event::Start(_) => "start".into(),
            Event::Step(s) => format!("step {}", s.step),
            Event::MaskUpdate(u) => format!("update {}", u.step),
            Event::Epoch { epoch, .. } => format!("epoch {epoch}"),
            Event::Checkpoint { step, .. } => format!("checkpoint {step}"),
            Event::End { step, .. } => format!("end {step}"),
        }
    }

    #[test]
    fn a_run_reports_steps_updates_epochs_checkpoints_and_its_end_in_order() {
        let sets = Setting::parse_all(&[
            "model.arch=\"resnet8\"",
            "model.width=0.25",
            "method.name=\"rigl\"",
            "method.update_every=3",
            "sparsity.sparsity=0.9",
            "data.synthetic_size=120",
            "batch_size=16",
            "epochs=2",
            "run.checkpoint_every=4",
        ])
        .unwrap();
        let config = TrainConfig::load(None, &sets).unwrap();
        let set = crate::data::synthetic::generate(120, config.seed);
        let data = TrainData::new(set, config.data.val_fraction, config.seed);
        let trainer = Trainer::new(config, data, Device::flex().autodiff()).unwrap();
        let (spe, total) = (trainer.steps_per_epoch(), trainer.total_steps());
        assert_eq!((spe, total), (6, 12));
        let mut driver = RunDriver::new(trainer);
        let mut sink = RecordingSink::default();
        driver.start("cpu", None, &mut sink).unwrap();
        let mut checkpointed = Vec::new();
        while !driver.trainer().is_finished() {
            let a = pollster::block_on(driver.advance(&mut sink)).unwrap();
            assert_eq!(a.validation.is_some(), a.outcome.epoch_done);
            if a.checkpointed {
                checkpointed.push(a.outcome.step + 1);
            }
        }
        let end = pollster::block_on(driver.finish(None, &mut sink)).unwrap();
        assert!(end.final_val_accuracy.is_some() && end.test_accuracy.is_none());

        // The expected sequence, from the schedule alone: every step, RigL's updates
        // every 3 steps until 75% of the run, the epoch ends (validation, then a
        // checkpoint), the cadence's checkpoints in between, and the end.
        let mut want = vec!["start".to_string()];
        for step in 0..total {
            want.push(format!("step {step}"));
            if step > 0 && step % 3 == 0 && (step as f64) < 0.75 * total as f64 {
                want.push(format!("update {step}"));
            }
            let done = step + 1;
            if done % spe == 0 {
                want.push(format!("epoch {}", step / spe));
                want.push(format!("checkpoint {done}"));
            } else if done % 4 == 0 {
                want.push(format!("checkpoint {done}"));
            }
        }
        want.push(format!("end {total}"));
        assert_eq!(sink.events.iter().map(kind).collect::<Vec<_>>(), want);
        assert_eq!(sink.validations, 2);
        assert_eq!(sink.checkpoints, vec![4, 6, 8, 12]);
        assert_eq!(checkpointed, sink.checkpoints);
        // The epoch events carry the validation the driver ran, and the best of them.
        let vals: Vec<f64> = sink
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Epoch { val_accuracy, .. } => *val_accuracy,
                _ => None,
            })
            .collect();
        let best = vals.iter().copied().fold(f64::MIN, f64::max);
        assert_eq!(driver.trainer().best_val_accuracy(), Some(best));
    }
}
