//! Launching our WGSL kernels (`shaders/`) through Burn's wgpu backend: the raw-source
//! custom-kernel API (`SourceKernel`), one entry point `main` per file. The same source
//! runs natively (Vulkan/Metal/DX12 through wgpu) and in the browser (WebGPU).
//!
//! Conventions shared by every shader: bindings are `@group(0) @binding(i)` in launch order,
//! all storage buffers declared `read_write` (Burn sub-allocates tensors from shared wgpu
//! buffers, and one buffer bound both read-only and writable in a dispatch is a validation
//! error); the last one is a `params: array<u32>` of sizes and f32 bit
//! patterns; workgroups are 256 threads and are laid out in 2D when one dimension would
//! pass WebGPU's 65,535 limit (the shader rebuilds the linear id with `groups_x`).

use burn::backend::wgpu::{CubeDim, CubeTensor, KernelSource, SourceKernel, SourceTemplate};
use burn::tensor::{DType, Shape};
use cubecl::prelude::KernelId;
use cubecl::server::{CubeCount, Handle, KernelArguments};

/// One shader file, optionally followed by a shared helper file.
#[derive(Clone, Copy, Debug)]
pub struct Shader {
    pub name: &'static str,
    pub source: &'static str,
    pub helpers: Option<&'static str>,
}

macro_rules! shader {
    ($name:literal) => {
        $crate::kernels::wgsl::Shader {
            name: $name,
            source: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shaders/",
                $name,
                ".wgsl"
            )),
            helpers: None,
        }
    };
    ($name:literal, $helpers:literal) => {
        $crate::kernels::wgsl::Shader {
            name: $name,
            source: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shaders/",
                $name,
                ".wgsl"
            )),
            helpers: Some(include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shaders/",
                $helpers,
                ".wgsl"
            ))),
        }
    };
}
pub(crate) use shader;

/// Threads per workgroup in every 1D kernel.
pub const WORKGROUP: u32 = 256;
/// WebGPU's default `maxComputeWorkgroupsPerDimension`.
const MAX_GROUPS_PER_DIM: u32 = 65_535;

struct ShaderSource {
    shader: Shader,
}

impl KernelSource for ShaderSource {
    fn source(&self) -> SourceTemplate {
        let template = SourceTemplate::new(self.shader.source);
        match self.shader.helpers {
            Some(helpers) => template.add_template(helpers),
            None => template,
        }
    }

    fn id(&self) -> KernelId {
        KernelId::new::<Self>().info(self.shader.name)
    }

    fn lang(&self) -> &'static str {
        "wgsl"
    }
}

/// A 2D grid of workgroups covering `groups` workgroups; returns it and its x extent.
pub fn grid(groups: u32) -> (CubeCount, u32) {
    let groups = groups.max(1);
    if groups <= MAX_GROUPS_PER_DIM {
        (CubeCount::Static(groups, 1, 1), groups)
    } else {
        let x = MAX_GROUPS_PER_DIM;
        (CubeCount::Static(x, groups.div_ceil(x), 1), x)
    }
}

/// Workgroups needed for `n` elements, one thread each.
pub fn groups_for(n: usize) -> u32 {
    u32::try_from(n.div_ceil(WORKGROUP as usize)).expect("kernel launch larger than 2^40")
}

/// Launches `shader` with `buffers` bound in order and `params` appended as the last binding.
pub fn launch(
    reference: &CubeTensor,
    shader: Shader,
    threads_per_group: u32,
    count: CubeCount,
    buffers: Vec<Handle>,
    params: &[u32],
) {
    let client = &reference.client;
    let params = client.create_from_slice(&u32_bytes(params));
    let bindings = buffers
        .into_iter()
        .chain(std::iter::once(params))
        .map(Handle::binding)
        .collect();
    client.launch(
        Box::new(SourceKernel::new(
            ShaderSource { shader },
            CubeDim::new_1d(threads_per_group),
        )),
        count,
        KernelArguments::new().with_buffers(bindings),
    );
}

/// A new uninitialised f32 tensor on `reference`'s device.
pub fn empty_f32(reference: &CubeTensor, shape: Shape) -> CubeTensor {
    let bytes = shape.num_elements() * 4;
    let handle = reference.client.empty(bytes.max(4));
    CubeTensor::new_contiguous(
        reference.client.clone(),
        reference.device.clone(),
        shape,
        handle,
        DType::F32,
    )
}

/// A device buffer holding `values`.
pub fn u32_buffer(reference: &CubeTensor, values: &[u32]) -> Handle {
    reference.client.create_from_slice(&u32_bytes(values))
}

fn u32_bytes(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The tensor's buffer, made contiguous and checked to be `dtype`.
pub fn contiguous(tensor: CubeTensor, what: &str, dtypes: &[DType]) -> CubeTensor {
    assert!(
        dtypes.contains(&tensor.dtype),
        "sparse kernel: {what} must be one of {dtypes:?}, got {:?}",
        tensor.dtype
    );
    burn::backend::wgpu::into_contiguous(tensor)
}
