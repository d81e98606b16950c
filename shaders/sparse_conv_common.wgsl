// Shared by the sparse convolution kernels: the geometry, read from `params`.
//
// A linear layer is the 1x1 case on a 1x1 image. The weight stays in its dense buffer (so
// Burn's autodiff and optimizer see an ordinary parameter); the compressed index lists only
// the active positions. Entries encode the position inside a row: for rows by output
// channel, ic * KH * KW + kh * KW + kw; for rows by input channel, oc * KH * KW + kh * KW + kw.
// The weight element is then at oc * weight_stride_oc + ic * weight_stride_ic + kh * KW + kw.

struct Geometry {
    batch: u32,
    in_channels: u32,
    in_h: u32,
    in_w: u32,
    out_channels: u32,
    out_h: u32,
    out_w: u32,
    kernel_h: u32,
    kernel_w: u32,
    stride_h: u32,
    stride_w: u32,
    pad_h: u32,
    pad_w: u32,
    weight_stride_oc: u32,
    weight_stride_ic: u32,
    groups_x: u32,
    count: u32,
}

fn geometry() -> Geometry {
    return Geometry(
        params[0], params[1], params[2], params[3], params[4], params[5], params[6], params[7],
        params[8], params[9], params[10], params[11], params[12], params[13], params[14],
        params[15], params[16],
    );
}

// (n, c, h, w) of element `index` of a contiguous NCHW tensor.
fn nchw(index: u32, channels: u32, height: u32, width: u32) -> vec4<u32> {
    let rest = index / width / height;
    return vec4<u32>(rest / channels, rest % channels, (index / width) % height, index % width);
}
