//! v10 of the sparse convolution's CPU loops: v9, except that in stride-1 convolutions
//! whose destination planes are small (4x4 and 8x8 on CIFAR) each of v7's terms runs
//! over the whole destination plane, with a mask per tap, instead of over its run.
//! (Planes of 16x16 summed whole were slower than v9: more masked work per term.)
//!
//! At 99.9% most of ResNet-34's active weights sit in its last two stages, whose planes
//! hold 16 and 64 values. A term's run there is 11 to 16 (or 55 to 64) values long, an
//! odd length each time, so every term ended in a scalar tail and the loop's length was
//! known only at run time. Over the whole plane the length is a constant: the loop has no
//! tail and is fully vectorised. The positions outside the run read a neighbouring
//! position or plane of the same image and are masked to `+0.0`, as v5 masks a row's
//! ends; a term whose whole-plane window would leave the image (the first or last source
//! plane) runs over its run as in v7.
//!
//! Adding `+0.0` leaves every destination value unchanged (none is ever `-0.0`, see v5),
//! and each destination still takes its terms in the list's order: the forward pass and
//! the input gradient are v1's bits.

use super::PlaneFinish;
use super::decoded::{Sources, Term, add_run};
use super::spans::kept;
use crate::kernels::parallel;
use crate::kernels::wide::wide_fn;

/// Values per piece of work: small planes are taken this many values at a time (64 planes
/// of 4x4, 16 of 8x8), so that the per-piece costs (the zeroing call, the
/// AVX2 check, the thread pool's split) are paid once per 4 KB rather than once per
/// plane. At 4x4 that per-plane cost was about what the plane's sums cost.
const PIECE_VALUES: usize = 1024;

/// Sums the destination planes `first..` that fill `out`: `(sources, tap_masks, first,
/// out)`.
pub(super) type WholeSum = fn(&Sources, &[Vec<u32>], usize, &mut [f32]);

/// A whole-plane sum with the per-tap masks it reads (`tap_masks`).
pub(super) type WholeSums = (WholeSum, Vec<Vec<u32>>);

/// The whole-plane sum of `terms` (their runs' masks in `run_masks`) on destination planes
/// of `plane_len` values, where v10 has one.
pub(super) fn whole_sums(
    terms: &[Term],
    run_masks: &[Vec<u32>],
    plane_len: usize,
) -> Option<WholeSums> {
    whole_sum(plane_len).map(|sum| (sum, tap_masks(terms, run_masks, plane_len)))
}

/// Whether v10 sums destination planes of `plane_len` values whole.
pub(super) fn sums_whole(plane_len: usize) -> bool {
    whole_sum(plane_len).is_some()
}

pub(super) fn whole_sum(plane_len: usize) -> Option<WholeSum> {
    match plane_len {
        16 => Some(sum_16),
        64 => Some(sum_64),
        _ => None,
    }
}

/// Every destination plane of `plane_len` values, summed whole and each then handed to
/// `finish` (if any) by the thread that summed it; `None` where v10 has no whole-plane
/// loop for planes of that size.
pub(super) fn planes(
    sources: &Sources,
    planes: usize,
    plane_len: usize,
    finish: Option<PlaneFinish>,
) -> Option<Vec<f32>> {
    let (sum, masks) = whole_sums(sources.terms, sources.run_masks, plane_len)?;
    let per_piece = PIECE_VALUES / plane_len;
    let piece = |i: usize, out: &mut [f32]| {
        let first = i * per_piece;
        sum(sources, &masks, first, out);
        if let Some(finish) = finish {
            for (k, plane) in out.chunks_exact_mut(plane_len).enumerate() {
                finish(first + k, plane);
            }
        }
    };
    Some(parallel::zeroed_chunks(
        planes * plane_len,
        per_piece * plane_len,
        piece,
    ))
}

/// Per tap, the mask over a whole destination plane of `plane_len` values: all ones at
/// the positions of the tap's run that its run mask (in `run_masks`) keeps, zero
/// elsewhere. Every term of a tap has the same run, so the first one met stands for all.
fn tap_masks(terms: &[Term], run_masks: &[Vec<u32>], plane_len: usize) -> Vec<Vec<u32>> {
    let taps = terms.iter().map(|t| t.tap + 1).max().unwrap_or(0);
    let mut masks = vec![Vec::new(); taps];
    for t in terms {
        if !masks[t.tap].is_empty() {
            continue;
        }
        masks[t.tap] = (0..plane_len)
            .map(|j| match j.checked_sub(t.write) {
                Some(k) if k < t.len => t.mask.map_or(!0, |m| run_masks[m][t.mask_start + k]),
                _ => 0,
            })
            .collect();
    }
    masks
}

/// Destination planes `first..` of `P` values each, filling `out`.
#[inline(always)]
fn whole_planes<const P: usize>(
    sources: &Sources,
    tap_masks: &[Vec<u32>],
    first: usize,
    out: &mut [f32],
) {
    for (k, plane) in out.chunks_exact_mut(P).enumerate() {
        let (terms, image) = sources.of(first + k);
        let plane: &mut [f32; P] = plane.try_into().expect("a plane of P values");
        whole_plane(terms, image, sources, tap_masks, plane);
    }
}

/// Every term of one destination plane `out`, reading `image`'s source planes.
#[inline(always)]
fn whole_plane<const P: usize>(
    terms: &[Term],
    image: &[f32],
    sources: &Sources,
    tap_masks: &[Vec<u32>],
    out: &mut [f32; P],
) {
    let plane = sources.source_plane;
    for t in terms {
        // The source index of destination position 0 under this term.
        let window = (t.channel * plane + t.read)
            .checked_sub(t.write)
            .and_then(|origin| image.get(origin..origin + P));
        let Some(from) = window else {
            add_run(t, image, plane, sources.run_masks, out);
            continue;
        };
        let from: &[f32; P] = from.try_into().expect("a window of P values");
        let keep: &[u32; P] = tap_masks[t.tap][..]
            .try_into()
            .expect("a tap mask of P values");
        let weight = t.weight;
        for j in 0..P {
            out[j] += kept(weight * from[j], keep[j]);
        }
    }
}

wide_fn! {
fn sum_16(sources: &Sources, tap_masks: &[Vec<u32>], first: usize, out: &mut [f32]) {
    whole_planes::<16>(sources, tap_masks, first, out)
}
}

wide_fn! {
fn sum_64(sources: &Sources, tap_masks: &[Vec<u32>], first: usize, out: &mut [f32]) {
    whole_planes::<64>(sources, tap_masks, first, out)
}
}
