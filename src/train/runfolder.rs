//! Run folders, as other tools read them:
//!
//! | file | content |
//! | --- | --- |
//! | `arch.json` | the architecture, exactly as trained |
//! | `train.json` | training settings, dataset, backend, seed |
//! | `metrics.csv` | `step,epoch,split,loss,accuracy,lr,elapsed_secs` |
//! | `gradients.csv` | `step,layer_index,layer_name,weight_grad_norm,output_grad_norm` |
//! | `probes.csv` | `step,layer_index,layer_name,probe,value` |
//! | `summary.json` | status, final losses and accuracies, parameters, depth, speed, `model_sha256` |
//! | `model.bpk` | trained weights |
//! | `boundary.png` | 2-D data only: the decision boundary over the plane with the training points |
//! | `events.out.tfevents.*` | the same scalars and the hyperparameters, for TensorBoard, W&B and Aim ([`super::tensorboard`]) |
//!
//! CSV rows are appended and flushed as the run goes; `summary.json` and the
//! weights are written atomically, so a process killed mid-run leaves a
//! folder that still reads. The SHA-256 of the weights is recorded in
//! `summary.json` and checked whenever they are loaded.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::config::TrainConfig;
use super::events::RunStatus;
use super::events::{Evaluation, GradientSnapshot, ProbeSnapshot, ProbeValue, StepMetrics, Summary};
use super::tensorboard::{self, EventFile, HParam, SessionStatus};
use crate::arch::{Architecture, Shape};
use crate::backend::Backend;
use crate::data::Normalization;
use crate::model::{ModelError, Network};
use crate::util::fsio::{FileError, is_scratch_file, remove_if_present, rename_durably, write_atomic};
use crate::util::lock::FolderLock;

pub const METRICS_HEADER: &str = "step,epoch,split,loss,accuracy,lr,elapsed_secs";
pub const GRADIENTS_HEADER: &str = "step,layer_index,layer_name,weight_grad_norm,output_grad_norm";
pub const PROBES_HEADER: &str = "step,layer_index,layer_name,probe,value";
pub const MODEL_FILE: &str = "model.bpk";
/// The decision boundary of a run on 2-D data (`depthlab train` draws it).
pub const BOUNDARY_FILE: &str = "boundary.png";
/// Every file a run writes into its folder (and its event file).
pub const RUN_FILES: [&str; 8] =
    ["arch.json", "train.json", "metrics.csv", "gradients.csv", "probes.csv", SUMMARY_FILE, MODEL_FILE, BOUNDARY_FILE];

/// The run's outcome, written when it ends.
pub const SUMMARY_FILE: &str = "summary.json";

/// Version of the run folder's format, written in `train.json`.
///
/// 2: test rows of `metrics.csv` carry the 0-based epoch they close, like
/// the training rows (format 1 wrote the number of epochs completed); the
/// reader converts format-1 folders.
pub const TRAIN_FORMAT_VERSION: u32 = 2;

/// The dataset as a run saw it: enough to feed the trained model new images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    pub spec: String,
    pub input: Shape,
    pub class_names: Vec<String>,
    pub normalization: Normalization,
    pub train_examples: usize,
    pub test_examples: usize,
    pub augment: bool,
    /// Tabular (CSV) data: the features' names and training ranges, which
    /// scale a row before the normalisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<crate::data::csv::FeatureScale>,
}

/// `train.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainRecord {
    pub format_version: u32,
    pub config: TrainConfig,
    pub dataset: DatasetInfo,
    pub backend: Backend,
    pub adapter: String,
    pub started_unix_secs: u64,
}

/// Format-1 test rows counted the epochs completed; format 2 gives the
/// 0-based epoch the evaluation closes.
fn renumber_test_epochs(mut metrics: Vec<MetricRow>, steps_per_epoch: usize) -> Vec<MetricRow> {
    for row in metrics.iter_mut().filter(|r| r.test) {
        row.epoch = row.step.saturating_sub(1) / steps_per_epoch.max(1);
    }
    metrics
}

impl TrainRecord {
    /// Steps per epoch, as the run counted them.
    pub fn steps_per_epoch(&self) -> usize {
        let examples = self.dataset.train_examples.max(1);
        (examples / self.config.batch_size.clamp(1, examples)).max(1)
    }

    /// Problems with what the record says about the data, in words (a
    /// model fed by it would otherwise divide by zero or index past the
    /// end).
    pub fn check(&self) -> Result<(), RecordError> {
        let info = &self.dataset;
        let channels = match info.input {
            Shape::Map { channels, height, width } if channels > 0 && height > 0 && width > 0 => channels,
            Shape::Flat { features } if features > 0 => 1,
            other => return Err(RecordError::EmptyDimension(other)),
        };
        if info.input.numel() > crate::arch::MAX_VALUES_PER_EXAMPLE {
            return Err(RecordError::TooLarge(info.input));
        }
        if info.class_names.len() < 2 {
            return Err(RecordError::Classes(info.class_names.len()));
        }
        info.normalization.check(channels).map_err(RecordError::Normalization)?;
        match &info.features {
            Some(features) => features.check(channels).map_err(RecordError::Features),
            None => Ok(()),
        }
    }
}

/// Errors reading or writing a run folder, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum RunFolderError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The weights' SHA-256 is not the one `summary.json` recorded.
    #[error("{path} does not match the checksum recorded when it was saved (model_sha256 in summary.json): the file changed or is damaged")]
    WeightsChanged { path: String },
    /// The folder's lock could not be taken (another process writes a run there).
    #[error(transparent)]
    Lock(#[from] crate::util::lock::LockError),
    #[error(transparent)]
    Io(#[from] FileError),
}

/// What `train.json` says about the data that a model cannot be fed by
/// (it would divide by zero or index past the end).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RecordError {
    #[error("the input shape {0} has an empty dimension")]
    EmptyDimension(Shape),
    #[error("the input shape {0} is more than {max} values", max = crate::arch::MAX_VALUES_PER_EXAMPLE)]
    TooLarge(Shape),
    #[error("{0} class names: a classifier needs at least 2")]
    Classes(usize),
    #[error("dataset.normalization: {0}")]
    Normalization(#[source] crate::data::NormalizationError),
    #[error("dataset.features: {0}")]
    Features(#[source] crate::data::csv::FeatureScaleError),
}

impl RunFolderError {
    /// A run folder that cannot be read or written fails the command (exit
    /// 1); commands that take a run folder as their input (`export`, the
    /// analyses) refuse it as bad input (2) themselves.
    pub fn exit_code(&self) -> i32 {
        1
    }
}

fn file_error(path: &Path, message: impl ToString) -> RunFolderError {
    RunFolderError::File { path: path.display().to_string(), message: message.to_string() }
}

/// The SHA-256 of a file's bytes, in lower-case hex (as `sha256sum` prints it).
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut File::open(path)?, &mut hasher)?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// Writes a run folder as a run goes; holds the folder's lock until dropped.
pub struct RunWriter {
    _lock: FolderLock,
    dir: PathBuf,
    metrics: BufWriter<File>,
    gradients: BufWriter<File>,
    probes: BufWriter<File>,
    events: EventFile,
    /// Whether the event file has the run's end.
    events_ended: bool,
    layer_names: Vec<String>,
    /// SHA-256 of the weights in `model.bpk`, once saved.
    model_sha256: Option<String>,
    /// The summary last written, rewritten around each save of the weights.
    last_summary: Option<Summary>,
}

fn csv_file(path: &Path, header: &str) -> Result<BufWriter<File>, RunFolderError> {
    let file = File::create(path).map_err(|e| file_error(path, e))?;
    let mut w = BufWriter::new(file);
    writeln!(w, "{header}").and_then(|_| w.flush()).map_err(|e| file_error(path, e))?;
    Ok(w)
}

/// Quotes a CSV field when it needs it.
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
}

impl RunWriter {
    /// Creates `dir` (which must not already hold a run) and writes
    /// `arch.json` and `train.json`.
    pub fn create(dir: &Path, arch: &Architecture, record: &TrainRecord, layer_names: Vec<String>) -> Result<RunWriter, RunFolderError> {
        // Nothing is written before the lock is ours: a second writer of
        // the same folder fails here, naming the first.
        let lock =
            FolderLock::acquire(dir).map_err(|e| RunFolderError::File { path: dir.display().to_string(), message: e.to_string() })?;
        if dir.join("arch.json").exists() || dir.join("metrics.csv").exists() {
            return Err(file_error(dir, "already holds a run: choose another output folder, or add --overwrite to replace it"));
        }
        remove_scratch_files(dir);
        let arch_path = dir.join("arch.json");
        write_atomic(&arch_path, arch.to_json().as_bytes()).map_err(|e| file_error(&arch_path, e))?;
        let train_path = dir.join("train.json");
        let text = serde_json::to_string_pretty(record).map_err(|e| file_error(&train_path, e))?;
        write_atomic(&train_path, text.as_bytes()).map_err(|e| file_error(&train_path, e))?;
        let mut events = EventFile::create(dir, record.started_unix_secs)
            .map_err(|e| file_error(dir, format!("cannot create the TensorBoard event file: {e}")))?;
        events.hparams(record.started_unix_secs as f64, &run_settings(arch, record)).map_err(|e| file_error(events.path(), e))?;
        Ok(RunWriter {
            _lock: lock,
            dir: dir.to_path_buf(),
            metrics: csv_file(&dir.join("metrics.csv"), METRICS_HEADER)?,
            gradients: csv_file(&dir.join("gradients.csv"), GRADIENTS_HEADER)?,
            probes: csv_file(&dir.join("probes.csv"), PROBES_HEADER)?,
            events,
            events_ended: false,
            layer_names,
            model_sha256: None,
            last_summary: None,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    #[allow(clippy::too_many_arguments)]
    pub fn metric(
        &mut self,
        step: usize,
        epoch: usize,
        split: &str,
        loss: f32,
        accuracy: f32,
        lr: f64,
        elapsed_secs: f64,
    ) -> Result<(), RunFolderError> {
        writeln!(self.metrics, "{step},{epoch},{split},{loss},{accuracy},{lr},{elapsed_secs:.3}")
            .and_then(|_| self.metrics.flush())
            .map_err(|e| file_error(&self.dir.join("metrics.csv"), e))?;
        let (loss_tag, accuracy_tag) = if split == "test" { ("test/loss", "test/accuracy") } else { ("train/loss", "train/accuracy") };
        let mut scalars = vec![(loss_tag, loss), (accuracy_tag, accuracy)];
        if split != "test" {
            scalars.push(("lr", lr as f32));
        }
        self.events.scalars(step, unix_now(), &scalars).map_err(|e| file_error(self.events.path(), e))
    }

    pub fn gradients(&mut self, snapshot: &GradientSnapshot) -> Result<(), RunFolderError> {
        let mut rows = String::new();
        for (i, (w, o)) in snapshot.weight.iter().zip(&snapshot.output).enumerate() {
            let name = self.layer_names.get(i).map(String::as_str).unwrap_or("");
            rows.push_str(&format!("{},{},{},{w},{o}\n", snapshot.step, i, csv_field(name)));
        }
        append_whole(&mut self.gradients, &rows).map_err(|e| file_error(&self.dir.join("gradients.csv"), e))?;
        let width = self.layer_names.len().max(snapshot.weight.len()).to_string().len();
        let mut tags = Vec::with_capacity(2 * snapshot.weight.len());
        for (i, (w, o)) in snapshot.weight.iter().zip(&snapshot.output).enumerate() {
            // Numbered so TensorBoard sorts the layers by depth; a slash
            // would open a new group.
            let name = self.layer_names.get(i).map(|n| n.replace('/', " of ")).unwrap_or_default();
            tags.push((format!("gradient/weight/{i:0width$} {name}"), *w));
            tags.push((format!("gradient/output/{i:0width$} {name}"), *o));
        }
        let scalars: Vec<(&str, f32)> = tags.iter().map(|(t, v)| (t.as_str(), *v)).collect();
        self.events.scalars(snapshot.step, unix_now(), &scalars).map_err(|e| file_error(self.events.path(), e))
    }

    pub fn probes(&mut self, snapshot: &ProbeSnapshot) -> Result<(), RunFolderError> {
        let mut rows = String::new();
        for v in &snapshot.values {
            let name = self.layer_names.get(v.layer).map(String::as_str).unwrap_or("");
            rows.push_str(&format!("{},{},{},{},{}\n", snapshot.step, v.layer, csv_field(name), v.name, v.value));
        }
        append_whole(&mut self.probes, &rows).map_err(|e| file_error(&self.dir.join("probes.csv"), e))
    }

    /// Writes `summary.json`, with the checksum of the weights saved last.
    pub fn summary(&mut self, summary: &Summary) -> Result<(), RunFolderError> {
        let summary = Summary { model_sha256: self.model_sha256.clone(), saving_model_sha256: None, ..summary.clone() };
        self.write_summary(&summary)?;
        let ended = match summary.status {
            RunStatus::Completed | RunStatus::Stopped => Some(SessionStatus::Success),
            RunStatus::Diverged | RunStatus::Failed | RunStatus::Interrupted => Some(SessionStatus::Failure),
            _ => None,
        };
        self.last_summary = Some(summary);
        if let Some(status) = ended
            && !self.events_ended
        {
            self.events.session_end(unix_now(), status).map_err(|e| file_error(self.events.path(), e))?;
            self.events_ended = true;
        }
        Ok(())
    }

    fn write_summary(&self, summary: &Summary) -> Result<(), RunFolderError> {
        let path = self.dir.join(SUMMARY_FILE);
        let text = serde_json::to_string_pretty(summary).map_err(|e| file_error(&path, e))?;
        write_atomic(&path, text.as_bytes()).map_err(|e| file_error(&path, e))
    }

    /// Saves the weights atomically (temporary file, then rename); a failed
    /// save leaves no scratch file behind. The checksum is taken of the
    /// scratch file's bytes, the ones renamed into place; while the rename
    /// is under way `summary.json` accepts the old weights and the new.
    pub fn save_model(&mut self, net: &Network) -> Result<(), RunFolderError> {
        let tmp = self.dir.join(format!(".model-{}.tmp.bpk", std::process::id()));
        let saved = net.save(&tmp).map_err(RunFolderError::from).and_then(|()| file_sha256(&tmp).map_err(|e| file_error(&tmp, e)));
        let sha = match saved {
            Ok(sha) => sha,
            Err(e) => {
                remove_if_present(&tmp);
                return Err(e);
            }
        };
        if let Some(last) = &self.last_summary
            && let Err(e) = self.write_summary(&Summary { saving_model_sha256: Some(sha.clone()), ..last.clone() })
        {
            remove_if_present(&tmp);
            return Err(e);
        }
        crate::util::fault::point("save");
        let path = self.dir.join(MODEL_FILE);
        let renamed = rename_durably(&tmp, &path);
        if !tmp.exists() {
            // In place, even if syncing the folder failed.
            self.model_sha256 = Some(sha);
        }
        renamed.map_err(|e| {
            remove_if_present(&tmp);
            file_error(&path, e)
        })
    }
}

/// Seconds since the Unix epoch, for the event file's wall times.
fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// The run's settings, named: the architecture's name, the backend, the
/// dataset and every training setting by its path in `train.json`'s
/// `config` (`lr`, `schedule.kind`; the `--backend` asked for is
/// `backend_choice`, `backend` the one that ran). TensorBoard's hyperparameters, and
/// the columns of `depthlab runs --csv`.
pub fn run_settings(arch: &Architecture, record: &TrainRecord) -> Vec<(String, HParam)> {
    let mut out = vec![
        ("arch".to_string(), HParam::Text(arch.name.clone())),
        ("backend".to_string(), HParam::Text(record.backend.to_string())),
        ("dataset".to_string(), HParam::Text(record.dataset.spec.clone())),
        ("train_examples".to_string(), HParam::Number(record.dataset.train_examples as f64)),
    ];
    let mut config = Vec::new();
    if let Ok(value) = serde_json::to_value(&record.config) {
        tensorboard::flatten_hparams("", &value, &mut config);
    }
    // The backend asked for (`auto`) beside the one that ran.
    out.extend(config.into_iter().map(|(name, value)| (if name == "backend" { "backend_choice".into() } else { name }, value)));
    out
}

/// Removes the run in `dir` (the files a run writes; anything else stays)
/// so a new run can be written there; refused while a run is writing it.
pub fn clear_run(dir: &Path) -> Result<(), RunFolderError> {
    if !dir.exists() {
        return Ok(());
    }
    let lock = FolderLock::acquire(dir)?;
    for name in run_file_names(dir)? {
        let path = dir.join(name);
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(FileError::remove(&path)(e).into());
        }
    }
    remove_scratch_files(dir);
    drop(lock);
    Ok(())
}

/// The names of the run's files present in `dir`: the fixed ones
/// ([`RUN_FILES`]) and its TensorBoard event files; anything else in the
/// folder is not the run's.
pub fn run_file_names(dir: &Path) -> Result<Vec<String>, FileError> {
    let mut names: Vec<String> = RUN_FILES.iter().filter(|n| dir.join(n).exists()).map(|n| n.to_string()).collect();
    for entry in std::fs::read_dir(dir).map_err(FileError::io(dir))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if tensorboard::is_event_file(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// Appends a snapshot's rows to a CSV file in one write: a snapshot larger
/// than the write buffer is not split across several writes, so a kill
/// leaves all of it or none (at most the last line cut short, which readers
/// skip).
fn append_whole(file: &mut BufWriter<File>, rows: &str) -> std::io::Result<()> {
    file.flush()?;
    file.get_mut().write_all(rows.as_bytes())
}

/// Removes scratch files a killed writer left (only called when no live
/// writer can own them). A folder that cannot be changed (a read-only copy
/// of a run) keeps them: they are never read, so reading goes on.
fn remove_scratch_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if is_scratch_file(&entry.file_name().to_string_lossy())
            && let Err(e) = std::fs::remove_file(entry.path())
            && std::env::var_os("DEPTHLAB_DEBUG").is_some()
        {
            eprintln!("depthlab: cannot remove {}: {e}", entry.path().display());
        }
    }
}

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

/// Splits a CSV line, honouring double quotes.
pub fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// Reads the data rows of a CSV file with the expected header. A last line
/// cut short by a kill is ignored; other rows with the wrong number of
/// columns are skipped and counted in `warnings`.
fn read_csv(path: &Path, header: &str, warnings: &mut Vec<String>) -> Result<Vec<Vec<String>>, RunFolderError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(file_error(path, e)),
    };
    let mut lines = text.lines();
    match lines.next() {
        Some(h) if h.trim() == header => {}
        Some(h) => return Err(file_error(path, format!("unexpected header '{h}', expected '{header}'"))),
        None => return Ok(Vec::new()),
    }
    let columns = header.split(',').count();
    let complete = text.ends_with('\n');
    let rows: Vec<&str> = lines.collect();
    let last = rows.len();
    let (good, bad): (Vec<Vec<String>>, Vec<Vec<String>>) =
        rows.into_iter().enumerate().filter(|(i, _)| complete || i + 1 < last).map(|(_, l)| split_csv(l)).partition(|f| f.len() == columns);
    if !bad.is_empty() {
        warnings.push(format!("{}: skipped {} row(s) without {columns} columns", path.display(), bad.len()));
    }
    Ok(good)
}

/// The rows that parse; the others are skipped with one warning naming the
/// first problem (a damaged row of a CSV never makes the run, and its
/// weights, unreadable).
fn parse_rows<T>(
    path: &Path,
    rows: Vec<Vec<String>>,
    warnings: &mut Vec<String>,
    parse_row: impl Fn(&[String]) -> Result<T, RunFolderError>,
) -> Vec<T> {
    let mut parsed = Vec::with_capacity(rows.len());
    let (mut skipped, mut first) = (0, None);
    for row in &rows {
        match parse_row(row) {
            Ok(value) => parsed.push(value),
            Err(e) => {
                skipped += 1;
                first.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first {
        warnings.push(format!("{}: skipped {skipped} row(s) that do not parse (first: {e})", path.display()));
    }
    parsed
}

fn parse<T: std::str::FromStr>(path: &Path, field: &str) -> Result<T, RunFolderError> {
    field.trim().parse::<T>().map_err(|_| file_error(path, format!("'{field}' is not a number")))
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
