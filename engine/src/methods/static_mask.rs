//! Static sparse training: a random mask with the configured layer-wise densities
//! (uniform or ERK), never changed.

use super::SparsityMethod;

pub struct StaticMask;

impl SparsityMethod for StaticMask {
    fn name(&self) -> &'static str {
        "static"
    }
}
