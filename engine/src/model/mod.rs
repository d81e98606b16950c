//! CIFAR-style ResNets and the path-keyed parameter walk that the sparsity code,
//! the optimizer and checkpoints share.

pub mod block;
pub mod config;
pub mod dyrelu;
pub mod forward_ctx;
pub mod params;
pub mod resnet;

pub use config::{Activation, Arch, DyReluConfig, ModelConfig};
pub use forward_ctx::{
    AfterNorm, ConvNorm, ForwardCtx, FusedBatchNorm, LayerId, LayerKernels, NormKernels, NormTail,
};
pub use params::{ParamInfo, for_each_param, grads_by_path, map_params, param_infos};
pub use resnet::{LayerSite, ResNet};
