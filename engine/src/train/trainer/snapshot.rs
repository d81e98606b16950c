//! A run to and from a checkpoint: every parameter, momentum buffer, mask and counter,
//! so a resumed run continues exactly where it stopped.

use super::Trainer;
use crate::data::ImageSet;
use crate::model::for_each_param;
use crate::train::checkpoint::{Checkpoint, CheckpointMeta, NamedTensor, Payload};
use crate::train::data::TrainData;
use crate::train::error::{TrainError, read_f32};
use crate::train::mask_state::MaskState;
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use std::collections::BTreeMap;
use std::sync::Arc;

impl Trainer {
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
            config.run.kernels = crate::kernels::choice::KernelMode::Dense;
        }
        // The checkpoint holds the weights: the initial ones are not read again.
        config.run.init_from = None;
        let mut trainer = Self::new(config, data, device)?;
        trainer.config.run.kernels = meta.config.run.kernels;
        trainer.config.run.init_from = meta.config.run.init_from.clone();
        trainer.load_state(ckpt)?;
        Ok(trainer)
    }

    /// Replaces parameters, momentum, masks and counters with the checkpoint's.
    pub fn load_state(&mut self, ckpt: &Checkpoint) -> Result<(), TrainError> {
        let device = self.device.clone();
        self.model = ckpt.load_params(self.model.clone(), &device)?;
        let masks = ckpt.masks(self.layers())?;
        let ever_active = ckpt
            .ever_active(self.layers())?
            .unwrap_or_else(|| masks.clone());
        let sparse_kernel_layers = match &ckpt.meta.sparse_kernel_layers {
            Some(layers) => layers.clone(),
            None => self.sparse_kernel_layers().to_vec(),
        };
        self.masks = MaskState::restore(masks, ever_active, sparse_kernel_layers, &device);
        self.train_flops = ckpt.meta.train_flops;
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
        // Pruned weights and momentum at zero, whatever the file holds: the optimizer step
        // over the active positions leaves them as they are.
        self.zero_pruned();
        self.step = ckpt.meta.step;
        self.epoch_sums = ckpt.meta.epoch_sums.clone();
        self.best_val_accuracy = ckpt.meta.best_val_accuracy;
        Ok(())
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
        for (prefix, masks) in [("mask", self.masks()), ("ever", self.ever_active())] {
            for layer in &masks.layers {
                tensors.push(NamedTensor {
                    name: format!("{prefix}:{}", layer.path),
                    dims: layer.dims.clone(),
                    payload: Some(Payload::Bits(layer.active.clone())),
                });
            }
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
                sparse_kernel_layers: Some(self.sparse_kernel_layers().to_vec()),
                dataset_fingerprint: Some(self.data.fingerprint.clone()),
            },
            tensors,
        })
    }
}
