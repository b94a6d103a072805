//! Drawing on a budget while a run trains: the window measures what each
//! frame costs the CPU — its own thread and, where there is no GPU, the
//! software rasteriser's threads (llvmpipe, lavapipe), which under Xvfb, in
//! a VM or over remote desktop spend 50–200 ms of CPU on a full frame — and
//! lets new training data redraw it only as often as keeps that cost under
//! [`RENDER_SHARE`] of one core. On a GPU a frame costs a few milliseconds
//! and plots move at [`MAX_DATA_FPS`]; on a software renderer (measured:
//! 170 ms of CPU for a 1440x900 frame of the Train tab on llvmpipe) they
//! move every 3 s and training keeps the cores. Data redraws are one
//! interval apart however fast events arrive ([`data_redraw`]); input (a
//! click, a key, the pointer) still redraws at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The share of one core drawing may take while a run trains. Training
/// threads work in step: a core taken from one of them for a frame holds
/// the others up too, so the share is kept small.
pub const RENDER_SHARE: f64 = 0.05;
/// The most data redraws a second (plots look smooth at 15).
pub const MAX_DATA_FPS: f64 = 15.0;
/// The longest wait between data redraws (progress stays visible).
pub const MAX_INTERVAL: Duration = Duration::from_secs(3);

/// The shortest time between two data redraws, shared with the workers'
/// wakers (in microseconds).
#[derive(Clone, Debug)]
pub struct RepaintInterval(Arc<AtomicU64>);

impl Default for RepaintInterval {
    fn default() -> Self {
        Self(Arc::new(AtomicU64::new(min_interval().as_micros() as u64)))
    }
}

impl RepaintInterval {
    pub fn get(&self) -> Duration {
        Duration::from_micros(self.0.load(Ordering::Relaxed))
    }

    fn set(&self, interval: Duration) {
        self.0.store(interval.as_micros() as u64, Ordering::Relaxed);
    }
}

fn min_interval() -> Duration {
    Duration::from_secs_f64(1.0 / MAX_DATA_FPS)
}

/// The interval that keeps `cost_secs` of CPU per frame under
/// [`RENDER_SHARE`] of a core, between [`MAX_DATA_FPS`] and
/// [`MAX_INTERVAL`].
pub fn interval_for(cost_secs: f64) -> Duration {
    if !cost_secs.is_finite() || cost_secs <= 0.0 {
        return min_interval();
    }
    Duration::from_secs_f64(cost_secs / RENDER_SHARE).clamp(min_interval(), MAX_INTERVAL)
}

/// When new data should redraw the window, given when the latest data
/// redraw happened (or is due, if in the future): `Some(time)` for a new
/// redraw — now, or one interval after the latest — and `None` when the
/// one already due will show the data.
pub fn data_redraw(latest: Option<Instant>, now: Instant, interval: Duration) -> Option<Instant> {
    match latest {
        None => Some(now),
        Some(due) if due > now => None,
        Some(done) => Some((done + interval).max(now)),
    }
}

/// Measures the CPU cost of frames and sets the [`RepaintInterval`].
#[derive(Debug, Default)]
pub struct RenderBudget {
    pub interval: RepaintInterval,
    /// CPU seconds of the drawing threads at the last frame.
    last: Option<(Instant, f64)>,
    /// Smoothed CPU seconds per frame.
    cost_secs: Option<f64>,
}

impl RenderBudget {
    /// Called once a frame: the drawing threads' CPU time since the last
    /// frame is this frame's cost (the previous frame's rasterisation
    /// included), returned. `fallback_secs` (eframe's own measure of the
    /// UI thread) serves where the threads cannot be read.
    pub fn frame(&mut self, fallback_secs: Option<f32>) -> Option<f64> {
        let now = Instant::now();
        let cost = match drawing_cpu_secs() {
            Some(total) => {
                let cost = self.last.map(|(_, before)| (total - before).max(0.0));
                self.last = Some((now, total));
                cost
            }
            None => fallback_secs.map(f64::from),
        };
        if let Some(cost) = cost {
            self.cost_secs = Some(self.cost_secs.map_or(cost, |c| 0.7 * c + 0.3 * cost));
        }
        self.interval.set(interval_for(self.cost_secs.unwrap_or(0.0)));
        cost
    }

    /// Smoothed CPU milliseconds a frame costs (for the status bar).
    pub fn cost_ms(&self) -> Option<f64> {
        self.cost_secs.map(|c| c * 1000.0)
    }
}

/// CPU seconds used so far by this process's drawing threads: every thread
/// but the lab's own workers (named `depthlab-…`). Linux only.
fn drawing_cpu_secs() -> Option<f64> {
    cpu_secs_of_threads(is_drawing)
}

/// Whether a thread of this name (its `comm`) draws: it is not one of the
/// lab's workers.
fn is_drawing(comm: &str) -> bool {
    !comm.starts_with("depthlab-")
}

/// CPU seconds used so far by this process's threads whose name `keep`
/// accepts.
fn cpu_secs_of_threads(keep: impl Fn(&str) -> bool) -> Option<f64> {
    let ticks_per_sec = 100.0; // USER_HZ, the unit of /proc's times on Linux
    let mut total = 0u64;
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let path = entry.ok()?.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if !keep(comm.trim_end()) {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        // Fields after the command name's closing parenthesis: utime and
        // stime are the 12th and 13th.
        let fields: Vec<&str> = stat.rsplit_once(')').map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
        let time = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        total += time(11) + time(12);
    }
    Some(total as f64 / ticks_per_sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expensive_frames_redraw_less_often() {
        // A GPU frame of 2 ms: the most redraws a second.
        assert_eq!(interval_for(0.002), Duration::from_secs_f64(1.0 / MAX_DATA_FPS));
        // A software-rendered frame of 120 ms: 2.4 s apart, 5 % of a core.
        assert_eq!(interval_for(0.120), Duration::from_millis(2400));
        // Never slower than the limit, and unknown costs do not stop redraws.
        assert_eq!(interval_for(5.0), MAX_INTERVAL);
        assert_eq!(interval_for(f64::NAN), Duration::from_secs_f64(1.0 / MAX_DATA_FPS));
    }

    /// However fast data arrives, one redraw per interval.
    #[test]
    fn data_redraws_one_interval_apart() {
        let interval = Duration::from_millis(1700);
        let start = Instant::now();
        let mut latest = None;
        let mut redraws = Vec::new();
        // An event every 100 ms for 10 s.
        for i in 0..100u32 {
            let now = start + Duration::from_millis(100) * i;
            if let Some(due) = data_redraw(latest, now, interval) {
                latest = Some(due);
                redraws.push(due.duration_since(start).as_millis());
            }
        }
        // (The last one is due after the events stop, and shows the last data.)
        assert_eq!(redraws, [0, 1700, 3400, 5100, 6800, 8500, 10200]);
        // Data after a quiet spell redraws at once.
        let later = start + Duration::from_secs(60);
        assert_eq!(data_redraw(latest, later, interval), Some(later));
    }

    #[test]
    fn this_process_threads_are_read() {
        // Work on this thread (not a lab worker): at least 0.1 s more CPU.
        let before = drawing_cpu_secs().expect("/proc/self/task");
        let mut x = 0u64;
        for i in 0..400_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
        let after = drawing_cpu_secs().unwrap();
        assert!(after - before >= 0.1, "{before} -> {after}");
        // A lab worker's CPU is read by its name, and that name is not a
        // drawing thread's. (Measuring the drawing total while the worker
        // runs would count the other tests' threads running beside it.)
        let worker = std::thread::Builder::new().name("depthlab-test".into()).spawn(move || {
            let own = || cpu_secs_of_threads(|comm| comm == "depthlab-test").unwrap();
            let before = own();
            let mut y = 0u64;
            for i in 0..400_000_000u64 {
                y = std::hint::black_box(y.wrapping_mul(6364136223846793005).wrapping_add(i));
            }
            own() - before
        });
        assert!(worker.unwrap().join().unwrap() >= 0.1, "the worker's own CPU is read");
        assert!(!is_drawing("depthlab-test") && !is_drawing("depthlab-train"));
        assert!(is_drawing("main") && is_drawing("depthlab") && is_drawing("tokio-runtime-w"));
    }
}
