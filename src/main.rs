//! The `custvalue` command: a thin shell over the library. It parses flags, calls the
//! library, prints and maps errors to exit codes (0 ok, 1 internal failure, 2 bad input
//! or usage).

mod cli;

fn main() {
    keep_freed_memory();
    std::process::exit(cli::main());
}

/// Lets glibc's malloc keep freed memory for reuse: blocks up to 32 MiB come from its
/// heaps instead of fresh maps, and free heap memory is not handed back at once. The
/// analyses allocate and free many column-sized buffers (a model fit's per-customer
/// arrays, a load's chunks); with the defaults each is faulted in and zeroed by the
/// kernel again (a fifth of `ltv --summary`'s CPU time on a million customers).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}
