// Shared by the top-k kernels: the radix key of element i.
//
// Selection takes the k largest keys among eligible elements; ties go to the lower index.
// key = bits(|score|) orders non-negative floats like their values. For "smallest first"
// the key is inverted. A NaN gets key 0 either way, so it is never picked ahead of a number
// (the CPU reference `sparsity::topk::top_k` ranks NaN below everything too).

fn radix_key(score: f32, smallest_first: bool) -> u32 {
    // |score| by clearing the sign bit; NaN tested on the bits, since shader compilers may
    // assume floats are never NaN and fold `x != x` away.
    let bits = bitcast<u32>(score) & 0x7fffffffu;
    if (bits > 0x7f800000u) {
        return 0u;
    }
    if (smallest_first) {
        return ~bits;
    }
    return bits;
}
