// Masked SGD step, version 2: as version 1 (`masked_sgd_step_v1.wgsl`), four weights per
// thread through vec4 loads and stores, for layers whose size is a multiple of 4 (every
// conv and linear layer here). Pruned lanes are zeroed with a select instead of a branch.

@group(0) @binding(0) var<storage, read_write> weight: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> momentum: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> grad: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> mask: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> clip: array<f32>;
@group(0) @binding(5) var<storage, read_write> weight_out: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> momentum_out: array<vec4<f32>>;
// [n / 4, lr, mu, wd (f32 bits), nesterov, has_mask, groups_x]
@group(0) @binding(7) var<storage, read_write> params: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * params[6]) * 256u + lid;
    if (i >= params[0]) {
        return;
    }
    let lr = bitcast<f32>(params[1]);
    let mu = bitcast<f32>(params[2]);
    let wd = bitcast<f32>(params[3]);
    let w = weight[i];
    let g = grad[i] * clip[0] + w * wd;
    let m = momentum[i] * mu + g;
    var d = m;
    if (params[4] != 0u) {
        d = g + m * mu;
    }
    var keep = vec4<bool>(true);
    if (params[5] != 0u) {
        keep = mask[i] != vec4<f32>(0.0);
    }
    let zero = vec4<f32>(0.0);
    momentum_out[i] = select(zero, m, keep);
    weight_out[i] = select(zero, w - d * lr, keep);
}
