//! The figures a step's text quotes, computed from this lab's own results:
//!
//! - `{RUN.test_accuracy}`, `{RUN.train_accuracy}` (%), `{RUN.train_loss}`,
//!   `{RUN.steps}`, `{RUN.status}`;
//! - `{RUN.first_grad}`, `{RUN.last_grad}`: the first and last weight
//!   layers' weight-gradient norms at the first probe (step 0), and
//!   `{RUN.grad_ratio}`: the gradient reaching the first layer's output over
//!   the one at the last hidden layer's, at step 0 (the dashboard's
//!   sentence): how much of the learning signal reaches the bottom;
//! - `{SWEEP.FAMILY-DEPTH.test_error}`, `.train_error` (%), `.train_loss`:
//!   one run of a sweep step (`{depth.plain-20.test_error}`);
//! - `{lesion.RUN.baseline_error}`, `.worst_error` (%), `.median_rise`
//!   (points): the lesion study of a run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Action;
use crate::analysis::lesion::LesionReport;
use crate::train::runfolder::RunFolder;

const RUN_METRICS: [&str; 8] =
    ["test_accuracy", "train_accuracy", "train_loss", "steps", "status", "first_grad", "last_grad", "grad_ratio"];
const SWEEP_METRICS: [&str; 3] = ["test_error", "train_error", "train_loss"];
const LESION_METRICS: [&str; 3] = ["baseline_error", "worst_error", "median_rise"];

/// What the steps so far have produced.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    /// Run folders by run name.
    pub runs: BTreeMap<String, PathBuf>,
    /// Sweep folders by sweep name.
    pub sweeps: BTreeMap<String, PathBuf>,
    /// Lesion studies by run name.
    pub lesions: BTreeMap<String, LesionReport>,
}

/// A figure that cannot be given.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FigureError {
    #[error("{{{0}}}: no run, sweep or lesion study of that name in this lesson (yet)")]
    Unknown(String),
    #[error("{{{0}}}: no such figure (runs: {runs}; sweeps: {sweeps}; lesion: {lesion})", runs = RUN_METRICS.join(", "), sweeps = SWEEP_METRICS.join(", "), lesion = LESION_METRICS.join(", "))]
    Metric(String),
    #[error("{{{0}}}: not measured ({1})")]
    Missing(String, String),
}

/// The `{…}` placeholders of a text, in order.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else { break };
        keys.push(rest[start + 1..start + len].to_string());
        rest = &rest[start + len + 1..];
    }
    keys
}

/// The names a lesson's steps define, to check placeholders before anything runs.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    runs: Vec<String>,
    sweeps: BTreeMap<String, Vec<String>>,
    lesions: Vec<String>,
}

impl Plan {
    pub fn add(&mut self, action: &Action) {
        match action {
            Action::Read => {}
            Action::Train { runs } => self.runs.extend(runs.iter().map(|r| r.name.clone())),
            Action::Sweep { name, families, depths, .. } => {
                let runs = families.iter().flat_map(|f| depths.iter().map(move |d| f.name(*d))).collect();
                self.sweeps.insert(name.clone(), runs);
            }
            Action::Lesion { runs, .. } => self.lesions.extend(runs.iter().cloned()),
        }
    }

    /// Whether a run of that name is trained by the steps so far.
    pub fn has_run(&self, name: &str) -> bool {
        self.runs.iter().any(|r| r == name)
    }

    /// Whether `key` names a figure the steps so far produce.
    pub fn check(&self, key: &str) -> Result<(), FigureError> {
        let parts: Vec<&str> = key.split('.').collect();
        let unknown = || FigureError::Unknown(key.into());
        let metric = |list: &[&str], m: &str| if list.contains(&m) { Ok(()) } else { Err(FigureError::Metric(key.into())) };
        match parts.as_slice() {
            ["lesion", run, m] => self.lesions.iter().any(|r| r == run).then_some(()).ok_or_else(unknown).and(metric(&LESION_METRICS, m)),
            [sweep, run, m] => {
                self.sweeps.get(*sweep).filter(|runs| runs.iter().any(|r| r == run)).ok_or_else(unknown)?;
                metric(&SWEEP_METRICS, m)
            }
            [run, m] => self.runs.iter().any(|r| r == run).then_some(()).ok_or_else(unknown).and(metric(&RUN_METRICS, m)),
            _ => Err(unknown()),
        }
    }
}

/// Run folders and sweep tables as read for the figures of one fill: each
/// read once however many figures quote it.
#[derive(Default)]
struct Reads {
    folders: BTreeMap<PathBuf, Result<RunFolder, String>>,
    sweeps: BTreeMap<PathBuf, Result<Vec<crate::experiment::SweepRow>, String>>,
}

impl Reads {
    fn folder(&mut self, dir: &Path) -> Result<&RunFolder, String> {
        let read = self.folders.entry(dir.to_path_buf()).or_insert_with(|| RunFolder::open(dir).map_err(|e| e.to_string()));
        read.as_ref().map_err(Clone::clone)
    }

    fn sweep(&mut self, dir: &Path) -> Result<&[crate::experiment::SweepRow], String> {
        let read = self
            .sweeps
            .entry(dir.to_path_buf())
            .or_insert_with(|| crate::experiment::collect(dir).map(|(_, rows, _)| rows).map_err(|e| e.to_string()));
        read.as_ref().map(Vec::as_slice).map_err(Clone::clone)
    }
}

impl Outputs {
    /// The value of one figure, as the text shows it.
    fn figure(&self, key: &str, reads: &mut Reads) -> Result<String, FigureError> {
        let parts: Vec<&str> = key.split('.').collect();
        let missing = |why: &str| FigureError::Missing(key.into(), why.into());
        match parts.as_slice() {
            ["lesion", run, m] => {
                let report = self.lesions.get(*run).ok_or_else(|| FigureError::Unknown(key.into()))?;
                let errors = report.single_errors();
                match *m {
                    "baseline_error" => Ok(percent(report.baseline_test_error)),
                    "worst_error" => {
                        errors.iter().copied().reduce(f64::max).map(percent).ok_or_else(|| missing("no block could be removed"))
                    }
                    "median_rise" => Ok(format!("{:+.1} points", report.median_rise() * 100.0)),
                    _ => Err(FigureError::Metric(key.into())),
                }
            }
            [sweep, run, m] if self.sweeps.contains_key(*sweep) => {
                let rows = reads.sweep(&self.sweeps[*sweep]).map_err(|e| missing(&e))?;
                let row =
                    rows.iter().find(|r| format!("{}-{}", r.family, r.depth) == *run).ok_or_else(|| FigureError::Unknown(key.into()))?;
                let value = match *m {
                    "test_error" => row.final_test_error.map(|e| percent(e.into())),
                    "train_error" => row.final_train_error.map(|e| percent(e.into())),
                    "train_loss" => row.final_train_loss.map(|l| format!("{l:.3}")),
                    _ => return Err(FigureError::Metric(key.into())),
                };
                value.ok_or_else(|| missing(&format!("the run is {}", row.status)))
            }
            [run, m] => {
                let dir = self.runs.get(*run).ok_or_else(|| FigureError::Unknown(key.into()))?;
                let folder = reads.folder(dir).map_err(|e| missing(&e))?;
                run_figure(folder, m).ok_or_else(|| {
                    if RUN_METRICS.contains(m) { missing("the run has not measured it") } else { FigureError::Metric(key.into()) }
                })
            }
            _ => Err(FigureError::Unknown(key.into())),
        }
    }

    /// `text` with every placeholder filled; the figures given and those
    /// that could not be (with why).
    pub fn fill(&self, text: &str) -> Filled {
        self.fill_with(text, &mut Reads::default())
    }

    /// Every text filled, reading each run folder and sweep once.
    pub fn fill_all(&self, texts: &[String]) -> Vec<Filled> {
        let mut reads = Reads::default();
        texts.iter().map(|t| self.fill_with(t, &mut reads)).collect()
    }

    fn fill_with(&self, text: &str, reads: &mut Reads) -> Filled {
        let mut filled = Filled { text: text.to_string(), ..Filled::default() };
        for key in placeholders(text) {
            match self.figure(&key, reads) {
                Ok(value) => {
                    filled.text = filled.text.replacen(&format!("{{{key}}}"), &value, 1);
                    filled.figures.insert(key, value);
                }
                Err(e) => filled.missing.push(e.to_string()),
            }
        }
        filled
    }
}

/// A text with its figures filled in.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Filled {
    pub text: String,
    pub figures: BTreeMap<String, String>,
    pub missing: Vec<String>,
}

fn percent(fraction: f64) -> String {
    format!("{:.1} %", fraction * 100.0)
}

/// One figure of a finished (or stopped) run.
fn run_figure(folder: &RunFolder, metric: &str) -> Option<String> {
    let summary = folder.summary.as_ref();
    // The first probe's rows: the gradient each weight layer got at step 0.
    let first_step = folder.gradients.first().map(|r| r.step);
    let rows: Vec<_> = folder.gradients.iter().filter(|r| Some(r.step) == first_step).collect();
    let first: Vec<f32> = rows.iter().map(|r| r.weight_grad_norm).collect();
    let output: Vec<f32> = rows.iter().map(|r| r.output_grad_norm).collect();
    match metric {
        "test_accuracy" => summary?.final_test_accuracy.map(|a| percent(a.into())),
        "train_accuracy" => summary?.final_train_accuracy.map(|a| percent(a.into())),
        "train_loss" => summary?.final_train_loss.map(|l| format!("{l:.3}")),
        "steps" => summary.map(|s| s.steps.to_string()),
        "status" => summary.map(|s| s.status.to_string()),
        "first_grad" => first.first().map(|g| format!("{g:.1e}")),
        "last_grad" => first.last().map(|g| format!("{g:.1e}")),
        // The last probed layer is the classifier: the last hidden one is before it.
        "grad_ratio" => match (output.first(), output.len().checked_sub(2).and_then(|i| output.get(i))) {
            (Some(a), Some(b)) if *b > 0.0 && output.len() > 2 => Some(format!("{:.1e}", a / b)),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lesson::RunSpec;

    #[test]
    fn placeholders_are_found_and_checked_against_the_steps() {
        assert_eq!(placeholders("a {x.y} b {lesion.r.median_rise}{"), vec!["x.y", "lesion.r.median_rise"]);
        let mut plan = Plan::default();
        plan.add(&Action::Train { runs: vec![RunSpec { name: "plain".into(), arch: "plain-8".into(), config: Default::default() }] });
        plan.add(&Action::Sweep {
            name: "depth".into(),
            families: vec![crate::arch::presets::Family::Resnet],
            depths: vec![8, 20],
            seeds: 1,
            config: Default::default(),
        });
        assert!(plan.check("plain.test_accuracy").is_ok());
        assert!(plan.check("depth.resnet-20.test_error").is_ok());
        assert!(matches!(plan.check("resnet.test_accuracy"), Err(FigureError::Unknown(_))));
        assert!(matches!(plan.check("plain.colour"), Err(FigureError::Metric(_))));
        assert!(matches!(plan.check("depth.resnet-14.test_error"), Err(FigureError::Unknown(_))));
        assert!(matches!(plan.check("lesion.plain.median_rise"), Err(FigureError::Unknown(_))));
        assert!(matches!(plan.check("plain"), Err(FigureError::Unknown(_))));
        // Nothing has run: the figure is missing, with its reason.
        let filled = Outputs::default().fill("accuracy {plain.test_accuracy}");
        assert_eq!(filled.missing.len(), 1);
        assert!(filled.text.contains("{plain.test_accuracy}"));
    }
}
