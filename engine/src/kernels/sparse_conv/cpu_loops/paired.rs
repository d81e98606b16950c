//! A residual block's two convolutions run image by image: v11's sums, with the
//! activation between them kept in a buffer of one image per thread. The first may be
//! stride 1 or a downsampling stride 2 (split by phase per image, as v11 does); the
//! second is stride 1.
//!
//! Run apart, each convolution is a pass over the whole batch: the first writes its output
//! (33 MB at ResNet-34's first stage, batch 128) to memory, the second reads it back, and
//! the block's residual, read a whole pass after the first convolution read the same
//! input, comes from memory again. At 99.9% the sums are small and these passes are most
//! of the time. Here one thread takes an image through both: the first convolution's
//! planes go to its buffer (256 KB at that stage, in its cache), the second reads them
//! there and writes the block's output, and (in a block without a downsampling shortcut)
//! the residual is the image the thread has just read. Each plane is summed and finished
//! as v11 sums and finishes it over the batch, so the output has the bits of the two
//! convolutions run apart by v11.

use super::decoded::{Sources, Term, build_terms, image_planes};
use super::phased::{self, PhasedConv};
use super::spans::Spans;
use super::whole::{self, WholeSums};
use super::{ConvGeometry, IndexList, PlaneFinish};
use crate::kernels::parallel;
use std::cell::RefCell;
use std::mem::MaybeUninit;

/// A stride-1 convolution's forward pass, ready to run on any image: its runs, terms and
/// (for the planes v10 sums whole) its per-tap masks.
struct RunsConv {
    spans: Spans,
    terms: Vec<Term>,
    start: Vec<i32>,
    whole: Option<WholeSums>,
    g: ConvGeometry,
}

impl RunsConv {
    /// `None` where `g` has no runs (v5's `Spans`: a stride other than 1).
    fn new(g: &ConvGeometry, w: &[f32], rows: IndexList) -> Option<Self> {
        let spans = Spans::of(g)?;
        let terms = build_terms(g, w, rows, &spans, true);
        let whole = whole::whole_sums(&terms, &spans.masks, g.out_h * g.out_w);
        Some(Self {
            spans,
            terms,
            start: rows.start.to_vec(),
            whole,
            g: *g,
        })
    }

    /// The output planes of one input `image`, summed into `out`; returns `out`, every
    /// element written.
    fn planes<'o>(&self, image: &[f32], out: &'o mut [MaybeUninit<f32>]) -> &'o mut [f32] {
        let (l, out_plane) = (self.g.layout, self.g.out_h * self.g.out_w);
        let sources = Sources {
            terms: &self.terms,
            start: &self.start,
            channels: l.out_channels,
            source: image,
            source_channels: l.in_channels,
            source_plane: self.g.in_h * self.g.in_w,
            run_masks: &self.spans.masks,
        };
        image_planes(&sources, self.whole.as_ref(), out_plane, out)
    }
}

/// A pair's convolution as v11 runs it on one image: by runs (stride 1) or on the input's
/// phase planes (stride 2).
enum ImageConv {
    Runs(RunsConv),
    Phased(PhasedConv),
}

impl ImageConv {
    fn new(g: &ConvGeometry, w: &[f32], rows: IndexList) -> Option<Self> {
        match PhasedConv::new(g, w, rows) {
            Some(phased) => Some(Self::Phased(phased)),
            None => RunsConv::new(g, w, rows).map(Self::Runs),
        }
    }

    /// The output planes of one input `image` into `out`, each then handed to
    /// `finish(channel, plane)`; returns `out`, every element written.
    fn image<'o>(
        &self,
        image: &[f32],
        out: &'o mut [MaybeUninit<f32>],
        finish: impl Fn(usize, &mut [f32]),
    ) -> &'o mut [f32] {
        let (out, plane_len) = match self {
            Self::Runs(conv) => (conv.planes(image, out), conv.g.out_h * conv.g.out_w),
            Self::Phased(conv) => (conv.planes(image, out), conv.out_plane()),
        };
        for (c, plane) in out.chunks_exact_mut(plane_len).enumerate() {
            finish(c, plane);
        }
        out
    }
}

thread_local! {
    /// Each thread's first-convolution output of one image, reused from call to call.
    static MIDDLE: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Whether `pair_forward` runs `first` then `second`: the first stride 1 with runs or
/// stride 2 split by phase (v11's loops), the second stride 1 with runs, the first's
/// output the second's input, no empty plane.
pub fn pair_runs(first: &ConvGeometry, second: &ConvGeometry) -> bool {
    (Spans::runs(first) || phased::runs(first))
        && Spans::runs(second)
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
    let in_image = first.layout.in_channels * first.in_h * first.in_w;
    let (middle_channels, out_channels) = (first.layout.out_channels, second.layout.out_channels);
    let middle_image = middle_channels * first.out_h * first.out_w;
    let out_image = out_channels * second.out_h * second.out_w;
    let image = |n: usize, out: &mut [MaybeUninit<f32>]| {
        // Taken out of the thread-local while in use, not borrowed: a finish that ran
        // other work on this thread (a nested parallel loop) could start another image's
        // pair here, which then takes a buffer of its own.
        let mut held = MIDDLE.take();
        if held.len() < middle_image {
            held.resize(middle_image, 0.0);
        }
        let buffer = &mut held[..middle_image];
        // SAFETY: `MaybeUninit<f32>` has `f32`'s layout, and `ImageConv::image` writes only
        // initialised values through it.
        let buffer = unsafe { &mut *(buffer as *mut [f32] as *mut [MaybeUninit<f32>]) };
        let x = &x[n * in_image..][..in_image];
        let middle = conv1.image(x, buffer, |c, plane| {
            finish1(n * middle_channels + c, plane)
        });
        conv2.image(middle, out, |c, plane| finish2(n * out_channels + c, plane));
        MIDDLE.set(held);
    };
    // SAFETY: `ImageConv::image` writes every element of its image's planes.
    Some(unsafe { parallel::built_in_chunks(first.batch * out_image, out_image, image) })
}
