// Top-k, final pass: selected = eligible and (key > k-th key, or key == k-th key and among
// the first k_remaining ties by index). Ties are ranked by the chunk offsets from the scan
// plus an in-workgroup exclusive scan, so the result is deterministic.
//
// state: [threshold_key, _, k_remaining, take_all, ...]

@group(0) @binding(0) var<storage, read_write> scores: array<f32>;
@group(0) @binding(1) var<storage, read_write> eligible: array<f32>;
@group(0) @binding(2) var<storage, read_write> state: array<u32>;
@group(0) @binding(3) var<storage, read_write> chunk_offsets: array<u32>;
@group(0) @binding(4) var<storage, read_write> selected: array<f32>;
// [n, shift, smallest_first, eligible_value, k, groups_x]
@group(0) @binding(5) var<storage, read_write> params: array<u32>;

var<workgroup> tie_rank: array<u32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let chunk = wg.x + wg.y * params[5];
    let i = chunk * 256u + lid;
    let in_range = i < params[0];
    var is_eligible = false;
    var key = 0u;
    if (in_range) {
        is_eligible = eligible[i] == bitcast<f32>(params[3]);
        key = radix_key(scores[i], params[2] != 0u);
    }
    let threshold = state[0];
    let is_tie = is_eligible && key == threshold;
    tie_rank[lid] = select(0u, 1u, is_tie);
    workgroupBarrier();
    for (var offset = 1u; offset < 256u; offset = offset * 2u) {
        var add = 0u;
        if (lid >= offset) {
            add = tie_rank[lid - offset];
        }
        workgroupBarrier();
        tie_rank[lid] = tie_rank[lid] + add;
        workgroupBarrier();
    }
    if (!in_range) {
        return;
    }
    var take = false;
    if (params[4] == 0u) {
        take = false;
    } else if (state[3] != 0u) {
        take = is_eligible;
    } else if (is_eligible && key > threshold) {
        take = true;
    } else if (is_tie) {
        // tie_rank is inclusive: this element is tie number (rank - 1) in its chunk.
        take = chunk_offsets[chunk] + tie_rank[lid] - 1u < state[2];
    }
    selected[i] = select(0.0, 1.0, take);
}
