//! How many CPU threads a run computes on.
//!
//! The CPU backend and the lab's kernels run on the *current* rayon pool, so
//! a run that executes inside its own pool of `n` threads uses at most `n`
//! cores for its tensor work, and several runs can share a machine without
//! fighting over every core. `None` means every core the machine reports.

/// The most threads a run may ask for.
pub const MAX_THREADS: usize = 1024;

/// The cores this process may use.
pub fn available() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Problems with a thread count, in words.
pub fn check(threads: Option<usize>) -> Result<(), String> {
    match threads {
        Some(0) => Err("threads must be at least 1".into()),
        Some(n) if n > MAX_THREADS => Err(format!("{n} threads is more than the limit of {MAX_THREADS}")),
        _ => Ok(()),
    }
}

/// The number of threads `threads` stands for.
pub fn resolve(threads: Option<usize>) -> usize {
    threads.unwrap_or_else(available)
}

/// A pool of `threads` compute threads named `{name}-N`: work run through
/// its `install` (and every parallel loop that work starts) stays on them.
pub fn pool(threads: Option<usize>, name: &str) -> Result<rayon::ThreadPool, String> {
    check(threads)?;
    rayon::ThreadPoolBuilder::new()
        .num_threads(resolve(threads))
        .thread_name({
            let name = name.to_string();
            move |i| format!("{name}-{i}")
        })
        .build()
        .map_err(|e| format!("cannot start {} compute threads: {e}", resolve(threads)))
}

/// Runs `job` with the CPU work it starts confined to `threads` threads.
/// Fails only when the count is refused or the threads cannot be started.
pub fn run_on<R: Send>(threads: Option<usize>, name: &str, job: impl FnOnce() -> R + Send) -> Result<R, String> {
    Ok(pool(threads, name)?.install(job))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_runs_on_exactly_the_threads_asked_for() {
        assert_eq!(run_on(Some(3), "test", rayon::current_num_threads), Ok(3));
        assert_eq!(run_on(Some(1), "test", rayon::current_num_threads), Ok(1));
        assert_eq!(run_on(None, "test", rayon::current_num_threads), Ok(available()));
        let names = run_on(Some(2), "lab", || rayon::broadcast(|_| std::thread::current().name().map(str::to_string))).unwrap();
        assert!(names.iter().all(|n| n.as_deref().is_some_and(|n| n.starts_with("lab-"))), "{names:?}");
    }

    #[test]
    fn zero_and_absurd_counts_are_refused() {
        assert!(check(Some(0)).unwrap_err().contains("at least 1"));
        assert!(check(Some(MAX_THREADS + 1)).unwrap_err().contains("limit"));
        assert!(run_on(Some(0), "test", || ()).is_err());
        assert!(check(Some(4)).is_ok() && check(None).is_ok());
    }
}
