//! v9's weight gradient: v6's, with each call's index entries decoded once and an image's
//! dots, one per active weight, summed inside one function.
//!
//! v5 and v6 take each (active weight, image) pair as a call: decode the entry (a
//! division), look up the tap's run, bounds-check four slices, and call the dot through
//! the AVX2 check, which cannot be inlined. In ResNet-34's last stage at 99.9% a run is
//! about 16 values, fewer multiply-adds than that bookkeeping. Here every entry becomes a
//! `Dot` once per call, and each image's dots run in one function chosen for AVX2 once,
//! with the sums inlined. Each dot is v6's (`spans::masked_dot`) and the images are added
//! as v6 adds them, so the gradient is v6's bits.

use super::spans::{Spans, masked_dot};
use super::{
    ConvGeometry, IndexList, LoopVersion, active_weights, added_per_image, placed, split_entry,
};
use crate::kernels::wide::wide_fn;

/// An active weight's gradient within one image: the sum over `j < len` of
/// `dy_plane(out_channel)[write + j] * x_plane(in_channel)[read + j]`, the products
/// cleared where `masks[mask][write + j]` is zero, if it has a mask.
#[derive(Clone, Copy)]
struct Dot {
    out_channel: usize,
    in_channel: usize,
    read: usize,
    write: usize,
    len: usize,
    mask: Option<usize>,
}

/// `dw` at the active positions (listed by output channel, `rows`), zero elsewhere.
/// Geometries without runs (v5's `Spans`) run v6.
pub fn weight_grad(g: &ConvGeometry, x: &[f32], dy: &[f32], rows: IndexList) -> Vec<f32> {
    let Some(spans) = Spans::of(g) else {
        return super::weight_grad(LoopVersion::V6, g, x, dy, rows);
    };
    let (l, in_plane, out_plane) = (g.layout, g.in_h * g.in_w, g.out_h * g.out_w);
    let active = active_weights(g, rows);
    let dots: Vec<Dot> = active
        .iter()
        .map(|&(oc, entry)| {
            let (ic, kh, kw) = split_entry(g, entry);
            let run = spans.tap(kh * g.kernel[1] + kw);
            Dot {
                out_channel: oc,
                in_channel: ic,
                read: run.in_start,
                write: run.out_start,
                len: run.len,
                mask: run.mask,
            }
        })
        .collect();
    let (x_image, dy_image) = (l.in_channels * in_plane, l.out_channels * out_plane);
    let sums = added_per_image(g, dots.len(), |n, sums| {
        let image = Planes {
            x: &x[n * x_image..][..x_image],
            dy: &dy[n * dy_image..][..dy_image],
            in_plane,
            out_plane,
        };
        image_dots(&dots, image, &spans.masks, sums);
    });
    placed(g, &active, sums)
}

/// One image's input and output-gradient planes.
#[derive(Clone, Copy)]
struct Planes<'a> {
    x: &'a [f32],
    dy: &'a [f32],
    in_plane: usize,
    out_plane: usize,
}

wide_fn! {
/// Every dot of one image, into `sums`.
fn image_dots(dots: &[Dot], image: Planes, masks: &[Vec<u32>], sums: &mut [f32]) {
    for (d, sum) in dots.iter().zip(sums.iter_mut()) {
        let dy = &image.dy[d.out_channel * image.out_plane..][d.write..d.write + d.len];
        let x = &image.x[d.in_channel * image.in_plane..][d.read..d.read + d.len];
        let mask = d.mask.map(|m| &masks[m][d.write..d.write + d.len]);
        *sum = masked_dot(dy, x, mask);
    }
}
}
