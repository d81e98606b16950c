//! v7 of the sparse convolution's CPU loops: v6, with each call's index entries decoded
//! once and a destination plane's whole list of them summed inside one function.
//!
//! v5 decodes an entry (its channel and tap, by division), looks up the tap's run and
//! bounds-checks four slices every time a plane meets it, then calls the innermost loop
//! through the AVX2 check, a call that cannot be inlined. At 99.9% most of ResNet-34's
//! active weights sit in its last stage, whose planes are 4x4: each call does 16
//! multiply-adds, and the bookkeeping around it costs more than they do. Here each entry
//! becomes a `Term` (weight, source channel, where it reads and writes, its mask) once per
//! call, and a plane's terms are summed in one function chosen for AVX2 once per plane,
//! with the multiply-adds inlined into it. Strided convolutions run v6.
//!
//! Each destination takes its terms in the list's order with v5's expressions, so the
//! forward pass and the input gradient are v1's bits. The weight gradient is v6's.

use super::spans::{Spans, kept};
use super::{ConvGeometry, IndexList, LoopVersion, PlaneFinish, for_each_plane, split_entry};
use crate::kernels::wide::wide_fn;

/// An active weight as a destination plane meets it: `dest[write + j] += weight *
/// source_plane(channel)[read + j]` for `j < len`, the products cleared where
/// `masks[mask][mask_start + j]` is zero, if it has a mask.
#[derive(Clone, Copy)]
struct Term {
    weight: f32,
    channel: usize,
    read: usize,
    write: usize,
    len: usize,
    mask: Option<usize>,
    mask_start: usize,
}

pub fn forward(
    g: &ConvGeometry,
    x: &[f32],
    w: &[f32],
    rows: IndexList,
    finish: PlaneFinish,
) -> Vec<f32> {
    summed(g, x, w, rows, Some(finish))
        .unwrap_or_else(|| super::forward_finished(LoopVersion::V6, g, x, w, rows, finish))
}

pub fn input_grad(g: &ConvGeometry, dy: &[f32], w: &[f32], cols: IndexList) -> Vec<f32> {
    summed(g, dy, w, cols, None)
        .unwrap_or_else(|| super::input_grad(LoopVersion::V6, g, dy, w, cols))
}

/// The forward pass (`finish` given: `source` = x, `list` by output channel, each output
/// plane finished) or the input gradient (`source` = dy, `list` by input channel). `None`
/// where the geometry has no runs (v5's `Spans`).
fn summed(
    g: &ConvGeometry,
    source: &[f32],
    w: &[f32],
    list: IndexList,
    finish: Option<PlaneFinish>,
) -> Option<Vec<f32>> {
    let spans = Spans::of(g)?;
    let (l, in_plane, out_plane) = (g.layout, g.in_h * g.in_w, g.out_h * g.out_w);
    let forward = finish.is_some();
    let (channels, source_channels, plane_len, source_plane) = if forward {
        (l.out_channels, l.in_channels, out_plane, in_plane)
    } else {
        (l.in_channels, l.out_channels, in_plane, out_plane)
    };
    let terms: Vec<Term> = (0..channels)
        .flat_map(|c| list.of(c).iter().map(move |&entry| (c, entry)))
        .map(|(c, entry)| {
            let (other, kh, kw) = split_entry(g, entry);
            let tap = kh * g.kernel[1] + kw;
            let run = spans.tap(tap);
            let (oc, ic, read, write) = if forward {
                (c, other, run.in_start, run.out_start)
            } else {
                (other, c, run.out_start, run.in_start)
            };
            Term {
                weight: w[l.flat(oc, ic, tap)],
                channel: other,
                read,
                write,
                len: run.len,
                mask: run.mask,
                mask_start: run.out_start,
            }
        })
        .collect();
    let plane = |slab: usize, out: &mut [f32]| {
        let (n, c) = (slab / channels, slab % channels);
        let range = list.start[c] as usize..list.start[c + 1] as usize;
        let image = &source[n * source_channels * source_plane..][..source_channels * source_plane];
        sum_terms(&terms[range], image, source_plane, &spans.masks, out);
        if let Some(finish) = finish {
            finish(slab, out);
        }
    };
    Some(for_each_plane(
        LoopVersion::V7,
        g.batch * channels,
        plane_len,
        plane,
    ))
}

wide_fn! {
/// Every term of one destination plane `out`, reading `image`'s planes of `plane` values.
fn sum_terms(terms: &[Term], image: &[f32], plane: usize, masks: &[Vec<u32>], out: &mut [f32]) {
    for t in terms {
        let from = &image[t.channel * plane..][t.read..t.read + t.len];
        let dest = &mut out[t.write..t.write + t.len];
        let weight = t.weight;
        match t.mask {
            None => dest.iter_mut().zip(from).for_each(|(o, &v)| *o += weight * v),
            Some(m) => {
                let mask = &masks[m][t.mask_start..t.mask_start + t.len];
                dest.iter_mut()
                    .zip(from)
                    .zip(mask)
                    .for_each(|((o, &v), &k)| *o += kept(weight * v, k));
            }
        }
    }
}
}
