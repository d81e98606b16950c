//! The CPU loops' threading: rayon's pool natively, one thread in the browser (its worker
//! has no threads). Each item is computed whole by one thread, so no result depends on the
//! number of threads.

use super::wide::wide_fn;
use std::mem::MaybeUninit;

/// `f(chunk_number, chunk)` for each `len`-element chunk of `out` (none if `len` is 0).
pub fn for_each_chunk<T: Send>(
    out: &mut [T],
    len: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    if len == 0 {
        return;
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(len)
            .enumerate()
            .for_each(|(i, c)| f(i, c));
    }
    #[cfg(target_arch = "wasm32")]
    for (i, c) in out.chunks_mut(len).enumerate() {
        f(i, c);
    }
}

/// A new `len`-element vector built `chunk` elements at a time: each piece is zeroed and
/// handed to `f(chunk_number, piece)` by the thread that works on it. `vec![0.0; len]`
/// followed by `for_each_chunk` gives the same result, but zeroes the whole buffer in a pass
/// of its own first: at ResNet-34's first stage that is 33 MB written, evicted and read
/// back for every activation and gradient. Here the zeros go into cache just before `f`
/// writes there.
pub fn zeroed_chunks(
    len: usize,
    chunk: usize,
    f: impl Fn(usize, &mut [f32]) + Sync + Send,
) -> Vec<f32> {
    let fill = |i: usize, piece: &mut [MaybeUninit<f32>]| {
        for v in piece.iter_mut() {
            v.write(0.0);
        }
        // SAFETY: every element of `piece` was written just above.
        let piece = unsafe { assume_written(piece) };
        f(i, piece);
    };
    // SAFETY: `fill` writes every element of its piece before `f` sees it.
    unsafe { built_in_chunks(len, chunk, fill) }
}

/// A new `len`-element vector whose `chunk`-element pieces are `values(chunk_number)`,
/// written by the thread that computes them. For outputs that set every element (the
/// BatchNorm's passes, DyReLU's): `zeroed_chunks` would zero each piece first, a pass the
/// values then overwrite. Panics if a piece's iterator yields fewer values than the piece
/// holds, or claims a length other than the piece's.
pub fn mapped_chunks<I: ExactSizeIterator<Item = f32>>(
    len: usize,
    chunk: usize,
    values: impl Fn(usize) -> I + Sync + Send,
) -> Vec<f32> {
    let fill = |i: usize, piece: &mut [MaybeUninit<f32>]| {
        let values = values(i);
        // The claimed length catches an iterator that would yield more; the count written,
        // one that yields fewer (whatever it claims).
        let claimed = values.len();
        let written = write_values(piece, values);
        assert!(
            written == piece.len() && claimed == piece.len(),
            "piece {i} of {} elements got a different number of values",
            piece.len()
        );
    };
    // SAFETY: `fill` writes every element of its piece or panics.
    unsafe { built_in_chunks(len, chunk, fill) }
}

/// `piece`, every element of which has been written, as the values it now holds.
///
/// # Safety
/// Every element of `piece` must have been written.
pub(crate) unsafe fn assume_written(piece: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`, and the caller promises that every
    // element is initialised.
    unsafe { &mut *(piece as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

wide_fn! {
/// Writes `values` into `piece` from its start; returns how many it wrote. `values` is
/// taken whole, not by reference: zipped with the piece, a map over slices then runs as a
/// counted loop the compiler vectorises (through a `&mut` iterator it ran an element at a
/// time).
fn write_values(piece: &mut [MaybeUninit<f32>], values: impl Iterator<Item = f32>) -> usize {
    let mut written = 0;
    for (slot, v) in piece.iter_mut().zip(values) {
        slot.write(v);
        written += 1;
    }
    written
}
}

/// A new `len`-element vector whose `chunk`-element pieces, uninitialised, are handed to
/// `fill(chunk_number, piece)` in parallel (`for_each_chunk`).
///
/// # Safety
/// `fill` must write every element of its piece, or panic.
pub(crate) unsafe fn built_in_chunks(
    len: usize,
    chunk: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync + Send,
) -> Vec<f32> {
    if len == 0 {
        return Vec::new();
    }
    // `for_each_chunk` does nothing with chunks of 0, which would leave `out` unwritten.
    assert!(chunk > 0, "{len} elements in chunks of 0");
    let mut out: Vec<f32> = Vec::with_capacity(len);
    for_each_chunk(&mut out.spare_capacity_mut()[..len], chunk, fill);
    // SAFETY: the chunks cover `0..len` and, by the caller's promise, `fill` wrote every
    // element of each (a panic unwinds past this line, leaving the vector empty).
    unsafe { out.set_len(len) };
    out
}

/// `items.map(f)`, in order.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync + Send) -> Vec<R> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        items.par_iter().map(f).collect()
    }
    #[cfg(target_arch = "wasm32")]
    {
        items.iter().map(f).collect()
    }
}

/// `f(chunk_number, a_chunk, b_chunk)` for the `len`-element chunks of `a` and `b` (of equal
/// length) side by side.
pub fn for_each_chunk_pair(
    a: &mut [f32],
    b: &mut [f32],
    len: usize,
    f: impl Fn(usize, &mut [f32], &mut [f32]) + Sync + Send,
) {
    assert_eq!(a.len(), b.len(), "chunked side by side");
    if len == 0 {
        return;
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        a.par_chunks_mut(len)
            .zip(b.par_chunks_mut(len))
            .enumerate()
            .for_each(|(i, (x, y))| f(i, x, y));
    }
    #[cfg(target_arch = "wasm32")]
    for (i, (x, y)) in a.chunks_mut(len).zip(b.chunks_mut(len)).enumerate() {
        f(i, x, y);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_chunks_places_each_piece_and_refuses_a_short_or_long_one() {
        let v = mapped_chunks(12, 4, |i| (0..4).map(move |k| (i * 10 + k) as f32));
        let want: Vec<f32> = (0..3)
            .flat_map(|i| (0..4).map(move |k| (i * 10 + k) as f32))
            .collect();
        assert_eq!(v, want);
        assert!(mapped_chunks(0, 4, |_| std::iter::empty()).is_empty());
        for wrong in [3usize, 5] {
            let result = std::panic::catch_unwind(|| {
                mapped_chunks(8, 4, move |_| (0..wrong).map(|k| k as f32))
            });
            assert!(result.is_err(), "a piece of 4 took {wrong} values");
        }
        // An iterator whose claimed length is wrong: it says 4 and yields 3 (safe code may
        // do so), so the count written must catch it, or an element would stay unwritten.
        struct ClaimsFour(std::ops::Range<usize>);
        impl Iterator for ClaimsFour {
            type Item = f32;
            fn next(&mut self) -> Option<f32> {
                self.0.next().map(|k| k as f32)
            }
        }
        impl ExactSizeIterator for ClaimsFour {
            fn len(&self) -> usize {
                4
            }
        }
        let result = std::panic::catch_unwind(|| mapped_chunks(8, 4, |_| ClaimsFour(0..3)));
        assert!(result.is_err(), "a piece of 4 took 3 values claimed as 4");
    }

    #[test]
    fn zeroed_chunks_hands_out_zeroed_pieces() {
        // A freed buffer of the same size, non-zero: the allocator tends to hand its memory
        // straight back, so pieces that were not zeroed would show its values.
        drop(std::hint::black_box(vec![7.0f32; 10]));
        let v = zeroed_chunks(10, 4, |i, piece| {
            assert!(piece.iter().all(|&x| x == 0.0));
            piece[0] = i as f32 + 1.0;
        });
        assert_eq!(v, [1.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 3.0, 0.0]);
    }
}
