//! v5 of the sparse convolution's CPU loops: a tap's work over a plane as one contiguous run.
//!
//! In a stride-1 convolution whose input and output rows are equally wide (every 3x3 and
//! 1x1 convolution of a ResNet stage except the downsampling ones), output position `o`
//! reads input position `o + shift` under a given tap, the same shift for the whole plane.
//! So the tap's work is one run from its first valid output to its last, with the row ends
//! whose input falls outside the plane (one column per row for a 3x3 tap off the centre)
//! masked out, instead of v3's one short run per row: at ResNet-34's later stages rows are
//! 8 and 4 values long, and the per-row bookkeeping costs more than its multiply-adds.
//! Other geometries (the strided convolutions) run v3.
//!
//! A masked position adds `+0.0` (the product's bits cleared), which leaves every value
//! unchanged except a `-0.0`; no output here is ever `-0.0` (they start at `+0.0`, and a
//! sum is `-0.0` only when both terms are). So the forward pass and the input gradient
//! are v1's bits; the weight gradient sums each image in 8 f32 lanes and the images in f64
//! (v1's to rounding). No sum depends on the thread count.

use super::{
    ConvGeometry, IndexList, LoopVersion, PlaneFinish, active_weights, for_each_plane, placed,
    split_entry, summed_per_image,
};
use crate::kernels::wide::wide_fn;

/// One tap's run over a plane: outputs `out_start..out_start + len` read inputs
/// `in_start..in_start + len`; `mask` (an index into `Spans::masks`) marks the positions
/// whose input is outside the plane, if the run has any.
#[derive(Clone, Copy, Default)]
pub(super) struct Run {
    pub(super) out_start: usize,
    pub(super) in_start: usize,
    pub(super) len: usize,
    pub(super) mask: Option<usize>,
}

/// Every tap's run, by tap number, and the column masks they use: `masks[m][o]` is all
/// ones where output `o` has its input inside the plane, zero where not.
pub(super) struct Spans {
    runs: Vec<Run>,
    pub(super) masks: Vec<Vec<u32>>,
}

impl Spans {
    /// The runs of `g`, or `None` where a tap's inputs do not follow its outputs by one
    /// shift (a stride other than 1, rows of different widths).
    pub(super) fn of(g: &ConvGeometry) -> Option<Self> {
        if !Self::runs(g) {
            return None;
        }
        let (width, plane) = (g.out_w, g.out_h * g.out_w);
        let mut masks: Vec<Vec<u32>> = Vec::new();
        let mut column_masks = vec![None; g.kernel[1]];
        let runs = (0..g.kernel[0] * g.kernel[1])
            .map(|tap| {
                let (kh, kw) = (tap / g.kernel[1], tap % g.kernel[1]);
                let rows = super::inside(g.out_h, g.in_h, 1, g.padding[0], kh);
                let cols = super::inside(g.out_w, g.in_w, 1, g.padding[1], kw);
                if rows.0 >= rows.1 || cols.0 >= cols.1 {
                    return Run::default();
                }
                let out_start = rows.0 * width + cols.0;
                let out_end = (rows.1 - 1) * width + cols.1;
                // Input (row + kh - pad, col + kw - pad): the same offset for every output.
                let in_start = (rows.0 + kh - g.padding[0]) * g.in_w + cols.0 + kw - g.padding[1];
                let mask = (cols != (0, width)).then(|| {
                    *column_masks[kw].get_or_insert_with(|| {
                        masks.push(
                            (0..plane)
                                .map(|o| {
                                    let c = o % width;
                                    if (cols.0..cols.1).contains(&c) { !0 } else { 0 }
                                })
                                .collect(),
                        );
                        masks.len() - 1
                    })
                });
                Run {
                    out_start,
                    in_start,
                    len: out_end - out_start,
                    mask,
                }
            })
            .collect();
        Some(Self { runs, masks })
    }

    /// Whether `g` has runs: stride 1, input and output rows equally wide.
    pub(super) fn runs(g: &ConvGeometry) -> bool {
        g.stride == [1, 1] && g.in_w == g.out_w
    }

    /// Tap `tap`'s run.
    pub(super) fn tap(&self, tap: usize) -> Run {
        self.runs[tap]
    }

    /// The run of tap `tap` and its mask over the run's outputs, if it has one.
    fn run(&self, tap: usize) -> (Run, Option<&[u32]>) {
        let run = self.runs[tap];
        let mask = run
            .mask
            .map(|m| &self.masks[m][run.out_start..run.out_start + run.len]);
        (run, mask)
    }
}

/// `product` where `keep` is all ones, `+0.0` where it is zero.
#[inline(always)]
pub(super) fn kept(product: f32, keep: u32) -> f32 {
    f32::from_bits(product.to_bits() & keep)
}

wide_fn! {
/// `out[j] += weight * input[j]`, except where `mask[j]` (over the run's outputs) is zero.
fn axpy(weight: f32, input: &[f32], out: &mut [f32], mask: Option<&[u32]>) {
    let pairs = out.iter_mut().zip(input);
    match mask {
        None => pairs.for_each(|(o, &v)| *o += weight * v),
        Some(mask) => pairs
            .zip(mask)
            .for_each(|((o, &v), &m)| *o += kept(weight * v, m)),
    }
}
}

pub fn forward(
    g: &ConvGeometry,
    x: &[f32],
    w: &[f32],
    rows: IndexList,
    finish: PlaneFinish,
) -> Vec<f32> {
    accumulate(g, x, w, rows, Direction::Forward(finish))
        .unwrap_or_else(|| super::forward_finished(LoopVersion::V3, g, x, w, rows, finish))
}

pub fn input_grad(g: &ConvGeometry, dy: &[f32], w: &[f32], cols: IndexList) -> Vec<f32> {
    accumulate(g, dy, w, cols, Direction::Backward)
        .unwrap_or_else(|| super::input_grad(LoopVersion::V3, g, dy, w, cols))
}

/// Which way `accumulate` runs a tap: inputs into outputs (each output plane then
/// finished), or output gradients into input gradients.
#[derive(Clone, Copy)]
enum Direction<'a> {
    Forward(PlaneFinish<'a>),
    Backward,
}

/// The forward pass (`source` = x, `list` by output channel) or the input gradient
/// (`source` = dy, `list` by input channel): one loop, a tap's run read on one side and
/// added on the other. Each destination plane (image n, channel c) takes its entries in
/// the list's order, as v1 does. `None` where the geometry has no runs.
fn accumulate(
    g: &ConvGeometry,
    source: &[f32],
    w: &[f32],
    list: IndexList,
    direction: Direction,
) -> Option<Vec<f32>> {
    let spans = Spans::of(g)?;
    let (l, in_plane, out_plane) = (g.layout, g.in_h * g.in_w, g.out_h * g.out_w);
    let forward = matches!(direction, Direction::Forward(_));
    let (channels, source_channels, plane_len, source_plane) = if forward {
        (l.out_channels, l.in_channels, out_plane, in_plane)
    } else {
        (l.in_channels, l.out_channels, in_plane, out_plane)
    };
    let plane = |slab: usize, out: &mut [f32]| {
        let (n, c) = (slab / channels, slab % channels);
        for &entry in list.of(c) {
            let (other, kh, kw) = split_entry(g, entry);
            let tap = kh * g.kernel[1] + kw;
            let (run, mask) = spans.run(tap);
            let (oc, ic, read, write) = if forward {
                (c, other, run.in_start, run.out_start)
            } else {
                (other, c, run.out_start, run.in_start)
            };
            let from = &source[(n * source_channels + other) * source_plane..][..source_plane];
            axpy(
                w[l.flat(oc, ic, tap)],
                &from[read..read + run.len],
                &mut out[write..write + run.len],
                mask,
            );
        }
    };
    let finished = |slab: usize, out: &mut [f32]| {
        plane(slab, out);
        if let Direction::Forward(finish) = direction {
            finish(slab, out);
        }
    };
    Some(for_each_plane(
        LoopVersion::V5,
        g.batch * channels,
        plane_len,
        finished,
    ))
}

pub fn weight_grad(g: &ConvGeometry, x: &[f32], dy: &[f32], rows: IndexList) -> Vec<f32> {
    let Some(spans) = Spans::of(g) else {
        return super::weight_grad(LoopVersion::V3, g, x, dy, rows);
    };
    let (l, in_plane, out_plane) = (g.layout, g.in_h * g.in_w, g.out_h * g.out_w);
    let active = active_weights(g, rows);
    let sums = summed_per_image(g, &active, |n, (oc, entry)| {
        let (ic, kh, kw) = split_entry(g, entry);
        let (run, mask) = spans.run(kh * g.kernel[1] + kw);
        let image = &x[(n * l.in_channels + ic) * in_plane..][..in_plane];
        let dy_plane = &dy[(n * l.out_channels + oc) * out_plane..][..out_plane];
        dot(
            &dy_plane[run.out_start..run.out_start + run.len],
            &image[run.in_start..run.in_start + run.len],
            mask,
        )
    });
    placed(g, &active, sums)
}

wide_fn! {
/// `sum_j a[j] * b[j]` over the unmasked positions, in 8 f32 lanes.
fn dot(a: &[f32], b: &[f32], mask: Option<&[u32]>) -> f32 {
    masked_dot(a, b, mask)
}
}

/// `dot`'s sum, inlined into the loops that call it (here and v9's).
#[inline(always)]
pub(super) fn masked_dot(a: &[f32], b: &[f32], mask: Option<&[u32]>) -> f32 {
    let mut lanes = [0.0f32; 8];
    let mut rest = 0.0f32;
    let full = a.len() / 8 * 8;
    let keep = |j: usize| mask.map_or(!0, |m| m[j]);
    match mask {
        None => {
            for (p, q) in a[..full].chunks_exact(8).zip(b[..full].chunks_exact(8)) {
                for k in 0..8 {
                    lanes[k] += p[k] * q[k];
                }
            }
        }
        Some(m) => {
            let chunks = a[..full].chunks_exact(8).zip(b[..full].chunks_exact(8));
            for ((p, q), m) in chunks.zip(m[..full].chunks_exact(8)) {
                for k in 0..8 {
                    lanes[k] += kept(p[k] * q[k], m[k]);
                }
            }
        }
    }
    for j in full..a.len() {
        rest += kept(a[j] * b[j], keep(j));
    }
    lanes.iter().sum::<f32>() + rest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::sparse_conv::ConvGeometry;
    use crate::kernels::sparse_index::WeightLayout;

    fn geometry(side: usize, kernel: usize, stride: usize, padding: usize) -> ConvGeometry {
        let out = (side + 2 * padding - kernel) / stride + 1;
        ConvGeometry {
            batch: 1,
            in_h: side,
            in_w: side,
            out_h: out,
            out_w: out,
            kernel: [kernel, kernel],
            stride: [stride, stride],
            padding: [padding, padding],
            layout: WeightLayout::conv([2, 2, kernel, kernel]),
            weight_shape: [2, 2, kernel, kernel],
            nnz: 0,
            weight_grad: Default::default(),
        }
    }

    #[test]
    fn only_stride_one_convolutions_with_equal_rows_run_as_spans() {
        assert!(Spans::of(&geometry(8, 3, 1, 1)).is_some());
        assert!(Spans::of(&geometry(8, 1, 1, 0)).is_some());
        assert!(Spans::of(&geometry(8, 3, 2, 1)).is_none(), "strided");
        assert!(
            Spans::of(&geometry(8, 3, 1, 0)).is_none(),
            "narrower output rows"
        );
    }

    #[test]
    fn a_taps_run_reads_each_output_s_input_and_masks_the_rest() {
        // 3x3, padding 1, 4x4 planes: every tap off the centre column masks one column.
        let g = geometry(4, 3, 1, 1);
        let spans = Spans::of(&g).unwrap();
        for tap in 0..9 {
            let (kh, kw) = (tap / 3, tap % 3);
            let (run, mask) = spans.run(tap);
            assert_eq!(mask.is_some(), kw != 1, "tap {tap}");
            for j in 0..run.len {
                let o = run.out_start + j;
                let (oh, ow) = (o / 4, o % 4);
                let (ih, iw) = (oh as isize + kh as isize - 1, ow as isize + kw as isize - 1);
                let inside = (0..4).contains(&ih) && (0..4).contains(&iw);
                assert_eq!(
                    mask.is_none_or(|m| m[j] != 0),
                    inside,
                    "tap {tap}, output {o}"
                );
                if inside {
                    assert_eq!(
                        run.in_start + j,
                        (ih * 4 + iw) as usize,
                        "tap {tap}, output {o}"
                    );
                }
            }
            // Every output with its input inside the plane is in the run.
            let inside_count = (0..16)
                .filter(|o| {
                    let (ih, iw) = (
                        (o / 4) as isize + kh as isize - 1,
                        (o % 4) as isize + kw as isize - 1,
                    );
                    (0..4).contains(&ih) && (0..4).contains(&iw)
                })
                .count();
            let kept = (0..run.len)
                .filter(|&j| mask.is_none_or(|m| m[j] != 0))
                .count();
            assert_eq!(kept, inside_count, "tap {tap}");
        }
    }
}
