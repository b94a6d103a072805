//! The kernels' parallel loops, run by a team of compute threads that wait
//! for the next loop awake.
//!
//! A training step of resnet-110 at batch 32 is about a thousand parallel
//! loops (each convolution, batch norm and join, forward and backward) of
//! 0.1–1 ms each, with serial work between them (burn's autodiff, the
//! optimiser). rayon's idle threads look for work for some 32 yields and
//! then sleep; on a virtual machine's vCPU the sleep and the wake-up cost
//! 30–80 µs a loop, and a loop whose second thread arrives late runs mostly
//! on the first. A team's helpers instead keep watching for the next loop
//! for [`WATCH`] after their last task (yielding the core to any other
//! runnable thread as they do), and only then sleep.
//!
//! A team belongs to the thread that runs a training job ([`install`]).
//! Loops started elsewhere — on threads without a team, inside a task of a
//! team's loop, or on a helper — run as before on the current rayon pool
//! (or serially inside a loop). The tasks of a loop are numbered and
//! handed out in order as threads ask for them; which thread runs a task
//! never changes what it computes, so results stay the same on any number
//! of threads.

use std::any::Any;
use std::cell::Cell;
use std::mem::MaybeUninit;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rayon::prelude::*;

/// How long a helper watches for the next loop after its last task before
/// it sleeps: longer than the serial stretches inside a training step,
/// short enough that an idle run gives its cores back at once.
pub const WATCH: Duration = Duration::from_millis(2);

/// Spins between two looks at the clock (and yields of the core).
const SPINS_PER_LOOK: u32 = 64;

/// One parallel loop: `count` tasks, handed out by `next`.
struct Loop {
    /// The task, its lifetime erased: it outlives the loop, because the
    /// thread that posted the loop waits until no helper holds it.
    task: *const (dyn Fn(usize) + Sync + 'static),
    count: usize,
    next: AtomicUsize,
    /// The first panic of a task, raised again on the posting thread.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

impl Loop {
    /// Runs tasks until none is left.
    fn work(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.count {
                return;
            }
            // SAFETY: the task lives until the posting thread has seen
            // every helper leave the loop (`Team::run`).
            let task = unsafe { &*self.task };
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| task(i))) {
                self.next.store(self.count, Ordering::Relaxed);
                self.panic.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(payload);
            }
        }
    }
}

/// What the posting thread and its helpers share.
struct Shared {
    /// Counts the loops posted: a helper that sees it change looks at `current`.
    posted: AtomicU64,
    /// The loop running now (null between loops).
    current: AtomicPtr<Loop>,
    /// Helpers that may hold `current`.
    busy: AtomicUsize,
    /// Helpers asleep (or about to be).
    sleeping: AtomicUsize,
    stop: AtomicBool,
}

/// A team: the thread that made it plus `helpers`.
struct Team {
    shared: Arc<Shared>,
    helpers: Vec<JoinHandle<()>>,
}

thread_local! {
    /// The team of this thread, while [`install`]'s job runs.
    static TEAM: Cell<*const Team> = const { Cell::new(ptr::null()) };
    /// Whether this thread is inside a loop (a task of one, or a helper).
    static IN_LOOP: Cell<bool> = const { Cell::new(false) };
}

/// Runs `job` on `pool` with a team of as many threads as the pool has
/// (the job's thread and helpers started for it, which inherit its
/// floating-point mode and scheduling priority): the kernels' loops in the
/// job run on the team, burn's own parallel work on the pool.
pub fn install<R: Send>(pool: &rayon::ThreadPool, job: impl FnOnce() -> R + Send) -> R {
    let threads = pool.current_num_threads();
    pool.install(|| with_team(threads, job))
}

/// Runs `job` with a team of `threads` threads on this thread.
pub fn with_team<R>(threads: usize, job: impl FnOnce() -> R) -> R {
    let shared = Arc::new(Shared {
        posted: AtomicU64::new(0),
        current: AtomicPtr::new(ptr::null_mut()),
        busy: AtomicUsize::new(0),
        sleeping: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    });
    let helpers = (1..threads.max(1))
        .map_while(|i| {
            let shared = shared.clone();
            let name = format!("{}-team-{i}", std::thread::current().name().unwrap_or("depthlab"));
            // A helper that cannot start leaves a smaller team.
            std::thread::Builder::new().name(name).spawn(move || help(&shared)).ok()
        })
        .collect();
    let team = Team { shared, helpers };
    struct Restore(*const Team);
    impl Drop for Restore {
        fn drop(&mut self) {
            TEAM.with(|t| t.set(self.0));
        }
    }
    let _restore = Restore(TEAM.with(|t| t.replace(&raw const team)));
    job()
}

impl Drop for Team {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for helper in self.helpers.drain(..) {
            helper.thread().unpark();
            let _ = helper.join();
        }
    }
}

impl Team {
    /// Runs `count` tasks on the team and returns when all are done.
    fn run(&self, count: usize, task: &(dyn Fn(usize) + Sync)) {
        // SAFETY: only the lifetime is erased; `task` outlives this call,
        // and no helper holds the loop once the wait below ends.
        let task: *const (dyn Fn(usize) + Sync + 'static) = unsafe { std::mem::transmute(task) };
        let job = Loop { task, count, next: AtomicUsize::new(0), panic: Mutex::new(None) };
        let shared = &*self.shared;
        shared.current.store((&raw const job).cast_mut(), Ordering::SeqCst);
        shared.posted.fetch_add(1, Ordering::SeqCst);
        if shared.sleeping.load(Ordering::SeqCst) > 0 {
            for helper in &self.helpers {
                helper.thread().unpark();
            }
        }
        let was = IN_LOOP.with(|l| l.replace(true));
        job.work();
        IN_LOOP.with(|l| l.set(was));
        // A helper counts itself busy before it reads `current`: once the
        // loop is withdrawn and none is busy, none can reach it.
        shared.current.store(ptr::null_mut(), Ordering::SeqCst);
        while shared.busy.load(Ordering::SeqCst) != 0 {
            std::hint::spin_loop();
        }
        if let Some(payload) = job.panic.into_inner().unwrap_or_else(PoisonError::into_inner) {
            resume_unwind(payload);
        }
    }
}

/// A helper's life: watch for loops, join each, sleep when none comes.
fn help(shared: &Shared) {
    IN_LOOP.with(|l| l.set(true));
    let mut seen = shared.posted.load(Ordering::SeqCst);
    loop {
        let mut since = Instant::now();
        let mut spins = 0u32;
        loop {
            if shared.stop.load(Ordering::SeqCst) {
                return;
            }
            let posted = shared.posted.load(Ordering::SeqCst);
            if posted != seen {
                seen = posted;
                break;
            }
            spins += 1;
            if spins.is_multiple_of(SPINS_PER_LOOK) {
                if since.elapsed() < WATCH {
                    // Any other thread that wants this core gets it.
                    std::thread::yield_now();
                } else {
                    shared.sleeping.fetch_add(1, Ordering::SeqCst);
                    // A loop posted after this look wakes the helper.
                    if shared.posted.load(Ordering::SeqCst) == seen && !shared.stop.load(Ordering::SeqCst) {
                        std::thread::park();
                    }
                    shared.sleeping.fetch_sub(1, Ordering::SeqCst);
                    since = Instant::now();
                }
            }
            std::hint::spin_loop();
        }
        shared.busy.fetch_add(1, Ordering::SeqCst);
        let job = shared.current.load(Ordering::SeqCst);
        if !job.is_null() {
            // SAFETY: the posting thread keeps the loop alive while this
            // helper is counted busy (`Team::run`).
            unsafe { (*job).work() };
        }
        shared.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs `task(i)` for every `i` in `0..count`, in parallel.
pub fn for_each(count: usize, task: impl Fn(usize) + Sync) {
    // One task, or a loop inside a task of another: on this thread.
    if count <= 1 || IN_LOOP.with(Cell::get) {
        (0..count).for_each(task);
        return;
    }
    let team = TEAM.with(Cell::get);
    if team.is_null() {
        (0..count).into_par_iter().for_each(&task);
    } else {
        // SAFETY: the team lives while `with_team`'s job runs, which is
        // when TEAM points to it, and only its own thread reads TEAM.
        unsafe { (*team).run(count, &task) };
    }
}

/// A raw pointer the tasks of one loop share: each task touches only its
/// own elements.
struct Shares<T>(*mut T);
impl<T> Clone for Shares<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Shares<T> {}
// SAFETY: the tasks write disjoint elements (see the users below).
unsafe impl<T: Send> Send for Shares<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Shares<T> {}

impl<T> Shares<T> {
    fn at(self, i: usize) -> *mut T {
        // SAFETY: callers stay inside the allocation they shared.
        unsafe { self.0.add(i) }
    }
}

/// `data` in chunks of `chunk` elements (the last may be shorter), each
/// given to `task(i, chunk_i)` in parallel.
pub fn for_each_chunk<T: Send>(data: &mut [T], chunk: usize, task: impl Fn(usize, &mut [T]) + Sync) {
    map_chunks_mut(data, chunk, task);
}

/// [`for_each_chunk`], keeping what each task returns: `f(i, chunk_i)` in
/// chunk order.
pub fn map_chunks_mut<T: Send, R: Send>(data: &mut [T], chunk: usize, f: impl Fn(usize, &mut [T]) -> R + Sync) -> Vec<R> {
    let chunk = chunk.max(1);
    let len = data.len();
    let base = Shares(data.as_mut_ptr());
    map(len.div_ceil(chunk), |i| {
        let start = i * chunk;
        let end = (start + chunk).min(len);
        // SAFETY: chunk `i` covers `start..end` of `data`, which no other
        // task touches, and `data` is borrowed mutably for the loop.
        f(i, unsafe { std::slice::from_raw_parts_mut(base.at(start), end - start) })
    })
}

/// `f(i, chunk_i)` for the chunks of `data`, `chunk` elements each (the
/// last may be shorter), computed in parallel, in order.
pub fn map_chunks<T: Sync, R: Send>(data: &[T], chunk: usize, f: impl Fn(usize, &[T]) -> R + Sync) -> Vec<R> {
    let chunk = chunk.max(1);
    map(data.len().div_ceil(chunk), |i| f(i, &data[i * chunk..((i + 1) * chunk).min(data.len())]))
}

/// `f(0), f(1), …, f(count − 1)` computed in parallel, in order.
pub fn map<T: Send>(count: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let mut out: Vec<MaybeUninit<T>> = Vec::with_capacity(count);
    // SAFETY: MaybeUninit needs no initialisation.
    unsafe { out.set_len(count) };
    let slots = Shares(out.as_mut_ptr());
    // SAFETY: task `i` writes slot `i` alone.
    for_each(count, |i| unsafe { slots.at(i).write(MaybeUninit::new(f(i))) });
    // Every slot was written (a panic would have left through `for_each`).
    let mut out = std::mem::ManuallyDrop::new(out);
    // SAFETY: `MaybeUninit<T>` has `T`'s layout and every slot holds a value.
    unsafe { Vec::from_raw_parts(out.as_mut_ptr().cast::<T>(), out.len(), out.capacity()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_once_on_a_team_and_without_one() {
        for threads in [1, 2, 3] {
            let counts: Vec<AtomicUsize> = (0..1000).map(|_| AtomicUsize::new(0)).collect();
            with_team(threads, || {
                for _ in 0..50 {
                    for_each(counts.len(), |i| {
                        counts[i].fetch_add(1, Ordering::Relaxed);
                    });
                }
            });
            assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 50), "{threads} threads");
        }
        let counts: Vec<AtomicUsize> = (0..37).map(|_| AtomicUsize::new(0)).collect();
        for_each(counts.len(), |i| {
            counts[i].fetch_add(1, Ordering::Relaxed);
        });
        assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
    }

    #[test]
    fn a_team_runs_loops_on_several_threads() {
        let names = Mutex::new(std::collections::HashSet::new());
        with_team(2, || {
            for _ in 0..200 {
                for_each(64, |_| {
                    std::thread::sleep(Duration::from_micros(50));
                    names.lock().unwrap().insert(std::thread::current().id());
                });
            }
        });
        assert_eq!(names.into_inner().unwrap().len(), 2, "both threads of the team took tasks");
    }

    #[test]
    fn chunks_and_maps_cover_their_input_in_order() {
        with_team(2, || {
            let mut data = vec![0usize; 1003];
            for_each_chunk(&mut data, 10, |i, chunk| {
                assert!(chunk.len() == 10 || (i == 100 && chunk.len() == 3));
                chunk.iter_mut().enumerate().for_each(|(j, v)| *v = i * 10 + j);
            });
            assert!(data.iter().enumerate().all(|(i, &v)| v == i));
            let squares = map(777, |i| vec![i * i]);
            let sums = map_chunks(&data, 10, |i, chunk| (i, chunk.iter().sum::<usize>()));
            assert_eq!(sums.len(), 101);
            assert!(sums.iter().all(|&(i, s)| s == data[i * 10..(i * 10 + 10).min(1003)].iter().sum::<usize>()));
            assert!(squares.iter().enumerate().all(|(i, v)| v == &vec![i * i]));
            let firsts = map_chunks_mut(&mut data, 10, |i, chunk| {
                chunk.iter_mut().for_each(|v| *v += 1);
                (i, chunk[0])
            });
            assert!(firsts.iter().enumerate().all(|(i, &(j, first))| i == j && first == i * 10 + 1));
            assert!(data.iter().enumerate().all(|(i, &v)| v == i + 1));
            // Nested loops run inside the task that starts them.
            let nested = map(8, |i| map(5, |j| i * 5 + j).iter().sum::<usize>());
            assert_eq!(nested.iter().sum::<usize>(), (0..40).sum::<usize>());
            for_each_chunk(&mut [] as &mut [f32], 4, |_, _| unreachable!("no chunk of nothing"));
            assert!(map(0, |i| i).is_empty());
        });
    }

    #[test]
    fn a_panicking_task_reaches_the_caller_and_the_team_goes_on() {
        with_team(2, || {
            let caught = catch_unwind(AssertUnwindSafe(|| {
                for_each(100, |i| {
                    if i == 57 {
                        panic!("task 57");
                    }
                })
            }));
            let payload = caught.expect_err("the panic reaches the caller");
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"task 57"));
            let sum = AtomicUsize::new(0);
            for_each(100, |i| {
                sum.fetch_add(i, Ordering::Relaxed);
            });
            assert_eq!(sum.into_inner(), 4950);
        });
    }

    /// The compute threads flush subnormal numbers to zero (a deep sigmoid
    /// net trains 5× slower otherwise): helpers take the mode of the
    /// thread that starts the team.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn helpers_flush_subnormals_as_the_thread_that_starts_them() {
        std::thread::spawn(|| {
            // The flush-to-zero and denormals-are-zero bits, on this thread only.
            #[allow(deprecated)]
            // SAFETY: sets two bits of this thread's SSE control register.
            unsafe {
                std::arch::x86_64::_mm_setcsr(std::arch::x86_64::_mm_getcsr() | (1 << 15) | (1 << 6))
            };
            let seen = Mutex::new(Vec::new());
            with_team(2, || {
                for _ in 0..100 {
                    for_each(8, |_| {
                        std::thread::sleep(Duration::from_micros(50));
                        let flushed = std::hint::black_box(1e-30f32) * std::hint::black_box(1e-10f32) == 0.0;
                        seen.lock().unwrap().push((std::thread::current().id(), flushed));
                    });
                }
            });
            let seen = seen.into_inner().unwrap();
            assert!(seen.iter().all(|&(_, flushed)| flushed), "every thread of the team flushes");
            let threads: std::collections::HashSet<_> = seen.iter().map(|&(id, _)| id).collect();
            assert_eq!(threads.len(), 2, "the helper ran tasks too");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn helpers_sleep_when_idle_and_wake_for_the_next_loop() {
        with_team(2, || {
            let sum = AtomicUsize::new(0);
            for_each(10, |i| {
                sum.fetch_add(i, Ordering::Relaxed);
            });
            std::thread::sleep(WATCH * 5);
            let team = TEAM.with(Cell::get);
            // SAFETY: the team lives while this job runs.
            let sleeping = unsafe { (&(*team).shared).sleeping.load(Ordering::SeqCst) };
            assert_eq!(sleeping, 1, "the helper sleeps after watching for {WATCH:?}");
            for_each(10, |i| {
                sum.fetch_add(i, Ordering::Relaxed);
            });
            assert_eq!(sum.into_inner(), 90);
        });
    }
}
