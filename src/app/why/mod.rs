//! The "Why" tab: three analyses of why shortcuts work, run on two trained
//! runs side by side (a plain net and its residual twin):
//!
//! - lesion: remove each block at test time (Veit, Wilber & Belongie 2016);
//! - paths: the gradient reaching the input by path length (the same paper);
//! - landscape: the loss around the trained weights on a plane of
//!   filter-normalised directions (Li et al. 2018).
//!
//! Each runs on a background thread (`crate::analysis`) with a progress bar
//! and a Cancel button; results stay until the next run of that side.

mod plots;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::DepthLabApp;
use super::command::AppCommand;
use super::runs::RunId;
use super::tasks::TaskResult;
use crate::analysis::landscape::{Landscape, LandscapeOptions};
use crate::analysis::lesion::{LesionOptions, LesionReport};
use crate::analysis::paths::{PathsOptions, PathsReport};
use crate::analysis::{AnalysisError, Progress};

/// Which analysis the tab runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AnalysisKind {
    #[default]
    Lesion,
    Paths,
    Landscape,
}

impl AnalysisKind {
    pub const ALL: [AnalysisKind; 3] = [AnalysisKind::Lesion, AnalysisKind::Paths, AnalysisKind::Landscape];

    pub fn title(self) -> &'static str {
        match self {
            AnalysisKind::Lesion => "Lesion study",
            AnalysisKind::Paths => "Gradient by path length",
            AnalysisKind::Landscape => "Loss landscape",
        }
    }

    fn explanation(self) -> &'static str {
        match self {
            AnalysisKind::Lesion => {
                "Remove one block at test time and measure the test error (a residual block keeps its shortcut; \
                 a plain block becomes the identity where its shape allows). Veit, Wilber & Belongie (2016): \
                 removing a single block from a ResNet barely hurts, while a plain net collapses: a residual \
                 net behaves like an ensemble of many shallower paths."
            }
            AnalysisKind::Paths => {
                "A residual net of n blocks holds C(n, k) paths through k residual branches. Letting the gradient \
                 through k sampled branches only measures the gradient one path of length k carries; times the \
                 count, the total per length. Veit et al. (2016): in ResNet-110 most of the gradient comes from \
                 paths of 5 to 17 of its 54 blocks: the short paths do the learning."
            }
            AnalysisKind::Landscape => {
                "The training loss on a plane through the trained weights, θ + αδ + βη, with random directions \
                 δ, η scaled filter by filter to the weights (Li et al. 2018). Skip connections keep the \
                 landscape smooth and bowl-shaped; deep plain nets' landscapes turn chaotic."
            }
        }
    }
}

/// A finished analysis of one run.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub enum AnalysisResult {
    Lesion(LesionReport),
    Paths(PathsReport),
    Landscape(Landscape),
}

impl AnalysisResult {
    /// The analysis this is a result of.
    pub fn kind(&self) -> AnalysisKind {
        match self {
            AnalysisResult::Lesion(_) => AnalysisKind::Lesion,
            AnalysisResult::Paths(_) => AnalysisKind::Paths,
            AnalysisResult::Landscape(_) => AnalysisKind::Landscape,
        }
    }
}

/// An analysis running for one side.
pub struct Job {
    /// Fraction done, in millionths.
    progress: Arc<AtomicU32>,
    cancel: Arc<AtomicBool>,
    kind: AnalysisKind,
}

/// The tab's settings and results; side 0 is the left run, side 1 the right.
#[derive(Default)]
pub struct WhyState {
    pub kind: AnalysisKind,
    pub runs: [Option<RunId>; 2],
    pub results: [Option<(String, AnalysisResult)>; 2],
    pub errors: [Option<String>; 2],
    jobs: [Option<Job>; 2],
    /// Test images the lesion study evaluates on.
    pub lesion_examples: usize,
    /// Block sets sampled per path length.
    pub path_samples: usize,
    pub landscape_grid: usize,
    pub landscape_subset: usize,
    /// Landscape textures, by side.
    textures: [Option<(usize, egui::TextureHandle)>; 2],
}

impl WhyState {
    pub fn new() -> WhyState {
        WhyState { lesion_examples: 1000, path_samples: 10, landscape_grid: 21, landscape_subset: 1000, ..Default::default() }
    }

    pub fn is_running(&self) -> bool {
        self.jobs.iter().any(Option::is_some)
    }
}

impl DepthLabApp {
    /// Starts the chosen analysis on the runs chosen for both sides.
    pub(super) fn start_analysis(&mut self) {
        for side in 0..2 {
            let Some(id) = self.why.runs[side] else { continue };
            let Some(run) = self.runs.get(id) else { continue };
            let Some(dir) = run.dir.clone() else {
                self.why.errors[side] = Some(format!("{} has no run folder yet", run.label));
                continue;
            };
            if run.is_running() {
                self.why.errors[side] = Some(format!("{} is still training", run.label));
                continue;
            }
            let label = run.label.clone();
            let (progress, cancel) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicBool::new(false)));
            let kind = self.why.kind;
            self.why.jobs[side] = Some(Job { progress: progress.clone(), cancel: cancel.clone(), kind });
            self.why.errors[side] = None;
            let settings = (self.why.lesion_examples, self.why.path_samples, self.why.landscape_grid, self.why.landscape_subset);
            let ctx = self.ctx.clone();
            self.tasks.spawn("analysis", move || {
                let report = move |f: f32| {
                    progress.store((f.clamp(0.0, 1.0) * 1e6) as u32, Ordering::Relaxed);
                    ctx.request_repaint();
                };
                let progress = Progress { report: &report, cancel: &cancel };
                let result = run_analysis(kind, &dir, settings, &progress);
                TaskResult::Analysis { side, label, result }
            });
        }
    }

    pub(super) fn cancel_analysis(&mut self) {
        for job in self.why.jobs.iter().flatten() {
            job.cancel.store(true, Ordering::Relaxed);
        }
    }

    /// Takes in a finished analysis.
    pub(super) fn analysis_done(&mut self, side: usize, label: String, result: Result<AnalysisResult, AnalysisError>) {
        let Some(slot) = self.why.jobs.get_mut(side) else { return };
        *slot = None;
        match result {
            Ok(result) => {
                self.why.results[side] = Some((label, result));
                self.why.textures[side] = None;
            }
            Err(AnalysisError::Cancelled) => self.why.errors[side] = Some("cancelled".into()),
            Err(e) => self.why.errors[side] = Some(format!("{label}: {e}")),
        }
    }
}

/// Runs one analysis with the tab's settings
/// (lesion examples, path samples, landscape grid, landscape subset).
fn run_analysis(
    kind: AnalysisKind,
    dir: &std::path::Path,
    (examples, samples, grid, subset): (usize, usize, usize, usize),
    progress: &Progress,
) -> Result<AnalysisResult, AnalysisError> {
    Ok(match kind {
        AnalysisKind::Lesion => {
            let options = LesionOptions { test_examples: Some(examples), ..LesionOptions::default() };
            AnalysisResult::Lesion(crate::analysis::lesion::lesion_run(dir, &options, progress)?)
        }
        AnalysisKind::Paths => {
            let options = PathsOptions { samples, ..PathsOptions::default() };
            AnalysisResult::Paths(crate::analysis::paths::paths_run(dir, &options, progress)?)
        }
        AnalysisKind::Landscape => {
            let options = LandscapeOptions { grid, subset, ..LandscapeOptions::default() };
            AnalysisResult::Landscape(crate::analysis::landscape::landscape_run(dir, &options, progress)?)
        }
    })
}

pub fn why_tab_ui(ui: &mut egui::Ui, app: &mut DepthLabApp, commands: &mut Vec<AppCommand>) {
    let mut shown = app.settings_shown();
    egui::Panel::left("why-settings").resizable(true).default_size(300.0).show_collapsible(ui, &mut shown, |ui| {
        egui::ScrollArea::vertical().id_salt("why-settings-scroll").show(ui, |ui| settings_ui(ui, app, commands));
    });
    egui::CentralPanel::default().show(ui, |ui| {
        egui::ScrollArea::vertical().id_salt("why-results-scroll").show(ui, |ui| {
            ui.heading(app.why.kind.title());
            ui.label(app.why.kind.explanation());
            ui.separator();
            let why = &mut app.why;
            ui.columns(2, |columns| {
                for (side, ui) in columns.iter_mut().enumerate() {
                    side_ui(ui, why, side);
                }
            });
        });
    });
}

fn settings_ui(ui: &mut egui::Ui, app: &mut DepthLabApp, commands: &mut Vec<AppCommand>) {
    ui.heading("Why shortcuts work");
    ui.label("Choose an analysis and two trained runs, e.g. a plain net and its residual twin.");
    ui.add_space(4.0);
    let running = app.why.is_running();
    ui.add_enabled_ui(!running, |ui| {
        for kind in AnalysisKind::ALL {
            ui.radio_value(&mut app.why.kind, kind, kind.title());
        }
        ui.add_space(4.0);
        let trained = distinct_labels(
            app.runs.runs.iter().filter(|r| r.dir.is_some() && !r.is_running()).map(|r| (r.id, r.label.clone(), r.dir.clone())).collect(),
        );
        if trained.is_empty() {
            ui.colored_label(ui.visuals().warn_fg_color, "No trained run yet: train a plain net and its residual twin in the Train tab.");
        }
        for (side, name) in ["left", "right"].into_iter().enumerate() {
            let chosen =
                app.why.runs[side].and_then(|id| trained.iter().find(|(i, _)| *i == id)).map_or("choose a run", |(_, l)| l.as_str());
            ui.horizontal(|ui| {
                let label = ui.label(name);
                egui::ComboBox::from_id_salt(("why-run", side))
                    .selected_text(chosen)
                    .width(200.0)
                    .show_ui(ui, |ui| {
                        for (id, label) in &trained {
                            ui.selectable_value(&mut app.why.runs[side], Some(*id), label);
                        }
                    })
                    .response
                    .labelled_by(label.id);
            });
        }
        egui::Grid::new("why-settings-grid").num_columns(2).show(ui, |ui| match app.why.kind {
            AnalysisKind::Lesion => {
                ui.label("test images");
                ui.add(egui::DragValue::new(&mut app.why.lesion_examples).range(10..=100_000))
                    .on_hover_text("The lesion study evaluates on the first N test images");
                ui.end_row();
            }
            AnalysisKind::Paths => {
                ui.label("samples per length");
                ui.add(egui::DragValue::new(&mut app.why.path_samples).range(1..=crate::analysis::paths::MAX_SAMPLES))
                    .on_hover_text("Random sets of k branches measured for each length k");
                ui.end_row();
            }
            AnalysisKind::Landscape => {
                ui.label("grid");
                // Odd sizes only: the middle point is the trained weights.
                let grid = &mut app.why.landscape_grid;
                ui.add(
                    egui::DragValue::from_get_set(|v| {
                        if let Some(v) = v {
                            *grid = odd_step(*grid, v);
                        }
                        *grid as f64
                    })
                    .range(3..=crate::analysis::landscape::MAX_GRID),
                )
                .on_hover_text("Points per axis (odd: the middle one is the trained weights): grid x grid evaluations of the loss");
                ui.end_row();
                ui.label("training images");
                ui.add(egui::DragValue::new(&mut app.why.landscape_subset).range(10..=60_000))
                    .on_hover_text("The loss is measured on this many training images");
                ui.end_row();
            }
        });
    });
    ui.horizontal(|ui| {
        let chosen = app.why.runs.iter().any(Option::is_some);
        if ui.add_enabled(!running && chosen, egui::Button::new("Run analysis")).clicked() {
            commands.push(AppCommand::StartAnalysis);
        }
        if ui.add_enabled(running, egui::Button::new("Cancel")).clicked() {
            commands.push(AppCommand::CancelAnalysis);
        }
    });
}

/// Run labels for a picker, each told apart: a label several runs share
/// gets its run folder's name (`resnet-8 · resnet-8-20261206-101500`).
fn distinct_labels(runs: Vec<(RunId, String, Option<std::path::PathBuf>)>) -> Vec<(RunId, String)> {
    let shared = |label: &str| runs.iter().filter(|(_, l, _)| l == label).count() > 1;
    runs.iter()
        .map(|(id, label, dir)| {
            let folder = dir.as_ref().and_then(|d| d.file_name()).map(|n| n.to_string_lossy().into_owned());
            match folder {
                Some(folder) if shared(label) && folder != *label => (*id, format!("{label} · {folder}")),
                _ => (*id, label.clone()),
            }
        })
        .collect()
}

/// One side: its progress, its error, or its result.
fn side_ui(ui: &mut egui::Ui, why: &mut WhyState, side: usize) {
    if let Some(job) = &why.jobs[side] {
        let done = job.progress.load(Ordering::Relaxed) as f32 / 1e6;
        ui.add(egui::ProgressBar::new(done).show_percentage().text(format!("{}: {:.0}%", job.kind.title(), done * 100.0)));
        return;
    }
    if let Some(e) = &why.errors[side] {
        ui.colored_label(ui.visuals().error_fg_color, e);
    }
    let Some((label, result)) = &why.results[side] else {
        if why.errors[side].is_none() {
            ui.weak(if side == 0 { "Choose a run for the left side." } else { "Choose a run for the right side." });
        }
        return;
    };
    // A result of another analysis than the one chosen is not shown under
    // its heading; it is kept, and shows again when that one is chosen.
    if result.kind() != why.kind {
        ui.weak(format!(
            "Run the {} for this side: it holds a {} of {label}, which shows again when that analysis is chosen.",
            why.kind.title().to_lowercase(),
            result.kind().title().to_lowercase()
        ));
        return;
    }
    ui.strong(label);
    match result {
        AnalysisResult::Lesion(report) => plots::lesion_ui(ui, report, side),
        AnalysisResult::Paths(report) => plots::paths_ui(ui, report, side),
        AnalysisResult::Landscape(landscape) => plots::landscape_ui(ui, landscape, side, &mut why.textures[side]),
    }
}

/// The odd grid size a drag or a typed value moves `current` to: an odd
/// value is kept, an even one goes on in the direction it moved (3 → 4
/// gives 5, 5 → 4 gives 3), so every odd size can be reached both ways.
fn odd_step(current: usize, value: f64) -> usize {
    let n = if value.is_finite() { value.round().max(1.0) as usize } else { current };
    if n % 2 == 1 {
        n
    } else if n < current {
        n - 1
    } else {
        n + 1
    }
}

#[cfg(test)]
mod tests {
    use super::{distinct_labels, odd_step};

    #[test]
    fn runs_that_share_a_label_are_told_apart_by_their_folder() {
        let runs = vec![
            (1, "resnet-8".to_string(), Some("runs/resnet-8-20261206-101500".into())),
            (2, "resnet-8".to_string(), Some("runs/resnet-8-20261206-102000".into())),
            (3, "plain-8".to_string(), Some("runs/plain-8-20261206-101000".into())),
        ];
        let labels: Vec<String> = distinct_labels(runs).into_iter().map(|(_, l)| l).collect();
        assert_eq!(labels, ["resnet-8 · resnet-8-20261206-101500", "resnet-8 · resnet-8-20261206-102000", "plain-8"]);
    }

    #[test]
    fn the_landscape_grid_moves_by_odd_sizes_both_ways() {
        assert_eq!(odd_step(5, 6.0), 7);
        assert_eq!(odd_step(5, 4.0), 3);
        assert_eq!(odd_step(5, 5.4), 5);
        assert_eq!(odd_step(21, 40.0), 41);
        assert_eq!(odd_step(21, 8.0), 7);
        assert_eq!(odd_step(21, f64::NAN), 21);
        // Typed over a big value, an even number lands on the odd one below.
        assert_eq!(odd_step(201, 200.0), 199);
    }
}
