//! The devices the native kernel tests run on and their read-backs, shared by
//! `tests/tests/kernels.rs` and `tests/tests/sparse_conv.rs` (included by `#[path]`).

use sparselab::burn::tensor::{Device, DeviceKind, Tensor};

/// The wgpu device (lavapipe on a machine without a GPU), or None where there is no wgpu
/// adapter at all (`scripts/setup.sh` installs lavapipe when run as root).
pub fn wgpu() -> Option<Device> {
    if sparselab::device::adapters().is_empty() {
        eprintln!("skipped on wgpu: no adapter (install mesa-vulkan-drivers)");
        return None;
    }
    Some(Device::wgpu(DeviceKind::DefaultDevice))
}

pub fn devices() -> Vec<Device> {
    wgpu().into_iter().chain([Device::flex()]).collect()
}

pub fn host(t: Tensor<1>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}
