//! The lab on screen as a lab file, and a lab file put on screen: each
//! panel's state taken from the window or given back to it.

use std::path::{Path, PathBuf};

use super::DepthLabApp;
use super::builder::BuilderState;
use super::lab::{
    BuildPanel, ClassifyPanel, LabFile, LabRun, OpenedLab, SavedResult, SweepPanel, TrainPanel, ViewPanel, WhyPanel, relative_to, resolve,
};
use super::runs::{RunId, RunView};
use super::state::Persisted;
use super::tasks::TaskResult;
use super::{ClassifyState, SweepState};

/// Why a lab cannot be opened now.
#[derive(Debug, thiserror::Error)]
pub enum OpenLabError {
    #[error("a run or sweep is training: stop it before opening another lab")]
    Training,
    #[error("an analysis is running: cancel it before opening another lab")]
    Analysing,
}

impl DepthLabApp {
    /// The lab on screen; paths relative to `base` (the lab file's folder)
    /// where they lie under it, absolute otherwise.
    pub fn capture_lab(&self, base: Option<&Path>) -> LabFile {
        // Runs without a folder yet (starting) cannot be reopened.
        let saved: Vec<&RunView> = self.runs.runs.iter().filter(|r| r.dir.is_some()).collect();
        let index = |id: Option<RunId>| id.and_then(|id| saved.iter().position(|r| r.id == id));
        let runs = saved
            .iter()
            .map(|r| LabRun {
                path: relative_to(r.dir.as_deref().unwrap_or(Path::new("")), base),
                name: r.name.clone(),
                color: [r.color.r(), r.color.g(), r.color.b()],
                visible: r.visible,
                group: r.group.clone(),
            })
            .collect();
        let s = &self.state;
        let zoom = if s.present { s.zoom } else { self.ctx.zoom_factor() };
        let present_zoom = if s.present { self.ctx.zoom_factor() } else { s.present_zoom };
        let results = std::array::from_fn(|side| {
            self.why.results[side]
                .as_ref()
                .and_then(|(label, result)| serde_json::to_value(SavedResult { label: label.clone(), result: result.clone() }).ok())
        });
        LabFile {
            view: ViewPanel { tab: s.tab, dark: s.dark, zoom, present: s.present, present_zoom },
            build: BuildPanel { arch: Some(self.builder.arch.to_value()), arch_path: s.arch_path.clone() },
            train: TrainPanel {
                config: s.train.clone(),
                show_output_grad: s.show_output_grad,
                show_weight_grad: s.show_weight_grad,
                group_seeds: s.group_seeds,
                selected_run: index(self.runs.selected),
            },
            sweep: SweepPanel {
                settings: s.sweep.clone(),
                folder: self
                    .sweep
                    .out_dir
                    .as_deref()
                    .filter(|d| d.join(crate::experiment::SWEEP_FILE).is_file())
                    .map(|d| relative_to(d, base)),
            },
            classify: ClassifyPanel { image_path: s.image_path.clone(), run: index(self.classify.run) },
            why: WhyPanel {
                analysis: self.why.kind,
                runs: [index(self.why.runs[0]), index(self.why.runs[1])],
                lesion_examples: self.why.lesion_examples,
                path_samples: self.why.path_samples,
                landscape_grid: self.why.landscape_grid,
                landscape_subset: self.why.landscape_subset,
                results,
            },
            runs_dir: s.runs_dir.clone(),
            runs,
            lesson: self.lesson.as_ref().map(|l| l.lesson.clone()),
            lesson_step: self.lesson.as_ref().map(|l| l.step),
            ..LabFile::default()
        }
    }

    /// Reads a lab file and its run folders on a background thread; the
    /// lab replaces the one on screen when they are read.
    pub(super) fn open_lab(&mut self, path: PathBuf) {
        if let Err(e) = self.can_open_lab() {
            self.error(e);
            return;
        }
        self.tasks.spawn("open-lab", move || match LabFile::read(&path) {
            Ok(lab) => TaskResult::LabOpened(Box::new(OpenedLab::open(lab, Some(path)))),
            Err(e) => TaskResult::Error(e.to_string()),
        });
    }

    /// The window's last lab, opened at start (its run folders read in the
    /// background), then the runs folder scanned for runs made since.
    pub(super) fn reopen_last_lab(&mut self, lab: LabFile) {
        self.tasks.spawn("open-lab", move || TaskResult::LabOpened(Box::new(OpenedLab::open(lab, None))));
    }

    fn can_open_lab(&self) -> Result<(), OpenLabError> {
        if self.is_training() {
            return Err(OpenLabError::Training);
        }
        if self.why.is_running() {
            return Err(OpenLabError::Analysing);
        }
        Ok(())
    }

    /// Saves the lab to `path` (and remembers it as this window's lab).
    pub(super) fn save_lab(&mut self, path: PathBuf) {
        let path = with_extension(path);
        let lab = self.capture_lab(path.parent());
        match lab.write(&path) {
            Ok(()) => {
                self.state.lab_path = path.display().to_string();
                super::lab::remember(&mut self.state.recent_labs, &path);
                self.info(format!("saved the lab to {} ({} runs)", path.display(), lab.runs.len()));
            }
            Err(e) => self.error(e),
        }
    }

    /// Saves to `path`, or to the lab's own file, or asks where.
    pub(super) fn save_lab_to(&mut self, path: Option<PathBuf>) {
        match path.or_else(|| Some(PathBuf::from(&self.state.lab_path)).filter(|p| !p.as_os_str().is_empty())) {
            Some(path) => self.save_lab(path),
            None => self.ask_path(super::tasks::Pick::SaveLab),
        }
    }

    /// An empty lab: the default settings, no runs (their folders stay on disk).
    pub(super) fn new_lab(&mut self) {
        if let Err(e) = self.can_open_lab() {
            self.error(e);
            return;
        }
        let recent = std::mem::take(&mut self.state.recent_labs);
        let lab = LabFile { runs_dir: self.state.runs_dir.clone(), ..LabFile::default() };
        self.apply_lab(OpenedLab { path: None, lab, folders: Vec::new() });
        self.state.recent_labs = recent;
        self.state.lab_path.clear();
        self.info("a new lab (earlier runs stay in their folders: File → Load run folder, or open a lab)");
    }

    /// Puts an opened lab on screen, replacing the one there.
    pub(super) fn apply_lab(&mut self, opened: OpenedLab) {
        if let Err(e) = self.can_open_lab() {
            self.error(e);
            return;
        }
        let OpenedLab { path, lab, folders } = opened;
        let base = path.as_deref().and_then(Path::parent).map(Path::to_path_buf);
        self.apply_panels(&lab);
        // The runs, in order; a folder that could not be read is named, not fatal.
        // Run ids keep counting up: nothing that named an old run names a new one.
        self.runs.runs.clear();
        self.runs.selected = None;
        self.renaming = None;
        self.confirm_delete = None;
        let mut ids: Vec<Option<RunId>> = Vec::with_capacity(lab.runs.len());
        let mut missing = Vec::new();
        for (run, folder) in lab.runs.iter().zip(folders) {
            match folder {
                Ok(folder) => {
                    let id = self.runs.next_id();
                    let mut view = RunView::from_folder(id, folder, Some(run.name.clone()).filter(|n| !n.is_empty()));
                    view.color = egui::Color32::from_rgb(run.color[0], run.color[1], run.color[2]);
                    view.visible = run.visible;
                    view.group.clone_from(&run.group);
                    self.runs.runs.push(view);
                    ids.push(Some(id));
                }
                Err(e) => {
                    missing.push(e);
                    ids.push(None);
                }
            }
        }
        self.runs.refresh_labels();
        let id = |i: Option<usize>| i.and_then(|i| ids.get(i).copied().flatten());
        self.runs.selected = id(lab.train.selected_run);
        self.classify = ClassifyState { run: id(lab.classify.run), ..ClassifyState::default() };
        self.apply_why(&lab.why, &id);
        self.sweep = SweepState::default();
        if let Some(folder) = &lab.sweep.folder {
            let dir = resolve(folder, base.as_deref());
            if dir.join(crate::experiment::SWEEP_FILE).is_file() {
                self.follow_sweep(Some(dir));
            } else {
                missing.push(format!("the sweep {}: no {} there", dir.display(), crate::experiment::SWEEP_FILE));
            }
        }
        self.lesson = None;
        if let Some(lesson) = lab.lesson.clone() {
            self.relink_lesson(lesson, lab.lesson_step.unwrap_or(0));
        }
        if let Some(p) = &path {
            self.state.lab_path = p.display().to_string();
            super::lab::remember(&mut self.state.recent_labs, p);
        }
        let name = path.as_ref().map_or("the last lab".to_string(), |p| p.display().to_string());
        if missing.is_empty() {
            let n = ids.len();
            self.info(format!("opened {name}: {n} run{}", if n == 1 { "" } else { "s" }));
        } else {
            self.error(format!("opened {name}, but {} of what it shows could not be read: {}", missing.len(), missing.join("; ")));
        }
    }

    /// The panels' settings from a lab file.
    fn apply_panels(&mut self, lab: &LabFile) {
        let defaults = Persisted::default();
        let s = &mut self.state;
        s.tab = lab.view.tab;
        s.dark = lab.view.dark;
        s.arch_path.clone_from(&lab.build.arch_path);
        s.train = lab.train.config.clone();
        s.show_output_grad = lab.train.show_output_grad;
        s.show_weight_grad = lab.train.show_weight_grad;
        s.group_seeds = lab.train.group_seeds;
        s.sweep = lab.sweep.settings.clone();
        s.runs_dir.clone_from(&lab.runs_dir);
        s.image_path = if lab.classify.image_path.is_empty() { defaults.image_path } else { lab.classify.image_path.clone() };
        self.lr_field = s.train.lr;
        self.ctx.set_theme(if s.dark { egui::Theme::Dark } else { egui::Theme::Light });
        // Presentation mode left as it is, then set from the lab.
        s.present = false;
        s.present_zoom = super::present::clamp_zoom(lab.view.present_zoom);
        let zoom = if lab.view.zoom.is_finite() { lab.view.zoom.clamp(0.5, 3.0) } else { 1.0 };
        self.ctx.set_zoom_factor(zoom);
        self.set_present(lab.view.present);
        let input = self.input_info();
        let arch = lab
            .build
            .arch
            .as_ref()
            .and_then(|v| crate::arch::Architecture::from_value(v).ok())
            .filter(|a| !a.blocks.is_empty())
            .unwrap_or_else(|| self.builder.arch.clone());
        self.builder = BuilderState::new(arch, input.shape, input.classes);
    }

    fn apply_why(&mut self, why: &WhyPanel, id: &dyn Fn(Option<usize>) -> Option<RunId>) {
        let mut state = super::why::WhyState::new();
        state.kind = why.analysis;
        state.runs = [id(why.runs[0]), id(why.runs[1])];
        state.lesion_examples = why.lesion_examples;
        state.path_samples = why.path_samples;
        state.landscape_grid = why.landscape_grid;
        state.landscape_subset = why.landscape_subset;
        for side in 0..2 {
            // A result of another analysis comes back too: the tab keeps it
            // out of sight until that analysis is chosen again.
            let saved = why.results[side].clone().and_then(|v| serde_json::from_value::<SavedResult>(v).ok());
            state.results[side] = saved.map(|s| (s.label, s.result));
        }
        self.why = state;
    }
}

/// `path` with the `.depthlab` extension when it has none.
fn with_extension(path: PathBuf) -> PathBuf {
    if path.extension().is_some() { path } else { path.with_extension(super::lab::EXTENSION) }
}
