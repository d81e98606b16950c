//! A residual block's two stride-1 convolutions run image by image: v11's sums, with the
//! activation between them kept in a buffer of one image per thread.
//!
//! Run apart, each convolution is a pass over the whole batch: the first writes its output
//! (33 MB at ResNet-34's first stage, batch 128) to memory, the second reads it back, and
//! the block's residual, read a whole pass after the first convolution read the same
//! input, comes from memory again. At 99.9% the sums are small and these passes are most
//! of the time. Here one thread takes an image through both: the first convolution's
//! planes go to its buffer (256 KB at that stage, in its cache), the second reads them
//! there and writes the block's output, and the residual is the image the thread has just
//! read. Each plane is summed and finished exactly as v11 sums and finishes it over the
//! batch, so the output has the bits of the two convolutions apart.

use super::decoded::{Sources, Term, build_terms, started_plane};
use super::spans::Spans;
use super::{ConvGeometry, IndexList, PlaneFinish, whole};
use crate::kernels::parallel;
use std::cell::RefCell;
use std::mem::MaybeUninit;

/// One convolution's forward pass, ready to run on any image: its runs, terms and (for the
/// planes v10 sums whole) its per-tap masks.
struct ImageConv {
    spans: Spans,
    terms: Vec<Term>,
    start: Vec<i32>,
    whole: Option<(whole::WholeSum, Vec<Vec<u32>>)>,
    out_channels: usize,
    in_channels: usize,
    in_plane: usize,
    out_plane: usize,
}

impl ImageConv {
    /// `None` where `g` has no runs (v5's `Spans`: a stride other than 1).
    fn new(g: &ConvGeometry, w: &[f32], rows: IndexList) -> Option<Self> {
        let spans = Spans::of(g)?;
        let terms = build_terms(g, w, rows, &spans, true);
        let out_plane = g.out_h * g.out_w;
        let whole = whole::whole_sum(out_plane)
            .map(|sum| (sum, whole::tap_masks(&terms, &spans.masks, out_plane)));
        Some(Self {
            spans,
            terms,
            start: rows.start.to_vec(),
            whole,
            out_channels: g.layout.out_channels,
            in_channels: g.layout.in_channels,
            in_plane: g.in_h * g.in_w,
            out_plane,
        })
    }

    /// The output planes of one input `image` into `out`, each then handed to
    /// `finish(channel, plane)`; returns `out`, every element written.
    fn image<'o>(
        &self,
        image: &[f32],
        out: &'o mut [MaybeUninit<f32>],
        finish: impl Fn(usize, &mut [f32]),
    ) -> &'o mut [f32] {
        let sources = Sources {
            terms: &self.terms,
            start: &self.start,
            channels: self.out_channels,
            source: image,
            source_channels: self.in_channels,
            source_plane: self.in_plane,
            run_masks: &self.spans.masks,
        };
        let out = match &self.whole {
            Some((sum, tap_masks)) => {
                out.fill(MaybeUninit::new(0.0));
                // SAFETY: every element was written just above.
                let out = unsafe { parallel::assume_written(out) };
                sum(&sources, tap_masks, 0, out);
                out
            }
            None => {
                for (c, plane) in out.chunks_exact_mut(self.out_plane).enumerate() {
                    let (terms, image) = sources.of(c);
                    started_plane(terms, image, self.in_plane, &self.spans.masks, plane);
                }
                // SAFETY: `started_plane` wrote every plane just above.
                unsafe { parallel::assume_written(out) }
            }
        };
        for (c, plane) in out.chunks_exact_mut(self.out_plane).enumerate() {
            finish(c, plane);
        }
        out
    }
}

thread_local! {
    /// Each thread's first-convolution output of one image, reused from call to call.
    static MIDDLE: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Whether `pair_forward` runs `first` then `second`: both stride 1 with runs, the first's
/// output the second's input, no empty plane.
pub fn pair_runs(first: &ConvGeometry, second: &ConvGeometry) -> bool {
    let stride_1 = |g: &ConvGeometry| g.stride == [1, 1] && g.in_w == g.out_w;
    stride_1(first)
        && stride_1(second)
        && first.batch == second.batch
        && first.layout.out_channels == second.layout.in_channels
        && [first.out_h, first.out_w] == [second.in_h, second.in_w]
        && first.out_h * first.out_w > 0
        && second.out_h * second.out_w > 0
}

/// `conv2(conv1(x))`, `finish1` on each of the first's output planes and `finish2` on each
/// of the second's (plane numbers `n * C + c` over the batch, as `forward_finished` gives
/// them), image by image; `None` where not `pair_runs`.
#[allow(clippy::too_many_arguments)]
pub fn pair_forward(
    first: &ConvGeometry,
    x: &[f32],
    w1: &[f32],
    rows1: IndexList,
    finish1: PlaneFinish,
    second: &ConvGeometry,
    w2: &[f32],
    rows2: IndexList,
    finish2: PlaneFinish,
) -> Option<Vec<f32>> {
    if !pair_runs(first, second) {
        return None;
    }
    let conv1 = ImageConv::new(first, w1, rows1)?;
    let conv2 = ImageConv::new(second, w2, rows2)?;
    let in_image = conv1.in_channels * conv1.in_plane;
    let middle_image = conv1.out_channels * conv1.out_plane;
    let out_image = conv2.out_channels * conv2.out_plane;
    let image = |n: usize, out: &mut [MaybeUninit<f32>]| {
        MIDDLE.with_borrow_mut(|buffer| {
            if buffer.len() < middle_image {
                buffer.resize(middle_image, 0.0);
            }
            let buffer = &mut buffer[..middle_image];
            // SAFETY: `MaybeUninit<f32>` has `f32`'s layout, and `ImageConv::image` writes
            // only initialised values through it.
            let buffer = unsafe { &mut *(buffer as *mut [f32] as *mut [MaybeUninit<f32>]) };
            let x = &x[n * in_image..][..in_image];
            let middle = conv1.image(x, buffer, |c, plane| {
                finish1(n * conv1.out_channels + c, plane)
            });
            conv2.image(middle, out, |c, plane| {
                finish2(n * conv2.out_channels + c, plane)
            });
        });
    };
    // SAFETY: `ImageConv::image` writes every element of its image's planes.
    Some(unsafe { parallel::built_in_chunks(first.batch * out_image, out_image, image) })
}
