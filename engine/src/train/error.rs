//! What can stop a training step, and the one read-back every step and evaluation uses.

use burn::tensor::Tensor;

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

/// A host copy of a device tensor (one device sync).
pub(crate) async fn read_f32(t: Tensor<1>) -> Result<Vec<f32>, TrainError> {
    let data = t
        .into_data_async()
        .await
        .map_err(|e| TrainError::Device(format!("{e:?}")))?;
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| TrainError::Device(format!("{e:?}")))
}
