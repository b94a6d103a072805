//! A lesson being taught in the window: its steps, what each step's button
//! started, and the figures its texts quote, filled from this lab's runs as
//! they finish (the same figures `depthlab lesson run` reports).

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;

use super::DepthLabApp;
use super::runs::RunId;
use super::state::Tab;
use super::tasks::TaskResult;
use super::why::{AnalysisKind, AnalysisResult};
use crate::lesson::figures::{Filled, Outputs};
use crate::lesson::{Action, Lesson, RunSpec};

/// A lesson on screen.
#[derive(Clone, Debug)]
pub struct LessonState {
    pub lesson: Lesson,
    /// The step shown (0-based).
    pub step: usize,
    /// The lesson's runs by the names its steps give them.
    pub runs: BTreeMap<String, RunId>,
    pub sweeps: BTreeMap<String, PathBuf>,
    pub lesions: BTreeMap<String, crate::analysis::lesion::LesionReport>,
    /// The step whose action is under way.
    pub running: Option<usize>,
    pending: VecDeque<RunSpec>,
    awaiting_sweep: Option<String>,
    awaiting_lesion: Option<Vec<String>>,
    /// Each step's "look for" text with the figures so far.
    pub filled: Vec<Option<Filled>>,
    figures_due: bool,
    computing: bool,
}

impl LessonState {
    pub fn new(lesson: Lesson) -> LessonState {
        let steps = lesson.steps.len();
        LessonState {
            lesson,
            step: 0,
            runs: BTreeMap::new(),
            sweeps: BTreeMap::new(),
            lesions: BTreeMap::new(),
            running: None,
            pending: VecDeque::new(),
            awaiting_sweep: None,
            awaiting_lesion: None,
            filled: vec![None; steps],
            figures_due: true,
            computing: false,
        }
    }

    /// What the running step is doing, in words.
    pub fn progress(&self) -> Option<String> {
        self.running?;
        if let Some(name) = &self.awaiting_sweep {
            return Some(format!("running the sweep '{name}'…"));
        }
        if let Some(runs) = &self.awaiting_lesion {
            return Some(format!("lesion study of {}…", runs.join(" and ")));
        }
        Some(if self.pending.is_empty() { "training…".into() } else { format!("training ({} more to start)…", self.pending.len()) })
    }
}

impl DepthLabApp {
    /// Starts a built-in lesson, or one read from a lab file, at step 1.
    pub(super) fn start_lesson(&mut self, name: &str) {
        match crate::lesson::find(name).and_then(|l| crate::lesson::check(&l).map(|()| l)) {
            Ok(lesson) => {
                self.info(format!("lesson: {}", lesson.title));
                self.lesson = Some(LessonState::new(lesson));
            }
            Err(e) => self.error(e),
        }
    }

    /// Runs what step `index` needs.
    pub(super) fn run_lesson_step(&mut self, index: usize) {
        if self.is_training() || self.why.is_running() {
            self.error("something is running: let it finish (or stop it) before this step");
            return;
        }
        let Some(lesson) = &mut self.lesson else { return };
        let Some(step) = lesson.lesson.steps.get(index) else { return };
        lesson.step = index;
        match step.action.clone() {
            Action::Read => return,
            Action::Train { runs } => lesson.pending = runs.into(),
            Action::Sweep { name, families, depths, seeds, config } => {
                lesson.awaiting_sweep = Some(name);
                self.state.train = self.keep_compute(config);
                self.lr_field = self.state.train.lr;
                let s = &mut self.state.sweep;
                s.families = families;
                s.depths = depths.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(",");
                s.seeds = seeds;
                s.max_steps = self.state.train.max_steps;
                s.epochs = self.state.train.epochs;
                s.overrides = self.state.train.overrides;
                // A sweep that fails to start must not leave an earlier
                // sweep's folder to be read as this step's.
                self.sweep.out_dir = None;
                self.start_sweep();
                self.state.tab = Tab::Sweep;
            }
            Action::Lesion { runs, examples } => {
                let ids: Vec<Option<RunId>> = runs.iter().map(|n| lesson.runs.get(n).copied()).collect();
                if let Some(missing) = runs.iter().zip(&ids).find(|(_, id)| id.is_none()).map(|(n, _)| n.clone()) {
                    self.error(format!("run the step that trains {missing} first"));
                    return;
                }
                lesson.awaiting_lesion = Some(runs);
                self.why.kind = AnalysisKind::Lesion;
                self.why.lesion_examples = examples;
                self.why.runs = [ids.first().copied().flatten(), ids.get(1).copied().flatten()];
                self.why.results = [None, None];
                self.start_analysis();
                self.state.tab = Tab::Why;
            }
        }
        if let Some(lesson) = &mut self.lesson {
            lesson.running = Some(index);
        }
    }

    /// The lesson's settings with this window's compute choices.
    fn keep_compute(&self, config: crate::train::TrainConfig) -> crate::train::TrainConfig {
        crate::train::TrainConfig { backend: self.state.train.backend, threads: self.state.train.threads, ..config }
    }

    /// Each frame: starts the step's next run, takes in what finished, and
    /// fills the figures again when something new is there.
    pub(super) fn lesson_tick(&mut self) {
        let training = self.is_training();
        let analysing = self.why.is_running();
        let Some(lesson) = &mut self.lesson else { return };
        if lesson.running.is_none() {
            return self.lesson_figures();
        }
        if !training && let Some(spec) = lesson.pending.pop_front() {
            self.start_lesson_run(spec);
            return;
        }
        if let Some(name) = lesson.awaiting_sweep.clone().filter(|_| !training) {
            if let Some(dir) = self.sweep.out_dir.clone() {
                lesson.sweeps.insert(name, dir);
            }
            lesson.awaiting_sweep = None;
            lesson.figures_due = true;
        }
        if let Some(runs) = lesson.awaiting_lesion.clone().filter(|_| !analysing) {
            lesson.lesions.extend(lesion_reports(&self.why, &runs));
            lesson.awaiting_lesion = None;
            lesson.figures_due = true;
        }
        if !training && lesson.pending.is_empty() && lesson.awaiting_sweep.is_none() && lesson.awaiting_lesion.is_none() {
            lesson.running = None;
            lesson.figures_due = true;
        }
        self.lesson_figures();
    }

    fn start_lesson_run(&mut self, spec: RunSpec) {
        let arch = match crate::arch::presets::build(&spec.arch, spec.config.data.expected_shape()) {
            Ok(arch) => arch,
            Err(e) => {
                self.error(format!("lesson run {}: {e}", spec.name));
                self.abandon_lesson_step();
                return;
            }
        };
        self.state.train = self.keep_compute(spec.config.clone());
        self.lr_field = self.state.train.lr;
        self.builder.replace(arch.clone());
        self.start_training(arch, None, "");
        let Some(id) = self.active.as_ref().map(|a| a.run) else {
            // The run could not start (start_training said why).
            self.abandon_lesson_step();
            return;
        };
        if let Some(view) = self.runs.get_mut(id) {
            view.name = spec.run_name();
        }
        self.runs.refresh_labels();
        if let Some(lesson) = &mut self.lesson {
            lesson.runs.insert(spec.name, id);
            lesson.figures_due = true;
        }
    }

    /// Ends the running step where one of its runs cannot start.
    fn abandon_lesson_step(&mut self) {
        if let Some(lesson) = &mut self.lesson {
            lesson.running = None;
            lesson.pending.clear();
        }
    }

    /// Fills every step's figures on a background thread (they are read
    /// from the run and sweep folders) when something new finished.
    fn lesson_figures(&mut self) {
        let Some(lesson) = &mut self.lesson else { return };
        if !lesson.figures_due || lesson.computing {
            return;
        }
        lesson.figures_due = false;
        lesson.computing = true;
        let outputs = Outputs {
            runs: lesson
                .runs
                .iter()
                .filter_map(|(name, id)| {
                    self.runs.get(*id).filter(|r| !r.is_running()).and_then(|r| r.dir.clone()).map(|d| (name.clone(), d))
                })
                .collect(),
            sweeps: lesson.sweeps.clone(),
            lesions: lesson.lesions.clone(),
        };
        let texts: Vec<String> = lesson.lesson.steps.iter().map(|s| s.look_for.clone()).collect();
        self.tasks.spawn("lesson-figures", move || TaskResult::LessonFigures(outputs.fill_all(&texts)));
    }

    pub(super) fn lesson_figures_done(&mut self, filled: Vec<Filled>) {
        let Some(lesson) = &mut self.lesson else { return };
        lesson.computing = false;
        lesson.filled = filled.into_iter().map(Some).collect();
    }

    /// Rebuilds a reopened lesson's names from the lab: runs named as its
    /// steps name them, the sweep shown, the lesion results on screen.
    pub(super) fn relink_lesson(&mut self, lesson: Lesson, step: usize) {
        let mut state = LessonState::new(lesson);
        state.step = step.min(state.lesson.steps.len().saturating_sub(1));
        for step in &state.lesson.steps {
            for spec in step.action.runs() {
                let name = spec.run_name();
                if let Some(run) = self.runs.runs.iter().rev().find(|r| r.name == name) {
                    state.runs.insert(spec.name.clone(), run.id);
                }
            }
            if let (Action::Sweep { name, .. }, Some(dir)) = (&step.action, &self.sweep.out_dir) {
                state.sweeps.insert(name.clone(), dir.clone());
            }
            if let Action::Lesion { runs, .. } = &step.action {
                state.lesions.extend(lesion_reports(&self.why, runs));
            }
        }
        self.lesson = Some(state);
    }
}

/// The lesion studies on the Why tab's two sides, by the names a lesson's
/// step gave their runs (side 0 first).
fn lesion_reports(why: &super::why::WhyState, runs: &[String]) -> Vec<(String, crate::analysis::lesion::LesionReport)> {
    runs.iter()
        .zip(&why.results)
        .filter_map(|(name, result)| match result {
            Some((_, AnalysisResult::Lesion(report))) => Some((name.clone(), report.clone())),
            _ => None,
        })
        .collect()
}
