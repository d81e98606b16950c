// Top-k, ties: exclusive prefix sum of the per-chunk tie counts, in place, in one workgroup.
// Each thread sums a contiguous run of chunks, the 256 run totals are scanned in shared
// memory, then each thread writes its run's offsets.

@group(0) @binding(0) var<storage, read_write> chunk_counts: array<u32>;
// [num_chunks]
@group(0) @binding(1) var<storage, read_write> params: array<u32>;

var<workgroup> run_totals: array<u32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
    let num_chunks = params[0];
    let per_thread = (num_chunks + 255u) / 256u;
    let start = min(lid * per_thread, num_chunks);
    let end = min(start + per_thread, num_chunks);
    var total = 0u;
    for (var c = start; c < end; c = c + 1u) {
        total = total + chunk_counts[c];
    }
    run_totals[lid] = total;
    workgroupBarrier();
    // Hillis-Steele inclusive scan over the 256 run totals.
    for (var offset = 1u; offset < 256u; offset = offset * 2u) {
        var add = 0u;
        if (lid >= offset) {
            add = run_totals[lid - offset];
        }
        workgroupBarrier();
        run_totals[lid] = run_totals[lid] + add;
        workgroupBarrier();
    }
    var running = run_totals[lid] - total;
    for (var c = start; c < end; c = c + 1u) {
        let count = chunk_counts[c];
        chunk_counts[c] = running;
        running = running + count;
    }
}
