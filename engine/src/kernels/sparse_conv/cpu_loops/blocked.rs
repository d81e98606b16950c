//! v4 of the sparse convolution's CPU loops: the per-entry work moved out of the inner
//! loops, and small planes taken several images at a time.
//!
//! v2 and v3 decode every index entry (`channel * taps + tap`, two divisions) and work out
//! its tap's row and column ranges for every plane they touch: at ResNet-34's last stage a
//! plane is 4x4, so that bookkeeping costs more than the 16 multiply-adds it guards. Here a
//! call first decodes the entries once and works out each of the kernel's taps once (at
//! most 9 per layer); then each thread takes a block of whole images (contiguous in
//! `[N, C, H, W]`, so the output is split without copies) and, for each entry, runs its
//! rows over every image of the block. A block holds one image for planes of 16x16 and
//! more, and enough images for about 256 output values per entry for smaller ones.
//!
//! Every output element gets its additions in v1's order (entries in index order, one tap
//! each), so the forward pass and the input gradient are v1's bits. The weight gradient
//! sums each block in 8 f32 lanes and the blocks in f64, in order: v1's to rounding. No
//! sum depends on the thread count.

use super::{ConvGeometry, IndexList, Lanes, PlaneFinish, axpy_rows, inside, scatter_row};
use crate::kernels::parallel;

/// Output values per entry a block aims at (planes smaller than this share a block).
const VALUES_PER_BLOCK: usize = 256;

/// One kernel position's rows: `count` rows, the first at output offset `out_start` and
/// input offset `in_start`, each `len` outputs long, the next `out_step` / `in_step` on.
#[derive(Clone, Copy, Default)]
struct TapRows {
    count: usize,
    len: usize,
    out_start: usize,
    in_start: usize,
    out_step: usize,
    in_step: usize,
}

impl TapRows {
    /// `f(output_offset, input_offset, len)` per row.
    #[inline]
    fn each(&self, mut f: impl FnMut(usize, usize, usize)) {
        for r in 0..self.count {
            f(
                self.out_start + r * self.out_step,
                self.in_start + r * self.in_step,
                self.len,
            );
        }
    }
}

/// Every tap's rows, by tap number `kh * kernel_w + kw`.
fn taps(g: &ConvGeometry) -> Vec<TapRows> {
    (0..g.kernel[0] * g.kernel[1])
        .map(|tap| {
            let (kh, kw) = (tap / g.kernel[1], tap % g.kernel[1]);
            let rows = inside(g.out_h, g.in_h, g.stride[0], g.padding[0], kh);
            let (c0, c1) = inside(g.out_w, g.in_w, g.stride[1], g.padding[1], kw);
            if rows.0 >= rows.1 || c0 >= c1 {
                return TapRows::default();
            }
            let ih = rows.0 * g.stride[0] + kh - g.padding[0];
            let iw = c0 * g.stride[1] + kw - g.padding[1];
            TapRows {
                count: rows.1 - rows.0,
                len: c1 - c0,
                out_start: rows.0 * g.out_w + c0,
                in_start: ih * g.in_w + iw,
                out_step: g.out_w,
                in_step: g.stride[0] * g.in_w,
            }
        })
        .collect()
}

/// One index entry decoded: the other channel, its tap, its weight.
#[derive(Clone, Copy)]
struct Entry {
    channel: usize,
    tap: usize,
    weight: f32,
}

/// Each listed channel's entries, decoded, with their weights from `w` (0 without): the
/// listing's own channel is the output channel for rows, the input channel for cols.
fn decode(
    g: &ConvGeometry,
    w: Option<&[f32]>,
    list: IndexList,
    by_output: bool,
) -> Vec<Vec<Entry>> {
    let (l, taps) = (g.layout, g.layout.taps);
    (0..list.start.len().saturating_sub(1))
        .map(|own| {
            list.of(own)
                .iter()
                .map(|&e| {
                    let (channel, tap) = (e as usize / taps, e as usize % taps);
                    let (oc, ic) = if by_output {
                        (own, channel)
                    } else {
                        (channel, own)
                    };
                    Entry {
                        channel,
                        tap,
                        weight: w.map_or(0.0, |w| w[l.flat(oc, ic, tap)]),
                    }
                })
                .collect()
        })
        .collect()
}

/// Images per block for planes of `plane` values.
fn block_images(plane: usize, batch: usize) -> usize {
    (VALUES_PER_BLOCK / plane.max(1)).clamp(1, batch.max(1))
}

/// `y = conv(x, w)` over the active weights listed by output channel, each output plane
/// then handed to `finish` by the thread that summed its block, while the block is still
/// in cache.
pub fn forward(
    g: &ConvGeometry,
    x: &[f32],
    w: &[f32],
    rows: IndexList,
    finish: PlaneFinish,
) -> Vec<f32> {
    let (l, in_plane, out_plane) = (g.layout, g.in_h * g.in_w, g.out_h * g.out_w);
    let (taps, entries) = (taps(g), decode(g, Some(w), rows, true));
    let block = block_images(out_plane, g.batch);
    let image_len = l.out_channels * out_plane;
    parallel::zeroed_chunks(g.batch * image_len, block * image_len, |b, out| {
        let first = b * block;
        for (oc, list) in entries.iter().enumerate() {
            for e in list {
                let t = &taps[e.tap];
                for (k, n) in (first..first + out.len() / image_len).enumerate() {
                    let y = &mut out[(k * l.out_channels + oc) * out_plane..][..out_plane];
                    let image = &x[(n * l.in_channels + e.channel) * in_plane..][..in_plane];
                    t.each(|o, i, len| {
                        axpy_rows(e.weight, image, i, g.stride[1], &mut y[o..o + len])
                    });
                }
            }
        }
        let first_plane = first * l.out_channels;
        for (k, plane) in out.chunks_exact_mut(out_plane).enumerate() {
            finish(first_plane + k, plane);
        }
    })
}

/// `dx` of the convolution over the entries listed by input channel.
pub fn input_grad(g: &ConvGeometry, dy: &[f32], w: &[f32], cols: IndexList) -> Vec<f32> {
    let (l, in_plane, out_plane) = (g.layout, g.in_h * g.in_w, g.out_h * g.out_w);
    let (taps, entries) = (taps(g), decode(g, Some(w), cols, false));
    let block = block_images(out_plane, g.batch);
    let image_len = l.in_channels * in_plane;
    parallel::zeroed_chunks(g.batch * image_len, block * image_len, |b, dx| {
        let first = b * block;
        for (ic, list) in entries.iter().enumerate() {
            for e in list {
                let t = &taps[e.tap];
                for (k, n) in (first..first + dx.len() / image_len).enumerate() {
                    let d = &mut dx[(k * l.in_channels + ic) * in_plane..][..in_plane];
                    let grad = &dy[(n * l.out_channels + e.channel) * out_plane..][..out_plane];
                    t.each(|o, i, len| scatter_row(e.weight, &grad[o..o + len], d, i, g.stride[1]));
                }
            }
        }
    })
}

/// `dw` at the active positions (listed by output channel); zero elsewhere.
pub fn weight_grad(g: &ConvGeometry, x: &[f32], dy: &[f32], rows: IndexList) -> Vec<f32> {
    let (l, in_plane, out_plane) = (g.layout, g.in_h * g.in_w, g.out_h * g.out_w);
    let (taps, entries) = (taps(g), decode(g, None, rows, true));
    let block = block_images(out_plane, g.batch);
    let blocks: Vec<usize> = (0..g.batch.div_ceil(block)).collect();
    // Per block, every active weight's sum over the block's images, in index order.
    let per_block: Vec<Vec<f32>> = parallel::map(&blocks, |&b| {
        let images = b * block..((b + 1) * block).min(g.batch);
        let mut sums = Vec::new();
        for (oc, list) in entries.iter().enumerate() {
            for e in list {
                let t = &taps[e.tap];
                let mut lanes = Lanes::default();
                for n in images.clone() {
                    let image = &x[(n * l.in_channels + e.channel) * in_plane..][..in_plane];
                    let grad = &dy[(n * l.out_channels + oc) * out_plane..][..out_plane];
                    t.each(|o, i, len| lanes.dot(&grad[o..o + len], image, i, g.stride[1]));
                }
                sums.push(lanes.total());
            }
        }
        sums
    });
    let mut dw = vec![0.0f32; l.numel()];
    let active = entries
        .iter()
        .enumerate()
        .flat_map(|(oc, list)| list.iter().map(move |e| (oc, e)));
    for (j, (oc, e)) in active.enumerate() {
        let total: f64 = per_block.iter().map(|s| s[j] as f64).sum();
        dw[l.flat(oc, e.channel, e.tap)] = total as f32;
    }
    dw
}
