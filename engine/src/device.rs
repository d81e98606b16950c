//! Picking the device a run trains on. `auto` takes a hardware GPU through wgpu
//! (Vulkan/Metal/DX12) when one is present and otherwise the Flex CPU backend, the
//! fastest CPU backend Burn 0.22 offers here. Software adapters (lavapipe, SwiftShader,
//! WARP) count as CPUs: far too slow to train on, they serve only to test GPU code.

#[cfg(not(target_arch = "wasm32"))]
use burn::tensor::{Device, DeviceKind};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// A hardware GPU if there is one, else Flex.
    Auto,
    /// A hardware GPU, or an error saying there is none.
    Gpu,
    /// The default CPU backend (Flex).
    Cpu,
    Flex,
    /// Burn's deprecated ndarray backend, kept for the benchmark.
    Ndarray,
    /// Whatever wgpu adapter there is, software ones included (tests of GPU code).
    Wgpu,
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "auto" => Self::Auto,
            "gpu" => Self::Gpu,
            "cpu" => Self::Cpu,
            "flex" => Self::Flex,
            "ndarray" => Self::Ndarray,
            "wgpu" => Self::Wgpu,
            other => {
                return Err(format!(
                    "unknown device '{other}': use auto, gpu, cpu, flex, ndarray or wgpu"
                ));
            }
        })
    }
}

/// A wgpu adapter as `info` reports it.
#[derive(Clone, Debug, Serialize)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub hardware: bool,
}

/// Every wgpu adapter this machine offers (native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn adapters() -> Vec<AdapterSummary> {
    use burn::tensor::wgpu::wgpu;
    // Only the APIs Burn trains on (Vulkan, Metal, DX12, WebGPU): a GL adapter would list
    // the same device twice under an API Burn never uses.
    let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    descriptor.backends &= wgpu::Backends::PRIMARY;
    let instance = wgpu::Instance::new(descriptor);
    let found = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY));
    found
        .into_iter()
        .map(|a| {
            let info = a.get_info();
            AdapterSummary {
                hardware: !matches!(
                    info.device_type,
                    wgpu::DeviceType::Cpu | wgpu::DeviceType::Other
                ),
                name: info.name,
                backend: format!("{:?}", info.backend),
                device_type: format!("{:?}", info.device_type),
                driver: format!("{} {}", info.driver, info.driver_info)
                    .trim()
                    .to_string(),
            }
        })
        .collect()
}

/// The device for `choice` (with autodiff) and a one-line description of it.
#[cfg(not(target_arch = "wasm32"))]
pub fn select(choice: DeviceChoice) -> Result<(Device, String), String> {
    let gpu = || adapters().into_iter().find(|a| a.hardware);
    let flex = || (Device::flex(), "cpu (Flex backend)".to_string());
    let (device, description) = match choice {
        DeviceChoice::Cpu | DeviceChoice::Flex => flex(),
        #[allow(deprecated)]
        DeviceChoice::Ndarray => (Device::ndarray(), "cpu (ndarray backend)".to_string()),
        DeviceChoice::Auto => match gpu() {
            Some(a) => (
                Device::wgpu(DeviceKind::DefaultDevice),
                format!("gpu: {} ({})", a.name, a.backend),
            ),
            None => flex(),
        },
        DeviceChoice::Gpu => match gpu() {
            Some(a) => (
                Device::wgpu(DeviceKind::DefaultDevice),
                format!("gpu: {} ({})", a.name, a.backend),
            ),
            None => {
                let soft: Vec<String> = adapters().into_iter().map(|a| a.name).collect();
                return Err(format!(
                    "--device gpu: no hardware GPU adapter found{}. Train on the CPU with \
                     --device cpu (or auto), or check the GPU driver (`sparselab info` lists adapters)",
                    if soft.is_empty() {
                        String::new()
                    } else {
                        format!(" (only software adapters: {})", soft.join(", "))
                    }
                ));
            }
        },
        DeviceChoice::Wgpu => match adapters().into_iter().next() {
            Some(a) => (
                Device::wgpu(DeviceKind::DefaultDevice),
                format!("wgpu: {} ({}, {})", a.name, a.backend, a.device_type),
            ),
            None => return Err(
                "--device wgpu: no wgpu adapter at all (install mesa-vulkan-drivers for lavapipe)"
                    .into(),
            ),
        },
    };
    Ok((device.autodiff(), description))
}
