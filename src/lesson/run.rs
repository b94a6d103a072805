//! Playing a lesson without the window (`depthlab lesson run NAME`): every
//! step's action, one after another, then its figures; each step's wall
//! time and figures reported, so a lesson is checked like code.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::figures::{Filled, Outputs};
use super::{Action, Lesson, LessonError, RunSpec};
use crate::analysis::lesion::{LesionOptions, lesion_run};
use crate::train::RunStatus;

/// What one step did.
#[derive(Clone, Debug, Serialize)]
pub struct StepReport {
    /// 1-based.
    pub step: usize,
    pub title: String,
    /// What the step's button does.
    pub action: String,
    pub wall_secs: f64,
    /// The step's "look for" text with the figures filled, the figures,
    /// and those that could not be given.
    pub look_for: Filled,
}

/// What a played lesson did.
#[derive(Clone, Debug, Serialize)]
pub struct LessonReport {
    pub lesson: String,
    pub title: String,
    pub out: PathBuf,
    pub steps: Vec<StepReport>,
    pub total_secs: f64,
}

impl LessonReport {
    /// Figures the text quotes that could not be given, by step.
    pub fn missing(&self) -> Vec<String> {
        self.steps.iter().flat_map(|s| s.look_for.missing.iter().map(move |m| format!("step {}: {m}", s.step))).collect()
    }
}

/// Plays every step of `lesson`, writing its runs under `out`;
/// `threads` caps the cores each run computes on. `on_step` is told of
/// each step as it finishes.
pub fn play(
    lesson: &Lesson,
    out: &Path,
    threads: Option<usize>,
    mut on_step: impl FnMut(&StepReport),
) -> Result<LessonReport, LessonError> {
    let started = Instant::now();
    let mut outputs = Outputs::default();
    let mut steps = Vec::new();
    for (i, step) in lesson.steps.iter().enumerate() {
        let clock = Instant::now();
        run_action(&step.action, out, threads, &mut outputs).map_err(|reason| LessonError::Step { step: i + 1, reason })?;
        let report = StepReport {
            step: i + 1,
            title: step.title.clone(),
            action: step.action.button(),
            wall_secs: clock.elapsed().as_secs_f64(),
            look_for: outputs.fill(&step.look_for),
        };
        on_step(&report);
        steps.push(report);
    }
    Ok(LessonReport {
        lesson: lesson.name.clone(),
        title: lesson.title.clone(),
        out: out.to_path_buf(),
        steps,
        total_secs: started.elapsed().as_secs_f64(),
    })
}

/// Runs one step's action, recording what it produced.
pub fn run_action(action: &Action, out: &Path, threads: Option<usize>, outputs: &mut Outputs) -> Result<(), String> {
    match action {
        Action::Read => Ok(()),
        Action::Train { runs } => {
            for spec in runs {
                let dir = out.join(&spec.name);
                train_one(spec, &dir, threads)?;
                outputs.runs.insert(spec.name.clone(), dir);
            }
            Ok(())
        }
        Action::Sweep { name, families, depths, seeds, config } => {
            let dir = out.join(name);
            let config = crate::experiment::SweepConfig {
                families: families.clone(),
                depths: depths.clone(),
                seeds: *seeds,
                train: crate::train::TrainConfig { threads: threads.or(config.threads), ..config.clone() },
                out: dir.clone(),
                resume: false,
                jobs: 1,
            };
            let handle = crate::experiment::spawn_sweep(config, None, None).map_err(|e| e.to_string())?;
            let mut failure = None;
            for event in handle.events.iter() {
                match event {
                    crate::experiment::SweepEvent::Failed(reason) => failure = Some(reason),
                    crate::experiment::SweepEvent::Finished { .. } => break,
                    _ => {}
                }
            }
            handle.join();
            if let Some(reason) = failure {
                return Err(format!("the sweep failed: {reason}"));
            }
            outputs.sweeps.insert(name.clone(), dir);
            Ok(())
        }
        Action::Lesion { runs, examples } => {
            for name in runs {
                let dir = outputs.runs.get(name).ok_or_else(|| format!("no run named {name} was trained before this step"))?;
                let options = LesionOptions { test_examples: Some(*examples), draws: 3, seed: 0, max_secs: None };
                let cancel = std::sync::atomic::AtomicBool::new(false);
                let progress = crate::analysis::Progress { report: &|_| {}, cancel: &cancel };
                let report = lesion_run(dir, &options, &progress).map_err(|e| format!("lesion study of {name}: {e}"))?;
                outputs.lesions.insert(name.clone(), report);
            }
            Ok(())
        }
    }
}

/// Trains one named run into `dir` (a run that diverges is a result, not a failure).
fn train_one(spec: &RunSpec, dir: &Path, threads: Option<usize>) -> Result<(), String> {
    let arch = crate::arch::presets::build(&spec.arch, spec.config.data.expected_shape()).map_err(|e| format!("{}: {e}", spec.name))?;
    let request = crate::train::RunRequest {
        arch,
        config: crate::train::TrainConfig { threads: threads.or(spec.config.threads), ..spec.config.clone() },
        data: None,
        out: Some(dir.to_path_buf()),
        init_weights: None,
    };
    let handle = crate::train::spawn(request, None).map_err(|e| e.to_string())?;
    let mut summary = None;
    for event in handle.events.iter() {
        if let crate::train::Event::Finished(s) = event {
            summary = Some(s);
            break;
        }
    }
    handle.join();
    match summary {
        Some(s) if matches!(s.status, RunStatus::Completed | RunStatus::Diverged) => Ok(()),
        Some(s) => Err(format!("{} {}: {}", spec.name, s.status, s.reason.unwrap_or_default())),
        None => Err(format!("{} ended without a summary", spec.name)),
    }
}
