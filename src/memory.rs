//! The process's memory allocator settings, applied once before any thread starts.

/// Arenas glibc's malloc may keep, unless `MALLOC_ARENA_MAX` in the environment says otherwise.
///
/// glibc gives a thread that meets contention an arena of its own, up to eight per core, and an
/// arena keeps the memory it once held. sqlx runs every SQLite connection on a thread of its
/// own, so under a long mixed load on SQLite the server's RSS grew to 145 MiB; the same load
/// with two arenas peaked at 102 MiB (docs/benchmarks.md, "Soak"). Two still let two runtime
/// workers allocate side by side.
pub const MALLOC_ARENAS: i32 = 2;

/// Caps glibc's malloc arenas at [`MALLOC_ARENAS`], unless the operator set
/// `MALLOC_ARENA_MAX` (glibc reads it itself, and theirs wins). Call it first in `main`,
/// before the runtime's threads exist: an arena made before the cap stays.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a malloc parameter; it is called before any other thread
        // exists. A refusal (return 0) leaves glibc's default, which is harmless.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
        }
    }
}

/// Hands the heap's free memory back to the operating system (glibc's `malloc_trim`).
///
/// Why: glibc keeps what a phase of work freed for the next allocations, but a later phase
/// that allocates differently (SQLite's sorter and FTS5's buffers after an import's batches)
/// takes fresh memory beside it, so the two phases' peaks add up. Called between such phases.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of malloc's own arenas; it takes their locks
    // like any allocation does.
    unsafe {
        libc::malloc_trim(0);
    }
}
