//! Lab files (`.depthlab`, JSON; docs/LAB-FILES.md): a lab saved as it is on
//! screen, to be opened again the next day, on another machine, or by a
//! class. One serialisable state per panel (what each panel's form holds and
//! what it shows), and the runs on screen by their folders, with the names,
//! colours and visibility they were given. Runs, sweeps and Why-it-works
//! results point into run folders; the lab file holds no weights.
//!
//! The window keeps the last lab in its own storage on exit and opens it
//! again at start: the same file format, with absolute paths.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::state::{Persisted, SweepSettings, Tab};
use super::why::{AnalysisKind, AnalysisResult};
use crate::train::TrainConfig;
use crate::train::runfolder::RunFolder;

/// A lab file's extension.
pub const EXTENSION: &str = "depthlab";
/// What the `format` field of every lab file says.
pub const FORMAT: &str = "depthlab-lab";
/// The newest lab-file version this build reads and the one it writes.
pub const VERSION: u32 = 1;
/// Labs listed under File → Recent labs.
pub const RECENT: usize = 8;
/// Largest lab file read (a lab lists folders; it holds no weights).
const MAX_BYTES: u64 = 64 << 20;

/// A lab file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LabFile {
    pub format: String,
    pub version: u32,
    pub view: ViewPanel,
    pub build: BuildPanel,
    pub train: TrainPanel,
    pub sweep: SweepPanel,
    pub classify: ClassifyPanel,
    pub why: WhyPanel,
    /// Where new runs are written (as typed: relative to the working folder).
    pub runs_dir: String,
    /// The runs on screen, in the run list's order. Panels name runs by
    /// their index here.
    pub runs: Vec<LabRun>,
    /// A lesson's numbered steps (docs/LESSONS.md), and the step reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lesson: Option<crate::lesson::Lesson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lesson_step: Option<usize>,
}

impl Default for LabFile {
    fn default() -> Self {
        LabFile {
            format: FORMAT.into(),
            version: VERSION,
            view: ViewPanel::default(),
            build: BuildPanel::default(),
            train: TrainPanel::default(),
            sweep: SweepPanel::default(),
            classify: ClassifyPanel::default(),
            why: WhyPanel::default(),
            runs_dir: Persisted::default().runs_dir,
            runs: Vec::new(),
            lesson: None,
            lesson_step: None,
        }
    }
}

/// The window as a whole: the open tab, theme, zoom, presentation mode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ViewPanel {
    pub tab: Tab,
    pub dark: bool,
    /// UI zoom (1.0: 100 %).
    pub zoom: f32,
    /// Presentation mode: side panels hidden, zoom `present_zoom`.
    pub present: bool,
    pub present_zoom: f32,
}

impl Default for ViewPanel {
    fn default() -> Self {
        ViewPanel { tab: Tab::Build, dark: true, zoom: 1.0, present: false, present_zoom: super::present::DEFAULT_ZOOM }
    }
}

/// The builder: the network being built and its file field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BuildPanel {
    /// In the architecture-file format; `None` (or a network that cannot
    /// be read): the builder's starting network.
    pub arch: Option<serde_json::Value>,
    pub arch_path: String,
}

/// The Train tab: the training form and what its plots show.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainPanel {
    pub config: TrainConfig,
    pub show_output_grad: bool,
    pub show_weight_grad: bool,
    pub group_seeds: bool,
    /// The run whose heatmap and probes are shown (an index into `runs`).
    pub selected_run: Option<usize>,
}

impl Default for TrainPanel {
    fn default() -> Self {
        let p = Persisted::default();
        TrainPanel {
            config: p.train,
            show_output_grad: p.show_output_grad,
            show_weight_grad: p.show_weight_grad,
            group_seeds: p.group_seeds,
            selected_run: None,
        }
    }
}

/// The depth sweep: its form and the sweep folder on screen.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SweepPanel {
    pub settings: SweepSettings,
    /// The sweep shown (relative to the lab file where possible); it is
    /// read again from its folder when the lab opens.
    pub folder: Option<String>,
}

/// Classify: the image field and the run that classifies.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClassifyPanel {
    pub image_path: String,
    pub run: Option<usize>,
}

/// Why it works: the analysis, its settings, the two runs and their results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WhyPanel {
    pub analysis: AnalysisKind,
    pub runs: [Option<usize>; 2],
    pub lesion_examples: usize,
    pub path_samples: usize,
    pub landscape_grid: usize,
    pub landscape_subset: usize,
    /// Each side's result with the run label it was computed on, as JSON
    /// (a result this build cannot read is left out, not an error).
    pub results: [Option<serde_json::Value>; 2],
}

impl Default for WhyPanel {
    fn default() -> Self {
        let why = super::why::WhyState::new();
        WhyPanel {
            analysis: why.kind,
            runs: [None, None],
            lesion_examples: why.lesion_examples,
            path_samples: why.path_samples,
            landscape_grid: why.landscape_grid,
            landscape_subset: why.landscape_subset,
            results: [None, None],
        }
    }
}

/// A Why-it-works result as kept in a lab file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SavedResult {
    pub label: String,
    pub result: AnalysisResult,
}

/// One run on screen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LabRun {
    /// The run folder (relative to the lab file where possible).
    pub path: String,
    /// The name shown (a name given in the run list included).
    pub name: String,
    pub color: [u8; 3],
    pub visible: bool,
    /// The sweep group it sits in.
    pub group: Option<String>,
}

impl Default for LabRun {
    fn default() -> Self {
        LabRun { path: String::new(), name: String::new(), color: [128, 128, 128], visible: true, group: None }
    }
}

/// A lab file that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("cannot read lab file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a file (a folder, a pipe or a device): a lab file is a .depthlab file")]
    NotAFile { path: PathBuf },
    #[error("{path} is {bytes} bytes: too large for a lab file (at most {max} MB; a lab lists run folders, it holds no weights)", max = MAX_BYTES >> 20)]
    TooLarge { path: PathBuf, bytes: u64 },
    #[error("{path} is not a lab file: {source}")]
    Parse { path: PathBuf, source: serde_json::Error },
    #[error("{path} is not a lab file (its format is '{found}', expected '{FORMAT}')")]
    NotALab { path: PathBuf, found: String },
    #[error("{path} is a version {found} lab file; this depthlab reads versions up to {VERSION} (a newer depthlab wrote it)")]
    Version { path: PathBuf, found: u32 },
    #[error("cannot write lab file {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

impl LabError {
    /// 1 for input/output failures, 2 for a file that is not a lab.
    pub fn exit_code(&self) -> i32 {
        match self {
            LabError::Read { .. } | LabError::Write { .. } => 1,
            _ => 2,
        }
    }
}

impl LabFile {
    /// Reads and checks a lab file.
    pub fn read(path: &Path) -> Result<LabFile, LabError> {
        let read = |source| LabError::Read { path: path.to_path_buf(), source };
        let meta = std::fs::metadata(path).map_err(read)?;
        // A pipe would block the read until something wrote to it.
        if !meta.is_file() {
            return Err(LabError::NotAFile { path: path.to_path_buf() });
        }
        let bytes = meta.len();
        if bytes > MAX_BYTES {
            return Err(LabError::TooLarge { path: path.to_path_buf(), bytes });
        }
        let text = std::fs::read_to_string(path).map_err(read)?;
        LabFile::parse(&text, path)
    }

    /// Parses a lab file's text (`path` names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<LabFile, LabError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|source| LabError::Parse { path: path.to_path_buf(), source })?;
        let found = value.get("format").and_then(|f| f.as_str()).unwrap_or("none").to_string();
        if found != FORMAT {
            return Err(LabError::NotALab { path: path.to_path_buf(), found });
        }
        let version = value.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
        if version > u64::from(VERSION) {
            return Err(LabError::Version { path: path.to_path_buf(), found: u32::try_from(version).unwrap_or(u32::MAX) });
        }
        serde_json::from_value(value).map_err(|source| LabError::Parse { path: path.to_path_buf(), source })
    }

    /// Writes the lab file atomically (a lab half-written by a full disk
    /// never replaces a good one).
    pub fn write(&self, path: &Path) -> Result<(), LabError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| LabError::Write { path: path.to_path_buf(), source: e.into() })?;
        crate::util::fsio::write_atomic(path, text.as_bytes()).map_err(|source| LabError::Write { path: path.to_path_buf(), source })
    }

    /// The runs' folders, resolved against `base` (the lab file's folder).
    pub fn run_dirs(&self, base: Option<&Path>) -> Vec<PathBuf> {
        self.runs.iter().map(|r| resolve(&r.path, base)).collect()
    }
}

/// A lab file read, with its run folders opened (on a background thread:
/// a lab of many runs is many files).
pub struct OpenedLab {
    /// The file it came from (`None`: the window's last lab).
    pub path: Option<PathBuf>,
    pub lab: LabFile,
    /// Each run's folder, or why it could not be read (same order as `lab.runs`).
    pub folders: Vec<Result<RunFolder, String>>,
}

impl OpenedLab {
    /// Opens every run folder the lab names.
    pub fn open(lab: LabFile, path: Option<PathBuf>) -> OpenedLab {
        let base = path.as_deref().and_then(Path::parent);
        let folders = lab.run_dirs(base).iter().map(|dir| RunFolder::open(dir).map_err(|e| e.to_string())).collect();
        OpenedLab { path, lab, folders }
    }
}

/// `path` relative to `base` when it lies under it, else absolute.
pub fn relative_to(path: &Path, base: Option<&Path>) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let relative = base
        .and_then(|b| std::path::absolute(b).ok())
        .and_then(|b| absolute.strip_prefix(&b).ok().map(Path::to_path_buf))
        .filter(|r| !r.as_os_str().is_empty());
    relative.unwrap_or(absolute).display().to_string()
}

/// A path from a lab file: relative ones are relative to the lab's folder.
pub fn resolve(path: &str, base: Option<&Path>) -> PathBuf {
    let p = PathBuf::from(path);
    match base {
        Some(b) if p.is_relative() => b.join(p),
        _ => p,
    }
}

/// Adds `path` at the top of the recent labs (once), keeping `RECENT`.
pub fn remember(recent: &mut Vec<String>, path: &Path) {
    let text = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string();
    recent.retain(|p| *p != text);
    recent.insert(0, text);
    recent.truncate(RECENT);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_paths_are_relative_to_the_lab_file_where_they_can_be() {
        let base = Path::new("/tmp/lab-x");
        assert_eq!(relative_to(Path::new("/tmp/lab-x/runs/a"), Some(base)), "runs/a");
        assert_eq!(relative_to(Path::new("/elsewhere/b"), Some(base)), "/elsewhere/b");
        assert_eq!(resolve("runs/a", Some(base)), PathBuf::from("/tmp/lab-x/runs/a"));
        assert_eq!(resolve("/elsewhere/b", Some(base)), PathBuf::from("/elsewhere/b"));
        assert!(Path::new(&relative_to(Path::new("runs/a"), None)).is_absolute());
    }

    #[test]
    fn files_that_are_not_labs_are_refused_in_words() {
        let p = Path::new("x.depthlab");
        let cases = [
            ("", "is not a lab file"),
            ("{\"format\": \"depthlab-lab\", \"version\": 1", "is not a lab file"),
            ("{\"blocks\": []}", "its format is 'none'"),
            ("[1, 2]", "its format is 'none'"),
            ("{\"format\": \"depthlab-lab\", \"version\": 99}", "version 99 lab file"),
            ("{\"format\": \"depthlab-lab\", \"runs\": 3}", "is not a lab file"),
        ];
        for (text, expected) in cases {
            let e = LabFile::parse(text, p).expect_err(text).to_string();
            assert!(e.contains(expected), "{text}: {e}");
        }
        // Everything but the format is optional.
        let lab = LabFile::parse("{\"format\": \"depthlab-lab\"}", p).unwrap();
        assert_eq!(lab.runs_dir, "runs");
        assert_eq!(lab.view.zoom, 1.0);
    }

    #[test]
    fn recent_labs_keep_eight_without_repeats() {
        let mut recent = Vec::new();
        for i in 0..10 {
            remember(&mut recent, Path::new(&format!("/l/{i}.depthlab")));
        }
        remember(&mut recent, Path::new("/l/5.depthlab"));
        assert_eq!(recent.len(), RECENT);
        assert_eq!(recent[0], "/l/5.depthlab");
        assert_eq!(recent.iter().filter(|p| p.as_str() == "/l/5.depthlab").count(), 1);
    }
}
