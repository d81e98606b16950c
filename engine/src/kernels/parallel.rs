//! The CPU loops' threading: rayon's pool natively, one thread in the browser (its worker
//! has no threads). Each item is computed whole by one thread, so no result depends on the
//! number of threads.

/// `f(chunk_number, chunk)` for each `len`-element chunk of `out` (none if `len` is 0).
pub fn for_each_chunk(out: &mut [f32], len: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
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
