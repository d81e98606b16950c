// Sparse convolution, gradient of the input: one thread per input element (n, ic, ih, iw),
// summing over the active weights of input channel ic (the index by input channel). This
// is the transposed convolution written as a gather, so it needs no float atomics.
//
// dx[n, ic, ih, iw] = sum over active (oc, kh, kw) with oh = (ih + pad_h - kh) / stride_h
//     (exact and in range) of w[oc, ic, kh, kw] * dy[n, oc, oh, ow]

@group(0) @binding(0) var<storage, read_write> grad_out: array<f32>;
@group(0) @binding(1) var<storage, read_write> weight: array<f32>;
@group(0) @binding(2) var<storage, read_write> col_start: array<i32>;
@group(0) @binding(3) var<storage, read_write> col_entries: array<i32>;
@group(0) @binding(4) var<storage, read_write> grad_in: array<f32>;
@group(0) @binding(5) var<storage, read_write> params: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = geometry();
    let index = (wg.x + wg.y * g.groups_x) * 256u + lid;
    if (index >= g.count) {
        return;
    }
    let at = nchw(index, g.in_channels, g.in_h, g.in_w);
    let n = at.x;
    let ic = at.y;
    let ih = at.z;
    let iw = at.w;
    let taps = g.kernel_h * g.kernel_w;
    var acc = 0.0;
    let end = col_start[ic + 1u];
    for (var e = col_start[ic]; e < end; e = e + 1) {
        let position = u32(col_entries[e]);
        let oc = position / taps;
        let tap = position % taps;
        let kh = tap / g.kernel_w;
        let kw = tap % g.kernel_w;
        let sh = i32(ih + g.pad_h) - i32(kh);
        let sw = i32(iw + g.pad_w) - i32(kw);
        if (sh < 0 || sw < 0) {
            continue;
        }
        let ush = u32(sh);
        let usw = u32(sw);
        if (ush % g.stride_h != 0u || usw % g.stride_w != 0u) {
            continue;
        }
        let oh = ush / g.stride_h;
        let ow = usw / g.stride_w;
        if (oh < g.out_h && ow < g.out_w) {
            let w = weight[oc * g.weight_stride_oc + ic * g.weight_stride_ic + tap];
            acc = acc + w * grad_out[((n * g.out_channels + oc) * g.out_h + oh) * g.out_w + ow];
        }
    }
    grad_in[index] = acc;
}
