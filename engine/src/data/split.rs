//! A seeded, class-stratified train/validation split of one image set.

use super::ImageSet;
use crate::rng::Rng;

#[derive(Clone, Debug, PartialEq)]
pub struct TrainValSplit {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
}

impl TrainValSplit {
    /// Holds out `val_fraction` of each class (rounded), chosen by `seed`.
    pub fn new(set: &ImageSet, val_fraction: f64, seed: u64) -> Self {
        let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); set.num_classes()];
        for (i, &l) in set.labels.iter().enumerate() {
            by_class[l as usize].push(i);
        }
        let mut rng = Rng::stream(seed, 0x5_9117);
        let (mut train, mut val) = (Vec::new(), Vec::new());
        for mut members in by_class {
            rng.shuffle(&mut members);
            let n_val = (members.len() as f64 * val_fraction).round() as usize;
            val.extend_from_slice(&members[..n_val]);
            train.extend_from_slice(&members[n_val..]);
        }
        train.sort_unstable();
        val.sort_unstable();
        Self { train, val }
    }
}

/// The order of training examples in one epoch: a permutation keyed by (seed, epoch), so
/// a resumed run sees exactly the batches the uninterrupted run would have seen.
pub fn epoch_order(indices: &[usize], seed: u64, epoch: usize) -> Vec<usize> {
    let mut order = indices.to_vec();
    Rng::stream(seed, 0xE_0000_0000 + epoch as u64).shuffle(&mut order);
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic;

    #[test]
    fn split_is_disjoint_stratified_and_seeded() {
        let set = synthetic::generate(1000, 1);
        let s = TrainValSplit::new(&set, 0.1, 5);
        assert_eq!(s.val.len(), 100);
        assert_eq!(s.train.len() + s.val.len(), 1000);
        let mut all: Vec<usize> = s.train.iter().chain(&s.val).copied().collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 1000);
        for c in 0..10 {
            assert_eq!(s.val.iter().filter(|&&i| set.labels[i] == c).count(), 10);
        }
        assert_eq!(s, TrainValSplit::new(&set, 0.1, 5));
        assert_ne!(s.val, TrainValSplit::new(&set, 0.1, 6).val);
    }
}
