//! Analyses of why shortcuts work, run on trained run folders (or, for
//! [`paths`], on a freshly initialised preset):
//!
//! - [`lesion`]: Veit, Wilber & Belongie (2016) remove blocks at test time;
//! - [`paths`]: the same paper's gradient per path length (fig. 6);
//! - [`landscape`]: Li, Xu, Taylor, Studer & Goldstein (2018), the loss on a
//!   plane of filter-normalised random directions through the trained
//!   weights, and on the line from the initial weights.
//!
//! Each analysis is one library call that takes a [`Progress`] (a fraction
//! reporter and a cancel flag), so the window can run it on a background
//! thread, show a progress bar and stop it; the command line passes
//! [`Progress::none`]. Nothing here is part of training.

pub mod landscape;
pub mod lesion;
pub mod paths;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::data::{DataSpec, Dataset};
use crate::train::runfolder::{RunFolder, RunFolderError};

/// Why an analysis did not finish.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// The input cannot be analysed (missing run, no weights, bad settings):
    /// the user can fix it; the command line exits 2.
    #[error("{0}")]
    Input(String),
    /// The cancel flag was raised.
    #[error("cancelled")]
    Cancelled,
    /// Something failed while computing (a device read, a file write).
    #[error("{0}")]
    Failed(String),
    /// The analysis would run longer than its caller allows: how long, from
    /// the time its first evaluation took.
    #[error(
        "{what} would take about {} here ({points} more {unit} at {each:.2} s each, {workers} at a time); \
         give --yes to run it anyway, or ask for less",
        duration_words(*secs)
    )]
    TooLong { what: &'static str, secs: f64, points: usize, unit: &'static str, each: f64, workers: usize },
}

/// The longest the command line lets an analysis run without `--yes`.
pub const CONFIRM_AFTER_SECS: f64 = 600.0;

/// `secs` in the unit a person reads best.
pub fn duration_words(secs: f64) -> String {
    match secs {
        s if s < 120.0 => format!("{s:.0} s"),
        s if s < 7200.0 => format!("{:.0} minutes", s / 60.0),
        s if s < 172_800.0 => format!("{:.0} hours", s / 3600.0),
        s => format!("{:.0} days", s / 86_400.0),
    }
}

/// What an analysis still has to do after its first evaluation, which
/// took `first` seconds: refused when, `workers` at a time, it would run
/// past `limit` seconds (no limit when `None`).
pub struct Budget {
    pub limit: Option<f64>,
    pub what: &'static str,
    pub unit: &'static str,
    pub workers: usize,
}

impl Budget {
    /// An analysis whose points run on every worker of the pool.
    pub fn parallel(limit: Option<f64>, what: &'static str, unit: &'static str) -> Budget {
        Budget { limit, what, unit, workers: rayon::current_num_threads().max(1) }
    }

    pub fn check(&self, first: f64, points: usize) -> Result<(), AnalysisError> {
        let Some(limit) = self.limit else { return Ok(()) };
        let workers = self.workers.clamp(1, points.max(1));
        let secs = first * points as f64 / workers as f64;
        if secs > limit {
            return Err(AnalysisError::TooLong { what: self.what, secs, points, unit: self.unit, each: first, workers });
        }
        Ok(())
    }
}

impl AnalysisError {
    /// Bad input exits 2 (as does an analysis that would run too long), a
    /// failure 1, a cancel 130 (as Ctrl-C does).
    pub fn exit_code(&self) -> i32 {
        match self {
            AnalysisError::Input(_) | AnalysisError::TooLong { .. } => 2,
            AnalysisError::Cancelled => 130,
            AnalysisError::Failed(_) => 1,
        }
    }
}

impl From<RunFolderError> for AnalysisError {
    fn from(e: RunFolderError) -> Self {
        AnalysisError::Input(e.to_string())
    }
}

/// Progress reporting and cancellation for a long analysis.
pub struct Progress<'a> {
    /// Called with the fraction done, 0 to 1.
    pub report: &'a dyn Fn(f32),
    /// Raised by the caller to stop the analysis at the next check.
    pub cancel: &'a AtomicBool,
}

static NEVER: AtomicBool = AtomicBool::new(false);

impl Progress<'static> {
    /// No reporting, no cancelling.
    pub fn none() -> Progress<'static> {
        Progress { report: &|_| {}, cancel: &NEVER }
    }
}

impl Progress<'_> {
    /// Reports `done / total` and fails with [`AnalysisError::Cancelled`]
    /// when the cancel flag is raised.
    pub fn step(&self, done: usize, total: usize) -> Result<(), AnalysisError> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(AnalysisError::Cancelled);
        }
        (self.report)(if total == 0 { 1.0 } else { (done as f32 / total as f32).clamp(0.0, 1.0) });
        Ok(())
    }
}

/// A stretch of an analysis's progress: `count` points starting at
/// `start` of `total` steps, each worth `cost` steps.
pub struct Share<'a, 'p> {
    pub progress: &'a Progress<'p>,
    pub start: usize,
    pub cost: usize,
    pub total: usize,
}

/// `point(0) … point(count − 1)`, evaluated on as many worker threads as
/// the current thread pool has, each computing its points alone (a pool of
/// one thread): an evaluation's forward passes are too small to keep two
/// cores busy in step (measured on the loss landscape of resnet-20: 0.72 s
/// a point this way against 0.89 s with both cores on each point), and a
/// point's value does not depend on which worker computed it (the kernels
/// sum in an order fixed by the shapes). Progress is reported and the cancel
/// flag checked as points finish; a failure or a cancel stops every worker
/// at its next point.
pub fn in_parallel<T: Send>(
    count: usize,
    point: &(dyn Fn(usize) -> Result<T, AnalysisError> + Sync),
    share: &Share,
) -> Result<Vec<T>, AnalysisError> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let workers = rayon::current_num_threads().clamp(1, count.max(1));
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let cancel = share.progress.cancel;
    let (send, receive) = std::sync::mpsc::channel::<(usize, Result<T, AnalysisError>)>();
    let mut values: Vec<Option<T>> = (0..count).map(|_| None).collect();
    std::thread::scope(|scope| -> Result<(), AnalysisError> {
        for w in 0..workers {
            let send = send.clone();
            let (next, stop) = (&next, &stop);
            let work = move || {
                while !stop.load(Ordering::Relaxed) && !cancel.load(Ordering::Relaxed) {
                    let p = next.fetch_add(1, Ordering::Relaxed);
                    if p >= count || send.send((p, point(p))).is_err() {
                        break;
                    }
                }
            };
            std::thread::Builder::new()
                .name(format!("analysis-{w}"))
                .spawn_scoped(scope, move || match crate::util::threads::pool(Some(1), "analysis-point") {
                    Ok(pool) => pool.install(work),
                    Err(_) => work(),
                })
                .map_err(|e| AnalysisError::Failed(format!("cannot start a worker thread: {e}")))?;
        }
        drop(send);
        let mut collect = || -> Result<(), AnalysisError> {
            share.progress.step(share.start, share.total)?;
            for (done, (p, value)) in receive.iter().enumerate() {
                values[p] = Some(value?);
                share.progress.step(share.start + share.cost * (done + 1), share.total)?;
            }
            // The workers also stop when the cancel flag is raised: this
            // step reports it.
            share.progress.step(share.start + share.cost * count, share.total)
        };
        let result = collect();
        // Stops the workers at their next point after a failure or a cancel.
        stop.store(true, Ordering::Relaxed);
        result
    })?;
    // Every point sent its value (a failure returned above).
    values.into_iter().map(|v| v.ok_or_else(|| AnalysisError::Failed("a worker stopped early".into()))).collect()
}

/// Opens a run folder and loads its data set with the run's normalisation;
/// a run that saved no weights is refused here, before any work.
pub fn open_run(dir: &Path) -> Result<(RunFolder, Dataset), AnalysisError> {
    let run = RunFolder::open(dir)?;
    if !dir.join(crate::train::runfolder::MODEL_FILE).exists() {
        // load_network explains why the weights are missing.
        run.load_network(&burn::prelude::Device::flex())?;
    }
    let info = &run.record.dataset;
    let spec: DataSpec = info.spec.parse().map_err(|e| AnalysisError::Input(format!("the run's data '{}': {e}", info.spec)))?;
    let mut data = Dataset::load(&spec).map_err(|e| AnalysisError::Input(format!("the run's data: {e}")))?;
    if data.shape() != info.input || data.classes() != info.class_names.len() {
        return Err(AnalysisError::Input(format!(
            "the run's data {} now has {} images of {} classes; the run was trained on {} images of {} classes",
            info.spec,
            data.shape(),
            data.classes(),
            info.input,
            info.class_names.len()
        )));
    }
    // The model saw its own run's statistics, whatever the files hold now.
    data.normalization = info.normalization.clone();
    // A run trained on the first N examples (`--train-examples`): the
    // training loss of an analysis is over those N, as the run's was.
    if info.train_examples < data.train.len() {
        data = data.truncated(info.train_examples, usize::MAX);
    }
    Ok((run, data))
}

/// `C(n, k)` in floating point (exact up to 2^53; n of 54 and more fits).
pub fn binomial(n: usize, k: usize) -> f64 {
    if k > n {
        return 0.0;
    }
    let k = k.min(n - k);
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// Mean and (population) standard deviation.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// The median (NaN for no values).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_counts_paths_exactly() {
        assert_eq!(binomial(27, 0), 1.0);
        assert_eq!(binomial(27, 1), 27.0);
        assert_eq!(binomial(27, 13), 20_058_300.0);
        assert_eq!(binomial(4, 5), 0.0);
        let total: f64 = (0..=54).map(|k| binomial(54, k)).sum();
        assert!((total / 2f64.powi(54) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn median_and_spread() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(mean_std(&[1.0, 3.0]), (2.0, 1.0));
    }

    #[test]
    fn points_computed_in_parallel_come_back_in_order_with_their_progress() {
        let cancel = AtomicBool::new(false);
        let seen = std::sync::Mutex::new(Vec::new());
        let report = |f: f32| seen.lock().unwrap().push(f);
        let progress = Progress { report: &report, cancel: &cancel };
        let square = |p: usize| -> Result<usize, AnalysisError> { Ok(p * p) };
        let values = in_parallel(7, &square, &Share { progress: &progress, start: 3, cost: 2, total: 20 }).unwrap();
        assert_eq!(values, (0..7).map(|p| p * p).collect::<Vec<_>>());
        {
            let seen = seen.lock().unwrap();
            assert_eq!(seen.first(), Some(&0.15), "starts at its share's start");
            assert_eq!(seen.last(), Some(&(17.0 / 20.0)), "ends at its share's end");
            assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        }
        assert!(in_parallel(0, &square, &Share { progress: &progress, start: 0, cost: 1, total: 1 }).unwrap().is_empty());
    }

    #[test]
    fn a_failing_point_or_a_cancel_stops_the_parallel_points() {
        let cancel = AtomicBool::new(false);
        let progress = Progress { report: &|_| {}, cancel: &cancel };
        let share = Share { progress: &progress, start: 0, cost: 1, total: 50 };
        let fails = |p: usize| if p == 5 { Err(AnalysisError::Failed("point 5".into())) } else { Ok(p) };
        assert!(matches!(in_parallel(50, &fails, &share), Err(AnalysisError::Failed(m)) if m == "point 5"));
        // A point raises the flag, as the window's Cancel button does: the
        // result is a cancel, not a short list.
        let cancels = |p: usize| {
            if p == 3 {
                cancel.store(true, Ordering::Relaxed);
            }
            Ok(p)
        };
        assert!(matches!(in_parallel(50, &cancels, &share), Err(AnalysisError::Cancelled)));
    }

    #[test]
    fn a_raised_cancel_flag_stops_at_the_next_step() {
        let cancel = AtomicBool::new(false);
        let seen = std::cell::Cell::new(0.0);
        let report = |f: f32| seen.set(f);
        let progress = Progress { report: &report, cancel: &cancel };
        assert!(progress.step(1, 4).is_ok());
        assert_eq!(seen.get(), 0.25);
        cancel.store(true, Ordering::Relaxed);
        assert!(matches!(progress.step(2, 4), Err(AnalysisError::Cancelled)));
    }
}
