// Masked SGD step, one fused pass over weight, momentum, gradient and mask.
//
//   g = grad * mask * clip + wd * w;  m = mu * m + g;  d = g + mu * m (Nesterov) or m;
//   w = w - lr * d;  pruned positions (mask == 0): w = 0 and m = 0.
//
// Reads the old weight and momentum and writes new buffers (8 bindings, WebGPU's default
// per-stage limit), so no input needs copying first. `clip[0]` is the global
// gradient-norm clipping coefficient, computed on the device: the step never reads back.
// The operation order matches the tensor reference (`kernels::masked_step::reference`).

@group(0) @binding(0) var<storage, read_write> weight: array<f32>;
@group(0) @binding(1) var<storage, read_write> momentum: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> mask: array<f32>;
@group(0) @binding(4) var<storage, read_write> clip: array<f32>;
@group(0) @binding(5) var<storage, read_write> weight_out: array<f32>;
@group(0) @binding(6) var<storage, read_write> momentum_out: array<f32>;
// [n, lr, mu, wd (f32 bits), nesterov, has_mask, groups_x]
@group(0) @binding(7) var<storage, read_write> params: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.x + wg.y * params[6]) * 256u + lid;
    if (i >= params[0]) {
        return;
    }
    if (params[5] != 0u && mask[i] == 0.0) {
        weight_out[i] = 0.0;
        momentum_out[i] = 0.0;
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
    momentum_out[i] = m;
    weight_out[i] = w - d * lr;
}
