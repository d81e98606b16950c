// Top-k, ties: per workgroup chunk of 256 elements, count the eligible elements whose key
// equals the k-th key. An exclusive scan of these counts ranks ties by index.
//
// state: [threshold_key, _, k_remaining, take_all, ...]

@group(0) @binding(0) var<storage, read_write> scores: array<f32>;
@group(0) @binding(1) var<storage, read_write> eligible: array<f32>;
@group(0) @binding(2) var<storage, read_write> state: array<u32>;
@group(0) @binding(3) var<storage, read_write> chunk_counts: array<u32>;
// [n, shift, smallest_first, eligible_value, k, groups_x]
@group(0) @binding(4) var<storage, read_write> params: array<u32>;

var<workgroup> chunk_total: atomic<u32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    if (lid == 0u) {
        atomicStore(&chunk_total, 0u);
    }
    workgroupBarrier();
    let chunk = wg.x + wg.y * params[5];
    let i = chunk * 256u + lid;
    if (i < params[0] && eligible[i] == bitcast<f32>(params[3])) {
        if (radix_key(scores[i], params[2] != 0u) == state[0]) {
            atomicAdd(&chunk_total, 1u);
        }
    }
    workgroupBarrier();
    // Past the last chunk (a 2-D grid can overshoot) there is no count to write.
    if (lid == 0u && chunk * 256u < params[0]) {
        chunk_counts[chunk] = atomicLoad(&chunk_total);
    }
}
