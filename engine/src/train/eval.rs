//! Evaluation: loss, accuracy, per-class accuracy and the confusion matrix of a model on
//! a set of images, computed from real forward passes in inference mode.

use serde::{Deserialize, Serialize};

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
