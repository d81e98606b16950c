//! Evaluation: loss, accuracy, per-class accuracy and the confusion matrix of a model on
//! a set of images, and predictions for a few images, computed from real forward passes
//! in inference mode (BatchNorm running statistics, no autodiff).

use super::error::{TrainError, read_f32};
use crate::data::{Batcher, ImageSet};
use crate::model::{ForwardCtx, ResNet};
use burn::module::Module;
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// One image's prediction: the class and its softmax probability.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prediction {
    pub class: usize,
    pub probability: f64,
}

/// The summed cross-entropy of a batch's logits against its labels.
pub(crate) fn cross_entropy_sum(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let [b, _] = logits.dims();
    log_softmax(logits, 1)
        .gather(1, labels.reshape([b, 1]))
        .sum()
        .neg()
}

/// Evaluates `model` on `indices` of `set`, `batch_size` images at a time.
pub async fn evaluate_model(
    model: &ResNet,
    ctx: &ForwardCtx<'_>,
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
        let logits = model.forward(x, ctx);
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

/// The most probable class of each of `indices` (the page's strip of samples).
pub async fn predict(
    model: &ResNet,
    ctx: &ForwardCtx<'_>,
    batcher: &Batcher,
    set: &ImageSet,
    indices: &[usize],
    device: &Device,
) -> Result<Vec<Prediction>, TrainError> {
    if indices.is_empty() {
        return Ok(Vec::new());
    }
    let model = model.valid();
    let device = device.clone().without_autodiff();
    let batch = batcher.batch(set, indices, None);
    let b = batch.size;
    let x = Tensor::<4>::from_data(TensorData::new(batch.images, [b, 3, 32, 32]), &device);
    let probs = softmax(model.forward(x, ctx), 1);
    let classes = set.num_classes();
    let values = read_f32(probs.reshape([b * classes])).await?;
    Ok(values
        .chunks(classes)
        .map(|row| {
            let (class, p) =
                row.iter().enumerate().fold(
                    (0, f32::MIN),
                    |best, (i, &p)| {
                        if p > best.1 { (i, p) } else { best }
                    },
                );
            Prediction {
                class,
                probability: p as f64,
            }
        })
        .collect())
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub images: usize,
    pub loss: f64,
    pub accuracy: f64,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<usize>>,
}

impl Evaluation {
    pub fn from_predictions(
        labels: &[u16],
        predictions: &[u16],
        loss_sum: f64,
        num_classes: usize,
    ) -> Self {
        let mut confusion = vec![vec![0usize; num_classes]; num_classes];
        for (&t, &p) in labels.iter().zip(predictions) {
            confusion[t as usize][p as usize] += 1;
        }
        let correct = labels
            .iter()
            .zip(predictions)
            .filter(|(t, p)| t == p)
            .count();
        let n = labels.len().max(1) as f64;
        Self {
            images: labels.len(),
            loss: loss_sum / n,
            accuracy: correct as f64 / n,
            confusion,
        }
    }

    /// Accuracy of each true class (None for a class with no images).
    pub fn per_class_accuracy(&self) -> Vec<Option<f64>> {
        self.confusion
            .iter()
            .enumerate()
            .map(|(c, row)| {
                let total: usize = row.iter().sum();
                (total > 0).then(|| row[c] as f64 / total as f64)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_and_per_class() {
        let e = Evaluation::from_predictions(&[0, 0, 1, 1], &[0, 1, 1, 1], 2.0, 3);
        assert_eq!(e.accuracy, 0.75);
        assert_eq!(e.loss, 0.5);
        assert_eq!(e.confusion[0], vec![1, 1, 0]);
        assert_eq!(e.per_class_accuracy(), vec![Some(0.5), Some(1.0), None]);
    }
}
