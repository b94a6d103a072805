//! What goes wrong reading or writing a run folder, always naming the file.

use std::path::Path;

use crate::model::ModelError;

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
}

pub(super) fn file_error(path: &Path, message: impl ToString) -> RunFolderError {
    RunFolderError::File { path: path.display().to_string(), message: message.to_string() }
}
