// Shared by the top-k kernels: the radix key of element i.
//
// Selection takes the k largest keys among eligible elements; ties go to the lower index.
// key = bits(|score|) + 1 orders non-negative floats like their values, with NaN at 0
// below every number. For "smallest first" the key is inverted. This is the order of the
// CPU reference `sparsity::topk::top_k`, which ranks NaN as -inf.

fn radix_key(score: f32, smallest_first: bool) -> u32 {
    // |score| by clearing the sign bit; NaN tested on the bits, since shader compilers may
    // assume floats are never NaN and fold `x != x` away.
    let bits = bitcast<u32>(score) & 0x7fffffffu;
    let is_nan = bits > 0x7f800000u;
    if (smallest_first) {
        // The CPU ranks NaN as -inf, level with |score| = inf: the same key, so the tie
        // goes to the lower index there too.
        return ~select(bits, 0x7f800000u, is_nan);
    }
    // Every number gets a key of at least 1, strictly above a NaN's 0.
    return select(bits + 1u, 0u, is_nan);
}
