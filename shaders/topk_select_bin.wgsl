// Top-k, after each histogram pass: walk the bins from the largest digit down and fix the
// digit that holds the k-th remaining key. One thread; 256 bins. Clears the histogram for
// the next pass. When fewer than k elements are eligible, every eligible element is taken.
//
// state: [prefix, prefix_mask, k_remaining, take_all, histogram[256]]

@group(0) @binding(0) var<storage, read_write> state: array<u32>;
// [shift]
@group(0) @binding(1) var<storage, read_write> params: array<u32>;

@compute @workgroup_size(1)
fn main() {
    let shift = params[0];
    let k_remaining = state[2];
    var before = 0u;
    var found = false;
    for (var b = 255i; b >= 0i; b = b - 1i) {
        let count = state[4u + u32(b)];
        if (!found && k_remaining > 0u && before + count >= k_remaining) {
            state[0] = state[0] | (u32(b) << shift);
            state[1] = state[1] | (255u << shift);
            state[2] = k_remaining - before;
            found = true;
        }
        before = before + count;
        state[4u + u32(b)] = 0u;
    }
    if (!found) {
        state[3] = 1u;
    }
}
