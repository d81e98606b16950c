// Sparse convolution, forward: one thread per output element (n, oc, oh, ow), summing over
// the active weights of row oc only. Neighbouring threads share oc (ow varies fastest), so
// a workgroup reads the same few weights and contiguous input rows.
//
// out[n, oc, oh, ow] = sum over active (ic, kh, kw) of
//     w[oc, ic, kh, kw] * x[n, ic, oh * stride_h + kh - pad_h, ow * stride_w + kw - pad_w]

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> weight: array<f32>;
@group(0) @binding(2) var<storage, read_write> row_start: array<i32>;
@group(0) @binding(3) var<storage, read_write> row_entries: array<i32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> params: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = geometry();
    let index = (wg.x + wg.y * g.groups_x) * 256u + lid;
    if (index >= g.count) {
        return;
    }
    let at = nchw(index, g.out_channels, g.out_h, g.out_w);
    let n = at.x;
    let oc = at.y;
    let oh = at.z;
    let ow = at.w;
    let taps = g.kernel_h * g.kernel_w;
    let h0 = i32(oh * g.stride_h) - i32(g.pad_h);
    let w0 = i32(ow * g.stride_w) - i32(g.pad_w);
    let image = n * g.in_channels;
    var acc = 0.0;
    let end = row_start[oc + 1u];
    for (var e = row_start[oc]; e < end; e = e + 1) {
        let position = u32(row_entries[e]);
        let ic = position / taps;
        let tap = position % taps;
        let ih = h0 + i32(tap / g.kernel_w);
        let iw = w0 + i32(tap % g.kernel_w);
        if (ih >= 0 && iw >= 0 && u32(ih) < g.in_h && u32(iw) < g.in_w) {
            let w = weight[oc * g.weight_stride_oc + ic * g.weight_stride_ic + tap];
            acc = acc + w * x[((image + ic) * g.in_h + u32(ih)) * g.in_w + u32(iw)];
        }
    }
    out[index] = acc;
}
