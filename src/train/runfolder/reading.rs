//! Reading a run folder back: its records, its CSV rows (a damaged row
//! skipped with a warning), its status, and its weights checked against
//! the checksum the run recorded.

use std::path::{Path, PathBuf};

use super::csv::{parse, parse_rows, read_csv};
use super::error::{RunFolderError, file_error};
use super::files::{file_sha256, remove_scratch_files};
use super::{GRADIENTS_HEADER, METRICS_HEADER, MODEL_FILE, PROBES_HEADER, SUMMARY_FILE, TRAIN_FORMAT_VERSION, TrainRecord};
use crate::arch::Architecture;
use crate::model::Network;
use crate::train::events::{Evaluation, GradientSnapshot, ProbeSnapshot, ProbeValue, RunStatus, StepMetrics, Summary};
use crate::util::lock::FolderLock;

/// One row of `metrics.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricRow {
    pub step: usize,
    pub epoch: usize,
    pub test: bool,
    pub loss: f32,
    pub accuracy: f32,
    pub lr: f64,
    pub elapsed_secs: f64,
}

/// One row of `gradients.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct GradientRow {
    pub step: usize,
    pub layer_index: usize,
    pub layer_name: String,
    pub weight_grad_norm: f32,
    pub output_grad_norm: f32,
}

/// A run folder read back from disk.
#[derive(Clone, Debug)]
pub struct RunFolder {
    pub dir: PathBuf,
    pub arch: Architecture,
    pub record: TrainRecord,
    /// Absent when the process was killed before the first summary.
    pub summary: Option<Summary>,
    /// What the run is now: the summary's status, except that a run whose
    /// summary is missing or says running while nobody holds the folder's
    /// lock was interrupted.
    pub status: RunStatus,
    /// Problems met while reading (rows skipped), in words.
    pub warnings: Vec<String>,
    pub metrics: Vec<MetricRow>,
    pub gradients: Vec<GradientRow>,
    pub probes: Vec<(usize, usize, String, f32)>,
}

/// Format-1 test rows counted the epochs completed; format 2 gives the
/// 0-based epoch the evaluation closes.
fn renumber_test_epochs(mut metrics: Vec<MetricRow>, steps_per_epoch: usize) -> Vec<MetricRow> {
    for row in metrics.iter_mut().filter(|r| r.test) {
        row.epoch = row.step.saturating_sub(1) / steps_per_epoch.max(1);
    }
    metrics
}

/// Drops the last gradient snapshot when it has fewer layers than the
/// others (a run killed while an older depthlab wrote it row by row), with
/// a warning: a plot of it would show layers missing.
fn drop_cut_snapshot(mut rows: Vec<GradientRow>, path: &Path, warnings: &mut Vec<String>) -> Vec<GradientRow> {
    let layers = rows.iter().map(|r| r.layer_index + 1).max().unwrap_or(0);
    let Some(last_step) = rows.last().map(|r| r.step) else {
        return rows;
    };
    let in_last = rows.iter().rev().take_while(|r| r.step == last_step).count();
    if in_last < layers {
        rows.truncate(rows.len() - in_last);
        warnings.push(format!("{}: the last snapshot (step {last_step}) has {in_last} of {layers} layers; skipped", path.display()));
    }
    rows
}

impl RunFolder {
    /// Reads a run folder.
    pub fn open(dir: &Path) -> Result<RunFolder, RunFolderError> {
        if !dir.is_dir() {
            return Err(file_error(dir, "no such run folder"));
        }
        let arch_path = dir.join("arch.json");
        let arch = Architecture::load(&arch_path).map_err(|e| file_error(&arch_path, e))?;
        let train_path = dir.join("train.json");
        let text = std::fs::read_to_string(&train_path).map_err(|e| file_error(&train_path, e))?;
        let record: TrainRecord = serde_json::from_str(&text).map_err(|e| file_error(&train_path, e))?;
        if record.format_version > TRAIN_FORMAT_VERSION {
            return Err(file_error(
                &train_path,
                format!("format version {} is newer than this depthlab understands ({TRAIN_FORMAT_VERSION})", record.format_version),
            ));
        }
        record.check().map_err(|e| file_error(&train_path, e))?;
        let summary_path = dir.join(SUMMARY_FILE);
        let summary = match std::fs::read_to_string(&summary_path) {
            Ok(text) => Some(serde_json::from_str(&text).map_err(|e| file_error(&summary_path, e))?),
            Err(_) => None,
        };
        let mut warnings = Vec::new();
        let metrics_path = dir.join("metrics.csv");
        let metrics = parse_rows(&metrics_path, read_csv(&metrics_path, METRICS_HEADER, &mut warnings)?, &mut warnings, |f| {
            Ok(MetricRow {
                step: parse(&metrics_path, &f[0])?,
                epoch: parse(&metrics_path, &f[1])?,
                test: f[2] == "test",
                loss: parse(&metrics_path, &f[3])?,
                accuracy: parse(&metrics_path, &f[4])?,
                lr: parse(&metrics_path, &f[5])?,
                elapsed_secs: parse(&metrics_path, &f[6])?,
            })
        });
        let metrics = if record.format_version < 2 { renumber_test_epochs(metrics, record.steps_per_epoch()) } else { metrics };
        let gradients_path = dir.join("gradients.csv");
        let gradients = parse_rows(&gradients_path, read_csv(&gradients_path, GRADIENTS_HEADER, &mut warnings)?, &mut warnings, |f| {
            Ok(GradientRow {
                step: parse(&gradients_path, &f[0])?,
                layer_index: parse(&gradients_path, &f[1])?,
                layer_name: f[2].clone(),
                weight_grad_norm: parse(&gradients_path, &f[3])?,
                output_grad_norm: parse(&gradients_path, &f[4])?,
            })
        });
        let gradients = drop_cut_snapshot(gradients, &gradients_path, &mut warnings);
        let probes_path = dir.join("probes.csv");
        let probes = parse_rows(&probes_path, read_csv(&probes_path, PROBES_HEADER, &mut warnings)?, &mut warnings, |f| {
            Ok((parse(&probes_path, &f[0])?, parse(&probes_path, &f[1])?, f[3].clone(), parse(&probes_path, &f[4])?))
        });
        let status = match summary.as_ref().map(|s: &Summary| s.status) {
            Some(RunStatus::Running) | None if FolderLock::is_held(dir) => RunStatus::Running,
            Some(RunStatus::Running) | None => RunStatus::Interrupted,
            Some(status) => status,
        };
        if status != RunStatus::Running {
            // No writer is left to finish a save it began: its scratch
            // files are garbage (a new writer cannot take a folder that
            // holds a run, so none can start meanwhile).
            remove_scratch_files(dir);
        }
        Ok(RunFolder { dir: dir.to_path_buf(), arch, record, summary, status, warnings, metrics, gradients, probes })
    }

    /// Builds the network on `device` and loads the trained weights.
    pub fn load_network(&self, device: &burn::prelude::Device) -> Result<Network, RunFolderError> {
        let info = &self.record.dataset;
        let net = Network::build(&self.arch, info.input, info.class_names.len(), device, self.record.config.seed)?;
        let path = self.dir.join(MODEL_FILE);
        if !path.exists() {
            let reason = self.summary.as_ref().and_then(|s| s.reason.clone()).map(|r| format!(": {r}")).unwrap_or_default();
            let why = match self.status {
                RunStatus::Diverged => format!("it diverged before its first save{reason}"),
                RunStatus::Failed => format!("it failed before its first save{reason}"),
                RunStatus::Running => "it is still in its first epoch (weights are saved at the end of each epoch)".to_string(),
                RunStatus::Interrupted => "it was interrupted before the end of its first epoch, when weights are first saved".to_string(),
                _ => "it ended before its first epoch?".to_string(),
            };
            return Err(file_error(&path, format!("missing: the run saved no weights: {why}")));
        }
        self.verify_weights(&path)?;
        Ok(net.load(&path)?)
    }

    /// Checks `model.bpk` against the SHA-256 `summary.json` recorded; a run
    /// saved before depthlab recorded one is not checked.
    fn verify_weights(&self, path: &Path) -> Result<(), RunFolderError> {
        let recorded = |s: &Summary| [s.model_sha256.clone(), s.saving_model_sha256.clone()].into_iter().flatten().collect::<Vec<_>>();
        let Some(accepted) = self.summary.as_ref().map(recorded).filter(|a| !a.is_empty()) else {
            return Ok(());
        };
        let sha = file_sha256(path).map_err(|e| file_error(path, e))?;
        if accepted.contains(&sha) {
            return Ok(());
        }
        // A run still training may have saved newer weights since the folder was read.
        if self.status == RunStatus::Running {
            let now = std::fs::read_to_string(self.dir.join(SUMMARY_FILE)).ok().and_then(|t| serde_json::from_str::<Summary>(&t).ok());
            let sha = file_sha256(path).map_err(|e| file_error(path, e))?;
            if now.is_some_and(|s| recorded(&s).contains(&sha)) {
                return Ok(());
            }
        }
        Err(RunFolderError::WeightsChanged { path: path.display().to_string() })
    }
}

/// A run folder's records as the worker reported them while it trained
/// (what the files do not keep — throughput, batch digests, per-class
/// figures — left empty): the window and the reproductions read runs back
/// through these.
impl RunFolder {
    /// The training steps of `metrics.csv`.
    pub fn steps(&self) -> Vec<StepMetrics> {
        let step = |m: &MetricRow| StepMetrics {
            step: m.step,
            epoch: m.epoch,
            loss: m.loss,
            accuracy: m.accuracy,
            lr: m.lr,
            images_per_sec: 0.0,
            elapsed_secs: m.elapsed_secs,
            batch_digest: 0,
        };
        self.metrics.iter().filter(|m| !m.test).map(step).collect()
    }

    /// The test evaluations of `metrics.csv`.
    pub fn evaluations(&self) -> Vec<Evaluation> {
        let evaluation = |m: &MetricRow| Evaluation {
            step: m.step,
            epoch: m.epoch,
            loss: m.loss,
            accuracy: m.accuracy,
            per_class_accuracy: Vec::new(),
            confusion: Vec::new(),
            elapsed_secs: m.elapsed_secs,
        };
        self.metrics.iter().filter(|m| m.test).map(evaluation).collect()
    }

    /// `gradients.csv`, one snapshot per probed step.
    pub fn gradient_snapshots(&self) -> Vec<GradientSnapshot> {
        let mut snapshots: Vec<GradientSnapshot> = Vec::new();
        for row in &self.gradients {
            if snapshots.last().is_none_or(|g| g.step != row.step) {
                snapshots.push(GradientSnapshot { step: row.step, weight: Vec::new(), output: Vec::new() });
            }
            if let Some(g) = snapshots.last_mut() {
                g.weight.push(row.weight_grad_norm);
                g.output.push(row.output_grad_norm);
            }
        }
        snapshots
    }

    /// `probes.csv`, one snapshot per probed step.
    pub fn probe_snapshots(&self) -> Vec<ProbeSnapshot> {
        let mut snapshots: Vec<ProbeSnapshot> = Vec::new();
        for (step, layer, name, value) in &self.probes {
            if snapshots.last().is_none_or(|p| p.step != *step) {
                snapshots.push(ProbeSnapshot { step: *step, values: Vec::new() });
            }
            if let Some(p) = snapshots.last_mut() {
                p.values.push(ProbeValue { layer: *layer, name: name.clone(), value: *value });
            }
        }
        snapshots
    }
}
