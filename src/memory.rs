//! The operator's heap: one glibc malloc arena instead of up to eight per core.
//!
//! glibc gives each thread that contends for the allocator an arena of its own, and an arena
//! keeps what was freed in it for later. Under tokio's worker and blocking threads that was a
//! quarter of the operator's memory at rest: at 400 stacks the resident set was 42.1 MiB with the
//! default arenas and 32.5 MiB with one (`BENCH_STACKS=400 bench/run.sh`, the release build). The
//! operator allocates little, from two worker threads, so one arena costs no time that shows.

/// Allow glibc a single arena, unless `MALLOC_ARENA_MAX` says otherwise. Call it before any
/// thread starts: glibc consults the limit when it makes an arena. False if glibc refused.
pub fn use_one_malloc_arena() -> bool {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return true;
    }
    set_arena_max()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_arena_max() -> bool {
    // SAFETY: mallopt sets one tunable of the allocator and touches no Rust-owned memory.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) == 1 }
}

/// Other allocators (musl's, macOS's) have no arenas to limit.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_arena_max() -> bool {
    true
}
