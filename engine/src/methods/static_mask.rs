//! Static sparse training: a random mask with the configured layer-wise densities
//! (uniform or ERK), never changed.

use super::{SparsityMethod, random_initial_masks};
use crate::rng::Rng;
use crate::sparsity::{Masks, SparseLayer, SparsityConfig, SparsityError};

pub struct StaticMask;

impl SparsityMethod for StaticMask {
    fn name(&self) -> &'static str {
        "static"
    }

    fn initial_masks(
        &self,
        layers: &[SparseLayer],
        sparsity: &SparsityConfig,
        rng: &mut Rng,
    ) -> Result<Masks, SparsityError> {
        random_initial_masks(layers, sparsity, rng)
    }
}
