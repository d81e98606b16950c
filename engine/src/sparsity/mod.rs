//! Masks as explicit state: which weights are prunable, how many non-zeros each layer
//! gets (uniform or ERK, hit exactly), the masks themselves, and exact top-k selection.

pub mod budget;
pub mod connectivity;
pub mod distribution;
pub mod layers;
pub mod masks;
pub mod prune;
pub mod topk;

pub use budget::Budget;
pub use connectivity::{Connectivity, connectivity};
pub use distribution::{Distribution, SparsityConfig, allocate, allocate_total};
pub use layers::{SparseLayer, sparse_layers};
pub use masks::{LayerMask, Masks};

#[derive(Debug, thiserror::Error)]
pub enum SparsityError {
    #[error("{0}")]
    Impossible(String),
    #[error("{0}")]
    Invalid(String),
}
