//! Exporting a trained run for other tools: PyTorch code that computes
//! what the lab computes (`model.py`), the weights as safetensors named as
//! that code's `state_dict()` expects, a `predict.py` that classifies an
//! image as `depthlab classify` does, and a README.
//!
//! Reads the run folder (architecture, dataset statistics, weights); never
//! touches a training worker. The Python sources live in `python/`: one
//! class per block kind in `python/blocks/`, of which `model.py` gets only
//! those its network uses.

pub mod pytorch;
pub mod weights;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::prelude::Device;

use crate::train::RunStatus;
use crate::train::runfolder::{RunFolder, RunFolderError};
use crate::util::fsio::write_atomic;
use weights::{NamedTensor, Values, WeightsError};

/// What `depthlab export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// `model.py`, `weights.safetensors`, `predict.py` and `README.md`.
    Pytorch,
    /// `weights.safetensors` alone.
    Safetensors,
}

pub const WEIGHTS_FILE: &str = "weights.safetensors";
pub const MODEL_FILE: &str = "model.py";
pub const PREDICT_FILE: &str = "predict.py";
pub const README_FILE: &str = "README.md";

/// Why a run could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Run(#[from] RunFolderError),
    #[error(
        "{path} already holds files ({names}): choose a new or empty output folder, or add --overwrite to replace the exported files there"
    )]
    OutputNotEmpty { path: String, names: String },
    #[error("{path} is not a folder: the output of an export is a folder")]
    OutputNotFolder { path: String },
    #[error("the weights of {run} hold {tensor} values that are not finite (did the run diverge?): nothing was exported")]
    NotFinite { run: String, tensor: String },
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error("{path}: {message}")]
    Write { path: String, message: String },
    #[error(
        "{run} was trained on points of the plane ({data}); the PyTorch export's predict.py reads images, so it is not written: \
         --format safetensors exports the weights, and depthlab classify --point X,Y classifies points"
    )]
    PlaneData { run: String, data: String },
}

impl ExportError {
    /// Whether the input was at fault (the command exits 2) rather than
    /// the system (exit 1).
    pub fn is_refusal(&self) -> bool {
        !matches!(self, ExportError::Weights(WeightsError::Write { .. }) | ExportError::Write { .. })
    }

    /// 2 for a refusal ([`is_refusal`](Self::is_refusal)), 1 for a write that failed.
    pub fn exit_code(&self) -> i32 {
        if self.is_refusal() { 2 } else { 1 }
    }
}

/// What an export wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct Exported {
    pub files: Vec<PathBuf>,
    /// The network's class in `model.py` (PyTorch format only).
    pub net_class: Option<String>,
    pub tensors: usize,
    /// Trained values written (parameters and batch-norm statistics).
    pub values: usize,
    /// Things the user should know, in words (an interrupted run, …).
    pub warnings: Vec<String>,
}

/// Refuses an output folder that holds anything, unless `overwrite`.
fn check_output(out: &Path, overwrite: bool) -> Result<(), ExportError> {
    if out.exists() && !out.is_dir() {
        return Err(ExportError::OutputNotFolder { path: out.display().to_string() });
    }
    // What a killed earlier export left half-written is not counted.
    crate::util::fsio::remove_dead_scratch(out);
    let Ok(entries) = std::fs::read_dir(out) else {
        return Ok(());
    };
    let mut names: Vec<String> = entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    if names.is_empty() || overwrite {
        return Ok(());
    }
    names.sort();
    if names.len() > 4 {
        let more = names.len() - 3;
        names.truncate(3);
        names.push(format!("{more} more"));
    }
    Err(ExportError::OutputNotEmpty { path: out.display().to_string(), names: names.join(", ") })
}

fn status_warning(run: &RunFolder) -> Option<String> {
    let dir = run.dir.display();
    match run.status {
        RunStatus::Interrupted => {
            Some(format!("{dir} was interrupted (its process ended without finishing); the weights are from the last epoch it completed"))
        }
        RunStatus::Running => Some(format!("{dir} is still training; the weights are from its last completed epoch")),
        RunStatus::Diverged => Some(format!("{dir} diverged; the weights are from the last epoch before it did")),
        _ => None,
    }
}

fn write_text(path: &Path, text: &str) -> Result<(), ExportError> {
    write_atomic(path, text.as_bytes()).map_err(|e| ExportError::Write { path: path.display().to_string(), message: e.to_string() })
}

/// The safetensors header's metadata: the architecture and what the
/// network was trained on, so that the file describes itself.
fn metadata(run: &RunFolder) -> HashMap<String, String> {
    let info = &run.record.dataset;
    HashMap::from([
        ("format".to_string(), "pt".to_string()),
        ("producer".to_string(), format!("depthlab {}", env!("CARGO_PKG_VERSION"))),
        ("arch".to_string(), run.arch.to_json()),
        ("input".to_string(), info.input.to_string()),
        ("class_names".to_string(), serde_json::Value::from(info.class_names.clone()).to_string()),
        ("dataset".to_string(), info.spec.clone()),
    ])
}

/// Exports the run in `run_dir` to the folder `out` in `format`.
pub fn export(run_dir: &Path, format: ExportFormat, out: &Path, overwrite: bool) -> Result<Exported, ExportError> {
    let run = RunFolder::open(run_dir)?;
    if format == ExportFormat::Pytorch
        && let Ok(crate::data::DataSpec::Plane(spec)) = run.record.dataset.spec.parse()
    {
        return Err(ExportError::PlaneData { run: run_dir.display().to_string(), data: spec.to_string() });
    }
    check_output(out, overwrite)?;
    let net = run.load_network(&Device::flex())?;
    let tensors = weights::state_dict(&net)?;
    if let Some(bad) = tensors.iter().find(|t| !t.is_finite()) {
        return Err(ExportError::NotFinite { run: run_dir.display().to_string(), tensor: bad.name.clone() });
    }
    std::fs::create_dir_all(out).map_err(|e| ExportError::Write { path: out.display().to_string(), message: e.to_string() })?;
    let weights_path = out.join(WEIGHTS_FILE);
    weights::write_safetensors(&tensors, metadata(&run), &weights_path)?;
    let mut exported = Exported {
        files: vec![weights_path],
        net_class: None,
        tensors: tensors.len(),
        values: tensors.iter().map(value_count).sum(),
        warnings: run.warnings.iter().cloned().chain(status_warning(&run)).collect(),
    };
    if format == ExportFormat::Pytorch {
        let (net_class, files) = write_python(&run, out)?;
        exported.net_class = Some(net_class);
        exported.files.extend(files);
    } else {
        // An earlier PyTorch export's code would load these weights as
        // another network: the output set is replaced as a whole.
        for name in [MODEL_FILE, PREDICT_FILE, README_FILE] {
            let stale = out.join(name);
            if stale.is_file() {
                std::fs::remove_file(&stale)
                    .map_err(|e| ExportError::Write { path: stale.display().to_string(), message: e.to_string() })?;
                exported.warnings.push(format!("removed {} of an earlier PyTorch export: it described other weights", stale.display()));
            }
        }
    }
    Ok(exported)
}

fn value_count(tensor: &NamedTensor) -> usize {
    match &tensor.values {
        Values::F32(v) => v.len(),
        Values::I64(_) => 0,
    }
}

/// Writes `model.py`, `predict.py` and `README.md`; returns the network's
/// class name and the files.
fn write_python(run: &RunFolder, out: &Path) -> Result<(String, Vec<PathBuf>), ExportError> {
    let info = &run.record.dataset;
    let analysis = run.arch.analyse(info.input, info.class_names.len());
    let source = pytorch::ModelSource {
        name: &run.arch.name,
        description: &run.arch.description,
        analysis: &analysis,
        class_names: &info.class_names,
        normalization: &info.normalization,
        features: info.features.as_ref(),
    };
    let net_class = pytorch::class_name(&run.arch.name);
    let (c, h, w) = pytorch::input_chw(info.input);
    let readme = include_str!("python/README.md")
        .replace("{name}", if run.arch.name.is_empty() { "A network" } else { &run.arch.name })
        .replace("{net_class}", &net_class)
        .replace("{input}", &format!("{c}x{h}x{w}"))
        .replace("{input_list}", &format!("{c}, {h}, {w}"))
        .replace("{classes}", &info.class_names.len().to_string());
    let files =
        [(MODEL_FILE, pytorch::model_py(&source)), (PREDICT_FILE, include_str!("python/predict.py").to_string()), (README_FILE, readme)];
    let mut written = Vec::new();
    for (name, text) in files {
        let path = out.join(name);
        write_text(&path, &text)?;
        written.push(path);
    }
    Ok((net_class, written))
}

#[cfg(test)]
mod tests;
