//! The dense baseline: all masks full, nothing ever pruned.

use super::SparsityMethod;
use crate::rng::Rng;
use crate::sparsity::{Budget, Masks, SparsityError};

pub struct Dense;

impl SparsityMethod for Dense {
    fn name(&self) -> &'static str {
        "dense"
    }

    fn initial_masks(&self, budget: &Budget, _: &mut Rng) -> Result<Masks, SparsityError> {
        Ok(Masks::dense(&budget.layers))
    }

    fn scheduled_density(&self, _step: usize, _budget: &Budget) -> f64 {
        1.0
    }
}

/// The registry's line for dense.
pub const ENTRY: super::MethodEntry = super::MethodEntry {
    name: "dense",
    summary: "no pruning: every weight trains (the accuracy ceiling)",
    build: |_, _| Ok(Box::new(Dense)),
    settings: None,
    adjust_model: None,
};
