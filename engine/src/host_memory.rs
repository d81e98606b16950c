//! How the process gets memory from the OS. glibc's malloc serves every block over 32 MB
//! (`M_MMAP_THRESHOLD`'s ceiling) with its own `mmap` and unmaps it on free, so each step
//! faults in the pages of every large activation again: at ResNet-34's batch of 128 (33 MB
//! per stage-1 activation) that made one 37-weight sparse convolution take 29 ms instead of
//! 2 (`sparselab bench kernels --device flex`, 2-core machine, 2026-12-01). Serving all
//! blocks from the heap and never trimming it keeps freed pages mapped for the next step.

/// Keeps freed memory for reuse. Call once, first thing in `main`, before any thread
/// starts. Does nothing outside glibc.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
