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

/// A thread count refused, or compute threads that could not start.
#[derive(Debug, thiserror::Error)]
pub enum ThreadsError {
    #[error("threads must be at least 1")]
    Zero,
    #[error("{0} threads is more than the limit of {MAX_THREADS}")]
    TooMany(usize),
    #[error("cannot start {threads} compute threads: {source}")]
    Start { threads: usize, source: rayon::ThreadPoolBuildError },
}

impl ThreadsError {
    /// A count refused is bad input (2); threads that did not start, a failure (1).
    pub fn exit_code(&self) -> i32 {
        match self {
            ThreadsError::Zero | ThreadsError::TooMany(_) => 2,
            ThreadsError::Start { .. } => 1,
        }
    }
}

/// Problems with a thread count, in words.
pub fn check(threads: Option<usize>) -> Result<(), ThreadsError> {
    match threads {
        Some(0) => Err(ThreadsError::Zero),
        Some(n) if n > MAX_THREADS => Err(ThreadsError::TooMany(n)),
        _ => Ok(()),
    }
}

/// The number of threads `threads` stands for.
pub fn resolve(threads: Option<usize>) -> usize {
    threads.unwrap_or_else(available)
}

/// The nice value compute threads started from now on take, when they
/// yield to the window's thread (set by the window, never by the command
/// line): the window thread's own plus [`WINDOW_NICE`].
static YIELD_TO_WINDOW: std::sync::Mutex<Option<i32>> = std::sync::Mutex::new(None);

/// How much lower than the window's the compute threads' scheduling
/// priority is (a nice value): enough that the thread drawing the window
/// is scheduled first when both want a core, so frames stay smooth while
/// every core trains; an idle window leaves the cores to training.
pub const WINDOW_NICE: i32 = 5;

/// Makes the compute threads of runs started from now on (the window's)
/// yield to the thread that draws the window.
pub fn yield_to_window() {
    let mut target = YIELD_TO_WINDOW.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if target.is_none() {
        *target = Some(thread_nice().saturating_add(WINDOW_NICE).min(19));
    }
}

/// The calling thread's nice value (0 where it cannot be read).
fn thread_nice() -> i32 {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and getpriority take and return plain integers.
    unsafe {
        libc::getpriority(libc::PRIO_PROCESS, libc::syscall(libc::SYS_gettid) as libc::id_t)
    }
    #[cfg(not(target_os = "linux"))]
    0
}

/// Sets the calling thread's nice value to the window's target, when the
/// window asked for one (Linux, where a nice value is per thread; elsewhere
/// nothing changes). A thread already at or below it is left alone.
fn lower_priority_if_windowed() {
    let Some(target) = *YIELD_TO_WINDOW.lock().unwrap_or_else(std::sync::PoisonError::into_inner) else { return };
    #[cfg(target_os = "linux")]
    if thread_nice() < target {
        // SAFETY: setpriority takes plain integers and touches only the
        // calling thread's scheduling priority.
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, libc::syscall(libc::SYS_gettid) as libc::id_t, target);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = target;
}

/// A pool of `threads` compute threads named `{name}-N`: work run through
/// its `install` (and every parallel loop that work starts) stays on them.
pub fn pool(threads: Option<usize>, name: &str) -> Result<rayon::ThreadPool, ThreadsError> {
    check(threads)?;
    rayon::ThreadPoolBuilder::new()
        .num_threads(resolve(threads))
        .thread_name({
            let name = name.to_string();
            move |i| format!("{name}-{i}")
        })
        .start_handler(|_| {
            flush_subnormals();
            lower_priority_if_windowed();
        })
        .build()
        .map_err(|source| ThreadsError::Start { threads: resolve(threads), source })
}

/// Makes this thread's float arithmetic treat subnormal numbers (below
/// f32's smallest normal, 1.2e-38) as zero, in and out (the SSE unit's
/// flush-to-zero and denormals-are-zero bits), as TensorFlow's threads do.
/// A deep sigmoid net's vanishing gradients, Adam's squares of them and
/// saturated units' outputs fall into that range, and every operation on a
/// subnormal costs the CPU a microcode assist, about a hundred times a
/// normal one: plain-mlp-30 with sigmoid units trained 5× slower once its
/// optimiser state went subnormal. Threads started afterwards inherit the
/// setting; the lab sets it on the main thread at start-up and on every
/// compute pool's threads. What the lab measures is unchanged above
/// 1.2e-38; a gradient norm below reads as 0 (log plots leave zeros out).
pub fn flush_subnormals() {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
    {
        const FLUSH_TO_ZERO: u32 = 1 << 15;
        const DENORMALS_ARE_ZERO: u32 = 1 << 6;
        let mut control: u32 = 0;
        // SAFETY: stmxcsr/ldmxcsr read and write this thread's SSE control
        // register through a valid local; setting the two flush bits keeps
        // every other bit (rounding, exception masks) as it was.
        unsafe {
            std::arch::asm!("stmxcsr [{}]", in(reg) &raw mut control, options(nostack, preserves_flags));
            control |= FLUSH_TO_ZERO | DENORMALS_ARE_ZERO;
            std::arch::asm!("ldmxcsr [{}]", in(reg) &raw const control, options(nostack, preserves_flags));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `job` on a pool of `threads` threads (runs add their team of the
    /// kernels' threads with `kernels::team::install`).
    fn run_on<R: Send>(threads: Option<usize>, name: &str, job: impl FnOnce() -> R + Send) -> Result<R, ThreadsError> {
        Ok(pool(threads, name)?.install(job))
    }

    #[test]
    fn work_runs_on_exactly_the_threads_asked_for() {
        assert_eq!(run_on(Some(3), "test", rayon::current_num_threads).unwrap(), 3);
        assert_eq!(run_on(Some(1), "test", rayon::current_num_threads).unwrap(), 1);
        assert_eq!(run_on(None, "test", rayon::current_num_threads).unwrap(), available());
        let names = run_on(Some(2), "lab", || rayon::broadcast(|_| std::thread::current().name().map(str::to_string))).unwrap();
        assert!(names.iter().all(|n| n.as_deref().is_some_and(|n| n.starts_with("lab-"))), "{names:?}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_windows_compute_threads_yield_to_it() {
        // (Other tests of this process may have opened a window already.)
        yield_to_window();
        let after = run_on(Some(2), "after", || rayon::broadcast(|_| thread_nice())).unwrap();
        let target = (thread_nice() + WINDOW_NICE).min(19);
        assert!(after.iter().all(|&n| n == target), "{after:?} against {target}");
        // A pool started from a compute thread is not lowered further.
        let nested = run_on(Some(1), "outer", || run_on(Some(1), "inner", thread_nice).unwrap()).unwrap();
        assert_eq!(nested, target);
    }

    #[test]
    fn compute_threads_and_their_children_flush_subnormals() {
        fn flushes() -> bool {
            let tiny = std::hint::black_box(1e-30f32);
            std::hint::black_box(tiny) * std::hint::black_box(1e-10f32) == 0.0
        }
        let plain = std::thread::spawn(flushes).join().unwrap();
        assert!(!plain, "a thread left alone keeps subnormals (1e-40 is representable)");
        let pool = pool(Some(2), "test-flush").unwrap();
        assert!(pool.install(flushes), "a compute thread flushes");
        assert!(pool.broadcast(|_| flushes()).into_iter().all(|f| f), "every compute thread flushes");
        let inherited = std::thread::spawn(|| {
            flush_subnormals();
            std::thread::spawn(flushes).join().unwrap()
        });
        assert!(inherited.join().unwrap(), "a thread started by a flushing thread flushes");
    }

    #[test]
    fn zero_and_absurd_counts_are_refused() {
        assert!(check(Some(0)).unwrap_err().to_string().contains("at least 1"));
        assert!(check(Some(MAX_THREADS + 1)).unwrap_err().to_string().contains("limit"));
        assert!(run_on(Some(0), "test", || ()).is_err());
        assert!(check(Some(4)).is_ok() && check(None).is_ok());
    }
}
