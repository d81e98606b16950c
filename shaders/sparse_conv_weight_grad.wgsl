// Sparse convolution, gradient of the weight at the active positions only: one workgroup
// per active weight, its 256 threads striding over (n, oh, ow) and reducing in shared
// memory. Inactive positions are never computed; the output buffer arrives zeroed.
//
// dw[oc, ic, kh, kw] = sum over n, oh, ow of dy[n, oc, oh, ow] * x[n, ic, ih, iw]

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> grad_out: array<f32>;
@group(0) @binding(2) var<storage, read_write> row_start: array<i32>;
@group(0) @binding(3) var<storage, read_write> row_entries: array<i32>;
@group(0) @binding(4) var<storage, read_write> grad_weight: array<f32>;
@group(0) @binding(5) var<storage, read_write> params: array<u32>;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = geometry();
    // count = number of active weights; one workgroup each.
    let e = wg.x + wg.y * g.groups_x;
    let in_range = e < g.count;
    var oc = 0u;
    var position = 0u;
    if (in_range) {
        // Binary search for the row holding entry e: row_start[oc] <= e < row_start[oc + 1].
        var lo = 0u;
        var hi = g.out_channels;
        while (hi - lo > 1u) {
            let mid = (lo + hi) / 2u;
            if (u32(row_start[mid]) <= e) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        oc = lo;
        position = u32(row_entries[e]);
    }
    let taps = g.kernel_h * g.kernel_w;
    let ic = position / taps;
    let tap = position % taps;
    let kh = tap / g.kernel_w;
    let kw = tap % g.kernel_w;
    let plane = g.out_h * g.out_w;
    var acc = 0.0;
    if (in_range) {
        for (var j = lid; j < g.batch * plane; j = j + 256u) {
            let n = j / plane;
            let oh = (j % plane) / g.out_w;
            let ow = j % g.out_w;
            let ih = i32(oh * g.stride_h + kh) - i32(g.pad_h);
            let iw = i32(ow * g.stride_w + kw) - i32(g.pad_w);
            if (ih >= 0 && iw >= 0 && u32(ih) < g.in_h && u32(iw) < g.in_w) {
                let dy = grad_out[((n * g.out_channels + oc) * g.out_h + oh) * g.out_w + ow];
                acc = acc + dy * x[((n * g.in_channels + ic) * g.in_h + u32(ih)) * g.in_w + u32(iw)];
            }
        }
    }
    partial[lid] = acc;
    workgroupBarrier();
    for (var width = 128u; width > 0u; width = width / 2u) {
        if (lid < width) {
            partial[lid] = partial[lid] + partial[lid + width];
        }
        workgroupBarrier();
    }
    if (in_range && lid == 0u) {
        grad_weight[oc * g.weight_stride_oc + ic * g.weight_stride_ic + tap] = partial[0];
    }
}
