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

mod csv;
mod error;
mod files;
mod reading;
mod writing;

use serde::{Deserialize, Serialize};

pub use csv::{csv_field, split_csv};
pub use error::{RecordError, RunFolderError};
pub use files::{clear_run, file_sha256, run_file_names};
pub use reading::{GradientRow, MetricRow, RunFolder};
pub use writing::{RunWriter, run_settings};

use super::config::TrainConfig;
use crate::arch::Shape;
use crate::backend::Backend;
use crate::data::Normalization;

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
