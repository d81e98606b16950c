//! v11 of the sparse convolution's CPU loops: v10, with the stride-2 forward pass run on
//! an input split by phase.
//!
//! A stride-2 convolution reads every other input column. v4 (which v8 to v10 run for the
//! downsampling layers) does it one output row at a time, 4 to 16 values, through a loop
//! whose stride is known only at run time: scalar code, and in a ResNet-34 inference pass
//! at 99.9% those few layers took about a tenth of the time. Here each thread first
//! copies one image's input planes into four planes per channel, its even and odd rows
//! and columns, each of the output plane's size. On those planes a tap reads one plane
//! shifted by at most one row and column, which is a stride-1 convolution's tap: the
//! same runs (v5), terms (v7) and whole-plane sums (v10) apply. Only the phase planes some
//! active weight reads are copied.
//!
//! Each output takes its terms in the list's order with v7's and v10's expressions, so the
//! forward pass is v1's bits. The strided layers' input gradient and every weight gradient
//! are v10's. Output planes of sizes v10 does not sum whole (16x16 on CIFAR) are written
//! by their first term instead of zeroed first, as v11 does for stride-1 planes
//! (`decoded::Planes::Started`).

use super::decoded::{Sources, Term, image_planes};
use super::spans::Spans;
use super::whole::WholeSums;
use super::{ConvGeometry, IndexList, PlaneFinish, split_entry, whole};
use crate::kernels::parallel;
use std::cell::RefCell;
use std::mem::MaybeUninit;

/// Where tap offset `d = k - padding` (input row `2 * o + d`) reads among the phase
/// planes: the phase (`d` even or odd) and the shift in output rows, if it is one a
/// stride-1 3x3 tap has (-1, 0 or 1).
fn phase_and_shift(d: isize) -> Option<(usize, isize)> {
    let shift = d.div_euclid(2);
    (-1..=1)
        .contains(&shift)
        .then_some((d.rem_euclid(2) as usize, shift))
}

/// The stride-1 geometry whose runs a tap takes on the phase planes: 3x3, padding 1,
/// input and output of the output plane's size.
fn shifted_geometry(g: &ConvGeometry) -> ConvGeometry {
    ConvGeometry {
        in_h: g.out_h,
        in_w: g.out_w,
        kernel: [3, 3],
        stride: [1, 1],
        padding: [1, 1],
        ..*g
    }
}

/// Whether v11 runs `g`: stride 2 with an input exactly twice the output on each side,
/// every tap reading within one row and column of its phase plane.
pub(super) fn runs(g: &ConvGeometry) -> bool {
    let fits =
        |k: usize, pad: usize| (0..k).all(|t| phase_and_shift(t as isize - pad as isize).is_some());
    g.stride == [2, 2]
        && g.in_h == 2 * g.out_h
        && g.in_w == 2 * g.out_w
        && g.out_h * g.out_w > 0
        && fits(g.kernel[0], g.padding[0])
        && fits(g.kernel[1], g.padding[1])
}

thread_local! {
    /// Each thread's phase planes of one image, reused from call to call: planes no weight
    /// reads keep stale values, which only masked positions of a whole-plane sum touch.
    static PHASE_PLANES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `y = conv(x, w)` for a stride-2 `g` (`runs`), each output plane then handed to
/// `finish`; `None` where v11 does not run `g`.
pub(super) fn forward(
    g: &ConvGeometry,
    x: &[f32],
    w: &[f32],
    rows: IndexList,
    finish: PlaneFinish,
) -> Option<Vec<f32>> {
    let conv = PhasedConv::new(g, w, rows)?;
    let (in_image, out_image) = (conv.in_image(), conv.out_image());
    let channels = g.layout.out_channels;
    let out_plane = g.out_h * g.out_w;
    let image = |n: usize, out: &mut [MaybeUninit<f32>]| {
        let out = conv.planes(&x[n * in_image..][..in_image], out);
        for (c, plane) in out.chunks_exact_mut(out_plane).enumerate() {
            finish(n * channels + c, plane);
        }
    };
    // SAFETY: `PhasedConv::planes` writes every element of its image's planes.
    Some(unsafe { parallel::built_in_chunks(g.batch * out_image, out_image, image) })
}

/// A stride-2 convolution's forward pass (`runs`), ready to run on any image: its terms
/// on the phase planes, the phase planes they read, and their sums' runs and masks.
pub(super) struct PhasedConv {
    g: ConvGeometry,
    spans: Spans,
    terms: Vec<Term>,
    start: Vec<i32>,
    read: Vec<bool>,
    whole: Option<WholeSums>,
}

impl PhasedConv {
    /// `None` where v11 does not split `g` by phase.
    pub(super) fn new(g: &ConvGeometry, w: &[f32], rows: IndexList) -> Option<Self> {
        if !runs(g) {
            return None;
        }
        let spans = Spans::of(&shifted_geometry(g)).expect("a stride-1 geometry has runs");
        let (l, out_plane) = (g.layout, g.out_h * g.out_w);
        let mut read = vec![false; l.in_channels * 4];
        let terms: Vec<Term> = (0..l.out_channels)
            .flat_map(|oc| rows.of(oc).iter().map(move |&entry| (oc, entry)))
            .map(|(oc, entry)| {
                let (ic, kh, kw) = split_entry(g, entry);
                let (ph, sh) = phase_and_shift(kh as isize - g.padding[0] as isize)
                    .expect("checked by `runs`");
                let (pw, sw) = phase_and_shift(kw as isize - g.padding[1] as isize)
                    .expect("checked by `runs`");
                let channel = ic * 4 + ph * 2 + pw;
                read[channel] = true;
                let tap = ((sh + 1) * 3 + sw + 1) as usize;
                let run = spans.tap(tap);
                Term {
                    weight: w[l.flat(oc, ic, kh * g.kernel[1] + kw)],
                    channel,
                    read: run.in_start,
                    write: run.out_start,
                    len: run.len,
                    mask: run.mask,
                    mask_start: run.out_start,
                    tap,
                }
            })
            .collect();
        let whole = whole::whole_sums(&terms, &spans.masks, out_plane);
        Some(Self {
            g: *g,
            spans,
            terms,
            start: rows.start.to_vec(),
            read,
            whole,
        })
    }

    pub(super) fn in_image(&self) -> usize {
        self.g.layout.in_channels * self.g.in_h * self.g.in_w
    }

    pub(super) fn out_plane(&self) -> usize {
        self.g.out_h * self.g.out_w
    }

    pub(super) fn out_image(&self) -> usize {
        self.g.layout.out_channels * self.out_plane()
    }

    /// The output planes of one input `image`, summed into `out`; returns `out`, every
    /// element written.
    pub(super) fn planes<'o>(
        &self,
        image: &[f32],
        out: &'o mut [MaybeUninit<f32>],
    ) -> &'o mut [f32] {
        let (l, out_plane) = (self.g.layout, self.g.out_h * self.g.out_w);
        let phased_channels = l.in_channels * 4;
        PHASE_PLANES.with_borrow_mut(|planes| {
            if planes.len() < phased_channels * out_plane {
                planes.resize(phased_channels * out_plane, 0.0);
            }
            let planes = &mut planes[..phased_channels * out_plane];
            split_phases(&self.g, image, &self.read, planes);
            let sources = Sources {
                terms: &self.terms,
                start: &self.start,
                channels: l.out_channels,
                source: planes,
                source_channels: phased_channels,
                source_plane: out_plane,
                run_masks: &self.spans.masks,
            };
            image_planes(&sources, self.whole.as_ref(), out_plane, out)
        })
    }
}

/// The phase planes of one image that some weight reads (`read[c * 4 + phase]`, phase
/// `row_parity * 2 + column_parity`): plane `(c, ph, pw)` holds input `(2i + ph, 2j +
/// pw)` of channel `c` at `(i, j)`.
fn split_phases(g: &ConvGeometry, image: &[f32], read: &[bool], planes: &mut [f32]) {
    let (out_w, in_plane) = (g.out_w, g.in_h * g.in_w);
    let out_plane = g.out_h * out_w;
    for (c, input) in image.chunks_exact(in_plane).enumerate() {
        for ph in 0..2 {
            let [even, odd] = [0, 1].map(|pw| read[c * 4 + ph * 2 + pw]);
            if !(even || odd) {
                continue;
            }
            let base = (c * 4 + ph * 2) * out_plane;
            let (evens, odds) = planes[base..][..2 * out_plane].split_at_mut(out_plane);
            let rows = evens
                .chunks_exact_mut(out_w)
                .zip(odds.chunks_exact_mut(out_w));
            for (i, (even, odd)) in rows.enumerate() {
                let row = &input[(2 * i + ph) * g.in_w..][..g.in_w];
                for ((e, o), pair) in even.iter_mut().zip(odd).zip(row.chunks_exact(2)) {
                    *e = pair[0];
                    *o = pair[1];
                }
            }
        }
    }
}
