//! BatchNorm statistics re-estimated before an evaluation. Training normalises with each
//! batch's own statistics, evaluation with the running averages; after a mask update at
//! extreme sparsity a channel's inputs can change completely, and the running averages
//! (momentum 0.1) then describe a network that no longer exists for a few dozen steps. So
//! before evaluating, `run.bn_recalibration_batches` training batches (augmented as in
//! training) go through the network in training mode, forward only, and each BatchNorm's
//! running mean and variance become the plain average of those batches' statistics
//! (momentum 1/k at the k-th batch). Weights, masks and the optimizer are untouched.

use super::Trainer;
use crate::data::split::epoch_order;
use crate::rng::Rng;
use burn::tensor::{Tensor, TensorData};

/// The image order of the recalibration batches is its own stream, apart from the
/// epochs' orders.
const ORDER_STREAM: u64 = 0xBA7C_0000;

impl Trainer {
    /// Re-estimates every BatchNorm's running statistics on `run.bn_recalibration_batches`
    /// training batches, once per step. Returns how many batches it ran (0: off, or
    /// already done at this step). The batches are augmented as training's are: the
    /// network learned to normalise with the statistics of augmented images, and
    /// statistics of plain ones cost the default run ten points of validation accuracy.
    pub fn recalibrate_batch_norm(&mut self) -> usize {
        let batches = self.config.run.bn_recalibration_batches;
        let train = &self.data.split.train;
        if batches == 0 || train.is_empty() || self.recalibrated_at == Some(self.step) {
            return 0;
        }
        let b = self.config.batch_size.min(train.len());
        let order = epoch_order(train, self.config.seed ^ ORDER_STREAM, self.step);
        let momenta: Vec<f64> = self.model.batch_norms_mut().map(|bn| bn.momentum).collect();
        let mut rng = Rng::stream(self.config.seed, ORDER_STREAM + self.step as u64);
        for k in 0..batches {
            // Batches wrap around a training split smaller than the images asked for.
            let indices: Vec<usize> = (0..b).map(|i| order[(k * b + i) % order.len()]).collect();
            let augment = self.config.data.augment.then_some(&mut rng);
            let batch = self.data.batcher.batch(&self.data.set, &indices, augment);
            let x = Tensor::<4>::from_data(
                TensorData::new(batch.images, [batch.size, 3, 32, 32]),
                &self.device,
            );
            for bn in self.model.batch_norms_mut() {
                bn.momentum = 1.0 / (k + 1) as f64;
            }
            let ctx = self.forward_ctx();
            // The forward moves the running statistics; its logits are not needed and
            // nothing is read back (an evaluation settles the statistics it reads).
            let _ = self.model.forward(x, &ctx);
        }
        for (bn, m) in self.model.batch_norms_mut().zip(momenta) {
            bn.momentum = m;
        }
        self.recalibrated_at = Some(self.step);
        batches
    }
}
