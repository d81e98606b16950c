//! CIFAR-style ResNets and the path-keyed parameter walk that the sparsity code,
//! the optimizer and checkpoints share.

pub mod dyrelu;
pub mod params;
pub mod resnet;

pub use params::{ParamInfo, for_each_param, grads_by_path, map_params, param_infos};
pub use resnet::{Activation, Arch, DyReluConfig, ModelConfig, ResNet};
