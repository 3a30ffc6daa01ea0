//! The operator's heap: one glibc malloc arena instead of up to eight per core, and a fixed
//! threshold above which allocations are mapped apart from the heap.
//!
//! glibc gives each thread that contends for the allocator an arena of its own, and an arena
//! keeps what was freed in it for later. Under tokio's worker and blocking threads that was a
//! quarter of the operator's memory at rest: at 400 stacks the resident set was 42.1 MiB with the
//! default arenas and 32.5 MiB with one (`BENCH_STACKS=400 bench/run.sh`, the release build). The
//! operator allocates little, from two worker threads, so one arena costs no time that shows.
//!
//! glibc also raises its mmap threshold each time a mapped block is freed (from 128 KiB up to
//! 32 MiB), so after the first large list page has come and gone, large passing buffers (list
//! pages, HTTP read buffers, JSON bodies) come from the heap, between the caches' small long-lived
//! blocks, and leave holes that the one arena cannot give back. A fixed threshold of 32 KiB keeps
//! them mapped: at 500 stacks the resident set was 33.5 MiB with it and 44.0 MiB without, for the
//! same CPU time (35.5 s against 35.3 s over two minutes of reconciles).

/// Blocks from this size up are mapped apart and unmapped when freed.
const MMAP_THRESHOLD: libc::c_int = 32 * 1024;

/// Tune glibc's allocator as above, except where `MALLOC_ARENA_MAX` or `MALLOC_MMAP_THRESHOLD_`
/// say otherwise. Call it before any thread starts: glibc consults the arena limit when it makes
/// an arena. False if glibc refused.
pub fn tune_malloc() -> bool {
    let arenas = std::env::var_os("MALLOC_ARENA_MAX").is_some() || set(ARENA_MAX, 1);
    let threshold =
        std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some() || set(MMAP, MMAP_THRESHOLD);
    arenas && threshold
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENA_MAX: libc::c_int = libc::M_ARENA_MAX;
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP: libc::c_int = libc::M_MMAP_THRESHOLD;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set(option: libc::c_int, value: libc::c_int) -> bool {
    // SAFETY: mallopt sets one tunable of the allocator and touches no Rust-owned memory.
    unsafe { libc::mallopt(option, value) == 1 }
}

/// Other allocators (musl's, macOS's) have neither tunable.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
const ARENA_MAX: libc::c_int = 0;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
const MMAP: libc::c_int = 0;

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set(_option: libc::c_int, _value: libc::c_int) -> bool {
    true
}
