//! The sparse convolution's CPU loops over plain slices (Flex runs them, natively and in the
//! browser), in numbered versions kept side by side; `sparselab bench kernels --device flex`
//! times them against each other.
//! - **v1**, the first: one thread, every output position bounds-checked for every tap.
//! - **v2**: per tap, the output rows and columns whose input falls inside the plane are
//!   worked out once, so the inner loop runs over contiguous row segments that the compiler
//!   vectorises; threaded (rayon, natively) over output planes for the forward pass, input
//!   planes for the input gradient and active weights for the weight gradient. The
//!   browser's worker has one thread: there it runs the same loops serially.
//! - **v3**: v2's forward pass and input gradient, and the weight
//!   gradient summed image by image. v2 walks every image's planes once per active weight,
//!   so at ResNet-34's first stage (a 33 MB activation, about 165 weights per layer at
//!   99.9% with ERK) it streams gigabytes from memory; v3 takes one image at a time (its
//!   input and output-gradient planes stay in cache while all its weights are summed),
//!   threaded over images, and adds the images' partial sums in image order.
//! - **v4** (`cpu_loops/blocked.rs`): entries decoded and each tap's rows worked out once
//!   per call instead of once per plane, and small planes taken several images at a time.
//!   It did not beat v3 in a whole ResNet-34 step (2.34 and 2.43 s against 2.27 and 2.24 s,
//!   alternated, `bench train` at 99.9%, batch 128, 2-core machine, 2026-12-02): the
//!   bookkeeping it removes is not what a step waits on. Kept as the lab's measured answer.
//! - **v5** (`cpu_loops/spans.rs`): in stride-1 convolutions with equally
//!   wide input and output rows, a tap's work over a plane as one contiguous run, row ends
//!   outside the input masked, instead of one run per row; strided convolutions run v3.
//!   1,362 and 1,340 ms a ResNet-34 step against v3's 1,515 and 1,608 (alternated, same
//!   command and machine, 2026-12-02).
//! - **v6** (`cpu_loops/pairs.rs`): v5, and in stride-2 convolutions
//!   v3's loops with each row's input columns taken as pairs, so that they vectorise too.
//! - **v7** (`cpu_loops/decoded.rs`): v6, with each call's entries decoded once and a
//!   destination plane's entries summed in one AVX2-selected function. ResNet-34 at 99.9%,
//!   batch 128, inference: 182-208 ms against v6's 204-255 ms (four alternated runs, 2-core
//!   AMD EPYC, 2026-12-03; figures reproduce on that machine only).
//! - **v8**: v7, except that strided convolutions with output planes of
//!   at most `SMALL_STRIDED_PLANE` values (every downsampling layer of the CIFAR ResNets)
//!   run v4's loops. Their rows are 4 to 16 outputs long, short for v6's stride-2 pairs,
//!   and v4 works out each tap once per call and sums several images' small planes per
//!   entry. In the kernel lab's loop table (2026-12-04) v8 took the [512, 256, 3, 3]
//!   downsampling in 2.64 / 2.43 / 2.53 ms (forward / input gradient / weight gradient)
//!   against v7's 5.47 / 5.23 / 6.31; in `bench train` (ResNet-34, 99.9%, batch 128,
//!   alternated) v7 stepped in
//!   586 and 587 ms, v8 with the 8x8 and 4x4 planes in 565 and 547 ms, and v8 with 16x16
//!   ones too in 542 and 535 ms against 559 and 551 (2-core AMD EPYC, 2026-12-04).
//! - **v9** (`cpu_loops/dots.rs`): v8, with the stride-1 weight
//!   gradient's entries decoded once per call and an image's dots, every active weight's,
//!   summed in one AVX2-selected function, as v7 does for the other two passes.
//! - **v10** (`cpu_loops/whole.rs`): v9, with the stride-1 forward
//!   pass and input gradient on planes of 16 and 64 values summed a whole plane per term,
//!   a loop of constant length, instead of a run of odd length per term.
//! - **v11** (`cpu_loops/phased.rs`), the one Flex runs: v10, with the stride-2 forward
//!   pass run on each image's input split into even and odd rows and columns, where v10
//!   ran v4's strided rows through a scalar loop; and the other planes v10 leaves to v9
//!   (32x32 and 16x16) written by their first term instead of zeroed first
//!   (`decoded::Planes::Started`).
//!
//! Beside the versions, `cpu_loops/paired.rs` runs a residual block's two convolutions
//! (inference) image by image with v11's sums, the activation between them
//! kept in a per-thread buffer, with the bits of v11 run on each in turn.
//!
//! The forward pass and input gradient of every version add in v1's order, so they give
//! v1's bits; the weight gradients sum in 8 lanes (v2), per image or block in 8 lanes and
//! across them in f64 (v3 to v6), so they equal v1's to rounding. No sum depends on the
//! thread count: two runs give the same numbers.

mod blocked;
mod decoded;
mod dots;
mod paired;
mod pairs;
pub use paired::{pair_forward, pair_runs};
mod phased;
mod rows;
mod spans;
mod whole;

use decoded::Planes;
use rows::{Lanes, axpy_rows, for_each_row, for_each_tap, inside, scatter_row, split_entry};

use super::ConvGeometry;
use crate::kernels::parallel;
use crate::kernels::sparse_index::SparseIndex;

/// Which version of the loops to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoopVersion {
    V1,
    V2,
    V3,
    V4,
    V5,
    V6,
    V7,
    V8,
    V9,
    V10,
    V11,
}

impl LoopVersion {
    pub const ALL: [LoopVersion; 11] = [
        LoopVersion::V1,
        LoopVersion::V2,
        LoopVersion::V3,
        LoopVersion::V4,
        LoopVersion::V5,
        LoopVersion::V6,
        LoopVersion::V7,
        LoopVersion::V8,
        LoopVersion::V9,
        LoopVersion::V10,
        LoopVersion::V11,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LoopVersion::V1 => "v1 (per position)",
            LoopVersion::V2 => "v2 (row segments, threaded)",
            LoopVersion::V3 => "v3 (v2, weight gradient per image)",
            LoopVersion::V4 => "v4 (taps once, image blocks)",
            LoopVersion::V5 => "v5 (v3, a tap's plane as one run)",
            LoopVersion::V6 => "v6 (v5, stride-2 rows as pairs)",
            LoopVersion::V7 => "v7 (v6, entries decoded once per call)",
            LoopVersion::V8 => "v8 (v7, small strided planes in v4's blocks)",
            LoopVersion::V9 => "v9 (v8, weight gradient decoded once per call)",
            LoopVersion::V10 => "v10 (v9, small planes summed whole)",
            LoopVersion::V11 => "v11 (v10, stride-2 inputs split by phase)",
        }
    }
}

/// The largest output plane (in values) that v8 runs on v4's loops in a strided
/// convolution: 16x16, the output of the first downsampling layer on CIFAR.
const SMALL_STRIDED_PLANE: usize = 256;

/// The loops v8 runs for `g`: v4 for a strided convolution with small output planes, else
/// v7.
fn v8_loops(g: &ConvGeometry) -> LoopVersion {
    let strided = g.stride.iter().any(|&s| s > 1);
    if strided && g.out_h * g.out_w <= SMALL_STRIDED_PLANE {
        LoopVersion::V4
    } else {
        LoopVersion::V7
    }
}

/// One compressed list of the index: `start[c]..start[c + 1]` are channel c's entries.
#[derive(Clone, Copy)]
pub struct IndexList<'a> {
    pub start: &'a [i32],
    pub entries: &'a [i32],
}

impl<'a> IndexList<'a> {
    /// The index's entries by output channel (forward pass, weight gradient).
    pub fn rows(index: &'a SparseIndex) -> Self {
        Self {
            start: &index.row_start,
            entries: &index.row_entries,
        }
    }

    /// The index's entries by input channel (input gradient).
    pub fn cols(index: &'a SparseIndex) -> Self {
        Self {
            start: &index.col_start,
            entries: &index.col_entries,
        }
    }

    fn of(&self, channel: usize) -> &[i32] {
        &self.entries[self.start[channel] as usize..self.start[channel + 1] as usize]
    }
}

/// What the forward pass does to an output plane once its sums are complete, while the
/// plane is still in cache: `finish(plane_number, plane)` (plane number `n * C + c`).
pub type PlaneFinish<'a> = &'a (dyn Fn(usize, &mut [f32]) + Sync);

/// `y = conv(x, w)` over the active weights listed by output channel (`rows`).
pub fn forward(
    version: LoopVersion,
    g: &ConvGeometry,
    x: &[f32],
    w: &[f32],
    rows: IndexList,
) -> Vec<f32> {
    forward_finished(version, g, x, w, rows, &|_, _| {})
}

/// `forward`, each output plane then handed to `finish` by the thread that summed it.
pub fn forward_finished(
    version: LoopVersion,
    g: &ConvGeometry,
    x: &[f32],
    w: &[f32],
    rows: IndexList,
    finish: PlaneFinish,
) -> Vec<f32> {
    match version {
        LoopVersion::V4 => return blocked::forward(g, x, w, rows, finish),
        LoopVersion::V5 => return spans::forward(g, x, w, rows, finish),
        LoopVersion::V6 if !pairs::runs(g) => return spans::forward(g, x, w, rows, finish),
        LoopVersion::V7 => return decoded::forward(g, x, w, rows, finish),
        LoopVersion::V8 | LoopVersion::V9 => {
            return forward_finished(v8_loops(g), g, x, w, rows, finish);
        }
        LoopVersion::V10 => {
            return decoded::forward_planes(g, x, w, rows, finish, Planes::Whole)
                .unwrap_or_else(|| forward_finished(LoopVersion::V9, g, x, w, rows, finish));
        }
        LoopVersion::V11 => {
            return phased::forward(g, x, w, rows, finish)
                .or_else(|| decoded::forward_planes(g, x, w, rows, finish, Planes::Whole))
                .or_else(|| decoded::forward_planes(g, x, w, rows, finish, Planes::Started))
                .unwrap_or_else(|| forward_finished(LoopVersion::V9, g, x, w, rows, finish));
        }
        _ => {}
    }
    let (l, in_plane, out_plane) = (g.layout, g.in_h * g.in_w, g.out_h * g.out_w);
    let plane = |slab: usize, out: &mut [f32]| {
        let (n, oc) = (slab / l.out_channels, slab % l.out_channels);
        for &entry in rows.of(oc) {
            let (ic, kh, kw) = split_entry(g, entry);
            let weight = w[l.flat(oc, ic, kh * g.kernel[1] + kw)];
            let image = &x[(n * l.in_channels + ic) * in_plane..][..in_plane];
            match version {
                LoopVersion::V1 => for_each_tap(g, kh, kw, |o, i| out[o] += weight * image[i]),
                LoopVersion::V6 => for_each_row(g, kh, kw, |o, i, len| {
                    pairs::axpy(
                        weight,
                        &image[pairs::row_span(len, i)],
                        &mut out[o..o + len],
                    )
                }),
                _ => for_each_row(g, kh, kw, |o, i, len| {
                    axpy_rows(weight, image, i, g.stride[1], &mut out[o..o + len])
                }),
            }
        }
    };
    let finished = |slab: usize, out: &mut [f32]| {
        plane(slab, out);
        finish(slab, out);
    };
    for_each_plane(version, g.batch * l.out_channels, out_plane, finished)
}

/// `dx` of the convolution, gathered per input plane over the entries listed by input
/// channel (`cols`): no two threads write the same element.
pub fn input_grad(
    version: LoopVersion,
    g: &ConvGeometry,
    dy: &[f32],
    w: &[f32],
    cols: IndexList,
) -> Vec<f32> {
    match version {
        LoopVersion::V4 => return blocked::input_grad(g, dy, w, cols),
        LoopVersion::V5 => return spans::input_grad(g, dy, w, cols),
        LoopVersion::V6 if !pairs::runs(g) => return spans::input_grad(g, dy, w, cols),
        LoopVersion::V7 => return decoded::input_grad(g, dy, w, cols),
        LoopVersion::V8 | LoopVersion::V9 => return input_grad(v8_loops(g), g, dy, w, cols),
        LoopVersion::V10 => {
            return decoded::input_grad_planes(g, dy, w, cols, Planes::Whole)
                .unwrap_or_else(|| input_grad(LoopVersion::V9, g, dy, w, cols));
        }
        LoopVersion::V11 => {
            return decoded::input_grad_planes(g, dy, w, cols, Planes::Whole)
                .or_else(|| decoded::input_grad_planes(g, dy, w, cols, Planes::Started))
                .unwrap_or_else(|| input_grad(LoopVersion::V9, g, dy, w, cols));
        }
        _ => {}
    }
    let (l, in_plane, out_plane) = (g.layout, g.in_h * g.in_w, g.out_h * g.out_w);
    let plane = |slab: usize, dx: &mut [f32]| {
        let (n, ic) = (slab / l.in_channels, slab % l.in_channels);
        for &entry in cols.of(ic) {
            let (oc, kh, kw) = split_entry(g, entry);
            let weight = w[l.flat(oc, ic, kh * g.kernel[1] + kw)];
            let dy_plane = &dy[(n * l.out_channels + oc) * out_plane..][..out_plane];
            match version {
                LoopVersion::V1 => for_each_tap(g, kh, kw, |o, i| dx[i] += weight * dy_plane[o]),
                LoopVersion::V6 => for_each_row(g, kh, kw, |o, i, len| {
                    pairs::scatter(
                        weight,
                        &dy_plane[o..o + len],
                        &mut dx[pairs::row_span(len, i)],
                    )
                }),
                _ => for_each_row(g, kh, kw, |o, i, len| {
                    scatter_row(weight, &dy_plane[o..o + len], dx, i, g.stride[1])
                }),
            }
        }
    };
    for_each_plane(version, g.batch * l.in_channels, in_plane, plane)
}

/// `dw` at the active positions (listed by output channel, `rows`); zero elsewhere.
pub fn weight_grad(
    version: LoopVersion,
    g: &ConvGeometry,
    x: &[f32],
    dy: &[f32],
    rows: IndexList,
) -> Vec<f32> {
    match version {
        LoopVersion::V4 => return blocked::weight_grad(g, x, dy, rows),
        LoopVersion::V5 => return spans::weight_grad(g, x, dy, rows),
        LoopVersion::V6 if !pairs::runs(g) => return spans::weight_grad(g, x, dy, rows),
        // v7 changes the forward and input-gradient loops only.
        LoopVersion::V7 => return weight_grad(LoopVersion::V6, g, x, dy, rows),
        LoopVersion::V8 => return weight_grad(v8_loops(g), g, x, dy, rows),
        // v10 and v11 change the forward and input-gradient loops only.
        LoopVersion::V10 | LoopVersion::V11 => return weight_grad(LoopVersion::V9, g, x, dy, rows),
        LoopVersion::V9 => {
            return match v8_loops(g) {
                LoopVersion::V7 => dots::weight_grad(g, x, dy, rows),
                strided => weight_grad(strided, g, x, dy, rows),
            };
        }
        _ => {}
    }
    let active = active_weights(g, rows);
    let sums: Vec<f32> = match version {
        LoopVersion::V1 => active
            .iter()
            .map(|&a| weight_sum(version, g, x, dy, a, 0..g.batch))
            .collect(),
        LoopVersion::V2 => {
            parallel::map(&active, |&a| weight_sum(version, g, x, dy, a, 0..g.batch))
        }
        _ => summed_per_image(g, &active, |n, a| {
            weight_sum(version, g, x, dy, a, n..n + 1)
        }),
    };
    placed(g, &active, sums)
}

/// The index's active weights as (output channel, entry), in index order.
fn active_weights(g: &ConvGeometry, rows: IndexList) -> Vec<(usize, i32)> {
    (0..g.layout.out_channels)
        .flat_map(|oc| rows.of(oc).iter().map(move |&e| (oc, e)))
        .collect()
}

/// Every active weight's gradient as v3, v5 and v6 sum it: `image_sum(n, weight)` over image n,
/// threaded over images, and each weight's image sums added in image order, in f64.
fn summed_per_image(
    g: &ConvGeometry,
    active: &[(usize, i32)],
    image_sum: impl Fn(usize, (usize, i32)) -> f32 + Sync + Send,
) -> Vec<f32> {
    added_per_image(g, active.len(), |n, sums| {
        for (s, &a) in sums.iter_mut().zip(active) {
            *s = image_sum(n, a);
        }
    })
}

/// `weights` gradients, image n's sums filled in by `image_sums(n, sums)`, threaded over
/// images, and each weight's image sums added in image order, in f64.
fn added_per_image(
    g: &ConvGeometry,
    weights: usize,
    image_sums: impl Fn(usize, &mut [f32]) + Sync + Send,
) -> Vec<f32> {
    let images: Vec<usize> = (0..g.batch).collect();
    let per_image: Vec<Vec<f32>> = parallel::map(&images, |&n| {
        let mut sums = vec![0.0f32; weights];
        image_sums(n, &mut sums);
        sums
    });
    (0..weights)
        .map(|j| per_image.iter().map(|s| s[j] as f64).sum::<f64>() as f32)
        .collect()
}

/// The weight-shaped gradient: `sums` at the active weights' positions, zero elsewhere.
fn placed(g: &ConvGeometry, active: &[(usize, i32)], sums: Vec<f32>) -> Vec<f32> {
    let l = g.layout;
    let mut dw = vec![0.0f32; l.numel()];
    for (&(oc, entry), s) in active.iter().zip(sums) {
        let (ic, kh, kw) = split_entry(g, entry);
        dw[l.flat(oc, ic, kh * g.kernel[1] + kw)] = s;
    }
    dw
}

/// One active weight's gradient summed over `images`: `sum dy[n, oc] * x[n, ic]` under its
/// tap.
fn weight_sum(
    version: LoopVersion,
    g: &ConvGeometry,
    x: &[f32],
    dy: &[f32],
    (oc, entry): (usize, i32),
    images: std::ops::Range<usize>,
) -> f32 {
    let (l, in_plane, out_plane) = (g.layout, g.in_h * g.in_w, g.out_h * g.out_w);
    let (ic, kh, kw) = split_entry(g, entry);
    let mut lanes = Lanes::default();
    let mut acc = 0.0f32;
    for n in images {
        let image = &x[(n * l.in_channels + ic) * in_plane..][..in_plane];
        let dy_plane = &dy[(n * l.out_channels + oc) * out_plane..][..out_plane];
        match version {
            LoopVersion::V1 => for_each_tap(g, kh, kw, |o, i| acc += dy_plane[o] * image[i]),
            LoopVersion::V6 => for_each_row(g, kh, kw, |o, i, len| {
                pairs::dot(
                    &mut lanes.lanes,
                    &dy_plane[o..o + len],
                    &image[pairs::row_span(len, i)],
                )
            }),
            _ => for_each_row(g, kh, kw, |o, i, len| {
                lanes.dot(&dy_plane[o..o + len], image, i, g.stride[1])
            }),
        }
    }
    acc + lanes.total()
}

/// A new buffer of `planes` zeroed planes of `plane_len`, each filled by
/// `f(plane_number, plane)`: serially in v1, by `parallel::zeroed_chunks` after.
fn for_each_plane(
    version: LoopVersion,
    planes: usize,
    plane_len: usize,
    f: impl Fn(usize, &mut [f32]) + Sync + Send,
) -> Vec<f32> {
    match version {
        LoopVersion::V1 => {
            let mut out = vec![0.0f32; planes * plane_len];
            if plane_len > 0 {
                for (i, p) in out.chunks_mut(plane_len).enumerate() {
                    f(i, p);
                }
            }
            out
        }
        _ => parallel::zeroed_chunks(planes * plane_len, plane_len, f),
    }
}

#[cfg(test)]
mod tests;
