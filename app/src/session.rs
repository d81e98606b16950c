//! One run in the page: the engine's run driver (the same step loop, evaluation policy
//! and events as the command line) plus what the views need, as messages. Nothing here
//! touches the browser, so it is tested natively on Flex.

use crate::heatmap::layer_heatmap;
use crate::histogram::weight_histogram;
use crate::protocol::{
    EvalReport, LayerInfo, MaskReport, RunInfo, SamplePrediction, WeightHistogram,
};
use sparselab::burn::tensor::Device;
use sparselab::data::{IMAGE_SIZE, ImageSet};
use sparselab::train::{
    Checkpoint, Evaluation, Event, RunDriver, RunSink, TrainConfig, TrainData, Trainer,
};
use std::sync::Arc;

/// Images in the strip of sample predictions.
pub const SAMPLES: usize = 8;
/// Points of the planned schedule sent at the start (plus every mask update step).
const SCHEDULE_POINTS: usize = 200;

/// The page shows every event and keeps no checkpoints (it exports one on request).
#[derive(Default)]
struct PageSink {
    events: Vec<Event>,
    validation: Option<Evaluation>,
}

impl RunSink for PageSink {
    fn event(&mut self, event: &Event, _trainer: &Trainer) -> sparselab::anyhow::Result<()> {
        self.events.push(event.clone());
        Ok(())
    }

    fn validated(&mut self, evaluation: &Evaluation) {
        self.validation = Some(evaluation.clone());
    }
}

/// What one step of the page's run did.
pub struct PageStep {
    /// The driver's events for the step (its `Step`, a `MaskUpdate`, an `Epoch`).
    pub events: Vec<Event>,
    /// The masks changed.
    pub masks_updated: bool,
    /// The step ended an epoch: the driver validated (the views refresh).
    pub epoch_done: bool,
}

pub struct Session {
    driver: RunDriver,
    /// Per layer, flat indices grown / pruned since the last mask report.
    grown: Vec<Vec<usize>>,
    pruned: Vec<Vec<usize>>,
    imported_at_step: Option<usize>,
    /// The device, as the start record names it.
    device: String,
    /// The last epoch-end validation, until the views show it.
    validation: Option<Evaluation>,
}

impl Session {
    pub fn new(
        config: TrainConfig,
        set: impl Into<Arc<ImageSet>>,
        device: Device,
    ) -> Result<Self, String> {
        let data = TrainData::new(set, config.data.val_fraction, config.seed);
        let trainer = Trainer::new(config, data, device).map_err(|e| e.to_string())?;
        Ok(Self::wrap(trainer, None))
    }

    /// A run restored from a checkpoint (the native CLI's `checkpoint.bin`), on `set`.
    pub fn from_checkpoint(
        ckpt: &Checkpoint,
        set: impl Into<Arc<ImageSet>>,
        device: Device,
    ) -> Result<Self, String> {
        let trainer = Trainer::from_checkpoint(ckpt, set, device).map_err(|e| e.to_string())?;
        Ok(Self::wrap(trainer, Some(ckpt.meta.step)))
    }

    fn wrap(trainer: Trainer, imported_at_step: Option<usize>) -> Self {
        let n = trainer.layers().len();
        // The page's two backends: WebGPU (the WGSL kernels) or Flex on the CPU.
        let device = if sparselab::kernels::runs_wgsl(trainer.device()) {
            "webgpu"
        } else {
            "cpu"
        };
        Self {
            driver: RunDriver::new(trainer),
            grown: vec![Vec::new(); n],
            pruned: vec![Vec::new(); n],
            imported_at_step,
            device: device.into(),
            validation: None,
        }
    }

    pub fn trainer(&self) -> &Trainer {
        self.driver.trainer()
    }

    pub fn info(&self) -> RunInfo {
        let t = self.trainer();
        let c = t.config();
        RunInfo {
            method: t.method_name().to_string(),
            model: format!("{} x{}", c.model.arch.name(), c.model.width),
            class_names: t.dataset().class_names.clone(),
            batch_size: c.batch_size,
            start: self
                .driver
                .start_record(&self.device, self.imported_at_step),
            layers: t
                .layers()
                .iter()
                .map(|l| LayerInfo {
                    path: l.path.clone(),
                    dims: l.dims.clone(),
                    numel: l.numel(),
                })
                .collect(),
            schedule: t.schedule_preview(SCHEDULE_POINTS),
            config_toml: c.to_toml(),
            config: c.clone(),
            imported_at_step: self.imported_at_step,
        }
    }

    pub fn is_finished(&self) -> bool {
        self.trainer().is_finished()
    }

    /// One batch through the run driver. A mask update's changes are kept for the next
    /// mask report.
    pub async fn step(&mut self) -> Result<PageStep, String> {
        let mut sink = PageSink::default();
        let advance = self
            .driver
            .advance(&mut sink)
            .await
            .map_err(|e| e.to_string())?;
        let out = advance.outcome;
        if let Some(update) = &out.mask_update {
            for (i, d) in update.changes.dropped.iter().enumerate() {
                self.pruned[i].extend_from_slice(d);
            }
            for (i, g) in update.changes.grown.iter().enumerate() {
                self.grown[i].extend_from_slice(g);
            }
        }
        self.validation = sink.validation;
        Ok(PageStep {
            events: sink.events,
            masks_updated: out.mask_update.is_some(),
            epoch_done: out.epoch_done,
        })
    }

    /// The end of a finished run: a last validation if no epoch had one, and `Event::End`
    /// (the page has no test split).
    pub async fn finish(&mut self) -> Result<Vec<Event>, String> {
        let mut sink = PageSink::default();
        self.driver
            .finish(None, &mut sink)
            .await
            .map_err(|e| e.to_string())?;
        Ok(sink.events)
    }

    /// Whether there are mask changes not yet reported.
    pub fn masks_changed(&self) -> bool {
        self.grown.iter().chain(&self.pruned).any(|v| !v.is_empty())
    }

    /// Every layer's heatmap, highlighting the changes since the previous report.
    pub fn mask_report(&mut self) -> MaskReport {
        let layers = self
            .trainer()
            .masks()
            .layers
            .iter()
            .enumerate()
            .map(|(i, m)| {
                // A weight pruned then regrown (or the reverse) shows its final state.
                let grown: Vec<usize> = self.grown[i]
                    .iter()
                    .copied()
                    .filter(|&j| m.active[j])
                    .collect();
                let pruned: Vec<usize> = self.pruned[i]
                    .iter()
                    .copied()
                    .filter(|&j| !m.active[j])
                    .collect();
                layer_heatmap(m, &grown, &pruned)
            })
            .collect();
        for v in self.grown.iter_mut().chain(self.pruned.iter_mut()) {
            v.clear();
        }
        MaskReport {
            step: self.trainer().step(),
            layers,
        }
    }

    /// Validation loss, accuracy and confusion matrix, and the sample strip. The
    /// driver's epoch-end validation is used when it is the current one.
    pub async fn evaluate(&mut self) -> Result<Option<EvalReport>, String> {
        let eval = match self.validation.take() {
            Some(eval) => eval,
            None => match self
                .driver
                .evaluate_validation()
                .await
                .map_err(|e| e.to_string())?
            {
                Some(eval) => eval,
                None => return Ok(None),
            },
        };
        let t = self.driver.trainer();
        let set = t.dataset();
        let picks = sample_indices(set, &t.data().split.val);
        let predictions = t.predict(set, &picks).await.map_err(|e| e.to_string())?;
        let samples = picks
            .iter()
            .zip(predictions)
            .map(|(&i, p)| SamplePrediction {
                rgba: chw_to_rgba(set.image(i)),
                label: set.labels[i] as usize,
                predicted: p.class,
                probability: p.probability,
            })
            .collect();
        Ok(Some(EvalReport {
            step: t.step(),
            images: eval.images,
            loss: eval.loss,
            accuracy: eval.accuracy,
            confusion: eval.confusion,
            samples,
        }))
    }

    pub async fn weight_histogram(&self) -> Result<WeightHistogram, String> {
        let t = self.trainer();
        let weights = t.sparse_weight_values().await.map_err(|e| e.to_string())?;
        let masks = t.masks();
        Ok(weight_histogram(
            t.step(),
            weights
                .iter()
                .map(|(path, w)| (w.as_slice(), masks.get(path).map(|m| m.active.as_slice()))),
        ))
    }

    /// The run's checkpoint in the CLI's format (`sparselab eval` reads it).
    pub async fn checkpoint_bytes(&self) -> Result<Vec<u8>, String> {
        Ok(self
            .trainer()
            .checkpoint()
            .await
            .map_err(|e| e.to_string())?
            .encode())
    }

    /// The model as `sparselab export` writes it: safetensors under PyTorch's names.
    pub async fn safetensors_bytes(&self) -> Result<Vec<u8>, String> {
        let ckpt = self
            .trainer()
            .checkpoint()
            .await
            .map_err(|e| e.to_string())?;
        sparselab::weights::export_safetensors(&ckpt, &Default::default())
            .map_err(|e| e.to_string())
    }
}

/// The sample strip: one validation image per class first (as far as there are), then
/// the next ones, so every class shows up when the set has few.
fn sample_indices(set: &ImageSet, val: &[usize]) -> Vec<usize> {
    let mut picks = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for &i in val {
        if picks.len() == SAMPLES {
            break;
        }
        if seen.insert(set.labels[i]) {
            picks.push(i);
        }
    }
    for &i in val {
        if picks.len() == SAMPLES {
            break;
        }
        if !picks.contains(&i) {
            picks.push(i);
        }
    }
    picks
}

/// CHW bytes (CIFAR's layout) to RGBA pixels for a canvas.
pub fn chw_to_rgba(chw: &[u8]) -> Vec<u8> {
    let plane = IMAGE_SIZE * IMAGE_SIZE;
    (0..plane)
        .flat_map(|p| [chw[p], chw[plane + p], chw[2 * plane + p], 255])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;
    use sparselab::data::load_split;

    fn session(hash: &str) -> Session {
        let config = Settings::from_hash(hash).unwrap().to_config().unwrap();
        let set = load_split(&config.data, false, config.seed).unwrap();
        Session::new(config, set, Device::flex().autodiff()).unwrap()
    }

    #[test]
    fn a_short_run_learns_and_reports_real_masks() {
        let mut s = session(
            "method=rigl&sparsity=0.9&synthetic_size=400&batch=16&epochs=2&update_every=5&lr=0.05",
        );
        let info = s.info();
        assert_eq!(info.start.total_steps, 2 * (360 / 16));
        assert_eq!(info.layers.len(), s.trainer().masks().layers.len());
        assert!(info.schedule.len() >= 2 && info.schedule[0].step == 0);
        let first = s.mask_report();
        assert!(!s.masks_changed());
        let nnz: usize = first.layers.iter().map(|l| l.nnz).sum();
        assert_eq!(nnz, s.trainer().nnz());
        assert!(
            first
                .layers
                .iter()
                .all(|l| l.change.iter().all(|&c| c == 0))
        );

        let mut losses = Vec::new();
        let mut saw_update = false;
        while !s.is_finished() {
            let step = pollster::block_on(s.step()).unwrap();
            let record = |f: fn(&Event) -> Option<f64>| step.events.iter().find_map(f);
            losses.push(
                record(|e| match e {
                    Event::Step(r) => Some(r.loss),
                    _ => None,
                })
                .unwrap(),
            );
            assert!(
                record(|e| match e {
                    Event::Step(r) => Some(r.images_per_sec),
                    _ => None,
                })
                .unwrap()
                    > 0.0
            );
            let grown = step.events.iter().find_map(|e| match e {
                Event::MaskUpdate(u) => Some(u.grown),
                _ => None,
            });
            assert_eq!(grown.is_some(), step.masks_updated);
            if let Some(grown) = grown {
                saw_update = true;
                assert!(s.masks_changed());
                let report = s.mask_report();
                let marked: usize = report.layers.iter().map(|l| l.grown).sum();
                assert!(
                    marked <= grown && (grown == 0 || marked > 0),
                    "{marked} of {grown}"
                );
                assert!(report.layers.iter().any(|l| l.change.contains(&1)));
                // RigL keeps the count: density from the real masks stays put.
                assert_eq!(report.layers.iter().map(|l| l.nnz).sum::<usize>(), nnz);
            }
        }
        assert!(saw_update);
        let early: f64 = losses[..5].iter().sum::<f64>() / 5.0;
        let late: f64 = losses[losses.len() - 5..].iter().sum::<f64>() / 5.0;
        assert!(late < early, "loss {early:.3} -> {late:.3}");

        let eval = pollster::block_on(s.evaluate()).unwrap().unwrap();
        assert_eq!(eval.images, 40);
        assert_eq!(eval.confusion.iter().flatten().sum::<usize>(), 40);
        assert_eq!(eval.samples.len(), SAMPLES);
        assert!(eval.samples.iter().all(|p| p.rgba.len() == 32 * 32 * 4));
        assert!(
            eval.samples
                .iter()
                .all(|p| p.probability > 0.0 && p.probability <= 1.0)
        );
        let hist = pollster::block_on(s.weight_histogram()).unwrap();
        assert_eq!(hist.counts.iter().sum::<usize>() + hist.zeros, nnz);
    }

    #[test]
    fn a_checkpoint_comes_back_with_its_masks_and_accuracy() {
        let mut s =
            session("method=set&sparsity=0.95&synthetic_size=200&batch=16&epochs=1&update_every=3");
        for _ in 0..4 {
            pollster::block_on(s.step()).unwrap();
        }
        let bytes = pollster::block_on(s.checkpoint_bytes()).unwrap();
        let ckpt = Checkpoint::decode(&bytes, "run.bin").unwrap();
        let set = s.trainer().data().set.clone();
        let mut back = Session::from_checkpoint(&ckpt, set, Device::flex().autodiff()).unwrap();
        assert_eq!(back.info().imported_at_step, Some(4));
        assert_eq!(back.trainer().masks(), s.trainer().masks());
        let a = pollster::block_on(s.evaluate()).unwrap().unwrap();
        let b = pollster::block_on(back.evaluate()).unwrap().unwrap();
        assert_eq!(a.accuracy, b.accuracy);
        assert_eq!(a.confusion, b.confusion);
    }

    #[test]
    fn a_shared_network_counts_its_density_as_the_plan_does() {
        let s = session("method=east&sparsity=0.9&synthetic_size=100&batch=16&epochs=1");
        let info = s.info();
        let planned = info.schedule[0].density;
        // Weight sharing: fewer learnable weights than weights at every use.
        assert!(info.start.numel < info.start.unshared_numel);
        let over_learnable = info.start.nnz as f64 / info.start.numel as f64;
        let counted = info.alive_fraction(info.start.nnz);
        assert!(
            (counted - planned).abs() < 1e-3,
            "counted {counted}, planned {planned}"
        );
        assert!(
            over_learnable > 1.2 * planned,
            "{over_learnable} against {planned}"
        );
    }

    #[test]
    fn rgba_interleaves_the_planes() {
        let mut chw = vec![0u8; 3 * 1024];
        chw[5] = 10;
        chw[1024 + 5] = 20;
        chw[2048 + 5] = 30;
        assert_eq!(&chw_to_rgba(&chw)[20..24], &[10, 20, 30, 255]);
    }
}
