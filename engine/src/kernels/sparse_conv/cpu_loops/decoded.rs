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
//!
//! v10 builds the same terms and sums small planes whole (`cpu_loops/whole.rs`). v11 sums
//! the other planes as v7 does, but writes each with its first term instead of zeroing it
//! in a pass of its own first: in three alternated rounds of a ResNet-34 inference pass at
//! 99.9%, leaving the 32x32 and 16x16 planes unzeroed (timing only) took about 7% off the
//! pass, and starting them with their first term about 5%.

use super::spans::{Spans, kept};
use super::whole;
use super::{ConvGeometry, IndexList, LoopVersion, PlaneFinish, for_each_plane, split_entry};
use crate::kernels::parallel;
use crate::kernels::wide::wide_fn;
use std::mem::MaybeUninit;

/// An active weight as a destination plane meets it: `dest[write + j] += weight *
/// source_plane(channel)[read + j]` for `j < len`, the products cleared where
/// `masks[mask][mask_start + j]` is zero, if it has a mask. `tap` is the weight's tap
/// (v10 keeps a whole-plane mask per tap).
#[derive(Clone, Copy)]
pub(super) struct Term {
    pub(super) weight: f32,
    pub(super) channel: usize,
    pub(super) read: usize,
    pub(super) write: usize,
    pub(super) len: usize,
    pub(super) mask: Option<usize>,
    pub(super) mask_start: usize,
    pub(super) tap: usize,
}

/// How a call sums its destination planes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Planes {
    /// v7: each plane zeroed, then every term added over its run.
    Zeroed,
    /// v10: planes of 16 and 64 values summed whole (`whole.rs`); other sizes are not
    /// summed here.
    Whole,
    /// v11: each plane written by its first term (zeros around the run), then the others
    /// added; no zeroing pass.
    Started,
}

pub fn forward(
    g: &ConvGeometry,
    x: &[f32],
    w: &[f32],
    rows: IndexList,
    finish: PlaneFinish,
) -> Vec<f32> {
    summed(g, x, w, rows, Some(finish), Planes::Zeroed)
        .unwrap_or_else(|| super::forward_finished(LoopVersion::V6, g, x, w, rows, finish))
}

pub fn input_grad(g: &ConvGeometry, dy: &[f32], w: &[f32], cols: IndexList) -> Vec<f32> {
    summed(g, dy, w, cols, None, Planes::Zeroed)
        .unwrap_or_else(|| super::input_grad(LoopVersion::V6, g, dy, w, cols))
}

/// `forward`, the planes summed as `planes` says. `None` where the geometry has no runs
/// (v5's `Spans`) or `Planes::Whole` has no loop for its planes.
pub fn forward_planes(
    g: &ConvGeometry,
    x: &[f32],
    w: &[f32],
    rows: IndexList,
    finish: PlaneFinish,
    planes: Planes,
) -> Option<Vec<f32>> {
    summed(g, x, w, rows, Some(finish), planes)
}

/// `input_grad`, the planes summed as `planes` says; `None` as for `forward_planes`.
pub fn input_grad_planes(
    g: &ConvGeometry,
    dy: &[f32],
    w: &[f32],
    cols: IndexList,
    planes: Planes,
) -> Option<Vec<f32>> {
    summed(g, dy, w, cols, None, planes)
}

/// The forward pass (`finish` given: `source` = x, `list` by output channel, each output
/// plane finished) or the input gradient (`source` = dy, `list` by input channel). `None`
/// as for `forward_planes`.
fn summed(
    g: &ConvGeometry,
    source: &[f32],
    w: &[f32],
    list: IndexList,
    finish: Option<PlaneFinish>,
    sums: Planes,
) -> Option<Vec<f32>> {
    let (l, in_plane, out_plane) = (g.layout, g.in_h * g.in_w, g.out_h * g.out_w);
    let forward = finish.is_some();
    let (channels, source_channels, plane_len, source_plane) = if forward {
        (l.out_channels, l.in_channels, out_plane, in_plane)
    } else {
        (l.in_channels, l.out_channels, in_plane, out_plane)
    };
    // Checked before the runs and terms are built: where v10 has no whole-plane loop, the
    // next loop builds them again.
    let whole = sums == Planes::Whole;
    if whole && !whole::sums_whole(plane_len) {
        return None;
    }
    let spans = Spans::of(g)?;
    let terms = build_terms(g, w, list, &spans, forward);
    let sources = Sources {
        terms: &terms,
        start: list.start,
        channels,
        source,
        source_channels,
        source_plane,
        run_masks: &spans.masks,
    };
    let planes = g.batch * channels;
    if whole {
        return whole::planes(&sources, planes, plane_len, finish);
    }
    if sums == Planes::Zeroed {
        let plane = |slab: usize, out: &mut [f32]| {
            let (terms, image) = sources.of(slab);
            sum_terms(terms, image, source_plane, &spans.masks, out);
            if let Some(finish) = finish {
                finish(slab, out);
            }
        };
        return Some(for_each_plane(LoopVersion::V7, planes, plane_len, plane));
    }
    let plane = |slab: usize, out: &mut [MaybeUninit<f32>]| {
        let (terms, image) = sources.of(slab);
        let out = started_plane(terms, image, source_plane, &spans.masks, out);
        if let Some(finish) = finish {
            finish(slab, out);
        }
    };
    // SAFETY: `started_plane` writes every element of its plane.
    Some(unsafe { parallel::built_in_chunks(planes * plane_len, plane_len, plane) })
}

/// A destination plane, not yet written, summed as `Planes::Started` says: written by its
/// first term (zeros if it has none), then the other terms added. Returns the plane,
/// every element now written.
pub(super) fn started_plane<'a>(
    terms: &[Term],
    image: &[f32],
    source_plane: usize,
    masks: &[Vec<u32>],
    out: &'a mut [MaybeUninit<f32>],
) -> &'a mut [f32] {
    let rest = match terms.split_first() {
        Some((first, rest)) => {
            start_with(first, image, source_plane, masks, out);
            rest
        }
        None => {
            out.fill(MaybeUninit::new(0.0));
            terms
        }
    };
    // SAFETY: `start_with` (or the fill) wrote every element just above.
    let out = unsafe { parallel::assume_written(out) };
    sum_terms(rest, image, source_plane, masks, out);
    out
}

/// Each entry of `list` as a term: by output channel reading input planes (`forward`) or
/// by input channel reading output-gradient planes.
pub(super) fn build_terms(
    g: &ConvGeometry,
    w: &[f32],
    list: IndexList,
    spans: &Spans,
    forward: bool,
) -> Vec<Term> {
    let l = g.layout;
    let channels = if forward {
        l.out_channels
    } else {
        l.in_channels
    };
    (0..channels)
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
                tap,
            }
        })
        .collect()
}

/// One image's destination planes, not yet written, from `sources` (whose `source` is
/// that image's planes): summed whole if `whole` is given (v10), else each started by its
/// first term (v11). Returns them, every element written.
pub(super) fn image_planes<'o>(
    sources: &Sources,
    whole: Option<&whole::WholeSums>,
    plane_len: usize,
    out: &'o mut [MaybeUninit<f32>],
) -> &'o mut [f32] {
    match whole {
        Some((sum, tap_masks)) => {
            out.fill(MaybeUninit::new(0.0));
            // SAFETY: every element was written just above.
            let out = unsafe { parallel::assume_written(out) };
            sum(sources, tap_masks, 0, out);
            out
        }
        None => {
            for (c, plane) in out.chunks_exact_mut(plane_len).enumerate() {
                let (terms, image) = sources.of(c);
                started_plane(terms, image, sources.source_plane, sources.run_masks, plane);
            }
            // SAFETY: `started_plane` wrote every plane just above.
            unsafe { parallel::assume_written(out) }
        }
    }
}

/// What the destination planes of one call read: the terms, listed by destination
/// channel (`start`), and the source planes.
pub(super) struct Sources<'a> {
    pub(super) terms: &'a [Term],
    pub(super) start: &'a [i32],
    pub(super) channels: usize,
    pub(super) source: &'a [f32],
    pub(super) source_channels: usize,
    pub(super) source_plane: usize,
    pub(super) run_masks: &'a [Vec<u32>],
}

impl Sources<'_> {
    /// Destination plane `slab`'s terms and its image's source planes.
    #[inline(always)]
    pub(super) fn of(&self, slab: usize) -> (&[Term], &[f32]) {
        let (n, c) = (slab / self.channels, slab % self.channels);
        let range = self.start[c] as usize..self.start[c + 1] as usize;
        let image_len = self.source_channels * self.source_plane;
        (
            &self.terms[range],
            &self.source[n * image_len..][..image_len],
        )
    }
}

wide_fn! {
/// Every term of one destination plane `out`, reading `image`'s planes of `plane` values.
pub(super) fn sum_terms(terms: &[Term], image: &[f32], plane: usize, masks: &[Vec<u32>], out: &mut [f32]) {
    for t in terms {
        add_run(t, image, plane, masks, out);
    }
}
}

wide_fn! {
/// Writes a destination plane `out` with its first term, with no zeroing pass before: the
/// run takes `0.0 + product` (v1 adds the first product to a zero, which turns a `-0.0`
/// into `+0.0`), every other position `0.0`.
fn start_with(t: &Term, image: &[f32], plane: usize, masks: &[Vec<u32>], out: &mut [MaybeUninit<f32>]) {
    let (before, from_run) = out.split_at_mut(t.write);
    let (run, after) = from_run.split_at_mut(t.len);
    before.fill(MaybeUninit::new(0.0));
    after.fill(MaybeUninit::new(0.0));
    let from = &image[t.channel * plane..][t.read..t.read + t.len];
    let weight = t.weight;
    match t.mask {
        None => run
            .iter_mut()
            .zip(from)
            .for_each(|(o, &v)| {
                o.write(0.0 + weight * v);
            }),
        Some(m) => {
            let mask = &masks[m][t.mask_start..t.mask_start + t.len];
            run.iter_mut()
                .zip(from)
                .zip(mask)
                .for_each(|((o, &v), &k)| {
                    o.write(0.0 + kept(weight * v, k));
                });
        }
    }
}
}

/// One term over its run.
#[inline(always)]
pub(super) fn add_run(t: &Term, image: &[f32], plane: usize, masks: &[Vec<u32>], out: &mut [f32]) {
    let from = &image[t.channel * plane..][t.read..t.read + t.len];
    let dest = &mut out[t.write..t.write + t.len];
    let weight = t.weight;
    match t.mask {
        None => dest
            .iter_mut()
            .zip(from)
            .for_each(|(o, &v)| *o += weight * v),
        Some(m) => {
            let mask = &masks[m][t.mask_start..t.mask_start + t.len];
            dest.iter_mut()
                .zip(from)
                .zip(mask)
                .for_each(|((o, &v), &k)| *o += kept(weight * v, k));
        }
    }
}
