//! Static sparse training: a random mask with the configured layer-wise densities
//! (uniform or ERK), never changed.

use super::SparsityMethod;

pub struct StaticMask;

impl SparsityMethod for StaticMask {
    fn name(&self) -> &'static str {
        "static"
    }
}

/// The registry's line for static.
pub const ENTRY: super::MethodEntry = super::MethodEntry {
    name: "static",
    summary: "a random mask with the layer-wise densities (uniform/ERK), fixed for the whole run",
    build: |_, _| Ok(Box::new(StaticMask)),
    settings: None,
    adjust_model: None,
};
