//! The images a run trains and validates on, split and normalised.

use crate::data::{Batcher, ImageSet, Normalization, TrainValSplit};
use std::sync::Arc;

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

    /// The same split with the normalisation a checkpoint recorded.
    pub(crate) fn with_normalization(
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
