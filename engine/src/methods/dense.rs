//! The dense baseline: all masks full, nothing ever pruned.

use super::SparsityMethod;
use crate::rng::Rng;
use crate::sparsity::{Masks, SparseLayer, SparsityConfig, SparsityError};

pub struct Dense;

impl SparsityMethod for Dense {
    fn name(&self) -> &'static str {
        "dense"
    }

    fn initial_masks(
        &self,
        layers: &[SparseLayer],
        _: &SparsityConfig,
        _: &mut Rng,
    ) -> Result<Masks, SparsityError> {
        Ok(Masks::dense(layers))
    }
}
