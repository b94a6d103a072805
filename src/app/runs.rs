//! The runs the lab knows: the one training now, those a sweep made, and
//! those reloaded from `runs/`. Each keeps what its events reported, and a
//! snapshot of the architecture it trained.

use std::path::PathBuf;

use egui::Color32;

use crate::arch::Architecture;
use crate::train::events::{Evaluation, Event, GradientSnapshot, ProbeSnapshot, ProbeValue, Started, StepMetrics};
use crate::train::runfolder::RunFolder;
use crate::train::{RunStatus, Summary, TrainConfig};

pub type RunId = u64;

/// Distinct colours for runs, readable on dark and light backgrounds.
pub const PALETTE: [Color32; 12] = [
    Color32::from_rgb(66, 165, 245),
    Color32::from_rgb(239, 83, 80),
    Color32::from_rgb(102, 187, 106),
    Color32::from_rgb(255, 167, 38),
    Color32::from_rgb(171, 71, 188),
    Color32::from_rgb(0, 188, 212),
    Color32::from_rgb(244, 143, 177),
    Color32::from_rgb(141, 110, 99),
    Color32::from_rgb(212, 225, 87),
    Color32::from_rgb(120, 144, 156),
    Color32::from_rgb(63, 81, 181),
    Color32::from_rgb(0, 150, 136),
];

/// One run as the lab shows it.
#[derive(Clone, Debug)]
pub struct RunView {
    pub id: RunId,
    pub name: String,
    /// The name as shown: with the settings that differ from a twin of the
    /// same name (`plain-mlp-30 · sigmoid`); see [`RunStore::refresh_labels`].
    pub label: String,
    /// The sweep a run belongs to (shown in its own collapsed group).
    pub group: Option<String>,
    pub color: Color32,
    /// The architecture exactly as trained (later edits in the builder do not change it).
    pub arch: Architecture,
    pub config: TrainConfig,
    pub dir: Option<PathBuf>,
    pub status: RunStatus,
    pub preparing: Option<String>,
    pub paused: bool,
    pub started: Option<Started>,
    pub steps: Vec<StepMetrics>,
    pub evals: Vec<Evaluation>,
    pub gradients: Vec<GradientSnapshot>,
    pub probes: Vec<ProbeSnapshot>,
    /// The latest decision boundary (runs on 2-D data).
    pub boundary: Option<crate::train::events::BoundarySnapshot>,
    pub summary: Option<Summary>,
    pub visible: bool,
    pub layer_names: Vec<String>,
    pub class_names: Vec<String>,
    /// Bumped whenever gradients arrive, so cached pictures know to redraw.
    pub version: u64,
}

impl RunView {
    pub fn new(id: RunId, name: String, arch: Architecture, config: TrainConfig, dir: Option<PathBuf>) -> RunView {
        RunView {
            id,
            label: name.clone(),
            name,
            group: None,
            color: PALETTE[(id as usize) % PALETTE.len()],
            arch,
            config,
            dir,
            status: RunStatus::Running,
            preparing: Some("starting".into()),
            paused: false,
            started: None,
            steps: Vec::new(),
            evals: Vec::new(),
            gradients: Vec::new(),
            probes: Vec::new(),
            boundary: None,
            summary: None,
            visible: true,
            layer_names: Vec::new(),
            class_names: Vec::new(),
            version: 0,
        }
    }

    /// Takes in one event of this run.
    pub fn apply(&mut self, event: Event) {
        match event {
            Event::Preparing(what) => self.preparing = Some(what),
            Event::Started(started) => {
                self.preparing = None;
                self.layer_names = started.layer_names.clone();
                self.class_names = started.class_names.clone();
                if let Some(dir) = &started.run_dir {
                    self.dir = Some(dir.clone());
                }
                self.started = Some(*started);
            }
            Event::Step(step) => self.steps.push(step),
            Event::Evaluation(evaluation) => self.evals.push(*evaluation),
            Event::Gradients(gradients) => {
                self.gradients.push(gradients);
                self.version += 1;
            }
            Event::Probes(probes) => {
                self.probes.push(probes);
                self.version += 1;
            }
            Event::Boundary(boundary) => self.boundary = Some(boundary),
            Event::Paused { .. } => self.paused = true,
            Event::Resumed { .. } => self.paused = false,
            Event::Finished(summary) => {
                self.preparing = None;
                self.paused = false;
                self.status = summary.status;
                self.summary = Some(*summary);
            }
            Event::LrChanged { .. } => {}
        }
    }

    pub fn is_running(&self) -> bool {
        self.status == RunStatus::Running
    }

    /// Seconds of training so far (or in all).
    pub fn elapsed_secs(&self) -> f64 {
        match &self.summary {
            Some(s) if s.wall_secs > 0.0 => s.wall_secs,
            _ => self.steps.last().map_or(0.0, |s| s.elapsed_secs),
        }
    }

    pub fn images_per_sec(&self) -> Option<f32> {
        self.summary.as_ref().and_then(|s| s.images_per_sec).or_else(|| self.steps.last().map(|s| s.images_per_sec))
    }

    /// Test accuracy at the last evaluation.
    pub fn final_accuracy(&self) -> Option<f32> {
        self.evals.last().map(|e| e.accuracy).filter(|a| a.is_finite())
    }

    pub fn total_steps(&self) -> usize {
        self.started.as_ref().map_or(0, |s| s.total_steps)
    }

    /// The latest value of every architecture probe, by (layer, name).
    pub fn latest_probes(&self) -> Vec<ProbeValue> {
        self.probes.last().map(|p| p.values.clone()).unwrap_or_default()
    }

    /// Builds a view of a run folder read from disk.
    pub fn from_folder(id: RunId, folder: RunFolder, name: Option<String>) -> RunView {
        let mut view = RunView::new(
            id,
            name.unwrap_or_else(|| folder.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()),
            folder.arch.clone(),
            folder.record.config.clone(),
            Some(folder.dir.clone()),
        );
        view.preparing = None;
        view.class_names = folder.record.dataset.class_names.clone();
        view.evals = folder.evaluations();
        view.steps = folder.steps();
        view.gradients = folder.gradient_snapshots();
        view.probes = folder.probe_snapshots();
        for row in &folder.gradients {
            if view.layer_names.len() <= row.layer_index {
                view.layer_names.resize(row.layer_index + 1, String::new());
            }
            view.layer_names[row.layer_index].clone_from(&row.layer_name);
        }
        // Running only while another process still writes it; interrupted
        // when its writer died.
        view.status = folder.status;
        view.summary = folder.summary;
        view.version = 1;
        view
    }
}

/// The name a user gave a run, kept in its folder.
pub const LAB_FILE: &str = "lab.json";

#[derive(serde::Serialize, serde::Deserialize)]
pub struct LabMeta {
    pub name: String,
}

/// Which runs the plots show.
#[derive(Clone, Debug, PartialEq)]
pub enum Visibility {
    All,
    None,
    Only(RunId),
    /// Every run of one group shown or hidden.
    Group(String, bool),
}

/// Every run the lab shows.
#[derive(Default)]
pub struct RunStore {
    pub runs: Vec<RunView>,
    next_id: RunId,
    /// The run whose heatmap, probes and confusion matrix are shown.
    pub selected: Option<RunId>,
}

impl RunStore {
    pub fn next_id(&mut self) -> RunId {
        self.next_id += 1;
        self.next_id
    }

    pub fn add(&mut self, run: RunView) {
        self.selected = Some(run.id);
        self.runs.push(run);
    }

    pub fn get(&self, id: RunId) -> Option<&RunView> {
        self.runs.iter().find(|r| r.id == id)
    }

    pub fn get_mut(&mut self, id: RunId) -> Option<&mut RunView> {
        self.runs.iter_mut().find(|r| r.id == id)
    }

    pub fn selected(&self) -> Option<&RunView> {
        self.selected.and_then(|id| self.get(id)).or_else(|| self.runs.last())
    }

    pub fn remove(&mut self, id: RunId) -> Option<RunView> {
        let index = self.runs.iter().position(|r| r.id == id)?;
        if self.selected == Some(id) {
            self.selected = None;
        }
        Some(self.runs.remove(index))
    }

    pub fn visible(&self) -> impl Iterator<Item = &RunView> {
        self.runs.iter().filter(|r| r.visible)
    }

    /// Recomputes every run's label (after runs are added or renamed).
    pub fn refresh_labels(&mut self) {
        let labels = super::run_labels::labels(&self.runs.iter().collect::<Vec<_>>());
        for (run, label) in self.runs.iter_mut().zip(labels) {
            run.label = label;
        }
    }

    /// The groups runs belong to, in the order their first run came.
    pub fn groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = Vec::new();
        for g in self.runs.iter().filter_map(|r| r.group.as_ref()) {
            if !groups.contains(g) {
                groups.push(g.clone());
            }
        }
        groups
    }

    /// Shows all runs, none, only one, or one group on or off.
    pub fn set_visible(&mut self, which: Visibility) {
        for run in &mut self.runs {
            run.visible = match &which {
                Visibility::All => true,
                Visibility::None => false,
                Visibility::Only(id) => run.id == *id,
                Visibility::Group(group, on) if run.group.as_ref() == Some(group) => *on,
                Visibility::Group(..) => run.visible,
            };
        }
    }

    /// Whether a run of folder `dir` is in the list, however the path was
    /// written (`runs/a` as scanned, `/home/me/lab/runs/a` as a lab file
    /// resolved it).
    pub fn contains_dir(&self, dir: &std::path::Path) -> bool {
        let absolute = std::path::absolute(dir).ok();
        self.runs
            .iter()
            .filter_map(|r| r.dir.as_deref())
            .any(|d| d == dir || (absolute.is_some() && std::path::absolute(d).ok() == absolute))
    }
}

#[cfg(test)]
mod tests {
    use super::{PALETTE, RunStore, RunView};

    /// A run reopened from a lab (absolute path) and the same run found by
    /// scanning the runs folder (relative path) are one run.
    #[test]
    fn a_run_folder_is_the_same_however_its_path_is_written() {
        let mut store = RunStore::default();
        let arch = crate::arch::presets::build("resnet-8", crate::arch::Shape::Map { channels: 1, height: 8, width: 8 }).unwrap();
        let absolute = std::path::absolute("runs/a").unwrap();
        store.runs.push(RunView::new(1, "a".into(), arch, Default::default(), Some(absolute)));
        assert!(store.contains_dir(std::path::Path::new("runs/a")));
        assert!(store.contains_dir(std::path::Path::new("./runs/a")));
        assert!(!store.contains_dir(std::path::Path::new("runs/b")));
    }

    /// Twelve runs get twelve colours that do not look alike.
    #[test]
    fn runs_get_twelve_distinct_colours() {
        assert!(PALETTE.len() >= 12);
        if let Err((a, b)) = crate::report::figure::colors_apart(&PALETTE, 60.0) {
            panic!("{a:?} and {b:?} look alike");
        }
    }
}
