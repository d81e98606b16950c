// Top-k, radix pass: histogram of the 8-bit digit at `shift` among eligible elements whose
// higher digits match the prefix chosen so far. Four passes (shift 24, 16, 8, 0) find the
// exact k-th key without sorting.
//
// state: [prefix, prefix_mask, k_remaining, take_all, histogram[256]]

@group(0) @binding(0) var<storage, read_write> scores: array<f32>;
@group(0) @binding(1) var<storage, read_write> eligible: array<f32>;
@group(0) @binding(2) var<storage, read_write> state: array<atomic<u32>>;
// [n, shift, smallest_first, eligible_value, k, groups_x]
@group(0) @binding(3) var<storage, read_write> params: array<u32>;

var<workgroup> local_histogram: array<atomic<u32>, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    atomicStore(&local_histogram[lid], 0u);
    workgroupBarrier();
    let i = (wg.x + wg.y * params[5]) * 256u + lid;
    let prefix = atomicLoad(&state[0]);
    let prefix_mask = atomicLoad(&state[1]);
    if (i < params[0] && eligible[i] == bitcast<f32>(params[3])) {
        let key = radix_key(scores[i], params[2] != 0u);
        if ((key & prefix_mask) == prefix) {
            atomicAdd(&local_histogram[(key >> params[1]) & 255u], 1u);
        }
    }
    workgroupBarrier();
    // One global atomic per non-empty bin and workgroup.
    let count = atomicLoad(&local_histogram[lid]);
    if (count > 0u) {
        atomicAdd(&state[4u + lid], count);
    }
}
