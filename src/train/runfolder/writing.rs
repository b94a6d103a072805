//! Writing a run folder while the run goes: the records first, CSV rows
//! and TensorBoard scalars appended and flushed as they come, the summary
//! and the weights saved atomically.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::csv::csv_field;
use super::error::{RunFolderError, file_error};
use super::files::{file_sha256, remove_scratch_files};
use super::{GRADIENTS_HEADER, METRICS_HEADER, MODEL_FILE, PROBES_HEADER, SUMMARY_FILE, TrainRecord};
use crate::arch::Architecture;
use crate::model::Network;
use crate::train::events::{GradientSnapshot, ProbeSnapshot, RunStatus, Summary};
use crate::train::tensorboard::{self, EventFile, HParam, SessionStatus};
use crate::util::fsio::{remove_if_present, rename_durably, write_atomic};
use crate::util::lock::FolderLock;

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

impl RunWriter {
    /// Creates `dir` (which must not already hold a run) and writes
    /// `arch.json` and `train.json`.
    pub fn create(dir: &Path, arch: &Architecture, record: &TrainRecord, layer_names: Vec<String>) -> Result<RunWriter, RunFolderError> {
        // Nothing is written before the lock is ours: a second writer of
        // the same folder fails here, naming the first.
        let lock = FolderLock::acquire(dir)?;
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

/// Appends a snapshot's rows to a CSV file in one write: a snapshot larger
/// than the write buffer is not split across several writes, so a kill
/// leaves all of it or none (at most the last line cut short, which readers
/// skip).
fn append_whole(file: &mut BufWriter<File>, rows: &str) -> std::io::Result<()> {
    file.flush()?;
    file.get_mut().write_all(rows.as_bytes())
}
