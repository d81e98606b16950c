//! Which device the worker trains on: WebGPU when the browser offers a hardware adapter,
//! and why not otherwise (no API, no adapter, only a software emulation).

use js_sys::{Promise, Reflect};
use sparselab::burn::tensor::Device;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// Why the worker does not train on WebGPU.
pub(super) enum NoWebGpu {
    /// No API, no adapter, or the device failed: the message says which.
    Missing(String),
    /// Only a software (fallback) adapter, skipped by `auto`: its name.
    Software(String),
}

/// WebGPU, when the browser has an adapter (a hardware one, with `skip_software`); why
/// not otherwise.
pub(super) async fn webgpu(skip_software: bool) -> Result<(Device, String), NoWebGpu> {
    let missing = |m: &str| NoWebGpu::Missing(m.to_string());
    let navigator = Reflect::get(&js_sys::global(), &"navigator".into()).unwrap_or_default();
    let gpu = Reflect::get(&navigator, &"gpu".into()).unwrap_or_default();
    if gpu.is_undefined() || gpu.is_null() {
        return Err(missing(
            "this browser has no WebGPU (navigator.gpu is missing): use a recent Chrome, Edge or Safari, or Firefox with WebGPU enabled",
        ));
    }
    // Ask for an adapter ourselves first: a browser with WebGPU but no usable adapter
    // (blocked GPU, headless without --enable-unsafe-webgpu) answers null.
    let request = Reflect::get(&gpu, &"requestAdapter".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        .ok_or_else(|| missing("navigator.gpu.requestAdapter is missing"))?;
    let adapter = request
        .call0(&gpu)
        .ok()
        .and_then(|p| p.dyn_into::<Promise>().ok())
        .ok_or_else(|| missing("navigator.gpu.requestAdapter failed"))?;
    let adapter = JsFuture::from(adapter)
        .await
        .map_err(|e| NoWebGpu::Missing(format!("the WebGPU adapter request failed: {e:?}")))?;
    if adapter.is_null() || adapter.is_undefined() {
        return Err(missing(
            "WebGPU is present but offers no adapter (the GPU may be blocked or disabled in this browser)",
        ));
    }
    if skip_software && let Some(name) = software_adapter_name(&adapter) {
        return Err(NoWebGpu::Software(name));
    }
    let (device, setup) = Device::wgpu_options()
        .init_with_setup_async()
        .await
        .map_err(|e| NoWebGpu::Missing(format!("WebGPU could not start: {e:?}")))?;
    let info = setup.adapter.get_info();
    let name = if info.name.is_empty() {
        "WebGPU adapter".to_string()
    } else {
        info.name.clone()
    };
    Ok((
        device.autodiff(),
        format!("{name} ({:?})", info.device_type),
    ))
}

/// The adapter's name when the browser marks it as a fallback (software) adapter:
/// `GPUAdapterInfo.isFallbackAdapter`, or the older `GPUAdapter.isFallbackAdapter`.
fn software_adapter_name(adapter: &JsValue) -> Option<String> {
    let get = |v: &JsValue, key: &str| Reflect::get(v, &key.into()).unwrap_or_default();
    let info = get(adapter, "info");
    let fallback = get(&info, "isFallbackAdapter").is_truthy()
        || get(adapter, "isFallbackAdapter").is_truthy();
    if !fallback {
        return None;
    }
    let name = ["description", "device", "architecture", "vendor"]
        .iter()
        .filter_map(|k| get(&info, k).as_string())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "a software adapter".into());
    Some(name)
}
