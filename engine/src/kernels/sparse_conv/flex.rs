//! Flex (CPU): the same loops as the shaders, over host copies of the tensors.

use super::*;
use burn::backend::TensorMetadata;
use burn::backend::ops::{FloatTensorOps, IntTensorOps};
use burn::backend::{
    Flex,
    tensor::{FloatTensor, IntTensor},
};
use burn::tensor::{Shape, TensorData, read_sync};

fn host_f32(t: FloatTensor<Flex>) -> Vec<f32> {
    read_sync(Flex::float_into_data(t))
        .expect("reading a CPU tensor")
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 data")
}

fn host_i32(t: IntTensor<Flex>) -> Vec<i32> {
    read_sync(Flex::int_into_data(t))
        .expect("reading a CPU tensor")
        .convert::<i32>()
        .try_into_vec::<i32>()
        .expect("i32 data")
}

fn to_flex(values: Vec<f32>, shape: Shape, like: &FloatTensor<Flex>) -> FloatTensor<Flex> {
    Flex::float_from_data(
        TensorData::new(values, shape),
        &TensorMetadata::device(like),
    )
}

/// Calls `f(output_offset, input_offset)` for every output position of one image plane
/// whose input position under tap (kh, kw) lies inside the (unpadded) input plane: the
/// loop every CPU kernel below shares.
fn for_each_tap(g: &ConvGeometry, kh: usize, kw: usize, mut f: impl FnMut(usize, usize)) {
    for oh in 0..g.out_h {
        let Some(ih) = (oh * g.stride[0] + kh).checked_sub(g.padding[0]) else {
            continue;
        };
        if ih >= g.in_h {
            continue;
        }
        for ow in 0..g.out_w {
            let Some(iw) = (ow * g.stride[1] + kw).checked_sub(g.padding[1]) else {
                continue;
            };
            if iw < g.in_w {
                f(oh * g.out_w + ow, ih * g.in_w + iw);
            }
        }
    }
}

/// (ic or oc, kh, kw) of an index entry `channel * taps + tap`.
fn split_entry(g: &ConvGeometry, entry: i32) -> (usize, usize, usize) {
    let (entry, taps) = (entry as usize, g.layout.taps);
    let tap = entry % taps;
    (entry / taps, tap / g.kernel[1], tap % g.kernel[1])
}

impl SparseConvBackend for Flex {
    fn sparse_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        row_start: IntTensor<Self>,
        row_entries: IntTensor<Self>,
        _col_start: IntTensor<Self>,
        _col_entries: IntTensor<Self>,
        g: ConvGeometry,
    ) -> FloatTensor<Self> {
        let like = x.clone();
        let (xs, ws) = (host_f32(x), host_f32(weight));
        let (rows, entries) = (host_i32(row_start), host_i32(row_entries));
        let (l, in_plane) = (g.layout, g.in_h * g.in_w);
        let mut out = vec![0.0f32; g.output_shape().num_elements()];
        for (slab, out_plane) in out.chunks_mut(g.out_h * g.out_w).enumerate() {
            let (n, oc) = (slab / l.out_channels, slab % l.out_channels);
            for &entry in &entries[rows[oc] as usize..rows[oc + 1] as usize] {
                let (ic, kh, kw) = split_entry(&g, entry);
                let w = ws[l.flat(oc, ic, kh * g.kernel[1] + kw)];
                let image = &xs[(n * l.in_channels + ic) * in_plane..][..in_plane];
                for_each_tap(&g, kh, kw, |o, i| out_plane[o] += w * image[i]);
            }
        }
        to_flex(out, g.output_shape(), &like)
    }

    fn sparse_conv2d_input_grad(
        grad_out: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        col_start: IntTensor<Self>,
        col_entries: IntTensor<Self>,
        g: ConvGeometry,
    ) -> FloatTensor<Self> {
        let like = grad_out.clone();
        let (dy, ws) = (host_f32(grad_out), host_f32(weight));
        let (cols, entries) = (host_i32(col_start), host_i32(col_entries));
        let (l, in_plane, out_plane) = (g.layout, g.in_h * g.in_w, g.out_h * g.out_w);
        let mut dx = vec![0.0f32; g.input_shape().num_elements()];
        // Scatter form: each active weight adds its contribution to the input plane.
        for (slab, dx_plane) in dx.chunks_mut(in_plane).enumerate() {
            let (n, ic) = (slab / l.in_channels, slab % l.in_channels);
            for &entry in &entries[cols[ic] as usize..cols[ic + 1] as usize] {
                let (oc, kh, kw) = split_entry(&g, entry);
                let w = ws[l.flat(oc, ic, kh * g.kernel[1] + kw)];
                let dy_plane = &dy[(n * l.out_channels + oc) * out_plane..][..out_plane];
                for_each_tap(&g, kh, kw, |o, i| dx_plane[i] += w * dy_plane[o]);
            }
        }
        to_flex(dx, g.input_shape(), &like)
    }

    fn sparse_conv2d_weight_grad(
        x: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        row_start: IntTensor<Self>,
        row_entries: IntTensor<Self>,
        g: ConvGeometry,
    ) -> FloatTensor<Self> {
        let like = x.clone();
        let (xs, dy) = (host_f32(x), host_f32(grad_out));
        let (rows, entries) = (host_i32(row_start), host_i32(row_entries));
        let (l, in_plane, out_plane) = (g.layout, g.in_h * g.in_w, g.out_h * g.out_w);
        let mut dw = vec![0.0f32; g.weight_shape().num_elements()];
        for oc in 0..l.out_channels {
            for &entry in &entries[rows[oc] as usize..rows[oc + 1] as usize] {
                let (ic, kh, kw) = split_entry(&g, entry);
                let mut acc = 0.0f32;
                for n in 0..g.batch {
                    let image = &xs[(n * l.in_channels + ic) * in_plane..][..in_plane];
                    let dy_plane = &dy[(n * l.out_channels + oc) * out_plane..][..out_plane];
                    for_each_tap(&g, kh, kw, |o, i| acc += dy_plane[o] * image[i]);
                }
                dw[l.flat(oc, ic, kh * g.kernel[1] + kw)] = acc;
            }
        }
        to_flex(dw, g.weight_shape(), &like)
    }
}
