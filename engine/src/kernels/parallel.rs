//! The CPU loops' threading: rayon's pool natively, one thread in the browser (its worker
//! has no threads). Each item is computed whole by one thread, so no result depends on the
//! number of threads.

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
    use std::mem::MaybeUninit;
    if len == 0 {
        return Vec::new();
    }
    // `for_each_chunk` does nothing with chunks of 0, which would leave `out` unwritten.
    assert!(chunk > 0, "{len} elements in chunks of 0");
    let fill = |i: usize, piece: &mut [MaybeUninit<f32>]| {
        for v in piece.iter_mut() {
            v.write(0.0);
        }
        // SAFETY: every element of `piece` was written just above, and `MaybeUninit<f32>`
        // has the layout of `f32`.
        let piece = unsafe { &mut *(piece as *mut [MaybeUninit<f32>] as *mut [f32]) };
        f(i, piece);
    };
    let mut out: Vec<f32> = Vec::with_capacity(len);
    for_each_chunk(&mut out.spare_capacity_mut()[..len], chunk, fill);
    // SAFETY: the chunks cover `0..len` and `fill` wrote every element of each (a panic in
    // `f` unwinds past this line, leaving the vector empty).
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
