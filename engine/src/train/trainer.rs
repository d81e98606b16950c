//! One training run's state and its step: forward, loss, backward, then either the masked
//! optimizer step or (on a method's update steps) a mask update, as in RigL. The state is
//! private: a step reports everything it did in its `StepOutcome`, and the masks change
//! only through `MaskState`.

mod batch_norm_recalibration;
mod inspect;
mod schedule;
mod snapshot;

pub use schedule::SchedulePoint;

use super::checkpoint::EpochSums;
use super::config::TrainConfig;
use super::data::TrainData;
use super::error::{TrainError, read_f32};
use super::eval::{Evaluation, Prediction, cross_entropy_sum, evaluate_model, predict};
use super::flops::FlopCounter;
use super::mask_state::MaskState;
use crate::data::ImageSet;
use crate::data::split::epoch_order;
use crate::kernels::choice::choose_layers;
use crate::methods::{self, MaskUpdate, SparsityMethod, Timeline, UpdateContext};
use crate::model::{ForwardCtx, LayerKernels, ResNet, grads_by_path, map_params};
use crate::optim::MaskedSgd;
use crate::rng::Rng;
use crate::sparsity::Budget;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use std::collections::BTreeMap;

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
    /// The masks after the step: non-zeros and density over the unique prunable weights.
    pub nnz: usize,
    pub density: f64,
    pub seconds: f64,
    pub batch: usize,
    pub mask_update: Option<MaskUpdateOutcome>,
    /// The step completed an epoch.
    pub epoch_done: bool,
}

#[derive(Clone, Debug)]
pub struct MaskUpdateOutcome {
    pub drop_fraction: f64,
    pub dropped: usize,
    pub grown: usize,
    pub churn: f64,
    /// Per layer, the indices dropped and grown.
    pub changes: MaskUpdate,
}

pub struct Trainer {
    config: TrainConfig,
    device: Device,
    model: ResNet,
    optim: MaskedSgd,
    method: Box<dyn SparsityMethod>,
    budget: Budget,
    masks: MaskState,
    flops: FlopCounter,
    /// Training FLOPs so far (see `FlopCounter`).
    train_flops: f64,
    data: TrainData,
    step: usize,
    epoch_sums: EpochSums,
    best_val_accuracy: Option<f64>,
    /// The current epoch's image order (computed once per epoch).
    order: Option<(usize, Vec<usize>)>,
    /// The step at which BatchNorm's statistics were last re-estimated.
    recalibrated_at: Option<usize>,
}

impl Trainer {
    /// A fresh run: model initialised from the seed, initial masks from the method.
    pub fn new(config: TrainConfig, data: TrainData, device: Device) -> Result<Self, TrainError> {
        Self::new_with(config, data, device, None)
    }

    /// A fresh run whose weights start from the safetensors file `run.init_from` names;
    /// `file` is its bytes (read by the caller: the engine does no file I/O).
    pub fn starting_from(
        config: TrainConfig,
        data: TrainData,
        device: Device,
        file: &[u8],
    ) -> Result<Self, TrainError> {
        Self::new_with(config, data, device, Some(file))
    }

    fn new_with(
        config: TrainConfig,
        data: TrainData,
        device: Device,
        init_file: Option<&[u8]>,
    ) -> Result<Self, TrainError> {
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
        let initial = match (&config.run.init_from, init_file) {
            (Some(path), Some(bytes)) => {
                let m = config.resolved_model();
                let name = format!(
                    "{} x{} with {} classes",
                    m.arch.name(),
                    m.width,
                    data.set.num_classes()
                );
                let origin = path.display().to_string();
                Some(
                    crate::weights::read_initial_weights(bytes, &origin, &model, &name)
                        .map_err(|e| TrainError::Config(e.to_string()))?,
                )
            }
            (Some(path), None) => {
                return Err(TrainError::Config(format!(
                    "run.init_from = {}: this front end does not read weight files; start \
                     from them with the command line's --init-from",
                    path.display()
                )));
            }
            (None, Some(_)) => {
                return Err(TrainError::Config(
                    "initial weights were given, but run.init_from does not name their file".into(),
                ));
            }
            (None, None) => None,
        };
        let model = match &initial {
            Some(w) => w.apply_to(model, &device),
            None => model,
        };
        let budget = Budget::new(
            crate::sparsity::sparse_layers(&model),
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
        let masks = match &initial {
            Some(w) => w.choose_masks(masks),
            None => masks,
        };
        let (sparse_kernel_layers, _) = choose_layers(
            &model,
            &masks,
            config.run.kernels,
            config.batch_size,
            &device,
        );
        let masks = MaskState::new(masks, sparse_kernel_layers, &device);
        let mut trainer = Self {
            flops: FlopCounter::new(&model, &budget),
            optim: MaskedSgd::new(config.optim.clone()),
            config,
            device,
            model,
            method,
            budget,
            masks,
            train_flops: 0.0,
            data,
            step: 0,
            epoch_sums: EpochSums::default(),
            best_val_accuracy: None,
            order: None,
            recalibrated_at: None,
        };
        // Pruned weights are zero from the start.
        trainer.zero_pruned();
        Ok(trainer)
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

        // A step that reads the dense gradient (RigL's grow) asks the sparse kernels for
        // the weight gradient at every position (forward and input gradient stay sparse).
        let is_update = self.method.is_update_step(step);
        // So does an update followed by an optimizer step (AC/DC's decompression, GMP):
        // weights it reactivates need their real gradient, which the sparse kernels leave 0.
        let dense_grads = is_update
            && (self.method.needs_gradients(step) || !self.method.replaces_optimizer_step());
        let dense_grad_plan = self.masks.plan().map(|p| p.with_dense_weight_grads());
        let kernels: Option<&dyn LayerKernels> = match (&dense_grad_plan, self.masks.plan()) {
            (Some(dense), _) if dense_grads => Some(dense),
            (_, plan) => plan.map(|p| p as &dyn LayerKernels),
        };
        let ctx = ForwardCtx::new(phase, kernels)
            .with_batch_norm(crate::kernels::batch_norm::for_device(&self.device));
        let logits = self.model.forward(x, &ctx);
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
        let lr = self.lr();
        let step_flops = self.flops.step(
            self.masks.layer_nnz(),
            b,
            is_update && self.method.needs_gradients(step),
        );

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
            Some(self.update_masks(&grads, step).await?)
        } else {
            None
        };
        if !is_update || !self.method.replaces_optimizer_step() {
            self.model = self.optim.step(
                self.model.clone(),
                &grads,
                lr,
                self.masks.tensors(),
                self.masks.active_positions(),
            );
        }

        self.epoch_sums.loss += loss_v * b as f64;
        self.epoch_sums.correct += correct_v;
        self.epoch_sums.seen += b as f64;
        self.step += 1;
        Ok(StepOutcome {
            step,
            epoch,
            loss: loss_v,
            accuracy: correct_v / b as f64,
            lr,
            phase,
            scheduled_density,
            nnz: self.nnz(),
            density: self.mask_density(),
            seconds: start.elapsed().as_secs_f64(),
            batch: b,
            mask_update,
            epoch_done: self.step.is_multiple_of(self.steps_per_epoch()),
        })
    }

    /// The method's mask update from the current weights (and dense gradients if it
    /// reads them); dropped weights are zeroed, grown ones (and their momentum) start at 0.
    async fn update_masks(
        &mut self,
        grads: &GradientsParams,
        step: usize,
    ) -> Result<MaskUpdateOutcome, TrainError> {
        let mut weights = Vec::with_capacity(self.budget.layers.len());
        for (_, w) in self.sparse_weights() {
            weights.push(read_f32(w).await?);
        }
        let mut dense_grads = Vec::new();
        if self.method.needs_gradients(step) {
            let by_path: BTreeMap<String, Tensor<1>> =
                grads_by_path(&self.model, grads).into_iter().collect();
            for layer in &self.budget.layers {
                let g = by_path
                    .get(&layer.path)
                    .cloned()
                    .ok_or_else(|| TrainError::Device(format!("no gradient for {}", layer.path)))?;
                dense_grads.push(read_f32(g).await?);
            }
        }
        let ctx = UpdateContext {
            step,
            seed: self.config.seed,
            budget: &self.budget,
            weights: &weights,
            grads: &dense_grads,
        };
        let method = &mut self.method;
        let (update, applied) = match self.masks.update(step, |masks| method.update(&ctx, masks)) {
            Ok(done) => done,
            Err(e) => {
                // What the method changed before failing stays (the mask state counts it):
                // the weights it dropped go to zero with their momentum, as the optimizer
                // step over the active positions expects.
                self.zero_pruned();
                return Err(e.into());
            }
        };
        self.model = map_params(self.model.clone(), |path, w| match applied.keep.get(path) {
            Some(k) => w * k.clone(),
            None => w,
        });
        for (path, k) in &applied.keep {
            self.optim.mask_momentum(path, k);
        }
        Ok(MaskUpdateOutcome {
            drop_fraction: update.drop_fraction,
            dropped: update.dropped.iter().map(Vec::len).sum(),
            grown: update.grown.iter().map(Vec::len).sum(),
            churn: applied.churn,
            changes: update,
        })
    }

    /// Pruned weights and their momentum set to zero by the current masks.
    fn zero_pruned(&mut self) {
        let masks = self.masks.tensors();
        self.model = map_params(self.model.clone(), |path, w| match masks.get(path) {
            Some(mask) => w * mask.clone(),
            None => w,
        });
        for (path, mask) in masks {
            self.optim.mask_momentum(path, mask);
        }
    }

    /// The forward context at the current step: its DyReLU phase, the sparse kernels and
    /// the device's BatchNorm.
    fn forward_ctx(&self) -> ForwardCtx<'_> {
        ForwardCtx::new(
            self.phase(),
            self.masks.plan().map(|p| p as &dyn LayerKernels),
        )
        .with_batch_norm(crate::kernels::batch_norm::for_device(&self.device))
    }

    /// Evaluates in inference mode (BatchNorm running statistics, no autodiff).
    pub async fn evaluate(
        &self,
        set: &ImageSet,
        indices: &[usize],
    ) -> Result<Evaluation, TrainError> {
        let batch = self.config.eval_batch_size;
        let data = &self.data;
        let ctx = self.forward_ctx();
        evaluate_model(
            &self.model,
            &ctx,
            &data.batcher,
            set,
            indices,
            batch,
            &self.device,
        )
        .await
    }

    /// The validation split's evaluation; None without a validation split.
    pub async fn evaluate_validation(&self) -> Result<Option<Evaluation>, TrainError> {
        if self.data.split.val.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            self.evaluate(&self.data.set, &self.data.split.val).await?,
        ))
    }

    /// Predictions for a few images (the page's strip of samples), in inference mode.
    pub async fn predict(
        &self,
        set: &ImageSet,
        indices: &[usize],
    ) -> Result<Vec<Prediction>, TrainError> {
        let ctx = self.forward_ctx();
        predict(
            &self.model,
            &ctx,
            &self.data.batcher,
            set,
            indices,
            &self.device,
        )
        .await
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

    /// The epoch's running training sums, handed over and restarted (at an epoch end).
    pub fn take_epoch_sums(&mut self) -> EpochSums {
        std::mem::take(&mut self.epoch_sums)
    }

    /// Notes a validation accuracy for the best-so-far.
    pub fn record_validation(&mut self, accuracy: f64) {
        self.best_val_accuracy = Some(self.best_val_accuracy.map_or(accuracy, |b| b.max(accuracy)));
    }

    /// Applies the settings a resume may change (`resume::OVERRIDABLE`): the optimizer's,
    /// evaluation and logging. Everything else must equal the run's own.
    pub fn apply_overrides(&mut self, config: TrainConfig) {
        self.optim.config = config.optim.clone();
        self.config = config;
    }
}
