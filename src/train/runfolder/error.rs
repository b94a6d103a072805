//! What goes wrong reading or writing a run folder, always naming the file.

use std::path::Path;

use crate::arch::Shape;
use crate::model::ModelError;
use crate::util::fsio::FileError;

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

pub(super) fn file_error(path: &Path, message: impl ToString) -> RunFolderError {
    RunFolderError::File { path: path.display().to_string(), message: message.to_string() }
}
