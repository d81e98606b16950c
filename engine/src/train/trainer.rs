//! One training run's state and its step: forward, loss, backward, then either the masked
//! optimizer step or (on a method's update steps) a mask update, as in RigL.

use super::checkpoint::{Checkpoint, CheckpointMeta, EpochSums, NamedTensor, Payload};
use super::config::TrainConfig;
use super::eval::Evaluation;
use super::metrics::LayerDensity;
use crate::data::split::epoch_order;
use crate::data::{Batcher, ImageSet, Normalization, TrainValSplit};
use crate::kernels::plan::SparsePlan;
use crate::methods::{self, MaskUpdate, SparsityMethod, Timeline, UpdateContext};
use crate::model::{ResNet, for_each_param, grads_by_path, map_params};
use crate::optim::{MaskedSgd, mask_tensors};
use crate::rng::Rng;
use crate::sparsity::{Budget, Masks, SparseLayer, sparse_layers};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Sparsity(#[from] crate::sparsity::SparsityError),
    #[error("device error: {0}")]
    Device(String),
    #[error("{0}")]
    Checkpoint(String),
    #[error("{0}")]
    Diverged(String),
    #[error(transparent)]
    CheckpointFile(#[from] super::checkpoint::CheckpointError),
}

/// The images a run trains and validates on, split and normalised.
pub struct TrainData {
    /// Shared, so a caller that keeps the images (the page's worker) holds no second copy.
    pub set: Arc<ImageSet>,
    pub split: TrainValSplit,
    pub batcher: Batcher,
    /// `ImageSet::fingerprint` of `set`, computed once: every checkpoint records it.
    pub fingerprint: String,
}

impl TrainData {
    /// Splits `set` (seeded, stratified) and measures normalisation on the training part.
    pub fn new(set: impl Into<Arc<ImageSet>>, val_fraction: f64, seed: u64) -> Self {
        let set = set.into();
        let split = TrainValSplit::new(&set, val_fraction, seed);
        let batcher = Batcher::new(Normalization::measure(&set, &split.train));
        Self {
            fingerprint: set.fingerprint(),
            set,
            split,
            batcher,
        }
    }

    fn with_normalization(
        set: Arc<ImageSet>,
        val_fraction: f64,
        seed: u64,
        norm: Normalization,
    ) -> Self {
        let split = TrainValSplit::new(&set, val_fraction, seed);
        Self {
            fingerprint: set.fingerprint(),
            set,
            split,
            batcher: Batcher::new(norm),
        }
    }
}

/// One point of `Trainer::schedule_preview`.
#[derive(Clone, Debug, PartialEq)]
pub struct SchedulePoint {
    pub step: usize,
    pub density: f64,
    pub phase: Option<f64>,
    pub lr: f64,
}

/// One image's prediction: the class and its softmax probability.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prediction {
    pub class: usize,
    pub probability: f64,
}

/// What one step did, with the values read back from the device.
#[derive(Clone, Debug)]
pub struct StepOutcome {
    pub step: usize,
    pub epoch: usize,
    pub loss: f64,
    pub accuracy: f64,
    pub lr: f64,
    /// DyReLU's phase p during the step (None: the model has plain ReLUs).
    pub phase: Option<f64>,
    /// The method's scheduled overall density at this step.
    pub scheduled_density: f64,
    pub seconds: f64,
    pub batch: usize,
    pub mask_update: Option<MaskUpdateOutcome>,
    pub epoch_done: bool,
}

#[derive(Clone, Debug)]
pub struct MaskUpdateOutcome {
    pub drop_fraction: f64,
    pub dropped: usize,
    pub grown: usize,
    pub churn: f64,
}

pub struct Trainer {
    pub config: TrainConfig,
    pub device: Device,
    pub model: ResNet,
    pub optim: MaskedSgd,
    method: Box<dyn SparsityMethod>,
    pub layers: Vec<SparseLayer>,
    pub budget: Budget,
    pub masks: Masks,
    /// Weights that have been active at any point (in-time over-parameterisation).
    pub ever_active: Masks,
    /// Training FLOPs so far (see `forward_flops`).
    pub train_flops: f64,
    /// Per layer, how many times each weight is used per image (positions x uses).
    layer_uses: Vec<f64>,
    /// Per-layer non-zeros of `masks`, counted when the masks change (not every step).
    layer_nnz: Vec<usize>,
    mask_tensors: BTreeMap<String, Tensor<1>>,
    pub data: TrainData,
    pub step: usize,
    pub epoch_sums: EpochSums,
    pub best_val_accuracy: Option<f64>,
    /// The last mask update's dropped/grown indices (for inspection and tests).
    pub last_update: Option<MaskUpdate>,
    /// The layers that run the sparse kernels (`run.kernels`), chosen at creation.
    pub sparse_kernel_layers: Vec<String>,
    order: Option<(usize, Vec<usize>)>,
}

pub(crate) fn cross_entropy_sum(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let [b, _] = logits.dims();
    log_softmax(logits, 1)
        .gather(1, labels.reshape([b, 1]))
        .sum()
        .neg()
}

async fn read_f32(t: Tensor<1>) -> Result<Vec<f32>, TrainError> {
    let data = t
        .into_data_async()
        .await
        .map_err(|e| TrainError::Device(format!("{e:?}")))?;
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| TrainError::Device(format!("{e:?}")))
}

impl Trainer {
    /// A fresh run: model initialised from the seed, initial masks from the method.
    pub fn new(config: TrainConfig, data: TrainData, device: Device) -> Result<Self, TrainError> {
        // The data are loaded already: where they came from is not checked again.
        config.validate_settings().map_err(TrainError::Config)?;
        if data.split.train.len() < config.batch_size {
            return Err(TrainError::Config(format!(
                "batch_size = {} is larger than the {} training images; lower batch_size",
                config.batch_size,
                data.split.train.len()
            )));
        }
        // Burn's parameter initialisers draw from one process-wide generator: seeding and
        // initialising must not interleave with another thread's, or runs that share a
        // process (tests, sweeps in-process) would not be reproducible.
        static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let model = {
            let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
            device.seed(config.seed);
            let model = config
                .resolved_model()
                .init(data.set.num_classes(), &device);
            // Parameters initialise lazily, on first read: read them all now, in order.
            crate::model::param_infos(&model);
            model
        };
        let layers = sparse_layers(&model);
        let budget = Budget::new(
            layers.clone(),
            config.sparsity.clone(),
            model.reuse_counts(),
        );
        let steps_per_epoch = data.split.train.len() / config.batch_size;
        let timeline = Timeline {
            steps_per_epoch,
            total_steps: steps_per_epoch * config.total_epochs(),
        };
        let method = methods::build(&config.method, timeline)?;
        let masks = method.initial_masks(&budget, &mut Rng::stream(config.seed, 0x3A5C))?;
        let layer_uses = (0..layers.len())
            .map(|i| (model.output_positions(&layers[i].path) * budget.uses(i)) as f64)
            .collect();
        let optim = MaskedSgd::new(config.optim.clone());
        let (sparse_kernel_layers, _) = crate::kernels::plan::choose_layers(
            &model,
            &masks,
            config.run.kernels,
            config.batch_size,
            &device,
        );
        let mut trainer = Self {
            sparse_kernel_layers,
            mask_tensors: mask_tensors(&masks, &device),
            config,
            device,
            model,
            optim,
            method,
            layers,
            budget,
            ever_active: masks.clone(),
            masks,
            train_flops: 0.0,
            layer_uses,
            layer_nnz: Vec::new(),
            data,
            step: 0,
            epoch_sums: EpochSums::default(),
            best_val_accuracy: None,
            last_update: None,
            order: None,
        };
        trainer.sync_phase();
        trainer.count_masks();
        // Pruned weights are zero from the start.
        let masks = trainer.mask_tensors.clone();
        trainer.model = map_params(trainer.model.clone(), |path, w| match masks.get(path) {
            Some(m) => w * m.clone(),
            None => w,
        });
        Ok(trainer)
    }

    /// Continues a run from a checkpoint, with its data (same images, same split).
    pub fn from_checkpoint(
        ckpt: &Checkpoint,
        set: impl Into<Arc<ImageSet>>,
        device: Device,
    ) -> Result<Self, TrainError> {
        let set = set.into();
        let meta = &ckpt.meta;
        if set.num_classes() != meta.num_classes {
            return Err(TrainError::Checkpoint(format!(
                "the checkpoint's model has {} classes but the dataset has {}",
                meta.num_classes,
                set.num_classes()
            )));
        }
        if set.class_names != meta.class_names {
            return Err(TrainError::Checkpoint(format!(
                "the dataset's classes ({}) are not the checkpoint's ({}): resume with the \
                 data the run was trained on",
                set.class_names.join(", "),
                meta.class_names.join(", ")
            )));
        }
        let data = TrainData::with_normalization(
            set,
            meta.config.data.val_fraction,
            meta.config.seed,
            meta.normalization,
        );
        // The checkpoint names the layers that ran sparse: no need to time them again.
        let mut config = meta.config.clone();
        if meta.sparse_kernel_layers.is_some() {
            config.run.kernels = crate::kernels::plan::KernelMode::Dense;
        }
        let mut trainer = Self::new(config, data, device)?;
        trainer.config.run.kernels = meta.config.run.kernels;
        trainer.load_state(ckpt)?;
        Ok(trainer)
    }

    /// Replaces parameters, momentum, masks and counters with the checkpoint's.
    pub fn load_state(&mut self, ckpt: &Checkpoint) -> Result<(), TrainError> {
        let device = self.device.clone();
        self.model = ckpt.load_params(self.model.clone(), &device)?;
        self.masks = ckpt.masks(&self.layers)?;
        self.ever_active = ckpt
            .ever_active(&self.layers)?
            .unwrap_or_else(|| self.masks.clone());
        self.train_flops = ckpt.meta.train_flops;
        if let Some(layers) = &ckpt.meta.sparse_kernel_layers {
            self.sparse_kernel_layers = layers.clone();
        }
        self.mask_tensors = mask_tensors(&self.masks, &device);
        self.count_masks();
        self.optim.momentum.clear();
        let sizes: BTreeMap<String, usize> = crate::model::param_infos(&self.model)
            .into_iter()
            .map(|p| (p.path, p.dims.iter().product()))
            .collect();
        for t in &ckpt.tensors {
            if let (Some(path), Some(Payload::F32(v))) =
                (t.name.strip_prefix("momentum:"), &t.payload)
            {
                if sizes.get(path) != Some(&v.len()) {
                    return Err(TrainError::Checkpoint(format!(
                        "momentum {path} ({} values) matches no parameter of the model: \
                         the checkpoint is damaged or from another model",
                        v.len()
                    )));
                }
                self.optim.momentum.insert(
                    path.to_string(),
                    Tensor::from_data(TensorData::new(v.clone(), [v.len()]), &device),
                );
            }
        }
        self.step = ckpt.meta.step;
        self.epoch_sums = ckpt.meta.epoch_sums.clone();
        self.best_val_accuracy = ckpt.meta.best_val_accuracy;
        // A finished run resumed only to be evaluated must see its final phase.
        self.sync_phase();
        Ok(())
    }

    pub fn steps_per_epoch(&self) -> usize {
        self.data.split.train.len() / self.config.batch_size
    }

    pub fn total_steps(&self) -> usize {
        self.steps_per_epoch() * self.config.total_epochs()
    }

    pub fn epoch(&self) -> usize {
        self.step / self.steps_per_epoch()
    }

    pub fn is_finished(&self) -> bool {
        self.step >= self.total_steps()
    }

    /// The LR at the current step: the schedule over the whole run, or over the
    /// method's current cycle for methods that restart it (LRR, SCULPT-ing).
    pub fn lr(&self) -> f64 {
        self.lr_at(self.step)
    }

    fn lr_at(&self, step: usize) -> f64 {
        let spe = self.steps_per_epoch() as f64;
        let (start, len) = match self.method.cycle(step) {
            Some(c) => (c.start, c.len),
            None => (0, self.total_steps()),
        };
        self.config.schedule.lr_at(
            self.config.optim.lr,
            (step - start) as f64 / spe,
            len as f64 / spe,
        )
    }

    /// DyReLU's phase p at the current step; None without DyReLU.
    pub fn phase(&self) -> Option<f64> {
        self.phase_at(self.step)
    }

    fn phase_at(&self, step: usize) -> Option<f64> {
        if !self.model.has_dyrelu() {
            return None;
        }
        let (start, end) = self.config.dyrelu_phase_window();
        let epoch = step as f64 / self.steps_per_epoch() as f64;
        Some(crate::model::dyrelu::phase_at(epoch, start, end))
    }

    pub fn scheduled_density(&self) -> f64 {
        self.method.scheduled_density(self.step, &self.budget)
    }

    /// The whole run's schedules ahead of time, at `points` evenly spaced steps (and the
    /// last): the method's density, DyReLU's phase and the LR, for plotting the plan
    /// beside what happened. Computed from the same functions the steps use.
    pub fn schedule_preview(&self, points: usize) -> Vec<SchedulePoint> {
        let total = self.total_steps();
        let points = points.clamp(2, total.max(2));
        let mut steps: Vec<usize> = (0..points)
            .map(|i| i * total.saturating_sub(1) / (points - 1))
            .collect();
        // Every mask update step too, so cyclic density's jumps are drawn where they happen.
        steps.extend((0..total).filter(|&s| self.method.is_update_step(s)));
        steps.sort_unstable();
        steps.dedup();
        steps
            .into_iter()
            .map(|step| SchedulePoint {
                step,
                density: self.method.scheduled_density(step, &self.budget),
                phase: self.phase_at(step),
                lr: self.lr_at(step),
            })
            .collect()
    }

    /// Called whenever the masks change: recounts them and rebuilds the sparse kernels'
    /// index from them.
    fn count_masks(&mut self) {
        self.layer_nnz = self.masks.layers.iter().map(|l| l.nnz()).collect();
        self.model.sparse = (!self.sparse_kernel_layers.is_empty()).then(|| {
            Arc::new(SparsePlan::new(
                &self.masks,
                self.sparse_kernel_layers.iter().map(String::as_str),
                &self.device,
            ))
        });
    }

    /// Non-zeros of the masks (the learnable count).
    pub fn nnz(&self) -> usize {
        self.layer_nnz.iter().sum()
    }

    /// The masks' density over the unique prunable weights.
    pub fn mask_density(&self) -> f64 {
        self.nnz() as f64 / self.budget.unique_total().max(1) as f64
    }

    /// Non-zeros over the prunable weights counted unshared: the density the configured
    /// sparsity refers to (the masks' own density is over the unique weights).
    pub fn budget_density(&self) -> f64 {
        self.nnz() as f64 / self.budget.unshared_total().max(1) as f64
    }

    /// Fraction of prunable weights that have ever been active.
    pub fn itop_rate(&self) -> f64 {
        self.ever_active.density()
    }

    /// Non-zeros counted at every use of a shared weight.
    pub fn effective_nnz(&self) -> usize {
        self.budget.effective_nnz(&self.layer_nnz)
    }

    /// Forward FLOPs per image with the current masks: 2 per multiply-add of an active
    /// weight, at every output position and every use. BatchNorm, DyReLU and the
    /// pooling are not counted (they are tiny beside the convolutions).
    pub fn forward_flops(&self) -> f64 {
        self.flops_of(&self.layer_nnz)
    }

    fn dense_forward_flops(&self) -> f64 {
        let numel: Vec<usize> = self.layers.iter().map(SparseLayer::numel).collect();
        self.flops_of(&numel)
    }

    fn flops_of(&self, weights_per_layer: &[usize]) -> f64 {
        weights_per_layer
            .iter()
            .zip(&self.layer_uses)
            .map(|(&n, uses)| 2.0 * n as f64 * uses)
            .sum()
    }

    pub fn method_name(&self) -> &'static str {
        self.method.name()
    }

    pub fn layer_densities(&self) -> Vec<LayerDensity> {
        self.masks
            .per_layer()
            .into_iter()
            .map(|(path, nnz, numel)| LayerDensity { path, nnz, numel })
            .collect()
    }

    /// Parameters outside the masks (BatchNorm scales and shifts): dense by design.
    pub fn dense_param_count(&self) -> usize {
        let masked: BTreeSet<&str> = self.layers.iter().map(|l| l.path.as_str()).collect();
        let mut n = 0;
        for info in crate::model::param_infos(&self.model) {
            let running = info.path.ends_with("running_mean") || info.path.ends_with("running_var");
            if !masked.contains(info.path.as_str()) && !running {
                n += info.numel();
            }
        }
        n
    }

    /// DyReLU's coefficient-network parameters (dense, part of `dense_param_count`).
    pub fn dyrelu_param_count(&self) -> usize {
        crate::model::param_infos(&self.model)
            .iter()
            .filter(|p| crate::model::dyrelu::is_dyrelu_path(&p.path))
            .map(|p| p.numel())
            .sum()
    }

    /// Non-zero weights actually present in the masked layers (counted on the weights,
    /// not the masks: a test that pruned weights are really zero).
    pub async fn count_nonzero_weights(&self) -> Result<usize, TrainError> {
        let mut n = 0;
        for (_, w) in self.sparse_weights() {
            n += read_f32(w).await?.iter().filter(|x| **x != 0.0).count();
        }
        Ok(n)
    }

    /// Host copies of the masked layers' weights, by path, in layer order.
    pub async fn sparse_weight_values(&self) -> Result<Vec<(String, Vec<f32>)>, TrainError> {
        let mut out = Vec::new();
        for (path, w) in self.sparse_weights() {
            out.push((path, read_f32(w).await?));
        }
        Ok(out)
    }

    /// Host copy of a parameter's momentum buffer, if it has one yet.
    pub async fn momentum_values(&self, path: &str) -> Result<Option<Vec<f32>>, TrainError> {
        match self.optim.momentum.get(path) {
            Some(m) => Ok(Some(read_f32(m.clone()).await?)),
            None => Ok(None),
        }
    }

    fn sparse_weights(&self) -> Vec<(String, Tensor<1>)> {
        let wanted: BTreeSet<&str> = self.layers.iter().map(|l| l.path.as_str()).collect();
        let mut out = Vec::new();
        for_each_param(&self.model, |path, _, t| {
            if wanted.contains(path) {
                out.push((path.to_string(), t));
            }
        });
        out
    }

    fn batch_indices(&mut self) -> Vec<usize> {
        let spe = self.steps_per_epoch();
        let (epoch, pos) = (self.step / spe, self.step % spe);
        if self.order.as_ref().map(|(e, _)| *e) != Some(epoch) {
            self.order = Some((
                epoch,
                epoch_order(&self.data.split.train, self.config.seed, epoch),
            ));
        }
        let order = &self.order.as_ref().expect("order cached").1;
        let b = self.config.batch_size;
        order[pos * b..(pos + 1) * b].to_vec()
    }

    /// One training step. Reads back the loss and accuracy (one sync per step).
    pub async fn train_step(&mut self) -> Result<StepOutcome, TrainError> {
        let start = web_time::Instant::now();
        let (step, epoch) = (self.step, self.epoch());
        if self.method.restarts_optimizer()
            && step > 0
            && self.method.cycle(step).is_some_and(|c| c.start == step)
        {
            self.optim.momentum.clear();
        }
        let phase = self.phase();
        let scheduled_density = self.scheduled_density();
        let indices = self.batch_indices();
        let mut rng = Rng::stream(self.config.seed, 0xA_0000_0000 + step as u64);
        let augment = self.config.data.augment.then_some(&mut rng);
        let batch = self.data.batcher.batch(&self.data.set, &indices, augment);
        let b = batch.size;
        let x = Tensor::<4>::from_data(TensorData::new(batch.images, [b, 3, 32, 32]), &self.device);
        let y = Tensor::<1, Int>::from_data(TensorData::new(batch.labels, [b]), &self.device);

        // A step that reads the dense gradient (RigL's grow) runs the dense convolutions:
        // the sparse kernels compute weight gradients at active positions only.
        let is_update = self.method.is_update_step(step);
        // So does an update followed by an optimizer step (AC/DC's decompression, GMP):
        // weights it reactivates need their real gradient, which the sparse kernels leave 0.
        let dense_step = is_update
            && (self.method.needs_gradients(step) || !self.method.replaces_optimizer_step());
        let plan = if dense_step {
            self.model.sparse.take()
        } else {
            None
        };
        let logits = self.model.forward(x);
        let correct = logits
            .clone()
            .inner()
            .argmax(1)
            .reshape([b])
            .equal(y.clone().inner())
            .int()
            .sum()
            .float();
        let loss = cross_entropy_sum(logits, y) / b as f32;
        let loss_value = loss.clone().inner();
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        if plan.is_some() {
            self.model.sparse = plan;
        }
        let lr = self.lr();

        // FLOPs of a sparse implementation, as the papers count them: forward plus a
        // backward of twice its cost with the step's masks; a step that reads dense
        // gradients (RigL's grow) computes the dense weight gradient instead.
        let sparse = self.forward_flops();
        let step_flops = b as f64
            * if is_update && self.method.needs_gradients(step) {
                2.0 * sparse + self.dense_forward_flops()
            } else {
                3.0 * sparse
            };

        // One read-back (one device sync) per step for both numbers, before anything
        // changes: a non-finite loss leaves the weights and masks as they were.
        let values = read_f32(Tensor::cat(
            vec![loss_value.reshape([1]), correct.reshape([1])],
            0,
        ))
        .await?;
        let (loss_v, correct_v) = (values[0] as f64, values[1] as f64);
        if !loss_v.is_finite() {
            return Err(self.diverged(&format!("the loss became {loss_v}")));
        }
        self.train_flops += step_flops;

        let mask_update = if is_update {
            let outcome = self.update_masks(&grads, step).await?;
            if !self.method.replaces_optimizer_step() {
                self.model = self
                    .optim
                    .step(self.model.clone(), &grads, lr, &self.mask_tensors);
            }
            Some(outcome)
        } else {
            self.model = self
                .optim
                .step(self.model.clone(), &grads, lr, &self.mask_tensors);
            None
        };

        self.epoch_sums.loss += loss_v * b as f64;
        self.epoch_sums.correct += correct_v;
        self.epoch_sums.seen += b as f64;
        self.step += 1;
        // Evaluation and checkpoints between steps see the next step's phase.
        self.sync_phase();
        Ok(StepOutcome {
            step,
            epoch,
            loss: loss_v,
            accuracy: correct_v / b as f64,
            lr,
            phase,
            scheduled_density,
            seconds: start.elapsed().as_secs_f64(),
            batch: b,
            mask_update,
            epoch_done: self.step.is_multiple_of(self.steps_per_epoch()),
        })
    }

    /// Sets the model's DyReLU phase for the current step.
    pub fn sync_phase(&mut self) {
        if let Some(p) = self.phase() {
            self.model.phase = p as f32;
        }
    }

    async fn update_masks(
        &mut self,
        grads: &GradientsParams,
        step: usize,
    ) -> Result<MaskUpdateOutcome, TrainError> {
        let mut weights = Vec::with_capacity(self.layers.len());
        for (_, w) in self.sparse_weights() {
            weights.push(read_f32(w).await?);
        }
        let mut dense_grads = Vec::new();
        if self.method.needs_gradients(step) {
            let by_path: BTreeMap<String, Tensor<1>> =
                grads_by_path(&self.model, grads).into_iter().collect();
            for layer in &self.layers {
                let g = by_path
                    .get(&layer.path)
                    .cloned()
                    .ok_or_else(|| TrainError::Device(format!("no gradient for {}", layer.path)))?;
                dense_grads.push(read_f32(g).await?);
            }
        }
        let before = self.masks.clone();
        let ctx = UpdateContext {
            step,
            seed: self.config.seed,
            budget: &self.budget,
            weights: &weights,
            grads: &dense_grads,
        };
        let update = self.method.update(&ctx, &mut self.masks)?;
        self.apply_mask_update(&update);
        if step == 0 {
            // Pruning at initialisation (SCULPT-ing's |w| or SNIP) happens before any
            // weight trained: only what survives it counts as ever active.
            self.ever_active = self.masks.clone();
        }
        for (ever, now) in self.ever_active.layers.iter_mut().zip(&self.masks.layers) {
            for (e, &a) in ever.active.iter_mut().zip(&now.active) {
                *e |= a;
            }
        }
        let outcome = MaskUpdateOutcome {
            drop_fraction: update.drop_fraction,
            dropped: update.dropped.iter().map(Vec::len).sum(),
            grown: update.grown.iter().map(Vec::len).sum(),
            churn: self.masks.churn_since(&before),
        };
        self.last_update = Some(update);
        Ok(outcome)
    }

    /// Zeroes dropped weights, starts grown weights (and their momentum) at zero.
    fn apply_mask_update(&mut self, update: &MaskUpdate) {
        let mut keep = BTreeMap::new();
        for (l, layer) in self.masks.layers.iter().enumerate() {
            let mut bits: Vec<f32> = layer
                .active
                .iter()
                .map(|&a| if a { 1.0 } else { 0.0 })
                .collect();
            if let Some(grown) = update.grown.get(l) {
                for &i in grown {
                    bits[i] = 0.0;
                }
            }
            keep.insert(
                layer.path.clone(),
                Tensor::from_data(TensorData::new(bits, [layer.numel()]), &self.device),
            );
        }
        self.model = map_params(self.model.clone(), |path, w| match keep.get(path) {
            Some(k) => w * k.clone(),
            None => w,
        });
        for (path, k) in &keep {
            self.optim.mask_momentum(path, k);
        }
        self.mask_tensors = mask_tensors(&self.masks, &self.device);
        self.count_masks();
    }

    /// Evaluates in inference mode (BatchNorm running statistics, no autodiff).
    pub async fn evaluate(
        &self,
        set: &ImageSet,
        indices: &[usize],
    ) -> Result<Evaluation, TrainError> {
        evaluate_model(
            &self.model,
            &self.data.batcher,
            set,
            indices,
            self.config.eval_batch_size,
            &self.device,
        )
        .await
    }

    /// Predictions for a few images (the page's strip of samples), in inference mode.
    pub async fn predict(
        &self,
        set: &ImageSet,
        indices: &[usize],
    ) -> Result<Vec<Prediction>, TrainError> {
        if indices.is_empty() {
            return Ok(Vec::new());
        }
        let model = self.model.valid();
        let device = self.device.clone().without_autodiff();
        let batch = self.data.batcher.batch(set, indices, None);
        let b = batch.size;
        let x = Tensor::<4>::from_data(TensorData::new(batch.images, [b, 3, 32, 32]), &device);
        let probs = burn::tensor::activation::softmax(model.forward(x), 1);
        let classes = set.num_classes();
        let values = read_f32(probs.reshape([b * classes])).await?;
        Ok(values
            .chunks(classes)
            .map(|row| {
                let (class, p) = row.iter().enumerate().fold((0, f32::MIN), |best, (i, &p)| {
                    if p > best.1 { (i, p) } else { best }
                });
                Prediction {
                    class,
                    probability: p as f64,
                }
            })
            .collect())
    }

    pub async fn evaluate_validation(&self) -> Result<Option<Evaluation>, TrainError> {
        if self.data.split.val.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            self.evaluate(&self.data.set, &self.data.split.val).await?,
        ))
    }

    /// The error of a run that diverged at the current step: nothing of it is saved, so
    /// the last checkpoint stays good, and the message says how to go on from there.
    fn diverged(&self, what: &str) -> TrainError {
        TrainError::Diverged(format!(
            "{what} at step {}: the run diverged (the last checkpoint, if any, is kept). \
             Continue from it with a lower learning rate (on the command line: --resume \
             --override optim.lr={}) or with optim.clip_norm set",
            self.step,
            self.config.optim.lr / 10.0
        ))
    }

    /// A full snapshot of the run.
    pub async fn checkpoint(&self) -> Result<Checkpoint, TrainError> {
        let mut tensors = Vec::new();
        let mut params = Vec::new();
        // BatchNorm keeps its newest running statistics aside until a sync; `train()`
        // syncs them, so the checkpoint holds the current ones, not the step before's.
        let synced = self.model.clone().train();
        for_each_param(&synced, |path, dims, t| {
            params.push((path.to_string(), dims.to_vec(), t))
        });
        for (path, dims, t) in params {
            let values = read_f32(t).await?;
            // A diverged run must not overwrite its last good checkpoint.
            if values.iter().any(|v| !v.is_finite()) {
                return Err(self.diverged(&format!("the weights of {path} are not finite")));
            }
            tensors.push(NamedTensor {
                name: format!("param:{path}"),
                dims: vec![dims.iter().product()],
                payload: Some(Payload::F32(values)),
            });
        }
        for (path, m) in &self.optim.momentum {
            tensors.push(NamedTensor {
                name: format!("momentum:{path}"),
                dims: m.dims().to_vec(),
                payload: Some(Payload::F32(read_f32(m.clone()).await?)),
            });
        }
        for layer in &self.masks.layers {
            tensors.push(NamedTensor {
                name: format!("mask:{}", layer.path),
                dims: layer.dims.clone(),
                payload: Some(Payload::Bits(layer.active.clone())),
            });
        }
        for layer in &self.ever_active.layers {
            tensors.push(NamedTensor {
                name: format!("ever:{}", layer.path),
                dims: layer.dims.clone(),
                payload: Some(Payload::Bits(layer.active.clone())),
            });
        }
        Ok(Checkpoint {
            meta: CheckpointMeta {
                step: self.step,
                config: self.config.clone(),
                num_classes: self.data.set.num_classes(),
                class_names: self.data.set.class_names.clone(),
                normalization: self.data.batcher.normalization,
                epoch_sums: self.epoch_sums.clone(),
                best_val_accuracy: self.best_val_accuracy,
                train_flops: self.train_flops,
                dyrelu_phase: self.phase(),
                sparse_kernel_layers: Some(self.sparse_kernel_layers.clone()),
                dataset_fingerprint: Some(self.data.fingerprint.clone()),
            },
            tensors,
        })
    }
}

/// Evaluates any model in inference mode on `indices` of `set`.
pub async fn evaluate_model(
    model: &ResNet,
    batcher: &Batcher,
    set: &ImageSet,
    indices: &[usize],
    batch_size: usize,
    device: &Device,
) -> Result<Evaluation, TrainError> {
    let model = model.valid();
    let device = device.clone().without_autodiff();
    let mut predictions = Vec::with_capacity(indices.len());
    let mut labels = Vec::with_capacity(indices.len());
    let mut loss_sum = 0.0;
    for chunk in indices.chunks(batch_size) {
        let batch = batcher.batch(set, chunk, None);
        let b = batch.size;
        labels.extend(batch.labels.iter().map(|&l| l as u16));
        let x = Tensor::<4>::from_data(TensorData::new(batch.images, [b, 3, 32, 32]), &device);
        let y = Tensor::<1, Int>::from_data(TensorData::new(batch.labels, [b]), &device);
        let logits = model.forward(x);
        let pred = logits.clone().argmax(1).reshape([b]).float();
        // Predictions and the batch's loss sum in one read-back.
        let values = read_f32(Tensor::cat(
            vec![pred, cross_entropy_sum(logits, y).reshape([1])],
            0,
        ))
        .await?;
        loss_sum += values[b] as f64;
        predictions.extend(values[..b].iter().map(|&p| p as u16));
    }
    Ok(Evaluation::from_predictions(
        &labels,
        &predictions,
        loss_sum,
        set.num_classes(),
    ))
}
