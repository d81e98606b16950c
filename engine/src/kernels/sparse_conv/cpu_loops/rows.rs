//! How v1 to v3 walk a plane (v4 to v7 build on it): an index entry's channel and tap,
//! the output positions or row segments under a tap whose inputs lie inside the plane, the
//! row loops over those segments, and the lanes a weight gradient sums into.

use super::ConvGeometry;

/// (ic or oc, kh, kw) of an index entry `channel * taps + tap`.
pub(super) fn split_entry(g: &ConvGeometry, entry: i32) -> (usize, usize, usize) {
    let (entry, taps) = (entry as usize, g.layout.taps);
    let tap = entry % taps;
    (entry / taps, tap / g.kernel[1], tap % g.kernel[1])
}

/// v1's loop: `f(output_offset, input_offset)` for every output position of one plane
/// whose input position under tap (kh, kw) lies inside the (unpadded) input plane.
pub(super) fn for_each_tap(
    g: &ConvGeometry,
    kh: usize,
    kw: usize,
    mut f: impl FnMut(usize, usize),
) {
    for oh in 0..g.out_h {
        let Some(ih) = (oh * g.stride[0] + kh).checked_sub(g.padding[0]) else {
            continue;
        };
        if ih >= g.in_h {
            continue;
        }
        for ow in 0..g.out_w {
            let Some(iw) = (ow * g.stride[1] + kw).checked_sub(g.padding[1]) else {
                continue;
            };
            if iw < g.in_w {
                f(oh * g.out_w + ow, ih * g.in_w + iw);
            }
        }
    }
}

/// v2's loop: `f(output_offset, input_offset, len)` once per output row with its input row
/// inside the plane, for the run of `len` output columns whose inputs are inside too (input
/// columns step by the stride).
pub(super) fn for_each_row(
    g: &ConvGeometry,
    kh: usize,
    kw: usize,
    mut f: impl FnMut(usize, usize, usize),
) {
    let rows = inside(g.out_h, g.in_h, g.stride[0], g.padding[0], kh);
    let (c0, c1) = inside(g.out_w, g.in_w, g.stride[1], g.padding[1], kw);
    if c0 >= c1 {
        return;
    }
    for oh in rows.0..rows.1 {
        let ih = oh * g.stride[0] + kh - g.padding[0];
        let iw = c0 * g.stride[1] + kw - g.padding[1];
        f(oh * g.out_w + c0, ih * g.in_w + iw, c1 - c0);
    }
}

/// The output positions `o` along one axis with `o * stride + tap - padding` inside
/// `0..in_len`, as a half-open range (empty when there are none).
pub(super) fn inside(
    out_len: usize,
    in_len: usize,
    stride: usize,
    padding: usize,
    tap: usize,
) -> (usize, usize) {
    let lo = padding.saturating_sub(tap).div_ceil(stride);
    let hi = (in_len + padding)
        .saturating_sub(tap)
        .div_ceil(stride)
        .min(out_len);
    (lo, hi.max(lo))
}

/// `out[j] += weight * input[start + j * stride]`.
pub(super) fn axpy_rows(weight: f32, input: &[f32], start: usize, stride: usize, out: &mut [f32]) {
    if stride == 1 {
        let len = out.len();
        for (o, i) in out.iter_mut().zip(&input[start..start + len]) {
            *o += weight * i;
        }
    } else {
        for (j, o) in out.iter_mut().enumerate() {
            *o += weight * input[start + j * stride];
        }
    }
}

/// `dx[start + j * stride] += weight * dy[j]`.
pub(super) fn scatter_row(weight: f32, dy: &[f32], dx: &mut [f32], start: usize, stride: usize) {
    if stride == 1 {
        for (d, g) in dx[start..start + dy.len()].iter_mut().zip(dy) {
            *d += weight * g;
        }
    } else {
        for (j, g) in dy.iter().enumerate() {
            dx[start + j * stride] += weight * g;
        }
    }
}

/// Eight running sums, so that a dot product vectorises (a single accumulator chains every
/// addition on the one before).
#[derive(Default)]
pub(super) struct Lanes {
    pub(super) lanes: [f32; 8],
    rest: f32,
}

impl Lanes {
    /// Adds `sum_j a[j] * input[start + j * stride]`.
    pub(super) fn dot(&mut self, a: &[f32], input: &[f32], start: usize, stride: usize) {
        if stride != 1 {
            for (j, v) in a.iter().enumerate() {
                self.rest += v * input[start + j * stride];
            }
            return;
        }
        let b = &input[start..start + a.len()];
        let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
        let (ra, rb) = (a8.remainder(), b8.remainder());
        for (p, q) in a8.zip(b8) {
            for k in 0..8 {
                self.lanes[k] += p[k] * q[k];
            }
        }
        for (p, q) in ra.iter().zip(rb) {
            self.rest += p * q;
        }
    }

    pub(super) fn total(&self) -> f32 {
        self.lanes.iter().sum::<f32>() + self.rest
    }
}
